//! Customers' personal data (PIPL, PDPO, GDPR): what supportd keeps about an address, its export,
//! and its erasure; retention erases solved tickets the same way.
//!
//! What concerns an address: the tickets it requested (everything on them), the tickets it takes
//! part in (its own mails there, and its address in others' recipients and in events), and its
//! mails on no ticket (unattributed or quarantined).
//!
//! Erasure keeps what reports count and nothing personal: a requested ticket stays with its
//! class, status, times, timers, survey scores and corrections, but its requester becomes
//! `erased+T000123@erased.invalid`, its subject `(erased)`, its messages lose addresses, names,
//! subjects, texts and raw bytes (the Message-IDs stay, so the same mail fetched again is still
//! known), its participants go, its events keep only their kind, its outgoing mail not yet sent
//! is cancelled, and its shared-mailbox jobs lose their cards. IMAP copies (cards, archived
//! originals, Sent copies) are deleted by `expunge` jobs committed with the erasure. One
//! transaction; idempotent (a second run finds nothing); an audit event on each ticket (and
//! one without a ticket) says who erased, when and why — never what.

use super::{Result, Store, Tx};
use crate::domain::{EmailAddress, EventKind, ImapJob, MessageId, Millis, Plan, TicketRef};
use serde::Serialize;
use sqlx::Row;

/// A ticket that concerns an address.
#[derive(Debug, Clone, Serialize)]
pub struct CustomerTicket {
    pub ticket: String,
    /// `requester` or `participant`.
    pub role: &'static str,
    pub status: String,
    pub subject: String,
    pub created_at: Millis,
}

/// A mail that concerns an address.
#[derive(Debug, Clone, Serialize)]
pub struct CustomerMessage {
    #[serde(skip)]
    pub row: i64,
    pub ticket: Option<String>,
    /// `in` (received) or `out` (sent by supportd).
    pub direction: String,
    pub received_at: Millis,
    pub from: Option<String>,
    pub to: String,
    pub subject: String,
    pub message_id: String,
    pub text: String,
}

/// Everything supportd keeps that concerns an address, with counts.
#[derive(Debug, Clone, Serialize)]
pub struct CustomerData {
    pub address: String,
    pub tickets: Vec<CustomerTicket>,
    pub messages: Vec<CustomerMessage>,
    /// Events on the tickets it requested, and elsewhere naming it.
    pub events: i64,
    /// Satisfaction surveys answered on its tickets.
    pub surveys: i64,
    /// Outgoing mails to it (any state).
    pub outgoing: i64,
    /// Cards and copies in the shared mailbox (jobs on its tickets).
    pub shared_mailbox_jobs: i64,
}

/// What an erasure removed (or, in a dry run, would remove).
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Erased {
    pub tickets_requested: usize,
    pub tickets_taken_part_in: usize,
    pub messages: usize,
    pub events: usize,
    pub outgoing: usize,
    /// IMAP deletions queued (a card set per ticket, one per mail).
    pub imap_deletions: usize,
    pub dry_run: bool,
}

/// The tickets an address requested, and those it only takes part in.
async fn tickets_of(tx: &mut Tx, addr: &str) -> Result<(Vec<i64>, Vec<i64>)> {
    let requested: Vec<i64> =
        sqlx::query("SELECT id FROM tickets WHERE requester = $1 ORDER BY id")
            .bind(addr)
            .fetch_all(&mut **tx)
            .await?
            .iter()
            .map(|r| r.get(0))
            .collect();
    let part: Vec<i64> = sqlx::query(
        "SELECT p.ticket_id FROM participants p JOIN tickets t ON t.id = p.ticket_id
         WHERE p.address = $1 AND t.requester <> $1 ORDER BY p.ticket_id",
    )
    .bind(addr)
    .fetch_all(&mut **tx)
    .await?
    .iter()
    .map(|r| r.get(0))
    .collect();
    Ok((requested, part))
}

/// Whether `text` names the address `addr` itself: not inside a longer address (`xa@b.c`,
/// `a@b.cn` for `a@b.c`).
fn names(text: &str, addr: &str) -> bool {
    occurrences(text, addr).next().is_some()
}

/// `text` with every whole occurrence of `addr` replaced by `(erased)`.
fn scrub(text: &str, addr: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    for at in occurrences(text, addr) {
        out.push_str(&text[last..at]);
        out.push_str("(erased)");
        last = at + addr.len();
    }
    out.push_str(&text[last..]);
    out
}

