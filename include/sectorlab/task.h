/*
 * task: one piece of heavy work (an attack sweep, a certificate, an LMI) on
 * its own worker thread, with progress and cancelling.
 *
 * The lab's screens never compute anything that takes longer than a frame
 * on the thread that draws: they start a task, show task_status while it
 * runs, and read its result (held in ctx) once the state is TASK_DONE.  The
 * worker runs at a lower priority than its creator (as job.h's), so keys
 * stay answered while every core works.
 *
 * The work function owns ctx until it returns; the creator may read ctx
 * only once task_status says TASK_DONE, TASK_FAILED or TASK_CANCELLED (the
 * worker has returned then; the state is published under a lock, which
 * orders the worker's writes to ctx before the reader's loads).
 */
#ifndef SECTORLAB_TASK_H
#define SECTORLAB_TASK_H

#include <stdbool.h>

#include "sectorlab/status.h"

enum task_state { TASK_RUNNING, TASK_DONE, TASK_FAILED, TASK_CANCELLED };

struct task;

/* The work.  Calls task_progress now and then (it says when to stop) and
 * returns SL_OK, an error (err set), or SL_ERR_CANCELLED once asked to stop. */
typedef sl_status (*task_fn)(void *ctx, struct task *t, struct sl_error *err);

struct task_status {
	enum task_state state;
	double done, total;     /* progress in the work's own units (total 0: unknown) */
	char what[96];          /* what it is doing now, e.g. "PGD L2 eps 0.5" */
	char message[512];      /* the error when TASK_FAILED */
	double seconds;         /* since the start (frozen at the end) */
};

/* Background threads (tasks, and job.h's training workers) run this many
 * steps nicer than their creator. */
#define TASK_NICE 5

/* Lower the calling thread's priority by TASK_NICE (Linux, where nice
 * values are per thread; elsewhere, or when not allowed, nothing). */
void task_lower_priority(void);

/* Start fn(ctx) on a new thread.  Fails (SL_ERR_NOMEM, SL_ERR_IO) without
 * calling fn when no thread can be made. */
sl_status task_start(task_fn fn, void *ctx, struct task **out, struct sl_error *err);

/* From the work: record progress (what may be NULL: unchanged).  Returns
 * true when the task was asked to stop: the work should return
 * SL_ERR_CANCELLED soon. */
bool task_progress(struct task *t, double done, double total, const char *what);
bool task_cancelled(const struct task *t);

/* From the creator: ask the work to stop (returns at once). */
void task_cancel(struct task *t);
/* The latest state and progress. */
void task_status(struct task *t, struct task_status *out);
/* Ask the work to stop, wait for it, free the task (not ctx).  Safe with
 * NULL. */
void task_free(struct task *t);

#endif
