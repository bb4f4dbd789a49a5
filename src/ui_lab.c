/*
 * ui_lab: the live lab screen.
 *
 * One loop on the main thread: read a key with a short timeout, act on it
 * through the key table, copy the worker's latest snapshot, redraw, one
 * doupdate.  Panels: training curves (braille plots), per-layer spectral
 * norms against their caps, and a test digit beside its FGSM adversarial
 * (half-block pixels).  Without a UTF-8 locale or 256 colours the same panels
 * are drawn with ASCII.
 */
#define _XOPEN_SOURCE_EXTENDED 1
#include <langinfo.h>
#include <locale.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>

#include <curses.h>

#include "sectorlab/certify.h"
#include "sectorlab/interrupt.h"
#include "sectorlab/ui.h"

/* ---- colours and glyphs ---------------------------------------------------- */

enum { PAIR_TITLE = 1, PAIR_LOSS, PAIR_TRAIN, PAIR_TEST, PAIR_OK, PAIR_BAD, PAIR_DIM,
       PAIR_GREY0 = 16 };

#define GREY_LEVELS 8

/* The (nu, delta) editor: two text fields and the allocation they give,
 * recomputed after every key. */
struct editor {
	bool open;
	int focus;               /* 0: nu, 1: delta */
	char text[2][24];
	bool valid;              /* both fields are numbers */
	bool feasible;
	double lo, hi, gamma;    /* the network's sector and Lipschitz bound */
	int nlayers;             /* rows of the table: the model's sector layers */
	struct caps_spec spec;   /* the lab's caps spec with the fields' indices */
	struct sector_allocation a; /* caps_preview's allocation for spec */
	char why[512];           /* when not valid or not feasible */
	char status[160];        /* after Enter */
	bool lost;               /* a restart failed and took the job with it */
};

struct ui {
	bool utf8;
	bool greys;  /* 8 grey levels as colour pairs for half-block pixels */
	bool colour;
	bool help;
	int pace;
	float eps;
	bool paused;
	const struct ui_context *ctx;
	struct job *job;
	struct job_snapshot snap;
	struct editor ed;
};

static void setup_colours(struct ui *ui)
{
	if (!has_colors())
		return;
	start_color();
	use_default_colors();
	ui->colour = true;
	init_pair(PAIR_TITLE, COLOR_BLACK, COLOR_CYAN);
	init_pair(PAIR_LOSS, COLOR_YELLOW, -1);
	init_pair(PAIR_TRAIN, COLOR_CYAN, -1);
	init_pair(PAIR_TEST, COLOR_GREEN, -1);
	init_pair(PAIR_OK, COLOR_GREEN, -1);
	init_pair(PAIR_BAD, COLOR_RED, -1);
	init_pair(PAIR_DIM, COLOR_BLUE, -1);
	if (COLORS >= 256 && COLOR_PAIRS >= PAIR_GREY0 + GREY_LEVELS * GREY_LEVELS) {
		for (int f = 0; f < GREY_LEVELS; f++)
			for (int b = 0; b < GREY_LEVELS; b++)
				init_pair((short)(PAIR_GREY0 + f * GREY_LEVELS + b),
					  (short)(232 + f * 23 / (GREY_LEVELS - 1)),
					  (short)(232 + b * 23 / (GREY_LEVELS - 1)));
		ui->greys = true;
	}
}

static void put_wch(int y, int x, wchar_t wc, int pair)
{
	cchar_t cc;
	wchar_t s[2] = {wc, 0};
	setcchar(&cc, s, 0, (short)pair, NULL);
	mvadd_wch(y, x, &cc);
}

/* Print at most w columns of text. */
static void put_text(int y, int x, int w, const char *text)
{
	if (w > 0)
		mvaddnstr(y, x, text, w);
}

static void frame(int y, int x, int h, int w, const char *title)
{
	/* The wide-character forms draw Unicode box lines in a UTF-8 locale and
	 * fall back to the terminal's line-drawing set elsewhere. */
	mvadd_wch(y, x, WACS_ULCORNER);
	mvhline_set(y, x + 1, WACS_HLINE, w - 2);
	mvadd_wch(y, x + w - 1, WACS_URCORNER);
	mvvline_set(y + 1, x, WACS_VLINE, h - 2);
	mvvline_set(y + 1, x + w - 1, WACS_VLINE, h - 2);
	mvadd_wch(y + h - 1, x, WACS_LLCORNER);
	mvhline_set(y + h - 1, x + 1, WACS_HLINE, w - 2);
	mvadd_wch(y + h - 1, x + w - 1, WACS_LRCORNER);
	attron(A_BOLD);
	mvprintw(y, x + 2, " %.*s ", w - 6, title);
	attroff(A_BOLD);
}

