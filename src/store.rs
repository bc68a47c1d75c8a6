//! The database edge. One API over SQLite (the embedded default) and PostgreSQL (several daemons
//! sharing the work), through sqlx's `Any` driver with runtime queries: placeholders are `$1…`,
//! which both accept; the schema lives in `migrations/sqlite` and `migrations/postgres`.
//!
//! Invariants: everything one inbound mail causes (message, ticket change, participants, events,
//! outgoing mail, checkpoint) is written inside the caller's transaction, so it commits or
//! vanishes together; an inbound Message-ID is stored once (unique index), and so is a mailbox
//! UID; times come from the caller's clock, never SQL `now()`.

use crate::apply::{AckFacts, NewTicket, Plan, TicketState};
use crate::classify::{
    Category, Classification, Correction, FieldChange, Priority, Severity, TicketClass,
};
use crate::clock::Millis;
use crate::model::{EmailAddress, Language, MessageId, TicketRef};
use crate::parse::InboundMail;
use crate::screen::ScreenVerdict;
use crate::thread::{ThreadFacts, ThreadHints, TicketFacts};
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{Any, AnyPool, AssertSqlSafe, Row};

pub type Tx = sqlx::Transaction<'static, Any>;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open database {url}: {source}")]
    Connect {
        url: String,
        #[source]
        source: sqlx::Error,
    },
    #[error("cannot create state directory {dir}: {source}")]
    StateDir {
        dir: String,
        #[source]
        source: std::io::Error,
    },
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
}

pub type Result<T> = std::result::Result<T, StoreError>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
}

/// Where an inbound mail came from on the IMAP server.
#[derive(Debug, Clone)]
pub struct ImapLocation {
    pub mailbox: String,
    pub uidvalidity: u32,
    pub uid: u32,
}

/// A queued mail claimed for sending.
#[derive(Debug, Clone)]
pub struct ClaimedMail {
    pub id: i64,
    pub ticket_id: i64,
    pub message_id: String,
    pub recipients: Vec<String>,
    pub envelope_from: String,
    pub raw: Vec<u8>,
    pub attempts: i64,
    pub created_at: Millis,
    pub give_up_at: Millis,
}

/// How outgoing mail is retried.
#[derive(Debug, Clone, Copy)]
pub struct OutboxPolicy {
    pub give_up_after_ms: Millis,
}

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
    pub created_at: Millis,
    pub updated_at: Millis,
    pub messages: i64,
}

/// Which tickets `tickets list` shows, in which order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TicketOrder {
    /// The agents' queue: tickets not solved, most pressing priority first, then oldest first.
    Queue,
    /// Every ticket, newest first.
    Newest,
}

/// SQL ranking priorities for `ORDER BY` (urgent first).
const PRIORITY_RANK: &str =
    "CASE t.priority WHEN 'urgent' THEN 0 WHEN 'high' THEN 1 WHEN 'normal' THEN 2 ELSE 3 END";

fn lang(s: &str) -> Language {
    Language::from_code(s).unwrap_or(Language::Other)
}

fn addr(s: &str) -> Option<EmailAddress> {
    EmailAddress::parse(s)
}

/// Reads `category, severity, urgent, vip, priority` starting at column `at`.
fn class_from_row(row: &AnyRow, at: usize) -> TicketClass {
    TicketClass {
        category: Category::parse(&row.get::<String, _>(at)).unwrap_or(Category::Inquiry),
        severity: row
            .get::<Option<String>, _>(at + 1)
            .as_deref()
            .and_then(Severity::parse),
        urgent: row.get::<i64, _>(at + 2) != 0,
        vip: row.get::<i64, _>(at + 3) != 0,
        priority: Priority::parse(&row.get::<String, _>(at + 4)).unwrap_or(Priority::Normal),
    }
}

