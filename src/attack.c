/* attack: FGSM, FGM and PGD as projected gradient steps, and sweeps over eps
 * with their metrics (see attack.h). */
#include "sectorlab/attack.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sectorlab/rng.h"

/* ---- Recipes ----------------------------------------------------------- */

static struct attack_recipe recipe_base(enum attack_kind kind, enum attack_norm norm, float eps)
{
	struct attack_recipe r = {
		.kind = kind, .norm = norm, .eps = eps, .steps = 1, .step_size = 0,
		.step_travel = 1, .random_start = false, .restarts = 1,
		.labels = ATTACK_LABELS_TRUE, .clip = true, .early_stop = false,
		.target = ATTACK_UNTARGETED, .target_class = 0, .seed = 1,
	};
	return r;
}

struct attack_recipe attack_recipe_fgsm(float eps)
{
	return recipe_base(ATTACK_FGSM, ATTACK_NORM_INF, eps);
}

struct attack_recipe attack_recipe_fgm(float eps)
{
	return recipe_base(ATTACK_FGM, ATTACK_NORM_2, eps);
}

struct attack_recipe attack_recipe_pgd(enum attack_norm norm, float eps, int steps)
{
	struct attack_recipe r = recipe_base(ATTACK_PGD, norm, eps);
	r.steps = steps;
	r.step_travel = 2.5f; /* Madry et al.'s rule of thumb: alpha = 2.5 eps / steps */
	return r;
}

sl_status attack_preset(const char *name, struct attack_recipe *out, struct sl_error *err)
{
	if (strcmp(name, "paper-code") == 0) {
		/* The authors' code: cleverhans-style L2 PGD with 100 steps of 2 eps / 100,
		 * no random start, the model's own predictions, no pixel box. */
		*out = attack_recipe_pgd(ATTACK_NORM_2, 0, 100);
		out->step_travel = 2.0f;
		out->labels = ATTACK_LABELS_PRED;
		out->clip = false;
		return SL_OK;
	}
	if (strcmp(name, "madry") == 0) {
		*out = attack_recipe_pgd(ATTACK_NORM_INF, 0.3f, 40);
		out->step_size = 0.01f;
		out->random_start = true;
		return SL_OK;
	}
	return status_set(err, SL_ERR_ARG, "unknown preset '%s' (paper-code or madry)", name);
}

static const char *const kind_names[] = {"fgsm", "fgm", "pgd"};
static const char *const norm_names[] = {"inf", "2"};
static const char *const label_names[] = {"pred", "true"};

sl_status attack_kind_parse(const char *name, enum attack_kind *out, struct sl_error *err)
{
	for (int k = 0; k < 3; k++)
		if (strcmp(name, kind_names[k]) == 0) {
			*out = (enum attack_kind)k;
			return SL_OK;
		}
	return status_set(err, SL_ERR_ARG, "unknown attack '%s' (fgsm, fgm or pgd)", name);
}

sl_status attack_norm_parse(const char *name, enum attack_norm *out, struct sl_error *err)
{
	if (strcmp(name, "inf") == 0 || strcmp(name, "linf") == 0) {
		*out = ATTACK_NORM_INF;
		return SL_OK;
	}
	if (strcmp(name, "2") == 0 || strcmp(name, "l2") == 0) {
		*out = ATTACK_NORM_2;
		return SL_OK;
	}
	return status_set(err, SL_ERR_ARG, "unknown norm '%s' (inf or 2)", name);
}

sl_status attack_labels_parse(const char *name, enum attack_labels *out, struct sl_error *err)
{
	for (int k = 0; k < 2; k++)
		if (strcmp(name, label_names[k]) == 0) {
			*out = (enum attack_labels)k;
			return SL_OK;
		}
	return status_set(err, SL_ERR_ARG, "unknown label source '%s' (pred or true)", name);
}

const char *attack_kind_name(enum attack_kind k)
{
	return (unsigned)k < 3 ? kind_names[k] : "?";
}

const char *attack_norm_name(enum attack_norm n)
{
	return (unsigned)n < 2 ? norm_names[n] : "?";
}

const char *attack_labels_name(enum attack_labels l)
{
	return (unsigned)l < 2 ? label_names[l] : "?";
}

sl_status attack_recipe_check(const struct attack_recipe *r, int classes, struct sl_error *err)
{
	const char *k = attack_kind_name(r->kind);
	if ((unsigned)r->kind > ATTACK_PGD || (unsigned)r->norm > ATTACK_NORM_2 ||
	    (unsigned)r->labels > ATTACK_LABELS_TRUE || (unsigned)r->target > ATTACK_TARGET_NEXT)
		return status_set(err, SL_ERR_ARG, "attack recipe: unknown attack, norm, labels or "
						   "target mode");
	if (!(r->eps >= 0) || !isfinite(r->eps))
		return status_set(err, SL_ERR_ARG, "%s: eps must be a finite number >= 0, got %g", k,
				  r->eps);
	if (r->steps < 1)
		return status_set(err, SL_ERR_ARG, "%s: steps must be >= 1, got %d", k, r->steps);
	if (r->restarts < 1)
		return status_set(err, SL_ERR_ARG, "%s: restarts must be >= 1, got %d", k,
				  r->restarts);
	if (!(r->step_size >= 0) || !isfinite(r->step_size))
		return status_set(err, SL_ERR_ARG, "%s: step size must be >= 0, got %g", k,
				  r->step_size);
	if (r->step_size == 0 && (!(r->step_travel > 0) || !isfinite(r->step_travel)))
		return status_set(err, SL_ERR_ARG, "%s: step travel must be > 0, got %g", k,
				  r->step_travel);
	if (r->kind == ATTACK_FGSM && r->norm != ATTACK_NORM_INF)
		return status_set(err, SL_ERR_ARG, "fgsm is the L-infinity attack; for L2 use fgm");
	if (r->kind == ATTACK_FGM && r->norm != ATTACK_NORM_2)
		return status_set(err, SL_ERR_ARG, "fgm is the L2 attack; for L-infinity use fgsm");
	if (r->kind != ATTACK_PGD &&
	    (r->steps != 1 || r->random_start || r->restarts != 1 || r->step_size != 0 ||
	     r->step_travel != 1))
		return status_set(err, SL_ERR_ARG,
				  "%s takes one step of size eps from the clean input; steps, step "
				  "size, random start and restarts need pgd", k);
	if (r->target == ATTACK_TARGET_CLASS && (r->target_class < 0 || r->target_class >= classes))
		return status_set(err, SL_ERR_ARG, "%s: target class %d is not in 0..%d", k,
				  r->target_class, classes - 1);
	return SL_OK;
}

