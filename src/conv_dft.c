/* conv_dft: stride-1 convolutions of a batch through the DFT, as matrix
 * products (see conv_dft.h). */
#include "sectorlab/conv_dft.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sectorlab/parallel.h"

struct conv_dft {
	struct conv_geom g;
	int max_batch;
	int nh, nw;        /* padded plane */
	int nf;            /* frequencies: nh * (nw / 2 + 1) */
	int r;             /* 2 nf rows: real and imaginary parts */
	float *din;        /* (r, H*W)      input plane -> spectrum */
	float *e;          /* (r, Ho*Wo)    spectrum -> output plane (inverse, weighted) */
	float *dw;         /* (r, k*k)      kernel -> its spectrum */
	float *g_hat;      /* (r, Cout*Cin) kernel spectra of the last forward pass */
	float *g_hat_t;    /* (r, Cin*Cout) the same, each plane transposed: the
			      faster layout for the forward products */
	float *w_seen;     /* (Cout*Cin*k*k) the kernel g_hat was computed from */
	bool g_valid;      /* g_hat and w_seen hold a kernel */
	bool t_valid;      /* g_hat_t holds g_hat transposed */
	float *x_hat;      /* (r, max_batch*Cin)  input spectra of the last forward pass */
	float *y_hat;      /* (r, max_batch*Cout) output spectra; then their gradient */
	float *dx_hat;     /* (r, max_batch*Cin)  input-spectrum gradient */
	float *dg_hat;     /* (r, Cout*Cin)       kernel-spectrum gradient */
};

/* One product split among the team (parallel_sgemm), in CBLAS terms. */
static void gemm(struct parallel *team, bool split_rows, enum CBLAS_TRANSPOSE ta,
		 enum CBLAS_TRANSPOSE tb, int m, int n, int k, float alpha, const float *a, int lda,
		 const float *b, int ldb, float beta, float *c, int ldc)
{
	parallel_sgemm(team, split_rows, ta == CblasTrans, tb == CblasTrans, m, n, k, alpha, a, lda,
		       b, ldb, beta, c, ldc);
}

/* The per-frequency products of a pass, frequencies [begin, end) per thread. */
struct bins_job {
	struct conv_dft *p;
	bool transposed;   /* forward: the products read g_hat_t */
	const float *dy;   /* backward: the output-spectrum gradient */
	int batch;
	bool want_dx, want_gw;
};

/* The padded size along one axis: the circular correlation must never wrap
 * a real pixel onto an output (taps reach from -pad to Ho - 1 - pad + k - 1). */
static int padded(int in, int out, int k, int pad)
{
	int a = in + pad, b = out - pad + k - 1;
	return a > b ? a : b;
}

static void sizes(const struct conv_geom *g, int *nh, int *nw, int *nf)
{
	*nh = padded(g->h, g->ho, g->k, g->pad);
	*nw = padded(g->w, g->wo, g->k, g->pad);
	*nf = *nh * (*nw / 2 + 1);
}

double conv_direct_flops(const struct conv_geom *g, int batch)
{
	return 2.0 * batch * g->cout * (double)g->cin * g->k * g->k * g->ho * g->wo;
}

double conv_dft_flops(const struct conv_geom *g, int batch)
{
	if (g->stride != 1)
		return 0;
	int nh, nw, nf;
	sizes(g, &nh, &nw, &nf);
	double r = 2.0 * nf, cc = (double)g->cout * g->cin;
	return 2 * r * cc * g->k * g->k                       /* kernel spectra */
	       + 2 * r * g->h * g->w * (double)batch * g->cin  /* input spectra */
	       + 8.0 * nf * batch * cc                        /* per-frequency products */
	       + 2 * r * g->ho * g->wo * (double)batch * g->cout; /* inverse */
}

static float *alloc_floats(size_t n, size_t *bytes)
{
	*bytes += n * sizeof(float);
	return malloc(n * sizeof(float));
}

