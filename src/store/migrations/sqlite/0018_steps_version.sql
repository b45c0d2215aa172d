-- A counter on each execution that every write of one of its step rows bumps, whoever writes
-- it (the engine, an approval, a cancel, a retry). The engine keeps the step rows of the
-- executions it drives between passes and reads them again only when the counter moved.
ALTER TABLE workflow_executions ADD COLUMN steps_version INTEGER NOT NULL DEFAULT 0;
CREATE TRIGGER execution_steps_version_insert AFTER INSERT ON execution_steps BEGIN
  UPDATE workflow_executions SET steps_version = steps_version + 1 WHERE id = NEW.execution_id;
END;
CREATE TRIGGER execution_steps_version_update AFTER UPDATE ON execution_steps BEGIN
  UPDATE workflow_executions SET steps_version = steps_version + 1 WHERE id = NEW.execution_id;
END;
CREATE TRIGGER execution_steps_version_delete AFTER DELETE ON execution_steps BEGIN
  UPDATE workflow_executions SET steps_version = steps_version + 1 WHERE id = OLD.execution_id;
END;
