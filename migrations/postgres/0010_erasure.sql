-- A ticket whose customer's personal data was erased (on request, or by retention): when. The
-- ticket stays, anonymised, so reports keep counting it.
ALTER TABLE tickets ADD COLUMN erased_at BIGINT;
-- Retention finds solved tickets not yet erased, oldest first.
CREATE INDEX tickets_solved_unerased ON tickets (solved_at) WHERE erased_at IS NULL AND solved_at IS NOT NULL;
