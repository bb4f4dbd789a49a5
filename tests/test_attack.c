/* Tests for attack: FGSM and FGM against their definitions, PGD's ball and
 * box, its loss, restarts, early stop, targets, the input gradient against
 * central differences, sweeps and their metrics and flags, bad recipes. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sectorlab/arch.h"
#include "sectorlab/attack.h"
#include "sectorlab/rng.h"
#include "sectorlab/train.h"
#include "testutil.h"

/* One linear layer 3 -> 2 with known weights: for softmax cross-entropy the
 * input gradient is W^T (p - onehot(y)). */
static const struct nn_layer_spec linear[] = {{.kind = NN_DENSE, .in = 3, .out = 2, .act = NN_ACT_IDENTITY}};

static struct nn_net *hand_net(void)
{
	struct nn_net *net;
	assert_int_equal(nn_new(linear, 1, 4, &net, NULL), SL_OK);
	const float w[] = {1.0f, -2.0f, 0.0f, 0.5f, 1.0f, 0.0f};
	memcpy(net->layers[0].w, w, sizeof w);
	net->layers[0].b[0] = 0.1f;
	net->layers[0].b[1] = -0.1f;
	return net;
}

/* The hand net's input gradient for label 0 at x, by hand. */
static void hand_gradient(const float *w, const float *x, double *g)
{
	double z0 = 0.1 + w[0] * x[0] + w[1] * x[1], z1 = -0.1 + w[3] * x[0] + w[4] * x[1];
	double p0 = 1 / (1 + exp(z1 - z0)), p1 = 1 - p0;
	for (int k = 0; k < 3; k++)
		g[k] = w[k] * (p0 - 1) + w[3 + k] * p1;
}

static void test_fgsm_definition(void **state)
{
	(void)state;
	struct nn_net *net = hand_net();
	const float *w = net->layers[0].w;
	float x[3] = {0.2f, -0.1f, 0.45f}, xa[3];
	int y = 0;
	int zero = attack_fgsm(net, x, &y, 1, 0.1f, xa);
	assert_int_equal(zero, 0);
	double g[3];
	hand_gradient(w, x, g);
	for (int k = 0; k < 3; k++) {
		double s = g[k] > 0 ? 1 : (g[k] < 0 ? -1 : 0);
		double expect = fmin(0.5, fmax(-0.5, x[k] + 0.1 * s));
		assert_close(xa[k], expect, 1e-7);
	}
	/* Input 2 has zero weight in both rows: its gradient is exactly 0, so it
	 * does not move, and the perturbation is eps in every other coordinate. */
	assert_close(xa[2], x[2], 0);
	assert_close(fabs(xa[0] - x[0]), 0.1, 1e-7);

	/* The attacker's FGSM is the same attack. */
	struct attack_recipe r = attack_recipe_fgsm(0.1f);
	struct attacker *a;
	assert_int_equal(attacker_new(net, &r, &a, NULL), SL_OK);
	attacker_begin(a, x, &y, 1);
	attacker_finish(a);
	struct attack_view v;
	attacker_view(a, &v);
	assert_true(v.done);
	assert_memory_equal(v.adv, xa, sizeof xa);
	attacker_free(a);
	nn_free(net);
}

static void test_fgm_definition(void **state)
{
	(void)state;
	struct nn_net *net = hand_net();
	const float *w = net->layers[0].w;
	float x[3] = {0.05f, -0.1f, 0.2f};
	int y = 0;
	double g[3], gn = 0;
	hand_gradient(w, x, g);
	for (int k = 0; k < 3; k++)
		gn += g[k] * g[k];
	gn = sqrt(gn);
	for (int clip = 0; clip <= 1; clip++) {
		float eps = clip ? 0.7f : 0.15f; /* 0.7 pushes coordinate 1 out of the box */
		struct attack_recipe r = attack_recipe_fgm(eps);
		r.clip = clip;
		struct attacker *a;
		assert_int_equal(attacker_new(net, &r, &a, NULL), SL_OK);
		attacker_begin(a, x, &y, 1);
		attacker_finish(a);
		struct attack_view v;
		attacker_view(a, &v);
		double moved = 0;
		for (int k = 0; k < 3; k++) {
			double expect = x[k] + eps * g[k] / gn;
			if (clip)
				expect = fmin(0.5, fmax(-0.5, expect));
			assert_close(v.adv[k], expect, 1e-6);
			moved += (v.adv[k] - x[k]) * (v.adv[k] - x[k]);
		}
		if (!clip)
			assert_close(sqrt(moved), eps, 1e-6);
		assert_int_equal(v.zero_grad, 0);
		assert_int_equal(v.grad_evals, 1);
		attacker_free(a);
	}
	nn_free(net);
}

static void test_fgsm_stays_in_box(void **state)
{
	(void)state;
	struct nn_net *net = hand_net();
	float x[4 * 3] = {0.5f, -0.5f, 0, 0.45f, -0.45f, 0, -0.5f, 0.5f, 0, 0, 0, 0};
	float xa[4 * 3];
	int y[4] = {0, 1, 0, 1};
	attack_fgsm(net, x, y, 4, 0.3f, xa);
	for (int k = 0; k < 12; k++) {
		assert_true(xa[k] >= ATTACK_PIXEL_MIN && xa[k] <= ATTACK_PIXEL_MAX);
		assert_true(fabsf(xa[k] - x[k]) <= 0.3f + 1e-6f);
	}
	nn_free(net);
}

