/* cmd_train: `sectorlab train`, headless training with a report. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sectorlab/attack.h"
#include "sectorlab/checkpoint.h"
#include "sectorlab/cmd.h"
#include "sectorlab/data.h"
#include "sectorlab/io.h"
#include "sectorlab/spectral.h"
#include "sectorlab/train.h"

static void usage(FILE *f)
{
	fputs("usage: sectorlab train [options]\n"
	      "\n"
	      "Train the paper's MNIST network headless: one progress line per epoch on\n"
	      "stderr, then the final test accuracy and an FGSM check.\n"
	      "\n"
	      "  --dataset NAME   mnist (default) or fashion\n"
	      "  --data-dir DIR   where the data is (default: $SECTORLAB_DATA, else data/,\n"
	      "                   which holds an embedded 10,000-image MNIST sample)\n"
	      "  --model NAME     mlp (784-50-20-10, leaky ReLU 0.1; default)\n"
	      "  --mode MODE      vanilla (default) or spnorm (spectral caps)\n"
	      "  --rho A,B,C      spnorm caps, one per layer (default: the authors'\n"
	      "                   1.8,1.8,0.9204, which no theorem certifies)\n"
	      "  --epochs N       epochs (default 10)\n"
	      "  --batch N        batch size (default 128)\n"
	      "  --lr X           Adam learning rate (default 0.001)\n"
	      "  --seed S         random seed (default 1)\n"
	      "  --holdout N      hold out the first N training images (default 5000 when\n"
	      "                   the training set has more than 50,000 images, else 0)\n"
	      "  --eps X          FGSM strength of the final check (default 0.1; 0 skips)\n"
	      "  --out FILE       save the trained network (safetensors)\n"
	      "  --log FILE       per-epoch metrics as CSV\n"
	      "  --json           print one JSON object with the results on stdout\n"
	      "  -h, --help       this help\n",
	      f);
}

struct train_opts {
	const char *dataset, *data_dir, *model, *mode, *out, *log;
	double rho[NN_MAX_LAYERS];
	int nrho;
	long epochs, batch, seed, holdout;
	double lr, eps;
	int json;
};

static int parse(int argc, char **argv, struct train_opts *o)
{
	enum { O_DATASET = 256, O_DATADIR, O_MODEL, O_MODE, O_RHO, O_EPOCHS, O_BATCH, O_LR,
	       O_SEED, O_HOLDOUT, O_EPS, O_OUT, O_LOG, O_JSON };
	static const struct option longopts[] = {
		{"dataset", required_argument, 0, O_DATASET},
		{"data-dir", required_argument, 0, O_DATADIR},
		{"model", required_argument, 0, O_MODEL},
		{"mode", required_argument, 0, O_MODE},
		{"rho", required_argument, 0, O_RHO},
		{"epochs", required_argument, 0, O_EPOCHS},
		{"batch", required_argument, 0, O_BATCH},
		{"lr", required_argument, 0, O_LR},
		{"seed", required_argument, 0, O_SEED},
		{"holdout", required_argument, 0, O_HOLDOUT},
		{"eps", required_argument, 0, O_EPS},
		{"out", required_argument, 0, O_OUT},
		{"log", required_argument, 0, O_LOG},
		{"json", no_argument, 0, O_JSON},
		{"help", no_argument, 0, 'h'},
		{0, 0, 0, 0},
	};
	int c, bad = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case O_DATASET: o->dataset = optarg; break;
		case O_DATADIR: o->data_dir = optarg; break;
		case O_MODEL: o->model = optarg; break;
		case O_MODE: o->mode = optarg; break;
		case O_RHO:
			o->nrho = cmd_parse_doubles("--rho", optarg, o->rho, NN_MAX_LAYERS);
			bad |= o->nrho < 0;
			break;
		case O_EPOCHS: bad |= cmd_parse_long("--epochs", optarg, 0, 100000, &o->epochs); break;
		case O_BATCH: bad |= cmd_parse_long("--batch", optarg, 1, 65536, &o->batch); break;
		case O_LR: bad |= cmd_parse_double("--lr", optarg, &o->lr); break;
		case O_SEED: bad |= cmd_parse_long("--seed", optarg, 0, 0x7fffffffL, &o->seed); break;
		case O_HOLDOUT:
			bad |= cmd_parse_long("--holdout", optarg, 0, 100000000L, &o->holdout);
			break;
		case O_EPS: bad |= cmd_parse_double("--eps", optarg, &o->eps); break;
		case O_OUT: o->out = optarg; break;
		case O_LOG: o->log = optarg; break;
		case O_JSON: o->json = 1; break;
		case 'h': usage(stdout); return 1;
		default: bad = 1; break;
		}
	}
	if (!bad && optind < argc) {
		fprintf(stderr, "sectorlab train: unexpected argument '%s'\n", argv[optind]);
		bad = 1;
	}
	if (!bad && o->eps < 0) {
		fprintf(stderr, "sectorlab train: --eps must be >= 0, got %g\n", o->eps);
		bad = 1;
	}
	if (bad) {
		fputs("Try 'sectorlab train --help'.\n", stderr);
		return 2;
	}
	return 0;
}

/* The per-epoch log, kept in memory and rewritten atomically after each epoch
 * so an interrupted run leaves a complete file. */
