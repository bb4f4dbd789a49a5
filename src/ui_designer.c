/*
 * ui_designer: the Sector designer, a tab.
 *
 * Left, a map of the (nu, delta) plane for the lab's network: each cell
 * shaded by whether certified caps exist at its centre (caps_map_row) and,
 * where they do, by the product of their Theorem 4 bounds, with the
 * paper's (-2, 0.4), the capped lanes' indices and the cursor marked.  The
 * map is filled a row at a time by a task (task.h), so the screen never
 * waits for it, and kept per network, objective and size, so coming back
 * to it costs nothing.
 *
 * Right, what the cursor's indices come to, recomputed at every move by
 * caps_preview (the call lab_set_caps and lab_restart_lane_as resolve
 * through, so the screen and the training cannot disagree): the sector
 * slopes, gamma, each layer's (nu_i, delta_i), Theorem 4 bound and branch
 * beside the cap the focused lane trains with, their product, the largest
 * eigenvalue of A, or the reason no caps exist.
 *
 * Keys move the cursor (fine and coarse steps), take typed numbers (a modal
 * entry), switch the objective, apply the caps to the focused lane as it
 * trains, or restart it under them as a kind the user picks (a modal
 * choice).
 */
#include <curses.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sectorlab/task.h"
#include "sectorlab/ui_draw.h"
#include "sectorlab/ui_screen.h"

/* The plane the map shows (the paper's point well inside), and the steps. */
#define NU_LO (-8.0)
#define NU_HI 1.0
#define DELTA_LO 0.05
#define DELTA_HI 2.0
#define NU_FINE 0.1
#define NU_COARSE 1.0
#define DELTA_FINE 0.02
#define DELTA_COARSE 0.2

#define MAP_MAX_W 120
#define MAP_MAX_H 48
#define LABEL_W 5 /* delta's labels left of the map */

enum {
	ACT_LEFT, ACT_RIGHT, ACT_UP, ACT_DOWN, ACT_LEFT10, ACT_RIGHT10, ACT_UP10, ACT_DOWN10,
	ACT_TYPE_NU, ACT_TYPE_DELTA, ACT_OBJECTIVE, ACT_APPLY, ACT_RESTART, ACT_LANE, ACT_PAPER,
};

static const struct ui_key designer_keys[] = {
	{KEY_LEFT, "arrows", "move the cursor: nu by 0.1, delta by 0.02", ACT_LEFT, true},
	{KEY_RIGHT, "Right", NULL, ACT_RIGHT, false},
	{KEY_UP, "Up", NULL, ACT_UP, false},
	{KEY_DOWN, "Down", NULL, ACT_DOWN, false},
	{KEY_SLEFT, "S-arrows", "coarse: nu by 1, delta by 0.2 (also [ ] PgUp PgDn)", ACT_LEFT10,
	 false},
	{KEY_SRIGHT, "S-Right", NULL, ACT_RIGHT10, false},
	{KEY_SR, "S-Up", NULL, ACT_UP10, false},
	{KEY_SF, "S-Down", NULL, ACT_DOWN10, false},
	{'[', "[", NULL, ACT_LEFT10, false},
	{']', "]", NULL, ACT_RIGHT10, false},
	{KEY_PPAGE, "PgUp", NULL, ACT_UP10, false},
	{KEY_NPAGE, "PgDn", NULL, ACT_DOWN10, false},
	{'n', "n", "type nu (Tab: delta; Enter keeps, Esc goes back)", ACT_TYPE_NU, true},
	{'d', "d", "type delta", ACT_TYPE_DELTA, true},
	{'o', "o", "objective: product of the caps / smallest cap", ACT_OBJECTIVE, true},
	{'a', "a", "apply: the focused lane trains on under these caps", ACT_APPLY, true},
	{'\n', "Enter", NULL, ACT_APPLY, false},
	{'\r', "Enter", NULL, ACT_APPLY, false},
	{KEY_ENTER, "Enter", NULL, ACT_APPLY, false},
	{'r', "r", "restart the focused lane under these caps (spnorm or + margin)", ACT_RESTART,
	 true},
	{'l', "l", "focus the next lane", ACT_LANE, true},
	{'p', "p", "the cursor to the paper's (-2, 0.4)", ACT_PAPER, false},
};

