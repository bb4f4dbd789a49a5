/*
 * cmd: the program's subcommands (`sectorlab train`, `sectorlab allocate`, ...).
 * Each lives in src/cmd_<name>.c, is part of the program (not the core
 * library), parses its own options, prints its results (JSON on stdout with
 * --json, progress and errors on stderr) and returns the process exit code:
 * 0 on success, 1 on a runtime failure, 2 on bad usage.
 */
#ifndef SECTORLAB_CMD_H
#define SECTORLAB_CMD_H

#include <getopt.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "sectorlab/attack.h"
#include "sectorlab/certify.h"
#include "sectorlab/checkpoint.h"
#include "sectorlab/config.h"
#include "sectorlab/data.h"
#include "sectorlab/model.h"
#include "sectorlab/nn.h"
#include "sectorlab/train.h"

int cmd_train(int argc, char **argv);
int cmd_allocate(int argc, char **argv);
int cmd_attack(int argc, char **argv);
int cmd_certify(int argc, char **argv);
int cmd_reproduce(int argc, char **argv);
int cmd_lab(int argc, char **argv); /* the ncurses lab (no subcommand) */

/* Shared option helpers (src/cmd_util.c).  They print what is wrong on
 * stderr; the caller answers bad usage with exit status 2. */

/*
 * getopt_long(argc, argv, "h", longopts, NULL) that takes long options only
 * by their full names: getopt's abbreviations ("--n" for "--nu") are refused
 * with a message naming the option meant, and '?' is returned as for any
 * unknown option.  Every command's --help says so.
 */
int cmd_getopt(const char *cmd, int argc, char **argv, const struct option *longopts);

/* The values a numeric option takes: lo to hi, each end included unless
 * marked open.  Messages print it as "[0, 1]" or "(0, 100]". */
struct cmd_range {
	double lo, hi;
	bool lo_open, hi_open;
};
#define CMD_RANGE(lo, hi) ((struct cmd_range){(lo), (hi), false, false})
#define CMD_ABOVE(lo, hi) ((struct cmd_range){(lo), (hi), true, false}) /* (lo, hi] */
bool cmd_in_range(struct cmd_range r, double v);

/*
 * Where an option's value came from, for messages: "FILE line N: " when
 * value points into an option that cmd_with_config made from a settings
 * file's line (while its command runs), else "".  The parsers below put it
 * before what they say, so a bad value in a settings file names its line.
 */
struct cmd_origin {
	char s[4200];
};
struct cmd_origin cmd_origin(const char *value);

/* Parse a number in r (finite by construction: every range is); on error
 * print "--eps must be in [0, 100], got 1e300" and return -1. */
int cmd_parse_double(const char *opt, const char *text, struct cmd_range r, double *out);
/* Parse a comma-separated list of at most max numbers in r ("1.8,1.8,0.92").
 * Returns the count, or -1 after printing why. */
int cmd_parse_doubles(const char *opt, const char *text, struct cmd_range r, double *out,
		      int max);
/* Parse a whole number in [min, max]; -1 after printing why. */
int cmd_parse_long(const char *opt, const char *text, long min, long max, long *out);

/* The ranges of the options several commands share. */
#define CMD_RANGE_NU CMD_RANGE(-1e6, 1e6)   /* a network's nu */
#define CMD_RANGE_DELTA CMD_ABOVE(0, 1e6)   /* a network's delta */
#define CMD_RANGE_RHO CMD_ABOVE(0, 1e6)     /* a spectral-norm cap */
#define CMD_RANGE_FGSM_EPS CMD_RANGE(0, 1)  /* L-inf: the pixel box is 1 wide */

/*
 * v for a table: "%.<decimals>f" when that shows it with at least two
 * significant digits and no more than nine before the point, else "%g" with
 * decimals + 1 significant digits, so that very small and very large values
 * keep their meaning (1e-06, not 0.000; 2.5e+12, not thirteen digits).
 * Values that are not finite print as "inf", "-inf" or "nan".  Use it as
 * printf("%10s", cmd_num(sigma, 6).s).
 */
struct cmd_num {
	char s[40];
};
struct cmd_num cmd_num(double v, int decimals);

/* 0 when the indices (nu, delta) give a sector (sector_slopes), else 2
 * after saying why ("sectorlab <cmd>: delta = -1 <= 0: ..."). */
