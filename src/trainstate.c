/* trainstate: a trainer's whole state, saved and resumed bit for bit (see trainstate.h). */
#include "sectorlab/trainstate.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sectorlab/arch.h"
#include "sectorlab/checkpoint.h"

#define STATE_FORMAT "sectorlab-train-state-1"

/* ---- The settings a state belongs to ---- */

enum {
	S_NETWORK, S_MODE, S_CAPS, S_L2, S_OPTIMIZER, S_LOSS, S_BATCH, S_SEED, S_HOLDOUT,
	S_THREADS, S_DATA, NSETTINGS
};
static const char *const setting_key[NSETTINGS] = {
	"network", "mode", "caps", "l2", "optimizer", "loss", "batch", "seed", "holdout",
	"threads", "data",
};

struct settings {
	char value[NSETTINGS][ARCH_TEXT];
};

/* A hash of the training images and labels (64-bit FNV-1a over 8-byte
 * words), so a state is not resumed on other data of the same shape. */
static uint64_t data_hash(const struct sl_dataset *d)
{
	uint64_t h = 0xcbf29ce484222325ULL;
	const uint8_t *parts[2] = {d->pixels, d->labels};
	size_t sizes[2] = {(size_t)d->n * data_dim(d), d->n};
	for (int p = 0; p < 2; p++) {
		size_t i = 0;
		for (; i + 8 <= sizes[p]; i += 8) {
			uint64_t w;
			memcpy(&w, parts[p] + i, 8);
			h = (h ^ w) * 0x100000001b3ULL;
		}
		for (; i < sizes[p]; i++)
			h = (h ^ parts[p][i]) * 0x100000001b3ULL;
		h ^= h >> 29;
	}
	return h;
}

/* x in as few digits as read back exactly (%.15g, else %.17g). */
static const char *num(double x, char buf[32])
{
	snprintf(buf, 32, "%.15g", x);
	if (strtod(buf, NULL) != x)
		snprintf(buf, 32, "%.17g", x);
	return buf;
}

static void settings_of(const struct trainer *t, struct settings *s)
{
	const struct train_config *c = &t->cfg;
	char (*v)[ARCH_TEXT] = s->value;
	char n1[32], n2[32], n3[32], n4[32];
	memset(s, 0, sizeof *s);
	arch_format(&c->arch, v[S_NETWORK], sizeof v[S_NETWORK]);
	snprintf(v[S_MODE], sizeof v[S_MODE], "%s", train_mode_name(c->mode));
	/* The caps in use (as floats, 9 digits give them back exactly), then
	 * the certificate the loss's margin is allocated by. */
	size_t o = 0;
	for (int i = 0; i < t->nweighted && o < sizeof v[S_CAPS]; i++)
		o += (size_t)snprintf(v[S_CAPS] + o, sizeof v[S_CAPS] - o, "%s%.9g", i ? "," : "",
				      (double)t->net->layers[t->weighted[i]].rho);
	if (o < sizeof v[S_CAPS])
		snprintf(v[S_CAPS] + o, sizeof v[S_CAPS] - o, " (%s, nu %s, delta %s, %s)",
			 caps_source_name(c->caps.source), num(c->caps.nu, n1),
			 num(c->caps.delta, n2), sector_objective_name(c->caps.objective));
	snprintf(v[S_L2], sizeof v[S_L2], "%s", num(c->mode == TRAIN_L2 ? c->l2 : 0.0, n1));
	const struct optim_config *op = &c->optim;
	if (op->kind == OPTIM_ADAM)
		o = (size_t)snprintf(v[S_OPTIMIZER], sizeof v[S_OPTIMIZER],
				     "adam lr %s betas %s %s eps %s", num(op->lr, n1),
				     num(op->beta1, n2), num(op->beta2, n3), num(op->eps, n4));
	else
		o = (size_t)snprintf(v[S_OPTIMIZER], sizeof v[S_OPTIMIZER], "sgd lr %s momentum %s",
				     num(op->lr, n1), num(op->momentum, n2));
	if (op->schedule == OPTIM_STEP)
		snprintf(v[S_OPTIMIZER] + o, sizeof v[S_OPTIMIZER] - o,
			 ", step schedule every %d epochs, gamma %s", op->step_epochs,
			 num(op->gamma, n1));
	else if (op->schedule == OPTIM_EXP)
		snprintf(v[S_OPTIMIZER] + o, sizeof v[S_OPTIMIZER] - o, ", exp schedule, gamma %s",
			 num(op->gamma, n1));
	snprintf(v[S_LOSS], sizeof v[S_LOSS], "%s tau %s radius %s", loss_kind_name(c->loss.kind),
		 num(c->loss.tau, n1), num(c->loss.radius, n2));
	snprintf(v[S_BATCH], sizeof v[S_BATCH], "%d", c->batch);
	snprintf(v[S_SEED], sizeof v[S_SEED], "%" PRIu64, c->seed);
	snprintf(v[S_HOLDOUT], sizeof v[S_HOLDOUT], "%" PRIu32, c->holdout);
	snprintf(v[S_THREADS], sizeof v[S_THREADS], "%d", t->net->threads);
	snprintf(v[S_DATA], sizeof v[S_DATA], "%" PRIu32 " images of %" PRIu32 "x%" PRIu32
		 "x%" PRIu32 ", hash %016" PRIx64, t->train.n, t->train.c, t->train.h, t->train.w,
		 data_hash(&t->train));
}

