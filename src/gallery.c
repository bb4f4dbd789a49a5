/* gallery: the attack gallery's work as tasks on a network of its own (see
 * gallery.h). */
#include "sectorlab/gallery.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* A grid's storage; the gallery keeps two, shown and being computed. */
struct grid_store {
	struct gallery_grid grid;
	float *x0, *adv;         /* (GALLERY_MAX_SHOWN, dim) */
	float *p_clean, *p_adv;  /* (GALLERY_MAX_SHOWN, classes) */
};

struct gallery {
	struct nn_net *net;
	struct sl_dataset own;       /* a copy of the test set (the lab frees its
					own when it switches data) */
	const struct sl_dataset *test; /* &own */
	int dim, classes;
	struct task *task;
	enum gallery_work work;      /* started last */
	struct task_status last;     /* its final status, once ended */
	/* The request of the running work. */
	struct attack_recipe r;
	int first, n, item;
	char dir[4096];
	/* Results: being computed, and finished. */
	struct grid_store store[2];
	int shown;                   /* store[shown] is the grid shown; -1: none */
	struct gallery_sweep sweep_new, sweep;
	bool have_sweep;
	struct attack_trace trace_new, trace;
	int trace_item;              /* -1: no trace */
	struct export_summary export_new, exported;
	char exported_dir[4096];
	bool have_export;
};

static sl_status store_alloc(struct grid_store *s, int dim, int classes)
{
	size_t big = (size_t)GALLERY_MAX_SHOWN * dim, small = (size_t)GALLERY_MAX_SHOWN * classes;
	s->x0 = malloc(sizeof(float) * big);
	s->adv = malloc(sizeof(float) * big);
	s->p_clean = malloc(sizeof(float) * small);
	s->p_adv = malloc(sizeof(float) * small);
	return s->x0 && s->adv && s->p_clean && s->p_adv ? SL_OK : SL_ERR_NOMEM;
}

static void store_free(struct grid_store *s)
{
	free(s->x0);
	free(s->adv);
	free(s->p_clean);
	free(s->p_adv);
}

sl_status gallery_new(const struct arch *arch, const struct sl_dataset *test,
		      struct gallery **out, struct sl_error *err)
{
	*out = NULL;
	struct gallery *g = calloc(1, sizeof *g);
	if (!g)
		return status_set(err, SL_ERR_NOMEM, "the gallery");
	size_t dim = data_dim(test);
	/* Batches for the sweep: smaller for colour images, whose networks
	 * hold larger activations. */
	int batch = dim > 1000 ? 32 : 100;
	sl_status st = arch_build(arch, batch, &g->net, err);
	if (st != SL_OK) {
		free(g);
		return st;
	}
	if ((size_t)g->net->in_dim != dim || g->net->out_dim != (int)test->classes) {
		st = status_set(err, SL_ERR_ARG,
				"gallery: the network takes %d values and gives %d classes, the "
				"test images have %zu values and %u classes",
				g->net->in_dim, g->net->out_dim, dim, test->classes);
		nn_free(g->net);
		free(g);
		return st;
	}
	/* The gallery's own copy: work in progress never reads data the lab
	 * has let go of. */
	g->own = *test;
	g->own.owned = true;
	g->own.pixels = malloc(dim * test->n);
	g->own.labels = malloc(test->n);
	if (!g->own.pixels || !g->own.labels) {
		free(g->own.pixels);
		free(g->own.labels);
		nn_free(g->net);
		free(g);
		return status_set(err, SL_ERR_NOMEM, "the gallery's copy of %u test images",
				  test->n);
	}
	memcpy(g->own.pixels, test->pixels, dim * test->n);
	memcpy(g->own.labels, test->labels, test->n);
	g->test = &g->own;
	g->dim = (int)dim;
	g->classes = (int)test->classes;
	g->shown = -1;
	g->trace_item = -1;
	for (int i = 0; i < 2; i++)
		if (store_alloc(&g->store[i], g->dim, g->classes) != SL_OK) {
			gallery_free(g);
			return status_set(err, SL_ERR_NOMEM, "the gallery's images");
		}
	*out = g;
	return SL_OK;
}

