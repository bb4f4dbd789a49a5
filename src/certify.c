/* certify: network certificates and certified radii (see certify.h). */
#include "sectorlab/certify.h"

#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sectorlab/linalg.h"
#include "sectorlab/lmi.h"

/* ||W||_i of a dense weight: its smallest singular value when it has at
 * least as many rows as columns, else 0 (W^T W is singular). */
static sl_status infimum_norm(const struct nn_layer *l, const float *w, double *s,
			      struct sl_error *err)
{
	*s = 0;
	if (l->kind != NN_DENSE || l->wrows < l->wcols)
		return SL_OK;
	double *sv = malloc(sizeof(double) * (size_t)l->wcols);
	if (!sv)
		return status_set(err, SL_ERR_NOMEM, "%s: singular values", l->name);
	sl_status st = linalg_singular_values(w, l->wrows, l->wcols, sv, err);
	if (st == SL_OK)
		*s = sv[l->wcols - 1];
	free(sv);
	return st;
}

static void run_lmi(const struct nn_layer *l, const float *w, struct certify_layer *c,
		    const struct sector_act *act)
{
	struct sl_error err;
	if (l->kind != NN_DENSE) {
		c->lmi = CERTIFY_LMI_CONV;
		snprintf(c->lmi_message, sizeof c->lmi_message,
			 "convolution operator: the exact LMI is not attempted");
		return;
	}
	if (lmi_fits(l->wrows, l->wcols, &err) != SL_OK) {
		c->lmi = CERTIFY_LMI_TOO_LARGE;
		snprintf(c->lmi_message, sizeof c->lmi_message, "%s", err.msg);
		return;
	}
	size_t n = nn_layer_wsize(l);
	double *wd = malloc(sizeof(double) * n);
	if (!wd) {
		c->lmi = CERTIFY_LMI_FAILED;
		snprintf(c->lmi_message, sizeof c->lmi_message, "out of memory");
		return;
	}
	for (size_t k = 0; k < n; k++)
		wd[k] = w[k];
	struct lmi_layer ll = {.w = wd, .rows = l->wrows, .cols = l->wcols, .m = act->m,
			       .p = act->p};
	struct lmi_verdict v;
	if (lmi_check(&ll, c->nu, c->delta, &v, &err) != SL_OK) {
		c->lmi = CERTIFY_LMI_FAILED;
		snprintf(c->lmi_message, sizeof c->lmi_message, "%s", err.msg);
	} else {
		c->lmi = v.feasible ? CERTIFY_LMI_CERTIFIED : CERTIFY_LMI_REFUTED;
		c->lmi_nu_max = v.nu_max;
	}
	free(wd);
}

/* A k x k max pooling with stride s: windows overlap ceil(k / s) times per
 * axis. */
static double pool_lipschitz(int k, int stride)
{
	int per_axis = (k + stride - 1) / stride;
	return sector_pool_lipschitz(per_axis * per_axis);
}

/* The sector layer of a layer of this kind (flatten has none: returns
 * false); k and stride are a pooling window's. */
static bool sector_of_kind(enum nn_kind kind, enum nn_act act, float slope, int k,
			   int stride, struct sector_layer *out, double *pool_k,
			   struct sl_error *err, sl_status *st)
{
	*st = SL_OK;
	if (kind == NN_FLATTEN)
		return false;
	if (kind == NN_MAXPOOL) {
		*pool_k = pool_lipschitz(k, stride);
		*st = sector_layer_pool(*pool_k, out, err);
		return true;
	}
	/* ReLU is leaky ReLU at slope 0: the same sector [0, 1], named. */
	enum sector_act_kind sa = act == NN_ACT_LEAKY_RELU && slope == 0 ? SECTOR_ACT_RELU
				  : act == NN_ACT_LEAKY_RELU		 ? SECTOR_ACT_LEAKY
				  : act == NN_ACT_TANH			 ? SECTOR_ACT_TANH
									 : SECTOR_ACT_IDENTITY;
	*st = sector_layer_weighted(kind == NN_CONV ? SECTOR_LAYER_CONV : SECTOR_LAYER_DENSE, sa,
				    slope, 0.0, out, err);
	return true;
}

