/*
 * rng: explicit-state pseudo-random numbers (xoshiro256**, seeded through
 * splitmix64).  No global state: every randomised function in sectorlab takes
 * a struct sl_rng *.  The same seed gives the same stream on every machine.
 */
#ifndef SECTORLAB_RNG_H
#define SECTORLAB_RNG_H

#include <stddef.h>
#include <stdint.h>

struct sl_rng {
	uint64_t s[4];
};

void rng_seed(struct sl_rng *r, uint64_t seed);
uint64_t rng_u64(struct sl_rng *r);
/* Uniform in [0, 1) with 24 random bits (exactly representable as float). */
float rng_uniform(struct sl_rng *r);
/* Uniform integer in [0, n), n > 0, without modulo bias. */
uint32_t rng_below(struct sl_rng *r, uint32_t n);
/* Standard normal (Box-Muller). */
float rng_normal(struct sl_rng *r);
/* Fisher-Yates shuffle of idx[0..n). */
void rng_shuffle(struct sl_rng *r, uint32_t *idx, size_t n);

#endif
