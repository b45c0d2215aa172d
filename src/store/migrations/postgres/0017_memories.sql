-- Vector memory (src/memory/): notes people add and the outcomes of agents' tasks, each with
-- its embedding (little-endian float32 values, `dims` of them). The in-process index is rebuilt
-- from this table at start. pgvector is not used: bookworm has no package of it for
-- PostgreSQL 15 (docs/memory.md).
CREATE TABLE memories (
  id          TEXT PRIMARY KEY,
  kind        TEXT NOT NULL,                -- task_outcome | note
  text        TEXT NOT NULL,
  metadata    JSONB NOT NULL DEFAULT '{}',  -- {agentId?, taskId?, executionId?, status?, labels?}
  agent_id    TEXT NOT NULL DEFAULT '',     -- copied from metadata for filters
  task_id     TEXT NOT NULL DEFAULT '',     -- a task is remembered once
  embedder    TEXT NOT NULL,
  dims        INTEGER NOT NULL,
  embedding   BYTEA NOT NULL,
  created_at  TIMESTAMPTZ NOT NULL,
  created_by  TEXT NOT NULL DEFAULT ''
);
CREATE UNIQUE INDEX memories_task ON memories (task_id) WHERE task_id <> '';
CREATE INDEX memories_kind ON memories (kind, id);
