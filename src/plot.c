/* plot: line charts drawn with canvas (see plot.h). */
#include "sectorlab/plot.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static const struct canvas_color white = {255, 255, 255}, black = {0, 0, 0},
				 grid = {225, 225, 225}, dim = {90, 90, 90};

struct canvas_color plot_color(int i)
{
	/* Okabe and Ito's palette, ordered for contrast on white. */
	static const struct canvas_color palette[8] = {
		{0, 114, 178}, {213, 94, 0},   {0, 158, 115}, {204, 121, 167},
		{230, 159, 0}, {86, 180, 233}, {0, 0, 0},     {160, 150, 30},
	};
	return palette[((i % 8) + 8) % 8];
}

double plot_tick_step(double lo, double hi, int target)
{
	double range = hi - lo;
	if (!(range > 0) || target < 1)
		return 1;
	double raw = range / target, mag = pow(10, floor(log10(raw))), f = raw / mag;
	double nice = f < 1.5 ? 1 : f < 3.5 ? 2 : f < 7.5 ? 5 : 10;
	return nice * mag;
}

/* The tick label for v with the decimals the step needs ("0.05", "20"). */
static void tick_label(double v, double step, char *buf, size_t cap)
{
	int decimals = step >= 1 ? 0 : (int)ceil(-log10(step) - 1e-9);
	if (fabs(v) < step * 1e-6)
		v = 0; /* no "-0" */
	snprintf(buf, cap, "%.*f", decimals, v);
}

struct frame {
	int left, top, w, h;  /* plot area in pixels */
	double xmin, xmax, ymin, ymax;
};

static double to_px(const struct frame *f, double x)
{
	return f->left + (x - f->xmin) / (f->xmax - f->xmin) * (f->w - 1);
}

static double to_py(const struct frame *f, double y)
{
	return f->top + (f->ymax - y) / (f->ymax - f->ymin) * (f->h - 1);
}

/* Liang-Barsky: clip the segment to the plot area; false when outside. */
static bool clip_segment(const struct frame *f, double *x0, double *y0, double *x1, double *y1)
{
	double dx = *x1 - *x0, dy = *y1 - *y0, t0 = 0, t1 = 1;
	double p[4] = {-dx, dx, -dy, dy};
	double q[4] = {*x0 - f->left, f->left + f->w - 1 - *x0, *y0 - f->top,
		       f->top + f->h - 1 - *y0};
	for (int i = 0; i < 4; i++) {
		if (p[i] == 0) {
			if (q[i] < 0)
				return false;
			continue;
		}
		double t = q[i] / p[i];
		if (p[i] < 0)
			t0 = t > t0 ? t : t0;
		else
			t1 = t < t1 ? t : t1;
	}
	if (t0 > t1)
		return false;
	double ax = *x0 + t0 * dx, ay = *y0 + t0 * dy;
	*x1 = *x0 + t1 * dx;
	*y1 = *y0 + t1 * dy;
	*x0 = ax;
	*y0 = ay;
	return true;
}

static void data_limits(const struct plot_spec *s, bool want_x, double *lo, double *hi)
{
	*lo = INFINITY;
	*hi = -INFINITY;
	for (int i = 0; i < s->nseries; i++)
		for (int k = 0; k < s->series[i].n; k++) {
			double v = want_x ? s->series[i].x[k] : s->series[i].y[k];
			if (isfinite(v)) {
				*lo = v < *lo ? v : *lo;
				*hi = v > *hi ? v : *hi;
			}
		}
	if (!isfinite(*lo)) {
		*lo = 0;
		*hi = 1;
	}
	if (*hi - *lo <= 0) {
		*lo -= 0.5;
		*hi += 0.5;
	}
}

/* Split text into lines of at most width pixels at scale, breaking at
 * spaces; returns the count (at most maxlines) and fills lines[][cap]. */
static int wrap(const char *text, int width, int scale, char lines[][256], int maxlines)
{
	int per_line = (width + scale) / (CANVAS_GLYPH_W * scale);
	if (per_line < 8)
		per_line = 8;
	if (per_line > 255)
		per_line = 255;
	int n = 0;
	const char *p = text;
	while (*p && n < maxlines) {
		size_t len = strlen(p);
		size_t take = len <= (size_t)per_line ? len : (size_t)per_line;
		if (take < len) {
			size_t brk = take;
			while (brk > 0 && p[brk] != ' ')
				brk--;
			if (brk > 0)
				take = brk;
		}
		memcpy(lines[n], p, take);
		lines[n][take] = '\0';
		n++;
		p += take;
		while (*p == ' ')
			p++;
	}
	return n;
}

