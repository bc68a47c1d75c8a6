//! The monthly report worker: on `[report] day` at `hour` (the business calendar's zone) it
//! queues the previous month's report to the supervisors through the outbox, once. The month's
//! row in `monthly_reports` is claimed in the same transaction as the outbox row, so the report
//! is queued once across restarts and several daemons; a daemon that was down on the day
//! queues it when it comes back, up to [`LATE_MS`] late (a daemon installed mid-month does not
//! mail an empty month weeks later).

use crate::app::context::{Desk, SharedDesk};
use crate::clock::{Millis, SharedClock};
use crate::config::ReportSettings;
use crate::domain::{EmailAddress, EventKind, MessageId, Plan};
use crate::ops::health::Health;
use crate::report::mail::{draft, ReportLetter};
use crate::report::{charts, Month};
use crate::store::{Record, Store, StoreError};
use crate::workers::{self, Step, Worker};
use chrono_tz::Tz;
use std::sync::Arc;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

/// How late a missed mailing is still made.
pub const LATE_MS: Millis = 7 * 86_400_000;
/// Wait after a failed rendering before trying again.
const RETRY_MS: Millis = 3_600_000;

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot build the report mail: {0}")]
    Compose(#[from] crate::outbound::compose::ComposeError),
    #[error("no recipients: set [report] to, or give an agent role = \"supervisor\"")]
    NoRecipients,
}

/// Renders `month`'s report and queues it to `to` through the outbox, in one transaction; with
/// `claim`, only if no report of that month was queued before (returns `None` then). Returns
/// the queued mail's Message-ID.
#[allow(clippy::too_many_arguments)]
pub async fn queue_report(
    store: &Store,
    desk: &Desk,
    settings: &ReportSettings,
    to: &[EmailAddress],
    tz: Tz,
    month: Month,
    now: Millis,
    claim: bool,
) -> Result<Option<MessageId>, ReportError> {
    if to.is_empty() {
        return Err(ReportError::NoRecipients);
    }
    let report = crate::report::monthly(store, month, tz, &settings.targets, now).await?;
    let _ = charts::load_font(settings.font.as_deref());
    let (mail, missing) = draft(
        &report,
        &ReportLetter {
            support_name: &desk.support_name,
            from: &desk.support_address,
            to,
            envelope_from: &desk.outbox.envelope_from,
            message_id_domain: &desk.message_id_domain,
            language: desk.agent_language,
            now,
            give_up_at: now + desk.outbox.give_up_after_ms,
        },
    )?;
    if let Some(e) = missing {
        warn!(month = %month, error = %e, "the monthly report goes without charts");
    }
    let id = mail.message_id.clone();
    let recipients = to.iter().map(|a| a.as_str()).collect::<Vec<_>>().join(", ");
    let mut tx = store.begin().await?;
    if claim
        && !store
            .claim_report_month(&mut tx, &month.to_string(), id.as_str(), &recipients, now)
            .await?
    {
        tx.rollback().await.map_err(StoreError::from)?;
        return Ok(None);
    }
    let mut plan = Plan::default();
    plan.event(
        EventKind::ReportQueued,
        serde_json::json!({"month": month.to_string(), "message_id": id.as_str(), "recipients": recipients, "scheduled": claim}),
    );
    plan.outbox.push(mail);
    store.commit(&mut tx, &[Record::plan(&plan)], now).await?;
    tx.commit().await.map_err(StoreError::from)?;
    Ok(Some(id))
}

pub struct ReportWorker {
    pub store: Store,
    pub desk: Arc<SharedDesk>,
    pub clock: SharedClock,
    pub settings: ReportSettings,
    pub recipients: Vec<EmailAddress>,
    pub tz: Tz,
    /// Never notified (the worker sleeps until the report is due), kept for the worker loop.
    pub wake: Arc<Notify>,
    pub outbox_wake: Arc<Notify>,
    pub health: Arc<Health>,
    /// After a failure: not before this.
    pub retry_at: Millis,
}

impl ReportWorker {
    /// When the report of the month before `now`'s month is due.
    fn due(&self, now: Millis) -> (Month, Millis) {
        let current = Month::containing(now, self.tz);
        (
            current.previous(),
            current.at(self.settings.day, self.settings.hour, self.tz),
        )
    }

    /// Queues the report if it is due and not yet queued: true when this call queued it.
    pub async fn run_once(&mut self) -> Result<bool, StoreError> {
        let now = self.clock.now();
        let (month, due) = self.due(now);
        if now < due || now > due + LATE_MS || now < self.retry_at {
            return Ok(false);
        }
        if self
            .store
            .reports_mailed(3)
            .await?
            .iter()
            .any(|(m, ..)| *m == month.to_string())
        {
            return Ok(false);
        }
        let desk = self.desk.get();
        match queue_report(
            &self.store,
            &desk,
            &self.settings,
            &self.recipients,
            self.tz,
            month,
            now,
            true,
        )
        .await
        {
            Ok(Some(id)) => {
                info!(month = %month, message_id = %id, recipients = self.recipients.len(), "monthly report queued");
                self.outbox_wake.notify_one();
                Ok(true)
            }
            Ok(None) => Ok(false),
            Err(ReportError::Store(e)) => Err(e),
            Err(e) => {
                warn!(month = %month, error = %e, "the monthly report cannot be mailed; retrying in an hour");
                self.health.storage_failed(TASK, &e.to_string());
                self.retry_at = now + RETRY_MS;
                Ok(false)
            }
        }
    }

    pub async fn run(self, cancel: CancellationToken) {
        workers::run(self, cancel).await
    }
}

const TASK: &str = "report";

impl Worker for ReportWorker {
    const TASK: &'static str = TASK;
    async fn step(&mut self) -> Result<Step, StoreError> {
        Ok(if self.run_once().await? {
            Step::Worked(1)
        } else {
            Step::Idle
        })
    }
    async fn next_due(&mut self) -> Result<Option<Millis>, StoreError> {
        let now = self.clock.now();
        let (_, due) = self.due(now);
        let next = if now < due {
            due
        } else {
            Month::containing(now, self.tz).next().at(
                self.settings.day,
                self.settings.hour,
                self.tz,
            )
        };
        Ok(Some(next.min(now.max(self.retry_at) + RETRY_MS)))
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
