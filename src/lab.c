/* lab: lanes of training side by side, and the controls they share (see lab.h). */
#include "sectorlab/lab.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct lab {
	struct lab_config cfg;         /* lane[] updated by lab_restart_lane */
	struct sl_dataset train, test; /* owned */
	struct job *job[LAB_MAX_LANES];
	struct lab_controls ctl;
	double base_lr[LAB_MAX_LANES]; /* each lane's own rate, before lr_scale */
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
	return job_start(&jc, &lab->train, &lab->test, &lab->job[lane], err);
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
	lab->train = *train;
	lab->test = *test;
	memset(train, 0, sizeof *train);
	memset(test, 0, sizeof *test);
	sl_status st = SL_OK;
	if (cfg->nlanes < 1 || cfg->nlanes > LAB_MAX_LANES) {
		st = status_set(err, SL_ERR_ARG, "the lab runs 1 to %d lanes, not %d",
				LAB_MAX_LANES, cfg->nlanes);
		goto out;
	}
	lab->cfg = *cfg;
	lab->ctl = (struct lab_controls){
		.paused = cfg->paused, .pace = cfg->pace, .eps = cfg->eps, .digit = 0,
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
	data_free(&lab->train);
	data_free(&lab->test);
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
	return &lab->test;
}

const struct sl_dataset *lab_train_set(const struct lab *lab)
{
	return &lab->train;
}

struct lab_controls lab_controls(const struct lab *lab)
{
	return lab->ctl;
}

void lab_snapshot(struct lab *lab, int lane, struct job_snapshot *out)
{
	job_snapshot(lab->job[lane], out);
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
	lab->ctl.digit = lab->test.n ? index % lab->test.n : 0;
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
	job_restart(lab->job[lane], &jc);
}

sl_status lab_reset(struct lab *lab, struct sl_error *err)
{
	(void)err;
	for (int i = 0; i < lab->cfg.nlanes; i++)
		restart(lab, i);
	return SL_OK;
}

sl_status lab_restart_lane(struct lab *lab, int lane, const struct caps_spec *spec,
			   struct sl_error *err)
{
	if (lane < 0 || lane >= lab->cfg.nlanes)
		return status_set(err, SL_ERR_ARG, "no lane %d", lane);
	struct lab_lane_config was = lab->cfg.lane[lane];
	struct lab_lane_config *lc = &lab->cfg.lane[lane];
	bool margin = was.kind == LAB_LANE_MARGIN && spec->source == CAPS_CERTIFIED;
	lc->kind = spec->source == CAPS_AUTHORS ? LAB_LANE_AUTHORS
		   : margin			 ? LAB_LANE_MARGIN
						 : LAB_LANE_SPNORM;
	if (was.kind == LAB_LANE_MARGIN && !margin)
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
