/* train: mini-batch training steps (see train.h). */
#include "sectorlab/train.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct train_config train_config_default(void)
{
	struct train_config c = {
		.mode = TRAIN_VANILLA,
		.caps = caps_spec_paper(),
		.l2 = 0.005,
		.epochs = 10,
		.batch = 128,
		.seed = 1,
		.holdout = 5000,
		.loss = loss_config_plain(),
	};
	model_get(MODEL_MLP, &c.arch);
	c.optim = model_default_optim(&c.arch);
	return c;
}

struct train_config train_config_for(const struct arch *arch)
{
	struct train_config c = train_config_default();
	c.arch = *arch;
	c.optim = model_default_optim(arch);
	return c;
}

sl_status train_mode_parse(const char *name, enum train_mode *out, struct sl_error *err)
{
	if (name && strcmp(name, "vanilla") == 0)
		*out = TRAIN_VANILLA;
	else if (name && strcmp(name, "l2") == 0)
		*out = TRAIN_L2;
	else if (name && strcmp(name, "spnorm") == 0)
		*out = TRAIN_SPNORM;
	else
		return status_set(err, SL_ERR_ARG,
				  "unknown mode '%s' (known: vanilla, l2, spnorm)",
				  name ? name : "(null)");
	return SL_OK;
}

const char *train_mode_name(enum train_mode mode)
{
	switch (mode) {
	case TRAIN_L2:
		return "l2";
	case TRAIN_SPNORM:
		return "spnorm";
	case TRAIN_VANILLA:
		break;
	}
	return "vanilla";
}

static void end_begin(struct trainer *t, bool counts);

static void new_epoch_order(struct trainer *t)
{
	for (uint32_t i = 0; i < t->train.n; i++)
		t->perm[i] = i;
	rng_shuffle(&t->rng, t->perm, t->train.n);
	t->pos = 0;
	t->epoch_loss_sum = 0;
	t->epoch_seen = 0;
	t->epoch_correct = 0;
}

sl_status trainer_new(const struct train_config *cfg, const struct sl_dataset *train,
		      const struct sl_dataset *test, struct trainer **out,
		      struct sl_error *err)
{
	*out = NULL;
	int nl = arch_weighted_count(&cfg->arch);
	struct arch arch = cfg->arch;
	struct nn_shape data = {(int)train->c, (int)train->h, (int)train->w};
	sl_status fit = arch_fit_input(&arch, data, err);
	if (fit != SL_OK)
		return fit;
	if (test && data_dim(test) != data_dim(train))
		return status_set(err, SL_ERR_ARG, "test images (%s) differ in shape from training",
				  test->source);
	if (cfg->batch < 1 || cfg->batch > 65536)
		return status_set(err, SL_ERR_ARG, "batch size %d (1 to 65536)", cfg->batch);
	if (cfg->epochs < 0)
		return status_set(err, SL_ERR_ARG, "epochs %d must be >= 0", cfg->epochs);
	if (cfg->holdout >= train->n)
		return status_set(err, SL_ERR_ARG,
				  "holdout %u leaves no training images (%s has %u)",
				  cfg->holdout, train->source, train->n);
	if (cfg->mode == TRAIN_L2 && !(cfg->l2 >= 0 && isfinite(cfg->l2)))
		return status_set(err, SL_ERR_ARG, "l2 weight %g: must be >= 0", cfg->l2);
	struct caps_plan caps = {.feasible = true};
	snprintf(caps.what, sizeof caps.what, "no caps (%s)", train_mode_name(cfg->mode));
	snprintf(caps.note, sizeof caps.note, "no caps (%s)", train_mode_name(cfg->mode));
	if (cfg->mode == TRAIN_SPNORM) {
		sl_status cst = caps_resolve(&cfg->caps, &arch, &caps, err);
		if (cst != SL_OK)
			return cst;
		if (caps.nrho != nl)
			return status_set(err, SL_ERR_ARG, "%d caps for the %d weighted layers of %s",
					  caps.nrho, nl, arch_label(&arch));
	}
	sl_status lst = loss_config_check(&cfg->loss, err);
	if (lst != SL_OK)
		return lst;

