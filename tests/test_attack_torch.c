/*
 * Tests for attack against PyTorch: a network trained by PyTorch, written as
 * safetensors from Python and loaded with checkpoint_load, must lose the
 * same accuracy to the same recipe in sectorlab as in a straightforward
 * PyTorch implementation (tests/torch_reference.py), within half a point.
 * Runs when Debian's python3-torch is installed (/usr/bin/python3, not a
 * python3 earlier on PATH); skipped visibly otherwise.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "sectorlab/attack.h"
#include "sectorlab/checkpoint.h"
#include "sectorlab/data.h"
#include "testutil.h"

#define PYTHON "/usr/bin/python3"
#define N_IMAGES 1000

static bool have_torch(void)
{
	return system(PYTHON " -c 'import torch' >/dev/null 2>&1") == 0;
}

/* The number after "key": in text (first occurrence after from). */
static double json_number(const char *text, const char *from, const char *key)
{
	const char *p = strstr(text, from);
	assert_non_null(p);
	char pat[64];
	snprintf(pat, sizeof pat, "\"%s\": ", key);
	p = strstr(p, pat);
	assert_non_null(p);
	return strtod(p + strlen(pat), NULL);
}

static void test_agrees_with_pytorch(void **state)
{
	(void)state;
	if (!have_torch()) {
		print_message("python3-torch not installed (apt-get install python3-torch): "
			      "skipping\n");
		skip();
	}
	char *dir = tu_tmpdir();
	char *ckpt = tu_path(dir, "torch_mlp.safetensors");
	char cmd[2048];
	snprintf(cmd, sizeof cmd, PYTHON " tests/torch_reference.py check %s %s --n %d --epochs 1",
		 tu_sample_data(), ckpt, N_IMAGES);
	FILE *p = popen(cmd, "r");
	assert_non_null(p);
	static char out[1 << 14];
	size_t len = fread(out, 1, sizeof out - 1, p);
	out[len] = '\0';
	int st = pclose(p);
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		fail_msg("%s failed:\n%s", cmd, out);

	struct nn_net *net = NULL;
	struct checkpoint_info info = {0};
	struct sl_error err;
	if (checkpoint_load(ckpt, 500, &net, &info, &err) != SL_OK)
		fail_msg("checkpoint_load: %s", err.msg);
	struct sl_dataset test = {0};
	assert_int_equal(data_load(DATA_MNIST, tu_sample_data(), false, &test, &err), SL_OK);

	/* The recipes of torch_reference.py's RECIPES, by name. */
	struct {
		const char *name;
		struct attack_recipe r;
	} cases[4];
	cases[0].name = "fgsm";
	cases[0].r = attack_recipe_fgsm(0.1f);
	cases[1].name = "pgd_inf";
	cases[1].r = attack_recipe_pgd(ATTACK_NORM_INF, 0.1f, 20);
	cases[1].r.step_size = 0.01f;
	cases[2].name = "fgm";
	cases[2].r = attack_recipe_fgm(1.5f);
	cases[3].name = "paper_code";
	assert_int_equal(attack_preset("paper-code", &cases[3].r, NULL), SL_OK);
	cases[3].r.eps = 1.0f;
	for (int i = 0; i < 4; i++) {
		char from[64];
		snprintf(from, sizeof from, "\"%s\":", cases[i].name);
		double clean = json_number(out, from, "clean_accuracy");
		double robust = json_number(out, from, "robust_accuracy");
		struct attack_result res;
		float eps = cases[i].r.eps;
		assert_int_equal(attack_sweep(net, &test, N_IMAGES, &cases[i].r, &eps, 1, NULL, NULL,
					      &res, &err),
				 SL_OK);
		print_message("%-10s clean %.2f%% (PyTorch %.2f%%), robust %.2f%% (PyTorch %.2f%%)\n",
			      cases[i].name, 100 * res.clean_accuracy, 100 * clean,
			      100 * res.robust_accuracy, 100 * robust);
		assert_int_equal(res.n, N_IMAGES);
		assert_close(res.clean_accuracy, clean, 0.001);
		assert_close(res.robust_accuracy, robust, 0.005);
		assert_true(res.robust_accuracy < res.clean_accuracy); /* the attacks bite */
	}
	data_free(&test);
	checkpoint_info_free(&info);
	nn_free(net);
	free(ckpt);
	tu_rmrf(dir);
	free(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_agrees_with_pytorch),
	};
	return cmocka_run_group_tests_name("attack_torch", tests, NULL, NULL);
}
