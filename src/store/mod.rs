//! The database edge. One API over SQLite (the embedded default) and PostgreSQL (several daemons
//! sharing the work), through sqlx's `Any` driver with runtime queries: placeholders are `$1…`,
//! which both accept; the schema lives in `migrations/sqlite` and `migrations/postgres`.
//!
//! Invariants: everything one inbound mail causes (message, ticket change, participants, events,
//! outgoing mail, checkpoint) is written inside the caller's transaction, so it commits or
//! vanishes together; an inbound Message-ID is stored once (unique index), and so is a mailbox
//! UID; times come from the caller's clock, never SQL `now()`.

use crate::clock::Millis;
use crate::domain::InboundMail;
use crate::domain::ScreenVerdict;
use crate::domain::{
    Category, Classification, Correction, FieldChange, Priority, Severity, TicketClass,
};
use crate::domain::{EmailAddress, Language, MessageId, TicketRef};
use crate::domain::{Folder, Plan, RunningTimer, Status, TicketState, TimerEnd, TimerKind};
use crate::domain::{ThreadFacts, ThreadHints, TicketFacts};
use crate::inbound::apply::{AckFacts, NewTicket};
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{Any, AnyPool, AssertSqlSafe, Row};

pub type Tx = sqlx::Transaction<'static, Any>;

pub mod batch;

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
    /// A timer step was already taken (by another scheduler): roll back, nothing to do.
    #[error("timer {0} was already fired")]
    StaleTimer(i64),
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
    /// `ack`, `survey`, `notice`, …
    pub kind: String,
    pub message_id: String,
    pub recipients: Vec<String>,
    pub envelope_from: String,
    pub raw: Vec<u8>,
    pub attempts: i64,
    pub created_at: Millis,
    pub give_up_at: Millis,
}

/// How outgoing mail is queued: its envelope sender, and when a mail that cannot be sent is given
/// up.
#[derive(Debug, Clone)]
pub struct OutboxPolicy {
    pub envelope_from: EmailAddress,
    pub give_up_after_ms: Millis,
}

/// A claimed IMAP job.
#[derive(Debug, Clone)]
pub struct ImapJobRow {
    pub id: i64,
    pub ticket: TicketRef,
    /// `append` or `move`.
    pub kind: String,
    pub folder: Folder,
    pub message_id: Option<String>,
    pub raw: Option<Vec<u8>>,
    pub attempts: i64,
}

/// The outbox for `/readyz` and `/metrics`.
#[derive(Debug, Clone, Copy)]
pub struct OutboxState {
    pub depth: i64,
    pub oldest_ms: Option<Millis>,
    pub oldest_due_ms: Option<Millis>,
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
    pub owner: Option<String>,
    pub complex: bool,
    pub escalated: bool,
    pub created_at: Millis,
    pub updated_at: Millis,
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
    /// (at, direction, from, subject, verdict) oldest first.
    pub messages: Vec<(Millis, String, Option<String>, String, String)>,
}

