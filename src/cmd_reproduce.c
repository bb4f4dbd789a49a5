/*
 * cmd_reproduce: `sectorlab reproduce`, the paper's Figures 1 and 2 rebuilt
 * from this program's own runs.
 *
 * A run is a list of stages, each with one output file in DIR that is
 * written atomically when the stage is done: train one model for one seed
 * (its checkpoint), certify it (its certificate and certified-accuracy
 * curve), sweep it with one attack (its CSV).  A stage whose file exists is
 * never redone, so an interrupted run resumes from the last finished stage;
 * a model interrupted mid-training resumes from its last finished epoch,
 * whose whole training state (trainstate.h) is kept beside the checkpoint
 * it will become (models/KEY-seedN.partial.safetensors, removed once the
 * model is saved), and trains on bit for bit as if never stopped.  The
 * tables and figures at the end are always rebuilt from the stage files.
 * DIR/plan.txt pins the settings a directory was started with, so a resumed
 * run cannot mix budgets.  Everything here is built from the core (trainer,
 * attack_sweep, certify, plot) and the command layer's shared helpers.
 */
#include <errno.h>
#include <stdarg.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "sectorlab/arch.h"
#include "sectorlab/attack.h"
#include "sectorlab/caps.h"
#include "sectorlab/certify.h"
#include "sectorlab/cmd.h"
#include "sectorlab/cmd_progress.h"
#include "sectorlab/driver.h"
#include "sectorlab/interrupt.h"
#include "sectorlab/io.h"
#include "sectorlab/plot.h"
#include "sectorlab/train.h"
#include "sectorlab/trainstate.h"

#define MAX_EPS 32
#define MAX_SEEDS 10
#define NRADII 31 /* certified accuracy at radius 0, 0.05, ..., 1.5 */

static void usage(FILE *f)
{
	fputs("usage: sectorlab reproduce --figure 1|2 [options]\n"
	      "\n"
	      "Rebuild the paper's Figure 1 (MNIST, the mlp) or Figure 2 (CIFAR-10, the\n"
	      "AlexNet) from this program's own runs: train vanilla, L2 and spnorm with\n"
	      "the certified caps at (nu, delta) = (-2, 0.4), spnorm with the caps the\n"
	      "authors' code hard-codes (labelled uncertified) and, beyond the paper,\n"
	      "the certified caps trained with the Lipschitz-margin loss (lmt, tau 50,\n"
	      "R 0.6), all on the same seeds and batches; attack each with the authors'\n"
	      "recipe (paper-code: L2 FGM and PGD, 100 steps of 2 eps/100, predicted\n"
	      "labels, no clipping) and with the textbook L-infinity FGSM and PGD (40\n"
	      "steps, true labels, clipped); certify each at (-2, 0.4).  Writes to DIR:\n"
	      "figure<F>.csv (every point), figure<F>-l2.png and figure<F>-linf.png\n"
	      "(accuracy on the attacked test images against eps, one panel per\n"
	      "attack, the spread over seeds as a band), figure<F>-certified.png and\n"
	      ".csv (certified accuracy against the L2 radius), certificates/ and\n"
	      "models/.\n"
	      "\n"
	      "  --figure 1|2      1: mlp on MNIST; 2: alexnet on CIFAR-10 (alexnet-lite\n"
	      "                    with the quick budget)\n"
	      "  --budget NAME     quick (default): the mlp for 10 epochs (a minute or so) on\n"
	      "                    whatever --data-dir holds (the embedded sample by\n"
	      "                    default), 500 test images, 7 eps per norm; alexnet-lite\n"
	      "                    for 1 epoch on 200 images.  full: the paper's settings\n"
	      "                    on the full dataset: the mlp for 200 epochs with Adam\n"
	      "                    1e-3, 11 eps per norm on the first 2,000 test images,\n"
	      "                    certified on all; the alexnet (SGD 0.01, momentum 0.9)\n"
	      "                    for as many epochs as fit --hours (after the time\n"
	      "                    the attacks will take), attacked on 100 test images\n"
	      "                    at 5 eps per norm, certified on all\n"
	      "  --out DIR         where everything goes (default reproduce-fig<F>-<budget>);\n"
	      "                    running again with the same DIR resumes: finished stages\n"
	      "                    are kept, and a model interrupted mid-training goes on\n"
	      "                    from its last finished epoch exactly as if it had never\n"
	      "                    stopped (its whole training state is kept after every\n"
	      "                    epoch in models/KEY-seedN.partial.safetensors; resume\n"
	      "                    with the same --threads)\n"
	      "  --seeds N         seeds 1..N for every model (default 1; at most 10)\n"
	      "  --hours H         full figure 2: the time for the whole figure (default 3);\n"
	      "                    the epochs are chosen from the first epoch's time and\n"
	      "                    printed on the figures and in the CSV\n"
	      "  --data-dir DIR    where the data is (default: $SECTORLAB_DATA, else data/)\n"
	      "  --threads N       threads (default: one per processor)\n"
	      "  --quiet           no live progress line (one line per stage is printed)\n"
	      "  -h, --help        this help\n"
	      "\n"
	      "Options are written in full (no abbreviations such as --fig for --figure).\n"
	      "Exit status: 0 done, 1 a failure, 2 bad usage, 130/143 stopped by\n"
	      "Ctrl-C/SIGTERM (run again with the same --out to resume).\n",
	      f);
}

/* ---- What a figure holds ------------------------------------------------ */

struct repro_model {
	const char *key;       /* file names and the CSV's mode column */
	const char *label;     /* legends */
	enum train_mode mode;
	const char *caps;      /* spnorm: "certified" or "authors" */
	bool lmt;              /* trained with the Lipschitz-margin loss (loss.h's
				  defaults for certified caps), not plain cross-entropy */
};

static const struct repro_model models[] = {
	{"vanilla", "vanilla", TRAIN_VANILLA, NULL, false},
	{"l2", "L2 (0.005 sum ||W||_F^2)", TRAIN_L2, NULL, false},
	{"spnorm-certified", "spnorm, certified caps (-2, 0.4)", TRAIN_SPNORM, "certified", false},
	{"spnorm-authors", "spnorm, authors' caps (uncertified)", TRAIN_SPNORM, "authors", false},
	/* Not in the paper: the certified caps with a loss that suits them. */
	{"spnorm-lmt", "spnorm, certified caps, lmt loss", TRAIN_SPNORM, "certified", true},
};
#define NMODELS ((int)(sizeof models / sizeof models[0]))

enum { A_FGM_L2, A_PGD_L2, A_FGSM_INF, A_PGD_INF, NATTACKS };
/* Kinds of stage: training, certifying, then one per attack. */
enum { K_TRAIN, K_CERTIFY, K_ATTACK, NKINDS = K_ATTACK + NATTACKS };
static const char *const attack_key[NATTACKS] = {"fgm-l2", "pgd-l2", "fgsm-linf", "pgd-linf"};
static const char *const attack_title[NATTACKS] = {
	"FGM (L2), the authors' recipe", "PGD (L2), the authors' recipe",
	"FGSM (L-inf), textbook", "PGD (L-inf), textbook"};

