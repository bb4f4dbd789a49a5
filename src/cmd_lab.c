/*
 * cmd_lab: `sectorlab` with no command: options, data, the lab's lanes, the
 * screen; and lessons, which are settings files of these options: --lesson
 * NAME finds one, --config FILE reads any, --check prints what they open, and
 * the lab's key w writes the state it is in as one (save_settings).  The
 * option names live here once: what reads a setting and what writes it are
 * this file's two halves.
 */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "sectorlab/certify.h"
#include "sectorlab/cmd.h"
#include "sectorlab/data.h"
#include "sectorlab/io.h"
#include "sectorlab/lab.h"
#include "sectorlab/ui.h"

#ifndef SECTORLAB_LESSONDIR
#define SECTORLAB_LESSONDIR "/usr/local/share/sectorlab/lessons"
#endif
/* Lessons in a checkout, from its top directory. */
#define LESSON_DIR "assets/lessons"
#define LESSON_EXT ".conf"

static void list_lessons(FILE *f);

static void usage(FILE *f)
{
	fputs("usage: sectorlab [options]\n"
	      "       sectorlab --lesson NAME [options]\n"
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
	      "  --lr X           every lane's learning rate (default the model's: Adam\n"
	      "                   1e-3 for mlp; keys > and < double and halve it)\n"
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
	      "  --digit N        the test image shown and attacked (default 0)\n"
	      "  --screen NAME    the screen to open on: train (default), designer,\n"
	      "                   gallery, certificate or help\n"
	      "  --note TEXT      a line the lab shows under the screen when it opens\n"
	      "  --attack-preset P, --attack A, --attack-norm N, --attack-eps X,\n"
	      "  --attack-steps K, --attack-step-size S, --attack-step-travel T,\n"
	      "  --attack-restarts R, --attack-random-start, --attack-labels L,\n"
	      "  --attack-no-clip, --attack-seed S\n"
	      "                   the attack gallery's recipe, as the options of\n"
	      "                   'sectorlab attack' without 'attack-' (default: PGD-40,\n"
	      "                   L-inf, at --eps)\n"
	      "  --lesson NAME    open a lesson (listed below): the settings file\n"
	      "                   NAME.conf in assets/lessons/ (from the top of a\n"
	      "                   checkout), else where 'make install' put them\n"
	      "  --config FILE    settings from FILE, one 'option = value' per line\n"
	      "                   (# starts a comment); options typed here win\n"
	      "  --check          check the settings and the data, print them as a\n"
	      "                   settings file and exit without opening the lab\n"
	      "  -h, --help       this help\n"
	      "\n"
	      "In the lab, key w writes the settings the lab is in then (lanes, caps,\n"
	      "learning rate, eps, pace, digit, screen: not the weights) to a new file\n"
	      "sectorlab-N.conf in the current directory and says where; --config FILE\n"
	      "opens the lab so again, training from the same seed on the same batches.\n"
	      "\n"
	      "Options are written in full (no abbreviations such as --epo for --epochs).\n"
	      "Exit status: 0 after q, 128 + the signal after a signal, 1 a failure (no\n"
	      "terminal included), 2 bad usage.\n",
	      f);
	list_lessons(f);
}

/* The options; a settings file (--config, --lesson) may set any of them but
 * help. */
enum { O_DATASET = 256, O_DATADIR, O_MODE, O_RHO, O_EPOCHS, O_SEED, O_EPS, O_PACE,
       O_HELP_LAB, O_NU, O_DELTA, O_CAPS, O_OBJECTIVE, O_OUT, O_ARCH, O_MODEL, O_LANES,
       O_PAUSED, O_RADIUS, O_LR, O_DIGIT, O_SCREEN, O_NOTE, O_CHECK, O_A_PRESET, O_A_KIND,
       O_A_NORM, O_A_EPS, O_A_STEPS, O_A_STEP_SIZE, O_A_STEP_TRAVEL, O_A_RESTARTS,
       O_A_RANDOM_START, O_A_LABELS, O_A_NO_CLIP, O_A_SEED };
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
	{"lr", required_argument, 0, O_LR},
	{"seed", required_argument, 0, O_SEED},
	{"eps", required_argument, 0, O_EPS},
	{"radius", required_argument, 0, O_RADIUS},
	{"pace", required_argument, 0, O_PACE},
	{"paused", no_argument, 0, O_PAUSED},
	{"digit", required_argument, 0, O_DIGIT},
	{"screen", required_argument, 0, O_SCREEN},
	{"note", required_argument, 0, O_NOTE},
	{"check", no_argument, 0, O_CHECK},
	{"attack-preset", required_argument, 0, O_A_PRESET},
	{"attack", required_argument, 0, O_A_KIND},
	{"attack-norm", required_argument, 0, O_A_NORM},
	{"attack-eps", required_argument, 0, O_A_EPS},
	{"attack-steps", required_argument, 0, O_A_STEPS},
	{"attack-step-size", required_argument, 0, O_A_STEP_SIZE},
	{"attack-step-travel", required_argument, 0, O_A_STEP_TRAVEL},
	{"attack-restarts", required_argument, 0, O_A_RESTARTS},
	{"attack-random-start", no_argument, 0, O_A_RANDOM_START},
	{"attack-labels", required_argument, 0, O_A_LABELS},
	{"attack-no-clip", no_argument, 0, O_A_NO_CLIP},
	{"attack-seed", required_argument, 0, O_A_SEED},
	{"help-lab", no_argument, 0, O_HELP_LAB},
	{"help", no_argument, 0, 'h'},
	{0, 0, 0, 0},
};

