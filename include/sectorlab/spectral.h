/*
 * spectral: spectral norms of dense weight matrices.
 *
 * Power iteration with persistent vectors (the estimate used while training,
 * one cheap step per optimizer step) and the exact value from LAPACK's SVD
 * (used to verify estimates and in certificates).  Convolution operators come
 * later; this module does not know about networks.
 */
#ifndef SECTORLAB_SPECTRAL_H
#define SECTORLAB_SPECTRAL_H

#include "sectorlab/rng.h"
#include "sectorlab/status.h"

/* Fill x[0 .. n) with a random unit vector. */
void spectral_random_unit(struct sl_rng *rng, float *x, int n);

/*
 * One power-iteration step on the rows x cols row-major matrix w:
 *     v <- w^T u / |w^T u|,   u <- w v / |w v|,   return u . w v
 * u (rows) and v (cols) persist between calls; the return value is the
||w||_2, which never exceeds the true value (up to
 * rounding) and converges to it from below.  If w^T u vanishes, 0 is
 * returned and the caller should draw a new random u.
 */
float spectral_power_step(const float *w, int rows, int cols, float *u, float *v);

/* Run power steps until the estimate changes by less than rel_tol
 * (relative) or max_iters is reached; returns the estimate and stores the
 * number of steps taken in *iters when iters is non-NULL. */
float spectral_power_converge(const float *w, int rows, int cols, float *u, float *v,
			      double rel_tol, int max_iters, int *iters);

/* Exact largest singular value of w (LAPACK dgesvd, in double). */
sl_status spectral_norm_exact(const float *w, int rows, int cols, double *out,
			      struct sl_error *err);

#endif
