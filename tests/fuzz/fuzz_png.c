/* Fuzz target: the PNG reader (libpng behind image_read_png), which reads
 * exported adversarial images back for re-classification. */
#define _GNU_SOURCE /* memfd_create */
#include <stdlib.h>

#include "fuzz_util.h"
#include "sectorlab/image.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char path[64];
	int fd = fuzz_memfile(data, size, path, sizeof path);
	if (fd < 0)
		return 0;
	struct image img;
	char value[256];
	struct sl_error err;
	status_clear(&err);
	if (image_read_png(path, &img, "recipe", value, sizeof value, &err) == SL_OK)
		image_free(&img);
	else if (err.msg[0] == '\0')
		abort();
	close(fd);
	return 0;
}
