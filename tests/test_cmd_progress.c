/* Tests for the commands' progress line: its text (rate, ETA, cut to the
 * width), and a real `sectorlab train` that draws it in place when stderr is
 * a terminal (a pseudo-terminal here) and not when it is a pipe or with
 * --quiet. */
#define _GNU_SOURCE /* ptsname, posix_openpt */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sectorlab/cmd_progress.h"
#include "testutil.h"

static void test_format(void **state)
{
	(void)state;
	char buf[256];
	cmd_progress_format(buf, sizeof buf, 0, "epoch 3/10", 250, 1000, 10, "images");
	assert_string_equal(buf, "epoch 3/10  25%  25 images/s  0:10 elapsed, ETA 0:30");
	cmd_progress_format(buf, sizeof buf, 0, "eps 0.1", 123456, 246912, 1, "images");
	assert_string_equal(buf, "eps 0.1  50%  123,456 images/s  0:01 elapsed, ETA 0:01");
	/* Nothing done or no time yet: no rate, no ETA. */
	cmd_progress_format(buf, sizeof buf, 0, "start", 0, 10, 5, "steps");
	assert_string_equal(buf, "start  0%");
	cmd_progress_format(buf, sizeof buf, 0, "start", 3, 10, 0, "steps");
	assert_string_equal(buf, "start  30%");
	/* Finished: no ETA; no total: no percentage. */
	cmd_progress_format(buf, sizeof buf, 0, "done", 10, 10, 2, "steps");
	assert_string_equal(buf, "done  100%  5 steps/s  0:02 elapsed");
	cmd_progress_format(buf, sizeof buf, 0, "open", 10, 0, 2, "steps");
	assert_string_equal(buf, "open  5 steps/s  0:02 elapsed");
	/* No unit: the label alone (it says where the work is). */
	cmd_progress_format(buf, sizeof buf, 0, "[3/30 25%] training", 0.25, 1, 60, NULL);
	assert_string_equal(buf, "[3/30 25%] training");
	/* Cut to the width and to the buffer. */
	assert_int_equal(cmd_progress_format(buf, sizeof buf, 12, "epoch 3/10", 250, 1000, 10,
					     "images"), 12);
	assert_string_equal(buf, "epoch 3/10  ");
	char small[6];
	cmd_progress_format(small, sizeof small, 0, "epoch 3/10", 1, 2, 1, "x");
	assert_string_equal(small, "epoch");
}

static void test_duration(void **state)
{
	(void)state;
	char buf[32];
	cmd_progress_duration(7.4, buf, sizeof buf);
	assert_string_equal(buf, "0:07");
	cmd_progress_duration(754, buf, sizeof buf);
	assert_string_equal(buf, "12:34");
	cmd_progress_duration(3723, buf, sizeof buf);
	assert_string_equal(buf, "1:02:03");
	cmd_progress_duration(-1, buf, sizeof buf);
	assert_string_equal(buf, "?");
	cmd_progress_duration(0.0 / 0.0, buf, sizeof buf);
	assert_string_equal(buf, "?");
}

/* Off: every call is a no-op and nothing is written. */
static void test_off_writes_nothing(void **state)
{
	(void)state;
	struct cmd_progress p;
	cmd_progress_init(&p, true);
	assert_false(p.on);
	FILE *f = tmpfile();
	assert_non_null(f);
	p.f = f;
	cmd_progress_start(&p, "images", 10);
	cmd_progress_update(&p, 10, "x %d", 1);
	cmd_progress_clear(&p);
	assert_int_equal(ftell(f), 0);
	fclose(f);
}

/* Run `sectorlab args` with stderr on a pseudo-terminal (stdout discarded);
 * what it wrote to the terminal goes to out. */
static int run_on_pty(const char *args, char *out, size_t cap)
{
	int master = posix_openpt(O_RDWR | O_NOCTTY);
	assert_true(master >= 0);
	assert_int_equal(grantpt(master), 0);
	assert_int_equal(unlockpt(master), 0);
	char slave_name[256];
	snprintf(slave_name, sizeof slave_name, "%s", ptsname(master));
	char cmd[4096];
	snprintf(cmd, sizeof cmd, "exec %s %s >/dev/null", tu_program(), args);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		setsid();
		int s = open(slave_name, O_RDWR);
		if (s < 0)
			_exit(127);
		dup2(s, 2);
		close(s);
		close(master);
		execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
		_exit(127);
	}
	size_t n = 0;
	for (;;) {
		ssize_t r = read(master, out + n, cap - 1 - n);
		if (r > 0) {
			n += (size_t)r;
			if (n + 1 >= cap)
				break;
		} else if (r < 0 && errno == EINTR) {
			continue;
		} else {
			break; /* EIO: the child closed the terminal */
		}
	}
	out[n] = '\0';
	close(master);
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static char out[1 << 18];

/* Long enough (a few seconds of training) for several redraws. */
#define LONG_TRAIN "train --epochs 30 --threads 1 --eps 0"

static void test_train_draws_on_a_terminal(void **state)
{
	(void)state;
	assert_int_equal(run_on_pty(LONG_TRAIN, out, sizeof out), 0);
	/* Drawn in place (carriage return, erase to the end of the line), with
	 * the batch, the rate and an ETA ... */
	assert_non_null(strstr(out, "\r"));
	assert_non_null(strstr(out, "\033[K"));
	assert_non_null(strstr(out, "batch "));
	assert_non_null(strstr(out, "images/s"));
	assert_non_null(strstr(out, "ETA "));
	/* At most a few redraws a second: far fewer than the 2,400 batches. */
	int draws = 0;
	for (const char *p = out; (p = strstr(p, "images/s")) != NULL; p++)
		draws++;
	assert_true(draws >= 1);
	assert_true(draws < 200);
	/* ... and erased before each epoch's line, so those stay whole: what
	 * follows the last erase on such a line is the epoch's report alone. */
	int epoch_lines = 0;
	for (char *line = strtok(out, "\n"); line; line = strtok(NULL, "\n")) {
		if (!strstr(line, "  loss "))
			continue;
		char *tail = line, *k;
		while ((k = strstr(tail, "\033[K")) != NULL)
			tail = k + 3;
		tail += strspn(tail, "\r");
		assert_true(strncmp(tail, "epoch ", 6) == 0);
		assert_null(strstr(tail, "images/s"));
		epoch_lines++;
	}
	assert_int_equal(epoch_lines, 30);
}

static void test_quiet_and_pipes_draw_nothing(void **state)
{
	(void)state;
	assert_int_equal(run_on_pty(LONG_TRAIN " --quiet", out, sizeof out), 0);
	assert_null(strstr(out, "images/s"));
	assert_null(strstr(out, "\033[K"));
	assert_non_null(strstr(out, "epoch 30/30"));
	assert_int_equal(tu_run(LONG_TRAIN, true, out, sizeof out), 0);
	assert_null(strstr(out, "images/s"));
	assert_null(strstr(out, "\r"));
	assert_non_null(strstr(out, "epoch 30/30"));
}

int main(int argc, char **argv)
{
	(void)argc;
	tu_find_program(argv[0]);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_format),
		cmocka_unit_test(test_duration),
		cmocka_unit_test(test_off_writes_nothing),
		cmocka_unit_test(test_train_draws_on_a_terminal),
		cmocka_unit_test(test_quiet_and_pipes_draw_nothing),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
