/* Tests for canvas and plot: the font, clipping at the edges, tick steps,
 * and a chart that shows its series, legend and labels. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sectorlab/canvas.h"
#include "sectorlab/plot.h"
#include "testutil.h"

static const struct canvas_color white = {255, 255, 255}, black = {0, 0, 0};

static int count_color(const struct image *img, struct canvas_color c, int x0, int y0, int x1,
		       int y1)
{
	int n = 0;
	for (int y = y0 < 0 ? 0 : y0; y < y1 && y < img->h; y++)
		for (int x = x0 < 0 ? 0 : x0; x < x1 && x < img->w; x++) {
			const uint8_t *p = img->px + ((size_t)y * img->w + x) * 3;
			n += p[0] == c.r && p[1] == c.g && p[2] == c.b;
		}
	return n;
}

static void test_text(void **state)
{
	(void)state;
	struct image img;
	assert_int_equal(image_new(&img, 80, 20, 3, NULL), SL_OK);
	canvas_fill(&img, white);
	assert_int_equal(canvas_text_width("", 1), 0);
	assert_int_equal(canvas_text_width("eps", 1), 17);
	assert_int_equal(canvas_text_width("eps", 2), 34);
	int w = canvas_text(&img, 2, 3, 1, black, "1");
	assert_int_equal(w, 5);
	/* The "1" glyph: a stem of 5 pixels, a flag of 2 and a base of 3: 10,
	 * all inside its 5 x 7 cell. */
	assert_int_equal(count_color(&img, black, 0, 0, 80, 20), 10);
	assert_int_equal(count_color(&img, black, 2, 3, 7, 10), 10);
	/* A space draws nothing; a byte outside ASCII draws a box. */
	canvas_fill(&img, white);
	canvas_text(&img, 0, 0, 1, black, " ");
	assert_int_equal(count_color(&img, black, 0, 0, 80, 20), 0);
	canvas_text(&img, 0, 0, 1, black, "\x01");
	assert_int_equal(count_color(&img, black, 0, 0, 80, 20), 5 + 5 + 5 * 2);
	/* Scale 2 quadruples the pixels. */
	canvas_fill(&img, white);
	canvas_text(&img, 0, 0, 2, black, "1");
	assert_int_equal(count_color(&img, black, 0, 0, 80, 20), 40);
	/* Upward text has the same pixels, turned. */
	canvas_fill(&img, white);
	canvas_text_up(&img, 0, 19, 1, black, "1");
	assert_int_equal(count_color(&img, black, 0, 0, 80, 20), 10);
	assert_int_equal(count_color(&img, black, 0, 14, 7, 19), 10);
	image_free(&img);
}

/* Drawing far outside the image clips instead of writing out of bounds
 * (the sanitizer build would catch it). */
static void test_clipping(void **state)
{
	(void)state;
	struct image img, src;
	assert_int_equal(image_new(&img, 30, 20, 3, NULL), SL_OK);
	assert_int_equal(image_new(&src, 10, 10, 1, NULL), SL_OK);
	memset(src.px, 200, 100);
	canvas_rect(&img, -50, -50, 500, 500, black);
	assert_int_equal(count_color(&img, black, 0, 0, 30, 20), 600);
	canvas_line(&img, -100, -100, 200, 150, 5, 0, white);
	canvas_line(&img, -100, 10, 200, 10, 3, 4, white);
	canvas_blit(&img, &src, 25, 15, 3);
	canvas_blit(&img, &src, -20, -20, 2);
	canvas_text(&img, 28, 18, 3, white, "clipped text");
	canvas_text_up(&img, -3, 2, 2, white, "up");
	canvas_frame(&img, -1, -1, 40, 40, white);
	/* The blit landed where it could. */
	const uint8_t *p = img.px + ((size_t)19 * 30 + 29) * 3;
	assert_int_equal(p[0], 200);
	image_free(&img);
	image_free(&src);
}

static void test_tick_step(void **state)
{
	(void)state;
	assert_close(plot_tick_step(0, 1, 6), 0.2, 1e-12);
	assert_close(plot_tick_step(0, 100, 6), 20, 1e-12);
	assert_close(plot_tick_step(0, 0.5, 8), 0.05, 1e-12);
	assert_close(plot_tick_step(0, 3, 8), 0.5, 1e-12);
	assert_close(plot_tick_step(-7, 7, 6), 2, 1e-12);
	assert_close(plot_tick_step(1, 1, 6), 1, 0); /* empty range: any step */
}

/* A chart with two series: both colours appear inside the plot area, the
 * title is drawn, the legend exists, NaN leaves a gap, and points outside
 * the limits are clipped away. */
