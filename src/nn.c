/* nn: layer-table networks, forward and backward passes on OpenBLAS (see nn.h). */
#include "sectorlab/nn.h"

#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sectorlab/blasmem.h"
#include "sectorlab/linalg.h"
#include "sectorlab/parallel.h"
#include "sectorlab/spectral.h"

/* Threads of the networks built from now on (nn_set_threads). */
static int default_threads = 1;

/* Every buffer in the block starts on a 64-byte boundary (16 floats). */
#define NN_ALIGN 16

static size_t round_up(size_t n)
{
	return (n + NN_ALIGN - 1) / NN_ALIGN * NN_ALIGN;
}

bool nn_layer_weighted(const struct nn_layer *l)
{
	return l->kind == NN_DENSE || l->kind == NN_CONV;
}

size_t nn_layer_wsize(const struct nn_layer *l)
{
	return (size_t)l->wrows * (size_t)l->wcols;
}

static int shape_count(struct nn_shape s)
{
	return s.c * s.h * s.w;
}

/* Shapes and sizes of layer i from its spec and its input shape. */
static sl_status layer_shape(struct nn_layer *l, const struct nn_layer_spec *s, int i,
			     struct nn_shape in, struct sl_error *err)
{
	l->kind = s->kind;
	l->act = s->act;
	l->slope = s->slope;
	l->in_shape = in;
	l->in = shape_count(in);
	l->scale = 1;
	if ((s->kind == NN_DENSE || s->kind == NN_CONV) &&
	    (s->act != NN_ACT_IDENTITY && s->act != NN_ACT_LEAKY_RELU && s->act != NN_ACT_TANH))
		return status_set(err, SL_ERR_ARG, "layer %d: unknown activation", i + 1);
	if (s->act == NN_ACT_LEAKY_RELU && !(s->slope >= 0 && s->slope <= 1))
		return status_set(err, SL_ERR_ARG, "layer %d: leaky ReLU slope %g (0 to 1)", i + 1,
				  (double)s->slope);
	switch (s->kind) {
	case NN_DENSE:
		if (s->in != l->in)
			return status_set(err, SL_ERR_ARG,
					  "layer %d takes %d features but %s %d gives %d", i + 1,
					  s->in, i ? "layer" : "the input of shape", i, l->in);
		if (s->out < 1 || s->out > (1 << 24))
			return status_set(err, SL_ERR_ARG, "layer %d: %d outputs", i + 1, s->out);
		l->out_shape = (struct nn_shape){s->out, 1, 1};
		l->wrows = s->out;
		l->wcols = s->in;
		if ((size_t)l->wrows * (size_t)l->wcols > (1u << 28))
			return status_set(err, SL_ERR_TOO_LARGE, "layer %d: %dx%d weight", i + 1,
					  s->out, s->in);
		l->usize = s->out;
		l->vsize = s->in;
		break;
	case NN_CONV: {
		if (s->in != in.c)
			return status_set(err, SL_ERR_ARG,
					  "layer %d takes %d channels but gets %d (%dx%dx%d)", i + 1,
					  s->in, in.c, in.c, in.h, in.w);
		sl_status st = conv_geom_init(&l->geom, in.c, in.h, in.w, s->out, s->k,
					      s->stride ? s->stride : 1, s->pad, err);
		if (st != SL_OK)
			return st;
		l->out_shape = (struct nn_shape){s->out, l->geom.ho, l->geom.wo};
		l->wrows = s->out;
		l->wcols = in.c * s->k * s->k;
		l->usize = (int)conv_out_size(&l->geom);
		l->vsize = (int)conv_in_size(&l->geom);
		break;
	}
	case NN_MAXPOOL: {
		int stride = s->stride ? s->stride : s->k;
		if (s->k < 1 || s->pad < 0 || 2 * s->pad > s->k)
			return status_set(err, SL_ERR_ARG,
					  "layer %d: pooling window %d with padding %d (at most half "
					  "the window)",
					  i + 1, s->k, s->pad);
		sl_status st = conv_geom_init(&l->geom, in.c, in.h, in.w, in.c, s->k, stride,
					      s->pad, err);
		if (st != SL_OK)
			return st;
		l->out_shape = (struct nn_shape){in.c, l->geom.ho, l->geom.wo};
		break;
	}
	case NN_FLATTEN:
		l->out_shape = (struct nn_shape){l->in, 1, 1};
		break;
	default:
		return status_set(err, SL_ERR_UNSUPPORTED, "layer %d: unknown kind", i + 1);
	}
	l->out = shape_count(l->out_shape);
	return SL_OK;
}

/* Take the DFT path when it needs well under the direct multiply-adds (its
 * products run a little less efficiently: smaller, and more of them). */
static bool dft_pays(const struct conv_geom *g, int batch)
{
	return g->stride == 1 && batch >= 8 &&
	       conv_dft_flops(g, batch) < 0.75 * conv_direct_flops(g, batch);
}

static void name_layer(struct nn_layer *l, int *counts)
{
	static const char *const prefix[] = {
		[NN_DENSE] = "fc", [NN_CONV] = "conv", [NN_MAXPOOL] = "pool",
		[NN_FLATTEN] = "flatten",
	};
	snprintf(l->name, sizeof l->name, "%s%d", prefix[l->kind], ++counts[l->kind]);
}

sl_status nn_build(struct nn_shape input, const struct nn_layer_spec *specs, int nlayers,
		   int max_batch, struct nn_net **out, struct sl_error *err)
{
	return nn_build_threads(input, specs, nlayers, max_batch, 0, out, err);
}

