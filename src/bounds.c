/* bounds: pair constants, LipSDP, the tightest sector and the floor (see bounds.h). */
#include "sectorlab/bounds.h"

#include <dsdp/dsdp5.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sectorlab/attack.h"
#include "sectorlab/linalg.h"
#include "sectorlab/lmi.h"
#include "sectorlab/rng.h"
#include "sectorlab/sector.h"

/* ---- The dense network in double ---- */

sl_status bounds_mlp_new(int nlayers, const int *dim, double slope, struct bounds_mlp *out,
			 struct sl_error *err)
{
	memset(out, 0, sizeof *out);
	if (nlayers < 1 || nlayers > NN_MAX_LAYERS)
		return status_set(err, SL_ERR_ARG, "bounds: %d layers", nlayers);
	out->nlayers = nlayers;
	for (int i = 0; i <= nlayers; i++) {
		if (dim[i] < 1 || dim[i] > 1 << 24)
			return status_set(err, SL_ERR_ARG, "bounds: layer size %d", dim[i]);
		out->dim[i] = dim[i];
	}
	for (int i = 0; i < nlayers; i++) {
		out->w[i] = calloc((size_t)dim[i] * (size_t)dim[i + 1], sizeof(double));
		out->b[i] = calloc((size_t)dim[i + 1], sizeof(double));
		bool last = i == nlayers - 1;
		out->act[i] = last ? NN_ACT_IDENTITY : NN_ACT_LEAKY_RELU;
		out->alpha[i] = last ? 1 : fmin(slope, 1);
		out->beta[i] = last ? 1 : fmax(slope, 1);
		if (!out->w[i] || !out->b[i]) {
			bounds_mlp_free(out);
			return status_set(err, SL_ERR_NOMEM, "bounds: layer %d", i + 1);
		}
	}
	return SL_OK;
}

void bounds_mlp_free(struct bounds_mlp *m)
{
	for (int i = 0; i < NN_MAX_LAYERS; i++) {
		free(m->w[i]);
		free(m->b[i]);
		m->w[i] = m->b[i] = NULL;
	}
	m->nlayers = 0;
}

sl_status bounds_mlp_from_net(const struct nn_net *net, struct bounds_mlp *out,
			      struct sl_error *err)
{
	int dim[NN_MAX_LAYERS + 1], n = 0;
	const struct nn_layer *dense[NN_MAX_LAYERS];
	memset(out, 0, sizeof *out);
	for (int i = 0; i < net->nlayers; i++) {
		const struct nn_layer *l = &net->layers[i];
		if (l->kind == NN_FLATTEN)
			continue;
		if (l->kind != NN_DENSE)
			return status_set(err, SL_ERR_UNSUPPORTED,
					  "%s is a %s layer: the SDP bounds and the tightest "
					  "sector cover dense networks only",
					  l->name, l->kind == NN_CONV ? "convolution" : "pooling");
		dense[n] = l;
		dim[n] = l->in;
		dim[n + 1] = l->out;
		n++;
	}
	if (n == 0)
		return status_set(err, SL_ERR_ARG, "bounds: the network has no dense layer");
	for (int i = 0; i + 1 < n; i++)
		if (dense[i]->act == NN_ACT_IDENTITY)
			return status_set(err, SL_ERR_UNSUPPORTED,
					  "%s has no activation: the bounds expect one on every "
					  "layer but the last", dense[i]->name);
	if (dense[n - 1]->act != NN_ACT_IDENTITY)
		return status_set(err, SL_ERR_UNSUPPORTED,
				  "%s: the last layer must be affine (logits)", dense[n - 1]->name);
	sl_status st = bounds_mlp_new(n, dim, 0, out, err);
	if (st != SL_OK)
		return st;
	float *tmp = NULL;
	for (int i = 0; i < n; i++) {
		const struct nn_layer *l = dense[i];
		size_t sz = nn_layer_wsize(l);
		float *t = realloc(tmp, sizeof(float) * sz);
		if (!t) {
			free(tmp);
			bounds_mlp_free(out);
			return status_set(err, SL_ERR_NOMEM, "bounds: %s", l->name);
		}
		tmp = t;
		nn_layer_weight_in_use(l, tmp);
		for (size_t k = 0; k < sz; k++)
			out->w[i][k] = tmp[k];
		for (int k = 0; k < l->out; k++)
			out->b[i][k] = l->b[k];
		if (i + 1 < n) { /* leaky ReLU: [a, 1] (ReLU: a = 0); tanh: [0, 1] */
			bool leaky = l->act == NN_ACT_LEAKY_RELU;
			out->act[i] = l->act;
			out->alpha[i] = leaky ? fmin(l->slope, 1) : 0;
			out->beta[i] = leaky ? fmax(l->slope, 1) : 1;
		}
	}
	free(tmp);
	return SL_OK;
}

static int widest(const struct bounds_mlp *m)
{
	int w = 0;
	for (int i = 0; i <= m->nlayers; i++)
		w = m->dim[i] > w ? m->dim[i] : w;
	return w;
}

/* Layer i's activation at pre-activation q, and its slope there (a leaky
 * ReLU at 0 takes slope beta). */
static double activate(const struct bounds_mlp *m, int i, double q, double *slope)
{
	if (m->act[i] == NN_ACT_TANH) {
		double t = tanh(q);
		*slope = 1 - t * t;
		return t;
	}
	if (m->act[i] == NN_ACT_IDENTITY) {
		*slope = 1;
		return q;
	}
	*slope = q < 0 ? m->alpha[i] : m->beta[i];
	return *slope * q;
}

/* One layer: out = phi(W in + b); slope[k] gets the activation's slope at
 * each unit when slope is not NULL. */
static void layer_apply(const struct bounds_mlp *m, int i, const double *in, double *out,
			double *slope)
{
	int r = m->dim[i + 1], c = m->dim[i];
	for (int k = 0; k < r; k++) {
		const double *wk = m->w[i] + (size_t)k * c;
		double s = m->b[i][k], a;
		for (int j = 0; j < c; j++)
			s += wk[j] * in[j];
		out[k] = activate(m, i, s, &a);
		if (slope)
			slope[k] = a;
	}
}

void bounds_mlp_forward(const struct bounds_mlp *m, const double *x, double *z)
{
	int w = widest(m);
	double *a = malloc(sizeof(double) * 2 * (size_t)w);
	if (!a) { /* tiny networks only reach here in tests; keep it total */
		memset(z, 0, sizeof(double) * (size_t)m->dim[m->nlayers]);
		return;
	}
	double *cur = a, *next = a + w;
	memcpy(cur, x, sizeof(double) * (size_t)m->dim[0]);
	for (int i = 0; i < m->nlayers; i++) {
		layer_apply(m, i, cur, next, NULL);
		double *t = cur;
		cur = next;
		next = t;
	}
	memcpy(z, cur, sizeof(double) * (size_t)m->dim[m->nlayers]);
	free(a);
}

/* Forward pass keeping every layer's slopes: slope (sum of dim[1..n]) gets
 * the activation's slope at each unit (1 for the last layer). */
static void forward_slopes(const struct bounds_mlp *m, const double *x, double *buf, int w,
			   double *slope, double *z)
{
	double *cur = buf, *next = buf + w;
	memcpy(cur, x, sizeof(double) * (size_t)m->dim[0]);
	for (int i = 0, off = 0; i < m->nlayers; i++) {
		layer_apply(m, i, cur, next, slope + off);
		off += m->dim[i + 1];
		double *t = cur;
		cur = next;
		next = t;
	}
	if (z)
		memcpy(z, cur, sizeof(double) * (size_t)m->dim[m->nlayers]);
}

static int total_units(const struct bounds_mlp *m)
{
	int t = 0;
	for (int i = 1; i <= m->nlayers; i++)
		t += m->dim[i];
	return t;
}

/* Reverse mode: G (rows, dim[i + 1]) -> G diag(slope_i) W_i (rows, dim[i]),
 * from the last layer down; g0 and g1 hold rows x widest values. */
static void backward_rows(const struct bounds_mlp *m, const double *slope, int rows, double *g0,
			  double *g1, double *out)
{
	int off = total_units(m);
	for (int i = m->nlayers - 1; i >= 0; i--) {
		int r = m->dim[i + 1], c = m->dim[i];
		off -= r;
		for (int q = 0; q < rows; q++) {
			double *src = g0 + (size_t)q * r, *dst = (i == 0 ? out : g1) + (size_t)q * c;
			memset(dst, 0, sizeof(double) * (size_t)c);
			for (int k = 0; k < r; k++) {
				double f = src[k] * slope[off + k];
				if (f == 0)
					continue;
				const double *wk = m->w[i] + (size_t)k * c;
				for (int j = 0; j < c; j++)
					dst[j] += f * wk[j];
			}
		}
		if (i > 0) {
			double *t = g0;
			g0 = g1;
			g1 = t;
		}
	}
}

