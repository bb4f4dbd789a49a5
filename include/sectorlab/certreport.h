/*
 * certreport: everything the lab's certificate screen shows about one
 * network, computed in bounded pieces so that a task (task.h) can report
 * progress and stop between them.
 *
 * For network indices (nu, delta): the certificate (certify_network, with
 * the exact per-layer LMIs when asked), the sandwich of Lipschitz bounds
 * with the network's and each layer's empirical floor (sandwich_compute,
 * the computation behind `sectorlab certify`), every test image's certified
 * L2 radius under the best bound and under the product of norms (the curve
 * of certified accuracy against radius), and for one chosen image its
 * certified radius beside the smallest eps PGD-L2 flips it at
 * (bounds_flip_eps).  Nothing here prints or draws; the network is the
 * caller's (a copy of its own: the passes run on it) and is not changed
 * but for an uncapped layer's power vectors (as certify_network says).
 */
#ifndef SECTORLAB_CERTREPORT_H
#define SECTORLAB_CERTREPORT_H

#include <stdbool.h>
#include <stdint.h>

#include "sectorlab/bounds.h"
#include "sectorlab/certify.h"
#include "sectorlab/data.h"
#include "sectorlab/nn.h"
#include "sectorlab/sandwich.h"
#include "sectorlab/status.h"

struct certreport_config {
	double nu, delta;              /* network indices */
	enum sector_objective objective;
	bool lmi;                      /* the exact per-layer LMIs (dense layers) */
	bool sdp;                      /* LipSDP of the network */
	bool sector;                   /* search the tightest sector (about 16 SDPs) */
	int n;                         /* test images for the radii (0: all) */
	int floor_starts, floor_steps; /* the Lipschitz floors (sandwich_options) */
	uint32_t image;                /* the image whose flip is searched */
	struct bounds_flip_options flip; /* its PGD-L2 (stop is set by the report) */
	double flip_tol;               /* bisection down to eps (1 - tol) */
	uint64_t seed;
};

/* The defaults the screen uses: (nu, delta) and objective given; LMIs and
 * the network's SDP on, the sector search off; 2000 images; floors from 50
 * images, 30 steps; PGD-L2 of 40 steps with one random restart, tol 1%. */
struct certreport_config certreport_defaults(double nu, double delta,
					     enum sector_objective objective);

/* One image: its certified radius under the best bound and its flip. */
struct certreport_image {
	uint32_t index;
	int label, pred;
	double radius;                 /* certified radius, best bound (0 when wrong) */
	double radius_product;         /* under the product of norms */
	struct bounds_flip_eps flip;
	double seconds;
};

struct certreport {
	struct certificate cert;
	struct sandwich sw;
	double *best;                  /* (classes, classes) the best pair table */
	int n;                         /* images with radii: the first n of the test set */
	double *radius;                /* (n) under the best table (0 when wrong) */
	double *radius_product;        /* (n) under the product of norms */
	bool *correct;                 /* (n) classified correctly */
	double clean;                  /* share classified correctly */
	double median, median_product; /* median certified radius (wrong: 0) */
	bool have_image;
	struct certreport_image image;
	double seconds[4];             /* certificate, bounds, radii, image */
};

/*
 * Progress: stage (0 certificate, 1 bounds, 2 radii, 3 the image) of
 * CERTREPORT_STAGES with a word on what runs now; returning true stops the
 * work with SL_ERR_CANCELLED.
 */
#define CERTREPORT_STAGES 4
typedef bool (*certreport_progress_fn)(void *ctx, double done, const char *what);

/*
 * The whole report of net (classifying test) into out, zeroed first.  On
 * failure or cancel out holds nothing to free.  Free with certreport_free.
 */
sl_status certreport_run(struct nn_net *net, const struct sl_dataset *test,
			 const struct certreport_config *cfg, certreport_progress_fn progress,
			 void *ctx, struct certreport *out, struct sl_error *err);

/* The image part alone (cfg->image, modulo the test set), for a report r
 * certreport_run completed on net: another image of the same network. */
sl_status certreport_image(struct nn_net *net, const struct sl_dataset *test,
			   const struct certreport_config *cfg, const struct certreport *r,
			   certreport_progress_fn progress, void *ctx,
			   struct certreport_image *out, struct sl_error *err);

void certreport_free(struct certreport *r);

#endif