sl_status nn_build_threads(struct nn_shape input, const struct nn_layer_spec *specs, int nlayers,
			   int max_batch, int threads, struct nn_net **out, struct sl_error *err)
{
	*out = NULL;
	if (threads < 0 || threads > 64)
		return status_set(err, SL_ERR_ARG, "network: %d threads (1 to 64, 0: the default)",
				  threads);
	if (nlayers < 1 || nlayers > NN_MAX_LAYERS)
		return status_set(err, SL_ERR_ARG, "network: %d layers (1 to %d allowed)",
				  nlayers, NN_MAX_LAYERS);
	if (max_batch < 1 || max_batch > 65536)
		return status_set(err, SL_ERR_ARG, "network: batch size %d", max_batch);
	if (input.c < 1 || input.h < 1 || input.w < 1 || input.c > 4096 || input.h > 4096 ||
	    input.w > 4096 || (size_t)input.c * input.h * input.w > (1u << 24))
		return status_set(err, SL_ERR_ARG, "network: input shape %dx%dx%d", input.c,
				  input.h, input.w);
	/* Networks split their own work among their threads (nn_set_threads);
	 * OpenBLAS's threads would only compete for the same cores, and on the
	 * small products of a step their wake-ups cost more than they save. */
	openblas_set_num_threads(1);
	/* OpenBLAS's work buffers before the network's own: a shortage of address
	 * space then fails here, or in an allocation of ours, never in OpenBLAS
	 * (which would retry forever). */
	sl_status bst = blasmem_reserve(default_threads, err);
	if (bst != SL_OK)
		return bst;
	struct nn_net *net = calloc(1, sizeof *net);
	if (!net)
		return status_set(err, SL_ERR_NOMEM, "network");
	sl_status st = SL_OK;
	struct nn_shape shape = input;
	size_t nparams = 0, col = 1, work = 1, part = 1, keys = 1, rows = 1;
	for (int i = 0; i < nlayers; i++) {
		st = layer_shape(&net->layers[i], &specs[i], i, shape, err);
		if (st != SL_OK)
			goto fail;
		struct nn_layer *l = &net->layers[i];
		if ((size_t)max_batch * (size_t)l->out > (1u << 30)) {
			st = status_set(err, SL_ERR_TOO_LARGE,
					"layer %d: %d values per example for a batch of %d", i + 1,
					l->out, max_batch);
			goto fail;
		}
		if (l->kind == NN_DENSE && (size_t)NN_ROWS * (size_t)(l->in + l->out) > rows)
			rows = (size_t)NN_ROWS * (size_t)(l->in + l->out);
		if (nn_layer_weighted(l)) {
			nparams += nn_layer_wsize(l) + (size_t)l->wrows;
			if ((size_t)l->usize + l->vsize > work)
				work = (size_t)l->usize + l->vsize;
		}
		if (l->kind == NN_CONV && conv_col_size(&l->geom) > col)
			col = conv_col_size(&l->geom);
		if (l->kind == NN_CONV && nn_layer_wsize(l) + (size_t)l->wrows > part)
			part = nn_layer_wsize(l) + (size_t)l->wrows;
		if (l->kind == NN_MAXPOOL && (size_t)l->in > keys)
			keys = (size_t)l->in;
		shape = l->out_shape;
	}
	int counts[NN_FLATTEN + 1] = {0};
	for (int i = 0; i < nlayers; i++)
		name_layer(&net->layers[i], counts);
	net->nlayers = nlayers;
	net->in_shape = input;
	net->in_dim = shape_count(input);
	net->out_dim = net->layers[nlayers - 1].out;
	net->max_batch = max_batch;
	net->nparams = nparams;
	net->threads = threads > 0 ? threads : default_threads;
	net->col_stride = round_up(col);
	net->part_stride = round_up(part);
	net->keys_stride = round_up(keys);

	/* One block for every buffer: dx, probs, row_loss, col, work, then per layer u, v,
	 * a, da, arg.  Sizes first, then pointers, in the same order. */
	size_t mb = (size_t)max_batch, total = 0;
	for (int pass = 0; pass < 2; pass++) {
		float *q = net->block;
		size_t off = 0;
#define NN_TAKE(ptr, n)                                       \
	do {                                                  \
		if (pass)                                     \
			(ptr) = q + off;                      \
		off += round_up(n);                           \
	} while (0)
		NN_TAKE(net->dx, mb * net->in_dim);
		NN_TAKE(net->probs, mb * net->out_dim);
		NN_TAKE(net->row_loss, mb);
		NN_TAKE(net->col, net->col_stride * (size_t)net->threads);
		NN_TAKE(net->part, net->part_stride * (size_t)(net->threads - 1));
		float *keys_block = NULL; /* int32 and float have one size */
		NN_TAKE(keys_block, net->keys_stride * (size_t)net->threads);
		net->keys = (int32_t *)keys_block;
		NN_TAKE(net->work, work);
		NN_TAKE(net->rows, rows);
		for (int i = 0; i < nlayers; i++) {
			struct nn_layer *l = &net->layers[i];
			if (nn_layer_weighted(l)) {
				NN_TAKE(l->u, (size_t)l->usize);
				NN_TAKE(l->v, (size_t)l->vsize);
			}
			if (l->kind == NN_FLATTEN) {
				/* Shares its input's buffers (see nn_forward); first in
				 * line, it passes its gradient straight to dx. */
				if (pass) {
					l->a = i ? net->layers[i - 1].a : NULL;
					l->da = i ? net->layers[i - 1].da : net->dx;
				}
				continue;
			}
			NN_TAKE(l->a, mb * l->out);
			NN_TAKE(l->da, mb * l->out);
			if (l->kind == NN_DENSE)
				NN_TAKE(l->z, mb * l->out);
			if (l->kind == NN_MAXPOOL) {
				float *arg = NULL;
				NN_TAKE(arg, mb * l->out); /* int32 and float have one size */
				l->arg = (int32_t *)arg;
			}
		}
#undef NN_TAKE
		if (!pass) {
			total = off;
			net->block = aligned_alloc(NN_ALIGN * sizeof(float), total * sizeof(float));
			if (!net->block) {
				st = status_set(err, SL_ERR_NOMEM,
						"network buffers: %zu MB", total * sizeof(float) >> 20);
				goto fail;
			}
			memset(net->block, 0, total * sizeof(float));
		}
	}

	net->params = calloc(nparams ? nparams : 1, sizeof(float));
	net->grads = calloc(nparams ? nparams : 1, sizeof(float));
	if (!net->params || !net->grads) {
		st = status_set(err, SL_ERR_NOMEM, "network: %zu parameters", nparams);
		goto fail;
	}
	if (net->threads > 1 && (st = parallel_new(net->threads, &net->team, err)) != SL_OK)
		goto fail;
	for (int i = 0; i < nlayers; i++) {
		struct nn_layer *l = &net->layers[i];
		if (l->kind == NN_CONV && dft_pays(&l->geom, max_batch) &&
		    (st = conv_dft_new(&l->geom, max_batch, &l->dft, err)) != SL_OK)
			goto fail;
	}
	float *p = net->params, *g = net->grads;
	for (int i = 0; i < nlayers; i++) {
		struct nn_layer *l = &net->layers[i];
		if (!nn_layer_weighted(l))
			continue;
		size_t wsz = nn_layer_wsize(l);
		l->w = p, l->gw = g, p += wsz, g += wsz;
		l->b = p, l->gb = g, p += l->wrows, g += l->wrows;
	}
	*out = net;
	return SL_OK;
fail:
	nn_free(net);
	return st;
}

