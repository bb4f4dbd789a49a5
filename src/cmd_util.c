/* cmd_util: option parsing shared by the subcommands (see cmd.h). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "sectorlab/cmd.h"

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
