-- LLM agents: metrics per task (agent_metrics gains the task and labels such as provider,
-- model and call number) and named secrets (provider keys) sealed under the master key.
ALTER TABLE agent_metrics ADD COLUMN task_id TEXT;
ALTER TABLE agent_metrics ADD COLUMN labels TEXT NOT NULL DEFAULT '{}';
CREATE INDEX agent_metrics_task ON agent_metrics (task_id, id);

CREATE TABLE secrets (
  name        TEXT PRIMARY KEY,
  value       TEXT NOT NULL,              -- sealed: dpsec:v1:<base64(nonce | ciphertext)>
  updated_by  TEXT NOT NULL DEFAULT '',
  created_at  TEXT NOT NULL,
  updated_at  TEXT NOT NULL
);
