/*
 * driver: the epoch loop of `sectorlab train` and of the lab, as steps.
 *
 * A driver runs a trainer through its epochs one bounded piece at a time: a
 * mini-batch (trainer_step), a piece of an epoch's end (trainer_end_step:
 * settling the caps, measuring the norms), one batch of the evaluation on
 * the held-out and the test images, and the epoch hook, each in its own
 * call to driver_step.  Whoever calls it (the command line, the lab's worker
 * thread, a test) can pause, stop or redraw between any two calls.
 *
 * The driver borrows the trainer and the test set; it owns nothing and
 * never prints.
 */
#ifndef SECTORLAB_DRIVER_H
#define SECTORLAB_DRIVER_H

#include <stdbool.h>

#include "sectorlab/data.h"
#include "sectorlab/status.h"
#include "sectorlab/train.h"

/* What one completed epoch measured, for the hook. */
struct epoch_report {
	int epoch, epochs;                 /* completed, planned */
	long step;
	double train_loss, train_accuracy; /* over the epoch's batches */
	double val_accuracy, val_loss;     /* held-out images; -1 when none */
	double test_accuracy, test_loss;   /* -1 without a test set */
	int test_n;                        /* test images evaluated */
	const double *sigma;               /* (nweighted) verified ||W_eff||_2 */
	int settle_steps;
};

/* Called once per completed epoch, after its evaluation; an error stops the
 * driver with it.  The trainer is settled and evaluated: the hook may save,
 * log, attack or certify it (not train it). */
typedef sl_status (*driver_epoch_fn)(void *ctx, struct trainer *t, const struct epoch_report *r,
				     struct sl_error *err);

struct driver_config {
	const struct sl_dataset *test; /* may be NULL */
	int test_n;                    /* test images evaluated after each epoch (0: all) */
	bool validate;                 /* evaluate the held-out images too */
	driver_epoch_fn on_epoch;      /* may be NULL */
	void *ctx;
};

enum driver_phase { DRIVER_TRAIN, DRIVER_END, DRIVER_VAL, DRIVER_TEST, DRIVER_HOOK };

struct driver {
	struct driver_config cfg;
	struct trainer *t;
	enum driver_phase phase;
	struct train_eval eval;
	struct epoch_report report;
};

/* What one driver_step did. */
struct driver_step_info {
	bool batch;                 /* it trained a batch: loss and accuracy are set */
	double loss, accuracy;
	bool epoch_done;            /* it completed an epoch (the hook has run) */
};

void driver_init(struct driver *d, struct trainer *t, const struct driver_config *cfg);

/* One bounded piece of work (see above).  Nothing to do when finished. */
sl_status driver_step(struct driver *d, struct driver_step_info *info, struct sl_error *err);

/* Have the trainer's planned epochs all completed? */
bool driver_finished(const struct driver *d);

/* Is an epoch's end (settling, measuring, evaluating, the hook) under way? */
bool driver_in_epoch_end(const struct driver *d);

#endif
