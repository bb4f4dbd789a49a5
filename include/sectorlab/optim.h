/*
 * optim: first-order optimizers over one flat parameter arena.
 *
 * The optimizer keeps its state (Adam's moments) in arenas with the same
 * layout as the parameters, so a step is one loop and knows nothing about
 * layers.  Gradients must already be averaged over the batch.
 */
#ifndef SECTORLAB_OPTIM_H
#define SECTORLAB_OPTIM_H

#include <stddef.h>

#include "sectorlab/status.h"

enum optim_kind { OPTIM_ADAM, OPTIM_SGD };

struct optim_config {
	enum optim_kind kind;
	double lr;           /* learning rate (Adam 1e-3 in the paper) */
	double beta1, beta2; /* Adam: 0.9, 0.999 */
	double eps;          /* Adam: 1e-8, added to sqrt(v_hat) as in PyTorch */
	double momentum;     /* SGD */
};

struct optim {
	struct optim_config cfg;
	size_t n;
	long t;     /* steps taken */
	float *m;   /* (n) first moment / SGD velocity */
	float *v;   /* (n) second moment (Adam) */
};

/* Adam with PyTorch's defaults and the given learning rate. */
struct optim_config optim_adam_defaults(double lr);

sl_status optim_new(const struct optim_config *cfg, size_t n, struct optim **out,
		    struct sl_error *err);
void optim_free(struct optim *opt);

/* One update of params[0 .. n) from grads[0 .. n). */
void optim_step(struct optim *opt, float *params, const float *grads);

#endif
