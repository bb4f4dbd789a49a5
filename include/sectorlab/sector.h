/*
 * sector: incremental sector bounds, the numbers behind every certificate.
 *
 * What it does (DESIGN.md §1 is the reference; where it and the paper differ,
 * DESIGN.md is right):
 *   - indices (nu, delta) -> sector slopes [k_lo, k_hi], the Lipschitz bound
 *     gamma = k_hi and the certified radius margin / (sqrt(2) gamma);
 *   - activation sectors [alpha, beta] -> (m, p);
 *   - Theorem 4's spectral-norm bound rho, naming the branch that applied;
 *   - Theorem 3's cascade matrix A with the corrected diagonal, and its
 *     largest eigenvalue (LAPACK);
 *   - max pooling as a k-Lipschitz layer with indices (-k - d k^2, d);
 *   - the allocation: per-layer (nu_i, delta_i) with A <= 0 that make the
 *     Theorem 4 bounds as generous as possible, verified before it is returned;
 *   - a small table of the layer kinds of the models the lab knows.
 *
 * What it does not do: touch weights (the exact per-layer LMI is in lmi.h,
 * spectral norms in spectral.h), print, or exit.  Impossible inputs (delta <= 0,
 * 4 delta nu > 1, NaN) give a status and a sentence in struct sl_error, never a
 * NaN result; outputs are left unchanged when a function fails unless it says
 * otherwise.  Every struct here is plain data owned by the caller.
 */
#ifndef SECTORLAB_SECTOR_H
#define SECTORLAB_SECTOR_H

#include <stdbool.h>

#include "sectorlab/status.h"

/* Most layers a model, an allocation or a cascade matrix may have. */
#define SECTOR_MAX_LAYERS 16

/* ---- Indices, slopes, Lipschitz bound, radius (Definition II.2) ---- */

/*
 * Sector slopes k_lo <= k_hi = (1 -/+ sqrt(1 - 4 delta nu)) / (2 delta).
 * SL_ERR_RANGE when delta <= 0 (the set of slopes is then not an interval),
 * SL_ERR_INFEASIBLE when 4 delta nu > 1 (no slope at all), SL_ERR_ARG on NaN.
 */
sl_status sector_slopes(double nu, double delta, double *lo, double *hi, struct sl_error *err);

/* The network's Lipschitz bound gamma = k_hi (same failures as sector_slopes). */
sl_status sector_gamma(double nu, double delta, double *gamma, struct sl_error *err);

/*
 * Certified l2 radius of an input whose top logit beats the runner-up by
 * margin: margin / (sqrt(2) gamma).  A margin <= 0 (misclassified or tied)
 * certifies nothing: radius 0.  SL_ERR_ARG for gamma <= 0 or NaN.
 */
sl_status sector_radius(double margin, double gamma, double *radius, struct sl_error *err);

/* ---- Activation sectors ---- */

enum sector_act_kind {
	SECTOR_ACT_IDENTITY, /* no activation (the last layer): [1, 1] */
	SECTOR_ACT_RELU,     /* [0, 1] */
	SECTOR_ACT_LEAKY,    /* slope a: [min(a, 1), max(a, 1)] */
	SECTOR_ACT_TANH,     /* [0, 1] */
};

/* An activation incrementally sector bounded by [alpha, beta]; Theorem 1's
 * m = (alpha + beta) / 2 and p = alpha beta. */
struct sector_act {
	double alpha, beta;
	double m, p;
};

/* (m, p) of the sector [alpha, beta]; SL_ERR_ARG unless alpha <= beta, finite. */
sl_status sector_act_bounds(double alpha, double beta, struct sector_act *out,
			    struct sl_error *err);

/* The sector of a known activation; slope is used by SECTOR_ACT_LEAKY only. */
sl_status sector_act(enum sector_act_kind kind, double slope, struct sector_act *out,
		     struct sl_error *err);

/* "identity", "relu", "leaky", "tanh". */
const char *sector_act_name(enum sector_act_kind kind);

/* ---- Theorem 4: the spectral-norm bound ---- */

enum sector_t4_branch {
	SECTOR_T4_S_ZERO,  /* s = 0 (wide W, or s not computed): (-nu - 1/2) / (|m| (delta - nu)) */
	SECTOR_T4_P_ZERO,  /* p = 0 (ReLU, tanh): s drops out, same value as s = 0 */
	SECTOR_T4_GENERAL, /* 0 < |p| s^2 < 1: eq. (16) in full */
	SECTOR_T4_REFUSED, /* an assumption of the theorem fails: no bound at all */
};

struct sector_t4 {
	double rho; /* bound on ||W||_2; may be negative (then infeasible); 0 when refused */
	enum sector_t4_branch branch;
};

/*
 * Theorem 4, eq. (16)-(17): the layer y = phi(W x + b) with activation sector
 * (m, p) and s = ||W||_i (square root of the smallest eigenvalue of W^T W; 0 is
 * always safe) has indices (nu, delta) when ||W||_2 <= out->rho.
 *
 * Returns SL_OK with rho >= 0; SL_ERR_INFEASIBLE when the bound is negative (no
 * W qualifies; out is still filled and the message says why); SL_ERR_UNSUPPORTED
 * with branch SECTOR_T4_REFUSED when the theorem does not apply: delta <= 0,
 * nu >= delta, 4 delta nu > 1, p < 0, m = 0 or |p| s^2 >= 1; SL_ERR_ARG on NaN
 * or s < 0.
 */
