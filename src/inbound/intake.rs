//! Intake: a fetched batch of mail, stored with everything it causes, in one transaction.
//!
//! IO only at the edges: the batch is analyzed (pure), the facts its decisions depend on are
//! loaded in a few queries, each mail is routed and decided in order (pure, `decide`), new tickets
//! get their numbers, and the writer commits every row with the mailbox checkpoint. One mail
//! alone is a batch of one: there is no second path.
//!
//! Invariants: everything one mail causes commits in one transaction with the checkpoint (a batch
//! is one group commit, and if it fails each mail is committed alone, so one bad mail cannot
//! hold back the others); a mail the database refuses is quarantined raw with an ops event,
//! never blocking its mailbox; a human mail that ends without a ticket is reported loudly (WARN
//! with mailbox, UID and Message-ID; the `unattributed_mail` event; the metric).

use crate::app::context::Desk;
use crate::domain::EventKind;
use crate::domain::{FactsWanted, IntakeFacts, MessageId, Millis, Plan, TicketRef};
use crate::inbound::analyze::Analysis;
use crate::inbound::decide::{self, Decided, FolderRole};
use crate::ops::metrics::Metrics;
use crate::store::{Backend, ImapLocation, MessageRow, Record, Store, StoreError, Tx};
use serde_json::json;
use tracing::{debug, info, warn};

/// What storing one new mail did, for the metrics (counted after the commit).
#[derive(Debug, Clone)]
pub struct Processed {
    pub verdict: &'static str,
    pub events: Vec<(EventKind, serde_json::Value)>,
    /// Time spent on it, commit included (its share of a group commit).
    pub seconds: f64,
}

impl Processed {
    pub fn record(&self, m: &Metrics) {
        m.screened(self.verdict);
        let events: Vec<_> = self.events.iter().map(|(k, d)| (*k, d)).collect();
        m.events(&events);
        m.processed(self.seconds);
    }
}

/// A fetched batch: the folder it came from (its checkpoint key and UIDVALIDITY), what the
/// folder is for, and the mails by UID, ascending.
#[derive(Debug, Clone, Copy)]
pub struct Batch<'a> {
    pub mailbox: &'a str,
    pub uidvalidity: u32,
    pub role: FolderRole,
    pub mails: &'a [(u32, Vec<u8>)],
    /// Several daemons: the mailbox's lease, checked in the commit (fencing).
    pub fence: Option<&'a crate::store::leases::Lease>,
}

impl<'a> Batch<'a> {
    /// A batch from an inbox folder (customers' and agents' mail).
    pub fn inbox(mailbox: &'a str, uidvalidity: u32, mails: &'a [(u32, Vec<u8>)]) -> Batch<'a> {
        Batch {
            mailbox,
            uidvalidity,
            role: FolderRole::Inbox,
            mails,
            fence: None,
        }
    }
}

/// Stores a fetched batch and everything it causes in one transaction, with the checkpoint. If
/// the batch fails, each mail is stored in a transaction of its own; a mail the database refuses
/// then is quarantined raw. Returns what each new mail did.
pub async fn store_batch(
    store: &Store,
    desk: &Desk,
    batch: Batch<'_>,
    now: Millis,
) -> Result<Vec<Processed>, StoreError> {
    let started = std::time::Instant::now();
    let analyzed = analyze_batch(desk, batch.mails);
    store_analyzed(store, desk, batch, &analyzed, started, now).await
}

/// The pure stages over a batch (CPU only: a daemon runs this off the async runtime, with
/// `spawn_blocking`, so that a big batch never stalls a send or an IMAP session).
pub fn analyze_batch(desk: &Desk, mails: &[(u32, Vec<u8>)]) -> Vec<Analysis> {
    mails
        .iter()
        .map(|(_, raw)| {
            let mut a = desk.analyzer.analyze(raw);
            // Compressed here too, beside the parse, and not by the one writer.
            a.packed = Some(crate::store::pack_raw(raw));
            a
        })
        .collect()
}

