/* Tests for checkpoint: the safetensors layout, round trips through a temp
 * dir, malformed and fuzzed files rejected with the right status, and the
 * PyTorch round trip when Debian's python3-torch is installed. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sectorlab/caps.h"
#include "sectorlab/certify.h"
#include "sectorlab/checkpoint.h"
#include "sectorlab/data.h"
#include "sectorlab/driver.h"
#include "sectorlab/model.h"
#include "testutil.h"

static void random_params(struct nn_net *net, uint64_t seed)
{
	struct sl_rng rng;
	rng_seed(&rng, seed);
	nn_init_glorot(net, &rng);
	for (size_t k = 0; k < net->nparams; k++)
		if (net->params[k] == 0)
			net->params[k] = 0.1f * rng_normal(&rng); /* biases too */
}

/* Parse the file by hand: 8-byte little-endian header length, a JSON
 * header with PyTorch's names, shapes and offsets, then raw float32 data. */
static void test_layout(void **state)
{
	static const struct nn_layer_spec specs[] = {
		{.kind = NN_DENSE, .in = 3, .out = 2, .act = NN_ACT_LEAKY_RELU, .slope = 0.1f},
		{.kind = NN_DENSE, .in = 2, .out = 2, .act = NN_ACT_IDENTITY},
	};
	struct nn_net *net;
	struct sl_rng rng;
	rng_seed(&rng, 3);
	assert_int_equal(nn_new(specs, 2, 1, &net, NULL), SL_OK);
	nn_init_glorot(net, &rng);
	net->layers[0].b[1] = 0.25f;
	nn_set_cap(net, 0, 0.1f);
	nn_update_caps(net, 50);
	assert_true(net->layers[0].scale < 1);
	char *path = tu_path(*state, "m.safetensors");
	struct checkpoint_meta meta[] = {{"model", "test \"quoted\""}, {"mode", "spnorm"}};
	assert_int_equal(checkpoint_save(net, meta, 2, path, NULL), SL_OK);

	size_t n;
	char *buf = tu_read_file(path, &n);
	assert_true(n > 8);
	uint64_t hlen;
	memcpy(&hlen, buf, 8);
	assert_true(8 + hlen <= n);
	assert_int_equal((8 + hlen) % 8, 0);
	char *hdr = strndup(buf + 8, hlen);
	assert_non_null(strstr(hdr, "\"__metadata__\":{\"model\":\"test \\\"quoted\\\"\""));
	assert_non_null(strstr(hdr, "\"input\":\"3,1,1\""));
	assert_non_null(strstr(hdr, "\"layers\":\"fc1:dense:in=3,out=2,act=leaky,slope=0.1;"
				    "fc2:dense:in=2,out=2,act=identity\""));
	assert_non_null(strstr(hdr, "\"fc1.weight\":{\"dtype\":\"F32\",\"shape\":[2,3],"
				    "\"data_offsets\":[0,24]}"));
	assert_non_null(strstr(hdr, "\"fc1.bias\":{\"dtype\":\"F32\",\"shape\":[2],"
				    "\"data_offsets\":[24,32]}"));
	assert_non_null(strstr(hdr, "\"fc1.weight_orig\""));
	assert_non_null(strstr(hdr, "\"fc1.weight_u\""));
	assert_non_null(strstr(hdr, "\"fc1.weight_v\""));
	assert_non_null(strstr(hdr, "\"fc2.weight\""));
	assert_null(strstr(hdr, "\"fc2.weight_orig\"")); /* uncapped layer */
	const char *data = buf + 8 + hlen;
	float w[6], b[2], in_use[6];
	memcpy(w, data, sizeof w);
	memcpy(b, data + 24, sizeof b);
	/* fc1.weight is the weight in use: scale * W, not the raw W. */
	nn_layer_weight_in_use(&net->layers[0], in_use);
	for (int k = 0; k < 6; k++)
		assert_close(w[k], in_use[k], 0);
	assert_close(b[1], 0.25, 0);
	/* Reserved keys are refused. */
	struct checkpoint_meta bad[] = {{"layers", "x"}};
	struct sl_error err;
	assert_int_equal(checkpoint_save(net, bad, 1, path, &err), SL_ERR_ARG);
	free(hdr);
	free(buf);
	free(path);
	nn_free(net);
}

static const struct nn_shape conv_in = {2, 9, 8};
static const struct nn_layer_spec conv_specs[] = {
	{.kind = NN_CONV, .in = 2, .out = 4, .k = 3, .pad = 1, .act = NN_ACT_LEAKY_RELU,
	 .slope = 0.1f},
	{.kind = NN_MAXPOOL, .k = 3, .stride = 2},
	{.kind = NN_CONV, .in = 4, .out = 3, .k = 2, .stride = 1, .act = NN_ACT_LEAKY_RELU,
	 .slope = 0.1f},
	{.kind = NN_FLATTEN},
	{.kind = NN_DENSE, .in = 3 * 3 * 2, .out = 6, .act = NN_ACT_LEAKY_RELU, .slope = 0.1f},
	{.kind = NN_DENSE, .in = 6, .out = 3, .act = NN_ACT_IDENTITY},
};

