/*
 * caps: where a run's spectral caps come from, and what they are.
 *
 * A caps_spec is the one description of a run's caps (DESIGN.md §5): the
 * Theorem 3 allocation for network indices (nu, delta) with an objective
 * (certified), the caps the authors' code hard-codes, or caps given by hand
 * (neither certified).  The training config carries it; checkpoints record
 * it whole; certify reads it back.
 *
 * caps_preview and caps_resolve are the only ways to turn a spec into
 * numbers, and resolve is preview plus "it must exist": the designer that
 * previews and the restart that trains cannot disagree.  Training caps each
 * layer CERTIFY_CAP_MARGIN below its bound (the Theorem 4 bound for
 * certified caps, the cap asked for otherwise), so that float rounding never
 * takes a layer over it.
 *
 * This module does not train, print or touch networks; results are plain
 * structs owned by the caller.
 */
#ifndef SECTORLAB_CAPS_H
#define SECTORLAB_CAPS_H

#include <stdbool.h>

#include "sectorlab/certify.h"
#include "sectorlab/checkpoint.h"
#include "sectorlab/model.h"
#include "sectorlab/nn.h"
#include "sectorlab/sector.h"
#include "sectorlab/status.h"

/* The paper's network indices, named once. */
#define CAPS_PAPER_NU (-2.0)
#define CAPS_PAPER_DELTA 0.4

enum caps_source {
	CAPS_CERTIFIED, /* the Theorem 3 allocation at (nu, delta), Theorem 4 bounds */
	CAPS_AUTHORS,   /* the authors' hard-coded caps (model_authors_caps) */
	CAPS_MANUAL,    /* rho given by hand */
};

struct caps_spec {
	enum caps_source source;
	double nu, delta;                /* CAPS_CERTIFIED: the network's indices */
	enum sector_objective objective; /* CAPS_CERTIFIED: what the allocation maximises */
	double rho[NN_MAX_LAYERS];       /* CAPS_MANUAL: one cap per weighted layer */
	int nrho;
};

/* Certified caps at the paper's (-2, 0.4), product objective: the default. */
struct caps_spec caps_spec_paper(void);

/* The same source at other indices. */
struct caps_spec caps_spec_certified(double nu, double delta, enum sector_objective objective);

/* Caps by hand (n of them; n <= NN_MAX_LAYERS). */
struct caps_spec caps_spec_manual(const double *rho, int n);

/* "certified", "authors", "manual" and back (SL_ERR_ARG naming the known ones). */
const char *caps_source_name(enum caps_source source);
sl_status caps_source_parse(const char *name, enum caps_source *out, struct sl_error *err);

/* "product" or "min" (the only parser of an objective's name). */
sl_status caps_objective_parse(const char *name, enum sector_objective *out,
			       struct sl_error *err);

/* What a spec comes to for one model. */
struct caps_plan {
	struct caps_spec spec;
	bool feasible;                 /* caps exist; else status and why say why not */
	sl_status status;              /* SL_OK when feasible; SL_ERR_ARG for a spec that
					  does not fit the model, SL_ERR_INFEASIBLE,
					  SL_ERR_RANGE, ... when no allocation exists */
	char why[512];
	bool certified;                /* a theorem backs the caps (CAPS_CERTIFIED) */
	struct sector_allocation alloc; /* CAPS_CERTIFIED and feasible: per sector layer
					  (pooling included), with the Theorem 4 branch */
	int nrho;                      /* one per weighted layer of the model */
	double rho[NN_MAX_LAYERS];     /* the caps training uses: each bound lowered by
					  CERTIFY_CAP_MARGIN */
	double bound[NN_MAX_LAYERS];   /* what each cap stands for: the Theorem 4 bound
					  (certified), else the cap asked for; a layer
					  is over its cap past it (certify_over_cap) */
	char what[160];                /* "allocated for (nu, delta) = (-2, 0.4) (product
					  objective) by Theorems 3 and 4: certified" */
	char note[64];                 /* for a narrow panel: "certified: nu -2, delta 0.4" */
};

/*
 * The caps spec gives for model, whether or not they exist (out->feasible);
 * milliseconds, so the designer may call it at every key.  Returns SL_OK when
 * the preview was computed; an error only for a failure to compute it.
 */
sl_status caps_preview(const struct caps_spec *spec, const struct arch *arch, struct caps_plan *out,
		       struct sl_error *err);

/* caps_preview, then out->status with out->why when the caps do not exist. */
sl_status caps_resolve(const struct caps_spec *spec, const struct arch *arch, struct caps_plan *out,
		       struct sl_error *err);

/*
 * The sector designer's map of the (nu, delta) plane: at each point, whether
 * certified caps exist for the model (caps_preview of caps_spec_certified)
 * and how generous they are.  One row of points (one delta) a call, so
 * that a screen can fill a map in pieces on a task (task.h).
 */
enum caps_cell_kind {
	CAPS_CELL_CAPS,      /* an allocation exists */
	CAPS_CELL_NONE,      /* a sector, but no allocation (Theorem 3 or 4 refuses) */
	CAPS_CELL_NO_SECTOR, /* delta <= 0 or 4 delta nu > 1: the indices are no sector */
};

struct caps_cell {
	enum caps_cell_kind kind;
	double product;      /* CAPS_CELL_CAPS: the product of the Theorem 4 bounds */
};

/* Cells at (nu[k], delta) for k < n, under objective.  Stops early (the
 * cells left are untouched) when stop(stop_ctx) says so after a cell; stop
 * may be NULL.  Returns the cells done, or -1 with err when the model's
 * layers cannot be had (a preview that cannot be computed). */
int caps_map_row(const struct arch *arch, enum sector_objective objective, double delta,
		 const double *nu, int n, struct caps_cell *out, bool (*stop)(void *stop_ctx),
		 void *stop_ctx, struct sl_error *err);

/* The certificate a run with these caps is measured by, as `sectorlab
 * certify` computes it from the checkpoint by default: the spec's (nu,
 * delta) and objective (the paper's for caps that no allocation gave);
 * other options zero. */
struct certify_options caps_certify_options(const struct caps_spec *spec);

/*
 * Checkpoint metadata: caps_meta fills the values of the keys
 * CAPS_META_KEYS (in that order) for a resolved plan (rho: the caps trained
 * at, which the checkpoint loader applies); caps_spec_from_info reads a spec
 * back from a checkpoint's metadata.  A checkpoint without "caps_source"
 * (older files) is read as certified at its "nu"/"delta" (default the
 * paper's) with its "objective" (default product).
 */
#define CAPS_META_N 6
extern const char *const CAPS_META_KEYS[CAPS_META_N]; /* caps_source, nu, delta,
							objective, rho, caps_bound */
struct caps_meta {
	char value[CAPS_META_N][512];
};
void caps_meta(const struct caps_plan *plan, struct caps_meta *out);
sl_status caps_spec_from_info(const struct checkpoint_info *info, struct caps_spec *out,
			      struct sl_error *err);

#endif
