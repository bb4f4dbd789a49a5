/*
 * image: 8-bit raster images and their PNG files (libpng).
 *
 * An image is gray (1 channel) or RGB (3 channels), stored row by row with
 * the channels of a pixel side by side.  Networks see images as planar
 * floats on their own scale (x / 255 - 0.5, NCHW); image_from_scaled and
 * image_to_scaled convert, clipping then rounding to the nearest byte (never
 * truncating), exactly as data_to_byte does.
 *
 * PNG files are written atomically with optional text chunks (the attack
 * recipe travels inside every PNG sectorlab writes).  The reader takes any
 * PNG and converts it to 8-bit gray or RGB (palettes expanded, 16 bits
 * stripped, alpha dropped).  libpng's messages come back in the sl_error;
 * nothing is printed.  The caller owns every image and frees it with
 * image_free.
 */
#ifndef SECTORLAB_IMAGE_H
#define SECTORLAB_IMAGE_H

#include <stddef.h>
#include <stdint.h>

#include "sectorlab/status.h"

struct image {
	int w, h;
	int channels;  /* 1 (gray) or 3 (RGB) */
	uint8_t *px;   /* (h, w, channels) */
};

/* A text chunk: key of 1 to 79 Latin-1 characters, any value. */
struct image_text {
	const char *key;
	const char *value;
};

/* Allocate a w x h image of the given channels, filled with zero. */
sl_status image_new(struct image *img, int w, int h, int channels, struct sl_error *err);
void image_free(struct image *img);

/* x (c, h, w) on the network's scale -> an image of c channels (1 or 3):
 * clip to [0, 255], then round. */
sl_status image_from_scaled(const float *x, int c, int h, int w, struct image *out,
			    struct sl_error *err);
/* The inverse: img -> x (channels, h, w) as v / 255 - 0.5 (data_batch's scale). */
void image_to_scaled(const struct image *img, float *x);

sl_status image_write_png(const char *path, const struct image *img,
			  const struct image_text *text, int ntext, struct sl_error *err);

/* Read a PNG as 8-bit gray (gray sources) or RGB (colour sources).  When key
 * is not NULL, the value of the first text chunk named key is copied into
 * value (at most cap bytes, NUL-terminated; empty when there is none). */
sl_status image_read_png(const char *path, struct image *out, const char *key, char *value,
			 size_t cap, struct sl_error *err);

#endif
