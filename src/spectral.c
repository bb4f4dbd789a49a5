/* spectral: power iteration and exact spectral norms (see spectral.h). */
#include "sectorlab/spectral.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>

#include "sectorlab/linalg.h"

void spectral_random_unit(struct sl_rng *rng, float *x, int n)
{
	double ss = 0;
	do {
		ss = 0;
		for (int i = 0; i < n; i++) {
			x[i] = rng_normal(rng);
			ss += (double)x[i] * x[i];
		}
	} while (ss == 0);
	float inv = (float)(1.0 / sqrt(ss));
	for (int i = 0; i < n; i++)
		x[i] *= inv;
}

/* Normalise x in place; returns its norm before normalisation. */
static double normalise(float *x, int n)
{
	double nrm = cblas_snrm2(n, x, 1);
	if (nrm > 0)
		cblas_sscal(n, (float)(1.0 / nrm), x, 1);
	return nrm;
}

float spectral_power_step(const float *w, int rows, int cols, float *u, float *v)
{
	/* Both products write straight into the persistent vectors: v's old value
	 * is not read, and u is read only by the first product. */
	cblas_sgemv(CblasRowMajor, CblasTrans, rows, cols, 1.0f, w, cols, u, 1, 0.0f, v, 1);
	if (normalise(v, cols) == 0)
		return 0;
	cblas_sgemv(CblasRowMajor, CblasNoTrans, rows, cols, 1.0f, w, cols, v, 1, 0.0f, u, 1);
	/* |w v| equals u . w v once u = w v / |w v|. */
	return (float)normalise(u, rows);
}

float spectral_converge(float (*step)(void *ctx), void *ctx, double rel_tol, int max_iters,
			int *iters)
{
	float prev = 0, sigma = 0;
	int k = 0;
	while (k < max_iters) {
		sigma = step(ctx);
		k++;
		if (sigma == 0 || fabs((double)sigma - prev) <= rel_tol * sigma)
			break;
		prev = sigma;
	}
	if (iters)
		*iters = k;
	return sigma;
}

struct dense_step {
	const float *w;
	int rows, cols;
	float *u, *v;
};

static float dense_step(void *ctx)
{
	struct dense_step *d = ctx;
	return spectral_power_step(d->w, d->rows, d->cols, d->u, d->v);
}

float spectral_power_converge(const float *w, int rows, int cols, float *u, float *v,
			      double rel_tol, int max_iters, int *iters)
{
	struct dense_step d = {w, rows, cols, u, v};
	return spectral_converge(dense_step, &d, rel_tol, max_iters, iters);
}

float spectral_conv_power_step(const struct conv_geom *g, const float *w, float *u, float *v,
			       float *col)
{
	int nu = (int)conv_out_size(g), nv = (int)conv_in_size(g);
	conv_apply_transpose(g, w, 1.0f, u, v, col);
	if (normalise(v, nv) == 0)
		return 0;
	conv_apply(g, w, 1.0f, NULL, v, u, col);
	return (float)normalise(u, nu);
}

struct conv_step {
	const struct conv_geom *g;
	const float *w;
	float *u, *v, *col;
};

static float conv_step(void *ctx)
{
	struct conv_step *c = ctx;
	return spectral_conv_power_step(c->g, c->w, c->u, c->v, c->col);
}

float spectral_conv_power_converge(const struct conv_geom *g, const float *w, float *u,
				   float *v, float *col, double rel_tol, int max_iters,
				   int *iters)
{
	struct conv_step c = {g, w, u, v, col};
	return spectral_converge(conv_step, &c, rel_tol, max_iters, iters);
}

sl_status spectral_conv_matrix(const struct conv_geom *g, const float *w, size_t max_entries,
			       float **a, struct sl_error *err)
{
	*a = NULL;
	size_t rows = conv_out_size(g), cols = conv_in_size(g);
	if (rows > max_entries / cols)
		return status_set(err, SL_ERR_TOO_LARGE,
				  "convolution operator %zux%zu: more than %zu entries", rows, cols,
				  max_entries);
	float *m = malloc(sizeof(float) * rows * cols);
	float *e = calloc(cols, sizeof(float));
	float *y = malloc(sizeof(float) * rows);
	float *col = malloc(sizeof(float) * conv_col_size(g));
	if (!m || !e || !y || !col) {
		free(m);
		free(e);
		free(y);
		free(col);
		return status_set(err, SL_ERR_NOMEM, "convolution operator %zux%zu", rows, cols);
	}
	/* Column j of the operator is its response to the j-th unit image. */
	for (size_t j = 0; j < cols; j++) {
		e[j] = 1;
		conv_apply(g, w, 1.0f, NULL, e, y, col);
		e[j] = 0;
		for (size_t i = 0; i < rows; i++)
			m[i * cols + j] = y[i];
	}
	free(e);
	free(y);
	free(col);
	*a = m;
	return SL_OK;
}

sl_status spectral_norm_exact(const float *w, int rows, int cols, double *out,
			      struct sl_error *err)
{
	int k = rows < cols ? rows : cols;
	double *sv = malloc(sizeof(double) * (size_t)(k > 0 ? k : 1));
	if (!sv)
		return status_set(err, SL_ERR_NOMEM, "spectral norm: %d values", k);
	sl_status st = linalg_singular_values(w, rows, cols, sv, err);
	if (st == SL_OK)
		*out = sv[0];
	free(sv);
	return st;
}
