/* ui_draw: text, boxes, plots, bars and images for the lab's screens (see ui_draw.h). */
#define _XOPEN_SOURCE_EXTENDED 1
#include "sectorlab/ui_draw.h"

#include <langinfo.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>

#include <curses.h>

#define GREY_LEVELS 8
#define PAIR_GREY0 32
/* Colour images: xterm's 6 x 6 x 6 cube (colours 16 to 231); a pair for
 * each (top, bottom) cube colour of a half-block cell, made on first use. */
#define CUBE 216
#define PAIR_RGB0 (PAIR_GREY0 + GREY_LEVELS * GREY_LEVELS)

static bool colour, greys, rgb, utf8;
static unsigned char rgb_made[CUBE * CUBE / 8]; /* pairs initialised, a bit each */

const char ui_lane_glyph[4] = {'v', '2', 's', 'a'};

/* Foreground of each role; -1: the terminal's default. */
static const short role_fg[UI_NROLES] = {
	[UI_NORMAL] = -1, [UI_TITLE] = COLOR_BLACK, [UI_DIM] = COLOR_BLUE,
	[UI_OK] = COLOR_GREEN, [UI_BAD] = COLOR_RED, [UI_WARN] = COLOR_YELLOW,
	[UI_KEY] = COLOR_BLACK, [UI_LANE0] = COLOR_RED, [UI_LANE1] = COLOR_YELLOW,
	[UI_LANE2] = COLOR_GREEN, [UI_LANE3] = COLOR_MAGENTA,
};

/* Without colour, the attribute that stands for a role. */
static attr_t role_attr(enum ui_role role)
{
	if (colour)
		return role == UI_NORMAL ? A_NORMAL : COLOR_PAIR(role);
	switch (role) {
	case UI_TITLE:
	case UI_KEY: return A_REVERSE;
	case UI_BAD: return A_BOLD;
	case UI_DIM: return A_DIM;
	default: return A_NORMAL;
	}
}

void ui_draw_init(void)
{
	utf8 = strcmp(nl_langinfo(CODESET), "UTF-8") == 0;
	const char *no_colour = getenv("NO_COLOR");
	colour = greys = false;
	if ((no_colour && no_colour[0]) || !has_colors())
		return;
	start_color();
	use_default_colors();
	colour = true;
	for (int r = 1; r < UI_NROLES; r++)
		init_pair((short)r, role_fg[r],
			  r == UI_TITLE ? COLOR_CYAN : r == UI_KEY ? COLOR_WHITE : -1);
	if (COLORS >= 256 && COLOR_PAIRS >= PAIR_GREY0 + GREY_LEVELS * GREY_LEVELS) {
		for (int f = 0; f < GREY_LEVELS; f++)
			for (int b = 0; b < GREY_LEVELS; b++)
				init_pair((short)(PAIR_GREY0 + f * GREY_LEVELS + b),
					  (short)(232 + f * 23 / (GREY_LEVELS - 1)),
					  (short)(232 + b * 23 / (GREY_LEVELS - 1)));
		greys = true;
	}
	rgb = greys && COLOR_PAIRS >= PAIR_RGB0 + CUBE * CUBE;
	memset(rgb_made, 0, sizeof rgb_made);
}

bool ui_draw_colour(void)
{
	return colour;
}

bool ui_draw_utf8(void)
{
	return utf8;
}

int ui_text(int y, int x, int w, enum ui_role role, bool bold, const char *text)
{
	if (w <= 0 || y < 0 || y >= LINES || x >= COLS)
		return 0;
	if (x + w > COLS)
		w = COLS - x;
	attr_t a = role_attr(role) | (bold ? A_BOLD : 0);
	attron(a);
	int n = (int)strlen(text);
	n = n < w ? n : w;
	mvaddnstr(y, x, text, n);
	attroff(a);
	return n;
}

int ui_textf(int y, int x, int w, enum ui_role role, bool bold, const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	return ui_text(y, x, w, role, bold, buf);
}

void ui_clear(int y, int x, int h, int w)
{
	for (int r = 0; r < h; r++)
		mvhline(y + r, x, ' ', w);
}

void ui_glyph(int y, int x, unsigned wc, char ascii, enum ui_role role, bool bold)
{
	if (y < 0 || x < 0 || y >= LINES || x >= COLS)
		return;
	attr_t a = role_attr(role) | (bold ? A_BOLD : 0);
	if (utf8 && wc) {
		cchar_t cc;
		wchar_t s[2] = {(wchar_t)wc, 0};
		setcchar(&cc, s, a, colour ? (short)role : 0, NULL);
		mvadd_wch(y, x, &cc);
	} else {
		mvaddch(y, x, (chtype)(unsigned char)ascii | a);
	}
}

void ui_box(int y, int x, int h, int w, const char *title)
{
	if (h < 2 || w < 2)
		return;
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
	if (title && title[0])
		ui_textf(y, x + 2, w - 4, UI_NORMAL, true, " %s ", title);
}

