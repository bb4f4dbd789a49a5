/* sandwich: every bound of a network and the floor beneath them (see sandwich.h). */
#include "sectorlab/sandwich.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double seconds_now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static const char *const kind_names[SANDWICH_NKINDS] = {"product", "pair", "sector", "sdp",
							 "sdp-pair"};
static const char *const choice_names[] = {"product", "pair", "sdp", "sector", "best"};

const char *sandwich_kind_name(enum sandwich_kind k)
{
	return (unsigned)k < SANDWICH_NKINDS ? kind_names[k] : "?";
}

const char *sandwich_choice_name(enum sandwich_choice c)
{
	return (unsigned)c <= SANDWICH_USE_BEST ? choice_names[c] : "?";
}

sl_status sandwich_choice_parse(const char *s, enum sandwich_choice *out, struct sl_error *err)
{
	for (int c = 0; c <= SANDWICH_USE_BEST; c++)
		if (strcmp(s, choice_names[c]) == 0) {
			*out = (enum sandwich_choice)c;
			return SL_OK;
		}
	return status_set(err, SL_ERR_ARG,
			  "--bound takes product, pair, sdp, sector or best, got '%s'", s);
}

void sandwich_free(struct sandwich *s)
{
	for (int k = 0; k < SANDWICH_NKINDS; k++) {
		free(s->b[k].pair);
		s->b[k].pair = NULL;
	}
	free(s->floor_pair);
	s->floor_pair = NULL;
}

/* A bound's table from a network bound L. */
static sl_status set_network(struct sandwich *s, enum sandwich_kind k, double L, double secs,
			     struct sl_error *err)
{
	struct sandwich_bound *b = &s->b[k];
	b->pair = malloc(sizeof(double) * (size_t)s->classes * s->classes);
	if (!b->pair)
		return status_set(err, SL_ERR_NOMEM, "pair table");
	certify_pairs_from_gamma(L, s->classes, b->pair);
	b->L = L;
	b->state = SANDWICH_COMPUTED;
	b->seconds = secs;
	return SL_OK;
}

/* A failed optional bound: its state and note, from the status. */
static void set_failed(struct sandwich_bound *b, sl_status st, const struct sl_error *e)
{
	b->state = st == SL_ERR_TOO_LARGE     ? SANDWICH_TOO_LARGE
		   : st == SL_ERR_UNSUPPORTED ? SANDWICH_UNSUPPORTED
					      : SANDWICH_FAILED;
	snprintf(b->note, sizeof b->note, "%s", e->msg);
}

static double table_max(const double *pair, int classes)
{
	double m = 0;
	for (int k = 0; k < classes * classes; k++)
		m = fmax(m, pair[k]);
	return m;
}

/* Is some weighted layer's weight in use all zero? */
static bool has_zero_layer(const struct nn_net *net)
{
	for (int i = 0; i < net->nlayers; i++) {
		const struct nn_layer *l = &net->layers[i];
		if (!nn_layer_weighted(l))
			continue;
		bool zero = l->scale == 0;
		for (size_t k = 0; !zero && k < nn_layer_wsize(l); k++)
			if (l->w[k] != 0)
				break;
			else if (k + 1 == nn_layer_wsize(l))
				zero = true;
		if (zero)
			return true;
	}
	return false;
}

/* The pair bound: the last layer dense and affine, the rest's product. */
static sl_status pair_bound(const struct nn_net *net, const struct certificate *cert,
			    struct sandwich *s, struct sl_error *err)
{
	struct sandwich_bound *b = &s->b[SANDWICH_PAIR];
	const struct nn_layer *last = &net->layers[net->nlayers - 1];
	if (last->kind != NN_DENSE || last->act != NN_ACT_IDENTITY || cert->nlayers < 1) {
		b->state = SANDWICH_UNSUPPORTED;
		snprintf(b->note, sizeof b->note, "the last layer is not an affine dense layer");
		return SL_OK;
	}
	double before = 1;
	for (int j = 0; j + 1 < cert->nlayers; j++)
		before *= cert->layer[j].kind == SECTOR_LAYER_POOL ? cert->layer[j].k
								   : cert->layer[j].sigma;
	size_t sz = nn_layer_wsize(last);
	float *w = malloc(sizeof(float) * sz);
	b->pair = malloc(sizeof(double) * (size_t)s->classes * s->classes);
	if (!w || !b->pair) {
		free(w);
		return status_set(err, SL_ERR_NOMEM, "pair table");
	}
	nn_layer_weight_in_use(last, w);
	bounds_pair_from_last(w, last->wrows, last->wcols, before, b->pair);
	free(w);
	b->L = table_max(b->pair, s->classes);
	b->state = SANDWICH_COMPUTED;
	return SL_OK;
}

