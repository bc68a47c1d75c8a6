//! The one writer. Every row supportd inserts goes through [`Store::commit`]: an inbound mail and
//! what it causes, a whole fetched batch of them (group commit), a timer firing, an agent's
//! action from the CLI, a sent or failed mail, a quarantined mail, a Sent-folder copy. There is
//! no second INSERT for any table, so one mail committed alone and the same mail committed in a
//! batch write the same rows.
//!
//! How: records are written in order. Rows that only add (new tickets, messages, participants,
//! events, outgoing mail, timers of a new ticket, IMAP jobs, surveys, corrections) are collected
//! per table and sent as multi-row INSERTs; a change to an existing row (a ticket's fields, a
//! running timer, a bounced mail) is a statement of its own, sent after everything collected
//! before it, so it sees exactly what the records before it wrote. A ticket opened by a record is
//! inserted in the state its plan leaves it (no UPDATE after the INSERT).
//!
//! Invariants: everything is inside the caller's transaction; message row ids are reserved under
//! the transaction's write lock (SQLite `BEGIN IMMEDIATE`: `MAX(id)`; PostgreSQL: the sequence),
//! so an outgoing mail's outbox row can name its message row before either is written; rows are
//! written parents first; a timer step another scheduler already took is
//! [`StoreError::StaleTimer`](super::StoreError::StaleTimer) and the caller rolls back.

use super::rows::{
    i, os, raw_columns, raw_columns_packed, s, write_chunks, Chunks, PackedRaw, Rows, V,
};
use super::{Backend, ImapLocation, Result, Store, StoreError, Tx};
use crate::domain::{
    EmailAddress, InboundMail, Millis, Plan, Severity, Status, TicketClass, TicketState, TimerEnd,
};
use sqlx::{AssertSqlSafe, Row};

/// A message row: an inbound mail, a copy found in the Sent folder, or a quarantined mail.
/// (Outgoing mail's rows come from the plan's outbox.)
#[derive(Debug, Clone)]
pub struct MessageRow<'a> {
    pub ticket: Option<crate::domain::TicketRef>,
    /// `in`, or `out` for a copy of mail someone sent.
    pub outgoing: bool,
    pub message_id: &'a str,
    pub at: Option<&'a ImapLocation>,
    /// The IMAP flag or move is still to be done on the server.
    pub imap_pending: bool,
    pub mail: Option<&'a InboundMail>,
    pub reply_text: &'a str,
    pub language: Option<&'static str>,
    /// `human`, `auto_reply`, …, `agent`, `agent_direct`, `quarantined`.
    pub verdict: &'a str,
    pub reason: &'a str,
    /// Problems to flag beyond the mail's own (JSON list), e.g. why it was quarantined.
    pub problems: Option<String>,
    pub raw: &'a [u8],
    /// `raw` packed for storage beforehand ([`super::pack_raw`]), if it was.
    pub packed: Option<&'a PackedRaw>,
}

impl<'a> MessageRow<'a> {
    /// An inbound mail as fetched from `at`.
    #[allow(clippy::too_many_arguments)]
    pub fn inbound(
        mail: &'a InboundMail,
        raw: &'a [u8],
        at: &'a ImapLocation,
        verdict: &'a str,
        reason: &'a str,
        language: &'static str,
        reply_text: &'a str,
        ticket: Option<crate::domain::TicketRef>,
    ) -> MessageRow<'a> {
        MessageRow {
            ticket,
            outgoing: false,
            message_id: mail.message_id.as_str(),
            at: Some(at),
            imap_pending: true,
            mail: Some(mail),
            reply_text,
            language: Some(language),
            verdict,
            reason,
            problems: (!mail.problems.is_empty())
                .then(|| serde_json::to_string(&mail.problems).ok())
                .flatten(),
            raw,
            packed: None,
        }
    }

    /// A mail the database refused in its normal form: kept raw under a Message-ID derived from
    /// its bytes, flagged with the reason.
    pub fn quarantined(
        message_id: &'a str,
        raw: &'a [u8],
        at: &'a ImapLocation,
        error: &'a str,
    ) -> MessageRow<'a> {
        MessageRow {
            ticket: None,
            outgoing: false,
            message_id,
            at: Some(at),
            imap_pending: true,
            mail: None,
            reply_text: "",
            language: None,
            verdict: "quarantined",
            reason: error,
            problems: serde_json::to_string(&[format!("not stored normally: {error}")]).ok(),
            raw,
            packed: None,
        }
    }
}