/* ---- The arrays ---- */

/* What a trainer's state holds beside its metadata; the arrays point into
 * the trainer (saving) or into one scratch block (loading). */
struct state_arrays {
	struct checkpoint_array a[8 + 2 * NN_MAX_LAYERS];
	int n;
	char names[2 * NN_MAX_LAYERS][32];
	float *params, *m, *v, *caps; /* caps: (nweighted, 3) rho, sigma_hat, scale */
	double *sigma;
	uint64_t *rng;
	uint32_t *perm;
	float *u[NN_MAX_LAYERS], *vv[NN_MAX_LAYERS];
	void *block;                  /* loading: everything above, in one allocation */
};

static void add(struct state_arrays *s, const char *name, enum checkpoint_dtype dtype, void *data,
		size_t count)
{
	s->a[s->n++] = (struct checkpoint_array){name, dtype, data, count};
}

/* The arrays of t's state: in t itself when block is false, else in a new
 * allocation of the same sizes (SL_ERR_NOMEM when it fails). */
static sl_status arrays_of(struct trainer *t, bool block, struct state_arrays *s,
			   struct sl_error *err)
{
	memset(s, 0, sizeof *s);
	const struct nn_net *net = t->net;
	bool adam = t->opt->cfg.kind == OPTIM_ADAM;
	size_t np = net->nparams, nw = (size_t)t->nweighted, uv = 0;
	for (int j = 0; j < t->nweighted; j++)
		uv += (size_t)net->layers[t->weighted[j]].usize + (size_t)net->layers[t->weighted[j]].vsize;
	if (block) {
		/* Doubles and 64-bit words first, then the 4-byte values. */
		size_t bytes = sizeof(double) * nw + sizeof(uint64_t) * 4 +
			       sizeof(float) * (np * (adam ? 3 : 2) + 3 * nw + uv) +
			       sizeof(uint32_t) * t->train.n;
		char *p = malloc(bytes);
		if (!p)
			return status_set(err, SL_ERR_NOMEM, "training state of %zu bytes", bytes);
		s->block = p;
		s->sigma = (double *)(void *)p, p += sizeof(double) * nw;
		s->rng = (uint64_t *)(void *)p, p += sizeof(uint64_t) * 4;
		s->params = (float *)(void *)p, p += sizeof(float) * np;
		s->m = (float *)(void *)p, p += sizeof(float) * np;
		if (adam)
			s->v = (float *)(void *)p, p += sizeof(float) * np;
		s->caps = (float *)(void *)p, p += sizeof(float) * 3 * nw;
		for (int j = 0; j < t->nweighted; j++) {
			const struct nn_layer *l = &net->layers[t->weighted[j]];
			s->u[j] = (float *)(void *)p, p += sizeof(float) * (size_t)l->usize;
			s->vv[j] = (float *)(void *)p, p += sizeof(float) * (size_t)l->vsize;
		}
		s->perm = (uint32_t *)(void *)p;
	} else {
		s->sigma = t->sigma;
		s->rng = t->rng.s;
		s->params = net->params;
		s->m = t->opt->m;
		s->v = adam ? t->opt->v : NULL;
		s->caps = malloc(sizeof(float) * 3 * (nw ? nw : 1));
		if (!s->caps)
			return status_set(err, SL_ERR_NOMEM, "training state");
		for (int j = 0; j < t->nweighted; j++) {
			const struct nn_layer *l = &net->layers[t->weighted[j]];
			s->caps[3 * j] = l->rho;
			s->caps[3 * j + 1] = l->sigma_hat;
			s->caps[3 * j + 2] = l->scale;
			s->u[j] = l->u;
			s->vv[j] = l->v;
		}
		s->perm = t->perm;
	}
	add(s, "params", CKPT_F32, s->params, np);
	add(s, "optim.m", CKPT_F32, s->m, np);
	if (adam)
		add(s, "optim.v", CKPT_F32, s->v, np);
	add(s, "rng", CKPT_U64, s->rng, 4);
	add(s, "perm", CKPT_U32, s->perm, t->train.n);
	add(s, "caps", CKPT_F32, s->caps, 3 * nw);
	add(s, "sigma", CKPT_F64, s->sigma, nw);
	for (int j = 0; j < t->nweighted; j++) {
		const struct nn_layer *l = &net->layers[t->weighted[j]];
		snprintf(s->names[2 * j], sizeof s->names[0], "%s.u", l->name);
		snprintf(s->names[2 * j + 1], sizeof s->names[0], "%s.v", l->name);
		add(s, s->names[2 * j], CKPT_F32, s->u[j], (size_t)l->usize);
		add(s, s->names[2 * j + 1], CKPT_F32, s->vv[j], (size_t)l->vsize);
	}
	return SL_OK;
}

