/* arch: layer specs read, checked and written back (see arch.h). */
#include "sectorlab/arch.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sectorlab/conv.h"
#include "sectorlab/sector.h"

/* The paper's activation: leaky ReLU with slope 0.1 (DESIGN.md §2). */
#define ARCH_DEFAULT_SLOPE 0.1f
#define ARCH_MAX_UNITS (1 << 24)
#define ARCH_MAX_KERNEL 64
#define ARCH_MAX_TOKENS 8

/*
 * The activations a spec may name.  Those nn implements map to an nn_act and
 * take their sector from sector.h; the others are listed with their sector
 * (the range of their derivative) so that the refusal can say why.
 */
static const struct {
	const char *name;
	enum sector_act_kind sector; /* implemented: the sector table's entry */
	bool implemented;
	double alpha, beta;          /* not implemented: the sector */
	const char *note;
} activations[] = {
	{"leaky:A", SECTOR_ACT_LEAKY, true, 0, 0, "leaky ReLU, slope A (0 to 1) below zero"},
	{"relu", SECTOR_ACT_RELU, true, 0, 0, "leaky:0"},
	{"tanh", SECTOR_ACT_TANH, true, 0, 0, ""},
	{"none", SECTOR_ACT_IDENTITY, true, 0, 0, "the identity (also \"identity\")"},
	{"gelu", SECTOR_ACT_IDENTITY, false, -0.17, 1.13, ""},
	{"silu", SECTOR_ACT_IDENTITY, false, -0.10, 1.10, "also \"swish\""},
	{"sigmoid", SECTOR_ACT_IDENTITY, false, 0, 0.25, ""},
};

#define NACTS ((int)(sizeof activations / sizeof activations[0]))

static const char *usable_reason(double alpha, double beta)
{
	if (alpha < 0 && beta > 0)
		return "alpha < 0 < beta makes p = alpha beta negative, and Theorem 4 needs p >= 0";
	return NULL;
}

char *arch_activations(char *buf, size_t cap)
{
	size_t o = 0;
	buf[0] = '\0';
	for (int i = 0; i < NACTS && o < cap; i++) {
		struct sector_act s;
		double a = activations[i].alpha, b = activations[i].beta;
		if (activations[i].implemented &&
		    sector_act(activations[i].sector, ARCH_DEFAULT_SLOPE, &s, NULL) == SL_OK)
			a = s.alpha, b = s.beta;
		const char *why = usable_reason(a, b);
		int n;
		if (activations[i].implemented)
			n = snprintf(buf + o, cap - o, "  %-8s sector [%g, %g]%s%s%s\n",
				     activations[i].name, a, b,
				     i == 0 ? " for A = 0.1" : "", *activations[i].note ? "; " : "",
				     activations[i].note);
		else
			n = snprintf(buf + o, cap - o, "  %-8s sector [%g, %g]: %s\n",
				     activations[i].name, a, b,
				     why ? "refused (Theorem 4 needs alpha beta >= 0)"
					 : "not implemented (use tanh)");
		o += n > 0 ? (size_t)n : 0;
	}
	return buf;
}

/* ---- Reading ---- */

/* The parse state: the spec being built and where the error goes. */
struct spec_parser {
	struct arch *a;
	const char *item;        /* the item being read, for messages */
	bool act_open;           /* the last layer is weighted and has no activation yet */
	struct sl_error *err;
};

static sl_status bad(struct spec_parser *p, const char *what)
{
	return status_set(p->err, SL_ERR_ARG, "layer spec: '%s': %s", p->item, what);
}

/* A whole-string integer in [lo, hi]. */
static bool parse_int(const char *s, int lo, int hi, int *out)
{
	if (!isdigit((unsigned char)*s))
		return false;
	errno = 0;
	char *end;
	long v = strtol(s, &end, 10);
	if (*end || errno || v < lo || v > hi)
		return false;
	*out = (int)v;
	return true;
}

