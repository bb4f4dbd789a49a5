/*
 * nn: feed-forward networks as a table of layers, trained on the CPU.
 *
 * A network is built from a list of layer specs (models are data): dense
 * layers, 2-D convolutions (im2col + sgemm, stride, zero padding), max
 * pooling (any window and stride) and flatten.  Dense and convolution layers
 * apply an activation to their output: leaky ReLU (ReLU at slope 0), tanh
 * or the identity.
 * Activations are NCHW, one example after the other, so flatten is free and
 * orders features C, H, W as PyTorch's nn.Flatten does.
 *
 * All trainable parameters live in one float arena and all their gradients
 * in a second arena of the same layout (layer by layer, weight then bias),
 * so an optimizer is one loop over nn_net.params and a checkpoint one walk
 * over the layers.  Weights use PyTorch's layouts: dense (out, in), conv
 * (Cout, Cin, k, k).
 *
 * A dense or conv layer may carry a spectral cap rho (DESIGN.md §1): the
 * passes then use W_eff = scale W with scale = 1 / max(sigma_hat / rho, 1),
 * where sigma_hat is a power-iteration estimate of the operator norm kept
 * with persistent vectors u, v.  For a convolution the operator is the
 * convolution itself at the layer's input size, stride and padding, not the
 * reshaped kernel.  The gradient flows through sigma_hat as in PyTorch's
 * spectral_norm (d sigma / d W = the gradient of u . (W v) with u, v fixed).
 * The scale is folded into the matrix products; no scaled copy of W exists.
 *
 * A stride-1 convolution whose batch costs fewer multiply-adds through the
 * discrete Fourier transform (conv_dft.h; AlexNet's second layer) runs that
 * way; the others, and small batches, use im2col + sgemm.
 *
 * Activations are buffered for one batch of at most max_batch examples; the
 * network owns them.  Not thread-safe: one thread uses a network at a time.
 */
#ifndef SECTORLAB_NN_H
#define SECTORLAB_NN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sectorlab/conv.h"
#include "sectorlab/conv_dft.h"
#include "sectorlab/parallel.h"
#include "sectorlab/rng.h"
#include "sectorlab/status.h"

#define NN_MAX_LAYERS 16

/* Dense layers run their forward pass in groups of exactly this many
 * examples (padded), so an example's outputs do not depend on the batch it
 * comes in (see nn.c). */
#define NN_ROWS 16

enum nn_kind { NN_DENSE, NN_CONV, NN_MAXPOOL, NN_FLATTEN };
enum nn_act { NN_ACT_IDENTITY, NN_ACT_LEAKY_RELU, NN_ACT_TANH };

/*
 * One row of a layer table, best written with designated initializers:
 * {.kind = NN_DENSE, .in = 784, .out = 50, .act = NN_ACT_LEAKY_RELU,
 *  .slope = 0.1f}; fields a kind does not use stay 0.
 */
struct nn_layer_spec {
	enum nn_kind kind;
	int in, out;       /* dense: features; conv: channels; pool, flatten: 0 */
	enum nn_act act;   /* dense, conv */
	float slope;       /* leaky ReLU negative slope, in [0, 1] (0.1 in the paper) */
	int k;             /* conv: k x k kernel; pool: k x k window */
	int stride;        /* conv: default (0) 1; pool: default (0) k */
	int pad;           /* conv: zero padding; pool: padding that never wins the max */
};

/* The shape of one example: channels, height, width (a vector is (n, 1, 1)). */
struct nn_shape {
	int c, h, w;
};

struct nn_layer {
	enum nn_kind kind;
	char name[16];         /* "conv1", "pool1", "flatten1", "fc1": PyTorch-style
				  prefix in checkpoints, and the label on screens */
	enum nn_act act;
	float slope;
	struct nn_shape in_shape, out_shape;
	int in, out;           /* values per example: in_shape and out_shape counted */
	struct conv_geom geom; /* conv; pool: cin == cout == channels */
	struct conv_dft *dft;  /* conv: the DFT plan when it beats im2col (conv_dft.h) */
	bool dft_used;         /* the last forward pass went through dft */
	/* Parameters (dense and conv only; NULL otherwise). */
	int wrows, wcols;      /* W as a matrix: dense (out, in), conv (Cout, Cin*k*k) */
	float *w, *b;          /* params arena: (wrows, wcols), (wrows) */
	float *gw, *gb;        /* grads arena, same shapes */
	/* Spectral cap (rho <= 0: none). */
	float rho;
	float sigma_hat;       /* latest power-iteration estimate of the raw ||W||_2 */
	float scale;           /* 1 / max(sigma_hat / rho, 1); 1 when uncapped */
	int usize, vsize;      /* dense: out, in; conv: Cout*Ho*Wo, Cin*H*W */
	float *u, *v;          /* persistent power-iteration vectors: (usize), (vsize) */
	/* Per-batch buffers, (max_batch, out); a flatten layer shares its
	 * input's (and owns nothing unless it is the first layer). */
	float *a;              /* output (after the activation) */
	float *da;             /* gradient w.r.t. the output, then the pre-activation */
	float *z;              /* dense: the pre-activation, kept when capped (for the
				  gradient through sigma) */
	int32_t *arg;          /* max pooling: (max_batch, out) where each max came from,
				  as an index into the example's input */
};

