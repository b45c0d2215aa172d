# /api/v1/memory on the real binary, SQLite and PostgreSQL: notes, search, bad input, roles,
# restart, and a command agent's task outcome found by search. Included from CMakeLists.txt.
dp_cc_test(NAME memory_api_test SRCS memory_api_test.cpp DEPS dp_it_harness LABELS integration)
if(TARGET memory_api_test)
  add_dependencies(memory_api_test devplane)
endif()
