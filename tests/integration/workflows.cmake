# Workflows on the real binary, on SQLite and PostgreSQL: validation, versions, DAGs of command
# agents, approvals, retries, cancel and crash recovery. Included from CMakeLists.txt.

dp_cc_test(NAME workflows_test SRCS workflows_test.cpp DEPS dp_it_harness LABELS integration)
if(TARGET workflows_test)
  add_dependencies(workflows_test devplane)
endif()
