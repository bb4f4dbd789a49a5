/* io: atomic file writing and output targets (see io.h). */
#include "sectorlab/io.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define IO_MAX_LINKS 40 /* as the kernel's own limit on links followed */

void io_target_free(struct io_target *t)
{
	free(t->path);
	memset(t, 0, sizeof *t);
}

/* dir of p joined with name (name relative), newly allocated. */
static char *join_dir(const char *p, const char *name)
{
	const char *slash = strrchr(p, '/');
	size_t dlen = slash ? (size_t)(slash - p) + 1 : 0;
	char *out = malloc(dlen + strlen(name) + 1);
	if (out) {
		memcpy(out, p, dlen);
		strcpy(out + dlen, name);
	}
	return out;
}

/* Follow a chain of symbolic links that ends at nothing; the name the last
 * link points to (newly allocated), or NULL with errno set. */
static char *follow_dangling(const char *path)
{
	char *p = strdup(path);
	for (int hops = 0; p; hops++) {
		struct stat st;
		if (lstat(p, &st) != 0 || !S_ISLNK(st.st_mode))
			return p;
		if (hops == IO_MAX_LINKS) {
			free(p);
			errno = ELOOP;
			return NULL;
		}
		char target[PATH_MAX];
		ssize_t n = readlink(p, target, sizeof target - 1);
		if (n < 0) {
			free(p);
			return NULL;
		}
		target[n] = '\0';
		char *next = target[0] == '/' ? strdup(target) : join_dir(p, target);
		free(p);
		p = next;
	}
	errno = ENOMEM;
	return NULL;
}

static bool names_directory(const char *p)
{
	size_t n = strlen(p);
	return n > 0 && p[n - 1] == '/';
}

sl_status io_target_find(const char *path, struct io_target *t, struct sl_error *err)
{
	memset(t, 0, sizeof *t);
	if (!path || !*path)
		return status_set(err, SL_ERR_ARG, "an empty file name");
	if (names_directory(path))
		return status_set(err, SL_ERR_ARG, "%s names a directory, not a file", path);
	struct stat st;
	if (stat(path, &st) == 0) {
		if (S_ISDIR(st.st_mode))
			return status_set(err, SL_ERR_ARG, "%s is a directory, not a file", path);
		if (!S_ISREG(st.st_mode) && !S_ISCHR(st.st_mode) && !S_ISFIFO(st.st_mode))
			return status_set(err, SL_ERR_ARG,
					  "%s is not a regular file, character device or FIFO: "
					  "refusing to write there",
					  path);
		struct stat lst;
		bool link = lstat(path, &lst) == 0 && S_ISLNK(lst.st_mode);
		t->kind = S_ISREG(st.st_mode) ? IO_FILE : IO_STREAM;
		/* A device or FIFO is opened by the name given (links included,
		 * /dev/stdout's too); a regular file is replaced where it lies. */
		t->path = link && t->kind == IO_FILE ? realpath(path, NULL) : strdup(path);
		t->dev = st.st_dev;
		t->ino = st.st_ino;
		t->mode = st.st_mode & 07777;
	} else if (errno == ENOENT) {
		t->kind = IO_NEW;
		t->path = follow_dangling(path);
		if (t->path && names_directory(t->path)) {
			sl_status s = status_set(err, SL_ERR_ARG,
						 "%s leads to %s, which names a directory", path,
						 t->path);
			io_target_free(t);
			return s;
		}
	} else {
		return status_set(err, SL_ERR_IO, "cannot write %s: %s", path, strerror(errno));
	}
	if (!t->path) {
		int e = errno;
		return status_set(err, e == ENOMEM ? SL_ERR_NOMEM : SL_ERR_IO, "%s: %s", path,
				  strerror(e));
	}
	return SL_OK;
}

bool io_is_stream(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 && (S_ISCHR(st.st_mode) || S_ISFIFO(st.st_mode));
}

/* A name not yet created, with its directory resolved ("a/../b/x" and a link
 * to b both give "/abs/b/x"); NULL if the directory cannot be resolved. */
static char *canonical_new(const char *p)
{
	const char *slash = strrchr(p, '/');
	char *dir = slash ? strndup(p, (size_t)(slash - p) + 1) : strdup(".");
	char *real = dir ? realpath(dir, NULL) : NULL;
	free(dir);
	if (!real)
		return NULL;
	const char *base = slash ? slash + 1 : p;
	char *out = malloc(strlen(real) + strlen(base) + 2);
	if (out)
		sprintf(out, "%s/%s", strcmp(real, "/") == 0 ? "" : real, base);
	free(real);
	return out;
}

bool io_target_same(const struct io_target *a, const struct io_target *b)
{
	if (a->kind != IO_NEW && b->kind != IO_NEW)
		return a->dev == b->dev && a->ino == b->ino;
	if (a->kind != IO_NEW || b->kind != IO_NEW)
		return false;
	char *ca = canonical_new(a->path), *cb = canonical_new(b->path);
	bool same = ca && cb ? strcmp(ca, cb) == 0 : strcmp(a->path, b->path) == 0;
	free(ca);
	free(cb);
	return same;
}

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
	struct io_target t;
	sl_status st = io_target_find(path, &t, err);
	if (st != SL_OK)
		return st;
	a->final_path = t.path; /* ours now */
	if (t.kind == IO_STREAM) {
		a->f = fopen(a->final_path, "wb");
	} else {
		size_t n = strlen(a->final_path) + 32;
		if (!(a->tmp_path = malloc(n))) {
			atomic_reset(a);
			return status_set(err, SL_ERR_NOMEM, "%s: path", path);
		}
		temp_name(a->final_path, a->tmp_path, n);
		a->f = fopen(a->tmp_path, "wb");
		/* A private file stays private once replaced (best effort: the
		 * owner may differ, and then the umask's mode stands). */
		if (a->f && t.kind == IO_FILE)
			(void)!fchmod(fileno(a->f), t.mode);
	}
	if (!a->f) {
		st = status_set(err, SL_ERR_IO, "cannot write %s: %s", path, strerror(errno));
		atomic_reset(a);
		return st;
	}
	return SL_OK;
}

sl_status io_atomic_commit(struct io_atomic *a, struct sl_error *err)
{
	if (!a->f)
		return status_set(err, SL_ERR_ARG, "atomic write: file not open");
	/* A device or FIFO is not synced (they refuse fsync) and not renamed. */
	int bad = ferror(a->f) || fflush(a->f) != 0 ||
		  (a->tmp_path && fsync(fileno(a->f)) != 0);
	int saved = errno;
	if (fclose(a->f) != 0 && !bad) {
		bad = 1;
		saved = errno;
	}
	a->f = NULL;
	if (!bad && a->tmp_path && rename(a->tmp_path, a->final_path) != 0) {
		bad = 1;
		saved = errno;
	}
	if (bad) {
		sl_status st = status_set(err, SL_ERR_IO, "writing %s failed: %s", a->final_path,
					  saved ? strerror(saved) : "write error");
		if (a->tmp_path)
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
	struct io_target t;
	sl_status st = io_target_find(path, &t, err);
	if (st != SL_OK)
		return st;
	bool stream = t.kind == IO_STREAM;
	if (stream && access(t.path, W_OK) != 0)
		st = status_set(err, SL_ERR_IO, "cannot write %s: %s", path, strerror(errno));
	io_target_free(&t);
	if (stream || st != SL_OK)
		return st;
	struct io_atomic a;
	st = io_atomic_open(&a, path, err);
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