impl Store {
    /// Opens the database named by `url` (creating a SQLite file and its directory if needed).
    pub async fn connect(url: &str, max_connections: u32) -> Result<Store> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else {
            Backend::Postgres
        };
        let shown = redact_url(url);
        if backend == Backend::Sqlite {
            if let Some(path) = sqlite_path(url) {
                if let Some(dir) = std::path::Path::new(&path).parent() {
                    if !dir.as_os_str().is_empty() {
                        std::fs::create_dir_all(dir).map_err(|source| StoreError::StateDir {
                            dir: dir.display().to_string(),
                            source,
                        })?;
                    }
                }
            }
        }
        let opts = AnyPoolOptions::new()
            .max_connections(if backend == Backend::Sqlite {
                max_connections.max(2)
            } else {
                max_connections
            })
            .acquire_timeout(std::time::Duration::from_secs(30));
        let opts = if backend == Backend::Sqlite {
            opts.after_connect(|conn, _meta| {
                Box::pin(async move {
                    sqlx::raw_sql(
                        "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=10000; PRAGMA foreign_keys=ON;",
                    )
                    .execute(conn)
                    .await?;
                    Ok(())
                })
            })
        } else {
            opts
        };
        let pool = opts
            .connect(url)
            .await
            .map_err(|source| StoreError::Connect { url: shown, source })?;
        Ok(Store { pool, backend })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub async fn migrate(&self) -> Result<()> {
        match self.backend {
            Backend::Sqlite => SQLITE_MIGRATIONS.run(&self.pool).await?,
            Backend::Postgres => POSTGRES_MIGRATIONS.run(&self.pool).await?,
        }
        Ok(())
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Starts a write transaction. SQLite takes the write lock up front (`BEGIN IMMEDIATE`), so
    /// read-then-write never fails half-way on a lock upgrade.
    pub async fn begin(&self) -> Result<Tx> {
        Ok(match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.pool.begin().await?,
        })
    }

    // ---- IMAP checkpoint -------------------------------------------------------------------