/* Save, read into a fresh network: the same parameters, vectors, caps and
 * logits. */
static void test_round_trip(void **state)
{
	struct nn_net *a, *b;
	assert_int_equal(nn_build(conv_in, conv_specs, 6, 4, &a, NULL), SL_OK);
	assert_int_equal(nn_build(conv_in, conv_specs, 6, 4, &b, NULL), SL_OK);
	random_params(a, 8);
	nn_set_cap(a, 0, 0.5f); /* conv1 */
	nn_set_cap(a, 4, 0.7f); /* fc1 */
	nn_update_caps(a, 40);
	assert_true(a->layers[0].scale < 1 && a->layers[4].scale < 1);
	char *path = tu_path(*state, "conv.safetensors");
	struct checkpoint_meta meta[] = {{"rho", "0.5,0,0.7,0"}, {"seed", "8"}};
	assert_int_equal(checkpoint_save(a, meta, 2, path, NULL), SL_OK);
	struct checkpoint_info info;
	struct sl_error err;
	if (checkpoint_read(path, b, &info, &err) != SL_OK)
		fail_msg("%s", err.msg);
	assert_string_equal(checkpoint_info_get(&info, "seed"), "8");
	assert_null(checkpoint_info_get(&info, "nothing"));
	assert_memory_equal(a->params, b->params, sizeof(float) * a->nparams);
	for (int i = 0; i < 6; i++) {
		const struct nn_layer *la = &a->layers[i], *lb = &b->layers[i];
		assert_close(lb->rho, la->rho, 0);
		assert_close(lb->scale, la->scale, 1e-6);
		if (la->rho > 0)
			assert_memory_equal(la->u, lb->u, sizeof(float) * (size_t)la->usize);
	}
	float x[4 * 144];
	struct sl_rng rng;
	rng_seed(&rng, 1);
	for (int k = 0; k < 4 * 144; k++)
		x[k] = rng_uniform(&rng) - 0.5f;
	float la[12];
	memcpy(la, nn_forward(a, x, 4), sizeof la);
	const float *lb = nn_forward(b, x, 4);
	for (int k = 0; k < 12; k++)
		assert_close(lb[k], la[k], 1e-6);
	checkpoint_info_free(&info);
	/* A network of another shape is refused, naming the tensor. */
	struct nn_layer_spec other[6];
	memcpy(other, conv_specs, sizeof other);
	other[0].out = 5;
	other[2].in = 5;
	struct nn_net *c;
	assert_int_equal(nn_build(conv_in, other, 6, 1, &c, NULL), SL_OK);
	assert_int_equal(checkpoint_read(path, c, NULL, &err), SL_ERR_FORMAT);
	print_message("other shape: %s\n", err.msg);
	assert_non_null(strstr(err.msg, "not this network's"));
	nn_free(c);
	nn_free(a);
	nn_free(b);
	free(path);
}

/* checkpoint_load builds the model the metadata names. */
static void test_load_model(void **state)
{
	struct nn_net *a;
	assert_int_equal(model_build(MODEL_ALEXNET_LITE, 2, &a, NULL), SL_OK);
	random_params(a, 9);
	nn_set_cap(a, 2, 0.9f); /* conv2 */
	nn_set_cap(a, 7, 0.8f); /* fc3 */
	nn_update_caps(a, 20);
	char *path = tu_path(*state, "lite.safetensors");
	struct checkpoint_meta meta[] = {{"model", "alexnet-lite"}, {"rho", "0,0.9,0,0,0.8"}};
	assert_int_equal(checkpoint_save(a, meta, 2, path, NULL), SL_OK);
	struct nn_net *b;
	struct checkpoint_info info;
	struct sl_error err;
	if (checkpoint_load(path, 3, &b, &info, &err) != SL_OK)
		fail_msg("%s", err.msg);
	assert_int_equal(b->max_batch, 3);
	assert_string_equal(checkpoint_info_get(&info, "model"), "alexnet-lite");
	assert_close(b->layers[2].rho, 0.9, 1e-7);
	assert_close(b->layers[7].rho, 0.8, 1e-7);
	assert_close(b->layers[5].rho, 0, 0);
	float *x = malloc(sizeof(float) * 2 * 3072);
	for (int k = 0; k < 2 * 3072; k++)
		x[k] = (float)((k * 7919) % 255) / 255.0f - 0.5f;
	float la[20];
	memcpy(la, nn_forward(a, x, 2), sizeof la);
	const float *lb = nn_forward(b, x, 2);
	for (int k = 0; k < 20; k++)
		assert_close(lb[k], la[k], 1e-5);
	checkpoint_info_free(&info);
	free(x);
	nn_free(a);
	nn_free(b);
	free(path);
}

