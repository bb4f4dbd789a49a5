/*
 * model: the networks sectorlab knows, as layer tables (models are data).
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
 * Theorems 3 and 4.
 */
#ifndef SECTORLAB_MODEL_H
#define SECTORLAB_MODEL_H

#include "sectorlab/nn.h"
#include "sectorlab/optim.h"
#include "sectorlab/status.h"

enum model_id { MODEL_MLP, MODEL_ALEXNET, MODEL_ALEXNET_LITE };

/* "mlp", "alexnet", "alexnet-lite". */
sl_status model_parse(const char *name, enum model_id *out, struct sl_error *err);
const char *model_name(enum model_id id);

/* The dataset the model is trained on by default: "mnist" or "cifar10". */
const char *model_default_dataset(enum model_id id);

/* Input shape the model expects (MNIST: 1 x 28 x 28; CIFAR-10: 3 x 32 x 32). */
void model_input_shape(enum model_id id, int *c, int *h, int *w);

/* Write the model's layers into specs (NN_MAX_LAYERS entries available);
 * returns how many. */
int model_layers(enum model_id id, struct nn_layer_spec *specs);

/* How many layers carry a weight (and so a cap): 3 for mlp, 5 for the
 * AlexNets. */
int model_weighted_count(enum model_id id);

/* Build the model's network for batches of at most max_batch (weights zero;
 * call nn_init_glorot). */
sl_status model_build(enum model_id id, int max_batch, struct nn_net **out,
		      struct sl_error *err);

/* The paper's optimizer for the model: Adam 1e-3 for mlp, SGD with momentum
 * 0.9 and learning rate 0.01 for the AlexNets; constant schedule. */
struct optim_config model_default_optim(enum model_id id);

/* The caps the authors' code hard-codes for this model (one per weighted
 * layer), or 0 when it has none.  These are NOT certified for any
 * (nu, delta) by Theorems 3 and 4 (DESIGN.md §1).  Returns the count. */
int model_authors_caps(enum model_id id, double *rho);

#endif
