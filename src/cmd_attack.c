/* cmd_attack: `sectorlab attack`, adversarial sweeps over eps with honest
 * metrics, and the files that let others check them. */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "sectorlab/attack.h"
#include "sectorlab/checkpoint.h"
#include "sectorlab/cmd.h"
#include "sectorlab/cmd_progress.h"
#include "sectorlab/data.h"
#include "sectorlab/export.h"
#include "sectorlab/io.h"
#include "sectorlab/json.h"
#include "sectorlab/npy.h"
#include "sectorlab/interrupt.h"
#include "sectorlab/plot.h"

#define MAX_EPS 64
#define MAX_PNG 512 /* examples exported per eps */

/* Labels and predictions are ints, written to .npy as int32 without a copy. */
_Static_assert(sizeof(int) == sizeof(int32_t), "int must be 32 bits");

static void usage(FILE *f)
{
	fputs("usage: sectorlab attack --model FILE [options]\n"
	      "\n"
	      "Attack a trained network on the first N test images at each eps and report\n"
	      "clean accuracy, robust accuracy (correct before and after the attack), the\n"
	      "attack success rate over the images correct before it, perturbation sizes,\n"
	      "speed and sanity flags.  Pixels are scaled to x/255 - 0.5, so eps is in the\n"
	      "units of a [0, 1] scale.  The recipe is printed beside every table and\n"
	      "stored in every file written.\n"
	      "\n"
	      "  --model FILE        the network: safetensors from 'sectorlab train', or a\n"
	      "                      PyTorch state_dict saved with safetensors\n"
	      "  --arch SPEC         the layers of a PyTorch file (activations and pooling\n"
	      "                      are not in a state_dict): a model name, 784-100-10\n"
	      "                      (leaky ReLU 0.1 between) or the full form, as in\n"
	      "                      'sectorlab train --help'\n"
	      "  --attack NAME       fgsm (L-inf, one step), fgm (L2, one step) or pgd\n"
	      "                      (default pgd)\n"
	      "  --norm inf|2        the norm of the ball (default inf; 2 for fgm)\n"
	      "  --eps LIST          comma-separated strengths (default 0,0.1,0.2,0.3,0.4,0.5,\n"
	      "                      the paper's range)\n"
	      "  --steps N           PGD steps per restart (default 40)\n"
	      "  --step-size A       PGD step (default 2.5 eps / steps)\n"
	      "  --step-travel K     PGD step of K eps / steps instead\n"
	      "  --random-start      PGD starts uniformly in the eps-ball\n"
	      "  --restarts R        PGD restarts, keeping each image's worst case (default 1)\n"
	      "  --labels pred|true  attack the true labels (default) or the model's own\n"
	      "                      predictions (as the authors' code does)\n"
	      "  --no-clip           do not clip to the pixel box (the authors' code)\n"
	      "  --early-stop        stop attacking an image once it is misclassified\n"
	      "  --target C|next     targeted attack towards class C or label + 1\n"
	      "  --preset NAME       paper-code: L2 PGD, 100 steps of 2 eps/100, no random\n"
	      "                      start, predicted labels, no clipping (what the authors\n"
	      "                      ran); madry: L-inf PGD, 40 steps of 0.01, random start.\n"
	      "                      Other options override the preset's settings\n"
	      "  --n N               attack the first N test images (default all)\n"
	      "  --batch N           images per batch (default 500)\n"
	      "  --seed S            seed of the random starts (default 1)\n"
	      "  --dataset NAME      mnist, fashion or cifar10 (default: the model's)\n"
	      "  --data-dir DIR      where the data is (default: $SECTORLAB_DATA, else data/)\n"
	      "  --png-dir DIR       per eps, the first --png-count images as original,\n"
	      "                      adversarial and amplified perturbation PNGs, and a grid;\n"
	      "                      the adversarial PNGs are read back and classified again\n"
	      "  --png-count K       images exported per eps (default 10, at most 512)\n"
	      "  --npy FILE          a NumPy .npz archive: clean images, labels, predictions,\n"
	      "                      and per eps the adversarial images and their predictions\n"
	      "                      (float32 and int32 .npy members) with recipe.json\n"
	      "  --csv FILE          one row per eps, the recipe in every row\n"
	      "  --plot FILE         accuracy against eps as a PNG chart\n"
	      "  --json              print one JSON object with the results on stdout\n"
	      "  --quiet             no live progress line (shown only when stderr is a\n"
	      "                      terminal: eps, images, rate and ETA)\n"
	      "  --threads N         threads (default: one per processor)\n"
	      "  --config FILE       settings from FILE, one 'option = value' per line\n"
	      "                      (# starts a comment); options typed here win\n"
	      "  -h, --help          this help\n"
	      "\n"
	      "Options are written in full (no abbreviations such as --res for --restarts).\n"
	      "Exit status: 0 done, 1 a failure, 2 bad usage, 130/143 stopped by\n"
	      "Ctrl-C/SIGTERM.\n",
	      f);
}

