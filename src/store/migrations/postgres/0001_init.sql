-- devplane schema v1 (PostgreSQL). Times are timestamptz; JSON is jsonb.
CREATE TABLE agents (
  id            TEXT PRIMARY KEY,
  name          TEXT NOT NULL,
  type          TEXT NOT NULL,
  status        TEXT NOT NULL,
  status_reason TEXT NOT NULL DEFAULT '',
  description   TEXT NOT NULL DEFAULT '',
  labels        JSONB NOT NULL DEFAULT '{}',
  config        JSONB NOT NULL DEFAULT '{}',
  version       BIGINT NOT NULL DEFAULT 1,
  created_at TIMESTAMPTZ NOT NULL,
  updated_at TIMESTAMPTZ NOT NULL
);
CREATE UNIQUE INDEX agents_live_name ON agents (name) WHERE status <> 'decommissioned';
CREATE INDEX agents_status ON agents (status, id);
CREATE INDEX agents_type ON agents (type, id);

CREATE TABLE agent_states (
  id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  agent_id    TEXT NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
  from_status TEXT,
  status      TEXT NOT NULL,
  reason      TEXT NOT NULL DEFAULT '',
  state_data  JSONB NOT NULL DEFAULT '{}',
  version     BIGINT NOT NULL,
  created_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX agent_states_agent ON agent_states (agent_id, id);

CREATE TABLE workflows (
  id          TEXT PRIMARY KEY,
  name        TEXT NOT NULL,
  description TEXT NOT NULL DEFAULT '',
  definition  TEXT NOT NULL,
  status      TEXT NOT NULL DEFAULT 'active',
  version     BIGINT NOT NULL DEFAULT 1,
  created_at TIMESTAMPTZ NOT NULL,
  updated_at TIMESTAMPTZ NOT NULL
);
CREATE UNIQUE INDEX workflows_name ON workflows (name) WHERE status <> 'archived';

CREATE TABLE workflow_versions (
  workflow_id TEXT NOT NULL REFERENCES workflows (id) ON DELETE CASCADE,
  version     BIGINT NOT NULL,
  definition  TEXT NOT NULL,
  created_at TIMESTAMPTZ NOT NULL,
  PRIMARY KEY (workflow_id, version)
);

CREATE TABLE workflow_executions (
  id                TEXT PRIMARY KEY,
  workflow_id       TEXT NOT NULL REFERENCES workflows (id),
  workflow_version  BIGINT NOT NULL,
  agent_assignments JSONB NOT NULL DEFAULT '{}',
  status            TEXT NOT NULL,
  inputs            JSONB NOT NULL DEFAULT '{}',
  outputs           TEXT,
  error             TEXT,
  correlation_id    TEXT NOT NULL DEFAULT '',
  started_at TIMESTAMPTZ,
  completed_at TIMESTAMPTZ,
  created_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX workflow_executions_workflow ON workflow_executions (workflow_id, id);
CREATE INDEX workflow_executions_status ON workflow_executions (status, id);

CREATE TABLE execution_steps (
  execution_id    TEXT NOT NULL REFERENCES workflow_executions (id) ON DELETE CASCADE,
  step_id         TEXT NOT NULL,
  status          TEXT NOT NULL,
  attempt         BIGINT NOT NULL DEFAULT 0,
  inputs          TEXT,
  outputs         TEXT,
  error           TEXT,
  lease_owner     TEXT,
  lease_expires_at TIMESTAMPTZ,
  started_at TIMESTAMPTZ,
  completed_at TIMESTAMPTZ,
  updated_at TIMESTAMPTZ NOT NULL,
  PRIMARY KEY (execution_id, step_id)
);

CREATE TABLE messages (
  id            TEXT PRIMARY KEY,
  from_agent_id TEXT REFERENCES agents (id) ON DELETE SET NULL,
  to_agent_id   TEXT NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
  message_type  TEXT NOT NULL,
  payload       JSONB NOT NULL DEFAULT '{}',
  created_at TIMESTAMPTZ NOT NULL,
  delivered_at TIMESTAMPTZ
);
CREATE INDEX messages_to_agent ON messages (to_agent_id, id);
CREATE INDEX messages_undelivered ON messages (to_agent_id) WHERE delivered_at IS NULL;

CREATE TABLE mcp_adapters (
  id                TEXT PRIMARY KEY,
  name              TEXT NOT NULL UNIQUE,
  config            JSONB NOT NULL DEFAULT '{}',
  status            TEXT NOT NULL DEFAULT 'unknown',
  status_reason     TEXT NOT NULL DEFAULT '',
  last_health_check TEXT,
  version           BIGINT NOT NULL DEFAULT 1,
  created_at TIMESTAMPTZ NOT NULL,
  updated_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE tool_executions (
  id             TEXT PRIMARY KEY,
  adapter_id     TEXT REFERENCES mcp_adapters (id) ON DELETE SET NULL,
  tool_name      TEXT NOT NULL,
  parameters     JSONB NOT NULL DEFAULT '{}',
  result         TEXT,
  error          TEXT,
  duration_ms    BIGINT,
  caller         TEXT NOT NULL DEFAULT '',
  correlation_id TEXT NOT NULL DEFAULT '',
  executed_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX tool_executions_adapter ON tool_executions (adapter_id, executed_at);

CREATE TABLE agent_metrics (
  id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  agent_id    TEXT NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
  metric_type TEXT NOT NULL,
  value       DOUBLE PRECISION NOT NULL,
  timestamp TIMESTAMPTZ NOT NULL
);
CREATE INDEX agent_metrics_agent ON agent_metrics (agent_id, metric_type, timestamp);

CREATE TABLE vector_embeddings (
  id         TEXT PRIMARY KEY,
  content    TEXT NOT NULL,
  embedding  BYTEA NOT NULL,
  metadata   JSONB NOT NULL DEFAULT '{}',
  created_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE outbox (
  id             BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  topic          TEXT NOT NULL,
  payload        TEXT NOT NULL,
  correlation_id TEXT NOT NULL DEFAULT '',
  created_at TIMESTAMPTZ NOT NULL,
  published_at TIMESTAMPTZ
);
CREATE INDEX outbox_unpublished ON outbox (id) WHERE published_at IS NULL;

CREATE TABLE nodes (
  id           TEXT PRIMARY KEY,
  hostname     TEXT NOT NULL,
  version      TEXT NOT NULL,
  started_at TIMESTAMPTZ NOT NULL,
  heartbeat_at TIMESTAMPTZ NOT NULL
);
