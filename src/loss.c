/* loss: cross-entropy, Lipschitz-margin cross-entropy and hinge (see loss.h). */
#include "sectorlab/loss.h"

#include <math.h>
#include <string.h>

struct loss_config loss_config_plain(void)
{
	return (struct loss_config){.kind = LOSS_CE, .tau = 1, .radius = 0};
}

struct loss_config loss_config_certified(void)
{
	return (struct loss_config){.kind = LOSS_LMT, .tau = LOSS_DEFAULT_TAU,
				    .radius = LOSS_DEFAULT_RADIUS};
}

sl_status loss_kind_parse(const char *name, enum loss_kind *out, struct sl_error *err)
{
	if (name && strcmp(name, "ce") == 0)
		*out = LOSS_CE;
	else if (name && strcmp(name, "lmt") == 0)
		*out = LOSS_LMT;
	else if (name && strcmp(name, "hinge") == 0)
		*out = LOSS_HINGE;
	else
		return status_set(err, SL_ERR_ARG, "unknown loss '%s' (known: ce, lmt, hinge)",
				  name ? name : "(null)");
	return SL_OK;
}

const char *loss_kind_name(enum loss_kind kind)
{
	switch (kind) {
	case LOSS_LMT:
		return "lmt";
	case LOSS_HINGE:
		return "hinge";
	case LOSS_CE:
		break;
	}
	return "ce";
}

sl_status loss_config_check(const struct loss_config *c, struct sl_error *err)
{
	if (!(c->tau > 0) || !isfinite(c->tau))
		return status_set(err, SL_ERR_ARG, "temperature %g: must be > 0", c->tau);
	if (!(c->radius >= 0) || !isfinite(c->radius))
		return status_set(err, SL_ERR_ARG, "target radius %g: must be >= 0", c->radius);
	return SL_OK;
}

bool loss_is_plain(const struct loss_config *c)
{
	return c->kind == LOSS_CE && c->tau == 1;
}

bool loss_uses_bound(const struct loss_config *c)
{
	return c->kind != LOSS_CE && c->radius > 0;
}

/* The logit row s = tau (z - m e_y) at class c. */
static inline double shifted(const float *z, int y, int c, double tau, double m)
{
	return tau * ((double)z[c] - (c == y ? m : 0));
}

/*
 * Cross-entropy of softmax(s) for one row; when dz is not NULL it receives
 * scale (softmax(s) - e_y).  Returns the loss; *dsy = softmax(s)_y - 1.  In
 * double; log1p keeps a confident example's tiny loss from rounding to 0.
 */
static double xent_row(const float *z, int y, int classes, double tau, double m, float *dz,
		       double scale, double *dsy)
{
	int top = 0;
	for (int c = 1; c < classes; c++)
		top = shifted(z, y, c, tau, m) > shifted(z, y, top, tau, m) ? c : top;
	double smax = shifted(z, y, top, tau, m), rest = 0;
	for (int c = 0; c < classes; c++)
		rest += c == top ? 0.0 : exp(shifted(z, y, c, tau, m) - smax);
	double sum = 1 + rest, py = 0;
	for (int c = 0; c < classes; c++) {
		double p = (c == top ? 1.0 : exp(shifted(z, y, c, tau, m) - smax)) / sum;
		py = c == y ? p : py;
		if (dz)
			dz[c] = (float)(scale * (p - (c == y ? 1.0 : 0.0)));
	}
	*dsy = py - 1;
	return (smax - shifted(z, y, y, tau, m)) + log1p(rest);
}

double loss_logits(const struct loss_config *c, const float *z, const int *y, int batch,
		   int classes, double margin, float *row, float *dz, double *dmargin)
{
	double total = 0, dm = 0, tau = c->tau;
	double m = c->kind == LOSS_CE ? 0 : margin;
	for (int r = 0; r < batch; r++) {
		const float *zr = z + (size_t)r * classes;
		float *dzr = dz ? dz + (size_t)r * classes : NULL;
		int yr = y[r];
		double loss;
		if (c->kind == LOSS_HINGE) {
			/* s_y - max_{j != y} s_j, s = tau (z - m e_y) */
			int j = yr == 0 ? 1 : 0;
			for (int k = 0; k < classes; k++)
				j = k != yr && zr[k] > zr[j] ? k : j;
			double v = 1 - tau * (((double)zr[yr] - m) - zr[j]);
			loss = v > 0 ? v : 0;
			if (dzr) {
				for (int k = 0; k < classes; k++)
					dzr[k] = 0;
				if (v > 0) {
					dzr[yr] = (float)(-tau / batch);
					dzr[j] = (float)(tau / batch);
				}
			}
			dm += v > 0 ? tau : 0;
		} else {
			double dsy;
			loss = xent_row(zr, yr, classes, tau, m, dzr, tau / batch, &dsy);
			dm -= tau * dsy; /* d s_y / d m = -tau */
		}
		if (row)
			row[r] = (float)loss;
		total += loss;
	}
	if (dmargin)
		*dmargin = c->kind == LOSS_CE ? 0 : dm / batch;
	return total / batch;
}

double loss_lipschitz(const struct nn_net *net, const struct certify_plan *plan, double *grad)
{
	double sigma[NN_MAX_LAYERS];
	int n = 0;
	for (int i = 0; i < net->nlayers; i++) {
		const struct nn_layer *l = &net->layers[i];
		if (nn_layer_weighted(l))
			sigma[n++] = (double)l->sigma_hat * l->scale;
	}
	return certify_plan_bound(plan, net, sigma, grad);
}

double loss_backward(struct nn_net *net, const struct loss_config *c,
		     const struct certify_plan *plan, const int *y, double *lipschitz)
{
	double grad[NN_MAX_LAYERS], dm = 0;
	bool bound = loss_uses_bound(c);
	double lip = bound ? loss_lipschitz(net, plan, grad) : 0;
	/* DESIGN.md §6: the margin that certifies radius R under bound L. */
	double margin = sqrt(2.0) * lip * c->radius;
	double loss = loss_logits(c, net->act_in[net->nlayers], y, net->batch, net->out_dim,
				  margin, net->row_loss, nn_logits_grad(net), &dm);
	nn_backprop(net, true, false);
	if (bound && dm != 0) {
		/* d loss / d sigma_j = dm * sqrt(2) R * d L / d sigma_j */
		double dlip = dm * sqrt(2.0) * c->radius;
		for (int i = 0, j = 0; i < net->nlayers; i++)
			if (nn_layer_weighted(&net->layers[i]))
				nn_layer_add_norm_grad(net, i, (float)(dlip * grad[j++]));
	}
	if (lipschitz)
		*lipschitz = lip;
	return loss;
}