/* ---- Malformed files ---- */

/* A one-layer 2 -> 2 network reads fc1.weight [2, 2] and fc1.bias [2]. */
static const struct nn_layer_spec tiny[] = {
	{.kind = NN_DENSE, .in = 2, .out = 2, .act = NN_ACT_IDENTITY}};

#define W_GOOD "\"fc1.weight\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]}"
#define B_GOOD "\"fc1.bias\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[16,24]}"

static sl_status read_bytes(const char *dir, const void *bytes, size_t n, struct sl_error *err)
{
	char *path = tu_path(dir, "bad.safetensors");
	assert_int_equal(tu_write_file(path, bytes, n), 0);
	struct nn_net *net;
	assert_int_equal(nn_new(tiny, 1, 1, &net, NULL), SL_OK);
	struct checkpoint_info info;
	sl_status st = checkpoint_read(path, net, &info, err);
	if (st == SL_OK)
		checkpoint_info_free(&info);
	nn_free(net);
	free(path);
	return st;
}

/* A file of header text and ndata bytes of data (floats 1, 2, 3, ...). */
static sl_status read_header(const char *dir, const char *header, size_t ndata,
			     struct sl_error *err)
{
	size_t hl = strlen(header), n = 8 + hl + ndata;
	unsigned char *buf = malloc(n);
	for (int k = 0; k < 8; k++)
		buf[k] = (unsigned char)((uint64_t)hl >> (8 * k));
	memcpy(buf + 8, header, hl);
	for (size_t k = 0; k < ndata / 4; k++) {
		float v = (float)(k + 1);
		memcpy(buf + 8 + hl + 4 * k, &v, 4);
	}
	sl_status st = read_bytes(dir, buf, n, err);
	free(buf);
	return st;
}