/* ---- braille plots --------------------------------------------------------- */

#define PLOT_MAX_W 160
#define PLOT_MAX_H 60

struct plot {
	int w, h;                  /* cells */
	float lo, hi;              /* value range, bottom to top */
	unsigned char dots[PLOT_MAX_H][PLOT_MAX_W];
	short pair[PLOT_MAX_H][PLOT_MAX_W];
};

static void plot_dot(struct plot *p, int dx, int dy, short pair)
{
	/* dx in [0, 2w), dy in [0, 4h) from the top. */
	static const unsigned char bit[4][2] = {{0x01, 0x08}, {0x02, 0x10}, {0x04, 0x20},
						{0x40, 0x80}};
	if (dx < 0 || dy < 0 || dx >= 2 * p->w || dy >= 4 * p->h)
		return;
	p->dots[dy / 4][dx / 2] |= bit[dy % 4][dx % 2];
	p->pair[dy / 4][dx / 2] = pair;
}

static int plot_row(const struct plot *p, float v)
{
	float t = (v - p->lo) / (p->hi - p->lo);
	t = t < 0 ? 0 : (t > 1 ? 1 : t);
	return (int)lroundf((1 - t) * (4 * p->h - 1));
}

/* Draw a series left to right, one dot column per point while it fits,
 * compressed to the width after that; consecutive points are joined. */
static void plot_series(struct plot *p, const struct job_series *s, short pair)
{
	int cols = 2 * p->w, prev = -1;
	for (int i = 0; i < s->n; i++) {
		int x = s->n <= cols ? i : (int)((long)i * cols / s->n);
		int y = plot_row(p, s->v[i]);
		if (prev >= 0) {
			int a = prev < y ? prev : y, b = prev < y ? y : prev;
			for (int k = a; k <= b; k++)
				plot_dot(p, x, k, pair);
		}
		plot_dot(p, x, y, pair);
		prev = y;
	}
}

static void plot_draw(const struct ui *ui, const struct plot *p, int y, int x)
{
	for (int r = 0; r < p->h; r++)
		for (int c = 0; c < p->w; c++) {
			unsigned char d = p->dots[r][c];
			if (!d)
				continue;
			if (ui->utf8)
				put_wch(y + r, x + c, (wchar_t)(0x2800 + d), p->pair[r][c]);
			else
				mvaddch(y + r, x + c, '*' | COLOR_PAIR(p->pair[r][c]));
		}
}

static void series_range(const struct job_series *s, float *lo, float *hi)
{
	for (int i = 0; i < s->n; i++) {
		*lo = s->v[i] < *lo ? s->v[i] : *lo;
		*hi = s->v[i] > *hi ? s->v[i] : *hi;
	}
}

