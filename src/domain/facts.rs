//! What the database knows that deciding a batch of inbound mail depends on: which mails are
//! stored already, which tickets the mails point to (in full), and the acknowledgements sent to
//! each sender lately. `store::facts` loads it once per batch; intake keeps it up to date as it
//! decides each mail, so the next mail of the batch sees everything before it, exactly as if it
//! had been read back from the database.

use crate::domain::{EmailAddress, MessageId, TicketRef, TicketState};
use std::collections::{HashMap, HashSet};

#[derive(Debug, Clone, Default)]
pub struct IntakeFacts {
    /// Inbound Message-IDs stored already, with the ticket each is filed on.
    pub inbound: HashMap<MessageId, Option<TicketRef>>,
    /// Outgoing Message-IDs: mail supportd sent (or found in the Sent folder), with its ticket.
    pub outbound: HashMap<MessageId, Option<TicketRef>>,
    /// Of those, our automatic mails (acknowledgements, surveys, follow-ups, notices): their kind
    /// and when they were sent (if yet).
    pub automatic: HashMap<MessageId, (crate::domain::MailKind, Option<crate::domain::Millis>)>,
    /// Message-IDs gateways recorded for stored mail before rewriting them (see
    /// [`crate::domain::InboundMail::original_ids`]), with the ticket of that mail.
    pub aliases: HashMap<MessageId, Option<TicketRef>>,
    /// UIDs of the batch's mailbox folder stored already (under its UIDVALIDITY).
    pub uids: HashSet<u32>,
    /// The tickets the batch's mails point to, by signed address, reference, tag or bounce.
    pub tickets: HashMap<TicketRef, TicketState>,
    /// Acknowledgements queued to each sender in the last hour (the loop brake).
    pub acks_last_hour: HashMap<EmailAddress, u32>,
}

impl IntakeFacts {
    /// The ticket of a stored message (inbound or ours).
    pub fn ticket_of(&self, id: &MessageId) -> Option<TicketRef> {
        self.inbound
            .get(id)
            .copied()
            .flatten()
            .or_else(|| self.outbound.get(id).copied().flatten())
            .or_else(|| self.aliases.get(id).copied().flatten())
    }
}

/// What to look up for a batch.
#[derive(Debug, Clone, Default)]
pub struct FactsWanted {
    /// The mails' own Message-IDs, their references and bounced Message-IDs.
    pub message_ids: Vec<MessageId>,
    /// Tickets named by signed addresses and subject tags.
    pub tickets: Vec<TicketRef>,
    pub uids: Vec<u32>,
    pub senders: Vec<EmailAddress>,
}