struct nn_net {
	int nlayers;
	struct nn_layer layers[NN_MAX_LAYERS];
	struct nn_shape in_shape;
	int in_dim, out_dim;   /* values per example in and out */
	int max_batch;
	size_t nparams;
	float *params;         /* every W and b, layer by layer */
	float *grads;          /* same layout as params */
	const float *x;        /* input of the last forward pass, (batch, in_dim); not owned */
	int batch;             /* batch size of the last forward pass */
	/* Each layer's input in the last forward pass; [nlayers] is the logits. */
	const float *act_in[NN_MAX_LAYERS + 1];
	float *dx;             /* (max_batch, in_dim) gradient w.r.t. the input */
	float *probs;          /* (max_batch, out_dim) softmax of the last loss call */
	float *row_loss;       /* (max_batch) each example's cross-entropy, same call */
	int threads;           /* team size for convolution and pooling work */
	struct parallel *team; /* NULL when threads == 1 */
	size_t col_stride;     /* floats per thread in col */
	size_t part_stride;    /* floats per thread in part */
	float *col;            /* (threads, col_stride) im2col workspaces: the largest
				  conv_col_size each */
	float *part;           /* (threads - 1, part_stride) partial kernel and bias
				  gradients of the extra threads */
	size_t keys_stride;    /* int32s per thread in keys */
	int32_t *keys;         /* (threads, keys_stride) max pooling's order keys of
				  one example's input */
	float *work;           /* power-iteration scratch: the largest usize + vsize */
	float *rows;           /* (NN_ROWS, in + out) of the widest dense layer: the
				  padded last group of a dense forward pass */
	float *block;          /* the one allocation every buffer above lives in */
};

/*
 * Build a network taking examples of shape input.  Layers must chain: a
 * dense layer takes in == the previous output's C*H*W values (flattened
 * implicitly or by a flatten layer), a conv layer in == its channels.
 * Layers are named conv1, conv2, ..., fc1, ..., pool1, ..., flatten1 in order.
 */
sl_status nn_build(struct nn_shape input, const struct nn_layer_spec *specs, int nlayers,
		   int max_batch, struct nn_net **out, struct sl_error *err);

/* nn_build with its own number of threads (1 to 64; 0: nn_threads()), so
 * that each run sets its own. */
sl_status nn_build_threads(struct nn_shape input, const struct nn_layer_spec *specs, int nlayers,
			   int max_batch, int threads, struct nn_net **out, struct sl_error *err);

/* The same for a chain that starts with a dense layer: input (specs[0].in, 1, 1). */
sl_status nn_new(const struct nn_layer_spec *specs, int nlayers, int max_batch,
		 struct nn_net **out, struct sl_error *err);
void nn_free(struct nn_net *net);

/* Does the layer have a weight (dense or conv)? */
bool nn_layer_weighted(const struct nn_layer *l);

/* The weighted layers' indices in order, into idx (NN_MAX_LAYERS entries);
 * returns how many. */
int nn_weighted_layers(const struct nn_net *net, int *idx);

/* The layer called name, or -1. */
int nn_find_layer(const struct nn_net *net, const char *name);

/* Floats in the layer's weight (wrows * wcols; 0 for pool and flatten). */
size_t nn_layer_wsize(const struct nn_layer *l);

/* Glorot-uniform weights (limit sqrt(6 / (fan_in + fan_out)), with a conv's
 * fans counting its kernel: Cin*k*k, Cout*k*k), zero biases, and new random
 * power-iteration vectors. */
void nn_init_glorot(struct nn_net *net, struct sl_rng *rng);

/*
 * Copy src's weights into dst, a network of the same layers and shapes (its
 * batch size and threads may differ): the parameter arena and each weighted
 * layer's cap, power-iteration vectors, estimate and scale, so dst computes
 * what src computes and carries on src's power iteration.  Gradients and
 * activations are not copied.  SL_ERR_ARG when the shapes differ.  A worker
 * calls this to take its own copy of a network.
 */