static void test_zero_gradient_counted(void **state)
{
	(void)state;
	struct nn_net *net = hand_net();
	memset(net->layers[0].w, 0, sizeof(float) * 6);
	float x[3] = {0.1f, 0.2f, 0.3f}, xa[3];
	int y = 1;
	assert_int_equal(attack_fgsm(net, x, &y, 1, 0.2f, xa), 1);
	assert_memory_equal(x, xa, sizeof x);
	/* FGM cannot normalise a zero gradient: it stays put and says so. */
	struct attack_recipe r = attack_recipe_fgm(0.2f);
	struct attacker *a;
	assert_int_equal(attacker_new(net, &r, &a, NULL), SL_OK);
	attacker_begin(a, x, &y, 1);
	attacker_finish(a);
	struct attack_view v;
	attacker_view(a, &v);
	assert_int_equal(v.zero_grad, 1);
	assert_memory_equal(v.adv, x, sizeof x);
	for (int k = 0; k < 3; k++)
		assert_false(isnan(v.adv[k]));
	attacker_free(a);
	nn_free(net);
}

/* A small random MLP (8 -> 16 -> 5, leaky ReLU) and random inputs in the box. */
enum { MLP_IN = 8, MLP_OUT = 5, MLP_BATCH = 24 };

static struct nn_net *random_mlp(uint64_t seed, float gain)
{
	static const struct nn_layer_spec specs[] = {
		{.kind = NN_DENSE, .in = MLP_IN, .out = 16, .act = NN_ACT_LEAKY_RELU, .slope = 0.1f},
		{.kind = NN_DENSE, .in = 16, .out = MLP_OUT, .act = NN_ACT_IDENTITY},
	};
	struct nn_net *net;
	assert_int_equal(nn_new(specs, 2, MLP_BATCH, &net, NULL), SL_OK);
	struct sl_rng rng;
	rng_seed(&rng, seed);
	nn_init_glorot(net, &rng);
	for (size_t k = 0; k < net->nparams; k++)
		net->params[k] *= gain;
	return net;
}

static void random_inputs(uint64_t seed, float *x, int *y, int n, int dim, int classes)
{
	struct sl_rng rng;
	rng_seed(&rng, seed);
	for (int k = 0; k < n * dim; k++)
		x[k] = rng_uniform(&rng) - 0.5f;
	for (int r = 0; r < n; r++)
		y[r] = (int)rng_below(&rng, (uint32_t)classes);
}

static double row_dist(const float *a, const float *b, int dim, enum attack_norm norm)
{
	double s = 0;
	for (int k = 0; k < dim; k++) {
		double d = fabs((double)a[k] - b[k]);
		s = norm == ATTACK_NORM_INF ? fmax(s, d) : s + d * d;
	}
	return norm == ATTACK_NORM_INF ? s : sqrt(s);
}

/* Every iterate of every restart, random start included, stays in the
 * eps-ball and (when clipping) in the box. */
static void test_pgd_stays_in_ball_and_box(void **state)
{
	(void)state;
	struct nn_net *net = random_mlp(3, 1.0f);
	float x[MLP_BATCH * MLP_IN];
	int y[MLP_BATCH];
	random_inputs(4, x, y, MLP_BATCH, MLP_IN, MLP_OUT);
	for (int norm = 0; norm < 2; norm++)
		for (int clip = 0; clip <= 1; clip++) {
			float eps = norm == ATTACK_NORM_INF ? 0.2f : 0.6f;
			struct attack_recipe r = attack_recipe_pgd((enum attack_norm)norm, eps, 7);
			r.random_start = true;
			r.restarts = 3;
			r.clip = clip;
			r.step_size = eps / 2; /* big steps push against the ball */
			struct attacker *a;
			assert_int_equal(attacker_new(net, &r, &a, NULL), SL_OK);
			attacker_begin(a, x, y, MLP_BATCH);
			struct attack_view v;
			int outside_box = 0;
			do {
				attacker_view(a, &v);
				for (int row = 0; row < MLP_BATCH; row++) {
					const float *xi = v.x + row * MLP_IN, *x0 = x + row * MLP_IN;
					double d = row_dist(xi, x0, MLP_IN, (enum attack_norm)norm);
					if (d > eps * (1 + 1e-6) + 1e-7)
						fail_msg("norm %s clip %d: iterate at %.9g, eps %g",
							 attack_norm_name((enum attack_norm)norm), clip, d, eps);
					for (int k = 0; k < MLP_IN; k++) {
						bool in = xi[k] >= ATTACK_PIXEL_MIN && xi[k] <= ATTACK_PIXEL_MAX;
						if (clip)
							assert_true(in);
						outside_box += !in;
					}
				}
			} while (attacker_step(a));
			attacker_view(a, &v);
			for (int row = 0; row < MLP_BATCH; row++)
				assert_true(row_dist(v.adv + row * MLP_IN, x + row * MLP_IN, MLP_IN,
						     (enum attack_norm)norm) <= eps * (1 + 1e-6) + 1e-7);
			/* without clipping, these big steps do leave the box */
			if (!clip)
				assert_true(outside_box > 0);
			assert_int_equal(v.grad_evals, 3 * 7 * MLP_BATCH);
			attacker_free(a);
		}
	nn_free(net);
}

/* On a linear softmax classifier the loss is convex in x, so a projected
 * step along the gradient never lowers it: PGD's loss climbs step by step
 * and never ends below its start. */