static void test_malformed(void **state)
{
	const char *dir = *state;
	static const struct {
		const char *header;
		size_t ndata;
		sl_status want;
		const char *says;
	} cases[] = {
		{"{" W_GOOD "," B_GOOD "}", 24, SL_OK, ""},
		{"{\"__metadata__\":{\"a\":\"b\"}," W_GOOD "," B_GOOD "}  ", 24, SL_OK, ""},
		{"{" W_GOOD "," B_GOOD, 24, SL_ERR_FORMAT, "expected '}'"},
		{"{" W_GOOD "," B_GOOD "}x", 24, SL_ERR_FORMAT, "text after"},
		{"[]", 24, SL_ERR_FORMAT, "expected '{'"},
		{"{" W_GOOD "," B_GOOD "}", 28, SL_ERR_FORMAT, "cover 24"},
		{"{" W_GOOD "}", 16, SL_ERR_FORMAT, "no tensor 'fc1.bias'"},
		{"{" W_GOOD "," B_GOOD ",\"fc9.bias\":{\"dtype\":\"F32\",\"shape\":[1],"
		 "\"data_offsets\":[24,28]}}", 28, SL_ERR_FORMAT, "belongs to no layer"},
		{"{\"fc1.weight\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,16]},"
		 B_GOOD "}", 24, SL_ERR_FORMAT, "16 bytes for 6 values"},
		{"{\"fc1.weight\":{\"dtype\":\"F32\",\"shape\":[1,4],\"data_offsets\":[0,16]},"
		 B_GOOD "}", 24, SL_ERR_FORMAT, "has shape [1,4], the model needs [2,2]"},
		{"{" W_GOOD ",\"fc1.bias\":{\"dtype\":\"F32\",\"shape\":[2],"
		 "\"data_offsets\":[12,20]}}", 24, SL_ERR_FORMAT, "overlap"},
		{"{" W_GOOD ",\"fc1.bias\":{\"dtype\":\"F32\",\"shape\":[2],"
		 "\"data_offsets\":[20,28]}}", 28, SL_ERR_FORMAT, "gap"},
		{"{" W_GOOD ",\"fc1.bias\":{\"dtype\":\"F32\",\"shape\":[2],"
		 "\"data_offsets\":[16,32]}}", 24, SL_ERR_FORMAT, "outside"},
		{"{" W_GOOD ",\"fc1.bias\":{\"dtype\":\"F32\",\"shape\":[2],"
		 "\"data_offsets\":[24,16]}}", 24, SL_ERR_FORMAT, "outside"},
		{"{" W_GOOD ",\"fc1.bias\":{\"dtype\":\"F32\",\"shape\":[2],"
		 "\"data_offsets\":[16]}}", 24, SL_ERR_FORMAT, "two numbers"},
		{"{\"fc1.weight\":{\"dtype\":\"I32\",\"shape\":[2,2],\"data_offsets\":[0,16]},"
		 "\"fc1.bias\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[16,24]}}", 24,
		 SL_ERR_UNSUPPORTED, "I32; sectorlab reads F32, F16, BF16 and F64"},
		{"{\"fc1.weight\":{\"dtype\":\"Q7\",\"shape\":[2,2],\"data_offsets\":[0,16]},"
		 B_GOOD "}", 24, SL_ERR_FORMAT, "unknown dtype 'Q7'"},
		{"{\"fc1.weight\":{\"shape\":[2,2],\"data_offsets\":[0,16]}," B_GOOD "}", 24,
		 SL_ERR_FORMAT, "lacks its dtype"},
		{"{\"fc1.weight\":{\"dtype\":\"F32\",\"data_offsets\":[0,16]}," B_GOOD "}", 24,
		 SL_ERR_FORMAT, "lacks its shape"},
		{"{\"fc1.weight\":{\"dtype\":\"F32\",\"shape\":[2,2]}," B_GOOD "}", 24, SL_ERR_FORMAT,
		 "lacks its data_offsets"},
		{"{\"fc1.weight\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16],"
		 "\"foo\":1}," B_GOOD "}", 24, SL_ERR_FORMAT, "unknown field 'foo'"},
		{"{\"fc1.weight\":{\"dtype\":\"F32\",\"dtype\":\"F32\",\"shape\":[2,2],"
		 "\"data_offsets\":[0,16]}," B_GOOD "}", 24, SL_ERR_FORMAT, "field 'dtype' twice"},
		{"{" W_GOOD "," W_GOOD "," B_GOOD "}", 24, SL_ERR_FORMAT, "'fc1.weight' twice"},
		{"{\"__metadata__\":{\"a\":1}," W_GOOD "," B_GOOD "}", 24, SL_ERR_FORMAT,
		 "values must be strings"},
		{"{\"__metadata__\":{\"a\":\"b\",\"a\":\"c\"}," W_GOOD "," B_GOOD "}", 24, SL_ERR_FORMAT,
		 "'a' twice"},
		{"{\"__metadata__\":{}," W_GOOD ",\"__metadata__\":{}," B_GOOD "}", 24, SL_ERR_FORMAT,
		 "__metadata__ twice"},
		{"{\"fc1.weight\":{\"dtype\":\"F32\",\"shape\":[2,-2],\"data_offsets\":[0,16]},"
		 B_GOOD "}", 24, SL_ERR_FORMAT, "non-negative integer"},
		{"{\"fc1.weight\":{\"dtype\":\"F32\",\"shape\":[2,2.0],\"data_offsets\":[0,16]},"
		 B_GOOD "}", 24, SL_ERR_FORMAT, "expected an integer"},
		{"{\"fc1.weight\":{\"dtype\":\"F32\",\"shape\":[2,02],\"data_offsets\":[0,16]},"
		 B_GOOD "}", 24, SL_ERR_FORMAT, "leading zero"},
		{"{\"fc1.weight\":{\"dtype\":\"F32\",\"shape\":[2,2],"
		 "\"data_offsets\":[0,99999999999999999999]}," B_GOOD "}", 24, SL_ERR_FORMAT,
		 "too large"},
		{"{\"fc1.weight\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],"
		 "\"data_offsets\":[0,16]}," B_GOOD "}", 24, SL_ERR_FORMAT, "shape too large"},
		{"{\"fc1.weight\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,4],"
		 "\"data_offsets\":[0,16]}," B_GOOD "}", 24, SL_ERR_FORMAT, "array too long"},
		{"{\"fc1\\q\":{}}", 0, SL_ERR_FORMAT, "bad escape"},
		{"{\"fc1\\u0000\":{}}", 0, SL_ERR_FORMAT, "unsupported \\u escape"},
		{"{\"fc1\\u12\":{}}", 0, SL_ERR_FORMAT, "bad \\u escape"},
		{"{\"fc1\tx\":{}}", 0, SL_ERR_FORMAT, "control character"},
		{"{\"fc1", 0, SL_ERR_FORMAT, "unterminated string"},
		{"{\"fc1.weight\":{}}", 0, SL_ERR_FORMAT, "lacks its dtype"},
		{"{\"__metadata__\":{\"rho\":\"1\"},\"fc1.weight\":{\"dtype\":\"F32\",\"shape\":[2,2],"
		 "\"data_offsets\":[0,16]},\"fc1.bias\":{\"dtype\":\"F32\",\"shape\":[2],"
		 "\"data_offsets\":[16,24]},\"fc1.weight_orig\":{\"dtype\":\"F32\",\"shape\":[2,2],"
		 "\"data_offsets\":[24,40]}}", 40, SL_ERR_FORMAT,
		 "needs weight_orig, weight_u and weight_v together"},
		{"{\"__metadata__\":{\"rho\":\"x\"}," W_GOOD "," B_GOOD "}", 24, SL_ERR_FORMAT,
		 "is not 1 numbers"},
		{"{\"__metadata__\":{\"rho\":\"1,2\"}," W_GOOD "," B_GOOD "}", 24, SL_ERR_FORMAT,
		 "is not 1 numbers"},
		{"{\"__metadata__\":{\"layers\":\"fc1:dense:in=3\"}," W_GOOD "," B_GOOD "}", 24,
		 SL_ERR_FORMAT, "not this network's"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct sl_error err;
		status_clear(&err);
		sl_status st = read_header(dir, cases[i].header, cases[i].ndata, &err);
		if (st != cases[i].want || !strstr(err.msg, cases[i].says))
			fail_msg("case %zu: status %s (want %s), message '%s' (want '%s')", i,
				 status_str(st), status_str(cases[i].want), err.msg, cases[i].says);
	}
}

/* Broken framing and broken values. */
static void test_malformed_bytes(void **state)
{
	const char *dir = *state;
	struct sl_error err;
	assert_int_equal(read_bytes(dir, "abc", 3, &err), SL_ERR_FORMAT);
	assert_non_null(strstr(err.msg, "too short"));
	/* A header length beyond the file, and an absurd one. */
	unsigned char big[16] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, '{', '}'};
	assert_int_equal(read_bytes(dir, big, sizeof big, &err), SL_ERR_FORMAT);
	assert_non_null(strstr(err.msg, "does not fit"));
	unsigned char over[12] = {9, 0, 0, 0, 0, 0, 0, 0, '{', '}', ' ', ' '};
	assert_int_equal(read_bytes(dir, over, sizeof over, &err), SL_ERR_FORMAT);
	unsigned char nul[12] = {4, 0, 0, 0, 0, 0, 0, 0, '{', 0, '}', ' '};
	assert_int_equal(read_bytes(dir, nul, sizeof nul, &err), SL_ERR_FORMAT);
	assert_non_null(strstr(err.msg, "NUL"));
	/* A NaN weight. */
	const char *h = "{" W_GOOD "," B_GOOD "}";
	size_t hl = strlen(h);
	unsigned char buf[256];
	memset(buf, 0, sizeof buf);
	buf[0] = (unsigned char)hl;
	memcpy(buf + 8, h, hl);
	float vals[6] = {1, 2, NAN, 4, 5, 6};
	memcpy(buf + 8 + hl, vals, sizeof vals);
	assert_int_equal(read_bytes(dir, buf, 8 + hl + 24, &err), SL_ERR_FORMAT);
	assert_non_null(strstr(err.msg, "non-finite"));
	/* Truncated data. */
	assert_int_equal(read_bytes(dir, buf, 8 + hl + 20, &err), SL_ERR_FORMAT);
	/* A missing file. */
	struct nn_net *net;
	assert_int_equal(nn_new(tiny, 1, 1, &net, NULL), SL_OK);
	assert_int_equal(checkpoint_read("/nonexistent/x.safetensors", net, NULL, &err), SL_ERR_IO);
	nn_free(net);
	/* Without metadata, the file is a PyTorch state_dict: a 2x2 dense layer
	 * fits no built-in model, so checkpoint_load asks for --arch. */
	assert_int_equal(read_header(dir, "{" W_GOOD "," B_GOOD "}", 24, &err), SL_OK);
	char *path = tu_path(dir, "bad.safetensors");
	struct nn_net *loaded;
	assert_int_equal(checkpoint_load(path, 1, &loaded, NULL, &err), SL_ERR_ARG);
	assert_non_null(strstr(err.msg, "found fc1 dense [2, 2]"));
	assert_non_null(strstr(err.msg, "--arch '2-2'"));
	assert_null(loaded);
	/* A model it does not know is refused. */
	assert_int_equal(read_header(dir, "{\"__metadata__\":{\"model\":\"resnet\"}," W_GOOD
					  "," B_GOOD "}",
				     24, &err),
			 SL_OK);
	assert_int_equal(checkpoint_load(path, 1, &loaded, NULL, &err), SL_ERR_FORMAT);
	assert_non_null(strstr(err.msg, "unknown model 'resnet'"));
	free(path);
}

