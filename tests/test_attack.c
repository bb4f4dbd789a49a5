/* Tests for attack: FGSM against its definition on a hand-set network. */
#include <math.h>
#include <string.h>

#include "sectorlab/attack.h"
#include "testutil.h"

/* One linear layer 3 -> 2 with known weights: for softmax cross-entropy the
 * input gradient is W^T (p - onehot(y)). */
static const struct nn_layer_spec linear[] = {{NN_DENSE, 3, 2, NN_ACT_IDENTITY, 0}};

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

static void test_fgsm_definition(void **state)
{
	(void)state;
	struct nn_net *net = hand_net();
	const float *w = net->layers[0].w;
	float x[3] = {0.2f, -0.1f, 0.45f}, xa[3];
	int y = 0;
	int zero = attack_fgsm(net, x, &y, 1, 0.1f, xa);
	assert_int_equal(zero, 0);
	/* By hand: logits, softmax, gradient, sign. */
	double z0 = 0.1 + w[0] * x[0] + w[1] * x[1], z1 = -0.1 + w[3] * x[0] + w[4] * x[1];
	double p0 = 1 / (1 + exp(z1 - z0)), p1 = 1 - p0;
	for (int k = 0; k < 3; k++) {
		double g = w[k] * (p0 - 1) + w[3 + k] * p1;
		double s = g > 0 ? 1 : (g < 0 ? -1 : 0);
		double expect = fmin(0.5, fmax(-0.5, x[k] + 0.1 * s));
		assert_close(xa[k], expect, 1e-7);
	}
	/* Input 2 has zero weight in both rows: its gradient is exactly 0, so it
	 * does not move, and the perturbation is eps in every other coordinate. */
	assert_close(xa[2], x[2], 0);
	assert_close(fabs(xa[0] - x[0]), 0.1, 1e-7);
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
	nn_free(net);
}

/* Metrics on a tiny dataset: the rates follow from the counts. */
static void test_eval_metrics(void **state)
{
	(void)state;
	static const struct nn_layer_spec one[] = {{NN_DENSE, 4, 10, NN_ACT_IDENTITY, 0}};
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
	assert_close(r.clean_accuracy, 0.8, 1e-12);
	assert_close(r.robust_accuracy, 0.4, 1e-12);
	assert_close(r.attack_success_rate, 0.5, 1e-12);
	struct sl_error err;
	assert_int_equal(attack_eval_fgsm(net, &ds, 0, -0.1f, &r, &err), SL_ERR_ARG);
	nn_free(net);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fgsm_definition),
		cmocka_unit_test(test_fgsm_stays_in_box),
		cmocka_unit_test(test_zero_gradient_counted),
		cmocka_unit_test(test_eval_metrics),
	};
	return cmocka_run_group_tests_name("attack", tests, NULL, NULL);
}
