/*
 * job: one training run on its own worker thread, watched through snapshots.
 *
 * The worker owns its trainer (and so its own network and optimizer);
 * nobody else touches them.  It runs the epoch driver (driver.h) step by
 * step and, every few
 * steps and after every epoch, publishes a copy of what a screen needs
 * (curves on one epoch axis, per-layer norms with their history, clean,
 * FGSM and PGD accuracy, robust accuracy against eps, one test digit and its
 * adversarial) under a mutex.  Other threads read the latest copy with
 * job_snapshot and steer with the controls below, which the worker reads
 * between steps; a control never waits for a step to finish.
 *
 * The lab (lab.h) runs several jobs side by side and holds their controls;
 * job is the single run it is built from.
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
#define JOB_EPS_POINTS 7    /* robust accuracy against eps: 0, 0.05, ..., 0.3 */
#define JOB_PGD_STEPS 10    /* PGD shown: L-inf, 10 steps of 2.5 eps / 10 */
#define JOB_ATTACK_N 500    /* test images attacked for the figures (at most) */
#define JOB_CURVE_N 200     /* ... for robust accuracy against eps */
#define JOB_ATTACK_CHUNK 50 /* images attacked between two looks at the controls */

/* A curve that keeps at most JOB_HIST points by merging neighbours when
 * full: point i averages raw values [i * stride, (i + 1) * stride). */
struct job_series {
	int n;          /* points stored */
	int stride;     /* raw values per stored point */
	int pending;    /* raw values in the point being filled */
	double sum;     /* their sum */
	float v[JOB_HIST];
};

void job_series_push(struct job_series *s, float value);
/* The latest value pushed (the point being filled counts), or fallback when
 * nothing was pushed. */
float job_series_last(const struct job_series *s, float fallback);

enum job_state { JOB_STARTING, JOB_RUNNING, JOB_PAUSED, JOB_DONE, JOB_FAILED };

/* The curves of the run before the last restart (job_restart), kept so a
 * screen can draw the new run over the old one. */
struct job_ghost {
	bool have;
	int run;                      /* which run it was (see job_snapshot.run) */
	long step, steps_per_epoch;
	bool loss_plain;              /* trained with plain cross-entropy */
	char caps_note[64];
	struct job_series loss, train_acc, test_acc, test_loss, certified;
};

struct job_snapshot {
	enum job_state state;
	char message[512];            /* the error when JOB_FAILED */
	int run;                      /* restarts so far (0: the first run) */
	char restart_error[512];      /* why the last restart could not start ("" if it did) */
	struct job_ghost ghost;       /* the previous run, after a restart */
	int epoch, epochs;            /* epochs completed, planned */
	long step, steps_per_epoch;
	double seconds;               /* training time so far */
	double images_per_sec;        /* over the last second of running, sleeps included */
	double lr;                    /* learning rate in use */
	uint64_t seed;
	enum train_mode mode;
	bool rho_certified;
	char caps_note[64];           /* "certified: nu -2, delta 0.4", "no caps (l2)" */
	/* One value per training step: loss[i] covers steps
	 * [i * stride, (i + 1) * stride), so step s sits at epoch
	 * s / steps_per_epoch on the same axis as the per-epoch curves. */
	struct job_series loss;       /* mean training loss */
	struct job_series train_acc;  /* training accuracy */
	/* One value per completed epoch (value k after epoch k + 1). */
	int nevals;
	struct job_series test_acc;   /* test accuracy */
	struct job_series test_loss;  /* mean test loss */
	struct job_series fgsm_acc;   /* robust accuracy under FGSM at the eps of that epoch */
	struct job_series pgd_acc;    /* the same under PGD */
	/* Per weighted layer (conv, dense), by name: power-iteration estimate
	 * of the raw ||W||_2, the norm of the weight in use (sigma_hat * scale),
	 * its verified value after each epoch (0 before; see nn_layer_norm),
	 * the cap (0: none), and the history of the norm in use. */
	int nlayers;
	char layer_name[NN_MAX_LAYERS][16];
	float sigma_hat[NN_MAX_LAYERS];
	float sigma_used[NN_MAX_LAYERS];
	double sigma_exact[NN_MAX_LAYERS];
	float rho[NN_MAX_LAYERS];
	bool over[NN_MAX_LAYERS];     /* the verified norm is over the cap
					 (certify_over_cap), as of the last epoch */
	struct job_series sigma_hist[NN_MAX_LAYERS];
	/* Clean accuracy and robust accuracy under FGSM and PGD (L-inf, true
	 * labels, clipped) on the first attack_n test images (the evaluation
	 * subset, at most JOB_ATTACK_N) at eps.  Recomputed
	 * after every epoch (before the next batch) and whenever eps changes,
	 * also when paused or done, in chunks of JOB_ATTACK_CHUNK images
	 * between which the worker serves the controls. */
	float eps;                    /* what the controls ask for */
	bool have_attack;
	float attack_eps;             /* the eps the figures below belong to */
	double clean_acc, robust_acc, pgd_robust_acc, success_rate;
	int attack_n;
	/* Robust accuracy under FGSM against eps after the last epoch, on the
	 * first JOB_CURVE_N test images at most. */
	bool have_curve;
	float curve_eps[JOB_EPS_POINTS], curve_acc[JOB_EPS_POINTS];
	/* Certified accuracy after each epoch: the share of the evaluation
	 * subset classified correctly with a certified L2 radius over
	 * cert_radius (pixels x/255 - 0.5), under the certificate `sectorlab
	 * certify` computes for the run's caps (trainer_certified_accuracy):
	 * the sector's bound when the caps certify it, else the product of the
	 * layers' norms, which any network has.  Computed before the attacks. */
	bool have_cert;
	double cert_radius;
	double cert_acc;              /* the latest epoch's */
	double cert_gamma;            /* the Lipschitz bound it used */
	bool cert_sector;             /* the sector's bound (else the product) */
	int cert_n;                   /* examples */
	struct job_series certified;  /* cert_acc, one value per epoch */
	/* One test image (the controls pick it) and its FGSM adversarial at
	 * example_eps. */
	bool have_example;
	uint32_t example_index;
	float example_eps;
	int img_c, img_h, img_w;
	uint8_t orig[JOB_MAX_PIXELS], adv[JOB_MAX_PIXELS];
	int label, pred_clean, pred_adv;
};