sl_status nn_new(const struct nn_layer_spec *specs, int nlayers, int max_batch,
		 struct nn_net **out, struct sl_error *err)
{
	*out = NULL;
	if (nlayers < 1 || specs[0].kind != NN_DENSE || specs[0].in < 1)
		return status_set(err, SL_ERR_ARG,
				  "network: nn_new needs a dense first layer (nn_build takes images)");
	struct nn_shape in = {specs[0].in, 1, 1};
	return nn_build(in, specs, nlayers, max_batch, out, err);
}

void nn_free(struct nn_net *net)
{
	if (!net)
		return;
	parallel_free(net->team);
	for (int i = 0; i < net->nlayers; i++)
		conv_dft_free(net->layers[i].dft);
	free(net->params);
	free(net->grads);
	free(net->block);
	free(net);
}

int nn_weighted_layers(const struct nn_net *net, int *idx)
{
	int n = 0;
	for (int i = 0; i < net->nlayers; i++)
		if (nn_layer_weighted(&net->layers[i]))
			idx[n++] = i;
	return n;
}

int nn_find_layer(const struct nn_net *net, const char *name)
{
	for (int i = 0; i < net->nlayers; i++)
		if (strcmp(net->layers[i].name, name) == 0)
			return i;
	return -1;
}

void nn_init_glorot(struct nn_net *net, struct sl_rng *rng)
{
	for (int i = 0; i < net->nlayers; i++) {
		struct nn_layer *l = &net->layers[i];
		if (!nn_layer_weighted(l))
			continue;
		int kk = l->kind == NN_CONV ? l->geom.k * l->geom.k : 1;
		float limit = sqrtf(6.0f / (float)(l->wcols + l->wrows * kk));
		size_t wsz = nn_layer_wsize(l);
		for (size_t k = 0; k < wsz; k++)
			l->w[k] = (2.0f * rng_uniform(rng) - 1.0f) * limit;
		memset(l->b, 0, sizeof(float) * (size_t)l->wrows);
		spectral_random_unit(rng, l->u, l->usize);
		spectral_random_unit(rng, l->v, l->vsize);
	}
	nn_update_caps(net, 0);
}

/* Do a and b have the same layers, shapes and parameter layout? */
static bool same_shape(const struct nn_net *a, const struct nn_net *b)
{
	if (a->nlayers != b->nlayers || a->nparams != b->nparams || a->in_dim != b->in_dim ||
	    a->out_dim != b->out_dim)
		return false;
	for (int i = 0; i < a->nlayers; i++) {
		const struct nn_layer *x = &a->layers[i], *y = &b->layers[i];
		if (x->kind != y->kind || x->in != y->in || x->out != y->out ||
		    x->wrows != y->wrows || x->wcols != y->wcols || x->usize != y->usize ||
		    x->vsize != y->vsize || x->act != y->act || x->slope != y->slope)
			return false;
	}
	return true;
}

sl_status nn_copy_weights(struct nn_net *dst, const struct nn_net *src, struct sl_error *err)
{
	if (!same_shape(dst, src))
		return status_set(err, SL_ERR_ARG, "networks differ in shape: cannot copy weights");
	memcpy(dst->params, src->params, sizeof(float) * src->nparams);
	for (int i = 0; i < src->nlayers; i++) {
		const struct nn_layer *s = &src->layers[i];
		struct nn_layer *d = &dst->layers[i];
		if (!nn_layer_weighted(s))
			continue;
		memcpy(d->u, s->u, sizeof(float) * (size_t)s->usize);
		memcpy(d->v, s->v, sizeof(float) * (size_t)s->vsize);
		d->rho = s->rho;
		d->sigma_hat = s->sigma_hat;
		d->scale = s->scale;
	}
	return SL_OK;
}

void nn_layer_weight_in_use(const struct nn_layer *l, float *dst)
{
	size_t wsz = nn_layer_wsize(l);
	for (size_t k = 0; k < wsz; k++)
		dst[k] = l->w[k] * l->scale;
}

/* The one place a layer's estimate and scale are set: DESIGN.md §1,
 * W_eff = W / max(sigma_hat / rho, 1). */
static void set_sigma(struct nn_layer *l, float sigma)
{
	l->sigma_hat = sigma;
	l->scale = l->rho > 0 && sigma > l->rho ? l->rho / sigma : 1.0f;
}

void nn_set_cap(struct nn_net *net, int i, float rho)
{
	struct nn_layer *l = &net->layers[i];
	l->rho = rho > 0 ? rho : 0;
	set_sigma(l, l->sigma_hat);
}

/* The cap's gradient for a convolution: gw (Cout, Cin*k*k) += alpha dy
 * (Cout, Ho*Wo) im2col(x)^T for one image, the product split among the
 * network's team. */
static void conv_one_weight_grad(struct nn_net *net, struct nn_layer *l, float alpha,
				 const float *dy, const float *x)
{
	const int n = l->geom.ho * l->geom.wo, kk = l->wcols;
	conv_im2col(&l->geom, x, net->col);
	parallel_sgemm(net->team, true, false, true, l->wrows, kk, n, alpha, dy, n, net->col, n,
		       1.0f, l->gw, kk);
}

/* Below this many weights a dense layer's vector products stay on one
 * thread: waking the team would cost more than it saves. */
#define NN_TEAM_MIN_WEIGHTS (1 << 18)

static struct parallel *team_for(const struct nn_net *net, const struct nn_layer *l)
{
	return l->kind == NN_CONV || nn_layer_wsize(l) >= NN_TEAM_MIN_WEIGHTS ? net->team : NULL;
}

/* The layer's operator for spectral's power iteration: W, or the
 * convolution at the layer's input size, stride and padding. */
static struct spectral_op layer_op(const struct nn_net *net, const struct nn_layer *l)
{
	if (l->kind == NN_CONV)
		return spectral_op_conv(&l->geom, l->w, net->col, team_for(net, l));
	return spectral_op_dense(l->w, l->wrows, l->wcols, team_for(net, l));
}

float nn_update_layer_cap(struct nn_net *net, int i, int iters)
{
	struct nn_layer *l = &net->layers[i];
	if (!nn_layer_weighted(l))
		return 0;
	struct spectral_op op = layer_op(net, l);
	float sigma = 0;
	for (int k = 0; k < iters; k++)
		sigma = spectral_op_step(&op, l->u, l->v);
	if (iters <= 0)
		sigma = spectral_op_rayleigh(&op, l->u, l->v, net->work);
	set_sigma(l, sigma);
	return sigma;
}

void nn_update_caps(struct nn_net *net, int iters)
{
	for (int i = 0; i < net->nlayers; i++)
		if (nn_layer_weighted(&net->layers[i]))
			nn_update_layer_cap(net, i, iters);
}

