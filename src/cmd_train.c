/* cmd_train: `sectorlab train`, headless training with a report. */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "sectorlab/attack.h"
#include "sectorlab/certify.h"
#include "sectorlab/checkpoint.h"
#include "sectorlab/cmd.h"
#include "sectorlab/cmd_progress.h"
#include "sectorlab/data.h"
#include "sectorlab/driver.h"
#include "sectorlab/interrupt.h"
#include "sectorlab/io.h"
#include "sectorlab/json.h"
#include "sectorlab/train.h"
#include "sectorlab/trainstate.h"

static void usage(FILE *f)
{
	fputs("usage: sectorlab train [options]\n"
	      "\n"
	      "Train one of the paper's networks headless: one progress line per epoch on\n"
	      "stderr (with every layer's norm against its cap), then the final test\n"
	      "accuracy and an FGSM check.\n"
	      "\n"
	      "  --model NAME       mlp (784-50-20-10, leaky ReLU 0.1; default), alexnet (the\n"
	      "                     paper's CIFAR-10 network) or alexnet-lite (narrower)\n"
	      CMD_ARCH_HELP
	      "  --dataset NAME     mnist, fashion or cifar10 (default: mnist for mlp,\n"
	      "                     cifar10 for the AlexNets and specs taking 3x32x32)\n"
	      "  --data-dir DIR     where the data is (default: $SECTORLAB_DATA, else data/,\n"
	      "                     which holds an embedded 10,000-image MNIST sample)\n"
	      "  --mode MODE        vanilla (default), l2 (weight penalty) or spnorm (caps)\n"
	      "  --nu X --delta Y   spnorm: network sector indices; each weighted layer is\n"
	      "                     capped at its Theorem 4 bound from the Theorem 3\n"
	      "                     allocation (default -2, 0.4: certified caps)\n"
	      "  --objective OBJ    allocation objective: product (default) or min\n"
	      "  --rho A,B,...      spnorm caps given by hand, one per weighted layer\n"
	      "                     (not certified)\n"
	      "  --caps authors     spnorm with the caps the authors' code hard-codes (mlp:\n"
	      "                     1.8,1.8,0.9204; alexnet, alexnet-lite: 1.8 x4, 0.9204),\n"
	      "                     which no theorem certifies\n"
	      "  --l2 W             l2 mode: the penalty W * sum ||W_i||_F^2 (default 0.005)\n"
	      "  --loss NAME        ce (cross-entropy), lmt (Lipschitz-margin cross-entropy)\n"
	      "                     or hinge (multiclass hinge on the same margin); default\n"
	      "                     lmt for spnorm with certified caps, else ce\n"
	      "  --tau T            temperature inside the loss only: it reads T * logits\n"
	      "                     (default 50 for lmt and hinge, 1 for ce); predictions\n"
	      "                     and the certificate do not change\n"
	      "  --target-radius R  lmt, hinge: the L2 radius each training image is pushed\n"
	      "                     to be certified at: the true logit is lowered by\n"
	      "                     sqrt(2) L R, L the certificate's Lipschitz bound at\n"
	      "                     every step (default 0.6); also reported after each\n"
	      "                     epoch beside certify's radii 0.1, 0.25, 0.5, 1\n"
	      "  --optimizer NAME   adam or sgd (default: adam for mlp, sgd for the AlexNets)\n"
	      "  --lr X             learning rate (default 0.001 for adam, 0.01 for sgd)\n"
	      "  --momentum M       sgd momentum (default 0.9)\n"
	      "  --schedule NAME    constant (default), step or exp, per epoch\n"
	      "  --lr-step N        step schedule: decay every N epochs (default 10)\n"
	      "  --lr-gamma G       step and exp schedules: decay factor (default 0.1 for\n"
	      "                     step, 0.95 for exp)\n"
	      "  --epochs N         epochs (default 10)\n"
	      "  --batch N          batch size (default 128)\n"
	      "  --seed S           random seed (default 1)\n"
	      "  --threads N        threads (default: one per processor); results repeat\n"
	      "                     exactly for the same seed and thread count\n"
	      "  --holdout N        hold out the first N training images (default 5000 when\n"
	      "                     the training set has more than 50,000 images, else 0)\n"
	      "  --eps X            FGSM strength of the final check (default 0.1 on MNIST,\n"
	      "                     8/255 on CIFAR-10; 0 skips)\n"
	      "  --out FILE         save the trained network (safetensors, PyTorch names),\n"
	      "                     rewritten after every epoch: Ctrl-C or SIGTERM stops\n"
	      "                     training and leaves the last complete epoch there (a\n"
	      "                     device or FIFO is written once, at the end)\n"
	      "  --resume FILE      keep the whole training state (weights, optimizer, RNG,\n"
	      "                     epoch order) in FILE after every epoch; when FILE\n"
	      "                     exists, train on from the epoch it holds, bit for bit\n"
	      "                     as if never stopped (the same settings and --threads;\n"
	      "                     --epochs may grow: FILE is kept at the end, so a later\n"
	      "                     run with more --epochs continues it)\n"
	      "  --log FILE         per-epoch metrics as CSV, rewritten after every epoch\n"
	      "                     (with --epochs 0: the header row alone)\n"
	      "  --json             print one JSON object with the results on stdout\n"
	      "  --quiet            no live progress line (shown only when stderr is a\n"
	      "                     terminal: batch, rate and ETA)\n"
	      "  --config FILE      settings from FILE, one 'option = value' per line\n"
	      "                     (# starts a comment); options typed here win\n"
	      "  -h, --help         this help\n"
	      "\n"
	      "Options are written in full (no abbreviations such as --epo for --epochs).\n"
	      "Exit status: 0 trained, 1 a failure, 2 bad usage, 130/143 stopped by\n"
	      "Ctrl-C/SIGTERM.\n",
	      f);
}

