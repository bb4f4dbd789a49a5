/* test_lmi: the exact layer LMI against DESIGN.md's worked checks, against
 * closed forms, and against Theorem 4 (whatever Theorem 4 certifies, the LMI
 * must certify too).  Every solve here is small: the file runs in about a
 * second. */
#include "testutil.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sectorlab/linalg.h"
#include "sectorlab/lmi.h"
#include "sectorlab/rng.h"
#include "sectorlab/sector.h"

/* leaky ReLU 0.1: m = 0.55, p = 0.1 */
#define LEAKY_M 0.55
#define LEAKY_P 0.1

static double max_nu(const double *w, int rows, int cols, double m, double p, double delta)
{
	struct lmi_layer l = {w, rows, cols, m, p};
	struct lmi_result r;
	struct sl_error err;
	sl_status st = lmi_max_nu(&l, delta, &r, NULL, &err);
	if (st != SL_OK)
		fail_msg("lmi_max_nu: %s", err.msg);
	return r.nu_max;
}

static bool certified(double w, double nu, double delta)
{
	struct lmi_layer l = {&w, 1, 1, LEAKY_M, LEAKY_P};
	struct lmi_verdict v;
	assert_int_equal(lmi_check(&l, nu, delta, &v, NULL), SL_OK);
	return v.feasible;
}

/* 1x1 layer at (-2, 0.4): feasible exactly for k_lo <= w <= k_hi. */
static void test_scalar_interval(void **state)
{
	(void)state;
	double lo, hi;
	assert_int_equal(sector_slopes(-2, 0.4, &lo, &hi, NULL), SL_OK);
	/* at the ends the largest certified nu is exactly -2 */
	assert_close(max_nu(&hi, 1, 1, LEAKY_M, LEAKY_P, 0.4), -2, 1e-6);
	assert_close(max_nu(&lo, 1, 1, LEAKY_M, LEAKY_P, 0.4), -2, 1e-6);
	/* DESIGN.md: feasible exactly for -1.3117 <= w <= 3.8117 */
	assert_true(certified(3.8117, -2, 0.4));
	assert_false(certified(3.8118, -2, 0.4));
	assert_true(certified(-1.3117, -2, 0.4));
	assert_false(certified(-1.3118, -2, 0.4));
	assert_true(certified(1.0, -2, 0.4));
	assert_true(certified(-0.5, -2, 0.4));
	assert_false(certified(6, -2, 0.4));
	/* closed form: slopes in [0.1 w, w], nu_max = min over both of k - delta k^2 */
	for (double w = -1.2; w < 3.8; w += 0.7) {
		double a = 0.1 * w, b = w;
		double want = fmin(a - 0.4 * a * a, b - 0.4 * b * b);
		assert_close(max_nu(&w, 1, 1, LEAKY_M, LEAKY_P, 0.4), want, 1e-6);
	}
}

static void test_worked_2x2(void **state)
{
	(void)state;
	double w[] = {0.5, 0.2, -0.1, 0.4}, w5[] = {5, 0, 0, 5}, w3[] = {3, 0, 0, 3};
	/* DESIGN.md gives +0.0154 to four decimals */
	assert_close(max_nu(w, 2, 2, LEAKY_M, LEAKY_P, 0.4), 0.0154, 5e-5);
	assert_close(max_nu(w5, 2, 2, LEAKY_M, LEAKY_P, 0.4), -5.0, 1e-6);
	assert_close(max_nu(w3, 2, 2, LEAKY_M, LEAKY_P, 0.4), -0.6, 1e-6);
}

