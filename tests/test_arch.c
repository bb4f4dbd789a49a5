/*
 * Tests for arch (layer specs) and model (the built-in models as named
 * specs): good specs in both forms, canonical text that reads back to the
 * same layers, the built-in models' exact layer tables, bad specs refused
 * with messages that quote the item, activations refused with the reason,
 * input shapes fitted to data, and tanh's gradient against central
 * differences.
 */
#include <math.h>
#include <string.h>

#include "sectorlab/arch.h"
#include "sectorlab/certify.h"
#include "sectorlab/model.h"
#include "testutil.h"

static void assert_same_layers(const struct arch *a, const struct arch *b)
{
	assert_int_equal(a->nlayers, b->nlayers);
	assert_int_equal(a->input.c, b->input.c);
	assert_int_equal(a->input.h, b->input.h);
	assert_int_equal(a->input.w, b->input.w);
	for (int i = 0; i < a->nlayers; i++) {
		const struct nn_layer_spec *x = &a->layers[i], *y = &b->layers[i];
		assert_int_equal(x->kind, y->kind);
		assert_int_equal(x->in, y->in);
		assert_int_equal(x->out, y->out);
		assert_int_equal(x->k, y->k);
		assert_int_equal(x->stride, y->stride);
		assert_int_equal(x->pad, y->pad);
		if (x->kind == NN_DENSE || x->kind == NN_CONV) {
			assert_int_equal(x->act, y->act);
			assert_true(x->slope == y->slope);
		}
	}
}

static void test_shorthand(void **state)
{
	(void)state;
	struct arch a;
	struct sl_error err;
	assert_int_equal(arch_parse(" 784-100-100-10 ", &a, &err), SL_OK);
	assert_int_equal(a.nlayers, 3);
	assert_int_equal(a.input.c, 784);
	assert_int_equal(a.layers[0].in, 784);
	assert_int_equal(a.layers[1].in, 100);
	assert_int_equal(a.layers[2].out, 10);
	assert_int_equal(a.layers[0].act, NN_ACT_LEAKY_RELU);
	assert_true(a.layers[1].slope == 0.1f);
	assert_int_equal(a.layers[2].act, NN_ACT_IDENTITY);
	assert_int_equal(arch_weighted_count(&a), 3);
	char text[ARCH_TEXT];
	assert_string_equal(arch_format(&a, text, sizeof text),
			    "input 784, dense 100, leaky:0.1, dense 100, leaky:0.1, dense 10");
	/* 16 dense layers fit; 17 do not. */
	char big[256] = "10";
	for (int i = 0; i < 16; i++)
		strcat(big, "-10");
	assert_int_equal(arch_parse(big, &a, &err), SL_OK);
	assert_int_equal(a.nlayers, 16);
	strcat(big, "-10");
	assert_int_equal(arch_parse(big, &a, &err), SL_ERR_ARG);
	assert_non_null(strstr(err.msg, "more than 16"));
}

/* The full form reads back from its canonical text to the same layers. */
static void test_full_form_round_trip(void **state)
{
	(void)state;
	static const char *const specs[] = {
		("input 3x32x32, conv 32 5x5 pad same, relu, maxpool 3x3/2, conv 16 3x3 stride 2 "
		 "pad 1, tanh, flatten, dense 64, leaky:0.25, dense 10"),
		"input 1x28x28,conv 4 3x3 pad valid,leaky:0.1,maxpool 2x2,dense 10,none",
		"dense 20, tanh, dense 5",
	};
	for (size_t i = 0; i < sizeof specs / sizeof specs[0]; i++) {
		struct arch a, b;
		struct sl_error err;
		if (arch_parse(specs[i], &a, &err) != SL_OK)
			fail_msg("'%s': %s", specs[i], err.msg);
		char text[ARCH_TEXT];
		arch_format(&a, text, sizeof text);
		if (arch_parse(text, &b, &err) != SL_OK)
			fail_msg("'%s' (from '%s'): %s", text, specs[i], err.msg);
		assert_same_layers(&a, &b);
	}
	struct arch a;
	assert_int_equal(arch_parse(specs[0], &a, NULL), SL_OK);
	/* 32 -> 32 (same) -> 15 (pool) -> 8 (stride 2, pad 1): 16 x 8 x 8. */
	assert_int_equal(a.layers[0].pad, 2);
	assert_int_equal(a.layers[2].in, 32);
	assert_int_equal(a.layers[4].in, 16 * 8 * 8);
	assert_int_equal(a.layers[5].in, 64);
	assert_int_equal(a.layers[2].act, NN_ACT_TANH);
	assert_int_equal(a.layers[0].act, NN_ACT_LEAKY_RELU);
	assert_true(a.layers[0].slope == 0.0f);
	/* Without an input the sizes wait for the data. */
	assert_int_equal(arch_parse(specs[2], &a, NULL), SL_OK);
	assert_false(arch_has_input(&a));
	assert_int_equal(arch_fit_input(&a, (struct nn_shape){1, 28, 28}, NULL), SL_OK);
	assert_int_equal(a.layers[0].in, 784);
	struct nn_net *net;
	assert_int_equal(arch_build(&a, 4, &net, NULL), SL_OK);
	struct arch back;
	arch_of_net(net, &back);
	assert_same_layers(&a, &back);
	nn_free(net);
}

