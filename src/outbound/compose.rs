//! Building outgoing mail from approved templates, for every stage that queues mail (`apply`,
//! `sla`, `lifecycle`, `agents`): methods on the [`Desk`]. Pure apart from the random Message-ID: the outbox stores the finished
//! message, so a retry sends exactly what was committed, Message-ID included.
//!
//! Invariants: every automatic mail carries `Auto-Submitted: auto-replied` (RFC 3834),
//! `X-Auto-Response-Suppress: All` (so Exchange does not answer it) and our loop header; every
//! mail threads under the customer's (`In-Reply-To`, `References`).

use crate::app::context::Desk;
use crate::clock::Millis;
use crate::domain::EventKind;
use crate::domain::LOOP_HEADER;
use crate::domain::{EmailAddress, Language, MailKind, MessageId, TicketRef};
use crate::domain::{OutboxDraft, Plan, TicketState};
use crate::outbound::templates::{number_text, TemplateVars};
use lettre::message::header::{ContentType, HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart, SinglePart};
use lettre::Message;
use rand::Rng;
use serde_json::json;

#[derive(Debug, thiserror::Error)]
pub enum ComposeError {
    #[error("address {address} cannot be used in a mail header: {reason}")]
    Address { address: String, reason: String },
    #[error("cannot build mail: {0}")]
    Build(String),
}

#[derive(Debug, Clone)]
pub struct OutgoingMail {
    pub message_id: MessageId,
    pub from_name: String,
    pub from: EmailAddress,
    /// Where replies should go: the ticket's signed address.
    pub reply_to: Option<String>,
    pub to: Vec<(Option<String>, EmailAddress)>,
    pub cc: Vec<EmailAddress>,
    pub subject: String,
    pub body: String,
    pub in_reply_to: Option<MessageId>,
    pub references: Vec<MessageId>,
    pub automatic: bool,
    pub ticket: TicketRef,
    pub date: Millis,
    /// Value of our loop header (our Message-ID domain).
    pub loop_marker: String,
    pub attachments: Vec<crate::domain::Attachment>,
}

/// An agents' address (`support+A0.T000123.<mac>@…`), wherever it appears in a text.
static AGENT_ADDRESS: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
    regex::Regex::new(r"(?i)[a-z0-9._%-]+\+a\d+\.t\d+\.[0-9a-f]{16}@[a-z0-9.-]+")
        .expect("static regex")
});

/// `text` with every agents' address replaced by the customer's reply address.
fn without_agent_addresses(text: &str, customer: &str) -> String {
    if !text.contains('+') {
        return text.to_string();
    }
    AGENT_ADDRESS.replace_all(text, customer).into_owned()
}

/// A fresh Message-ID in our domain: 128 random bits.
pub fn new_message_id(domain: &str) -> MessageId {
    let n: u128 = rand::thread_rng().gen();
    MessageId::parse(&format!("{n:032x}@{domain}"))
        .unwrap_or_else(|| MessageId::synthetic(&n.to_le_bytes()))
}

fn mailbox(name: Option<&str>, addr: &str) -> Result<Mailbox, ComposeError> {
    let address =
        addr.parse()
            .map_err(|e: lettre::address::AddressError| ComposeError::Address {
                address: addr.to_string(),
                reason: e.to_string(),
            })?;
    Ok(Mailbox::new(name.map(str::to_string), address))
}

fn raw_header(name: &'static str, value: String) -> HeaderValue {
    HeaderValue::new(HeaderName::new_from_ascii_str(name), value)
}

