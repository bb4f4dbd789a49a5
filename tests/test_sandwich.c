/* test_sandwich: every bound of a trained MNIST network in one sandwich,
 * attacked inside its certified radii; the constant network; the rounding
 * allowance of the forward pass against a double-precision evaluation. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sectorlab/arch.h"
#include "sectorlab/bounds.h"
#include "sectorlab/certify.h"
#include "sectorlab/data.h"
#include "sectorlab/model.h"
#include "sectorlab/rng.h"
#include "sectorlab/sandwich.h"
#include "sectorlab/train.h"
#include "testutil.h"

static const struct certify_options paper = {.nu = -2, .delta = 0.4};

/* A vanilla MLP trained for one epoch on the embedded sample. */
static struct trainer *trained_mlp(struct sl_dataset *train, struct sl_dataset *test)
{
	assert_int_equal(data_load(DATA_MNIST, tu_sample_data(), true, train, NULL), SL_OK);
	assert_int_equal(data_load(DATA_MNIST, tu_sample_data(), false, test, NULL), SL_OK);
	struct train_config cfg = train_config_default();
	cfg.holdout = 0;
	cfg.epochs = 1;
	struct trainer *t;
	struct sl_error err;
	if (trainer_new(&cfg, train, test, &t, &err) != SL_OK)
		fail_msg("trainer_new: %s", err.msg);
	struct train_step_info info;
	bool done = false;
	while (t->epoch < cfg.epochs) {
		if ((trainer_ending(t) ? trainer_end_step(t, &done, &err)
				       : trainer_step(t, &info, &err)) != SL_OK)
			fail_msg("training: %s", err.msg);
	}
	return t;
}

/* floor <= sdp <= product, the pair tables below sqrt(2) times their network
 * bounds, and no image flipped by PGD inside its certified radius under any
 * bound (nor the shortest flip found below it).  The tightest sector's search
 * (16 SDPs of order 220) is left to test_bounds' tiny networks, where it is
 * checked against brute force, and to certify's own flip check. */
static void test_mlp_sound(void **state)
{
	(void)state;
	struct sl_dataset train, test;
	struct trainer *t = trained_mlp(&train, &test);
	struct nn_net *net = t->net;
	struct certificate c;
	assert_int_equal(certify_network(net, &paper, &c, NULL), SL_OK);
	struct sandwich sw;
	struct sandwich_options o = {.sdp = true, .sdp_pairs = true, .floor_starts = 40,
				     .floor_steps = 20, .seed = 1};
	struct sl_error err;
	if (sandwich_compute(net, &c, &test, &o, &sw, &err) != SL_OK)
		fail_msg("%s", err.msg);
	for (int k = 0; k < SANDWICH_NKINDS; k++)
		if (sw.b[k].state != SANDWICH_COMPUTED && k != SANDWICH_SECTOR)
			fail_msg("%s: %s", sandwich_kind_name((enum sandwich_kind)k), sw.b[k].note);
	double fl = sw.floor_L, sdp = sw.b[SANDWICH_SDP].L, prod = sw.b[SANDWICH_PRODUCT].L;
	print_message("floor %g, sdp %g, product %g\n", fl, sdp, prod);
	assert_true(fl > 0 && fl <= sdp && sdp <= prod * (1 + 1e-9));
	/* each layer's gain floor under its norm; the layers are wide, so
	 * every unit can be on at once and the floor reaches the norm */
	assert_int_equal(sw.nlayer_floor, 3);
	for (int i = 0; i < 3; i++) {
		print_message("%s: gain floor %.9g, norm %.9g\n", c.layer[i].name, sw.layer_floor[i],
			      c.layer[i].sigma);
		assert_true(sw.layer_floor[i] <= c.layer[i].sigma * (1 + 1e-6));
		assert_true(sw.layer_floor[i] >= c.layer[i].sigma * (1 - 1e-5));
	}
	int k10 = 100;
	for (int i = 0; i < k10; i++) {
		if (i / 10 == i % 10)
			continue;
		assert_true(sw.b[SANDWICH_SDP_PAIR].pair[i] <= sqrt(2) * sdp * (1 + 1e-6));
		assert_true(sw.b[SANDWICH_PAIR].pair[i] <= sqrt(2) * prod * (1 + 1e-9));
	}

	enum { N = 120 };
	const double *tables[SANDWICH_NKINDS + 1];
	double *rad[SANDWICH_NKINDS + 1];
	double best[100];
	assert_int_equal(sandwich_table(&sw, SANDWICH_USE_BEST, best, NULL), SL_OK);
	for (int k = 0; k < SANDWICH_NKINDS; k++) /* the sector (not computed): product */
		tables[k] = sw.b[k].pair ? sw.b[k].pair : sw.b[SANDWICH_PRODUCT].pair;
	tables[SANDWICH_NKINDS] = best;
	for (int k = 0; k <= SANDWICH_NKINDS; k++)
		rad[k] = malloc(sizeof(double) * N);
	bool ok[N];
	int got;
	assert_int_equal(certify_radii_tables(net, &test, N, SANDWICH_NKINDS + 1, tables, rad, ok,
					      &got, NULL),
			 SL_OK);
	float *x = malloc(sizeof(float) * N * 784);
	int y[N];
	uint32_t idx[N];
	for (int i = 0; i < N; i++)
		idx[i] = (uint32_t)i;
	data_batch(&test, idx, N, x, y);
	struct bounds_flip_options fo = {.steps = 30, .restarts = 1, .bisections = 5,
					 .eps_start = 0.25, .eps_max = 8, .seed = 3};
	int certified = 0;
	for (int k = 0; k <= SANDWICH_NKINDS; k++) {
		bool flipped[N];
		int fb = 0;
		for (int i = 0; i < N; i++) {
			certified += rad[k][i] > 0;
			/* attack just inside the radius (a certified image only) */
			rad[k][i] = rad[k][i] > 0 ? rad[k][i] * (1 - 1e-6) : 0;
		}
		for (int start = 0; start < N; start += net->max_batch) {
			int b = N - start < net->max_batch ? N - start : net->max_batch;
			fb += bounds_attack_inside(net, x + (size_t)start * 784, y + start, b,
						   rad[k] + start, &fo, flipped);
		}
		if (fb != 0)
			fail_msg("%d images flipped inside their radius under bound %d", fb, k);
	}
	assert_true(certified > 0);
	double flip[N];
	for (int start = 0; start < N; start += net->max_batch) {
		int b = N - start < net->max_batch ? N - start : net->max_batch;
		assert_int_equal(bounds_flip_radius(net, x + (size_t)start * 784, y + start, b, &fo,
						    flip + start, NULL),
				 SL_OK);
	}
	for (int i = 0; i < N; i++)
		if (rad[SANDWICH_NKINDS][i] > flip[i])
			fail_msg("image %d: certified %g, flipped at %g", i, rad[SANDWICH_NKINDS][i],
				 flip[i]);
	for (int k = 0; k <= SANDWICH_NKINDS; k++)
		free(rad[k]);
	free(x);
	sandwich_free(&sw);
	trainer_free(t);
	data_free(&train);
	data_free(&test);
}