static void curve_panel(const struct ui *ui, int y, int x, int h, int w, bool accuracy)
{
	const struct job_snapshot *s = &ui->snap;
	frame(y, x, h, w, accuracy ? "accuracy" : "training loss");
	static struct plot p; /* large; only the main thread draws */
	memset(&p, 0, sizeof p);
	int label_w = 7;
	p.w = w - 2 - label_w;
	p.h = h - 3;
	if (p.w < 4 || p.h < 1)
		return;
	p.w = p.w > PLOT_MAX_W ? PLOT_MAX_W : p.w;
	p.h = p.h > PLOT_MAX_H ? PLOT_MAX_H : p.h;
	if (accuracy) {
		p.lo = 1, p.hi = 0;
		series_range(&s->train_acc, &p.lo, &p.hi);
		series_range(&s->test_acc, &p.lo, &p.hi);
		if (p.hi < p.lo)
			p.lo = 0, p.hi = 1;
		p.lo = floorf(p.lo * 10) / 10;
		p.hi = 1;
	} else {
		p.lo = 0, p.hi = 0;
		series_range(&s->loss, &p.lo, &p.hi);
		if (p.hi <= 0)
			p.hi = 1;
	}
	if (p.hi - p.lo < 1e-6f)
		p.hi = p.lo + 1;
	if (accuracy) {
		plot_series(&p, &s->train_acc, PAIR_TRAIN);
		plot_series(&p, &s->test_acc, PAIR_TEST);
	} else {
		plot_series(&p, &s->loss, PAIR_LOSS);
	}
	char buf[32];
	snprintf(buf, sizeof buf, accuracy ? "%5.0f%%" : "%6.3f", accuracy ? 100 * p.hi : p.hi);
	put_text(y + 1, x + 1, label_w - 1, buf);
	snprintf(buf, sizeof buf, accuracy ? "%5.0f%%" : "%6.3f", accuracy ? 100 * p.lo : p.lo);
	put_text(y + p.h, x + 1, label_w - 1, buf);
	plot_draw(ui, &p, y + 1, x + label_w);

	/* Legend with the latest values. */
	int ly = y + h - 2;
	if (accuracy) {
		float tr = s->train_acc.n ? s->train_acc.v[s->train_acc.n - 1] : 0;
		float te = s->test_acc.n ? s->test_acc.v[s->test_acc.n - 1] : 0;
		attron(COLOR_PAIR(PAIR_TRAIN));
		mvprintw(ly, x + 2, "train %5.1f%%", 100 * tr);
		attroff(COLOR_PAIR(PAIR_TRAIN));
		attron(COLOR_PAIR(PAIR_TEST));
		if (s->nevals)
			mvprintw(ly, x + 16, "test %5.2f%% (epoch %d)", 100 * te, s->nevals);
		else
			mvprintw(ly, x + 16, "test: after epoch 1");
		attroff(COLOR_PAIR(PAIR_TEST));
	} else {
		float lv = s->loss.n ? s->loss.v[s->loss.n - 1] : 0;
		attron(COLOR_PAIR(PAIR_LOSS));
		mvprintw(ly, x + 2, "loss %.4f", lv);
		attroff(COLOR_PAIR(PAIR_LOSS));
		mvprintw(ly, x + 18, "step %ld", s->step);
	}
}

/* ---- spectral norms -------------------------------------------------------- */

/* over: the job's verdict (certify_over_cap on the verified norm). */
static void bar(const struct ui *ui, int y, int x, int w, float value, float cap, float top,
		bool over)
{
	int fill = (int)lroundf(value / top * w);
	int mark = cap > 0 ? (int)lroundf(cap / top * w) : -1;
	fill = fill > w ? w : fill;
	for (int k = 0; k < w; k++) {
		int pair = over ? PAIR_BAD : PAIR_OK;
		if (k == mark - 1 || (mark == w && k == w - 1)) {
			if (ui->utf8)
				put_wch(y, x + k, k < fill ? L'\u2588' : L'\u2502', PAIR_BAD);
			else
				mvaddch(y, x + k, '|' | COLOR_PAIR(PAIR_BAD));
		} else if (k < fill) {
			if (ui->utf8)
				put_wch(y, x + k, L'\u2588', pair);
			else
				mvaddch(y, x + k, '#' | COLOR_PAIR(pair));
		} else {
			if (ui->utf8)
				put_wch(y, x + k, L'\u00b7', PAIR_DIM);
			else
				mvaddch(y, x + k, '.' | COLOR_PAIR(PAIR_DIM));
		}
	}
}

