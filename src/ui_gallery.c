/*
 * ui_gallery: the Attack gallery tab, and its step-through (a modal screen).
 *
 * Top to bottom: the recipe, one setting under the cursor (Up/Down choose,
 * Left/Right change, presets one key away); where the network comes from;
 * a grid of test images, each as original | adversarial | perturbation
 * amplified around mid-grey, with its true label, clean and adversarial
 * predictions and the top three probabilities of each; then the sweep's
 * figures over N test images, or the progress of the work running.
 *
 * The work runs on the gallery's own copy of a lane's network (gallery.h,
 * lab_copy_net), one piece at a time as a task; the screen asks for it,
 * polls it in its tick, and Esc stops it.  A change of recipe recomputes
 * the grid (cancelling a grid in progress); the sweep runs on Enter.  The
 * step-through shows one image's attack step by step: the image, its
 * perturbation, the logits as bars and the loss along the steps.
 */
#include <curses.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sectorlab/export.h"
#include "sectorlab/gallery.h"
#include "sectorlab/ui_draw.h"
#include "sectorlab/ui_screen.h"

/* Where `x` writes, relative to the directory the lab was started in. */
#define EXPORT_DIR "sectorlab-gallery"

enum {
	ACT_FIELD_UP, ACT_FIELD_DOWN, ACT_LESS, ACT_MORE, ACT_PAPER, ACT_MADRY, ACT_SWEEP,
	ACT_SWEEP_N, ACT_PREV, ACT_NEXT, ACT_PAGE_BACK, ACT_PAGE, ACT_TRACE, ACT_EXPORT,
	ACT_REFRESH, ACT_LANE, ACT_STOP,
};

static const struct ui_key gallery_keys[] = {
	{KEY_UP, "Up", "the previous recipe setting", ACT_FIELD_UP, false},
	{KEY_DOWN, "Down", "the next recipe setting", ACT_FIELD_DOWN, false},
	{KEY_LEFT, "Left", "the setting under the cursor: smaller, or the previous choice",
	 ACT_LESS, false},
	{KEY_RIGHT, "Right", "the setting under the cursor: larger, or the next choice", ACT_MORE,
	 false},
	{'p', "p", "preset paper-code: L2 PGD, 100 steps of 2 eps/100, predicted labels, no clip",
	 ACT_PAPER, true},
	{'m', "m", "preset madry: L-inf PGD, eps 0.3, 40 steps of 0.01, random start", ACT_MADRY,
	 true},
	{'\n', "Enter", "sweep: robust accuracy, success rate and norms over N test images",
	 ACT_SWEEP, true},
	{'\r', "Enter", NULL, ACT_SWEEP, false},
	{KEY_ENTER, "Enter", NULL, ACT_SWEEP, false},
	{'n', "n", "N, the test images of the sweep: 100, 200, 500, ... all", ACT_SWEEP_N, false},
	{'.', ".", "focus the next image of the grid", ACT_NEXT, false},
	{',', ",", "focus the previous image", ACT_PREV, false},
	{KEY_NPAGE, "PgDn", "the next test images", ACT_PAGE, true},
	{KEY_PPAGE, "PgUp", "the previous test images", ACT_PAGE_BACK, false},
	{'t', "t", "step through the focused image's attack", ACT_TRACE, true},
	{'x', "x", "export the grid shown as PNGs (as attack --png-dir) and say where", ACT_EXPORT,
	 true},
	{'r', "r", "take the lane's latest network and attack again", ACT_REFRESH, true},
	{'l', "l", "attack the next lane's network", ACT_LANE, false},
	{27, "Esc", "stop the work running (grid, sweep, step-through, export)", ACT_STOP, true},
};

/* The recipe's settings, in the order shown. */
enum field {
	F_ATTACK, F_NORM, F_EPS, F_STEPS, F_STEP, F_RESTARTS, F_START, F_LABELS, F_CLIP, NFIELDS
};

static const float eps_inf[] = {0, 0.01f, 0.02f, 0.03f, 0.05f, 0.1f, 0.15f, 0.2f, 0.25f, 0.3f,
				0.4f, 0.5f};
static const float eps_l2[] = {0, 0.1f, 0.25f, 0.5f, 0.75f, 1, 1.5f, 2, 2.5f, 3, 4, 5};
static const int steps_list[] = {1, 2, 3, 5, 7, 10, 20, 40, 50, 100, 200, 500};
/* Step choices: K eps / steps for these K, then these absolute sizes. */
static const float travels[] = {1, 2, 2.5f, 5};
static const float sizes[] = {0.001f, 0.002f, 0.005f, 0.01f, 0.02f, 0.05f, 0.1f, 0.2f};
static const int sweep_ns[] = {100, 200, 500, 1000, 2000, 5000, 10000};
#define COUNT(a) ((int)(sizeof(a) / sizeof((a)[0])))

struct gallery_ui {
	struct ui_screen screen, trace_screen;
	struct ui_app *app;
	struct gallery *g;
	const struct sl_dataset *test; /* the gallery's copy, drawn */
	const void *lab_test;        /* the lab's test set it copied: compared, never read */
	struct attack_recipe r;
	int field;
	int first, focus, shown_cap; /* first image, focused item, items the layout holds */
	int sweep_n;
	int lane;                    /* whose network */
	/* The network copy: asked for (ticket), then taken at net_step. */
	long ticket;
	bool want_net, have_net;
	int net_lane;
	long net_step;
	/* Work asked for, started in tick once the gallery is free. */
	bool want_grid, want_sweep, want_trace, want_export;
	struct task_status st;       /* of the work started last */
	enum gallery_work work;
	char note[2 * PATH_MAX + 640]; /* the last work's outcome, for the status row */
	bool note_bad;
	/* The step-through. */
	int pos;                     /* entry shown */
	bool playing;
	double last_play;
};

static struct gallery_ui gu;

/* ---- the recipe ---------------------------------------------------------- */

static const char *attack_title(enum attack_kind k)
{
	return k == ATTACK_FGSM ? "FGSM" : k == ATTACK_FGM ? "FGM" : "PGD";
}