static void draw_marker(struct image *img, double x, double y, struct canvas_color c)
{
	int px = (int)lround(x), py = (int)lround(y);
	canvas_rect(img, px - 4, py - 4, 9, 9, white);
	canvas_rect(img, px - 3, py - 3, 7, 7, c);
}

/* How much of the data would a box at (x, y, w, h) cover?  Sampled along
 * every segment. */
static int covered(const struct plot_spec *s, const struct frame *f, int x, int y, int w, int h)
{
	int count = 0;
	for (int i = 0; i < s->nseries; i++) {
		const struct plot_series *ser = &s->series[i];
		for (int k = 0; k + 1 < ser->n; k++) {
			double x0 = to_px(f, ser->x[k]), y0 = to_py(f, ser->y[k]);
			double x1 = to_px(f, ser->x[k + 1]), y1 = to_py(f, ser->y[k + 1]);
			if (!isfinite(y0) || !isfinite(y1))
				continue;
			for (int t = 0; t <= 20; t++) {
				double px = x0 + (x1 - x0) * t / 20, py = y0 + (y1 - y0) * t / 20;
				count += px >= x && px < x + w && py >= y && py < y + h;
			}
		}
		for (int k = 0; k < ser->n; k++) {
			double px = to_px(f, ser->x[k]), py = to_py(f, ser->y[k]);
			count += 10 * (px >= x - 5 && px < x + w + 5 && py >= y - 5 && py < y + h + 5);
		}
	}
	return count;
}

/* The legend's box: rows of a sample line and a label, in cols columns. */
struct legend {
	int x, y, w, h, cols, col_w;
};

enum { LEGEND_SCALE = 2, LEGEND_ROW = 11 * LEGEND_SCALE, LEGEND_SAMPLE = 36, LEGEND_PAD = 10 };

static struct legend legend_measure(const struct plot_spec *s, int cols)
{
	int text_w = 0;
	for (int i = 0; i < s->nseries; i++) {
		int w = canvas_text_width(s->series[i].label ? s->series[i].label : "", LEGEND_SCALE);
		text_w = w > text_w ? w : text_w;
	}
	struct legend lg = {0};
	lg.cols = cols;
	lg.col_w = LEGEND_SAMPLE + 8 + text_w + 2 * LEGEND_PAD;
	int rows = (s->nseries + cols - 1) / cols;
	lg.w = LEGEND_PAD + cols * lg.col_w - LEGEND_PAD;
	lg.h = LEGEND_PAD + LEGEND_ROW * rows - 4 + LEGEND_PAD;
	return lg;
}

/* A corner of the plot area where the legend hides no data; false (and
 * the corner hiding least) when every corner hides some. */
static bool legend_corner(const struct plot_spec *s, const struct frame *f, struct legend *lg)
{
	int xs[4] = {f->left + f->w - lg->w - 10, f->left + 10, f->left + f->w - lg->w - 10,
		     f->left + 10};
	int ys[4] = {f->top + 10, f->top + f->h - lg->h - 10, f->top + f->h - lg->h - 10,
		     f->top + 10};
	int best = 0, best_cover = -1;
	for (int k = 0; k < 4; k++) {
		int c = covered(s, f, xs[k], ys[k], lg->w, lg->h);
		if (best_cover < 0 || c < best_cover) {
			best = k;
			best_cover = c;
		}
	}
	lg->x = xs[best];
	lg->y = ys[best];
	return best_cover == 0;
}

static void draw_legend(struct image *img, const struct plot_spec *s, const struct legend *lg)
{
	canvas_rect(img, lg->x, lg->y, lg->w, lg->h, white);
	canvas_frame(img, lg->x, lg->y, lg->w, lg->h, dim);
	int rows = (s->nseries + lg->cols - 1) / lg->cols;
	for (int i = 0; i < s->nseries; i++) {
		const struct plot_series *ser = &s->series[i];
		int x = lg->x + LEGEND_PAD + (i / rows) * lg->col_w;
		int cy = lg->y + LEGEND_PAD + (i % rows) * LEGEND_ROW + 7;
		canvas_line(img, x, cy, x + LEGEND_SAMPLE, cy, 3, ser->dashed ? 6 : 0, ser->color);
		draw_marker(img, x + LEGEND_SAMPLE / 2.0, cy, ser->color);
		canvas_text(img, x + LEGEND_SAMPLE + 8, cy - 7, LEGEND_SCALE, black,
			    ser->label ? ser->label : "");
	}
}

