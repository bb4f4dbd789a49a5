/* cmd_progress: the commands' live progress line on stderr (see the header). */
#include "sectorlab/cmd_progress.h"

#include <math.h>
#include <stdarg.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void cmd_progress_init(struct cmd_progress *p, bool quiet)
{
	memset(p, 0, sizeof *p);
	p->f = stderr;
	p->on = !quiet && isatty(fileno(stderr));
	p->unit = "";
}

void cmd_progress_start(struct cmd_progress *p, const char *unit, double total)
{
	p->unit = unit;
	p->total = total;
	p->t0 = now();
	p->last = -INFINITY;
}

void cmd_progress_duration(double seconds, char *buf, size_t cap)
{
	if (!(seconds >= 0) || seconds > 1e9) {
		snprintf(buf, cap, "?");
		return;
	}
	long s = (long)(seconds + 0.5);
	if (s >= 3600)
		snprintf(buf, cap, "%ld:%02ld:%02ld", s / 3600, s / 60 % 60, s % 60);
	else
		snprintf(buf, cap, "%ld:%02ld", s / 60, s % 60);
}

/* A rate with about three significant digits and thousands separated. */
static void format_rate(double r, char *buf, size_t cap)
{
	if (r >= 100) {
		long v = (long)(r + 0.5);
		char digits[32];
		int n = snprintf(digits, sizeof digits, "%ld", v), o = 0;
		for (int i = 0; i < n && (size_t)o + 2 < cap; i++) {
			if (i > 0 && (n - i) % 3 == 0)
				buf[o++] = ',';
			buf[o++] = digits[i];
		}
		buf[o] = '\0';
	} else {
		snprintf(buf, cap, "%.3g", r);
	}
}

int cmd_progress_format(char *buf, size_t cap, int width, const char *label, double done,
			double total, double seconds, const char *unit)
{
	if (cap == 0)
		return 0;
	char text[512];
	size_t n = (size_t)snprintf(text, sizeof text, "%s", label);
	if (!unit) {
		/* the label says it all */
	} else if (total > 0 && n < sizeof text) {
		double frac = done / total;
		frac = frac < 0 ? 0 : frac > 1 ? 1 : frac;
		n += (size_t)snprintf(text + n, sizeof text - n, "  %d%%", (int)(100 * frac));
	}
	if (unit && seconds > 0 && done > 0 && n < sizeof text) {
		char rate[32], el[16], eta[16];
		format_rate(done / seconds, rate, sizeof rate);
		cmd_progress_duration(seconds, el, sizeof el);
		n += (size_t)snprintf(text + n, sizeof text - n, "  %s %s/s  %s elapsed", rate,
				      *unit ? unit : "units", el);
		if (total > 0 && done < total && n < sizeof text) {
			cmd_progress_duration((total - done) * seconds / done, eta, sizeof eta);
			n += (size_t)snprintf(text + n, sizeof text - n, ", ETA %s", eta);
		}
	}
	if (n >= sizeof text)
		n = sizeof text - 1;
	if (width > 0 && n > (size_t)width)
		n = (size_t)width;
	if (n >= cap)
		n = cap - 1;
	memcpy(buf, text, n);
	buf[n] = '\0';
	return (int)n;
}

static int terminal_width(FILE *f)
{
	struct winsize ws;
	if (ioctl(fileno(f), TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
		return ws.ws_col;
	return 80;
}

void cmd_progress_update(struct cmd_progress *p, double done, const char *label, ...)
{
	if (!p->on)
		return;
	double t = now();
	if (t - p->t0 < CMD_PROGRESS_DELAY)
		return; /* work this short needs no progress line */
	if (t - p->last < 1.0 / CMD_PROGRESS_HZ && !(p->total > 0 && done >= p->total))
		return;
	p->last = t;
	char what[256], line[512];
	va_list ap;
	va_start(ap, label);
	vsnprintf(what, sizeof what, label, ap);
	va_end(ap);
	/* One column short of the width: a line that fills the last column
	 * leaves some terminals' cursor on the next row. */
	cmd_progress_format(line, sizeof line, terminal_width(p->f) - 1, what, done, p->total,
			    t - p->t0, p->unit);
	fprintf(p->f, "\r%s\033[K", line);
	fflush(p->f);
	p->shown = true;
}

void cmd_progress_clear(struct cmd_progress *p)
{
	if (!p->on || !p->shown)
		return;
	fputs("\r\033[K", p->f);
	fflush(p->f);
	p->shown = false;
}
