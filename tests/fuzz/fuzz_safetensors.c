/*
 * Fuzz target: the safetensors checkpoint reader.  Every input is read as a
 * checkpoint of a small 2-3-2 network (so inputs stay small and the fuzzer
 * spends its time on the header): header length, JSON, dtypes, shapes,
 * offsets, metadata and values must all be validated before anything is
 * trusted.  Then it is loaded as checkpoint_load_arch loads any file (a
 * PyTorch state_dict's modules, dtypes and spectral norms; a sectorlab
 * file's "arch" spec), with and without a small --arch.
 */
#define _GNU_SOURCE /* memfd_create */
#include <math.h>
#include <stdlib.h>

#include "fuzz_util.h"
#include "sectorlab/checkpoint.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct nn_layer_spec specs[] = {
		{.kind = NN_DENSE, .in = 2, .out = 3, .act = NN_ACT_LEAKY_RELU, .slope = 0.1f},
		{.kind = NN_DENSE, .in = 3, .out = 2, .act = NN_ACT_IDENTITY},
	};
	static struct nn_net *net;
	if (!net && nn_new(specs, 2, 1, &net, NULL) != SL_OK)
		abort();
	char path[64];
	int fd = fuzz_memfile(data, size, path, sizeof path);
	if (fd < 0)
		return 0;
	struct checkpoint_info info = {0};
	struct sl_error err;
	status_clear(&err);
	if (checkpoint_read(path, net, &info, &err) == SL_OK) {
		/* A file that loads gives a usable network. */
		for (size_t k = 0; k < net->nparams; k++)
			if (!isfinite(net->params[k]))
				abort();
	} else if (err.msg[0] == '\0') {
		abort();
	}
	checkpoint_info_free(&info);
	static struct arch small;
	if (!small.nlayers && arch_parse("input 2, dense 3, tanh, dense 2", &small, NULL) != SL_OK)
		abort();
	for (int hint = 0; hint < 2; hint++) {
		struct nn_net *loaded = NULL;
		status_clear(&err);
		if (checkpoint_load_arch(path, hint ? &small : NULL, 1, &loaded, &info, &err) ==
		    SL_OK) {
			for (size_t k = 0; k < loaded->nparams; k++)
				if (!isfinite(loaded->params[k]))
					abort();
			nn_free(loaded);
			checkpoint_info_free(&info);
		} else if (err.msg[0] == '\0' || loaded) {
			abort();
		}
	}
	close(fd);
	return 0;
}