/* Power steps of a layer on u, v until they settle. */
static float converge(struct nn_net *net, const struct nn_layer *l, float *u, float *v,
		      double rel_tol, int max_iters, int *iters)
{
	struct spectral_op op = layer_op(net, l);
	return spectral_op_converge(&op, u, v, rel_tol, max_iters, iters);
}

float nn_layer_norm_converged(struct nn_net *net, int i, double rel_tol, int max_iters,
			      int *iters)
{
	const struct nn_layer *l = &net->layers[i];
	if (iters)
		*iters = 0;
	if (!nn_layer_weighted(l))
		return 0;
	float *u = net->work, *v = net->work + l->usize; /* (usize), (vsize) */
	memcpy(u, l->u, sizeof(float) * (size_t)l->usize);
	memcpy(v, l->v, sizeof(float) * (size_t)l->vsize);
	return converge(net, l, u, v, rel_tol, max_iters, iters);
}

sl_status nn_layer_exact_vectors(struct nn_net *net, int i, double *raw, struct sl_error *err)
{
	struct nn_layer *l = &net->layers[i];
	if (!nn_layer_norm_is_exact(l))
		return status_set(err, SL_ERR_ARG, "%s: no exact singular vectors for this layer",
				  l->name);
	sl_status st = linalg_top_singular_pair(l->w, l->wrows, l->wcols, raw, l->u, l->v, err);
	if (st != SL_OK)
		return st;
	nn_update_layer_cap(net, i, 0);
	return SL_OK;
}

bool nn_layer_norm_is_exact(const struct nn_layer *l)
{
	return l->kind == NN_DENSE && nn_layer_wsize(l) <= (1u << 20);
}

sl_status nn_layer_norm(struct nn_net *net, int i, double *out, bool *exact,
			struct sl_error *err)
{
	struct nn_layer *l = &net->layers[i];
	if (!nn_layer_weighted(l))
		return status_set(err, SL_ERR_ARG, "%s has no weight", l->name);
	if (!(l->rho > 0)) {
		/* Uncapped: training does not use the vectors, so they carry the
		 * converged state from one call to the next (warm starts), and
		 * sigma_hat follows the norm for screens and logs. */
		set_sigma(l, converge(net, l, l->u, l->v, 2e-7, 3000, NULL));
	}
	bool dense_small = nn_layer_norm_is_exact(l);
	if (exact)
		*exact = dense_small;
	if (dense_small) {
		double s;
		sl_status st = spectral_norm_exact(l->w, l->wrows, l->wcols, &s, err);
		if (st != SL_OK)
			return st;
		*out = s * l->scale;
	} else if (l->rho > 0) {
		*out = (double)nn_layer_norm_converged(net, i, 2e-7, 3000, NULL) * l->scale;
	} else {
		*out = l->sigma_hat;
	}
	return SL_OK;
}

/* ---- Forward ---- */

/*
 * Leaky ReLU as a multiplication by 1 or the slope.  The factor is chosen
 * with integer operations on the bits (x > 0 exactly when the bits, read as
 * an unsigned number, lie in [1, 0x7f800000]: +0, negatives and NaN take the
 * slope, as "x > 0 ? x : s x" does), because GCC at -O2 leaves floating-point
 * compares scalar and random signs make a branch mispredict half the time.
 * Loops run in blocks of NN_BLOCK so the vectorizer needs no epilogue.
 */
#define NN_BLOCK 16

static inline float leaky_factor(float x, uint32_t one, uint32_t slope)
{
	uint32_t bits;
	memcpy(&bits, &x, sizeof bits);
	uint32_t pos = -(uint32_t)(bits - 1u < 0x7f800000u); /* all ones when x > 0 */
	uint32_t m = (one & pos) | (slope & ~pos);
	float f;
	memcpy(&f, &m, sizeof f);
	return f;
}

/* a[k] *= (a[k] > 0 ? 1 : s) for k < n: the activation, in place. */
static void leaky_relu(float *a, size_t n, float s)
{
	uint32_t one = 0x3f800000u, sb;
	memcpy(&sb, &s, sizeof sb);
	size_t k = 0;
	for (; k + NN_BLOCK <= n; k += NN_BLOCK)
		for (int j = 0; j < NN_BLOCK; j++)
			a[k + j] *= leaky_factor(a[k + j], one, sb);
	for (; k < n; k++)
		a[k] *= leaky_factor(a[k], one, sb);
}

/* d[k] *= (a[k] > 0 ? 1 : s) for k < n: its derivative, a the output. */
static void leaky_relu_backward(float *restrict d, const float *restrict a, size_t n, float s)
{
	uint32_t one = 0x3f800000u, sb;
	memcpy(&sb, &s, sizeof sb);
	size_t k = 0;
	for (; k + NN_BLOCK <= n; k += NN_BLOCK)
		for (int j = 0; j < NN_BLOCK; j++)
			d[k + j] *= leaky_factor(a[k + j], one, sb);
	for (; k < n; k++)
		d[k] *= leaky_factor(a[k], one, sb);
}

/* The layer's activation on a[0 .. n), in place. */
static void act_forward(const struct nn_layer *l, float *a, size_t n)
{
	if (l->act == NN_ACT_LEAKY_RELU)
		leaky_relu(a, n, l->slope);
	else if (l->act == NN_ACT_TANH)
		for (size_t k = 0; k < n; k++)
			a[k] = tanhf(a[k]);
}

/* d[k] *= phi'(z[k]) for k < n, from the outputs a: with slope >= 0, z > 0
 * exactly when a > 0 (and phi'(0) is the slope, as in PyTorch); tanh' is
 * 1 - a^2. */
static void act_backward(const struct nn_layer *l, float *restrict d, const float *restrict a,
			 size_t n)
{
	if (l->act == NN_ACT_LEAKY_RELU)
		leaky_relu_backward(d, a, n, l->slope);
	else if (l->act == NN_ACT_TANH)
		for (size_t k = 0; k < n; k++)
			d[k] *= 1.0f - a[k] * a[k];
}

static void activate(const struct nn_layer *l, int batch)
{
	act_forward(l, l->a, (size_t)batch * l->out);
}

/*
 * a (batch, out) = scale in (batch, in) W^T + b, in sgemm calls of exactly
 * NN_ROWS examples, a short last group padded with zeros in net->rows.
 * OpenBLAS computes the rows at the edge of its blocks with other kernels
 * than the rest, so with one call per batch an example's logits depended on
 * the batch size (and on its place in the batch) by a few ulps, and near-ties
 * were classified differently by train, attack and certify.  With every call
 * the same shape, each example's outputs are the same whatever batch it
 * comes in: one prediction for every command.
 */
