/* cmd_lab: `sectorlab` with no command: options, data, the lab's lanes, the screen. */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "sectorlab/certify.h"
#include "sectorlab/cmd.h"
#include "sectorlab/data.h"
#include "sectorlab/lab.h"
#include "sectorlab/ui.h"

static void usage(FILE *f)
{
	fputs("usage: sectorlab [options]\n"
	      "\n"
	      "Open the lab on a race: a plain (vanilla), an L2-regularised, a certified\n"
	      "(spnorm, caps allocated for the paper's (nu, delta) = (-2, 0.4)) and a\n"
	      "certified + margin network (the same caps, trained with train's loss for\n"
	      "them: lmt) train side by side from the same seed on the same batches.  The\n"
	      "screen shows their loss and accuracy on one epoch axis; clean, FGSM, PGD and\n"
	      "certified accuracy (at an L2 radius, the bound certify uses); the same test\n"
	      "digit attacked in every lane; robust accuracy against eps; and the\n"
	      "focused lane's spectral norms against their caps.  Screen 2, the sector\n"
	      "designer, maps where certified caps exist in the (nu, delta) plane,\n"
	      "recomputes every layer's cap as the cursor moves, and applies them to a\n"
	      "lane as it trains.  Keys 1-5 and Tab switch screens; ? lists every key.\n"
	      "The lab needs a terminal of 80x24 or more.\n"
	      "\n"
	      "  --lanes LIST     lanes to race, comma-separated, from vanilla, l2, spnorm,\n"
	      "                   margin (certified + margin: spnorm, lmt loss) and\n"
	      "                   authors (the authors' hard-coded caps, NOT certified);\n"
	      "                   default vanilla,l2,spnorm,margin (without margin when\n"
	      "                   the caps are not certified ones)\n"
	      "  --mode MODE      one lane only, of mode vanilla, l2 or spnorm\n"
	      "  --dataset NAME   mnist (default), fashion, or cifar10 (alexnet-lite)\n"
	      "  --model NAME     mlp (default for mnist and fashion) or alexnet-lite\n"
	      "                   (default for cifar10)\n"
	      "  --arch SPEC      the network as a layer spec (see 'sectorlab train --help')\n"
	      "  --data-dir DIR   where the data is (default: $SECTORLAB_DATA, else data/)\n"
	      "  --nu X --delta Y the spnorm lane: network sector indices; each layer is\n"
	      "                   capped at its Theorem 4 bound from the Theorem 3\n"
	      "                   allocation (default -2, 0.4: certified caps)\n"
	      "  --objective OBJ  allocation objective: product (default) or min\n"
	      "  --caps authors   the spnorm lane with the caps the authors' code\n"
	      "                   hard-codes (1.8,1.8,0.9204), which no theorem certifies\n"
	      "  --rho A,B,C      the spnorm lane's caps given by hand (not certified)\n"
	      "  --epochs N       epochs to train (default 30; key m adds 10)\n"
	      "  --out FILE       save the spnorm lane's network (else the first lane's)\n"
	      "                   after every epoch (safetensors), so quitting at any\n"
	      "                   moment keeps the last complete epoch\n"
	      "  --seed S         random seed, the same in every lane (default 1)\n"
	      "  --eps X          attack strength shown, L-inf (default 0.1)\n"
	      "  --radius R       certified accuracy shown at L2 radius R (pixels\n"
	      "                   x/255 - 0.5, as certify; default 0.5)\n"
	      "  --pace N         training steps per second in each lane, 0 for full\n"
	      "                   speed (default 30)\n"
	      "  --paused         open paused (space starts, s steps)\n"
	      "  --config FILE    settings from FILE, one 'option = value' per line\n"
	      "                   (# starts a comment); options typed here win\n"
	      "  -h, --help       this help\n"
	      "\n"
	      "Options are written in full (no abbreviations such as --epo for --epochs).\n"
	      "Exit status: 0 after q, 128 + the signal after a signal, 1 a failure (no\n"
	      "terminal included), 2 bad usage.\n",
	      f);
}

