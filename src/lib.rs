//! supportd: an email-channel customer-support daemon.
//!
//! The tree is the map. Mail comes in through `inbound` (IMAP fetch → parse → screen → thread →
//! classify → apply), a ticket lives by the rules in `ticket` (lifecycle, service promises,
//! calendar, survey), agents work through `agents` (their mail, the shared mailbox, approved
//! wording), mail goes out through `outbound` (templates, composing, the outbox worker), and the
//! background `workers` keep timers and the shared mailbox. `store` is the database edge,
//! `domain` the vocabulary everyone shares, `app` the running daemon and its reloadable decision
//! context, `config` the settings, `ops` what operators watch, `cli` the command line.

pub mod agents;
pub mod app;
pub mod cli;
pub mod clock;
pub mod config;
pub mod domain;
pub mod inbound;
pub mod oauth;
pub mod ops;
pub mod outbound;
pub mod report;
pub mod store;
pub mod testing;
pub mod ticket;
pub mod workers;
