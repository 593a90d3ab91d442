#include "core/err.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

const char *cf_strerror(int code)
{
    switch (code) {
    case CF_OK: return "success";
#define CF_ERR_STR_(name, msg)                                                                               \
    case CF_E##name: return msg;
        CF_ERRNO_MAP(CF_ERR_STR_)
#undef CF_ERR_STR_
    default: return "unknown error";
    }
}

__attribute__((format(printf, 3, 0))) static void vset(cf_err *err, int code, const char *fmt, va_list ap)
{
    err->code = code;
    err->detail = 0;
    err->answer.status = 0;
    err->answer.code[0] = '\0';
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
}

int cf_err_set(cf_err *err, int code, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vset(err, code, fmt, ap);
        va_end(ap);
    }
    return code;
}

int cf_err_sys(cf_err *err, int code, int errnum, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vset(err, code, fmt, ap);
        va_end(ap);
        size_t len = strlen(err->msg);
        snprintf(err->msg + len, sizeof err->msg - len, ": %s", strerror(errnum));
    }
    return code;
}

int cf_err_from_errno(int errnum)
{
    switch (errnum) {
    case ENOENT: return CF_ENOTFOUND;
    case EEXIST: return CF_EEXISTS;
    case ENOTEMPTY: return CF_ENOTEMPTY;
    case ENOMEM: return CF_ENOMEM;
    case ENOSPC:
    case EDQUOT: return CF_ENOSPACE;
    case EACCES:
    case EPERM: return CF_EDENIED;
    case EINVAL: return CF_EINVAL;
    case EAGAIN: return CF_EAGAIN;
    default: return CF_EIO;
    }
}

void cf_err_clear(cf_err *err)
{
    if (err) {
        err->code = 0;
        err->detail = 0;
        err->answer.status = 0;
        err->answer.code[0] = '\0';
        err->msg[0] = '\0';
    }
}

int cf_err_reword(cf_err *err, int code, const char *fmt, ...)
{
    if (err) {
        cf_err_answer kept = err->answer;
        va_list ap;
        va_start(ap, fmt);
        vset(err, code, fmt, ap);
        va_end(ap);
        err->answer = kept;
    }
    return code;
}