/* The built-in models are their specs: the layer tables the paper's
 * networks had before the specs existed. */
static void test_models_are_specs(void **state)
{
	(void)state;
	struct arch mlp, alex, lite;
	model_get(MODEL_MLP, &mlp);
	model_get(MODEL_ALEXNET, &alex);
	model_get(MODEL_ALEXNET_LITE, &lite);
	assert_string_equal(mlp.name, "mlp");
	assert_string_equal(model_spec(MODEL_MLP), "784-50-20-10");
	assert_int_equal(mlp.input.h, 28);
	const struct nn_layer_spec want_mlp[] = {
		{.kind = NN_DENSE, .in = 784, .out = 50, .act = NN_ACT_LEAKY_RELU, .slope = 0.1f},
		{.kind = NN_DENSE, .in = 50, .out = 20, .act = NN_ACT_LEAKY_RELU, .slope = 0.1f},
		{.kind = NN_DENSE, .in = 20, .out = 10, .act = NN_ACT_IDENTITY},
	};
	struct arch want = {.input = {1, 28, 28}, .nlayers = 3};
	memcpy(want.layers, want_mlp, sizeof want_mlp);
	assert_same_layers(&mlp, &want);
	assert_int_equal(alex.nlayers, 8);
	assert_int_equal(alex.layers[0].out, 96);
	assert_int_equal(alex.layers[0].pad, 2);
	assert_int_equal(alex.layers[1].kind, NN_MAXPOOL);
	assert_int_equal(alex.layers[1].k, 3);
	assert_int_equal(alex.layers[1].stride, 2);
	assert_int_equal(alex.layers[5].in, 12544);
	assert_int_equal(lite.layers[5].in, 6272);
	assert_int_equal(model_default_optim(&alex).kind, OPTIM_SGD);
	assert_int_equal(model_default_optim(&mlp).kind, OPTIM_ADAM);
	assert_string_equal(model_default_dataset(&lite), "cifar10");
	double rho[NN_MAX_LAYERS];
	assert_int_equal(model_authors_caps(&mlp, rho), 3);
	assert_int_equal(model_authors_caps(&lite, rho), 5);
	assert_true(rho[0] == 1.8 && rho[3] == 1.8 && rho[4] == 0.9204);
	assert_int_equal(model_authors_caps(&alex, rho), 5);
	struct arch spec;
	assert_int_equal(model_arch("784-50-20-10", &spec, NULL), SL_OK);
	assert_int_equal(model_authors_caps(&spec, rho), 0);
	/* --arch takes a model's name too; a spec equal to mlp's is a spec. */
	struct arch a;
	assert_int_equal(model_arch("alexnet-lite", &a, NULL), SL_OK);
	assert_string_equal(a.name, "alexnet-lite");
	assert_int_equal(model_arch("784-50-20-10", &a, NULL), SL_OK);
	assert_string_equal(a.name, "");
	assert_int_equal(model_of_arch(&a), -1);
	struct sector_layer l[SECTOR_MAX_LAYERS];
	assert_int_equal(certify_arch_layers(&a, l, SECTOR_MAX_LAYERS, NULL), 3);
	assert_int_equal(certify_arch_layers(&alex, l, SECTOR_MAX_LAYERS, NULL), 7);
}

