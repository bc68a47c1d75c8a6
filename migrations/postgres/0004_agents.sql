-- Agents and the shared mailbox (issue #6). Keep in step with ../sqlite/0004_agents.sql.
-- Work on the shared mailbox, done after the commit by the IMAP job worker, in id order:
-- 'append' puts message_id/raw into folder (once: it looks for the Message-ID first),
-- 'move' moves every card of the ticket into folder. folder is a role (open, waiting,
-- escalated, solved, sent); [queue] names the real folders.
CREATE TABLE imap_jobs (
    id              BIGSERIAL PRIMARY KEY,
    ticket_id       BIGINT NOT NULL REFERENCES tickets (id),
    kind            TEXT    NOT NULL,
    folder          TEXT    NOT NULL,
    message_id      TEXT,
    raw             BYTEA,
    status          TEXT    NOT NULL DEFAULT 'pending',
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    locked_until    BIGINT,
    last_error      TEXT,
    created_at      BIGINT NOT NULL,
    done_at         BIGINT
);
CREATE INDEX imap_jobs_due ON imap_jobs (status, id);
