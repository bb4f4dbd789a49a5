/* Tests for io: atomic writes, and what each kind of output target gets. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <unistd.h>

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

/* A replaced file keeps its permission bits (a private checkpoint stays
 * private). */
static void test_replace_keeps_mode(void **state)
{
	char *path = tu_path(*state, "private.bin");
	assert_int_equal(io_write_file(path, "first", 5, NULL), SL_OK);
	assert_int_equal(chmod(path, 0600), 0);
	assert_int_equal(io_write_file(path, "second", 6, NULL), SL_OK);
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
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

/* A symbolic link stays a link; the file it points to gets the bytes,
 * atomically (no temporary file left beside either). */
static void test_symlink_target_written(void **state)
{
	char *target = tu_path(*state, "target.txt"), *link = tu_path(*state, "link.txt");
	assert_int_equal(tu_write_file(target, "old", 3), 0);
	assert_int_equal(symlink("target.txt", link), 0);
	assert_int_equal(io_write_file(link, "new!", 4, NULL), SL_OK);
	struct stat st;
	assert_int_equal(lstat(link, &st), 0);
	assert_true(S_ISLNK(st.st_mode));
	char *text = tu_read_file(target, NULL);
	assert_string_equal(text, "new!");
	free(text);
	assert_int_equal(count_entries(*state), 2);
	/* A link to nothing yet: the file it names is created. */
	char *dangling = tu_path(*state, "dangling.txt"), *made = tu_path(*state, "made.txt");
	assert_int_equal(symlink("made.txt", dangling), 0);
	assert_int_equal(io_write_file(dangling, "x", 1, NULL), SL_OK);
	assert_int_equal(lstat(dangling, &st), 0);
	assert_true(S_ISLNK(st.st_mode));
	text = tu_read_file(made, NULL);
	assert_string_equal(text, "x");
	free(text);
	tu_assert_no_temp_files(*state);
	free(target);
	free(link);
	free(dangling);
	free(made);
}

/* A FIFO is written through, not replaced by a regular file. */
static void test_fifo_written_through(void **state)
{
	char *fifo = tu_path(*state, "pipe");
	assert_int_equal(mkfifo(fifo, 0600), 0);
	int rd = open(fifo, O_RDONLY | O_NONBLOCK); /* a reader, so opening to write does not wait */
	assert_true(rd >= 0);
	assert_int_equal(io_probe(fifo, NULL), SL_OK);
	assert_int_equal(io_write_file(fifo, "through", 7, NULL), SL_OK);
	char buf[16] = "";
	assert_int_equal(read(rd, buf, sizeof buf), 7);
	assert_memory_equal(buf, "through", 7);
	close(rd);
	struct stat st;
	assert_int_equal(lstat(fifo, &st), 0);
	assert_true(S_ISFIFO(st.st_mode));
	assert_int_equal(count_entries(*state), 1);
	free(fifo);
}

/* A character device (a null device made here, so the system's own is never
 * at risk) is written through and stays a device; /dev/full reports its
 * error. */
static void test_device_written_through(void **state)
{
	char *dev = tu_path(*state, "null");
	if (mknod(dev, S_IFCHR | 0666, makedev(1, 3)) != 0) {
		free(dev);
		print_message("cannot make a device node here (not root?): skipping\n");
		skip();
	}
	assert_int_equal(io_probe(dev, NULL), SL_OK);
	assert_int_equal(io_write_file(dev, "gone", 4, NULL), SL_OK);
	struct stat st;
	assert_int_equal(lstat(dev, &st), 0);
	assert_true(S_ISCHR(st.st_mode));
	assert_int_equal(count_entries(*state), 1);
	free(dev);
	struct sl_error err;
	if (access("/dev/full", W_OK) == 0) {
		assert_int_equal(io_write_file("/dev/full", "x", 1, &err), SL_ERR_IO);
		assert_non_null(strstr(err.msg, strerror(ENOSPC)));
	}
}

/* Directories, names ending in '/', the empty name and sockets are refused
 * as bad arguments, by the probe and by the writer alike. */
static void test_refused_targets(void **state)
{
	char *sub = tu_path(*state, "sub"), *slash = tu_path(*state, "new/");
	char *sock = tu_path(*state, "sock");
	assert_int_equal(mkdir(sub, 0700), 0);
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	snprintf(addr.sun_path, sizeof addr.sun_path, "%s", sock);
	assert_int_equal(bind(fd, (struct sockaddr *)&addr, sizeof addr), 0);
	const char *bad[] = {sub, slash, "", sock};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		struct sl_error err;
		assert_int_equal(io_probe(bad[i], &err), SL_ERR_ARG);
		assert_int_equal(io_write_file(bad[i], "x", 1, &err), SL_ERR_ARG);
		if (*bad[i])
			assert_non_null(strstr(err.msg, bad[i]));
	}
	close(fd);
	assert_int_equal(count_entries(*state), 2); /* sub and sock, nothing more */
	free(sub);
	free(slash);
	free(sock);
}

