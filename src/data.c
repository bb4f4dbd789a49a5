/*
 * data: MNIST-style IDX files and CIFAR-10 binary batches (see data.h).
 *
 * Everything goes through zlib's gz* readers, which pass plain files through
 * untouched, so one code path serves .gz and uncompressed copies.  A reader
 * trusts nothing in a header: sizes are checked against fixed limits before
 * any allocation, and every file must hold exactly the bytes its header (or
 * its record size) promises, no fewer and no more.
 */
#include "sectorlab/data.h"

#include <assert.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

/* Limits that no genuine dataset comes near; anything past them is a corrupt
 * or hostile header, refused before allocating. */
#define DATA_MAX_EXAMPLES 10000000u
#define DATA_MAX_PIXEL_BYTES (1ull << 31)
#define DATA_MAX_SIDE 1024u
#define DATA_CLASSES 10u

#define IDX_IMAGES_MAGIC 0x00000803u /* unsigned bytes, 3 dimensions */
#define IDX_LABELS_MAGIC 0x00000801u /* unsigned bytes, 1 dimension */
#define IDX_IMAGES_HEADER 16u
#define IDX_LABELS_HEADER 8u

#define CIFAR_SIDE 32u
#define CIFAR_PIXELS (3u * CIFAR_SIDE * CIFAR_SIDE)
#define CIFAR_RECORD (1u + CIFAR_PIXELS) /* label byte, then R, G, B planes */

/* Where Debian's dataset-fashion-mnist package installs its four files. */
#define DEBIAN_FASHION_DIR "/usr/share/datasets/fashion-mnist"

/* gzread takes an unsigned int length: read big payloads in slices. */
#define READ_SLICE (1u << 20)

/* One input file, plain or gzip, and how much came out of it so far. */
struct reader {
	gzFile g;
	const char *path;
	uint64_t got; /* decompressed bytes delivered so far */
	bool cut;     /* a gzip stream ended before its trailer */
};

static void errno_text(int e, char *buf, size_t n)
{
	if (e == 0 || strerror_r(e, buf, n) != 0)
		snprintf(buf, n, "unknown reason");
}

static sl_status reader_open(struct reader *r, const char *path, struct sl_error *err)
{
	r->path = path;
	r->got = 0;
	r->cut = false;
	errno = 0;
	r->g = gzopen(path, "rb");
	if (!r->g) {
		char why[128];
		errno_text(errno, why, sizeof why);
		return status_set(err, SL_ERR_IO, "%s: cannot open (%s)", path, why);
	}
	/* Bigger than zlib's 8 KiB default: whole datasets stream through here. */
	gzbuffer(r->g, 1u << 17);
	return SL_OK;
}

static void reader_close(struct reader *r)
{
	if (r->g)
		gzclose(r->g);
	r->g = NULL;
}

/*
 * Read up to n bytes into buf; *got < n means the file ended.  Fails only on
 * a read error or corrupt compressed data.  A gzip stream cut short is not an
 * error here (zlib reports it as Z_BUF_ERROR): it shows up as a short read,
 * and r->cut remembers it for the message.  zlib notices the cut only when it
 * runs out of input while still owing output, so a file cut inside its 8-byte
 * gzip trailer can pass with every byte of content present but its CRC
 * unchecked; the length checks of the callers still hold.
 */
static sl_status reader_read(struct reader *r, void *buf, size_t n, size_t *got,
			     struct sl_error *err)
{
	uint8_t *p = buf;
	size_t done = 0;
	sl_status st = SL_OK;
	while (done < n) {
		size_t want = n - done < READ_SLICE ? n - done : READ_SLICE;
		int k = gzread(r->g, p + done, (unsigned)want);
		if (k > 0)
			done += (size_t)k;
		if (k >= 0 && (size_t)k == want)
			continue;
		int code = Z_OK;
		const char *zmsg = gzerror(r->g, &code);
		if (code == Z_ERRNO) {
			char why[128];
			errno_text(errno, why, sizeof why);
			st = status_set(err, SL_ERR_IO, "%s: read error (%s)", r->path, why);
		} else if (code == Z_MEM_ERROR) {
			st = status_set(err, SL_ERR_NOMEM, "%s: decompressing",
					r->path);
		} else if (code == Z_BUF_ERROR) {
			r->cut = true;
		} else if (code != Z_OK) {
			st = status_set(err, SL_ERR_FORMAT, "%s: corrupt gzip data (%s)", r->path,
					zmsg);
		}
		break;
	}
	r->got += done;
	*got = done;
	return st;
}

