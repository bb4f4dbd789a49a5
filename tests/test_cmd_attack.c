/* Tests for `sectorlab attack`: help, every bad argument, a model that does
 * not match the data, and a real run that writes every kind of file with
 * the recipe inside. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sectorlab/image.h"
#include "sectorlab/npy.h"
#include "testutil.h"

static char *dir;   /* temporary, for the whole group */
static char *model; /* a network trained for one epoch on the embedded sample */
static char out[1 << 16];

/* Run `prog args`; return the exit code and the output (stdout only, or
 * stdout and stderr). */
static int run_with(const char *args, bool with_stderr)
{
	return tu_run(args, with_stderr, out, sizeof out);
}

static int setup(void **state)
{
	(void)state;
	dir = tu_tmpdir();
	model = tu_path(dir, "m.safetensors");
	char args[2048];
	snprintf(args, sizeof args, "train --epochs 1 --eps 0 --out %s", model);
	return run_with(args, true) == 0 ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	tu_rmrf(dir);
	free(dir);
	free(model);
	return 0;
}

static void test_help(void **state)
{
	(void)state;
	assert_int_equal(run_with("attack --help", false), 0);
	assert_non_null(strstr(out, "--preset"));
	assert_non_null(strstr(out, "--no-clip"));
	assert_int_equal(run_with("--help", false), 0);
	assert_non_null(strstr(out, "attack"));
}

static void test_bad_arguments(void **state)
{
	(void)state;
	static const struct {
		const char *args, *says;
		int rc;
	} cases[] = {
		{"", "--model FILE is required", 2},
		{"--eps 0.1,-0.1", "--eps must be in [0, 100], got -0.1", 2},
		{"--eps 1e300", "--eps must be in [0, 100], got 1e300", 2},
		{"--eps 3e38 --no-clip", "--eps must be in [0, 100], got 3e38", 2},
		{"--step-size 1e300", "--step-size must be in (0, 100], got 1e300", 2},
		{"--png-count 3", "--png-count is a setting of --png-dir", 2},
		{"--seed 5", "--seed is a setting of random starts", 2},
		{"--attack fgsm --early-stop", "--early-stop is a setting of pgd", 2},
		{"--png-dir /dev/null", "--png-dir /dev/null: Not a directory", 2},
		{"--eps 0.1,x", "--eps expects a number", 2},
		{"--eps 0.1,0.2,0.1", "--eps lists 0.1 twice", 2},
		{"--steps 0", "--steps must be between 1", 2},
		{"--steps many", "--steps expects a whole number", 2},
		{"--norm 1", "unknown norm '1'", 2},
		{"--attack cw", "unknown attack 'cw'", 2},
		{"--labels gold", "unknown label source 'gold'", 2},
		{"--preset fast", "unknown preset 'fast'", 2},
		{"--attack fgsm --norm 2", "fgsm is the L-infinity attack", 2},
		{"--attack fgm --norm inf", "fgm is the L2 attack", 2},
		{"--attack fgsm --steps 5", "need pgd", 2},
		{"--attack fgm --random-start", "need pgd", 2},
		{"--step-size 0", "--step-size must be in (0, 100], got 0", 2},
		{"--step-size 0.1 --step-travel 2", "not both", 2},
		{"--restarts 0", "--restarts must be between 1", 2},
		{"--target 12", "target class 12 is not in 0..9", 2},
		{"--n 0", "--n must be between 1", 2},
		{"--dataset imagenet", "imagenet", 2},
		{"extra", "unexpected argument 'extra'", 2},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char args[4096];
		/* every case but the first names the model, so only its own
		 * argument is wrong */
		snprintf(args, sizeof args, "attack %s%s %s", i ? "--model " : "", i ? model : "",
			 cases[i].args);
		int rc = run_with(args, true);
		if (rc != cases[i].rc || !strstr(out, cases[i].says))
			fail_msg("'%s' exited %d (wanted %d) with:\n%s", cases[i].args, rc, cases[i].rc,
				 out);
	}
}

