/* test_bounds: every bound of bounds.h against brute force on tiny networks,
 * against each other (floor <= LipSDP <= product), against the exact LMI
 * and closed forms, and the flip search against certified radii. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sectorlab/bounds.h"
#include "sectorlab/lmi.h"
#include "sectorlab/nn.h"
#include "sectorlab/rng.h"
#include "testutil.h"

/* A random tiny network: Gaussian weights of scale 1 / sqrt(fan-in) times
 * a random factor in [0.3, 3] per layer, so the layers' norms differ. */
static void random_mlp(struct bounds_mlp *m, int nlayers, const int *dim, double slope,
		       struct sl_rng *rng)
{
	assert_int_equal(bounds_mlp_new(nlayers, dim, slope, m, NULL), SL_OK);
	for (int i = 0; i < nlayers; i++) {
		double f = (0.3 + 2.7 * rng_uniform(rng)) / sqrt(dim[i]);
		for (int k = 0; k < dim[i] * dim[i + 1]; k++)
			m->w[i][k] = f * rng_normal(rng);
		for (int k = 0; k < dim[i + 1]; k++)
			m->b[i][k] = 0.3 * rng_normal(rng);
	}
}

static double *random_starts(int n, int d, struct sl_rng *rng)
{
	double *x = malloc(sizeof(double) * (size_t)n * d);
	assert_non_null(x);
	for (int k = 0; k < n * d; k++)
		x[k] = 2 * rng_normal(rng);
	return x;
}

/* floor <= pattern max <= LipSDP <= product, and the sector above the
 * pattern max, on tiny networks of one and two hidden layers; with one
 * hidden layer and W_0 of full row rank every pattern occurs, so the
 * pattern max is the Lipschitz constant and the floor must find it. */
static void test_tiny_sandwich(void **state)
{
	(void)state;
	struct sl_rng rng;
	rng_seed(&rng, 7);
	for (int trial = 0; trial < 12; trial++) {
		int deep = trial % 2;
		int dim2[] = {3, 2 + trial % 2, 2}, dim3[] = {3, 3, 2, 2};
		struct bounds_mlp m;
		random_mlp(&m, deep ? 3 : 2, deep ? dim3 : dim2, trial % 3 ? 0.1 : 0.0, &rng);
		double exact, sdp, prod, L1;
		assert_int_equal(bounds_pattern_max(&m, NULL, &exact, NULL), SL_OK);
		struct sl_error err;
		if (bounds_lipsdp(&m, NULL, &sdp, &err) != SL_OK)
			fail_msg("LipSDP: %s", err.msg);
		assert_int_equal(bounds_product(&m, &prod, NULL), SL_OK);
		double *x = random_starts(60, 3, &rng);
		struct bounds_floor fl = {0};
		assert_int_equal(bounds_floor_lipschitz(&m, x, 60, 30, 1, &fl, NULL), SL_OK);
		L1 = fl.L;
		if (!(L1 <= exact * (1 + 1e-9) && exact <= sdp * (1 + 1e-6) &&
		      sdp <= prod * (1 + 1e-6)))
			fail_msg("trial %d: floor %g, pattern max %g, LipSDP %g, product %g", trial,
				 L1, exact, sdp, prod);
		if (!deep && L1 < 0.999 * exact)
			fail_msg("trial %d: the floor %g misses the exact constant %g", trial, L1,
				 exact);
		struct bounds_sector sec;
		if (bounds_tightest_sector(&m, &sec, &err) != SL_OK)
			fail_msg("tightest sector: %s", err.msg);
		if (!(sec.gamma >= exact * (1 - 1e-6)))
			fail_msg("trial %d: sector gamma %g below the pattern max %g", trial,
				 sec.gamma, exact);
		free(x);
		bounds_mlp_free(&m);
	}
}

/* The per-pair SDP bounds each pair's own constant and never exceeds the
 * network bound times sqrt(2). */
