/*
 * cmd_allocate: `sectorlab allocate`, the per-layer indices (nu_i, delta_i)
 * and Theorem 4 caps rho_i that certify a network's (nu, delta) by Theorem 3.
 * All the work is sector_allocate; this file parses, prints a table or one
 * JSON object on stdout, and maps the outcome to the exit code: 0 with an
 * allocation, 1 when there is none (the reason is printed), 2 on bad usage.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "sectorlab/certify.h"
#include "sectorlab/cmd.h"
#include "sectorlab/json.h"
#include "sectorlab/sector.h"

static void usage(FILE *f)
{
	fputs("usage: sectorlab allocate [--model NAME | --arch SPEC] [--nu X] [--delta Y]\n"
	      "                          [--objective product|min] [--json]\n"
	      "\n"
	      "Split the network's sector indices (nu, delta) into per-layer indices\n"
	      "(nu_i, delta_i) with Theorem 3's matrix A <= 0, making the Theorem 4\n"
	      "spectral-norm caps rho_i as generous as possible.  Pooling layers join\n"
	      "the cascade as 2-Lipschitz maps and have no cap.\n"
	      "\n"
	      "  --model NAME       mlp (default), alexnet or alexnet-lite\n"
	      CMD_ARCH_HELP
	      "  --nu X             the network's nu (default -2)\n"
	      "  --delta Y          the network's delta, > 0 (default 0.4)\n"
	      "  --objective OBJ    product: maximize the product of the rho_i (default);\n"
	      "                     min: maximize the smallest rho_i\n"
	      "  --json             one JSON object on stdout instead of the table\n"
	      "  --config FILE      settings from FILE, one 'option = value' per line\n"
	      "                     (# starts a comment); options typed here win\n"
	      "  -h, --help         this help\n"
	      "\n"
	      "Options are written in full (no abbreviations: --n is not --nu).\n"
	      "Exit status: 0 allocation printed, 1 no allocation exists (the reason is\n"
	      "printed), 2 bad usage.\n",
	      f);
}

struct allocate_opts {
	const char *model, *arch;
	double nu, delta;
	enum sector_objective objective;
	int json;
};

/* 0 to go on, 1 after --help (exit 0), 2 on bad usage. */
/* The options; a settings file (--config) may set any of them but help. */
enum { O_MODEL = 256, O_NU, O_DELTA, O_OBJECTIVE, O_JSON, O_ARCH };
static const struct option allocate_options[] = {
	{"model", required_argument, 0, O_MODEL},
	{"arch", required_argument, 0, O_ARCH},
	{"nu", required_argument, 0, O_NU},
	{"delta", required_argument, 0, O_DELTA},
	{"objective", required_argument, 0, O_OBJECTIVE},
	{"json", no_argument, 0, O_JSON},
	{"help", no_argument, 0, 'h'},
	{0, 0, 0, 0},
};

static int parse(int argc, char **argv, struct allocate_opts *o)
{
	int c, bad = 0;
	optind = 0; /* glibc: start afresh, whatever an earlier parse left */
	while ((c = cmd_getopt("allocate", argc, argv, allocate_options)) != -1) {
		switch (c) {
		case O_MODEL: o->model = optarg; break;
		case O_ARCH: o->arch = optarg; break;
		case O_NU: bad |= cmd_parse_double("--nu", optarg, CMD_RANGE_NU, &o->nu) != 0; break;
		case O_DELTA:
			bad |= cmd_parse_double("--delta", optarg, CMD_RANGE_DELTA, &o->delta) != 0;
			break;
		case O_OBJECTIVE: {
			struct sl_error err;
			if (caps_objective_parse(optarg, &o->objective, &err) != SL_OK) {
				fprintf(stderr, "sectorlab allocate: --%s\n", err.msg);
				bad = 1;
			}
			break;
		}
		case O_JSON: o->json = 1; break;
		case 'h': usage(stdout); return 1;
		default: bad = 1; break;
		}
	}
	if (!bad && optind < argc) {
		fprintf(stderr, "sectorlab allocate: unexpected argument '%s'\n", argv[optind]);
		bad = 1;
	}
	if (!bad && cmd_check_indices("allocate", o->nu, o->delta) != 0)
		bad = 1;
	if (bad) {
		fputs("Try 'sectorlab allocate --help'.\n", stderr);
		return 2;
	}
	return 0;
}