/// Where `addr` stands whole in `text`: no address character just before or after it.
fn occurrences<'a>(text: &'a str, addr: &'a str) -> impl Iterator<Item = usize> + 'a {
    let local = |c: char| c.is_alphanumeric() || "._%+-".contains(c);
    let domain = |c: char| c.is_alphanumeric() || ".-".contains(c);
    text.match_indices(addr).map(|(i, _)| i).filter(move |&i| {
        let before = text[..i].chars().next_back();
        let after = text[i + addr.len()..].chars().next();
        // A trailing dot ends a sentence, not the domain.
        let after_ok = match after {
            Some('.') => !text[i + addr.len() + 1..]
                .chars()
                .next()
                .is_some_and(domain),
            Some(c) => !domain(c),
            None => true,
        };
        !before.is_some_and(local) && after_ok
    })
}

/// `(a, b, c)` for an IN list of ids (ids are numbers: no injection).
fn id_list(ids: &[i64]) -> String {
    if ids.is_empty() {
        return "(NULL)".into();
    }
    format!(
        "({})",
        ids.iter()
            .map(|i| i.to_string())
            .collect::<Vec<_>>()
            .join(",")
    )
}

/// The messages that concern `addr`: all on the tickets it requested, and its own and those
/// addressed to it anywhere. `LIKE` over the recipients: an administrative scan, not a hot path.
fn messages_sql(requested: &[i64], cols: &str) -> String {
    format!(
        "SELECT {cols} FROM messages
         WHERE ticket_id IN {} OR from_addr = $1 OR reply_to = $1 OR to_addrs LIKE $2 OR cc_addrs LIKE $2
         ORDER BY id",
        id_list(requested)
    )
}