struct job_config {
	struct train_config train;
	float eps;          /* attack strength shown */
	int eval_n;         /* test images used for the per-epoch evaluation (0: all) */
	double cert_radius; /* certified accuracy at this radius after each epoch (0: none) */
	int steps_per_sec;  /* pace for live demos; 0: as fast as possible */
	bool paused;        /* start paused */
	uint32_t example;   /* the test image shown */
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

/* Controls: each takes effect between two steps of the worker. */
void job_set_paused(struct job *job, bool paused);
void job_set_pace(struct job *job, int steps_per_sec);
void job_set_eps(struct job *job, float eps);
/* Show test image index (modulo the test set's size). */
void job_set_example(struct job *job, uint32_t index);
/* While paused: train `batches` more mini-batches, then stay paused. */
void job_step(struct job *job, int batches);
/* While paused: train to the end of the current epoch, then stay paused. */
void job_step_epoch(struct job *job);
/* Base learning rate (the schedule applies on top). */
void job_set_lr(struct job *job, double lr);
/* Planned epochs: more than done resumes a finished run. */
void job_set_epochs(struct job *job, int epochs);
/*
 * Train anew under cfg (its train config, learning rate, epochs, eval and
 * hook; the controls pause, pace, eps and the example stay) on these
 * datasets (borrowed as job_start's: they must outlive the run): returns at
 * once, and the worker builds the new run between two of its steps, keeps
 * the old run's curves as the snapshot's ghost and counts the run (run);
 * single steps asked for after this call go to the new run.  A later
 * request replaces one not yet carried out.  If the new run cannot be
 * built the old one goes on, on its own datasets, and restart_error says
 * why; once the snapshot's run has grown, the job no longer touches the
 * old datasets.
 */
void job_restart(struct job *job, const struct job_config *cfg, const struct sl_dataset *train,
		 const struct sl_dataset *test);
/* A spnorm run: train under the caps of spec from the next step on, with
 * the weights it has (trainer_set_caps; applied between steps, not while an
 * epoch's end measures the layers, and also when paused or done).  The
 * caller checks that the caps exist for the run: should they fail to
 * apply, the job fails with the reason.  Caps asked for before a restart
 * are the old run's: the new run trains under its own config's. */
void job_set_caps(struct job *job, const struct caps_spec *spec);

/*
 * A copy of the network for work on another thread (attacks, certificates),
 * which must never touch the worker's own.  job_request_net asks the
 * worker for a copy as it stands between two steps and returns a ticket;
 * job_copy_net never waits: once the worker has published a copy for that
 * ticket (or a later one), it copies it into dst (a network of the same
 * layers, e.g. arch_build of the run's arch; any batch size: nn_copy_weights)
 * and sets *ready and *step (the training step it was taken at; step may
 * be NULL), else leaves dst alone and asks again.  A worker serves
 * the request within one step or attack chunk, also when paused or done;
 * a failed run's network is copied as it stopped.  Call both from any
 * thread but the worker's.
 */
long job_request_net(struct job *job);
sl_status job_copy_net(struct job *job, long ticket, struct nn_net *dst, bool *ready,
		       long *step, struct sl_error *err);

/* Stop the worker (between steps) and wait for it; frees everything.
 * Safe with NULL. */
void job_stop(struct job *job);

#endif