static bool sector_of(const struct nn_layer *l, struct sector_layer *out, double *pool_k,
		      struct sl_error *err, sl_status *st)
{
	return sector_of_kind(l->kind, l->act, l->slope, l->geom.k, l->geom.stride, out, pool_k,
			      err, st);
}

int certify_arch_layers(const struct arch *arch, struct sector_layer *layers, int max,
			struct sl_error *err)
{
	int n = 0;
	for (int i = 0; i < arch->nlayers; i++) {
		const struct nn_layer_spec *s = &arch->layers[i];
		struct sector_layer l;
		double k;
		sl_status st;
		/* A pooling spec's stride 0 means the window's size, as in nn_build. */
		int stride = s->stride > 0 ? s->stride : s->k;
		if (!sector_of_kind(s->kind, s->act, s->slope, s->k, stride, &l, &k, err, &st)) {
			if (st != SL_OK)
				return -1;
			continue;
		}
		if (st != SL_OK)
			return -1;
		if (n == max) {
			status_set(err, SL_ERR_ARG, "%s has more than %d sector layers",
				   *arch->name ? arch->name : "the layer spec", max);
			return -1;
		}
		layers[n++] = l;
	}
	return n;
}

int certify_model_layers(enum model_id model, struct sector_layer *layers, int max,
			 struct sl_error *err)
{
	struct arch a;
	model_get(model, &a);
	return certify_arch_layers(&a, layers, max, err);
}

/* The first half of a certificate: the sector, the network's sector layers
 * (sl, and map to the network's layer table) and their allocation. */
static sl_status allocate(const struct nn_net *net, const struct certify_options *opts,
			  struct certificate *out, struct sector_layer *sl, int *map,
			  struct sl_error *err)
{
	memset(out, 0, sizeof *out);
	out->nu = opts->nu;
	out->delta = opts->delta;
	out->objective = opts->objective;
	sl_status st = sector_slopes(opts->nu, opts->delta, &out->sector_lo, &out->sector_hi, err);
	if (st != SL_OK)
		return st;
	int n = 0;
	for (int i = 0; i < net->nlayers; i++) {
		double k = 0;
		if (!sector_of(&net->layers[i], &sl[n], &k, err, &st)) {
			if (st != SL_OK)
				return st;
			continue;
		}
		if (st != SL_OK)
			return st;
		map[n] = i;
		out->layer[n].k = k;
		n++;
	}
	out->nlayers = n;

	struct sl_error aerr;
	status_clear(&aerr);
	out->allocated = sector_allocate(opts->nu, opts->delta, sl, n, opts->objective,
					 &out->alloc, &aerr) == SL_OK;
	if (!out->allocated)
		snprintf(out->reason, sizeof out->reason, "%s", aerr.msg);
	return SL_OK;
}

sl_status certify_plan(const struct nn_net *net, const struct certify_options *opts,
		       struct certify_plan *out, struct sl_error *err)
{
	memset(out, 0, sizeof *out);
	struct certificate *c = malloc(sizeof *c);
	if (!c)
		return status_set(err, SL_ERR_NOMEM, "certificate plan");
	struct sector_layer sl[NN_MAX_LAYERS];
	int map[NN_MAX_LAYERS];
	sl_status st = allocate(net, opts, c, sl, map, err);
	if (st == SL_OK) {
		out->allocated = c->allocated;
		out->sector_hi = c->sector_hi;
		for (int j = 0; j < c->nlayers; j++)
			if (sl[j].kind != SECTOR_LAYER_POOL)
				out->rho[out->nweighted++] = c->allocated ? c->alloc.layer[j].rho : 0;
	}
	free(c);
	return st;
}

