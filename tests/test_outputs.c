/*
 * Tests for what every command does with its outputs, run as a user would:
 * outputs that collide with each other or with an input are refused before
 * any work (the same file, not the same string); directories and empty
 * names are refused by the upfront probe; devices and symbolic links are
 * written through, not replaced; standard output that cannot be written is
 * an error for every command; attack prints its results before it writes
 * its files; train --epochs 0 leaves a header-only log, never a stale one.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testutil.h"

static char *dir;   /* temporary, for the whole group */
static char *model; /* an untrained network (--epochs 0) on the embedded sample */
static char out[1 << 16];

static int run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int run(const char *fmt, ...)
{
	char args[8192];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(args, sizeof args, fmt, ap);
	va_end(ap);
	return tu_run(args, true, out, sizeof out);
}

/* Run with stdout on /dev/full (stderr captured); the exit status. */
static int run_stdout_full(const char *args)
{
	char cmd[8192];
	snprintf(cmd, sizeof cmd, "%s %s 2>&1 >/dev/full", tu_program(), args);
	FILE *p = popen(cmd, "r");
	assert_non_null(p);
	size_t n = fread(out, 1, sizeof out - 1, p);
	out[n] = '\0';
	int st = pclose(p);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void expect(int rc, int want, const char *says)
{
	if (rc != want || !strstr(out, says))
		fail_msg("exit status %d (expected %d); output lacks '%s':\n%s", rc, want, says,
			 out);
}

static int setup(void **state)
{
	(void)state;
	dir = tu_tmpdir();
	model = tu_path(dir, "m.safetensors");
	return run("train --epochs 0 --eps 0 --out %s", model) == 0 ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	tu_rmrf(dir);
	free(dir);
	free(model);
	return 0;
}

/* Outputs that are the same file as an input or as each other, however
 * spelled, are refused with exit 2 before any work; the input is intact. */
static void test_collisions_refused(void **state)
{
	(void)state;
	size_t n0;
	char *before = tu_read_file(model, &n0);
	assert_non_null(before);
	char *link = tu_path(dir, "link.safetensors");
	assert_int_equal(symlink(model, link), 0);
	expect(run("attack --model %s --csv %s --n 10", model, model), 2,
	       "is the same file as --model");
	expect(run("attack --model %s --plot %s --n 10", link, model), 2,
	       "refusing to write over an input");
	expect(run("attack --model %s --npy %s/./m.safetensors --n 10", model, dir), 2,
	       "is the same file as --model");
	expect(run("attack --model %s --csv %s/a.csv --plot %s/../%s/a.csv --n 10", model, dir,
		   dir, strrchr(dir, '/') + 1),
	       2, "give each output its own file");
	expect(run("train --out %s/x --log %s/x", dir, dir), 2, "--log");
	assert_null(strstr(out, "epoch"));
	char *conf = tu_path(dir, "run.conf");
	assert_int_equal(tu_write_file(conf, "epochs = 1\n", 11), 0);
	expect(run("train --config %s --out %s", conf, conf), 2, "--config");
	char *text = tu_read_file(conf, NULL);
	assert_string_equal(text, "epochs = 1\n");
	free(text);
	/* So is standard output when it is a file (stderr goes there too). */
	assert_int_equal(run("attack --model %s --n 10 --csv %s/t.txt > %s/t.txt", model, dir, dir),
			 2);
	char *t_txt = tu_path(dir, "t.txt"), *said = tu_read_file(t_txt, NULL);
	assert_non_null(strstr(said, "the same file as standard output"));
	free(said);
	free(t_txt);
	/* The data is an input too (a copy here: tests never write into the
	 * repository). */
	char cmd[4096];
	snprintf(cmd, sizeof cmd, "mkdir %s/data && cp %s/*-ubyte* %s/data/", dir,
		 tu_sample_data(), dir);
	assert_int_equal(system(cmd), 0);
	expect(run("train --data-dir %s/data --out %s/data/../data/t10k-labels-idx1-ubyte.gz", dir,
		   dir),
	       2, "the same file as the data file");
	assert_null(strstr(out, "epoch"));
	expect(run("attack --model %s --data-dir %s/data --n 10 --csv %s/data/t10k-labels-idx1-ubyte.gz",
		   model, dir, dir),
	       2, "the same file as the data file");
	assert_null(strstr(out, "attacking"));
	/* Two outputs on one character device are fine. */
	expect(run("attack --model %s --n 10 --eps 0 --csv /dev/null --plot /dev/null", model), 0,
	       "robust");
	size_t n1;
	char *after = tu_read_file(model, &n1);
	assert_int_equal(n1, n0);
	assert_memory_equal(after, before, n0);
	free(before);
	free(after);
	free(link);
	free(conf);
}

/* The probe refuses directories and empty names at once (exit 2, no epoch
 * trained, no attack run). */
static void test_directories_and_empty_names_refused(void **state)
{
	(void)state;
	expect(run("train --out %s", dir), 2, "is a directory");
	assert_null(strstr(out, "epoch 1/"));
	expect(run("train --log %s/", dir), 2, "names a directory");
	expect(run("train --out ''"), 2, "an empty file name");
	assert_null(strstr(out, "epoch 1/"));
	expect(run("attack --model %s --csv %s/ --n 10", model, dir), 2, "names a directory");
	assert_null(strstr(out, "attacking"));
	expect(run("attack --model %s --plot '' --n 10", model), 2, "--plot");
}

/* /dev/null stays a device, a link stays a link (its target rewritten). */
static void test_devices_and_links_written_through(void **state)
{
	(void)state;
	char *target = tu_path(dir, "target.csv"), *link = tu_path(dir, "out.csv");
	assert_int_equal(tu_write_file(target, "stale\n", 6), 0);
	assert_int_equal(symlink("target.csv", link), 0);
	expect(run("attack --model %s --n 10 --eps 0 --csv %s --npy /dev/null", model, link), 0,
	       "robust");
	struct stat st;
	assert_int_equal(lstat(link, &st), 0);
	assert_true(S_ISLNK(st.st_mode));
	char *text = tu_read_file(target, NULL);
	assert_non_null(strstr(text, "eps,n,clean_accuracy"));
	free(text);
	assert_int_equal(stat("/dev/null", &st), 0);
	assert_true(S_ISCHR(st.st_mode));
	tu_assert_no_temp_files(dir);
	free(target);
	free(link);
}

/* A FIFO given to --log gets the whole log once, at the end: a reader sees
 * the header and one row per epoch, and the run does not wait for a second
 * reader after the first one has finished. */
static void test_train_log_to_fifo(void **state)
{
	(void)state;
	char *fifo = tu_path(dir, "log.fifo"), *got = tu_path(dir, "got.csv");
	assert_int_equal(mkfifo(fifo, 0600), 0);
	char cmd[8192];
	snprintf(cmd, sizeof cmd,
		 "(cat %s > %s &); timeout 120 %s train --epochs 2 --eps 0 --log %s "
		 ">/dev/null 2>&1",
		 fifo, got, tu_program(), fifo);
	int st = system(cmd);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
	int lines = 0;
	for (int tries = 0; tries < 100 && lines < 3; tries++) { /* cat may still be writing */
		char *text = tu_read_file(got, NULL);
		lines = 0;
		for (char *p = text; p && *p; p++)
			lines += *p == '\n';
		free(text);
		if (lines < 3)
			usleep(20000);
	}
	assert_int_equal(lines, 3);
	struct stat sb;
	assert_int_equal(lstat(fifo, &sb), 0);
	assert_true(S_ISFIFO(sb.st_mode));
	/* The lab, which rewrites --out after every epoch, refuses a FIFO. */
	expect(run("lab --out %s", fifo), 2, "is a FIFO");
	free(fifo);
	free(got);
}

/* Every command: results that cannot reach stdout are an error (exit 1). */
static void test_stdout_failure_is_an_error(void **state)
{
	(void)state;
	if (access("/dev/full", W_OK) != 0)
		skip();
	char args[4096];
	const char *cmds[] = {"--help", "allocate --json", "allocate", "train --help"};
	for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
		int rc = run_stdout_full(cmds[i]);
		if (rc != 1 || !strstr(out, "standard output"))
			fail_msg("'%s' > /dev/full: exit %d\n%s", cmds[i], rc, out);
	}
	snprintf(args, sizeof args, "certify --model %s --json", model);
	expect(run_stdout_full(args), 1, "standard output");
	snprintf(args, sizeof args, "attack --model %s --n 10 --eps 0 --json", model);
	expect(run_stdout_full(args), 1, "standard output");
	expect(run_stdout_full("train --epochs 0 --eps 0 --json"), 1, "standard output");
}