sl_status nn_copy_weights(struct nn_net *dst, const struct nn_net *src, struct sl_error *err);

/* Write the weight the network uses, scale * W, into dst (nn_layer_wsize). */
void nn_layer_weight_in_use(const struct nn_layer *l, float *dst);

/* Set (rho > 0) or remove (rho <= 0) the spectral cap of weighted layer i. */
void nn_set_cap(struct nn_net *net, int i, float rho);

/*
 * Advance weighted layer i's power iteration by iters steps (0: none;
 * sigma_hat is then recomputed as u . W v) and recompute its scale from the
 * estimate.  Returns the new sigma_hat.
 */
float nn_update_layer_cap(struct nn_net *net, int i, int iters);

/* nn_update_layer_cap for every weighted layer. */
void nn_update_caps(struct nn_net *net, int iters);

/*
 * Run layer i's power iteration to convergence (relative change below
 * rel_tol, at most max_iters steps) on copies of its vectors, leaving the
 * layer untouched: a verification of sigma_hat.  Returns the estimate of the
 * raw ||W||_2 (multiply by scale for the weight in use); the steps taken go
 * to *iters when iters is not NULL.
 */
float nn_layer_norm_converged(struct nn_net *net, int i, double rel_tol, int max_iters,
			      int *iters);

/*
 * For a layer nn_layer_norm computes exactly: put its power-iteration
 * vectors on W's top singular pair (LAPACK) and recompute sigma_hat and the
 * scale from them as everywhere else (u . W v, nn_update_layer_cap with 0
 * steps), so the scale is exact and what a checkpoint saves (W, u, v) gives
 * the same scale when loaded.  *raw gets the exact raw ||W||_2.
 */
sl_status nn_layer_exact_vectors(struct nn_net *net, int i, double *raw, struct sl_error *err);

/* Does nn_layer_norm compute this layer's norm exactly (LAPACK's SVD)? */
bool nn_layer_norm_is_exact(const struct nn_layer *l);

/*
 * A verified ||W_eff||_2 of weighted layer i (the weight in use): exact, by
 * LAPACK's SVD, for dense weights of up to 2^20 entries (*exact = true);
 * otherwise power iteration run to convergence (relative change below 2e-7,
 * at most 3000 steps) from the layer's vectors: on copies for a capped
 * layer, on the vectors themselves (and sigma_hat) for an uncapped one,
 * which training leaves alone, so the next call starts warm.  exact may be
 * NULL.
 */
sl_status nn_layer_norm(struct nn_net *net, int i, double *out, bool *exact,
			struct sl_error *err);

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

/*
 * The same in two parts, for other losses (loss.h): nn_logits_grad is where
 * d loss / d logits (batch, out_dim) of the last forward pass goes (the
 * network's buffer, overwritten by the next backward pass), and nn_backprop
 * takes it from there back through the network, as nn_backward does after
 * its cross-entropy.
 */
float *nn_logits_grad(struct nn_net *net);
void nn_backprop(struct nn_net *net, bool want_params, bool want_input);

/*
 * Add coeff * d ||W_eff||_2 / dW to weighted layer i's weight gradient, the
 * norm in use being the running estimate sigma_hat * scale with the
 * power-iteration vectors held fixed (d sigma_hat / dW = u v^T for a dense
 * layer, the kernel gradient of <u, w * v> for a convolution): nothing for a
 * layer on its cap, whose norm in use is rho whatever W is.  For losses that
 * depend on the network's Lipschitz bound.
 */
void nn_layer_add_norm_grad(struct nn_net *net, int i, float coeff);

/* Mean softmax cross-entropy of the last forward pass, without gradients
 * (each example's in net->row_loss, as nn_backward also leaves it). */
double nn_loss(struct nn_net *net, const int *y);

/*
 * The L2 penalty lambda * sum ||W||_F^2 over the weights (not the biases) of
 * every weighted layer, as the authors' baseline; when add_grad is true its
 * gradient 2 lambda W is added to net->grads.  Returns the penalty.
 */
double nn_l2_penalty(struct nn_net *net, double lambda, bool add_grad);

/*
 * The default threads (1 to 64) of networks built from now on without their
 * own count (nn_build; nn_build_threads with 0), and the current setting
 * (default 1).  A network splits each batch of images among its
 * threads for convolutions and pooling; OpenBLAS itself is set to run
 * single-threaded.  Results are deterministic for a given count (they may
 * differ in the last bits between counts: partial gradients are summed in
 * a different grouping).
 */
void nn_set_threads(int n);
int nn_threads(void);

/* Arg-max of each row of logits (batch, classes) into pred. */
void nn_argmax(const float *logits, int batch, int classes, int *pred);

#endif
