/*
 * ui_race: the Train screen, a race of lanes training side by side.
 *
 * Panels, top to bottom: loss and accuracy against epochs (every lane in its
 * colour on one epoch axis; lines per step, o per epoch on the test set);
 * a table of each lane's clean, FGSM and PGD accuracy at the current eps and
 * its certified accuracy (also * on the accuracy curves) beside the focused
 * lane's per-layer norms against their caps; and the same test digit
 * attacked in every lane beside robust accuracy against eps.
 * Sizes follow the terminal: at 80x24 every panel fits (curves get six rows
 * or more), larger terminals get taller curves and larger digits.
 */
#include <curses.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "sectorlab/ui_draw.h"
#include "sectorlab/ui_screen.h"

enum {
	ACT_PAUSE, ACT_STEP, ACT_EPOCH, ACT_FASTER, ACT_SLOWER, ACT_LR_UP, ACT_LR_DOWN,
	ACT_RESET, ACT_MORE, ACT_EPS_UP, ACT_EPS_DOWN, ACT_NEXT, ACT_PREV, ACT_FOCUS,
	ACT_FOCUS_BACK, ACT_FULL, ACT_EDITOR, ACT_GHOST, ACT_SETUP,
};

static const struct ui_key race_keys[] = {
	{' ', "space", "pause or resume every lane", ACT_PAUSE, true},
	{'s', "s", "one step: pause, then train one batch in every lane", ACT_STEP, true},
	{'e', "e", "one epoch: pause, then train to the end of the epoch", ACT_EPOCH, true},
	{'n', "n", "next test digit (it stays until you move it)", ACT_NEXT, true},
	{'p', "p", "previous test digit", ACT_PREV, false},
	{'+', "+", "stronger attack: eps + 0.05 (figures follow at once)", ACT_EPS_UP, true},
	{'=', "=", NULL, ACT_EPS_UP, false}, /* + without shift */
	{'-', "-", "weaker attack: eps - 0.05", ACT_EPS_DOWN, true},
	{']', "]", "faster: more steps per second", ACT_FASTER, false},
	{'[', "[", "slower", ACT_SLOWER, false},
	{'>', ">", "learning rate x2", ACT_LR_UP, false},
	{'<', "<", "learning rate /2", ACT_LR_DOWN, false},
	{'m', "m", "10 more epochs (also after the run is done)", ACT_MORE, false},
	{'r', "r", "reset: every lane from the start, same seed (the run before stays as a dim ghost)",
	 ACT_RESET, true},
	{'g', "g", "show or hide the ghosts: each lane's run before its last restart", ACT_GHOST,
	 false},
	{KEY_RIGHT, "Right", "focus the next lane (bars, designer)", ACT_FOCUS, true},
	{KEY_LEFT, "Left", "focus the previous lane", ACT_FOCUS_BACK, false},
	{'f', "f", "the focused lane alone, full width (again: every lane)", ACT_FULL, true},
	{'a', "a", "the sector designer: caps for the focused lane (also 2)", ACT_EDITOR, true},
	{'o', "o", "what the lab trains: model, dataset, the focused lane's kind", ACT_SETUP, true},
};

static const int paces[] = {5, 10, 30, 100, 300, 0}; /* 0: full speed */
#define NPACES ((int)(sizeof paces / sizeof paces[0]))

struct race {
	struct ui_screen screen;
	struct ui_app *app;
	int nlanes;
	struct job_snapshot snap[LAB_MAX_LANES];
	int focus;
	bool full;
	bool hide_ghosts;
};

static struct race race; /* one race per process; large, so not on the stack */
static struct job_snapshot fresh;
static struct ui_plot plot;

int ui_race_focus(struct ui_app *app)
{
	(void)app;
	return race.focus;
}

void ui_race_set_focus(struct ui_app *app, int lane)
{
	if (lane >= 0 && lane < lab_lanes(ui_app_lab(app)))
		race.focus = lane;
}

/* ---- keys ------------------------------------------------------------------ */

static int pace_index(int pace)
{
	for (int i = 0; i < NPACES; i++)
		if (paces[i] == pace)
			return i;
	return 2;
}

