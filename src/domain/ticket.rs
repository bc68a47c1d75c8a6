//! A ticket as the decisions see it: its status and state (loaded by the store, built by hand in
//! tests), and survey scores.

use crate::domain::{EmailAddress, MessageId, Millis, Plan, TicketClass, TicketRef, TimerKind};
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
    /// When the automatic follow-up mail was sent, and when the follow-up (回访) was recorded.
    pub followup_sent_at: Option<Millis>,
    pub followup_at: Option<Millis>,
    pub first_reply_at: Option<Millis>,
    pub solved_at: Option<Millis>,
    /// The customer's newest text (reply text), for notices to agents.
    pub summary: String,
    /// The ticket's first inbound message, and the customer's newest one (an agent's reply
    /// threads under it).
    pub first_message: Option<MessageId>,
    pub last_customer_message: Option<MessageId>,
    /// The generation of the ticket's agents' address (cards and notices carry it; rotating it
    /// revokes older cards). `None`: a ticket from before agents' addresses existed, whose old
    /// cards carry the customer's reply address.
    pub agent_epoch: Option<u32>,
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
            participants: vec![requester.clone()],
            requester,
            requester_name,
            subject,
            language: classification.language,
            status: Status::Open,
            class: TicketClass::of(classification),
            owner: None,
            complex: false,
            escalated: false,
            survey_message_id: None,
            followup_sent_at: None,
            followup_at: None,
            first_reply_at: None,
            solved_at: None,
            summary: String::new(),
            first_message: None,
            last_customer_message: None,
            agent_epoch: Some(0),
            timers: Vec::new(),
            created: true,
        }
    }

    /// The automatic follow-up mail was sent and its answer is awaited.
    pub fn followup_pending(&self) -> bool {
        self.followup_sent_at.is_some() && self.followup_at.is_none()
    }

    /// The ticket as it is once `plan` is committed at `now`: what the store would load back.
    /// Intake decides a batch's mails one after another on these states instead of reading the
    /// database between them; `store::writer` writes the same changes (the two are tested equal
    /// by the intake equivalence test). A mail's own message row is recorded with
    /// [`TicketState::received`].
    pub fn apply(&mut self, plan: &Plan, now: Millis) {
        debug_assert!(plan.ticket == Some(self.ticket));
        let u = &plan.update;
        if let Some(s) = u.status {
            self.status = s;
        }
        if u.solved {
            self.solved_at = Some(now);
        } else if u.reopened {
            self.solved_at = None;
        }
        if let Some(o) = &u.owner {
            self.owner = Some(o.clone());
        }
        if let Some(c) = u.complex {
            self.complex = c;
        }
        self.escalated |= u.escalate;
        if u.agent_reply && self.first_reply_at.is_none() {
            self.first_reply_at = Some(now);
        }
        match plan.survey_sent() {
            Some(id) => self.survey_message_id = Some(id.clone()),
            None if u.survey_answered => self.survey_message_id = None,
            None => {}
        }
        if u.followup_result.is_some() {
            self.followup_at = Some(now);
        }
        if u.followup_sent {
            self.followup_sent_at = Some(now);
        }
        if u.rotate_agent_token {
            self.agent_epoch = Some(self.agent_epoch.map_or(1, |e| e + 1));
        }
        if let Some(c) = plan.class {
            self.class = c;
        }
        for (kind, _) in &plan.end_timers {
            self.timers.retain(|t| t.kind != *kind);
        }
        for d in &plan.start_timers {
            self.timers.retain(|t| t.kind != d.kind);
            self.timers.push(RunningTimer {
                kind: d.kind,
                started_at: d.started_at,
                due_at: d.due_at,
            });
        }
        for p in &plan.new_participants {
            if !self.participants.contains(p) {
                self.participants.push(p.clone());
            }
        }
        self.order_participants();
        self.created = false;
    }

    /// The requester first, then everyone else by address: the order the store loads them in.
    pub fn order_participants(&mut self) {
        self.participants.sort_by(|a, b| {
            (a != &self.requester, a.as_str()).cmp(&(b != &self.requester, b.as_str()))
        });
    }

    /// Records an inbound mail filed on this ticket: the first message, and for a person's mail
    /// (verdict `human`) the newest customer message and its text.
    pub fn received(&mut self, message_id: &MessageId, human: bool, reply_text: &str) {
        if self.first_message.is_none() {
            self.first_message = Some(message_id.clone());
        }
        if human {
            self.last_customer_message = Some(message_id.clone());
            self.summary = reply_text.to_string();
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
