/* Tests for settings files: the format config.h promises, every malformed
 * case with its file and line, and limits. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sectorlab/config.h"
#include "testutil.h"

static struct config parse_ok(const char *text)
{
	struct config c;
	struct sl_error err;
	if (config_parse(text, strlen(text), "t.conf", &c, &err) != SL_OK)
		fail_msg("'%s': %s", text, err.msg);
	return c;
}

static void test_settings_comments_and_blanks(void **state)
{
	(void)state;
	struct config c = parse_ok("# a recipe\n"
				   "\n"
				   "mode = spnorm\n"
				   "  nu=-2   # Theorem 3\n"
				   "delta\t=\t0.4\r\n"
				   "out = runs/a#1.safetensors\n"
				   "   # indented comment\n"
				   "json = yes");
	assert_int_equal(c.n, 5);
	assert_string_equal(c.entry[0].key, "mode");
	assert_string_equal(c.entry[0].value, "spnorm");
	assert_int_equal(c.entry[0].line, 3);
	assert_string_equal(config_get(&c, "nu"), "-2");
	assert_string_equal(config_get(&c, "delta"), "0.4"); /* \r removed */
	/* '#' inside a value (no blank before it) is part of the value. */
	assert_string_equal(config_get(&c, "out"), "runs/a#1.safetensors");
	assert_string_equal(config_get(&c, "json"), "yes");
	assert_int_equal(c.entry[4].line, 8);
	assert_null(config_get(&c, "epochs"));
	config_free(&c);

	c = parse_ok("");
	assert_int_equal(c.n, 0);
	config_free(&c);
	c = parse_ok("\n\n# only comments\n");
	assert_int_equal(c.n, 0);
	config_free(&c);
	/* A value may contain '=' and blanks inside. */
	c = parse_ok("eps = 0.1, 0.2 = x\n");
	assert_string_equal(config_get(&c, "eps"), "0.1, 0.2 = x");
	config_free(&c);
}

