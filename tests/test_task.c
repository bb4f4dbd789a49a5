/* Tests for task: the work runs on another thread, its progress and result
 * are seen by the creator, cancelling stops it, failures carry their
 * message, and task_free waits for the work. */
#include <stdatomic.h>
#include <time.h>

#include "sectorlab/task.h"
#include "testutil.h"

static void nap_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

/* Wait (at most 60 s, for loaded sanitizer runs) until the task leaves
 * TASK_RUNNING. */
static struct task_status wait_end(struct task *t)
{
	struct task_status st;
	for (int i = 0; i < 60000; i++) {
		task_status(t, &st);
		if (st.state != TASK_RUNNING)
			return st;
		nap_ms(1);
	}
	fail_msg("the task never ended");
	return st;
}

struct sum_ctx {
	int n;
	long sum;       /* the result: written by the work, read after it ends */
	atomic_int go;  /* the work waits for this before its last step */
};

static sl_status sum_work(void *p, struct task *t, struct sl_error *err)
{
	(void)err;
	struct sum_ctx *c = p;
	for (int i = 1; i <= c->n; i++) {
		c->sum += i;
		if (task_progress(t, i, c->n, i == 1 ? "adding" : NULL))
			return SL_ERR_CANCELLED;
	}
	while (!atomic_load(&c->go))
		nap_ms(1);
	return SL_OK;
}

static void test_runs_to_the_end(void **state)
{
	(void)state;
	struct sum_ctx c = {.n = 1000};
	atomic_init(&c.go, 0);
	struct task *t = NULL;
	assert_int_equal(task_start(sum_work, &c, &t, NULL), SL_OK);
	/* The work holds before its end: the creator sees it running with
	 * all its progress published. */
	struct task_status st;
	do {
		task_status(t, &st);
		nap_ms(1);
	} while (st.done < 1000);
	assert_int_equal(st.state, TASK_RUNNING);
	assert_true(st.total == 1000);
	assert_string_equal(st.what, "adding");
	atomic_store(&c.go, 1);
	st = wait_end(t);
	assert_int_equal(st.state, TASK_DONE);
	assert_int_equal(c.sum, 500500);
	assert_true(st.seconds >= 0);
	task_free(t);
}

static sl_status forever(void *p, struct task *t, struct sl_error *err)
{
	(void)err;
	long *steps = p;
	while (!task_progress(t, (double)++*steps, 0, "waiting"))
		nap_ms(1);
	return SL_ERR_CANCELLED;
}

static void test_cancel_stops_the_work(void **state)
{
	(void)state;
	long steps = 0;
	struct task *t = NULL;
	assert_int_equal(task_start(forever, &steps, &t, NULL), SL_OK);
	struct task_status st;
	do {
		task_status(t, &st);
		nap_ms(1);
	} while (st.done < 3);
	task_cancel(t);
	st = wait_end(t);
	assert_int_equal(st.state, TASK_CANCELLED);
	assert_true(steps >= 3);
	task_free(t);
}

static void test_free_waits_for_running_work(void **state)
{
	(void)state;
	long steps = 0;
	struct task *t = NULL;
	assert_int_equal(task_start(forever, &steps, &t, NULL), SL_OK);
	task_free(t); /* cancels and joins: steps is the work's no more */
	long after = steps;
	nap_ms(5);
	assert_int_equal(steps, after);
	task_free(NULL);
}

static sl_status failing(void *p, struct task *t, struct sl_error *err)
{
	(void)p;
	task_progress(t, 1, 2, "reading");
	return status_set(err, SL_ERR_FORMAT, "layer 3: bad shape %d", 7);
}

static void test_failure_keeps_its_message(void **state)
{
	(void)state;
	struct task *t = NULL;
	assert_int_equal(task_start(failing, NULL, &t, NULL), SL_OK);
	struct task_status st = wait_end(t);
	assert_int_equal(st.state, TASK_FAILED);
	assert_string_equal(st.message, "layer 3: bad shape 7");
	assert_string_equal(st.what, "reading");
	task_free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_runs_to_the_end),
		cmocka_unit_test(test_cancel_stops_the_work),
		cmocka_unit_test(test_free_waits_for_running_work),
		cmocka_unit_test(test_failure_keeps_its_message),
	};
	return cmocka_run_group_tests_name("task", tests, NULL, NULL);
}
