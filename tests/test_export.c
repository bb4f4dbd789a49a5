/* Tests for export: file names, the three PNGs of an example (with the
 * recipe inside), the grid, and re-reading PNGs to classify them. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sectorlab/export.h"
#include "sectorlab/image.h"
#include "testutil.h"

static void test_stem(void **state)
{
	(void)state;
	struct export_example e = {.index = 12, .label = 7, .pred_clean = 7, .pred_adv = 3};
	struct attack_recipe r = attack_recipe_pgd(ATTACK_NORM_INF, 0.1f, 40);
	char buf[256];
	export_stem(buf, sizeof buf, &e, &r);
	assert_string_equal(buf, "00012_true7_pred7_adv3_pgd_linf_eps0.1");
	r = attack_recipe_fgm(1.5f);
	e.index = 9999;
	e.pred_adv = 7;
	export_stem(buf, sizeof buf, &e, &r);
	assert_string_equal(buf, "09999_true7_pred7_adv7_fgm_l2_eps1.5");
}

enum { C = 1, H = 6, W = 5, D = C * H * W };

static void test_example_pngs(void **state)
{
	const char *dir = *state;
	float x0[D], adv[D];
	for (int k = 0; k < D; k++) {
		x0[k] = (float)k / D - 0.5f;
		adv[k] = x0[k] + (k % 3 == 0 ? 0.1f : (k % 3 == 1 ? -0.1f : 0.0f));
	}
	adv[D - 1] = 0.73f; /* out of the box: the PNG clips it */
	struct export_example e = {.index = 3, .label = 1, .pred_clean = 1, .pred_adv = 4,
				   .x0 = x0, .adv = adv};
	struct attack_recipe r = attack_recipe_fgsm(0.1f);
	struct export_shape shape = {C, H, W};
	char adv_path[4096];
	assert_int_equal(export_example_pngs(dir, &shape, &e, &r, adv_path, sizeof adv_path, NULL),
			 SL_OK);
	char want[4096];
	snprintf(want, sizeof want, "%s/00003_true1_pred1_adv4_fgsm_linf_eps0.1_adv.png", dir);
	assert_string_equal(adv_path, want);

	/* The adversarial comes back as its bytes: clipped, then rounded. */
	struct image img;
	char comment[2048];
	assert_int_equal(image_read_png(adv_path, &img, "Comment", comment, sizeof comment, NULL),
			 SL_OK);
	assert_int_equal(img.channels, 1);
	assert_int_equal(img.w, W);
	assert_int_equal(img.h, H);
	for (int k = 0; k < D; k++)
		assert_int_equal(img.px[k], (int)lroundf(fminf(fmaxf((adv[k] + 0.5f) * 255, 0), 255)));
	assert_non_null(strstr(comment, "\"image\":\"adversarial\""));
	assert_non_null(strstr(comment, "\"attack\":\"fgsm\",\"norm\":\"inf\",\"eps\":0.1"));
	assert_non_null(strstr(comment, "\"clip\":true"));
	image_free(&img);

	/* The perturbation: the largest change (0.73 - x0) maps to 255, no
	 * change to mid-grey, and the amplification is recorded. */
	char *pert = tu_path(dir, "00003_true1_pred1_adv4_fgsm_linf_eps0.1_pert.png");
	assert_int_equal(image_read_png(pert, &img, "Comment", comment, sizeof comment, NULL),
			 SL_OK);
	double m = 0.73 - x0[D - 1];
	assert_int_equal(img.px[D - 1], 255);
	assert_int_equal(img.px[2], 128);
	assert_int_equal(img.px[0], (int)lround(127.5 + 127.5 * 0.1 / m));
	assert_non_null(strstr(comment, "\"amplification\":"));
	image_free(&img);
	free(pert);

	char *orig = tu_path(dir, "00003_true1_pred1_adv4_fgsm_linf_eps0.1_orig.png");
	char desc[512];
	assert_int_equal(image_read_png(orig, &img, "Description", desc, sizeof desc, NULL), SL_OK);
	assert_string_equal(desc, "FGSM L-inf eps 0.1: one step of eps, no random start, 1 restart, "
				  "true labels, clipped to [-0.5, 0.5], seed 1");
	image_free(&img);
	free(orig);

	/* A directory that does not exist: an error naming it. */
	struct sl_error err;
	char *nowhere = tu_path(dir, "missing");
	assert_int_equal(export_example_pngs(nowhere, &shape, &e, &r, NULL, 0, &err), SL_ERR_IO);
	assert_non_null(strstr(err.msg, "missing"));
	free(nowhere);
}