struct train_opts {
	const char *dataset, *data_dir, *model, *arch, *mode, *out, *log, *optimizer, *schedule;
	const char *resume;
	double rho[NN_MAX_LAYERS];
	int nrho;
	long epochs, batch, seed, holdout, threads, lr_step;
	double lr, eps, l2, momentum, lr_gamma;
	double nu, delta;       /* network indices whose allocation gives the caps */
	const char *caps;       /* "authors" for the authors' hard-coded caps */
	const char *objective;  /* allocation objective */
	const char *loss;       /* --loss */
	double tau, radius;     /* --tau, --target-radius (NAN: not given) */
	int json, quiet;
};


/* The options; a settings file (--config) may set any of them but help. */
enum { O_DATASET = 256, O_DATADIR, O_MODEL, O_MODE, O_RHO, O_EPOCHS, O_BATCH, O_LR,
       O_SEED, O_HOLDOUT, O_EPS, O_OUT, O_LOG, O_JSON, O_L2, O_OPTIM, O_MOMENTUM,
       O_SCHEDULE, O_LR_STEP, O_LR_GAMMA, O_THREADS, O_NU, O_DELTA, O_CAPS, O_OBJECTIVE, O_QUIET,
       O_ARCH, O_LOSS, O_TAU, O_RADIUS, O_RESUME };
static const struct option train_options[] = {
	{"dataset", required_argument, 0, O_DATASET},
	{"data-dir", required_argument, 0, O_DATADIR},
	{"model", required_argument, 0, O_MODEL},
	{"arch", required_argument, 0, O_ARCH},
	{"mode", required_argument, 0, O_MODE},
	{"rho", required_argument, 0, O_RHO},
	{"l2", required_argument, 0, O_L2},
	{"optimizer", required_argument, 0, O_OPTIM},
	{"lr", required_argument, 0, O_LR},
	{"momentum", required_argument, 0, O_MOMENTUM},
	{"schedule", required_argument, 0, O_SCHEDULE},
	{"lr-step", required_argument, 0, O_LR_STEP},
	{"lr-gamma", required_argument, 0, O_LR_GAMMA},
	{"epochs", required_argument, 0, O_EPOCHS},
	{"batch", required_argument, 0, O_BATCH},
	{"seed", required_argument, 0, O_SEED},
	{"threads", required_argument, 0, O_THREADS},
	{"nu", required_argument, 0, O_NU},
	{"delta", required_argument, 0, O_DELTA},
	{"caps", required_argument, 0, O_CAPS},
	{"objective", required_argument, 0, O_OBJECTIVE},
	{"loss", required_argument, 0, O_LOSS},
	{"tau", required_argument, 0, O_TAU},
	{"target-radius", required_argument, 0, O_RADIUS},
	{"holdout", required_argument, 0, O_HOLDOUT},
	{"eps", required_argument, 0, O_EPS},
	{"out", required_argument, 0, O_OUT},
	{"log", required_argument, 0, O_LOG},
	{"resume", required_argument, 0, O_RESUME},
	{"json", no_argument, 0, O_JSON},
	{"quiet", no_argument, 0, O_QUIET},
	{"help", no_argument, 0, 'h'},
	{0, 0, 0, 0},
};

/* SGD's momentum: 1 would never forget a gradient. */
#define R_MOMENTUM ((struct cmd_range){0, 1, false, true})

