# Agents for development work (git worktrees, budgets) run by the real binary with real git
# and bubblewrap, on SQLite and PostgreSQL. Included from tests/integration/CMakeLists.txt.

dp_cc_test(NAME dev_work_test SRCS dev_work_test.cpp DEPS dp_it_harness LABELS integration)
if(TARGET dev_work_test)
  add_dependencies(dev_work_test devplane)
endif()
