//! Read-only views over the tables: the agents' ticket list and one ticket's detail, and the
//! small counts ops and tests look at. No writes. (The monthly figures: `report`.)

use super::{class_from_row, Result, Store};
use crate::domain::{Millis, TicketClass, TicketRef};
use sqlx::any::AnyRow;
use sqlx::{AssertSqlSafe, Row};

/// A row of `supportd tickets list`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TicketSummary {
    pub ticket: String,
    pub status: String,
    pub requester: String,
    pub subject: String,
    pub language: String,
    #[serde(flatten)]
    pub class: TicketClass,
    pub owner: Option<String>,
    pub complex: bool,
    pub escalated: bool,
    pub created_at: Millis,
    pub updated_at: Millis,
    /// How many messages the ticket has (in and out).
    #[serde(rename = "message_count")]
    pub messages: i64,
    /// The most pressing open promise: its due time (past when overdue) and kind.
    pub next_due: Option<Millis>,
    pub next_promise: Option<String>,
}

/// Which tickets `tickets list` shows, in which order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TicketOrder {
    /// The agents' queue: tickets not solved, most pressing priority first, then oldest first.
    Queue,
    /// Every ticket, newest first.
    Newest,
}

/// `tickets list` filters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TicketFilter {
    None,
    /// A promise past due and not kept (breached, or due and about to be).
    Overdue,
    /// A running promise due within this many ms (overdue ones included).
    DueWithin(Millis),
    /// Escalated to the supervisors and not solved.
    Escalated,
}

/// A promise's timer, as `ticket show` lists it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TimerRow {
    pub promise: String,
    pub state: String,
    pub started_at: Millis,
    pub due_at: Millis,
    pub warnings: i64,
    pub met_at: Option<Millis>,
    pub breached_at: Option<Millis>,
}

/// `supportd ticket show`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TicketDetail {
    #[serde(flatten)]
    pub summary: TicketSummary,
    pub acked_at: Option<Millis>,
    pub first_reply_at: Option<Millis>,
    pub solved_at: Option<Millis>,
    pub agent_replies: i64,
    pub reopens: i64,
    pub followup_result: Option<String>,
    pub participants: Vec<String>,
    pub timers: Vec<TimerRow>,
    /// (at, kind, detail) oldest first.
    pub events: Vec<(Millis, String, serde_json::Value)>,
    /// (at, direction, from, subject, verdict, text) oldest first. The text is a person's new
    /// text (`reply_text`); our own sent mail's is empty here (it is in its raw bytes:
    /// `cli` derives it for `ticket show`).
    pub messages: Vec<(Millis, String, Option<String>, String, String, String)>,
}

/// A timer whose promise is still open: running, or breached and not yet kept.
const OPEN_TIMER: &str = "(x.state = 'running' OR (x.state = 'breached' AND x.met_at IS NULL))";

/// The columns `summary_from_row` reads, from `tickets t`.
const SUMMARY_COLUMNS: &str = "t.id, t.status, t.requester, t.subject, t.language, t.created_at, t.updated_at,
    (SELECT COUNT(*) FROM messages m WHERE m.ticket_id = t.id) AS n,
    t.category, t.severity, t.urgent, t.vip, t.priority, t.owner, t.complex, t.escalated,
    (SELECT MIN(x.due_at) FROM timers x WHERE x.ticket_id = t.id
        AND (x.state = 'running' OR (x.state = 'breached' AND x.met_at IS NULL))) AS next_due,
    (SELECT x.kind FROM timers x WHERE x.ticket_id = t.id
        AND (x.state = 'running' OR (x.state = 'breached' AND x.met_at IS NULL)) ORDER BY x.due_at LIMIT 1) AS next_kind";
const SUMMARY_COLUMN_COUNT: usize = 18;