/* " (the gzip stream is cut short)" when it is, so a bad download is named. */
static const char *cut_note(const struct reader *r)
{
	return r->cut ? " (the gzip stream is cut short)" : "";
}

/*
 * Having read everything the header promised (expected bytes in all), make
 * sure nothing follows: trailing bytes mean the header and the payload
 * disagree, so the file is not what it claims to be.
 */
static sl_status reader_expect_end(struct reader *r, uint64_t expected, struct sl_error *err)
{
	uint8_t sink[1u << 16];
	size_t got = 0;
	do {
		sl_status st = reader_read(r, sink, sizeof sink, &got, err);
		if (st != SL_OK)
			return st;
	} while (got == sizeof sink);
	if (r->got > expected)
		return status_set(err, SL_ERR_FORMAT,
				  "%s: %llu trailing bytes: the header promises %llu bytes, "
				  "the file has %llu",
				  r->path, (unsigned long long)(r->got - expected),
				  (unsigned long long)expected, (unsigned long long)r->got);
	if (r->cut)
		return status_set(err, SL_ERR_FORMAT,
				  "%s: the gzip stream is cut short after %llu bytes", r->path,
				  (unsigned long long)r->got);
	return SL_OK;
}

static uint32_t read_be32(const uint8_t *b)
{
	return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}

/* Read an IDX header of size bytes and check its magic; fills head. */
static sl_status idx_read_header(struct reader *r, uint8_t *head, size_t size, uint32_t magic,
				 const char *what, struct sl_error *err)
{
	size_t got = 0;
	sl_status st = reader_read(r, head, size, &got, err);
	if (st != SL_OK)
		return st;
	if (got >= 4 && read_be32(head) != magic)
		return status_set(err, SL_ERR_FORMAT, "%s: bad magic 0x%08x (expected 0x%08x for %s)",
				  r->path, read_be32(head), magic, what);
	if (got < size)
		return status_set(err, SL_ERR_FORMAT,
				  "%s: truncated header: expected %zu bytes for %s, got %zu%s",
				  r->path, size, what, got, cut_note(r));
	return SL_OK;
}

/* Read exactly n payload bytes that complete a file of expected bytes. */
static sl_status read_payload(struct reader *r, void *buf, size_t n, uint64_t expected,
			      const char *what, struct sl_error *err)
{
	size_t got = 0;
	sl_status st = reader_read(r, buf, n, &got, err);
	if (st != SL_OK)
		return st;
	if (got < n)
		return status_set(err, SL_ERR_FORMAT,
				  "%s: truncated: expected %llu bytes (%s), got %llu%s", r->path,
				  (unsigned long long)expected, what, (unsigned long long)r->got,
				  cut_note(r));
	return reader_expect_end(r, expected, err);
}

static sl_status check_labels(const char *path, const uint8_t *labels, uint32_t n,
			      const char *unit, struct sl_error *err)
{
	for (uint32_t i = 0; i < n; i++)
		if (labels[i] >= DATA_CLASSES)
			return status_set(err, SL_ERR_FORMAT,
					  "%s: label %u in %s %u is out of range (expected 0..%u)",
					  path, labels[i], unit, i, DATA_CLASSES - 1);
	return SL_OK;
}

sl_status data_kind_parse(const char *name, enum data_kind *out, struct sl_error *err)
{
	if (name && strcmp(name, "mnist") == 0)
		*out = DATA_MNIST;
	else if (name && strcmp(name, "fashion") == 0)
		*out = DATA_FASHION;
	else if (name && (strcmp(name, "cifar10") == 0 || strcmp(name, "cifar-10") == 0))
		*out = DATA_CIFAR10;
	else
		return status_set(err, SL_ERR_ARG,
				  "unknown dataset \"%s\" (expected mnist, fashion or cifar10)",
				  name ? name : "(null)");
	return SL_OK;
}