bool certify_over_cap(double sigma, double bound)
{
	return bound > 0 && !(sigma <= bound);
}

double certify_plan_bound(const struct certify_plan *plan, const struct nn_net *net,
			  const double *sigma, double *grad)
{
	/* certify_network's test, without the exact LMI: the sector holds when
	 * the allocation exists and every layer is within its Theorem 4 cap. */
	bool within = plan->allocated;
	for (int j = 0; j < plan->nweighted; j++)
		within = within && !certify_over_cap(sigma[j], plan->rho[j]);
	return certify_bound(net, sigma, within ? plan->sector_hi : 0, grad);
}

sl_status certify_network(struct nn_net *net, const struct certify_options *opts,
			  struct certificate *out, struct sl_error *err)
{
	struct sector_layer sl[NN_MAX_LAYERS];
	int map[NN_MAX_LAYERS]; /* certificate layer -> network layer */
	sl_status st = allocate(net, opts, out, sl, map, err);
	if (st != SL_OK)
		return st;
	int n = out->nlayers;

	float *w = NULL;
	size_t wcap = 0;
	bool all = out->allocated;
	double sigma[NN_MAX_LAYERS]; /* the weighted layers' verified norms, in order */
	int nsigma = 0;
	for (int j = 0; j < n; j++) {
		struct nn_layer *l = &net->layers[map[j]];
		struct certify_layer *c = &out->layer[j];
		c->index = map[j];
		snprintf(c->name, sizeof c->name, "%s", l->name);
		c->kind = sl[j].kind;
		if (out->allocated) {
			c->nu = out->alloc.layer[j].nu;
			c->delta = out->alloc.layer[j].delta;
			c->rho = out->alloc.layer[j].rho;
		}
		if (sl[j].kind == SECTOR_LAYER_POOL) {
			c->certified = true;
			if (opts->on_layer)
				opts->on_layer(opts->on_layer_ctx, j + 1, n, c->name);
			continue;
		}
		size_t need = nn_layer_wsize(l);
		if (need > wcap) {
			float *nw = realloc(w, sizeof(float) * need);
			if (!nw) {
				st = status_set(err, SL_ERR_NOMEM, "%s: weight copy", l->name);
				goto out;
			}
			w = nw;
			wcap = need;
		}
		nn_layer_weight_in_use(l, w); /* (wrows, wcols) */
		/* The estimate training relies on, run to convergence on copies of
		 * the layer's vectors; the verified norm is the SVD where that is
		 * affordable, else this same converged estimate (not run twice). */
		c->sigma_power = (double)nn_layer_norm_converged(net, map[j], 2e-7, 3000,
								 &c->power_iters) * l->scale;
		c->sigma = c->sigma_power;
		c->sigma_exact = false;
		if (nn_layer_norm_is_exact(l) &&
		    (st = nn_layer_norm(net, map[j], &c->sigma, &c->sigma_exact, err)) != SL_OK)
			goto out;
		if ((st = infimum_norm(l, w, &c->s, err)) != SL_OK)
			goto out;
		sigma[nsigma++] = c->sigma;
		c->within = out->allocated && !certify_over_cap(c->sigma, c->rho);
		if (opts->lmi && out->allocated)
			run_lmi(l, w, c, &sl[j].sector);
		c->certified = c->within || c->lmi == CERTIFY_LMI_CERTIFIED;
		if (!c->certified && all) {
			all = false;
			snprintf(out->reason, sizeof out->reason,
				 "%s: ||W||_2 = %.6g exceeds its Theorem 4 cap %.6g at (nu_i, "
				 "delta_i) = (%.6g, %.6g)%s",
				 c->name, c->sigma, c->rho, c->nu, c->delta,
				 c->lmi == CERTIFY_LMI_REFUTED ? " and the exact LMI refutes it"
				 : c->lmi == CERTIFY_LMI_NOT_RUN ? " (the exact LMI was not run)"
								 : "");
		}
		if (opts->on_layer)
			opts->on_layer(opts->on_layer_ctx, j + 1, n, c->name);
	}
	out->sector_certified = all;
	out->gamma_sector = all ? out->sector_hi : 0;
	out->gamma_product = certify_bound(net, sigma, 0, NULL);
	out->gamma = certify_bound(net, sigma, out->gamma_sector, NULL);
out:
	free(w);
	return st;
}

