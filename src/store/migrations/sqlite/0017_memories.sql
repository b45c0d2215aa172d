-- Vector memory (src/memory/): notes people add and the outcomes of agents' tasks, each with
-- its embedding. The in-process index is rebuilt from this table at start.
-- embedding: the vector as lower-case hex of little-endian float32 values (`dims` of them);
-- `embedder` names the embedder that made it, so vectors of another embedder are re-made.
CREATE TABLE memories (
  id          TEXT PRIMARY KEY,
  kind        TEXT NOT NULL,                -- task_outcome | note
  text        TEXT NOT NULL,
  metadata    TEXT NOT NULL DEFAULT '{}',   -- {agentId?, taskId?, executionId?, status?, labels?}
  agent_id    TEXT NOT NULL DEFAULT '',     -- copied from metadata for filters
  task_id     TEXT NOT NULL DEFAULT '',     -- a task is remembered once
  embedder    TEXT NOT NULL,
  dims        INTEGER NOT NULL,
  embedding   TEXT NOT NULL,
  created_at  TEXT NOT NULL,
  created_by  TEXT NOT NULL DEFAULT ''
);
CREATE UNIQUE INDEX memories_task ON memories (task_id) WHERE task_id <> '';
CREATE INDEX memories_kind ON memories (kind, id);
