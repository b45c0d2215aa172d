-- Audit log: append-only and hash-chained. `seq` is given by the writer (last seq + 1, under
-- the store's single writer), so the chain has no gaps; `hash` is SHA-256 over `prev_hash`
-- and a canonical form of the row (store/audit_chain.hpp). Nothing in devplane updates or
-- deletes these rows; `devplane audit verify` finds a row that was.
CREATE TABLE audit_log (
  seq            INTEGER PRIMARY KEY AUTOINCREMENT,
  id             TEXT NOT NULL UNIQUE,
  at             TEXT NOT NULL,
  actor_id       TEXT NOT NULL DEFAULT '',
  actor_name     TEXT NOT NULL DEFAULT '',
  actor_kind     TEXT NOT NULL DEFAULT '',
  action         TEXT NOT NULL,
  target         TEXT NOT NULL DEFAULT '',
  outcome        TEXT NOT NULL,
  status         INTEGER NOT NULL DEFAULT 0,
  correlation_id TEXT NOT NULL DEFAULT '',
  source_address TEXT NOT NULL DEFAULT '',
  details        TEXT NOT NULL DEFAULT '{}',
  prev_hash      TEXT NOT NULL,
  hash           TEXT NOT NULL
);
CREATE INDEX audit_log_at ON audit_log (at, seq);
CREATE INDEX audit_log_actor ON audit_log (actor_id, seq);
CREATE INDEX audit_log_action ON audit_log (action, seq);
