/* test_caps: the caps description, its preview and resolution (one
 * computation), the objective carried through training and checkpoints. */
#include "testutil.h"

#include <math.h>
#include <string.h>

#include "sectorlab/caps.h"
#include "sectorlab/certify.h"
#include "sectorlab/checkpoint.h"
#include "sectorlab/train.h"

/* DESIGN.md §1: the MNIST network at (-2, 0.4) gets (0.272, 0.823, 0.616),
 * each trained CERTIFY_CAP_MARGIN below its Theorem 4 bound. */
/* A built-in model's architecture (static storage, one per model). */
static const struct arch *model_arch_of(enum model_id id)
{
	static struct arch archs[MODEL_COUNT];
	model_get(id, &archs[id]);
	return &archs[id];
}

static void test_paper_product(void **state)
{
	(void)state;
	struct caps_spec spec = caps_spec_paper();
	assert_int_equal(spec.source, CAPS_CERTIFIED);
	assert_true(spec.nu == CAPS_PAPER_NU && spec.delta == CAPS_PAPER_DELTA);
	struct caps_plan p;
	assert_int_equal(caps_preview(&spec, model_arch_of(MODEL_MLP), &p, NULL), SL_OK);
	assert_true(p.feasible);
	assert_true(p.certified);
	assert_int_equal(p.nrho, 3);
	const double want[3] = {0.272, 0.823, 0.616};
	for (int i = 0; i < 3; i++) {
		assert_close(p.bound[i], want[i], 1e-3);
		assert_close(p.rho[i], p.bound[i] * (1 - CERTIFY_CAP_MARGIN), 1e-15);
		assert_true(p.rho[i] < p.bound[i]);
	}
	assert_close(p.alloc.rho_product, 0.138, 1e-3);
	assert_non_null(strstr(p.what, "product objective"));
}

/* The objective is part of the spec: min gives equal caps (0.4544 each). */
static void test_min_objective(void **state)
{
	(void)state;
	struct caps_spec spec = caps_spec_certified(CAPS_PAPER_NU, CAPS_PAPER_DELTA,
						    SECTOR_OBJ_MIN);
	struct caps_plan p;
	assert_int_equal(caps_resolve(&spec, model_arch_of(MODEL_MLP), &p, NULL), SL_OK);
	for (int i = 0; i < 3; i++)
		assert_close(p.bound[i], 0.4544, 1e-4);
	assert_non_null(strstr(p.what, "min objective"));
}

/* Preview and resolve are one computation: equal numbers when feasible;
 * when not, resolve fails with the preview's reason. */
static void test_preview_is_resolve(void **state)
{
	(void)state;
	struct caps_spec specs[] = {
		caps_spec_paper(),
		caps_spec_certified(-3, 0.4, SECTOR_OBJ_MIN),
		caps_spec_certified(-0.4, 4, SECTOR_OBJ_PRODUCT), /* Theorem 4 infeasible */
		caps_spec_certified(1, 0.4, SECTOR_OBJ_PRODUCT),  /* not a sector */
	};
	for (size_t k = 0; k < sizeof specs / sizeof specs[0]; k++) {
		for (int m = 0; m < 2; m++) {
			enum model_id model = m ? MODEL_ALEXNET_LITE : MODEL_MLP;
			struct arch arch;
			model_get(model, &arch);
			struct caps_plan p, r;
			struct sl_error err;
			assert_int_equal(caps_preview(&specs[k], &arch, &p, NULL), SL_OK);
			sl_status st = caps_resolve(&specs[k], &arch, &r, &err);
			assert_int_equal(st, p.status);
			assert_int_equal(p.feasible, st == SL_OK);
			if (st != SL_OK) {
				assert_string_equal(err.msg, p.why);
				continue;
			}
			assert_int_equal(p.nrho, model_weighted_count(model));
			assert_memory_equal(p.rho, r.rho, sizeof p.rho);
		}
	}
}