static void test_grid(void **state)
{
	const char *dir = *state;
	enum { N = 13 };
	float x0[N][3 * 4 * 4], adv[N][3 * 4 * 4];
	struct export_example e[N];
	for (int i = 0; i < N; i++) {
		for (int k = 0; k < 48; k++) {
			x0[i][k] = (float)((i + k) % 7) / 7 - 0.5f;
			adv[i][k] = -x0[i][k];
		}
		e[i] = (struct export_example){i, i % 10, i % 10, (i * 3) % 10, x0[i], adv[i]};
	}
	struct export_shape shape = {3, 4, 4};
	struct attack_recipe r = attack_recipe_pgd(ATTACK_NORM_2, 0.5f, 10);
	char *path = tu_path(dir, "grid.png");
	assert_int_equal(export_grid_png(path, &shape, e, N, 5, "eps 0.5", &r, NULL), SL_OK);
	struct image img;
	char comment[1024];
	assert_int_equal(image_read_png(path, &img, "Comment", comment, sizeof comment, NULL),
			 SL_OK);
	assert_int_equal(img.channels, 3);
	assert_true(img.w >= 5 * 12);
	assert_true(img.h > 3 * 2 * 12); /* three row pairs */
	assert_non_null(strstr(comment, "\"examples\":13"));
	image_free(&img);
	struct sl_error err;
	assert_int_equal(export_grid_png(path, &shape, e, 0, 5, "none", &r, &err), SL_ERR_ARG);
	free(path);
}

/* PNGs read back and classified: the same predictions as the rounded
 * images in memory. */
static void test_reclassify(void **state)
{
	const char *dir = *state;
	static const struct nn_layer_spec one[] = {{.kind = NN_DENSE, .in = D, .out = 2, .act = NN_ACT_IDENTITY}};
	struct nn_net *net;
	assert_int_equal(nn_new(one, 1, 2, &net, NULL), SL_OK); /* batches of 2 */
	/* class 1 iff the first pixel is above 0.3 */
	net->layers[0].w[D] = 1;
	net->layers[0].b[1] = -0.3f;
	enum { N = 3 };
	float x0[N][D], adv[N][D];
	const float first[N] = {0.31f, 0.29f, 0.7f}; /* 0.7 clips to 0.5: still class 1 */
	char paths[N][4096];
	const char *list[N];
	struct attack_recipe r = attack_recipe_fgsm(0.1f);
	r.clip = false;
	struct export_shape shape = {C, H, W};
	for (int i = 0; i < N; i++) {
		memset(x0[i], 0, sizeof x0[i]);
		memcpy(adv[i], x0[i], sizeof adv[i]);
		adv[i][0] = first[i];
		struct export_example e = {i, 0, 0, first[i] > 0.3f, x0[i], adv[i]};
		assert_int_equal(export_example_pngs(dir, &shape, &e, &r, paths[i], sizeof paths[i],
						     NULL), SL_OK);
		list[i] = paths[i];
	}
	int pred[N];
	assert_int_equal(export_reclassify(net, &shape, list, N, pred, NULL), SL_OK);
	/* 0.31 -> byte 207 -> 0.3118: class 1; 0.29 -> 202 -> 0.2922: class 0 */
	assert_int_equal(pred[0], 1);
	assert_int_equal(pred[1], 0);
	assert_int_equal(pred[2], 1);
	struct sl_error err;
	struct export_shape wrong = {3, H, W};
	assert_int_equal(export_reclassify(net, &wrong, list, N, pred, &err), SL_ERR_ARG);
	struct export_shape wrong2 = {1, W, H};
	assert_int_equal(export_reclassify(net, &wrong2, list, N, pred, &err), SL_ERR_FORMAT);
	assert_non_null(strstr(err.msg, "expected 6 x 5"));
	nn_free(net);
}

