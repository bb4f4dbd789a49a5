/*
 * status: errors as values.
 *
 * Every core function that can fail returns an sl_status and, when given a
 * non-NULL struct sl_error, fills it with the code and a sentence naming what
 * went wrong (the file, the field, the value).  The core never prints and never
 * exits; main and the UI decide what to do with an error.
 */
#ifndef SECTORLAB_STATUS_H
#define SECTORLAB_STATUS_H

#include <stddef.h>

/* One table: code, message.  Add new codes here only. */
#define SL_STATUS_TABLE(X)                                         \
	X(SL_OK, "ok")                                             \
	X(SL_ERR_IO, "input/output error")                         \
	X(SL_ERR_FORMAT, "malformed file")                         \
	X(SL_ERR_NOMEM, "out of memory")                           \
	X(SL_ERR_ARG, "invalid argument")                          \
	X(SL_ERR_RANGE, "value out of range")                      \
	X(SL_ERR_NUMERIC, "numerical failure")                     \
	X(SL_ERR_INFEASIBLE, "infeasible")                         \
	X(SL_ERR_TOO_LARGE, "problem too large")                   \
	X(SL_ERR_CANCELLED, "cancelled")                           \
	X(SL_ERR_UNSUPPORTED, "not supported")

#define SL_STATUS_ENUM(code, msg) code,
typedef enum { SL_STATUS_TABLE(SL_STATUS_ENUM) SL_STATUS_COUNT } sl_status;
#undef SL_STATUS_ENUM

/* Error detail: the code and one human-readable sentence. */
struct sl_error {
	sl_status code;
	char msg[512];
};

/* The fixed message of a status code ("malformed file"). Never NULL. */
const char *status_str(sl_status code);

/*
 * Record an error: sets err->code and formats err->msg (printf-style); for
 * SL_ERR_NOMEM the message starts "out of memory: " and fmt names what was
 * being allocated.
 * Safe with err == NULL.  Returns code, so callers can write
 *     return status_set(err, SL_ERR_FORMAT, "%s: bad magic %08x", path, m);
 */
sl_status status_set(struct sl_error *err, sl_status code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Reset err to SL_OK with an empty message.  Safe with err == NULL. */
void status_clear(struct sl_error *err);

#endif
