/*
 * ui: the ncurses lab.  Only src/ui_*.c include curses, and only the main
 * thread calls it.  The screens watch a lab (lab.h) through its lanes'
 * snapshots and steer it with the lab's requests; they never touch a model.
 */
#ifndef SECTORLAB_UI_H
#define SECTORLAB_UI_H

#include <stdbool.h>
#include <stddef.h>

#include "sectorlab/arch.h"
#include "sectorlab/attack.h"
#include "sectorlab/lab.h"

/* What the screens hold that a settings file keeps (key w). */
struct ui_saved {
	int screen;                         /* the tab in front (ui_screen_parse) */
	const struct attack_recipe *recipe; /* the attack gallery's; NULL before it opens */
};

struct ui_context {
	const char *title;       /* e.g. "mlp on the MNIST sample (8000 train, 2000 test)" */
	const char *data_source; /* where the images came from */
	const char *data_dir;    /* where to look for other datasets (the setup screen) */
	bool data_fixed;         /* the model and dataset may not change (--out saves one) */
	/* The network at the start (after a switch, each lane's config holds
	 * its network: lab_lane). */
	struct arch arch;
	bool editor_restarts;    /* false: the designer only shows */
	int screen;              /* the screen to open on (ui_screen_parse; 0: Train) */
	const char *note;        /* said under the screen when the lab opens; may be NULL */
	/* The attack gallery's recipe when it opens; NULL: its own default. */
	const struct attack_recipe *recipe;
	/* Key w: write the settings the lab and its screens are in as a
	 * settings file; returns 0, or nonzero when nothing was written, with
	 * a sentence for the user in said (where the file went, or why not).
	 * NULL: the lab cannot save its settings. */
	int (*save)(void *ctx, struct lab *lab, const struct ui_saved *state, char *said,
		    size_t cap);
	void *save_ctx;
	/* Called after every frame with the number of keys handled so far
	 * (benchmarks time keypresses with it); may be NULL. */
	void (*on_frame)(void *ctx, long keys);
	void *frame_ctx;
};

/*
 * Whether the lab can take this terminal: stdin and stdout are terminals
 * and TERM names one that can address the cursor (not unset, not "dumb").
 * Returns true, or false with the reason in why.
 */
bool ui_terminal_usable(char *why, size_t cap);

/* The lab's top-level screens by their names in settings files: "train",
 * "designer", "gallery", "certificate", "help".  ui_screen_parse returns
 * the screen's number (0 for train), or -1 for another name;
 * ui_screen_names lists them for messages ("train, designer, ... or help"). */
int ui_screen_parse(const char *name);
const char *ui_screen_name(int screen);
const char *ui_screen_names(void);

/*
 * Run the lab until the user quits (q), or a signal that ends programs
 * arrives (SIGINT, SIGTERM, SIGQUIT, SIGHUP).  The terminal is restored on
 * every way out, crashes included.  Returns 0 after q, 128 + the signal
 * number after a signal, or 1 if the terminal could not be set up (with a
 * message on stderr).
 */
int ui_lab_run(struct lab *lab, const struct ui_context *ctx);

#endif
