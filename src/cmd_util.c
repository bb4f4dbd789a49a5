/* cmd_util: option parsing shared by the subcommands (see cmd.h). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sectorlab/caps.h"
#include "sectorlab/checkpoint.h"
#include "sectorlab/certify.h"
#include "sectorlab/cmd.h"
#include "sectorlab/io.h"
#include "sectorlab/sector.h"
#include "sectorlab/model.h"

int cmd_getopt(const char *cmd, int argc, char **argv, const struct option *longopts)
{
	int index = -1;
	int c = getopt_long(argc, argv, "h", longopts, &index);
	if (c == -1 || c == '?' || index < 0)
		return c;
	/* The word that named the option: the one before its separate value,
	 * if it has one ("--nu 5"), else the last one read ("--nu=5"). */
	const char *word = argv[optind - 1];
	if (optarg && optarg == argv[optind - 1] && optind >= 2)
		word = argv[optind - 2];
	const char *name = longopts[index].name;
	size_t len = strcspn(word + 2, "=");
	if (strncmp(word, "--", 2) != 0 || len != strlen(name) || strncmp(word + 2, name, len) != 0) {
		fprintf(stderr, "sectorlab %s: unknown option '%.*s' (options are written in full, "
				"as --%s)\n",
			cmd, (int)(len + 2), word, name);
		return '?';
	}
	return c;
}

/* "[0, 1]", "(0, 1e+06]" */
static void range_text(struct cmd_range r, char *buf, size_t cap)
{
	snprintf(buf, cap, "%c%g, %g%c", r.lo_open ? '(' : '[', r.lo, r.hi, r.hi_open ? ')' : ']');
}

bool cmd_in_range(struct cmd_range r, double v)
{
	return (r.lo_open ? v > r.lo : v >= r.lo) && (r.hi_open ? v < r.hi : v <= r.hi);
}

/* The settings file of the command running (cmd_with_config) and the
 * options made from it, so that a bad value can name its line. */
static struct {
	const struct config *cfg;
	char *const *arg; /* "--key=value" */
	int n;
} config_now;

struct cmd_origin cmd_origin(const char *value)
{
	struct cmd_origin o = {""};
	for (int i = 0; value && i < config_now.n; i++) {
		const char *a = config_now.arg[i];
		if (value < a || value > a + strlen(a))
			continue;
		size_t klen = strcspn(a + 2, "=");
		for (int k = 0; k < config_now.cfg->n; k++) {
			const struct config_entry *e = &config_now.cfg->entry[k];
			if (strlen(e->key) == klen && strncmp(e->key, a + 2, klen) == 0)
				snprintf(o.s, sizeof o.s, "%s line %d: ", config_now.cfg->name,
					 e->line);
		}
	}
	return o;
}

/* cmd_parse_double, naming where the value came from (whole: the text it
 * is part of, for a list's item). */
static int parse_double_in(const char *opt, const char *text, const char *whole,
			   struct cmd_range r, double *out)
{
	char *end = NULL;
	errno = 0;
	double v = strtod(text, &end);
	char range[96];
	range_text(r, range, sizeof range);
	if (end == text || *end != '\0' || isnan(v)) {
		fprintf(stderr, "sectorlab: %s%s expects a number in %s, got '%s'\n",
			cmd_origin(whole).s, opt, range, text);
		return -1;
	}
	/* Overflow (ERANGE with an infinite result) is out of every range;
	 * underflow is a number close to 0 and judged as one. */
	if (!isfinite(v) || !cmd_in_range(r, v)) {
		fprintf(stderr, "sectorlab: %s%s must be in %s, got %s\n", cmd_origin(whole).s, opt,
			range, text);
		return -1;
	}
	*out = v;
	return 0;
}

int cmd_parse_double(const char *opt, const char *text, struct cmd_range r, double *out)
{
	return parse_double_in(opt, text, text, r, out);
}

int cmd_parse_long(const char *opt, const char *text, long min, long max, long *out)
{
	char *end = NULL;
	errno = 0;
	long v = strtol(text, &end, 10);
	if (end == text || *end != '\0') {
		fprintf(stderr, "sectorlab: %s%s expects a whole number between %ld and %ld, got '%s'\n",
			cmd_origin(text).s, opt, min, max, text);
		return -1;
	}
	if (errno == ERANGE || v < min || v > max) {
		fprintf(stderr, "sectorlab: %s%s must be between %ld and %ld, got %s\n",
			cmd_origin(text).s, opt, min, max, text);
		return -1;
	}
	*out = v;
	return 0;
}

