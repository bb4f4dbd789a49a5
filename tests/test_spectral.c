/* Tests for spectral and linalg: power iteration (matrices and convolution
 * operators) against LAPACK's SVD. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sectorlab/linalg.h"
#include "sectorlab/parallel.h"
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

/* The convolution operator's norm by power iteration on the operator (conv
 * and transposed conv at the real input size, stride, padding) against the
 * SVD of the explicit operator matrix; and that matrix against the
 * transposed convolution. */
static void test_conv_power_iteration_matches_svd(void **state)
{
	(void)state;
	static const int cases[][7] = {
		/* cin, h, w, cout, k, stride, pad */
		{3, 8, 8, 4, 3, 1, 1}, {2, 9, 7, 3, 5, 1, 2}, {3, 10, 9, 5, 3, 2, 0},
		{4, 6, 6, 2, 1, 1, 0}, {2, 7, 7, 6, 4, 3, 2}, {3, 12, 12, 8, 5, 1, 2},
	};
	struct sl_rng rng;
	rng_seed(&rng, 11);
	for (size_t t = 0; t < sizeof cases / sizeof cases[0]; t++) {
		const int *c = cases[t];
		struct conv_geom g;
		assert_int_equal(conv_geom_init(&g, c[0], c[1], c[2], c[3], c[4], c[5], c[6], NULL),
				 SL_OK);
		int rows = (int)conv_out_size(&g), cols = (int)conv_in_size(&g);
		size_t nw = conv_weight_size(&g);
		float *w = malloc(sizeof(float) * nw);
		for (size_t k = 0; k < nw; k++)
			w[k] = rng_normal(&rng) / sqrtf((float)(c[0] * c[4] * c[4]));
		float *a;
		assert_int_equal(spectral_conv_matrix(&g, w, 1 << 22, &a, NULL), SL_OK);
		/* A^T y from the matrix equals the transposed convolution. */
		float *y = malloc(sizeof(float) * (size_t)rows), *x = malloc(sizeof(float) * (size_t)cols);
		float *col = malloc(sizeof(float) * conv_col_size(&g));
		for (int i = 0; i < rows; i++)
			y[i] = rng_normal(&rng);
		conv_apply_transpose(&g, w, 1.0f, y, x, col);
		for (int j = 0; j < cols; j++) {
			double s = 0;
			for (int i = 0; i < rows; i++)
				s += (double)a[(size_t)i * cols + j] * y[i];
			assert_close(x[j], s, 1e-4);
		}
		double exact;
		assert_int_equal(spectral_norm_exact(a, rows, cols, &exact, NULL), SL_OK);
		float *u = malloc(sizeof(float) * (size_t)rows), *v = malloc(sizeof(float) * (size_t)cols);
		spectral_random_unit(&rng, u, rows);
		int iters = 0;
		float est = spectral_conv_power_converge(&g, w, u, v, col, 1e-9, 20000, &iters);
		print_message("conv %dx%dx%d -> %dx%dx%d (k %d, stride %d, pad %d): exact %.6f, "
			      "power %.6f after %d\n",
			      c[0], c[1], c[2], g.cout, g.ho, g.wo, c[4], c[5], c[6], exact, est, iters);
		assert_true(est <= exact * (1 + 1e-5));
		assert_close(est, exact, 1e-4 * exact);
		free(w);
		free(a);
		free(y);
		free(x);
		free(col);
		free(u);
		free(v);
	}
	/* The size guard. */
	struct conv_geom g;
	assert_int_equal(conv_geom_init(&g, 96, 32, 32, 256, 5, 1, 2, NULL), SL_OK);
	float *a = NULL;
	struct sl_error err;
	assert_int_equal(spectral_conv_matrix(&g, NULL, 1 << 20, &a, &err), SL_ERR_TOO_LARGE);
	assert_null(a);
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

/* The operator steps split among a team of threads give what one thread
 * gives (the code networks train with is the code tested above). */
static void test_team_steps_match(void **state)
{
	(void)state;
	struct sl_rng rng;
	rng_seed(&rng, 7);
	struct parallel *team;
	assert_int_equal(parallel_new(2, &team, NULL), SL_OK);
	struct conv_geom g;
	assert_int_equal(conv_geom_init(&g, 3, 9, 10, 5, 4, 2, 1, NULL), SL_OK);
	size_t nw = (size_t)g.cout * g.cin * g.k * g.k;
	float *w = malloc(sizeof(float) * nw), *col = malloc(sizeof(float) * conv_col_size(&g));
	for (size_t k = 0; k < nw; k++)
		w[k] = rng_normal(&rng);
	int rows = (int)conv_out_size(&g), cols = (int)conv_in_size(&g);
	for (int kind = 0; kind < 2; kind++) {
		struct spectral_op one = kind ? spectral_op_dense(w, 4, (int)nw / 4, NULL)
					      : spectral_op_conv(&g, w, col, NULL);
		struct spectral_op two = kind ? spectral_op_dense(w, 4, (int)nw / 4, team)
					      : spectral_op_conv(&g, w, col, team);
		int r = kind ? 4 : rows, c = kind ? (int)nw / 4 : cols;
		float *u1 = malloc(sizeof(float) * (size_t)r), *u2 = malloc(sizeof(float) * (size_t)r);
		float *v1 = malloc(sizeof(float) * (size_t)c), *v2 = malloc(sizeof(float) * (size_t)c);
		float *work = malloc(sizeof(float) * (size_t)r);
		spectral_random_unit(&rng, u1, r);
		memcpy(u2, u1, sizeof(float) * (size_t)r);
		for (int k = 0; k < 30; k++) {
			float s1 = spectral_op_step(&one, u1, v1), s2 = spectral_op_step(&two, u2, v2);
			assert_close(s1, s2, 1e-5 * s1);
		}
		assert_close(spectral_op_rayleigh(&one, u1, v1, work),
			     spectral_op_rayleigh(&two, u1, v1, work), 1e-5);
		free(u1);
		free(u2);
		free(v1);
		free(v2);
		free(work);
	}
	free(w);
	free(col);
	parallel_free(team);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_singular_values_known),
		cmocka_unit_test(test_sym_eig_known),
		cmocka_unit_test(test_power_iteration_matches_svd),
		cmocka_unit_test(test_conv_power_iteration_matches_svd),
		cmocka_unit_test(test_bad_arguments),
		cmocka_unit_test(test_team_steps_match),
	};
	return cmocka_run_group_tests_name("spectral", tests, NULL, NULL);
}
