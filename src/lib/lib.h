/*
 * lib.h - what libcoffer's own files share beyond the public header: a repository's logger, so
 * that the snapshotter and bootstrap log where the application asked that repository to.
 */
#ifndef CF_LIB_LIB_H
#define CF_LIB_LIB_H

#include "coffer/coffer.h"
#include "core/log.h"

/* repo's logger (silent when the application gave no log function); lives as long as repo. */
const cf_logger *cf_lib_logger(const coffer_repo *repo);

#endif