int cmd_parse_doubles(const char *opt, const char *text, struct cmd_range r, double *out,
		      int max)
{
	int n = 0;
	const char *p = text;
	for (;;) {
		const char *comma = strchr(p, ',');
		size_t len = comma ? (size_t)(comma - p) : strlen(p);
		char item[64];
		if (len == 0 || len >= sizeof item) {
			fprintf(stderr, "sectorlab: %s%s expects numbers separated by commas, got '%s'\n",
				cmd_origin(text).s, opt, text);
			return -1;
		}
		if (n == max) {
			fprintf(stderr, "sectorlab: %s%s takes at most %d values\n", cmd_origin(text).s,
				opt, max);
			return -1;
		}
		memcpy(item, p, len);
		item[len] = '\0';
		if (parse_double_in(opt, item, text, r, &out[n]) != 0)
			return -1;
		n++;
		if (!comma)
			return n;
		p = comma + 1;
	}
}

struct cmd_num cmd_num(double v, int decimals)
{
	struct cmd_num n;
	double a = fabs(v);
	if (v == 0 || (a >= pow(10, 1 - decimals) && a < 1e9))
		snprintf(n.s, sizeof n.s, "%.*f", decimals, v);
	else
		snprintf(n.s, sizeof n.s, "%.*g", decimals + 1, v);
	return n;
}

int cmd_check_indices(const char *cmd, double nu, double delta)
{
	struct sl_error err;
	double lo, hi;
	if (sector_slopes(nu, delta, &lo, &hi, &err) == SL_OK)
		return 0;
	fprintf(stderr, "sectorlab %s: %s\n", cmd, err.msg);
	return 2;
}

#ifndef SECTORLAB_DATADIR
#define SECTORLAB_DATADIR "/usr/local/share/sectorlab/data"
#endif

void cmd_set_threads(long requested)
{
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	nn_set_threads(requested > 0 ? (int)requested : cpus > 64 ? 64 : cpus > 0 ? (int)cpus : 1);
}

const char *cmd_data_dir(const char *flag_value)
{
	if (flag_value && *flag_value)
		return flag_value;
	const char *env = getenv("SECTORLAB_DATA");
	if (env && *env)
		return env;
	/* From a checkout, data/ holds the sample; an installed program finds the
	 * copy `make install` put under PREFIX. */
	struct stat st;
	if (stat("data", &st) != 0 && stat(SECTORLAB_DATADIR, &st) == 0)
		return SECTORLAB_DATADIR;
	return "data";
}

int cmd_arch(const char *cmd, const char *model, const char *spec, const char *fallback,
	     struct arch *out)
{
	struct sl_error err;
	status_clear(&err);
	if (model && spec) {
		fprintf(stderr, "sectorlab %s: give --model or --arch, not both\n", cmd);
		return 2;
	}
	const char *text = spec ? spec : model ? model : fallback;
	sl_status st = spec ? model_arch(text, out, &err) : SL_OK;
	if (!spec) {
		enum model_id id;
		st = model_parse(text, &id, &err);
		if (st == SL_OK)
			model_get(id, out);
	}
	if (st != SL_OK) {
		fprintf(stderr, "sectorlab %s: %s%s\n", cmd, spec ? "--arch: " : "", err.msg);
		return 2;
	}
	return 0;
}

const char *cmd_arch_label(const struct arch *a, char *buf, size_t cap)
{
	if (*a->name)
		return a->name;
	return arch_format(a, buf, cap);
}

