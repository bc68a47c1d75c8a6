//! Inbound mail, stage by stage: `fetch` (the IMAP edge) → `parse` (with `charset` repairs) →
//! `screen` → `reply_text` → `thread` → `classify` → `apply`. Every stage but `fetch` is pure.

pub mod apply;
pub mod charset;
pub mod classify;
pub mod fetch;
pub mod ingest;
pub mod parse;
pub mod reply_text;
pub mod screen;
pub mod thread;
