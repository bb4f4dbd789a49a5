/* model: layer tables of the known networks (see model.h). */
#include "sectorlab/model.h"

#include <string.h>

/* DESIGN.md §2: 784-50-20-10, leaky ReLU 0.1 on the hidden layers. */
static const struct nn_layer_spec mlp[] = {
	{.kind = NN_DENSE, .in = 784, .out = 50, .act = NN_ACT_LEAKY_RELU, .slope = 0.1f},
	{.kind = NN_DENSE, .in = 50, .out = 20, .act = NN_ACT_LEAKY_RELU, .slope = 0.1f},
	{.kind = NN_DENSE, .in = 20, .out = 10, .act = NN_ACT_IDENTITY},
};

/* The AlexNet shape with widths c1, c2 (convolutions) and f1, f2 (dense). */
#define ALEXNET(c1, c2, f1, f2)                                                          \
	{                                                                                \
		{.kind = NN_CONV, .in = 3, .out = c1, .k = 5, .pad = 2,                  \
		 .act = NN_ACT_LEAKY_RELU, .slope = 0.1f},                               \
		{.kind = NN_MAXPOOL, .k = 3, .stride = 2},                               \
		{.kind = NN_CONV, .in = c1, .out = c2, .k = 5, .pad = 2,                 \
		 .act = NN_ACT_LEAKY_RELU, .slope = 0.1f},                               \
		{.kind = NN_MAXPOOL, .k = 3, .stride = 2},                               \
		{.kind = NN_FLATTEN},                                                    \
		{.kind = NN_DENSE, .in = (c2) * 7 * 7, .out = f1, .act = NN_ACT_LEAKY_RELU, \
		 .slope = 0.1f},                                                         \
		{.kind = NN_DENSE, .in = f1, .out = f2, .act = NN_ACT_LEAKY_RELU,        \
		 .slope = 0.1f},                                                         \
		{.kind = NN_DENSE, .in = f2, .out = 10, .act = NN_ACT_IDENTITY},         \
	}

static const struct nn_layer_spec alexnet[] = ALEXNET(96, 256, 384, 192);
static const struct nn_layer_spec alexnet_lite[] = ALEXNET(64, 128, 256, 128);

static const struct {
	const char *name;
	const struct nn_layer_spec *layers;
	int nlayers;
	int c, h, w;
} models[] = {
	[MODEL_MLP] = {"mlp", mlp, 3, 1, 28, 28},
	[MODEL_ALEXNET] = {"alexnet", alexnet, 8, 3, 32, 32},
	[MODEL_ALEXNET_LITE] = {"alexnet-lite", alexnet_lite, 8, 3, 32, 32},
};

#define NMODELS ((int)(sizeof models / sizeof models[0]))

sl_status model_parse(const char *name, enum model_id *out, struct sl_error *err)
{
	for (int i = 0; name && i < NMODELS; i++)
		if (strcmp(name, models[i].name) == 0) {
			*out = (enum model_id)i;
			return SL_OK;
		}
	return status_set(err, SL_ERR_ARG, "unknown model '%s' (known: mlp, alexnet, alexnet-lite)",
			  name ? name : "(null)");
}

const char *model_name(enum model_id id)
{
	return (int)id >= 0 && (int)id < NMODELS ? models[id].name : "?";
}

void model_input_shape(enum model_id id, int *c, int *h, int *w)
{
	*c = models[id].c, *h = models[id].h, *w = models[id].w;
}

int model_layers(enum model_id id, struct nn_layer_spec *specs)
{
	memcpy(specs, models[id].layers, sizeof(struct nn_layer_spec) * (size_t)models[id].nlayers);
	return models[id].nlayers;
}

int model_weighted_count(enum model_id id)
{
	int n = 0;
	for (int i = 0; i < models[id].nlayers; i++)
		n += models[id].layers[i].kind == NN_DENSE || models[id].layers[i].kind == NN_CONV;
	return n;
}

sl_status model_build(enum model_id id, int max_batch, struct nn_net **out,
		      struct sl_error *err)
{
	struct nn_shape in = {models[id].c, models[id].h, models[id].w};
	return nn_build(in, models[id].layers, models[id].nlayers, max_batch, out, err);
}

struct optim_config model_default_optim(enum model_id id)
{
	if (id == MODEL_MLP)
		return optim_adam_defaults(1e-3);
	/* DESIGN.md §2: the authors trained the CIFAR-10 network with SGD,
	 * momentum 0.9, learning rate 0.01. */
	return optim_sgd_defaults(0.01, 0.9);
}

int model_authors_caps(enum model_id id, double *rho)
{
	if (id != MODEL_MLP)
		return 0;
	rho[0] = 1.8, rho[1] = 1.8, rho[2] = 0.9204;
	return 3;
}

const char *model_default_dataset(enum model_id id)
{
	return id == MODEL_MLP ? "mnist" : "cifar10";
}