sl_status conv_dft_new(const struct conv_geom *g, int max_batch, struct conv_dft **out,
		       struct sl_error *err)
{
	*out = NULL;
	if (g->stride != 1)
		return status_set(err, SL_ERR_UNSUPPORTED, "DFT convolution needs stride 1, not %d",
				  g->stride);
	struct conv_dft *p = calloc(1, sizeof *p);
	if (!p)
		return status_set(err, SL_ERR_NOMEM, "DFT convolution plan");
	p->g = *g;
	p->max_batch = max_batch;
	sizes(g, &p->nh, &p->nw, &p->nf);
	p->r = 2 * p->nf;
	size_t r = (size_t)p->r, bytes = 0, cc = (size_t)g->cout * g->cin;
	size_t hw = (size_t)g->h * g->w, howo = (size_t)g->ho * g->wo, kk = (size_t)g->k * g->k;
	p->din = alloc_floats(r * hw, &bytes);
	p->e = alloc_floats(r * howo, &bytes);
	p->dw = alloc_floats(r * kk, &bytes);
	p->g_hat = alloc_floats(r * cc, &bytes);
	p->g_hat_t = alloc_floats(r * cc, &bytes);
	p->w_seen = alloc_floats(cc * kk, &bytes);
	p->dg_hat = alloc_floats(r * cc, &bytes);
	p->x_hat = alloc_floats(r * (size_t)max_batch * g->cin, &bytes);
	p->dx_hat = alloc_floats(r * (size_t)max_batch * g->cin, &bytes);
	p->y_hat = alloc_floats(r * (size_t)max_batch * g->cout, &bytes);
	if (!p->din || !p->e || !p->dw || !p->g_hat || !p->g_hat_t || !p->w_seen || !p->dg_hat ||
	    !p->x_hat || !p->dx_hat || !p->y_hat) {
		conv_dft_free(p);
		return status_set(err, SL_ERR_NOMEM, "DFT convolution buffers: %zu MB", bytes >> 20);
	}
	/*
	 * Frequency f = (fh, fw), fw <= nw / 2, and angle t(f, a, b) = 2 pi (fh a / nh +
	 * fw b / nw) for a plane position (a, b).  With x[a, b] = (1/N) sum_f X_f
	 * e^{i t(f, a, b)} (N = nh nw) the correlation y[i, j] = sum_kl w[k, l]
	 * x[i + k - pad, j + l - pad] becomes Y_f = X_f G_f with
	 * G_f = sum_kl w[k, l] e^{+i t(f, k - pad, l - pad)}, and y = (1/N) sum_f
	 * Re(Y_f e^{i t}) over all f; over the half spectrum the frequencies
	 * 0 < fw < nw / 2 stand for their mirror images too and count twice.
	 * Angles are reduced modulo the plane before the sine, in double.
	 */
	const double two_pi = 6.283185307179586476925;
	const double inv_n = 1.0 / ((double)p->nh * p->nw);
	int half = p->nw / 2 + 1;
	for (int f = 0; f < p->nf; f++) {
		int fh = f / half, fw = f % half;
		double weight = (fw == 0 || (p->nw % 2 == 0 && fw == p->nw / 2)) ? 1 : 2;
		float *re, *im;
#define ANGLE(a, b) \
	(two_pi * ((double)(((long)fh * (a) % p->nh + p->nh) % p->nh) / p->nh + \
		   (double)(((long)fw * (b) % p->nw + p->nw) % p->nw) / p->nw))
		re = p->din + (size_t)(2 * f) * hw, im = re + hw;
		for (int a = 0; a < g->h; a++)
			for (int b = 0; b < g->w; b++) {
				double t = ANGLE(a, b);
				re[a * g->w + b] = (float)cos(t);
				im[a * g->w + b] = (float)-sin(t);
			}
		re = p->e + (size_t)(2 * f) * howo, im = re + howo;
		for (int a = 0; a < g->ho; a++)
			for (int b = 0; b < g->wo; b++) {
				double t = ANGLE(a, b);
				re[a * g->wo + b] = (float)(weight * inv_n * cos(t));
				im[a * g->wo + b] = (float)(-weight * inv_n * sin(t));
			}
		re = p->dw + (size_t)(2 * f) * kk, im = re + kk;
		for (int a = 0; a < g->k; a++)
			for (int b = 0; b < g->k; b++) {
				double t = ANGLE(a - g->pad, b - g->pad);
				re[a * g->k + b] = (float)cos(t);
				im[a * g->k + b] = (float)sin(t);
			}
#undef ANGLE
	}
	*out = p;
	return SL_OK;
}

void conv_dft_free(struct conv_dft *p)
{
	if (!p)
		return;
	free(p->din);
	free(p->e);
	free(p->dw);
	free(p->g_hat);
	free(p->g_hat_t);
	free(p->w_seen);
	free(p->dg_hat);
	free(p->x_hat);
	free(p->dx_hat);
	free(p->y_hat);
	free(p);
}

size_t conv_dft_bytes(const struct conv_dft *p)
{
	const struct conv_geom *g = &p->g;
	size_t r = (size_t)p->r, cc = (size_t)g->cout * g->cin;
	size_t n = r * ((size_t)g->h * g->w + (size_t)g->ho * g->wo + (size_t)g->k * g->k + 3 * cc +
			(size_t)p->max_batch * (2 * (size_t)g->cin + g->cout)) +
		   cc * (size_t)g->k * g->k;
	return n * sizeof(float);
}

