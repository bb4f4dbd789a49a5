/*
 * ui_cert: the certificate screen, a tab: how loose each bound is, for the
 * focused lane.
 *
 * The numbers come from certreport (the computation behind `sectorlab
 * certify`), run as a task on a copy of the lane's network (lab_copy_net;
 * the training network is never touched) with progress in the top line;
 * Esc cancels.  Per layer: the training's power-iteration norm, the verified
 * norm, the Theorem 4 cap and its verdict, the exact LMI's verdict and the
 * floor of the layer's gain found by search.  For the network: the floor,
 * LipSDP, the product of norms and the sector's gamma, each with its ratio
 * to the floor.  Beneath: certified accuracy against L2 radius under the
 * best bound and under the product, and one test image's certified radius
 * beside the smallest eps PGD-L2 flips it at.  The screen never computes
 * anything itself: it starts tasks and draws what they return.
 */
#include <curses.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sectorlab/arch.h"
#include "sectorlab/caps.h"
#include "sectorlab/certreport.h"
#include "sectorlab/task.h"
#include "sectorlab/ui_draw.h"
#include "sectorlab/ui_screen.h"

enum { ACT_COMPUTE, ACT_CANCEL, ACT_PREV, ACT_NEXT, ACT_SECTOR };

static const struct ui_key cert_keys[] = {
	{'r', "r", "recompute on a copy of the focused lane's network as it is now",
	 ACT_COMPUTE, true},
	{27, "Esc", "cancel the computation running", ACT_CANCEL, true},
	{'[', "[", "previous test image (its radius and flipping eps)", ACT_PREV, true},
	{']', "]", "next test image", ACT_NEXT, true},
	{'g', "g", "search the tightest sector too (16 SDPs) or not; recompute", ACT_SECTOR,
	 true},
};

/* One computation: the whole report, or only the image part of one. */
struct work {
	struct nn_net *net;                /* the copy (owned) */
	struct sl_dataset test;            /* a copy of the lab's test set (owned): a
					      switch of data may free the lab's */
	struct certreport_config cfg;
	bool image_only;
	const struct certreport *base;     /* image_only: the report shown (read only) */
	struct task *task;                 /* set by the work itself */
	struct certreport rep;             /* the result (whole report) */
	struct certreport_image image;     /* the result (image only) */
	/* what the copy was, for the screen */
	int lane;
	long step;
	int nweighted;
	double sigma_train[NN_MAX_LAYERS]; /* the training's running estimate, in use */
};

struct cert {
	struct ui_screen screen;
	struct ui_app *app;
	bool started;                 /* the first computation was asked for */
	struct task *task;            /* running, or NULL */
	struct work *work;            /* its context */
	struct task_status ts;        /* as last polled */
	/* What is shown: a completed report and the copy it was made on. */
	bool have;
	struct certreport rep;
	struct work *shown;           /* the work that made it (its net and facts) */
	bool sector;                  /* ask for the tightest sector */
	uint32_t image;               /* the image wanted */
	char note[600];               /* the last failure or cancel */
	/* Cancelled tasks still finishing their piece (an SDP may take a
	 * while): freed by tick once they return, so Esc never waits. */
	int ndying;
	struct work *pending;         /* a report waiting for its copy of the network */
	long ticket;                  /* the copy asked for */
	struct task *dying[8];
	struct work *dying_work[8];
};

static struct cert cs;
static struct ui_plot plot; /* large; only the main thread draws */

static void work_free(struct work *w)
{
	if (!w)
		return;
	if (!w->image_only) {
		certreport_free(&w->rep);
		data_free(&w->test);
	}
	nn_free(w->net);
	free(w);
}

static bool on_progress(void *ctx, double done, const char *what)
{
	struct work *w = ctx;
	return task_progress(w->task, done, CERTREPORT_STAGES, what);
}

static sl_status run(void *ctx, struct task *t, struct sl_error *err)
{
	struct work *w = ctx;
	w->task = t;
	if (w->image_only)
		return certreport_image(w->net, &w->test, &w->cfg, w->base, on_progress, w,
					&w->image, err);
	return certreport_run(w->net, &w->test, &w->cfg, on_progress, w, &w->rep, err);
}

/* Free a task that has returned (or wait for it), and its work. */
static void reap(struct task *t, struct work *w)
{
	task_free(t);
	/* an image-only work uses the shown report's net: not its own */
	if (w && w->image_only)
		w->net = NULL;
	work_free(w);
}

