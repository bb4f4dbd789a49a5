/* checkpoint: safetensors writer and validating reader for networks (see checkpoint.h). */
#include "sectorlab/checkpoint.h"
#include "sectorlab/json.h"

#include <cblas.h>
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "sectorlab/arch.h"
#include "sectorlab/io.h"
#include "sectorlab/model.h"
#include "sectorlab/spectral.h"

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "safetensors stores little-endian values; this code assumes a little-endian host"
#endif

#define CKPT_MAX_TENSORS 256       /* far more than any network here has */
#define CKPT_MAX_META 256
#define CKPT_MAX_HEADER (100u << 20) /* as the reference implementation */
#define CKPT_MAX_RANK 8
#define CKPT_NAME 128
#define CKPT_MAX_STRING 4096

/* ---- Writing ---- */

struct tensor_ref {
	char name[CKPT_NAME];
	const void *data;
	const char *dtype; /* "F32" unless an array says otherwise */
	unsigned size;     /* bytes a value */
	float scale;       /* F32: written as data * scale */
	int rank;
	size_t shape[4];
};

static size_t ref_count(const struct tensor_ref *t)
{
	size_t n = 1;
	for (int k = 0; k < t->rank; k++)
		n *= t->shape[k];
	return n;
}

static void ref_set(struct tensor_ref *t, const struct nn_layer *l, const char *suffix,
		    const float *data, float scale, int rank, int d0, int d1, int d2, int d3)
{
	snprintf(t->name, sizeof t->name, "%s.%s", l->name, suffix);
	t->data = data;
	t->dtype = "F32";
	t->size = sizeof(float);
	t->scale = scale;
	t->rank = rank;
	t->shape[0] = d0, t->shape[1] = d1, t->shape[2] = d2, t->shape[3] = d3;
}

/* The tensors of one weighted layer in file order; returns how many. */
static int layer_refs(const struct nn_layer *l, struct tensor_ref *t)
{
	const struct conv_geom *g = &l->geom;
	int n = 0;
	if (l->kind == NN_CONV)
		ref_set(&t[n++], l, "weight", l->w, l->scale, 4, g->cout, g->cin, g->k, g->k);
	else
		ref_set(&t[n++], l, "weight", l->w, l->scale, 2, l->wrows, l->wcols, 0, 0);
	ref_set(&t[n++], l, "bias", l->b, 1, 1, l->wrows, 0, 0, 0);
	if (!(l->rho > 0))
		return n;
	if (l->kind == NN_CONV) {
		ref_set(&t[n++], l, "weight_orig", l->w, 1, 4, g->cout, g->cin, g->k, g->k);
		ref_set(&t[n++], l, "weight_u", l->u, 1, 3, g->cout, g->ho, g->wo, 0);
		ref_set(&t[n++], l, "weight_v", l->v, 1, 3, g->cin, g->h, g->w, 0);
	} else {
		ref_set(&t[n++], l, "weight_orig", l->w, 1, 2, l->wrows, l->wcols, 0, 0);
		ref_set(&t[n++], l, "weight_u", l->u, 1, 1, l->usize, 0, 0, 0);
		ref_set(&t[n++], l, "weight_v", l->v, 1, 1, l->vsize, 0, 0, 0);
	}
	return n;
}

/* Write count floats of data * scale. */
static int write_scaled(FILE *f, const float *data, size_t count, float scale)
{
	if (scale == 1.0f)
		return fwrite(data, sizeof(float), count, f) == count;
	float buf[1024];
	for (size_t i = 0; i < count; i += 1024) {
		size_t m = count - i < 1024 ? count - i : 1024;
		for (size_t k = 0; k < m; k++)
			buf[k] = data[i + k] * scale;
		if (fwrite(buf, sizeof(float), m, f) != m)
			return 0;
	}
	return 1;
}

/* The layer table as text, so any reader (tests/torch_roundtrip.py, say) can
 * build the same network: "conv1:conv:in=3,out=32,k=5,stride=1,pad=2,
 * act=leaky,slope=0.1;pool1:maxpool:k=3,stride=2,pad=0;flatten1:flatten:;..." */
static void describe_layers(FILE *f, const struct nn_net *net)
{
	char num[32];
	for (int i = 0; i < net->nlayers; i++) {
		const struct nn_layer *l = &net->layers[i];
		const struct conv_geom *g = &l->geom;
		fprintf(f, "%s%s:", i ? ";" : "", l->name);
		switch (l->kind) {
		case NN_CONV:
			fprintf(f, "conv:in=%d,out=%d,k=%d,stride=%d,pad=%d,", g->cin, g->cout, g->k,
				g->stride, g->pad);
			break;
		case NN_DENSE:
			fprintf(f, "dense:in=%d,out=%d,", l->in, l->out);
			break;
		case NN_MAXPOOL:
			fprintf(f, "maxpool:k=%d,stride=%d,pad=%d", g->k, g->stride, g->pad);
			continue;
		case NN_FLATTEN:
			fprintf(f, "flatten:");
			continue;
		}
		if (l->act == NN_ACT_LEAKY_RELU)
			fprintf(f, "act=leaky,slope=%s", arch_float_text(l->slope, num));
		else if (l->act == NN_ACT_TANH)
			fprintf(f, "act=tanh");
		else
			fprintf(f, "act=identity");
	}
}

/* Write the tensors t[0 .. nt) in order, with the metadata meta and then
 * more (the network's own description), as one safetensors file. */
