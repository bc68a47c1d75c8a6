//! A ticket as the decisions see it: its status and state (loaded by the store, built by hand in
//! tests), and survey scores.

use crate::domain::{EmailAddress, MessageId, Millis, TicketClass, TicketRef, TimerKind};
use serde::Serialize;

/// A ticket's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Open,
    /// Waiting for the customer.
    Pending,
    Solved,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Open => "open",
            Status::Pending => "pending",
            Status::Solved => "solved",
        }
    }
    pub fn parse(s: &str) -> Option<Status> {
        match s {
            "open" => Some(Status::Open),
            "pending" => Some(Status::Pending),
            "solved" => Some(Status::Solved),
            _ => None,
        }
    }
}

/// A ticket as the pure stages see it (loaded by the store; built by hand in tests).
#[derive(Debug, Clone)]
pub struct TicketState {
    pub ticket: TicketRef,
    pub requester: EmailAddress,
    pub requester_name: Option<String>,
    pub subject: String,
    pub language: crate::domain::Language,
    pub status: Status,
    pub participants: Vec<EmailAddress>,
    pub class: TicketClass,
    pub owner: Option<EmailAddress>,
    pub complex: bool,
    pub escalated: bool,
    /// The survey we sent and that is not answered yet.
    pub survey_message_id: Option<MessageId>,
    /// The automatic follow-up mail was sent and its answer is awaited.
    pub followup_pending: bool,
    pub first_reply_at: Option<Millis>,
    pub solved_at: Option<Millis>,
    /// The customer's newest text (reply text), for notices to agents.
    pub summary: String,
    /// The promises still running on it.
    pub timers: Vec<RunningTimer>,
    /// True when the mail being processed created it.
    pub created: bool,
}

/// A running timer, as far as the pure stages need it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunningTimer {
    pub kind: TimerKind,
    pub started_at: Millis,
    pub due_at: Millis,
}

impl TicketState {
    /// A fresh, open ticket (what a new ticket looks like before anything happens to it).
    pub fn new(
        ticket: TicketRef,
        requester: EmailAddress,
        requester_name: Option<String>,
        subject: String,
        classification: &crate::domain::Classification,
    ) -> TicketState {
        TicketState {
            ticket,
            requester,
            requester_name,
            subject,
            language: classification.language,
            status: Status::Open,
            participants: Vec::new(),
            class: TicketClass::of(classification),
            owner: None,
            complex: false,
            escalated: false,
            survey_message_id: None,
            followup_pending: false,
            first_reply_at: None,
            solved_at: None,
            summary: String::new(),
            timers: Vec::new(),
            created: true,
        }
    }

    /// How the customer is addressed: their display name, else their address's local part.
    pub fn customer_name(&self) -> String {
        self.requester_name
            .clone()
            .unwrap_or_else(|| self.requester.local_part().to_string())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Scores {
    pub speed: Option<u8>,
    pub solving: Option<u8>,
    pub attitude: Option<u8>,
    pub overall: u8,
}

impl Scores {
    /// Unsatisfied: the overall score at or below `threshold`, or any score of 1.
    pub fn unsatisfied(&self, threshold: u8) -> bool {
        self.overall <= threshold || [self.speed, self.solving, self.attitude].contains(&Some(1))
    }
}