/// One decision to commit: the message row of the mail it is about (if any), the ticket it
/// opens (if any), and its plan.
#[derive(Debug, Clone)]
pub struct Record<'a> {
    pub message: Option<MessageRow<'a>>,
    pub opened: Option<&'a TicketState>,
    pub plan: &'a Plan,
}

impl<'a> Record<'a> {
    /// A plan about an existing ticket, or ops events (no message row, no new ticket).
    pub fn plan(plan: &'a Plan) -> Record<'a> {
        Record {
            message: None,
            opened: None,
            plan,
        }
    }
}

fn join(v: &[EmailAddress]) -> String {
    v.iter().map(|a| a.as_str()).collect::<Vec<_>>().join(", ")
}

/// The rows being collected, one buffer per table, parents first.
struct Buffers<'a> {
    tickets: Rows<'a>,
    messages: Rows<'a>,
    aliases: Rows<'a>,
    participants: Rows<'a>,
    events: Rows<'a>,
    outbox: Rows<'a>,
    timers: Rows<'a>,
    jobs: Rows<'a>,
    surveys: Rows<'a>,
    corrections: Rows<'a>,
    /// Raw mails above 1 MiB, by chunk name, written as chunks.
    chunks: Vec<Chunks<'a>>,
}

impl<'a> Buffers<'a> {
    fn new() -> Buffers<'a> {
        Buffers {
            tickets: Rows::new(
                "INSERT INTO tickets (id, status, requester, requester_name, subject, language, created_at, updated_at,
                    category, severity, urgent, vip, priority, owner, complex, escalated, escalated_at, acked_at,
                    first_reply_at, agent_replies, solved_at, survey_message_id, survey_sent_at, followup_sent_at,
                    followup_at, followup_result, agent_token_epoch)",
                27,
                "",
            ),
            messages: Rows::new(
                "INSERT INTO messages (id, ticket_id, direction, message_id, mailbox, uidvalidity, uid, imap_done,
                    from_addr, from_name, to_addrs, cc_addrs, subject, in_reply_to, references_ids, sent_at,
                    received_at, text, reply_text, language, verdict, verdict_reason, problems, raw, reply_to, raw_blob)",
                26,
                "",
            ),
            aliases: Rows::new(
                "INSERT INTO message_aliases (alias, message_row)",
                2,
                "ON CONFLICT (alias, message_row) DO NOTHING",
            ),
            participants: Rows::new(
                "INSERT INTO participants (ticket_id, address, role, added_at)",
                4,
                "ON CONFLICT (ticket_id, address) DO NOTHING",
            ),
            events: Rows::new("INSERT INTO events (ticket_id, at, kind, detail)", 4, ""),
            outbox: Rows::new(
                "INSERT INTO outbox (ticket_id, message_row, kind, message_id, recipient, recipients, envelope_from,
                    status, attempts, created_at, next_attempt_at, give_up_at)",
                12,
                "",
            ),
            // Starting a promise that runs already re-times it: one running timer per kind. (A
            // flush never holds one ticket's kind twice: a plan keeps its last start of a kind,
            // and a record about an existing ticket is preceded by a flush.)
            timers: Rows::new(
                "INSERT INTO timers (ticket_id, kind, started_at, span_ms, due_at, next_at, warnings_fired, state, created_at)",
                9,
                "ON CONFLICT (ticket_id, kind) WHERE state = 'running' DO UPDATE SET
                    started_at = excluded.started_at, span_ms = excluded.span_ms, due_at = excluded.due_at,
                    next_at = excluded.next_at, warnings_fired = 0",
            ),
            jobs: Rows::new(
                "INSERT INTO imap_jobs (ticket_id, kind, folder, message_id, raw, status, next_attempt_at, created_at, raw_blob)",
                9,
                "",
            ),
            surveys: Rows::new(
                "INSERT INTO surveys (ticket_id, speed, solving, attitude, overall, at)",
                6,
                "",
            ),
            corrections: Rows::new(
                "INSERT INTO classification_corrections (ticket_id, field, old_value, new_value, corrected_by, at)",
                6,
                "",
            ),
            chunks: Vec::new(),
        }
    }

    /// Sends everything collected, parents first.
    async fn flush(&mut self, tx: &mut Tx, b: Backend) -> Result<()> {
        for (blob, raw) in self.chunks.drain(..) {
            write_chunks(tx, &blob, &raw).await?;
        }
        self.tickets.flush(tx, b).await?;
        self.messages.flush(tx, b).await?;
        self.aliases.flush(tx, b).await?;
        self.participants.flush(tx, b).await?;
        self.events.flush(tx, b).await?;
        self.outbox.flush(tx, b).await?;
        self.timers.flush(tx, b).await?;
        self.jobs.flush(tx, b).await?;
        self.surveys.flush(tx, b).await?;
        self.corrections.flush(tx, b).await?;
        Ok(())
    }

    fn is_empty(&self) -> bool {
        [
            &self.tickets,
            &self.messages,
            &self.aliases,
            &self.participants,
            &self.events,
            &self.outbox,
            &self.timers,
            &self.jobs,
            &self.surveys,
            &self.corrections,
        ]
        .iter()
        .all(|r| r.is_empty())
            && self.chunks.is_empty()
    }
}

