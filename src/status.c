/* status: the message table and error recording (see status.h). */
#include "sectorlab/status.h"

#include <stdarg.h>
#include <stdio.h>

#define SL_STATUS_MSG(code, msg) msg,
static const char *const status_messages[] = {SL_STATUS_TABLE(SL_STATUS_MSG)};
#undef SL_STATUS_MSG

const char *status_str(sl_status code)
{
	if ((unsigned)code >= SL_STATUS_COUNT)
		return "unknown status";
	return status_messages[code];
}

sl_status status_set(struct sl_error *err, sl_status code, const char *fmt, ...)
{
	if (!err)
		return code;
	err->code = code;
	/* Allocation failures all read the same way, whatever the caller wrote. */
	int off = code == SL_ERR_NOMEM ? snprintf(err->msg, sizeof err->msg, "out of memory: ") : 0;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err->msg + off, sizeof err->msg - (size_t)off, fmt, ap);
	va_end(ap);
	return code;
}

void status_clear(struct sl_error *err)
{
	if (!err)
		return;
	err->code = SL_OK;
	err->msg[0] = '\0';
}
