//! The database edge. One API over SQLite (the embedded default) and PostgreSQL (several daemons
//! sharing the work), through sqlx's `Any` driver with runtime queries: placeholders are `$1…`,
//! which both accept; the schema lives in `migrations/sqlite` and `migrations/postgres`.
//!
//! One module per concern: [`writer`] is the only code that inserts rows — every decision (an
//! inbound mail, a batch of them, a timer firing, an agent's action, a sent mail) is committed
//! through it; [`facts`] loads what decisions need to know; [`outbox`], [`timers`] and
//! [`mailbox`] keep the workers' queues; [`read`] are the read-only views.
//!
//! Invariants: everything one inbound mail causes (message, ticket change, participants, events,
//! outgoing mail, checkpoint) is written inside the caller's transaction, so it commits or
//! vanishes together; an inbound Message-ID is stored once (unique index), and so is a mailbox
//! UID; times come from the caller's clock, never SQL `now()`; no business rule lives here (the
//! store returns facts and commits plans; the callers decide).

use crate::domain::{Category, EmailAddress, Language, Priority, Severity, TicketClass};
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{Any, AnyPool, AssertSqlSafe, Row};

pub type Tx = sqlx::Transaction<'static, Any>;

pub mod accepted;
pub mod facts;
pub mod leases;
pub mod mailbox;
mod meta;
pub mod outbox;
pub mod personal;
pub mod read;
pub mod report;
mod rows;
pub mod timers;
pub mod writer;

pub use mailbox::{ImapJobRow, ImapLocation};
pub use outbox::{ClaimedMail, OutboxState};
pub use read::{
    RawMessage, TicketDetail, TicketFilter, TicketOrder, TicketSummary, TimerRow, Unattributed,
};
pub use rows::{pack_raw, unpack_stored, PackedRaw};
pub use writer::{MessageRow, Record};

/// A stored mail's whole text, as an SQL expression over `messages`: the `text` column, or
/// `reply_text` where the writer left `text` empty because the two were the same (its new text
/// was all of it). Our own sent mail stores neither: its text is derived from `raw`.
pub(crate) const TEXT_COLUMN: &str = "CASE WHEN text = '' THEN reply_text ELSE text END";

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
    /// The accepted-mail journal beside a SQLite database could not be written.
    #[error("accepted-mail journal: {0}")]
    Io(#[source] std::io::Error),
    /// A batch's analysis (pure, off the runtime) did not finish: a bug, reported loudly; the
    /// batch is fetched again.
    #[error("analysing a batch failed: {0}")]
    Analysis(String),
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    /// A timer step was already taken (by another scheduler): roll back, nothing to do.
    #[error("timer {0} was already fired")]
    StaleTimer(i64),
    /// This daemon no longer holds the mailbox's lease (another daemon took it over): the batch
    /// is rolled back and the mailbox left alone.
    #[error("lease on mailbox {0} lost (epoch {1}): another daemon holds it")]
    LeaseLost(String, i64),
    /// Stored bytes that do not read back (a compressed mail that does not decompress).
    #[error("corrupt data in the database: {0}")]
    Corrupt(String),
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
    /// Where write transactions run. SQLite: a pool of one connection of its own, so that every
    /// write lands on the one connection whose page cache no other writer invalidates (in WAL
    /// mode a connection that sees another's commit drops its whole cache; with the shared pool
    /// handing out its connections in turn, each batch began cold and read its index pages from
    /// the file again), and writers queue in order instead of polling SQLite's lock.
    /// PostgreSQL: the shared pool.
    writer: AnyPool,
    /// Held by every clone of this store: the checkpointer ends once the last is dropped.
    _alive: std::sync::Arc<()>,
    backend: Backend,
    /// SQLite: the accepted-mail journal beside the database file (see [`accepted`]).
    accepted: Option<std::sync::Arc<accepted::AcceptedJournal>>,
}

pub(crate) fn lang(s: &str) -> Language {
    Language::from_code(s).unwrap_or(Language::Other)
}

pub(crate) fn addr(s: &str) -> Option<EmailAddress> {
    EmailAddress::parse(s)
}