/// A new ticket's row, in the state its plan leaves it.
fn ticket_row(t: &TicketState, plan: &Plan, now: Millis) -> Vec<V<'static>> {
    let u = &plan.update;
    let c: TicketClass = plan.class.unwrap_or(t.class);
    let when = |b: bool| V::I(b.then_some(now));
    vec![
        i(t.ticket.0),
        s(u.status.unwrap_or(t.status).as_str()),
        s(t.requester.as_str()),
        os(t.requester_name.as_deref()),
        s(t.subject.clone()),
        s(t.language.code()),
        i(now),
        i(now),
        s(c.category.as_str()),
        os(c.severity.map(Severity::as_str)),
        i(i64::from(c.urgent)),
        i(i64::from(c.vip)),
        s(c.priority.as_str()),
        os(u.owner.as_ref().or(t.owner.as_ref()).map(|o| o.as_str())),
        i(i64::from(u.complex.unwrap_or(t.complex))),
        i(i64::from(u.escalate || t.escalated)),
        when(u.escalate),
        when(u.acked),
        when(u.agent_reply),
        i(i64::from(u.agent_reply)),
        when(u.solved),
        os(plan.survey_sent().map(|m| m.as_str())),
        when(plan.survey_sent().is_some()),
        when(u.followup_sent),
        when(u.followup_result.is_some()),
        os(u.followup_result.as_deref()),
        i(i64::from(t.agent_epoch.unwrap_or(0)) + i64::from(u.rotate_agent_token)),
    ]
}

