-- Message-IDs a gateway recorded for an inbound mail before rewriting its Message-ID
-- (X-Original-Message-ID and vendors' forms): a reply written from the sender's own copy names
-- the original, so threading looks these up as well as messages.message_id.
CREATE TABLE message_aliases (
    alias       TEXT    NOT NULL,
    message_row INTEGER NOT NULL REFERENCES messages (id),
    PRIMARY KEY (alias, message_row)
);