/* J^T-side products at x for rows seeds (rows, dim[n]) into out (rows,
 * dim[0]); z gets f(x) when not NULL. */
static sl_status seeded_rows(const struct bounds_mlp *m, const double *x, const double *seed,
			     int rows, double *out, double *z, struct sl_error *err)
{
	int w = widest(m), k = m->dim[m->nlayers];
	double *buf = malloc(sizeof(double) * 2 * (size_t)w);
	double *slope = malloc(sizeof(double) * (size_t)total_units(m));
	double *g0 = malloc(sizeof(double) * (size_t)rows * w);
	double *g1 = malloc(sizeof(double) * (size_t)rows * w);
	sl_status st = SL_OK;
	if (!buf || !slope || !g0 || !g1) {
		st = status_set(err, SL_ERR_NOMEM, "bounds: Jacobian");
		goto out;
	}
	forward_slopes(m, x, buf, w, slope, z);
	memcpy(g0, seed, sizeof(double) * (size_t)rows * k);
	backward_rows(m, slope, rows, g0, g1, out);
out:
	free(buf);
	free(slope);
	free(g0);
	free(g1);
	return st;
}

sl_status bounds_mlp_jacobian(const struct bounds_mlp *m, const double *x, double *jac,
			      struct sl_error *err)
{
	int k = m->dim[m->nlayers];
	double *eye = calloc((size_t)k * k, sizeof(double));
	if (!eye)
		return status_set(err, SL_ERR_NOMEM, "bounds: Jacobian");
	for (int c = 0; c < k; c++)
		eye[(size_t)c * k + c] = 1;
	sl_status st = seeded_rows(m, x, eye, k, jac, NULL, err);
	free(eye);
	return st;
}

/* ---- Norms ---- */

static sl_status spectral_norm_d(const double *a, int rows, int cols, double *out,
				 struct sl_error *err)
{
	int k = rows < cols ? rows : cols;
	double *sv = malloc(sizeof(double) * (size_t)k);
	if (!sv)
		return status_set(err, SL_ERR_NOMEM, "bounds: singular values");
	sl_status st = linalg_singular_values_d(a, rows, cols, sv, err);
	if (st == SL_OK)
		*out = sv[0];
	free(sv);
	return st;
}

sl_status bounds_product(const struct bounds_mlp *m, double *L, struct sl_error *err)
{
	double p = 1;
	for (int i = 0; i < m->nlayers; i++) {
		double s;
		sl_status st = spectral_norm_d(m->w[i], m->dim[i + 1], m->dim[i], &s, err);
		if (st != SL_OK)
			return st;
		/* a leaky ReLU with slopes in [alpha, beta] is max(|alpha|, |beta|)-Lipschitz */
		p *= s * fmax(fabs(m->alpha[i]), fabs(m->beta[i]));
	}
	*L = p;
	return SL_OK;
}

void bounds_pair_from_last(const float *w, int classes, int hidden, double l_before,
			   double *pair)
{
	for (int y = 0; y < classes; y++)
		for (int j = 0; j < classes; j++) {
			double s = 0;
			for (int k = 0; k < hidden && y != j; k++) {
				double d = (double)w[(size_t)y * hidden + k] -
					   (double)w[(size_t)j * hidden + k];
				s += d * d;
			}
			pair[y * classes + j] = sqrt(s) * l_before;
		}
}

/* ---- LipSDP-Neuron ----
 *
 * v = [x; z_1; ...; z_k] with x in the first layer's row space (coordinates
 * u with W_0 x = B u, B = U_+ S_+^{1/2} from W_0 W_0^T = U S U^T, so that
 * B = W_0 Q with Q orthonormal: exact, DESIGN.md §7).  For hidden neuron i
 * with pre-activation increment q = w_i . v (w_i in its layer's input block)
 * and output increment z, slope restriction to [a, b] gives
 * (z - a q)(z - b q) <= 0, so 2 t_i (z - a q)(z - b q) >= ... and the form
 *     S(rho, t) = rho diag(I, 0..0) - diag(0..0, W_k^T W_k)
 *                 + sum_i t_i Phi_i,   Phi_i = 1/2 (g g^T - (b - a)^2 w w^T),
 *     g = 2 e_z - (a + b) w   (Phi_i is 2 sym((e_z - a w)(e_z - b w)^T)),
 * is PSD with t >= 0 exactly when Fazlyab et al.'s matrix is NSD: then
 * |f(x) - f(x')|^2 <= rho |x - x'|^2.  DSDP: maximise -rho subject to
 * C - rho A_rho - sum t_i A_i >= 0 with C = -diag(0, W_k^T W_k),
 * A_rho = -diag(I, 0), A_i = -Phi_i (two rank-one matrices each).
 */

struct lipsdp {
	int nh;                      /* hidden layers (= nlayers - 1 >= 1) */
	int r;                       /* rank of W_0: size of the x block */
	int off[NN_MAX_LAYERS + 1];  /* block offsets: x at 0, z_l at off[l] */
	int order;                   /* r + hidden neurons */
	int hidden;                  /* hidden neurons */
	double *b0;                  /* (dim[1], r) the reduced first layer */
};

static void lipsdp_free(struct lipsdp *p)
{
	free(p->b0);
	p->b0 = NULL;
}

static sl_status lipsdp_setup(const struct bounds_mlp *m, struct lipsdp *p, struct sl_error *err)
{
	memset(p, 0, sizeof *p);
	int n1 = m->dim[1], d0 = m->dim[0];
	p->nh = m->nlayers - 1;
	sl_status st = SL_OK;
	if (n1 >= d0) {
		p->r = d0;
		p->b0 = malloc(sizeof(double) * (size_t)n1 * d0);
		if (!p->b0)
			return status_set(err, SL_ERR_NOMEM, "LipSDP: first layer");
		memcpy(p->b0, m->w[0], sizeof(double) * (size_t)n1 * d0);
	} else {
		/* G = W_0 W_0^T (n1, n1), its eigenvectors, B = U_+ S_+^{1/2} */
		double *g = malloc(sizeof(double) * (size_t)n1 * n1);
		double *ev = malloc(sizeof(double) * (size_t)n1);
		double *u = malloc(sizeof(double) * (size_t)n1 * n1);
		p->b0 = malloc(sizeof(double) * (size_t)n1 * n1);
		if (!g || !ev || !u || !p->b0) {
			st = status_set(err, SL_ERR_NOMEM, "LipSDP: first layer");
			goto reduce_out;
		}
		for (int i = 0; i < n1; i++)
			for (int j = 0; j <= i; j++) {
				const double *wi = m->w[0] + (size_t)i * d0, *wj = m->w[0] + (size_t)j * d0;
				double s = 0;
				for (int k = 0; k < d0; k++)
					s += wi[k] * wj[k];
				g[(size_t)i * n1 + j] = g[(size_t)j * n1 + i] = s;
			}
		if ((st = linalg_sym_eig(g, n1, ev, u, err)) != SL_OK)
			goto reduce_out;
		double tol = 1e-12 * fmax(ev[n1 - 1], 0);
		int r = 0;
		for (int k = n1 - 1; k >= 0; k--) { /* largest first */
			if (!(ev[k] > tol))
				break;
			double s = sqrt(ev[k]);
			for (int i = 0; i < n1; i++)
				p->b0[(size_t)i * n1 + r] = u[(size_t)i * n1 + k] * s;
			r++;
		}
		/* compact the rows to (n1, r) */
		for (int i = 0; i < n1; i++)
			memmove(p->b0 + (size_t)i * (r ? r : 1), p->b0 + (size_t)i * n1,
				sizeof(double) * (size_t)r);
		p->r = r;
	reduce_out:
		free(g);
		free(ev);
		free(u);
		if (st != SL_OK) {
			lipsdp_free(p);
			return st;
		}
	}
	p->off[0] = 0;
	p->off[1] = p->r;
	for (int l = 1; l <= p->nh; l++)
		p->off[l + 1] = p->off[l] + m->dim[l];
	p->order = p->off[p->nh + 1];
	p->hidden = p->order - p->r;
	return SL_OK;
}

/* Hidden layer l's (0-based) weight as the SDP sees it: rows dim[l + 1], in
 * columns starting at off[l]. */
static const double *lipsdp_weight(const struct bounds_mlp *m, const struct lipsdp *p, int l,
				   int *cols)
{
	*cols = l == 0 ? p->r : m->dim[l];
	return l == 0 ? p->b0 : m->w[l];
}

sl_status bounds_sdp_fits(const struct bounds_mlp *m, int *order, struct sl_error *err)
{
	long o = m->dim[0] < m->dim[1] ? m->dim[0] : m->dim[1];
	for (int l = 1; l < m->nlayers; l++)
		o += m->dim[l];
	if (order)
		*order = (int)(o > 1 << 30 ? 1 << 30 : o);
	if (o > BOUNDS_SDP_MAX_ORDER)
		return status_set(err, SL_ERR_TOO_LARGE,
				  "too large for LipSDP: the network needs an SDP of order %ld, "
				  "above the limit %d (about a minute for one SDP)",
				  o, BOUNDS_SDP_MAX_ORDER);
	return SL_OK;
}