/* "5x5" or "5" (a square kernel); kernels are square in nn. */
static bool parse_kernel(const char *s, int *k)
{
	char a[16];
	const char *x = strchr(s, 'x');
	if (!x)
		return parse_int(s, 1, ARCH_MAX_KERNEL, k);
	size_t n = (size_t)(x - s);
	if (n == 0 || n >= sizeof a)
		return false;
	memcpy(a, s, n);
	a[n] = '\0';
	int k2;
	return parse_int(a, 1, ARCH_MAX_KERNEL, k) && parse_int(x + 1, 1, ARCH_MAX_KERNEL, &k2) &&
	       k2 == *k;
}

static sl_status add_layer(struct spec_parser *p, struct nn_layer_spec s)
{
	if (p->a->nlayers == NN_MAX_LAYERS)
		return bad(p, "more than 16 layers (pooling and flatten count)");
	p->a->layers[p->a->nlayers++] = s;
	p->act_open = s.kind == NN_DENSE || s.kind == NN_CONV;
	return SL_OK;
}

static sl_status parse_activation(struct spec_parser *p, const char *word)
{
	enum nn_act act = NN_ACT_IDENTITY;
	float slope = 0;
	if (strncmp(word, "leaky:", 6) == 0) {
		errno = 0;
		char *end;
		double a = strtod(word + 6, &end);
		if (end == word + 6 || *end || errno || !isfinite(a))
			return bad(p, "leaky needs its slope, e.g. leaky:0.1");
		struct sector_act s;
		if (sector_act(SECTOR_ACT_LEAKY, a, &s, p->err) != SL_OK)
			return SL_ERR_ARG;
		const char *why = usable_reason(s.alpha, s.beta);
		if (why)
			return status_set(p->err, SL_ERR_UNSUPPORTED,
					  "layer spec: '%s': sector [%g, %g]: %s", p->item, s.alpha,
					  s.beta, why);
		if (a > 1)
			return status_set(p->err, SL_ERR_UNSUPPORTED,
					  "layer spec: '%s': a slope above 1 makes the activation "
					  "%g-Lipschitz; sectorlab's bounds count activations as "
					  "1-Lipschitz (slopes 0 to 1)",
					  p->item, a);
		act = NN_ACT_LEAKY_RELU, slope = (float)a;
	} else if (strcmp(word, "leaky") == 0) {
		return bad(p, "leaky needs its slope, e.g. leaky:0.1");
	} else if (strcmp(word, "relu") == 0) {
		act = NN_ACT_LEAKY_RELU;
	} else if (strcmp(word, "tanh") == 0) {
		act = NN_ACT_TANH;
	} else if (strcmp(word, "none") == 0 || strcmp(word, "identity") == 0) {
		act = NN_ACT_IDENTITY;
	} else {
		const char *name = strcmp(word, "swish") == 0 ? "silu" : word;
		for (int i = 0; i < NACTS; i++) {
			if (activations[i].implemented || strcmp(activations[i].name, name) != 0)
				continue;
			const char *why = usable_reason(activations[i].alpha, activations[i].beta);
			return status_set(p->err, SL_ERR_UNSUPPORTED,
					  "layer spec: '%s': sector [%g, %g]: %s", p->item,
					  activations[i].alpha, activations[i].beta,
					  why ? why : "not implemented in sectorlab (tanh is)");
		}
		return status_set(p->err, SL_ERR_ARG,
				  "layer spec: '%s': unknown layer or activation (layers: dense N, "
				  "conv C kxk [stride s] [pad same|valid|p], maxpool kxk[/s], "
				  "flatten; activations: leaky:A, relu, tanh, none)",
				  p->item);
	}
	if (!p->act_open)
		return bad(p, p->a->nlayers ? "an activation must follow the dense or conv layer "
					      "it applies to, once"
					    : "an activation before any layer");
	struct nn_layer_spec *l = &p->a->layers[p->a->nlayers - 1];
	l->act = act;
	l->slope = slope;
	p->act_open = false;
	return SL_OK;
}