/* A capped layer whose stored weight in use contradicts weight_orig under its
 * cap is refused. */
static void test_inconsistent_cap(void **state)
{
	struct nn_net *net;
	assert_int_equal(nn_new(tiny, 1, 1, &net, NULL), SL_OK);
	random_params(net, 4);
	nn_set_cap(net, 0, 0.2f);
	nn_update_caps(net, 30);
	char *path = tu_path(*state, "capped.safetensors");
	struct checkpoint_meta meta[] = {{"rho", "0.2"}};
	assert_int_equal(checkpoint_save(net, meta, 1, path, NULL), SL_OK);
	size_t n;
	char *buf = tu_read_file(path, &n);
	uint64_t hlen;
	memcpy(&hlen, buf, 8);
	float *w = (float *)(void *)(buf + 8 + hlen); /* fc1.weight comes first */
	w[1] += 0.1f;
	struct sl_error err;
	assert_int_equal(read_bytes(*state, buf, n, &err), SL_ERR_FORMAT);
	assert_non_null(strstr(err.msg, "differs from weight_orig"));
	/* Without a cap in the metadata, weight_orig is a contradiction too. */
	struct checkpoint_meta none[] = {{"rho", ""}};
	assert_int_equal(checkpoint_save(net, none, 1, path, NULL), SL_OK);
	struct nn_net *other;
	assert_int_equal(nn_new(tiny, 1, 1, &other, NULL), SL_OK);
	assert_int_equal(checkpoint_read(path, other, NULL, &err), SL_ERR_FORMAT);
	assert_non_null(strstr(err.msg, "gives no cap"));
	nn_free(other);
	free(buf);
	free(path);
	nn_free(net);
}

