/* test_sector: the worked checks of DESIGN.md §1, refusals, and properties of
 * the allocation (every answer verified independently, none beaten nearby). */
#include "testutil.h"

#include <math.h>
#include <string.h>

#include "sectorlab/linalg.h"
#include "sectorlab/rng.h"
#include "sectorlab/certify.h"
#include "sectorlab/sector.h"

/* ---- slopes, gamma, radius ---- */

static void test_slopes_worked(void **state)
{
	(void)state;
	struct {
		double nu, delta, lo, hi;
	} c[] = {
		{-2, 0.4, -1.311738, 3.811738},
		{-0.4, 4, -0.215037, 0.465037},
		{-4, 0.4, -2.150368, 4.650368},
	};
	for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
		double lo, hi;
		assert_int_equal(sector_slopes(c[i].nu, c[i].delta, &lo, &hi, NULL), SL_OK);
		assert_close(lo, c[i].lo, 5e-7);
		assert_close(hi, c[i].hi, 5e-7);
		/* both slopes sit on the boundary -delta k^2 + k - nu = 0 */
		assert_close(-c[i].delta * lo * lo + lo - c[i].nu, 0, 1e-12);
		assert_close(-c[i].delta * hi * hi + hi - c[i].nu, 0, 1e-12);
	}
}

static void test_slopes_impossible(void **state)
{
	(void)state;
	struct sl_error err;
	double lo = 7, hi = 8;
	assert_int_equal(sector_slopes(-2, 0, &lo, &hi, &err), SL_ERR_RANGE);
	assert_non_null(strstr(err.msg, "delta"));
	assert_int_equal(sector_slopes(-2, -0.5, &lo, &hi, &err), SL_ERR_RANGE);
	assert_int_equal(sector_slopes(1, 1, &lo, &hi, &err), SL_ERR_INFEASIBLE);
	assert_non_null(strstr(err.msg, "empty sector"));
	assert_int_equal(sector_slopes(NAN, 1, &lo, &hi, &err), SL_ERR_ARG);
	/* outputs untouched: no NaN leaks out */
	assert_true(lo == 7 && hi == 8);
	/* 4 delta nu = 1 exactly is the one-slope sector */
	assert_int_equal(sector_slopes(0.25, 1, &lo, &hi, NULL), SL_OK);
	assert_close(lo, 0.5, 1e-15);
	assert_close(hi, 0.5, 1e-15);
}

static void test_gamma_and_radius(void **state)
{
	(void)state;
	double g, r;
	assert_int_equal(sector_gamma(-2, 0.4, &g, NULL), SL_OK);
	assert_close(g, 3.811738, 5e-7);
	assert_int_equal(sector_gamma(0, 1, &g, NULL), SL_OK);
	assert_close(g, 1, 1e-15);
	assert_int_equal(sector_gamma(1, 1, &g, NULL), SL_ERR_INFEASIBLE);

	/* radius = M / (sqrt(2) gamma) */
	assert_int_equal(sector_radius(1, 1, &r, NULL), SL_OK);
	assert_close(r, 0.70710678, 1e-8);
	assert_int_equal(sector_gamma(-2, 0.4, &g, NULL), SL_OK);
	assert_int_equal(sector_radius(2, g, &r, NULL), SL_OK);
	assert_close(r, 2 / (sqrt(2.0) * 3.8117376), 1e-7);
	assert_int_equal(sector_radius(-0.3, g, &r, NULL), SL_OK);
	assert_close(r, 0, 0);
	assert_int_equal(sector_radius(1, 0, &r, NULL), SL_ERR_ARG);
	assert_int_equal(sector_radius(NAN, 1, &r, NULL), SL_ERR_ARG);
}

/* ---- activations ---- */

