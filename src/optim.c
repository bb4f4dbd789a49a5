/* optim: Adam and SGD with momentum over a flat arena (see optim.h). */
#include "sectorlab/optim.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

struct optim_config optim_adam_defaults(double lr)
{
	struct optim_config c = {
		.kind = OPTIM_ADAM, .lr = lr, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8,
		.schedule = OPTIM_CONSTANT, .step_epochs = 1, .gamma = 1,
	};
	return c;
}

struct optim_config optim_sgd_defaults(double lr, double momentum)
{
	struct optim_config c = {
		.kind = OPTIM_SGD, .lr = lr, .momentum = momentum,
		.schedule = OPTIM_CONSTANT, .step_epochs = 1, .gamma = 1,
	};
	return c;
}

sl_status optim_kind_parse(const char *name, enum optim_kind *out, struct sl_error *err)
{
	if (name && strcmp(name, "adam") == 0)
		*out = OPTIM_ADAM;
	else if (name && strcmp(name, "sgd") == 0)
		*out = OPTIM_SGD;
	else
		return status_set(err, SL_ERR_ARG, "unknown optimizer '%s' (known: adam, sgd)",
				  name ? name : "(null)");
	return SL_OK;
}

const char *optim_kind_name(enum optim_kind kind)
{
	return kind == OPTIM_SGD ? "sgd" : "adam";
}

sl_status optim_schedule_parse(const char *name, enum optim_schedule *out,
			       struct sl_error *err)
{
	if (name && strcmp(name, "constant") == 0)
		*out = OPTIM_CONSTANT;
	else if (name && strcmp(name, "step") == 0)
		*out = OPTIM_STEP;
	else if (name && (strcmp(name, "exp") == 0 || strcmp(name, "exponential") == 0))
		*out = OPTIM_EXP;
	else
		return status_set(err, SL_ERR_ARG,
				  "unknown schedule '%s' (known: constant, step, exp)",
				  name ? name : "(null)");
	return SL_OK;
}

const char *optim_schedule_name(enum optim_schedule s)
{
	switch (s) {
	case OPTIM_STEP:
		return "step";
	case OPTIM_EXP:
		return "exp";
	case OPTIM_CONSTANT:
		break;
	}
	return "constant";
}

sl_status optim_new(const struct optim_config *cfg, size_t n, struct optim **out,
		    struct sl_error *err)
{
	*out = NULL;
	if (!(cfg->lr > 0) || !isfinite(cfg->lr))
		return status_set(err, SL_ERR_ARG, "learning rate %g: must be positive", cfg->lr);
	if (cfg->kind == OPTIM_SGD && !(cfg->momentum >= 0 && cfg->momentum < 1))
		return status_set(err, SL_ERR_ARG, "momentum %g: must be in [0, 1)", cfg->momentum);
	if (cfg->schedule == OPTIM_STEP && cfg->step_epochs < 1)
		return status_set(err, SL_ERR_ARG, "step schedule: every %d epochs (>= 1)",
				  cfg->step_epochs);
	if (cfg->schedule != OPTIM_CONSTANT && !(cfg->gamma > 0 && cfg->gamma <= 1))
		return status_set(err, SL_ERR_ARG, "schedule gamma %g: must be in (0, 1]",
				  cfg->gamma);
	struct optim *o = calloc(1, sizeof *o);
	if (!o)
		return status_set(err, SL_ERR_NOMEM, "optimizer");
	o->cfg = *cfg;
	o->lr = cfg->lr;
	o->n = n;
	o->m = calloc(n ? n : 1, sizeof(float));
	o->v = cfg->kind == OPTIM_ADAM ? calloc(n ? n : 1, sizeof(float)) : NULL;
	if (!o->m || (cfg->kind == OPTIM_ADAM && !o->v)) {
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

double optim_lr_at(const struct optim_config *cfg, int epoch)
{
	switch (cfg->schedule) {
	case OPTIM_STEP:
		return cfg->lr * pow(cfg->gamma, (double)(epoch / (cfg->step_epochs > 0 ? cfg->step_epochs : 1)));
	case OPTIM_EXP:
		return cfg->lr * pow(cfg->gamma, (double)epoch);
	case OPTIM_CONSTANT:
		break;
	}
	return cfg->lr;
}

void optim_set_epoch(struct optim *opt, int epoch)
{
	opt->lr = optim_lr_at(&opt->cfg, epoch);
}

/*
 * The update loops are written so that the compiler's -O2 vectorizer (which
 * only takes loops of fixed length) and, for Adam, SSE2 (sqrtf stays scalar
 * at -O2 because it may set errno) run them four or more values at a time,
 * in exactly the scalar operation order: results are the same bits.
 */
void optim_step(struct optim *opt, float *params, const float *grads)
{
	const struct optim_config *c = &opt->cfg;
	const size_t n = opt->n;
	float *restrict p = params, *restrict m = opt->m;
	const float *restrict g = grads;
	opt->t++;
	if (c->kind == OPTIM_SGD) {
		float mu = (float)c->momentum, lr = (float)opt->lr;
		size_t i = 0;
		for (; i + 16 <= n; i += 16)
			for (int j = 0; j < 16; j++) {
				m[i + j] = mu * m[i + j] + g[i + j];
				p[i + j] -= lr * m[i + j];
			}
		for (; i < n; i++) {
			m[i] = mu * m[i] + g[i];
			p[i] -= lr * m[i];
		}
		return;
	}
	/* Adam (Kingma and Ba), bias-corrected, as torch.optim.Adam. */
	float *restrict v = opt->v;
	float b1 = (float)c->beta1, b2 = (float)c->beta2;
	double bc1 = 1.0 - pow(c->beta1, (double)opt->t);
	double bc2 = 1.0 - pow(c->beta2, (double)opt->t);
	float step = (float)(opt->lr / bc1);
	float inv_sqrt_bc2 = (float)(1.0 / sqrt(bc2));
	float eps = (float)c->eps;
	size_t i = 0;
#if defined(__SSE2__)
	const __m128 vb1 = _mm_set1_ps(b1), vc1 = _mm_set1_ps(1 - b1);
	const __m128 vb2 = _mm_set1_ps(b2), vc2 = _mm_set1_ps(1 - b2);
	const __m128 vstep = _mm_set1_ps(step), vinv = _mm_set1_ps(inv_sqrt_bc2);
	const __m128 veps = _mm_set1_ps(eps);
	for (; i + 4 <= n; i += 4) {
		__m128 gi = _mm_loadu_ps(g + i);
		__m128 mi = _mm_add_ps(_mm_mul_ps(vb1, _mm_loadu_ps(m + i)), _mm_mul_ps(vc1, gi));
		__m128 vi = _mm_add_ps(_mm_mul_ps(vb2, _mm_loadu_ps(v + i)),
				       _mm_mul_ps(_mm_mul_ps(vc2, gi), gi));
		_mm_storeu_ps(m + i, mi);
		_mm_storeu_ps(v + i, vi);
		__m128 den = _mm_add_ps(_mm_mul_ps(_mm_sqrt_ps(vi), vinv), veps);
		__m128 pi = _mm_sub_ps(_mm_loadu_ps(p + i), _mm_div_ps(_mm_mul_ps(vstep, mi), den));
		_mm_storeu_ps(p + i, pi);
	}
#endif
	for (; i < n; i++) {
		float gi = g[i];
		m[i] = b1 * m[i] + (1 - b1) * gi;
		v[i] = b2 * v[i] + (1 - b2) * gi * gi;
		p[i] -= step * m[i] / (sqrtf(v[i]) * inv_sqrt_bc2 + eps);
	}
}