static struct attack_recipe attack_of(int a)
{
	struct attack_recipe r;
	switch (a) {
	case A_FGM_L2: /* paper-code's one-step form */
		r = attack_recipe_fgm(0);
		r.labels = ATTACK_LABELS_PRED;
		r.clip = false;
		return r;
	case A_PGD_L2: {
		struct sl_error err;
		attack_preset("paper-code", &r, &err); /* a known preset: cannot fail */
		return r;
	}
	case A_FGSM_INF:
		return attack_recipe_fgsm(0);
	default:
		return attack_recipe_pgd(ATTACK_NORM_INF, 0, 40);
	}
}

struct budget {
	const char *name;
	int epochs;          /* 0: from --hours */
	int n;               /* test images attacked */
	int cert_n;          /* test images certified (0: all) */
	int neps_l2, neps_inf;
	double eps_l2_max, eps_inf_max;
	bool needs_full;     /* refuse a data set smaller than the real one */
};

/* quick and full are the user's; "test" (not in --help) is the test suite's
 * smallest run of the same code. */
static const struct budget budgets_mlp[] = {
	{"quick", 10, 500, 500, 7, 7, 0.75, 0.3, false},
	{"full", 200, 2000, 0, 11, 11, 0.75, 0.3, true},
	{"test", 1, 100, 100, 4, 4, 0.75, 0.3, false},
};
static const struct budget budgets_alexnet[] = {
	{"quick", 1, 200, 200, 4, 4, 0.75, 0.06, false},
	{"full", 0, 100, 0, 5, 5, 0.75, 0.06, true},
	{"test", 1, 20, 20, 3, 3, 0.75, 0.06, false},
};

/* ---- Options ------------------------------------------------------------ */

struct repro_opts {
	long figure, seeds, threads;
	double hours;
	const char *budget, *out, *data_dir;
	bool quiet;
};

enum { O_FIGURE = 256, O_BUDGET, O_OUT, O_SEEDS, O_HOURS, O_DATADIR, O_THREADS, O_QUIET };
static const struct option repro_options[] = {
	{"figure", required_argument, 0, O_FIGURE},
	{"budget", required_argument, 0, O_BUDGET},
	{"out", required_argument, 0, O_OUT},
	{"seeds", required_argument, 0, O_SEEDS},
	{"hours", required_argument, 0, O_HOURS},
	{"data-dir", required_argument, 0, O_DATADIR},
	{"threads", required_argument, 0, O_THREADS},
	{"quiet", no_argument, 0, O_QUIET},
	{"help", no_argument, 0, 'h'},
	{0, 0, 0, 0},
};

static int bad_usage(const char *msg)
{
	if (msg)
		fprintf(stderr, "sectorlab reproduce: %s\n", msg);
	fputs("Try 'sectorlab reproduce --help'.\n", stderr);
	return 2;
}

static int parse(int argc, char **argv, struct repro_opts *o)
{
	int c, bad = 0;
	bool hours_given = false;
	optind = 0; /* glibc: start afresh, whatever an earlier parse left */
	while ((c = cmd_getopt("reproduce", argc, argv, repro_options)) != -1) {
		switch (c) {
		case O_FIGURE: bad |= cmd_parse_long("--figure", optarg, 1, 2, &o->figure); break;
		case O_BUDGET: o->budget = optarg; break;
		case O_OUT: o->out = optarg; break;
		case O_SEEDS: bad |= cmd_parse_long("--seeds", optarg, 1, MAX_SEEDS, &o->seeds); break;
		case O_HOURS:
			bad |= cmd_parse_double("--hours", optarg, CMD_ABOVE(0, 1000), &o->hours);
			hours_given = true;
			break;
		case O_DATADIR: o->data_dir = optarg; break;
		case O_THREADS: bad |= cmd_parse_long("--threads", optarg, 1, 256, &o->threads); break;
		case O_QUIET: o->quiet = true; break;
		case 'h': usage(stdout); return 1;
		default: bad = 1; break;
		}
	}
	if (bad)
		return bad_usage(NULL);
	if (optind < argc) {
		char msg[256];
		snprintf(msg, sizeof msg, "unexpected argument '%s'", argv[optind]);
		return bad_usage(msg);
	}
	if (o->figure == 0)
		return bad_usage("--figure 1 or --figure 2 is required");
	if (strcmp(o->budget, "quick") != 0 && strcmp(o->budget, "full") != 0 &&
	    strcmp(o->budget, "test") != 0) {
		char msg[256];
		snprintf(msg, sizeof msg, "--budget takes quick or full, got '%s'", o->budget);
		return bad_usage(msg);
	}
	if (hours_given && (o->figure != 2 || strcmp(o->budget, "full") != 0))
		return bad_usage("--hours applies to --figure 2 --budget full only");
	return 0;
}

/* ---- The run ------------------------------------------------------------ */

struct run {
	const struct repro_opts *o;
	const struct budget *b;
	enum model_id model;
	struct arch arch;           /* the model's, fitted to the data */
	enum data_kind kind;
	const char *dir;
	int epochs;                 /* planned; 0 until decided (full figure 2) */
	double eps_l2[MAX_EPS], eps_inf[MAX_EPS];
	struct sl_dataset train, test;
	bool skip[NMODELS];         /* models this network cannot have (no authors' caps) */
	int nstages, stage;         /* for the progress line */
	/* Per kind of stage (training, certifying, each attack): stages left,
	 * and those run here with their time, for an ETA that knows training
	 * takes longer than certifying. */
	int left[NKINDS], ran[NKINDS];
	double spent[NKINDS];
	struct cmd_progress progress;
	struct timespec t0;
};

static double since(const struct timespec *t0)
{
	struct timespec t1;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (double)(t1.tv_sec - t0->tv_sec) + (double)(t1.tv_nsec - t0->tv_nsec) * 1e-9;
}

static void path_of(const struct run *r, char *buf, size_t cap, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static void path_of(const struct run *r, char *buf, size_t cap, const char *fmt, ...)
{
	int n = snprintf(buf, cap, "%s/", r->dir);
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf + n, cap - (size_t)n, fmt, ap);
	va_end(ap);
}

static bool exists(const char *path)
{
	return access(path, F_OK) == 0;
}

static int make_dir(const char *path)
{
	if (mkdir(path, 0777) == 0 || errno == EEXIST) {
		struct stat s;
		if (stat(path, &s) == 0 && S_ISDIR(s.st_mode))
			return 0;
	}
	fprintf(stderr, "sectorlab reproduce: cannot create the directory %s: %s\n", path,
		errno == EEXIST ? "a file of that name is in the way" : strerror(errno));
	return -1;
}

