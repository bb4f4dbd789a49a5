/*
 * Fuzz target: settings files.  The input is parsed as a file; every entry
 * must then keep config.h's promises (a key of option-name characters, a
 * value that is not empty, no line break in either), and the
 * entries are turned into options against a table shaped like a command's.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sectorlab/cmd.h"
#include "sectorlab/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const struct option table[] = {
	{"epochs", required_argument, 0, 1}, {"data-dir", required_argument, 0, 2},
	{"json", no_argument, 0, 3},         {"eps", required_argument, 0, 4},
	{"help", no_argument, 0, 'h'},       {0, 0, 0, 0},
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct config cfg;
	if (config_parse((const char *)data, size, "fuzz.conf", &cfg, NULL) != SL_OK) {
		if (cfg.n != 0 || cfg.entry || cfg.name)
			abort(); /* a failed parse leaves nothing behind */
		return 0;
	}
	for (int i = 0; i < cfg.n; i++) {
		const char *k = cfg.entry[i].key, *v = cfg.entry[i].value;
		size_t kl = strlen(k), vl = strlen(v);
		if (kl == 0 || kl > CONFIG_MAX_KEY || vl == 0 || k[0] == '-' ||
		    strspn(k, "abcdefghijklmnopqrstuvwxyz0123456789-") != kl || strchr(v, '\n') ||
		    cfg.entry[i].line < 1 ||
		    config_get(&cfg, k) != cfg.entry[i].value)
			abort();
	}
	char *out[64];
	int n = cmd_config_args("fuzz", &cfg, table, out, 64);
	for (int i = 0; i < n; i++) {
		if (strncmp(out[i], "--", 2) != 0)
			abort();
		free(out[i]);
	}
	config_free(&cfg);
	return 0;
}
