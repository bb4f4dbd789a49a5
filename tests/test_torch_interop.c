/*
 * Tests for reading PyTorch's files as they are (checkpoint_load_arch) and
 * for networks described by layer specs, against PyTorch itself:
 *   - for each naming style (fc1..., nn.Sequential, nested net.N with
 *     indices past 9, features/classifier with a conv, both spectral norms)
 *     and each dtype (F32, F16, BF16, F64), a network trained and saved by
 *     PyTorch without sectorlab's metadata (tests/torch_interop.py) loads, its
 *     logits on real MNIST test images match PyTorch's within 1e-4, and
 *     `certify` and `attack` run on it;
 *   - malformed and ambiguous files are refused naming the tensor, and the
 *     ambiguous one with the --arch to pass;
 *   - a 5-layer MLP described by a spec trains, certifies and round-trips to
 *     PyTorch (tests/torch_roundtrip.py);
 *   - the README's "From PyTorch" script (examples/from_pytorch.py) runs and
 *     its network is certified and attacked with the README's commands.
 * Runs when Debian's python3-torch is installed (CI installs it: make
 * deps-test); skipped visibly otherwise.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sectorlab/checkpoint.h"
#include "sectorlab/data.h"
#include "sectorlab/model.h"
#include "testutil.h"

#define PYTHON "/usr/bin/python3"
#define N_IMAGES 200

static bool have_torch(void)
{
	return access(PYTHON, X_OK) == 0 && system(PYTHON " -c 'import torch' >/dev/null 2>&1") == 0;
}

#define REQUIRE_TORCH()                                                                    \
	do {                                                                               \
		if (!have_torch()) {                                                       \
			print_message("python3-torch not installed (make deps-test): "     \
				      "skipping\n");                                       \
			skip();                                                            \
		}                                                                          \
	} while (0)

/* Run a shell command; its output (stdout and stderr) into out. */
static int shell(const char *cmd, char *out, size_t cap)
{
	char full[8192];
	snprintf(full, sizeof full, "%s 2>&1", cmd);
	FILE *p = popen(full, "r");
	assert_non_null(p);
	size_t n = fread(out, 1, cap - 1, p);
	out[n] = '\0';
	return pclose(p);
}

static char out[1 << 16];

/* The logits of the first n test images of the MNIST sample. */
static float *sectorlab_logits(struct nn_net *net, int n)
{
	struct sl_dataset test = {0};
	assert_int_equal(data_load(DATA_MNIST, tu_sample_data(), false, &test, NULL), SL_OK);
	size_t dim = data_dim(&test);
	float *x = malloc(sizeof(float) * dim * (size_t)n);
	int *y = malloc(sizeof(int) * (size_t)n);
	float *z = malloc(sizeof(float) * (size_t)n * (size_t)net->out_dim);
	assert_non_null(x);
	assert_non_null(z);
	data_batch(&test, NULL, (size_t)n, x, y);
	for (int s = 0; s < n; s += net->max_batch) {
		int b = n - s < net->max_batch ? n - s : net->max_batch;
		memcpy(z + (size_t)s * net->out_dim, nn_forward(net, x + (size_t)s * dim, b),
		       sizeof(float) * (size_t)b * net->out_dim);
	}
	free(x);
	free(y);
	data_free(&test);
	return z;
}

/* Split a manifest line on tabs into at most max fields. */
static int fields(char *line, char **f, int max)
{
	int n = 0;
	for (char *save = NULL, *t = strtok_r(line, "\t\n", &save); t && n < max;
	     t = strtok_r(NULL, "\t\n", &save))
		f[n++] = t;
	return n;
}

