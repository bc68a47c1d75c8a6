//! Stage `apply`: what one inbound mail changes — ticket, participants, events, timers, outgoing
//! mail. Pure: it returns a [`Plan`], and `store` commits the plan in one transaction together with
//! the message and the IMAP checkpoint.
//!
//! Invariants: `apply` never fails (a mail is never lost because, say, a template broke: that
//! becomes an event); only `human` mail is acknowledged, once per new ticket, and never more than
//! `ack_limit_per_hour` times an hour to one address, so two auto-responders cannot loop even when
//! every header lies; mail we cannot attribute to a sender is stored with an ops event; a new
//! ticket starts its service-promise timers in the same transaction that creates it.

use crate::agents::shared_mailbox;
use crate::app::context::Desk;
use crate::clock::Millis;
use crate::domain::EmailAddress;
use crate::domain::EventKind;
use crate::domain::InboundMail;
use crate::domain::MailKind;
use crate::domain::{Category, Classification, Priority, Severity, TicketClass};
use crate::domain::{Plan, TicketState};
use crate::domain::{ScreenVerdict, Verdict};
use crate::domain::{ThreadDecision, ThreadVia};
use crate::outbound::compose::Letter;
use crate::ticket::lifecycle;
use crate::ticket::sla;
use serde_json::json;

/// What is known about the mail's sender beyond the mail.
#[derive(Debug, Clone, Copy, Default)]
pub struct SenderFacts {
    /// Acknowledgements queued to this sender in the last hour (the loop brake).
    pub acks_to_sender_last_hour: u32,
    /// The mail claims an agent's address without an agent's authority: it is kept as a
    /// follow-up, but nothing in it changes the ticket's class.
    pub claims_agent: bool,
}

/// What a new ticket is created with.
#[derive(Debug, Clone)]
pub struct NewTicket {
    pub requester: EmailAddress,
    pub requester_name: Option<String>,
    pub subject: String,
    pub classification: Classification,
}

/// Whether this mail opens a new ticket, and with what. Called before [`apply`], so the store can
/// create the ticket (and learn its number) in the same transaction.
pub fn new_ticket(
    mail: &InboundMail,
    verdict: &ScreenVerdict,
    decision: &ThreadDecision,
    classification: &Classification,
) -> Option<NewTicket> {
    if !verdict.is_human() || !matches!(decision, ThreadDecision::New { .. }) {
        return None;
    }
    let requester = mail.correspondent()?.clone();
    Some(NewTicket {
        requester,
        requester_name: mail.correspondent_name().map(str::to_string),
        subject: if mail.subject.is_empty() {
            "(no subject)".to_string()
        } else {
            mail.subject.clone()
        },
        classification: classification.clone(),
    })
}

/// Whether a follow-up's classification raises the ticket's: urgency switches on, or the mail is
/// a major complaint. Category otherwise stays what it was (agents correct it explicitly).
pub fn upgrade(t: &TicketClass, c: &Classification) -> Option<TicketClass> {
    let major = c.category == Category::Complaint && c.severity == Some(Severity::Major);
    let now_major = major && t.severity != Some(Severity::Major);
    let now_urgent = c.urgent && !t.urgent;
    if !now_major && !now_urgent {
        return None;
    }
    let (category, severity) = if now_major {
        (Category::Complaint, Some(Severity::Major))
    } else {
        (t.category, t.severity)
    };
    let urgent = t.urgent || c.urgent;
    let derived = Priority::derive(category, severity, urgent, t.vip);
    Some(TicketClass {
        category,
        severity,
        urgent,
        vip: t.vip,
        priority: derived.min(t.priority),
    })
}

