//! The IMAP job worker: does the work on the shared mailbox that committed plans asked for —
//! ticket cards appended to their state folder, cards moved when a ticket's state changes,
//! copies of supportd's replies appended to Sent. IO at the edge of the pure `queue` stage.
//!
//! Invariants: jobs are done in the order they were committed, one at a time (a failure stops
//! the round and releases the later jobs, so a card never lands after the move that should have
//! taken it elsewhere); an append first looks for the Message-ID in the folder, so a job redone
//! after a crash never makes a second copy; a job that keeps failing is given up after
//! `MAX_ATTEMPTS` with an event on its ticket and the queue goes on; the worker has its own IMAP
//! connection, so the mailbox loops' IDLE is never disturbed.

use crate::clock::{Millis, SharedClock};
use crate::config::{MailboxSettings, QueueSettings};
use crate::domain::EventKind;
use crate::domain::TicketRef;
use crate::domain::{Folder, Plan};
use crate::inbound::fetch::{self, FetchError, ImapConn};
use crate::ops::health::Health;
use crate::outbound::outbox::backoff;
use crate::store::{ImapJobRow, Record, Store, StoreError};
use crate::workers::{self, Step, Worker};
use std::sync::Arc;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info_span, warn, Instrument};

const TASK: &str = "imap jobs";
const LEASE_MS: Millis = 5 * 60_000;
const MAX_ATTEMPTS: i64 = 10;

pub struct ImapJobWorker {
    pub store: Store,
    /// The account that holds the queue folders (without a queue: the first mailbox's).
    pub mailbox: MailboxSettings,
    /// The queue's folders (`None`: no queue; the worker only deletes copies for erasures).
    pub folders: Option<QueueSettings>,
    /// The other mailbox accounts, reached for erasures' deletions (their inbox and archive).
    pub others: Vec<MailboxSettings>,
    pub clock: SharedClock,
    pub wake: Arc<Notify>,
    pub health: Arc<Health>,
    /// This daemon's identity, on the leases it takes (see `app::instance`).
    pub holder: String,
}

/// The worker with its own IMAP connection, opened when there is work.
struct Running {
    worker: ImapJobWorker,
    conn: Option<ImapConn>,
}

#[derive(Debug, thiserror::Error)]
enum JobError {
    #[error(transparent)]
    Imap(#[from] FetchError),
    #[error("job {0} has no message to append")]
    Empty(i64),
}

impl ImapJobWorker {
    /// A queue folder's name (`None` without a queue).
    fn queue_folder(&self, f: Folder) -> Option<&str> {
        let q = self.folders.as_ref()?;
        Some(match f {
            Folder::Open => &q.open,
            Folder::Waiting => &q.waiting,
            Folder::Escalated => &q.escalated,
            Folder::Solved => &q.solved,
            Folder::Sent => &q.sent,
        })
    }

    fn folder(&self, f: Folder) -> &str {
        self.queue_folder(f).unwrap_or(&self.mailbox.folder)
    }

    async fn connect(&self) -> Result<ImapConn, FetchError> {
        let mut conn = fetch::connect(&self.mailbox).await?;
        if self.folders.is_some() {
            for f in [
                Folder::Open,
                Folder::Waiting,
                Folder::Escalated,
                Folder::Solved,
                Folder::Sent,
            ] {
                conn.ensure_folder(self.folder(f)).await?;
            }
        }
        Ok(conn)
    }

    async fn run_job(&self, conn: &mut ImapConn, job: &ImapJobRow) -> Result<(), JobError> {
        match job.kind.as_str() {
            "append" => {
                let (Some(id), Some(raw)) = (&job.message_id, &job.raw) else {
                    return Err(JobError::Empty(job.id));
                };
                let appended = conn.append_once(self.folder(job.folder), id, raw).await?;
                debug!(folder = self.folder(job.folder), appended, "card appended");
            }
            "expunge" => {
                let query = match &job.message_id {
                    Some(id) => format!("HEADER Message-ID {}", fetch::quoted(&format!("<{id}>"))),
                    None => format!(
                        "HEADER X-Supportd-Ticket {}",
                        fetch::quoted(&job.ticket.to_string())
                    ),
                };
                let mut folders: Vec<&str> = Folder::STATES
                    .iter()
                    .chain([Folder::Sent].iter())
                    .filter_map(|f| self.queue_folder(*f))
                    .collect();
                folders.push(&self.mailbox.folder);
                if let Some(archive) = &self.mailbox.move_to {
                    folders.push(archive);
                }
                let mut gone = conn.expunge_matching(&folders, &query).await?;
                // The customer's originals in the other accounts.
                for mb in &self.others {
                    let mut other = fetch::connect(mb).await?;
                    let mut theirs: Vec<&str> = vec![&mb.folder];
                    theirs.extend(mb.move_to.as_deref());
                    gone += other.expunge_matching(&theirs, &query).await?;
                    other.logout().await;
                }
                debug!(gone, "copies deleted");
            }
            _ => {
                let states: Vec<&str> = Folder::STATES.iter().map(|f| self.folder(*f)).collect();
                let moved = conn
                    .move_cards(&job.ticket.to_string(), &states, self.folder(job.folder))
                    .await?;
                debug!(to = self.folder(job.folder), moved, "cards moved");
            }
        }
        Ok(())
    }

