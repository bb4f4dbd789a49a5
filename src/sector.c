/*
 * sector: indices, Theorems 3 and 4, pooling, and the allocation (see sector.h).
 *
 * The allocation is a small nonlinear program.  Variables: (nu_i, delta_i) for
 * every layer.  Constraints: B = -A is positive semidefinite (Theorem 3), every
 * delta_i > 0 (and below a generous box), every weighted layer has a positive
 * Theorem 4 bound, and a pool layer stays on its side of nu_i <= -k - k^2 delta_i.
 * Its structure, which the method below relies on:
 *   - each variable sits on exactly one diagonal entry of B, with coefficient +1
 *     (nu_i on entry i-1, delta_i on entry i), so B is affine in the variables
 *     and the gradient and Hessian of log det B are read off B^{-1};
 *   - rho_i is a ratio of two affine functions of (nu_i, delta_i), so
 *     "rho_i >= t" is a linear constraint, and log rho_i is concave in nu_i;
 *   - A only gets better as any nu_i or delta_i grows, while rho_i grows as nu_i
 *     falls: the optimum sits on the boundary of {B >= 0}.
 * Solved by a primal barrier method, all Newton steps on at most 2n + 1
 * variables with B at most 17 x 17:
 *   phase I   maximize sigma with B >= sigma I and every slack >= sigma: a
 *             concave problem, so sigma* <= 0 proves there is no allocation;
 *   product   follow the central path of sum log rho_i + tau * barrier as tau
 *             shrinks (not jointly concave: the Newton matrix is shifted until
 *             definite; layers with s > 0 add starts, see alloc_product);
 *   min       the generalized-fractional iteration of Crouzeix, Ferland and
 *             Schaible, each step a concave phase-I-like problem: the global
 *             max-min.
 * Every iterate is strictly feasible; the answer is checked with LAPACK and
 * Theorem 4 before it is returned.  No randomness: same input, same answer.
 */
#include "sectorlab/sector.h"

#include <math.h>
#include <string.h>

#include "sectorlab/linalg.h"

/* ---- Indices, slopes, Lipschitz bound, radius ---- */

static sl_status check_indices(double nu, double delta, struct sl_error *err)
{
	if (!isfinite(nu) || !isfinite(delta))
		return status_set(err, SL_ERR_ARG, "indices (nu, delta) = (%g, %g) are not finite",
				  nu, delta);
	if (delta <= 0)
		return status_set(err, SL_ERR_RANGE,
				  "delta = %g <= 0: the indices (%g, %g) put no upper slope on the "
				  "output, so they give no sector and no Lipschitz bound; delta must be > 0",
				  delta, nu, delta);
	if (4 * delta * nu > 1)
		return status_set(err, SL_ERR_INFEASIBLE,
				  "4 delta nu = %g > 1: no slope k satisfies -delta k^2 + k - nu >= 0, "
				  "so the indices (%g, %g) describe an empty sector",
				  4 * delta * nu, nu, delta);
	return SL_OK;
}

sl_status sector_slopes(double nu, double delta, double *lo, double *hi, struct sl_error *err)
{
	sl_status st = check_indices(nu, delta, err);
	if (st != SL_OK)
		return st;
	/* Definition II.2: k = (1 -/+ sqrt(1 - 4 delta nu)) / (2 delta) */
	double root = sqrt(1 - 4 * delta * nu);
	*lo = (1 - root) / (2 * delta);
	*hi = (1 + root) / (2 * delta);
	return SL_OK;
}

sl_status sector_gamma(double nu, double delta, double *gamma, struct sl_error *err)
{
	double lo, hi;
	sl_status st = sector_slopes(nu, delta, &lo, &hi, err);
	if (st != SL_OK)
		return st;
	/* DESIGN.md §1: with delta > 0 the network is gamma = k_hi Lipschitz */
	*gamma = hi;
	return SL_OK;
}

sl_status sector_radius(double margin, double gamma, double *radius, struct sl_error *err)
{
	if (!isfinite(margin) || !isfinite(gamma) || gamma <= 0)
		return status_set(err, SL_ERR_ARG,
				  "certified radius needs a finite margin and gamma > 0 (got %g, %g)",
				  margin, gamma);
	/* DESIGN.md §1: the class is kept for ||d||_2 < M / (sqrt(2) gamma) */
	*radius = margin > 0 ? margin / (sqrt(2.0) * gamma) : 0;
	return SL_OK;
}

/* ---- Activation sectors ---- */

sl_status sector_act_bounds(double alpha, double beta, struct sector_act *out,
			    struct sl_error *err)
{
	if (!isfinite(alpha) || !isfinite(beta) || alpha > beta)
		return status_set(err, SL_ERR_ARG,
				  "activation sector [%g, %g] must be finite with alpha <= beta",
				  alpha, beta);
	/* Theorem 1: m = (alpha + beta) / 2, p = alpha beta */
	out->alpha = alpha;
	out->beta = beta;
	out->m = (alpha + beta) / 2;
	out->p = alpha * beta;
	return SL_OK;
}

