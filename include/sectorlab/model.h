/*
 * model: the networks sectorlab knows, as layer tables (models are data).
 *
 * For now the paper's MNIST network; the convolutional networks join when the
 * engine has convolutions.  The authors' hard-coded spectral caps are kept
 * here too, labelled for what they are: not certified by Theorems 3 and 4.
 */
#ifndef SECTORLAB_MODEL_H
#define SECTORLAB_MODEL_H

#include "sectorlab/nn.h"
#include "sectorlab/status.h"

enum model_id { MODEL_MLP };

sl_status model_parse(const char *name, enum model_id *out, struct sl_error *err);
const char *model_name(enum model_id id);

/* Input shape the model expects (MNIST: 1 x 28 x 28). */
void model_input_shape(enum model_id id, int *c, int *h, int *w);

/* Write the model's layers into specs (NN_MAX_LAYERS entries available);
 * returns how many. */
int model_layers(enum model_id id, struct nn_layer_spec *specs);

/* The caps the authors' code hard-codes for this model (one per layer); these
 * are NOT certified for any (nu, delta) by Theorems 3 and 4 (DESIGN.md §1).
 * Returns the count. */
int model_authors_caps(enum model_id id, double *rho);

#endif
