/* model: the built-in networks as named layer specs (see model.h). */
#include "sectorlab/model.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The AlexNet shape with convolution widths c1, c2 and dense widths f1, f2
 * (DESIGN.md §2). */
#define ALEXNET(c1, c2, f1, f2)                                                         \
	"conv " #c1 " 5x5 pad same, leaky:0.1, maxpool 3x3/2, "                          \
	"conv " #c2 " 5x5 pad same, leaky:0.1, maxpool 3x3/2, flatten, "                 \
	"dense " #f1 ", leaky:0.1, dense " #f2 ", leaky:0.1, dense 10"

static const struct {
	const char *name;
	const char *spec;
	struct nn_shape input;
	const char *dataset;
	bool sgd;        /* the authors' SGD recipe, else Adam */
} models[] = {
	/* DESIGN.md §2: 784-50-20-10, leaky ReLU 0.1 on the hidden layers. */
	[MODEL_MLP] = {"mlp", "784-50-20-10", {1, 28, 28}, "mnist", false},
	[MODEL_ALEXNET] = {"alexnet", ALEXNET(96, 256, 384, 192), {3, 32, 32}, "cifar10", true},
	[MODEL_ALEXNET_LITE] = {"alexnet-lite", ALEXNET(64, 128, 256, 128), {3, 32, 32}, "cifar10",
				true},
};

sl_status model_parse(const char *name, enum model_id *out, struct sl_error *err)
{
	for (int i = 0; name && i < MODEL_COUNT; i++)
		if (strcmp(name, models[i].name) == 0) {
			*out = (enum model_id)i;
			return SL_OK;
		}
	return status_set(err, SL_ERR_ARG, "unknown model '%s' (known: mlp, alexnet, alexnet-lite)",
			  name ? name : "(null)");
}

const char *model_name(enum model_id id)
{
	return (int)id >= 0 && (int)id < MODEL_COUNT ? models[id].name : "?";
}

const char *model_spec(enum model_id id)
{
	return models[id].spec;
}

void model_get(enum model_id id, struct arch *out)
{
	/* The table's specs are tested (test_arch): failing here is a
	 * programmer's error. */
	if (arch_parse(models[id].spec, out, NULL) != SL_OK ||
	    arch_fit_input(out, models[id].input, NULL) != SL_OK)
		abort();
	snprintf(out->name, sizeof out->name, "%s", models[id].name);
}

sl_status model_arch(const char *name_or_spec, struct arch *out, struct sl_error *err)
{
	enum model_id id;
	if (model_parse(name_or_spec, &id, NULL) == SL_OK) {
		model_get(id, out);
		return SL_OK;
	}
	sl_status st = arch_parse(name_or_spec, out, err);
	if (st == SL_ERR_ARG && err && strlen(err->msg) + 60 < sizeof err->msg)
		strcat(err->msg, " (or a model: mlp, alexnet, alexnet-lite)");
	return st;
}

int model_of_arch(const struct arch *a)
{
	for (int i = 0; i < MODEL_COUNT; i++)
		if (strcmp(a->name, models[i].name) == 0)
			return i;
	return -1;
}

const char *model_default_dataset(const struct arch *a)
{
	int id = model_of_arch(a);
	if (id >= 0)
		return models[id].dataset;
	return (size_t)a->input.c * a->input.h * a->input.w == 3 * 32 * 32 ? "cifar10" : "mnist";
}

void model_input_shape(enum model_id id, int *c, int *h, int *w)
{
	*c = models[id].input.c, *h = models[id].input.h, *w = models[id].input.w;
}

int model_weighted_count(enum model_id id)
{
	struct arch a;
	model_get(id, &a);
	return arch_weighted_count(&a);
}

sl_status model_build(enum model_id id, int max_batch, struct nn_net **out,
		      struct sl_error *err)
{
	struct arch a;
	model_get(id, &a);
	return arch_build(&a, max_batch, out, err);
}

struct optim_config model_default_optim(const struct arch *a)
{
	int id = model_of_arch(a);
	if (id < 0 || !models[id].sgd)
		return optim_adam_defaults(1e-3);
	/* DESIGN.md §2: the authors trained the CIFAR-10 network with SGD,
	 * momentum 0.9, learning rate 0.01. */
	return optim_sgd_defaults(0.01, 0.9);
}

int model_authors_caps(const struct arch *a, double *rho)
{
	/* 1.8 for every hidden layer, 0.9204 for the logits' layer; the two
	 * AlexNets have the same five weighted layers. */
	int n;
	switch (model_of_arch(a)) {
	case MODEL_MLP: n = 3; break;
	case MODEL_ALEXNET:
	case MODEL_ALEXNET_LITE: n = 5; break;
	default: return 0;
	}
	for (int i = 0; i < n - 1; i++)
		rho[i] = 1.8;
	rho[n - 1] = 0.9204;
	return n;
}