/// Everything else the mail causes.
#[allow(clippy::too_many_arguments)]
pub fn apply(
    desk: &Desk,
    mail: &InboundMail,
    reply_text: &str,
    verdict: &ScreenVerdict,
    classification: &Classification,
    decision: &ThreadDecision,
    ticket: Option<&TicketState>,
    acks: SenderFacts,
    now: Millis,
) -> Plan {
    let mut plan = Plan {
        ticket: ticket.map(|t| t.ticket),
        ..Default::default()
    };
    let mut base = json!({
        "message_id": mail.message_id.as_str(),
        "verdict": verdict.verdict.as_str(),
        "reason": verdict.reason,
    });
    if let ThreadDecision::FollowUp { via, .. } = decision {
        // Which link threaded it: token, reference, tag, quoted_tag, bounce.
        base["via"] = json!(via);
    }
    if !mail.problems.is_empty() {
        plan.event(
            EventKind::MalformedMail,
            json!({"message_id": mail.message_id.as_str(), "problems": mail.problems}),
        );
    }
    let Some(t) = ticket else {
        // Nothing to file it on: a machine's mail, or mail without a usable sender.
        plan.event(
            if verdict.is_human() {
                EventKind::UnattributedMail
            } else {
                EventKind::ScreenedOut
            },
            base,
        );
        return plan;
    };

    if t.created {
        plan.event(
            EventKind::TicketCreated,
            json!({"message_id": mail.message_id.as_str(), "language": t.language.code()}),
        );
        plan.event(EventKind::Classified, classification_detail(classification));
        if mail.from.as_ref() != Some(&t.requester) {
            // Both are kept on the message row; the conversation is with the requester.
            plan.event(
                EventKind::RequesterFromReplyTo,
                json!({"from": mail.from.as_ref().map(|a| a.as_str()), "requester": t.requester.as_str()}),
            );
        }
        if let ThreadDecision::New {
            linked_to: Some(other),
            why,
        } = decision
        {
            plan.event(
                EventKind::Linked,
                json!({"ticket": other.to_string(), "why": why}),
            );
        }
        let mut seen = vec![t.requester.clone()];
        for r in mail.recipients() {
            if !is_ours(r, &desk.support_address) && !seen.contains(r) {
                seen.push(r.clone());
                plan.new_participants.push(r.clone());
            }
        }
        let acked = acknowledge(desk, mail, verdict, t, acks, now, &mut plan);
        plan.start_timers = sla::new_ticket_timers(&desk.sla, &t.class, now, acked);
        if desk.sla.complex_from_start(&t.class) {
            plan.update.complex = Some(true);
        }
        if let Some(q) = desk.queue {
            let shown = shown_text(mail, reply_text);
            shared_mailbox::add_card(desk, t, &shown, &mail.attachments, &mut plan, now);
            if q.notify_new {
                shared_mailbox::notify_new(desk, t, &shown, &mut plan, now);
            }
        }
        return plan;
    }

    if let ThreadDecision::FollowUp {
        via: ThreadVia::Bounce,
        ..
    } = decision
    {
        plan.bounced = mail.bounced_message_id.clone();
        plan.event(
            EventKind::OutboxFailed,
            json!({
                "message_id": mail.bounced_message_id.as_ref().map(|m| m.as_str()),
                "error": "bounced",
                "report": mail.message_id.as_str(),
            }),
        );
        return plan;
    }

    // A colleague (the organisation's domain, not an agent) who is not on the ticket: an
    // internal comment, never a participant, never mail to the customer, no reopen.
    if let Some(from) = mail.correspondent().filter(|f| {
        desk.thread_policy.is_colleague(f) && *f != &t.requester && !t.participants.contains(f)
    }) {
        plan.event(
            EventKind::ColleagueComment,
            json!({"from": from.as_str(), "message_id": mail.message_id.as_str(), "text": reply_text}),
        );
        return plan;
    }
    // A follow-up on an existing ticket (a read receipt: the customer opened our mail).
    plan.event(
        match verdict.verdict {
            Verdict::Human => EventKind::CustomerReplied,
            Verdict::ReadReceipt => EventKind::CustomerRead,
            _ => EventKind::AutomaticReplyReceived,
        },
        base,
    );
    if !verdict.is_human() {
        return plan;
    }
    if let Some(from) = mail.correspondent() {
        // Agents are not the customer's participants (they are never Cc'd on replies).
        let agent = desk.agents.iter().any(|a| &a.address == from);
        let on_ticket = from == &t.requester || t.participants.contains(from);
        if !on_ticket && !agent {
            plan.new_participants.push(from.clone());
        }
        // Whom someone on the ticket addresses on it (a colleague Cc'd midway) joins it, so
        // their reply-all is a follow-up, not a stranger's new ticket.
        if on_ticket {
            for p in desk.newcomers(t, mail) {
                plan.event(
                    EventKind::ParticipantAdded,
                    json!({"address": p.as_str(), "added_by": from.as_str(), "message_id": mail.message_id.as_str()}),
                );
                plan.new_participants.push(p);
            }
        }
    }
    let reopen_allowed = matches!(decision, ThreadDecision::FollowUp { reopen: true, .. });
    let mut replies_to = mail.in_reply_to.clone();
    replies_to.extend(mail.references.iter().cloned());
    lifecycle::customer_followed_up(
        desk,
        t,
        reply_text,
        &replies_to,
        reopen_allowed,
        now,
        &mut plan,
    );
    if let Some(up) = upgrade(&t.class, classification).filter(|_| !acks.claims_agent) {
        let mut detail = classification_detail(classification);
        detail["message_id"] = json!(mail.message_id.as_str());
        detail["from"] = json!(t.class);
        detail["to"] = json!(up);
        plan.event(EventKind::Reclassified, detail);
        // Running promises tighten to the new class's times (counted from their start).
        for running in &t.timers {
            let d = desk.sla.draft(running.kind, &up, running.started_at);
            if d.due_at < running.due_at {
                plan.start_timers.push(d);
            }
        }
        plan.class = Some(up);
    }
    if desk.queue.is_some() {
        shared_mailbox::add_card(
            desk,
            t,
            &shown_text(mail, reply_text),
            &mail.attachments,
            &mut plan,
            now,
        );
        shared_mailbox::follow_state(t, &mut plan);
    }
    plan
}