static int parse(int argc, char **argv, struct train_opts *o)
{
	int c, bad = 0;
	optind = 0; /* glibc: start afresh, whatever an earlier parse left */
	while ((c = cmd_getopt("train", argc, argv, train_options)) != -1) {
		switch (c) {
		case O_DATASET: o->dataset = optarg; break;
		case O_DATADIR: o->data_dir = optarg; break;
		case O_MODEL: o->model = optarg; break;
		case O_ARCH: o->arch = optarg; break;
		case O_MODE: o->mode = optarg; break;
		case O_RHO:
			o->nrho = cmd_parse_doubles("--rho", optarg, CMD_RANGE_RHO, o->rho,
						    NN_MAX_LAYERS);
			bad |= o->nrho < 0;
			break;
		case O_L2: bad |= cmd_parse_double("--l2", optarg, CMD_RANGE(0, 100), &o->l2); break;
		case O_OPTIM: o->optimizer = optarg; break;
		case O_LR: bad |= cmd_parse_double("--lr", optarg, CMD_ABOVE(0, 100), &o->lr); break;
		case O_MOMENTUM:
			bad |= cmd_parse_double("--momentum", optarg, R_MOMENTUM, &o->momentum);
			break;
		case O_SCHEDULE: o->schedule = optarg; break;
		case O_LR_STEP: bad |= cmd_parse_long("--lr-step", optarg, 1, 100000, &o->lr_step); break;
		case O_LR_GAMMA:
			bad |= cmd_parse_double("--lr-gamma", optarg, CMD_ABOVE(0, 1), &o->lr_gamma);
			break;
		case O_EPOCHS: bad |= cmd_parse_long("--epochs", optarg, 0, 100000, &o->epochs); break;
		case O_BATCH: bad |= cmd_parse_long("--batch", optarg, 1, 65536, &o->batch); break;
		case O_SEED: bad |= cmd_parse_long("--seed", optarg, 0, 0x7fffffffL, &o->seed); break;
		case O_THREADS: bad |= cmd_parse_long("--threads", optarg, 1, 256, &o->threads); break;
		case O_NU: bad |= cmd_parse_double("--nu", optarg, CMD_RANGE_NU, &o->nu); break;
		case O_DELTA: bad |= cmd_parse_double("--delta", optarg, CMD_RANGE_DELTA, &o->delta); break;
		case O_CAPS: o->caps = optarg; break;
		case O_OBJECTIVE: o->objective = optarg; break;
		case O_LOSS: o->loss = optarg; break;
		case O_TAU: bad |= cmd_parse_double("--tau", optarg, CMD_ABOVE(0, 1e6), &o->tau); break;
		case O_RADIUS: bad |= cmd_parse_double("--target-radius", optarg, CMD_RANGE(0, 1e3), &o->radius); break;
		case O_HOLDOUT:
			bad |= cmd_parse_long("--holdout", optarg, 0, 100000000L, &o->holdout);
			break;
		case O_EPS: bad |= cmd_parse_double("--eps", optarg, CMD_RANGE_FGSM_EPS, &o->eps); break;
		case O_OUT: o->out = optarg; break;
		case O_LOG: o->log = optarg; break;
		case O_RESUME: o->resume = optarg; break;
		case O_JSON: o->json = 1; break;
		case O_QUIET: o->quiet = 1; break;
		case 'h': usage(stdout); return 1;
		default: bad = 1; break;
		}
	}
	if (!bad && optind < argc) {
		fprintf(stderr, "sectorlab train: unexpected argument '%s'\n", argv[optind]);
		bad = 1;
	}
	if (bad) {
		fputs("Try 'sectorlab train --help'.\n", stderr);
		return 2;
	}
	return 0;
}

/* The per-epoch log, kept in memory and rewritten atomically after each epoch
 * so an interrupted run leaves a complete file. */
struct csv_log {
	char *text;
	size_t len;
	FILE *mem;
};

/* Rewrite path with the log so far (the header alone before epoch 1). */
static sl_status log_save(struct csv_log *log, const char *path, struct sl_error *err)
{
	if (fflush(log->mem) != 0)
		return status_set(err, SL_ERR_NOMEM, "%s: the log's buffer", path);
	return io_write_file(path, log->text, log->len, err);
}

/* Resuming: the rows of the epochs already done, from the log an earlier run
 * wrote, when its header is this run's (else the log starts afresh). */
static void log_carry(struct csv_log *log, const char *path, int epochs)
{
	FILE *f = fopen(path, "r");
	if (!f || fflush(log->mem) != 0) {
		if (f)
			fclose(f);
		return;
	}
	char *line = NULL;
	size_t cap = 0;
	ssize_t n = getline(&line, &cap, f);
	if (n > 0 && (size_t)n == log->len && memcmp(line, log->text, log->len) == 0)
		while ((n = getline(&line, &cap, f)) > 0) {
			int e = atoi(line);
			if (e >= 1 && e <= epochs && line[n - 1] == '\n')
				fputs(line, log->mem);
		}
	free(line);
	fclose(f);
}

static int fail(const struct sl_error *err)
{
	fprintf(stderr, "sectorlab train: %s\n", err->msg);
	return 1;
}

/* Say where training stopped, what --out holds and where --resume goes on
 * from (state_epoch; 0: nothing kept); the exit status. */
