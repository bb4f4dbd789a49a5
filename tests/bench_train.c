/*
 * bench_train: training and inference throughput of each model (batch 128),
 * the share of a step spent on spectral capping, the GFLOP/s achieved next
 * to a plain sgemm measured in the same run, and peak memory; beside each,
 * PyTorch's figures for the same model, batch, optimizer and thread count
 * (tests/bench_torch.py, when Debian's python3-torch is installed).  Run by
 * `make bench`; figures are printed, never asserted.
 *
 *   bench_train                      every model at 1 and 2 threads
 *   bench_train --one MODEL THREADS  one configuration, one result line
 *
 * Each configuration runs in its own process, so peak memory is its own.
 */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "sectorlab/data.h"
#include "sectorlab/train.h"
#include "testutil.h"

#define BATCH 128

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static long peak_rss_mb(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_maxrss / 1024;
}

/* Seconds per training step: the median of `runs` timings of `steps` steps. */
static double time_steps(struct trainer *t, int steps, int runs)
{
	struct train_step_info info;
	double s[9];
	for (int r = 0; r < runs; r++) {
		double t0 = now();
		for (int k = 0; k < steps; k++)
			if (trainer_step(t, &info, NULL) != SL_OK ||
			    (info.epoch_done && trainer_settle_caps(t, NULL) != SL_OK))
				return -1;
		s[r] = (now() - t0) / steps;
	}
	return tu_median(s, runs);
}

/* Seconds per step of forward, backward and optimizer on one fixed batch: a
 * step without assembling a batch from the training set. */
static double time_core(struct trainer *t, int steps, int runs)
{
	double s[9];
	for (int r = 0; r < runs; r++) {
		double t0 = now();
		for (int k = 0; k < steps; k++) {
			nn_forward(t->net, t->xb, BATCH);
			nn_backward(t->net, t->yb, true, false);
			optim_step(t->opt, t->net->params, t->net->grads);
		}
		s[r] = (now() - t0) / steps;
	}
	return tu_median(s, runs);
}

static double time_inference(struct trainer *t, int passes, int runs)
{
	double s[9];
	for (int r = 0; r < runs; r++) {
		double t0 = now();
		for (int k = 0; k < passes; k++)
			nn_forward(t->net, t->xb, BATCH);
		s[r] = (now() - t0) / passes;
	}
	return tu_median(s, runs);
}

static double sgemm_gflops(int m, int n, int k)
{
	float *a = calloc((size_t)m * k, sizeof(float)), *b = calloc((size_t)k * n, sizeof(float));
	float *c = calloc((size_t)m * n, sizeof(float));
	for (size_t i = 0; i < (size_t)m * k; i++)
		a[i] = (float)(i % 7) * 0.1f;
	for (size_t i = 0; i < (size_t)k * n; i++)
		b[i] = (float)(i % 5) * 0.1f;
	int reps = 0;
	double t0 = now(), el;
	do {
		cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, n, k, 1, a, k, b, n, 0, c,
			    n);
		reps++;
		el = now() - t0;
	} while (el < 0.5);
	free(a);
	free(b);
	free(c);
	return 2.0 * m * n * k * reps / el / 1e9;
}

/* Multiply-adds x 2 of one training step: forward, the weight gradient
 * (as many as forward) and the input gradient (the same, but not for the
 * first layer). */
static double step_flops(const struct nn_net *net, int batch, double *forward)
{
	double fwd = 0, bwd = 0;
	for (int i = 0; i < net->nlayers; i++) {
		const struct nn_layer *l = &net->layers[i];
		double f = 0;
		if (l->kind == NN_DENSE)
			f = 2.0 * batch * l->in * l->out;
		else if (l->kind == NN_CONV)
			f = 2.0 * batch * l->out * (double)l->wcols; /* Cout*Ho*Wo x Cin*k*k */
		fwd += f;
		bwd += i == 0 ? f : 2 * f;
	}
	*forward = fwd;
	return fwd + bwd;
}

/* Cap every weighted layer at 0.5, or remove the caps (a vanilla step). */
static void set_caps(struct trainer *t, bool on)
{
	for (int j = 0; j < t->nweighted; j++)
		nn_set_cap(t->net, t->weighted[j], on ? 0.5f : 0);
}

