/*
 * Fuzz target: the command line's number parsers, which every option value
 * goes through.  The input is split at NUL bytes into (option, value) text.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sectorlab/cmd.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1);
	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	/* The parsers report errors on stderr: run with -close_fd_mask=2 (make
	 * fuzz does) to keep the fuzzer's own output readable. */
	double v, list[16];
	long l;
	if (cmd_parse_double("--x", text, &v) == 0 && !isfinite(v))
		abort();
	if (cmd_parse_long("--n", text, -5, 5, &l) == 0 && (l < -5 || l > 5))
		abort();
	int n = cmd_parse_doubles("--rho", text, list, 16);
	if (n > 16)
		abort();
	for (int i = 0; i < n; i++)
		if (!isfinite(list[i]))
			abort();
	free(text);
	return 0;
}
