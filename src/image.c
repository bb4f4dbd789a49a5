/* image: 8-bit rasters and PNG files through libpng (see image.h). */
#include "sectorlab/image.h"

#include <png.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include "sectorlab/data.h"
#include "sectorlab/io.h"

/* Larger images than this are refused before allocating (a 16k x 16k RGB
 * image is 768 MiB; sectorlab's own are far smaller). */
#define IMAGE_MAX_PIXELS (1L << 26)

sl_status image_new(struct image *img, int w, int h, int channels, struct sl_error *err)
{
	memset(img, 0, sizeof *img);
	if (w < 1 || h < 1 || (long)w * h > IMAGE_MAX_PIXELS || (channels != 1 && channels != 3))
		return status_set(err, SL_ERR_ARG, "image: %d x %d with %d channels", w, h, channels);
	img->px = calloc((size_t)w * h * channels, 1);
	if (!img->px)
		return status_set(err, SL_ERR_NOMEM, "image: %d x %d", w, h);
	img->w = w;
	img->h = h;
	img->channels = channels;
	return SL_OK;
}

void image_free(struct image *img)
{
	free(img->px);
	memset(img, 0, sizeof *img);
}

sl_status image_from_scaled(const float *x, int c, int h, int w, struct image *out,
			    struct sl_error *err)
{
	sl_status st = image_new(out, w, h, c, err);
	if (st != SL_OK)
		return st;
	size_t plane = (size_t)h * w;
	for (int ch = 0; ch < c; ch++)
		for (size_t p = 0; p < plane; p++)
			out->px[p * c + ch] = data_to_byte(x[ch * plane + p]);
	return SL_OK;
}

void image_to_scaled(const struct image *img, float *x)
{
	size_t plane = (size_t)img->h * img->w;
	int c = img->channels;
	for (int ch = 0; ch < c; ch++)
		for (size_t p = 0; p < plane; p++)
			x[ch * plane + p] = (float)img->px[p * c + ch] / 255.0f - 0.5f;
}

/* libpng reports errors through a callback that must not return: keep the
 * message and jump back to the setjmp in the function that called libpng. */
struct png_failure {
	char msg[256];
};

static void on_png_error(png_structp png, png_const_charp msg)
{
	struct png_failure *f = png_get_error_ptr(png);
	snprintf(f->msg, sizeof f->msg, "%s", msg);
	png_longjmp(png, 1);
}

static void on_png_warning(png_structp png, png_const_charp msg)
{
	(void)png; /* warnings (e.g. a chunk we do not know) change nothing */
	(void)msg;
}

