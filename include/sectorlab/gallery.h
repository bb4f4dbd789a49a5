/*
 * gallery: the attack gallery's work, without a terminal.
 *
 * A gallery attacks test images with a recipe on a network of its own (a
 * copy the caller takes of a lane's with lab_copy_net: never a training
 * worker's), one piece of work at a time, each a task (task.h), so the
 * screen that shows it never waits:
 *   GALLERY_GRID    the images shown, each attacked alone (so its adversarial
 *                   is the one attack_sweep keeps for that image and the one
 *                   its step-through ends on), with clean and adversarial
 *                   softmax probabilities and perturbation norms;
 *   GALLERY_SWEEP   clean and robust accuracy, the attack success rate over
 *                   the images correct before the attack, norms and the
 *                   8-bit check over the first n test images (attack_sweep);
 *   GALLERY_TRACE   one image of the grid, step by step (attack_trace_run);
 *   GALLERY_EXPORT  the grid as PNGs, through export_attack_set as `sectorlab
 *                   attack --png-dir` writes them.
 * While work runs, the network and the request belong to its task; the
 * results of finished work stay readable until the same kind of work
 * finishes again (gallery_poll installs them, on the caller's thread).
 * Nothing here prints.
 */
#ifndef SECTORLAB_GALLERY_H
#define SECTORLAB_GALLERY_H

#include <stdbool.h>

#include "sectorlab/arch.h"
#include "sectorlab/attack.h"
#include "sectorlab/data.h"
#include "sectorlab/export.h"
#include "sectorlab/status.h"
#include "sectorlab/task.h"

#define GALLERY_MAX_SHOWN 16

enum gallery_work { GALLERY_NONE, GALLERY_GRID, GALLERY_SWEEP, GALLERY_TRACE, GALLERY_EXPORT };

/* One image of the grid. */
struct gallery_item {
	int index;                     /* in the test set */
	int label, pred_clean, pred_adv;
	const float *x0, *adv;         /* (dim) on the network's scale */
	const float *p_clean, *p_adv;  /* (classes) softmax probabilities */
	double l2, linf;               /* ||adv - x0|| */
};

struct gallery_grid {
	int n;
	struct attack_recipe recipe;
	struct gallery_item item[GALLERY_MAX_SHOWN];
};

struct gallery_sweep {
	struct attack_recipe recipe;
	struct attack_result result;
};

struct gallery;

/* A gallery for networks of arch (its input fitted) on a copy of test
 * (the lab may free its own while work runs). */
sl_status gallery_new(const struct arch *arch, const struct sl_dataset *test,
		      struct gallery **out, struct sl_error *err);
/* Cancel any work, wait for it, free everything.  Safe with NULL. */
void gallery_free(struct gallery *g);

/* The gallery's network, to fill (lab_copy_net) while no work runs. */
struct nn_net *gallery_net(struct gallery *g);
const struct sl_dataset *gallery_test_set(const struct gallery *g);

/*
 * Start work; SL_ERR_ARG when work runs already, the recipe does not
 * check, or (trace, export) there is no grid or no such item.  grid: test
 * images first, first + 1, ... (wrapping), n of them (1..GALLERY_MAX_SHOWN);
 * sweep: the first n test images (all when n <= 0 or beyond the set);
 * trace: item of the grid shown, with the grid's recipe; export: the grid
 * shown into dir (made when missing).
 */
sl_status gallery_start_grid(struct gallery *g, const struct attack_recipe *r, int first, int n,
			     struct sl_error *err);
sl_status gallery_start_sweep(struct gallery *g, const struct attack_recipe *r, int n,
			      struct sl_error *err);
sl_status gallery_start_trace(struct gallery *g, int item, struct sl_error *err);
sl_status gallery_start_export(struct gallery *g, const char *dir, struct sl_error *err);

/* The work started last (GALLERY_NONE before any) and its status.  Once it
 * has ended (done, failed or cancelled), its results are installed and its
 * task freed; the final status stays. */
enum gallery_work gallery_poll(struct gallery *g, struct task_status *st);
bool gallery_busy(const struct gallery *g);
/* Ask the running work to stop (returns at once; gallery_poll says when). */
void gallery_cancel(struct gallery *g);

/* The latest finished results, or NULL before the first. */
const struct gallery_grid *gallery_grid(const struct gallery *g);
const struct gallery_sweep *gallery_sweep(const struct gallery *g);
/* The trace and the grid item it belongs to. */
const struct attack_trace *gallery_trace(const struct gallery *g, int *item);
/* The export, and the directory written. */
const struct export_summary *gallery_exported(const struct gallery *g, const char **dir);

/* The k largest of p (classes values), largest first, into idx (k). */
void gallery_top(const float *p, int classes, int k, int *idx);

#endif
