/* attack: FGSM and its evaluation (see attack.h). */
#include "sectorlab/attack.h"

#include <stdlib.h>
#include <string.h>

int attack_fgsm(struct nn_net *net, const float *x, const int *y, int batch, float eps,
		float *x_adv)
{
	nn_forward(net, x, batch);
	nn_backward(net, y, false, true);
	int dim = net->in_dim, zero = 0;
	for (int r = 0; r < batch; r++) {
		const float *g = net->dx + (size_t)r * dim;
		const float *xr = x + (size_t)r * dim;
		float *ar = x_adv + (size_t)r * dim;
		int nonzero = 0;
		for (int k = 0; k < dim; k++) {
			float s = g[k] > 0 ? 1.0f : (g[k] < 0 ? -1.0f : 0.0f);
			nonzero |= g[k] != 0;
			float v = xr[k] + eps * s;
			ar[k] = v < ATTACK_PIXEL_MIN ? ATTACK_PIXEL_MIN
						     : (v > ATTACK_PIXEL_MAX ? ATTACK_PIXEL_MAX : v);
		}
		zero += !nonzero;
	}
	return zero;
}

sl_status attack_eval_fgsm(struct nn_net *net, const struct sl_dataset *ds, int n, float eps,
			   struct attack_result *out, struct sl_error *err)
{
	memset(out, 0, sizeof *out);
	if (!(eps >= 0))
		return status_set(err, SL_ERR_ARG, "FGSM: eps %g must be >= 0", eps);
	if ((int)data_dim(ds) != net->in_dim)
		return status_set(err, SL_ERR_ARG, "FGSM: images have %zu values, network takes %d",
				  data_dim(ds), net->in_dim);
	if (n <= 0 || (uint32_t)n > ds->n)
		n = (int)ds->n;
	int bmax = net->max_batch, dim = net->in_dim;
	float *x = malloc(sizeof(float) * (size_t)bmax * dim);
	float *xa = malloc(sizeof(float) * (size_t)bmax * dim);
	int *y = malloc(sizeof(int) * (size_t)bmax);
	int *pc = malloc(sizeof(int) * (size_t)bmax);
	int *pa = malloc(sizeof(int) * (size_t)bmax);
	uint32_t *idx = malloc(sizeof(uint32_t) * (size_t)bmax);
	sl_status st = SL_OK;
	if (!x || !xa || !y || !pc || !pa || !idx) {
		st = status_set(err, SL_ERR_NOMEM, "FGSM: batch buffers");
		goto out;
	}
	out->eps = eps;
	for (int start = 0; start < n; start += bmax) {
		int b = n - start < bmax ? n - start : bmax;
		for (int r = 0; r < b; r++)
			idx[r] = (uint32_t)(start + r);
		data_batch(ds, idx, (size_t)b, x, y);
		nn_argmax(nn_forward(net, x, b), b, net->out_dim, pc);
		out->zero_grad += attack_fgsm(net, x, y, b, eps, xa);
		nn_argmax(nn_forward(net, xa, b), b, net->out_dim, pa);
		for (int r = 0; r < b; r++) {
			int ok = pc[r] == y[r];
			out->clean_correct += ok;
			out->robust_correct += ok && pa[r] == y[r];
		}
	}
	out->n = n;
	out->clean_accuracy = (double)out->clean_correct / n;
	out->robust_accuracy = (double)out->robust_correct / n;
	out->attack_success_rate =
		out->clean_correct ? 1.0 - (double)out->robust_correct / out->clean_correct : 0;
out:
	free(x);
	free(xa);
	free(y);
	free(pc);
	free(pa);
	free(idx);
	return st;
}
