/*
 * err.h - the one error table of coffer.
 *
 * Every function that can fail returns 0 or a negative CF_E… code and, when the caller passed a
 * non-NULL cf_err, fills it with a message that names what failed (lowercase, the object in
 * quotes, the cause appended, an optional "hint: …"). The code is for programs, the message is
 * for people. CF_ERRNO_MAP is the only list of codes: it generates the enum and cf_strerror().
 *
 * Out of memory is CF_ENOMEM, from every function that allocates: no path goes on silently with
 * a default or a random value instead. A system call's errno becomes a code here
 * (cf_err_from_errno) and the message keeps its text (cf_err_sys); no function returns an errno
 * value or -1 with errno set. A predicate (1 or 0), a comparison (-1, 0, 1), a lookup that
 * answers a value, an index, -1 or NULL for "none", a length-or-code return, and a constructor
 * that can fail only for lack of memory (NULL) state so in their headers and cannot fail
 * otherwise. docs/internals/errors.md has the whole convention.
 *
 * A layer above may need a finer answer than the code: an S3 front end must tell
 * SignatureDoesNotMatch from AccessDenied, both of which fail authentication. That layer puts
 * its own value in `detail` (src/s3 stores a cf_s3_error there, the S3 error code to answer
 * with; see s3/error.h); core never reads it, and cf_err_set()/cf_err_sys() reset it to 0, so
 * a detail left by an earlier failure never sticks to a new one. When detail is 0 the code
 * alone decides, through the one table from codes to S3 errors (cf_s3_error_for). A client of a
 * remote server records the server's answer in `answer` the same way.
 */
#ifndef CF_CORE_ERR_H
#define CF_CORE_ERR_H

#include <stddef.h>

#define CF_ERRNO_MAP(XX)                                                                                     \
    XX(INVAL, "invalid argument")                                                                            \
    XX(NOMEM, "out of memory")                                                                               \
    XX(IO, "input/output error")                                                                             \
    XX(NOTFOUND, "not found")                                                                                \
    XX(EXISTS, "already exists")                                                                             \
    XX(NOTEMPTY, "not empty")                                                                                \
    XX(CORRUPT, "stored data is corrupt")                                                                    \
    XX(NOSPACE, "no space left")                                                                             \
    XX(TOOBIG, "too large")                                                                                  \
    XX(AUTH, "authentication failed")                                                                        \
    XX(DENIED, "access denied")                                                                              \
    XX(RANGE, "range not satisfiable")                                                                       \
    XX(DIGEST, "checksum mismatch")                                                                          \
    XX(PRECOND, "precondition failed")                                                                       \
    XX(NOTSUP, "not supported")                                                                              \
    XX(AGAIN, "temporarily unavailable, try again")                                                          \
    XX(UNREADABLE, "a source file cannot be read")                                                           \
    XX(INTERNAL, "internal error")

typedef enum cf_errcode {
    CF_OK = 0,
#define CF_ERR_ENUM_(name, msg) CF_E##name,
    CF_ERR_FIRST_ = -1000,
    CF_ERRNO_MAP(CF_ERR_ENUM_)
#undef CF_ERR_ENUM_
        CF_ERR_LAST_
} cf_errcode;

/* A remote server's answer behind a failure, for a caller that must tell two failures of one
 * code apart by what the server said (a missing bucket from a missing object, refused
 * credentials from a wrong encryption key). The client layer that talked to the server fills
 * it (s3client/: the HTTP status and the <Code> of S3's error body); core never reads it. */
typedef struct cf_err_answer {
    long status;   /* the HTTP status; 0 when no answer was involved */
    char code[64]; /* the error code the answer named; "" when none */
} cf_err_answer;

typedef struct cf_err {
    int code;      /* 0 or a CF_E… code */
    int detail;    /* 0, or a finer reason in the vocabulary of the layer that set it (above) */
    char msg[512]; /* NUL-terminated human message; "" when code is 0 */
    /* Reset with detail; kept when the struct is copied, and by a rewording that keeps the
     * cause (cf_err_reword). */
    cf_err_answer answer;
} cf_err;

/* Static text for a code; never NULL. */
const char *cf_strerror(int code);

/* Fills err (may be NULL) and returns code, so that `return cf_err_set(err, CF_EIO, …);` works. */
int cf_err_set(cf_err *err, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Like cf_err_set, appending ": strerror(errnum)". */
int cf_err_sys(cf_err *err, int code, int errnum, const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* Maps an errno value to the closest CF_E… code. */
int cf_err_from_errno(int errnum);

void cf_err_clear(cf_err *err);

/* Like cf_err_set, keeping err's answer: for a message that names the same failure in the
 * caller's words ("no snapshot ns@id" for the S3 client's 404). */
int cf_err_reword(cf_err *err, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