/* Random damage to a valid file never crashes the reader: every outcome is a
 * status (run under the sanitizers by `make sanitize`). */
static void test_fuzz(void **state)
{
	struct nn_net *net;
	assert_int_equal(nn_build(conv_in, conv_specs, 6, 1, &net, NULL), SL_OK);
	random_params(net, 5);
	nn_set_cap(net, 2, 0.5f);
	nn_update_caps(net, 10);
	char *path = tu_path(*state, "fuzz.safetensors");
	struct checkpoint_meta meta[] = {{"rho", "0,0.5,0,0"}};
	assert_int_equal(checkpoint_save(net, meta, 1, path, NULL), SL_OK);
	size_t n;
	unsigned char *orig = (unsigned char *)tu_read_file(path, &n);
	unsigned char *buf = malloc(n);
	struct sl_rng rng;
	rng_seed(&rng, 77);
	int ok = 0, failed = 0;
	for (int trial = 0; trial < 400; trial++) {
		memcpy(buf, orig, n);
		size_t len = n;
		int kind = (int)rng_below(&rng, 3);
		if (kind == 0) {
			len = rng_below(&rng, (uint32_t)n);
		} else {
			int flips = 1 + (int)rng_below(&rng, 4);
			for (int k = 0; k < flips; k++) {
				/* Mostly in the header, where the structure is. */
				size_t at = kind == 1 ? rng_below(&rng, 400) : rng_below(&rng, (uint32_t)n);
				buf[at % n] = (unsigned char)rng_below(&rng, 256);
			}
		}
		assert_int_equal(tu_write_file(path, buf, len), 0);
		struct sl_error err;
		status_clear(&err);
		struct checkpoint_info info;
		sl_status st = checkpoint_read(path, net, &info, &err);
		if (st == SL_OK) {
			ok++;
			checkpoint_info_free(&info);
		} else {
			failed++;
			assert_true(err.msg[0] != '\0');
		}
	}
	print_message("fuzz: %d damaged files read, %d refused\n", ok, failed);
	free(orig);
	free(buf);
	free(path);
	nn_free(net);
}

/* ---- PyTorch round trip ---- */

static bool have_torch(void)
{
	return access("/usr/bin/python3", X_OK) == 0 &&
	       access("tests/torch_roundtrip.py", R_OK) == 0 &&
	       system("/usr/bin/python3 -c 'import torch' >/dev/null 2>&1") == 0;
}

/* Save net, its logits on n images of ds and the images; let PyTorch load the
 * checkpoint strictly and compare. */