static void arrays_free(struct state_arrays *s)
{
	if (s->block)
		free(s->block);
	else
		free(s->caps);
	memset(s, 0, sizeof *s);
}

/* ---- The counters ---- */

enum {
	C_EPOCH, C_STEP, C_POS, C_OPTIM_STEPS, C_SETTLE_STEPS, C_EPOCH_SEEN, C_EPOCH_CORRECT,
	NCOUNTERS
};
static const char *const counter_key[NCOUNTERS] = {
	"epoch", "step", "pos", "optim_steps", "settle_steps", "epoch_seen", "epoch_correct",
};
enum { R_EPOCH_LOSS_SUM, R_LAST_EPOCH_LOSS, R_LAST_EPOCH_ACCURACY, R_LIPSCHITZ, NREALS };
static const char *const real_key[NREALS] = {
	"epoch_loss_sum", "last_epoch_loss", "last_epoch_accuracy", "lipschitz",
};

struct counters {
	long c[NCOUNTERS];
	double r[NREALS];
};

static void counters_of(const struct trainer *t, struct counters *k)
{
	k->c[C_EPOCH] = t->epoch;
	k->c[C_STEP] = t->step;
	k->c[C_POS] = t->pos;
	k->c[C_OPTIM_STEPS] = t->opt->t;
	k->c[C_SETTLE_STEPS] = t->settle_steps;
	k->c[C_EPOCH_SEEN] = t->epoch_seen;
	k->c[C_EPOCH_CORRECT] = t->epoch_correct;
	k->r[R_EPOCH_LOSS_SUM] = t->epoch_loss_sum;
	k->r[R_LAST_EPOCH_LOSS] = t->last_epoch_loss;
	k->r[R_LAST_EPOCH_ACCURACY] = t->last_epoch_accuracy;
	k->r[R_LIPSCHITZ] = t->lipschitz;
}

/* ---- Saving ---- */

sl_status trainstate_save(const struct trainer *t, const char *path, struct sl_error *err)
{
	if (trainer_ending(t))
		return status_set(err, SL_ERR_ARG,
				  "%s: a training state is saved between steps, not during "
				  "epoch %d's end",
				  path, t->epoch + 1);
	struct settings set;
	settings_of(t, &set);
	struct counters k;
	counters_of(t, &k);
	char text[NCOUNTERS + NREALS][32];
	struct checkpoint_meta meta[1 + NSETTINGS + NCOUNTERS + NREALS];
	int nm = 0;
	meta[nm++] = (struct checkpoint_meta){"format", STATE_FORMAT};
	for (int i = 0; i < NSETTINGS; i++)
		meta[nm++] = (struct checkpoint_meta){setting_key[i], set.value[i]};
	for (int i = 0; i < NCOUNTERS; i++) {
		snprintf(text[i], sizeof text[i], "%ld", k.c[i]);
		meta[nm++] = (struct checkpoint_meta){counter_key[i], text[i]};
	}
	for (int i = 0; i < NREALS; i++) {
		snprintf(text[NCOUNTERS + i], sizeof text[0], "%.17g", k.r[i]);
		meta[nm++] = (struct checkpoint_meta){real_key[i], text[NCOUNTERS + i]};
	}
	struct state_arrays s;
	/* The arrays point into t and are only read. */
	sl_status st = arrays_of((struct trainer *)t, false, &s, err);
	if (st == SL_OK)
		st = checkpoint_save_arrays(meta, nm, s.a, s.n, path, err);
	arrays_free(&s);
	return st;
}

