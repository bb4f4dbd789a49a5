/* config: settings files (see config.h). */
#include "sectorlab/config.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static int is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r';
}

static int is_key_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
}

/* [s, e) with blanks removed from both ends. */
static void trim(const char **s, const char **e)
{
	while (*s < *e && is_blank(**s))
		(*s)++;
	while (*e > *s && is_blank((*e)[-1]))
		(*e)--;
}

static int is_quote(char c)
{
	return c == '"' || c == '\'';
}

static char *copy(const char *s, const char *e)
{
	size_t n = (size_t)(e - s);
	char *p = malloc(n + 1);
	if (p) {
		memcpy(p, s, n);
		p[n] = '\0';
	}
	return p;
}

void config_free(struct config *cfg)
{
	for (int i = 0; i < cfg->n; i++) {
		free(cfg->entry[i].key);
		free(cfg->entry[i].value);
	}
	free(cfg->entry);
	free(cfg->name);
	memset(cfg, 0, sizeof *cfg);
}

/* One line [s, e) (no '\n'); appends an entry unless it is blank. */
static sl_status parse_line(const char *s, const char *e, int line, struct config *cfg,
			    int *cap, struct sl_error *err)
{
	const char *name = cfg->name;
	/* A comment starts at '#' at the line's start or after a blank, but not
	 * inside a quoted value. */
	bool after_eq = false;
	for (const char *p = s; p < e; p++) {
		if (*p == '#' && (p == s || is_blank(p[-1]))) {
			e = p;
			break;
		}
		if (*p != '=' || after_eq)
			continue;
		after_eq = true;
		const char *v = p + 1;
		while (v < e && is_blank(*v))
			v++;
		const char *close = v < e && is_quote(*v) ? memchr(v + 1, *v, (size_t)(e - v - 1))
							 : NULL;
		if (close)
			p = close;
	}
	trim(&s, &e);
	if (s == e)
		return SL_OK;
	const char *eq = memchr(s, '=', (size_t)(e - s));
	if (!eq)
		return status_set(err, SL_ERR_FORMAT,
				  "%s line %d: expected 'key = value', found no '='", name, line);
	const char *ks = s, *ke = eq, *vs = eq + 1, *ve = e;
	trim(&ks, &ke);
	trim(&vs, &ve);
	if (ks == ke)
		return status_set(err, SL_ERR_FORMAT, "%s line %d: a setting with no key", name,
				  line);
	if (ke - ks > CONFIG_MAX_KEY)
		return status_set(err, SL_ERR_FORMAT, "%s line %d: key longer than %d characters",
				  name, line, CONFIG_MAX_KEY);
	for (const char *p = ks; p < ke; p++)
		if (!is_key_char(*p))
			return status_set(err, SL_ERR_FORMAT,
					  "%s line %d: keys are option names (a-z, 0-9, '-'); "
					  "'%.*s' is not",
					  name, line, (int)(ke - ks), ks);
	if (ks[0] == '-') {
		const char *bare = ks;
		while (bare < ke && *bare == '-')
			bare++;
		return status_set(err, SL_ERR_FORMAT,
				  "%s line %d: write the key without dashes ('%.*s')", name, line,
				  (int)(ke - bare), bare);
	}
	if (vs < ve && is_quote(*vs)) {
		/* "a value" or 'a value': the quotes go, the blanks inside stay. */
		if (ve - vs < 2 || ve[-1] != *vs)
			return status_set(err, SL_ERR_FORMAT,
					  "%s line %d: the value of '%.*s' opens a quote (%c) that "
					  "does not close at the end of the line",
					  name, line, (int)(ke - ks), ks, *vs);
		vs++;
		ve--;
	}
	if (vs == ve)
		return status_set(err, SL_ERR_FORMAT, "%s line %d: '%.*s' has no value", name,
				  line, (int)(ke - ks), ks);
	for (int i = 0; i < cfg->n; i++)
		if ((size_t)(ke - ks) == strlen(cfg->entry[i].key) &&
		    memcmp(cfg->entry[i].key, ks, (size_t)(ke - ks)) == 0)
			return status_set(err, SL_ERR_FORMAT,
					  "%s line %d: '%s' is already set on line %d", name, line,
					  cfg->entry[i].key, cfg->entry[i].line);
	if (cfg->n == *cap) {
		int ncap = *cap ? 2 * *cap : 16;
		struct config_entry *p = realloc(cfg->entry, sizeof *p * (size_t)ncap);
		if (!p)
			return status_set(err, SL_ERR_NOMEM, "%s: settings", name);
		cfg->entry = p;
		*cap = ncap;
	}
	struct config_entry *en = &cfg->entry[cfg->n];
	en->key = copy(ks, ke);
	en->value = copy(vs, ve);
	en->line = line;
	if (!en->key || !en->value) {
		free(en->key);
		free(en->value);
		return status_set(err, SL_ERR_NOMEM, "%s: settings", name);
	}
	cfg->n++;
	return SL_OK;
}

