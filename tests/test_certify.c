/* Tests for certify: hand-checked certificates, pooling, and the promise
 * that matters: no attack breaks a radius the certificate claims. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sectorlab/attack.h"
#include "sectorlab/certify.h"
#include "sectorlab/linalg.h"
#include "sectorlab/spectral.h"
#include "sectorlab/train.h"
#include "testutil.h"

static const struct certify_options paper = {.nu = -2, .delta = 0.4,
					     .objective = SECTOR_OBJ_PRODUCT};

/* One linear layer W = diag(3, 1): ||W||_2 = 3, ||W||_i = 1, far above any
 * Theorem 4 cap at (-2, 0.4), so gamma is the product bound 3. */
static void test_linear_layer_by_hand(void **state)
{
	(void)state;
	static const struct nn_layer_spec one[] = {
		{.kind = NN_DENSE, .in = 2, .out = 2, .act = NN_ACT_IDENTITY}};
	struct nn_net *net;
	assert_int_equal(nn_new(one, 1, 4, &net, NULL), SL_OK);
	float w[] = {3, 0, 0, 1};
	memcpy(net->layers[0].w, w, sizeof w);
	memset(net->layers[0].b, 0, 2 * sizeof(float));
	struct certificate c;
	assert_int_equal(certify_network(net, &paper, &c, NULL), SL_OK);
	assert_int_equal(c.nlayers, 1);
	assert_true(c.allocated);
	assert_close(c.layer[0].sigma, 3.0, 1e-6);
	assert_true(c.layer[0].sigma_exact);
	assert_close(c.layer[0].s, 1.0, 1e-6);
	/* Linear layer (m = p = 1): its cap at any allocation is below 1. */
	assert_true(c.layer[0].rho < 1);
	assert_false(c.layer[0].within);
	assert_false(c.sector_certified);
	assert_non_null(strstr(c.reason, "fc1"));
	assert_close(c.gamma_product, 3.0, 1e-6);
	assert_close(c.gamma, 3.0, 1e-6);

	/* Pixels 255 and 0 scale to (0.5, -0.5): logits (1.5, -0.5), margin 2. */
	uint8_t pixels[] = {255, 0, 0, 255};
	uint8_t labels[] = {0, 0};
	struct sl_dataset ds = {.n = 2, .c = 1, .h = 1, .w = 2, .classes = 2,
				.pixels = pixels, .labels = labels};
	double radius[2];
	bool correct[2];
	int n;
	assert_int_equal(certify_radii(net, &ds, 0, c.gamma, radius, correct, &n, NULL), SL_OK);
	assert_int_equal(n, 2);
	assert_true(correct[0]);
	assert_close(radius[0], 2.0 / (sqrt(2.0) * 3.0), 1e-6);
	/* The second image is classified 1 but labelled 0: no radius. */
	assert_false(correct[1]);
	assert_close(radius[1], 0, 0);
	assert_close(certify_accuracy_at(radius, correct, 2, 0.1), 0.5, 0);
	assert_close(certify_accuracy_at(radius, correct, 2, 0.5), 0.0, 0);
	nn_free(net);
}

/* Max pooling 3x3 / 2 joins as a 2-Lipschitz layer; a conv's norm is the
 * operator's (checked against the SVD of its explicit matrix). */
