/* Tests for `sectorlab reproduce`: the quick budget of Figure 1 for real
 * (the CSV's shape, every model, accuracy falling with eps, the figures),
 * a resumed run that redoes nothing, seeds and their bands through the
 * test-only budget, and bad usage. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sectorlab/image.h"
#include "testutil.h"

static char out[1 << 16];

static const char *const modes[] = {"vanilla", "l2", "spnorm-certified", "spnorm-authors",
				    "spnorm-lmt"};
#define NMODES 5
static const char *const attacks[][2] = {{"fgm", "2"}, {"pgd", "2"}, {"fgsm", "inf"},
					 {"pgd", "inf"}};

/* Count the fields of a CSV line (no quoting in these files). */
static int fields(const char *line)
{
	int n = 1;
	for (; *line && *line != '\n'; line++)
		n += *line == ',';
	return n;
}

struct row {
	char mode[32], attack[8], norm[8];
	int seed, epochs, n;
	double eps, clean, robust, adv;
};

/* figure,model,dataset,budget,mode,caps_certified,seed,epochs,attack,norm,steps,
 * labels,clip,eps,n,clean_accuracy,robust_accuracy,adversarial_accuracy */
static int parse_rows(char *text, struct row *rows, int max)
{
	char *save, *line = strtok_r(text, "\n", &save);
	assert_non_null(line);
	assert_int_equal(fields(line), 18);
	assert_non_null(strstr(line, "adversarial_accuracy"));
	int n = 0;
	while ((line = strtok_r(NULL, "\n", &save)) != NULL && n < max) {
		assert_int_equal(fields(line), 18);
		struct row *r = &rows[n++];
		char caps[16];
		int k = sscanf(line, "1,mlp,mnist,%*[^,],%31[^,],%15[^,],%d,%d,%7[^,],%7[^,],%*d,"
				     "%*[^,],%*[^,],%lf,%d,%lf,%lf,%lf",
			       r->mode, caps, &r->seed, &r->epochs, r->attack, r->norm, &r->eps,
			       &r->n, &r->clean, &r->robust, &r->adv);
		if (k != 11) { /* caps_certified is empty for vanilla and l2 */
			k = sscanf(line, "1,mlp,mnist,%*[^,],%31[^,],,%d,%d,%7[^,],%7[^,],%*d,"
					 "%*[^,],%*[^,],%lf,%d,%lf,%lf,%lf",
				   r->mode, &r->seed, &r->epochs, r->attack, r->norm, &r->eps, &r->n,
				   &r->clean, &r->robust, &r->adv);
			assert_int_equal(k, 10);
		}
	}
	return n;
}

static void check_png(const char *dir, const char *name)
{
	char *path = tu_path(dir, name);
	struct image img;
	struct sl_error err;
	char title[256];
	assert_int_equal(image_read_png(path, &img, "Title", title, sizeof title, &err), SL_OK);
	assert_true(img.w >= 800 && img.h >= 500);
	assert_non_null(strstr(title, "Figure 1"));
	image_free(&img);
	free(path);
}