struct attack_opts {
	const char *model, *arch, *dataset, *data_dir;
	const char *png_dir, *npy, *csv, *plot;
	struct cmd_recipe_request rq; /* the recipe's options */
	double eps[MAX_EPS];
	int neps;
	long n, batch, png_count, threads;
	bool json, quiet;
	bool png_count_given;
};

static int bad_usage(const char *msg)
{
	if (msg)
		fprintf(stderr, "sectorlab attack: %s\n", msg);
	fputs("Try 'sectorlab attack --help'.\n", stderr);
	return 2;
}

/* The options; a settings file (--config) may set any of them but help. */
enum { O_MODEL = 256, O_ATTACK, O_NORM, O_EPS, O_STEPS, O_STEP_SIZE, O_STEP_TRAVEL,
       O_RANDOM_START, O_RESTARTS, O_LABELS, O_NO_CLIP, O_EARLY_STOP, O_TARGET, O_PRESET,
       O_N, O_BATCH, O_SEED, O_DATASET, O_DATADIR, O_PNG_DIR, O_PNG_COUNT, O_NPY, O_CSV,
       O_PLOT, O_JSON, O_THREADS, O_QUIET, O_ARCH };
static const struct option attack_options[] = {
	{"model", required_argument, 0, O_MODEL},
	{"arch", required_argument, 0, O_ARCH},
	{"attack", required_argument, 0, O_ATTACK},
	{"norm", required_argument, 0, O_NORM},
	{"eps", required_argument, 0, O_EPS},
	{"steps", required_argument, 0, O_STEPS},
	{"step-size", required_argument, 0, O_STEP_SIZE},
	{"step-travel", required_argument, 0, O_STEP_TRAVEL},
	{"random-start", no_argument, 0, O_RANDOM_START},
	{"restarts", required_argument, 0, O_RESTARTS},
	{"labels", required_argument, 0, O_LABELS},
	{"no-clip", no_argument, 0, O_NO_CLIP},
	{"early-stop", no_argument, 0, O_EARLY_STOP},
	{"target", required_argument, 0, O_TARGET},
	{"preset", required_argument, 0, O_PRESET},
	{"n", required_argument, 0, O_N},
	{"batch", required_argument, 0, O_BATCH},
	{"seed", required_argument, 0, O_SEED},
	{"dataset", required_argument, 0, O_DATASET},
	{"data-dir", required_argument, 0, O_DATADIR},
	{"png-dir", required_argument, 0, O_PNG_DIR},
	{"png-count", required_argument, 0, O_PNG_COUNT},
	{"npy", required_argument, 0, O_NPY},
	{"csv", required_argument, 0, O_CSV},
	{"plot", required_argument, 0, O_PLOT},
	{"json", no_argument, 0, O_JSON},
	{"quiet", no_argument, 0, O_QUIET},
	{"threads", required_argument, 0, O_THREADS},
	{"help", no_argument, 0, 'h'},
	{0, 0, 0, 0},
};

/* eps in the units of a [0, 1] pixel scale: 100 is beyond the L2 distance
 * between any two images of either dataset (sqrt(3072) < 56), so every
 * meaningful ball fits and float arithmetic stays finite. */
#define R_EPS CMD_RANGE(0, 100)
#define R_EPS_STEP CMD_ABOVE(0, 100)