/// [`store_batch`] after [`analyze_batch`]: `analyzed[k]` is `batch.mails[k]`'s analysis;
/// `started` is when the batch's work began (for the per-mail processing time).
pub async fn store_analyzed(
    store: &Store,
    desk: &Desk,
    batch: Batch<'_>,
    analyzed: &[Analysis],
    started: std::time::Instant,
    now: Millis,
) -> Result<Vec<Processed>, StoreError> {
    if batch.mails.is_empty() {
        return Ok(Vec::new());
    }
    match commit(store, desk, batch, analyzed, now).await {
        Ok(mut done) => {
            let each = started.elapsed().as_secs_f64() / batch.mails.len() as f64;
            for p in &mut done {
                p.seconds = each;
            }
            Ok(done)
        }
        Err(e @ StoreError::LeaseLost(..)) => Err(e),
        Err(e) if batch.mails.len() > 1 => {
            warn!(error = %e, mails = batch.mails.len(), imap.mailbox = batch.mailbox, "group commit failed; storing the batch one mail at a time");
            let mut done = Vec::new();
            for (k, one) in batch.mails.chunks(1).enumerate() {
                let single = Batch {
                    mails: one,
                    ..batch
                };
                match commit(store, desk, single, &analyzed[k..=k], now).await {
                    Ok(p) => done.extend(p),
                    Err(e) if refused_by_database(&e) => {
                        done.extend(quarantine(store, single, &e.to_string(), now).await?)
                    }
                    Err(e) => return Err(e),
                }
            }
            Ok(done)
        }
        Err(e) if refused_by_database(&e) => quarantine(store, batch, &e.to_string(), now).await,
        Err(e) => Err(e),
    }
}

/// The database refused this mail's data (a constraint, an encoding, a value too big), as
/// opposed to a storage or connection fault (disk full, I/O error, busy, lost connection) that
/// passes: only the former quarantines a mail; the latter fails the batch, which is fetched
/// again once the database works.
fn refused_by_database(e: &StoreError) -> bool {
    let StoreError::Db(sqlx::Error::Database(db)) = e else {
        return false;
    };
    if db.kind() != sqlx::error::ErrorKind::Other {
        // Unique, foreign-key, not-null or check violations.
        return true;
    }
    let code = db.code().unwrap_or_default();
    if code.len() == 5 {
        // PostgreSQL SQLSTATE: class 22 (data exception: bad encoding, value too long) and 23
        // (integrity constraint). Classes 08, 40, 53, 57, 58 are faults that pass.
        return code.starts_with("22") || code.starts_with("23");
    }
    // SQLite result codes (at most four digits; the primary code in the low byte): TOOBIG,
    // CONSTRAINT, MISMATCH, RANGE. FULL (13), IOERR (10), BUSY (5), LOCKED (6), NOMEM (7),
    // CANTOPEN (14) and READONLY (8) are storage faults.
    code.parse::<i64>()
        .is_ok_and(|n| matches!(n & 0xff, 18 | 19 | 20 | 25))
}