static void test_malformed_files_name_the_line(void **state)
{
	(void)state;
	static const struct {
		const char *text, *says;
	} cases[] = {
		{"epochs 10\n", "t.conf line 1: expected 'key = value'"},
		{"mode = l2\n= 3\n", "t.conf line 2: a setting with no key"},
		{"\n\nepochs =\n", "t.conf line 3: 'epochs' has no value"},
		{"Epochs = 1\n", "'Epochs' is not"},
		{"data dir = x\n", "'data dir' is not"},
		{"--epochs = 1\n", "without dashes ('epochs')"},
		{"seed = 1\nseed = 2\n", "line 2: 'seed' is already set on line 1"},
		{"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa = 1",
		 "longer than 64"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct config c;
		struct sl_error err;
		if (config_parse(cases[i].text, strlen(cases[i].text), "t.conf", &c, &err) ==
		    SL_OK)
			fail_msg("'%s' was accepted", cases[i].text);
		if (!strstr(err.msg, cases[i].says))
			fail_msg("'%s': '%s' does not say '%s'", cases[i].text, err.msg,
				 cases[i].says);
		assert_int_equal(c.n, 0);
		assert_null(c.entry);
	}
	/* A NUL byte: not a text file. */
	const char bin[] = "mode = l2\nx\0y = 1\n";
	struct config c;
	struct sl_error err;
	assert_int_equal(config_parse(bin, sizeof bin - 1, "t.conf", &c, &err), SL_ERR_FORMAT);
	assert_non_null(strstr(err.msg, "line 2: a NUL byte"));
}

static void test_limits_and_files(void **state)
{
	const char *dir = *state;
	struct config c;
	struct sl_error err;
	/* Too large: refused before any parsing. */
	size_t big = (size_t)CONFIG_MAX_BYTES + 10;
	char *text = malloc(big);
	assert_non_null(text);
	memset(text, '#', big);
	assert_int_equal(config_parse(text, big, "big.conf", &c, &err), SL_ERR_TOO_LARGE);
	char *path = tu_path(dir, "big.conf");
	assert_int_equal(tu_write_file(path, text, big), 0);
	assert_int_equal(config_read(path, &c, &err), SL_ERR_TOO_LARGE);
	free(text);
	free(path);
	/* Missing file. */
	path = tu_path(dir, "none.conf");
	assert_int_equal(config_read(path, &c, &err), SL_ERR_IO);
	assert_non_null(strstr(err.msg, "No such file"));
	free(path);
	/* Many settings: the table grows. */
	path = tu_path(dir, "many.conf");
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	for (int i = 0; i < 100; i++)
		fprintf(f, "key%d = %d\n", i, i * i);
	fclose(f);
	assert_int_equal(config_read(path, &c, &err), SL_OK);
	assert_int_equal(c.n, 100);
	assert_string_equal(config_get(&c, "key99"), "9801");
	assert_non_null(strstr(c.name, "many.conf"));
	config_free(&c);
	free(path);
}

static void test_yes_and_no(void **state)
{
	(void)state;
	const char *yes[] = {"true", "yes", "on", "1"}, *no[] = {"false", "no", "off", "0"};
	for (int i = 0; i < 4; i++) {
		assert_int_equal(config_bool(yes[i]), 1);
		assert_int_equal(config_bool(no[i]), 0);
	}
	assert_int_equal(config_bool("maybe"), -1);
	assert_int_equal(config_bool("TRUE"), -1);
	assert_int_equal(config_bool(""), -1);
}

/* What editors and careful users write: a byte-order mark, quoted values
 * (with blanks or '#' inside), and what is refused with its reason. */
static void test_bom_quotes_and_reasons(void **state)
{
	const char *dir = *state;
	struct config c = parse_ok("\xEF\xBB\xBF"
				   "epochs = 3\n"
				   "out = \"my runs/a #1.safetensors\"  # quoted\n"
				   "log = 'x.csv'\n"
				   "data-dir = \" spaced \"\n"
				   "model = it\"s\n");
	assert_int_equal(c.n, 5);
	assert_string_equal(c.entry[0].key, "epochs"); /* not "\xEF\xBB\xBFepochs" */
	assert_string_equal(config_get(&c, "out"), "my runs/a #1.safetensors");
	assert_string_equal(config_get(&c, "log"), "x.csv");
	assert_string_equal(config_get(&c, "data-dir"), " spaced ");
	assert_string_equal(config_get(&c, "model"), "it\"s"); /* not quoted: kept */
	config_free(&c);

	static const struct {
		const char *text, *says;
	} bad[] = {
		{"out = \"runs/a\n", "t.conf line 1: the value of 'out' opens a quote (\")"},
		{"out = 'runs/a\"\n", "opens a quote (')"},
		{"out = \"\"\n", "t.conf line 1: 'out' has no value"},
		{"out = \"\n", "opens a quote"},
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		struct sl_error err;
		if (config_parse(bad[i].text, strlen(bad[i].text), "t.conf", &c, &err) == SL_OK ||
		    !strstr(err.msg, bad[i].says))
			fail_msg("'%s' gave '%s'", bad[i].text, err.msg);
	}
	/* A directory is refused as one, not as a failed read. */
	struct sl_error err;
	assert_int_equal(config_read(dir, &c, &err), SL_ERR_ARG);
	assert_non_null(strstr(err.msg, "is a directory"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_settings_comments_and_blanks),
		cmocka_unit_test(test_malformed_files_name_the_line),
		cmocka_unit_test_setup_teardown(test_limits_and_files, tu_setup_tmpdir,
						tu_teardown_tmpdir),
		cmocka_unit_test(test_yes_and_no),
		cmocka_unit_test_setup_teardown(test_bom_quotes_and_reasons, tu_setup_tmpdir,
						tu_teardown_tmpdir),
	};
	return cmocka_run_group_tests_name("config", tests, NULL, NULL);
}