static void test_bad_files(void **state)
{
	(void)state;
	char args[4096];
	snprintf(args, sizeof args, "attack --model %s/missing.safetensors", dir);
	assert_int_equal(run_with(args, true), 1);
	assert_non_null(strstr(out, "missing.safetensors"));

	char *junk = tu_path(dir, "junk.safetensors");
	assert_int_equal(tu_write_file(junk, "\x10\0\0\0\0\0\0\0{\"a\":", 13), 0);
	snprintf(args, sizeof args, "attack --model %s", junk);
	assert_int_equal(run_with(args, true), 1);
	assert_non_null(strstr(out, "junk.safetensors"));
	free(junk);

	/* A model that does not match the data: the MNIST network against a
	 * CIFAR-10 test batch (two images, made here). */
	char *cifar = tu_path(dir, "cifar");
	char cmd[4200];
	snprintf(cmd, sizeof cmd, "mkdir -p %s", cifar);
	assert_int_equal(system(cmd), 0);
	char *batch = tu_path(cifar, "test_batch.bin");
	static unsigned char records[2 * 3073];
	records[0] = 3;
	records[3073] = 5;
	assert_int_equal(tu_write_file(batch, records, sizeof records), 0);
	snprintf(args, sizeof args, "attack --model %s --dataset cifar10 --data-dir %s", model, cifar);
	assert_int_equal(run_with(args, true), 2);
	assert_non_null(strstr(out, "takes 784 values"));
	assert_non_null(strstr(out, "3 x 32 x 32"));

	/* An output that cannot be written: an error naming it, exit 1. */
	snprintf(args, sizeof args, "attack --model %s --n 20 --eps 0.1 --steps 2 --csv %s/no/a.csv",
		 model, dir);
	assert_int_equal(run_with(args, true), 1);
	assert_non_null(strstr(out, "a.csv"));
	free(batch);
	free(cifar);
}

/* One run writes the table or JSON, PNGs, the archive, the CSV and the plot,
 * each carrying the recipe. */
static void test_run_writes_everything(void **state)
{
	(void)state;
	char args[4096];
	snprintf(args, sizeof args,
		 "attack --model %s --n 60 --eps 0,0.1,0.2 --steps 5 --random-start --restarts 2 "
		 "--seed 7 --json --png-dir %s/png --png-count 3 --npy %s/adv.npz --csv %s/r.csv "
		 "--plot %s/plot.png",
		 model, dir, dir, dir, dir);
	assert_int_equal(run_with(args, false), 0);
	const char *keys[] = {
		"\"results\":[{\"eps\":0,", "{\"eps\":0.1,", "\"clean_accuracy\":0.",
		"\"robust_accuracy\":", "\"attack_success_rate\":", "\"success_denominator\":",
		"\"n\":60", "\"attack\":\"pgd\"", "\"norm\":\"inf\"", "\"steps\":5",
		"\"random_start\":true", "\"restarts\":2", "\"labels\":\"true\"", "\"clip\":true",
		"\"seed\":7", "\"eps\":[0,0.1,0.2]", "\"one_step_robust_accuracy\":",
		"\"png\":{\"files\":3,", "\"flags\":[",
	};
	assert_true(out[0] == '{');
	for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
		if (!strstr(out, keys[i]))
			fail_msg("missing %s in %s", keys[i], out);

	/* The archive: arrays of the right shapes and the recipe. */
	char path[4096];
	snprintf(path, sizeof path, "%s/adv.npz", dir);
	struct npy_array a;
	assert_int_equal(npz_read_array(path, "adv_eps0.2", &a, NULL), SL_OK);
	assert_int_equal(a.type, NPY_TYPE_F32);
	assert_int_equal(a.ndim, 4);
	assert_int_equal(a.shape[0], 60);
	assert_int_equal(a.shape[2], 28);
	npy_array_free(&a);
	assert_int_equal(npz_read_array(path, "clean", &a, NULL), SL_OK);
	npy_array_free(&a);
	assert_int_equal(npz_read_array(path, "pred_adv_eps0.1", &a, NULL), SL_OK);
	assert_int_equal(a.type, NPY_TYPE_I32);
	npy_array_free(&a);
	char *json;
	size_t len;
	assert_int_equal(npz_read_bytes(path, "recipe.json", &json, &len, NULL), SL_OK);
	assert_non_null(strstr(json, "\"restarts\":2"));
	free(json);

	/* The CSV: a header and one row per eps, recipe in each. */
	snprintf(path, sizeof path, "%s/r.csv", dir);
	FILE *f = fopen(path, "r");
	assert_non_null(f);
	char line[2048];
	assert_non_null(fgets(line, sizeof line, f));
	assert_non_null(strstr(line, "eps,n,clean_accuracy,robust_accuracy"));
	for (int i = 0; i < 3; i++) {
		assert_non_null(fgets(line, sizeof line, f));
		assert_non_null(strstr(line, ",pgd,inf,5,2.5*eps/5,true,2,true,true,false,none,7"));
	}
	assert_null(fgets(line, sizeof line, f));
	fclose(f);

	/* The plot and an example PNG, with the recipe in their text. */
	struct image img;
	char comment[2048];
	snprintf(path, sizeof path, "%s/plot.png", dir);
	assert_int_equal(image_read_png(path, &img, "Comment", comment, sizeof comment, NULL),
			 SL_OK);
	assert_int_equal(img.channels, 3);
	assert_non_null(strstr(comment, "\"random_start\":true"));
	image_free(&img);
	snprintf(path, sizeof path, "%s/png/grid_pgd_linf_eps0.1.png", dir);
	assert_int_equal(image_read_png(path, &img, NULL, NULL, 0, NULL), SL_OK);
	image_free(&img);
	snprintf(args, sizeof args, "ls %s/png | grep -c '^0000[0-2]_true[0-9]_pred[0-9]_adv[0-9]_"
				    "pgd_linf_eps0.2_\\(orig\\|adv\\|pert\\).png$'", dir);
	f = popen(args, "r");
	assert_non_null(f);
	assert_non_null(fgets(line, sizeof line, f));
	pclose(f);
	assert_int_equal(atoi(line), 9);
}

