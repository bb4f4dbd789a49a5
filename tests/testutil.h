/*
 * testutil: what every test binary shares: cmocka, the location of the full
 * datasets (../shared/data, or $SECTORLAB_SHARED_DATA), temp directories that
 * are removed afterwards, and small file helpers.  Tests never write into the
 * repository.
 */
#ifndef SECTORLAB_TESTUTIL_H
#define SECTORLAB_TESTUTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <cmocka.h>

/* Directory of the full datasets, or NULL when they are absent. */
const char *tu_shared_data(void);

/* Skip the calling test (counted as skipped) when the full data is absent. */
#define TU_REQUIRE_SHARED_DATA()                                                   \
	do {                                                                       \
		if (!tu_shared_data()) {                                           \
			print_message("full data not found: skipping\n");          \
			skip();                                                    \
		}                                                                  \
	} while (0)

/* Directory of the embedded MNIST sample (the repository's data/). */
const char *tu_sample_data(void);

/* A fresh temporary directory; the caller frees the string and calls tu_rmrf. */
char *tu_tmpdir(void);
/* Remove a directory tree created by tu_tmpdir. */
void tu_rmrf(const char *path);
/* cmocka setup / teardown: *state becomes a fresh temporary directory
 * (a char *), removed with everything in it afterwards. */
int tu_setup_tmpdir(void **state);
int tu_teardown_tmpdir(void **state);
/* The whole file, NUL-terminated, in a new buffer (its length in *n unless n
 * is NULL); NULL
 * if it cannot be read. */
char *tu_read_file(const char *path, size_t *n);
/* Write n bytes to path (plain file); returns 0 on success. */
int tu_write_file(const char *path, const void *data, size_t n);
/* Write n bytes gzip-compressed to path; returns 0 on success. */
int tu_write_gz(const char *path, const void *data, size_t n);
/* Join dir and name into a newly allocated path. */
char *tu_path(const char *dir, const char *name);

/* ---- running the program: tests of the command line ----
 * The program sits one level above the test binaries (build/sectorlab);
 * main calls tu_find_program(argv[0]) once. */
void tu_find_program(const char *argv0);
const char *tu_program(void);

/* Run `sectorlab args` through the shell; its stdout (and stderr when
 * with_stderr) lands in out (at most cap - 1 bytes, NUL-terminated).
 * Returns the exit status, or -1 when it did not exit normally. */
int tu_run(const char *args, bool with_stderr, char *out, size_t cap);

/* Start sectorlab with args (NULL-terminated, without the program name) in
 * the background, stdout and stderr going to outdir/stdout.txt and
 * outdir/stderr.txt.  When limit_resource >= 0 the child runs under
 * setrlimit(limit_resource, limit_bytes).  SIGXFSZ keeps its default action
 * (ending the process), as in a user's shell: the program itself must turn a
 * write past RLIMIT_FSIZE into an error.  Fails the test if the child cannot
 * be started. */
pid_t tu_spawn(const char *const *args, const char *outdir, int limit_resource,
	       unsigned long limit_bytes);

/* Wait for a child at most seconds; its exit status, -1 when a signal ended
 * it.  A child still running then is killed and the test fails. */
int tu_wait(pid_t pid, int seconds);

/* ---- the lab in a terminal: tmux on a private socket ----
 * tu_tmux_start runs shell_cmd in a new detached session of the given size
 * (returns 0, or -1 when tmux is missing: skip the test); keys are tmux
 * send-keys arguments ("a BSpace Tab"); capture writes the screen's text. */
int tu_tmux_start(const char *sock, int cols, int rows, const char *shell_cmd);
void tu_tmux_keys(const char *sock, const char *keys);
void tu_tmux_capture(const char *sock, char *out, size_t cap);
/* The same with the colours and attributes as escape sequences. */
void tu_tmux_capture_escapes(const char *sock, char *out, size_t cap);
void tu_tmux_kill(const char *sock);

/* Wait at most seconds for path to exist; whether it does. */
bool tu_wait_file(const char *path, int seconds);

/* Fail when dir holds a temporary file of an atomic write (NAME.tmp.PID). */
void tu_assert_no_temp_files(const char *dir);

/* assert |a - b| <= tol, printing both values when it fails. */
#define assert_close(a, b, tol)                                                    \
	do {                                                                       \
		double tu_a_ = (a), tu_b_ = (b), tu_t_ = (tol);                    \
		if (!(tu_a_ - tu_b_ <= tu_t_ && tu_b_ - tu_a_ <= tu_t_))           \
			fail_msg("%s = %.9g, expected %s = %.9g (tolerance %g)",   \
				 #a, tu_a_, #b, tu_b_, tu_t_);                      \
	} while (0)

/* A synthetic colour dataset: n random 3x32x32 images whose label is the
 * brightest of ten fixed pixel groups (owned: free with data_free). */
struct sl_dataset;
void tu_synthetic_cifar(struct sl_dataset *d, uint32_t n, uint64_t seed);

/* The median of n timings (sorts them in place). */
double tu_median(double *t, int n);

/* n random images of shape (c, h, w) with random labels 0..9, nothing to
 * learn (seeded: the same every time), for benchmarks; free with data_free. */
void tu_synthetic_dataset(struct sl_dataset *d, uint32_t n, int c, int h, int w);

#endif