/* M's layout: ordering [dy; dx], S = 1/2 E with E the rectangular identity. */
static void test_matrix_layout(void **state)
{
	(void)state;
	double w[] = {1, 2, 3, 4, 5, 6}; /* 2 x 3 */
	double lambda[] = {0.5, 2}, m[25];
	struct lmi_layer l = {w, 2, 3, 0.55, 0.1};
	assert_int_equal(lmi_matrix(&l, -1, 0.4, lambda, m, NULL), SL_OK);
	assert_close(m[0 * 5 + 0], -0.4 + 0.5, 1e-15);
	assert_close(m[1 * 5 + 1], -0.4 + 2, 1e-15);
	assert_close(m[0 * 5 + 1], 0, 0);
	/* top-right: 1/2 E - m Lambda W */
	assert_close(m[0 * 5 + 2], 0.5 - 0.55 * 0.5 * 1, 1e-15);
	assert_close(m[0 * 5 + 3], -0.55 * 0.5 * 2, 1e-15);
	assert_close(m[1 * 5 + 3], 0.5 - 0.55 * 2 * 5, 1e-15);
	assert_close(m[1 * 5 + 4], -0.55 * 2 * 6, 1e-15);
	assert_close(m[4 * 5 + 1], m[1 * 5 + 4], 0);
	/* bottom-right: -nu I + p W^T Lambda W */
	assert_close(m[2 * 5 + 2], 1 + 0.1 * (0.5 * 1 * 1 + 2 * 4 * 4), 1e-14);
	assert_close(m[2 * 5 + 4], 0.1 * (0.5 * 1 * 3 + 2 * 4 * 6), 1e-14);
}

/* A wide layer is solved on a reduced SDP: the multipliers it returns must
 * certify the full M, and the value must match closed forms. */
static void test_wide_layers(void **state)
{
	(void)state;
	/* y = [I 0] x (identity activation): the supply is
	 * (1 - delta)|dx_1|^2 - nu |dx|^2 >= 0, so nu_max = min(0, 1 - delta) */
	double proj[] = {1, 0, 0, 0, 0, 1, 0, 0}; /* 2 x 4 */
	assert_close(max_nu(proj, 2, 4, 1, 1, 0.4), 0, 1e-6);
	assert_close(max_nu(proj, 2, 4, 1, 1, 2), -1, 1e-6);

	struct sl_rng r;
	rng_seed(&r, 3);
	for (int t = 0; t < 6; t++) {
		int rows = 1 + (int)rng_below(&r, 4), cols = rows + 1 + (int)rng_below(&r, 8);
		double w[4 * 12], lambda[4], mat[16 * 16], ev[16];
		for (int i = 0; i < rows * cols; i++)
			w[i] = rng_normal(&r) / sqrt((double)cols);
		struct lmi_layer l = {w, rows, cols, LEAKY_M, LEAKY_P};
		struct lmi_result res;
		assert_int_equal(lmi_max_nu(&l, 0.4, &res, lambda, NULL), SL_OK);
		assert_int_equal(lmi_matrix(&l, res.nu_max, 0.4, lambda, mat, NULL), SL_OK);
		assert_int_equal(linalg_sym_eig(mat, rows + cols, ev, NULL, NULL), SL_OK);
		assert_true(ev[0] >= -1e-7);
		assert_close(res.min_eig, ev[0], 1e-7);
		/* and nothing above nu_max: M at nu_max + 1e-4 fails for these multipliers,
		 * and the solver agrees that no multipliers work */
		struct lmi_verdict v;
		assert_int_equal(lmi_check(&l, res.nu_max + 1e-4, 0.4, &v, NULL), SL_OK);
		assert_false(v.feasible);
		assert_true(v.min_eig < 0);
	}
}