/// What agents are shown of a mail: its new text, or, when it has none, its attachments.
fn shown_text(mail: &InboundMail, reply_text: &str) -> String {
    if !reply_text.trim().is_empty() || mail.attachments.is_empty() {
        return reply_text.to_string();
    }
    let names: Vec<String> = mail
        .attachments
        .iter()
        .map(|a| {
            format!(
                "{} ({}, {} bytes)",
                a.name.as_deref().unwrap_or("unnamed"),
                a.content_type,
                a.size
            )
        })
        .collect();
    format!("(no text; attachments: {})", names.join(", "))
}

/// The `classified` event's detail: the result and the rules that fired (why).
pub fn classification_detail(c: &Classification) -> serde_json::Value {
    json!({
        "language": c.language.code(),
        "category": c.category.as_str(),
        "severity": c.severity.map(Severity::as_str),
        "urgent": c.urgent,
        "vip": c.vip,
        "priority": c.priority.as_str(),
        "rules": c.rules,
    })
}

fn is_ours(addr: &EmailAddress, support: &EmailAddress) -> bool {
    addr.domain() == support.domain()
        && addr.local_part().split('+').next() == Some(support.local_part())
}

/// Queues the acknowledgement, unless the loop brake holds it. Returns whether one was queued.
fn acknowledge(
    desk: &Desk,
    mail: &InboundMail,
    verdict: &ScreenVerdict,
    t: &TicketState,
    acks: SenderFacts,
    now: Millis,
    plan: &mut Plan,
) -> bool {
    if verdict.machine_evidence >= crate::inbound::screen::DOUBTFUL {
        // Judged a person's, but with machine evidence: when in doubt, a ticket for the agents
        // and no automatic answer (an answer to a machine starts a loop).
        plan.event(
            EventKind::AckSuppressed,
            json!({"reason": "possibly automated", "evidence": verdict.reason}),
        );
        return false;
    }
    if crate::inbound::screen::is_noreply_address(&t.requester) {
        // An acknowledgement to a no-reply or system address reaches nobody, or a machine.
        plan.event(
            EventKind::AckSuppressed,
            json!({"reason": "no-reply address", "address": t.requester.as_str()}),
        );
        return false;
    }
    if acks.acks_to_sender_last_hour >= desk.ack_limit_per_hour {
        plan.event(
            EventKind::AckSuppressed,
            json!({"reason": "rate limit", "limit_per_hour": desk.ack_limit_per_hour}),
        );
        return false;
    }
    let letter = Letter {
        in_reply_to: Some(mail.message_id.clone()),
        references: mail.references.clone(),
        ..Letter::to_requester("ack", MailKind::Ack, t, desk.vars(t))
    };
    match desk.queue(plan, t, letter, now) {
        Some(id) => {
            plan.event(EventKind::AckQueued, json!({"message_id": id.as_str()}));
            true
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Verdict;
    use crate::domain::{Status, TimerKind};
    use crate::inbound::parse::parse;
    use crate::testing::StageFixture;

    fn human() -> ScreenVerdict {
        ScreenVerdict::new(Verdict::Human, "")
    }

    fn plain() -> Classification {
        Classification::plain(crate::domain::Language::ZhHans)
    }

    const MAIL: &[u8] = "From: 王先生 <wang@qq.com>\r\nTo: support@example.test\r\nCc: li@qq.com\r\nMessage-ID: <c1@qq.com>\r\nSubject: 退款\r\n\r\n退款什么时候到？".as_bytes();

    fn created(mail: &InboundMail) -> TicketState {
        TicketState::new(
            crate::domain::TicketRef(7),
            mail.from.clone().expect("from"),
            mail.from_name.clone(),
            mail.subject.clone(),
            &plain(),
        )
    }

    fn new_decision() -> ThreadDecision {
        ThreadDecision::New {
            linked_to: None,
            why: None,
        }
    }

    #[test]
    fn a_new_ticket_gets_one_threaded_acknowledgement_and_its_timers() {
        let f = StageFixture::new();
        let mail = parse(MAIL);
        let t = created(&mail);
        let plan = apply(
            f.desk(),
            &mail,
            "x",
            &human(),
            &plain(),
            &new_decision(),
            Some(&t),
            SenderFacts::default(),
            0,
        );
        assert_eq!(plan.outbox.len(), 1);
        let ack = parse(&plan.outbox[0].raw);
        assert_eq!(ack.in_reply_to[0].as_str(), "c1@qq.com");
        assert!(ack.subject.contains("[#T-000007]"), "{}", ack.subject);
        assert!(ack.text.contains("48"), "{}", ack.text);
        assert_eq!(ack.to[0].as_str(), "wang@qq.com");
        assert_eq!(
            plan.new_participants,
            vec![EmailAddress::parse("li@qq.com").expect("addr")]
        );
        assert!(plan.events.iter().any(|e| e.kind == "ticket_created"));
        let kinds: Vec<_> = plan.start_timers.iter().map(|t| t.kind).collect();
        assert_eq!(kinds, [TimerKind::Ack, TimerKind::Solution]);
    }

    #[test]
    fn the_ack_promises_the_ticket_s_own_solution_time() {
        let f = StageFixture::with_sla(
            r#"
            [[overrides]]
            priority = "urgent"
            first_solution_hours = 4
            "#,
        );
        let mail = parse(MAIL);
        let mut t = created(&mail);
        t.class.urgent = true;
        t.class.priority = Priority::Urgent;
        let plan = apply(
            f.desk(),
            &mail,
            "x",
            &human(),
            &plain(),
            &new_decision(),
            Some(&t),
            SenderFacts::default(),
            0,
        );
        let ack = parse(&plan.outbox[0].raw);
        assert!(ack.text.contains(" 4 "), "{}", ack.text);
        assert_eq!(plan.start_timers[1].due_at, 4 * 3_600_000);
    }

    #[test]
    fn the_ack_brake_stops_a_fourth_ack_in_an_hour_and_promises_no_ack() {
        let f = StageFixture::new();
        let mail = parse(MAIL);
        let t = created(&mail);
        let acks = SenderFacts {
            acks_to_sender_last_hour: 3,
            ..Default::default()
        };
        let plan = apply(
            f.desk(),
            &mail,
            "x",
            &human(),
            &plain(),
            &new_decision(),
            Some(&t),
            acks,
            0,
        );
        assert!(plan.outbox.is_empty());
        assert!(plan.events.iter().any(|e| e.kind == "ack_suppressed"));
        let kinds: Vec<_> = plan.start_timers.iter().map(|t| t.kind).collect();
        assert_eq!(kinds, [TimerKind::Solution]);
    }

    #[test]
    fn machine_mail_opens_no_ticket_and_is_recorded() {
        let mail = parse(MAIL);
        let auto = ScreenVerdict::new(Verdict::AutoReply, "Auto-Submitted");
        assert!(new_ticket(&mail, &auto, &new_decision(), &plain()).is_none());
        let f = StageFixture::new();
        let plan = apply(
            f.desk(),
            &mail,
            "x",
            &auto,
            &plain(),
            &new_decision(),
            None,
            SenderFacts::default(),
            0,
        );
        assert!(plan.outbox.is_empty());
        assert_eq!(plan.events[0].kind, "screened_out");
    }

    #[test]
    fn a_follow_up_on_a_solved_ticket_reopens_it_without_a_new_ack() {
        let f = StageFixture::new();
        let mail = parse(MAIL);
        let mut t = created(&mail);
        t.created = false;
        t.status = Status::Solved;
        let d = ThreadDecision::FollowUp {
            ticket: t.ticket,
            via: ThreadVia::Tag,
            reopen: true,
        };
        let plan = apply(
            f.desk(),
            &mail,
            "x",
            &human(),
            &plain(),
            &d,
            Some(&t),
            SenderFacts::default(),
            0,
        );
        assert!(plan.outbox.is_empty());
        assert_eq!(plan.update.status, Some(Status::Open));
        assert!(plan.events.iter().any(|e| e.kind == "reopened"));
        assert_eq!(plan.start_timers[0].kind, TimerKind::Solution);
    }

    #[test]
    fn a_follow_up_raises_urgency_and_severity_but_never_lowers_them() {
        let mail = parse(MAIL);
        let mut t = created(&mail);
        t.created = false;
        let mut c = plain();
        assert_eq!(upgrade(&t.class, &c), None, "nothing new");
        c.urgent = true;
        let up = upgrade(&t.class, &c).expect("urgent now");
        assert!(up.urgent);
        assert_eq!(up.priority, Priority::Urgent);
        assert_eq!(
            up.category,
            Category::Inquiry,
            "category is the agents' to change"
        );
        c.urgent = false;
        c.category = Category::Complaint;
        c.severity = Some(Severity::Major);
        let up = upgrade(&t.class, &c).expect("major complaint now");
        assert_eq!(
            (up.category, up.severity),
            (Category::Complaint, Some(Severity::Major))
        );
        t.class.urgent = true;
        t.class.priority = Priority::Urgent;
        assert_eq!(
            upgrade(&t.class, &plain()),
            None,
            "a calm follow-up lowers nothing"
        );

        let f = StageFixture::with_sla(
            r#"
            [[overrides]]
            priority = "urgent"
            first_solution_hours = 4
            "#,
        );
        t.class.urgent = false;
        t.class.priority = Priority::Normal;
        t.timers = vec![crate::domain::RunningTimer {
            kind: TimerKind::Solution,
            started_at: 0,
            due_at: 48 * 3_600_000,
        }];
        let d = ThreadDecision::FollowUp {
            ticket: t.ticket,
            via: ThreadVia::Tag,
            reopen: false,
        };
        let plan = apply(
            f.desk(),
            &mail,
            "x",
            &human(),
            &c,
            &d,
            Some(&t),
            SenderFacts::default(),
            0,
        );
        assert!(plan.class.is_some());
        assert!(plan.events.iter().any(|e| e.kind == "reclassified"));
        assert_eq!(plan.start_timers.len(), 1);
        assert_eq!(plan.start_timers[0].kind, TimerKind::Solution);
        assert_eq!(
            plan.start_timers[0].due_at,
            4 * 3_600_000,
            "4 h now, not 48"
        );
    }
}