static const char *norm_title(enum attack_norm n)
{
	return n == ATTACK_NORM_INF ? "L-inf" : "L2";
}

/* The index in list (n floats, ascending) of the nearest value below (dir < 0)
 * or above (dir > 0) v, clamped to the ends. */
static int step_in(const float *list, int n, float v, int dir)
{
	if (dir > 0) {
		for (int i = 0; i < n; i++)
			if (list[i] > v * (1 + 1e-6f) + 1e-9f)
				return i;
		return n - 1;
	}
	for (int i = n - 1; i >= 0; i--)
		if (list[i] < v * (1 - 1e-6f) - 1e-9f)
			return i;
	return 0;
}

static int step_int(const int *list, int n, int v, int dir)
{
	if (dir > 0) {
		for (int i = 0; i < n; i++)
			if (list[i] > v)
				return list[i];
		return list[n - 1];
	}
	for (int i = n - 1; i >= 0; i--)
		if (list[i] < v)
			return list[i];
	return list[0];
}

/* The step choices as one list: travels first, then absolute sizes. */
static int step_choice(const struct attack_recipe *r)
{
	if (r->step_size > 0) {
		for (int i = 0; i < COUNT(sizes); i++)
			if (fabsf(sizes[i] - r->step_size) <= 1e-6f * sizes[i])
				return COUNT(travels) + i;
		return COUNT(travels) + step_in(sizes, COUNT(sizes), r->step_size, -1);
	}
	for (int i = 0; i < COUNT(travels); i++)
		if (fabsf(travels[i] - r->step_travel) < 1e-6f)
			return i;
	return 2;
}

static void set_step_choice(struct attack_recipe *r, int c)
{
	int n = COUNT(travels) + COUNT(sizes);
	c = c < 0 ? 0 : (c >= n ? n - 1 : c);
	if (c < COUNT(travels)) {
		r->step_size = 0;
		r->step_travel = travels[c];
	} else {
		r->step_size = sizes[c - COUNT(travels)];
	}
}

/* A one-step attack's settings, as attack_recipe_check wants them. */
static void one_step(struct attack_recipe *r)
{
	r->steps = 1;
	r->step_size = 0;
	r->step_travel = 1;
	r->random_start = false;
	r->restarts = 1;
	r->early_stop = false;
}

static bool pgd_only(enum field f)
{
	return f == F_STEPS || f == F_STEP || f == F_RESTARTS || f == F_START;
}

/* Change field f of r by dir (-1, +1).  Returns false, with why, when the
 * setting does not apply. */
static bool change(struct attack_recipe *r, enum field f, int dir, char *why, size_t cap)
{
	if (pgd_only(f) && r->kind != ATTACK_PGD) {
		snprintf(why, cap, "%s takes one step of eps: steps, step size, restarts and random "
				   "start are PGD's", attack_title(r->kind));
		return false;
	}
	switch (f) {
	case F_ATTACK: {
		enum attack_kind k = (enum attack_kind)((r->kind + 3 + dir) % 3);
		if (k == ATTACK_PGD) {
			struct attack_recipe p = attack_recipe_pgd(r->norm, r->eps, 40);
			p.labels = r->labels;
			p.clip = r->clip;
			*r = p;
		} else {
			r->kind = k;
			r->norm = k == ATTACK_FGSM ? ATTACK_NORM_INF : ATTACK_NORM_2;
			one_step(r);
		}
		break;
	}
	case F_NORM:
		r->norm = r->norm == ATTACK_NORM_INF ? ATTACK_NORM_2 : ATTACK_NORM_INF;
		if (r->kind != ATTACK_PGD) /* the one-step attack of that norm */
			r->kind = r->norm == ATTACK_NORM_INF ? ATTACK_FGSM : ATTACK_FGM;
		break;
	case F_EPS: {
		const float *list = r->norm == ATTACK_NORM_INF ? eps_inf : eps_l2;
		int n = r->norm == ATTACK_NORM_INF ? COUNT(eps_inf) : COUNT(eps_l2);
		r->eps = list[step_in(list, n, r->eps, dir)];
		break;
	}
	case F_STEPS: r->steps = step_int(steps_list, COUNT(steps_list), r->steps, dir); break;
	case F_STEP: set_step_choice(r, step_choice(r) + dir); break;
	case F_RESTARTS:
		r->restarts += dir;
		r->restarts = r->restarts < 1 ? 1 : (r->restarts > 20 ? 20 : r->restarts);
		break;
	case F_START: r->random_start = !r->random_start; break;
	case F_LABELS:
		r->labels = r->labels == ATTACK_LABELS_TRUE ? ATTACK_LABELS_PRED : ATTACK_LABELS_TRUE;
		break;
	case F_CLIP: r->clip = !r->clip; break;
	default: break;
	}
	return true;
}

/* Field f as "name value" for the recipe rows. */
static void field_text(const struct attack_recipe *r, enum field f, char *buf, size_t cap)
{
	char num[32], num2[32];
	bool na = pgd_only(f) && r->kind != ATTACK_PGD;
	switch (f) {
	case F_ATTACK: snprintf(buf, cap, "attack %s", attack_title(r->kind)); break;
	case F_NORM: snprintf(buf, cap, "norm %s", norm_title(r->norm)); break;
	case F_EPS:
		attack_format_float(r->eps, num, sizeof num);
		snprintf(buf, cap, "eps %s", num);
		break;
	case F_STEPS:
		snprintf(buf, cap, na ? "steps 1" : "steps %d", r->steps);
		break;
	case F_STEP:
		attack_format_float(attack_step_size(r), num, sizeof num);
		if (na)
			snprintf(buf, cap, "step eps");
		else if (r->step_size > 0)
			snprintf(buf, cap, "step %s", num);
		else {
			attack_format_float(r->step_travel, num2, sizeof num2);
			snprintf(buf, cap, "step %seps/%d=%.3g", num2, r->steps, attack_step_size(r));
		}
		break;
	case F_RESTARTS: snprintf(buf, cap, "restarts %d", na ? 1 : r->restarts); break;
	case F_START:
		snprintf(buf, cap, "start %s", r->random_start && !na ? "random" : "clean");
		break;
	case F_LABELS:
		snprintf(buf, cap, "labels %s", r->labels == ATTACK_LABELS_TRUE ? "true" : "pred");
		break;
	case F_CLIP: snprintf(buf, cap, "clip %s", r->clip ? "[-.5,.5]" : "off"); break;
	default: buf[0] = '\0';
	}
}

