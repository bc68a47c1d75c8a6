//! Outgoing mail: approved `templates`, `compose` (a finished mail from a template, Message-ID
//! and bytes fixed when queued), and the `outbox` worker with the SMTP edge.

pub mod compose;
pub mod labels;
pub mod outbox;
pub mod smtp;
pub mod templates;
