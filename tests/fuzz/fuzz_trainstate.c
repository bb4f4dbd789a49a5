/*
 * Fuzz target: the training-state reader (trainstate_load).  Every input is
 * read as the state of one small trainer (a 4-pixel, 2-layer spnorm network
 * trained with Adam on 12 images), so that the fuzzer spends its time on the
 * header, the settings, the counters and the arrays.  A state that loads
 * must leave a trainer that trains on (a valid order, finite weights); one
 * that does not must say why and leave the trainer as it was.
 *
 * Built with -DFUZZ_WRITE_SEED it is instead a program that writes a valid
 * state of that trainer (after 5 steps) to its argument: the seed in
 * tests/fuzz/seed/trainstate/.
 */
#define _GNU_SOURCE /* memfd_create */
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "sectorlab/trainstate.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The fuzzed trainer's images: 12 of 1x2x2 pixels, labels 0..9. */
static const struct sl_dataset *images(void)
{
	static uint8_t pixels[12 * 4], labels[12];
	static struct sl_dataset d;
	if (!d.n) {
		for (int i = 0; i < 12 * 4; i++)
			pixels[i] = (uint8_t)(i * 37 % 256);
		for (int i = 0; i < 12; i++)
			labels[i] = (uint8_t)(i % 10);
		d = (struct sl_dataset){.n = 12, .c = 1, .h = 2, .w = 2, .classes = 10,
					.pixels = pixels, .labels = labels, .source = "fuzz"};
	}
	return &d;
}

static struct trainer *new_trainer(void)
{
	struct train_config cfg = train_config_default();
	if (arch_parse("input 1x2x2, dense 3, leaky:0.1, dense 10", &cfg.arch, NULL) != SL_OK)
		abort();
	cfg.mode = TRAIN_SPNORM;
	double rho[2] = {1.5, 0.9};
	cfg.caps = caps_spec_manual(rho, 2);
	cfg.holdout = 0;
	cfg.batch = 5;
	cfg.threads = 1;
	struct trainer *t;
	if (trainer_new(&cfg, images(), NULL, &t, NULL) != SL_OK)
		abort();
	return t;
}

/* Train until no epoch's end is due after at least steps steps. */
static sl_status train(struct trainer *t, long steps)
{
	struct train_step_info info;
	sl_status st = SL_OK;
	while (st == SL_OK && (t->step < steps || trainer_ending(t)))
		st = trainer_ending(t) ? trainer_settle_caps(t, NULL) : trainer_step(t, &info, NULL);
	return st;
}

#ifdef FUZZ_WRITE_SEED
int main(int argc, char **argv)
{
	if (argc != 2)
		return 2;
	struct trainer *t = new_trainer();
	if (train(t, 5) != SL_OK)
		abort();
	int rc = trainstate_save(t, argv[1], NULL) == SL_OK ? 0 : 1;
	trainer_free(t);
	return rc;
}
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct trainer *t = new_trainer();
	float before[64];
	if (t->net->nparams > 64)
		abort();
	memcpy(before, t->net->params, sizeof(float) * t->net->nparams);
	char path[64];
	int fd = fuzz_memfile(data, size, path, sizeof path);
	if (fd < 0) {
		trainer_free(t);
		return 0;
	}
	struct sl_error err;
	status_clear(&err);
	if (trainstate_load(t, path, &err) == SL_OK) {
		/* It trains on (a batch, an epoch's end), or stops at weights that
		 * overflow, saying so (finite but huge weights load). */
		sl_status st = train(t, t->step + 3);
		if (st != SL_OK && st != SL_ERR_NUMERIC)
			abort();
	} else if (err.msg[0] == '\0' ||
		   memcmp(before, t->net->params, sizeof(float) * t->net->nparams) != 0) {
		abort();
	}
	close(fd);
	trainer_free(t);
	return 0;
}
