/*
 * linalg: the few dense linear-algebra results sectorlab needs exactly,
 * computed by LAPACK (the one shipped inside OpenBLAS) in double precision.
 * This is the only file that declares LAPACK's Fortran entry points.
 *
 * Matrices are row-major unless a function says otherwise.  Inputs are never
 * modified; callers own every output buffer.
 */
#ifndef SECTORLAB_LINALG_H
#define SECTORLAB_LINALG_H

#include "sectorlab/status.h"

/*
 * Singular values of the rows x cols row-major float matrix a, written in
 * descending order to sv[0 .. min(rows, cols)).  Uses dgesvd.
 */
sl_status linalg_singular_values(const float *a, int rows, int cols, double *sv,
				 struct sl_error *err);

/* Same for a double matrix. */
sl_status linalg_singular_values_d(const double *a, int rows, int cols, double *sv,
				   struct sl_error *err);

/*
 * The largest singular value of the rows x cols row-major float matrix a
 * and its singular vectors: a v = sigma u, u (rows) and v (cols) of unit
 * length (rounded to float).  Uses dgesvd.
 */
sl_status linalg_top_singular_pair(const float *a, int rows, int cols, double *sigma, float *u,
				   float *v, struct sl_error *err);

/*
 * Eigenvalues (ascending) of the symmetric n x n matrix a, into w[0 .. n).
 * If vecs is non-NULL it receives the orthonormal eigenvectors, row-major with
 * eigenvector k in column k.  Uses dsyev.
 */
sl_status linalg_sym_eig(const double *a, int n, double *w, double *vecs,
			 struct sl_error *err);

/* Largest eigenvalue of the symmetric n x n matrix a. */
sl_status linalg_sym_max_eig(const double *a, int n, double *out, struct sl_error *err);

#endif