float attack_step_size(const struct attack_recipe *r)
{
	if (r->step_size > 0)
		return r->step_size;
	return r->step_travel * r->eps / (float)r->steps;
}

int attack_format_float(float v, char *buf, size_t cap)
{
	char tmp[32];
	for (int digits = 6; digits < 9; digits++) {
		snprintf(tmp, sizeof tmp, "%.*g", digits, v);
		if (strtof(tmp, NULL) == v)
			return snprintf(buf, cap, "%s", tmp);
	}
	return snprintf(buf, cap, "%.9g", v);
}

int attack_recipe_describe(const struct attack_recipe *r, bool with_eps, char *buf, size_t cap)
{
	char step[96], tgt[48] = "", eps[48] = "";
	if (r->kind != ATTACK_PGD)
		snprintf(step, sizeof step, "one step of eps");
	else if (r->step_size > 0)
		snprintf(step, sizeof step, "%d step%s of %g", r->steps, r->steps == 1 ? "" : "s",
			 r->step_size);
	else
		snprintf(step, sizeof step, "%d step%s of %g eps/%d", r->steps,
			 r->steps == 1 ? "" : "s", r->step_travel, r->steps);
	if (r->target == ATTACK_TARGET_CLASS)
		snprintf(tgt, sizeof tgt, ", targeted at class %d", r->target_class);
	else if (r->target == ATTACK_TARGET_NEXT)
		snprintf(tgt, sizeof tgt, ", targeted at label + 1");
	if (with_eps) {
		char num[32];
		attack_format_float(r->eps, num, sizeof num);
		snprintf(eps, sizeof eps, " eps %s", num);
	}
	return snprintf(buf, cap, "%s L%s%s: %s, %s, %d restart%s, %s labels, %s%s%s, seed %llu",
			r->kind == ATTACK_FGSM ? "FGSM" : r->kind == ATTACK_FGM ? "FGM" : "PGD",
			r->norm == ATTACK_NORM_INF ? "-inf" : "2", eps, step,
			r->random_start ? "random start" : "no random start", r->restarts,
			r->restarts == 1 ? "" : "s",
			r->labels == ATTACK_LABELS_TRUE ? "true" : "predicted",
			r->clip ? "clipped to [-0.5, 0.5]" : "not clipped",
			r->early_stop ? ", early stop" : "", tgt, (unsigned long long)r->seed);
}

int attack_recipe_json(const struct attack_recipe *r, bool with_eps, char *buf, size_t cap)
{
	char eps[48] = "", num[32], step[64], tgt[48];
	if (with_eps) {
		attack_format_float(r->eps, num, sizeof num);
		snprintf(eps, sizeof eps, "\"eps\":%s,", num);
	}
	if (r->step_size > 0) {
		attack_format_float(r->step_size, num, sizeof num);
		snprintf(step, sizeof step, "\"step_size\":%s", num);
	} else {
		attack_format_float(r->step_travel, num, sizeof num);
		snprintf(step, sizeof step, "\"step_size\":\"%s*eps/%d\"", num, r->steps);
	}
	if (r->target == ATTACK_TARGET_CLASS)
		snprintf(tgt, sizeof tgt, "%d", r->target_class);
	else
		snprintf(tgt, sizeof tgt, "%s", r->target == ATTACK_TARGET_NEXT ? "\"next\"" : "null");
	return snprintf(buf, cap,
			"\"attack\":\"%s\",\"norm\":\"%s\",%s\"steps\":%d,%s,\"random_start\":%s,"
			"\"restarts\":%d,\"labels\":\"%s\",\"clip\":%s,\"early_stop\":%s,"
			"\"target\":%s,\"seed\":%llu",
			attack_kind_name(r->kind), attack_norm_name(r->norm), eps, r->steps, step,
			r->random_start ? "true" : "false", r->restarts, attack_labels_name(r->labels),
			r->clip ? "true" : "false", r->early_stop ? "true" : "false", tgt,
			(unsigned long long)r->seed);
}

/* ---- One step for one example ----------------------------------------- */

static float clampf(float v, float lo, float hi)
{
	return v < lo ? lo : (v > hi ? hi : v);
}

enum grad_state { GRAD_OK, GRAD_ZERO, GRAD_NONFINITE };

/*
 * The per-pixel loops below run over blocks of LANES values with a fixed
 * count, then over the remainder: at -O2 compilers vectorize fixed-count
 * loops over restrict pointers, and the attack's time goes here as much as
 * into the matrix products.  Sums keep LANES partial sums in double, added
 * in a fixed order, so results do not depend on the machine.  No branches
 * depend on data: the signs of a gradient are a coin toss for a branch
 * predictor.
 */
#define LANES 16