/* The map, filled a row at a time. */
struct map {
	bool valid;
	unsigned gen;                 /* changes whenever the map is reset */
	struct arch arch;
	enum sector_objective objective;
	int w, h;
	bool row_done[MAP_MAX_H];
	int rows_done;
	struct caps_cell cell[MAP_MAX_H][MAP_MAX_W];
	double top;                   /* largest product among the rows done */
};

/* A row's work: the task's alone until it is done (task.h). */
struct row_work {
	struct task *task;
	struct arch arch;
	enum sector_objective objective;
	double delta;
	int n;
	double nu[MAP_MAX_W];
	struct caps_cell out[MAP_MAX_W];
};

/* What the cursor's indices come to. */
struct preview {
	struct arch arch;             /* the network it is for */
	bool sector;                  /* the indices are a sector */
	double lo, hi, gamma;
	struct caps_spec spec;
	struct caps_plan plan;        /* feasible, or why not */
	char why[640];                /* no sector, or the preview failed */
	double ms;                    /* how long it took */
};

struct designer {
	struct ui_screen screen;
	struct ui_app *app;
	double nu, delta;             /* the cursor */
	enum sector_objective objective;
	struct preview at;
	struct map map[2];            /* per objective */
	struct row_work work;
	struct task *task;            /* computing work for map[work_map] row work_row */
	int work_map, work_row;
	unsigned work_gen;
	char failed[600];             /* why the map stopped */
};

static struct designer des;
static struct job_snapshot snap; /* the focused lane's; large, and only the main thread draws */

/* ---- the numbers ----------------------------------------------------------- */

/* The network the lanes train (each lane's config holds it: the setup
 * screen may switch it). */
static const struct arch *lab_arch(struct ui_app *app)
{
	return &lab_lane(ui_app_lab(app), ui_race_focus(app))->train.arch;
}

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

static void update(struct designer *d)
{
	struct preview *p = &d->at;
	double t0 = now_ms();
	struct sl_error err;
	status_clear(&err);
	p->why[0] = '\0';
	memcpy(&p->arch, lab_arch(d->app), sizeof p->arch); /* memcmp compares it */
	p->spec = caps_spec_certified(d->nu, d->delta, d->objective);
	p->plan.feasible = false;
	p->sector = sector_slopes(d->nu, d->delta, &p->lo, &p->hi, &err) == SL_OK &&
		    sector_gamma(d->nu, d->delta, &p->gamma, &err) == SL_OK;
	if (!p->sector)
		snprintf(p->why, sizeof p->why, "no sector: %s", err.msg);
	else if (caps_preview(&p->spec, &p->arch, &p->plan, &err) != SL_OK)
		snprintf(p->why, sizeof p->why, "%s", err.msg);
	else if (!p->plan.feasible)
		snprintf(p->why, sizeof p->why, "%s", p->plan.why);
	p->ms = now_ms() - t0;
}

/* Values typed or stepped stay on the step grid (no 0.30000000000000004). */
static double tidy(double v)
{
	return round(v * 1e6) / 1e6;
}

/* ---- the map --------------------------------------------------------------- */

/* The map's size for this terminal: the panel keeps its width. */
static int panel_width(void)
{
	return COLS >= 120 ? 58 : 45;
}

static void map_size(int *w, int *h)
{
	*w = COLS - panel_width() - LABEL_W - 2;
	*h = LINES - 2 - 4; /* title, x labels and a two-line legend */
	*w = *w > MAP_MAX_W ? MAP_MAX_W : (*w < 4 ? 4 : *w);
	*h = *h > MAP_MAX_H ? MAP_MAX_H : (*h < 4 ? 4 : *h);
}

/* Centre of column i and of row j (row 0 at the top). */
static double cell_nu(const struct map *m, int i)
{
	return NU_LO + (i + 0.5) * (NU_HI - NU_LO) / m->w;
}

static double cell_delta(const struct map *m, int j)
{
	return DELTA_HI - (j + 0.5) * (DELTA_HI - DELTA_LO) / m->h;
}

/* The cell holding (nu, delta), clamped to the map; false when outside. */
static bool cell_of(const struct map *m, double nu, double delta, int *i, int *j)
{
	double fi = floor((nu - NU_LO) / (NU_HI - NU_LO) * m->w);
	double fj = floor((DELTA_HI - delta) / (DELTA_HI - DELTA_LO) * m->h);
	bool inside = fi >= 0 && fi < m->w && fj >= 0 && fj < m->h;
	*i = fi < 0 ? 0 : (fi >= m->w ? m->w - 1 : (int)fi);
	*j = fj < 0 ? 0 : (fj >= m->h ? m->h - 1 : (int)fj);
	return inside;
}

