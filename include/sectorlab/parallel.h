/*
 * parallel: a small fixed team of threads that splits index ranges.
 *
 * parallel_for(p, n, fn, ctx) cuts [0, n) into one contiguous chunk per
 * thread (chunk t always goes to thread t, the caller being thread 0) and
 * returns when every chunk is done.  The split depends only on n and the
 * team size, so work that reduces per-thread partial results in thread
 * order is deterministic for a given number of threads.
 *
 * The team is for coarse work (a batch of images through a convolution, a
 * large matrix product); a call costs a few microseconds of wake-up.  A NULL
 * team runs everything on the caller.  One thread drives a team at a time,
 * and work running on a team must not start more work on the same team.
 *
 * parallel_sgemm, parallel_sgemv and parallel_dsdot split one BLAS call
 * among a team (OpenBLAS itself is kept single-threaded by nn).
 */
#ifndef SECTORLAB_PARALLEL_H
#define SECTORLAB_PARALLEL_H

#include <stdbool.h>

#include "sectorlab/status.h"

struct parallel;

/* fn(ctx, tid, begin, end) handles [begin, end) on thread tid; every thread
 * is called, with an empty range when n is smaller than the team. */
typedef void (*parallel_fn)(void *ctx, int tid, int begin, int end);

/* A team of nthreads (1 to 64); nthreads - 1 new threads wait for work. */
sl_status parallel_new(int nthreads, struct parallel **out, struct sl_error *err);
void parallel_free(struct parallel *p);

/* Team size (1 for NULL). */
int parallel_threads(const struct parallel *p);

void parallel_for(struct parallel *p, int n, parallel_fn fn, void *ctx);

/*
 * One row-major sgemm, C (m, n) = alpha op(A) op(B) + beta C with op(X) = X
 * or X^T, its rows (split_rows) or columns cut into one block per thread.
 * Each element of C is computed by one thread in one sgemm call, so the
 * result does not depend on the team.
 */
void parallel_sgemm(struct parallel *p, bool split_rows, bool trans_a, bool trans_b, int m,
		    int n, int k, float alpha, const float *a, int lda, const float *b, int ldb,
		    float beta, float *c, int ldc);

/* y = A x (trans false; A is m x n row-major, y has m entries) or y = A^T x
 * (trans true; y has n entries), the entries of y cut into one block per
 * thread (cblas_sgemv). */
void parallel_sgemv(struct parallel *p, bool trans, int m, int n, const float *a, int lda,
		    const float *x, float *y);

/* x . y over n values in double, one block per thread (cblas_dsdot), the
 * blocks' sums added in thread order. */
double parallel_dsdot(struct parallel *p, int n, const float *x, const float *y);

#endif