/* Property: a layer that passes Theorem 4 passes the exact LMI. */
static void test_theorem4_implies_lmi(void **state)
{
	(void)state;
	struct sl_rng r;
	rng_seed(&r, 17);
	int checked = 0;
	for (int t = 0; t < 40; t++) {
		int rows = 1 + (int)rng_below(&r, 5), cols = 1 + (int)rng_below(&r, 5);
		enum sector_act_kind kinds[] = {SECTOR_ACT_LEAKY, SECTOR_ACT_RELU, SECTOR_ACT_IDENTITY,
						SECTOR_ACT_TANH};
		struct sector_act act;
		assert_int_equal(sector_act(kinds[t % 4], 0.05 + 0.4 * rng_uniform(&r), &act, NULL),
				 SL_OK);
		double nu = -0.6 - 6 * rng_uniform(&r), delta = 0.05 + 3 * rng_uniform(&r);
		double w[25], sv[5];
		for (int i = 0; i < rows * cols; i++)
			w[i] = rng_normal(&r);
		assert_int_equal(linalg_singular_values_d(w, rows, cols, sv, NULL), SL_OK);
		int k = rows < cols ? rows : cols;
		/* scale W to spectral norm u * rho(s = 0); its s then only raises the bound */
		struct sector_t4 t0, ts;
		if (sector_theorem4(nu, delta, act.m, act.p, 0, &t0, NULL) != SL_OK || t0.rho <= 0)
			continue;
		double target = t0.rho * (0.3 + 0.7 * rng_uniform(&r));
		for (int i = 0; i < rows * cols; i++)
			w[i] *= target / sv[0];
		double s = rows >= cols ? sv[k - 1] * target / sv[0] : 0;
		assert_int_equal(sector_theorem4(nu, delta, act.m, act.p, s, &ts, NULL), SL_OK);
		assert_true(target <= ts.rho);
		struct lmi_layer l = {w, rows, cols, act.m, act.p};
		struct lmi_verdict v;
		struct sl_error err;
		if (lmi_check(&l, nu, delta, &v, &err) != SL_OK)
			fail_msg("lmi_check: %s", err.msg);
		if (!v.feasible && v.margin < -1e-7)
			fail_msg("Theorem 4 certifies (%g, %g) for a %dx%d layer, the LMI only nu <= %g",
				 nu, delta, rows, cols, v.nu_max);
		checked++;
	}
	assert_true(checked > 25);
}

static void test_limits_and_errors(void **state)
{
	(void)state;
	struct sl_error err;
	assert_int_equal(lmi_fits(50, 784, NULL), SL_OK); /* reduced: order 150 */
	assert_int_equal(lmi_fits(150, 150, &err), SL_ERR_TOO_LARGE);
	assert_non_null(strstr(err.msg, "too large"));
	assert_int_equal(lmi_fits(384, 9216, &err), SL_ERR_TOO_LARGE);
	assert_int_equal(lmi_fits(0, 3, &err), SL_ERR_ARG);

	/* a too-large layer is refused at once, without touching W */
	double dummy = 0;
	struct lmi_layer big = {&dummy, 400, 400, LEAKY_M, LEAKY_P};
	struct lmi_result res;
	assert_int_equal(lmi_max_nu(&big, 0.4, &res, NULL, &err), SL_ERR_TOO_LARGE);

	double w[] = {1, NAN};
	struct lmi_layer bad = {w, 1, 2, LEAKY_M, LEAKY_P};
	assert_int_equal(lmi_max_nu(&bad, 0.4, &res, NULL, &err), SL_ERR_ARG);
	struct lmi_layer none = {NULL, 1, 1, LEAKY_M, LEAKY_P};
	assert_int_equal(lmi_max_nu(&none, 0.4, &res, NULL, &err), SL_ERR_ARG);
	struct lmi_verdict v;
	double one = 1;
	struct lmi_layer ok = {&one, 1, 1, LEAKY_M, LEAKY_P};
	assert_int_equal(lmi_check(&ok, NAN, 0.4, &v, &err), SL_ERR_ARG);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_scalar_interval),
		cmocka_unit_test(test_worked_2x2),
		cmocka_unit_test(test_matrix_layout),
		cmocka_unit_test(test_wide_layers),
		cmocka_unit_test(test_theorem4_implies_lmi),
		cmocka_unit_test(test_limits_and_errors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