/* Without --json: a table with the recipe beside it; presets work. */
static void test_table_and_presets(void **state)
{
	(void)state;
	char args[4096];
	snprintf(args, sizeof args, "attack --model %s --n 40 --preset paper-code --eps 0.5 "
				    "--steps 10", model);
	assert_int_equal(run_with(args, false), 0);
	assert_non_null(strstr(out, "recipe: PGD L2: 10 steps of 2 eps/10, no random start, "
				    "1 restart, predicted labels, not clipped, seed 1"));
	assert_non_null(strstr(out, "robust"));
	assert_non_null(strstr(out, "success (of N)"));
	snprintf(args, sizeof args, "attack --model %s --n 40 --attack fgm --eps 1", model);
	assert_int_equal(run_with(args, false), 0);
	assert_non_null(strstr(out, "recipe: FGM L2: one step of eps"));
	snprintf(args, sizeof args, "attack --model %s --n 40 --preset madry --eps 0.3 --json", model);
	assert_int_equal(run_with(args, false), 0);
	assert_non_null(strstr(out, "\"steps\":40,\"step_size\":0.01,\"random_start\":true"));
	snprintf(args, sizeof args, "attack --model %s --n 40 --eps 0.2 --steps 5 --target next "
				    "--early-stop --json", model);
	assert_int_equal(run_with(args, false), 0);
	assert_non_null(strstr(out, "\"target\":\"next\""));
	assert_non_null(strstr(out, "\"early_stop\":true"));
	assert_non_null(strstr(out, "\"target_hits\":"));
}

/* A recipe kept in a settings file gives what the same options give typed. */
static void test_settings_file(void **state)
{
	(void)state;
	char *conf = tu_path(dir, "pgd.conf");
	const char recipe[] = "# PGD at two strengths\n"
			      "model = MODEL\n"
			      "attack = pgd\n"
			      "steps = 5\n"
			      "eps = 0.1,0.2\n"
			      "random-start = no\n"
			      "n = 100\n"
			      "json = true\n";
	char text[4096];
	const char *at = strstr(recipe, "MODEL");
	snprintf(text, sizeof text, "%.*s%s%s", (int)(at - recipe), recipe, model, at + 5);
	assert_int_equal(tu_write_file(conf, text, strlen(text)), 0);
	char args[4096];
	static char typed[sizeof out];
	snprintf(args, sizeof args, "attack --config %s", conf);
	assert_int_equal(run_with(args, false), 0);
	snprintf(typed, sizeof typed, "%s", out);
	snprintf(args, sizeof args,
		 "attack --model %s --attack pgd --steps 5 --eps 0.1,0.2 --n 100 --json", model);
	assert_int_equal(run_with(args, false), 0);
	/* Identical but for the timing. */
	const char *keys[] = {"\"robust_accuracy\":", "\"attack_success_rate\":"};
	for (size_t k = 0; k < 2; k++) {
		const char *a = strstr(typed, keys[k]), *b = strstr(out, keys[k]);
		assert_non_null(a);
		assert_non_null(b);
		assert_memory_equal(a, b, strlen(keys[k]) + 8);
	}
	/* Typed options win over the file's. */
	snprintf(args, sizeof args, "attack --config %s --eps 0.3", conf);
	assert_int_equal(run_with(args, false), 0);
	assert_non_null(strstr(out, "\"eps\":0.3"));
	assert_null(strstr(out, "\"eps\":0.1"));
	free(conf);
}

int main(int argc, char **argv)
{
	(void)argc;
	tu_find_program(argv[0]);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_help),
		cmocka_unit_test(test_bad_arguments),
		cmocka_unit_test(test_bad_files),
		cmocka_unit_test(test_run_writes_everything),
		cmocka_unit_test(test_table_and_presets),
		cmocka_unit_test(test_settings_file),
	};
	return cmocka_run_group_tests_name("cmd_attack", tests, setup, teardown);
}