/* S(rho, t) densely into s (order^2), for the check. */
static void lipsdp_matrix(const struct bounds_mlp *m, const struct lipsdp *p, const double *dir,
			  double rho, const double *t, double *s)
{
	int n = p->order;
	memset(s, 0, sizeof(double) * (size_t)n * n);
	for (int k = 0; k < p->r; k++)
		s[(size_t)k * n + k] = rho;
	/* - W_k^T W_k (or c c^T) on the last hidden block */
	int last = m->nlayers - 1, h = m->dim[last], o = p->off[p->nh], rows = m->dim[last + 1];
	const double *wl = m->w[last];
	for (int i = 0; i < h; i++)
		for (int j = 0; j < h; j++) {
			double v = 0;
			if (dir) {
				double ci = 0, cj = 0;
				for (int k = 0; k < rows; k++) {
					ci += dir[k] * wl[(size_t)k * h + i];
					cj += dir[k] * wl[(size_t)k * h + j];
				}
				v = ci * cj;
			} else {
				for (int k = 0; k < rows; k++)
					v += wl[(size_t)k * h + i] * wl[(size_t)k * h + j];
			}
			s[(size_t)(o + i) * n + o + j] -= v;
		}
	int ti = 0;
	for (int l = 0; l < p->nh; l++) {
		int cols;
		const double *w = lipsdp_weight(m, p, l, &cols);
		double a = m->alpha[l], b = m->beta[l];
		for (int k = 0; k < m->dim[l + 1]; k++, ti++) {
			double tk = t[ti];
			if (tk == 0)
				continue;
			const double *wk = w + (size_t)k * cols;
			int z = p->off[l + 1] + k, in = p->off[l];
			/* Phi = 1/2 (g g^T - (b - a)^2 w w^T), g = 2 e_z - (a + b) w */
			for (int i = 0; i < cols; i++)
				for (int j = 0; j < cols; j++)
					s[(size_t)(in + i) * n + in + j] +=
						tk * 0.5 * ((a + b) * (a + b) - (b - a) * (b - a)) *
						wk[i] * wk[j];
			for (int i = 0; i < cols; i++) {
				double v = tk * 0.5 * (-2 * (a + b)) * wk[i];
				s[(size_t)(in + i) * n + z] += v;
				s[(size_t)z * n + in + i] += v;
			}
			s[(size_t)z * n + z] += tk * 2;
		}
	}
}

/* The vector c^T W_last (hidden values) of the last layer in direction dir. */
static void last_direction(const struct bounds_mlp *m, const double *dir, double *c)
{
	int last = m->nlayers - 1, h = m->dim[last], rows = m->dim[last + 1];
	for (int i = 0; i < h; i++) {
		double v = 0;
		for (int k = 0; k < rows; k++)
			v += dir[k] * m->w[last][(size_t)k * h + i];
		c[i] = v;
	}
}

static sl_status lipsdp_solve(const struct bounds_mlp *m, const struct lipsdp *p,
			      const double *dir, double *L, struct sl_error *err)
{
	int n = p->order, nvar = 1 + p->hidden, last = m->nlayers - 1;
	int h = m->dim[last], rows = m->dim[last + 1];
	int maxin = p->r;
	for (int l = 1; l < p->nh; l++)
		maxin = m->dim[l] > maxin ? m->dim[l] : maxin;
	/* C: rows (or 1) vectors of h; A_rho: r diagonal; per neuron g (1 + in), w (in) */
	size_t cap = (size_t)(rows + 1) * h + (size_t)p->r + (size_t)p->hidden * (2 * maxin + 1);
	int *idx = malloc(sizeof(int) * cap);
	double *val = malloc(sizeof(double) * cap);
	double *y = malloc(sizeof(double) * (size_t)nvar);
	double *s = malloc(sizeof(double) * (size_t)n * n);
	double *ev = malloc(sizeof(double) * (size_t)n);
	DSDP dsdp = NULL;
	sl_status st = SL_OK;
	if (!idx || !val || !y || !s || !ev) {
		st = status_set(err, SL_ERR_NOMEM, "LipSDP: order %d", n);
		goto out;
	}
	size_t at = 0;
	int info = DSDPCreate(nvar, &dsdp);
	SDPCone cone;
	BCone bounds;
	info = info || DSDPCreateSDPCone(dsdp, 1, &cone);
	info = info || SDPConeSetBlockSize(cone, 0, n);
	info = info || SDPConeUseFullSymmetricFormat(cone, 0);
	/* C = -(W_k^T W_k) = -sum_rows w w^T, or -c c^T */
	int o = p->off[p->nh];
	if (dir) {
		last_direction(m, dir, val + at);
		for (int i = 0; i < h; i++)
			idx[at + i] = o + i;
		info = info || SDPConeSetARankOneMat(cone, 0, 0, n, -1.0, 0, idx + at, val + at, h);
		at += (size_t)h;
	} else {
		for (int k = 0; k < rows && !info; k++) {
			for (int i = 0; i < h; i++) {
				idx[at + i] = o + i;
				val[at + i] = m->w[last][(size_t)k * h + i];
			}
			info = k == 0 ? SDPConeSetARankOneMat(cone, 0, 0, n, -1.0, 0, idx + at,
							      val + at, h)
				      : SDPConeAddARankOneMat(cone, 0, 0, n, -1.0, 0, idx + at,
							      val + at, h);
			at += (size_t)h;
		}
	}
	/* A_rho = -diag(I_r, 0) */
	for (int k = 0; k < p->r; k++) {
		idx[at + k] = k * n + k;
		val[at + k] = 1;
	}
	info = info || SDPConeSetASparseVecMat(cone, 0, 1, n, -1.0, 0, idx + at, val + at, p->r);
	at += (size_t)p->r;
	/* A_i = -Phi_i = -1/2 g g^T + (b - a)^2 / 2 w w^T */
	int var = 2;
	for (int l = 0; l < p->nh && !info; l++) {
		int cols;
		const double *w = lipsdp_weight(m, p, l, &cols);
		double a = m->alpha[l], b = m->beta[l];
		for (int k = 0; k < m->dim[l + 1] && !info; k++, var++) {
			const double *wk = w + (size_t)k * cols;
			int *gi = idx + at;
			double *gv = val + at;
			int gn = 0;
			for (int j = 0; j < cols; j++)
				if (wk[j] != 0) {
					gi[gn] = p->off[l] + j;
					gv[gn++] = -(a + b) * wk[j];
				}
			gi[gn] = p->off[l + 1] + k;
			gv[gn++] = 2;
			at += (size_t)gn;
			info = SDPConeSetARankOneMat(cone, 0, var, n, -0.5, 0, gi, gv, gn);
			if (b != a && !info) {
				int *wi = idx + at;
				double *wv = val + at;
				int wn = 0;
				for (int j = 0; j < cols; j++)
					if (wk[j] != 0) {
						wi[wn] = p->off[l] + j;
						wv[wn++] = wk[j];
					}
				at += (size_t)wn;
				if (wn > 0)
					info = SDPConeAddARankOneMat(cone, 0, var, n,
								     0.5 * (b - a) * (b - a), 0, wi,
								     wv, wn);
			}
		}
	}
	info = info || DSDPCreateBCone(dsdp, &bounds);
	info = info || BConeAllocateBounds(bounds, nvar);
	for (int v = 1; v <= nvar && !info; v++)
		info = BConeSetLowerBound(bounds, v, 0.0);
	info = info || DSDPSetDualObjective(dsdp, 1, -1.0);
	info = info || DSDPSetGapTolerance(dsdp, 1e-5);
	info = info || DSDPSetMaxIts(dsdp, 500);
	info = info || DSDPSetup(dsdp);
	info = info || DSDPSolve(dsdp);
	if (info) {
		st = status_set(err, SL_ERR_NUMERIC, "LipSDP: DSDP failed (code %d), order %d", info,
				n);
		goto out;
	}
	DSDPSolutionType type;
	DSDPGetSolutionType(dsdp, &type);
	DSDPGetY(dsdp, y, nvar);
	if (type == DSDP_INFEASIBLE || type == DSDP_UNBOUNDED) {
		st = status_set(err, SL_ERR_NUMERIC, "LipSDP: DSDP reports the SDP %s",
				type == DSDP_INFEASIBLE ? "infeasible" : "unbounded");
		goto out;
	}
	/* Check: S(rho, t) >= 0 up to the solver's accuracy, then a margin that
	 * covers what is left (the x block is the only place rho enters, so a
	 * negative eigenvalue is repaired by raising rho only if it lives
	 * there; a larger one is a failure). */
	double rho = fmax(y[0], 0);
	for (int v = 1; v < nvar; v++)
		y[v] = fmax(y[v], 0);
	lipsdp_matrix(m, p, dir, rho, y + 1, s);
	if ((st = linalg_sym_eig(s, n, ev, NULL, err)) != SL_OK)
		goto out;
	double scale = 1 + rho;
	for (int v = 1; v < nvar; v++)
		scale = fmax(scale, y[v]);
	if (ev[0] < -1e-6 * scale) {
		st = status_set(err, SL_ERR_NUMERIC,
				"LipSDP: DSDP's answer does not check out (smallest eigenvalue %g)",
				ev[0]);
		goto out;
	}
	/* rho plus the check's slack, and a relative margin of 1e-6 */
	*L = sqrt((rho + fmax(-ev[0], 0)) * (1 + 1e-6));
out:
	if (dsdp)
		DSDPDestroy(dsdp);
	free(idx);
	free(val);
	free(y);
	free(s);
	free(ev);
	return st;
}

