/* cmd_util: option parsing shared by the subcommands (see cmd.h). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sectorlab/checkpoint.h"
#include "sectorlab/certify.h"
#include "sectorlab/cmd.h"
#include "sectorlab/sector.h"
#include "sectorlab/model.h"

int cmd_parse_double(const char *opt, const char *text, double *out)
{
	char *end = NULL;
	errno = 0;
	double v = strtod(text, &end);
	if (end == text || *end != '\0' || errno == ERANGE || !isfinite(v)) {
		fprintf(stderr, "sectorlab: %s expects a number, got '%s'\n", opt, text);
		return -1;
	}
	*out = v;
	return 0;
}

int cmd_parse_long(const char *opt, const char *text, long min, long max, long *out)
{
	char *end = NULL;
	errno = 0;
	long v = strtol(text, &end, 10);
	if (end == text || *end != '\0' || errno == ERANGE) {
		fprintf(stderr, "sectorlab: %s expects a whole number, got '%s'\n", opt, text);
		return -1;
	}
	if (v < min || v > max) {
		fprintf(stderr, "sectorlab: %s must be between %ld and %ld, got %ld\n", opt, min,
			max, v);
		return -1;
	}
	*out = v;
	return 0;
}

int cmd_parse_doubles(const char *opt, const char *text, double *out, int max)
{
	int n = 0;
	const char *p = text;
	for (;;) {
		const char *comma = strchr(p, ',');
		size_t len = comma ? (size_t)(comma - p) : strlen(p);
		char item[64];
		if (len == 0 || len >= sizeof item) {
			fprintf(stderr, "sectorlab: %s expects numbers separated by commas, got '%s'\n",
				opt, text);
			return -1;
		}
		if (n == max) {
			fprintf(stderr, "sectorlab: %s takes at most %d values\n", opt, max);
			return -1;
		}
		memcpy(item, p, len);
		item[len] = '\0';
		if (cmd_parse_double(opt, item, &out[n]) != 0)
			return -1;
		n++;
		if (!comma)
			return n;
		p = comma + 1;
	}
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

int cmd_load_model(const char *cmd, const char *model_path, int max_batch,
		   const char *dataset_flag, const char *data_dir, struct cmd_model *out)
{
	struct sl_error err;
	status_clear(&err);
	memset(out, 0, sizeof *out);
	if (!model_path) {
		fprintf(stderr, "sectorlab %s: --model FILE is required\n", cmd);
		return 2;
	}
	if (checkpoint_load(model_path, max_batch, &out->net, &out->info, &err) != SL_OK) {
		fprintf(stderr, "sectorlab %s: %s\n", cmd, err.msg);
		return 1;
	}
	const char *name = checkpoint_info_get(&out->info, "model");
	const char *mode = checkpoint_info_get(&out->info, "mode");
	out->model_name = name ? name : "?";
	out->mode = mode ? mode : "?";
	const char *dataset = dataset_flag ? dataset_flag
					   : checkpoint_info_get(&out->info, "dataset");
	enum model_id id;
	if (!dataset)
		dataset = model_parse(name, &id, NULL) == SL_OK ? model_default_dataset(id) : "mnist";
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
	config_free(&cfg);
	if (nown < 0) {
		if (nown == -2)
			fprintf(stderr, "sectorlab %s: out of memory\n", cmd);
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
	int rc = run(n, args);
	if (rc == 2)
		fprintf(stderr, "sectorlab %s: (the settings in %s are read as options before "
				"those typed)\n", cmd, path);
	for (int i = 0; i < nown; i++)
		free(owned[i]);
	free(owned);
	free(args);
	return rc;
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

/* Caps from the allocation at (out->nu, out->delta): certified. */
static int allocate_caps(const struct caps_err *e, enum model_id model, const char *objective,
			 struct train_config *cfg, struct cmd_caps *out)
{
	struct sl_error err;
	status_clear(&err);
	enum sector_objective obj = SECTOR_OBJ_PRODUCT;
	if (objective && strcmp(objective, "min") == 0)
		obj = SECTOR_OBJ_MIN;
	else if (objective && strcmp(objective, "product") != 0)
		return caps_fail(e, 2, "--objective takes product or min");
	struct sector_layer layers[SECTOR_MAX_LAYERS];
	int n = certify_model_layers(model, layers, SECTOR_MAX_LAYERS, &err);
	struct sector_allocation a;
	if (n < 0 || sector_allocate(out->nu, out->delta, layers, n, obj, &a, &err) != SL_OK) {
		char msg[700];
		snprintf(msg, sizeof msg, "no certified caps for (nu, delta) = (%g, %g): %s",
			 out->nu, out->delta, err.msg);
		return caps_fail(e, 1, msg);
	}
	cfg->nrho = 0;
	for (int i = 0; i < n; i++)
		if (a.layer[i].has_rho)
			cfg->rho[cfg->nrho++] = a.layer[i].rho * (1 - CERTIFY_CAP_MARGIN);
	cfg->rho_certified = true;
	/* certify reads these indices back from the checkpoint's metadata. */
	cfg->certify.nu = out->nu;
	cfg->certify.delta = out->delta;
	out->allocated = true;
	snprintf(out->what, sizeof out->what,
		 "allocated for (nu, delta) = (%g, %g) by Theorems 3 and 4: certified", out->nu,
		 out->delta);
	snprintf(out->note, sizeof out->note, "certified: nu %g, delta %g", out->nu, out->delta);
	return 0;
}

