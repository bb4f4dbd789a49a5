/* conv: one image's convolution as im2col + sgemm (see conv.h). */
#include "sectorlab/conv.h"

#include <cblas.h>
#include <string.h>

/* Buffers are indexed with int inside BLAS calls: keep every size well
 * below 2^31. */
#define CONV_MAX_SIZE (1 << 28)

sl_status conv_geom_init(struct conv_geom *g, int cin, int h, int w, int cout, int k,
			 int stride, int pad, struct sl_error *err)
{
	memset(g, 0, sizeof *g);
	if (cin < 1 || h < 1 || w < 1 || cout < 1 || k < 1 || stride < 1 || pad < 0)
		return status_set(err, SL_ERR_ARG,
				  "convolution: input %dx%dx%d, %d outputs, kernel %d, stride %d, "
				  "padding %d (all positive, padding >= 0)",
				  cin, h, w, cout, k, stride, pad);
	if (h + 2 * pad < k || w + 2 * pad < k)
		return status_set(err, SL_ERR_ARG,
				  "convolution: a %dx%d kernel does not fit a %dx%d input padded by %d",
				  k, k, h, w, pad);
	g->cin = cin, g->h = h, g->w = w;
	g->cout = cout, g->k = k;
	g->stride = stride, g->pad = pad;
	g->ho = (h + 2 * pad - k) / stride + 1;
	g->wo = (w + 2 * pad - k) / stride + 1;
	if (conv_in_size(g) > CONV_MAX_SIZE || conv_out_size(g) > CONV_MAX_SIZE ||
	    conv_col_size(g) > CONV_MAX_SIZE || conv_weight_size(g) > CONV_MAX_SIZE)
		return status_set(err, SL_ERR_TOO_LARGE,
				  "convolution %dx%dx%d -> %dx%dx%d (kernel %d): too large", cin, h,
				  w, cout, g->ho, g->wo, k);
	return SL_OK;
}

size_t conv_in_size(const struct conv_geom *g)
{
	return (size_t)g->cin * (size_t)g->h * (size_t)g->w;
}

size_t conv_out_size(const struct conv_geom *g)
{
	return (size_t)g->cout * (size_t)g->ho * (size_t)g->wo;
}

size_t conv_weight_size(const struct conv_geom *g)
{
	return (size_t)g->cout * (size_t)g->cin * (size_t)g->k * (size_t)g->k;
}

size_t conv_col_size(const struct conv_geom *g)
{
	return (size_t)g->cin * (size_t)g->k * (size_t)g->k * (size_t)g->ho * (size_t)g->wo;
}

/*
 * For kernel column kj, the output columns ox whose input column
 * ox * stride - pad + kj lies inside the image are [*lo, *hi).
 */
static void valid_range(int n_in, int n_out, int stride, int pad, int kk, int *lo, int *hi)
{
	int off = kk - pad; /* input index of output 0 */
	int l = off >= 0 ? 0 : (-off + stride - 1) / stride;
	int h = n_in - 1 - off < 0 ? 0 : (n_in - 1 - off) / stride + 1;
	if (h > n_out)
		h = n_out;
	if (l > h)
		l = h;
	*lo = l, *hi = h;
}

void conv_im2col(const struct conv_geom *g, const float *x, float *col)
{
	const int k = g->k, s = g->stride, p = g->pad, ho = g->ho, wo = g->wo;
	const size_t plane = (size_t)g->h * (size_t)g->w;
	float *row = col; /* row (c, ki, kj) of col: (Ho*Wo) */
	for (int c = 0; c < g->cin; c++) {
		const float *xc = x + (size_t)c * plane;
		for (int ki = 0; ki < k; ki++) {
			for (int kj = 0; kj < k; kj++, row += (size_t)ho * wo) {
				int lo, hi;
				valid_range(g->w, wo, s, p, kj, &lo, &hi);
				for (int oy = 0; oy < ho; oy++) {
					float *r = row + (size_t)oy * wo;
					int iy = oy * s - p + ki;
					if (iy < 0 || iy >= g->h) {
						memset(r, 0, sizeof(float) * (size_t)wo);
						continue;
					}
					const float *xr = xc + (size_t)iy * g->w;
					for (int ox = 0; ox < lo; ox++)
						r[ox] = 0;
					if (s == 1) {
						memcpy(r + lo, xr + lo - p + kj,
						       sizeof(float) * (size_t)(hi - lo));
					} else {
						for (int ox = lo; ox < hi; ox++)
							r[ox] = xr[ox * s - p + kj];
					}
					for (int ox = hi; ox < wo; ox++)
						r[ox] = 0;
				}
			}
		}
	}
}