static int race_key(struct ui_app *app, void *self, int action, int ch)
{
	struct race *r = self;
	(void)ch;
	struct lab *lab = ui_app_lab(app);
	struct lab_controls c = lab_controls(lab);
	struct sl_error err;
	switch (action) {
	case ACT_PAUSE: lab_set_paused(lab, !c.paused); break;
	case ACT_STEP: lab_step(lab); break;
	case ACT_EPOCH: lab_step_epoch(lab); break;
	case ACT_FASTER:
	case ACT_SLOWER: {
		int k = pace_index(c.pace) + (action == ACT_FASTER ? 1 : -1);
		lab_set_pace(lab, paces[k < 0 ? 0 : (k >= NPACES ? NPACES - 1 : k)]);
		break;
	}
	case ACT_LR_UP: lab_scale_lr(lab, 2); break;
	case ACT_LR_DOWN: lab_scale_lr(lab, 0.5); break;
	case ACT_MORE: lab_more_epochs(lab, 10); break;
	case ACT_RESET:
		if (lab_reset(lab, &err) != SL_OK)
			ui_app_say(app, "reset failed: %s", err.msg);
		else
			ui_app_say(app, "every lane starts again from seed %lu; dim lines: the run "
					"before (g hides them)",
				   (unsigned long)r->snap[0].seed);
		break;
	case ACT_GHOST: r->hide_ghosts = !r->hide_ghosts; break;
	case ACT_EPS_UP:
	case ACT_EPS_DOWN: {
		float e = c.eps + (action == ACT_EPS_UP ? 0.05f : -0.05f);
		lab_set_eps(lab, roundf(e * 100) / 100);
		break;
	}
	case ACT_NEXT: lab_set_digit(lab, c.digit + 1); break;
	case ACT_PREV: {
		uint32_t n = lab_test_set(lab)->n;
		lab_set_digit(lab, c.digit == 0 ? (n ? n - 1 : 0) : c.digit - 1);
		break;
	}
	case ACT_FOCUS: r->focus = (r->focus + 1) % r->nlanes; break;
	case ACT_FOCUS_BACK: r->focus = (r->focus + r->nlanes - 1) % r->nlanes; break;
	case ACT_FULL: r->full = !r->full; break;
	case ACT_EDITOR: ui_app_switch(app, UI_TAB_DESIGNER); break;
	case ACT_SETUP: ui_app_push(app, ui_setup_screen(app)); break;
	}
	return UI_DIRTY;
}

static int race_tick(struct ui_app *app, void *self)
{
	struct race *r = self;
	int flags = 0;
	for (int i = 0; i < r->nlanes; i++) {
		lab_snapshot(ui_app_lab(app), i, &fresh);
		if (memcmp(&fresh, &r->snap[i], sizeof fresh) != 0) {
			r->snap[i] = fresh;
			flags |= UI_DIRTY;
		}
	}
	return flags;
}

/* ---- panels ---------------------------------------------------------------- */

static enum ui_role lane_role(int lane)
{
	return (enum ui_role)(UI_LANE0 + lane);
}

/* The lanes drawn: all, or the focused one. */
static int shown(const struct race *r, int *lanes)
{
	if (r->full) {
		lanes[0] = r->focus;
		return 1;
	}
	for (int i = 0; i < r->nlanes; i++)
		lanes[i] = i;
	return r->nlanes;
}

static const char *lane_label(const struct ui_app *app, int lane)
{
	static const char *const names[] = {"vanilla", "L2", "spnorm", "authors", "cert+margin"};
	return names[lab_lane((struct lab *)ui_app_lab((struct ui_app *)app), lane)->kind];
}

const char *ui_race_lane_label(struct ui_app *app, int lane)
{
	return lane_label(app, lane);
}

static const char *state_word(struct ui_app *app, const struct race *r)
{
	int done = 0;
	for (int i = 0; i < r->nlanes; i++) {
		if (r->snap[i].state == JOB_FAILED)
			return "FAILED";
		done += r->snap[i].state == JOB_DONE;
	}
	if (done == r->nlanes)
		return "done (m: more epochs)";
	return lab_controls(ui_app_lab(app)).paused ? "PAUSED" : "training";
}

/* The header's part after the tab bar: the run, its state and the shared
 * controls; brief, the facts a class needs. */
static void race_status(struct ui_app *app, void *self, bool brief, char *buf, int cap)
{
	const struct race *r = self;
	const struct ui_context *ctx = ui_app_context(app);
	struct lab_controls c = lab_controls(ui_app_lab(app));
	const struct job_snapshot *s = &r->snap[0];
	double ips = 0;
	for (int i = 0; i < r->nlanes; i++)
		ips += r->snap[i].images_per_sec;
	char pace[32];
	if (c.pace > 0)
		snprintf(pace, sizeof pace, "%d steps/s", c.pace);
	else
		snprintf(pace, sizeof pace, "full speed");
	if (!brief)
		snprintf(buf, (size_t)cap,
			 "%s | %s | epoch %d/%d, step %ld | %s, %.1fk img/s | lr %.2g | seed %lu "
			 "| eps %.2f",
			 ctx->title, state_word(app, r), s->epoch, s->epochs, s->step, pace, ips / 1000,
			 s->lr, (unsigned long)s->seed, c.eps);
	else /* "done" without its hint */
		snprintf(buf, (size_t)cap, "%.*s  epoch %d/%d step %ld  eps %.2f",
			 (int)strcspn(state_word(app, r), " "), state_word(app, r), s->epoch, s->epochs,
			 s->step, c.eps);
}

