/*
 * test_data: the dataset readers.  Tiny IDX and CIFAR-10 files are written
 * into a temp directory at test time (plain and gzip), then broken one way at
 * a time: each broken file must give the right status and a message naming
 * the file.  The full datasets (../shared/data) and the embedded sample in
 * data/ are loaded when present and checked against their published counts.
 */
#include "testutil.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sectorlab/data.h"

#define MAX_PATHS 32
#define CIFAR_RECORD 3073

/* Per-test temp directory; every path handed out is freed in teardown. */
struct fixture {
	char *dir;
	char *paths[MAX_PATHS];
	int npaths;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof *f);
	if (!f)
		return -1;
	f->dir = tu_tmpdir();
	if (!f->dir) {
		free(f);
		return -1;
	}
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	for (int i = 0; i < f->npaths; i++)
		free(f->paths[i]);
	tu_rmrf(f->dir);
	free(f->dir);
	free(f);
	return 0;
}

/* dir/name as a path the fixture frees. */
static const char *fx_path(struct fixture *f, const char *name)
{
	assert_true(f->npaths < MAX_PATHS);
	char *p = tu_path(f->dir, name);
	assert_non_null(p);
	f->paths[f->npaths++] = p;
	return p;
}

/* Write data to dir/name, gzip-compressed when gz; returns the path. */
static const char *fx_write(struct fixture *f, const char *name, const void *data, size_t n,
			    bool gz)
{
	const char *p = fx_path(f, name);
	assert_int_equal(gz ? tu_write_gz(p, data, n) : tu_write_file(p, data, n), 0);
	return p;
}

static void fx_mkdir(struct fixture *f, const char *name)
{
	assert_int_equal(mkdir(fx_path(f, name), 0755), 0);
}

static void put_be32(uint8_t *b, uint32_t v)
{
	b[0] = (uint8_t)(v >> 24);
	b[1] = (uint8_t)(v >> 16);
	b[2] = (uint8_t)(v >> 8);
	b[3] = (uint8_t)v;
}

/* The pixel every fixture puts at offset i: varied, and hard to compress. */
static uint8_t fixture_pixel(size_t i)
{
	uint32_t x = (uint32_t)i * 2654435761u;
	return (uint8_t)(x >> 24);
}

/* An IDX image file: header (magic, n, rows, cols) and n*rows*cols pixels,
 * plus extra trailing bytes.  *len gets the size; caller frees. */
static uint8_t *idx_images(uint32_t magic, uint32_t n, uint32_t rows, uint32_t cols,
			   size_t pixels, size_t extra, size_t *len)
{
	*len = 16 + pixels + extra;
	uint8_t *b = calloc(1, *len);
	assert_non_null(b);
	put_be32(b, magic);
	put_be32(b + 4, n);
	put_be32(b + 8, rows);
	put_be32(b + 12, cols);
	for (size_t i = 0; i < pixels + extra; i++)
		b[16 + i] = fixture_pixel(i);
	return b;
}

/* An IDX label file of n labels (i % 10), of which the first count are
 * written, plus extra bytes. */
static uint8_t *idx_labels(uint32_t magic, uint32_t n, size_t count, size_t extra,
			   size_t *len)
{
	*len = 8 + count + extra;
	uint8_t *b = calloc(1, *len);
	assert_non_null(b);
	put_be32(b, magic);
	put_be32(b + 4, n);
	for (size_t i = 0; i < count + extra; i++)
		b[8 + i] = (uint8_t)(i % 10);
	return b;
}

/* n CIFAR records: label (first + i) % 10, pixels fixture_pixel(i*3072 + j). */
static uint8_t *cifar_records(size_t n, int first, size_t *len)
{
	*len = n * CIFAR_RECORD;
	uint8_t *b = calloc(1, *len ? *len : 1);
	assert_non_null(b);
	for (size_t i = 0; i < n; i++) {
		b[i * CIFAR_RECORD] = (uint8_t)((first + (int)i) % 10);
		for (size_t j = 0; j < 3072; j++)
			b[i * CIFAR_RECORD + 1 + j] = fixture_pixel(i * 3072 + j);
	}
	return b;
}

/* Write a valid pair of IDX files (n images of rows x cols) into dir/. */
static void write_idx_pair(struct fixture *f, const char *images, const char *labels,
			   uint32_t n, uint32_t rows, uint32_t cols, bool gz)
{
	size_t ilen, llen;
	uint8_t *img = idx_images(0x803, n, rows, cols, (size_t)n * rows * cols, 0, &ilen);
	uint8_t *lab = idx_labels(0x801, n, n, 0, &llen);
	fx_write(f, images, img, ilen, gz);
	fx_write(f, labels, lab, llen, gz);
	free(img);
	free(lab);
}