/* What the options say, as typed (texts kept so messages can name the
 * settings file's line a value came from: cmd_origin). */
struct lab_options {
	const char *dataset, *data_dir, *mode, *model, *arch_spec, *lanes_text, *out_path;
	const char *screen_text, *note, *digit_text;
	const char *caps_text; /* the last of --nu, --delta, --rho, --caps, --objective */
	struct cmd_caps_request req;
	struct cmd_recipe_request rq; /* the gallery's recipe */
	double attack_eps;            /* NAN: --eps, or the preset's */
	bool recipe_given;
	double eps, radius, lr; /* lr: NAN for the model's */
	long epochs, seed, pace, digit;
	bool paused, check;
};

/* What they resolve to. */
struct lab_setup {
	enum data_kind kind;
	struct arch arch;
	struct lab_config cfg;
	int screen; /* ui_screen_parse */
	struct attack_recipe recipe;
	bool have_recipe; /* the options asked for one */
};

/* "lab", or "lab: FILE line N" when text came from a settings file: the
 * command name the shared helpers put in their messages. */
static const char *who(const char *text, char *buf, size_t cap)
{
	struct cmd_origin o = cmd_origin(text);
	size_t n = strlen(o.s);
	if (n < 2)
		return "lab";
	snprintf(buf, cap, "lab: %.*s", (int)(n - 2), o.s); /* without the ": " */
	return buf;
}

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
			fprintf(stderr, "sectorlab lab: %s--lanes takes at most %d lanes\n",
				cmd_origin(text).s, LAB_MAX_LANES);
			return -1;
		}
		if (lab_lane_kind_parse(tok, &kinds[n], &err) != SL_OK) {
			fprintf(stderr, "sectorlab lab: %s--lanes: %s\n", cmd_origin(text).s, err.msg);
			return -1;
		}
		n++;
	}
	if (n == 0) {
		fprintf(stderr, "sectorlab lab: %s--lanes needs at least one lane\n",
			cmd_origin(text).s);
		return -1;
	}
	return n;
}

/* Read argv into o: 0, 1 when help was asked for (and printed), or 2 after
 * saying what is wrong. */