static sl_status parse_input(struct spec_parser *p, char **tok, int ntok)
{
	if (p->a->nlayers)
		return bad(p, "the input shape comes first");
	if (ntok != 2)
		return bad(p, "expected 'input CxHxW' or 'input N'");
	int c, h = 1, w = 1;
	char *s = tok[1], *x1 = strchr(s, 'x');
	if (x1) {
		char *x2 = strchr(x1 + 1, 'x');
		if (!x2)
			return bad(p, "expected 'input CxHxW' or 'input N'");
		*x1 = *x2 = '\0';
		if (!parse_int(s, 1, 4096, &c) || !parse_int(x1 + 1, 1, 4096, &h) ||
		    !parse_int(x2 + 1, 1, 4096, &w))
			return bad(p, "input sizes must be 1 to 4096");
	} else if (!parse_int(s, 1, ARCH_MAX_UNITS, &c)) {
		return bad(p, "expected 'input CxHxW' or 'input N'");
	}
	p->a->input = (struct nn_shape){c, h, w};
	return SL_OK;
}

static sl_status parse_item(struct spec_parser *p, char **tok, int ntok)
{
	struct nn_layer_spec s = {.act = NN_ACT_IDENTITY};
	const char *kw = tok[0];
	if (strcmp(kw, "input") == 0)
		return parse_input(p, tok, ntok);
	if (strcmp(kw, "dense") == 0) {
		if (ntok != 2 || !parse_int(tok[1], 1, ARCH_MAX_UNITS, &s.out))
			return bad(p, "expected 'dense N' with N from 1 to 16777216");
		s.kind = NN_DENSE;
		return add_layer(p, s);
	}
	if (strcmp(kw, "flatten") == 0) {
		if (ntok != 1)
			return bad(p, "flatten takes nothing");
		s.kind = NN_FLATTEN;
		return add_layer(p, s);
	}
	if (strcmp(kw, "maxpool") == 0) {
		char *slash = ntok == 2 ? strchr(tok[1], '/') : NULL;
		if (slash)
			*slash = '\0';
		s.kind = NN_MAXPOOL;
		if (ntok != 2 || !parse_kernel(tok[1], &s.k) ||
		    (slash && !parse_int(slash + 1, 1, ARCH_MAX_KERNEL, &s.stride)))
			return bad(p, "expected 'maxpool kxk' or 'maxpool kxk/s' (k, s from 1 to 64)");
		if (!slash)
			s.stride = s.k;
		return add_layer(p, s);
	}
	if (strcmp(kw, "conv") == 0) {
		s.kind = NN_CONV;
		s.stride = 1;
		if (ntok < 3 || !parse_int(tok[1], 1, 65536, &s.out) || !parse_kernel(tok[2], &s.k))
			return bad(p, "expected 'conv C kxk [stride s] [pad same|valid|p]'");
		bool same = false, have_stride = false, have_pad = false;
		for (int i = 3; i < ntok; i += 2) {
			if (i + 1 == ntok)
				return bad(p, "stride and pad take a value");
			if (strcmp(tok[i], "stride") == 0 && !have_stride) {
				have_stride = true;
				if (!parse_int(tok[i + 1], 1, ARCH_MAX_KERNEL, &s.stride))
					return bad(p, "stride must be 1 to 64");
			} else if (strcmp(tok[i], "pad") == 0 && !have_pad) {
				have_pad = true;
				if (strcmp(tok[i + 1], "same") == 0)
					same = true;
				else if (strcmp(tok[i + 1], "valid") == 0)
					s.pad = 0;
				else if (!parse_int(tok[i + 1], 0, ARCH_MAX_KERNEL, &s.pad))
					return bad(p, "pad is same, valid or 0 to 64");
			} else {
				return bad(p, "expected 'conv C kxk [stride s] [pad same|valid|p]'");
			}
		}
		if (same) {
			/* PyTorch pads an even kernel unevenly for "same" and refuses it
			 * with a stride; nn pads every side alike. */
			if (s.k % 2 == 0 || s.stride != 1)
				return bad(p, "pad same needs an odd kernel and stride 1");
			s.pad = (s.k - 1) / 2;
		}
		return add_layer(p, s);
	}
	if (ntok != 1)
		return bad(p, "unknown layer (dense, conv, maxpool, flatten) or activation");
	return parse_activation(p, kw);
}

