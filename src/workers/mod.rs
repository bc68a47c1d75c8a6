//! What the three background workers (outbox sender, SLA timers, shared-mailbox jobs) share: the
//! outcome of one round, how long to sleep when idle or after a database error, and a pause
//! that reports to the health registry and ends early on a wake-up or on shutdown.

pub mod mailbox_jobs;
pub mod report;
pub mod retention;
pub mod timers;

use crate::clock::Millis;
use crate::ops::health::Health;
use crate::store::StoreError;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracing::warn;

/// What one round of a worker did.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    Worked(usize),
    Idle,
}

/// The longest an idle worker sleeps without a wake-up.
pub const FALLBACK: Duration = Duration::from_secs(60);

/// Sleep after `failures` consecutive database errors: 400 ms, doubling, at most 5 s (a disk
/// that fills up and is freed again is noticed within 5 s).
pub fn error_backoff(failures: u32) -> Duration {
    Duration::from_millis((200u64 << failures.min(8)).min(5_000))
}

/// Sleep of an idle worker whose next item is due at `next` (read from the database): until
/// then, at least 10 ms and at most [`FALLBACK`]; 5 s when the due time could not be read.
pub fn until_due(next: Result<Option<Millis>, StoreError>, now: Millis, task: &str) -> Duration {
    match next {
        Ok(Some(at)) => {
            Duration::from_millis((at - now).clamp(10, FALLBACK.as_millis() as i64) as u64)
        }
        Ok(None) => FALLBACK,
        Err(e) => {
            warn!(error = %e, task, "cannot read the next due time");
            Duration::from_secs(5)
        }
    }
}

/// A background worker in the single-step shape: [`run`] calls its step until there is nothing
/// due, then sleeps until the next due item, a wake-up or shutdown, backing off on database
/// errors.
pub trait Worker: Send {
    /// The worker's name in health reports and logs.
    const TASK: &'static str;
    /// One round: claim and do what is due now.
    fn step(&mut self) -> impl std::future::Future<Output = Result<Step, StoreError>> + Send;
    /// When the next item falls due (`None`: nothing known, sleep the fallback).
    fn next_due(
        &mut self,
    ) -> impl std::future::Future<Output = Result<Option<Millis>, StoreError>> + Send;
    fn now(&self) -> Millis;
    fn health(&self) -> Arc<Health>;
    /// Notified when a commit gives the worker something to do.
    fn wake(&self) -> Arc<Notify>;
    /// After the loop ends (close connections).
    fn finish(self) -> impl std::future::Future<Output = ()> + Send
    where
        Self: Sized,
    {
        async {}
    }
}

/// Runs `w` until `cancel`.
pub async fn run<W: Worker>(mut w: W, cancel: CancellationToken) {
    let (health, wake) = (w.health(), w.wake());
    let mut failures = 0u32;
    loop {
        health.beat(W::TASK);
        if cancel.is_cancelled() {
            break;
        }
        let sleep_for = match w.step().await {
            Ok(Step::Worked(n)) if n > 0 => {
                failures = 0;
                health.storage_ok(W::TASK);
                continue;
            }
            // Due items that were not done (another daemon has them): look again shortly.
            Ok(Step::Worked(_)) => Duration::from_millis(500),
            Ok(Step::Idle) => {
                failures = 0;
                health.storage_ok(W::TASK);
                until_due(w.next_due().await, w.now(), W::TASK)
            }
            Err(e) => {
                failures += 1;
                warn!(error = %e, task = W::TASK, "database error; backing off");
                health.storage_failed(W::TASK, &e.to_string());
                error_backoff(failures)
            }
        };
        if !pause(&health, W::TASK, &wake, &cancel, sleep_for).await {
            break;
        }
    }
    health.retire(W::TASK);
    w.finish().await;
    tracing::info!(task = W::TASK, "worker stopped");
}

/// Reports the wait to `health`, then sleeps for `d`, a wake-up or shutdown, whichever comes
/// first. Returns false on shutdown.
pub async fn pause(
    health: &Health,
    task: &str,
    wake: &Notify,
    cancel: &CancellationToken,
    d: Duration,
) -> bool {
    health.waiting(task, d);
    tokio::select! {
        _ = cancel.cancelled() => false,
        _ = wake.notified() => true,
        _ = tokio::time::sleep(d) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idle_sleep_runs_to_the_next_due_item_within_bounds() {
        assert_eq!(
            until_due(Ok(Some(1_500)), 1_000, "t"),
            Duration::from_millis(500)
        );
        assert_eq!(
            until_due(Ok(Some(900)), 1_000, "t"),
            Duration::from_millis(10)
        );
        assert_eq!(until_due(Ok(Some(10_000_000)), 0, "t"), FALLBACK);
        assert_eq!(until_due(Ok(None), 0, "t"), FALLBACK);
    }

    #[test]
    fn error_backoff_doubles_and_is_capped() {
        assert_eq!(error_backoff(1), Duration::from_millis(400));
        assert_eq!(error_backoff(2), Duration::from_millis(800));
        assert_eq!(error_backoff(8), error_backoff(30));
        assert_eq!(error_backoff(30), Duration::from_secs(5));
    }
}