/*
 * The forward pass's rounding error.  certify and every other command classify
 * with one float forward pass (nn_forward + nn_argmax); the bounds speak of
 * the network of the same float weights evaluated exactly.  A layer computes
 * each output as fl(scale * sum_k w_k h_k + b) with one sgemm of K = fan-in
 * terms: whatever the order of the sums (and with or without fused
 * multiply-adds) the error of each output is at most gamma_{K+2} (scale
 * sum |w_k||h_k| + |b|), gamma_n = n u / (1 - n u), u = 2^-24 (Higham,
 * Accuracy and Stability of Numerical Algorithms, §3.5; two more roundings
 * for the scale and the bias).  In L2 over the layer's outputs that is at
 * most gamma_{K+2} (A ||h||_2 + ||b||_2), with A >= || |scale W| ||_2 bounded
 * by Schur's test, sqrt(largest row sum * largest column sum) of |scale W|
 * (for a convolution, of the kernel taps: each input pixel meets each tap at
 * most once), and ||b||_2 counting a convolution's bias once per output
 * pixel.  The leaky ReLU's product by the slope adds u |h_out| (tanh, 4 u
 * |h_out|: glibc's tanhf is within 2 ulp); max pooling and flatten are
 * exact.  An error e_l made at layer l reaches the logits
 * multiplied by at most the Lipschitz constant of the layers after it, which
 * is at most the product of their A (A >= ||scale W||_2) and the pooling
 * constants.  So for one example
 *     ||z_computed - z_exact||_2 <= E = sum_l after_l (gamma_l (A_l ||h_l||
 *                                       + ||b_l||) + u_l ||h_{l+1}||),
 * computed from the norms of the layer inputs the forward pass just
 * produced, and each margin z_y - z_j is off by at most sqrt(2) E.  A margin
 * not above sqrt(2) E certifies nothing; above it, the radius is computed
 * from the margin minus sqrt(2) E.  Layers evaluated through the DFT
 * (conv_dft.h) chain four products whose rounding this analysis does not
 * cover: they get a hundredfold allowance on the same formula, and
 * certify_rounding says so (derived = false).
 */
#define UNIT_ROUNDOFF 0x1p-24

static double gamma_n(double n)
{
	return n * UNIT_ROUNDOFF / (1 - n * UNIT_ROUNDOFF);
}

/* sqrt(largest row sum * largest column sum) of |scale W| as an operator. */
static double schur_abs(const struct nn_layer *l)
{
	double rmax = 0, cmax = 0;
	if (l->kind == NN_DENSE) {
		double *col = calloc((size_t)l->wcols, sizeof(double));
		if (!col)
			return INFINITY;
		for (int i = 0; i < l->wrows; i++) {
			double r = 0;
			for (int j = 0; j < l->wcols; j++) {
				double a = fabs((double)l->w[(size_t)i * l->wcols + j]);
				r += a;
				col[j] += a;
			}
			rmax = fmax(rmax, r);
		}
		for (int j = 0; j < l->wcols; j++)
			cmax = fmax(cmax, col[j]);
		free(col);
	} else { /* conv: W is (Cout, Cin * k * k) */
		int cin = l->geom.cin, kk = l->geom.k * l->geom.k;
		for (int o = 0; o < l->wrows; o++) {
			double r = 0;
			for (int j = 0; j < l->wcols; j++)
				r += fabs((double)l->w[(size_t)o * l->wcols + j]);
			rmax = fmax(rmax, r);
		}
		for (int c = 0; c < cin; c++) {
			double cs = 0;
			for (int o = 0; o < l->wrows; o++)
				for (int t = 0; t < kk; t++)
					cs += fabs((double)l->w[(size_t)o * l->wcols + c * kk + t]);
			cmax = fmax(cmax, cs);
		}
	}
	return (double)l->scale * sqrt(rmax * cmax);
}

