/* cmd_certify: `sectorlab certify`, the robustness certificate of a trained model. */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sectorlab/caps.h"
#include "sectorlab/certify.h"
#include "sectorlab/cmd.h"
#include "sectorlab/cmd_progress.h"
#include "sectorlab/json.h"
#include "sectorlab/lmi.h"
#include "sectorlab/sandwich.h"

static void usage(FILE *f)
{
	fputs("usage: sectorlab certify --model FILE [options]\n"
	      "\n"
	      "Certify a trained network: allocate per-layer sector indices for the\n"
	      "network's (nu, delta) (Theorem 3), check every layer's spectral norm\n"
	      "against its Theorem 4 cap (and, with --lmi, the exact LMI of Theorem 1),\n"
	      "then bound the network's Lipschitz constant every way sectorlab knows and\n"
	      "print the sandwich  floor <= SDP <= sector <= product  with each one's\n"
	      "time: the product of the layers' norms; per class pair, ||w_y - w_j||\n"
	      "times the earlier layers' product; the tightest sector the exact\n"
	      "per-layer LMIs and Theorem 3 certify (searched over delta); LipSDP for\n"
	      "the network and per class pair (dense networks); and beneath them the\n"
	      "floor found by search (gradient ascent over input pairs; per image the\n"
	      "shortest flipping L2 perturbation PGD finds).  A bound below the floor\n"
	      "is reported as a bug (exit 1).  Each test image's certified L2 radius is\n"
	      "min over j of (z_y - z_j - rounding) / L_yj, pixels scaled to\n"
	      "x/255 - 0.5; the certified accuracy at radii 0.1, 0.25, 0.5 and 1 is\n"
	      "printed under every bound (and at the radius the network was trained\n"
	      "for, --target-radius).\n"
	      "\n"
	      "  --model FILE       a checkpoint written by sectorlab train, or a PyTorch\n"
	      "                     state_dict saved with safetensors\n"
	      "  --arch SPEC        the layers of a PyTorch file (activations and pooling\n"
	      "                     are not in a state_dict): a model name, 784-100-10\n"
	      "                     (leaky ReLU 0.1 between) or the full form, as in\n"
	      "                     'sectorlab train --help'\n"
	      "  --nu X --delta Y   network indices (default: the checkpoint's, else\n"
	      "                     the paper's -2, 0.4)\n"
	      "  --objective OBJ    allocation objective: product or min (default: the\n"
	      "                     checkpoint's, else product)\n"
	      "  --lmi              also solve the exact per-layer LMI (dense layers)\n"
	      "  --n N              use the first N test images (default all)\n"
	      "  --bound B          the bound that decides the radii: product, pair, sdp,\n"
	      "                     sector or best (default best: the smallest per pair)\n"
	      "  --no-sdp           skip both LipSDP bounds\n"
	      "  --sector           also search for the tightest sector (about 16 SDPs:\n"
	      "                     half a minute for the MNIST MLP; on our checkpoints it\n"
	      "                     never beat the product)\n"
	      "  --floor-starts N   Lipschitz floor from the first N test images (default\n"
	      "                     100; 0 skips)\n"
	      "  --floor-n N        flip search (PGD-L2, 40 steps, 1 random restart,\n"
	      "                     8 bisections) on the first N test images (default\n"
	      "                     100; 0 skips)\n"
	      "  --dataset NAME     mnist, fashion or cifar10 (default: the checkpoint's)\n"
	      "  --data-dir DIR     where the data is (default: $SECTORLAB_DATA, else data/)\n"
	      "  --json             one JSON object on stdout\n"
	      "  --quiet            no live progress line (shown only when stderr is a\n"
	      "                     terminal: layer, rate and ETA)\n"
	      "  --threads N        threads (default: one per processor)\n"
	      "  --config FILE      settings from FILE, one 'option = value' per line\n"
	      "                     (# starts a comment); options typed here win\n"
	      "  -h, --help         this help\n"
	      "\n"
	      "Options are written in full (no abbreviations such as --obj for\n"
	      "--objective).\n"
	      "Exit status: 0 when the certificate was computed (certified or not), 1 on\n"
	      "a failure, 2 on bad usage.\n",
	      f);
}

