/*
 * blasmem: OpenBLAS's work buffers, made to fit under an address-space limit.
 *
 * OpenBLAS gives every call that runs at the same time as another its own
 * work buffer (128 MiB of address space on x86-64), allocated the first time
 * that many calls overlap and kept for the life of the process; when that
 * allocation fails, OpenBLAS retries it forever (0.3's blas_memory_alloc).
 * Under `ulimit -v` a run would hang in its first matrix product instead of
 * failing.
 *
 * blasmem_reserve(n) makes sure n buffers exist before the work starts: for
 * each one not yet known to exist it first checks that the address space
 * left (RLIMIT_AS, RLIMIT_DATA) can take it, by mapping and unmapping that
 * much, and only then has OpenBLAS allocate it.  A shortage is SL_ERR_NOMEM
 * with the numbers; every later allocation failure is the program's own and
 * is reported as such.  Buffers are shared by all threads (OpenBLAS built
 * without USE_TLS, as Debian's is); thread-safe.
 */
#ifndef SECTORLAB_BLASMEM_H
#define SECTORLAB_BLASMEM_H

#include "sectorlab/status.h"

/* The largest number of BLAS calls that may overlap: the threads of a
 * network's team (nn_new calls it with the network's thread count). */
sl_status blasmem_reserve(int concurrent, struct sl_error *err);

#endif