static void test_activation_sectors(void **state)
{
	(void)state;
	struct sector_act a;
	assert_int_equal(sector_act(SECTOR_ACT_LEAKY, 0.1, &a, NULL), SL_OK);
	assert_close(a.alpha, 0.1, 0);
	assert_close(a.beta, 1, 0);
	assert_close(a.m, 0.55, 1e-15);
	assert_close(a.p, 0.1, 1e-15);
	assert_int_equal(sector_act(SECTOR_ACT_LEAKY, 0.3, &a, NULL), SL_OK);
	assert_close(a.m, 0.65, 1e-15);
	assert_close(a.p, 0.3, 1e-15);
	assert_int_equal(sector_act(SECTOR_ACT_LEAKY, 2, &a, NULL), SL_OK); /* [1, 2] */
	assert_close(a.alpha, 1, 0);
	assert_close(a.beta, 2, 0);
	assert_int_equal(sector_act(SECTOR_ACT_RELU, 0, &a, NULL), SL_OK);
	assert_close(a.m, 0.5, 0);
	assert_close(a.p, 0, 0);
	assert_int_equal(sector_act(SECTOR_ACT_TANH, 0, &a, NULL), SL_OK);
	assert_close(a.m, 0.5, 0);
	assert_close(a.p, 0, 0);
	assert_int_equal(sector_act(SECTOR_ACT_IDENTITY, 0, &a, NULL), SL_OK);
	assert_close(a.m, 1, 0);
	assert_close(a.p, 1, 0);
	assert_int_equal(sector_act_bounds(-1, 1, &a, NULL), SL_OK);
	assert_close(a.p, -1, 0);
	assert_int_equal(sector_act_bounds(1, -1, &a, NULL), SL_ERR_ARG);
	assert_int_equal(sector_act(SECTOR_ACT_LEAKY, NAN, &a, NULL), SL_ERR_ARG);
}

/* ---- Theorem 4 ---- */

static void test_theorem4_worked(void **state)
{
	(void)state;
	struct {
		double nu, delta, m, p, s, rho;
		sl_status st;
		enum sector_t4_branch branch;
	} c[] = {
		{-2, 0.4, 0.55, 0.1, 0, 1.136364, SL_OK, SECTOR_T4_S_ZERO},
		{-1, 0.5, 0.55, 0.1, 0, 0.606061, SL_OK, SECTOR_T4_S_ZERO},
		{-4, 0.4, 0.55, 0.1, 0, 1.446281, SL_OK, SECTOR_T4_S_ZERO},
		{-0.4, 4, 0.55, 0.1, 0, -0.041322, SL_ERR_INFEASIBLE, SECTOR_T4_S_ZERO},
		{-2, 0.4, 1, 1, 0, 0.625, SL_OK, SECTOR_T4_S_ZERO},
		{-2, 0.4, 0.55, 0.1, 0.5, 1.153409, SL_OK, SECTOR_T4_GENERAL},
		/* ReLU: s drops out */
		{-2, 0.4, 0.5, 0, 0.9, 1.25, SL_OK, SECTOR_T4_P_ZERO},
	};
	for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
		struct sector_t4 t;
		struct sl_error err;
		sl_status st = sector_theorem4(c[i].nu, c[i].delta, c[i].m, c[i].p, c[i].s, &t, &err);
		assert_int_equal(st, c[i].st);
		assert_close(t.rho, c[i].rho, 5e-7);
		assert_int_equal(t.branch, c[i].branch);
		if (st == SL_ERR_INFEASIBLE)
			assert_non_null(strstr(err.msg, "-0.5"));
	}
}

static void test_theorem4_refusals(void **state)
{
	(void)state;
	struct sector_t4 t;
	struct sl_error err;
	assert_int_equal(sector_theorem4(-2, 0.4, 0, -1, 0, &t, &err), SL_ERR_UNSUPPORTED);
	assert_int_equal(t.branch, SECTOR_T4_REFUSED);
	assert_non_null(strstr(err.msg, "p >= 0"));
	assert_int_equal(sector_theorem4(-2, 0.4, 0.55, 0.1, 4, &t, &err), SL_ERR_UNSUPPORTED);
	assert_non_null(strstr(err.msg, "(17)"));
	assert_int_equal(sector_theorem4(-2, 0, 0.55, 0.1, 0, &t, &err), SL_ERR_UNSUPPORTED);
	assert_int_equal(sector_theorem4(-2, -1, 0.55, 0.1, 0, &t, &err), SL_ERR_UNSUPPORTED);
	assert_int_equal(sector_theorem4(1, 0.2, 0.55, 0.1, 0, &t, &err), SL_ERR_UNSUPPORTED);
	assert_int_equal(sector_theorem4(2, 1, 0.55, 0.1, 0, &t, &err), SL_ERR_UNSUPPORTED);
	assert_int_equal(sector_theorem4(-2, 0.4, 0, 0, 0, &t, &err), SL_ERR_UNSUPPORTED);
	assert_int_equal(sector_theorem4(-2, 0.4, 0.55, 0.1, -1, &t, &err), SL_ERR_ARG);
	assert_int_equal(sector_theorem4(NAN, 0.4, 0.55, 0.1, 0, &t, &err), SL_ERR_ARG);
	assert_close(t.rho, 0, 0);
}

