/*
 * bounds: Lipschitz bounds tighter than the product of norms, and the
 * empirical floor beneath them (DESIGN.md §7).
 *
 * Every certificate here reduces to a table of pair constants: L[y][j]
 * bounds how fast the logit difference z_y - z_j can change, |(z_y - z_j)(x)
 * - (z_y - z_j)(x')| <= L[y][j] |x - x'|_2, so an input of class y whose
 * margins are m_j = z_y - z_j keeps its class for every perturbation shorter
 * than min_j m_j / L[y][j].  A network bound L gives L[y][j] = sqrt(2) L.
 * The bounds, loosest first:
 *   - product:  the product of the layers' norms (certify.h computes it);
 *   - pair:     ||w_y - w_j|| times the product of the earlier layers' norms;
 *   - sector:   the smallest gamma the paper's framework certifies for the
 *               weights: exact per-layer LMIs composed by the corrected
 *               Theorem 3, one SDP maximising nu per delta, a 1-D search over
 *               delta;
 *   - sdp:      LipSDP-Neuron (Fazlyab et al. 2019) for the whole network,
 *               and per class pair with W_k^T W_k replaced by c c^T,
 *               c = w_y - w_j;
 *   - floor:    lower bounds found by search: the largest |J(x)| and
 *               |f(x) - f(y)| / |x - y| seen by gradient ascent, and per
 *               image the shortest flipping L2 perturbation PGD finds.
 * Every upper bound must sit above the floor.
 *
 * The SDP bounds and the sector work on dense networks (struct bounds_mlp, a
 * double copy of the weights in use); a network with convolutions gets
 * SL_ERR_UNSUPPORTED from bounds_mlp_from_net.  SDPs are solved with DSDP
 * and their answers are checked with LAPACK before they are returned.
 * Nothing here prints; callers own every buffer.
 */
#ifndef SECTORLAB_BOUNDS_H
#define SECTORLAB_BOUNDS_H

#include <stdbool.h>
#include <stdint.h>

#include "sectorlab/nn.h"
#include "sectorlab/status.h"

/*
 * Largest LipSDP attempted (order of the matrix: the input's rank plus every
 * hidden neuron).  Measured on one loaded core: 784-50-20-10 (order 120)
 * about 0.15 s per SDP; order 300 about 5 s; the time grows about as the
 * fourth power of the order, so beyond 400 one SDP takes over a minute.
 */
#define BOUNDS_SDP_MAX_ORDER 400

/* Largest order for the 45 per-pair SDPs (ten classes): 150 keeps them
 * within about half a minute (the MNIST MLP's order is 120). */
#define BOUNDS_PAIR_SDP_MAX_ORDER 150

/* A dense network in double precision: layer i maps dim[i] values to
 * dim[i + 1]; every layer but the last has an activation act[i] (leaky ReLU
 * with slopes alpha, beta; or tanh) slope-restricted to [alpha[i], beta[i]]
 * (leaky ReLU: [a, 1]; tanh: [0, 1]); the last is affine. */
struct bounds_mlp {
	int nlayers;
	int dim[NN_MAX_LAYERS + 1];
	double *w[NN_MAX_LAYERS];     /* (dim[i + 1], dim[i]) the weight in use */
	double *b[NN_MAX_LAYERS];     /* (dim[i + 1]) */
	double alpha[NN_MAX_LAYERS];  /* slope range of layer i's activation */
	double beta[NN_MAX_LAYERS];
	enum nn_act act[NN_MAX_LAYERS];
};

/* Zeroed weights and biases for the given sizes (nlayers >= 1); every hidden
 * activation set to leaky ReLU with the given slope (0: ReLU).  Free with
 * bounds_mlp_free. */
sl_status bounds_mlp_new(int nlayers, const int *dim, double slope, struct bounds_mlp *out,
			 struct sl_error *err);

/* The network's dense layers as it uses them (scale * W).  SL_ERR_UNSUPPORTED
 * for convolution or pooling layers, with a message saying so. */
sl_status bounds_mlp_from_net(const struct nn_net *net, struct bounds_mlp *out,
			      struct sl_error *err);
void bounds_mlp_free(struct bounds_mlp *m);

/* The logits of x (dim[0]) into z (dim[nlayers]), in double. */
void bounds_mlp_forward(const struct bounds_mlp *m, const double *x, double *z);