struct certify_opts {
	const char *model, *arch, *dataset, *data_dir, *objective;
	enum sector_objective obj; /* objective parsed, when given */
	double nu, delta;
	int have_nu, have_delta, lmi, json, quiet, no_sdp, sector;
	long n, threads, floor_starts, floor_n;
	const char *bound;
	enum sandwich_choice choice;
};

/* The options; a settings file (--config) may set any of them but help. */
enum { O_MODEL = 256, O_NU, O_DELTA, O_OBJ, O_LMI, O_N, O_DATASET, O_DATADIR, O_JSON,
       O_THREADS, O_QUIET, O_ARCH, O_BOUND, O_NO_SDP, O_SECTOR, O_FLOOR_STARTS, O_FLOOR_N };
static const struct option certify_options[] = {
	{"model", required_argument, 0, O_MODEL},
	{"arch", required_argument, 0, O_ARCH},
	{"nu", required_argument, 0, O_NU},
	{"delta", required_argument, 0, O_DELTA},
	{"objective", required_argument, 0, O_OBJ},
	{"lmi", no_argument, 0, O_LMI},
	{"n", required_argument, 0, O_N},
	{"dataset", required_argument, 0, O_DATASET},
	{"data-dir", required_argument, 0, O_DATADIR},
	{"json", no_argument, 0, O_JSON},
	{"quiet", no_argument, 0, O_QUIET},
	{"threads", required_argument, 0, O_THREADS},
	{"bound", required_argument, 0, O_BOUND},
	{"no-sdp", no_argument, 0, O_NO_SDP},
	{"sector", no_argument, 0, O_SECTOR},
	{"floor-starts", required_argument, 0, O_FLOOR_STARTS},
	{"floor-n", required_argument, 0, O_FLOOR_N},
	{"help", no_argument, 0, 'h'},
	{0, 0, 0, 0},
};

static int parse(int argc, char **argv, struct certify_opts *o)
{
	int c, bad = 0;
	optind = 0; /* glibc: start afresh, whatever an earlier parse left */
	while ((c = cmd_getopt("certify", argc, argv, certify_options)) != -1) {
		switch (c) {
		case O_MODEL: o->model = optarg; break;
		case O_ARCH: o->arch = optarg; break;
		case O_NU:
			bad |= cmd_parse_double("--nu", optarg, CMD_RANGE_NU, &o->nu);
			o->have_nu = 1;
			break;
		case O_DELTA:
			bad |= cmd_parse_double("--delta", optarg, CMD_RANGE_DELTA, &o->delta);
			o->have_delta = 1;
			break;
		case O_OBJ: o->objective = optarg; break;
		case O_LMI: o->lmi = 1; break;
		case O_N: bad |= cmd_parse_long("--n", optarg, 1, 100000000L, &o->n); break;
		case O_DATASET: o->dataset = optarg; break;
		case O_DATADIR: o->data_dir = optarg; break;
		case O_JSON: o->json = 1; break;
		case O_QUIET: o->quiet = 1; break;
		case O_THREADS: bad |= cmd_parse_long("--threads", optarg, 1, 256, &o->threads); break;
		case O_BOUND: o->bound = optarg; break;
		case O_NO_SDP: o->no_sdp = 1; break;
		case O_SECTOR: o->sector = 1; break;
		case O_FLOOR_STARTS:
			bad |= cmd_parse_long("--floor-starts", optarg, 0, 100000, &o->floor_starts);
			break;
		case O_FLOOR_N:
			bad |= cmd_parse_long("--floor-n", optarg, 0, 100000000L, &o->floor_n);
			break;
		case 'h': usage(stdout); return 1;
		default: bad = 1; break;
		}
	}
	if (!bad && optind < argc) {
		fprintf(stderr, "sectorlab certify: unexpected argument '%s'\n", argv[optind]);
		bad = 1;
	}
	struct sl_error err;
	if (!bad && o->objective &&
	    caps_objective_parse(o->objective, &o->obj, &err) != SL_OK) {
		fprintf(stderr, "sectorlab certify: --%s\n", err.msg);
		bad = 1;
	}
	struct sl_error e;
	if (!bad && o->bound && sandwich_choice_parse(o->bound, &o->choice, &e) != SL_OK) {
		fprintf(stderr, "sectorlab certify: %s\n", e.msg);
		bad = 1;
	}
	if (!bad && o->choice == SANDWICH_USE_SDP && o->no_sdp) {
		fprintf(stderr, "sectorlab certify: --bound sdp needs the SDPs --no-sdp skips\n");
		bad = 1;
	}
	if (!bad && !o->model) {
		fprintf(stderr, "sectorlab certify: --model FILE is required\n");
		bad = 1;
	}
	if (bad) {
		fputs("Try 'sectorlab certify --help'.\n", stderr);
		return 2;
	}
	return 0;
}