/* ---- the work ------------------------------------------------------------ */

/* The gallery for the lane's network and the lab's test set, made (or
 * made again, when the lab's network or data changed) while no work runs. */
static bool ensure_gallery(struct gallery_ui *u)
{
	struct lab *lab = ui_app_lab(u->app);
	const struct sl_dataset *test = lab_test_set(lab);
	if (u->g && u->lab_test == test)
		return true;
	if (u->g && gallery_busy(u->g))
		return false;
	gallery_free(u->g);
	u->g = NULL;
	u->test = NULL;
	struct sl_error err;
	if (gallery_new(&lab_lane(lab, u->lane)->train.arch, test, &u->g, &err) != SL_OK) {
		snprintf(u->note, sizeof u->note, "no gallery: %s", err.msg);
		u->note_bad = true;
		return false;
	}
	u->lab_test = test;
	u->test = gallery_test_set(u->g);
	u->have_net = false;
	u->want_net = true;
	u->ticket = 0;
	return true;
}

/* Ask for a fresh copy of the lane's network, then the grid on it. */
static void renew_net(struct gallery_ui *u)
{
	u->want_net = true;
	u->ticket = 0;
	u->want_grid = true;
}

static int shown_count(const struct gallery_ui *u)
{
	int n = u->shown_cap < 1 ? 1 : u->shown_cap;
	return n > GALLERY_MAX_SHOWN ? GALLERY_MAX_SHOWN : n;
}

/* Take the network once the lane's worker has served the ticket. */
static int take_net(struct gallery_ui *u)
{
	struct lab *lab = ui_app_lab(u->app);
	struct sl_error err;
	if (u->ticket == 0)
		u->ticket = lab_request_net(lab, u->lane);
	bool ready = false;
	long step = 0;
	sl_status st = lab_copy_net(lab, u->lane, u->ticket, gallery_net(u->g), &ready, &step, &err);
	if (st == SL_ERR_ARG) {
		/* the lane's network changed its layers: a gallery for the new one */
		gallery_free(u->g);
		u->g = NULL;
		u->test = NULL;
		u->lab_test = NULL;
		return UI_DIRTY;
	}
	if (st != SL_OK) {
		snprintf(u->note, sizeof u->note, "cannot copy lane %d's network: %s", u->lane + 1,
			 err.msg);
		u->note_bad = true;
		u->want_net = false;
		return UI_DIRTY;
	}
	if (!ready)
		return 0;
	u->want_net = false;
	u->have_net = true;
	u->net_lane = u->lane;
	u->net_step = step;
	return UI_DIRTY;
}

/* What ended: its outcome in a line. */
static void ended(struct gallery_ui *u)
{
	struct task_status *st = &u->st;
	u->note_bad = st->state != TASK_DONE;
	if (st->state == TASK_CANCELLED) {
		/* a grid stopped for a newer one says nothing */
		if (u->work == GALLERY_GRID && u->want_grid)
			u->note[0] = '\0';
		else
			snprintf(u->note, sizeof u->note, "stopped (%s)", st->what);
		return;
	}
	if (st->state == TASK_FAILED) {
		snprintf(u->note, sizeof u->note, "failed: %s", st->message);
		return;
	}
	u->note[0] = '\0';
	if (u->work == GALLERY_EXPORT) {
		const char *dir;
		const struct export_summary *s = gallery_exported(u->g, &dir);
		char where[PATH_MAX];
		if (!realpath(dir, where))
			snprintf(where, sizeof where, "%s", dir);
		const char *slash = strrchr(s->grid, '/');
		snprintf(u->note, sizeof u->note,
			 "wrote %d images x 3 PNGs and %s to %s/; 8-bit re-check: %d of %d fooling "
			 "PNGs still fool", s->files, slash ? slash + 1 : s->grid, where, s->still_fooled,
			 s->fooled);
	}
	if (u->work == GALLERY_TRACE) {
		u->pos = 0;
		u->playing = false;
	}
}

static void start(struct gallery_ui *u, enum gallery_work w)
{
	struct sl_error err;
	sl_status st = SL_OK;
	switch (w) {
	case GALLERY_GRID:
		st = gallery_start_grid(u->g, &u->r, u->first, shown_count(u), &err);
		u->want_grid = false;
		break;
	case GALLERY_SWEEP:
		st = gallery_start_sweep(u->g, &u->r, u->sweep_n, &err);
		u->want_sweep = false;
		break;
	case GALLERY_TRACE:
		st = gallery_start_trace(u->g, u->focus, &err);
		u->want_trace = false;
		break;
	case GALLERY_EXPORT:
		st = gallery_start_export(u->g, EXPORT_DIR, &err);
		u->want_export = false;
		break;
	default: return;
	}
	if (st != SL_OK) {
		snprintf(u->note, sizeof u->note, "%s", err.msg);
		u->note_bad = true;
		return;
	}
	u->work = w;
	gallery_poll(u->g, &u->st);
}

