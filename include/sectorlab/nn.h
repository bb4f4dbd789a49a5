/*
 * nn: feed-forward networks as a table of layers, trained on the CPU.
 *
 * A network is built from a list of layer specs (models are data).  All
 * trainable parameters live in one float arena and all their gradients in a
 * second arena of the same layout, so an optimizer is one loop over
 * nn_net.params and a checkpoint is one walk over the layers.
 *
 * Dense layers store W as (out, in) row-major and b as (out), PyTorch's
 * layout.  A dense layer may carry a spectral cap rho (DESIGN.md §1):
 * forward passes then use W_eff = W / max(sigma_hat / rho, 1), where sigma_hat
 * is a power-iteration estimate kept with persistent vectors u, v, and the
 * gradient flows through sigma_hat as in PyTorch's spectral_norm
 * (d sigma / d W = u v^T with u, v held fixed).
 *
 * Activations are buffered for one batch of at most max_batch examples; the
 * network owns them.  Not thread-safe: one thread uses a network at a time.
 */
#ifndef SECTORLAB_NN_H
#define SECTORLAB_NN_H

#include <stdbool.h>
#include <stddef.h>

#include "sectorlab/rng.h"
#include "sectorlab/status.h"

#define NN_MAX_LAYERS 16

enum nn_kind { NN_DENSE };
enum nn_act { NN_ACT_IDENTITY, NN_ACT_LEAKY_RELU };

struct nn_layer_spec {
	enum nn_kind kind;
	int in, out;       /* dense: input and output features */
	enum nn_act act;
	float slope;       /* leaky ReLU negative slope (0.1 in the paper) */
};

struct nn_layer {
	enum nn_kind kind;
	enum nn_act act;
	float slope;
	int in, out;
	float *w, *b;      /* params arena: (out, in), (out) */
	float *gw, *gb;    /* grads arena, same shapes */
	/* Spectral cap (rho <= 0: none). */
	float rho;
	float sigma_hat;   /* latest power-iteration estimate of ||W||_2 */
	float scale;       /* 1 / max(sigma_hat / rho, 1); 1 when uncapped */
	float *u, *v;      /* persistent power-iteration vectors: (out), (in) */
	float *w_eff;      /* (out, in) weight used by the forward pass when scale < 1 */
	/* Per-batch buffers, (max_batch, out). */
	float *z;          /* pre-activation */
	float *a;          /* activation (the layer's output) */
	float *dz;         /* gradient w.r.t. z */
};

struct nn_net {
	int nlayers;
	struct nn_layer layers[NN_MAX_LAYERS];
	int in_dim, out_dim;
	int max_batch;
	size_t nparams;
	float *params;     /* every W and b, layer by layer */
	float *grads;      /* same layout as params */
	const float *x;    /* input of the last forward pass, (batch, in_dim); not owned */
	int batch;         /* batch size of the last forward pass */
	float *dx;         /* (max_batch, in_dim) gradient w.r.t. the input */
	float *probs;      /* (max_batch, out_dim) softmax of the last loss call */
};

/* Build a network.  Layers must chain (out of i == in of i+1). */
sl_status nn_new(const struct nn_layer_spec *specs, int nlayers, int max_batch,
		 struct nn_net **out, struct sl_error *err);
void nn_free(struct nn_net *net);

/* Glorot-uniform weights (limit sqrt(6 / (in + out))), zero biases, and new
 * random power-iteration vectors. */
void nn_init_glorot(struct nn_net *net, struct sl_rng *rng);

/* The weight the forward pass uses: w_eff when the layer is capped below its
 * raw norm, else w.  (out, in). */
const float *nn_layer_weight(const struct nn_layer *l);

/* Set (rho > 0) or remove (rho <= 0) the spectral cap of layer i. */
void nn_set_cap(struct nn_net *net, int i, float rho);

/*
 * Advance every layer's power iteration by iters steps (0: none, sigma_hat is
 * then recomputed as u . W v) and, for capped layers, recompute scale and
 * w_eff from the estimate.  Training calls this once per
 * step with iters = 1; evaluation and export may ask for more.
 */
void nn_update_caps(struct nn_net *net, int iters);

/* Forward pass on x (batch, in_dim), batch <= max_batch.  Returns the logits
 * (batch, out_dim), valid until the next forward pass. */
const float *nn_forward(struct nn_net *net, const float *x, int batch);

/*
 * Mean softmax cross-entropy of the last forward pass against labels y, and
 * its gradient.  When want_params is true, net->grads is overwritten with the
 * parameter gradient; when want_input is true, net->dx receives the gradient
 * with respect to the input.  Returns the mean loss.
 */
double nn_backward(struct nn_net *net, const int *y, bool want_params, bool want_input);

/* Mean softmax cross-entropy of the last forward pass, without gradients. */
double nn_loss(struct nn_net *net, const int *y);

/* Arg-max of each row of logits (batch, classes) into pred. */
void nn_argmax(const float *logits, int batch, int classes, int *pred);

#endif
