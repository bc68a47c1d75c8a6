//! Inbound mail. The IMAP edge (`fetch`, and `mailbox`: one folder's loop) hands batches to
//! `intake`, which runs the pure stages — `parse` (with `charset` repairs) → `screen` →
//! `reply_text` → `thread` → `classify` (together: `analyze`, what `inspect` runs) → `decide`
//! (which way each mail goes) → `apply` (what a customer's mail changes) — and commits the result
//! through the store's writer in one transaction.

pub mod analyze;
pub mod apply;
pub mod attachments;
pub mod charset;
pub mod classify;
pub mod decide;
pub mod fetch;
pub mod intake;
pub mod mailbox;
pub mod parse;
pub mod reply_text;
pub mod screen;
pub mod thread;
