/*
 * loss: training losses that make bounded networks accurate (DESIGN.md §6).
 *
 * Caps bound the scale of the logits, not what a network can classify, and
 * plain cross-entropy on logits of Lipschitz bound ~0.1 stays in its linear
 * regime.  Each loss here reads the logits z of a batch through a
 * temperature tau and, for lmt and hinge, a margin m = sqrt(2) L R taken off
 * the true class's logit, where L is the network's Lipschitz bound as the
 * certificate computes it (certify_plan_bound of the layers' norms in use,
 * kept current at every step) and R the radius to certify.  With
 * s = tau (z - m e_y):
 *     ce     cross-entropy of softmax(tau z)          (tau = 1: today's loss)
 *     lmt    cross-entropy of softmax(s)              (Tsuzuku et al. 2018)
 *     hinge  max(0, 1 - (s_y - max_{j != y} s_j))     (multiclass, Crammer-Singer)
 * so lmt and hinge ask every training image to be certified at radius R
 * (hinge: at R plus 1 / (sqrt(2) L tau)).  The gradient flows through the
 * margin into every layer's norm as it flows through the caps (a layer on
 * its cap has norm rho whatever its weight, so it gets none).  Nothing here
 * changes the network, its predictions or its certificate: tau and the
 * margin live inside the loss only.
 *
 * The module does not own the network; loss_backward uses its buffers as
 * nn_backward does.
 */
#ifndef SECTORLAB_LOSS_H
#define SECTORLAB_LOSS_H

#include <stdbool.h>

#include "sectorlab/certify.h"
#include "sectorlab/nn.h"
#include "sectorlab/status.h"

enum loss_kind { LOSS_CE, LOSS_LMT, LOSS_HINGE };

struct loss_config {
	enum loss_kind kind;
	double tau;      /* temperature, > 0 */
	double radius;   /* lmt, hinge: the target radius R >= 0 (L2, pixels x/255 - 0.5) */
};

/* Plain cross-entropy: ce, tau 1, no radius. */
struct loss_config loss_config_plain(void);

/*
 * The defaults for bounded training with certified caps, chosen by the sweep
 * in the README ("Losses for bounded networks"): lmt with the tau and R
 * below.
 */
#define LOSS_DEFAULT_TAU 50.0
#define LOSS_DEFAULT_RADIUS 0.6
struct loss_config loss_config_certified(void);

sl_status loss_kind_parse(const char *name, enum loss_kind *out, struct sl_error *err);
const char *loss_kind_name(enum loss_kind kind);

/* SL_ERR_ARG unless tau is finite and > 0 and radius finite and >= 0. */
sl_status loss_config_check(const struct loss_config *c, struct sl_error *err);

/* Is it nn_backward's cross-entropy (ce at tau 1)? */
bool loss_is_plain(const struct loss_config *c);

/* Does it use the network's Lipschitz bound (lmt, hinge with R > 0)? */
bool loss_uses_bound(const struct loss_config *c);

/*
 * The loss of logits z (batch, classes) for labels y with margin m: its mean
 * over the batch is returned, each example's loss goes to row (batch; may
 * be NULL), d mean / d z to dz (batch, classes; may be NULL) and
 * d mean / d m to *dmargin (may be NULL).
 */
double loss_logits(const struct loss_config *c, const float *z, const int *y, int batch,
		   int classes, double margin, float *row, float *dz, double *dmargin);

/*
 * The Lipschitz bound the margin uses for net as it stands: certify_plan_bound
 * of every weighted layer's norm in use (sigma_hat * scale: the running
 * power-iteration estimate, which training keeps current at every step).
 * d L / d sigma_j goes to grad (NN_MAX_LAYERS entries) when not NULL.
 */
double loss_lipschitz(const struct nn_net *net, const struct certify_plan *plan, double *grad);

/*
 * The loss of net's last forward pass against labels y, and its gradient
 * into net->grads (every parameter: through the logits and, for a margin,
 * through the layers' norms).  *lipschitz (may be NULL) receives the L
 * used.  Leaves each example's loss in net->row_loss.  Returns the mean.
 */
double loss_backward(struct nn_net *net, const struct loss_config *c,
		     const struct certify_plan *plan, const int *y, double *lipschitz);

#endif
