/*
 * io: files that survive interruption.
 *
 * Everything sectorlab writes goes through an atomic file: the bytes go to a
 * temporary file beside the destination, which is flushed, synced and renamed
 * over the final name only when complete.  An interrupted or failed write
 * leaves the previous file (if any) untouched and no partial file under the
 * final name.
 */
#ifndef SECTORLAB_IO_H
#define SECTORLAB_IO_H

#include <stdio.h>

#include "sectorlab/status.h"

struct io_atomic {
	FILE *f;          /* write here between open and commit */
	char *final_path;
	char *tmp_path;
};

/* Open a temporary file next to path for writing. */
sl_status io_atomic_open(struct io_atomic *a, const char *path, struct sl_error *err);

/* Flush, sync, close and rename onto the final path.  On failure the
 * temporary file is removed and the final path is untouched. */
sl_status io_atomic_commit(struct io_atomic *a, struct sl_error *err);

/* After a write to a->f failed: remove the temporary file and report the
 * cause the failed write left in errno ("No space left on device"), naming
 * the final path.  Call it straight after the failing call.  Returns
 * SL_ERR_IO. */
sl_status io_atomic_fail(struct io_atomic *a, struct sl_error *err);

/* Close and remove the temporary file (after an error).  Safe to call twice. */
void io_atomic_abort(struct io_atomic *a);

/* Check now that path can be written (its directory exists and takes a new
 * file), so that a long run fails at its start rather than at its end.
 * Creates and removes the temporary file; path itself is not touched. */
sl_status io_probe(const char *path, struct sl_error *err);

/* Write n bytes to path atomically. */
sl_status io_write_file(const char *path, const void *data, size_t n, struct sl_error *err);

#endif
