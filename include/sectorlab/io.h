/*
 * io: files that survive interruption, and output paths checked before work.
 *
 * Everything sectorlab writes goes through an atomic file: the bytes go to a
 * temporary file beside the destination, which is flushed, synced and renamed
 * over the final name only when complete.  An interrupted or failed write
 * leaves the previous file (if any) untouched and no partial file under the
 * final name.
 *
 * What a path names decides how it is written (io_target):
 *  - nothing yet, or a regular file: the atomic write above (a replaced
 *    file keeps its permission bits);
 *  - a symbolic link (to a file or to nothing yet): the link is followed and
 *    the file it points to is written atomically, next to that file, so the
 *    link stays a link and its target is never left stale;
 *  - a character device or a FIFO (/dev/null, /dev/stdout on a terminal or a
 *    pipe, a named pipe): written through in place, never renamed over;
 *  - anything else (a directory, a socket, a block device) and the empty
 *    name are refused with SL_ERR_ARG.
 * The module never prints and never exits.
 */
#ifndef SECTORLAB_IO_H
#define SECTORLAB_IO_H

#include <stdbool.h>
#include <stdio.h>
#include <sys/types.h>

#include "sectorlab/status.h"

struct io_atomic {
	FILE *f;          /* write here between open and commit */
	char *final_path; /* the file written: a symbolic link's target */
	char *tmp_path;   /* NULL when writing through to a device or FIFO */
};

/* How a path will be written. */
enum io_kind {
	IO_NEW,    /* nothing there yet: created atomically */
	IO_FILE,   /* a regular file: replaced atomically */
	IO_STREAM, /* a character device or FIFO: written through in place */
};

struct io_target {
	enum io_kind kind;
	char *path;       /* what is written: path itself, or the file a link leads to
			     (newly allocated; free with io_target_free) */
	dev_t dev;        /* the file's identity when it exists (not IO_NEW) */
	ino_t ino;
	mode_t mode;      /* its permission bits, which a replacement keeps */
};

/*
 * Find what path names for writing (see the top of this file): follows
 * symbolic links, refuses (SL_ERR_ARG, naming path and why) the empty name,
 * a name ending in '/', directories and other files that are neither
 * regular, character devices nor FIFOs; SL_ERR_IO when a link cannot be
 * followed (a loop).  Nothing is created.
 */
sl_status io_target_find(const char *path, struct io_target *t, struct sl_error *err);
void io_target_free(struct io_target *t);

/* Whether path names a character device or a FIFO (through links). */
bool io_is_stream(const char *path);

/*
 * Whether a and b are the same file: the same device and inode when both
 * exist, else the same path once links and "." / ".." in the directory are
 * resolved (t->path's directory must exist for that).
 */
bool io_target_same(const struct io_target *a, const struct io_target *b);

/* Open path for writing as its kind requires (see io_target_find). */
sl_status io_atomic_open(struct io_atomic *a, const char *path, struct sl_error *err);

/* Flush, sync, close and rename onto the final path (a device or FIFO is
 * flushed and closed).  On failure the temporary file is removed and the
 * final path is untouched. */
sl_status io_atomic_commit(struct io_atomic *a, struct sl_error *err);

/* After a write to a->f failed: remove the temporary file and report the
 * cause the failed write left in errno ("No space left on device"), naming
 * the final path.  Call it straight after the failing call.  Returns
 * SL_ERR_IO. */
sl_status io_atomic_fail(struct io_atomic *a, struct sl_error *err);

/* Close and remove the temporary file (after an error).  Safe to call twice. */
void io_atomic_abort(struct io_atomic *a);

/* Check now that path can be written, so that a long run fails at its
 * start rather than at its end: io_target_find's refusals (SL_ERR_ARG), then
 * a file's directory must take a new file (the temporary file is created and
 * removed; path itself is not touched) and a device or FIFO must be writable
 * (it is not opened: a FIFO would wait for a reader). */
sl_status io_probe(const char *path, struct sl_error *err);

/* Write n bytes to path atomically. */
sl_status io_write_file(const char *path, const void *data, size_t n, struct sl_error *err);

#endif