int cmd_load_model(const char *cmd, const char *model_path, const char *arch, int max_batch,
		   const char *dataset_flag, const char *data_dir, struct cmd_model *out)
{
	struct sl_error err;
	status_clear(&err);
	memset(out, 0, sizeof *out);
	if (!model_path) {
		fprintf(stderr, "sectorlab %s: --model FILE is required\n", cmd);
		return 2;
	}
	struct arch given = {0};
	if (arch && model_arch(arch, &given, &err) != SL_OK) {
		fprintf(stderr, "sectorlab %s: --arch: %s\n", cmd, err.msg);
		return 2;
	}
	/* The dataset comes from the metadata or the architecture; a network
	 * for one image tells them, then the one used is built for batches no
	 * larger than the test set. */
	sl_status st = checkpoint_load_arch(model_path, arch ? &given : NULL, 1, &out->net,
					    &out->info, &err);
	if (st != SL_OK) {
		fprintf(stderr, "sectorlab %s: %s\n", cmd, err.msg);
		return st == SL_ERR_ARG ? 2 : 1;
	}
	const char *source = checkpoint_info_get(&out->info, "source");
	if (source)
		fprintf(stderr, "sectorlab %s: %s: %s\n", cmd, model_path, source);
	const char *name = checkpoint_info_get(&out->info, "model");
	const char *dataset = dataset_flag ? dataset_flag
					   : checkpoint_info_get(&out->info, "dataset");
	if (!dataset) {
		struct arch a;
		enum model_id id;
		arch_of_net(out->net, &a);
		if (model_parse(name, &id, NULL) == SL_OK)
			model_get(id, &a);
		dataset = model_default_dataset(&a);
	}
	enum data_kind kind;
	if (data_kind_parse(dataset, &kind, &err) != SL_OK) {
		fprintf(stderr, "sectorlab %s: %s\n", cmd, err.msg);
		return 2;
	}
	out->dataset = data_kind_name(kind);
	if (data_load(kind, cmd_data_dir(data_dir), false, &out->test, &err) != SL_OK) {
		fprintf(stderr, "sectorlab %s: %s\n", cmd, err.msg);
		return 1;
	}
	if (out->test.n > 0 && (uint32_t)max_batch > out->test.n)
		max_batch = (int)out->test.n;
	if (max_batch > 1) {
		nn_free(out->net);
		checkpoint_info_free(&out->info);
		out->net = NULL;
		if (checkpoint_load_arch(model_path, arch ? &given : NULL, max_batch, &out->net,
					 &out->info, &err) != SL_OK) {
			fprintf(stderr, "sectorlab %s: %s\n", cmd, err.msg);
			return 1;
		}
	}
	name = checkpoint_info_get(&out->info, "model");
	const char *mode = checkpoint_info_get(&out->info, "mode");
	out->model_name = name ? name : "?";
	out->mode = mode ? mode : "?";
	const struct sl_dataset *t = &out->test;
	if ((int)data_dim(t) != out->net->in_dim || (int)t->classes != out->net->out_dim) {
		fprintf(stderr,
			"sectorlab %s: %s (%s) takes %d values and gives %d classes, but %s "
			"images are %u x %u x %u = %zu values in %u classes\n",
			cmd, model_path, out->model_name, out->net->in_dim, out->net->out_dim,
			out->dataset, t->c, t->h, t->w, data_dim(t), t->classes);
		return 2;
	}
	return 0;
}

void cmd_model_free(struct cmd_model *m)
{
	nn_free(m->net);
	checkpoint_info_free(&m->info);
	data_free(&m->test);
	memset(m, 0, sizeof *m);
}

int cmd_config_args(const char *cmd, const struct config *cfg, const struct option *longopts,
		    char **out, int cap)
{
	int n = 0;
	for (int i = 0; i < cfg->n; i++) {
		const struct config_entry *e = &cfg->entry[i];
		const struct option *o = longopts;
		while (o->name && strcmp(o->name, e->key) != 0)
			o++;
		const char *why = NULL;
		if (!o->name || strncmp(e->key, "help", 4) == 0 || strcmp(e->key, "config") == 0)
			why = "is not a setting of";
		else if (o->has_arg == no_argument && config_bool(e->value) < 0)
			why = "takes yes or no (true/false, on/off, 1/0) in";
		if (why) {
			fprintf(stderr, "sectorlab %s: %s line %d: '%s' %s sectorlab %s (see sectorlab "
					"%s --help)\n",
				cmd, cfg->name, e->line, e->key, why, cmd, cmd);
			goto fail;
		}
		if (o->has_arg == no_argument && config_bool(e->value) == 0)
			continue;
		if (n == cap) {
			fprintf(stderr, "sectorlab %s: %s: too many settings\n", cmd, cfg->name);
			goto fail;
		}
		size_t len = strlen(e->key) + strlen(e->value) + 4;
		if (!(out[n] = malloc(len))) {
			fprintf(stderr, "sectorlab %s: out of memory\n", cmd);
			goto fail;
		}
		if (o->has_arg == no_argument)
			snprintf(out[n], len, "--%s", e->key);
		else
			snprintf(out[n], len, "--%s=%s", e->key, e->value);
		n++;
	}
	return n;
fail:
	while (n > 0)
		free(out[--n]);
	return -1;
}