static void test_authors_and_manual(void **state)
{
	(void)state;
	struct caps_spec spec = caps_spec_paper();
	spec.source = CAPS_AUTHORS;
	struct caps_plan p;
	assert_int_equal(caps_resolve(&spec, model_arch_of(MODEL_MLP), &p, NULL), SL_OK);
	assert_false(p.certified);
	assert_int_equal(p.nrho, 3);
	assert_close(p.bound[0], 1.8, 1e-12);
	assert_close(p.bound[2], 0.9204, 1e-12);
	assert_close(p.rho[0], 1.8 * (1 - CERTIFY_CAP_MARGIN), 1e-12);
	assert_non_null(strstr(p.note, "NOT certified"));

	double rho[3] = {0.5, 0.6, 0.7};
	spec = caps_spec_manual(rho, 3);
	assert_int_equal(caps_resolve(&spec, model_arch_of(MODEL_MLP), &p, NULL), SL_OK);
	assert_false(p.certified);
	assert_memory_equal(p.bound, rho, sizeof rho);
	struct sl_error err;
	assert_int_equal(caps_resolve(&spec, model_arch_of(MODEL_ALEXNET_LITE), &p, &err), SL_ERR_ARG);
	assert_non_null(strstr(err.msg, "5 caps"));
	rho[1] = NAN;
	spec = caps_spec_manual(rho, 3);
	assert_int_equal(caps_resolve(&spec, model_arch_of(MODEL_MLP), &p, &err), SL_ERR_ARG);
}

static void test_names(void **state)
{
	(void)state;
	enum sector_objective o;
	struct sl_error err;
	assert_int_equal(caps_objective_parse("min", &o, NULL), SL_OK);
	assert_int_equal(o, SECTOR_OBJ_MIN);
	assert_int_equal(caps_objective_parse("product", &o, NULL), SL_OK);
	assert_int_equal(o, SECTOR_OBJ_PRODUCT);
	assert_int_equal(caps_objective_parse("Min", &o, &err), SL_ERR_ARG);
	assert_non_null(strstr(err.msg, "product or min"));
	for (int s = CAPS_CERTIFIED; s <= CAPS_MANUAL; s++) {
		enum caps_source back;
		assert_int_equal(caps_source_parse(caps_source_name((enum caps_source)s), &back,
						   NULL),
				 SL_OK);
		assert_int_equal(back, s);
	}
	enum caps_source src;
	assert_int_equal(caps_source_parse("theirs", &src, &err), SL_ERR_ARG);
}

/* What caps_meta writes, caps_spec_from_info reads back whole. */
static void round_trip(const struct caps_spec *spec)
{
	struct caps_plan p;
	assert_int_equal(caps_resolve(spec, model_arch_of(MODEL_MLP), &p, NULL), SL_OK);
	struct caps_meta cm;
	caps_meta(&p, &cm);
	char *keys[CAPS_META_N], *values[CAPS_META_N];
	for (int i = 0; i < CAPS_META_N; i++) {
		keys[i] = (char *)CAPS_META_KEYS[i];
		values[i] = cm.value[i];
	}
	struct checkpoint_info info = {.nmeta = CAPS_META_N, .keys = keys, .values = values};
	struct caps_spec back;
	assert_int_equal(caps_spec_from_info(&info, &back, NULL), SL_OK);
	assert_int_equal(back.source, spec->source);
	if (spec->source == CAPS_CERTIFIED) {
		assert_true(back.nu == spec->nu && back.delta == spec->delta);
		assert_int_equal(back.objective, spec->objective);
	}
	struct caps_plan q;
	assert_int_equal(caps_resolve(&back, model_arch_of(MODEL_MLP), &q, NULL), SL_OK);
	for (int i = 0; i < p.nrho; i++)
		assert_true((float)q.bound[i] == (float)p.bound[i]);
}