static int report_interrupt(const struct trainer *t, const char *out, bool out_once,
			    int saved_epoch, const char *resume, int state_epoch)
{
	int sig = interrupt_pending();
	fprintf(stderr, "sectorlab train: stopped by %s at step %ld (%d of %d epochs complete)",
		interrupt_name(sig), t->step, t->epoch, t->cfg.epochs);
	if (out && out_once)
		fprintf(stderr, "; %s (a device or FIFO, written once at the end) was not "
				"written\n", out);
	else if (out && saved_epoch >= 0)
		fprintf(stderr, "; %s holds epoch %d\n", out, saved_epoch);
	else if (out)
		fprintf(stderr, "; no epoch was complete, %s was not written\n", out);
	else
		fprintf(stderr, "; nothing saved (no --out)\n");
	if (resume && state_epoch > 0)
		fprintf(stderr, "sectorlab train: %s holds epoch %d: the same command goes on from "
				"there\n",
			resume, state_epoch);
	return interrupt_exit_code(sig);
}

static int usage_error(const char *msg)
{
	fprintf(stderr, "sectorlab train: %s\n", msg);
	return 2;
}


/* The loss: lmt with the measured defaults for certified caps, else plain
 * cross-entropy; --loss, --tau and --target-radius override. */
static int configure_loss(const struct train_opts *o, struct train_config *cfg)
{
	struct sl_error err;
	status_clear(&err);
	bool certified = cfg->mode == TRAIN_SPNORM && cfg->caps.source == CAPS_CERTIFIED;
	cfg->loss = certified ? loss_config_certified() : loss_config_plain();
	if (o->loss) {
		if (loss_kind_parse(o->loss, &cfg->loss.kind, &err) != SL_OK)
			return usage_error(err.msg);
		bool margin = cfg->loss.kind != LOSS_CE;
		cfg->loss.tau = margin ? LOSS_DEFAULT_TAU : 1;
		cfg->loss.radius = margin ? LOSS_DEFAULT_RADIUS : 0;
	}
	if (!isnan(o->tau))
		cfg->loss.tau = o->tau;
	if (!isnan(o->radius)) {
		if (cfg->loss.kind == LOSS_CE) /* the margin is lmt's and hinge's */
			return usage_error("--target-radius is a setting of --loss lmt or hinge "
					   "(the loss here is ce)");
		cfg->loss.radius = o->radius;
	}
	if (loss_config_check(&cfg->loss, &err) != SL_OK)
		return usage_error(err.msg);
	return 0;
}

/* Turn the options into a training configuration; returns 0 or an exit code. */
static int configure(const struct train_opts *o, struct train_config *cfg,
		     enum data_kind *kind, struct caps_plan *src)
{
	struct sl_error err;
	status_clear(&err);
	struct arch arch;
	int rc = cmd_arch("train", o->model, o->arch, "mlp", &arch);
	if (rc)
		return rc;
	const char *dataset = o->dataset ? o->dataset : model_default_dataset(&arch);
	if (data_kind_parse(dataset, kind, &err) != SL_OK)
		return usage_error(err.msg);
	bool grey = *kind != DATA_CIFAR10;
	struct nn_shape shape = grey ? (struct nn_shape){1, 28, 28} : (struct nn_shape){3, 32, 32};
	if (arch_fit_input(&arch, shape, &err) != SL_OK) {
		char msg[700];
		snprintf(msg, sizeof msg, "%s; %s has %s", err.msg, dataset,
			 grey ? "28x28 grey images (try --model mlp)"
			      : "32x32 colour images (try --model alexnet-lite)");
		return usage_error(msg);
	}
	*cfg = train_config_for(&arch);
	if (train_mode_parse(o->mode, &cfg->mode, &err) != SL_OK)
		return usage_error(err.msg);
	if (o->optimizer) {
		enum optim_kind k;
		if (optim_kind_parse(o->optimizer, &k, &err) != SL_OK)
			return usage_error(err.msg);
		if (k != cfg->optim.kind)
			cfg->optim = k == OPTIM_ADAM ? optim_adam_defaults(1e-3)
						     : optim_sgd_defaults(0.01, 0.9);
	}
	if (!isnan(o->lr))
		cfg->optim.lr = o->lr;
	if (!isnan(o->momentum)) {
		if (cfg->optim.kind != OPTIM_SGD)
			return usage_error("--momentum is a setting of --optimizer sgd");
		cfg->optim.momentum = o->momentum;
	}
	if (o->schedule && optim_schedule_parse(o->schedule, &cfg->optim.schedule, &err) != SL_OK)
		return usage_error(err.msg);
	enum optim_schedule sched = cfg->optim.schedule;
	if (o->lr_step > 0 && sched != OPTIM_STEP)
		return usage_error("--lr-step is a setting of --schedule step");
	if (!isnan(o->lr_gamma) && sched == OPTIM_CONSTANT)
		return usage_error("--lr-gamma is a setting of --schedule step or exp");
	cfg->optim.step_epochs = o->lr_step > 0 ? (int)o->lr_step : 10;
	cfg->optim.gamma = !isnan(o->lr_gamma) ? o->lr_gamma
			   : sched == OPTIM_STEP ? 0.1
			   : sched == OPTIM_EXP ? 0.95 : 1;
	if (!isnan(o->l2)) {
		if (cfg->mode != TRAIN_L2)
			return usage_error("--l2 needs --mode l2");
		cfg->l2 = o->l2;
	}
	cfg->epochs = (int)o->epochs;
	cfg->batch = (int)o->batch;
	cfg->seed = (uint64_t)o->seed;
	struct cmd_caps_request req = {.nrho = o->nrho, .caps = o->caps, .nu = o->nu,
				       .delta = o->delta, .objective = o->objective};
	memcpy(req.rho, o->rho, sizeof req.rho);
	rc = cmd_spnorm_caps("train", &cfg->arch, &req, cfg, src, NULL, 0);
	if (rc)
		return rc;
	return configure_loss(o, cfg);
}

