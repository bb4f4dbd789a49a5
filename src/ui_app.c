/*
 * ui_app: the terminal, the screen stack and the one loop that drives them.
 *
 * The bottom of the stack is the tab in front (one of the table `tabs`);
 * modal screens go on top of it.  The app draws the header: the tab bar,
 * then the tab's own status (ui_screen.status), in the longest forms that
 * fit the width.
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

/* ---- the tabs ----------------------------------------------------------- */

/* The top-level screens, in the order of enum ui_tab.  A tab whose screen
 * is not built yet has no function: a placeholder says so.  Building one is
 * naming its function here. */
static const struct tab_def {
	const char *name, *brief; /* in the tab bar, with room and without */
	const struct ui_screen *(*screen)(struct ui_app *app);
} tabs[UI_NTABS] = {
	[UI_TAB_TRAIN] = {"Train", "Train", ui_race_screen},
	[UI_TAB_DESIGNER] = {"Sector designer", "Sector", ui_designer_screen},
	[UI_TAB_GALLERY] = {"Attack gallery", "Attack", ui_gallery_screen},
	[UI_TAB_CERT] = {"Certificate", "Cert", ui_cert_screen},
	[UI_TAB_HELP] = {"Help", "Help", ui_help_screen},
};

struct ui_app {
	struct lab *lab;
	const struct ui_context *ctx;
	const struct ui_screen *stack[STACK_MAX]; /* [0]: the tab in front */
	int depth;
	enum ui_tab front, previous; /* tabs */
	const struct ui_screen *known[STACK_MAX]; /* every screen, for help */
	int nknown;
	char said[256];
	long keys;
};

static void placeholder_draw(struct ui_app *app, void *self)
{
	const struct tab_def *t = self;
	(void)app;
	ui_textf(2, 2, COLS - 4, UI_DIM, false,
		 "The %s screen is not built yet (1-5 and Tab switch screens).", t->name);
}

static struct ui_screen placeholders[UI_NTABS];

/* The screen of tab t (a placeholder when it is not built yet). */
static const struct ui_screen *tab_screen(struct ui_app *app, enum ui_tab t)
{
	if (tabs[t].screen)
		return tabs[t].screen(app);
	placeholders[t] = (struct ui_screen){
		.title = tabs[t].name,
		.draw = placeholder_draw,
		.self = (void *)&tabs[t],
	};
	return &placeholders[t];
}

void ui_app_switch(struct ui_app *app, enum ui_tab which)
{
	if (which < 0 || which >= UI_NTABS)
		return;
	if (which != app->front)
		app->previous = app->front;
	app->front = which;
	app->stack[0] = tab_screen(app, which);
	app->depth = 1;
}

void ui_app_back(struct ui_app *app)
{
	ui_app_switch(app, app->previous);
}

enum ui_tab ui_app_tab(const struct ui_app *app)
{
	return app->front;
}

/* ---- the app's own keys ---------------------------------------------------- */

enum { ACT_HELP, ACT_QUIT, ACT_REDRAW, ACT_TAB, ACT_NEXT_TAB, ACT_PREV_TAB, ACT_SAVE };

static const struct ui_key global_keys[] = {
	{'1', "1-5", "screens: 1 Train, 2 Sector designer, 3 Attack gallery, 4 Certificate, "
		     "5 Help",
	 ACT_TAB, false},
	{'2', "2", NULL, ACT_TAB, false},
	{'3', "3", NULL, ACT_TAB, false},
	{'4', "4", NULL, ACT_TAB, false},
	{'5', "5", NULL, ACT_TAB, false},
	{'\t', "Tab", "the next screen", ACT_NEXT_TAB, false},
	{KEY_BTAB, "S-Tab", "the previous screen", ACT_PREV_TAB, false},
	{'?', "?", "help: every key of every screen (again: back)", ACT_HELP, true},
	{'q', "q", "quit the lab (also Ctrl-C)", ACT_QUIT, true},
	{12, "^L", "redraw the whole screen", ACT_REDRAW, false},
	{'w', "w", "write the lab's settings (lanes, caps, controls, screen) to a new file "
		   "here, sectorlab-N.conf: sectorlab --config FILE opens the lab so again",
	 ACT_SAVE, false},
};

static const struct ui_screen global_screen = {
	.title = "Everywhere",
	.guide = "the header's tab bar names the screens (the one in front stands out), then "
		 "what that screen shows; the footer lists its keys",
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

/* Key w: the settings the lab is in, to a file (the command line's
 * business: ui_context.save), and where they went. */
static void save(struct ui_app *app)
{
	const struct ui_context *c = app->ctx;
	char said[sizeof app->said];
	if (!c->save) {
		ui_app_say(app, "this lab cannot save its settings");
		return;
	}
	struct attack_recipe recipe;
	struct ui_saved state = {.screen = (int)app->front};
	if (ui_gallery_recipe(app, &recipe))
		state.recipe = &recipe;
	c->save(c->save_ctx, app->lab, &state, said, sizeof said);
	ui_app_say(app, "%s", said);
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
		case ACT_HELP:
			if (app->front == UI_TAB_HELP)
				ui_app_back(app);
			else
				ui_app_switch(app, UI_TAB_HELP);
			break;
		case ACT_QUIT: flags |= UI_QUIT; break;
		case ACT_REDRAW: clearok(curscr, TRUE); break;
		case ACT_TAB: ui_app_switch(app, (enum ui_tab)(ch - '1')); break;
		case ACT_NEXT_TAB: ui_app_switch(app, (enum ui_tab)((app->front + 1) % UI_NTABS)); break;
		case ACT_PREV_TAB:
			ui_app_switch(app, (enum ui_tab)((app->front + UI_NTABS - 1) % UI_NTABS));
			break;
		case ACT_SAVE: save(app); break;
		}
	}
	if ((flags & UI_POP) && app->depth > 1)
		app->depth--;
	return flags;
}