/* Reap the cancelled tasks that have returned; with wait, all of them, or
 * (images_only) those that use the shown report (its net and tables). */
static void reap_dying(struct cert *c, bool wait, bool images_only)
{
	int k = 0;
	for (int i = 0; i < c->ndying; i++) {
		struct task_status ts;
		task_status(c->dying[i], &ts);
		bool mine = !images_only || c->dying_work[i]->image_only;
		if (ts.state != TASK_RUNNING || (wait && mine)) {
			reap(c->dying[i], c->dying_work[i]);
		} else {
			c->dying[k] = c->dying[i];
			c->dying_work[k++] = c->dying_work[i];
		}
	}
	c->ndying = k;
}

/* Ask the task running, if any, to stop, and forget it (its result too);
 * it finishes its piece on its own. */
static void stop_task(struct cert *c)
{
	if (!c->task)
		return;
	task_cancel(c->task);
	if (c->ndying == (int)(sizeof c->dying / sizeof c->dying[0]))
		reap_dying(c, true, false);
	c->dying[c->ndying] = c->task;
	c->dying_work[c->ndying++] = c->work;
	c->task = NULL;
	c->work = NULL;
}

static const char *lane_name(struct ui_app *app, int lane)
{
	return lab_lane_kind_name(lab_lane(ui_app_lab(app), lane)->kind);
}

/* The whole report for the focused lane, on a copy of its network. */
static void start_report(struct cert *c)
{
	struct lab *lab = ui_app_lab(c->app);
	int lane = ui_race_focus(c->app);
	stop_task(c);
	work_free(c->pending);
	c->pending = NULL;
	c->started = true;
	c->note[0] = '\0';
	struct work *w = calloc(1, sizeof *w);
	struct sl_error err;
	status_clear(&err);
	if (!w) {
		snprintf(c->note, sizeof c->note, "out of memory");
		return;
	}
	if (arch_build_threads(&lab_lane(lab, lane)->train.arch, 256, 1, &w->net, &err) != SL_OK ||
	    data_copy(lab_test_set(lab), &w->test, &err) != SL_OK) {
		snprintf(c->note, sizeof c->note, "lane %d: %s", lane + 1, err.msg);
		nn_free(w->net);
		free(w);
		return;
	}
	struct certify_options co = caps_certify_options(&lab_lane(lab, lane)->train.caps);
	w->cfg = certreport_defaults(co.nu, co.delta, co.objective);
	w->cfg.sector = c->sector;
	w->cfg.image = c->image;
	w->lane = lane;
	/* the worker copies its network between two steps: tick polls */
	c->ticket = lab_request_net(lab, lane);
	c->pending = w;
}

/* The copy asked for, once the lane's worker made it: the task starts. */
static void poll_copy(struct cert *c)
{
	struct work *w = c->pending;
	bool ready = false;
	struct sl_error err;
	status_clear(&err);
	if (lab_copy_net(ui_app_lab(c->app), w->lane, c->ticket, w->net, &ready, &w->step, &err) !=
	    SL_OK) {
		snprintf(c->note, sizeof c->note, "cannot copy lane %d's network: %s", w->lane + 1,
			 err.msg);
		work_free(w);
		c->pending = NULL;
		return;
	}
	if (!ready)
		return;
	c->pending = NULL;
	int idx[NN_MAX_LAYERS];
	w->nweighted = nn_weighted_layers(w->net, idx);
	for (int j = 0; j < w->nweighted; j++) {
		const struct nn_layer *l = &w->net->layers[idx[j]];
		w->sigma_train[j] = (double)l->sigma_hat * l->scale;
	}
	if (task_start(run, w, &c->task, &err) != SL_OK) {
		snprintf(c->note, sizeof c->note, "%s", err.msg);
		work_free(w);
		return;
	}
	c->work = w;
	memset(&c->ts, 0, sizeof c->ts);
}

/* The image part again, on the shown report's network. */
static void start_image(struct cert *c)
{
	if (!c->have) {
		start_report(c);
		return;
	}
	stop_task(c);
	/* the shown report's net runs one pass at a time: a cancelled image
	 * search stops within one PGD run */
	reap_dying(c, true, true);
	c->note[0] = '\0';
	struct work *w = calloc(1, sizeof *w);
	struct sl_error err;
	if (!w) {
		snprintf(c->note, sizeof c->note, "out of memory");
		return;
	}
	*w = *c->shown;
	memset(&w->rep, 0, sizeof w->rep);
	w->image_only = true;
	w->base = &c->rep;
	w->cfg.image = c->image;
	if (task_start(run, w, &c->task, &err) != SL_OK) {
		snprintf(c->note, sizeof c->note, "%s", err.msg);
		free(w);
		return;
	}
	c->work = w;
	memset(&c->ts, 0, sizeof c->ts);
}