    pub async fn checkpoint(&self, mailbox: &str) -> Result<Option<(u32, u32)>> {
        let row =
            sqlx::query("SELECT uidvalidity, last_uid FROM imap_checkpoints WHERE mailbox = $1")
                .bind(mailbox)
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.map(|r| (r.get::<i64, _>(0) as u32, r.get::<i64, _>(1) as u32)))
    }

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

    /// UIDs stored but not yet flagged/moved on the server (a crash between commit and the IMAP
    /// action leaves some).
    pub async fn pending_imap_actions(&self, mailbox: &str, uidvalidity: u32) -> Result<Vec<u32>> {
        let rows = sqlx::query(
            "SELECT uid FROM messages WHERE imap_done = 0 AND mailbox = $1 AND uidvalidity = $2 ORDER BY uid",
        )
        .bind(mailbox)
        .bind(uidvalidity as i64)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(|r| r.get::<i64, _>(0) as u32).collect())
    }

    pub async fn mark_imap_done(
        &self,
        mailbox: &str,
        uidvalidity: u32,
        uids: &[u32],
    ) -> Result<()> {
        if uids.is_empty() {
            return Ok(());
        }
        let (lo, hi) = (
            uids.iter().min().copied().unwrap_or(0),
            uids.iter().max().copied().unwrap_or(0),
        );
        sqlx::query(
            "UPDATE messages SET imap_done = 1 WHERE imap_done = 0 AND mailbox = $1 AND uidvalidity = $2 AND uid BETWEEN $3 AND $4",
        )
        .bind(mailbox)
        .bind(uidvalidity as i64)
        .bind(lo as i64)
        .bind(hi as i64)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    // ---- inbound mail ------------------------------------------------------------------------

    /// True when this inbound mail is already stored (same Message-ID, or same mailbox UID).
    pub async fn already_stored(
        &self,
        tx: &mut Tx,
        message_id: &MessageId,
        at: &ImapLocation,
    ) -> Result<bool> {
        let row = sqlx::query(
            "SELECT 1 FROM messages WHERE direction = 'in' AND message_id = $1
             UNION ALL SELECT 1 FROM messages WHERE mailbox = $2 AND uidvalidity = $3 AND uid = $4 LIMIT 1",
        )
        .bind(message_id.as_str())
        .bind(&at.mailbox)
        .bind(at.uidvalidity as i64)
        .bind(at.uid as i64)
        .fetch_optional(&mut **tx)
        .await?;
        Ok(row.is_some())
    }

    async fn participants(&self, tx: &mut Tx, ticket_id: i64) -> Result<Vec<EmailAddress>> {
        Ok(
            sqlx::query("SELECT address FROM participants WHERE ticket_id = $1")
                .bind(ticket_id)
                .fetch_all(&mut **tx)
                .await?
                .iter()
                .filter_map(|r| addr(&r.get::<String, _>(0)))
                .collect(),
        )
    }

    async fn ticket_facts(&self, tx: &mut Tx, ticket_id: i64) -> Result<Option<TicketFacts>> {
        let Some(row) = sqlx::query("SELECT id, requester, solved_at FROM tickets WHERE id = $1")
            .bind(ticket_id)
            .fetch_optional(&mut **tx)
            .await?
        else {
            return Ok(None);
        };
        let Some(requester) = addr(&row.get::<String, _>(1)) else {
            return Ok(None);
        };
        let participants = self.participants(tx, ticket_id).await?;
        Ok(Some(TicketFacts {
            ticket: TicketRef(row.get(0)),
            requester,
            participants,
            solved_at: row.get::<Option<i64>, _>(2),
        }))
    }

    /// Looks up what the thread hints point to.
    pub async fn thread_facts(&self, tx: &mut Tx, hints: &ThreadHints) -> Result<ThreadFacts> {
        let mut facts = ThreadFacts::default();
        if let Some(t) = hints.token {
            facts.by_token = self.ticket_facts(tx, t.0).await?;
        }
        if !hints.references.is_empty() {
            let ids: Vec<&str> = hints
                .references
                .iter()
                .take(50)
                .map(|m| m.as_str())
                .collect();
            let placeholders = (1..=ids.len())
                .map(|i| format!("${i}"))
                .collect::<Vec<_>>()
                .join(", ");
            let sql = format!(
                "SELECT message_id, ticket_id FROM messages WHERE ticket_id IS NOT NULL AND message_id IN ({placeholders})"
            );
            let mut q = sqlx::query(AssertSqlSafe(sql));
            for id in &ids {
                q = q.bind(*id);
            }
            let rows: Vec<AnyRow> = q.fetch_all(&mut **tx).await?;
            // Nearest reference first: hints are ordered In-Reply-To, then newest reference.
            let found = ids.iter().find_map(|id| {
                rows.iter()
                    .find(|r| r.get::<String, _>(0) == *id)
                    .map(|r| r.get::<i64, _>(1))
            });
            if let Some(t) = found {
                facts.by_reference = self.ticket_facts(tx, t).await?;
            }
        }
        if let Some(t) = hints.tag {
            facts.by_tag = self.ticket_facts(tx, t.0).await?;
        }
        if let Some(id) = &hints.bounced {
            let ticket: Option<Option<i64>> = sqlx::query(
                "SELECT ticket_id FROM messages WHERE direction = 'out' AND message_id = $1",
            )
            .bind(id.as_str())
            .fetch_optional(&mut **tx)
            .await?
            .map(|r| r.get(0));
            if let Some(Some(t)) = ticket {
                facts.by_bounce = self.ticket_facts(tx, t).await?;
            }
        }
        Ok(facts)
    }

    pub async fn ticket_state(&self, tx: &mut Tx, t: TicketRef) -> Result<Option<TicketState>> {
        let Some(row) = sqlx::query(
            "SELECT id, requester, requester_name, subject, language, status, category, severity, urgent, vip, priority
             FROM tickets WHERE id = $1",
        )
        .bind(t.0)
        .fetch_optional(&mut **tx)
        .await?
        else {
            return Ok(None);
        };
        let Some(requester) = addr(&row.get::<String, _>(1)) else {
            return Ok(None);
        };
        let participants = self.participants(tx, t.0).await?;
        Ok(Some(TicketState {
            ticket: t,
            requester,
            requester_name: row.get(2),
            subject: row.get(3),
            language: lang(&row.get::<String, _>(4)),
            status: row.get(5),
            participants,
            class: class_from_row(&row, 6),
            created: false,
        }))
    }

    pub async fn create_ticket(
        &self,
        tx: &mut Tx,
        new: &NewTicket,
        now: Millis,
    ) -> Result<TicketState> {
        let c = &new.classification;
        let id: i64 = sqlx::query(
            "INSERT INTO tickets (status, requester, requester_name, subject, language, created_at, updated_at,
                category, severity, urgent, vip, priority)
             VALUES ('open', $1, $2, $3, $4, $5, $5, $6, $7, $8, $9, $10) RETURNING id",
        )
        .bind(new.requester.as_str())
        .bind(new.requester_name.as_deref())
        .bind(&new.subject)
        .bind(c.language.code())
        .bind(now)
        .bind(c.category.as_str())
        .bind(c.severity.map(Severity::as_str))
        .bind(i64::from(c.urgent))
        .bind(i64::from(c.vip))
        .bind(c.priority.as_str())
        .fetch_one(&mut **tx)
        .await?
        .get(0);
        sqlx::query("INSERT INTO participants (ticket_id, address, role, added_at) VALUES ($1, $2, 'requester', $3)")
            .bind(id)
            .bind(new.requester.as_str())
            .bind(now)
            .execute(&mut **tx)
            .await?;
        Ok(TicketState {
            ticket: TicketRef(id),
            requester: new.requester.clone(),
            requester_name: new.requester_name.clone(),
            subject: new.subject.clone(),
            language: c.language,
            status: "open".into(),
            participants: Vec::new(),
            class: TicketClass::of(c),
            created: true,
        })
    }

    pub async fn ack_facts(
        &self,
        tx: &mut Tx,
        sender: Option<&EmailAddress>,
        now: Millis,
    ) -> Result<AckFacts> {
        let Some(sender) = sender else {
            return Ok(AckFacts::default());
        };
        let n: i64 = sqlx::query(
            "SELECT COUNT(*) FROM outbox WHERE recipient = $1 AND kind = 'ack' AND created_at > $2",
        )
        .bind(sender.as_str())
        .bind(now - 3_600_000)
        .fetch_one(&mut **tx)
        .await?
        .get(0);
        Ok(AckFacts {
            acks_to_sender_last_hour: n.clamp(0, u32::MAX as i64) as u32,
        })
    }

    /// Writes an inbound mail and everything its plan says, inside `tx`.
    #[allow(clippy::too_many_arguments)]
    pub async fn write_inbound(
        &self,
        tx: &mut Tx,
        mail: &InboundMail,
        raw: &[u8],
        at: &ImapLocation,
        verdict: &ScreenVerdict,
        classification: &Classification,
        plan: &Plan,
        outbox: OutboxPolicy,
        envelope_from: &EmailAddress,
        now: Millis,
    ) -> Result<()> {
        let ticket_id = plan.ticket.map(|t| t.0);
        let join = |v: &[EmailAddress]| v.iter().map(|a| a.as_str()).collect::<Vec<_>>().join(", ");
        let problems = if mail.problems.is_empty() {
            None
        } else {
            serde_json::to_string(&mail.problems).ok()
        };
        sqlx::query(
            "INSERT INTO messages (ticket_id, direction, message_id, mailbox, uidvalidity, uid, imap_done,
                from_addr, from_name, to_addrs, cc_addrs, subject, in_reply_to, references_ids, sent_at,
                received_at, text, reply_text, language, verdict, verdict_reason, problems, raw)
             VALUES ($1, 'in', $2, $3, $4, $5, 0, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21)",
        )
        .bind(ticket_id)
        .bind(mail.message_id.as_str())
        .bind(&at.mailbox)
        .bind(at.uidvalidity as i64)
        .bind(at.uid as i64)
        .bind(mail.from.as_ref().map(|a| a.as_str()))
        .bind(mail.from_name.as_deref())
        .bind(join(&mail.to))
        .bind(join(&mail.cc))
        .bind(&mail.subject)
        .bind(mail.in_reply_to.first().map(|m| m.as_str()))
        .bind(mail.references.iter().map(|m| m.as_str()).collect::<Vec<_>>().join(" "))
        .bind(mail.date)
        .bind(now)
        .bind(&mail.text)
        .bind(&plan.reply_text)
        .bind(classification.language.code())
        .bind(verdict.verdict.as_str())
        .bind(&verdict.reason)
        .bind(problems)
        .bind(raw)
        .execute(&mut **tx)
        .await?;

        if let Some(t) = ticket_id {
            match plan.status {
                Some(status) => {
                    sqlx::query("UPDATE tickets SET status = $1, updated_at = $2, solved_at = NULL WHERE id = $3")
                        .bind(status)
                        .bind(now)
                        .bind(t)
                        .execute(&mut **tx)
                        .await?
                }
                None => {
                    sqlx::query("UPDATE tickets SET updated_at = $1 WHERE id = $2")
                        .bind(now)
                        .bind(t)
                        .execute(&mut **tx)
                        .await?
                }
            };
            if let Some(up) = &plan.upgrade {
                self.set_class(tx, t, up).await?;
            }
            for p in &plan.new_participants {
                sqlx::query(
                    "INSERT INTO participants (ticket_id, address, role, added_at) VALUES ($1, $2, 'cc', $3)
                     ON CONFLICT (ticket_id, address) DO NOTHING",
                )
                .bind(t)
                .bind(p.as_str())
                .bind(now)
                .execute(&mut **tx)
                .await?;
            }
        }
        if let Some(id) = &plan.bounced {
            sqlx::query(
                "UPDATE outbox SET status = 'failed', last_error = $1, locked_until = NULL
                 WHERE message_id = $2 AND status <> 'failed'",
            )
            .bind(format!("bounced: {}", verdict.reason))
            .bind(id.as_str())
            .execute(&mut **tx)
            .await?;
        }
        for e in &plan.events {
            self.add_event(tx, e.ticket.map(|t| t.0), e.kind, &e.detail, now)
                .await?;
        }
        for o in &plan.outbox {
            let row: i64 = sqlx::query(
                "INSERT INTO messages (ticket_id, direction, message_id, from_addr, to_addrs, subject, in_reply_to,
                    received_at, text, reply_text, verdict, raw)
                 VALUES ($1, 'out', $2, $3, $4, $5, $6, $7, $8, $8, 'ours', $9) RETURNING id",
            )
            .bind(o.ticket.0)
            .bind(o.message_id.as_str())
            .bind(envelope_from.as_str())
            .bind(join(&o.recipients))
            .bind(&o.subject)
            .bind(o.in_reply_to.as_ref().map(|m| m.as_str()))
            .bind(now)
            .bind(&o.text)
            .bind(&o.raw)
            .fetch_one(&mut **tx)
            .await?
            .get(0);
            sqlx::query(
                "INSERT INTO outbox (ticket_id, message_row, kind, message_id, recipient, recipients, envelope_from,
                    status, attempts, created_at, next_attempt_at, give_up_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, 'pending', 0, $8, $8, $9)",
            )
            .bind(o.ticket.0)
            .bind(row)
            .bind(o.kind)
            .bind(o.message_id.as_str())
            .bind(o.recipients.first().map(|a| a.as_str()).unwrap_or(""))
            .bind(join(&o.recipients))
            .bind(envelope_from.as_str())
            .bind(now)
            .bind(now + outbox.give_up_after_ms)
            .execute(&mut **tx)
            .await?;
        }
        Ok(())
    }

    pub async fn add_event(
        &self,
        tx: &mut Tx,
        ticket_id: Option<i64>,
        kind: &str,
        detail: &serde_json::Value,
        now: Millis,
    ) -> Result<()> {
        sqlx::query("INSERT INTO events (ticket_id, at, kind, detail) VALUES ($1, $2, $3, $4)")
            .bind(ticket_id)
            .bind(now)
            .bind(kind)
            .bind(detail.to_string())
            .execute(&mut **tx)
            .await?;
        Ok(())
    }

    async fn set_class(&self, tx: &mut Tx, ticket_id: i64, c: &TicketClass) -> Result<()> {
        sqlx::query(
            "UPDATE tickets SET category = $1, severity = $2, urgent = $3, priority = $4 WHERE id = $5",
        )
        .bind(c.category.as_str())
        .bind(c.severity.map(Severity::as_str))
        .bind(i64::from(c.urgent))
        .bind(c.priority.as_str())
        .bind(ticket_id)
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    /// The classification a ticket carries now.
    pub async fn ticket_class(&self, tx: &mut Tx, t: TicketRef) -> Result<Option<TicketClass>> {
        Ok(sqlx::query(
            "SELECT category, severity, urgent, vip, priority FROM tickets WHERE id = $1",
        )
        .bind(t.0)
        .fetch_optional(&mut **tx)
        .await?
        .map(|r| class_from_row(&r, 0)))
    }

    /// Records an agent's correction inside `tx`: the new class on the ticket, one row per changed
    /// field in `classification_corrections`, and a `classification_corrected` event. Returns the
    /// changes (empty when the correction changed nothing).
    pub async fn correct_classification(
        &self,
        tx: &mut Tx,
        t: TicketRef,
        correction: &Correction,
        by: &str,
        now: Millis,
    ) -> Result<Option<Vec<FieldChange>>> {
        let Some(current) = self.ticket_class(tx, t).await? else {
            return Ok(None);
        };
        let (new, changes) = current.corrected(correction);
        if new != current {
            self.set_class(tx, t.0, &new).await?;
        }
        for c in &changes {
            sqlx::query(
                "INSERT INTO classification_corrections (ticket_id, field, old_value, new_value, corrected_by, at)
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(t.0)
            .bind(c.field)
            .bind(c.old.as_deref())
            .bind(&c.new)
            .bind(by)
            .bind(now)
            .execute(&mut **tx)
            .await?;
        }
        if !changes.is_empty() {
            self.add_event(
                tx,
                Some(t.0),
                "classification_corrected",
                &serde_json::json!({"by": by, "changes": changes, "from": current, "to": new}),
                now,
            )
            .await?;
        }
        Ok(Some(changes))
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

    // ---- outbox ------------------------------------------------------------------------------

    /// Claims up to `limit` due mails for sending, with a lease: a daemon that dies mid-send
    /// leaves the lease to expire and the mail is claimed again.
    pub async fn claim_due(
        &self,
        now: Millis,
        lease_ms: Millis,
        limit: u32,
    ) -> Result<Vec<ClaimedMail>> {
        let sql = match self.backend {
            Backend::Sqlite => {
                "UPDATE outbox SET status = 'sending', locked_until = $1
                 WHERE id IN (SELECT id FROM outbox
                              WHERE (status = 'pending' AND next_attempt_at <= $2)
                                 OR (status = 'sending' AND locked_until <= $2)
                              ORDER BY next_attempt_at LIMIT $3)
                 RETURNING id, ticket_id, message_id, recipients, envelope_from, message_row, attempts, created_at, give_up_at"
            }
            Backend::Postgres => {
                "UPDATE outbox SET status = 'sending', locked_until = $1
                 WHERE id IN (SELECT id FROM outbox
                              WHERE (status = 'pending' AND next_attempt_at <= $2)
                                 OR (status = 'sending' AND locked_until <= $2)
                              ORDER BY next_attempt_at LIMIT $3 FOR UPDATE SKIP LOCKED)
                 RETURNING id, ticket_id, message_id, recipients, envelope_from, message_row, attempts, created_at, give_up_at"
            }
        };
        let mut tx = self.begin().await?;
        let rows = sqlx::query(sql)
            .bind(now + lease_ms)
            .bind(now)
            .bind(limit as i64)
            .fetch_all(&mut *tx)
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let raw: Vec<u8> = sqlx::query("SELECT raw FROM messages WHERE id = $1")
                .bind(r.get::<i64, _>(5))
                .fetch_one(&mut *tx)
                .await?
                .get(0);
            out.push(ClaimedMail {
                id: r.get(0),
                ticket_id: r.get(1),
                message_id: r.get(2),
                recipients: r
                    .get::<String, _>(3)
                    .split(',')
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect(),
                envelope_from: r.get(4),
                raw,
                attempts: r.get(6),
                created_at: r.get(7),
                give_up_at: r.get(8),
            });
        }
        tx.commit().await?;
        Ok(out)
    }

    /// When the next pending mail is due, if any.
    pub async fn next_due(&self) -> Result<Option<Millis>> {
        let row = sqlx::query(
            "SELECT MIN(t) FROM (
                SELECT MIN(next_attempt_at) AS t FROM outbox WHERE status = 'pending'
                UNION ALL SELECT MIN(locked_until) AS t FROM outbox WHERE status = 'sending') AS due",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(row.get::<Option<i64>, _>(0))
    }

    pub async fn mark_sent(&self, m: &ClaimedMail, now: Millis) -> Result<()> {
        let mut tx = self.begin().await?;
        sqlx::query("UPDATE outbox SET status = 'sent', sent_at = $1, attempts = attempts + 1, locked_until = NULL WHERE id = $2 AND status = 'sending'")
            .bind(now)
            .bind(m.id)
            .execute(&mut *tx)
            .await?;
        self.add_event(
            &mut tx,
            Some(m.ticket_id),
            "mail_sent",
            &serde_json::json!({"message_id": m.message_id, "attempts": m.attempts + 1}),
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn mark_retry(&self, m: &ClaimedMail, error: &str, next: Millis) -> Result<()> {
        sqlx::query(
            "UPDATE outbox SET status = 'pending', attempts = attempts + 1, next_attempt_at = $1, last_error = $2, locked_until = NULL WHERE id = $3 AND status = 'sending'",
        )
        .bind(next)
        .bind(error)
        .bind(m.id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn mark_failed(&self, m: &ClaimedMail, error: &str, now: Millis) -> Result<()> {
        let mut tx = self.begin().await?;
        sqlx::query(
            "UPDATE outbox SET status = 'failed', attempts = attempts + 1, last_error = $1, locked_until = NULL WHERE id = $2 AND status = 'sending'",
        )
        .bind(error)
        .bind(m.id)
        .execute(&mut *tx)
        .await?;
        self.add_event(
            &mut tx,
            Some(m.ticket_id),
            "outbox_failed",
            &serde_json::json!({"message_id": m.message_id, "error": error, "attempts": m.attempts + 1}),
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    // ---- queries for the CLI and tests --------------------------------------------------------

    /// The newest tickets, newest first.
    pub async fn tickets(&self, limit: u32) -> Result<Vec<TicketSummary>> {
        self.list_tickets(TicketOrder::Newest, limit).await
    }

    pub async fn list_tickets(&self, order: TicketOrder, limit: u32) -> Result<Vec<TicketSummary>> {
        let (filter, order_by) = match order {
            TicketOrder::Queue => (
                "WHERE t.status <> 'solved'".to_string(),
                format!("{PRIORITY_RANK}, t.created_at, t.id"),
            ),
            TicketOrder::Newest => (String::new(), "t.id DESC".to_string()),
        };
        let sql = format!(
            "SELECT t.id, t.status, t.requester, t.subject, t.language, t.created_at, t.updated_at,
                    (SELECT COUNT(*) FROM messages m WHERE m.ticket_id = t.id) AS n,
                    t.category, t.severity, t.urgent, t.vip, t.priority
             FROM tickets t {filter} ORDER BY {order_by} LIMIT $1"
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(limit as i64)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows
            .iter()
            .map(|r| TicketSummary {
                ticket: TicketRef(r.get(0)).to_string(),
                status: r.get(1),
                requester: r.get(2),
                subject: r.get(3),
                language: r.get(4),
                created_at: r.get(5),
                updated_at: r.get(6),
                messages: r.get(7),
                class: class_from_row(r, 8),
            })
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
}

fn sqlite_path(url: &str) -> Option<String> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next()?;
    (!path.is_empty() && path != ":memory:").then(|| path.to_string())
}

/// A database URL with its password replaced, for error messages and logs.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}{}:***{}", &url[..s + 3], user, &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted_from_urls() {
        assert_eq!(
            redact_url("postgres://u:secret@h/db"),
            "postgres://u:***@h/db"
        );
        assert_eq!(
            redact_url("sqlite:///var/lib/x.db"),
            "sqlite:///var/lib/x.db"
        );
    }

    #[test]
    fn sqlite_paths_are_found() {
        assert_eq!(
            sqlite_path("sqlite:///a/b.db?mode=rwc").as_deref(),
            Some("/a/b.db")
        );
        assert_eq!(sqlite_path("sqlite::memory:"), None);
    }
}
