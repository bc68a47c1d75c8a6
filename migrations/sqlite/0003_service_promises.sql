-- Service promises (issue #5): ticket life and durable timers. Keep in step with
-- ../postgres/0003_service_promises.sql. Times are milliseconds from the injected clock.
ALTER TABLE tickets ADD COLUMN owner             TEXT;
ALTER TABLE tickets ADD COLUMN complex           INTEGER NOT NULL DEFAULT 0;
ALTER TABLE tickets ADD COLUMN escalated         INTEGER NOT NULL DEFAULT 0;
ALTER TABLE tickets ADD COLUMN escalated_at      INTEGER;
ALTER TABLE tickets ADD COLUMN acked_at          INTEGER;
ALTER TABLE tickets ADD COLUMN first_reply_at    INTEGER;
ALTER TABLE tickets ADD COLUMN agent_replies     INTEGER NOT NULL DEFAULT 0;
ALTER TABLE tickets ADD COLUMN reopens           INTEGER NOT NULL DEFAULT 0;
ALTER TABLE tickets ADD COLUMN survey_message_id TEXT;
ALTER TABLE tickets ADD COLUMN survey_sent_at    INTEGER;
ALTER TABLE tickets ADD COLUMN followup_sent_at  INTEGER;
ALTER TABLE tickets ADD COLUMN followup_at       INTEGER;
ALTER TABLE tickets ADD COLUMN followup_result   TEXT;

-- One row per promise. state: running → met | breached | cancelled; a promise kept after its
-- breach keeps state 'breached' and gets met_at. next_at: the next warning, or the due time.
CREATE TABLE timers (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    ticket_id      INTEGER NOT NULL REFERENCES tickets (id),
    kind           TEXT    NOT NULL,
    started_at     INTEGER NOT NULL,
    span_ms        INTEGER NOT NULL,
    due_at         INTEGER NOT NULL,
    next_at        INTEGER NOT NULL,
    warnings_fired INTEGER NOT NULL DEFAULT 0,
    state          TEXT    NOT NULL DEFAULT 'running',
    met_at         INTEGER,
    breached_at    INTEGER,
    created_at     INTEGER NOT NULL
);
-- At most one running timer per promise and ticket: starting one again re-times it.
CREATE UNIQUE INDEX timers_running ON timers (ticket_id, kind) WHERE state = 'running';
-- The scheduler's only query: the next due running timer. No scans.
CREATE INDEX timers_next ON timers (next_at) WHERE state = 'running';
CREATE INDEX timers_ticket ON timers (ticket_id, kind, state);
CREATE INDEX timers_due ON timers (due_at, kind);

CREATE TABLE surveys (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    ticket_id INTEGER NOT NULL REFERENCES tickets (id),
    speed     INTEGER,
    solving   INTEGER,
    attitude  INTEGER,
    overall   INTEGER NOT NULL,
    at        INTEGER NOT NULL
);
CREATE INDEX surveys_at ON surveys (at);
CREATE INDEX tickets_created ON tickets (created_at);
