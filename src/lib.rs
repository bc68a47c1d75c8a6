//! supportd: an email-channel customer-support daemon.
//!
//! The pipeline, one module per stage:
//! `fetch` (IMAP edge) → `parse` → `screen` → `thread` → `classify` → `apply` → `store` (one
//! transaction) → `send` (outbox worker, SMTP edge). `ingest` wires the stages together for one
//! mailbox; `app` runs the whole daemon. The stages between `fetch` and `store` are pure functions
//! over plain data.

pub mod actions;
pub mod agent;
pub mod app;
pub mod apply;
pub mod calendar;
pub mod charset;
pub mod classify;
pub mod cli;
pub mod clock;
pub mod compose;
pub mod config;
pub mod fetch;
pub mod health;
pub mod http;
pub mod imap_jobs;
pub mod ingest;
pub mod inspect;
pub mod lifecycle;
pub mod logging;
pub mod metrics;
pub mod model;
pub mod parse;
pub mod plan;
pub mod queue;
pub mod reply_text;
pub mod scheduler;
pub mod screen;
pub mod send;
pub mod sla;
pub mod store;
pub mod survey;
pub mod systemd;
pub mod templates;
pub mod testing;
pub mod thread;
pub mod worker;
