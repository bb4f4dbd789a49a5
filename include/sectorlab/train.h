/*
 * train: the training loop as steps.
 *
 * A trainer owns a network, its optimizer, an RNG and its place in the epoch.
 * trainer_step does one mini-batch (forward, the loss and backward (loss.h),
 * the L2 penalty in l2 mode, the optimizer step, and one power-iteration step
 * per capped layer, or per weighted layer when the loss uses the network's
 * Lipschitz bound) and returns; the worker thread, the headless command and the
 * tests are all built from it.  The datasets are borrowed and must outlive
 * the trainer.  Given the seed and the number of BLAS threads, training is
 * deterministic.
 */
#ifndef SECTORLAB_TRAIN_H
#define SECTORLAB_TRAIN_H

#include <stdbool.h>
#include <stdint.h>

#include "sectorlab/caps.h"
#include "sectorlab/data.h"
#include "sectorlab/loss.h"
#include "sectorlab/model.h"
#include "sectorlab/nn.h"
#include "sectorlab/optim.h"
#include "sectorlab/rng.h"
#include "sectorlab/status.h"

/* vanilla: the loss alone; l2: plus l2 * sum ||W||_F^2 over the weights
 * (the authors' baseline); spnorm: every weighted layer capped (DESIGN.md §1). */
enum train_mode { TRAIN_VANILLA, TRAIN_L2, TRAIN_SPNORM };

struct train_config {
	struct arch arch;          /* the network; its input is fitted to the data */
	enum train_mode mode;
	struct caps_spec caps;     /* spnorm: where the caps come from (caps.h) */
	double l2;                 /* l2 mode: penalty weight (0.005) */
	struct optim_config optim; /* optimizer, learning rate and schedule */
	int epochs;
	int batch;                 /* 128 */
	uint64_t seed;
	uint32_t holdout;          /* the first `holdout` training images are held out */
	struct loss_config loss;   /* the training loss (loss.h); plain cross-entropy by default */
	int threads;               /* the network's threads (0: nn_threads(), the default) */
};

/* The paper's recipe for the MNIST network: mlp, vanilla, 10 epochs, batch
 * 128, Adam 1e-3, seed 1, holdout 5000, l2 weight 0.005; spnorm caps
 * certified at the paper's (-2, 0.4) (caps_spec_paper). */
struct train_config train_config_default(void);

/* The same for the architecture, with its own recipe (model_default_optim). */
struct train_config train_config_for(const struct arch *arch);

sl_status train_mode_parse(const char *name, enum train_mode *out, struct sl_error *err);
const char *train_mode_name(enum train_mode mode);

struct trainer {
	struct train_config cfg;
	struct caps_plan caps;     /* cfg.caps resolved (spnorm); nrho = 0 otherwise */
	struct nn_net *net;
	struct optim *opt;
	struct sl_rng rng;
	struct sl_dataset train;   /* view: examples after the holdout */
	struct sl_dataset val;     /* view: the held-out examples (may be empty) */
	const struct sl_dataset *test;
	uint32_t *perm;            /* (train.n) this epoch's order */
	uint32_t pos;              /* next position in perm */
	int weighted[NN_MAX_LAYERS]; /* indices of the weighted layers; rho[i] caps weighted[i] */
	int nweighted;
	int epoch;                 /* epochs completed */
	long step;                 /* optimizer steps taken */
	float *xb;                 /* (batch, in_dim) */
	int *yb;                   /* (batch) */
	int *pred;                 /* (batch) */
	uint32_t *idx;             /* (batch) evaluation's example indices */
	/* Running statistics of the current epoch. */
	double epoch_loss_sum;
	long epoch_seen, epoch_correct;
	/* The same, for the last completed epoch. */
	double last_epoch_loss, last_epoch_accuracy;
	/* As of the last epoch's end (or trainer_settle_caps): each weighted
	 * layer's verified ||W_eff||_2 and the power steps the slowest layer
	 * took to settle. */
	double sigma[NN_MAX_LAYERS];
	int settle_steps;
	/* The epoch's end in progress (trainer_end_step); private. */
	int end_phase;             /* 0: none, 1: settling, 2: measuring */
	bool end_counts;           /* it completes an epoch */
	int end_next;              /* measuring: the next weighted layer */
	int end_iters;             /* settling: the most power steps a layer took */
	int end_steps[NN_MAX_LAYERS];
	bool end_settled[NN_MAX_LAYERS];
	float end_prev[NN_MAX_LAYERS];
	/* A loss with a margin: the certificate's allocation (caps_certify_options of cfg.caps),
	 * fixed for the run, and the bound L of the last step. */
	struct certify_plan plan;
	double lipschitz;
};

struct train_step_info {
	double loss;        /* mean loss of this batch */
	double accuracy;    /* accuracy of this batch (before the update) */
	bool epoch_done;    /* this batch was the epoch's last: its end is due
			       (trainer_end_step) before the next batch */
};

