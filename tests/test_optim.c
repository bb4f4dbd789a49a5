/* Tests for optim: Adam and SGD updates against hand computation. */
#include <math.h>

#include "sectorlab/optim.h"
#include "testutil.h"

static void test_adam_two_steps(void **state)
{
	(void)state;
	struct optim_config c = optim_adam_defaults(0.1);
	struct optim *o;
	assert_int_equal(optim_new(&c, 2, &o, NULL), SL_OK);
	float p[2] = {1.0f, -2.0f};
	float g1[2] = {0.5f, -3.0f}, g2[2] = {-1.0f, 1.0f};
	optim_step(o, p, g1);
	/* Step 1: m_hat = g, v_hat = g^2, so each moves by lr * g / (|g| + eps). */
	assert_close(p[0], 1.0 - 0.1 * 0.5 / (0.5 + 1e-8), 1e-6);
	assert_close(p[1], -2.0 + 0.1 * 3.0 / (3.0 + 1e-8), 1e-6);
	optim_step(o, p, g2);
	for (int i = 0; i < 2; i++) {
		double g[2] = {g1[i], g2[i]};
		double m = 0.9 * (0.1 * g[0]) + 0.1 * g[1];
		double v = 0.999 * (0.001 * g[0] * g[0]) + 0.001 * g[1] * g[1];
		double mh = m / (1 - 0.81), vh = v / (1 - 0.999 * 0.999);
		double p1 = (i == 0 ? 1.0 - 0.1 : -2.0 + 0.1);
		assert_close(p[i], p1 - 0.1 * mh / (sqrt(vh) + 1e-8), 1e-5);
	}
	optim_free(o);
}

static void test_sgd_momentum(void **state)
{
	(void)state;
	struct optim_config c = {.kind = OPTIM_SGD, .lr = 0.5, .momentum = 0.9};
	struct optim *o;
	assert_int_equal(optim_new(&c, 1, &o, NULL), SL_OK);
	float p = 1.0f, g = 2.0f;
	optim_step(o, &p, &g); /* v = 2, p = 1 - 1 = 0 */
	assert_close(p, 0.0, 1e-7);
	optim_step(o, &p, &g); /* v = 0.9 * 2 + 2 = 3.8, p = -1.9 */
	assert_close(p, -1.9, 1e-6);
	optim_free(o);
}

static void test_bad_learning_rate(void **state)
{
	(void)state;
	struct optim_config c = optim_adam_defaults(-1);
	struct optim *o;
	struct sl_error err;
	assert_int_equal(optim_new(&c, 1, &o, &err), SL_ERR_ARG);
	c.lr = NAN;
	assert_int_equal(optim_new(&c, 1, &o, &err), SL_ERR_ARG);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_adam_two_steps),
		cmocka_unit_test(test_sgd_momentum),
		cmocka_unit_test(test_bad_learning_rate),
	};
	return cmocka_run_group_tests_name("optim", tests, NULL, NULL);
}
