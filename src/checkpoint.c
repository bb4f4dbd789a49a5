/* checkpoint: safetensors writer for networks (see checkpoint.h). */
#include "sectorlab/checkpoint.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sectorlab/io.h"

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "safetensors stores little-endian floats; this writer assumes a little-endian host"
#endif

#define CKPT_MAX_TENSORS (5 * NN_MAX_LAYERS)

struct tensor_ref {
	char name[48];
	const float *data;
	int rank;
	int shape[2];
};

static size_t tensor_count(const struct tensor_ref *t)
{
	size_t n = 1;
	for (int k = 0; k < t->rank; k++)
		n *= (size_t)t->shape[k];
	return n;
}

static int collect(const struct nn_net *net, struct tensor_ref *t)
{
	int n = 0;
	for (int i = 0; i < net->nlayers; i++) {
		const struct nn_layer *l = &net->layers[i];
		struct tensor_ref add[5] = {
			{"", nn_layer_weight(l), 2, {l->out, l->in}},
			{"", l->b, 1, {l->out, 0}},
			{"", l->w, 2, {l->out, l->in}},
			{"", l->u, 1, {l->out, 0}},
			{"", l->v, 1, {l->in, 0}},
		};
		static const char *const suffix[5] = {"weight", "bias", "weight_orig", "weight_u",
						      "weight_v"};
		int count = l->rho > 0 ? 5 : 2;
		for (int k = 0; k < count; k++) {
			t[n] = add[k];
			snprintf(t[n].name, sizeof t[n].name, "fc%d.%s", i + 1, suffix[k]);
			n++;
		}
	}
	return n;
}

/* Append a JSON string literal; the keys and values we write are plain, but
 * metadata may carry paths, so quote and backslash are escaped. */
static void json_string(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c < 0x20)
			fprintf(f, "\\u%04x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}

sl_status checkpoint_save(const struct nn_net *net, const struct checkpoint_meta *meta,
			  int nmeta, const char *path, struct sl_error *err)
{
	struct tensor_ref t[CKPT_MAX_TENSORS];
	int nt = collect(net, t);

	/* Build the JSON header in memory first: its length precedes it. */
	char *hdr = NULL;
	size_t hlen = 0;
	FILE *h = open_memstream(&hdr, &hlen);
	if (!h)
		return status_set(err, SL_ERR_NOMEM, "%s: header", path);
	fputs("{\"__metadata__\":{", h);
	for (int i = 0; i < nmeta; i++) {
		if (i)
			fputc(',', h);
		json_string(h, meta[i].key);
		fputc(':', h);
		json_string(h, meta[i].value);
	}
	fputc('}', h);
	size_t offset = 0;
	for (int i = 0; i < nt; i++) {
		size_t bytes = tensor_count(&t[i]) * sizeof(float);
		fputc(',', h);
		json_string(h, t[i].name);
		fprintf(h, ":{\"dtype\":\"F32\",\"shape\":[");
		for (int k = 0; k < t[i].rank; k++)
			fprintf(h, k ? ",%d" : "%d", t[i].shape[k]);
		fprintf(h, "],\"data_offsets\":[%zu,%zu]}", offset, offset + bytes);
		offset += bytes;
	}
	fputc('}', h);
	/* Pad with spaces so the data starts 8-byte aligned. */
	long pos = ftell(h);
	while ((8 + pos) % 8 != 0) {
		fputc(' ', h);
		pos++;
	}
	if (fclose(h) != 0) {
		free(hdr);
		return status_set(err, SL_ERR_NOMEM, "%s: header", path);
	}

	struct io_atomic a;
	sl_status st = io_atomic_open(&a, path, err);
	if (st != SL_OK) {
		free(hdr);
		return st;
	}
	uint64_t len = hlen; /* little-endian host: the bytes are already in order */
	int ok = fwrite(&len, 8, 1, a.f) == 1 && fwrite(hdr, 1, hlen, a.f) == hlen;
	for (int i = 0; ok && i < nt; i++) {
		size_t count = tensor_count(&t[i]);
		ok = fwrite(t[i].data, sizeof(float), count, a.f) == count;
	}
	free(hdr);
	if (!ok) {
		io_atomic_abort(&a);
		return status_set(err, SL_ERR_IO, "writing %s failed", path);
	}
	return io_atomic_commit(&a, err);
}
