# Tests of the event bus (label `bus`). Included from src/CMakeLists.txt inside
# if(DP_BUILD_TESTS). The Redis cases need DEVPLANE_TEST_REDIS_URL (scripts/test sets it)
# and fail, naming it, when it is unset; the restart case starts its own redis-server
# (DEVPLANE_TEST_REDIS_SERVER, default `redis-server` on PATH).
dp_cc_test(NAME local_bus_test
  SRCS bus/local/local_bus_test.cpp
  DEPS dp_bus
  LABELS bus)

dp_cc_test(NAME stream_reply_test
  SRCS bus/redis/stream_reply_test.cpp
  DEPS dp_bus
  LABELS bus)

dp_cc_test(NAME bus_test
  SRCS bus/bus_test.cpp
  DEPS dp_bus
  LABELS bus)