pub fn compose(m: &OutgoingMail) -> Result<Vec<u8>, ComposeError> {
    let secs = u64::try_from(m.date.max(0) / 1000).unwrap_or(0);
    let mut b = Message::builder()
        .from(mailbox(Some(&m.from_name), m.from.as_str())?)
        .subject(m.subject.clone())
        .message_id(Some(m.message_id.bracketed()))
        .date(std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs))
        .raw_header(raw_header(LOOP_HEADER, m.loop_marker.clone()))
        .raw_header(raw_header("X-Supportd-Ticket", m.ticket.to_string()));
    for (name, addr) in &m.to {
        b = b.to(mailbox(name.as_deref(), addr.as_str())?);
    }
    for addr in &m.cc {
        b = b.cc(mailbox(None, addr.as_str())?);
    }
    if let Some(r) = &m.reply_to {
        b = b.reply_to(mailbox(Some(&m.from_name), r)?);
    }
    if let Some(irt) = &m.in_reply_to {
        b = b.in_reply_to(irt.bracketed());
    }
    if !m.references.is_empty() {
        let refs = m
            .references
            .iter()
            .map(MessageId::bracketed)
            .collect::<Vec<_>>()
            .join(" ");
        b = b.references(refs);
    }
    if m.automatic {
        b = b
            .raw_header(raw_header("Auto-Submitted", "auto-replied".into()))
            .raw_header(raw_header("X-Auto-Response-Suppress", "All".into()));
    }
    let msg = if m.attachments.is_empty() {
        b.header(ContentType::TEXT_PLAIN).body(m.body.clone())
    } else {
        let mut mixed = MultiPart::mixed().singlepart(SinglePart::plain(m.body.clone()));
        for a in &m.attachments {
            mixed = mixed.singlepart(attachment_part(a));
        }
        b.multipart(mixed)
    }
    .map_err(|e| ComposeError::Build(e.to_string()))?;
    Ok(msg.formatted())
}

/// One file as a MIME part: its name (RFC 2231 for non-ASCII), its type, its bytes; a picture
/// shown in the text keeps its Content-ID.
fn attachment_part(a: &crate::domain::Attachment) -> SinglePart {
    let ct = ContentType::parse(&a.content_type).unwrap_or_else(|_| {
        ContentType::parse("application/octet-stream").unwrap_or(ContentType::TEXT_PLAIN)
    });
    let name = a.name.clone().unwrap_or_else(|| {
        if a.message {
            "forwarded.eml".to_string()
        } else {
            "attachment".to_string()
        }
    });
    let file = match &a.content_id {
        Some(cid) if a.inline => {
            lettre::message::Attachment::new_inline_with_name(cid.clone(), name)
        }
        _ => lettre::message::Attachment::new(name),
    };
    file.body(a.bytes.clone(), ct)
}

/// A mail from a template, about a ticket.
#[derive(Debug, Clone)]
pub struct Letter {
    /// Template name (`ack`, `survey`, `notice_warning`, `canned_refund_policy`, …).
    pub template: String,
    pub kind: MailKind,
    pub language: Language,
    pub to: Vec<(Option<String>, EmailAddress)>,
    pub vars: TemplateVars,
    /// Thread under this mail (the customer's), with these references.
    pub in_reply_to: Option<MessageId>,
    pub references: Vec<MessageId>,
    /// Cc (an agent's reply goes to the ticket's participants too).
    pub cc: Vec<EmailAddress>,
    /// Machine-written (`Auto-Submitted: auto-replied`); false for an agent's reply.
    pub automatic: bool,
    /// Display name on `From` (default: the support name; the address is always ours).
    pub from_name: Option<String>,
    /// Files that go with it (a customer's on their card, an agent's on their reply), byte for
    /// byte with their names.
    pub attachments: Vec<crate::domain::Attachment>,
}

impl Letter {
    /// An automatic letter to one person, not threaded.
    pub fn to(
        template: &str,
        kind: MailKind,
        language: Language,
        name: Option<String>,
        to: EmailAddress,
        vars: TemplateVars,
    ) -> Letter {
        Letter {
            template: template.to_string(),
            kind,
            language,
            to: vec![(name, to)],
            vars,
            in_reply_to: None,
            references: Vec::new(),
            cc: Vec::new(),
            automatic: true,
            from_name: None,
            attachments: Vec::new(),
        }
    }

