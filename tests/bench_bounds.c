/* bench_bounds: how long the SDP bounds take on the MNIST MLP's shape
 * (784-50-20-10, leaky ReLU 0.1, Glorot-scaled random weights: the solver's
 * work depends on the shape, not on training): the network LipSDP (goal: a
 * few seconds, so the lab can run it as a task), the 45 per-pair SDPs, one
 * tightest-sector SDP at a fixed delta, and the Lipschitz floor; and the
 * network LipSDP of a 784-256-256-10 spec, beyond the size limit. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "sectorlab/bounds.h"
#include "sectorlab/rng.h"

static double now_s(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static void glorot(struct bounds_mlp *m, struct sl_rng *rng)
{
	for (int i = 0; i < m->nlayers; i++) {
		double lim = sqrt(6.0 / (m->dim[i] + m->dim[i + 1]));
		for (int k = 0; k < m->dim[i] * m->dim[i + 1]; k++)
			m->w[i][k] = lim * (2 * rng_uniform(rng) - 1);
	}
}

int main(void)
{
	struct sl_rng rng;
	rng_seed(&rng, 1);
	int dim[] = {784, 50, 20, 10};
	struct bounds_mlp m;
	struct sl_error err;
	if (bounds_mlp_new(3, dim, 0.1, &m, &err) != SL_OK) {
		printf("bench_bounds: %s\n", err.msg);
		return 1;
	}
	glorot(&m, &rng);
	int order;
	bounds_sdp_fits(&m, &order, NULL);
	double t0 = now_s(), L, prod;
	if (bounds_lipsdp(&m, NULL, &L, &err) != SL_OK) {
		printf("bench_bounds: LipSDP: %s\n", err.msg);
		return 1;
	}
	double t_sdp = now_s() - t0;
	bounds_product(&m, &prod, NULL);
	printf("LipSDP, mlp 784-50-20-10 (order %d):      %7.2f s  (L %.4f, product %.4f)\n",
	       order, t_sdp, L, prod);
	double pair[100];
	t0 = now_s();
	if (bounds_lipsdp_pairs(&m, pair, &err) != SL_OK) {
		printf("bench_bounds: pairs: %s\n", err.msg);
		return 1;
	}
	printf("LipSDP per pair, 45 SDPs:                 %7.2f s\n", now_s() - t0);
	struct bounds_sector sec;
	t0 = now_s();
	if (bounds_sector_at(&m, 100, &sec, &err) != SL_OK) {
		printf("bench_bounds: sector: %s\n", err.msg);
		return 1;
	}
	printf("tightest sector, one SDP (delta 100):     %7.2f s  (gamma %.4f)\n",
	       now_s() - t0, sec.gamma);
	double *x = malloc(sizeof(double) * 100 * 784);
	for (int k = 0; k < 100 * 784; k++)
		x[k] = rng_uniform(&rng) - 0.5;
	struct bounds_floor fl = {0};
	t0 = now_s();
	bounds_floor_lipschitz(&m, x, 100, 30, 1, &fl, NULL);
	printf("Lipschitz floor, 100 starts x 30 steps:   %7.2f s  (floor %.4f)\n", now_s() - t0,
	       fl.L);
	free(x);
	bounds_mlp_free(&m);
	int big[] = {784, 256, 256, 10};
	if (bounds_mlp_new(3, big, 0.1, &m, &err) == SL_OK) {
		sl_status st = bounds_lipsdp(&m, NULL, &L, &err);
		printf("LipSDP, 784-256-256-10: %s\n", st == SL_OK ? "solved" : err.msg);
		bounds_mlp_free(&m);
	}
	return 0;
}