/* Everything the two printers need. */
struct allocate_report {
	const struct allocate_opts *o;
	const char *label;        /* the model's name or the spec */
	const struct sector_layer *layers;
	int n;
	bool have_sector; /* slopes and gamma exist */
	double lo, hi, gamma;
	bool feasible;
	const char *reason;
	const struct sector_allocation *a; /* when feasible */
};

static void print_json(const struct allocate_report *r)
{
	printf("{\"feasible\": %s, \"reason\": ", r->feasible ? "true" : "false");
	json_string(stdout, r->reason);
	printf(", \"model\": ");
	json_string(stdout, r->label);
	printf(", \"objective\": \"%s\", \"nu\": %s, \"delta\": %s",
	       sector_objective_name(r->o->objective), json_num(r->o->nu).s, json_num(r->o->delta).s);
	if (r->have_sector)
		printf(", \"sector\": [%s, %s], \"gamma\": %s", json_num(r->lo).s, json_num(r->hi).s,
		       json_num(r->gamma).s);
	else
		printf(", \"sector\": null, \"gamma\": null");
	if (r->feasible)
		printf(", \"max_eig_A\": %s, \"tolerance\": %g, \"rho_product\": %s, "
		       "\"rho_min\": %s",
		       json_num(r->a->max_eig_a).s, SECTOR_ALLOC_TOL, json_num(r->a->rho_product).s,
		       json_num(r->a->rho_min).s);
	else
		printf(", \"max_eig_A\": null, \"tolerance\": %g, \"rho_product\": null, "
		       "\"rho_min\": null",
		       SECTOR_ALLOC_TOL);
	printf(", \"layers\": [");
	for (int i = 0; i < r->n; i++) {
		const struct sector_layer *l = &r->layers[i];
		bool pool = l->kind == SECTOR_LAYER_POOL;
		printf("%s{\"index\": %d, \"kind\": \"%s\"", i ? ", " : "", i + 1,
		       sector_layer_kind_name(l->kind));
		if (pool)
			printf(", \"activation\": null, \"k\": %s, \"m\": null, \"p\": null, "
			       "\"s\": null",
			       json_num(l->k).s);
		else
			printf(", \"activation\": \"%s\", \"k\": null, \"m\": %s, \"p\": %s, "
			       "\"s\": %s",
			       sector_act_name(l->act), json_num(l->sector.m).s, json_num(l->sector.p).s,
			       json_num(l->s).s);
		if (r->feasible) {
			const struct sector_alloc_layer *al = &r->a->layer[i];
			printf(", \"nu\": %s, \"delta\": %s", json_num(al->nu).s, json_num(al->delta).s);
			if (al->has_rho)
				printf(", \"rho\": %s, \"branch\": \"%s\"", json_num(al->rho).s,
				       sector_t4_branch_name(al->branch));
			else
				printf(", \"rho\": null, \"branch\": null");
		} else {
			printf(", \"nu\": null, \"delta\": null, \"rho\": null, \"branch\": null");
		}
		putchar('}');
	}
	printf("]}\n");
}

