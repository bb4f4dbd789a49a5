/* Tests for nn: gradients against central differences, BLAS against loops. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sectorlab/nn.h"
#include "sectorlab/spectral.h"
#include "testutil.h"

#define BATCH 4

static const struct nn_layer_spec small[] = {
	{NN_DENSE, 7, 6, NN_ACT_LEAKY_RELU, 0.1f},
	{NN_DENSE, 6, 5, NN_ACT_LEAKY_RELU, 0.1f},
	{NN_DENSE, 5, 3, NN_ACT_IDENTITY, 0.0f},
};

struct fixture {
	struct nn_net *net;
	float x[BATCH * 7];
	int y[BATCH];
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof *f);
	struct sl_rng rng;
	rng_seed(&rng, 42);
	assert_int_equal(nn_new(small, 3, BATCH, &f->net, NULL), SL_OK);
	nn_init_glorot(f->net, &rng);
	/* Non-zero biases so their gradients are exercised off the trivial point. */
	for (int i = 0; i < 3; i++)
		for (int o = 0; o < f->net->layers[i].out; o++)
			f->net->layers[i].b[o] = 0.1f * rng_normal(&rng);
	for (int k = 0; k < BATCH * 7; k++)
		f->x[k] = rng_uniform(&rng) - 0.5f;
	for (int r = 0; r < BATCH; r++)
		f->y[r] = (int)rng_below(&rng, 3);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	nn_free(f->net);
	free(f);
	return 0;
}

static double loss_at(struct fixture *f)
{
	nn_update_caps(f->net, 0); /* sigma = u . W v with u, v held fixed */
	nn_forward(f->net, f->x, BATCH);
	return nn_loss(f->net, f->y);
}

/* Compare every parameter gradient with a central difference. */
static void check_param_grads(struct fixture *f)
{
	struct nn_net *net = f->net;
	loss_at(f);
	nn_forward(net, f->x, BATCH);
	nn_backward(net, f->y, true, false);
	float *analytic = malloc(sizeof(float) * net->nparams);
	memcpy(analytic, net->grads, sizeof(float) * net->nparams);
	const float h = 1e-3f;
	double worst = 0;
	for (size_t k = 0; k < net->nparams; k++) {
		float keep = net->params[k];
		net->params[k] = keep + h;
		double lp = loss_at(f);
		net->params[k] = keep - h;
		double lm = loss_at(f);
		net->params[k] = keep;
		double numeric = (lp - lm) / (2.0 * h);
		double diff = fabs(numeric - analytic[k]);
		double scale = fmax(1e-2, fabs(numeric) + fabs(analytic[k]));
		if (diff / scale > worst)
			worst = diff / scale;
		if (diff > 2e-3 * scale + 2e-5)
			fail_msg("param %zu: analytic %.6g, numeric %.6g", k, analytic[k], numeric);
	}
	print_message("worst relative gradient error %.2e over %zu parameters\n", worst,
		      net->nparams);
	free(analytic);
}

static void test_param_gradients(void **state)
{
	check_param_grads(*state);
}

static void test_param_gradients_capped(void **state)
{
	struct fixture *f = *state;
	/* Caps well below the layers' norms, so W_eff = rho W / sigma is active
	 * in every layer and the gradient flows through sigma. */
	for (int i = 0; i < 3; i++)
		nn_set_cap(f->net, i, 0.3f);
	nn_update_caps(f->net, 30);
	for (int i = 0; i < 3; i++)
		assert_true(f->net->layers[i].scale < 1.0f);
	check_param_grads(f);
}

static void test_input_gradient(void **state)
{
	struct fixture *f = *state;
	struct nn_net *net = f->net;
	nn_forward(net, f->x, BATCH);
	nn_backward(net, f->y, false, true);
	float dx[BATCH * 7];
	memcpy(dx, net->dx, sizeof dx);
	const float h = 1e-3f;
	for (int k = 0; k < BATCH * 7; k++) {
		float keep = f->x[k];
		f->x[k] = keep + h;
		double lp = loss_at(f);
		f->x[k] = keep - h;
		double lm = loss_at(f);
		f->x[k] = keep;
		/* nn_loss is the batch mean; dx is its gradient. */
		double numeric = (lp - lm) / (2.0 * h);
		assert_close(dx[k], numeric, 2e-3 * fmax(1e-2, fabs(numeric)) + 2e-5);
	}
}