/* Planes [begin, end) of g_hat, each (Cout, Cin), into g_hat_t as (Cin, Cout). */
static void transpose_planes(void *ctx, int tid, int begin, int end)
{
	(void)tid;
	struct conv_dft *p = ctx;
	const int cin = p->g.cin, cout = p->g.cout;
	const size_t cc = (size_t)cin * cout;
	for (int q = begin; q < end; q++) {
		const float *src = p->g_hat + (size_t)q * cc;
		float *dst = p->g_hat_t + (size_t)q * cc;
		for (int o0 = 0; o0 < cout; o0 += 16)
			for (int i = 0; i < cin; i++)
				for (int o = o0; o < o0 + 16 && o < cout; o++)
					dst[(size_t)i * cout + o] = src[(size_t)o * cin + i];
	}
}

/* Per frequency, (B, Cout): Yr = Xr Gr^T - Xi Gi^T, Yi = Xr Gi^T + Xi Gr^T. */
static void forward_bins(void *ctx, int tid, int begin, int end)
{
	(void)tid;
	const struct bins_job *j = ctx;
	const struct conv_dft *p = j->p;
	const int cin = p->g.cin, cout = p->g.cout, cc = cin * cout, batch = j->batch;
	const int pin = batch * cin, pout = batch * cout;
	for (int f = begin; f < end; f++) {
		const float *xr = p->x_hat + (size_t)(2 * f) * pin, *xi = xr + pin;
		float *yr = p->y_hat + (size_t)(2 * f) * pout, *yi = yr + pout;
		/* Gr, Gi as (Cout, Cin) planes read transposed, or, from g_hat_t,
		 * (Cin, Cout) planes read as they are: plain products, which
		 * OpenBLAS runs without packing at these sizes (its
		 * transposed-operand path packs every time: measured 1.4x slower
		 * for 32x96x256). */
		const float *gr = (j->transposed ? p->g_hat_t : p->g_hat) + (size_t)(2 * f) * cc;
		const float *gi = gr + cc;
		const enum CBLAS_TRANSPOSE tg = j->transposed ? CblasNoTrans : CblasTrans;
		const int ldg = j->transposed ? cout : cin;
		cblas_sgemm(CblasRowMajor, CblasNoTrans, tg, batch, cout, cin, 1.0f, xr, cin, gr, ldg,
			    0.0f, yr, cout);
		cblas_sgemm(CblasRowMajor, CblasNoTrans, tg, batch, cout, cin, -1.0f, xi, cin, gi, ldg,
			    1.0f, yr, cout);
		cblas_sgemm(CblasRowMajor, CblasNoTrans, tg, batch, cout, cin, 1.0f, xr, cin, gi, ldg,
			    0.0f, yi, cout);
		cblas_sgemm(CblasRowMajor, CblasNoTrans, tg, batch, cout, cin, 1.0f, xi, cin, gr, ldg,
			    1.0f, yi, cout);
	}
}

void conv_dft_forward(struct conv_dft *p, struct parallel *team, const float *w, float alpha,
		      const float *b, const float *x, float *y, int batch)
{
	const struct conv_geom *g = &p->g;
	const int r = p->r, cin = g->cin, cout = g->cout, cc = cin * cout;
	const int hw = g->h * g->w, howo = g->ho * g->wo, kk = g->k * g->k;
	const int pin = batch * cin, pout = batch * cout;
	/* g_hat (r, Cout*Cin) = dw (r, k*k) w^T (k*k, Cout*Cin), recomputed only
	 * when the kernel differs from the last one: an attack's many passes
	 * through fixed weights transform them once.  The transposed copy is
	 * made the second time a kernel is seen (training, whose kernel changes
	 * every step, never pays for it). */
	size_t wn = (size_t)cc * kk;
	if (!p->g_valid || memcmp(w, p->w_seen, sizeof(float) * wn) != 0) {
		gemm(team, false, CblasNoTrans, CblasTrans, r, cc, kk, 1.0f, p->dw, kk, w, kk, 0.0f,
		     p->g_hat, cc);
		memcpy(p->w_seen, w, sizeof(float) * wn);
		p->g_valid = true;
		p->t_valid = false;
	} else if (!p->t_valid) {
		parallel_for(team, r, transpose_planes, p);
		p->t_valid = true;
	}
	/* x_hat (r, B*Cin) = din (r, H*W) x^T (H*W, B*Cin) */
	gemm(team, false, CblasNoTrans, CblasTrans, r, pin, hw, 1.0f, p->din, hw, x, hw, 0.0f,
	     p->x_hat, pin);
	struct bins_job j = {.p = p, .batch = batch, .transposed = p->t_valid};
	parallel_for(team, p->nf, forward_bins, &j);
	if (b)
		for (int n = 0; n < pout; n++) {
			float v = b[n % cout], *row = y + (size_t)n * howo;
			for (int k = 0; k < howo; k++)
				row[k] = v;
		}
	/* y (B*Cout, Ho*Wo) = alpha y_hat^T (B*Cout, r) e (r, Ho*Wo) [+ y] */
	gemm(team, true, CblasTrans, CblasNoTrans, pout, howo, r, alpha, p->y_hat, pout, p->e,
	     howo, b ? 1.0f : 0.0f, y, howo);
}

