/*
 * bench_attack: PGD throughput (images per second) for the MNIST network and
 * the CIFAR-10 AlexNet, side by side with a straightforward PyTorch
 * implementation of the same attack (tests/torch_reference.py) on the same
 * model shape, recipe, batch size and thread count, when Debian's
 * python3-torch is installed.  Run by `make bench`; figures are printed,
 * never asserted.  Weights and images are random: the speed of an attack
 * does not depend on them (no early stop).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sectorlab/attack.h"
#include "sectorlab/model.h"
#include "sectorlab/rng.h"

#define PYTHON "/usr/bin/python3"

struct bench_case {
	enum model_id model;
	const char *torch_name;
	int n, batch, steps, repeat; /* the best of repeat passes counts */
};

/* PyTorch's images per second for the same case, or -1. */
static double torch_rate(const struct bench_case *b, int threads)
{
	char cmd[512];
	snprintf(cmd, sizeof cmd,
		 PYTHON " tests/torch_reference.py bench --model %s --n %d --batch %d --steps %d "
			"--threads %d --repeat %d 2>/dev/null",
		 b->torch_name, b->n, b->batch, b->steps, threads, b->repeat);
	FILE *p = popen(cmd, "r");
	if (!p)
		return -1;
	char line[1024] = "";
	char *got = fgets(line, sizeof line, p);
	int st = pclose(p);
	const char *key = got && st == 0 ? strstr(line, "\"images_per_second\": ") : NULL;
	return key ? strtod(key + strlen("\"images_per_second\": "), NULL) : -1;
}

/* sectorlab's images per second: PGD L-inf, eps 0.1, steps of 2.5 eps /
 * steps, true labels, clipped; the attack alone is timed, the best of
 * b->repeat passes. */
static double our_rate(const struct bench_case *b, struct sl_error *err)
{
	struct nn_net *net;
	if (model_build(b->model, b->batch, &net, err) != SL_OK)
		return -1;
	struct sl_rng rng;
	rng_seed(&rng, 1);
	nn_init_glorot(net, &rng);
	int c, h, w;
	model_input_shape(b->model, &c, &h, &w);
	size_t dim = (size_t)c * h * w;
	struct sl_dataset ds = {.n = (uint32_t)b->n, .c = (uint32_t)c, .h = (uint32_t)h,
				.w = (uint32_t)w, .classes = 10, .owned = false};
	ds.pixels = malloc(dim * b->n);
	ds.labels = malloc((size_t)b->n);
	double rate = -1;
	if (ds.pixels && ds.labels) {
		for (size_t k = 0; k < dim * b->n; k++)
			ds.pixels[k] = (uint8_t)rng_below(&rng, 256);
		for (int k = 0; k < b->n; k++)
			ds.labels[k] = (uint8_t)rng_below(&rng, 10);
		struct attack_recipe r = attack_recipe_pgd(ATTACK_NORM_INF, 0.1f, b->steps);
		float eps = 0.1f;
		struct attack_result res;
		for (int k = 0; k < b->repeat; k++) {
			if (attack_sweep(net, &ds, b->n, &r, &eps, 1, NULL, NULL, &res, err) != SL_OK) {
				rate = -1;
				break;
			}
			rate = res.images_per_second > rate ? res.images_per_second : rate;
		}
	}
	free(ds.pixels);
	free(ds.labels);
	nn_free(net);
	return rate;
}

int main(void)
{
	const struct bench_case cases[] = {
		{MODEL_MLP, "mlp", 8000, 500, 20, 3},
		{MODEL_ALEXNET, "alexnet", 64, 32, 5, 2},
	};
	bool torch = system(PYTHON " -c 'import torch' >/dev/null 2>&1") == 0;
	long cores = sysconf(_SC_NPROCESSORS_ONLN);
	double load = -1;
	FILE *f = fopen("/proc/loadavg", "r");
	if (f) {
		if (fscanf(f, "%lf", &load) != 1)
			load = -1;
		fclose(f);
	}
	printf("bench_attack: PGD L-inf eps 0.1, steps of 2.5 eps/steps, true labels, clipped; "
	       "%ld cores, load average %.2f before the run%s\n",
	       cores, load, torch ? "" : "; PyTorch (python3-torch) not installed");
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		const struct bench_case *b = &cases[i];
		for (int threads = 1; threads <= (cores > 1 ? 2 : 1); threads++) {
			nn_set_threads(threads);
			struct sl_error err;
			double ours = our_rate(b, &err);
			if (ours < 0) {
				fprintf(stderr, "bench_attack: %s\n", err.msg);
				return 1;
			}
			printf("  %-8s %4d images, batch %3d, %3d steps, %d thread%s: sectorlab %8.1f "
			       "images/s",
			       model_name(b->model), b->n, b->batch, b->steps, threads,
			       threads == 1 ? " " : "s", ours);
			double theirs = torch ? torch_rate(b, threads) : -1;
			if (theirs > 0)
				printf(", PyTorch %8.1f images/s, %.2fx\n", theirs, ours / theirs);
			else
				printf("\n");
			fflush(stdout);
		}
	}
	return 0;
}
