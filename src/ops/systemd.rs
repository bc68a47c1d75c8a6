//! systemd integration (sd-notify): readiness, status, stopping, reloading, and the watchdog.
//!
//! `Type=notify`: READY=1 is sent once the database is migrated and every mailbox has made its
//! first login attempt (succeeded, or failed and is retrying). With `WatchdogSec=`, the watchdog
//! task pings at a third of the interval while no loop is stuck (see `health.rs`: a loop is
//! stuck when it misses its own deadline, 150 s past its last beat plus any wait it announced);
//! a stuck loop stops the pings and systemd restarts the service. Outside systemd (no
//! `NOTIFY_SOCKET`) all of this is a no-op.

use crate::ops::health::Health;
use sd_notify::NotifyState;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, warn};

fn send(states: &[NotifyState<'_>]) {
    if let Err(e) = sd_notify::notify(false, states) {
        debug!(error = %e, "sd_notify failed");
    }
}

pub fn ready(status: &str) {
    send(&[NotifyState::Ready, NotifyState::Status(status)]);
}

pub fn status(status: &str) {
    send(&[NotifyState::Status(status)]);
}

pub fn stopping() {
    send(&[NotifyState::Stopping, NotifyState::Status("stopping")]);
}

pub fn reloading() {
    send(&[NotifyState::Reloading]);
}

/// The watchdog interval systemd asked for (`WatchdogSec=`), if any.
pub fn watchdog_interval() -> Option<Duration> {
    let mut usec = 0u64;
    sd_notify::watchdog_enabled(false, &mut usec).then(|| Duration::from_micros(usec))
}

/// Pings the watchdog while the daemon is healthy, until `cancel`.
pub async fn watchdog(health: Arc<Health>, interval: Duration, cancel: CancellationToken) {
    let every = (interval / 3).max(Duration::from_millis(100));
    let mut warned = false;
    loop {
        let stuck = health.stuck();
        if stuck.is_empty() {
            send(&[NotifyState::Watchdog]);
            warned = false;
        } else if !warned {
            error!(loops = ?stuck, "loops are stuck: no more watchdog pings; systemd will restart supportd");
            warned = true;
        }
        tokio::select! {
            _ = cancel.cancelled() => break,
            _ = tokio::time::sleep(every) => {}
        }
    }
    if warned {
        warn!("watchdog stopped while loops were stuck");
    }
}
