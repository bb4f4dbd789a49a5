/*
 * optim: first-order optimizers over one flat parameter arena, and their
 * learning-rate schedules.
 *
 * The optimizer keeps its state (Adam's moments, SGD's velocity) in arenas
 * with the same layout as the parameters, so a step is one loop and knows
 * nothing about layers.  Gradients must already be averaged over the batch.
 * Updates follow torch.optim.Adam and torch.optim.SGD (no dampening, no
 * Nesterov); schedules follow StepLR and ExponentialLR, stepped per epoch.
 */
#ifndef SECTORLAB_OPTIM_H
#define SECTORLAB_OPTIM_H

#include <stddef.h>

#include "sectorlab/status.h"

enum optim_kind { OPTIM_ADAM, OPTIM_SGD };

/* Learning rate in epoch e (0-based): constant lr; step lr * gamma^floor(e /
 * step_epochs); exponential lr * gamma^e. */
enum optim_schedule { OPTIM_CONSTANT, OPTIM_STEP, OPTIM_EXP };

struct optim_config {
	enum optim_kind kind;
	double lr;           /* base learning rate (Adam 1e-3, SGD 0.01 in the paper) */
	double beta1, beta2; /* Adam: 0.9, 0.999 */
	double eps;          /* Adam: 1e-8, added to sqrt(v_hat) as in PyTorch */
	double momentum;     /* SGD: 0.9 */
	enum optim_schedule schedule;
	int step_epochs;     /* step schedule: epochs between decays (>= 1) */
	double gamma;        /* step and exponential schedules: decay factor in (0, 1] */
};

struct optim {
	struct optim_config cfg;
	double lr;  /* the learning rate in use (see optim_set_epoch) */
	size_t n;
	long t;     /* steps taken */
	float *m;   /* (n) first moment / SGD velocity */
	float *v;   /* (n) second moment (Adam) */
};

/* Adam with PyTorch's defaults and the given learning rate. */
struct optim_config optim_adam_defaults(double lr);
/* SGD with momentum. */
struct optim_config optim_sgd_defaults(double lr, double momentum);

sl_status optim_kind_parse(const char *name, enum optim_kind *out, struct sl_error *err);
const char *optim_kind_name(enum optim_kind kind);
/* "constant", "step", "exp". */
sl_status optim_schedule_parse(const char *name, enum optim_schedule *out,
			       struct sl_error *err);
const char *optim_schedule_name(enum optim_schedule s);

/* Checks the configuration (positive finite lr, momentum in [0, 1),
 * schedule parameters) and allocates the state. */
sl_status optim_new(const struct optim_config *cfg, size_t n, struct optim **out,
		    struct sl_error *err);
void optim_free(struct optim *opt);

/* The scheduled learning rate for epoch (0-based). */
double optim_lr_at(const struct optim_config *cfg, int epoch);
/* Use the learning rate of that epoch from now on. */
void optim_set_epoch(struct optim *opt, int epoch);

/* One update of params[0 .. n) from grads[0 .. n). */
void optim_step(struct optim *opt, float *params, const float *grads);

#endif
