/* driver: the epoch loop as steps (see driver.h). */
#include "sectorlab/driver.h"

#include <string.h>

void driver_init(struct driver *d, struct trainer *t, const struct driver_config *cfg)
{
	memset(d, 0, sizeof *d);
	d->cfg = *cfg;
	d->t = t;
	d->phase = trainer_ending(t) ? DRIVER_END : DRIVER_TRAIN;
}

bool driver_finished(const struct driver *d)
{
	return d->phase == DRIVER_TRAIN && d->t->epoch >= d->t->cfg.epochs;
}

bool driver_in_epoch_end(const struct driver *d)
{
	return d->phase != DRIVER_TRAIN;
}

/* Begin evaluating ds, or skip to the next phase when there is nothing. */
static sl_status begin_eval(struct driver *d, enum driver_phase phase, struct sl_error *err)
{
	const struct sl_dataset *ds = phase == DRIVER_VAL ? &d->t->val : d->cfg.test;
	int n = phase == DRIVER_VAL ? 0 : d->cfg.test_n;
	bool wanted = phase == DRIVER_VAL ? d->cfg.validate : true;
	d->phase = phase;
	if (wanted && ds && ds->n > 0)
		return trainer_eval_begin(d->t, &d->eval, ds, n, err);
	d->phase = phase == DRIVER_VAL ? DRIVER_TEST : DRIVER_HOOK;
	return phase == DRIVER_VAL ? begin_eval(d, DRIVER_TEST, err) : SL_OK;
}

sl_status driver_step(struct driver *d, struct driver_step_info *info, struct sl_error *err)
{
	memset(info, 0, sizeof *info);
	struct trainer *t = d->t;
	struct epoch_report *r = &d->report;
	sl_status st = SL_OK;
	switch (d->phase) {
	case DRIVER_TRAIN: {
		if (driver_finished(d))
			return SL_OK;
		struct train_step_info ti;
		if ((st = trainer_step(t, &ti, err)) != SL_OK)
			return st;
		info->batch = true;
		info->loss = ti.loss;
		info->accuracy = ti.accuracy;
		if (ti.epoch_done)
			d->phase = DRIVER_END;
		return SL_OK;
	}
	case DRIVER_END: {
		bool done;
		if ((st = trainer_end_step(t, &done, err)) != SL_OK || !done)
			return st;
		memset(r, 0, sizeof *r);
		r->epoch = t->epoch;
		r->epochs = t->cfg.epochs;
		r->step = t->step;
		r->train_loss = t->last_epoch_loss;
		r->train_accuracy = t->last_epoch_accuracy;
		r->val_accuracy = r->val_loss = -1;
		r->test_accuracy = r->test_loss = -1;
		r->sigma = t->sigma;
		r->settle_steps = t->settle_steps;
		return begin_eval(d, DRIVER_VAL, err);
	}
	case DRIVER_VAL:
		if (trainer_eval_step(t, &d->eval)) {
			trainer_eval_result(&d->eval, &r->val_accuracy, &r->val_loss);
			return begin_eval(d, DRIVER_TEST, err);
		}
		return SL_OK;
	case DRIVER_TEST:
		if (trainer_eval_step(t, &d->eval)) {
			trainer_eval_result(&d->eval, &r->test_accuracy, &r->test_loss);
			r->test_n = d->eval.n;
			d->phase = DRIVER_HOOK;
		}
		return SL_OK;
	case DRIVER_HOOK:
		if (d->cfg.on_epoch && (st = d->cfg.on_epoch(d->cfg.ctx, t, r, err)) != SL_OK)
			return st;
		d->phase = DRIVER_TRAIN;
		info->epoch_done = true;
		return SL_OK;
	}
	return SL_OK;
}
