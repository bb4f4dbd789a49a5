/* parallel: a fixed team of worker threads (see parallel.h). */
#include "sectorlab/parallel.h"

#include <cblas.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

struct parallel {
	int nthreads;
	pthread_t *threads;   /* (nthreads - 1) */
	pthread_mutex_t lock;
	pthread_cond_t start, done;
	/* The current job, guarded by lock. */
	unsigned long generation;
	int pending;          /* workers still busy with this generation */
	bool quit;
	int n;
	parallel_fn fn;
	void *ctx;
};

struct worker_arg {
	struct parallel *p;
	int tid;
};

/* Chunk t of [0, n) split into k nearly equal contiguous parts. */
static void chunk(int n, int k, int t, int *begin, int *end)
{
	*begin = (int)((long long)n * t / k);
	*end = (int)((long long)n * (t + 1) / k);
}

static void *worker(void *arg)
{
	struct worker_arg a = *(struct worker_arg *)arg;
	free(arg);
	struct parallel *p = a.p;
	unsigned long seen = 0;
	pthread_mutex_lock(&p->lock);
	for (;;) {
		while (!p->quit && p->generation == seen)
			pthread_cond_wait(&p->start, &p->lock);
		if (p->quit)
			break;
		seen = p->generation;
		int n = p->n;
		parallel_fn fn = p->fn;
		void *ctx = p->ctx;
		pthread_mutex_unlock(&p->lock);
		int begin, end;
		chunk(n, p->nthreads, a.tid, &begin, &end);
		fn(ctx, a.tid, begin, end);
		pthread_mutex_lock(&p->lock);
		if (--p->pending == 0)
			pthread_cond_signal(&p->done);
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

sl_status parallel_new(int nthreads, struct parallel **out, struct sl_error *err)
{
	*out = NULL;
	if (nthreads < 1 || nthreads > 64)
		return status_set(err, SL_ERR_ARG, "threads: %d (1 to 64)", nthreads);
	struct parallel *p = calloc(1, sizeof *p);
	if (!p)
		return status_set(err, SL_ERR_NOMEM, "thread team");
	p->nthreads = nthreads;
	p->threads = calloc((size_t)nthreads, sizeof(pthread_t));
	if (!p->threads) {
		free(p);
		return status_set(err, SL_ERR_NOMEM, "thread team");
	}
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->start, NULL);
	pthread_cond_init(&p->done, NULL);
	for (int t = 1; t < nthreads; t++) {
		struct worker_arg *a = malloc(sizeof *a);
		if (a) {
			a->p = p;
			a->tid = t;
		}
		if (!a || pthread_create(&p->threads[t - 1], NULL, worker, a) != 0) {
			free(a);
			p->nthreads = t; /* the threads started so far, for parallel_free */
			parallel_free(p);
			return status_set(err, SL_ERR_NOMEM, "cannot start thread %d of %d", t + 1,
					  nthreads);
		}
	}
	*out = p;
	return SL_OK;
}

void parallel_free(struct parallel *p)
{
	if (!p)
		return;
	pthread_mutex_lock(&p->lock);
	p->quit = true;
	pthread_cond_broadcast(&p->start);
	pthread_mutex_unlock(&p->lock);
	for (int t = 1; t < p->nthreads; t++)
		pthread_join(p->threads[t - 1], NULL);
	pthread_mutex_destroy(&p->lock);
	pthread_cond_destroy(&p->start);
	pthread_cond_destroy(&p->done);
	free(p->threads);
	free(p);
}

int parallel_threads(const struct parallel *p)
{
	return p ? p->nthreads : 1;
}

void parallel_for(struct parallel *p, int n, parallel_fn fn, void *ctx)
{
	if (n <= 0)
		return;
	if (!p || p->nthreads == 1) {
		fn(ctx, 0, 0, n);
		return;
	}
	pthread_mutex_lock(&p->lock);
	p->n = n;
	p->fn = fn;
	p->ctx = ctx;
	p->pending = p->nthreads - 1;
	p->generation++;
	pthread_cond_broadcast(&p->start);
	pthread_mutex_unlock(&p->lock);
	int begin, end;
	chunk(n, p->nthreads, 0, &begin, &end);
	fn(ctx, 0, begin, end);
	pthread_mutex_lock(&p->lock);
	while (p->pending > 0)
		pthread_cond_wait(&p->done, &p->lock);
	pthread_mutex_unlock(&p->lock);
}

struct gemm_job {
	bool split_rows, trans_a, trans_b;
	int m, n, k;
	float alpha;
	const float *a;
	int lda;
	const float *b;
	int ldb;
	float beta;
	float *c;
	int ldc;
};

static void gemm_part(void *ctx, int tid, int begin, int end)
{
	(void)tid;
	const struct gemm_job *j = ctx;
	if (begin >= end)
		return;
	enum CBLAS_TRANSPOSE ta = j->trans_a ? CblasTrans : CblasNoTrans;
	enum CBLAS_TRANSPOSE tb = j->trans_b ? CblasTrans : CblasNoTrans;
	if (j->split_rows) {
		const float *a = j->trans_a ? j->a + begin : j->a + (size_t)begin * j->lda;
		cblas_sgemm(CblasRowMajor, ta, tb, end - begin, j->n, j->k, j->alpha, a, j->lda, j->b,
			    j->ldb, j->beta, j->c + (size_t)begin * j->ldc, j->ldc);
	} else {
		const float *b = j->trans_b ? j->b + (size_t)begin * j->ldb : j->b + begin;
		cblas_sgemm(CblasRowMajor, ta, tb, j->m, end - begin, j->k, j->alpha, j->a, j->lda, b,
			    j->ldb, j->beta, j->c + begin, j->ldc);
	}
}

void parallel_sgemm(struct parallel *p, bool split_rows, bool trans_a, bool trans_b, int m,
		    int n, int k, float alpha, const float *a, int lda, const float *b, int ldb,
		    float beta, float *c, int ldc)
{
	struct gemm_job j = {split_rows, trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb,
			     beta, c, ldc};
	parallel_for(p, split_rows ? m : n, gemm_part, &j);
}

struct dot_job {
	const float *x, *y;
	double part[64];
};

static void dot_part(void *ctx, int tid, int begin, int end)
{
	struct dot_job *j = ctx;
	j->part[tid] = begin < end ? cblas_dsdot(end - begin, j->x + begin, 1, j->y + begin, 1) : 0;
}

double parallel_dsdot(struct parallel *p, int n, const float *x, const float *y)
{
	struct dot_job j = {.x = x, .y = y};
	parallel_for(p, n, dot_part, &j);
	double s = 0;
	for (int t = 0; t < parallel_threads(p); t++)
		s += j.part[t];
	return s;
}

struct gemv_job {
	bool trans;
	int m, n, lda;
	const float *a, *x;
	float *y;
};

static void gemv_part(void *ctx, int tid, int begin, int end)
{
	(void)tid;
	const struct gemv_job *j = ctx;
	if (begin >= end)
		return;
	if (j->trans) /* y[begin, end) = A[:, begin, end)^T x */
		cblas_sgemv(CblasRowMajor, CblasTrans, j->m, end - begin, 1.0f, j->a + begin, j->lda,
			    j->x, 1, 0.0f, j->y + begin, 1);
	else /* y[begin, end) = A[begin, end), :] x */
		cblas_sgemv(CblasRowMajor, CblasNoTrans, end - begin, j->n, 1.0f,
			    j->a + (size_t)begin * j->lda, j->lda, j->x, 1, 0.0f, j->y + begin, 1);
}

void parallel_sgemv(struct parallel *p, bool trans, int m, int n, const float *a, int lda,
		    const float *x, float *y)
{
	struct gemv_job j = {trans, m, n, lda, a, x, y};
	parallel_for(p, trans ? n : m, gemv_part, &j);
}
