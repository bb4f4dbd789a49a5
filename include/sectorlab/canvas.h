/*
 * canvas: drawing on RGB images, for plots and contact sheets.
 *
 * Filled rectangles, lines of any thickness, nearest-neighbour blits of
 * gray or RGB images at an integer zoom, and text in a built-in 5 x 7 pixel
 * font (printable ASCII; any other byte draws as a box) at an integer scale.
 * Everything clips at the image's edges, so callers need not.  The canvas
 * draws into an image it does not own (see image.h).
 */
#ifndef SECTORLAB_CANVAS_H
#define SECTORLAB_CANVAS_H

#include <stdint.h>

#include "sectorlab/image.h"

struct canvas_color {
	uint8_t r, g, b;
};

/* Glyph cell: 5 x 7 pixels plus one column and two rows of spacing, times scale. */
#define CANVAS_GLYPH_W 6
#define CANVAS_GLYPH_H 9

void canvas_fill(struct image *img, struct canvas_color c);
void canvas_rect(struct image *img, int x, int y, int w, int h, struct canvas_color c);
/* Outline of a rectangle, one pixel wide. */
void canvas_frame(struct image *img, int x, int y, int w, int h, struct canvas_color c);
/* A line from (x0, y0) to (x1, y1), width pixels thick; dash > 0 draws
 * dash pixels on, dash off. */
void canvas_line(struct image *img, double x0, double y0, double x1, double y1, int width,
		 int dash, struct canvas_color c);
/* Copy src (gray or RGB) with its top-left corner at (x, y), each pixel
 * zoom x zoom. */
void canvas_blit(struct image *img, const struct image *src, int x, int y, int zoom);

/* Width in pixels of text at scale (no trailing spacing). */
int canvas_text_width(const char *text, int scale);
/* Draw text with its top-left corner at (x, y); returns the width drawn. */
int canvas_text(struct image *img, int x, int y, int scale, struct canvas_color c,
		const char *text);
/* Draw text turned 90 degrees anticlockwise (reading upwards), its
 * bottom-left corner at (x, y). */
void canvas_text_up(struct image *img, int x, int y, int scale, struct canvas_color c,
		    const char *text);

#endif
