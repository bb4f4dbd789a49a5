/* linalg: LAPACK wrappers (see linalg.h). */
#include "sectorlab/linalg.h"

#include <stdlib.h>
#include <string.h>

/* LAPACK's Fortran interface, as exported by OpenBLAS. */
void dgesvd_(const char *jobu, const char *jobvt, const int *m, const int *n, double *a,
	     const int *lda, double *s, double *u, const int *ldu, double *vt, const int *ldvt,
	     double *work, const int *lwork, int *info);
void dsyev_(const char *jobz, const char *uplo, const int *n, double *a, const int *lda,
	    double *w, double *work, const int *lwork, int *info);

sl_status linalg_singular_values_d(const double *a, int rows, int cols, double *sv,
				   struct sl_error *err)
{
	if (rows <= 0 || cols <= 0)
		return status_set(err, SL_ERR_ARG, "singular values: empty %dx%d matrix", rows,
				  cols);
	/* Row-major rows x cols is column-major cols x rows: same singular values. */
	int m = cols, n = rows, lda = cols, one = 1, lwork = -1, info = 0;
	double *copy = malloc(sizeof(double) * (size_t)rows * (size_t)cols);
	if (!copy)
		return status_set(err, SL_ERR_NOMEM, "singular values: %dx%d matrix", rows,
				  cols);
	memcpy(copy, a, sizeof(double) * (size_t)rows * (size_t)cols);
	double query = 0, dummy = 0;
	dgesvd_("N", "N", &m, &n, copy, &lda, sv, &dummy, &one, &dummy, &one, &query, &lwork,
		&info);
	lwork = (int)query;
	double *work = malloc(sizeof(double) * (size_t)(lwork > 1 ? lwork : 1));
	sl_status st = SL_OK;
	if (!work) {
		st = status_set(err, SL_ERR_NOMEM, "singular values: workspace");
		goto out;
	}
	dgesvd_("N", "N", &m, &n, copy, &lda, sv, &dummy, &one, &dummy, &one, work, &lwork,
		&info);
	if (info != 0)
		st = status_set(err, SL_ERR_NUMERIC, "dgesvd failed (info %d)", info);
out:
	free(work);
	free(copy);
	return st;
}

sl_status linalg_singular_values(const float *a, int rows, int cols, double *sv,
				 struct sl_error *err)
{
	if (rows <= 0 || cols <= 0)
		return status_set(err, SL_ERR_ARG, "singular values: empty %dx%d matrix", rows,
				  cols);
	size_t n = (size_t)rows * (size_t)cols;
	double *d = malloc(sizeof(double) * n);
	if (!d)
		return status_set(err, SL_ERR_NOMEM, "singular values: %dx%d matrix", rows,
				  cols);
	for (size_t i = 0; i < n; i++)
		d[i] = a[i];
	sl_status st = linalg_singular_values_d(d, rows, cols, sv, err);
	free(d);
	return st;
}

sl_status linalg_top_singular_pair(const float *a, int rows, int cols, double *sigma, float *u,
				   float *v, struct sl_error *err)
{
	if (rows <= 0 || cols <= 0)
		return status_set(err, SL_ERR_ARG, "singular vectors: empty %dx%d matrix", rows,
				  cols);
	/* Row-major A (rows x cols) is column-major B = A^T (cols x rows); with
	 * B = U S V^T, A = V S U^T: A's left vector is B's first right one (row
	 * 0 of VT), A's right vector B's first left one (column 0 of U). */
	int m = cols, n = rows, k = rows < cols ? rows : cols, lda = cols, ldu = cols, ldvt = k;
	int lwork = -1, info = 0;
	size_t count = (size_t)rows * (size_t)cols;
	double *copy = malloc(sizeof(double) * count);
	double *sv = malloc(sizeof(double) * (size_t)k);
	double *bu = malloc(sizeof(double) * (size_t)cols * (size_t)k);
	double *bvt = malloc(sizeof(double) * (size_t)k * (size_t)rows);
	double *work = NULL;
	sl_status st = SL_OK;
	if (!copy || !sv || !bu || !bvt) {
		st = status_set(err, SL_ERR_NOMEM, "singular vectors: %dx%d matrix", rows, cols);
		goto out;
	}
	for (size_t i = 0; i < count; i++)
		copy[i] = a[i];
	double query = 0;
	dgesvd_("S", "S", &m, &n, copy, &lda, sv, bu, &ldu, bvt, &ldvt, &query, &lwork, &info);
	lwork = (int)query;
	work = malloc(sizeof(double) * (size_t)(lwork > 1 ? lwork : 1));
	if (!work) {
		st = status_set(err, SL_ERR_NOMEM, "singular vectors: workspace");
		goto out;
	}
	dgesvd_("S", "S", &m, &n, copy, &lda, sv, bu, &ldu, bvt, &ldvt, work, &lwork, &info);
	if (info != 0) {
		st = status_set(err, SL_ERR_NUMERIC, "dgesvd failed (info %d)", info);
		goto out;
	}
	*sigma = sv[0];
	for (int j = 0; j < rows; j++)
		u[j] = (float)bvt[(size_t)j * (size_t)k];
	for (int j = 0; j < cols; j++)
		v[j] = (float)bu[j];
out:
	free(work);
	free(bvt);
	free(bu);
	free(sv);
	free(copy);
	return st;
}

sl_status linalg_sym_eig(const double *a, int n, double *w, double *vecs, struct sl_error *err)
{
	if (n <= 0)
		return status_set(err, SL_ERR_ARG, "eigenvalues: empty matrix");
	int lda = n, lwork = -1, info = 0;
	double *copy = malloc(sizeof(double) * (size_t)n * (size_t)n);
	if (!copy)
		return status_set(err, SL_ERR_NOMEM, "eigenvalues: %dx%d matrix", n, n);
	memcpy(copy, a, sizeof(double) * (size_t)n * (size_t)n);
	const char *jobz = vecs ? "V" : "N";
	double query = 0;
	dsyev_(jobz, "U", &n, copy, &lda, w, &query, &lwork, &info);
	lwork = (int)query;
	double *work = malloc(sizeof(double) * (size_t)(lwork > 1 ? lwork : 1));
	sl_status st = SL_OK;
	if (!work) {
		st = status_set(err, SL_ERR_NOMEM, "eigenvalues: workspace");
		goto out;
	}
	dsyev_(jobz, "U", &n, copy, &lda, w, work, &lwork, &info);
	if (info != 0) {
		st = status_set(err, SL_ERR_NUMERIC, "dsyev failed (info %d)", info);
		goto out;
	}
	if (vecs) {
		/* copy is column-major: column k is eigenvector k.  Transpose into
		 * row-major storage so that vecs[i * n + k] is component i of vector k. */
		for (int i = 0; i < n; i++)
			for (int k = 0; k < n; k++)
				vecs[(size_t)i * n + k] = copy[(size_t)k * n + i];
	}
out:
	free(work);
	free(copy);
	return st;
}

sl_status linalg_sym_max_eig(const double *a, int n, double *out, struct sl_error *err)
{
	double *w = malloc(sizeof(double) * (size_t)(n > 0 ? n : 1));
	if (!w)
		return status_set(err, SL_ERR_NOMEM, "eigenvalues: %d values", n);
	sl_status st = linalg_sym_eig(a, n, w, NULL, err);
	if (st == SL_OK)
		*out = w[n - 1];
	free(w);
	return st;
}