fn summary_from_row(r: &AnyRow) -> TicketSummary {
    TicketSummary {
        ticket: TicketRef(r.get(0)).to_string(),
        status: r.get(1),
        requester: r.get(2),
        subject: r.get(3),
        language: r.get(4),
        created_at: r.get(5),
        updated_at: r.get(6),
        messages: r.get(7),
        class: class_from_row(r, 8),
        owner: r.get(13),
        complex: r.get::<i64, _>(14) != 0,
        escalated: r.get::<i64, _>(15) != 0,
        next_due: r.get(16),
        next_promise: r.get(17),
    }
}

/// SQL ranking priorities for `ORDER BY` (urgent first).
const PRIORITY_RANK: &str =
    "CASE t.priority WHEN 'urgent' THEN 0 WHEN 'high' THEN 1 WHEN 'normal' THEN 2 ELSE 3 END";

/// `tickets list`'s query for `order` and `filter` (binds `$1` limit, `$2` now, `$3` the
/// window), and the window in ms.
fn list_sql(order: TicketOrder, filter: TicketFilter) -> (String, Millis) {
    let mut conditions = Vec::new();
    if order == TicketOrder::Queue {
        // `IN` rather than `<> 'solved'`: found through the (status, updated_at) index, so the
        // queue costs the open tickets, not every ticket ever stored.
        conditions.push("t.status IN ('open', 'pending')".to_string());
    }
    let within = match filter {
        TicketFilter::None => 0,
        // The tickets come from the open timers (index `timers_open_due`, on the same condition
        // as `OPEN_TIMER`), so the cost is the open promises due, not every ticket stored.
        TicketFilter::Overdue => {
            conditions.push(format!(
                "t.id IN (SELECT x.ticket_id FROM timers x WHERE {OPEN_TIMER} AND x.due_at <= $2)"
            ));
            0
        }
        TicketFilter::DueWithin(ms) => {
            conditions.push(format!("t.id IN (SELECT x.ticket_id FROM timers x WHERE {OPEN_TIMER} AND x.due_at <= $2 + $3)"));
            ms
        }
        TicketFilter::Escalated => {
            conditions.push("t.status IN ('open', 'pending') AND t.escalated = 1".to_string());
            0
        }
    };
    let filter = if conditions.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", conditions.join(" AND "))
    };
    let order_by = match order {
        TicketOrder::Queue => format!("{PRIORITY_RANK}, t.created_at, t.id"),
        TicketOrder::Newest => "t.id DESC".to_string(),
    };
    let sql =
        format!("SELECT {SUMMARY_COLUMNS} FROM tickets t {filter} ORDER BY {order_by} LIMIT $1");
    (sql, within)
}

/// One stored message of a ticket with its raw bytes (for its attachments).
#[derive(Debug, Clone)]
pub struct RawMessage {
    pub at: Millis,
    /// `in` or `out`.
    pub direction: String,
    pub from: Option<String>,
    pub verdict: String,
    pub raw: Vec<u8>,
}

/// A mail a person may have written that is filed on no ticket (`supportd unattributed list`).
#[derive(Debug, Clone, serde::Serialize)]
pub struct Unattributed {
    pub at: Millis,
    /// `no usable sender` or `refused by the database: …`.
    pub why: String,
    pub message_id: String,
    pub mailbox: Option<String>,
    pub uid: Option<i64>,
    pub from: Option<String>,
    pub subject: Option<String>,
}

