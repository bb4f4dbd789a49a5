/*
 * config: settings files, so that a recipe can be kept, shared and rerun.
 *
 * A settings file is text, one setting per line:
 *
 *     # spectral-norm training at the paper's indices
 *     mode    = spnorm
 *     nu      = -2
 *     delta   = 0.4
 *     json    = true
 *
 * A key is a command's long option name without the dashes (lower-case
 * letters, digits and '-'); the value is the rest of the line with the
 * surrounding blanks removed, and then one pair of matching quotes ("..." or
 * '...') around all of it, whose inside is kept as it is (blanks and '#'
 * included); a value that opens a quote it does not close is refused.  '#' at
 * the start of a line, or after a blank outside quotes, begins a comment.
 * Blank lines are skipped; "\r\n" line ends are read as "\n"; a UTF-8
 * byte-order mark at the start is skipped.  A key may appear once.  The file
 * is at most CONFIG_MAX_BYTES and holds no NUL byte.  Errors name the file
 * and the line; a directory is refused as such (SL_ERR_ARG).
 *
 * What the keys mean is the command's business: config_to_args (in the
 * command layer, cmd.h) turns the settings into options.
 */
#ifndef SECTORLAB_CONFIG_H
#define SECTORLAB_CONFIG_H

#include <stddef.h>

#include "sectorlab/status.h"

#define CONFIG_MAX_BYTES (1 << 20)
#define CONFIG_MAX_KEY 64

struct config_entry {
	char *key, *value;
	int line; /* 1-based, for messages */
};

struct config {
	char *name; /* the file, for messages */
	struct config_entry *entry;
	int n;
};

/* Parse len bytes of text; name is used in messages ("recipe.conf line 3:
 * ...").  On success cfg owns copies of everything; free with config_free.
 * On failure cfg is left empty. */
sl_status config_parse(const char *text, size_t len, const char *name, struct config *cfg,
		       struct sl_error *err);

/* Read and parse the file at path. */
sl_status config_read(const char *path, struct config *cfg, struct sl_error *err);

/* The value of key, or NULL. */
const char *config_get(const struct config *cfg, const char *key);

/* Parse a yes/no value: true/false, yes/no, on/off, 1/0.  Returns 1, 0, or
 * -1 for anything else. */
int config_bool(const char *value);

void config_free(struct config *cfg);

#endif
