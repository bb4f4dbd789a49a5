/* Tests for image: PNG round trips (gray, RGB, text), clip-then-round
 * conversions, and files that are not PNGs. */
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sectorlab/data.h"
#include "sectorlab/image.h"
#include "testutil.h"

static void round_trip(const char *dir, int channels)
{
	struct image img;
	assert_int_equal(image_new(&img, 7, 5, channels, NULL), SL_OK);
	for (size_t k = 0; k < (size_t)7 * 5 * channels; k++)
		img.px[k] = (uint8_t)(k * 37 + 11);
	char *path = tu_path(dir, channels == 1 ? "gray.png" : "rgb.png");
	struct image_text text[] = {{"Comment", "{\"eps\":0.1}"}, {"Software", "sectorlab"}};
	assert_int_equal(image_write_png(path, &img, text, 2, NULL), SL_OK);
	struct image back;
	char value[64];
	assert_int_equal(image_read_png(path, &back, "Comment", value, sizeof value, NULL), SL_OK);
	assert_int_equal(back.w, 7);
	assert_int_equal(back.h, 5);
	assert_int_equal(back.channels, channels);
	assert_memory_equal(back.px, img.px, (size_t)7 * 5 * channels);
	assert_string_equal(value, "{\"eps\":0.1}");
	image_free(&back);
	/* A key that is not there reads as empty. */
	assert_int_equal(image_read_png(path, &back, "Title", value, sizeof value, NULL), SL_OK);
	assert_string_equal(value, "");
	image_free(&back);
	image_free(&img);
	free(path);
}

static void test_png_round_trip(void **state)
{
	round_trip(*state, 1);
	round_trip(*state, 3);
}

/* Scaled floats to bytes: clip, then round to nearest; never truncate. */
static void test_scaled_conversions(void **state)
{
	(void)state;
	float x[8] = {-0.5f, 0.5f, -0.7f, 0.9f, 127.6f / 255 - 0.5f, 127.4f / 255 - 0.5f, NAN, 0};
	struct image img;
	assert_int_equal(image_from_scaled(x, 1, 2, 4, &img, NULL), SL_OK);
	const uint8_t want[8] = {0, 255, 0, 255, 128, 127, 0, 128};
	assert_memory_equal(img.px, want, 8);
	image_free(&img);

	/* Every byte survives bytes -> floats -> bytes, and floats match
	 * data_batch's scale exactly. */
	uint8_t bytes[256], labels[1] = {0};
	for (int v = 0; v < 256; v++)
		bytes[v] = (uint8_t)v;
	struct sl_dataset ds = {.n = 1, .c = 1, .h = 16, .w = 16, .classes = 10,
				.pixels = bytes, .labels = labels, .owned = false};
	float scaled[256], mine[256];
	int y;
	data_batch(&ds, NULL, 1, scaled, &y);
	struct image g = {.w = 16, .h = 16, .channels = 1, .px = bytes};
	image_to_scaled(&g, mine);
	assert_memory_equal(scaled, mine, sizeof mine);
	assert_int_equal(image_from_scaled(scaled, 1, 16, 16, &img, NULL), SL_OK);
	assert_memory_equal(img.px, bytes, 256);
	image_free(&img);

	/* RGB: planar (c, h, w) in, interleaved out, and back. */
	float rgb[3 * 2 * 1] = {-0.5f, 0.5f, 0, 0, 0.5f, -0.5f}; /* R plane, G, B */
	assert_int_equal(image_from_scaled(rgb, 3, 2, 1, &img, NULL), SL_OK);
	const uint8_t want_rgb[6] = {0, 128, 255, 255, 128, 0};
	assert_memory_equal(img.px, want_rgb, 6);
	float back[6];
	image_to_scaled(&img, back);
	assert_close(back[0], -0.5, 0);
	assert_close(back[1], 0.5, 0);
	assert_close(back[4], 0.5, 0);
	image_free(&img);
}

static int count_entries(const char *dir)
{
	DIR *d = opendir(dir);
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d)))
		n += e->d_name[0] != '.';
	closedir(d);
	return n;
}

