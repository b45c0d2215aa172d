# Single sign-on end to end: the real binary against a real OpenID provider (oidc-provider on
# Node, tests/oidc/provider.mjs) on 127.0.0.1. Needs node and `npm ci` in tests/oidc (scripts/test
# does both). Included from tests/integration/CMakeLists.txt.
dp_cc_test(NAME oidc_test SRCS oidc_test.cpp DEPS dp_it_harness dp_oidc LABELS integration)
if(TARGET oidc_test)
  add_dependencies(oidc_test devplane)
  target_compile_definitions(oidc_test PRIVATE
    DP_OIDC_PROVIDER_DIR="${PROJECT_SOURCE_DIR}/tests/oidc")
endif()