static int gallery_tick(struct ui_app *app, void *self)
{
	struct gallery_ui *u = self;
	(void)app;
	if (!ensure_gallery(u))
		return 0;
	int flags = 0;
	if (gallery_busy(u->g)) {
		struct task_status st;
		gallery_poll(u->g, &st);
		if (st.done != u->st.done || st.state != u->st.state ||
		    (int)st.seconds != (int)u->st.seconds || strcmp(st.what, u->st.what) != 0)
			flags |= UI_DIRTY;
		u->st = st;
		if (st.state != TASK_RUNNING)
			ended(u);
		if (gallery_busy(u->g))
			return flags;
	}
	if (u->want_net)
		flags |= take_net(u);
	if (!u->g || !u->have_net || u->want_net)
		return flags;
	/* The grid holds as many images as the layout shows (known once drawn;
	 * a resize changes it). */
	if (u->shown_cap == 0)
		return flags | UI_DIRTY;
	const struct gallery_grid *grid = gallery_grid(u->g);
	if (grid && grid->n != shown_count(u))
		u->want_grid = true;
	/* One piece at a time: the grid first (it is what the others show). */
	if (u->want_grid)
		start(u, GALLERY_GRID);
	else if (u->want_trace)
		start(u, GALLERY_TRACE);
	else if (u->want_export)
		start(u, GALLERY_EXPORT);
	else if (u->want_sweep)
		start(u, GALLERY_SWEEP);
	else
		return flags;
	return flags | UI_DIRTY;
}

/* ---- keys ---------------------------------------------------------------- */

/* A new recipe: the grid again (a grid in progress is stopped for it). */
static void recipe_changed(struct gallery_ui *u)
{
	u->want_grid = true;
	if (u->g && gallery_busy(u->g) && u->work == GALLERY_GRID)
		gallery_cancel(u->g);
}

static int gallery_key(struct ui_app *app, void *self, int action, int ch)
{
	struct gallery_ui *u = self;
	(void)ch;
	const struct gallery_grid *grid = u->g ? gallery_grid(u->g) : NULL;
	int n = grid ? grid->n : shown_count(u);
	uint32_t total = u->test ? u->test->n : 1;
	switch (action) {
	case ACT_FIELD_UP: u->field = (u->field + NFIELDS - 1) % NFIELDS; break;
	case ACT_FIELD_DOWN: u->field = (u->field + 1) % NFIELDS; break;
	case ACT_LESS:
	case ACT_MORE: {
		char why[160];
		if (change(&u->r, (enum field)u->field, action == ACT_MORE ? 1 : -1, why, sizeof why))
			recipe_changed(u);
		else
			ui_app_say(app, "%s", why);
		break;
	}
	case ACT_PAPER:
	case ACT_MADRY: {
		float eps = u->r.eps;
		attack_preset(action == ACT_PAPER ? "paper-code" : "madry", &u->r, NULL);
		if (action == ACT_PAPER) /* the preset leaves eps to the sweep: keep ours */
			u->r.eps = eps > 0 ? eps : 0.5f;
		recipe_changed(u);
		ui_app_say(app, "preset %s", action == ACT_PAPER ? "paper-code" : "madry");
		break;
	}
	case ACT_SWEEP: u->want_sweep = true; break;
	case ACT_SWEEP_N: {
		/* 100, 200, 500, ... below the test set's size, then all, then 100 */
		int next = 0;
		for (int i = 0; i < COUNT(sweep_ns) && u->sweep_n > 0; i++)
			if (sweep_ns[i] > u->sweep_n) {
				next = sweep_ns[i] < (int)total ? sweep_ns[i] : 0;
				break;
			}
		if (u->sweep_n == 0)
			next = sweep_ns[0] < (int)total ? sweep_ns[0] : 0;
		u->sweep_n = next;
		break;
	}
	case ACT_NEXT: u->focus = (u->focus + 1) % (n > 0 ? n : 1); break;
	case ACT_PREV: u->focus = (u->focus + n - 1) % (n > 0 ? n : 1); break;
	case ACT_PAGE:
	case ACT_PAGE_BACK: {
		long f = u->first + (action == ACT_PAGE ? n : -n);
		u->first = (int)(((f % (long)total) + (long)total) % (long)total);
		u->focus = 0;
		recipe_changed(u);
		break;
	}
	case ACT_TRACE: {
		int item;
		if (u->g && gallery_trace(u->g, &item) && item == u->focus && !u->want_grid) {
			u->pos = 0;
		} else if (!grid) {
			ui_app_say(app, "no images yet: wait for the grid");
			break;
		} else {
			u->want_trace = true;
		}
		ui_app_push(app, &u->trace_screen);
		break;
	}
	case ACT_EXPORT:
		if (!grid)
			ui_app_say(app, "nothing to export yet: wait for the grid");
		else
			u->want_export = true;
		break;
	case ACT_REFRESH: renew_net(u); break;
	case ACT_LANE:
		u->lane = (u->lane + 1) % lab_lanes(ui_app_lab(app));
		renew_net(u);
		break;
	case ACT_STOP:
		u->want_sweep = u->want_trace = u->want_export = false;
		if (u->g && gallery_busy(u->g))
			gallery_cancel(u->g);
		else
			ui_app_say(app, "nothing running");
		break;
	}
	return UI_DIRTY;
}

/* ---- drawing ------------------------------------------------------------- */

static const char *lane_name(struct ui_app *app, int lane)
{
	static const char *const names[] = {"vanilla", "L2", "spnorm", "authors", "cert+margin"};
	return names[lab_lane(ui_app_lab(app), lane)->kind];
}

/* Class names for the ten classes of a colour dataset (CIFAR-10), short. */
static const char *class_name(const struct sl_dataset *ds, int c, char *buf, size_t cap)
{
	static const char *const cifar[] = {"plane", "car", "bird", "cat", "deer",
					    "dog", "frog", "horse", "ship", "truck"};
	if (ds && ds->c == 3 && ds->classes == 10 && c >= 0 && c < 10)
		snprintf(buf, cap, "%s", cifar[c]);
	else
		snprintf(buf, cap, "%d", c);
	return buf;
}

static uint8_t bytes[3][3 * 32 * 32 * 4]; /* orig, adv, pert of the image drawn */

/* x (dim) on the network's scale to bytes, as the PNGs store it. */
static const uint8_t *to_bytes(const float *x, int dim, int slot)
{
	for (int k = 0; k < dim && k < (int)sizeof bytes[0]; k++)
		bytes[slot][k] = data_to_byte(x[k]);
	return bytes[slot];
}