sl_status bounds_lipsdp(const struct bounds_mlp *m, const double *direction, double *L,
			struct sl_error *err)
{
	int last = m->nlayers - 1;
	if (m->nlayers == 1) { /* one affine layer: its norm (in a direction: |W^T c|) */
		if (!direction)
			return spectral_norm_d(m->w[0], m->dim[1], m->dim[0], L, err);
		int c = m->dim[0];
		double s = 0;
		for (int j = 0; j < c; j++) {
			double v = 0;
			for (int k = 0; k < m->dim[1]; k++)
				v += direction[k] * m->w[0][(size_t)k * c + j];
			s += v * v;
		}
		*L = sqrt(s);
		return SL_OK;
	}
	(void)last;
	sl_status st = bounds_sdp_fits(m, NULL, err);
	if (st != SL_OK)
		return st;
	struct lipsdp p;
	if ((st = lipsdp_setup(m, &p, err)) != SL_OK)
		return st;
	if (p.r == 0) { /* W_0 = 0: the network is constant */
		*L = 0;
	} else {
		st = lipsdp_solve(m, &p, direction, L, err);
	}
	lipsdp_free(&p);
	return st;
}

sl_status bounds_lipsdp_pairs(const struct bounds_mlp *m, double *pair, struct sl_error *err)
{
	int k = m->dim[m->nlayers], order;
	sl_status fit = bounds_sdp_fits(m, &order, err);
	if (fit != SL_OK)
		return fit;
	if (m->nlayers > 1 && order > BOUNDS_PAIR_SDP_MAX_ORDER)
		return status_set(err, SL_ERR_TOO_LARGE,
				  "too large for the per-pair SDPs: %d SDPs of order %d, above the "
				  "limit %d (about half a minute for all of them)",
				  k * (k - 1) / 2, order, BOUNDS_PAIR_SDP_MAX_ORDER);
	double *dir = calloc((size_t)k, sizeof(double));
	if (!dir)
		return status_set(err, SL_ERR_NOMEM, "LipSDP pairs");
	sl_status st = SL_OK;
	for (int y = 0; y < k && st == SL_OK; y++) {
		pair[y * k + y] = 0;
		for (int j = y + 1; j < k && st == SL_OK; j++) {
			dir[y] = 1;
			dir[j] = -1;
			double L = 0;
			st = bounds_lipsdp(m, dir, &L, err);
			pair[y * k + j] = pair[j * k + y] = L;
			dir[y] = dir[j] = 0;
		}
	}
	free(dir);
	return st;
}

/* ---- The tightest sector ----
 *
 * Variables (DSDP numbers them from 1): nu, then (nu_i, delta_i) for each
 * layer, then each layer's multipliers Lambda_i.  Blocks: each layer's
 * reduced Theorem 1 LMI (lmi.h: M_i = C_i - delta_i diag(I, 0) - nu_i
 * diag(0, I) + sum_k lambda_k M_k >= 0), and -A of the corrected Theorem 3
 * (DESIGN.md §1): -A_11 = nu_1 - nu, -A_jj = nu_j + delta_{j-1},
 * -A_{n+1,n+1} = delta_n - delta, off-diagonals -1/2 (j, j+1) and +1/2
 * (1, n+1).  Maximise nu.
 */

struct sector_sdp {
	int n;
	struct lmi_layer red[NN_MAX_LAYERS];
	bool complement[NN_MAX_LAYERS];
	int lam0[NN_MAX_LAYERS]; /* first multiplier's variable number per layer */
	int nvar;
};

static void sector_sdp_free(struct sector_sdp *q)
{
	for (int i = 0; i < q->n; i++) {
		free((double *)q->red[i].w);
		q->red[i].w = NULL;
	}
}

static sl_status sector_sdp_setup(const struct bounds_mlp *m, struct sector_sdp *q,
				  struct sl_error *err)
{
	memset(q, 0, sizeof *q);
	sl_status st = SL_OK;
	int var = 2 + 2 * m->nlayers;
	for (int i = 0; i < m->nlayers; i++) {
		if ((st = lmi_fits(m->dim[i + 1], m->dim[i], err)) != SL_OK)
			break;
		struct sector_act act;
		if ((st = sector_act_bounds(m->alpha[i], m->beta[i], &act, err)) != SL_OK)
			break;
		struct lmi_layer l = {m->w[i], m->dim[i + 1], m->dim[i], act.m, act.p};
		if ((st = lmi_reduce(&l, &q->red[i], &q->complement[i], err)) != SL_OK)
			break;
		q->n = i + 1;
		q->lam0[i] = var;
		var += m->dim[i + 1];
	}
	q->nvar = var - 1;
	if (st != SL_OK)
		sector_sdp_free(q);
	return st;
}

static int var_nu_i(int i) { return 2 + 2 * i; }
static int var_delta_i(int i) { return 3 + 2 * i; }

/* Smallest eigenvalue of the whole solution, block by block. */
static sl_status sector_check(const struct sector_sdp *q, double nu, double delta,
			      const double *nu_i, const double *delta_i, double *const *lambda,
			      double *worst, struct sl_error *err)
{
	*worst = INFINITY;
	for (int i = 0; i < q->n; i++) {
		const struct lmi_layer *l = &q->red[i];
		int order = l->rows + l->cols;
		double *mat = malloc(sizeof(double) * (size_t)order * order);
		double *ev = malloc(sizeof(double) * (size_t)order);
		sl_status st = mat && ev ? SL_OK : status_set(err, SL_ERR_NOMEM, "sector check");
		if (st == SL_OK)
			st = lmi_matrix(l, nu_i[i], delta_i[i], lambda[i], mat, err);
		if (st == SL_OK)
			st = linalg_sym_eig(mat, order, ev, NULL, err);
		if (st == SL_OK) {
			*worst = fmin(*worst, ev[0]);
			if (q->complement[i])
				*worst = fmin(*worst, -nu_i[i]);
		}
		free(mat);
		free(ev);
		if (st != SL_OK)
			return st;
	}
	double a_max;
	sl_status st = sector_cascade_max_eig(nu, delta, nu_i, delta_i, q->n, &a_max, err);
	if (st == SL_OK)
		*worst = fmin(*worst, -a_max);
	return st;
}