static void torch_compare(const char *dir, struct nn_net *net, const struct sl_dataset *ds,
			  int n, const char *model)
{
	char *ckpt = tu_path(dir, "torch.safetensors");
	char *images = tu_path(dir, "images.f32"), *logits = tu_path(dir, "logits.f32");
	struct checkpoint_meta meta[8];
	char rho[256] = "";
	int idx[NN_MAX_LAYERS], nw = nn_weighted_layers(net, idx);
	for (int j = 0, off = 0; j < nw; j++)
		off += snprintf(rho + off, sizeof rho - (size_t)off, "%s%.9g", j ? "," : "",
				(double)net->layers[idx[j]].rho);
	meta[0] = (struct checkpoint_meta){"model", model};
	meta[1] = (struct checkpoint_meta){"rho", rho};
	assert_int_equal(checkpoint_save(net, meta, 2, ckpt, NULL), SL_OK);
	size_t dim = data_dim(ds);
	float *x = malloc(sizeof(float) * dim * (size_t)n);
	float *z = malloc(sizeof(float) * (size_t)net->out_dim * (size_t)n);
	int *y = malloc(sizeof(int) * (size_t)n);
	data_batch(ds, NULL, (size_t)n, x, y);
	for (int start = 0; start < n; start += net->max_batch) {
		int b = n - start < net->max_batch ? n - start : net->max_batch;
		memcpy(z + (size_t)start * net->out_dim, nn_forward(net, x + (size_t)start * dim, b),
		       sizeof(float) * (size_t)b * net->out_dim);
	}
	assert_int_equal(tu_write_file(images, x, sizeof(float) * dim * (size_t)n), 0);
	assert_int_equal(tu_write_file(logits, z, sizeof(float) * (size_t)net->out_dim * (size_t)n),
			 0);
	char cmd[4096];
	snprintf(cmd, sizeof cmd, "/usr/bin/python3 tests/torch_roundtrip.py %s %s %s %d 2>&1",
		 ckpt, images, logits, n);
	FILE *p = popen(cmd, "r");
	assert_non_null(p);
	char out[4096];
	size_t got = fread(out, 1, sizeof out - 1, p);
	out[got] = '\0';
	int rc = pclose(p);
	print_message("%s", out);
	if (rc != 0)
		fail_msg("torch round trip failed (status %d)", rc);
	free(x);
	free(z);
	free(y);
	free(ckpt);
	free(images);
	free(logits);
}

static void test_torch_round_trip(void **state)
{
	if (!have_torch()) {
		print_message("python3-torch is not installed (/usr/bin/python3 cannot import "
			      "torch): skipping the PyTorch round trip\n");
		skip();
	}
	/* The MNIST network, capped, on the embedded sample's real digits. */
	struct sl_dataset mnist;
	assert_int_equal(data_load(DATA_MNIST, tu_sample_data(), false, &mnist, NULL), SL_OK);
	struct nn_net *net;
	assert_int_equal(model_build(MODEL_MLP, 64, &net, NULL), SL_OK);
	random_params(net, 6);
	nn_set_cap(net, 0, 1.0f);
	nn_set_cap(net, 2, 0.5f);
	nn_update_caps(net, 50);
	torch_compare(*state, net, &mnist, 256, "mlp");
	nn_free(net);
	data_free(&mnist);
	/* The AlexNet shape on real CIFAR-10 images, when the full data is here. */
	if (!tu_shared_data()) {
		print_message("full data not found: alexnet-lite round trip not run\n");
		return;
	}
	struct sl_dataset cifar;
	assert_int_equal(data_load(DATA_CIFAR10, tu_shared_data(), false, &cifar, NULL), SL_OK);
	assert_int_equal(model_build(MODEL_ALEXNET_LITE, 64, &net, NULL), SL_OK);
	random_params(net, 7);
	nn_set_cap(net, 0, 0.8f); /* conv1 */
	nn_set_cap(net, 2, 0.8f); /* conv2 */
	nn_set_cap(net, 5, 0.7f); /* fc1 */
	nn_update_caps(net, 50);
	torch_compare(*state, net, &cifar, 128, "alexnet-lite");
	nn_free(net);
	data_free(&cifar);
}

/* Issue 10, item 1: a checkpoint the program wrote must load.  Each
 * epoch's network of spnorm runs is saved (with the caps metadata train
 * writes), loaded back with the same scales, and certified at the caps'
 * indices: the loader recomputes the scale from the saved W, u and v, and
 * that is the scale the run used. */
struct every_epoch {
	const char *path;
	int checked;
};

static sl_status save_load_certify(void *ctx, struct trainer *t, const struct epoch_report *r,
				   struct sl_error *err)
{
	struct every_epoch *e = ctx;
	struct caps_meta cm;
	caps_meta(&t->caps, &cm);
	struct checkpoint_meta meta[3 + CAPS_META_N] = {
		{"format", "sectorlab-1"},
		{"model", t->cfg.arch.name},
		{"mode", "spnorm"},
	};
	for (int i = 0; i < CAPS_META_N; i++)
		meta[3 + i] = (struct checkpoint_meta){CAPS_META_KEYS[i], cm.value[i]};
	sl_status st = checkpoint_save(t->net, meta, 3 + CAPS_META_N, e->path, err);
	if (st != SL_OK)
		return st;
	struct nn_net *net;
	struct checkpoint_info info;
	if ((st = checkpoint_load(e->path, 16, &net, &info, err)) != SL_OK) {
		print_message("epoch %d: %s\n", r->epoch, err->msg);
		return st;
	}
	for (int j = 0; j < t->nweighted; j++) {
		const struct nn_layer *a = &t->net->layers[t->weighted[j]];
		const struct nn_layer *b = &net->layers[t->weighted[j]];
		assert_true(b->rho == a->rho);
		assert_true(fabsf(b->scale - a->scale) <= 1e-6f * a->scale);
	}
	struct caps_spec spec;
	assert_int_equal(caps_spec_from_info(&info, &spec, NULL), SL_OK);
	struct certify_options co = caps_certify_options(&spec);
	struct certificate c;
	assert_int_equal(certify_network(net, &co, &c, NULL), SL_OK);
	if (!c.sector_certified)
		fail_msg("epoch %d of %s (seed %lu, batch %d): %s", r->epoch,
			 t->cfg.arch.name, (unsigned long)t->cfg.seed, t->cfg.batch,
			 c.reason);
	nn_free(net);
	checkpoint_info_free(&info);
	e->checked++;
	print_message("%s seed %lu batch %d epoch %d: loads, certified (settled in %d steps)\n",
		      t->cfg.arch.name, (unsigned long)t->cfg.seed, t->cfg.batch, r->epoch,
		      r->settle_steps);
	return SL_OK;
}

