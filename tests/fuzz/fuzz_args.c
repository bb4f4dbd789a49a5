/*
 * Fuzz target: the command line.  The first byte picks a command (train,
 * attack, certify, allocate, or the lab's options); the rest, split at NUL
 * bytes, are its arguments, which go through the command's own option table
 * and value parsers.  Two --help are appended (one may be taken as the value
 * of a last option needing one), so every command stops after parsing and
 * prints its usage: nothing is trained or read.  Arguments that would end
 * option parsing ("--") or read a file (--config) are left out for the same
 * reason.  The number parsers are also checked against their promises.
 * Run with -close_fd_mask=3 (make fuzz does): the usage and errors print.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sectorlab/cmd.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_ARGS 24

static void check_number_parsers(const char *text)
{
	double v, list[16];
	long l;
	if (cmd_parse_double("--x", text, CMD_ABOVE(-5, 5), &v) == 0 && !(v > -5 && v <= 5))
		abort();
	if (cmd_parse_long("--n", text, -5, 5, &l) == 0 && (l < -5 || l > 5))
		abort();
	int n = cmd_parse_doubles("--rho", text, CMD_RANGE(0, 1e6), list, 16);
	if (n > 16)
		abort();
	for (int i = 0; i < n; i++)
		if (!(list[i] >= 0 && list[i] <= 1e6))
			abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	static int (*const commands[])(int, char **) = {cmd_train, cmd_attack, cmd_certify,
							cmd_allocate, cmd_lab, cmd_reproduce};
	static const char *const names[] = {"train", "attack", "certify", "allocate", "sectorlab",
					    "reproduce"};
	int which = data[0] % 6;
	char *text = malloc(size);
	if (!text)
		return 0;
	memcpy(text, data + 1, size - 1);
	text[size - 1] = '\0';
	char *argv[MAX_ARGS + 4];
	int argc = 0;
	argv[argc++] = (char *)names[which];
	for (char *p = text; p < text + size - 1 && argc < MAX_ARGS;) {
		size_t len = strlen(p);
		if (strcmp(p, "--") == 0 || strncmp(p, "--config", 8) == 0) {
			free(text);
			return 0;
		}
		argv[argc++] = p;
		check_number_parsers(p);
		p += len + 1;
	}
	char help[] = "--help", help2[] = "--help";
	argv[argc++] = help;
	argv[argc++] = help2;
	argv[argc] = NULL;
	int rc = commands[which](argc, argv);
	if (rc != 0 && rc != 2)
		abort(); /* parsing alone never fails at run time */
	free(text);
	return 0;
}