static void test_bad_specs(void **state)
{
	(void)state;
	static const struct {
		const char *spec;
		sl_status st;
		const char *says;
	} cases[] = {
		{"", SL_ERR_ARG, "layer spec is empty"},
		{" \t", SL_ERR_ARG, "layer spec is empty"},
		{"784", SL_ERR_ARG, "at least one layer"},
		{"784-0-10", SL_ERR_ARG, "'0': sizes must be"},
		{"784--10", SL_ERR_ARG, "sizes must be"},
		{"784-10-", SL_ERR_ARG, "sizes must be"},
		{"dense", SL_ERR_ARG, "'dense': expected 'dense N'"},
		{"dense 10 20", SL_ERR_ARG, "expected 'dense N'"},
		{"dense ten", SL_ERR_ARG, "expected 'dense N'"},
		{"dense 10,, dense 2", SL_ERR_ARG, "empty item"},
		{"dense 10,", SL_ERR_ARG, "empty item"},
		{"conv 8", SL_ERR_ARG, "expected 'conv C kxk"},
		{"conv 8 3x5", SL_ERR_ARG, "expected 'conv C kxk"},
		{"conv 8 4x4 pad same", SL_ERR_ARG, "pad same needs an odd kernel"},
		{"conv 8 3x3 stride 2 pad same", SL_ERR_ARG, "pad same needs an odd kernel"},
		{"conv 8 3x3 pad", SL_ERR_ARG, "take a value"},
		{"conv 8 3x3 pad wide", SL_ERR_ARG, "pad is same, valid"},
		{"conv 8 3x3 stride 0", SL_ERR_ARG, "stride must be"},
		{"conv 8 3x3 dilation 2", SL_ERR_ARG, "expected 'conv C kxk"},
		{"maxpool 3x3/0, dense 2", SL_ERR_ARG, "expected 'maxpool kxk'"},
		{"batchnorm, dense 2", SL_ERR_ARG, "'batchnorm': unknown layer or activation"},
		{"relu, dense 2", SL_ERR_ARG, "an activation before any layer"},
		{"dense 4, relu, tanh", SL_ERR_ARG, "must follow the dense or conv layer"},
		{"flatten", SL_ERR_ARG, "no dense or conv layer"},
		{"dense 4, leaky", SL_ERR_ARG, "leaky needs its slope"},
		{"dense 4, leaky:x", SL_ERR_ARG, "leaky needs its slope"},
		{"dense 4, leaky:nan", SL_ERR_ARG, "leaky needs its slope"},
		{"dense 4, leaky:-0.1", SL_ERR_UNSUPPORTED, "Theorem 4 needs p >= 0"},
		{"dense 4, leaky:2", SL_ERR_UNSUPPORTED, "1-Lipschitz"},
		{"dense 4, gelu", SL_ERR_UNSUPPORTED, "sector [-0.17, 1.13]"},
		{"dense 4, swish", SL_ERR_UNSUPPORTED, "Theorem 4 needs p >= 0"},
		{"dense 4, sigmoid", SL_ERR_UNSUPPORTED, "not implemented"},
		{"input 2x2, dense 4", SL_ERR_ARG, "expected 'input CxHxW'"},
		{"dense 4, input 4", SL_ERR_ARG, "the input shape comes first"},
		{"input 1x4x4, conv 2 5x5", SL_ERR_ARG, "does not fit its 1x4x4 input"},
		{"input 1x4x4, maxpool 3x3/1, maxpool 3x3/1, dense 2", SL_ERR_ARG, "layer 2 (maxpool)"},
		{"input 100000, dense 100000", SL_ERR_ARG, "too large"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct arch a;
		struct sl_error err;
		status_clear(&err);
		sl_status st = arch_parse(cases[i].spec, &a, &err);
		if (st != cases[i].st || !strstr(err.msg, cases[i].says))
			fail_msg("'%s': status %d, '%s' (expected %d, '%s')", cases[i].spec, st,
				 err.msg, cases[i].st, cases[i].says);
		assert_int_equal(a.nlayers, 0);
	}
	/* Over-long text is refused, not truncated. */
	char longer[ARCH_TEXT + 8];
	memset(longer, ' ', sizeof longer);
	longer[sizeof longer - 1] = '\0';
	assert_int_equal(arch_parse(longer, &(struct arch){0}, NULL), SL_ERR_ARG);
	char list[1024];
	assert_non_null(strstr(arch_activations(list, sizeof list), "tanh"));
	assert_non_null(strstr(list, "refused"));
}

static void test_fit_input(void **state)
{
	(void)state;
	struct arch a;
	struct sl_error err;
	/* A flat spec takes any shape with as many values. */
	assert_int_equal(arch_parse("784-10", &a, NULL), SL_OK);
	assert_int_equal(arch_fit_input(&a, (struct nn_shape){1, 28, 28}, &err), SL_OK);
	assert_int_equal(a.input.h, 28);
	assert_int_equal(arch_parse("784-10", &a, NULL), SL_OK);
	assert_int_equal(arch_fit_input(&a, (struct nn_shape){3, 32, 32}, &err), SL_ERR_ARG);
	assert_non_null(strstr(err.msg, "784x1x1 inputs (784 values) but the data's are 3x32x32"));
	/* A given image shape must match exactly. */
	assert_int_equal(arch_parse("input 1x28x28, conv 2 3x3, flatten, dense 10", &a, NULL),
			 SL_OK);
	assert_int_equal(arch_fit_input(&a, (struct nn_shape){28, 28, 1}, &err), SL_ERR_ARG);
	/* The input decides whether a later layer fits. */
	assert_int_equal(arch_parse("conv 2 5x5, maxpool 2x2, dense 10", &a, NULL), SL_OK);
	assert_int_equal(arch_fit_input(&a, (struct nn_shape){1, 5, 5}, &err), SL_ERR_ARG);
	assert_non_null(strstr(err.msg, "layer 2 (maxpool)"));
	struct nn_net *net;
	assert_int_equal(arch_build(&a, 1, &net, &err), SL_ERR_ARG);
	assert_null(net);
}

/* tanh: forward values and the input gradient against central differences
 * of the loss (double-checked against the closed form 1 - tanh^2). */
static void test_tanh_gradient(void **state)
{
	(void)state;
	struct arch a;
	assert_int_equal(arch_parse("input 5, dense 7, tanh, dense 3", &a, NULL), SL_OK);
	struct nn_net *net;
	assert_int_equal(arch_build(&a, 2, &net, NULL), SL_OK);
	struct sl_rng rng;
	rng_seed(&rng, 9);
	nn_init_glorot(net, &rng);
	for (int k = 0; k < 7; k++)
		net->layers[0].b[k] = 0.1f * (float)(k - 3);
	float x[10];
	for (int k = 0; k < 10; k++)
		x[k] = 0.3f * (float)k - 1.2f;
	int y[2] = {1, 2};
	nn_forward(net, x, 2);
	for (int k = 0; k < 7; k++) {
		double z = net->layers[0].b[k];
		for (int j = 0; j < 5; j++)
			z += (double)net->layers[0].w[k * 5 + j] * x[j];
		assert_float_equal(net->layers[0].a[k], tanh(z), 1e-6);
	}
	nn_backward(net, y, false, true);
	float dx[10];
	memcpy(dx, net->dx, sizeof dx);
	double worst = 0;
	for (int k = 0; k < 10; k++) {
		float keep = x[k], h = 1e-2f;
		x[k] = keep + h;
		nn_forward(net, x, 2);
		double up = nn_loss(net, y);
		x[k] = keep - h;
		nn_forward(net, x, 2);
		double down = nn_loss(net, y);
		x[k] = keep;
		double fd = (up - down) / (2 * h);
		double rel = fabs(fd - dx[k]) / fmax(1e-3, fabs(fd));
		worst = rel > worst ? rel : worst;
	}
	print_message("tanh input gradient: worst relative error %.2e\n", worst);
	assert_true(worst < 2e-2);
	nn_free(net);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_shorthand),
		cmocka_unit_test(test_full_form_round_trip),
		cmocka_unit_test(test_models_are_specs),
		cmocka_unit_test(test_bad_specs),
		cmocka_unit_test(test_fit_input),
		cmocka_unit_test(test_tanh_gradient),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