sl_status bounds_sector_at(const struct bounds_mlp *m, double delta, struct bounds_sector *out,
			   struct sl_error *err)
{
	if (!(delta > 0) || !isfinite(delta))
		return status_set(err, SL_ERR_ARG, "tightest sector: delta %g must be positive",
				  delta);
	struct sector_sdp q;
	sl_status st = sector_sdp_setup(m, &q, err);
	if (st != SL_OK)
		return st;
	int n = q.n, nvar = q.nvar;
	size_t cap = (size_t)(n + 1) * 4 + 8;
	for (int i = 0; i < n; i++) {
		const struct lmi_layer *l = &q.red[i];
		cap += (size_t)(2 * l->rows + 2 * l->cols) + (size_t)l->rows * (2 * l->cols + 1);
	}
	int *idx = malloc(sizeof(int) * cap);
	double *val = malloc(sizeof(double) * cap);
	double *y = malloc(sizeof(double) * (size_t)nvar);
	double *lam[NN_MAX_LAYERS] = {0};
	DSDP dsdp = NULL;
	if (!idx || !val || !y) {
		st = status_set(err, SL_ERR_NOMEM, "tightest sector");
		goto out;
	}
	size_t at = 0;
	int info = DSDPCreate(nvar, &dsdp);
	SDPCone cone;
	BCone bounds;
	info = info || DSDPCreateSDPCone(dsdp, n + 1, &cone);
	for (int i = 0; i < n && !info; i++) {
		const struct lmi_layer *l = &q.red[i];
		int r = l->rows, c = l->cols, ord = r + c, diag = r < c ? r : c;
		info = SDPConeSetBlockSize(cone, i, ord);
		info = info || SDPConeUseFullSymmetricFormat(cone, i);
		/* C_i: 1/2 E */
		for (int k = 0; k < diag; k++) {
			idx[at + k] = (r + k) * ord + k;
			val[at + k] = 0.5;
		}
		info = info || SDPConeSetASparseVecMat(cone, i, 0, ord, 1.0, 0, idx + at,
						       val + at, diag);
		at += (size_t)diag;
		/* delta_i: diag(I_r, 0); nu_i: diag(0, I_c) */
		for (int k = 0; k < r; k++) {
			idx[at + k] = k * ord + k;
			val[at + k] = 1;
		}
		info = info || SDPConeSetASparseVecMat(cone, i, var_delta_i(i), ord, 1.0, 0,
						       idx + at, val + at, r);
		at += (size_t)r;
		for (int k = 0; k < c; k++) {
			idx[at + k] = (r + k) * ord + r + k;
			val[at + k] = 1;
		}
		info = info || SDPConeSetASparseVecMat(cone, i, var_nu_i(i), ord, 1.0, 0,
						       idx + at, val + at, c);
		at += (size_t)c;
		/* lambda_k: -v v^T + (m^2 - p) u u^T, v = [e_k; -m w_k], u = [0; w_k] */
		for (int k = 0; k < r && !info; k++) {
			const double *wk = l->w + (size_t)k * c;
			int vn = 0;
			idx[at] = k;
			val[at] = 1;
			vn = 1;
			for (int j = 0; j < c; j++)
				if (wk[j] != 0) {
					idx[at + vn] = r + j;
					val[at + vn++] = -l->m * wk[j];
				}
			info = SDPConeSetARankOneMat(cone, i, q.lam0[i] + k, ord, -1.0, 0, idx + at,
						     val + at, vn);
			at += (size_t)vn;
			if (l->m * l->m - l->p != 0 && !info) {
				int un = 0;
				for (int j = 0; j < c; j++)
					if (wk[j] != 0) {
						idx[at + un] = r + j;
						val[at + un++] = wk[j];
					}
				if (un > 0)
					info = SDPConeAddARankOneMat(cone, i, q.lam0[i] + k, ord,
								     l->m * l->m - l->p, 0,
								     idx + at, val + at, un);
				at += (size_t)un;
			}
		}
	}
	/* the cascade block, order n + 1 */
	int ab = n, ao = n + 1;
	info = info || SDPConeSetBlockSize(cone, ab, ao);
	info = info || SDPConeUseFullSymmetricFormat(cone, ab);
	if (!info) {
		int cn = 0;
		for (int j = 0; j < n; j++) { /* -1/2 at (j + 1, j) */
			idx[at + cn] = (j + 1) * ao + j;
			val[at + cn++] = -0.5;
		}
		idx[at + cn] = n * ao + n;
		val[at + cn++] = -delta;
		/* +1/2 at (n, 0); for n = 1 it meets the -1/2 at (1, 0) */
		if (n == 1) {
			val[at] += 0.5;
		} else {
			idx[at + cn] = n * ao + 0;
			val[at + cn++] = 0.5;
		}
		info = SDPConeSetASparseVecMat(cone, ab, 0, ao, 1.0, 0, idx + at, val + at, cn);
		at += (size_t)cn;
		/* nu: +1 at (0, 0); nu_1: -1 at (0, 0); nu_j: -1 at (j - 1); delta_i: -1 at (i + 1) */
		idx[at] = 0;
		val[at] = 1;
		info = info || SDPConeSetASparseVecMat(cone, ab, 1, ao, 1.0, 0, idx + at, val + at, 1);
		at++;
		for (int i = 0; i < n && !info; i++) {
			idx[at] = i * ao + i;
			val[at] = -1;
			info = SDPConeSetASparseVecMat(cone, ab, var_nu_i(i), ao, 1.0, 0, idx + at,
						       val + at, 1);
			at++;
			idx[at] = (i + 1) * ao + i + 1;
			val[at] = -1;
			info = info || SDPConeSetASparseVecMat(cone, ab, var_delta_i(i), ao, 1.0, 0,
							       idx + at, val + at, 1);
			at++;
		}
	}
	info = info || DSDPCreateBCone(dsdp, &bounds);
	info = info || BConeAllocateBounds(bounds, nvar);
	for (int i = 0; i < n && !info; i++) {
		for (int k = 0; k < q.red[i].rows && !info; k++)
			info = BConeSetLowerBound(bounds, q.lam0[i] + k, 0.0);
		if (q.complement[i] && !info)
			info = BConeSetUpperBound(bounds, var_nu_i(i), 0.0);
	}
	info = info || DSDPSetDualObjective(dsdp, 1, 1.0);
	info = info || DSDPSetGapTolerance(dsdp, 1e-8);
	info = info || DSDPSetMaxIts(dsdp, 500);
	info = info || DSDPSetup(dsdp);
	info = info || DSDPSolve(dsdp);
	if (info) {
		st = status_set(err, SL_ERR_NUMERIC, "tightest sector: DSDP failed (code %d)",
				info);
		goto out;
	}
	DSDPSolutionType type;
	DSDPGetSolutionType(dsdp, &type);
	DSDPGetY(dsdp, y, nvar);
	if (type == DSDP_INFEASIBLE || type == DSDP_UNBOUNDED) {
		st = status_set(err, SL_ERR_NUMERIC, "tightest sector: DSDP reports the SDP %s",
				type == DSDP_INFEASIBLE ? "infeasible" : "unbounded");
		goto out;
	}
	struct bounds_sector r = {.delta = delta, .nlayers = n, .sdps = 1};
	for (int i = 0; i < n; i++) {
		r.nu_i[i] = y[var_nu_i(i) - 1];
		r.delta_i[i] = y[var_delta_i(i) - 1];
		lam[i] = malloc(sizeof(double) * (size_t)q.red[i].rows);
		if (!lam[i]) {
			st = status_set(err, SL_ERR_NOMEM, "tightest sector");
			goto out;
		}
		for (int k = 0; k < q.red[i].rows; k++)
			lam[i][k] = fmax(y[q.lam0[i] + k - 1], 0);
	}
	/* Check every block.  What the solver leaves unsatisfied (at most its
	 * accuracy) is taken off nu: lowering nu by e raises -A_11 by e, and a
	 * layer's slack is moved into the cascade through nu_i the same way, so
	 * the reported nu is certified by the matrices as computed. */
	double worst;
	r.nu = y[0];
	if ((st = sector_check(&q, r.nu, delta, r.nu_i, r.delta_i, lam, &worst, err)) != SL_OK)
		goto out;
	double scale = 1 + fabs(r.nu) + delta;
	for (int i = 0; i < n; i++)
		scale = fmax(scale, fmax(fabs(r.nu_i[i]), fabs(r.delta_i[i])));
	if (worst < -1e-6 * scale) {
		st = status_set(err, SL_ERR_NUMERIC,
				"tightest sector: DSDP's answer does not check out (smallest "
				"eigenvalue %g at delta %g)",
				worst, delta);
		goto out;
	}
	if (worst < 0) {
		/* lower each layer's nu_i by |worst| (its LMI's dx block gains it) and
		 * nu by (n + 2) |worst| so that -A stays PSD (Gershgorin on the change) */
		double e = -worst;
		for (int i = 0; i < n; i++)
			r.nu_i[i] -= e;
		r.nu -= (n + 2) * e;
		double again;
		if ((st = sector_check(&q, r.nu, delta, r.nu_i, r.delta_i, lam, &again, err)) !=
		    SL_OK)
			goto out;
		if (again < 0) {
			st = status_set(err, SL_ERR_NUMERIC,
					"tightest sector: the repaired answer fails its check (%g)",
					again);
			goto out;
		}
	}
	double nu_eff = fmin(r.nu, 1 / (4 * delta));
	if ((st = sector_gamma(nu_eff, delta, &r.gamma, err)) != SL_OK)
		goto out;
	*out = r;
out:
	if (dsdp)
		DSDPDestroy(dsdp);
	for (int i = 0; i < n; i++)
		free(lam[i]);
	free(idx);
	free(val);
	free(y);
	sector_sdp_free(&q);
	return st;
}

/* gamma at delta = e^t, or INFINITY when the SDP fails there; keeps the best. */
/* The search's stop hook, and whether it fired. */
struct sector_stop {
	bool (*stop)(void *ctx);
	void *ctx;
	bool stopped;
};

static double sector_eval(const struct bounds_mlp *m, double t, struct bounds_sector *best,
			  int *sdps, struct sl_error *last, struct sector_stop *stop)
{
	struct bounds_sector s;
	if (stop->stopped || (stop->stop && stop->stop(stop->ctx))) {
		stop->stopped = true;
		return INFINITY;
	}
	(*sdps)++;
	if (bounds_sector_at(m, exp(t), &s, last) != SL_OK)
		return INFINITY;
	if (s.gamma < best->gamma)
		*best = s;
	return s.gamma;
}

sl_status bounds_tightest_sector(const struct bounds_mlp *m, struct bounds_sector *out,
				 struct sl_error *err)
{
	return bounds_tightest_sector_until(m, NULL, NULL, out, err);
}

