/*
 * certify: the robustness certificate of a trained network (DESIGN.md §1).
 *
 * For network indices (nu, delta) it allocates per-layer indices (Theorem 3,
 * sector.h), then checks every weighted layer of the network as it is used:
 * its verified spectral norm against the Theorem 4 cap rho_i and, when
 * asked, the exact LMI of Theorem 1 (lmi.h; dense layers within the size
 * limit).  The network has the indices when the allocation exists and every
 * layer passes one of the two; its Lipschitz bound is then gamma = k_hi.
 * Independently, the product of the layers' norms (times each pooling
 * layer's Lipschitz constant) is a second bound; the smaller certified one
 * is used for radii: an input classified with margin M keeps its class for
 * every L2 perturbation smaller than M / (sqrt(2) gamma), in the network's
 * pixel units (x / 255 - 0.5).
 *
 * What it does not do: print, train, or change the network's weights or
 * caps (the power iterations of capped layers run on copies of their
 * vectors; an uncapped layer's vectors are advanced, as nn_layer_norm
 * does).  Results are plain structs owned by the caller.
 */
#ifndef SECTORLAB_CERTIFY_H
#define SECTORLAB_CERTIFY_H

#include <stdbool.h>

#include "sectorlab/data.h"
#include "sectorlab/model.h"
#include "sectorlab/nn.h"
#include "sectorlab/sector.h"
#include "sectorlab/status.h"

/* A layer passes Theorem 4 when its verified norm is at most rho_i: no
 * tolerance.  Caps are enforced in float, so training aims this far below
 * each certified cap (sectorlab train and the lab do) and rounding never
 * takes a layer over it. */
#define CERTIFY_CAP_MARGIN 1e-5

/*
 * The one definition of "over the cap", used by certify, train's epoch line
 * and the lab: a layer whose weight in use measures sigma (verified, not
 * estimated) is over when sigma exceeds the bound its cap stands for (the
 * Theorem 4 bound for certified caps, the cap given otherwise; caps.h
 * caps_plan.bound).  No tolerance.  A bound <= 0 is no cap: never over.
 */
bool certify_over_cap(double sigma, double bound);

/* Called after each layer of the certificate is checked (done of total,
 * name "fc1"), so a caller can show progress; may be NULL. */
typedef void (*certify_layer_fn)(void *ctx, int done, int total, const char *name);

struct certify_options {
	double nu, delta;
	enum sector_objective objective;
	bool lmi;            /* also run the exact LMI on dense layers */
	certify_layer_fn on_layer;
	void *on_layer_ctx;
};

enum certify_lmi {
	CERTIFY_LMI_NOT_RUN,     /* not asked for */
	CERTIFY_LMI_CERTIFIED,   /* the exact LMI certifies (nu_i, delta_i) */
	CERTIFY_LMI_REFUTED,     /* it does not (nu_i > the largest certified nu) */
	CERTIFY_LMI_TOO_LARGE,   /* beyond LMI_MAX_ORDER */
	CERTIFY_LMI_CONV,        /* convolution operator: not attempted */
	CERTIFY_LMI_FAILED,      /* the solver failed; see lmi_message */
};

struct certify_layer {
	int index;               /* position in the network's layer table */
	char name[16];           /* "fc1", "conv1", "pool1" */
	enum sector_layer_kind kind;
	/* Weighted layers: */
	double sigma_power;      /* power iteration from the layer's vectors, converged */
	int power_iters;         /* steps it took */
	double sigma;            /* verified ||W_eff||_2: exact (SVD) or converged */
	bool sigma_exact;        /* true when sigma came from LAPACK's SVD */
	double s;                /* ||W_eff||_i (0 for wide or conv layers: safe) */
	double nu, delta;        /* allocated indices */
	double rho;              /* Theorem 4 cap at (nu, delta) with s = 0 */
	bool within;             /* sigma <= rho */
	enum certify_lmi lmi;
	double lmi_nu_max;       /* largest nu the exact LMI certifies at delta */
	char lmi_message[512];
	bool certified;          /* within, or certified by the exact LMI */
	/* Pooling layers: */
	double k;                /* Lipschitz constant */
};