/* (nu, delta) and the objective: the flags, else the checkpoint's caps spec
 * (caps_spec_from_info: the indices and objective it was trained for), else
 * the paper's. */
static int indices(const struct certify_opts *o, const struct checkpoint_info *info,
		   struct certify_options *co)
{
	struct caps_spec spec;
	struct sl_error err;
	if (caps_spec_from_info(info, &spec, &err) != SL_OK) {
		fprintf(stderr, "sectorlab certify: %s: %s\n", o->model, err.msg);
		return 1;
	}
	co->nu = o->have_nu ? o->nu : spec.nu;
	co->delta = o->have_delta ? o->delta : spec.delta;
	co->objective = o->objective ? o->obj : spec.objective;
	return 0;
}

static const char *lmi_name(enum certify_lmi v)
{
	switch (v) {
	case CERTIFY_LMI_NOT_RUN: return "not run";
	case CERTIFY_LMI_CERTIFIED: return "certified";
	case CERTIFY_LMI_REFUTED: return "not certified";
	case CERTIFY_LMI_TOO_LARGE: return "too large";
	case CERTIFY_LMI_CONV: return "conv: not attempted";
	case CERTIFY_LMI_FAILED: return "solver failed";
	}
	return "?";
}

/* What the radii look like under every bound, and the floor beneath. */
struct report {
	struct sandwich sw;
	struct certify_accuracy acc[SANDWICH_NKINDS]; /* per bound (when computed) */
	struct certify_accuracy best;                 /* under the chosen table */
	int nflip;                                    /* images of the flip search */
	double flip_median;                           /* median shortest flip found */
	int flip_found;                               /* images a flip was found for */
	double flip_seconds;
};

/* The word for how a layer was certified (issue: say which test did it). */
static const char *certified_by(const struct certify_layer *l)
{
	if (l->kind == SECTOR_LAYER_POOL)
		return "k-Lipschitz";
	if (l->within)
		return "Theorem 4 cap";
	if (l->lmi == CERTIFY_LMI_CERTIFIED)
		return "exact LMI";
	return "NOT certified";
}

/* A radius for people, width w: "inf" for an infinite one. */
static void put_radius(int w, double v)
{
	if (isinf(v))
		printf("%*s", w, "inf");
	else
		printf("%*.4f", w, v);
}

static const char *state_name(enum sandwich_state s)
{
	switch (s) {
	case SANDWICH_COMPUTED: return "computed";
	case SANDWICH_NOT_ASKED: return "not asked";
	case SANDWICH_UNSUPPORTED: return "unsupported";
	case SANDWICH_TOO_LARGE: return "too large";
	case SANDWICH_FAILED: return "failed";
	}
	return "?";
}

/* The sandwich's rows, tightest first: the network bounds, then the pair ones. */
static const enum sandwich_kind order[SANDWICH_NKINDS] = {
	SANDWICH_SDP, SANDWICH_SECTOR, SANDWICH_PRODUCT, SANDWICH_SDP_PAIR, SANDWICH_PAIR};

