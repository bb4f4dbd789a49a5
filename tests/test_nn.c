/* Tests for nn and conv: gradients against central differences, BLAS paths
 * against plain loops, shapes, names, caps and the L2 penalty. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sectorlab/conv.h"
#include "sectorlab/conv_dft.h"
#include "sectorlab/model.h"
#include "sectorlab/nn.h"
#include "sectorlab/spectral.h"
#include "testutil.h"

#define BATCH 3

/* A dense network, and a small convolutional one with every layer kind:
 * conv (same padding), max pooling with overlapping windows, a strided conv
 * with padding, flatten, dense.  The input is not square, so H and W cannot
 * be confused. */
static const struct nn_layer_spec dense_specs[] = {
	{.kind = NN_DENSE, .in = 7, .out = 6, .act = NN_ACT_LEAKY_RELU, .slope = 0.1f},
	{.kind = NN_DENSE, .in = 6, .out = 5, .act = NN_ACT_LEAKY_RELU, .slope = 0.1f},
	{.kind = NN_DENSE, .in = 5, .out = 3, .act = NN_ACT_IDENTITY},
};
static const struct nn_shape conv_in = {2, 7, 6};
static const struct nn_layer_spec conv_specs[] = {
	{.kind = NN_CONV, .in = 2, .out = 3, .k = 3, .pad = 1, .act = NN_ACT_LEAKY_RELU,
	 .slope = 0.1f},                                    /* 3 x 7 x 6 */
	{.kind = NN_MAXPOOL, .k = 3, .stride = 2},          /* 3 x 3 x 2 */
	{.kind = NN_CONV, .in = 3, .out = 4, .k = 2, .stride = 2, .pad = 1,
	 .act = NN_ACT_LEAKY_RELU, .slope = 0.2f},          /* 4 x 2 x 2 */
	{.kind = NN_FLATTEN},                               /* 16 */
	{.kind = NN_DENSE, .in = 16, .out = 5, .act = NN_ACT_LEAKY_RELU, .slope = 0.1f},
	{.kind = NN_DENSE, .in = 5, .out = 3, .act = NN_ACT_IDENTITY},
};

struct fixture {
	struct nn_net *net;
	float *x;   /* (BATCH, in_dim) */
	int y[BATCH];
};

static int setup_net(void **state, struct nn_shape in, const struct nn_layer_spec *specs,
		     int n)
{
	struct fixture *f = calloc(1, sizeof *f);
	struct sl_rng rng;
	rng_seed(&rng, 42);
	assert_int_equal(nn_build(in, specs, n, BATCH, &f->net, NULL), SL_OK);
	nn_init_glorot(f->net, &rng);
	/* Non-zero biases so their gradients are exercised off the trivial point. */
	for (int i = 0; i < n; i++) {
		struct nn_layer *l = &f->net->layers[i];
		for (int o = 0; nn_layer_weighted(l) && o < l->wrows; o++)
			l->b[o] = 0.1f * rng_normal(&rng);
	}
	f->x = malloc(sizeof(float) * BATCH * (size_t)f->net->in_dim);
	for (int k = 0; k < BATCH * f->net->in_dim; k++)
		f->x[k] = rng_uniform(&rng) - 0.5f;
	for (int r = 0; r < BATCH; r++)
		f->y[r] = (int)rng_below(&rng, 3);
	*state = f;
	return 0;
}

static int setup_dense(void **state)
{
	struct nn_shape in = {7, 1, 1};
	return setup_net(state, in, dense_specs, 3);
}

static int setup_conv(void **state)
{
	return setup_net(state, conv_in, conv_specs, 6);
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	nn_free(f->net);
	free(f->x);
	free(f);
	return 0;
}

static double loss_at(struct fixture *f)
{
	nn_update_caps(f->net, 0); /* sigma = u . A v with u, v held fixed */
	nn_forward(f->net, f->x, BATCH);
	return nn_loss(f->net, f->y);
}

struct grad_check {
	double worst;  /* largest relative error among the coordinates checked */
	int kinks;     /* coordinates skipped: a kink lies within the step */
	size_t n;
};

/*
 * Compare the analytic derivative along coordinate *v with a central
 * difference.  Leaky ReLU and max pooling are piecewise linear: when a kink
 * (a pre-activation crossing 0, a window's maximum changing hands) lies
 * within the step, the one-sided differences disagree; the coordinate then
 * passes (and is counted) only if the analytic value matches one side.
 */
static void check_coordinate(struct fixture *f, float *v, double analytic, const char *what,
			     size_t k, struct grad_check *gc)
{
	const float h = 1e-3f;
	float keep = *v;
	double l0 = loss_at(f);
	*v = keep + h;
	double lp = loss_at(f);
	*v = keep - h;
	double lm = loss_at(f);
	*v = keep;
	double numeric = (lp - lm) / (2.0 * h);
	double diff = fabs(numeric - analytic);
	double scale = fmax(1e-2, fabs(numeric) + fabs(analytic));
	gc->n++;
	if (diff <= 2e-3 * scale + 2e-5) {
		if (diff / scale > gc->worst)
			gc->worst = diff / scale;
		return;
	}
	double right = (lp - l0) / h, left = (l0 - lm) / h, tol = 2e-3 * scale + 2e-5;
	if (fabs(right - left) > tol &&
	    (fabs(right - analytic) <= tol || fabs(left - analytic) <= tol)) {
		gc->kinks++;
		return;
	}
	fail_msg("%s %zu: analytic %.6g, numeric %.6g (one-sided %.6g, %.6g)", what, k, analytic,
		 numeric, left, right);
}