static void spectral_panel(const struct ui *ui, int y, int x, int h, int w)
{
	const struct job_snapshot *s = &ui->snap;
	frame(y, x, h, w, "spectral norms vs caps");
	float top = 0;
	for (int i = 0; i < s->nlayers; i++) {
		top = fmaxf(top, fmaxf(s->sigma_used[i], s->rho[i]));
		top = fmaxf(top, (float)s->sigma_exact[i]);
	}
	top = top > 0 ? top * 1.15f : 1;
	int row = y + 1, iw = w - 2;
	for (int i = 0; i < s->nlayers && row + 2 < y + h - 1; i++) {
		char line[160];
		bool narrow = iw < 24;
		if (s->rho[i] > 0)
			snprintf(line, sizeof line, narrow ? "%s %.3f/%.3f" : "%s  %.3f / cap %.3f",
				 s->layer_name[i], s->sigma_used[i], s->rho[i]);
		else
			snprintf(line, sizeof line, narrow ? "%s %.3f" : "%s  %.3f  (no cap)",
				 s->layer_name[i], s->sigma_used[i]);
		attron(A_BOLD);
		put_text(row++, x + 1, iw, line);
		attroff(A_BOLD);
		bar(ui, row++, x + 1, iw, s->sigma_used[i], s->rho[i], top, s->over[i]);
		if (s->sigma_exact[i] > 0)
			snprintf(line, sizeof line, "exact %.4f  raw %.3f", s->sigma_exact[i],
				 s->sigma_hat[i]);
		else
			snprintf(line, sizeof line, "raw %.3f  (exact: epoch 1)", s->sigma_hat[i]);
		attron(COLOR_PAIR(PAIR_DIM));
		put_text(row++, x + 1, iw, line);
		attroff(COLOR_PAIR(PAIR_DIM));
	}
	if (row < y + h - 1) {
		attron(COLOR_PAIR(s->rho_certified ? PAIR_OK : PAIR_BAD));
		put_text(y + h - 2, x + 1, iw, ui->ctx->caps_note);
		attroff(COLOR_PAIR(s->rho_certified ? PAIR_OK : PAIR_BAD));
	}
}

/* ---- images ---------------------------------------------------------------- */

static int grey_level(uint8_t v)
{
	return (v * (GREY_LEVELS - 1) + 127) / 255;
}

/* Channel-averaged brightness of pixel (r, c). */
static uint8_t pixel(const struct job_snapshot *s, const uint8_t *img, int r, int c)
{
	if (r >= s->img_h)
		return 0;
	int sum = 0, plane = s->img_h * s->img_w;
	for (int k = 0; k < s->img_c; k++)
		sum += img[k * plane + r * s->img_w + c];
	return (uint8_t)(sum / s->img_c);
}

static void draw_image(const struct ui *ui, int y, int x, const uint8_t *img)
{
	const struct job_snapshot *s = &ui->snap;
	static const char ramp[] = " .:-=+*#%@";
	for (int r = 0; r < s->img_h; r += 2)
		for (int c = 0; c < s->img_w; c++) {
			uint8_t top = pixel(s, img, r, c), bot = pixel(s, img, r + 1, c);
			if (ui->utf8 && ui->greys) {
				int pair = PAIR_GREY0 + grey_level(top) * GREY_LEVELS + grey_level(bot);
				put_wch(y + r / 2, x + c, L'\u2580', pair);
			} else {
				int v = (top + bot) / 2;
				mvaddch(y + r / 2, x + c, (chtype)ramp[v * 9 / 255]);
			}
		}
}

static void image_panel(const struct ui *ui, int y, int x, int h, int w)
{
	const struct job_snapshot *s = &ui->snap;
	char title[64];
	snprintf(title, sizeof title, "FGSM, L-inf eps %.2f", ui->eps);
	frame(y, x, h, w, title);
	if (!s->have_example) {
		put_text(y + 1, x + 2, w - 4, "waiting for the first example...");
		return;
	}
	int iw = s->img_w, gap = 3;
	draw_image(ui, y + 1, x + 2, s->orig);
	draw_image(ui, y + 1, x + 2 + iw + gap, s->adv);
	int ly = y + 1 + (s->img_h + 1) / 2;
	bool clean_ok = s->pred_clean == s->label, adv_ok = s->pred_adv == s->label;
	mvprintw(ly, x + 2, "#%u: %d, ", s->example_index, s->label);
	attron(COLOR_PAIR(clean_ok ? PAIR_OK : PAIR_BAD));
	printw("predicted %d", s->pred_clean);
	attroff(COLOR_PAIR(clean_ok ? PAIR_OK : PAIR_BAD));
	attron(COLOR_PAIR(adv_ok ? PAIR_OK : PAIR_BAD));
	mvprintw(ly, x + 2 + iw + gap, "predicted %d%s", s->pred_adv, adv_ok ? "" : " (fooled)");
	attroff(COLOR_PAIR(adv_ok ? PAIR_OK : PAIR_BAD));
	if (s->have_attack) {
		/* The set-level figures sit in the bottom border. */
		char line[160];
		snprintf(line, sizeof line, " %d test images: clean %.1f%%  robust %.1f%%  fooled %.1f%% ",
			 s->attack_n, 100 * s->clean_acc, 100 * s->robust_acc,
			 100 * s->success_rate);
		put_text(y + h - 1, x + 2, w - 4, line);
	}
}

