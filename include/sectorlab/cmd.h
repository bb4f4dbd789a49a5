/*
 * cmd: the program's subcommands (`sectorlab train`, `sectorlab allocate`, ...).
 * Each lives in src/cmd_<name>.c, is part of the program (not the core
 * library), parses its own options, prints its results (JSON on stdout with
 * --json, progress and errors on stderr) and returns the process exit code:
 * 0 on success, 1 on a runtime failure, 2 on bad usage.
 */
#ifndef SECTORLAB_CMD_H
#define SECTORLAB_CMD_H

#include <stddef.h>

int cmd_train(int argc, char **argv);
int cmd_allocate(int argc, char **argv);
int cmd_lab(int argc, char **argv); /* the ncurses lab (no subcommand) */

/* Shared option helpers (src/cmd_util.c). */

/* Parse a comma-separated list of at most max doubles ("1.8,1.8,0.92").
 * Returns the count, or -1 (with a message on stderr naming opt) on error. */
int cmd_parse_doubles(const char *opt, const char *text, double *out, int max);
/* Parse a double / a non-negative long; on error print to stderr and return -1. */
int cmd_parse_double(const char *opt, const char *text, double *out);
int cmd_parse_long(const char *opt, const char *text, long min, long max, long *out);
/* The data directory: --data-dir if given, else $SECTORLAB_DATA, else "data"
 * (or, when there is no data/ here, the sample `make install` copied). */
const char *cmd_data_dir(const char *flag_value);

#endif