static void test_chart(void **state)
{
	(void)state;
	double x[5] = {0, 0.1, 0.2, 0.3, 0.4};
	double a[5] = {97, 80, 40, 10, 2}, b[5] = {93, 88, NAN, 60, 150};
	struct plot_series series[2] = {
		{"vanilla", x, a, 5, plot_color(0), false, NULL, NULL},
		{"spnorm", x, b, 5, plot_color(1), true, NULL, NULL},
	};
	struct plot_spec spec = {
		.title = "MNIST: robust accuracy against eps",
		.subtitle = "PGD L-inf: 40 steps of 2.5 eps/40, no random start, 1 restart, "
			    "true labels, clipped to [-0.5, 0.5], seed 1",
		.xlabel = "eps", .ylabel = "accuracy (%)",
		.ymin = 0, .ymax = 100,
		.series = series, .nseries = 2,
		.width = 640, .height = 420,
	};
	struct image img;
	assert_int_equal(plot_render(&spec, &img, NULL), SL_OK);
	assert_int_equal(img.w, 640);
	assert_int_equal(img.h, 420);
	assert_int_equal(img.channels, 3);
	assert_true(count_color(&img, plot_color(0), 0, 0, 640, 420) > 300);
	assert_true(count_color(&img, plot_color(1), 0, 0, 640, 420) > 200);
	/* Title pixels in the top band, tick labels and axis text elsewhere. */
	assert_true(count_color(&img, black, 0, 0, 640, 30) > 100);
	assert_true(count_color(&img, black, 0, 380, 640, 420) > 50);
	/* The 150 lies above ymax: nothing of series 1 above the plot frame
	 * except in the legend.  Count its colour in the title band. */
	assert_int_equal(count_color(&img, plot_color(1), 0, 0, 640, 25), 0);
	image_free(&img);

	/* Automatic limits, one point, no series: all draw. */
	spec.ymin = spec.ymax = 0;
	series[0].n = 1;
	assert_int_equal(plot_render(&spec, &img, NULL), SL_OK);
	image_free(&img);
	spec.nseries = 0;
	assert_int_equal(plot_render(&spec, &img, NULL), SL_OK);
	image_free(&img);

	struct sl_error err;
	spec.width = 100;
	assert_int_equal(plot_render(&spec, &img, &err), SL_ERR_ARG);
	assert_non_null(strstr(err.msg, "too small"));
}

/* A band (the spread over seeds) is drawn in a light tint of its series'
 * colour between lo and hi, behind the line; none without lo and hi. */
static void test_band(void **state)
{
	(void)state;
	double x[3] = {0, 0.5, 1}, y[3] = {50, 50, 50}, lo[3] = {30, 30, 30}, hi[3] = {70, 70, 70};
	struct plot_series s = {"mean", x, y, 3, plot_color(0), false, lo, hi};
	struct plot_spec spec = {.xlabel = "x", .ylabel = "y", .ymin = 0, .ymax = 100,
				 .series = &s, .nseries = 1, .width = 400, .height = 300};
	struct canvas_color c = plot_color(0);
	struct canvas_color tint = {(uint8_t)((c.r + 4 * 255) / 5), (uint8_t)((c.g + 4 * 255) / 5),
				    (uint8_t)((c.b + 4 * 255) / 5)};
	struct image img;
	assert_int_equal(plot_render(&spec, &img, NULL), SL_OK);
	int tinted = count_color(&img, tint, 0, 0, 400, 300);
	assert_true(tinted > 2000);
	image_free(&img);
	s.lo = s.hi = NULL;
	assert_int_equal(plot_render(&spec, &img, NULL), SL_OK);
	assert_int_equal(count_color(&img, tint, 0, 0, 400, 300), 0);
	image_free(&img);
}

/* The legend never hides data: with a corner free it sits in that corner
 * (nothing of the series' colours below the axis label); when curves cross
 * every corner it moves below the chart, where its samples show the
 * series' colours. */
static void test_legend_hides_no_data(void **state)
{
	(void)state;
	enum { N = 21, W = 640, H = 420 };
	double x[N], up[N], down[N], low[N];
	for (int i = 0; i < N; i++) {
		x[i] = i / (double)(N - 1);
		up[i] = 100 * x[i];
		down[i] = 100 - up[i];
		low[i] = 5;
	}
	struct plot_series series[2] = {
		{"rising through two corners", x, up, N, plot_color(0), false, NULL, NULL},
		{"falling through the others", x, down, N, plot_color(1), false, NULL, NULL},
	};
	struct plot_spec spec = {.xlabel = "x", .ylabel = "y", .ymin = 0, .ymax = 100,
				 .series = series, .nseries = 2, .width = W, .height = H};
	struct image img;
	assert_int_equal(plot_render(&spec, &img, NULL), SL_OK);
	/* Below the axis label (whose bottom is 10 px above the image's when
	 * the plot takes the whole height): the legend's rows. */
	assert_true(count_color(&img, plot_color(0), 0, H - 70, W, H) > 20);
	assert_true(count_color(&img, plot_color(1), 0, H - 50, W, H) > 20);
	image_free(&img);

	series[1].y = low; /* the upper left corner is free */
	assert_int_equal(plot_render(&spec, &img, NULL), SL_OK);
	assert_int_equal(count_color(&img, plot_color(0), 0, H - 50, W, H), 0);
	assert_int_equal(count_color(&img, plot_color(1), 0, H - 50, W, H), 0);
	image_free(&img);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_text),
		cmocka_unit_test(test_clipping),
		cmocka_unit_test(test_tick_step),
		cmocka_unit_test(test_chart),
		cmocka_unit_test(test_band),
		cmocka_unit_test(test_legend_hides_no_data),
	};
	return cmocka_run_group_tests_name("plot", tests, NULL, NULL);
}