sl_status certify_rounding_setup(const struct nn_net *net, struct certify_rounding *r,
				 struct sl_error *err)
{
	(void)err;
	memset(r, 0, sizeof *r);
	r->derived = true;
	double after = 1;
	for (int i = net->nlayers - 1; i >= 0; i--) {
		const struct nn_layer *l = &net->layers[i];
		if (l->kind == NN_MAXPOOL) {
			after *= pool_lipschitz(l->geom.k, l->geom.stride);
			continue;
		}
		if (!nn_layer_weighted(l))
			continue;
		double a = schur_abs(l), bn = 0;
		int per = l->kind == NN_CONV ? l->geom.ho * l->geom.wo : 1;
		for (int o = 0; o < l->wrows; o++)
			bn += (double)l->b[o] * l->b[o] * per;
		double g = gamma_n((double)l->wcols + 2);
		if (l->dft) {
			g *= 100;
			r->derived = false;
		}
		r->in[i] = after * g * a;
		r->cst[i] = after * g * sqrt(bn);
		/* leaky ReLU: one product; tanhf: glibc documents at most 2 ulp, 4 u
		 * relative is safe */
		r->out[i] = l->act == NN_ACT_LEAKY_RELU ? after * UNIT_ROUNDOFF
			    : l->act == NN_ACT_TANH    ? after * 4 * UNIT_ROUNDOFF
						       : 0;
		after *= a;
	}
	return SL_OK;
}

static double row_norm(const float *v, int n)
{
	double s = 0;
	for (int k = 0; k < n; k++)
		s += (double)v[k] * v[k];
	return sqrt(s);
}

double certify_rounding_error(const struct nn_net *net, const struct certify_rounding *r,
			      int row)
{
	double e = 0;
	for (int i = 0; i < net->nlayers; i++) {
		const struct nn_layer *l = &net->layers[i];
		if (!nn_layer_weighted(l))
			continue;
		double hin = row_norm(net->act_in[i] + (size_t)row * l->in, l->in);
		double hout = r->out[i] > 0 ? row_norm(l->a + (size_t)row * l->out, l->out) : 0;
		e += r->in[i] * hin + r->cst[i] + r->out[i] * hout;
	}
	return e;
}

void certify_batch_radii(const struct nn_net *net, const struct certify_rounding *rd,
			 const float *logits, const int *y, int batch, const double *pair,
			 double *radius, bool *correct)
{
	int classes = net->out_dim;
	for (int r = 0; r < batch; r++) {
		const float *z = logits + (size_t)r * classes;
		int pred;
		nn_argmax(z, 1, classes, &pred);
		correct[r] = pred == y[r];
		radius[r] = 0;
		if (!correct[r])
			continue;
		double slack = sqrt(2.0) * certify_rounding_error(net, rd, r), best = INFINITY;
		for (int j = 0; j < classes && best > 0; j++) {
			if (j == y[r])
				continue;
			double m = (double)z[y[r]] - (double)z[j] - slack;
			double L = pair[y[r] * classes + j];
			double rj = !(m > 0) ? 0 : L > 0 ? m / L : INFINITY;
			best = fmin(best, rj);
		}
		radius[r] = best;
	}
}