/* One configuration: print "result key=value ..." on stdout. */
static int run_one(const char *model_name, int threads)
{
	enum model_id id;
	struct sl_error err;
	if (model_parse(model_name, &id, &err) != SL_OK) {
		fprintf(stderr, "bench_train: %s\n", err.msg);
		return 1;
	}
	nn_set_threads(threads);
	int c, h, w;
	model_input_shape(id, &c, &h, &w);
	/* As many images as the real training set, so the end-of-epoch work
	 * (settling the caps) weighs on a step as it does in real training. */
	struct sl_dataset data;
	tu_synthetic_dataset(&data, c == 1 ? 55000 : 50000, c, h, w);
	/* mlp: each run is one whole epoch, so the end-of-epoch work is paid as in
	 * training; the AlexNets: a few steps per run (an epoch takes minutes). */
	bool big = id != MODEL_MLP;
	int steps = big ? (id == MODEL_ALEXNET ? 3 : 10) : 430, runs = big ? 3 : 9;

	/* One trainer, every weighted layer capped well below its norm (so each
	 * step pays for the power iteration and the gradient through sigma),
	 * timed with its caps on and off in alternation: the two figures share
	 * memory, data and warm-up, and their difference is the capping. */
	struct arch arch;
	model_get(id, &arch);
	struct train_config cfg = train_config_for(&arch);
	cfg.holdout = 0;
	cfg.batch = BATCH;
	cfg.mode = TRAIN_SPNORM;
	double rho[NN_MAX_LAYERS];
	for (int i = 0; i < NN_MAX_LAYERS; i++)
		rho[i] = 0.5;
	cfg.caps = caps_spec_manual(rho, model_weighted_count(id));
	struct trainer *t;
	if (trainer_new(&cfg, &data, NULL, &t, &err) != SL_OK)
		goto fail;
	time_steps(t, big ? 2 : 30, 1); /* warm up */
	double plain[9], capped[9];
	for (int r = 0; r < runs; r++) {
		set_caps(t, false);
		plain[r] = time_steps(t, steps, 1);
		set_caps(t, true);
		capped[r] = time_steps(t, steps, 1);
	}
	double tv = tu_median(plain, runs), ts = tu_median(capped, runs);
	set_caps(t, false);
	double core = time_core(t, big ? steps : 200, runs);
	double infer = time_inference(t, big ? 3 : 200, runs);
	double fwd, flops = step_flops(t->net, BATCH, &fwd);
	long rss = peak_rss_mb();
	trainer_free(t);
	data_free(&data);

	openblas_set_num_threads(1);
	double peak = sgemm_gflops(1024, 1024, 1024);
	printf("result train=%.1f core=%.1f spnorm=%.1f infer=%.1f step_ms=%.3f cap_share=%.4f "
	       "gflops=%.2f fwd_gflops=%.2f sgemm=%.2f rss_mb=%ld\n",
	       BATCH / tv, BATCH / core, BATCH / ts, BATCH / infer, tv * 1e3, (ts - tv) / ts,
	       flops / core / 1e9, fwd / infer / 1e9, peak, rss);
	return 0;
fail:
	fprintf(stderr, "bench_train: %s\n", err.msg);
	return 1;
}

struct figures {
	bool ok;
	double train, core, spnorm, infer, step_ms, cap_share, gflops, fwd_gflops, sgemm;
	long rss;
};

/* Run a command and parse its "result ..." line. */
static struct figures collect(const char *cmd)
{
	struct figures f = {0};
	FILE *p = popen(cmd, "r");
	if (!p)
		return f;
	char line[512];
	while (fgets(line, sizeof line, p)) {
		if (strncmp(line, "result ", 7) != 0)
			continue;
		for (char *tok = strtok(line + 7, " \n"); tok; tok = strtok(NULL, " \n")) {
			char *eq = strchr(tok, '=');
			if (!eq)
				continue;
			*eq = '\0';
			double v = atof(eq + 1);
			if (!strcmp(tok, "train")) f.train = v;
			else if (!strcmp(tok, "core")) f.core = v;
			else if (!strcmp(tok, "spnorm")) f.spnorm = v;
			else if (!strcmp(tok, "infer")) f.infer = v;
			else if (!strcmp(tok, "step_ms")) f.step_ms = v;
			else if (!strcmp(tok, "cap_share")) f.cap_share = v;
			else if (!strcmp(tok, "gflops")) f.gflops = v;
			else if (!strcmp(tok, "fwd_gflops")) f.fwd_gflops = v;
			else if (!strcmp(tok, "sgemm")) f.sgemm = v;
			else if (!strcmp(tok, "rss_mb")) f.rss = (long)v;
		}
		f.ok = f.train > 0;
	}
	pclose(p);
	return f;
}