static int cert_key(struct ui_app *app, void *self, int action, int ch)
{
	(void)app;
	(void)ch;
	struct cert *c = self;
	uint32_t n = c->have ? c->shown->test.n : lab_test_set(ui_app_lab(c->app))->n;
	switch (action) {
	case ACT_COMPUTE: start_report(c); break;
	case ACT_CANCEL:
		if (c->task || c->pending) {
			stop_task(c);
			work_free(c->pending);
			c->pending = NULL;
			snprintf(c->note, sizeof c->note, "cancelled (r computes again)");
		}
		break;
	case ACT_PREV:
	case ACT_NEXT:
		if (n == 0)
			break;
		c->image = (c->image + (action == ACT_NEXT ? 1 : n - 1)) % n;
		/* the lab's chosen image: the other screens show it too */
		lab_set_digit(ui_app_lab(c->app), c->image);
		start_image(c);
		break;
	case ACT_SECTOR:
		c->sector = !c->sector;
		start_report(c);
		break;
	}
	return UI_DIRTY;
}

static int cert_tick(struct ui_app *app, void *self)
{
	(void)app;
	struct cert *c = self;
	if (!c->started) {
		start_report(c);
		return UI_DIRTY;
	}
	reap_dying(c, false, false);
	if (c->pending) {
		poll_copy(c);
		return c->pending ? 0 : UI_DIRTY;
	}
	if (!c->task)
		return 0;
	struct task_status ts;
	task_status(c->task, &ts);
	bool changed = ts.state != c->ts.state || ts.done != c->ts.done ||
		       strcmp(ts.what, c->ts.what) != 0 ||
		       (int)(ts.seconds * 4) != (int)(c->ts.seconds * 4);
	c->ts = ts;
	if (ts.state == TASK_RUNNING)
		return changed ? UI_DIRTY : 0;
	struct task *t = c->task;
	struct work *w = c->work;
	c->task = NULL;
	c->work = NULL;
	task_free(t); /* it has returned */
	if (ts.state == TASK_DONE && w->image_only) {
		c->rep.image = w->image;
		c->rep.have_image = true;
		w->net = NULL; /* the shown report's */
		work_free(w);
	} else if (ts.state == TASK_DONE) {
		reap_dying(c, true, true); /* they read the report replaced here */
		if (c->have)
			certreport_free(&c->rep);
		work_free(c->shown);
		c->rep = w->rep;
		memset(&w->rep, 0, sizeof w->rep);
		c->shown = w;
		c->have = true;
	} else {
		snprintf(c->note, sizeof c->note, "%s",
			 ts.state == TASK_CANCELLED ? "cancelled (r computes again)" : ts.message);
		if (w->image_only)
			w->net = NULL;
		work_free(w);
	}
	return UI_DIRTY;
}

/* ---- drawing --------------------------------------------------------------- */

static const char *lmi_word(const struct certify_layer *l)
{
	switch (l->lmi) {
	case CERTIFY_LMI_NOT_RUN: return "not run";
	case CERTIFY_LMI_CERTIFIED: return "holds";
	case CERTIFY_LMI_REFUTED: return "fails";
	case CERTIFY_LMI_TOO_LARGE: return "too large";
	case CERTIFY_LMI_CONV: return "conv: none";
	case CERTIFY_LMI_FAILED: return "failed";
	}
	return "?";
}

