# One list of warnings for the whole project: strict for library code, a little
# relaxed for tests (gtest macros trip -Wsign-conversion and friends).
set(DP_WARNINGS_STRICT
  -Wall -Wextra -Wpedantic -Wconversion -Wsign-conversion -Wshadow -Wcast-qual
  -Wundef -Wvla -Wnon-virtual-dtor -Wold-style-cast -Wnull-dereference)
set(DP_WARNINGS_TESTS -Wall -Wextra -Wpedantic -Wshadow -Wundef -Wvla)
if(CMAKE_CXX_COMPILER_ID MATCHES "Clang")
  list(APPEND DP_WARNINGS_STRICT -Wthread-safety)
endif()
if(DP_WARNINGS_AS_ERRORS)
  list(APPEND DP_WARNINGS_STRICT -Werror)
  list(APPEND DP_WARNINGS_TESTS -Werror)
endif()
