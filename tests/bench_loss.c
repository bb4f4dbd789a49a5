/*
 * bench_loss: what a training loss costs per step next to plain
 * cross-entropy (nn_backward's): lmt and hinge with the margin sqrt(2) L R,
 * whose bound is recomputed and whose gradient flows into every layer's
 * norm at every step.  One trainer per model, the losses timed in
 * alternation on the same memory, data and warm-up; medians of whole
 * epochs for mlp, of a few steps for alexnet-lite.  Every weighted layer
 * is capped above its norm, so each step pays the power iteration (as
 * certified training does) and, for the margin, the gradient through every
 * layer's norm (the most it can cost: a layer on its cap gets none).
 * Figures are printed, never asserted.  Run by `make bench`.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sectorlab/data.h"
#include "sectorlab/loss.h"
#include "sectorlab/train.h"
#include "testutil.h"

#define BATCH 128

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static double time_steps(struct trainer *t, int steps)
{
	struct train_step_info info;
	double t0 = now();
	for (int k = 0; k < steps; k++)
		if (trainer_step(t, &info, NULL) != SL_OK ||
		    (info.epoch_done && trainer_settle_caps(t, NULL) != SL_OK))
			return -1;
	return (now() - t0) / steps;
}

static int bench_model(enum model_id id)
{
	int c, h, w;
	model_input_shape(id, &c, &h, &w);
	struct sl_dataset data;
	tu_synthetic_dataset(&data, c == 1 ? 55000 : 50000, c, h, w);
	bool big = id != MODEL_MLP;
	int steps = big ? 10 : 430, runs = big ? 3 : 9;
	struct arch arch;
	model_get(id, &arch);
	struct train_config cfg = train_config_for(&arch);
	cfg.holdout = 0;
	cfg.batch = BATCH;
	cfg.mode = TRAIN_SPNORM;
	double rho[NN_MAX_LAYERS];
	for (int i = 0; i < model_weighted_count(id); i++)
		rho[i] = 100;
	cfg.caps = caps_spec_manual(rho, model_weighted_count(id));
	cfg.loss = (struct loss_config){LOSS_LMT, 50, 0.5}; /* so the trainer plans a bound */
	struct trainer *t;
	struct sl_error err;
	if (trainer_new(&cfg, &data, NULL, &t, &err) != SL_OK) {
		fprintf(stderr, "bench_loss: %s\n", err.msg);
		data_free(&data);
		return 1;
	}
	const struct loss_config losses[] = {
		loss_config_plain(), {LOSS_CE, 50, 0}, {LOSS_LMT, 50, 0.5}, {LOSS_HINGE, 50, 0.5}};
	enum { NL = sizeof losses / sizeof losses[0] };
	double s[NL][9];
	for (int k = 0; k < NL; k++) { /* warm up */
		t->cfg.loss = losses[k];
		time_steps(t, big ? 2 : 30);
	}
	for (int r = 0; r < runs; r++)
		for (int k = 0; k < NL; k++) {
			t->cfg.loss = losses[k];
			s[k][r] = time_steps(t, steps);
			if (s[k][r] < 0) {
				fprintf(stderr, "bench_loss: a training step failed\n");
				trainer_free(t);
				data_free(&data);
				return 1;
			}
		}
	double base = tu_median(s[0], runs);
	for (int k = 0; k < NL; k++) {
		double m = tu_median(s[k], runs);
		printf("%-12s %-6s %6g %6g | %9.3f | %+6.1f%%\n", model_name(id),
		       loss_kind_name(losses[k].kind), losses[k].tau, losses[k].radius, m * 1e3,
		       100 * (m / base - 1));
	}
	fflush(stdout);
	trainer_free(t);
	data_free(&data);
	return 0;
}

int main(void)
{
	printf("bench_loss: ms per training step (batch %d, one thread, spnorm with every layer\n"
	       "capped above its norm), each loss against plain cross-entropy in the same run\n\n",
	       BATCH);
	printf("%-12s %-6s %6s %6s | %9s | %7s\n", "model", "loss", "tau", "R", "ms/step",
	       "vs ce");
	nn_set_threads(1);
	if (bench_model(MODEL_MLP) || bench_model(MODEL_ALEXNET_LITE))
		return 1;
	return 0;
}
