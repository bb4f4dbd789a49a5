/*
 * bench_ui: keypress-to-screen latency of the lab at full training speed.
 *
 * The lab runs in this process on a pseudo-terminal (80x24 by default, or
 * COLSxROWS from the arguments) with the race's four lanes training at full
 * speed.  A second thread types each key the lab knows and times it from the
 * write to the end of the first frame drawn after the lab handled it (the
 * screen's on_frame hook, called after doupdate).  For n and + it also times
 * the workers' answer: until every lane's snapshot holds the new digit or the
 * figures for the new eps, as seen at a frame; for r, until every lane's
 * snapshot is of the new run (each worker builds it between two steps).  A third thread drains what
 * the lab writes, as a terminal would.  Prints median, 90th percentile and
 * worst per key; the target is under 50 ms for every key.
 */
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <pty.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "sectorlab/lab.h"
#include "sectorlab/ui.h"

#define PRESSES 15

struct bench {
	struct lab *lab;
	int master;
	atomic_long keys;        /* keys the lab has handled, as of the last frame */
	atomic_long frames;
	atomic_int answered;     /* the workers' answer seen at a frame (n, +) */
	atomic_int want_digit;   /* -1: not watching */
	atomic_int want_eps_cents;
	atomic_int want_run;     /* r: every lane's snapshot of this run (-1: not watching) */
	atomic_bool stop;
};

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void nap(double seconds)
{
	struct timespec ts = {(time_t)seconds, (long)((seconds - floor(seconds)) * 1e9)};
	nanosleep(&ts, NULL);
}

/* On the lab's thread, after each frame. */
static void on_frame(void *ctx, long keys)
{
	struct bench *b = ctx;
	atomic_store(&b->keys, keys);
	atomic_fetch_add(&b->frames, 1);
	int digit = atomic_load(&b->want_digit), cents = atomic_load(&b->want_eps_cents);
	int run = atomic_load(&b->want_run);
	if (digit < 0 && cents < 0 && run < 0)
		return;
	static struct job_snapshot s;
	bool all = true;
	for (int i = 0; i < lab_lanes(b->lab) && all; i++) {
		lab_snapshot(b->lab, i, &s);
		if (digit >= 0)
			all = s.example_index == (uint32_t)digit;
		else if (run >= 0)
			all = s.run >= run;
		else
			all = s.have_attack && lroundf(s.attack_eps * 100) == cents;
	}
	if (all)
		atomic_store(&b->answered, 1);
}

static void *drain(void *arg)
{
	struct bench *b = arg;
	char buf[65536];
	while (!atomic_load(&b->stop)) {
		struct pollfd p = {.fd = b->master, .events = POLLIN};
		if (poll(&p, 1, 50) > 0 && read(b->master, buf, sizeof buf) <= 0)
			nap(0.001);
	}
	return NULL;
}

struct key_case {
	const char *name;
	const char *bytes;
	const char *undo;  /* typed (untimed) after each press, e.g. space again */
	int answer;        /* 1: digit, 2: eps, 3: a new run: time the workers' answer too */
};

static const struct key_case cases[] = {
	{"space (pause)", " ", " ", 0},
	{"n (next digit)", "n", NULL, 1},
	{"+ (eps up)", "+", "-", 2},
	{"- (eps down)", "-", "+", 0},
	{"Right (focus)", "\033OC", NULL, 0}, /* xterm's kcuf1 */
	{"f (full width)", "f", "f", 0},
	{"] (faster)", "]", "[", 0},
	{"> (lr x2)", ">", "<", 0},
	{"s (one step)", "s", " ", 0},
	{"e (one epoch)", "e", " ", 0},
	{"m (more epochs)", "m", NULL, 0},
	{"a (designer)", "a", "1", 0},
	{"o (setup)", "o", "\033", 0},
	{"g (ghosts)", "g", "g", 0},
	{"? (help)", "?", "\033", 0},
	{"r (reset)", "r", NULL, 3},
};
#define NCASES ((int)(sizeof cases / sizeof cases[0]))

static double results[NCASES][PRESSES], answers[NCASES][PRESSES];
static double steps_per_second; /* lane 0's, measured before the first reset */

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* Type bytes and wait for the frame after the lab handled them. */
static double press(struct bench *b, const char *bytes)
{
	/* An escape sequence (an arrow key) is one key; else one a byte. */
	long n = bytes[0] == '\033' && bytes[1] ? 1 : (long)strlen(bytes);
	long want = atomic_load(&b->keys) + n;
	double t0 = now();
	if (write(b->master, bytes, strlen(bytes)) < 0)
		return NAN;
	while (atomic_load(&b->keys) < want) {
		if (now() - t0 > 10)
			return NAN;
		nap(0.0002);
	}
	return now() - t0;
}