const char *data_kind_name(enum data_kind kind)
{
	switch (kind) {
	case DATA_MNIST:
		return "mnist";
	case DATA_FASHION:
		return "fashion";
	case DATA_CIFAR10:
		return "cifar10";
	}
	return "unknown";
}

sl_status data_load_idx(const char *images_path, const char *labels_path,
			struct sl_dataset *out, struct sl_error *err)
{
	struct reader img = {0}, lab = {0};
	struct sl_dataset d = {0};
	uint8_t ihead[IDX_IMAGES_HEADER], lhead[IDX_LABELS_HEADER];
	uint32_t n = 0, rows = 0, cols = 0, nlabels = 0;
	uint64_t pixel_bytes = 0;
	char what[96];
	sl_status st;

	memset(out, 0, sizeof *out);
	st = reader_open(&img, images_path, err);
	if (st != SL_OK)
		goto out;
	st = idx_read_header(&img, ihead, sizeof ihead, IDX_IMAGES_MAGIC, "IDX images", err);
	if (st != SL_OK)
		goto out;
	n = read_be32(ihead + 4);
	rows = read_be32(ihead + 8);
	cols = read_be32(ihead + 12);
	if (rows < 1 || rows > DATA_MAX_SIDE || cols < 1 || cols > DATA_MAX_SIDE) {
		st = status_set(err, SL_ERR_FORMAT,
				"%s: absurd image size %ux%u (rows and cols must be 1..%u)",
				images_path, rows, cols, DATA_MAX_SIDE);
		goto out;
	}
	pixel_bytes = (uint64_t)n * rows * cols;
	if (n == 0 || n > DATA_MAX_EXAMPLES || pixel_bytes > DATA_MAX_PIXEL_BYTES) {
		st = status_set(err, SL_ERR_FORMAT,
				"%s: absurd image count %u of %ux%u (expected 1..%u images and at "
				"most %llu pixel bytes)",
				images_path, n, rows, cols, DATA_MAX_EXAMPLES,
				DATA_MAX_PIXEL_BYTES);
		goto out;
	}

	/* Both headers agree before anything big is allocated. */
	st = reader_open(&lab, labels_path, err);
	if (st != SL_OK)
		goto out;
	st = idx_read_header(&lab, lhead, sizeof lhead, IDX_LABELS_MAGIC, "IDX labels", err);
	if (st != SL_OK)
		goto out;
	nlabels = read_be32(lhead + 4);
	if (nlabels != n) {
		st = status_set(err, SL_ERR_FORMAT, "%s: %u labels, but %s holds %u images",
				labels_path, nlabels, images_path, n);
		goto out;
	}

	d.pixels = malloc((size_t)pixel_bytes);
	d.labels = malloc(n);
	if (!d.pixels || !d.labels) {
		st = status_set(err, SL_ERR_NOMEM, "%s: %u images of %ux%u",
				images_path, n, rows, cols);
		goto out;
	}
	snprintf(what, sizeof what, "%u-byte header + %u images of %ux%u", IDX_IMAGES_HEADER,
		 n, rows, cols);
	st = read_payload(&img, d.pixels, (size_t)pixel_bytes, IDX_IMAGES_HEADER + pixel_bytes,
			  what, err);
	if (st != SL_OK)
		goto out;
	snprintf(what, sizeof what, "%u-byte header + %u labels", IDX_LABELS_HEADER, n);
	st = read_payload(&lab, d.labels, n, IDX_LABELS_HEADER + (uint64_t)n, what, err);
	if (st != SL_OK)
		goto out;
	st = check_labels(labels_path, d.labels, n, "example", err);
	if (st != SL_OK)
		goto out;

	d.n = n;
	d.c = 1;
	d.h = rows;
	d.w = cols;
	d.classes = DATA_CLASSES;
	d.owned = true;
	snprintf(d.source, sizeof d.source, "%s", images_path);
	*out = d;
	d.pixels = NULL;
	d.labels = NULL;
out:
	reader_close(&img);
	reader_close(&lab);
	free(d.pixels);
	free(d.labels);
	return st;
}

/*
 * Read a whole file into *buf (grown as needed, capacity in *cap), refusing
 * more than limit bytes.  Sets *size to the bytes read.
 */
