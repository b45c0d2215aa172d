# Identity and access: the attack suite and the route-by-role walk, on SQLite and PostgreSQL.
find_package(OpenSSL REQUIRED)
dp_cc_test(NAME auth_test SRCS ${CMAKE_CURRENT_LIST_DIR}/auth_test.cpp
  DEPS dp_it_harness OpenSSL::Crypto LABELS integration)
if(TARGET auth_test)
  add_dependencies(auth_test devplane)
endif()
