//! One mailbox folder's loop: fetch new UIDs in batches (pipelined: batch n+1 is fetched while
//! batch n is decided and committed), hand each batch to intake, then flag or move its mail on
//! the server, and wait for more with IDLE or a poll.
//!
//! Invariants: batches commit in order, one at a time, each with the folder's checkpoint; the
//! IMAP flag/move happens only after its batch's commit (a crash in between means a re-fetch,
//! which dedupe turns into a no-op, and left-over actions are finished on the next connect); a
//! server that goes away means reconnect with backoff, never exit.

use crate::app::context::SharedDesk;
use crate::clock::SharedClock;
use crate::config::MailboxSettings;
use crate::inbound::decide::FolderRole;
use crate::inbound::fetch::{self, FetchError};
use crate::inbound::intake::{self, Batch, Processed};
use crate::ops::health::Health;
use crate::ops::metrics::Metrics;
use crate::store::leases::Lease;
use crate::store::{Store, StoreError};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracing::{info, info_span, warn, Instrument};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reconnecting_is_immediate_then_capped_at_five_seconds() {
        assert_eq!(reconnect_delay(0), Duration::ZERO);
        let first = reconnect_delay(1);
        assert!(first >= Duration::from_millis(800) && first <= Duration::from_millis(1200));
        for n in 2..40 {
            assert!(reconnect_delay(n) <= Duration::from_millis(6_000), "{n}");
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error(transparent)]
    Fetch(#[from] FetchError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("processing task failed: {0}")]
    Task(String),
}

/// The checkpoint key of a mailbox account and folder.
pub fn checkpoint_key(name: &str, folder: &str) -> String {
    format!("{name}/{folder}")
}

/// How long to wait before reconnecting after `failures` failed attempts in a row: at once on
/// a fresh connection the first time (a dropped connection is usually just that), then 1, 2, 4
/// and at most 5 s, each ±20 %: a server that comes back is read again within ~5 s.
pub fn reconnect_delay(failures: u32) -> Duration {
    use rand::Rng;
    if failures == 0 {
        return Duration::ZERO;
    }
    let base = (500u64 << failures.min(4)).min(5_000);
    let jitter = rand::thread_rng().gen_range(0.8..1.2);
    Duration::from_millis((base as f64 * jitter) as u64)
}

/// One mailbox's loop: runs until `cancel`, reconnecting with backoff on any error.
pub struct MailboxLoop {
    pub name: String,
    pub settings: MailboxSettings,
    pub store: Store,
    pub desk: Arc<SharedDesk>,
    pub clock: SharedClock,
    pub outbox_wake: Arc<Notify>,
    pub timer_wake: Arc<Notify>,
    pub imap_wake: Arc<Notify>,
    pub health: Arc<Health>,
    pub metrics: Arc<Metrics>,
    pub role: FolderRole,
    /// Several daemons on PostgreSQL: the mailbox is fetched only under its lease.
    pub cluster: Option<Arc<crate::app::cluster::Cluster>>,
}

/// A fetched batch being processed and committed.
type BatchTask = tokio::task::JoinHandle<Result<Vec<Processed>, StoreError>>;

impl MailboxLoop {
    /// Waits for a batch's commit, then counts it, wakes the workers and flags or moves its
    /// mail on the server.
    async fn finish_batch(
        &self,
        conn: &mut fetch::ImapConn,
        key: &str,
        uidvalidity: u32,
        done: Vec<u32>,
        task: BatchTask,
    ) -> Result<(), IngestError> {
        let processed = match task.await {
            Ok(r) => r?,
            Err(e) => return Err(IngestError::Task(e.to_string())),
        };
        self.metrics.fetched(&self.name, done.len() as u64);
        self.health.storage_ok(&self.task());
        for p in &processed {
            p.record(&self.metrics);
        }
        self.health.beat(&self.task());
        self.outbox_wake.notify_one();
        self.timer_wake.notify_one();
        self.imap_wake.notify_one();
        if self.role == FolderRole::Inbox {
            let s = &self.settings;
            conn.mark_done(&done, s.after, s.move_to.as_deref()).await?;
            self.store.mark_imap_done(key, uidvalidity, &done).await?;
        }
        Ok(())
    }

    fn task(&self) -> String {
        format!("mailbox {}", self.name)
    }

    pub async fn run(self, cancel: CancellationToken) {
        let span = info_span!("mailbox", imap.mailbox = %self.name);
        self.health.register_mailbox(&self.name);
        async {
            let key = checkpoint_key(&self.name, &self.settings.folder);
            while !cancel.is_cancelled() {
                // Several daemons: fetch only under the mailbox's lease.
                let (lease, session_cancel, keeper) = match &self.cluster {
                    None => (None, cancel.child_token(), None),
                    Some(cluster) => match cluster.acquire(&key).await {
                        Ok(Some(lease)) => {
                            info!(
                                epoch = lease.epoch,
                                "mailbox lease taken: this daemon fetches it"
                            );
                            self.health.standby(&self.name, None);
                            let session_cancel = cancel.child_token();
                            let keeper = {
                                let (c, l, sc, stop) = (
                                    cluster.clone(),
                                    lease.clone(),
                                    session_cancel.clone(),
                                    cancel.clone(),
                                );
                                tokio::spawn(async move { c.keep(&l, &sc, &stop).await })
                            };
                            (Some(lease), session_cancel, Some(keeper))
                        }
                        Ok(None) => {
                            let holder = cluster
                                .holder_of(&key)
                                .await
                                .unwrap_or_else(|| "another daemon".into());
                            self.health.standby(&self.name, Some(&holder));
                            let wait = cluster.retry_in();
                            self.health.waiting(&self.task(), wait);
                            tokio::select! {
                                _ = cancel.cancelled() => break,
                                _ = tokio::time::sleep(wait) => {}
                            }
                            continue;
                        }
                        Err(e) => {
                            warn!(error = %e, "cannot read the mailbox lease; trying again");
                            self.health.mailbox_failed(&self.name, &e.to_string());
                            self.health.waiting(&self.task(), cluster.tick());
                            tokio::select! {
                                _ = cancel.cancelled() => break,
                                _ = tokio::time::sleep(cluster.tick()) => {}
                            }
                            continue;
                        }
                    },
                };
                self.sessions(&session_cancel, lease.as_ref()).await;
                if let Some(k) = keeper {
                    session_cancel.cancel();
                    let _ = k.await;
                }
                if self.cluster.is_none() {
                    break;
                }
            }
            self.health.retire(&self.task());
            info!("mailbox loop stopped");
        }
        .instrument(span)
        .await
    }

    /// IMAP sessions, reconnecting with backoff on any error, until `cancel` (shutdown, or the
    /// lease was lost or given back).
    async fn sessions(&self, cancel: &CancellationToken, lease: Option<&Lease>) {
        // Failed attempts in a row since the last good connection.
        let mut failures = 0u32;
        // Database errors in a row.
        let mut store_failures = 0u32;
        while !cancel.is_cancelled() {
            self.health.beat(&self.task());
            match self
                .session(cancel, lease, &mut failures, &mut store_failures)
                .await
            {
                Ok(()) => break,
                Err(IngestError::Store(StoreError::LeaseLost(..))) => {
                    warn!("a batch was not committed: the mailbox's lease went to another daemon; it fetches the mail now");
                    cancel.cancel();
                    break;
                }
                Err(IngestError::Store(e)) => {
                    // The database failed (disk full, I/O, connection): the batch was not
                    // committed, so nothing was flagged; it is fetched again. Back off
                    // without hammering the database, at most 5 s.
                    store_failures += 1;
                    let wait = crate::workers::error_backoff(store_failures);
                    warn!(error = %e, retry_in = ?wait, "database error while storing mail; nothing was flagged, fetching again");
                    self.health.mailbox_failed(&self.name, &e.to_string());
                    self.health.storage_failed(&self.task(), &e.to_string());
                    self.health.waiting(&self.task(), wait);
                    tokio::select! {
                        _ = cancel.cancelled() => break,
                        _ = tokio::time::sleep(wait) => {}
                    }
                }
                Err(e) => {
                    use crate::oauth::OAuthError as O;
                    // A grant that needs a person (a new sign-in, a fixed client) is looked at
                    // every 20 s, without connecting to the server meanwhile.
                    let needs_person = matches!(
                        &e,
                        IngestError::Fetch(FetchError::OAuth(
                            O::Revoked { .. } | O::NotAuthorized { .. } | O::ClientRefused { .. }
                        ))
                    );
                    let wait = if needs_person {
                        Duration::from_secs(20)
                    } else {
                        reconnect_delay(failures)
                    };
                    failures += 1;
                    warn!(error = %e, retry_in = ?wait, "IMAP session ended; reconnecting");
                    self.health.mailbox_failed(&self.name, &e.to_string());
                    self.metrics.imap_reconnect(&self.name);
                    self.health.waiting(&self.task(), wait);
                    tokio::select! {
                        _ = cancel.cancelled() => break,
                        _ = tokio::time::sleep(wait) => {}
                    }
                }
            }
        }
    }

    async fn session(
        &self,
        cancel: &CancellationToken,
        lease: Option<&Lease>,
        failures: &mut u32,
        store_failures: &mut u32,
    ) -> Result<(), IngestError> {
        let s = &self.settings;
        let mut conn = fetch::connect(s).await?;
        // `idle = false` in config: poll even when the server offers IDLE.
        conn.idle_supported &= s.idle;
        let inbox = self.role == FolderRole::Inbox;
        if let (true, Some(folder)) = (inbox, &s.move_to) {
            conn.ensure_folder(folder).await?;
        }
        let sel = conn.select(&s.folder).await?;
        let key = checkpoint_key(&self.name, &s.folder);
        let mut last = match self.store.checkpoint(&key).await? {
            Some((v, last)) if v == sel.uidvalidity => last,
            Some((v, _)) => {
                warn!(old = v, new = sel.uidvalidity, "UIDVALIDITY changed: reading the folder again; stored mail is skipped by Message-ID");
                0
            }
            None => 0,
        };
        info!(
            uidvalidity = sel.uidvalidity,
            last_uid = last,
            idle = conn.idle_supported,
            "IMAP connected"
        );
        *failures = 0;

        let pending = if inbox {
            self.store
                .pending_imap_actions(&key, sel.uidvalidity)
                .await?
        } else {
            Vec::new()
        };
        if !pending.is_empty() {
            conn.mark_done(&pending, s.after, s.move_to.as_deref())
                .await?;
            self.store
                .mark_imap_done(&key, sel.uidvalidity, &pending)
                .await?;
        }

        loop {
            self.health.beat(&self.task());
            let uids = conn.new_uids(last).await?;
            self.health.polled(&self.name);
            // Pipelined: batch n+1 is fetched and analysed while batch n commits; batches commit
            // in order, one at a time, and each is flagged or moved after its commit.
            let mut in_hand: Option<(Vec<u32>, BatchTask)> = None;
            // Batches bounded by count and by bytes, so memory follows the largest mail.
            let sizes = conn.sizes(&uids).await?;
            for chunk in &fetch::batches(&sizes, s.batch_size as usize, fetch::BATCH_MAX_BYTES) {
                let chunk = chunk.as_slice();
                let fetched = match conn.fetch(chunk).await {
                    Ok(f) => f,
                    Err(e) => {
                        // Let the batch in hand commit before this session ends (its flags are
                        // set on the next connect), so batches never commit out of order.
                        if let Some((_, task)) = in_hand.take() {
                            let _ = task.await;
                        }
                        return Err(e.into());
                    }
                };
                let done: Vec<u32> = fetched.iter().map(|(uid, _)| *uid).collect();
                // The pure stages are CPU work: off the async runtime, so that sends and IMAP
                // sessions are never held up by a big batch, and started now, so that this
                // batch is analysed on the second core while the one in hand commits.
                // One snapshot of the desk for the analysis and the decisions (a reload between
                // them never mixes two configurations in one batch).
                let desk = self.desk.get();
                let analysis = {
                    let desk = desk.clone();
                    tokio::task::spawn_blocking(move || {
                        let started = std::time::Instant::now();
                        let a = intake::analyze_batch(&desk, &fetched);
                        (fetched, a, started)
                    })
                };
                if let Some((done, task)) = in_hand.take() {
                    if let Err(e) = self
                        .finish_batch(&mut conn, &key, sel.uidvalidity, done, task)
                        .await
                    {
                        // The analysis cannot be aborted: let it end before the session does,
                        // so no work or memory outlives the batch (it is fetched again).
                        let _ = analysis.await;
                        return Err(e);
                    }
                }
                let task = {
                    let (store, key, now) = (self.store.clone(), key.clone(), self.clock.now());
                    let uidvalidity = sel.uidvalidity;
                    let role = self.role;
                    let fence = lease.cloned();
                    tokio::spawn(async move {
                        let (fetched, analyzed, started) = analysis
                            .await
                            .map_err(|e| StoreError::Analysis(e.to_string()))?;
                        // Group commit: the batch's mails and the checkpoint in one transaction.
                        let batch = Batch {
                            mailbox: &key,
                            uidvalidity,
                            role,
                            mails: &fetched,
                            fence: fence.as_ref(),
                        };
                        intake::store_analyzed(&store, &desk, batch, &analyzed, started, now).await
                    })
                };
                in_hand = Some((done, task));
                last = chunk.iter().copied().max().unwrap_or(last).max(last);
                if cancel.is_cancelled() {
                    break;
                }
            }
            if let Some((done, task)) = in_hand.take() {
                self.finish_batch(&mut conn, &key, sel.uidvalidity, done, task)
                    .await?;
            }
            if !cancel.is_cancelled() {
                // UIDs the server no longer had a size for were expunged meanwhile.
                last = last.max(uids.last().copied().unwrap_or(0));
            }
            *store_failures = 0;
            if cancel.is_cancelled() {
                conn.logout().await;
                return Ok(());
            }
            if !uids.is_empty() {
                // Mail may have arrived while this batch was fetched and moved: look again
                // before waiting; only an empty look ends in IDLE.
                continue;
            }
            let wait = Duration::from_secs(s.poll_interval_secs);
            self.health.waiting(&self.task(), wait);
            match conn.wait_for_change(wait, cancel).await? {
                Some(c) => conn = c,
                None => return Ok(()),
            }
        }
    }
}
