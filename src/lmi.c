/*
 * lmi: Theorem 1 / Corollary 2 as an SDP for DSDP (see lmi.h).
 *
 * DSDP solves  maximize b.y  subject to  C - sum_i y_i A_i >= 0.  Our variables
 * are y = (lambda_1 .. lambda_r, nu) and
 *     M(Lambda, nu) = M0 + sum_k lambda_k M_k - nu D,
 *     M0  = [ -delta I   1/2 E ]      D = [ 0  0 ]
 *           [ 1/2 E^T      0   ],         [ 0  I ],
 *     M_k = [e_k; -m w_k][e_k; -m w_k]^T + (p - m^2) [0; w_k][0; w_k]^T,
 * where w_k is row k of W.  So C = M0, A_k = -M_k (two rank-one matrices, which
 * DSDP stores and multiplies cheaply), A_nu = D, and b picks nu.  lambda_k >= 0
 * is added as a bound (for delta > 0 the top-left block already implies it).
 * DSDP keeps pointers to the data arrays, so they live until DSDPDestroy.
 *
 * Wide layers are reduced first, exactly.  Let P = span(e_1..e_r) + rowspace(W)
 * in the dx space (dimension d <= 2r).  On the orthogonal complement of P both
 * E dx and W dx vanish, so in the basis [Q_P, Q_perp] M splits into M_P, the same
 * LMI with W replaced by W Q_P^T (r x d) and E still [I 0] (the basis starts with
 * e_1..e_r), and -nu I on the complement.  So M >= 0 iff M_P >= 0 and, when
 * d < c, nu <= 0.  For the 50 x 784 MNIST layer that is order 150 instead of 834.
 */
#include "sectorlab/lmi.h"

#include <dsdp/dsdp5.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sectorlab/linalg.h"

static sl_status check_layer(const struct lmi_layer *l, struct sl_error *err)
{
	if (!l || !l->w || l->rows < 1 || l->cols < 1)
		return status_set(err, SL_ERR_ARG, "exact LMI: empty layer");
	if (!isfinite(l->m) || !isfinite(l->p))
		return status_set(err, SL_ERR_ARG, "exact LMI: sector (m %g, p %g) not finite",
				  l->m, l->p);
	size_t n = (size_t)l->rows * (size_t)l->cols;
	for (size_t i = 0; i < n; i++)
		if (!isfinite(l->w[i]))
			return status_set(err, SL_ERR_ARG, "exact LMI: W[%zu] is not finite", i);
	return SL_OK;
}

/* Order of the SDP actually solved: rows + min(cols, 2 rows) (see above). */
static int sdp_order(int rows, int cols)
{
	return rows >= cols ? rows + cols : rows + (cols < 2 * rows ? cols : 2 * rows);
}

sl_status lmi_fits(int rows, int cols, struct sl_error *err)
{
	if (rows < 1 || cols < 1)
		return status_set(err, SL_ERR_ARG, "exact LMI: empty %dx%d layer", rows, cols);
	if (rows > LMI_MAX_ORDER || cols > 1 << 24 || sdp_order(rows, cols) > LMI_MAX_ORDER)
		return status_set(err, SL_ERR_TOO_LARGE,
				  "too large for the exact LMI: a %dx%d layer needs an SDP of "
				  "order %ld, above the limit %d that keeps a solve within a few "
				  "seconds; use the Theorem 4 bound for this layer",
				  rows, cols, (long)rows + (cols < 2L * rows ? cols : 2L * rows),
				  LMI_MAX_ORDER);
	return SL_OK;
}

