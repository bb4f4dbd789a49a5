/* cmd_lab: `sectorlab` with no command: load data, start training, open the lab. */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "sectorlab/certify.h"
#include "sectorlab/cmd.h"
#include "sectorlab/data.h"
#include "sectorlab/job.h"
#include "sectorlab/ui.h"

static void usage(FILE *f)
{
	fputs("usage: sectorlab [options]\n"
	      "\n"
	      "Open the lab: the paper's MNIST network trains live while the screen shows\n"
	      "its loss and accuracy, each layer's spectral norm against its cap, and a\n"
	      "test digit beside its FGSM adversarial; key a opens an editor for the\n"
	      "network's (nu, delta) that recomputes every layer's cap as you type.  Press\n"
	      "? in the lab for the keys.\n"
	      "\n"
	      "  --dataset NAME   mnist (default) or fashion\n"
	      "  --data-dir DIR   where the data is (default: $SECTORLAB_DATA, else data/)\n"
	      "  --mode MODE      spnorm (default) or vanilla\n"
	      "  --arch SPEC      the network as a layer spec (default the mlp,\n"
	      "                   784-50-20-10; see 'sectorlab train --help')\n"
	      "  --nu X --delta Y spnorm: network sector indices; each layer is capped at\n"
	      "                   its Theorem 4 bound from the Theorem 3 allocation\n"
	      "                   (default -2, 0.4: certified caps)\n"
	      "  --objective OBJ  allocation objective: product (default) or min\n"
	      "  --caps authors   the caps the authors' code hard-codes (1.8,1.8,0.9204),\n"
	      "                   which no theorem certifies\n"
	      "  --rho A,B,C      caps given by hand (not certified)\n"
	      "  --epochs N       epochs to train (default 30)\n"
	      "  --out FILE       save the network after every epoch (safetensors), so\n"
	      "                   quitting at any moment keeps the last complete epoch\n"
	      "  --seed S         random seed (default 1)\n"
	      "  --eps X          FGSM strength shown (default 0.1)\n"
	      "  --pace N         training steps per second, 0 for full speed (default 30)\n"
	      "  --config FILE    settings from FILE, one 'option = value' per line\n"
	      "                   (# starts a comment); options typed here win\n"
	      "  -h, --help       this help\n"
	      "\n"
	      "Options are written in full (no abbreviations such as --epo for --epochs).\n"
	      "Exit status: 0 after q, 1 a failure, 2 bad usage.\n",
	      f);
}

/* The options; a settings file (--config) may set any of them but help. */
enum { O_DATASET = 256, O_DATADIR, O_MODE, O_RHO, O_EPOCHS, O_SEED, O_EPS, O_PACE,
       O_HELP_LAB, O_NU, O_DELTA, O_CAPS, O_OBJECTIVE, O_OUT, O_ARCH };
static const struct option lab_options[] = {
	{"dataset", required_argument, 0, O_DATASET},
	{"data-dir", required_argument, 0, O_DATADIR},
	{"mode", required_argument, 0, O_MODE},
	{"arch", required_argument, 0, O_ARCH},
	{"rho", required_argument, 0, O_RHO},
	{"nu", required_argument, 0, O_NU},
	{"delta", required_argument, 0, O_DELTA},
	{"caps", required_argument, 0, O_CAPS},
	{"objective", required_argument, 0, O_OBJECTIVE},
	{"out", required_argument, 0, O_OUT},
	{"epochs", required_argument, 0, O_EPOCHS},
	{"seed", required_argument, 0, O_SEED},
	{"eps", required_argument, 0, O_EPS},
	{"pace", required_argument, 0, O_PACE},
	{"help-lab", no_argument, 0, O_HELP_LAB},
	{"help", no_argument, 0, 'h'},
	{0, 0, 0, 0},
};

/* --out: the network after every epoch, saved from the training thread. */
struct lab_saver {
	const char *path;
	enum data_kind kind;
	int saved_epoch; /* written by the training thread; read after job_stop */
};