/* The settings file the running command was given (an input of it). */
static const char *config_in_use;

int cmd_with_config(const char *cmd, const struct option *longopts,
		    int (*run)(int argc, char **argv), int argc, char **argv)
{
	/* Find --config; options after "--" are not options. */
	const char *path = NULL;
	int at = -1, width = 0;
	for (int i = 1; i < argc && strcmp(argv[i], "--") != 0; i++) {
		if (strcmp(argv[i], "--config") == 0) {
			if (i + 1 >= argc) {
				fprintf(stderr, "sectorlab %s: --config needs a FILE\n", cmd);
				return 2;
			}
			path = argv[i + 1], width = 2;
		} else if (strncmp(argv[i], "--config=", 9) == 0) {
			path = argv[i] + 9, width = 1;
		} else {
			continue;
		}
		if (at >= 0) {
			fprintf(stderr, "sectorlab %s: --config given twice\n", cmd);
			return 2;
		}
		at = i;
		i += width - 1;
	}
	if (!path)
		return run(argc, argv);
	struct config cfg;
	struct sl_error err;
	if (config_read(path, &cfg, &err) != SL_OK) {
		fprintf(stderr, "sectorlab %s: %s\n", cmd, err.msg);
		return err.code == SL_ERR_IO ? 1 : 2;
	}
	/* argv[0], the file's options, then the command line without --config. */
	int cap = 2 * cfg.n + 1;
	char **args = calloc((size_t)(argc + cap + 1), sizeof *args);
	char **owned = calloc((size_t)cap, sizeof *owned);
	int nown = args && owned ? cmd_config_args(cmd, &cfg, longopts, owned, cap) : -2;
	if (nown < 0) {
		if (nown == -2)
			fprintf(stderr, "sectorlab %s: out of memory\n", cmd);
		config_free(&cfg);
		free(args);
		free(owned);
		return 2;
	}
	int n = 0;
	args[n++] = argv[0];
	for (int i = 0; i < nown; i++)
		args[n++] = owned[i];
	for (int i = 1; i < argc; i++)
		if (i < at || i >= at + width)
			args[n++] = argv[i];
	args[n] = NULL;
	config_in_use = path;
	config_now.cfg = &cfg;
	config_now.arg = owned;
	config_now.n = nown;
	int rc = run(n, args);
	config_now.n = 0;
	config_in_use = NULL;
	config_free(&cfg);
	if (rc == 2)
		fprintf(stderr, "sectorlab %s: (the settings in %s are read as options before "
				"those typed)\n", cmd, path);
	for (int i = 0; i < nown; i++)
		free(owned[i]);
	free(owned);
	free(args);
	return rc;
}

/* A recipe error: "sectorlab <cmd>: [FILE line N: ]msg", exit status 2. */
static int recipe_fail(const char *cmd, const char *from, const char *msg)
{
	fprintf(stderr, "sectorlab %s: %s%s\n", cmd, cmd_origin(from).s, msg);
	return 2;
}

