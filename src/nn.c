/* nn: dense networks, forward and backward passes on OpenBLAS (see nn.h). */
#include "sectorlab/nn.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sectorlab/spectral.h"


sl_status nn_new(const struct nn_layer_spec *specs, int nlayers, int max_batch,
		 struct nn_net **out, struct sl_error *err)
{
	*out = NULL;
	if (nlayers < 1 || nlayers > NN_MAX_LAYERS)
		return status_set(err, SL_ERR_ARG, "network: %d layers (1 to %d allowed)",
				  nlayers, NN_MAX_LAYERS);
	if (max_batch < 1)
		return status_set(err, SL_ERR_ARG, "network: batch size %d", max_batch);
	size_t nparams = 0, nbuf = 0;
	for (int i = 0; i < nlayers; i++) {
		const struct nn_layer_spec *s = &specs[i];
		if (s->kind != NN_DENSE)
			return status_set(err, SL_ERR_UNSUPPORTED, "layer %d: unknown kind", i + 1);
		if (s->in < 1 || s->out < 1 || s->in > (1 << 20) || s->out > (1 << 20))
			return status_set(err, SL_ERR_ARG, "layer %d: %d -> %d features", i + 1,
					  s->in, s->out);
		if (i > 0 && specs[i - 1].out != s->in)
			return status_set(err, SL_ERR_ARG,
					  "layer %d takes %d features but layer %d gives %d",
					  i + 1, s->in, i, specs[i - 1].out);
		size_t wsz = (size_t)s->in * (size_t)s->out;
		nparams += wsz + (size_t)s->out;
		/* u, v, w_eff, then z, a, dz for a batch */
		nbuf += (size_t)s->out + (size_t)s->in + wsz + 3 * (size_t)max_batch * s->out;
	}
	int in_dim = specs[0].in, out_dim = specs[nlayers - 1].out;
	nbuf += (size_t)max_batch * in_dim + (size_t)max_batch * out_dim; /* dx, probs */

	struct nn_net *net = calloc(1, sizeof *net);
	float *params = calloc(nparams, sizeof(float));
	float *grads = calloc(nparams, sizeof(float));
	float *buf = calloc(nbuf, sizeof(float));
	if (!net || !params || !grads || !buf) {
		free(net);
		free(params);
		free(grads);
		free(buf);
		return status_set(err, SL_ERR_NOMEM, "network: %zu parameters", nparams);
	}
	net->nlayers = nlayers;
	net->in_dim = in_dim;
	net->out_dim = out_dim;
	net->max_batch = max_batch;
	net->nparams = nparams;
	net->params = params;
	net->grads = grads;
	float *p = params, *g = grads, *q = buf;
	for (int i = 0; i < nlayers; i++) {
		const struct nn_layer_spec *s = &specs[i];
		struct nn_layer *l = &net->layers[i];
		size_t wsz = (size_t)s->in * (size_t)s->out;
		l->kind = s->kind;
		l->act = s->act;
		l->slope = s->slope;
		l->in = s->in;
		l->out = s->out;
		l->w = p, l->gw = g, p += wsz, g += wsz;
		l->b = p, l->gb = g, p += s->out, g += s->out;
		l->rho = 0;
		l->scale = 1;
		l->u = q, q += s->out;
		l->v = q, q += s->in;
		l->w_eff = q, q += wsz;
		l->z = q, q += (size_t)max_batch * s->out;
		l->a = q, q += (size_t)max_batch * s->out;
		l->dz = q, q += (size_t)max_batch * s->out;
	}
	net->dx = q, q += (size_t)max_batch * in_dim;
	net->probs = q;
	*out = net;
	return SL_OK;
}

void nn_free(struct nn_net *net)
{
	if (!net)
		return;
	free(net->params);
	free(net->grads);
	/* The buffer block starts at the first layer's u. */
	free(net->layers[0].u);
	free(net);
}

void nn_init_glorot(struct nn_net *net, struct sl_rng *rng)
{
	for (int i = 0; i < net->nlayers; i++) {
		struct nn_layer *l = &net->layers[i];
		float limit = sqrtf(6.0f / (float)(l->in + l->out));
		size_t wsz = (size_t)l->in * (size_t)l->out;
		for (size_t k = 0; k < wsz; k++)
			l->w[k] = (2.0f * rng_uniform(rng) - 1.0f) * limit;
		memset(l->b, 0, sizeof(float) * (size_t)l->out);
		spectral_random_unit(rng, l->u, l->out);
		spectral_random_unit(rng, l->v, l->in);
	}
	nn_update_caps(net, 0);
}

const float *nn_layer_weight(const struct nn_layer *l)
{
	return l->scale < 1.0f ? l->w_eff : l->w;
}

void nn_set_cap(struct nn_net *net, int i, float rho)
{
	struct nn_layer *l = &net->layers[i];
	l->rho = rho > 0 ? rho : 0;
	if (l->rho == 0)
		l->scale = 1;
}

/* sigma = u . W v for the layer's current vectors. */
static float rayleigh_sigma(const struct nn_layer *l)
{
	float *wv = l->dz; /* borrow: (out) floats of the per-batch buffer */
	cblas_sgemv(CblasRowMajor, CblasNoTrans, l->out, l->in, 1.0f, l->w, l->in, l->v, 1,
		    0.0f, wv, 1);
	return cblas_sdot(l->out, l->u, 1, wv, 1);
}

