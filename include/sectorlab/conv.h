/*
 * conv: 2-D convolution of one image as im2col + sgemm, and its transpose.
 *
 * A convolution with Cin input and Cout output channels, a k x k kernel,
 * stride s and zero padding p maps an image (Cin, H, W) to (Cout, Ho, Wo)
 * with Ho = (H + 2p - k) / s + 1 (the same for Wo), exactly as PyTorch's
 * Conv2d (cross-correlation, kernel (Cout, Cin, k, k)).  Writing the image's
 * k x k patches as the columns of a matrix (im2col), the convolution is one
 * matrix product: y (Cout, Ho*Wo) = W (Cout, Cin*k*k) col (Cin*k*k, Ho*Wo).
 * Its transpose (the input gradient, or a "transposed convolution") is
 * col = W^T y followed by col2im, which adds every column back into the
 * pixels it came from.
 *
 * These functions work on one image and know nothing about batches, layers
 * or training: the network (nn) and the spectral norm of the operator
 * (spectral) are both built from them.  Callers own every buffer.
 */
#ifndef SECTORLAB_CONV_H
#define SECTORLAB_CONV_H

#include <stddef.h>

#include "sectorlab/status.h"

struct conv_geom {
	int cin, h, w;      /* input image (Cin, H, W) */
	int cout, k;        /* output channels, square kernel size */
	int stride, pad;    /* stride >= 1, zero padding >= 0 on every side */
	int ho, wo;         /* output size, from the above */
};

/* Fill g and check the sizes (positive, an output of at least 1 x 1, and
 * small enough that every buffer size fits comfortably in an int). */
sl_status conv_geom_init(struct conv_geom *g, int cin, int h, int w, int cout, int k,
			 int stride, int pad, struct sl_error *err);

/* Floats in one input image, one output image, one kernel, one im2col matrix. */
size_t conv_in_size(const struct conv_geom *g);   /* Cin * H * W */
size_t conv_out_size(const struct conv_geom *g);  /* Cout * Ho * Wo */
size_t conv_weight_size(const struct conv_geom *g); /* Cout * Cin * k * k */
size_t conv_col_size(const struct conv_geom *g);  /* Cin * k * k * Ho * Wo */

/* col (Cin*k*k, Ho*Wo) <- the patches of x (Cin, H, W); zero outside x. */
void conv_im2col(const struct conv_geom *g, const float *x, float *col);

/* dx (Cin, H, W) += every entry of col (Cin*k*k, Ho*Wo) added back to the
 * pixel it was copied from (entries that fell in the padding are dropped). */
void conv_col2im_add(const struct conv_geom *g, const float *col, float *dx);

/*
 * y (Cout, Ho*Wo) = alpha * (w * x) (+ b per channel when b is non-NULL),
 * with w (Cout, Cin, k, k).  col is a workspace of conv_col_size floats.
 */
void conv_apply(const struct conv_geom *g, const float *w, float alpha, const float *b,
		const float *x, float *y, float *col);

/*
 * The transpose: x (Cin, H, W) = alpha * W^T y, i.e. the gradient of
 * <y, w * x> with respect to x.  col is a workspace of conv_col_size floats.
 */
void conv_apply_transpose(const struct conv_geom *g, const float *w, float alpha,
			  const float *y, float *x, float *col);

/*
 * gw (Cout, Cin*k*k) += alpha * dy (Cout, Ho*Wo) im2col(x)^T: the gradient
 * of <dy, w * x> with respect to the kernel, for x (Cin, H, W).  col is a
 * workspace of conv_col_size floats.
 */
void conv_weight_grad_add(const struct conv_geom *g, float alpha, const float *dy,
			  const float *x, float *gw, float *col);

#endif
