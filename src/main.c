/* main: the sectorlab command line; dispatches to the subcommands. */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "sectorlab/blascore.h"
#include "sectorlab/cmd.h"

#define SECTORLAB_VERSION "0.1.0"

static void usage(FILE *f)
{
	fputs("usage: sectorlab [lab options]          open the lab (ncurses)\n"
	      "       sectorlab COMMAND [options]\n"
	      "\n"
	      "sectorlab trains neural networks whose robustness is certified by\n"
	      "incremental dissipativity, attacks them, and shows it all live.\n"
	      "\n"
	      "commands:\n"
	      "  train      train a network headless and report accuracy and FGSM robustness\n"
	      "  allocate   split network sector indices (nu, delta) into per-layer caps\n"
	      "  attack     FGSM, FGM and PGD sweeps over eps against a trained network\n"
	      "  certify    the robustness certificate of a trained network\n"
	      "  reproduce  the paper's Figures 1 and 2 from this program's own runs\n"
	      "  lab        open the lab (the same as no command)\n"
	      "\n"
	      "'sectorlab COMMAND --help' describes a command; 'sectorlab --help-lab' the\n"
	      "lab's options.  Data comes from --data-dir DIR, else $SECTORLAB_DATA, else\n"
	      "data/ (an embedded MNIST sample).  Options are written in full (no\n"
	      "abbreviations).  Exit status: 0 done, 1 a failure, 2 bad usage.\n",
	      f);
}

static int run(int argc, char **argv)
{
	if (argc < 2 || argv[1][0] == '-') {
		if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
			usage(stdout);
			return 0;
		}
		if (argc >= 2 && strcmp(argv[1], "--version") == 0) {
			printf("sectorlab %s (OpenBLAS %s kernels)\n", SECTORLAB_VERSION,
			       blascore_name());
			return 0;
		}
		return cmd_lab(argc, argv);
	}
	const char *cmd = argv[1];
	if (strcmp(cmd, "train") == 0)
		return cmd_train(argc - 1, argv + 1);
	if (strcmp(cmd, "allocate") == 0)
		return cmd_allocate(argc - 1, argv + 1);
	if (strcmp(cmd, "attack") == 0)
		return cmd_attack(argc - 1, argv + 1);
	if (strcmp(cmd, "certify") == 0)
		return cmd_certify(argc - 1, argv + 1);
	if (strcmp(cmd, "reproduce") == 0)
		return cmd_reproduce(argc - 1, argv + 1);
	if (strcmp(cmd, "lab") == 0)
		return cmd_lab(argc - 1, argv + 1);
	if (strcmp(cmd, "help") == 0) {
		usage(stdout);
		return 0;
	}
	fprintf(stderr, "sectorlab: unknown command '%s'\n", cmd);
	usage(stderr);
	return 2;
}

int main(int argc, char **argv)
{
	/* First: this may execute the program again (blascore.h). */
	blascore_choose(argv);
	/* A write past the file size limit (ulimit -f) then fails with EFBIG,
	 * as a write to a full disk fails, and takes the same way out: a clear
	 * error, the temporary file removed, the earlier file kept.  By default
	 * the signal would kill the program with no message. */
	signal(SIGXFSZ, SIG_IGN);
	return cmd_close_stdout(run(argc, argv));
}
