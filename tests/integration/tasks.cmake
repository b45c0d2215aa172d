# Tasks for command agents, run by the real binary in real bubblewrap sandboxes, on SQLite
# and PostgreSQL. Included from tests/integration/CMakeLists.txt.

dp_cc_test(NAME tasks_test SRCS tasks_test.cpp DEPS dp_it_harness LABELS integration)
if(TARGET tasks_test)
  add_dependencies(tasks_test devplane)
endif()