int cmd_attack_recipe(const char *cmd, const struct cmd_recipe_request *q, int classes,
		      struct attack_recipe *r)
{
	struct sl_error err;
	status_clear(&err);
	const char *pre = q->prefix ? q->prefix : "";
	char msg[600], opt[64];
	*r = attack_recipe_pgd(ATTACK_NORM_INF, 0, 40);
	if (q->preset && attack_preset(q->preset, r, &err) != SL_OK)
		return recipe_fail(cmd, q->preset, err.msg);
	if (q->attack && attack_kind_parse(q->attack, &r->kind, &err) != SL_OK)
		return recipe_fail(cmd, q->attack, err.msg);
	if (q->attack && r->kind != ATTACK_PGD) {
		/* a one-step attack: the norm follows it unless --norm says otherwise */
		r->norm = r->kind == ATTACK_FGSM ? ATTACK_NORM_INF : ATTACK_NORM_2;
		r->steps = 1;
		r->step_size = 0;
		r->step_travel = 1;
		r->random_start = false;
		r->restarts = 1;
	}
	if (q->norm && attack_norm_parse(q->norm, &r->norm, &err) != SL_OK)
		return recipe_fail(cmd, q->norm, err.msg);
	if (q->labels && attack_labels_parse(q->labels, &r->labels, &err) != SL_OK)
		return recipe_fail(cmd, q->labels, err.msg);
	if (q->steps_given)
		r->steps = (int)q->steps;
	if (q->step_size_given) {
		r->step_size = (float)q->step_size;
	} else if (q->step_travel_given) {
		r->step_size = 0;
		r->step_travel = (float)q->step_travel;
	}
	if (q->random_start)
		r->random_start = true;
	if (q->restarts_given)
		r->restarts = (int)q->restarts;
	if (q->no_clip)
		r->clip = false;
	if (q->early_stop)
		r->early_stop = true;
	if (q->seed_given)
		r->seed = (uint64_t)q->seed;
	if (q->target) {
		if (strcmp(q->target, "next") == 0) {
			r->target = ATTACK_TARGET_NEXT;
		} else {
			long t;
			snprintf(opt, sizeof opt, "--%starget", pre);
			if (cmd_parse_long(opt, q->target, 0, 1000, &t) != 0)
				return 2;
			r->target = ATTACK_TARGET_CLASS;
			r->target_class = (int)t;
		}
	}
	/* Options that would change nothing are refused, as the one-step attacks
	 * refuse PGD's. */
	if (q->seed_given && !r->random_start) {
		snprintf(msg, sizeof msg, "--%sseed is a setting of random starts (--%srandom-start, "
					  "or --%spreset madry)",
			 pre, pre, pre);
		return recipe_fail(cmd, NULL, msg);
	}
	if (q->early_stop && r->kind != ATTACK_PGD) {
		snprintf(msg, sizeof msg,
			 "--%searly-stop is a setting of pgd (fgsm and fgm take one step)", pre);
		return recipe_fail(cmd, NULL, msg);
	}
	if (attack_recipe_check(r, classes, &err) != SL_OK)
		return recipe_fail(cmd, NULL, err.msg);
	return 0;
}

/* Where a caps error goes: why (cap bytes) when given, else stderr. */
struct caps_err {
	const char *cmd;
	char *why;
	size_t cap;
};

static int caps_fail(const struct caps_err *e, int code, const char *msg)
{
	if (e->why)
		snprintf(e->why, e->cap, "%s", msg);
	else
		fprintf(stderr, "sectorlab %s: %s\n", e->cmd, msg);
	return code;
}

int cmd_spnorm_caps(const char *cmd, const struct arch *arch, const struct cmd_caps_request *req,
		    struct train_config *cfg, struct caps_plan *plan, char *why, size_t why_cap)
{
	const struct caps_err e = {cmd, why, why_cap};
	struct sl_error err;
	status_clear(&err);
	memset(plan, 0, sizeof *plan);
	bool indices = !isnan(req->nu) || !isnan(req->delta);
	if (cfg->mode != TRAIN_SPNORM) {
		if (req->nrho > 0 || req->caps || indices || req->objective)
			return caps_fail(&e, 2, "--rho, --caps, --nu, --delta and --objective need "
						"--mode spnorm");
		plan->feasible = true;
		snprintf(plan->what, sizeof plan->what, "no caps (%s)", train_mode_name(cfg->mode));
		snprintf(plan->note, sizeof plan->note, "no caps (%s)", train_mode_name(cfg->mode));
		return 0;
	}
	if ((req->nrho > 0) + (req->caps != NULL) + indices > 1)
		return caps_fail(&e, 2, "give the caps one way: --nu/--delta, --rho or --caps");
	if (req->objective && (req->nrho > 0 || req->caps))
		return caps_fail(&e, 2, "--objective applies to caps allocated for --nu/--delta");
	struct caps_spec spec = caps_spec_paper();
	if (req->nrho > 0) {
		spec = caps_spec_manual(req->rho, req->nrho);
	} else if (req->caps) {
		if (strcmp(req->caps, "authors") != 0)
			return caps_fail(&e, 2, "--caps takes 'authors'");
		spec.source = CAPS_AUTHORS;
	} else {
		if (!isnan(req->nu))
			spec.nu = req->nu;
		if (!isnan(req->delta))
			spec.delta = req->delta;
		if (req->objective &&
		    caps_objective_parse(req->objective, &spec.objective, &err) != SL_OK) {
			char msg[600];
			snprintf(msg, sizeof msg, "--%s", err.msg);
			return caps_fail(&e, 2, msg);
		}
	}
	if (caps_preview(&spec, arch, plan, &err) != SL_OK)
		return caps_fail(&e, 1, err.msg);
	if (!plan->feasible) /* what the options asked for cannot be had */
		return caps_fail(&e, 2, plan->why);
	cfg->caps = spec;
	return 0;
}

