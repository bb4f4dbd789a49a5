/* lab: lanes of training side by side, and the controls they share (see lab.h). */
#include "sectorlab/lab.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct lab {
	struct lab_config cfg;           /* lane[] updated by restarts and switches */
	struct sl_dataset *train, *test; /* owned; the lanes' workers borrow them */
	/* The datasets before the last lab_switch, freed once every lane's
	 * snapshot shows a run on the new ones (job_restart's promise). */
	struct sl_dataset *old_train, *old_test;
	int old_run[LAB_MAX_LANES];      /* the run each lane must reach */
	struct job *job[LAB_MAX_LANES];
	struct lab_controls ctl;
	double base_lr[LAB_MAX_LANES];   /* each lane's own rate, before lr_scale */
};

static const char *const kind_names[] = {"vanilla", "l2", "spnorm", "authors", "margin"};

sl_status lab_lane_kind_parse(const char *name, enum lab_lane_kind *out, struct sl_error *err)
{
	for (int k = 0; k < (int)(sizeof kind_names / sizeof kind_names[0]); k++)
		if (strcmp(name, kind_names[k]) == 0) {
			*out = (enum lab_lane_kind)k;
			return SL_OK;
		}
	return status_set(err, SL_ERR_ARG,
			  "unknown lane '%s' (vanilla, l2, spnorm, margin or authors)", name);
}

const char *lab_lane_kind_name(enum lab_lane_kind kind)
{
	return kind >= LAB_LANE_VANILLA && kind <= LAB_LANE_MARGIN ? kind_names[kind] : "?";
}

sl_status lab_lane_make(enum lab_lane_kind kind, const struct train_config *base,
			const struct caps_spec *spnorm_caps, struct lab_lane_config *out,
			struct sl_error *err)
{
	out->kind = kind;
	out->train = *base;
	switch (kind) {
	case LAB_LANE_VANILLA: out->train.mode = TRAIN_VANILLA; return SL_OK;
	case LAB_LANE_L2: out->train.mode = TRAIN_L2; return SL_OK;
	case LAB_LANE_SPNORM: out->train.caps = *spnorm_caps; break;
	case LAB_LANE_AUTHORS:
		out->train.caps = caps_spec_paper();
		out->train.caps.source = CAPS_AUTHORS;
		break;
	case LAB_LANE_MARGIN:
		if (spnorm_caps->source != CAPS_CERTIFIED)
			return status_set(err, SL_ERR_ARG,
					  "the margin lane trains under certified caps, not %s",
					  caps_source_name(spnorm_caps->source));
		out->train.caps = *spnorm_caps;
		out->train.loss = loss_config_certified();
		break;
	}
	out->train.mode = TRAIN_SPNORM;
	struct caps_plan plan;
	return caps_resolve(&out->train.caps, &out->train.arch, &plan, err);
}

/* The job configuration of a lane under the current controls. */
static struct job_config job_config_of(const struct lab *lab, int lane, bool paused)
{
	const struct lab_lane_config *lc = &lab->cfg.lane[lane];
	struct job_config jc = {
		.train = lc->train,
		.eps = lab->ctl.eps,
		.eval_n = lab->cfg.eval_n,
		.cert_radius = lab->cfg.cert_radius,
		.steps_per_sec = lab->ctl.pace,
		.paused = paused,
		.example = lab->ctl.digit,
	};
	jc.train.optim.lr = lab->base_lr[lane] * lab->ctl.lr_scale;
	jc.train.epochs = lab->ctl.epochs;
	if (lab->cfg.hook_lanes & (1u << lane)) {
		jc.on_epoch = lab->cfg.on_epoch;
		jc.on_epoch_ctx = lab->cfg.on_epoch_ctx;
	}
	return jc;
}

/* Start lane's job into job[lane] (the caller keeps the old one). */
static sl_status start_lane(struct lab *lab, int lane, bool paused, struct sl_error *err)
{
	struct job_config jc = job_config_of(lab, lane, paused);
	return job_start(&jc, lab->train, lab->test, &lab->job[lane], err);
}