/* The options; a settings file (--config) may set any of them but help. */
enum { O_DATASET = 256, O_DATADIR, O_MODE, O_RHO, O_EPOCHS, O_SEED, O_EPS, O_PACE,
       O_HELP_LAB, O_NU, O_DELTA, O_CAPS, O_OBJECTIVE, O_OUT, O_ARCH, O_MODEL, O_LANES,
       O_PAUSED, O_RADIUS };
static const struct option lab_options[] = {
	{"dataset", required_argument, 0, O_DATASET},
	{"data-dir", required_argument, 0, O_DATADIR},
	{"lanes", required_argument, 0, O_LANES},
	{"mode", required_argument, 0, O_MODE},
	{"model", required_argument, 0, O_MODEL},
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
	{"radius", required_argument, 0, O_RADIUS},
	{"pace", required_argument, 0, O_PACE},
	{"paused", no_argument, 0, O_PAUSED},
	{"help-lab", no_argument, 0, O_HELP_LAB},
	{"help", no_argument, 0, 'h'},
	{0, 0, 0, 0},
};

/* --out: the hooked lane's network after every epoch, saved from its thread. */
struct lab_saver {
	const char *path;
	enum data_kind kind;
	int saved_epoch; /* written by the training thread; read after the lab stops */
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

/* "vanilla,l2,spnorm,margin" into kinds; returns the count, or -1 after saying why. */
static int parse_lanes(const char *text, enum lab_lane_kind *kinds)
{
	char buf[256];
	snprintf(buf, sizeof buf, "%s", text);
	int n = 0;
	char *save = NULL;
	for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		struct sl_error err;
		if (n == LAB_MAX_LANES) {
			fprintf(stderr, "sectorlab lab: --lanes takes at most %d lanes\n",
				LAB_MAX_LANES);
			return -1;
		}
		if (lab_lane_kind_parse(tok, &kinds[n], &err) != SL_OK) {
			fprintf(stderr, "sectorlab lab: --lanes: %s\n", err.msg);
			return -1;
		}
		n++;
	}
	if (n == 0) {
		fprintf(stderr, "sectorlab lab: --lanes needs at least one lane\n");
		return -1;
	}
	return n;
}