	struct trainer *t = calloc(1, sizeof *t);
	if (!t)
		return status_set(err, SL_ERR_NOMEM, "trainer");
	t->cfg = *cfg;
	t->cfg.arch = arch;
	t->caps = caps;
	t->test = test;
	rng_seed(&t->rng, cfg->seed);
	sl_status st = data_view(train, cfg->holdout, train->n - cfg->holdout, &t->train, err);
	if (st == SL_OK)
		st = data_view(train, 0, cfg->holdout, &t->val, err);
	if (st == SL_OK)
		st = arch_build_threads(&arch, cfg->batch, cfg->threads, &t->net, err);
	if (st != SL_OK)
		goto fail;
	st = optim_new(&cfg->optim, t->net->nparams, &t->opt, err);
	if (st != SL_OK)
		goto fail;
	t->perm = malloc(sizeof(uint32_t) * t->train.n);
	t->xb = malloc(sizeof(float) * (size_t)cfg->batch * t->net->in_dim);
	t->yb = malloc(sizeof(int) * (size_t)cfg->batch);
	t->pred = malloc(sizeof(int) * (size_t)cfg->batch);
	t->idx = malloc(sizeof(uint32_t) * (size_t)cfg->batch);
	if (!t->perm || !t->xb || !t->yb || !t->pred || !t->idx) {
		st = status_set(err, SL_ERR_NOMEM, "training buffers");
		goto fail;
	}
	nn_init_glorot(t->net, &t->rng);
	t->nweighted = nn_weighted_layers(t->net, t->weighted);
	if (cfg->mode == TRAIN_SPNORM)
		for (int i = 0; i < nl; i++)
			nn_set_cap(t->net, t->weighted[i], (float)caps.rho[i]);
	nn_update_caps(t->net, 1);
	struct certify_options co = caps_certify_options(&cfg->caps);
	if (loss_uses_bound(&cfg->loss) && (st = certify_plan(t->net, &co, &t->plan, err)) != SL_OK)
		goto fail;
	new_epoch_order(t);
	*out = t;
	return SL_OK;
fail:
	trainer_free(t);
	return st;
}

sl_status trainer_set_caps(struct trainer *t, const struct caps_spec *spec, struct sl_error *err)
{
	if (t->cfg.mode != TRAIN_SPNORM)
		return status_set(err, SL_ERR_ARG, "a %s run has no caps to change (spnorm has)",
				  train_mode_name(t->cfg.mode));
	struct caps_plan caps;
	sl_status st = caps_resolve(spec, &t->cfg.arch, &caps, err);
	if (st != SL_OK)
		return st;
	if (caps.nrho != t->nweighted)
		return status_set(err, SL_ERR_ARG, "%d caps for the %d weighted layers of %s",
				  caps.nrho, t->nweighted, arch_label(&t->cfg.arch));
	struct certify_plan plan = t->plan;
	struct certify_options co = caps_certify_options(spec);
	if (loss_uses_bound(&t->cfg.loss) && (st = certify_plan(t->net, &co, &plan, err)) != SL_OK)
		return st;
	t->cfg.caps = *spec;
	t->caps = caps;
	t->plan = plan;
	for (int i = 0; i < t->nweighted; i++)
		nn_set_cap(t->net, t->weighted[i], (float)caps.rho[i]);
	return SL_OK;
}

void trainer_free(struct trainer *t)
{
	if (!t)
		return;
	nn_free(t->net);
	optim_free(t->opt);
	free(t->perm);
	free(t->xb);
	free(t->yb);
	free(t->pred);
	free(t->idx);
	free(t);
}

long trainer_steps_per_epoch(const struct trainer *t)
{
	return ((long)t->train.n + t->cfg.batch - 1) / t->cfg.batch;
}

/* Are all n values finite?  x * 0 is 0 for finite x and NaN otherwise; eight
 * independent sums keep this cheap next to a step. */
static bool all_finite(const float *x, size_t n)
{
	float acc[8] = {0};
	size_t i = 0;
	for (; i + 8 <= n; i += 8)
		for (int j = 0; j < 8; j++)
			acc[j] += x[i + j] * 0.0f;
	for (; i < n; i++)
		acc[0] += x[i] * 0.0f;
	float sum = 0;
	for (int j = 0; j < 8; j++)
		sum += acc[j];
	return sum == 0;
}

double trainer_penalty(const struct trainer *t)
{
	if (t->cfg.mode != TRAIN_L2)
		return 0;
	return nn_l2_penalty(t->net, t->cfg.l2, false);
}

