//! The vocabulary every part of supportd shares: identities, a ticket's class and state, the
//! promises, an inbound mail and its verdict, threading facts and decisions, the agents, and the
//! [`Plan`] every decision returns. It imports nothing of the engine: every other module may use
//! it, and it uses none of them.

pub mod agent;
pub mod class;
pub mod facts;
pub mod ids;
pub mod kinds;
pub mod mail;
pub mod plan;
pub mod promise;
pub mod report;
pub mod thread;
pub mod ticket;

pub use agent::{Agent, Role};
pub use class::{
    Category, Classification, Correction, FieldChange, Priority, Severity, TicketClass,
};
pub use facts::{FactsWanted, IntakeFacts};
pub use ids::{EmailAddress, Language, MessageId, TicketRef};
pub use kinds::{EventKind, MailKind};
pub use mail::{Attachment, InboundMail, ScreenVerdict, Verdict, LOOP_HEADER};
pub use plan::{EventDraft, Folder, ImapJob, OutboxDraft, OutboxPolicy, Plan, TicketUpdate};
pub use promise::{TimerDraft, TimerEnd, TimerKind, TimerStep};
pub use thread::{ThreadDecision, ThreadFacts, ThreadHints, ThreadVia, TicketFacts};
pub use ticket::{RunningTimer, Scores, Status, TicketState};

/// Milliseconds since the Unix epoch, UTC. Stored as a plain integer in every backend.
pub type Millis = i64;
