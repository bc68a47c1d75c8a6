-- Service promises (issue #5): ticket life and durable timers. Keep in step with
-- ../sqlite/0003_service_promises.sql. Times are milliseconds from the injected clock.
ALTER TABLE tickets ADD COLUMN owner             TEXT;
ALTER TABLE tickets ADD COLUMN complex           BIGINT NOT NULL DEFAULT 0;
ALTER TABLE tickets ADD COLUMN escalated         BIGINT NOT NULL DEFAULT 0;
ALTER TABLE tickets ADD COLUMN escalated_at      BIGINT;
ALTER TABLE tickets ADD COLUMN acked_at          BIGINT;
ALTER TABLE tickets ADD COLUMN first_reply_at    BIGINT;
ALTER TABLE tickets ADD COLUMN agent_replies     BIGINT NOT NULL DEFAULT 0;
ALTER TABLE tickets ADD COLUMN reopens           BIGINT NOT NULL DEFAULT 0;
ALTER TABLE tickets ADD COLUMN survey_message_id TEXT;
ALTER TABLE tickets ADD COLUMN survey_sent_at    BIGINT;
ALTER TABLE tickets ADD COLUMN followup_sent_at  BIGINT;
ALTER TABLE tickets ADD COLUMN followup_at       BIGINT;
ALTER TABLE tickets ADD COLUMN followup_result   TEXT;

-- One row per promise. state: running → met | breached | cancelled; a promise kept after its
-- breach keeps state 'breached' and gets met_at. next_at: the next warning, or the due time.
CREATE TABLE timers (
    id             BIGSERIAL PRIMARY KEY,
    ticket_id      BIGINT NOT NULL REFERENCES tickets (id),
    kind           TEXT    NOT NULL,
    started_at     BIGINT NOT NULL,
    span_ms        BIGINT NOT NULL,
    due_at         BIGINT NOT NULL,
    next_at        BIGINT NOT NULL,
    warnings_fired BIGINT NOT NULL DEFAULT 0,
    state          TEXT    NOT NULL DEFAULT 'running',
    met_at         BIGINT,
    breached_at    BIGINT,
    created_at     BIGINT NOT NULL
);
-- At most one running timer per promise and ticket: starting one again re-times it.
CREATE UNIQUE INDEX timers_running ON timers (ticket_id, kind) WHERE state = 'running';
-- The scheduler's only query: the next due running timer. No scans.
CREATE INDEX timers_next ON timers (next_at) WHERE state = 'running';
CREATE INDEX timers_ticket ON timers (ticket_id, kind, state);
CREATE INDEX timers_due ON timers (due_at, kind);

CREATE TABLE surveys (
    id        BIGSERIAL PRIMARY KEY,
    ticket_id BIGINT NOT NULL REFERENCES tickets (id),
    speed     BIGINT,
    solving   BIGINT,
    attitude  BIGINT,
    overall   BIGINT NOT NULL,
    at        BIGINT NOT NULL
);
CREATE INDEX surveys_at ON surveys (at);
CREATE INDEX tickets_created ON tickets (created_at);