/* ---- keys ------------------------------------------------------------------ */

enum action { ACT_QUIT, ACT_PAUSE, ACT_HELP, ACT_NEXT, ACT_EPS_UP, ACT_EPS_DOWN, ACT_FASTER,
	      ACT_SLOWER, ACT_EDITOR };

struct key_binding {
	int key;
	const char *name;   /* as shown */
	const char *what;   /* help text */
	enum action action;
	bool in_footer;
};

static const struct key_binding keys[] = {
	{' ', "space", "pause or resume training", ACT_PAUSE, true},
	{'n', "n", "next test digit and its adversarial", ACT_NEXT, true},
	{'+', "+", "stronger attack (eps + 0.05)", ACT_EPS_UP, true},
	{'=', "=", "stronger attack (same as +)", ACT_EPS_UP, false},
	{'-', "-", "weaker attack (eps - 0.05)", ACT_EPS_DOWN, true},
	{']', "]", "train faster (more steps per second)", ACT_FASTER, true},
	{'[', "[", "train slower", ACT_SLOWER, true},
	{'a', "a", "(nu, delta) editor: the allocation as you type", ACT_EDITOR, true},
	{'?', "?", "show or hide this help", ACT_HELP, true},
	{'q', "q", "quit (also Ctrl-C)", ACT_QUIT, true},
};
#define NKEYS ((int)(sizeof keys / sizeof keys[0]))

static const int paces[] = {5, 10, 30, 100, 300, 0}; /* 0: unlimited */
#define NPACES ((int)(sizeof paces / sizeof paces[0]))

static int pace_index(int pace)
{
	for (int i = 0; i < NPACES; i++)
		if (paces[i] == pace)
			return i;
	return 2;
}

/* ---- the (nu, delta) editor ------------------------------------------------- */

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
static void editor_update(struct ui *ui)
{
	struct editor *ed = &ui->ed;
	double nu, delta;
	ed->valid = parse_number(ed->text[0], &nu) && parse_number(ed->text[1], &delta);
	ed->feasible = false;
	if (!ed->valid) {
		snprintf(ed->why, sizeof ed->why, "type two numbers");
		return;
	}
	struct sl_error err;
	status_clear(&err);
	/* The same computation as the restart's (caps.h): preview, not a copy. */
	ed->spec = caps_spec_certified(nu, delta, ui->ctx->caps.objective);
	struct caps_plan plan;
	if (sector_slopes(nu, delta, &ed->lo, &ed->hi, &err) != SL_OK ||
	    sector_gamma(nu, delta, &ed->gamma, &err) != SL_OK ||
	    caps_preview(&ed->spec, &ui->ctx->arch, &plan, &err) != SL_OK) {
		snprintf(ed->why, sizeof ed->why, "%s", err.msg);
		return;
	}
	if (!plan.feasible) {
		snprintf(ed->why, sizeof ed->why, "%s", plan.why);
		return;
	}
	ed->a = plan.alloc;
	ed->feasible = true;
}

static void editor_open(struct ui *ui)
{
	struct editor *ed = &ui->ed;
	if (!ed->text[0][0] && !ed->text[1][0]) { /* first time: the lab's indices */
		snprintf(ed->text[0], sizeof ed->text[0], "%g", ui->ctx->caps.nu);
		snprintf(ed->text[1], sizeof ed->text[1], "%g", ui->ctx->caps.delta);
	}
	struct sector_layer layers[SECTOR_MAX_LAYERS];
	int n = certify_arch_layers(&ui->ctx->arch, layers, SECTOR_MAX_LAYERS, NULL);
	ed->nlayers = n > 0 ? n : 0;
	ed->open = true;
	ed->focus = 0;
	ed->status[0] = '\0';
	editor_update(ui);
}

