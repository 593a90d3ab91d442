/*
 * fuzz_check.h - the assertion every fuzz target states its postconditions with.
 *
 * abort(), not assert(): the postconditions must hold in release builds of the targets too, and
 * libFuzzer reports an abort as a crash with the input that caused it.
 */
#ifndef CF_FUZZ_CHECK_H
#define CF_FUZZ_CHECK_H

#include <stdlib.h>

#define check(cond)                                                                                          \
    do {                                                                                                     \
        if (!(cond))                                                                                         \
            abort();                                                                                         \
    } while (0)

#endif