impl Store {
    /// Commits `records` inside `tx`, in order. See the module header.
    pub async fn commit(&self, tx: &mut Tx, records: &[Record<'_>], now: Millis) -> Result<()> {
        let b = self.backend;
        let rows = records
            .iter()
            .map(|r| usize::from(r.message.is_some()) + r.plan.outbox.len())
            .sum();
        let mut message_ids = self.reserve_message_ids(tx, rows).await?.into_iter();
        let mut next_id = move || {
            // One id was reserved per message row; running out is a bug, not bad input.
            message_ids
                .next()
                .unwrap_or_else(|| unreachable!("a message row without a reserved id"))
        };
        let mut buf = Buffers::new();
        for r in records {
            let plan = r.plan;
            if let Some(t) = r.opened {
                buf.tickets.push(ticket_row(t, plan, now));
                for p in &t.participants {
                    let role = if p == &t.requester { "requester" } else { "cc" };
                    buf.participants
                        .push(vec![i(t.ticket.0), s(p.as_str()), s(role), i(now)]);
                }
            } else if plan.ticket.is_some() || plan.timer_step.is_some() {
                if !buf.is_empty() {
                    buf.flush(tx, b).await?;
                }
                self.update_existing(tx, plan, now).await?;
            }
            if let Some(m) = &r.message {
                let id = next_id();
                let (row, chunks) = message_row(id, m, now);
                buf.messages.push(row);
                buf.chunks.extend(chunks);
                for alias in m.mail.iter().flat_map(|x| &x.original_ids) {
                    buf.aliases.push(vec![s(alias.as_str()), i(id)]);
                }
            }
            self.collect(&mut buf, plan, now, &mut next_id);
        }
        buf.flush(tx, b).await
    }

    /// The statements a plan needs on rows that exist already: the fired timer's step, the
    /// ticket's fields and class, its running timers, a bounced mail.
    async fn update_existing(&self, tx: &mut Tx, plan: &Plan, now: Millis) -> Result<()> {
        if let Some(step) = &plan.timer_step {
            let done = sqlx::query(
                "UPDATE timers SET warnings_fired = $1, next_at = COALESCE($2, next_at), state = COALESCE($3, state),
                    breached_at = CASE WHEN $3 = 'breached' THEN $4 ELSE breached_at END,
                    met_at = CASE WHEN $3 = 'met' THEN $4 ELSE met_at END
                 WHERE id = $5 AND state = 'running' AND warnings_fired = $6",
            )
            .bind(i64::from(step.warnings_after))
            .bind(step.next_at)
            .bind(step.finished)
            .bind(now)
            .bind(step.id)
            .bind(i64::from(step.warnings_before))
            .execute(&mut **tx)
            .await?
            .rows_affected();
            if done != 1 {
                return Err(StoreError::StaleTimer(step.id));
            }
        }
        let Some(t) = plan.ticket.map(|t| t.0) else {
            return Ok(());
        };
        let u = &plan.update;
        sqlx::query(
            "UPDATE tickets SET updated_at = $1,
                status = COALESCE($2, status),
                solved_at = CASE WHEN $3 = 1 THEN $1 WHEN $4 = 1 THEN NULL ELSE solved_at END,
                reopens = reopens + $4,
                owner = COALESCE($5, owner),
                complex = COALESCE($6, complex),
                escalated = CASE WHEN $7 = 1 THEN 1 ELSE escalated END,
                escalated_at = CASE WHEN $7 = 1 THEN $1 ELSE escalated_at END,
                agent_replies = agent_replies + $8,
                first_reply_at = CASE WHEN $8 = 1 AND first_reply_at IS NULL THEN $1 ELSE first_reply_at END,
                acked_at = CASE WHEN $9 = 1 AND acked_at IS NULL THEN $1 ELSE acked_at END,
                survey_message_id = CASE WHEN $10 IS NOT NULL THEN $10 WHEN $11 = 1 THEN NULL ELSE survey_message_id END,
                survey_sent_at = CASE WHEN $10 IS NOT NULL THEN $1 ELSE survey_sent_at END,
                followup_result = COALESCE($12, followup_result),
                followup_at = CASE WHEN $12 IS NOT NULL THEN $1 ELSE followup_at END,
                followup_sent_at = CASE WHEN $14 = 1 THEN $1 ELSE followup_sent_at END,
                category = COALESCE($15, category),
                severity = CASE WHEN $15 IS NOT NULL THEN $16 ELSE severity END,
                urgent = COALESCE($17, urgent),
                priority = COALESCE($18, priority),
                agent_token_epoch = CASE WHEN $19 = 1 THEN COALESCE(agent_token_epoch, 0) + 1 ELSE agent_token_epoch END
             WHERE id = $13",
        )
        .bind(now)
        .bind(u.status.map(Status::as_str))
        .bind(i64::from(u.solved))
        .bind(i64::from(u.reopened))
        .bind(u.owner.as_ref().map(|o| o.as_str()))
        .bind(u.complex.map(i64::from))
        .bind(i64::from(u.escalate))
        .bind(i64::from(u.agent_reply))
        .bind(i64::from(u.acked))
        .bind(plan.survey_sent().map(|m| m.as_str()))
        .bind(i64::from(u.survey_answered))
        .bind(u.followup_result.as_deref())
        .bind(t)
        .bind(i64::from(u.followup_sent))
        .bind(plan.class.map(|c| c.category.as_str()))
        .bind(plan.class.and_then(|c| c.severity.map(Severity::as_str)))
        .bind(plan.class.map(|c| i64::from(c.urgent)))
        .bind(plan.class.map(|c| c.priority.as_str()))
        .bind(i64::from(u.rotate_agent_token))
        .execute(&mut **tx)
        .await?;
        for (kind, end) in &plan.end_timers {
            let sql = match end {
                TimerEnd::Met => {
                    "UPDATE timers SET state = CASE WHEN state = 'running' THEN 'met' ELSE state END, met_at = $1
                     WHERE ticket_id = $2 AND kind = $3 AND met_at IS NULL AND state IN ('running', 'breached')"
                }
                TimerEnd::Cancelled => {
                    "UPDATE timers SET state = 'cancelled', met_at = NULL
                     WHERE ticket_id = $2 AND kind = $3 AND state = 'running' AND $1 = $1"
                }
            };
            sqlx::query(sql)
                .bind(now)
                .bind(t)
                .bind(kind.as_str())
                .execute(&mut **tx)
                .await?;
        }
        if let Some(id) = &plan.bounced {
            sqlx::query(
                "UPDATE outbox SET status = 'failed', last_error = 'bounced', locked_until = NULL
                 WHERE message_id = $1 AND status <> 'failed'",
            )
            .bind(id.as_str())
            .execute(&mut **tx)
            .await?;
        }
        Ok(())
    }

    /// The rows a plan adds: participants, events, outgoing mail and its message rows, timers
    /// started (or re-timed), IMAP jobs, survey scores, corrections.
    fn collect<'a>(
        &self,
        buf: &mut Buffers<'a>,
        plan: &'a Plan,
        now: Millis,
        next_id: &mut impl FnMut() -> i64,
    ) {
        let ticket = plan.ticket.map(|t| t.0);
        if let Some(t) = ticket {
            for p in &plan.new_participants {
                buf.participants
                    .push(vec![i(t), s(p.as_str()), s("cc"), i(now)]);
            }
        }
        for e in &plan.events {
            buf.events.push(vec![
                V::I(e.ticket.map(|t| t.0)),
                i(now),
                s(e.kind.as_str()),
                s(e.detail.to_string()),
            ]);
        }
        for o in &plan.outbox {
            let row = next_id();
            let (raw, blob, chunks) = raw_columns(&o.raw);
            buf.messages.push(vec![
                i(row),
                V::I(o.ticket.map(|t| t.0)),
                s("out"),
                s(o.message_id.as_str()),
                V::S(None),
                V::I(None),
                V::I(None),
                i(1),
                s(o.envelope_from.as_str()),
                V::S(None),
                s(join(&o.recipients)),
                s(""),
                s(o.subject.clone()),
                os(o.in_reply_to.as_ref().map(|m| m.as_str())),
                s(""),
                V::I(None),
                i(now),
                // Our own mail's text is derived from `raw` where it is shown (`ticket show`,
                // `customer show|export`), not stored twice: ~0.3 KB per acknowledged mail.
                // `reply_text` is the new text of a person's mail (threading, corrections).
                s(""),
                s(""),
                V::S(None),
                s("ours"),
                s(""),
                V::S(None),
                raw,
                V::S(None),
                blob,
            ]);
            buf.chunks.extend(chunks);
            buf.outbox.push(vec![
                V::I(o.ticket.map(|t| t.0)),
                i(row),
                s(o.kind.as_str()),
                s(o.message_id.as_str()),
                s(o.recipients.first().map(|a| a.as_str()).unwrap_or("")),
                s(join(&o.recipients)),
                s(o.envelope_from.as_str()),
                s("pending"),
                i(0),
                i(now),
                i(now),
                i(o.give_up_at),
            ]);
        }
        let Some(t) = ticket else { return };
        // A plan that starts one kind twice keeps the last.
        for (k, d) in plan.start_timers.iter().enumerate() {
            if plan.start_timers[k + 1..].iter().any(|x| x.kind == d.kind) {
                continue;
            }
            buf.timers.push(vec![
                i(t),
                s(d.kind.as_str()),
                i(d.started_at),
                i(d.span_ms),
                i(d.due_at),
                i(d.next_at),
                i(0),
                s("running"),
                i(now),
            ]);
        }
        for job in &plan.imap_jobs {
            let (kind, folder, id, raw) = job.columns();
            let (raw, blob, chunks) = match raw {
                Some(r) => raw_columns(r),
                None => (V::B(None), V::S(None), None),
            };
            buf.chunks.extend(chunks);
            buf.jobs.push(vec![
                i(t),
                s(kind),
                s(folder.as_str()),
                V::S(id.map(str::to_string)),
                raw,
                s("pending"),
                i(now),
                i(now),
                blob,
            ]);
        }
        if let Some(sc) = &plan.survey {
            buf.surveys.push(vec![
                i(t),
                V::I(sc.speed.map(i64::from)),
                V::I(sc.solving.map(i64::from)),
                V::I(sc.attitude.map(i64::from)),
                i(i64::from(sc.overall)),
                i(now),
            ]);
        }
        if let Some((changes, by)) = &plan.correction {
            for c in changes {
                buf.corrections.push(vec![
                    i(t),
                    s(c.field),
                    os(c.old.as_deref()),
                    s(c.new.clone()),
                    s(by.clone()),
                    i(now),
                ]);
            }
        }
    }

