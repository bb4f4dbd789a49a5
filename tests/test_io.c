/* Tests for io: atomic writes. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "sectorlab/io.h"
#include "testutil.h"

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
	char *text = tu_read_file(path, &n);
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
	char *text = tu_read_file(path, &n);
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

/* A final name of NAME_MAX bytes (and every length below) is written: the
 * temporary name beside it stays within NAME_MAX too. */
static void test_names_up_to_name_max(void **state)
{
	for (int len = 240; len <= 255; len++) {
		char name[256];
		memset(name, 'n', (size_t)len);
		name[len] = '\0';
		char *path = tu_path(*state, name);
		struct sl_error err;
		if (io_write_file(path, "x", 1, &err) != SL_OK || io_probe(path, &err) != SL_OK)
			fail_msg("a name of %d bytes: %s", len, err.msg);
		size_t n;
		char *text = tu_read_file(path, &n);
		assert_non_null(text);
		assert_int_equal(n, 1);
		free(text);
		free(path);
	}
	assert_int_equal(count_entries(*state), 16); /* and no temporary left behind */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_atomic_write_and_replace, tu_setup_tmpdir, tu_teardown_tmpdir),
		cmocka_unit_test_setup_teardown(test_abort_keeps_old_file, tu_setup_tmpdir, tu_teardown_tmpdir),
		cmocka_unit_test_setup_teardown(test_unwritable_directory, tu_setup_tmpdir, tu_teardown_tmpdir),
		cmocka_unit_test_setup_teardown(test_names_up_to_name_max, tu_setup_tmpdir,
						tu_teardown_tmpdir),
	};
	return cmocka_run_group_tests_name("io", tests, NULL, NULL);
}
