/* certreport: the certificate screen's computations, in pieces (see certreport.h). */
#include "sectorlab/certreport.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Test images a chunk of radii covers between two looks at progress. */
#define RADII_CHUNK 500

static double seconds_now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

struct certreport_config certreport_defaults(double nu, double delta,
					     enum sector_objective objective)
{
	return (struct certreport_config){
		.nu = nu, .delta = delta, .objective = objective,
		.lmi = true, .sdp = true, .sector = false,
		.n = 2000, .floor_starts = 50, .floor_steps = 30,
		.flip = {.steps = 40, .restarts = 1, .eps_start = 0.25, .eps_max = 64, .seed = 1},
		.flip_tol = 0.01, .seed = 1,
	};
}

void certreport_free(struct certreport *r)
{
	sandwich_free(&r->sw);
	free(r->best);
	free(r->radius);
	free(r->radius_product);
	free(r->correct);
	r->best = r->radius = r->radius_product = NULL;
	r->correct = NULL;
}

/* The progress hook and its context, for the pieces below. */
struct hook {
	certreport_progress_fn fn;
	void *ctx;
	double stage;
	double frac;  /* within the stage */
};

static bool ask(struct hook *h, double frac, const char *what)
{
	h->frac = frac;
	return h->fn && h->fn(h->ctx, h->stage + frac, what);
}

/* sandwich_options.progress and bounds_flip_options.stop: the same hook. */
static bool sandwich_progress(void *ctx, const char *what)
{
	struct hook *h = ctx;
	return ask(h, h->frac, what);
}

static bool flip_stop(void *ctx)
{
	struct hook *h = ctx;
	return ask(h, h->frac, NULL);
}

static void on_layer(void *ctx, int done, int total, const char *name)
{
	(void)name;
	struct hook *h = ctx;
	/* certify_network cannot stop between layers; the next piece will */
	ask(h, total > 0 ? (double)done / total : 0, "exact LMI of each layer");
}

