/* test_blascore: OpenBLAS's kernels matched to the processor (blascore.h). */
#include "testutil.h"

#include <stdio.h>
#include <string.h>

#include "sectorlab/blascore.h"

/* Only a fallback to Prescott is replaced, only by kernels the processor
 * runs, and never over the user's own choice. */
static void test_choice(void **state)
{
	(void)state;
	assert_string_equal(blascore_better("Prescott", NULL, true, true), "SkylakeX");
	assert_string_equal(blascore_better("prescott", NULL, false, true), "Haswell");
	assert_null(blascore_better("Prescott", NULL, false, false));
	assert_null(blascore_better("Prescott", "Prescott", true, true));
	assert_null(blascore_better("Prescott", "", true, true));
	assert_null(blascore_better("SkylakeX", NULL, true, true));
	assert_null(blascore_better("Haswell", NULL, true, true));
	assert_null(blascore_better("Zen", NULL, false, true));
	assert_null(blascore_better(NULL, NULL, true, true));
}

/* `sectorlab --version` (it names the kernels) run with env_args before it. */
static void version_with(const char *env_args, char *out, size_t cap)
{
	char cmd[1024];
	snprintf(cmd, sizeof cmd, "env %s '%s' --version", env_args, tu_program());
	FILE *p = popen(cmd, "r");
	assert_non_null(p);
	size_t n = fread(out, 1, cap - 1, p);
	out[n] = '\0';
	assert_int_equal(pclose(p), 0);
	assert_non_null(strstr(out, "OpenBLAS"));
}

/* The program as a user starts it: with no OPENBLAS_CORETYPE it never runs
 * the SSE3 fallback on a processor with AVX2 and FMA; a user's choice is
 * kept. */
static void test_program_kernels(void **state)
{
	(void)state;
	char out[512];
#if defined(__x86_64__)
	__builtin_cpu_init();
	if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
		version_with("-u OPENBLAS_CORETYPE", out, sizeof out);
		assert_null(strstr(out, "Prescott"));
	}
#endif
	version_with("OPENBLAS_CORETYPE=Prescott", out, sizeof out);
	assert_non_null(strstr(out, "Prescott kernels"));
}

int main(int argc, char **argv)
{
	(void)argc;
	tu_find_program(argv[0]);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_choice),
		cmocka_unit_test(test_program_kernels),
	};
	return cmocka_run_group_tests_name("blascore", tests, NULL, NULL);
}