static void test_pgd_loss_never_falls(void **state)
{
	(void)state;
	static const struct nn_layer_spec lin[] = {{.kind = NN_DENSE, .in = MLP_IN, .out = MLP_OUT, .act = NN_ACT_IDENTITY}};
	struct nn_net *net;
	assert_int_equal(nn_new(lin, 1, MLP_BATCH, &net, NULL), SL_OK);
	struct sl_rng rng;
	rng_seed(&rng, 9);
	nn_init_glorot(net, &rng);
	float x[MLP_BATCH * MLP_IN];
	int y[MLP_BATCH];
	random_inputs(10, x, y, MLP_BATCH, MLP_IN, MLP_OUT);
	for (int norm = 0; norm < 2; norm++) {
		struct attack_recipe r = attack_recipe_pgd((enum attack_norm)norm, 0.3f, 20);
		/* L-inf: the ball and the box intersect in a box, an exact
		 * projection.  L2 then box is not one, so test L2 without the box. */
		r.clip = norm == ATTACK_NORM_INF;
		struct attacker *a;
		assert_int_equal(attacker_new(net, &r, &a, NULL), SL_OK);
		attacker_begin(a, x, y, MLP_BATCH);
		float prev[MLP_BATCH], start[MLP_BATCH];
		struct attack_view v;
		attacker_step(a);
		attacker_view(a, &v);
		memcpy(start, v.loss, sizeof start);
		memcpy(prev, v.loss, sizeof prev);
		while (attacker_step(a)) {
			attacker_view(a, &v);
			for (int row = 0; row < MLP_BATCH; row++) {
				if (v.loss[row] < prev[row] - 1e-5f)
					fail_msg("norm %s row %d step %d: loss fell %.7g -> %.7g",
						 attack_norm_name((enum attack_norm)norm), row, v.step,
						 prev[row], v.loss[row]);
				prev[row] = v.loss[row];
			}
		}
		attacker_view(a, &v);
		int rose = 0;
		for (int row = 0; row < MLP_BATCH; row++) {
			assert_true(v.loss_adv[row] >= start[row] - 1e-5f);
			rose += v.loss_adv[row] > start[row] + 1e-3f;
		}
		assert_true(rose > MLP_BATCH / 2);
		attacker_free(a);
	}
	nn_free(net);
}

/* With several random restarts the kept example is the worst one: one that
 * fools if any restart fooled, else the highest final loss; never better for
 * the network than the first restart alone. */
static void test_restarts_keep_worst_case(void **state)
{
	(void)state;
	struct nn_net *net = random_mlp(5, 0.3f); /* small weights: few flips */
	float x[MLP_BATCH * MLP_IN];
	int y[MLP_BATCH];
	random_inputs(6, x, y, MLP_BATCH, MLP_IN, MLP_OUT);
	enum { R = 4 };
	struct attack_recipe r = attack_recipe_pgd(ATTACK_NORM_INF, 0.02f, 3);
	r.random_start = true;
	r.restarts = R;
	r.labels = ATTACK_LABELS_PRED;
	struct attacker *a;
	assert_int_equal(attacker_new(net, &r, &a, NULL), SL_OK);
	attacker_begin(a, x, y, MLP_BATCH);
	float finals[R][MLP_BATCH];
	struct attack_view v;
	int restart = 0;
	bool more;
	do {
		more = attacker_step(a);
		attacker_view(a, &v);
		if (v.restart != restart || !more) {
			memcpy(finals[restart], v.loss, sizeof finals[0]);
			restart++;
		}
	} while (more);
	assert_int_equal(restart, R);
	int differ = 0, unfooled = 0;
	for (int row = 0; row < MLP_BATCH; row++) {
		float best = finals[0][row];
		for (int k = 1; k < R; k++) {
			best = finals[k][row] > best ? finals[k][row] : best;
			differ += finals[k][row] != finals[0][row];
		}
		/* A kept example that does not fool means no restart fooled it:
		 * then the highest loss wins. */
		if (v.pred_adv[row] == v.label[row]) {
			assert_true(v.loss_adv[row] == best);
			unfooled++;
		}
	}
	assert_true(unfooled > MLP_BATCH / 2);
	assert_true(differ > 0); /* the random starts did differ */
	attacker_free(a);

	/* A stronger net that some restarts fool: every example fooled by the
	 * first restart alone is still fooled with all four. */
	nn_free(net);
	net = random_mlp(5, 2.0f);
	r.eps = 0.1f;
	struct attack_recipe r1 = r;
	r1.restarts = 1;
	struct attacker *a1, *a4;
	assert_int_equal(attacker_new(net, &r1, &a1, NULL), SL_OK);
	assert_int_equal(attacker_new(net, &r, &a4, NULL), SL_OK);
	attacker_begin(a1, x, y, MLP_BATCH);
	attacker_finish(a1);
	attacker_begin(a4, x, y, MLP_BATCH);
	attacker_finish(a4);
	struct attack_view v1, v4;
	attacker_view(a1, &v1);
	attacker_view(a4, &v4);
	int fooled1 = 0, fooled4 = 0;
	for (int row = 0; row < MLP_BATCH; row++) {
		bool f1 = v1.pred_adv[row] != v1.label[row], f4 = v4.pred_adv[row] != v4.label[row];
		if (f1)
			assert_true(f4);
		if (f1 == f4 && !f1)
			assert_true(v4.loss_adv[row] >= v1.loss_adv[row]);
		fooled1 += f1;
		fooled4 += f4;
	}
	assert_true(fooled4 >= fooled1);
	attacker_free(a1);
	attacker_free(a4);
	nn_free(net);
}

/* Early stop freezes an example at its first fooling iterate: it stays
 * fooled, and examples never fooled follow the very same path. */
static void test_early_stop(void **state)
{
	(void)state;
	struct nn_net *net = random_mlp(7, 2.0f);
	float x[MLP_BATCH * MLP_IN];
	int y[MLP_BATCH];
	random_inputs(8, x, y, MLP_BATCH, MLP_IN, MLP_OUT);
	struct attack_recipe r = attack_recipe_pgd(ATTACK_NORM_2, 0.5f, 20);
	r.labels = ATTACK_LABELS_PRED;
	struct attack_recipe re = r;
	re.early_stop = true;
	struct attacker *a, *e;
	assert_int_equal(attacker_new(net, &r, &a, NULL), SL_OK);
	assert_int_equal(attacker_new(net, &re, &e, NULL), SL_OK);
	attacker_begin(a, x, y, MLP_BATCH);
	attacker_finish(a);
	attacker_begin(e, x, y, MLP_BATCH);
	attacker_finish(e);
	struct attack_view va, ve;
	attacker_view(a, &va);
	attacker_view(e, &ve);
	int fooled = 0;
	for (int row = 0; row < MLP_BATCH; row++) {
		bool fa = va.pred_adv[row] != va.label[row], fe = ve.pred_adv[row] != ve.label[row];
		if (fa)
			assert_true(fe);
		if (!fe)
			assert_memory_equal(va.adv + row * MLP_IN, ve.adv + row * MLP_IN,
					    sizeof(float) * MLP_IN);
		fooled += fe;
	}
	assert_true(fooled > 0);
	assert_true(ve.grad_evals < va.grad_evals); /* frozen rows cost nothing */
	attacker_free(a);
	attacker_free(e);
	nn_free(net);
}