static void dense_forward(struct nn_net *net, const struct nn_layer *l, const float *in,
			  int batch)
{
	for (int s = 0; s < batch; s += NN_ROWS) {
		int n = batch - s < NN_ROWS ? batch - s : NN_ROWS;
		const float *src = in + (size_t)s * l->in;
		float *dst = l->a + (size_t)s * l->out;
		if (n < NN_ROWS) { /* pad: (NN_ROWS, in) then (NN_ROWS, out) in net->rows */
			float *pin = net->rows, *pout = net->rows + (size_t)NN_ROWS * l->in;
			memcpy(pin, src, sizeof(float) * (size_t)n * l->in);
			memset(pin + (size_t)n * l->in, 0,
			       sizeof(float) * (size_t)(NN_ROWS - n) * l->in);
			src = pin;
			dst = pout;
		}
		for (int r = 0; r < NN_ROWS; r++)
			memcpy(dst + (size_t)r * l->out, l->b, sizeof(float) * (size_t)l->out);
		cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, NN_ROWS, l->out, l->in,
			    l->scale, src, l->in, l->w, l->in, 1.0f, dst, l->out);
		if (n < NN_ROWS)
			memcpy(l->a + (size_t)s * l->out, dst, sizeof(float) * (size_t)n * l->out);
	}
}

/* What a team thread needs to run part of a layer's batch. */
struct layer_job {
	struct nn_net *net;
	struct nn_layer *l;
	const float *in;   /* the layer's input, (batch, in) */
	float *dst;        /* backward: gradient w.r.t. the input, or NULL */
	bool want_params;
};

/* Images [begin, end) through the convolution and its activation. */
static void conv_forward_part(void *ctx, int tid, int begin, int end)
{
	const struct layer_job *j = ctx;
	const struct nn_layer *l = j->l;
	float *col = j->net->col + (size_t)tid * j->net->col_stride;
	for (int n = begin; n < end; n++) {
		float *a = l->a + (size_t)n * l->out;
		conv_apply(&l->geom, l->w, l->scale, l->b, j->in + (size_t)n * l->in, a, col);
		act_forward(l, a, (size_t)l->out);
	}
}

static void conv_forward(struct nn_net *net, struct nn_layer *l, const float *in, int batch)
{
	l->dft_used = l->dft && dft_pays(&l->geom, batch);
	if (l->dft_used) {
		conv_dft_forward(l->dft, net->team, l->w, l->scale, l->b, in, l->a, batch);
		act_forward(l, l->a, (size_t)batch * l->out);
		return;
	}
	struct layer_job j = {.net = net, .l = l, .in = in};
	parallel_for(net->team, batch, conv_forward_part, &j);
}

/*
 * Max pooling compares integer keys: a float's place in the order pooling
 * uses (-0 and +0 tie, every NaN beats every number), computed once per
 * input value with integer operations the compiler vectorizes.  The window
 * scans are then branch-free integer compares (a data-dependent branch per
 * pixel mispredicts often).
 */
static void order_keys(const float *restrict x, int32_t *restrict key, int n)
{
	int k = 0;
	for (; k + NN_BLOCK <= n; k += NN_BLOCK)
		for (int j = 0; j < NN_BLOCK; j++) {
			uint32_t bits;
			memcpy(&bits, &x[k + j], sizeof bits);
			int32_t mag = (int32_t)(bits & 0x7fffffffu);
			int32_t neg = -(int32_t)(bits >> 31); /* all ones when negative */
			int32_t signed_mag = (mag ^ neg) - neg;
			int32_t nan = -(int32_t)(mag > 0x7f800000);
			key[k + j] = (signed_mag & ~nan) | (INT32_MAX & nan);
		}
	for (; k < n; k++) {
		uint32_t bits;
		memcpy(&bits, &x[k], sizeof bits);
		int32_t mag = (int32_t)(bits & 0x7fffffffu);
		key[k] = mag > 0x7f800000 ? INT32_MAX : bits >> 31 ? -mag : mag;
	}
}

/* The later candidate wins only when strictly greater: the first maximum in
 * scan order, as in PyTorch. */
#define NN_POOL_TAKE(at)                                \
	do {                                            \
		int32_t k_ = key[at];                   \
		int gt_ = k_ > top;                     \
		top = gt_ ? k_ : top;                   \
		best = gt_ ? (at) : best;               \
	} while (0)

/* The winner of three keys in a row starting at index at: (top, best). */
#define NN_POOL_ROW3(at, top_, best_)                                              \
	do {                                                                       \
		int32_t a_ = key[at], b_ = key[(at) + 1], c_ = key[(at) + 2];      \
		int gb_ = b_ > a_;                                                 \
		int32_t m_ = gb_ ? b_ : a_, i_ = gb_ ? (at) + 1 : (at);            \
		int gc_ = c_ > m_;                                                 \
		top_ = gc_ ? c_ : m_;                                              \
		best_ = gc_ ? (at) + 2 : i_;                                       \
	} while (0)

/*
 * The paper's window (3x3, stride 2) for outputs [lo, hi) of a row whose
 * windows lie inside the plane, at starts base + y0 W + 2 ox: each row's
 * winner, then the rows in order, a later row winning only when strictly
 * greater (the winner of a row-major scan).  The outputs do not depend on
 * one another, so the compiler runs several at once.
 */
static void pool_row_3x3s2(const int32_t *restrict key, int32_t *restrict arg, int at_row,
			   int W, int lo, int hi)
{
	for (int ox = lo; ox < hi; ox++) {
		const int32_t at = at_row + 2 * ox;
		int32_t t0, b0, t1, b1, t2, b2;
		NN_POOL_ROW3(at, t0, b0);
		NN_POOL_ROW3(at + W, t1, b1);
		NN_POOL_ROW3(at + 2 * W, t2, b2);
		int32_t top = t0, best = b0;
		best = t1 > top ? b1 : best;
		top = t1 > top ? t1 : top;
		best = t2 > top ? b2 : best;
		arg[ox] = best;
	}
}

/* The winner (index into the keys) of the window of output (oy, ox) in the
 * plane at base, clipped to the plane and scanned in row-major order. */
static int32_t pool_window(const int32_t *key, const struct conv_geom *g, int base, int oy,
			   int ox)
{
	const int H = g->h, W = g->w;
	int y0 = oy * g->stride - g->pad, y1 = y0 + g->k;
	int x0 = ox * g->stride - g->pad, x1 = x0 + g->k;
	y0 = y0 < 0 ? 0 : y0, y1 = y1 > H ? H : y1;
	x0 = x0 < 0 ? 0 : x0, x1 = x1 > W ? W : x1;
	int32_t top = INT32_MIN, best = base + y0 * W + x0;
	for (int iy = y0; iy < y1; iy++)
		for (int ix = x0; ix < x1; ix++)
			NN_POOL_TAKE(base + iy * W + ix);
	return best;
}