/* A series' band: each pixel column between two points filled from the
 * interpolated lo to hi, in the series' colour mixed with four parts white. */
static void draw_band(struct image *img, const struct plot_series *ser, const struct frame *f)
{
	if (!ser->lo || !ser->hi)
		return;
	struct canvas_color tint = {(uint8_t)((ser->color.r + 4 * 255) / 5),
				    (uint8_t)((ser->color.g + 4 * 255) / 5),
				    (uint8_t)((ser->color.b + 4 * 255) / 5)};
	for (int k = 0; k + 1 < ser->n; k++) {
		double x0 = to_px(f, ser->x[k]), x1 = to_px(f, ser->x[k + 1]);
		double a0 = to_py(f, ser->lo[k]), a1 = to_py(f, ser->lo[k + 1]);
		double b0 = to_py(f, ser->hi[k]), b1 = to_py(f, ser->hi[k + 1]);
		if (!isfinite(x0 + x1 + a0 + a1 + b0 + b1) || !(x1 > x0))
			continue;
		int from = (int)ceil(x0 > f->left ? x0 : f->left);
		int to = (int)floor(x1 < f->left + f->w - 1 ? x1 : f->left + f->w - 1);
		for (int px = from; px <= to; px++) {
			double t = (px - x0) / (x1 - x0);
			double ya = a0 + t * (a1 - a0), yb = b0 + t * (b1 - b0);
			double top = ya < yb ? ya : yb, bottom = ya < yb ? yb : ya;
			top = top < f->top ? f->top : top;
			bottom = bottom > f->top + f->h - 1 ? f->top + f->h - 1 : bottom;
			if (bottom >= top)
				canvas_rect(img, px, (int)lround(top), 1,
					    (int)lround(bottom) - (int)lround(top) + 1, tint);
		}
	}
}