static int lab_run(int argc, char **argv)
{
	const char *dataset = NULL, *data_dir = NULL, *mode = NULL, *out_path = NULL;
	const char *arch_spec = NULL, *model = NULL, *lanes_text = NULL;
	struct cmd_caps_request req = {.nu = NAN, .delta = NAN};
	double eps = 0.1, radius = LAB_CERT_RADIUS;
	int bad = 0, c;
	bool paused = false;
	long epochs = 30, seed = 1, pace = 30;
	optind = 0; /* glibc: start afresh, whatever an earlier parse left */
	while ((c = cmd_getopt("lab", argc, argv, lab_options)) != -1) {
		switch (c) {
		case O_DATASET: dataset = optarg; break;
		case O_DATADIR: data_dir = optarg; break;
		case O_LANES: lanes_text = optarg; break;
		case O_MODE: mode = optarg; break;
		case O_MODEL: model = optarg; break;
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
		case O_RADIUS:
			bad |= cmd_parse_double("--radius", optarg, CMD_ABOVE(0, 100), &radius);
			break;
		case O_PACE: bad |= cmd_parse_long("--pace", optarg, 0, 100000, &pace); break;
		case O_PAUSED: paused = true; break;
		case O_HELP_LAB:
		case 'h': usage(stdout); return 0;
		default: bad = 1; break;
		}
	}
	if (!bad && optind < argc) {
		fprintf(stderr, "sectorlab: unknown command or argument '%s'\n", argv[optind]);
		bad = 1;
	}
	if (!bad && mode && lanes_text) {
		fprintf(stderr, "sectorlab lab: give --mode (one lane) or --lanes, not both\n");
		bad = 1;
	}
	if (bad) {
		fputs("Try 'sectorlab --help-lab'.\n", stderr);
		return 2;
	}

	struct sl_error err;
	status_clear(&err);
	/* The network and its data: CIFAR-10 trains alexnet-lite unless told. */
	enum data_kind kind = DATA_MNIST;
	if (dataset && data_kind_parse(dataset, &kind, &err) != SL_OK) {
		fprintf(stderr, "sectorlab: %s\n", err.msg);
		return 2;
	}
	struct arch arch;
	int rc = cmd_arch("lab", model, arch_spec, kind == DATA_CIFAR10 ? "alexnet-lite" : "mlp",
			  &arch);
	if (rc)
		return rc;
	if (!dataset && data_kind_parse(model_default_dataset(&arch), &kind, &err) != SL_OK) {
		fprintf(stderr, "sectorlab: %s\n", err.msg);
		return 2;
	}
	bool grey = kind != DATA_CIFAR10;
	struct nn_shape shape = grey ? (struct nn_shape){1, 28, 28} : (struct nn_shape){3, 32, 32};
	if (arch_fit_input(&arch, shape, &err) != SL_OK) {
		fprintf(stderr, "sectorlab lab: %s; %s has %s\n", err.msg, data_kind_name(kind),
			grey ? "28x28 grey images (try --model mlp)"
			     : "32x32 colour images (try --model alexnet-lite)");
		return 2;
	}

	/* The lanes: --lanes, or one lane of --mode, or the race. */
	enum lab_lane_kind kinds[LAB_MAX_LANES] = {LAB_LANE_VANILLA, LAB_LANE_L2, LAB_LANE_SPNORM,
						   LAB_LANE_MARGIN};
	int nlanes = LAB_RACE_LANES;
	struct train_config base = train_config_for(&arch);
	base.epochs = (int)epochs;
	base.seed = (uint64_t)seed;
	if (lanes_text && (nlanes = parse_lanes(lanes_text, kinds)) < 0) {
		fputs("Try 'sectorlab --help-lab'.\n", stderr);
		return 2;
	}
	if (mode) {
		if (train_mode_parse(mode, &base.mode, &err) != SL_OK) {
			fprintf(stderr, "sectorlab: %s\n", err.msg);
			return 2;
		}
		kinds[0] = base.mode == TRAIN_VANILLA ? LAB_LANE_VANILLA
			   : base.mode == TRAIN_L2    ? LAB_LANE_L2
						      : LAB_LANE_SPNORM;
		nlanes = 1;
	} else {
		base.mode = TRAIN_SPNORM; /* the caps options shape the spnorm lanes */
	}
	/* Caps options shape the spnorm and margin lanes: with none of them
	 * they would be dropped without a word. */
	bool capped = false;
	for (int i = 0; i < nlanes; i++)
		capped |= kinds[i] == LAB_LANE_SPNORM || kinds[i] == LAB_LANE_MARGIN;
	bool caps_options = req.nrho > 0 || req.caps || !isnan(req.nu) || !isnan(req.delta) ||
			    req.objective;
	if (lanes_text && !capped && caps_options) {
		fprintf(stderr, "sectorlab lab: --nu, --delta, --objective, --rho and --caps set the "
				"caps of the spnorm and margin lanes, and --lanes %s has neither\n"
				"Try 'sectorlab --help-lab'.\n",
			lanes_text);
		return 2;
	}
	/* The same caps as `sectorlab train`: certified unless asked otherwise;
	 * in a one-lane lab of another mode, caps options are refused. */
	struct caps_plan plan;
	rc = cmd_spnorm_caps("lab", &arch, &req, &base, &plan, NULL, 0);
	if (rc)
		return rc;
	/* The race's margin lane needs certified caps: without them it races
	 * three lanes. */
	if (!lanes_text && !mode && base.caps.source != CAPS_CERTIFIED)
		nlanes = LAB_RACE_LANES - 1;
	struct lab_config cfg = {.nlanes = nlanes, .eps = (float)eps, .pace = (int)pace,
				 .cert_radius = radius,
				 .paused = paused};
	int hooked = -1;
	for (int i = 0; i < nlanes; i++) {
		if (lab_lane_make(kinds[i], &base, &base.caps, &cfg.lane[i], &err) != SL_OK) {
			fprintf(stderr, "sectorlab lab: %s lane: %s\n", lab_lane_kind_name(kinds[i]),
				err.msg);
			return 2;
		}
		if (hooked < 0 && kinds[i] == LAB_LANE_SPNORM)
			hooked = i;
	}

	const struct cmd_file files[] = {{"--out", out_path, true}};
	int files_rc = cmd_check_files("lab", files, 1);
	if (files_rc)
		return files_rc;
	/* The training thread rewrites --out after every epoch; a FIFO's reader
	 * stops at the first close, and the next epoch's open would wait for
	 * another reader for ever (and quitting the lab for that thread). */
	struct stat out_st;
	if (out_path && stat(out_path, &out_st) == 0 && S_ISFIFO(out_st.st_mode)) {
		fprintf(stderr, "sectorlab lab: --out %s is a FIFO, but the lab rewrites --out "
				"after every epoch: give a file\n",
			out_path);
		return 2;
	}
	/* Everything the options can get wrong is said; now the terminal. */
	char why[256];
	if (!ui_terminal_usable(why, sizeof why)) {
		fprintf(stderr, "sectorlab: %s\n", why);
		return 1;
	}
	struct lab_saver saver = {.path = out_path, .kind = kind, .saved_epoch = -1};
	if (out_path) {
		cfg.on_epoch = save_epoch;
		cfg.on_epoch_ctx = &saver;
		cfg.hook_lanes = 1u << (hooked >= 0 ? hooked : 0);
	}
	const char *dir = cmd_data_dir(data_dir);
	struct sl_dataset train = {0}, test = {0};
	if (data_load(kind, dir, true, &train, &err) != SL_OK ||
	    data_load(kind, dir, false, &test, &err) != SL_OK) {
		fprintf(stderr, "sectorlab: %s\n", err.msg);
		data_free(&train);
		data_free(&test);
		return 1;
	}
	uint32_t holdout = train_default_holdout(&train);
	cfg.eval_n = lab_default_eval_n(&test);
	for (int i = 0; i < nlanes; i++)
		cfg.lane[i].train.holdout = holdout;
	char label[ARCH_TEXT];
	lab_title_of(cfg.title, sizeof cfg.title, cmd_arch_label(&arch, label, sizeof label), kind,
		     &train, holdout, &test);
	cfg.data = kind;
	struct lab *lab;
	if (lab_new(&cfg, &train, &test, &lab, &err) != SL_OK) {
		fprintf(stderr, "sectorlab: %s\n", err.msg);
		return 1;
	}
	struct ui_context ctx = {
		.title = lab_title(lab),
		.data_dir = dir,
		.data_fixed = out_path != NULL,
		.data_source = lab_train_set(lab)->source,
		.arch = arch,
		.editor_restarts = true,
	};
	rc = ui_lab_run(lab, &ctx);
	lab_free(lab); /* every training thread has ended: saver is ours again */
	if (out_path) {
		if (saver.saved_epoch >= 0)
			fprintf(stderr, "sectorlab: %s holds epoch %d\n", out_path,
				saver.saved_epoch);
		else
			fprintf(stderr, "sectorlab: no epoch was complete, %s was not written\n",
				out_path);
	}
	return rc;
}

int cmd_lab(int argc, char **argv)
{
	return cmd_with_config("lab", lab_options, lab_run, argc, argv);
}