int cmd_check_indices(const char *cmd, double nu, double delta);

/* Threads for the networks built from now on: requested if > 0, else one
 * per processor (at most 64). */
void cmd_set_threads(long requested);
/* The data directory: --data-dir if given, else $SECTORLAB_DATA, else "data"
 * (or, when there is no data/ here, the sample `make install` copied). */
const char *cmd_data_dir(const char *flag_value);

/* The help text of --arch, shared by every command that takes it. */
#define CMD_ARCH_HELP                                                                  \
	"  --arch SPEC        a layer spec instead of a built-in model: 784-100-100-10\n" \
	"                     (dense layers, leaky ReLU 0.1 between them) or, layer\n"    \
	"                     by layer, 'input 3x32x32, conv 32 3x3 pad same, relu,\n"    \
	"                     maxpool 2x2/2, flatten, dense 10' (conv C kxk [stride s]\n" \
	"                     [pad same|valid|p]; activations leaky:A, relu, tanh,\n"     \
	"                     none after the layer they apply to)\n"

/*
 * The architecture a command runs: --arch's spec, else --model's name (a
 * built-in model; --arch also takes one), else fallback.  Giving both is an
 * error.  Returns 0, or 2 after printing why ("sectorlab <cmd>: ...").
 */
int cmd_arch(const char *cmd, const char *model, const char *spec, const char *fallback,
	     struct arch *out);

/* A built-in model's name, or else the spec (arch_format) into buf. */
const char *cmd_arch_label(const struct arch *a, char *buf, size_t cap);

/* A file a command reads or writes, declared before any work is done. */
struct cmd_file {
	const char *option; /* "--out" */
	const char *path;   /* NULL when not given */
	bool output;
};

/*
 * Check a command's files before it does any work.  Every output is probed
 * (io_probe: not an empty name, not a directory nor a socket, and writable
 * now); no output may be the same file as another output or as an input
 * (the settings file of --config counts as one): the same device and inode,
 * or for files not there yet the same name once links and ".." are
 * resolved, not the same string.  Character devices (/dev/null) may be
 * shared.  Returns 0, or the exit code after saying why on stderr
 * ("sectorlab <cmd>: ..."): 2 for bad usage (a collision, a directory, an
 * empty name), 1 when an output cannot be written.
 */
int cmd_check_files(const char *cmd, const struct cmd_file *files, int n);

/* The data files of kind under data_dir (see cmd_data_dir) as inputs for
 * cmd_check_files: the test split's, and the training split's when train
 * is true, appended to files (from files[*n] on, *n grows) with their names
 * in paths, which has room for 2 * DATA_MAX_SPLIT_FILES. */
void cmd_data_inputs(enum data_kind kind, const char *data_dir, bool train,
		     char (*paths)[4096], struct cmd_file *files, int *n);

/*
 * The end of every command: flush and close stdout; results that did not
 * reach it (a full disk, a file size limit, a closed descriptor) are an
 * error.  Returns rc, or 1 (after saying why on stderr) when rc is 0 and
 * stdout failed.
 */
int cmd_close_stdout(int rc);

/*
 * Settings files (see config.h).  cmd_with_config runs a command with the
 * settings of `--config FILE` (or `--config=FILE`) anywhere in argv: they
 * become options placed before the command line's own, so what is typed wins;
 * then run(argc, argv) is called on the result and its exit code returned.
 * Without --config, run sees argv unchanged.  A bad file is reported (file
 * and line) and gives 2, an unreadable one 1, without calling run.
 */
int cmd_with_config(const char *cmd, const struct option *longopts,
		    int (*run)(int argc, char **argv), int argc, char **argv);

/*
 * The settings of cfg as options of cmd: "--key=value", or "--key" for a
 * flag (no_argument in longopts) whose value is yes (nothing when no).  Each
 * key must be an option in longopts other than config and the help options.  Writes at
 * most cap newly allocated strings to out (the caller frees them) and
 * returns their count, or -1 after printing why.
 */
int cmd_config_args(const char *cmd, const struct config *cfg, const struct option *longopts,
		    char **out, int cap);

/* How an attack recipe was asked for: attack's options, or the lab's
 * attack-* settings (unset: NULL, false). */
