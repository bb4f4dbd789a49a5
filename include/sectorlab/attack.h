/*
 * attack: adversarial examples against a network, and their metrics.
 *
 * Three attacks, each an instance of one projected gradient step:
 *   FGSM  x + eps * sign(g)                        (L-infinity, one step)
 *   FGM   x + eps * g / ||g||_2                    (L2, one step)
 *   PGD   x_{t+1} = P(x_t + alpha * d(g_t)), d = sign (L-inf) or g / ||g||_2,
 *         from x_0 = x or a uniform random point of the eps-ball, repeated
 *         over restarts keeping each example's worst case.
 * g is the gradient of the example's own softmax cross-entropy with respect
 * to its input (nn_backward's input gradient, the one training uses, scaled
 * from the batch mean back to the example).  P projects onto the eps-ball
 * around the clean input and then, unless clipping is off, onto the pixel
 * box.  A targeted attack descends the loss of the target class instead.
 *
 * Pixels are on the network's scale (x / 255 - 0.5, so the box is
 * [-0.5, 0.5]) and eps is in the same units (as on a [0, 1] scale).
 *
 * The work is exposed as steps: an attacker holds one batch and advances it
 * by one gradient step per attacker_step call, so the lab can animate an
 * attack and a worker thread can cancel between steps.  attack_sweep runs
 * the steps over a dataset for a list of eps and fills one attack_result per
 * eps.  A zero gradient (nothing to follow) leaves the example where it is
 * and is counted, never divided by.  The core does not print: results come
 * back in structs, text through the caller's buffers.
 */
#ifndef SECTORLAB_ATTACK_H
#define SECTORLAB_ATTACK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sectorlab/data.h"
#include "sectorlab/nn.h"
#include "sectorlab/status.h"

#define ATTACK_PIXEL_MIN (-0.5f)
#define ATTACK_PIXEL_MAX 0.5f

enum attack_kind { ATTACK_FGSM, ATTACK_FGM, ATTACK_PGD };
enum attack_norm { ATTACK_NORM_INF, ATTACK_NORM_2 };
enum attack_labels { ATTACK_LABELS_PRED, ATTACK_LABELS_TRUE };
enum attack_target {
	ATTACK_UNTARGETED,
	ATTACK_TARGET_CLASS, /* every example towards target_class */
	ATTACK_TARGET_NEXT,  /* towards (label + 1) mod classes */
};

/* Everything that decides an attack's numbers.  Print it beside every table
 * (attack_recipe_describe) and store it in every file (attack_recipe_json). */
struct attack_recipe {
	enum attack_kind kind;
	enum attack_norm norm;
	float eps;
	int steps;           /* gradient steps per restart (FGSM, FGM: 1) */
	float step_size;     /* alpha when > 0; else alpha = step_travel * eps / steps */
	float step_travel;   /* used when step_size is 0 (FGSM, FGM: 1) */
	bool random_start;   /* start uniformly in the eps-ball */
	int restarts;        /* >= 1; the worst case per example is kept */
	enum attack_labels labels;
	bool clip;           /* project onto the pixel box (off: the authors' code) */
	bool early_stop;     /* freeze an example at its first fooling iterate */
	enum attack_target target;
	int target_class;    /* for ATTACK_TARGET_CLASS */
	uint64_t seed;       /* random starts */
};

/* FGSM (L-inf, one step of eps), true labels, clipped: the textbook attack. */
struct attack_recipe attack_recipe_fgsm(float eps);
/* FGM (L2, one step of eps), true labels, clipped. */
struct attack_recipe attack_recipe_fgm(float eps);
/* PGD, true labels, clipped, no random start, alpha = 2.5 eps / steps. */
struct attack_recipe attack_recipe_pgd(enum attack_norm norm, float eps, int steps);

/* Presets: "paper-code" (what the authors ran: L2, 100 steps of 2 eps / 100,
 * no random start, predicted labels, no clipping) and "madry" (L-inf,
 * eps 0.3, 40 steps of 0.01, random start, true labels, clipped). */
sl_status attack_preset(const char *name, struct attack_recipe *out, struct sl_error *err);

sl_status attack_kind_parse(const char *name, enum attack_kind *out, struct sl_error *err);
sl_status attack_norm_parse(const char *name, enum attack_norm *out, struct sl_error *err);
sl_status attack_labels_parse(const char *name, enum attack_labels *out,
			      struct sl_error *err);
const char *attack_kind_name(enum attack_kind k);   /* "fgsm", "fgm", "pgd" */
const char *attack_norm_name(enum attack_norm n);   /* "inf", "2" */
const char *attack_labels_name(enum attack_labels l); /* "pred", "true" */

/* Reject what cannot run: eps < 0 or not finite, steps < 1, restarts < 1,
 * a negative step, FGSM with the L2 norm, FGM with L-inf, a one-step attack
 * with several steps, a random start or restarts, a target class outside
 * [0, classes).  The message names the offending setting. */
sl_status attack_recipe_check(const struct attack_recipe *r, int classes, struct sl_error *err);

