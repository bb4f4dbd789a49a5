/*
 * arch: network architectures as data, written as a layer spec.
 *
 * Two forms are read:
 *   784-100-100-10      the shorthand: a dense stack taking 784 values, with
 *                       leaky ReLU 0.1 (the paper's) after every layer but
 *                       the last;
 *   input 3x32x32, conv 32 5x5 pad same, relu, maxpool 3x3/2, flatten,
 *   dense 10            the full form: items separated by commas, each a
 *                       layer or the activation of the weighted layer just
 *                       before it (none when not given).
 * Layers: "dense N"; "conv C kxk [stride s] [pad same|valid|p]" (same needs
 * an odd kernel and stride 1); "maxpool kxk[/s]" (stride defaults to k);
 * "flatten".  Activations (arch_activations lists them with their sectors
 * [alpha, beta], taken from sector.h's table): "leaky:A" (0 <= A <= 1),
 * "relu", "tanh", "none".  Activations whose sector the theory cannot use
 * (alpha < 0 < beta makes p = alpha beta < 0, which Theorem 4 excludes) are
 * refused with that reason.  "input CxHxW" or "input N" may open the full
 * form; otherwise the input shape comes from the data (arch_fit_input).
 *
 * The built-in models are named specs (model.h); arch only knows layers.
 * arch_format writes the full form back, canonically, so a checkpoint can
 * carry its architecture and any reader can rebuild the network.  All
 * structs are plain data owned by the caller; nothing here allocates,
 * prints or exits.
 */
#ifndef SECTORLAB_ARCH_H
#define SECTORLAB_ARCH_H

#include <stdbool.h>
#include <stddef.h>

#include "sectorlab/nn.h"
#include "sectorlab/status.h"

#define ARCH_NAME 32
/* Longest spec text arch_parse reads, and room enough for arch_format. */
#define ARCH_TEXT 1024

struct arch {
	char name[ARCH_NAME];   /* the built-in model's name, or "" for a spec */
	struct nn_shape input;  /* (0, 0, 0) until given or fitted */
	int nlayers;
	/* Dense layers' .in is filled when the input is known (arch_fit_input);
	 * pooling strides are explicit. */
	struct nn_layer_spec layers[NN_MAX_LAYERS];
};

/*
 * Parse a spec (either form) into out.  A bad spec gives SL_ERR_ARG with a
 * message that quotes the item and says what was expected; a refused
 * activation gives SL_ERR_UNSUPPORTED with the reason.
 */
sl_status arch_parse(const char *text, struct arch *out, struct sl_error *err);

/*
 * Give the architecture the data's example shape, or check it against its
 * own: a spec that takes N values flat (the shorthand, or "input N" before a
 * dense layer) accepts any shape of N values; a given CxHxW must match
 * exactly.  Then every layer's input size is computed and checked (kernels
 * fit, at most NN_MAX_LAYERS); SL_ERR_ARG naming the layer otherwise.
 */
sl_status arch_fit_input(struct arch *a, struct nn_shape data, struct sl_error *err);

/* Has the architecture an input shape (given or fitted)? */
bool arch_has_input(const struct arch *a);

/* Build the network for batches of at most max_batch (the input must be
 * known; weights zero, call nn_init_glorot). */
sl_status arch_build(const struct arch *a, int max_batch, struct nn_net **out,
		     struct sl_error *err);

/* The same with the network's own threads (nn_build_threads; 0: the
 * default). */
sl_status arch_build_threads(const struct arch *a, int max_batch, int threads,
			     struct nn_net **out, struct sl_error *err);

/* The built-in model's name, or "the layer spec": for messages. */
const char *arch_label(const struct arch *a);

/* How many layers carry a weight (dense, conv). */
int arch_weighted_count(const struct arch *a);

/*
 * The full form, canonical ("input 1x28x28, dense 50, leaky:0.1, ...");
 * arch_parse reads it back to the same layers.  Truncated to cap bytes
 * (ARCH_TEXT always suffices); returns buf.
 */
char *arch_format(const struct arch *a, char *buf, size_t cap);

/* The shortest decimal that reads back as the same float ("0.1", not
 * "0.100000001"); buf holds 32 bytes.  Returns buf. */
const char *arch_float_text(float v, char *buf);

/* The architecture of a built network (its layers and input shape). */
void arch_of_net(const struct nn_net *net, struct arch *out);

/* One line per activation the spec knows: its spelling and its sector, or
 * why it is refused ("relu        [0, 1]"); for --help.  Returns buf. */
char *arch_activations(char *buf, size_t cap);

#endif
