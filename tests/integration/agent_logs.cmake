# GET /api/v1/agents/:id/logs (tail, resume, rotation, follow over SSE, the follower cap,
# shutdown with a follower open) against the real binary with sandboxed command agents, on SQLite
# and PostgreSQL. Included from tests/integration/CMakeLists.txt.

dp_cc_test(NAME agent_logs_test SRCS agent_logs_test.cpp DEPS dp_it_harness LABELS integration)
if(TARGET agent_logs_test)
  add_dependencies(agent_logs_test devplane)
endif()