impl Store {
    /// Everything that concerns `addr` (see the module). Reads only.
    pub async fn customer_data(&self, addr: &EmailAddress) -> Result<CustomerData> {
        let a = addr.as_str();
        let like = format!("%{a}%");
        let mut tx = self.begin().await?;
        let (requested, part) = tickets_of(&mut tx, a).await?;
        let mut tickets = Vec::new();
        for (ids, role) in [(&requested, "requester"), (&part, "participant")] {
            let sql = format!(
                "SELECT id, status, subject, created_at FROM tickets WHERE id IN {} ORDER BY id",
                id_list(ids)
            );
            for r in sqlx::query(sqlx::AssertSqlSafe(sql))
                .fetch_all(&mut *tx)
                .await?
            {
                tickets.push(CustomerTicket {
                    ticket: TicketRef(r.get(0)).to_string(),
                    role,
                    status: r.get(1),
                    subject: r.get(2),
                    created_at: r.get(3),
                });
            }
        }
        let sql = messages_sql(
            &requested,
            &format!("id, ticket_id, direction, received_at, from_addr, to_addrs, subject, message_id, {}, cc_addrs, reply_to", super::TEXT_COLUMN),
        );
        let messages = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(a)
            .bind(&like)
            .fetch_all(&mut *tx)
            .await?
            .iter()
            // `LIKE` found candidates; the address itself decides (not `xa@b.c` for `a@b.c`).
            .filter(|r| {
                r.get::<Option<i64>, _>(1)
                    .is_some_and(|t| requested.contains(&t))
                    || r.get::<Option<String>, _>(4).as_deref() == Some(a)
                    || r.get::<Option<String>, _>(10).as_deref() == Some(a)
                    || names(&r.get::<String, _>(5), a)
                    || names(&r.get::<String, _>(9), a)
            })
            .map(|r| CustomerMessage {
                row: r.get(0),
                ticket: r.get::<Option<i64>, _>(1).map(|t| TicketRef(t).to_string()),
                direction: r.get(2),
                received_at: r.get(3),
                from: r.get(4),
                to: r.get(5),
                subject: r.get(6),
                message_id: r.get(7),
                text: r.get(8),
            })
            .collect();
        let scalar = |sql: String| sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(sql));
        let events = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT ticket_id, detail FROM events WHERE ticket_id IN {} OR detail LIKE $1",
            id_list(&requested)
        )))
        .bind(&like)
        .fetch_all(&mut *tx)
        .await?
        .iter()
        .filter(|r| {
            r.get::<Option<i64>, _>(0)
                .is_some_and(|t| requested.contains(&t))
                || names(&r.get::<String, _>(1), a)
        })
        .count() as i64;
        let surveys = scalar(format!(
            "SELECT COUNT(*) FROM surveys WHERE ticket_id IN {}",
            id_list(&requested)
        ))
        .fetch_one(&mut *tx)
        .await?;
        let outgoing = sqlx::query_scalar::<_, String>(
            "SELECT recipients FROM outbox WHERE recipients LIKE $1",
        )
        .bind(&like)
        .fetch_all(&mut *tx)
        .await?
        .iter()
        .filter(|r| names(r, a))
        .count() as i64;
        let shared_mailbox_jobs = scalar(format!(
            "SELECT COUNT(*) FROM imap_jobs WHERE ticket_id IN {} AND kind = 'append'",
            id_list(&requested)
        ))
        .fetch_one(&mut *tx)
        .await?;
        tx.rollback().await?;
        Ok(CustomerData {
            address: a.to_string(),
            tickets,
            messages,
            events,
            surveys,
            outgoing,
            shared_mailbox_jobs,
        })
    }

    /// The raw bytes of a stored message (byte for byte, chunks joined).
    pub async fn message_raw(&self, row: i64) -> Result<Vec<u8>> {
        let mut conn = self.pool().acquire().await?;
        let r = sqlx::query("SELECT raw, raw_blob FROM messages WHERE id = $1")
            .bind(row)
            .fetch_one(&mut *conn)
            .await?;
        super::rows::read_raw(&mut conn, r.get(0), r.get(1)).await
    }

    /// Erases what concerns `addr` (see the module), in one transaction, with the IMAP
    /// deletions and the audit events. `dry_run`: count only, change nothing.
    pub async fn erase_customer(
        &self,
        addr: &EmailAddress,
        by: &str,
        reason: &str,
        now: Millis,
        dry_run: bool,
    ) -> Result<Erased> {
        let a = addr.as_str();
        let like = format!("%{a}%");
        let mut tx = self.begin().await?;
        let (requested, part) = tickets_of(&mut tx, a).await?;
        let mut out = Erased {
            dry_run,
            tickets_requested: requested.len(),
            tickets_taken_part_in: part.len(),
            ..Default::default()
        };
        let mut plans: Vec<Plan> = Vec::new();
        for t in &requested {
            erase_ticket(&mut tx, *t, now, &mut out, &mut plans, by, reason, dry_run).await?;
        }
        // Elsewhere: its own mails (on tickets it takes part in, or on none), its address in
        // others' recipients, in events and in outgoing mail.
        let not_requested = format!(
            "(ticket_id IS NULL OR ticket_id NOT IN {})",
            id_list(&requested)
        );
        let own: Vec<(i64, String, Option<i64>)> = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT id, message_id, ticket_id FROM messages
             WHERE (from_addr = $1 OR reply_to = $1) AND {not_requested}"
        )))
        .bind(a)
        .fetch_all(&mut *tx)
        .await?
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
        let addressed: Vec<(i64, String, Option<i64>)> = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT id, message_id, ticket_id, to_addrs, cc_addrs FROM messages
             WHERE direction = 'out' AND (to_addrs LIKE $1 OR cc_addrs LIKE $1) AND {not_requested}"
        )))
        .bind(&like)
        .fetch_all(&mut *tx)
        .await?
        .iter()
        .filter(|r| names(&r.get::<String, _>(3), a) || names(&r.get::<String, _>(4), a))
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
        out.messages += own.len() + addressed.len();
        let events: Vec<(i64, String)> = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT id, detail FROM events WHERE detail LIKE $1 AND {not_requested}"
        )))
        .bind(&like)
        .fetch_all(&mut *tx)
        .await?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .filter(|(_, d): &(i64, String)| names(d, a))
        .collect();
        out.events += events.len();
        let outgoing: Vec<(i64, String, String)> = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT id, recipient, recipients FROM outbox WHERE recipients LIKE $1 AND ticket_id NOT IN {}",
            id_list(&requested)
        )))
        .bind(&like)
        .fetch_all(&mut *tx)
        .await?
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .filter(|(_, _, all): &(i64, String, String)| names(all, a))
        .collect();
        out.outgoing += outgoing.len();
        for (row, id, ticket) in own.iter().chain(addressed.iter()) {
            if let (Some(t), Some(id)) = (ticket, MessageId::parse(id)) {
                plan_for(&mut plans, TicketRef(*t))
                    .imap_jobs
                    .push(ImapJob::Expunge {
                        message_id: Some(id),
                    });
                out.imap_deletions += 1;
            }
            if !dry_run {
                blank_message(&mut tx, *row).await?;
            }
        }
        if !dry_run {
            for t in &part {
                sqlx::query("DELETE FROM participants WHERE ticket_id = $1 AND address = $2")
                    .bind(t)
                    .bind(a)
                    .execute(&mut *tx)
                    .await?;
                plan_for(&mut plans, TicketRef(*t)).event(
                    EventKind::CustomerErased,
                    serde_json::json!({"by": by, "reason": reason, "role": "participant"}),
                );
            }
            for (id, detail) in &events {
                sqlx::query("UPDATE events SET detail = $1 WHERE id = $2")
                    .bind(scrub(detail, a))
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
            }
            // Mail not yet sent that names the customer is not sent (its bytes name them).
            for (id, one, all) in &outgoing {
                sqlx::query(
                    "UPDATE outbox SET recipient = $1, recipients = $2,
                            status = CASE WHEN status = 'pending' THEN 'cancelled' ELSE status END
                     WHERE id = $3",
                )
                .bind(scrub(one, a))
                .bind(scrub(all, a))
                .bind(id)
                .execute(&mut *tx)
                .await?;
            }
            plans.push(Plan::with_event(
                None,
                EventKind::CustomerErased,
                serde_json::json!({
                    "by": by, "reason": reason,
                    "tickets_requested": out.tickets_requested,
                    "tickets_taken_part_in": out.tickets_taken_part_in,
                    "messages": out.messages,
                }),
            ));
            let records: Vec<super::Record<'_>> = plans.iter().map(super::Record::plan).collect();
            self.commit(&mut tx, &records, now).await?;
            tx.commit().await?;
        } else {
            tx.rollback().await?;
        }
        Ok(out)
    }

    /// Retention: erases up to `limit` tickets solved before `cutoff` and not erased yet, oldest
    /// first, in one transaction. Returns how many.
    pub async fn erase_solved_before(
        &self,
        cutoff: Millis,
        limit: i64,
        now: Millis,
    ) -> Result<usize> {
        let mut tx = self.begin().await?;
        let ids: Vec<i64> = sqlx::query(
            "SELECT id FROM tickets WHERE erased_at IS NULL AND solved_at IS NOT NULL AND solved_at < $1
             AND status = 'solved' ORDER BY solved_at LIMIT $2",
        )
        .bind(cutoff)
        .bind(limit)
        .fetch_all(&mut *tx)
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
        let mut out = Erased::default();
        let mut plans: Vec<Plan> = Vec::new();
        for t in &ids {
            erase_ticket(
                &mut tx,
                *t,
                now,
                &mut out,
                &mut plans,
                "retention",
                "solved longer ago than retention.erase_solved_after_days",
                false,
            )
            .await?;
        }
        if !ids.is_empty() {
            let records: Vec<super::Record<'_>> = plans.iter().map(super::Record::plan).collect();
            self.commit(&mut tx, &records, now).await?;
        }
        tx.commit().await?;
        Ok(ids.len())
    }
}

