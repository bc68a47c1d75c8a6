//! The running daemon: [`Application::build`] does all set-up (templates, database, migrations,
//! SMTP transport, the ops listener), [`Application::run_until_stopped`] runs one loop per mailbox,
//! the outbox worker, the timer worker, the HTTP listener and the systemd watchdog until the
//! cancellation token fires, then lets work in hand finish within the shutdown timeout. Tests build
//! the same application with their own settings and clock. [`Reloader`] is SIGHUP.
//!
//! Invariants: systemd hears READY=1 only after the database is migrated and every mailbox has
//! tried its first login (succeeded, or failed and is retrying); a stop finishes the batch and the
//! mail in hand (their transactions commit or roll back whole) and is bounded by
//! `service.shutdown_timeout_secs`; a reload that fails changes nothing.

pub mod cluster;
pub mod context;
pub mod instance;
pub mod signals;

use crate::app::context::{Desk, SharedDesk};
use crate::clock::SharedClock;
use crate::config::MailboxSettings;
use crate::config::{ConfigError, Settings};
use crate::inbound::decide::FolderRole;
use crate::inbound::mailbox::MailboxLoop;
use crate::ops::health::Health;
use crate::ops::http::{self, HttpState};
use crate::ops::logging::LogReload;
use crate::ops::metrics::Metrics;
use crate::ops::systemd;
use crate::outbound::outbox::{self, OutboxWorker};
use crate::outbound::templates::{TemplateError, Templates};
use crate::store::{Store, StoreError};
use crate::workers::mailbox_jobs::ImapJobWorker;
use crate::workers::timers::TimerWorker;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error(transparent)]
    Templates(#[from] TemplateError),
    #[error("templates use forbidden wording:\n  {}", .0.join("\n  "))]
    Wording(Vec<String>),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Send(#[from] outbox::SendError),
    #[error("another supportd already runs on the SQLite database {path} (it holds {path}.lock): SQLite serves one daemon; use PostgreSQL (database.url = \"postgres://…\") to run several")]
    AlreadyRunning { path: String },
    #[error("cannot lock {path}.lock: {source}")]
    Lock {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("http.listen: cannot listen on {address}: {source}")]
    Listen {
        address: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// The `supportd_meta` key recording when agents' addresses came in (the transition window
/// for old cards starts then).
const AGENT_ADDRESSES_SINCE: &str = "agent_addresses_since";

pub struct Application {
    pub settings: Settings,
    pub store: Store,
    /// The decision context; a reload swaps it.
    pub desk: Arc<SharedDesk>,
    pub clock: SharedClock,
    pub outbox_wake: Arc<Notify>,
    pub timer_wake: Arc<Notify>,
    /// Notified when plans committed work for the shared mailbox.
    pub imap_wake: Arc<Notify>,
    pub metrics: Arc<Metrics>,
    pub health: Arc<Health>,
    /// When this installation first ran with agents' addresses.
    agent_addresses_since: crate::domain::Millis,
    /// This daemon's identity on the leases it takes.
    holder: String,
    /// SQLite: the lock that keeps a second daemon off the database while this one runs.
    _db_lock: Option<std::fs::File>,
    listener: Option<tokio::net::TcpListener>,
    mailer: outbox::Mailer,
}

/// Database connections: `database.max_connections`, and at least two beside the outbox's
/// sending lanes, so that a lane waiting for SQLite's write lock never starves the intake and
/// the HTTP endpoints of a connection.
fn pool_size(s: &Settings) -> u32 {
    s.database.max_connections.max(s.outbox.connections + 2)
}

impl Application {
    pub async fn build(settings: Settings, clock: SharedClock) -> Result<Application, AppError> {
        let templates = Templates::load(&settings.service.templates_dir)?;
        wording_ok(&settings, &templates).map_err(AppError::Wording)?;
        let db_lock = match crate::store::sqlite_path(&settings.database_url()) {
            Some(path) => Some(lock_database(&path)?),
            None => None,
        };
        let store = Store::connect(&settings.database_url(), pool_size(&settings)).await?;
        store.migrate().await?;
        let instance = instance::Instance::current();
        take_back_work(&store, &instance, clock.now()).await?;
        let mailer = outbox::mailer(&settings.smtp)?;
        let listener = match settings.http.address() {
            Some(address) => Some(
                tokio::net::TcpListener::bind(address)
                    .await
                    .map_err(|source| AppError::Listen { address, source })?,
            ),
            None => None,
        };
        let since = store.first_seen(AGENT_ADDRESSES_SINCE, clock.now()).await?;
        if settings.agent_mail.require_auth == "none" {
            tracing::warn!(
                "agent_mail.require_auth = \"none\": an agent's authority rests on the From header of mail sent to a card's address; require \"dkim\", \"dkim_or_spf\" or \"submission\" where your mail system provides it (see the README, Agents: authority)"
            );
        }
        let desk = Arc::new(SharedDesk::new(
            Desk::new(&settings, templates).with_agent_addresses_since(since),
        ));
        info!(
            model = ?crate::inbound::classify::ModelSource::resolve(
                settings.classify.model.as_deref(),
                &settings.service.state_dir
            ),
            "classification model in use"
        );
        Ok(Application {
            settings,
            store,
            desk,
            clock,
            outbox_wake: Arc::new(Notify::new()),
            timer_wake: Arc::new(Notify::new()),
            imap_wake: Arc::new(Notify::new()),
            metrics: Arc::new(Metrics::new()),
            health: Arc::new(Health::new()),
            agent_addresses_since: since,
            holder: instance.id(),
            _db_lock: db_lock,
            listener,
            mailer,
        })
    }

    /// Where `/metrics`, `/healthz` and `/readyz` are served (the bound address, so port 0 works).
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.listener.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// SIGHUP: reloads from `config_path` (and the log filter through `log`).
    pub fn reloader(&self, config_path: PathBuf, log: Option<LogReload>) -> Reloader {
        Reloader {
            path: config_path,
            desk: self.desk.clone(),
            agent_addresses_since: self.agent_addresses_since,
            current: Mutex::new(self.settings.clone()),
            log,
        }
    }

    pub fn outbox_worker(&self) -> OutboxWorker {
        OutboxWorker {
            store: self.store.clone(),
            mailer: self.mailer.clone(),
            clock: self.clock.clone(),
            wake: self.outbox_wake.clone(),
            retry_base_ms: self.settings.outbox.retry_base_secs as i64 * 1000,
            retry_max_ms: self.settings.outbox.retry_max_secs as i64 * 1000,
            batch: self.settings.outbox.batch_size,
            connections: self.settings.outbox.connections as usize,
            holder: self.holder.clone(),
            health: self.health.clone(),
            metrics: self.metrics.clone(),
        }
    }

    pub fn timer_worker(&self) -> TimerWorker {
        TimerWorker {
            store: self.store.clone(),
            desk: self.desk.clone(),
            clock: self.clock.clone(),
            wake: self.timer_wake.clone(),
            outbox_wake: self.outbox_wake.clone(),
            imap_wake: self.imap_wake.clone(),
            health: self.health.clone(),
            metrics: self.metrics.clone(),
        }
    }

    /// The monthly report worker, when `[report] mail` is on and someone is to receive it (a
    /// WARN otherwise: nobody would get the report).
    pub fn report_worker(&self) -> Option<crate::workers::report::ReportWorker> {
        if !self.settings.report.mail {
            return None;
        }
        let recipients = self.settings.report_recipients();
        if recipients.is_empty() {
            tracing::warn!("the monthly report is not mailed: no [report] to and no agent with role = \"supervisor\"");
            return None;
        }
        Some(crate::workers::report::ReportWorker {
            store: self.store.clone(),
            desk: self.desk.clone(),
            clock: self.clock.clone(),
            settings: self.settings.report.clone(),
            recipients,
            tz: self.settings.sla_policy().calendar.timezone(),
            wake: Arc::new(Notify::new()),
            outbox_wake: self.outbox_wake.clone(),
            health: self.health.clone(),
            retry_at: 0,
        })
    }

    /// Runs until `cancel` fires; then waits up to the shutdown timeout for work in hand.
    pub async fn run_until_stopped(mut self, cancel: CancellationToken) {
        let mut tasks = tokio::task::JoinSet::new();
        tasks.spawn(self.outbox_worker().run(cancel.clone()));
        tasks.spawn(self.timer_worker().run(cancel.clone()));
        if let Some(w) = self.report_worker() {
            tasks.spawn(w.run(cancel.clone()));
        }
        if let Some(days) = self.settings.retention.erase_solved_after_days {
            tasks.spawn(
                crate::workers::retention::RetentionWorker {
                    store: self.store.clone(),
                    clock: self.clock.clone(),
                    after_days: days,
                    wake: Arc::new(tokio::sync::Notify::new()),
                    imap_wake: self.imap_wake.clone(),
                    health: self.health.clone(),
                }
                .run(cancel.clone()),
            );
        }
        let mut loops: Vec<(String, MailboxSettings, FolderRole)> = self
            .settings
            .mailboxes
            .iter()
            .map(|(n, mb)| (n.clone(), mb.clone(), FolderRole::Inbox))
            .collect();
        // The shared-mailbox worker: on the queue's account, or (without a queue) on the first
        // mailbox's, where it only deletes copies for erasures. Other accounts are reached for
        // those deletions too.
        let queue = self.settings.queue_mailbox();
        let main = queue
            .as_ref()
            .map(|(n, _)| n.to_string())
            .or_else(|| self.settings.mailboxes.keys().next().cloned());
        if let Some(mb) = main.as_ref().and_then(|n| self.settings.mailboxes.get(n)) {
            let others: Vec<MailboxSettings> = self
                .settings
                .mailboxes
                .iter()
                .filter(|(n, m)| {
                    Some(*n) != main.as_ref() && (m.host != mb.host || m.user != mb.user)
                })
                .map(|(_, m)| m.clone())
                .collect();
            tasks.spawn(
                ImapJobWorker {
                    store: self.store.clone(),
                    mailbox: mb.clone(),
                    folders: queue.as_ref().map(|(_, q)| (*q).clone()),
                    others,
                    clock: self.clock.clone(),
                    wake: self.imap_wake.clone(),
                    health: self.health.clone(),
                    holder: self.holder.clone(),
                }
                .run(cancel.clone()),
            );
        }
        if let Some((name, q)) = queue {
            let mb = self.settings.mailboxes.get(name).cloned();
            if let Some(mb) = mb {
                if q.watch_sent {
                    let sent = MailboxSettings {
                        folder: q.sent.clone(),
                        ..mb
                    };
                    loops.push((format!("{name}-sent"), sent, FolderRole::Sent));
                }
            }
        }
        // Several daemons on PostgreSQL share the mailboxes under leases; SQLite runs one.
        let cluster = (self.store.backend() == crate::store::Backend::Postgres).then(|| {
            Arc::new(cluster::Cluster::new(
                self.store.clone(),
                self.outbox_wake.clone(),
                self.holder.clone(),
                i64::from(self.settings.database.lease_secs) * 1000,
                loops.len(),
            ))
        });
        if let Some(c) = &cluster {
            tasks.spawn(c.clone().heartbeat(cancel.clone()));
        }
        for (name, mb, role) in loops {
            self.health.register_mailbox(&name);
            let l = MailboxLoop {
                name,
                settings: mb,
                store: self.store.clone(),
                desk: self.desk.clone(),
                clock: self.clock.clone(),
                outbox_wake: self.outbox_wake.clone(),
                timer_wake: self.timer_wake.clone(),
                imap_wake: self.imap_wake.clone(),
                health: self.health.clone(),
                metrics: self.metrics.clone(),
                role,
                cluster: cluster.clone(),
            };
            tasks.spawn(l.run(cancel.clone()));
        }
        // The listener and the watchdog stop with the token but are not work in hand.
        let mut side = tokio::task::JoinSet::new();
        if let Some(listener) = self.listener.take() {
            let addr = listener.local_addr().ok();
            let state = Arc::new(HttpState {
                metrics: self.metrics.clone(),
                health: self.health.clone(),
                store: self.store.clone(),
                clock: self.clock.clone(),
                mailbox_stale: Duration::from_secs(self.settings.http.mailbox_stale_secs),
                outbox_stuck: Duration::from_secs(self.settings.http.outbox_stuck_secs),
                oauth: self.settings.oauth_sources.clone(),
            });
            side.spawn(http::serve(listener, state, cancel.clone()));
            info!(address = ?addr, "serving /metrics, /healthz, /readyz");
        }
        if let Some(interval) = systemd::watchdog_interval() {
            info!(interval = ?interval, "systemd watchdog enabled");
            side.spawn(systemd::watchdog(
                self.health.clone(),
                interval,
                cancel.clone(),
            ));
        }
        let mailboxes = self.settings.mailboxes.len();
        let ready = async {
            while !self.health.first_attempts_done() {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        };
        tokio::select! {
            _ = ready => {
                systemd::ready(&format!("processing mail from {mailboxes} mailbox(es)"));
                info!(mailboxes, "supportd running");
            }
            _ = cancel.cancelled() => {}
        }
        cancel.cancelled().await;
        systemd::stopping();
        let limit = Duration::from_secs(self.settings.service.shutdown_timeout_secs);
        info!(timeout = ?limit, "stopping: finishing work in hand");
        let drained =
            tokio::time::timeout(limit, async { while tasks.join_next().await.is_some() {} }).await;
        if drained.is_err() {
            warn!(left = tasks.len(), "shutdown timeout: abandoning unfinished tasks (their work was not committed and will be redone)");
            tasks.abort_all();
        }
        side.abort_all();
        self.store.close().await;
        info!("supportd stopped");
    }
}

/// Reloads the reloadable parts of the configuration (SIGHUP): templates, `[classify]`, `[sla]`,
/// `[calendar]`, `[[agents]]`, `[screening]`, reply secrets and reopening, `service.agent_language`,
/// the log filter and address masking. Everything is checked before anything is swapped.
pub struct Reloader {
    path: PathBuf,
    desk: Arc<SharedDesk>,
    agent_addresses_since: crate::domain::Millis,
    current: Mutex<Settings>,
    log: Option<LogReload>,
}

#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    #[error(transparent)]
    Config(#[from] Box<ConfigError>),
    #[error(transparent)]
    Templates(#[from] TemplateError),
    #[error("log.filter: {0}")]
    Log(String),
    #[error("templates use forbidden wording: {}", .0.join("; "))]
    Wording(Vec<String>),
}

/// Takes `<path>.lock` for this process (released when it exits, however it exits): one daemon
/// per SQLite database.
fn lock_database(path: &str) -> Result<std::fs::File, AppError> {
    let lock_path = format!("{path}.lock");
    if let Some(dir) = std::path::Path::new(&lock_path).parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|source| AppError::Lock {
            path: path.to_string(),
            source,
        })?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(AppError::AlreadyRunning {
            path: path.to_string(),
        }),
        Err(std::fs::TryLockError::Error(source)) => Err(AppError::Lock {
            path: path.to_string(),
            source,
        }),
    }
}

/// A restarted daemon resumes its dead predecessor's work at once: leases held by a daemon that
/// is provably gone (on SQLite, which one daemon uses at a time, any lease; on PostgreSQL, one
/// taken by a process of this host that no longer runs) go back to the queue, due now.
async fn take_back_work(
    store: &Store,
    me: &instance::Instance,
    now: crate::domain::Millis,
) -> Result<(), StoreError> {
    for holder in store.lease_holders().await? {
        let gone = holder != me.id()
            && (store.backend() == crate::store::Backend::Sqlite || me.proves_dead(&holder));
        if gone {
            let n = store.release_leases(&holder, now).await?;
            info!(
                holder,
                rows = n,
                "took back the work of a daemon that is gone"
            );
        }
    }
    Ok(())
}

/// Approved wording never contains forbidden wording (checked at start and on reload).
fn wording_ok(s: &Settings, t: &Templates) -> Result<(), Vec<String>> {
    let wording = crate::agents::wording::Wording::new(&s.wording);
    let problems = crate::agents::wording::check_templates(t, &wording.forbidden);
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems)
    }
}

impl Reloader {
    /// Reloads. Returns the changed settings that only take effect after a restart.
    pub fn reload(&self) -> Result<Vec<&'static str>, ReloadError> {
        let new = Settings::load(&self.path).map_err(Box::new)?;
        let templates = Templates::load(&new.service.templates_dir)?;
        wording_ok(&new, &templates).map_err(ReloadError::Wording)?;
        if let Some(log) = &self.log {
            log.apply(&new.log).map_err(ReloadError::Log)?;
        }
        let mut current = self.current.lock().unwrap_or_else(|p| p.into_inner());
        let restart = current.restart_needed(&new);
        tracing::info!(
            model = ?crate::inbound::classify::ModelSource::resolve(
                new.classify.model.as_deref(),
                &new.service.state_dir
            ),
            "classification model in use"
        );
        self.desk.replace(
            Desk::new(&new, templates).with_agent_addresses_since(self.agent_addresses_since),
        );
        *current = new;
        Ok(restart)
    }
}