/* Datasets on the heap: their address stays while the lab swaps them. */
static struct sl_dataset *dataset_take(struct sl_dataset *d)
{
	struct sl_dataset *out = malloc(sizeof *out);
	if (out)
		*out = *d;
	else
		data_free(d);
	memset(d, 0, sizeof *d);
	return out;
}

static void dataset_drop(struct sl_dataset *d)
{
	if (d)
		data_free(d);
	free(d);
}

sl_status lab_new(const struct lab_config *cfg, struct sl_dataset *train,
		  struct sl_dataset *test, struct lab **out, struct sl_error *err)
{
	*out = NULL;
	struct lab *lab = calloc(1, sizeof *lab);
	if (!lab) {
		data_free(train);
		data_free(test);
		return status_set(err, SL_ERR_NOMEM, "lab");
	}
	lab->train = dataset_take(train);
	lab->test = dataset_take(test);
	sl_status st = SL_OK;
	if (!lab->train || !lab->test) {
		st = status_set(err, SL_ERR_NOMEM, "lab");
		goto out;
	}
	if (cfg->nlanes < 1 || cfg->nlanes > LAB_MAX_LANES) {
		st = status_set(err, SL_ERR_ARG, "the lab runs 1 to %d lanes, not %d",
				LAB_MAX_LANES, cfg->nlanes);
		goto out;
	}
	lab->cfg = *cfg;
	lab->ctl = (struct lab_controls){
		.paused = cfg->paused, .pace = cfg->pace, .eps = cfg->eps, .digit = cfg->digit,
		.lr_scale = 1, .epochs = cfg->lane[0].train.epochs,
	};
	for (int i = 0; i < cfg->nlanes; i++)
		lab->base_lr[i] = cfg->lane[i].train.optim.lr;
	for (int i = 0; i < cfg->nlanes && st == SL_OK; i++)
		st = start_lane(lab, i, cfg->paused, err);
out:
	if (st != SL_OK) {
		lab_free(lab);
		return st;
	}
	*out = lab;
	return SL_OK;
}

void lab_free(struct lab *lab)
{
	if (!lab)
		return;
	for (int i = 0; i < LAB_MAX_LANES; i++)
		job_stop(lab->job[i]);
	dataset_drop(lab->train);
	dataset_drop(lab->test);
	dataset_drop(lab->old_train);
	dataset_drop(lab->old_test);
	free(lab);
}

int lab_lanes(const struct lab *lab)
{
	return lab->cfg.nlanes;
}

const struct lab_lane_config *lab_lane(const struct lab *lab, int lane)
{
	return &lab->cfg.lane[lane];
}

const struct sl_dataset *lab_test_set(const struct lab *lab)
{
	return lab->test;
}

const struct sl_dataset *lab_train_set(const struct lab *lab)
{
	return lab->train;
}

const char *lab_title(const struct lab *lab)
{
	return lab->cfg.title;
}

enum data_kind lab_data_kind(const struct lab *lab)
{
	return lab->cfg.data;
}

int lab_default_eval_n(const struct sl_dataset *test)
{
	return test->c == 1 ? 1000 : 200;
}

void lab_title_of(char *buf, size_t cap, const char *net_label, enum data_kind kind,
		  const struct sl_dataset *train, uint32_t holdout, const struct sl_dataset *test)
{
	/* Full MNIST has 60000 training images; fewer: the embedded sample. */
	bool sample = kind == DATA_MNIST && train->n < 60000;
	snprintf(buf, cap, "%.60s on %s (%u train, %u test)", net_label,
		 sample ? "the MNIST sample" : data_kind_name(kind), train->n - holdout, test->n);
}

struct lab_controls lab_controls(const struct lab *lab)
{
	return lab->ctl;
}