/* x (in epochs) of stored point i of a per-step series. */
static double step_x(const struct job_series *s, int i, long steps_per_epoch)
{
	return ((double)i + 0.5) * s->stride / (double)(steps_per_epoch > 0 ? steps_per_epoch : 1);
}

static void add_range(const struct job_series *s, float *lo, float *hi)
{
	for (int i = 0; i < s->n; i++)
		if (isfinite(s->v[i])) {
			*lo = s->v[i] < *lo ? s->v[i] : *lo;
			*hi = s->v[i] > *hi ? s->v[i] : *hi;
		}
}

/* A per-step series as drawn: each point the mean of a window of about a
 * tenth of an epoch, so batch-to-batch noise does not hide the trend. */
static int smoothed(const struct job_series *s, long steps_per_epoch, float *out)
{
	int half = (int)(steps_per_epoch / 20 / (s->stride > 0 ? s->stride : 1));
	for (int i = 0; i < s->n; i++) {
		int a = i - half < 0 ? 0 : i - half, b = i + half >= s->n ? s->n - 1 : i + half;
		double sum = 0;
		for (int k = a; k <= b; k++)
			sum += s->v[k];
		out[i] = (float)(sum / (b - a + 1));
	}
	return s->n;
}

/* Tick labels for 0..xmax epochs under a plot of w cells starting at x. */
static void epoch_axis(int y, int x, int w, double xmax)
{
	int every = 1;
	while (xmax / every * 4 > w)
		every *= every == 1 ? 2 : (every == 2 ? 5 : 2);
	for (int e = 0; e <= (int)xmax; e += every) {
		int c = (int)lround(e / xmax * (2 * w - 1)) / 2;
		if (c + 3 < w - 6) /* clear of the word "epoch" */
			ui_textf(y, x + c, w - c, UI_DIM, false, "%d", e);
	}
	ui_text(y, x + w - 5, 5, UI_DIM, false, "epoch");
}

/* The loss chart's axes: lanes trained with plain cross-entropy share the
 * left one, lanes trained with another loss (the margin lane's lmt, whose
 * values sit on another scale) the right one, so no loss flattens another
 * and values on one axis compare. */
#define AXES 2

static int loss_axis(struct ui_app *app, int lane)
{
	return loss_is_plain(&lab_lane(ui_app_lab(app), lane)->train.loss) ? 0 : 1;
}

/* The range of an axis: [lo, hi] of its values, padded; [0, 1] for
 * accuracy. */
static void axis_range(float *lo, float *hi, bool accuracy)
{
	if (!(*hi >= *lo))
		*lo = 0, *hi = accuracy ? 1 : 2.5f;
	if (accuracy) {
		*lo = floorf(*lo * 10) / 10;
		*hi = 1;
	} else {
		float pad = (*hi - *lo) * 0.05f + 1e-3f;
		*lo = *lo - pad < 0 ? 0 : *lo - pad;
		*hi += pad;
	}
}

/* v[0..n) mapped from [lo, hi] onto [0, 1] (the plot's own axis). */
static const float *unit(const float *v, int n, float lo, float hi)
{
	static float out[JOB_HIST];
	for (int i = 0; i < n; i++)
		out[i] = (v[i] - lo) / (hi - lo);
	return out;
}

/* The loss chart's title: what each axis holds (a right axis comes with a
 * left one: epoch_chart moves a lone axis left). */
static void loss_title(struct ui_app *app, int y, int x, int w, const bool *used, int right_lane)
{
	int at = x + ui_text(y, x, w, UI_NORMAL, true, "loss ");
	if (!used[1]) {
		ui_text(y, at, x + w - at, UI_DIM, false,
			w >= 60 ? "lines: training; o: test set" : "o: test set");
		return;
	}
	const struct loss_config *lc = &lab_lane(ui_app_lab(app), right_lane)->train.loss;
	if (w >= 60)
		ui_textf(y, at, x + w - at, UI_DIM, false,
			 "left axis: cross-entropy, right axis: %s (tau %g, R %g); o: test set",
			 loss_kind_name(lc->kind), lc->tau, lc->radius);
	else
		ui_textf(y, at, x + w - at, UI_DIM, false, "left: ce, right: %s",
			 loss_kind_name(lc->kind));
}

/* Lane's ghost when it is drawn. */
static const struct job_ghost *ghost_of(const struct race *r, int lane)
{
	const struct job_ghost *g = &r->snap[lane].ghost;
	return g->have && !r->hide_ghosts ? g : NULL;
}

/* Loss (accuracy false) or accuracy against epochs, every shown lane, over
 * the ghosts of their runs before the last restart (dim). */
