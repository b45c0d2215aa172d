-- Events get their global order when the outbox relay claims them, not when they are
-- written: a row's `id` follows insertion, which on PostgreSQL is not commit order.
ALTER TABLE outbox ADD COLUMN seq BIGINT;
CREATE UNIQUE INDEX outbox_seq ON outbox (seq) WHERE seq IS NOT NULL;
CREATE INDEX outbox_unsequenced ON outbox (id) WHERE seq IS NULL;

-- Leases: a node that does singleton work (the outbox relay, schedulers) holds a named
-- lease until `expires_at` and renews it while alive; a dead node's lease lapses.
CREATE TABLE leases (
  name        TEXT PRIMARY KEY,
  holder      TEXT NOT NULL,
  expires_at  BIGINT NOT NULL,  -- epoch ms
  acquired_at BIGINT NOT NULL
);
