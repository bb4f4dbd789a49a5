/*
 * json: the one writer of JSON values that every JSON text of sectorlab goes
 * through (the commands' --json objects, checkpoint headers).
 *
 * What it promises: a string is always valid UTF-8 JSON whatever bytes it was
 * given (quote, backslash and control characters are escaped; each byte that
 * is not part of a well-formed UTF-8 sequence becomes \ufffd, the
 * replacement character); a number is never "nan" or "inf": a value that is
 * not finite is written as null.  It writes to a FILE the caller owns and
 * reports nothing: write errors stay in the stream for the caller to check.
 */
#ifndef SECTORLAB_JSON_H
#define SECTORLAB_JSON_H

#include <stdio.h>

/* s as a JSON string literal, quotes included. */
void json_string(FILE *f, const char *s);

/* A JSON number as text: "%.10g" of v, or "null" when v is not finite.
 * Use it where printf builds the rest of the object:
 *     printf("\"gamma\":%s", json_num(g).s);
 * (the struct lives until the end of the full expression, C11 6.2.4). */
struct json_num {
	char s[32];
};
struct json_num json_num(double v);

#endif