sl_status sector_act(enum sector_act_kind kind, double slope, struct sector_act *out,
		     struct sl_error *err)
{
	switch (kind) {
	case SECTOR_ACT_IDENTITY:
		return sector_act_bounds(1, 1, out, err);
	case SECTOR_ACT_RELU:
	case SECTOR_ACT_TANH:
		/* both are nondecreasing with slopes in [0, 1] */
		return sector_act_bounds(0, 1, out, err);
	case SECTOR_ACT_LEAKY:
		if (!isfinite(slope))
			return status_set(err, SL_ERR_ARG, "leaky ReLU slope %g is not finite",
					  slope);
		/* slopes a (x < 0) and 1 (x > 0): sector [min(a, 1), max(a, 1)] */
		return sector_act_bounds(fmin(slope, 1), fmax(slope, 1), out, err);
	}
	return status_set(err, SL_ERR_ARG, "unknown activation kind %d", (int)kind);
}

const char *sector_act_name(enum sector_act_kind kind)
{
	switch (kind) {
	case SECTOR_ACT_IDENTITY:
		return "identity";
	case SECTOR_ACT_RELU:
		return "relu";
	case SECTOR_ACT_LEAKY:
		return "leaky";
	case SECTOR_ACT_TANH:
		return "tanh";
	}
	return "unknown";
}

/* ---- Theorem 4 ---- */

sl_status sector_theorem4(double nu, double delta, double m, double p, double s,
			  struct sector_t4 *out, struct sl_error *err)
{
	out->rho = 0;
	out->branch = SECTOR_T4_REFUSED;
	if (!isfinite(nu) || !isfinite(delta) || !isfinite(m) || !isfinite(p) || !isfinite(s))
		return status_set(err, SL_ERR_ARG, "Theorem 4: non-finite input");
	if (s < 0)
		return status_set(err, SL_ERR_ARG, "Theorem 4: s = ||W||_i = %g must be >= 0", s);
	if (delta <= 0)
		return status_set(err, SL_ERR_UNSUPPORTED,
				  "Theorem 4 needs delta > 0 (got delta = %g)", delta);
	if (4 * delta * nu > 1)
		return status_set(err, SL_ERR_UNSUPPORTED,
				  "Theorem 4 refused: 4 delta nu = %g > 1, the indices (%g, %g) "
				  "describe an empty sector",
				  4 * delta * nu, nu, delta);
	if (nu >= delta)
		return status_set(err, SL_ERR_UNSUPPORTED,
				  "Theorem 4 refused: eq. (16) divides by delta - nu, which must be "
				  "> 0 (nu = %g, delta = %g)",
				  nu, delta);
	if (p < 0)
		return status_set(err, SL_ERR_UNSUPPORTED,
				  "Theorem 4 holds only for p >= 0; this activation sector has "
				  "p = alpha beta = %g (alpha < 0 < beta)",
				  p);
	if (m == 0)
		return status_set(err, SL_ERR_UNSUPPORTED,
				  "Theorem 4 refused: m = 0 (the activation is constant)");
	double q = fabs(p) * s * s;
	if (q >= 1)
		return status_set(err, SL_ERR_UNSUPPORTED,
				  "Theorem 4 refused: eq. (17) needs |p| s^2 < 1, got %g "
				  "(p = %g, s = %g)",
				  q, p, s);
	out->branch = p == 0 ? SECTOR_T4_P_ZERO : s == 0 ? SECTOR_T4_S_ZERO : SECTOR_T4_GENERAL;
	/* Theorem 4, eq. (16): ||W||_2 <= (1/|m|) (1 - (delta + 1/2)(1 - |p| s^2) / (delta - nu));
	 * with |p| s^2 = 0 it is (-nu - 1/2) / (|m| (delta - nu)). */
	out->rho = (1 - (delta + 0.5) * (1 - q) / (delta - nu)) / fabs(m);
	if (out->rho < 0) {
		/* rho >= 0 iff nu <= |p| s^2 delta - (1 - |p| s^2) / 2 */
		double need = q * delta - (1 - q) / 2;
		if (q == 0)
			return status_set(err, SL_ERR_INFEASIBLE,
					  "Theorem 4 bound is %.6g < 0: with s = 0 (wide W) or p = 0 "
					  "the bound (-nu - 0.5) / (|m| (delta - nu)) is positive only "
					  "for nu < -0.5, and nu = %g",
					  out->rho, nu);
		return status_set(err, SL_ERR_INFEASIBLE,
				  "Theorem 4 bound is %.6g < 0: it is positive only for nu < "
				  "|p| s^2 delta - (1 - |p| s^2)/2 = %.6g, and nu = %g",
				  out->rho, need, nu);
	}
	return SL_OK;
}

const char *sector_t4_branch_name(enum sector_t4_branch branch)
{
	switch (branch) {
	case SECTOR_T4_S_ZERO:
		return "s = 0";
	case SECTOR_T4_P_ZERO:
		return "p = 0";
	case SECTOR_T4_GENERAL:
		return "general";
	case SECTOR_T4_REFUSED:
		return "refused";
	}
	return "unknown";
}

/* ---- Pooling ---- */

sl_status sector_pool_indices(double k, double d, double *nu, double *delta,
			      struct sl_error *err)
{
	if (!isfinite(k) || !isfinite(d) || k < 0 || d <= 0)
		return status_set(err, SL_ERR_ARG,
				  "pooling indices need k >= 0 and d > 0 (got k = %g, d = %g)", k, d);
	/* DESIGN.md §1: |dy| <= k |dx| gives
	 * -d|dy|^2 + dx.dy + (k + d k^2)|dx|^2 >= -d k^2|dx|^2 - k|dx|^2 + (k + d k^2)|dx|^2 = 0 */
	*nu = -k - d * k * k;
	*delta = d;
	return SL_OK;
}