static const uint8_t *pert_bytes(const float *x0, const float *adv, int dim, double *m)
{
	static float pert[3 * 32 * 32 * 4];
	if (dim > (int)(sizeof pert / sizeof pert[0]))
		dim = (int)(sizeof pert / sizeof pert[0]);
	*m = export_perturbation(x0, adv, (size_t)dim, pert);
	return to_bytes(pert, dim, 2);
}

/* Top three of p as bars: "7 ###### .98", the true class in UI_OK. */
static void top3(int y, int x, int w, const float *p, int classes, int label,
		 const struct sl_dataset *ds)
{
	int top[3];
	gallery_top(p, classes, 3, top);
	bool names = ds && ds->c == 3;
	int name_w = names ? 5 : 1, bar_w = w - name_w - 5;
	for (int j = 0; j < 3 && top[j] >= 0; j++) {
		char name[16];
		class_name(ds, top[j], name, sizeof name);
		ui_textf(y + j, x, name_w, top[j] == label ? UI_OK : UI_NORMAL, top[j] == label,
			 "%-*s", name_w, name);
		if (bar_w > 0)
			ui_bar(y + j, x + name_w + 1, bar_w, p[top[j]], 0, 1, top[j] != label);
		char prob[8];
		snprintf(prob, sizeof prob, p[top[j]] >= 0.995f ? "1.0" : ".%02d",
			 (int)lroundf(p[top[j]] * 100));
		ui_text(y + j, x + w - 3, 3, UI_NORMAL, false, prob);
	}
}

/* Image sizes: every `down`-th pixel; a cell is one pixel wide, two tall. */
struct layout {
	int down, iw, ih;      /* image cells */
	int text_w;            /* the text beside the three images */
	int block_w, block_h;  /* one item */
	int cols, rows;        /* items across and down */
};

static struct layout plan(const struct sl_dataset *ds, int w, int h)
{
	struct layout best = {0};
	int img_w = ds ? (int)ds->w : 28, img_h = ds ? (int)ds->h : 28;
	for (int down = 1; down <= 2; down++) {
		struct layout l = {.down = down};
		l.iw = (img_w + down - 1) / down;
		l.ih = (img_h + 2 * down - 1) / (2 * down);
		l.text_w = 80 - 3 * (l.iw + 1) - 1 < 34 ? 80 - 3 * (l.iw + 1) - 1 : 34;
		l.text_w = l.text_w < 24 ? 24 : l.text_w;
		l.block_w = 3 * (l.iw + 1) + l.text_w + 1;
		l.block_h = (l.ih > 6 ? l.ih : 6) + (down == 1);
		l.cols = w / l.block_w;
		l.rows = h / l.block_h;
		/* The large images only when they still show four items. */
		if (down == 1 && l.cols * l.rows < 4)
			continue;
		if (l.cols * l.rows > 0)
			return l;
		best = l;
	}
	if (best.cols < 1)
		best.cols = 1;
	if (best.rows < 1)
		best.rows = 1;
	return best;
}

static void draw_item(struct gallery_ui *u, const struct gallery_item *it, const struct layout *l,
		      int y, int x, bool focused)
{
	const struct sl_dataset *ds = u->test;
	int c = (int)ds->c, ih = (int)ds->h, iw = (int)ds->w, dim = c * ih * iw;
	double m;
	ui_image(y, x, to_bytes(it->x0, dim, 0), c, ih, iw, l->down, 1);
	ui_image(y, x + l->iw + 1, to_bytes(it->adv, dim, 1), c, ih, iw, l->down, 1);
	ui_image(y, x + 2 * (l->iw + 1), pert_bytes(it->x0, it->adv, dim, &m), c, ih, iw, l->down,
		 1);
	int tx = x + 3 * (l->iw + 1), tw = l->text_w;
	char lab[16], pc[16], pa[16];
	class_name(ds, it->label, lab, sizeof lab);
	class_name(ds, it->pred_clean, pc, sizeof pc);
	class_name(ds, it->pred_adv, pa, sizeof pa);
	ui_textf(y, tx, tw, UI_NORMAL, true, "%s#%d true %s", focused ? ">" : "", it->index, lab);
	bool right = it->pred_clean == it->label, fooled = right && it->pred_adv != it->label;
	const char *verdict = !right ? "was wrong" : fooled ? "FOOLED" : "held";
	ui_textf(y + 1, tx, tw, !right ? UI_WARN : fooled ? UI_BAD : UI_OK, true,
		 "clean %s  adv %s %s", pc, pa, verdict);
	/* the perturbation image's gain: 0.5 / m on the network's scale */
	if (m > 0)
		ui_textf(y + 2, tx, tw, UI_DIM, false, "L2 %.3f Linf %.3f pert x%.3g", it->l2,
			 it->linf, 0.5 / m);
	else
		ui_text(y + 2, tx, tw, UI_DIM, false, "unchanged");
	int half = (tw - 1) / 2;
	top3(y + 3, tx, half, it->p_clean, (int)ds->classes, it->label, ds);
	top3(y + 3, tx + half + 1, tw - half - 1, it->p_adv, (int)ds->classes, it->label, ds);
}

/* The recipe's settings over rows from y, the one under the cursor in
 * reverse; returns the rows used. */
static int draw_recipe(struct gallery_ui *u, int y, int w)
{
	int row = 0, x = 0;
	for (int f = 0; f < NFIELDS; f++) {
		char text[64];
		field_text(&u->r, (enum field)f, text, sizeof text);
		int len = (int)strlen(text);
		if (x > 0 && x + len > w) {
			row++;
			x = 0;
		}
		bool na = pgd_only((enum field)f) && u->r.kind != ATTACK_PGD;
		if (f == u->field)
			attron(A_REVERSE);
		ui_text(y + row, x, len, na ? UI_DIM : UI_NORMAL, f == u->field, text);
		if (f == u->field)
			attroff(A_REVERSE);
		x += len + 2;
	}
	return row + 1;
}

/* Text wrapped at spaces into at most rows rows of w from (y, 0); returns
 * the rows used. */
