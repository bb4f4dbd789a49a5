/*
 * Tests for the gallery's work, without a terminal: the grid is what
 * attack_sweep keeps for each image alone, with probabilities and norms;
 * the sweep is attack_sweep's; the step-through ends on the grid's
 * adversarial; the export writes the grid's files; work in progress is
 * cancelled and leaves the results shown as they were.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "sectorlab/gallery.h"
#include "sectorlab/rng.h"
#include "sectorlab/train.h"
#include "testutil.h"

struct fixture {
	struct sl_dataset test;
	struct gallery *g;
	char *dir;
};

static int setup(void **state)
{
	static struct fixture f;
	memset(&f, 0, sizeof f);
	if (data_load(DATA_MNIST, tu_sample_data(), false, &f.test, NULL) != SL_OK)
		return -1;
	struct arch arch = train_config_default().arch; /* the paper's MLP */
	if (arch_fit_input(&arch, (struct nn_shape){1, 28, 28}, NULL) != SL_OK ||
	    gallery_new(&arch, &f.test, &f.g, NULL) != SL_OK)
		return -1;
	struct sl_rng rng;
	rng_seed(&rng, 5);
	nn_init_glorot(gallery_net(f.g), &rng);
	f.dir = tu_tmpdir();
	*state = &f;
	return f.dir ? 0 : -1;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	gallery_free(f->g);
	data_free(&f->test);
	tu_rmrf(f->dir);
	free(f->dir);
	return 0;
}