struct cmd_recipe_request {
	const char *prefix;  /* option names in messages: "--" prefix "seed" */
	const char *preset, *attack, *norm, *labels, *target;
	long steps, restarts, seed;
	double step_size, step_travel;
	bool steps_given, step_size_given, step_travel_given, restarts_given, seed_given;
	bool random_start, no_clip, early_stop;
};

/*
 * The recipe q asks for into r: the preset (else PGD, L-inf, 40 steps, eps
 * 0), then every option given; a one-step attack (fgsm, fgm) brings its own
 * norm, one step and no restarts unless told otherwise.  Options that would
 * change nothing (a seed without random starts, early stopping of a one-step
 * attack) are refused, and the whole is checked (attack_recipe_check for
 * classes).  eps stays the caller's to set.  Returns 0, or 2 after saying
 * why ("sectorlab <cmd>: ...", with the settings line of a bad name).
 */
int cmd_attack_recipe(const char *cmd, const struct cmd_recipe_request *q, int classes,
		      struct attack_recipe *r);

/* How spnorm caps were asked for on a command line (unset: NAN, 0, NULL). */
struct cmd_caps_request {
	double rho[NN_MAX_LAYERS]; /* --rho, by hand */
	int nrho;
	const char *caps;          /* --caps: "authors" */
	double nu, delta;          /* --nu, --delta */
	const char *objective;     /* --objective: product (default) or min */
};

/*
 * The caps spec of cfg (whose model and mode are set) from req, into
 * cfg->caps, and what it resolves to (caps_resolve) into plan: in spnorm
 * mode by default the Theorem 3 allocation at (nu, delta) (default the
 * paper's) with the objective (default product), certified; or --rho, or
 * the authors' hard-coded caps (neither certified).  Other modes take none
 * of these options.  Returns 0, or the exit code after saying why: in why
 * (why_cap bytes) when why is not NULL, else on stderr ("sectorlab <cmd>:
 * ..."): 2 for bad usage, which includes a spec that caps_preview refuses
 * ((nu, delta) without a sector or an allocation, --rho of the wrong
 * count), 1 when the preview itself fails.
 */
int cmd_spnorm_caps(const char *cmd, const struct arch *arch, const struct cmd_caps_request *req,
		    struct train_config *cfg, struct caps_plan *plan, char *why, size_t why_cap);

/*
 * Save a trainer's network at path (safetensors, atomically) with the
 * metadata every command reads back: format, model, mode, the caps (their
 * spec whole: source, nu, delta, objective; the values; certified or not;
 * how they were chosen), optimizer, seed, dataset, pixel scale, epochs done
 * and planned, test_accuracy.
 */
sl_status cmd_save_checkpoint(const struct trainer *t, enum data_kind kind, double test_acc,
			      const char *path, struct sl_error *err);

/* Print `"certified_accuracy":{"0.1":0.9123,...}` (radius: share) on stdout,
 * as certify and train both report it. */
void cmd_json_certified(const struct certify_accuracy *a);

/* The line that says what share of the images the rounding allowance left
 * without a radius (certify_rounding_lost), to f; nothing when none. */
void cmd_print_rounding_lost(FILE *f, double lost);

/* A trained network and the test set it belongs to. */
struct cmd_model {
	struct nn_net *net;
	struct checkpoint_info info;
	const char *model_name, *mode, *dataset; /* from the metadata; never NULL */
	struct sl_dataset test;
};

/*
 * Load the test split of a checkpoint's dataset (dataset_flag, else the
 * checkpoint's "dataset", else the model's usual one) from data_dir (see
 * cmd_data_dir), then the checkpoint at model_path (a PyTorch state_dict's
 * layers from arch, an --arch spec, or NULL; what the loader inferred is
 * said on stderr) as a network for batches of at most max_batch and never
 * more than the test split holds, and check that they fit each other.
 * Returns 0, or the exit code after printing why
 * (prefixed "sectorlab <cmd>: "): 2 for usage errors, 1 otherwise.  Free
 * with cmd_model_free in every case.
 */
int cmd_load_model(const char *cmd, const char *model_path, const char *arch, int max_batch,
		   const char *dataset_flag, const char *data_dir, struct cmd_model *out);
void cmd_model_free(struct cmd_model *m);

#endif