/* The map for the current network, objective and terminal (reset when any
 * of them changed). */
static struct map *current_map(struct designer *d)
{
	struct map *m = &d->map[d->objective];
	const struct arch *arch = lab_arch(d->app);
	int w, h;
	map_size(&w, &h);
	if (m->valid && m->w == w && m->h == h && memcmp(&m->arch, arch, sizeof *arch) == 0)
		return m;
	unsigned gen = m->gen + 1;
	memset(m, 0, sizeof *m);
	m->valid = true;
	m->gen = gen;
	memcpy(&m->arch, arch, sizeof m->arch);
	m->objective = d->objective;
	m->w = w;
	m->h = h;
	return m;
}

static bool row_stop(void *ctx)
{
	struct row_work *r = ctx;
	return task_cancelled(r->task);
}

static sl_status row_task(void *ctx, struct task *t, struct sl_error *err)
{
	struct row_work *r = ctx;
	r->task = t;
	int done = caps_map_row(&r->arch, r->objective, r->delta, r->nu, r->n, r->out, row_stop, r,
				err);
	if (done < 0)
		return err->code;
	return done < r->n ? SL_ERR_CANCELLED : SL_OK;
}

/* The next row to fill: the cursor's first, then outwards from it. */
static int next_row(const struct map *m, int from)
{
	for (int k = 0; k < 2 * m->h; k++) {
		int j = from + (k % 2 ? -(k + 1) / 2 : k / 2);
		if (j >= 0 && j < m->h && !m->row_done[j])
			return j;
	}
	return -1;
}

/* Collect a finished row, start the next; whether the map changed. */
static bool fill_map(struct designer *d)
{
	bool changed = false;
	if (d->task) {
		struct task_status st;
		task_status(d->task, &st);
		if (st.state == TASK_RUNNING)
			return false;
		struct map *m = &d->map[d->work_map];
		if (st.state == TASK_DONE && m->gen == d->work_gen && !m->row_done[d->work_row]) {
			memcpy(m->cell[d->work_row], d->work.out, sizeof(struct caps_cell) * (size_t)m->w);
			for (int i = 0; i < m->w; i++)
				if (d->work.out[i].kind == CAPS_CELL_CAPS && d->work.out[i].product > m->top)
					m->top = d->work.out[i].product;
			m->row_done[d->work_row] = true;
			m->rows_done++;
			changed = true;
		} else if (st.state == TASK_FAILED) {
			snprintf(d->failed, sizeof d->failed, "%s", st.message);
			changed = true;
		}
		task_free(d->task);
		d->task = NULL;
	}
	if (d->failed[0])
		return changed;
	struct map *m = current_map(d);
	int ci, cj;
	cell_of(m, d->nu, d->delta, &ci, &cj);
	int j = next_row(m, cj);
	if (j < 0)
		return changed;
	struct row_work *r = &d->work;
	r->arch = m->arch;
	r->objective = m->objective;
	r->delta = cell_delta(m, j);
	r->n = m->w;
	for (int i = 0; i < m->w; i++)
		r->nu[i] = cell_nu(m, i);
	struct sl_error err;
	if (task_start(row_task, r, &d->task, &err) != SL_OK) {
		snprintf(d->failed, sizeof d->failed, "%s", err.msg);
		return true;
	}
	d->work_map = (int)m->objective;
	d->work_row = j;
	d->work_gen = m->gen;
	return changed;
}

/* ---- typed numbers: a modal entry ------------------------------------------ */

enum { ENTRY_CLOSE, ENTRY_KEEP, ENTRY_FIELD, ENTRY_ERASE, ENTRY_TYPE };

static const struct ui_key entry_keys[] = {
	{27, "Esc", "back to the indices before typing", ENTRY_CLOSE, true},
	{'\n', "Enter", "keep the indices typed", ENTRY_KEEP, true},
	{'\r', "Enter", NULL, ENTRY_KEEP, false},
	{KEY_ENTER, "Enter", NULL, ENTRY_KEEP, false},
	{'\t', "Tab", "switch between nu and delta (also Up, Down)", ENTRY_FIELD, true},
	{KEY_UP, "Up", NULL, ENTRY_FIELD, false},
	{KEY_DOWN, "Down", NULL, ENTRY_FIELD, false},
	{KEY_BTAB, "S-Tab", NULL, ENTRY_FIELD, false},
	{KEY_BACKSPACE, "BkSp", "erase the last character", ENTRY_ERASE, true},
	{127, "BkSp", NULL, ENTRY_ERASE, false},
	{8, "BkSp", NULL, ENTRY_ERASE, false},
	{UI_KEY_TEXT, "0-9 . - e", "type a number (the designer follows as you type)", ENTRY_TYPE,
	 false},
};

