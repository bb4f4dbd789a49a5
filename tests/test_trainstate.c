/*
 * Tests for trainstate: training saved and resumed is bit for bit the
 * training that never stopped (every mode, both optimizers, the lmt loss,
 * the mlp and alexnet-lite), and every file that is not this run's state is
 * refused with a message, leaving the trainer as it was.
 */
#define _GNU_SOURCE /* memmem */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sectorlab/checkpoint.h"
#include "sectorlab/trainstate.h"
#include "testutil.h"

struct fixture {
	char *dir;
	struct sl_dataset mnist, cifar; /* small synthetic training sets */
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof *f);
	if (!f || !(f->dir = tu_tmpdir()))
		return -1;
	tu_synthetic_dataset(&f->mnist, 300, 1, 28, 28);
	tu_synthetic_cifar(&f->cifar, 160, 5);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	tu_rmrf(f->dir);
	free(f->dir);
	data_free(&f->mnist);
	data_free(&f->cifar);
	free(f);
	return 0;
}

/* A batch, or when an epoch's end is due, that end at once. */
static void step(struct trainer *t)
{
	struct train_step_info info;
	if (trainer_ending(t))
		assert_int_equal(trainer_settle_caps(t, NULL), SL_OK);
	else
		assert_int_equal(trainer_step(t, &info, NULL), SL_OK);
}

/* Train until `steps` optimizer steps are taken and no epoch's end is due. */
static void train_to(struct trainer *t, long steps)
{
	while (t->step < steps || trainer_ending(t))
		step(t);
}

/* Everything a trainer carries from one step to the next, compared bit for bit. */
static void assert_same_state(const struct trainer *a, const struct trainer *b)
{
	size_t np = a->net->nparams;
	assert_int_equal(np, b->net->nparams);
	assert_memory_equal(a->net->params, b->net->params, sizeof(float) * np);
	assert_memory_equal(a->opt->m, b->opt->m, sizeof(float) * np);
	if (a->opt->v)
		assert_memory_equal(a->opt->v, b->opt->v, sizeof(float) * np);
	assert_int_equal(a->opt->t, b->opt->t);
	assert_memory_equal(&a->opt->lr, &b->opt->lr, sizeof a->opt->lr);
	assert_memory_equal(a->rng.s, b->rng.s, sizeof a->rng.s);
	assert_memory_equal(a->perm, b->perm, sizeof(uint32_t) * a->train.n);
	assert_int_equal(a->pos, b->pos);
	assert_int_equal(a->epoch, b->epoch);
	assert_int_equal(a->step, b->step);
	for (int j = 0; j < a->nweighted; j++) {
		const struct nn_layer *la = &a->net->layers[a->weighted[j]];
		const struct nn_layer *lb = &b->net->layers[b->weighted[j]];
		assert_memory_equal(la->u, lb->u, sizeof(float) * (size_t)la->usize);
		assert_memory_equal(la->v, lb->v, sizeof(float) * (size_t)la->vsize);
		assert_memory_equal(&la->sigma_hat, &lb->sigma_hat, sizeof(float));
		assert_memory_equal(&la->scale, &lb->scale, sizeof(float));
		assert_memory_equal(&la->rho, &lb->rho, sizeof(float));
		assert_memory_equal(&a->sigma[j], &b->sigma[j], sizeof(double));
	}
	assert_memory_equal(&a->last_epoch_loss, &b->last_epoch_loss, sizeof(double));
	assert_memory_equal(&a->epoch_loss_sum, &b->epoch_loss_sum, sizeof(double));
}

/*
 * Train `epochs` epochs straight, and again stopped after `stop` steps
 * (saved, freed, rebuilt, loaded) and continued: every bit must agree.
 */
static void check_resume(const struct fixture *f, const char *what, const struct train_config *cfg,
			 const struct sl_dataset *data, int epochs, long stop)
{
	char *path = tu_path(f->dir, "state.safetensors");
	struct trainer *straight, *first, *second;
	assert_int_equal(trainer_new(cfg, data, NULL, &straight, NULL), SL_OK);
	long total = epochs * trainer_steps_per_epoch(straight);
	train_to(straight, total);

	assert_int_equal(trainer_new(cfg, data, NULL, &first, NULL), SL_OK);
	train_to(first, stop);
	struct sl_error err;
	assert_int_equal(trainstate_save(first, path, &err), SL_OK);
	trainer_free(first);
	assert_int_equal(trainer_new(cfg, data, NULL, &second, NULL), SL_OK);
	if (trainstate_load(second, path, &err) != SL_OK)
		fail_msg("%s: %s", what, err.msg);
	assert_int_equal(second->step, stop);
	train_to(second, total);
	assert_same_state(straight, second);
	print_message("%s: %ld steps straight = %ld + %ld resumed, bit for bit\n", what, total,
		      stop, total - stop);
	trainer_free(straight);
	trainer_free(second);
	free(path);
}

