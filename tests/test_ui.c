/*
 * Tests for the lab's screen, driven through tmux as a user drives it: keys
 * in, the screen's text out.  Skipped when tmux is not installed (`make deps`
 * installs it).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "testutil.h"

#define WAIT_SECONDS 60

static char screen[1 << 15];

/* Capture until the screen shows what (or fail after WAIT_SECONDS). */
static void wait_for(const char *sock, const char *what)
{
	time_t start = time(NULL);
	for (;;) {
		tu_tmux_capture(sock, screen, sizeof screen);
		if (strstr(screen, what))
			return;
		if (time(NULL) - start > WAIT_SECONDS) {
			tu_tmux_kill(sock);
			fail_msg("the screen never showed '%s':\n%s", what, screen);
		}
		struct timespec ts = {0, 50 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
}

/* The (nu, delta) editor recomputes the allocation as the user types: the
 * paper's indices give the certified caps, (-0.4, 4) the reason none exist,
 * and the keys it takes never reach the lab (eps stays put). */
static void test_nu_delta_editor(void **state)
{
	const char *dir = *state;
	char sock[64], cmd[4096];
	char *rcp = tu_path(dir, "rc.txt");
	snprintf(sock, sizeof sock, "sectorlab-ui-%ld", (long)getpid());
	snprintf(cmd, sizeof cmd, "'%s' --pace 30 --epochs 1000 --data-dir '%s'; echo $? >'%s'",
		 tu_program(), tu_sample_data(), rcp);
	if (tu_tmux_start(sock, 80, 24, cmd) != 0) {
		print_message("tmux not installed: skipping\n");
		skip();
	}
	wait_for(sock, "eps 0.10");
	tu_tmux_keys(sock, "a");
	wait_for(sock, "0.271981"); /* fc1's cap at (-2, 0.4) */
	assert_non_null(strstr(screen, "0.823076"));
	assert_non_null(strstr(screen, "0.616097"));
	assert_non_null(strstr(screen, "0.137920")); /* their product */
	/* nu -2 -> -0.4, then delta 0.4 -> 4: no allocation, and why. */
	tu_tmux_keys(sock, "BSpace BSpace - 0 . 4 Tab BSpace BSpace BSpace 4");
	wait_for(sock, "Wide layers (s = 0");
	/* nu -> -3: caps again, larger. */
	tu_tmux_keys(sock, "BSpace 0 . 4 Tab BSpace BSpace BSpace BSpace - 3");
	wait_for(sock, "0.434363");
	tu_tmux_keys(sock, "Escape");
	struct timespec ts = {0, 300 * 1000 * 1000};
	nanosleep(&ts, NULL);
	tu_tmux_capture(sock, screen, sizeof screen);
	assert_null(strstr(screen, "0.434363"));  /* closed */
	assert_non_null(strstr(screen, "eps 0.10")); /* the '-' typed went to the editor */
	tu_tmux_keys(sock, "q");
	time_t start = time(NULL);
	char *rc = NULL;
	while (!(rc = tu_read_file(rcp, NULL)) && time(NULL) - start < WAIT_SECONDS)
		nanosleep(&ts, NULL);
	tu_tmux_kill(sock);
	assert_non_null(rc);
	assert_int_equal(atoi(rc), 0);
	free(rc);
	free(rcp);
}

/* Enter in the editor trains anew with the caps it shows: a vanilla run
 * becomes a certified spnorm one at (-3, 0.4). */
static void test_editor_enter_restarts_training(void **state)
{
	const char *dir = *state;
	char sock[64], cmd[4096];
	char *rcp = tu_path(dir, "rc.txt");
	snprintf(sock, sizeof sock, "sectorlab-ui2-%ld", (long)getpid());
	snprintf(cmd, sizeof cmd,
		 "'%s' --mode vanilla --pace 30 --epochs 1000 --data-dir '%s'; echo $? >'%s'",
		 tu_program(), tu_sample_data(), rcp);
	if (tu_tmux_start(sock, 80, 24, cmd) != 0) {
		print_message("tmux not installed: skipping\n");
		skip();
	}
	wait_for(sock, "no caps (vanill");
	tu_tmux_keys(sock, "a BSpace BSpace - 3");
	wait_for(sock, "0.434363");
	tu_tmux_keys(sock, "Enter");
	wait_for(sock, "certified: nu -");
	wait_for(sock, "/0.434");
	assert_non_null(strstr(screen, "spnorm"));
	tu_tmux_keys(sock, "q");
	struct timespec ts = {0, 100 * 1000 * 1000};
	time_t start = time(NULL);
	char *rc = NULL;
	while (!(rc = tu_read_file(rcp, NULL)) && time(NULL) - start < WAIT_SECONDS)
		nanosleep(&ts, NULL);
	tu_tmux_kill(sock);
	assert_non_null(rc);
	assert_int_equal(atoi(rc), 0);
	free(rc);
	free(rcp);
}

int main(int argc, char **argv)
{
	(void)argc;
	tu_find_program(argv[0]);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_nu_delta_editor, tu_setup_tmpdir,
						tu_teardown_tmpdir),
		cmocka_unit_test_setup_teardown(test_editor_enter_restarts_training,
						tu_setup_tmpdir, tu_teardown_tmpdir),
	};
	return cmocka_run_group_tests_name("ui", tests, NULL, NULL);
}