struct certificate {
	double nu, delta;
	enum sector_objective objective; /* of the allocation */
	double sector_lo, sector_hi;  /* the network's sector, when it is one */
	bool allocated;               /* Theorem 3 allocation exists */
	char reason[1024];            /* why not, when !allocated or !sector_certified */
	struct sector_allocation alloc;
	int nlayers;                  /* weighted and pooling layers (flatten skipped) */
	struct certify_layer layer[NN_MAX_LAYERS];
	bool sector_certified;        /* the network has indices (nu, delta) */
	double gamma_sector;          /* k_hi when sector_certified, else 0 */
	double gamma_product;         /* product of norms and pooling constants */
	double gamma;                 /* the smaller certified bound */
};

/*
 * Certify net for opts.  SL_OK whenever the certificate could be computed,
 * whether or not it certifies (see sector_certified); errors only for bad
 * options or a failed computation.
 */
/*
 * The sector layers of an architecture's layer table (arch.h), in order, with
 * s = 0, mapped exactly as certify_network maps a network's layers: dense
 * and conv layers with their activation's sector, a k x k max pooling with
 * stride s as sqrt(ceil(k/s)^2)-Lipschitz, flatten skipped.  Returns their
 * number, or -1 with err set when there are more than max.
 */
int certify_arch_layers(const struct arch *arch, struct sector_layer *layers, int max,
			struct sl_error *err);

/* certify_arch_layers of a built-in model. */
int certify_model_layers(enum model_id model, struct sector_layer *layers, int max,
			 struct sl_error *err);

sl_status certify_network(struct nn_net *net, const struct certify_options *opts,
			  struct certificate *out, struct sl_error *err);

/*
 * Certified L2 radius of each of the first n examples of ds (all when n <= 0
 * or n > ds->n) for Lipschitz bound gamma >= 0: (margin - rounding) /
 * (sqrt(2) gamma) when the network classifies it correctly, else 0 (and
 * correct[i] = false); see certify_batch_radii.  radius
 * and correct have room for n entries; *count receives n.
 */
sl_status certify_radii(struct nn_net *net, const struct sl_dataset *ds, int n, double gamma,
			double *radius, bool *correct, int *count, struct sl_error *err);

/*
 * The rounding of the forward pass (certify.c derives the bound): after
 * nn_forward, certify_rounding_error bounds ||z_computed - z_exact||_2 for
 * one example of the batch, where z_exact is the same float weights
 * evaluated exactly, which is what every Lipschitz bound speaks of.  derived
 * is false when a layer ran through the DFT, for which the bound is an
 * allowance (a hundredfold the direct formula), not derived.
 */
struct certify_rounding {
	double in[NN_MAX_LAYERS], cst[NN_MAX_LAYERS], out[NN_MAX_LAYERS];
	bool derived;
};
sl_status certify_rounding_setup(const struct nn_net *net, struct certify_rounding *r,
				 struct sl_error *err);
double certify_rounding_error(const struct nn_net *net, const struct certify_rounding *r,
			      int row);

/*
 * The one rule that turns logits into a verdict, for certify and training
 * alike.  pair (classes, classes) holds pair constants: pair[y * classes + j]
 * bounds the Lipschitz constant of z_y - z_j (sqrt(2) gamma for a network
 * bound gamma; bounds.h has tighter ones).  For each row of logits (the last
 * forward pass of net, batch rows): correct[r] = (nn_argmax == y[r]), the
 * prediction every command uses; radius[r] = min over j != y of
 * (z_y - z_j - sqrt(2) E) / pair[y][j], where E is the rounding bound, 0
 * when a margin does not exceed sqrt(2) E or the row is wrong, INFINITY when
 * every pair constant is 0 (a constant network).
 */
void certify_batch_radii(const struct nn_net *net, const struct certify_rounding *rd,
			 const float *logits, const int *y, int batch, const double *pair,
			 double *radius, bool *correct);

/* pair[y][j] = sqrt(2) gamma off the diagonal, 0 on it. */
void certify_pairs_from_gamma(double gamma, int classes, double *pair);

/* certify_radii for ntables tables of pair constants at once (one forward
 * pass over ds): radius[t] (n entries each) under pairs[t]; correct (n)
 * does not depend on the table. */
sl_status certify_radii_tables(struct nn_net *net, const struct sl_dataset *ds, int n,
			       int ntables, const double *const *pairs, double *const *radius,
			       bool *correct, int *count, struct sl_error *err);

