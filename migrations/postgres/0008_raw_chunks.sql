-- Mails larger than 1 MiB are kept in 1 MiB chunks, so that storing or reading one never binds
-- the whole mail in one value (each bound value is copied by the driver and by SQLite: memory
-- would grow by several times the mail). `raw_blob` names the chunks (SHA-256 of the bytes, hex)
-- and `raw` is then empty; small mails stay inline in `raw`.
ALTER TABLE messages ADD COLUMN raw_blob TEXT;
ALTER TABLE imap_jobs ADD COLUMN raw_blob TEXT;
CREATE TABLE raw_chunks (
    blob  TEXT    NOT NULL,
    seq   BIGINT  NOT NULL,
    bytes BYTEA   NOT NULL,
    PRIMARY KEY (blob, seq)
);
CREATE INDEX messages_raw_blob ON messages (raw_blob) WHERE raw_blob IS NOT NULL;
CREATE INDEX imap_jobs_raw_blob ON imap_jobs (raw_blob) WHERE raw_blob IS NOT NULL;

-- When the SMTP server accepted the mail (RFC 5321 250 after DATA), committed at once on its own:
-- a mail claimed again after a crash with this set is recorded as sent, not sent again. It
-- shrinks the one at-least-once window to a single one-row UPDATE.
ALTER TABLE outbox ADD COLUMN accepted_at BIGINT;