struct entry {
	struct ui_screen screen;
	int field;                    /* 0: nu, 1: delta */
	char text[2][24];
	double was[2];                /* the cursor before, for Esc */
};

static struct entry ent;

static bool parse_number(const char *text, double *out)
{
	char *end;
	double v = strtod(text, &end);
	if (end == text || *end != '\0' || !isfinite(v))
		return false;
	*out = v;
	return true;
}

static int entry_key(struct ui_app *app, void *self, int action, int ch)
{
	struct entry *e = self;
	char *t = e->text[e->field];
	size_t len = strlen(t);
	(void)app;
	switch (action) {
	case ENTRY_CLOSE:
		des.nu = e->was[0];
		des.delta = e->was[1];
		update(&des);
		return UI_POP;
	case ENTRY_KEEP: return UI_POP;
	case ENTRY_FIELD: e->field = 1 - e->field; return 0;
	case ENTRY_ERASE:
		if (len > 0)
			t[len - 1] = '\0';
		break;
	case ENTRY_TYPE:
		if (!strchr("0123456789.-+eE", ch) || len + 1 >= sizeof e->text[0])
			return 0;
		t[len] = (char)ch;
		t[len + 1] = '\0';
		break;
	default: return 0;
	}
	/* The designer follows every number that parses. */
	double v;
	if (parse_number(t, &v)) {
		if (e->field == 0)
			des.nu = v;
		else
			des.delta = v;
		update(&des);
	}
	return 0;
}

static void entry_draw(struct ui_app *app, void *self)
{
	struct entry *e = self;
	(void)app;
	int w = 36, h = 4, x = COLS - panel_width() + 2, y = LINES - 2 - h;
	ui_clear(y, x, h, w);
	ui_box(y, x, h, w, "type the indices");
	for (int f = 0; f < 2; f++) {
		double v;
		bool ok = parse_number(e->text[f], &v);
		if (e->field == f)
			attron(A_REVERSE);
		mvprintw(y + 1, x + 2 + 17 * f, "%-5s %-9s", f ? "delta" : "nu", e->text[f]);
		if (e->field == f)
			attroff(A_REVERSE);
		if (!ok)
			ui_text(y + 2, x + 2 + 17 * f, 15, UI_BAD, false, "not a number");
	}
}

static void open_entry(struct ui_app *app, int field)
{
	ent.screen = (struct ui_screen){
		.title = "Sector designer: typing (nu, delta)",
		.guide = "the designer recomputes at every number typed",
		.keys = entry_keys,
		.nkeys = (int)(sizeof entry_keys / sizeof entry_keys[0]),
		.modal = true,
		.key = entry_key,
		.draw = entry_draw,
		.self = &ent,
	};
	ent.field = field;
	ent.was[0] = des.nu;
	ent.was[1] = des.delta;
	snprintf(ent.text[0], sizeof ent.text[0], "%g", des.nu);
	snprintf(ent.text[1], sizeof ent.text[1], "%g", des.delta);
	ui_app_push(app, &ent.screen);
}

/* ---- restarting a lane: a modal choice of its kind ------------------------- */

enum { KIND_SPNORM, KIND_MARGIN, KIND_CANCEL };

static const struct ui_key kind_keys[] = {
	{'s', "s", "restart as spnorm: these caps, plain cross-entropy", KIND_SPNORM, true},
	{'m', "m", "restart as certified + margin: these caps, the Lipschitz-margin loss",
	 KIND_MARGIN, true},
	{27, "Esc", "do not restart", KIND_CANCEL, true},
};

static struct ui_screen kind_screen;

static int kind_key(struct ui_app *app, void *self, int action, int ch)
{
	(void)self;
	(void)ch;
	if (action != KIND_SPNORM && action != KIND_MARGIN)
		return action == KIND_CANCEL ? UI_POP : 0;
	int lane = ui_race_focus(app);
	enum lab_lane_kind kind = action == KIND_MARGIN ? LAB_LANE_MARGIN : LAB_LANE_SPNORM;
	struct sl_error err;
	if (lab_restart_lane_as(ui_app_lab(app), lane, kind, &des.at.spec, &err) != SL_OK)
		ui_app_say(app, "lane %d not restarted: %s", lane + 1, err.msg);
	else
		ui_app_say(app, "lane %d trains anew as %s under %s", lane + 1,
			   kind == LAB_LANE_MARGIN ? "cert+margin" : "spnorm", des.at.plan.note);
	return UI_POP;
}

