/* Tests for spectral and linalg: power iteration against LAPACK's SVD. */
#include <math.h>
#include <stdlib.h>

#include "sectorlab/linalg.h"
#include "sectorlab/spectral.h"
#include "testutil.h"

static void test_singular_values_known(void **state)
{
	(void)state;
	/* diag(3, -2) padded to 2x3: singular values 3, 2. */
	float a[] = {3, 0, 0, 0, -2, 0};
	double sv[2];
	assert_int_equal(linalg_singular_values(a, 2, 3, sv, NULL), SL_OK);
	assert_close(sv[0], 3.0, 1e-12);
	assert_close(sv[1], 2.0, 1e-12);
	/* [[1, 1], [0, 1]]: sigma_max = (1 + sqrt 5) / 2 */
	float b[] = {1, 1, 0, 1};
	double nrm;
	assert_int_equal(spectral_norm_exact(b, 2, 2, &nrm, NULL), SL_OK);
	assert_close(nrm, (1 + sqrt(5.0)) / 2, 1e-7);
}

static void test_sym_eig_known(void **state)
{
	(void)state;
	/* [[2, 1], [1, 2]]: eigenvalues 1 and 3, vectors (1,-1)/sqrt2, (1,1)/sqrt2. */
	double a[] = {2, 1, 1, 2}, w[2], v[4];
	assert_int_equal(linalg_sym_eig(a, 2, w, v, NULL), SL_OK);
	assert_close(w[0], 1.0, 1e-12);
	assert_close(w[1], 3.0, 1e-12);
	assert_close(fabs(v[0 * 2 + 1]), 1 / sqrt(2.0), 1e-12);
	assert_close(v[0 * 2 + 1], v[1 * 2 + 1], 1e-12);
	double top;
	assert_int_equal(linalg_sym_max_eig(a, 2, &top, NULL), SL_OK);
	assert_close(top, 3.0, 1e-12);
}

/* Power iteration from a random start converges to the SVD's value from
 * below, on matrices of the MNIST network's shapes. */
static void test_power_iteration_matches_svd(void **state)
{
	(void)state;
	const int shapes[][2] = {{50, 784}, {20, 50}, {10, 20}, {7, 3}};
	struct sl_rng rng;
	rng_seed(&rng, 7);
	for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
		int rows = shapes[s][0], cols = shapes[s][1];
		float *w = malloc(sizeof(float) * (size_t)rows * cols);
		float *u = malloc(sizeof(float) * (size_t)rows);
		float *v = malloc(sizeof(float) * (size_t)cols);
		for (int k = 0; k < rows * cols; k++)
			w[k] = rng_normal(&rng) / sqrtf((float)cols);
		spectral_random_unit(&rng, u, rows);
		double exact;
		assert_int_equal(spectral_norm_exact(w, rows, cols, &exact, NULL), SL_OK);
		float first = spectral_power_step(w, rows, cols, u, v);
		assert_true(first <= exact * (1 + 1e-5));
		int iters = 0;
		float est = spectral_power_converge(w, rows, cols, u, v, 1e-9, 5000, &iters);
		print_message("%dx%d: exact %.6f, first step %.6f, converged %.6f after %d\n",
			      rows, cols, exact, first, est, iters);
		assert_true(est <= exact * (1 + 1e-5));
		assert_close(est, exact, 2e-4 * exact);
		free(w);
		free(u);
		free(v);
	}
}

static void test_bad_arguments(void **state)
{
	(void)state;
	double sv[1];
	struct sl_error err;
	float a[1] = {1};
	assert_int_equal(linalg_singular_values(a, 0, 1, sv, &err), SL_ERR_ARG);
	assert_int_equal(linalg_sym_eig(NULL, 0, sv, NULL, &err), SL_ERR_ARG);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_singular_values_known),
		cmocka_unit_test(test_sym_eig_known),
		cmocka_unit_test(test_power_iteration_matches_svd),
		cmocka_unit_test(test_bad_arguments),
	};
	return cmocka_run_group_tests_name("spectral", tests, NULL, NULL);
}