/* Keys while the editor is open: it takes them all but q. */
static bool editor_key(struct ui *ui, int ch)
{
	struct editor *ed = &ui->ed;
	char *t = ed->text[ed->focus];
	size_t len = strlen(t);
	switch (ch) {
	case 27: /* Esc */
	case 'a':
		ed->open = false;
		return true;
	case 'q':
		return false;
	case '\n':
	case '\r':
	case KEY_ENTER:
		if (!ui->ctx->restart) {
			snprintf(ed->status, sizeof ed->status, "this lab cannot restart training");
		} else if (!ed->feasible) {
			snprintf(ed->status, sizeof ed->status, "no allocation: nothing to train with");
		} else {
			struct job *job = ui->ctx->restart(ui->ctx->restart_ctx, &ed->spec, &ed->lost,
							   ed->status, sizeof ed->status);
			if (ed->lost)
				return false;
			if (job) {
				ui->job = job;
				ui->paused = false;
				job_set_pace(job, ui->pace);
				job_set_eps(job, ui->eps);
				job_snapshot(job, &ui->snap);
				ed->open = false;
			}
		}
		return true;
	case '\t':
	case KEY_UP:
	case KEY_DOWN:
	case KEY_BTAB:
		ed->focus = 1 - ed->focus;
		return true;
	case KEY_BACKSPACE:
	case 127:
	case 8:
		if (len > 0)
			t[len - 1] = '\0';
		break;
	default:
		if (ch >= 0 && ch < 128 && strchr("0123456789.-+eE", ch) && ch != '\0' &&
		    len + 1 < sizeof ed->text[0]) {
			t[len] = (char)ch;
			t[len + 1] = '\0';
		} else {
			return true;
		}
	}
	editor_update(ui);
	return true;
}

static void editor_overlay(const struct ui *ui)
{
	const struct editor *ed = &ui->ed;
	const struct ui_context *c = ui->ctx;
	int h = ed->nlayers + 8 < 13 ? 13 : ed->nlayers + 8, w = 66;
	int y = (LINES - h) / 2, x = (COLS - w) / 2;
	for (int r = 0; r < h; r++)
		mvhline(y + r, x, ' ', w);
	frame(y, x, h, w, "network sector indices -> per-layer caps (Theorems 3, 4)");
	for (int f = 0; f < 2; f++) {
		if (ed->focus == f)
			attron(A_REVERSE);
		mvprintw(y + 1, x + 2 + 24 * f, "%-5s %-16s", f ? "delta" : "nu", ed->text[f]);
		if (ed->focus == f)
			attroff(A_REVERSE);
	}
	int row = y + 2;
	if (!ed->feasible) {
		attron(COLOR_PAIR(PAIR_BAD));
		/* The reason, wrapped to the box. */
		const char *m = ed->why;
		for (; *m && row < y + h - 2; row++) {
			int n = (int)strlen(m) < w - 4 ? (int)strlen(m) : w - 4;
			if (n == w - 4)
				for (int k = n; k > 0; k--)
					if (m[k] == ' ') {
						n = k;
						break;
					}
			mvprintw(row, x + 2, "%.*s", n, m);
			m += n;
			while (*m == ' ')
				m++;
		}
		attroff(COLOR_PAIR(PAIR_BAD));
	} else {
		mvprintw(row++, x + 2, "sector [%.4f, %.4f], Lipschitz bound gamma %.4f", ed->lo, ed->hi,
			 ed->gamma);
		attron(A_BOLD);
		mvprintw(row++, x + 2, "%-7s %12s %12s %12s  %s", "layer", "nu_i", "delta_i", "rho_i",
			 "now");
		attroff(A_BOLD);
		/* Weighted layers take the network's names; pools are counted. */
		int weighted = 0, pools = 0;
		for (int i = 0; i < ed->a.n; i++) {
			const struct sector_alloc_layer *l = &ed->a.layer[i];
			char name[16];
			if (l->has_rho && weighted < ui->snap.nlayers)
				snprintf(name, sizeof name, "%s", ui->snap.layer_name[weighted++]);
			else
				snprintf(name, sizeof name, "pool%d", ++pools);
			mvprintw(row, x + 2, "%-7s %12.6f %12.6f", name, l->nu, l->delta);
			if (l->has_rho)
				mvprintw(row, x + 35, "%12.6f", l->rho);
			row++;
		}
		mvprintw(row++, x + 2, "product of the caps %.6f (%s objective)", ed->a.rho_product,
			 sector_objective_name(ed->spec.objective));
	}
	/* The caps training uses now, against the table. */
	int k = 0;
	for (int i = 0; ed->feasible && i < ed->a.n && k < ui->snap.nlayers; i++)
		if (ed->a.layer[i].has_rho) {
			float cap = ui->snap.rho[k++];
			if (cap > 0)
				mvprintw(y + 4 + i, x + 50, "%.4f%s", cap,
					 cap <= ed->a.layer[i].rho ? "" : " >");
		}
	if (ed->status[0]) {
		attron(COLOR_PAIR(PAIR_BAD));
		mvprintw(y + h - 3, x + 2, "%.*s", w - 4, ed->status);
		attroff(COLOR_PAIR(PAIR_BAD));
	}
	attron(COLOR_PAIR(PAIR_DIM));
	mvprintw(y + h - 2, x + 2, "%s",
		 c->restart ? "Enter: train anew with these caps  Tab: field  Esc: close"
			    : "Tab switches field, Esc closes; 'now': the caps in training");
	attroff(COLOR_PAIR(PAIR_DIM));
}