/* The call failed with code, and its message names the file and says what. */
static void expect_error(sl_status st, const struct sl_error *err, sl_status code,
			 const char *file, const char *what)
{
	if (st != code || err->code != code)
		fail_msg("status %s (err %s), expected %s; message: %s", status_str(st),
			 status_str(err->code), status_str(code), err->msg);
	if (file && !strstr(err->msg, file))
		fail_msg("message does not name %s: %s", file, err->msg);
	if (what && !strstr(err->msg, what))
		fail_msg("message does not say \"%s\": %s", what, err->msg);
}

static void expect_pixels_from_fixture(const struct sl_dataset *d)
{
	size_t total = (size_t)d->n * data_dim(d);
	for (size_t i = 0; i < total; i++)
		if (d->pixels[i] != fixture_pixel(i))
			fail_msg("pixel %zu is %u, expected %u", i, d->pixels[i],
				 fixture_pixel(i));
}

static void count_labels(const struct sl_dataset *d, uint32_t counts[10])
{
	memset(counts, 0, 10 * sizeof counts[0]);
	for (uint32_t i = 0; i < d->n; i++) {
		assert_true(d->labels[i] < 10);
		counts[d->labels[i]]++;
	}
}

static void expect_counts(const struct sl_dataset *d, const uint32_t want[10])
{
	uint32_t got[10];
	count_labels(d, got);
	for (int k = 0; k < 10; k++)
		if (got[k] != want[k])
			fail_msg("%s: class %d has %u examples, expected %u", d->source, k,
				 got[k], want[k]);
}

/* ---- names ---- */

static void test_kind_parse(void **state)
{
	(void)state;
	struct sl_error err = {0};
	enum data_kind k;
	assert_int_equal(data_kind_parse("mnist", &k, &err), SL_OK);
	assert_int_equal(k, DATA_MNIST);
	assert_int_equal(data_kind_parse("fashion", &k, &err), SL_OK);
	assert_int_equal(k, DATA_FASHION);
	assert_int_equal(data_kind_parse("cifar10", &k, &err), SL_OK);
	assert_int_equal(k, DATA_CIFAR10);
	assert_int_equal(data_kind_parse("cifar-10", &k, &err), SL_OK);
	assert_int_equal(k, DATA_CIFAR10);
	expect_error(data_kind_parse("svhn", &k, &err), &err, SL_ERR_ARG, "svhn",
		     "mnist, fashion or cifar10");
	for (int i = DATA_MNIST; i <= DATA_CIFAR10; i++) {
		assert_int_equal(data_kind_parse(data_kind_name((enum data_kind)i), &k, &err),
				 SL_OK);
		assert_int_equal(k, i);
	}
}

/* ---- valid files ---- */

static void check_tiny_idx(bool gz, void **state)
{
	struct fixture *f = *state;
	write_idx_pair(f, "img", "lab", 3, 2, 4, gz);
	const char *img = f->paths[0], *lab = f->paths[1];
	struct sl_dataset d;
	struct sl_error err = {0};
	assert_int_equal(data_load_idx(img, lab, &d, &err), SL_OK);
	assert_int_equal(d.n, 3);
	assert_int_equal(d.c, 1);
	assert_int_equal(d.h, 2);
	assert_int_equal(d.w, 4);
	assert_int_equal(d.classes, 10);
	assert_int_equal(data_dim(&d), 8);
	assert_true(d.owned);
	assert_string_equal(d.source, img);
	expect_pixels_from_fixture(&d);
	for (uint32_t i = 0; i < d.n; i++)
		assert_int_equal(d.labels[i], i % 10);
	data_free(&d);
}

static void test_idx_plain(void **state)
{
	check_tiny_idx(false, state);
}

static void test_idx_gz(void **state)
{
	check_tiny_idx(true, state);
}

/* Compression is detected from the bytes: a gzip file without .gz loads,
 * and so does a plain file named .gz. */
static void test_idx_compression_from_bytes(void **state)
{
	struct fixture *f = *state;
	write_idx_pair(f, "images.bin", "labels.gz", 5, 28, 28, true);
	struct sl_dataset d;
	struct sl_error err = {0};
	assert_int_equal(data_load_idx(f->paths[0], f->paths[1], &d, &err), SL_OK);
	assert_int_equal(d.n, 5);
	expect_pixels_from_fixture(&d);
	data_free(&d);
	write_idx_pair(f, "images.gz", "labels.bin", 5, 28, 28, false);
	assert_int_equal(data_load_idx(f->paths[2], f->paths[3], &d, &err), SL_OK);
	assert_int_equal(d.n, 5);
	data_free(&d);
}

