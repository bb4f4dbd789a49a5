/*
 * plot: line charts as images, for accuracy-versus-eps curves and the paper
 * reproduction.
 *
 * One chart: a title, a subtitle (the recipe, wrapped to the width), axes
 * with "nice" ticks (1, 2 or 5 times a power of ten) and their labels, light
 * grid lines, each series as a line with square markers (solid or dashed)
 * over an optional band (its spread),
 * and a legend in a corner of the plot area where it hides no data, or,
 * when every corner would hide some, below the chart (the plot area
 * shrinks to make room; two columns when they fit).  Text
 * uses canvas's built-in font, so the chart needs nothing but libpng to be
 * written.  The caller owns the image it gets back.
 */
#ifndef SECTORLAB_PLOT_H
#define SECTORLAB_PLOT_H

#include <stdbool.h>

#include "sectorlab/canvas.h"
#include "sectorlab/image.h"
#include "sectorlab/status.h"

struct plot_series {
	const char *label;
	const double *x, *y;  /* (n) each; a NaN y leaves a gap */
	int n;
	struct canvas_color color;
	bool dashed;
	const double *lo, *hi; /* (n) each, or NULL: a band drawn in a light tint of
				  color behind the lines (e.g. the spread over seeds) */
};

struct plot_spec {
	const char *title;      /* large, one line */
	const char *subtitle;   /* small, wrapped; may be NULL */
	const char *xlabel, *ylabel;
	double xmin, xmax;      /* equal: from the data */
	double ymin, ymax;      /* equal: from the data */
	const struct plot_series *series;
	int nseries;
	int width, height;      /* 0: 960 x 600 */
};

/* A distinct, colour-blind-safe colour for series i (cycles after 8). */
struct canvas_color plot_color(int i);

/* Draw the chart into a new RGB image. */
sl_status plot_render(const struct plot_spec *spec, struct image *out, struct sl_error *err);

/* Step between ticks for a range: 1, 2 or 5 times a power of ten, giving
 * about target ticks. */
double plot_tick_step(double lo, double hi, int target);

#endif