/* ---- drawing --------------------------------------------------------------- */

/* The tab bar from column 1, in one of three forms: "1 Train  2 Sector
 * designer", "1Train 2Sector", or numbers with only the tab in front named.
 * The tab in front reads as lifted out of the bar.  Returns its width
 * (nothing is drawn when draw is false). */
static int tab_bar(const struct ui_app *app, int form, bool draw)
{
	int x = 1;
	for (int t = 0; t < UI_NTABS; t++) {
		bool front = t == (int)app->front;
		const char *name = form == 0 ? tabs[t].name : (form == 2 && !front ? "" : tabs[t].brief);
		int n = 1 + (form == 0) + (int)strlen(name), pad = front ? 1 : 0;
		enum ui_role role = front ? UI_NORMAL : UI_TITLE;
		if (draw) {
			ui_text(0, x, n + 2 * pad, role, true, " ");
			ui_textf(0, x + pad, 1, role, true, "%d", t + 1);
			ui_text(0, x + pad + n - (int)strlen(name), (int)strlen(name), role, front, name);
			if (pad)
				ui_text(0, x + pad + n, 1, role, true, " ");
		}
		x += n + 2 * pad + (form == 0 ? 2 : 1);
	}
	return x;
}

/* Row 0: the tab bar, then the tab's status, in the longest forms that fit. */
static void header(struct ui_app *app)
{
	const struct ui_screen *s = app->stack[0];
	static const int forms[][2] = {{0, 0}, {1, 0}, {0, 1}, {1, 1}, {2, 1}}; /* tab bar, brief */
	char status[512] = "";
	int form = 2, nforms = (int)(sizeof forms / sizeof forms[0]);
	for (int i = 0; i < nforms; i++) {
		status[0] = '\0';
		if (s->status)
			s->status(app, s->self, forms[i][1], status, (int)sizeof status);
		form = forms[i][0];
		if (tab_bar(app, form, false) + 1 + (int)strlen(status) <= COLS)
			break;
	}
	char blank[512];
	memset(blank, ' ', sizeof blank - 1);
	blank[sizeof blank - 1] = '\0';
	ui_text(0, 0, COLS, UI_TITLE, false, blank);
	int x = tab_bar(app, form, true) + 1;
	ui_text(0, x, COLS - x, UI_TITLE, true, status);
}

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
		header(app);
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
	set_escdelay(25); /* Esc closes a modal screen at once */
	curs_set(0);
	ui_draw_init();

	/* Help lists these screens' keys (it builds its list when opened). */
	for (int t = 0; t < UI_NTABS; t++) {
		if (!tabs[t].screen)
			continue;
		const struct ui_screen *s = tabs[t].screen(&app);
		app.known[app.nknown++] = s;
		if (t == UI_TAB_TRAIN) {
			s = ui_setup_screen(&app);
			app.known[app.nknown++] = s;
		}
		if (t == UI_TAB_GALLERY)
			app.known[app.nknown++] = ui_gallery_trace_screen(&app);
	}
	ui_app_switch(&app, ctx->screen > 0 && ctx->screen < UI_NTABS ? (enum ui_tab)ctx->screen
									: UI_TAB_TRAIN);
	if (ctx->note)
		ui_app_say(&app, "%s", ctx->note);

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
	for (int i = 0; i < app.nknown; i++)
		if (app.known[i]->close)
			app.known[i]->close(&app, app.known[i]->self);
	endwin();
	delscreen(scr);
	release_signals(&guard);
	/* A signal ends the lab as it would end a shell command: 128 + signal. */
	return ended_by ? interrupt_exit_code(ended_by) : 0;
}

/* ---- screens by name ------------------------------------------------------ */

/* The tabs as settings files name them (--screen). */
static const char *const screen_names[UI_NTABS] = {
	[UI_TAB_TRAIN] = "train",	  [UI_TAB_DESIGNER] = "designer",
	[UI_TAB_GALLERY] = "gallery", [UI_TAB_CERT] = "certificate",
	[UI_TAB_HELP] = "help",
};

int ui_screen_parse(const char *name)
{
	for (int i = 0; name && i < UI_NTABS; i++)
		if (strcmp(name, screen_names[i]) == 0)
			return i;
	return -1;
}

const char *ui_screen_name(int screen)
{
	return screen >= 0 && screen < UI_NTABS ? screen_names[screen] : "train";
}

const char *ui_screen_names(void)
{
	return "train, designer, gallery, certificate or help";
}