static sl_status read_all(struct reader *r, uint8_t **buf, size_t *cap, size_t *size,
			  uint64_t limit, struct sl_error *err)
{
	*size = 0;
	for (;;) {
		if (*size == *cap) {
			size_t grown = *cap ? *cap * 2 : (size_t)1 << 20;
			uint8_t *p = realloc(*buf, grown);
			if (!p)
				return status_set(err, SL_ERR_NOMEM, "%s: %zu bytes",
						  r->path, grown);
			*buf = p;
			*cap = grown;
		}
		size_t got = 0;
		sl_status st = reader_read(r, *buf + *size, *cap - *size, &got, err);
		if (st != SL_OK)
			return st;
		*size += got;
		if (*size > limit)
			return SL_ERR_TOO_LARGE; /* the caller words the message */
		if (*size < *cap)
			return SL_OK;
	}
}

sl_status data_load_cifar10(const char *const *paths, int npaths, struct sl_dataset *out,
			    struct sl_error *err)
{
	const uint64_t max_records = DATA_MAX_PIXEL_BYTES / CIFAR_PIXELS;
	struct reader r = {0};
	struct sl_dataset d = {0};
	uint8_t *raw = NULL; /* one file's records, (records, 1 + 3 * 32 * 32) */
	size_t raw_cap = 0, raw_size = 0;
	uint64_t n = 0;
	sl_status st = SL_OK;

	memset(out, 0, sizeof *out);
	if (!paths || npaths < 1) {
		st = status_set(err, SL_ERR_ARG, "CIFAR-10: no batch files given");
		goto out;
	}
	for (int f = 0; f < npaths; f++) {
		const char *path = paths[f];
		uint64_t limit = (max_records - n) * CIFAR_RECORD;
		st = reader_open(&r, path, err);
		if (st != SL_OK)
			goto out;
		st = read_all(&r, &raw, &raw_cap, &raw_size, limit, err);
		if (st == SL_ERR_TOO_LARGE) {
			st = status_set(err, SL_ERR_FORMAT,
					"%s: absurd size: more than %llu records of %u bytes in all",
					path, (unsigned long long)max_records, CIFAR_RECORD);
			goto out;
		}
		if (st != SL_OK)
			goto out;
		if (r.cut) {
			st = status_set(err, SL_ERR_FORMAT,
					"%s: the gzip stream is cut short after %zu bytes", path,
					raw_size);
			goto out;
		}
		reader_close(&r);
		if (raw_size == 0) {
			st = status_set(err, SL_ERR_FORMAT,
					"%s: empty file (expected records of %u bytes)", path,
					CIFAR_RECORD);
			goto out;
		}
		if (raw_size % CIFAR_RECORD != 0) {
			st = status_set(err, SL_ERR_FORMAT,
					"%s: %zu bytes is not a whole number of %u-byte records "
					"(%zu records and %zu bytes over)",
					path, raw_size, CIFAR_RECORD, raw_size / CIFAR_RECORD,
					raw_size % CIFAR_RECORD);
			goto out;
		}
		size_t records = raw_size / CIFAR_RECORD;
		uint8_t *pixels = realloc(d.pixels, (size_t)(n + records) * CIFAR_PIXELS);
		if (pixels)
			d.pixels = pixels;
		uint8_t *labels = realloc(d.labels, (size_t)(n + records));
		if (labels)
			d.labels = labels;
		if (!pixels || !labels) {
			st = status_set(err, SL_ERR_NOMEM, "%s: %llu images", path,
					(unsigned long long)(n + records));
			goto out;
		}
		/* A record is the label, then the R, G, B planes: already (C, H, W). */
		for (size_t i = 0; i < records; i++) {
			const uint8_t *rec = raw + i * CIFAR_RECORD;
			d.labels[n + i] = rec[0];
			memcpy(d.pixels + (n + i) * CIFAR_PIXELS, rec + 1, CIFAR_PIXELS);
		}
		st = check_labels(path, d.labels + n, (uint32_t)records, "record", err);
		if (st != SL_OK)
			goto out;
		n += records;
	}