static bool is_shorthand(const char *s)
{
	if (!isdigit((unsigned char)*s))
		return false;
	for (; *s; s++)
		if (!isdigit((unsigned char)*s) && *s != '-')
			return false;
	return true;
}

/* "784-100-10": dense layers, leaky 0.1 on all but the last. */
static sl_status parse_shorthand(char *text, struct arch *a, struct sl_error *err)
{
	int sizes[NN_MAX_LAYERS + 1], n = 0;
	for (char *t = text, *dash; t; t = dash ? dash + 1 : NULL) {
		dash = strchr(t, '-');
		if (dash)
			*dash = '\0';
		if (n == NN_MAX_LAYERS + 1)
			return status_set(err, SL_ERR_ARG, "layer spec: more than %d dense layers",
					  NN_MAX_LAYERS);
		if (!parse_int(t, 1, ARCH_MAX_UNITS, &sizes[n++]))
			return status_set(err, SL_ERR_ARG,
					  "layer spec: '%s': sizes must be 1 to 16777216, between "
					  "single dashes",
					  t);
	}
	if (n < 2)
		return status_set(err, SL_ERR_ARG,
				  "layer spec: a dense stack needs its input and at least one layer, "
				  "e.g. 784-100-10");
	a->input = (struct nn_shape){sizes[0], 1, 1};
	for (int i = 1; i < n; i++) {
		bool last = i == n - 1;
		a->layers[a->nlayers++] = (struct nn_layer_spec){
			.kind = NN_DENSE, .out = sizes[i],
			.act = last ? NN_ACT_IDENTITY : NN_ACT_LEAKY_RELU,
			.slope = last ? 0 : ARCH_DEFAULT_SLOPE};
	}
	return SL_OK;
}

static char *trim(char *s)
{
	while (isspace((unsigned char)*s))
		s++;
	size_t n = strlen(s);
	while (n && isspace((unsigned char)s[n - 1]))
		s[--n] = '\0';
	return s;
}

/* The layers' input sizes from the input shape, checked by the same rules
 * nn_build applies (conv_geom_init computes every output size). */
static sl_status propagate(struct arch *a, struct sl_error *err)
{
	struct nn_shape s = a->input;
	for (int i = 0; i < a->nlayers; i++) {
		struct nn_layer_spec *l = &a->layers[i];
		struct conv_geom g;
		char what[48];
		snprintf(what, sizeof what, "layer %d (%s)", i + 1,
			 l->kind == NN_DENSE ? "dense" : l->kind == NN_CONV ? "conv"
			 : l->kind == NN_MAXPOOL ? "maxpool" : "flatten");
		switch (l->kind) {
		case NN_DENSE:
			if ((size_t)s.c * s.h * s.w > ARCH_MAX_UNITS)
				return status_set(err, SL_ERR_ARG, "layer spec: %s: %d x %d x %d inputs",
						  what, s.c, s.h, s.w);
			l->in = s.c * s.h * s.w;
			if ((size_t)l->in * (size_t)l->out > (1u << 28))
				return status_set(err, SL_ERR_ARG,
						  "layer spec: %s: a %d x %d weight is too large", what,
						  l->out, l->in);
			s = (struct nn_shape){l->out, 1, 1};
			break;
		case NN_CONV:
		case NN_MAXPOOL:
			l->in = l->kind == NN_CONV ? s.c : 0;
			if (conv_geom_init(&g, s.c, s.h, s.w, l->kind == NN_CONV ? l->out : s.c, l->k,
					   l->stride ? l->stride : 1, l->pad, NULL) != SL_OK ||
			    s.h + 2 * l->pad < l->k || s.w + 2 * l->pad < l->k)
				return status_set(err, SL_ERR_ARG,
						  "layer spec: %s: a %dx%d window (stride %d, pad %d) "
						  "does not fit its %dx%dx%d input",
						  what, l->k, l->k, l->stride, l->pad, s.c, s.h, s.w);
			s = (struct nn_shape){g.cout, g.ho, g.wo};
			break;
		case NN_FLATTEN:
			s = (struct nn_shape){s.c * s.h * s.w, 1, 1};
			break;
		}
	}
	return SL_OK;
}

