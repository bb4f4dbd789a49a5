/*
 * ui_app: the terminal, the screen stack and the one loop that drives them.
 *
 * Each pass: read the keys waiting (a short timeout when none), hand each to
 * the top screen's key table (then to the app's own, unless the screen is
 * modal), tick every screen on the stack, and only if a key, a tick or a
 * resize changed something, draw the stack bottom to top and send the frame
 * with one doupdate.  Signals that end programs only set a flag the loop
 * reads, so the terminal is restored by the same code as after q; a crash
 * restores it from the handler (termios and the terminal's exit strings,
 * saved before the first frame) and then dies of its signal as it would have.
 */
#define _XOPEN_SOURCE_EXTENDED 1
#include <locale.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include <curses.h>
#include <term.h>

#include "sectorlab/interrupt.h"
#include "sectorlab/ui_draw.h"
#include "sectorlab/ui_screen.h"

#define STACK_MAX 8
#define MIN_COLS 80
#define MIN_LINES 24
#define KEY_WAIT_MS 20

struct ui_app {
	struct lab *lab;
	const struct ui_context *ctx;
	const struct ui_screen *stack[STACK_MAX];
	int depth;
	const struct ui_screen *known[STACK_MAX]; /* every screen, for help */
	int nknown;
	char said[256];
	long keys;
};

/* ---- the app's own keys ---------------------------------------------------- */

enum { ACT_HELP, ACT_QUIT, ACT_REDRAW };

static const struct ui_key global_keys[] = {
	{'?', "?", "help: every key of every screen", ACT_HELP, true},
	{'q', "q", "quit the lab (also Ctrl-C)", ACT_QUIT, true},
	{12, "^L", "redraw the whole screen", ACT_REDRAW, false},
};

static const struct ui_screen global_screen = {
	.title = "Everywhere",
	.guide = "the header names the run; the footer lists the keys of the screen in front",
	.keys = global_keys,
	.nkeys = (int)(sizeof global_keys / sizeof global_keys[0]),
};

const struct ui_screen *ui_app_global(void)
{
	return &global_screen;
}

struct lab *ui_app_lab(struct ui_app *app)
{
	return app->lab;
}

const struct ui_context *ui_app_context(struct ui_app *app)
{
	return app->ctx;
}

void ui_app_push(struct ui_app *app, const struct ui_screen *screen)
{
	if (app->depth < STACK_MAX)
		app->stack[app->depth++] = screen;
}

int ui_app_screens(struct ui_app *app, const struct ui_screen **out, int cap)
{
	int n = 0;
	for (int i = 0; i < app->nknown && n < cap; i++)
		out[n++] = app->known[i];
	return n;
}

void ui_app_say(struct ui_app *app, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(app->said, sizeof app->said, fmt, ap);
	va_end(ap);
}

static const struct ui_key *find_key(const struct ui_screen *s, int ch)
{
	for (int i = 0; i < s->nkeys; i++)
		if (s->keys[i].key == ch ||
		    (s->keys[i].key == UI_KEY_TEXT && ch >= 32 && ch < 127))
			return &s->keys[i];
	return NULL;
}

static int dispatch(struct ui_app *app, int ch)
{
	const struct ui_screen *top = app->stack[app->depth - 1];
	app->said[0] = '\0';
	const struct ui_key *k = find_key(top, ch);
	int flags = UI_DIRTY;
	if (k)
		flags |= top->key(app, top->self, k->action, ch);
	else if (top->modal)
		flags |= top->key(app, top->self, -1, ch);
	else if ((k = find_key(&global_screen, ch)) != NULL) {
		switch (k->action) {
		case ACT_HELP: ui_app_push(app, ui_help_screen(app)); break;
		case ACT_QUIT: flags |= UI_QUIT; break;
		case ACT_REDRAW: clearok(curscr, TRUE); break;
		}
	}
	if ((flags & UI_POP) && app->depth > 1)
		app->depth--;
	return flags;
}

/* ---- drawing --------------------------------------------------------------- */

static void footer(struct ui_app *app)
{
	int y = LINES - 1, x = 0;
	if (app->said[0]) {
		ui_text(y, 0, COLS, UI_WARN, true, app->said);
		return;
	}
	const struct ui_screen *top = app->stack[app->depth - 1];
	const struct ui_screen *tables[2] = {top, top->modal ? NULL : &global_screen};
	for (int t = 0; t < 2 && tables[t]; t++)
		for (int i = 0; i < tables[t]->nkeys && x < COLS; i++) {
			const struct ui_key *k = &tables[t]->keys[i];
			if (!k->footer)
				continue;
			x += ui_text(y, x, COLS - x, UI_KEY, false, k->name);
			x += 1;
		}
}

static void too_small(void)
{
	/* Fits any terminal: one short line per fact, each cut to the width. */
	char line[96];
	snprintf(line, sizeof line, "sectorlab needs %dx%d", MIN_COLS, MIN_LINES);
	ui_text(0, 0, COLS, UI_BAD, true, line);
	snprintf(line, sizeof line, "this terminal: %dx%d", COLS, LINES);
	ui_text(1, 0, COLS, UI_NORMAL, false, line);
	ui_text(2, 0, COLS, UI_NORMAL, false, "enlarge it, or q quits");
}

static void draw(struct ui_app *app)
{
	erase();
	if (COLS < MIN_COLS || LINES < MIN_LINES) {
		too_small();
	} else {
		for (int i = 0; i < app->depth; i++)
			app->stack[i]->draw(app, app->stack[i]->self);
		footer(app);
	}
	wnoutrefresh(stdscr);
	doupdate();
}

