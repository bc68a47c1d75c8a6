//! The timer worker: keeps the service promises by firing due timers. IO at the edge of the pure
//! `sla` stage: it loads a due timer and its ticket, asks [`sla::fire`] what happens, renders the
//! notices from approved templates, and commits the plan in one transaction.
//!
//! Invariants: no periodic scans — it sleeps until the next due timer (one indexed query), a
//! wake-up (a plan started a timer), or a 60 s fallback for timers other processes added (the CLI,
//! another daemon on PostgreSQL); each firing is one transaction, and a step another scheduler
//! took first is rolled back (`StoreError::StaleTimer`), so every step happens once, also across
//! restarts and crashes; time comes from the injected clock.

use crate::app::context::SharedDesk;
use crate::clock::SharedClock;
use crate::store::{Record, Store, StoreError};
use crate::ticket::lifecycle;
use crate::ticket::sla;
use crate::workers::{self, Step, Worker};
use std::sync::Arc;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, info_span, warn, Instrument};

#[derive(Clone)]
pub struct TimerWorker {
    pub store: Store,
    pub desk: Arc<SharedDesk>,
    pub clock: SharedClock,
    /// Notified when a plan starts a timer.
    pub wake: Arc<Notify>,
    /// Notified when firing queued mail.
    pub outbox_wake: Arc<Notify>,
    /// Notified when firing queued work for the shared mailbox.
    pub imap_wake: Arc<Notify>,
    pub health: Arc<crate::ops::health::Health>,
    pub metrics: Arc<crate::ops::metrics::Metrics>,
}

/// The worker's name in health reports.
const TASK: &str = "timers";

impl TimerWorker {
    /// Fires every timer due now. Returns how many fired.
    pub async fn try_fire_once(&self) -> Result<Step, StoreError> {
        let now = self.clock.now();
        let due = self.store.due_timers(now, 100).await?;
        if due.is_empty() {
            return Ok(Step::Idle);
        }
        let mut fired = 0;
        for id in due {
            if self.fire_one(id).await? {
                fired += 1;
            }
        }
        if fired > 0 {
            self.outbox_wake.notify_one();
            self.imap_wake.notify_one();
        }
        Ok(Step::Worked(fired))
    }

    /// Fires one timer; false when it was no longer due or another scheduler had it.
    async fn fire_one(&self, id: i64) -> Result<bool, StoreError> {
        let now = self.clock.now();
        let mut tx = self.store.begin().await?;
        let Some((timer, t)) = self.store.timer_for_firing(&mut tx, id, now).await? else {
            return Ok(false);
        };
        let span = info_span!("timer", ticket.ref = %t, sla.promise = timer.kind.as_str(), sla.due_at = %crate::clock::rfc3339(timer.due_at));
        async {
            let Some(ticket) = self.store.ticket_state(&mut tx, t).await? else {
                warn!("timer of a missing ticket; cancelling it");
                self.store.cancel_timer(&mut tx, timer.id).await?;
                tx.commit().await?;
                return Ok(false);
            };
            let desk = self.desk.get();
            let out = sla::fire(&timer, &ticket, &desk.sla, &desk.agents, now);
            let mut plan = out.plan;
            lifecycle::queue_notices(&desk, &ticket, &out.notices, now, &mut plan);
            if out.followup_mail {
                lifecycle::queue_followup_mail(&desk, &ticket, now, &mut plan);
            }
            if desk.queue.is_some() {
                crate::agents::shared_mailbox::follow_state(&ticket, &mut plan);
            }
            match self
                .store
                .commit(&mut tx, &[Record::plan(&plan)], now)
                .await
            {
                Err(StoreError::StaleTimer(_)) => {
                    debug!("another scheduler fired it first");
                    return Ok(false);
                }
                r => r?,
            }
            tx.commit().await?;
            let events: Vec<_> = plan.events.iter().map(|e| (e.kind, &e.detail)).collect();
            self.metrics.events(&events);
            let what = plan.events.iter().map(|e| e.kind).collect::<Vec<_>>();
            info!(events = ?what, mails = plan.outbox.len(), "timer fired");
            Ok(true)
        }
        .instrument(span)
        .await
    }
}

impl Worker for TimerWorker {
    const TASK: &'static str = TASK;
    async fn step(&mut self) -> Result<Step, StoreError> {
        self.try_fire_once().await
    }
    async fn next_due(&mut self) -> Result<Option<crate::clock::Millis>, StoreError> {
        self.store.next_timer_at().await
    }
    fn now(&self) -> crate::clock::Millis {
        self.clock.now()
    }
    fn health(&self) -> Arc<crate::ops::health::Health> {
        self.health.clone()
    }
    fn wake(&self) -> Arc<Notify> {
        self.wake.clone()
    }
}

impl TimerWorker {
    /// Runs until `cancel`: fires what is due, then sleeps until the next due timer, a wake-up,
    /// or the fallback interval.
    pub async fn run(self, cancel: CancellationToken) {
        workers::run(self, cancel).await
    }
}
