/*
 * lab: the lab's model, without a terminal.
 *
 * A lab owns the datasets, up to LAB_MAX_LANES runs ("lanes") that train
 * side by side, each a job (job.h) on its own worker thread with its own
 * network, and the controls they share, held here once: pause, single
 * steps, pace, learning rate, eps, the test digit shown, planned epochs.
 * Every lane trains from the same seed on the same batches, so lanes differ
 * only in their mode, caps and loss: the race of vanilla, L2, certified and
 * certified + margin training is four lanes.  A screen (or a test) reads each lane's latest
 * snapshot and sends requests; the lab never draws and never prints.
 *
 * A lane's caps are a caps spec (caps.h) in its training config, resolved
 * by the trainer; lab_lane_make builds the lanes of the race from one base
 * configuration, and lab_restart_lane trains a lane anew with another spec.
 */
#ifndef SECTORLAB_LAB_H
#define SECTORLAB_LAB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sectorlab/caps.h"
#include "sectorlab/data.h"
#include "sectorlab/job.h"
#include "sectorlab/sector.h"
#include "sectorlab/status.h"
#include "sectorlab/train.h"

#define LAB_MAX_LANES 4

/* What a lane is: "vanilla", "L2", "spnorm", "authors" (uncertified caps),
 * "margin" (certified + margin: spnorm under the certified caps, trained
 * with the loss train uses for them, loss_config_certified: lmt). */
enum lab_lane_kind {
	LAB_LANE_VANILLA, LAB_LANE_L2, LAB_LANE_SPNORM, LAB_LANE_AUTHORS, LAB_LANE_MARGIN
};

/* The race when no lanes are named: vanilla, L2, spnorm, margin. */
#define LAB_RACE_LANES 4

/* The L2 radius of the certified accuracy the lab shows (pixels x/255 - 0.5,
 * as `certify`; the goal radius). */
#define LAB_CERT_RADIUS 0.5

/* Parse "vanilla", "l2", "spnorm", "authors", "margin". */
sl_status lab_lane_kind_parse(const char *name, enum lab_lane_kind *out, struct sl_error *err);
const char *lab_lane_kind_name(enum lab_lane_kind kind);

/* One lane: what it is and how it trains (mode, caps spec, loss,
 * optimizer, seed, epochs: a training config as train's). */
struct lab_lane_config {
	enum lab_lane_kind kind;
	struct train_config train;
};

/*
 * The lane of kind from base (architecture, optimizer, seed, epochs):
 * vanilla and l2 without caps, spnorm capped by spnorm_caps, authors by the
 * authors' caps, margin capped by spnorm_caps (certified caps: SL_ERR_ARG
 * otherwise) with loss_config_certified.  The other lanes keep base's loss.  Fails (SL_ERR_ARG, SL_ERR_INFEASIBLE, ...) with the reason
 * when the caps do not exist for base's architecture.
 */
sl_status lab_lane_make(enum lab_lane_kind kind, const struct train_config *base,
			const struct caps_spec *spnorm_caps, struct lab_lane_config *out,
			struct sl_error *err);

struct lab_config {
	int nlanes;
	struct lab_lane_config lane[LAB_MAX_LANES];
	float eps;            /* attack strength shown */
	int pace;             /* steps per second per lane; 0: full speed */
	int eval_n;           /* test images for the per-epoch figures (0: all) */
	double cert_radius;   /* certified accuracy shown at this radius (0: none) */
	bool paused;          /* open paused */
	char title[160];      /* what runs, for screens (lab_title_of) */
	enum data_kind data;  /* the dataset the lanes train on */
	uint32_t digit;       /* the test image shown at first */
	/* Called on the lane's worker thread after each of its epochs (see
	 * job_config.on_epoch), for the lanes whose bit is set in hook_lanes.
	 * A lane's old and new runs never call it at once. */
	sl_status (*on_epoch)(void *ctx, const struct trainer *t, double test_acc,
			      struct sl_error *err);
	void *on_epoch_ctx;
	unsigned hook_lanes;
};

/* The controls every lane shares, as the lab holds them. */
struct lab_controls {
	bool paused;
	int pace;
	float eps;
	uint32_t digit;       /* test image shown */
	double lr_scale;      /* learning rate: each lane's base rate times this */
	int epochs;           /* planned epochs, every lane (lane 0's at the start) */
};

struct lab;

/* Start every lane (paused when cfg->paused).  Takes the datasets: the lab
 * frees them (also on failure). */
sl_status lab_new(const struct lab_config *cfg, struct sl_dataset *train,
		  struct sl_dataset *test, struct lab **out, struct sl_error *err);
/* Stop every lane and free everything.  Safe with NULL. */
void lab_free(struct lab *lab);

int lab_lanes(const struct lab *lab);
const struct lab_lane_config *lab_lane(const struct lab *lab, int lane);
const struct sl_dataset *lab_test_set(const struct lab *lab);
const struct sl_dataset *lab_train_set(const struct lab *lab);
/* The title of what runs (lab_config.title, or lab_data.title after a switch). */
const char *lab_title(const struct lab *lab);
/* The dataset the lanes train on (lab_config.data, or lab_data.data). */
enum data_kind lab_data_kind(const struct lab *lab);

/* Test images evaluated after each epoch, by the images' size: 1000 grey
 * ones, 200 colour ones (an epoch's figures stay within seconds). */
