-- supportd schema, PostgreSQL flavour. Times are milliseconds since the Unix epoch (UTC), from the
-- injected clock, never SQL now(). Keep in step with ../sqlite/0001_init.sql.

CREATE TABLE tickets (
    id             BIGSERIAL PRIMARY KEY,
    status         TEXT    NOT NULL DEFAULT 'open',
    requester      TEXT    NOT NULL,
    requester_name TEXT,
    subject        TEXT    NOT NULL,
    language       TEXT    NOT NULL,
    created_at     BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL,
    solved_at      BIGINT
);
CREATE INDEX tickets_status ON tickets (status, updated_at);

-- Every mail in and out. The raw message is kept intact in `raw`, byte for byte.
CREATE TABLE messages (
    id             BIGSERIAL PRIMARY KEY,
    ticket_id      BIGINT REFERENCES tickets (id),
    direction      TEXT    NOT NULL CHECK (direction IN ('in', 'out')),
    message_id     TEXT    NOT NULL,
    mailbox        TEXT,
    uidvalidity    BIGINT,
    uid            BIGINT,
    imap_done      BIGINT NOT NULL DEFAULT 1,
    from_addr      TEXT,
    from_name      TEXT,
    to_addrs       TEXT    NOT NULL DEFAULT '',
    cc_addrs       TEXT    NOT NULL DEFAULT '',
    subject        TEXT    NOT NULL DEFAULT '',
    in_reply_to    TEXT,
    references_ids TEXT    NOT NULL DEFAULT '',
    sent_at        BIGINT,
    received_at    BIGINT NOT NULL,
    text           TEXT    NOT NULL DEFAULT '',
    reply_text     TEXT    NOT NULL DEFAULT '',
    language       TEXT,
    verdict        TEXT    NOT NULL,
    verdict_reason TEXT    NOT NULL DEFAULT '',
    problems       TEXT,
    raw            BYTEA   NOT NULL
);
CREATE UNIQUE INDEX messages_direction_message_id ON messages (direction, message_id);
CREATE UNIQUE INDEX messages_imap_uid ON messages (mailbox, uidvalidity, uid);
CREATE INDEX messages_ticket ON messages (ticket_id, id);
CREATE INDEX messages_imap_pending ON messages (mailbox, uidvalidity, uid) WHERE imap_done = 0;

CREATE TABLE participants (
    ticket_id BIGINT NOT NULL REFERENCES tickets (id),
    address   TEXT    NOT NULL,
    role      TEXT    NOT NULL,
    added_at  BIGINT NOT NULL,
    PRIMARY KEY (ticket_id, address)
);

-- Append-only. ticket_id NULL: an ops event (malformed or unattributable mail).
CREATE TABLE events (
    id        BIGSERIAL PRIMARY KEY,
    ticket_id BIGINT REFERENCES tickets (id),
    at        BIGINT NOT NULL,
    kind      TEXT    NOT NULL,
    detail    TEXT    NOT NULL
);
CREATE INDEX events_ticket ON events (ticket_id, id);
CREATE INDEX events_kind ON events (kind, at);

-- Transactional outbox. The finished mail is the `raw` of its messages row (message_row).
CREATE TABLE outbox (
    id              BIGSERIAL PRIMARY KEY,
    ticket_id       BIGINT NOT NULL REFERENCES tickets (id),
    message_row     BIGINT NOT NULL REFERENCES messages (id),
    kind            TEXT    NOT NULL,
    message_id      TEXT    NOT NULL UNIQUE,
    recipient       TEXT    NOT NULL,
    recipients      TEXT    NOT NULL,
    envelope_from   TEXT    NOT NULL,
    status          TEXT    NOT NULL DEFAULT 'pending',
    attempts        BIGINT NOT NULL DEFAULT 0,
    created_at      BIGINT NOT NULL,
    next_attempt_at BIGINT NOT NULL,
    give_up_at      BIGINT NOT NULL,
    locked_until    BIGINT,
    sent_at         BIGINT,
    last_error      TEXT
);
CREATE INDEX outbox_due ON outbox (status, next_attempt_at);
CREATE INDEX outbox_recipient ON outbox (recipient, kind, created_at);

CREATE TABLE imap_checkpoints (
    mailbox     TEXT    PRIMARY KEY,
    uidvalidity BIGINT NOT NULL,
    last_uid    BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);