sl_status bounds_tightest_sector_until(const struct bounds_mlp *m, bool (*stop)(void *ctx),
				       void *ctx, struct bounds_sector *out, struct sl_error *err)
{
	struct sector_stop halt = {.stop = stop, .ctx = ctx};
	/* gamma(delta) on a grid of decades from 1e-3 to 1e4 (a nearly
	 * symmetric sector [-L, L] needs a large delta: k_lo + k_hi = 1 /
	 * delta), extended while the best point is at an edge, then golden
	 * section between its neighbours.  Points where the SDP fails count as
	 * infinite. */
	enum { GRID = 8, EXTEND = 3, GOLDEN = 6 };
	double t[GRID + 2 * EXTEND], g[GRID + 2 * EXTEND];
	struct bounds_sector best = {.gamma = INFINITY};
	struct sl_error last;
	status_clear(&last);
	int sdps = 0, lo = EXTEND, hi = EXTEND + GRID - 1;
	for (int k = lo; k <= hi; k++) {
		t[k] = log(10.0) * (k - EXTEND - 3);
		g[k] = sector_eval(m, t[k], &best, &sdps, &last, &halt);
	}
	for (;;) {
		int kb = lo;
		for (int k = lo + 1; k <= hi; k++)
			if (g[k] < g[kb])
				kb = k;
		if (kb == lo && lo > 0 && isfinite(g[kb])) {
			lo--;
			t[lo] = t[lo + 1] - log(10.0);
			g[lo] = sector_eval(m, t[lo], &best, &sdps, &last, &halt);
		} else if (kb == hi && hi < GRID + 2 * EXTEND - 1 && isfinite(g[kb])) {
			hi++;
			t[hi] = t[hi - 1] + log(10.0);
			g[hi] = sector_eval(m, t[hi], &best, &sdps, &last, &halt);
		} else {
			break;
		}
	}
	int kb = lo;
	for (int k = lo + 1; k <= hi; k++)
		if (g[k] < g[kb])
			kb = k;
	if (halt.stopped)
		return status_set(err, SL_ERR_CANCELLED, "tightest sector: stopped");
	if (!isfinite(g[kb])) {
		if (err)
			*err = last;
		return last.code != SL_OK ? last.code : SL_ERR_NUMERIC;
	}
	double a = t[kb > lo ? kb - 1 : lo], b = t[kb < hi ? kb + 1 : hi];
	const double phi = 0.6180339887498949;
	double c = b - phi * (b - a), d = a + phi * (b - a);
	double gc = sector_eval(m, c, &best, &sdps, &last, &halt);
	double gd = sector_eval(m, d, &best, &sdps, &last, &halt);
	for (int it = 0; it < GOLDEN; it++) {
		if (gc <= gd) {
			b = d;
			d = c;
			gd = gc;
			c = b - phi * (b - a);
			gc = sector_eval(m, c, &best, &sdps, &last, &halt);
		} else {
			a = c;
			c = d;
			gc = gd;
			d = a + phi * (b - a);
			gd = sector_eval(m, d, &best, &sdps, &last, &halt);
		}
	}
	if (halt.stopped)
		return status_set(err, SL_ERR_CANCELLED, "tightest sector: stopped");
	best.sdps = sdps;
	*out = best;
	return SL_OK;
}

/* ---- Brute force over activation patterns ---- */

sl_status bounds_pattern_max(const struct bounds_mlp *m, const double *direction, double *L,
			     struct sl_error *err)
{
	int hidden = 0;
	for (int l = 1; l < m->nlayers; l++)
		hidden += m->dim[l];
	if (hidden > 20)
		return status_set(err, SL_ERR_TOO_LARGE,
				  "brute force: %d hidden neurons (at most 20)", hidden);
	int d0 = m->dim[0], w = widest(m), out_dim = m->dim[m->nlayers];
	double *j0 = malloc(sizeof(double) * (size_t)w * d0);
	double *j1 = malloc(sizeof(double) * (size_t)w * d0);
	double *sv = malloc(sizeof(double) * (size_t)(w > d0 ? w : d0));
	if (!j0 || !j1 || !sv) {
		free(j0);
		free(j1);
		free(sv);
		return status_set(err, SL_ERR_NOMEM, "brute force");
	}
	sl_status st = SL_OK;
	double best = 0;
	for (long pat = 0; pat < 1L << hidden && st == SL_OK; pat++) {
		memset(j0, 0, sizeof(double) * (size_t)d0 * d0);
		for (int k = 0; k < d0; k++)
			j0[(size_t)k * d0 + k] = 1;
		int bit = 0;
		for (int i = 0; i < m->nlayers; i++) {
			int r = m->dim[i + 1], c = m->dim[i];
			bool act = i < m->nlayers - 1;
			for (int k = 0; k < r; k++) {
				double s = act ? ((pat >> bit++) & 1 ? m->beta[i] : m->alpha[i]) : 1;
				double *row = j1 + (size_t)k * d0;
				memset(row, 0, sizeof(double) * (size_t)d0);
				for (int j = 0; j < c; j++) {
					double f = s * m->w[i][(size_t)k * c + j];
					for (int t = 0; t < d0; t++)
						row[t] += f * j0[(size_t)j * d0 + t];
				}
			}
			double *tmp = j0;
			j0 = j1;
			j1 = tmp;
		}
		double v;
		if (direction) {
			double s = 0;
			for (int t = 0; t < d0; t++) {
				double e = 0;
				for (int k = 0; k < out_dim; k++)
					e += direction[k] * j0[(size_t)k * d0 + t];
				s += e * e;
			}
			v = sqrt(s);
		} else {
			st = spectral_norm_d(j0, out_dim, d0, &v, err);
		}
		best = fmax(best, v);
	}
	free(j0);
	free(j1);
	free(sv);
	if (st == SL_OK)
		*L = best;
	return st;
}

/* ---- The Lipschitz floor ---- */

/* Vector-Jacobian product: g (dim[0]) = J(x)^T v, and f(x) into z. */
static sl_status vjp(const struct bounds_mlp *m, const double *x, const double *v, double *g,
		     double *z, struct sl_error *err)
{
	return seeded_rows(m, x, v, 1, g, z, err);
}

/* Record the Jacobian's norm at x (and every pair's) into out. */
static sl_status floor_at(const struct bounds_mlp *m, const double *x, double *jac,
			  struct bounds_floor *out, struct sl_error *err)
{
	int d0 = m->dim[0], k = m->dim[m->nlayers];
	sl_status st = bounds_mlp_jacobian(m, x, jac, err);
	if (st != SL_OK)
		return st;
	double s;
	if ((st = spectral_norm_d(jac, k, d0, &s, err)) != SL_OK)
		return st;
	out->L = fmax(out->L, s);
	out->evaluations++;
	if (out->pair)
		for (int y = 0; y < k; y++)
			for (int j = y + 1; j < k; j++) {
				double q = 0;
				for (int t = 0; t < d0; t++) {
					double e = jac[(size_t)y * d0 + t] - jac[(size_t)j * d0 + t];
					q += e * e;
				}
				q = sqrt(q);
				if (q > out->pair[y * k + j])
					out->pair[y * k + j] = out->pair[j * k + y] = q;
			}
	return SL_OK;
}