/* On x86-64, step_row also exists compiled for AVX2, chosen at load time
 * when the CPU has it (GCC's and clang's function multi-versioning): twice
 * the lanes of the SSE2 baseline the build targets.  Elsewhere: one build.
 * Not under ThreadSanitizer: the loader runs the version chooser before the
 * sanitizer's runtime is up, and its instrumented entry crashes. */
#if defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define SECTORLAB_TSAN 1
#endif
#endif
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__)) && !defined(SECTORLAB_TSAN)
#define STEP_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define STEP_CLONES
#endif

/* |g| as bits, lane by lane: is any nonzero, and is the largest
 * >= 0x7f800000 (an infinity or a NaN)? */
static enum grad_state lanes_state(const uint32_t *any, const uint32_t *top)
{
	uint32_t a = 0, t = 0;
	for (int j = 0; j < LANES; j++) {
		a |= any[j];
		t = top[j] > t ? top[j] : t;
	}
	if (t >= 0x7f800000u)
		return GRAD_NONFINITE;
	return a ? GRAD_OK : GRAD_ZERO;
}

static double lanes_total(const double *part)
{
	double t = 0;
	for (int j = 0; j < LANES; j++)
		t += part[j];
	return t;
}

static inline void squares_block(const float *restrict v, int n, double *restrict part)
{
	for (int j = 0; j < n; j++)
		part[j] += (double)v[j] * v[j];
}

/* ||v||^2 */
static double sum_squares(const float *restrict v, int dim)
{
	double part[LANES] = {0};
	int k = 0;
	for (; k + LANES <= dim; k += LANES)
		squares_block(v + k, LANES, part);
	squares_block(v + k, dim - k, part);
	return lanes_total(part);
}

/* L-inf: x <- clamp(x + step sign(g), [lo, hi]) with lo, hi the ball around
 * x0 intersected with [box_lo, box_hi]; in the same pass, |g|'s bits into
 * any (their OR) and top (their largest), lane by lane. */
static inline void inf_block(const float *restrict x0, float *restrict x, const float *restrict g,
			     int n, float step, float eps, float box_lo, float box_hi,
			     uint32_t *restrict any, uint32_t *restrict top)
{
	for (int j = 0; j < n; j++) {
		uint32_t b;
		memcpy(&b, &g[j], sizeof b);
		b &= 0x7fffffffu;
		any[j] |= b;
		top[j] = b > top[j] ? b : top[j];
		float d = (float)((g[j] > 0) - (g[j] < 0)) * step;
		float lo = x0[j] - eps, hi = x0[j] + eps;
		lo = lo < box_lo ? box_lo : lo;
		hi = hi > box_hi ? box_hi : hi;
		float v = x[j] + d;
		v = v < lo ? lo : v;
		x[j] = v > hi ? hi : v;
	}
}

/* L2: x <- x + a g, and ||x - x0||^2 into part. */
static inline void l2_block(const float *restrict x0, float *restrict x, const float *restrict g,
			    int n, float a, double *restrict part)
{
	for (int j = 0; j < n; j++) {
		x[j] = x[j] + a * g[j];
		double d = (double)x[j] - x0[j];
		part[j] += d * d;
	}
}

/* x <- x0 + (x - x0) f, then clamp to [box_lo, box_hi]. */
static inline void shrink_block(const float *restrict x0, float *restrict x, int n, float f,
				float box_lo, float box_hi)
{
	for (int j = 0; j < n; j++) {
		float v = x0[j] + (x[j] - x0[j]) * f;
		v = v < box_lo ? box_lo : v;
		x[j] = v > box_hi ? box_hi : v;
	}
}

static void shrink(const float *restrict x0, float *restrict x, int dim, float f, float box_lo,
		   float box_hi)
{
	int k = 0;
	for (; k + LANES <= dim; k += LANES)
		shrink_block(x0 + k, x + k, LANES, f, box_lo, box_hi);
	shrink_block(x0 + k, x + k, dim - k, f, box_lo, box_hi);
}

/* ||x - x0||^2 */
static inline void dist_block(const float *restrict x0, const float *restrict x, int n,
			      double *restrict part)
{
	for (int j = 0; j < n; j++) {
		double d = (double)x[j] - x0[j];
		part[j] += d * d;
	}
}

static double dist2(const float *restrict x0, const float *restrict x, int dim)
{
	double part[LANES] = {0};
	int k = 0;
	for (; k + LANES <= dim; k += LANES)
		dist_block(x0 + k, x + k, LANES, part);
	dist_block(x0 + k, x + k, dim - k, part);
	return lanes_total(part);
}

/*
 * x <- P(x + alpha * d), d = sign(s g) (L-inf) or s g / ||g||_2 (L2), s = +1
 * to ascend the loss and -1 to descend it; P projects onto the eps-ball
 * around x0, then (clip) onto the pixel box.  x0 lies in the box, so the box
 * projection cannot leave the ball, and in L-inf the two clamps are one
 * clamp to their intersection.  x0, x, g: (dim).  A zero gradient leaves x
 * unchanged.  A non-finite one is reported; L2 then leaves x unchanged,
 * L-inf moves by the signs it has (a NaN's sign is 0).
 */