static void epoch_chart(struct ui_app *app, const struct race *r, int y, int x, int h, int w,
			bool accuracy)
{
	int lanes[LAB_MAX_LANES] = {0}, n = shown(r, lanes);
	double xmax = 1;
	float lo[AXES] = {INFINITY, INFINITY}, hi[AXES] = {-INFINITY, -INFINITY};
	bool used[AXES] = {false, false};
	int axis[LAB_MAX_LANES] = {0}, right_lane = 0;
	int gaxis[LAB_MAX_LANES] = {0};
	for (int k = 0; k < n; k++) {
		const struct job_snapshot *s = &r->snap[lanes[k]];
		double prog = s->steps_per_epoch ? (double)s->step / s->steps_per_epoch : 0;
		xmax = prog > xmax ? prog : xmax;
		int a = axis[k] = accuracy ? 0 : loss_axis(app, lanes[k]);
		if (a == 1 && !used[1])
			right_lane = lanes[k];
		used[a] = true;
		add_range(accuracy ? &s->train_acc : &s->loss, &lo[a], &hi[a]);
		add_range(accuracy ? &s->test_acc : &s->test_loss, &lo[a], &hi[a]);
		if (accuracy)
			add_range(&s->certified, &lo[a], &hi[a]);
		const struct job_ghost *g = ghost_of(r, lanes[k]);
		if (!g)
			continue;
		a = gaxis[k] = accuracy || g->loss_plain ? 0 : 1;
		if (a == 1 && !used[1])
			right_lane = lanes[k];
		used[a] = true;
		prog = g->steps_per_epoch ? (double)g->step / g->steps_per_epoch : 0;
		xmax = prog > xmax ? prog : xmax;
		add_range(accuracy ? &g->train_acc : &g->loss, &lo[a], &hi[a]);
		add_range(accuracy ? &g->test_acc : &g->test_loss, &lo[a], &hi[a]);
	}
	if (!used[0] && used[1]) { /* one axis: the left one */
		for (int k = 0; k < n; k++)
			axis[k] = gaxis[k] = 0;
		lo[0] = lo[1], hi[0] = hi[1], used[0] = true, used[1] = false;
	}
	xmax = ceil(xmax - 1e-9);
	for (int a = 0; a < AXES; a++)
		axis_range(&lo[a], &hi[a], accuracy);
	int label_w = 5, pw = w - label_w - 1 - (used[1] ? label_w + 1 : 0), ph = h - 2;
	if (accuracy) {
		ui_text(y, x, w, UI_NORMAL, true, "accuracy");
		double radius = r->snap[lanes[0]].cert_radius;
		if (radius > 0 && w < 60)
			ui_textf(y, x + 9, w - 9, UI_DIM, false, "o: test; *: certified r=%g", radius);
		else if (radius > 0)
			ui_textf(y, x + 9, w - 9, UI_DIM, false,
				 "lines: training; o: test set; *: certified at L2 radius %g", radius);
		else
			ui_text(y, x + 9, w - 9, UI_DIM, false, "lines: training; o: test set");
	} else {
		loss_title(app, y, x, w, used, right_lane);
	}
	if (pw < 4 || ph < 1)
		return;
	ui_plot_init(&plot, pw, ph, 0, xmax, 0, 1);
	static double xs[JOB_HIST];
	static float ys[JOB_HIST];
	for (int k = 0; k < n; k++) { /* ghosts first: the live curves draw over them */
		const struct job_ghost *g = ghost_of(r, lanes[k]);
		if (!g)
			continue;
		const struct job_series *line = accuracy ? &g->train_acc : &g->loss;
		for (int i = 0; i < line->n; i++)
			xs[i] = step_x(line, i, g->steps_per_epoch);
		int m = smoothed(line, g->steps_per_epoch, ys);
		ui_plot_line(&plot, xs, unit(ys, m, lo[gaxis[k]], hi[gaxis[k]]), m, UI_DIM);
	}
	for (int k = 0; k < n; k++) {
		const struct job_snapshot *s = &r->snap[lanes[k]];
		const struct job_series *line = accuracy ? &s->train_acc : &s->loss;
		for (int i = 0; i < line->n; i++)
			xs[i] = step_x(line, i, s->steps_per_epoch);
		int m = smoothed(line, s->steps_per_epoch, ys);
		ui_plot_line(&plot, xs, unit(ys, m, lo[axis[k]], hi[axis[k]]), m, lane_role(lanes[k]));
	}
	for (int k = 0; k < n; k++) {
		const struct job_snapshot *s = &r->snap[lanes[k]];
		const struct job_series *per = accuracy ? &s->test_acc : &s->test_loss;
		float l = lo[axis[k]], u = hi[axis[k]];
		for (int i = 0; i < per->n; i++)
			xs[i] = (double)(i + 1) * per->stride;
		ui_plot_marks(&plot, xs, unit(per->v, per->n, l, u), per->n, 'o',
			      lane_role(lanes[k]));
		if (!accuracy)
			continue;
		const struct job_series *cert = &s->certified;
		for (int i = 0; i < cert->n; i++)
			xs[i] = (double)(i + 1) * cert->stride;
		ui_plot_marks(&plot, xs, unit(cert->v, cert->n, l, u), cert->n, '*',
			      lane_role(lanes[k]));
	}
	if (accuracy) {
		ui_textf(y + 1, x, label_w, UI_DIM, false, "%4.0f%%", 100.0 * hi[0]);
		ui_textf(y + ph, x, label_w, UI_DIM, false, "%4.0f%%", 100.0 * lo[0]);
	} else {
		for (int a = 0; a < AXES; a++) {
			if (!used[a])
				continue;
			/* The right axis's labels in its lane's colour. */
			int lx = a == 0 ? x : x + label_w + 1 + pw + 1;
			enum ui_role role = a == 0 ? UI_DIM : lane_role(right_lane);
			ui_textf(y + 1, lx, label_w, role, false, "%5.2f", hi[a]);
			ui_textf(y + ph, lx, label_w, role, false, "%5.2f", lo[a]);
		}
	}
	ui_plot_draw(&plot, y + 1, x + label_w + 1);
	epoch_axis(y + h - 1, x + label_w + 1, pw, xmax);
}

