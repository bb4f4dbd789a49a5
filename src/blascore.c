/* blascore: OpenBLAS's kernels matched to the processor (see blascore.h). */
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <cblas.h>

#include "sectorlab/blascore.h"

const char *blascore_better(const char *corename, const char *user, bool avx512, bool avx2_fma)
{
	if (user || !corename || strcasecmp(corename, "prescott") != 0)
		return NULL;
	return avx512 ? "SkylakeX" : avx2_fma ? "Haswell" : NULL;
}

void blascore_choose(char **argv)
{
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
	__builtin_cpu_init();
	/* SkylakeX's kernels use the AVX-512 foundation with its byte/word,
	 * vector-length, doubleword/quadword and conflict-detection parts;
	 * __builtin_cpu_supports also checks that the system saves those
	 * registers. */
	bool avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
		      __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
		      __builtin_cpu_supports("avx512cd");
	bool avx2_fma = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
	const char *want = blascore_better(openblas_get_corename(), getenv("OPENBLAS_CORETYPE"),
					   avx512, avx2_fma);
	if (!want || !argv || !argv[0] || setenv("OPENBLAS_CORETYPE", want, 1) != 0)
		return;
	execv("/proc/self/exe", argv);
	/* Not executed: go on as loaded.  The variable stays set, so children
	 * get the better kernels at least. */
#else
	(void)argv;
#endif
}

const char *blascore_name(void)
{
	return openblas_get_corename();
}
