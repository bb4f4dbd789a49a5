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
#include <stddef.h>
#include <stdint.h>

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
/* The whole file, NUL-terminated, in a new buffer (its length in *n); NULL
 * if it cannot be read. */
char *tu_read_file(const char *path, size_t *n);
/* Write n bytes to path (plain file); returns 0 on success. */
int tu_write_file(const char *path, const void *data, size_t n);
/* Write n bytes gzip-compressed to path; returns 0 on success. */
int tu_write_gz(const char *path, const void *data, size_t n);
/* Join dir and name into a newly allocated path. */
char *tu_path(const char *dir, const char *name);

/* assert |a - b| <= tol, printing both values when it fails. */
#define assert_close(a, b, tol)                                                    \
	do {                                                                       \
		double tu_a_ = (a), tu_b_ = (b), tu_t_ = (tol);                    \
		if (!(tu_a_ - tu_b_ <= tu_t_ && tu_b_ - tu_a_ <= tu_t_))           \
			fail_msg("%s = %.9g, expected %s = %.9g (tolerance %g)",   \
				 #a, tu_a_, #b, tu_b_, tu_t_);                      \
	} while (0)

#endif
