//! Several daemons on one PostgreSQL: which daemon fetches which mailbox (README "High
//! availability"). Each mailbox loop takes its mailbox's lease before it connects and keeps it
//! renewed while it runs; a daemon takes at most its fair share (mailboxes ÷ live daemons,
//! rounded up) and gives one back when it holds more; a lease not renewed for `lease_secs`
//! is taken over by another daemon, and the epoch checked in every batch's commit fences out a
//! holder that was paused or cut off. SQLite runs one daemon and no leases.
//!
//! Lease times are wall-clock time (`SystemClock`), not the injected business clock: they are
//! about processes being alive across hosts, like the runtime's timers, and a test's fake clock
//! jumping days ahead must not expire them.

use super::instance::Instance;
use crate::clock::{Clock, Millis, SystemClock};
use crate::store::leases::Lease;
use crate::store::Store;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

pub struct Cluster {
    store: Store,
    /// Woken when a dead daemon's mail goes back to the queue.
    outbox_wake: Arc<tokio::sync::Notify>,
    me: Instance,
    holder: String,
    started_at: Millis,
    /// How long a lease lasts without renewal.
    pub ttl_ms: Millis,
    /// How many mailbox loops the configuration has (all daemons share one configuration).
    mailboxes: usize,
    held: AtomicUsize,
    live: AtomicI64,
    /// Mailboxes are taken only after the first heartbeat has been written and the other
    /// daemons starting alongside have had a moment to write theirs (fair shares from the
    /// start rather than one daemon grabbing everything and giving it back).
    first_heartbeat: std::sync::OnceLock<std::time::Instant>,
}

fn wall() -> Millis {
    SystemClock.now()
}

/// How long after its first heartbeat a daemon starts taking mailboxes.
const GRACE: Duration = Duration::from_millis(1500);

/// What became of a held lease's renewal.
#[derive(Debug, PartialEq, Eq)]
pub enum Ended {
    /// Another daemon took it (or it expired unrenewed): stop touching the mailbox.
    Lost,
    /// Given back to even out the shares.
    Released,
    /// Shutdown.
    Stopped,
}

impl Cluster {
    pub fn new(
        store: Store,
        outbox_wake: Arc<tokio::sync::Notify>,
        holder: String,
        ttl_ms: Millis,
        mailboxes: usize,
    ) -> Cluster {
        Cluster {
            store,
            outbox_wake,
            me: Instance::current(),
            holder,
            started_at: wall(),
            ttl_ms,
            mailboxes,
            held: AtomicUsize::new(0),
            live: AtomicI64::new(1),
            first_heartbeat: std::sync::OnceLock::new(),
        }
    }

    /// How often leases are renewed and free ones looked for.
    pub fn tick(&self) -> Duration {
        Duration::from_millis((self.ttl_ms / 4).max(250) as u64)
    }

    /// How long a mailbox loop that could not take its mailbox waits before trying again:
    /// briefly while the daemon is starting, a renewal period after.
    pub fn retry_in(&self) -> Duration {
        match self.first_heartbeat.get() {
            Some(t) if t.elapsed() >= GRACE => self.tick(),
            _ => Duration::from_millis(300),
        }
    }

    /// The most mailboxes this daemon should hold while the others are alive.
    pub fn share(&self) -> usize {
        let live = self.live.load(Ordering::Relaxed).max(1) as usize;
        self.mailboxes.div_ceil(live).max(1)
    }