struct csv_log {
	char *text;
	size_t len;
	FILE *mem;
};

static int fail(const struct sl_error *err)
{
	fprintf(stderr, "sectorlab train: %s\n", err->msg);
	return 1;
}

static void layer_norms(const struct nn_net *net, double *exact)
{
	for (int i = 0; i < net->nlayers; i++) {
		const struct nn_layer *l = &net->layers[i];
		if (spectral_norm_exact(nn_layer_weight(l), l->out, l->in, &exact[i], NULL) != SL_OK)
			exact[i] = -1;
	}
}

int cmd_train(int argc, char **argv)
{
	struct train_opts o = {.dataset = "mnist", .model = "mlp", .mode = "vanilla",
			       .epochs = 10, .batch = 128, .seed = 1, .holdout = -1,
			       .lr = 1e-3, .eps = 0.1};
	int rc = parse(argc, argv, &o);
	if (rc)
		return rc == 1 ? 0 : rc;

	struct sl_error err;
	status_clear(&err);
	struct train_config cfg = train_config_default();
	enum data_kind kind;
	if (data_kind_parse(o.dataset, &kind, &err) != SL_OK ||
	    model_parse(o.model, &cfg.model, &err) != SL_OK ||
	    train_mode_parse(o.mode, &cfg.mode, &err) != SL_OK) {
		fprintf(stderr, "sectorlab train: %s\n", err.msg);
		return 2;
	}
	if (kind == DATA_CIFAR10) {
		fprintf(stderr, "sectorlab train: the mlp model takes 28x28 grey images; "
				"CIFAR-10 needs the convolutional models (not yet available)\n");
		return 2;
	}
	cfg.epochs = (int)o.epochs;
	cfg.batch = (int)o.batch;
	cfg.lr = o.lr;
	cfg.seed = (uint64_t)o.seed;
	if (cfg.mode == TRAIN_SPNORM) {
		if (o.nrho > 0) {
			cfg.nrho = o.nrho;
			memcpy(cfg.rho, o.rho, sizeof(double) * (size_t)o.nrho);
		} else {
			cfg.nrho = model_authors_caps(cfg.model, cfg.rho);
		}
		cfg.rho_certified = false;
	} else if (o.nrho > 0) {
		fprintf(stderr, "sectorlab train: --rho needs --mode spnorm\n");
		return 2;
	}

	const char *dir = cmd_data_dir(o.data_dir);
	struct sl_dataset train = {0}, test = {0};
	struct trainer *t = NULL;
	struct csv_log log = {0};
	rc = 1;
	if (data_load(kind, dir, true, &train, &err) != SL_OK ||
	    data_load(kind, dir, false, &test, &err) != SL_OK) {
		rc = fail(&err);
		goto out;
	}
	cfg.holdout = o.holdout >= 0 ? (uint32_t)o.holdout : (train.n > 50000 ? 5000u : 0u);
	if (trainer_new(&cfg, &train, &test, &t, &err) != SL_OK) {
		rc = fail(&err);
		goto out;
	}
	fprintf(stderr, "training %s (%s) on %u images from %s, testing on %u; seed %lu\n",
		model_name(cfg.model), train_mode_name(cfg.mode), t->train.n, train.source,
		test.n, (unsigned long)cfg.seed);
	if (cfg.mode == TRAIN_SPNORM) {
		fprintf(stderr, "caps:");
		for (int i = 0; i < cfg.nrho; i++)
			fprintf(stderr, " %g", cfg.rho[i]);
		fprintf(stderr, " (%s)\n", o.nrho > 0 ? "given with --rho, not certified"
						      : "the authors' caps, not certified");
	}
	int nl = t->net->nlayers;
	if (o.log) {
		log.mem = open_memstream(&log.text, &log.len);
		if (!log.mem) {
			fprintf(stderr, "sectorlab train: out of memory\n");
			goto out;
		}
		fprintf(log.mem, "epoch,step,seconds,train_loss,train_accuracy,val_accuracy,"
				 "test_accuracy,test_loss");
		for (int i = 0; i < nl; i++)
			fprintf(log.mem, ",sigma%d,rho%d", i + 1, i + 1);
		fputc('\n', log.mem);
	}

	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	double exact[NN_MAX_LAYERS];
	double test_acc = 0, test_loss = 0;
	while (t->epoch < cfg.epochs) {
		struct train_step_info info;
		if (trainer_step(t, &info, &err) != SL_OK) {
			rc = fail(&err);
			goto out;
		}
		if (!info.epoch_done)
			continue;
		double train_loss = t->last_epoch_loss, train_acc = t->last_epoch_accuracy;
		double val_acc = -1;
		clock_gettime(CLOCK_MONOTONIC, &t1);
		double secs = (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) * 1e-9;
		double vloss;
		if (t->val.n && trainer_evaluate(t, &t->val, 0, &val_acc, &vloss, &err) != SL_OK) {
			rc = fail(&err);
			goto out;
		}
		if (trainer_evaluate(t, &test, 0, &test_acc, &test_loss, &err) != SL_OK) {
			rc = fail(&err);
			goto out;
		}
		layer_norms(t->net, exact);
		fprintf(stderr, "epoch %d/%d  loss %.4f  train %.2f%%", t->epoch, cfg.epochs,
			train_loss, 100 * train_acc);
		if (val_acc >= 0)
			fprintf(stderr, "  val %.2f%%", 100 * val_acc);
		fprintf(stderr, "  test %.2f%%  sigma", 100 * test_acc);
		for (int i = 0; i < nl; i++) {
			const struct nn_layer *l = &t->net->layers[i];
			if (l->rho > 0)
				fprintf(stderr, " %.3f/%.3f%s", exact[i], l->rho,
					exact[i] <= l->rho * 1.01 ? "" : "!");
			else
				fprintf(stderr, " %.3f", exact[i]);
		}
		fprintf(stderr, "  %.1fs\n", secs);
		if (log.mem) {
			fprintf(log.mem, "%d,%ld,%.3f,%.6f,%.6f,", t->epoch, t->step, secs,
				train_loss, train_acc);
			if (val_acc >= 0)
				fprintf(log.mem, "%.6f", val_acc);
			fprintf(log.mem, ",%.6f,%.6f", test_acc, test_loss);
			for (int i = 0; i < nl; i++)
				fprintf(log.mem, ",%.6f,%g", exact[i], t->net->layers[i].rho);
			fputc('\n', log.mem);
			fflush(log.mem);
			if (io_write_file(o.log, log.text, log.len, &err) != SL_OK) {
				rc = fail(&err);
				goto out;
			}
		}
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	double seconds = (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) * 1e-9;

	/* The exported network: power iterations run to convergence first. */
	int settle = trainer_settle_caps(t, 200);
	if (trainer_evaluate(t, &test, 0, &test_acc, &test_loss, &err) != SL_OK) {
		rc = fail(&err);
		goto out;
	}
	layer_norms(t->net, exact);
	struct attack_result ar = {0};
	if (o.eps > 0 && attack_eval_fgsm(t->net, &test, 0, (float)o.eps, &ar, &err) != SL_OK) {
		rc = fail(&err);
		goto out;
	}
	fprintf(stderr, "test accuracy %.2f%% (%u images) after %d epochs in %.1fs\n",
		100 * test_acc, test.n, t->epoch, seconds);
	if (o.eps > 0)
		fprintf(stderr,
			"FGSM (L-inf, eps %g, true labels, clipped to the pixel box): robust "
			"accuracy %.2f%%, attack success %.2f%% of %d correctly classified\n",
			o.eps, 100 * ar.robust_accuracy, 100 * ar.attack_success_rate,
			ar.clean_correct);

	if (o.out) {
		char rho_text[256] = "", seed_text[32], epochs_text[32], acc_text[32];
		for (int i = 0, off = 0; i < nl && cfg.mode == TRAIN_SPNORM; i++)
			off += snprintf(rho_text + off, sizeof rho_text - (size_t)off, "%s%g",
					i ? "," : "", cfg.rho[i]);
		snprintf(seed_text, sizeof seed_text, "%lu", (unsigned long)cfg.seed);
		snprintf(epochs_text, sizeof epochs_text, "%d", t->epoch);
		snprintf(acc_text, sizeof acc_text, "%.6f", test_acc);
		struct checkpoint_meta meta[] = {
			{"format", "sectorlab-1"},
			{"model", model_name(cfg.model)},
			{"mode", train_mode_name(cfg.mode)},
			{"rho", rho_text},
			{"rho_certified", cfg.rho_certified ? "true" : "false"},
			{"seed", seed_text},
			{"dataset", data_kind_name(kind)},
			{"epochs", epochs_text},
			{"test_accuracy", acc_text},
		};
		if (checkpoint_save(t->net, meta, (int)(sizeof meta / sizeof meta[0]), o.out,
				    &err) != SL_OK) {
			rc = fail(&err);
			goto out;
		}
		fprintf(stderr, "saved %s\n", o.out);
	}
	if (o.json) {
		printf("{\"test_accuracy\":%.6f,\"test_loss\":%.6f,\"epochs\":%d,\"seconds\":%.3f,"
		       "\"mode\":\"%s\",\"model\":\"%s\",\"dataset\":\"%s\",\"seed\":%lu,"
		       "\"train_images\":%u,\"test_images\":%u,\"steps\":%ld,"
		       "\"power_iterations_to_settle\":%d,\"rho_certified\":%s,\"layers\":[",
		       test_acc, test_loss, t->epoch, seconds, train_mode_name(cfg.mode),
		       model_name(cfg.model), data_kind_name(kind), (unsigned long)cfg.seed,
		       t->train.n, test.n, t->step, settle, cfg.rho_certified ? "true" : "false");
		for (int i = 0; i < nl; i++) {
			const struct nn_layer *l = &t->net->layers[i];
			printf("%s{\"in\":%d,\"out\":%d,\"sigma_exact\":%.6f,\"sigma_hat\":%.6f,", i ? "," : "",
			       l->in, l->out, exact[i], l->sigma_hat * l->scale);
			if (l->rho > 0)
				printf("\"rho\":%.6f}", l->rho);
			else
				printf("\"rho\":null}");
		}
		printf("]");
		if (o.eps > 0)
			printf(",\"fgsm\":{\"norm\":\"inf\",\"eps\":%g,\"labels\":\"true\",\"clip\":true,"
			       "\"n\":%d,\"clean_accuracy\":%.6f,\"robust_accuracy\":%.6f,"
			       "\"attack_success_rate\":%.6f,\"zero_gradients\":%d}",
			       o.eps, ar.n, ar.clean_accuracy, ar.robust_accuracy,
			       ar.attack_success_rate, ar.zero_grad);
		printf("}\n");
	}
	rc = 0;
out:
	if (log.mem)
		fclose(log.mem);
	free(log.text);
	trainer_free(t);
	data_free(&train);
	data_free(&test);
	return rc;
}