static void test_conv_and_pool(void **state)
{
	(void)state;
	static const struct nn_layer_spec specs[] = {
		{.kind = NN_CONV, .in = 1, .out = 2, .act = NN_ACT_LEAKY_RELU, .slope = 0.1f,
		 .k = 3, .pad = 1},
		{.kind = NN_MAXPOOL, .k = 3, .stride = 2},
		{.kind = NN_FLATTEN},
		{.kind = NN_DENSE, .in = 2, .out = 3, .act = NN_ACT_IDENTITY},
	};
	struct nn_net *net;
	struct nn_shape in = {1, 4, 4};
	assert_int_equal(nn_build(in, specs, 4, 2, &net, NULL), SL_OK);
	struct sl_rng rng;
	rng_seed(&rng, 5);
	nn_init_glorot(net, &rng);
	struct certificate c;
	assert_int_equal(certify_network(net, &paper, &c, NULL), SL_OK);
	assert_int_equal(c.nlayers, 3); /* flatten is not a layer of the cascade */
	assert_int_equal(c.layer[0].kind, SECTOR_LAYER_CONV);
	assert_int_equal(c.layer[1].kind, SECTOR_LAYER_POOL);
	assert_close(c.layer[1].k, 2.0, 0);
	assert_int_equal(c.layer[2].kind, SECTOR_LAYER_DENSE);

	float *a;
	const struct nn_layer *conv = &net->layers[0];
	assert_int_equal(spectral_conv_matrix(&conv->geom, conv->w, 1 << 20, &a, NULL), SL_OK);
	double exact;
	int rows = (int)conv_out_size(&conv->geom), cols = (int)conv_in_size(&conv->geom);
	assert_int_equal(spectral_norm_exact(a, rows, cols, &exact, NULL), SL_OK);
	free(a);
	assert_close(c.layer[0].sigma, exact, 1e-4 * exact);
	assert_close(c.layer[0].sigma_power, exact, 1e-4 * exact);
	assert_close(c.layer[0].s, 0, 0);
	assert_close(c.gamma_product, c.layer[0].sigma * 2 * c.layer[2].sigma, 1e-9);

	/* certify_bound is that product; its gradient is the other factors'
	 * product (checked by central differences), zero once the sector wins. */
	double sigma[2] = {c.layer[0].sigma, c.layer[2].sigma}, grad[2];
	assert_close(certify_bound(net, sigma, 0, grad), c.gamma_product, 0);
	for (int j = 0; j < 2; j++) {
		double h = 1e-4, keep = sigma[j];
		sigma[j] = keep + h;
		double up = certify_bound(net, sigma, 0, NULL);
		sigma[j] = keep - h;
		double down = certify_bound(net, sigma, 0, NULL);
		sigma[j] = keep;
		assert_close(grad[j], (up - down) / (2 * h), 1e-8);
	}
	double small = 0.5 * c.gamma_product;
	assert_close(certify_bound(net, sigma, small, grad), small, 0);
	assert_close(grad[0], 0, 0);
	assert_close(certify_bound(net, sigma, 2 * c.gamma_product, NULL), c.gamma_product, 0);
	nn_free(net);
}

/* certify's radii, with a training target among them in order, once. */
static void test_radii_with(void **state)
{
	(void)state;
	double r[CERTIFY_MAX_RADII];
	assert_int_equal(certify_radii_with(0, r), 4);
	assert_close(r[3], 1.0, 0);
	assert_int_equal(certify_radii_with(0.6, r), 5);
	assert_close(r[2], 0.5, 0);
	assert_close(r[3], 0.6, 0);
	assert_close(r[4], 1.0, 0);
	assert_int_equal(certify_radii_with(0.5, r), 4);
	assert_int_equal(certify_radii_with(2, r), 5);
	assert_close(r[4], 2.0, 0);
	assert_int_equal(certify_radii_with(0.05, r), 5);
	assert_close(r[0], 0.05, 0);
}

static void test_bad_indices(void **state)
{
	(void)state;
	static const struct nn_layer_spec one[] = {
		{.kind = NN_DENSE, .in = 2, .out = 2, .act = NN_ACT_IDENTITY}};
	struct nn_net *net;
	assert_int_equal(nn_new(one, 1, 1, &net, NULL), SL_OK);
	struct certify_options o = paper;
	struct certificate c;
	struct sl_error err;
	o.delta = -1;
	assert_int_not_equal(certify_network(net, &o, &c, &err), SL_OK);
	o.delta = 4, o.nu = 1; /* 4 delta nu > 1: no sector */
	assert_int_not_equal(certify_network(net, &o, &c, &err), SL_OK);
	double r;
	bool ok;
	int n;
	struct sl_dataset ds = {0};
	assert_int_equal(certify_radii(net, &ds, 0, NAN, &r, &ok, &n, &err), SL_ERR_ARG);
	assert_int_equal(certify_radii(net, &ds, 0, -1, &r, &ok, &n, &err), SL_ERR_ARG);
	nn_free(net);
}

/*
 * Train the MNIST network on the sample with the caps the allocation gives
 * at (-2, 0.4): the certificate holds, and PGD in L2 (random starts,
 * restarts) never changes the class of an image inside its certified radius.
 */
