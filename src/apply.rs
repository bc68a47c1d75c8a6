//! Stage `apply`: what one inbound mail changes — ticket, participants, events, outgoing mail.
//! Pure: it returns a [`Plan`], and `store` commits the plan in one transaction together with the
//! message and the IMAP checkpoint.
//!
//! Invariants: `apply` never fails (a mail is never lost because, say, a template broke: that
//! becomes an event); only `human` mail is acknowledged, once per new ticket, and never more than
//! `ack_limit_per_hour` times an hour to one address, so two auto-responders cannot loop even when
//! every header lies; mail we cannot attribute to a sender is stored with an ops event.

use crate::classify::{Category, Classification, Priority, Severity, TicketClass};
use crate::clock::Millis;
use crate::compose::{compose, new_message_id, OutgoingMail};
use crate::model::{EmailAddress, Language, MessageId, TicketRef};
use crate::parse::InboundMail;
use crate::screen::ScreenVerdict;
use crate::templates::{TemplateVars, Templates};
use crate::thread::{ReplySigner, ThreadDecision, ThreadVia};
use serde_json::json;

/// Settings `apply` needs, borrowed from the running application.
#[derive(Debug)]
pub struct ApplyContext<'a> {
    pub templates: &'a Templates,
    pub signer: &'a ReplySigner,
    pub support_address: &'a EmailAddress,
    pub support_name: &'a str,
    pub message_id_domain: &'a str,
    pub first_solution_hours: u32,
    pub ack_hours: u32,
    pub ack_limit_per_hour: u32,
}

/// A ticket as `apply` sees it (already created by the store when the mail opens one).
#[derive(Debug, Clone)]
pub struct TicketState {
    pub ticket: TicketRef,
    pub requester: EmailAddress,
    pub requester_name: Option<String>,
    pub subject: String,
    pub language: Language,
    pub status: String,
    pub participants: Vec<EmailAddress>,
    pub class: TicketClass,
    /// True when this mail created it.
    pub created: bool,
}

/// Facts about recent automatic mail, for the loop brake.
#[derive(Debug, Clone, Copy, Default)]
pub struct AckFacts {
    /// Acknowledgements queued to this sender in the last hour.
    pub acks_to_sender_last_hour: u32,
}

/// What a new ticket is created with.
#[derive(Debug, Clone)]
pub struct NewTicket {
    pub requester: EmailAddress,
    pub requester_name: Option<String>,
    pub subject: String,
    pub classification: Classification,
}

#[derive(Debug, Clone, PartialEq)]
pub struct EventDraft {
    /// `None`: an ops event not tied to a ticket.
    pub ticket: Option<TicketRef>,
    pub kind: &'static str,
    pub detail: serde_json::Value,
}

#[derive(Debug, Clone)]
pub struct OutboxDraft {
    pub ticket: TicketRef,
    pub kind: &'static str,
    pub message_id: MessageId,
    pub recipients: Vec<EmailAddress>,
    pub subject: String,
    pub text: String,
    pub in_reply_to: Option<MessageId>,
    pub raw: Vec<u8>,
}