/// The monthly figures (`supportd report`).
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Report {
    pub from: Millis,
    pub to: Millis,
    pub tickets_created: i64,
    pub by_category: Vec<(String, i64)>,
    /// Tickets created in the period and solved by now.
    pub solved: i64,
    /// Promises started in the period and settled by now (kept, breached, or overdue): kept on
    /// time / all, by promise kind.
    pub promises: Vec<(String, i64, i64)>,
    /// Breaches in the period by promise and category.
    pub breaches: Vec<(String, String, i64)>,
    pub surveys: i64,
    /// Surveys with an overall score of 4 or 5.
    pub satisfied: i64,
    /// Tickets solved in the period / of them solved with at most one agent reply and no reopen.
    pub solved_in_period: i64,
    pub first_contact: i64,
    /// Tickets created in the period whose classification an agent corrected.
    pub corrected: i64,
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
                        "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=10000; PRAGMA foreign_keys=ON; PRAGMA cache_size=-32768;",
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
            "SELECT id, requester, requester_name, subject, language, status, category, severity, urgent, vip,
                    priority, owner, complex, escalated, survey_message_id, first_reply_at, solved_at,
                    followup_sent_at, followup_at
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
        let summary: Option<String> = sqlx::query(
            "SELECT reply_text FROM messages WHERE ticket_id = $1 AND direction = 'in' AND verdict = 'human'
             ORDER BY id DESC LIMIT 1",
        )
        .bind(t.0)
        .fetch_optional(&mut **tx)
        .await?
        .map(|r| r.get(0));
        let timers = sqlx::query(
            "SELECT kind, started_at, due_at FROM timers WHERE ticket_id = $1 AND state = 'running'",
        )
        .bind(t.0)
        .fetch_all(&mut **tx)
        .await?
        .iter()
        .filter_map(|r| {
            Some(RunningTimer {
                kind: TimerKind::parse(&r.get::<String, _>(0))?,
                started_at: r.get(1),
                due_at: r.get(2),
            })
        })
        .collect();
        Ok(Some(TicketState {
            ticket: t,
            requester,
            requester_name: row.get(2),
            subject: row.get(3),
            language: lang(&row.get::<String, _>(4)),
            status: Status::parse(&row.get::<String, _>(5)).unwrap_or(Status::Open),
            participants,
            class: class_from_row(&row, 6),
            owner: row.get::<Option<String>, _>(11).as_deref().and_then(addr),
            complex: row.get::<i64, _>(12) != 0,
            escalated: row.get::<i64, _>(13) != 0,
            survey_message_id: row
                .get::<Option<String>, _>(14)
                .as_deref()
                .and_then(MessageId::parse),
            first_reply_at: row.get(15),
            solved_at: row.get(16),
            followup_pending: row.get::<Option<i64>, _>(17).is_some()
                && row.get::<Option<i64>, _>(18).is_none(),
            summary: summary.unwrap_or_default(),
            timers,
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
        Ok(TicketState::new(
            TicketRef(id),
            new.requester.clone(),
            new.requester_name.clone(),
            new.subject.clone(),
            c,
        ))
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

    /// Writes an inbound mail's message row, filed on `ticket`, inside `tx`. (What the mail causes
    /// is its plan: [`Store::apply_plan`] in the same transaction.)
    #[allow(clippy::too_many_arguments)]
    pub async fn write_inbound(
        &self,
        tx: &mut Tx,
        mail: &InboundMail,
        raw: &[u8],
        at: &ImapLocation,
        verdict: &ScreenVerdict,
        classification: &Classification,
        reply_text: &str,
        ticket: Option<TicketRef>,
        now: Millis,
    ) -> Result<()> {
        self.write_inbound_as(
            tx,
            mail,
            raw,
            at,
            verdict.verdict.as_str(),
            &verdict.reason,
            classification,
            reply_text,
            ticket,
            now,
        )
        .await
    }

    /// [`Store::write_inbound`] with the verdict given (`agent` for an agent's mail).
    #[allow(clippy::too_many_arguments)]
    pub async fn write_inbound_as(
        &self,
        tx: &mut Tx,
        mail: &InboundMail,
        raw: &[u8],
        at: &ImapLocation,
        verdict: &str,
        reason: &str,
        classification: &Classification,
        reply_text: &str,
        ticket: Option<TicketRef>,
        now: Millis,
    ) -> Result<()> {
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
        .bind(ticket.map(|t| t.0))
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
        .bind(reply_text)
        .bind(classification.language.code())
        .bind(verdict)
        .bind(reason)
        .bind(problems)
        .bind(raw)
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    /// Commits a plan inside `tx`: the fired timer's step first (a stale step — another
    /// scheduler fired it — is [`StoreError::StaleTimer`] and the caller rolls back), then the
    /// ticket's fields, timers ended and started, participants, the bounced mail, events, outgoing
    /// mail and survey scores.
    pub async fn apply_plan(
        &self,
        tx: &mut Tx,
        plan: &Plan,
        outbox: &OutboxPolicy,
        now: Millis,
    ) -> Result<()> {
        let envelope_from = &outbox.envelope_from;
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
            debug_assert!(plan.imap_jobs.is_empty(), "IMAP jobs need a ticket");
            for e in &plan.events {
                self.add_event(tx, None, e.kind, &e.detail, now).await?;
            }
            return Ok(());
        };
        let u = &plan.update;
        let survey_id = if u.survey_sent {
            plan.outbox
                .iter()
                .find(|o| o.kind == "survey")
                .map(|o| o.message_id.as_str().to_string())
        } else {
            None
        };
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
                followup_sent_at = CASE WHEN $14 = 1 THEN $1 ELSE followup_sent_at END
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
        .bind(survey_id)
        .bind(i64::from(u.survey_answered))
        .bind(u.followup_result.as_deref())
        .bind(t)
        .bind(i64::from(u.followup_sent))
        .execute(&mut **tx)
        .await?;
        if let Some(up) = &plan.upgrade {
            self.set_class(tx, t, up).await?;
        }
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
        for d in &plan.start_timers {
            sqlx::query(
                "INSERT INTO timers (ticket_id, kind, started_at, span_ms, due_at, next_at, warnings_fired, state, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6, 0, 'running', $7)
                 ON CONFLICT (ticket_id, kind) WHERE state = 'running' DO UPDATE SET
                    started_at = excluded.started_at, span_ms = excluded.span_ms, due_at = excluded.due_at,
                    next_at = excluded.next_at, warnings_fired = 0",
            )
            .bind(t)
            .bind(d.kind.as_str())
            .bind(d.started_at)
            .bind(d.span_ms)
            .bind(d.due_at)
            .bind(d.next_at)
            .bind(now)
            .execute(&mut **tx)
            .await?;
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
        if let Some(id) = &plan.bounced {
            sqlx::query(
                "UPDATE outbox SET status = 'failed', last_error = 'bounced', locked_until = NULL
                 WHERE message_id = $1 AND status <> 'failed'",
            )
            .bind(id.as_str())
            .execute(&mut **tx)
            .await?;
        }
        for e in &plan.events {
            self.add_event(tx, e.ticket.map(|t| t.0), e.kind, &e.detail, now)
                .await?;
        }
        let join = |v: &[EmailAddress]| v.iter().map(|a| a.as_str()).collect::<Vec<_>>().join(", ");
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
        for job in &plan.imap_jobs {
            let (kind, folder, id, raw) = job.columns();
            sqlx::query(
                "INSERT INTO imap_jobs (ticket_id, kind, folder, message_id, raw, status, next_attempt_at, created_at)
                 VALUES ($1, $2, $3, $4, $5, 'pending', $6, $6)",
            )
            .bind(t)
            .bind(kind)
            .bind(folder.as_str())
            .bind(id)
            .bind(raw)
            .bind(now)
            .execute(&mut **tx)
            .await?;
        }
        if let Some((c, by)) = &plan.correction {
            self.correct_classification(tx, TicketRef(t), c, by, now)
                .await?;
        }
        if let Some(sc) = &plan.survey {
            sqlx::query(
                "INSERT INTO surveys (ticket_id, speed, solving, attitude, overall, at) VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(t)
            .bind(sc.speed.map(i64::from))
            .bind(sc.solving.map(i64::from))
            .bind(sc.attitude.map(i64::from))
            .bind(i64::from(sc.overall))
            .bind(now)
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

    /// Whether the database answers.
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").fetch_one(&self.pool).await?;
        Ok(())
    }

    /// The outbox as ops see it: how many mails wait, how old the oldest is, and how long the
    /// longest-due one has been due without being sent (a working outbox keeps that near 0).
    pub async fn outbox_state(&self, now: Millis) -> Result<OutboxState> {
        let r = sqlx::query(
            "SELECT COUNT(*), MIN(created_at),
                    MIN(CASE WHEN status = 'pending' THEN next_attempt_at ELSE locked_until END)
             FROM outbox WHERE status IN ('pending', 'sending')",
        )
        .fetch_one(&self.pool)
        .await?;
        let oldest: Option<i64> = r.get(1);
        let due: Option<i64> = r.get(2);
        Ok(OutboxState {
            depth: r.get(0),
            oldest_ms: oldest.map(|t| (now - t).max(0)),
            oldest_due_ms: due.map(|t| (now - t).max(0)),
        })
    }

    // ---- the shared mailbox ----------------------------------------------------------------

    /// The oldest pending IMAP jobs, in order, claimed with a lease (another daemon skips them).
    pub async fn claim_imap_jobs(
        &self,
        now: Millis,
        lease_ms: Millis,
        limit: u32,
    ) -> Result<Vec<ImapJobRow>> {
        let lock = match self.backend {
            Backend::Sqlite => "",
            Backend::Postgres => "FOR UPDATE SKIP LOCKED",
        };
        let sql = format!(
            "UPDATE imap_jobs SET status = 'working', locked_until = $1
             WHERE id IN (SELECT id FROM imap_jobs
                          WHERE (status = 'pending' AND next_attempt_at <= $2)
                             OR (status = 'working' AND locked_until <= $2)
                          ORDER BY id LIMIT $3 {lock})
             RETURNING id, ticket_id, kind, folder, message_id, raw, attempts"
        );
        let mut tx = self.begin().await?;
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(now + lease_ms)
            .bind(now)
            .bind(limit as i64)
            .fetch_all(&mut *tx)
            .await?;
        tx.commit().await?;
        let mut out: Vec<ImapJobRow> = rows
            .iter()
            .filter_map(|r| {
                Some(ImapJobRow {
                    id: r.get(0),
                    ticket: TicketRef(r.get(1)),
                    kind: r.get(2),
                    folder: Folder::parse(&r.get::<String, _>(3))?,
                    message_id: r.get(4),
                    raw: r.get(5),
                    attempts: r.get(6),
                })
            })
            .collect();
        out.sort_by_key(|j| j.id);
        Ok(out)
    }

    pub async fn imap_job_done(&self, id: i64, now: Millis) -> Result<()> {
        sqlx::query("UPDATE imap_jobs SET status = 'done', done_at = $1, raw = NULL, locked_until = NULL WHERE id = $2")
            .bind(now)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// A job failed: retry at `next`, or give it up (`next` = None) with an event on its ticket.
    pub async fn imap_job_failed(
        &self,
        job: &ImapJobRow,
        error: &str,
        next: Option<Millis>,
        now: Millis,
    ) -> Result<()> {
        let mut tx = self.begin().await?;
        sqlx::query(
            "UPDATE imap_jobs SET status = $1, attempts = attempts + 1, next_attempt_at = COALESCE($2, next_attempt_at),
                last_error = $3, locked_until = NULL WHERE id = $4",
        )
        .bind(if next.is_some() { "pending" } else { "failed" })
        .bind(next)
        .bind(error)
        .bind(job.id)
        .execute(&mut *tx)
        .await?;
        if next.is_none() {
            self.add_event(
                &mut tx,
                Some(job.ticket.0),
                "imap_job_failed",
                &serde_json::json!({"job": job.kind, "folder": job.folder.as_str(), "error": error}),
                now,
            )
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Releases claimed jobs not worked on (an earlier one failed: order is kept).
    pub async fn release_imap_jobs(&self, ids: &[i64]) -> Result<()> {
        for id in ids {
            sqlx::query("UPDATE imap_jobs SET status = 'pending', locked_until = NULL WHERE id = $1 AND status = 'working'")
                .bind(id)
                .execute(&self.pool)
                .await?;
        }
        Ok(())
    }

    /// The Message-IDs a reply on ticket `t` threads under: the ticket's first message and the
    /// customer's newest one.
    pub async fn thread_of(
        &self,
        tx: &mut Tx,
        t: TicketRef,
    ) -> Result<crate::agents::mail::Thread> {
        let first: Option<String> = sqlx::query(
            "SELECT message_id FROM messages WHERE ticket_id = $1 AND direction = 'in' ORDER BY id LIMIT 1",
        )
        .bind(t.0)
        .fetch_optional(&mut **tx)
        .await?
        .map(|r| r.get(0));
        let last: Option<String> = sqlx::query(
            "SELECT message_id FROM messages WHERE ticket_id = $1 AND direction = 'in' AND verdict = 'human'
             ORDER BY id DESC LIMIT 1",
        )
        .bind(t.0)
        .fetch_optional(&mut **tx)
        .await?
        .map(|r| r.get(0));
        Ok(crate::agents::mail::Thread {
            first_message: first.as_deref().and_then(MessageId::parse),
            last_customer_message: last.as_deref().and_then(MessageId::parse),
        })
    }

    /// Stores a mail found in the shared mailbox's Sent folder (an agent's direct reply) on its
    /// ticket, as outgoing mail.
    pub async fn write_sent_copy(
        &self,
        tx: &mut Tx,
        mail: &InboundMail,
        raw: &[u8],
        at: &ImapLocation,
        ticket: TicketRef,
        now: Millis,
    ) -> Result<()> {
        let join = |v: &[EmailAddress]| v.iter().map(|a| a.as_str()).collect::<Vec<_>>().join(", ");
        sqlx::query(
            "INSERT INTO messages (ticket_id, direction, message_id, mailbox, uidvalidity, uid, imap_done,
                from_addr, to_addrs, cc_addrs, subject, in_reply_to, received_at, text, reply_text, verdict, raw)
             VALUES ($1, 'out', $2, $3, $4, $5, 1, $6, $7, $8, $9, $10, $11, $12, $12, 'agent_direct', $13)
             ON CONFLICT DO NOTHING",
        )
        .bind(ticket.0)
        .bind(mail.message_id.as_str())
        .bind(&at.mailbox)
        .bind(at.uidvalidity as i64)
        .bind(at.uid as i64)
        .bind(mail.from.as_ref().map(|a| a.as_str()))
        .bind(join(&mail.to))
        .bind(join(&mail.cc))
        .bind(&mail.subject)
        .bind(mail.in_reply_to.first().map(|m| m.as_str()))
        .bind(now)
        .bind(&mail.text)
        .bind(raw)
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    // ---- timers ------------------------------------------------------------------------------

    /// Running timers due at `now`, soonest first (the partial index on `next_at`: no scans).
    pub async fn due_timers(&self, now: Millis, limit: u32) -> Result<Vec<i64>> {
        Ok(sqlx::query(
            "SELECT id FROM timers WHERE state = 'running' AND next_at <= $1 ORDER BY next_at LIMIT $2",
        )
        .bind(now)
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect())
    }

    /// Timer `id` with its ticket, if it is still running and due, locked for firing inside `tx`
    /// (PostgreSQL: a timer another daemon is firing is skipped, not waited for).
    pub async fn timer_for_firing(
        &self,
        tx: &mut Tx,
        id: i64,
        now: Millis,
    ) -> Result<Option<(crate::ticket::sla::Timer, TicketRef)>> {
        let sql = match self.backend {
            Backend::Sqlite => {
                "SELECT id, ticket_id, kind, started_at, span_ms, due_at, next_at, warnings_fired
                 FROM timers WHERE id = $1 AND state = 'running' AND next_at <= $2"
            }
            Backend::Postgres => {
                "SELECT id, ticket_id, kind, started_at, span_ms, due_at, next_at, warnings_fired
                 FROM timers WHERE id = $1 AND state = 'running' AND next_at <= $2 FOR UPDATE SKIP LOCKED"
            }
        };
        let Some(r) = sqlx::query(sql)
            .bind(id)
            .bind(now)
            .fetch_optional(&mut **tx)
            .await?
        else {
            return Ok(None);
        };
        let Some(kind) = TimerKind::parse(&r.get::<String, _>(2)) else {
            return Ok(None);
        };
        Ok(Some((
            crate::ticket::sla::Timer {
                id: r.get(0),
                kind,
                started_at: r.get(3),
                span_ms: r.get(4),
                due_at: r.get(5),
                next_at: r.get(6),
                warnings_fired: r.get::<i64, _>(7).clamp(0, u32::MAX as i64) as u32,
            },
            TicketRef(r.get(1)),
        )))
    }

    pub async fn cancel_timer(&self, tx: &mut Tx, id: i64) -> Result<()> {
        sqlx::query("UPDATE timers SET state = 'cancelled' WHERE id = $1 AND state = 'running'")
            .bind(id)
            .execute(&mut **tx)
            .await?;
        Ok(())
    }

    /// When the next running timer falls due.
    pub async fn next_timer_at(&self) -> Result<Option<Millis>> {
        Ok(
            sqlx::query("SELECT MIN(next_at) FROM timers WHERE state = 'running'")
                .fetch_one(&self.pool)
                .await?
                .get::<Option<i64>, _>(0),
        )
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
                 RETURNING id, ticket_id, message_id, recipients, envelope_from, message_row, attempts, created_at, give_up_at, kind"
            }
            Backend::Postgres => {
                "UPDATE outbox SET status = 'sending', locked_until = $1
                 WHERE id IN (SELECT id FROM outbox
                              WHERE (status = 'pending' AND next_attempt_at <= $2)
                                 OR (status = 'sending' AND locked_until <= $2)
                              ORDER BY next_attempt_at LIMIT $3 FOR UPDATE SKIP LOCKED)
                 RETURNING id, ticket_id, message_id, recipients, envelope_from, message_row, attempts, created_at, give_up_at, kind"
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
                kind: r.get(9),
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

    /// Records a mail as sent, with what its sending changes for the ticket (an acknowledgement
    /// keeps the acknowledgement promise), in one transaction.
    pub async fn mark_sent(
        &self,
        m: &ClaimedMail,
        outbox: &OutboxPolicy,
        now: Millis,
    ) -> Result<()> {
        let mut tx = self.begin().await?;
        let plan = crate::ticket::lifecycle::mail_sent(TicketRef(m.ticket_id), &m.kind);
        if !plan.update.is_empty() || !plan.end_timers.is_empty() {
            self.apply_plan(&mut tx, &plan, outbox, now).await?;
        }
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
        let mut conditions = Vec::new();
        if order == TicketOrder::Queue {
            conditions.push("t.status <> 'solved'".to_string());
        }
        let within = match filter {
            TicketFilter::None => 0,
            TicketFilter::Overdue => {
                conditions.push(format!("EXISTS (SELECT 1 FROM timers x WHERE x.ticket_id = t.id AND {OPEN_TIMER} AND x.due_at <= $2)"));
                0
            }
            TicketFilter::DueWithin(ms) => {
                conditions.push(format!("EXISTS (SELECT 1 FROM timers x WHERE x.ticket_id = t.id AND {OPEN_TIMER} AND x.due_at <= $2 + $3)"));
                ms
            }
            TicketFilter::Escalated => {
                conditions.push("t.escalated = 1 AND t.status <> 'solved'".to_string());
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
        let sql = format!(
            "SELECT {SUMMARY_COLUMNS} FROM tickets t {filter} ORDER BY {order_by} LIMIT $1"
        );
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
            "SELECT received_at, direction, from_addr, subject, verdict FROM messages WHERE ticket_id = $1 ORDER BY id",
        )
        .bind(t.0)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|x| (x.get(0), x.get(1), x.get(2), x.get(3), x.get(4)))
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

    /// The figures of `[from, to)`, as of `now` (promises still running and not yet due are not
    /// counted).
    pub async fn report(&self, from: Millis, to: Millis, now: Millis) -> Result<Report> {
        let mut r = Report {
            from,
            to,
            ..Default::default()
        };
        for row in sqlx::query(
            "SELECT category, COUNT(*), SUM(CASE WHEN status = 'solved' THEN 1 ELSE 0 END)
             FROM tickets WHERE created_at >= $1 AND created_at < $2 GROUP BY category ORDER BY category",
        )
        .bind(from)
        .bind(to)
        .fetch_all(&self.pool)
        .await?
        {
            let n: i64 = row.get(1);
            r.tickets_created += n;
            r.solved += row.get::<Option<i64>, _>(2).unwrap_or(0);
            r.by_category.push((row.get(0), n));
        }
        for row in sqlx::query(
            "SELECT kind, SUM(CASE WHEN met_at IS NOT NULL AND met_at <= due_at THEN 1 ELSE 0 END), COUNT(*)
             FROM timers WHERE started_at >= $1 AND started_at < $2 AND state <> 'cancelled'
                AND (state <> 'running' OR due_at <= $3)
             GROUP BY kind ORDER BY kind",
        )
        .bind(from)
        .bind(to)
        .bind(now)
        .fetch_all(&self.pool)
        .await?
        {
            r.promises
                .push((row.get(0), row.get::<Option<i64>, _>(1).unwrap_or(0), row.get(2)));
        }
        r.breaches = sqlx::query(
            "SELECT x.kind, t.category, COUNT(*) FROM timers x JOIN tickets t ON t.id = x.ticket_id
             WHERE x.state = 'breached' AND x.breached_at >= $1 AND x.breached_at < $2
             GROUP BY x.kind, t.category ORDER BY x.kind, t.category",
        )
        .bind(from)
        .bind(to)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|x| (x.get(0), x.get(1), x.get(2)))
        .collect();
        let row = sqlx::query(
            "SELECT COUNT(*), SUM(CASE WHEN overall >= 4 THEN 1 ELSE 0 END) FROM surveys WHERE at >= $1 AND at < $2",
        )
        .bind(from)
        .bind(to)
        .fetch_one(&self.pool)
        .await?;
        r.surveys = row.get(0);
        r.satisfied = row.get::<Option<i64>, _>(1).unwrap_or(0);
        let row = sqlx::query(
            "SELECT COUNT(*), SUM(CASE WHEN agent_replies <= 1 AND reopens = 0 THEN 1 ELSE 0 END)
             FROM tickets WHERE solved_at >= $1 AND solved_at < $2",
        )
        .bind(from)
        .bind(to)
        .fetch_one(&self.pool)
        .await?;
        r.solved_in_period = row.get(0);
        r.first_contact = row.get::<Option<i64>, _>(1).unwrap_or(0);
        r.corrected = self.correction_rate(from, to).await?.0;
        Ok(r)
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

    /// Stores a mail the database refused in the normal way: raw, with a synthetic Message-ID,
    /// verdict `quarantined`, the error as its problem, and an ops event — so it is kept and
    /// visible, and the mailbox's checkpoint moves past it.
    pub async fn quarantine(
        &self,
        at: &ImapLocation,
        raw: &[u8],
        error: &str,
        now: Millis,
    ) -> Result<()> {
        let mut tx = self.begin().await?;
        let id = MessageId::synthetic(raw);
        if !self.already_stored(&mut tx, &id, at).await? {
            let problems = serde_json::to_string(&[format!("not stored normally: {error}")])
                .unwrap_or_default();
            sqlx::query(
                "INSERT INTO messages (ticket_id, direction, message_id, mailbox, uidvalidity, uid, imap_done,
                    received_at, verdict, verdict_reason, problems, raw)
                 VALUES (NULL, 'in', $1, $2, $3, $4, 0, $5, 'quarantined', $6, $7, $8)",
            )
            .bind(id.as_str())
            .bind(&at.mailbox)
            .bind(at.uidvalidity as i64)
            .bind(at.uid as i64)
            .bind(now)
            .bind(error.chars().filter(|c| *c != '\0').collect::<String>())
            .bind(problems)
            .bind(raw)
            .execute(&mut *tx)
            .await?;
            self.add_event(
                &mut tx,
                None,
                "mail_quarantined",
                &serde_json::json!({"mailbox": at.mailbox, "uid": at.uid, "message_id": id.as_str(), "error": error}),
                now,
            )
            .await?;
        }
        self.set_checkpoint(&mut tx, &at.mailbox, at.uidvalidity, at.uid, now)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The stored raw bytes, text and subject, problems and verdict of the mail fetched at
    /// `mailbox`/`uid`.
    pub async fn stored_at(
        &self,
        mailbox: &str,
        uid: u32,
    ) -> Result<Option<(Vec<u8>, String, Option<String>, String)>> {
        Ok(sqlx::query(
            "SELECT raw, text || ' ' || subject, problems, verdict FROM messages WHERE mailbox = $1 AND uid = $2",
        )
        .bind(mailbox)
        .bind(uid as i64)
        .fetch_optional(&self.pool)
        .await?
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3))))
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