/* ---- Loading ---- */

/* The file's metadata must be a state of t's settings; its counters go to k. */
static sl_status check_meta(const struct trainer *t, const char *path,
			    const struct checkpoint_info *info, struct counters *k,
			    struct sl_error *err)
{
	const char *format = checkpoint_info_get(info, "format");
	if (!format || strcmp(format, STATE_FORMAT) != 0)
		return status_set(err, SL_ERR_FORMAT, "%s: not a sectorlab training state (format "
						      "'%.40s', expected '%s')",
				  path, format ? format : "none", STATE_FORMAT);
	struct settings set;
	settings_of(t, &set);
	for (int i = 0; i < NSETTINGS; i++) {
		const char *have = checkpoint_info_get(info, setting_key[i]);
		if (!have)
			return status_set(err, SL_ERR_FORMAT, "%s: no '%s' in its metadata", path,
					  setting_key[i]);
		if (strcmp(have, set.value[i]) != 0)
			return status_set(err, SL_ERR_ARG,
					  "%s: a training state of other settings: %s '%.300s' "
					  "there, '%.300s' in this run",
					  path, setting_key[i], have, set.value[i]);
	}
	for (int i = 0; i < NCOUNTERS + NREALS; i++) {
		const char *key = i < NCOUNTERS ? counter_key[i] : real_key[i - NCOUNTERS];
		const char *v = checkpoint_info_get(info, key);
		char *end = NULL;
		errno = 0;
		bool ok = v && *v;
		if (ok && i < NCOUNTERS) {
			long long n = strtoll(v, &end, 10);
			ok = *end == '\0' && errno == 0 && n >= 0 && n <= (1LL << 53);
			k->c[i] = (long)n;
		} else if (ok) {
			double d = strtod(v, &end);
			ok = *end == '\0' && errno == 0 && isfinite(d);
			k->r[i - NCOUNTERS] = d;
		}
		if (!ok)
			return status_set(err, SL_ERR_FORMAT, "%s: metadata '%s' is '%.40s', not a %s",
					  path, key, v ? v : "missing",
					  i < NCOUNTERS ? "count" : "finite number");
	}
	return SL_OK;
}

/* The arrays and counters must describe a trainer that could have been
 * saved: where it is in the epoch agrees with its steps, the order is a
 * permutation, the caps are this run's. */