/* ---- the terminal ---------------------------------------------------------- */

bool ui_terminal_usable(char *why, size_t cap)
{
	const char *term = getenv("TERM");
	if (!isatty(STDIN_FILENO) || !isatty(STDOUT_FILENO)) {
		snprintf(why, cap, "the lab needs a terminal: %s is not one (the commands "
				   "train, attack and certify work without)",
			 !isatty(STDIN_FILENO) ? "standard input" : "standard output");
		return false;
	}
	if (!term || !term[0] || strcmp(term, "dumb") == 0) {
		snprintf(why, cap, "the lab needs a terminal that can move the cursor; TERM is %s",
			 term && term[0] ? "\"dumb\"" : "not set");
		return false;
	}
	return true;
}

/* What a crash handler may use: only async-signal-safe calls on saved bytes. */
static struct termios saved_tty;
static bool have_saved_tty;
static char exit_seq[128];
static size_t exit_len;
static volatile sig_atomic_t ended_by;

static void add_exit_cap(const char *name)
{
	char *s = tigetstr(name);
	if (s && s != (char *)-1 && exit_len + strlen(s) < sizeof exit_seq) {
		memcpy(exit_seq + exit_len, s, strlen(s));
		exit_len += strlen(s);
	}
}

static void on_crash(int sig)
{
	/* Leave the alternate screen, show the cursor, plain attributes, and
	 * the line discipline as it was; then die of the same signal. */
	if (exit_len && write(STDOUT_FILENO, exit_seq, exit_len) < 0) {
		/* nothing more can be done */
	}
	if (have_saved_tty)
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved_tty);
	signal(sig, SIG_DFL);
	raise(sig);
}

static void on_end(int sig)
{
	ended_by = sig;
}

static const int end_signals[] = {SIGINT, SIGTERM, SIGQUIT, SIGHUP};
static const int crash_signals[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT};
#define NEND ((int)(sizeof end_signals / sizeof end_signals[0]))
#define NCRASH ((int)(sizeof crash_signals / sizeof crash_signals[0]))

struct signal_guard {
	struct sigaction old_end[NEND], old_crash[NCRASH];
};

static void catch_signals(struct signal_guard *g)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sigemptyset(&sa.sa_mask);
	/* A second signal ends a lab that does not stop. */
	sa.sa_flags = SA_RESETHAND;
	sa.sa_handler = on_end;
	for (int i = 0; i < NEND; i++)
		sigaction(end_signals[i], &sa, &g->old_end[i]);
	sa.sa_flags = SA_RESETHAND | SA_NODEFER;
	sa.sa_handler = on_crash;
	for (int i = 0; i < NCRASH; i++)
		sigaction(crash_signals[i], &sa, &g->old_crash[i]);
}

static void release_signals(struct signal_guard *g)
{
	for (int i = 0; i < NEND; i++)
		sigaction(end_signals[i], &g->old_end[i], NULL);
	for (int i = 0; i < NCRASH; i++)
		sigaction(crash_signals[i], &g->old_crash[i], NULL);
}

int ui_lab_run(struct lab *lab, const struct ui_context *ctx)
{
	struct ui_app app = {.lab = lab, .ctx = ctx};
	char why[256];
	if (!ui_terminal_usable(why, sizeof why)) {
		fprintf(stderr, "sectorlab: %s\n", why);
		return 1;
	}
	ended_by = 0;
	have_saved_tty = tcgetattr(STDIN_FILENO, &saved_tty) == 0;
	struct signal_guard guard;
	catch_signals(&guard);

	setlocale(LC_ALL, "");
	/* newterm, unlike initscr, returns NULL instead of exiting. */
	SCREEN *scr = newterm(NULL, stdout, stdin);
	if (!scr) {
		release_signals(&guard);
		fprintf(stderr, "sectorlab: cannot use the terminal '%s'\n", getenv("TERM"));
		return 1;
	}
	exit_len = 0;
	add_exit_cap("rmcup");
	add_exit_cap("cnorm");
	add_exit_cap("sgr0");
	cbreak();
	noecho();
	keypad(stdscr, TRUE);
	set_escdelay(25); /* Esc closes the editor at once */
	curs_set(0);
	ui_draw_init();

	/* Help lists these screens' keys (it builds its list when opened). */
	const struct ui_screen *race = ui_race_screen(&app);
	const struct ui_screen *editor = ui_editor_screen(&app);
	const struct ui_screen *help = ui_help_screen(&app);
	app.known[app.nknown++] = race;
	app.known[app.nknown++] = editor;
	app.known[app.nknown++] = help;
	ui_app_push(&app, race);

	int flags = UI_DIRTY;
	while (!ended_by && !(flags & UI_QUIT)) {
		if (flags & UI_DIRTY)
			draw(&app);
		if (ctx->on_frame)
			ctx->on_frame(ctx->frame_ctx, app.keys);
		flags = 0;
		timeout(KEY_WAIT_MS);
		for (int ch; !(flags & UI_QUIT) && (ch = getch()) != ERR; timeout(0)) {
			if (ch == KEY_RESIZE) {
				flags |= UI_DIRTY;
				continue;
			}
			app.keys++;
			flags |= dispatch(&app, ch);
		}
		for (int i = 0; i < app.depth; i++)
			if (app.stack[i]->tick)
				flags |= app.stack[i]->tick(&app, app.stack[i]->self);
	}
	endwin();
	delscreen(scr);
	release_signals(&guard);
	/* A signal ends the lab as it would end a shell command: 128 + signal. */
	return ended_by ? interrupt_exit_code(ended_by) : 0;
}