sl_status sector_theorem4(double nu, double delta, double m, double p, double s,
			  struct sector_t4 *out, struct sl_error *err);

/* "s = 0", "p = 0", "general", "refused". */
const char *sector_t4_branch_name(enum sector_t4_branch branch);

/* ---- Max pooling as a k-Lipschitz layer ---- */

/*
 * Indices of a k-Lipschitz layer: (nu, delta) = (-k - d k^2, d), valid for any
 * d > 0.  SL_ERR_ARG unless k >= 0 and d > 0.
 */
sl_status sector_pool_indices(double k, double d, double *nu, double *delta,
			      struct sl_error *err);

/* l2 Lipschitz constant of max pooling whose windows overlap at most c times per
 * input: sqrt(c) (3x3 windows with stride 2: c = 4, k = 2). */
double sector_pool_lipschitz(int overlap);

/* ---- Theorem 3: the cascade ---- */

/*
 * The (n+1) x (n+1) matrix A of Theorem 3 with the corrected diagonal, row-major
 * into a[(n+1) * (n+1)]:
 *     A_11 = nu - nu_1,  A_jj = -nu_j - delta_{j-1} (j = 2..n),
 *     A_{n+1,n+1} = delta - delta_n,
 *     A_{j,j+1} += 1/2,  A_{1,n+1} += -1/2  (for n = 1 the two cancel).
 * SL_ERR_ARG unless 1 <= n <= SECTOR_MAX_LAYERS and every number is finite.
 */
sl_status sector_cascade_matrix(double nu, double delta, const double *nu_i,
				const double *delta_i, int n, double *a, struct sl_error *err);

/* Largest eigenvalue of that A (LAPACK): the cascade certifies (nu, delta) when
 * it is <= 0. */
sl_status sector_cascade_max_eig(double nu, double delta, const double *nu_i,
				 const double *delta_i, int n, double *max_eig,
				 struct sl_error *err);

/* ---- Layers and models ---- */

enum sector_layer_kind {
	SECTOR_LAYER_DENSE, /* y = phi(W x + b) */
	SECTOR_LAYER_CONV,  /* the same with W the convolution operator */
	SECTOR_LAYER_POOL,  /* a k-Lipschitz layer (max pooling): no rho */
};

/* One layer as the certificate sees it. */
struct sector_layer {
	enum sector_layer_kind kind;
	enum sector_act_kind act; /* dense, conv */
	struct sector_act sector; /* (alpha, beta, m, p) of act */
	double s;                 /* ||W||_i, 0 when wide or not computed (safe) */
	double k;                 /* pool: Lipschitz constant */
};

/* A weighted layer (dense or conv) with activation act (slope for leaky) and s. */
sl_status sector_layer_weighted(enum sector_layer_kind kind, enum sector_act_kind act,
				double slope, double s, struct sector_layer *out,
				struct sl_error *err);

/* A k-Lipschitz pooling layer. */
sl_status sector_layer_pool(double k, struct sector_layer *out, struct sl_error *err);

/* "dense", "conv", "pool". */
const char *sector_layer_kind_name(enum sector_layer_kind kind);

/* ---- Allocation ---- */

enum sector_objective {
	SECTOR_OBJ_PRODUCT, /* maximize the product of the rho_i (default) */
	SECTOR_OBJ_MIN,     /* maximize the smallest rho_i */
};

/* Every returned allocation has largest eigenvalue of A <= this. */
#define SECTOR_ALLOC_TOL 1e-9

struct sector_alloc_layer {
	double nu, delta;
	bool has_rho;                /* false for pooling layers */
	double rho;                  /* Theorem 4 bound (0 when !has_rho) */
	enum sector_t4_branch branch; /* branch of Theorem 4 that gave rho */
};

struct sector_allocation {
	int n;
	struct sector_alloc_layer layer[SECTOR_MAX_LAYERS];
	double max_eig_a;   /* largest eigenvalue of A, verified <= SECTOR_ALLOC_TOL */
	double rho_product; /* product of the rho_i of weighted layers (1 if none) */
	double rho_min;     /* smallest of them (0 if none) */
	int newton_steps;   /* work done, for the curious */
};

/*
 * Choose (nu_i, delta_i) for every layer such that Theorem 3's A <= 0, every
 * delta_i > 0, every weighted layer has a positive Theorem 4 bound, and the
 * objective is as large as this search finds (it is deterministic: the same
 * inputs give the same answer).  Pooling layers get (-k - d k^2, d).
 *
 * Returns SL_OK with out filled and verified; SL_ERR_INFEASIBLE with a message
 * saying why when no allocation exists (or none was found); SL_ERR_RANGE or
 * SL_ERR_INFEASIBLE for network indices that are not a sector; SL_ERR_UNSUPPORTED
 * when Theorem 4 cannot apply to a layer (p < 0, |p| s^2 >= 1); SL_ERR_NUMERIC if
 * the result failed verification.
 */
sl_status sector_allocate(double nu, double delta, const struct sector_layer *layers, int n,
			  enum sector_objective objective, struct sector_allocation *out,
			  struct sl_error *err);

/* "product", "min". */
const char *sector_objective_name(enum sector_objective objective);

#endif
