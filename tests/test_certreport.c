/* test_certreport: the certificate screen's report of a trained MLP holds
 * its sandwich (each layer's floor <= its verified norm, the network's
 * floor <= SDP <= product, the chosen image's certified radius <= the eps
 * that flips it), its pieces agree with the functions they come from, and
 * the progress hook stops it. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sectorlab/certreport.h"
#include "sectorlab/train.h"
#include "testutil.h"

/* An MLP trained for one epoch on the embedded sample under the paper's
 * certified caps. */
static struct trainer *trained(struct sl_dataset *train, struct sl_dataset *test)
{
	assert_int_equal(data_load(DATA_MNIST, tu_sample_data(), true, train, NULL), SL_OK);
	assert_int_equal(data_load(DATA_MNIST, tu_sample_data(), false, test, NULL), SL_OK);
	struct train_config cfg = train_config_default();
	cfg.mode = TRAIN_SPNORM;
	cfg.holdout = 0;
	cfg.epochs = 1;
	struct trainer *t;
	struct sl_error err;
	if (trainer_new(&cfg, train, test, &t, &err) != SL_OK)
		fail_msg("trainer_new: %s", err.msg);
	if (trainer_settle_caps(t, &err) != SL_OK)
		fail_msg("settle: %s", err.msg);
	struct train_step_info info;
	bool done;
	while (t->epoch < cfg.epochs)
		if ((trainer_ending(t) ? trainer_end_step(t, &done, &err)
				       : trainer_step(t, &info, &err)) != SL_OK)
			fail_msg("training: %s", err.msg);
	return t;
}

struct progress_log {
	double last;
	int calls;
	bool monotone;
	int stop_after; /* stop at this call (0: never) */
};

static bool log_progress(void *ctx, double done, const char *what)
{
	(void)what;
	struct progress_log *p = ctx;
	p->monotone &= done >= p->last;
	p->last = done;
	p->calls++;
	return p->stop_after > 0 && p->calls >= p->stop_after;
}

static void test_report_sandwich(void **state)
{
	(void)state;
	struct sl_dataset train, test;
	struct trainer *t = trained(&train, &test);
	struct certreport_config cfg = certreport_defaults(-2, 0.4, SECTOR_OBJ_PRODUCT);
	cfg.n = 300;
	cfg.floor_starts = 20;
	cfg.image = 3;
	struct certreport r;
	struct progress_log pl = {.monotone = true};
	struct sl_error err;
	if (certreport_run(t->net, &test, &cfg, log_progress, &pl, &r, &err) != SL_OK)
		fail_msg("%s", err.msg);
	assert_true(pl.monotone && pl.calls > 5);
	assert_close(pl.last, CERTREPORT_STAGES, 0);
	/* per layer: floor <= verified norm <= cap (certified caps) */
	assert_int_equal(r.sw.nlayer_floor, 3);
	for (int i = 0; i < 3; i++) {
		const struct certify_layer *l = &r.cert.layer[i];
		print_message("%s: floor %.6f, sigma %.6f, rho %.6f, LMI %d\n", l->name,
			      r.sw.layer_floor[i], l->sigma, l->rho, l->lmi);
		assert_true(r.sw.layer_floor[i] <= l->sigma * (1 + 1e-6));
		assert_true(l->sigma <= l->rho);
		assert_true(l->lmi == CERTIFY_LMI_CERTIFIED);
	}
	/* the network: floor <= sdp <= product */
	double fl = r.sw.floor_L, sdp = r.sw.b[SANDWICH_SDP].L, prod = r.sw.b[SANDWICH_PRODUCT].L;
	print_message("floor %.6f, sdp %.6f, product %.6f\n", fl, sdp, prod);
	assert_true(fl > 0 && fl <= sdp && sdp <= prod * (1 + 1e-9));
	/* the radii are certify's, image by image, and the best is never
	 * below the product's */
	assert_int_equal(r.n, 300);
	double *rad = malloc(sizeof(double) * 300);
	bool *ok = malloc(sizeof(bool) * 300);
	int got;
	assert_int_equal(certify_radii_pairs(t->net, &test, 300, r.best, rad, ok, &got, NULL), SL_OK);
	int correct = 0;
	for (int i = 0; i < 300; i++) {
		assert_true(rad[i] == r.radius[i] && ok[i] == r.correct[i]);
		assert_true(r.radius[i] >= r.radius_product[i]);
		correct += ok[i];
	}
	assert_close(r.clean, correct / 300.0, 1e-12);
	assert_true(r.median >= r.median_product);
	/* the chosen image is the report's; then the first correctly classified
	 * one alone: radius <= the flip's length <= eps, and the two PGD facts
	 * at the bracket's ends */
	assert_true(r.have_image && r.image.index == 3 && r.image.radius == r.radius[3]);
	int k = 0;
	while (!r.correct[k])
		k++;
	cfg.image = 2000 + (uint32_t)k; /* modulo the test set */
	struct certreport_image im;
	assert_int_equal(certreport_image(t->net, &test, &cfg, &r, NULL, NULL, &im, NULL), SL_OK);
	print_message("image %u (label %d, pred %d): radius %.4f (product %.4f), flip eps %.4f "
		      "length %.4f held %.4f, %d attacks\n",
		      im.index, im.label, im.pred, im.radius, im.radius_product, im.flip.eps,
		      im.flip.length, im.flip.held, im.flip.attacks);
	assert_int_equal(im.index, k);
	assert_true(im.radius == r.radius[k] && im.pred == im.label);
	assert_true(isfinite(im.flip.eps) && im.flip.eps > 0);
	assert_true(im.radius <= im.flip.length && im.flip.length <= im.flip.eps);
	bool fl1;
	float x[784];
	int y;
	data_batch(&test, &im.index, 1, x, &y);
	assert_int_equal(bounds_attack_inside(t->net, x, &y, 1, &im.flip.eps, &cfg.flip, &fl1), 1);
	assert_int_equal(bounds_attack_inside(t->net, x, &y, 1, &im.flip.held, &cfg.flip, &fl1), 0);
	free(rad);
	free(ok);
	certreport_free(&r);
	trainer_free(t);
	data_free(&train);
	data_free(&test);
}

/* The hook stops the report at each of its first pieces, and nothing is
 * left to free. */
static void test_report_cancel(void **state)
{
	(void)state;
	struct sl_dataset train, test;
	struct trainer *t = trained(&train, &test);
	struct certreport_config cfg = certreport_defaults(-2, 0.4, SECTOR_OBJ_PRODUCT);
	cfg.n = 100;
	cfg.floor_starts = 5;
	cfg.lmi = false;
	for (int k = 1; k <= 6; k++) {
		struct certreport r;
		struct progress_log pl = {.monotone = true, .stop_after = k};
		struct sl_error err;
		sl_status st = certreport_run(t->net, &test, &cfg, log_progress, &pl, &r, &err);
		if (st != SL_ERR_CANCELLED)
			fail_msg("stop at call %d: %s", k, st == SL_OK ? "ran to the end" : err.msg);
		assert_null(r.best);
		assert_null(r.radius);
	}
	trainer_free(t);
	data_free(&train);
	data_free(&test);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_report_sandwich),
		cmocka_unit_test(test_report_cancel),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