static void test_meta_round_trip(void **state)
{
	(void)state;
	struct caps_spec s = caps_spec_certified(-2.5, 0.3, SECTOR_OBJ_MIN);
	round_trip(&s);
	s = caps_spec_paper();
	round_trip(&s);
	s.source = CAPS_AUTHORS;
	round_trip(&s);
	double rho[3] = {0.1234567891, 0.5, 2};
	s = caps_spec_manual(rho, 3);
	round_trip(&s);
	/* A file from before caps_source: certified at its nu, delta. */
	char *keys[] = {"nu", "delta"}, *values[] = {"-3", "0.5"};
	struct checkpoint_info info = {.nmeta = 2, .keys = keys, .values = values};
	assert_int_equal(caps_spec_from_info(&info, &s, NULL), SL_OK);
	assert_int_equal(s.source, CAPS_CERTIFIED);
	assert_true(s.nu == -3 && s.delta == 0.5 && s.objective == SECTOR_OBJ_PRODUCT);
	values[0] = "minus two";
	struct sl_error err;
	assert_int_equal(caps_spec_from_info(&info, &s, &err), SL_ERR_FORMAT);
}

/* One definition of over the cap: past the bound, no tolerance; NaN is
 * over; no bound, no cap. */
static void test_over_cap(void **state)
{
	(void)state;
	assert_false(certify_over_cap(1.0, 1.0));
	assert_false(certify_over_cap(1.0 - 1e-12, 1.0));
	assert_true(certify_over_cap(1.0 + 1e-12, 1.0));
	assert_true(certify_over_cap(NAN, 1.0));
	assert_false(certify_over_cap(5.0, 0));
	/* What training aims at is never over what it stands for. */
	struct caps_spec spec = caps_spec_paper();
	struct caps_plan p;
	assert_int_equal(caps_resolve(&spec, model_arch_of(MODEL_MLP), &p, NULL), SL_OK);
	for (int i = 0; i < p.nrho; i++)
		assert_false(certify_over_cap((float)p.rho[i] * (1 + 1e-6), p.bound[i]));
}

/* The trainer caps its network at exactly what the preview showed. */
static void test_trainer_uses_resolution(void **state)
{
	(void)state;
	struct sl_dataset train = {0};
	assert_int_equal(data_load(DATA_MNIST, tu_sample_data(), true, &train, NULL), SL_OK);
	struct train_config cfg = train_config_default();
	cfg.holdout = 0;
	cfg.mode = TRAIN_SPNORM;
	cfg.caps = caps_spec_certified(CAPS_PAPER_NU, CAPS_PAPER_DELTA, SECTOR_OBJ_MIN);
	struct caps_plan p;
	assert_int_equal(caps_preview(&cfg.caps, &cfg.arch, &p, NULL), SL_OK);
	struct trainer *t;
	assert_int_equal(trainer_new(&cfg, &train, NULL, &t, NULL), SL_OK);
	assert_true(t->caps.certified);
	for (int j = 0; j < t->nweighted; j++)
		assert_true(t->net->layers[t->weighted[j]].rho == (float)p.rho[j]);
	trainer_free(t);
	data_free(&train);
}

/* A running trainer takes other caps with its weights: the caps, the plan
 * and each layer's scale follow at once (the norm in use is on or under the
 * new cap); caps that do not exist, or a run without caps, are refused and
 * change nothing. */
static void test_trainer_set_caps(void **state)
{
	(void)state;
	struct sl_dataset train = {0};
	assert_int_equal(data_load(DATA_MNIST, tu_sample_data(), true, &train, NULL), SL_OK);
	struct train_config cfg = train_config_default();
	cfg.holdout = 0;
	cfg.mode = TRAIN_SPNORM;
	struct trainer *t;
	assert_int_equal(trainer_new(&cfg, &train, NULL, &t, NULL), SL_OK);
	struct train_step_info info;
	for (int i = 0; i < 3; i++)
		assert_int_equal(trainer_step(t, &info, NULL), SL_OK);
	long step = t->step;
	float w0 = t->net->params[0];
	struct caps_spec spec = caps_spec_certified(-3, 0.4, SECTOR_OBJ_MIN);
	struct caps_plan p;
	assert_int_equal(caps_resolve(&spec, &cfg.arch, &p, NULL), SL_OK);
	assert_int_equal(trainer_set_caps(t, &spec, NULL), SL_OK);
	assert_int_equal(t->step, step);
	assert_true(t->net->params[0] == w0); /* the weights stay */
	assert_true(t->cfg.caps.nu == -3 && t->cfg.caps.objective == SECTOR_OBJ_MIN);
	assert_true(t->caps.certified);
	for (int j = 0; j < t->nweighted; j++) {
		const struct nn_layer *l = &t->net->layers[t->weighted[j]];
		assert_true(l->rho == (float)p.rho[j]);
		assert_true(l->sigma_hat * l->scale <= l->rho * (1 + 1e-6f));
	}
	/* No caps at (-0.4, 4): refused, the caps stay. */
	struct caps_spec none = caps_spec_certified(-0.4, 4, SECTOR_OBJ_PRODUCT);
	struct sl_error err;
	assert_int_not_equal(trainer_set_caps(t, &none, &err), SL_OK);
	assert_non_null(strstr(err.msg, "no certified caps"));
	assert_true(t->cfg.caps.nu == -3);
	assert_true(t->net->layers[t->weighted[0]].rho == (float)p.rho[0]);
	assert_int_equal(trainer_step(t, &info, NULL), SL_OK);
	trainer_free(t);
	cfg.mode = TRAIN_VANILLA;
	assert_int_equal(trainer_new(&cfg, &train, NULL, &t, NULL), SL_OK);
	assert_int_equal(trainer_set_caps(t, &spec, &err), SL_ERR_ARG);
	assert_true(t->net->layers[t->weighted[0]].rho == 0);
	trainer_free(t);
	data_free(&train);
}