static void report(const char *what, const struct grad_check *gc)
{
	print_message("%s: worst relative error %.2e over %zu coordinates, %d at kinks (matched one side)\n",
		      what, gc->worst, gc->n, gc->kinks);
	/* Kinks are rare; many would mean the check is not checking.  At a kink
	 * the analytic value must still match the derivative on one side. */
	assert_true(gc->kinks * 8 <= (int)gc->n);
}

/* Compare every parameter gradient with a central difference. */
static void check_param_grads(struct fixture *f)
{
	struct nn_net *net = f->net;
	loss_at(f);
	nn_backward(net, f->y, true, false);
	float *analytic = malloc(sizeof(float) * net->nparams);
	memcpy(analytic, net->grads, sizeof(float) * net->nparams);
	struct grad_check gc = {0};
	for (size_t k = 0; k < net->nparams; k++)
		check_coordinate(f, &net->params[k], analytic[k], "param", k, &gc);
	report("parameters", &gc);
	free(analytic);
}

static void check_input_grads(struct fixture *f)
{
	struct nn_net *net = f->net;
	loss_at(f);
	nn_backward(net, f->y, false, true);
	size_t n = (size_t)BATCH * net->in_dim;
	float *dx = malloc(sizeof(float) * n);
	memcpy(dx, net->dx, sizeof(float) * n);
	struct grad_check gc = {0};
	/* nn_loss is the batch mean; dx is its gradient. */
	for (size_t k = 0; k < n; k++)
		check_coordinate(f, &f->x[k], dx[k], "input", k, &gc);
	report("inputs", &gc);
	free(dx);
}

/* Caps well below the layers' norms, so W_eff = rho W / sigma is active in
 * every weighted layer and the gradient flows through sigma. */
static void cap_everything(struct fixture *f, float rho)
{
	for (int i = 0; i < f->net->nlayers; i++)
		if (nn_layer_weighted(&f->net->layers[i]))
			nn_set_cap(f->net, i, rho);
	nn_update_caps(f->net, 30);
	for (int i = 0; i < f->net->nlayers; i++)
		if (nn_layer_weighted(&f->net->layers[i]))
			assert_true(f->net->layers[i].scale < 1.0f);
}

static void test_param_gradients(void **state)
{
	check_param_grads(*state);
}

static void test_param_gradients_capped(void **state)
{
	cap_everything(*state, 0.3f);
	check_param_grads(*state);
}

static void test_input_gradient(void **state)
{
	check_input_grads(*state);
}

static void test_input_gradient_capped(void **state)
{
	cap_everything(*state, 0.3f);
	check_input_grads(*state);
}

/* ---- Plain-loop references ---- */

/* y (cout, ho, wo) = w * x + b for x (cin, h, w), zero padding, in double. */
static void naive_conv(const struct conv_geom *g, const float *w, const float *b,
		       const float *x, double *y)
{
	for (int o = 0; o < g->cout; o++)
		for (int oy = 0; oy < g->ho; oy++)
			for (int ox = 0; ox < g->wo; ox++) {
				double s = b ? b[o] : 0;
				for (int c = 0; c < g->cin; c++)
					for (int i = 0; i < g->k; i++)
						for (int j = 0; j < g->k; j++) {
							int iy = oy * g->stride - g->pad + i;
							int ix = ox * g->stride - g->pad + j;
							if (iy < 0 || iy >= g->h || ix < 0 || ix >= g->w)
								continue;
							s += (double)w[((o * g->cin + c) * g->k + i) * g->k + j] *
							     x[(c * g->h + iy) * g->w + ix];
						}
				y[(o * g->ho + oy) * g->wo + ox] = s;
			}
}

/* x (cin, h, w) = W^T y, the adjoint of naive_conv without bias. */
static void naive_conv_transpose(const struct conv_geom *g, const float *w, const float *y,
				 double *x)
{
	memset(x, 0, sizeof(double) * conv_in_size(g));
	for (int o = 0; o < g->cout; o++)
		for (int oy = 0; oy < g->ho; oy++)
			for (int ox = 0; ox < g->wo; ox++)
				for (int c = 0; c < g->cin; c++)
					for (int i = 0; i < g->k; i++)
						for (int j = 0; j < g->k; j++) {
							int iy = oy * g->stride - g->pad + i;
							int ix = ox * g->stride - g->pad + j;
							if (iy < 0 || iy >= g->h || ix < 0 || ix >= g->w)
								continue;
							x[(c * g->h + iy) * g->w + ix] +=
								(double)w[((o * g->cin + c) * g->k + i) * g->k + j] *
								y[(o * g->ho + oy) * g->wo + ox];
						}
}