/// Decides every mail of the batch in order and commits it all, checkpoint included.
async fn commit(
    store: &Store,
    desk: &Desk,
    batch: Batch<'_>,
    analyzed: &[Analysis],
    now: Millis,
) -> Result<Vec<Processed>, StoreError> {
    let last = batch.mails.iter().map(|(u, _)| *u).max().unwrap_or(0);
    let mut tx = store.begin().await?;
    if let Some(lease) = batch.fence {
        // First, so the lease row stays locked until the commit: no takeover slips in.
        // Lease times are wall-clock time (see `app::cluster`).
        store
            .fence(
                &mut tx,
                lease,
                crate::clock::Clock::now(&crate::clock::SystemClock),
            )
            .await?;
    }
    let mut facts = store
        .intake_facts(
            &mut tx,
            batch.mailbox,
            batch.uidvalidity,
            &wanted(batch, analyzed),
            now,
        )
        .await?;
    let mut numbers = TicketNumbers::new();
    let mut decided: Vec<(usize, Decided)> = Vec::with_capacity(analyzed.len());
    for (k, ((uid, _), a)) in batch.mails.iter().zip(analyzed).enumerate() {
        let route = decide::route(desk, &facts, a, *uid, batch.role, now);
        let number = if route.opens_ticket() {
            Some(numbers.next(store, &mut tx).await?)
        } else {
            None
        };
        let Some(d) = decide::decide(desk, &facts, a, route, number, now) else {
            debug!(imap.uid = uid, message.id = %a.mail.message_id, "already stored or nothing to record");
            continue;
        };
        decide::record(&mut facts, a, *uid, &d, now);
        decided.push((k, d));
    }
    let locations: Vec<ImapLocation> = batch
        .mails
        .iter()
        .map(|(uid, _)| ImapLocation {
            mailbox: batch.mailbox.to_string(),
            uidvalidity: batch.uidvalidity,
            uid: *uid,
        })
        .collect();
    let records: Vec<Record<'_>> = decided
        .iter()
        .map(|(k, d)| {
            let a = &analyzed[*k];
            let mut row = MessageRow::inbound(
                &a.mail,
                &batch.mails[*k].1,
                &locations[*k],
                d.verdict,
                &d.reason,
                a.classification.language.code(),
                &a.reply_text,
                d.ticket,
            );
            row.packed = a.packed.as_ref();
            if d.outgoing {
                row.outgoing = true;
                row.imap_pending = false;
            }
            Record {
                message: Some(row),
                opened: d.opened.as_ref(),
                plan: &d.plan,
            }
        })
        .collect();
    store.commit(&mut tx, &records, now).await?;
    store
        .set_checkpoint(&mut tx, batch.mailbox, batch.uidvalidity, last, now)
        .await?;
    tx.commit().await?;
    Ok(decided
        .iter()
        .map(|(k, d)| {
            let a = &analyzed[*k];
            let uid = batch.mails[*k].0;
            report(batch, uid, a, d);
            Processed {
                verdict: d.verdict,
                events: d
                    .plan
                    .events
                    .iter()
                    .map(|e| (e.kind, e.detail.clone()))
                    .collect(),
                seconds: 0.0,
            }
        })
        .collect())
}

/// Logs a committed mail: info for what people should know, WARN for a person's mail that got no
/// ticket and for an agent's address refused authority.
fn report(batch: Batch<'_>, uid: u32, a: &Analysis, d: &Decided) {
    let from = a
        .mail
        .from
        .as_ref()
        .map(crate::ops::logging::addr)
        .unwrap_or_default();
    for e in &d.plan.events {
        match e.kind {
            EventKind::UnattributedMail => warn!(
                imap.mailbox = batch.mailbox,
                imap.uid = uid,
                message.id = %a.mail.message_id,
                "a person's mail could not be filed on any ticket (no usable sender): see `supportd unattributed list`"
            ),
            EventKind::AgentAuthorityRefused => warn!(
                imap.mailbox = batch.mailbox,
                imap.uid = uid,
                message.id = %a.mail.message_id,
                %from,
                why = %e.detail["why"],
                "agent address without agent authority: treated as customer mail"
            ),
            _ => {}
        }
    }
    debug!(
        imap.mailbox = batch.mailbox,
        imap.uid = uid,
        message.id = %a.mail.message_id,
        ticket.ref = d.ticket.map(|t| t.to_string()).unwrap_or_default(),
        %from,
        screen.verdict = d.verdict,
        outbox = d.plan.outbox.len(),
        "mail stored"
    );
    if d.verdict == "agent" || d.verdict == "agent_direct" {
        info!(
            ticket.ref = d.ticket.map(|t| t.to_string()).unwrap_or_default(),
            events = ?d.plan.events.iter().map(|e| e.kind).collect::<Vec<_>>(),
            "agent mail"
        );
    }
}