static sl_status save_epoch(void *ctx, const struct trainer *t, double test_acc,
			    struct sl_error *err)
{
	struct lab_saver *s = ctx;
	sl_status st = cmd_save_checkpoint(t, s->kind, test_acc, s->path, err);
	if (st == SL_OK)
		s->saved_epoch = t->epoch;
	return st;
}

/* What the editor's Enter needs to train anew. */
struct lab_trainer {
	struct job_config jc;
	const struct sl_dataset *train, *test;
	struct caps_plan *caps; /* the running job's; its note is on the screen */
	struct job *job; /* the running one */
};

static struct job *restart(void *ctx, const struct caps_spec *spec, bool *lost, char *why,
			   size_t cap)
{
	struct lab_trainer *lt = ctx;
	*lost = false;
	struct train_config cfg = lt->jc.train;
	cfg.mode = TRAIN_SPNORM;
	cfg.caps = *spec;
	struct caps_plan caps;
	struct sl_error err;
	/* On the screen, not on stderr under curses. */
	if (caps_resolve(&cfg.caps, &cfg.arch, &caps, &err) != SL_OK) {
		snprintf(why, cap, "%s", err.msg);
		return NULL;
	}
	job_stop(lt->job);
	lt->job = NULL;
	*lt->caps = caps;
	lt->jc.train = cfg;
	if (job_start(&lt->jc, lt->train, lt->test, &lt->job, &err) != SL_OK) {
		snprintf(why, cap, "%s", err.msg);
		*lost = true;
		return NULL;
	}
	return lt->job;
}

