/* Fuzz target: the CIFAR-10 batch reader (plain or gzip). */
#define _GNU_SOURCE /* memfd_create */
#include <stdlib.h>

#include "fuzz_util.h"
#include "sectorlab/data.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char path[64];
	int fd = fuzz_memfile(data, size, path, sizeof path);
	if (fd < 0)
		return 0;
	const char *paths[1] = {path};
	struct sl_dataset d;
	struct sl_error err;
	if (data_load_cifar10(paths, 1, &d, &err) == SL_OK) {
		if (d.n == 0 || d.c != 3 || d.labels[d.n - 1] >= 10)
			abort();
		data_free(&d);
	} else if (err.msg[0] == '\0') {
		abort();
	}
	close(fd);
	return 0;
}