/* What the epoch hook needs to report, log and save an epoch. */
struct epoch_out {
	const struct train_opts *o;
	enum data_kind kind;
	struct csv_log *log;
	const double *radii;
	int nradii;
	struct certify_accuracy *cert;
	struct cmd_progress *prog;
	struct timespec t0;
	double lr;               /* the rate the epoch trained at */
	double test_acc, test_loss;
	int saved_epoch;         /* the epoch --out holds (-1: none) */
	int state_epoch;         /* the epoch --resume holds (0: none) */
	bool out_once, log_once; /* a device or FIFO: written when the run ends */
};

/* After each epoch (driver hook): certified accuracy, the epoch's line, the
 * log and the checkpoint. */
static sl_status epoch_done(void *ctx, struct trainer *t, const struct epoch_report *r,
			    struct sl_error *err)
{
	struct epoch_out *eo = ctx;
	const struct train_opts *o = eo->o;
	struct certify_accuracy *cert = eo->cert;
	cmd_progress_clear(eo->prog);
	struct timespec t1;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	double secs = (t1.tv_sec - eo->t0.tv_sec) + (t1.tv_nsec - eo->t0.tv_nsec) * 1e-9;
	eo->test_acc = r->test_accuracy;
	eo->test_loss = r->test_loss;
	sl_status st = trainer_certified_accuracy(t, t->test, 0, eo->radii, eo->nradii, cert, err);
	if (st != SL_OK)
		return st;
	const double *sigma = r->sigma;
	int nw = t->nweighted;
	fprintf(stderr, "epoch %d/%d  loss %.4f  train %.2f%%", r->epoch, r->epochs,
		r->train_loss, 100 * r->train_accuracy);
	if (r->val_accuracy >= 0)
		fprintf(stderr, "  val %.2f%%", 100 * r->val_accuracy);
	fprintf(stderr, "  test %.2f%%  sigma", 100 * r->test_accuracy);
	for (int j = 0; j < nw; j++) {
		const struct nn_layer *l = &t->net->layers[t->weighted[j]];
		if (l->rho > 0)
			fprintf(stderr, " %s/%s%s", cmd_num(sigma[j], 3).s,
				cmd_num(t->caps.bound[j], 3).s,
				certify_over_cap(sigma[j], t->caps.bound[j]) ? "!" : "");
		else
			fprintf(stderr, " %s", cmd_num(sigma[j], 3).s);
	}
	fprintf(stderr, "  certified (%s %.4g)", cert->sector ? "sector" : "product", cert->gamma);
	for (int k = 0; k < cert->nradii; k++)
		fprintf(stderr, " %g:%.2f%%", cert->radius[k], 100 * cert->certified[k]);
	fprintf(stderr, "  %.1fs\n", secs);
	struct csv_log *log = eo->log;
	if (log->mem) {
		fprintf(log->mem, "%d,%ld,%.3f,%g,%.6f,%.6f,", r->epoch, r->step, secs, eo->lr,
			r->train_loss, r->train_accuracy);
		if (r->val_accuracy >= 0)
			fprintf(log->mem, "%.6f", r->val_accuracy);
		fprintf(log->mem, ",%.6f,%.6f", r->test_accuracy, r->test_loss);
		for (int j = 0; j < nw; j++) { /* both to the same digits: compared as printed */
			float rho = t->net->layers[t->weighted[j]].rho;
			fprintf(log->mem, ",%s,%s", cmd_num(sigma[j], 6).s,
				rho > 0 ? cmd_num(rho, 6).s : "0");
		}
		fprintf(log->mem, ",%s,%.6g,%s",
			t->cfg.mode != TRAIN_SPNORM ? "" : t->caps.certified ? "true" : "false",
			cert->gamma, cert->sector ? "sector" : "product");
		for (int k = 0; k < cert->nradii; k++)
			fprintf(log->mem, ",%.6f", cert->certified[k]);
		fprintf(log->mem, "\n");
		if (!eo->log_once && (st = log_save(log, o->log, err)) != SL_OK)
			return st;
	}
	/* Every complete epoch is saved, so an interruption loses at most one. */
	if (o->out && !eo->out_once) {
		if ((st = cmd_save_checkpoint(t, eo->kind, r->test_accuracy, o->out, err)) != SL_OK)
			return st;
		eo->saved_epoch = r->epoch;
	}
	if (o->resume) {
		if ((st = trainstate_save(t, o->resume, err)) != SL_OK)
			return st;
		eo->state_epoch = r->epoch;
	}
	return SL_OK;
}