static void print_table(const struct allocate_report *r)
{
	printf("model %s, network indices (nu, delta) = (%g, %g), objective %s\n", r->label,
	       r->o->nu, r->o->delta, sector_objective_name(r->o->objective));
	if (r->have_sector)
		printf("sector slopes [%s, %s], Lipschitz bound gamma = %s\n", cmd_num(r->lo, 6).s,
		       cmd_num(r->hi, 6).s, cmd_num(r->gamma, 6).s);
	else
		printf("sector slopes: none (see below)\n");
	if (!r->feasible) {
		printf("\nfeasible: no\n%s\n", r->reason);
		return;
	}
	printf("\n%-5s %-6s %-9s %8s %8s %12s %12s %10s  %s\n", "layer", "kind", "act", "m", "p",
	       "nu_i", "delta_i", "rho_i", "Theorem 4");
	for (int i = 0; i < r->n; i++) {
		const struct sector_layer *l = &r->layers[i];
		const struct sector_alloc_layer *al = &r->a->layer[i];
		if (l->kind == SECTOR_LAYER_POOL) {
			printf("%-5d %-6s k = %-5g %8s %8s %12s %12s %10s  %s\n", i + 1, "pool", l->k,
			       "", "", cmd_num(al->nu, 6).s, cmd_num(al->delta, 6).s, "-",
			       "(k-Lipschitz, no cap)");
			continue;
		}
		printf("%-5d %-6s %-9s %8.4g %8.4g %12s %12s %10s  %s\n", i + 1,
		       sector_layer_kind_name(l->kind), sector_act_name(l->act), l->sector.m,
		       l->sector.p, cmd_num(al->nu, 6).s, cmd_num(al->delta, 6).s,
		       cmd_num(al->rho, 6).s, sector_t4_branch_name(al->branch));
	}
	printf("\nlargest eigenvalue of A: %.3g (verified <= %g)\n", r->a->max_eig_a,
	       SECTOR_ALLOC_TOL);
	printf("product of rho_i: %s   smallest rho_i: %s\n", cmd_num(r->a->rho_product, 6).s,
	       cmd_num(r->a->rho_min, 6).s);
	printf("feasible: yes (%s)\n", r->reason);
}

static int allocate_run(int argc, char **argv)
{
	struct allocate_opts o = {.nu = CAPS_PAPER_NU, .delta = CAPS_PAPER_DELTA};
	int rc = parse(argc, argv, &o);
	if (rc)
		return rc == 1 ? 0 : rc;

	struct sector_layer layers[SECTOR_MAX_LAYERS];
	struct sl_error err;
	struct arch arch;
	if ((rc = cmd_arch("allocate", o.model, o.arch, "mlp", &arch)) != 0) {
		fputs("Try 'sectorlab allocate --help'.\n", stderr);
		return rc;
	}
	int n = certify_arch_layers(&arch, layers, SECTOR_MAX_LAYERS, &err);
	if (n < 0) {
		fprintf(stderr, "sectorlab allocate: %s\nTry 'sectorlab allocate --help'.\n",
			err.msg);
		return 2;
	}

	char label[ARCH_TEXT];
	struct allocate_report r = {.o = &o, .layers = layers, .n = n,
				    .label = cmd_arch_label(&arch, label, sizeof label)};
	r.have_sector = sector_slopes(o.nu, o.delta, &r.lo, &r.hi, NULL) == SL_OK &&
			sector_gamma(o.nu, o.delta, &r.gamma, NULL) == SL_OK;
	struct sector_allocation a;
	sl_status st = sector_allocate(o.nu, o.delta, layers, n, o.objective, &a, &err);
	r.feasible = st == SL_OK;
	r.a = &a;
	r.reason = r.feasible ? "Theorem 3 holds with A <= 0, and every weighted layer has a "
				"positive Theorem 4 bound"
			      : err.msg;
	if (o.json)
		print_json(&r);
	else
		print_table(&r);
	if (st != SL_OK && st != SL_ERR_INFEASIBLE && st != SL_ERR_RANGE &&
	    st != SL_ERR_UNSUPPORTED)
		fprintf(stderr, "sectorlab allocate: %s\n", err.msg);
	return r.feasible ? 0 : 1;
}

int cmd_allocate(int argc, char **argv)
{
	return cmd_with_config("allocate", allocate_options, allocate_run, argc, argv);
}