/* Max over each window; windows never lie wholly in the padding (pad <= k/2).
 * Ties go to the first in scan order and a NaN wins, as in PyTorch. */
static void pool_forward_part(void *ctx, int tid, int begin, int end)
{
	const struct layer_job *j = ctx;
	const struct nn_layer *l = j->l;
	const struct conv_geom *g = &l->geom;
	const int H = g->h, W = g->w, k = g->k, s = g->stride;
	int32_t *key = j->net->keys + (size_t)tid * j->net->keys_stride; /* (in) */
	/* Outputs whose windows lie inside the plane horizontally: [xlo, xhi). */
	int xlo = (g->pad + s - 1) / s, xhi = W - k + g->pad < 0 ? 0 : (W - k + g->pad) / s + 1;
	xhi = xhi > g->wo ? g->wo : xhi;
	xlo = xlo > xhi ? xhi : xlo;
	const bool paper = k == 3 && s == 2;
	for (int n = begin; n < end; n++) {
		const float *x = j->in + (size_t)n * l->in;
		float *y = l->a + (size_t)n * l->out;
		int32_t *arg = l->arg + (size_t)n * l->out;
		order_keys(x, key, l->in);
		for (int c = 0; c < g->cin; c++) {
			const int base = c * H * W;
			for (int oy = 0; oy < g->ho; oy++, arg += g->wo) {
				int y0 = oy * s - g->pad;
				/* [lo, hi): the outputs the paper's window takes at once */
				int lo = 0, hi = 0;
				if (paper && y0 >= 0 && y0 + k <= H) {
					lo = xlo, hi = xhi;
					pool_row_3x3s2(key, arg, base + y0 * W - g->pad, W, lo, hi);
				}
				for (int ox = 0; ox < lo; ox++)
					arg[ox] = pool_window(key, g, base, oy, ox);
				for (int ox = hi; ox < g->wo; ox++)
					arg[ox] = pool_window(key, g, base, oy, ox);
				for (int ox = 0; ox < g->wo; ox++)
					y[ox] = x[arg[ox]];
				y += g->wo;
			}
		}
	}
}

static void pool_forward(struct nn_net *net, struct nn_layer *l, const float *in, int batch)
{
	struct layer_job j = {.net = net, .l = l, .in = in};
	parallel_for(net->team, batch, pool_forward_part, &j);
}

/*
 * A convolution (direct path) followed by max pooling, image by image: each
 * image's feature maps are pooled (forward) or receive the pooling's
 * gradient (backward) while they are still in cache, instead of the whole
 * batch's maps going out to memory and back between the two layers.
 */
struct conv_pool_job {
	struct layer_job conv, pool;
};

static bool conv_pool_fuses(const struct nn_net *net, int conv)
{
	return conv + 1 < net->nlayers && net->layers[conv].kind == NN_CONV &&
	       !net->layers[conv].dft_used && net->layers[conv + 1].kind == NN_MAXPOOL;
}

static void conv_pool_forward_part(void *ctx, int tid, int begin, int end)
{
	const struct conv_pool_job *f = ctx;
	for (int n = begin; n < end; n++) {
		conv_forward_part((void *)&f->conv, tid, n, n + 1);
		pool_forward_part((void *)&f->pool, tid, n, n + 1);
	}
}

const float *nn_forward(struct nn_net *net, const float *x, int batch)
{
	net->x = x;
	net->batch = batch;
	const float *in = x;
	for (int i = 0; i < net->nlayers; i++) {
		struct nn_layer *l = &net->layers[i];
		net->act_in[i] = in;
		switch (l->kind) {
		case NN_DENSE:
			dense_forward(net, l, in, batch);
			if (l->scale < 1.0f) /* for cap_gradient */
				memcpy(l->z, l->a, sizeof(float) * (size_t)batch * l->out);
			activate(l, batch);
			break;
		case NN_CONV:
			l->dft_used = l->dft && dft_pays(&l->geom, batch);
			if (conv_pool_fuses(net, i)) {
				struct nn_layer *p = &net->layers[i + 1];
				struct conv_pool_job f = {.conv = {.net = net, .l = l, .in = in},
							  .pool = {.net = net, .l = p, .in = l->a}};
				parallel_for(net->team, batch, conv_pool_forward_part, &f);
				net->act_in[++i] = l->a; /* the pooling is done */
				l = p;
				break;
			}
			conv_forward(net, l, in, batch); /* activation included */
			break;
		case NN_MAXPOOL:
			pool_forward(net, l, in, batch);
			break;
		case NN_FLATTEN:
			continue; /* the same values, read as (batch, C*H*W) */
		}
		in = l->a;
	}
	net->act_in[net->nlayers] = in;
	return in;
}

/* ---- Loss ---- */

/* Softmax cross-entropy: probs, each row's loss, and dlogits = (probs -
 * onehot) / batch.  One exponential per logit, in double. */
static double softmax_xent(const float *logits, const int *y, int batch, int classes,
			   float *probs, float *row_loss, float *dlogits)
{
	double total = 0;
	for (int r = 0; r < batch; r++) {
		const float *z = logits + (size_t)r * classes;
		float *p = probs + (size_t)r * classes;
		int top = 0;
		for (int c = 1; c < classes; c++)
			top = z[c] > z[top] ? c : top;
		const float zmax = z[top];
		/* rest: the other classes' share; log1p keeps a confident
		 * example's tiny loss from rounding to 0. */
		double rest = 0;
		for (int c = 0; c < classes; c++) {
			double e = c == top ? 1.0 : exp((double)z[c] - zmax);
			p[c] = (float)e; /* in (0, 1]: exact enough to divide below */
			rest += c == top ? 0.0 : e;
		}
		double sum = 1 + rest, loss = ((double)zmax - z[y[r]]) + log1p(rest);
		total += loss;
		row_loss[r] = (float)loss;
		for (int c = 0; c < classes; c++) {
			p[c] = (float)(p[c] / sum);
			if (dlogits)
				dlogits[(size_t)r * classes + c] =
					(p[c] - (c == y[r] ? 1.0f : 0.0f)) / (float)batch;
		}
	}
	return total / batch;
}

double nn_loss(struct nn_net *net, const int *y)
{
	return softmax_xent(net->act_in[net->nlayers], y, net->batch, net->out_dim, net->probs,
			    net->row_loss, NULL);
}

/* ---- Backward ---- */

/* da <- da * phi'(z). */
static void activate_backward(const struct nn_layer *l, int batch)
{
	act_backward(l, l->da, l->a, (size_t)batch * l->out);
}

/* The sum of x[0 .. n) in NN_BLOCK interleaved partial sums (so it runs as
 * vector code), added up in a fixed order at the end. */
