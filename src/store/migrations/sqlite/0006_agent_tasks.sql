-- Tasks given to agents (POST /api/v1/agents/:id/tasks). A task is claimed by one node at a
-- time under a lease; a node that dies lets its lease lapse and the task is queued again.
CREATE TABLE agent_tasks (
  id               TEXT PRIMARY KEY,
  agent_id         TEXT NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
  idempotency_key  TEXT NOT NULL,
  input            TEXT NOT NULL DEFAULT '{}',
  status           TEXT NOT NULL,       -- queued | running | succeeded | failed | cancelled
  result           TEXT,
  error            TEXT NOT NULL DEFAULT '',
  attempts         INTEGER NOT NULL DEFAULT 0,
  cancel_requested INTEGER NOT NULL DEFAULT 0,
  node_id          TEXT NOT NULL DEFAULT '',
  lease_until      INTEGER NOT NULL DEFAULT 0,  -- epoch ms
  created_by       TEXT NOT NULL DEFAULT '',
  correlation_id   TEXT NOT NULL DEFAULT '',
  created_at       TEXT NOT NULL,
  started_at       TEXT,
  finished_at      TEXT
);
CREATE UNIQUE INDEX agent_tasks_key ON agent_tasks (agent_id, idempotency_key);
CREATE INDEX agent_tasks_queue ON agent_tasks (agent_id, status, id);
CREATE INDEX agent_tasks_running ON agent_tasks (status, lease_until) WHERE status = 'running';