static void test_attacks_respect_certified_radii(void **state)
{
	(void)state;
	struct sl_dataset train, test;
	assert_int_equal(data_load(DATA_MNIST, tu_sample_data(), true, &train, NULL), SL_OK);
	assert_int_equal(data_load(DATA_MNIST, tu_sample_data(), false, &test, NULL), SL_OK);
	struct sector_layer layers[SECTOR_MAX_LAYERS];
	int nl = certify_model_layers(MODEL_MLP, layers, SECTOR_MAX_LAYERS, NULL);
	struct sector_allocation alloc;
	assert_int_equal(sector_allocate(-2, 0.4, layers, nl, SECTOR_OBJ_PRODUCT, &alloc, NULL),
			 SL_OK);
	struct train_config cfg = train_config_default();
	cfg.holdout = 0;
	cfg.epochs = 2;
	cfg.mode = TRAIN_SPNORM;
	cfg.caps = caps_spec_paper();
	struct trainer *t;
	assert_int_equal(trainer_new(&cfg, &train, &test, &t, NULL), SL_OK);
	struct train_step_info info;
	while (t->epoch < cfg.epochs) {
		assert_int_equal(trainer_step(t, &info, NULL), SL_OK);
		if (info.epoch_done)
			assert_int_equal(trainer_settle_caps(t, NULL), SL_OK);
	}

	struct certificate c;
	assert_int_equal(certify_network(t->net, &paper, &c, NULL), SL_OK);
	for (int i = 0; i < c.nlayers; i++)
		print_message("%s: sigma %.6f rho %.6f\n", c.layer[i].name, c.layer[i].sigma,
			      c.layer[i].rho);
	assert_true(c.sector_certified);
	assert_close(c.gamma_sector, 3.811738, 1e-5);
	assert_true(c.gamma <= c.gamma_sector);

	const int n = 300;
	double radius[300];
	bool correct[300];
	int got;
	assert_int_equal(certify_radii(t->net, &test, n, c.gamma, radius, correct, &got, NULL),
			 SL_OK);
	/* certify_accuracy (the one computation behind certify and train's
	 * metric) agrees with the radii it is built on. */
	struct certify_accuracy acc;
	assert_int_equal(certify_accuracy(t->net, &c, &test, n, certify_default_radii,
					  CERTIFY_NDEFAULT_RADII, &acc, NULL),
			 SL_OK);
	assert_int_equal(acc.n, n);
	assert_close(acc.gamma, c.gamma, 0);
	assert_close(acc.clean, certify_accuracy_at(radius, correct, n, -1), 0);
	for (int k = 0; k < CERTIFY_NDEFAULT_RADII; k++)
		assert_close(acc.certified[k],
			     certify_accuracy_at(radius, correct, n, certify_default_radii[k]), 0);
	int below = 0;
	for (int i = 0; i < n; i++)
		below += (correct[i] ? radius[i] : 0) < acc.median_radius;
	assert_true(below <= n / 2);
	struct attack_recipe r = attack_recipe_pgd(ATTACK_NORM_2, 0.1f, 20);
	r.random_start = true;
	r.restarts = 2;
	r.labels = ATTACK_LABELS_TRUE;
	struct attacker *a;
	assert_int_equal(attacker_new(t->net, &r, &a, NULL), SL_OK);
	int dim = t->net->in_dim, b = 100, checked = 0, fooled_outside = 0;
	float *x = malloc(sizeof(float) * (size_t)b * dim);
	int y[100];
	uint32_t idx[100];
	/* Radii from small to well past the median certified radius. */
	const float eps_list[] = {0.02f, 0.05f, 0.1f, 0.2f, 0.5f, 1.0f, 2.0f};
	for (size_t e = 0; e < sizeof eps_list / sizeof eps_list[0]; e++) {
		attacker_set_eps(a, eps_list[e]);
		for (int start = 0; start < n; start += b) {
			for (int k = 0; k < b; k++)
				idx[k] = (uint32_t)(start + k);
			data_batch(&test, idx, (size_t)b, x, y);
			attacker_begin(a, x, y, b);
			attacker_finish(a);
			struct attack_view v;
			attacker_view(a, &v);
			for (int k = 0; k < b; k++) {
				bool fooled = v.pred_adv[k] != y[k];
				if (correct[start + k] && radius[start + k] > eps_list[e]) {
					checked++;
					if (fooled)
						fail_msg("image %d certified to %.4f fooled at eps %g",
							 start + k, radius[start + k], eps_list[e]);
				} else if (fooled) {
					fooled_outside++;
				}
			}
		}
	}
	print_message("%d certified (image, eps) pairs held; %d attacks succeeded outside "
		      "their certified radius\n", checked, fooled_outside);
	assert_true(checked > 100);
	assert_true(fooled_outside > 0); /* the attack is real */
	free(x);
	attacker_free(a);
	trainer_free(t);
	data_free(&train);
	data_free(&test);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_linear_layer_by_hand),
		cmocka_unit_test(test_conv_and_pool),
		cmocka_unit_test(test_radii_with),
		cmocka_unit_test(test_bad_indices),
		cmocka_unit_test(test_attacks_respect_certified_radii),
	};
	return cmocka_run_group_tests_name("certify", tests, NULL, NULL);
}