/* the bound grows with s, so s = 0 is always safe */
static void test_theorem4_monotone_in_s(void **state)
{
	(void)state;
	double prev = -INFINITY;
	for (double s = 0; s < 3.1; s += 0.25) {
		struct sector_t4 t;
		assert_int_equal(sector_theorem4(-2, 0.4, 0.55, 0.1, s, &t, NULL), SL_OK);
		assert_true(t.rho >= prev);
		prev = t.rho;
	}
}

/* ---- pooling ---- */

static void test_pool(void **state)
{
	(void)state;
	double nu, delta;
	assert_int_equal(sector_pool_indices(2, 0.5, &nu, &delta, NULL), SL_OK);
	assert_close(nu, -4, 0);
	assert_close(delta, 0.5, 0);
	assert_close(sector_pool_lipschitz(4), 2, 0);
	assert_int_equal(sector_pool_indices(2, 0, &nu, &delta, NULL), SL_ERR_ARG);
	/* a k-Lipschitz increment satisfies the supply with (-k - d k^2, d) */
	struct sl_rng r;
	rng_seed(&r, 11);
	for (int t = 0; t < 2000; t++) {
		double k = 0.1 + 3 * rng_uniform(&r), d = 0.01 + 5 * rng_uniform(&r);
		assert_int_equal(sector_pool_indices(k, d, &nu, &delta, NULL), SL_OK);
		double dx[4], dy[4], nx = 0, ny = 0, dot = 0;
		for (int i = 0; i < 4; i++) {
			dx[i] = rng_normal(&r);
			dy[i] = rng_normal(&r);
			nx += dx[i] * dx[i];
			ny += dy[i] * dy[i];
		}
		double scale = k * sqrt(nx / ny) * rng_uniform(&r); /* |dy| <= k |dx| */
		for (int i = 0; i < 4; i++)
			dot += dx[i] * dy[i] * scale;
		double supply = -delta * ny * scale * scale + dot - nu * nx;
		assert_true(supply >= -1e-9 * (1 + nx));
	}
}

/* ---- Theorem 3 ---- */

static void test_cascade_worked(void **state)
{
	(void)state;
	double nus[] = {-1, -2, -3}, deltas[] = {0.1, 0.2, 0.3}, a[16], me;
	assert_int_equal(sector_cascade_matrix(-2, 0.4, nus, deltas, 3, a, NULL), SL_OK);
	double diag[] = {-1, 1.9, 2.8, 0.1};
	for (int i = 0; i < 4; i++)
		assert_close(a[i * 4 + i], diag[i], 1e-15);
	assert_close(a[0 * 4 + 1], 0.5, 0);
	assert_close(a[2 * 4 + 3], 0.5, 0);
	assert_close(a[0 * 4 + 3], -0.5, 0);
	assert_close(a[3 * 4 + 0], -0.5, 0);
	assert_close(a[0 * 4 + 2], 0, 0);
	assert_int_equal(sector_cascade_max_eig(-2, 0.4, nus, deltas, 3, &me, NULL), SL_OK);
	assert_close(me, 3.0965, 5e-5);
}

/* one layer: the network is the layer, A = diag(nu - nu_1, delta - delta_1) */
static void test_cascade_single(void **state)
{
	(void)state;
	double nu1 = -3, d1 = 0.5, a[4];
	assert_int_equal(sector_cascade_matrix(-2, 0.4, &nu1, &d1, 1, a, NULL), SL_OK);
	assert_close(a[0], 1, 1e-15);
	assert_close(a[1], 0, 0);
	assert_close(a[2], 0, 0);
	assert_close(a[3], -0.1, 1e-15);
	assert_int_equal(sector_cascade_matrix(-2, 0.4, &nu1, &d1, 0, a, NULL), SL_ERR_ARG);
}

/* ---- models ---- */

