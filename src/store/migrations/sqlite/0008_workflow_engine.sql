-- The durable workflow engine (src/workflow/engine.*, docs/workflows.md). An execution is
-- driven by one node at a time under a lease (lease_owner, lease_until in epoch ms); a node
-- that dies lets the lease lapse and another node resumes the execution. A step row records
-- the attempt it is on, the task (or child execution) of that attempt, and when a timer
-- (retry backoff, wait step, approval or step timeout) fires (wake_at, epoch ms; 0: none).
ALTER TABLE workflow_executions ADD COLUMN cause TEXT NOT NULL DEFAULT 'manual';
ALTER TABLE workflow_executions ADD COLUMN created_by TEXT NOT NULL DEFAULT '';
ALTER TABLE workflow_executions ADD COLUMN parent_execution_id TEXT;
ALTER TABLE workflow_executions ADD COLUMN parent_step_id TEXT;
ALTER TABLE workflow_executions ADD COLUMN lease_owner TEXT NOT NULL DEFAULT '';
ALTER TABLE workflow_executions ADD COLUMN lease_until INTEGER NOT NULL DEFAULT 0;
ALTER TABLE workflow_executions ADD COLUMN cancel_requested INTEGER NOT NULL DEFAULT 0;
CREATE INDEX workflow_executions_inflight ON workflow_executions (lease_until)
  WHERE status IN ('pending', 'running');

ALTER TABLE execution_steps ADD COLUMN task_id TEXT;
ALTER TABLE execution_steps ADD COLUMN wake_at INTEGER NOT NULL DEFAULT 0;
ALTER TABLE execution_steps ADD COLUMN item TEXT;
ALTER TABLE execution_steps ADD COLUMN parent_step TEXT;
ALTER TABLE execution_steps ADD COLUMN seq INTEGER NOT NULL DEFAULT 0;
ALTER TABLE execution_steps ADD COLUMN history TEXT NOT NULL DEFAULT '[]';
ALTER TABLE execution_steps ADD COLUMN decided_by TEXT;