static void write_json(const struct trainer *t, enum data_kind kind, double test_acc,
		       double test_loss, double seconds, int settle, const double *sigma,
		       double eps, const struct attack_result *ar,
		       const struct certify_accuracy *cert)
{
	const struct train_config *cfg = &t->cfg;
	char label[ARCH_TEXT];
	printf("{\"test_accuracy\":%.6f,\"test_loss\":%s,\"epochs\":%d,\"seconds\":%.3f,"
	       "\"mode\":\"%s\",\"model\":\"%s\",\"dataset\":\"%s\",\"seed\":%lu,"
	       "\"train_images\":%u,\"test_images\":%u,\"steps\":%ld,\"batch\":%d,"
	       "\"threads\":%d,\"optimizer\":\"%s\",\"lr\":%s,\"momentum\":%s,"
	       "\"schedule\":\"%s\",",
	       test_acc, json_num(test_loss).s, t->epoch, seconds, train_mode_name(cfg->mode),
	       cmd_arch_label(&cfg->arch, label, sizeof label), data_kind_name(kind), (unsigned long)cfg->seed,
	       t->train.n, t->test ? t->test->n : 0, t->step, cfg->batch, t->net->threads,
	       optim_kind_name(cfg->optim.kind), json_num(cfg->optim.lr).s,
	       json_num(cfg->optim.kind == OPTIM_SGD ? cfg->optim.momentum : 0).s,
	       optim_schedule_name(cfg->optim.schedule));
	if (cfg->mode == TRAIN_L2)
		printf("\"l2\":%s,", json_num(cfg->l2).s);
	printf("\"loss\":\"%s\",\"tau\":%s,\"target_radius\":%s,", loss_kind_name(cfg->loss.kind),
	       json_num(cfg->loss.tau).s, json_num(cfg->loss.radius).s);
	printf("\"power_iterations_to_settle\":%d,\"rho_certified\":%s,\"layers\":[", settle,
	       cfg->mode == TRAIN_SPNORM && t->caps.certified ? "true" : "false");
	for (int j = 0; j < t->nweighted; j++) {
		const struct nn_layer *l = &t->net->layers[t->weighted[j]];
		printf("%s{\"name\":", j ? "," : "");
		json_string(stdout, l->name);
		printf(",\"in\":%d,\"out\":%d,\"sigma_exact\":%s,\"sigma_hat\":%s,", l->in, l->out,
		       json_num(sigma[j]).s, json_num(l->sigma_hat * l->scale).s);
		if (l->rho > 0)
			printf("\"rho\":%s}", json_num(l->rho).s);
		else
			printf("\"rho\":null}");
	}
	printf("]");
	if (eps > 0)
		printf(",\"fgsm\":{\"norm\":\"inf\",\"eps\":%s,\"labels\":\"true\",\"clip\":true,"
		       "\"n\":%d,\"clean_accuracy\":%.6f,\"robust_accuracy\":%.6f,"
		       "\"attack_success_rate\":%.6f,\"zero_gradients\":%d}",
		       json_num(eps).s, ar->n, ar->clean_accuracy, ar->robust_accuracy,
		       ar->attack_success_rate, ar->zero_grad);
	printf(",\"certify\":{\"nu\":%.10g,\"delta\":%.10g,\"objective\":\"%s\"},"
	       "\"lipschitz_bound\":%.10g,\"bound\":\"%s\",",
	       cfg->caps.nu, cfg->caps.delta, sector_objective_name(cfg->caps.objective),
	       cert->gamma, cert->sector ? "sector" : "product");
	cmd_json_certified(cert);
	printf("}\n");
}