void gallery_free(struct gallery *g)
{
	if (!g)
		return;
	task_free(g->task);
	nn_free(g->net);
	data_free(&g->own);
	for (int i = 0; i < 2; i++)
		store_free(&g->store[i]);
	attack_trace_free(&g->trace_new);
	attack_trace_free(&g->trace);
	free(g);
}

struct nn_net *gallery_net(struct gallery *g)
{
	return g->net;
}

const struct sl_dataset *gallery_test_set(const struct gallery *g)
{
	return g->test;
}

void gallery_top(const float *p, int classes, int k, int *idx)
{
	for (int j = 0; j < k; j++) {
		int best = -1;
		for (int c = 0; c < classes; c++) {
			bool taken = false;
			for (int q = 0; q < j; q++)
				taken |= idx[q] == c;
			if (!taken && (best < 0 || p[c] > p[best]))
				best = c;
		}
		idx[j] = best;
	}
}

/* Softmax of one row of logits (classes). */
static void softmax(const float *z, int classes, float *p)
{
	float top = z[0];
	for (int c = 1; c < classes; c++)
		top = z[c] > top ? z[c] : top;
	double sum = 0;
	for (int c = 0; c < classes; c++)
		sum += exp((double)z[c] - top);
	for (int c = 0; c < classes; c++)
		p[c] = (float)(exp((double)z[c] - top) / sum);
}

/* ---- the work, on the task's thread ---------------------------------------- */

/* What attack_sweep kept for one image. */
struct one {
	struct gallery *g;
	struct grid_store *s;
	int i;
};

static sl_status keep_one(void *ctx, const struct attack_progress *p, struct sl_error *err)
{
	struct one *o = ctx;
	const struct attack_view *v = p->view;
	struct gallery_item *it = &o->s->grid.item[o->i];
	size_t dim = (size_t)o->g->dim;
	(void)err;
	memcpy(o->s->x0 + o->i * dim, v->x0, sizeof(float) * dim);
	memcpy(o->s->adv + o->i * dim, v->adv, sizeof(float) * dim);
	it->label = v->y[0];
	it->pred_clean = v->pred_clean[0];
	it->pred_adv = v->pred_adv[0];
	return SL_OK;
}

static sl_status work_grid(struct gallery *g, struct task *t, struct sl_error *err)
{
	struct grid_store *s = &g->store[g->shown == 0 ? 1 : 0];
	struct nn_net *net = g->net;
	char what[96], describe[64];
	snprintf(describe, sizeof describe, "%s L%s", g->r.kind == ATTACK_FGSM ? "FGSM"
						     : g->r.kind == ATTACK_FGM ? "FGM" : "PGD",
		 g->r.norm == ATTACK_NORM_INF ? "-inf" : "2");
	s->grid.n = g->n;
	s->grid.recipe = g->r;
	for (int i = 0; i < g->n; i++) {
		snprintf(what, sizeof what, "%s on image %d of %d", describe, i + 1, g->n);
		if (task_progress(t, i, g->n, what))
			return status_set(err, SL_ERR_CANCELLED, "stopped at image %d of %d", i + 1,
					  g->n);
		struct gallery_item *it = &s->grid.item[i];
		it->index = (int)(((long)g->first + i) % (long)g->test->n);
		struct sl_dataset view;
		sl_status st = data_view(g->test, (uint32_t)it->index, 1, &view, err);
		struct attack_result res;
		struct one o = {g, s, i};
		if (st == SL_OK)
			st = attack_sweep(net, &view, 1, &g->r, &g->r.eps, 1, keep_one, &o, &res, err);
		if (st != SL_OK)
			return st;
		size_t dim = (size_t)g->dim, k = (size_t)g->classes;
		it->x0 = s->x0 + i * dim;
		it->adv = s->adv + i * dim;
		it->p_clean = s->p_clean + i * k;
		it->p_adv = s->p_adv + i * k;
		softmax(nn_forward(net, it->x0, 1), g->classes, s->p_clean + i * k);
		softmax(nn_forward(net, it->adv, 1), g->classes, s->p_adv + i * k);
		double l2 = 0, linf = 0;
		for (size_t q = 0; q < dim; q++) {
			double d = fabs((double)it->adv[q] - it->x0[q]);
			l2 += d * d;
			linf = d > linf ? d : linf;
		}
		it->l2 = sqrt(l2);
		it->linf = linf;
	}
	task_progress(t, g->n, g->n, NULL);
	return SL_OK;
}

