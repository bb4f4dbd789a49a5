/*
 * train: the training loop as steps.
 *
 * A trainer owns a network, its optimizer, an RNG and its place in the epoch.
 * trainer_step does one mini-batch (forward, backward, the L2 penalty in l2
 * mode, the optimizer step, and in spnorm mode one power-iteration step per
 * capped layer) and returns; the worker thread, the headless command and the
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
#include "sectorlab/model.h"
#include "sectorlab/nn.h"
#include "sectorlab/optim.h"
#include "sectorlab/rng.h"
#include "sectorlab/status.h"

/* vanilla: plain cross-entropy; l2: plus l2 * sum ||W||_F^2 over the weights
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
	/* Running statistics of the current epoch. */
	double epoch_loss_sum;
	long epoch_seen, epoch_correct;
	/* The same, for the last completed epoch. */
	double last_epoch_loss, last_epoch_accuracy;
	/* As of the last trainer_settle_caps (every epoch's end): each weighted
	 * layer's verified ||W_eff||_2 (nn_layer_norm) and the power steps the
	 * caps took to settle. */
	double sigma[NN_MAX_LAYERS];
	int settle_steps;
};

struct train_step_info {
	double loss;        /* mean loss of this batch */
	double accuracy;    /* accuracy of this batch (before the update) */
	bool epoch_done;    /* this step finished an epoch */
};

/* Build a trainer: a fresh network with Glorot weights drawn from cfg->seed,
 * in spnorm mode capped at caps_resolve(cfg->caps) (its error when the caps
 * do not exist).  train must match the model's input shape. */
sl_status trainer_new(const struct train_config *cfg, const struct sl_dataset *train,
		      const struct sl_dataset *test, struct trainer **out,
		      struct sl_error *err);
void trainer_free(struct trainer *t);

/* One mini-batch.  A non-finite loss or parameter stops with SL_ERR_NUMERIC
 * naming the step. */
sl_status trainer_step(struct trainer *t, struct train_step_info *info, struct sl_error *err);

/* The l2 penalty of the current weights (0 unless in l2 mode). */
double trainer_penalty(const struct trainer *t);

/* Steps per epoch (the last batch may be smaller). */
long trainer_steps_per_epoch(const struct trainer *t);

/*
 * Run the capped layers' power iterations to convergence (relative change
 * below 2e-7, at most max_iters steps), then measure every weighted layer
 * (nn_layer_norm, into t->sigma) and put a capped layer whose weight in use
 * measures above its cap back on it, so the caps hold against the true
 * norms, as before an evaluation or export.  trainer_step does this at the
 * end of every epoch with TRAIN_SETTLE_ITERS.
 */
#define TRAIN_SETTLE_ITERS 1000
sl_status trainer_settle_caps(struct trainer *t, int max_iters, struct sl_error *err);

/* Accuracy and mean loss of the current network on the first n examples of ds
 * (all when n <= 0). */
sl_status trainer_evaluate(struct trainer *t, const struct sl_dataset *ds, int n,
			   double *accuracy, double *loss, struct sl_error *err);

#endif