static int wrapped(int y, int w, int rows, enum ui_role role, bool bold, const char *text)
{
	int used = 0;
	while (*text && used < rows) {
		int n = (int)strlen(text);
		if (n > w && used + 1 < rows) {
			n = w;
			while (n > w / 2 && text[n] != ' ')
				n--;
		}
		char line[512];
		snprintf(line, sizeof line, "%.*s", n < (int)sizeof line - 1 ? n : (int)sizeof line - 1,
			 text);
		ui_text(y + used++, 0, w, role, bold, line);
		text += n;
		while (*text == ' ')
			text++;
	}
	return used;
}

/* The progress of the running work, or the last outcome (up to two rows);
 * returns the rows used. */
static int draw_status(struct gallery_ui *u, int y, int w)
{
	if (u->g && gallery_busy(u->g)) {
		static const char *const names[] = {"", "grid", "sweep", "step-through", "export"};
		int x = ui_textf(y, 0, w, UI_WARN, true, "%s: ", names[u->work]);
		int bar = w / 5;
		if (u->st.total > 0) {
			ui_bar(y, x, bar, u->st.done, 0, u->st.total, false);
			x += bar + 1;
		}
		ui_textf(y, x, w - x, UI_NORMAL, false, "%.0f/%.0f  %.1f s  %s (Esc stops)",
			 u->st.done, u->st.total, u->st.seconds, u->st.what);
		return 1;
	}
	if (u->want_net) {
		ui_textf(y, 0, w, UI_DIM, false, "waiting for lane %d's network ...", u->lane + 1);
		return 1;
	}
	if (u->note[0])
		return wrapped(y, w, 2, u->note_bad ? UI_BAD : UI_OK, false, u->note);
	return 0;
}

/* The sweep's figures, two rows. */
static void draw_sweep(struct gallery_ui *u, int y, int w)
{
	const struct gallery_sweep *s = u->g ? gallery_sweep(u->g) : NULL;
	char nbuf[32];
	if (u->sweep_n > 0)
		snprintf(nbuf, sizeof nbuf, "%d", u->sweep_n);
	else
		snprintf(nbuf, sizeof nbuf, "all %u", u->test ? u->test->n : 0);
	if (!s) {
		ui_textf(y, 0, w, UI_DIM, false,
			 "Enter: sweep this recipe over N = %s test images (n: change N)", nbuf);
		return;
	}
	const struct attack_result *a = &s->result;
	char describe[256];
	attack_recipe_describe(&s->recipe, true, describe, sizeof describe);
	bool same = memcmp(&s->recipe, &u->r, sizeof u->r) == 0;
	int x = ui_textf(y, 0, w, UI_NORMAL, true, "%d images: clean %.1f%%  robust %.1f%%  "
			 "success %.1f%% of %d correct", a->n, 100 * a->clean_accuracy,
			 100 * a->robust_accuracy, 100 * a->attack_success_rate, a->clean_correct);
	if (x + 24 < w && a->fooled)
		ui_textf(y, x, w - x, UI_NORMAL, false, "  8-bit: %d of %d still fool",
			 a->fooled_8bit, a->fooled);
	char flags[128] = "";
	if (a->flags)
		attack_flags_describe(a->flags, flags, sizeof flags);
	x = ui_textf(y + 1, 0, w, UI_NORMAL, false, "L2 mean %.3f max %.3f  Linf mean %.3f max "
		     "%.3f  %.0f img/s", a->l2_mean, a->l2_max, a->linf_mean, a->linf_max,
		     a->images_per_second);
	if (flags[0])
		x += ui_textf(y + 1, x, w - x, UI_WARN, true, "  CHECK: %s", flags);
	ui_textf(y + 1, x, w - x, same ? UI_DIM : UI_WARN, !same, "  %s%s",
		 same ? "" : "OTHER RECIPE: ", describe);
}

static void gallery_draw(struct ui_app *app, void *self)
{
	struct gallery_ui *u = self;
	(void)app;
	int W = COLS, top = 1, bottom = LINES - 2; /* rows 1 .. LINES - 2 */
	int y = top + draw_recipe(u, top, W);
	/* The bottom: the work's status or outcome (two rows) and the sweep's
	 * figures (two rows). */
	int status_y = bottom - 3;
	struct layout l = plan(u->test, W, status_y - y);
	u->shown_cap = l.cols * l.rows;
	/* With a row to spare, what the three images of each item are. */
	if (status_y - y - l.rows * l.block_h >= 1) {
		ui_textf(y, 0, W, UI_DIM, false, "%-*s %-*s %-*s images #%d.. of %u", l.iw,
			 "original", l.iw, "adversarial", l.iw, "perturbation", u->first,
			 u->test ? u->test->n : 0);
		y++;
	}
	const struct gallery_grid *grid = u->g ? gallery_grid(u->g) : NULL;
	if (!grid) {
		ui_text(y + 1, 2, W - 4, UI_DIM, false, "attacking the first images ...");
	} else {
		if (u->focus >= grid->n)
			u->focus = 0;
		for (int i = 0; i < grid->n && i < l.cols * l.rows; i++) {
			int gy = y + (i / l.cols) * l.block_h, gx = (i % l.cols) * l.block_w;
			draw_item(u, &grid->item[i], &l, gy, gx, i == u->focus);
		}
		if (memcmp(&grid->recipe, &u->r, sizeof u->r) != 0 || grid->item[0].index != u->first)
			ui_text(y, W - 12, 12, UI_WARN, true, " (updating) ");
	}
	int used = draw_status(u, status_y, W);
	draw_sweep(u, status_y + (used > 1 ? 2 : 1), W);
}

static void gallery_status(struct ui_app *app, void *self, bool brief, char *buf, int cap)
{
	struct gallery_ui *u = self;
	char eps[32], net[96] = "";
	attack_format_float(u->r.eps, eps, sizeof eps);
	if (u->have_net && u->net_lane == u->lane)
		snprintf(net, sizeof net, brief ? " @%ld" : " at step %ld", u->net_step);
	if (brief)
		snprintf(buf, (size_t)cap, "%s %s eps %s | lane %d%s", attack_title(u->r.kind),
			 norm_title(u->r.norm), eps, u->lane + 1, net);
	else
		snprintf(buf, (size_t)cap, "%s %s eps %s on lane %d (%s)%s",
			 attack_title(u->r.kind), norm_title(u->r.norm), eps, u->lane + 1,
			 lane_name(app, u->lane), net);
}