static int train_run(int argc, char **argv)
{
	/* NAN marks a number not given (the parser accepts finite values only). */
	struct train_opts o = {.mode = "vanilla", .epochs = 10, .batch = 128,
			       .seed = 1, .holdout = -1, .lr = NAN, .eps = NAN, .l2 = NAN,
			       .momentum = NAN, .lr_gamma = NAN, .nu = NAN,
			       .delta = NAN, .tau = NAN, .radius = NAN};
	int rc = parse(argc, argv, &o);
	if (rc)
		return rc == 1 ? 0 : rc;
	struct train_config cfg;
	enum data_kind kind;
	struct caps_plan caps;
	if ((rc = configure(&o, &cfg, &kind, &caps)) != 0)
		return rc;
	double eps = !isnan(o.eps) ? o.eps : kind == DATA_CIFAR10 ? 8.0 / 255 : 0.1;
	cmd_set_threads(o.threads);
	cfg.threads = nn_threads(); /* this run's, carried by its config */

	struct sl_error err;
	status_clear(&err);
	/* The outputs, and the data files they must not overwrite. */
	char data_files[2 * DATA_MAX_SPLIT_FILES][4096];
	struct cmd_file files[3 + 2 * DATA_MAX_SPLIT_FILES] = {{"--out", o.out, true},
							       {"--log", o.log, true},
							       {"--resume", o.resume, true}};
	int nfiles = 3;
	cmd_data_inputs(kind, o.data_dir, true, data_files, files, &nfiles);
	if ((rc = cmd_check_files("train", files, nfiles)) != 0)
		return rc;
	if (o.resume && io_is_stream(o.resume))
		return usage_error("--resume needs a file: the state is read back from it");
	const char *dir = cmd_data_dir(o.data_dir);
	struct sl_dataset train = {0}, test = {0};
	struct trainer *t = NULL;
	struct csv_log log = {0};
	struct interrupt_guard guard;
	bool caught = false;
	rc = 1;
	if (data_load(kind, dir, true, &train, &err) != SL_OK ||
	    data_load(kind, dir, false, &test, &err) != SL_OK) {
		rc = fail(&err);
		goto out;
	}
	cfg.holdout = o.holdout >= 0 ? (uint32_t)o.holdout : train_default_holdout(&train);
	if (trainer_new(&cfg, &train, &test, &t, &err) != SL_OK) {
		/* a setting the data refuses (--holdout past its size) is bad usage */
		fail(&err);
		rc = err.code == SL_ERR_ARG ? 2 : 1;
		goto out;
	}
	char label[ARCH_TEXT];
	fprintf(stderr,
		"training %s (%s) on %u images from %s, testing on %u; %s lr %g%s%s, batch %d, "
		"seed %lu, %d thread%s\n",
		cmd_arch_label(&cfg.arch, label, sizeof label), train_mode_name(cfg.mode), t->train.n,
		train.source,
		test.n, optim_kind_name(cfg.optim.kind), cfg.optim.lr,
		cfg.optim.schedule == OPTIM_CONSTANT ? "" : " ",
		cfg.optim.schedule == OPTIM_CONSTANT ? "" : optim_schedule_name(cfg.optim.schedule),
		cfg.batch, (unsigned long)cfg.seed, t->net->threads, t->net->threads == 1 ? "" : "s");
	fprintf(stderr, "loss %s, tau %g", loss_kind_name(cfg.loss.kind), cfg.loss.tau);
	if (cfg.loss.kind != LOSS_CE)
		fprintf(stderr, ", target radius %g (margin sqrt(2) L R, L the certificate's "
				"bound at every step)",
			cfg.loss.radius);
	fprintf(stderr, "\n");
	if (cfg.mode == TRAIN_SPNORM) {
		fprintf(stderr, "caps:");
		for (int j = 0; j < t->caps.nrho; j++)
			fprintf(stderr, " %s %g", t->net->layers[t->weighted[j]].name,
				t->caps.bound[j]);
		fprintf(stderr, " (%s; trained 1e-5 below each)\n", t->caps.what);
	}
	int resumed = 0; /* epochs done before this run */
	if (o.resume && access(o.resume, F_OK) == 0) {
		if (trainstate_load(t, o.resume, &err) != SL_OK) {
			rc = fail(&err);
			goto out;
		}
		if (t->epoch > cfg.epochs) {
			fprintf(stderr, "sectorlab train: %s holds epoch %d, past --epochs %d\n",
				o.resume, t->epoch, cfg.epochs);
			rc = 2;
			goto out;
		}
		resumed = t->epoch;
		fprintf(stderr, "resuming from epoch %d of %d, as saved in %s\n", resumed,
			cfg.epochs, o.resume);
	}
	int nw = t->nweighted;
	double radii[CERTIFY_MAX_RADII];
	int nradii = certify_radii_with(cfg.loss.radius, radii);
	struct certify_accuracy cert = {0};
	if (o.log) {
		log.mem = open_memstream(&log.text, &log.len);
		if (!log.mem) {
			fprintf(stderr, "sectorlab train: out of memory\n");
			goto out;
		}
		fprintf(log.mem, "epoch,step,seconds,lr,train_loss,train_accuracy,val_accuracy,"
				 "test_accuracy,test_loss");
		for (int j = 0; j < nw; j++) {
			const char *name = t->net->layers[t->weighted[j]].name;
			fprintf(log.mem, ",sigma_%s,rho_%s", name, name);
		}
		fprintf(log.mem, ",caps_certified,lipschitz_bound,bound");
		for (int k = 0; k < nradii; k++)
			fprintf(log.mem, ",certified_%g", radii[k]);
		fprintf(log.mem, "\n");
		if (resumed > 0)
			log_carry(&log, o.log, resumed);
	}

	struct timespec t1;
	struct epoch_out eo = {.o = &o, .kind = kind, .log = &log, .radii = radii,
			       .nradii = nradii, .cert = &cert, .saved_epoch = -1,
			       .state_epoch = resumed};
	clock_gettime(CLOCK_MONOTONIC, &eo.t0);
	const double *sigma = t->sigma; /* measured at each epoch's end */
	/* A file is rewritten after every epoch; a device or FIFO is written
	 * once, when the run ends: every write opens and closes it, and the
	 * reader of a FIFO stops at the first close (the next open would wait
	 * for a reader for ever). */
	bool out_once = o.out && io_is_stream(o.out), log_once = o.log && io_is_stream(o.log);
	eo.out_once = out_once;
	eo.log_once = log_once;
	interrupt_catch(&guard);
	caught = true;
	struct cmd_progress prog;
	cmd_progress_init(&prog, o.quiet);
	cmd_progress_start(&prog, "images", (double)(cfg.epochs - resumed) * t->train.n);
	eo.prog = &prog;
	long spe = trainer_steps_per_epoch(t);
	struct driver drv;
	const struct driver_config dc = {.test = &test, .validate = true,
					 .on_epoch = epoch_done, .ctx = &eo};
	driver_init(&drv, t, &dc);
	while (!driver_finished(&drv) && !interrupt_pending()) {
		struct driver_step_info info;
		if (!driver_in_epoch_end(&drv))
			eo.lr = t->opt->lr; /* the rate the epoch trained at */
		if (driver_step(&drv, &info, &err) != SL_OK) {
			cmd_progress_clear(&prog);
			rc = fail(&err);
			goto out;
		}
		if (info.batch && !driver_in_epoch_end(&drv))
			cmd_progress_update(&prog, (double)(t->epoch - resumed) * t->train.n + t->pos,
					    "epoch %d/%d  batch %ld/%ld", t->epoch + 1, cfg.epochs,
					    t->step - (long)t->epoch * spe, spe);
	}
	double test_acc = eo.test_acc, test_loss = eo.test_loss;
	int saved_epoch = eo.saved_epoch; /* the epoch --out holds */
	clock_gettime(CLOCK_MONOTONIC, &t1);
	double seconds = (t1.tv_sec - eo.t0.tv_sec) + (t1.tv_nsec - eo.t0.tv_nsec) * 1e-9;
	if (interrupt_pending()) {
		rc = report_interrupt(t, o.out, out_once, saved_epoch, o.resume, eo.state_epoch);
		goto out;
	}

	/* The last epoch left the network settled, measured, evaluated and
	 * saved (a device or FIFO is written now); with no epoch at all in this
	 * run, that is still to do, and the log gets its header (and the rows
	 * a resumed run carried) alone, never a stale file from an earlier run. */
	bool none = t->epoch == resumed;
	if ((none && (trainer_settle_caps(t, &err) != SL_OK ||
		      trainer_evaluate(t, &test, 0, &test_acc, &test_loss, &err) != SL_OK ||
		      trainer_certified_accuracy(t, &test, 0, radii, nradii, &cert, &err) != SL_OK)) ||
	    (o.out && (none || out_once) &&
	     cmd_save_checkpoint(t, kind, test_acc, o.out, &err) != SL_OK) ||
	    (o.log && (none || log_once) && log_save(&log, o.log, &err) != SL_OK)) {
		rc = fail(&err);
		goto out;
	}
	struct attack_result ar = {0};
	if (eps > 0 && !interrupt_pending() &&
	    attack_eval_fgsm(t->net, &test, 0, (float)eps, &ar, &err) != SL_OK) {
		rc = fail(&err);
		goto out;
	}
	if (interrupt_pending()) {
		rc = report_interrupt(t, o.out, out_once, saved_epoch, o.resume, eo.state_epoch);
		goto out;
	}
	fprintf(stderr, "test accuracy %.2f%% (%u images) after %d epoch%s in %.1fs\n",
		100 * test_acc, test.n, t->epoch, t->epoch == 1 ? "" : "s", seconds);
	fprintf(stderr, "certified accuracy (L2, %s bound %.6g):", cert.sector ? "sector" : "product",
		cert.gamma);
	for (int k = 0; k < cert.nradii; k++)
		fprintf(stderr, "  r=%g: %.2f%%", cert.radius[k], 100 * cert.certified[k]);
	fprintf(stderr, "\n");
	if (eps > 0)
		fprintf(stderr,
			"FGSM (L-inf, eps %g, true labels, clipped to the pixel box): robust "
			"accuracy %.2f%%, attack success %.2f%% of %d correctly classified\n",
			eps, 100 * ar.robust_accuracy, 100 * ar.attack_success_rate,
			ar.clean_correct);
	if (o.out)
		fprintf(stderr, "saved %s\n", o.out);
	if (o.json)
		write_json(t, kind, test_acc, test_loss, seconds, t->settle_steps, sigma, eps, &ar,
			   &cert);
	rc = 0;
out:
	if (caught)
		interrupt_release(&guard);
	if (log.mem)
		fclose(log.mem);
	free(log.text);
	trainer_free(t);
	data_free(&train);
	data_free(&test);
	return rc;
}

int cmd_train(int argc, char **argv)
{
	return cmd_with_config("train", train_options, train_run, argc, argv);
}