#[derive(Debug, Clone)]
pub struct Plan {
    /// The ticket the message is filed on (none for mail nobody can be answered about).
    pub ticket: Option<TicketRef>,
    pub reply_text: String,
    /// New status for the ticket, when it changes.
    pub status: Option<&'static str>,
    pub new_participants: Vec<EmailAddress>,
    pub events: Vec<EventDraft>,
    pub outbox: Vec<OutboxDraft>,
    /// One of our outgoing mails that this delivery report says could not be delivered.
    pub bounced: Option<MessageId>,
    /// A follow-up raised the ticket's urgency or severity (never lowers them: agents do that).
    pub upgrade: Option<TicketClass>,
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
    let requester = mail.from.clone()?;
    Some(NewTicket {
        requester,
        requester_name: mail.from_name.clone(),
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
    ctx: &ApplyContext<'_>,
    mail: &InboundMail,
    reply_text: String,
    verdict: &ScreenVerdict,
    classification: &Classification,
    decision: &ThreadDecision,
    ticket: Option<&TicketState>,
    acks: AckFacts,
    now: Millis,
) -> Plan {
    let mut plan = Plan {
        ticket: ticket.map(|t| t.ticket),
        reply_text,
        status: None,
        new_participants: Vec::new(),
        events: Vec::new(),
        outbox: Vec::new(),
        bounced: None,
        upgrade: None,
    };
    let base = json!({
        "message_id": mail.message_id.as_str(),
        "verdict": verdict.verdict.as_str(),
        "reason": verdict.reason,
    });
    if !mail.problems.is_empty() {
        plan.events.push(EventDraft {
            ticket: plan.ticket,
            kind: "malformed_mail",
            detail: json!({"message_id": mail.message_id.as_str(), "problems": mail.problems}),
        });
    }
    let Some(t) = ticket else {
        // Nothing to file it on: a machine's mail, or mail without a usable sender.
        plan.events.push(EventDraft {
            ticket: None,
            kind: if verdict.is_human() {
                "unattributed_mail"
            } else {
                "screened_out"
            },
            detail: base,
        });
        return plan;
    };

    if t.created {
        plan.events.push(EventDraft {
            ticket: Some(t.ticket),
            kind: "ticket_created",
            detail: json!({
                "message_id": mail.message_id.as_str(),
                "language": t.language.code(),
            }),
        });
        plan.events.push(EventDraft {
            ticket: Some(t.ticket),
            kind: "classified",
            detail: classification_detail(classification),
        });
        if let ThreadDecision::New {
            linked_to: Some(other),
            why,
        } = decision
        {
            plan.events.push(EventDraft {
                ticket: Some(t.ticket),
                kind: "linked",
                detail: json!({"ticket": other.to_string(), "why": why}),
            });
        }
        let mut seen = vec![t.requester.clone()];
        for r in mail.recipients() {
            if !is_ours(r, ctx.support_address) && !seen.contains(r) {
                seen.push(r.clone());
                plan.new_participants.push(r.clone());
            }
        }
        acknowledge(ctx, mail, t, acks, now, &mut plan);
        return plan;
    }

    if let ThreadDecision::FollowUp {
        via: ThreadVia::Bounce,
        ..
    } = decision
    {
        plan.bounced = mail.bounced_message_id.clone();
        plan.events.push(EventDraft {
            ticket: Some(t.ticket),
            kind: "outbox_failed",
            detail: json!({
                "message_id": mail.bounced_message_id.as_ref().map(|m| m.as_str()),
                "error": "bounced",
                "report": mail.message_id.as_str(),
            }),
        });
        return plan;
    }

    // A follow-up on an existing ticket.
    let kind = if verdict.is_human() {
        "customer_replied"
    } else {
        "automatic_reply_received"
    };
    plan.events.push(EventDraft {
        ticket: Some(t.ticket),
        kind,
        detail: base,
    });
    if let ThreadDecision::FollowUp { reopen: true, .. } = decision {
        if verdict.is_human() {
            plan.status = Some("open");
            plan.events.push(EventDraft {
                ticket: Some(t.ticket),
                kind: "reopened",
                detail: json!({"message_id": mail.message_id.as_str()}),
            });
        }
    }
    if let Some(from) = &mail.from {
        if verdict.is_human() && from != &t.requester && !t.participants.contains(from) {
            plan.new_participants.push(from.clone());
        }
    }
    if verdict.is_human() {
        if let Some(up) = upgrade(&t.class, classification) {
            let mut detail = classification_detail(classification);
            detail["message_id"] = json!(mail.message_id.as_str());
            detail["from"] = json!(t.class);
            detail["to"] = json!(up);
            plan.events.push(EventDraft {
                ticket: Some(t.ticket),
                kind: "reclassified",
                detail,
            });
            plan.upgrade = Some(up);
        }
    }
    plan
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

fn acknowledge(
    ctx: &ApplyContext<'_>,
    mail: &InboundMail,
    t: &TicketState,
    acks: AckFacts,
    now: Millis,
    plan: &mut Plan,
) {
    if acks.acks_to_sender_last_hour >= ctx.ack_limit_per_hour {
        plan.events.push(EventDraft {
            ticket: Some(t.ticket),
            kind: "ack_suppressed",
            detail: json!({
                "reason": "rate limit",
                "limit_per_hour": ctx.ack_limit_per_hour,
            }),
        });
        return;
    }
    let vars = TemplateVars {
        customer_name: t
            .requester_name
            .clone()
            .unwrap_or_else(|| t.requester.local_part().to_string()),
        customer_address: t.requester.to_string(),
        ticket_ref: t.ticket.to_string(),
        subject: t.subject.clone(),
        support_name: ctx.support_name.to_string(),
        support_address: ctx.support_address.to_string(),
        first_solution_hours: ctx.first_solution_hours,
        ack_hours: ctx.ack_hours,
    };
    let rendered = match ctx.templates.render("ack", t.language, &vars) {
        Ok(r) => r,
        Err(e) => {
            plan.events.push(EventDraft {
                ticket: Some(t.ticket),
                kind: "ack_failed",
                detail: json!({"error": e.to_string()}),
            });
            return;
        }
    };
    let message_id = new_message_id(ctx.message_id_domain);
    let mut references = mail.references.clone();
    if !references.contains(&mail.message_id) {
        references.push(mail.message_id.clone());
    }
    let out = OutgoingMail {
        message_id: message_id.clone(),
        from_name: ctx.support_name.to_string(),
        from: ctx.support_address.clone(),
        reply_to: Some(ctx.signer.reply_address(ctx.support_address, t.ticket)),
        to: vec![(t.requester_name.clone(), t.requester.clone())],
        subject: rendered.subject.clone(),
        body: rendered.body.clone(),
        in_reply_to: Some(mail.message_id.clone()),
        references,
        automatic: true,
        ticket: t.ticket,
        date: now,
        loop_marker: ctx.message_id_domain.to_string(),
    };
    match compose(&out) {
        Ok(raw) => {
            plan.events.push(EventDraft {
                ticket: Some(t.ticket),
                kind: "ack_queued",
                detail: json!({"message_id": message_id.as_str()}),
            });
            plan.outbox.push(OutboxDraft {
                ticket: t.ticket,
                kind: "ack",
                message_id,
                recipients: vec![t.requester.clone()],
                subject: rendered.subject,
                text: rendered.body,
                in_reply_to: Some(mail.message_id.clone()),
                raw,
            });
        }
        Err(e) => plan.events.push(EventDraft {
            ticket: Some(t.ticket),
            kind: "ack_failed",
            detail: json!({"error": e.to_string()}),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Secret;
    use crate::parse::parse;
    use crate::screen::Verdict;

    struct Fixture {
        templates: Templates,
        signer: ReplySigner,
        support: EmailAddress,
    }
    impl Fixture {
        fn new() -> Self {
            Fixture {
                templates: Templates::load(
                    &std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("templates"),
                )
                .expect("templates"),
                signer: ReplySigner::new(Secret::new("0123456789abcdef0123"), vec![]),
                support: EmailAddress::parse("support@example.test").expect("addr"),
            }
        }
        fn ctx(&self) -> ApplyContext<'_> {
            ApplyContext {
                templates: &self.templates,
                signer: &self.signer,
                support_address: &self.support,
                support_name: "客服中心",
                message_id_domain: "example.test",
                first_solution_hours: 48,
                ack_hours: 24,
                ack_limit_per_hour: 3,
            }
        }
    }

    fn human() -> ScreenVerdict {
        ScreenVerdict {
            verdict: Verdict::Human,
            reason: String::new(),
        }
    }

    fn created(mail: &InboundMail) -> TicketState {
        TicketState {
            ticket: TicketRef(7),
            requester: mail.from.clone().expect("from"),
            requester_name: mail.from_name.clone(),
            subject: mail.subject.clone(),
            language: Language::ZhHans,
            status: "open".into(),
            participants: vec![],
            class: TicketClass::of(&Classification::plain(Language::ZhHans)),
            created: true,
        }
    }

    fn plain() -> Classification {
        Classification::plain(Language::ZhHans)
    }

    const MAIL: &[u8] = "From: 王先生 <wang@qq.com>\r\nTo: support@example.test\r\nCc: li@qq.com\r\nMessage-ID: <c1@qq.com>\r\nSubject: 退款\r\n\r\n退款什么时候到？".as_bytes();

    #[test]
    fn a_new_ticket_gets_one_threaded_acknowledgement() {
        let f = Fixture::new();
        let mail = parse(MAIL);
        let new = ThreadDecision::New {
            linked_to: None,
            why: None,
        };
        let t = created(&mail);
        let plan = apply(
            &f.ctx(),
            &mail,
            "x".into(),
            &human(),
            &plain(),
            &new,
            Some(&t),
            AckFacts::default(),
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
    }

    #[test]
    fn the_ack_brake_stops_a_fourth_ack_in_an_hour() {
        let f = Fixture::new();
        let mail = parse(MAIL);
        let new = ThreadDecision::New {
            linked_to: None,
            why: None,
        };
        let t = created(&mail);
        let acks = AckFacts {
            acks_to_sender_last_hour: 3,
        };
        let plan = apply(
            &f.ctx(),
            &mail,
            "x".into(),
            &human(),
            &plain(),
            &new,
            Some(&t),
            acks,
            0,
        );
        assert!(plan.outbox.is_empty());
        assert!(plan.events.iter().any(|e| e.kind == "ack_suppressed"));
    }

    #[test]
    fn machine_mail_opens_no_ticket_and_is_recorded() {
        let mail = parse(MAIL);
        let auto = ScreenVerdict {
            verdict: Verdict::AutoReply,
            reason: "Auto-Submitted".into(),
        };
        let new = ThreadDecision::New {
            linked_to: None,
            why: None,
        };
        let c = Classification::plain(Language::ZhHans);
        assert!(new_ticket(&mail, &auto, &new, &c).is_none());
        let f = Fixture::new();
        let plan = apply(
            &f.ctx(),
            &mail,
            "x".into(),
            &auto,
            &c,
            &new,
            None,
            AckFacts::default(),
            0,
        );
        assert!(plan.outbox.is_empty());
        assert_eq!(plan.events[0].kind, "screened_out");
    }

    #[test]
    fn a_follow_up_on_a_solved_ticket_reopens_it_without_a_new_ack() {
        let f = Fixture::new();
        let mail = parse(MAIL);
        let mut t = created(&mail);
        t.created = false;
        t.status = "solved".into();
        let d = ThreadDecision::FollowUp {
            ticket: t.ticket,
            via: crate::thread::ThreadVia::Tag,
            reopen: true,
        };
        let plan = apply(
            &f.ctx(),
            &mail,
            "x".into(),
            &human(),
            &plain(),
            &d,
            Some(&t),
            AckFacts::default(),
            0,
        );
        assert!(plan.outbox.is_empty());
        assert_eq!(plan.status, Some("open"));
        assert!(plan.events.iter().any(|e| e.kind == "reopened"));
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
        let calm = plain();
        assert_eq!(
            upgrade(&t.class, &calm),
            None,
            "a calm follow-up lowers nothing"
        );
        let f = Fixture::new();
        let d = ThreadDecision::FollowUp {
            ticket: t.ticket,
            via: crate::thread::ThreadVia::Tag,
            reopen: false,
        };
        t.class.urgent = false;
        t.class.priority = Priority::Normal;
        let plan = apply(
            &f.ctx(),
            &mail,
            "x".into(),
            &human(),
            &c,
            &d,
            Some(&t),
            AckFacts::default(),
            0,
        );
        assert!(plan.upgrade.is_some());
        assert!(plan.events.iter().any(|e| e.kind == "reclassified"));
    }
}