int lab_default_eval_n(const struct sl_dataset *test);
/* "mlp on the MNIST sample (8000 train, 2000 test)": the network's label,
 * the data (the embedded sample named as such), the training images after
 * the hold-out and the test images. */
void lab_title_of(char *buf, size_t cap, const char *net_label, enum data_kind kind,
		  const struct sl_dataset *train, uint32_t holdout, const struct sl_dataset *test);
struct lab_controls lab_controls(const struct lab *lab);

/* The latest published state of a lane.  (The lab frees the datasets of
 * before a switch here, once every lane's snapshot shows a run on the new
 * ones: the lab is used from one thread.) */
void lab_snapshot(struct lab *lab, int lane, struct job_snapshot *out);

/* A copy of lane's network for work on another thread (job_request_net,
 * job_copy_net): ask, then poll with the ticket until *ready; dst has the
 * lane's layers (arch_build of lab_lane(lab, lane)->train.arch).  A lane
 * restarts when its worker gets to it: a ticket asked for before may be
 * served by the old run or the new one.  Main thread. */
long lab_request_net(struct lab *lab, int lane);
sl_status lab_copy_net(struct lab *lab, int lane, long ticket, struct nn_net *dst, bool *ready,
		       long *step, struct sl_error *err);

/* Requests; each applies to every lane at once. */
void lab_set_paused(struct lab *lab, bool paused);
/* Pause, then train one mini-batch in every lane. */
void lab_step(struct lab *lab);
/* Pause, then train every lane to the end of its current epoch. */
void lab_step_epoch(struct lab *lab);
void lab_set_pace(struct lab *lab, int steps_per_sec);
/* eps clamped to [0, 1]. */
void lab_set_eps(struct lab *lab, float eps);
void lab_set_digit(struct lab *lab, uint32_t index);
/* Multiply every lane's learning rate by factor (> 0). */
void lab_scale_lr(struct lab *lab, double factor);
/* Plan `more` epochs beyond the current plan (resumes finished lanes). */
void lab_more_epochs(struct lab *lab, int more);

/*
 * Restarts.  Both return at once: each lane's worker builds its new run
 * between two steps (job_restart), keeps the old run's curves as its
 * snapshot's ghost and counts the run (job_snapshot.run); until then the
 * snapshot shows the old run.  A run that cannot be built leaves the old
 * one going, its snapshot's restart_error saying why.
 */
/* Every lane from the start with the same seed (the controls stay). */
sl_status lab_reset(struct lab *lab, struct sl_error *err);
/* Lane `lane` from the start in spnorm mode capped by spec (a lane of kind
 * authors for the authors' caps; a margin lane stays one, with its loss,
 * under certified caps; else spnorm); the rest of its config stays.  When
 * the caps do not exist the lane keeps running as it was and the error
 * says why. */
sl_status lab_restart_lane(struct lab *lab, int lane, const struct caps_spec *spec,
			   struct sl_error *err);
/* The same as a lane of kind (spnorm, margin or authors; margin only under
 * certified caps, authors only under the authors' caps): a margin lane
 * trains with loss_config_certified, the others with the loss of the
 * lane's base (plain cross-entropy when it was a margin lane). */
sl_status lab_restart_lane_as(struct lab *lab, int lane, enum lab_lane_kind kind,
			      const struct caps_spec *spec, struct sl_error *err);
/* Lane `lane`, training capped (spnorm, margin or authors), trains on
 * under the caps of spec from its next step, with the weights it has (the
 * norms follow at once); its config keeps the spec, so a reset starts under
 * it.  A lane without caps (vanilla, L2) is refused with SL_ERR_ARG (restart
 * it instead), as is a margin lane given caps that are not certified; when
 * the caps do not exist the lane trains on as it was and the error says
 * why. */
sl_status lab_set_caps(struct lab *lab, int lane, const struct caps_spec *spec,
		       struct sl_error *err);


/* Lane `lane` from the start as a lane of kind (vanilla, l2, spnorm, margin,
 * authors: lab_lane_make on its network), capped lanes under the lab's caps
 * spec (the lane's own when it has one).  Returns at once (see Restarts);
 * SL_ERR_ARG etc. when the kind cannot train on this network (the margin
 * lane without certified caps, the authors' caps of a model that has none),
 * the lane untouched. */
sl_status lab_set_lane_kind(struct lab *lab, int lane, enum lab_lane_kind kind,
			    struct sl_error *err);

/* Another network and data for every lane (the model and dataset chosen in
 * the lab).  The caller loads the data (off the thread that draws: a task). */
struct lab_data {
	struct arch arch;                 /* fitted to the data's images */
	enum data_kind data;
	struct sl_dataset train, test;    /* taken by lab_switch, also on failure */
	uint32_t holdout;                 /* train_default_holdout(&train) */
	int eval_n;                       /* test images for each epoch's figures */
	char title[160];
};

/*
 * Every lane from the start on d's network and data, each keeping its kind,
 * caps spec (resolved anew for the network), loss, seed and epochs, with the
 * network's own optimizer recipe (train_config_for).  Returns at once (see
 * Restarts): the old datasets are freed once no lane trains on them.  Fails,
 * every lane untouched, when a lane's kind has no caps for the network (the
 * authors' caps of a spec) or a switch is still under way.
 */
sl_status lab_switch(struct lab *lab, struct lab_data *d, struct sl_error *err);

#endif