static void test_cifar_tiny(void **state)
{
	struct fixture *f = *state;
	size_t len1, len2;
	uint8_t *a = cifar_records(3, 0, &len1);
	uint8_t *b = cifar_records(2, 7, &len2);
	const char *paths[2] = {fx_write(f, "a.bin", a, len1, false),
				fx_write(f, "b.bin.gz", b, len2, true)};
	struct sl_dataset d;
	struct sl_error err = {0};
	assert_int_equal(data_load_cifar10(paths, 2, &d, &err), SL_OK);
	assert_int_equal(d.n, 5);
	assert_int_equal(d.c, 3);
	assert_int_equal(d.h, 32);
	assert_int_equal(d.w, 32);
	assert_int_equal(d.classes, 10);
	assert_int_equal(data_dim(&d), 3072);
	const uint8_t want_labels[5] = {0, 1, 2, 7, 8};
	for (int i = 0; i < 5; i++)
		assert_int_equal(d.labels[i], want_labels[i]);
	/* Records are label + (C, H, W) planes; the pixels keep that order. */
	assert_memory_equal(d.pixels, a + 1, 3072);
	assert_memory_equal(d.pixels + 2 * 3072, a + 2 * CIFAR_RECORD + 1, 3072);
	assert_memory_equal(d.pixels + 4 * 3072, b + CIFAR_RECORD + 1, 3072);
	assert_non_null(strstr(d.source, paths[0]));
	data_free(&d);
	free(a);
	free(b);
}

/* ---- broken IDX files ---- */

static void test_idx_truncated_images(void **state)
{
	struct fixture *f = *state;
	size_t ilen, llen;
	uint8_t *img = idx_images(0x803, 4, 28, 28, 4 * 784 - 1, 0, &ilen);
	uint8_t *lab = idx_labels(0x801, 4, 4, 0, &llen);
	const char *lp = fx_write(f, "lab", lab, llen, false);
	struct sl_dataset d;
	struct sl_error err = {0};
	for (int gz = 0; gz < 2; gz++) {
		const char *ip = fx_write(f, gz ? "img.gz" : "img", img, ilen, gz);
		expect_error(data_load_idx(ip, lp, &d, &err), &err, SL_ERR_FORMAT, ip,
			     "expected 3152 bytes");
		expect_error(SL_ERR_FORMAT, &err, SL_ERR_FORMAT, NULL, "got 3151");
		assert_null(d.pixels);
	}
	free(img);
	free(lab);
}

/* A download cut off mid-stream: the gzip data itself ends early.  (A cut
 * inside the 8-byte gzip trailer is not tested: zlib may deliver the complete
 * content without noticing, see reader_read in src/data.c.) */
static void test_idx_truncated_gzip_stream(void **state)
{
	struct fixture *f = *state;
	write_idx_pair(f, "img.gz", "lab.gz", 40, 28, 28, true);
	const char *ip = f->paths[0];
	struct stat st;
	assert_int_equal(stat(ip, &st), 0);
	assert_int_equal(truncate(ip, st.st_size / 2), 0);
	struct sl_dataset d;
	struct sl_error err = {0};
	expect_error(data_load_idx(ip, f->paths[1], &d, &err), &err, SL_ERR_FORMAT, ip,
		     "truncated: expected 31376 bytes");
	assert_null(d.pixels);
}

static void test_idx_corrupt_gzip(void **state)
{
	struct fixture *f = *state;
	write_idx_pair(f, "img.gz", "lab.gz", 40, 28, 28, true);
	const char *ip = f->paths[0];
	FILE *fp = fopen(ip, "r+b");
	assert_non_null(fp);
	/* Flip a byte well inside the deflate data. */
	assert_int_equal(fseek(fp, 200, SEEK_SET), 0);
	int c = fgetc(fp);
	assert_true(c != EOF);
	assert_int_equal(fseek(fp, 200, SEEK_SET), 0);
	assert_true(fputc(c ^ 0x55, fp) != EOF);
	assert_int_equal(fclose(fp), 0);
	struct sl_dataset d;
	struct sl_error err = {0};
	sl_status st = data_load_idx(ip, f->paths[1], &d, &err);
	expect_error(st, &err, SL_ERR_FORMAT, ip, NULL);
}

static void test_idx_truncated_labels(void **state)
{
	struct fixture *f = *state;
	size_t ilen, llen;
	uint8_t *img = idx_images(0x803, 4, 28, 28, 4 * 784, 0, &ilen);
	uint8_t *lab = idx_labels(0x801, 4, 2, 0, &llen);
	const char *ip = fx_write(f, "img", img, ilen, false);
	const char *lp = fx_write(f, "lab.gz", lab, llen, true);
	struct sl_dataset d;
	struct sl_error err = {0};
	expect_error(data_load_idx(ip, lp, &d, &err), &err, SL_ERR_FORMAT, lp,
		     "expected 12 bytes");
	expect_error(SL_ERR_FORMAT, &err, SL_ERR_FORMAT, NULL, "got 10");
	free(img);
	free(lab);
}