/* A targeted attack descends the target's loss and counts its hits. */
static void test_targeted(void **state)
{
	(void)state;
	struct nn_net *net = random_mlp(11, 2.0f);
	float x[MLP_BATCH * MLP_IN];
	int y[MLP_BATCH];
	random_inputs(12, x, y, MLP_BATCH, MLP_IN, MLP_OUT);
	struct attack_recipe r = attack_recipe_pgd(ATTACK_NORM_INF, 0.3f, 30);
	r.target = ATTACK_TARGET_CLASS;
	r.target_class = 2;
	struct attacker *a;
	assert_int_equal(attacker_new(net, &r, &a, NULL), SL_OK);
	attacker_begin(a, x, y, MLP_BATCH);
	attacker_step(a);
	struct attack_view v;
	attacker_view(a, &v);
	float start[MLP_BATCH];
	memcpy(start, v.loss, sizeof start); /* minus the target's loss at x0 */
	attacker_finish(a);
	attacker_view(a, &v);
	assert_non_null(v.target);
	int hits = 0;
	for (int row = 0; row < MLP_BATCH; row++) {
		assert_int_equal(v.target[row], 2);
		assert_true(v.loss_adv[row] >= start[row] - 1e-4f);
		hits += v.pred_adv[row] == 2;
	}
	assert_true(hits > MLP_BATCH / 2);
	attacker_free(a);

	/* "next": towards label + 1. */
	r.target = ATTACK_TARGET_NEXT;
	assert_int_equal(attacker_new(net, &r, &a, NULL), SL_OK);
	attacker_begin(a, x, y, MLP_BATCH);
	attacker_view(a, &v);
	for (int row = 0; row < MLP_BATCH; row++)
		assert_int_equal(v.target[row], (y[row] + 1) % MLP_OUT);
	attacker_free(a);
	nn_free(net);
}

/* The labels the attack uses: the true ones or the clean predictions. */
static void test_label_source(void **state)
{
	(void)state;
	struct nn_net *net = random_mlp(13, 1.0f);
	float x[MLP_BATCH * MLP_IN];
	int y[MLP_BATCH];
	random_inputs(14, x, y, MLP_BATCH, MLP_IN, MLP_OUT);
	for (int src = 0; src < 2; src++) {
		struct attack_recipe r = attack_recipe_pgd(ATTACK_NORM_INF, 0.1f, 2);
		r.labels = (enum attack_labels)src;
		struct attacker *a;
		assert_int_equal(attacker_new(net, &r, &a, NULL), SL_OK);
		attacker_begin(a, x, y, MLP_BATCH);
		struct attack_view v;
		attacker_view(a, &v);
		int wrong = 0;
		for (int row = 0; row < MLP_BATCH; row++) {
			assert_int_equal(v.label[row], src == ATTACK_LABELS_TRUE ? y[row]
										 : v.pred_clean[row]);
			wrong += v.pred_clean[row] != y[row];
		}
		assert_true(wrong > 0); /* random labels: the two sources differ */
		attacker_free(a);
	}
	nn_free(net);
}

/* attack_input_gradient against central differences of each example's own
 * loss, on a leaky-ReLU MLP (in double-checked float). */
static void test_input_gradient_central_differences(void **state)
{
	(void)state;
	struct nn_net *net = random_mlp(15, 1.5f);
	enum { B = 5 };
	float x[B * MLP_IN], g[B * MLP_IN], loss[B], lp[B], lm[B], xp[B * MLP_IN];
	int y[B];
	random_inputs(16, x, y, B, MLP_IN, MLP_OUT);
	assert_int_equal(attack_input_gradient(net, x, y, B, g, loss), 0);
	float gcopy[B * MLP_IN];
	memcpy(gcopy, g, sizeof g);
	const float h = 1e-3f;
	float scratch[B * MLP_IN];
	for (int k = 0; k < MLP_IN; k++) {
		memcpy(xp, x, sizeof x);
		for (int r = 0; r < B; r++)
			xp[r * MLP_IN + k] += h;
		attack_input_gradient(net, xp, y, B, scratch, lp);
		memcpy(xp, x, sizeof x);
		for (int r = 0; r < B; r++)
			xp[r * MLP_IN + k] -= h;
		attack_input_gradient(net, xp, y, B, scratch, lm);
		for (int r = 0; r < B; r++) {
			double fd = ((double)lp[r] - lm[r]) / (2 * h);
			assert_close(gcopy[r * MLP_IN + k], fd, 2e-3 + 1e-2 * fabs(fd));
		}
	}
	nn_free(net);
}