static void kind_draw(struct ui_app *app, void *self)
{
	(void)self;
	int w = panel_width() - 2, h = 5, x = COLS - panel_width() + 1, y = LINES - 2 - h;
	ui_clear(y, x, h, w);
	char title[64];
	snprintf(title, sizeof title, "restart lane %d from its seed as", ui_race_focus(app) + 1);
	ui_box(y, x, h, w, title);
	ui_text(y + 1, x + 2, w - 4, UI_NORMAL, false, "s  spnorm (cross-entropy)");
	ui_text(y + 2, x + 2, w - 4, UI_NORMAL, false, "m  cert+margin (Lipschitz margin)");
	ui_text(y + 3, x + 2, w - 4, UI_DIM, false, "Esc  neither");
}

/* ---- keys ------------------------------------------------------------------ */

static int designer_key(struct ui_app *app, void *self, int action, int ch)
{
	struct designer *d = self;
	struct lab *lab = ui_app_lab(app);
	int lane = ui_race_focus(app);
	(void)ch;
	switch (action) {
	case ACT_LEFT: d->nu = tidy(d->nu - NU_FINE); break;
	case ACT_RIGHT: d->nu = tidy(d->nu + NU_FINE); break;
	case ACT_UP: d->delta = tidy(d->delta + DELTA_FINE); break;
	case ACT_DOWN: d->delta = tidy(d->delta - DELTA_FINE); break;
	case ACT_LEFT10: d->nu = tidy(d->nu - NU_COARSE); break;
	case ACT_RIGHT10: d->nu = tidy(d->nu + NU_COARSE); break;
	case ACT_UP10: d->delta = tidy(d->delta + DELTA_COARSE); break;
	case ACT_DOWN10: d->delta = tidy(d->delta - DELTA_COARSE); break;
	case ACT_PAPER: d->nu = CAPS_PAPER_NU, d->delta = CAPS_PAPER_DELTA; break;
	case ACT_TYPE_NU:
	case ACT_TYPE_DELTA: open_entry(app, action == ACT_TYPE_DELTA); return 0;
	case ACT_OBJECTIVE:
		d->objective = d->objective == SECTOR_OBJ_PRODUCT ? SECTOR_OBJ_MIN : SECTOR_OBJ_PRODUCT;
		break;
	case ACT_LANE: ui_race_set_focus(app, (lane + 1) % lab_lanes(lab)); return 0;
	case ACT_APPLY:
	case ACT_RESTART:
		if (!ui_app_context(app)->editor_restarts) {
			ui_app_say(app, "this lab shows caps but does not change them");
			return 0;
		}
		if (!d->at.plan.feasible) {
			ui_app_say(app, "no caps at (%g, %g): nothing to train with", d->nu, d->delta);
			return 0;
		}
		if (action == ACT_RESTART) {
			kind_screen = (struct ui_screen){
				.title = "Sector designer: restart a lane",
				.guide = "the lane trains anew from its seed under the caps shown",
				.keys = kind_keys,
				.nkeys = (int)(sizeof kind_keys / sizeof kind_keys[0]),
				.modal = true,
				.key = kind_key,
				.draw = kind_draw,
			};
			ui_app_push(app, &kind_screen);
			return 0;
		}
		struct sl_error err;
		if (lab_set_caps(lab, lane, &d->at.spec, &err) != SL_OK)
			ui_app_say(app, "%s", err.msg);
		else
			ui_app_say(app, "lane %d (%s) trains on under %s (1: its bars)", lane + 1,
				   ui_race_lane_label(app, lane), d->at.plan.note);
		return 0;
	default: return 0;
	}
	update(d);
	return 0;
}

static int designer_tick(struct ui_app *app, void *self)
{
	struct designer *d = self;
	int flags = 0;
	/* Another network (the setup screen switched it): the numbers follow. */
	if (memcmp(&d->at.arch, lab_arch(app), sizeof d->at.arch) != 0) {
		update(d);
		flags = UI_DIRTY;
	}
	return fill_map(d) ? UI_DIRTY : flags;
}

/* ---- drawing --------------------------------------------------------------- */