static void fill(struct sl_rng *rng, float *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		v[i] = rng_normal(rng);
}

/* conv_apply, conv_apply_transpose and conv_weight_grad_add against loops,
 * over strides, paddings and kernel sizes (1x1 takes the no-im2col path). */
static void test_conv_matches_loops(void **state)
{
	(void)state;
	static const int cases[][7] = {
		/* cin, h, w, cout, k, stride, pad */
		{3, 8, 7, 4, 3, 1, 1}, {2, 9, 9, 3, 5, 1, 2}, {3, 10, 7, 2, 3, 2, 0},
		{2, 7, 8, 3, 4, 3, 2}, {4, 5, 6, 3, 1, 1, 0}, {2, 6, 5, 2, 1, 2, 0},
		{1, 4, 4, 2, 5, 1, 2}, {3, 32, 32, 2, 5, 1, 2},
	};
	struct sl_rng rng;
	rng_seed(&rng, 5);
	for (size_t t = 0; t < sizeof cases / sizeof cases[0]; t++) {
		const int *c = cases[t];
		struct conv_geom g;
		assert_int_equal(conv_geom_init(&g, c[0], c[1], c[2], c[3], c[4], c[5], c[6], NULL),
				 SL_OK);
		assert_int_equal(g.ho, (c[1] + 2 * c[6] - c[4]) / c[5] + 1);
		size_t nin = conv_in_size(&g), nout = conv_out_size(&g), nw = conv_weight_size(&g);
		float *w = malloc(sizeof(float) * nw), *b = malloc(sizeof(float) * (size_t)g.cout);
		float *x = malloc(sizeof(float) * nin), *y = malloc(sizeof(float) * nout);
		float *xt = malloc(sizeof(float) * nin), *dy = malloc(sizeof(float) * nout);
		float *col = malloc(sizeof(float) * conv_col_size(&g));
		float *gw = calloc(nw, sizeof(float));
		double *ref = malloc(sizeof(double) * (nin > nout ? nin : nout));
		fill(&rng, w, nw);
		fill(&rng, b, (size_t)g.cout);
		fill(&rng, x, nin);
		fill(&rng, dy, nout);
		conv_apply(&g, w, 0.5f, b, x, y, col);
		naive_conv(&g, w, NULL, x, ref);
		for (size_t i = 0; i < nout; i++)
			assert_close(y[i], 0.5 * ref[i] + b[i / (nout / (size_t)g.cout)], 1e-4);
		conv_apply_transpose(&g, w, 2.0f, dy, xt, col);
		naive_conv_transpose(&g, w, dy, ref);
		for (size_t i = 0; i < nin; i++)
			assert_close(xt[i], 2.0 * ref[i], 1e-4);
		/* The kernel gradient of <dy, w * x>: dy . (w * x) is linear in w. */
		conv_weight_grad_add(&g, 1.0f, dy, x, gw, col);
		for (size_t k = 0; k < nw; k += 1 + nw / 17) {
			float keep = w[k];
			w[k] = keep + 1;
			naive_conv(&g, w, NULL, x, ref);
			double plus = 0;
			for (size_t i = 0; i < nout; i++)
				plus += ref[i] * dy[i];
			w[k] = keep;
			naive_conv(&g, w, NULL, x, ref);
			double base = 0;
			for (size_t i = 0; i < nout; i++)
				base += ref[i] * dy[i];
			assert_close(gw[k], plus - base, 1e-3 * (1 + fabs(plus - base)));
		}
		free(w);
		free(b);
		free(x);
		free(y);
		free(xt);
		free(dy);
		free(col);
		free(gw);
		free(ref);
	}
}

/* The DFT path against the direct one (im2col + sgemm), forward and both
 * gradients, on geometries with and without padding, square or not. */