    /// Heartbeats until `cancel`, keeping the count of live daemons.
    pub async fn heartbeat(self: Arc<Self>, cancel: CancellationToken) {
        let mut released = std::collections::HashSet::new();
        loop {
            match self
                .store
                .heartbeat(
                    &self.holder,
                    &self.me.host,
                    std::process::id(),
                    self.started_at,
                    wall(),
                    self.ttl_ms,
                )
                .await
            {
                Ok(n) => {
                    self.live.store(n, Ordering::Relaxed);
                    self.first_heartbeat.get_or_init(std::time::Instant::now);
                    self.take_over_work_of_the_dead(&mut released).await;
                }
                Err(e) => warn!(error = %e, "cannot record this daemon's heartbeat"),
            }
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tokio::time::sleep(self.tick()) => {}
            }
        }
    }

    /// A daemon silent for two lease lengths (or, on this host, provably gone) is dead: the
    /// mail it was sending and the shared-mailbox jobs it was doing go back to the queue at
    /// once, rather than when their 5-minute claims run out. (If it was only frozen and wakes,
    /// a mail it was sending may go twice: the documented at-least-once window.)
    async fn take_over_work_of_the_dead(&self, released: &mut std::collections::HashSet<String>) {
        let now = wall();
        let Ok(daemons) = self.store.daemons().await else {
            return;
        };
        for d in daemons {
            if d.holder == self.holder || released.contains(&d.holder) {
                continue;
            }
            let dead = d.heartbeat_at < now - 2 * self.ttl_ms || self.me.proves_dead(&d.holder);
            if !dead {
                continue;
            }
            match self.store.release_leases(&d.holder, now).await {
                Ok(n) => {
                    released.insert(d.holder.clone());
                    if n > 0 {
                        info!(holder = %d.holder, rows = n, "a dead daemon's outbox and mailbox work went back to the queue");
                        self.outbox_wake.notify_one();
                    }
                }
                Err(e) => warn!(error = %e, "cannot take back a dead daemon's work"),
            }
        }
    }

    /// Takes `mailbox` if it is free and this daemon is under its share.
    pub async fn acquire(&self, mailbox: &str) -> Result<Option<Lease>, crate::store::StoreError> {
        match self.first_heartbeat.get() {
            Some(t) if t.elapsed() >= GRACE => {}
            _ => return Ok(None),
        }
        if self.held.load(Ordering::SeqCst) >= self.share() {
            return Ok(None);
        }
        let me = &self.me;
        let lease = self
            .store
            .try_acquire(mailbox, &self.holder, wall(), self.ttl_ms, |h| {
                me.proves_dead(h)
            })
            .await?;
        if lease.is_some() {
            self.held.fetch_add(1, Ordering::SeqCst);
        }
        Ok(lease)
    }

    /// The holder of `mailbox` now, if another daemon.
    pub async fn holder_of(&self, mailbox: &str) -> Option<String> {
        let now = wall();
        self.store
            .leases()
            .await
            .ok()?
            .into_iter()
            .find(|l| l.mailbox == mailbox && l.expires_at > now && l.holder != self.holder)
            .map(|l| l.holder)
    }

    /// Keeps `lease` renewed until it is lost, given back, or `stop`; cancels `session` when it
    /// ends (the mailbox loop then stops touching the mailbox). Without a successful renewal
    /// for three quarters of the lease, the lease is treated as lost before anyone else may
    /// take it.
    pub async fn keep(
        &self,
        lease: &Lease,
        session: &CancellationToken,
        stop: &CancellationToken,
    ) -> Ended {
        let mut last_ok = wall();
        let ended = loop {
            tokio::select! {
                _ = stop.cancelled() => break Ended::Stopped,
                _ = session.cancelled() => break Ended::Stopped,
                _ = tokio::time::sleep(self.tick()) => {}
            }
            let now = wall();
            match self.store.renew(lease, now, self.ttl_ms).await {
                Ok(true) => last_ok = now,
                Ok(false) => break Ended::Lost,
                Err(e) => {
                    warn!(error = %e, imap.mailbox = %lease.mailbox, "cannot renew the mailbox lease");
                    if now - last_ok > self.ttl_ms * 3 / 4 {
                        break Ended::Lost;
                    }
                }
            }
            // Over the share while others are alive: give one back (one at a time).
            let share = self.share();
            let held = self.held.load(Ordering::SeqCst);
            if held > share
                && self
                    .held
                    .compare_exchange(held, held - 1, Ordering::SeqCst, Ordering::SeqCst)
                    .is_ok()
            {
                session.cancel();
                if let Err(e) = self.store.release(lease, wall(), "rebalanced").await {
                    warn!(error = %e, "cannot release a lease; it runs out instead");
                }
                info!(imap.mailbox = %lease.mailbox, held, share, "mailbox given back to even out the daemons' shares");
                return Ended::Released;
            }
        };
        session.cancel();
        self.held.fetch_sub(1, Ordering::SeqCst);
        match ended {
            Ended::Lost => {
                warn!(imap.mailbox = %lease.mailbox, epoch = lease.epoch, "mailbox lease lost: another daemon fetches it now")
            }
            Ended::Stopped => {
                if let Err(e) = self.store.release(lease, wall(), "stopped").await {
                    warn!(error = %e, "cannot release a lease at shutdown; it runs out instead");
                }
            }
            Ended::Released => {}
        }
        ended
    }
}
