# Remote agents: the real binary's /api/v1/agents/:id/connect driven by the Node.js reference
# client (examples/agents/remote-client) and by raw protocol frames, on SQLite and PostgreSQL.
# Needs node and `npm ci` in examples/agents/remote-client (scripts/test does both). Included
# from tests/integration/CMakeLists.txt.
dp_cc_test(NAME remote_agents_test SRCS remote_agents_test.cpp ws_client.cpp
           DEPS dp_it_harness LABELS integration)
if(TARGET remote_agents_test)
  add_dependencies(remote_agents_test devplane)
endif()
