/*
 * model: the networks sectorlab knows by name, as layer specs (arch.h), so a
 * built-in model and a user's --arch take one code path.
 *
 *   mlp           the paper's MNIST network: 784-50-20-10, leaky ReLU 0.1 on
 *                 the hidden layers, logits out; 1x28x28 input read flat.
 *   alexnet       the paper's CIFAR-10 network (DESIGN.md §2): conv 5x5
 *                 3->96 (same padding) + leaky, max-pool 3x3/2, conv 5x5
 *                 96->256 (same padding) + leaky, max-pool 3x3/2, flatten,
 *                 FC 12544->384 + leaky, 384->192 + leaky, 192->10; 3x32x32
 *                 input, no local response normalisation.  Pooling has no
 *                 padding (PyTorch's MaxPool2d(3, 2)): 32 -> 15 -> 7.
 *   alexnet-lite  the same shape, narrower so an epoch on CIFAR-10 takes
 *                 about a minute on two cores: conv 3->64, conv 64->128,
 *                 FC 6272->256, 256->128, 128->10 (about a quarter of
 *                 AlexNet's multiply-adds).
 *
 * Each model also carries the training recipe the paper used for it (the
 * optimizer and learning rate) and, where the authors' code hard-codes them,
 * their spectral caps, labelled for what they are: not certified by
 * Theorems 3 and 4.  A spec that is not a built-in model trains with Adam
 * 1e-3 and has no authors' caps.
 */
#ifndef SECTORLAB_MODEL_H
#define SECTORLAB_MODEL_H

#include "sectorlab/arch.h"
#include "sectorlab/nn.h"
#include "sectorlab/optim.h"
#include "sectorlab/status.h"

enum model_id { MODEL_MLP, MODEL_ALEXNET, MODEL_ALEXNET_LITE, MODEL_COUNT };

/* "mlp", "alexnet", "alexnet-lite". */
sl_status model_parse(const char *name, enum model_id *out, struct sl_error *err);
const char *model_name(enum model_id id);

/* The built-in model's architecture: its spec read by arch_parse, with its
 * name and input shape set. */
void model_get(enum model_id id, struct arch *out);

/* The spec text of a built-in model, as arch_parse reads it. */
const char *model_spec(enum model_id id);

/*
 * What --model NAME and --arch SPEC give: a built-in model's name, or else a
 * layer spec (arch_parse).  Errors name the known models as well.
 */
sl_status model_arch(const char *name_or_spec, struct arch *out, struct sl_error *err);

/* The built-in model the architecture is (same name), or -1. */
int model_of_arch(const struct arch *a);

/* The dataset the architecture is trained on by default: the model's
 * ("mnist" or "cifar10"); for a spec, "cifar10" for 3x32x32 (3072 values)
 * inputs, else "mnist". */
const char *model_default_dataset(const struct arch *a);

/* Input shape the model expects (MNIST: 1 x 28 x 28; CIFAR-10: 3 x 32 x 32). */
void model_input_shape(enum model_id id, int *c, int *h, int *w);

/* How many layers carry a weight (and so a cap): 3 for mlp, 5 for the
 * AlexNets. */
int model_weighted_count(enum model_id id);

/* Build the model's network for batches of at most max_batch (weights zero;
 * call nn_init_glorot). */
sl_status model_build(enum model_id id, int max_batch, struct nn_net **out,
		      struct sl_error *err);

/* The paper's optimizer for the architecture: Adam 1e-3 for mlp (and any
 * spec), SGD with momentum 0.9 and learning rate 0.01 for the AlexNets;
 * constant schedule. */
struct optim_config model_default_optim(const struct arch *a);

/* The caps the authors' code hard-codes for this model (one per weighted
 * layer), or 0 when it has none.  These are NOT certified for any
 * (nu, delta) by Theorems 3 and 4 (DESIGN.md §1).  Returns the count. */
int model_authors_caps(const struct arch *a, double *rho);

#endif