	d.n = (uint32_t)n;
	d.c = 3;
	d.h = CIFAR_SIDE;
	d.w = CIFAR_SIDE;
	d.classes = DATA_CLASSES;
	d.owned = true;
	if (npaths == 1)
		snprintf(d.source, sizeof d.source, "%s", paths[0]);
	else
		snprintf(d.source, sizeof d.source, "%s (+%d more)", paths[0], npaths - 1);
	*out = d;
	d.pixels = NULL;
	d.labels = NULL;
out:
	reader_close(&r);
	free(raw);
	free(d.pixels);
	free(d.labels);
	return st;
}

/* The files that make up one split; the first one decides where it lives. */
struct split_files {
	const char *names[5];
	int count;
};

static bool is_file(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* Find dir/name or dir/name.gz; writes the path found into found[size]. */
static bool find_file(const char *dir, const char *name, char *found, size_t size)
{
	int k = snprintf(found, size, "%s/%s", dir, name);
	if (k > 0 && (size_t)k < size && is_file(found))
		return true;
	k = snprintf(found, size, "%s/%s.gz", dir, name);
	return k > 0 && (size_t)k < size && is_file(found);
}

static void split_files_for(enum data_kind kind, bool train, struct split_files *s)
{
	static const char *const cifar_train[] = {"data_batch_1.bin", "data_batch_2.bin",
						  "data_batch_3.bin", "data_batch_4.bin",
						  "data_batch_5.bin"};
	memset(s, 0, sizeof *s);
	if (kind == DATA_CIFAR10) {
		if (train) {
			memcpy(s->names, cifar_train, sizeof cifar_train);
			s->count = 5;
		} else {
			s->names[0] = "test_batch.bin";
			s->count = 1;
		}
		return;
	}
	s->names[0] = train ? "train-images-idx3-ubyte" : "t10k-images-idx3-ubyte";
	s->names[1] = train ? "train-labels-idx1-ubyte" : "t10k-labels-idx1-ubyte";
	s->count = 2;
}

/* Load the split from dir, which is known to hold its first file. */
static sl_status load_split_from(enum data_kind kind, const char *dir,
				 const struct split_files *s, struct sl_dataset *out,
				 struct sl_error *err)
{
	char paths[5][4096];
	const char *ptrs[5];
	for (int i = 0; i < s->count; i++) {
		if (!find_file(dir, s->names[i], paths[i], sizeof paths[i]))
			return status_set(err, SL_ERR_IO, "%s/%s[.gz] is missing (found %s)",
					  dir, s->names[i], paths[0]);
		ptrs[i] = paths[i];
	}
	if (kind == DATA_CIFAR10)
		return data_load_cifar10(ptrs, s->count, out, err);
	return data_load_idx(ptrs[0], ptrs[1], out, err);
}

/* The places a split is looked for, in order; their count. */
static int split_places(enum data_kind kind, const char *dir, char (*places)[4096])
{
	static const char *const subdirs[] = {"mnist", "fashion", "cifar-10-batches-bin"};
	int n = 0;
	snprintf(places[n++], sizeof places[0], "%s/%s", dir, subdirs[kind]);
	/* dir itself usually holds the embedded MNIST sample under the very file
	 * names Fashion-MNIST uses: Fashion is never looked for there, or digits
	 * would silently pass for clothes. */
	if (kind == DATA_FASHION)
		snprintf(places[n++], sizeof places[0], "%s", DEBIAN_FASHION_DIR);
	else
		snprintf(places[n++], sizeof places[0], "%s", dir);
	return n;
}

int data_split_files(enum data_kind kind, const char *dir, bool train, char (*paths)[4096],
		     int cap)
{
	if ((unsigned)kind > DATA_CIFAR10 || !dir)
		return 0;
	struct split_files s;
	split_files_for(kind, train, &s);
	char places[2][4096];
	int nplaces = split_places(kind, dir, places);
	for (int i = 0; i < nplaces; i++) {
		if (!find_file(places[i], s.names[0], paths[0], sizeof paths[0]))
			continue;
		int n = 0;
		for (int k = 0; k < s.count && n < cap; k++)
			if (find_file(places[i], s.names[k], paths[n], sizeof paths[n]))
				n++;
		return n;
	}
	return 0;
}

sl_status data_load(enum data_kind kind, const char *dir, bool train, struct sl_dataset *out,
		    struct sl_error *err)
{
	static const char *const titles[] = {"MNIST", "Fashion-MNIST", "CIFAR-10"};
	char places[2][4096];
	char looked[1024] = "";
	char found[4096];
	struct split_files s;

	memset(out, 0, sizeof *out);
	if ((unsigned)kind > DATA_CIFAR10 || !dir)
		return status_set(err, SL_ERR_ARG, "data_load: bad dataset kind %d or no directory",
				  (int)kind);
	split_files_for(kind, train, &s);
	int nplaces = split_places(kind, dir, places);
	for (int i = 0; i < nplaces; i++) {
		if (find_file(places[i], s.names[0], found, sizeof found))
			return load_split_from(kind, places[i], &s, out, err);
		size_t used = strlen(looked);
		int k = snprintf(looked + used, sizeof looked - used, "%s%s/", i ? ", " : "",
				 places[i]);
		if (k < 0 || (size_t)k >= sizeof looked - used)
			break; /* the list is already as long as a message can carry */
	}
	return status_set(err, SL_ERR_IO,
			  "no %s %s set: looked for %s[.gz] in %s; %s, or point --data-dir DIR "
			  "or SECTORLAB_DATA at a copy",
			  titles[kind], train ? "training" : "test", s.names[0], looked,
			  kind == DATA_FASHION ? "install it with `apt-get install "
						 "dataset-fashion-mnist`"
					       : "download it with `make data`");
}

sl_status data_view(const struct sl_dataset *d, uint32_t start, uint32_t count,
		    struct sl_dataset *out, struct sl_error *err)
{
	if (start > d->n || count > d->n - start)
		return status_set(err, SL_ERR_RANGE,
				  "%s: view of examples [%u, %llu) is outside [0, %u)", d->source,
				  start, (unsigned long long)start + count, d->n);
	struct sl_dataset v = *d;
	v.n = count;
	v.pixels = d->pixels + (size_t)start * data_dim(d);
	v.labels = d->labels + start;
	v.owned = false;
	*out = v;
	return SL_OK;
}

sl_status data_copy(const struct sl_dataset *d, struct sl_dataset *out, struct sl_error *err)
{
	struct sl_dataset c = *d;
	size_t bytes = (size_t)d->n * data_dim(d);
	c.pixels = malloc(bytes ? bytes : 1);
	c.labels = malloc(d->n ? d->n : 1);
	if (!c.pixels || !c.labels) {
		free(c.pixels);
		free(c.labels);
		return status_set(err, SL_ERR_NOMEM, "%s: a copy of %u examples", d->source, d->n);
	}
	memcpy(c.pixels, d->pixels, bytes);
	memcpy(c.labels, d->labels, d->n);
	c.owned = true;
	*out = c;
	return SL_OK;
}

void data_free(struct sl_dataset *d)
{
	if (!d)
		return;
	if (d->owned) {
		free(d->pixels);
		free(d->labels);
	}
	memset(d, 0, sizeof *d);
}

size_t data_dim(const struct sl_dataset *d)
{
	return (size_t)d->c * d->h * d->w;
}

void data_batch(const struct sl_dataset *d, const uint32_t *idx, size_t count, float *x,
		int *y)
{
	/* One division per byte value, rounded once, instead of per pixel. */
	float scale[256];
	for (int v = 0; v < 256; v++)
		scale[v] = (float)v / 255.0f - 0.5f;
	size_t dim = data_dim(d);
	for (size_t i = 0; i < count; i++) {
		size_t k = idx ? idx[i] : i;
		assert(k < d->n);
		const uint8_t *p = d->pixels + k * dim; /* (c, h, w) */
		float *row = x + i * dim;               /* (c, h, w) of x (count, c, h, w) */
		for (size_t j = 0; j < dim; j++)
			row[j] = scale[p[j]];
		if (y)
			y[i] = d->labels[k];
	}
}

uint8_t data_to_byte(float scaled)
{
	float v = (scaled + 0.5f) * 255.0f;
	if (!(v > 0.0f)) /* also catches NaN */
		return 0;
	if (v >= 255.0f)
		return 255;
	/* roundf, not a cast: 127.9 must come back as 128. */
	return (uint8_t)roundf(v);
}