bool arch_has_input(const struct arch *a)
{
	return a->input.c > 0;
}

sl_status arch_parse(const char *text, struct arch *out, struct sl_error *err)
{
	memset(out, 0, sizeof *out);
	if (!text)
		return status_set(err, SL_ERR_ARG, "layer spec: none given");
	size_t len = strlen(text);
	if (len >= ARCH_TEXT)
		return status_set(err, SL_ERR_ARG, "layer spec: %zu characters (at most %d)", len,
				  ARCH_TEXT - 1);
	char buf[ARCH_TEXT];
	memcpy(buf, text, len + 1);
	char *s = trim(buf);
	sl_status st;
	if (!*s)
		return status_set(err, SL_ERR_ARG, "layer spec is empty");
	if (is_shorthand(s)) {
		st = parse_shorthand(s, out, err);
	} else {
		struct spec_parser p = {.a = out, .err = err};
		st = SL_OK;
		char *save = NULL;
		/* strtok_r would skip empty items; walk the commas by hand. */
		for (char *item = s; st == SL_OK && item; item = save) {
			char *comma = strchr(item, ',');
			save = comma ? comma + 1 : NULL;
			if (comma)
				*comma = '\0';
			item = trim(item);
			p.item = item;
			if (!*item) {
				st = status_set(err, SL_ERR_ARG,
						"layer spec: an empty item (two commas, or a comma "
						"at an end)");
				break;
			}
			char copy[ARCH_TEXT], *tok[ARCH_MAX_TOKENS + 1];
			snprintf(copy, sizeof copy, "%s", item);
			int ntok = 0;
			char *ts = NULL;
			for (char *t = strtok_r(copy, " \t\n", &ts); t; t = strtok_r(NULL, " \t\n", &ts))
				if (ntok < ARCH_MAX_TOKENS + 1)
					tok[ntok++] = t;
			if (ntok > ARCH_MAX_TOKENS)
				st = bad(&p, "too many words");
			else
				st = parse_item(&p, tok, ntok);
		}
	}
	if (st == SL_OK && arch_weighted_count(out) == 0)
		st = status_set(err, SL_ERR_ARG, "layer spec '%s' has no dense or conv layer", s);
	if (st == SL_OK && arch_has_input(out))
		st = propagate(out, err);
	if (st != SL_OK)
		memset(out, 0, sizeof *out);
	return st;
}

sl_status arch_fit_input(struct arch *a, struct nn_shape data, struct sl_error *err)
{
	struct nn_shape in = a->input;
	size_t want = (size_t)in.c * in.h * in.w, have = (size_t)data.c * data.h * data.w;
	bool flat = in.h == 1 && in.w == 1 && a->nlayers && a->layers[0].kind == NN_DENSE;
	if (arch_has_input(a) && !(flat && want == have) &&
	    !(in.c == data.c && in.h == data.h && in.w == data.w))
		return status_set(err, SL_ERR_ARG,
				  "%s%stakes %dx%dx%d inputs (%zu values) but the data's are "
				  "%dx%dx%d (%zu values)",
				  a->name, *a->name ? " " : "the layer spec ", in.c, in.h, in.w, want,
				  data.c, data.h, data.w, have);
	a->input = data;
	return propagate(a, err);
}

sl_status arch_build(const struct arch *a, int max_batch, struct nn_net **out,
		     struct sl_error *err)
{
	return arch_build_threads(a, max_batch, 0, out, err);
}

