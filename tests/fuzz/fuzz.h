/* fuzz.h: what every libFuzzer target here shares. ASSERT aborts, so the
 * fuzzer and the corpus replay (replay_main.c) both see a broken
 * invariant as a crash, with or without NDEBUG. */
#ifndef SHOAL_TESTS_FUZZ_H
#define SHOAL_TESTS_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#define ASSERT(c)                                                                                  \
    do {                                                                                           \
        if (!(c))                                                                                  \
            abort();                                                                               \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#endif
