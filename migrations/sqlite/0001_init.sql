-- supportd schema, SQLite flavour. Times are milliseconds since the Unix epoch (UTC), from the
-- injected clock, never SQL now(). Keep in step with ../postgres/0001_init.sql.

CREATE TABLE tickets (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    status         TEXT    NOT NULL DEFAULT 'open',
    requester      TEXT    NOT NULL,
    requester_name TEXT,
    subject        TEXT    NOT NULL,
    language       TEXT    NOT NULL,
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL,
    solved_at      INTEGER
);
CREATE INDEX tickets_status ON tickets (status, updated_at);

-- Every mail in and out. The raw message is kept intact in `raw`, byte for byte.
CREATE TABLE messages (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    ticket_id      INTEGER REFERENCES tickets (id),
    direction      TEXT    NOT NULL CHECK (direction IN ('in', 'out')),
    message_id     TEXT    NOT NULL,
    mailbox        TEXT,
    uidvalidity    INTEGER,
    uid            INTEGER,
    imap_done      INTEGER NOT NULL DEFAULT 1,
    from_addr      TEXT,
    from_name      TEXT,
    to_addrs       TEXT    NOT NULL DEFAULT '',
    cc_addrs       TEXT    NOT NULL DEFAULT '',
    subject        TEXT    NOT NULL DEFAULT '',
    in_reply_to    TEXT,
    references_ids TEXT    NOT NULL DEFAULT '',
    sent_at        INTEGER,
    received_at    INTEGER NOT NULL,
    text           TEXT    NOT NULL DEFAULT '',
    reply_text     TEXT    NOT NULL DEFAULT '',
    language       TEXT,
    verdict        TEXT    NOT NULL,
    verdict_reason TEXT    NOT NULL DEFAULT '',
    problems       TEXT,
    raw            BLOB    NOT NULL
);
CREATE UNIQUE INDEX messages_direction_message_id ON messages (direction, message_id);
CREATE UNIQUE INDEX messages_imap_uid ON messages (mailbox, uidvalidity, uid);
CREATE INDEX messages_ticket ON messages (ticket_id, id);
CREATE INDEX messages_imap_pending ON messages (mailbox, uidvalidity, uid) WHERE imap_done = 0;

CREATE TABLE participants (
    ticket_id INTEGER NOT NULL REFERENCES tickets (id),
    address   TEXT    NOT NULL,
    role      TEXT    NOT NULL,
    added_at  INTEGER NOT NULL,
    PRIMARY KEY (ticket_id, address)
);

-- Append-only. ticket_id NULL: an ops event (malformed or unattributable mail).
CREATE TABLE events (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    ticket_id INTEGER REFERENCES tickets (id),
    at        INTEGER NOT NULL,
    kind      TEXT    NOT NULL,
    detail    TEXT    NOT NULL
);
CREATE INDEX events_ticket ON events (ticket_id, id);
CREATE INDEX events_kind ON events (kind, at);

-- Transactional outbox. The finished mail is the `raw` of its messages row (message_row).
CREATE TABLE outbox (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    ticket_id       INTEGER NOT NULL REFERENCES tickets (id),
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
    last_error      TEXT
);
CREATE INDEX outbox_due ON outbox (status, next_attempt_at);
CREATE INDEX outbox_recipient ON outbox (recipient, kind, created_at);

CREATE TABLE imap_checkpoints (
    mailbox     TEXT    PRIMARY KEY,
    uidvalidity INTEGER NOT NULL,
    last_uid    INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);
