/*
 * Tests for the lab's screen, driven through tmux as a user drives it: keys
 * in, the screen's text out.  Skipped when tmux is not installed (`make deps`
 * installs it).
 */
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "testutil.h"

#define WAIT_SECONDS 60

static char screen[1 << 15];

/* Capture until the screen shows what, or (when other is not NULL) other;
 * returns 0 for what, 1 for other; fails after seconds. */
static int wait_for_either(const char *sock, const char *what, const char *other, int seconds)
{
	time_t start = time(NULL);
	for (;;) {
		tu_tmux_capture(sock, screen, sizeof screen);
		if (strstr(screen, what))
			return 0;
		if (other && strstr(screen, other))
			return 1;
		if (time(NULL) - start > seconds) {
			fail_msg("the screen never showed '%s':\n%s", what, screen);
		}
		struct timespec ts = {0, 50 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
}

/* Capture until the screen shows what (or fail after WAIT_SECONDS). */
static void wait_for(const char *sock, const char *what)
{
	wait_for_either(sock, what, NULL, WAIT_SECONDS);
}

/* Each test's lab runs in its own tmux server, killed by the teardown even
 * when the test fails half-way. */
struct lab_screen {
	char *dir, *rc; /* temporary directory; the lab's exit status lands in rc */
	char sock[64];
};

/* Press keys in the lab, then wait until what shows. */
static void press(struct lab_screen *ls, const char *keys, const char *what)
{
	tu_tmux_keys(ls->sock, keys);
	wait_for(ls->sock, what);
}

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

/* Open the lab in a cols x rows terminal with these options, env (e.g.
 * "NO_COLOR=1") in its environment; skips the test without tmux.  The
 * terminal's settings are saved before and after (stty -g) in before.txt
 * and after.txt, and the lab's pid in pid.txt. */
static void open_lab_sized(struct lab_screen *ls, int cols, int rows, const char *env,
			   const char *options)
{
	char cmd[3 * PATH_MAX], prog[PATH_MAX], data[PATH_MAX];
	/* The shell moves to the test's directory: absolute paths. */
	assert_non_null(realpath(tu_program(), prog));
	assert_non_null(realpath(tu_sample_data(), data));
	/* The status goes in whole: written aside, then renamed. */
	snprintf(cmd, sizeof cmd,
		 "cd '%s' && stty -g >before.txt; %s sh -c 'echo $$ >pid.txt; exec \"$0\" \"$@\"' "
		 "'%s' %s --data-dir '%s'; echo $? >'%s.part'; stty -g >after.txt; "
		 "mv '%s.part' '%s'",
		 ls->dir, env, prog, options, data, ls->rc, ls->rc, ls->rc);
	if (tu_tmux_start(ls->sock, cols, rows, cmd) != 0) {
		print_message("tmux not installed: skipping\n");
		skip();
	}
}

static void open_lab(struct lab_screen *ls, const char *options)
{
	open_lab_sized(ls, 80, 24, "", options);
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

/* The sector designer recomputes the allocation at every move and every
 * number typed: the paper's indices give the certified caps beside the
 * caps in training, (-0.4, 4) the reason none exist (and no stale caps),
 * Esc in the entry goes back to the indices before; the keys typed never
 * reach the lab (eps stays put). */
static void test_designer_preview(void **state)
{
	struct lab_screen *ls = *state;
	const char *sock = ls->sock;
	open_lab(ls, "--pace 30 --epochs 1000");
	wait_for(sock, "eps 0.10");
	tu_tmux_keys(sock, "2");
	wait_for(sock, "0.2720"); /* fc1's Theorem 4 bound at (-2, 0.4) */
	assert_non_null(strstr(screen, "0.8231"));
	assert_non_null(strstr(screen, "0.6161"));
	assert_non_null(strstr(screen, "product 0.137920")); /* their product */
	assert_non_null(strstr(screen, "sector [-1.3117, 3.8117]  gamma 3.8117"));
	assert_non_null(strstr(screen, "largest eigenvalue of A"));
	assert_non_null(strstr(screen, "s = 0")); /* the branch of Theorem 4 */
	/* nu -2 -> -0.4, then delta 0.4 -> 4: no allocation, and why. */
	tu_tmux_keys(sock, "n BSpace BSpace - 0 . 4 Tab BSpace BSpace BSpace 4");
	wait_for(sock, "(nu, delta) = (-0.4, 4)");
	wait_for(sock, "no certified caps for");
	assert_null(strstr(screen, "product 0.")); /* nothing stale */
	assert_null(strstr(screen, "0.2720"));
	/* Esc: back to (-2, 0.4). */
	tu_tmux_keys(sock, "Escape");
	wait_for(sock, "(nu, delta) = (-2, 0.4)");
	wait_for(sock, "product 0.137920");
	/* nu -> -3 typed and kept: caps again, larger. */
	tu_tmux_keys(sock, "n BSpace 3 Enter");
	wait_for(sock, "0.4344");
	assert_null(strstr(screen, "type the indices")); /* the entry closed */
	tu_tmux_keys(sock, "1");
	wait_for(sock, "space s e n");
	assert_non_null(strstr(screen, "eps 0.10")); /* the '-' typed went to the entry */
	assert_int_equal(quit_lab(ls), 0);
}

/* Arrows move the cursor by fine steps, Shift-arrows and PgUp / PgDn by
 * coarse ones, p back to the paper's point; off the sector (nu > 0 with
 * 4 delta nu > 1) the designer says there is no sector. */
static void test_designer_moves(void **state)
{
	struct lab_screen *ls = *state;
	const char *sock = ls->sock;
	open_lab(ls, "--pace 30 --epochs 1000");
	tu_tmux_keys(sock, "2");
	wait_for(sock, "(nu, delta) = (-2, 0.4)");
	tu_tmux_keys(sock, "Right Right Up");
	wait_for(sock, "(nu, delta) = (-1.8, 0.42)");
	tu_tmux_keys(sock, "S-Left PPage");
	wait_for(sock, "(nu, delta) = (-2.8, 0.62)");
	tu_tmux_keys(sock, "] ] ] ] NPage Down");
	wait_for(sock, "(nu, delta) = (1.2, 0.4)");
	wait_for(sock, "no sector: 4 delta nu");
	tu_tmux_keys(sock, "p");
	wait_for(sock, "(nu, delta) = (-2, 0.4)");
	/* The map is filled (a task, row by row) and says what its shades mean. */
	wait_for(sock, "map of product caps ");
	assert_non_null(strstr(screen, "no sector"));
	assert_non_null(strstr(screen, "P paper"));
	assert_int_equal(quit_lab(ls), 0);
}

/* a applies the caps shown to the focused lane as it trains: the Train
 * screen's bars move to them, and the designer's 'now' column follows. */
static void test_designer_applies_live(void **state)
{
	struct lab_screen *ls = *state;
	const char *sock = ls->sock;
	open_lab(ls, "--pace 30 --epochs 1000");
	wait_for(sock, "0.272/0.272");
	tu_tmux_keys(sock, "2 S-Left");
	wait_for(sock, "0.4344");
	tu_tmux_keys(sock, "a");
	wait_for(sock, "trains on under certified: nu -3, delta 0.4");
	wait_for(sock, "in training 0.2399");
	tu_tmux_keys(sock, "1");
	wait_for(sock, "0.434/0.434");
	assert_non_null(strstr(screen, "0.857/0.857"));
	assert_int_equal(quit_lab(ls), 0);
}

/* A lane without caps cannot take caps live; r restarts it under them as
 * the kind chosen: a vanilla run becomes a certified spnorm one at (-3, 0.4). */
static void test_designer_restarts_lane(void **state)
{
	struct lab_screen *ls = *state;
	const char *sock = ls->sock;
	open_lab(ls, "--mode vanilla --pace 30 --epochs 1000");
	wait_for(sock, "vanilla     none");
	tu_tmux_keys(sock, "2 S-Left");
	wait_for(sock, "0.4344");
	assert_non_null(strstr(screen, "trains without caps"));
	tu_tmux_keys(sock, "a");
	wait_for(sock, "restart it under caps instead");
	tu_tmux_keys(sock, "r");
	wait_for(sock, "restart lane 1 from its seed as");
	tu_tmux_keys(sock, "s");
	wait_for(sock, "trains anew as spnorm under certified: nu -3");
	tu_tmux_keys(sock, "1");
	wait_for(sock, "/0.434");
	assert_non_null(strstr(screen, "spnorm"));
	assert_int_equal(quit_lab(ls), 0);
}

/* Wait for the lab to end; its exit status. */
static int lab_status(struct lab_screen *ls)
{
	assert_true(tu_wait_file(ls->rc, WAIT_SECONDS));
	char *rc = tu_read_file(ls->rc, NULL);
	assert_non_null(rc);
	int status = atoi(rc);
	free(rc);
	return status;
}

/* The terminal's settings after the lab are those before it. */
static void assert_terminal_restored(struct lab_screen *ls)
{
	char *b = tu_path(ls->dir, "before.txt"), *a = tu_path(ls->dir, "after.txt");
	char *before = tu_read_file(b, NULL), *after = tu_read_file(a, NULL);
	assert_non_null(before);
	assert_non_null(after);
	assert_string_equal(before, after);
	free(before);
	free(after);
	free(b);
	free(a);
}

static void send_signal(struct lab_screen *ls, int sig)
{
	char *p = tu_path(ls->dir, "pid.txt");
	assert_true(tu_wait_file(p, WAIT_SECONDS));
	char *text = tu_read_file(p, NULL);
	assert_non_null(text);
	pid_t pid = (pid_t)atol(text);
	assert_true(pid > 1);
	assert_int_equal(kill(pid, sig), 0);
	free(text);
	free(p);
}

/* The line of the screen holding what, or NULL. */
static const char *line_of(const char *what)
{
	const char *at = strstr(screen, what);
	if (!at)
		return NULL;
	while (at > screen && at[-1] != '\n')
		at--;
	return at;
}

static int row_of(const char *what)
{
	const char *at = line_of(what);
	int row = 0;
	for (const char *p = screen; at && p < at; p++)
		row += *p == '\n';
	return at ? row : -1;
}

/* Percent signs on the line holding what (0 when no such line). */
static int percents_on(const char *what)
{
	const char *at = line_of(what);
	int n = 0;
	for (; at && *at && *at != '\n'; at++)
		n += *at == '%';
	return n;
}

/* The race at 80x24: four lanes, the certified + margin one included, every
 * panel on screen and whole; after the first epoch each lane's clean, FGSM,
 * PGD and certified accuracy (the column cert.5), the certificate's bound
 * named for the focused lane and the certified marks' legend. */
static void test_race_80x24(void **state)
{
	struct lab_screen *ls = *state;
	open_lab(ls, "--pace 100 --epochs 1000");
	wait_for(ls->sock, "epoch 1/1000");
	wait_for(ls->sock, "robust acc. vs eps"); /* the eps chart */
	assert_non_null(strstr(screen, "vanilla"));
	assert_non_null(strstr(screen, "L2"));
	assert_non_null(strstr(screen, "certified"));
	/* The note on spnorm's loss, short, under its bars (the curves keep
	 * their rows). */
	assert_non_null(strstr(screen, "bound 0.138 keeps loss ~ln 10"));
	assert_non_null(strstr(screen, "0.272/0.272")); /* fc1 on its cap */
	assert_non_null(strstr(screen, "*: certified r=0.5"));
	assert_non_null(line_of("cert.5"));
	assert_true(row_of("cert.5") == row_of("clean"));
	time_t start = time(NULL);
	/* Lanes finish their epoch's figures one after another (slowly under
	 * the sanitizers): wait for the last lane and the first. */
	while (percents_on("cert+margin certified") != 4 || percents_on("vanilla     none") != 4) {
		if (time(NULL) - start > WAIT_SECONDS)
			fail_msg("no figures for the margin or the vanilla lane:\n%s", screen);
		struct timespec ts = {0, 100 * 1000 * 1000};
		nanosleep(&ts, NULL);
		tu_tmux_capture(ls->sock, screen, sizeof screen);
	}
	tu_tmux_keys(ls->sock, "Right"); /* the margin lane's bars, and its bound */
	wait_for(ls->sock, "cert. by product bound 0.138");
	/* Four lanes' digits and their verdicts (no room for the clean one). */
	assert_true(strstr(screen, " kept") || strstr(screen, "fooled") ||
		    strstr(screen, "already wrong"));
	/* Curves get six rows or more between their title and their axis. */
	int title = row_of("loss "), axis = row_of("epoch\n");
	assert_true(title >= 1 && axis - title - 1 >= 6);
	/* The footer is the last row, and nothing is cut at 80 columns. */
	assert_int_equal(row_of("space s e n"), 23);
	assert_int_equal(quit_lab(ls), 0);
	assert_terminal_restored(ls);
}

/* At 200x60 the curves grow and the digits come at full size (14 rows). */
static void test_race_200x60(void **state)
{
	struct lab_screen *ls = *state;
	open_lab_sized(ls, 200, 60, "", "--pace 100 --epochs 1000");
	wait_for(ls->sock, "epoch 1/1000");
	wait_for(ls->sock, "label ");
	int title = row_of("loss "), axis = row_of("epoch\n");
	assert_true(axis - title - 1 >= 20);
	int digits = row_of("test #"), label = row_of("label ");
	assert_int_equal(label - digits - 1, 14);
	wait_for(ls->sock, "PGD-10, L-inf eps 0.10"); /* the footnote, with room for it */
	/* The margin lane's lmt loss on an axis of its own; the bars' legend
	 * and the raw power-iteration value beside the norm in use. */
	assert_non_null(strstr(screen, "left axis: cross-entropy, right axis: lmt"));
	assert_non_null(strstr(screen, "raw (power iteration)"));
	assert_non_null(strstr(screen, "0.272/0.272 raw "));
	assert_int_equal(quit_lab(ls), 0);
}

/* A terminal too small gets a notice that fits it; q still quits. */
static void test_too_small(void **state)
{
	struct lab_screen *ls = *state;
	open_lab_sized(ls, 40, 10, "", "--pace 10");
	wait_for(ls->sock, "this terminal: 40x10");
	assert_non_null(strstr(screen, "sectorlab needs 80x24"));
	assert_int_equal(quit_lab(ls), 0);
}

/* Right and Left move the focus (the bars' lane), f shows that lane alone. */
static void test_focus(void **state)
{
	struct lab_screen *ls = *state;
	open_lab(ls, "--pace 30 --epochs 1000");
	wait_for(ls->sock, "spnorm: ");
	press(ls, "Right", "cert+margin: ");
	press(ls, "Right", "vanilla: ");
	press(ls, "Left Left Right Right Right f", "L2: ");
	struct timespec ts = {0, 300 * 1000 * 1000};
	nanosleep(&ts, NULL);
	tu_tmux_capture(ls->sock, screen, sizeof screen);
	assert_null(strstr(screen, "spnorm"));  /* one lane only */
	assert_null(strstr(screen, "vanilla"));
	assert_null(strstr(screen, "cert+margin"));
	press(ls, "f", "spnorm");
	assert_int_equal(quit_lab(ls), 0);
}

/* Paused at once; s trains one batch in every lane and stays paused; e the
 * rest of the epoch; r starts again from the seed. */
static void test_pause_step_reset(void **state)
{
	struct lab_screen *ls = *state;
	open_lab(ls, "--pace 30 --epochs 1000 --paused");
	wait_for(ls->sock, "PAUSED");
	wait_for(ls->sock, "step 0 ");
	press(ls, "s", "step 1 ");
	press(ls, "s s", "step 3 ");
	assert_non_null(strstr(screen, "PAUSED"));
	press(ls, "e", "epoch 1/1000 step 63 ");
	assert_non_null(strstr(screen, "PAUSED"));
	press(ls, "Space", "training");
	press(ls, "Space", "PAUSED");
	press(ls, "r", "starts again from seed 1");
	wait_for(ls->sock, "epoch 0/1000 step 0 ");
	assert_int_equal(quit_lab(ls), 0);
}

/* eps moves the attack figures at once, also once training is done. */
static void test_eps_follows_after_done(void **state)
{
	struct lab_screen *ls = *state;
	open_lab(ls, "--pace 0 --epochs 1");
	wait_for(ls->sock, "done");
	wait_for(ls->sock, "eps 0.10");
	press(ls, "+ +", "eps 0.20");
	/* Every lane's FGSM and PGD figures are there for eps 0.20 ("-" while
	 * they were for another eps). */
	wait_for(ls->sock, "%");
	time_t start = time(NULL);
	for (;;) {
		tu_tmux_capture(ls->sock, screen, sizeof screen);
		const char *v = line_of("vanilla     none"), *s = line_of("spnorm      certified");
		if (v && s && !strstr(v, "     -") && !strstr(s, "     -"))
			break;
		if (time(NULL) - start > WAIT_SECONDS)
			fail_msg("figures never followed eps:\n%s", screen);
	}
	assert_int_equal(quit_lab(ls), 0);
}

/* With --objective min the designer previews the min allocation (0.4544
 * for every layer); o switches the objective both ways, and a applies the
 * objective shown. */
static void test_designer_objective(void **state)
{
	struct lab_screen *ls = *state;
	open_lab(ls, "--pace 30 --epochs 1000 --objective min");
	wait_for(ls->sock, "0.454/0.454"); /* the spnorm lane trains at the min caps */
	press(ls, "2", "min objective");
	assert_non_null(strstr(screen, "0.4544"));
	press(ls, "o", "product objective");
	wait_for(ls->sock, "0.2720");
	press(ls, "o", "min objective");
	/* (-3, 0.4): the lane trains at the min allocation there. */
	press(ls, "S-Left", "nu -3 delta 0.4");
	press(ls, "a", "trains on under");
	tu_tmux_keys(ls->sock, "1");
	wait_for(ls->sock, "0.598/0.598"); /* allocate --nu -3 --objective min: 0.597836 */
	assert_int_equal(quit_lab(ls), 0);
}

/* At 160x50 the designer uses the room: a wider map, filled to the end,
 * and the sentence saying what the caps are. */
static void test_designer_160x50(void **state)
{
	struct lab_screen *ls = *state;
	open_lab_sized(ls, 160, 50, "", "--pace 30 --epochs 1000");
	wait_for(ls->sock, "space s e n");
	press(ls, "2", "by Theorems 3 and 4: certified");
	assert_non_null(strstr(screen, "2 Sector designer"));
	wait_for(ls->sock, "map of product caps ");
	assert_true(row_of("-8  ") >= 40); /* the nu axis, under 40 rows of map */
	assert_int_equal(quit_lab(ls), 0);
}

/* Help lists every screen's keys, the designer's and the screen switching
 * included; Esc goes back to the screen before. */
static void test_help_lists_every_key(void **state)
{
	struct lab_screen *ls = *state;
	open_lab_sized(ls, 100, 60, "", "--pace 10");
	wait_for(ls->sock, "space");
	/* wait for help's own text: the tab bar may already name the designer */
	press(ls, "?", "apply: the focused lane trains on");
	assert_non_null(strstr(screen, "Sector designer"));
	assert_non_null(strstr(screen, "one step: pause"));
	assert_non_null(strstr(screen, "What the lab trains"));
	press(ls, "NPage NPage NPage", "1 Train, 2 Sector designer, 3 Attack gallery");
	assert_non_null(strstr(screen, "the previous screen"));
	assert_non_null(strstr(screen, "quit the lab"));
	press(ls, "Escape", "loss stays");
	assert_int_equal(quit_lab(ls), 0);
}

/* Number keys and Tab / Shift-Tab switch screens, named in the header's tab
 * bar; a screen not built yet says so; a modal screen keeps its keys (a
 * digit typed in the designer's entry is a digit). */
static void test_screen_switching(void **state)
{
	struct lab_screen *ls = *state;
	open_lab(ls, "--pace 30 --epochs 1000");
	wait_for(ls->sock, "space s e n");
	assert_int_equal(row_of("1Train"), 0);
	assert_non_null(strstr(line_of("1Train"), "5Help"));
	assert_non_null(strstr(line_of("1Train"), "eps 0.10")); /* the race's status beside */
	tu_tmux_keys(ls->sock, "3");
	wait_for(ls->sock, "attack PGD"); /* the gallery's recipe */
	assert_int_equal(row_of("Attack"), 0);
	tu_tmux_keys(ls->sock, "Tab");
	wait_for(ls->sock, "r Esc [ ] g"); /* the certificate's keys */
	press(ls, "Tab", "help: every key");
	tu_tmux_keys(ls->sock, "Tab"); /* round to the first */
	wait_for(ls->sock, "space s e n");
	press(ls, "BTab", "help: every key");
	press(ls, "1", "space s e n");
	/* Typing numbers is modal: 4 is typed (nu -24), not a switch. */
	press(ls, "2", "(nu, delta) = (-2, 0.4)");
	press(ls, "n 4", "(nu, delta) = (-24, 0.4)");
	assert_null(strstr(screen, "not built yet"));
	press(ls, "Escape 4", "r Esc [ ] g");
	assert_int_equal(quit_lab(ls), 0);
	assert_terminal_restored(ls);
}

/* At 80 columns help wraps a long line under itself instead of cutting
 * it: the end of the race's reading guide (some 600 columns) is shown. */
static void test_help_wraps(void **state)
{
	struct lab_screen *ls = *state;
	open_lab(ls, "--pace 10");
	wait_for(ls->sock, "space");
	press(ls, "?", "Train (the race)");
	assert_non_null(line_of("curves: loss and accuracy, each lane"));
	assert_non_null(strstr(screen, "robust accuracy against"));
	press(ls, "Escape", "ln 10");
	assert_int_equal(quit_lab(ls), 0);
}

/* o opens what the lab trains: the focused lane's kind changes there, and
 * Enter trains that lane anew as the kind chosen; Esc closes. */
static void test_setup_lane_kind(void **state)
{
	struct lab_screen *ls = *state;
	open_lab(ls, "--lanes vanilla,l2 --pace 30 --epochs 1000");
	wait_for(ls->sock, "vanilla: ");
	press(ls, "o", "what the lab trains");
	assert_non_null(strstr(screen, "< mlp"));
	press(ls, "Down Down Right", "< l2 ");
	press(ls, "Enter", "lane 1 trains anew as l2");
	assert_null(strstr(screen, "what the lab trains"));
	wait_for(ls->sock, "L2: ");
	press(ls, "o", "what the lab trains");
	press(ls, "Escape", "space s e");
	assert_int_equal(quit_lab(ls), 0);
}

/* A lesson opens the lab as its file says (its screen, its note, paused),
 * and w writes the state the lab is in then to a new settings file here
 * that opens the same lab (checked with --check).  The lessons are copied
 * into the test's directory, where the lab runs and w writes. */
static void test_lesson_opens_and_saves(void **state)
{
	struct lab_screen *ls = *state;
	char cmd[3 * PATH_MAX], lessons[PATH_MAX], args[2 * PATH_MAX];
	assert_non_null(realpath("assets/lessons", lessons));
	snprintf(cmd, sizeof cmd, "mkdir -p '%s/assets' && cp -r '%s' '%s/assets/'", ls->dir, lessons,
		 ls->dir);
	assert_int_equal(system(cmd), 0);
	open_lab(ls, "--lesson nu-delta");
	wait_for(ls->sock, "Lesson: move over the (nu, delta) plane");
	wait_for(ls->sock, "(nu, delta) = (-2, 0.4)"); /* the sector designer */
	assert_null(strstr(screen, "space s e n"));       /* not the Train screen */
	press(ls, "1", "PAUSED");
	press(ls, "+ + '>' w", "settings saved to");
	assert_non_null(strstr(screen, "sectorlab-1.conf"));
	assert_int_equal(quit_lab(ls), 0);
	char *saved = tu_path(ls->dir, "sectorlab-1.conf");
	char *text = tu_read_file(saved, NULL);
	assert_non_null(text);
	static const char *const holds[] = {
		"lanes     = vanilla,spnorm,margin\n", "nu        = -2\n", "delta     = 0.4\n",
		"eps       = 0.2\n", "lr        = 0.002\n", "paused    = yes\n",
		"screen    = train\n", "epochs    = 10\n",
	};
	for (size_t i = 0; i < sizeof holds / sizeof holds[0]; i++)
		if (!strstr(text, holds[i]))
			fail_msg("the saved settings lack '%s':\n%s", holds[i], text);
	static char out[1 << 14];
	snprintf(args, sizeof args, "--config '%s' --check --data-dir '%s'", saved,
		 tu_sample_data());
	assert_int_equal(tu_run(args, false, out, sizeof out), 0);
	assert_non_null(strstr(out, "eps       = 0.2\n"));
	free(text);
	free(saved);
}

/* The certificate's computation on a loaded machine under ASan. */
#define CERT_SECONDS 400

/* The number after what on the screen (NAN when absent). */
static double number_after(const char *what)
{
	const char *at = strstr(screen, what);
	double v;
	if (!at || sscanf(at + strlen(what), "%lf", &v) != 1)
		return NAN;
	return v;
}

/* ] on the certificate tab: the next image's panel comes up. */
static void next_image(struct lab_screen *ls)
{
	double k = number_after("test image ");
	assert_true(k >= 0);
	char want[48];
	snprintf(want, sizeof want, "test image %.0f ", k + 1);
	tu_tmux_keys(ls->sock, "]");
	wait_for(ls->sock, want);
}

/* The certificate tab of a trained lane: the sandwich as the screen shows
 * it holds (each layer's gain floor <= its verified norm <= its cap, the
 * network's floor <= LipSDP <= product, an image's certified radius <= the
 * eps that flips it), [ ] moves to another image, Esc cancels a
 * recomputation, and the lab quits cleanly with a task running. */
static void test_certificate_80x24(void **state)
{
	struct lab_screen *ls = *state;
	open_lab(ls, "--mode spnorm --epochs 1 --pace 0");
	wait_for(ls->sock, "done");
	tu_tmux_keys(ls->sock, "4");
	/* the first correctly classified image from the lab's (0) on */
	for (int k = 0; wait_for_either(ls->sock, "flips at", "misclassified", CERT_SECONDS); k++) {
		assert_true(k < 10);
		next_image(ls);
	}
	assert_int_equal(row_of("layer  sigma(pow)"), 2);
	const char *names[] = {"fc1 ", "fc2 ", "fc3 "};
	for (int i = 0; i < 3; i++) {
		const char *l = line_of(names[i]);
		double pw, exact, rho, fl;
		char thm[16], lmi[16];
		assert_non_null(l);
		if (sscanf(l + 4, "%lf %lf %lf %15s %15s %lf", &pw, &exact, &rho, thm, lmi, &fl) != 6)
			fail_msg("cannot read %s's row:\n%s", names[i], screen);
		if (!(fl <= exact * (1 + 1e-5) && exact <= rho) || strcmp(thm, "ok") != 0 ||
		    strcmp(lmi, "holds") != 0)
			fail_msg("%s: floor %g, exact %g, cap %g, %s, %s", names[i], fl, exact, rho, thm,
				 lmi);
	}
	double fl = number_after("floor (search)"), sdp = number_after("LipSDP"),
	       prod = number_after("product of norms");
	if (!(fl > 0 && fl <= sdp && sdp <= prod * (1 + 1e-6)))
		fail_msg("floor %g, LipSDP %g, product %g:\n%s", fl, sdp, prod, screen);
	double cert = number_after("certified  "), flip = number_after("flips at");
	if (!(cert >= 0 && cert <= flip && isfinite(flip)))
		fail_msg("certified %g, flips at %g:\n%s", cert, flip, screen);
	assert_non_null(strstr(screen, "ratio"));
	/* the chart's last line has its legend whole or not at all */
	const char *med = line_of("median ");
	assert_non_null(med);
	char row[512];
	snprintf(row, sizeof row, "%.*s", (int)strcspn(med, "\n"), med);
	if (strstr(row, "c:") && !strstr(row, "c: the image"))
		fail_msg("the chart's legend is cut:\n%s", screen);
	/* another image */
	next_image(ls);
	wait_for_either(ls->sock, "flips at", "misclassified", CERT_SECONDS);
	/* Esc cancels a recomputation; the last report stays */
	press(ls, "r", "Esc cancels");
	press(ls, "Escape", "cancelled");
	assert_non_null(strstr(screen, "gain floor"));
	/* quitting while a computation runs */
	press(ls, "r", "Esc cancels");
	assert_int_equal(quit_lab(ls), 0);
	assert_terminal_restored(ls);
}

/* At 160x50 the chart takes the right half and the image is drawn. */
static void test_certificate_160x50(void **state)
{
	struct lab_screen *ls = *state;
	open_lab_sized(ls, 160, 50, "", "--mode spnorm --epochs 1 --pace 0");
	wait_for(ls->sock, "done");
	tu_tmux_keys(ls->sock, "4");
	wait_for_either(ls->sock, "flips at", "misclassified", CERT_SECONDS);
	int row = row_of("certified accuracy vs L2 radius");
	assert_int_equal(row, 2);
	assert_true(strstr(line_of("certified accuracy vs L2 radius"), "layer  sigma(pow)") != NULL);
	assert_non_null(strstr(screen, "100%"));
	assert_true(line_of("test image ") == strstr(screen, "test image ")); /* left, under */
	assert_int_equal(quit_lab(ls), 0);
}

/* NO_COLOR: no colour escapes on the screen (attributes stay). */
static void test_no_color(void **state)
{
	struct lab_screen *ls = *state;
	open_lab_sized(ls, 80, 24, "NO_COLOR=1", "--pace 30 --epochs 1000");
	wait_for(ls->sock, "ln 10"); /* the note, short at 80x24 */
	static char esc[1 << 17];
	tu_tmux_capture_escapes(ls->sock, esc, sizeof esc);
	/* tmux writes colours as SGR 30-38, 40-48, 90-97 and 100-107 (39 and 49
	 * are the terminal's own colours). */
	for (const char *p = esc; (p = strstr(p, "\033[")) != NULL; p += 2) {
		const char *q = p + 2;
		while (*q && *q != 'm') {
			int code = atoi(q);
			if ((code >= 30 && code <= 48 && code != 39) || (code >= 90 && code <= 107))
				fail_msg("colour code %d with NO_COLOR:\n%s", code, esc);
			while (*q && *q != ';' && *q != 'm')
				q++;
			if (*q == ';')
				q++;
		}
	}
	assert_int_equal(quit_lab(ls), 0);
}

/* Ctrl-\ (SIGQUIT), SIGHUP and a crash (SIGSEGV) end the lab with the
 * terminal as it was. */
static void signal_restores(struct lab_screen *ls, int sig)
{
	open_lab(ls, "--pace 30 --epochs 1000");
	wait_for(ls->sock, "space s e n");
	send_signal(ls, sig);
	assert_int_equal(lab_status(ls), 128 + sig);
	assert_terminal_restored(ls);
}

static void test_sigquit_restores(void **state)
{
	signal_restores(*state, SIGQUIT);
}

static void test_sighup_restores(void **state)
{
	signal_restores(*state, SIGHUP);
}

static void test_sigterm_restores(void **state)
{
	signal_restores(*state, SIGTERM);
}

static void test_crash_restores(void **state)
{
	signal_restores(*state, SIGSEGV);
}

/* Without a terminal the lab refuses at once: a pipe, or TERM=dumb. */
static void test_refuses_non_terminal(void **state)
{
	struct lab_screen *ls = *state;
	char out[4096], args[1024];
	snprintf(args, sizeof args, "--data-dir '%s'", tu_sample_data());
	assert_int_equal(tu_run(args, true, out, sizeof out), 1);
	assert_non_null(strstr(out, "needs a terminal"));
	assert_null(strstr(out, "\033["));
	/* Bad usage is still usage (2), said before the terminal matters. */
	assert_int_equal(tu_run("--lanes vanilla,fast", true, out, sizeof out), 2);
	assert_non_null(strstr(out, "unknown lane 'fast'"));
	open_lab_sized(ls, 80, 24, "TERM=dumb", "");
	assert_int_equal(lab_status(ls), 1);
}

/* Capture until the screen no longer shows what (or fail). */
static void wait_gone(const char *sock, const char *what)
{
	time_t start = time(NULL);
	for (;;) {
		tu_tmux_capture(sock, screen, sizeof screen);
		if (!strstr(screen, what))
			return;
		if (time(NULL) - start > WAIT_SECONDS)
			fail_msg("the screen kept showing '%s':\n%s", what, screen);
		struct timespec ts = {0, 50 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
}

/* The gallery at 80x24 on the paused lab: a grid of test images attacked
 * with the recipe on screen; a change of recipe attacks them again; Enter
 * sweeps N images (success over the correct ones, denominator shown); x
 * writes the grid's PNGs where it says; t steps through one image. */
static void test_gallery_80x24(void **state)
{
	struct lab_screen *ls = *state;
	const char *sock = ls->sock;
	open_lab(ls, "--paused --epochs 1000");
	wait_for(sock, "PAUSED");
	tu_tmux_keys(sock, "3");
	wait_for(sock, "#1 true 4"); /* the second image of the sample, attacked */
	assert_non_null(strstr(screen, "attack PGD"));
	assert_non_null(strstr(screen, "eps 0.1"));
	assert_non_null(strstr(screen, "#0 true 7"));
	assert_non_null(strstr(screen, "adversarial"));
	assert_non_null(strstr(screen, "lane 3 @0")); /* the paused lane's network, step 0 */
	assert_int_equal(row_of("p m Enter"), 23);   /* the footer, last */
	/* attack: PGD -> FGSM, the grid again */
	tu_tmux_keys(sock, "Right");
	wait_for(sock, "attack FGSM");
	assert_non_null(strstr(screen, "steps 1"));
	wait_gone(sock, "(updating)");
	wait_for(sock, "#1 true 4");
	tu_tmux_keys(sock, "Enter");
	wait_for(sock, "500 images: clean");
	assert_non_null(strstr(screen, "% of "));
	assert_non_null(strstr(screen, "correct"));
	assert_non_null(strstr(screen, "FGSM L-inf eps 0.1"));
	tu_tmux_keys(sock, "x");
	wait_for(sock, "wrote 2 images");
	assert_non_null(strstr(screen, "/sectorlab-gallery/;"));
	char *grid = tu_path(ls->dir, "sectorlab-gallery/grid_fgsm_linf_eps0.1.png");
	assert_int_equal(access(grid, F_OK), 0);
	free(grid);
	tu_tmux_keys(sock, "t");
	wait_for(sock, "test image #0 (true 7):");
	wait_for(sock, "step 0/1");
	tu_tmux_keys(sock, "End");
	wait_for(sock, "step 1/1 (kept)");
	tu_tmux_keys(sock, "Escape");
	wait_for(sock, "attack FGSM");
	assert_int_equal(quit_lab(ls), 0);
	assert_terminal_restored(ls);
}

/* Presets are one key away; long work shows progress and Esc stops it;
 * a setting that does not apply says why. */
static void test_gallery_presets_cancel(void **state)
{
	struct lab_screen *ls = *state;
	const char *sock = ls->sock;
	open_lab(ls, "--paused --epochs 1000");
	wait_for(sock, "PAUSED");
	tu_tmux_keys(sock, "3 m");
	/* not "eps 0.3": the Train screen's robust-accuracy axis reads so too */
	wait_for(sock, "start random");
	assert_non_null(strstr(screen, "eps 0.3"));
	assert_non_null(strstr(screen, "step 0.01"));
	tu_tmux_keys(sock, "p");
	wait_for(sock, "norm L2");
	assert_non_null(strstr(screen, "labels pred"));
	assert_non_null(strstr(screen, "clip off"));
	assert_non_null(strstr(screen, "steps 100"));
	/* steps 100 -> 500, N 500 -> all: a sweep long enough to stop */
	tu_tmux_keys(sock, "Down Down Down Right Right n n");
	wait_for(sock, "steps 500");
	wait_for(sock, "N = all 2000");
	tu_tmux_keys(sock, "Enter");
	wait_for(sock, "sweep: ");
	tu_tmux_keys(sock, "Escape");
	wait_for(sock, "stopped");
	/* FGM takes one step: its steps cannot change */
	tu_tmux_keys(sock, "Up Up Up Left");
	wait_for(sock, "attack FGM");
	tu_tmux_keys(sock, "Down Down Down Right");
	wait_for(sock, "are PGD's");
	assert_int_equal(quit_lab(ls), 0);
}

/* At 160x50 the grid holds twelve images; PgDn shows the next twelve. */
static void test_gallery_160x50(void **state)
{
	struct lab_screen *ls = *state;
	open_lab_sized(ls, 160, 50, "", "--paused --epochs 1000");
	wait_for(ls->sock, "PAUSED");
	press(ls, "3", "#11 true 1");
	assert_non_null(strstr(screen, "#10 true 2"));
	press(ls, "NPage", "#23 true");
	assert_int_equal(quit_lab(ls), 0);
}

int main(int argc, char **argv)
{
	(void)argc;
	tu_find_program(argv[0]);
	/* TEST_FILTER=test_race* runs only the matching tests. */
	if (getenv("TEST_FILTER"))
		cmocka_set_test_filter(getenv("TEST_FILTER"));
	const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, lab_setup, lab_teardown)
		T(test_designer_preview),
		T(test_designer_moves),
		T(test_designer_applies_live),
		T(test_designer_restarts_lane),
		T(test_designer_160x50),
		T(test_race_80x24),
		T(test_race_200x60),
		T(test_too_small),
		T(test_focus),
		T(test_pause_step_reset),
		T(test_eps_follows_after_done),
		T(test_designer_objective),
		T(test_help_lists_every_key),
		T(test_screen_switching),
		T(test_help_wraps),
		T(test_setup_lane_kind),
		T(test_gallery_80x24),
		T(test_gallery_presets_cancel),
		T(test_gallery_160x50),
		T(test_lesson_opens_and_saves),
		T(test_certificate_80x24),
		T(test_certificate_160x50),
		T(test_no_color),
		T(test_sigquit_restores),
		T(test_sighup_restores),
		T(test_sigterm_restores),
		T(test_crash_restores),
		T(test_refuses_non_terminal),
#undef T
	};
	return cmocka_run_group_tests_name("ui", tests, NULL, NULL);
}