/* Metrics on a tiny dataset: the rates follow from the counts. */
static void test_eval_metrics(void **state)
{
	(void)state;
	static const struct nn_layer_spec one[] = {{.kind = NN_DENSE, .in = 4, .out = 10, .act = NN_ACT_IDENTITY}};
	struct nn_net *net;
	assert_int_equal(nn_new(one, 1, 2, &net, NULL), SL_OK);
	/* Class 0 iff pixel 0 is bright, else class 1; a small push flips it. */
	struct nn_layer *l = &net->layers[0];
	l->w[0 * 4 + 0] = 1.0f;
	l->w[1 * 4 + 0] = -1.0f;
	uint8_t pixels[5 * 4] = {255, 0, 0, 0, 140, 0, 0, 0, 0, 0, 0, 0, 120, 0, 0, 0,
				 255, 0, 0, 0};
	uint8_t labels[5] = {0, 0, 1, 1, 1};
	struct sl_dataset ds = {.n = 5, .c = 1, .h = 2, .w = 2, .classes = 10,
				.pixels = pixels, .labels = labels, .owned = false};
	struct attack_result r;
	assert_int_equal(attack_eval_fgsm(net, &ds, 0, 0.1f, &r, NULL), SL_OK);
	/* Clean: x0 = v/255 - 0.5: 0.5 -> 0 ok, 0.049 -> 0 ok, -0.5 -> 1 ok,
	 * -0.029 -> 1 ok, 0.5 -> 0 wrong.  After eps 0.1: the two near zero flip. */
	assert_int_equal(r.n, 5);
	assert_int_equal(r.clean_correct, 4);
	assert_int_equal(r.robust_correct, 2);
	assert_int_equal(r.adv_correct, 2);
	assert_close(r.clean_accuracy, 0.8, 1e-12);
	assert_close(r.robust_accuracy, 0.4, 1e-12);
	assert_close(r.attack_success_rate, 0.5, 1e-12);
	/* Every example moves eps in pixel 0 only (the other weights are 0 and
	 * their gradients exactly zero), except where the box stops it. */
	assert_close(r.linf_max, 0.1, 1e-6);
	assert_close(r.l2_max, 0.1, 1e-6);
	assert_int_equal(r.fooled, 2);
	assert_int_equal(r.fooled_8bit, 2);
	assert_int_equal(r.one_step_robust_correct, -1);
	assert_true(r.seconds >= 0);
	struct sl_error err;
	assert_int_equal(attack_eval_fgsm(net, &ds, 0, -0.1f, &r, &err), SL_ERR_ARG);
	nn_free(net);
}

/* One input, hidden ReLUs a = relu(x), b = relu(x - 0.2), and
 * z1 - z0 = 2a - 4b - 0.1: class 1 only for x in (0.05, 0.35), and below 0
 * the gradient is exactly zero. */
static struct nn_net *band_net(int batch)
{
	static const struct nn_layer_spec specs[] = {
		{.kind = NN_DENSE, .in = 1, .out = 2, .act = NN_ACT_LEAKY_RELU},
		{.kind = NN_DENSE, .in = 2, .out = 2, .act = NN_ACT_IDENTITY},
	};
	struct nn_net *net;
	assert_int_equal(nn_new(specs, 2, batch, &net, NULL), SL_OK);
	struct nn_layer *h = &net->layers[0], *o = &net->layers[1];
	h->w[0] = 1, h->w[1] = 1, h->b[0] = 0, h->b[1] = -0.2f;
	o->w[0] = 0, o->w[1] = 0, o->b[0] = 0;
	o->w[2] = 2, o->w[3] = -4, o->b[1] = -0.1f;
	return net;
}

/* The sanity flags fire where they should: a larger eps overshoots the band
 * (accuracy rises), random starts below 0 find no gradient (PGD weaker than
 * FGSM, many zero gradients). */
static void test_sanity_flags(void **state)
{
	(void)state;
	enum { N = 64 };
	struct nn_net *net = band_net(16);
	uint8_t pixels[N], labels[N];
	memset(pixels, 130, sizeof pixels); /* x = 0.0098: class 0, correct */
	memset(labels, 0, sizeof labels);
	struct sl_dataset ds = {.n = N, .c = 1, .h = 1, .w = 1, .classes = 2,
				.pixels = pixels, .labels = labels, .owned = false};
	struct attack_recipe r = attack_recipe_fgsm(0);
	float eps[3] = {0.4f, 0.0f, 0.1f}; /* out of order on purpose */
	struct attack_result res[3];
	assert_int_equal(attack_sweep(net, &ds, 0, &r, eps, 3, NULL, NULL, res, NULL), SL_OK);
	assert_int_equal(res[1].robust_correct, N);
	assert_int_equal(res[2].robust_correct, 0);  /* 0.11: in the band */
	assert_int_equal(res[0].robust_correct, N);  /* 0.41: past it */
	assert_true(res[0].flags & ATTACK_FLAG_NOT_FALLING);
	assert_false(res[1].flags & ATTACK_FLAG_NOT_FALLING);
	assert_false(res[2].flags & ATTACK_FLAG_NOT_FALLING);
	char text[256];
	attack_flags_describe(res[0].flags, text, sizeof text);
	assert_non_null(strstr(text, "rose with eps"));

	r = attack_recipe_pgd(ATTACK_NORM_INF, 0, 3);
	r.random_start = true;
	float e = 0.25f;
	struct attack_result p;
	assert_int_equal(attack_sweep(net, &ds, 0, &r, &e, 1, NULL, NULL, &p, NULL), SL_OK);
	assert_int_equal(p.one_step_robust_correct, 0); /* FGSM lands in the band */
	assert_true(p.robust_correct > 0);              /* starts below 0 stay there */
	assert_true(p.flags & ATTACK_FLAG_WEAKER_THAN_ONE_STEP);
	assert_true(p.flags & ATTACK_FLAG_ZERO_GRADIENTS);
	assert_true(p.zero_grad > 0);
	assert_int_equal(p.grad_evals, 3 * N);
	nn_free(net);
}

/* Unclipped adversarials can live outside the box; stored as bytes they are
 * clipped back and may stop fooling.  The sweep counts it. */
