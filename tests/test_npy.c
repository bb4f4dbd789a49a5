/* Tests for npy: the exact .npy header, round trips of arrays and .npz
 * archives, corrupt input refused, and NumPy itself reading the files when
 * Debian's python3-numpy is installed. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "sectorlab/npy.h"
#include "testutil.h"

static void test_header_bytes(void **state)
{
	(void)state;
	float data[6] = {1, 2, 3, 4, 5, 6.5f};
	size_t shape[2] = {2, 3};
	void *buf;
	size_t len;
	assert_int_equal(npy_encode(NPY_TYPE_F32, 2, shape, data, &buf, &len, NULL), SL_OK);
	const unsigned char *b = buf;
	assert_memory_equal(b, "\x93NUMPY\x01\x00", 8);
	size_t hlen = b[8] | (size_t)b[9] << 8;
	assert_int_equal((10 + hlen) % 64, 0);
	assert_int_equal(len, 10 + hlen + sizeof data);
	const char *dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";
	assert_memory_equal(b + 10, dict, strlen(dict));
	for (size_t k = 10 + strlen(dict); k < 10 + hlen - 1; k++)
		assert_int_equal(b[k], ' ');
	assert_int_equal(b[10 + hlen - 1], '\n');
	/* little-endian 1.0f */
	assert_memory_equal(b + 10 + hlen, "\x00\x00\x80\x3f", 4);
	free(buf);

	/* One dimension is "(n,)", zero dimensions "()". */
	int32_t v[3] = {7, -1, 2};
	size_t n3[1] = {3};
	assert_int_equal(npy_encode(NPY_TYPE_I32, 1, n3, v, &buf, &len, NULL), SL_OK);
	assert_non_null(strstr((const char *)buf + 10, "'descr': '<i4'"));
	assert_non_null(strstr((const char *)buf + 10, "'shape': (3,), }"));
	free(buf);
	assert_int_equal(npy_encode(NPY_TYPE_F32, 0, NULL, data, &buf, &len, NULL), SL_OK);
	assert_non_null(strstr((const char *)buf + 10, "'shape': (), }"));
	free(buf);
}

static void test_file_round_trip(void **state)
{
	const char *dir = *state;
	enum { N = 2 * 1 * 28 * 28 };
	float *x = malloc(sizeof(float) * N);
	for (int k = 0; k < N; k++)
		x[k] = (float)k / N - 0.5f;
	size_t shape[4] = {2, 1, 28, 28};
	char *path = tu_path(dir, "x.npy");
	assert_int_equal(npy_write(path, NPY_TYPE_F32, 4, shape, x, NULL), SL_OK);
	struct npy_array a;
	assert_int_equal(npy_read(path, &a, NULL), SL_OK);
	assert_int_equal(a.type, NPY_TYPE_F32);
	assert_int_equal(a.ndim, 4);
	assert_memory_equal(a.shape, shape, sizeof shape);
	assert_memory_equal(a.data, x, sizeof(float) * N);
	assert_int_equal(npy_count(a.ndim, a.shape), N);
	npy_array_free(&a);
	free(path);
	free(x);
}

static void test_corrupt_npy(void **state)
{
	(void)state;
	int32_t v[4] = {1, 2, 3, 4};
	size_t shape[1] = {4};
	void *buf;
	size_t len;
	assert_int_equal(npy_encode(NPY_TYPE_I32, 1, shape, v, &buf, &len, NULL), SL_OK);
	struct npy_array a;
	struct sl_error err;
	/* short data */
	assert_int_equal(npy_decode(buf, len - 1, &a, &err), SL_ERR_FORMAT);
	assert_non_null(strstr(err.msg, "data bytes"));
	/* bad magic */
	unsigned char *b = buf;
	b[1] = 'X';
	assert_int_equal(npy_decode(buf, len, &a, &err), SL_ERR_FORMAT);
	b[1] = 'N';
	/* a dtype we do not read, Fortran order */
	char *descr = strstr((char *)buf + 10, "<i4");
	descr[1] = 'f', descr[2] = '8';
	assert_int_equal(npy_decode(buf, len, &a, &err), SL_ERR_UNSUPPORTED);
	assert_non_null(strstr(err.msg, "<f8"));
	descr[1] = 'i', descr[2] = '4';
	char *order = strstr((char *)buf + 10, "False");
	memcpy(order, "True ", 5);
	assert_int_equal(npy_decode(buf, len, &a, &err), SL_ERR_UNSUPPORTED);
	memcpy(order, "False", 5);
	/* header length past the end */
	b[8] = 0xff, b[9] = 0x7f;
	assert_int_equal(npy_decode(buf, len, &a, &err), SL_ERR_FORMAT);
	assert_int_equal(npy_decode(buf, 5, &a, &err), SL_ERR_FORMAT);
	assert_null(a.data);
	free(buf);
}