    /// Does the jobs due now, in order. Returns how many were done.
    pub async fn try_run_once(&self, conn: &mut Option<ImapConn>) -> Result<usize, StoreError> {
        let now = self.clock.now();
        let jobs = self
            .store
            .claim_imap_jobs(now, LEASE_MS, 50, &self.holder)
            .await?;
        if jobs.is_empty() {
            return Ok(0);
        }
        let mut done = 0;
        for (i, job) in jobs.iter().enumerate() {
            self.health.beat(TASK);
            let span = info_span!("imap_job", ticket.ref = %TicketRef(job.ticket.0), job.kind = %job.kind, job.folder = job.folder.as_str());
            let result = async {
                if conn.is_none() {
                    *conn = Some(self.connect().await?);
                }
                match conn.as_mut() {
                    Some(c) => self.run_job(c, job).await,
                    None => Ok(()),
                }
            }
            .instrument(span)
            .await;
            match result {
                Ok(()) => {
                    self.store.imap_job_done(job.id, self.clock.now()).await?;
                    done += 1;
                }
                Err(e) => {
                    // Keep the order: this one is retried first, the later ones wait for it.
                    let attempts = job.attempts + 1;
                    let next = (attempts < MAX_ATTEMPTS)
                        .then(|| self.clock.now() + backoff(job.attempts, 2_000, 300_000));
                    warn!(error = %e, attempts, gave_up = next.is_none(), "shared-mailbox job failed");
                    self.failed(job, &e.to_string(), next).await?;
                    let rest: Vec<i64> = jobs[i + 1..].iter().map(|j| j.id).collect();
                    self.store.release_imap_jobs(&rest).await?;
                    // Start the next round on a fresh connection.
                    *conn = None;
                    break;
                }
            }
        }
        Ok(done)
    }

    /// Records a failed job: retried later, or given up with an `imap_job_failed` event on its
    /// ticket, in one transaction.
    async fn failed(
        &self,
        job: &ImapJobRow,
        error: &str,
        next: Option<Millis>,
    ) -> Result<(), StoreError> {
        let now = self.clock.now();
        let mut tx = self.store.begin().await?;
        self.store
            .imap_job_failed(&mut tx, job, error, next)
            .await?;
        if next.is_none() {
            let plan = Plan::with_event(
                Some(job.ticket),
                EventKind::ImapJobFailed,
                serde_json::json!({"job": job.kind, "folder": job.folder.as_str(), "error": error}),
            );
            self.store
                .commit(&mut tx, &[Record::plan(&plan)], now)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }
}

impl Worker for Running {
    const TASK: &'static str = TASK;
    async fn step(&mut self) -> Result<Step, StoreError> {
        Ok(match self.worker.try_run_once(&mut self.conn).await? {
            0 => Step::Idle,
            n => Step::Worked(n),
        })
    }
    async fn next_due(&mut self) -> Result<Option<Millis>, StoreError> {
        self.worker.store.next_imap_job_at().await
    }
    fn now(&self) -> Millis {
        self.worker.clock.now()
    }
    fn health(&self) -> Arc<Health> {
        self.worker.health.clone()
    }
    fn wake(&self) -> Arc<Notify> {
        self.worker.wake.clone()
    }
    async fn finish(self) {
        if let Some(c) = self.conn {
            c.logout().await;
        }
    }
}

impl ImapJobWorker {
    /// Runs until `cancel`: does the shared-mailbox work in commit order, then sleeps until the
    /// next retry is due, a wake-up, or the fallback interval.
    pub async fn run(self, cancel: CancellationToken) {
        let running = Running {
            worker: self,
            conn: None,
        };
        workers::run(running, cancel).await
    }
}