static void test_8bit_survival(void **state)
{
	(void)state;
	static const struct nn_layer_spec one[] = {{.kind = NN_DENSE, .in = 1, .out = 2, .act = NN_ACT_IDENTITY}};
	struct nn_net *net;
	assert_int_equal(nn_new(one, 1, 4, &net, NULL), SL_OK);
	/* z1 - z0 = 10 (x - 0.55): class 1 only outside the box. */
	net->layers[0].w[1] = 10;
	net->layers[0].b[1] = -5.5f;
	uint8_t pixels[2] = {255, 250}, labels[2] = {0, 0};
	struct sl_dataset ds = {.n = 2, .c = 1, .h = 1, .w = 1, .classes = 2,
				.pixels = pixels, .labels = labels, .owned = false};
	struct attack_recipe r = attack_recipe_fgsm(0);
	r.clip = false;
	float eps = 0.1f;
	struct attack_result res;
	assert_int_equal(attack_sweep(net, &ds, 0, &r, &eps, 1, NULL, NULL, &res, NULL), SL_OK);
	assert_int_equal(res.clean_correct, 2);
	assert_int_equal(res.fooled, 2);
	assert_int_equal(res.fooled_8bit, 0);
	r.clip = true;
	assert_int_equal(attack_sweep(net, &ds, 0, &r, &eps, 1, NULL, NULL, &res, NULL), SL_OK);
	assert_int_equal(res.fooled, 0);
	nn_free(net);
}

/* The sweep repeats exactly (random starts reseeded per eps) and calls back
 * once per batch. */
static sl_status count_batches(void *ctx, const struct attack_progress *p,
			       struct sl_error *err)
{
	int *calls = ctx;
	(*calls)++;
	assert_true(p->done <= p->n);
	assert_non_null(p->view);
	if (*calls == 100)
		return status_set(err, SL_ERR_CANCELLED, "stop");
	return SL_OK;
}

static void test_sweep_repeats_and_reports(void **state)
{
	(void)state;
	enum { N = 50 };
	struct nn_net *net = random_mlp(17, 2.0f);
	uint8_t pixels[N * MLP_IN], labels[N];
	struct sl_rng rng;
	rng_seed(&rng, 18);
	for (int k = 0; k < N * MLP_IN; k++)
		pixels[k] = (uint8_t)rng_below(&rng, 256);
	for (int k = 0; k < N; k++)
		labels[k] = (uint8_t)rng_below(&rng, MLP_OUT);
	struct sl_dataset ds = {.n = N, .c = 1, .h = 1, .w = MLP_IN, .classes = MLP_OUT,
				.pixels = pixels, .labels = labels, .owned = false};
	struct attack_recipe r = attack_recipe_pgd(ATTACK_NORM_2, 0, 5);
	r.random_start = true;
	r.labels = ATTACK_LABELS_PRED;
	float eps[2] = {0.2f, 0.5f};
	struct attack_result a[2], b[2];
	int calls = 0;
	assert_int_equal(attack_sweep(net, &ds, 0, &r, eps, 2, count_batches, &calls, a, NULL),
			 SL_OK);
	assert_int_equal(calls, 2 * 3); /* 50 examples in batches of 24 */
	assert_int_equal(attack_sweep(net, &ds, 0, &r, eps, 2, NULL, NULL, b, NULL), SL_OK);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(a[i].robust_correct, b[i].robust_correct);
		assert_close(a[i].l2_mean, b[i].l2_mean, 0);
		assert_true(a[i].l2_max <= eps[i] * (1 + 1e-6));
		assert_true(a[i].l2_mean <= a[i].l2_max);
		assert_true(a[i].linf_max <= a[i].l2_max + 1e-9);
		assert_int_equal(a[i].clean_correct, a[0].clean_correct);
		assert_true(a[i].one_step_robust_correct >= 0);
	}
	/* The callback can stop the sweep. */
	calls = 95;
	struct sl_error err;
	assert_int_equal(attack_sweep(net, &ds, 0, &r, eps, 2, count_batches, &calls, a, &err),
			 SL_ERR_CANCELLED);
	/* n limits the images. */
	assert_int_equal(attack_sweep(net, &ds, 7, &r, eps, 1, NULL, NULL, a, NULL), SL_OK);
	assert_int_equal(a[0].n, 7);
	nn_free(net);
}

/* Every bad recipe and mismatch is refused, naming what is wrong. */
static void test_bad_arguments(void **state)
{
	(void)state;
	struct nn_net *net = hand_net();
	struct sl_error err;
	struct attacker *a = NULL;
	struct {
		struct attack_recipe r;
		const char *says;
	} cases[12];
	int n = 0;
	cases[n].r = attack_recipe_fgsm(-0.1f), cases[n++].says = "eps must be";
	cases[n].r = attack_recipe_fgsm(NAN), cases[n++].says = "eps must be";
	cases[n].r = attack_recipe_pgd(ATTACK_NORM_INF, 0.1f, 0), cases[n++].says = "steps must be";
	cases[n].r = attack_recipe_pgd(ATTACK_NORM_INF, 0.1f, 10);
	cases[n].r.restarts = 0, cases[n++].says = "restarts must be";
	cases[n].r = attack_recipe_pgd(ATTACK_NORM_INF, 0.1f, 10);
	cases[n].r.step_size = -1, cases[n++].says = "step size";
	cases[n].r = attack_recipe_fgsm(0.1f);
	cases[n].r.norm = ATTACK_NORM_2, cases[n++].says = "fgsm is the L-infinity attack";
	cases[n].r = attack_recipe_fgm(0.1f);
	cases[n].r.norm = ATTACK_NORM_INF, cases[n++].says = "fgm is the L2 attack";
	cases[n].r = attack_recipe_fgsm(0.1f);
	cases[n].r.steps = 5, cases[n++].says = "need pgd";
	cases[n].r = attack_recipe_fgm(0.1f);
	cases[n].r.random_start = true, cases[n++].says = "need pgd";
	cases[n].r = attack_recipe_pgd(ATTACK_NORM_2, 0.1f, 10);
	cases[n].r.target = ATTACK_TARGET_CLASS;
	cases[n].r.target_class = 2, cases[n++].says = "target class 2";
	for (int i = 0; i < n; i++) {
		status_clear(&err);
		if (attacker_new(net, &cases[i].r, &a, &err) != SL_ERR_ARG || a ||
		    !strstr(err.msg, cases[i].says))
			fail_msg("case %d: '%s' lacks '%s'", i, err.msg, cases[i].says);
	}
	/* A dataset the network does not take. */
	uint8_t pixels[4] = {0}, labels[1] = {0};
	struct sl_dataset ds = {.n = 1, .c = 1, .h = 2, .w = 2, .classes = 2,
				.pixels = pixels, .labels = labels, .owned = false};
	struct attack_recipe r = attack_recipe_fgsm(0.1f);
	float eps = 0.1f, bad = -1;
	struct attack_result res;
	assert_int_equal(attack_sweep(net, &ds, 0, &r, &eps, 1, NULL, NULL, &res, &err), SL_ERR_ARG);
	assert_non_null(strstr(err.msg, "network takes 3"));
	ds.w = 3, ds.h = 1;
	ds.classes = 10;
	assert_int_equal(attack_sweep(net, &ds, 0, &r, &eps, 1, NULL, NULL, &res, &err), SL_ERR_ARG);
	assert_non_null(strstr(err.msg, "10 classes"));
	ds.classes = 2;
	assert_int_equal(attack_sweep(net, &ds, 0, &r, &bad, 1, NULL, NULL, &res, &err), SL_ERR_ARG);
	assert_int_equal(attack_sweep(net, &ds, 0, &r, &eps, 0, NULL, NULL, &res, &err), SL_ERR_ARG);
	nn_free(net);
}