/* Ask o whether to go on with what. */
static bool stop(const struct sandwich_options *o, const char *what)
{
	return o->progress && o->progress(o->progress_ctx, what);
}

/* The sector search's stop hook: o's progress, asked before each SDP. */
struct sector_hook {
	const struct sandwich_options *o;
};

static bool sector_stop(void *ctx)
{
	const struct sector_hook *h = ctx;
	return stop(h->o, "the tightest sector");
}

/* Lipschitz floor from the first n images of ds. */
static sl_status run_floor(const struct bounds_mlp *m, const struct sl_dataset *ds,
			   const struct sandwich_options *o, struct sandwich *s,
			   struct sl_error *err)
{
	int n = o->floor_starts < (int)ds->n ? o->floor_starts : (int)ds->n;
	int d = m->dim[0];
	if (data_dim(ds) != (size_t)d)
		return status_set(err, SL_ERR_ARG, "%s: images have %zu values, network takes %d",
				  ds->source, data_dim(ds), d);
	float *xf = malloc(sizeof(float) * (size_t)n * d);
	double *xd = malloc(sizeof(double) * (size_t)n * d);
	int *y = malloc(sizeof(int) * (size_t)n);
	uint32_t *idx = malloc(sizeof(uint32_t) * (size_t)n);
	s->floor_pair = calloc((size_t)s->classes * s->classes, sizeof(double));
	sl_status st = SL_OK;
	if (!xf || !xd || !y || !idx || !s->floor_pair) {
		st = status_set(err, SL_ERR_NOMEM, "floor: %d images", n);
		goto out;
	}
	for (int i = 0; i < n; i++)
		idx[i] = (uint32_t)i;
	data_batch(ds, idx, (size_t)n, xf, y);
	for (size_t k = 0; k < (size_t)n * d; k++)
		xd[k] = xf[k];
	struct bounds_floor f = {.pair = s->floor_pair};
	double t0 = seconds_now();
	st = bounds_floor_lipschitz(m, xd, n, o->floor_steps, o->seed, &f, err);
	s->floor_seconds = seconds_now() - t0;
	s->floor_L = f.L;
	s->floor_pair_max = table_max(s->floor_pair, s->classes);
	s->floor_evaluations = f.evaluations;
	if (st != SL_OK)
		goto out;
	if (stop(o, "the floor of each layer's gain")) {
		st = status_set(err, SL_ERR_CANCELLED, "bounds");
		goto out;
	}
	t0 = seconds_now();
	st = bounds_floor_layers(m, xd, n, o->floor_steps, o->seed, s->layer_floor, err);
	if (st == SL_OK)
		s->nlayer_floor = m->nlayers;
	s->layer_floor_seconds = seconds_now() - t0;
out:
	free(xf);
	free(xd);
	free(y);
	free(idx);
	return st;
}

/* Every computed bound at or above the floor, or a loud error. */
static sl_status check_floor(const struct sandwich *s, const struct certificate *cert,
			     struct sl_error *err)
{
	for (int i = 0, w = 0; i < cert->nlayers; i++) {
		const struct certify_layer *l = &cert->layer[i];
		if (l->kind == SECTOR_LAYER_POOL)
			continue;
		/* a layer's own bound: its norm (leaky ReLU and tanh are
		 * 1-Lipschitz); the floor is in double, the norm from float
		 * weights: rounding allowed in the last digits */
		if (w < s->nlayer_floor && s->layer_floor[w] > l->sigma * (1 + 1e-6))
			return status_set(err, SL_ERR_NUMERIC,
					  "BUG: %s's gain floor %.9g found by search is above its "
					  "verified norm %.9g",
					  l->name, s->layer_floor[w], l->sigma);
		w++;
	}
	if (!(s->floor_L > 0))
		return SL_OK;
	int c = s->classes;
	for (int k = 0; k < SANDWICH_NKINDS; k++) {
		const struct sandwich_bound *b = &s->b[k];
		if (b->state != SANDWICH_COMPUTED)
			continue;
		bool network = k == SANDWICH_PRODUCT || k == SANDWICH_SECTOR || k == SANDWICH_SDP;
		if (network && b->L < s->floor_L * (1 - 1e-9))
			return status_set(err, SL_ERR_NUMERIC,
					  "BUG: the %s bound %.9g is below the Lipschitz floor "
					  "%.9g found by search: it is not a bound",
					  kind_names[k], b->L, s->floor_L);
		for (int y = 0; s->floor_pair && y < c; y++)
			for (int j = 0; j < c; j++)
				if (b->pair[y * c + j] < s->floor_pair[y * c + j] * (1 - 1e-9))
					return status_set(
						err, SL_ERR_NUMERIC,
						"BUG: the %s bound's constant for classes (%d, %d), "
						"%.9g, is below the floor %.9g found by search",
						kind_names[k], y, j, b->pair[y * c + j],
						s->floor_pair[y * c + j]);
	}
	return SL_OK;
}

