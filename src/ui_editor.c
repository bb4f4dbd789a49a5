/*
 * ui_editor: the (nu, delta) editor, a modal screen over the race.
 *
 * Two text fields; after every key the network's sector, its Lipschitz
 * bound and the Theorem 3 allocation with each layer's Theorem 4 cap are
 * recomputed (caps_preview, under the focused lane's objective), beside the
 * caps the lane trains with, or the reason none exist.  Enter trains the
 * focused lane anew with the spec previewed (lab_restart_lane resolves the
 * same spec: the two cannot disagree); q or Esc closes.
 */
#include <curses.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sectorlab/ui_draw.h"
#include "sectorlab/ui_screen.h"

enum { ACT_CLOSE, ACT_APPLY, ACT_FIELD, ACT_ERASE, ACT_TYPE };

static const struct ui_key editor_keys[] = {
	{27, "Esc", "close the editor (the lab goes on)", ACT_CLOSE, true},
	{'q', "q", "close the editor", ACT_CLOSE, false},
	{'a', "a", "close the editor", ACT_CLOSE, false},
	{'\n', "Enter", "train the focused lane anew with the caps shown", ACT_APPLY, true},
	{'\r', "\\r", NULL, ACT_APPLY, false},
	{KEY_ENTER, "Enter", NULL, ACT_APPLY, false},
	{'\t', "Tab", "switch between nu and delta (also Up, Down)", ACT_FIELD, true},
	{KEY_UP, "Up", NULL, ACT_FIELD, false},
	{KEY_DOWN, "Down", NULL, ACT_FIELD, false},
	{KEY_BTAB, "S-Tab", NULL, ACT_FIELD, false},
	{KEY_BACKSPACE, "BkSp", "erase the last character", ACT_ERASE, true},
	{127, "BkSp", NULL, ACT_ERASE, false},
	{8, "BkSp", NULL, ACT_ERASE, false},
	{UI_KEY_TEXT, "0-9 . - e", "type a number", ACT_TYPE, false},
};

struct editor {
	struct ui_screen screen;
	struct ui_app *app;
	int focus;               /* 0: nu, 1: delta */
	char text[2][24];
	bool feasible;
	double lo, hi, gamma;    /* the network's sector and Lipschitz bound */
	struct caps_spec spec;   /* the focused lane's spec at the fields' indices */
	struct sector_allocation a;
	char note[64];           /* the caps in a few words (caps_plan.note) */
	char why[512];           /* when not feasible */
	char status[600];        /* after Enter */
};

static struct editor ed;

static bool parse_number(const char *text, double *out)
{
	char *end;
	double v = strtod(text, &end);
	if (end == text || *end != '\0' || !isfinite(v))
		return false;
	*out = v;
	return true;
}

/* The allocation for the fields' indices (Theorems 3 and 4). */
static void update(struct editor *e)
{
	const struct lab_lane_config *lc = lab_lane(ui_app_lab(e->app), ui_race_focus(e->app));
	double nu, delta;
	e->feasible = false;
	if (!parse_number(e->text[0], &nu) || !parse_number(e->text[1], &delta)) {
		snprintf(e->why, sizeof e->why, "type two numbers");
		return;
	}
	struct sl_error err;
	status_clear(&err);
	e->spec = caps_spec_certified(nu, delta, lc->train.caps.objective);
	struct caps_plan plan;
	if (sector_slopes(nu, delta, &e->lo, &e->hi, &err) != SL_OK ||
	    sector_gamma(nu, delta, &e->gamma, &err) != SL_OK ||
	    caps_preview(&e->spec, &lc->train.arch, &plan, &err) != SL_OK) {
		snprintf(e->why, sizeof e->why, "%s", err.msg);
		return;
	}
	if (!plan.feasible) {
		snprintf(e->why, sizeof e->why, "%s", plan.why);
		return;
	}
	e->a = plan.alloc;
	snprintf(e->note, sizeof e->note, "%s", plan.note);
	e->feasible = true;
}

static int editor_key(struct ui_app *app, void *self, int action, int ch)
{
	struct editor *e = self;
	char *t = e->text[e->focus];
	size_t len = strlen(t);
	switch (action) {
	case ACT_CLOSE: return UI_POP;
	case ACT_FIELD: e->focus = 1 - e->focus; return 0;
	case ACT_ERASE:
		if (len > 0)
			t[len - 1] = '\0';
		break;
	case ACT_TYPE:
		if (!strchr("0123456789.-+eE", ch) || len + 1 >= sizeof e->text[0])
			return 0;
		t[len] = (char)ch;
		t[len + 1] = '\0';
		break;
	case ACT_APPLY: {
		struct sl_error err;
		int lane = ui_race_focus(app);
		if (!ui_app_context(app)->editor_restarts) {
			snprintf(e->status, sizeof e->status, "this lab cannot restart training");
		} else if (!e->feasible) {
			snprintf(e->status, sizeof e->status, "no allocation: nothing to train with");
		} else if (lab_restart_lane(ui_app_lab(app), lane, &e->spec, &err) != SL_OK) {
			snprintf(e->status, sizeof e->status, "%s", err.msg);
		} else {
			ui_app_say(app, "lane %d trains anew, %s", lane + 1, e->note);
			return UI_POP;
		}
		return 0;
	}
	default: return 0; /* keys the editor has no use for */
	}
	e->status[0] = '\0';
	update(e);
	return 0;
}