/* Test images attacked, and certified. */
static int attack_n(const struct run *r)
{
	return r->b->n < (int)r->test.n ? r->b->n : (int)r->test.n;
}

static int certify_n(const struct run *r)
{
	return r->b->cert_n > 0 && r->b->cert_n < (int)r->test.n ? r->b->cert_n : (int)r->test.n;
}

static int eps_of(const struct run *r, int a, float *eps)
{
	bool l2 = a == A_FGM_L2 || a == A_PGD_L2;
	int n = l2 ? r->b->neps_l2 : r->b->neps_inf;
	for (int i = 0; i < n; i++)
		eps[i] = (float)(l2 ? r->eps_l2[i] : r->eps_inf[i]);
	return n;
}

/* A stage's work in passes of one image through the network: a training
 * example (forward, backward and update) counts one, an attack step on one
 * image one, certifying an image a third (a forward pass).  Training's is
 * unknown (0) until the epochs are planned. */
static double stage_units(const struct run *r, int kind)
{
	if (kind == K_TRAIN) {
		long holdout = train_default_holdout(&r->train);
		return (double)r->epochs * (double)((long)r->train.n - holdout);
	}
	if (kind == K_CERTIFY)
		return certify_n(r) / 3.0;
	float eps[MAX_EPS];
	int a = kind - K_ATTACK, steps = attack_of(a).steps;
	return (double)attack_n(r) * (steps > 0 ? steps : 1) * eps_of(r, a, eps);
}

/* Seconds a stage of this kind should take: the mean of its kind's stages
 * run so far; for a kind not run yet, its work at the price per unit of the
 * stages run (or, when their work is unknown, their mean time). */
static double stage_seconds(const struct run *r, int kind)
{
	if (r->ran[kind])
		return r->spent[kind] / r->ran[kind];
	int n = 0;
	double all = 0, units = 0, mine = stage_units(r, kind);
	for (int k = 0; k < NKINDS; k++) {
		n += r->ran[k];
		all += r->spent[k];
		units += r->ran[k] * stage_units(r, k);
	}
	if (n == 0)
		return 0;
	return units > 0 && mine > 0 ? mine * all / units : all / n;
}

/* Seconds the stages left should take. */
static double eta_seconds(const struct run *r)
{
	double eta = 0;
	for (int k = 0; k < NKINDS; k++)
		eta += r->left[k] * stage_seconds(r, k);
	return eta;
}

/* A stage finished: one permanent line with its time and the run's ETA. */
static void stage_done(struct run *r, int kind, const char *what, double seconds)
{
	r->stage++;
	r->left[kind]--;
	r->ran[kind]++;
	r->spent[kind] += seconds;
	cmd_progress_clear(&r->progress);
	char eta[32] = "";
	if (r->stage < r->nstages) {
		char d[16];
		cmd_progress_duration(eta_seconds(r), d, sizeof d);
		snprintf(eta, sizeof eta, ", ETA %s", d);
	}
	fprintf(stderr, "[%d/%d] %s (%.1f s%s)\n", r->stage, r->nstages, what, seconds, eta);
}

/* A stage found done by an earlier run. */
static void stage_kept(struct run *r, int kind)
{
	r->stage++;
	r->left[kind]--;
}

/* A stage starts: the progress line's clock, percentage and ETA are the
 * stage's own (a rate in stages per second would mean nothing). */
static void stage_begin(struct run *r)
{
	cmd_progress_start(&r->progress, NULL, 1);
}

/* The progress line inside a stage of this kind, frac of it done: the
 * stage, its share done and the whole run's ETA first (they survive a
 * narrow terminal), then what the stage is doing. */