static void test_mlp_resumes_bit_for_bit(void **state)
{
	struct fixture *f = *state;
	struct train_config cfg = train_config_default();
	cfg.holdout = 20;
	cfg.batch = 64; /* 280 images: 5 steps an epoch, the last of 24 */
	cfg.threads = 1;
	long spe = 5;

	cfg.mode = TRAIN_VANILLA;
	check_resume(f, "mlp vanilla adam", &cfg, &f->mnist, 3, spe);

	cfg.mode = TRAIN_L2;
	cfg.optim = optim_sgd_defaults(0.05, 0.9);
	cfg.optim.schedule = OPTIM_STEP;
	cfg.optim.gamma = 0.5;
	check_resume(f, "mlp l2 sgd (step schedule)", &cfg, &f->mnist, 3, 2 * spe);

	cfg.mode = TRAIN_SPNORM; /* certified caps at (-2, 0.4) */
	cfg.optim = optim_adam_defaults(1e-3);
	cfg.loss = loss_config_certified();
	check_resume(f, "mlp spnorm lmt adam", &cfg, &f->mnist, 3, spe);
	/* Stopped in the middle of an epoch. */
	check_resume(f, "mlp spnorm lmt adam, mid-epoch", &cfg, &f->mnist, 2, spe + 2);

	cfg.loss = loss_config_plain();
	cfg.optim = optim_sgd_defaults(0.05, 0.9);
	check_resume(f, "mlp spnorm sgd", &cfg, &f->mnist, 2, spe);
}

static void test_alexnet_lite_resumes_bit_for_bit(void **state)
{
	struct fixture *f = *state;
	struct arch lite;
	model_get(MODEL_ALEXNET_LITE, &lite);
	struct train_config cfg = train_config_for(&lite);
	cfg.holdout = 0;
	cfg.batch = 40; /* 4 steps an epoch */
	cfg.threads = 2; /* the convolutions split among threads */
	long spe = 4;

	cfg.mode = TRAIN_VANILLA; /* SGD with momentum, its default */
	check_resume(f, "alexnet-lite vanilla sgd", &cfg, &f->cifar, 2, spe);

	cfg.mode = TRAIN_L2;
	cfg.optim = optim_adam_defaults(1e-3);
	check_resume(f, "alexnet-lite l2 adam", &cfg, &f->cifar, 2, spe);

	cfg.mode = TRAIN_SPNORM; /* certified caps: every convolution settles at an epoch's end */
	cfg.optim = model_default_optim(&lite);
	cfg.loss = loss_config_certified();
	check_resume(f, "alexnet-lite spnorm lmt sgd", &cfg, &f->cifar, 2, spe);
}

/* Load must fail with code and a message containing want, and leave t as it was. */
static void assert_refused(struct trainer *t, const char *path, sl_status code, const char *want)
{
	size_t np = t->net->nparams;
	float *before = malloc(sizeof(float) * np);
	assert_non_null(before);
	memcpy(before, t->net->params, sizeof(float) * np);
	long step = t->step;
	struct sl_rng rng = t->rng;
	struct sl_error err;
	status_clear(&err);
	assert_int_equal(trainstate_load(t, path, &err), code);
	print_message("refused: %s\n", err.msg);
	if (!strstr(err.msg, want))
		fail_msg("'%s' does not say '%s'", err.msg, want);
	assert_memory_equal(before, t->net->params, sizeof(float) * np);
	assert_memory_equal(rng.s, t->rng.s, sizeof rng.s);
	assert_int_equal(step, t->step);
	free(before);
}

/* Replace the first occurrence of from (in the header) by to, of the same length. */
static void patch_file(const char *path, const char *from, const char *to)
{
	size_t n;
	char *bytes = tu_read_file(path, &n);
	assert_non_null(bytes);
	assert_int_equal(strlen(from), strlen(to));
	char *at = memmem(bytes, n, from, strlen(from));
	assert_non_null(at);
	memcpy(at, to, strlen(to));
	assert_int_equal(tu_write_file(path, bytes, n), 0);
	free(bytes);
}

