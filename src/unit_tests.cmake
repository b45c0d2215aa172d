# Unit tests, one executable per module so the build stays small. Included from
# src/CMakeLists.txt when DP_BUILD_TESTS is on. Every target carries the CTest label `unit`
# except the store suite (`store`), which also needs PostgreSQL (DEVPLANE_TEST_PG_URL).

dp_cc_test(NAME dp_core_test
  SRCS core/clock_test.cpp core/config_test.cpp core/result_test.cpp core/ids_test.cpp core/log_test.cpp
  DEPS dp_core
  LABELS unit)

dp_cc_test(NAME dp_http_test
  SRCS http/router_test.cpp http/message_test.cpp http/sse_test.cpp
       http/server_stream_test.cpp http/ws_session_test.cpp http/server_pool_test.cpp
       http/server_refusal_test.cpp
  DEPS dp_http
  LABELS unit)

dp_cc_test(NAME dp_api_test
  SRCS api/validation_test.cpp
  DEPS dp_api
  LABELS unit)

dp_cc_test(NAME dp_auth_test
  SRCS auth/crypto_test.cpp auth/password_test.cpp auth/jwt_test.cpp auth/api_key_test.cpp
       auth/rate_limiter_test.cpp auth/policy_test.cpp auth/auth_service_test.cpp
  DEPS dp_auth SQLite::SQLite3
  LABELS unit)

dp_cc_test(NAME dp_model_test
  SRCS model/agent_test.cpp
  DEPS dp_model
  LABELS unit)

dp_cc_test(NAME dp_agents_test
  SRCS agents/agent_service_test.cpp agents/tools_test.cpp agents/llm_loop_test.cpp agents/agent_logs_test.cpp
       agents/task_service_test.cpp
  DEPS dp_agents SQLite::SQLite3
  LABELS unit)

# Runs unchanged against SQLite and PostgreSQL; the PostgreSQL cases need DEVPLANE_TEST_PG_URL.
dp_cc_test(NAME dp_store_test
  SRCS store/store_test.cpp
  DEPS dp_store SQLite::SQLite3 PostgreSQL::PostgreSQL
  LABELS store)

# The audit chain, the audit service (on an SQLite store) and secrets at rest.
dp_cc_test(NAME dp_audit_test
  SRCS store/audit_chain_test.cpp audit/audit_service_test.cpp auth/secrets_test.cpp
  DEPS dp_audit dp_secrets SQLite::SQLite3
  LABELS unit)

# The outbound HTTP client against local Beast servers, and the OIDC pieces with keys made
# in the test (no network beyond 127.0.0.1).
dp_cc_test(NAME dp_oidc_test
  SRCS http/client_test.cpp auth/oidc_test.cpp
  DEPS dp_oidc
  LABELS unit)

dp_cc_test(NAME dp_web_test
  SRCS app/static_files_test.cpp
  DEPS dp_web
  LABELS unit)

# LLM wire formats (SSE, stream assembly, malformed and truncated input) and the providers
# against local Beast servers on 127.0.0.1.
dp_cc_test(NAME dp_llm_test
  SRCS llm/wire_test.cpp llm/provider_test.cpp
  DEPS dp_llm
  LABELS unit)

# Workflow definitions, validator and expressions; checks docs/workflow.schema.json too.
dp_cc_test(NAME dp_workflow_def_test
  SRCS workflow/expr_test.cpp workflow/definition_test.cpp workflow/cron_test.cpp
  DEPS dp_workflow_def
  LABELS unit)
target_compile_definitions(dp_workflow_def_test PRIVATE DP_SOURCE_DIR="${PROJECT_SOURCE_DIR}")

# The engine against a real SQLite store, the test playing the executor.
dp_cc_test(NAME dp_workflow_test
  SRCS workflow/engine_test.cpp workflow/scheduler_test.cpp
  DEPS dp_workflow SQLite::SQLite3
  LABELS unit)

# The MCP codec, SSE parser and protocol types.
dp_cc_test(NAME dp_mcp_test
  SRCS mcp/jsonrpc_test.cpp mcp/schema_test.cpp
  DEPS dp_mcp
  LABELS unit)

# devplane as an MCP server: sessions and dispatch (mcp/server), and the /mcp Host and Origin
# rules (api/mcp/endpoint).
dp_cc_test(NAME dp_mcp_server_test
  SRCS mcp/server_test.cpp api/mcp/endpoint_test.cpp
  DEPS dp_api_mcp dp_mcp_server
  LABELS unit)

# Vector memory: the hashing embedder, the index (HNSW recall against brute force) and the
# memory service over a real SQLite store.
dp_cc_test(NAME dp_memory_test
  SRCS memory/memory_test.cpp
  DEPS dp_memory SQLite::SQLite3
  LABELS unit)