void lab_snapshot(struct lab *lab, int lane, struct job_snapshot *out)
{
	job_snapshot(lab->job[lane], out);
	if (!lab->old_train)
		return;
	if (out->run >= lab->old_run[lane])
		lab->old_run[lane] = -1; /* this lane is done with the old datasets */
	for (int i = 0; i < lab->cfg.nlanes; i++)
		if (lab->old_run[i] >= 0)
			return;
	dataset_drop(lab->old_train);
	dataset_drop(lab->old_test);
	lab->old_train = lab->old_test = NULL;
}

long lab_request_net(struct lab *lab, int lane)
{
	return job_request_net(lab->job[lane]);
}

sl_status lab_copy_net(struct lab *lab, int lane, long ticket, struct nn_net *dst, bool *ready,
		       long *step, struct sl_error *err)
{
	return job_copy_net(lab->job[lane], ticket, dst, ready, step, err);
}

void lab_set_paused(struct lab *lab, bool paused)
{
	lab->ctl.paused = paused;
	for (int i = 0; i < lab->cfg.nlanes; i++)
		job_set_paused(lab->job[i], paused);
}

void lab_step(struct lab *lab)
{
	if (!lab->ctl.paused)
		lab_set_paused(lab, true);
	for (int i = 0; i < lab->cfg.nlanes; i++)
		job_step(lab->job[i], 1);
}

void lab_step_epoch(struct lab *lab)
{
	if (!lab->ctl.paused)
		lab_set_paused(lab, true);
	for (int i = 0; i < lab->cfg.nlanes; i++)
		job_step_epoch(lab->job[i]);
}

void lab_set_pace(struct lab *lab, int steps_per_sec)
{
	lab->ctl.pace = steps_per_sec < 0 ? 0 : steps_per_sec;
	for (int i = 0; i < lab->cfg.nlanes; i++)
		job_set_pace(lab->job[i], lab->ctl.pace);
}

void lab_set_eps(struct lab *lab, float eps)
{
	lab->ctl.eps = eps < 0 ? 0 : (eps > 1 ? 1 : eps);
	for (int i = 0; i < lab->cfg.nlanes; i++)
		job_set_eps(lab->job[i], lab->ctl.eps);
}

void lab_set_digit(struct lab *lab, uint32_t index)
{
	lab->ctl.digit = lab->test->n ? index % lab->test->n : 0;
	for (int i = 0; i < lab->cfg.nlanes; i++)
		job_set_example(lab->job[i], lab->ctl.digit);
}

void lab_scale_lr(struct lab *lab, double factor)
{
	if (!(factor > 0))
		return;
	lab->ctl.lr_scale *= factor;
	for (int i = 0; i < lab->cfg.nlanes; i++)
		job_set_lr(lab->job[i], lab->base_lr[i] * lab->ctl.lr_scale);
}

void lab_more_epochs(struct lab *lab, int more)
{
	if (more <= 0)
		return;
	lab->ctl.epochs += more;
	for (int i = 0; i < lab->cfg.nlanes; i++)
		job_set_epochs(lab->job[i], lab->ctl.epochs);
}

/* Train lane anew under its config and the current controls: a request
 * its worker carries out between two steps (job_restart), so the thread
 * that asks never waits for a network to be built or a step to end. */
static void restart(struct lab *lab, int lane)
{
	struct job_config jc = job_config_of(lab, lane, lab->ctl.paused);
	job_restart(lab->job[lane], &jc, lab->train, lab->test);
}

sl_status lab_reset(struct lab *lab, struct sl_error *err)
{
	(void)err;
	for (int i = 0; i < lab->cfg.nlanes; i++)
		restart(lab, i);
	return SL_OK;
}

/* The kind of lane a spec makes of a capped lane that was of kind was. */
static enum lab_lane_kind capped_kind(enum lab_lane_kind was, const struct caps_spec *spec)
{
	if (spec->source == CAPS_AUTHORS)
		return LAB_LANE_AUTHORS;
	return was == LAB_LANE_MARGIN && spec->source == CAPS_CERTIFIED ? LAB_LANE_MARGIN
									: LAB_LANE_SPNORM;
}