static sl_status stop_after(void *ctx, struct sl_error *err)
{
	int *left = ctx;
	if ((*left)-- > 0)
		return SL_OK;
	return status_set(err, SL_ERR_CANCELLED, "stopped");
}

/* The set `attack --png-dir` and the gallery write: each example's PNGs,
 * the grid under its recipe's name, and the 8-bit re-check counted over
 * the examples the attack fooled; a check between files stops it. */
static void test_attack_set(void **state)
{
	const char *dir = *state;
	static const struct nn_layer_spec one[] = {{.kind = NN_DENSE, .in = D, .out = 2, .act = NN_ACT_IDENTITY}};
	struct nn_net *net;
	assert_int_equal(nn_new(one, 1, 2, &net, NULL), SL_OK);
	net->layers[0].w[D] = 1; /* class 1 iff the first pixel is above 0.3 */
	net->layers[0].b[1] = -0.3f;
	enum { N = 4 };
	float x0[N][D], adv[N][D];
	/* label 0 everywhere: 0.31 fools and survives rounding (byte 207);
	 * 0.3005 fools in floats but rounds to 0.2961 (class 0); 0.1 does not
	 * fool; the last was wrong before the attack. */
	const float first[N] = {0.31f, 0.3005f, 0.1f, 0.4f};
	struct export_example e[N];
	for (int i = 0; i < N; i++) {
		memset(x0[i], 0, sizeof x0[i]);
		memcpy(adv[i], x0[i], sizeof adv[i]);
		adv[i][0] = first[i];
		e[i] = (struct export_example){10 + i, 0, i == 3, first[i] > 0.3f, x0[i], adv[i]};
	}
	struct attack_recipe r = attack_recipe_pgd(ATTACK_NORM_2, 0.5f, 10);
	struct export_shape shape = {C, H, W};
	struct export_summary sum;
	assert_int_equal(export_attack_set(dir, net, &shape, e, N, &r, NULL, NULL, &sum, NULL),
			 SL_OK);
	assert_int_equal(sum.files, N);
	assert_int_equal(sum.fooled, 2);
	assert_int_equal(sum.still_fooled, 1);
	char *grid = tu_path(dir, "grid_pgd_l2_eps0.5.png");
	assert_string_equal(sum.grid, grid);
	struct image img;
	char desc[512];
	assert_int_equal(image_read_png(grid, &img, "Description", desc, sizeof desc, NULL), SL_OK);
	assert_non_null(strstr(desc, "PGD L2 eps 0.5"));
	image_free(&img);
	char *adv13 = tu_path(dir, "00013_true0_pred1_adv1_pgd_l2_eps0.5_adv.png");
	assert_int_equal(access(adv13, F_OK), 0);
	free(adv13);
	free(grid);

	/* Stopped after two examples: two written, no grid. */
	char *sub = tu_path(dir, "stop");
	assert_int_equal(mkdir(sub, 0777), 0);
	int left = 2;
	struct sl_error err;
	assert_int_equal(export_attack_set(sub, net, &shape, e, N, &r, stop_after, &left, &sum,
					   &err), SL_ERR_CANCELLED);
	assert_int_equal(sum.files, 2);
	char *g2 = tu_path(sub, "grid_pgd_l2_eps0.5.png");
	assert_int_equal(access(g2, F_OK), -1);
	free(g2);
	free(sub);
	assert_int_equal(export_attack_set(dir, net, &shape, e, 0, &r, NULL, NULL, &sum, &err),
			 SL_ERR_ARG);
	nn_free(net);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_stem),
		cmocka_unit_test_setup_teardown(test_example_pngs, tu_setup_tmpdir, tu_teardown_tmpdir),
		cmocka_unit_test_setup_teardown(test_grid, tu_setup_tmpdir, tu_teardown_tmpdir),
		cmocka_unit_test_setup_teardown(test_reclassify, tu_setup_tmpdir, tu_teardown_tmpdir),
		cmocka_unit_test_setup_teardown(test_attack_set, tu_setup_tmpdir, tu_teardown_tmpdir),
	};
	return cmocka_run_group_tests_name("export", tests, NULL, NULL);
}