/// Reads `category, severity, urgent, vip, priority` starting at column `at`.
pub(crate) fn class_from_row(row: &AnyRow, at: usize) -> TicketClass {
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
            .acquire_timeout(std::time::Duration::from_secs(30))
            // A connection goes back to the pool only outside any transaction. A failed COMMIT
            // (SQLite's `database or disk is full`, an I/O error) can leave the driver's
            // transaction depth above zero while the database already rolled back; such a
            // connection would refuse every later BEGIN, so it is closed and replaced instead.
            .after_release(|conn, _meta| {
                Box::pin(async move {
                    use sqlx::Connection;
                    if !conn.is_in_transaction() {
                        return Ok(true);
                    }
                    // Let the queued rollback of a dropped transaction run, then look again.
                    if conn.ping().await.is_err() {
                        return Ok(false);
                    }
                    let clean = !conn.is_in_transaction();
                    if !clean {
                        tracing::warn!(
                            "a database connection was left inside a transaction; closing it"
                        );
                    }
                    Ok(clean)
                })
            });
        let opts = if backend == Backend::Sqlite {
            opts.after_connect(|conn, _meta| {
                Box::pin(async move {
                    sqlx::raw_sql(SQLITE_PRAGMAS).execute(conn).await?;
                    Ok(())
                })
            })
        } else {
            // A daemon frozen inside a transaction (SIGSTOP, a stalled VM) must not hold its
            // locks — a mailbox lease's row among them — for ever: PostgreSQL ends such a
            // transaction after 15 s idle, and the woken daemon's commit fails (README "High
            // availability").
            opts.after_connect(|conn, _meta| {
                Box::pin(async move {
                    sqlx::raw_sql("SET idle_in_transaction_session_timeout = 15000")
                        .execute(conn)
                        .await?;
                    Ok(())
                })
            })
        };
        // The writer checkpoints the WAL itself only when it passes 64 MiB: the checkpointer
        // (below) does it beside the writer, on another connection and thread.
        let writer_opts = opts
            .clone()
            .max_connections(1)
            .after_connect(|conn, _meta| {
                Box::pin(async move {
                    sqlx::raw_sql(AssertSqlSafe(format!(
                        "{SQLITE_PRAGMAS} PRAGMA wal_autocheckpoint={WRITER_AUTOCHECKPOINT_PAGES}; PRAGMA cache_size=-{WRITER_CACHE_KIB};"
                    )))
                    .execute(conn)
                    .await?;
                    Ok(())
                })
            });
        let alive = std::sync::Arc::new(());
        let alive_weak = std::sync::Arc::downgrade(&alive);
        let pool = opts
            .connect(url)
            .await
            .map_err(|source| StoreError::Connect {
                url: shown.clone(),
                source,
            })?;
        let writer = if backend == Backend::Sqlite && sqlite_path(url).is_some() {
            let writer = writer_opts
                .connect(url)
                .await
                .map_err(|source| StoreError::Connect { url: shown, source })?;
            if let Some(path) = sqlite_path(url) {
                tokio::spawn(checkpointer(
                    pool.clone(),
                    alive_weak.clone(),
                    std::path::PathBuf::from(format!("{path}-wal")),
                ));
            }
            writer
        } else {
            pool.clone()
        };
        let accepted = match (backend, sqlite_path(url)) {
            (Backend::Sqlite, Some(path)) => {
                let journal = format!("{path}.accepted");
                Some(std::sync::Arc::new(
                    accepted::AcceptedJournal::open(std::path::Path::new(&journal)).map_err(
                        |source| StoreError::StateDir {
                            dir: format!("{journal} (the accepted-mail journal)"),
                            source,
                        },
                    )?,
                ))
            }
            _ => None,
        };
        Ok(Store {
            pool,
            writer,
            _alive: alive,
            backend,
            accepted,
        })
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
        self.writer.close().await;
        self.pool.close().await;
    }

    /// Starts a write transaction, on the writer connection (see `writer`). SQLite takes the
    /// write lock up front (`BEGIN IMMEDIATE`), so read-then-write never fails half-way on a
    /// lock upgrade.
    pub async fn begin(&self) -> Result<Tx> {
        Ok(match self.backend {
            Backend::Sqlite => self.writer.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.writer.begin().await?,
        })
    }

    /// Whether the database answers.
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").fetch_one(&self.pool).await?;
        Ok(())
    }

    /// The pool, for read-only views.
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }
}

/// The file of a SQLite URL (none for memory databases and other backends).
pub fn sqlite_path(url: &str) -> Option<String> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next()?;
    (!path.is_empty() && path != ":memory:").then(|| path.to_string())
}