/* The step alpha the recipe takes at its eps. */
float attack_step_size(const struct attack_recipe *r);

/* The shortest decimal (%g with 6 to 9 digits) that reads back as v:
 * 0.1f prints as "0.1", not "0.100000001". */
int attack_format_float(float v, char *buf, size_t cap);

/* One line for humans: "PGD L-inf eps 0.3: 40 steps of 0.01, random start,
 * 1 restart, true labels, clipped to [-0.5, 0.5], seed 1" ("PGD L-inf: ..."
 * without eps, for a sweep's shared recipe).  Returns the length snprintf
 * would have written. */
int attack_recipe_describe(const struct attack_recipe *r, bool with_eps, char *buf, size_t cap);
/* The same as JSON members without braces ("\"attack\":\"pgd\",\"norm\":...").
 * With with_eps false the eps member is left out (for a sweep's shared recipe). */
int attack_recipe_json(const struct attack_recipe *r, bool with_eps, char *buf, size_t cap);

/*
 * FGSM in L-infinity: x_adv = clip(x + eps * sign(grad_x loss(x, y)), box).
 * sign(0) = 0.  x and x_adv are (batch, in_dim) and may not overlap.
 * Returns how many examples had an all-zero (or non-finite) input gradient.
 * The lab's one-image view; sweeps go through attack_sweep.
 */
int attack_fgsm(struct nn_net *net, const float *x, const int *y, int batch, float eps,
		float *x_adv);

/*
 * The input gradient of each example's own loss: g (batch, in_dim) =
 * d loss(x_r, y_r) / d x_r, and loss (batch) when not NULL.  Runs one forward
 * and one backward pass; logits of x stay in the network.  Returns how many
 * rows of g are all zero.
 */
int attack_input_gradient(struct nn_net *net, const float *x, const int *y, int batch,
			  float *g, float *loss);

/* ---- Steps ------------------------------------------------------------- */

struct attacker; /* one batch under attack; owns its buffers, borrows the net */

/* Where a batch stands.  Pointers stay valid until the next attacker_begin. */
struct attack_view {
	int batch;
	int restart, step;       /* restart in progress and steps done in it */
	bool done;               /* every restart finished */
	const float *x0;         /* (batch, in_dim) clean inputs */
	const float *x;          /* (batch, in_dim) current iterate of this restart */
	const float *adv;        /* (batch, in_dim) worst case so far (final when done) */
	const int *y;            /* (batch) true labels */
	const int *label;        /* (batch) labels the attack pushes away from */
	const int *target;       /* (batch) target classes, or NULL when untargeted */
	const int *pred_clean;   /* (batch) predictions on x0 */
	const int *pred_adv;     /* (batch) predictions on adv (valid when done) */
	const float *loss;       /* (batch) attack loss at x, as of the last forward pass */
	const float *loss_adv;   /* (batch) attack loss at adv (valid when done) */
	long zero_grad;          /* gradient evaluations that were all zero */
	long nonfinite_grad;     /* ... that held a NaN or an infinity */
	long grad_evals;         /* gradient evaluations so far (example x step) */
};

/* An attacker for net and recipe r (checked with attack_recipe_check).  The
 * net must outlive it; batches hold at most net->max_batch examples. */
sl_status attacker_new(struct nn_net *net, const struct attack_recipe *r,
		       struct attacker **out, struct sl_error *err);
void attacker_free(struct attacker *a);

/* Change eps (and so alpha) between batches; the rest of the recipe stays. */
void attacker_set_eps(struct attacker *a, float eps);

/* Take a new batch: x0 (batch, in_dim) clean inputs in the box, y (batch)
 * true labels; 1 <= batch <= net->max_batch.  Classifies x0, chooses the
 * attack's labels and targets and the first restart's starting point. */
void attacker_begin(struct attacker *a, const float *x0, const int *y, int batch);

/* One gradient step for every example still being attacked (and, after a
 * restart's last step, the evaluation that keeps the worst case).  Returns
 * true while steps remain. */
bool attacker_step(struct attacker *a);

/* Run every remaining step. */
void attacker_finish(struct attacker *a);

void attacker_view(const struct attacker *a, struct attack_view *v);

/* ---- One image, step by step ------------------------------------------ */

/* An attack on one image with every iterate kept, for the lab's
 * step-through: entry e = restart * (steps + 1) + step is the iterate of
 * that restart after that many steps (step 0: its start), with its logits
 * and the loss of the class the attack follows.  The steps are
 * attacker_step's own, so adv is what attacker_finish (and attack_sweep)
 * keeps for the image.  Owned by the caller: attack_trace_free. */
struct attack_trace {
	int n;                 /* entries: restarts * (steps + 1) */
	int steps, restarts;
	int dim, classes;
	int y;                 /* true label */
	int label;             /* the label attacked (true or predicted) */
	int target;            /* the target class, or -1 when untargeted */
	float *x;              /* (n, dim) iterates, on the network's scale */
	float *logits;         /* (n, classes) */
	float *loss;           /* (n) cross-entropy of label (of target when targeted) */
	int *pred;             /* (n) */
	float *adv;            /* (dim) the worst case kept over the restarts */
	int pred_clean, pred_adv;
	int kept;              /* the entry adv came from (a restart's last) */
};