/* The top line: what is shown, or what runs. */
static void status_line(struct cert *c, int y, int w)
{
	if (c->pending) {
		ui_textf(y, 0, w, UI_WARN, true, "copying lane %d's network (between two steps)...",
			 c->pending->lane + 1);
		return;
	}
	if (c->task) {
		const struct task_status *ts = &c->ts;
		int bar = w >= 100 ? 20 : 10;
		char line[256];
		int n = snprintf(line, sizeof line, "computing %s", ts->what[0] ? ts->what : "...");
		ui_text(y, 0, w, UI_WARN, true, line);
		int x = n + 1 < w - bar - 20 ? n + 1 : w - bar - 20;
		if (x < 0)
			return;
		double frac = ts->total > 0 ? ts->done / ts->total : 0;
		ui_bar(y, x, bar, frac, 0, 1, false);
		ui_textf(y, x + bar + 1, w - x - bar - 1, UI_DIM, false, "%.1f s  Esc cancels",
			 ts->seconds);
		return;
	}
	if (c->note[0]) {
		ui_text(y, 0, w, UI_BAD, false, c->note);
		return;
	}
	if (!c->have)
		return;
	const struct work *s = c->shown;
	const struct certificate *ce = &c->rep.cert;
	struct job_snapshot *snap = malloc(sizeof *snap);
	long now = -1;
	if (snap) {
		lab_snapshot(ui_app_lab(c->app), s->lane, snap);
		now = snap->step;
		free(snap);
	}
	char line[256];
	int x = snprintf(line, sizeof line, "lane %d %s, step %ld, (nu, delta) (%g, %g)",
			 s->lane + 1, lane_name(c->app, s->lane), s->step, ce->nu, ce->delta);
	ui_text(y, 0, w, UI_NORMAL, true, line);
	double secs = 0;
	for (int k = 0; k < CERTREPORT_STAGES; k++)
		secs += c->rep.seconds[k];
	x += 2 + ui_textf(y, x + 2, w - x - 2, UI_DIM, false, "%.0f s", secs);
	if (s->lane != ui_race_focus(c->app))
		ui_textf(y, x + 2, w - x - 2, UI_WARN, false, "focus is on lane %d: r",
			 ui_race_focus(c->app) + 1);
	else if (now > s->step)
		ui_textf(y, x + 2, w - x - 2, UI_DIM, false, "training is at step %ld: r", now);
}

/* Per layer: the norms, the cap and both verdicts, the gain floor. */
static int layer_table(struct cert *c, int y, int x, int w)
{
	const struct certificate *ce = &c->rep.cert;
	const struct sandwich *sw = &c->rep.sw;
	const struct work *s = c->shown;
	ui_text(y, x, w, UI_NORMAL, true,
		"layer  sigma(pow) sigma(exact)  cap rho_i  Thm 4 exact LMI  gain floor");
	int row = y + 1;
	for (int i = 0, j = 0; i < ce->nlayers; i++, row++) {
		const struct certify_layer *l = &ce->layer[i];
		if (l->kind == SECTOR_LAYER_POOL) {
			ui_textf(row, x, w, UI_DIM, false, "%-6.6s %g-Lipschitz max pooling (no cap)",
				 l->name, l->k);
			continue;
		}
		int cx = x;
		cx += ui_textf(row, cx, w, UI_NORMAL, false, "%-6.6s %10.6f %10.6f  ", l->name,
			       j < s->nweighted ? s->sigma_train[j] : NAN, l->sigma);
		if (ce->allocated) {
			cx += ui_textf(row, cx, x + w - cx, UI_NORMAL, false, "%10.6f ", l->rho);
			cx += ui_text(row, cx, x + w - cx, l->within ? UI_OK : UI_BAD, true,
				      l->within ? "  ok  " : " over ");
		} else {
			cx += ui_text(row, cx, x + w - cx, UI_DIM, false, "   no alloc.     ");
		}
		enum ui_role lr = l->lmi == CERTIFY_LMI_CERTIFIED  ? UI_OK
				  : l->lmi == CERTIFY_LMI_REFUTED ? UI_BAD
								  : UI_DIM;
		cx += ui_textf(row, cx, x + w - cx, lr, false, "%-10s", lmi_word(l));
		if (j < sw->nlayer_floor)
			ui_textf(row, cx, x + w - cx, UI_NORMAL, false, "%11.6f", sw->layer_floor[j]);
		else
			ui_textf(row, cx, x + w - cx, UI_DIM, false, "%11s", "-");
		j++;
	}
	return row - y;
}