impl Store {
    /// A ticket's messages with their raw bytes, oldest first.
    pub async fn ticket_raw_messages(&self, t: TicketRef) -> Result<Vec<RawMessage>> {
        let mut conn = self.pool.acquire().await?;
        let rows = sqlx::query(
            "SELECT received_at, direction, from_addr, verdict, raw, raw_blob FROM messages WHERE ticket_id = $1 ORDER BY id",
        )
        .bind(t.0)
        .fetch_all(&mut *conn)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            out.push(RawMessage {
                at: r.get(0),
                direction: r.get(1),
                from: r.get(2),
                verdict: r.get(3),
                raw: super::rows::read_raw(&mut conn, r.get(4), r.get(5)).await?,
            });
        }
        Ok(out)
    }

    /// The newest mails that ended without a ticket although a person may have written them:
    /// `unattributed_mail` (no usable From, Reply-To or Sender) and `mail_quarantined` (the
    /// database refused the mail's data) events, with where each mail is.
    pub async fn unattributed(&self, limit: u32) -> Result<Vec<Unattributed>> {
        let events = sqlx::query(
            "SELECT at, kind, detail FROM events WHERE ticket_id IS NULL
               AND kind IN ('unattributed_mail', 'mail_quarantined')
             ORDER BY id DESC LIMIT $1",
        )
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::with_capacity(events.len());
        for e in events {
            let detail: serde_json::Value =
                serde_json::from_str(&e.get::<String, _>(2)).unwrap_or_default();
            let message_id = detail["message_id"].as_str().unwrap_or("").to_string();
            let why = match e.get::<String, _>(1).as_str() {
                "mail_quarantined" => format!(
                    "refused by the database: {}",
                    detail["error"].as_str().unwrap_or("")
                ),
                _ => "no usable sender".to_string(),
            };
            let m = sqlx::query(
                "SELECT mailbox, uid, from_addr, subject FROM messages WHERE direction = 'in' AND message_id = $1",
            )
            .bind(&message_id)
            .fetch_optional(&self.pool)
            .await?;
            out.push(Unattributed {
                at: e.get(0),
                why,
                mailbox: m.as_ref().and_then(|r| r.get(0)),
                uid: m.as_ref().and_then(|r| r.get(1)),
                from: m.as_ref().and_then(|r| r.get(2)),
                subject: m.as_ref().map(|r| r.get(3)),
                message_id,
            });
        }
        Ok(out)
    }

    /// Share of tickets created in `[from, to)` whose classification an agent corrected.
    pub async fn correction_rate(&self, from: Millis, to: Millis) -> Result<(i64, i64)> {
        let row = sqlx::query(
            "SELECT COUNT(*),
                    COUNT(*) FILTER (WHERE EXISTS (SELECT 1 FROM classification_corrections c WHERE c.ticket_id = t.id))
             FROM tickets t WHERE t.created_at >= $1 AND t.created_at < $2",
        )
        .bind(from)
        .bind(to)
        .fetch_one(&self.pool)
        .await?;
        Ok((row.get(1), row.get(0)))
    }

    /// The newest tickets, newest first.
    pub async fn tickets(&self, limit: u32) -> Result<Vec<TicketSummary>> {
        self.list_tickets(TicketOrder::Newest, TicketFilter::None, 0, limit)
            .await
    }

    /// Tickets for `tickets list`. `now` decides what is overdue or due soon.
    pub async fn list_tickets(
        &self,
        order: TicketOrder,
        filter: TicketFilter,
        now: Millis,
        limit: u32,
    ) -> Result<Vec<TicketSummary>> {
        let (sql, within) = list_sql(order, filter);
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(limit as i64)
            .bind(now)
            .bind(within)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(summary_from_row).collect())
    }

    /// Everything `ticket show` prints.
    pub async fn ticket_detail(&self, t: TicketRef) -> Result<Option<TicketDetail>> {
        let sql = format!(
            "SELECT {SUMMARY_COLUMNS}, t.acked_at, t.first_reply_at, t.solved_at, t.agent_replies, t.reopens,
                    t.followup_result
             FROM tickets t WHERE t.id = $1"
        );
        let Some(r) = sqlx::query(AssertSqlSafe(sql))
            .bind(t.0)
            .fetch_optional(&self.pool)
            .await?
        else {
            return Ok(None);
        };
        let base = SUMMARY_COLUMN_COUNT;
        let timers = sqlx::query(
            "SELECT kind, state, started_at, due_at, warnings_fired, met_at, breached_at FROM timers
             WHERE ticket_id = $1 ORDER BY id",
        )
        .bind(t.0)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|x| TimerRow {
            promise: x.get(0),
            state: x.get(1),
            started_at: x.get(2),
            due_at: x.get(3),
            warnings: x.get(4),
            met_at: x.get(5),
            breached_at: x.get(6),
        })
        .collect();
        let events =
            sqlx::query("SELECT at, kind, detail FROM events WHERE ticket_id = $1 ORDER BY id")
                .bind(t.0)
                .fetch_all(&self.pool)
                .await?
                .iter()
                .map(|x| {
                    let detail: String = x.get(2);
                    (
                        x.get(0),
                        x.get(1),
                        serde_json::from_str(&detail).unwrap_or(serde_json::Value::String(detail)),
                    )
                })
                .collect();
        let messages = sqlx::query(
            "SELECT received_at, direction, from_addr, subject, verdict, reply_text FROM messages WHERE ticket_id = $1 ORDER BY id",
        )
        .bind(t.0)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|x| (x.get(0), x.get(1), x.get(2), x.get(3), x.get(4), x.get(5)))
        .collect();
        let participants =
            sqlx::query("SELECT address FROM participants WHERE ticket_id = $1 ORDER BY added_at")
                .bind(t.0)
                .fetch_all(&self.pool)
                .await?
                .iter()
                .map(|x| x.get(0))
                .collect();
        Ok(Some(TicketDetail {
            summary: summary_from_row(&r),
            acked_at: r.get(base),
            first_reply_at: r.get(base + 1),
            solved_at: r.get(base + 2),
            agent_replies: r.get(base + 3),
            reopens: r.get(base + 4),
            followup_result: r.get(base + 5),
            participants,
            timers,
            events,
            messages,
        }))
    }

    /// Tickets whose classification an agent corrected, as labelled mail for training: the
    /// ticket's class as it stands now (the corrections applied) and the subject and new text
    /// of its first inbound mail. Erased tickets (no text left) are left out.
    /// (ticket, from, subject, text, category, severity, urgent), oldest first.
    #[allow(clippy::type_complexity)]
    pub async fn corrected_mails(
        &self,
    ) -> Result<Vec<(i64, String, String, String, String, Option<String>, bool)>> {
        Ok(sqlx::query(
            "SELECT t.id, COALESCE(m.from_addr, ''), m.subject, m.reply_text, t.category, t.severity, t.urgent
             FROM tickets t
             JOIN messages m ON m.id = (SELECT MIN(x.id) FROM messages x WHERE x.ticket_id = t.id AND x.direction = 'in')
             WHERE t.id IN (SELECT ticket_id FROM classification_corrections) AND t.erased_at IS NULL
             ORDER BY t.id",
        )
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|r| {
            (
                r.get::<i64, _>(0),
                r.get::<String, _>(1),
                r.get::<String, _>(2),
                r.get::<String, _>(3),
                r.get::<String, _>(4),
                r.get::<Option<String>, _>(5),
                r.get::<i64, _>(6) != 0,
            )
        })
        .filter(|x| !x.3.trim().is_empty() || !x.2.trim().is_empty())
        .collect())
    }

    /// Counts rows of a table (tests and `check`). Only fixed table names are accepted.
    pub async fn count(&self, table: &'static str) -> Result<i64> {
        let sql = match table {
            "tickets" => "SELECT COUNT(*) FROM tickets",
            "messages" => "SELECT COUNT(*) FROM messages",
            "outbox" => "SELECT COUNT(*) FROM outbox",
            "events" => "SELECT COUNT(*) FROM events",
            "sent" => "SELECT COUNT(*) FROM outbox WHERE status = 'sent'",
            "inbound" => "SELECT COUNT(*) FROM messages WHERE direction = 'in'",
            "flagged" => "SELECT COUNT(*) FROM messages WHERE problems IS NOT NULL",
            "failed" => "SELECT COUNT(*) FROM outbox WHERE status = 'failed'",
            "ack_suppressed" => "SELECT COUNT(*) FROM events WHERE kind = 'ack_suppressed'",
            "surveys" => "SELECT COUNT(*) FROM surveys",
            "running_timers" => "SELECT COUNT(*) FROM timers WHERE state = 'running'",
            "corrections" => "SELECT COUNT(*) FROM classification_corrections",
            _ => "SELECT -1",
        };
        Ok(sqlx::query(sql).fetch_one(&self.pool).await?.get(0))
    }

    /// The event kinds of a ticket, oldest first.
    pub async fn event_kinds(&self, t: TicketRef) -> Result<Vec<String>> {
        Ok(
            sqlx::query("SELECT kind FROM events WHERE ticket_id = $1 ORDER BY id")
                .bind(t.0)
                .fetch_all(&self.pool)
                .await?
                .iter()
                .map(|r| r.get(0))
                .collect(),
        )
    }

    /// The stored raw bytes, text and subject, problems and verdict of the mail fetched at
    /// `mailbox`/`uid`.
    pub async fn stored_at(
        &self,
        mailbox: &str,
        uid: u32,
    ) -> Result<Option<(Vec<u8>, String, Option<String>, String)>> {
        let mut conn = self.pool.acquire().await?;
        let sql = format!(
            "SELECT raw, {} || ' ' || subject, problems, verdict, raw_blob FROM messages WHERE mailbox = $1 AND uid = $2",
            super::TEXT_COLUMN
        );
        let Some(r) = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(mailbox)
            .bind(uid as i64)
            .fetch_optional(&mut *conn)
            .await?
        else {
            return Ok(None);
        };
        let raw = super::rows::read_raw(&mut conn, r.get(0), r.get(4)).await?;
        Ok(Some((raw, r.get(1), r.get(2), r.get(3))))
    }

    /// Ticket, reply text and verdict of a stored inbound message.
    pub async fn inbound_by_message_id(
        &self,
        id: &str,
    ) -> Result<Option<(Option<i64>, String, String)>> {
        Ok(sqlx::query("SELECT ticket_id, reply_text, verdict FROM messages WHERE direction = 'in' AND message_id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .map(|r| (r.get(0), r.get(1), r.get(2))))
    }

    /// A stored mail's raw bytes (RFC 5322, as fetched or as sent) by its Message-ID (without
    /// angle brackets): the newest if several share it.
    pub async fn raw_by_message_id(&self, id: &str) -> Result<Option<Vec<u8>>> {
        let mut conn = self.pool.acquire().await?;
        let Some(r) = sqlx::query(
            "SELECT raw, raw_blob FROM messages WHERE direction IN ('in', 'out') AND message_id = $1 ORDER BY id DESC LIMIT 1",
        )
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?
        else {
            return Ok(None);
        };
        Ok(Some(
            super::rows::read_raw(&mut conn, r.get(0), r.get(1)).await?,
        ))
    }
}

#[cfg(test)]
mod plan_tests {
    use super::{list_sql, TicketFilter, TicketOrder};
    use crate::store::facts::tests::{empty_store, plan, scans};

    #[tokio::test]
    async fn the_agents_queue_costs_the_open_tickets_not_every_ticket() {
        let (_dir, store) = empty_store().await;
        for (order, filter) in [
            (TicketOrder::Queue, TicketFilter::None),
            (TicketOrder::Queue, TicketFilter::Overdue),
            (TicketOrder::Queue, TicketFilter::DueWithin(3_600_000)),
            (TicketOrder::Queue, TicketFilter::Escalated),
            (TicketOrder::Newest, TicketFilter::None),
            (TicketOrder::Newest, TicketFilter::Escalated),
            (TicketOrder::Newest, TicketFilter::Overdue),
            (TicketOrder::Newest, TicketFilter::DueWithin(3_600_000)),
        ] {
            let (q, _) = list_sql(order, filter);
            let mut p = plan(&store, &q).await;
            if order == TicketOrder::Newest && filter == TicketFilter::None {
                // Newest first is the table in rowid order, stopped at the limit.
                assert_eq!(p.first().map(String::as_str), Some("SCAN t"), "{p:?}");
                p.remove(0);
            }
            // Ordering the open tickets in a temporary B-tree is expected; reading all is not.
            assert!(!scans(&p), "{order:?} {filter:?}: {p:?}");
        }
    }
}