    /// An automatic letter to the ticket's requester, in the ticket's language.
    pub fn to_requester(
        template: &str,
        kind: MailKind,
        t: &TicketState,
        vars: TemplateVars,
    ) -> Letter {
        Letter::to(
            template,
            kind,
            t.language.template_language(),
            t.requester_name.clone(),
            t.requester.clone(),
            vars,
        )
    }
}

/// A rendered, finished mail.
#[derive(Debug, Clone)]
pub struct Finished {
    pub message_id: MessageId,
    pub subject: String,
    pub body: String,
    pub raw: Vec<u8>,
}

/// Shortens a text for a notice: at most `max` characters, on a character boundary.
fn excerpt(s: &str, max: usize) -> String {
    let s = s.trim();
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

impl Desk {
    /// The variables every template about this ticket can use.
    pub fn vars(&self, t: &TicketState) -> TemplateVars {
        use crate::domain::TimerKind as K;
        TemplateVars {
            customer_name: t.customer_name(),
            customer_address: t.requester.to_string(),
            ticket_ref: t.ticket.to_string(),
            subject: t.subject.clone(),
            support_name: self.support_name.to_string(),
            support_address: self.support_address.to_string(),
            ack_hours: number_text(self.sla.hours(K::Ack, &t.class)),
            first_solution_hours: number_text(self.sla.hours(K::Solution, &t.class)),
            progress_hours: number_text(self.sla.hours(K::Progress, &t.class)),
            supervisor_contact_hours: number_text(self.sla.hours(K::SupervisorContact, &t.class)),
            followup_days: number_text(self.sla.hours(K::Followup, &t.class) / 24.0),
            category: t.class.category.as_str().into(),
            severity: t.class.severity.map(|s| s.as_str()).unwrap_or("").into(),
            priority: t.class.priority.as_str().into(),
            owner: t.owner.as_ref().map(|o| o.to_string()).unwrap_or_default(),
            summary: excerpt(&t.summary, 600),
            ..Default::default()
        }
    }

    /// The display name of an agent address (the address when it is not a listed agent).
    pub fn agent_name(&self, a: &EmailAddress) -> String {
        self.agents
            .iter()
            .find(|x| &x.address == a)
            .map(|x| x.name.clone())
            .unwrap_or_else(|| a.to_string())
    }

    /// Where replies to a mail about `t` go (its Reply-To): mail to the customer carries the
    /// ticket's customer reply address; cards and notices to agents carry its agents' address,
    /// which no customer ever sees.
    pub fn reply_address(&self, t: &TicketState, kind: MailKind) -> String {
        if kind.to_agents() {
            self.signer
                .agent_address(&self.support_address, t.ticket, t.agent_epoch.unwrap_or(0))
        } else {
            self.signer.reply_address(&self.support_address, t.ticket)
        }
    }

    /// Renders a letter about `ticket` into a finished mail (Message-ID, bytes).
    pub fn render_mail(
        &self,
        t: &TicketState,
        letter: &Letter,
        now: Millis,
    ) -> Result<Finished, String> {
        let ticket = t.ticket;
        let mut rendered = self
            .templates
            .render(&letter.template, letter.language, &letter.vars)
            .map_err(|e| e.to_string())?;
        if !letter.kind.to_agents() {
            // Agents' addresses never reach a customer, whatever an agent pasted into a reply.
            let customer = self.signer.reply_address(&self.support_address, ticket);
            rendered.subject = without_agent_addresses(&rendered.subject, &customer);
            rendered.body = without_agent_addresses(&rendered.body, &customer);
        }
        let message_id = new_message_id(&self.message_id_domain);
        let mut references = letter.references.clone();
        if let Some(irt) = &letter.in_reply_to {
            if !references.contains(irt) {
                references.push(irt.clone());
            }
        }
        let out = OutgoingMail {
            message_id: message_id.clone(),
            from_name: letter
                .from_name
                .clone()
                .unwrap_or_else(|| self.support_name.to_string()),
            from: self.support_address.clone(),
            reply_to: Some(self.reply_address(t, letter.kind)),
            to: letter.to.clone(),
            cc: letter.cc.clone(),
            subject: rendered.subject.clone(),
            body: rendered.body.clone(),
            in_reply_to: letter.in_reply_to.clone(),
            references,
            automatic: letter.automatic,
            ticket,
            date: now,
            loop_marker: self.message_id_domain.to_string(),
            attachments: letter.attachments.clone(),
        };
        let raw = compose(&out).map_err(|e| e.to_string())?;
        Ok(Finished {
            message_id,
            subject: rendered.subject,
            body: rendered.body,
            raw,
        })
    }

    /// Renders `letter` into a mail ready for the outbox: finished to the byte, with its
    /// envelope sender and the time it is given up if it cannot be sent.
    pub fn draft(
        &self,
        t: &TicketState,
        letter: &Letter,
        now: Millis,
    ) -> Result<OutboxDraft, String> {
        let ticket = t.ticket;
        let f = self.render_mail(t, letter, now)?;
        let mut recipients: Vec<EmailAddress> = letter.to.iter().map(|(_, a)| a.clone()).collect();
        recipients.extend(letter.cc.iter().cloned());
        Ok(OutboxDraft {
            ticket: Some(ticket),
            kind: letter.kind,
            message_id: f.message_id,
            recipients,
            subject: f.subject,
            text: f.body,
            in_reply_to: letter.in_reply_to.clone(),
            raw: f.raw,
            envelope_from: self.outbox.envelope_from.clone(),
            give_up_at: now + self.outbox.give_up_after_ms,
        })
    }

    /// Renders `letter` and adds it to the plan's outbox; on a template or address problem the
    /// plan gets a `mail_failed` event instead (nothing else is held back). Returns the queued
    /// mail's Message-ID.
    pub fn queue(
        &self,
        plan: &mut Plan,
        t: &TicketState,
        letter: Letter,
        now: Millis,
    ) -> Option<MessageId> {
        match self.draft(t, &letter, now) {
            Ok(d) => {
                let id = d.message_id.clone();
                plan.outbox.push(d);
                Some(id)
            }
            Err(error) => {
                plan.event(
                    EventKind::MailFailed,
                    json!({"template": letter.template, "kind": letter.kind, "error": error}),
                );
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inbound::parse::parse;

    #[test]
    fn an_acknowledgement_threads_and_says_it_is_automatic() {
        let m = OutgoingMail {
            message_id: MessageId::parse("abc@example.test").expect("id"),
            from_name: "客服中心".into(),
            from: EmailAddress::parse("support@example.test").expect("addr"),
            reply_to: Some("support+T000001.00ff@example.test".into()),
            to: vec![(
                Some("王先生".into()),
                EmailAddress::parse("wang@qq.com").expect("addr"),
            )],
            cc: vec![],
            subject: "[#T-000001] 我们已收到您的来信".into(),
            body: "尊敬的王先生：\n您好！\n".into(),
            in_reply_to: MessageId::parse("cust@qq.com"),
            references: vec![MessageId::parse("cust@qq.com").expect("id")],
            automatic: true,
            ticket: TicketRef(1),
            date: 1_763_900_000_000,
            loop_marker: "example.test".into(),
            attachments: Vec::new(),
        };
        let raw = compose(&m).expect("composes");
        let back = parse(&raw);
        assert_eq!(back.message_id.as_str(), "abc@example.test");
        assert_eq!(back.in_reply_to[0].as_str(), "cust@qq.com");
        assert_eq!(back.subject, "[#T-000001] 我们已收到您的来信");
        assert_eq!(back.header("auto-submitted"), Some("auto-replied"));
        assert_eq!(back.header("x-supportd-loop"), Some("example.test"));
        assert_eq!(
            back.reply_to.as_ref().map(|a| a.as_str()),
            Some("support+t000001.00ff@example.test")
        );
        assert!(back.text.contains("您好"));
    }
}