sl_status config_parse(const char *text, size_t len, const char *name, struct config *cfg,
		       struct sl_error *err)
{
	memset(cfg, 0, sizeof *cfg);
	if (len > CONFIG_MAX_BYTES)
		return status_set(err, SL_ERR_TOO_LARGE,
				  "%s: larger than %d bytes, which no settings file is", name,
				  CONFIG_MAX_BYTES);
	const char *nul = memchr(text, '\0', len);
	if (nul) {
		int line = 1;
		for (const char *p = text; p < nul; p++)
			line += *p == '\n';
		return status_set(err, SL_ERR_FORMAT, "%s line %d: a NUL byte (not a text file?)",
				  name, line);
	}
	cfg->name = strdup(name);
	if (!cfg->name)
		return status_set(err, SL_ERR_NOMEM, "%s: name", name);
	/* Editors on some systems begin UTF-8 text with a byte-order mark. */
	if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0) {
		text += 3;
		len -= 3;
	}
	int cap = 0, line = 1;
	const char *s = text, *end = text + len;
	while (s < end) {
		const char *nl = memchr(s, '\n', (size_t)(end - s));
		const char *e = nl ? nl : end;
		sl_status st = parse_line(s, e, line, cfg, &cap, err);
		if (st != SL_OK) {
			config_free(cfg);
			return st;
		}
		s = nl ? nl + 1 : end;
		line++;
	}
	return SL_OK;
}

sl_status config_read(const char *path, struct config *cfg, struct sl_error *err)
{
	memset(cfg, 0, sizeof *cfg);
	FILE *f = fopen(path, "rb");
	if (!f)
		return status_set(err, SL_ERR_IO, "cannot open %s: %s", path, strerror(errno));
	struct stat st;
	if (fstat(fileno(f), &st) == 0 && S_ISDIR(st.st_mode)) {
		fclose(f);
		return status_set(err, SL_ERR_ARG, "%s is a directory, not a settings file", path);
	}
	/* Read one byte past the limit to tell a file that is too long. */
	char *buf = malloc((size_t)CONFIG_MAX_BYTES + 1);
	if (!buf) {
		fclose(f);
		return status_set(err, SL_ERR_NOMEM, "%s", path);
	}
	size_t n = fread(buf, 1, (size_t)CONFIG_MAX_BYTES + 1, f);
	int bad = ferror(f) ? errno : 0;
	fclose(f);
	sl_status rc = bad ? status_set(err, SL_ERR_IO, "reading %s failed: %s", path, strerror(bad))
			   : config_parse(buf, n, path, cfg, err);
	free(buf);
	return rc;
}

const char *config_get(const struct config *cfg, const char *key)
{
	for (int i = 0; i < cfg->n; i++)
		if (strcmp(cfg->entry[i].key, key) == 0)
			return cfg->entry[i].value;
	return NULL;
}

int config_bool(const char *v)
{
	static const char *yes[] = {"true", "yes", "on", "1"}, *no[] = {"false", "no", "off", "0"};
	for (int i = 0; i < 4; i++) {
		if (strcmp(v, yes[i]) == 0)
			return 1;
		if (strcmp(v, no[i]) == 0)
			return 0;
	}
	return -1;
}