sl_status lmi_matrix(const struct lmi_layer *layer, double nu, double delta,
		     const double *lambda, double *mat, struct sl_error *err)
{
	sl_status st = check_layer(layer, err);
	if (st != SL_OK)
		return st;
	int r = layer->rows, c = layer->cols, n = r + c;
	const double *w = layer->w;
	double m = layer->m, p = layer->p;
	memset(mat, 0, sizeof(double) * (size_t)n * (size_t)n);
	/* Theorem 1 with Q = -delta I, S = 1/2 E, R = -nu I (DESIGN.md §1) */
	for (int k = 0; k < r; k++) {
		mat[(size_t)k * n + k] = -delta + lambda[k];
		for (int j = 0; j < c; j++) {
			double v = (k == j ? 0.5 : 0) - m * lambda[k] * w[(size_t)k * c + j];
			mat[(size_t)k * n + r + j] = v;
			mat[(size_t)(r + j) * n + k] = v;
		}
	}
	/* bottom-right: -nu I + p W^T Lambda W */
	for (int i = 0; i < c; i++) {
		double *row = &mat[(size_t)(r + i) * n + r];
		row[i] = -nu;
		for (int k = 0; k < r; k++) {
			double a = p * lambda[k] * w[(size_t)k * c + i];
			if (a == 0)
				continue;
			const double *wk = &w[(size_t)k * c];
			for (int j = 0; j < c; j++)
				row[j] += a * wk[j];
		}
	}
	return SL_OK;
}

/*
 * The reduced layer: rows x d with d <= min(c, 2 rows), and whether a
 * complement (d < cols) exists.  For rows >= cols there is nothing to reduce and
 * *wr is a copy of W.  Gram-Schmidt, twice per vector: P's basis is e_1..e_r
 * followed by the normalized residuals of W's rows; a residual below 1e-12 of
 * its row's norm adds no direction.
 */
static sl_status reduce_layer(const struct lmi_layer *l, double **wr, int *dout,
			      struct sl_error *err)
{
	int r = l->rows, c = l->cols;
	*wr = NULL;
	if (r >= c) {
		*wr = malloc(sizeof(double) * (size_t)r * (size_t)c);
		if (!*wr)
			return status_set(err, SL_ERR_NOMEM, "exact LMI: %dx%d layer", r, c);
		memcpy(*wr, l->w, sizeof(double) * (size_t)r * (size_t)c);
		*dout = c;
		return SL_OK;
	}
	int dmax = 2 * r < c ? 2 * r : c;
	double *q = malloc(sizeof(double) * (size_t)(dmax - r) * (size_t)c); /* (d - r, c) */
	double *v = malloc(sizeof(double) * (size_t)c);
	double *out = malloc(sizeof(double) * (size_t)r * (size_t)dmax); /* (r, d) */
	if (!q || !v || !out) {
		free(q);
		free(v);
		free(out);
		return status_set(err, SL_ERR_NOMEM, "exact LMI: reducing a %dx%d layer", r, c);
	}
	int extra = 0; /* basis vectors after e_1..e_r */
	for (int k = 0; k < r && r + extra < dmax; k++) {
		const double *wk = &l->w[(size_t)k * c];
		double norm0 = 0;
		for (int j = 0; j < c; j++)
			norm0 += wk[j] * wk[j];
		norm0 = sqrt(norm0);
		if (norm0 == 0)
			continue;
		memcpy(v, wk, sizeof(double) * (size_t)c);
		for (int pass = 0; pass < 2; pass++) {
			for (int j = 0; j < r; j++) /* against e_j */
				v[j] = 0;
			for (int e = 0; e < extra; e++) {
				const double *qe = &q[(size_t)e * c];
				double dot = 0;
				for (int j = r; j < c; j++)
					dot += qe[j] * v[j];
				for (int j = r; j < c; j++)
					v[j] -= dot * qe[j];
			}
		}
		double norm = 0;
		for (int j = r; j < c; j++)
			norm += v[j] * v[j];
		norm = sqrt(norm);
		if (norm <= 1e-12 * norm0)
			continue;
		double *qe = &q[(size_t)extra * c];
		for (int j = 0; j < c; j++)
			qe[j] = v[j] / norm;
		extra++;
	}
	int d = r + extra;
	/* W Q_P^T: the first r columns are W's first r columns (basis e_1..e_r) */
	for (int k = 0; k < r; k++) {
		const double *wk = &l->w[(size_t)k * c];
		double *ok = &out[(size_t)k * d];
		for (int j = 0; j < r; j++)
			ok[j] = wk[j];
		for (int e = 0; e < extra; e++) {
			const double *qe = &q[(size_t)e * c];
			double dot = 0;
			for (int j = r; j < c; j++)
				dot += qe[j] * wk[j];
			ok[r + e] = dot;
		}
	}
	free(q);
	free(v);
	*wr = out;
	*dout = d;
	return SL_OK;
}

