/* cmd_certify: `sectorlab certify`, the robustness certificate of a trained model. */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sectorlab/caps.h"
#include "sectorlab/certify.h"
#include "sectorlab/cmd.h"
#include "sectorlab/cmd_progress.h"
#include "sectorlab/json.h"
#include "sectorlab/lmi.h"

static void usage(FILE *f)
{
	fputs("usage: sectorlab certify --model FILE [options]\n"
	      "\n"
	      "Certify a trained network: allocate per-layer sector indices for the\n"
	      "network's (nu, delta) (Theorem 3), check every layer's spectral norm\n"
	      "against its Theorem 4 cap (and, with --lmi, the exact LMI of Theorem 1),\n"
	      "bound the network's Lipschitz constant, and report the certified L2\n"
	      "radius of each test image (margin / (sqrt(2) gamma), pixels scaled to\n"
	      "x/255 - 0.5) and the certified accuracy at radii 0.1, 0.25, 0.5 and 1\n"
	      "(and at the radius the network was trained for, --target-radius).\n"
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
	int have_nu, have_delta, lmi, json, quiet;
	long n, threads;
};

/* The options; a settings file (--config) may set any of them but help. */
enum { O_MODEL = 256, O_NU, O_DELTA, O_OBJ, O_LMI, O_N, O_DATASET, O_DATADIR, O_JSON,
       O_THREADS, O_QUIET, O_ARCH };
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

static void print_table(const struct certify_opts *o, const struct cmd_model *m,
			const struct certificate *c, const struct certify_accuracy *a)
{
	printf("certificate for %s (%s, %s) at (nu, delta) = (%g, %g), %s objective: sector "
	       "[%.6f, %.6f]\n",
	       o->model, m->model_name, m->mode, c->nu, c->delta,
	       sector_objective_name(c->objective), c->sector_lo, c->sector_hi);
	printf("\nlayer     kind   sigma(power, steps)   sigma(%s)      s      nu_i    delta_i"
	       "      rho_i  within  exact LMI\n", "verified");
	for (int i = 0; i < c->nlayers; i++) {
		const struct certify_layer *l = &c->layer[i];
		if (l->kind == SECTOR_LAYER_POOL) {
			/* Pad to where the weighted rows' nu_i column starts. */
			int used = printf("%-9s pool   %g-Lipschitz", l->name, l->k);
			printf("%*s", used < 62 ? 62 - used : 1, "");
			if (c->allocated)
				printf("%9.4f %10.4f", c->alloc.layer[i].nu, c->alloc.layer[i].delta);
			printf("\n");
			continue;
		}
		printf("%-9s %-5s  %10.6f (%4d)   %10.6f%s %8.4f", l->name,
		       sector_layer_kind_name(l->kind), l->sigma_power, l->power_iters, l->sigma,
		       l->sigma_exact ? " svd" : " pow", l->s);
		if (c->allocated)
			printf("  %9.4f %10.4f %10.6f  %-6s  %s", l->nu, l->delta, l->rho,
			       l->within ? "yes" : "NO", lmi_name(l->lmi));
		printf("\n");
		if (l->lmi == CERTIFY_LMI_CERTIFIED || l->lmi == CERTIFY_LMI_REFUTED)
			printf("%9s largest nu certified by the exact LMI at delta_i: %.6f\n", "",
			       l->lmi_nu_max);
		else if (l->lmi == CERTIFY_LMI_TOO_LARGE || l->lmi == CERTIFY_LMI_FAILED)
			printf("%9s %s\n", "", l->lmi_message);
	}
	printf("\nsector (%g, %g): %s\n", c->nu, c->delta,
	       c->sector_certified ? "CERTIFIED (Theorem 3 with every layer inside its cap)"
				   : "not certified");
	if (!c->sector_certified)
		printf("  why: %s\n", c->reason);
	if (c->sector_certified)
		printf("Lipschitz bound: sector %s, product of norms %s; using %s\n",
		       cmd_num(c->gamma_sector, 6).s, cmd_num(c->gamma_product, 6).s,
		       cmd_num(c->gamma, 6).s);
	else
		printf("Lipschitz bound: product of norms %s (the sector gives none)\n",
		       cmd_num(c->gamma_product, 6).s);
	printf("\n%d %s test images, clean accuracy %.2f%%, median certified radius %s\n",
	       a->n, m->dataset, 100 * a->clean, cmd_num(a->median_radius, 4).s);
	printf("certified accuracy (L2, pixels x/255 - 0.5):");
	for (int k = 0; k < a->nradii; k++)
		printf("  r=%g: %.2f%%", a->radius[k], 100 * a->certified[k]);
	printf("\n");
}

static void print_json(const struct certify_opts *o, const struct cmd_model *m,
		       const struct certificate *c, const struct certify_accuracy *a)
{
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
	for (int i = 0; i < c->nlayers; i++) {
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
		       "\"sigma_exact\":%s,\"s\":%s,\"rho\":",
		       json_num(l->sigma_power).s, l->power_iters, json_num(l->sigma).s,
		       l->sigma_exact ? "true" : "false", json_num(l->s).s);
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
		printf(",\"certified\":%s}", l->certified ? "true" : "false");
	}
	printf("],\"n\":%d,\"clean_accuracy\":%.6f,\"median_radius\":%s,", a->n, a->clean,
	       json_num(a->median_radius).s);
	cmd_json_certified(a);
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

static int certify_run(int argc, char **argv)
{
	struct certify_opts o = {0};
	int rc = parse(argc, argv, &o);
	if (rc)
		return rc == 1 ? 0 : rc;
	struct cmd_model m;
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
	struct certify_accuracy a;
	if (certify_accuracy(m.net, &c, &m.test, o.n > 0 ? (int)o.n : 0, radii, nradii, &a,
			     &err) != SL_OK) {
		fprintf(stderr, "sectorlab certify: %s\n", err.msg);
		goto out;
	}
	if (o.json)
		print_json(&o, &m, &c, &a);
	else
		print_table(&o, &m, &c, &a);
	rc = 0;
out:
	cmd_model_free(&m);
	return rc;
}

int cmd_certify(int argc, char **argv)
{
	return cmd_with_config("certify", certify_options, certify_run, argc, argv);
}