static void test_conv_dft_matches_direct(void **state)
{
	(void)state;
	static const int cases[][6] = {
		/* cin, h, w, cout, k, pad */
		{4, 15, 15, 6, 5, 2}, {3, 9, 7, 5, 3, 1}, {2, 8, 8, 3, 3, 0}, {5, 6, 10, 4, 4, 2},
		{3, 7, 7, 2, 1, 0},
	};
	struct sl_rng rng;
	rng_seed(&rng, 21);
	const int batch = 3;
	struct parallel *team; /* every other case split among two threads */
	assert_int_equal(parallel_new(2, &team, NULL), SL_OK);
	for (size_t t = 0; t < sizeof cases / sizeof cases[0]; t++) {
		const int *c = cases[t];
		struct conv_geom g;
		assert_int_equal(conv_geom_init(&g, c[0], c[1], c[2], c[3], c[4], 1, c[5], NULL),
				 SL_OK);
		struct conv_dft *p;
		assert_int_equal(conv_dft_new(&g, 4, &p, NULL), SL_OK);
		size_t nin = conv_in_size(&g), nout = conv_out_size(&g), nw = conv_weight_size(&g);
		float *w = malloc(sizeof(float) * nw), *b = malloc(sizeof(float) * (size_t)g.cout);
		float *x = malloc(sizeof(float) * nin * batch), *dy = malloc(sizeof(float) * nout * batch);
		float *y1 = malloc(sizeof(float) * nout * batch), *y2 = malloc(sizeof(float) * nout * batch);
		float *dx1 = malloc(sizeof(float) * nin * batch), *dx2 = malloc(sizeof(float) * nin * batch);
		float *gw1 = calloc(nw, sizeof(float)), *gw2 = malloc(sizeof(float) * nw);
		float *col = malloc(sizeof(float) * conv_col_size(&g));
		fill(&rng, w, nw);
		fill(&rng, b, (size_t)g.cout);
		fill(&rng, x, nin * batch);
		fill(&rng, dy, nout * batch);
		for (int n = 0; n < batch; n++) {
			conv_apply(&g, w, 0.7f, b, x + n * nin, y1 + n * nout, col);
			conv_apply_transpose(&g, w, 0.7f, dy + n * nout, dx1 + n * nin, col);
			conv_weight_grad_add(&g, 0.7f, dy + n * nout, x + n * nin, gw1, col);
		}
		conv_dft_forward(p, t % 2 ? team : NULL, w, 0.7f, b, x, y2, batch);
		conv_dft_backward(p, t % 2 ? team : NULL, 0.7f, dy, gw2, dx2, batch);
		double worst = 0;
		for (size_t i = 0; i < nout * batch; i++) {
			assert_close(y2[i], y1[i], 1e-4 * (1 + fabs(y1[i])));
			worst = fmax(worst, fabs(y2[i] - y1[i]));
		}
		for (size_t i = 0; i < nin * batch; i++)
			assert_close(dx2[i], dx1[i], 1e-4 * (1 + fabs(dx1[i])));
		for (size_t i = 0; i < nw; i++)
			assert_close(gw2[i], gw1[i], 1e-4 * (1 + fabs(gw1[i])));
		/* The plan keeps the kernel's spectra between passes (and a
		 * transposed copy from the second pass on): a kernel changed in
		 * place (one weight) must be seen, the same kernel again must
		 * give the same result, and so must the return of the first. */
		float saved = w[nw / 2];
		for (int round = 0; round < 4; round++) {
			w[nw / 2] = round == 0 || round == 1 ? saved + 0.25f : saved;
			for (int n = 0; n < batch; n++)
				conv_apply(&g, w, 0.7f, b, x + n * nin, y1 + n * nout, col);
			conv_dft_forward(p, t % 2 ? team : NULL, w, 0.7f, b, x, y2, batch);
			for (size_t i = 0; i < nout * batch; i++)
				assert_close(y2[i], y1[i], 1e-4 * (1 + fabs(y1[i])));
		}
		print_message("dft %dx%dx%d -> %dx%dx%d (k %d, pad %d): max |y diff| %.2e, flops "
			      "%.0f vs direct %.0f\n",
			      c[0], c[1], c[2], g.cout, g.ho, g.wo, c[4], c[5], worst,
			      conv_dft_flops(&g, batch), conv_direct_flops(&g, batch));
		conv_dft_free(p);
		free(w);
		free(b);
		free(x);
		free(dy);
		free(y1);
		free(y2);
		free(dx1);
		free(dx2);
		free(gw1);
		free(gw2);
		free(col);
	}
	parallel_free(team);
}

/* The network's forward pass against loops, layer by layer: conv, pooling
 * (max of each window, no padding), flatten in C, H, W order, dense. */
static void test_conv_net_forward_matches_loops(void **state)
{
	struct fixture *f = *state;
	struct nn_net *net = f->net;
	const float *logits = nn_forward(net, f->x, BATCH);
	for (int r = 0; r < BATCH; r++) {
		double cur[256], next[256];
		int n = net->in_dim;
		for (int k = 0; k < n; k++)
			cur[k] = f->x[r * n + k];
		for (int i = 0; i < net->nlayers; i++) {
			const struct nn_layer *l = &net->layers[i];
			const struct conv_geom *g = &l->geom;
			if (l->kind == NN_CONV) {
				float xin[256];
				for (int k = 0; k < l->in; k++)
					xin[k] = (float)cur[k];
				naive_conv(g, l->w, l->b, xin, next);
			} else if (l->kind == NN_MAXPOOL) {
				for (int c = 0; c < g->cin; c++)
					for (int oy = 0; oy < g->ho; oy++)
						for (int ox = 0; ox < g->wo; ox++) {
							double m = -INFINITY;
							for (int a = 0; a < g->k; a++)
								for (int b = 0; b < g->k; b++) {
									int iy = oy * g->stride + a, ix = ox * g->stride + b;
									m = fmax(m, cur[(c * g->h + iy) * g->w + ix]);
								}
							next[(c * g->ho + oy) * g->wo + ox] = m;
						}
			} else if (l->kind == NN_DENSE) {
				for (int o = 0; o < l->out; o++) {
					double z = l->b[o];
					for (int k = 0; k < l->in; k++)
						z += (double)l->w[o * l->in + k] * cur[k];
					next[o] = z;
				}
			} else {
				memcpy(next, cur, sizeof(double) * (size_t)l->in);
			}
			for (int k = 0; k < l->out; k++)
				if (l->act == NN_ACT_LEAKY_RELU && next[k] < 0 &&
				    (l->kind == NN_CONV || l->kind == NN_DENSE))
					next[k] *= l->slope;
			memcpy(cur, next, sizeof(double) * (size_t)l->out);
		}
		for (int o = 0; o < net->out_dim; o++)
			assert_close(logits[r * net->out_dim + o], cur[o], 1e-5);
	}
}

