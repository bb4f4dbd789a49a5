/*
 * checkpoint: networks as safetensors files with PyTorch's names and layouts
 * (DESIGN.md §4), so a model moves between sectorlab and PyTorch unchanged.
 *
 * Each weighted layer is written under its name (conv1, fc1, ...):
 * <name>.weight holds the weight the network actually uses (scale * W for a
 * capped layer), [out, in] for dense and [Cout, Cin, k, k] for conv layers,
 * and <name>.bias [out].  A capped layer also stores <name>.weight_orig (the
 * raw W) and its power-iteration vectors <name>.weight_u and <name>.weight_v,
 * as PyTorch's spectral norm does; for a convolution these live in the
 * operator's output and input spaces, [Cout, Ho, Wo] and [Cin, H, W] (the
 * norm capped is the convolution's, not the reshaped kernel's).  Run
 * settings go into __metadata__ as string pairs; "model" names the built-in
 * model (or "custom"), "arch" holds the layer spec (arch.h) so that a file
 * describes itself, and "rho" lists the caps, one per weighted layer.
 * Writing is atomic.
 *
 * Files PyTorch wrote are read as they are (checkpoint_load_arch): a
 * state_dict saved with safetensors.torch.save_file, without sectorlab's
 * metadata, whose tensors describe a stack of Linear and Conv2d modules.
 * Module names may be fc1/conv1..., nn.Sequential's "0", "2", ... or nested
 * ("net.0", "features.3", "classifier.1"); layer order is the module order
 * in the names (digit runs compared as numbers), convolutions first.  A
 * module may carry PyTorch's spectral norm, as parametrizations
 * (parametrizations.weight.original with ...weight.0._u and _v) or in the
 * older form (weight_orig, weight_u, weight_v): the weight in use, original /
 * (u . W v) as PyTorch computes it in eval mode, is loaded.  A missing bias is
 * zero.  F32, F16, BF16 and F64 tensors are read as float.
 *
 * Reading validates the whole header before it trusts any of it: the
 * length, the JSON, every dtype, shape and byte range (in bounds, no
 * overlaps, no gaps), that every tensor the model needs is present with its
 * shape and nothing else is, and that the values are finite.  A malformed
 * file gives SL_ERR_FORMAT with a message naming the file and the field;
 * nothing is allocated from a size the file claims before it is checked
 * against the file's real size.
 */
#ifndef SECTORLAB_CHECKPOINT_H
#define SECTORLAB_CHECKPOINT_H

#include "sectorlab/arch.h"
#include "sectorlab/nn.h"
#include "sectorlab/status.h"

struct checkpoint_meta {
	const char *key;
	const char *value;
};

/* Metadata read from a file; the strings are owned by it. */
struct checkpoint_info {
	int nmeta;
	char **keys, **values;
};

sl_status checkpoint_save(const struct nn_net *net, const struct checkpoint_meta *meta,
			  int nmeta, const char *path, struct sl_error *err);

/*
 * Read a checkpoint into net, whose layers must match the file's tensors
 * (names and shapes).  Capped layers get their raw weight, vectors and cap
 * (from the "rho" metadata) back, and their scale from u . W v; the
 * weight in use must then equal <name>.weight.  Uncapped layers take
 * <name>.weight as their weight.  info (may be NULL) receives the metadata;
 * free it with checkpoint_info_free.  On error net may be partly written.
 */
sl_status checkpoint_read(const char *path, struct nn_net *net, struct checkpoint_info *info,
			  struct sl_error *err);

/*
 * Load a checkpoint: a network for batches of at most max_batch is built and
 * filled.  A file sectorlab wrote describes its network ("arch", or for older
 * files the built-in "model"); arch, when not NULL, must then agree with it.
 * A plain PyTorch state_dict takes its architecture from arch (the input
 * shape, when arch has none, is the first dense layer's values read flat, or
 * for a convolution MNIST's 28x28 or, with 3 channels, CIFAR-10's 32x32);
 * without arch, from the one built-in model whose shapes it fits exactly.
 * Every tensor must then belong to a layer with the layer's shapes.  When the
 * shapes fit no built-in model or several, SL_ERR_ARG says what was found and
 * suggests the --arch to pass; mismatches are SL_ERR_FORMAT naming the
 * tensor.  For a PyTorch file, info receives "model" (the built-in model or
 * "custom"), "arch" (the spec used) and "source" (a sentence: the module
 * order, how the architecture was chosen, spectral norms folded, dtypes
 * converted).  The caller owns *net (nn_free) and info (checkpoint_info_free).
 */
sl_status checkpoint_load_arch(const char *path, const struct arch *arch, int max_batch,
			       struct nn_net **net, struct checkpoint_info *info,
			       struct sl_error *err);

/* checkpoint_load_arch without an architecture. */
sl_status checkpoint_load(const char *path, int max_batch, struct nn_net **net,
			  struct checkpoint_info *info, struct sl_error *err);

/*
 * Files of named flat arrays with metadata, for state that is not a network
 * (trainstate.h): the same safetensors container, written atomically, each
 * array a 1-D tensor of its dtype in the host's (little-endian) bytes.
 * Reading validates the whole header as above, then requires exactly the
 * arrays asked for (no other tensor, none missing), each with its dtype and
 * count, and finite floats; values are read bit for bit into data.  On error
 * the arrays may be partly written and info is empty.
 */
enum checkpoint_dtype { CKPT_F32, CKPT_F64, CKPT_U32, CKPT_U64 };

struct checkpoint_array {
	const char *name;
	enum checkpoint_dtype dtype;
	void *data;   /* count values of dtype */
	size_t count;
};

sl_status checkpoint_save_arrays(const struct checkpoint_meta *meta, int nmeta,
				 const struct checkpoint_array *arrays, int n, const char *path,
				 struct sl_error *err);
sl_status checkpoint_read_arrays(const char *path, const struct checkpoint_array *arrays,
				 int n, struct checkpoint_info *info, struct sl_error *err);

/* The metadata of a safetensors file whose header is valid (as above), for
 * a reader that decides from it what else to read. */
sl_status checkpoint_read_info(const char *path, struct checkpoint_info *info,
			       struct sl_error *err);

/* The value of key, or NULL. */
const char *checkpoint_info_get(const struct checkpoint_info *info, const char *key);
void checkpoint_info_free(struct checkpoint_info *info);

#endif