sl_status trainer_step(struct trainer *t, struct train_step_info *info, struct sl_error *err)
{
	if (trainer_ending(t))
		return status_set(err, SL_ERR_ARG, "epoch %d has ended: its end (trainer_end_step) "
						   "comes before the next batch", t->epoch + 1);
	uint32_t left = t->train.n - t->pos;
	int b = left < (uint32_t)t->cfg.batch ? (int)left : t->cfg.batch;
	data_batch(&t->train, t->perm + t->pos, (size_t)b, t->xb, t->yb);
	t->pos += (uint32_t)b;

	const float *logits = nn_forward(t->net, t->xb, b);
	nn_argmax(logits, b, t->net->out_dim, t->pred);
	double loss = loss_is_plain(&t->cfg.loss)
			      ? nn_backward(t->net, t->yb, true, false)
			      : loss_backward(t->net, &t->cfg.loss, &t->plan, t->yb, &t->lipschitz);
	if (!isfinite(loss))
		return status_set(err, SL_ERR_NUMERIC, "loss became %g at step %ld (epoch %d)",
				  loss, t->step + 1, t->epoch + 1);
	if (t->cfg.mode == TRAIN_L2)
		nn_l2_penalty(t->net, t->cfg.l2, true);
	optim_step(t->opt, t->net->params, t->net->grads);
	t->step++;
	if (!all_finite(t->net->params, t->net->nparams))
		return status_set(err, SL_ERR_NUMERIC,
				  "weights became non-finite at step %ld (epoch %d)", t->step,
				  t->epoch + 1);
	/* One power-iteration step per optimizer step for each capped layer
	 * (DESIGN.md §1); uncapped layers are not touched unless the loss's
	 * margin needs their norms too. */
	bool all = loss_uses_bound(&t->cfg.loss);
	for (int i = 0; i < t->nweighted; i++)
		if (all || t->net->layers[t->weighted[i]].rho > 0)
			nn_update_layer_cap(t->net, t->weighted[i], 1);

	int correct = 0;
	for (int r = 0; r < b; r++)
		correct += t->pred[r] == t->yb[r];
	t->epoch_loss_sum += loss * b;
	t->epoch_seen += b;
	t->epoch_correct += correct;
	info->loss = loss;
	info->accuracy = (double)correct / b;
	info->epoch_done = t->pos >= t->train.n;
	if (info->epoch_done) {
		t->last_epoch_loss = t->epoch_loss_sum / (double)t->epoch_seen;
		t->last_epoch_accuracy = (double)t->epoch_correct / (double)t->epoch_seen;
		end_begin(t, true);
	}
	return SL_OK;
}

bool trainer_ending(const struct trainer *t)
{
	return t->end_phase != 0;
}

/* Settled by the power iteration, not measured by LAPACK. */
static bool settles(const struct trainer *t, int j)
{
	return !nn_layer_norm_is_exact(&t->net->layers[t->weighted[j]]);
}

/* TRAIN_END_POWER_STEPS steps of every unsettled layer; true when all are
 * settled. */
static bool settle_some(struct trainer *t)
{
	bool all = true;
	for (int j = 0; j < t->nweighted; j++) {
		if (t->end_settled[j])
			continue;
		for (int k = 0; k < TRAIN_END_POWER_STEPS && !t->end_settled[j]; k++) {
			float s = nn_update_layer_cap(t->net, t->weighted[j], 1);
			int done = ++t->end_steps[j];
			/* About two float ulps: once the steps are this small the
			 * estimate is within ~1e-5 of its limit even when the top
			 * singular values crowd (convolutions), as measured. */
			t->end_settled[j] = fabsf(s - t->end_prev[j]) <= 2e-7f * s ||
					    done >= TRAIN_SETTLE_ITERS;
			t->end_prev[j] = s;
			if (done > t->end_iters)
				t->end_iters = done;
		}
		all = all && t->end_settled[j];
	}
	return all;
}

/* Measure weighted layer j and set its scale from the vectors it is
 * measured by (see trainer_end_step). */
static sl_status measure(struct trainer *t, int j, struct sl_error *err)
{
	struct nn_net *net = t->net;
	int i = t->weighted[j];
	const struct nn_layer *l = &net->layers[i];
	if (!settles(t, j)) {
		double raw;
		sl_status st = nn_layer_exact_vectors(net, i, &raw, err);
		if (st != SL_OK)
			return st;
		t->sigma[j] = raw * l->scale;
	} else {
		nn_update_layer_cap(net, i, 0);
		t->sigma[j] = (double)l->sigma_hat * l->scale;
	}
	return SL_OK;
}

