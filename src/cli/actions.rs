//! Agents' actions on a ticket from the command line — a reply sent, solved, complex, follow-up
//! done, reassigned, classification corrected: load the ticket, run the pure `lifecycle`
//! transition, commit the plan through the store's writer in one transaction. Agents' mail
//! commands run the same transitions (`agents::mail`).

use crate::app::context::Desk;
use crate::clock::Millis;
use crate::domain::{Correction, EventKind, FieldChange};
use crate::domain::{EmailAddress, TicketRef};
use crate::store::{Record, Store, StoreError};
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
    /// Renew the ticket's agents' address (revokes older cards).
    RotateAgentAddress {
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
    pub events: Vec<EventKind>,
    pub corrected: Vec<FieldChange>,
    pub mails: usize,
}

/// Performs `action` on ticket `t` at `now`, in one transaction.
pub async fn perform(
    store: &Store,
    desk: &Desk,
    t: TicketRef,
    action: &Action,
    now: Millis,
) -> Result<Done, ActionError> {
    let mut tx = store.begin().await?;
    let ticket = store
        .ticket_state(&mut tx, t)
        .await?
        .ok_or(ActionError::NoTicket(t))?;
    let mut plan = match action {
        Action::ReplySent { by } => lifecycle::agent_replied(desk, &ticket, by, true, now),
        Action::Solve { by } => lifecycle::solve(desk, &ticket, by, now),
        Action::Complex { on, by } => lifecycle::set_complex(desk, &ticket, *on, by, now),
        Action::Followup { result, by } => lifecycle::record_followup(&ticket, result, by),
        Action::Assign { to, by } => lifecycle::assign(&ticket, to, by),
        Action::Correct { correction, by } => lifecycle::correct(desk, &ticket, correction, by),
        Action::RotateAgentAddress { by } => lifecycle::rotate_agent_address(&ticket, by),
    };
    if desk.queue.is_some() {
        crate::agents::shared_mailbox::follow_state(&ticket, &mut plan);
    }
    store.commit(&mut tx, &[Record::plan(&plan)], now).await?;
    tx.commit().await.map_err(StoreError::from)?;
    Ok(Done {
        events: plan.events.iter().map(|e| e.kind).collect(),
        corrected: plan
            .correction
            .as_ref()
            .map(|(c, _)| c.clone())
            .unwrap_or_default(),
        mails: plan.outbox.len(),
    })
}