/* ---- the step-through ---------------------------------------------------- */

enum { T_BACK, T_FORWARD, T_BACK10, T_FORWARD10, T_FIRST, T_LAST, T_PLAY, T_CLOSE };

static const struct ui_key trace_keys[] = {
	{KEY_RIGHT, "Right", "one step on", T_FORWARD, true},
	{KEY_LEFT, "Left", "one step back", T_BACK, true},
	{KEY_NPAGE, "PgDn", "ten steps on", T_FORWARD10, false},
	{KEY_PPAGE, "PgUp", "ten steps back", T_BACK10, false},
	{KEY_HOME, "Home", "the start", T_FIRST, false},
	{KEY_END, "End", "the last step (the adversarial kept)", T_LAST, true},
	{' ', "space", "play or pause the steps", T_PLAY, true},
	{27, "Esc", "back to the grid (stops a step-through being computed)", T_CLOSE, true},
	{'t', "t", "back to the grid", T_CLOSE, false},
	{'q', "q", "back to the grid", T_CLOSE, false},
};

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int trace_key(struct ui_app *app, void *self, int action, int ch)
{
	struct gallery_ui *u = self;
	(void)app;
	(void)ch;
	const struct attack_trace *t = u->g ? gallery_trace(u->g, NULL) : NULL;
	int last = t ? t->n - 1 : 0;
	switch (action) {
	case T_FORWARD: u->pos++; break;
	case T_BACK: u->pos--; break;
	case T_FORWARD10: u->pos += 10; break;
	case T_BACK10: u->pos -= 10; break;
	case T_FIRST: u->pos = 0; break;
	case T_LAST: u->pos = t && t->kept >= 0 ? t->kept : last; break;
	case T_PLAY:
		u->playing = !u->playing;
		if (u->playing && u->pos >= last)
			u->pos = 0;
		u->last_play = now();
		break;
	case T_CLOSE:
		if (u->g && gallery_busy(u->g) && u->work == GALLERY_TRACE)
			gallery_cancel(u->g);
		u->want_trace = false;
		u->playing = false;
		return UI_POP;
	default: return 0;
	}
	if (action != T_PLAY)
		u->playing = false;
	u->pos = u->pos < 0 ? 0 : (u->pos > last ? last : u->pos);
	return UI_DIRTY;
}

static int trace_tick(struct ui_app *app, void *self)
{
	struct gallery_ui *u = self;
	(void)app;
	const struct attack_trace *t = u->g ? gallery_trace(u->g, NULL) : NULL;
	if (!u->playing || !t)
		return 0;
	/* About 25 steps a second, whatever the frame rate. */
	double at = now();
	int adv = (int)((at - u->last_play) * 25);
	if (adv < 1)
		return 0;
	u->last_play = at;
	u->pos += adv;
	if (u->pos >= t->n - 1) {
		u->pos = t->n - 1;
		u->playing = false;
	}
	return UI_DIRTY;
}