/* The network's bounds, tightest first, each with its ratio to the floor. */
static int network_table(struct cert *c, int y, int x, int w)
{
	const struct sandwich *sw = &c->rep.sw;
	const struct certificate *ce = &c->rep.cert;
	double fl = sw->floor_L;
	ui_text(y, x, w, UI_NORMAL, true, "network Lipschitz    value   x floor");
	int row = y + 1;
	char what[700];
	if (fl > 0)
		snprintf(what, sizeof what, "ascent over input pairs, %d points",
			 sw->floor_evaluations);
	else if (strstr(sw->floor_note, "dense networks only"))
		snprintf(what, sizeof what, "dense networks only");
	else
		snprintf(what, sizeof what, "%s", sw->floor_note);
	if (fl > 0)
		ui_textf(row, x, w, UI_OK, false, "%-17s %9.6f   1.00x  %s", "floor (search)", fl,
			 what);
	else
		ui_textf(row, x, w, UI_DIM, false, "%-17s %9s          %s", "floor (search)", "-",
			 what);
	row++;
	struct {
		const char *name;
		enum sandwich_kind k;
	} rows[] = {{"LipSDP", SANDWICH_SDP}, {"product of norms", SANDWICH_PRODUCT},
		    {"sector gamma", SANDWICH_SECTOR}};
	for (int k = 0; k < 3; k++) {
		const struct sandwich_bound *b = &sw->b[rows[k].k];
		int cx = x + ui_textf(row, x, w, UI_NORMAL, false, "%-17s ", rows[k].name);
		if (b->state == SANDWICH_COMPUTED) {
			cx += ui_textf(row, cx, x + w - cx, UI_NORMAL, false, "%9.6f ", b->L);
			if (fl > 0)
				cx += ui_textf(row, cx, x + w - cx, UI_NORMAL, false, "%6.2fx  ",
					       b->L / fl);
			else
				cx += ui_text(row, cx, x + w - cx, UI_NORMAL, false, "     -   ");
			if (rows[k].k == SANDWICH_SECTOR && sw->sector_searched)
				ui_textf(row, cx, x + w - cx, UI_DIM, false,
					 "tightest (%.3g, %.3g), %d SDPs", sw->sector.nu,
					 sw->sector.delta, sw->sector.sdps);
			else if (rows[k].k == SANDWICH_SECTOR)
				ui_textf(row, cx, x + w - cx, UI_DIM, false,
					 "allocation at (%g, %g); g: search", ce->nu, ce->delta);
			else
				ui_textf(row, cx, x + w - cx, UI_DIM, false, "%.1f s", b->seconds);
		} else {
			const char *why = b->state == SANDWICH_TOO_LARGE	 ? "too large"
					  : b->state == SANDWICH_UNSUPPORTED ? "dense networks only"
					  : b->state == SANDWICH_NOT_ASKED   ? "not asked"
									     : "failed";
			if (rows[k].k == SANDWICH_SECTOR && !ce->sector_certified)
				why = "not certified for these indices";
			ui_textf(row, cx, x + w - cx, UI_DIM, false, "%9s          %s", "-", why);
		}
		row++;
	}
	return row - y;
}

