//! The running daemon: [`Application::build`] does all set-up (templates, database, migrations,
//! SMTP transport), [`Application::run_until_stopped`] runs one loop per mailbox and the outbox
//! worker until the cancellation token fires, then lets work in hand finish within the shutdown
//! timeout. Tests build the same application with their own settings and clock.

use crate::clock::SharedClock;
use crate::config::Settings;
use crate::ingest::{MailboxLoop, Pipeline};
use crate::scheduler::Scheduler;
use crate::send::{self, OutboxWorker};
use crate::store::{Store, StoreError};
use crate::templates::{TemplateError, Templates};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error(transparent)]
    Templates(#[from] TemplateError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Send(#[from] send::SendError),
}

pub struct Application {
    pub settings: Settings,
    pub store: Store,
    pub pipeline: Arc<Pipeline>,
    pub clock: SharedClock,
    pub outbox_wake: Arc<Notify>,
    pub timer_wake: Arc<Notify>,
    mailer: send::Mailer,
}

impl Application {
    pub async fn build(settings: Settings, clock: SharedClock) -> Result<Application, AppError> {
        let templates = Templates::load(&settings.service.templates_dir)?;
        let store =
            Store::connect(&settings.database_url(), settings.database.max_connections).await?;
        store.migrate().await?;
        let mailer = send::mailer(&settings.smtp)?;
        let pipeline = Arc::new(Pipeline::new(&settings, templates));
        Ok(Application {
            settings,
            store,
            pipeline,
            clock,
            outbox_wake: Arc::new(Notify::new()),
            timer_wake: Arc::new(Notify::new()),
            mailer,
        })
    }

    /// Reloads the templates; on any problem keeps the old ones and says why.
    pub fn reload_templates(&self) -> Result<(), TemplateError> {
        let t = Templates::load(&self.settings.service.templates_dir)?;
        self.pipeline.set_templates(t);
        Ok(())
    }

    pub fn outbox_worker(&self) -> OutboxWorker {
        OutboxWorker {
            store: self.store.clone(),
            mailer: self.mailer.clone(),
            clock: self.clock.clone(),
            wake: self.outbox_wake.clone(),
            retry_base_ms: self.settings.outbox.retry_base_secs as i64 * 1000,
            retry_max_ms: self.settings.outbox.retry_max_secs as i64 * 1000,
            batch: self.settings.outbox.batch_size,
            policy: self.pipeline.outbox_policy.clone(),
        }
    }

    pub fn scheduler(&self) -> Scheduler {
        Scheduler {
            store: self.store.clone(),
            pipeline: self.pipeline.clone(),
            clock: self.clock.clone(),
            wake: self.timer_wake.clone(),
            outbox_wake: self.outbox_wake.clone(),
        }
    }

    /// Runs until `cancel` fires; then waits up to the shutdown timeout for work in hand.
    pub async fn run_until_stopped(self, cancel: CancellationToken) {
        let mut tasks = tokio::task::JoinSet::new();
        tasks.spawn(self.outbox_worker().run(cancel.clone()));
        tasks.spawn(self.scheduler().run(cancel.clone()));
        for (name, mb) in &self.settings.mailboxes {
            let l = MailboxLoop {
                name: name.clone(),
                settings: mb.clone(),
                store: self.store.clone(),
                pipeline: self.pipeline.clone(),
                clock: self.clock.clone(),
                outbox_wake: self.outbox_wake.clone(),
                timer_wake: self.timer_wake.clone(),
            };
            tasks.spawn(l.run(cancel.clone()));
        }
        info!(
            mailboxes = self.settings.mailboxes.len(),
            "supportd running"
        );
        cancel.cancelled().await;
        let limit = Duration::from_secs(self.settings.service.shutdown_timeout_secs);
        info!(timeout = ?limit, "stopping: finishing work in hand");
        let drained =
            tokio::time::timeout(limit, async { while tasks.join_next().await.is_some() {} }).await;
        if drained.is_err() {
            warn!(left = tasks.len(), "shutdown timeout: abandoning unfinished tasks (their work was not committed and will be redone)");
            tasks.abort_all();
        }
        self.store.close().await;
        info!("supportd stopped");
    }
}