/* Build a trainer: a fresh network with Glorot weights drawn from cfg->seed,
 * in spnorm mode capped at caps_resolve(cfg->caps) (its error when the caps
 * do not exist).  train must match the model's input shape. */
sl_status trainer_new(const struct train_config *cfg, const struct sl_dataset *train,
		      const struct sl_dataset *test, struct trainer **out,
		      struct sl_error *err);
void trainer_free(struct trainer *t);

/*
 * Cap a run in spnorm mode by another spec from the next step on, keeping
 * its weights and optimizer: cfg.caps, caps (resolved) and, for a loss
 * with a margin, plan follow the spec; each weighted layer's cap is set and
 * its scale follows at once.  SL_ERR_ARG for a run in another mode; the
 * caps' error when they do not exist (the run then keeps its caps).
 */
sl_status trainer_set_caps(struct trainer *t, const struct caps_spec *spec, struct sl_error *err);

/* One mini-batch.  A non-finite loss or parameter stops with SL_ERR_NUMERIC
 * naming the step.  After the epoch's last batch (info->epoch_done) the
 * epoch's end must run (trainer_end_step) before the next batch. */
sl_status trainer_step(struct trainer *t, struct train_step_info *info, struct sl_error *err);

/* The l2 penalty of the current weights (0 unless in l2 mode). */
double trainer_penalty(const struct trainer *t);

/* Steps per epoch (the last batch may be smaller). */
long trainer_steps_per_epoch(const struct trainer *t);

/*
 * The epoch's end, in bounded pieces, so that a worker can pause or stop
 * between them: first every weighted layer whose norm LAPACK cannot give
 * (convolutions, large dense layers) runs its own power iteration until it
 * settles (relative change at most 2e-7 a step, at most
 * TRAIN_SETTLE_ITERS steps; TRAIN_END_POWER_STEPS steps a call); then one
 * call per weighted layer measures it: dense layers exactly, their vectors
 * put on the top singular pair (nn_layer_exact_vectors), the others from
 * their settled vectors, and the scale of each is set from those vectors,
 * as the checkpoint loader will set it.  t->sigma then holds every layer's
 * ||W_eff||_2.  *done says the end is complete: t->epoch has grown by one
 * and the next epoch's order is drawn.  Nothing to do (no epoch ending):
 * *done at once.
 */
#define TRAIN_SETTLE_ITERS 3000
#define TRAIN_END_POWER_STEPS 8
sl_status trainer_end_step(struct trainer *t, bool *done, struct sl_error *err);

/* Is an epoch's end due or under way? */
bool trainer_ending(const struct trainer *t);

/* The epoch's end all at once when one is due (completing the epoch);
 * otherwise the same settling and measuring now without completing one
 * (before evaluating or exporting a network that has not finished an
 * epoch). */
sl_status trainer_settle_caps(struct trainer *t, struct sl_error *err);

/* Evaluation in bounded pieces: one batch a call. */
struct train_eval {
	const struct sl_dataset *ds;
	int n, pos;        /* examples to see, seen */
	long correct;
	double loss_sum;
};

/* Start evaluating the first n examples of ds (all when n <= 0). */
sl_status trainer_eval_begin(const struct trainer *t, struct train_eval *e,
			     const struct sl_dataset *ds, int n, struct sl_error *err);

/* One batch; returns true when all n are seen. */
bool trainer_eval_step(struct trainer *t, struct train_eval *e);

/* Accuracy and mean loss so far (0, 0 for none). */
void trainer_eval_result(const struct train_eval *e, double *accuracy, double *loss);

/* The held-out rule, in one place: the first 5,000 training images when the
 * set is a full one (over 50,000 images, as the paper holds out MNIST's),
 * none for the samples. */
uint32_t train_default_holdout(const struct sl_dataset *train);

/* Accuracy and mean loss of the current network on the first n examples of ds
 * (all when n <= 0): trainer_eval_begin, steps, result. */
sl_status trainer_evaluate(struct trainer *t, const struct sl_dataset *ds, int n,
			   double *accuracy, double *loss, struct sl_error *err);

/*
 * Certified accuracy of the current network on the first n examples of ds
 * (all when n <= 0) at nradii radii (<= CERTIFY_MAX_RADII): the certificate
 * `sectorlab certify` computes for cfg.caps (certify_network at
 * caps_certify_options), then certify_accuracy under it.  The one path
 * behind train's per-epoch metric and the lab's certified column.  A network
 * without certified caps still gets a bound: the product of its norms
 * (out->sector false).
 */
sl_status trainer_certified_accuracy(struct trainer *t, const struct sl_dataset *ds, int n,
				     const double *radii, int nradii,
				     struct certify_accuracy *out, struct sl_error *err);

#endif