sl_status certify_radii_tables(struct nn_net *net, const struct sl_dataset *ds, int n,
			       int ntables, const double *const *pairs, double *const *radius,
			       bool *correct, int *count, struct sl_error *err)
{
	int classes = net->out_dim;
	for (int t = 0; t < ntables; t++)
		for (int k = 0; k < classes * classes; k++)
			if (!(pairs[t][k] >= 0) || isinf(pairs[t][k]))
				return status_set(err, SL_ERR_ARG,
						  "certified radius: pair constant %g must be "
						  "finite and >= 0", pairs[t][k]);
	if (data_dim(ds) != (size_t)net->in_dim)
		return status_set(err, SL_ERR_ARG, "%s: images have %zu values, network takes %d",
				  ds->source, data_dim(ds), net->in_dim);
	if (n <= 0 || (uint32_t)n > ds->n)
		n = (int)ds->n;
	struct certify_rounding rd;
	sl_status st = certify_rounding_setup(net, &rd, err);
	if (st != SL_OK)
		return st;
	int bmax = net->max_batch;
	float *x = malloc(sizeof(float) * (size_t)bmax * net->in_dim);
	int *y = malloc(sizeof(int) * (size_t)bmax);
	uint32_t *idx = malloc(sizeof(uint32_t) * (size_t)bmax);
	if (!x || !y || !idx) {
		st = status_set(err, SL_ERR_NOMEM, "certified radii: batch buffers");
		goto out;
	}
	for (int start = 0; start < n; start += bmax) {
		int b = n - start < bmax ? n - start : bmax;
		for (int r = 0; r < b; r++)
			idx[r] = (uint32_t)(start + r);
		data_batch(ds, idx, (size_t)b, x, y);
		const float *z = nn_forward(net, x, b); /* (b, classes) */
		for (int t = 0; t < ntables; t++)
			certify_batch_radii(net, &rd, z, y, b, pairs[t], radius[t] + start,
					    correct + start);
	}
	*count = n;
out:
	free(x);
	free(y);
	free(idx);
	return st;
}

sl_status certify_radii_pairs(struct nn_net *net, const struct sl_dataset *ds, int n,
			      const double *pair, double *radius, bool *correct, int *count,
			      struct sl_error *err)
{
	return certify_radii_tables(net, ds, n, 1, &pair, &radius, correct, count, err);
}

void certify_pairs_from_gamma(double gamma, int classes, double *pair)
{
	for (int y = 0; y < classes; y++)
		for (int j = 0; j < classes; j++)
			pair[y * classes + j] = y == j ? 0 : sqrt(2.0) * gamma;
}

sl_status certify_radii(struct nn_net *net, const struct sl_dataset *ds, int n, double gamma,
			double *radius, bool *correct, int *count, struct sl_error *err)
{
	if (!(gamma >= 0) || !isfinite(gamma))
		return status_set(err, SL_ERR_ARG,
				  "certified radius: gamma %g must be finite and >= 0", gamma);
	int classes = net->out_dim;
	double *pair = malloc(sizeof(double) * (size_t)classes * classes);
	if (!pair)
		return status_set(err, SL_ERR_NOMEM, "pair constants");
	certify_pairs_from_gamma(gamma, classes, pair);
	sl_status st = certify_radii_pairs(net, ds, n, pair, radius, correct, count, err);
	free(pair);
	return st;
}

double certify_accuracy_at(const double *radius, const bool *correct, int n, double r)
{
	if (n <= 0)
		return 0;
	int k = 0;
	for (int i = 0; i < n; i++)
		k += correct[i] && radius[i] > r;
	return (double)k / n;
}

double certify_bound(const struct nn_net *net, const double *sigma, double gamma_sector,
		     double *grad)
{
	/* Leaky ReLU with slope <= 1 and the identity are 1-Lipschitz, so the
	 * product runs over the weighted layers' norms and the pooling layers'
	 * constants only. */
	double pools = 1, product;
	int nw = 0;
	for (int i = 0; i < net->nlayers; i++) {
		const struct nn_layer *l = &net->layers[i];
		if (nn_layer_weighted(l))
			nw++;
		else if (l->kind == NN_MAXPOOL)
			pools *= pool_lipschitz(l->geom.k, l->geom.stride);
	}
	product = pools;
	for (int j = 0; j < nw; j++)
		product *= sigma[j];
	bool sector = gamma_sector > 0 && gamma_sector < product;
	/* d product / d sigma_j: the product of the other factors (not a
	 * division, so a zero norm is no trouble). */
	for (int j = 0; grad && j < nw; j++) {
		double g = sector ? 0 : pools;
		for (int k = 0; k < nw; k++)
			g *= k == j ? 1.0 : sigma[k];
		grad[j] = g;
	}
	return sector ? gamma_sector : product;
}