static sl_status sweep_batch(void *ctx, const struct attack_progress *p, struct sl_error *err)
{
	struct task *t = ctx;
	if (task_progress(t, p->done, p->n, NULL))
		return status_set(err, SL_ERR_CANCELLED, "stopped after %d of %d images", p->done,
				  p->n);
	return SL_OK;
}

static sl_status work_sweep(struct gallery *g, struct task *t, struct sl_error *err)
{
	char what[96], eps[32];
	attack_format_float(g->r.eps, eps, sizeof eps);
	int n = g->n > 0 && g->n < (int)g->test->n ? g->n : (int)g->test->n;
	snprintf(what, sizeof what, "%s L%s eps %s on %d test images",
		 g->r.kind == ATTACK_FGSM ? "FGSM" : g->r.kind == ATTACK_FGM ? "FGM" : "PGD",
		 g->r.norm == ATTACK_NORM_INF ? "-inf" : "2", eps, n);
	task_progress(t, 0, n, what);
	g->sweep_new.recipe = g->r;
	return attack_sweep(g->net, g->test, n, &g->r, &g->r.eps, 1, sweep_batch, t,
			    &g->sweep_new.result, err);
}

static bool trace_each(void *ctx, int done, int total)
{
	return !task_progress(ctx, done, total, NULL);
}

static sl_status work_trace(struct gallery *g, struct task *t, struct sl_error *err)
{
	const struct gallery_item *it = &g->store[g->shown].grid.item[g->item];
	char what[96];
	snprintf(what, sizeof what, "step-through of test image #%d", it->index);
	task_progress(t, 0, g->r.restarts * (g->r.steps + 1), what);
	return attack_trace_run(g->net, &g->r, it->x0, it->label, trace_each, t, &g->trace_new,
				err);
}

static sl_status export_check(void *ctx, struct sl_error *err)
{
	if (task_cancelled(ctx))
		return status_set(err, SL_ERR_CANCELLED, "export stopped; the files written are whole");
	return SL_OK;
}

static sl_status work_export(struct gallery *g, struct task *t, struct sl_error *err)
{
	const struct gallery_grid *grid = &g->store[g->shown].grid;
	struct stat sb;
	if (stat(g->dir, &sb) == 0) {
		if (!S_ISDIR(sb.st_mode))
			return status_set(err, SL_ERR_IO, "%s: %s", g->dir, strerror(ENOTDIR));
	} else if (mkdir(g->dir, 0777) != 0) {
		return status_set(err, SL_ERR_IO, "%s: cannot make the directory: %s", g->dir,
				  strerror(errno));
	}
	struct export_example e[GALLERY_MAX_SHOWN];
	for (int i = 0; i < grid->n; i++) {
		const struct gallery_item *it = &grid->item[i];
		e[i] = (struct export_example){it->index, it->label, it->pred_clean, it->pred_adv,
					       it->x0, it->adv};
	}
	task_progress(t, 0, grid->n, "writing PNGs");
	struct export_shape shape = {(int)g->test->c, (int)g->test->h, (int)g->test->w};
	return export_attack_set(g->dir, g->net, &shape, e, grid->n, &grid->recipe, export_check, t,
				 &g->export_new, err);
}

static sl_status work(void *ctx, struct task *t, struct sl_error *err)
{
	struct gallery *g = ctx;
	switch (g->work) {
	case GALLERY_GRID: return work_grid(g, t, err);
	case GALLERY_SWEEP: return work_sweep(g, t, err);
	case GALLERY_TRACE: return work_trace(g, t, err);
	case GALLERY_EXPORT: return work_export(g, t, err);
	default: return status_set(err, SL_ERR_ARG, "gallery: no such work");
	}
}

/* ---- starting, polling ----------------------------------------------------- */

static sl_status start(struct gallery *g, enum gallery_work w, struct sl_error *err)
{
	if (g->task)
		return status_set(err, SL_ERR_ARG, "the gallery is busy: wait, or Esc to stop");
	g->work = w;
	memset(&g->last, 0, sizeof g->last);
	sl_status st = task_start(work, g, &g->task, err);
	if (st != SL_OK)
		g->work = GALLERY_NONE;
	return st;
}