static void end_begin(struct trainer *t, bool counts)
{
	t->end_phase = 1;
	t->end_counts = counts;
	t->end_next = 0;
	t->end_iters = 0;
	for (int j = 0; j < t->nweighted; j++) {
		t->end_settled[j] = !settles(t, j);
		t->end_prev[j] = 0;
		t->end_steps[j] = 0;
	}
}

sl_status trainer_end_step(struct trainer *t, bool *done, struct sl_error *err)
{
	*done = false;
	if (t->end_phase == 1) {
		if (settle_some(t)) {
			t->settle_steps = t->end_iters;
			t->end_phase = 2;
		}
		return SL_OK;
	}
	if (t->end_phase == 2 && t->end_next < t->nweighted) {
		sl_status st = measure(t, t->end_next++, err);
		if (st != SL_OK)
			return st;
		if (t->end_next < t->nweighted)
			return SL_OK;
	}
	if (t->end_phase != 0 && t->end_counts) {
		t->epoch++;
		optim_set_epoch(t->opt, t->epoch);
		new_epoch_order(t);
	}
	t->end_phase = 0;
	*done = true;
	return SL_OK;
}

sl_status trainer_settle_caps(struct trainer *t, struct sl_error *err)
{
	if (!trainer_ending(t))
		end_begin(t, false);
	bool done = false;
	while (!done) {
		sl_status st = trainer_end_step(t, &done, err);
		if (st != SL_OK)
			return st;
	}
	return SL_OK;
}

uint32_t train_default_holdout(const struct sl_dataset *train)
{
	return train->n > 50000 ? 5000u : 0u;
}

sl_status trainer_eval_begin(const struct trainer *t, struct train_eval *e,
			     const struct sl_dataset *ds, int n, struct sl_error *err)
{
	memset(e, 0, sizeof *e);
	if (data_dim(ds) != (size_t)t->net->in_dim)
		return status_set(err, SL_ERR_ARG, "%s: images do not fit the network",
				  ds->source);
	e->ds = ds;
	e->n = n <= 0 || (uint32_t)n > ds->n ? (int)ds->n : n;
	return SL_OK;
}

bool trainer_eval_step(struct trainer *t, struct train_eval *e)
{
	if (e->pos >= e->n)
		return true;
	int b = e->n - e->pos < t->cfg.batch ? e->n - e->pos : t->cfg.batch;
	for (int r = 0; r < b; r++)
		t->idx[r] = (uint32_t)(e->pos + r);
	data_batch(e->ds, t->idx, (size_t)b, t->xb, t->yb);
	const float *logits = nn_forward(t->net, t->xb, b);
	nn_argmax(logits, b, t->net->out_dim, t->pred);
	e->loss_sum += nn_loss(t->net, t->yb) * b;
	for (int r = 0; r < b; r++)
		e->correct += t->pred[r] == t->yb[r];
	e->pos += b;
	return e->pos >= e->n;
}

void trainer_eval_result(const struct train_eval *e, double *accuracy, double *loss)
{
	*accuracy = e->pos > 0 ? (double)e->correct / e->pos : 0;
	*loss = e->pos > 0 ? e->loss_sum / e->pos : 0;
}

sl_status trainer_certified_accuracy(struct trainer *t, const struct sl_dataset *ds, int n,
				     const double *radii, int nradii,
				     struct certify_accuracy *out, struct sl_error *err)
{
	struct certificate c;
	struct certify_options co = caps_certify_options(&t->cfg.caps);
	sl_status st = certify_network(t->net, &co, &c, err);
	if (st == SL_OK)
		st = certify_accuracy(t->net, &c, ds, n, radii, nradii, out, err);
	return st;
}

sl_status trainer_evaluate(struct trainer *t, const struct sl_dataset *ds, int n,
			   double *accuracy, double *loss, struct sl_error *err)
{
	struct train_eval e;
	sl_status st = trainer_eval_begin(t, &e, ds, n, err);
	if (st != SL_OK)
		return st;
	while (!trainer_eval_step(t, &e))
		;
	trainer_eval_result(&e, accuracy, loss);
	return SL_OK;
}