static sl_status check_values(const struct trainer *t, const char *path,
			      const struct state_arrays *s, const struct counters *k,
			      struct sl_error *err)
{
	long spe = trainer_steps_per_epoch(t), batch = t->cfg.batch;
	long n = (long)t->train.n;
	const long *c = k->c;
	if (c[C_POS] >= n || c[C_POS] % batch != 0 || c[C_EPOCH] > (1L << 30) ||
	    c[C_STEP] != c[C_EPOCH] * spe + c[C_POS] / batch || c[C_OPTIM_STEPS] != c[C_STEP] ||
	    c[C_EPOCH_SEEN] != c[C_POS] || c[C_EPOCH_CORRECT] > c[C_EPOCH_SEEN] ||
	    c[C_SETTLE_STEPS] > TRAIN_SETTLE_ITERS)
		return status_set(err, SL_ERR_FORMAT,
				  "%s: its counters disagree (epoch %ld, step %ld, position %ld of "
				  "%ld, %ld steps an epoch)",
				  path, c[C_EPOCH], c[C_STEP], c[C_POS], n, spe);
	uint8_t *seen = calloc((size_t)n, 1);
	if (!seen)
		return status_set(err, SL_ERR_NOMEM, "%s: order", path);
	bool perm = true;
	for (long i = 0; i < n && perm; i++) {
		perm = s->perm[i] < (uint32_t)n && !seen[s->perm[i]];
		if (perm)
			seen[s->perm[i]] = 1;
	}
	free(seen);
	if (!perm)
		return status_set(err, SL_ERR_FORMAT, "%s: its epoch order is not a permutation",
				  path);
	if (s->rng[0] == 0 && s->rng[1] == 0 && s->rng[2] == 0 && s->rng[3] == 0)
		return status_set(err, SL_ERR_FORMAT, "%s: its RNG state is all zero", path);
	for (int j = 0; j < t->nweighted; j++) {
		const struct nn_layer *l = &t->net->layers[t->weighted[j]];
		float rho = s->caps[3 * j], sig = s->caps[3 * j + 1], scale = s->caps[3 * j + 2];
		if (memcmp(&rho, &l->rho, sizeof rho) != 0)
			return status_set(err, SL_ERR_ARG,
					  "%s: %s is capped at %.9g, this run caps it at %.9g", path,
					  l->name, (double)rho, (double)l->rho);
		if (!(sig >= 0) || !(scale > 0 && scale <= 1) || !(s->sigma[j] >= 0))
			return status_set(err, SL_ERR_FORMAT,
					  "%s: %s: estimate %g, scale %g, norm %g are out of range",
					  path, l->name, (double)sig, (double)scale, s->sigma[j]);
		/* The power iteration keeps its vectors of length 1. */
		double nu = 0, nv = 0;
		for (int i = 0; i < l->usize; i++)
			nu += (double)s->u[j][i] * s->u[j][i];
		for (int i = 0; i < l->vsize; i++)
			nv += (double)s->vv[j][i] * s->vv[j][i];
		if (!(fabs(nu - 1) < 1e-3 && fabs(nv - 1) < 1e-3))
			return status_set(err, SL_ERR_FORMAT,
					  "%s: %s: power-iteration vectors of length %g and %g, not 1",
					  path, l->name, sqrt(nu), sqrt(nv));
	}
	return SL_OK;
}

sl_status trainstate_load(struct trainer *t, const char *path, struct sl_error *err)
{
	struct checkpoint_info info = {0};
	struct counters k;
	struct state_arrays s = {0};
	sl_status st = checkpoint_read_info(path, &info, err);
	if (st == SL_OK)
		st = check_meta(t, path, &info, &k, err);
	checkpoint_info_free(&info);
	if (st == SL_OK)
		st = arrays_of(t, true, &s, err);
	if (st == SL_OK)
		st = checkpoint_read_arrays(path, s.a, s.n, NULL, err);
	if (st == SL_OK)
		st = check_values(t, path, &s, &k, err);
	if (st != SL_OK) {
		arrays_free(&s);
		return st;
	}
	/* Everything checked: now the trainer changes. */
	struct nn_net *net = t->net;
	memcpy(net->params, s.params, sizeof(float) * net->nparams);
	memcpy(t->opt->m, s.m, sizeof(float) * net->nparams);
	if (s.v)
		memcpy(t->opt->v, s.v, sizeof(float) * net->nparams);
	for (int j = 0; j < t->nweighted; j++) {
		struct nn_layer *l = &net->layers[t->weighted[j]];
		memcpy(l->u, s.u[j], sizeof(float) * (size_t)l->usize);
		memcpy(l->v, s.vv[j], sizeof(float) * (size_t)l->vsize);
		l->sigma_hat = s.caps[3 * j + 1];
		l->scale = s.caps[3 * j + 2];
		t->sigma[j] = s.sigma[j];
	}
	memcpy(t->rng.s, s.rng, sizeof t->rng.s);
	memcpy(t->perm, s.perm, sizeof(uint32_t) * t->train.n);
	t->epoch = (int)k.c[C_EPOCH];
	t->step = k.c[C_STEP];
	t->pos = (uint32_t)k.c[C_POS];
	t->opt->t = k.c[C_OPTIM_STEPS];
	optim_set_epoch(t->opt, t->epoch);
	t->settle_steps = (int)k.c[C_SETTLE_STEPS];
	t->epoch_seen = k.c[C_EPOCH_SEEN];
	t->epoch_correct = k.c[C_EPOCH_CORRECT];
	t->epoch_loss_sum = k.r[R_EPOCH_LOSS_SUM];
	t->last_epoch_loss = k.r[R_LAST_EPOCH_LOSS];
	t->last_epoch_accuracy = k.r[R_LAST_EPOCH_ACCURACY];
	t->lipschitz = k.r[R_LIPSCHITZ];
	arrays_free(&s);
	return SL_OK;
}