static float sum_floats(const float *x, int n)
{
	float acc[NN_BLOCK] = {0};
	int k = 0;
	for (; k + NN_BLOCK <= n; k += NN_BLOCK)
		for (int j = 0; j < NN_BLOCK; j++)
			acc[j] += x[k + j];
	for (; k < n; k++)
		acc[0] += x[k];
	float s = 0;
	for (int j = 0; j < NN_BLOCK; j++)
		s += acc[j];
	return s;
}

/* gw += coeff d sigma / dW with sigma = u . A(W) v, the vectors fixed. */
static void add_sigma_grad(struct nn_net *net, struct nn_layer *l, float coeff)
{
	struct parallel *team = team_for(net, l);
	if (l->kind == NN_CONV)
		conv_one_weight_grad(net, l, coeff, l->u, l->v);
	else if (!team)
		cblas_sger(CblasRowMajor, l->wrows, l->wcols, coeff, l->u, 1, l->v, 1, l->gw,
			   l->wcols);
	else /* gw (out, in) += coeff u (out, 1) v^T (1, in) */
		parallel_sgemm(team, true, false, false, l->wrows, l->wcols, 1, coeff, l->u, 1,
			       l->v, l->wcols, 1.0f, l->gw, l->wcols);
}

void nn_layer_add_norm_grad(struct nn_net *net, int i, float coeff)
{
	struct nn_layer *l = &net->layers[i];
	/* On its cap the norm in use is rho itself: no gradient. */
	if (nn_layer_weighted(l) && !(l->scale < 1.0f))
		add_sigma_grad(net, l, coeff);
}

/*
 * The cap's share of the weight gradient.  gw holds scale * G, with G the
 * gradient w.r.t. W_eff = rho W / sigma, sigma = u . A(W) v; then
 *     dL/dW = scale (G - (<G, W> / sigma) d sigma / dW)
 *           = gw - (<gw, W> / sigma) d sigma / dW,
 * where d sigma / dW is u v^T (dense) or the kernel gradient of <u, w * v>.
 * For a dense layer gw = scale dz^T x and z = b + scale x W^T, so
 * <gw, W> = <dz, z - b> = <dz, z> - <gb, b>: sums over the batch's outputs
 * instead of every weight (128 x 50 terms against 50 x 784 in the MNIST
 * network's first layer).  The bias gradient gb must be computed first.
 */
static void cap_gradient(struct nn_net *net, struct nn_layer *l, int batch)
{
	if (!(l->scale < 1.0f) || !(l->sigma_hat > 0))
		return;
	/* dsdot: single-precision inputs, double accumulation */
	struct parallel *team = team_for(net, l);
	double dot;
	if (l->kind == NN_DENSE)
		dot = cblas_dsdot(batch * l->out, l->da, 1, l->z, 1) -
		      cblas_dsdot(l->out, l->gb, 1, l->b, 1);
	else
		dot = parallel_dsdot(team, (int)nn_layer_wsize(l), l->gw, l->w);
	add_sigma_grad(net, l, (float)(-dot / l->sigma_hat));
}

/* gb[o] = sum over examples and positions of dz; dz (batch, wrows, per_channel) */
static void bias_gradient(const struct nn_layer *l, int batch, int per_channel)
{
	float *restrict gb = l->gb;
	memset(gb, 0, sizeof(float) * (size_t)l->wrows);
	for (int n = 0; n < batch; n++) {
		const float *restrict d = l->da + (size_t)n * l->out;
		if (per_channel == 1) {
			int o = 0;
			for (; o + NN_BLOCK <= l->wrows; o += NN_BLOCK)
				for (int j = 0; j < NN_BLOCK; j++)
					gb[o + j] += d[o + j];
			for (; o < l->wrows; o++)
				gb[o] += d[o];
		} else {
			for (int o = 0; o < l->wrows; o++)
				gb[o] += sum_floats(d + (size_t)o * per_channel, per_channel);
		}
	}
}

static void dense_backward(struct nn_net *net, struct nn_layer *l, const float *in, int batch,
			   bool want_params, float *dst)
{
	if (want_params) {
		/* gw (out, in) = scale dz^T (out, batch) in (batch, in) */
		cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, l->out, l->in, batch,
			    l->scale, l->da, l->out, in, l->in, 0.0f, l->gw, l->in);
		bias_gradient(l, batch, 1);
		cap_gradient(net, l, batch);
	}
	if (dst)
		/* dst (batch, in) = scale dz (batch, out) W (out, in) */
		cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, batch, l->in, l->out,
			    l->scale, l->da, l->out, l->w, l->in, 0.0f, dst, l->in);
}

/*
 * Convolution backward, image by image: thread 0 accumulates the kernel and
 * bias gradients in place, thread t > 0 into its own partial buffer;
 * conv_backward_finish adds the partials in thread order.
 */

/* Thread tid's kernel and bias gradient accumulators, cleared. */
static void conv_grad_begin(const struct layer_job *j, int tid)
{
	const struct nn_layer *l = j->l;
	size_t wsz = nn_layer_wsize(l);
	float *gw = tid ? j->net->part + (size_t)(tid - 1) * j->net->part_stride : l->gw;
	if (j->want_params) {
		memset(gw, 0, sizeof(float) * wsz);
		memset(gw == l->gw ? l->gb : gw + wsz, 0, sizeof(float) * (size_t)l->wrows);
	}
}

/* Images [begin, end) back through activation and convolution, adding to
 * thread tid's accumulators (conv_grad_begin clears them). */
static void conv_backward_images(const struct layer_job *j, int tid, int begin, int end)
{
	struct nn_layer *l = j->l;
	const struct conv_geom *g = &l->geom;
	const int plane = g->ho * g->wo;
	float *col = j->net->col + (size_t)tid * j->net->col_stride;
	size_t wsz = nn_layer_wsize(l);
	float *gw = tid ? j->net->part + (size_t)(tid - 1) * j->net->part_stride : l->gw;
	float *gb = tid ? gw + wsz : l->gb;
	for (int n = begin; n < end; n++) {
		float *dz = l->da + (size_t)n * l->out;
		act_backward(l, dz, l->a + (size_t)n * l->out, (size_t)l->out);
		if (j->want_params) {
			for (int o = 0; o < l->wrows; o++)
				gb[o] += sum_floats(dz + (size_t)o * plane, plane);
			conv_weight_grad_add(g, l->scale, dz, j->in + (size_t)n * l->in, gw, col);
		}
		if (j->dst)
			conv_apply_transpose(g, l->w, l->scale, dz, j->dst + (size_t)n * l->in, col);
	}
}