    /// Reserves `n` message row ids, ascending.
    async fn reserve_message_ids(&self, tx: &mut Tx, n: usize) -> Result<Vec<i64>> {
        self.reserve_ids(tx, "messages", n).await
    }

    /// Reserves `n` new ids of `tickets` or `messages`, ascending, under the transaction's write
    /// lock: no other writer can take them.
    pub async fn reserve_ids(
        &self,
        tx: &mut Tx,
        table: &'static str,
        n: usize,
    ) -> Result<Vec<i64>> {
        if n == 0 {
            return Ok(Vec::new());
        }
        let table = match table {
            "tickets" => "tickets",
            _ => "messages",
        };
        Ok(match self.backend {
            Backend::Sqlite => {
                // Under BEGIN IMMEDIATE nobody else writes; AUTOINCREMENT's counter is respected.
                let sql = format!(
                    "SELECT MAX(COALESCE((SELECT seq FROM sqlite_sequence WHERE name = '{table}'), 0),
                                COALESCE((SELECT MAX(id) FROM {table}), 0))"
                );
                let max: i64 = sqlx::query(AssertSqlSafe(sql))
                    .fetch_one(&mut **tx)
                    .await?
                    .get(0);
                (max + 1..=max + n as i64).collect()
            }
            Backend::Postgres => {
                let sql = format!("SELECT nextval('{table}_id_seq') FROM generate_series(1, $1)");
                let mut ids: Vec<i64> = sqlx::query(AssertSqlSafe(sql))
                    .bind(n as i64)
                    .fetch_all(&mut **tx)
                    .await?
                    .iter()
                    .map(|r| r.get(0))
                    .collect();
                ids.sort_unstable();
                ids
            }
        })
    }

    /// Moves a mailbox folder's checkpoint inside `tx`: everything up to `last_uid` is stored.
    pub async fn set_checkpoint(
        &self,
        tx: &mut Tx,
        mailbox: &str,
        uidvalidity: u32,
        last_uid: u32,
        now: Millis,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO imap_checkpoints (mailbox, uidvalidity, last_uid, updated_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (mailbox) DO UPDATE SET uidvalidity = excluded.uidvalidity, last_uid = excluded.last_uid, updated_at = excluded.updated_at",
        )
        .bind(mailbox)
        .bind(uidvalidity as i64)
        .bind(last_uid as i64)
        .bind(now)
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    /// Claims the mailing of `month`'s report (`YYYY-MM`) inside `tx`: true when this
    /// transaction is the first to claim it. Across restarts and several daemons, only one
    /// claim of a month ever commits (the month is the table's key), so the report is queued
    /// once; the caller queues it in the same transaction.
    pub async fn claim_report_month(
        &self,
        tx: &mut Tx,
        month: &str,
        message_id: &str,
        recipients: &str,
        now: Millis,
    ) -> Result<bool> {
        Ok(sqlx::query(
            "INSERT INTO monthly_reports (month, message_id, recipients, queued_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (month) DO NOTHING",
        )
        .bind(month)
        .bind(message_id)
        .bind(recipients)
        .bind(now)
        .execute(&mut **tx)
        .await?
        .rows_affected()
            == 1)
    }

    /// The months whose report was queued: (month, queued at, Message-ID), newest first.
    pub async fn reports_mailed(&self, limit: u32) -> Result<Vec<(String, Millis, String)>> {
        Ok(sqlx::query(
            "SELECT month, queued_at, message_id FROM monthly_reports ORDER BY month DESC LIMIT $1",
        )
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect())
    }
}

