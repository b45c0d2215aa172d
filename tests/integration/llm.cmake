# llm agents end to end: the real binary against the scripted provider (tests/llm/, Node, no
# npm packages) speaking the OpenAI and Anthropic wire formats on 127.0.0.1, on SQLite and
# PostgreSQL. Included from tests/integration/CMakeLists.txt.
dp_cc_test(NAME llm_agents_test SRCS llm_agents_test.cpp DEPS dp_it_harness LABELS integration)
if(TARGET llm_agents_test)
  add_dependencies(llm_agents_test devplane)
  target_compile_definitions(llm_agents_test PRIVATE
    DP_SCRIPTED_PROVIDER="${PROJECT_SOURCE_DIR}/tests/llm/scripted_provider.mjs")
endif()
