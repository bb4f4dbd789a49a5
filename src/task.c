/*
 * task: heavy work on its own thread (see task.h).
 *
 * One mutex guards the published status; the cancel request is an atomic
 * flag the work polls through task_progress without taking the lock.
 */
#include "sectorlab/task.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#ifdef __linux__
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif


struct task {
	task_fn fn;
	void *ctx;
	pthread_t thread;
	atomic_bool cancel;
	pthread_mutex_t lock;
	struct task_status st;  /* under lock */
	struct timespec t0;
};

static double since(const struct timespec *t0)
{
	struct timespec t1;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (double)(t1.tv_sec - t0->tv_sec) + (double)(t1.tv_nsec - t0->tv_nsec) * 1e-9;
}

void task_lower_priority(void)
{
#ifdef __linux__
	errno = 0;
	int now = getpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid));
	if (errno == 0 && setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), now + TASK_NICE) != 0) {
		/* not allowed: work at the same priority */
	}
#endif
}

static void *worker(void *arg)
{
	struct task *t = arg;
	task_lower_priority();
	struct sl_error err;
	status_clear(&err);
	sl_status rc = t->fn(t->ctx, t, &err);
	pthread_mutex_lock(&t->lock);
	t->st.seconds = since(&t->t0);
	if (rc == SL_OK) {
		t->st.state = TASK_DONE;
	} else if (rc == SL_ERR_CANCELLED) {
		t->st.state = TASK_CANCELLED;
	} else {
		t->st.state = TASK_FAILED;
		snprintf(t->st.message, sizeof t->st.message, "%s",
			 err.msg[0] ? err.msg : status_str(rc));
	}
	pthread_mutex_unlock(&t->lock);
	return NULL;
}

sl_status task_start(task_fn fn, void *ctx, struct task **out, struct sl_error *err)
{
	*out = NULL;
	struct task *t = calloc(1, sizeof *t);
	if (!t)
		return status_set(err, SL_ERR_NOMEM, "out of memory: a task");
	t->fn = fn;
	t->ctx = ctx;
	atomic_init(&t->cancel, false);
	t->st.state = TASK_RUNNING;
	clock_gettime(CLOCK_MONOTONIC, &t->t0);
	if (pthread_mutex_init(&t->lock, NULL) != 0) {
		free(t);
		return status_set(err, SL_ERR_NOMEM, "out of memory: a task's lock");
	}
	int rc = pthread_create(&t->thread, NULL, worker, t);
	if (rc != 0) {
		pthread_mutex_destroy(&t->lock);
		free(t);
		return status_set(err, rc == EAGAIN ? SL_ERR_NOMEM : SL_ERR_IO,
				  "cannot start a worker thread: %s", strerror(rc));
	}
	*out = t;
	return SL_OK;
}

bool task_progress(struct task *t, double done, double total, const char *what)
{
	pthread_mutex_lock(&t->lock);
	t->st.done = done;
	t->st.total = total;
	if (what)
		snprintf(t->st.what, sizeof t->st.what, "%s", what);
	t->st.seconds = since(&t->t0);
	pthread_mutex_unlock(&t->lock);
	return atomic_load(&t->cancel);
}

bool task_cancelled(const struct task *t)
{
	return atomic_load(&((struct task *)t)->cancel);
}

void task_cancel(struct task *t)
{
	if (t)
		atomic_store(&t->cancel, true);
}

void task_status(struct task *t, struct task_status *out)
{
	pthread_mutex_lock(&t->lock);
	*out = t->st;
	if (out->state == TASK_RUNNING)
		out->seconds = since(&t->t0);
	pthread_mutex_unlock(&t->lock);
}

void task_free(struct task *t)
{
	if (!t)
		return;
	task_cancel(t);
	pthread_join(t->thread, NULL);
	pthread_mutex_destroy(&t->lock);
	free(t);
}
