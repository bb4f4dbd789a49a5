/*
 * checkpoint: networks as safetensors files with PyTorch's names and layouts
 * (DESIGN.md §4), so a model moves between sectorlab and PyTorch unchanged.
 *
 * Dense layer i (1-based) is written as fc<i>.weight [out, in] holding the
 * weight the network actually uses (W_eff for a capped layer) and fc<i>.bias
 * [out].  A capped layer also stores fc<i>.weight_orig (the raw W) and its
 * power-iteration vectors fc<i>.weight_u [out] and fc<i>.weight_v [in], as
 * PyTorch's spectral norm does.  Run settings go into __metadata__ as string
 * pairs.  Writing is atomic.  (Reading arrives with the full engine.)
 */
#ifndef SECTORLAB_CHECKPOINT_H
#define SECTORLAB_CHECKPOINT_H

#include "sectorlab/nn.h"
#include "sectorlab/status.h"

struct checkpoint_meta {
	const char *key;
	const char *value;
};

sl_status checkpoint_save(const struct nn_net *net, const struct checkpoint_meta *meta,
			  int nmeta, const char *path, struct sl_error *err);

#endif