/*
 * Smallest eigenvalue of M(lambda, nu) (LAPACK), computed on the reduced layer
 * red; the complement, when there is one, contributes the eigenvalue -nu.
 */
static sl_status min_eig_at(const struct lmi_layer *red, bool complement, double nu,
			    double delta, const double *lambda, double *out, struct sl_error *err)
{
	int n = red->rows + red->cols;
	double *mat = malloc(sizeof(double) * (size_t)n * (size_t)n);
	double *ev = malloc(sizeof(double) * (size_t)n);
	sl_status st = SL_OK;
	if (!mat || !ev) {
		st = status_set(err, SL_ERR_NOMEM, "exact LMI: matrix of order %d", n);
		goto out;
	}
	st = lmi_matrix(red, nu, delta, lambda, mat, err);
	if (st == SL_OK)
		st = linalg_sym_eig(mat, n, ev, NULL, err);
	if (st == SL_OK)
		*out = complement ? fmin(ev[0], -nu) : ev[0];
out:
	free(ev);
	free(mat);
	return st;
}

/* Index of (i, j), i >= j, in DSDP's full storage ('U', set below). */
static int full_index(int n, int i, int j)
{
	return i * n + j;
}

/* Every array DSDP points into, in one allocation. */
struct sdp_data {
	int *idx;
	double *val;
};

/*
 * maximize nu s.t. M_P(Lambda, nu) >= 0, Lambda >= 0, and nu <= 0 when the
 * layer has a complement: the SDP on the reduced layer.  lambda: rows entries.
 */
static sl_status solve_reduced(const struct lmi_layer *layer, bool complement, double delta,
			       struct lmi_result *out, double *lambda, struct sl_error *err)
{
	sl_status st = SL_OK;
	int r = layer->rows, c = layer->cols, n = r + c, nvar = r + 1;
	int diag = r < c ? r : c;
	const double *w = layer->w;
	double m = layer->m, p = layer->p;
	/* C: r + diag entries; per lambda_k: v (1 + c) and u (c); D: c */
	size_t cap = (size_t)(r + diag) + (size_t)r * (size_t)(2 * c + 1) + (size_t)c;
	struct sdp_data data = {malloc(sizeof(int) * cap), malloc(sizeof(double) * cap)};
	double *y = malloc(sizeof(double) * (size_t)nvar);
	DSDP dsdp = NULL;
	if (!data.idx || !data.val || !y) {
		st = status_set(err, SL_ERR_NOMEM, "exact LMI: %dx%d layer", r, c);
		goto out;
	}

	int info = DSDPCreate(nvar, &dsdp);
	SDPCone cone;
	BCone bounds;
	info = info || DSDPCreateSDPCone(dsdp, 1, &cone);
	info = info || SDPConeSetBlockSize(cone, 0, n);
	/* S is dense anyway (u u^T fills the dx block): store it full, not packed */
	info = info || SDPConeUseFullSymmetricFormat(cone, 0);
	size_t at = 0;

	/* C = M0: -delta on the dy diagonal, 1/2 E in the off-diagonal block */
	int *ci = &data.idx[at];
	double *cv = &data.val[at];
	int cn = 0;
	for (int k = 0; k < r; k++) {
		ci[cn] = full_index(n, k, k);
		cv[cn++] = -delta;
	}
	for (int k = 0; k < diag; k++) {
		ci[cn] = full_index(n, r + k, k);
		cv[cn++] = 0.5;
	}
	at += (size_t)cn;
	info = info || SDPConeSetASparseVecMat(cone, 0, 0, n, 1.0, 0, ci, cv, cn);

