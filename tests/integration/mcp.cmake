# devplane's MCP client against real MCP servers from npm (tests/mcp: server-everything,
# server-filesystem, the official SDK) and a misbehaving fake server. Needs node and
# `npm ci` in tests/mcp (scripts/test does both). Included from CMakeLists.txt.
find_program(DP_NODE_BINARY NAMES node nodejs)
dp_cc_test(NAME mcp_client_test SRCS mcp_client_test.cpp DEPS dp_it_harness dp_mcp LABELS "integration;mcp")
if(TARGET mcp_client_test)
  target_compile_definitions(mcp_client_test PRIVATE
    DP_NODE_BINARY="${DP_NODE_BINARY}"
    DP_MCP_TEST_DIR="${PROJECT_SOURCE_DIR}/tests/mcp")
endif()

# /api/v1/tools on the real binary, SQLite and PostgreSQL.
dp_cc_test(NAME tools_api_test SRCS tools_api_test.cpp DEPS dp_it_harness LABELS "integration;mcp")
if(TARGET tools_api_test)
  add_dependencies(tools_api_test devplane)
  target_compile_definitions(tools_api_test PRIVATE
    DP_NODE_BINARY="${DP_NODE_BINARY}"
    DP_MCP_TEST_DIR="${PROJECT_SOURCE_DIR}/tests/mcp")
endif()

# /mcp (devplane as an MCP server and gateway) with the official SDK client and the MCP
# Inspector CLI (tests/mcp), on SQLite and PostgreSQL.
dp_cc_test(NAME mcp_server_test SRCS mcp_server_test.cpp DEPS dp_it_harness LABELS "integration;mcp")
if(TARGET mcp_server_test)
  add_dependencies(mcp_server_test devplane)
  target_compile_definitions(mcp_server_test PRIVATE
    DP_NODE_BINARY="${DP_NODE_BINARY}"
    DP_MCP_TEST_DIR="${PROJECT_SOURCE_DIR}/tests/mcp")
endif()

# llm agents calling MCP tools (server-everything) against the scripted provider.
dp_cc_test(NAME llm_mcp_tools_test SRCS llm_mcp_tools_test.cpp DEPS dp_it_harness LABELS "integration;mcp")
if(TARGET llm_mcp_tools_test)
  add_dependencies(llm_mcp_tools_test devplane)
  target_compile_definitions(llm_mcp_tools_test PRIVATE
    DP_NODE_BINARY="${DP_NODE_BINARY}"
    DP_MCP_TEST_DIR="${PROJECT_SOURCE_DIR}/tests/mcp"
    DP_SCRIPTED_PROVIDER="${PROJECT_SOURCE_DIR}/tests/llm/scripted_provider.mjs")
endif()

# Workflow tool steps against server-everything and server-filesystem.
dp_cc_test(NAME workflow_tools_test SRCS workflow_tools_test.cpp DEPS dp_it_harness LABELS "integration;mcp")
if(TARGET workflow_tools_test)
  add_dependencies(workflow_tools_test devplane)
  target_compile_definitions(workflow_tools_test PRIVATE
    DP_NODE_BINARY="${DP_NODE_BINARY}"
    DP_MCP_TEST_DIR="${PROJECT_SOURCE_DIR}/tests/mcp"
    DP_EXAMPLES_DIR="${PROJECT_SOURCE_DIR}/examples")
endif()