static void test_models(void **state)
{
	(void)state;
	/* The sector layers come from the models' own layer tables. */
	struct sector_layer l[SECTOR_MAX_LAYERS];
	struct sl_error err;
	assert_int_equal(certify_model_layers(MODEL_MLP, l, SECTOR_MAX_LAYERS, NULL), 3);
	assert_int_equal(l[0].kind, SECTOR_LAYER_DENSE);
	/* The slope is the network's own, the float 0.1f. */
	assert_close(l[0].sector.m, (1 + (double)0.1f) / 2, 1e-15);
	assert_close(l[2].sector.m, 1, 0);
	assert_close(l[2].sector.p, 1, 0);
	for (int i = 0; i < 2; i++) {
		enum model_id id = i ? MODEL_ALEXNET_LITE : MODEL_ALEXNET;
		assert_int_equal(certify_model_layers(id, l, SECTOR_MAX_LAYERS, NULL), 7);
		enum sector_layer_kind kinds[] = {SECTOR_LAYER_CONV,  SECTOR_LAYER_POOL,
						  SECTOR_LAYER_CONV,  SECTOR_LAYER_POOL,
						  SECTOR_LAYER_DENSE, SECTOR_LAYER_DENSE,
						  SECTOR_LAYER_DENSE};
		for (int j = 0; j < 7; j++)
			assert_int_equal(l[j].kind, kinds[j]);
		/* 3x3 windows with stride 2 overlap at most twice per axis: k = 2 */
		assert_close(l[1].k, 2, 0);
		assert_close(l[6].sector.p, 1, 0);
	}
	assert_int_equal(certify_model_layers(MODEL_ALEXNET, l, 3, &err), -1);
	assert_int_equal(err.code, SL_ERR_ARG);
}

/* ---- allocation ---- */

/* Check an allocation from scratch: A <= 0, delta_i > 0, rho_i as Theorem 4
 * says, pools on (-k - d k^2, d).  Returns the product of the rho_i. */
static double verify_allocation(double nu, double delta, const struct sector_layer *l, int n,
				const struct sector_allocation *a)
{
	double nus[SECTOR_MAX_LAYERS], ds[SECTOR_MAX_LAYERS], prod = 1, me;
	assert_int_equal(a->n, n);
	for (int i = 0; i < n; i++) {
		nus[i] = a->layer[i].nu;
		ds[i] = a->layer[i].delta;
		assert_true(ds[i] > 0);
		if (l[i].kind == SECTOR_LAYER_POOL) {
			assert_false(a->layer[i].has_rho);
			assert_close(nus[i], -l[i].k - ds[i] * l[i].k * l[i].k, 1e-12 * (1 + fabs(nus[i])));
			continue;
		}
		struct sector_t4 t;
		assert_int_equal(sector_theorem4(nus[i], ds[i], l[i].sector.m, l[i].sector.p, l[i].s,
						 &t, NULL),
				 SL_OK);
		assert_true(a->layer[i].has_rho);
		assert_true(t.rho > 0);
		assert_close(a->layer[i].rho, t.rho, 1e-12);
		prod *= t.rho;
	}
	assert_int_equal(sector_cascade_max_eig(nu, delta, nus, ds, n, &me, NULL), SL_OK);
	assert_true(me <= SECTOR_ALLOC_TOL);
	assert_close(a->max_eig_a, me, 1e-12);
	assert_close(a->rho_product, prod, 1e-12 * prod);
	return prod;
}

static void test_allocate_mnist(void **state)
{
	(void)state;
	struct sector_layer l[SECTOR_MAX_LAYERS];
	int n = certify_model_layers(MODEL_MLP, l, SECTOR_MAX_LAYERS, NULL);
	struct sector_allocation a;
	struct sl_error err;
	assert_int_equal(sector_allocate(-2, 0.4, l, n, SECTOR_OBJ_PRODUCT, &a, &err), SL_OK);
	double prod = verify_allocation(-2, 0.4, l, n, &a);
	/* DESIGN.md: a careful search finds (0.272, 0.823, 0.616), product 0.138 */
	assert_true(prod >= 0.138 - 1e-3);
	assert_close(a.layer[0].rho, 0.272, 1e-3);
	assert_close(a.layer[1].rho, 0.823, 1e-3);
	assert_close(a.layer[2].rho, 0.616, 1e-3);
	for (int i = 0; i < n; i++)
		assert_int_equal(a.layer[i].branch, SECTOR_T4_S_ZERO);

	/* deterministic: the same answer, bit for bit */
	struct sector_allocation b;
	assert_int_equal(sector_allocate(-2, 0.4, l, n, SECTOR_OBJ_PRODUCT, &b, &err), SL_OK);
	for (int i = 0; i < n; i++) {
		assert_true(a.layer[i].nu == b.layer[i].nu);
		assert_true(a.layer[i].delta == b.layer[i].delta);
	}
}