/// Erases a requested ticket's personal data (see the module), adding its IMAP deletions and
/// audit event to `plan`.
#[allow(clippy::too_many_arguments)]
async fn erase_ticket(
    tx: &mut Tx,
    t: i64,
    now: Millis,
    out: &mut Erased,
    plans: &mut Vec<Plan>,
    by: &str,
    reason: &str,
    dry_run: bool,
) -> Result<()> {
    let ticket = TicketRef(t);
    let messages: Vec<(i64, String)> =
        sqlx::query("SELECT id, message_id FROM messages WHERE ticket_id = $1 ORDER BY id")
            .bind(t)
            .fetch_all(&mut **tx)
            .await?
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
    out.messages += messages.len();
    let events: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM events WHERE ticket_id = $1")
        .bind(t)
        .fetch_one(&mut **tx)
        .await?;
    out.events += events as usize;
    let outgoing: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM outbox WHERE ticket_id = $1")
        .bind(t)
        .fetch_one(&mut **tx)
        .await?;
    out.outgoing += outgoing as usize;
    // Cards (by the ticket header), then every mail's copies (originals, Sent).
    let plan = plan_for(plans, ticket);
    plan.imap_jobs.push(ImapJob::Expunge { message_id: None });
    out.imap_deletions += 1;
    for (_, id) in &messages {
        if let Some(id) = MessageId::parse(id) {
            plan.imap_jobs.push(ImapJob::Expunge {
                message_id: Some(id),
            });
            out.imap_deletions += 1;
        }
    }
    if dry_run {
        return Ok(());
    }
    let placeholder = format!("erased+T{t:06}@erased.invalid");
    sqlx::query(
        "UPDATE tickets SET requester = $1, requester_name = NULL, subject = '(erased)',
                followup_result = CASE WHEN followup_result IS NULL THEN NULL ELSE '(erased)' END,
                erased_at = $2
         WHERE id = $3",
    )
    .bind(&placeholder)
    .bind(now)
    .bind(t)
    .execute(&mut **tx)
    .await?;
    for (row, _) in &messages {
        blank_message(tx, *row).await?;
    }
    sqlx::query("DELETE FROM participants WHERE ticket_id = $1")
        .bind(t)
        .execute(&mut **tx)
        .await?;
    sqlx::query("UPDATE events SET detail = '{}' WHERE ticket_id = $1")
        .bind(t)
        .execute(&mut **tx)
        .await?;
    sqlx::query(
        "UPDATE outbox SET recipient = $1, recipients = $1, last_error = NULL,
                status = CASE WHEN status = 'pending' THEN 'cancelled' ELSE status END
         WHERE ticket_id = $2",
    )
    .bind(&placeholder)
    .bind(t)
    .execute(&mut **tx)
    .await?;
    let blobs: Vec<Option<String>> = sqlx::query_scalar(
        "SELECT raw_blob FROM imap_jobs WHERE ticket_id = $1 AND raw_blob IS NOT NULL",
    )
    .bind(t)
    .fetch_all(&mut **tx)
    .await?;
    sqlx::query(
        "UPDATE imap_jobs SET raw = NULL, raw_blob = NULL,
                status = CASE WHEN status = 'pending' AND kind = 'append' THEN 'cancelled' ELSE status END
         WHERE ticket_id = $1",
    )
    .bind(t)
    .execute(&mut **tx)
    .await?;
    for b in blobs.into_iter().flatten() {
        drop_chunks(tx, &b).await?;
    }
    plan_for(plans, ticket).event(
        EventKind::CustomerErased,
        serde_json::json!({"by": by, "reason": reason, "role": "requester"}),
    );
    Ok(())
}