/* d[0 .. n) += r[0 .. n), in blocks the compiler vectorizes at -O2. */
static void add_row(float *restrict d, const float *restrict r, int n)
{
	int k = 0;
	for (; k + 8 <= n; k += 8)
		for (int j = 0; j < 8; j++)
			d[k + j] += r[k + j];
	for (; k < n; k++)
		d[k] += r[k];
}

void conv_col2im_add(const struct conv_geom *g, const float *col, float *dx)
{
	const int k = g->k, s = g->stride, p = g->pad, ho = g->ho, wo = g->wo;
	const size_t plane = (size_t)g->h * (size_t)g->w;
	const float *row = col;
	for (int c = 0; c < g->cin; c++) {
		float *dc = dx + (size_t)c * plane;
		for (int ki = 0; ki < k; ki++) {
			for (int kj = 0; kj < k; kj++, row += (size_t)ho * wo) {
				int lo, hi;
				valid_range(g->w, wo, s, p, kj, &lo, &hi);
				for (int oy = 0; oy < ho; oy++) {
					int iy = oy * s - p + ki;
					if (iy < 0 || iy >= g->h)
						continue;
					const float *r = row + (size_t)oy * wo;
					/* ox in [lo, hi) keeps ox * s - p + kj inside the row */
					float *dr = dc + (size_t)iy * g->w;
					if (s == 1) {
						add_row(dr + (lo - p + kj), r + lo, hi - lo);
					} else {
						for (int ox = lo; ox < hi; ox++)
							dr[ox * s - p + kj] += r[ox];
					}
				}
			}
		}
	}
}

/* A 1x1 kernel with stride 1 and no padding needs no im2col: col is x. */
static int col_is_input(const struct conv_geom *g)
{
	return g->k == 1 && g->stride == 1 && g->pad == 0;
}

void conv_apply(const struct conv_geom *g, const float *w, float alpha, const float *b,
		const float *x, float *y, float *col)
{
	const int n = g->ho * g->wo, kk = g->cin * g->k * g->k;
	const float *c = x;
	if (!col_is_input(g)) {
		conv_im2col(g, x, col);
		c = col;
	}
	if (b)
		for (int o = 0; o < g->cout; o++)
			for (int j = 0; j < n; j++)
				y[(size_t)o * n + j] = b[o];
	/* y (Cout, Ho*Wo) = alpha w (Cout, Cin*k*k) col (Cin*k*k, Ho*Wo) [+ y] */
	cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, g->cout, n, kk, alpha, w, kk, c, n,
		    b ? 1.0f : 0.0f, y, n);
}

void conv_apply_transpose(const struct conv_geom *g, const float *w, float alpha,
			  const float *y, float *x, float *col)
{
	const int n = g->ho * g->wo, kk = g->cin * g->k * g->k;
	if (col_is_input(g)) {
		/* x (Cin, H*W) = alpha w^T (Cin, Cout) y (Cout, H*W) */
		cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, kk, n, g->cout, alpha, w, kk,
			    y, n, 0.0f, x, n);
		return;
	}
	/* col (Cin*k*k, Ho*Wo) = alpha w^T (Cin*k*k, Cout) y (Cout, Ho*Wo) */
	cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, kk, n, g->cout, alpha, w, kk, y, n,
		    0.0f, col, n);
	memset(x, 0, sizeof(float) * conv_in_size(g));
	conv_col2im_add(g, col, x);
}

void conv_weight_grad_add(const struct conv_geom *g, float alpha, const float *dy,
			  const float *x, float *gw, float *col)
{
	const int n = g->ho * g->wo, kk = g->cin * g->k * g->k;
	const float *c = x;
	if (!col_is_input(g)) {
		conv_im2col(g, x, col);
		c = col;
	}
	/* gw (Cout, Cin*k*k) += alpha dy (Cout, Ho*Wo) col^T (Ho*Wo, Cin*k*k) */
	cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, g->cout, kk, n, alpha, dy, n, c, n,
		    1.0f, gw, kk);
}
