-- The relay's claim asks for sequenced rows not yet published, in seq order. Without an
-- index made for that question it walked every sequenced row ever kept (the outbox holds
-- published rows for the retention time), so each round cost time in proportion to the
-- outbox's size.
CREATE INDEX outbox_pending_seq ON outbox (seq) WHERE published_at IS NULL AND seq IS NOT NULL;