static void test_pairs(void **state)
{
	(void)state;
	struct sl_rng rng;
	rng_seed(&rng, 11);
	int dim[] = {4, 3, 3, 3};
	struct bounds_mlp m;
	random_mlp(&m, 3, dim, 0.1, &rng);
	double pair[9], net;
	struct sl_error err;
	if (bounds_lipsdp_pairs(&m, pair, &err) != SL_OK)
		fail_msg("pairs: %s", err.msg);
	assert_int_equal(bounds_lipsdp(&m, NULL, &net, NULL), SL_OK);
	double *x = random_starts(40, 4, &rng);
	double fpair[9];
	struct bounds_floor fl = {.pair = fpair};
	assert_int_equal(bounds_floor_lipschitz(&m, x, 40, 20, 3, &fl, NULL), SL_OK);
	for (int y = 0; y < 3; y++)
		for (int j = 0; j < 3; j++) {
			if (y == j) {
				assert_true(pair[y * 3 + j] == 0);
				continue;
			}
			double dir[3] = {0};
			dir[y] = 1;
			dir[j] = -1;
			double exact;
			assert_int_equal(bounds_pattern_max(&m, dir, &exact, NULL), SL_OK);
			if (!(fpair[y * 3 + j] <= exact * (1 + 1e-9) &&
			      exact <= pair[y * 3 + j] * (1 + 1e-6) &&
			      pair[y * 3 + j] <= sqrt(2) * net * (1 + 1e-6)))
				fail_msg("pair (%d, %d): floor %g, pattern max %g, SDP %g, "
					 "sqrt(2) L %g", y, j, fpair[y * 3 + j], exact,
					 pair[y * 3 + j], sqrt(2) * net);
			assert_true(pair[y * 3 + j] == pair[j * 3 + y]);
		}
	free(x);
	bounds_mlp_free(&m);
}

/* Wide first layers are reduced exactly: the same network with its input
 * embedded in a larger space (extra zero columns, then rotated) has the same
 * LipSDP bound. */
static void test_wide_reduction(void **state)
{
	(void)state;
	struct sl_rng rng;
	rng_seed(&rng, 5);
	int small[] = {2, 3, 2}, wide[] = {9, 3, 2};
	struct bounds_mlp a, b;
	random_mlp(&a, 2, small, 0.1, &rng);
	assert_int_equal(bounds_mlp_new(2, wide, 0.1, &b, NULL), SL_OK);
	/* b's first layer: a's, on coordinates 0, 1 mixed by a rotation into 0, 5 */
	double c = cos(0.7), s = sin(0.7);
	for (int k = 0; k < 3; k++) {
		double w0 = a.w[0][k * 2], w1 = a.w[0][k * 2 + 1];
		b.w[0][k * 9 + 0] = c * w0 - s * w1;
		b.w[0][k * 9 + 5] = s * w0 + c * w1;
	}
	memcpy(b.w[1], a.w[1], sizeof(double) * 6);
	double la, lb;
	assert_int_equal(bounds_lipsdp(&a, NULL, &la, NULL), SL_OK);
	assert_int_equal(bounds_lipsdp(&b, NULL, &lb, NULL), SL_OK);
	assert_true(fabs(la - lb) <= 1e-4 * la);
	bounds_mlp_free(&a);
	bounds_mlp_free(&b);
}

/* A stop hook that says stop at its third call. */
static bool stop_after_three(void *ctx)
{
	int *n = ctx;
	return ++*n >= 3;
}

/* One affine layer: the tightest sector's SDP is the layer's exact LMI (the
 * cascade of one layer is nu <= nu_1, delta <= delta_1), so it agrees with
 * lmi_max_nu; W = 3 I has gamma 3 exactly (sector [3, 3] at delta 1/6). */
static void test_sector_one_layer(void **state)
{
	(void)state;
	int dim[] = {2, 2};
	struct bounds_mlp m;
	assert_int_equal(bounds_mlp_new(1, dim, 0.1, &m, NULL), SL_OK);
	double w[] = {0.5, 0.2, -0.1, 0.4};
	memcpy(m.w[0], w, sizeof w);
	struct bounds_sector s;
	struct sl_error err;
	if (bounds_sector_at(&m, 0.4, &s, &err) != SL_OK)
		fail_msg("%s", err.msg);
	struct lmi_layer l = {w, 2, 2, 1, 1};
	struct lmi_result r;
	assert_int_equal(lmi_max_nu(&l, 0.4, &r, NULL, NULL), SL_OK);
	if (fabs(s.nu - r.nu_max) > 1e-5)
		fail_msg("sector SDP nu %g, exact LMI %g", s.nu, r.nu_max);
	double three[] = {3, 0, 0, 3};
	memcpy(m.w[0], three, sizeof three);
	if (bounds_tightest_sector(&m, &s, &err) != SL_OK)
		fail_msg("%s", err.msg);
	if (!(s.gamma >= 3 * (1 - 1e-6) && s.gamma <= 3.05))
		fail_msg("W = 3 I: gamma %g (delta %g, nu %g), want 3", s.gamma, s.delta, s.nu);
	double L;
	assert_int_equal(bounds_lipsdp(&m, NULL, &L, NULL), SL_OK);
	assert_true(fabs(L - 3) < 1e-9);
	/* the search asks its hook before each SDP and stops when told */
	int asked = 0;
	assert_int_equal(bounds_tightest_sector_until(&m, stop_after_three, &asked, &s, &err),
			 SL_ERR_CANCELLED);
	assert_int_equal(asked, 3);
	bounds_mlp_free(&m);
}

