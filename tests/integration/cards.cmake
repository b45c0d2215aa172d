# The agent cards' data (GET /api/v1/agents/activity, agent.resources events): the real binary
# runs real sandboxed tasks in cgroups, on SQLite and PostgreSQL. Included from
# tests/integration/CMakeLists.txt.

dp_cc_test(NAME agent_activity_test SRCS agent_activity_test.cpp ws_client.cpp DEPS dp_it_harness LABELS integration)
if(TARGET agent_activity_test)
  add_dependencies(agent_activity_test devplane)
endif()
