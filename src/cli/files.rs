//! A ticket's files: every attachment of every message, numbered in order, for `ticket show`
//! and `supportd attachment get`. Read from the stored raw mail (byte for byte as it came or
//! went), parsed by the same stage the daemon uses.

use crate::domain::{Attachment, Millis, TicketRef};
use crate::store::Store;
use serde::Serialize;

/// One file of a ticket.
#[derive(Debug, Clone, Serialize)]
pub struct TicketFile {
    /// 1-based, in the order the messages came and the files stand in them.
    pub n: usize,
    /// When its message was stored, which way it went (`in`/`out`), and who sent it.
    pub at: Millis,
    pub direction: String,
    pub from: Option<String>,
    #[serde(flatten)]
    pub file: Attachment,
}

/// Every file of ticket `t`.
pub async fn ticket_files(store: &Store, t: TicketRef) -> anyhow::Result<Vec<TicketFile>> {
    let mut out = Vec::new();
    for m in store.ticket_raw_messages(t).await? {
        // Cards and copies of our own mail repeat files stored with the mail they came in.
        if m.verdict == "ours" {
            continue;
        }
        for file in crate::inbound::parse::parse(&m.raw).attachments {
            out.push(TicketFile {
                n: out.len() + 1,
                at: m.at,
                direction: m.direction.clone(),
                from: m.from.clone(),
                file,
            });
        }
    }
    Ok(out)
}

/// Fills in the text of the mail supportd sent on ticket `t` (stored only in its raw bytes),
/// parsed by the same stage that reads every mail.
pub async fn sent_texts(
    store: &Store,
    t: TicketRef,
    d: &mut crate::store::TicketDetail,
) -> anyhow::Result<()> {
    if !d.messages.iter().any(|m| m.1 == "out" && m.5.is_empty()) {
        return Ok(());
    }
    let raws = store.ticket_raw_messages(t).await?;
    // The same rows in the same order (`ORDER BY id`), unless a mail came in between the reads.
    if raws.len() != d.messages.len() {
        return Ok(());
    }
    for (m, r) in d.messages.iter_mut().zip(raws) {
        if m.1 == "out" && m.5.is_empty() {
            m.5 = crate::inbound::parse::parse(&r.raw).text;
        }
    }
    Ok(())
}

/// The file `which` names: its number, or its name (the newest file of that name).
pub fn pick<'a>(files: &'a [TicketFile], which: &str) -> Option<&'a TicketFile> {
    match which.parse::<usize>() {
        Ok(n) => files.iter().find(|f| f.n == n),
        Err(_) => files
            .iter()
            .rev()
            .find(|f| f.file.name.as_deref() == Some(which)),
    }
}