static int parse_options(int argc, char **argv, struct lab_options *o)
{
	*o = (struct lab_options){.req = {.nu = NAN, .delta = NAN}, .eps = 0.1, .lr = NAN,
				  .radius = LAB_CERT_RADIUS, .rq = {.prefix = "attack-"},
				  .attack_eps = NAN,
				  .epochs = 30, .seed = 1, .pace = 30};
	int bad = 0, c;
	optind = 0; /* glibc: start afresh, whatever an earlier parse left */
	while ((c = cmd_getopt("lab", argc, argv, lab_options)) != -1) {
		struct cmd_caps_request *req = &o->req;
		switch (c) {
		case O_DATASET: o->dataset = optarg; break;
		case O_DATADIR: o->data_dir = optarg; break;
		case O_LANES: o->lanes_text = optarg; break;
		case O_MODE: o->mode = optarg; break;
		case O_MODEL: o->model = optarg; break;
		case O_ARCH: o->arch_spec = optarg; break;
		case O_RHO:
			req->nrho = cmd_parse_doubles("--rho", optarg, CMD_RANGE_RHO, req->rho,
						      NN_MAX_LAYERS);
			bad |= req->nrho < 0;
			o->caps_text = optarg;
			break;
		case O_NU:
			bad |= cmd_parse_double("--nu", optarg, CMD_RANGE_NU, &req->nu);
			o->caps_text = optarg;
			break;
		case O_DELTA:
			bad |= cmd_parse_double("--delta", optarg, CMD_RANGE_DELTA, &req->delta);
			o->caps_text = optarg;
			break;
		case O_CAPS: req->caps = o->caps_text = optarg; break;
		case O_OBJECTIVE: req->objective = o->caps_text = optarg; break;
		case O_OUT: o->out_path = optarg; break;
		case O_EPOCHS: bad |= cmd_parse_long("--epochs", optarg, 1, 100000, &o->epochs); break;
		case O_LR: bad |= cmd_parse_double("--lr", optarg, CMD_ABOVE(0, 100), &o->lr); break;
		case O_SEED: bad |= cmd_parse_long("--seed", optarg, 0, 0x7fffffffL, &o->seed); break;
		case O_EPS: bad |= cmd_parse_double("--eps", optarg, CMD_RANGE_FGSM_EPS, &o->eps); break;
		case O_RADIUS:
			bad |= cmd_parse_double("--radius", optarg, CMD_ABOVE(0, 100), &o->radius);
			break;
		case O_PACE: bad |= cmd_parse_long("--pace", optarg, 0, 100000, &o->pace); break;
		case O_PAUSED: o->paused = true; break;
		case O_DIGIT:
			bad |= cmd_parse_long("--digit", optarg, 0, 0x7fffffffL, &o->digit);
			o->digit_text = optarg;
			break;
		case O_SCREEN: o->screen_text = optarg; break;
		case O_NOTE: o->note = optarg; break;
		case O_CHECK: o->check = true; break;
		case O_A_PRESET: o->rq.preset = optarg; break;
		case O_A_KIND: o->rq.attack = optarg; break;
		case O_A_NORM: o->rq.norm = optarg; break;
		case O_A_EPS:
			bad |= cmd_parse_double("--attack-eps", optarg, CMD_RANGE(0, 100),
						&o->attack_eps);
			break;
		case O_A_STEPS:
			bad |= cmd_parse_long("--attack-steps", optarg, 1, 1000000, &o->rq.steps);
			o->rq.steps_given = true;
			break;
		case O_A_STEP_SIZE:
			bad |= cmd_parse_double("--attack-step-size", optarg, CMD_ABOVE(0, 100),
						&o->rq.step_size);
			o->rq.step_size_given = true;
			break;
		case O_A_STEP_TRAVEL:
			bad |= cmd_parse_double("--attack-step-travel", optarg, CMD_ABOVE(0, 100),
						&o->rq.step_travel);
			o->rq.step_travel_given = true;
			break;
		case O_A_RESTARTS:
			bad |= cmd_parse_long("--attack-restarts", optarg, 1, 10000, &o->rq.restarts);
			o->rq.restarts_given = true;
			break;
		case O_A_RANDOM_START: o->rq.random_start = true; break;
		case O_A_LABELS: o->rq.labels = optarg; break;
		case O_A_NO_CLIP: o->rq.no_clip = true; break;
		case O_A_SEED:
			bad |= cmd_parse_long("--attack-seed", optarg, 0, 0x7fffffffL, &o->rq.seed);
			o->rq.seed_given = true;
			break;
		case O_HELP_LAB:
		case 'h': usage(stdout); return 1;
		default: bad = 1; break;
		}
	}
	if (!bad && optind < argc) {
		fprintf(stderr, "sectorlab: unknown command or argument '%s'\n", argv[optind]);
		bad = 1;
	}
	const struct cmd_recipe_request *q = &o->rq;
	o->recipe_given = q->preset || q->attack || q->norm || q->labels || q->steps_given ||
			  q->step_size_given || q->step_travel_given || q->restarts_given ||
			  q->random_start || q->no_clip || q->seed_given || !isnan(o->attack_eps);
	if (!bad && q->step_size_given && q->step_travel_given) {
		fprintf(stderr, "sectorlab lab: %sgive --attack-step-size or --attack-step-travel, "
				"not both\n",
			cmd_origin(o->rq.preset).s);
		bad = 1;
	}
	for (const char *p = o->note; !bad && p && *p; p++)
		if ((unsigned char)*p < 32 || *p == 127) {
			fprintf(stderr, "sectorlab lab: %s--note is one line of text, without "
					"control characters\n",
				cmd_origin(o->note).s);
			bad = 1;
		}
	if (!bad && o->mode && o->lanes_text) {
		struct cmd_origin from = cmd_origin(o->mode);
		if (!from.s[0])
			from = cmd_origin(o->lanes_text);
		fprintf(stderr, "sectorlab lab: %sgive --mode (one lane) or --lanes, not both\n",
			from.s);
		bad = 1;
	}
	return bad ? 2 : 0;
}