static void print_table(const struct certify_opts *o, const struct cmd_model *m,
			const struct certificate *c, const struct report *r)
{
	const struct sandwich *sw = &r->sw;
	printf("certificate for %s (%s, %s) at (nu, delta) = (%g, %g), %s objective: sector "
	       "[%.6f, %.6f]\n",
	       o->model, m->model_name, m->mode, c->nu, c->delta,
	       sector_objective_name(c->objective), c->sector_lo, c->sector_hi);
	printf("\nlayer     kind   sigma(power, steps)   sigma(%s)  gain floor      s      nu_i"
	       "    delta_i      rho_i  certified by   exact LMI\n", "verified");
	for (int i = 0, w = 0; i < c->nlayers; i++) {
		const struct certify_layer *l = &c->layer[i];
		if (l->kind == SECTOR_LAYER_POOL) {
			/* Pad to where the weighted rows' nu_i column starts. */
			int used = printf("%-9s pool   %g-Lipschitz", l->name, l->k);
			printf("%*s", used < 74 ? 74 - used : 1, "");
			if (c->allocated)
				printf("%9.4f %10.4f", c->alloc.layer[i].nu, c->alloc.layer[i].delta);
			printf("\n");
			continue;
		}
		printf("%-9s %-5s  %10.6f (%4d)   %10.6f%s", l->name,
		       sector_layer_kind_name(l->kind), l->sigma_power, l->power_iters, l->sigma,
		       l->sigma_exact ? " svd" : " pow");
		if (w < sw->nlayer_floor)
			printf("  %10.6f", sw->layer_floor[w]);
		else
			printf("  %10s", "-");
		w++;
		printf(" %8.4f", l->s);
		if (c->allocated)
			printf("  %9.4f %10.4f %10.6f  %-13s  %s", l->nu, l->delta, l->rho,
			       certified_by(l), lmi_name(l->lmi));
		printf("\n");
		if (l->lmi == CERTIFY_LMI_CERTIFIED || l->lmi == CERTIFY_LMI_REFUTED)
			printf("%9s largest nu certified by the exact LMI at delta_i: %.6f\n", "",
			       l->lmi_nu_max);
		else if (l->lmi == CERTIFY_LMI_TOO_LARGE || l->lmi == CERTIFY_LMI_FAILED)
			printf("%9s %s\n", "", l->lmi_message);
	}
	if (sw->nlayer_floor > 0)
		printf("gain floor: each layer's largest |g(u) - g(v)| / |u - v| found by search "
		       "from the inputs the first %ld test images give it and from a point where "
		       "every unit is on (%.2f s); at most its norm\n",
		       o->floor_starts, sw->layer_floor_seconds);
	if (c->sector_certified) {
		printf("\nsector (%g, %g): CERTIFIED by Theorem 3 with", c->nu, c->delta);
		for (int i = 0, first = 1; i < c->nlayers; i++) {
			if (c->layer[i].kind == SECTOR_LAYER_POOL)
				continue;
			printf("%s %s by its %s", first ? "" : ",", c->layer[i].name,
			       c->layer[i].within ? "Theorem 4 cap" : "exact LMI");
			first = 0;
		}
		printf("; gamma %.6f\n", c->gamma_sector);
	} else {
		printf("\nsector (%g, %g): not certified\n  why: %s\n", c->nu, c->delta, c->reason);
	}

	printf("\nLipschitz bounds of the network, tightest first (floor <= sdp <= sector <= "
	       "product):\n");
	if (sw->floor_L > 0)
		printf("  %-9s %12.6f  by search from %d test images (%d points, %.2f s)\n",
		       "floor", sw->floor_L, (int)o->floor_starts, sw->floor_evaluations,
		       sw->floor_seconds);
	else
		printf("  %-9s %12s  %s\n", "floor", "-", sw->floor_note);
	for (int k = 0; k < SANDWICH_NKINDS; k++) {
		if (k == 3) {
			printf("per class pair, the largest constant L_yj over pairs (a network bound "
			       "L gives sqrt(2) L):\n");
			if (sw->floor_L > 0)
				printf("  %-9s %12.6f  by search, as above\n", "floor", sw->floor_pair_max);
		}
		const struct sandwich_bound *b = &sw->b[order[k]];
		printf("  %-9s ", sandwich_kind_name(order[k]));
		if (b->state != SANDWICH_COMPUTED) {
			printf("%12s  %s%s%s\n", "-", state_name(b->state), b->note[0] || order[k] == SANDWICH_SECTOR ? ": " : "",
			       b->state == SANDWICH_NOT_ASKED && order[k] == SANDWICH_SECTOR
				       ? "the search runs with --sector"
				       : b->note);
			continue;
		}
		printf("%12.6f  %.2f s", b->L, b->seconds);
		if (order[k] == SANDWICH_SECTOR && sw->sector_searched)
			printf("; tightest sector (nu, delta) = (%.6g, %.6g), gamma %.6f, %d SDPs",
			       sw->sector.nu, sw->sector.delta, sw->sector.gamma, sw->sector.sdps);
		else if (b->note[0])
			printf("; %s", b->note);
		printf("\n");
	}
	if (sw->constant)
		printf("  the network is constant (a layer's weight is all zero): every bound is 0 "
		       "and every correctly classified image is certified at every radius\n");
	if (sw->b[SANDWICH_SECTOR].state == SANDWICH_COMPUTED) {
		double gs = sw->b[SANDWICH_SECTOR].L, gp = sw->b[SANDWICH_PRODUCT].L;
		printf("the sector %s: its gamma %.6f is %s the product of norms %.6f",
		       gs < gp ? "DECIDES over the product" : "does not decide", gs,
		       gs < gp ? "below" : "not below", gp);
		if (c->sector_certified)
			printf(" (the allocation's (%g, %g) gives %.6f)", c->nu, c->delta,
			       c->gamma_sector);
		printf("\n");
	}

	printf("\n%d %s test images, clean accuracy %.2f%%; certified accuracy (L2, pixels "
	       "x/255 - 0.5) under each bound:\n", r->best.n, m->dataset, 100 * r->best.clean);
	printf("  %-9s %14s %8s", "bound", "median radius", "x product");
	for (int k = 0; k < r->best.nradii; k++) {
		char h[32];
		snprintf(h, sizeof h, "r=%g", r->best.radius[k]);
		printf(" %8s", h);
	}
	printf("\n");
	double base = r->acc[SANDWICH_PRODUCT].median_radius;
	for (int k = SANDWICH_NKINDS; k >= 0; k--) {
		const struct certify_accuracy *a;
		char name[32];
		if (k == SANDWICH_NKINDS) {
			a = &r->best;
			snprintf(name, sizeof name, "%s *", sandwich_choice_name(o->choice));
		} else {
			if (sw->b[order[k]].state != SANDWICH_COMPUTED)
				continue;
			a = &r->acc[order[k]];
			snprintf(name, sizeof name, "%s", sandwich_kind_name(order[k]));
		}
		printf("  %-9s ", name);
		put_radius(14, a->median_radius);
		if (base > 0 && isfinite(a->median_radius))
			printf(" %7.2fx", a->median_radius / base);
		else
			printf(" %8s", "-");
		for (int j = 0; j < a->nradii; j++)
			printf(" %7.2f%%", 100 * a->certified[j]);
		printf("\n");
	}
	printf("  (* decides: --bound %s)\n", sandwich_choice_name(o->choice));
	cmd_print_rounding_lost(stdout, r->best.rounding_lost);
	if (r->nflip > 0)
		printf("flip floor: PGD-L2 found a flip for %d of the first %d images, median "
		       "shortest flip %.4f (%.1f s); every certified radius lies below it\n",
		       r->flip_found, r->nflip, r->flip_median, r->flip_seconds);
}

