/* interrupt: SIGINT and SIGTERM recorded for polling (see interrupt.h). */
#include "sectorlab/interrupt.h"

#include <string.h>

static volatile sig_atomic_t pending;

static void on_signal(int sig)
{
	pending = sig;
}

void interrupt_catch(struct interrupt_guard *g)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_RESETHAND; /* a second signal takes the default action */
	pending = 0;
	sigaction(SIGINT, &sa, &g->old_int);
	sigaction(SIGTERM, &sa, &g->old_term);
}

void interrupt_release(struct interrupt_guard *g)
{
	sigaction(SIGINT, &g->old_int, NULL);
	sigaction(SIGTERM, &g->old_term, NULL);
}

int interrupt_pending(void)
{
	return pending;
}

sl_status interrupt_check(struct sl_error *err)
{
	int sig = pending;
	return sig ? status_set(err, SL_ERR_CANCELLED, "stopped by %s", interrupt_name(sig)) : SL_OK;
}

const char *interrupt_name(int sig)
{
	switch (sig) {
	case SIGINT: return "SIGINT";
	case SIGTERM: return "SIGTERM";
	default: return "a signal";
	}
}

int interrupt_exit_code(int sig)
{
	return 128 + sig;
}
