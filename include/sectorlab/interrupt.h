/*
 * interrupt: SIGINT and SIGTERM as a request to stop at the next safe point.
 *
 * A long command (training, an attack with exports, the lab) catches both
 * signals with interrupt_catch, polls interrupt_pending between units of work
 * that leave every file whole (a training step, an exported image), then
 * finishes what must be finished, releases the guard and exits with
 * interrupt_exit_code.  The handler only records the signal; it is installed
 * with SA_RESETHAND, so a second Ctrl-C ends a program that does not stop.
 *
 * The pending signal is process-wide (signals are); one guard at a time.
 */
#ifndef SECTORLAB_INTERRUPT_H
#define SECTORLAB_INTERRUPT_H

#include <signal.h>

#include "sectorlab/status.h"

struct interrupt_guard {
	struct sigaction old_int, old_term;
};

/* Clear any pending signal and catch SIGINT and SIGTERM. */
void interrupt_catch(struct interrupt_guard *g);

/* Put back the handlers interrupt_catch found.  The pending signal stays. */
void interrupt_release(struct interrupt_guard *g);

/* The signal caught since interrupt_catch (SIGINT or SIGTERM), or 0. */
int interrupt_pending(void);

/* SL_OK, or SL_ERR_CANCELLED with "stopped by SIGINT" when a signal is
 * pending: for loops that report errors as values. */
sl_status interrupt_check(struct sl_error *err);

/* "SIGINT", "SIGTERM", or "a signal". */
const char *interrupt_name(int sig);

/* The shell's exit status for a command ended by sig: 128 + sig. */
int interrupt_exit_code(int sig);

#endif
