/* npy: NumPy .npy arrays and .npz archives (see npy.h). */
#include "sectorlab/npy.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "sectorlab/io.h"

static const unsigned char npy_magic[6] = {0x93, 'N', 'U', 'M', 'P', 'Y'};

size_t npy_count(int ndim, const size_t *shape)
{
	size_t n = 1;
	for (int i = 0; i < ndim; i++)
		n *= shape[i];
	return n;
}

/* n = prod(shape) without overflow, as bytes of 4-byte values; false if it
 * does not fit. */
static int checked_bytes(int ndim, const size_t *shape, size_t *bytes)
{
	size_t n = 1;
	for (int i = 0; i < ndim; i++) {
		if (shape[i] != 0 && n > SIZE_MAX / 4 / shape[i])
			return 0;
		n *= shape[i];
	}
	*bytes = n * 4;
	return 1;
}

static void put_le16(unsigned char *p, unsigned v)
{
	p[0] = (unsigned char)(v & 0xff);
	p[1] = (unsigned char)((v >> 8) & 0xff);
}

static void put_le32(unsigned char *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (unsigned char)((v >> (8 * i)) & 0xff);
}

static uint32_t get_le32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static unsigned get_le16(const unsigned char *p)
{
	return (unsigned)p[0] | (unsigned)p[1] << 8;
}

/* 4-byte values between host order and little-endian (the same operation
 * both ways). */
static void copy_le32(unsigned char *dst, const unsigned char *src, size_t count)
{
	const uint32_t one = 1;
	if (*(const unsigned char *)&one == 1) {
		memcpy(dst, src, count * 4);
		return;
	}
	for (size_t i = 0; i < count; i++)
		for (int b = 0; b < 4; b++)
			dst[4 * i + b] = src[4 * i + 3 - b];
}

sl_status npy_encode(enum npy_type type, int ndim, const size_t *shape, const void *data,
		     void **out, size_t *len, struct sl_error *err)
{
	*out = NULL;
	*len = 0;
	size_t bytes;
	if (ndim < 0 || ndim > NPY_MAX_DIMS || (type != NPY_TYPE_F32 && type != NPY_TYPE_I32))
		return status_set(err, SL_ERR_ARG, "npy: %d dimensions, type %d", ndim, (int)type);
	if (!checked_bytes(ndim, shape, &bytes))
		return status_set(err, SL_ERR_TOO_LARGE, "npy: array too large");
	char dict[512];
	int off = snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': (",
			   type == NPY_TYPE_F32 ? "<f4" : "<i4");
	for (int i = 0; i < ndim; i++)
		off += snprintf(dict + off, sizeof dict - (size_t)off, "%zu%s", shape[i],
				ndim == 1 ? "," : (i + 1 < ndim ? ", " : ""));
	off += snprintf(dict + off, sizeof dict - (size_t)off, "), }");
	/* magic 6 + version 2 + length 2 + dict + padding + '\n' = multiple of 64 */
	size_t base = 10 + (size_t)off + 1;
	size_t pad = (64 - base % 64) % 64;
	size_t hlen = (size_t)off + pad + 1;
	unsigned char *buf = malloc(10 + hlen + bytes);
	if (!buf)
		return status_set(err, SL_ERR_NOMEM, "npy: %zu bytes", 10 + hlen + bytes);
	memcpy(buf, npy_magic, 6);
	buf[6] = 1;
	buf[7] = 0;
	put_le16(buf + 8, (unsigned)hlen);
	memcpy(buf + 10, dict, (size_t)off);
	memset(buf + 10 + off, ' ', pad);
	buf[10 + hlen - 1] = '\n';
	if (bytes)
		copy_le32(buf + 10 + hlen, data, bytes / 4);
	*out = buf;
	*len = 10 + hlen + bytes;
	return SL_OK;
}

