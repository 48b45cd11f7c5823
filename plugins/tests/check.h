/* A minimal check counter for the host-side tests: every CHECK counts; a failed one prints and marks the run. */
#ifndef FLURKA_TEST_CHECK_H
#define FLURKA_TEST_CHECK_H

#include <cstdio>

namespace flurka_test
{
inline int& checks()
{
    static int n = 0;
    return n;
}
inline int& failures()
{
    static int n = 0;
    return n;
}
inline int finish(char const* name)
{
    std::printf("%s: %d checks, %d failed\n", name, checks(), failures());
    return failures() == 0 ? 0 : 1;
}
} // namespace flurka_test

#define CHECK(cond)                                                                                                    \
    do                                                                                                                 \
    {                                                                                                                  \
        ++flurka_test::checks();                                                                                       \
        if (!(cond))                                                                                                   \
        {                                                                                                              \
            ++flurka_test::failures();                                                                                 \
            std::printf("%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);                                       \
        }                                                                                                              \
    } while (0)

#endif
