/* Tests for the command line: help, bad usage, bad data, and a real run. */
#include <dirent.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sectorlab/checkpoint.h"
#include "testutil.h"

static int run(const char *args, char *out, size_t cap)
{
	return tu_run(args, true, out, cap);
}

static char out[1 << 16];

static void test_help(void **state)
{
	(void)state;
	assert_int_equal(run("--help", out, sizeof out), 0);
	assert_non_null(strstr(out, "train"));
	assert_non_null(strstr(out, "allocate"));
	assert_int_equal(run("train --help", out, sizeof out), 0);
	assert_non_null(strstr(out, "--mode"));
	assert_int_equal(run("--help-lab", out, sizeof out), 0);
	assert_non_null(strstr(out, "--pace"));
	assert_int_equal(run("lab --help", out, sizeof out), 0);
	assert_non_null(strstr(out, "--pace"));
}

static void test_bad_usage(void **state)
{
	(void)state;
	static const struct {
		const char *args, *says;
	} cases[] = {
		{"bogus", "unknown command 'bogus'"},
		{"train --epochs ten", "--epochs expects a whole number"},
		{"train --epochs -1", "--epochs must be between"},
		{"train --mode fast", "unknown mode 'fast'"},
		{"train --dataset imagenet", "imagenet"},
		{"train --model resnet", "unknown model 'resnet'"},
		{"train --rho 1,x", "--rho expects a number"},
		{"train --rho 1,2,3", "need --mode spnorm"},
		{"train --eps -0.1", "--eps must be in [0, 1], got -0.1"},
		{"train --lr 0", "--lr must be in (0, 100], got 0"},
		{"train extra", "unexpected argument"},
		{"--pace fast", "--pace expects a whole number"},
		{"--caps mine", "sectorlab lab: --caps takes 'authors'"},
		{"--mode vanilla --nu -2", "need --mode spnorm"},
		{"--lanes vanilla,l2 --nu -3", "--lanes vanilla,l2 has neither"},
		{"--lanes authors --objective min", "--lanes authors has neither"},
		{"--radius 0", "--radius must be in (0, 100], got 0"},
		{"--radius x", "--radius expects a number"},
		{"--nu 1 --delta 4", "the indices (1, 4) describe an empty sector"},
		{"train --model alexnet --dataset mnist", "alexnet takes 3x32x32 inputs"},
		{"train --model mlp --dataset cifar10", "mlp takes 1x28x28 inputs"},
		{"train --arch 784-50-10 --dataset cifar10", "takes 784x1x1 inputs"},
		{"train --model mlp --arch 784-10", "give --model or --arch, not both"},
		{"train --arch 784-0-10", "sizes must be 1 to"},
		{"allocate --arch 'dense 10, gelu'", "Theorem 4 needs p >= 0"},
		{"allocate --arch 'dense 10, leaky:-0.5'", "sector [-0.5, 1]"},
		{"allocate --arch 'dense 10, swish'", "sector [-0.1, 1.1]"},
		{"allocate --arch 'maxpool 2x2, relu, dense 10'", "must follow the dense or conv"},
		{"allocate --arch resnet", "or a model: mlp"},
		{"--dataset mnist --arch 'input 3x32x32, dense 10'", "takes 3x32x32 inputs"},
		{"train --optimizer rmsprop", "unknown optimizer 'rmsprop'"},
		{"train --schedule cosine", "unknown schedule 'cosine'"},
		{"train --l2 0.01", "--l2 needs --mode l2"},
		{"train --mode l2 --l2 x", "--l2 expects a number"},
		{"train --threads 0", "--threads must be between"},
		{"train --arch 784-30-10 --mode spnorm --caps authors", "hard-codes no caps"},
		{"train --mode spnorm --caps authors --rho 1,2,3", "one way"},
		{"train --mode spnorm --nu 1 --delta 4", "describe an empty sector"},
		{"train --loss mse", "unknown loss 'mse' (known: ce, lmt, hinge)"},
		{"train --loss lmt --tau 0", "--tau"},
		{"train --tau x", "--tau expects a number"},
		{"train --loss hinge --target-radius -1", "--target-radius"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		int rc = run(cases[i].args, out, sizeof out);
		if (!strstr(out, cases[i].says) || rc != 2)
			fail_msg("'%s' exited %d with:\n%s", cases[i].args, rc, out);
	}
}

/* Every command answers bad usage with status 2 and a message that says
 * what is allowed: numbers out of their range (said at parse time), options
 * that do not apply to the rest of the command line, abbreviated options,
 * and the same option gets the same status in every command. */
static void test_bad_usage_status_and_reason(void **state)
{
	(void)state;
	static const struct {
		const char *args, *says;
	} cases[] = {
		/* ranges, stated */
		{"train --eps 1e300", "--eps must be in [0, 1], got 1e300"},
		{"train --holdout 9000", "holdout 9000 leaves no training images"},
		{"train --mode spnorm --rho 1e308,1,1", "--rho must be in (0, 1e+06], got 1e308"},
		{"train --mode spnorm --rho 1e-400,1,1", "--rho must be in (0, 1e+06]"},
		{"train --optimizer sgd --momentum 1", "--momentum must be in [0, 1), got 1"},
		{"train --schedule exp --lr-gamma 0", "--lr-gamma must be in (0, 1], got 0"},
		{"train --mode l2 --l2 -1", "--l2 must be in [0, 100], got -1"},
		{"train --epochs 99999999999999999999", "--epochs must be between 0 and 100000"},
		{"allocate --nu nan", "--nu expects a number in [-1e+06, 1e+06], got 'nan'"},
		{"allocate --delta inf", "--delta must be in (0, 1e+06], got inf"},
		{"--eps 2", "--eps must be in [0, 1], got 2"},
		/* the same bad value, the same status, in every command */
		{"allocate --delta -1", "--delta must be in (0, 1e+06], got -1"},
		{"train --mode spnorm --delta -1", "--delta must be in (0, 1e+06], got -1"},
		{"--delta -1", "--delta must be in (0, 1e+06], got -1"},
		{"certify --model x --delta -1", "--delta must be in (0, 1e+06], got -1"},
		{"allocate --nu 1 --delta 4", "describe an empty sector"},
		{"train --mode spnorm --nu -0.1", "no certified caps for (nu, delta) = (-0.1, 0.4)"},
		{"train --mode spnorm --rho 1,2", "needs 3 caps"},
		/* options that do not apply are refused, not replaced or ignored */
		{"train --momentum 0.5", "--momentum is a setting of --optimizer sgd"},
		{"train --optimizer adam --momentum 0.5", "--momentum is a setting of --optimizer sgd"},
		{"train --lr-gamma 0.5", "--lr-gamma is a setting of --schedule step or exp"},
		{"train --lr-step 2 --schedule exp", "--lr-step is a setting of --schedule step"},
		{"train --target-radius 0.5", "--target-radius is a setting of --loss lmt or hinge"},
		{"train --mode spnorm --rho 1,1,1 --objective min", "--objective applies to caps"},
		{"--caps authors --objective min", "--objective applies to caps"},
		/* full option names only */
		{"allocate --n 500", "unknown option '--n' (options are written in full, as --nu)"},
		{"allocate --nu=-3 --del=0.5", "unknown option '--del'"},
		{"train --epo 1", "unknown option '--epo' (options are written in full, as --epochs)"},
		{"train --epochs 1 --mom 0.9", "unknown option '--mom'"},
		{"certify --mod x", "unknown option '--mod'"},
		{"attack --mod x", "unknown option '--mod'"},
		{"reproduce --fig 1", "unknown option '--fig' (options are written in full, as --figure)"},
		{"--epoch 3", "unknown option '--epoch'"},
		/* settings files: the reason */
		{"train --config /", "/ is a directory, not a settings file"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		int rc = run(cases[i].args, out, sizeof out);
		if (!strstr(out, cases[i].says) || rc != 2)
			fail_msg("'%s' exited %d with:\n%s", cases[i].args, rc, out);
	}
	/* Extreme values that are allowed print with their meaning kept. */
	assert_int_equal(run("train --mode spnorm --rho 1e-6,1e-6,1e-6 --epochs 1", out, sizeof out),
			 0);
	if (!strstr(out, "sigma 1e-06/1e-06"))
		fail_msg("a cap of 1e-06 is not shown as such:\n%s", out);
	assert_int_equal(run("allocate --nu -1e6 --delta 1e-6", out, sizeof out), 0);
	if (!strstr(out, "-999359.040593") || !strstr(out, "gamma = 1618033.988750"))
		fail_msg("allocate's table at extreme indices:\n%s", out);
	/* --help says so. */
	static const char *const helps[] = {"train --help", "attack --help", "certify --help",
					    "allocate --help", "--help-lab", "reproduce --help"};
	for (size_t i = 0; i < sizeof helps / sizeof helps[0]; i++) {
		assert_int_equal(run(helps[i], out, sizeof out), 0);
		if (!strstr(out, "Options are written in full") || !strstr(out, "bad usage"))
			fail_msg("'%s' does not say how options are written:\n%s", helps[i], out);
	}
}

static void test_spnorm_wrong_cap_count(void **state)
{
	(void)state;
	/* Bad usage, found before any data is read. */
	int rc = run("train --mode spnorm --rho 1,2 --epochs 1", out, sizeof out);
	assert_int_equal(rc, 2);
	assert_non_null(strstr(out, "3 caps"));
}

static void test_missing_and_bad_data(void **state)
{
	(void)state;
	char *dir = tu_tmpdir();
	char args[1024];
	snprintf(args, sizeof args, "train --data-dir %s/none", dir);
	assert_int_equal(run(args, out, sizeof out), 1);
	assert_non_null(strstr(out, "train-images-idx3-ubyte"));

	/* A truncated image file: the message names it. */
	unsigned char hdr[16] = {0, 0, 8, 3, 0, 0, 0, 5, 0, 0, 0, 28, 0, 0, 0, 28};
	unsigned char body[16 + 100];
	memcpy(body, hdr, 16);
	memset(body + 16, 7, 100);
	char *img = tu_path(dir, "train-images-idx3-ubyte");
	assert_int_equal(tu_write_file(img, body, sizeof body), 0);
	unsigned char lab[8 + 5] = {0, 0, 8, 1, 0, 0, 0, 5, 1, 2, 3, 4, 5};
	char *lbl = tu_path(dir, "train-labels-idx1-ubyte");
	assert_int_equal(tu_write_file(lbl, lab, sizeof lab), 0);
	snprintf(args, sizeof args, "train --data-dir %s", dir);
	assert_int_equal(run(args, out, sizeof out), 1);
	assert_non_null(strstr(out, "train-images-idx3-ubyte"));
	free(img);
	free(lbl);
	tu_rmrf(dir);
	free(dir);
}

/* An epoch's row of train's log for the mlp: each layer's norm and cap,
 * columns 10-15, are printed to the same digits, so that as printed no
 * norm exceeds its cap (a cap printed shorter once read 1.79998 beside a
 * norm of 1.799982). */
static void assert_caps_held(const char *line)
{
	const char *col = line;
	for (int k = 0; k < 9; k++)
		col = strchr(col, ',') + 1;
	for (int j = 0; j < 3; j++) {
		char *end;
		double sigma = strtod(col, &end), rho = strtod(end + 1, &end);
		if (!(rho > 0 && sigma <= rho))
			fail_msg("layer %d: sigma %g against cap %g in %s", j + 1, sigma, rho, line);
		col = end + 1;
	}
}

static void test_train_run_writes_files(void **state)
{
	(void)state;
	char *dir = tu_tmpdir();
	char args[1024];
	snprintf(args, sizeof args,
		 "train --epochs 1 --mode spnorm --json --out %s/m.safetensors --log %s/run.csv",
		 dir, dir);
	assert_int_equal(tu_run(args, false, out, sizeof out), 0);
	/* stdout is one JSON object with the promised fields. */
	assert_true(out[0] == '{');
	const char *keys[] = {"\"test_accuracy\":0.", "\"epochs\":1", "\"seconds\":",
			      "\"mode\":\"spnorm\"", "\"rho_certified\":true", "\"fgsm\":",
			      "\"loss\":\"lmt\",\"tau\":50,\"target_radius\":0.6,",
			      "\"certified_accuracy\":{\"0.1\":"};
	for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
		if (!strstr(out, keys[i]))
			fail_msg("missing %s in %s", keys[i], out);
	/* train's certified accuracy is what certify computes from the
	 * checkpoint, to the printed digit. */
	char trained[256], certified[256];
	const char *ca = strstr(out, "\"certified_accuracy\":{");
	assert_non_null(ca);
	snprintf(trained, sizeof trained, "%.*s", (int)(strchr(ca, '}') - ca + 1), ca);
	assert_non_null(strstr(trained, "\"0.5\":0."));
	snprintf(args, sizeof args, "certify --model %s/m.safetensors --json --no-sdp", dir);
	assert_int_equal(tu_run(args, false, out, sizeof out), 0);
	ca = strstr(out, "\"certified_accuracy\":{");
	assert_non_null(ca);
	snprintf(certified, sizeof certified, "%.*s", (int)(strchr(ca, '}') - ca + 1), ca);
	assert_string_equal(trained, certified);

	char *ckpt = tu_path(dir, "m.safetensors"), *csv = tu_path(dir, "run.csv");
	FILE *f = fopen(ckpt, "rb");
	assert_non_null(f);
	fclose(f);
	f = fopen(csv, "r");
	assert_non_null(f);
	char line[1024];
	assert_non_null(fgets(line, sizeof line, f));
	assert_non_null(strstr(line, "epoch,step,seconds"));
	/* The target radius (0.6 by default for certified caps) among certify's. */
	assert_non_null(strstr(line, ",lipschitz_bound,bound,certified_0.1,certified_0.25,"
				     "certified_0.5,certified_0.6,certified_1\n"));
	assert_non_null(fgets(line, sizeof line, f));
	assert_true(line[0] == '1' && line[1] == ',');
	assert_non_null(strstr(line, ",product,"));
	assert_caps_held(line);
	assert_null(fgets(line, sizeof line, f));
	fclose(f);
	/* the same with caps above 1, the authors' */
	snprintf(args, sizeof args, "train --epochs 1 --mode spnorm --caps authors --log %s", csv);
	assert_int_equal(tu_run(args, false, out, sizeof out), 0);
	f = fopen(csv, "r");
	assert_non_null(f);
	assert_non_null(fgets(line, sizeof line, f));
	assert_non_null(fgets(line, sizeof line, f));
	assert_caps_held(line);
	fclose(f);
	free(ckpt);
	free(csv);
	tu_rmrf(dir);
	free(dir);
}

/* Tiny CIFAR-10 batch files: n records of a label byte and 3072 pixels. */
static void write_cifar(const char *dir, const char *name, int n, int seed)
{
	unsigned char *buf = malloc((size_t)n * 3073);
	for (int i = 0; i < n; i++) {
		buf[(size_t)i * 3073] = (unsigned char)((i + seed) % 10);
		for (int k = 0; k < 3072; k++)
			buf[(size_t)i * 3073 + 1 + k] = (unsigned char)((k * 31 + i * 7 + seed) % 256);
	}
	char *path = tu_path(dir, name);
	assert_int_equal(tu_write_file(path, buf, (size_t)n * 3073), 0);
	free(path);
	free(buf);
}

/* The AlexNet shape from the command line: l2 mode with SGD and a step
 * schedule on a tiny CIFAR-10 look-alike; the checkpoint loads back. */
static void test_train_alexnet_lite(void **state)
{
	(void)state;
	char *dir = tu_tmpdir();
	char name[32];
	for (int b = 1; b <= 5; b++) {
		snprintf(name, sizeof name, "data_batch_%d.bin", b);
		write_cifar(dir, name, 16, b);
	}
	write_cifar(dir, "test_batch.bin", 16, 9);
	char args[2048];
	snprintf(args, sizeof args,
		 "train --model alexnet-lite --data-dir %s --epochs 2 --batch 32 --mode l2 "
		 "--l2 0.001 --schedule step --lr-step 1 --lr-gamma 0.5 --eps 0.01 --json "
		 "--out %s/lite.safetensors --log %s/run.csv",
		 dir, dir, dir);
	assert_int_equal(tu_run(args, false, out, sizeof out), 0);
	const char *keys[] = {"\"model\":\"alexnet-lite\"", "\"dataset\":\"cifar10\"",
			      "\"mode\":\"l2\"", "\"l2\":0.001", "\"optimizer\":\"sgd\"",
			      "\"schedule\":\"step\"", "\"name\":\"conv1\"",
			      "\"name\":\"fc3\"", "\"train_images\":80", "\"fgsm\":"};
	for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
		if (!strstr(out, keys[i]))
			fail_msg("missing %s in %s", keys[i], out);
	char *csv = tu_path(dir, "run.csv");
	FILE *f = fopen(csv, "r");
	assert_non_null(f);
	char line[1024];
	assert_non_null(fgets(line, sizeof line, f));
	assert_non_null(strstr(line, "sigma_conv1,rho_conv1"));
	assert_non_null(fgets(line, sizeof line, f)); /* epoch 1 at lr 0.01 */
	assert_non_null(strstr(line, ",0.01,"));
	assert_non_null(fgets(line, sizeof line, f)); /* epoch 2 at lr 0.005 */
	assert_non_null(strstr(line, ",0.005,"));
	fclose(f);
	char *ckpt = tu_path(dir, "lite.safetensors");
	struct nn_net *net;
	struct checkpoint_info info;
	struct sl_error err;
	if (checkpoint_load(ckpt, 8, &net, &info, &err) != SL_OK)
		fail_msg("%s", err.msg);
	assert_string_equal(checkpoint_info_get(&info, "mode"), "l2");
	assert_string_equal(checkpoint_info_get(&info, "dataset"), "cifar10");
	assert_int_equal(net->in_dim, 3072);
	checkpoint_info_free(&info);
	nn_free(net);
	free(ckpt);
	free(csv);
	tu_rmrf(dir);
	free(dir);
}

/* A network trained with --objective min records it; certify uses it by
 * default (the caps it was trained at are certified) and an objective typed
 * to certify still wins. */
static void test_certify_uses_recorded_objective(void **state)
{
	const char *dir = *state;
	char *ckpt = tu_path(dir, "min.safetensors");
	char args[4096];
	snprintf(args, sizeof args,
		 "train --mode spnorm --objective min --epochs 1 --eps 0 --threads 1 --out %s",
		 ckpt);
	assert_int_equal(run(args, out, sizeof out), 0);
	snprintf(args, sizeof args, "certify --model %s --n 50 --json --threads 1 --no-sdp", ckpt);
	assert_int_equal(tu_run(args, false, out, sizeof out), 0);
	if (!strstr(out, "\"objective\":\"min\"") || !strstr(out, "\"sector_certified\":true"))
		fail_msg("certify without --objective:\n%s", out);
	snprintf(args, sizeof args,
		 "certify --model %s --n 50 --json --threads 1 --no-sdp --objective product",
		 ckpt);
	assert_int_equal(tu_run(args, false, out, sizeof out), 0);
	assert_non_null(strstr(out, "\"objective\":\"product\""));
	assert_non_null(strstr(out, "\"sector_certified\":false"));
	free(ckpt);
}

/* train --config: the file's settings apply, typed options win, and a bad
 * file is refused naming its line. */
static void test_train_settings_file(void **state)
{
	const char *dir = *state;
	char *conf = tu_path(dir, "r.conf"), *ckpt = tu_path(dir, "m.safetensors");
	char text[4096], args[4096];
	snprintf(text, sizeof text,
		 "# certified caps, briefly\n"
		 "mode = spnorm\n"
		 "epochs = 1      # typed --epochs wins\n"
		 "eps = 0\r\n"
		 "json = yes\n"
		 "out = %s\n",
		 ckpt);
	assert_int_equal(tu_write_file(conf, text, strlen(text)), 0);
	snprintf(args, sizeof args, "train --epochs 2 --config %s", conf);
	assert_int_equal(tu_run(args, false, out, sizeof out), 0);
	assert_non_null(strstr(out, "\"epochs\":2"));
	assert_non_null(strstr(out, "\"mode\":\"spnorm\""));
	assert_non_null(strstr(out, "\"rho_certified\":true"));
	assert_int_equal(access(ckpt, R_OK), 0);

	static const struct {
		const char *text, *says;
	} bad[] = {
		{"mode = l2\nepohcs = 2\n", "line 2: 'epohcs' is not a setting of sectorlab train"},
		{"json = maybe\n", "'json' takes yes or no"},
		{"help = yes\n", "'help' is not a setting"},
		{"config = other.conf\n", "'config' is not a setting"},
		{"epochs 2\n", "line 1: expected 'key = value'"},
		{"epochs = ten\n", "settings in"},
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		assert_int_equal(tu_write_file(conf, bad[i].text, strlen(bad[i].text)), 0);
		snprintf(args, sizeof args, "train --config %s", conf);
		int rc = run(args, out, sizeof out);
		if (rc != 2 || !strstr(out, bad[i].says) || !strstr(out, "r.conf"))
			fail_msg("'%s' exited %d with:\n%s", bad[i].text, rc, out);
	}
	assert_int_equal(run("train --config", out, sizeof out), 2);
	assert_non_null(strstr(out, "--config needs a FILE"));
	snprintf(args, sizeof args, "train --config %s --config=%s", conf, conf);
	assert_int_equal(run(args, out, sizeof out), 2);
	assert_non_null(strstr(out, "--config given twice"));
	snprintf(args, sizeof args, "train --config %s/none.conf", dir);
	assert_int_equal(run(args, out, sizeof out), 1);
	assert_non_null(strstr(out, "No such file"));
	free(conf);
	free(ckpt);
}

/* Whether text is one JSON value that python3's strict reader takes (valid
 * UTF-8, no NaN or Infinity); -1 when python3 is missing. */
static int json_valid(const char *dir, const char *text)
{
	if (access("/usr/bin/python3", X_OK) != 0)
		return -1;
	char *path = tu_path(dir, "out.json");
	assert_int_equal(tu_write_file(path, text, strlen(text)), 0);
	char cmd[4096];
	snprintf(cmd, sizeof cmd,
		 "/usr/bin/python3 -c 'import json,sys\n"
		 "def bad(c): raise ValueError(c)\n"
		 "json.loads(open(sys.argv[1], \"rb\").read().decode(\"utf-8\"), "
		 "parse_constant=bad)' '%s'",
		 path);
	free(path);
	return system(cmd) == 0;
}

/* JSON is valid UTF-8 whatever bytes a path holds, and holds no NaN or
 * Infinity whatever the numbers; a checkpoint whose metadata is corrupt is
 * named in the error. */
static void test_json_valid_and_metadata_named(void **state)
{
	const char *dir = *state;
	char args[8192], *model = tu_path(dir, "m\xFF\xFE\xC3.safetensors");
	snprintf(args, sizeof args, "train --mode spnorm --epochs 1 --out '%s'", model);
	assert_int_equal(run(args, out, sizeof out), 0);
	static const char *const commands[] = {
		"certify --json --n 50 --model",
		"attack --json --n 20 --attack fgsm --no-clip --eps 0,100 --model",
	};
	for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
		snprintf(args, sizeof args, "%s '%s'", commands[i], model);
		assert_int_equal(tu_run(args, false, out, sizeof out), 0);
		assert_non_null(strstr(out, "m\\ufffd\\ufffd\\ufffd.safetensors"));
		int ok = json_valid(dir, out);
		if (ok == 0)
			fail_msg("'%s' printed JSON that is not valid:\n%s", commands[i], out);
	}

	/* The metadata "nu":"-2" becomes "nu":"xx", same length. */
	size_t n;
	char *bytes = tu_read_file(model, &n);
	assert_non_null(bytes);
	char *nu = strstr(bytes + 8, "\"nu\":\"-2\"");
	assert_non_null(nu);
	memcpy(nu + 6, "xx", 2);
	char *bad = tu_path(dir, "bad.safetensors");
	assert_int_equal(tu_write_file(bad, bytes, n), 0);
	snprintf(args, sizeof args, "certify --n 10 --model '%s'", bad);
	assert_int_equal(run(args, out, sizeof out), 1);
	if (!strstr(out, bad) || !strstr(out, "metadata nu is 'xx'"))
		fail_msg("the error does not name the file:\n%s", out);
	free(bytes);
	free(bad);
	free(model);
}

/* Every lesson shipped in assets/lessons/ opens: its settings and the data
 * are checked (--check), and what --check prints is a settings file that
 * opens the same lab again.  A lesson can never rot. */
static void test_lessons_load(void **state)
{
	const char *dir = *state;
	static char again[sizeof out];
	char args[8192];
	char *conf = tu_path(dir, "again.conf");
	DIR *d = opendir("assets/lessons");
	assert_non_null(d);
	int n = 0;
	for (struct dirent *e; (e = readdir(d)) != NULL;) {
		size_t len = strlen(e->d_name);
		if (len <= 5 || strcmp(e->d_name + len - 5, ".conf") != 0)
			continue;
		snprintf(args, sizeof args, "--lesson %.*s --check --data-dir '%s'", (int)(len - 5),
			 e->d_name, tu_sample_data());
		int rc = run(args, out, sizeof out);
		if (rc != 0 || !strstr(out, "lanes     = ") || !strstr(out, "screen    = "))
			fail_msg("lesson %s: exit %d:\n%s", e->d_name, rc, out);
		/* Its note fits the footer of an 80-column terminal. */
		const char *note = strstr(out, "note      = \"");
		if (note && strcspn(note, "\n") - 13 > 80)
			fail_msg("lesson %s: a note wider than 80 columns:\n%s", e->d_name, note);
		assert_int_equal(tu_write_file(conf, out, strlen(out)), 0);
		snprintf(args, sizeof args, "--config '%s' --check", conf);
		assert_int_equal(run(args, again, sizeof again), 0);
		if (strcmp(out, again) != 0)
			fail_msg("lesson %s: its settings do not read back:\n%s\nthen:\n%s",
				 e->d_name, out, again);
		n++;
	}
	closedir(d);
	assert_true(n >= 3);
	/* Typed options win over a lesson's. */
	snprintf(args, sizeof args, "--lesson mnist-story --epochs 3 --check --data-dir '%s'",
		 tu_sample_data());
	assert_int_equal(run(args, out, sizeof out), 0);
	assert_non_null(strstr(out, "epochs    = 3\n"));
	assert_non_null(strstr(out, "lanes     = vanilla,l2,spnorm,margin\n"));
	free(conf);
}

/* Lessons by name, and bad settings refused with the file and the line. */
static void test_lesson_errors(void **state)
{
	const char *dir = *state;
	char args[8192];
	static const struct {
		const char *args, *says;
	} usage[] = {
		{"--lesson nope", "no lesson 'nope'"},
		{"--lesson nope", "mnist-story"}, /* the lessons there are, listed */
		{"--lesson ../data/README", "takes a lesson's name"},
		{"--lesson", "--lesson needs a NAME"},
		{"--lesson attacks --lesson=nu-delta", "--lesson given twice"},
		{"--lesson attacks --config x.conf", "not both"},
		{"--screen bogus --check", "--screen takes train, designer"},
		{"--digit 2000 --check", "the test set has 2000 images"},
	};
	for (size_t i = 0; i < sizeof usage / sizeof usage[0]; i++) {
		int rc = run(usage[i].args, out, sizeof out);
		if (rc != 2 || !strstr(out, usage[i].says))
			fail_msg("'%s' exited %d with:\n%s", usage[i].args, rc, out);
	}
	char *conf = tu_path(dir, "lesson.conf");
	static const struct {
		const char *text, *says;
	} bad[] = {
		{"# a lesson\neps = 0.2\nnu = -2\ndelta = x\n", "line 4: --delta expects a number"},
		{"eps = 2\n", "line 1: --eps must be in [0, 1], got 2"},
		{"lanes = vanilla\nscreen = garden\n", "line 2: --screen takes"},
		{"lanes = vanilla,cheese\n", "line 1: --lanes: unknown lane 'cheese'"},
		{"\nmodel = resnet\n", "line 2: unknown model 'resnet'"},
		{"rho = 1,x\n", "line 1: --rho expects a number"},
		{"seed = -4\n", "line 1: --seed must be between"},
		{"nu = -0.4\ndelta = 4\n", "line 2: no certified caps"},
		{"digit = 5000\n", "line 1: --digit 5000"},
		{"colour = red\n", "line 1: 'colour' is not a setting of sectorlab lab"},
		{"paused = maybe\n", "line 1: 'paused' takes yes or no"},
		{"attack = pgd\nattack-norm = 3\n", "line 2: unknown norm '3'"},
		{"attack-eps = -1\n", "line 1: --attack-eps must be in [0, 100]"},
		{"attack-seed = 4\n", "--attack-seed is a setting of random starts"},
		{"attack-preset = fast\n", "line 1: unknown preset 'fast'"},
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		assert_int_equal(tu_write_file(conf, bad[i].text, strlen(bad[i].text)), 0);
		snprintf(args, sizeof args, "--config '%s' --check --data-dir '%s'", conf,
			 tu_sample_data());
		int rc = run(args, out, sizeof out);
		if (rc != 2 || !strstr(out, bad[i].says) || !strstr(out, "lesson.conf"))
			fail_msg("'%s' exited %d with:\n%s", bad[i].text, rc, out);
	}
	free(conf);
}

int main(int argc, char **argv)
{
	(void)argc;
	tu_find_program(argv[0]);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_help),
		cmocka_unit_test(test_bad_usage),
		cmocka_unit_test(test_bad_usage_status_and_reason),
		cmocka_unit_test(test_spnorm_wrong_cap_count),
		cmocka_unit_test(test_missing_and_bad_data),
		cmocka_unit_test(test_train_run_writes_files),
		cmocka_unit_test_setup_teardown(test_certify_uses_recorded_objective,
						tu_setup_tmpdir, tu_teardown_tmpdir),
		cmocka_unit_test(test_train_alexnet_lite),
		cmocka_unit_test_setup_teardown(test_json_valid_and_metadata_named, tu_setup_tmpdir,
						tu_teardown_tmpdir),
		cmocka_unit_test_setup_teardown(test_train_settings_file, tu_setup_tmpdir,
						tu_teardown_tmpdir),
		cmocka_unit_test_setup_teardown(test_lessons_load, tu_setup_tmpdir,
						tu_teardown_tmpdir),
		cmocka_unit_test_setup_teardown(test_lesson_errors, tu_setup_tmpdir,
						tu_teardown_tmpdir),
	};
	return cmocka_run_group_tests_name("cli", tests, NULL, NULL);
}