/* The value after "'key':" in a header dict, skipping spaces; NULL if absent. */
static const char *dict_value(const char *h, const char *key)
{
	char pat[32];
	snprintf(pat, sizeof pat, "'%s':", key);
	const char *p = strstr(h, pat);
	if (!p)
		return NULL;
	p += strlen(pat);
	while (*p == ' ')
		p++;
	return p;
}

sl_status npy_decode(const void *buf, size_t len, struct npy_array *out, struct sl_error *err)
{
	memset(out, 0, sizeof *out);
	const unsigned char *b = buf;
	if (len < 10 || memcmp(b, npy_magic, 6) != 0)
		return status_set(err, SL_ERR_FORMAT, "npy: not a .npy array (bad magic)");
	size_t hstart, hlen;
	if (b[6] == 1) {
		hstart = 10;
		hlen = get_le16(b + 8);
	} else if ((b[6] == 2 || b[6] == 3) && len >= 12) {
		hstart = 12;
		hlen = get_le32(b + 8);
	} else {
		return status_set(err, SL_ERR_FORMAT, "npy: version %d.%d is not supported", b[6], b[7]);
	}
	if (hlen > len - hstart || hlen > 65536)
		return status_set(err, SL_ERR_FORMAT, "npy: header length %zu beyond the data", hlen);
	char h[65537];
	memcpy(h, b + hstart, hlen);
	h[hlen] = '\0';
	const char *descr = dict_value(h, "descr"), *order = dict_value(h, "fortran_order");
	const char *shape = dict_value(h, "shape");
	if (!descr || !order || !shape)
		return status_set(err, SL_ERR_FORMAT, "npy: header lacks descr, fortran_order or shape");
	if (strncmp(descr, "'<f4'", 5) == 0)
		out->type = NPY_TYPE_F32;
	else if (strncmp(descr, "'<i4'", 5) == 0)
		out->type = NPY_TYPE_I32;
	else
		return status_set(err, SL_ERR_UNSUPPORTED,
				  "npy: dtype %.8s is not supported (only '<f4' and '<i4')", descr);
	if (strncmp(order, "False", 5) != 0)
		return status_set(err, SL_ERR_UNSUPPORTED, "npy: Fortran order is not supported");
	if (*shape != '(')
		return status_set(err, SL_ERR_FORMAT, "npy: shape is not a tuple");
	const char *p = shape + 1;
	for (;;) {
		while (*p == ' ' || *p == ',')
			p++;
		if (*p == ')')
			break;
		if (out->ndim == NPY_MAX_DIMS)
			return status_set(err, SL_ERR_UNSUPPORTED, "npy: more than %d dimensions",
					  NPY_MAX_DIMS);
		char *end;
		errno = 0;
		unsigned long long v = strtoull(p, &end, 10);
		if (end == p || errno || *p == '-')
			return status_set(err, SL_ERR_FORMAT, "npy: bad shape '%.40s'", shape);
		out->shape[out->ndim++] = (size_t)v;
		p = end;
	}
	size_t bytes;
	if (!checked_bytes(out->ndim, out->shape, &bytes) || bytes != len - hstart - hlen)
		return status_set(err, SL_ERR_FORMAT, "npy: shape wants %zu data bytes, file has %zu",
				  checked_bytes(out->ndim, out->shape, &bytes) ? bytes : 0,
				  len - hstart - hlen);
	out->data = malloc(bytes ? bytes : 1);
	if (!out->data)
		return status_set(err, SL_ERR_NOMEM, "npy: %zu bytes", bytes);
	if (bytes)
		copy_le32(out->data, b + hstart + hlen, bytes / 4);
	return SL_OK;
}

void npy_array_free(struct npy_array *a)
{
	free(a->data);
	memset(a, 0, sizeof *a);
}

sl_status npy_write(const char *path, enum npy_type type, int ndim, const size_t *shape,
		    const void *data, struct sl_error *err)
{
	void *buf;
	size_t len;
	sl_status st = npy_encode(type, ndim, shape, data, &buf, &len, err);
	if (st != SL_OK)
		return st;
	st = io_write_file(path, buf, len, err);
	free(buf);
	return st;
}

