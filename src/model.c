/* model: layer tables of the known networks (see model.h). */
#include "sectorlab/model.h"

#include <string.h>

sl_status model_parse(const char *name, enum model_id *out, struct sl_error *err)
{
	if (name && strcmp(name, "mlp") == 0) {
		*out = MODEL_MLP;
		return SL_OK;
	}
	return status_set(err, SL_ERR_ARG, "unknown model '%s' (known: mlp)",
			  name ? name : "(null)");
}

const char *model_name(enum model_id id)
{
	switch (id) {
	case MODEL_MLP:
		return "mlp";
	}
	return "?";
}

void model_input_shape(enum model_id id, int *c, int *h, int *w)
{
	(void)id;
	*c = 1, *h = 28, *w = 28;
}

int model_layers(enum model_id id, struct nn_layer_spec *specs)
{
	(void)id;
	/* DESIGN.md §2: 784-50-20-10, leaky ReLU 0.1 on the hidden layers. */
	static const struct nn_layer_spec mlp[] = {
		{NN_DENSE, 784, 50, NN_ACT_LEAKY_RELU, 0.1f},
		{NN_DENSE, 50, 20, NN_ACT_LEAKY_RELU, 0.1f},
		{NN_DENSE, 20, 10, NN_ACT_IDENTITY, 0.0f},
	};
	int n = (int)(sizeof mlp / sizeof mlp[0]);
	memcpy(specs, mlp, sizeof mlp);
	return n;
}

int model_authors_caps(enum model_id id, double *rho)
{
	(void)id;
	rho[0] = 1.8, rho[1] = 1.8, rho[2] = 0.9204;
	return 3;
}