/* Dense forward against loops. */
static void test_dense_forward_matches_loops(void **state)
{
	struct fixture *f = *state;
	struct nn_net *net = f->net;
	const float *logits = nn_forward(net, f->x, BATCH);
	double in[BATCH][8], out[BATCH][8];
	for (int r = 0; r < BATCH; r++)
		for (int k = 0; k < 7; k++)
			in[r][k] = f->x[r * 7 + k];
	for (int i = 0; i < 3; i++) {
		const struct nn_layer *l = &net->layers[i];
		for (int r = 0; r < BATCH; r++)
			for (int o = 0; o < l->out; o++) {
				double z = l->b[o];
				for (int k = 0; k < l->in; k++)
					z += (double)l->w[o * l->in + k] * in[r][k];
				out[r][o] = (l->act == NN_ACT_LEAKY_RELU && z < 0) ? l->slope * z : z;
			}
		memcpy(in, out, sizeof in);
	}
	for (int r = 0; r < BATCH; r++)
		for (int o = 0; o < 3; o++)
			assert_close(logits[r * 3 + o], in[r][o], 1e-5);
}

/* The 3x3/2 window (the paper's, with its own fast path), with and without
 * padding, on inputs full of ties, signed zeros and NaNs: every output is the
 * winner of a plain row-major scan (first on ties, -0 ties +0, NaN wins). */
static void test_maxpool_matches_scan(void **state)
{
	(void)state;
	struct sl_rng rng;
	rng_seed(&rng, 33);
	const float values[] = {-1.0f, -0.0f, 0.0f, 1.0f, 2.0f, NAN};
	for (int pad = 0; pad <= 1; pad++) {
		struct nn_layer_spec pool[] = {{.kind = NN_MAXPOOL, .k = 3, .stride = 2, .pad = pad}};
		struct nn_shape in = {2, 9, 12};
		struct nn_net *net;
		assert_int_equal(nn_build(in, pool, 1, 2, &net, NULL), SL_OK);
		const struct conv_geom *g = &net->layers[0].geom;
		float x[2 * 2 * 9 * 12];
		for (int trial = 0; trial < 50; trial++) {
			for (size_t k = 0; k < sizeof x / sizeof x[0]; k++)
				x[k] = values[rng_below(&rng, trial % 2 ? 6 : 5)];
			nn_forward(net, x, 2);
			for (int n = 0; n < 2; n++)
				for (int c = 0; c < 2; c++)
					for (int oy = 0; oy < g->ho; oy++)
						for (int ox = 0; ox < g->wo; ox++) {
							int best = -1;
							for (int iy = oy * 2 - pad; iy < oy * 2 - pad + 3; iy++)
								for (int ix = ox * 2 - pad; ix < ox * 2 - pad + 3; ix++) {
									if (iy < 0 || iy >= 9 || ix < 0 || ix >= 12)
										continue;
									int at = (c * 9 + iy) * 12 + ix;
									float v = x[n * 216 + at];
									float b = best < 0 ? 0 : x[n * 216 + best];
									if (best < 0 || (!isnan(b) && (isnan(v) || v > b)))
										best = at;
								}
							int o = (c * g->ho + oy) * g->wo + ox;
							assert_int_equal(net->layers[0].arg[n * net->out_dim + o], best);
						}
		}
		nn_free(net);
	}
}

/* Pooling: overlapping windows route each gradient to the window's maximum
 * (first one on ties), padded windows never pick the padding, NaN wins. */