/* Shades of a product against the map's largest, and their glyphs. */
static int shade_of(double product, double top)
{
	double f = top > 0 ? product / top : 0;
	return f >= 0.75 ? 3 : f >= 0.5 ? 2 : f >= 0.25 ? 1 : 0;
}

static const unsigned shade_wc[4] = {0x2591, 0x2592, 0x2593, 0x2588};
static const char shade_ascii[4] = {'.', ':', '+', '#'};

static void draw_cell(int y, int x, const struct caps_cell *c, bool done, double top)
{
	if (!done)
		return;
	switch (c->kind) {
	case CAPS_CELL_CAPS: {
		int s = shade_of(c->product, top);
		ui_glyph(y, x, shade_wc[s], shade_ascii[s], UI_OK, false);
		break;
	}
	case CAPS_CELL_NONE: ui_glyph(y, x, 0x00b7, '-', UI_DIM, false); break;
	case CAPS_CELL_NO_SECTOR: ui_glyph(y, x, 0x00d7, 'x', UI_DIM, false); break;
	}
}

/* A mark over the cell of (nu, delta), when on the map. */
static void mark(const struct map *m, int y0, int x0, double nu, double delta, char c,
		 enum ui_role role)
{
	int i, j;
	if (cell_of(m, nu, delta, &i, &j))
		ui_glyph(y0 + j, x0 + i, (unsigned char)c, c, role, true);
}

static void draw_map(struct ui_app *app, struct designer *d, int y0, int x0)
{
	struct map *m = current_map(d);
	struct lab *lab = ui_app_lab(app);
	int total = m->h;
	if (d->failed[0])
		ui_textf(y0 - 1, 0, x0 + m->w, UI_BAD, false, "map stopped: %s", d->failed);
	else if (m->rows_done < total)
		ui_textf(y0 - 1, 0, x0 + m->w, UI_DIM, false, "delta  map of %s caps: %d%%",
			 sector_objective_name(m->objective), 100 * m->rows_done / total);
	else
		ui_textf(y0 - 1, 0, x0 + m->w, UI_DIM, false, "delta  map of %s caps",
			 sector_objective_name(m->objective));
	for (int j = 0; j < m->h; j++)
		for (int i = 0; i < m->w; i++)
			draw_cell(y0 + j, x0 + i, &m->cell[j][i], m->row_done[j], m->top);
	/* delta at the top, the middle and the bottom rows. */
	int rows[3] = {0, m->h / 2, m->h - 1};
	for (int k = 0; k < 3; k++)
		ui_textf(y0 + rows[k], 0, LABEL_W, UI_DIM, false, "%4.2f", cell_delta(m, rows[k]));
	/* nu at whole numbers, as many as fit. */
	int every = 1;
	while ((NU_HI - NU_LO) / every * 4 > m->w)
		every++;
	for (int v = (int)ceil(NU_LO); v <= (int)floor(NU_HI); v++) {
		if (v % every)
			continue;
		int c = (int)floor((v - NU_LO) / (NU_HI - NU_LO) * m->w);
		c = c >= m->w ? m->w - 1 : c;
		ui_textf(y0 + m->h, x0 + c - (v < 0), 3, UI_DIM, false, "%d", v);
	}
	ui_text(y0 + m->h, x0 + m->w, 3, UI_DIM, false, " nu");
	/* The paper's point, the capped lanes', then the cursor over them. */
	mark(m, y0, x0, CAPS_PAPER_NU, CAPS_PAPER_DELTA, 'P', UI_NORMAL);
	for (int l = 0; l < lab_lanes(lab); l++) {
		const struct lab_lane_config *lc = lab_lane(lab, l);
		if (lc->train.mode == TRAIN_SPNORM && lc->train.caps.source == CAPS_CERTIFIED)
			mark(m, y0, x0, lc->train.caps.nu, lc->train.caps.delta, (char)('1' + l),
			     (enum ui_role)(UI_LANE0 + l));
	}
	/* The cursor: '+', or the mark under it, in reverse; off the map, an
	 * arrow at the edge pointing to it. */
	int ci, cj;
	char c;
	if (cell_of(m, d->nu, d->delta, &ci, &cj)) {
		chtype under = mvinch(y0 + cj, x0 + ci) & A_CHARTEXT;
		c = under == 'P' || (under >= '1' && under <= '4') ? (char)under : '+';
	} else {
		c = d->nu < NU_LO ? '<' : d->nu >= NU_HI ? '>' : d->delta >= DELTA_HI ? '^' : 'v';
	}
	attron(A_REVERSE | A_BOLD);
	mvaddch(y0 + cj, x0 + ci, (chtype)(unsigned char)c);
	attroff(A_REVERSE | A_BOLD);
	/* The legend: what the shades and marks mean. */
	int ly = y0 + m->h + 1, lx = 0, lw = x0 + m->w + 3;
	if (m->top > 0) {
		int x = lx + ui_text(ly, lx, lw, UI_DIM, false, "product ");
		static const double from[4] = {0, 0.25, 0.5, 0.75};
		for (int s = 3; s >= 0; s--) {
			ui_glyph(ly, x++, shade_wc[s], shade_ascii[s], UI_OK, false);
			if (s == 0) {
				ui_text(ly, x, lw - x, UI_DIM, false, ">0");
				break;
			}
			if (ui_draw_utf8())
				ui_glyph(ly, x++, 0x2265, '>', UI_DIM, false);
			else
				x += ui_text(ly, x, lw - x, UI_DIM, false, ">=");
			x += 1 + ui_textf(ly, x, lw - x, UI_DIM, false, "%.2g", from[s] * m->top);
		}
	} else {
		ui_text(ly, lx, lw, UI_DIM, false, "shades: the product of the caps");
	}
	int x = lx;
	ui_glyph(ly + 1, x, 0x00b7, '-', UI_DIM, false);
	x += 1 + ui_text(ly + 1, x + 1, lw - x - 1, UI_DIM, false, "no caps ");
	ui_glyph(ly + 1, x, 0x00d7, 'x', UI_DIM, false);
	x += 1 + ui_text(ly + 1, x + 1, lw - x - 1, UI_DIM, false, "no sector ");
	ui_text(ly + 1, x, lw - x, UI_DIM, false, "P paper 1-4 lanes");
}