/* Sizes: beyond BOUNDS_SDP_MAX_ORDER the SDP is refused at once. */
static void test_too_large(void **state)
{
	(void)state;
	int dim[] = {784, 300, 300, 10};
	struct bounds_mlp m;
	assert_int_equal(bounds_mlp_new(3, dim, 0.1, &m, NULL), SL_OK);
	double L;
	struct sl_error err;
	int order;
	assert_int_equal(bounds_sdp_fits(&m, &order, NULL), SL_ERR_TOO_LARGE);
	assert_int_equal(order, 900);
	assert_int_equal(bounds_lipsdp(&m, NULL, &L, &err), SL_ERR_TOO_LARGE);
	assert_non_null(strstr(err.msg, "order 900"));
	bounds_mlp_free(&m);
}

/* The network's Jacobian against central differences. */
static void test_jacobian(void **state)
{
	(void)state;
	struct sl_rng rng;
	rng_seed(&rng, 3);
	int dim[] = {5, 4, 3, 2};
	struct bounds_mlp m;
	random_mlp(&m, 3, dim, 0.1, &rng);
	double x[5], jac[10], zp[2], zm[2];
	for (int k = 0; k < 5; k++)
		x[k] = rng_normal(&rng);
	assert_int_equal(bounds_mlp_jacobian(&m, x, jac, NULL), SL_OK);
	for (int t = 0; t < 5; t++) {
		double h = 1e-6, keep = x[t];
		x[t] = keep + h;
		bounds_mlp_forward(&m, x, zp);
		x[t] = keep - h;
		bounds_mlp_forward(&m, x, zm);
		x[t] = keep;
		for (int c = 0; c < 2; c++)
			assert_true(fabs((zp[c] - zm[c]) / (2 * h) - jac[c * 5 + t]) < 1e-6);
	}
	bounds_mlp_free(&m);
}

/* The flip search on a network whose decision is a hyperplane: the
 * shortest flip is the distance to it, and an attack inside a smaller ball
 * finds nothing. */
static void test_flip_radius_linear(void **state)
{
	(void)state;
	struct nn_layer_spec spec[] = {{.kind = NN_DENSE, .in = 4, .out = 2}};
	struct nn_net *net;
	assert_int_equal(nn_new(spec, 1, 8, &net, NULL), SL_OK);
	/* z_0 - z_1 = 2 x_0 + 2 b: the boundary is x_0 = -b, here b = 0 */
	memset(net->params, 0, sizeof(float) * net->nparams);
	net->layers[0].w[0] = 1;
	net->layers[0].w[4] = -1;
	float x[] = {0.3f, 0.1f, -0.2f, 0.0f, 0.7f, 0, 0, 0};
	int y[] = {0, 0};
	double r[2];
	struct bounds_flip_options o = {.steps = 20, .restarts = 1, .bisections = 12,
					.eps_start = 0.1, .eps_max = 4, .seed = 1};
	assert_int_equal(bounds_flip_radius(net, x, y, 2, &o, r, NULL), SL_OK);
	assert_true(r[0] >= 0.3 - 1e-6 && r[0] <= 0.31);
	assert_true(r[1] >= 0.7 - 1e-6 && r[1] <= 0.71);
	double eps[] = {0.29, 0.69};
	bool fl[2];
	assert_int_equal(bounds_attack_inside(net, x, y, 2, eps, &o, fl), 0);
	nn_free(net);
}

/* ||W_i||_2 of m's layer i, by SVD. */
static double layer_norm(const struct bounds_mlp *m, int i)
{
	struct bounds_mlp one = {.nlayers = 1, .dim = {m->dim[i], m->dim[i + 1]}, .w = {m->w[i]},
				 .b = {m->b[i]}, .alpha = {1}, .beta = {1}};
	double s;
	assert_int_equal(bounds_product(&one, &s, NULL), SL_OK);
	return s;
}

/* Each layer's gain floor is its own Lipschitz constant, max(|alpha|,
 * |beta|) ||W_i||, when W_i has full row rank (every unit can be on at
 * once; the last, affine layer's Jacobian is W everywhere), and never
 * above it. */
