/*
 * data: image classification datasets in memory.
 *
 * Reads MNIST-style IDX files (MNIST, Fashion-MNIST) and CIFAR-10 binary
 * batches, plain or gzip-compressed (detected from the bytes, not the name).
 * Every reader validates magic numbers, dimensions, counts, label range and
 * file length against what the header promises, and refuses absurd sizes
 * before allocating; a bad file gives SL_ERR_FORMAT (or SL_ERR_IO) with a
 * message that names the file and what is wrong.
 *
 * Pixels stay as bytes (0..255) in NCHW order; data_batch converts a batch to
 * the network's float scale x / 255 - 0.5 on the fly.
 */
#ifndef SECTORLAB_DATA_H
#define SECTORLAB_DATA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sectorlab/status.h"

enum data_kind { DATA_MNIST, DATA_FASHION, DATA_CIFAR10 };

struct sl_dataset {
	uint32_t n;       /* number of examples */
	uint32_t c, h, w; /* image shape: MNIST 1x28x28, CIFAR-10 3x32x32 */
	uint32_t classes; /* 10 for all supported datasets */
	uint8_t *pixels;  /* (n, c, h, w), 0..255 */
	uint8_t *labels;  /* (n), each < classes */
	bool owned;       /* false for a view made by data_view */
	char source[256]; /* where it came from, for display ("data/train-images-...") */
};

/* Parse a dataset name: "mnist", "fashion", "cifar10". */
sl_status data_kind_parse(const char *name, enum data_kind *out, struct sl_error *err);
const char *data_kind_name(enum data_kind kind);

/* Load an IDX image file (magic 0x803, n x rows x cols) and its label file
 * (magic 0x801); counts must agree and every label must be < 10. */
sl_status data_load_idx(const char *images_path, const char *labels_path,
			struct sl_dataset *out, struct sl_error *err);

/* Load and concatenate CIFAR-10 binary batch files (records of 1 + 3072 bytes). */
sl_status data_load_cifar10(const char *const *paths, int npaths, struct sl_dataset *out,
			    struct sl_error *err);

/*
 * Find and load a dataset's training or test split under dir.  Looks for the
 * canonical file names (with or without .gz) in dir/<subdir>/ then in dir/,
 * where subdir is "mnist", "fashion" or "cifar-10-batches-bin".  Fashion-MNIST
 * shares MNIST's file names, so for DATA_FASHION dir/ itself is not searched
 * (it holds the MNIST sample); the install path of Debian's
 * dataset-fashion-mnist package is searched instead.  When nothing is found the message says
 * where it looked and how to get the data.
 */
sl_status data_load(enum data_kind kind, const char *dir, bool train, struct sl_dataset *out,
		    struct sl_error *err);

/* Longest list data_split_files gives (CIFAR-10's five training batches). */
#define DATA_MAX_SPLIT_FILES 5

/* The files data_load(kind, dir, train) would read, found as it finds them,
 * into paths (at most cap); their count, 0 when the split is not there.
 * Lets a command check that no output overwrites its data. */
int data_split_files(enum data_kind kind, const char *dir, bool train, char (*paths)[4096],
		     int cap);

/* A non-owning view of examples [start, start + count) of d. */
sl_status data_view(const struct sl_dataset *d, uint32_t start, uint32_t count,
		    struct sl_dataset *out, struct sl_error *err);

/* Free what data_load* allocated (views free nothing); leaves *d zeroed. */
/* A copy of d that owns its bytes (of a view too), for work that must
 * outlive d's owner; free with data_free. */
sl_status data_copy(const struct sl_dataset *d, struct sl_dataset *out, struct sl_error *err);

void data_free(struct sl_dataset *d);

/* Values per example: c * h * w. */
size_t data_dim(const struct sl_dataset *d);

/*
 * Gather examples idx[0 .. count) into x (count, c*h*w) scaled to
 * x / 255 - 0.5, and their labels into y (count).  idx may be NULL for
 * examples [0, count).  Indices must be < d->n.
 */
void data_batch(const struct sl_dataset *d, const uint32_t *idx, size_t count, float *x,
		int *y);

/* Convert one scaled float pixel back to a byte: clip to [0, 255] and round. */
uint8_t data_to_byte(float scaled);

#endif