sl_status gallery_start_grid(struct gallery *g, const struct attack_recipe *r, int first, int n,
			     struct sl_error *err)
{
	if (g->task)
		return start(g, GALLERY_GRID, err);
	sl_status st = attack_recipe_check(r, g->classes, err);
	if (st != SL_OK)
		return st;
	if (n < 1 || n > GALLERY_MAX_SHOWN)
		return status_set(err, SL_ERR_ARG, "gallery: %d images (1 to %d)", n,
				  GALLERY_MAX_SHOWN);
	g->r = *r;
	g->first = first < 0 ? 0 : first;
	g->n = n;
	return start(g, GALLERY_GRID, err);
}

sl_status gallery_start_sweep(struct gallery *g, const struct attack_recipe *r, int n,
			      struct sl_error *err)
{
	if (g->task)
		return start(g, GALLERY_SWEEP, err);
	sl_status st = attack_recipe_check(r, g->classes, err);
	if (st != SL_OK)
		return st;
	g->r = *r;
	g->n = n;
	return start(g, GALLERY_SWEEP, err);
}

sl_status gallery_start_trace(struct gallery *g, int item, struct sl_error *err)
{
	if (g->task)
		return start(g, GALLERY_TRACE, err);
	if (g->shown < 0 || item < 0 || item >= g->store[g->shown].grid.n)
		return status_set(err, SL_ERR_ARG, "gallery: no image %d shown to step through",
				  item);
	g->r = g->store[g->shown].grid.recipe;
	g->item = item;
	return start(g, GALLERY_TRACE, err);
}

sl_status gallery_start_export(struct gallery *g, const char *dir, struct sl_error *err)
{
	if (g->task)
		return start(g, GALLERY_EXPORT, err);
	if (g->shown < 0)
		return status_set(err, SL_ERR_ARG, "gallery: nothing shown to export yet");
	if (snprintf(g->dir, sizeof g->dir, "%s", dir) >= (int)sizeof g->dir)
		return status_set(err, SL_ERR_ARG, "%s: path too long", dir);
	return start(g, GALLERY_EXPORT, err);
}

/* The finished work's results become the ones shown. */
static void install(struct gallery *g)
{
	switch (g->work) {
	case GALLERY_GRID:
		g->shown = g->shown == 0 ? 1 : 0;
		/* a new grid: the old step-through belongs to other images */
		attack_trace_free(&g->trace);
		g->trace_item = -1;
		break;
	case GALLERY_SWEEP:
		g->sweep = g->sweep_new;
		g->have_sweep = true;
		break;
	case GALLERY_TRACE:
		attack_trace_free(&g->trace);
		g->trace = g->trace_new;
		memset(&g->trace_new, 0, sizeof g->trace_new);
		g->trace_item = g->item;
		break;
	case GALLERY_EXPORT:
		g->exported = g->export_new;
		snprintf(g->exported_dir, sizeof g->exported_dir, "%s", g->dir);
		g->have_export = true;
		break;
	default: break;
	}
}

enum gallery_work gallery_poll(struct gallery *g, struct task_status *st)
{
	if (!g->task) {
		*st = g->last;
		return g->work;
	}
	task_status(g->task, st);
	if (st->state == TASK_RUNNING)
		return g->work;
	task_free(g->task);
	g->task = NULL;
	if (st->state == TASK_DONE)
		install(g);
	else if (g->work == GALLERY_TRACE)
		attack_trace_free(&g->trace_new);
	g->last = *st;
	return g->work;
}

bool gallery_busy(const struct gallery *g)
{
	return g->task != NULL;
}

void gallery_cancel(struct gallery *g)
{
	task_cancel(g->task);
}

const struct gallery_grid *gallery_grid(const struct gallery *g)
{
	return g->shown >= 0 ? &g->store[g->shown].grid : NULL;
}

const struct gallery_sweep *gallery_sweep(const struct gallery *g)
{
	return g->have_sweep ? &g->sweep : NULL;
}

const struct attack_trace *gallery_trace(const struct gallery *g, int *item)
{
	if (item)
		*item = g->trace_item;
	return g->trace_item >= 0 ? &g->trace : NULL;
}

const struct export_summary *gallery_exported(const struct gallery *g, const char **dir)
{
	if (dir)
		*dir = g->exported_dir;
	return g->have_export ? &g->exported : NULL;
}