/* The Jacobian of the logits at x, (dim[nlayers], dim[0]) row-major: exact
 * where the network is differentiable (a leaky ReLU's pre-activation at 0
 * takes slope beta). */
sl_status bounds_mlp_jacobian(const struct bounds_mlp *m, const double *x, double *jac,
			      struct sl_error *err);

/* ---- Upper bounds ---- */

/* Product of the layers' spectral norms (exact, by SVD). */
sl_status bounds_product(const struct bounds_mlp *m, double *L, struct sl_error *err);

/*
 * Pair constants from the last layer: pair[y * classes + j] = ||w_y - w_j||
 * times l_before (a Lipschitz bound of the network up to the last layer's
 * input), 0 on the diagonal.  w is the last layer's (classes, hidden) weight.
 */
void bounds_pair_from_last(const float *w, int classes, int hidden, double l_before,
			   double *pair);

/* Order of the LipSDP of m (the first layer's rank counted as its rows,
 * an upper bound), and SL_ERR_TOO_LARGE with a message when it is above
 * BOUNDS_SDP_MAX_ORDER. */
sl_status bounds_sdp_fits(const struct bounds_mlp *m, int *order, struct sl_error *err);

/*
 * LipSDP-Neuron: *L bounds the network's L2 Lipschitz constant (direction
 * NULL), or, with direction c (dim[nlayers] values), the constant of c . z.
 * The first layer is reduced exactly to its row space.  A network of one
 * layer is just a norm.
 */
sl_status bounds_lipsdp(const struct bounds_mlp *m, const double *direction, double *L,
			struct sl_error *err);

/* Per-pair LipSDP: pair[y * classes + j] for every y != j (classes (classes
 * - 1) / 2 SDPs; the table is symmetric), 0 on the diagonal.  SL_ERR_TOO_LARGE
 * above BOUNDS_PAIR_SDP_MAX_ORDER. */
sl_status bounds_lipsdp_pairs(const struct bounds_mlp *m, double *pair, struct sl_error *err);

/* The tightest sector the exact per-layer LMIs and the corrected Theorem 3
 * certify, for the weights of m. */
struct bounds_sector {
	double nu, delta;     /* network indices found */
	double gamma;         /* k_hi at (nu, delta): a Lipschitz bound */
	int nlayers;
	double nu_i[NN_MAX_LAYERS], delta_i[NN_MAX_LAYERS];
	int sdps;             /* SDPs solved by the search */
};

/* For fixed delta, the largest network nu (one SDP over every layer's LMI
 * and A <= 0); the per-layer indices go to out (gamma filled when 4 delta nu
 * <= 1 allows it, else with nu capped at 1 / (4 delta)). */
sl_status bounds_sector_at(const struct bounds_mlp *m, double delta, struct bounds_sector *out,
			   struct sl_error *err);

/* The 1-D search over delta (decades from 1e-3 to 1e4, extended while the
 * best is at an edge, then golden section) for the smallest gamma. */
sl_status bounds_tightest_sector(const struct bounds_mlp *m, struct bounds_sector *out,
				 struct sl_error *err);

/* The same, asking stop(ctx) (may be NULL) before each SDP: true ends the
 * search with SL_ERR_CANCELLED. */
sl_status bounds_tightest_sector_until(const struct bounds_mlp *m, bool (*stop)(void *ctx),
				       void *ctx, struct bounds_sector *out, struct sl_error *err);

/* ---- Lower bounds ---- */

/*
 * Brute force for tiny networks: the largest ||W_k D_{k-1} W_{k-1} ... D_0
 * W_0|| over every activation pattern D (each hidden neuron at slope alpha or
 * beta), with direction c (NULL: the whole output) applied last.  It equals
 * the Lipschitz constant whenever every pattern occurs (one hidden layer with
 * full-row-rank W_0, for instance) and is never below it; LipSDP and the
 * sector are never below it (they hold for every per-neuron slope in
 * [alpha, beta]).  SL_ERR_TOO_LARGE beyond 20 hidden neurons.
 */
sl_status bounds_pattern_max(const struct bounds_mlp *m, const double *direction, double *L,
			     struct sl_error *err);

