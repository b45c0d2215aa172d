-- devplane schema v1 (SQLite). Times are ISO-8601 UTC text; JSON is text.
CREATE TABLE agents (
  id            TEXT PRIMARY KEY,
  name          TEXT NOT NULL,
  type          TEXT NOT NULL,
  status        TEXT NOT NULL,
  status_reason TEXT NOT NULL DEFAULT '',
  description   TEXT NOT NULL DEFAULT '',
  labels        TEXT NOT NULL DEFAULT '{}',
  config        TEXT NOT NULL DEFAULT '{}',
  version       INTEGER NOT NULL DEFAULT 1,
  created_at    TEXT NOT NULL,
  updated_at    TEXT NOT NULL
);
CREATE UNIQUE INDEX agents_live_name ON agents (name) WHERE status <> 'decommissioned';
CREATE INDEX agents_status ON agents (status, id);
CREATE INDEX agents_type ON agents (type, id);

CREATE TABLE agent_states (
  id          INTEGER PRIMARY KEY AUTOINCREMENT,
  agent_id    TEXT NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
  from_status TEXT,
  status      TEXT NOT NULL,
  reason      TEXT NOT NULL DEFAULT '',
  state_data  TEXT NOT NULL DEFAULT '{}',
  version     INTEGER NOT NULL,
  created_at  TEXT NOT NULL
);
CREATE INDEX agent_states_agent ON agent_states (agent_id, id);

CREATE TABLE workflows (
  id          TEXT PRIMARY KEY,
  name        TEXT NOT NULL,
  description TEXT NOT NULL DEFAULT '',
  definition  TEXT NOT NULL,
  status      TEXT NOT NULL DEFAULT 'active',
  version     INTEGER NOT NULL DEFAULT 1,
  created_at  TEXT NOT NULL,
  updated_at  TEXT NOT NULL
);
CREATE UNIQUE INDEX workflows_name ON workflows (name) WHERE status <> 'archived';

CREATE TABLE workflow_versions (
  workflow_id TEXT NOT NULL REFERENCES workflows (id) ON DELETE CASCADE,
  version     INTEGER NOT NULL,
  definition  TEXT NOT NULL,
  created_at  TEXT NOT NULL,
  PRIMARY KEY (workflow_id, version)
);

CREATE TABLE workflow_executions (
  id                TEXT PRIMARY KEY,
  workflow_id       TEXT NOT NULL REFERENCES workflows (id),
  workflow_version  INTEGER NOT NULL,
  agent_assignments TEXT NOT NULL DEFAULT '{}',
  status            TEXT NOT NULL,
  inputs            TEXT NOT NULL DEFAULT '{}',
  outputs           TEXT,
  error             TEXT,
  correlation_id    TEXT NOT NULL DEFAULT '',
  started_at        TEXT,
  completed_at      TEXT,
  created_at        TEXT NOT NULL
);
CREATE INDEX workflow_executions_workflow ON workflow_executions (workflow_id, id);
CREATE INDEX workflow_executions_status ON workflow_executions (status, id);

CREATE TABLE execution_steps (
  execution_id    TEXT NOT NULL REFERENCES workflow_executions (id) ON DELETE CASCADE,
  step_id         TEXT NOT NULL,
  status          TEXT NOT NULL,
  attempt         INTEGER NOT NULL DEFAULT 0,
  inputs          TEXT,
  outputs         TEXT,
  error           TEXT,
  lease_owner     TEXT,
  lease_expires_at TEXT,
  started_at      TEXT,
  completed_at    TEXT,
  updated_at      TEXT NOT NULL,
  PRIMARY KEY (execution_id, step_id)
);

CREATE TABLE messages (
  id            TEXT PRIMARY KEY,
  from_agent_id TEXT REFERENCES agents (id) ON DELETE SET NULL,
  to_agent_id   TEXT NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
  message_type  TEXT NOT NULL,
  payload       TEXT NOT NULL DEFAULT '{}',
  created_at    TEXT NOT NULL,
  delivered_at  TEXT
);
CREATE INDEX messages_to_agent ON messages (to_agent_id, id);
CREATE INDEX messages_undelivered ON messages (to_agent_id) WHERE delivered_at IS NULL;

CREATE TABLE mcp_adapters (
  id                TEXT PRIMARY KEY,
  name              TEXT NOT NULL UNIQUE,
  config            TEXT NOT NULL DEFAULT '{}',
  status            TEXT NOT NULL DEFAULT 'unknown',
  status_reason     TEXT NOT NULL DEFAULT '',
  last_health_check TEXT,
  version           INTEGER NOT NULL DEFAULT 1,
  created_at        TEXT NOT NULL,
  updated_at        TEXT NOT NULL
);

CREATE TABLE tool_executions (
  id             TEXT PRIMARY KEY,
  adapter_id     TEXT REFERENCES mcp_adapters (id) ON DELETE SET NULL,
  tool_name      TEXT NOT NULL,
  parameters     TEXT NOT NULL DEFAULT '{}',
  result         TEXT,
  error          TEXT,
  duration_ms    INTEGER,
  caller         TEXT NOT NULL DEFAULT '',
  correlation_id TEXT NOT NULL DEFAULT '',
  executed_at    TEXT NOT NULL
);
CREATE INDEX tool_executions_adapter ON tool_executions (adapter_id, executed_at);

CREATE TABLE agent_metrics (
  id          INTEGER PRIMARY KEY AUTOINCREMENT,
  agent_id    TEXT NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
  metric_type TEXT NOT NULL,
  value       REAL NOT NULL,
  timestamp   TEXT NOT NULL
);
CREATE INDEX agent_metrics_agent ON agent_metrics (agent_id, metric_type, timestamp);

CREATE TABLE vector_embeddings (
  id         TEXT PRIMARY KEY,
  content    TEXT NOT NULL,
  embedding  BLOB NOT NULL,
  metadata   TEXT NOT NULL DEFAULT '{}',
  created_at TEXT NOT NULL
);

CREATE TABLE outbox (
  id             INTEGER PRIMARY KEY AUTOINCREMENT,
  topic          TEXT NOT NULL,
  payload        TEXT NOT NULL,
  correlation_id TEXT NOT NULL DEFAULT '',
  created_at     TEXT NOT NULL,
  published_at   TEXT
);
CREATE INDEX outbox_unpublished ON outbox (id) WHERE published_at IS NULL;

CREATE TABLE nodes (
  id           TEXT PRIMARY KEY,
  hostname     TEXT NOT NULL,
  version      TEXT NOT NULL,
  started_at   TEXT NOT NULL,
  heartbeat_at TEXT NOT NULL
);
