//! What a pure stage decides, for the store to commit in one transaction: the [`Plan`].
//!
//! Every stage that changes a ticket returns one — `apply` (an inbound mail), `sla::fire` (a timer
//! coming due), `lifecycle` (an agent's reply, a solution, a follow-up) — and `Store::apply_plan`
//! writes it all or nothing: ticket fields, timers, events, outgoing mail.

use crate::domain::{
    EmailAddress, EventKind, FieldChange, MailKind, MessageId, Millis, Scores, Status, TicketClass,
    TicketRef, TimerDraft, TimerEnd, TimerKind, TimerStep,
};
use serde::Serialize;

/// Changes to the ticket row. `None`/`false`: unchanged.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TicketUpdate {
    pub status: Option<Status>,
    pub owner: Option<EmailAddress>,
    pub complex: Option<bool>,
    /// Mark escalated (to the supervisors) now.
    pub escalate: bool,
    /// An agent's reply to the customer: counts; the first sets `first_reply_at`.
    pub agent_reply: bool,
    /// The acknowledgement went out (sets `acked_at` once).
    pub acked: bool,
    /// Solved now (sets `solved_at`).
    pub solved: bool,
    /// Reopened now (counts reopens; clears `solved_at`).
    pub reopened: bool,
    /// A survey was sent / answered.
    pub survey_sent: bool,
    pub survey_answered: bool,
    /// The automatic follow-up mail was sent.
    pub followup_sent: bool,
    /// The follow-up (回访) result.
    pub followup_result: Option<String>,
    /// Renew the ticket's agents' address: cards and notices sent before stop working.
    pub rotate_agent_token: bool,
}

impl TicketUpdate {
    pub fn is_empty(&self) -> bool {
        self == &TicketUpdate::default()
    }

    /// Combines a later update into this one: later values win, flags add up.
    fn merge(&mut self, o: TicketUpdate) {
        self.status = o.status.or(self.status);
        self.owner = o.owner.or(self.owner.take());
        self.complex = o.complex.or(self.complex);
        self.escalate |= o.escalate;
        self.agent_reply |= o.agent_reply;
        self.acked |= o.acked;
        self.solved |= o.solved;
        self.reopened |= o.reopened;
        self.survey_sent |= o.survey_sent;
        self.survey_answered |= o.survey_answered;
        self.followup_sent |= o.followup_sent;
        self.followup_result = o.followup_result.or(self.followup_result.take());
        self.rotate_agent_token |= o.rotate_agent_token;
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct EventDraft {
    /// `None`: an ops event not tied to a ticket.
    pub ticket: Option<TicketRef>,
    pub kind: EventKind,
    pub detail: serde_json::Value,
}

/// A mail to queue, finished to the byte.
#[derive(Debug, Clone)]
pub struct OutboxDraft {
    /// `None`: mail about no ticket (the monthly report).
    pub ticket: Option<TicketRef>,
    pub kind: MailKind,
    pub message_id: MessageId,
    pub recipients: Vec<EmailAddress>,
    pub subject: String,
    pub text: String,
    pub in_reply_to: Option<MessageId>,
    pub raw: Vec<u8>,
    /// The envelope sender (RFC 5321 MAIL FROM).
    pub envelope_from: EmailAddress,
    /// When sending is given up if the mail cannot be delivered.
    pub give_up_at: Millis,
}

/// Everything one decision changes.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    /// The ticket it is about (none for mail nobody can be answered about).
    pub ticket: Option<TicketRef>,
    pub update: TicketUpdate,
    /// The ticket's new class: a follow-up raised urgency or severity, or an agent corrected it.
    pub class: Option<TicketClass>,
    pub new_participants: Vec<EmailAddress>,
    pub events: Vec<EventDraft>,
    pub outbox: Vec<OutboxDraft>,
    /// One of our outgoing mails that a delivery report says could not be delivered.
    pub bounced: Option<MessageId>,
    /// Timers to start; one of a kind already running on the ticket is re-timed instead.
    pub start_timers: Vec<TimerDraft>,
    pub end_timers: Vec<(TimerKind, TimerEnd)>,
    /// The timer being fired, when this plan is a firing.
    pub timer_step: Option<TimerStep>,
    /// Survey scores to record.
    pub survey: Option<Scores>,
    /// An agent's correction of the classification: the fields it changed (one row each in
    /// `classification_corrections`) and who made it.
    pub correction: Option<(Vec<FieldChange>, String)>,
    /// Work on the shared mailbox, done after the commit (cards, folder moves, Sent copies).
    pub imap_jobs: Vec<ImapJob>,
}

/// How outgoing mail is queued: its envelope sender (RFC 5321 MAIL FROM), and how long a mail
/// that cannot be sent is retried before it is given up.
#[derive(Debug, Clone)]
pub struct OutboxPolicy {
    pub envelope_from: EmailAddress,
    pub give_up_after_ms: Millis,
    /// The largest mail sent, in bytes (attachments included).
    pub max_message_bytes: usize,
}

/// A folder of the shared mailbox, by role (names come from `[queue]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Folder {
    Open,
    Waiting,
    Escalated,
    Solved,
    Sent,
}

impl Folder {
    pub const STATES: [Folder; 4] = [
        Folder::Open,
        Folder::Waiting,
        Folder::Escalated,
        Folder::Solved,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            Folder::Open => "open",
            Folder::Waiting => "waiting",
            Folder::Escalated => "escalated",
            Folder::Solved => "solved",
            Folder::Sent => "sent",
        }
    }
    pub fn parse(s: &str) -> Option<Folder> {
        [
            Folder::Open,
            Folder::Waiting,
            Folder::Escalated,
            Folder::Solved,
            Folder::Sent,
        ]
        .into_iter()
        .find(|f| f.as_str() == s)
    }
    /// The queue folder of a ticket in this state.
    pub fn of(status: Status, escalated: bool) -> Folder {
        match status {
            Status::Solved => Folder::Solved,
            _ if escalated => Folder::Escalated,
            Status::Pending => Folder::Waiting,
            Status::Open => Folder::Open,
        }
    }
}