STEP_CLONES
static enum grad_state step_row(const float *restrict x0, float *restrict x,
				const float *restrict g, float s, int dim, enum attack_norm norm,
				float alpha, float eps, bool clip)
{
	float box_lo = clip ? ATTACK_PIXEL_MIN : -INFINITY;
	float box_hi = clip ? ATTACK_PIXEL_MAX : INFINITY;
	int k = 0;
	if (norm == ATTACK_NORM_INF) {
		/* a zero gradient moves nothing here, so check while stepping */
		float step = s * alpha;
		uint32_t any[LANES] = {0}, top[LANES] = {0};
		for (; k + LANES <= dim; k += LANES)
			inf_block(x0 + k, x + k, g + k, LANES, step, eps, box_lo, box_hi, any, top);
		inf_block(x0 + k, x + k, g + k, dim - k, step, eps, box_lo, box_hi, any, top);
		return lanes_state(any, top);
	}
	/* Squares of floats neither overflow nor underflow in double: the sum
	 * is 0 exactly for a zero gradient and not finite exactly for a
	 * non-finite one. */
	double gg = sum_squares(g, dim);
	if (!(gg > 0) || !isfinite(gg))
		return gg == 0 ? GRAD_ZERO : GRAD_NONFINITE;
	float a = (float)(s * alpha / sqrt(gg));
	double part[LANES] = {0};
	for (; k + LANES <= dim; k += LANES)
		l2_block(x0 + k, x + k, g + k, LANES, a, part);
	l2_block(x0 + k, x + k, g + k, dim - k, a, part);
	double dd = lanes_total(part), e2 = (double)eps * eps;
	if (dd > e2) {
		shrink(x0, x, dim, (float)(eps / sqrt(dd)), -INFINITY, INFINITY);
		/* float rounding can leave a hair outside: pull in once more */
		double again = dist2(x0, x, dim);
		if (again > e2)
			shrink(x0, x, dim, (float)(eps / sqrt(again)) * (1 - 0x1p-22f), -INFINITY,
			       INFINITY);
	}
	if (clip)
		shrink(x0, x, dim, 1.0f, box_lo, box_hi);
	return GRAD_OK;
}

int attack_input_gradient(struct nn_net *net, const float *x, const int *y, int batch,
			  float *g, float *loss)
{
	int dim = net->in_dim, zero = 0;
	nn_forward(net, x, batch);
	nn_backward(net, y, false, true);
	if (loss) /* each example's loss, from the backward pass's softmax */
		memcpy(loss, net->row_loss, sizeof(float) * (size_t)batch);
	/* nn_backward differentiates the batch mean: scale back to each example. */
	for (int r = 0; r < batch; r++) {
		const float *d = net->dx + (size_t)r * dim;
		float *gr = g + (size_t)r * dim;
		int nonzero = 0;
		for (int k = 0; k < dim; k++) {
			gr[k] = d[k] * (float)batch;
			nonzero |= gr[k] != 0;
		}
		zero += !nonzero;
	}
	return zero;
}

int attack_fgsm(struct nn_net *net, const float *x, const int *y, int batch, float eps,
		float *x_adv)
{
	int dim = net->in_dim, zero = 0;
	nn_forward(net, x, batch);
	nn_backward(net, y, false, true);
	memcpy(x_adv, x, sizeof(float) * (size_t)batch * dim);
	for (int r = 0; r < batch; r++) {
		size_t off = (size_t)r * dim;
		/* the sign ignores the 1 / batch of the mean loss */
		zero += step_row(x + off, x_adv + off, net->dx + off, 1.0f, dim, ATTACK_NORM_INF,
				 eps, eps, true) != GRAD_OK;
	}
	return zero;
}

/* ---- The attacker: one batch, advanced a step at a time ----------------- */

struct attacker {
	struct nn_net *net;
	struct attack_recipe r;
	float alpha;
	struct sl_rng rng;
	int dim, classes, cap;
	int batch, restart, step;
	bool done;
	/* Every buffer lives in one of three blocks. */
	float *fblock;
	float *x0, *x, *adv, *g, *xbuf;    /* (cap, dim); g: scratch */
	float *loss, *loss_adv;            /* (cap) attack objective, maximised */
	int *iblock;
	int *y, *label, *target;           /* (cap) */
	int *pred_clean, *pred, *pred_adv; /* (cap) */
	int *rows, *lbuf;                  /* (cap) active rows and their labels */
	bool *active;                      /* (cap) still being attacked */
	long zero_grad, nonfinite_grad, grad_evals;
};

sl_status attacker_new(struct nn_net *net, const struct attack_recipe *r,
		       struct attacker **out, struct sl_error *err)
{
	*out = NULL;
	sl_status st = attack_recipe_check(r, net->out_dim, err);
	if (st != SL_OK)
		return st;
	size_t big = (size_t)net->max_batch * net->in_dim, small = (size_t)net->max_batch;
	struct attacker *a = calloc(1, sizeof *a);
	float *f = calloc(5 * big + 2 * small, sizeof(float));
	int *i = calloc(8 * small, sizeof(int));
	bool *active = calloc(small, sizeof(bool));
	if (!a || !f || !i || !active) {
		free(a);
		free(f);
		free(i);
		free(active);
		return status_set(err, SL_ERR_NOMEM, "attacker: buffers for %d examples of %d values",
				  net->max_batch, net->in_dim);
	}
	a->net = net;
	a->r = *r;
	a->dim = net->in_dim;
	a->classes = net->out_dim;
	a->cap = net->max_batch;
	a->done = true;
	a->fblock = f;
	a->x0 = f, f += big;
	a->x = f, f += big;
	a->adv = f, f += big;
	a->g = f, f += big;
	a->xbuf = f, f += big;
	a->loss = f, f += small;
	a->loss_adv = f;
	a->iblock = i;
	a->y = i, i += small;
	a->label = i, i += small;
	a->target = i, i += small;
	a->pred_clean = i, i += small;
	a->pred = i, i += small;
	a->pred_adv = i, i += small;
	a->rows = i, i += small;
	a->lbuf = i;
	a->active = active;
	attacker_set_eps(a, r->eps);
	rng_seed(&a->rng, r->seed);
	*out = a;
	return SL_OK;
}