/// A message row's values.
fn message_row<'a>(id: i64, m: &MessageRow<'a>, now: Millis) -> (Vec<V<'a>>, Option<Chunks<'a>>) {
    let mail = m.mail;
    let (raw, blob, chunks) = raw_columns_packed(m.raw, m.packed);
    let row = vec![
        i(id),
        V::I(m.ticket.map(|t| t.0)),
        s(if m.outgoing { "out" } else { "in" }),
        s(m.message_id),
        os(m.at.map(|a| a.mailbox.as_str())),
        V::I(m.at.map(|a| a.uidvalidity as i64)),
        V::I(m.at.map(|a| a.uid as i64)),
        i(i64::from(!m.imap_pending)),
        os(mail.and_then(|x| x.from.as_ref()).map(|a| a.as_str())),
        os(mail.and_then(|x| x.from_name.as_deref())),
        s(mail.map(|x| join(&x.to)).unwrap_or_default()),
        s(mail.map(|x| join(&x.cc)).unwrap_or_default()),
        s(mail.map(|x| x.subject.clone()).unwrap_or_default()),
        os(mail.and_then(|x| x.in_reply_to.first()).map(|m| m.as_str())),
        s(mail
            .map(|x| {
                x.references
                    .iter()
                    .map(|r| r.as_str())
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .unwrap_or_default()),
        V::I(mail.and_then(|x| x.date)),
        i(now),
        // A mail's new text is most often all of its text: `text` is then stored empty and read
        // through [`super::TEXT_COLUMN`]. `reply_text` is cut from `text`, so an empty `text`
        // never stands for a text that was empty.
        s(mail
            .filter(|x| x.text != m.reply_text)
            .map(|x| x.text.clone())
            .unwrap_or_default()),
        s(m.reply_text),
        os(m.language),
        s(m.verdict),
        s(m.reason.chars().filter(|c| *c != '\0').collect::<String>()),
        V::S(m.problems.clone()),
        raw,
        os(mail.and_then(|x| x.reply_to.as_ref()).map(|a| a.as_str())),
        blob,
    ];
    (row, chunks)
}
