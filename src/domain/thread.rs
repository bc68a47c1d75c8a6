//! What threading reads from a mail (hints), what the store answers about them (facts), and what
//! it decides: a follow-up on a ticket, or a new one.

use crate::domain::{EmailAddress, MessageId, Millis, TicketRef};
use serde::Serialize;

/// What a mail itself says about its ticket, before any lookup.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct ThreadHints {
    /// A ticket named by a validly signed reply address we received it at.
    pub token: Option<TicketRef>,
    /// A ticket and agent-token epoch named by a validly signed agents' address (a card's or a
    /// notice's Reply-To).
    pub agent_token: Option<(TicketRef, u32)>,
    /// A signed-looking address whose MAC did not verify (forged or from a retired secret).
    pub bad_token: bool,
    /// Message-IDs it replies to, nearest first (In-Reply-To, then References newest first).
    pub references: Vec<MessageId>,
    /// The ticket tag in the subject: the first of `tags`.
    pub tag: Option<TicketRef>,
    /// Every ticket tag candidate in the subject, the exact form we write (`[#T-000123]`) first,
    /// then lenient forms (`【T-123】`, `(#T000123)`) in order of appearance.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<TicketRef>,
    /// Tickets named in the body (typically our own mail quoted by a phone app that dropped
    /// In-Reply-To, References and the subject tag): our exact tag form, or a validly signed
    /// reply address. Read only when the headers lead nowhere.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub quoted_tags: Vec<TicketRef>,
    /// A delivery report's bounced Message-ID (the store checks it is one of ours).
    pub bounced: Option<MessageId>,
}

/// What the store knows about a ticket that a hint pointed to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketFacts {
    pub ticket: TicketRef,
    pub requester: EmailAddress,
    pub participants: Vec<EmailAddress>,
    pub solved_at: Option<Millis>,
}

impl TicketFacts {
    pub fn knows(&self, who: &EmailAddress) -> bool {
        &self.requester == who || self.participants.contains(who)
    }
}

/// The store's answers to the hints.
#[derive(Debug, Clone, Default)]
pub struct ThreadFacts {
    pub by_token: Option<TicketFacts>,
    /// The ticket of the first referenced Message-ID found in the store.
    pub by_reference: Option<TicketFacts>,
    pub by_tag: Option<TicketFacts>,
    /// The ticket a tag or signed address in the body names (see [`ThreadHints::quoted_tags`]).
    pub by_quoted_tag: Option<TicketFacts>,
    /// The ticket of the mail *we sent* that a delivery report says bounced.
    pub by_bounce: Option<TicketFacts>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ThreadVia {
    Bounce,
    Token,
    Reference,
    Tag,
    QuotedTag,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum ThreadDecision {
    /// A follow-up on an existing ticket. `reopen`: it was solved and is reopened by this mail.
    FollowUp {
        ticket: TicketRef,
        via: ThreadVia,
        reopen: bool,
    },
    /// A new ticket; `linked_to` names a ticket it refers to but may not join, and why.
    New {
        linked_to: Option<TicketRef>,
        why: Option<String>,
    },
}
