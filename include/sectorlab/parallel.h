/*
 * parallel: a small fixed team of threads that splits index ranges.
 *
 * parallel_for(p, n, fn, ctx) cuts [0, n) into one contiguous chunk per
 * thread (chunk t always goes to thread t, the caller being thread 0) and
 * returns when every chunk is done.  The split depends only on n and the
 * team size, so work that reduces per-thread partial results in thread
 * order is deterministic for a given number of threads.
 *
 * The team is for coarse work (a batch of images through a convolution);
 * a call costs a few microseconds of wake-up.  A NULL team runs everything
 * on the caller.  One thread drives a team at a time.
 */
#ifndef SECTORLAB_PARALLEL_H
#define SECTORLAB_PARALLEL_H

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

#endif