sl_status sandwich_compute(struct nn_net *net, const struct certificate *cert,
			   const struct sl_dataset *ds, const struct sandwich_options *o,
			   struct sandwich *out, struct sl_error *err)
{
	memset(out, 0, sizeof *out);
	out->classes = net->out_dim;
	for (int k = 0; k < SANDWICH_NKINDS; k++)
		out->b[k].state = SANDWICH_NOT_ASKED;
	snprintf(out->floor_note, sizeof out->floor_note, "not asked for");
	out->constant = has_zero_layer(net) || cert->gamma_product == 0;
	sl_status st = set_network(out, SANDWICH_PRODUCT, cert->gamma_product, 0, err);
	if (st != SL_OK)
		goto fail;
	if ((st = pair_bound(net, cert, out, err)) != SL_OK)
		goto fail;
	if (out->constant) {
		/* f is constant: 0 is its Lipschitz constant, and every bound says so
		 * without an SDP (whose matrices would be degenerate). */
		for (int k = SANDWICH_SECTOR; k < SANDWICH_NKINDS; k++)
			if ((k == SANDWICH_SECTOR && o->sector) || (k == SANDWICH_SDP && o->sdp) ||
			    (k == SANDWICH_SDP_PAIR && o->sdp_pairs))
				if ((st = set_network(out, (enum sandwich_kind)k, 0, 0, err)) !=
				    SL_OK)
					goto fail;
		snprintf(out->floor_note, sizeof out->floor_note, "the network is constant");
		return SL_OK;
	}
	struct bounds_mlp m;
	struct sl_error merr;
	status_clear(&merr);
	bool dense = bounds_mlp_from_net(net, &m, &merr) == SL_OK;
	if (!dense && merr.code != SL_ERR_UNSUPPORTED) {
		st = merr.code;
		if (err)
			*err = merr;
		goto fail;
	}
	struct sl_error e;
	if (o->sdp && stop(o, "LipSDP of the network")) {
		st = status_set(err, SL_ERR_CANCELLED, "bounds");
		goto fail_m;
	}
	if (o->sdp) {
		struct sandwich_bound *b = &out->b[SANDWICH_SDP];
		double t0 = seconds_now(), L;
		status_clear(&e);
		sl_status s2 = dense ? bounds_lipsdp(&m, NULL, &L, &e) : SL_ERR_UNSUPPORTED;
		if (!dense)
			e = merr;
		if (s2 == SL_OK)
			st = set_network(out, SANDWICH_SDP, L, seconds_now() - t0, err);
		else
			set_failed(b, s2, &e);
		if (st != SL_OK)
			goto fail_m;
	}
	if (o->sdp_pairs && stop(o, "LipSDP per class pair")) {
		st = status_set(err, SL_ERR_CANCELLED, "bounds");
		goto fail_m;
	}
	if (o->sdp_pairs) {
		struct sandwich_bound *b = &out->b[SANDWICH_SDP_PAIR];
		double t0 = seconds_now();
		status_clear(&e);
		b->pair = malloc(sizeof(double) * (size_t)out->classes * out->classes);
		if (!b->pair) {
			st = status_set(err, SL_ERR_NOMEM, "pair table");
			goto fail_m;
		}
		sl_status s2 = dense ? bounds_lipsdp_pairs(&m, b->pair, &e) : SL_ERR_UNSUPPORTED;
		if (!dense)
			e = merr;
		if (s2 == SL_OK) {
			b->state = SANDWICH_COMPUTED;
			b->L = table_max(b->pair, out->classes);
			b->seconds = seconds_now() - t0;
		} else {
			free(b->pair);
			b->pair = NULL;
			set_failed(b, s2, &e);
		}
	}
	if (o->sector && stop(o, "the tightest sector")) {
		st = status_set(err, SL_ERR_CANCELLED, "bounds");
		goto fail_m;
	}
	if (o->sector) {
		struct sandwich_bound *b = &out->b[SANDWICH_SECTOR];
		double t0 = seconds_now();
		status_clear(&e);
		struct sector_hook hook = {o};
		sl_status s2 = dense ? bounds_tightest_sector_until(&m, o->progress ? sector_stop : NULL,
								    &hook, &out->sector, &e)
				     : SL_ERR_UNSUPPORTED;
		if (!dense)
			e = merr;
		if (s2 == SL_ERR_CANCELLED) {
			st = status_set(err, SL_ERR_CANCELLED, "bounds");
			goto fail_m;
		}
		if (s2 == SL_OK) {
			out->sector_searched = true;
			double g = out->sector.gamma;
			if (cert->sector_certified && cert->gamma_sector < g)
				g = cert->gamma_sector;
			st = set_network(out, SANDWICH_SECTOR, g, seconds_now() - t0, err);
			if (st != SL_OK)
				goto fail_m;
		} else if (cert->sector_certified) {
			/* the allocation's sector still stands */
			st = set_network(out, SANDWICH_SECTOR, cert->gamma_sector, 0, err);
			if (st != SL_OK)
				goto fail_m;
			snprintf(b->note, sizeof b->note, "search failed (%.500s); the allocation's",
				 e.msg);
		} else {
			set_failed(b, s2, &e);
		}
	} else if (cert->sector_certified) {
		st = set_network(out, SANDWICH_SECTOR, cert->gamma_sector, 0, err);
		if (st != SL_OK)
			goto fail_m;
		snprintf(out->b[SANDWICH_SECTOR].note, sizeof out->b[SANDWICH_SECTOR].note,
			 "the allocation's sector (not searched)");
	}
	if (o->floor_starts > 0 && ds && stop(o, "the Lipschitz floor")) {
		st = status_set(err, SL_ERR_CANCELLED, "bounds");
		goto fail_m;
	}
	if (o->floor_starts > 0 && ds) {
		if (dense) {
			if ((st = run_floor(&m, ds, o, out, err)) != SL_OK)
				goto fail_m;
		} else {
			snprintf(out->floor_note, sizeof out->floor_note, "%s", merr.msg);
		}
	}
	if (dense)
		bounds_mlp_free(&m);
	st = check_floor(out, cert, err);
	if (st != SL_OK)
		goto fail;
	return SL_OK;
fail_m:
	if (dense)
		bounds_mlp_free(&m);
fail:
	sandwich_free(out);
	return st;
}

