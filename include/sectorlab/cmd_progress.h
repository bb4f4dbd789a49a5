/*
 * cmd_progress: the live progress line of the commands (train, attack,
 * certify, reproduce): what is running, how far it is, its rate and an ETA,
 * redrawn in place on stderr.
 *
 * The core never prints: it reports progress through callbacks (a trainer is
 * stepped, attack_sweep calls back per batch, certify_options.on_layer per
 * layer) and the commands feed those reports here.  The line is shown only
 * when stderr is a terminal and the command was not asked to be quiet; it is
 * redrawn at most CMD_PROGRESS_HZ times a second, cut to the terminal's width
 * so it never wraps, and cleared (cmd_progress_clear) before the command
 * prints anything else on stderr and when the work ends.  When the line is
 * off every call is a cheap no-op, so callers need no conditions of their own.
 */
#ifndef SECTORLAB_CMD_PROGRESS_H
#define SECTORLAB_CMD_PROGRESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#define CMD_PROGRESS_HZ 4
#define CMD_PROGRESS_DELAY 0.5 /* seconds of work before the first draw */

struct cmd_progress {
	bool on;           /* drawing at all */
	bool shown;        /* a line is on the screen now */
	FILE *f;           /* stderr */
	const char *unit;  /* what done and total count ("images", "steps"); NULL: the label alone */
	double total;
	double t0;         /* monotonic seconds at cmd_progress_start */
	double last;       /* ... at the last draw */
};

/* Off with quiet or when stderr is not a terminal; otherwise on. */
void cmd_progress_init(struct cmd_progress *p, bool quiet);

/* Start counting a piece of work of total units (the clock for the rate and
 * the ETA starts now).  unit NULL: the line is the label alone (for work
 * whose parts differ too much for one rate; the caller says where it is). */
void cmd_progress_start(struct cmd_progress *p, const char *unit, double total);

/* done units of total are finished; label (printf format) says where the work
 * stands ("epoch 3/10").  Draws nothing in the first CMD_PROGRESS_DELAY
 * seconds; after that, when the last draw is at least 1/CMD_PROGRESS_HZ s
 * old or done reaches total. */
void cmd_progress_update(struct cmd_progress *p, double done, const char *label, ...)
	__attribute__((format(printf, 3, 4)));

/* Erase the line, if one is shown (before other output, and at the end). */
void cmd_progress_clear(struct cmd_progress *p);

/*
 * The text of a progress line, cut to width columns (no newline):
 * "label  42%  1,234 images/s  0:12 elapsed, ETA 0:45".  The rate and the ETA
 * are left out until they mean something (no time elapsed, nothing done).
 * unit NULL: the label alone.
 * Returns the length written.
 */
int cmd_progress_format(char *buf, size_t cap, int width, const char *label, double done,
			double total, double seconds, const char *unit);

/* "0:07", "12:34", "1:02:03": seconds as a duration (negative or not finite:
 * "?"). */
void cmd_progress_duration(double seconds, char *buf, size_t cap);

#endif
