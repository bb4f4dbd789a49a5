/*
 * sandwich: every Lipschitz bound of a network side by side, with the floor
 * beneath them: floor <= SDP <= sector <= product (DESIGN.md §7).  One call
 * computes what `certify` prints and what the lab's certificate screen
 * shows, so the two never disagree.
 *
 * Each bound comes as a table of pair constants (bounds.h): "product" and
 * "sector" are network bounds (sqrt(2) L for every pair), "pair" is
 * ||w_y - w_j|| times the product of the earlier layers' norms, "sdp" the
 * network LipSDP, "sdp-pair" the per-pair LipSDP.  "best" is their
 * elementwise minimum, sound because each is.  A bound below the floor is a
 * bug: sandwich_compute fails with a message that says so instead of
 * returning it.  Nothing here prints; free the result with sandwich_free.
 */
#ifndef SECTORLAB_SANDWICH_H
#define SECTORLAB_SANDWICH_H

#include <stdbool.h>
#include <stdint.h>

#include "sectorlab/bounds.h"
#include "sectorlab/certify.h"
#include "sectorlab/data.h"
#include "sectorlab/nn.h"
#include "sectorlab/status.h"

enum sandwich_kind {
	SANDWICH_PRODUCT,   /* product of the layers' norms */
	SANDWICH_PAIR,      /* ||w_y - w_j|| x the earlier layers' product */
	SANDWICH_SECTOR,    /* the tightest sector (or the allocation's, if smaller) */
	SANDWICH_SDP,       /* LipSDP-Neuron, the whole network */
	SANDWICH_SDP_PAIR,  /* LipSDP-Neuron per class pair */
	SANDWICH_NKINDS
};

enum sandwich_state {
	SANDWICH_COMPUTED,
	SANDWICH_NOT_ASKED,
	SANDWICH_UNSUPPORTED,  /* e.g. convolutions for the SDPs */
	SANDWICH_TOO_LARGE,    /* the SDP would take over a minute */
	SANDWICH_FAILED,       /* the solver failed; see note */
};

struct sandwich_bound {
	enum sandwich_state state;
	char note[640];        /* why not, when not computed */
	double L;              /* network bound; for pair kinds the largest pair constant */
	double *pair;          /* (classes, classes), when computed */
	double seconds;
};

/* Which table decides the radii. */
enum sandwich_choice {
	SANDWICH_USE_PRODUCT,
	SANDWICH_USE_PAIR,
	SANDWICH_USE_SDP,      /* the smaller of the network and per-pair SDPs */
	SANDWICH_USE_SECTOR,
	SANDWICH_USE_BEST,     /* elementwise minimum of everything computed */
};

/* "product", "pair", "sdp", "sector", "best"; parse returns SL_ERR_ARG. */
const char *sandwich_choice_name(enum sandwich_choice c);
sl_status sandwich_choice_parse(const char *s, enum sandwich_choice *out, struct sl_error *err);
const char *sandwich_kind_name(enum sandwich_kind k);

struct sandwich_options {
	bool sdp, sdp_pairs, sector;  /* compute these (the product and pair always) */
	int floor_starts;             /* Lipschitz floor from this many test images (0: none) */
	int floor_steps;              /* pair-ascent steps from each */
	uint64_t seed;
	/* Called before each piece of work (what: "LipSDP of the network",
	 * ...); returning true stops sandwich_compute with SL_ERR_CANCELLED.
	 * May be NULL. */
	bool (*progress)(void *ctx, const char *what);
	void *progress_ctx;
};

struct sandwich {
	int classes;
	bool constant;                /* a weighted layer is all zero: the network is constant */
	struct sandwich_bound b[SANDWICH_NKINDS];
	struct bounds_sector sector;  /* the tightest sector found, when b[SECTOR] computed */
	bool sector_searched;         /* sector holds the search's result */
	double floor_L;               /* the Lipschitz floor (0 when not run) */
	double *floor_pair;           /* (classes, classes) per-pair floor, or NULL */
	double floor_pair_max;        /* its largest entry */
	int floor_evaluations;
	double floor_seconds;
	char floor_note[640];         /* why not, when not run */
	/* The floor of each weighted layer's own gain (bounds_floor_layers),
	 * in the order of nn_weighted_layers, from the same starts: beneath
	 * each layer's verified norm.  nlayer_floor is 0 when not run. */
	int nlayer_floor;
	double layer_floor[NN_MAX_LAYERS];
	double layer_floor_seconds;
};

/*
 * Compute every bound o asks for on net, whose certificate (certify_network)
 * is cert, with the floor (the network's and each layer's) from the first
 * o->floor_starts images of ds (may be NULL when floor_starts is 0).  SL_OK
 * with each bound's state filled; SL_ERR_NUMERIC with a "bound below the
 * floor" message when a computed upper bound sits below the floor (a bug,
 * never a result), a layer's floor above its verified norm included;
 * SL_ERR_CANCELLED when o->progress asked to stop.
 */
sl_status sandwich_compute(struct nn_net *net, const struct certificate *cert,
			   const struct sl_dataset *ds, const struct sandwich_options *o,
			   struct sandwich *out, struct sl_error *err);

/*
 * The pair table a choice stands for, into pair (classes^2): for "sdp"
 * the elementwise minimum of the two SDP tables, for "best" of every
 * computed table.  SL_ERR_UNSUPPORTED with a message when the chosen bound
 * was not computed.
 */
sl_status sandwich_table(const struct sandwich *s, enum sandwich_choice c, double *pair,
			 struct sl_error *err);

void sandwich_free(struct sandwich *s);

#endif
