/*
 * ui_screen: the lab's screens as tables, and the app that stacks them.
 *
 * A screen is a struct of functions in the manner of tig's views and htop's
 * panels: key (answer an action from its key table), draw (into the next
 * frame) and tick (poll what it shows; say whether it changed), each
 * returning UI_* flags.  Key bindings are data: every screen has its own
 * table, help is generated from all of them, and the footer shows the
 * bindings marked for it.
 *
 * The top-level screens are tabs (enum ui_tab), switched with the number
 * keys 1-5 and Tab / Shift-Tab and named in the header's tab bar; a tab
 * whose screen is not built yet shows a placeholder saying so.  On top of
 * the tab in front, screens stack: a modal screen (typing numbers in the
 * sector designer) is drawn over the one beneath and takes every key; a tab falls back to
 * the app's own keys (switching, help, quit).
 *
 * ui_app owns the terminal: it refuses to start without one, restores it on
 * every way out (q, SIGINT, SIGTERM, SIGQUIT, SIGHUP, and crashes), follows
 * resizes, and sends one doupdate per frame, only when something changed.
 */
#ifndef SECTORLAB_UI_SCREEN_H
#define SECTORLAB_UI_SCREEN_H

#include <stdbool.h>

#include "sectorlab/lab.h"
#include "sectorlab/ui.h"

enum ui_flags {
	UI_DIRTY = 1 << 0, /* redraw */
	UI_POP = 1 << 1,   /* close this screen */
	UI_QUIT = 1 << 2,  /* leave the lab */
};

/* A key-table entry matching any printable character (typing a number). */
#define UI_KEY_TEXT (-2)

struct ui_key {
	int key;           /* curses key code, or UI_KEY_TEXT */
	const char *name;  /* as help and the footer show it */
	const char *what;  /* what it does, for help */
	int action;        /* handed to the screen's key function */
	bool footer;       /* shown in the footer */
};

struct ui_app;

struct ui_screen {
	const char *title;       /* help's heading for this screen's keys */
	const char *guide;       /* help: how to read the screen, one line */
	const struct ui_key *keys;
	int nkeys;
	bool modal;
	/* action from the table (-1 for a key a modal screen has no entry for). */
	int (*key)(struct ui_app *app, void *self, int action, int ch);
	void (*draw)(struct ui_app *app, void *self);
	int (*tick)(struct ui_app *app, void *self); /* may be NULL */
	/* A tab's part of the header, after the tab bar: in full, or (brief)
	 * in the fewest words that still say what it shows.  May be NULL. */
	void (*status)(struct ui_app *app, void *self, bool brief, char *buf, int cap);
	/* Called once as the lab ends, on every way out, before the lab is
	 * freed: stop work that borrows from it (tasks).  May be NULL. */
	void (*close)(struct ui_app *app, void *self);
	void *self;
};

/* The top-level screens, in the order of their number keys. */
enum ui_tab { UI_TAB_TRAIN, UI_TAB_DESIGNER, UI_TAB_GALLERY, UI_TAB_CERT, UI_TAB_HELP, UI_NTABS };

/* The lab and the run's description, for screens. */
struct lab *ui_app_lab(struct ui_app *app);
const struct ui_context *ui_app_context(struct ui_app *app);
/* Put a modal screen on top of the stack (it must outlive its time there). */
void ui_app_push(struct ui_app *app, const struct ui_screen *screen);
/* Bring a tab to the front (closing any modal screen); ui_app_back returns
 * to the tab that was in front before. */
void ui_app_switch(struct ui_app *app, enum ui_tab which);
void ui_app_back(struct ui_app *app);
enum ui_tab ui_app_tab(const struct ui_app *app);
/* Every screen help should list, and the app's own keys. */
int ui_app_screens(struct ui_app *app, const struct ui_screen **out, int cap);
const struct ui_screen *ui_app_global(void);
/* A message for the footer until the next key (e.g. why a restart failed). */
void ui_app_say(struct ui_app *app, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The screens.  A tab's function is called each time the tab comes to the
 * front (help rebuilds its list then); it returns the same screen each time. */
const struct ui_screen *ui_race_screen(struct ui_app *app);
const struct ui_screen *ui_designer_screen(struct ui_app *app);
const struct ui_screen *ui_help_screen(struct ui_app *app);
/* Tabs to come (src/ui_gallery.c, src/ui_cert.c): declared here so that
 * building one is one line in ui_app.c's table of tabs. */
const struct ui_screen *ui_gallery_screen(struct ui_app *app);
/* The gallery's step-through of one image, a modal screen over it. */
const struct ui_screen *ui_gallery_trace_screen(struct ui_app *app);
/* The gallery's recipe as it is now (false before the gallery opened). */
bool ui_gallery_recipe(struct ui_app *app, struct attack_recipe *out);
const struct ui_screen *ui_cert_screen(struct ui_app *app);
const struct ui_screen *ui_setup_screen(struct ui_app *app);

/* The focused lane: the race's bars show it, the designer applies to it. */
int ui_race_focus(struct ui_app *app);
void ui_race_set_focus(struct ui_app *app, int lane);
/* A lane's name as every screen shows it: "vanilla", "L2", "spnorm", ... */
const char *ui_race_lane_label(struct ui_app *app, int lane);

#endif