/// Work on the shared mailbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImapJob {
    /// Put a message (a ticket card, a copy of our reply) into a folder, once.
    Append {
        folder: Folder,
        message_id: MessageId,
        raw: Vec<u8>,
    },
    /// Move every card of the ticket into this state folder.
    Move { to: Folder },
    /// Delete, in every folder the worker reaches (the shared mailbox's state folders and Sent,
    /// and its account's inbox and archive folder), the messages with this Message-ID, or with
    /// none: every card of the ticket (`X-Supportd-Ticket`). A customer's erasure.
    Expunge { message_id: Option<MessageId> },
}

impl ImapJob {
    /// The job as its `imap_jobs` row stores it: kind, folder, message id, raw message.
    pub fn columns(&self) -> (&'static str, Folder, Option<&str>, Option<&[u8]>) {
        match self {
            ImapJob::Append {
                folder,
                message_id,
                raw,
            } => ("append", *folder, Some(message_id.as_str()), Some(raw)),
            ImapJob::Move { to } => ("move", *to, None, None),
            ImapJob::Expunge { message_id } => (
                "expunge",
                Folder::Open,
                message_id.as_ref().map(|m| m.as_str()),
                None,
            ),
        }
    }
}

impl Plan {
    pub fn for_ticket(t: TicketRef) -> Plan {
        Plan {
            ticket: Some(t),
            ..Default::default()
        }
    }

    /// A plan that only records one event (on `ticket`, or an ops event without one).
    pub fn with_event(
        ticket: Option<TicketRef>,
        kind: EventKind,
        detail: serde_json::Value,
    ) -> Plan {
        let mut plan = Plan {
            ticket,
            ..Default::default()
        };
        plan.event(kind, detail);
        plan
    }

    /// The survey this plan sends (its Message-ID), when it sends one.
    pub fn survey_sent(&self) -> Option<&MessageId> {
        if !self.update.survey_sent {
            return None;
        }
        self.outbox
            .iter()
            .find(|o| o.kind == MailKind::Survey)
            .map(|o| &o.message_id)
    }

    pub fn event(&mut self, kind: EventKind, detail: serde_json::Value) {
        self.events.push(EventDraft {
            ticket: self.ticket,
            kind,
            detail,
        });
    }

    pub fn end(&mut self, kind: TimerKind, how: TimerEnd) {
        // A later decision to end a promise overrides an earlier start of it in the same plan.
        self.start_timers.retain(|d| d.kind != kind);
        if !self.end_timers.contains(&(kind, how)) {
            self.end_timers.push((kind, how));
        }
    }

    /// Adds a later decision about the same ticket to this plan (an agent's mail: the reply,
    /// then its commands). Later values win; a later end of a promise cancels an earlier start.
    pub fn merge(&mut self, o: Plan) {
        if self.ticket.is_none() {
            self.ticket = o.ticket;
        }
        self.update.merge(o.update);
        if o.class.is_some() {
            self.class = o.class;
        }
        for p in o.new_participants {
            if !self.new_participants.contains(&p) {
                self.new_participants.push(p);
            }
        }
        self.events.extend(o.events);
        self.outbox.extend(o.outbox);
        self.bounced = o.bounced.or(self.bounced.take());
        for (kind, how) in o.end_timers {
            self.end(kind, how);
        }
        self.start_timers.extend(o.start_timers);
        self.timer_step = o.timer_step.or(self.timer_step.take());
        self.survey = o.survey.or(self.survey);
        self.correction = o.correction.or(self.correction.take());
        self.imap_jobs.extend(o.imap_jobs);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draft(kind: TimerKind) -> TimerDraft {
        TimerDraft {
            kind,
            started_at: 0,
            span_ms: 1,
            due_at: 1,
            next_at: 1,
        }
    }

    #[test]
    fn a_later_end_cancels_an_earlier_start_and_updates_combine() {
        let mut reply = Plan::for_ticket(TicketRef(1));
        reply.update.agent_reply = true;
        reply.end(TimerKind::Progress, TimerEnd::Met);
        reply.start_timers.push(draft(TimerKind::Progress));
        let mut solve = Plan::for_ticket(TicketRef(1));
        solve.update.status = Some(Status::Solved);
        solve.end(TimerKind::Progress, TimerEnd::Met);
        solve.start_timers.push(draft(TimerKind::Followup));
        reply.merge(solve);
        assert!(reply.update.agent_reply);
        assert_eq!(reply.update.status, Some(Status::Solved));
        assert_eq!(reply.end_timers, [(TimerKind::Progress, TimerEnd::Met)]);
        let started: Vec<_> = reply.start_timers.iter().map(|d| d.kind).collect();
        assert_eq!(
            started,
            [TimerKind::Followup],
            "the progress restart was cancelled"
        );
    }

    #[test]
    fn a_ticket_s_folder_follows_its_state() {
        assert_eq!(Folder::of(Status::Open, false), Folder::Open);
        assert_eq!(Folder::of(Status::Pending, false), Folder::Waiting);
        assert_eq!(Folder::of(Status::Open, true), Folder::Escalated);
        assert_eq!(Folder::of(Status::Pending, true), Folder::Escalated);
        assert_eq!(Folder::of(Status::Solved, true), Folder::Solved);
    }
}
