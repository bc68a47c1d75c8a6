-- Lookups that must stay O(result) as the tables grow (issue #17):
--
-- An outgoing mail's outbox row found from its message row (the intake's Message-ID lookup joins
-- them for every fetched batch): without this index SQLite builds an automatic one per query.
CREATE INDEX outbox_message_row ON outbox (message_row);

-- A batch's tickets' first and last customer mail (`direction = 'in' AND ticket_id IN (…)`):
-- with (ticket_id, id) alone, SQLite's planner takes the (direction, message_id) index for a long
-- IN list and reads every inbound mail. With direction in this index both conditions are found
-- in it, and the first/last mail per ticket is read from the index alone.
DROP INDEX messages_ticket;
CREATE INDEX messages_ticket ON messages (ticket_id, direction, id);
