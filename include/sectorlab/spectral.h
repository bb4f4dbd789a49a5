/*
 * spectral: spectral norms of dense weight matrices and of convolutions.
 *
 * Power iteration with persistent vectors (the estimate used while training,
 * one cheap step per optimizer step) on a matrix or on a convolution
 * operator (the convolution and its transpose at the real input size, stride
 * and padding); the exact value of a matrix from LAPACK's SVD; and, for
 * small convolutions, the explicit operator matrix, so both can be checked
 * against each other.  This module does not know about networks.
 */
#ifndef SECTORLAB_SPECTRAL_H
#define SECTORLAB_SPECTRAL_H

#include "sectorlab/conv.h"
#include "sectorlab/parallel.h"
#include "sectorlab/rng.h"
#include "sectorlab/status.h"

/*
 * The operator a power iteration runs on: a dense rows x cols row-major
 * matrix w, or the convolution with kernel w (Cout, Cin, k, k) and geometry
 * conv (then rows = Cout*Ho*Wo, cols = Cin*H*W).  Its products are split
 * among team (NULL: the calling thread); col is a workspace of
 * conv_col_size(conv) floats (convolutions only).  Networks (nn) and the
 * functions below run these same steps, so the code that trains is the code
 * tested here.
 */
struct spectral_op {
	const float *w;
	int rows, cols;
	const struct conv_geom *conv; /* NULL: dense */
	struct parallel *team;
	float *col;
};

struct spectral_op spectral_op_dense(const float *w, int rows, int cols, struct parallel *team);
struct spectral_op spectral_op_conv(const struct conv_geom *g, const float *w, float *col,
				    struct parallel *team);

/* One power step: v <- A^T u / |A^T u|, u <- A v / |A v|, return |A v|
 * (see spectral_power_step). */
float spectral_op_step(const struct spectral_op *op, float *u, float *v);

/* spectral_converge with spectral_op_step. */
float spectral_op_converge(const struct spectral_op *op, float *u, float *v, double rel_tol,
			   int max_iters, int *iters);

/* u . A v; work holds rows floats. */
float spectral_op_rayleigh(const struct spectral_op *op, const float *u, const float *v,
			   float *work);

/* Fill x[0 .. n) with a random unit vector. */
void spectral_random_unit(struct sl_rng *rng, float *x, int n);

/*
 * One power-iteration step on the rows x cols row-major matrix w (the dense
 * operator, on this thread):
 *     v <- w^T u / |w^T u|,   u <- w v / |w v|,   return |w v|
 * u (rows) and v (cols) persist between calls; the return value equals
 * u . w v for the new u, v, never exceeds ||w||_2 (up to rounding) and
 * converges to it from below.  If w^T u vanishes, 0 is returned and the
 * caller should draw a new random u.
 */
float spectral_power_step(const float *w, int rows, int cols, float *u, float *v);

/* Call step(ctx), one power step returning its estimate, until the
 * estimate changes by at most rel_tol (relative), is 0, or max_iters steps
 * are taken; returns the last estimate and stores the steps taken in *iters
 * when iters is non-NULL.  Every converging power iteration runs this loop. */
float spectral_converge(float (*step)(void *ctx), void *ctx, double rel_tol, int max_iters,
			int *iters);

/* spectral_converge with spectral_power_step on w. */
float spectral_power_converge(const float *w, int rows, int cols, float *u, float *v,
			      double rel_tol, int max_iters, int *iters);

/*
 * The same step on the convolution operator A with kernel w (Cout, Cin, k, k)
 * and geometry g: v <- A^T u / |A^T u|, u <- A v / |A v|, return |A v|.
 * u is (Cout, Ho, Wo), v is (Cin, H, W); col is a workspace of
 * conv_col_size(g) floats.
 */
float spectral_conv_power_step(const struct conv_geom *g, const float *w, float *u, float *v,
			       float *col);

/* spectral_power_converge for a convolution operator. */
float spectral_conv_power_converge(const struct conv_geom *g, const float *w, float *u,
				   float *v, float *col, double rel_tol, int max_iters,
				   int *iters);

/*
 * The convolution operator as an explicit matrix a (Cout*Ho*Wo, Cin*H*W),
 * row-major, so that vec(w * x) = a vec(x).  Refuses (SL_ERR_TOO_LARGE)
 * beyond max_entries entries; a is allocated and owned by the caller.
 */
sl_status spectral_conv_matrix(const struct conv_geom *g, const float *w, size_t max_entries,
			       float **a, struct sl_error *err);

/* Exact largest singular value of w (LAPACK dgesvd, in double). */
sl_status spectral_norm_exact(const float *w, int rows, int cols, double *out,
			      struct sl_error *err);

#endif