sl_status bounds_floor_lipschitz(const struct bounds_mlp *m, const double *starts, int nstarts,
				 int steps, uint64_t seed, struct bounds_floor *out,
				 struct sl_error *err)
{
	int d0 = m->dim[0], k = m->dim[m->nlayers];
	out->L = 0;
	out->evaluations = 0;
	if (out->pair)
		memset(out->pair, 0, sizeof(double) * (size_t)k * k);
	double *x = malloc(sizeof(double) * (size_t)d0);
	double *y = malloc(sizeof(double) * (size_t)d0);
	double *gx = malloc(sizeof(double) * (size_t)d0);
	double *gy = malloc(sizeof(double) * (size_t)d0);
	double *fx = malloc(sizeof(double) * (size_t)k);
	double *fy = malloc(sizeof(double) * (size_t)k);
	double *dd = malloc(sizeof(double) * (size_t)k);
	double *jac = malloc(sizeof(double) * (size_t)k * d0);
	struct sl_rng rng;
	rng_seed(&rng, seed);
	sl_status st = SL_OK;
	if (!x || !y || !gx || !gy || !fx || !fy || !dd || !jac) {
		st = status_set(err, SL_ERR_NOMEM, "floor");
		goto out;
	}
	for (int s = 0; s < nstarts && st == SL_OK; s++) {
		memcpy(x, starts + (size_t)s * d0, sizeof(double) * (size_t)d0);
		if ((st = floor_at(m, x, jac, out, err)) != SL_OK)
			break;
		/* y = x + a step along the Jacobian's top right singular vector,
		 * approximated by J^T applied to a random output direction */
		for (int c = 0; c < k; c++)
			dd[c] = rng_normal(&rng);
		double nd = 0;
		for (int t = 0; t < d0; t++) {
			double v = 0;
			for (int c = 0; c < k; c++)
				v += dd[c] * jac[(size_t)c * d0 + t];
			gx[t] = v;
			nd += v * v;
		}
		nd = sqrt(nd);
		double xn = 0;
		for (int t = 0; t < d0; t++)
			xn += x[t] * x[t];
		double sep = 0.05 * (1 + sqrt(xn)); /* separation of the pair */
		for (int t = 0; t < d0; t++)
			y[t] = x[t] + (nd > 0 ? sep * gx[t] / nd : sep * rng_normal(&rng) / sqrt(d0));
		/* ascent on R^2 = |f(x) - f(y)|^2 / |x - y|^2 */
		for (int it = 0; it < steps && st == SL_OK; it++) {
			bounds_mlp_forward(m, x, fx);
			bounds_mlp_forward(m, y, fy);
			double num = 0, den = 0;
			for (int c = 0; c < k; c++) {
				dd[c] = fx[c] - fy[c];
				num += dd[c] * dd[c];
			}
			for (int t = 0; t < d0; t++)
				den += (x[t] - y[t]) * (x[t] - y[t]);
			if (!(den > 0))
				break;
			out->L = fmax(out->L, sqrt(num / den));
			out->evaluations++;
			if ((st = vjp(m, x, dd, gx, fx, err)) != SL_OK)
				break;
			if ((st = vjp(m, y, dd, gy, fy, err)) != SL_OK)
				break;
			/* d R^2 / dx = 2 J(x)^T d / den - 2 num (x - y) / den^2; dy alike */
			double gn = 0;
			for (int t = 0; t < d0; t++) {
				double diff = x[t] - y[t];
				gx[t] = 2 * gx[t] / den - 2 * num * diff / (den * den);
				gy[t] = -2 * gy[t] / den + 2 * num * diff / (den * den);
				gn += gx[t] * gx[t] + gy[t] * gy[t];
			}
			gn = sqrt(gn);
			if (!(gn > 0))
				break;
			double stepsz = 0.2 * sqrt(den);
			for (int t = 0; t < d0; t++) {
				x[t] += stepsz * gx[t] / gn;
				y[t] += stepsz * gy[t] / gn;
			}
			if (it % 8 == 7 && (st = floor_at(m, x, jac, out, err)) != SL_OK)
				break;
		}
		if (st == SL_OK)
			st = floor_at(m, x, jac, out, err);
	}
out:
	free(x);
	free(y);
	free(gx);
	free(gy);
	free(fx);
	free(fy);
	free(dd);
	free(jac);
	return st;
}

/*
 * A point where every unit of layer i has its steepest slope, if one
 * exists: the least-squares solution u of W u + b = t (t = 1 for a leaky
 * ReLU, whose slope beta >= |alpha| is on the positive side; 0 for tanh),
 * by conjugate gradients on the normal equations (CGLS) from 0.  When W has
 * full row rank every pre-activation is then t and the layer's Jacobian
 * there is its steepest, beta W: the search need not stumble on that
 * region.  u has dim[i] values; work has 2 dim[i] + 2 dim[i + 1].
 */
static void steepest_point(const struct bounds_mlp *m, int i, double *u, double *work)
{
	int r = m->dim[i + 1], c = m->dim[i];
	const double *w = m->w[i];
	double t = m->act[i] == NN_ACT_TANH ? 0 : 1;
	double *res = work, *q = work + r, *sv = work + 2 * r, *p = sv + c;
	memset(u, 0, sizeof(double) * (size_t)c);
	for (int k = 0; k < r; k++)
		res[k] = t - m->b[i][k];
	double gamma = 0;
	for (int j = 0; j < c; j++) {
		double v = 0;
		for (int k = 0; k < r; k++)
			v += w[(size_t)k * c + j] * res[k];
		sv[j] = p[j] = v;
		gamma += v * v;
	}
	for (int it = 0; it < 2 * (r < c ? r : c) + 10 && gamma > 1e-30; it++) {
		double qq = 0;
		for (int k = 0; k < r; k++) {
			double v = 0;
			for (int j = 0; j < c; j++)
				v += w[(size_t)k * c + j] * p[j];
			q[k] = v;
			qq += v * v;
		}
		if (!(qq > 0))
			break;
		double a = gamma / qq, g2 = 0;
		for (int j = 0; j < c; j++)
			u[j] += a * p[j];
		for (int k = 0; k < r; k++)
			res[k] -= a * q[k];
		for (int j = 0; j < c; j++) {
			double v = 0;
			for (int k = 0; k < r; k++)
				v += w[(size_t)k * c + j] * res[k];
			sv[j] = v;
			g2 += v * v;
		}
		for (int j = 0; j < c; j++)
			p[j] = sv[j] + g2 / gamma * p[j];
		gamma = g2;
	}
}

sl_status bounds_floor_layers(const struct bounds_mlp *m, const double *starts, int nstarts,
			      int steps, uint64_t seed, double *gain, struct sl_error *err)
{
	int w = widest(m);
	/* the carried starts, and one more: the steepest point */
	double *cur = malloc(sizeof(double) * (size_t)(nstarts + 1) * w);
	double *next = malloc(sizeof(double) * (size_t)(nstarts + 1) * w);
	double *work = malloc(sizeof(double) * 4 * (size_t)w);
	sl_status st = SL_OK;
	if (!cur || !next || !work) {
		st = status_set(err, SL_ERR_NOMEM, "layer floors: %d starts", nstarts);
		goto out;
	}
	for (int s = 0; s < nstarts; s++)
		memcpy(cur + (size_t)s * m->dim[0], starts + (size_t)s * m->dim[0],
		       sizeof(double) * (size_t)m->dim[0]);
	for (int i = 0; i < m->nlayers && st == SL_OK; i++) {
		/* layer i alone, borrowing m's weights: a one-layer network whose
		 * only layer keeps its activation */
		struct bounds_mlp one = {.nlayers = 1, .dim = {m->dim[i], m->dim[i + 1]},
					 .w = {m->w[i]}, .b = {m->b[i]}, .alpha = {m->alpha[i]},
					 .beta = {m->beta[i]}, .act = {m->act[i]}};
		if (i == m->nlayers - 1)
			one.act[0] = NN_ACT_IDENTITY, one.alpha[0] = one.beta[0] = 1;
		int extra = 0;
		if (one.act[0] != NN_ACT_IDENTITY) {
			steepest_point(m, i, cur + (size_t)nstarts * m->dim[i], work);
			extra = 1;
		}
		struct bounds_floor f = {0};
		st = bounds_floor_lipschitz(&one, cur, nstarts + extra, steps, seed + (uint64_t)i,
					    &f, err);
		gain[i] = f.L;
		/* carry the starts to the next layer's input */
		for (int s = 0; s < nstarts; s++)
			layer_apply(m, i, cur + (size_t)s * m->dim[i], next + (size_t)s * m->dim[i + 1],
				    NULL);
		double *t = cur;
		cur = next;
		next = t;
	}
out:
	free(cur);
	free(next);
	free(work);
	return st;
}

/* ---- The flip radius ---- */

/* Predictions of x (batch) into pred, through the one prediction rule. */
static void predict(struct nn_net *net, const float *x, int batch, int *pred)
{
	nn_argmax(nn_forward(net, x, batch), batch, net->out_dim, pred);
}

static double dist(const float *a, const float *b, int n)
{
	double s = 0;
	for (int k = 0; k < n; k++) {
		double d = (double)a[k] - (double)b[k];
		s += d * d;
	}
	return sqrt(s);
}

/*
 * PGD-L2 on every example inside its own ball eps[i] (cross-entropy of y,
 * steps of 2.5 eps / steps, unclipped), first from x and then from random
 * points of the ball; flipped[i] is set, and len[i] lowered to the
 * perturbation's length, at the first iterate classified otherwise.
 */