/* A network with an all-zero layer is constant: every bound is 0 and every
 * correctly classified image is certified at every radius. */
static void test_constant_network(void **state)
{
	(void)state;
	struct sl_dataset test;
	assert_int_equal(data_load(DATA_MNIST, tu_sample_data(), false, &test, NULL), SL_OK);
	struct arch mlp;
	model_get(MODEL_MLP, &mlp);
	struct nn_net *net;
	assert_int_equal(arch_build(&mlp, 64, &net, NULL), SL_OK);
	struct sl_rng rng;
	rng_seed(&rng, 1);
	nn_init_glorot(net, &rng);
	struct nn_layer *fc2 = &net->layers[nn_find_layer(net, "fc2")];
	memset(fc2->w, 0, sizeof(float) * nn_layer_wsize(fc2));
	for (int k = 0; k < fc2->out; k++)
		fc2->b[k] = 0.1f * (float)(k % 3);
	struct certificate c;
	struct sl_error err;
	if (certify_network(net, &paper, &c, &err) != SL_OK)
		fail_msg("certify_network: %s", err.msg);
	assert_true(c.gamma_product == 0);
	struct sandwich sw;
	struct sandwich_options o = {.sdp = true, .sdp_pairs = true, .sector = true,
				     .floor_starts = 10, .floor_steps = 5};
	if (sandwich_compute(net, &c, &test, &o, &sw, &err) != SL_OK)
		fail_msg("sandwich: %s", err.msg);
	assert_true(sw.constant);
	double best[100];
	assert_int_equal(sandwich_table(&sw, SANDWICH_USE_BEST, best, NULL), SL_OK);
	struct certify_accuracy a = {.nradii = 1, .radius = {1e9}};
	assert_int_equal(certify_accuracy_pairs(net, best, &test, 200, a.radius, 1, &a, NULL),
			 SL_OK);
	assert_true(a.clean > 0);
	assert_true(a.certified[0] == a.clean); /* certified at any radius */
	sandwich_free(&sw);
	nn_free(net);
	data_free(&test);
}