/* Certified accuracy against L2 radius: best bound and product. */
static void accuracy_chart(struct cert *c, int y, int x, int h, int w)
{
	const struct certreport *r = &c->rep;
	/* the legend in the title: each curve's name in its colour (glyph) */
	bool colour = ui_draw_colour();
	int cx = x + ui_text(y, x, w, UI_NORMAL, true, "certified accuracy vs L2 radius: ");
	char name[64];
	snprintf(name, sizeof name, "%sbest", colour ? "" : (char[]){ui_lane_glyph[2], ' ', 0});
	cx += ui_text(y, cx, x + w - cx, UI_LANE2, true, name) + 1;
	snprintf(name, sizeof name, "%sproduct", colour ? "" : (char[]){ui_lane_glyph[1], ' ', 0});
	cx += ui_text(y, cx, x + w - cx, UI_LANE1, true, name) + 1;
	ui_textf(y, cx, x + w - cx, UI_DIM, false, "(%d images)", r->n);
	int label_w = 4, pw = w - label_w - 1, ph = h - 2;
	if (pw < 8 || ph < 2 || r->n == 0)
		return;
	/* x axis: to the radius below which 97% of the certified images lie
	 * (one far outlier would flatten the curve), rounded up */
	double *v = malloc(sizeof(double) * (size_t)r->n), xmax = 0;
	int m = 0;
	for (int i = 0; v && i < r->n; i++)
		if (r->radius[i] > 0 && isfinite(r->radius[i]))
			v[m++] = r->radius[i];
	for (int i = 1; i < m; i++) /* insertion sort of a few thousand: once per draw */
		for (int j = i; j > 0 && v[j - 1] > v[j]; j--) {
			double t = v[j];
			v[j] = v[j - 1];
			v[j - 1] = t;
		}
	if (m > 0)
		xmax = v[(int)(0.97 * (m - 1))];
	free(v);
	if (r->have_image && isfinite(r->image.radius))
		xmax = fmax(xmax, r->image.radius);
	xmax = xmax > 0 ? 1.1 * xmax : 1;
	double step = pow(10, floor(log10(xmax)));
	xmax = ceil(xmax / step * 2) * step / 2;
	enum { NP = 2 * UI_PLOT_MAX_W };
	static double xs[NP];
	static float best[NP], prod[NP];
	int np = 2 * pw < NP ? 2 * pw : NP;
	for (int k = 0; k < np; k++) {
		xs[k] = xmax * k / (np - 1);
		best[k] = (float)certify_accuracy_at(r->radius, r->correct, r->n, xs[k]);
		prod[k] = (float)certify_accuracy_at(r->radius_product, r->correct, r->n, xs[k]);
	}
	ui_plot_init(&plot, pw, ph, 0, xmax, 0, 1);
	ui_plot_line(&plot, xs, prod, np, UI_LANE1);
	ui_plot_line(&plot, xs, best, np, UI_LANE2);
	if (r->have_image && r->image.radius > 0 && r->image.radius <= xmax) {
		double ix = r->image.radius;
		float iy = (float)certify_accuracy_at(r->radius, r->correct, r->n, ix);
		ui_plot_marks(&plot, &ix, &iy, 1, 'c', UI_WARN);
	}
	ui_text(y + 1, x, label_w, UI_DIM, false, "100%");
	ui_text(y + ph, x, label_w, UI_DIM, false, "  0%");
	ui_plot_draw(&plot, y + 1, x + label_w + 1);
	ui_text(y + h - 1, x + label_w + 1, pw, UI_DIM, false, "0");
	char lab[32];
	int n = snprintf(lab, sizeof lab, "r %g", xmax);
	ui_text(y + h - 1, x + label_w + 1 + pw - n, n, UI_DIM, false, lab);
	/* Short of room, the line drops the mark's legend rather than cut it. */
	char line[128];
	int room = pw - n - 4;
	if (snprintf(line, sizeof line, "median %.3f best, %.3f product; c: the image",
		     r->median, r->median_product) > room)
		snprintf(line, sizeof line, "median %.3f best, %.3f product", r->median,
			 r->median_product);
	ui_text(y + h - 1, x + label_w + 3, room, UI_DIM, false, line);
}

/* The chosen image: certified radius beside the eps that flips it. */
static void image_panel(struct cert *c, int y, int x, int h, int w)
{
	const struct certreport *r = &c->rep;
	const struct certreport_image *im = &r->image;
	if (c->task && c->work->image_only) {
		ui_textf(y, x, w, UI_NORMAL, true, "test image %u ([ ])", c->image);
		ui_text(y + 1, x, w, UI_DIM, false, "searching its flip...");
		return;
	}
	if (!r->have_image)
		return;
	ui_textf(y, x, w, UI_NORMAL, true, "test image %u ([ ])", im->index);
	int row = y + 1;
	ui_textf(row++, x, w, im->pred == im->label ? UI_NORMAL : UI_BAD, false,
		 "label %d, predicted %d", im->label, im->pred);
	if (im->pred != im->label) {
		ui_text(row++, x, w, UI_DIM, false, "misclassified: no radius,");
		ui_text(row++, x, w, UI_DIM, false, "nothing to flip");
		return;
	}
	ui_textf(row++, x, w, UI_OK, false, "certified  %8.4f best", im->radius);
	ui_textf(row++, x, w, UI_DIM, false, "           %8.4f product", im->radius_product);
	if (isinf(im->flip.eps)) {
		ui_textf(row++, x, w, UI_NORMAL, false, "no flip up to eps %g", im->flip.held);
		return;
	}
	ui_textf(row++, x, w, UI_BAD, false, "flips at   %8.4f eps", im->flip.eps);
	ui_textf(row++, x, w, UI_DIM, false, "holds at   %8.4f", im->flip.held);
	if (im->radius > 0)
		ui_textf(row++, x, w, UI_NORMAL, true, "ratio %.2fx flip/radius",
			 im->flip.eps / im->radius);
	else
		ui_text(row++, x, w, UI_NORMAL, false, "margin within rounding: 0");
	if (row < y + h)
		ui_textf(row++, x, w, UI_DIM, false, "PGD-L2 %d steps, %d restart%s",
			 c->shown->cfg.flip.steps, c->shown->cfg.flip.restarts,
			 c->shown->cfg.flip.restarts == 1 ? "" : "s");
	if (row < y + h)
		ui_textf(row++, x, w, UI_DIM, false, "unclipped, %d PGD runs", im->flip.attacks);
	/* the image itself, when there is room */
	const struct sl_dataset *ds = &c->shown->test;
	int ih = (int)ds->h / 2 / 2, iw = (int)ds->w / 2;
	if (row + ih < y + h && iw <= w && data_dim(ds) <= 3 * 32 * 32) {
		static uint8_t px[3 * 32 * 32];
		static float xf[3 * 32 * 32];
		int lbl;
		uint32_t k = im->index;
		data_batch(ds, &k, 1, xf, &lbl);
		for (size_t i = 0; i < data_dim(ds); i++)
			px[i] = data_to_byte(xf[i]);
		ui_image(row + 1, x, px, (int)ds->c, (int)ds->h, (int)ds->w, 2, 1);
	}
}