static int write_stream(FILE *f, const struct image *img, png_textp chunks, int nchunks,
			struct png_failure *fail)
{
	png_structp png =
		png_create_write_struct(PNG_LIBPNG_VER_STRING, fail, on_png_error, on_png_warning);
	if (!png) {
		snprintf(fail->msg, sizeof fail->msg, "out of memory");
		return -1;
	}
	png_infop info = png_create_info_struct(png);
	if (!info) {
		png_destroy_write_struct(&png, NULL);
		snprintf(fail->msg, sizeof fail->msg, "out of memory");
		return -1;
	}
	if (setjmp(png_jmpbuf(png))) {
		png_destroy_write_struct(&png, &info);
		return -1;
	}
	png_init_io(png, f);
	png_set_IHDR(png, info, (png_uint_32)img->w, (png_uint_32)img->h, 8,
		     img->channels == 1 ? PNG_COLOR_TYPE_GRAY : PNG_COLOR_TYPE_RGB,
		     PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
	if (nchunks > 0)
		png_set_text(png, info, chunks, nchunks);
	png_write_info(png, info);
	size_t stride = (size_t)img->w * img->channels;
	for (int y = 0; y < img->h; y++)
		png_write_row(png, img->px + (size_t)y * stride);
	png_write_end(png, info);
	png_destroy_write_struct(&png, &info);
	return 0;
}

sl_status image_write_png(const char *path, const struct image *img,
			  const struct image_text *text, int ntext, struct sl_error *err)
{
	if (!img->px || img->w < 1 || img->h < 1 || (img->channels != 1 && img->channels != 3))
		return status_set(err, SL_ERR_ARG, "%s: no image to write", path);
	png_textp chunks = NULL;
	if (ntext > 0) {
		chunks = calloc((size_t)ntext, sizeof *chunks);
		if (!chunks)
			return status_set(err, SL_ERR_NOMEM, "%s: text chunks", path);
	}
	for (int i = 0; i < ntext; i++) {
		size_t klen = strlen(text[i].key);
		if (klen < 1 || klen > 79) {
			free(chunks);
			return status_set(err, SL_ERR_ARG, "%s: PNG text key '%s' must have 1 to 79 "
							   "characters", path, text[i].key);
		}
		chunks[i].compression = PNG_TEXT_COMPRESSION_NONE;
		chunks[i].key = (png_charp)text[i].key;
		chunks[i].text = (png_charp)text[i].value;
		chunks[i].text_length = strlen(text[i].value);
	}
	struct io_atomic a;
	sl_status st = io_atomic_open(&a, path, err);
	if (st != SL_OK) {
		free(chunks);
		return st;
	}
	struct png_failure fail = {""};
	errno = 0;
	if (write_stream(a.f, img, chunks, ntext, &fail) != 0) {
		int saved = errno;
		io_atomic_abort(&a);
		free(chunks);
		if (saved)
			return status_set(err, SL_ERR_IO, "writing %s failed: %s (libpng: %s)", path,
					  strerror(saved), fail.msg);
		return status_set(err, SL_ERR_IO, "writing %s failed: libpng: %s", path, fail.msg);
	}
	free(chunks);
	return io_atomic_commit(&a, err);
}

/* What the reader hands back; filled only on success. */
struct png_read {
	struct image img;
	double file_bytes; /* size of the file, to judge what its header claims */
	const char *key;
	char *value;
	size_t cap;
};

static void copy_text(png_structp png, png_infop info, struct png_read *r)
{
	if (!r->key || !r->cap)
		return;
	png_textp t;
	int nt = 0;
	png_get_text(png, info, &t, &nt);
	for (int i = 0; i < nt; i++)
		if (strcmp(t[i].key, r->key) == 0) {
			snprintf(r->value, r->cap, "%s", t[i].text);
			return;
		}
}

static int read_stream(FILE *f, struct png_read *r, struct png_failure *fail)
{
	png_structp png =
		png_create_read_struct(PNG_LIBPNG_VER_STRING, fail, on_png_error, on_png_warning);
	png_infop info = png ? png_create_info_struct(png) : NULL;
	if (!info) {
		png_destroy_read_struct(&png, NULL, NULL);
		snprintf(fail->msg, sizeof fail->msg, "out of memory");
		return -1;
	}
	/* Allocated after setjmp, so volatile: the jump must see them. */
	uint8_t *volatile px = NULL;
	png_bytep *volatile rows = NULL;
	if (setjmp(png_jmpbuf(png))) {
		png_destroy_read_struct(&png, &info, NULL);
		free(px);
		free(rows);
		return -1;
	}
	png_init_io(png, f);
	png_set_sig_bytes(png, 8);
	/* Outside bytes: bound what libpng may allocate for one chunk (a text or
	 * profile chunk can claim gigabytes), how many ancillary chunks it keeps
	 * and the image size, before it reads anything. */
	png_set_chunk_malloc_max(png, 1u << 20);
	png_set_chunk_cache_max(png, 128);
	png_set_user_limits(png, 1u << 14, 1u << 14);
	png_read_info(png, info);
	png_uint_32 w, h;
	int depth, color;
	png_get_IHDR(png, info, &w, &h, &depth, &color, NULL, NULL, NULL);
	if (w < 1 || h < 1 || (double)w * h > IMAGE_MAX_PIXELS)
		png_error(png, "image too large");
	if (color == PNG_COLOR_TYPE_PALETTE)
		png_set_palette_to_rgb(png);
	if (color == PNG_COLOR_TYPE_GRAY && depth < 8)
		png_set_expand_gray_1_2_4_to_8(png);
	if (depth == 16)
		png_set_strip_16(png);
	if (color & PNG_COLOR_MASK_ALPHA)
		png_set_strip_alpha(png);
	png_set_interlace_handling(png);
	png_read_update_info(png, info);
	int channels = png_get_channels(png, info);
	if ((channels != 1 && channels != 3) ||
	    png_get_rowbytes(png, info) != (size_t)w * channels)
		png_error(png, "unsupported pixel layout");
	/* Deflate cannot compress by more than 1032:1, so a header claiming more
	 * pixels than the file could hold is a lie: refuse it before allocating. */
	if ((double)w * h * channels > 1032.0 * r->file_bytes + 65536.0)
		png_error(png, "header claims more pixels than the file can hold");
	px = malloc((size_t)w * h * channels);
	rows = malloc(sizeof(png_bytep) * h);
	if (!px || !rows)
		png_error(png, "out of memory");
	for (png_uint_32 y = 0; y < h; y++)
		rows[y] = px + (size_t)y * w * channels;
	png_read_image(png, rows);
	png_read_end(png, info);
	copy_text(png, info, r);
	png_destroy_read_struct(&png, &info, NULL);
	free(rows);
	r->img.w = (int)w;
	r->img.h = (int)h;
	r->img.channels = channels;
	r->img.px = px;
	return 0;
}

/*
 * Walk the chunk headers after the signature: every chunk must fit in what is
 * left of the file.  libpng would otherwise trust a chunk's claimed length
 * (a 300-byte file may claim a 2 GB text chunk) and try to allocate it.
 * Leaves f just after the signature.
 */
static int chunks_fit(FILE *f, double file_bytes, char *why, size_t cap)
{
	double pos = 8;
	unsigned char hdr[8];
	while (pos < file_bytes) {
		if (fseek(f, (long)pos, SEEK_SET) != 0 || fread(hdr, 1, 8, f) != 8) {
			snprintf(why, cap, "truncated chunk header at byte %.0f", pos);
			return -1;
		}
		double len = (double)((uint32_t)hdr[0] << 24 | (uint32_t)hdr[1] << 16 |
				      (uint32_t)hdr[2] << 8 | hdr[3]);
		if (pos + 12 + len > file_bytes) {
			snprintf(why, cap, "chunk '%.4s' at byte %.0f claims %.0f bytes, past the "
				 "end of the file", (const char *)hdr + 4, pos, len);
			return -1;
		}
		pos += 12 + len;
		if (memcmp(hdr + 4, "IEND", 4) == 0)
			break;
	}
	return fseek(f, 8, SEEK_SET);
}

sl_status image_read_png(const char *path, struct image *out, const char *key, char *value,
			 size_t cap, struct sl_error *err)
{
	memset(out, 0, sizeof *out);
	if (key && cap)
		value[0] = '\0';
	FILE *f = fopen(path, "rb");
	if (!f)
		return status_set(err, SL_ERR_IO, "%s: cannot open", path);
	unsigned char sig[8];
	if (fread(sig, 1, 8, f) != 8 || png_sig_cmp(sig, 0, 8) != 0) {
		fclose(f);
		return status_set(err, SL_ERR_FORMAT, "%s: not a PNG file", path);
	}
	struct png_read r = {.key = key, .value = value, .cap = cap};
	struct stat st;
	r.file_bytes = fstat(fileno(f), &st) == 0 && st.st_size > 0 ? (double)st.st_size : 0;
	struct png_failure fail = {""};
	if (chunks_fit(f, r.file_bytes, fail.msg, sizeof fail.msg) != 0) {
		fclose(f);
		return status_set(err, SL_ERR_FORMAT, "%s: %s", path, fail.msg);
	}
	int rc = read_stream(f, &r, &fail);
	fclose(f);
	if (rc != 0)
		return status_set(err, SL_ERR_FORMAT, "%s: %s", path, fail.msg);
	*out = r.img;
	return SL_OK;
}
