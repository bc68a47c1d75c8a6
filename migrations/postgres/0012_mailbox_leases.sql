-- Several daemons on one PostgreSQL (README "High availability"): one lease per mailbox, held
-- by one daemon at a time and renewed while its loop is healthy; the epoch grows with every
-- new holder and is checked in every batch's commit (fencing: a paused old holder cannot
-- commit after a new one took over). The daemons table carries heartbeats, for fair shares.
-- lease_history keeps who held what when. SQLite runs one daemon (a lock file refuses a second)
-- and does not use these tables. Keep in step with ../sqlite/0012_mailbox_leases.sql.

CREATE TABLE mailbox_leases (
    mailbox     TEXT    PRIMARY KEY,
    holder      TEXT    NOT NULL,
    epoch       BIGINT  NOT NULL,
    acquired_at BIGINT  NOT NULL,
    renewed_at  BIGINT  NOT NULL,
    expires_at  BIGINT  NOT NULL
);

CREATE TABLE lease_history (
    mailbox     TEXT    NOT NULL,
    epoch       BIGINT  NOT NULL,
    holder      TEXT    NOT NULL,
    acquired_at BIGINT  NOT NULL,
    ended_at    BIGINT,
    how         TEXT,
    PRIMARY KEY (mailbox, epoch)
);

CREATE TABLE daemons (
    holder       TEXT    PRIMARY KEY,
    host         TEXT    NOT NULL,
    pid          BIGINT  NOT NULL,
    started_at   BIGINT  NOT NULL,
    heartbeat_at BIGINT  NOT NULL
);