static int parse(int argc, char **argv, struct attack_opts *o)
{
	int c, bad = 0;
	optind = 0; /* glibc: start afresh, whatever an earlier parse left */
	while ((c = cmd_getopt("attack", argc, argv, attack_options)) != -1) {
		switch (c) {
		case O_MODEL: o->model = optarg; break;
		case O_ARCH: o->arch = optarg; break;
		case O_ATTACK: o->rq.attack = optarg; break;
		case O_NORM: o->rq.norm = optarg; break;
		case O_EPS:
			o->neps = cmd_parse_doubles("--eps", optarg, R_EPS, o->eps, MAX_EPS);
			bad |= o->neps < 0;
			break;
		case O_STEPS:
			bad |= cmd_parse_long("--steps", optarg, 1, 1000000, &o->rq.steps);
			o->rq.steps_given = true;
			break;
		case O_STEP_SIZE:
			bad |= cmd_parse_double("--step-size", optarg, R_EPS_STEP, &o->rq.step_size);
			o->rq.step_size_given = true;
			break;
		case O_STEP_TRAVEL:
			bad |= cmd_parse_double("--step-travel", optarg, R_EPS_STEP, &o->rq.step_travel);
			o->rq.step_travel_given = true;
			break;
		case O_RANDOM_START: o->rq.random_start = true; break;
		case O_RESTARTS:
			bad |= cmd_parse_long("--restarts", optarg, 1, 10000, &o->rq.restarts);
			o->rq.restarts_given = true;
			break;
		case O_LABELS: o->rq.labels = optarg; break;
		case O_NO_CLIP: o->rq.no_clip = true; break;
		case O_EARLY_STOP: o->rq.early_stop = true; break;
		case O_TARGET: o->rq.target = optarg; break;
		case O_PRESET: o->rq.preset = optarg; break;
		case O_N: bad |= cmd_parse_long("--n", optarg, 1, 100000000L, &o->n); break;
		case O_BATCH: bad |= cmd_parse_long("--batch", optarg, 1, 65536, &o->batch); break;
		case O_SEED:
			bad |= cmd_parse_long("--seed", optarg, 0, 0x7fffffffL, &o->rq.seed);
			o->rq.seed_given = true;
			break;
		case O_DATASET: o->dataset = optarg; break;
		case O_DATADIR: o->data_dir = optarg; break;
		case O_PNG_DIR: o->png_dir = optarg; break;
		case O_PNG_COUNT:
			bad |= cmd_parse_long("--png-count", optarg, 1, MAX_PNG, &o->png_count);
			o->png_count_given = true;
			break;
		case O_NPY: o->npy = optarg; break;
		case O_CSV: o->csv = optarg; break;
		case O_PLOT: o->plot = optarg; break;
		case O_JSON: o->json = true; break;
		case O_QUIET: o->quiet = true; break;
		case O_THREADS: bad |= cmd_parse_long("--threads", optarg, 1, 256, &o->threads); break;
		case 'h': usage(stdout); return 1;
		default: bad = 1; break;
		}
	}
	if (bad)
		return bad_usage(NULL);
	if (optind < argc) {
		fprintf(stderr, "sectorlab attack: unexpected argument '%s'\n", argv[optind]);
		return bad_usage(NULL);
	}
	if (!o->model)
		return bad_usage("--model FILE is required");
	for (int i = 0; i < o->neps; i++) {
		for (int j = 0; j < i; j++)
			if ((float)o->eps[j] == (float)o->eps[i]) {
				fprintf(stderr, "sectorlab attack: --eps lists %g twice\n", o->eps[i]);
				return bad_usage(NULL);
			}
	}
	if (o->png_count_given && !o->png_dir)
		return bad_usage("--png-count is a setting of --png-dir");
	if (o->rq.step_size_given && o->rq.step_travel_given)
		return bad_usage("give --step-size or --step-travel, not both");
	return 0;
}

/* What the sweep's callback collects for the files. */
struct collect {
	struct nn_net *net;
	const struct attack_recipe *recipe;
	const struct attack_opts *o;
	struct export_shape shape;
	int n, dim, npng;
	float *adv;          /* (n, dim) this eps's adversarials (for --npy) */
	int *pred_adv;       /* (n) */
	float *png_x0, *png_adv; /* (npng, dim) */
	int *png_y, *png_pc, *png_pa;
	struct npz_writer *npz;
	/* per eps: PNGs re-read and classified */
	int png_fooled[MAX_EPS], png_still[MAX_EPS];
	int neps;
	struct cmd_progress progress; /* over all eps: neps * n images */
};

/* "eps0.1": in member and file names, unique per float eps. */
static void eps_tag(float eps, char *buf, size_t cap)
{
	char num[32];
	attack_format_float(eps, num, sizeof num);
	snprintf(buf, cap, "eps%s", num);
}

static sl_status check_interrupt(void *ctx, struct sl_error *err)
{
	(void)ctx;
	return interrupt_check(err);
}

static sl_status write_pngs(struct collect *c, int e, float eps, struct sl_error *err)
{
	struct attack_recipe r = *c->recipe;
	r.eps = eps;
	struct export_example ex[MAX_PNG];
	for (int i = 0; i < c->npng; i++)
		ex[i] = (struct export_example){i, c->png_y[i], c->png_pc[i], c->png_pa[i],
						c->png_x0 + (size_t)i * c->dim,
						c->png_adv + (size_t)i * c->dim};
	struct export_summary sum;
	sl_status st = export_attack_set(c->o->png_dir, c->net, &c->shape, ex, c->npng, &r,
					 check_interrupt, NULL, &sum, err);
	c->png_fooled[e] = sum.fooled;
	c->png_still[e] = sum.still_fooled;
	return st;
}