static void print_accuracy_json(const struct certify_accuracy *a)
{
	printf("\"median_radius\":");
	printf("%s", json_num(a->median_radius).s);
	printf(",\"median_radius_infinite\":%s,", isinf(a->median_radius) ? "true" : "false");
	printf("\"rounding_lost\":%.6f,", a->rounding_lost);
	cmd_json_certified(a);
}

static void print_json(const struct certify_opts *o, const struct cmd_model *m,
		       const struct certificate *c, const struct report *r)
{
	const struct sandwich *sw = &r->sw;
	printf("{\"model\":");
	json_string(stdout, o->model);
	printf(",\"model_name\":");
	json_string(stdout, m->model_name);
	printf(",\"mode\":");
	json_string(stdout, m->mode);
	printf(",\"dataset\":\"%s\",\"nu\":%s,\"delta\":%s,\"objective\":\"%s\","
	       "\"sector\":[%s,%s],\"allocated\":%s,\"sector_certified\":%s,\"reason\":",
	       m->dataset, json_num(c->nu).s, json_num(c->delta).s,
	       sector_objective_name(c->objective), json_num(c->sector_lo).s,
	       json_num(c->sector_hi).s,
	       c->allocated ? "true" : "false", c->sector_certified ? "true" : "false");
	json_string(stdout, c->sector_certified ? "" : c->reason);
	printf(",\"gamma_sector\":");
	if (c->sector_certified)
		printf("%s", json_num(c->gamma_sector).s);
	else
		printf("null");
	printf(",\"gamma_product\":%s,\"gamma\":%s,\"layers\":[", json_num(c->gamma_product).s,
	       json_num(c->gamma).s);
	for (int i = 0, w = 0; i < c->nlayers; i++) {
		const struct certify_layer *l = &c->layer[i];
		printf("%s{\"name\":", i ? "," : "");
		json_string(stdout, l->name); /* from the checkpoint */
		printf(",\"kind\":\"%s\"", sector_layer_kind_name(l->kind));
		if (c->allocated)
			printf(",\"nu\":%s,\"delta\":%s", json_num(c->alloc.layer[i].nu).s,
			       json_num(c->alloc.layer[i].delta).s);
		if (l->kind == SECTOR_LAYER_POOL) {
			printf(",\"k\":%s}", json_num(l->k).s);
			continue;
		}
		printf(",\"sigma_power\":%s,\"power_iterations\":%d,\"sigma\":%s,"
		       "\"sigma_exact\":%s,\"s\":%s,",
		       json_num(l->sigma_power).s, l->power_iters, json_num(l->sigma).s,
		       l->sigma_exact ? "true" : "false", json_num(l->s).s);
		printf("\"gain_floor\":%s,\"rho\":",
		       w < sw->nlayer_floor ? json_num(sw->layer_floor[w]).s : "null");
		w++;
		if (c->allocated)
			printf("%s", json_num(l->rho).s);
		else
			printf("null");
		printf(",\"within\":%s,\"lmi\":\"%s\",\"lmi_nu_max\":",
		       l->within ? "true" : "false", lmi_name(l->lmi));
		if (l->lmi == CERTIFY_LMI_CERTIFIED || l->lmi == CERTIFY_LMI_REFUTED)
			printf("%s", json_num(l->lmi_nu_max).s);
		else
			printf("null");
		printf(",\"certified\":%s,\"certified_by\":\"%s\"}",
		       l->certified ? "true" : "false", c->allocated ? certified_by(l) : "");
	}
	printf("],\"constant\":%s,\"floor\":{\"lipschitz\":", sw->constant ? "true" : "false");
	if (sw->floor_L > 0)
		printf("%s", json_num(sw->floor_L).s);
	else
		printf("null");
	printf(",\"starts\":%ld,\"points\":%d,\"seconds\":%.4f,\"note\":", o->floor_starts,
	       sw->floor_evaluations, sw->floor_seconds);
	json_string(stdout, sw->floor_L > 0 ? "" : sw->floor_note);
	printf(",\"pair_max\":%s", json_num(sw->floor_L > 0 ? sw->floor_pair_max : NAN).s);
	printf(",\"flip_images\":%d,\"flip_found\":%d,\"flip_median\":", r->nflip,
	       r->flip_found);
	printf("%s", json_num(r->nflip > 0 ? r->flip_median : NAN).s);
	printf(",\"flip_seconds\":%.4f},\"bounds\":{", r->flip_seconds);
	for (int k = 0; k < SANDWICH_NKINDS; k++) {
		const struct sandwich_bound *b = &sw->b[k];
		printf("%s\"%s\":{\"state\":\"%s\",\"note\":", k ? "," : "",
		       sandwich_kind_name((enum sandwich_kind)k), state_name(b->state));
		json_string(stdout, b->note);
		if (b->state == SANDWICH_COMPUTED) {
			printf(",\"lipschitz\":%s", json_num(b->L).s);
			printf(",\"seconds\":%.4f,", b->seconds);
			print_accuracy_json(&r->acc[k]);
		}
		if (k == SANDWICH_SECTOR && sw->sector_searched)
			printf(",\"tightest\":{\"nu\":%s,\"delta\":%s,\"gamma\":%s,\"sdps\":%d}",
			       json_num(sw->sector.nu).s, json_num(sw->sector.delta).s,
			       json_num(sw->sector.gamma).s, sw->sector.sdps);
		printf("}");
	}
	printf("},\"bound\":\"%s\",\"n\":%d,\"clean_accuracy\":%.6f,",
	       sandwich_choice_name(o->choice), r->best.n, r->best.clean);
	print_accuracy_json(&r->best);
	printf("}\n");
}