static void test_layer_floors(void **state)
{
	(void)state;
	struct sl_rng rng;
	rng_seed(&rng, 11);
	for (int trial = 0; trial < 8; trial++) {
		int dim[] = {3, 3, 2, 2};
		struct bounds_mlp m;
		random_mlp(&m, 3, dim, trial % 2 ? 0.1 : 0.0, &rng);
		double *x = random_starts(60, 3, &rng);
		double gain[3];
		assert_int_equal(bounds_floor_layers(&m, x, 60, 30, 5, gain, NULL), SL_OK);
		for (int i = 0; i < 3; i++) {
			double s = layer_norm(&m, i);
			if (!(gain[i] <= s * (1 + 1e-12)) || !(gain[i] >= s * (1 - 1e-12)))
				fail_msg("trial %d, layer %d: floor %.12g, norm %.12g", trial, i,
					 gain[i], s);
		}
		free(x);
		bounds_mlp_free(&m);
	}
}

/* A linear network (leaky ReLU of slope 1) is Lipschitz with the largest
 * singular value of W_2 W_1 W_0 exactly, and the floor finds it; each
 * layer's floor is its own norm. */
static void test_linear_floor(void **state)
{
	(void)state;
	struct sl_rng rng;
	rng_seed(&rng, 3);
	int dim[] = {5, 4, 3, 2};
	struct bounds_mlp m;
	random_mlp(&m, 3, dim, 1.0, &rng);
	/* the product W_2 W_1 W_0, (2, 5) */
	double p1[4 * 5] = {0}, p2[3 * 5] = {0}, p3[2 * 5] = {0};
	for (int r = 0; r < 4; r++)
		for (int c = 0; c < 5; c++)
			p1[r * 5 + c] = m.w[0][r * 5 + c];
	for (int r = 0; r < 3; r++)
		for (int c = 0; c < 5; c++)
			for (int k = 0; k < 4; k++)
				p2[r * 5 + c] += m.w[1][r * 4 + k] * p1[k * 5 + c];
	for (int r = 0; r < 2; r++)
		for (int c = 0; c < 5; c++)
			for (int k = 0; k < 3; k++)
				p3[r * 5 + c] += m.w[2][r * 3 + k] * p2[k * 5 + c];
	struct bounds_mlp prod = {.nlayers = 1, .dim = {5, 2}, .w = {p3}, .b = {m.b[2]},
				  .alpha = {1}, .beta = {1}};
	double exact;
	assert_int_equal(bounds_product(&prod, &exact, NULL), SL_OK);
	double *x = random_starts(5, 5, &rng);
	struct bounds_floor fl = {0};
	assert_int_equal(bounds_floor_lipschitz(&m, x, 5, 10, 1, &fl, NULL), SL_OK);
	if (fabs(fl.L - exact) > 1e-9 * exact)
		fail_msg("linear network: floor %.12g, largest singular value %.12g", fl.L, exact);
	double gain[3];
	assert_int_equal(bounds_floor_layers(&m, x, 5, 10, 1, gain, NULL), SL_OK);
	for (int i = 0; i < 3; i++) {
		double s = layer_norm(&m, i);
		assert_true(fabs(gain[i] - s) <= 1e-9 * s);
	}
	free(x);
	bounds_mlp_free(&m);
}

static bool stop_now(void *ctx)
{
	(void)ctx;
	return true;
}

/* The smallest flipping eps of a linear classifier is the distance to its
 * hyperplane; the search brackets it within tol, PGD at eps flips and at
 * eps (1 - tol) does not (asked again through bounds_attack_inside), and
 * the stop hook cancels it. */