static void test_maxpool_by_hand(void **state)
{
	(void)state;
	static const struct nn_layer_spec pool[] = {{.kind = NN_MAXPOOL, .k = 3, .stride = 2, .pad = 1}};
	struct nn_shape in = {1, 4, 4};
	struct nn_net *net;
	assert_int_equal(nn_build(in, pool, 1, 1, &net, NULL), SL_OK);
	assert_int_equal(net->out_dim, 4); /* (4 + 2 - 3) / 2 + 1 = 2 per side */
	float x[16] = {-5, -1, -2, -3,
		       -4, -6, -7, -8,
		       -9, -1, -9, -9,
		       -9, -9, -9, -2};
	const float *y = nn_forward(net, x, 1);
	/* Windows rows/cols {0,1} x {0,1}, {0,1} x {1,2,3}, {1,2,3} x {0,1},
	 * {1,2,3} x {1,2,3}. */
	assert_close(y[0], -1, 0);
	assert_close(y[1], -1, 0);
	assert_close(y[2], -1, 0);
	assert_close(y[3], -1, 0);
	nn_free(net);
	/* The gradient: dx sums the gradients of the outputs each max fed. */
	static const struct nn_layer_spec chain[] = {
		{.kind = NN_MAXPOOL, .k = 2, .stride = 1},
		{.kind = NN_FLATTEN},
		{.kind = NN_DENSE, .in = 4, .out = 2, .act = NN_ACT_IDENTITY},
	};
	struct nn_shape in3 = {1, 3, 3};
	assert_int_equal(nn_build(in3, chain, 3, 1, &net, NULL), SL_OK);
	float w[8] = {1, 2, 3, 4, 0, 0, 0, 0};
	memcpy(net->layers[2].w, w, sizeof w);
	float x3[9] = {0, 0, 0, 0, 9, 0, 0, 0, NAN};
	y = nn_forward(net, x3, 1);
	/* 2x2 windows all contain the 9, except the last which holds the NaN. */
	assert_true(isnan(y[0]));
	float x4[9] = {0, 0, 0, 0, 9, 0, 0, 0, 1};
	y = nn_forward(net, x4, 1);
	assert_close(y[0], 9 * (1 + 2 + 3 + 4), 0);
	int label = 1;
	nn_backward(net, &label, false, true);
	/* dL/dlogit0 = p0; every pooled output routes to pixel 4 with weight w. */
	double p0 = net->probs[0];
	assert_close(net->dx[4], p0 * 10, 1e-6);
	for (int k = 0; k < 9; k++)
		if (k != 4)
			assert_close(net->dx[k], 0, 0);
	nn_free(net);
}

/* Softmax cross-entropy by hand for one example. */
static void test_loss_value(void **state)
{
	(void)state;
	static const struct nn_layer_spec id[] = {{.kind = NN_DENSE, .in = 2, .out = 2, .act = NN_ACT_IDENTITY}};
	struct nn_net *net;
	assert_int_equal(nn_new(id, 1, 1, &net, NULL), SL_OK);
	float w[] = {1, 0, 0, 1};
	memcpy(net->layers[0].w, w, sizeof w);
	float x[] = {2.0f, 0.5f};
	int y = 1;
	nn_forward(net, x, 1);
	/* logits (2, 0.5): loss = log(e^2 + e^0.5) - 0.5 */
	assert_close(nn_loss(net, &y), log(exp(2.0) + exp(0.5)) - 0.5, 1e-6);
	nn_free(net);
}

/* A capped layer's weight in use has exactly the cap as its norm once the
 * power iteration has converged. */
static void test_cap_holds_exactly(void **state)
{
	struct fixture *f = *state;
	struct nn_net *net = f->net;
	nn_set_cap(net, 0, 0.5f);
	nn_update_caps(net, 200);
	const struct nn_layer *l = &net->layers[0];
	float w[42];
	nn_layer_weight_in_use(l, w);
	double exact;
	assert_int_equal(spectral_norm_exact(w, l->out, l->in, &exact, NULL), SL_OK);
	assert_close(exact, 0.5, 1e-4);
	bool is_exact;
	double verified;
	assert_int_equal(nn_layer_norm(net, 0, &verified, &is_exact, NULL), SL_OK);
	assert_true(is_exact);
	assert_close(verified, 0.5, 1e-4);
	/* Uncapped layers keep their weights. */
	assert_close(net->layers[1].scale, 1, 0);
}

/* A capped convolution: the operator norm of the weight in use, checked
 * against the SVD of the explicit operator, is the cap. */
static void test_conv_cap_holds_exactly(void **state)
{
	struct fixture *f = *state;
	struct nn_net *net = f->net;
	nn_set_cap(net, 0, 0.4f);
	nn_update_caps(net, 300);
	const struct nn_layer *l = &net->layers[0];
	float *w = malloc(sizeof(float) * nn_layer_wsize(l)), *a;
	nn_layer_weight_in_use(l, w);
	assert_int_equal(spectral_conv_matrix(&l->geom, w, 1 << 20, &a, NULL), SL_OK);
	double exact;
	assert_int_equal(spectral_norm_exact(a, l->usize, l->vsize, &exact, NULL), SL_OK);
	print_message("conv1 in use: exact %.6f, cap 0.4\n", exact);
	assert_close(exact, 0.4, 1e-3);
	double verified;
	bool is_exact = true;
	assert_int_equal(nn_layer_norm(net, 0, &verified, &is_exact, NULL), SL_OK);
	assert_false(is_exact);
	assert_close(verified, exact, 1e-3);
	free(w);
	free(a);
}

static void test_l2_penalty(void **state)
{
	struct fixture *f = *state;
	struct nn_net *net = f->net;
	double expect = 0;
	for (int i = 0; i < net->nlayers; i++) {
		const struct nn_layer *l = &net->layers[i];
		for (size_t k = 0; nn_layer_weighted(l) && k < nn_layer_wsize(l); k++)
			expect += 0.005 * (double)l->w[k] * l->w[k];
	}
	nn_forward(net, f->x, BATCH);
	nn_backward(net, f->y, true, false);
	float *g = malloc(sizeof(float) * net->nparams);
	memcpy(g, net->grads, sizeof(float) * net->nparams);
	assert_close(nn_l2_penalty(net, 0.005, true), expect, 1e-9);
	/* Weights gain 2 lambda W; biases nothing. */
	for (int i = 0; i < net->nlayers; i++) {
		const struct nn_layer *l = &net->layers[i];
		if (!nn_layer_weighted(l))
			continue;
		size_t off = (size_t)(l->w - net->params);
		for (size_t k = 0; k < nn_layer_wsize(l); k++)
			assert_close(net->grads[off + k], g[off + k] + 0.01 * l->w[k], 1e-6);
		off = (size_t)(l->b - net->params);
		for (int k = 0; k < l->wrows; k++)
			assert_close(net->grads[off + k], g[off + k], 0);
	}
	free(g);
}