/* The lab the options describe, without data yet: 0, or 2 after saying why. */
static int resolve(const struct lab_options *o, struct lab_setup *s)
{
	struct sl_error err;
	status_clear(&err);
	char whobuf[4400];
	memset(s, 0, sizeof *s);
	/* The network and its data: CIFAR-10 trains alexnet-lite unless told. */
	s->kind = DATA_MNIST;
	if (o->dataset && data_kind_parse(o->dataset, &s->kind, &err) != SL_OK) {
		fprintf(stderr, "sectorlab: %s%s\n", cmd_origin(o->dataset).s, err.msg);
		return 2;
	}
	const char *arch_from = o->arch_spec ? o->arch_spec : o->model;
	int rc = cmd_arch(who(arch_from, whobuf, sizeof whobuf), o->model, o->arch_spec,
			  s->kind == DATA_CIFAR10 ? "alexnet-lite" : "mlp", &s->arch);
	if (rc)
		return rc;
	if (!o->dataset &&
	    data_kind_parse(model_default_dataset(&s->arch), &s->kind, &err) != SL_OK) {
		fprintf(stderr, "sectorlab: %s\n", err.msg);
		return 2;
	}
	bool grey = s->kind != DATA_CIFAR10;
	struct nn_shape shape = grey ? (struct nn_shape){1, 28, 28} : (struct nn_shape){3, 32, 32};
	if (arch_fit_input(&s->arch, shape, &err) != SL_OK) {
		fprintf(stderr, "sectorlab lab: %s%s; %s has %s\n", cmd_origin(arch_from).s, err.msg,
			data_kind_name(s->kind),
			grey ? "28x28 grey images (try --model mlp)"
			     : "32x32 colour images (try --model alexnet-lite)");
		return 2;
	}
	s->screen = o->screen_text ? ui_screen_parse(o->screen_text) : 0;
	if (s->screen < 0) {
		fprintf(stderr, "sectorlab lab: %s--screen takes %s, not '%s'\n",
			cmd_origin(o->screen_text).s, ui_screen_names(), o->screen_text);
		return 2;
	}

	/* The gallery's recipe: attack's options, at --attack-eps (else the
	 * preset's eps, else the lab's). */
	if (o->recipe_given) {
		if (cmd_attack_recipe("lab", &o->rq, 10, &s->recipe) != 0)
			return 2;
		if (!isnan(o->attack_eps))
			s->recipe.eps = (float)o->attack_eps;
		else if (!o->rq.preset || s->recipe.eps == 0)
			s->recipe.eps = (float)o->eps;
		if (attack_recipe_check(&s->recipe, 10, &err) != SL_OK) {
			fprintf(stderr, "sectorlab lab: the attack recipe: %s\n", err.msg);
			return 2;
		}
		s->have_recipe = true;
	}

	/* The lanes: --lanes, or one lane of --mode, or the race. */
	enum lab_lane_kind kinds[LAB_MAX_LANES] = {LAB_LANE_VANILLA, LAB_LANE_L2, LAB_LANE_SPNORM,
						   LAB_LANE_MARGIN};
	int nlanes = LAB_RACE_LANES;
	struct train_config base = train_config_for(&s->arch);
	base.epochs = (int)o->epochs;
	base.seed = (uint64_t)o->seed;
	if (!isnan(o->lr))
		base.optim.lr = o->lr;
	if (o->lanes_text && (nlanes = parse_lanes(o->lanes_text, kinds)) < 0)
		return 2;
	if (o->mode) {
		if (train_mode_parse(o->mode, &base.mode, &err) != SL_OK) {
			fprintf(stderr, "sectorlab: %s%s\n", cmd_origin(o->mode).s, err.msg);
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
	const struct cmd_caps_request *req = &o->req;
	bool caps_options = req->nrho > 0 || req->caps || !isnan(req->nu) || !isnan(req->delta) ||
			    req->objective;
	if (o->lanes_text && !capped && caps_options) {
		fprintf(stderr, "sectorlab lab: %s--nu, --delta, --objective, --rho and --caps set "
				"the caps of the spnorm and margin lanes, and --lanes %s has neither\n",
			cmd_origin(o->caps_text).s, o->lanes_text);
		return 2;
	}
	/* The same caps as `sectorlab train`: certified unless asked otherwise;
	 * in a one-lane lab of another mode, caps options are refused. */
	struct caps_plan plan;
	rc = cmd_spnorm_caps(who(o->caps_text ? o->caps_text : o->mode, whobuf, sizeof whobuf),
			     &s->arch, &o->req, &base, &plan, NULL, 0);
	if (rc)
		return rc;
	/* The race's margin lane needs certified caps: without them it races
	 * three lanes. */
	if (!o->lanes_text && !o->mode && base.caps.source != CAPS_CERTIFIED)
		nlanes = LAB_RACE_LANES - 1;
	s->cfg = (struct lab_config){.nlanes = nlanes, .eps = (float)o->eps, .pace = (int)o->pace,
				     .cert_radius = o->radius, .paused = o->paused,
				     .digit = (uint32_t)o->digit, .data = s->kind};
	for (int i = 0; i < nlanes; i++) {
		if (lab_lane_make(kinds[i], &base, &base.caps, &s->cfg.lane[i], &err) != SL_OK) {
			fprintf(stderr, "sectorlab lab: %s%s lane: %s\n",
				cmd_origin(o->lanes_text).s, lab_lane_kind_name(kinds[i]), err.msg);
			return 2;
		}
	}
	return 0;
}

/* ---- lessons ------------------------------------------------------------- */

/* Where lessons are: the checkout's, then the installed ones. */
static const char *const lesson_dirs[] = {LESSON_DIR, SECTORLAB_LESSONDIR};
#define NLESSON_DIRS ((int)(sizeof lesson_dirs / sizeof lesson_dirs[0]))

static bool is_file(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* A lesson's one-line description: its first comment line. */
static void lesson_title(const char *path, char *buf, size_t cap)
{
	buf[0] = '\0';
	FILE *f = fopen(path, "r");
	if (!f)
		return;
	char line[256];
	while (fgets(line, sizeof line, f)) {
		if (line[0] != '#')
			continue;
		const char *t = line + 1;
		t += strspn(t, " \t");
		snprintf(buf, cap, "%.*s", (int)strcspn(t, "\r\n"), t);
		break;
	}
	fclose(f);
}

static int by_name(const void *a, const void *b)
{
	return strcmp(a, b);
}

/* The lessons there are, name and description, from the first directory
 * that has any. */
static void list_lessons(FILE *f)
{
	for (int d = 0; d < NLESSON_DIRS; d++) {
		DIR *dir = opendir(lesson_dirs[d]);
		if (!dir)
			continue;
		char names[32][64];
		int n = 0;
		for (struct dirent *e; (e = readdir(dir)) != NULL && n < 32;) {
			size_t len = strlen(e->d_name), ext = strlen(LESSON_EXT);
			if (len > ext && len - ext < sizeof names[0] &&
			    strcmp(e->d_name + len - ext, LESSON_EXT) == 0 && e->d_name[0] != '.')
				snprintf(names[n++], sizeof names[0], "%.*s", (int)(len - ext),
					 e->d_name);
		}
		closedir(dir);
		if (n == 0)
			continue;
		qsort(names, (size_t)n, sizeof names[0], by_name);
		fprintf(f, "\nLessons (in %s/; sectorlab --lesson NAME):\n", lesson_dirs[d]);
		for (int i = 0; i < n; i++) {
			char path[PATH_MAX], title[200];
			snprintf(path, sizeof path, "%s/%s%s", lesson_dirs[d], names[i], LESSON_EXT);
			lesson_title(path, title, sizeof title);
			fprintf(f, "  %-14s %s\n", names[i], title);
		}
		return;
	}
	fprintf(f, "\nNo lessons found (looked in %s/ and %s/).\n", LESSON_DIR,
		SECTORLAB_LESSONDIR);
}

/* The file of lesson name into path: 0, or 2 after saying why. */
static int find_lesson(const char *name, char *path, size_t cap)
{
	bool plain = *name && strlen(name) < 64 && name[0] != '.';
	for (const char *p = name; *p && plain; p++)
		plain = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
			(*p >= '0' && *p <= '9') || *p == '-' || *p == '_' || *p == '.';
	if (!plain) {
		fprintf(stderr, "sectorlab: --lesson takes a lesson's name (letters, digits, '-', "
				"'_'), not '%s'; a settings file of your own opens with --config "
				"FILE\n",
			name);
		return 2;
	}
	for (int d = 0; d < NLESSON_DIRS; d++) {
		snprintf(path, cap, "%s/%s%s", lesson_dirs[d], name, LESSON_EXT);
		if (is_file(path))
			return 0;
	}
	fprintf(stderr, "sectorlab: no lesson '%s' (looked in %s/ and %s/)\n", name, LESSON_DIR,
		SECTORLAB_LESSONDIR);
	list_lessons(stderr);
	return 2;
}

/* ---- settings written ---------------------------------------------------- */

/* v as the shortest text that reads back as the same double. */
static const char *exact(double v, char *buf, size_t cap)
{
	for (int digits = 6; digits <= 17; digits++) {
		snprintf(buf, cap, "%.*g", digits, v);
		if (strtod(buf, NULL) == v)
			break;
	}
	return buf;
}

/* The same for a float (the lab keeps eps as one). */
static const char *exactf(float v, char *buf, size_t cap)
{
	for (int digits = 6; digits <= 9; digits++) {
		snprintf(buf, cap, "%.*g", digits, (double)v);
		if ((float)strtod(buf, NULL) == v)
			break;
	}
	return buf;
}

/* The gallery's recipe, every setting of it, so that no default decides. */
static void write_recipe(FILE *f, const struct attack_recipe *r)
{
	char num[64];
	fprintf(f, "attack              = %s\n", attack_kind_name(r->kind));
	fprintf(f, "attack-norm         = %s\n", attack_norm_name(r->norm));
	fprintf(f, "attack-eps          = %s\n", exactf(r->eps, num, sizeof num));
	if (r->kind == ATTACK_PGD) {
		fprintf(f, "attack-steps        = %d\n", r->steps);
		if (r->step_size > 0)
			fprintf(f, "attack-step-size    = %s\n", exactf(r->step_size, num, sizeof num));
		else
			fprintf(f, "attack-step-travel  = %s\n",
				exactf(r->step_travel, num, sizeof num));
		fprintf(f, "attack-restarts     = %d\n", r->restarts);
		fprintf(f, "attack-random-start = %s\n", r->random_start ? "yes" : "no");
		if (r->random_start)
			fprintf(f, "attack-seed         = %llu\n", (unsigned long long)r->seed);
	}
	fprintf(f, "attack-labels       = %s\n", attack_labels_name(r->labels));
	fprintf(f, "attack-no-clip      = %s\n", r->clip ? "no" : "yes");
}

static bool capped_kind(enum lab_lane_kind k)
{
	return k == LAB_LANE_SPNORM || k == LAB_LANE_MARGIN;
}

static bool same_caps(const struct caps_spec *a, const struct caps_spec *b)
{
	if (a->source != b->source)
		return false;
	if (a->source == CAPS_CERTIFIED)
		return a->nu == b->nu && a->delta == b->delta && a->objective == b->objective;
	if (a->source == CAPS_MANUAL) {
		if (a->nrho != b->nrho)
			return false;
		for (int i = 0; i < a->nrho; i++)
			if (a->rho[i] != b->rho[i])
				return false;
	}
	return true;
}

/*
 * Settings that open the lab as cfg (the dataset, the lanes and their
 * network, the radius) and ctl (the shared controls) describe it, on screen, as a settings file on f, after a comment line
 * (heading).  The spnorm and margin lanes take one caps spec: the first's.
 * Returns the number of the first capped lane whose caps are another's
 * (its caps are lost), or 0.
 */
static int write_settings(FILE *f, const char *heading, const struct lab_options *o,
			  const struct lab_config *cfg, const struct lab_controls *ctl, int screen,
			  const struct attack_recipe *recipe)
{
	char num[64], label[ARCH_TEXT];
	const struct train_config *t0 = &cfg->lane[0].train;
	fprintf(f, "# %s\n", heading);
	fputs("# sectorlab --config FILE opens the lab in this state (the same lanes, caps\n"
	      "# and controls; training starts again from the same seed on the same batches).\n",
	      f);
	const struct arch *arch = &t0->arch;
	fprintf(f, "dataset   = %s\n", data_kind_name(cfg->data));
	if (*arch->name)
		fprintf(f, "model     = %s\n", arch->name);
	else
		fprintf(f, "arch      = \"%s\"\n", arch_format(arch, label, sizeof label));
	if (o->data_dir)
		fprintf(f, "data-dir  = \"%s\"\n", o->data_dir);
	fputs("lanes     = ", f);
	for (int i = 0; i < cfg->nlanes; i++)
		fprintf(f, "%s%s", i ? "," : "", lab_lane_kind_name(cfg->lane[i].kind));
	fputs("\n", f);
	int first = -1, lost = 0;
	for (int i = 0; i < cfg->nlanes; i++) {
		if (!capped_kind(cfg->lane[i].kind))
			continue;
		if (first < 0)
			first = i;
		else if (!lost && !same_caps(&cfg->lane[i].train.caps, &cfg->lane[first].train.caps))
			lost = i + 1;
	}
	if (first >= 0) {
		const struct caps_spec *c = &cfg->lane[first].train.caps;
		switch (c->source) {
		case CAPS_CERTIFIED:
			fprintf(f, "nu        = %s\n", exact(c->nu, num, sizeof num));
			fprintf(f, "delta     = %s\n", exact(c->delta, num, sizeof num));
			fprintf(f, "objective = %s\n", sector_objective_name(c->objective));
			break;
		case CAPS_AUTHORS: fputs("caps      = authors\n", f); break;
		case CAPS_MANUAL:
			fputs("rho       = ", f);
			for (int i = 0; i < c->nrho; i++)
				fprintf(f, "%s%s", i ? "," : "", exact(c->rho[i], num, sizeof num));
			fputs("\n", f);
			break;
		}
	}
	if (lost)
		fprintf(f, "# lane %d trained with other caps than lane %d; a settings file gives "
			   "every\n# spnorm and margin lane the same caps: lane %d's\n",
			lost, first + 1, first + 1);
	fprintf(f, "lr        = %s\n", exact(t0->optim.lr * ctl->lr_scale, num, sizeof num));
	fprintf(f, "seed      = %lu\n", (unsigned long)t0->seed);
	fprintf(f, "epochs    = %d\n", ctl->epochs);
	fprintf(f, "eps       = %s\n", exactf(ctl->eps, num, sizeof num));
	fprintf(f, "radius    = %s\n", exact(cfg->cert_radius, num, sizeof num));
	fprintf(f, "pace      = %d\n", ctl->pace);
	fprintf(f, "paused    = %s\n", ctl->paused ? "yes" : "no");
	fprintf(f, "digit     = %lu\n", (unsigned long)ctl->digit);
	fprintf(f, "screen    = %s\n", ui_screen_name(screen));
	if (o->note)
		fprintf(f, "note      = \"%s\"\n", o->note);
	if (recipe)
		write_recipe(f, recipe);
	return lost;
}

/* The controls a lab of cfg opens with (lab_new). */
static struct lab_controls opening_controls(const struct lab_config *cfg)
{
	return (struct lab_controls){.paused = cfg->paused, .pace = cfg->pace, .eps = cfg->eps,
				     .digit = cfg->digit, .lr_scale = 1,
				     .epochs = cfg->lane[0].train.epochs};
}

/* Key w: what the saving needs to know beside the lab. */
struct lab_save_ctx {
	const struct lab_options *o;
	const struct lab_setup *s;
};

/* The first free sectorlab-N.conf here into path: 0, or -1. */
static int free_name(char *path, size_t cap)
{
	for (int n = 1; n < 10000; n++) {
		snprintf(path, cap, "sectorlab-%d.conf", n);
		struct stat st;
		if (lstat(path, &st) != 0 && errno == ENOENT)
			return 0;
	}
	return -1;
}

static int save_settings(void *ctx, struct lab *lab, const struct ui_saved *state, char *said,
			 size_t cap)
{
	const struct lab_save_ctx *c = ctx;
	struct lab_config cfg = c->s->cfg;
	cfg.data = lab_data_kind(lab);
	cfg.nlanes = lab_lanes(lab);
	for (int i = 0; i < cfg.nlanes; i++)
		cfg.lane[i] = *lab_lane(lab, i);
	struct lab_controls ctl = lab_controls(lab);
	char name[64], heading[128], dir[PATH_MAX];
	if (free_name(name, sizeof name) != 0) {
		snprintf(said, cap, "not saved: sectorlab-1.conf to sectorlab-9999.conf are taken here");
		return -1;
	}
	time_t now = time(NULL);
	struct tm tm;
	gmtime_r(&now, &tm);
	strftime(heading, sizeof heading, "the lab's settings, saved %Y-%m-%d %H:%M UTC", &tm);
	struct io_atomic a;
	struct sl_error err;
	status_clear(&err);
	if (io_atomic_open(&a, name, &err) != SL_OK) {
		snprintf(said, cap, "not saved: %s", err.msg);
		return -1;
	}
	int lost = write_settings(a.f, heading, c->o, &cfg, &ctl, state->screen, state->recipe);
	if (io_atomic_commit(&a, &err) != SL_OK) {
		snprintf(said, cap, "not saved: %s", err.msg);
		return -1;
	}
	if (!getcwd(dir, sizeof dir))
		snprintf(dir, sizeof dir, ".");
	snprintf(said, cap, "settings saved to %s/%s (sectorlab --config %s opens them)%s", dir,
		 name, name, lost ? "; the spnorm/margin lanes keep one caps spec" : "");
	return 0;
}

/* ---- the lab ------------------------------------------------------------- */

static int lab_run(int argc, char **argv)
{
	struct lab_options o;
	int rc = parse_options(argc, argv, &o);
	if (rc == 1)
		return 0; /* --help */
	static struct lab_setup s; /* large, and key w reads it while the lab runs */
	if (rc == 0)
		rc = resolve(&o, &s);
	if (rc) {
		if (rc == 2)
			fputs("Try 'sectorlab --help-lab'.\n", stderr);
		return rc;
	}
	struct lab_config *cfg = &s.cfg;
	int nlanes = cfg->nlanes, hooked = -1;
	for (int i = 0; i < nlanes && hooked < 0; i++)
		if (cfg->lane[i].kind == LAB_LANE_SPNORM)
			hooked = i;

	const struct cmd_file files[] = {{"--out", o.out_path, true}};
	int files_rc = cmd_check_files("lab", files, 1);
	if (files_rc)
		return files_rc;
	/* The training thread rewrites --out after every epoch; a FIFO's reader
	 * stops at the first close, and the next epoch's open would wait for
	 * another reader for ever (and quitting the lab for that thread). */
	struct stat out_st;
	if (o.out_path && stat(o.out_path, &out_st) == 0 && S_ISFIFO(out_st.st_mode)) {
		fprintf(stderr, "sectorlab lab: --out %s is a FIFO, but the lab rewrites --out "
				"after every epoch: give a file\n",
			o.out_path);
		return 2;
	}
	/* Everything the options can get wrong is said; now the terminal. */
	char why[256];
	if (!o.check && !ui_terminal_usable(why, sizeof why)) {
		fprintf(stderr, "sectorlab: %s\n", why);
		return 1;
	}
	const char *dir = cmd_data_dir(o.data_dir);
	struct sl_dataset train = {0}, test = {0};
	struct sl_error err;
	status_clear(&err);
	if (data_load(s.kind, dir, true, &train, &err) != SL_OK ||
	    data_load(s.kind, dir, false, &test, &err) != SL_OK) {
		fprintf(stderr, "sectorlab: %s\n", err.msg);
		data_free(&train);
		data_free(&test);
		return 1;
	}
	if (cfg->digit >= test.n) {
		fprintf(stderr, "sectorlab lab: %s--digit %u: the test set has %u images (0 to %u)\n",
			cmd_origin(o.digit_text).s, cfg->digit, test.n, test.n - 1);
		data_free(&train);
		data_free(&test);
		return 2;
	}
	if (o.check) {
		struct lab_controls ctl = opening_controls(cfg);
		char heading[160];
		snprintf(heading, sizeof heading, "checked: %s has %u training and %u test images",
			 dir, train.n, test.n);
		data_free(&train);
		data_free(&test);
		write_settings(stdout, heading, &o, cfg, &ctl, s.screen,
			       s.have_recipe ? &s.recipe : NULL);
		return 0; /* main closes stdout and says if that failed */
	}
	struct lab_saver saver = {.path = o.out_path, .kind = s.kind, .saved_epoch = -1};
	if (o.out_path) {
		cfg->on_epoch = save_epoch;
		cfg->on_epoch_ctx = &saver;
		cfg->hook_lanes = 1u << (hooked >= 0 ? hooked : 0);
	}
	uint32_t holdout = train_default_holdout(&train);
	cfg->eval_n = lab_default_eval_n(&test);
	for (int i = 0; i < nlanes; i++)
		cfg->lane[i].train.holdout = holdout;
	char label[ARCH_TEXT];
	lab_title_of(cfg->title, sizeof cfg->title, cmd_arch_label(&s.arch, label, sizeof label),
		     s.kind, &train, holdout, &test);
	struct lab *lab;
	if (lab_new(cfg, &train, &test, &lab, &err) != SL_OK) {
		fprintf(stderr, "sectorlab: %s\n", err.msg);
		return 1;
	}
	struct lab_save_ctx save_ctx = {.o = &o, .s = &s};
	struct ui_context ctx = {
		.title = lab_title(lab),
		.data_dir = dir,
		.data_fixed = o.out_path != NULL,
		.data_source = lab_train_set(lab)->source,
		.arch = s.arch,
		.editor_restarts = true,
		.screen = s.screen,
		.note = o.note,
		.recipe = s.have_recipe ? &s.recipe : NULL,
		.save = save_settings,
		.save_ctx = &save_ctx,
	};
	rc = ui_lab_run(lab, &ctx);
	lab_free(lab); /* every training thread has ended: saver is ours again */
	if (o.out_path) {
		if (saver.saved_epoch >= 0)
			fprintf(stderr, "sectorlab: %s holds epoch %d\n", o.out_path,
				saver.saved_epoch);
		else
			fprintf(stderr, "sectorlab: no epoch was complete, %s was not written\n",
				o.out_path);
	}
	return rc;
}

int cmd_lab(int argc, char **argv)
{
	/* --lesson NAME is --config with the lesson's file. */
	const char *name = NULL;
	int at = -1, width = 0, nconfig = 0;
	for (int i = 1; i < argc && strcmp(argv[i], "--") != 0; i++) {
		if (strcmp(argv[i], "--config") == 0 || strncmp(argv[i], "--config=", 9) == 0) {
			nconfig++;
			continue;
		}
		int w = strcmp(argv[i], "--lesson") == 0		 ? 2
			: strncmp(argv[i], "--lesson=", 9) == 0 ? 1
								 : 0;
		if (w == 0)
			continue;
		if (at >= 0) {
			fprintf(stderr, "sectorlab: --lesson given twice\n");
			return 2;
		}
		if (w == 2 && i + 1 >= argc) {
			fprintf(stderr, "sectorlab: --lesson needs a NAME\n");
			list_lessons(stderr);
			return 2;
		}
		name = w == 2 ? argv[i + 1] : argv[i] + 9;
		at = i, width = w;
		i += w - 1;
	}
	if (at < 0)
		return cmd_with_config("lab", lab_options, lab_run, argc, argv);
	if (nconfig) {
		fprintf(stderr, "sectorlab: give --lesson NAME or --config FILE, not both\n");
		return 2;
	}
	char path[PATH_MAX];
	int rc = find_lesson(name, path, sizeof path);
	if (rc)
		return rc;
	char **args = calloc((size_t)argc + 2, sizeof *args);
	if (!args) {
		fprintf(stderr, "sectorlab: out of memory\n");
		return 1;
	}
	char config_opt[] = "--config";
	int n = 0;
	for (int i = 0; i < argc; i++) {
		if (i == at) {
			args[n++] = config_opt;
			args[n++] = path;
		}
		if (i < at || i >= at + width)
			args[n++] = argv[i];
	}
	rc = cmd_with_config("lab", lab_options, lab_run, n, args);
	free(args);
	return rc;
}
