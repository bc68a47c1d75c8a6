//! The retention worker: erases customers' personal data on tickets solved longer ago than
//! `retention.erase_solved_after_days` (`store::personal`), a batch at a time, each batch one
//! transaction with its IMAP deletions. Runs only when configured.

use crate::clock::{Millis, SharedClock};
use crate::ops::health::Health;
use crate::store::{Store, StoreError};
use crate::workers::{self, Step, Worker};
use std::sync::Arc;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracing::info;

/// Tickets per transaction.
const BATCH: i64 = 100;
/// How often to look when nothing was due.
const EVERY_MS: Millis = 3_600_000;

pub struct RetentionWorker {
    pub store: Store,
    pub clock: SharedClock,
    pub after_days: u32,
    /// Never notified (the worker looks every hour), kept for the worker loop.
    pub wake: Arc<Notify>,
    /// Woken when deletions were queued.
    pub imap_wake: Arc<Notify>,
    pub health: Arc<Health>,
}

impl RetentionWorker {
    /// One batch: returns how many tickets were erased.
    pub async fn run_once(&self) -> Result<usize, StoreError> {
        let now = self.clock.now();
        let cutoff = now - i64::from(self.after_days) * 86_400_000;
        let n = self.store.erase_solved_before(cutoff, BATCH, now).await?;
        if n > 0 {
            info!(
                tickets = n,
                "retention: personal data of solved tickets erased"
            );
            self.imap_wake.notify_one();
        }
        Ok(n)
    }

    pub async fn run(self, cancel: CancellationToken) {
        workers::run(self, cancel).await
    }
}

impl Worker for RetentionWorker {
    const TASK: &'static str = "retention";
    async fn step(&mut self) -> Result<Step, StoreError> {
        Ok(match self.run_once().await? {
            0 => Step::Idle,
            n => Step::Worked(n),
        })
    }
    async fn next_due(&mut self) -> Result<Option<Millis>, StoreError> {
        Ok(Some(self.clock.now() + EVERY_MS))
    }
    fn now(&self) -> Millis {
        self.clock.now()
    }
    fn health(&self) -> Arc<Health> {
        self.health.clone()
    }
    fn wake(&self) -> Arc<Notify> {
        self.wake.clone()
    }
}
