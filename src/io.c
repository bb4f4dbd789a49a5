/* io: atomic file writing (see io.h). */
#include "sectorlab/io.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void atomic_reset(struct io_atomic *a)
{
	free(a->final_path);
	free(a->tmp_path);
	a->f = NULL;
	a->final_path = NULL;
	a->tmp_path = NULL;
}

/* The temporary name beside path: "NAME.tmp.PID", with NAME cut short when
 * the whole would pass NAME_MAX, so that a final name of up to NAME_MAX
 * bytes can be written too. */
static void temp_name(const char *path, char *buf, size_t cap)
{
	char suffix[32];
	int slen = snprintf(suffix, sizeof suffix, ".tmp.%ld", (long)getpid());
	const char *slash = strrchr(path, '/');
	size_t dir = slash ? (size_t)(slash + 1 - path) : 0, base = strlen(path) - dir;
	if (base + (size_t)slen > NAME_MAX)
		base = NAME_MAX - (size_t)slen;
	snprintf(buf, cap, "%.*s%s", (int)(dir + base), path, suffix);
}

sl_status io_atomic_open(struct io_atomic *a, const char *path, struct sl_error *err)
{
	memset(a, 0, sizeof *a);
	size_t n = strlen(path) + 32;
	a->final_path = strdup(path);
	a->tmp_path = malloc(n);
	if (!a->final_path || !a->tmp_path) {
		atomic_reset(a);
		return status_set(err, SL_ERR_NOMEM, "%s: path", path);
	}
	temp_name(path, a->tmp_path, n);
	a->f = fopen(a->tmp_path, "wb");
	if (!a->f) {
		sl_status st = status_set(err, SL_ERR_IO, "cannot write %s: %s", path,
					  strerror(errno));
		atomic_reset(a);
		return st;
	}
	return SL_OK;
}

sl_status io_atomic_commit(struct io_atomic *a, struct sl_error *err)
{
	if (!a->f)
		return status_set(err, SL_ERR_ARG, "atomic write: file not open");
	int bad = ferror(a->f) || fflush(a->f) != 0 || fsync(fileno(a->f)) != 0;
	int saved = errno;
	if (fclose(a->f) != 0 && !bad) {
		bad = 1;
		saved = errno;
	}
	a->f = NULL;
	if (!bad && rename(a->tmp_path, a->final_path) != 0) {
		bad = 1;
		saved = errno;
	}
	if (bad) {
		sl_status st = status_set(err, SL_ERR_IO, "writing %s failed: %s", a->final_path,
					  strerror(saved));
		remove(a->tmp_path);
		atomic_reset(a);
		return st;
	}
	atomic_reset(a);
	return SL_OK;
}

sl_status io_atomic_fail(struct io_atomic *a, struct sl_error *err)
{
	int saved = errno;
	sl_status st = status_set(err, SL_ERR_IO, "writing %s failed: %s",
				  a->final_path ? a->final_path : "a file",
				  saved ? strerror(saved) : "write error");
	io_atomic_abort(a);
	return st;
}

void io_atomic_abort(struct io_atomic *a)
{
	if (a->f)
		fclose(a->f);
	if (a->tmp_path)
		remove(a->tmp_path);
	atomic_reset(a);
}

sl_status io_probe(const char *path, struct sl_error *err)
{
	struct io_atomic a;
	sl_status st = io_atomic_open(&a, path, err);
	if (st == SL_OK)
		io_atomic_abort(&a);
	return st;
}

sl_status io_write_file(const char *path, const void *data, size_t n, struct sl_error *err)
{
	struct io_atomic a;
	sl_status st = io_atomic_open(&a, path, err);
	if (st != SL_OK)
		return st;
	if (n && fwrite(data, 1, n, a.f) != n)
		return io_atomic_fail(&a, err);
	return io_atomic_commit(&a, err);
}
