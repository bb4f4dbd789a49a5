/*
 * npy: arrays in NumPy's .npy format (version 1.0) and .npz archives.
 *
 * A .npy file is the magic "\x93NUMPY", the version (1, 0), a little-endian
 * 16-bit header length, a Python dict literal naming dtype, order and shape
 * (padded with spaces to a multiple of 64 bytes, ending in a newline), then
 * the data in C order.  sectorlab writes float32 ('<f4') and int32 ('<i4')
 * arrays, little-endian on any host.
 *
 * A .npz archive is a ZIP file of .npy members, which numpy.load opens as a
 * dict of arrays; members that are not .npy (sectorlab adds recipe.json)
 * come back as bytes.  The writer stores members uncompressed and commits
 * the archive atomically.  The readers validate every length and refuse what
 * they do not understand with SL_ERR_FORMAT; the caller frees what they
 * return with npy_array_free.
 */
#ifndef SECTORLAB_NPY_H
#define SECTORLAB_NPY_H

#include <stddef.h>

#include "sectorlab/status.h"

#define NPY_MAX_DIMS 8

enum npy_type { NPY_TYPE_F32, NPY_TYPE_I32 };

struct npy_array {
	enum npy_type type;
	int ndim;
	size_t shape[NPY_MAX_DIMS];
	void *data;   /* float or int32_t, prod(shape) values, C order */
};

/* Number of values: the product of the shape (1 for ndim 0). */
size_t npy_count(int ndim, const size_t *shape);

/* The whole .npy file in memory (malloc'd into *out, *len bytes). */
sl_status npy_encode(enum npy_type type, int ndim, const size_t *shape, const void *data,
		     void **out, size_t *len, struct sl_error *err);
/* Parse a .npy held in memory (the data is copied). */
sl_status npy_decode(const void *buf, size_t len, struct npy_array *out, struct sl_error *err);

sl_status npy_write(const char *path, enum npy_type type, int ndim, const size_t *shape,
		    const void *data, struct sl_error *err);
sl_status npy_read(const char *path, struct npy_array *out, struct sl_error *err);
void npy_array_free(struct npy_array *a);

/* ---- .npz archives --------------------------------------------------- */

struct npz_writer;

sl_status npz_open(const char *path, struct npz_writer **out, struct sl_error *err);
/* Add name.npy holding the array (name without ".npy"). */
sl_status npz_add_array(struct npz_writer *z, const char *name, enum npy_type type, int ndim,
			const size_t *shape, const void *data, struct sl_error *err);
/* Add a member of raw bytes under its full name ("recipe.json"). */
sl_status npz_add_bytes(struct npz_writer *z, const char *name, const void *data, size_t len,
			struct sl_error *err);
/* Write the directory and move the archive into place; frees z. */
sl_status npz_commit(struct npz_writer *z, struct sl_error *err);
/* Give up: remove the temporary file and free z.  Safe with NULL. */
void npz_abort(struct npz_writer *z);

/* Read member name ("adv" for adv.npy) of an archive as an array. */
sl_status npz_read_array(const char *path, const char *name, struct npy_array *out,
			 struct sl_error *err);
/* Read a raw member ("recipe.json"); *data is malloc'd, NUL-terminated. */
sl_status npz_read_bytes(const char *path, const char *name, char **data, size_t *len,
			 struct sl_error *err);

#endif