/* The rounding allowance covers the float forward pass's real error (against
 * the same weights in double), and a margin below it certifies nothing. */
static void test_rounding(void **state)
{
	(void)state;
	struct arch mlp;
	model_get(MODEL_MLP, &mlp);
	struct nn_net *net;
	assert_int_equal(arch_build(&mlp, 32, &net, NULL), SL_OK);
	struct sl_rng rng;
	rng_seed(&rng, 2);
	nn_init_glorot(net, &rng);
	for (size_t k = 0; k < net->nparams; k++)
		net->params[k] *= 3; /* larger weights, larger errors */
	for (int i = 0; i < net->nlayers; i++)
		if (nn_layer_weighted(&net->layers[i]))
			for (int k = 0; k < net->layers[i].out; k++)
				net->layers[i].b[k] = rng_normal(&rng);
	struct bounds_mlp m;
	assert_int_equal(bounds_mlp_from_net(net, &m, NULL), SL_OK);
	struct certify_rounding rd;
	assert_int_equal(certify_rounding_setup(net, &rd, NULL), SL_OK);
	assert_true(rd.derived);
	float x[32 * 784];
	for (int k = 0; k < 32 * 784; k++)
		x[k] = rng_uniform(&rng) - 0.5f;
	const float *z = nn_forward(net, x, 32);
	double worst = 0;
	for (int r = 0; r < 32; r++) {
		double xd[784], zd[10], e2 = 0;
		for (int k = 0; k < 784; k++)
			xd[k] = x[r * 784 + k];
		bounds_mlp_forward(&m, xd, zd);
		for (int c = 0; c < 10; c++)
			e2 += (z[r * 10 + c] - zd[c]) * (z[r * 10 + c] - zd[c]);
		double bound = certify_rounding_error(net, &rd, r);
		assert_true(sqrt(e2) <= bound);
		worst = fmax(worst, sqrt(e2) / bound);
	}
	print_message("largest error / allowance: %.3g\n", worst);
	/* Two logits 1e-9 apart: classified, but certified at no radius. */
	float logits[10] = {0};
	logits[3] = 1.0f;
	logits[5] = nextafterf(1.0f, 0.0f);
	int y = 3;
	double pair[100], radius;
	bool correct;
	certify_pairs_from_gamma(1.0, 10, pair);
	nn_forward(net, x, 1); /* the allowance reads this pass's activations */
	certify_batch_radii(net, &rd, logits, &y, 1, pair, &radius, &correct);
	assert_true(correct);
	assert_true(radius == 0);
	/* and counted as lost to the rounding, unlike a wrong example or one
	 * with a radius */
	struct certify_accuracy a = {.nradii = 1, .radius = {0.1}};
	certify_summarize(&radius, &correct, 1, &a);
	assert_true(a.clean == 1 && a.certified[0] == 0 && a.rounding_lost == 1);
	const double radii[4] = {0, 0, 0.3, 0};
	const bool right[4] = {true, false, true, true};
	assert_true(certify_rounding_lost(radii, right, 4) == 0.5);
	bounds_mlp_free(&m);
	nn_free(net);
}

/* One prediction for every command: an example's logits are the same bits
 * whatever batch it is evaluated in (train, attack and certify use different
 * batch sizes), so near-ties are classified alike everywhere. */
static void test_batch_invariance(void **state)
{
	(void)state;
	struct arch mlp;
	model_get(MODEL_MLP, &mlp);
	struct nn_net *net;
	assert_int_equal(arch_build(&mlp, 64, &net, NULL), SL_OK);
	struct sl_rng rng;
	rng_seed(&rng, 4);
	nn_init_glorot(net, &rng);
	enum { B = 37 };
	float *x = malloc(sizeof(float) * B * 784), all[B * 10];
	for (int k = 0; k < B * 784; k++)
		x[k] = rng_uniform(&rng) - 0.5f;
	memcpy(all, nn_forward(net, x, B), sizeof all);
	for (int start = 0; start < B; start += 5) { /* groups of 5 and one alone */
		int n = B - start < 5 ? B - start : 5;
		assert_memory_equal(nn_forward(net, x + (size_t)start * 784, n), all + start * 10,
				    sizeof(float) * (size_t)n * 10);
		assert_memory_equal(nn_forward(net, x + (size_t)start * 784, 1), all + start * 10,
				    sizeof(float) * 10);
	}
	free(x);
	nn_free(net);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mlp_sound),
		cmocka_unit_test(test_constant_network),
		cmocka_unit_test(test_rounding),
		cmocka_unit_test(test_batch_invariance),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