static void run_every_epoch(const char *dir, struct train_config *cfg,
			    const struct sl_dataset *train, const struct sl_dataset *test)
{
	char *path = tu_path(dir, "epoch.safetensors");
	struct every_epoch e = {.path = path};
	struct trainer *t;
	assert_int_equal(trainer_new(cfg, train, test, &t, NULL), SL_OK);
	struct driver d;
	const struct driver_config dc = {.test = test, .test_n = 16,
					 .on_epoch = save_load_certify, .ctx = &e};
	driver_init(&d, t, &dc);
	struct driver_step_info info;
	struct sl_error err;
	while (!driver_finished(&d))
		if (driver_step(&d, &info, &err) != SL_OK)
			fail_msg("%s", err.msg);
	assert_int_equal(e.checked, cfg->epochs);
	trainer_free(t);
	free(path);
}

static void test_every_epoch_loads_and_certifies(void **state)
{
	const char *dir = *state;
	struct sl_dataset train = {0}, test = {0};
	assert_int_equal(data_load(DATA_MNIST, tu_sample_data(), true, &train, NULL), SL_OK);
	assert_int_equal(data_load(DATA_MNIST, tu_sample_data(), false, &test, NULL), SL_OK);
	const int batches[] = {32, 128};
	for (int seed = 1; seed <= 2; seed++)
		for (int k = 0; k < 2; k++) {
			struct train_config cfg = train_config_default();
			cfg.mode = TRAIN_SPNORM;
			cfg.holdout = 0;
			cfg.epochs = 5;
			cfg.seed = (uint64_t)seed;
			cfg.batch = batches[k];
			cfg.caps = caps_spec_certified(-2 - seed % 2, 0.4, (enum sector_objective)k);
			run_every_epoch(dir, &cfg, &train, &test);
		}
	data_free(&train);
	data_free(&test);

	/* The CIFAR model, on a small synthetic set to stay fast. */
	tu_synthetic_cifar(&train, 64, 1);
	tu_synthetic_cifar(&test, 16, 2);
	for (int seed = 1; seed <= 1; seed++) {
		struct arch lite;
		model_get(MODEL_ALEXNET_LITE, &lite);
		struct train_config cfg = train_config_for(&lite);
		cfg.mode = TRAIN_SPNORM;
		cfg.holdout = 0;
		cfg.epochs = 2;
		cfg.seed = (uint64_t)seed;
		cfg.batch = 16;
		run_every_epoch(dir, &cfg, &train, &test);
	}
	data_free(&train);
	data_free(&test);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_layout, tu_setup_tmpdir, tu_teardown_tmpdir),
		cmocka_unit_test_setup_teardown(test_round_trip, tu_setup_tmpdir, tu_teardown_tmpdir),
		cmocka_unit_test_setup_teardown(test_load_model, tu_setup_tmpdir, tu_teardown_tmpdir),
		cmocka_unit_test_setup_teardown(test_malformed, tu_setup_tmpdir, tu_teardown_tmpdir),
		cmocka_unit_test_setup_teardown(test_malformed_bytes, tu_setup_tmpdir, tu_teardown_tmpdir),
		cmocka_unit_test_setup_teardown(test_inconsistent_cap, tu_setup_tmpdir, tu_teardown_tmpdir),
		cmocka_unit_test_setup_teardown(test_fuzz, tu_setup_tmpdir, tu_teardown_tmpdir),
		cmocka_unit_test_setup_teardown(test_torch_round_trip, tu_setup_tmpdir, tu_teardown_tmpdir),
		cmocka_unit_test_setup_teardown(test_every_epoch_loads_and_certifies, tu_setup_tmpdir,
						tu_teardown_tmpdir),
	};
	return cmocka_run_group_tests_name("checkpoint", tests, NULL, NULL);
}