void attacker_free(struct attacker *a)
{
	if (!a)
		return;
	free(a->fblock);
	free(a->iblock);
	free(a->active);
	free(a);
}

void attacker_set_eps(struct attacker *a, float eps)
{
	a->r.eps = eps;
	a->alpha = attack_step_size(&a->r);
}

static bool targeted(const struct attacker *a)
{
	return a->r.target != ATTACK_UNTARGETED;
}

/* The objective the attack maximises for the m active rows, from the
 * network's last loss evaluation (against a->lbuf): the loss of the label,
 * or minus the loss of the target. */
static void take_objective(struct attacker *a, int m)
{
	float s = targeted(a) ? -1.0f : 1.0f;
	for (int i = 0; i < m; i++)
		a->loss[a->rows[i]] = s * a->net->row_loss[i];
}

static bool fooled(const struct attacker *a, int row, int pred)
{
	return targeted(a) ? pred == a->target[row] : pred != a->label[row];
}

/* A restart's starting point: x0, or a uniform point of the eps-ball. */
static void start_restart(struct attacker *a)
{
	size_t n = (size_t)a->batch * a->dim;
	memcpy(a->x, a->x0, sizeof(float) * n);
	for (int r = 0; r < a->batch; r++)
		a->active[r] = true;
	a->step = 0;
	if (!a->r.random_start || a->r.eps == 0)
		return;
	float eps = a->r.eps;
	for (int r = 0; r < a->batch; r++) {
		float *x = a->x + (size_t)r * a->dim;
		const float *x0 = a->x0 + (size_t)r * a->dim;
		if (a->r.norm == ATTACK_NORM_INF) {
			for (int k = 0; k < a->dim; k++)
				x[k] = clampf(x0[k] + eps * (2 * rng_uniform(&a->rng) - 1), x0[k] - eps,
					      x0[k] + eps);
		} else {
			/* Uniform in the L2 ball: a direction uniform on the sphere (a
			 * normalised Gaussian) and a radius eps u^(1/dim), because the
			 * volume within radius t grows as t^dim. */
			float *d = a->g + (size_t)r * a->dim; /* scratch */
			double dd = 0;
			for (int k = 0; k < a->dim; k++) {
				d[k] = rng_normal(&a->rng);
				dd += (double)d[k] * d[k];
			}
			double radius = eps * pow(rng_uniform(&a->rng), 1.0 / a->dim);
			double scale = dd > 0 ? radius / sqrt(dd) : 0;
			double nn = 0;
			for (int k = 0; k < a->dim; k++) {
				x[k] = (float)(x0[k] + d[k] * scale);
				double e = (double)x[k] - x0[k];
				nn += e * e;
			}
			if (nn > (double)eps * eps) /* float rounding at the sphere */
				for (int k = 0; k < a->dim; k++)
					x[k] = (float)(x0[k] + ((double)x[k] - x0[k]) * eps / sqrt(nn));
		}
		if (a->r.clip)
			for (int k = 0; k < a->dim; k++)
				x[k] = clampf(x[k], ATTACK_PIXEL_MIN, ATTACK_PIXEL_MAX);
	}
}

void attacker_begin(struct attacker *a, const float *x0, const int *y, int batch)
{
	a->batch = batch;
	a->restart = 0;
	a->done = false;
	a->zero_grad = a->nonfinite_grad = a->grad_evals = 0;
	memcpy(a->x0, x0, sizeof(float) * (size_t)batch * a->dim);
	memcpy(a->y, y, sizeof(int) * (size_t)batch);
	nn_argmax(nn_forward(a->net, a->x0, batch), batch, a->classes, a->pred_clean);
	for (int r = 0; r < batch; r++) {
		a->label[r] = a->r.labels == ATTACK_LABELS_TRUE ? y[r] : a->pred_clean[r];
		a->target[r] = a->r.target == ATTACK_TARGET_CLASS ? a->r.target_class
							   : (a->label[r] + 1) % a->classes;
	}
	start_restart(a);
}

/* Forward the active rows of the iterate (gathered into xbuf when some are
 * frozen): their pred, and in lbuf (m) the labels their gradient and loss
 * need.  The m rows are listed in a->rows; returns the logits (m, classes). */
static const float *forward_active(struct attacker *a, int *m_out)
{
	int m = 0;
	for (int r = 0; r < a->batch; r++)
		if (a->active[r])
			a->rows[m++] = r;
	*m_out = m;
	if (m == 0)
		return NULL;
	const float *xin = a->x;
	if (m < a->batch) {
		for (int i = 0; i < m; i++)
			memcpy(a->xbuf + (size_t)i * a->dim, a->x + (size_t)a->rows[i] * a->dim,
			       sizeof(float) * (size_t)a->dim);
		xin = a->xbuf;
	}
	const float *logits = nn_forward(a->net, xin, m);
	for (int i = 0; i < m; i++) {
		int r = a->rows[i];
		const float *z = logits + (size_t)i * a->classes;
		nn_argmax(z, 1, a->classes, &a->pred[r]); /* the one prediction rule */
		a->lbuf[i] = targeted(a) ? a->target[r] : a->label[r];
	}
	return logits;
}

/* Keep row r of this restart's final iterate if it beats the worst case so
 * far: fooling beats not fooling, then the larger objective wins. */