double sector_pool_lipschitz(int overlap)
{
	/* each input is in at most c windows: |dy|^2 <= c |dx|^2 */
	return overlap > 0 ? sqrt((double)overlap) : 0;
}

/* ---- Theorem 3 ---- */

sl_status sector_cascade_matrix(double nu, double delta, const double *nu_i,
				const double *delta_i, int n, double *a, struct sl_error *err)
{
	if (n < 1 || n > SECTOR_MAX_LAYERS)
		return status_set(err, SL_ERR_ARG, "cascade of %d layers (1..%d supported)", n,
				  SECTOR_MAX_LAYERS);
	if (!isfinite(nu) || !isfinite(delta))
		return status_set(err, SL_ERR_ARG, "network indices (%g, %g) not finite", nu, delta);
	for (int i = 0; i < n; i++)
		if (!isfinite(nu_i[i]) || !isfinite(delta_i[i]))
			return status_set(err, SL_ERR_ARG, "layer %d indices (%g, %g) not finite",
					  i + 1, nu_i[i], delta_i[i]);
	int d = n + 1;
	memset(a, 0, sizeof(double) * (size_t)d * (size_t)d);
	/* Theorem 3 corrected per DESIGN.md: A_jj = -nu_j - delta_{j-1}, not -nu_j + delta_{j-1} */
	a[0] = nu - nu_i[0];
	for (int j = 1; j < n; j++)
		a[j * d + j] = -nu_i[j] - delta_i[j - 1];
	a[n * d + n] = delta - delta_i[n - 1];
	for (int j = 0; j < n; j++) {
		a[j * d + j + 1] += 0.5;
		a[(j + 1) * d + j] += 0.5;
	}
	/* the network's own cross term; for n = 1 it cancels the layer's */
	a[0 * d + n] -= 0.5;
	a[n * d + 0] -= 0.5;
	return SL_OK;
}

sl_status sector_cascade_max_eig(double nu, double delta, const double *nu_i,
				 const double *delta_i, int n, double *max_eig,
				 struct sl_error *err)
{
	double a[(SECTOR_MAX_LAYERS + 1) * (SECTOR_MAX_LAYERS + 1)];
	sl_status st = sector_cascade_matrix(nu, delta, nu_i, delta_i, n, a, err);
	if (st != SL_OK)
		return st;
	return linalg_sym_max_eig(a, n + 1, max_eig, err);
}

/* ---- Layers and models ---- */

sl_status sector_layer_weighted(enum sector_layer_kind kind, enum sector_act_kind act,
				double slope, double s, struct sector_layer *out,
				struct sl_error *err)
{
	if (kind != SECTOR_LAYER_DENSE && kind != SECTOR_LAYER_CONV)
		return status_set(err, SL_ERR_ARG, "a weighted layer is dense or conv");
	if (!isfinite(s) || s < 0)
		return status_set(err, SL_ERR_ARG, "||W||_i = %g must be finite and >= 0", s);
	struct sector_layer l = {.kind = kind, .act = act, .s = s, .k = 0};
	sl_status st = sector_act(act, slope, &l.sector, err);
	if (st != SL_OK)
		return st;
	*out = l;
	return SL_OK;
}

sl_status sector_layer_pool(double k, struct sector_layer *out, struct sl_error *err)
{
	if (!isfinite(k) || k <= 0)
		return status_set(err, SL_ERR_ARG, "pooling Lipschitz constant %g must be > 0", k);
	*out = (struct sector_layer){.kind = SECTOR_LAYER_POOL, .act = SECTOR_ACT_IDENTITY, .k = k};
	return SL_OK;
}

const char *sector_layer_kind_name(enum sector_layer_kind kind)
{
	switch (kind) {
	case SECTOR_LAYER_DENSE:
		return "dense";
	case SECTOR_LAYER_CONV:
		return "conv";
	case SECTOR_LAYER_POOL:
		return "pool";
	}
	return "unknown";
}

/* ---- Allocation ---- */

const char *sector_objective_name(enum sector_objective objective)
{
	return objective == SECTOR_OBJ_MIN ? "min" : "product";
}

#define MAXL SECTOR_MAX_LAYERS
#define MAXB (MAXL + 1)     /* order of B */
#define MAXX (2 * MAXL + 1) /* variables: (nu_i, delta_i) and one extra */

enum alloc_mode {
	ALLOC_SIGMA,   /* maximize sigma = x[2n]: every weighted constraint >= sigma */
	ALLOC_PRODUCT, /* maximize the sum of log rho_i */
};

/*
 * The problem as the barrier method sees it.  Variables x[2i] = nu_i,
 * x[2i+1] = delta_i (layer i from 0), and x[2n] = sigma in ALLOC_SIGMA.
 * Per weighted layer i, Theorem 4 is the ratio of two affine functions:
 *     rho_i = lin1 / (|m| lin2),  lin1 = q delta - nu - c/2,  lin2 = delta - nu,
 * with q = |p| s^2 and c = 1 - q; lin2 - lin1 = c (delta + 1/2) > 0, so
 * rho_i >= t is the affine constraint lin1 - t |m| lin2 >= 0.
 * ALLOC_SIGMA maximizes sigma subject to wn nu_i + wd delta_i + w0 >= sigma for
 * the weighted layers; with shift_all (phase I) B >= sigma I and every other
 * slack >= sigma too, so a positive sigma is a strictly feasible point.
 */