/* A file that fails at the end of an attack loses no number: the table is
 * printed first. */
static void test_attack_prints_before_writing(void **state)
{
	(void)state;
	if (access("/dev/full", W_OK) != 0)
		skip();
	expect(run("attack --model %s --n 10 --eps 0,0.1 --steps 2 --csv /dev/full", model), 1,
	       "writing /dev/full failed");
	assert_non_null(strstr(out, "robust"));
	assert_non_null(strstr(out, "0.1 "));
}

/* --epochs 0 writes the log's header alone over an old log. */
static void test_epochs_zero_log(void **state)
{
	(void)state;
	char *log = tu_path(dir, "old.csv");
	assert_int_equal(tu_write_file(log, "stale\n", 6), 0);
	expect(run("train --epochs 0 --eps 0 --log %s", log), 0, "after 0 epochs");
	char *text = tu_read_file(log, NULL);
	assert_non_null(text);
	assert_true(strncmp(text, "epoch,step,", 11) == 0);
	char *nl = strchr(text, '\n');
	assert_non_null(nl);
	assert_int_equal(nl[1], '\0'); /* the header row alone */
	free(text);
	free(log);
}

int main(int argc, char **argv)
{
	(void)argc;
	tu_find_program(argv[0]);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_collisions_refused),
		cmocka_unit_test(test_directories_and_empty_names_refused),
		cmocka_unit_test(test_devices_and_links_written_through),
		cmocka_unit_test(test_train_log_to_fifo),
		cmocka_unit_test(test_stdout_failure_is_an_error),
		cmocka_unit_test(test_attack_prints_before_writing),
		cmocka_unit_test(test_epochs_zero_log),
	};
	return cmocka_run_group_tests_name("outputs", tests, setup, teardown);
}