/* No feasible point near the answer does better (a local-optimality probe). */
static void test_allocate_local_optimum(void **state)
{
	(void)state;
	struct sector_layer l[SECTOR_MAX_LAYERS];
	int n = certify_model_layers(MODEL_MLP, l, SECTOR_MAX_LAYERS, NULL);
	struct sector_allocation a;
	assert_int_equal(sector_allocate(-2, 0.4, l, n, SECTOR_OBJ_PRODUCT, &a, NULL), SL_OK);
	struct sl_rng r;
	rng_seed(&r, 5);
	for (int t = 0; t < 3000; t++) {
		double nus[3], ds[3], prod = 1, me, step = t < 1500 ? 1e-3 : 1e-2;
		bool ok = true;
		for (int i = 0; i < n; i++) {
			nus[i] = a.layer[i].nu * (1 + step * rng_normal(&r));
			ds[i] = a.layer[i].delta * (1 + step * rng_normal(&r));
			struct sector_t4 t4;
			ok = ok && sector_theorem4(nus[i], ds[i], l[i].sector.m, l[i].sector.p, 0, &t4,
						   NULL) == SL_OK;
			prod *= t4.rho;
		}
		if (!ok || sector_cascade_max_eig(-2, 0.4, nus, ds, n, &me, NULL) != SL_OK || me > 0)
			continue;
		assert_true(prod <= a.rho_product * (1 + 1e-7));
	}
}

static void test_allocate_min_objective(void **state)
{
	(void)state;
	struct sector_layer l[SECTOR_MAX_LAYERS];
	int n = certify_model_layers(MODEL_MLP, l, SECTOR_MAX_LAYERS, NULL);
	struct sector_allocation p, m;
	assert_int_equal(sector_allocate(-2, 0.4, l, n, SECTOR_OBJ_PRODUCT, &p, NULL), SL_OK);
	assert_int_equal(sector_allocate(-2, 0.4, l, n, SECTOR_OBJ_MIN, &m, NULL), SL_OK);
	verify_allocation(-2, 0.4, l, n, &m);
	assert_true(m.rho_min >= p.rho_min);
	assert_true(p.rho_product >= m.rho_product);
	/* at the max-min every bound is equal here */
	for (int i = 0; i < n; i++)
		assert_close(m.layer[i].rho, m.rho_min, 1e-6);
}

static void test_allocate_infeasible(void **state)
{
	(void)state;
	struct sector_layer l[SECTOR_MAX_LAYERS];
	int n = certify_model_layers(MODEL_MLP, l, SECTOR_MAX_LAYERS, NULL);
	struct sector_allocation a;
	struct sl_error err;
	/* (-0.4, 4): a wide first layer needs nu_1 < -0.5, the cascade nu_1 >= -0.4 */
	assert_int_equal(sector_allocate(-0.4, 4, l, n, SECTOR_OBJ_PRODUCT, &a, &err),
			 SL_ERR_INFEASIBLE);
	assert_non_null(strstr(err.msg, "-0.5"));
	assert_non_null(strstr(err.msg, "s = 0"));
	assert_int_equal(sector_allocate(-2, 0, l, n, SECTOR_OBJ_PRODUCT, &a, &err), SL_ERR_RANGE);
	assert_int_equal(sector_allocate(1, 1, l, n, SECTOR_OBJ_PRODUCT, &a, &err),
			 SL_ERR_INFEASIBLE);
	/* a sector with alpha < 0 < beta is refused, with its layer named */
	assert_int_equal(sector_layer_weighted(SECTOR_LAYER_DENSE, SECTOR_ACT_LEAKY, -0.5, 0, &l[1],
					       NULL),
			 SL_OK);
	assert_int_equal(sector_allocate(-2, 0.4, l, n, SECTOR_OBJ_PRODUCT, &a, &err),
			 SL_ERR_UNSUPPORTED);
	assert_non_null(strstr(err.msg, "layer 2"));
	/* a pool first: nu_1 < -k always, so nu >= -k is impossible */
	struct sector_layer pl[2];
	assert_int_equal(sector_layer_pool(2, &pl[0], NULL), SL_OK);
	assert_int_equal(sector_layer_weighted(SECTOR_LAYER_DENSE, SECTOR_ACT_IDENTITY, 0, 0, &pl[1],
					       NULL),
			 SL_OK);
	assert_int_equal(sector_allocate(-1.5, 0.4, pl, 2, SECTOR_OBJ_PRODUCT, &a, &err),
			 SL_ERR_INFEASIBLE);
	assert_int_equal(sector_allocate(-10, 0.4, pl, 2, SECTOR_OBJ_PRODUCT, &a, &err), SL_OK);
	verify_allocation(-10, 0.4, pl, 2, &a);
}