static void cert_draw(struct ui_app *app, void *self)
{
	(void)app;
	struct cert *c = self;
	int W = COLS, top = 1, bottom = LINES - 2; /* rows top .. bottom */
	status_line(c, top, W);
	if (!c->have) {
		if (c->task || c->pending)
			ui_text(top + 2, 2, W - 4, UI_DIM, false,
				"certifying a copy of the lane's network (training goes on)");
		return;
	}
	bool wide = W >= 150;
	int lw = wide ? 84 : W;
	int y = top + 1;
	y += layer_table(c, y, 0, lw);
	y += network_table(c, y, 0, lw);
	int panel_w = 28;
	if (wide) {
		/* the chart on the right, full height; the image under the tables */
		accuracy_chart(c, top + 1, lw + 2, bottom - top, W - lw - 2);
		image_panel(c, y + 1, 0, bottom - y, lw);
	} else {
		int h = bottom - y + 1;
		accuracy_chart(c, y, 0, h, W - panel_w - 1);
		image_panel(c, y, W - panel_w, h, panel_w);
	}
}

static void cert_status(struct ui_app *app, void *self, bool brief, char *buf, int cap)
{
	struct cert *c = self;
	int lane = c->have ? c->shown->lane : ui_race_focus(app);
	if (brief)
		snprintf(buf, (size_t)cap, "lane %d%s", lane + 1,
			 c->task || c->pending ? " computing" : "");
	else
		snprintf(buf, (size_t)cap, "lane %d %s: bounds, floors, radii%s", lane + 1,
			 lane_name(app, lane), c->task || c->pending ? " (computing)" : "");
}

static void cert_release(struct ui_app *app, void *self)
{
	(void)app;
	struct cert *c = self;
	stop_task(c);
	reap_dying(c, true, false);
	work_free(c->pending);
	c->pending = NULL;
	if (c->have)
		certreport_free(&c->rep);
	work_free(c->shown);
	c->shown = NULL;
	c->have = false;
	c->app = NULL;
}

const struct ui_screen *ui_cert_screen(struct ui_app *app)
{
	if (cs.app != app) {
		cert_release(app, &cs);
		memset(&cs, 0, sizeof cs);
		cs.app = app;
		cs.image = lab_controls(ui_app_lab(app)).digit;
		cs.screen = (struct ui_screen){
			.title = "Certificate",
			.guide = "rows: each layer's norms, cap, verdicts and gain floor; x floor: "
				 "how far each bound of the network sits above what search found; "
				 "chart: certified accuracy against L2 radius (c marks the image); "
				 "the image: its certified radius beside the eps that flips it",
			.keys = cert_keys,
			.nkeys = (int)(sizeof cert_keys / sizeof cert_keys[0]),
			.key = cert_key,
			.draw = cert_draw,
			.tick = cert_tick,
			.status = cert_status,
			.close = cert_release,
			.self = &cs,
		};
	} else {
		/* back in front: follow the image another screen chose */
		const struct sl_dataset *ds = lab_test_set(ui_app_lab(app));
		uint32_t d = ds->n ? lab_controls(ui_app_lab(app)).digit % ds->n : 0;
		if (d != cs.image) {
			cs.image = d;
			if (cs.have)
				start_image(&cs);
		}
	}
	return &cs.screen;
}