static void *typist(void *arg)
{
	struct bench *b = arg;
	while (atomic_load(&b->frames) < 20)
		nap(0.01);
	nap(2); /* the lanes at full speed */
	static struct job_snapshot s;
	lab_snapshot(b->lab, 0, &s);
	long step0 = s.step;
	double start = now();
	uint32_t digit = 0;
	for (int c = 0; c < NCASES; c++)
		for (int k = 0; k < PRESSES; k++) {
			nap(0.05 + 0.01 * (k % 5)); /* land at different points of a frame */
			const struct key_case *kc = &cases[c];
			if (kc->bytes[0] == 'r' && k == 0) {
				lab_snapshot(b->lab, 0, &s);
				steps_per_second = (double)(s.step - step0) / (now() - start);
			}
			atomic_store(&b->answered, 0);
			if (kc->answer == 1)
				atomic_store(&b->want_digit, (int)(digit + 1));
			if (kc->answer == 3) {
				lab_snapshot(b->lab, 0, &s);
				atomic_store(&b->want_run, s.run + 1);
			}
			if (kc->answer == 2) {
				int cents = (int)lroundf(lab_controls(b->lab).eps * 100) + 5;
				atomic_store(&b->want_eps_cents, cents);
			}
			double t0 = now();
			results[c][k] = press(b, kc->bytes);
			answers[c][k] = NAN;
			if (kc->answer) {
				while (!atomic_load(&b->answered) && now() - t0 < 10)
					nap(0.0002);
				answers[c][k] = now() - t0;
				atomic_store(&b->want_digit, -1);
				atomic_store(&b->want_eps_cents, -1);
				atomic_store(&b->want_run, -1);
			}
			if (kc->answer == 1)
				digit++;
			if (kc->undo)
				press(b, kc->undo);
		}
	/* q ends the lab: no frame follows it. */
	if (write(b->master, "q", 1) != 1)
		fprintf(stderr, "bench_ui: cannot type q\n");
	return NULL;
}

static void report(FILE *out, const char *name, double *v)
{
	qsort(v, PRESSES, sizeof *v, cmp);
	fprintf(out, "  %-24s median %6.1f ms   p90 %6.1f ms   worst %6.1f ms%s\n", name,
		1e3 * v[PRESSES / 2], 1e3 * v[PRESSES * 9 / 10], 1e3 * v[PRESSES - 1],
		v[PRESSES - 1] < 0.05 ? "" : "   (over 50 ms)");
}

int main(int argc, char **argv)
{
	int cols = argc > 1 ? atoi(argv[1]) : 80, rows = argc > 2 ? atoi(argv[2]) : 24;
	struct winsize ws = {.ws_row = (unsigned short)rows, .ws_col = (unsigned short)cols};
	int master, slave;
	if (openpty(&master, &slave, NULL, NULL, &ws) != 0) {
		perror("bench_ui: openpty");
		return 1;
	}
	setenv("TERM", "xterm-256color", 1);
	FILE *out = fdopen(dup(STDOUT_FILENO), "w");
	fflush(stdout);
	dup2(slave, STDIN_FILENO);
	dup2(slave, STDOUT_FILENO);

	struct train_config base = train_config_default();
	base.epochs = 100000;
	struct lab_config cfg = {.nlanes = LAB_RACE_LANES, .eps = 0.1f, .pace = 0, .eval_n = 1000,
				 .cert_radius = LAB_CERT_RADIUS};
	static const enum lab_lane_kind kinds[LAB_RACE_LANES] = {
		LAB_LANE_VANILLA, LAB_LANE_L2, LAB_LANE_SPNORM, LAB_LANE_MARGIN};
	struct sl_error err;
	struct sl_dataset train, test;
	if (data_load(DATA_MNIST, "data", true, &train, &err) != SL_OK ||
	    data_load(DATA_MNIST, "data", false, &test, &err) != SL_OK) {
		fprintf(out, "bench_ui: %s\n", err.msg);
		return 1;
	}
	base.holdout = train_default_holdout(&train);
	for (int i = 0; i < LAB_RACE_LANES; i++)
		if (lab_lane_make(kinds[i], &base, &base.caps, &cfg.lane[i], &err) != SL_OK) {
			fprintf(out, "bench_ui: %s\n", err.msg);
			return 1;
		}
	struct bench b = {.master = master};
	atomic_init(&b.want_digit, -1);
	atomic_init(&b.want_eps_cents, -1);
	atomic_init(&b.want_run, -1);
	if (lab_new(&cfg, &train, &test, &b.lab, &err) != SL_OK) {
		fprintf(out, "bench_ui: %s\n", err.msg);
		return 1;
	}
	struct ui_context ctx = {.title = "bench", .data_source = "data",
				 .arch = cfg.lane[0].train.arch, .editor_restarts = true,
				 .on_frame = on_frame, .frame_ctx = &b};
	pthread_t drainer, keys;
	pthread_create(&drainer, NULL, drain, &b);
	pthread_create(&keys, NULL, typist, &b);
	double t0 = now();
	int rc = ui_lab_run(b.lab, &ctx);
	double seconds = now() - t0;
	pthread_join(keys, NULL);
	lab_free(b.lab);
	atomic_store(&b.stop, true);
	close(slave);
	close(master);
	pthread_join(drainer, NULL);

	fprintf(out, "bench_ui: keypress to screen, the race (%d lanes at full speed), %dx%d,\n"
		     "  %d presses a key, %.0f frames/s; lane 1 trained %.0f steps/s meanwhile\n",
		LAB_RACE_LANES, cols, rows, PRESSES, atomic_load(&b.frames) / seconds,
		steps_per_second);
	for (int c = 0; c < NCASES; c++)
		report(out, cases[c].name, results[c]);
	fprintf(out, "  the workers' answer, seen at a frame:\n");
	for (int c = 0; c < NCASES; c++)
		if (cases[c].answer)
			report(out, cases[c].name, answers[c]);
	fclose(out);
	return rc;
}
