-- A step's timer in microseconds since the epoch (it was in milliseconds): a 1 ms wait rounded
-- to whole milliseconds either ended early or lasted up to twice as long.
ALTER TABLE execution_steps RENAME COLUMN wake_at TO wake_at_us;
UPDATE execution_steps SET wake_at_us = wake_at_us * 1000 WHERE wake_at_us > 0;