static void test_flip_eps_linear(void **state)
{
	(void)state;
	struct nn_layer_spec spec[] = {{.kind = NN_DENSE, .in = 4, .out = 2}};
	struct nn_net *net;
	assert_int_equal(nn_new(spec, 1, 8, &net, NULL), SL_OK);
	memset(net->params, 0, sizeof(float) * net->nparams);
	net->layers[0].w[0] = 1;
	net->layers[0].w[4] = -1; /* z_0 - z_1 = 2 x_0: the boundary is x_0 = 0 */
	float x[] = {0.3f, 0.1f, -0.2f, 0.0f};
	double tol = 1e-3;
	struct bounds_flip_options o = {.steps = 20, .restarts = 1, .eps_start = 0.05,
					.eps_max = 4, .seed = 2};
	struct bounds_flip_eps fe;
	assert_int_equal(bounds_flip_eps(net, x, 0, &o, tol, &fe, NULL), SL_OK);
	print_message("eps %.6f held %.6f length %.6f, %d attacks\n", fe.eps, fe.held, fe.length,
		      fe.attacks);
	assert_true(fe.eps >= 0.3 - 1e-6 && fe.eps <= 0.3 * (1 + 2 * tol) + 1e-6);
	assert_true(fe.length <= fe.eps && fe.length >= 0.3 - 1e-6);
	assert_true(fabs(fe.held - fe.eps * (1 - tol)) < 1e-15);
	bool fl;
	assert_int_equal(bounds_attack_inside(net, x, (int[]){0}, 1, &fe.eps, &o, &fl), 1);
	assert_int_equal(bounds_attack_inside(net, x, (int[]){0}, 1, &fe.held, &o, &fl), 0);
	/* a wrong class: flipped at 0; out of reach: infinite */
	assert_int_equal(bounds_flip_eps(net, x, 1, &o, tol, &fe, NULL), SL_OK);
	assert_true(fe.eps == 0);
	o.eps_max = 0.1;
	assert_int_equal(bounds_flip_eps(net, x, 0, &o, tol, &fe, NULL), SL_OK);
	assert_true(isinf(fe.eps) && fe.held == 0.1 /* 0.05, then 0.1 held */);
	o.stop = stop_now;
	struct sl_error err;
	assert_int_equal(bounds_flip_eps(net, x, 0, &o, tol, &fe, &err), SL_ERR_CANCELLED);
	nn_free(net);
}

/* On a small trained-looking nonlinear network: the same two PGD facts at
 * the ends of the bracket, and the product bound's certified radius below
 * the flipping eps, for every input the network classifies. */
static void test_flip_eps_mlp(void **state)
{
	(void)state;
	struct nn_layer_spec spec[] = {
		{.kind = NN_DENSE, .in = 6, .out = 8, .act = NN_ACT_LEAKY_RELU, .slope = 0.1f},
		{.kind = NN_DENSE, .in = 8, .out = 3}};
	struct nn_net *net;
	assert_int_equal(nn_new(spec, 2, 8, &net, NULL), SL_OK);
	struct sl_rng rng;
	rng_seed(&rng, 9);
	nn_init_glorot(net, &rng);
	struct bounds_mlp m;
	assert_int_equal(bounds_mlp_from_net(net, &m, NULL), SL_OK);
	double L;
	assert_int_equal(bounds_product(&m, &L, NULL), SL_OK);
	double tol = 0.01;
	struct bounds_flip_options o = {.steps = 30, .restarts = 1, .eps_start = 0.1,
					.eps_max = 64, .seed = 4};
	int checked = 0;
	for (int trial = 0; trial < 6; trial++) {
		float x[6];
		double xd[6], z[3];
		for (int k = 0; k < 6; k++)
			xd[k] = x[k] = (float)(2 * rng_normal(&rng));
		bounds_mlp_forward(&m, xd, z);
		int y = 0;
		for (int c = 1; c < 3; c++)
			y = z[c] > z[y] ? c : y;
		double margin = INFINITY;
		for (int c = 0; c < 3; c++)
			if (c != y)
				margin = fmin(margin, z[y] - z[c]);
		struct bounds_flip_eps fe;
		struct sl_error err;
		if (bounds_flip_eps(net, x, y, &o, tol, &fe, &err) != SL_OK)
			fail_msg("%s", err.msg);
		if (fe.eps == 0 || isinf(fe.eps))
			continue; /* a tie in float, or out of reach */
		checked++;
		bool fl;
		assert_int_equal(bounds_attack_inside(net, x, &y, 1, &fe.eps, &o, &fl), 1);
		double below = fe.eps * (1 - tol);
		assert_int_equal(bounds_attack_inside(net, x, &y, 1, &below, &o, &fl), 0);
		double certified = margin / (sqrt(2) * L);
		if (!(certified <= fe.length && fe.length <= fe.eps))
			fail_msg("certified %g, flip at length %g, eps %g", certified, fe.length,
				 fe.eps);
	}
	assert_true(checked >= 4);
	bounds_mlp_free(&m);
	nn_free(net);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tiny_sandwich),
		cmocka_unit_test(test_pairs),
		cmocka_unit_test(test_wide_reduction),
		cmocka_unit_test(test_sector_one_layer),
		cmocka_unit_test(test_too_large),
		cmocka_unit_test(test_jacobian),
		cmocka_unit_test(test_flip_radius_linear),
		cmocka_unit_test(test_layer_floors),
		cmocka_unit_test(test_linear_floor),
		cmocka_unit_test(test_flip_eps_linear),
		cmocka_unit_test(test_flip_eps_mlp),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