static sl_status on_batch(void *ctx, const struct attack_progress *p, struct sl_error *err)
{
	struct collect *c = ctx;
	const struct attack_view *v = p->view;
	int b = v->batch;
	if (interrupt_check(err) != SL_OK)
		return err->code;
	if (c->adv) {
		memcpy(c->adv + (size_t)p->start * c->dim, v->adv, sizeof(float) * (size_t)b * c->dim);
		memcpy(c->pred_adv + p->start, v->pred_adv, sizeof(int) * (size_t)b);
	}
	for (int i = 0; i < b && p->start + i < c->npng; i++) {
		int j = p->start + i;
		memcpy(c->png_x0 + (size_t)j * c->dim, v->x0 + (size_t)i * c->dim,
		       sizeof(float) * (size_t)c->dim);
		memcpy(c->png_adv + (size_t)j * c->dim, v->adv + (size_t)i * c->dim,
		       sizeof(float) * (size_t)c->dim);
		c->png_y[j] = v->y[i];
		c->png_pc[j] = v->pred_clean[i];
		c->png_pa[j] = v->pred_adv[i];
	}
	cmd_progress_update(&c->progress, (double)p->eps_index * p->n + p->done,
			    "eps %g (%d of %d)  images %d/%d", p->eps, p->eps_index + 1, c->neps,
			    p->done, p->n);
	if (p->done < p->n)
		return SL_OK;
	sl_status st = SL_OK;
	if (c->npz) {
		char tag[64], name[96];
		eps_tag(p->eps, tag, sizeof tag);
		size_t shape[4] = {(size_t)c->n, (size_t)c->shape.c, (size_t)c->shape.h,
				   (size_t)c->shape.w}, n1[1] = {(size_t)c->n};
		snprintf(name, sizeof name, "adv_%s", tag);
		st = npz_add_array(c->npz, name, NPY_TYPE_F32, 4, shape, c->adv, err);
		snprintf(name, sizeof name, "pred_adv_%s", tag);
		if (st == SL_OK)
			st = npz_add_array(c->npz, name, NPY_TYPE_I32, 1, n1, c->pred_adv, err);
	}
	if (st == SL_OK && c->o->png_dir && c->npng > 0)
		st = write_pngs(c, p->eps_index, p->eps, err);
	return st;
}

static const char *flag_names[] = {"pgd_weaker_than_one_step", "accuracy_not_falling",
				   "many_zero_gradients", "nonfinite_gradients"};

static void print_json(FILE *f, const struct attack_opts *o, const char *model_name,
		       const char *mode, const char *dataset, const struct attack_recipe *r,
		       const struct attack_result *res, int neps, const struct collect *c)
{
	char recipe[1024], describe[512];
	attack_recipe_json(r, false, recipe, sizeof recipe);
	attack_recipe_describe(r, false, describe, sizeof describe);
	fputs("{\"model\":", f);
	json_string(f, o->model);
	fputs(",\"model_name\":", f);
	json_string(f, model_name);
	fputs(",\"mode\":", f);
	json_string(f, mode);
	fputs(",\"dataset\":", f);
	json_string(f, dataset);
	fprintf(f, ",\"n\":%d,\"recipe\":{%s,\"eps\":[", res[0].n, recipe);
	for (int i = 0; i < neps; i++) {
		char e[32];
		attack_format_float(res[i].eps, e, sizeof e);
		fprintf(f, "%s%s", i ? "," : "", e);
	}
	fputs("],\"description\":", f);
	json_string(f, describe);
	fputs("},\"results\":[", f);
	for (int i = 0; i < neps; i++) {
		const struct attack_result *x = &res[i];
		char e[32];
		attack_format_float(x->eps, e, sizeof e);
		fprintf(f,
			"%s{\"eps\":%s,\"n\":%d,\"clean_accuracy\":%.6f,\"robust_accuracy\":%.6f,"
			"\"attack_success_rate\":%.6f,\"success_denominator\":%d,"
			"\"clean_correct\":%d,\"robust_correct\":%d,\"adversarial_accuracy\":%.6f,",
			i ? "," : "", e, x->n, x->clean_accuracy, x->robust_accuracy,
			x->attack_success_rate, x->clean_correct, x->clean_correct, x->robust_correct,
			x->adv_accuracy);
		if (x->one_step_robust_correct >= 0)
			fprintf(f, "\"one_step_robust_accuracy\":%.6f,",
				(double)x->one_step_robust_correct / x->n);
		else
			fputs("\"one_step_robust_accuracy\":null,", f);
		if (r->target != ATTACK_UNTARGETED) {
			fprintf(f, "\"target_hits\":%d,\"target_eligible\":%d,", x->target_hits,
				x->target_eligible);
			if (x->one_step_robust_correct >= 0)
				fprintf(f, "\"one_step_target_hits\":%d,", x->one_step_target_hits);
		}
		fprintf(f,
			"\"l2_mean\":%s,\"l2_max\":%s,\"linf_mean\":%s,\"linf_max\":%s,"
			"\"fooled\":%d,\"fooled_after_8bit\":%d,\"zero_gradients\":%d,"
			"\"nonfinite_gradients\":%d,\"gradient_evaluations\":%ld,\"seconds\":%s,"
			"\"images_per_second\":%s,",
			json_num(x->l2_mean).s, json_num(x->l2_max).s, json_num(x->linf_mean).s,
			json_num(x->linf_max).s, x->fooled, x->fooled_8bit, x->zero_grad,
			x->nonfinite_grad, x->grad_evals, json_num(x->seconds).s,
			json_num(x->images_per_second).s);
		if (o->png_dir)
			fprintf(f, "\"png\":{\"files\":%d,\"fooled\":%d,\"still_adversarial\":%d},",
				c->npng, c->png_fooled[i], c->png_still[i]);
		fputs("\"flags\":[", f);
		for (int k = 0, first = 1; k < 4; k++)
			if (x->flags & (1u << k)) {
				fprintf(f, "%s\"%s\"", first ? "" : ",", flag_names[k]);
				first = 0;
			}
		fputs("]}", f);
	}
	fputs("]}\n", f);
}