static void test_idx_truncated_header(void **state)
{
	struct fixture *f = *state;
	size_t ilen, llen;
	uint8_t *img = idx_images(0x803, 4, 28, 28, 0, 0, &ilen);
	uint8_t *lab = idx_labels(0x801, 4, 4, 0, &llen);
	const char *lp = fx_write(f, "lab", lab, llen, false);
	const char *ip = fx_write(f, "img", img, 9, false);
	struct sl_dataset d;
	struct sl_error err = {0};
	expect_error(data_load_idx(ip, lp, &d, &err), &err, SL_ERR_FORMAT, ip,
		     "truncated header");
	ip = fx_write(f, "empty", img, 0, false);
	expect_error(data_load_idx(ip, lp, &d, &err), &err, SL_ERR_FORMAT, ip, "got 0");
	free(img);
	free(lab);
}

static void test_idx_bad_magic(void **state)
{
	struct fixture *f = *state;
	size_t ilen, llen;
	uint8_t *img = idx_images(0x804, 2, 28, 28, 2 * 784, 0, &ilen);
	uint8_t *lab = idx_labels(0x801, 2, 2, 0, &llen);
	const char *ip = fx_write(f, "img.gz", img, ilen, true);
	const char *lp = fx_write(f, "lab", lab, llen, false);
	struct sl_dataset d;
	struct sl_error err = {0};
	expect_error(data_load_idx(ip, lp, &d, &err), &err, SL_ERR_FORMAT, ip,
		     "bad magic 0x00000804 (expected 0x00000803 for IDX images)");
	/* Files given the wrong way round. */
	put_be32(img, 0x803);
	ip = fx_write(f, "img2", img, ilen, false);
	expect_error(data_load_idx(lp, ip, &d, &err), &err, SL_ERR_FORMAT, lp,
		     "bad magic 0x00000801");
	expect_error(data_load_idx(ip, ip, &d, &err), &err, SL_ERR_FORMAT, ip,
		     "expected 0x00000801 for IDX labels");
	free(img);
	free(lab);
}

static void test_idx_label_out_of_range(void **state)
{
	struct fixture *f = *state;
	size_t ilen, llen;
	uint8_t *img = idx_images(0x803, 6, 28, 28, 6 * 784, 0, &ilen);
	uint8_t *lab = idx_labels(0x801, 6, 6, 0, &llen);
	lab[8 + 4] = 10;
	const char *ip = fx_write(f, "img", img, ilen, false);
	const char *lp = fx_write(f, "lab", lab, llen, false);
	struct sl_dataset d;
	struct sl_error err = {0};
	expect_error(data_load_idx(ip, lp, &d, &err), &err, SL_ERR_FORMAT, lp,
		     "label 10 in example 4 is out of range");
	free(img);
	free(lab);
}

static void test_idx_count_mismatch(void **state)
{
	struct fixture *f = *state;
	size_t ilen, llen;
	uint8_t *img = idx_images(0x803, 3, 28, 28, 3 * 784, 0, &ilen);
	uint8_t *lab = idx_labels(0x801, 2, 2, 0, &llen);
	const char *ip = fx_write(f, "img", img, ilen, false);
	const char *lp = fx_write(f, "lab", lab, llen, false);
	struct sl_dataset d;
	struct sl_error err = {0};
	expect_error(data_load_idx(ip, lp, &d, &err), &err, SL_ERR_FORMAT, lp,
		     "2 labels, but");
	expect_error(SL_ERR_FORMAT, &err, SL_ERR_FORMAT, ip, "holds 3 images");
	free(img);
	free(lab);
}

static void test_idx_trailing_bytes(void **state)
{
	struct fixture *f = *state;
	size_t ilen, llen, glen;
	uint8_t *img = idx_images(0x803, 2, 28, 28, 2 * 784, 5, &ilen);
	uint8_t *lab = idx_labels(0x801, 2, 2, 0, &llen);
	const char *ip = fx_write(f, "img.gz", img, ilen, true);
	const char *lp = fx_write(f, "lab", lab, llen, false);
	struct sl_dataset d;
	struct sl_error err = {0};
	expect_error(data_load_idx(ip, lp, &d, &err), &err, SL_ERR_FORMAT, ip,
		     "5 trailing bytes");
	uint8_t *good = idx_images(0x803, 2, 28, 28, 2 * 784, 0, &glen);
	uint8_t *lab_long = idx_labels(0x801, 2, 2, 1, &llen);
	ip = fx_write(f, "good", good, glen, false);
	lp = fx_write(f, "lab_long", lab_long, llen, false);
	expect_error(data_load_idx(ip, lp, &d, &err), &err, SL_ERR_FORMAT, lp,
		     "1 trailing bytes");
	free(img);
	free(lab);
	free(good);
	free(lab_long);
}