/* The whole file in memory. */
static sl_status slurp(const char *path, unsigned char **out, size_t *len, struct sl_error *err)
{
	*out = NULL;
	FILE *f = fopen(path, "rb");
	if (!f)
		return status_set(err, SL_ERR_IO, "%s: cannot open", path);
	unsigned char *buf = NULL;
	size_t n = 0, cap = 0;
	for (;;) {
		if (n == cap) {
			size_t ncap = cap ? cap * 2 : 1 << 16;
			unsigned char *nb = realloc(buf, ncap);
			if (!nb) {
				free(buf);
				fclose(f);
				return status_set(err, SL_ERR_NOMEM, "%s: reading", path);
			}
			buf = nb;
			cap = ncap;
		}
		size_t got = fread(buf + n, 1, cap - n, f);
		n += got;
		if (got == 0)
			break;
	}
	int bad = ferror(f);
	fclose(f);
	if (bad) {
		free(buf);
		return status_set(err, SL_ERR_IO, "%s: read error", path);
	}
	*out = buf;
	*len = n;
	return SL_OK;
}

sl_status npy_read(const char *path, struct npy_array *out, struct sl_error *err)
{
	unsigned char *buf;
	size_t len;
	sl_status st = slurp(path, &buf, &len, err);
	if (st != SL_OK)
		return st;
	st = npy_decode(buf, len, out, err);
	free(buf);
	if (st != SL_OK && err) {
		char msg[sizeof err->msg];
		snprintf(msg, sizeof msg, "%s", err->msg);
		status_set(err, st, "%s: %s", path, msg);
	}
	return st;
}

/* ---- ZIP (stored members, no compression) ------------------------------ */

#define ZIP_LOCAL_SIG 0x04034b50u
#define ZIP_CENTRAL_SIG 0x02014b50u
#define ZIP_END_SIG 0x06054b50u
#define ZIP_DOS_DATE 0x21 /* 1980-01-01: fixed, so the same run gives the same bytes */
#define ZIP_MAX_MEMBERS 4096

struct npz_member {
	char name[128];
	uint32_t crc, size, offset;
};

struct npz_writer {
	struct io_atomic file;
	char *path;
	uint64_t offset;
	int count;
	struct npz_member members[ZIP_MAX_MEMBERS];
};

sl_status npz_open(const char *path, struct npz_writer **out, struct sl_error *err)
{
	*out = NULL;
	struct npz_writer *z = calloc(1, sizeof *z);
	char *p = strdup(path);
	if (!z || !p) {
		free(z);
		free(p);
		return status_set(err, SL_ERR_NOMEM, "%s: archive", path);
	}
	sl_status st = io_atomic_open(&z->file, path, err);
	if (st != SL_OK) {
		free(z);
		free(p);
		return st;
	}
	z->path = p;
	*out = z;
	return SL_OK;
}

void npz_abort(struct npz_writer *z)
{
	if (!z)
		return;
	io_atomic_abort(&z->file);
	free(z->path);
	free(z);
}

static sl_status put_bytes(struct npz_writer *z, const void *p, size_t n, struct sl_error *err)
{
	if (n && fwrite(p, 1, n, z->file.f) != n)
		return status_set(err, SL_ERR_IO, "writing %s failed: %s", z->path,
				  errno ? strerror(errno) : "write error");
	z->offset += n;
	return SL_OK;
}