static void conv_backward_part(void *ctx, int tid, int begin, int end)
{
	conv_grad_begin(ctx, tid);
	conv_backward_images(ctx, tid, begin, end);
}

/* The DFT path: the activation's derivative and the bias gradient here, the
 * rest in conv_dft_backward. */
static void conv_backward_dft(struct nn_net *net, struct nn_layer *l, int batch,
			      bool want_params, float *dst)
{
	act_backward(l, l->da, l->a, (size_t)batch * l->out);
	if (want_params) {
		const int plane = l->geom.ho * l->geom.wo;
		memset(l->gb, 0, sizeof(float) * (size_t)l->wrows);
		for (int n = 0; n < batch; n++)
			for (int o = 0; o < l->wrows; o++)
				l->gb[o] += sum_floats(l->da + (size_t)n * l->out + (size_t)o * plane,
						       plane);
	}
	conv_dft_backward(l->dft, net->team, l->scale, l->da, want_params ? l->gw : NULL, dst,
			  batch);
}

/* The threads' partial gradients summed in order, then the cap's term. */
static void conv_backward_finish(struct nn_net *net, struct nn_layer *l, int batch,
				 bool want_params)
{
	if (!want_params)
		return;
	size_t wsz = nn_layer_wsize(l);
	for (int t = 0; !l->dft_used && t < parallel_threads(net->team) - 1; t++) {
		const float *pw = net->part + (size_t)t * net->part_stride;
		cblas_saxpy((int)wsz, 1.0f, pw, 1, l->gw, 1);
		cblas_saxpy(l->wrows, 1.0f, pw + wsz, 1, l->gb, 1);
	}
	cap_gradient(net, l, batch);
}

static void conv_backward(struct nn_net *net, struct nn_layer *l, const float *in, int batch,
			  bool want_params, float *dst)
{
	if (l->dft_used) {
		conv_backward_dft(net, l, batch, want_params, dst);
	} else {
		struct layer_job j = {.net = net, .l = l, .in = in, .dst = dst,
				      .want_params = want_params};
		parallel_for(net->team, batch, conv_backward_part, &j);
	}
	conv_backward_finish(net, l, batch, want_params);
}

static void pool_backward_part(void *ctx, int tid, int begin, int end)
{
	(void)tid;
	const struct layer_job *j = ctx;
	const struct nn_layer *l = j->l;
	memset(j->dst + (size_t)begin * l->in, 0, sizeof(float) * (size_t)(end - begin) * l->in);
	for (int n = begin; n < end; n++) {
		float *d = j->dst + (size_t)n * l->in;
		const float *g = l->da + (size_t)n * l->out;
		const int32_t *arg = l->arg + (size_t)n * l->out;
		for (int k = 0; k < l->out; k++)
			d[arg[k]] += g[k];
	}
}

static void pool_backward(struct nn_net *net, struct nn_layer *l, int batch, float *dst)
{
	struct layer_job j = {.net = net, .l = l, .dst = dst};
	parallel_for(net->team, batch, pool_backward_part, &j);
}

static void conv_pool_backward_part(void *ctx, int tid, int begin, int end)
{
	const struct conv_pool_job *f = ctx;
	conv_grad_begin(&f->conv, tid);
	for (int n = begin; n < end; n++) {
		pool_backward_part((void *)&f->pool, tid, n, n + 1);
		conv_backward_images(&f->conv, tid, n, n + 1);
	}
}

float *nn_logits_grad(struct nn_net *net)
{
	/* The last layer's da holds d loss / d logits until its activation is
	 * applied. */
	return net->layers[net->nlayers - 1].da;
}

double nn_backward(struct nn_net *net, const int *y, bool want_params, bool want_input)
{
	double loss = softmax_xent(net->act_in[net->nlayers], y, net->batch, net->out_dim,
				   net->probs, net->row_loss, nn_logits_grad(net));
	nn_backprop(net, want_params, want_input);
	return loss;
}

void nn_backprop(struct nn_net *net, bool want_params, bool want_input)
{
	int batch = net->batch, last = net->nlayers - 1;
	for (int i = last; i >= 0; i--) {
		struct nn_layer *l = &net->layers[i];
		const float *in = net->act_in[i];
		/* Where the gradient w.r.t. this layer's input goes, if anywhere. */
		float *dst = i > 0 ? net->layers[i - 1].da : (want_input ? net->dx : NULL);
		switch (l->kind) {
		case NN_DENSE:
			activate_backward(l, batch);
			dense_backward(net, l, in, batch, want_params, dst);
			break;
		case NN_CONV:
			conv_backward(net, l, in, batch, want_params, dst); /* activation included */
			break;
		case NN_MAXPOOL:
			if (i > 0 && conv_pool_fuses(net, i - 1)) {
				struct nn_layer *c = &net->layers[i - 1];
				float *cdst = i > 1 ? net->layers[i - 2].da
						    : (want_input ? net->dx : NULL);
				struct conv_pool_job f = {
					.conv = {.net = net, .l = c, .in = net->act_in[i - 1],
						 .dst = cdst, .want_params = want_params},
					.pool = {.net = net, .l = l, .dst = dst}};
				parallel_for(net->team, batch, conv_pool_backward_part, &f);
				conv_backward_finish(net, c, batch, want_params);
				i--; /* the convolution is done */
			} else if (dst) {
				pool_backward(net, l, batch, dst);
			}
			break;
		case NN_FLATTEN:
			break; /* its da is its input's da (or dx) */
		}
	}
}

double nn_l2_penalty(struct nn_net *net, double lambda, bool add_grad)
{
	double total = 0;
	for (int i = 0; i < net->nlayers; i++) {
		struct nn_layer *l = &net->layers[i];
		if (!nn_layer_weighted(l))
			continue;
		size_t wsz = nn_layer_wsize(l);
		total += lambda * cblas_dsdot((int)wsz, l->w, 1, l->w, 1);
		if (add_grad)
			cblas_saxpy((int)wsz, (float)(2 * lambda), l->w, 1, l->gw, 1);
	}
	return total;
}

void nn_argmax(const float *logits, int batch, int classes, int *pred)
{
	for (int r = 0; r < batch; r++) {
		const float *z = logits + (size_t)r * classes;
		int best = 0;
		for (int c = 1; c < classes; c++)
			if (z[c] > z[best])
				best = c;
		pred[r] = best;
	}
}

void nn_set_threads(int n)
{
	default_threads = n < 1 ? 1 : n > 64 ? 64 : n;
	/* The team does the parallel work; OpenBLAS threads would only compete
	 * with it for the same cores (and serialize calls from the team). */
	openblas_set_num_threads(1);
}

int nn_threads(void)
{
	return default_threads;
}