/* Absurd headers are refused from the header alone: these files are tiny. */
static void test_idx_absurd_dims(void **state)
{
	struct fixture *f = *state;
	const struct {
		uint32_t n, rows, cols;
		const char *what;
	} cases[] = {
		{2, 0, 28, "absurd image size 0x28"},
		{2, 28, 1025, "absurd image size 28x1025"},
		{0, 28, 28, "absurd image count 0"},
		{20000000, 1, 1, "absurd image count 20000000"},
		{4000000, 28, 28, "absurd image count 4000000"}, /* 3.1e9 pixel bytes */
		{UINT32_MAX, 1024, 1024, "absurd image count"},
	};
	size_t llen;
	uint8_t *lab = idx_labels(0x801, 2, 2, 0, &llen);
	const char *lp = fx_write(f, "lab", lab, llen, false);
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char name[32];
		size_t ilen;
		snprintf(name, sizeof name, "img%zu", i);
		uint8_t *img = idx_images(0x803, cases[i].n, cases[i].rows, cases[i].cols, 64,
					  0, &ilen);
		const char *ip = fx_write(f, name, img, ilen, false);
		struct sl_dataset d;
		struct sl_error err = {0};
		expect_error(data_load_idx(ip, lp, &d, &err), &err, SL_ERR_FORMAT, ip,
			     cases[i].what);
		free(img);
	}
	free(lab);
}

static void test_idx_missing_file(void **state)
{
	struct fixture *f = *state;
	write_idx_pair(f, "img", "lab", 2, 28, 28, false);
	const char *nowhere = fx_path(f, "no-such-file");
	struct sl_dataset d;
	struct sl_error err = {0};
	expect_error(data_load_idx(nowhere, f->paths[1], &d, &err), &err, SL_ERR_IO, nowhere,
		     "cannot open");
	expect_error(data_load_idx(f->paths[0], nowhere, &d, &err), &err, SL_ERR_IO, nowhere,
		     "cannot open");
}

/* ---- broken CIFAR-10 files ---- */

static void test_cifar_empty(void **state)
{
	struct fixture *f = *state;
	const char *p = fx_write(f, "empty.bin", "", 0, false);
	struct sl_dataset d;
	struct sl_error err = {0};
	expect_error(data_load_cifar10(&p, 1, &d, &err), &err, SL_ERR_FORMAT, p, "empty");
	p = fx_write(f, "empty.bin.gz", "", 0, true);
	expect_error(data_load_cifar10(&p, 1, &d, &err), &err, SL_ERR_FORMAT, p, "empty");
	expect_error(data_load_cifar10(&p, 0, &d, &err), &err, SL_ERR_ARG, NULL, NULL);
}

static void test_cifar_partial_record(void **state)
{
	struct fixture *f = *state;
	size_t len;
	uint8_t *b = cifar_records(3, 0, &len);
	const char *good = fx_write(f, "good.bin", b, len, false);
	const char *shortp = fx_write(f, "short.bin.gz", b, len - 1, true);
	const char *longp = fx_write(f, "long.bin", b, CIFAR_RECORD + 5, false);
	const char *paths[2] = {good, shortp};
	struct sl_dataset d;
	struct sl_error err = {0};
	/* The bad file is named even when it comes second. */
	expect_error(data_load_cifar10(paths, 2, &d, &err), &err, SL_ERR_FORMAT, shortp,
		     "9218 bytes is not a whole number of 3073-byte records");
	assert_null(d.pixels);
	expect_error(data_load_cifar10(&longp, 1, &d, &err), &err, SL_ERR_FORMAT, longp,
		     "1 records and 5 bytes over");
	free(b);
}

static void test_cifar_bad_label(void **state)
{
	struct fixture *f = *state;
	size_t len;
	uint8_t *b = cifar_records(3, 0, &len);
	b[2 * CIFAR_RECORD] = 10;
	const char *p = fx_write(f, "bad.bin", b, len, false);
	struct sl_dataset d;
	struct sl_error err = {0};
	expect_error(data_load_cifar10(&p, 1, &d, &err), &err, SL_ERR_FORMAT, p,
		     "label 10 in record 2 is out of range");
	free(b);
}

/* ---- finding files: data_load ---- */

static void test_load_prefers_subdir(void **state)
{
	struct fixture *f = *state;
	fx_mkdir(f, "mnist");
	write_idx_pair(f, "mnist/t10k-images-idx3-ubyte.gz", "mnist/t10k-labels-idx1-ubyte.gz",
		       2, 28, 28, true);
	write_idx_pair(f, "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte", 3, 28, 28, false);
	struct sl_dataset d;
	struct sl_error err = {0};
	assert_int_equal(data_load(DATA_MNIST, f->dir, false, &d, &err), SL_OK);
	assert_int_equal(d.n, 2);
	assert_non_null(strstr(d.source, "/mnist/t10k-images-idx3-ubyte.gz"));
	data_free(&d);
}

static void test_load_flat_dir(void **state)
{
	struct fixture *f = *state;
	write_idx_pair(f, "train-images-idx3-ubyte", "train-labels-idx1-ubyte.gz", 3, 28, 28,
		       false);
	struct sl_dataset d;
	struct sl_error err = {0};
	assert_int_equal(data_load(DATA_MNIST, f->dir, true, &d, &err), SL_OK);
	assert_int_equal(d.n, 3);
	assert_string_equal(d.source, f->paths[0]);
	data_free(&d);
}

