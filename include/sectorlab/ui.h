/*
 * ui: the ncurses lab.  Only src/ui_*.c include curses, and only the main
 * thread calls it.  The screen watches a running job through snapshots and
 * steers it with the job's controls; it never touches the model.
 */
#ifndef SECTORLAB_UI_H
#define SECTORLAB_UI_H

#include "sectorlab/caps.h"
#include "sectorlab/job.h"
#include "sectorlab/sector.h"

struct ui_context {
	const char *title;       /* e.g. "mlp on MNIST sample" */
	const char *data_source; /* where the images came from */
	unsigned train_n, test_n;
	const char *caps_note;   /* what the caps are ("authors' caps, not certified") */
	int pace;                /* initial steps per second (0: unlimited) */
	/* The (nu, delta) editor previews certified caps for the model with
	 * caps_preview, starting from the lab's caps spec (its indices and
	 * objective). */
	struct arch arch;
	struct caps_spec caps;
	/* Enter in the editor: train again from the start with the spec
	 * previewed.  Returns the new job, which replaces the one the screen
	 * watches (the old one is stopped and freed), or NULL with why filled
	 * (the lab then closes when *lost says the old job is gone too).  NULL
	 * here: the editor only shows. */
	struct job *(*restart)(void *ctx, const struct caps_spec *caps, bool *lost, char *why,
			       size_t cap);
	void *restart_ctx;
};

/*
 * Run the lab until the user quits (q), or SIGINT / SIGTERM arrives.  The
 * terminal is restored on every way out.  Returns 0 after q, 128 + the
 * signal number after a signal, or 1 if the terminal could not be set up
 * (with a message on stderr).
 */
int ui_lab_run(struct job *job, const struct ui_context *ctx);

#endif
