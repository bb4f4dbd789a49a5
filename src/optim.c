/* optim: Adam and SGD with momentum over a flat arena (see optim.h). */
#include "sectorlab/optim.h"

#include <math.h>
#include <stdlib.h>

struct optim_config optim_adam_defaults(double lr)
{
	struct optim_config c = {
		.kind = OPTIM_ADAM, .lr = lr, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8,
	};
	return c;
}

sl_status optim_new(const struct optim_config *cfg, size_t n, struct optim **out,
		    struct sl_error *err)
{
	*out = NULL;
	if (!(cfg->lr > 0) || !isfinite(cfg->lr))
		return status_set(err, SL_ERR_ARG, "learning rate %g: must be positive", cfg->lr);
	struct optim *o = calloc(1, sizeof *o);
	if (!o)
		return status_set(err, SL_ERR_NOMEM, "optimizer");
	o->cfg = *cfg;
	o->n = n;
	o->m = calloc(n ? n : 1, sizeof(float));
	o->v = calloc(n ? n : 1, sizeof(float));
	if (!o->m || !o->v) {
		optim_free(o);
		return status_set(err, SL_ERR_NOMEM, "optimizer state for %zu parameters", n);
	}
	*out = o;
	return SL_OK;
}

void optim_free(struct optim *opt)
{
	if (!opt)
		return;
	free(opt->m);
	free(opt->v);
	free(opt);
}

void optim_step(struct optim *opt, float *params, const float *grads)
{
	const struct optim_config *c = &opt->cfg;
	opt->t++;
	if (c->kind == OPTIM_SGD) {
		float mu = (float)c->momentum, lr = (float)c->lr;
		for (size_t i = 0; i < opt->n; i++) {
			opt->m[i] = mu * opt->m[i] + grads[i];
			params[i] -= lr * opt->m[i];
		}
		return;
	}
	/* Adam (Kingma and Ba), bias-corrected, as torch.optim.Adam. */
	float b1 = (float)c->beta1, b2 = (float)c->beta2;
	double bc1 = 1.0 - pow(c->beta1, (double)opt->t);
	double bc2 = 1.0 - pow(c->beta2, (double)opt->t);
	float step = (float)(c->lr / bc1);
	float inv_sqrt_bc2 = (float)(1.0 / sqrt(bc2));
	float eps = (float)c->eps;
	for (size_t i = 0; i < opt->n; i++) {
		float g = grads[i];
		opt->m[i] = b1 * opt->m[i] + (1 - b1) * g;
		opt->v[i] = b2 * opt->v[i] + (1 - b2) * g * g;
		params[i] -= step * opt->m[i] / (sqrtf(opt->v[i]) * inv_sqrt_bc2 + eps);
	}
}
