# Audit log and secrets-at-rest integration tests: the real binary on SQLite and PostgreSQL
# (DEVPLANE_TEST_PG_URL, set by scripts/test). Included from tests/integration/CMakeLists.txt.

dp_cc_test(NAME audit_test SRCS audit_test.cpp DEPS dp_it_harness LABELS integration)
if(TARGET audit_test)
  add_dependencies(audit_test devplane)
endif()
