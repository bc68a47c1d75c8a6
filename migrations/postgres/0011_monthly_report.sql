-- The monthly service report: the indexes its period scans use, the months already mailed (one
-- row per month: the claim that makes the mailing happen once across restarts and daemons), and
-- outgoing mail that belongs to no ticket (the report itself). Keep in step with
-- ../sqlite/0011_monthly_report.sql.

CREATE INDEX tickets_solved ON tickets (solved_at);
CREATE INDEX tickets_first_reply ON tickets (first_reply_at);
CREATE INDEX tickets_survey_sent ON tickets (survey_sent_at);
-- Covering: the promises-kept figure reads only the index.
CREATE INDEX timers_started ON timers (started_at, kind, state, due_at, met_at);
CREATE INDEX timers_breached ON timers (breached_at);

CREATE TABLE monthly_reports (
    month      TEXT   PRIMARY KEY,
    message_id TEXT   NOT NULL,
    recipients TEXT   NOT NULL,
    queued_at  BIGINT NOT NULL
);

ALTER TABLE outbox ALTER COLUMN ticket_id DROP NOT NULL;