/* ---- plots ----------------------------------------------------------------- */

void ui_plot_init(struct ui_plot *p, int w, int h, double x0, double x1, double y0, double y1)
{
	p->w = w < 1 ? 1 : (w > UI_PLOT_MAX_W ? UI_PLOT_MAX_W : w);
	p->h = h < 1 ? 1 : (h > UI_PLOT_MAX_H ? UI_PLOT_MAX_H : h);
	p->x0 = x0, p->x1 = x1 > x0 ? x1 : x0 + 1;
	p->y0 = y0, p->y1 = y1 > y0 ? y1 : y0 + 1;
	for (int r = 0; r < p->h; r++) {
		memset(p->dots[r], 0, (size_t)p->w);
		memset(p->mark[r], 0, (size_t)p->w);
	}
}

static int dot_x(const struct ui_plot *p, double x)
{
	double t = (x - p->x0) / (p->x1 - p->x0);
	t = t < 0 ? 0 : (t > 1 ? 1 : t);
	return (int)lround(t * (2 * p->w - 1));
}

static int dot_y(const struct ui_plot *p, double y)
{
	double t = (y - p->y0) / (p->y1 - p->y0);
	t = t < 0 ? 0 : (t > 1 ? 1 : t);
	return (int)lround((1 - t) * (4 * p->h - 1));
}

static void plot_dot(struct ui_plot *p, int dx, int dy, enum ui_role role)
{
	static const unsigned char bit[4][2] = {{0x01, 0x08}, {0x02, 0x10}, {0x04, 0x20},
						{0x40, 0x80}};
	if (dx < 0 || dy < 0 || dx >= 2 * p->w || dy >= 4 * p->h)
		return;
	p->dots[dy / 4][dx / 2] |= bit[dy % 4][dx % 2];
	p->role[dy / 4][dx / 2] = (unsigned char)role;
}

void ui_plot_line(struct ui_plot *p, const double *x, const float *y, int n, enum ui_role role)
{
	int px = -1, py = -1;
	for (int i = 0; i < n; i++) {
		if (!isfinite(y[i]))
			continue;
		int cx = dot_x(p, x[i]), cy = dot_y(p, y[i]);
		if (px >= 0) {
			/* Join to the previous point, one dot per step of the longer axis. */
			int steps = abs(cx - px) > abs(cy - py) ? abs(cx - px) : abs(cy - py);
			for (int k = 1; k < steps; k++)
				plot_dot(p, px + (cx - px) * k / steps, py + (cy - py) * k / steps, role);
		}
		plot_dot(p, cx, cy, role);
		px = cx, py = cy;
	}
}

void ui_plot_marks(struct ui_plot *p, const double *x, const float *y, int n, char mark,
		   enum ui_role role)
{
	for (int i = 0; i < n; i++) {
		if (!isfinite(y[i]))
			continue;
		int c = dot_x(p, x[i]) / 2, r = dot_y(p, y[i]) / 4;
		p->mark[r][c] = mark;
		p->role[r][c] = (unsigned char)role;
	}
}

void ui_plot_draw(const struct ui_plot *p, int y, int x)
{
	for (int r = 0; r < p->h; r++)
		for (int c = 0; c < p->w; c++) {
			enum ui_role role = (enum ui_role)p->role[r][c];
			if (p->mark[r][c]) {
				ui_glyph(y + r, x + c, 0, p->mark[r][c], role, true);
				continue;
			}
			unsigned char d = p->dots[r][c];
			if (!d)
				continue;
			if (utf8 && (colour || role < UI_LANE0))
				ui_glyph(y + r, x + c, 0x2800u + d, '*', role, false);
			else
				ui_glyph(y + r, x + c, 0,
					 role >= UI_LANE0 ? ui_lane_glyph[role - UI_LANE0] : '*', role,
					 false);
		}
}

/* ---- bars, sparklines ------------------------------------------------------ */

/* The cell of value on a bar of w cells scaled to top. */
static int bar_cell(double value, double top, int w)
{
	int k = (int)lround(value / top * w) - 1;
	return k < 0 ? 0 : (k >= w ? w - 1 : k);
}

void ui_bar(int y, int x, int w, double value, double cap, double top, bool over)
{
	if (w < 1 || !(top > 0))
		return;
	int fill = (int)lround(value / top * w);
	int mark = cap > 0 ? bar_cell(cap, top, w) : -1;
	fill = fill > w ? w : (fill < 0 ? 0 : fill);
	for (int k = 0; k < w; k++) {
		if (k == mark) /* the cap: neutral, red only when over it */
			ui_glyph(y, x + k, k < fill ? 0x2590u : 0x2502u, '|',
				 over ? UI_BAD : UI_NORMAL, true);
		else if (k < fill)
			ui_glyph(y, x + k, 0x2588u, '#', over ? UI_BAD : UI_OK, false);
		else
			ui_glyph(y, x + k, 0x00b7u, '.', UI_DIM, false);
	}
}