/* Returns false when the lab should close. */
static bool handle_key(struct ui *ui, int ch)
{
	if (ui->ed.open && ch != ERR && ch != KEY_RESIZE)
		return editor_key(ui, ch);
	if (ui->help && ch != ERR && ch != KEY_RESIZE) {
		ui->help = false;
		if (ch != 'q')
			return true;
	}
	for (int i = 0; i < NKEYS; i++) {
		if (keys[i].key != ch)
			continue;
		switch (keys[i].action) {
		case ACT_QUIT:
			return false;
		case ACT_PAUSE:
			ui->paused = !ui->paused;
			job_set_paused(ui->job, ui->paused);
			break;
		case ACT_HELP:
			ui->help = !ui->help;
			break;
		case ACT_EDITOR:
			editor_open(ui);
			break;
		case ACT_NEXT:
			job_next_example(ui->job);
			break;
		case ACT_EPS_UP:
		case ACT_EPS_DOWN: {
			float e = ui->eps + (keys[i].action == ACT_EPS_UP ? 0.05f : -0.05f);
			e = roundf(e * 100) / 100;
			ui->eps = e < 0 ? 0 : (e > 1 ? 1 : e);
			job_set_eps(ui->job, ui->eps);
			break;
		}
		case ACT_FASTER:
		case ACT_SLOWER: {
			int k = pace_index(ui->pace) + (keys[i].action == ACT_FASTER ? 1 : -1);
			k = k < 0 ? 0 : (k >= NPACES ? NPACES - 1 : k);
			ui->pace = paces[k];
			job_set_pace(ui->job, ui->pace);
			break;
		}
		}
		return true;
	}
	return true;
}

static void help_overlay(void)
{
	int h = NKEYS + 4, w = 52;
	int y = (LINES - h) / 2, x = (COLS - w) / 2;
	for (int r = 0; r < h; r++)
		mvhline(y + r, x, ' ', w);
	frame(y, x, h, w, "keys");
	for (int i = 0; i < NKEYS; i++)
		mvprintw(y + 1 + i, x + 2, "%-6s %s", keys[i].name, keys[i].what);
	attron(COLOR_PAIR(PAIR_DIM));
	mvprintw(y + h - 2, x + 2, "any key closes this help");
	attroff(COLOR_PAIR(PAIR_DIM));
}

/* ---- the screen ------------------------------------------------------------ */

static const char *state_name(const struct job_snapshot *s)
{
	switch (s->state) {
	case JOB_STARTING: return "starting";
	case JOB_RUNNING: return "training";
	case JOB_PAUSED: return "paused";
	case JOB_DONE: return "done";
	case JOB_FAILED: return "FAILED";
	}
	return "?";
}

static void header(const struct ui *ui)
{
	const struct job_snapshot *s = &ui->snap;
	char line[512], pace[32];
	if (ui->pace > 0)
		snprintf(pace, sizeof pace, "%d steps/s", ui->pace);
	else
		snprintf(pace, sizeof pace, "full speed");
	snprintf(line, sizeof line,
		 " sectorlab [%s] %s | %s, seed %lu | epoch %d/%d, step %ld | %s, %.0fk img/s ",
		 state_name(s), ui->ctx->title, train_mode_name(s->mode), (unsigned long)s->seed,
		 s->epoch, s->epochs, s->step, pace, s->images_per_sec / 1000);
	attron(COLOR_PAIR(PAIR_TITLE) | A_BOLD);
	mvhline(0, 0, ' ', COLS);
	put_text(0, 0, COLS, line);
	attroff(COLOR_PAIR(PAIR_TITLE) | A_BOLD);
}