/* One layer: the best is (nu_1, delta_1) -> (nu, delta), rho -> Theorem 4 there. */
static void test_allocate_single_layer(void **state)
{
	(void)state;
	struct sector_layer l;
	assert_int_equal(sector_layer_weighted(SECTOR_LAYER_DENSE, SECTOR_ACT_LEAKY, 0.1, 0, &l,
					       NULL),
			 SL_OK);
	struct sector_allocation a;
	assert_int_equal(sector_allocate(-2, 0.4, &l, 1, SECTOR_OBJ_PRODUCT, &a, NULL), SL_OK);
	verify_allocation(-2, 0.4, &l, 1, &a);
	assert_close(a.layer[0].rho, 1.136364, 1e-6);
}

static void test_allocate_alexnet(void **state)
{
	(void)state;
	struct sector_layer l[SECTOR_MAX_LAYERS];
	int n = certify_model_layers(MODEL_ALEXNET, l, SECTOR_MAX_LAYERS, NULL);
	for (int o = 0; o < 2; o++) {
		struct sector_allocation a;
		assert_int_equal(sector_allocate(-2, 0.4, l, n, o ? SECTOR_OBJ_MIN : SECTOR_OBJ_PRODUCT,
						 &a, NULL),
				 SL_OK);
		verify_allocation(-2, 0.4, l, n, &a);
	}
}

/* Random indices and random layer stacks: every returned answer verifies. */
static void test_allocate_random_property(void **state)
{
	(void)state;
	struct sl_rng r;
	rng_seed(&r, 2024);
	int solved = 0;
	for (int t = 0; t < 120; t++) {
		struct sector_layer l[8];
		int n = 1 + (int)rng_below(&r, 8);
		for (int i = 0; i < n; i++) {
			if (i > 0 && rng_uniform(&r) < 0.25) {
				assert_int_equal(sector_layer_pool(0.5 + 2 * rng_uniform(&r), &l[i], NULL),
						 SL_OK);
				continue;
			}
			enum sector_act_kind act = (enum sector_act_kind)rng_below(&r, 4);
			double s = rng_uniform(&r) < 0.3 ? rng_uniform(&r) : 0;
			assert_int_equal(sector_layer_weighted(SECTOR_LAYER_DENSE, act,
							       0.05 + 0.5 * rng_uniform(&r), s, &l[i],
							       NULL),
					 SL_OK);
		}
		double nu = -8 * rng_uniform(&r), delta = 0.02 + 3 * rng_uniform(&r);
		enum sector_objective obj = t % 3 == 2 ? SECTOR_OBJ_MIN : SECTOR_OBJ_PRODUCT;
		struct sector_allocation a;
		struct sl_error err;
		sl_status st = sector_allocate(nu, delta, l, n, obj, &a, &err);
		if (st == SL_OK) {
			verify_allocation(nu, delta, l, n, &a);
			solved++;
		} else {
			assert_int_equal(st, SL_ERR_INFEASIBLE);
			assert_true(strlen(err.msg) > 20);
		}
	}
	assert_true(solved > 60);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_slopes_worked),
		cmocka_unit_test(test_slopes_impossible),
		cmocka_unit_test(test_gamma_and_radius),
		cmocka_unit_test(test_activation_sectors),
		cmocka_unit_test(test_theorem4_worked),
		cmocka_unit_test(test_theorem4_refusals),
		cmocka_unit_test(test_theorem4_monotone_in_s),
		cmocka_unit_test(test_pool),
		cmocka_unit_test(test_cascade_worked),
		cmocka_unit_test(test_cascade_single),
		cmocka_unit_test(test_models),
		cmocka_unit_test(test_allocate_mnist),
		cmocka_unit_test(test_allocate_local_optimum),
		cmocka_unit_test(test_allocate_min_objective),
		cmocka_unit_test(test_allocate_infeasible),
		cmocka_unit_test(test_allocate_single_layer),
		cmocka_unit_test(test_allocate_alexnet),
		cmocka_unit_test(test_allocate_random_property),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
