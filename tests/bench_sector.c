/* bench_sector: how long an allocation takes (the budget is 10 ms, so the lab
 * can recompute on every keypress), for the models and for `allocate --arch`
 * dense stacks of 2 to 16 layers built from layer specs, and how long the
 * exact LMI takes for the first MNIST layer (50 x 784). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sectorlab/arch.h"
#include "sectorlab/caps.h"
#include "sectorlab/certify.h"
#include "sectorlab/lmi.h"
#include "sectorlab/rng.h"
#include "sectorlab/sector.h"

#define BUDGET_MS 10.0

static double now_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1e3 + t.tv_nsec * 1e-6;
}

/* Mean and worst milliseconds per allocation over runs; false on failure. */
static bool bench_allocation(const char *name, const struct sector_layer *l, int n, double nu,
			     double delta, enum sector_objective obj, bool *over)
{
	struct sector_allocation a;
	struct sl_error err;
	int runs = 0;
	double total = 0, worst = 0;
	while (runs < 20 || (total < 300 && runs < 2000)) {
		double t0 = now_ms();
		sl_status st = sector_allocate(nu, delta, l, n, obj, &a, &err);
		double dt = now_ms() - t0;
		if (st != SL_OK) {
			printf("%-28s %-8s FAILED: %s\n", name, sector_objective_name(obj), err.msg);
			return false;
		}
		total += dt;
		worst = fmax(worst, dt);
		runs++;
	}
	double mean = total / runs;
	printf("%-28s %-8s %7.3f ms mean, %7.3f ms worst (%4d runs)  product %.6f  min %.6f\n",
	       name, sector_objective_name(obj), mean, worst, runs, a.rho_product, a.rho_min);
	*over = *over || mean > BUDGET_MS;
	return true;
}