/// What the batch's decisions need looked up.
fn wanted(batch: Batch<'_>, analyzed: &[Analysis]) -> FactsWanted {
    let mut w = FactsWanted {
        uids: batch.mails.iter().map(|(u, _)| *u).collect(),
        ..Default::default()
    };
    for a in analyzed {
        w.message_ids.push(a.mail.message_id.clone());
        w.message_ids
            .extend(a.hints.references.iter().take(50).cloned());
        w.message_ids.extend(a.hints.bounced.iter().cloned());
        w.tickets.extend(a.hints.token);
        w.tickets.extend(a.hints.agent_token.map(|(t, _)| t));
        w.tickets.extend(a.hints.tags.iter().take(10));
        w.tickets.extend(a.hints.quoted_tags.iter().take(10));
        w.senders.extend(a.mail.from.iter().cloned());
        w.senders.extend(a.mail.reply_to.iter().cloned());
    }
    w
}

/// New tickets' numbers, taken in the order the batch's mails open tickets, so a batch and the
/// same mails one at a time number their tickets alike. SQLite: the next free number under the
/// write lock, read once per batch, no gaps. PostgreSQL: the sequence, one number at a time (a
/// number reserved for a mail that then opens no ticket would be a gap).
struct TicketNumbers {
    next_free: Option<i64>,
}

impl TicketNumbers {
    fn new() -> TicketNumbers {
        TicketNumbers { next_free: None }
    }

    async fn next(&mut self, store: &Store, tx: &mut Tx) -> Result<TicketRef, StoreError> {
        if store.backend() == Backend::Sqlite {
            if let Some(n) = self.next_free {
                self.next_free = Some(n + 1);
                return Ok(TicketRef(n));
            }
        }
        let n = store
            .reserve_ids(tx, "tickets", 1)
            .await?
            .first()
            .copied()
            .ok_or(StoreError::Db(sqlx::Error::RowNotFound))?;
        self.next_free = Some(n + 1);
        Ok(TicketRef(n))
    }
}

/// Keeps a mail the database refused, raw and flagged, with an ops event; moves the checkpoint.
async fn quarantine(
    store: &Store,
    batch: Batch<'_>,
    error: &str,
    now: Millis,
) -> Result<Vec<Processed>, StoreError> {
    let mut done = Vec::new();
    let mut tx = store.begin().await?;
    for (uid, raw) in batch.mails {
        let at = ImapLocation {
            mailbox: batch.mailbox.to_string(),
            uidvalidity: batch.uidvalidity,
            uid: *uid,
        };
        let id = MessageId::synthetic(raw);
        let facts: IntakeFacts = store
            .intake_facts(
                &mut tx,
                batch.mailbox,
                batch.uidvalidity,
                &FactsWanted {
                    message_ids: vec![id.clone()],
                    uids: vec![*uid],
                    ..Default::default()
                },
                now,
            )
            .await?;
        if facts.uids.contains(uid) || facts.inbound.contains_key(&id) {
            continue;
        }
        warn!(
            imap.mailbox = batch.mailbox,
            imap.uid = uid,
            error,
            "mail refused by the database; quarantined raw"
        );
        let plan = Plan::with_event(
            None,
            EventKind::MailQuarantined,
            json!({"mailbox": batch.mailbox, "uid": uid, "message_id": id.as_str(), "error": error}),
        );
        let record = Record {
            message: Some(MessageRow::quarantined(id.as_str(), raw, &at, error)),
            opened: None,
            plan: &plan,
        };
        store.commit(&mut tx, &[record], now).await?;
        done.push(Processed {
            verdict: "quarantined",
            events: plan
                .events
                .iter()
                .map(|e| (e.kind, e.detail.clone()))
                .collect(),
            seconds: 0.0,
        });
    }
    if let Some(last) = batch.mails.iter().map(|(u, _)| *u).max() {
        store
            .set_checkpoint(&mut tx, batch.mailbox, batch.uidvalidity, last, now)
            .await?;
    }
    tx.commit().await?;
    Ok(done)
}