sl_status cmd_save_checkpoint(const struct trainer *t, enum data_kind kind, double test_acc,
			      const char *path, struct sl_error *err)
{
	const struct train_config *cfg = &t->cfg;
	bool capped = cfg->mode == TRAIN_SPNORM;
	struct caps_meta cm = {0};
	if (capped)
		caps_meta(&t->caps, &cm);
	char seed_text[32], epochs_text[32], planned_text[32], acc_text[32];
	char lr_text[32];
	char l2_text[32] = "", mom_text[32] = "", slope_text[32];
	snprintf(seed_text, sizeof seed_text, "%lu", (unsigned long)cfg->seed);
	snprintf(epochs_text, sizeof epochs_text, "%d", t->epoch);
	snprintf(planned_text, sizeof planned_text, "%d", cfg->epochs);
	snprintf(acc_text, sizeof acc_text, "%.6f", test_acc);
	snprintf(lr_text, sizeof lr_text, "%g", cfg->optim.lr);
	snprintf(slope_text, sizeof slope_text, "%g", 0.1);
	char tau_text[32], radius_text[32];
	snprintf(tau_text, sizeof tau_text, "%.17g", cfg->loss.tau);
	snprintf(radius_text, sizeof radius_text, "%.17g", cfg->loss.radius);
	if (cfg->mode == TRAIN_L2)
		snprintf(l2_text, sizeof l2_text, "%g", cfg->l2);
	if (cfg->optim.kind == OPTIM_SGD)
		snprintf(mom_text, sizeof mom_text, "%g", cfg->optim.momentum);
	const struct checkpoint_meta meta[] = {
		{"format", "sectorlab-1"},
		{"model", *cfg->arch.name ? cfg->arch.name : "custom"},
		{"mode", train_mode_name(cfg->mode)},
		/* The caps spec whole (caps.h): empty values without caps. */
		{CAPS_META_KEYS[0], cm.value[0]},
		{CAPS_META_KEYS[1], cm.value[1]},
		{CAPS_META_KEYS[2], cm.value[2]},
		{CAPS_META_KEYS[3], cm.value[3]},
		{CAPS_META_KEYS[4], cm.value[4]},
		{"rho_certified", capped && t->caps.certified ? "true" : "false"},
		{"caps", capped ? t->caps.what : ""},
		{"l2", l2_text},
		{"optimizer", optim_kind_name(cfg->optim.kind)},
		{"lr", lr_text},
		{"momentum", mom_text},
		{"schedule", optim_schedule_name(cfg->optim.schedule)},
		{"leaky_slope", slope_text},
		{"seed", seed_text},
		{"dataset", data_kind_name(kind)},
		{"pixels", "x/255-0.5"},
		{"epochs", epochs_text},
		{"epochs_planned", planned_text},
		{"test_accuracy", acc_text},
		{"loss", loss_kind_name(cfg->loss.kind)},
		{"tau", tau_text},
		{"target_radius", radius_text},
	};
	return checkpoint_save(t->net, meta, (int)(sizeof meta / sizeof meta[0]), path, err);
}

void cmd_json_certified(const struct certify_accuracy *a)
{
	printf("\"certified_accuracy\":{");
	for (int k = 0; k < a->nradii; k++)
		printf("%s\"%g\":%.6f", k ? "," : "", a->radius[k], a->certified[k]);
	printf("}");
}

void cmd_print_rounding_lost(FILE *f, double lost)
{
	if (lost > 0)
		fprintf(f, "rounding: %.2f%% of the images are classified correctly by a margin no "
			   "larger than the forward pass's rounding allowance, so certified at no "
			   "radius\n", 100 * lost);
}

/* An input's identity, when it exists: inputs are not probed for writing. */
static bool input_target(const char *path, struct io_target *t)
{
	struct stat st;
	memset(t, 0, sizeof *t);
	if (stat(path, &st) != 0)
		return false; /* its reader says what is wrong with it */
	t->kind = S_ISREG(st.st_mode) ? IO_FILE : IO_STREAM;
	t->dev = st.st_dev;
	t->ino = st.st_ino;
	return true;
}

#define CMD_MAX_FILES 16

