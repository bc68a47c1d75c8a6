-- The monthly service report: the indexes its period scans use, the months already mailed (one
-- row per month: the claim that makes the mailing happen once across restarts and daemons), and
-- outgoing mail that belongs to no ticket (the report itself). Keep in step with
-- ../postgres/0011_monthly_report.sql.

CREATE INDEX tickets_solved ON tickets (solved_at);
CREATE INDEX tickets_first_reply ON tickets (first_reply_at);
CREATE INDEX tickets_survey_sent ON tickets (survey_sent_at);
-- Covering: the promises-kept figure reads only the index.
CREATE INDEX timers_started ON timers (started_at, kind, state, due_at, met_at);
CREATE INDEX timers_breached ON timers (breached_at);

CREATE TABLE monthly_reports (
    month      TEXT    PRIMARY KEY,
    message_id TEXT    NOT NULL,
    recipients TEXT    NOT NULL,
    queued_at  INTEGER NOT NULL
);

-- SQLite cannot drop NOT NULL in place: the outbox is rebuilt with ticket_id nullable.
CREATE TABLE outbox_rebuilt (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    ticket_id       INTEGER REFERENCES tickets (id),
    message_row     INTEGER NOT NULL REFERENCES messages (id),
    kind            TEXT    NOT NULL,
    message_id      TEXT    NOT NULL UNIQUE,
    recipient       TEXT    NOT NULL,
    recipients      TEXT    NOT NULL,
    envelope_from   TEXT    NOT NULL,
    status          TEXT    NOT NULL DEFAULT 'pending',
    attempts        INTEGER NOT NULL DEFAULT 0,
    created_at      INTEGER NOT NULL,
    next_attempt_at INTEGER NOT NULL,
    give_up_at      INTEGER NOT NULL,
    locked_until    INTEGER,
    sent_at         INTEGER,
    last_error      TEXT,
    locked_by       TEXT,
    accepted_at     INTEGER
);
INSERT INTO outbox_rebuilt (id, ticket_id, message_row, kind, message_id, recipient, recipients,
    envelope_from, status, attempts, created_at, next_attempt_at, give_up_at, locked_until, sent_at,
    last_error, locked_by, accepted_at)
SELECT id, ticket_id, message_row, kind, message_id, recipient, recipients, envelope_from, status,
    attempts, created_at, next_attempt_at, give_up_at, locked_until, sent_at, last_error, locked_by,
    accepted_at FROM outbox;
DROP TABLE outbox;
ALTER TABLE outbox_rebuilt RENAME TO outbox;
CREATE INDEX outbox_due ON outbox (status, next_attempt_at);
CREATE INDEX outbox_recipient ON outbox (recipient, kind, created_at);
