# Workflows on the real binary, on SQLite and PostgreSQL: validation, versions, DAGs of command
# agents, approvals, retries, cancel and crash recovery. Included from CMakeLists.txt.

dp_cc_test(NAME workflows_test SRCS workflows_test.cpp DEPS dp_it_harness LABELS integration)
if(TARGET workflows_test)
  add_dependencies(workflows_test devplane)
endif()

# Workflow triggers (webhooks, causes) on the real binary, on SQLite and PostgreSQL.
dp_cc_test(NAME triggers_test SRCS triggers_test.cpp DEPS dp_it_harness OpenSSL::Crypto LABELS integration)
if(TARGET triggers_test)
  add_dependencies(triggers_test devplane)
endif()