static void editor_draw(struct ui_app *app, void *self)
{
	struct editor *e = self;
	int lane = ui_race_focus(app);
	static struct job_snapshot snap_store; /* large; only the main thread draws */
	struct job_snapshot *snap = &snap_store;
	lab_snapshot(ui_app_lab(app), lane, snap);
	int h = e->a.n + 9, w = 70 < COLS ? 70 : COLS;
	h = h < 14 ? 14 : h;
	int y = (LINES - h) / 2, x = (COLS - w) / 2;
	ui_clear(y, x, h, w);
	char title[96];
	snprintf(title, sizeof title, "lane %d: network (nu, delta) -> per-layer caps (Thm 3, 4)",
		 lane + 1);
	ui_box(y, x, h, w, title);
	for (int f = 0; f < 2; f++) {
		if (e->focus == f)
			attron(A_REVERSE);
		mvprintw(y + 1, x + 2 + 24 * f, "%-5s %-16s", f ? "delta" : "nu", e->text[f]);
		if (e->focus == f)
			attroff(A_REVERSE);
	}
	int row = y + 2;
	if (!e->feasible) {
		/* The reason, wrapped to the box. */
		const char *m = e->why;
		for (; *m && row < y + h - 3; row++) {
			int n = (int)strlen(m) < w - 4 ? (int)strlen(m) : w - 4;
			if (n == w - 4)
				for (int k = n; k > 0; k--)
					if (m[k] == ' ') {
						n = k;
						break;
					}
			char part[160];
			snprintf(part, sizeof part, "%.*s", n, m);
			ui_text(row, x + 2, w - 4, UI_BAD, false, part);
			m += n;
			while (*m == ' ')
				m++;
		}
	} else {
		ui_textf(row++, x + 2, w - 4, UI_NORMAL, false,
			 "sector [%.4f, %.4f], Lipschitz bound gamma %.4f", e->lo, e->hi, e->gamma);
		ui_textf(row++, x + 2, w - 4, UI_NORMAL, true, "%-7s %12s %12s %12s  %s", "layer",
			 "nu_i", "delta_i", "rho_i", "now");
		/* Weighted layers take the network's names; pools are counted. */
		int weighted = 0, pools = 0;
		for (int i = 0; i < e->a.n && row < y + h - 3; i++, row++) {
			const struct sector_alloc_layer *l = &e->a.layer[i];
			char name[16];
			float now = 0;
			if (l->has_rho && weighted < snap->nlayers) {
				now = snap->rho[weighted];
				snprintf(name, sizeof name, "%s", snap->layer_name[weighted++]);
			} else {
				snprintf(name, sizeof name, "pool%d", ++pools);
			}
			ui_textf(row, x + 2, w - 4, UI_NORMAL, false, "%-7s %12.6f %12.6f", name, l->nu,
				 l->delta);
			if (l->has_rho)
				ui_textf(row, x + 35, w - 37, UI_NORMAL, false, "%12.6f  %s", l->rho,
					 now > 0 ? "" : "none");
			if (l->has_rho && now > 0)
				ui_textf(row, x + 49, w - 51, now <= l->rho ? UI_NORMAL : UI_BAD, false,
					 "%.4f%s", now, now <= l->rho ? "" : " >");
		}
		ui_textf(row++, x + 2, w - 4, UI_NORMAL, false, "product of the caps %.6f (%s objective)",
			 e->a.rho_product, sector_objective_name(e->spec.objective));
	}
	if (e->status[0])
		ui_text(y + h - 3, x + 2, w - 4, UI_BAD, false, e->status);
	ui_text(y + h - 2, x + 2, w - 4, UI_DIM, false,
		ui_app_context(app)->editor_restarts ? "Enter: train this lane with these caps  Tab: field  q/Esc: close"
			     : "Tab: field  q/Esc: close; 'now': the caps in training");
}

const struct ui_screen *ui_editor_screen(struct ui_app *app)
{
	if (ed.app != app) {
		memset(&ed, 0, sizeof ed);
		ed.app = app;
		ed.screen = (struct ui_screen){
			.title = "(nu, delta) editor",
			.guide = "each layer's (nu_i, delta_i) and Theorem 4 cap rho_i for the "
				 "network's indices; 'now': the caps the lane trains with",
			.keys = editor_keys,
			.nkeys = (int)(sizeof editor_keys / sizeof editor_keys[0]),
			.modal = true,
			.key = editor_key,
			.draw = editor_draw,
			.self = &ed,
		};
		/* The focused lane's indices (the paper's unless asked otherwise). */
		const struct lab_lane_config *lc = lab_lane(ui_app_lab(app), ui_race_focus(app));
		snprintf(ed.text[0], sizeof ed.text[0], "%g", lc->train.caps.nu);
		snprintf(ed.text[1], sizeof ed.text[1], "%g", lc->train.caps.delta);
	}
	ed.focus = 0;
	ed.status[0] = '\0';
	update(&ed);
	return &ed.screen;
}
