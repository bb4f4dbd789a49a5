/*
 * bench_train: training and inference throughput of the MNIST network, the
 * share of a step spent on spectral capping, and the GFLOP/s achieved next
 * to a plain sgemm measured in the same run.  Run by `make bench`; figures
 * are printed, never asserted.
 */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "sectorlab/data.h"
#include "sectorlab/train.h"

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Seconds per training step, the median of a few timed runs. */
static double time_steps(struct trainer *t, int steps)
{
	struct train_step_info info;
	double best[5];
	for (int r = 0; r < 5; r++) {
		double t0 = now();
		for (int k = 0; k < steps; k++)
			if (trainer_step(t, &info, NULL) != SL_OK)
				return -1;
		best[r] = (now() - t0) / steps;
	}
	for (int i = 0; i < 5; i++)
		for (int j = i + 1; j < 5; j++)
			if (best[j] < best[i]) {
				double x = best[i];
				best[i] = best[j];
				best[j] = x;
			}
	return best[2];
}

static double sgemm_gflops(int m, int n, int k)
{
	float *a = calloc((size_t)m * k, sizeof(float)), *b = calloc((size_t)k * n, sizeof(float));
	float *c = calloc((size_t)m * n, sizeof(float));
	for (size_t i = 0; i < (size_t)m * k; i++)
		a[i] = (float)(i % 7) * 0.1f;
	for (size_t i = 0; i < (size_t)k * n; i++)
		b[i] = (float)(i % 5) * 0.1f;
	int reps = 0;
	double t0 = now(), el;
	do {
		cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, n, k, 1, a, k, b, n, 0, c,
			    n);
		reps++;
		el = now() - t0;
	} while (el < 0.5);
	free(a);
	free(b);
	free(c);
	return 2.0 * m * n * k * reps / el / 1e9;
}

int main(void)
{
	struct sl_dataset train, test;
	struct sl_error err;
	if (data_load(DATA_MNIST, "data", true, &train, &err) != SL_OK ||
	    data_load(DATA_MNIST, "data", false, &test, &err) != SL_OK) {
		fprintf(stderr, "bench_train: %s\n", err.msg);
		return 1;
	}
	struct train_config cfg = train_config_default();
	cfg.holdout = 0;
	struct trainer *van, *sp;
	if (trainer_new(&cfg, &train, &test, &van, &err) != SL_OK)
		goto fail;
	cfg.mode = TRAIN_SPNORM;
	cfg.nrho = model_authors_caps(cfg.model, cfg.rho);
	if (trainer_new(&cfg, &train, &test, &sp, &err) != SL_OK)
		goto fail;
	int steps = 50;
	time_steps(van, 10); /* warm up */
	time_steps(sp, 10);
	double tv = time_steps(van, steps), ts = time_steps(sp, steps);

	/* Inference: forward passes of full batches. */
	double t0 = now();
	int passes = 0;
	do {
		nn_forward(van->net, van->xb, cfg.batch);
		passes++;
	} while (now() - t0 < 0.5);
	double infer = passes * (double)cfg.batch / (now() - t0);

	/* FLOPs of one step: forward 2*B*sum(in*out); backward twice that. */
	double fwd = 0;
	for (int i = 0; i < van->net->nlayers; i++)
		fwd += 2.0 * cfg.batch * van->net->layers[i].in * van->net->layers[i].out;
	double step_gflops = 3 * fwd / tv / 1e9;
	double peak = sgemm_gflops(1024, 1024, 1024);
	double shaped = sgemm_gflops(cfg.batch, 50, 784);

	printf("bench_train: mlp 784-50-20-10, batch %d, %d OpenBLAS threads\n", cfg.batch,
	       openblas_get_num_threads());
	printf("  training, vanilla        %10.0f images/s  (%.3f ms/step, %.2f GFLOP/s)\n",
	       cfg.batch / tv, tv * 1e3, step_gflops);
	printf("  training, spnorm         %10.0f images/s  (%.3f ms/step)\n", cfg.batch / ts,
	       ts * 1e3);
	printf("  capping overhead         %10.1f %% of a step\n", 100 * (ts - tv) / ts);
	printf("  inference                %10.0f images/s\n", infer);
	printf("  sgemm 1024^3             %10.2f GFLOP/s (practical limit)\n", peak);
	printf("  sgemm 128x784 * 784x50   %10.2f GFLOP/s (the first layer's shape)\n", shaped);
	trainer_free(van);
	trainer_free(sp);
	data_free(&train);
	data_free(&test);
	return 0;
fail:
	fprintf(stderr, "bench_train: %s\n", err.msg);
	return 1;
}