static void keep_worst(struct attacker *a)
{
	for (int r = 0; r < a->batch; r++) {
		bool better = a->restart == 0;
		if (!better) {
			bool f_new = fooled(a, r, a->pred[r]), f_old = fooled(a, r, a->pred_adv[r]);
			better = f_new != f_old ? f_new : a->loss[r] > a->loss_adv[r];
		}
		if (better) {
			memcpy(a->adv + (size_t)r * a->dim, a->x + (size_t)r * a->dim,
			       sizeof(float) * (size_t)a->dim);
			a->pred_adv[r] = a->pred[r];
			a->loss_adv[r] = a->loss[r];
		}
	}
}

/* One gradient step of the current restart for every example still being
 * attacked (a->step < a->r.steps). */
static void gradient_step(struct attacker *a)
{
	int m;
	forward_active(a, &m);
	if (m > 0) {
		nn_backward(a->net, a->lbuf, false, true);
		take_objective(a, m);
		a->grad_evals += m;
		/* Descend towards a target, ascend away from a label.  dx is the
		 * gradient of the batch mean: the scale does not matter for a
		 * sign or a normalised direction. */
		float s = targeted(a) ? -1.0f : 1.0f;
		for (int i = 0; i < m; i++) {
			int r = a->rows[i];
			if (a->r.early_stop && fooled(a, r, a->pred[r])) {
				a->active[r] = false;
				continue;
			}
			size_t off = (size_t)r * a->dim;
			enum grad_state gs = step_row(a->x0 + off, a->x + off,
						      a->net->dx + (size_t)i * a->dim, s, a->dim,
						      a->r.norm, a->alpha, a->r.eps, a->r.clip);
			a->zero_grad += gs == GRAD_ZERO;
			a->nonfinite_grad += gs == GRAD_NONFINITE;
		}
	}
	a->step++;
}

/* The restart's last iterate: evaluate the rows that moved since their
 * last forward pass (frozen rows were evaluated where they stopped), and
 * keep each row's worst case. */
static void end_restart(struct attacker *a)
{
	int m;
	if (forward_active(a, &m)) {
		nn_loss(a->net, a->lbuf);
		take_objective(a, m);
	}
	keep_worst(a);
}

bool attacker_step(struct attacker *a)
{
	if (a->done)
		return false;
	if (a->step < a->r.steps) {
		gradient_step(a);
		if (a->step < a->r.steps)
			return true;
	}
	end_restart(a);
	a->restart++;
	if (a->restart < a->r.restarts) {
		start_restart(a);
		return true;
	}
	a->done = true;
	return false;
}

void attacker_finish(struct attacker *a)
{
	while (attacker_step(a))
		;
}

void attacker_view(const struct attacker *a, struct attack_view *v)
{
	v->batch = a->batch;
	v->restart = a->restart;
	v->step = a->step;
	v->done = a->done;
	v->x0 = a->x0;
	v->x = a->x;
	v->adv = a->adv;
	v->y = a->y;
	v->label = a->label;
	v->target = targeted(a) ? a->target : NULL;
	v->pred_clean = a->pred_clean;
	v->pred_adv = a->pred_adv;
	v->loss = a->loss;
	v->loss_adv = a->loss_adv;
	v->zero_grad = a->zero_grad;
	v->nonfinite_grad = a->nonfinite_grad;
	v->grad_evals = a->grad_evals;
}

/* ---- One image, step by step ------------------------------------------ */

void attack_trace_free(struct attack_trace *t)
{
	if (!t)
		return;
	free(t->x);
	free(t->logits);
	free(t->loss);
	free(t->pred);
	free(t->adv);
	memset(t, 0, sizeof *t);
}

/* Entry e of the trace: the attacker's iterate, its logits, prediction and
 * the loss of the class the attack follows. */
static void record(struct attacker *a, struct attack_trace *t, int e)
{
	int k = a->classes;
	memcpy(t->x + (size_t)e * a->dim, a->x, sizeof(float) * (size_t)a->dim);
	const float *z = nn_forward(a->net, a->x, 1);
	memcpy(t->logits + (size_t)e * k, z, sizeof(float) * (size_t)k);
	nn_argmax(z, 1, k, &t->pred[e]);
	int follow = t->target >= 0 ? t->target : t->label;
	t->loss[e] = (float)nn_loss(a->net, &follow);
}

sl_status attack_trace_run(struct nn_net *net, const struct attack_recipe *r, const float *x0,
			   int y, attack_trace_fn each, void *ctx, struct attack_trace *t,
			   struct sl_error *err)
{
	memset(t, 0, sizeof *t);
	struct attacker *a;
	sl_status st = attacker_new(net, r, &a, err);
	if (st != SL_OK)
		return st;
	int dim = net->in_dim, k = net->out_dim;
	long n = (long)r->restarts * (r->steps + 1);
	if ((double)n * dim * sizeof(float) > ATTACK_TRACE_MAX_BYTES) {
		attacker_free(a);
		return status_set(err, SL_ERR_TOO_LARGE,
				  "a step-through of %d restart%s of %d steps holds %ld images: "
				  "too many (at most %.0f MB)", r->restarts, r->restarts == 1 ? "" : "s",
				  r->steps, n, ATTACK_TRACE_MAX_BYTES / 1e6);
	}
	t->n = (int)n;
	t->steps = r->steps;
	t->restarts = r->restarts;
	t->dim = dim;
	t->classes = k;
	t->x = malloc(sizeof(float) * (size_t)n * dim);
	t->logits = malloc(sizeof(float) * (size_t)n * k);
	t->loss = malloc(sizeof(float) * (size_t)n);
	t->pred = malloc(sizeof(int) * (size_t)n);
	t->adv = malloc(sizeof(float) * (size_t)dim);
	if (!t->x || !t->logits || !t->loss || !t->pred || !t->adv) {
		attacker_free(a);
		attack_trace_free(t);
		return status_set(err, SL_ERR_NOMEM, "step-through of %ld images", n);
	}
	/* attacker_step's sequence, with an entry before the first step of
	 * each restart and after every step. */
	attacker_begin(a, x0, &y, 1);
	t->y = y;
	t->label = a->label[0];
	t->target = targeted(a) ? a->target[0] : -1;
	t->pred_clean = a->pred_clean[0];
	int e = 0;
	for (;;) {
		record(a, t, e++);
		if (each && !each(ctx, e, t->n)) {
			st = status_set(err, SL_ERR_CANCELLED, "step-through stopped at %d of %d", e,
					t->n);
			break;
		}
		if (a->step < a->r.steps) {
			gradient_step(a);
			continue;
		}
		end_restart(a);
		if (++a->restart == a->r.restarts)
			break;
		start_restart(a);
	}
	if (st == SL_OK) {
		a->done = true;
		memcpy(t->adv, a->adv, sizeof(float) * (size_t)dim);
		t->pred_adv = a->pred_adv[0];
		t->kept = -1;
		for (int q = 0; q < t->restarts && t->kept < 0; q++) {
			int last = q * (t->steps + 1) + t->steps;
			if (memcmp(t->x + (size_t)last * dim, t->adv, sizeof(float) * (size_t)dim) == 0)
				t->kept = last;
		}
	}
	attacker_free(a);
	if (st != SL_OK)
		attack_trace_free(t);
	return st;
}