const double certify_default_radii[CERTIFY_NDEFAULT_RADII] = {0.1, 0.25, 0.5, 1.0};

int certify_radii_with(double extra, double *out)
{
	int n = 0;
	bool placed = !(extra > 0);
	for (int k = 0; k < CERTIFY_NDEFAULT_RADII; k++) {
		double r = certify_default_radii[k];
		if (!placed && extra <= r) {
			if (extra < r)
				out[n++] = extra;
			placed = true;
		}
		out[n++] = r;
	}
	if (!placed)
		out[n++] = extra;
	return n;
}

static int compare_doubles(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

sl_status certify_accuracy(struct nn_net *net, const struct certificate *c,
			   const struct sl_dataset *ds, int n, const double *radii, int nradii,
			   struct certify_accuracy *out, struct sl_error *err)
{
	int classes = net->out_dim;
	double *pair = malloc(sizeof(double) * (size_t)classes * classes);
	if (!pair)
		return status_set(err, SL_ERR_NOMEM, "pair constants");
	certify_pairs_from_gamma(c->gamma, classes, pair);
	sl_status st = certify_accuracy_pairs(net, pair, ds, n, radii, nradii, out, err);
	out->gamma = c->gamma;
	out->sector = c->sector_certified && c->gamma == c->gamma_sector;
	free(pair);
	return st;
}

sl_status certify_accuracy_pairs(struct nn_net *net, const double *pair,
				 const struct sl_dataset *ds, int n, const double *radii,
				 int nradii, struct certify_accuracy *out, struct sl_error *err)
{
	assert(nradii >= 0 && nradii <= CERTIFY_MAX_RADII);
	memset(out, 0, sizeof *out);
	if (n <= 0 || (uint32_t)n > ds->n)
		n = (int)ds->n;
	out->nradii = nradii;
	memcpy(out->radius, radii, sizeof(double) * (size_t)nradii);
	if (n == 0)
		return SL_OK;
	double *radius = malloc(sizeof(double) * (size_t)n);
	bool *correct = malloc(sizeof(bool) * (size_t)n);
	sl_status st = SL_OK;
	if (!radius || !correct) {
		st = status_set(err, SL_ERR_NOMEM, "certified radii of %d examples", n);
		goto out;
	}
	if ((st = certify_radii_pairs(net, ds, n, pair, radius, correct, &out->n, err)) != SL_OK)
		goto out;
	certify_summarize(radius, correct, out->n, out);
out:
	free(radius);
	free(correct);
	return st;
}

double certify_rounding_lost(const double *radius, const bool *correct, int n)
{
	int k = 0;
	for (int i = 0; i < n; i++)
		k += correct[i] && radius[i] == 0;
	return n > 0 ? (double)k / n : 0;
}

void certify_summarize(double *radius, const bool *correct, int n, struct certify_accuracy *out)
{
	out->n = n;
	if (n <= 0)
		return;
	out->clean = certify_accuracy_at(radius, correct, n, -1);
	out->rounding_lost = certify_rounding_lost(radius, correct, n);
	for (int k = 0; k < out->nradii; k++)
		out->certified[k] = certify_accuracy_at(radius, correct, n, out->radius[k]);
	/* a wrong example has radius 0: the median counts it so (radius is sorted) */
	qsort(radius, (size_t)n, sizeof(double), compare_doubles);
	out->median_radius = n % 2 ? radius[n / 2] : 0.5 * (radius[n / 2 - 1] + radius[n / 2]);
}
