/*
 * fuzz_util: what the fuzz targets share.  The readers under test take file
 * paths, so each input is handed over as an anonymous in-memory file
 * (memfd) reached through /dev/fd: no disk traffic, nothing left behind.
 * Targets that include this define _GNU_SOURCE before any header.
 */
#ifndef SECTORLAB_FUZZ_UTIL_H
#define SECTORLAB_FUZZ_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

/* An in-memory file holding data[0 .. n); its path is written to path. */
static inline int fuzz_memfile(const uint8_t *data, size_t n, char *path, size_t cap)
{
	int fd = memfd_create("fuzz", 0);
	if (fd < 0)
		return -1;
	size_t done = 0;
	while (done < n) {
		ssize_t w = write(fd, data + done, n - done);
		if (w <= 0) {
			close(fd);
			return -1;
		}
		done += (size_t)w;
	}
	snprintf(path, cap, "/dev/fd/%d", fd);
	return fd;
}

#endif