/* A trace holds at most this many bytes of iterates. */
#define ATTACK_TRACE_MAX_BYTES 256e6

/* Called after each entry with entries done and the total; return false to
 * stop (the trace then fails with SL_ERR_CANCELLED). */
typedef bool (*attack_trace_fn)(void *ctx, int done, int total);

/* Attack x0 (dim) with true label y by recipe r, recording every iterate.
 * SL_ERR_TOO_LARGE when the iterates would pass ATTACK_TRACE_MAX_BYTES.
 * each may be NULL.  On failure t holds nothing to free. */
sl_status attack_trace_run(struct nn_net *net, const struct attack_recipe *r, const float *x0,
			   int y, attack_trace_fn each, void *ctx, struct attack_trace *t,
			   struct sl_error *err);
void attack_trace_free(struct attack_trace *t);

/* ---- Evaluation -------------------------------------------------------- */

/* Sanity flags on a result: the numbers may be right, but look again. */
enum {
	ATTACK_FLAG_WEAKER_THAN_ONE_STEP = 1 << 0, /* PGD left more images correct than
						      FGSM / FGM at the same eps (targeted:
						      hit the target less often) */
	ATTACK_FLAG_NOT_FALLING = 1 << 1,          /* robust accuracy rose with eps */
	ATTACK_FLAG_ZERO_GRADIENTS = 1 << 2,       /* over 1% of gradients were zero */
	ATTACK_FLAG_NONFINITE = 1 << 3,            /* some gradient held NaN or inf */
};
/* Short text for each flag set in flags, separated by "; " (empty if none). */
int attack_flags_describe(unsigned flags, char *buf, size_t cap);

struct attack_result {
	float eps;
	int n;               /* images attacked */
	int clean_correct;   /* correct before the attack */
	int robust_correct;  /* correct before and after */
	int adv_correct;     /* correct after, whether or not before (what
				accuracy on the adversarial set measures) */
	int zero_grad;       /* gradient evaluations that were all zero */
	int nonfinite_grad;  /* gradient evaluations with NaN or inf */
	long grad_evals;     /* gradient evaluations (examples x steps x restarts) */
	double clean_accuracy;      /* clean_correct / n */
	double robust_accuracy;     /* robust_correct / n */
	double adv_accuracy;        /* adv_correct / n */
	double attack_success_rate; /* (clean_correct - robust_correct) / clean_correct;
				       0 when clean_correct is 0 */
	/* Targeted attacks: clean-correct images whose label is not the target,
	 * and how many of them end classified as the target. */
	int target_eligible, target_hits;
	/* ||x_adv - x|| over all n images, on the network's pixel scale. */
	double l2_mean, l2_max, linf_mean, linf_max;
	/* Successful adversarials (clean correct, adversarial wrong) that still
	 * fool the network once their pixels are rounded to bytes. */
	int fooled, fooled_8bit;
	/* PGD only: images left correct by the one-step attack of the same norm,
	 * labels, clipping and target (-1 when not run), and its target hits. */
	int one_step_robust_correct, one_step_target_hits;
	double seconds;        /* time spent attacking (not loading, not checking) */
	double images_per_second;
	unsigned flags;        /* ATTACK_FLAG_* */
};

/* What attack_sweep tells its caller after each batch. */
struct attack_progress {
	int eps_index;     /* into the eps list */
	float eps;
	int start;         /* index of the batch's first example in the dataset */
	int done, n;       /* examples finished at this eps, of n */
	const struct attack_view *view; /* the finished batch */
};

/* Called after each batch; return SL_OK to go on, anything else (with err
 * set, e.g. SL_ERR_CANCELLED) to stop the sweep with that status. */
typedef sl_status (*attack_batch_fn)(void *ctx, const struct attack_progress *p,
				     struct sl_error *err);

/*
 * Attack the first n examples of ds (all when n <= 0 or n > ds->n) at each of
 * neps eps values with recipe r (its eps is ignored), in batches of at most
 * net->max_batch, and fill out[0 .. neps).  The random starts are seeded
 * from r->seed afresh for each eps, so a sweep repeats exactly.  Sets the
 * sanity flags, including NOT_FALLING across the list (compared in eps order).
 * on_batch may be NULL.
 */
sl_status attack_sweep(struct nn_net *net, const struct sl_dataset *ds, int n,
		       const struct attack_recipe *r, const float *eps, int neps,
		       attack_batch_fn on_batch, void *ctx, struct attack_result *out,
		       struct sl_error *err);

/* FGSM with the true labels on the first n examples of ds (all when n <= 0
 * or n > ds->n), in batches of at most net->max_batch. */
sl_status attack_eval_fgsm(struct nn_net *net, const struct sl_dataset *ds, int n, float eps,
			   struct attack_result *out, struct sl_error *err);

#endif
