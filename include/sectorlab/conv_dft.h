/*
 * conv_dft: a batch of stride-1 convolutions through the discrete Fourier
 * transform, every step a matrix product.
 *
 * Each image plane is zero-padded to Nh x Nw, large enough that the
 * circular correlation of the padded planes equals the convolution with
 * its zero padding (no wrap-around), and the kernel is placed likewise.  On
 * the F = Nh (Nw / 2 + 1) frequencies of a real transform, the convolution
 * becomes, frequency by frequency, a small complex matrix product over the
 * channels:  Y_f (B, Cout) = X_f (B, Cin) G_f (Cin, Cout)^T.  The
 * transforms themselves are dense real matrices applied to all planes of a
 * batch in one sgemm (a plane of H x W values maps to 2F real values: the
 * real and imaginary parts), so the whole pass is a handful of large
 * products plus 4F small ones:
 *
 *   G    (2F, Cout*Cin) = Dw   (2F, k*k)  W^T      kernel spectra
 *   Xhat (2F, B*Cin)    = Din  (2F, H*W)  X^T      input spectra
 *   Yhat_f              = Xhat_f G_f^T (complex, per frequency)
 *   Y    (B*Cout, Ho*Wo) = Yhat^T E (2F, Ho*Wo)    back to pixels
 *
 * The backward pass is the exact transpose of these linear maps.  For
 * AlexNet's second layer (96 -> 256 channels on 15 x 15) this takes about
 * a quarter of the multiply-adds of im2col + sgemm; for large planes or few
 * channels the transforms cost more than they save (conv_dft_flops says).
 * Results equal the direct convolution up to float rounding.
 *
 * A plan owns its transform matrices and the spectra of the last forward
 * pass (needed by the backward pass).  Every product can be split among a
 * team of threads (parallel.h; NULL: the caller's thread), each thread
 * computing whole blocks, so the results do not depend on the team.  One
 * thread drives a plan at a time.
 */
#ifndef SECTORLAB_CONV_DFT_H
#define SECTORLAB_CONV_DFT_H

#include <stdbool.h>
#include <stddef.h>

#include "sectorlab/conv.h"
#include "sectorlab/parallel.h"
#include "sectorlab/status.h"

struct conv_dft;

/* Multiply-adds x 2 of a forward pass over batch images: through the DFT,
 * and directly (im2col + sgemm).  0 when the geometry has stride > 1. */
double conv_dft_flops(const struct conv_geom *g, int batch);
double conv_direct_flops(const struct conv_geom *g, int batch);

/* A plan for batches of up to max_batch images of geometry g (stride 1). */
sl_status conv_dft_new(const struct conv_geom *g, int max_batch, struct conv_dft **out,
		       struct sl_error *err);
void conv_dft_free(struct conv_dft *p);

/* Bytes of the plan's matrices and buffers. */
size_t conv_dft_bytes(const struct conv_dft *p);

/*
 * y (batch, Cout, Ho, Wo) = alpha * (w * x) (+ b per channel when b is
 * non-NULL) for x (batch, Cin, H, W) and w (Cout, Cin, k, k).  Keeps the
 * spectra for conv_dft_backward.
 */
void conv_dft_forward(struct conv_dft *p, struct parallel *team, const float *w, float alpha,
		      const float *b, const float *x, float *y, int batch);

/*
 * The transpose of the last forward pass (same batch, same kernel: its
 * spectra are reused) for the output gradient dy (batch, Cout, Ho, Wo):
 * when gw is non-NULL, gw (Cout, Cin, k, k) = alpha * the kernel gradient
 * (overwritten); when dx is non-NULL, dx (batch, Cin, H, W) = alpha * w^T dy.
 */
void conv_dft_backward(struct conv_dft *p, struct parallel *team, float alpha, const float *dy,
		       float *gw, float *dx, int batch);

#endif
