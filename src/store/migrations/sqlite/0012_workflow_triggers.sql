-- Workflow triggers (src/workflow/scheduler.*, api/v1/workflow_hooks.cpp, docs/workflows.md).
-- An execution records what started it: cause (manual | schedule | webhook | workflow) and
-- cause_detail (JSON: the trigger and its scheduled time, the hook and its delivery id, the
-- parent execution, or the user who asked).
ALTER TABLE workflow_executions ADD COLUMN cause_detail TEXT NOT NULL DEFAULT '{}';
CREATE INDEX workflow_executions_cause ON workflow_executions (cause, id);

-- One row per trigger of a workflow's current version, kept in step with the definition by the
-- workflow service. Cron triggers: spec is "<cron> @ <time zone> missed=<policy>", next_fire_at
-- the next scheduled time (epoch ms) and last_fire_at the scheduled time of the last run, both
-- moved in the transaction that inserts the execution, so a time fires at most once.
CREATE TABLE workflow_triggers (
  workflow_id TEXT NOT NULL REFERENCES workflows (id) ON DELETE CASCADE,
  trigger_id TEXT NOT NULL,
  kind TEXT NOT NULL,
  spec TEXT NOT NULL DEFAULT '',
  next_fire_at INTEGER NOT NULL DEFAULT 0,
  last_fire_at INTEGER NOT NULL DEFAULT 0,
  last_execution_id TEXT,
  PRIMARY KEY (workflow_id, trigger_id)
);
CREATE INDEX workflow_triggers_due ON workflow_triggers (kind, next_fire_at);

-- Webhook deliveries seen, for replay protection: a delivery id is accepted once per hook.
CREATE TABLE webhook_deliveries (
  workflow_id TEXT NOT NULL,
  hook_id TEXT NOT NULL,
  delivery_id TEXT NOT NULL,
  execution_id TEXT NOT NULL,
  received_at INTEGER NOT NULL,
  PRIMARY KEY (workflow_id, hook_id, delivery_id)
);
CREATE INDEX webhook_deliveries_received ON webhook_deliveries (received_at);