sl_status lab_restart_lane(struct lab *lab, int lane, const struct caps_spec *spec,
			   struct sl_error *err)
{
	if (lane < 0 || lane >= lab->cfg.nlanes)
		return status_set(err, SL_ERR_ARG, "no lane %d", lane);
	return lab_restart_lane_as(lab, lane, capped_kind(lab->cfg.lane[lane].kind, spec), spec,
				   err);
}

sl_status lab_restart_lane_as(struct lab *lab, int lane, enum lab_lane_kind kind,
			      const struct caps_spec *spec, struct sl_error *err)
{
	if (lane < 0 || lane >= lab->cfg.nlanes)
		return status_set(err, SL_ERR_ARG, "no lane %d", lane);
	if (kind != LAB_LANE_SPNORM && kind != LAB_LANE_MARGIN && kind != LAB_LANE_AUTHORS)
		return status_set(err, SL_ERR_ARG, "a %s lane trains without caps",
				  lab_lane_kind_name(kind));
	if (kind == LAB_LANE_MARGIN && spec->source != CAPS_CERTIFIED)
		return status_set(err, SL_ERR_ARG, "the margin lane trains under certified caps, not %s",
				  caps_source_name(spec->source));
	if ((kind == LAB_LANE_AUTHORS) != (spec->source == CAPS_AUTHORS))
		return status_set(err, SL_ERR_ARG, "an authors lane trains under the authors' caps");
	struct lab_lane_config was = lab->cfg.lane[lane];
	struct lab_lane_config *lc = &lab->cfg.lane[lane];
	lc->kind = kind;
	if (kind == LAB_LANE_MARGIN)
		lc->train.loss = loss_config_certified();
	else if (was.kind == LAB_LANE_MARGIN)
		lc->train.loss = loss_config_plain(); /* the margin needs certified caps */
	lc->train.mode = TRAIN_SPNORM;
	lc->train.caps = *spec;
	struct caps_plan plan;
	sl_status st = caps_resolve(&lc->train.caps, &lc->train.arch, &plan, err);
	if (st != SL_OK) {
		*lc = was;
		return st;
	}
	restart(lab, lane);
	return SL_OK;
}

/* The caps spec the lab's capped lanes train under (the first spnorm or
 * margin lane's), else the paper's certified allocation. */
static struct caps_spec lab_caps(const struct lab *lab)
{
	for (int i = 0; i < lab->cfg.nlanes; i++) {
		const struct lab_lane_config *lc = &lab->cfg.lane[i];
		if (lc->kind == LAB_LANE_SPNORM || lc->kind == LAB_LANE_MARGIN)
			return lc->train.caps;
	}
	return caps_spec_paper();
}

/* Lane's config as a lane of kind (lab_lane_make) on base's network. */
static sl_status remake_lane(const struct lab *lab, int lane, enum lab_lane_kind kind,
			     struct train_config base, struct lab_lane_config *out,
			     struct sl_error *err)
{
	const struct lab_lane_config *lc = &lab->cfg.lane[lane];
	struct caps_spec caps = lc->kind == LAB_LANE_SPNORM || lc->kind == LAB_LANE_MARGIN
					? lc->train.caps
					: lab_caps(lab);
	if (lc->kind == LAB_LANE_MARGIN) /* its loss goes with the kind */
		base.loss = loss_config_plain();
	return lab_lane_make(kind, &base, &caps, out, err);
}

sl_status lab_set_lane_kind(struct lab *lab, int lane, enum lab_lane_kind kind,
			    struct sl_error *err)
{
	if (lane < 0 || lane >= lab->cfg.nlanes)
		return status_set(err, SL_ERR_ARG, "no lane %d", lane);
	struct lab_lane_config lc;
	sl_status st = remake_lane(lab, lane, kind, lab->cfg.lane[lane].train, &lc, err);
	if (st != SL_OK)
		return st;
	lab->cfg.lane[lane] = lc;
	restart(lab, lane);
	return SL_OK;
}