static void print_table(FILE *f, const struct attack_recipe *r, const char *model_name,
			const char *mode, const char *dataset, const char *model_path,
			const struct attack_result *res, int neps, const struct attack_opts *o,
			const struct collect *c)
{
	char describe[512];
	attack_recipe_describe(r, false, describe, sizeof describe);
	fprintf(f, "recipe: %s\n", describe);
	fprintf(f, "model:  %s (%s, %s), %s test set, first %d images\n", model_path, model_name,
		mode, dataset, res[0].n);
	fprintf(f, "robust: correct before and after the attack, over all %d images; success: "
		   "fooled, over the images correct before it\n", res[0].n);
	bool one = res[0].one_step_robust_correct >= 0;
	fprintf(f, "\n%7s %7s %7s %16s %s %8s %8s %8s %8s %9s %9s\n", "eps", "clean", "robust",
		"success (of N)", one ? (r->norm == ATTACK_NORM_INF ? " FGSM-rob" : "  FGM-rob") : "",
		"L2 mean", "L2 max", "Linf mn", "Linf max", "8-bit ok", "images/s");
	for (int i = 0; i < neps; i++) {
		const struct attack_result *x = &res[i];
		char succ[32], onestep[16] = "", bits[16];
		snprintf(succ, sizeof succ, "%.2f%% (%d)", 100 * x->attack_success_rate,
			 x->clean_correct);
		if (one)
			snprintf(onestep, sizeof onestep, " %7.2f%%",
				 100.0 * x->one_step_robust_correct / x->n);
		if (x->fooled)
			snprintf(bits, sizeof bits, "%.1f%%", 100.0 * x->fooled_8bit / x->fooled);
		else
			snprintf(bits, sizeof bits, "-");
		fprintf(f, "%7g %6.2f%% %6.2f%% %16s%s %8.4f %8.4f %8.4f %8.4f %9s %9.0f\n", x->eps,
			100 * x->clean_accuracy, 100 * x->robust_accuracy, succ, onestep, x->l2_mean,
			x->l2_max, x->linf_mean, x->linf_max, bits, x->images_per_second);
	}
	fprintf(f, "\n8-bit ok: share of successful adversarials still misclassified after their "
		   "pixels are clipped and rounded to bytes.\n");
	for (int i = 0; i < neps; i++) {
		const struct attack_result *x = &res[i];
		if (r->target != ATTACK_UNTARGETED)
			fprintf(f, "eps %g: %d of %d images correct before the attack (and not of the "
				   "target class) now classified as the target\n",
				x->eps, x->target_hits, x->target_eligible);
		if (x->zero_grad || x->nonfinite_grad)
			fprintf(f, "eps %g: %d of %ld gradients were zero, %d not finite\n", x->eps,
				x->zero_grad, x->grad_evals, x->nonfinite_grad);
		if (x->flags) {
			char text[256];
			attack_flags_describe(x->flags, text, sizeof text);
			fprintf(f, "eps %g: CHECK: %s\n", x->eps, text);
		}
		if (o->png_dir && c->png_fooled[i])
			fprintf(f, "eps %g: %d of %d adversarial PNGs still fool the network when read "
				   "back\n", x->eps, c->png_still[i], c->png_fooled[i]);
	}
}

static sl_status write_csv(const char *path, const struct attack_recipe *r,
			   const struct attack_result *res, int neps, struct sl_error *err)
{
	char *text = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&text, &len);
	if (!m)
		return status_set(err, SL_ERR_NOMEM, "%s: buffer", path);
	fputs("eps,n,clean_accuracy,robust_accuracy,attack_success_rate,success_denominator,"
	      "adversarial_accuracy,one_step_robust_accuracy,l2_mean,l2_max,linf_mean,linf_max,"
	      "fooled,fooled_after_8bit,zero_gradients,gradient_evaluations,images_per_second,"
	      "flags,attack,norm,steps,step_size,random_start,restarts,labels,clip,early_stop,"
	      "target,seed\n",
	      m);
	char step[64], target[16], num[32];
	if (r->step_size > 0) {
		attack_format_float(r->step_size, step, sizeof step);
	} else {
		attack_format_float(r->step_travel, num, sizeof num);
		snprintf(step, sizeof step, "%s*eps/%d", num, r->steps);
	}
	if (r->target == ATTACK_TARGET_CLASS)
		snprintf(target, sizeof target, "%d", r->target_class);
	else
		snprintf(target, sizeof target, "%s", r->target == ATTACK_TARGET_NEXT ? "next" : "none");
	for (int i = 0; i < neps; i++) {
		const struct attack_result *x = &res[i];
		attack_format_float(x->eps, num, sizeof num);
		fprintf(m, "%s,%d,%.6f,%.6f,%.6f,%d,%.6f,", num, x->n, x->clean_accuracy,
			x->robust_accuracy, x->attack_success_rate, x->clean_correct, x->adv_accuracy);
		if (x->one_step_robust_correct >= 0)
			fprintf(m, "%.6f", (double)x->one_step_robust_correct / x->n);
		fprintf(m, ",%.6g,%.6g,%.6g,%.6g,%d,%d,%d,%ld,%.1f,", x->l2_mean, x->l2_max,
			x->linf_mean, x->linf_max, x->fooled, x->fooled_8bit, x->zero_grad,
			x->grad_evals, x->images_per_second);
		for (int k = 0, first = 1; k < 4; k++)
			if (x->flags & (1u << k)) {
				fprintf(m, "%s%s", first ? "" : ";", flag_names[k]);
				first = 0;
			}
		fprintf(m, ",%s,%s,%d,%s,%s,%d,%s,%s,%s,%s,%llu\n", attack_kind_name(r->kind),
			attack_norm_name(r->norm), r->steps, step, r->random_start ? "true" : "false",
			r->restarts, attack_labels_name(r->labels), r->clip ? "true" : "false",
			r->early_stop ? "true" : "false", target, (unsigned long long)r->seed);
	}
	fclose(m);
	sl_status st = io_write_file(path, text, len, err);
	free(text);
	return st;
}

