-- Several daemons on one PostgreSQL (README "High availability"): one lease per mailbox, held
-- by one daemon at a time and renewed while its loop is healthy; the epoch grows with every
-- new holder and is checked in every batch's commit (fencing: a paused old holder cannot
-- commit after a new one took over). The daemons table carries heartbeats, for fair shares.
-- lease_history keeps who held what when. SQLite runs one daemon (a lock file refuses a second)
-- and does not use these tables. Keep in step with ../postgres/0012_mailbox_leases.sql.

CREATE TABLE mailbox_leases (
    mailbox     TEXT    PRIMARY KEY,
    holder      TEXT    NOT NULL,
    epoch       INTEGER  NOT NULL,
    acquired_at INTEGER  NOT NULL,
    renewed_at  INTEGER  NOT NULL,
    expires_at  INTEGER  NOT NULL
);

CREATE TABLE lease_history (
    mailbox     TEXT    NOT NULL,
    epoch       INTEGER  NOT NULL,
    holder      TEXT    NOT NULL,
    acquired_at INTEGER  NOT NULL,
    ended_at    INTEGER,
    how         TEXT,
    PRIMARY KEY (mailbox, epoch)
);

CREATE TABLE daemons (
    holder       TEXT    PRIMARY KEY,
    host         TEXT    NOT NULL,
    pid          INTEGER  NOT NULL,
    started_at   INTEGER  NOT NULL,
    heartbeat_at INTEGER  NOT NULL
);
