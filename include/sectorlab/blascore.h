/*
 * blascore: OpenBLAS's kernels matched to the processor.
 *
 * An OpenBLAS built with DYNAMIC_ARCH (Debian's is) chooses its kernels when
 * it is loaded, from the processor's family and model.  A release older than
 * the processor does not know the model and falls back to its oldest x86-64
 * kernels, "Prescott" (SSE3): Debian 12's OpenBLAS 0.3.21 on a Xeon of family
 * 6, model 207 multiplies matrices about five times slower than with the
 * AVX-512 kernels the same library holds.  OpenBLAS takes the kernels' name
 * from the environment (OPENBLAS_CORETYPE) instead, but reads it only when
 * it is loaded, before main.
 *
 * blascore_choose() is for the first line of a program's main (and runs
 * before any test binary's main): when OpenBLAS fell back to Prescott on a
 * processor that runs better kernels, and OPENBLAS_CORETYPE is not set, it
 * sets it and executes the program again (the same executable, arguments
 * and environment but for that variable), so that OpenBLAS loads with the
 * right kernels.  It returns when there is nothing to do, or when the
 * execution failed (the program then goes on with the slow kernels).  A
 * value the user set is always kept, so it can also force a choice; the new
 * process finds the variable set and does not execute itself again.  Child
 * processes inherit the variable (the PyTorch peer in the benchmarks uses
 * the same kernels).
 */
#ifndef SECTORLAB_BLASCORE_H
#define SECTORLAB_BLASCORE_H

#include <stdbool.h>

/* The kernels to ask for: given OpenBLAS's choice, the user's
 * OPENBLAS_CORETYPE (NULL when unset) and what the processor runs, the name
 * to set, or NULL to leave OpenBLAS as it is. */
const char *blascore_better(const char *corename, const char *user, bool avx512, bool avx2_fma);

/* See above.  argv is main's, NULL-terminated. */
void blascore_choose(char **argv);

/* The kernels OpenBLAS runs, e.g. "SkylakeX". */
const char *blascore_name(void);

#endif
