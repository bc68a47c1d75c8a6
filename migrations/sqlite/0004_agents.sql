-- Agents and the shared mailbox (issue #6). Keep in step with ../postgres/0004_agents.sql.
-- Work on the shared mailbox, done after the commit by the IMAP job worker, in id order:
-- 'append' puts message_id/raw into folder (once: it looks for the Message-ID first),
-- 'move' moves every card of the ticket into folder. folder is a role (open, waiting,
-- escalated, solved, sent); [queue] names the real folders.
CREATE TABLE imap_jobs (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    ticket_id       INTEGER NOT NULL REFERENCES tickets (id),
    kind            TEXT    NOT NULL,
    folder          TEXT    NOT NULL,
    message_id      TEXT,
    raw             BLOB,
    status          TEXT    NOT NULL DEFAULT 'pending',
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    locked_until    INTEGER,
    last_error      TEXT,
    created_at      INTEGER NOT NULL,
    done_at         INTEGER
);
CREATE INDEX imap_jobs_due ON imap_jobs (status, id);
