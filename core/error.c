/* Error messages carried with a status (include/mspt/error.h). */
#include <mspt/error.h>

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

mspt_status mspt_error_set(mspt_error *err, mspt_status status,
                           const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
        err->status = status;
    }
    return status;
}

mspt_status mspt_error_prefix(mspt_error *err, const char *fmt, ...)
{
    if (!err)
        return MSPT_ERR_RUNTIME;
    char prefix[512], old[sizeof err->msg];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, err->msg, sizeof old);
    if (snprintf(err->msg, sizeof err->msg, "%s: %s", prefix, old) >=
        (int)sizeof err->msg)
        memcpy(err->msg + sizeof err->msg - 4, "...", 4); /* cut, but say so */
    return err->status;
}