int main(void)
{
	struct sector_layer mlp[SECTOR_MAX_LAYERS], alex[SECTOR_MAX_LAYERS];
	struct sector_layer deep[8], deep_s[8];
	int nm = certify_model_layers(MODEL_MLP, mlp, SECTOR_MAX_LAYERS, NULL);
	int na = certify_model_layers(MODEL_ALEXNET, alex, SECTOR_MAX_LAYERS, NULL);
	/* 8 layers: conv, pool, conv, pool, conv, dense, dense, identity dense */
	enum sector_layer_kind k8[] = {SECTOR_LAYER_CONV, SECTOR_LAYER_POOL,  SECTOR_LAYER_CONV,
				       SECTOR_LAYER_POOL, SECTOR_LAYER_CONV,  SECTOR_LAYER_DENSE,
				       SECTOR_LAYER_DENSE, SECTOR_LAYER_DENSE};
	for (int i = 0; i < 8; i++) {
		if (k8[i] == SECTOR_LAYER_POOL) {
			sector_layer_pool(2, &deep[i], NULL);
		} else {
			enum sector_act_kind act = i == 7 ? SECTOR_ACT_IDENTITY : SECTOR_ACT_LEAKY;
			sector_layer_weighted(k8[i], act, 0.1, 0, &deep[i], NULL);
		}
		/* 8 weighted layers with s > 0: the product search tries every layer
		 * as the one that absorbs the cascade, its slowest case */
		sector_layer_weighted(SECTOR_LAYER_DENSE, i == 7 ? SECTOR_ACT_IDENTITY : SECTOR_ACT_LEAKY,
				      0.1, 0.5, &deep_s[i], NULL);
	}
	bool ok = true, over = false;
	printf("allocation at (nu, delta) = (-2, 0.4), budget %.0f ms\n", BUDGET_MS);
	for (int o = 0; o < 2; o++) {
		enum sector_objective obj = o ? SECTOR_OBJ_MIN : SECTOR_OBJ_PRODUCT;
		ok &= bench_allocation("mlp (3 layers)", mlp, nm, -2, 0.4, obj, &over);
		ok &= bench_allocation("alexnet (7 layers)", alex, na, -2, 0.4, obj, &over);
		ok &= bench_allocation("8 layers, 2 pools", deep, 8, -2, 0.4, obj, &over);
		ok &= bench_allocation("8 dense layers, s = 0.5", deep_s, 8, -2, 0.4, obj, &over);
	}
	/* `allocate --arch 784-100-...-100-10` for 2 to 16 dense layers: the
	 * Theorem 3 matrix grows with the depth. */
	for (int o = 0; o < 2; o++) {
		enum sector_objective obj = o ? SECTOR_OBJ_MIN : SECTOR_OBJ_PRODUCT;
		for (int depth = 2; depth <= 16; depth++) {
			char spec[128] = "784", name[64];
			for (int i = 1; i < depth; i++)
				strcat(spec, "-100");
			strcat(spec, "-10");
			struct arch a;
			struct sector_layer l[SECTOR_MAX_LAYERS];
			struct sl_error err;
			int n = arch_parse(spec, &a, &err) == SL_OK
					? certify_arch_layers(&a, l, SECTOR_MAX_LAYERS, &err)
					: -1;
			if (n != depth) {
				printf("--arch %s: FAILED: %s\n", spec, err.msg);
				ok = false;
				continue;
			}
			snprintf(name, sizeof name, "--arch, %d dense layers", depth);
			ok &= bench_allocation(name, l, n, -2, 0.4, obj, &over);
		}
	}
	if (over)
		printf("note: some allocation took more than %.0f ms on this machine\n", BUDGET_MS);

	/* The sector designer's map at 80x24 (28 x 18 cells) and at 160x50
	 * (95 x 44; the mlp only), as its task computes it: caps_map_row a row
	 * at a time. */
	static const int sizes[2][2] = {{28, 18}, {95, 44}};
	static const enum model_id models[2] = {MODEL_MLP, MODEL_ALEXNET};
	for (int m = 0; m < 2; m++)
		for (int o = 0; o < 2; o++)
			for (int z = 0; z < 2; z++) {
				enum sector_objective obj = o ? SECTOR_OBJ_MIN : SECTOR_OBJ_PRODUCT;
				struct arch arch;
				model_get(models[m], &arch);
				int w = sizes[z][0], h = sizes[z][1], caps = 0;
				double nu[128], worst = 0, t0 = now_ms();
				struct caps_cell row[128];
				for (int i = 0; i < w; i++)
					nu[i] = -8 + (i + 0.5) * 9.0 / w;
				for (int j = 0; j < h && ok; j++) {
					double r0 = now_ms();
					ok &= caps_map_row(&arch, obj, 2 - (j + 0.5) * 1.95 / h, nu, w, row,
							   NULL, NULL, NULL) == w;
					worst = fmax(worst, now_ms() - r0);
					for (int i = 0; i < w; i++)
						caps += row[i].kind == CAPS_CELL_CAPS;
				}
				printf("designer map %-8s %-8s %3dx%-3d %7.2f s (%5.2f ms a cell, a row "
				       "at most %5.0f ms), %d cells with caps\n",
				       model_name(models[m]), sector_objective_name(obj), w, h,
				       (now_ms() - t0) / 1e3, (now_ms() - t0) / (w * h), worst, caps);
				if (m == 1)
					break; /* alexnet at the small size only: minutes else */
			}

	/* the exact LMI for a random 50 x 784 layer (Glorot uniform, like fc1) */
	struct sl_rng r;
	rng_seed(&r, 1);
	double *w = malloc(sizeof(double) * 50 * 784), a = sqrt(6.0 / (50 + 784));
	if (!w)
		return 1;
	for (int i = 0; i < 50 * 784; i++)
		w[i] = a * (2 * rng_uniform(&r) - 1);
	struct lmi_layer layer = {w, 50, 784, 0.55, 0.1};
	struct lmi_result res;
	struct sl_error err;
	double t0 = now_ms();
	sl_status st = lmi_max_nu(&layer, 0.4, &res, NULL, &err);
	double dt = now_ms() - t0;
	if (st == SL_OK)
		printf("exact LMI, random 50x784 leaky layer at delta 0.4: %.0f ms, nu_max %.6f, "
		       "%d DSDP iterations, check eigenvalue %.2g\n",
		       dt, res.nu_max, res.iterations, res.min_eig);
	else
		printf("exact LMI, random 50x784 layer: FAILED: %s\n", err.msg);
	free(w);
	return ok && st == SL_OK ? 0 : 1;
}