sl_status npz_add_bytes(struct npz_writer *z, const char *name, const void *data, size_t len,
			struct sl_error *err)
{
	size_t nlen = strlen(name);
	if (nlen == 0 || nlen >= sizeof z->members[0].name)
		return status_set(err, SL_ERR_ARG, "%s: member name '%s' is empty or too long",
				  z->path, name);
	if (z->count == ZIP_MAX_MEMBERS)
		return status_set(err, SL_ERR_TOO_LARGE, "%s: more than %d members", z->path,
				  ZIP_MAX_MEMBERS);
	if (len > 0xfffffffeu || z->offset + len + 30 + nlen > 0xfffffffeu)
		return status_set(err, SL_ERR_TOO_LARGE,
				  "%s: over 4 GiB, which a zip archive without zip64 cannot hold",
				  z->path);
	struct npz_member *m = &z->members[z->count];
	snprintf(m->name, sizeof m->name, "%s", name);
	uLong crc = crc32(0L, Z_NULL, 0);
	for (size_t done = 0; done < len;) {
		size_t chunk = len - done > (1u << 30) ? (1u << 30) : len - done;
		crc = crc32(crc, (const Bytef *)data + done, (uInt)chunk);
		done += chunk;
	}
	m->crc = (uint32_t)crc;
	m->size = (uint32_t)len;
	m->offset = (uint32_t)z->offset;
	unsigned char h[30] = {0};
	put_le32(h, ZIP_LOCAL_SIG);
	put_le16(h + 4, 20);          /* version needed: 2.0 */
	put_le16(h + 12, ZIP_DOS_DATE);
	put_le32(h + 14, m->crc);
	put_le32(h + 18, m->size);    /* compressed = uncompressed: stored */
	put_le32(h + 22, m->size);
	put_le16(h + 26, (unsigned)nlen);
	sl_status st = put_bytes(z, h, sizeof h, err);
	if (st == SL_OK)
		st = put_bytes(z, name, nlen, err);
	if (st == SL_OK)
		st = put_bytes(z, data, len, err);
	if (st == SL_OK)
		z->count++;
	return st;
}

sl_status npz_add_array(struct npz_writer *z, const char *name, enum npy_type type, int ndim,
			const size_t *shape, const void *data, struct sl_error *err)
{
	char member[140];
	if (snprintf(member, sizeof member, "%s.npy", name) >= (int)sizeof member)
		return status_set(err, SL_ERR_ARG, "%s: member name '%s' is too long", z->path, name);
	void *buf;
	size_t len;
	sl_status st = npy_encode(type, ndim, shape, data, &buf, &len, err);
	if (st != SL_OK)
		return st;
	st = npz_add_bytes(z, member, buf, len, err);
	free(buf);
	return st;
}

sl_status npz_commit(struct npz_writer *z, struct sl_error *err)
{
	uint64_t start = z->offset;
	sl_status st = SL_OK;
	for (int i = 0; i < z->count && st == SL_OK; i++) {
		const struct npz_member *m = &z->members[i];
		size_t nlen = strlen(m->name);
		unsigned char h[46] = {0};
		put_le32(h, ZIP_CENTRAL_SIG);
		put_le16(h + 4, 20);  /* made by: MS-DOS, 2.0 */
		put_le16(h + 6, 20);
		put_le16(h + 14, ZIP_DOS_DATE);
		put_le32(h + 16, m->crc);
		put_le32(h + 20, m->size);
		put_le32(h + 24, m->size);
		put_le16(h + 28, (unsigned)nlen);
		put_le32(h + 42, m->offset);
		st = put_bytes(z, h, sizeof h, err);
		if (st == SL_OK)
			st = put_bytes(z, m->name, nlen, err);
	}
	if (st == SL_OK && z->offset > 0xfffffffeu)
		st = status_set(err, SL_ERR_TOO_LARGE, "%s: over 4 GiB", z->path);
	if (st == SL_OK) {
		unsigned char e[22] = {0};
		put_le32(e, ZIP_END_SIG);
		put_le16(e + 8, (unsigned)z->count);
		put_le16(e + 10, (unsigned)z->count);
		put_le32(e + 12, (uint32_t)(z->offset - start));
		put_le32(e + 16, (uint32_t)start);
		st = put_bytes(z, e, sizeof e, err);
	}
	if (st != SL_OK) {
		npz_abort(z);
		return st;
	}
	st = io_atomic_commit(&z->file, err);
	free(z->path);
	free(z);
	return st;
}