/* The certified column's heading: "cert.5" for radius 0.5, "cert1" for 1. */
struct cert_head {
	char s[24];
};

static struct cert_head cert_heading(double radius)
{
	struct cert_head h;
	char r[16];
	snprintf(r, sizeof r, "%g", radius);
	snprintf(h.s, sizeof h.s, "cert%s", r[0] == '0' && r[1] == '.' ? r + 1 : r);
	return h;
}

static void pct(char *buf, size_t cap, bool have, double v)
{
	if (have)
		snprintf(buf, cap, "%5.1f%%", 100 * v);
	else
		snprintf(buf, cap, "%6s", "-");
}

/* Each lane's figures at the current eps, one row per lane under a heading;
 * with room (footnote set), a line saying what the figures are. */
static void lane_table(struct ui_app *app, const struct race *r, int y, int x, int w,
		       bool footnote)
{
	struct lab_controls c = lab_controls(ui_app_lab(app));
	int lanes[LAB_MAX_LANES] = {0}, n = shown(r, lanes);
	int attack_n = 0, cert_n = 0;
	double radius = r->snap[lanes[0]].cert_radius;
	for (int k = 0; k < n; k++) {
		attack_n = r->snap[lanes[k]].attack_n > attack_n ? r->snap[lanes[k]].attack_n : attack_n;
		cert_n = r->snap[lanes[k]].cert_n > cert_n ? r->snap[lanes[k]].cert_n : cert_n;
	}
	bool wide = w >= 58; /* room for the test loss */
	ui_textf(y, x, w, UI_NORMAL, true, " %-12s%-10s%6s %6s %6s %6s %6s", "lane", "caps", "clean",
		 "FGSM", "PGD", cert_heading(radius).s, wide ? "t.loss" : "");
	for (int k = 0; k < n; k++) {
		int i = lanes[k];
		const struct job_snapshot *s = &r->snap[i];
		const struct lab_lane_config *lc = lab_lane(ui_app_lab(app), i);
		bool fresh_fig = s->have_attack && fabsf(s->attack_eps - c.eps) < 1e-6f;
		char clean[16], fgsm[16], pgd[16], cert[16], loss[16] = "     -";
		pct(clean, sizeof clean, s->have_attack, s->clean_acc);
		pct(fgsm, sizeof fgsm, fresh_fig, s->robust_acc);
		pct(pgd, sizeof pgd, fresh_fig, s->pgd_robust_acc);
		pct(cert, sizeof cert, s->have_cert, s->cert_acc);
		if (s->test_loss.n)
			snprintf(loss, sizeof loss, "%6.3f", job_series_last(&s->test_loss, 0));
		bool uncertified = lc->train.mode == TRAIN_SPNORM && !s->rho_certified;
		const char *caps = lc->train.mode != TRAIN_SPNORM ? "none"
				   : uncertified                     ? "NOT cert."
								     : "certified";
		int row = y + 1 + k;
		ui_glyph(row, x, 0x25a0u, ui_lane_glyph[i], lane_role(i), true);
		ui_textf(row, x + 1, 12, UI_NORMAL, i == r->focus, "%-12s", lane_label(app, i));
		ui_textf(row, x + 13, 10, uncertified ? UI_BAD : UI_NORMAL, uncertified, "%-10s",
			 caps);
		if (s->state == JOB_FAILED)
			ui_text(row, x + 23, w - 23, UI_BAD, true, s->message);
		else if (s->restart_error[0])
			ui_textf(row, x + 23, w - 23, UI_BAD, true, "restart failed: %s",
				 s->restart_error);
		else
			ui_textf(row, x + 23, w - 23, UI_NORMAL, false, "%s %s %s %s %s", clean, fgsm,
				 pgd, cert, wide ? loss : "");
	}
	if (!footnote)
		return;
	if (attack_n)
		ui_textf(y + 1 + n, x, w, UI_DIM, false,
			 "%d test images; FGSM and PGD-%d, L-inf eps %.2f, true labels", attack_n,
			 JOB_PGD_STEPS, c.eps);
	else
		ui_text(y + 1 + n, x, w, UI_DIM, false, "figures after the first epoch");
	if (cert_n)
		ui_textf(y + 2 + n, x, w, UI_DIM, false,
			 "%s: of %d test images, certified at L2 radius %g", cert_heading(radius).s,
			 cert_n, radius);
}