sl_status sandwich_table(const struct sandwich *s, enum sandwich_choice c, double *pair,
			 struct sl_error *err)
{
	int n = s->classes * s->classes;
	bool use[SANDWICH_NKINDS] = {0};
	switch (c) {
	case SANDWICH_USE_PRODUCT: use[SANDWICH_PRODUCT] = true; break;
	case SANDWICH_USE_PAIR: use[SANDWICH_PAIR] = true; break;
	case SANDWICH_USE_SECTOR: use[SANDWICH_SECTOR] = true; break;
	case SANDWICH_USE_SDP: use[SANDWICH_SDP] = use[SANDWICH_SDP_PAIR] = true; break;
	case SANDWICH_USE_BEST:
		for (int k = 0; k < SANDWICH_NKINDS; k++)
			use[k] = true;
		break;
	}
	bool any = false;
	for (int i = 0; i < n; i++)
		pair[i] = INFINITY;
	for (int k = 0; k < SANDWICH_NKINDS; k++) {
		if (!use[k] || s->b[k].state != SANDWICH_COMPUTED)
			continue;
		any = true;
		for (int i = 0; i < n; i++)
			pair[i] = fmin(pair[i], s->b[k].pair[i]);
	}
	if (!any) {
		const struct sandwich_bound *b =
			&s->b[c == SANDWICH_USE_SDP ? SANDWICH_SDP : c == SANDWICH_USE_PAIR ? SANDWICH_PAIR : SANDWICH_SECTOR];
		return status_set(err, SL_ERR_UNSUPPORTED, "the %s bound is not available: %s",
				  choice_names[c],
				  b->state == SANDWICH_NOT_ASKED ? "not computed" : b->note);
	}
	return SL_OK;
}