static void test_presets_and_text(void **state)
{
	(void)state;
	struct attack_recipe r;
	assert_int_equal(attack_preset("paper-code", &r, NULL), SL_OK);
	assert_int_equal(r.kind, ATTACK_PGD);
	assert_int_equal(r.norm, ATTACK_NORM_2);
	assert_int_equal(r.steps, 100);
	assert_false(r.random_start);
	assert_false(r.clip);
	assert_int_equal(r.labels, ATTACK_LABELS_PRED);
	r.eps = 1.5f;
	assert_close(attack_step_size(&r), 2 * 1.5 / 100, 1e-7); /* 2 eps / 100 */
	char text[512];
	attack_recipe_describe(&r, true, text, sizeof text);
	assert_string_equal(text, "PGD L2 eps 1.5: 100 steps of 2 eps/100, no random start, "
				  "1 restart, predicted labels, not clipped, seed 1");
	attack_recipe_json(&r, true, text, sizeof text);
	assert_string_equal(text, "\"attack\":\"pgd\",\"norm\":\"2\",\"eps\":1.5,\"steps\":100,"
				  "\"step_size\":\"2*eps/100\",\"random_start\":false,"
				  "\"restarts\":1,\"labels\":\"pred\",\"clip\":false,"
				  "\"early_stop\":false,\"target\":null,\"seed\":1");

	assert_int_equal(attack_preset("madry", &r, NULL), SL_OK);
	assert_int_equal(r.norm, ATTACK_NORM_INF);
	assert_close(r.eps, 0.3, 1e-7);
	assert_int_equal(r.steps, 40);
	assert_close(attack_step_size(&r), 0.01, 1e-9);
	assert_true(r.random_start && r.clip);
	attack_recipe_describe(&r, true, text, sizeof text);
	assert_string_equal(text, "PGD L-inf eps 0.3: 40 steps of 0.01, random start, 1 restart, "
				  "true labels, clipped to [-0.5, 0.5], seed 1");
	struct sl_error err;
	assert_int_equal(attack_preset("cw", &r, &err), SL_ERR_ARG);
	assert_non_null(strstr(err.msg, "unknown preset 'cw'"));

	enum attack_norm nm;
	enum attack_kind k;
	enum attack_labels lb;
	assert_int_equal(attack_norm_parse("inf", &nm, NULL), SL_OK);
	assert_int_equal(attack_norm_parse("2", &nm, NULL), SL_OK);
	assert_int_equal(nm, ATTACK_NORM_2);
	assert_int_equal(attack_norm_parse("1", &nm, &err), SL_ERR_ARG);
	assert_non_null(strstr(err.msg, "unknown norm '1'"));
	assert_int_equal(attack_kind_parse("fgm", &k, NULL), SL_OK);
	assert_int_equal(k, ATTACK_FGM);
	assert_int_equal(attack_kind_parse("cw", &k, &err), SL_ERR_ARG);
	assert_int_equal(attack_labels_parse("pred", &lb, NULL), SL_OK);
	assert_int_equal(lb, ATTACK_LABELS_PRED);
	assert_int_equal(attack_labels_parse("gold", &lb, &err), SL_ERR_ARG);
}

/* What a sweep kept for each image: its adversarial and prediction. */
struct kept {
	int dim;
	float *adv;  /* (n, dim) */
	int *pred;   /* (n) */
};

static sl_status keep_adv(void *ctx, const struct attack_progress *p, struct sl_error *err)
{
	struct kept *k = ctx;
	(void)err;
	memcpy(k->adv + (size_t)p->start * k->dim, p->view->adv,
	       sizeof(float) * (size_t)p->view->batch * k->dim);
	memcpy(k->pred + p->start, p->view->pred_adv, sizeof(int) * (size_t)p->view->batch);
	return SL_OK;
}

/* The step-through of one image takes attacker_step's steps: its last
 * entry (the kept one over restarts) is bit for bit what attack_sweep keeps
 * for that image alone, random starts and restarts included; without a
 * random start it also matches the image attacked in a batch of eight.
 * Every entry stays in the ball; entry 0 is the clean image. */