static void test_bad_files(void **state)
{
	const char *dir = *state;
	struct image img;
	struct sl_error err;
	char *missing = tu_path(dir, "missing.png");
	assert_int_equal(image_read_png(missing, &img, NULL, NULL, 0, &err), SL_ERR_IO);
	assert_non_null(strstr(err.msg, "missing.png"));

	char *text = tu_path(dir, "text.png");
	assert_int_equal(tu_write_file(text, "hello, not a png", 16), 0);
	assert_int_equal(image_read_png(text, &img, NULL, NULL, 0, &err), SL_ERR_FORMAT);
	assert_non_null(strstr(err.msg, "not a PNG"));

	/* A real PNG cut short: libpng's complaint comes back, nothing printed. */
	struct image big;
	assert_int_equal(image_new(&big, 64, 64, 3, NULL), SL_OK);
	for (size_t k = 0; k < (size_t)64 * 64 * 3; k++)
		big.px[k] = (uint8_t)(k * 7919 % 251);
	char *good = tu_path(dir, "good.png");
	assert_int_equal(image_write_png(good, &big, NULL, 0, NULL), SL_OK);
	FILE *f = fopen(good, "rb");
	unsigned char buf[20000];
	size_t n = fread(buf, 1, sizeof buf, f);
	fclose(f);
	char *cut = tu_path(dir, "cut.png");
	assert_int_equal(tu_write_file(cut, buf, n / 2), 0);
	assert_int_equal(image_read_png(cut, &img, NULL, NULL, 0, &err), SL_ERR_FORMAT);
	assert_non_null(strstr(err.msg, "cut.png"));
	assert_null(img.px);

	/* Bad key, bad image, unwritable place: refused, no file left behind. */
	int before = count_entries(dir);
	struct image_text bad_key[] = {{"", "x"}};
	assert_int_equal(image_write_png(good, &big, bad_key, 1, &err), SL_ERR_ARG);
	struct image empty = {0};
	assert_int_equal(image_write_png(good, &empty, NULL, 0, &err), SL_ERR_ARG);
	char *nowhere = tu_path(dir, "no/such/dir.png");
	assert_int_equal(image_write_png(nowhere, &big, NULL, 0, &err), SL_ERR_IO);
	assert_int_equal(count_entries(dir), before);
	assert_int_equal(image_new(&img, 0, 5, 1, &err), SL_ERR_ARG);
	assert_int_equal(image_new(&img, 5, 5, 2, &err), SL_ERR_ARG);
	image_free(&big);
	free(missing);
	free(text);
	free(good);
	free(cut);
	free(nowhere);
}

/*
 * Found by fuzzing (make fuzz): a 314-byte file whose tEXt chunk claims
 * 1.9 GB made libpng try to allocate it.  Chunk lengths are now checked
 * against the file before libpng sees them.  The same goes for a header
 * claiming far more pixels than the file's bytes could inflate to.
 */
static void test_lying_headers(void **state)
{
	const char *dir = *state;
	static const unsigned char sig_ihdr[] = {
		0x89, 'P', 'N', 'G', 0x0d, 0x0a, 0x1a, 0x0a,
		0, 0, 0, 13, 'I', 'H', 'D', 'R', 0, 0, 0, 28, 0, 0, 0, 28, 8, 0, 0, 0, 0,
		0x56, 0x2c, 0xa6, 0x5b, /* CRC of the IHDR above */
	};
	unsigned char buf[sizeof sig_ihdr + 20];
	memcpy(buf, sig_ihdr, sizeof sig_ihdr);
	static const unsigned char text[] = {0x72, 0x75, 0x61, 0x7e, 't', 'E', 'X', 't',
					     'k', 0, 'v', 0, 0, 0, 0, 0, 0, 0, 0, 0};
	memcpy(buf + sizeof sig_ihdr, text, sizeof text);
	char *path = tu_path(dir, "liar.png");
	assert_int_equal(tu_write_file(path, buf, sizeof buf), 0);
	struct image img;
	struct sl_error err;
	assert_int_equal(image_read_png(path, &img, "recipe", (char[8]){0}, 8, &err),
			 SL_ERR_FORMAT);
	assert_non_null(strstr(err.msg, "past the end of the file"));
	assert_null(img.px);
	free(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_png_round_trip, tu_setup_tmpdir, tu_teardown_tmpdir),
		cmocka_unit_test(test_scaled_conversions),
		cmocka_unit_test_setup_teardown(test_bad_files, tu_setup_tmpdir, tu_teardown_tmpdir),
		cmocka_unit_test_setup_teardown(test_lying_headers, tu_setup_tmpdir, tu_teardown_tmpdir),
	};
	return cmocka_run_group_tests_name("image", tests, NULL, NULL);
}