struct alloc_problem {
	int n, nx;
	enum alloc_mode mode;
	bool shift_all;
	double nu, delta; /* the network's indices */
	double dmax;      /* box delta_i <= dmax keeps the barrier bounded */
	double dscale;    /* a typical delta_i: max(1, |nu|, delta) */
	double tau;       /* barrier weight */
	bool weighted[MAXL];
	double q[MAXL], c[MAXL], am[MAXL]; /* |p| s^2, 1 - |p| s^2, |m| */
	double k[MAXL];                    /* pool Lipschitz constants */
	double wn[MAXL], wd[MAXL], w0[MAXL]; /* ALLOC_SIGMA's weighted constraints */
	int bias_layer;   /* product multi-start: pull this layer's delta up (-1: none)... */
	double bias;      /* ...and the others' down, with this weight (0: off) */
};

/* In-place Cholesky of the n x n row-major a (lower triangle); false if not PD. */
static bool chol(double *a, int n)
{
	for (int j = 0; j < n; j++) {
		double d = a[j * n + j];
		for (int k = 0; k < j; k++)
			d -= a[j * n + k] * a[j * n + k];
		if (!(d > 0))
			return false;
		d = sqrt(d);
		a[j * n + j] = d;
		for (int i = j + 1; i < n; i++) {
			double v = a[i * n + j];
			for (int k = 0; k < j; k++)
				v -= a[i * n + k] * a[j * n + k];
			a[i * n + j] = v / d;
		}
	}
	return true;
}

/* Solve L L^T x = b with the factor from chol (b overwritten by x). */
static void chol_solve(const double *l, int n, double *b)
{
	for (int i = 0; i < n; i++) {
		double v = b[i];
		for (int k = 0; k < i; k++)
			v -= l[i * n + k] * b[k];
		b[i] = v / l[i * n + i];
	}
	for (int i = n - 1; i >= 0; i--) {
		double v = b[i];
		for (int k = i + 1; k < n; k++)
			v -= l[k * n + i] * b[k];
		b[i] = v / l[i * n + i];
	}
}

/* B = -A at x (minus sigma I in phase I), (n+1) x (n+1) row-major. */
static void alloc_b(const struct alloc_problem *pb, const double *x, double *b)
{
	int n = pb->n, d = n + 1;
	memset(b, 0, sizeof(double) * (size_t)d * (size_t)d);
	/* -A of Theorem 3, corrected diagonal (DESIGN.md §1) */
	b[0] = x[0] - pb->nu;
	for (int j = 1; j < n; j++)
		b[j * d + j] = x[2 * j] + x[2 * j - 1];
	b[n * d + n] = x[2 * n - 1] - pb->delta;
	for (int j = 0; j < n; j++) {
		b[j * d + j + 1] -= 0.5;
		b[(j + 1) * d + j] -= 0.5;
	}
	b[n] += 0.5;
	b[n * d] += 0.5;
	if (pb->mode == ALLOC_SIGMA && pb->shift_all)
		for (int j = 0; j < d; j++)
			b[j * d + j] -= x[2 * n];
}

/* Diagonal entry of B that variable j (< 2n) sits on. */
static int alloc_diag_of(int j)
{
	return (j + 1) / 2;
}

/* An affine function of x with at most three nonzero coefficients. */
struct affine {
	int nnz;
	int idx[3];
	double coef[3];
	double a0;
};

/* Add w log(f(x)) to value, gradient and Hessian; false unless f(x) > 0. */
static bool add_log(const struct affine *f, double w, const double *x, int nx, double *val,
		    double *g, double *h)
{
	double v = f->a0;
	for (int i = 0; i < f->nnz; i++)
		v += f->coef[i] * x[f->idx[i]];
	if (!(v > 0))
		return false;
	*val += w * log(v);
	if (g)
		for (int i = 0; i < f->nnz; i++)
			g[f->idx[i]] += w * f->coef[i] / v;
	if (h)
		for (int i = 0; i < f->nnz; i++)
			for (int j = 0; j < f->nnz; j++)
				h[f->idx[i] * nx + f->idx[j]] -= w * f->coef[i] * f->coef[j] / (v * v);
	return true;
}

/* Subtract sigma from f (ALLOC_SIGMA), when all is true or the mode shifts all. */
static struct affine shifted(struct affine f, const struct alloc_problem *pb, bool all)
{
	if (pb->mode == ALLOC_SIGMA && (all || pb->shift_all)) {
		f.idx[f.nnz] = 2 * pb->n;
		f.coef[f.nnz] = -1;
		f.nnz++;
	}
	return f;
}