	/* A_k = -v v^T + (m^2 - p) u u^T with v = [e_k; -m w_k], u = [0; w_k] */
	for (int k = 0; k < r && !info; k++) {
		const double *wk = &w[(size_t)k * c];
		int *vi = &data.idx[at];
		double *vv = &data.val[at];
		int vn = 0;
		vi[vn] = k;
		vv[vn++] = 1;
		for (int j = 0; j < c; j++)
			if (wk[j] != 0) {
				vi[vn] = r + j;
				vv[vn++] = -m * wk[j];
			}
		at += (size_t)vn;
		info = SDPConeSetARankOneMat(cone, 0, k + 1, n, -1.0, 0, vi, vv, vn);
		if (m * m - p != 0 && !info) {
			int *ui = &data.idx[at];
			double *uv = &data.val[at];
			int un = 0;
			for (int j = 0; j < c; j++)
				if (wk[j] != 0) {
					ui[un] = r + j;
					uv[un++] = wk[j];
				}
			at += (size_t)un;
			if (un > 0)
				info = SDPConeAddARankOneMat(cone, 0, k + 1, n, m * m - p, 0, ui,
							     uv, un);
		}
	}

	/* A_nu = D: the identity on the dx block */
	int *di = &data.idx[at];
	double *dv = &data.val[at];
	for (int j = 0; j < c; j++) {
		di[j] = full_index(n, r + j, r + j);
		dv[j] = 1;
	}
	info = info || SDPConeSetASparseVecMat(cone, 0, nvar, n, 1.0, 0, di, dv, c);

	/* Lambda >= 0, and nu <= 0 for the complement */
	info = info || DSDPCreateBCone(dsdp, &bounds);
	info = info || BConeAllocateBounds(bounds, r + 1);
	for (int k = 0; k < r && !info; k++)
		info = BConeSetLowerBound(bounds, k + 1, 0.0);
	if (complement)
		info = info || BConeSetUpperBound(bounds, nvar, 0.0);

	info = info || DSDPSetDualObjective(dsdp, nvar, 1.0);
	info = info || DSDPSetGapTolerance(dsdp, LMI_GAP_TOL);
	info = info || DSDPSetMaxIts(dsdp, 300);
	info = info || DSDPSetup(dsdp);
	info = info || DSDPSolve(dsdp);
	if (info) {
		st = status_set(err, SL_ERR_NUMERIC,
				"exact LMI: DSDP failed (code %d) on a reduced %dx%d layer", info, r, c);
		goto out;
	}
	DSDPTerminationReason reason;
	DSDPSolutionType type;
	int its = 0;
	DSDPStopReason(dsdp, &reason);
	DSDPGetSolutionType(dsdp, &type);
	DSDPGetIts(dsdp, &its);
	DSDPGetY(dsdp, y, nvar);
	if (type == DSDP_INFEASIBLE || type == DSDP_UNBOUNDED) {
		st = status_set(err, SL_ERR_NUMERIC,
				"exact LMI: DSDP reports the SDP %s (stop reason %d)",
				type == DSDP_INFEASIBLE ? "infeasible" : "unbounded", (int)reason);
		goto out;
	}
	struct lmi_result res = {.nu_max = y[r], .iterations = its};
	st = min_eig_at(layer, complement, res.nu_max, delta, y, &res.min_eig, err);
	if (st != SL_OK)
		goto out;
	/* a certificate off by more than the solver's accuracy is no certificate */
	double scale = 1 + fabs(delta) + fabs(res.nu_max);
	for (int k = 0; k < r; k++)
		scale = fmax(scale, fabs(y[k]));
	if (res.min_eig < -1e-6 * scale) {
		st = status_set(err, SL_ERR_NUMERIC,
				"exact LMI: DSDP's answer does not check out (smallest eigenvalue "
				"of M is %g; stop reason %d)",
				res.min_eig, (int)reason);
		goto out;
	}
	if (lambda)
		memcpy(lambda, y, sizeof(double) * (size_t)r);
	*out = res;
out:
	if (dsdp)
		DSDPDestroy(dsdp);
	free(y);
	free(data.val);
	free(data.idx);
	return st;
}

