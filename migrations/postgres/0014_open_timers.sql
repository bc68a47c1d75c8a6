-- `tickets list --overdue` / `--due` over every ticket (issue #17): the tickets with an open
-- promise due by a time are found from the open timers alone (a partial index on the same
-- condition as the query's), not by reading every ticket ever stored and probing its timers.
CREATE INDEX timers_open_due ON timers (due_at, ticket_id)
    WHERE state = 'running' OR (state = 'breached' AND met_at IS NULL);
