/*
 * attack: adversarial examples against a network, and their metrics.
 *
 * Pixels are on the network's scale (x / 255 - 0.5, so the box is
 * [-0.5, 0.5]) and eps is in the same units (as on a [0, 1] scale).
 * The input gradient is the one training uses (nn_backward with want_input).
 * The core does not print: results come back in structs.
 */
#ifndef SECTORLAB_ATTACK_H
#define SECTORLAB_ATTACK_H

#include "sectorlab/data.h"
#include "sectorlab/nn.h"
#include "sectorlab/status.h"

#define ATTACK_PIXEL_MIN (-0.5f)
#define ATTACK_PIXEL_MAX 0.5f

/*
 * FGSM in L-infinity: x_adv = clip(x + eps * sign(grad_x loss(x, y)), box).
 * sign(0) = 0.  x and x_adv are (batch, in_dim) and may not overlap.
 * Returns how many examples had an all-zero input gradient.
 */
int attack_fgsm(struct nn_net *net, const float *x, const int *y, int batch, float eps,
		float *x_adv);

struct attack_result {
	float eps;
	int n;              /* images attacked */
	int clean_correct;  /* correct before the attack */
	int robust_correct; /* correct before and after */
	int zero_grad;      /* images whose input gradient was exactly zero */
	double clean_accuracy;      /* clean_correct / n */
	double robust_accuracy;     /* robust_correct / n */
	double attack_success_rate; /* 1 - robust_correct / clean_correct (0 if none) */
};

/* FGSM with the true labels on the first n examples of ds (all when n <= 0
 * or n > ds->n), in batches of at most net->max_batch. */
sl_status attack_eval_fgsm(struct nn_net *net, const struct sl_dataset *ds, int n, float eps,
			   struct attack_result *out, struct sl_error *err);

#endif
