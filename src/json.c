/* json: JSON strings that are valid UTF-8, numbers that are finite or null. */
#include "sectorlab/json.h"

#include <math.h>
#include <stddef.h>

/* Length of the well-formed UTF-8 sequence at p (1 to 4), or 0 when the byte
 * at p does not start one (RFC 3629: no overlong forms, no surrogates,
 * nothing above U+10FFFF). */
static int utf8_length(const unsigned char *p)
{
	unsigned char c = p[0];
	if (c < 0x80)
		return 1;
	int n;
	unsigned char lo = 0x80, hi = 0xBF; /* range of the second byte */
	if (c >= 0xC2 && c <= 0xDF) {
		n = 2;
	} else if (c >= 0xE0 && c <= 0xEF) {
		n = 3;
		if (c == 0xE0)
			lo = 0xA0; /* overlong */
		else if (c == 0xED)
			hi = 0x9F; /* surrogates */
	} else if (c >= 0xF0 && c <= 0xF4) {
		n = 4;
		if (c == 0xF0)
			lo = 0x90; /* overlong */
		else if (c == 0xF4)
			hi = 0x8F; /* above U+10FFFF */
	} else {
		return 0;
	}
	if (p[1] < lo || p[1] > hi)
		return 0;
	for (int i = 2; i < n; i++)
		if (p[i] < 0x80 || p[i] > 0xBF) /* also stops at the NUL */
			return 0;
	return n;
}

void json_string(FILE *f, const char *s)
{
	fputc('"', f);
	for (const unsigned char *p = (const unsigned char *)s; *p;) {
		if (*p == '"' || *p == '\\') {
			fputc('\\', f);
			fputc(*p++, f);
			continue;
		}
		if (*p < 0x20) {
			fprintf(f, "\\u%04x", *p++);
			continue;
		}
		int n = utf8_length(p);
		if (n == 0) {
			fputs("\\ufffd", f);
			p++;
			continue;
		}
		fwrite(p, 1, (size_t)n, f);
		p += n;
	}
	fputc('"', f);
}

struct json_num json_num(double v)
{
	struct json_num n;
	if (isfinite(v))
		snprintf(n.s, sizeof n.s, "%.10g", v);
	else
		snprintf(n.s, sizeof n.s, "null");
	return n;
}
