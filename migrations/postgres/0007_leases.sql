-- Who holds a lease (issue #13): host/boot/pid/start of the daemon sending an outbox mail or
-- doing a shared-mailbox job. A restarted daemon takes back its dead predecessor's work at once.
ALTER TABLE outbox ADD COLUMN locked_by TEXT;
ALTER TABLE imap_jobs ADD COLUMN locked_by TEXT;
