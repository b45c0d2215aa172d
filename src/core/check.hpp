// DP_CHECK: conditions that cannot fail after start-up; fatal in every build.
// DP_DCHECK: debug-only invariants. Never check anything a user or the network controls.
#pragma once

#include <cstdio>
#include <cstdlib>

#define DP_CHECK(cond)                                                              \
  do {                                                                              \
    if (!(cond)) {                                                                  \
      std::fprintf(stderr, "DP_CHECK failed at %s:%d: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                                 \
    }                                                                               \
  } while (false)

#ifdef NDEBUG
#define DP_DCHECK(cond) \
  do {                  \
  } while (false && (cond))
#else
#define DP_DCHECK(cond) DP_CHECK(cond)
#endif