static sl_status save_refs(const char *path, const struct checkpoint_meta *meta, int nmeta,
			   const struct checkpoint_meta *more, int nmore,
			   const struct tensor_ref *t, int nt, struct sl_error *err)
{
	/* Build the JSON header in memory first: its length precedes it. */
	char *hdr = NULL;
	size_t hlen = 0;
	FILE *h = open_memstream(&hdr, &hlen);
	if (!h)
		return status_set(err, SL_ERR_NOMEM, "%s: header", path);
	fputs("{\"__metadata__\":{", h);
	for (int i = 0; i < nmeta + nmore; i++) {
		const struct checkpoint_meta *m = i < nmeta ? &meta[i] : &more[i - nmeta];
		if (i)
			fputc(',', h);
		json_string(h, m->key);
		fputc(':', h);
		json_string(h, m->value);
	}
	fputc('}', h);
	size_t offset = 0;
	for (int i = 0; i < nt; i++) {
		size_t bytes = ref_count(&t[i]) * t[i].size;
		fputc(',', h);
		json_string(h, t[i].name);
		fprintf(h, ":{\"dtype\":\"%s\",\"shape\":[", t[i].dtype);
		for (int k = 0; k < t[i].rank; k++)
			fprintf(h, k ? ",%zu" : "%zu", t[i].shape[k]);
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
	for (int i = 0; ok && i < nt; i++)
		ok = t[i].size == sizeof(float) && strcmp(t[i].dtype, "F32") == 0
			     ? write_scaled(a.f, t[i].data, ref_count(&t[i]), t[i].scale)
			     : fwrite(t[i].data, t[i].size, ref_count(&t[i]), a.f) ==
				       ref_count(&t[i]);
	free(hdr);
	if (!ok)
		return io_atomic_fail(&a, err);
	return io_atomic_commit(&a, err);
}

sl_status checkpoint_save(const struct nn_net *net, const struct checkpoint_meta *meta,
			  int nmeta, const char *path, struct sl_error *err)
{
	for (int i = 0; i < nmeta; i++)
		if (strcmp(meta[i].key, "input") == 0 || strcmp(meta[i].key, "layers") == 0 ||
		    strcmp(meta[i].key, "arch") == 0)
			return status_set(err, SL_ERR_ARG,
					  "%s: metadata key '%s' is reserved for the network's shape",
					  path, meta[i].key);
	struct tensor_ref t[5 * NN_MAX_LAYERS];
	int nt = 0;
	for (int i = 0; i < net->nlayers; i++)
		if (nn_layer_weighted(&net->layers[i]))
			nt += layer_refs(&net->layers[i], t + nt);

	/* The network's own description: its input shape and layer table, and
	 * the same as a layer spec (arch.h), which any command reads. */
	char *text = NULL;
	size_t tlen = 0;
	FILE *d = open_memstream(&text, &tlen);
	if (!d)
		return status_set(err, SL_ERR_NOMEM, "%s: header", path);
	fprintf(d, "%d,%d,%d", net->in_shape.c, net->in_shape.h, net->in_shape.w);
	fputc('\0', d);
	describe_layers(d, net);
	if (fclose(d) != 0) {
		free(text);
		return status_set(err, SL_ERR_NOMEM, "%s: header", path);
	}
	struct arch described;
	char spec[ARCH_TEXT];
	arch_of_net(net, &described);
	const struct checkpoint_meta shape[] = {
		{"input", text},
		{"layers", text + strlen(text) + 1},
		{"arch", arch_format(&described, spec, sizeof spec)},
	};
	sl_status st = save_refs(path, meta, nmeta, shape, 3, t, nt, err);
	free(text);
	return st;
}

static const struct {
	enum checkpoint_dtype dtype;
	const char *name;
	unsigned size;
} array_dtypes[] = {
	{CKPT_F32, "F32", 4}, {CKPT_F64, "F64", 8}, {CKPT_U32, "U32", 4}, {CKPT_U64, "U64", 8},
};

sl_status checkpoint_save_arrays(const struct checkpoint_meta *meta, int nmeta,
				 const struct checkpoint_array *arrays, int n, const char *path,
				 struct sl_error *err)
{
	if (n > CKPT_MAX_TENSORS)
		return status_set(err, SL_ERR_ARG, "%s: %d arrays (at most %d)", path, n,
				  CKPT_MAX_TENSORS);
	struct tensor_ref *t = calloc((size_t)(n ? n : 1), sizeof *t);
	if (!t)
		return status_set(err, SL_ERR_NOMEM, "%s: header", path);
	for (int i = 0; i < n; i++) {
		snprintf(t[i].name, sizeof t[i].name, "%s", arrays[i].name);
		t[i].data = arrays[i].data;
		t[i].dtype = array_dtypes[arrays[i].dtype].name;
		t[i].size = array_dtypes[arrays[i].dtype].size;
		t[i].scale = 1;
		t[i].rank = 1;
		t[i].shape[0] = arrays[i].count;
	}
	sl_status st = save_refs(path, meta, nmeta, NULL, 0, t, n, err);
	free(t);
	return st;
}

/* ---- Reading: the header ---- */

struct hdr_tensor {
	char name[CKPT_NAME];
	char dtype[16];
	int rank;
	uint64_t shape[CKPT_MAX_RANK];
	uint64_t begin, end;     /* byte range within the data area */
	unsigned seen;           /* bit 0 dtype, 1 shape, 2 data_offsets */
	bool used;
};

struct ckpt_file {
	const char *path;
	FILE *f;
	uint64_t data_start, data_size;
	int ntensors;
	struct hdr_tensor *t;    /* (CKPT_MAX_TENSORS) */
	struct checkpoint_info meta;
};

/* A cursor over the header text, with the file name for messages. */
struct jp {
	const char *s;
	size_t n, pos;
	const char *path;
	struct sl_error *err;
};

static sl_status jp_fail(struct jp *p, const char *what)
{
	return status_set(p->err, SL_ERR_FORMAT, "%s: safetensors header: %s at byte %zu",
			  p->path, what, p->pos);
}

static void jp_ws(struct jp *p)
{
	while (p->pos < p->n && (p->s[p->pos] == ' ' || p->s[p->pos] == '\t' ||
				 p->s[p->pos] == '\n' || p->s[p->pos] == '\r'))
		p->pos++;
}

/* Skip white space, then consume c if it is next. */
static bool jp_eat(struct jp *p, char c)
{
	jp_ws(p);
	if (p->pos < p->n && p->s[p->pos] == c) {
		p->pos++;
		return true;
	}
	return false;
}

static sl_status jp_expect(struct jp *p, char c)
{
	if (jp_eat(p, c))
		return SL_OK;
	char what[32];
	snprintf(what, sizeof what, "expected '%c'", c);
	return jp_fail(p, what);
}

static int hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* A JSON string into out (cap bytes with the terminator), escapes decoded
 * (\u as UTF-8; surrogates and NUL are refused). */
static sl_status jp_string(struct jp *p, char *out, size_t cap)
{
	if (!jp_eat(p, '"'))
		return jp_fail(p, "expected a string");
	size_t k = 0;
	for (;;) {
		if (p->pos >= p->n)
			return jp_fail(p, "unterminated string");
		unsigned char c = (unsigned char)p->s[p->pos++];
		if (c == '"')
			break;
		if (c < 0x20)
			return jp_fail(p, "control character in a string");
		unsigned code = c;
		int extra = 0;
		if (c == '\\') {
			if (p->pos >= p->n)
				return jp_fail(p, "unterminated string");
			char e = p->s[p->pos++];
			switch (e) {
			case '"': case '\\': case '/': code = (unsigned char)e; break;
			case 'b': code = '\b'; break;
			case 'f': code = '\f'; break;
			case 'n': code = '\n'; break;
			case 'r': code = '\r'; break;
			case 't': code = '\t'; break;
			case 'u':
				code = 0;
				for (int d = 0; d < 4; d++) {
					int v = p->pos < p->n ? hex_digit(p->s[p->pos]) : -1;
					if (v < 0)
						return jp_fail(p, "bad \\u escape");
					code = code * 16 + (unsigned)v;
					p->pos++;
				}
				if (code == 0 || (code >= 0xd800 && code <= 0xdfff))
					return jp_fail(p, "unsupported \\u escape");
				extra = code >= 0x800 ? 2 : code >= 0x80 ? 1 : 0;
				break;
			default:
				return jp_fail(p, "bad escape");
			}
		}
		if (k + 1 + (size_t)extra + 1 > cap)
			return jp_fail(p, "string too long");
		if (extra == 0) {
			out[k++] = (char)code;
		} else if (extra == 1) {
			out[k++] = (char)(0xc0 | (code >> 6));
			out[k++] = (char)(0x80 | (code & 0x3f));
		} else {
			out[k++] = (char)(0xe0 | (code >> 12));
			out[k++] = (char)(0x80 | ((code >> 6) & 0x3f));
			out[k++] = (char)(0x80 | (code & 0x3f));
		}
	}
	out[k] = '\0';
	return SL_OK;
}

/* A non-negative integer below 2^53 (no sign, fraction or exponent). */
static sl_status jp_uint(struct jp *p, uint64_t *out)
{
	jp_ws(p);
	size_t start = p->pos;
	uint64_t v = 0;
	while (p->pos < p->n && p->s[p->pos] >= '0' && p->s[p->pos] <= '9') {
		v = v * 10 + (uint64_t)(p->s[p->pos] - '0');
		if (v >= (1ull << 53))
			return jp_fail(p, "integer too large");
		p->pos++;
	}
	if (p->pos == start)
		return jp_fail(p, "expected a non-negative integer");
	if (p->pos - start > 1 && p->s[start] == '0')
		return jp_fail(p, "integer with a leading zero");
	if (p->pos < p->n && (p->s[p->pos] == '.' || p->s[p->pos] == 'e' || p->s[p->pos] == 'E'))
		return jp_fail(p, "expected an integer");
	*out = v;
	return SL_OK;
}

/* [a, b, ...] of at most max integers; count in *n. */
static sl_status jp_uint_array(struct jp *p, uint64_t *v, int max, int *n)
{
	sl_status st = jp_expect(p, '[');
	*n = 0;
	if (st != SL_OK || jp_eat(p, ']'))
		return st;
	do {
		if (*n == max)
			return jp_fail(p, "array too long");
		st = jp_uint(p, &v[(*n)++]);
		if (st != SL_OK)
			return st;
	} while (jp_eat(p, ','));
	return jp_expect(p, ']');
}

static char *dup_string(const char *s)
{
	size_t n = strlen(s) + 1;
	char *d = malloc(n);
	if (d)
		memcpy(d, s, n);
	return d;
}

static sl_status parse_metadata(struct jp *p, struct checkpoint_info *meta)
{
	sl_status st = jp_expect(p, '{');
	if (st != SL_OK || jp_eat(p, '}'))
		return st;
	meta->keys = calloc(CKPT_MAX_META, sizeof(char *));
	meta->values = calloc(CKPT_MAX_META, sizeof(char *));
	char *key = malloc(CKPT_MAX_STRING), *value = malloc(CKPT_MAX_STRING);
	if (!meta->keys || !meta->values || !key || !value) {
		st = status_set(p->err, SL_ERR_NOMEM, "%s: metadata", p->path);
		goto out;
	}
	do {
		if (meta->nmeta == CKPT_MAX_META) {
			st = jp_fail(p, "more than 256 metadata entries");
			goto out;
		}
		if ((st = jp_string(p, key, CKPT_MAX_STRING)) != SL_OK ||
		    (st = jp_expect(p, ':')) != SL_OK)
			goto out;
		jp_ws(p);
		if (p->pos < p->n && p->s[p->pos] != '"') {
			st = jp_fail(p, "__metadata__ values must be strings");
			goto out;
		}
		if ((st = jp_string(p, value, CKPT_MAX_STRING)) != SL_OK)
			goto out;
		if (checkpoint_info_get(meta, key)) {
			st = status_set(p->err, SL_ERR_FORMAT,
					"%s: safetensors header: metadata key '%s' twice", p->path,
					key);
			goto out;
		}
		int i = meta->nmeta;
		meta->keys[i] = dup_string(key);
		meta->values[i] = dup_string(value);
		meta->nmeta++;
		if (!meta->keys[i] || !meta->values[i]) {
			st = status_set(p->err, SL_ERR_NOMEM, "%s: metadata", p->path);
			goto out;
		}
	} while (jp_eat(p, ','));
	st = jp_expect(p, '}');
out:
	free(key);
	free(value);
	return st;
}

static sl_status parse_tensor(struct jp *p, struct hdr_tensor *t)
{
	sl_status st = jp_expect(p, '{');
	if (st != SL_OK)
		return st;
	char key[32];
	if (!jp_eat(p, '}')) {
		do {
			if ((st = jp_string(p, key, sizeof key)) != SL_OK ||
			    (st = jp_expect(p, ':')) != SL_OK)
				return st;
			unsigned bit;
			if (strcmp(key, "dtype") == 0) {
				bit = 1;
				st = jp_string(p, t->dtype, sizeof t->dtype);
			} else if (strcmp(key, "shape") == 0) {
				bit = 2;
				st = jp_uint_array(p, t->shape, CKPT_MAX_RANK, &t->rank);
			} else if (strcmp(key, "data_offsets") == 0) {
				bit = 4;
				uint64_t off[2];
				int n = 0;
				st = jp_uint_array(p, off, 2, &n);
				if (st == SL_OK && n != 2)
					return jp_fail(p, "data_offsets needs two numbers");
				t->begin = off[0], t->end = off[1];
			} else {
				return status_set(p->err, SL_ERR_FORMAT,
						  "%s: tensor '%s': unknown field '%s'", p->path,
						  t->name, key);
			}
			if (st != SL_OK)
				return st;
			if (t->seen & bit)
				return status_set(p->err, SL_ERR_FORMAT,
						  "%s: tensor '%s': field '%s' twice", p->path,
						  t->name, key);
			t->seen |= bit;
		} while (jp_eat(p, ','));
		if ((st = jp_expect(p, '}')) != SL_OK)
			return st;
	}
	if (t->seen != 7)
		return status_set(p->err, SL_ERR_FORMAT,
				  "%s: tensor '%s' lacks %s", p->path, t->name,
				  !(t->seen & 1) ? "its dtype" : !(t->seen & 2) ? "its shape"
								: "its data_offsets");
	return SL_OK;
}

static sl_status parse_header(struct ckpt_file *cf, const char *text, size_t n,
			      struct sl_error *err)
{
	struct jp p = {.s = text, .n = n, .path = cf->path, .err = err};
	char name[CKPT_NAME];
	sl_status st = jp_expect(&p, '{');
	if (st != SL_OK)
		return st;
	bool have_meta = false;
	if (!jp_eat(&p, '}')) {
		do {
			if ((st = jp_string(&p, name, sizeof name)) != SL_OK ||
			    (st = jp_expect(&p, ':')) != SL_OK)
				return st;
			if (strcmp(name, "__metadata__") == 0) {
				if (have_meta)
					return jp_fail(&p, "__metadata__ twice");
				have_meta = true;
				st = parse_metadata(&p, &cf->meta);
			} else {
				for (int i = 0; i < cf->ntensors; i++)
					if (strcmp(cf->t[i].name, name) == 0)
						return status_set(err, SL_ERR_FORMAT,
								  "%s: tensor '%s' twice",
								  cf->path, name);
				if (cf->ntensors == CKPT_MAX_TENSORS)
					return jp_fail(&p, "more than 256 tensors");
				struct hdr_tensor *t = &cf->t[cf->ntensors++];
				memcpy(t->name, name, sizeof t->name);
				st = parse_tensor(&p, t);
			}
			if (st != SL_OK)
				return st;
		} while (jp_eat(&p, ','));
		if ((st = jp_expect(&p, '}')) != SL_OK)
			return st;
	}
	jp_ws(&p);
	if (p.pos != p.n)
		return jp_fail(&p, "text after the header object");
	return SL_OK;
}

static int cmp_begin(const void *a, const void *b)
{
	const struct hdr_tensor *x = *(const struct hdr_tensor *const *)a;
	const struct hdr_tensor *y = *(const struct hdr_tensor *const *)b;
	return x->begin < y->begin ? -1 : x->begin > y->begin;
}

/* Every tensor's bytes fit its dtype and shape, lie in the data area, and
 * together they tile it exactly. */
static sl_status check_layout(struct ckpt_file *cf, struct sl_error *err)
{
	static const struct {
		const char *name;
		unsigned size;
	} dtypes[] = {
		{"F32", 4}, {"F64", 8}, {"F16", 2}, {"BF16", 2}, {"I64", 8}, {"I32", 4},
		{"I16", 2}, {"I8", 1}, {"U64", 8}, {"U32", 4}, {"U16", 2}, {"U8", 1}, {"BOOL", 1},
	};
	const struct hdr_tensor *order[CKPT_MAX_TENSORS];
	for (int i = 0; i < cf->ntensors; i++) {
		struct hdr_tensor *t = &cf->t[i];
		unsigned size = 0;
		for (size_t d = 0; d < sizeof dtypes / sizeof dtypes[0]; d++)
			if (strcmp(t->dtype, dtypes[d].name) == 0)
				size = dtypes[d].size;
		if (!size)
			return status_set(err, SL_ERR_FORMAT, "%s: tensor '%s': unknown dtype '%s'",
					  cf->path, t->name, t->dtype);
		uint64_t count = 1;
		for (int k = 0; k < t->rank; k++) {
			if (t->shape[k] > (1ull << 31) ||
			    (t->shape[k] && count > (1ull << 40) / t->shape[k]))
				return status_set(err, SL_ERR_FORMAT,
						  "%s: tensor '%s': shape too large", cf->path,
						  t->name);
			count *= t->shape[k];
		}
		if (t->begin > t->end || t->end > cf->data_size)
			return status_set(err, SL_ERR_FORMAT,
					  "%s: tensor '%s': bytes [%llu, %llu) outside the %llu data "
					  "bytes",
					  cf->path, t->name, (unsigned long long)t->begin,
					  (unsigned long long)t->end,
					  (unsigned long long)cf->data_size);
		if (t->end - t->begin != count * size)
			return status_set(err, SL_ERR_FORMAT,
					  "%s: tensor '%s': %llu bytes for %llu values of %s",
					  cf->path, t->name, (unsigned long long)(t->end - t->begin),
					  (unsigned long long)count, t->dtype);
		order[i] = t;
	}
	qsort(order, (size_t)cf->ntensors, sizeof order[0], cmp_begin);
	uint64_t at = 0;
	for (int i = 0; i < cf->ntensors; i++) {
		if (order[i]->begin != at)
			return status_set(err, SL_ERR_FORMAT,
					  "%s: tensor '%s' starts at byte %llu, expected %llu (%s)",
					  cf->path, order[i]->name,
					  (unsigned long long)order[i]->begin,
					  (unsigned long long)at,
					  order[i]->begin < at ? "overlap" : "gap");
		at = order[i]->end;
	}
	if (at != cf->data_size)
		return status_set(err, SL_ERR_FORMAT,
				  "%s: %llu data bytes but the tensors cover %llu", cf->path,
				  (unsigned long long)cf->data_size, (unsigned long long)at);
	return SL_OK;
}

static void file_close(struct ckpt_file *cf)
{
	if (cf->f)
		fclose(cf->f);
	free(cf->t);
	checkpoint_info_free(&cf->meta);
	memset(cf, 0, sizeof *cf);
}

static sl_status file_open(const char *path, struct ckpt_file *cf, struct sl_error *err)
{
	memset(cf, 0, sizeof *cf);
	cf->path = path;
	cf->f = fopen(path, "rb");
	if (!cf->f)
		return status_set(err, SL_ERR_IO, "cannot open %s: %s", path, strerror(errno));
	struct stat sb;
	if (fstat(fileno(cf->f), &sb) != 0 || !S_ISREG(sb.st_mode)) {
		file_close(cf);
		return status_set(err, SL_ERR_IO, "%s: not a regular file", path);
	}
	uint64_t size = (uint64_t)sb.st_size;
	unsigned char lenbuf[8];
	sl_status st = SL_OK;
	char *text = NULL;
	if (size < 8 || fread(lenbuf, 1, 8, cf->f) != 8) {
		st = status_set(err, SL_ERR_FORMAT, "%s: %llu bytes, too short for safetensors",
				path, (unsigned long long)size);
		goto out;
	}
	uint64_t hlen = 0;
	for (int k = 7; k >= 0; k--)
		hlen = hlen << 8 | lenbuf[k];
	if (hlen < 2 || hlen > size - 8 || hlen > CKPT_MAX_HEADER) {
		st = status_set(err, SL_ERR_FORMAT,
				"%s: header length %llu does not fit the file's %llu bytes", path,
				(unsigned long long)hlen, (unsigned long long)size);
		goto out;
	}
	text = malloc(hlen + 1);
	cf->t = calloc(CKPT_MAX_TENSORS, sizeof *cf->t);
	if (!text || !cf->t) {
		st = status_set(err, SL_ERR_NOMEM, "%s: header of %llu bytes", path,
				(unsigned long long)hlen);
		goto out;
	}
	if (fread(text, 1, hlen, cf->f) != hlen) {
		st = status_set(err, SL_ERR_IO, "%s: cannot read the header", path);
		goto out;
	}
	text[hlen] = '\0';
	if (memchr(text, '\0', hlen)) {
		st = status_set(err, SL_ERR_FORMAT, "%s: NUL byte in the header", path);
		goto out;
	}
	cf->data_start = 8 + hlen;
	cf->data_size = size - 8 - hlen;
	st = parse_header(cf, text, hlen, err);
	if (st == SL_OK)
		st = check_layout(cf, err);
out:
	free(text);
	if (st != SL_OK)
		file_close(cf);
	return st;
}

/* ---- Reading: into a network ---- */

static struct hdr_tensor *find_tensor(struct ckpt_file *cf, const char *layer,
				      const char *suffix)
{
	char name[CKPT_NAME];
	snprintf(name, sizeof name, "%s.%s", layer, suffix);
	for (int i = 0; i < cf->ntensors; i++)
		if (strcmp(cf->t[i].name, name) == 0)
			return &cf->t[i];
	return NULL;
}

/* The float dtypes a tensor may have: read as float (F32 exactly; F16 and
 * BF16 widened exactly; F64 rounded to nearest). */
static bool float_dtype(const char *dtype)
{
	return strcmp(dtype, "F32") == 0 || strcmp(dtype, "F16") == 0 ||
	       strcmp(dtype, "BF16") == 0 || strcmp(dtype, "F64") == 0;
}

/* t must be a float tensor with exactly the given shape. */
static sl_status check_tensor(struct ckpt_file *cf, const struct hdr_tensor *t, int rank,
			      const int *shape, struct sl_error *err)
{
	if (!float_dtype(t->dtype))
		return status_set(err, SL_ERR_UNSUPPORTED,
				  "%s: tensor '%s' is %s; sectorlab reads F32, F16, BF16 and F64",
				  cf->path, t->name, t->dtype);
	bool same = t->rank == rank;
	for (int k = 0; same && k < rank; k++)
		same = t->shape[k] == (uint64_t)shape[k];
	if (same)
		return SL_OK;
	char got[96] = "", want[96] = "";
	for (int k = 0, o = 0; k < t->rank && o < (int)sizeof got; k++)
		o += snprintf(got + o, sizeof got - (size_t)o, "%s%llu", k ? "," : "",
			      (unsigned long long)t->shape[k]);
	for (int k = 0, o = 0; k < rank && o < (int)sizeof want; k++)
		o += snprintf(want + o, sizeof want - (size_t)o, "%s%d", k ? "," : "", shape[k]);
	return status_set(err, SL_ERR_FORMAT, "%s: tensor '%s' has shape [%s], the model needs [%s]",
			  cf->path, t->name, got, want);
}

/* IEEE half precision to float (exact). */
static float half_to_float(uint16_t h)
{
	unsigned exp = (h >> 10) & 0x1f, man = h & 0x3ff;
	float f;
	if (exp == 0)
		f = ldexpf((float)man, -24);
	else if (exp == 31)
		f = man ? NAN : INFINITY;
	else
		f = ldexpf((float)(man | 0x400), (int)exp - 25);
	return h & 0x8000 ? -f : f;
}

/* Read t's values (a float dtype, already shape-checked) into dst as float,
 * and check they are finite (an F64 beyond float's range is not). */
static sl_status read_values(struct ckpt_file *cf, const struct hdr_tensor *t, float *dst,
			     struct sl_error *err)
{
	unsigned size = strcmp(t->dtype, "F64") == 0 ? 8 : strcmp(t->dtype, "F32") == 0 ? 4 : 2;
	size_t count = (size_t)((t->end - t->begin) / size);
	if (fseeko(cf->f, (off_t)(cf->data_start + t->begin), SEEK_SET) != 0)
		return status_set(err, SL_ERR_IO, "%s: cannot read tensor '%s'", cf->path, t->name);
	if (size == 4) {
		if (fread(dst, sizeof(float), count, cf->f) != count)
			return status_set(err, SL_ERR_IO, "%s: cannot read tensor '%s'", cf->path,
					  t->name);
	} else {
		unsigned char buf[4096];
		bool bf16 = strcmp(t->dtype, "BF16") == 0;
		for (size_t i = 0; i < count;) {
			size_t m = count - i < sizeof buf / size ? count - i : sizeof buf / size;
			if (fread(buf, size, m, cf->f) != m)
				return status_set(err, SL_ERR_IO, "%s: cannot read tensor '%s'",
						  cf->path, t->name);
			for (size_t k = 0; k < m; k++, i++) {
				if (size == 8) {
					double d;
					memcpy(&d, buf + 8 * k, 8);
					dst[i] = (float)d;
				} else {
					uint16_t h;
					memcpy(&h, buf + 2 * k, 2);
					uint32_t bits = (uint32_t)h << 16;
					if (bf16)
						memcpy(&dst[i], &bits, 4);
					else
						dst[i] = half_to_float(h);
				}
			}
		}
	}
	for (size_t i = 0; i < count; i++)
		if (!isfinite(dst[i]))
			return status_set(err, SL_ERR_FORMAT,
					  "%s: tensor '%s' holds a %s value at %zu", cf->path,
					  t->name, size == 8 ? "non-finite (as float)" : "non-finite", i);
	return SL_OK;
}

/* Parse the "rho" metadata: one cap per weighted layer ("" means none). */
static sl_status parse_rho(struct ckpt_file *cf, int nweighted, double *rho, struct sl_error *err)
{
	for (int i = 0; i < nweighted; i++)
		rho[i] = 0;
	const char *text = checkpoint_info_get(&cf->meta, "rho");
	if (!text || !*text)
		return SL_OK;
	int n = 0;
	const char *s = text;
	for (;;) {
		char *end;
		errno = 0;
		double v = strtod(s, &end);
		if (end == s || errno || !isfinite(v) || n == nweighted)
			return status_set(err, SL_ERR_FORMAT,
					  "%s: metadata rho '%s' is not %d numbers", cf->path, text,
					  nweighted);
		rho[n++] = v;
		if (*end == '\0')
			break;
		if (*end != ',')
			return status_set(err, SL_ERR_FORMAT, "%s: metadata rho '%s' is malformed",
					  cf->path, text);
		s = end + 1;
	}
	if (n != nweighted)
		return status_set(err, SL_ERR_FORMAT, "%s: metadata rho has %d caps for %d layers",
				  cf->path, n, nweighted);
	return SL_OK;
}

static sl_status fill_layer(struct ckpt_file *cf, struct nn_net *net, int i, double rho,
			    struct sl_rng *rng, struct sl_error *err)
{
	struct nn_layer *l = &net->layers[i];
	const struct conv_geom *g = &l->geom;
	int wshape[4], wrank, ushape[3], vshape[3], urank, vrank;
	if (l->kind == NN_CONV) {
		wrank = 4, wshape[0] = g->cout, wshape[1] = g->cin, wshape[2] = g->k, wshape[3] = g->k;
		urank = vrank = 3;
		ushape[0] = g->cout, ushape[1] = g->ho, ushape[2] = g->wo;
		vshape[0] = g->cin, vshape[1] = g->h, vshape[2] = g->w;
	} else {
		wrank = 2, wshape[0] = l->wrows, wshape[1] = l->wcols;
		urank = vrank = 1;
		ushape[0] = l->usize, vshape[0] = l->vsize;
	}
	struct hdr_tensor *w = find_tensor(cf, l->name, "weight");
	struct hdr_tensor *b = find_tensor(cf, l->name, "bias");
	struct hdr_tensor *orig = find_tensor(cf, l->name, "weight_orig");
	struct hdr_tensor *u = find_tensor(cf, l->name, "weight_u");
	struct hdr_tensor *v = find_tensor(cf, l->name, "weight_v");
	if (!w || !b)
		return status_set(err, SL_ERR_FORMAT, "%s: no tensor '%s.%s'", cf->path, l->name,
				  w ? "bias" : "weight");
	if ((orig || u || v) && !(orig && u && v))
		return status_set(err, SL_ERR_FORMAT,
				  "%s: %s needs weight_orig, weight_u and weight_v together",
				  cf->path, l->name);
	if (orig && !(rho > 0))
		return status_set(err, SL_ERR_FORMAT,
				  "%s: %s is capped (weight_orig) but metadata rho gives no cap",
				  cf->path, l->name);
	sl_status st = check_tensor(cf, w, wrank, wshape, err);
	if (st == SL_OK)
		st = check_tensor(cf, b, 1, &l->wrows, err);
	if (st == SL_OK && orig)
		st = check_tensor(cf, orig, wrank, wshape, err);
	if (st == SL_OK && orig)
		st = check_tensor(cf, u, urank, ushape, err);
	if (st == SL_OK && orig)
		st = check_tensor(cf, v, vrank, vshape, err);
	if (st != SL_OK)
		return st;
	w->used = b->used = true;
	if (orig)
		orig->used = u->used = v->used = true;
	if ((st = read_values(cf, b, l->b, err)) != SL_OK)
		return st;
	if (!orig) {
		/* Uncapped: the weight in use is the weight.  Fresh vectors let the
		 * norm be estimated later. */
		nn_set_cap(net, i, 0);
		spectral_random_unit(rng, l->u, l->usize);
		spectral_random_unit(rng, l->v, l->vsize);
		if ((st = read_values(cf, w, l->w, err)) != SL_OK)
			return st;
		nn_update_layer_cap(net, i, 0);
		return SL_OK;
	}
	if ((st = read_values(cf, orig, l->w, err)) != SL_OK ||
	    (st = read_values(cf, u, l->u, err)) != SL_OK ||
	    (st = read_values(cf, v, l->v, err)) != SL_OK)
		return st;
	float nu = cblas_snrm2(l->usize, l->u, 1), nv = cblas_snrm2(l->vsize, l->v, 1);
	if (!(nu > 0.5f && nu < 2.0f && nv > 0.5f && nv < 2.0f))
		return status_set(err, SL_ERR_FORMAT,
				  "%s: %s power-iteration vectors have norms %g and %g, not 1",
				  cf->path, l->name, (double)nu, (double)nv);
	cblas_sscal(l->usize, 1.0f / nu, l->u, 1);
	cblas_sscal(l->vsize, 1.0f / nv, l->v, 1);
	nn_set_cap(net, i, (float)rho);
	nn_update_layer_cap(net, i, 0);
	/* The stored weight in use must be the raw weight under this cap. */
	size_t wsz = nn_layer_wsize(l);
	float *in_use = malloc(sizeof(float) * wsz);
	if (!in_use)
		return status_set(err, SL_ERR_NOMEM, "%s: %s", cf->path, w->name);
	st = read_values(cf, w, in_use, err);
	double worst = 0, top = 0;
	for (size_t k = 0; st == SL_OK && k < wsz; k++) {
		double d = fabs((double)in_use[k] - (double)l->w[k] * l->scale);
		worst = d > worst ? d : worst;
		top = fabs(in_use[k]) > top ? fabs(in_use[k]) : top;
	}
	free(in_use);
	if (st == SL_OK && worst > 1e-5 * top + 1e-7)
		st = status_set(err, SL_ERR_FORMAT,
				"%s: %s.weight differs from weight_orig under cap %g by %g", cf->path,
				l->name, rho, worst);
	return st;
}

/* When the file describes its layers, they must be the network's. */
static sl_status check_layers(struct ckpt_file *cf, const struct nn_net *net,
			      struct sl_error *err)
{
	const char *stored = checkpoint_info_get(&cf->meta, "layers");
	if (!stored)
		return SL_OK;
	char *text = NULL;
	size_t len = 0;
	FILE *d = open_memstream(&text, &len);
	if (!d)
		return status_set(err, SL_ERR_NOMEM, "%s: layers", cf->path);
	describe_layers(d, net);
	sl_status st = SL_OK;
	if (fclose(d) != 0)
		st = status_set(err, SL_ERR_NOMEM, "%s: layers", cf->path);
	else if (strcmp(text, stored) != 0)
		st = status_set(err, SL_ERR_FORMAT,
				"%s: its layers (%.120s...) are not this network's (%.120s...)",
				cf->path, stored, text);
	free(text);
	return st;
}

static sl_status file_fill(struct ckpt_file *cf, struct nn_net *net, struct sl_error *err)
{
	sl_status st = check_layers(cf, net, err);
	if (st != SL_OK)
		return st;
	int idx[NN_MAX_LAYERS];
	int nw = nn_weighted_layers(net, idx);
	double rho[NN_MAX_LAYERS];
	st = parse_rho(cf, nw, rho, err);
	if (st != SL_OK)
		return st;
	struct sl_rng rng;
	rng_seed(&rng, 0x5ec7);
	for (int j = 0; j < nw; j++)
		if ((st = fill_layer(cf, net, idx[j], rho[j], &rng, err)) != SL_OK)
			return st;
	for (int i = 0; i < cf->ntensors; i++)
		if (!cf->t[i].used)
			return status_set(err, SL_ERR_FORMAT,
					  "%s: tensor '%s' belongs to no layer of this model",
					  cf->path, cf->t[i].name);
	return SL_OK;
}

static void take_meta(struct ckpt_file *cf, struct checkpoint_info *info)
{
	if (info) {
		*info = cf->meta;
		memset(&cf->meta, 0, sizeof cf->meta);
	}
}

/* Open path, let read fill what it asks for (NULL: nothing), hand the
 * metadata to info on success, close.  The one path every reader takes. */
static sl_status read_file(const char *path, struct checkpoint_info *info,
			   sl_status (*read)(struct ckpt_file *cf, void *ctx, struct sl_error *err),
			   void *ctx, struct sl_error *err)
{
	if (info)
		memset(info, 0, sizeof *info);
	struct ckpt_file cf;
	sl_status st = file_open(path, &cf, err);
	if (st != SL_OK)
		return st;
	if (read)
		st = read(&cf, ctx, err);
	if (st == SL_OK)
		take_meta(&cf, info);
	file_close(&cf);
	return st;
}

static sl_status fill_net(struct ckpt_file *cf, void *net, struct sl_error *err)
{
	return file_fill(cf, net, err);
}

sl_status checkpoint_read(const char *path, struct nn_net *net, struct checkpoint_info *info,
			  struct sl_error *err)
{
	return read_file(path, info, fill_net, net, err);
}

sl_status checkpoint_read_info(const char *path, struct checkpoint_info *info,
			       struct sl_error *err)
{
	return read_file(path, info, NULL, NULL, err);
}

struct arrays_request {
	const struct checkpoint_array *arrays;
	int n;
};

static sl_status fill_arrays(struct ckpt_file *cf, void *ctx, struct sl_error *err)
{
	const struct arrays_request *req = ctx;
	const struct checkpoint_array *arrays = req->arrays;
	int n = req->n;
	const char *path = cf->path;
	sl_status st = SL_OK;
	for (int i = 0; i < n && st == SL_OK; i++) {
		const struct checkpoint_array *a = &arrays[i];
		struct hdr_tensor *t = NULL;
		for (int k = 0; k < cf->ntensors && !t; k++)
			if (strcmp(cf->t[k].name, a->name) == 0)
				t = &cf->t[k];
		const char *dtype = array_dtypes[a->dtype].name;
		unsigned size = array_dtypes[a->dtype].size;
		if (!t) {
			st = status_set(err, SL_ERR_FORMAT, "%s: no tensor '%s'", path, a->name);
			break;
		}
		t->used = true;
		if (strcmp(t->dtype, dtype) != 0 || t->rank != 1 || t->shape[0] != a->count) {
			st = status_set(err, SL_ERR_FORMAT,
					"%s: tensor '%s' is %s [%llu%s], expected %s [%zu]", path,
					a->name, t->dtype, (unsigned long long)(t->rank ? t->shape[0] : 1),
					t->rank == 1 ? "" : ", ...", dtype, a->count);
			break;
		}
		if (fseeko(cf->f, (off_t)(cf->data_start + t->begin), SEEK_SET) != 0 ||
		    fread(a->data, size, a->count, cf->f) != a->count) {
			st = status_set(err, SL_ERR_IO, "%s: cannot read tensor '%s'", path, a->name);
			break;
		}
		for (size_t k = 0; k < a->count && st == SL_OK; k++) {
			bool finite = a->dtype == CKPT_F32   ? isfinite(((const float *)a->data)[k])
				      : a->dtype == CKPT_F64 ? isfinite(((const double *)a->data)[k])
							     : true;
			if (!finite)
				st = status_set(err, SL_ERR_FORMAT,
						"%s: tensor '%s' holds a non-finite value at %zu", path,
						a->name, k);
		}
	}
	for (int k = 0; k < cf->ntensors && st == SL_OK; k++)
		if (!cf->t[k].used)
			st = status_set(err, SL_ERR_FORMAT, "%s: tensor '%s' is not expected here",
					path, cf->t[k].name);
	return st;
}

sl_status checkpoint_read_arrays(const char *path, const struct checkpoint_array *arrays,
				 int n, struct checkpoint_info *info, struct sl_error *err)
{
	struct arrays_request req = {arrays, n};
	return read_file(path, info, fill_arrays, &req, err);
}

/* ---- Reading: PyTorch state_dicts as they are ---- */

/* What a tensor is to its module, from the end of its name. */
enum pt_role { PT_WEIGHT, PT_BIAS, PT_ORIG, PT_U, PT_V, PT_NROLES };

static const struct {
	const char *suffix;
	enum pt_role role;
} pt_suffixes[] = {
	/* torch.nn.utils.parametrizations.spectral_norm */
	{".parametrizations.weight.original", PT_ORIG},
	{".parametrizations.weight.0._u", PT_U},
	{".parametrizations.weight.0._v", PT_V},
	/* the older torch.nn.utils.spectral_norm */
	{".weight_orig", PT_ORIG},
	{".weight_u", PT_U},
	{".weight_v", PT_V},
	{".weight", PT_WEIGHT},
	{".bias", PT_BIAS},
};

/* One module of the state_dict: its name ("net.0", "fc1"; "" at the top
 * level) and its tensors by role. */
struct pt_module {
	char name[CKPT_NAME];
	struct hdr_tensor *t[PT_NROLES];
	enum nn_kind kind;
	int out, in, k;          /* dense: [out, in]; conv: [out, in, k, k] */
};

/* Names in natural order: runs of digits compare as numbers ("net.2" before
 * "net.10", "fc2" before "fc10"). */
static int natural_cmp(const char *a, const char *b)
{
	while (*a && *b) {
		if (isdigit((unsigned char)*a) && isdigit((unsigned char)*b)) {
			while (*a == '0' && isdigit((unsigned char)a[1]))
				a++;
			while (*b == '0' && isdigit((unsigned char)b[1]))
				b++;
			size_t na = 0, nb = 0;
			while (isdigit((unsigned char)a[na]))
				na++;
			while (isdigit((unsigned char)b[nb]))
				nb++;
			if (na != nb)
				return na < nb ? -1 : 1;
			int c = strncmp(a, b, na);
			if (c)
				return c;
			a += na, b += nb;
		} else {
			if (*a != *b)
				return (unsigned char)*a < (unsigned char)*b ? -1 : 1;
			a++, b++;
		}
	}
	return *a ? 1 : *b ? -1 : 0;
}

/* Convolutions first (a supported stack flattens once, into its dense
 * layers), then module order in the names. */
static int pt_module_cmp(const void *x, const void *y)
{
	const struct pt_module *a = x, *b = y;
	if (a->kind != b->kind)
		return a->kind == NN_CONV ? -1 : 1;
	return natural_cmp(a->name, b->name);
}

static const char *pt_label(const struct pt_module *m)
{
	return *m->name ? m->name : "(top level)";
}

/* Group the tensors into modules and check each one's shapes: a weight (or
 * a spectral-norm original with both power-iteration vectors) of rank 2 or
 * 4 with a square kernel, and a bias (optional) of its outputs. */
static sl_status pt_modules(struct ckpt_file *cf, struct pt_module *mods, int *nmods,
			    struct sl_error *err)
{
	*nmods = 0;
	for (int i = 0; i < cf->ntensors; i++) {
		struct hdr_tensor *t = &cf->t[i];
		size_t len = strlen(t->name);
		int role = -1;
		size_t cut = 0;
		for (size_t s = 0; s < sizeof pt_suffixes / sizeof pt_suffixes[0]; s++) {
			size_t sl = strlen(pt_suffixes[s].suffix);
			/* "weight" alone is a top-level module's */
			const char *suf = pt_suffixes[s].suffix;
			if (len >= sl && strcmp(t->name + len - sl, suf) == 0) {
				role = (int)pt_suffixes[s].role, cut = len - sl;
				break;
			}
			if (strcmp(t->name, suf + 1) == 0) {
				role = (int)pt_suffixes[s].role, cut = 0;
				break;
			}
		}
		if (role < 0)
			return status_set(err, SL_ERR_FORMAT,
					  "%s: tensor '%s' is not the weight or bias of a dense or "
					  "conv layer (nor a spectral-norm vector): sectorlab reads "
					  "stacks of Linear and Conv2d",
					  cf->path, t->name);
		int j = 0;
		while (j < *nmods && (strlen(mods[j].name) != cut ||
				      strncmp(mods[j].name, t->name, cut) != 0))
			j++;
		if (j == *nmods) {
			if (*nmods == NN_MAX_LAYERS)
				return status_set(err, SL_ERR_FORMAT,
						  "%s: tensor '%s': more than %d layers", cf->path,
						  t->name, NN_MAX_LAYERS);
			memset(&mods[j], 0, sizeof mods[j]);
			memcpy(mods[j].name, t->name, cut);
			mods[j].name[cut] = '\0';
			(*nmods)++;
		}
		if (mods[j].t[role])
			return status_set(err, SL_ERR_FORMAT, "%s: tensors '%s' and '%s' both hold %s's %s",
					  cf->path, mods[j].t[role]->name, t->name, pt_label(&mods[j]),
					  role == PT_BIAS ? "bias" : "weight");
		if (!float_dtype(t->dtype))
			return status_set(err, SL_ERR_UNSUPPORTED,
					  "%s: tensor '%s' is %s; sectorlab reads F32, F16, BF16 "
					  "and F64",
					  cf->path, t->name, t->dtype);
		mods[j].t[role] = t;
	}
	for (int j = 0; j < *nmods; j++) {
		struct pt_module *m = &mods[j];
		struct hdr_tensor *w = m->t[PT_WEIGHT] ? m->t[PT_WEIGHT] : m->t[PT_ORIG];
		bool sn = m->t[PT_ORIG] || m->t[PT_U] || m->t[PT_V];
		if (sn && (m->t[PT_WEIGHT] || !m->t[PT_ORIG] || !m->t[PT_U] || !m->t[PT_V]))
			return status_set(err, SL_ERR_FORMAT,
					  "%s: %s: spectral norm needs its original weight and both "
					  "vectors u and v, and no plain weight (found %s)",
					  cf->path, pt_label(m),
					  m->t[PT_WEIGHT] ? m->t[PT_WEIGHT]->name
					  : m->t[PT_ORIG] ? m->t[PT_ORIG]->name
					  : m->t[PT_U]	  ? m->t[PT_U]->name
							  : m->t[PT_V]->name);
		if (!w)
			return status_set(err, SL_ERR_FORMAT, "%s: tensor '%s' has no weight beside it",
					  cf->path, m->t[PT_BIAS]->name);
		bool conv = w->rank == 4;
		if ((w->rank != 2 && !conv) || (conv && w->shape[2] != w->shape[3]) ||
		    w->shape[0] < 1 || w->shape[1] < 1 || w->shape[0] > (1u << 24) ||
		    w->shape[1] > (1u << 24) || (conv && (w->shape[2] < 1 || w->shape[2] > 64)))
			return status_set(err, SL_ERR_FORMAT,
					  "%s: tensor '%s' is not a dense weight [out, in] or a conv "
					  "weight [out, in, k, k] (k up to 64)",
					  cf->path, w->name);
		m->kind = conv ? NN_CONV : NN_DENSE;
		m->out = (int)w->shape[0], m->in = (int)w->shape[1], m->k = conv ? (int)w->shape[2] : 0;
		int cols = conv ? m->in * m->k * m->k : m->in;
		if (m->t[PT_BIAS] && (m->t[PT_BIAS]->rank != 1 ||
				      m->t[PT_BIAS]->shape[0] != (uint64_t)m->out))
			return status_set(err, SL_ERR_FORMAT, "%s: tensor '%s' should have shape [%d]",
					  cf->path, m->t[PT_BIAS]->name, m->out);
		if (sn && (m->t[PT_U]->rank != 1 || m->t[PT_U]->shape[0] != (uint64_t)m->out))
			return status_set(err, SL_ERR_FORMAT, "%s: tensor '%s' should have shape [%d]",
					  cf->path, m->t[PT_U]->name, m->out);
		if (sn && (m->t[PT_V]->rank != 1 || m->t[PT_V]->shape[0] != (uint64_t)cols))
			return status_set(err, SL_ERR_FORMAT, "%s: tensor '%s' should have shape [%d]",
					  cf->path, m->t[PT_V]->name, cols);
	}
	qsort(mods, (size_t)*nmods, sizeof mods[0], pt_module_cmp);
	return SL_OK;
}

/* Does the architecture's weighted layer table have exactly these shapes?
 * When not, and mismatch is not NULL, say which tensor differs. */
static bool pt_fits(const struct arch *a, const struct pt_module *mods, int n, char *mismatch,
		    size_t cap)
{
	int j = 0;
	for (int i = 0; i < a->nlayers; i++) {
		const struct nn_layer_spec *s = &a->layers[i];
		if (s->kind != NN_DENSE && s->kind != NN_CONV)
			continue;
		if (j == n) {
			if (mismatch)
				snprintf(mismatch, cap,
					 "layer %d (%s %d) has no tensors: the file has %d weighted "
					 "layers",
					 i + 1, s->kind == NN_DENSE ? "dense" : "conv", s->out, n);
			return false;
		}
		const struct pt_module *m = &mods[j++];
		bool ok = s->kind == m->kind && s->out == m->out &&
			  (!arch_has_input(a) || s->in == m->in) && (s->kind == NN_DENSE || s->k == m->k);
		if (!ok) {
			const struct hdr_tensor *w = m->t[PT_WEIGHT] ? m->t[PT_WEIGHT] : m->t[PT_ORIG];
			if (mismatch && s->kind == NN_CONV)
				snprintf(mismatch, cap,
					 "tensor '%s' is %s [%d, %d%s], layer %d of the spec (conv "
					 "%d %dx%d) needs [%d, %d, %d, %d]",
					 w->name, m->kind == NN_CONV ? "a conv weight" : "a dense weight",
					 m->out, m->in, m->kind == NN_CONV ? ", k, k" : "", i + 1, s->out,
					 s->k, s->k, s->out, s->in, s->k, s->k);
			else if (mismatch)
				snprintf(mismatch, cap,
					 "tensor '%s' is %s [%d, %d%s], layer %d of the spec (dense "
					 "%d) needs [%d, %d]",
					 w->name, m->kind == NN_CONV ? "a conv weight" : "a dense weight",
					 m->out, m->in, m->kind == NN_CONV ? ", k, k" : "", i + 1, s->out,
					 s->out, s->in);
			return false;
		}
	}
	if (j < n) {
		if (mismatch)
			snprintf(mismatch, cap, "tensor '%s' belongs to no layer of the spec (%d weighted)",
				 (mods[j].t[PT_WEIGHT] ? mods[j].t[PT_WEIGHT] : mods[j].t[PT_ORIG])->name,
				 j);
		return false;
	}
	return true;
}

/* What was found, for messages: "fc1 [50, 784], fc2 [20, 50]". */
static void pt_found(const struct pt_module *mods, int n, char *buf, size_t cap)
{
	size_t o = 0;
	buf[0] = '\0';
	for (int j = 0; j < n && o < cap; j++) {
		int w = mods[j].kind == NN_CONV
				? snprintf(buf + o, cap - o, "%s%s conv [%d, %d, %d, %d]", j ? ", " : "",
					   pt_label(&mods[j]), mods[j].out, mods[j].in, mods[j].k,
					   mods[j].k)
				: snprintf(buf + o, cap - o, "%s%s dense [%d, %d]", j ? ", " : "",
					   pt_label(&mods[j]), mods[j].out, mods[j].in);
		o += w > 0 ? (size_t)w : 0;
	}
}

/* An --arch to suggest: the shorthand for a dense chain, else the full form
 * with relu and 'pad same' standing in for what a state_dict does not hold. */
static void pt_suggest(const struct pt_module *mods, int n, char *buf, size_t cap)
{
	size_t o = 0;
	bool dense_chain = true;
	for (int j = 0; j < n; j++)
		dense_chain &= mods[j].kind == NN_DENSE && (j == 0 || mods[j].in == mods[j - 1].out);
	int w = 0;
	if (dense_chain) {
		w = snprintf(buf, cap, "%d", mods[0].in);
		o += w > 0 ? (size_t)w : 0;
		for (int j = 0; j < n && o < cap; j++) {
			w = snprintf(buf + o, cap - o, "-%d", mods[j].out);
			o += w > 0 ? (size_t)w : 0;
		}
		return;
	}
	buf[0] = '\0';
	for (int j = 0; j < n && o < cap; j++) {
		bool first_dense = mods[j].kind == NN_DENSE && j > 0 && mods[j - 1].kind == NN_CONV;
		if (mods[j].kind == NN_CONV)
			w = snprintf(buf + o, cap - o, "%sconv %d %dx%d%s", j ? ", " : "", mods[j].out,
				     mods[j].k, mods[j].k, mods[j].k % 2 ? " pad same" : "");
		else
			w = snprintf(buf + o, cap - o, "%s%sdense %d", j ? ", " : "",
				     first_dense ? "flatten, " : "", mods[j].out);
		o += w > 0 ? (size_t)w : 0;
		if (j + 1 < n && o < cap) {
			w = snprintf(buf + o, cap - o, ", relu");
			o += w > 0 ? (size_t)w : 0;
		}
	}
}

/* Add a metadata entry the file did not have (what the loader inferred). */
static sl_status info_add(struct checkpoint_info *info, const char *key, const char *value)
{
	char **k = realloc(info->keys, sizeof(char *) * (size_t)(info->nmeta + 1));
	if (k)
		info->keys = k;
	char **v = realloc(info->values, sizeof(char *) * (size_t)(info->nmeta + 1));
	if (v)
		info->values = v;
	if (!k || !v)
		return SL_ERR_NOMEM;
	info->keys[info->nmeta] = dup_string(key);
	info->values[info->nmeta] = dup_string(value);
	if (!info->keys[info->nmeta] || !info->values[info->nmeta]) {
		free(info->keys[info->nmeta]);
		free(info->values[info->nmeta]);
		return SL_ERR_NOMEM;
	}
	info->nmeta++;
	return SL_OK;
}

/* The architecture of a plain state_dict: arch's (with its input, or one
 * inferred from the first layer), else the one built-in model that fits. */
static sl_status pt_choose_arch(struct ckpt_file *cf, const struct pt_module *mods, int n,
				const struct arch *hint, struct arch *out, char *note, size_t cap,
				struct sl_error *err)
{
	char found[1024], suggest[ARCH_TEXT], why[600];
	pt_found(mods, n, found, sizeof found);
	if (hint) {
		*out = *hint;
		if (!arch_has_input(out)) {
			/* Not in a state_dict: a dense input is read flat; images are
			 * MNIST's or CIFAR-10's, by their channels. */
			struct nn_shape in = {mods[0].in, 1, 1};
			if (mods[0].kind == NN_CONV)
				in = mods[0].in == 3 ? (struct nn_shape){3, 32, 32}
						     : (struct nn_shape){mods[0].in, 28, 28};
			sl_status st = arch_fit_input(out, in, err);
			if (st != SL_OK)
				return st;
		}
		if (!pt_fits(out, mods, n, why, sizeof why))
			return status_set(err, SL_ERR_FORMAT, "%s: %s", cf->path, why);
		snprintf(note, cap, "the layers of --arch");
		return SL_OK;
	}
	int match = -1, nmatch = 0;
	char names[128] = "";
	for (int id = 0; id < MODEL_COUNT; id++) {
		struct arch a;
		model_get((enum model_id)id, &a);
		if (!pt_fits(&a, mods, n, NULL, 0))
			continue;
		match = id;
		snprintf(names + strlen(names), sizeof names - strlen(names), "%s%s",
			 nmatch++ ? ", " : "", a.name);
	}
	pt_suggest(mods, n, suggest, sizeof suggest);
	if (nmatch == 1) {
		model_get((enum model_id)match, out);
		snprintf(note, cap,
			 "its shapes fit exactly one built-in model, %s (%s), used for the "
			 "activations and pooling a state_dict does not hold; pass --arch to say "
			 "otherwise",
			 out->name, model_spec((enum model_id)match));
		return SL_OK;
	}
	if (nmatch > 1)
		return status_set(err, SL_ERR_ARG,
				  "%s: a PyTorch state_dict without sectorlab's metadata whose shapes "
				  "fit several built-in models (%s); found %s; pass --arch NAME or "
				  "e.g. --arch '%s'",
				  cf->path, names, found, suggest);
	return status_set(err, SL_ERR_ARG,
			  "%s: a PyTorch state_dict without sectorlab's metadata, and its shapes "
			  "fit no built-in model; found %s. Activations and pooling are not in a "
			  "state_dict: pass them with --arch, e.g. --arch '%s'",
			  cf->path, found, suggest);
}

/* Fill weighted layer i from module m: a spectral-norm module's weight in
 * use is original / sigma with sigma = u . (W v), as PyTorch computes it in
 * eval mode (W reshaped to [out, in*k*k] for a conv). */
static sl_status pt_fill_layer(struct ckpt_file *cf, struct nn_net *net, int i,
			       const struct pt_module *m, struct sl_rng *rng, double *sigma,
			       struct sl_error *err)
{
	struct nn_layer *l = &net->layers[i];
	bool sn = m->t[PT_ORIG] != NULL;
	struct hdr_tensor *w = sn ? m->t[PT_ORIG] : m->t[PT_WEIGHT];
	sl_status st = read_values(cf, w, l->w, err);
	w->used = true;
	if (st != SL_OK)
		return st;
	if (m->t[PT_BIAS]) {
		m->t[PT_BIAS]->used = true;
		if ((st = read_values(cf, m->t[PT_BIAS], l->b, err)) != SL_OK)
			return st;
	} else {
		memset(l->b, 0, sizeof(float) * (size_t)l->wrows);
	}
	*sigma = 0;
	if (sn) {
		float *u = malloc(sizeof(float) * (size_t)(l->wrows + l->wcols));
		if (!u)
			return status_set(err, SL_ERR_NOMEM, "%s: %s", cf->path, w->name);
		float *v = u + l->wrows;
		m->t[PT_U]->used = m->t[PT_V]->used = true;
		st = read_values(cf, m->t[PT_U], u, err);
		if (st == SL_OK)
			st = read_values(cf, m->t[PT_V], v, err);
		double s = 0;
		for (int r = 0; st == SL_OK && r < l->wrows; r++) {
			double row = 0;
			for (int c = 0; c < l->wcols; c++)
				row += (double)l->w[(size_t)r * l->wcols + c] * v[c];
			s += u[r] * row;
		}
		free(u);
		if (st != SL_OK)
			return st;
		if (!(s > 0) || !isfinite(s))
			return status_set(err, SL_ERR_FORMAT,
					  "%s: %s: spectral norm's sigma = u . W v is %g, not positive",
					  cf->path, pt_label(m), s);
		*sigma = s;
		size_t wsz = nn_layer_wsize(l);
		for (size_t k = 0; k < wsz; k++)
			l->w[k] = (float)(l->w[k] / s);
	}
	nn_set_cap(net, i, 0);
	spectral_random_unit(rng, l->u, l->usize);
	spectral_random_unit(rng, l->v, l->vsize);
	nn_update_layer_cap(net, i, 0);
	return SL_OK;
}

/* A state_dict as PyTorch wrote it: modules in name order, the architecture
 * from hint or the one built-in model that fits, every tensor used. */
static sl_status pt_load(struct ckpt_file *cf, const struct arch *hint, int max_batch,
			 struct nn_net **net, struct sl_error *err)
{
	struct pt_module mods[NN_MAX_LAYERS];
	int n;
	sl_status st = pt_modules(cf, mods, &n, err);
	if (st != SL_OK)
		return st;
	if (n == 0)
		return status_set(err, SL_ERR_FORMAT, "%s: no tensors", cf->path);
	struct arch a;
	char how[600];
	if ((st = pt_choose_arch(cf, mods, n, hint, &a, how, sizeof how, err)) != SL_OK)
		return st;
	if ((st = arch_build(&a, max_batch, net, err)) != SL_OK)
		return st;
	int idx[NN_MAX_LAYERS];
	nn_weighted_layers(*net, idx);
	struct sl_rng rng;
	rng_seed(&rng, 0x5ec7);
	char folded[512] = "", dtypes[64] = "";
	for (int j = 0; j < n && st == SL_OK; j++) {
		double sigma;
		st = pt_fill_layer(cf, *net, idx[j], &mods[j], &rng, &sigma, err);
		if (st == SL_OK && sigma > 0)
			snprintf(folded + strlen(folded), sizeof folded - strlen(folded),
				 "%s%.60s (sigma %.6g)", *folded ? ", " : "", pt_label(&mods[j]), sigma);
	}
	for (int i = 0; st == SL_OK && i < cf->ntensors; i++) {
		const char *d = cf->t[i].dtype;
		if (strcmp(d, "F32") != 0 && !strstr(dtypes, d))
			snprintf(dtypes + strlen(dtypes), sizeof dtypes - strlen(dtypes), "%s%s",
				 *dtypes ? ", " : "", d);
	}
	if (st != SL_OK) {
		nn_free(*net);
		*net = NULL;
		return st;
	}
	char order[1024], spec[ARCH_TEXT];
	size_t o = 0;
	order[0] = '\0';
	for (int j = 0; j < n && o < sizeof order; j++) {
		int w = snprintf(order + o, sizeof order - o, "%s%s", j ? ", " : "", pt_label(&mods[j]));
		o += w > 0 ? (size_t)w : 0;
	}
	char note[3072];
	snprintf(note, sizeof note,
		 "a PyTorch state_dict without sectorlab's metadata: %d layers in module order "
		 "%s; %s%s%s%s%s%s",
		 n, order, how, *folded ? "; spectral norm folded into the weights: " : "",
		 folded, *dtypes ? "; " : "", dtypes, *dtypes ? " converted to float" : "");
	/* What a sectorlab file would have said about itself. */
	if (info_add(&cf->meta, "model", *a.name ? a.name : "custom") != SL_OK ||
	    info_add(&cf->meta, "mode", "pytorch") != SL_OK ||
	    info_add(&cf->meta, "arch", arch_format(&a, spec, sizeof spec)) != SL_OK ||
	    info_add(&cf->meta, "source", note) != SL_OK) {
		nn_free(*net);
		*net = NULL;
		return status_set(err, SL_ERR_NOMEM, "%s: metadata", cf->path);
	}
	return SL_OK;
}

/* The architecture a sectorlab file describes: its "arch" entry, else its
 * built-in "model"; NULL-free *has is false when it describes none. */
static sl_status file_arch(struct ckpt_file *cf, struct arch *a, bool *has, struct sl_error *err)
{
	const char *spec = checkpoint_info_get(&cf->meta, "arch");
	const char *name = checkpoint_info_get(&cf->meta, "model");
	*has = spec || name;
	if (spec) {
		struct sl_error perr;
		if (arch_parse(spec, a, &perr) != SL_OK || !arch_has_input(a))
			return status_set(err, SL_ERR_FORMAT, "%s: metadata arch '%.200s': %s",
					  cf->path, spec, arch_has_input(a) ? perr.msg : "no input shape");
		enum model_id id;
		if (name && model_parse(name, &id, NULL) == SL_OK)
			snprintf(a->name, sizeof a->name, "%s", name);
		return SL_OK;
	}
	if (name) {
		enum model_id id;
		if (model_parse(name, &id, NULL) != SL_OK)
			return status_set(err, SL_ERR_FORMAT, "%s: unknown model '%s'", cf->path, name);
		model_get(id, a);
	}
	return SL_OK;
}

sl_status checkpoint_load_arch(const char *path, const struct arch *arch, int max_batch,
			       struct nn_net **net, struct checkpoint_info *info,
			       struct sl_error *err)
{
	*net = NULL;
	if (info)
		memset(info, 0, sizeof *info);
	struct ckpt_file cf;
	sl_status st = file_open(path, &cf, err);
	if (st != SL_OK)
		return st;
	const char *format = checkpoint_info_get(&cf.meta, "format");
	if (format && strncmp(format, "sectorlab-train-state", 21) == 0) {
		st = status_set(err, SL_ERR_FORMAT,
				"%s: a training state (kept to resume training), not a network "
				"checkpoint; the network is saved when its training finishes",
				path);
		goto out;
	}
	struct arch a;
	bool described;
	if ((st = file_arch(&cf, &a, &described, err)) != SL_OK)
		goto out;
	if (!described) {
		if ((st = pt_load(&cf, arch, max_batch, net, err)) == SL_OK)
			take_meta(&cf, info);
		goto out;
	}
	if (arch) {
		/* The file describes itself; --arch must agree with it. */
		struct arch given = *arch;
		char want[ARCH_TEXT], have[ARCH_TEXT];
		if (arch_fit_input(&given, a.input, NULL) != SL_OK)
			given.nlayers = 0;
		given.name[0] = '\0';
		struct arch mine = a;
		mine.name[0] = '\0';
		arch_format(&mine, have, sizeof have);
		if (strcmp(arch_format(&given, want, sizeof want), have) != 0) {
			st = status_set(err, SL_ERR_ARG,
					"%s: the file describes its network as '%.300s', not as --arch "
					"'%.300s'",
					path, have, want);
			goto out;
		}
	}
	if ((st = arch_build(&a, max_batch, net, err)) != SL_OK)
		goto out;
	st = file_fill(&cf, *net, err);
	if (st != SL_OK) {
		nn_free(*net);
		*net = NULL;
		goto out;
	}
	take_meta(&cf, info);
out:
	file_close(&cf);
	return st;
}

sl_status checkpoint_load(const char *path, int max_batch, struct nn_net **net,
			  struct checkpoint_info *info, struct sl_error *err)
{
	return checkpoint_load_arch(path, NULL, max_batch, net, info, err);
}

const char *checkpoint_info_get(const struct checkpoint_info *info, const char *key)
{
	for (int i = 0; i < info->nmeta; i++)
		if (strcmp(info->keys[i], key) == 0)
			return info->values[i];
	return NULL;
}

void checkpoint_info_free(struct checkpoint_info *info)
{
	if (!info)
		return;
	for (int i = 0; i < info->nmeta; i++) {
		free(info->keys[i]);
		free(info->values[i]);
	}
	free(info->keys);
	free(info->values);
	memset(info, 0, sizeof *info);
}
