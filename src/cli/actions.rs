//! Agents' actions on a ticket — a reply sent, solved, complex, follow-up done, reassigned,
//! classification corrected — wired to the store: load the ticket, run the pure `lifecycle`
//! transition, commit the plan in one transaction. The CLI (`supportd ticket …`) uses it today;
//! agents' mail commands use the same path.

use crate::clock::Millis;
use crate::domain::Plan;
use crate::domain::{Correction, FieldChange};
use crate::domain::{EmailAddress, TicketRef};
use crate::inbound::ingest::Pipeline;
use crate::store::{Store, StoreError};
use crate::ticket::lifecycle;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// An agent's reply reached the customer (stops the first-solution clock).
    ReplySent {
        by: EmailAddress,
    },
    Solve {
        by: String,
    },
    Complex {
        on: bool,
        by: String,
    },
    Followup {
        result: String,
        by: String,
    },
    Assign {
        to: EmailAddress,
        by: String,
    },
    Correct {
        correction: Correction,
        by: String,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum ActionError {
    #[error("no ticket {0}")]
    NoTicket(TicketRef),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What an action did: its events, the classification fields it corrected, the mails it queued.
#[derive(Debug, Clone, Default)]
pub struct Done {
    pub events: Vec<&'static str>,
    pub corrected: Vec<FieldChange>,
    pub mails: usize,
}

/// Performs `action` on ticket `t` at `now`, in one transaction.
pub async fn perform(
    store: &Store,
    pipeline: &Pipeline,
    t: TicketRef,
    action: &Action,
    now: Millis,
) -> Result<Done, ActionError> {
    let mut tx = store.begin().await?;
    let ticket = store
        .ticket_state(&mut tx, t)
        .await?
        .ok_or(ActionError::NoTicket(t))?;
    let live = pipeline.live();
    let ctx = pipeline.ctx(&live);
    let mut corrected = Vec::new();
    let plan = match action {
        Action::ReplySent { by } => lifecycle::agent_replied(&ctx, &ticket, by, true, now),
        Action::Solve { by } => lifecycle::solve(&ctx, &ticket, by, now),
        Action::Complex { on, by } => lifecycle::set_complex(&ctx, &ticket, *on, by, now),
        Action::Followup { result, by } => lifecycle::record_followup(&ticket, result, by),
        Action::Assign { to, by } => lifecycle::assign(&ticket, to, by),
        Action::Correct { correction, by } => {
            // The store records the correction (rows and event); running promises then tighten
            // to the corrected class's times.
            corrected = store
                .correct_classification(&mut tx, t, correction, by, now)
                .await?
                .unwrap_or_default();
            let mut plan = Plan::for_ticket(t);
            if let Some(after) = store.ticket_state(&mut tx, t).await? {
                for running in &after.timers {
                    let d = ctx
                        .sla
                        .draft(running.kind, &after.class, running.started_at);
                    if d.due_at < running.due_at {
                        plan.start_timers.push(d);
                    }
                }
            }
            plan
        }
    };
    let mut plan = plan;
    if ctx.queue.is_some() {
        crate::agents::shared_mailbox::follow_state(&ticket, &mut plan);
    }
    store
        .apply_plan(&mut tx, &plan, &pipeline.outbox_policy, now)
        .await?;
    tx.commit().await.map_err(StoreError::from)?;
    Ok(Done {
        events: plan.events.iter().map(|e| e.kind).collect(),
        corrected,
        mails: plan.outbox.len(),
    })
}