/* text wrapped at spaces into rows of w columns from (y, x), at most rows
 * rows; returns the rows used. */
static int wrapped(int y, int x, int w, int rows, enum ui_role role, const char *text)
{
	int used = 0;
	while (*text && used < rows) {
		int n = (int)strlen(text);
		if (n > w) {
			n = w;
			for (int k = w; k > w / 2; k--)
				if (text[k] == ' ') {
					n = k;
					break;
				}
		}
		char part[256];
		snprintf(part, sizeof part, "%.*s", n, text);
		ui_text(y + used++, x, w, role, false, part);
		text += n;
		while (*text == ' ')
			text++;
	}
	return used;
}

static void draw_panel(struct ui_app *app, struct designer *d, int y, int x, int w, int bottom)
{
	struct lab *lab = ui_app_lab(app);
	int lane = ui_race_focus(app);
	const struct lab_lane_config *lc = lab_lane(lab, lane);
	lab_snapshot(lab, lane, &snap);
	const struct preview *p = &d->at;
	bool wide = w >= 56;
	int n = ui_textf(y, x, w, (enum ui_role)(UI_LANE0 + lane), true, "lane %d %s ", lane + 1,
			 ui_race_lane_label(app, lane));
	ui_text(y++, x + n, w - n, UI_DIM, false,
		lc->train.mode == TRAIN_SPNORM ? snap.caps_note : "trains without caps");
	ui_textf(y++, x, w, UI_NORMAL, true, "(nu, delta) = (%g, %g)  %s objective", d->nu, d->delta,
		 sector_objective_name(d->objective));
	if (p->sector)
		ui_textf(y++, x, w, UI_NORMAL, false, "sector [%.4f, %.4f]  gamma %.4f", p->lo, p->hi,
			 p->gamma);
	if (!p->plan.feasible) {
		wrapped(y, x, w, bottom - y, UI_BAD, p->why);
		return;
	}
	const struct sector_allocation *a = &p->plan.alloc;
	ui_textf(y++, x, w, UI_NORMAL, true, "%-6s%8s%8s%8s %-7s%6s", "layer", "nu_i", "delta_i",
		 wide ? "rho_i" : "rho_i", "Thm 4", "now");
	int weighted = 0, pools = 0;
	double now_product = 1;
	bool have_now = lc->train.mode == TRAIN_SPNORM;
	for (int i = 0; i < a->n && y < bottom; i++, y++) {
		const struct sector_alloc_layer *l = &a->layer[i];
		char name[16];
		if (l->has_rho && weighted < snap.nlayers)
			snprintf(name, sizeof name, "%s", snap.layer_name[weighted]);
		else if (l->has_rho)
			snprintf(name, sizeof name, "layer%d", weighted + 1);
		else
			snprintf(name, sizeof name, "pool%d", ++pools);
		ui_textf(y, x, w, UI_NORMAL, false, "%-6s%8.3f%8.3f", name, l->nu, l->delta);
		if (!l->has_rho) {
			ui_text(y, x + 23, w - 23, UI_DIM, false, "       -  2-Lipschitz");
			continue;
		}
		ui_textf(y, x + 22, w - 22, UI_NORMAL, false, "%8.4f %-7s", l->rho,
			 sector_t4_branch_name(l->branch));
		if (have_now && weighted < snap.nlayers) {
			double now = snap.rho[weighted];
			now_product *= now;
			/* The cap in training against the bound shown: over it (or not
			 * under these caps' margin) in red. */
			bool same = fabs(now - l->rho * (1 - CERTIFY_CAP_MARGIN)) <= 1e-6 * l->rho;
			ui_textf(y, x + 38, w - 38, now <= l->rho ? (same ? UI_OK : UI_NORMAL) : UI_BAD,
				 false, "%6.3f", now);
		} else {
			ui_text(y, x + 38, w - 38, UI_DIM, false, "     -");
		}
		weighted++;
	}
	if (y < bottom) {
		ui_textf(y, x, w, UI_NORMAL, true, "product %.6f", a->rho_product);
		if (have_now)
			ui_textf(y, x + 17, w - 17, UI_DIM, false, "in training %.4f", now_product);
		y++;
	}
	if (y < bottom)
		ui_textf(y++, x, w, UI_NORMAL, false, "smallest cap %.6f", a->rho_min);
	if (y < bottom)
		ui_textf(y++, x, w, UI_NORMAL, false, "largest eigenvalue of A %.3g%s", a->max_eig_a,
			 a->max_eig_a <= SECTOR_ALLOC_TOL ? " (<= 0)" : "");
	if (wide && y + 1 < bottom) {
		y++;
		y += wrapped(y, x, w, bottom - y, UI_DIM, p->plan.what);
	}
	if (wide && y < bottom)
		ui_textf(y++, x, w, UI_DIM, false, "computed in %.1f ms; \"now\": the caps lane %d "
			 "trains with", p->ms, lane + 1);
}