/* Poll until the work has ended (at most 120 s); its final status. */
static struct task_status wait_done(struct gallery *g, enum gallery_work want)
{
	struct task_status st;
	time_t start = time(NULL);
	for (;;) {
		assert_int_equal(gallery_poll(g, &st), want);
		if (st.state != TASK_RUNNING)
			return st;
		if (time(NULL) - start > 120)
			fail_msg("gallery work %d never ended", want);
		struct timespec ts = {0, 5 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
}

struct kept {
	float adv[784];
	int pred;
};

static sl_status keep(void *ctx, const struct attack_progress *p, struct sl_error *err)
{
	struct kept *k = ctx;
	(void)err;
	memcpy(k->adv, p->view->adv, sizeof k->adv);
	k->pred = p->view->pred_adv[0];
	return SL_OK;
}

static void test_grid_sweep_trace_export(void **state)
{
	struct fixture *f = *state;
	struct gallery *g = f->g;
	struct nn_net *net = gallery_net(g);
	assert_null(gallery_grid(g));
	/* its own copy of the test set */
	assert_ptr_not_equal(gallery_test_set(g), &f->test);
	assert_ptr_not_equal(gallery_test_set(g)->pixels, f->test.pixels);
	struct attack_recipe r = attack_recipe_pgd(ATTACK_NORM_INF, 0.1f, 10);
	r.random_start = true;
	r.restarts = 2;
	assert_int_equal(gallery_start_grid(g, &r, 1998, 4, NULL), SL_OK);
	struct sl_error err;
	/* one piece of work at a time */
	assert_int_equal(gallery_start_sweep(g, &r, 100, &err), SL_ERR_ARG);
	assert_true(gallery_busy(g));
	assert_int_equal(wait_done(g, GALLERY_GRID).state, TASK_DONE);
	assert_false(gallery_busy(g));
	const struct gallery_grid *grid = gallery_grid(g);
	assert_non_null(grid);
	assert_int_equal(grid->n, 4);
	assert_true(grid->recipe.restarts == 2 && grid->recipe.random_start);
	for (int i = 0; i < 4; i++) {
		const struct gallery_item *it = &grid->item[i];
		assert_int_equal(it->index, (1998 + i) % 2000); /* wraps */
		float x[784];
		int y;
		uint32_t idx = (uint32_t)it->index;
		data_batch(&f->test, &idx, 1, x, &y);
		assert_memory_equal(it->x0, x, sizeof x);
		assert_int_equal(it->label, y);
		/* what attack_sweep keeps for the image alone */
		struct sl_dataset view;
		struct attack_result res;
		struct kept k;
		assert_int_equal(data_view(&f->test, idx, 1, &view, NULL), SL_OK);
		assert_int_equal(attack_sweep(net, &view, 1, &r, &r.eps, 1, keep, &k, &res, NULL),
				 SL_OK);
		assert_memory_equal(it->adv, k.adv, sizeof k.adv);
		assert_int_equal(it->pred_adv, k.pred);
		double sum = 0;
		int top[3];
		for (int c = 0; c < 10; c++)
			sum += it->p_adv[c];
		assert_close(sum, 1, 1e-5);
		gallery_top(it->p_clean, 10, 3, top);
		assert_int_equal(top[0], it->pred_clean);
		assert_true(it->p_clean[top[0]] >= it->p_clean[top[1]] &&
			    it->p_clean[top[1]] >= it->p_clean[top[2]]);
		assert_true(top[1] != top[0] && top[2] != top[0] && top[2] != top[1]);
		assert_true(it->linf <= 0.1 + 1e-6 && it->linf > 0);
		assert_true(it->l2 >= it->linf);
	}

	/* The sweep is attack_sweep over the first n images. */
	struct attack_recipe fgsm = attack_recipe_fgsm(0.05f);
	assert_int_equal(gallery_start_sweep(g, &fgsm, 300, NULL), SL_OK);
	assert_int_equal(wait_done(g, GALLERY_SWEEP).state, TASK_DONE);
	const struct gallery_sweep *sw = gallery_sweep(g);
	assert_non_null(sw);
	struct attack_result want;
	assert_int_equal(attack_sweep(net, &f->test, 300, &fgsm, &fgsm.eps, 1, NULL, NULL, &want,
				      NULL), SL_OK);
	assert_int_equal(sw->result.n, 300);
	assert_int_equal(sw->result.clean_correct, want.clean_correct);
	assert_int_equal(sw->result.robust_correct, want.robust_correct);
	assert_true(sw->result.l2_mean == want.l2_mean);
	assert_true(sw->recipe.kind == ATTACK_FGSM);
	/* the grid stays as it was */
	assert_ptr_equal(gallery_grid(g), grid);

	/* The step-through of item 2 ends on its adversarial in the grid. */
	assert_int_equal(gallery_start_trace(g, 2, NULL), SL_OK);
	assert_int_equal(wait_done(g, GALLERY_TRACE).state, TASK_DONE);
	int item;
	const struct attack_trace *t = gallery_trace(g, &item);
	assert_non_null(t);
	assert_int_equal(item, 2);
	assert_int_equal(t->n, 2 * 11);
	assert_memory_equal(t->adv, grid->item[2].adv, sizeof(float) * 784);
	assert_int_equal(t->pred_adv, grid->item[2].pred_adv);
	assert_int_equal(gallery_start_trace(g, 4, &err), SL_ERR_ARG);

	/* The export writes the grid shown, in a directory it makes. */
	char *dir = tu_path(f->dir, "export");
	assert_int_equal(gallery_start_export(g, dir, NULL), SL_OK);
	assert_int_equal(wait_done(g, GALLERY_EXPORT).state, TASK_DONE);
	const char *where;
	const struct export_summary *sum = gallery_exported(g, &where);
	assert_non_null(sum);
	assert_string_equal(where, dir);
	assert_int_equal(sum->files, 4);
	assert_int_equal(access(sum->grid, F_OK), 0);
	assert_non_null(strstr(sum->grid, "grid_pgd_linf_eps0.1.png"));
	char name[256], *path;
	const struct gallery_item *it = &grid->item[0];
	snprintf(name, sizeof name, "01998_true%d_pred%d_adv%d_pgd_linf_eps0.1_pert.png", it->label,
		 it->pred_clean, it->pred_adv);
	path = tu_path(dir, name);
	assert_int_equal(access(path, F_OK), 0);
	free(path);
	/* a file where the directory should be */
	path = tu_path(dir, name);
	assert_int_equal(gallery_start_export(g, path, NULL), SL_OK);
	struct task_status st = wait_done(g, GALLERY_EXPORT);
	assert_int_equal(st.state, TASK_FAILED);
	assert_non_null(strstr(st.message, "Not a directory"));
	free(path);
	free(dir);
}

/* Esc's path: long work cancelled ends as cancelled, and what was shown
 * stays; bad requests are refused with a reason. */
static void test_cancel_and_refusals(void **state)
{
	struct fixture *f = *state;
	struct gallery *g = f->g;
	struct attack_recipe fgsm = attack_recipe_fgsm(0.1f);
	assert_int_equal(gallery_start_grid(g, &fgsm, 0, 3, NULL), SL_OK);
	assert_int_equal(wait_done(g, GALLERY_GRID).state, TASK_DONE);
	const struct gallery_grid *grid = gallery_grid(g);
	struct attack_recipe slow = attack_recipe_pgd(ATTACK_NORM_2, 1.0f, 100000);
	assert_int_equal(gallery_start_grid(g, &slow, 100, 16, NULL), SL_OK);
	gallery_cancel(g);
	struct task_status st = wait_done(g, GALLERY_GRID);
	assert_int_equal(st.state, TASK_CANCELLED);
	assert_ptr_equal(gallery_grid(g), grid);
	assert_int_equal(gallery_grid(g)->item[0].index, 0);
	assert_true(gallery_grid(g)->recipe.kind == ATTACK_FGSM);
	/* the final status stays */
	assert_int_equal(gallery_poll(g, &st), GALLERY_GRID);
	assert_int_equal(st.state, TASK_CANCELLED);
	struct sl_error err;
	struct attack_recipe bad = attack_recipe_fgsm(0.1f);
	bad.steps = 5;
	assert_int_equal(gallery_start_grid(g, &bad, 0, 3, &err), SL_ERR_ARG);
	assert_int_equal(gallery_start_grid(g, &fgsm, 0, GALLERY_MAX_SHOWN + 1, &err), SL_ERR_ARG);
	assert_int_equal(gallery_start_sweep(g, &bad, 10, &err), SL_ERR_ARG);
	assert_false(gallery_busy(g));
}

static void test_wrong_network(void **state)
{
	struct fixture *f = *state;
	struct arch arch;
	assert_int_equal(arch_parse("100-10", &arch, NULL), SL_OK);
	assert_int_equal(arch_fit_input(&arch, (struct nn_shape){1, 10, 10}, NULL), SL_OK);
	struct gallery *g;
	struct sl_error err;
	assert_int_equal(gallery_new(&arch, &f->test, &g, &err), SL_ERR_ARG);
	assert_non_null(strstr(err.msg, "784 values"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_grid_sweep_trace_export, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cancel_and_refusals, setup, teardown),
		cmocka_unit_test_setup_teardown(test_wrong_network, setup, teardown),
	};
	return cmocka_run_group_tests_name("gallery", tests, NULL, NULL);
}