static void test_names_and_shapes(void **state)
{
	struct fixture *f = *state;
	struct nn_net *net = f->net;
	static const char *const names[] = {"conv1", "pool1", "conv2", "flatten1", "fc1", "fc2"};
	for (int i = 0; i < 6; i++)
		assert_string_equal(net->layers[i].name, names[i]);
	assert_int_equal(net->layers[1].out_shape.h, 3);
	assert_int_equal(net->layers[1].out_shape.w, 2);
	assert_int_equal(net->layers[2].out, 16);
	int idx[NN_MAX_LAYERS];
	assert_int_equal(nn_weighted_layers(net, idx), 4);
	assert_int_equal(idx[2], 4);
	assert_int_equal(nn_find_layer(net, "fc2"), 5);
	assert_int_equal(nn_find_layer(net, "fc3"), -1);
	/* The models: AlexNet's flatten gives 256 x 7 x 7 = 12544 features. */
	struct nn_net *alex;
	assert_int_equal(model_build(MODEL_ALEXNET, 2, &alex, NULL), SL_OK);
	assert_int_equal(alex->layers[4].out, 12544);
	assert_int_equal(alex->out_dim, 10);
	assert_int_equal(model_weighted_count(MODEL_ALEXNET), 5);
	print_message("alexnet: %zu parameters\n", alex->nparams);
	assert_int_equal(alex->nparams, (size_t)(96 * 75 + 96 + 256 * 2400 + 256 + 12544 * 384 + 384 +
						 384 * 192 + 192 + 1920 + 10));
	nn_free(alex);
}

/* Two threads split each batch (conv, pooling) and sum their partial
 * gradients in thread order: the results match one thread to rounding and
 * repeat exactly. */
static void test_threads_agree(void **state)
{
	(void)state;
	struct nn_net *one, *two, *again;
	/* Each network its own count, whatever the default. */
	assert_int_equal(nn_build_threads(conv_in, conv_specs, 6, 5, 1, &one, NULL), SL_OK);
	assert_int_equal(nn_build_threads(conv_in, conv_specs, 6, 5, 2, &two, NULL), SL_OK);
	assert_int_equal(nn_build_threads(conv_in, conv_specs, 6, 5, 2, &again, NULL), SL_OK);
	assert_int_equal(one->threads, 1);
	assert_int_equal(two->threads, 2);
	struct sl_rng rng;
	rng_seed(&rng, 4);
	nn_init_glorot(one, &rng);
	assert_int_equal(nn_copy_weights(two, one, NULL), SL_OK);
	assert_int_equal(nn_copy_weights(again, one, NULL), SL_OK);
	float x[5 * 84];
	int y[5] = {0, 1, 2, 1, 0};
	for (int k = 0; k < 5 * 84; k++)
		x[k] = rng_uniform(&rng) - 0.5f;
	struct nn_net *nets[3] = {one, two, again};
	for (int i = 0; i < 3; i++) {
		nn_forward(nets[i], x, 5);
		nn_backward(nets[i], y, true, true);
	}
	for (size_t k = 0; k < one->nparams; k++)
		assert_close(two->grads[k], one->grads[k], 1e-6 * (1 + fabs(one->grads[k])));
	for (int k = 0; k < 5 * 84; k++)
		assert_close(two->dx[k], one->dx[k], 1e-7);
	assert_memory_equal(two->grads, again->grads, sizeof(float) * one->nparams);
	/* A batch smaller than the team leaves a thread without images. */
	nn_forward(two, x, 1);
	nn_backward(two, y, true, false);
	nn_forward(one, x, 1);
	nn_backward(one, y, true, false);
	for (size_t k = 0; k < one->nparams; k++)
		assert_close(two->grads[k], one->grads[k], 1e-6 * (1 + fabs(one->grads[k])));
	nn_free(one);
	nn_free(two);
	nn_free(again);
}

/* A copy computes what its source computes, caps and power iteration
 * included, and carries the iteration on as the source would; networks of
 * another shape are refused. */
