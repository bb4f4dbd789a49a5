/* testutil: shared test helpers (see testutil.h). */
#ifndef _XOPEN_SOURCE
#define _XOPEN_SOURCE 700
#endif
#include "testutil.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

static int is_dir(const char *p)
{
	struct stat st;
	return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

const char *tu_shared_data(void)
{
	const char *env = getenv("SECTORLAB_SHARED_DATA");
	if (env && *env)
		return is_dir(env) ? env : NULL;
	return is_dir("../shared/data/mnist") ? "../shared/data" : NULL;
}

const char *tu_sample_data(void)
{
	return "data";
}

char *tu_tmpdir(void)
{
	char tmpl[] = "/tmp/sectorlab-test-XXXXXX";
	char *d = mkdtemp(tmpl);
	return d ? strdup(d) : NULL;
}

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

void tu_rmrf(const char *path)
{
	if (path)
		nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

int tu_write_file(const char *path, const void *data, size_t n)
{
	FILE *f = fopen(path, "wb");
	if (!f)
		return -1;
	size_t w = fwrite(data, 1, n, f);
	return (fclose(f) == 0 && w == n) ? 0 : -1;
}

int tu_write_gz(const char *path, const void *data, size_t n)
{
	gzFile g = gzopen(path, "wb");
	if (!g)
		return -1;
	int w = n ? gzwrite(g, data, (unsigned)n) : 0;
	return (gzclose(g) == Z_OK && (size_t)w == n) ? 0 : -1;
}

char *tu_path(const char *dir, const char *name)
{
	size_t n = strlen(dir) + strlen(name) + 2;
	char *p = malloc(n);
	if (p)
		snprintf(p, n, "%s/%s", dir, name);
	return p;
}

int tu_setup_tmpdir(void **state)
{
	*state = tu_tmpdir();
	return *state ? 0 : -1;
}

int tu_teardown_tmpdir(void **state)
{
	tu_rmrf(*state);
	free(*state);
	return 0;
}

char *tu_read_file(const char *path, size_t *n)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	char *buf = NULL;
	long len = -1;
	if (fseek(f, 0, SEEK_END) == 0 && (len = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0)
		buf = malloc((size_t)len + 1);
	if (buf) {
		*n = fread(buf, 1, (size_t)len, f);
		buf[*n] = '\0';
	}
	fclose(f);
	return buf;
}