int cmd_check_files(const char *cmd, const struct cmd_file *files, int n)
{
	struct cmd_file all[CMD_MAX_FILES + 1];
	struct io_target t[CMD_MAX_FILES + 1];
	bool known[CMD_MAX_FILES + 1] = {false};
	int m = 0, rc = 0;
	for (int i = 0; i < n && m < CMD_MAX_FILES; i++)
		if (files[i].path)
			all[m++] = files[i];
	if (config_in_use)
		all[m++] = (struct cmd_file){"--config", config_in_use, false};
	struct sl_error err;
	status_clear(&err);
	for (int i = 0; i < m && rc == 0; i++) {
		if (!all[i].output) {
			known[i] = input_target(all[i].path, &t[i]);
			continue;
		}
		if (io_target_find(all[i].path, &t[i], &err) != SL_OK) {
			fprintf(stderr, "sectorlab %s: %s: %s\n", cmd, all[i].option, err.msg);
			rc = err.code == SL_ERR_ARG ? 2 : 1;
			break;
		}
		known[i] = true;
	}
	/* Standard output and error, when they are files, are outputs too:
	 * replacing such a file would leave what is printed in a file without a
	 * name. */
	static const char *const std_name[] = {"standard output", "standard error"};
	for (int fd = 1; fd <= 2 && rc == 0; fd++) {
		struct stat st;
		if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
			continue;
		for (int i = 0; i < m && rc == 0; i++)
			if (known[i] && all[i].output && t[i].kind == IO_FILE &&
			    t[i].dev == st.st_dev && t[i].ino == st.st_ino) {
				fprintf(stderr, "sectorlab %s: %s %s is the same file as %s: give "
						"each output its own file\n",
					cmd, all[i].option, all[i].path, std_name[fd - 1]);
				rc = 2;
			}
	}
	for (int i = 0; i < m && rc == 0; i++)
		for (int j = 0; j < i && rc == 0; j++) {
			if (!known[i] || !known[j] || (!all[i].output && !all[j].output))
				continue;
			/* /dev/null, or a terminal, may serve several files */
			struct stat st;
			if (t[i].kind == IO_STREAM && t[j].kind == IO_STREAM &&
			    stat(all[i].path, &st) == 0 && S_ISCHR(st.st_mode))
				continue;
			if (!io_target_same(&t[i], &t[j]))
				continue;
			const struct cmd_file *out = all[i].output ? &all[i] : &all[j];
			const struct cmd_file *other = out == &all[i] ? &all[j] : &all[i];
			fprintf(stderr, "sectorlab %s: %s %s is the same file as %s %s: %s\n", cmd,
				out->option, out->path, other->option, other->path,
				other->output ? "give each output its own file"
					      : "refusing to write over an input");
			rc = 2;
		}
	/* Last, as it creates a file beside each output (and removes it). */
	for (int i = 0; i < m && rc == 0; i++)
		if (all[i].output && io_probe(all[i].path, &err) != SL_OK) {
			fprintf(stderr, "sectorlab %s: %s: %s\n", cmd, all[i].option, err.msg);
			rc = err.code == SL_ERR_ARG ? 2 : 1;
		}
	for (int i = 0; i < m; i++)
		if (known[i])
			io_target_free(&t[i]);
	return rc;
}

void cmd_data_inputs(enum data_kind kind, const char *data_dir, bool train,
		     char (*paths)[4096], struct cmd_file *files, int *n)
{
	const char *dir = cmd_data_dir(data_dir);
	int nd = data_split_files(kind, dir, false, paths, DATA_MAX_SPLIT_FILES);
	if (train)
		nd += data_split_files(kind, dir, true, paths + nd, DATA_MAX_SPLIT_FILES);
	for (int i = 0; i < nd; i++)
		files[(*n)++] = (struct cmd_file){"the data file", paths[i], false};
}

int cmd_close_stdout(int rc)
{
	/* fflush reports what the buffered output met; a descriptor closed
	 * before anything was written (">&-") fails only fclose, with EBADF. */
	int bad = 0, e = 0;
	if (fflush(stdout) != 0)
		bad = 1, e = errno;
	else if (ferror(stdout))
		bad = 1;
	if (fclose(stdout) != 0 && !bad && errno != EBADF)
		bad = 1, e = errno;
	if (!bad)
		return rc;
	/* A write that failed earlier left no cause behind (errno is long gone). */
	fprintf(stderr, "sectorlab: cannot write the results to standard output: %s\n",
		e ? strerror(e) : "a write failed, output was lost");
	return rc ? rc : 1;
}
