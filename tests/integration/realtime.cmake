# Real-time integration tests: the real binary's /ws hub over real WebSocket, on
# {in-process bus + SQLite} and {Redis Streams + PostgreSQL} (DEVPLANE_TEST_REDIS_URL,
# DEVPLANE_TEST_PG_URL, set by scripts/test). Included from tests/integration/CMakeLists.txt.

dp_cc_test(NAME realtime_test SRCS realtime_test.cpp ws_client.cpp
           DEPS dp_it_harness hiredis LABELS integration)
if(TARGET realtime_test)
  add_dependencies(realtime_test devplane)
endif()