static sl_status write_plot(const char *path, const struct attack_recipe *r,
			    const char *model_name, const char *mode, const char *dataset,
			    const struct attack_result *res, int neps, struct sl_error *err)
{
	/* Points in eps order, as percentages. */
	double x[MAX_EPS], clean[MAX_EPS], robust[MAX_EPS], one[MAX_EPS];
	int order[MAX_EPS];
	for (int i = 0; i < neps; i++)
		order[i] = i;
	for (int i = 1; i < neps; i++)
		for (int j = i; j > 0 && res[order[j]].eps < res[order[j - 1]].eps; j--) {
			int t = order[j];
			order[j] = order[j - 1];
			order[j - 1] = t;
		}
	for (int i = 0; i < neps; i++) {
		const struct attack_result *q = &res[order[i]];
		x[i] = q->eps;
		clean[i] = 100 * q->clean_accuracy;
		robust[i] = 100 * q->robust_accuracy;
		one[i] = q->one_step_robust_correct >= 0 ? 100.0 * q->one_step_robust_correct / q->n
							 : NAN;
	}
	const char *name = r->kind == ATTACK_FGSM ? "FGSM" : r->kind == ATTACK_FGM ? "FGM" : "PGD";
	char label[64], one_label[64], title[256], subtitle[768], xlabel[96], describe[512];
	snprintf(label, sizeof label, "robust accuracy, %s L%s", name,
		 r->norm == ATTACK_NORM_INF ? "-inf" : "2");
	snprintf(one_label, sizeof one_label, "robust accuracy, %s (one step)",
		 r->norm == ATTACK_NORM_INF ? "FGSM" : "FGM");
	struct plot_series series[3] = {
		{"clean accuracy", x, clean, neps, plot_color(6), true, NULL, NULL},
		{label, x, robust, neps, plot_color(0), false, NULL, NULL},
		{one_label, x, one, neps, plot_color(1), true, NULL, NULL},
	};
	snprintf(title, sizeof title, "%s (%s) on %s: accuracy under attack", model_name, mode,
		 dataset);
	attack_recipe_describe(r, false, describe, sizeof describe);
	snprintf(subtitle, sizeof subtitle, "%s; %d test images", describe, res[0].n);
	snprintf(xlabel, sizeof xlabel, "eps (L%s, pixels scaled to [-0.5, 0.5])",
		 r->norm == ATTACK_NORM_INF ? "-inf" : "2");
	struct plot_spec spec = {
		.title = title, .subtitle = subtitle, .xlabel = xlabel,
		.ylabel = "accuracy (%)", .ymin = 0, .ymax = 100,
		.series = series, .nseries = res[0].one_step_robust_correct >= 0 ? 3 : 2,
	};
	struct image img;
	sl_status st = plot_render(&spec, &img, err);
	if (st != SL_OK)
		return st;
	char recipe[1024];
	attack_recipe_json(r, false, recipe, sizeof recipe);
	char comment[1400];
	snprintf(comment, sizeof comment, "{\"image\":\"accuracy_vs_eps\",\"n\":%d,%s}", res[0].n,
		 recipe);
	struct image_text text[] = {{"Software", "sectorlab"}, {"Title", title},
				    {"Description", subtitle}, {"Comment", comment}};
	st = image_write_png(path, &img, text, 4, err);
	image_free(&img);
	return st;
}