static bool have_torch(void)
{
	return access("/usr/bin/python3", X_OK) == 0 && access("tests/bench_torch.py", R_OK) == 0 &&
	       system("/usr/bin/python3 -c 'import torch' >/dev/null 2>&1") == 0;
}

int main(int argc, char **argv)
{
	if (argc == 4 && strcmp(argv[1], "--one") == 0)
		return run_one(argv[2], atoi(argv[3]));
	char self[1024];
	ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
	if (n <= 0) {
		fprintf(stderr, "bench_train: cannot find my own executable\n");
		return 1;
	}
	self[n] = '\0';
	bool torch = have_torch();
	static const char *const models[] = {"mlp", "alexnet-lite", "alexnet"};
	printf("bench_train: batch %d, OpenBLAS %s (%s); sectorlab's threads split each batch,\n"
	       "OpenBLAS runs single-threaded.  PyTorch: %s.\n",
	       BATCH, openblas_get_config(), openblas_get_corename(),
	       torch ? "tests/bench_torch.py, the same model, batch, optimizer and threads "
		       "(torch.set_num_threads; its OpenBLAS single-threaded, OMP_WAIT_POLICY=PASSIVE)"
		     : "python3-torch not installed, not measured");
	printf("\n%-12s %3s | %21s | %21s | %21s | %7s %7s %6s | %6s %6s\n", "", "",
	       "train img/s", "core img/s", "inference img/s", "cap", "", "", "RSS MB", "");
	printf("%-12s %3s | %8s %7s %5s | %8s %7s %5s | %8s %7s %5s | %7s %7s %6s | %6s %6s\n",
	       "model", "thr", "ours", "torch", "x", "ours", "torch", "x", "ours", "torch", "x",
	       "ovh", "GFLOP/s", "sgemm", "ours", "torch");
	for (size_t m = 0; m < sizeof models / sizeof models[0]; m++) {
		for (int threads = 1; threads <= 2; threads++) {
			char cmd[2048];
			snprintf(cmd, sizeof cmd, "'%s' --one %s %d", self, models[m], threads);
			struct figures s = collect(cmd);
			struct figures p = {0};
			if (torch) {
				snprintf(cmd, sizeof cmd,
					 "OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=%d OMP_WAIT_POLICY=PASSIVE "
					 "/usr/bin/python3 tests/bench_torch.py %s %d",
					 threads, models[m], threads);
				p = collect(cmd);
			}
			if (!s.ok) {
				printf("%-12s %3d   (failed)\n", models[m], threads);
				continue;
			}
			printf("%-12s %3d |", models[m], threads);
			double ours[3] = {s.train, s.core, s.infer}, theirs[3] = {p.train, p.core, p.infer};
			for (int k = 0; k < 3; k++) {
				if (theirs[k] > 0)
					printf(" %8.0f %7.0f %4.2fx |", ours[k], theirs[k], ours[k] / theirs[k]);
				else
					printf(" %8.0f %7s %5s |", ours[k], "-", "-");
			}
			printf(" %6.1f%% %7.1f %6.1f | %6ld ", 100 * s.cap_share, s.gflops, s.sgemm, s.rss);
			if (p.ok)
				printf("%6ld\n", p.rss);
			else
				printf("%6s\n", "-");
			fflush(stdout);
		}
	}
	printf("\ntrain: training steps per second x 128 (vanilla; Adam for mlp, SGD with\n"
	       "momentum for the AlexNets), each step assembling its batch from a shuffled\n"
	       "training set of bytes (x/255 - 0.5), then forward, backward, optimizer.  core:\n"
	       "the same on one fixed batch (no batch assembly).  cap ovh: extra time of a\n"
	       "spnorm training step with every weighted layer capped (one power-iteration step\n"
	       "each, gradient through sigma; for mlp whole epochs, so settling the caps at each\n"
	       "epoch's end is included), as a share of that step.  GFLOP/s: a core step's\n"
	       "multiply-adds x 2 (as im2col + sgemm would do them) per second; sgemm: a 1024^3\n"
	       "single-threaded sgemm in the same run.  RSS: peak\n"
	       "resident memory of the process (model, buffers, optimizer and a training set\n"
	       "of random images the size of MNIST's or CIFAR-10's).\n");
	return 0;
}