static void on_layer(void *ctx, int done, int total, const char *name)
{
	struct cmd_progress *p = ctx;
	if (p->total != total)
		cmd_progress_start(p, "layers", total);
	cmd_progress_update(p, done, "certifying: %s checked (%d of %d layers)", name, done,
			    total);
}

/* The flip search on the first n images; BUG when a certified radius of
 * any bound exceeds the shortest flip found. */
static int flip_floor(struct cmd_model *m, int n, struct report *r, struct sl_error *err)
{
	int bmax = m->net->max_batch, dim = m->net->in_dim;
	float *x = malloc(sizeof(float) * (size_t)bmax * dim);
	int *y = malloc(sizeof(int) * (size_t)bmax);
	uint32_t *idx = malloc(sizeof(uint32_t) * (size_t)bmax);
	double *flip = malloc(sizeof(double) * (size_t)n);
	int rc = 1;
	if (!x || !y || !idx || !flip) {
		status_set(err, SL_ERR_NOMEM, "flip search");
		goto out;
	}
	struct bounds_flip_options fo = {.steps = 40, .restarts = 1, .bisections = 8,
					 .eps_start = 0.25, .eps_max = 16, .seed = 1};
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (int start = 0; start < n; start += bmax) {
		int b = n - start < bmax ? n - start : bmax;
		for (int i = 0; i < b; i++)
			idx[i] = (uint32_t)(start + i);
		data_batch(&m->test, idx, (size_t)b, x, y);
		if (bounds_flip_radius(m->net, x, y, b, &fo, flip + start, err) != SL_OK)
			goto out;
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	r->flip_seconds = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
	r->nflip = n;
	/* the radii of the first n images under each bound, against the flips */
	const double *tables[SANDWICH_NKINDS];
	double *rad[SANDWICH_NKINDS] = {0};
	enum sandwich_kind kinds[SANDWICH_NKINDS];
	bool *ok = malloc(sizeof(bool) * (size_t)n);
	int nt = 0, cnt = 0;
	for (int k = 0; k < SANDWICH_NKINDS; k++)
		if (r->sw.b[k].state == SANDWICH_COMPUTED) {
			tables[nt] = r->sw.b[k].pair;
			kinds[nt] = (enum sandwich_kind)k;
			rad[nt] = malloc(sizeof(double) * (size_t)n);
			if (!rad[nt])
				break;
			nt++;
		}
	rc = 0;
	if (!ok || certify_radii_tables(m->net, &m->test, n, nt, tables, rad, ok, &cnt, err) !=
			   SL_OK) {
		rc = 1;
	}
	for (int t = 0; rc == 0 && t < nt; t++)
		for (int i = 0; i < n; i++)
			if (rad[t][i] > flip[i]) {
				status_set(err, SL_ERR_NUMERIC,
					   "BUG: test image %d is certified at radius %.9g under the "
					   "%s bound, but PGD flips it at distance %.9g",
					   i, rad[t][i], sandwich_kind_name(kinds[t]), flip[i]);
				rc = 1;
				break;
			}
	for (int t = 0; t < nt; t++)
		free(rad[t]);
	free(ok);
	if (rc)
		goto out;
	/* median over the images that were classified correctly (flip > 0) */
	int k = 0;
	for (int i = 0; i < n; i++)
		if (flip[i] > 0)
			flip[k++] = flip[i];
	r->flip_found = 0;
	for (int i = 0; i < k; i++)
		r->flip_found += isfinite(flip[i]);
	for (int i = 1; i < k; i++) /* insertion sort: n is small */
		for (int j = i; j > 0 && flip[j - 1] > flip[j]; j--) {
			double t = flip[j];
			flip[j] = flip[j - 1];
			flip[j - 1] = t;
		}
	r->flip_median = k ? (k % 2 ? flip[k / 2] : 0.5 * (flip[k / 2 - 1] + flip[k / 2])) : 0;
out:
	free(x);
	free(y);
	free(idx);
	free(flip);
	return rc;
}

static int certify_run(int argc, char **argv)
{
	struct certify_opts o = {.choice = SANDWICH_USE_BEST, .floor_starts = 100, .floor_n = 100};
	int rc = parse(argc, argv, &o);
	if (rc)
		return rc == 1 ? 0 : rc;
	struct cmd_model m;
	struct report r;
	memset(&r, 0, sizeof r);
	double *best = NULL;
	cmd_set_threads(o.threads);
	rc = cmd_load_model("certify", o.model, o.arch, 256, o.dataset, o.data_dir, &m);
	if (rc)
		goto out;
	rc = 1;
	struct certify_options co = {.lmi = o.lmi};
	if (indices(&o, &m.info, &co) != 0)
		goto out; /* a corrupt file, named: status 1 */
	struct sl_error err;
	status_clear(&err);
	struct certificate c;
	struct cmd_progress prog;
	cmd_progress_init(&prog, o.quiet);
	cmd_progress_start(&prog, "layers", 0);
	co.on_layer = on_layer;
	co.on_layer_ctx = &prog;
	sl_status st = certify_network(m.net, &co, &c, &err);
	cmd_progress_clear(&prog);
	if (st != SL_OK) {
		fprintf(stderr, "sectorlab certify: %s\n", err.msg);
		rc = st == SL_ERR_RANGE || st == SL_ERR_INFEASIBLE || st == SL_ERR_ARG ? 2 : 1;
		goto out;
	}
	/* The radius the network was trained to certify, when it was, joins
	 * the default ones, as train reported it. */
	double target = 0, radii[CERTIFY_MAX_RADII];
	const char *mtarget = checkpoint_info_get(&m.info, "target_radius");
	if (mtarget && *mtarget &&
	    (cmd_parse_double("checkpoint metadata target_radius", mtarget, CMD_RANGE(0, 1e3),
			      &target) != 0 ||
	     !(target >= 0))) {
		fprintf(stderr, "sectorlab certify: %s: bad target_radius in the metadata\n",
			o.model);
		goto out;
	}
	int nradii = certify_radii_with(target, radii);
	struct sandwich_options so = {.sdp = !o.no_sdp, .sdp_pairs = !o.no_sdp,
				      .sector = o.sector || o.choice == SANDWICH_USE_SECTOR, .floor_starts = (int)o.floor_starts,
				      .floor_steps = 30, .seed = 1};
	if (sandwich_compute(m.net, &c, &m.test, &so, &r.sw, &err) != SL_OK) {
		fprintf(stderr, "sectorlab certify: %s\n", err.msg);
		goto out;
	}
	int classes = m.net->out_dim, n = o.n > 0 ? (int)o.n : 0;
	best = malloc(sizeof(double) * (size_t)classes * classes);
	if (!best) {
		fprintf(stderr, "sectorlab certify: out of memory\n");
		goto out;
	}
	if (sandwich_table(&r.sw, o.choice, best, &err) != SL_OK) {
		fprintf(stderr, "sectorlab certify: %s\n", err.msg);
		goto out;
	}
	if (certify_accuracy_pairs(m.net, best, &m.test, n, radii, nradii, &r.best, &err) !=
	    SL_OK) {
		fprintf(stderr, "sectorlab certify: %s\n", err.msg);
		goto out;
	}
	for (int k = 0; k < SANDWICH_NKINDS; k++)
		if (r.sw.b[k].state == SANDWICH_COMPUTED &&
		    certify_accuracy_pairs(m.net, r.sw.b[k].pair, &m.test, n, radii, nradii,
					   &r.acc[k], &err) != SL_OK) {
			fprintf(stderr, "sectorlab certify: %s\n", err.msg);
			goto out;
		}
	int nf = o.floor_n < r.best.n ? (int)o.floor_n : r.best.n;
	if (nf > 0 && flip_floor(&m, nf, &r, &err) != 0) {
		fprintf(stderr, "sectorlab certify: %s\n", err.msg);
		goto out;
	}
	if (o.json)
		print_json(&o, &m, &c, &r);
	else
		print_table(&o, &m, &c, &r);
	rc = 0;
out:
	free(best);
	sandwich_free(&r.sw);
	cmd_model_free(&m);
	return rc;
}

int cmd_certify(int argc, char **argv)
{
	return cmd_with_config("certify", certify_options, certify_run, argc, argv);
}
