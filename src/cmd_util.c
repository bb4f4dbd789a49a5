/* cmd_util: option parsing shared by the subcommands (see cmd.h). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "sectorlab/checkpoint.h"
#include "sectorlab/cmd.h"
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
