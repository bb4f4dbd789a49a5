/*
 * bench_pass: one forward pass and one input-gradient backward pass (what an
 * attack step runs) of the paper's AlexNet at batch 32 on one thread, the
 * best of 20, to compare versions of the engine on one machine in one
 * sitting.  Random weights and images: the time does not depend on them.
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "sectorlab/model.h"
#include "sectorlab/nn.h"
#include "sectorlab/rng.h"

static double now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec * 1e-9;
}

int main(void)
{
	enum { BATCH = 32, REPEAT = 20 };
	nn_set_threads(1);
	struct nn_net *net;
	struct sl_error err;
	if (model_build(MODEL_ALEXNET, BATCH, &net, &err) != SL_OK) {
		fprintf(stderr, "bench_pass: %s\n", err.msg);
		return 1;
	}
	struct sl_rng rng;
	rng_seed(&rng, 1);
	nn_init_glorot(net, &rng);
	float *x = malloc(sizeof(float) * (size_t)net->in_dim * BATCH);
	int y[BATCH];
	if (!x) {
		fprintf(stderr, "bench_pass: out of memory\n");
		nn_free(net);
		return 1;
	}
	for (int i = 0; i < net->in_dim * BATCH; i++)
		x[i] = rng_uniform(&rng) - 0.5f;
	for (int i = 0; i < BATCH; i++)
		y[i] = i % 10;
	double fwd = 1e9, bwd = 1e9;
	for (int k = 0; k < REPEAT; k++) {
		double t0 = now();
		nn_forward(net, x, BATCH);
		double t1 = now();
		nn_backward(net, y, false, true);
		double t2 = now();
		fwd = t1 - t0 < fwd ? t1 - t0 : fwd;
		bwd = t2 - t1 < bwd ? t2 - t1 : bwd;
	}
	printf("bench_pass: alexnet, batch %d, 1 thread, best of %d: forward %.2f ms, "
	       "input-gradient backward %.2f ms, together %.2f ms\n",
	       BATCH, REPEAT, fwd * 1e3, bwd * 1e3, (fwd + bwd) * 1e3);
	free(x);
	nn_free(net);
	return 0;
}