static sl_status pgd_inside(struct nn_net *net, const float *x0, const int *y, int batch,
			    const double *eps, const struct bounds_flip_options *o,
			    struct sl_rng *rng, bool *flipped, double *len, struct sl_error *err)
{
	int dim = net->in_dim;
	size_t sz = (size_t)batch * dim;
	float *x = malloc(sizeof(float) * sz);
	float *g = malloc(sizeof(float) * sz);
	int *pred = malloc(sizeof(int) * (size_t)batch);
	if (!x || !g || !pred) {
		free(x);
		free(g);
		free(pred);
		return status_set(err, SL_ERR_NOMEM, "flip search: batch of %d", batch);
	}
	for (int rs = 0; rs <= o->restarts; rs++) {
		memcpy(x, x0, sizeof(float) * sz);
		if (rs > 0)
			for (int i = 0; i < batch; i++) {
				float *xi = x + (size_t)i * dim;
				double n2 = 0;
				for (int k = 0; k < dim; k++) {
					g[k] = rng_normal(rng);
					n2 += (double)g[k] * g[k];
				}
				double rad = eps[i] * pow(rng_uniform(rng), 1.0 / dim) / sqrt(n2);
				for (int k = 0; k < dim; k++)
					xi[k] += (float)(rad * g[k]);
			}
		for (int it = 0; it <= o->steps; it++) {
			attack_input_gradient(net, x, y, batch, g, NULL);
			/* the forward pass just run classifies x */
			nn_argmax(net->act_in[net->nlayers], batch, net->out_dim, pred);
			for (int i = 0; i < batch; i++) {
				const float *xi = x + (size_t)i * dim;
				if (pred[i] != y[i]) {
					flipped[i] = true;
					double d = dist(xi, x0 + (size_t)i * dim, dim);
					if (d < len[i])
						len[i] = d;
				}
			}
			if (it == o->steps)
				break;
			for (int i = 0; i < batch; i++) {
				if (flipped[i] || !(eps[i] > 0))
					continue;
				float *xi = x + (size_t)i * dim, *gi = g + (size_t)i * dim;
				const float *ci = x0 + (size_t)i * dim;
				double gn = 0;
				for (int k = 0; k < dim; k++)
					gn += (double)gi[k] * gi[k];
				gn = sqrt(gn);
				if (!(gn > 0) || !isfinite(gn))
					continue;
				double a = 2.5 * eps[i] / o->steps / gn;
				double dn = 0;
				for (int k = 0; k < dim; k++) {
					xi[k] += (float)(a * gi[k]);
					double d = (double)xi[k] - ci[k];
					dn += d * d;
				}
				dn = sqrt(dn);
				if (dn > eps[i]) { /* project back onto the ball, just inside */
					double f = eps[i] / dn * (1 - 1e-6);
					for (int k = 0; k < dim; k++)
						xi[k] = (float)(ci[k] + f * ((double)xi[k] - ci[k]));
				}
			}
		}
	}
	free(x);
	free(g);
	free(pred);
	return SL_OK;
}

int bounds_attack_inside(struct nn_net *net, const float *x, const int *y, int batch,
			 const double *eps, const struct bounds_flip_options *o, bool *flipped)
{
	double *len = malloc(sizeof(double) * (size_t)batch);
	struct sl_rng rng;
	rng_seed(&rng, o->seed);
	int n = 0;
	for (int i = 0; i < batch; i++) {
		flipped[i] = false;
		if (len)
			len[i] = INFINITY;
	}
	if (!len || pgd_inside(net, x, y, batch, eps, o, &rng, flipped, len, NULL) != SL_OK) {
		free(len);
		return -1;
	}
	for (int i = 0; i < batch; i++) {
		/* only a flip inside a ball counts (the projection keeps it there);
		 * an example with no ball (eps 0) is not attacked */
		flipped[i] = flipped[i] && eps[i] > 0 && len[i] <= eps[i];
		n += flipped[i];
	}
	free(len);
	return n;
}

/* One PGD run at eps on x alone, seeded afresh (the same attack at every
 * eps): whether it flips, and the flip's length. */
static sl_status flip_probe(struct nn_net *net, const float *x, int y, double eps,
			    const struct bounds_flip_options *o, bool *flipped, double *len,
			    struct sl_error *err)
{
	struct sl_rng rng;
	rng_seed(&rng, o->seed);
	*flipped = false;
	*len = INFINITY;
	sl_status st = pgd_inside(net, x, &y, 1, &eps, o, &rng, flipped, len, err);
	/* only a flip inside the ball counts, as in bounds_attack_inside */
	*flipped = st == SL_OK && *flipped && *len <= eps;
	return st;
}

sl_status bounds_flip_eps(struct nn_net *net, const float *x, int y,
			  const struct bounds_flip_options *o, double tol,
			  struct bounds_flip_eps *out, struct sl_error *err)
{
	out->eps = out->held = out->length = 0;
	out->attacks = 0;
	if (o->steps < 1 || o->restarts < 0 || !(o->eps_start > 0) ||
	    !(o->eps_max >= o->eps_start) || !(tol > 0 && tol < 1) || y < 0 ||
	    y >= net->out_dim)
		return status_set(err, SL_ERR_ARG, "flip search: bad options");
	int pred;
	predict(net, x, 1, &pred);
	if (pred != y)
		return SL_OK; /* not classified y: flipped already, at eps 0 */
	double lo = 0, hi = INFINITY, hi_len = INFINITY, len;
	bool fl;
	sl_status st;
#define PROBE(e)                                                                 \
	do {                                                                     \
		if (o->stop && o->stop(o->stop_ctx))                             \
			return status_set(err, SL_ERR_CANCELLED, "flip search");  \
		if ((st = flip_probe(net, x, y, (e), o, &fl, &len, err)) != SL_OK) \
			return st;                                               \
		out->attacks++;                                                  \
	} while (0)
	for (double e = o->eps_start; e <= o->eps_max * (1 + 1e-12); e *= 2) {
		PROBE(e);
		if (fl) {
			hi = e, hi_len = len;
			break;
		}
		lo = e;
	}
	if (!isfinite(hi)) {
		out->eps = INFINITY;
		out->held = lo;
		out->length = INFINITY;
		return SL_OK;
	}
	/* Bisection, then the end checked: PGD at hi (1 - tol) must hold.  PGD
	 * need not be monotone in eps, so a flip there lowers hi and the search
	 * goes on below it (each round divides hi by at least 1 / (1 - tol)). */
	for (int round = 0; round < 200; round++) {
		while (hi - lo > tol * hi) {
			double mid = 0.5 * (lo + hi);
			PROBE(mid);
			if (fl)
				hi = mid, hi_len = len;
			else
				lo = mid;
		}
		double below = hi * (1 - tol);
		PROBE(below);
		if (!fl) {
			out->eps = hi;
			out->held = below;
			out->length = hi_len;
			return SL_OK;
		}
		hi = below, hi_len = len;
		if (lo >= hi)
			lo = 0;
	}
#undef PROBE
	return status_set(err, SL_ERR_NUMERIC,
			  "flip search: PGD flips at every eps tried down to %.3g", hi);
}

sl_status bounds_flip_radius(struct nn_net *net, const float *x, const int *y, int batch,
			     const struct bounds_flip_options *o, double *radius,
			     struct sl_error *err)
{
	if (batch < 1 || batch > net->max_batch || o->steps < 1 || o->restarts < 0 ||
	    !(o->eps_start > 0) || !(o->eps_max >= o->eps_start))
		return status_set(err, SL_ERR_ARG, "flip search: bad options");
	double *lo = malloc(sizeof(double) * (size_t)batch);
	double *hi = malloc(sizeof(double) * (size_t)batch);
	double *eps = malloc(sizeof(double) * (size_t)batch);
	bool *fl = malloc(sizeof(bool) * (size_t)batch);
	bool *active = malloc(sizeof(bool) * (size_t)batch);
	int *pred = malloc(sizeof(int) * (size_t)batch);
	sl_status st = SL_OK;
	struct sl_rng rng;
	rng_seed(&rng, o->seed);
	if (!lo || !hi || !eps || !fl || !active || !pred) {
		st = status_set(err, SL_ERR_NOMEM, "flip search: batch of %d", batch);
		goto out;
	}
	predict(net, x, batch, pred);
	int open = 0;
	for (int i = 0; i < batch; i++) {
		radius[i] = pred[i] != y[i] ? 0 : INFINITY;
		active[i] = pred[i] == y[i];
		open += active[i];
		lo[i] = 0;
		hi[i] = INFINITY;
		eps[i] = active[i] ? o->eps_start : 0;
	}
	/* doubling until each example flips (or eps_max) */
	for (double e = o->eps_start; open > 0 && e <= o->eps_max * (1 + 1e-12); e *= 2) {
		for (int i = 0; i < batch; i++) {
			eps[i] = active[i] && !isfinite(hi[i]) ? e : 0;
			fl[i] = false;
		}
		if ((st = pgd_inside(net, x, y, batch, eps, o, &rng, fl, radius, err)) != SL_OK)
			goto out;
		open = 0;
		for (int i = 0; i < batch; i++) {
			if (!active[i] || isfinite(hi[i]))
				continue;
			if (fl[i])
				hi[i] = fmin(e, radius[i]);
			else
				lo[i] = e, open++;
		}
	}
	/* bisection between the largest eps that held and the shortest flip */
	for (int b = 0; b < o->bisections; b++) {
		int any = 0;
		for (int i = 0; i < batch; i++) {
			fl[i] = false;
			eps[i] = active[i] && isfinite(hi[i]) ? 0.5 * (lo[i] + hi[i]) : 0;
			any |= eps[i] > 0;
		}
		if (!any)
			break;
		if ((st = pgd_inside(net, x, y, batch, eps, o, &rng, fl, radius, err)) != SL_OK)
			goto out;
		for (int i = 0; i < batch; i++) {
			if (!(eps[i] > 0))
				continue;
			if (fl[i])
				hi[i] = fmin(eps[i], radius[i]);
			else
				lo[i] = eps[i];
		}
	}
out:
	free(lo);
	free(hi);
	free(eps);
	free(fl);
	free(active);
	free(pred);
	return st;
}
