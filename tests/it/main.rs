//! Integration tests: the real daemon against the real mail rig (Dovecot + Postfix started by
//! `deploy/dev/mailrig`) and real databases (a SQLite file, and PostgreSQL on 127.0.0.1:5432).
//! Every test uses its own support mailbox, customers and database, so tests never share state.
//! Set `TEST_LOG=1` to see the daemon's logs.

mod agent_replies;
mod agents;
mod attachments;
mod authority;
mod classification;
mod daemon;
mod equivalence;
mod fixtures;
mod helpers;
mod ingest;
mod intake;
mod mime_corpus;
mod oauth;
mod oauth_server;
mod ops;
mod personal;
mod promises;
mod reply_corpus;
mod report;
mod screening;
mod screening_blind;
mod threading;
mod threading_enterprise;