/* The clean batch, labels and predictions and the recipe go in first. */
static sl_status npz_begin(struct collect *c, const struct sl_dataset *test,
			   const struct attack_recipe *r, const double *eps, int neps,
			   struct sl_error *err)
{
	sl_status st = npz_open(c->o->npy, &c->npz, err);
	if (st != SL_OK)
		return st;
	size_t n = (size_t)c->n;
	float *x = malloc(sizeof(float) * n * c->dim);
	int *y = malloc(sizeof(int) * n), *pred = malloc(sizeof(int) * n);
	if (!x || !y || !pred) {
		st = status_set(err, SL_ERR_NOMEM, "%s: clean images", c->o->npy);
		goto out;
	}
	data_batch(test, NULL, n, x, y);
	for (size_t s = 0; s < n; s += (size_t)c->net->max_batch) {
		int b = (int)(n - s < (size_t)c->net->max_batch ? n - s : (size_t)c->net->max_batch);
		nn_argmax(nn_forward(c->net, x + s * c->dim, b), b, c->net->out_dim, pred + s);
	}
	size_t shape[4] = {n, (size_t)c->shape.c, (size_t)c->shape.h, (size_t)c->shape.w};
	size_t n1[1] = {n}, ne[1] = {(size_t)neps};
	float epsf[MAX_EPS];
	for (int i = 0; i < neps; i++)
		epsf[i] = (float)eps[i];
	char recipe[1024], json[1400];
	attack_recipe_json(r, false, recipe, sizeof recipe);
	snprintf(json, sizeof json, "{%s,\"pixel_scale\":\"x/255-0.5\",\"members\":\"clean, labels, "
				    "pred_clean, eps; adv_eps<e> and pred_adv_eps<e> per eps\"}",
		 recipe);
	st = npz_add_bytes(c->npz, "recipe.json", json, strlen(json), err);
	if (st == SL_OK)
		st = npz_add_array(c->npz, "eps", NPY_TYPE_F32, 1, ne, epsf, err);
	if (st == SL_OK)
		st = npz_add_array(c->npz, "clean", NPY_TYPE_F32, 4, shape, x, err);
	if (st == SL_OK)
		st = npz_add_array(c->npz, "labels", NPY_TYPE_I32, 1, n1, y, err);
	if (st == SL_OK)
		st = npz_add_array(c->npz, "pred_clean", NPY_TYPE_I32, 1, n1, pred, err);
out:
	free(x);
	free(y);
	free(pred);
	return st;
}

/* --png-dir, created when missing: 0, or the exit code after saying why
 * (2 when the name is taken by something else than a directory). */
static int ensure_dir(const char *dir)
{
	struct stat s;
	if (stat(dir, &s) == 0) {
		if (S_ISDIR(s.st_mode))
			return 0;
		fprintf(stderr, "sectorlab attack: --png-dir %s: %s\n", dir, strerror(ENOTDIR));
		return 2;
	}
	if (mkdir(dir, 0777) == 0)
		return 0;
	fprintf(stderr, "sectorlab attack: --png-dir %s: cannot create the directory: %s\n", dir,
		strerror(errno));
	return 1;
}