void nn_update_caps(struct nn_net *net, int iters)
{
	for (int i = 0; i < net->nlayers; i++) {
		struct nn_layer *l = &net->layers[i];
		/* Every layer's estimate is tracked, capped or not, so screens and
		 * logs can show sigma_hat against rho in every mode. */
		float sigma = 0;
		for (int k = 0; k < iters; k++)
			sigma = spectral_power_step(l->w, l->out, l->in, l->u, l->v);
		if (iters == 0)
			sigma = rayleigh_sigma(l);
		l->sigma_hat = sigma;
		/* DESIGN.md §1: W_eff = W / max(sigma_hat / rho, 1). */
		l->scale = l->rho > 0 && sigma > l->rho ? l->rho / sigma : 1.0f;
		if (l->scale < 1.0f) {
			size_t wsz = (size_t)l->in * (size_t)l->out;
			for (size_t k = 0; k < wsz; k++)
				l->w_eff[k] = l->w[k] * l->scale;
		}
	}
}

const float *nn_forward(struct nn_net *net, const float *x, int batch)
{
	net->x = x;
	net->batch = batch;
	const float *in = x;
	for (int i = 0; i < net->nlayers; i++) {
		struct nn_layer *l = &net->layers[i];
		const float *w = nn_layer_weight(l);
		/* z (batch, out) = in (batch, in) w^T + b */
		for (int r = 0; r < batch; r++)
			memcpy(l->z + (size_t)r * l->out, l->b, sizeof(float) * (size_t)l->out);
		cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, batch, l->out, l->in, 1.0f,
			    in, l->in, w, l->in, 1.0f, l->z, l->out);
		size_t n = (size_t)batch * l->out;
		if (l->act == NN_ACT_LEAKY_RELU) {
			for (size_t k = 0; k < n; k++)
				l->a[k] = l->z[k] > 0 ? l->z[k] : l->slope * l->z[k];
		} else {
			memcpy(l->a, l->z, sizeof(float) * n);
		}
		in = l->a;
	}
	return in;
}

/* Softmax cross-entropy: probs and dlogits = (probs - onehot) / batch. */
static double softmax_xent(const float *logits, const int *y, int batch, int classes,
			   float *probs, float *dlogits)
{
	double total = 0;
	for (int r = 0; r < batch; r++) {
		const float *z = logits + (size_t)r * classes;
		float *p = probs + (size_t)r * classes;
		float zmax = z[0];
		for (int c = 1; c < classes; c++)
			zmax = z[c] > zmax ? z[c] : zmax;
		double sum = 0;
		for (int c = 0; c < classes; c++)
			sum += exp((double)z[c] - zmax);
		double lse = zmax + log(sum);
		total += lse - z[y[r]];
		for (int c = 0; c < classes; c++) {
			p[c] = (float)exp((double)z[c] - lse);
			if (dlogits)
				dlogits[(size_t)r * classes + c] =
					(p[c] - (c == y[r] ? 1.0f : 0.0f)) / (float)batch;
		}
	}
	return total / batch;
}

double nn_backward(struct nn_net *net, const int *y, bool want_params, bool want_input)
{
	int batch = net->batch, last = net->nlayers - 1;
	struct nn_layer *top = &net->layers[last];
	/* top->dz holds d loss / d a of the last layer until the activation is applied */
	double loss = softmax_xent(top->a, y, batch, net->out_dim, net->probs, top->dz);
	for (int i = last; i >= 0; i--) {
		struct nn_layer *l = &net->layers[i];
		size_t n = (size_t)batch * l->out;
		if (l->act == NN_ACT_LEAKY_RELU)
			for (size_t k = 0; k < n; k++)
				l->dz[k] *= l->z[k] > 0 ? 1.0f : l->slope;
		const float *in = i == 0 ? net->x : net->layers[i - 1].a;
		if (want_params) {
			/* gw (out, in) = dz^T (out, batch) in (batch, in) */
			cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, l->out, l->in, batch,
				    1.0f, l->dz, l->out, in, l->in, 0.0f, l->gw, l->in);
			for (int o = 0; o < l->out; o++) {
				double s = 0;
				for (int r = 0; r < batch; r++)
					s += l->dz[(size_t)r * l->out + o];
				l->gb[o] = (float)s;
			}
			if (l->scale < 1.0f) {
				/* W_eff = rho W / sigma, sigma = u^T W v:
				 * dL/dW = scale (G - (<G, W> / sigma) u v^T). */
				size_t wsz = (size_t)l->in * (size_t)l->out;
				double gw_dot = 0;
				for (size_t k = 0; k < wsz; k++)
					gw_dot += (double)l->gw[k] * l->w[k];
				cblas_sscal((int)wsz, l->scale, l->gw, 1);
				cblas_sger(CblasRowMajor, l->out, l->in,
					   (float)(-l->scale * gw_dot / l->sigma_hat), l->u, 1,
					   l->v, 1, l->gw, l->in);
			}
		}
		if (i > 0 || want_input) {
			float *dst = i > 0 ? net->layers[i - 1].dz : net->dx;
			/* dst (batch, in) = dz (batch, out) W (out, in) */
			cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, batch, l->in, l->out,
				    1.0f, l->dz, l->out, nn_layer_weight(l), l->in, 0.0f, dst, l->in);
		}
	}
	return loss;
}

double nn_loss(struct nn_net *net, const int *y)
{
	const struct nn_layer *top = &net->layers[net->nlayers - 1];
	return softmax_xent(top->a, y, net->batch, net->out_dim, net->probs, NULL);
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