static void test_load_missing_lists_places(void **state)
{
	struct fixture *f = *state;
	const char *mnist_dir = fx_path(f, "mnist/");
	const char *cifar_dir = fx_path(f, "cifar-10-batches-bin/");
	struct sl_dataset d;
	struct sl_error err = {0};
	expect_error(data_load(DATA_MNIST, f->dir, true, &d, &err), &err, SL_ERR_IO,
		     mnist_dir, "train-images-idx3-ubyte");
	expect_error(SL_ERR_IO, &err, SL_ERR_IO, "make data", "SECTORLAB_DATA");
	expect_error(SL_ERR_IO, &err, SL_ERR_IO, f->dir, "--data-dir");
	expect_error(data_load(DATA_CIFAR10, f->dir, false, &d, &err), &err, SL_ERR_IO,
		     cifar_dir, "test_batch.bin");
	expect_error(SL_ERR_IO, &err, SL_ERR_IO, "make data", "SECTORLAB_DATA");
	assert_null(d.pixels);
}

static void test_load_missing_labels(void **state)
{
	struct fixture *f = *state;
	size_t ilen;
	uint8_t *img = idx_images(0x803, 2, 28, 28, 2 * 784, 0, &ilen);
	fx_write(f, "train-images-idx3-ubyte.gz", img, ilen, true);
	struct sl_dataset d;
	struct sl_error err = {0};
	expect_error(data_load(DATA_MNIST, f->dir, true, &d, &err), &err, SL_ERR_IO,
		     "train-labels-idx1-ubyte", "missing");
	free(img);
}

static void test_load_cifar_train(void **state)
{
	struct fixture *f = *state;
	fx_mkdir(f, "cifar-10-batches-bin");
	size_t len;
	uint8_t *b = cifar_records(2, 0, &len);
	for (int i = 1; i <= 5; i++) {
		char name[64];
		snprintf(name, sizeof name, "cifar-10-batches-bin/data_batch_%d.bin%s", i,
			 i % 2 ? ".gz" : "");
		b[0] = (uint8_t)i;
		fx_write(f, name, b, len, i % 2);
	}
	struct sl_dataset d;
	struct sl_error err = {0};
	assert_int_equal(data_load(DATA_CIFAR10, f->dir, true, &d, &err), SL_OK);
	assert_int_equal(d.n, 10);
	for (int i = 0; i < 5; i++) {
		assert_int_equal(d.labels[2 * i], i + 1);
		assert_int_equal(d.labels[2 * i + 1], 1);
	}
	assert_non_null(strstr(d.source, "data_batch_1.bin.gz (+4 more)"));
	data_free(&d);

	/* One batch missing: the message names it. */
	assert_int_equal(remove(f->paths[f->npaths - 3]), 0);
	expect_error(data_load(DATA_CIFAR10, f->dir, true, &d, &err), &err, SL_ERR_IO,
		     "data_batch_3.bin", "missing");
	free(b);
}

/* Fashion-MNIST falls back on Debian's dataset-fashion-mnist when installed. */
static void test_load_fashion(void **state)
{
	struct fixture *f = *state;
	const char *debian = "/usr/share/datasets/fashion-mnist";
	struct stat st;
	struct sl_dataset d;
	struct sl_error err = {0};
	/* Files with Fashion's names straight in dir are the MNIST sample's
	 * names too: they must never be taken for Fashion-MNIST. */
	write_idx_pair(f, "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte", 3, 28, 28, false);
	if (stat(debian, &st) == 0) {
		assert_int_equal(data_load(DATA_FASHION, f->dir, false, &d, &err), SL_OK);
		assert_int_equal(d.n, 10000);
		assert_int_equal(d.h, 28);
		assert_non_null(strstr(d.source, debian));
		data_free(&d);
	} else {
		expect_error(data_load(DATA_FASHION, f->dir, false, &d, &err), &err, SL_ERR_IO,
			     debian, "dataset-fashion-mnist");
	}
	/* dir/fashion/ comes first either way. */
	fx_mkdir(f, "fashion");
	write_idx_pair(f, "fashion/t10k-images-idx3-ubyte", "fashion/t10k-labels-idx1-ubyte",
		       4, 28, 28, false);
	assert_int_equal(data_load(DATA_FASHION, f->dir, false, &d, &err), SL_OK);
	assert_int_equal(d.n, 4);
	data_free(&d);
}

/* ---- using a dataset ---- */

