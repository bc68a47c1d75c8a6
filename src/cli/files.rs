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
    read_ticket(store, t, None).await
}

/// Every file of ticket `t`, and the text of the mail supportd sent on it (stored only in its
/// raw bytes) filled into `d`: one read and one parse of each stored mail serve both.
pub async fn ticket_files_and_sent_texts(
    store: &Store,
    t: TicketRef,
    d: &mut crate::store::TicketDetail,
) -> anyhow::Result<Vec<TicketFile>> {
    read_ticket(store, t, Some(d)).await
}

async fn read_ticket(
    store: &Store,
    t: TicketRef,
    mut detail: Option<&mut crate::store::TicketDetail>,
) -> anyhow::Result<Vec<TicketFile>> {
    let raws = store.ticket_raw_messages(t).await?;
    // The rows `ticket_detail` read, in the same order (`ORDER BY id`), unless a mail came in
    // between the two reads: then the sent texts stay unfilled.
    if let Some(d) = &detail {
        if d.messages.len() != raws.len() {
            detail = None;
        }
    }
    let mut out = Vec::new();
    for (k, m) in raws.iter().enumerate() {
        let parsed = crate::inbound::parse::parse(&m.raw);
        if let Some(row) = detail.as_deref_mut().map(|d| &mut d.messages[k]) {
            if row.1 == "out" && row.5.is_empty() {
                row.5 = parsed.text;
            }
        }
        // Cards and copies of our own mail repeat files stored with the mail they came in.
        if m.verdict == "ours" {
            continue;
        }
        for file in parsed.attachments {
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