/* A certified lane trained with plain cross-entropy: its loss stays near
 * ln 10 (the note says why). */
static bool loss_near_ln10(struct ui_app *app, const struct race *r, int lane)
{
	const struct job_snapshot *s = &r->snap[lane];
	return s->mode == TRAIN_SPNORM && s->rho_certified &&
	       loss_is_plain(&lab_lane(ui_app_lab(app), lane)->train.loss);
}

static double caps_product(const struct job_snapshot *s)
{
	double prod = 1;
	for (int i = 0; i < s->nlayers; i++)
		prod *= s->rho[i];
	return prod;
}

#define RAW_GLYPH 0x25c6u /* the raw estimate on a bar */
#define RAW_ASCII 'r'

/* The bars' heading: the lane, then what each glyph on a bar is. */
static void bars_legend(int y, int x, int w, const char *lane)
{
	bool wide = w >= 60;
	int at = x + ui_textf(y, x, w, UI_NORMAL, true, "%s", lane);
	at += ui_text(y, at, x + w - at, UI_DIM, false, wide ? ": ||W||_2 per layer: " : ": ");
	struct {
		unsigned wc;
		char ascii;
		enum ui_role role;
		const char *what;
	} key[] = {
		{0x2588u, '#', UI_OK, wide ? " in use  " : "use "},
		{0x2502u, '|', UI_NORMAL, wide ? " cap  " : "cap "},
		{RAW_GLYPH, RAW_ASCII, UI_WARN, wide ? " raw (power iteration)" : "raw"},
	};
	for (int k = 0; k < 3 && at + 2 < x + w; k++) {
		ui_glyph(y, at++, key[k].wc, key[k].ascii, key[k].role, key[k].role != UI_OK);
		at += ui_text(y, at, x + w - at, UI_DIM, false, key[k].what);
	}
}

/* The focused lane's per-layer norms against their caps, with history; on
 * the row under them, the bound behind its certified accuracy, or the short
 * form of the note on its loss when the note has no row of its own (note). */
static void norms_panel(struct ui_app *app, const struct race *r, int y, int x, int h, int w,
			bool note)
{
	const struct job_snapshot *s = &r->snap[r->focus];
	bars_legend(y, x, w, lane_label(app, r->focus));
	double top = 0;
	/* One linear scale for the lane's layers: the norms in use, the caps
	 * and the raw power-iteration estimates (a capped layer's raw weight
	 * is far above its cap: the bar shows how far). */
	for (int i = 0; i < s->nlayers; i++) {
		top = fmax(top, fmax(s->sigma_used[i], s->rho[i]));
		top = fmax(top, fmax(s->sigma_exact[i], s->sigma_hat[i]));
	}
	top = top > 0 ? top * 1.05 : 1;
	int name_w = 6, num_w = w >= 48 ? 21 : 12;
	int spark_w = w >= 30 ? (w - name_w - num_w) / 3 : 0;
	int bar_w = w - name_w - num_w - spark_w - 1;
	for (int i = 0; i < s->nlayers && i + 1 < h; i++) {
		int row = y + 1 + i;
		ui_textf(row, x, name_w, UI_NORMAL, false, "%-6s", s->layer_name[i]);
		ui_bar(row, x + name_w, bar_w, s->sigma_used[i], s->rho[i], top, s->over[i]);
		ui_bar_marker(row, x + name_w, bar_w, s->sigma_hat[i], top, RAW_GLYPH, RAW_ASCII,
			      UI_WARN);
		char num[48];
		if (s->rho[i] <= 0) /* uncapped: the raw weight is the one in use */
			snprintf(num, sizeof num, " %.3f", s->sigma_used[i]);
		else if (num_w >= 20)
			snprintf(num, sizeof num, " %.3f/%.3f raw %.2f", s->sigma_used[i], s->rho[i],
				 s->sigma_hat[i]);
		else
			snprintf(num, sizeof num, " %.3f/%.3f", s->sigma_used[i], s->rho[i]);
		ui_text(row, x + name_w + bar_w, num_w, UI_NORMAL, false, num);
		if (spark_w > 0) {
			/* From 0 to the larger of the cap and the history's top, so a
			 * layer held on its cap reads as a flat full line, not noise. */
			const struct job_series *hs = &s->sigma_hist[i];
			float lo = INFINITY, hi = s->rho[i];
			add_range(hs, &lo, &hi);
			ui_spark(row, x + w - spark_w, spark_w, hs->v, hs->n, 0, hi, UI_DIM);
		}
	}
	if (s->nlayers + 1 >= h)
		return;
	if (!note && loss_near_ln10(app, r, r->focus))
		ui_textf(y + 1 + s->nlayers, x, w, UI_DIM, false, "bound %.3g keeps loss ~ln 10",
			 caps_product(s));
	else if (s->have_cert)
		ui_textf(y + 1 + s->nlayers, x, w, UI_DIM, false, "cert. by %s bound %.3g",
			 s->cert_sector ? "sector" : "product", s->cert_gamma);
}