/// The plan of `t` among `plans` (one per ticket: a plan's rows belong to its ticket).
fn plan_for(plans: &mut Vec<Plan>, t: TicketRef) -> &mut Plan {
    match plans.iter().position(|p| p.ticket == Some(t)) {
        Some(i) => &mut plans[i],
        None => {
            plans.push(Plan::for_ticket(t));
            let last = plans.len() - 1;
            &mut plans[last]
        }
    }
}

/// A message without its personal data: addresses (ours kept on mail we sent), names, subject,
/// texts, raw bytes (and their chunks), problems. Its Message-ID stays.
async fn blank_message(tx: &mut Tx, row: i64) -> Result<()> {
    let blob: Option<String> = sqlx::query_scalar("SELECT raw_blob FROM messages WHERE id = $1")
        .bind(row)
        .fetch_one(&mut **tx)
        .await?;
    sqlx::query(
        "UPDATE messages SET from_addr = CASE WHEN direction = 'out' THEN from_addr ELSE NULL END,
                from_name = NULL, to_addrs = '', cc_addrs = '', subject = '(erased)', text = '',
                reply_text = '', raw = $1, raw_blob = NULL, reply_to = NULL, verdict_reason = '',
                problems = NULL
         WHERE id = $2",
    )
    .bind(&[][..] as &[u8])
    .bind(row)
    .execute(&mut **tx)
    .await?;
    if let Some(b) = blob {
        drop_chunks(tx, &b).await?;
    }
    Ok(())
}

/// Deletes a big mail's chunks unless another row still names them.
async fn drop_chunks(tx: &mut Tx, blob: &str) -> Result<()> {
    sqlx::query(
        "DELETE FROM raw_chunks WHERE blob = $1
           AND NOT EXISTS (SELECT 1 FROM imap_jobs WHERE raw_blob = $1)
           AND NOT EXISTS (SELECT 1 FROM messages WHERE raw_blob = $1)",
    )
    .bind(blob)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_address_itself_is_named_and_scrubbed() {
        let a = "li@example.com";
        assert!(names("li@example.com, x@y.z", a));
        assert!(names("{\"from\":\"li@example.com\"}", a));
        assert!(names("Li <li@example.com>", a));
        assert!(names("write to li@example.com.", a));
        assert!(!names("wangli@example.com", a));
        assert!(!names("li@example.com.cn", a));
        assert!(!names("li@example.community", a));
        assert_eq!(
            scrub("wangli@example.com, li@example.com, li@example.com.cn", a),
            "wangli@example.com, (erased), li@example.com.cn"
        );
    }
}