static void test_copy_weights(void **state)
{
	(void)state;
	struct nn_net *src, *dst, *other;
	assert_int_equal(nn_build_threads(conv_in, conv_specs, 6, 5, 1, &src, NULL), SL_OK);
	assert_int_equal(nn_build_threads(conv_in, conv_specs, 6, 2, 2, &dst, NULL), SL_OK);
	assert_int_equal(nn_build(conv_in, conv_specs, 5, 2, &other, NULL), SL_OK);
	struct sl_rng rng;
	rng_seed(&rng, 9);
	nn_init_glorot(src, &rng);
	int idx[NN_MAX_LAYERS], nw = nn_weighted_layers(src, idx);
	for (int j = 0; j < nw; j++)
		nn_set_cap(src, idx[j], 0.5f);
	nn_update_caps(src, 3);
	assert_int_equal(nn_copy_weights(dst, src, NULL), SL_OK);
	float x[2 * 84];
	for (int k = 0; k < 2 * 84; k++)
		x[k] = rng_uniform(&rng) - 0.5f;
	const float *a = nn_forward(src, x, 2);
	float ya[64];
	memcpy(ya, a, sizeof(float) * (size_t)(2 * src->out_dim));
	const float *b = nn_forward(dst, x, 2);
	for (int k = 0; k < 2 * src->out_dim; k++)
		assert_close(b[k], ya[k], 1e-6);
	for (int j = 0; j < nw; j++) {
		const struct nn_layer *ls = &src->layers[idx[j]], *ld = &dst->layers[idx[j]];
		assert_true(ld->rho == ls->rho && ld->scale == ls->scale);
		float s1 = nn_update_layer_cap(src, idx[j], 1), s2 = nn_update_layer_cap(dst, idx[j], 1);
		assert_close(s2, s1, 1e-6 * s1);
	}
	struct sl_error err;
	assert_int_equal(nn_copy_weights(other, src, &err), SL_ERR_ARG);
	assert_non_null(strstr(err.msg, "shape"));
	nn_free(src);
	nn_free(dst);
	nn_free(other);
}

static void test_bad_shapes(void **state)
{
	(void)state;
	struct nn_layer_spec bad[] = {{.kind = NN_DENSE, .in = 4, .out = 3, .act = NN_ACT_IDENTITY},
				      {.kind = NN_DENSE, .in = 5, .out = 2, .act = NN_ACT_IDENTITY}};
	struct nn_net *net = NULL;
	struct sl_error err;
	assert_int_equal(nn_new(bad, 2, 8, &net, &err), SL_ERR_ARG);
	assert_null(net);
	assert_non_null(strstr(err.msg, "layer 2 takes 5"));
	assert_int_equal(nn_new(bad, 0, 8, &net, &err), SL_ERR_ARG);
	struct nn_shape in = {3, 4, 4};
	struct nn_layer_spec conv[] = {{.kind = NN_CONV, .in = 2, .out = 3, .k = 3}};
	assert_int_equal(nn_build(in, conv, 1, 1, &net, &err), SL_ERR_ARG);
	assert_non_null(strstr(err.msg, "channels"));
	conv[0].in = 3;
	conv[0].k = 7;
	assert_int_equal(nn_build(in, conv, 1, 1, &net, &err), SL_ERR_ARG);
	assert_non_null(strstr(err.msg, "does not fit"));
	struct nn_layer_spec pool[] = {{.kind = NN_MAXPOOL, .k = 2, .pad = 2}};
	assert_int_equal(nn_build(in, pool, 1, 1, &net, &err), SL_ERR_ARG);
	struct nn_layer_spec slope[] = {{.kind = NN_DENSE, .in = 48, .out = 2,
					 .act = NN_ACT_LEAKY_RELU, .slope = -1}};
	assert_int_equal(nn_build(in, slope, 1, 1, &net, &err), SL_ERR_ARG);
	assert_null(net);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_param_gradients, setup_dense, teardown),
		cmocka_unit_test_setup_teardown(test_param_gradients_capped, setup_dense, teardown),
		cmocka_unit_test_setup_teardown(test_input_gradient, setup_dense, teardown),
		cmocka_unit_test_setup_teardown(test_param_gradients, setup_conv, teardown),
		cmocka_unit_test_setup_teardown(test_param_gradients_capped, setup_conv, teardown),
		cmocka_unit_test_setup_teardown(test_input_gradient, setup_conv, teardown),
		cmocka_unit_test_setup_teardown(test_input_gradient_capped, setup_conv, teardown),
		cmocka_unit_test(test_conv_matches_loops),
		cmocka_unit_test(test_conv_dft_matches_direct),
		cmocka_unit_test_setup_teardown(test_conv_net_forward_matches_loops, setup_conv,
						teardown),
		cmocka_unit_test_setup_teardown(test_dense_forward_matches_loops, setup_dense,
						teardown),
		cmocka_unit_test(test_maxpool_by_hand),
		cmocka_unit_test(test_loss_value),
		cmocka_unit_test_setup_teardown(test_cap_holds_exactly, setup_dense, teardown),
		cmocka_unit_test_setup_teardown(test_conv_cap_holds_exactly, setup_conv, teardown),
		cmocka_unit_test_setup_teardown(test_l2_penalty, setup_conv, teardown),
		cmocka_unit_test_setup_teardown(test_names_and_shapes, setup_conv, teardown),
		cmocka_unit_test(test_threads_agree),
		cmocka_unit_test(test_maxpool_matches_scan),
		cmocka_unit_test(test_bad_shapes),
		cmocka_unit_test(test_copy_weights),
	};
	return cmocka_run_group_tests_name("nn", tests, NULL, NULL);
}