/* ---- Sweeps ------------------------------------------------------------ */

int attack_flags_describe(unsigned flags, char *buf, size_t cap)
{
	static const struct {
		unsigned flag;
		const char *text;
	} table[] = {
		{ATTACK_FLAG_WEAKER_THAN_ONE_STEP, "PGD weaker than the one-step attack"},
		{ATTACK_FLAG_NOT_FALLING, "robust accuracy rose with eps"},
		{ATTACK_FLAG_ZERO_GRADIENTS, "over 1% zero gradients"},
		{ATTACK_FLAG_NONFINITE, "non-finite gradients"},
	};
	int len = 0;
	if (cap)
		buf[0] = '\0';
	for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
		if (!(flags & table[i].flag))
			continue;
		int w = snprintf(buf + (len < (int)cap ? len : (int)cap),
				 (size_t)len < cap ? cap - (size_t)len : 0, "%s%s", len ? "; " : "",
				 table[i].text);
		len += w;
	}
	return len;
}

static double now_seconds(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* The sweep's buffers and helpers. */
struct sweep {
	struct attacker *main, *one_step; /* one_step: PGD's reference, else NULL */
	float *x, *xq;                    /* (max_batch, dim) */
	int *y, *pq;                      /* (max_batch) */
};

/* Count what one finished batch adds to res. */
static void tally(struct nn_net *net, struct sweep *s, const struct attack_view *v,
		  struct attack_result *res)
{
	int dim = net->in_dim, q = 0;
	for (int r = 0; r < v->batch; r++) {
		bool ok = v->pred_clean[r] == v->y[r], ok_adv = v->pred_adv[r] == v->y[r];
		res->clean_correct += ok;
		res->robust_correct += ok && ok_adv;
		res->adv_correct += ok_adv;
		if (v->target && ok && v->y[r] != v->target[r]) {
			res->target_eligible++;
			res->target_hits += v->pred_adv[r] == v->target[r];
		}
		const float *x0 = v->x0 + (size_t)r * dim, *xa = v->adv + (size_t)r * dim;
		double l2 = 0, linf = 0;
		for (int k = 0; k < dim; k++) {
			double d = fabs((double)xa[k] - x0[k]);
			l2 += d * d;
			linf = d > linf ? d : linf;
		}
		l2 = sqrt(l2);
		res->l2_mean += l2;
		res->linf_mean += linf;
		res->l2_max = l2 > res->l2_max ? l2 : res->l2_max;
		res->linf_max = linf > res->linf_max ? linf : res->linf_max;
		if (ok && !ok_adv) {
			/* The adversarial as a PNG would store it: clip, round, rescale
			 * exactly as data_batch does. */
			float *xq = s->xq + (size_t)q * dim;
			for (int k = 0; k < dim; k++)
				xq[k] = (float)data_to_byte(xa[k]) / 255.0f - 0.5f;
			s->y[q++] = v->y[r];
		}
	}
	res->zero_grad += (int)v->zero_grad;
	res->nonfinite_grad += (int)v->nonfinite_grad;
	res->grad_evals += v->grad_evals;
	if (q > 0) {
		nn_argmax(nn_forward(net, s->xq, q), q, net->out_dim, s->pq);
		res->fooled += q;
		for (int i = 0; i < q; i++)
			res->fooled_8bit += s->pq[i] != s->y[i];
	}
}

static void finish_result(struct attack_result *res, bool targeted)
{
	int n = res->n;
	res->clean_accuracy = (double)res->clean_correct / n;
	res->robust_accuracy = (double)res->robust_correct / n;
	res->adv_accuracy = (double)res->adv_correct / n;
	res->attack_success_rate =
		res->clean_correct ? (double)(res->clean_correct - res->robust_correct) /
					     res->clean_correct
				   : 0;
	res->l2_mean /= n;
	res->linf_mean /= n;
	res->images_per_second = res->seconds > 0 ? n / res->seconds : 0;
	if (res->grad_evals > 0 && res->zero_grad * 100L > res->grad_evals)
		res->flags |= ATTACK_FLAG_ZERO_GRADIENTS;
	if (res->nonfinite_grad > 0)
		res->flags |= ATTACK_FLAG_NONFINITE;
	/* A targeted attack is judged by its hits, an untargeted one by what it
	 * leaves correct. */
	bool weaker = targeted ? res->target_hits < res->one_step_target_hits
			       : res->robust_correct > res->one_step_robust_correct;
	if (res->one_step_robust_correct >= 0 && weaker)
		res->flags |= ATTACK_FLAG_WEAKER_THAN_ONE_STEP;
}

/* NOT_FALLING: a larger eps left more images correct than a smaller one. */
static void flag_not_falling(struct attack_result *out, int neps)
{
	for (int i = 0; i < neps; i++)
		for (int j = 0; j < neps; j++)
			if (out[j].eps < out[i].eps &&
			    out[i].robust_correct > out[j].robust_correct)
				out[i].flags |= ATTACK_FLAG_NOT_FALLING;
}

sl_status attack_sweep(struct nn_net *net, const struct sl_dataset *ds, int n,
		       const struct attack_recipe *r, const float *eps, int neps,
		       attack_batch_fn on_batch, void *ctx, struct attack_result *out,
		       struct sl_error *err)
{
	if (neps < 1)
		return status_set(err, SL_ERR_ARG, "attack: no eps to attack at");
	memset(out, 0, sizeof *out * (size_t)neps);
	if ((int)data_dim(ds) != net->in_dim)
		return status_set(err, SL_ERR_ARG,
				  "attack: the images have %u x %u x %u = %zu values but the "
				  "network takes %d",
				  ds->c, ds->h, ds->w, data_dim(ds), net->in_dim);
	if ((int)ds->classes != net->out_dim)
		return status_set(err, SL_ERR_ARG,
				  "attack: the data has %u classes but the network gives %d",
				  ds->classes, net->out_dim);
	if (ds->n == 0)
		return status_set(err, SL_ERR_ARG, "attack: the dataset is empty");
	for (int i = 0; i < neps; i++)
		if (!(eps[i] >= 0) || !isfinite(eps[i]))
			return status_set(err, SL_ERR_ARG, "attack: eps must be >= 0, got %g", eps[i]);
	if (n <= 0 || (uint32_t)n > ds->n)
		n = (int)ds->n;

	struct sweep s = {0};
	sl_status st = attacker_new(net, r, &s.main, err);
	if (st != SL_OK)
		return st;
	if (r->kind == ATTACK_PGD) {
		struct attack_recipe one = *r;
		one.kind = r->norm == ATTACK_NORM_INF ? ATTACK_FGSM : ATTACK_FGM;
		one.steps = 1;
		one.step_size = 0;
		one.step_travel = 1;
		one.random_start = false;
		one.restarts = 1;
		st = attacker_new(net, &one, &s.one_step, err);
		if (st != SL_OK)
			goto out;
	}
	size_t cap = (size_t)net->max_batch, dim = (size_t)net->in_dim;
	s.x = malloc(sizeof(float) * cap * dim);
	s.xq = malloc(sizeof(float) * cap * dim);
	s.y = malloc(sizeof(int) * cap);
	s.pq = malloc(sizeof(int) * cap);
	if (!s.x || !s.xq || !s.y || !s.pq) {
		st = status_set(err, SL_ERR_NOMEM, "attack: batch buffers");
		goto out;
	}
	for (int e = 0; e < neps; e++) {
		struct attack_result *res = &out[e];
		res->eps = eps[e];
		res->n = n;
		res->one_step_robust_correct = s.one_step ? 0 : -1;
		attacker_set_eps(s.main, eps[e]);
		rng_seed(&s.main->rng, r->seed);
		if (s.one_step)
			attacker_set_eps(s.one_step, eps[e]);
		for (int start = 0; start < n; start += (int)cap) {
			int b = n - start < (int)cap ? n - start : (int)cap;
			struct sl_dataset view;
			st = data_view(ds, (uint32_t)start, (uint32_t)b, &view, err);
			if (st != SL_OK)
				goto out;
			data_batch(&view, NULL, (size_t)b, s.x, s.y);
			double t0 = now_seconds();
			attacker_begin(s.main, s.x, s.y, b);
			attacker_finish(s.main);
			res->seconds += now_seconds() - t0;
			struct attack_view v;
			attacker_view(s.main, &v);
			if (s.one_step) {
				struct attack_view ov;
				attacker_begin(s.one_step, s.x, s.y, b);
				attacker_finish(s.one_step);
				attacker_view(s.one_step, &ov);
				for (int k = 0; k < b; k++) {
					bool ok = ov.pred_clean[k] == ov.y[k];
					res->one_step_robust_correct += ok && ov.pred_adv[k] == ov.y[k];
					res->one_step_target_hits += ov.target && ok &&
								     ov.y[k] != ov.target[k] &&
								     ov.pred_adv[k] == ov.target[k];
				}
			}
			tally(net, &s, &v, res);
			if (on_batch) {
				struct attack_progress p = {e, eps[e], start, start + b, n, &v};
				st = on_batch(ctx, &p, err);
				if (st != SL_OK)
					goto out;
			}
		}
		finish_result(res, r->target != ATTACK_UNTARGETED);
	}
	flag_not_falling(out, neps);
out:
	attacker_free(s.main);
	attacker_free(s.one_step);
	free(s.x);
	free(s.xq);
	free(s.y);
	free(s.pq);
	return st;
}

sl_status attack_eval_fgsm(struct nn_net *net, const struct sl_dataset *ds, int n, float eps,
			   struct attack_result *out, struct sl_error *err)
{
	memset(out, 0, sizeof *out);
	if (!(eps >= 0))
		return status_set(err, SL_ERR_ARG, "FGSM: eps %g must be >= 0", eps);
	struct attack_recipe r = attack_recipe_fgsm(eps);
	return attack_sweep(net, ds, n, &r, &eps, 1, NULL, NULL, out, err);
}