/* tau log det B: gradient G_jj, Hessian -G_jk^2 (G = B^{-1}); phase I also sigma. */
static bool add_logdet(const struct alloc_problem *pb, const double *x, double *val, double *g,
		       double *h)
{
	int n = pb->n, nx = pb->nx, d = n + 1;
	double tau = pb->tau, b[MAXB * MAXB], gi[MAXB * MAXB];
	alloc_b(pb, x, b);
	if (!chol(b, d))
		return false;
	for (int j = 0; j < d; j++)
		*val += 2 * tau * log(b[j * d + j]);
	if (!g)
		return true;
	for (int j = 0; j < d; j++) {
		double *row = &gi[j * d];
		memset(row, 0, sizeof(double) * (size_t)d);
		row[j] = 1;
		chol_solve(b, d, row); /* row j of the symmetric inverse */
	}
	for (int j = 0; j < 2 * n; j++) {
		int dj = alloc_diag_of(j);
		g[j] += tau * gi[dj * d + dj];
		if (h)
			for (int k = 0; k < 2 * n; k++) {
				int dk = alloc_diag_of(k);
				h[j * nx + k] -= tau * gi[dj * d + dk] * gi[dj * d + dk];
			}
	}
	if (pb->mode == ALLOC_SIGMA && pb->shift_all) {
		/* log det(B - sigma I): d/dsigma = -tr G, cross (G^2)_jj, second -tr G^2 */
		int is = 2 * n;
		double tr = 0, tr2 = 0;
		for (int j = 0; j < d; j++) {
			tr += gi[j * d + j];
			for (int k = 0; k < d; k++)
				tr2 += gi[j * d + k] * gi[k * d + j];
		}
		g[is] -= tau * tr;
		if (h) {
			for (int j = 0; j < 2 * n; j++) {
				int dj = alloc_diag_of(j);
				double g2 = 0;
				for (int k = 0; k < d; k++)
					g2 += gi[dj * d + k] * gi[k * d + dj];
				h[j * nx + is] += tau * g2;
				h[is * nx + j] += tau * g2;
			}
			h[is * nx + is] -= tau * tr2;
		}
	}
	return true;
}

/* tau log(1 - 4 delta nu): keeps a layer's own sector nonempty (needed when q > 0). */
static bool add_log_sector(const struct alloc_problem *pb, int i, const double *x, double *val,
			   double *g, double *h)
{
	int nx = pb->nx, in = 2 * i, id = 2 * i + 1;
	double tau = pb->tau, v = 1 - 4 * x[in] * x[id];
	if (!(v > 0))
		return false;
	*val += tau * log(v);
	if (!g)
		return true;
	double dv[2] = {-4 * x[id], -4 * x[in]};
	int ix[2] = {in, id};
	for (int a = 0; a < 2; a++) {
		g[ix[a]] += tau * dv[a] / v;
		if (h)
			for (int c = 0; c < 2; c++)
				h[ix[a] * nx + ix[c]] -= tau * dv[a] * dv[c] / (v * v);
	}
	if (h) {
		h[in * nx + id] -= tau * 4 / v;
		h[id * nx + in] -= tau * 4 / v;
	}
	return true;
}

/*
 * The barrier objective at x: value, and (if g, h are non-NULL) gradient and
 * Hessian.  Returns -INFINITY outside the domain.
 */
static double alloc_eval(const struct alloc_problem *pb, const double *x, double *g, double *h)
{
	int n = pb->n, nx = pb->nx;
	double tau = pb->tau, val = 0;
	if (g)
		memset(g, 0, sizeof(double) * (size_t)nx);
	if (h)
		memset(h, 0, sizeof(double) * (size_t)nx * (size_t)nx);
	if (!add_logdet(pb, x, &val, g, h))
		return -INFINITY;
	for (int i = 0; i < n; i++) {
		int in = 2 * i, id = 2 * i + 1;
		struct affine dpos = shifted((struct affine){1, {id}, {1}, 0}, pb, false);
		struct affine dbox = {1, {id}, {-1}, pb->dmax};
		if (!add_log(&dpos, tau, x, nx, &val, g, h) || !add_log(&dbox, tau, x, nx, &val, g, h))
			return -INFINITY;
		if (!pb->weighted[i]) {
			/* pool: nu_i <= -k - k^2 delta_i */
			double kk = pb->k[i];
			struct affine slack =
				shifted((struct affine){2, {in, id}, {-1, -kk * kk}, -kk}, pb, false);
			if (!add_log(&slack, tau, x, nx, &val, g, h))
				return -INFINITY;
			continue;
		}
		if (pb->mode == ALLOC_SIGMA) {
			struct affine w = shifted(
				(struct affine){2, {in, id}, {pb->wn[i], pb->wd[i]}, pb->w0[i]}, pb, true);
			if (!add_log(&w, tau, x, nx, &val, g, h))
				return -INFINITY;
		} else {
			/* log rho_i = log lin1 - log lin2 - log |m| */
			struct affine l1 = {2, {in, id}, {-1, pb->q[i]}, -pb->c[i] / 2};
			struct affine l2 = {2, {in, id}, {-1, 1}, 0};
			if (!add_log(&l1, 1, x, nx, &val, g, h) || !add_log(&l2, -1, x, nx, &val, g, h))
				return -INFINITY;
			val -= log(pb->am[i]);
		}
		if (pb->q[i] > 0 && !add_log_sector(pb, i, x, &val, g, h))
			return -INFINITY;
	}
	if (pb->mode == ALLOC_SIGMA) {
		val += x[2 * n];
		if (g)
			g[2 * n] += 1;
	}
	if (pb->bias > 0) {
		/* pull delta_c up, push the other layers that could absorb the cascade down */
		for (int i = 0; i < n; i++) {
			if (!pb->weighted[i] || !(pb->q[i] > 0))
				continue;
			int id = 2 * i + 1;
			if (i == pb->bias_layer) {
				struct affine f = {1, {id}, {1}, 0};
				if (!add_log(&f, pb->bias, x, nx, &val, g, h))
					return -INFINITY;
			} else {
				val -= pb->bias * x[id] / pb->dscale;
				if (g)
					g[id] -= pb->bias / pb->dscale;
			}
		}
	}
	return val;
}