static void designer_draw(struct ui_app *app, void *self)
{
	struct designer *d = self;
	draw_map(app, d, 2, LABEL_W + 1);
	draw_panel(app, d, 1, COLS - panel_width() + 1, panel_width() - 1, LINES - 1);
}

static void designer_status(struct ui_app *app, void *self, bool brief, char *buf, int cap)
{
	struct designer *d = self;
	int lane = ui_race_focus(app);
	if (brief)
		snprintf(buf, (size_t)cap, "lane %d  nu %g delta %g", lane + 1, d->nu, d->delta);
	else
		snprintf(buf, (size_t)cap, "(nu, delta) -> per-layer caps (Theorems 3 and 4) for %s, "
			 "lane %d", arch_label(lab_arch(app)), lane + 1);
}

static void designer_close(struct ui_app *app, void *self)
{
	struct designer *d = self;
	(void)app;
	task_free(d->task);
	d->task = NULL;
}

const struct ui_screen *ui_designer_screen(struct ui_app *app)
{
	if (des.app != app) {
		memset(&des, 0, sizeof des);
		des.app = app;
		des.screen = (struct ui_screen){
			.title = "Sector designer",
			.guide = "map: where certified caps exist for the network (shades: the "
				 "product of the caps, fuller is larger; P the paper's (-2, 0.4), "
				 "1-4 the lanes, the cursor reversed); right: what the cursor's "
				 "indices come to, 'now' the caps the focused lane trains with",
			.keys = designer_keys,
			.nkeys = (int)(sizeof designer_keys / sizeof designer_keys[0]),
			.key = designer_key,
			.draw = designer_draw,
			.tick = designer_tick,
			.status = designer_status,
			.close = designer_close,
			.self = &des,
		};
		/* The focused lane's indices (the paper's unless asked otherwise). */
		const struct lab_lane_config *lc = lab_lane(ui_app_lab(app), ui_race_focus(app));
		des.nu = lc->train.caps.nu;
		des.delta = lc->train.caps.delta;
		des.objective = lc->train.caps.objective;
		update(&des);
	}
	return &des.screen;
}