static void test_batch_scaling(void **state)
{
	(void)state;
	uint8_t pixels[2 * 4] = {0, 255, 51, 128, 1, 2, 3, 254};
	uint8_t labels[2] = {7, 3};
	struct sl_dataset d = {.n = 2, .c = 1, .h = 2, .w = 2, .classes = 10,
			       .pixels = pixels, .labels = labels};
	float x[2 * 4];
	int y[2];
	data_batch(&d, NULL, 2, x, y);
	assert_true(x[0] == -0.5f);
	assert_true(x[1] == 0.5f);
	assert_close(x[2], 0.2 - 0.5, 1e-7);
	assert_close(x[3], 128.0 / 255.0 - 0.5, 1e-7);
	assert_close(x[7], 254.0 / 255.0 - 0.5, 1e-7);
	assert_int_equal(y[0], 7);
	assert_int_equal(y[1], 3);
	/* Gather in the order asked, repeats allowed. */
	const uint32_t idx[3] = {1, 0, 1};
	float xg[3 * 4];
	int yg[3];
	data_batch(&d, idx, 3, xg, yg);
	assert_memory_equal(xg, x + 4, 4 * sizeof(float));
	assert_memory_equal(xg + 4, x, 4 * sizeof(float));
	assert_memory_equal(xg + 8, x + 4, 4 * sizeof(float));
	assert_int_equal(yg[0], 3);
	assert_int_equal(yg[1], 7);
	assert_int_equal(yg[2], 3);
}

static void test_to_byte_rounding(void **state)
{
	(void)state;
	/* Every byte survives the round trip through the float scale. */
	for (int b = 0; b < 256; b++)
		assert_int_equal(data_to_byte((float)b / 255.0f - 0.5f), b);
	/* Nearest, never truncated: 127.9 is 128, 127.4 is 127. */
	assert_int_equal(data_to_byte(127.9f / 255.0f - 0.5f), 128);
	assert_int_equal(data_to_byte(127.4f / 255.0f - 0.5f), 127);
	assert_int_equal(data_to_byte(0.6f / 255.0f - 0.5f), 1);
	assert_int_equal(data_to_byte(254.7f / 255.0f - 0.5f), 255);
	/* Clipped to [0, 255]. */
	assert_int_equal(data_to_byte(-0.51f), 0);
	assert_int_equal(data_to_byte(-3.0f), 0);
	assert_int_equal(data_to_byte(0.51f), 255);
	assert_int_equal(data_to_byte(1e30f), 255);
	assert_int_equal(data_to_byte(-INFINITY), 0);
	assert_int_equal(data_to_byte(INFINITY), 255);
	assert_int_equal(data_to_byte(NAN), 0);
}

static void test_view(void **state)
{
	struct fixture *f = *state;
	write_idx_pair(f, "img", "lab", 6, 3, 3, false);
	struct sl_dataset d, v, vv;
	struct sl_error err = {0};
	assert_int_equal(data_load_idx(f->paths[0], f->paths[1], &d, &err), SL_OK);
	assert_int_equal(data_view(&d, 2, 3, &v, &err), SL_OK);
	assert_int_equal(v.n, 3);
	assert_int_equal(v.h, 3);
	assert_false(v.owned);
	assert_ptr_equal(v.pixels, d.pixels + 2 * 9);
	assert_ptr_equal(v.labels, d.labels + 2);
	assert_int_equal(v.labels[0], 2);
	/* A view of a view, and the empty view at the end. */
	assert_int_equal(data_view(&v, 1, 2, &vv, &err), SL_OK);
	assert_ptr_equal(vv.pixels, d.pixels + 3 * 9);
	assert_int_equal(data_view(&d, 6, 0, &vv, &err), SL_OK);
	assert_int_equal(vv.n, 0);
	/* Out of range, including a start + count that wraps around. */
	expect_error(data_view(&d, 4, 3, &vv, &err), &err, SL_ERR_RANGE, f->paths[0], "[4, 7)");
	expect_error(data_view(&d, 7, 0, &vv, &err), &err, SL_ERR_RANGE, NULL, NULL);
	expect_error(data_view(&d, 2, UINT32_MAX, &vv, &err), &err, SL_ERR_RANGE, NULL, NULL);
	/* Freeing a view frees nothing. */
	data_free(&v);
	assert_null(v.pixels);
	assert_int_equal(v.n, 0);
	assert_int_equal(d.labels[5], 5);
	data_free(&d);
	assert_null(d.pixels);
	assert_null(d.labels);
	assert_int_equal(d.n, 0);
	data_free(&d); /* twice is harmless */
	data_free(NULL);
}

/* ---- the real datasets ---- */

static void load_shared(enum data_kind kind, bool train, struct sl_dataset *d)
{
	struct sl_error err = {0};
	sl_status st = data_load(kind, tu_shared_data(), train, d, &err);
	if (st != SL_OK)
		fail_msg("%s", err.msg);
}