/*
 * Newton's method on the barrier objective at the current tau, from a point
 * inside the domain.  The Newton matrix -H is shifted by mu I until Cholesky
 * succeeds (the product objective is not concave everywhere).  Stops when the
 * Newton decrement g^T dx falls below tol or the line search stalls.  Returns
 * the steps taken.
 */
static int alloc_newton(const struct alloc_problem *pb, double *x, int max_steps, double tol)
{
	int nx = pb->nx, steps = 0;
	double g[MAXX], h[MAXX * MAXX], m[MAXX * MAXX], dx[MAXX], xt[MAXX];
	for (; steps < max_steps; steps++) {
		double f = alloc_eval(pb, x, g, h);
		double hmax = 0;
		for (int i = 0; i < nx; i++)
			hmax = fmax(hmax, fabs(h[i * nx + i]));
		double mu = 0;
		for (;;) {
			for (int i = 0; i < nx * nx; i++)
				m[i] = -h[i];
			for (int i = 0; i < nx; i++)
				m[i * nx + i] += mu;
			if (chol(m, nx))
				break;
			mu = mu == 0 ? 1e-10 * (hmax > 0 ? hmax : 1) : mu * 10;
		}
		memcpy(dx, g, sizeof(double) * (size_t)nx);
		chol_solve(m, nx, dx);
		double dec = 0;
		for (int i = 0; i < nx; i++)
			dec += g[i] * dx[i];
		if (dec < tol)
			break;
		double t = 1;
		for (;;) {
			for (int i = 0; i < nx; i++)
				xt[i] = x[i] + t * dx[i];
			if (alloc_eval(pb, xt, NULL, NULL) >= f + 0.25 * t * dec)
				break;
			t *= 0.5;
			if (t < 1e-14)
				return steps;
		}
		memcpy(x, xt, sizeof(double) * (size_t)nx);
	}
	return steps;
}

/* rho_i at x (weighted layer i). */
static double alloc_rho(const struct alloc_problem *pb, const double *x, int i)
{
	double u = pb->q[i] * x[2 * i + 1] - x[2 * i] - pb->c[i] / 2;
	double v = x[2 * i + 1] - x[2 * i];
	return u / (pb->am[i] * v);
}

/*
 * Necessary conditions that are easy to state, checked before the search so
 * that the usual impossible requests get a specific reason.  Returns SL_OK when
 * none is violated.
 */
static sl_status alloc_explain_first(double nu, const struct sector_layer *first,
				     const struct alloc_problem *pb, struct sl_error *err)
{
	if (first->kind == SECTOR_LAYER_POOL) {
		/* nu_1 = -k - d k^2 < -k, and A_11 = nu - nu_1 <= 0 needs nu_1 >= nu */
		if (nu >= -first->k)
			return status_set(err, SL_ERR_INFEASIBLE,
					  "layer 1 is a %g-Lipschitz pool: its indices have "
					  "nu_1 = -k - d k^2 < %g for every d > 0, but Theorem 3 "
					  "(A_11 = nu - nu_1 <= 0) needs nu_1 >= nu = %g",
					  first->k, -first->k, nu);
		return SL_OK;
	}
	if (pb->q[0] == 0 && nu >= -0.5)
		return status_set(
			err, SL_ERR_INFEASIBLE,
			"layer 1 (%s, %s) has %s: its Theorem 4 bound (-nu_1 - 0.5) / (|m| "
			"(delta_1 - nu_1)) is positive only for nu_1 < -0.5, but Theorem 3 "
			"(A_11 = nu - nu_1 <= 0) needs nu_1 >= nu = %g.  Wide layers (s = 0, "
			"every dense layer of mlp and alexnet) cannot be certified by Theorem 4 "
			"unless nu < -0.5; choose a smaller nu, or check layers with the exact LMI",
			sector_layer_kind_name(first->kind), sector_act_name(first->act),
			first->sector.p == 0		       ? "p = 0"
			: first->kind == SECTOR_LAYER_DENSE ? "s = 0 (wide W)"
							       : "s = 0 (not computed, always safe)",
			nu);
	return SL_OK;
}

/* The Theorem 4 data of every layer; refuses layers the theorem cannot cover. */
static sl_status alloc_setup(double nu, double delta, const struct sector_layer *layers, int n,
			     struct alloc_problem *pb, struct sl_error *err)
{
	memset(pb, 0, sizeof *pb);
	pb->n = n;
	pb->nu = nu;
	pb->delta = delta;
	pb->dscale = fmax(1, fmax(fabs(nu), delta));
	pb->dmax = 1e3 * pb->dscale;
	for (int i = 0; i < n; i++) {
		const struct sector_layer *l = &layers[i];
		if (l->kind == SECTOR_LAYER_POOL) {
			if (!isfinite(l->k) || l->k <= 0)
				return status_set(err, SL_ERR_ARG,
						  "layer %d: pool Lipschitz constant %g must be > 0",
						  i + 1, l->k);
			pb->k[i] = l->k;
			pb->dmax = fmax(pb->dmax, 1e3 * l->k * l->k);
			continue;
		}
		double m = l->sector.m, p = l->sector.p, s = l->s;
		if (!isfinite(m) || !isfinite(p) || !isfinite(s) || s < 0)
			return status_set(err, SL_ERR_ARG, "layer %d: bad sector (m %g, p %g, s %g)",
					  i + 1, m, p, s);
		if (p < 0)
			return status_set(err, SL_ERR_UNSUPPORTED,
					  "layer %d: Theorem 4 holds only for p >= 0, and its "
					  "activation sector [%g, %g] has p = %g",
					  i + 1, l->sector.alpha, l->sector.beta, p);
		if (m == 0)
			return status_set(err, SL_ERR_UNSUPPORTED,
					  "layer %d: m = 0, Theorem 4 does not apply", i + 1);
		double q = fabs(p) * s * s;
		if (q >= 1)
			return status_set(err, SL_ERR_UNSUPPORTED,
					  "layer %d: eq. (17) needs |p| s^2 < 1, got %g", i + 1, q);
		pb->weighted[i] = true;
		pb->q[i] = q;
		pb->c[i] = 1 - q;
		pb->am[i] = fabs(m);
	}
	return SL_OK;
}

