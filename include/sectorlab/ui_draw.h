/*
 * ui_draw: what every screen draws with, on the main thread, into the
 * terminal's next frame (ui_app sends it with one doupdate).
 *
 * Text clipped to a width, boxes, braille line plots on numeric axes, bars,
 * sparklines and half-block images.  Colours are roles, not colours: with
 * NO_COLOR, or on a terminal without colours, a role is drawn with an
 * attribute (bold, underline, reverse) or a glyph instead, and without a
 * UTF-8 locale every glyph has an ASCII form.  The header names no curses
 * type, so screens that only draw need not include curses.
 */
#ifndef SECTORLAB_UI_DRAW_H
#define SECTORLAB_UI_DRAW_H

#include <stdbool.h>
#include <stdint.h>

/* Colour roles.  UI_LANE0 + k is lane k's colour in every panel. */
enum ui_role {
	UI_NORMAL, UI_TITLE, UI_DIM, UI_OK, UI_BAD, UI_WARN, UI_KEY,
	UI_LANE0, UI_LANE1, UI_LANE2, UI_LANE3,
	UI_NROLES
};

/* Set up colours (start_color) unless NO_COLOR is set; remember whether the
 * locale is UTF-8.  Called by ui_app after initscr. */
void ui_draw_init(void);
bool ui_draw_colour(void);
bool ui_draw_utf8(void);

/* Text at (y, x), at most w columns; bold adds A_BOLD.  Returns columns drawn. */
int ui_text(int y, int x, int w, enum ui_role role, bool bold, const char *text);
/* printf-style ui_text. */
int ui_textf(int y, int x, int w, enum ui_role role, bool bold, const char *fmt, ...)
	__attribute__((format(printf, 6, 7)));
/* Blank a rectangle. */
void ui_clear(int y, int x, int h, int w);
/* A box with a title in its top edge. */
void ui_box(int y, int x, int h, int w, const char *title);
/* One glyph: a Unicode code point, or ascii without UTF-8. */
void ui_glyph(int y, int x, unsigned wc, char ascii, enum ui_role role, bool bold);

/* ---- line plots: braille dots, 2 x 4 per cell ---- */
#define UI_PLOT_MAX_W 200
#define UI_PLOT_MAX_H 64

struct ui_plot {
	int w, h;                 /* cells */
	double x0, x1, y0, y1;    /* axes: x left to right, y bottom to top */
	unsigned char dots[UI_PLOT_MAX_H][UI_PLOT_MAX_W];
	unsigned char role[UI_PLOT_MAX_H][UI_PLOT_MAX_W];
	char mark[UI_PLOT_MAX_H][UI_PLOT_MAX_W];   /* a character drawn instead of dots */
};

void ui_plot_init(struct ui_plot *p, int w, int h, double x0, double x1, double y0, double y1);
/* A line through (x[i], y[i]), i < n. */
void ui_plot_line(struct ui_plot *p, const double *x, const float *y, int n, enum ui_role role);
/* A character at each (x[i], y[i]) (e.g. 'o' for per-epoch values). */
void ui_plot_marks(struct ui_plot *p, const double *x, const float *y, int n, char mark,
		   enum ui_role role);
/* Draw the plot at (y, x).  Without colours a line of role UI_LANE0 + k is
 * drawn with the character lane_glyph[k] instead of dots, so lanes stay apart. */
void ui_plot_draw(const struct ui_plot *p, int y, int x);
extern const char ui_lane_glyph[4];

/* A horizontal bar of w cells filled to value / top, with a neutral mark at
 * cap / top (cap <= 0: none); bar and mark in UI_BAD when over (the
 * caller's verdict, e.g. certify_over_cap on the verified norm). */
void ui_bar(int y, int x, int w, double value, double cap, double top, bool over);
/* A glyph on such a bar at value / top (the last cell beyond top), e.g. a
 * second quantity measured on the same scale. */
void ui_bar_marker(int y, int x, int w, double value, double top, unsigned wc, char ascii,
		   enum ui_role role);
/* The last w values of v[0..n) as a sparkline scaled to [lo, hi]. */
void ui_spark(int y, int x, int w, const float *v, int n, double lo, double hi, enum ui_role role);

/* An image (c planes of h x w bytes) in half-block cells, every `down`-th
 * pixel in each direction, each cell `up` columns wide: h / (2 down) rows
 * and up * w / down columns.  On a terminal of 256 colours (and enough
 * colour pairs) three planes are drawn in colour (the 6x6x6 cube), one in
 * grey levels; otherwise, and with NO_COLOR, in ASCII shading of the
 * brightness. */
void ui_image(int y, int x, const uint8_t *pixels, int c, int h, int w, int down, int up);

#endif