static bool same(const char *a, const char *b)
{
	struct io_target ta, tb;
	assert_int_equal(io_target_find(a, &ta, NULL), SL_OK);
	assert_int_equal(io_target_find(b, &tb, NULL), SL_OK);
	bool r = io_target_same(&ta, &tb);
	io_target_free(&ta);
	io_target_free(&tb);
	return r;
}

/* Same file means the same file, not the same string. */
static void test_same_file(void **state)
{
	const char *dir = *state;
	char *a = tu_path(dir, "a"), *soft = tu_path(dir, "l"), *hard = tu_path(dir, "h");
	char *b = tu_path(dir, "b"), *dotted = tu_path(dir, "sub/../a");
	char *sub = tu_path(dir, "sub"), *new1 = tu_path(dir, "n"), *new2 = tu_path(dir, "sub/../n");
	char *newlink = tu_path(dir, "nl");
	assert_int_equal(mkdir(sub, 0700), 0);
	assert_int_equal(tu_write_file(a, "a", 1), 0);
	assert_int_equal(tu_write_file(b, "b", 1), 0);
	assert_int_equal(symlink("a", soft), 0);
	assert_int_equal(link(a, hard), 0);
	assert_int_equal(symlink("n", newlink), 0);
	assert_true(same(a, soft));
	assert_true(same(a, hard));
	assert_true(same(a, dotted));
	assert_false(same(a, b));
	assert_true(same(new1, new2));   /* neither exists yet */
	assert_true(same(new1, newlink)); /* a link to where n will be */
	assert_false(same(new1, a));
	free(a);
	free(soft);
	free(hard);
	free(b);
	free(dotted);
	free(sub);
	free(new1);
	free(new2);
	free(newlink);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_atomic_write_and_replace, tu_setup_tmpdir, tu_teardown_tmpdir),
		cmocka_unit_test_setup_teardown(test_replace_keeps_mode, tu_setup_tmpdir, tu_teardown_tmpdir),
		cmocka_unit_test_setup_teardown(test_abort_keeps_old_file, tu_setup_tmpdir, tu_teardown_tmpdir),
		cmocka_unit_test_setup_teardown(test_unwritable_directory, tu_setup_tmpdir, tu_teardown_tmpdir),
		cmocka_unit_test_setup_teardown(test_names_up_to_name_max, tu_setup_tmpdir,
						tu_teardown_tmpdir),
		cmocka_unit_test_setup_teardown(test_symlink_target_written, tu_setup_tmpdir, tu_teardown_tmpdir),
		cmocka_unit_test_setup_teardown(test_fifo_written_through, tu_setup_tmpdir, tu_teardown_tmpdir),
		cmocka_unit_test_setup_teardown(test_device_written_through, tu_setup_tmpdir, tu_teardown_tmpdir),
		cmocka_unit_test_setup_teardown(test_refused_targets, tu_setup_tmpdir, tu_teardown_tmpdir),
		cmocka_unit_test_setup_teardown(test_same_file, tu_setup_tmpdir, tu_teardown_tmpdir),
	};
	return cmocka_run_group_tests_name("io", tests, NULL, NULL);
}