static int lab_run(int argc, char **argv)
{
	const char *dataset = "mnist", *data_dir = NULL, *mode = "spnorm", *out_path = NULL;
	const char *arch_spec = NULL;
	struct cmd_caps_request req = {.nu = NAN, .delta = NAN};
	double eps = 0.1;
	int bad = 0, c;
	long epochs = 30, seed = 1, pace = 30;
	optind = 0; /* glibc: start afresh, whatever an earlier parse left */
	while ((c = cmd_getopt("lab", argc, argv, lab_options)) != -1) {
		switch (c) {
		case O_DATASET: dataset = optarg; break;
		case O_DATADIR: data_dir = optarg; break;
		case O_MODE: mode = optarg; break;
		case O_ARCH: arch_spec = optarg; break;
		case O_RHO:
			req.nrho = cmd_parse_doubles("--rho", optarg, CMD_RANGE_RHO, req.rho,
						      NN_MAX_LAYERS);
			bad |= req.nrho < 0;
			break;
		case O_NU: bad |= cmd_parse_double("--nu", optarg, CMD_RANGE_NU, &req.nu); break;
		case O_DELTA:
			bad |= cmd_parse_double("--delta", optarg, CMD_RANGE_DELTA, &req.delta);
			break;
		case O_CAPS: req.caps = optarg; break;
		case O_OBJECTIVE: req.objective = optarg; break;
		case O_OUT: out_path = optarg; break;
		case O_EPOCHS: bad |= cmd_parse_long("--epochs", optarg, 1, 100000, &epochs); break;
		case O_SEED: bad |= cmd_parse_long("--seed", optarg, 0, 0x7fffffffL, &seed); break;
		case O_EPS: bad |= cmd_parse_double("--eps", optarg, CMD_RANGE_FGSM_EPS, &eps); break;
		case O_PACE: bad |= cmd_parse_long("--pace", optarg, 0, 100000, &pace); break;
		case O_HELP_LAB:
		case 'h': usage(stdout); return 0;
		default: bad = 1; break;
		}
	}
	if (!bad && optind < argc) {
		fprintf(stderr, "sectorlab: unknown command or argument '%s'\n", argv[optind]);
		bad = 1;
	}
	if (bad) {
		fputs("Try 'sectorlab --help-lab'.\n", stderr);
		return 2;
	}

	struct sl_error err;
	status_clear(&err);
	struct job_config jc = {.train = train_config_default(), .eps = (float)eps,
				.eval_n = 1000, .steps_per_sec = (int)pace};
	enum data_kind kind;
	if (data_kind_parse(dataset, &kind, &err) != SL_OK ||
	    train_mode_parse(mode, &jc.train.mode, &err) != SL_OK) {
		fprintf(stderr, "sectorlab: %s\n", err.msg);
		return 2;
	}
	if (kind == DATA_CIFAR10) {
		fprintf(stderr, "sectorlab: the lab's network takes 28x28 grey images "
				"(mnist or fashion)\n");
		return 2;
	}
	if (arch_spec) {
		struct arch arch;
		int rc = cmd_arch("lab", NULL, arch_spec, "mlp", &arch);
		if (rc == 0 && arch_fit_input(&arch, (struct nn_shape){1, 28, 28}, &err) != SL_OK) {
			fprintf(stderr, "sectorlab: --arch: %s\n", err.msg);
			rc = 2;
		}
		if (rc)
			return rc;
		jc.train.arch = arch;
		jc.train.optim = model_default_optim(&arch);
	}
	jc.train.epochs = (int)epochs;
	jc.train.seed = (uint64_t)seed;
	/* The same caps as `sectorlab train`: certified unless asked otherwise. */
	struct caps_plan caps;
	int caps_rc = cmd_spnorm_caps("lab", &jc.train.arch, &req, &jc.train, &caps, NULL, 0);
	if (caps_rc)
		return caps_rc;

	const struct cmd_file files[] = {{"--out", out_path, true}};
	int files_rc = cmd_check_files("lab", files, 1);
	if (files_rc)
		return files_rc;
	struct lab_saver saver = {.path = out_path, .kind = kind, .saved_epoch = -1};
	if (out_path) {
		jc.on_epoch = save_epoch;
		jc.on_epoch_ctx = &saver;
	}
	const char *dir = cmd_data_dir(data_dir);
	struct sl_dataset train = {0}, test = {0};
	struct job *job = NULL;
	bool started = false;
	int rc = 1;
	if (data_load(kind, dir, true, &train, &err) != SL_OK ||
	    data_load(kind, dir, false, &test, &err) != SL_OK) {
		fprintf(stderr, "sectorlab: %s\n", err.msg);
		goto out;
	}
	jc.train.holdout = train_default_holdout(&train);
	if (job_start(&jc, &train, &test, &job, &err) != SL_OK) {
		fprintf(stderr, "sectorlab: %s\n", err.msg);
		goto out;
	}
	struct lab_trainer lt = {.jc = jc, .train = &train, .test = &test, .caps = &caps,
				 .job = job};
	char title[128];
	char label[ARCH_TEXT];
	snprintf(title, sizeof title, "%.60s on %s", cmd_arch_label(&jc.train.arch, label, sizeof label),
		 data_kind_name(kind));
	struct ui_context ctx = {
		.title = title,
		.arch = jc.train.arch,
		.caps = jc.train.caps,
		.data_source = train.source,
		.train_n = train.n - jc.train.holdout,
		.test_n = test.n,
		.caps_note = caps.note, /* rewritten when Enter in the editor restarts */
		.pace = (int)pace,
		.restart = restart,
		.restart_ctx = &lt,
	};
	rc = ui_lab_run(job, &ctx);
	job = lt.job; /* Enter in the editor may have replaced it */
out:
	started = job != NULL;
	job_stop(job); /* the training thread has ended: saver is ours again */
	if (out_path && started) {
		if (saver.saved_epoch >= 0)
			fprintf(stderr, "sectorlab: %s holds epoch %d\n", out_path,
				saver.saved_epoch);
		else
			fprintf(stderr, "sectorlab: no epoch was complete, %s was not written\n",
				out_path);
	}
	data_free(&train);
	data_free(&test);
	return rc;
}

int cmd_lab(int argc, char **argv)
{
	return cmd_with_config("lab", lab_options, lab_run, argc, argv);
}