/* The same test digit and its FGSM adversarial in every lane; the clean
 * digit first when orig (a narrow terminal racing four lanes has no room
 * for it: the lanes' verdicts name the label). */
static void digits_panel(struct ui_app *app, const struct race *r, int y, int x, int h, int w,
			 int down, int up, bool orig)
{
	int lanes[LAB_MAX_LANES] = {0}, n = shown(r, lanes);
	const struct job_snapshot *s0 = &r->snap[lanes[0]];
	if (!s0->have_example) {
		ui_text(y, x, w, UI_DIM, false, "no test image");
		return;
	}
	int iw = s0->img_w / down * up, ih = s0->img_h / down / 2, col = iw + 1;
	(void)h;
	int first = orig ? 1 : 0;
	if (orig) {
		ui_textf(y, x, col, UI_NORMAL, true, "test #%u", s0->example_index);
		ui_image(y + 1, x, s0->orig, s0->img_c, s0->img_h, s0->img_w, down, up);
		ui_textf(y + 1 + ih, x, col, UI_NORMAL, false, "label %d", s0->label);
	}
	for (int k = 0; k < n && (k + first + 1) * col <= w + 1; k++) {
		const struct job_snapshot *s = &r->snap[lanes[k]];
		int cx = x + (k + first) * col;
		ui_text(y, cx, col, lane_role(lanes[k]), true, lane_label(app, lanes[k]));
		if (!s->have_example)
			continue;
		ui_image(y + 1, cx, s->adv, s->img_c, s->img_h, s->img_w, down, up);
		bool clean_ok = s->pred_clean == s->label, adv_ok = s->pred_adv == s->label;
		char what[48];
		enum ui_role role = UI_OK;
		if (!clean_ok) {
			snprintf(what, sizeof what, col > 16 ? "%d already wrong" : "already wrong",
				 s->pred_clean);
			role = UI_WARN;
		} else if (!adv_ok) {
			snprintf(what, sizeof what, orig ? "%d (fooled)" : "%d fooled (%d)",
				 s->pred_adv, s->label);
			role = UI_BAD;
		} else {
			snprintf(what, sizeof what, "%d kept", s->pred_adv);
		}
		ui_text(y + 1 + ih, cx, col - 1, role, true, what);
	}
}

/* Robust accuracy under FGSM against eps, every shown lane. */
static void eps_chart(const struct race *r, int y, int x, int h, int w)
{
	int lanes[LAB_MAX_LANES] = {0}, n = shown(r, lanes);
	ui_text(y, x, w, UI_NORMAL, true, w >= 24 ? "FGSM robust acc. vs eps" : "robust acc. vs eps");
	int label_w = 4, pw = w - label_w - 1, ph = h - 2;
	if (pw < 4 || ph < 1)
		return;
	ui_plot_init(&plot, pw, ph, 0, 0.05 * (JOB_EPS_POINTS - 1), 0, 1);
	double xs[JOB_EPS_POINTS];
	bool any = false;
	for (int k = 0; k < n; k++) {
		const struct job_snapshot *s = &r->snap[lanes[k]];
		if (!s->have_curve)
			continue;
		for (int i = 0; i < JOB_EPS_POINTS; i++)
			xs[i] = s->curve_eps[i];
		ui_plot_line(&plot, xs, s->curve_acc, JOB_EPS_POINTS, lane_role(lanes[k]));
		any = true;
	}
	ui_text(y + 1, x, label_w, UI_DIM, false, "100%");
	ui_text(y + ph, x, label_w, UI_DIM, false, "  0%");
	if (!any)
		ui_text(y + 1 + ph / 2, x + label_w + 1, pw, UI_DIM, false, "after epoch 1");
	ui_plot_draw(&plot, y + 1, x + label_w + 1);
	ui_text(y + h - 1, x + label_w + 1, pw, UI_DIM, false, "0");
	ui_text(y + h - 1, x + label_w + 1 + pw - 7, 7, UI_DIM, false, "eps 0.3");
}