static void test_pytorch_files(void **state)
{
	REQUIRE_TORCH();
	const char *dir = *state;
	char cmd[4096];
	snprintf(cmd, sizeof cmd, PYTHON " tests/torch_interop.py %s %s %d", tu_sample_data(), dir,
		 N_IMAGES);
	if (shell(cmd, out, sizeof out) != 0)
		fail_msg("%s failed:\n%s", cmd, out);
	print_message("%s", out);
	char *mpath = tu_path(dir, "manifest");
	size_t mlen;
	char *manifest = tu_read_file(mpath, &mlen);
	assert_non_null(manifest);
	int good = 0, bad = 0;
	for (char *save = NULL, *line = strtok_r(manifest, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		char *f[5];
		char copy[4096];
		snprintf(copy, sizeof copy, "%s", line);
		int nf = fields(copy, f, 5);
		assert_int_equal(nf, 5);
		bool is_good = strcmp(f[0], "good") == 0;
		const char *style = f[1], *path = f[2], *spec = is_good ? f[4] : f[3];
		struct arch arch;
		bool hint = strcmp(spec, "-") != 0;
		if (hint && model_arch(spec, &arch, NULL) != SL_OK)
			fail_msg("%s: bad spec '%s'", style, spec);
		struct nn_net *net = NULL;
		struct checkpoint_info info;
		struct sl_error err;
		status_clear(&err);
		sl_status st = checkpoint_load_arch(path, hint ? &arch : NULL, 64, &net, &info, &err);
		if (!is_good) {
			if (st == SL_OK || !strstr(err.msg, f[4]))
				fail_msg("%s: loaded %d, '%s' (expected a refusal naming '%s')", style,
					 st, err.msg, f[4]);
			print_message("%-16s refused: %s\n", style, err.msg);
			assert_null(net);
			bad++;
			continue;
		}
		if (st != SL_OK)
			fail_msg("%s: %s", style, err.msg);
		const char *source = checkpoint_info_get(&info, "source");
		assert_non_null(source);
		/* Logits against PyTorch's on the same images. */
		size_t zlen;
		float *want = (float *)tu_read_file(f[3], &zlen);
		assert_int_equal(zlen, sizeof(float) * 10 * N_IMAGES);
		float *got = sectorlab_logits(net, N_IMAGES);
		double worst = 0;
		for (int k = 0; k < 10 * N_IMAGES; k++)
			worst = fmax(worst, fabs((double)got[k] - want[k]));
		print_message("%-16s max |logit difference| %.3g over %d images (%s)\n", style, worst,
			      N_IMAGES, source);
		if (!(worst <= 1e-4))
			fail_msg("%s: logits differ from PyTorch's by %g", style, worst);
		if (!hint)
			assert_non_null(strstr(source, "fit exactly one built-in model, mlp"));
		free(got);
		free(want);
		nn_free(net);
		checkpoint_info_free(&info);
		/* The commands run on it. */
		char args[4096], arch_opt[1200] = "";
		if (hint)
			snprintf(arch_opt, sizeof arch_opt, " --arch '%s'", spec);
		snprintf(args, sizeof args, "certify --model %s%s --n %d", path, arch_opt, N_IMAGES);
		int rc = tu_run(args, true, out, sizeof out);
		if (rc != 0 || !strstr(out, "certified accuracy"))
			fail_msg("sectorlab %s: exit %d\n%s", args, rc, out);
		snprintf(args, sizeof args, "attack --model %s%s --n %d --eps 0.1 --steps 10 --quiet",
			 path, arch_opt, N_IMAGES);
		rc = tu_run(args, true, out, sizeof out);
		if (rc != 0 || !strstr(out, "robust"))
			fail_msg("sectorlab %s: exit %d\n%s", args, rc, out);
		good++;
	}
	assert_int_equal(good, 5);
	assert_true(bad >= 5);
	/* The command line says the same, and exits 2 for a missing --arch. */
	char *ambiguous = tu_path(dir, "no_arch.safetensors");
	snprintf(cmd, sizeof cmd, "certify --model %s", ambiguous);
	assert_int_equal(tu_run(cmd, true, out, sizeof out), 2);
	assert_non_null(strstr(out, "found 1 dense [64, 784], 3 dense [32, 64], 5 dense [10, 32]"));
	free(ambiguous);
	free(manifest);
	free(mpath);
}

/* A 5-layer MLP described by a spec trains, certifies, describes itself in
 * its metadata and round-trips to PyTorch. */
static void test_spec_mlp_round_trip(void **state)
{
	REQUIRE_TORCH();
	const char *dir = *state;
	char *ckpt = tu_path(dir, "deep.safetensors");
	char args[4096];
	snprintf(args, sizeof args,
		 "train --arch 784-64-48-32-24-10 --mode spnorm --epochs 1 --holdout 0 --eps 0 "
		 "--out %s",
		 ckpt);
	int rc = tu_run(args, true, out, sizeof out);
	if (rc != 0)
		fail_msg("sectorlab %s: exit %d\n%s", args, rc, out);
	snprintf(args, sizeof args, "certify --model %s --n 500", ckpt);
	rc = tu_run(args, true, out, sizeof out);
	if (rc != 0 || !strstr(out, "fc5"))
		fail_msg("sectorlab %s: exit %d\n%s", args, rc, out);
	print_message("%s", strstr(out, "sector (") ? strstr(out, "sector (") : out);
	struct nn_net *net;
	struct checkpoint_info info;
	struct sl_error err;
	if (checkpoint_load(ckpt, 50, &net, &info, &err) != SL_OK)
		fail_msg("%s", err.msg);
	assert_string_equal(checkpoint_info_get(&info, "model"), "custom");
	assert_string_equal(checkpoint_info_get(&info, "arch"),
			    "input 1x28x28, dense 64, leaky:0.1, dense 48, leaky:0.1, dense 32, "
			    "leaky:0.1, dense 24, leaky:0.1, dense 10");
	assert_int_equal(net->nlayers, 5);
	/* The same spec given with --arch agrees with the file; another does not. */
	struct arch a;
	assert_int_equal(arch_parse("784-64-48-32-24-10", &a, NULL), SL_OK);
	struct nn_net *again;
	assert_int_equal(checkpoint_load_arch(ckpt, &a, 4, &again, NULL, &err), SL_OK);
	nn_free(again);
	assert_int_equal(arch_parse("784-64-48-32-10", &a, NULL), SL_OK);
	assert_int_equal(checkpoint_load_arch(ckpt, &a, 4, &again, NULL, &err), SL_ERR_ARG);
	assert_non_null(strstr(err.msg, "not as --arch"));
	/* PyTorch builds the network from the metadata and agrees. */
	float *z = sectorlab_logits(net, N_IMAGES);
	struct sl_dataset test = {0};
	assert_int_equal(data_load(DATA_MNIST, tu_sample_data(), false, &test, NULL), SL_OK);
	float *x = malloc(sizeof(float) * 784 * N_IMAGES);
	int y[N_IMAGES];
	data_batch(&test, NULL, N_IMAGES, x, y);
	char *images = tu_path(dir, "images.f32"), *logits = tu_path(dir, "logits.f32");
	assert_int_equal(tu_write_file(images, x, sizeof(float) * 784 * N_IMAGES), 0);
	assert_int_equal(tu_write_file(logits, z, sizeof(float) * 10 * N_IMAGES), 0);
	char cmd[4096];
	snprintf(cmd, sizeof cmd, PYTHON " tests/torch_roundtrip.py %s %s %s %d", ckpt, images,
		 logits, N_IMAGES);
	rc = shell(cmd, out, sizeof out);
	print_message("%s", out);
	assert_int_equal(rc, 0);
	free(x);
	free(z);
	free(images);
	free(logits);
	data_free(&test);
	nn_free(net);
	checkpoint_info_free(&info);
	free(ckpt);
}

/* The README's "From PyTorch" section, as written. */
static void test_readme_script(void **state)
{
	REQUIRE_TORCH();
	const char *dir = *state;
	char *ckpt = tu_path(dir, "mnist_torch.safetensors");
	char cmd[4096];
	snprintf(cmd, sizeof cmd, PYTHON " examples/from_pytorch.py %s %s --epochs 1",
		 tu_sample_data(), ckpt);
	if (shell(cmd, out, sizeof out) != 0)
		fail_msg("%s failed:\n%s", cmd, out);
	char args[4096];
	snprintf(args, sizeof args, "certify --model %s --arch 784-128-64-10 --n 500", ckpt);
	int rc = tu_run(args, true, out, sizeof out);
	if (rc != 0 || !strstr(out, "certified accuracy"))
		fail_msg("sectorlab %s: exit %d\n%s", args, rc, out);
	snprintf(args, sizeof args, "attack --model %s --arch 784-128-64-10 --eps 0.1 --n 500",
		 ckpt);
	rc = tu_run(args, true, out, sizeof out);
	if (rc != 0 || !strstr(out, "robust"))
		fail_msg("sectorlab %s: exit %d\n%s", args, rc, out);
	free(ckpt);
}

int main(int argc, char **argv)
{
	(void)argc;
	tu_find_program(argv[0]);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_pytorch_files, tu_setup_tmpdir,
						tu_teardown_tmpdir),
		cmocka_unit_test_setup_teardown(test_spec_mlp_round_trip, tu_setup_tmpdir,
						tu_teardown_tmpdir),
		cmocka_unit_test_setup_teardown(test_readme_script, tu_setup_tmpdir,
						tu_teardown_tmpdir),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