int cmd_spnorm_caps(const char *cmd, enum model_id model, const struct cmd_caps_request *req,
		    struct train_config *cfg, struct cmd_caps *out, char *why, size_t why_cap)
{
	const struct caps_err e = {cmd, why, why_cap};
	memset(out, 0, sizeof *out);
	bool indices = !isnan(req->nu) || !isnan(req->delta);
	if (cfg->mode != TRAIN_SPNORM) {
		if (req->nrho > 0 || req->caps || indices || req->objective)
			return caps_fail(&e, 2, "--rho, --caps, --nu, --delta and --objective need "
						"--mode spnorm");
		snprintf(out->note, sizeof out->note, "no caps (%s)", train_mode_name(cfg->mode));
		return 0;
	}
	if ((req->nrho > 0) + (req->caps != NULL) + indices > 1)
		return caps_fail(&e, 2, "give the caps one way: --nu/--delta, --rho or --caps");
	out->nu = isnan(req->nu) ? -2 : req->nu;
	out->delta = isnan(req->delta) ? 0.4 : req->delta;
	if (req->nrho > 0) {
		cfg->nrho = req->nrho;
		memcpy(cfg->rho, req->rho, sizeof(double) * (size_t)req->nrho);
		cfg->rho_certified = false;
		snprintf(out->what, sizeof out->what, "given with --rho: not certified");
		snprintf(out->note, sizeof out->note, "NOT certified (--rho)");
		return 0;
	}
	if (req->caps) {
		if (strcmp(req->caps, "authors") != 0)
			return caps_fail(&e, 2, "--caps takes 'authors'");
		cfg->nrho = model_authors_caps(model, cfg->rho);
		if (cfg->nrho == 0) {
			char msg[160];
			snprintf(msg, sizeof msg,
				 "the authors' code hard-codes no caps for %s; use --rho or "
				 "--nu/--delta",
				 model_name(model));
			return caps_fail(&e, 2, msg);
		}
		cfg->rho_certified = false;
		snprintf(out->what, sizeof out->what, "the authors' hard-coded caps: not certified");
		snprintf(out->note, sizeof out->note, "NOT certified (authors' caps)");
		return 0;
	}
	return allocate_caps(&e, model, req->objective, cfg, out);
}

sl_status cmd_save_checkpoint(const struct trainer *t, const struct cmd_caps *caps,
			      enum data_kind kind, double test_acc, const char *path,
			      struct sl_error *err)
{
	char nu_text[32] = "", delta_text[32] = "";
	if (caps->allocated) {
		snprintf(nu_text, sizeof nu_text, "%.17g", caps->nu);
		snprintf(delta_text, sizeof delta_text, "%.17g", caps->delta);
	}
	const struct train_config *cfg = &t->cfg;
	char rho_text[512] = "", seed_text[32], epochs_text[32], planned_text[32], acc_text[32];
	char lr_text[32];
	char l2_text[32] = "", mom_text[32] = "", slope_text[32];
	for (int i = 0, off = 0; i < cfg->nrho && cfg->mode == TRAIN_SPNORM; i++)
		off += snprintf(rho_text + off, sizeof rho_text - (size_t)off, "%s%.9g",
				i ? "," : "", cfg->rho[i]);
	snprintf(seed_text, sizeof seed_text, "%lu", (unsigned long)cfg->seed);
	snprintf(epochs_text, sizeof epochs_text, "%d", t->epoch);
	snprintf(planned_text, sizeof planned_text, "%d", cfg->epochs);
	snprintf(acc_text, sizeof acc_text, "%.6f", test_acc);
	snprintf(lr_text, sizeof lr_text, "%g", cfg->optim.lr);
	snprintf(slope_text, sizeof slope_text, "%g", 0.1);
	if (cfg->mode == TRAIN_L2)
		snprintf(l2_text, sizeof l2_text, "%g", cfg->l2);
	if (cfg->optim.kind == OPTIM_SGD)
		snprintf(mom_text, sizeof mom_text, "%g", cfg->optim.momentum);
	const struct checkpoint_meta meta[] = {
		{"format", "sectorlab-1"},
		{"model", model_name(cfg->model)},
		{"mode", train_mode_name(cfg->mode)},
		{"rho", rho_text},
		{"rho_certified", cfg->rho_certified ? "true" : "false"},
		{"nu", nu_text}, /* empty unless the caps come from an allocation */
		{"delta", delta_text},
		{"caps", t->cfg.mode == TRAIN_SPNORM ? caps->what : ""},
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