static int attack_run(int argc, char **argv)
{
	struct attack_opts o = {.n = 0, .batch = 500, .png_count = 10, .rq = {.seed = 1}};
	int rc = parse(argc, argv, &o);
	if (rc)
		return rc == 1 ? 0 : rc;
	if (o.neps == 0) {
		const double paper[6] = {0, 0.1, 0.2, 0.3, 0.4, 0.5}; /* the paper's range */
		memcpy(o.eps, paper, sizeof paper);
		o.neps = 6;
	}

	struct sl_error err;
	status_clear(&err);
	struct cmd_model m;
	struct attack_result *res = NULL;
	struct collect c = {0};
	struct interrupt_guard guard;
	bool caught = false;
	struct cmd_file files[4 + 2 * DATA_MAX_SPLIT_FILES] = {
		{"--model", o.model, false}, {"--npy", o.npy, true}, {"--csv", o.csv, true},
		{"--plot", o.plot, true}};
	int nfiles = 4;
	if ((rc = cmd_check_files("attack", files, nfiles)) != 0)
		return rc;
	cmd_set_threads(o.threads);
	/* Buffers for no more images than are attacked. */
	long batch = o.n > 0 && o.n < o.batch ? o.n : o.batch;
	rc = cmd_load_model("attack", o.model, o.arch, (int)batch, o.dataset, o.data_dir, &m);
	if (rc)
		goto out;
	/* The test files are known now, from the model's dataset: no output may
	 * be one of them either. */
	enum data_kind data_kind;
	char data_files[2 * DATA_MAX_SPLIT_FILES][4096];
	if (data_kind_parse(m.dataset, &data_kind, NULL) == SL_OK)
		cmd_data_inputs(data_kind, o.data_dir, false, data_files, files, &nfiles);
	if ((rc = cmd_check_files("attack", files, nfiles)) != 0)
		goto out;
	struct nn_net *net = m.net;
	const struct sl_dataset *test = &m.test;
	const char *model_name = m.model_name, *mode = m.mode, *dataset = m.dataset;
	struct attack_recipe recipe;
	rc = cmd_attack_recipe("attack", &o.rq, net->out_dim, &recipe);
	if (rc) {
		bad_usage(NULL);
		goto out;
	}
	rc = 1;
	int n = o.n > 0 && o.n < (long)test->n ? (int)o.n : (int)test->n;
	float eps[MAX_EPS];
	for (int i = 0; i < o.neps; i++)
		eps[i] = (float)o.eps[i];

	c.net = net;
	c.recipe = &recipe;
	c.o = &o;
	c.shape = (struct export_shape){(int)test->c, (int)test->h, (int)test->w};
	c.n = n;
	c.dim = net->in_dim;
	c.neps = o.neps;
	cmd_progress_init(&c.progress, o.quiet);
	if (o.png_dir) {
		if ((rc = ensure_dir(o.png_dir)) != 0)
			goto out;
		rc = 1;
		c.npng = (int)(o.png_count < n ? o.png_count : n);
		size_t sz = (size_t)c.npng * c.dim;
		c.png_x0 = malloc(sizeof(float) * sz);
		c.png_adv = malloc(sizeof(float) * sz);
		c.png_y = malloc(sizeof(int) * (size_t)c.npng);
		c.png_pc = malloc(sizeof(int) * (size_t)c.npng);
		c.png_pa = malloc(sizeof(int) * (size_t)c.npng);
		if (!c.png_x0 || !c.png_adv || !c.png_y || !c.png_pc || !c.png_pa) {
			fprintf(stderr, "sectorlab attack: out of memory\n");
			goto out;
		}
	}
	res = calloc((size_t)o.neps, sizeof *res);
	if (!res) {
		fprintf(stderr, "sectorlab attack: out of memory\n");
		goto out;
	}
	if (o.npy) {
		c.adv = malloc(sizeof(float) * (size_t)n * c.dim);
		c.pred_adv = malloc(sizeof(int) * (size_t)n);
		if (!c.adv || !c.pred_adv) {
			fprintf(stderr, "sectorlab attack: out of memory for --npy (%d images)\n", n);
			goto out;
		}
		if (npz_begin(&c, test, &recipe, o.eps, o.neps, &err) != SL_OK) {
			fprintf(stderr, "sectorlab attack: %s\n", err.msg);
			goto out;
		}
	}
	if (!o.json)
		fprintf(stderr, "attacking %s (%s, %s) on the first %d %s test images\n", o.model,
			model_name, mode, n, dataset);
	/* Ctrl-C or SIGTERM stops between batches and between exported files:
	 * every file under its final name is whole, and the archive, CSV and
	 * plot, written after the results are printed, are not written at all. */
	interrupt_catch(&guard);
	caught = true;
	cmd_progress_start(&c.progress, "images", (double)o.neps * n);
	sl_status swept = attack_sweep(net, test, n, &recipe, eps, o.neps, on_batch, &c, res,
				       &err);
	cmd_progress_clear(&c.progress);
	if (swept != SL_OK || interrupt_check(&err) != SL_OK) {
		if (err.code == SL_ERR_CANCELLED) {
			fprintf(stderr, "sectorlab attack: %s; the files written so far are complete, "
					"the rest were not written\n", err.msg);
			rc = interrupt_exit_code(interrupt_pending());
		} else {
			fprintf(stderr, "sectorlab attack: %s\n", err.msg);
		}
		goto out;
	}
	/* The results first: a file that then fails to be written loses no
	 * number of the sweep. */
	if (o.json)
		print_json(stdout, &o, model_name, mode, dataset, &recipe, res, o.neps, &c);
	else
		print_table(stdout, &recipe, model_name, mode, dataset, o.model, res, o.neps, &o, &c);
	fflush(stdout);
	if (c.npz) {
		struct npz_writer *z = c.npz;
		c.npz = NULL;
		if (npz_commit(z, &err) != SL_OK) {
			fprintf(stderr, "sectorlab attack: %s\n", err.msg);
			goto out;
		}
	}
	if (o.csv && write_csv(o.csv, &recipe, res, o.neps, &err) != SL_OK) {
		fprintf(stderr, "sectorlab attack: %s\n", err.msg);
		goto out;
	}
	if (o.plot && write_plot(o.plot, &recipe, model_name, mode, dataset, res, o.neps, &err) !=
			      SL_OK) {
		fprintf(stderr, "sectorlab attack: %s\n", err.msg);
		goto out;
	}
	if (!o.json) {
		if (o.png_dir)
			fprintf(stderr, "wrote %d examples per eps and a grid to %s/\n", c.npng,
				o.png_dir);
		if (o.npy)
			fprintf(stderr, "wrote %s (numpy.load)\n", o.npy);
		if (o.csv)
			fprintf(stderr, "wrote %s\n", o.csv);
		if (o.plot)
			fprintf(stderr, "wrote %s\n", o.plot);
	}
	rc = 0;
out:
	if (caught)
		interrupt_release(&guard);
	npz_abort(c.npz);
	free(c.adv);
	free(c.pred_adv);
	free(c.png_x0);
	free(c.png_adv);
	free(c.png_y);
	free(c.png_pc);
	free(c.png_pa);
	free(res);
	cmd_model_free(&m);
	return rc;
}

int cmd_attack(int argc, char **argv)
{
	return cmd_with_config("attack", attack_options, attack_run, argc, argv);
}
