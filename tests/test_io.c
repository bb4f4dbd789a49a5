/* Tests for io and checkpoint: atomic writes and the safetensors layout. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "sectorlab/checkpoint.h"
#include "sectorlab/io.h"
#include "testutil.h"

static int make_dir(void **state)
{
	*state = tu_tmpdir();
	return *state ? 0 : -1;
}

static int remove_dir(void **state)
{
	tu_rmrf(*state);
	free(*state);
	return 0;
}

static char *slurp(const char *path, size_t *n)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	long len = ftell(f);
	fseek(f, 0, SEEK_SET);
	char *buf = malloc((size_t)len + 1);
	*n = fread(buf, 1, (size_t)len, f);
	buf[*n] = '\0';
	fclose(f);
	return buf;
}

static int count_entries(const char *dir)
{
	char cmd[512];
	snprintf(cmd, sizeof cmd, "ls -A '%s' | wc -l", dir);
	FILE *p = popen(cmd, "r");
	int n = -1;
	if (p) {
		if (fscanf(p, "%d", &n) != 1)
			n = -1;
		pclose(p);
	}
	return n;
}

static void test_atomic_write_and_replace(void **state)
{
	char *path = tu_path(*state, "out.txt");
	assert_int_equal(io_write_file(path, "first", 5, NULL), SL_OK);
	assert_int_equal(io_write_file(path, "second!", 7, NULL), SL_OK);
	size_t n;
	char *text = slurp(path, &n);
	assert_int_equal(n, 7);
	assert_string_equal(text, "second!");
	assert_int_equal(count_entries(*state), 1); /* no temporary left behind */
	free(text);
	free(path);
}

static void test_abort_keeps_old_file(void **state)
{
	char *path = tu_path(*state, "keep.txt");
	assert_int_equal(io_write_file(path, "old", 3, NULL), SL_OK);
	struct io_atomic a;
	assert_int_equal(io_atomic_open(&a, path, NULL), SL_OK);
	fputs("half-written", a.f);
	io_atomic_abort(&a);
	size_t n;
	char *text = slurp(path, &n);
	assert_string_equal(text, "old");
	assert_int_equal(count_entries(*state), 1);
	free(text);
	free(path);
}

static void test_unwritable_directory(void **state)
{
	char *path = tu_path(*state, "missing/dir/out.txt");
	struct sl_error err;
	assert_int_equal(io_write_file(path, "x", 1, &err), SL_ERR_IO);
	assert_non_null(strstr(err.msg, "missing/dir/out.txt"));
	free(path);
}

/* Parse the file by hand: 8-byte little-endian header length, a JSON
 * header with PyTorch's names, shapes and offsets, then raw float32 data. */
static void test_checkpoint_layout(void **state)
{
	static const struct nn_layer_spec specs[] = {
		{NN_DENSE, 3, 2, NN_ACT_LEAKY_RELU, 0.1f},
		{NN_DENSE, 2, 2, NN_ACT_IDENTITY, 0},
	};
	struct nn_net *net;
	struct sl_rng rng;
	rng_seed(&rng, 3);
	assert_int_equal(nn_new(specs, 2, 1, &net, NULL), SL_OK);
	nn_init_glorot(net, &rng);
	net->layers[0].b[1] = 0.25f;
	nn_set_cap(net, 0, 0.1f);
	nn_update_caps(net, 50);
	assert_true(net->layers[0].scale < 1);
	char *path = tu_path(*state, "m.safetensors");
	struct checkpoint_meta meta[] = {{"model", "test \"quoted\""}, {"mode", "spnorm"}};
	assert_int_equal(checkpoint_save(net, meta, 2, path, NULL), SL_OK);

	size_t n;
	char *buf = slurp(path, &n);
	assert_true(n > 8);
	uint64_t hlen;
	memcpy(&hlen, buf, 8);
	assert_true(8 + hlen <= n);
	assert_int_equal((8 + hlen) % 8, 0);
	char *hdr = strndup(buf + 8, hlen);
	assert_non_null(strstr(hdr, "\"__metadata__\":{\"model\":\"test \\\"quoted\\\"\""));
	assert_non_null(strstr(hdr, "\"fc1.weight\":{\"dtype\":\"F32\",\"shape\":[2,3],"
				    "\"data_offsets\":[0,24]}"));
	assert_non_null(strstr(hdr, "\"fc1.bias\":{\"dtype\":\"F32\",\"shape\":[2],"
				    "\"data_offsets\":[24,32]}"));
	assert_non_null(strstr(hdr, "\"fc1.weight_orig\""));
	assert_non_null(strstr(hdr, "\"fc1.weight_u\""));
	assert_non_null(strstr(hdr, "\"fc1.weight_v\""));
	assert_non_null(strstr(hdr, "\"fc2.weight\""));
	assert_null(strstr(hdr, "\"fc2.weight_orig\"")); /* uncapped layer */
	const char *data = buf + 8 + hlen;
	float w[6], b[2];
	memcpy(w, data, sizeof w);
	memcpy(b, data + 24, sizeof b);
	/* fc1.weight is the weight in use: W_eff, not the raw W. */
	for (int k = 0; k < 6; k++)
		assert_close(w[k], net->layers[0].w_eff[k], 0);
	assert_close(b[1], 0.25, 0);
	free(hdr);
	free(buf);
	free(path);
	nn_free(net);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_atomic_write_and_replace, make_dir, remove_dir),
		cmocka_unit_test_setup_teardown(test_abort_keeps_old_file, make_dir, remove_dir),
		cmocka_unit_test_setup_teardown(test_unwritable_directory, make_dir, remove_dir),
		cmocka_unit_test_setup_teardown(test_checkpoint_layout, make_dir, remove_dir),
	};
	return cmocka_run_group_tests_name("io", tests, NULL, NULL);
}
