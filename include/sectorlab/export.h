/*
 * export: adversarial examples as files a person or another toolkit can
 * open.
 *
 * Per example, three PNGs named by export_stem: the original, the
 * adversarial, and the perturbation amplified around mid-grey (gray for
 * one-channel data such as MNIST, RGB for CIFAR-10; pixels clipped, then
 * rounded).  A grid PNG shows originals above their adversarials with the
 * labels drawn in.  export_reclassify reads PNGs back and classifies them,
 * which tells how many adversarials survive being stored as bytes.  Every
 * PNG carries the attack recipe in its text chunks.  Nothing here prints.
 */
#ifndef SECTORLAB_EXPORT_H
#define SECTORLAB_EXPORT_H

#include <stddef.h>

#include "sectorlab/attack.h"
#include "sectorlab/nn.h"
#include "sectorlab/status.h"

/* One example and what the network made of it.  x0, adv: (c, h, w) on the
 * network's scale. */
struct export_example {
	int index;            /* in the dataset */
	int label;            /* true label */
	int pred_clean, pred_adv;
	const float *x0, *adv;
};

/* The shape of the images. */
struct export_shape {
	int c, h, w;
};

/* "00012_true7_pred7_adv3_pgd_linf_eps0.1": index, true label, clean and
 * adversarial predictions, attack, norm and eps (r->eps).  Returns what
 * snprintf returns. */
int export_stem(char *buf, size_t cap, const struct export_example *e,
		const struct attack_recipe *r);

/* The perturbation amplified around mid-grey, as the _pert PNG and the
 * lab's gallery show it: pert (dim) = 0.5 (adv - x0) / m on the network's
 * scale (0 is mid-grey, -m..m spans the bytes), m the largest |adv - x0|.
 * Returns m (0: no change; pert all mid-grey). */
double export_perturbation(const float *x0, const float *adv, size_t dim, float *pert);

/* Write dir/<stem>_orig.png, _adv.png and _pert.png.  The perturbation image
 * maps -m..m to 0..255 with m the largest |adv - x0| of the example (stored
 * in its text as "amplification").  When adv_path is not NULL the adversarial's
 * path is copied there (cap bytes). */
sl_status export_example_pngs(const char *dir, const struct export_shape *shape,
			      const struct export_example *e, const struct attack_recipe *r,
			      char *adv_path, size_t cap, struct sl_error *err);

/* A grid of n examples, at most per_row per row pair, originals above
 * adversarials, each zoomed, with true label and predictions written under
 * them (red where the attack fooled the network); title on top. */
sl_status export_grid_png(const char *path, const struct export_shape *shape,
			  const struct export_example *e, int n, int per_row, const char *title,
			  const struct attack_recipe *r, struct sl_error *err);

/* Read n PNGs of the given shape and classify them: pred (n).  The images
 * must have shape->c channels and h x w pixels. */
sl_status export_reclassify(struct nn_net *net, const struct export_shape *shape,
			    const char *const *paths, int n, int *pred, struct sl_error *err);

/* What export_attack_set wrote and found. */
struct export_summary {
	int files;          /* examples written (three PNGs each) */
	int fooled;         /* examples correct before the attack and wrong after */
	int still_fooled;   /* ... whose adversarial PNG, read back, still fools the net */
	char grid[4096];    /* the grid's path */
};

/* Asked between two files whether to go on: SL_OK, or a status (err set,
 * e.g. SL_ERR_CANCELLED) that stops the export.  Every file already
 * written is whole. */
typedef sl_status (*export_check_fn)(void *ctx, struct sl_error *err);

/*
 * The export of one attack at one eps (r->eps), as `sectorlab attack
 * --png-dir` and the lab's gallery write it: each example's three PNGs
 * (export_example_pngs), a grid of all n (ten per row) named
 * grid_<attack>_l<norm>_eps<eps>.png, then the 8-bit re-check: the
 * adversarial PNGs read back and classified by net.  dir must exist.
 * check may be NULL.
 */
sl_status export_attack_set(const char *dir, struct nn_net *net, const struct export_shape *shape,
			    const struct export_example *e, int n, const struct attack_recipe *r,
			    export_check_fn check, void *check_ctx, struct export_summary *out,
			    struct sl_error *err);

#endif