static void test_quick_figure1(void **state)
{
	const char *dir = *state;
	char args[4096];
	snprintf(args, sizeof args, "reproduce --figure 1 --budget quick --out %s/q --data-dir %s",
		 dir, tu_sample_data());
	assert_int_equal(tu_run(args, true, out, sizeof out), 0);
	assert_non_null(strstr(out, "[30/30]"));
	char *q = tu_path(dir, "q");
	char *csv_path = tu_path(q, "figure1.csv");
	char *csv = tu_read_file(csv_path, NULL);
	assert_non_null(csv);
	static struct row rows[512];
	int n = parse_rows(csv, rows, 512);
	/* 5 models x 4 attacks x 7 eps, one seed, 10 epochs, 500 images. */
	assert_int_equal(n, NMODES * 4 * 7);
	for (int m = 0; m < NMODES; m++)
		for (int a = 0; a < 4; a++) {
			double first = -1, last = -1, eps_last = -1;
			int count = 0;
			for (int i = 0; i < n; i++) {
				const struct row *r = &rows[i];
				if (strcmp(r->mode, modes[m]) || strcmp(r->attack, attacks[a][0]) ||
				    strcmp(r->norm, attacks[a][1]))
					continue;
				assert_int_equal(r->seed, 1);
				assert_int_equal(r->epochs, 10);
				assert_int_equal(r->n, 500);
				assert_true(r->eps > eps_last);
				if (count == 0) {
					assert_close(r->eps, 0, 0);
					first = r->adv;
					/* No attack at eps 0: accuracy is the clean accuracy. */
					assert_close(r->adv, r->clean, 1e-9);
				}
				last = r->adv;
				eps_last = r->eps;
				count++;
			}
			assert_int_equal(count, 7);
			/* Accuracy falls with eps: never above the clean accuracy at the
			 * end, and well below it for the L-inf attacks at 0.3 on every
			 * network the caps do not hold back much. */
			assert_true(last <= first);
			assert_true(first > 0.3);
			if (a >= 2 && strncmp(modes[m], "spnorm-", 7) != 0)
				assert_true(last < 0.5 * first);
		}
	free(csv);
	free(csv_path);

	char *cert_path = tu_path(q, "figure1-certified.csv");
	char *cert = tu_read_file(cert_path, NULL);
	assert_non_null(cert);
	int lines = 0;
	for (char *p = cert; (p = strchr(p, '\n')) != NULL; p++)
		lines++;
	assert_int_equal(lines, 1 + NMODES * 31);
	assert_non_null(strstr(cert, "spnorm-certified,true,1,10,500,0.50,"));
	free(cert);
	free(cert_path);
	check_png(q, "figure1-l2.png");
	check_png(q, "figure1-linf.png");
	check_png(q, "figure1-certified.png");
	char *certificate = tu_path(q, "certificates/spnorm-certified-seed1.txt");
	char *text = tu_read_file(certificate, NULL);
	assert_non_null(text);
	assert_non_null(strstr(text, "sector certified: yes"));
	free(text);
	free(certificate);
	tu_assert_no_temp_files(q);

	/* Run again: every stage is kept, only the tables and figures are redone. */
	assert_int_equal(tu_run(args, true, out, sizeof out), 0);
	assert_null(strstr(out, "trained "));
	assert_null(strstr(out, "[1/30]"));
	assert_non_null(strstr(out, "wrote "));
	/* The same directory with other settings is refused. */
	snprintf(args, sizeof args, "reproduce --figure 1 --budget test --out %s/q --data-dir %s",
		 dir, tu_sample_data());
	assert_int_equal(tu_run(args, true, out, sizeof out), 2);
	assert_non_null(strstr(out, "other settings"));
	free(q);
}

/* Two seeds through the test budget: every row twice, and bands drawn. */
static void test_seeds(void **state)
{
	const char *dir = *state;
	char args[4096];
	snprintf(args, sizeof args,
		 "reproduce --figure 1 --budget test --seeds 2 --out %s/s --data-dir %s --quiet",
		 dir, tu_sample_data());
	assert_int_equal(tu_run(args, true, out, sizeof out), 0);
	assert_non_null(strstr(out, "[60/60]"));
	char *path = tu_path(dir, "s/figure1.csv");
	char *csv = tu_read_file(path, NULL);
	assert_non_null(csv);
	static struct row rows[512];
	int n = parse_rows(csv, rows, 512);
	assert_int_equal(n, 2 * NMODES * 4 * 4);
	int seed2 = 0;
	for (int i = 0; i < n; i++)
		seed2 += rows[i].seed == 2;
	assert_int_equal(seed2, n / 2);
	free(csv);
	free(path);
	char *s = tu_path(dir, "s");
	check_png(s, "figure1-l2.png");
	free(s);
}

static void test_bad_usage(void **state)
{
	(void)state;
	static const struct {
		const char *args, *says;
	} cases[] = {
		{"reproduce", "--figure 1 or --figure 2 is required"},
		{"reproduce --figure 3", "--figure must be between"},
		{"reproduce --figure 1 --budget huge", "--budget takes quick or full"},
		{"reproduce --figure 1 --hours 2", "--hours applies to --figure 2 --budget full"},
		{"reproduce --figure 2 --budget full --hours 0", "--hours must be in (0, 1000]"},
		{"reproduce --figure 1 --seeds 11", "--seeds must be between"},
		{"reproduce --figure 1 extra", "unexpected argument"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		assert_int_equal(tu_run(cases[i].args, true, out, sizeof out), 2);
		if (!strstr(out, cases[i].says))
			fail_msg("'%s' said:\n%s\nexpected: %s", cases[i].args, out, cases[i].says);
	}
	assert_int_equal(tu_run("reproduce --help", true, out, sizeof out), 0);
	assert_non_null(strstr(out, "--budget"));
}

int main(int argc, char **argv)
{
	(void)argc;
	tu_find_program(argv[0]);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bad_usage),
		cmocka_unit_test_setup_teardown(test_seeds, tu_setup_tmpdir, tu_teardown_tmpdir),
		cmocka_unit_test_setup_teardown(test_quick_figure1, tu_setup_tmpdir,
						tu_teardown_tmpdir),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