static int compare_doubles(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

/* The median of v (n values; a wrong image counts with its radius 0). */
static double median_of(const double *v, int n)
{
	double *c = n > 0 ? malloc(sizeof(double) * (size_t)n) : NULL;
	if (!c)
		return n > 0 ? NAN : 0;
	memcpy(c, v, sizeof(double) * (size_t)n);
	qsort(c, (size_t)n, sizeof(double), compare_doubles);
	double m = n % 2 ? c[n / 2] : 0.5 * (c[n / 2 - 1] + c[n / 2]);
	free(c);
	return m;
}

/* Radii of the first n images under the best table and the product, a
 * chunk at a time. */
static sl_status radii(struct nn_net *net, const struct sl_dataset *test, int n,
		       struct hook *h, struct certreport *out, struct sl_error *err)
{
	out->radius = malloc(sizeof(double) * (size_t)n);
	out->radius_product = malloc(sizeof(double) * (size_t)n);
	out->correct = malloc(sizeof(bool) * (size_t)n);
	if (!out->radius || !out->radius_product || !out->correct)
		return status_set(err, SL_ERR_NOMEM, "radii of %d images", n);
	const double *tables[2] = {out->best, out->sw.b[SANDWICH_PRODUCT].pair};
	int correct = 0;
	for (int start = 0; start < n; start += RADII_CHUNK) {
		if (ask(h, (double)start / n, "certified radius of every test image"))
			return status_set(err, SL_ERR_CANCELLED, "radii");
		int count = n - start < RADII_CHUNK ? n - start : RADII_CHUNK, got;
		struct sl_dataset part;
		sl_status st = data_view(test, (uint32_t)start, (uint32_t)count, &part, err);
		if (st != SL_OK)
			return st;
		double *rad[2] = {out->radius + start, out->radius_product + start};
		if ((st = certify_radii_tables(net, &part, count, 2, tables, rad,
					       out->correct + start, &got, err)) != SL_OK)
			return st;
		for (int i = 0; i < count; i++)
			correct += out->correct[start + i];
	}
	out->n = n;
	out->clean = n > 0 ? (double)correct / n : 0;
	out->median = median_of(out->radius, n);
	out->median_product = median_of(out->radius_product, n);
	return SL_OK;
}

sl_status certreport_image(struct nn_net *net, const struct sl_dataset *test,
			   const struct certreport_config *cfg, const struct certreport *r,
			   certreport_progress_fn progress, void *ctx,
			   struct certreport_image *out, struct sl_error *err)
{
	struct hook h = {.fn = progress, .ctx = ctx, .stage = 3};
	double t0 = seconds_now();
	if (test->n == 0)
		return status_set(err, SL_ERR_ARG, "no test images");
	struct certreport_image im = {.index = cfg->image % test->n};
	struct sl_dataset part;
	sl_status st = data_view(test, im.index, 1, &part, err);
	if (st != SL_OK)
		return st;
	const double *tables[2] = {r->best, r->sw.b[SANDWICH_PRODUCT].pair};
	double *rad[2] = {&im.radius, &im.radius_product};
	bool ok;
	int got;
	if ((st = certify_radii_tables(net, &part, 1, 2, tables, rad, &ok, &got, err)) != SL_OK)
		return st;
	size_t dim = data_dim(test);
	float *x = malloc(sizeof(float) * dim);
	if (!x)
		return status_set(err, SL_ERR_NOMEM, "one image");
	data_batch(test, &im.index, 1, x, &im.label);
	nn_argmax(nn_forward(net, x, 1), 1, net->out_dim, &im.pred);
	struct bounds_flip_options fo = cfg->flip;
	fo.stop = flip_stop;
	fo.stop_ctx = &h;
	if (ask(&h, 0, "smallest flipping eps (PGD-L2, bisection)"))
		st = status_set(err, SL_ERR_CANCELLED, "flip search");
	else
		st = bounds_flip_eps(net, x, im.label, &fo, cfg->flip_tol, &im.flip, err);
	free(x);
	if (st != SL_OK)
		return st;
	/* a certified radius above a flip would be a bug, never a result */
	if (im.radius > im.flip.length || im.radius_product > im.flip.length)
		return status_set(err, SL_ERR_NUMERIC,
				  "BUG: test image %u is certified at radius %.9g, but PGD flips "
				  "it at distance %.9g",
				  im.index, fmax(im.radius, im.radius_product), im.flip.length);
	im.seconds = seconds_now() - t0;
	*out = im;
	return SL_OK;
}

sl_status certreport_run(struct nn_net *net, const struct sl_dataset *test,
			 const struct certreport_config *cfg, certreport_progress_fn progress,
			 void *ctx, struct certreport *out, struct sl_error *err)
{
	memset(out, 0, sizeof *out);
	struct hook h = {.fn = progress, .ctx = ctx, .stage = 0};
	sl_status st;
	double t0 = seconds_now();
	if (ask(&h, 0, cfg->lmi ? "certificate and exact LMIs" : "certificate")) {
		st = status_set(err, SL_ERR_CANCELLED, "certificate");
		goto fail;
	}
	struct certify_options co = {.nu = cfg->nu, .delta = cfg->delta,
				     .objective = cfg->objective, .lmi = cfg->lmi,
				     .on_layer = on_layer, .on_layer_ctx = &h};
	if ((st = certify_network(net, &co, &out->cert, err)) != SL_OK)
		goto fail;
	out->seconds[0] = seconds_now() - t0;

	h.stage = 1;
	h.frac = 0;
	t0 = seconds_now();
	struct sandwich_options so = {.sdp = cfg->sdp, .sector = cfg->sector,
				      .floor_starts = cfg->floor_starts,
				      .floor_steps = cfg->floor_steps, .seed = cfg->seed,
				      .progress = sandwich_progress, .progress_ctx = &h};
	if ((st = sandwich_compute(net, &out->cert, test, &so, &out->sw, err)) != SL_OK)
		goto fail;
	int classes = net->out_dim;
	out->best = malloc(sizeof(double) * (size_t)classes * classes);
	if (!out->best) {
		st = status_set(err, SL_ERR_NOMEM, "pair table");
		goto fail;
	}
	if ((st = sandwich_table(&out->sw, SANDWICH_USE_BEST, out->best, err)) != SL_OK)
		goto fail;
	out->seconds[1] = seconds_now() - t0;

	h.stage = 2;
	t0 = seconds_now();
	int n = cfg->n > 0 && (uint32_t)cfg->n < test->n ? cfg->n : (int)test->n;
	if ((st = radii(net, test, n, &h, out, err)) != SL_OK)
		goto fail;
	out->seconds[2] = seconds_now() - t0;

	if ((st = certreport_image(net, test, cfg, out, progress, ctx, &out->image, err)) !=
	    SL_OK)
		goto fail;
	out->have_image = true;
	out->seconds[3] = out->image.seconds;
	if (progress)
		progress(ctx, CERTREPORT_STAGES, "done");
	return SL_OK;
fail:
	certreport_free(out);
	return st;
}
