//! What the three background workers (outbox sender, SLA timers, shared-mailbox jobs) share: the
//! outcome of one round, how long to sleep when idle or after a database error, and a pause
//! that reports to the health registry and ends early on a wake-up or on shutdown.

pub mod mailbox_jobs;
pub mod timers;

use crate::clock::Millis;
use crate::ops::health::Health;
use crate::store::StoreError;
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

/// Sleep after `failures` consecutive database errors: 400 ms, doubling, at most ~51 s.
pub fn error_backoff(failures: u32) -> Duration {
    Duration::from_millis(200u64 << failures.min(8))
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
    }
}