static void write_archive(const char *path)
{
	struct npz_writer *z;
	assert_int_equal(npz_open(path, &z, NULL), SL_OK);
	float adv[2 * 3] = {0.5f, -0.5f, 0.25f, 0, 0.125f, -0.25f};
	int32_t labels[2] = {7, 3};
	size_t s2[2] = {2, 3}, s1[1] = {2};
	assert_int_equal(npz_add_array(z, "adv_eps0.1", NPY_TYPE_F32, 2, s2, adv, NULL), SL_OK);
	assert_int_equal(npz_add_array(z, "labels", NPY_TYPE_I32, 1, s1, labels, NULL), SL_OK);
	const char *json = "{\"attack\":\"pgd\",\"eps\":[0.1]}";
	assert_int_equal(npz_add_bytes(z, "recipe.json", json, strlen(json), NULL), SL_OK);
	assert_int_equal(npz_commit(z, NULL), SL_OK);
}

static void test_npz_round_trip(void **state)
{
	const char *dir = *state;
	char *path = tu_path(dir, "run.npz");
	write_archive(path);
	struct npy_array a;
	assert_int_equal(npz_read_array(path, "adv_eps0.1", &a, NULL), SL_OK);
	assert_int_equal(a.ndim, 2);
	assert_int_equal(a.shape[1], 3);
	assert_close(((float *)a.data)[4], 0.125, 0);
	npy_array_free(&a);
	assert_int_equal(npz_read_array(path, "labels", &a, NULL), SL_OK);
	assert_int_equal(a.type, NPY_TYPE_I32);
	assert_int_equal(((int32_t *)a.data)[0], 7);
	npy_array_free(&a);
	char *json;
	size_t len;
	assert_int_equal(npz_read_bytes(path, "recipe.json", &json, &len, NULL), SL_OK);
	assert_string_equal(json, "{\"attack\":\"pgd\",\"eps\":[0.1]}");
	free(json);
	struct sl_error err;
	assert_int_equal(npz_read_array(path, "clean", &a, &err), SL_ERR_ARG);
	assert_non_null(strstr(err.msg, "no member clean.npy"));

	/* A flipped byte in a member fails its CRC. */
	FILE *f = fopen(path, "r+b");
	fseek(f, 180, SEEK_SET); /* inside adv_eps0.1's data */
	int c = fgetc(f);
	fseek(f, 180, SEEK_SET);
	fputc(c ^ 0x40, f);
	fclose(f);
	assert_int_equal(npz_read_array(path, "adv_eps0.1", &a, &err), SL_ERR_FORMAT);
	assert_non_null(strstr(err.msg, "CRC"));

	/* Not a zip at all; an archive that cannot be written. */
	char *text = tu_path(dir, "text.npz");
	assert_int_equal(tu_write_file(text, "not a zip file, only text here", 30), 0);
	assert_int_equal(npz_read_array(text, "labels", &a, &err), SL_ERR_FORMAT);
	char *nowhere = tu_path(dir, "no/such/run.npz");
	struct npz_writer *z;
	assert_int_equal(npz_open(nowhere, &z, &err), SL_ERR_IO);
	free(text);
	free(nowhere);
	free(path);
}

/* NumPy opens both kinds of file (skipped when Debian's numpy is absent). */
static void test_numpy_reads_them(void **state)
{
	const char *dir = *state;
	if (system("/usr/bin/python3 -c 'import numpy' >/dev/null 2>&1") != 0) {
		print_message("python3-numpy not installed: skipping\n");
		skip();
	}
	char *npz = tu_path(dir, "run.npz"), *npy = tu_path(dir, "x.npy");
	write_archive(npz);
	float x[3] = {1.5f, -2, 0.25f};
	size_t shape[1] = {3};
	assert_int_equal(npy_write(npy, NPY_TYPE_F32, 1, shape, x, NULL), SL_OK);
	char cmd[2048];
	snprintf(cmd, sizeof cmd,
		 "/usr/bin/python3 -c \""
		 "import numpy as np, json\n"
		 "z = np.load('%s')\n"
		 "a = z['adv_eps0.1']; l = z['labels']\n"
		 "assert a.dtype == np.float32 and a.shape == (2, 3) and a[1, 1] == 0.125\n"
		 "assert l.dtype == np.int32 and list(l) == [7, 3]\n"
		 "assert json.loads(bytes(z['recipe.json']))['attack'] == 'pgd'\n"
		 "x = np.load('%s')\n"
		 "assert x.dtype == np.float32 and list(x) == [1.5, -2, 0.25]\n"
		 "\"",
		 npz, npy);
	int st = system(cmd);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	free(npz);
	free(npy);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_header_bytes),
		cmocka_unit_test_setup_teardown(test_file_round_trip, tu_setup_tmpdir, tu_teardown_tmpdir),
		cmocka_unit_test(test_corrupt_npy),
		cmocka_unit_test_setup_teardown(test_npz_round_trip, tu_setup_tmpdir, tu_teardown_tmpdir),
		cmocka_unit_test_setup_teardown(test_numpy_reads_them, tu_setup_tmpdir, tu_teardown_tmpdir),
	};
	return cmocka_run_group_tests_name("npy", tests, NULL, NULL);
}