static void test_refuses_what_is_not_this_runs_state(void **state)
{
	struct fixture *f = *state;
	struct train_config cfg = train_config_default();
	cfg.holdout = 20;
	cfg.batch = 64;
	cfg.threads = 1;
	cfg.mode = TRAIN_SPNORM;
	cfg.seed = 7;
	char *path = tu_path(f->dir, "state.safetensors");
	char *bad = tu_path(f->dir, "bad.safetensors");
	struct trainer *t, *other;
	assert_int_equal(trainer_new(&cfg, &f->mnist, NULL, &t, NULL), SL_OK);
	train_to(t, 7);
	assert_int_equal(trainstate_save(t, path, NULL), SL_OK);

	/* A fresh trainer of the same settings is the one that may load it. */
	assert_int_equal(trainer_new(&cfg, &f->mnist, NULL, &other, NULL), SL_OK);

	assert_refused(other, "/nonexistent/state.safetensors", SL_ERR_IO, "cannot open");
	assert_int_equal(tu_write_file(bad, "garbage", 7), 0);
	assert_refused(other, bad, SL_ERR_FORMAT, "too short");

	/* Cut short anywhere: the header or the data no longer fit. */
	size_t n;
	char *bytes = tu_read_file(path, &n);
	assert_non_null(bytes);
	size_t cuts[] = {9, 100, n / 2, n - 1};
	for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
		assert_int_equal(tu_write_file(bad, bytes, cuts[i]), 0);
		assert_refused(other, bad, SL_ERR_FORMAT, "bad.safetensors");
	}
	free(bytes);

	/* A network's checkpoint is not a training state. */
	assert_int_equal(checkpoint_save(t->net, NULL, 0, bad, NULL), SL_OK);
	assert_refused(other, bad, SL_ERR_FORMAT, "not a sectorlab training state");

	/* Other settings: each names what differs. */
	struct trainer *x;
	struct train_config c2 = cfg;
	c2.seed = 8;
	assert_int_equal(trainer_new(&c2, &f->mnist, NULL, &x, NULL), SL_OK);
	assert_refused(x, path, SL_ERR_ARG, "seed '7' there, '8' in this run");
	trainer_free(x);
	c2 = cfg;
	c2.mode = TRAIN_L2;
	assert_int_equal(trainer_new(&c2, &f->mnist, NULL, &x, NULL), SL_OK);
	assert_refused(x, path, SL_ERR_ARG, "mode 'spnorm' there");
	trainer_free(x);
	c2 = cfg;
	c2.optim = optim_sgd_defaults(0.01, 0.9);
	assert_int_equal(trainer_new(&c2, &f->mnist, NULL, &x, NULL), SL_OK);
	assert_refused(x, path, SL_ERR_ARG, "optimizer 'adam lr");
	trainer_free(x);
	c2 = cfg;
	c2.loss = loss_config_certified();
	assert_int_equal(trainer_new(&c2, &f->mnist, NULL, &x, NULL), SL_OK);
	assert_refused(x, path, SL_ERR_ARG, "loss 'ce tau 1");
	trainer_free(x);
	c2 = cfg;
	struct arch big;
	assert_int_equal(arch_parse("784-64-10", &big, NULL), SL_OK);
	c2.arch = big;
	assert_int_equal(trainer_new(&c2, &f->mnist, NULL, &x, NULL), SL_OK);
	assert_refused(x, path, SL_ERR_ARG, "network 'input 1x28x28, dense 50");
	trainer_free(x);
	struct sl_dataset other_data;
	tu_synthetic_dataset(&other_data, 300, 1, 28, 28);
	other_data.pixels[784 * 100 + 7] ^= 1; /* a training image, past the holdout */
	assert_int_equal(trainer_new(&cfg, &other_data, NULL, &x, NULL), SL_OK);
	assert_refused(x, path, SL_ERR_ARG, "data '280 images");
	trainer_free(x);
	data_free(&other_data);

	/* Crafted: counters that no trainer could have, caps that are not this run's. */
	bytes = tu_read_file(path, &n);
	assert_int_equal(tu_write_file(bad, bytes, n), 0);
	patch_file(bad, "\"step\":\"7\"", "\"step\":\"8\"");
	assert_refused(other, bad, SL_ERR_FORMAT, "counters disagree");
	assert_int_equal(tu_write_file(bad, bytes, n), 0);
	patch_file(bad, "\"format\":\"sectorlab-train-state-1\"",
		   "\"format\":\"sectorlab-train-state-9\"");
	assert_refused(other, bad, SL_ERR_FORMAT, "not a sectorlab training state");
	assert_int_equal(tu_write_file(bad, bytes, n), 0);
	patch_file(bad, "\"perm\":{\"dtype\":\"U32\"", "\"perm\":{\"dtype\":\"I32\"");
	assert_refused(other, bad, SL_ERR_FORMAT, "tensor 'perm' is I32");
	free(bytes);

	/* Nor is a training state a network to certify or attack. */
	struct nn_net *net = NULL;
	struct sl_error err;
	assert_int_equal(checkpoint_load(path, 16, &net, NULL, &err), SL_ERR_FORMAT);
	assert_null(net);
	assert_non_null(strstr(err.msg, "a training state"));

	/* The refusals left other fresh: the state still loads into it. */
	assert_int_equal(trainstate_load(other, path, NULL), SL_OK);
	assert_same_state(t, other);

	/* Not during an epoch's end. */
	while (!trainer_ending(t))
		step(t);
	assert_int_equal(trainstate_save(t, path, &err), SL_ERR_ARG);
	print_message("refused: %s\n", err.msg);
	trainer_free(t);
	trainer_free(other);
	free(path);
	free(bad);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mlp_resumes_bit_for_bit),
		cmocka_unit_test(test_alexnet_lite_resumes_bit_for_bit),
		cmocka_unit_test(test_refuses_what_is_not_this_runs_state),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