void ui_bar_marker(int y, int x, int w, double value, double top, unsigned wc, char ascii,
		   enum ui_role role)
{
	if (w < 1 || !(top > 0) || !(value >= 0))
		return;
	ui_glyph(y, x + bar_cell(value, top, w), wc, ascii, role, true);
}

void ui_spark(int y, int x, int w, const float *v, int n, double lo, double hi, enum ui_role role)
{
	static const char ascii[] = "_.-~=*#@";
	int first = n > w ? n - w : 0;
	if (!(hi > lo))
		hi = lo + 1;
	for (int i = first; i < n; i++) {
		double t = (v[i] - lo) / (hi - lo);
		int level = (int)lround((t < 0 ? 0 : (t > 1 ? 1 : t)) * 7);
		ui_glyph(y, x + i - first, 0x2581u + (unsigned)level, ascii[level], role, false);
	}
}

/* ---- images ---------------------------------------------------------------- */

static int grey_level(int v)
{
	return (v * (GREY_LEVELS - 1) + 127) / 255;
}

/* Channel-averaged brightness of pixel (r, c); 0 outside. */
static int pixel(const uint8_t *img, int ch, int h, int w, int r, int c)
{
	if (r >= h || c >= w)
		return 0;
	int sum = 0;
	for (int k = 0; k < ch; k++)
		sum += img[(size_t)k * h * w + (size_t)r * w + c];
	return sum / ch;
}

/* The cube colour nearest a pixel's (r, g, b), 0..215. */
static int cube_index(int r, int g, int b)
{
	/* The cube's levels are 0, 95, 135, 175, 215, 255. */
	int lv[3] = {r, g, b};
	for (int k = 0; k < 3; k++)
		lv[k] = lv[k] < 48 ? 0 : (lv[k] < 115 ? 1 : (lv[k] - 35) / 40);
	return 36 * lv[0] + 6 * lv[1] + lv[2];
}

/* The pair drawing cube colour top over cube colour bottom. */
static int rgb_pair(int top, int bottom)
{
	int k = top * CUBE + bottom;
	if (!(rgb_made[k / 8] & (1u << (k % 8)))) {
		init_extended_pair(PAIR_RGB0 + k, 16 + top, 16 + bottom);
		rgb_made[k / 8] |= (unsigned char)(1u << (k % 8));
	}
	return PAIR_RGB0 + k;
}

/* The mean of the down x down block at (r, c), channel k (-1: the mean of
 * the channels); 0 outside. */
static int block(const uint8_t *img, int ch, int h, int w, int r, int c, int down, int k)
{
	int sum = 0;
	for (int i = 0; i < down; i++)
		for (int j = 0; j < down; j++) {
			if (k < 0)
				sum += pixel(img, ch, h, w, r + i, c + j);
			else if (r + i < h && c + j < w)
				sum += img[(size_t)k * h * w + (size_t)(r + i) * w + c + j];
		}
	return sum / (down * down);
}

void ui_image(int y, int x, const uint8_t *pixels, int c, int h, int w, int down, int up)
{
	static const char ramp[] = " .:-=+*#%@";
	down = down < 1 ? 1 : down;
	up = up < 1 ? 1 : up;
	bool in_colour = c == 3 && utf8 && rgb;
	for (int r = 0; 2 * r * down < h; r++)
		for (int col = 0; col * down < w; col++) {
			/* Each down x down block, top and bottom half of the cell. */
			int ty = 2 * r * down, by = (2 * r + 1) * down, cx0 = col * down;
			int top = block(pixels, c, h, w, ty, cx0, down, -1);
			int bot = block(pixels, c, h, w, by, cx0, down, -1);
			int pair = 0;
			if (in_colour) {
				int t = cube_index(block(pixels, c, h, w, ty, cx0, down, 0),
						   block(pixels, c, h, w, ty, cx0, down, 1),
						   block(pixels, c, h, w, ty, cx0, down, 2));
				int b = cube_index(block(pixels, c, h, w, by, cx0, down, 0),
						   block(pixels, c, h, w, by, cx0, down, 1),
						   block(pixels, c, h, w, by, cx0, down, 2));
				pair = rgb_pair(t, b);
			} else if (utf8 && greys) {
				pair = PAIR_GREY0 + grey_level(top) * GREY_LEVELS + grey_level(bot);
			}
			for (int u = 0; u < up; u++) {
				int cx = x + col * up + u;
				if (pair) {
					cchar_t cc;
					wchar_t s[2] = {0x2580, 0};
					/* The pair through opts: numbers past 32767 fit. */
					setcchar(&cc, s, 0, 0, &pair);
					mvadd_wch(y + r, cx, &cc);
				} else {
					mvaddch(y + r, cx, (chtype)ramp[(top + bot) / 2 * 9 / 255]);
				}
			}
		}
}
