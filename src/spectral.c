/* spectral: power iteration and exact spectral norms (see spectral.h). */
#include "sectorlab/spectral.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

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

struct spectral_op spectral_op_dense(const float *w, int rows, int cols, struct parallel *team)
{
	struct spectral_op op = {.w = w, .rows = rows, .cols = cols, .team = team};
	return op;
}

struct spectral_op spectral_op_conv(const struct conv_geom *g, const float *w, float *col,
				    struct parallel *team)
{
	struct spectral_op op = {.w = w, .rows = (int)conv_out_size(g), .cols = (int)conv_in_size(g),
				 .conv = g, .team = team, .col = col};
	return op;
}

/* u (rows) = A v (cols). */
static void apply(const struct spectral_op *op, const float *v, float *u)
{
	const struct conv_geom *g = op->conv;
	if (!g) {
		parallel_sgemv(op->team, false, op->rows, op->cols, op->w, op->cols, v, u);
		return;
	}
	/* u (Cout, Ho*Wo) = w (Cout, Cin*k*k) im2col(v) */
	const int n = g->ho * g->wo, kk = g->cin * g->k * g->k;
	conv_im2col(g, v, op->col);
	parallel_sgemm(op->team, true, false, false, g->cout, n, kk, 1.0f, op->w, kk, op->col, n,
		       0.0f, u, n);
}

/* v (cols) = A^T u (rows). */
static void apply_transpose(const struct spectral_op *op, const float *u, float *v)
{
	const struct conv_geom *g = op->conv;
	if (!g) {
		parallel_sgemv(op->team, true, op->rows, op->cols, op->w, op->cols, u, v);
		return;
	}
	/* col (Cin*k*k, Ho*Wo) = w^T u, then v (Cin, H, W) = col2im(col) */
	const int n = g->ho * g->wo, kk = g->cin * g->k * g->k;
	parallel_sgemm(op->team, true, true, false, kk, n, g->cout, 1.0f, op->w, kk, u, n, 0.0f,
		       op->col, n);
	memset(v, 0, sizeof(float) * (size_t)op->cols);
	conv_col2im_add(g, op->col, v);
}

float spectral_op_step(const struct spectral_op *op, float *u, float *v)
{
	/* Both products write straight into the persistent vectors: v's old value
	 * is not read, and u is read only by the first product. */
	apply_transpose(op, u, v);
	if (normalise(v, op->cols) == 0)
		return 0;
	apply(op, v, u);
	/* |A v| equals u . A v once u = A v / |A v|. */
	return (float)normalise(u, op->rows);
}

float spectral_op_rayleigh(const struct spectral_op *op, const float *u, const float *v,
			   float *work)
{
	apply(op, v, work);
	return cblas_sdot(op->rows, u, 1, work, 1);
}

float spectral_power_step(const float *w, int rows, int cols, float *u, float *v)
{
	struct spectral_op op = spectral_op_dense(w, rows, cols, NULL);
	return spectral_op_step(&op, u, v);
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

struct op_step {
	const struct spectral_op *op;
	float *u, *v;
};

static float op_step(void *ctx)
{
	struct op_step *s = ctx;
	return spectral_op_step(s->op, s->u, s->v);
}

float spectral_op_converge(const struct spectral_op *op, float *u, float *v, double rel_tol,
			   int max_iters, int *iters)
{
	struct op_step s = {op, u, v};
	return spectral_converge(op_step, &s, rel_tol, max_iters, iters);
}

float spectral_power_converge(const float *w, int rows, int cols, float *u, float *v,
			      double rel_tol, int max_iters, int *iters)
{
	struct spectral_op op = spectral_op_dense(w, rows, cols, NULL);
	return spectral_op_converge(&op, u, v, rel_tol, max_iters, iters);
}

float spectral_conv_power_step(const struct conv_geom *g, const float *w, float *u, float *v,
			       float *col)
{
	struct spectral_op op = spectral_op_conv(g, w, col, NULL);
	return spectral_op_step(&op, u, v);
}

float spectral_conv_power_converge(const struct conv_geom *g, const float *w, float *u,
				   float *v, float *col, double rel_tol, int max_iters,
				   int *iters)
{
	struct spectral_op op = spectral_op_conv(g, w, col, NULL);
	return spectral_op_converge(&op, u, v, rel_tol, max_iters, iters);
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