/// The settings of every SQLite connection. 8 KiB pages for a new database (an existing one
/// keeps its own): a stored mail's row is 1-3 KiB, and with 4 KiB pages a third of the messages
/// table was left empty (`cargo bench --bench pipeline -- mix`: 6.4 → 5.6 KB a mail).
/// Every SQLite connection's settings. Page caches: 2 MiB on each read connection (their reads
/// are a few index lookups per fetched batch, and the kernel's page cache holds the file), 8 MiB
/// on the one writer (its inserts walk the same index pages batch after batch).
const SQLITE_PRAGMAS: &str = "PRAGMA page_size=8192; PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=10000; PRAGMA foreign_keys=ON; PRAGMA cache_size=-2048;";

/// The writer's page cache, KiB (see [`SQLITE_PRAGMAS`]).
const WRITER_CACHE_KIB: u32 = 8192;

/// The writer connection checkpoints the WAL on its own commit only past this many pages (64 MiB
/// of 8 KiB pages): a bound for when the checkpointer is held up (a long read, a busy disk).
const WRITER_AUTOCHECKPOINT_PAGES: u32 = 8192;

/// How often the checkpointer looks for new commits.
const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_millis(250);

/// SQLite's WAL checkpointer: after commits (the WAL file's modification time moved since the
/// last look, read before each checkpoint so a commit during one is seen the next round; and
/// every 5 s regardless), copies
/// the committed WAL frames into the database file (`PRAGMA wal_checkpoint(PASSIVE)`: never waits for or blocks a reader or the writer) on
/// a connection of the read pool, so this work runs on another thread beside the next write
/// instead of inside the writer's commit (SQLite's default: every 1,000 pages). Ends when the
/// last clone of its store is dropped or the pool is closed. A failure is logged and retried on
/// the next round; the writer's own bound ([`WRITER_AUTOCHECKPOINT_PAGES`]) still holds.
async fn checkpointer(pool: AnyPool, alive: std::sync::Weak<()>, wal: std::path::PathBuf) {
    let mut seen = None;
    let mut failing = false;
    let mut rounds = 0u32;
    loop {
        rounds = rounds.wrapping_add(1);
        tokio::time::sleep(CHECKPOINT_EVERY).await;
        if alive.upgrade().is_none() || pool.is_closed() {
            return;
        }
        let now = std::fs::metadata(&wal).and_then(|m| m.modified()).ok();
        // File times are coarse (a few ms): a commit in the same tick as the last look leaves
        // the time as it was, so every 20th round (5 s) checkpoints whatever the time says.
        if (now.is_none() || now == seen) && !rounds.is_multiple_of(20) {
            continue;
        }
        match sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
            .fetch_optional(&pool)
            .await
        {
            Ok(_) => {
                seen = now;
                if std::mem::take(&mut failing) {
                    tracing::info!("WAL checkpoints work again");
                }
            }
            Err(e) if !pool.is_closed() => {
                if !failing {
                    tracing::warn!(error = %e, "WAL checkpoint failed; retrying (the writer checkpoints itself past 64 MiB)");
                }
                failing = true;
            }
            Err(_) => return,
        }
    }
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

    #[tokio::test]
    async fn a_new_sqlite_database_has_8_kib_pages_in_wal_mode() {
        let (_dir, store) = facts::tests::empty_store().await;
        let (page, mode): (i64, String) = sqlx::query_as(
            "SELECT (SELECT page_size FROM pragma_page_size()), (SELECT journal_mode FROM pragma_journal_mode())",
        )
        .fetch_one(store.pool())
        .await
        .expect("pragmas");
        assert_eq!((page, mode.as_str()), (8192, "wal"));
    }

    /// Writes run on the writer connection, which leaves the WAL to the checkpointer: within a
    /// few rounds of a commit, its row is in the database file itself.
    #[tokio::test]
    async fn the_checkpointer_copies_committed_writes_into_the_database() {
        let (dir, store) = facts::tests::empty_store().await;
        let auto: i64 = sqlx::query_scalar("PRAGMA wal_autocheckpoint")
            .fetch_one(&store.writer)
            .await
            .expect("pragma");
        assert_eq!(auto, i64::from(WRITER_AUTOCHECKPOINT_PAGES));
        let marker = "checkpointer-test-marker-7f3a";
        let in_file = || {
            let db = std::fs::read(dir.path().join("p.db")).expect("db file");
            db.windows(marker.len()).any(|w| w == marker.as_bytes())
        };
        // A write on the writer connection, through the table's one writer.
        store.first_seen(marker, 1).await.expect("write");
        let mut copied = false;
        for _ in 0..40 {
            tokio::time::sleep(CHECKPOINT_EVERY).await;
            if in_file() {
                copied = true;
                break;
            }
        }
        assert!(copied, "the WAL was not checkpointed within 10 s");
    }

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
