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
			fail_msg("the screen never showed '%s':\n%s", what, screen);
		}
		struct timespec ts = {0, 50 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
}

/* Each test's lab runs in its own tmux server, killed by the teardown even
 * when the test fails half-way. */
struct lab_screen {
	char *dir, *rc; /* temporary directory; the lab's exit status lands in rc */
	char sock[64];
};

static int lab_setup(void **state)
{
	static struct lab_screen ls;
	ls.dir = tu_tmpdir();
	if (!ls.dir)
		return -1;
	ls.rc = tu_path(ls.dir, "rc.txt");
	snprintf(ls.sock, sizeof ls.sock, "sectorlab-ui-%ld", (long)getpid());
	*state = &ls;
	return 0;
}

static int lab_teardown(void **state)
{
	struct lab_screen *ls = *state;
	tu_tmux_kill(ls->sock);
	tu_rmrf(ls->dir);
	free(ls->dir);
	free(ls->rc);
	return 0;
}

/* Open the lab with these options (skips the test without tmux). */
static void open_lab(struct lab_screen *ls, const char *options)
{
	char cmd[4096];
	/* The status goes in whole: written aside, then renamed. */
	snprintf(cmd, sizeof cmd, "'%s' %s --data-dir '%s'; echo $? >'%s.part' && mv '%s.part' '%s'",
		 tu_program(), options, tu_sample_data(), ls->rc, ls->rc, ls->rc);
	if (tu_tmux_start(ls->sock, 80, 24, cmd) != 0) {
		print_message("tmux not installed: skipping\n");
		skip();
	}
}

/* Press q and return the lab's exit status. */
static int quit_lab(struct lab_screen *ls)
{
	tu_tmux_keys(ls->sock, "q");
	assert_true(tu_wait_file(ls->rc, WAIT_SECONDS));
	char *rc = tu_read_file(ls->rc, NULL);
	assert_non_null(rc);
	int status = atoi(rc);
	free(rc);
	return status;
}

/* The (nu, delta) editor recomputes the allocation as the user types: the
 * paper's indices give the certified caps, (-0.4, 4) the reason none exist,
 * and the keys it takes never reach the lab (eps stays put). */
static void test_nu_delta_editor(void **state)
{
	struct lab_screen *ls = *state;
	const char *sock = ls->sock;
	open_lab(ls, "--pace 30 --epochs 1000");
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
	assert_int_equal(quit_lab(ls), 0);
}

/* Enter in the editor trains anew with the caps it shows: a vanilla run
 * becomes a certified spnorm one at (-3, 0.4). */
static void test_editor_enter_restarts_training(void **state)
{
	struct lab_screen *ls = *state;
	const char *sock = ls->sock;
	open_lab(ls, "--mode vanilla --pace 30 --epochs 1000");
	wait_for(sock, "no caps (vanill");
	tu_tmux_keys(sock, "a BSpace BSpace - 3");
	wait_for(sock, "0.434363");
	tu_tmux_keys(sock, "Enter");
	wait_for(sock, "certified: nu -");
	wait_for(sock, "/0.434");
	assert_non_null(strstr(screen, "spnorm"));
	assert_int_equal(quit_lab(ls), 0);
}

int main(int argc, char **argv)
{
	(void)argc;
	tu_find_program(argv[0]);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_nu_delta_editor, lab_setup, lab_teardown),
		cmocka_unit_test_setup_teardown(test_editor_enter_restarts_training, lab_setup,
						lab_teardown),
	};
	return cmocka_run_group_tests_name("ui", tests, NULL, NULL);
}