sl_status lmi_reduce(const struct lmi_layer *layer, struct lmi_layer *red, bool *complement,
		     struct sl_error *err)
{
	if (!layer)
		return status_set(err, SL_ERR_ARG, "exact LMI: no layer");
	sl_status st = check_layer(layer, err);
	if (st != SL_OK)
		return st;
	double *wr = NULL;
	int d = 0;
	st = reduce_layer(layer, &wr, &d, err);
	if (st != SL_OK)
		return st;
	*red = (struct lmi_layer){wr, layer->rows, d, layer->m, layer->p};
	*complement = d < layer->cols;
	return SL_OK;
}

/* Validate, reduce, solve; lambda (rows entries) is required here. */
static sl_status max_nu(const struct lmi_layer *layer, double delta, struct lmi_result *out,
			double *lambda, struct lmi_layer *red, bool *complement,
			struct sl_error *err)
{
	/* the size first: a layer too large is refused before W is read */
	sl_status st = lmi_fits(layer->rows, layer->cols, err);
	if (st != SL_OK)
		return st;
	if (!isfinite(delta))
		return status_set(err, SL_ERR_ARG, "exact LMI: delta %g is not finite", delta);
	st = lmi_reduce(layer, red, complement, err);
	if (st != SL_OK)
		return st;
	st = solve_reduced(red, *complement, delta, out, lambda, err);
	if (st != SL_OK) {
		free((double *)red->w);
		red->w = NULL;
	}
	return st;
}

sl_status lmi_max_nu(const struct lmi_layer *layer, double delta, struct lmi_result *out,
		     double *lambda, struct sl_error *err)
{
	if (!layer)
		return status_set(err, SL_ERR_ARG, "exact LMI: no layer");
	sl_status fit = lmi_fits(layer->rows, layer->cols, err);
	if (fit != SL_OK)
		return fit;
	double *lam = malloc(sizeof(double) * (size_t)layer->rows);
	if (!lam)
		return status_set(err, SL_ERR_NOMEM, "exact LMI: %d multipliers", layer->rows);
	struct lmi_layer red;
	bool complement;
	sl_status st = max_nu(layer, delta, out, lam, &red, &complement, err);
	if (st == SL_OK) {
		if (lambda)
			memcpy(lambda, lam, sizeof(double) * (size_t)layer->rows);
		free((double *)red.w);
	}
	free(lam);
	return st;
}

sl_status lmi_check(const struct lmi_layer *layer, double nu, double delta,
		    struct lmi_verdict *out, struct sl_error *err)
{
	if (!isfinite(nu))
		return status_set(err, SL_ERR_ARG, "exact LMI: nu %g is not finite", nu);
	if (!layer)
		return status_set(err, SL_ERR_ARG, "exact LMI: no layer");
	sl_status fit = lmi_fits(layer->rows, layer->cols, err);
	if (fit != SL_OK)
		return fit;
	double *lambda = malloc(sizeof(double) * (size_t)layer->rows);
	if (!lambda)
		return status_set(err, SL_ERR_NOMEM, "exact LMI: %d multipliers", layer->rows);
	struct lmi_result res;
	struct lmi_layer red;
	bool complement;
	sl_status st = max_nu(layer, delta, &res, lambda, &red, &complement, err);
	if (st == SL_OK) {
		struct lmi_verdict v = {.nu_max = res.nu_max, .margin = res.nu_max - nu};
		v.feasible = nu <= res.nu_max;
		st = min_eig_at(&red, complement, nu, delta, lambda, &v.min_eig, err);
		if (st == SL_OK)
			*out = v;
		free((double *)red.w);
	}
	free(lambda);
	return st;
}