static void footer(const struct ui *ui)
{
	int x = 0, y = LINES - 1;
	if (ui->snap.state == JOB_FAILED) {
		attron(COLOR_PAIR(PAIR_BAD) | A_BOLD);
		put_text(y, 0, COLS, ui->snap.message);
		attroff(COLOR_PAIR(PAIR_BAD) | A_BOLD);
		return;
	}
	char src[300];
	for (int i = 0; i < NKEYS && x < COLS; i++) {
		if (!keys[i].in_footer)
			continue;
		attron(A_REVERSE);
		put_text(y, x, COLS - x, keys[i].name);
		attroff(A_REVERSE);
		x += (int)strlen(keys[i].name) + 1;
	}
	snprintf(src, sizeof src, "  %u train / %u test from %s", ui->ctx->train_n,
		 ui->ctx->test_n, ui->ctx->data_source);
	attron(COLOR_PAIR(PAIR_DIM));
	put_text(y, x, COLS - x, src);
	attroff(COLOR_PAIR(PAIR_DIM));
}

#define MIN_COLS 80
#define MIN_LINES 24

static void draw(struct ui *ui)
{
	erase();
	if (COLS < MIN_COLS || LINES < MIN_LINES) {
		mvprintw(0, 0, "sectorlab needs a terminal of at least %dx%d (this one is %dx%d).",
			 MIN_COLS, MIN_LINES, COLS, LINES);
		mvprintw(1, 0, "Enlarge it, or press q to quit.");
		return;
	}
	header(ui);
	int img_h = (ui->snap.img_h ? (ui->snap.img_h + 1) / 2 : 14) + 3;
	int img_w = 2 * (ui->snap.img_w ? ui->snap.img_w : 28) + 7;
	int bottom_y = LINES - 1 - img_h;
	int curves_h = bottom_y - 1;
	curve_panel(ui, 1, 0, curves_h, COLS / 2, false);
	curve_panel(ui, 1, COLS / 2, curves_h, COLS - COLS / 2, true);
	image_panel(ui, bottom_y, 0, img_h, img_w);
	spectral_panel(ui, bottom_y, img_w, img_h, COLS - img_w);
	footer(ui);
	if (ui->ed.open)
		editor_overlay(ui);
	if (ui->help)
		help_overlay();
}

int ui_lab_run(struct job *job, const struct ui_context *ctx)
{
	struct ui ui = {.ctx = ctx, .job = job, .pace = ctx->pace};
	job_snapshot(job, &ui.snap);
	ui.eps = ui.snap.eps;

	/* SIGINT and SIGTERM end the loop, which restores the terminal. */
	struct interrupt_guard guard;
	interrupt_catch(&guard);

	setlocale(LC_ALL, "");
	ui.utf8 = strcmp(nl_langinfo(CODESET), "UTF-8") == 0;
	if (!initscr()) {
		fprintf(stderr, "sectorlab: cannot initialise the terminal\n");
		interrupt_release(&guard);
		return 1;
	}
	cbreak();
	noecho();
	keypad(stdscr, TRUE);
	set_escdelay(50); /* Esc closes the editor at once, not after a second */
	curs_set(0);
	timeout(50);
	setup_colours(&ui);

	while (!interrupt_pending()) {
		int ch = getch();
		if (ch != ERR && ch != KEY_RESIZE && !handle_key(&ui, ch))
			break;
		job_snapshot(ui.job, &ui.snap); /* the job Enter in the editor may have replaced */
		draw(&ui);
		refresh();
	}
	endwin();
	interrupt_release(&guard);
	if (ui.ed.lost) {
		fprintf(stderr, "sectorlab: %s\n", ui.ed.status);
		return 1;
	}
	/* A signal ends the lab as it would end a shell command: 128 + signal. */
	int sig = interrupt_pending();
	return sig ? interrupt_exit_code(sig) : 0;
}