static void test_full_mnist(void **state)
{
	(void)state;
	TU_REQUIRE_SHARED_DATA();
	static const uint32_t train_counts[10] = {5923, 6742, 5958, 6131, 5842,
						  5421, 5918, 6265, 5851, 5949};
	static const uint32_t test_counts[10] = {980, 1135, 1032, 1010, 982,
						 892, 958,  1028, 974,  1009};
	struct sl_dataset d;
	load_shared(DATA_MNIST, true, &d);
	assert_int_equal(d.n, 60000);
	assert_int_equal(data_dim(&d), 784);
	expect_counts(&d, train_counts);
	/* Published training mean of pixels / 255: 0.13066. */
	double sum = 0;
	for (size_t i = 0; i < (size_t)d.n * 784; i++)
		sum += d.pixels[i];
	assert_close(sum / 255.0 / ((double)d.n * 784), 0.13066, 5e-6);
	data_free(&d);
	load_shared(DATA_MNIST, false, &d);
	assert_int_equal(d.n, 10000);
	expect_counts(&d, test_counts);
	data_free(&d);
}

static void test_full_cifar10(void **state)
{
	(void)state;
	TU_REQUIRE_SHARED_DATA();
	const uint32_t test_counts[10] = {1000, 1000, 1000, 1000, 1000,
					  1000, 1000, 1000, 1000, 1000};
	const uint32_t train_counts[10] = {5000, 5000, 5000, 5000, 5000,
					   5000, 5000, 5000, 5000, 5000};
	/* data_batch_1 alone, as published. */
	const uint32_t batch1_counts[10] = {1005, 974, 1032, 1016, 999,
					    937,  1030, 1001, 1025, 981};
	struct sl_dataset d, v;
	struct sl_error err = {0};
	load_shared(DATA_CIFAR10, false, &d);
	assert_int_equal(d.n, 10000);
	assert_int_equal(data_dim(&d), 3072);
	expect_counts(&d, test_counts);
	data_free(&d);
	load_shared(DATA_CIFAR10, true, &d);
	assert_int_equal(d.n, 50000);
	expect_counts(&d, train_counts);
	assert_int_equal(data_view(&d, 0, 10000, &v, &err), SL_OK);
	expect_counts(&v, batch1_counts);
	data_free(&d);
}

/* The embedded sample (data/): loaded by explicit path, because data_load
 * would rightly prefer a full copy in data/mnist/ once `make data` ran. */
static void test_sample(void **state)
{
	(void)state;
	static const uint32_t train_counts[10] = {801, 927, 791, 832, 780,
						  663, 814, 870, 744, 778};
	static const uint32_t test_counts[10] = {200, 200, 200, 200, 200,
						 200, 200, 200, 200, 200};
	char img[256], lab[256];
	struct sl_dataset d;
	struct sl_error err = {0};
	snprintf(img, sizeof img, "%s/train-images-idx3-ubyte.gz", tu_sample_data());
	snprintf(lab, sizeof lab, "%s/train-labels-idx1-ubyte.gz", tu_sample_data());
	if (data_load_idx(img, lab, &d, &err) != SL_OK)
		fail_msg("%s", err.msg);
	assert_int_equal(d.n, 8000);
	assert_int_equal(d.h, 28);
	assert_int_equal(d.w, 28);
	expect_counts(&d, train_counts);
	/* Shuffled: the first 100 examples already cover every class. */
	struct sl_dataset head;
	uint32_t seen[10];
	assert_int_equal(data_view(&d, 0, 100, &head, &err), SL_OK);
	count_labels(&head, seen);
	for (int k = 0; k < 10; k++)
		assert_true(seen[k] > 0);
	data_free(&d);
	snprintf(img, sizeof img, "%s/t10k-images-idx3-ubyte.gz", tu_sample_data());
	snprintf(lab, sizeof lab, "%s/t10k-labels-idx1-ubyte.gz", tu_sample_data());
	if (data_load_idx(img, lab, &d, &err) != SL_OK)
		fail_msg("%s", err.msg);
	assert_int_equal(d.n, 2000);
	expect_counts(&d, test_counts);
	data_free(&d);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_kind_parse),
		T(test_idx_plain),
		T(test_idx_gz),
		T(test_idx_compression_from_bytes),
		T(test_cifar_tiny),
		T(test_idx_truncated_images),
		T(test_idx_truncated_gzip_stream),
		T(test_idx_corrupt_gzip),
		T(test_idx_truncated_labels),
		T(test_idx_truncated_header),
		T(test_idx_bad_magic),
		T(test_idx_label_out_of_range),
		T(test_idx_count_mismatch),
		T(test_idx_trailing_bytes),
		T(test_idx_absurd_dims),
		T(test_idx_missing_file),
		T(test_cifar_empty),
		T(test_cifar_partial_record),
		T(test_cifar_bad_label),
		T(test_load_prefers_subdir),
		T(test_load_flat_dir),
		T(test_load_missing_lists_places),
		T(test_load_missing_labels),
		T(test_load_cifar_train),
		T(test_load_fashion),
		cmocka_unit_test(test_batch_scaling),
		cmocka_unit_test(test_to_byte_rounding),
		T(test_view),
		cmocka_unit_test(test_full_mnist),
		cmocka_unit_test(test_full_cifar10),
		cmocka_unit_test(test_sample),
	};
	return cmocka_run_group_tests_name("data", tests, NULL, NULL);
}