sl_status lab_switch(struct lab *lab, struct lab_data *d, struct sl_error *err)
{
	sl_status st = SL_OK;
	struct lab_lane_config lanes[LAB_MAX_LANES];
	struct sl_dataset *train = NULL, *test = NULL;
	if (lab->old_train) {
		st = status_set(err, SL_ERR_ARG, "a lane still trains on the data before the last "
						  "switch; try again when every lane has restarted");
		goto out;
	}
	for (int i = 0; i < lab->cfg.nlanes && st == SL_OK; i++) {
		/* The lane's seed, epochs and batch; the network's own recipe. */
		struct train_config base = train_config_for(&d->arch);
		const struct train_config *was = &lab->cfg.lane[i].train;
		base.seed = was->seed;
		base.epochs = was->epochs;
		base.loss = was->loss;
		base.holdout = d->holdout;
		st = remake_lane(lab, i, lab->cfg.lane[i].kind, base, &lanes[i], err);
		if (st != SL_OK) {
			char why[sizeof err->msg];
			snprintf(why, sizeof why, "%s", err->msg);
			status_set(err, st, "%s lane: %s", lab_lane_kind_name(lanes[i].kind), why);
		}
	}
	if (st != SL_OK)
		goto out;
	train = dataset_take(&d->train);
	test = dataset_take(&d->test);
	if (!train || !test) {
		st = status_set(err, SL_ERR_NOMEM, "lab");
		goto out;
	}
	lab->old_train = lab->train, lab->old_test = lab->test;
	lab->train = train, lab->test = test;
	train = test = NULL;
	lab->cfg.eval_n = d->eval_n;
	lab->cfg.data = d->data;
	snprintf(lab->cfg.title, sizeof lab->cfg.title, "%s", d->title);
	lab->ctl.digit = lab->test->n ? lab->ctl.digit % lab->test->n : 0;
	for (int i = 0; i < lab->cfg.nlanes; i++) {
		struct job_snapshot *s = malloc(sizeof *s);
		lab->old_run[i] = 0;
		if (s) {
			job_snapshot(lab->job[i], s);
			lab->old_run[i] = s->run + 1;
			free(s);
		}
		lab->cfg.lane[i] = lanes[i];
		lab->base_lr[i] = lanes[i].train.optim.lr;
		job_set_example(lab->job[i], lab->ctl.digit);
		restart(lab, i);
	}
out:
	dataset_drop(train);
	dataset_drop(test);
	data_free(&d->train);
	data_free(&d->test);
	return st;
}

sl_status lab_set_caps(struct lab *lab, int lane, const struct caps_spec *spec,
		       struct sl_error *err)
{
	if (lane < 0 || lane >= lab->cfg.nlanes)
		return status_set(err, SL_ERR_ARG, "no lane %d", lane);
	struct lab_lane_config *lc = &lab->cfg.lane[lane];
	if (lc->train.mode != TRAIN_SPNORM)
		return status_set(err, SL_ERR_ARG,
				  "lane %d (%s) trains without caps: restart it under caps instead",
				  lane + 1, lab_lane_kind_name(lc->kind));
	if (lc->kind == LAB_LANE_MARGIN && spec->source != CAPS_CERTIFIED)
		return status_set(err, SL_ERR_ARG,
				  "lane %d trains with a margin, which needs certified caps, not %s",
				  lane + 1, caps_source_name(spec->source));
	struct caps_plan plan;
	sl_status st = caps_resolve(spec, &lc->train.arch, &plan, err);
	if (st != SL_OK)
		return st;
	lc->kind = capped_kind(lc->kind, spec);
	lc->train.caps = *spec;
	job_set_caps(lab->job[lane], spec);
	return SL_OK;
}
