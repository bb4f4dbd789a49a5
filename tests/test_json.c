/* Tests for json: strings are valid UTF-8 JSON whatever the bytes, numbers
 * are finite or null. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sectorlab/json.h"
#include "testutil.h"

/* json_string(s) as text. */
static char *quoted(const char *s)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	assert_non_null(f);
	json_string(f, s);
	fclose(f);
	return text;
}

static void expect(const char *in, const char *want)
{
	char *got = quoted(in);
	if (strcmp(got, want) != 0)
		fail_msg("json_string of '%s' gave %s, expected %s", in, got, want);
	free(got);
}

static void test_strings_escape_and_keep_text(void **state)
{
	(void)state;
	expect("plain", "\"plain\"");
	expect("a\"b\\c", "\"a\\\"b\\\\c\"");
	expect("tab\there\n\x01", "\"tab\\u0009here\\u000a\\u0001\"");
	/* Well-formed UTF-8 (2, 3 and 4 bytes) passes as it is. */
	expect("caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80", "\"caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80\"");
	expect("\xEF\xBF\xBF\xF4\x8F\xBF\xBF", "\"\xEF\xBF\xBF\xF4\x8F\xBF\xBF\"");
}

static void test_invalid_bytes_become_replacement_characters(void **state)
{
	(void)state;
	static const struct {
		const char *in, *want;
	} cases[] = {
		{"m\xFF\xFE.safetensors", "\"m\\ufffd\\ufffd.safetensors\""}, /* never valid */
		{"\xC3", "\"\\ufffd\""},                     /* cut short at the end */
		{"\xE2\x82x", "\"\\ufffd\\ufffdx\""},        /* cut short before text */
		{"\xC0\xAF", "\"\\ufffd\\ufffd\""},          /* overlong '/' */
		{"\xE0\x80\xAF", "\"\\ufffd\\ufffd\\ufffd\""}, /* overlong, 3 bytes */
		{"\xED\xA0\x80", "\"\\ufffd\\ufffd\\ufffd\""}, /* a UTF-16 surrogate */
		{"\xF4\x90\x80\x80", "\"\\ufffd\\ufffd\\ufffd\\ufffd\""}, /* above U+10FFFF */
		{"\x80ok", "\"\\ufffdok\""},                 /* a lone continuation byte */
		{"latin-1 \xE9t\xE9", "\"latin-1 \\ufffdt\\ufffd\""},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
		expect(cases[i].in, cases[i].want);
}

static void test_numbers_finite_or_null(void **state)
{
	(void)state;
	assert_string_equal(json_num(NAN).s, "null");
	assert_string_equal(json_num(-NAN).s, "null");
	assert_string_equal(json_num(INFINITY).s, "null");
	assert_string_equal(json_num(-INFINITY).s, "null");
	assert_string_equal(json_num(0.5).s, "0.5");
	assert_string_equal(json_num(-2).s, "-2");
	/* Extremes keep their meaning: no fixed decimals that become 0 or run long. */
	assert_string_equal(json_num(1e300).s, "1e+300");
	assert_string_equal(json_num(3e-12).s, "3e-12");
	assert_string_equal(json_num(4.9406564584124654e-324).s,
			    "4.940656458e-324");
	assert_string_equal(json_num(1.8364120367).s, "1.836412037");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_strings_escape_and_keep_text),
		cmocka_unit_test(test_invalid_bytes_become_replacement_characters),
		cmocka_unit_test(test_numbers_finite_or_null),
	};
	return cmocka_run_group_tests_name("json", tests, NULL, NULL);
}