/* certify_radii for pair constants (certify_batch_radii over ds). */
sl_status certify_radii_pairs(struct nn_net *net, const struct sl_dataset *ds, int n,
			      const double *pair, double *radius, bool *correct, int *count,
			      struct sl_error *err);

/* Share of the n examples that are correct with radius > r. */
double certify_accuracy_at(const double *radius, const bool *correct, int n, double r);

/*
 * The network's Lipschitz bound as certify_network computes it, from one norm
 * per weighted layer (sigma, in the order of nn_weighted_layers): the
 * product of these norms and of the pooling layers' constants, replaced by
 * gamma_sector when that is positive and smaller (pass 0 when the sector is
 * not certified).  When grad is not NULL it receives d bound / d sigma_j
 * (zero when the sector's bound is used).  certify_network calls it with the
 * verified norms; the training losses (loss.h) with the running estimates at
 * every step, so both use one definition of the bound.
 */
double certify_bound(const struct nn_net *net, const double *sigma, double gamma_sector,
		     double *grad);

/*
 * What a certificate needs besides the layers' norms, for a bound kept
 * current at every training step: the Theorem 3 allocation at opts (each
 * weighted layer's Theorem 4 cap, in the order of nn_weighted_layers) and
 * the sector's k_hi.  It depends on the network's shape only.
 */
struct certify_plan {
	bool allocated;
	int nweighted;
	double rho[NN_MAX_LAYERS];
	double sector_hi;
};
sl_status certify_plan(const struct nn_net *net, const struct certify_options *opts,
		       struct certify_plan *out, struct sl_error *err);

/* certify_bound for norms sigma, with the sector's k_hi when the allocation
 * exists and every sigma_j <= rho_j (certify_network's test without the
 * exact LMI); grad as there. */
double certify_plan_bound(const struct certify_plan *plan, const struct nn_net *net,
			  const double *sigma, double *grad);

/* The radii certify reports by default (L2, pixels x / 255 - 0.5). */
#define CERTIFY_NDEFAULT_RADII 4
extern const double certify_default_radii[CERTIFY_NDEFAULT_RADII];
#define CERTIFY_MAX_RADII 8

/*
 * certify's radii with extra (when extra > 0 and not already among them)
 * added in increasing order; out has room for CERTIFY_MAX_RADII.  Returns
 * their number.
 */
int certify_radii_with(double extra, double *out);

/* Clean and certified accuracy of a network on a data set under one bound. */
struct certify_accuracy {
	int n;                      /* examples */
	double gamma;               /* the Lipschitz bound used */
	bool sector;                /* gamma is the sector's k_hi (else the product) */
	double clean;               /* share classified correctly */
	double median_radius;       /* median certified radius (0 for a wrong example) */
	double rounding_lost;       /* share classified correctly with no radius: a margin
				     * not above the rounding allowance (certify_rounding_lost) */
	int nradii;
	double radius[CERTIFY_MAX_RADII];
	double certified[CERTIFY_MAX_RADII]; /* share certified at radius[k] */
};

/*
 * Certified accuracy of net on the first n examples of ds (all when n <= 0)
 * at nradii radii under the bound of certificate c (certify_radii with
 * c->gamma): the one computation behind `certify` and train's per-epoch
 * metric.  nradii <= CERTIFY_MAX_RADII.
 */
sl_status certify_accuracy(struct nn_net *net, const struct certificate *c,
			   const struct sl_dataset *ds, int n, const double *radii, int nradii,
			   struct certify_accuracy *out, struct sl_error *err);

/* The same under pair constants (gamma and sector are left 0 / false). */
sl_status certify_accuracy_pairs(struct nn_net *net, const double *pair,
				 const struct sl_dataset *ds, int n, const double *radii,
				 int nradii, struct certify_accuracy *out, struct sl_error *err);

/* Share of the n examples classified correctly but certified at no radius
 * (radius 0): every margin's rival came within the rounding allowance
 * sqrt(2) E, so the certificate could not tell the prediction from the
 * forward pass's rounding. */
double certify_rounding_lost(const double *radius, const bool *correct, int n);

/* Fill out's n, clean, certified[] (at out->radius[0 .. nradii)),
 * rounding_lost and median_radius from n radii (sorted in place) and
 * verdicts. */
void certify_summarize(double *radius, const bool *correct, int n, struct certify_accuracy *out);

#endif
