/* blasmem: OpenBLAS's work buffers under an address-space limit (see blasmem.h). */
#include "sectorlab/blasmem.h"

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

/* OpenBLAS's allocator of work buffers (driver/others/memory.c): exported by
 * every OpenBLAS, but in no header.  Weak, so that another BLAS links too
 * (and has nothing to reserve). */
extern void *blas_memory_alloc(int procpos) __attribute__((weak));
extern void blas_memory_free(void *buffer) __attribute__((weak));

#define MIB (1024.0 * 1024.0)
#define MAX_BUFFERS 64

/* OpenBLAS 0.3's x86-64 BUFFER_SIZE (32 << 22) plus its guard page; a
 * buffer seen growing the address space by more raises it. */
static size_t buffer_bytes = ((size_t)32 << 22) + 4096;
/* malloc's own rounding of such a block (to 1 MiB or so) and its header. */
#define SLACK ((size_t)4 << 20)

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static int reserved; /* buffers OpenBLAS is known to hold */

/* The process's address space in bytes (/proc/self/statm), or 0. */
static size_t address_space(void)
{
	FILE *f = fopen("/proc/self/statm", "r");
	unsigned long pages = 0;
	if (f) {
		if (fscanf(f, "%lu", &pages) != 1)
			pages = 0;
		fclose(f);
	}
	return (size_t)pages * (size_t)sysconf(_SC_PAGESIZE);
}

/* The tighter of the address-space and data limits in bytes, or 0 for
 * none; *name says which ("ulimit -v" or "ulimit -d"). */
static size_t limit_bytes(const char **name)
{
	size_t limit = 0;
	const int which[2] = {RLIMIT_AS, RLIMIT_DATA};
	const char *names[2] = {"ulimit -v", "ulimit -d"};
	*name = names[0];
	for (int i = 0; i < 2; i++) {
		struct rlimit r;
		if (getrlimit(which[i], &r) == 0 && r.rlim_cur != RLIM_INFINITY &&
		    (limit == 0 || (size_t)r.rlim_cur < limit)) {
			limit = (size_t)r.rlim_cur;
			*name = names[i];
		}
	}
	return limit;
}

/* Whether bytes more of address space can be had now. */
static bool room_for(size_t bytes)
{
	void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
		       -1, 0);
	if (p == MAP_FAILED)
		return false;
	munmap(p, bytes);
	return true;
}

sl_status blasmem_reserve(int concurrent, struct sl_error *err)
{
	if (!blas_memory_alloc || !blas_memory_free)
		return SL_OK;
	if (concurrent > MAX_BUFFERS)
		concurrent = MAX_BUFFERS;
	sl_status st = SL_OK;
	pthread_mutex_lock(&lock);
	if (concurrent <= reserved) {
		pthread_mutex_unlock(&lock);
		return SL_OK;
	}
	/* Held all at once, so that OpenBLAS hands out (and, past the ones it
	 * has, allocates) a different buffer for each. */
	void *held[MAX_BUFFERS];
	int n = 0;
	for (; n < concurrent; n++) {
		if (n >= reserved && !room_for(buffer_bytes + SLACK)) {
			const char *name;
			size_t limit = limit_bytes(&name), used = address_space();
			st = status_set(err, SL_ERR_NOMEM,
					"OpenBLAS needs a work buffer of %.0f MB of address space for "
					"each of %d thread%s; the limit of %.0f MB (%s) leaves room "
					"for %d (%.0f MB free): raise the limit%s",
					(double)buffer_bytes / MIB, concurrent, concurrent == 1 ? "" : "s",
					(double)limit / MIB, name, n,
					limit > used ? (double)(limit - used) / MIB : 0.0,
					n > 0 ? " or use fewer threads" : "");
			break;
		}
		size_t before = address_space();
		held[n] = blas_memory_alloc(0);
		size_t grew = address_space() - before;
		if (n >= reserved && grew > buffer_bytes && grew < ((size_t)1 << 32))
			buffer_bytes = grew;
	}
	if (st == SL_OK)
		reserved = concurrent;
	else if (n > reserved)
		reserved = n;
	while (n > 0)
		blas_memory_free(held[--n]);
	pthread_mutex_unlock(&lock);
	return st;
}