sl_status plot_render(const struct plot_spec *s, struct image *out, struct sl_error *err)
{
	int W = s->width > 0 ? s->width : 960, H = s->height > 0 ? s->height : 600;
	if (W < 200 || H < 150)
		return status_set(err, SL_ERR_ARG, "plot: %d x %d is too small to draw", W, H);
	for (int i = 0; i < s->nseries; i++)
		if (s->series[i].n < 0 || (s->series[i].n > 0 && (!s->series[i].x || !s->series[i].y)))
			return status_set(err, SL_ERR_ARG, "plot: series %d has no data", i + 1);
	sl_status st = image_new(out, W, H, 3, err);
	if (st != SL_OK)
		return st;
	canvas_fill(out, white);

	struct frame f;
	f.xmin = s->xmin, f.xmax = s->xmax, f.ymin = s->ymin, f.ymax = s->ymax;
	if (!(f.xmax > f.xmin))
		data_limits(s, true, &f.xmin, &f.xmax);
	if (!(f.ymax > f.ymin))
		data_limits(s, false, &f.ymin, &f.ymax);

	/* Title and subtitle on top. */
	int y = 12;
	if (s->title) {
		char lines[2][256];
		int n = wrap(s->title, W - 40, 2, lines, 2);
		for (int i = 0; i < n; i++, y += 20)
			canvas_text(out, (W - canvas_text_width(lines[i], 2)) / 2, y, 2, black,
				    lines[i]);
		y += 4;
	}
	if (s->subtitle) {
		char lines[4][256];
		int n = wrap(s->subtitle, W - 40, 1, lines, 4);
		for (int i = 0; i < n; i++, y += 11)
			canvas_text(out, (W - canvas_text_width(lines[i], 1)) / 2, y, 1, dim,
				    lines[i]);
	}

	/* Ticks decide the left margin: the widest y label. */
	double xstep = plot_tick_step(f.xmin, f.xmax, 8), ystep = plot_tick_step(f.ymin, f.ymax, 6);
	char label[64];
	int ylab_w = 0;
	long ylo = (long)ceil(f.ymin / ystep - 1e-9), yhi = (long)floor(f.ymax / ystep + 1e-9);
	long xlo = (long)ceil(f.xmin / xstep - 1e-9), xhi = (long)floor(f.xmax / xstep + 1e-9);
	for (long k = ylo; k <= yhi; k++) {
		tick_label(k * ystep, ystep, label, sizeof label);
		int w = canvas_text_width(label, 2);
		ylab_w = w > ylab_w ? w : ylab_w;
	}
	f.top = y + 14;
	f.left = 10 + 14 + 12 + ylab_w + 8;
	f.w = W - f.left - 24;
	f.h = H - f.top - (8 + 14 + 10 + 14 + 12);
	if (f.w < 50 || f.h < 50) {
		image_free(out);
		return status_set(err, SL_ERR_ARG, "plot: %d x %d leaves no room for the data", W, H);
	}

	/* The legend: in a corner of the plot where it hides no data, else
	 * below the axis label, in two columns when they fit the width. */
	struct legend lg = legend_measure(s, 1);
	if (s->nseries > 0 && !legend_corner(s, &f, &lg)) {
		struct legend below = legend_measure(s, 2);
		if (s->nseries < 2 || below.w > W - 20)
			below = legend_measure(s, 1);
		if (below.w <= W - 20 && f.h - below.h - 12 >= 50) {
			f.h -= below.h + 12;
			lg = below;
			lg.x = (W - lg.w) / 2;
			lg.y = f.top + f.h + 8 + 14 + 10 + 14 + 12 + 4;
		}
	}

	/* Grid, ticks and tick labels. */
	for (long k = ylo; k <= yhi; k++) {
		double v = k * ystep;
		int py = (int)lround(to_py(&f, v));
		canvas_rect(out, f.left, py, f.w, 1, grid);
		canvas_rect(out, f.left - 6, py, 6, 1, black);
		tick_label(v, ystep, label, sizeof label);
		canvas_text(out, f.left - 10 - canvas_text_width(label, 2), py - 7, 2, black, label);
	}
	for (long k = xlo; k <= xhi; k++) {
		double v = k * xstep;
		int px = (int)lround(to_px(&f, v));
		canvas_rect(out, px, f.top, 1, f.h, grid);
		canvas_rect(out, px, f.top + f.h, 1, 6, black);
		tick_label(v, xstep, label, sizeof label);
		canvas_text(out, px - canvas_text_width(label, 2) / 2, f.top + f.h + 10, 2, black,
			    label);
	}
	canvas_frame(out, f.left - 1, f.top - 1, f.w + 2, f.h + 2, black);
	if (s->xlabel)
		canvas_text(out, f.left + (f.w - canvas_text_width(s->xlabel, 2)) / 2,
			    f.top + f.h + 10 + 14 + 10, 2, black, s->xlabel);
	if (s->ylabel)
		canvas_text_up(out, 10, f.top + (f.h + canvas_text_width(s->ylabel, 2)) / 2, 2,
			       black, s->ylabel);

	/* The data: bands first, then lines, markers on top. */
	for (int i = 0; i < s->nseries; i++)
		draw_band(out, &s->series[i], &f);
	for (int i = 0; i < s->nseries; i++) {
		const struct plot_series *ser = &s->series[i];
		for (int k = 0; k + 1 < ser->n; k++) {
			double x0 = to_px(&f, ser->x[k]), y0 = to_py(&f, ser->y[k]);
			double x1 = to_px(&f, ser->x[k + 1]), y1 = to_py(&f, ser->y[k + 1]);
			if (!isfinite(x0 + y0 + x1 + y1) || !clip_segment(&f, &x0, &y0, &x1, &y1))
				continue;
			canvas_line(out, x0, y0, x1, y1, 3, ser->dashed ? 8 : 0, ser->color);
		}
	}
	for (int i = 0; i < s->nseries; i++) {
		const struct plot_series *ser = &s->series[i];
		for (int k = 0; k < ser->n; k++) {
			double px = to_px(&f, ser->x[k]), py = to_py(&f, ser->y[k]);
			if (isfinite(px + py) && px >= f.left - 0.5 && px <= f.left + f.w &&
			    py >= f.top - 0.5 && py <= f.top + f.h)
				draw_marker(out, px, py, ser->color);
		}
	}
	if (s->nseries > 0)
		draw_legend(out, s, &lg);
	return SL_OK;
}
