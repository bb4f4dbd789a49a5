/*
 * lmi: the exact per-layer certificate of Theorem 1 / Corollary 2, solved as a
 * semidefinite program with DSDP.
 *
 * For a layer y = phi(W x + b) whose activation lies in the sector [alpha, beta]
 * (m = (alpha + beta)/2, p = alpha beta), indices (nu, delta) are certified
 * when some diagonal Lambda >= 0 makes, in the ordering [dy; dx],
 *
 *     M = [ -delta I + Lambda        1/2 E - m Lambda W      ]
 *         [ (1/2 E - m Lambda W)^T   -nu I + p W^T Lambda W  ]  >= 0,
 *
 * with E the rows x cols rectangular identity (DESIGN.md §1; the paper's S = 1/2 I
 * only fits square layers).  M is affine in (Lambda, nu), so the largest
 * certified nu at a given delta is one SDP: maximize nu subject to M >= 0.
 *
 * What it does: dense layers, W given row-major as rows x cols = out x in (the
 * PyTorch layout), in double precision; the answer is checked with LAPACK (the
 * smallest eigenvalue of M at the solver's Lambda) before it is returned.
 * What it does not do: build convolution operators (pass the operator's matrix
 * if you have one), compute spectral norms (spectral.h), or print.  Beyond
 * LMI_MAX_ORDER the functions return SL_ERR_TOO_LARGE at once instead of
 * running for minutes.  Callers own every
 * buffer; nothing is kept between calls.  DSDP may write to stdout if it
 * hits an internal error; the calls here are arranged so that it does not.
 */
#ifndef SECTORLAB_LMI_H
#define SECTORLAB_LMI_H

#include <stdbool.h>

#include "sectorlab/status.h"

/*
 * Largest SDP attempted.  A wide layer (rows < cols) is reduced exactly to an
 * SDP of order rows + min(cols, 2 rows) (see lmi.c), a square or tall one has
 * order rows + cols.  Measured on one core: 50 x 784 (the first MNIST layer,
 * order 150) 0.6 s, 66 x 200 (198) 1.3 s, 100 x 100 (200) 2.7 s, 100 x 300
 * (300) 7 s; the time grows about as the fourth power of the order, so 200
 * keeps every accepted solve within about three seconds.
 */
#define LMI_MAX_ORDER 200

/* Accuracy asked of the SDP solver (relative duality gap). */
#define LMI_GAP_TOL 1e-9

/* A dense layer: W is rows x cols row-major (out x in), sector (m, p). */
struct lmi_layer {
	const double *w;
	int rows, cols;
	double m, p;
};

struct lmi_result {
	double nu_max;  /* largest nu certified at the given delta */
	double min_eig; /* smallest eigenvalue of M(Lambda*, nu_max): ~0, never much below */
	int iterations; /* DSDP iterations */
};

/* SL_OK when a rows x cols layer is within LMI_MAX_ORDER, else SL_ERR_TOO_LARGE
 * with a message naming the size and the limit. */
sl_status lmi_fits(int rows, int cols, struct sl_error *err);

/*
 * Build M for a given Lambda (diag, rows entries) and (nu, delta) into mat, an
 * (rows + cols)^2 row-major buffer.  For tests and for checking a certificate.
 */
sl_status lmi_matrix(const struct lmi_layer *layer, double nu, double delta,
		     const double *lambda, double *mat, struct sl_error *err);

/*
 * The largest nu such that (nu, delta) is certified by the exact LMI, with the
 * multipliers in lambda (rows entries; may be NULL).  SL_ERR_TOO_LARGE beyond
 * LMI_MAX_ORDER; SL_ERR_ARG for bad sizes or non-finite input; SL_ERR_NUMERIC
 * when DSDP fails or its answer does not check out.
 */
sl_status lmi_max_nu(const struct lmi_layer *layer, double delta, struct lmi_result *out,
		     double *lambda, struct sl_error *err);

/*
 * The exact reduction lmi_max_nu applies before solving (see lmi.c): red gets
 * a new rows x d weight (d <= min(cols, 2 rows); free((double *)red->w)) with
 * the same (m, p), and *complement says whether a complement exists (d <
 * cols), on which the LMI reads -nu I: M >= 0 iff M(red) >= 0 and, with a
 * complement, nu <= 0.  Does not check the size limit.  For callers that
 * build larger SDPs from the same layer LMI (bounds.h).
 */
sl_status lmi_reduce(const struct lmi_layer *layer, struct lmi_layer *red, bool *complement,
		     struct sl_error *err);

struct lmi_verdict {
	bool feasible;  /* nu <= nu_max: the exact LMI certifies (nu, delta) */
	double nu_max;  /* as lmi_max_nu */
	double margin;  /* nu_max - nu (negative when infeasible) */
	double min_eig; /* smallest eigenvalue of M(Lambda*, nu) */
};

/* Is (nu, delta) certified for this layer?  One SDP (lmi_max_nu) and a check. */
sl_status lmi_check(const struct lmi_layer *layer, double nu, double delta,
		    struct lmi_verdict *out, struct sl_error *err);

#endif