static void test_trace_agrees_with_sweep(void **state)
{
	(void)state;
	struct sl_dataset test;
	assert_int_equal(data_load(DATA_MNIST, tu_sample_data(), false, &test, NULL), SL_OK);
	struct arch arch = train_config_default().arch; /* the paper's MLP */
	assert_int_equal(arch_fit_input(&arch, (struct nn_shape){1, 28, 28}, NULL), SL_OK);
	struct nn_net *net;
	assert_int_equal(arch_build(&arch, 8, &net, NULL), SL_OK);
	struct sl_rng rng;
	rng_seed(&rng, 3);
	nn_init_glorot(net, &rng);
	enum { N = 8 };
	int dim = net->in_dim;
	struct attack_recipe recipes[4];
	recipes[0] = attack_recipe_pgd(ATTACK_NORM_INF, 0.1f, 10);
	recipes[0].random_start = true;
	recipes[0].restarts = 3;
	assert_int_equal(attack_preset("paper-code", &recipes[1], NULL), SL_OK);
	recipes[1].eps = 1.0f;
	recipes[1].steps = 20;
	recipes[2] = attack_recipe_fgsm(0.1f);
	recipes[3] = attack_recipe_pgd(ATTACK_NORM_2, 1.5f, 7);
	recipes[3].target = ATTACK_TARGET_NEXT;
	float x[N * 784];
	int y[N];
	data_batch(&test, NULL, N, x, y);
	struct kept batch = {dim, malloc(sizeof(float) * N * dim), malloc(sizeof(int) * N)};
	struct kept one = {dim, malloc(sizeof(float) * dim), malloc(sizeof(int))};
	for (int q = 0; q < 4; q++) {
		const struct attack_recipe *r = &recipes[q];
		struct attack_result res;
		assert_int_equal(attack_sweep(net, &test, N, r, &r->eps, 1, keep_adv, &batch, &res,
					      NULL), SL_OK);
		for (int i = 0; i < N; i++) {
			struct sl_dataset view;
			assert_int_equal(data_view(&test, (uint32_t)i, 1, &view, NULL), SL_OK);
			assert_int_equal(attack_sweep(net, &view, 1, r, &r->eps, 1, keep_adv, &one,
						      &res, NULL), SL_OK);
			struct attack_trace t;
			const float *x0 = x + (size_t)i * dim;
			assert_int_equal(attack_trace_run(net, r, x0, y[i], NULL, NULL, &t, NULL),
					 SL_OK);
			assert_int_equal(t.n, r->restarts * (r->steps + 1));
			assert_memory_equal(t.adv, one.adv, sizeof(float) * (size_t)dim);
			assert_int_equal(t.pred_adv, one.pred[0]);
			assert_true(t.kept >= 0);
			assert_int_equal(t.kept % (t.steps + 1), t.steps);
			assert_int_equal(t.pred[t.kept], t.pred_adv);
			for (int e = 0; e < t.n; e++)
				assert_true(row_dist(t.x + (size_t)e * dim, x0, dim, r->norm) <=
					    r->eps * (1 + 1e-6) + 1e-7);
			if (!r->random_start) {
				assert_memory_equal(t.x, x0, sizeof(float) * (size_t)dim);
				assert_int_equal(t.pred[0], t.pred_clean);
				assert_true(row_dist(t.adv, batch.adv + (size_t)i * dim, dim,
						     ATTACK_NORM_INF) <= 1e-6);
				assert_int_equal(t.pred_adv, batch.pred[i]);
			}
			if (r->target == ATTACK_TARGET_NEXT)
				assert_int_equal(t.target, (t.label + 1) % 10);
			attack_trace_free(&t);
		}
	}
	/* Too long a trace is refused; stopping says where. */
	struct attack_recipe big = attack_recipe_pgd(ATTACK_NORM_INF, 0.1f, 100000);
	struct attack_trace t;
	struct sl_error err;
	assert_int_equal(attack_trace_run(net, &big, x, y[0], NULL, NULL, &t, &err),
			 SL_ERR_TOO_LARGE);
	free(batch.adv);
	free(batch.pred);
	free(one.adv);
	free(one.pred);
	nn_free(net);
	data_free(&test);
}

static bool stop_at_five(void *ctx, int done, int total)
{
	(void)ctx;
	(void)total;
	return done < 5;
}

static void test_trace_stops(void **state)
{
	(void)state;
	struct nn_net *net = random_mlp(3, 1.0f);
	float x[MLP_IN];
	int y;
	random_inputs(4, x, &y, 1, MLP_IN, MLP_OUT);
	struct attack_recipe r = attack_recipe_pgd(ATTACK_NORM_INF, 0.1f, 10);
	struct attack_trace t;
	struct sl_error err;
	assert_int_equal(attack_trace_run(net, &r, x, y, stop_at_five, NULL, &t, &err),
			 SL_ERR_CANCELLED);
	assert_non_null(strstr(err.msg, "5 of 11"));
	assert_null(t.x);
	nn_free(net);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fgsm_definition),
		cmocka_unit_test(test_fgm_definition),
		cmocka_unit_test(test_fgsm_stays_in_box),
		cmocka_unit_test(test_zero_gradient_counted),
		cmocka_unit_test(test_pgd_stays_in_ball_and_box),
		cmocka_unit_test(test_pgd_loss_never_falls),
		cmocka_unit_test(test_restarts_keep_worst_case),
		cmocka_unit_test(test_early_stop),
		cmocka_unit_test(test_targeted),
		cmocka_unit_test(test_label_source),
		cmocka_unit_test(test_input_gradient_central_differences),
		cmocka_unit_test(test_eval_metrics),
		cmocka_unit_test(test_sanity_flags),
		cmocka_unit_test(test_8bit_survival),
		cmocka_unit_test(test_sweep_repeats_and_reports),
		cmocka_unit_test(test_bad_arguments),
		cmocka_unit_test(test_presets_and_text),
		cmocka_unit_test(test_trace_agrees_with_sweep),
		cmocka_unit_test(test_trace_stops),
	};
	return cmocka_run_group_tests_name("attack", tests, NULL, NULL);
}