/* Why the certified lane's loss stays high, in one line. */
static void certified_note(struct ui_app *app, const struct race *r, int y, int w)
{
	int lanes[LAB_MAX_LANES] = {0}, n = shown(r, lanes);
	for (int k = 0; k < n; k++) {
		if (!loss_near_ln10(app, r, lanes[k]))
			continue;
		ui_textf(y, 0, w, UI_DIM, false,
			 "%s's loss stays near ln 10: Lipschitz bound %.3g keeps its logits small",
			 lane_label(app, lanes[k]), caps_product(&r->snap[lanes[k]]));
		return;
	}
}

/* ---- layout ---------------------------------------------------------------- */

static void race_draw(struct ui_app *app, void *self)
{
	struct race *r = self;
	int lanes[LAB_MAX_LANES] = {0}, n = shown(r, lanes);
	int W = COLS, H = LINES - 2; /* rows 1 .. LINES - 2 */
	const struct job_snapshot *s0 = &r->snap[0];
	int img_w = s0->img_w ? s0->img_w : 28, img_h = s0->img_h ? s0->img_h : 28;
	/* Middle band: the table (heading, lanes, footnote when there is room)
	 * beside the norms (heading, layers), then the one-line note. */
	int norms_rows = s0->nlayers + 1;
	bool footnote = H >= 30;
	int table_rows = n + 1 + 2 * footnote;
	int mid = (table_rows > norms_rows ? table_rows : norms_rows) + 1;
	/* Digits: the largest size that leaves the curves 8 rows (20 when the
	 * digits grow past half size) and the eps chart 20 columns. */
	static const int sizes[][2] = {{1, 2}, {1, 1}, {2, 1}};
	int down = 2, up = 1;
	/* The clean digit's column when the smallest digits leave room for it. */
	bool orig = (n + 1) * (img_w / 2 + 1) + 20 <= W;
	int cols = n + orig;
	for (int k = 0; k < 3; k++) {
		int dw = img_w / sizes[k][0] * sizes[k][1] + 1, dh = img_h / sizes[k][0] / 2 + 2;
		if (cols * dw + 20 <= W && H - mid - dh >= (k < 2 ? 20 : 8)) {
			down = sizes[k][0], up = sizes[k][1];
			break;
		}
	}
	int digits_h = img_h / down / 2 + 2, digits_w = cols * (img_w / down * up + 1);
	int top_h = H - mid - digits_h;
	/* The curves keep six rows: else the note moves under the bars. */
	bool note = top_h >= 8 || norms_rows >= table_rows;
	if (!note)
		mid--, top_h++;
	/* Top band: loss | accuracy. */
	int half = W / 2;
	epoch_chart(app, r, 1, 0, top_h, half - 1, false);
	epoch_chart(app, r, 1, half, top_h, W - half, true);
	int my = 1 + top_h, table_w = W < 100 ? 51 : 64;
	lane_table(app, r, my, 0, table_w - 1, footnote);
	norms_panel(app, r, my, table_w, note ? mid - 1 : mid, W - table_w, note);
	if (note)
		certified_note(app, r, my + mid - 1, W);
	/* Bottom band: digits | robust accuracy against eps. */
	int by = my + mid;
	digits_panel(app, r, by, 0, digits_h, digits_w, down, up, orig);
	eps_chart(r, by, digits_w + 1, digits_h, W - digits_w - 1);
}

const struct ui_screen *ui_race_screen(struct ui_app *app)
{
	struct lab *lab = ui_app_lab(app);
	if (race.app != app) {
		memset(&race, 0, sizeof race);
		race.app = app;
		race.nlanes = lab_lanes(lab);
		/* The bars and the designer start on the first capped lane. */
		for (int i = race.nlanes - 1; i >= 0; i--)
			if (lab_lane(lab, i)->train.mode == TRAIN_SPNORM)
				race.focus = i;
		for (int i = 0; i < race.nlanes; i++)
			lab_snapshot(lab, i, &race.snap[i]);
		race.screen = (struct ui_screen){
			.title = "Train (the race)",
			.guide = "curves: loss and accuracy, each lane in its colour on one "
				 "epoch axis (lines: training, smoothed; o: the test set after "
				 "each epoch; *: certified at the radius named; dim: the run "
				 "before the lane's last restart; lanes trained with another loss "
				 "than cross-entropy on the loss chart's right axis); table: each "
				 "lane's clean, FGSM, PGD and certified accuracy at the eps in "
				 "the header; bars: the focused lane's ||W|| in use (filled) "
				 "against its cap (|) and the raw power-iteration estimate "
				 "(diamond, r without Unicode), sparklines their history; the "
				 "same test digit attacked in every lane; robust accuracy against "
				 "eps",
			.keys = race_keys,
			.nkeys = (int)(sizeof race_keys / sizeof race_keys[0]),
			.key = race_key,
			.draw = race_draw,
			.tick = race_tick,
			.status = race_status,
			.self = &race,
		};
	}
	return &race.screen;
}