/* Newton tolerance of a barrier stage: loose on the way, tight at the end. */
#define STAGE_TOL(tau) ((tau) > 1e-10 ? 1e-9 : 1e-18)

/* Phase I: a point strictly inside every constraint, or false if none was found. */
static bool alloc_phase1(struct alloc_problem *pb, double *x, int *steps)
{
	int n = pb->n;
	pb->mode = ALLOC_SIGMA;
	pb->shift_all = true;
	pb->nx = 2 * n + 1;
	for (int i = 0; i < n; i++) {
		double d = 1;
		x[2 * i + 1] = d;
		if (pb->weighted[i]) {
			/* the weighted constraint is lin1 > 0, i.e. rho_i > 0 */
			pb->wn[i] = -1;
			pb->wd[i] = pb->q[i];
			pb->w0[i] = -pb->c[i] / 2;
			x[2 * i] = pb->q[i] * d - pb->c[i] / 2 - 1; /* lin1 = 1 */
		} else {
			x[2 * i] = -pb->k[i] - pb->k[i] * pb->k[i] * d - 1; /* slack 1 */
		}
	}
	/* sigma below every slack (all 1 here) and below Gershgorin's bound on B */
	double b[MAXB * MAXB], lo = 1;
	x[2 * n] = 0;
	alloc_b(pb, x, b);
	for (int j = 0; j <= n; j++) {
		double r = b[j * (n + 1) + j];
		for (int k = 0; k <= n; k++)
			if (k != j)
				r -= fabs(b[j * (n + 1) + k]);
		lo = fmin(lo, r);
	}
	x[2 * n] = lo - 1;
	for (double tau = 1; tau > 1e-11; tau *= 0.1) {
		pb->tau = tau;
		*steps += alloc_newton(pb, x, 100, 1e-8);
		if (x[2 * n] > 0)
			return true;
	}
	return false;
}

/* Sum of log rho_i at x: the product objective without barrier terms. */
static double alloc_log_product(const struct alloc_problem *pb, const double *x)
{
	double v = 0;
	for (int i = 0; i < pb->n; i++)
		if (pb->weighted[i])
			v += log(alloc_rho(pb, x, i));
	return v;
}

/*
 * Phase II, product objective: follow the central path of sum log rho_i.
 * With every s = 0 the path finds the one optimum we know of.  A layer with
 * |p| s^2 > 0 keeps part of its bound as delta_i grows, so it can absorb the
 * cascade at a large delta_i (up to the box), and each choice of such a layer
 * is a separate basin.  So when there are such layers, the path is followed
 * once with all of them held down and once per layer with that one pulled up
 * (temporary terms in the first stages: log delta_c, and -delta_j / dscale for
 * the others); the best at tau = 1e-5 is then followed to the end.
 */
static void alloc_product(struct alloc_problem *pb, double *x, int *steps)
{
	int n = pb->n;
	double start[MAXX], best[MAXX], best_val = -INFINITY;
	bool absorbing = false;
	for (int i = 0; i < n; i++)
		absorbing = absorbing || (pb->weighted[i] && pb->q[i] > 0);
	memcpy(start, x, sizeof(double) * (size_t)(2 * n));
	pb->mode = ALLOC_PRODUCT;
	pb->nx = 2 * n;
	/* screening: every start down to tau = 1e-5 (short stages when there are
	 * several); then only the best one is followed to the end */
	for (int c = -1; c < n; c++) {
		if (c >= 0 && !(pb->weighted[c] && pb->q[c] > 0))
			continue;
		memcpy(x, start, sizeof(double) * (size_t)(2 * n));
		pb->bias_layer = c;
		for (double tau = 0.1; tau > 0.5e-5; tau *= 0.1) {
			pb->tau = tau;
			pb->bias = absorbing && tau > 1e-3 ? 1 : 0;
			*steps += alloc_newton(pb, x, absorbing ? 30 : 100, STAGE_TOL(tau));
		}
		pb->bias = 0;
		double v = alloc_log_product(pb, x);
		if (v > best_val) {
			best_val = v;
			memcpy(best, x, sizeof(double) * (size_t)(2 * n));
		}
	}
	memcpy(x, best, sizeof(double) * (size_t)(2 * n));
	for (double tau = 1e-6; tau > 1e-11; tau *= 0.1) {
		pb->tau = tau;
		*steps += alloc_newton(pb, x, 100, STAGE_TOL(tau));
	}
}

static double alloc_rho_min(const struct alloc_problem *pb, const double *x)
{
	double r = INFINITY;
	for (int i = 0; i < pb->n; i++)
		if (pb->weighted[i])
			r = fmin(r, alloc_rho(pb, x, i));
	return r;
}