static void backward_bins(void *ctx, int tid, int begin, int end)
{
	(void)tid;
	const struct bins_job *j = ctx;
	const struct conv_dft *p = j->p;
	const int cin = p->g.cin, cout = p->g.cout, cc = cin * cout, batch = j->batch;
	const int pin = batch * cin, pout = batch * cout;
	for (int f = begin; f < end; f++) {
		const float *dyr = j->dy + (size_t)(2 * f) * pout, *dyi = dyr + pout;
		const float *gr = p->g_hat + (size_t)(2 * f) * cc, *gi = gr + cc;
		const float *xr = p->x_hat + (size_t)(2 * f) * pin, *xi = xr + pin;
		if (j->want_dx) {
			/* (B, Cin): dXr = dYr Gr + dYi Gi, dXi = dYi Gr - dYr Gi */
			float *dxr = p->dx_hat + (size_t)(2 * f) * pin, *dxi = dxr + pin;
			cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, batch, cin, cout, 1.0f,
				    dyr, cout, gr, cin, 0.0f, dxr, cin);
			cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, batch, cin, cout, 1.0f,
				    dyi, cout, gi, cin, 1.0f, dxr, cin);
			cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, batch, cin, cout, 1.0f,
				    dyi, cout, gr, cin, 0.0f, dxi, cin);
			cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, batch, cin, cout, -1.0f,
				    dyr, cout, gi, cin, 1.0f, dxi, cin);
		}
		if (j->want_gw) {
			/* (Cout, Cin): dGr = dYr^T Xr + dYi^T Xi, dGi = dYi^T Xr - dYr^T Xi */
			float *dgr = p->dg_hat + (size_t)(2 * f) * cc, *dgi = dgr + cc;
			cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, cout, cin, batch, 1.0f,
				    dyr, cout, xr, cin, 0.0f, dgr, cin);
			cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, cout, cin, batch, 1.0f,
				    dyi, cout, xi, cin, 1.0f, dgr, cin);
			cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, cout, cin, batch, 1.0f,
				    dyi, cout, xr, cin, 0.0f, dgi, cin);
			cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, cout, cin, batch, -1.0f,
				    dyr, cout, xi, cin, 1.0f, dgi, cin);
		}
	}
}

void conv_dft_backward(struct conv_dft *p, struct parallel *team, float alpha, const float *dy,
		       float *gw, float *dx, int batch)
{
	const struct conv_geom *g = &p->g;
	const int r = p->r, cin = g->cin, cout = g->cout, cc = cin * cout;
	const int hw = g->h * g->w, howo = g->ho * g->wo, kk = g->k * g->k;
	const int pin = batch * cin, pout = batch * cout;
	/* The transpose of the inverse: dy_hat (r, B*Cout) = e (r, Ho*Wo) dy^T,
	 * written over y_hat (not needed any more). */
	float *dyh = p->y_hat;
	gemm(team, false, CblasNoTrans, CblasTrans, r, pout, howo, 1.0f, p->e, howo, dy, howo,
	     0.0f, dyh, pout);
	struct bins_job j = {.p = p, .dy = dyh, .batch = batch, .want_dx = dx != NULL,
			     .want_gw = gw != NULL};
	parallel_for(team, p->nf, backward_bins, &j);
	/* dx (B*Cin, H*W) = alpha dx_hat^T (B*Cin, r) din (r, H*W) */
	if (dx)
		gemm(team, true, CblasTrans, CblasNoTrans, pin, hw, r, alpha, p->dx_hat, pin, p->din,
		     hw, 0.0f, dx, hw);
	/* gw (Cout*Cin, k*k) = alpha dg_hat^T (Cout*Cin, r) dw (r, k*k) */
	if (gw)
		gemm(team, true, CblasTrans, CblasNoTrans, cc, kk, r, alpha, p->dg_hat, cc, p->dw,
		     kk, 0.0f, gw, kk);
}
