/* Tests for optim: Adam and SGD updates against hand computation. */
#include <math.h>
#include <string.h>

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

/* Schedules: StepLR and ExponentialLR, stepped per epoch; the optimizer
 * takes the rate of the epoch it is told. */
static void test_schedules(void **state)
{
	(void)state;
	struct optim_config c = optim_sgd_defaults(0.1, 0.9);
	assert_close(optim_lr_at(&c, 0), 0.1, 0);
	assert_close(optim_lr_at(&c, 50), 0.1, 0);
	c.schedule = OPTIM_STEP;
	c.step_epochs = 3;
	c.gamma = 0.5;
	assert_close(optim_lr_at(&c, 2), 0.1, 1e-15);
	assert_close(optim_lr_at(&c, 3), 0.05, 1e-15);
	assert_close(optim_lr_at(&c, 7), 0.025, 1e-15);
	c.schedule = OPTIM_EXP;
	c.gamma = 0.9;
	assert_close(optim_lr_at(&c, 2), 0.1 * 0.81, 1e-15);
	struct optim *o;
	assert_int_equal(optim_new(&c, 1, &o, NULL), SL_OK);
	optim_set_epoch(o, 1);
	float p = 1.0f, g = 1.0f;
	optim_step(o, &p, &g); /* v = 1, p = 1 - 0.09 */
	assert_close(p, 0.91, 1e-7);
	optim_free(o);
	enum optim_schedule s;
	assert_int_equal(optim_schedule_parse("exp", &s, NULL), SL_OK);
	assert_int_equal(s, OPTIM_EXP);
	assert_string_equal(optim_schedule_name(OPTIM_STEP), "step");
	struct sl_error err;
	assert_int_equal(optim_schedule_parse("cosine", &s, &err), SL_ERR_ARG);
	assert_non_null(strstr(err.msg, "cosine"));
	enum optim_kind k;
	assert_int_equal(optim_kind_parse("sgd", &k, NULL), SL_OK);
	assert_int_equal(k, OPTIM_SGD);
	assert_int_equal(optim_kind_parse("rmsprop", &k, &err), SL_ERR_ARG);
	/* Bad settings are refused. */
	c.gamma = 0;
	assert_int_equal(optim_new(&c, 1, &o, &err), SL_ERR_ARG);
	c = optim_sgd_defaults(0.1, 1.0);
	assert_int_equal(optim_new(&c, 1, &o, &err), SL_ERR_ARG);
	c = optim_sgd_defaults(0.1, 0.9);
	c.schedule = OPTIM_STEP;
	c.step_epochs = 0;
	assert_int_equal(optim_new(&c, 1, &o, &err), SL_ERR_ARG);
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
		cmocka_unit_test(test_schedules),
		cmocka_unit_test(test_bad_learning_rate),
	};
	return cmocka_run_group_tests_name("optim", tests, NULL, NULL);
}