sl_status arch_build_threads(const struct arch *a, int max_batch, int threads,
			     struct nn_net **out, struct sl_error *err)
{
	*out = NULL;
	if (!arch_has_input(a))
		return status_set(err, SL_ERR_ARG, "layer spec: the input shape is not known");
	return nn_build_threads(a->input, a->layers, a->nlayers, max_batch, threads, out, err);
}

const char *arch_label(const struct arch *a)
{
	return *a->name ? a->name : "the layer spec";
}

int arch_weighted_count(const struct arch *a)
{
	int n = 0;
	for (int i = 0; i < a->nlayers; i++)
		n += a->layers[i].kind == NN_DENSE || a->layers[i].kind == NN_CONV;
	return n;
}

/* ---- Writing ---- */

const char *arch_float_text(float v, char *buf)
{
	for (int digits = 6; digits < 9; digits++) {
		snprintf(buf, 32, "%.*g", digits, (double)v);
		if (strtof(buf, NULL) == v)
			return buf;
	}
	snprintf(buf, 32, "%.9g", (double)v);
	return buf;
}

char *arch_format(const struct arch *a, char *buf, size_t cap)
{
	size_t o = 0;
	char num[32];
	buf[0] = '\0';
#define PUT(...)                                                                      \
	do {                                                                          \
		int n_ = snprintf(buf + o, o < cap ? cap - o : 0, __VA_ARGS__);       \
		o += n_ > 0 ? (size_t)n_ : 0;                                         \
	} while (0)
	const char *sep = "";
	if (arch_has_input(a)) {
		if (a->input.h == 1 && a->input.w == 1)
			PUT("input %d", a->input.c);
		else
			PUT("input %dx%dx%d", a->input.c, a->input.h, a->input.w);
		sep = ", ";
	}
	for (int i = 0; i < a->nlayers; i++, sep = ", ") {
		const struct nn_layer_spec *l = &a->layers[i];
		switch (l->kind) {
		case NN_DENSE:
			PUT("%sdense %d", sep, l->out);
			break;
		case NN_CONV:
			PUT("%sconv %d %dx%d", sep, l->out, l->k, l->k);
			if (l->stride > 1)
				PUT(" stride %d", l->stride);
			if (l->pad)
				PUT(" pad %d", l->pad);
			break;
		case NN_MAXPOOL:
			PUT("%smaxpool %dx%d/%d", sep, l->k, l->k, l->stride ? l->stride : l->k);
			continue;
		case NN_FLATTEN:
			PUT("%sflatten", sep);
			continue;
		}
		if (l->act == NN_ACT_LEAKY_RELU && l->slope == 0)
			PUT(", relu");
		else if (l->act == NN_ACT_LEAKY_RELU)
			PUT(", leaky:%s", arch_float_text(l->slope, num));
		else if (l->act == NN_ACT_TANH)
			PUT(", tanh");
	}
#undef PUT
	if (o >= cap && cap)
		buf[cap - 1] = '\0';
	return buf;
}

void arch_of_net(const struct nn_net *net, struct arch *out)
{
	memset(out, 0, sizeof *out);
	out->input = net->in_shape;
	out->nlayers = net->nlayers;
	for (int i = 0; i < net->nlayers; i++) {
		const struct nn_layer *l = &net->layers[i];
		struct nn_layer_spec *s = &out->layers[i];
		s->kind = l->kind;
		s->act = l->act;
		s->slope = l->slope;
		if (l->kind == NN_DENSE) {
			s->in = l->in, s->out = l->out;
		} else if (l->kind == NN_CONV || l->kind == NN_MAXPOOL) {
			s->in = l->kind == NN_CONV ? l->geom.cin : 0;
			s->out = l->kind == NN_CONV ? l->geom.cout : 0;
			s->k = l->geom.k, s->stride = l->geom.stride, s->pad = l->geom.pad;
		}
	}
}