struct bounds_floor {
	double L;             /* largest |J(x)|_2 or pair ratio found */
	double *pair;         /* (classes, classes) largest |(J_y - J_j)(x)| found, or NULL */
	int evaluations;      /* points visited */
};

/*
 * The Lipschitz floor: from each of nstarts starting points (starts,
 * (nstarts, dim[0])), the Jacobian's norm and gradient ascent over input
 * pairs (x, x + d) of |f(x) - f(x + d)| / |d| for steps steps; the largest
 * value seen is a lower bound of the Lipschitz constant.  out->pair, when not
 * NULL, receives the same for every class pair.
 */
sl_status bounds_floor_lipschitz(const struct bounds_mlp *m, const double *starts, int nstarts,
				 int steps, uint64_t seed, struct bounds_floor *out,
				 struct sl_error *err);

/*
 * The floor of each layer's own gain, layer i being u -> act_i(W_i u + b_i)
 * (the last layer affine): bounds_floor_lipschitz on the layer alone, from
 * the nstarts network inputs starts (nstarts, dim[0]) carried to the
 * layer's input by the layers before it, and from a point where every unit
 * has its steepest slope (least squares; exists when W_i has full row
 * rank, and there the floor is the bound).  gain has m->nlayers entries; each
 * is a lower bound of the layer's Lipschitz constant, so at most
 * max(|alpha_i|, |beta_i|) ||W_i||_2 (up to rounding in the last digits).
 */
sl_status bounds_floor_layers(const struct bounds_mlp *m, const double *starts, int nstarts,
			      int steps, uint64_t seed, double *gain, struct sl_error *err);

/* How the flip search attacks. */
struct bounds_flip_options {
	int steps;            /* PGD-L2 steps per restart (e.g. 40) */
	int restarts;         /* random restarts after the first, plain one */
	int bisections;       /* bisection steps on eps after the doubling */
	double eps_start;     /* first eps tried (doubled until a flip, up to eps_max) */
	double eps_max;
	uint64_t seed;
	/* bounds_flip_eps asks this between two PGD runs (may be NULL); true
	 * stops the search with SL_ERR_CANCELLED. */
	bool (*stop)(void *ctx);
	void *stop_ctx;
};

/*
 * The shortest L2 perturbation (unclipped: certificates hold on all of R^d)
 * PGD finds that changes net's prediction (nn_predict) of each of the batch
 * inputs x (batch, in_dim) away from y: radius[i] is its length, INFINITY
 * when none up to eps_max, 0 when x is already not classified as y.  A
 * certified radius above radius[i] is a bug.
 */
sl_status bounds_flip_radius(struct nn_net *net, const float *x, const int *y, int batch,
			     const struct bounds_flip_options *o, double *radius,
			     struct sl_error *err);

/* The smallest eps at which PGD-L2 flips one input, and the bracket. */
struct bounds_flip_eps {
	double eps;           /* PGD inside the L2 ball eps flips x (INFINITY: not
				 up to eps_max; 0: x is not classified y) */
	double held;          /* PGD inside the ball held does not flip x:
				 eps (1 - tol) when eps is finite and positive */
	double length;        /* the flipping perturbation's L2 length (<= eps) */
	int attacks;          /* PGD runs made */
};

/*
 * The smallest L2 eps that flips x (in_dim values) away from class y, by
 * doubling from o->eps_start up to o->eps_max and bisection on eps until
 * the bracket is within tol (0 < tol < 1) of eps.  Every run is the same
 * attack (o's steps, restarts and seed: bounds_attack_inside), so its
 * answer depends on eps alone, and the result is checked at its ends:
 * PGD at eps flips x and PGD at eps (1 - tol) does not.  A certified
 * radius above eps (or above length) is a bug.
 */
sl_status bounds_flip_eps(struct nn_net *net, const float *x, int y,
			  const struct bounds_flip_options *o, double tol,
			  struct bounds_flip_eps *out, struct sl_error *err);

/* Does PGD (o's steps and restarts) flip any of x away from y inside the
 * per-example L2 ball eps[i]?  flipped[i] answers (false where eps[i] <= 0:
 * not attacked); returns how many, -1 when out of memory. */
int bounds_attack_inside(struct nn_net *net, const float *x, const int *y, int batch,
			 const double *eps, const struct bounds_flip_options *o, bool *flipped);

#endif
