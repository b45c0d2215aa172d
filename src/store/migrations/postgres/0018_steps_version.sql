-- A counter on each execution that every write of one of its step rows bumps, whoever writes
-- it (the engine, an approval, a cancel, a retry). The engine keeps the step rows of the
-- executions it drives between passes and reads them again only when the counter moved.
ALTER TABLE workflow_executions ADD COLUMN steps_version BIGINT NOT NULL DEFAULT 0;
CREATE FUNCTION execution_steps_bump_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'DELETE' THEN
    UPDATE workflow_executions SET steps_version = steps_version + 1 WHERE id = OLD.execution_id;
  ELSE
    UPDATE workflow_executions SET steps_version = steps_version + 1 WHERE id = NEW.execution_id;
  END IF;
  RETURN NULL;
END
$$;
CREATE TRIGGER execution_steps_version AFTER INSERT OR UPDATE OR DELETE ON execution_steps
  FOR EACH ROW EXECUTE FUNCTION execution_steps_bump_version();
