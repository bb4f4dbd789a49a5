/*
 * Fuzz target: the IDX reader (MNIST images + labels, plain or gzip).  The
 * first byte of the input chooses where it splits into the image file and
 * the label file, so both headers and their agreement get exercised.
 */
#define _GNU_SOURCE /* memfd_create */
#include <stdlib.h>

#include "fuzz_util.h"
#include "sectorlab/data.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	size_t split = 1 + (size - 1) * data[0] / 255;
	char ipath[64], lpath[64];
	int ifd = fuzz_memfile(data + 1, split - 1, ipath, sizeof ipath);
	int lfd = fuzz_memfile(data + split, size - split, lpath, sizeof lpath);
	if (ifd >= 0 && lfd >= 0) {
		struct sl_dataset d;
		struct sl_error err;
		if (data_load_idx(ipath, lpath, &d, &err) == SL_OK) {
			/* A dataset that loads must be usable end to end. */
			if (d.n == 0 || d.labels[d.n - 1] >= 10)
				abort();
			float *x = malloc(sizeof(float) * data_dim(&d));
			int y;
			data_batch(&d, NULL, 1, x, &y);
			free(x);
			data_free(&d);
		} else if (err.msg[0] == '\0') {
			abort(); /* every failure must say why */
		}
	}
	if (ifd >= 0)
		close(ifd);
	if (lfd >= 0)
		close(lfd);
	return 0;
}
