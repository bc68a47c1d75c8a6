//! Liveness and readiness, for systemd's watchdog and for `/healthz` and `/readyz`.
//!
//! Each long-running loop (every mailbox, the outbox worker, the timer worker) beats as it goes,
//! and says when it is about to wait on purpose (`waiting`: an IDLE, a sleep until the next due
//! mail). Each beat sets the loop's deadline for the next one: [`STUCK_AFTER`] from now, plus the
//! wait it announced. A loop past its deadline is stuck: the watchdog stops pinging systemd
//! (which restarts the service) and `/healthz` answers 503. Mailboxes also report their last
//! successful poll and last error, for `/readyz` and the metrics.
//!
//! Invariants: liveness uses the monotonic clock (`Instant`), never the injected business clock
//! (a test's fake clock must not make the daemon look dead); no lock is held across an await.

use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a working loop may go without beating (its slowest step — an IMAP or SMTP call, a
/// batch commit — is bounded well below this by timeouts).
pub const STUCK_AFTER: Duration = Duration::from_secs(150);

#[derive(Debug, Default)]
struct MailboxState {
    first_attempt_done: bool,
    last_poll: Option<Instant>,
    last_error: Option<String>,
    /// Several daemons: another daemon holds this mailbox's lease (its holder).
    standby: Option<String>,
}

#[derive(Debug)]
pub struct Health {
    started: Instant,
    /// Per loop: the last beat and the deadline for the next.
    beats: Mutex<BTreeMap<String, (Instant, Instant)>>,
    mailboxes: Mutex<BTreeMap<String, MailboxState>>,
    /// Per loop: database errors so far, and the last one while it lasts (cleared by the loop's
    /// next successful round).
    storage: Mutex<BTreeMap<String, (u64, Option<String>)>>,
}

/// One mailbox as `/readyz` reports it.
#[derive(Debug, Clone, Serialize)]
pub struct MailboxReport {
    pub mailbox: String,
    /// Another daemon holds it (several daemons): this one stands by.
    pub standby: Option<String>,
    /// Seconds since the last successful poll (`None`: never yet).
    pub last_poll_age_secs: Option<f64>,
    pub last_error: Option<String>,
}

impl Default for Health {
    fn default() -> Self {
        Health::new()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Health {
    pub fn new() -> Health {
        Health {
            started: Instant::now(),
            beats: Mutex::new(BTreeMap::new()),
            mailboxes: Mutex::new(BTreeMap::new()),
            storage: Mutex::new(BTreeMap::new()),
        }
    }

    /// A loop's database work failed (disk full, I/O error, lost connection); it backs off and
    /// retries. `/readyz` is false until the loop's next successful round.
    pub fn storage_failed(&self, task: &str, error: &str) {
        let mut m = lock(&self.storage);
        let s = m.entry(task.to_string()).or_default();
        s.0 += 1;
        s.1 = Some(error.to_string());
    }

    /// A loop's database work succeeded.
    pub fn storage_ok(&self, task: &str) {
        if let Some(s) = lock(&self.storage).get_mut(task) {
            s.1 = None;
        }
    }

    /// Per loop: database errors so far, and the current one if the loop is still failing.
    pub fn storage(&self) -> BTreeMap<String, (u64, Option<String>)> {
        lock(&self.storage).clone()
    }

    /// A loop says it is alive and working.
    pub fn beat(&self, task: &str) {
        self.waiting(task, Duration::ZERO);
    }

    /// A loop is about to wait on purpose for up to `d` (an IDLE, a sleep until due work).
    pub fn waiting(&self, task: &str, d: Duration) {
        let now = Instant::now();
        let entry = (now, now + d + STUCK_AFTER);
        let mut b = lock(&self.beats);
        match b.get_mut(task) {
            Some(t) => *t = entry,
            None => {
                b.insert(task.to_string(), entry);
            }
        }
    }

    /// A loop is done (stopped on purpose): it no longer counts.
    pub fn retire(&self, task: &str) {
        lock(&self.beats).remove(task);
    }

    /// Loops past their deadline.
    pub fn stuck(&self) -> Vec<String> {
        let now = Instant::now();
        lock(&self.beats)
            .iter()
            .filter(|(_, (_, deadline))| now > *deadline)
            .map(|(name, _)| name.clone())
            .collect()
    }

    /// Every loop's seconds since its last beat.
    pub fn beat_ages(&self) -> BTreeMap<String, f64> {
        let now = Instant::now();
        lock(&self.beats)
            .iter()
            .map(|(n, (t, _))| (n.clone(), now.duration_since(*t).as_secs_f64()))
            .collect()
    }

    /// Test support: pretend `task` beat `ago` ago with no wait announced.
    pub fn beat_at(&self, task: &str, ago: Duration) {
        let then = Instant::now().checked_sub(ago).unwrap_or_else(Instant::now);
        lock(&self.beats).insert(task.to_string(), (then, then + STUCK_AFTER));
    }

    pub fn register_mailbox(&self, name: &str) {
        lock(&self.mailboxes).entry(name.to_string()).or_default();
    }

    /// A mailbox was read successfully (connected, searched).
    pub fn polled(&self, mailbox: &str) {
        let mut m = lock(&self.mailboxes);
        let s = m.entry(mailbox.to_string()).or_default();
        s.first_attempt_done = true;
        s.last_poll = Some(Instant::now());
        s.last_error = None;
    }

    /// Several daemons: `holder` (another daemon) holds this mailbox, or (`None`) this one
    /// does now.
    pub fn standby(&self, mailbox: &str, holder: Option<&str>) {
        let mut m = lock(&self.mailboxes);
        let s = m.entry(mailbox.to_string()).or_default();
        s.first_attempt_done = true;
        s.standby = holder.map(str::to_string);
        if holder.is_some() {
            s.last_error = None;
        }
    }

    /// How many mailboxes this daemon fetches (holds, when there are leases).
    pub fn held(&self) -> usize {
        lock(&self.mailboxes)
            .values()
            .filter(|s| s.standby.is_none())
            .count()
    }

    /// A mailbox's session failed; it will retry.
    pub fn mailbox_failed(&self, mailbox: &str, error: &str) {
        let mut m = lock(&self.mailboxes);
        let s = m.entry(mailbox.to_string()).or_default();
        s.first_attempt_done = true;
        s.last_error = Some(error.to_string());
    }

    /// Whether every registered mailbox has made its first connection attempt (succeeded, or
    /// failed and is retrying): the moment the daemon tells systemd it is ready.
    pub fn first_attempts_done(&self) -> bool {
        lock(&self.mailboxes).values().all(|s| s.first_attempt_done)
    }

    pub fn mailboxes(&self) -> Vec<MailboxReport> {
        let now = Instant::now();
        lock(&self.mailboxes)
            .iter()
            .map(|(name, s)| MailboxReport {
                mailbox: name.clone(),
                standby: s.standby.clone(),
                last_poll_age_secs: s.last_poll.map(|t| now.duration_since(t).as_secs_f64()),
                last_error: s.last_error.clone(),
            })
            .collect()
    }

    pub fn uptime(&self) -> Duration {
        self.started.elapsed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_loop_past_its_deadline_is_stuck_a_waiting_or_retired_one_is_not() {
        let h = Health::new();
        h.beat("outbox");
        h.beat("timers");
        assert!(h.stuck().is_empty());
        h.beat_at("outbox", STUCK_AFTER + Duration::from_secs(1));
        assert_eq!(h.stuck(), ["outbox"]);
        h.waiting("outbox", Duration::from_secs(60));
        assert!(h.stuck().is_empty(), "announced its wait");
        h.beat_at("timers", STUCK_AFTER + Duration::from_secs(1));
        h.retire("timers");
        assert!(h.stuck().is_empty());
    }

    #[test]
    fn ready_once_every_mailbox_has_tried_once() {
        let h = Health::new();
        h.register_mailbox("a");
        h.register_mailbox("b");
        assert!(!h.first_attempts_done());
        h.polled("a");
        assert!(!h.first_attempts_done());
        h.mailbox_failed("b", "connection refused");
        assert!(
            h.first_attempts_done(),
            "a failed attempt that retries counts"
        );
        let r = h.mailboxes();
        assert!(r[0].last_poll_age_secs.is_some());
        assert_eq!(r[1].last_error.as_deref(), Some("connection refused"));
    }
}