/* Find member name in an archive held in memory; on success *data points
 * into buf. */
static sl_status zip_find(const char *path, const unsigned char *buf, size_t len,
			  const char *name, const unsigned char **data, size_t *size,
			  struct sl_error *err)
{
	if (len < 22)
		return status_set(err, SL_ERR_FORMAT, "%s: not a zip archive", path);
	size_t e = len - 22, stop = len > 22 + 65535 ? len - 22 - 65535 : 0;
	while (get_le32(buf + e) != ZIP_END_SIG) {
		if (e == stop)
			return status_set(err, SL_ERR_FORMAT, "%s: no zip directory", path);
		e--;
	}
	unsigned count = get_le16(buf + e + 10);
	size_t cd = get_le32(buf + e + 16), nlen = strlen(name);
	for (unsigned i = 0; i < count; i++) {
		if (cd > len || len - cd < 46 || get_le32(buf + cd) != ZIP_CENTRAL_SIG)
			return status_set(err, SL_ERR_FORMAT, "%s: damaged zip directory", path);
		size_t n = get_le16(buf + cd + 28), x = get_le16(buf + cd + 30),
		       c = get_le16(buf + cd + 32);
		if (len - cd - 46 < n)
			return status_set(err, SL_ERR_FORMAT, "%s: damaged zip directory", path);
		if (n == nlen && memcmp(buf + cd + 46, name, n) == 0) {
			unsigned method = get_le16(buf + cd + 10);
			uint32_t crc = get_le32(buf + cd + 16), csize = get_le32(buf + cd + 20);
			size_t off = get_le32(buf + cd + 42);
			if (method != 0)
				return status_set(err, SL_ERR_UNSUPPORTED,
						  "%s: member %s is compressed (method %u)", path,
						  name, method);
			if (off > len || len - off < 30 || get_le32(buf + off) != ZIP_LOCAL_SIG)
				return status_set(err, SL_ERR_FORMAT, "%s: damaged member %s", path,
						  name);
			size_t dstart = off + 30 + get_le16(buf + off + 26) + get_le16(buf + off + 28);
			if (dstart > len || len - dstart < csize)
				return status_set(err, SL_ERR_FORMAT, "%s: member %s is truncated", path,
						  name);
			if ((uint32_t)crc32(crc32(0L, Z_NULL, 0), buf + dstart, csize) != crc)
				return status_set(err, SL_ERR_FORMAT, "%s: member %s fails its CRC",
						  path, name);
			*data = buf + dstart;
			*size = csize;
			return SL_OK;
		}
		cd += 46 + n + x + c;
	}
	return status_set(err, SL_ERR_ARG, "%s: no member %s", path, name);
}

sl_status npz_read_bytes(const char *path, const char *name, char **data, size_t *len,
			 struct sl_error *err)
{
	*data = NULL;
	*len = 0;
	unsigned char *buf;
	size_t n;
	sl_status st = slurp(path, &buf, &n, err);
	if (st != SL_OK)
		return st;
	const unsigned char *m = NULL;
	size_t size = 0;
	st = zip_find(path, buf, n, name, &m, &size, err);
	if (st == SL_OK) {
		*data = malloc(size + 1);
		if (!*data) {
			st = status_set(err, SL_ERR_NOMEM, "%s: member %s", path, name);
		} else {
			memcpy(*data, m, size);
			(*data)[size] = '\0';
			*len = size;
		}
	}
	free(buf);
	return st;
}

sl_status npz_read_array(const char *path, const char *name, struct npy_array *out,
			 struct sl_error *err)
{
	memset(out, 0, sizeof *out);
	char member[140];
	snprintf(member, sizeof member, "%s.npy", name);
	char *data;
	size_t len;
	sl_status st = npz_read_bytes(path, member, &data, &len, err);
	if (st != SL_OK)
		return st;
	st = npy_decode(data, len, out, err);
	free(data);
	return st;
}
