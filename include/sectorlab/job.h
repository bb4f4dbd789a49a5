/*
 * job: training on one worker thread, watched through snapshots.
 *
 * The worker owns the trainer; nobody else touches it.  It runs
 * trainer_step in a loop and, every few steps, publishes a copy of what a
 * screen needs (curves, per-layer norms, an FGSM example) under a mutex.
 * The UI thread reads the latest copy with job_snapshot and steers with
 * pause, speed and cancel, which the worker checks between steps.
 */
#ifndef SECTORLAB_JOB_H
#define SECTORLAB_JOB_H

#include <stdbool.h>
#include <stdint.h>

#include "sectorlab/data.h"
#include "sectorlab/nn.h"
#include "sectorlab/status.h"
#include "sectorlab/train.h"

#define JOB_HIST 256        /* points kept per curve (older ones are merged) */
#define JOB_MAX_PIXELS 3072 /* up to 3 x 32 x 32 */

/* A curve that keeps at most JOB_HIST points by merging neighbours when full. */
struct job_series {
	int n;          /* points stored */
	int stride;     /* raw values per stored point */
	int pending;    /* raw values in the point being filled */
	double sum;     /* their sum */
	float v[JOB_HIST];
};

void job_series_push(struct job_series *s, float value);

enum job_state { JOB_STARTING, JOB_RUNNING, JOB_PAUSED, JOB_DONE, JOB_FAILED };

struct job_snapshot {
	enum job_state state;
	char message[512];            /* the error when JOB_FAILED */
	int epoch, epochs;            /* epochs completed, planned */
	long step, steps_per_epoch;
	double seconds;               /* training time so far */
	double images_per_sec;
	uint64_t seed;
	enum train_mode mode;
	bool rho_certified;
	struct job_series loss;       /* mean training loss per point */
	struct job_series train_acc;  /* training accuracy per point */
	int nevals;
	struct job_series test_acc;   /* test accuracy after each epoch */
	/* Per weighted layer (conv, dense), by name: power-iteration estimate
	 * of the raw ||W||_2, the norm of the weight in use (sigma_hat * scale),
	 * its verified value after each epoch (0 before; see nn_layer_norm),
	 * and the cap (0: none). */
	int nlayers;
	char layer_name[NN_MAX_LAYERS][16];
	float sigma_hat[NN_MAX_LAYERS];
	float sigma_used[NN_MAX_LAYERS];
	double sigma_exact[NN_MAX_LAYERS];
	float rho[NN_MAX_LAYERS];
	bool over[NN_MAX_LAYERS];     /* the verified norm is over the cap
					 (certify_over_cap), as of the last epoch */
	/* FGSM (L-infinity, true labels) on the evaluation subset after each epoch. */
	float eps;
	bool have_attack;
	double clean_acc, robust_acc, success_rate;
	int attack_n;
	/* One test image and its FGSM adversarial. */
	bool have_example;
	uint32_t example_index;
	int img_c, img_h, img_w;
	uint8_t orig[JOB_MAX_PIXELS], adv[JOB_MAX_PIXELS];
	int label, pred_clean, pred_adv;
};

struct job_config {
	struct train_config train;
	float eps;          /* FGSM strength shown */
	int eval_n;         /* test images used for the per-epoch evaluation (0: all) */
	int steps_per_sec;  /* pace for live demos; 0: as fast as possible */
	/* Called on the worker thread after each epoch's evaluation, with the
	 * test accuracy it measured (-1 without a test set), e.g. to save a
	 * checkpoint; an error fails the job with its message.  May be NULL. */
	sl_status (*on_epoch)(void *ctx, const struct trainer *t, double test_acc,
			      struct sl_error *err);
	void *on_epoch_ctx;
};

struct job;

/* Start training on a new worker thread.  The datasets are borrowed and must
 * outlive the job. */
sl_status job_start(const struct job_config *cfg, const struct sl_dataset *train,
		    const struct sl_dataset *test, struct job **out, struct sl_error *err);

/* Copy the latest published state. */
void job_snapshot(struct job *job, struct job_snapshot *out);

void job_set_paused(struct job *job, bool paused);
void job_set_pace(struct job *job, int steps_per_sec);
void job_set_eps(struct job *job, float eps);
/* Ask for the next test image's adversarial example. */
void job_next_example(struct job *job);

/* Stop the worker (between steps) and wait for it; frees everything.
 * Safe with NULL. */
void job_stop(struct job *job);

#endif