static void trace_draw(struct ui_app *app, void *self)
{
	struct gallery_ui *u = self;
	(void)app;
	int W = COLS, H = LINES - 2;
	ui_clear(1, 0, H, W);
	int item;
	const struct attack_trace *t = u->g ? gallery_trace(u->g, &item) : NULL;
	const struct gallery_grid *grid = u->g ? gallery_grid(u->g) : NULL;
	if (!t || !grid || item != u->focus || u->want_trace ||
	    (gallery_busy(u->g) && u->work == GALLERY_TRACE)) {
		ui_text(1, 0, W, UI_NORMAL, true, "step-through");
		draw_status(u, 3, W);
		return;
	}
	const struct gallery_item *it = &grid->item[item];
	const struct sl_dataset *ds = u->test;
	int c = (int)ds->c, ih = (int)ds->h, iw = (int)ds->w, dim = c * ih * iw;
	int pos = u->pos < t->n ? u->pos : t->n - 1;
	int restart = pos / (t->steps + 1), step = pos % (t->steps + 1);
	const float *cur = t->x + (size_t)pos * t->dim; /* the iterate shown */
	const float *z = t->logits + (size_t)pos * t->classes;
	char lab[16], pred[16], line[512];
	/* The image and the recipe, setting by setting as far as they fit. */
	int x = ui_textf(1, 0, W, UI_NORMAL, true, "test image #%d (true %s):", it->index,
			 class_name(ds, t->y, lab, sizeof lab));
	for (int f = 0; f < NFIELDS; f++) {
		if (pgd_only((enum field)f) && grid->recipe.kind != ATTACK_PGD)
			continue;
		field_text(&grid->recipe, (enum field)f, line, sizeof line);
		if (x + 2 + (int)strlen(line) > W)
			break;
		x += 2 + ui_text(1, x + 2, W - x - 2, UI_NORMAL, false, line);
	}
	double l2 = 0, linf = 0;
	for (int k = 0; k < dim; k++) {
		double d = fabs((double)cur[k] - it->x0[k]);
		l2 += d * d;
		linf = d > linf ? d : linf;
	}
	bool wrong = t->pred[pos] != t->y;
	const char *verdict = !wrong ? "" : t->pred_clean == t->y ? " (fooled)" : " (wrong)";
	ui_textf(2, 0, W, wrong ? UI_BAD : UI_OK, true,
		 "restart %d/%d  step %d/%d%s  loss %.4f  predicted %s%s  L2 %.3f  Linf %.3f",
		 restart + 1, t->restarts, step, t->steps, pos == t->kept ? " (kept)" : "",
		 t->loss[pos], class_name(ds, t->pred[pos], pred, sizeof pred), verdict, sqrt(l2),
		 linf);
	/* Images: as large as the left half allows. */
	int down = (iw + 1) * 2 + 2 <= W / 2 && ih / 2 + 1 <= H - 12 ? 1 : 2;
	int cw = (iw + down - 1) / down, ch = (ih + 2 * down - 1) / (2 * down);
	double m;
	ui_text(3, 0, cw, UI_DIM, false, "image");
	ui_text(3, cw + 1, cw, UI_DIM, false, "perturbation");
	ui_image(4, 0, to_bytes(cur, dim, 0), c, ih, iw, down, 1);
	ui_image(4, cw + 1, pert_bytes(it->x0, cur, dim, &m), c, ih, iw, down, 1);
	/* Logits as bars, on one scale over the whole trace. */
	int bx = 2 * cw + 3, bw = W - bx;
	float lo = INFINITY, hi = -INFINITY;
	for (int e = 0; e < t->n * t->classes; e++) {
		lo = t->logits[e] < lo ? t->logits[e] : lo;
		hi = t->logits[e] > hi ? t->logits[e] : hi;
	}
	ui_textf(3, bx, bw, UI_DIM, false, "logits from %.3g (true: %s; <: predicted)", lo,
		 ui_draw_colour() ? "green" : "bold");
	int name_w = ds->c == 3 ? 6 : 2;
	for (int k = 0; k < t->classes && 4 + k < H - 4; k++) {
		char name[16];
		class_name(ds, k, name, sizeof name);
		bool is_pred = k == t->pred[pos];
		ui_textf(4 + k, bx, name_w, k == t->y ? UI_OK : UI_NORMAL, is_pred, "%-*s",
			 name_w, name);
		int barw = bw - name_w - 10;
		if (barw > 2)
			ui_bar(4 + k, bx + name_w, barw, z[k] - lo, 0, hi > lo ? hi - lo : 1, k != t->y);
		/* %g: a capped network's logits can be a thousandth apart */
		ui_textf(4 + k, bx + bw - 9, 9, UI_NORMAL, is_pred, "%8.3g%s", z[k], is_pred ? "<" : "");
	}
	/* The loss along every step, the one shown marked. */
	int py = 4 + (ch > t->classes ? ch : t->classes), ph = H - py + 1; /* rows py .. H */
	if (ph >= 3) {
		static struct ui_plot plot;
		static double xs[4096];
		static float ys[4096], mark[1];
		int n = t->n < 4096 ? t->n : 4096;
		float llo = INFINITY, lhi = -INFINITY;
		for (int e = 0; e < n; e++) {
			xs[e] = e;
			ys[e] = t->loss[e];
			llo = ys[e] < llo ? ys[e] : llo;
			lhi = ys[e] > lhi ? ys[e] : lhi;
		}
		ui_textf(py, 0, W, UI_DIM, false, "loss of the class followed, %.6g .. %.6g, "
			 "over %d steps%s", llo, lhi, t->n - 1, t->restarts > 1 ? " (all restarts)" : "");
		ui_plot_init(&plot, W - 8, ph - 1, 0, n > 1 ? n - 1 : 1, llo, lhi > llo ? lhi : llo + 1);
		ui_plot_line(&plot, xs, ys, n, UI_LANE2);
		double px[1] = {pos};
		mark[0] = t->loss[pos];
		ui_plot_marks(&plot, px, mark, 1, 'o', UI_BAD);
		ui_plot_draw(&plot, py + 1, 8);
		ui_textf(py + 1, 0, 7, UI_DIM, false, "%7.5g", lhi);
		ui_textf(py + ph - 1, 0, 7, UI_DIM, false, "%7.5g", llo);
	}
}

/* ---- the screens ----------------------------------------------------------- */

/* The lab ends: stop the work (it borrows the lab's test set). */
static void gallery_close(struct ui_app *app, void *self)
{
	struct gallery_ui *u = self;
	(void)app;
	gallery_free(u->g);
	u->g = NULL;
	u->test = NULL;
}

bool ui_gallery_recipe(struct ui_app *app, struct attack_recipe *out)
{
	if (gu.app != app)
		return false;
	*out = gu.r;
	return true;
}

const struct ui_screen *ui_gallery_screen(struct ui_app *app)
{
	if (gu.app != app) {
		struct lab *lab = ui_app_lab(app);
		gallery_free(gu.g);
		memset(&gu, 0, sizeof gu);
		gu.app = app;
		gu.lane = ui_race_focus(app);
		gu.r = attack_recipe_pgd(ATTACK_NORM_INF, lab_controls(lab).eps > 0
							  ? lab_controls(lab).eps
							  : 0.1f, 40);
		gu.r.eps = eps_inf[step_in(eps_inf, COUNT(eps_inf), gu.r.eps * 0.999f, 1)];
		if (ui_app_context(app)->recipe) /* a lesson's */
			gu.r = *ui_app_context(app)->recipe;
		gu.sweep_n = 500;
		gu.want_net = gu.want_grid = true;
		gu.screen = (struct ui_screen){
			.title = "Attack gallery",
			.guide = "each test image as original | adversarial | perturbation (amplified "
				 "around grey), its true label, clean and adversarial predictions and "
				 "top-3 probabilities (green: the true class); the sweep below: robust "
				 "accuracy and success over the images correct before the attack",
			.keys = gallery_keys,
			.nkeys = COUNT(gallery_keys),
			.key = gallery_key,
			.draw = gallery_draw,
			.tick = gallery_tick,
			.status = gallery_status,
			.close = gallery_close,
			.self = &gu,
		};
		gu.trace_screen = (struct ui_screen){
			.title = "Attack step-through",
			.guide = "one image's attack step by step: the image and its perturbation, "
				 "the logits as bars (< marks the prediction), the loss along every "
				 "step (o: the step shown)",
			.keys = trace_keys,
			.nkeys = COUNT(trace_keys),
			.modal = true,
			.key = trace_key,
			.draw = trace_draw,
			.tick = trace_tick,
			.self = &gu,
		};
	}
	return &gu.screen;
}

const struct ui_screen *ui_gallery_trace_screen(struct ui_app *app)
{
	ui_gallery_screen(app);
	return &gu.trace_screen;
}
