/*
 * Tests for the lab's model without a terminal: lanes that train side by
 * side from one seed, the controls they share (pause, steps, eps, digit,
 * learning rate, more epochs), reset, and a lane restarted with other caps.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sectorlab/lab.h"
#include "sectorlab/model.h"
#include "testutil.h"

static struct job_snapshot snap;

static void nap(void)
{
	struct timespec ts = {0, 5 * 1000 * 1000};
	nanosleep(&ts, NULL);
}

/* Wait (at most 120 s) until lane's snapshot satisfies cond. */
#define WAIT_FOR(lab, lane, cond)                                                  \
	do {                                                                       \
		time_t start_ = time(NULL);                                        \
		for (;;) {                                                         \
			lab_snapshot((lab), (lane), &snap);                        \
			if (cond)                                                  \
				break;                                             \
			if (snap.state == JOB_FAILED)                              \
				fail_msg("lane %d failed: %s", (lane), snap.message); \
			if (time(NULL) - start_ > 120)                             \
				fail_msg("lane %d never reached: %s", (lane), #cond); \
			nap();                                                     \
		}                                                                  \
	} while (0)

/* A lane of kind trained for one epoch; spnorm lanes capped at the
 * allocation for (nu, delta) under objective. */
static struct lab_lane_config lane_of(enum lab_lane_kind kind, double nu, double delta,
				      enum sector_objective objective)
{
	struct train_config base = train_config_default();
	base.holdout = 0;
	base.epochs = 1;
	struct caps_spec spec = caps_spec_certified(nu, delta, objective);
	struct lab_lane_config lc;
	struct sl_error err;
	if (lab_lane_make(kind, &base, &spec, &lc, &err) != SL_OK)
		fail_msg("lab_lane_make: %s", err.msg);
	return lc;
}

/* The caps a spec resolves to for the mlp. */
static struct caps_plan plan_of(const struct caps_spec *spec)
{
	struct train_config base = train_config_default();
	struct caps_plan plan;
	assert_int_equal(caps_resolve(spec, &base.arch, &plan, NULL), SL_OK);
	return plan;
}

/* A lab of cfg on the embedded sample. */
static struct lab *open_lab_config(const struct lab_config *cfg)
{
	struct sl_dataset train, test;
	struct sl_error err;
	if (data_load(DATA_MNIST, tu_sample_data(), true, &train, &err) != SL_OK ||
	    data_load(DATA_MNIST, tu_sample_data(), false, &test, &err) != SL_OK)
		fail_msg("cannot load the embedded sample: %s", err.msg);
	struct lab *lab;
	if (lab_new(cfg, &train, &test, &lab, &err) != SL_OK)
		fail_msg("lab_new: %s", err.msg);
	return lab;
}

static struct lab *open_lab(const struct lab_lane_config *lanes, int n, bool paused)
{
	struct lab_config cfg = {.nlanes = n, .eps = 0.1f, .pace = 0, .eval_n = 200,
				 .paused = paused};
	for (int i = 0; i < n; i++)
		cfg.lane[i] = lanes[i];
	return open_lab_config(&cfg);
}

/* Three lanes train an epoch each, from one seed on the same batches: the
 * first batch's accuracy (measured before any update) is the same in the
 * vanilla and L2 lanes; every lane reports its figures; the capped lane
 * keeps every layer on or under its cap. */
static void test_race_runs(void **state)
{
	(void)state;
	struct lab_lane_config lanes[3] = {
		lane_of(LAB_LANE_VANILLA, 0, 0, SECTOR_OBJ_PRODUCT),
		lane_of(LAB_LANE_L2, 0, 0, SECTOR_OBJ_PRODUCT),
		lane_of(LAB_LANE_SPNORM, -2, 0.4, SECTOR_OBJ_PRODUCT),
	};
	struct lab *lab = open_lab(lanes, 3, false);
	assert_int_equal(lab_lanes(lab), 3);
	float first_acc[3];
	for (int i = 0; i < 3; i++) {
		WAIT_FOR(lab, i, snap.state == JOB_DONE);
		assert_int_equal(snap.epoch, 1);
		assert_int_equal(snap.nevals, 1);
		assert_true(snap.have_attack && snap.have_curve && snap.have_example);
		assert_int_equal(snap.attack_n, 200);
		assert_close(snap.attack_eps, 0.1, 1e-6);
		/* Robust accuracy never exceeds clean, PGD is no weaker than FGSM. */
		assert_true(snap.robust_acc <= snap.clean_acc + 1e-9);
		assert_true(snap.pgd_robust_acc <= snap.robust_acc + 1e-9);
		assert_close(snap.curve_acc[0], snap.clean_acc, 1e-6); /* float */
		assert_int_equal(snap.test_loss.n, 1);
		first_acc[i] = snap.train_acc.v[0];
		if (i == 2) {
			for (int l = 0; l < snap.nlayers; l++)
				assert_true(snap.sigma_exact[l] <= snap.rho[l] * (1 + 1e-5));
			/* The certified lane's loss stays high: the point of its note. */
			assert_true(job_series_last(&snap.test_loss, 0) > 1.5);
		} else {
			assert_true(job_series_last(&snap.test_acc, 0) > 0.6f); /* one epoch */
		}
	}
	assert_true(first_acc[0] == first_acc[1]);
	lab_free(lab);
}

/* Paused, the lab trains exactly what it is asked: one batch, then the rest
 * of the epoch; eps, the digit and the learning rate follow at once, and
 * more epochs resume a finished run. */
static void test_controls(void **state)
{
	(void)state;
	struct lab_lane_config lanes[2] = {
		lane_of(LAB_LANE_VANILLA, 0, 0, SECTOR_OBJ_PRODUCT),
		lane_of(LAB_LANE_SPNORM, -2, 0.4, SECTOR_OBJ_PRODUCT),
	};
	struct lab *lab = open_lab(lanes, 2, true);
	assert_true(lab_controls(lab).paused);
	for (int i = 0; i < 2; i++)
		WAIT_FOR(lab, i, snap.state == JOB_PAUSED);
	assert_int_equal(snap.step, 0);
	lab_step(lab);
	for (int i = 0; i < 2; i++)
		WAIT_FOR(lab, i, snap.step == 1);
	lab_step(lab);
	lab_step(lab);
	for (int i = 0; i < 2; i++)
		WAIT_FOR(lab, i, snap.step == 3);
	nap();
	lab_snapshot(lab, 0, &snap);
	assert_int_equal(snap.step, 3); /* and no further */
	lab_step_epoch(lab);
	for (int i = 0; i < 2; i++)
		WAIT_FOR(lab, i, snap.state == JOB_DONE && snap.nevals == 1);
	/* eps: the figures follow after training is done too. */
	lab_set_eps(lab, 0.3f);
	for (int i = 0; i < 2; i++)
		WAIT_FOR(lab, i, fabsf(snap.attack_eps - 0.3f) < 1e-6f &&
					 fabsf(snap.example_eps - 0.3f) < 1e-6f);
	lab_set_eps(lab, 7);
	assert_close(lab_controls(lab).eps, 1.0, 0);
	lab_set_digit(lab, 5);
	for (int i = 0; i < 2; i++)
		WAIT_FOR(lab, i, snap.example_index == 5);
	lab_set_digit(lab, 2000 + 7); /* modulo the test set */
	WAIT_FOR(lab, 0, snap.example_index == 7);
	double lr = snap.lr;
	lab_scale_lr(lab, 2);
	WAIT_FOR(lab, 0, fabs(snap.lr - 2 * lr) < 1e-12);
	lab_more_epochs(lab, 1);
	lab_set_paused(lab, false);
	for (int i = 0; i < 2; i++)
		WAIT_FOR(lab, i, snap.state == JOB_DONE && snap.epoch == 2 && snap.epochs == 2);
	lab_free(lab);
}

/* Reset trains again from the same seed: the first batches repeat exactly. */
static void test_reset_repeats(void **state)
{
	(void)state;
	struct lab_lane_config lane = lane_of(LAB_LANE_VANILLA, 0, 0, SECTOR_OBJ_PRODUCT);
	struct lab *lab = open_lab(&lane, 1, true);
	lab_step(lab);
	lab_step(lab);
	WAIT_FOR(lab, 0, snap.step == 2 && snap.loss.n + (snap.loss.pending > 0) >= 2);
	float first[2] = {snap.loss.v[0], snap.loss.v[1]};
	assert_int_equal(lab_reset(lab, NULL), SL_OK);
	/* Steps asked for at once go to the new run. */
	lab_step(lab);
	lab_step(lab);
	WAIT_FOR(lab, 0, snap.run == 1 && snap.step == 2 && snap.state == JOB_PAUSED);
	assert_true(snap.loss.v[0] == first[0] && snap.loss.v[1] == first[1]);
	/* The run before the reset is its ghost. */
	assert_true(snap.ghost.have);
	assert_int_equal(snap.ghost.run, 0);
	assert_int_equal(snap.ghost.step, 2);
	assert_true(snap.ghost.loss.v[0] == first[0]);
	assert_true(snap.ghost.loss_plain);
	lab_free(lab);
}

/* A lab opened twice from the same settings replays exactly (what a
 * lesson promises): the same first losses, bit for bit, and the digit and
 * learning rate it was given. */
static void test_same_settings_replay(void **state)
{
	(void)state;
	struct lab_config cfg = {.nlanes = 2, .eps = 0.1f, .pace = 0, .eval_n = 200,
				 .paused = true, .digit = 7};
	cfg.lane[0] = lane_of(LAB_LANE_VANILLA, 0, 0, SECTOR_OBJ_PRODUCT);
	cfg.lane[1] = lane_of(LAB_LANE_MARGIN, -2, 0.4, SECTOR_OBJ_PRODUCT);
	for (int i = 0; i < 2; i++)
		cfg.lane[i].train.optim.lr = 2e-3;
	float first[2][3];
	for (int run = 0; run < 2; run++) {
		struct lab *lab = open_lab_config(&cfg);
		assert_int_equal(lab_controls(lab).digit, 7);
		for (int k = 0; k < 3; k++)
			lab_step(lab);
		for (int lane = 0; lane < 2; lane++) {
			WAIT_FOR(lab, lane, snap.step == 3 && snap.loss.n >= 3);
			assert_int_equal(snap.example_index, 7);
			assert_true(fabs(snap.lr - 2e-3) < 1e-12);
			for (int k = 0; k < 3; k++) {
				if (run == 0)
					first[lane][k] = snap.loss.v[k];
				else if (snap.loss.v[k] != first[lane][k])
					fail_msg("lane %d step %d: loss %.9g, then %.9g", lane, k,
						 (double)first[lane][k], (double)snap.loss.v[k]);
			}
		}
		lab_free(lab);
	}
}

/* A lane restarted with another caps spec trains with exactly the caps
 * that spec resolves to, its objective included; a spec without caps is
 * refused and the lane goes on as it was. */
static void test_restart_lane_with_caps(void **state)
{
	(void)state;
	struct lab_lane_config lanes[2] = {
		lane_of(LAB_LANE_VANILLA, 0, 0, SECTOR_OBJ_PRODUCT),
		lane_of(LAB_LANE_SPNORM, -2, 0.4, SECTOR_OBJ_PRODUCT),
	};
	struct lab *lab = open_lab(lanes, 2, true);
	struct caps_spec min = caps_spec_certified(-2, 0.4, SECTOR_OBJ_MIN);
	struct caps_plan plan = plan_of(&min);
	/* The min objective gives every layer the same cap (0.4544...). */
	assert_close(plan.rho[0], plan.rho[2], 1e-6);
	assert_close(plan.rho[0], 0.4544, 1e-4);
	assert_int_equal(lab_restart_lane(lab, 0, &min, NULL), SL_OK);
	assert_int_equal(lab_lane(lab, 0)->train.caps.objective, SECTOR_OBJ_MIN);
	assert_int_equal(lab_lane(lab, 0)->kind, LAB_LANE_SPNORM);
	lab_step_epoch(lab);
	WAIT_FOR(lab, 0, snap.run == 1 && snap.state == JOB_DONE);
	assert_true(snap.ghost.have);
	assert_non_null(strstr(snap.ghost.caps_note, "no caps"));
	assert_int_equal(snap.mode, TRAIN_SPNORM);
	assert_true(snap.rho_certified);
	assert_non_null(strstr(snap.caps_note, "certified"));
	for (int l = 0; l < snap.nlayers; l++) {
		assert_close(snap.rho[l], plan.rho[l], 1e-6);
		assert_true(snap.sigma_exact[l] <= snap.rho[l] * (1 + 1e-5));
	}
	/* No caps at (-0.4, 4): refused with the reason, the lane untouched. */
	struct caps_spec none = caps_spec_certified(-0.4, 4, SECTOR_OBJ_PRODUCT);
	struct sl_error err;
	assert_int_not_equal(lab_restart_lane(lab, 1, &none, &err), SL_OK);
	assert_true(strlen(err.msg) > 0);
	assert_int_equal(lab_lane(lab, 1)->train.caps.delta, 0.4);
	assert_int_equal(lab_restart_lane(lab, 5, &min, NULL), SL_ERR_ARG);
	struct caps_plan paper = plan_of(&lanes[1].train.caps);
	lab_snapshot(lab, 1, &snap);
	assert_close(snap.rho[0], paper.rho[0], 1e-6);
	/* The authors' caps make an authors lane, not certified. */
	struct caps_spec authors = caps_spec_paper();
	authors.source = CAPS_AUTHORS;
	assert_int_equal(lab_restart_lane(lab, 1, &authors, NULL), SL_OK);
	assert_int_equal(lab_lane(lab, 1)->kind, LAB_LANE_AUTHORS);
	WAIT_FOR(lab, 1, snap.run == 1 && snap.step == 0 && !snap.rho_certified &&
				 snap.rho[2] > 0.92f);
	lab_free(lab);
}

/* New caps applied to a running lane: it trains on with its weights (its
 * step count goes on) under exactly the caps of the spec, also after a
 * reset; lanes without caps, caps that do not exist and uncertified caps
 * for a margin lane are refused with the lane untouched. */
static void test_set_caps_live(void **state)
{
	(void)state;
	struct lab_lane_config lanes[3] = {
		lane_of(LAB_LANE_VANILLA, 0, 0, SECTOR_OBJ_PRODUCT),
		lane_of(LAB_LANE_SPNORM, -2, 0.4, SECTOR_OBJ_PRODUCT),
		lane_of(LAB_LANE_MARGIN, -2, 0.4, SECTOR_OBJ_PRODUCT),
	};
	struct lab *lab = open_lab(lanes, 3, true);
	lab_step(lab);
	lab_step(lab);
	WAIT_FOR(lab, 1, snap.step == 2 && snap.state == JOB_PAUSED);
	struct caps_spec wide = caps_spec_certified(-3, 0.4, SECTOR_OBJ_MIN);
	struct caps_plan plan = plan_of(&wide);
	assert_int_equal(lab_set_caps(lab, 1, &wide, NULL), SL_OK);
	assert_true(lab_lane(lab, 1)->train.caps.nu == -3);
	assert_int_equal(lab_lane(lab, 1)->kind, LAB_LANE_SPNORM);
	/* Paused, the caps change at once, and no step is taken. */
	WAIT_FOR(lab, 1, fabsf(snap.rho[0] - (float)plan.rho[0]) < 1e-7f);
	assert_int_equal(snap.step, 2);
	assert_true(snap.rho_certified);
	assert_non_null(strstr(snap.caps_note, "nu -3"));
	for (int l = 0; l < snap.nlayers; l++) {
		assert_close(snap.rho[l], plan.rho[l], 1e-6);
		assert_true(snap.sigma_used[l] <= snap.rho[l] * (1 + 1e-5f));
	}
	lab_step(lab);
	WAIT_FOR(lab, 1, snap.step == 3 && snap.state == JOB_PAUSED);
	assert_close(snap.rho[2], plan.rho[2], 1e-6);
	/* Refused: a lane without caps, caps that do not exist, the authors'
	 * caps for the margin lane. */
	struct sl_error err;
	assert_int_equal(lab_set_caps(lab, 0, &wide, &err), SL_ERR_ARG);
	assert_non_null(strstr(err.msg, "without caps"));
	struct caps_spec none = caps_spec_certified(-0.4, 4, SECTOR_OBJ_PRODUCT);
	assert_int_not_equal(lab_set_caps(lab, 1, &none, &err), SL_OK);
	assert_non_null(strstr(err.msg, "no certified caps"));
	assert_true(lab_lane(lab, 1)->train.caps.nu == -3);
	struct caps_spec authors = caps_spec_paper();
	authors.source = CAPS_AUTHORS;
	assert_int_equal(lab_set_caps(lab, 2, &authors, &err), SL_ERR_ARG);
	assert_int_equal(lab_lane(lab, 2)->kind, LAB_LANE_MARGIN);
	/* The margin lane takes certified caps and keeps its loss. */
	assert_int_equal(lab_set_caps(lab, 2, &wide, NULL), SL_OK);
	assert_int_equal(lab_lane(lab, 2)->kind, LAB_LANE_MARGIN);
	assert_true(loss_uses_bound(&lab_lane(lab, 2)->train.loss));
	WAIT_FOR(lab, 2, fabsf(snap.rho[1] - (float)plan.rho[1]) < 1e-7f);
	/* A reset starts lane 1 under the caps it was given. */
	assert_int_equal(lab_reset(lab, NULL), SL_OK);
	WAIT_FOR(lab, 1, snap.step == 0 && snap.state == JOB_PAUSED);
	assert_close(snap.rho[0], plan.rho[0], 1e-6);
	/* A finished lane takes caps too. */
	lab_step_epoch(lab);
	WAIT_FOR(lab, 1, snap.state == JOB_DONE);
	assert_int_equal(lab_set_caps(lab, 1, &lanes[1].train.caps, NULL), SL_OK);
	struct caps_plan paper = plan_of(&lanes[1].train.caps);
	WAIT_FOR(lab, 1, fabsf(snap.rho[0] - (float)paper.rho[0]) < 1e-7f);
	assert_int_equal(snap.state, JOB_DONE);
	lab_free(lab);
}

/* A lane restarted as the kind asked: vanilla becomes certified + margin
 * (with the margin's loss), the margin lane becomes plain spnorm (plain
 * cross-entropy); kinds that do not fit the caps are refused. */
static void test_restart_lane_as(void **state)
{
	(void)state;
	struct lab_lane_config lanes[2] = {
		lane_of(LAB_LANE_VANILLA, 0, 0, SECTOR_OBJ_PRODUCT),
		lane_of(LAB_LANE_MARGIN, -2, 0.4, SECTOR_OBJ_PRODUCT),
	};
	struct lab *lab = open_lab(lanes, 2, true);
	struct caps_spec spec = caps_spec_certified(-3, 0.4, SECTOR_OBJ_PRODUCT);
	assert_int_equal(lab_restart_lane_as(lab, 0, LAB_LANE_MARGIN, &spec, NULL), SL_OK);
	assert_int_equal(lab_lane(lab, 0)->kind, LAB_LANE_MARGIN);
	assert_int_equal(lab_lane(lab, 0)->train.mode, TRAIN_SPNORM);
	assert_true(loss_uses_bound(&lab_lane(lab, 0)->train.loss));
	assert_int_equal(lab_restart_lane_as(lab, 1, LAB_LANE_SPNORM, &spec, NULL), SL_OK);
	assert_int_equal(lab_lane(lab, 1)->kind, LAB_LANE_SPNORM);
	assert_true(loss_is_plain(&lab_lane(lab, 1)->train.loss));
	struct caps_plan plan = plan_of(&spec);
	WAIT_FOR(lab, 1, snap.step == 0 && fabsf(snap.rho[0] - (float)plan.rho[0]) < 1e-7f);
	struct caps_spec authors = caps_spec_paper();
	authors.source = CAPS_AUTHORS;
	struct sl_error err;
	assert_int_equal(lab_restart_lane_as(lab, 1, LAB_LANE_MARGIN, &authors, &err), SL_ERR_ARG);
	assert_int_equal(lab_restart_lane_as(lab, 1, LAB_LANE_VANILLA, &spec, &err), SL_ERR_ARG);
	assert_int_equal(lab_restart_lane_as(lab, 1, LAB_LANE_AUTHORS, &spec, &err), SL_ERR_ARG);
	assert_int_equal(lab_lane(lab, 1)->kind, LAB_LANE_SPNORM);
	lab_free(lab);
}

/* The weights of a lane's network at the end of its epoch, copied by the
 * lab's epoch hook on the lane's worker thread. */
struct weights_at_epoch {
	struct nn_net *net;
	int epochs;
};

static sl_status keep_weights(void *ctx, const struct trainer *t, double test_acc,
			      struct sl_error *err)
{
	struct weights_at_epoch *w = ctx;
	(void)test_acc;
	sl_status st = SL_OK;
	if (!w->net)
		st = arch_build(&t->cfg.arch, t->net->max_batch, &w->net, err);
	if (st == SL_OK)
		st = nn_copy_weights(w->net, t->net, err);
	w->epochs++;
	return st;
}

/* Poll lab_copy_net until the copy for ticket arrives (at most 120 s). */
static long copy_lane_net(struct lab *lab, int lane, long ticket, struct nn_net *dst)
{
	time_t start = time(NULL);
	bool ready = false;
	long step = -1;
	struct sl_error err;
	while (!ready) {
		if (lab_copy_net(lab, lane, ticket, dst, &ready, &step, &err) != SL_OK)
			fail_msg("lab_copy_net: %s", err.msg);
		if (time(NULL) - start > 120)
			fail_msg("lane %d never served ticket %ld", lane, ticket);
		if (!ready)
			nap();
	}
	return step;
}

/* A copy of a lane's network, for tasks that must not touch the worker's:
 * served while paused, a step later it has moved, after the run it is the
 * network the epoch hook saw, and after a reset the new run's (its initial
 * weights again). */
static void test_copy_net(void **state)
{
	(void)state;
	struct weights_at_epoch w = {0};
	struct lab_config cfg = {.nlanes = 1, .eps = 0.1f, .eval_n = 200, .paused = true,
				 .on_epoch = keep_weights, .on_epoch_ctx = &w, .hook_lanes = 1};
	cfg.lane[0] = lane_of(LAB_LANE_SPNORM, -2, 0.4, SECTOR_OBJ_PRODUCT);
	struct lab *lab = open_lab_config(&cfg);
	struct nn_net *dst, *first;
	assert_int_equal(arch_build(&lab_lane(lab, 0)->train.arch, 4, &dst, NULL), SL_OK);
	assert_int_equal(arch_build(&lab_lane(lab, 0)->train.arch, 4, &first, NULL), SL_OK);
	size_t bytes = sizeof(float) * dst->nparams;
	assert_int_equal(copy_lane_net(lab, 0, lab_request_net(lab, 0), first), 0);
	lab_snapshot(lab, 0, &snap);
	assert_int_equal(snap.step, 0);
	/* the caps travel with the weights */
	assert_true(first->layers[0].rho > 0);
	lab_step(lab);
	WAIT_FOR(lab, 0, snap.step == 1);
	assert_int_equal(copy_lane_net(lab, 0, lab_request_net(lab, 0), dst), 1);
	assert_true(memcmp(dst->params, first->params, bytes) != 0);
	lab_step_epoch(lab);
	WAIT_FOR(lab, 0, snap.state == JOB_DONE);
	copy_lane_net(lab, 0, lab_request_net(lab, 0), dst);
	assert_int_equal(w.epochs, 1);
	assert_memory_equal(dst->params, w.net->params, bytes);
	/* A reset restarts the run in place, when its worker gets to it: once
	 * the new run shows, its copy is the first run's start again. */
	int run = snap.run;
	assert_int_equal(lab_reset(lab, NULL), SL_OK);
	WAIT_FOR(lab, 0, snap.run == run + 1);
	copy_lane_net(lab, 0, lab_request_net(lab, 0), dst);
	assert_memory_equal(dst->params, first->params, bytes);
	/* a network of other layers is refused */
	struct train_config other = train_config_default();
	assert_int_equal(arch_parse("784-30-10", &other.arch, NULL), SL_OK);
	struct nn_net *wrong;
	assert_int_equal(arch_build(&other.arch, 4, &wrong, NULL), SL_OK);
	bool ready = true;
	struct sl_error err;
	sl_status st = SL_OK;
	/* one ticket, polled: asking anew at every poll could chase the worker
	 * for ever (each ticket asked just after the last was served) */
	long ticket = lab_request_net(lab, 0);
	for (time_t t0 = time(NULL); st == SL_OK && time(NULL) - t0 < 120; nap())
		st = lab_copy_net(lab, 0, ticket, wrong, &ready, NULL, &err);
	assert_int_equal(st, SL_ERR_ARG);
	assert_false(ready);
	nn_free(wrong);
	lab_free(lab);
	nn_free(dst);
	nn_free(first);
	nn_free(w.net);
}

/* The margin lane: spnorm under the certified caps, trained with train's
 * loss for them (lmt at its defaults); its first batch's loss is not the
 * spnorm lane's cross-entropy of the same network.  Every lane's certified
 * accuracy after the epoch is what certify computes (certify_network,
 * certify_accuracy) for the same weights, at the lab's radius, on the
 * evaluation subset. */
static void test_margin_lane_and_certified_accuracy(void **state)
{
	(void)state;
	struct lab_lane_config lanes[3] = {
		lane_of(LAB_LANE_VANILLA, -2, 0.4, SECTOR_OBJ_PRODUCT),
		lane_of(LAB_LANE_SPNORM, -2, 0.4, SECTOR_OBJ_PRODUCT),
		lane_of(LAB_LANE_MARGIN, -2, 0.4, SECTOR_OBJ_PRODUCT),
	};
	struct loss_config want = loss_config_certified();
	assert_int_equal(lanes[2].train.mode, TRAIN_SPNORM);
	assert_int_equal(lanes[2].train.caps.source, CAPS_CERTIFIED);
	assert_int_equal(lanes[2].train.loss.kind, LOSS_LMT);
	assert_true(lanes[2].train.loss.tau == want.tau && want.tau == LOSS_DEFAULT_TAU);
	assert_true(lanes[2].train.loss.radius == want.radius);
	assert_true(loss_is_plain(&lanes[1].train.loss));
	/* Only certified caps make a margin lane. */
	struct train_config base = train_config_default();
	struct caps_spec authors = caps_spec_paper();
	authors.source = CAPS_AUTHORS;
	struct lab_lane_config bad;
	struct sl_error err;
	assert_int_equal(lab_lane_make(LAB_LANE_MARGIN, &base, &authors, &bad, &err), SL_ERR_ARG);
	assert_non_null(strstr(err.msg, "certified caps"));

	struct weights_at_epoch kept[3] = {{0}};
	struct lab_config cfg = {.nlanes = 1, .eps = 0.1f, .eval_n = 300,
				 .cert_radius = LAB_CERT_RADIUS};
	struct sl_dataset test_copy;
	if (data_load(DATA_MNIST, tu_sample_data(), false, &test_copy, &err) != SL_OK)
		fail_msg("cannot load the embedded sample: %s", err.msg);
	float first_loss[3];
	double clean[3];
	/* One lab per lane, so each lane's hook has its own context. */
	for (int i = 0; i < 3; i++) {
		struct lab_config one = cfg;
		one.nlanes = 1;
		one.lane[0] = lanes[i];
		one.on_epoch = keep_weights;
		one.on_epoch_ctx = &kept[i];
		one.hook_lanes = 1;
		struct lab *lab = open_lab_config(&one);
		WAIT_FOR(lab, 0, snap.state == JOB_DONE && snap.have_attack);
		assert_true(snap.have_cert);
		assert_int_equal(kept[i].epochs, 1);
		assert_int_equal(snap.certified.n, 1);
		assert_close(snap.cert_radius, LAB_CERT_RADIUS, 0);
		assert_int_equal(snap.cert_n, 300);
		/* The same figure from certify's two calls on the same weights. */
		struct certificate c;
		struct certify_options co = caps_certify_options(&lanes[i].train.caps);
		assert_int_equal(certify_network(kept[i].net, &co, &c, &err), SL_OK);
		struct certify_accuracy ca;
		double r = LAB_CERT_RADIUS;
		assert_int_equal(certify_accuracy(kept[i].net, &c, &test_copy, 300, &r, 1, &ca, &err),
				 SL_OK);
		assert_true(snap.cert_acc == ca.certified[0]);
		assert_true(snap.cert_gamma == ca.gamma);
		assert_true(snap.cert_sector == ca.sector);
		assert_close(snap.certified.v[0], ca.certified[0], 1e-6); /* float */
		assert_int_equal(snap.attack_n, 300); /* the same images */
		assert_true(snap.cert_acc <= snap.clean_acc + 1e-9);
		if (i == 0) /* no certificate at (nu, delta): the product of the norms */
			assert_false(snap.cert_sector);
		if (i > 0) /* capped lanes: a figure worth comparing */
			assert_true(snap.cert_acc > 0);
		clean[i] = snap.clean_acc;
		first_loss[i] = snap.loss.v[0];
		nn_free(kept[i].net);
		kept[i].net = NULL;
		lab_free(lab);
	}
	data_free(&test_copy);
	/* Same seed, same caps, same first batch: the losses differ by the loss. */
	assert_true(first_loss[2] != first_loss[1]);
	/* The point of the lane: under the same caps, far more accurate after
	 * one epoch (measured: 70% against 34% on 300 sample images). */
	assert_true(clean[2] > clean[1] + 0.15);
}

static void test_lane_names(void **state)
{
	(void)state;
	enum lab_lane_kind k;
	struct sl_error err;
	assert_int_equal(lab_lane_kind_parse("authors", &k, NULL), SL_OK);
	assert_int_equal(k, LAB_LANE_AUTHORS);
	assert_string_equal(lab_lane_kind_name(LAB_LANE_L2), "l2");
	assert_int_equal(lab_lane_kind_parse("fast", &k, &err), SL_ERR_ARG);
	assert_non_null(strstr(err.msg, "vanilla, l2, spnorm, margin or authors"));
	assert_int_equal(lab_lane_kind_parse("margin", &k, NULL), SL_OK);
	assert_int_equal(k, LAB_LANE_MARGIN);
	assert_string_equal(lab_lane_kind_name(LAB_LANE_MARGIN), "margin");
	/* Too many lanes, or none. */
	struct lab_config cfg = {.nlanes = LAB_MAX_LANES + 1};
	struct sl_dataset a = {0}, b = {0};
	struct lab *lab;
	assert_int_equal(lab_new(&cfg, &a, &b, &lab, &err), SL_ERR_ARG);
	assert_null(lab);
}

/* A dataset of n random 3x32x32 images (a stand-in for CIFAR-10). */
static struct sl_dataset colour_set(uint32_t n, uint32_t seed)
{
	struct sl_dataset d = {.n = n, .c = 3, .h = 32, .w = 32, .classes = 10, .owned = true};
	d.pixels = malloc((size_t)n * 3 * 32 * 32);
	d.labels = malloc(n);
	assert_non_null(d.pixels);
	assert_non_null(d.labels);
	uint32_t x = seed * 2654435761u + 1;
	for (size_t i = 0; i < (size_t)n * 3 * 32 * 32; i++) {
		x = x * 1664525u + 1013904223u;
		d.pixels[i] = (uint8_t)(x >> 24);
	}
	for (uint32_t i = 0; i < n; i++)
		d.labels[i] = (uint8_t)(i % 10);
	snprintf(d.source, sizeof d.source, "random colours");
	return d;
}

static struct lab_data colour_data(void)
{
	struct lab_data d = {.train = colour_set(256, 1), .test = colour_set(64, 2),
			     .holdout = 0, .eval_n = 64};
	struct sl_error err;
	if (model_arch("input 3x32x32, dense 32, leaky:0.1, dense 10", &d.arch, &err) != SL_OK ||
	    arch_fit_input(&d.arch, (struct nn_shape){3, 32, 32}, &err) != SL_OK)
		fail_msg("model_arch: %s", err.msg);
	snprintf(d.title, sizeof d.title, "a dense net on random colours");
	return d;
}

/* Another network and data for every lane: each keeps its kind and caps
 * spec, trains the new network on the new images (shown in colour), and
 * the lab's title follows; the old datasets go once no lane uses them. */
static void test_switch_network_and_data(void **state)
{
	(void)state;
	struct lab_lane_config lanes[2] = {
		lane_of(LAB_LANE_VANILLA, 0, 0, SECTOR_OBJ_PRODUCT),
		lane_of(LAB_LANE_MARGIN, -2, 0.4, SECTOR_OBJ_MIN),
	};
	struct lab *lab = open_lab(lanes, 2, true);
	lab_step(lab);
	WAIT_FOR(lab, 1, snap.step == 1);
	struct lab_data d = colour_data();
	assert_int_equal(lab_switch(lab, &d, NULL), SL_OK);
	assert_string_equal(lab_title(lab), "a dense net on random colours");
	assert_int_equal(lab_test_set(lab)->c, 3);
	assert_int_equal(lab_lane(lab, 1)->kind, LAB_LANE_MARGIN);
	assert_int_equal(lab_lane(lab, 1)->train.caps.objective, SECTOR_OBJ_MIN);
	assert_int_equal(lab_lane(lab, 1)->train.loss.kind, LOSS_LMT);
	lab_step_epoch(lab);
	for (int i = 0; i < 2; i++) {
		WAIT_FOR(lab, i, snap.run == 1 && snap.state == JOB_DONE);
		assert_int_equal(snap.nlayers, 2);
		assert_int_equal(snap.img_c, 3);
		assert_true(snap.have_example && snap.have_attack);
		assert_int_equal(snap.attack_n, 64);
		assert_true(snap.ghost.have);
	}
	lab_snapshot(lab, 1, &snap);
	assert_true(snap.rho_certified);
	/* Every lane has let go of the MNIST sample: another switch may go. */
	struct lab_data back = colour_data();
	assert_int_equal(lab_switch(lab, &back, NULL), SL_OK);
	lab_free(lab);
}

/* A switch some lane cannot follow (the authors' caps of a layer spec) is
 * refused with the lane's reason, and nothing changes. */
static void test_switch_refused(void **state)
{
	(void)state;
	struct lab_lane_config lanes[1] = {lane_of(LAB_LANE_AUTHORS, 0, 0, SECTOR_OBJ_PRODUCT)};
	struct lab *lab = open_lab(lanes, 1, true);
	struct lab_data d = colour_data();
	struct sl_error err;
	assert_int_not_equal(lab_switch(lab, &d, &err), SL_OK);
	assert_non_null(strstr(err.msg, "authors lane"));
	assert_int_equal(lab_test_set(lab)->c, 1);
	assert_int_equal(lab_lane(lab, 0)->train.arch.nlayers, lanes[0].train.arch.nlayers);
	lab_free(lab);
}

/* A lane's kind chosen in the lab: the margin lane brings its loss, and
 * leaving it restores plain cross-entropy; the margin lane needs certified
 * caps. */
static void test_set_lane_kind(void **state)
{
	(void)state;
	struct lab_lane_config lanes[1] = {lane_of(LAB_LANE_VANILLA, 0, 0, SECTOR_OBJ_PRODUCT)};
	struct lab *lab = open_lab(lanes, 1, true);
	assert_int_equal(lab_set_lane_kind(lab, 0, LAB_LANE_MARGIN, NULL), SL_OK);
	assert_int_equal(lab_lane(lab, 0)->kind, LAB_LANE_MARGIN);
	assert_int_equal(lab_lane(lab, 0)->train.loss.kind, LOSS_LMT);
	WAIT_FOR(lab, 0, snap.run == 1 && snap.mode == TRAIN_SPNORM && snap.rho_certified);
	assert_int_equal(lab_set_lane_kind(lab, 0, LAB_LANE_L2, NULL), SL_OK);
	assert_int_equal(lab_lane(lab, 0)->train.mode, TRAIN_L2);
	assert_true(loss_is_plain(&lab_lane(lab, 0)->train.loss));
	WAIT_FOR(lab, 0, snap.run == 2 && snap.mode == TRAIN_L2);
	assert_int_equal(lab_set_lane_kind(lab, 0, LAB_LANE_AUTHORS, NULL), SL_OK);
	WAIT_FOR(lab, 0, snap.run == 3 && !snap.rho_certified && snap.rho[2] > 0.92f);
	assert_int_equal(lab_set_lane_kind(lab, 3, LAB_LANE_L2, NULL), SL_ERR_ARG);
	lab_free(lab);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_race_runs),
		cmocka_unit_test(test_controls),
		cmocka_unit_test(test_reset_repeats),
		cmocka_unit_test(test_same_settings_replay),
		cmocka_unit_test(test_restart_lane_with_caps),
		cmocka_unit_test(test_set_caps_live),
		cmocka_unit_test(test_restart_lane_as),
		cmocka_unit_test(test_margin_lane_and_certified_accuracy),
		cmocka_unit_test(test_lane_names),
		cmocka_unit_test(test_switch_network_and_data),
		cmocka_unit_test(test_switch_refused),
		cmocka_unit_test(test_set_lane_kind),
		cmocka_unit_test(test_copy_net),
	};
	return cmocka_run_group_tests_name("lab", tests, NULL, NULL);
}