static bool stop_at_once(void *ctx)
{
	(*(int *)ctx)++;
	return true;
}

/* The designer's map: a row at delta 0.4 holds caps where the preview has
 * them (same product), none at nu = -0.4 (Theorem 4 refuses wide layers
 * for nu > -0.5), and no sector at nu = 1 (4 delta nu > 1); stop ends a
 * row after the cell it was asked on. */
static void test_map_row(void **state)
{
	(void)state;
	const double nu[4] = {-2, -0.4, 1, -3};
	struct caps_cell cell[4];
	const struct arch *mlp = model_arch_of(MODEL_MLP);
	assert_int_equal(caps_map_row(mlp, SECTOR_OBJ_PRODUCT, 0.4, nu, 4, cell, NULL, NULL, NULL),
			 4);
	assert_int_equal(cell[0].kind, CAPS_CELL_CAPS);
	assert_close(cell[0].product, 0.137920, 1e-6);
	assert_int_equal(cell[1].kind, CAPS_CELL_NONE);
	assert_int_equal(cell[2].kind, CAPS_CELL_NO_SECTOR);
	assert_int_equal(cell[3].kind, CAPS_CELL_CAPS);
	struct caps_spec spec = caps_spec_certified(-3, 0.4, SECTOR_OBJ_PRODUCT);
	struct caps_plan p;
	assert_int_equal(caps_preview(&spec, mlp, &p, NULL), SL_OK);
	assert_true(cell[3].product == p.alloc.rho_product);
	/* The min objective's product is smaller than the product objective's. */
	struct caps_cell min;
	assert_int_equal(caps_map_row(mlp, SECTOR_OBJ_MIN, 0.4, nu, 1, &min, NULL, NULL, NULL), 1);
	assert_true(min.kind == CAPS_CELL_CAPS && min.product < cell[0].product);
	/* delta 0 is no sector at any nu. */
	assert_int_equal(caps_map_row(mlp, SECTOR_OBJ_PRODUCT, 0, nu, 4, cell, NULL, NULL, NULL), 4);
	for (int k = 0; k < 4; k++)
		assert_int_equal(cell[k].kind, CAPS_CELL_NO_SECTOR);
	int asked = 0;
	assert_int_equal(caps_map_row(mlp, SECTOR_OBJ_PRODUCT, 0.4, nu, 4, cell, stop_at_once,
				      &asked, NULL),
			 1);
	assert_int_equal(asked, 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_paper_product),
		cmocka_unit_test(test_min_objective),
		cmocka_unit_test(test_preview_is_resolve),
		cmocka_unit_test(test_authors_and_manual),
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_meta_round_trip),
		cmocka_unit_test(test_over_cap),
		cmocka_unit_test(test_trainer_uses_resolution),
		cmocka_unit_test(test_trainer_set_caps),
		cmocka_unit_test(test_map_row),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