/* The BLAS forward pass against plain loops. */
static void test_forward_matches_loops(void **state)
{
	struct fixture *f = *state;
	struct nn_net *net = f->net;
	const float *logits = nn_forward(net, f->x, BATCH);
	double in[BATCH][8], out[BATCH][8];
	for (int r = 0; r < BATCH; r++)
		for (int k = 0; k < 7; k++)
			in[r][k] = f->x[r * 7 + k];
	for (int i = 0; i < 3; i++) {
		const struct nn_layer *l = &net->layers[i];
		for (int r = 0; r < BATCH; r++)
			for (int o = 0; o < l->out; o++) {
				double z = l->b[o];
				for (int k = 0; k < l->in; k++)
					z += (double)l->w[o * l->in + k] * in[r][k];
				out[r][o] = (l->act == NN_ACT_LEAKY_RELU && z < 0) ? l->slope * z : z;
			}
		memcpy(in, out, sizeof in);
	}
	for (int r = 0; r < BATCH; r++)
		for (int o = 0; o < 3; o++)
			assert_close(logits[r * 3 + o], in[r][o], 1e-5);
}

/* Softmax cross-entropy by hand for one example. */
static void test_loss_value(void **state)
{
	(void)state;
	static const struct nn_layer_spec id[] = {{NN_DENSE, 2, 2, NN_ACT_IDENTITY, 0}};
	struct nn_net *net;
	assert_int_equal(nn_new(id, 1, 1, &net, NULL), SL_OK);
	float w[] = {1, 0, 0, 1};
	memcpy(net->layers[0].w, w, sizeof w);
	float x[] = {2.0f, 0.5f};
	int y = 1;
	nn_forward(net, x, 1);
	/* logits (2, 0.5): loss = log(e^2 + e^0.5) - 0.5 */
	assert_close(nn_loss(net, &y), log(exp(2.0) + exp(0.5)) - 0.5, 1e-6);
	nn_free(net);
}

/* A capped layer's weight in use has exactly the cap as its norm once the
 * power iteration has converged. */
static void test_cap_holds_exactly(void **state)
{
	struct fixture *f = *state;
	struct nn_net *net = f->net;
	nn_set_cap(net, 0, 0.5f);
	nn_update_caps(net, 200);
	double exact;
	const struct nn_layer *l = &net->layers[0];
	assert_int_equal(spectral_norm_exact(nn_layer_weight(l), l->out, l->in, &exact, NULL),
			 SL_OK);
	assert_close(exact, 0.5, 1e-4);
	/* Uncapped layers keep their weights. */
	assert_ptr_equal(nn_layer_weight(&net->layers[1]), net->layers[1].w);
}

static void test_bad_shapes(void **state)
{
	(void)state;
	struct nn_layer_spec bad[] = {{NN_DENSE, 4, 3, NN_ACT_IDENTITY, 0},
				      {NN_DENSE, 5, 2, NN_ACT_IDENTITY, 0}};
	struct nn_net *net = NULL;
	struct sl_error err;
	assert_int_equal(nn_new(bad, 2, 8, &net, &err), SL_ERR_ARG);
	assert_null(net);
	assert_non_null(strstr(err.msg, "layer 2 takes 5"));
	assert_int_equal(nn_new(bad, 0, 8, &net, &err), SL_ERR_ARG);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_param_gradients, setup, teardown),
		cmocka_unit_test_setup_teardown(test_param_gradients_capped, setup, teardown),
		cmocka_unit_test_setup_teardown(test_input_gradient, setup, teardown),
		cmocka_unit_test_setup_teardown(test_forward_matches_loops, setup, teardown),
		cmocka_unit_test(test_loss_value),
		cmocka_unit_test_setup_teardown(test_cap_holds_exactly, setup, teardown),
		cmocka_unit_test(test_bad_shapes),
	};
	return cmocka_run_group_tests_name("nn", tests, NULL, NULL);
}