static void stage_progress(struct run *r, int kind, double frac, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static void stage_progress(struct run *r, int kind, double frac, const char *fmt, ...)
{
	if (!r->progress.on)
		return;
	char what[256], eta[32] = "";
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(what, sizeof what, fmt, ap);
	va_end(ap);
	int n = 0;
	for (int k = 0; k < NKINDS; k++)
		n += r->ran[k];
	if (n > 0) {
		double left = eta_seconds(r) - frac * stage_seconds(r, kind);
		char d[16];
		cmd_progress_duration(left > 0 ? left : 0, d, sizeof d);
		snprintf(eta, sizeof eta, ", ETA %s", d);
	}
	cmd_progress_update(&r->progress, frac, "[%d/%d %d%%%s] %s", r->stage + 1, r->nstages,
			    (int)(100 * frac), eta, what);
}

/* ---- Training ----------------------------------------------------------- */

/* The run's plan: settings that must not change when a run is resumed. */
static int plan_check(struct run *r)
{
	char path[4096], want[256];
	path_of(r, path, sizeof path, "plan.txt");
	snprintf(want, sizeof want, "figure %ld budget %s model %s seeds %ld\n", r->o->figure,
		 r->b->name, model_name(r->model), r->o->seeds);
	FILE *f = fopen(path, "r");
	if (f) {
		char line[256] = "";
		int epochs = 0;
		if (!fgets(line, sizeof line, f) || fscanf(f, "epochs %d", &epochs) != 1)
			epochs = -1;
		fclose(f);
		if (strcmp(line, want) != 0 || epochs < 0) {
			line[strcspn(line, "\n")] = '\0';
			fprintf(stderr, "sectorlab reproduce: %s holds a run with other settings "
					"('%s'); use another --out\n", r->dir, line);
			return 2;
		}
		if (epochs > 0)
			r->epochs = epochs;
		return 0;
	}
	return 0;
}

static sl_status plan_write(struct run *r, struct sl_error *err)
{
	char path[4096], text[512];
	path_of(r, path, sizeof path, "plan.txt");
	int n = snprintf(text, sizeof text, "figure %ld budget %s model %s seeds %ld\nepochs %d\n",
			 r->o->figure, r->b->name, model_name(r->model), r->o->seeds, r->epochs);
	return io_write_file(path, text, (size_t)n, err);
}

/* Full figure 2: as many epochs as fit the hours, from the first epoch's
 * time.  The attacks are planned first: each attack step on one image is a
 * forward and backward pass, priced at what a training example cost in the
 * first epoch (which also updates the weights, so the price is an upper
 * bound); training gets what is left, less 10% for the caps' power
 * iterations (the first epoch was vanilla's) and the certificates. */
static int epochs_for_hours(const struct run *r, double epoch_seconds, double examples)
{
	int nm = 0;
	for (int m = 0; m < NMODELS; m++)
		nm += !r->skip[m];
	double passes = 0;
	for (int a = 0; a < NATTACKS; a++)
		passes += stage_units(r, K_ATTACK + a);
	double runs = nm * (double)r->o->seeds;
	double attacks = runs * passes * epoch_seconds / (examples > 0 ? examples : 1);
	double budget = 0.9 * (r->o->hours * 3600 - attacks);
	double e = floor(budget / (epoch_seconds * runs));
	return e < 1 ? 1 : e > 200 ? 200 : (int)e;
}

static int train_config_of(const struct run *r, int m, int seed, struct train_config *cfg,
			   struct caps_plan *caps, char *why, size_t why_cap)
{
	*cfg = train_config_for(&r->arch);
	cfg->mode = models[m].mode;
	cfg->loss = models[m].lmt ? loss_config_certified() : loss_config_plain();
	cfg->seed = (uint64_t)seed;
	cfg->epochs = r->epochs;
	cfg->holdout = train_default_holdout(&r->train);
	struct cmd_caps_request req = {.nu = NAN, .delta = NAN};
	if (models[m].caps && strcmp(models[m].caps, "authors") == 0)
		req.caps = "authors";
	return cmd_spnorm_caps("reproduce", &cfg->arch, &req, cfg, caps, why, why_cap);
}

struct train_hook {
	struct run *r;
	struct timespec t0;
	const char *partial; /* where the training state goes after each epoch */
	int saved;           /* the epoch it holds (0: none) */
};

/* After each epoch: the first one of a run planned by --hours fixes the
 * epochs for every model; then the training state is kept unless the
 * model is done (its checkpoint follows). */
static sl_status epoch_done(void *ctx, struct trainer *t, const struct epoch_report *rep,
			    struct sl_error *err)
{
	struct train_hook *h = ctx;
	struct run *r = h->r;
	(void)rep;
	if (r->epochs == 0) {
		r->epochs = epochs_for_hours(r, since(&h->t0),
					     (double)trainer_steps_per_epoch(t) * t->cfg.batch);
		t->cfg.epochs = r->epochs;
		sl_status st = plan_write(r, err);
		cmd_progress_clear(&r->progress);
		fprintf(stderr, "the first epoch took %.0f s: %d epoch%s per model fit %.3g hours\n",
			since(&h->t0), r->epochs, r->epochs == 1 ? "" : "s", r->o->hours);
		if (st != SL_OK)
			return st;
	}
	if (t->epoch >= t->cfg.epochs)
		return SL_OK;
	sl_status st = trainstate_save(t, h->partial, err);
	if (st == SL_OK)
		h->saved = t->epoch;
	return st;
}

/* Remove a training state its model no longer needs (none: nothing to do). */
static sl_status remove_partial(const char *partial, struct sl_error *err)
{
	if (unlink(partial) != 0 && errno != ENOENT)
		return status_set(err, SL_ERR_IO, "cannot remove %s: %s", partial, strerror(errno));
	return SL_OK;
}

static sl_status train_stage(struct run *r, int m, int seed, struct sl_error *err)
{
	char path[4096], partial[4096];
	path_of(r, path, sizeof path, "models/%s-seed%d.safetensors", models[m].key, seed);
	path_of(r, partial, sizeof partial, "models/%s-seed%d.partial.safetensors", models[m].key,
		seed);
	if (exists(path)) {
		stage_kept(r, K_TRAIN);
		/* Stopped between saving the model and removing its state. */
		return remove_partial(partial, err);
	}
	struct train_config cfg;
	struct caps_plan caps;
	char why[256];
	if (train_config_of(r, m, seed, &cfg, &caps, why, sizeof why) != 0)
		return status_set(err, SL_ERR_ARG, "%s: %s", models[m].key, why);
	if (cfg.epochs == 0)
		cfg.epochs = 200; /* decided after the first epoch */
	struct trainer *t = NULL;
	sl_status st = trainer_new(&cfg, &r->train, &r->test, &t, err);
	if (st != SL_OK)
		return st;
	struct train_hook hook = {.r = r, .partial = partial};
	if (exists(partial)) {
		if ((st = trainstate_load(t, partial, err)) != SL_OK) {
			char said[sizeof err->msg];
			snprintf(said, sizeof said, "%s", err->msg);
			st = status_set(err, st, "%s; delete it to train %s, seed %d from the start",
					said, models[m].key, seed);
			goto out;
		}
		cmd_progress_clear(&r->progress);
		fprintf(stderr, "resuming %s, seed %d from epoch %d (of %d), as it was saved in %s\n",
			models[m].key, seed, t->epoch, t->cfg.epochs, partial);
		hook.saved = t->epoch;
	}
	clock_gettime(CLOCK_MONOTONIC, &hook.t0);
	stage_begin(r);
	long spe = trainer_steps_per_epoch(t);
	struct driver drv;
	const struct driver_config dc = {.on_epoch = epoch_done, .ctx = &hook};
	driver_init(&drv, t, &dc);
	while (!driver_finished(&drv)) {
		if ((st = interrupt_check(err)) != SL_OK)
			goto out;
		struct driver_step_info info;
		if ((st = driver_step(&drv, &info, err)) != SL_OK)
			goto out;
		double frac = ((double)t->epoch * spe + (double)(t->step - (long)t->epoch * spe)) /
			      ((double)t->cfg.epochs * spe);
		stage_progress(r, K_TRAIN, frac < 1 ? frac : 1,
			       "training %s, seed %d: epoch %d/%d", models[m].key, seed,
			       t->epoch + !driver_in_epoch_end(&drv), t->cfg.epochs);
	}
	double acc, loss;
	if (t->epoch == 0 && (st = trainer_settle_caps(t, err)) != SL_OK)
		goto out;
	if ((st = trainer_evaluate(t, &r->test, 0, &acc, &loss, err)) != SL_OK)
		goto out;
	if ((st = cmd_save_checkpoint(t, r->kind, acc, path, err)) != SL_OK ||
	    (st = remove_partial(partial, err)) != SL_OK)
		goto out;
	char what[256];
	snprintf(what, sizeof what, "trained %s, seed %d, %d epochs: test accuracy %.2f%%",
		 models[m].key, seed, t->epoch, 100 * acc);
	stage_done(r, K_TRAIN, what, since(&hook.t0));
out:
	if (st == SL_ERR_CANCELLED && hook.saved > 0) {
		char said[sizeof err->msg];
		snprintf(said, sizeof said, "%s", err->msg);
		status_set(err, st, "%s (%s, seed %d keeps its epoch %d in %s)", said, models[m].key,
			   seed, hook.saved, partial);
	}
	trainer_free(t);
	return st;
}

/* ---- Attacks ------------------------------------------------------------ */

struct sweep_ctx {
	struct run *r;
	int m, seed, a, neps;
};

static sl_status on_batch(void *ctx, const struct attack_progress *p, struct sl_error *err)
{
	struct sweep_ctx *c = ctx;
	if (interrupt_check(err) != SL_OK)
		return err->code;
	double frac = ((double)p->eps_index * p->n + p->done) / ((double)c->neps * p->n);
	stage_progress(c->r, K_ATTACK + c->a, frac, "%s on %s, seed %d: eps %g, %d/%d images",
		       attack_key[c->a], models[c->m].key, c->seed, p->eps, p->done, p->n);
	return SL_OK;
}

static sl_status load_model(const struct run *r, int m, int seed, struct nn_net **net,
			    struct sl_error *err)
{
	char path[4096];
	path_of(r, path, sizeof path, "models/%s-seed%d.safetensors", models[m].key, seed);
	struct checkpoint_info info = {0};
	sl_status st = checkpoint_load(path, 500, net, &info, err);
	checkpoint_info_free(&info);
	return st;
}

static sl_status sweep_stage(struct run *r, int m, int seed, int a, struct sl_error *err)
{
	char path[4096];
	path_of(r, path, sizeof path, "stages/%s-seed%d-%s.csv", models[m].key, seed,
		attack_key[a]);
	if (exists(path)) {
		stage_kept(r, K_ATTACK + a);
		return SL_OK;
	}
	struct timespec t0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	stage_begin(r);
	struct nn_net *net = NULL;
	sl_status st = load_model(r, m, seed, &net, err);
	if (st != SL_OK)
		return st;
	struct attack_recipe rec = attack_of(a);
	float eps[MAX_EPS];
	int neps = eps_of(r, a, eps);
	struct attack_result res[MAX_EPS];
	struct sweep_ctx ctx = {r, m, seed, a, neps};
	int n = attack_n(r);
	st = attack_sweep(net, &r->test, n, &rec, eps, neps, on_batch, &ctx, res, err);
	if (st == SL_OK) {
		char text[8192];
		size_t len = (size_t)snprintf(text, sizeof text,
					      "eps,n,clean_accuracy,robust_accuracy,"
					      "adversarial_accuracy,flags\n");
		for (int i = 0; i < neps && len < sizeof text; i++) {
			char e[32];
			attack_format_float(res[i].eps, e, sizeof e);
			len += (size_t)snprintf(text + len, sizeof text - len, "%s,%d,%.6f,%.6f,%.6f,%u\n",
						e, res[i].n, res[i].clean_accuracy,
						res[i].robust_accuracy, res[i].adv_accuracy,
						res[i].flags);
		}
		st = io_write_file(path, text, len, err);
	}
	if (st == SL_OK) {
		char what[256];
		snprintf(what, sizeof what,
			 "%s on %s, seed %d: accuracy %.1f%% at eps %g, %.1f%% at eps %g",
			 attack_key[a], models[m].key, seed, 100 * res[0].adv_accuracy, res[0].eps,
			 100 * res[neps - 1].adv_accuracy, res[neps - 1].eps);
		stage_done(r, K_ATTACK + a, what, since(&t0));
	}
	nn_free(net);
	return st;
}

/* ---- Certificates ------------------------------------------------------- */

static double radius_at(int k)
{
	return 0.05 * k;
}

static sl_status certify_stage(struct run *r, int m, int seed, struct sl_error *err)
{
	char path[4096], curve[4096];
	path_of(r, path, sizeof path, "certificates/%s-seed%d.txt", models[m].key, seed);
	path_of(r, curve, sizeof curve, "stages/%s-seed%d-certified.csv", models[m].key, seed);
	if (exists(path) && exists(curve)) {
		stage_kept(r, K_CERTIFY);
		return SL_OK;
	}
	struct timespec t0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	stage_begin(r);
	struct nn_net *net = NULL;
	double *radius = NULL;
	bool *correct = NULL;
	char *text = NULL;
	size_t len = 0;
	FILE *mem = NULL;
	sl_status st = load_model(r, m, seed, &net, err);
	if (st != SL_OK)
		return st;
	struct certify_options co = {.nu = -2, .delta = 0.4, .objective = SECTOR_OBJ_PRODUCT};
	struct certificate c;
	if ((st = certify_network(net, &co, &c, err)) != SL_OK)
		goto out;
	int n = certify_n(r);
	radius = malloc(sizeof(double) * (size_t)n);
	correct = malloc(sizeof(bool) * (size_t)n);
	if (!radius || !correct) {
		st = status_set(err, SL_ERR_NOMEM, "certified radii");
		goto out;
	}
	if ((st = certify_radii(net, &r->test, n, c.gamma, radius, correct, &n, err)) != SL_OK)
		goto out;
	/* The curve, then the certificate a person reads. */
	mem = open_memstream(&text, &len);
	if (!mem) {
		st = status_set(err, SL_ERR_NOMEM, "certificate");
		goto out;
	}
	fprintf(mem, "radius,certified_accuracy,gamma,gamma_sector,gamma_product,sector_certified\n");
	for (int k = 0; k < NRADII; k++)
		fprintf(mem, "%.2f,%.6f,%.9g,%.9g,%.9g,%s\n", radius_at(k),
			certify_accuracy_at(radius, correct, n, radius_at(k)), c.gamma,
			c.gamma_sector, c.gamma_product, c.sector_certified ? "true" : "false");
	fclose(mem);
	mem = NULL;
	if ((st = io_write_file(curve, text, len, err)) != SL_OK)
		goto out;
	free(text);
	text = NULL;
	mem = open_memstream(&text, &len);
	if (!mem) {
		st = status_set(err, SL_ERR_NOMEM, "certificate");
		goto out;
	}
	fprintf(mem, "certificate of %s, seed %d (%s, %s) at (nu, delta) = (-2, 0.4)\n",
		models[m].label, seed, model_name(r->model), r->b->name);
	fprintf(mem, "sector of the network: [%.6f, %.6f]; Theorem 3 allocation %s\n",
		c.sector_lo, c.sector_hi, c.allocated ? "exists" : "does not exist");
	fprintf(mem, "%-8s %12s %12s %12s %12s  %s\n", "layer", "||W||_2", "cap rho_i", "nu_i",
		"delta_i", "Theorem 4");
	for (int j = 0; j < c.nlayers; j++) {
		const struct certify_layer *l = &c.layer[j];
		if (l->kind == SECTOR_LAYER_POOL)
			fprintf(mem, "%-8s %12.6f %12s %12.6f %12.6f  pooling, %g-Lipschitz\n",
				l->name, l->k, "-", l->nu, l->delta, l->k);
		else
			fprintf(mem, "%-8s %12.6f %12.6f %12.6f %12.6f  %s\n", l->name, l->sigma,
				l->rho, l->nu, l->delta, l->within ? "within" : "OVER its cap");
	}
	fprintf(mem, "sector certified: %s%s%s\n", c.sector_certified ? "yes" : "no",
		c.sector_certified ? "" : ": ", c.sector_certified ? "" : c.reason);
	if (c.sector_certified)
		fprintf(mem, "Lipschitz bounds: sector gamma (k_hi) %.6g, product of norms %.6g; "
			     "used %.6g\n", c.gamma_sector, c.gamma_product, c.gamma);
	else
		fprintf(mem, "Lipschitz bound used: the product of norms %.6g (no certified "
			     "sector)\n", c.gamma_product);
	fprintf(mem, "on the first %d test images: clean %.2f%%; certified (L2, pixels x/255 - 0.5) "
		     "at 0.1: %.2f%%, 0.25: %.2f%%, 0.5: %.2f%%, 1.0: %.2f%%\n",
		n, 100 * certify_accuracy_at(radius, correct, n, -1),
		100 * certify_accuracy_at(radius, correct, n, 0.1),
		100 * certify_accuracy_at(radius, correct, n, 0.25),
		100 * certify_accuracy_at(radius, correct, n, 0.5),
		100 * certify_accuracy_at(radius, correct, n, 1.0));
	cmd_print_rounding_lost(mem, certify_rounding_lost(radius, correct, n));
	fclose(mem);
	mem = NULL;
	if ((st = io_write_file(path, text, len, err)) != SL_OK)
		goto out;
	char what[256];
	snprintf(what, sizeof what, "certified %s, seed %d: gamma %.4g (%s), %.1f%% certified at 0.5",
		 models[m].key, seed, c.gamma,
		 c.sector_certified && c.gamma == c.gamma_sector ? "the sector's k_hi"
								 : "product of norms",
		 100 * certify_accuracy_at(radius, correct, n, 0.5));
	stage_done(r, K_CERTIFY, what, since(&t0));
out:
	if (mem)
		fclose(mem);
	free(text);
	free(radius);
	free(correct);
	nn_free(net);
	return st;
}

/* ---- Tables and figures ------------------------------------------------- */

/* Read a stage's CSV: the first ncols numbers of each data row. */
static int read_rows(const char *path, int ncols, double rows[][6], int max, struct sl_error *err)
{
	FILE *f = fopen(path, "r");
	if (!f) {
		status_set(err, SL_ERR_IO, "%s: %s", path, strerror(errno));
		return -1;
	}
	char line[512];
	int n = 0;
	if (!fgets(line, sizeof line, f)) { /* header */
		fclose(f);
		status_set(err, SL_ERR_FORMAT, "%s: empty", path);
		return -1;
	}
	while (n < max && fgets(line, sizeof line, f)) {
		char *p = line;
		for (int k = 0; k < ncols; k++) {
			char *end;
			rows[n][k] = strtod(p, &end);
			if (end == p) {
				fclose(f);
				status_set(err, SL_ERR_FORMAT, "%s: row %d is not numbers", path, n + 2);
				return -1;
			}
			p = *end == ',' ? end + 1 : end;
		}
		n++;
	}
	fclose(f);
	return n;
}

/* Per model, over seeds: mean, min and max of one column, as percentages. */
struct curve {
	double x[MAX_EPS], mean[MAX_EPS], lo[MAX_EPS], hi[MAX_EPS];
	int n;
};

static sl_status gather(const struct run *r, int m, int a, int col, struct curve *cv,
			struct sl_error *err)
{
	memset(cv, 0, sizeof *cv);
	for (int s = 1; s <= r->o->seeds; s++) {
		char path[4096];
		double rows[MAX_EPS][6];
		if (a >= 0)
			path_of(r, path, sizeof path, "stages/%s-seed%d-%s.csv", models[m].key, s,
				attack_key[a]);
		else
			path_of(r, path, sizeof path, "stages/%s-seed%d-certified.csv",
				models[m].key, s);
		int n = read_rows(path, col + 1, rows, MAX_EPS, err);
		if (n < 0)
			return err->code;
		if (s > 1 && n != cv->n)
			return status_set(err, SL_ERR_FORMAT, "%s: %d rows, seed 1 had %d", path, n,
					  cv->n);
		cv->n = n;
		for (int i = 0; i < n; i++) {
			double v = 100 * rows[i][col];
			cv->x[i] = rows[i][0];
			cv->mean[i] += v / (double)r->o->seeds;
			cv->lo[i] = s == 1 || v < cv->lo[i] ? v : cv->lo[i];
			cv->hi[i] = s == 1 || v > cv->hi[i] ? v : cv->hi[i];
		}
	}
	return SL_OK;
}

static const char *model_title(const struct run *r)
{
	return r->o->figure == 1 ? "MNIST, mlp 784-50-20-10"
	       : r->model == MODEL_ALEXNET ? "CIFAR-10, alexnet"
					   : "CIFAR-10, alexnet-lite (quick: not the paper's width)";
}

static void run_note(const struct run *r, int n, char *buf, size_t cap)
{
	snprintf(buf, cap, "%s budget: %d epoch%s (%s), %ld seed%s, first %d test images of %u, "
			   "pixels x/255-0.5",
		 r->b->name, r->epochs, r->epochs == 1 ? "" : "s",
		 r->model == MODEL_MLP ? "Adam 1e-3, batch 128" : "SGD 0.01, momentum 0.9",
		 r->o->seeds, r->o->seeds > 1 ? "s; bands: min to max over seeds" : "",
		 n, r->test.n);
}

/* Two panels side by side, each a chart of the models against eps. */
static sl_status figure_pair(const struct run *r, int a0, int a1, const char *name,
			     const char *title, struct sl_error *err)
{
	struct image panel[2] = {{0}}, out = {0};
	struct curve cv[2][NMODELS];
	sl_status st = SL_OK;
	int PW = 720, PH = 520;
	char note[512];
	run_note(r, attack_n(r), note, sizeof note);
	for (int p = 0; p < 2 && st == SL_OK; p++) {
		int a = p == 0 ? a0 : a1;
		struct plot_series ser[NMODELS];
		int ns = 0;
		for (int m = 0; m < NMODELS && st == SL_OK; m++) {
			if (r->skip[m])
				continue;
			st = gather(r, m, a, 4, &cv[p][m], err);
			ser[ns++] = (struct plot_series){
				models[m].label, cv[p][m].x, cv[p][m].mean, cv[p][m].n, plot_color(m),
				models[m].caps && strcmp(models[m].caps, "authors") == 0,
				r->o->seeds > 1 ? cv[p][m].lo : NULL, r->o->seeds > 1 ? cv[p][m].hi : NULL};
		}
		if (st != SL_OK)
			break;
		struct attack_recipe rec = attack_of(a);
		char sub[512], xlabel[96];
		attack_recipe_describe(&rec, false, sub, sizeof sub);
		snprintf(xlabel, sizeof xlabel, "eps (%s)",
			 rec.norm == ATTACK_NORM_2 ? "L2 norm" : "L-inf norm");
		struct plot_spec spec = {
			.title = attack_title[a], .subtitle = sub, .xlabel = xlabel,
			.ylabel = "accuracy on attacked images (%)", .ymin = 0, .ymax = 100,
			.series = ser, .nseries = ns, .width = PW, .height = PH,
		};
		st = plot_render(&spec, &panel[p], err);
	}
	if (st == SL_OK)
		st = image_new(&out, 2 * PW, PH + 64, 3, err);
	if (st == SL_OK) {
		canvas_fill(&out, (struct canvas_color){255, 255, 255});
		struct canvas_color black = {0, 0, 0}, dim = {90, 90, 90};
		canvas_text(&out, (2 * PW - canvas_text_width(title, 2)) / 2, 12, 2, black, title);
		canvas_text(&out, (2 * PW - canvas_text_width(note, 1)) / 2, 40, 1, dim, note);
		canvas_blit(&out, &panel[0], 0, 64, 1);
		canvas_blit(&out, &panel[1], PW, 64, 1);
		char path[4096];
		path_of(r, path, sizeof path, "%s", name);
		struct image_text text[] = {{"Software", "sectorlab reproduce"}, {"Title", title},
					    {"Description", note}};
		st = image_write_png(path, &out, text, 3, err);
	}
	image_free(&panel[0]);
	image_free(&panel[1]);
	image_free(&out);
	return st;
}

static sl_status figure_certified(const struct run *r, struct sl_error *err)
{
	struct curve cv[NMODELS];
	struct plot_series ser[NMODELS];
	int ns = 0;
	for (int m = 0; m < NMODELS; m++) {
		if (r->skip[m])
			continue;
		sl_status st = gather(r, m, -1, 1, &cv[m], err);
		if (st != SL_OK)
			return st;
		ser[ns++] = (struct plot_series){
			models[m].label, cv[m].x, cv[m].mean, cv[m].n, plot_color(m),
			models[m].caps && strcmp(models[m].caps, "authors") == 0,
			r->o->seeds > 1 ? cv[m].lo : NULL, r->o->seeds > 1 ? cv[m].hi : NULL};
	}
	char title[256], note[512], sub[768];
	snprintf(title, sizeof title, "Figure %ld (%s): certified accuracy", r->o->figure,
		 model_title(r));
	run_note(r, certify_n(r), note, sizeof note);
	snprintf(sub, sizeof sub,
		 "share of test images correct with margin / (sqrt(2) gamma) > radius; gamma: the "
		 "product of the layers' norms, or the (-2, 0.4) sector's k_hi = 3.81 when every "
		 "layer is within its cap and that is smaller; %s", note);
	struct plot_spec spec = {
		.title = title, .subtitle = sub, .xlabel = "certified radius (L2 norm)",
		.ylabel = "certified accuracy (%)", .ymin = 0, .ymax = 100,
		.series = ser, .nseries = ns, .width = 900, .height = 560,
	};
	struct image img;
	sl_status st = plot_render(&spec, &img, err);
	if (st != SL_OK)
		return st;
	char path[4096];
	path_of(r, path, sizeof path, "figure%ld-certified.png", r->o->figure);
	struct image_text text[] = {{"Software", "sectorlab reproduce"}, {"Title", title},
				    {"Description", sub}};
	st = image_write_png(path, &img, text, 3, err);
	image_free(&img);
	return st;
}

/* figure<F>.csv: every point of every seed; figure<F>-certified.csv likewise. */
static sl_status write_tables(const struct run *r, struct sl_error *err)
{
	char *text = NULL, *ctext = NULL;
	size_t len = 0, clen = 0;
	FILE *f = open_memstream(&text, &len), *cf = open_memstream(&ctext, &clen);
	sl_status st = SL_OK;
	if (!f || !cf) {
		st = status_set(err, SL_ERR_NOMEM, "tables");
		goto out;
	}
	fputs("figure,model,dataset,budget,mode,caps_certified,seed,epochs,attack,norm,steps,"
	      "labels,clip,eps,n,clean_accuracy,robust_accuracy,adversarial_accuracy\n", f);
	fputs("figure,model,dataset,budget,mode,caps_certified,seed,epochs,n,radius,"
	      "certified_accuracy,gamma,gamma_sector,gamma_product,sector_certified\n", cf);
	int n = certify_n(r);
	for (int m = 0; m < NMODELS; m++) {
		if (r->skip[m])
			continue;
		const char *cert = models[m].mode != TRAIN_SPNORM ? ""
				   : strcmp(models[m].caps, "certified") == 0 ? "true" : "false";
		for (int s = 1; s <= r->o->seeds; s++) {
			char prefix[256], path[4096];
			snprintf(prefix, sizeof prefix, "%ld,%s,%s,%s,%s,%s,%d,%d", r->o->figure,
				 model_name(r->model), data_kind_name(r->kind), r->b->name,
				 models[m].key, cert, s, r->epochs);
			for (int a = 0; a < NATTACKS; a++) {
				double rows[MAX_EPS][6];
				path_of(r, path, sizeof path, "stages/%s-seed%d-%s.csv", models[m].key,
					s, attack_key[a]);
				int k = read_rows(path, 5, rows, MAX_EPS, err);
				if (k < 0) {
					st = err->code;
					goto out;
				}
				struct attack_recipe rec = attack_of(a);
				for (int i = 0; i < k; i++)
					fprintf(f, "%s,%s,%s,%d,%s,%s,%g,%d,%.6f,%.6f,%.6f\n", prefix,
						attack_kind_name(rec.kind), attack_norm_name(rec.norm),
						rec.steps, attack_labels_name(rec.labels),
						rec.clip ? "true" : "false", rows[i][0], (int)rows[i][1],
						rows[i][2], rows[i][3], rows[i][4]);
			}
			path_of(r, path, sizeof path, "stages/%s-seed%d-certified.csv", models[m].key, s);
			FILE *in = fopen(path, "r");
			if (!in) {
				st = status_set(err, SL_ERR_IO, "%s: %s", path, strerror(errno));
				goto out;
			}
			char line[512];
			if (fgets(line, sizeof line, in)) /* the header */
				while (fgets(line, sizeof line, in))
					fprintf(cf, "%s,%d,%s", prefix, n, line);
			fclose(in);
		}
	}
	fclose(f);
	fclose(cf);
	f = cf = NULL;
	char path[4096];
	path_of(r, path, sizeof path, "figure%ld.csv", r->o->figure);
	if ((st = io_write_file(path, text, len, err)) != SL_OK)
		goto out;
	path_of(r, path, sizeof path, "figure%ld-certified.csv", r->o->figure);
	st = io_write_file(path, ctext, clen, err);
out:
	if (f)
		fclose(f);
	if (cf)
		fclose(cf);
	free(text);
	free(ctext);
	return st;
}

static sl_status write_outputs(const struct run *r, struct sl_error *err)
{
	char name[64], title[256];
	sl_status st = write_tables(r, err);
	if (st != SL_OK)
		return st;
	snprintf(name, sizeof name, "figure%ld-l2.png", r->o->figure);
	snprintf(title, sizeof title, "Figure %ld (%s): the authors' L2 attacks", r->o->figure,
		 model_title(r));
	if ((st = figure_pair(r, A_FGM_L2, A_PGD_L2, name, title, err)) != SL_OK)
		return st;
	snprintf(name, sizeof name, "figure%ld-linf.png", r->o->figure);
	snprintf(title, sizeof title, "Figure %ld (%s): the textbook L-inf attacks", r->o->figure,
		 model_title(r));
	if ((st = figure_pair(r, A_FGSM_INF, A_PGD_INF, name, title, err)) != SL_OK)
		return st;
	return figure_certified(r, err);
}

/* ---- Driver ------------------------------------------------------------- */

static int setup(struct run *r, struct sl_error *err)
{
	bool mlp = r->o->figure == 1;
	const struct budget *list = mlp ? budgets_mlp : budgets_alexnet;
	for (int i = 0; i < 3; i++)
		if (strcmp(list[i].name, r->o->budget) == 0)
			r->b = &list[i];
	r->model = mlp ? MODEL_MLP
		   : strcmp(r->b->name, "full") == 0 ? MODEL_ALEXNET : MODEL_ALEXNET_LITE;
	r->kind = mlp ? DATA_MNIST : DATA_CIFAR10;
	model_get(r->model, &r->arch);
	struct nn_shape shape = mlp ? (struct nn_shape){1, 28, 28} : (struct nn_shape){3, 32, 32};
	if (arch_fit_input(&r->arch, shape, err) != SL_OK)
		return 1;
	r->epochs = r->b->epochs;
	for (int i = 0; i < r->b->neps_l2; i++)
		r->eps_l2[i] = r->b->eps_l2_max * i / (r->b->neps_l2 - 1);
	for (int i = 0; i < r->b->neps_inf; i++)
		r->eps_inf[i] = r->b->eps_inf_max * i / (r->b->neps_inf - 1);
	for (int m = 0; m < NMODELS; m++) {
		double rho[NN_MAX_LAYERS];
		r->skip[m] = models[m].caps && strcmp(models[m].caps, "authors") == 0 &&
			     model_authors_caps(&r->arch, rho) == 0;
	}
	const char *dir = cmd_data_dir(r->o->data_dir);
	if (data_load(r->kind, dir, true, &r->train, err) != SL_OK ||
	    data_load(r->kind, dir, false, &r->test, err) != SL_OK)
		return 1;
	uint32_t full = mlp ? 60000 : 50000;
	if (r->b->needs_full && r->train.n < full) {
		fprintf(stderr, "sectorlab reproduce: the full budget needs the full %s (%u training "
				"images); %s has %u: give --data-dir\n",
			mlp ? "MNIST" : "CIFAR-10", full, r->train.source, r->train.n);
		return 2;
	}
	return 0;
}

static int reproduce_run(int argc, char **argv)
{
	struct repro_opts o = {.seeds = 1, .hours = 3, .budget = "quick"};
	int rc = parse(argc, argv, &o);
	if (rc)
		return rc == 1 ? 0 : rc;
	char default_out[64];
	snprintf(default_out, sizeof default_out, "reproduce-fig%ld-%s", o.figure, o.budget);
	cmd_set_threads(o.threads);

	struct run r = {.o = &o, .dir = o.out ? o.out : default_out};
	struct sl_error err;
	status_clear(&err);
	struct interrupt_guard guard;
	bool caught = false;
	if ((rc = setup(&r, &err)) != 0) {
		if (err.msg[0])
			fprintf(stderr, "sectorlab reproduce: %s\n", err.msg);
		goto out;
	}
	char sub[4096];
	rc = 1;
	if (make_dir(r.dir) != 0)
		goto out;
	const char *subdirs[] = {"models", "stages", "certificates"};
	for (int i = 0; i < 3; i++) {
		snprintf(sub, sizeof sub, "%s/%s", r.dir, subdirs[i]);
		if (make_dir(sub) != 0)
			goto out;
	}
	if ((rc = plan_check(&r)) != 0)
		goto out;
	rc = 1;
	if (plan_write(&r, &err) != SL_OK) {
		fprintf(stderr, "sectorlab reproduce: %s\n", err.msg);
		goto out;
	}
	int nm = 0;
	for (int m = 0; m < NMODELS; m++)
		nm += !r.skip[m];
	r.nstages = nm * (int)o.seeds * NKINDS;
	for (int k = 0; k < NKINDS; k++)
		r.left[k] = nm * (int)o.seeds;
	fprintf(stderr, "reproducing Figure %ld with the %s budget: %s, %d models x %ld seed%s, "
			"%d stages, into %s/\n",
		o.figure, r.b->name, model_title(&r), nm, o.seeds, o.seeds == 1 ? "" : "s",
		r.nstages, r.dir);
	for (int m = 0; m < NMODELS; m++)
		if (r.skip[m])
			fprintf(stderr, "(no %s: the authors' code hard-codes no caps for %s)\n",
				models[m].key, model_name(r.model));
	cmd_progress_init(&r.progress, o.quiet);
	cmd_progress_start(&r.progress, NULL, 1);
	clock_gettime(CLOCK_MONOTONIC, &r.t0);
	interrupt_catch(&guard);
	caught = true;
	sl_status st = SL_OK;
	/* Every model first (the expensive part, and what later stages read). */
	for (int s = 1; s <= o.seeds && st == SL_OK; s++)
		for (int m = 0; m < NMODELS && st == SL_OK; m++)
			if (!r.skip[m])
				st = train_stage(&r, m, s, &err);
	for (int s = 1; s <= o.seeds && st == SL_OK; s++)
		for (int m = 0; m < NMODELS && st == SL_OK; m++) {
			if (r.skip[m])
				continue;
			st = certify_stage(&r, m, s, &err);
			for (int a = 0; a < NATTACKS && st == SL_OK; a++)
				st = sweep_stage(&r, m, s, a, &err);
		}
	if (st == SL_OK)
		st = write_outputs(&r, &err);
	cmd_progress_clear(&r.progress);
	if (st != SL_OK) {
		if (err.code == SL_ERR_CANCELLED) {
			fprintf(stderr, "sectorlab reproduce: %s; %d of %d stages are done and kept in "
					"%s/: run the same command again to resume\n",
				err.msg, r.stage, r.nstages, r.dir);
			rc = interrupt_exit_code(interrupt_pending());
		} else {
			fprintf(stderr, "sectorlab reproduce: %s\n", err.msg);
		}
		goto out;
	}
	char total[16];
	cmd_progress_duration(since(&r.t0), total, sizeof total);
	fprintf(stderr, "wrote %s/figure%ld.csv, figure%ld-l2.png, figure%ld-linf.png, "
			"figure%ld-certified.png (%s)\n",
		r.dir, o.figure, o.figure, o.figure, o.figure, total);
	rc = 0;
out:
	if (caught)
		interrupt_release(&guard);
	data_free(&r.train);
	data_free(&r.test);
	return rc;
}

int cmd_reproduce(int argc, char **argv)
{
	return cmd_with_config("reproduce", repro_options, reproduce_run, argc, argv);
}