/*
 * Phase II, min objective.  rho_i = N_i / D_i is a ratio of affine functions, so
 * max-min is a generalized fractional program; we use the iteration of
 * Crouzeix, Ferland and Schaible: with t = min rho_i(x_k), solve the convex
 * problem  max sigma  s.t.  (N_i(x) - t D_i(x)) / D_i(x_k) >= sigma  (and the
 * cascade), then move to its solution.  t increases to the optimum; each
 * subproblem is concave, so the answer is the global max-min.
 */
static void alloc_min(struct alloc_problem *pb, double *x, int *steps)
{
	int n = pb->n;
	double best[MAXX], t = alloc_rho_min(pb, x);
	memcpy(best, x, sizeof(double) * (size_t)(2 * n));
	if (!isfinite(t))
		return; /* no weighted layer: nothing to maximize */
	pb->mode = ALLOC_SIGMA;
	pb->shift_all = false;
	pb->nx = 2 * n + 1;
	for (int iter = 0; iter < 30; iter++) {
		for (int i = 0; i < n; i++) {
			if (!pb->weighted[i])
				continue;
			double dk = pb->am[i] * (x[2 * i + 1] - x[2 * i]);
			pb->wn[i] = (-1 + t * pb->am[i]) / dk;
			pb->wd[i] = (pb->q[i] - t * pb->am[i]) / dk;
			pb->w0[i] = -pb->c[i] / (2 * dk);
		}
		/* at x_k the smallest constraint is 0: start sigma below it */
		x[2 * n] = -fmax(t, 1e-3);
		for (double tau = 1e-2; tau > 1e-11; tau *= 0.1) {
			pb->tau = tau;
			*steps += alloc_newton(pb, x, 100, STAGE_TOL(tau));
		}
		double tn = alloc_rho_min(pb, x);
		if (tn > t)
			memcpy(best, x, sizeof(double) * (size_t)(2 * n));
		if (!(tn > t * (1 + 1e-12)))
			break;
		t = tn;
	}
	memcpy(x, best, sizeof(double) * (size_t)(2 * n));
}

sl_status sector_allocate(double nu, double delta, const struct sector_layer *layers, int n,
			  enum sector_objective objective, struct sector_allocation *out,
			  struct sl_error *err)
{
	if (!layers || !out || n < 1 || n > SECTOR_MAX_LAYERS)
		return status_set(err, SL_ERR_ARG, "allocation for %d layers (1..%d supported)", n,
				  SECTOR_MAX_LAYERS);
	sl_status st = check_indices(nu, delta, err);
	if (st != SL_OK)
		return st;
	struct alloc_problem pb;
	st = alloc_setup(nu, delta, layers, n, &pb, err);
	if (st != SL_OK)
		return st;
	st = alloc_explain_first(nu, &layers[0], &pb, err);
	if (st != SL_OK)
		return st;

	double x[MAXX];
	int steps = 0;
	if (!alloc_phase1(&pb, x, &steps))
		return status_set(err, SL_ERR_INFEASIBLE,
				  "no allocation: no (nu_i, delta_i) makes Theorem 3's A negative "
				  "semidefinite while every weighted layer keeps a positive Theorem 4 "
				  "bound (the best margin found was %.3g < 0)",
				  x[2 * n]);
	if (objective == SECTOR_OBJ_MIN)
		alloc_min(&pb, x, &steps);
	else
		alloc_product(&pb, x, &steps);

	/* Read the answer off x, put pools exactly on (-k - d k^2, d), and verify. */
	struct sector_allocation a = {.n = n, .rho_product = 1, .rho_min = INFINITY};
	double nus[MAXL], deltas[MAXL];
	int weighted = 0;
	for (int i = 0; i < n; i++) {
		struct sector_alloc_layer *l = &a.layer[i];
		l->delta = x[2 * i + 1];
		l->nu = x[2 * i];
		if (!pb.weighted[i]) {
			st = sector_pool_indices(pb.k[i], l->delta, &l->nu, &l->delta, err);
			if (st != SL_OK)
				return st;
			l->branch = SECTOR_T4_REFUSED;
		} else {
			struct sector_t4 t4;
			st = sector_theorem4(l->nu, l->delta, layers[i].sector.m, layers[i].sector.p,
					     layers[i].s, &t4, err);
			if (st != SL_OK || !(t4.rho > 0))
				return status_set(err, SL_ERR_NUMERIC,
						  "allocation failed verification: layer %d at "
						  "(%g, %g) has no positive Theorem 4 bound",
						  i + 1, l->nu, l->delta);
			l->has_rho = true;
			l->rho = t4.rho;
			l->branch = t4.branch;
			a.rho_product *= t4.rho;
			a.rho_min = fmin(a.rho_min, t4.rho);
			weighted++;
		}
		nus[i] = l->nu;
		deltas[i] = l->delta;
		if (!(l->delta > 0))
			return status_set(err, SL_ERR_NUMERIC,
					  "allocation failed verification: delta_%d = %g", i + 1,
					  l->delta);
	}
	if (weighted == 0)
		a.rho_min = 0;
	st = sector_cascade_max_eig(nu, delta, nus, deltas, n, &a.max_eig_a, err);
	if (st != SL_OK)
		return st;
	if (!(a.max_eig_a <= SECTOR_ALLOC_TOL))
		return status_set(err, SL_ERR_NUMERIC,
				  "allocation failed verification: largest eigenvalue of A is %g > %g",
				  a.max_eig_a, SECTOR_ALLOC_TOL);
	a.newton_steps = steps;
	*out = a;
	return SL_OK;
}
