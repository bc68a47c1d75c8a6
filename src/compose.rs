//! Building outgoing mail (used by `apply` when it queues mail). Pure: the same inputs give the
//! same bytes, so the outbox stores the finished message and a retry sends exactly what was
//! committed, Message-ID included.
//!
//! Invariants: every automatic mail carries `Auto-Submitted: auto-replied` (RFC 3834),
//! `X-Auto-Response-Suppress: All` (so Exchange does not answer it) and our loop header; every
//! mail threads under the customer's (`In-Reply-To`, `References`).

use crate::clock::Millis;
use crate::model::{EmailAddress, MessageId, TicketRef};
use crate::screen::LOOP_HEADER;
use lettre::message::header::{ContentType, HeaderName, HeaderValue};
use lettre::message::Mailbox;
use lettre::Message;
use rand::Rng;

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
    pub subject: String,
    pub body: String,
    pub in_reply_to: Option<MessageId>,
    pub references: Vec<MessageId>,
    pub automatic: bool,
    pub ticket: TicketRef,
    pub date: Millis,
    /// Value of our loop header (our Message-ID domain).
    pub loop_marker: String,
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
    let msg = b
        .header(ContentType::TEXT_PLAIN)
        .body(m.body.clone())
        .map_err(|e| ComposeError::Build(e.to_string()))?;
    Ok(msg.formatted())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::parse;

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
            subject: "[#T-000001] 我们已收到您的来信".into(),
            body: "尊敬的王先生：\n您好！\n".into(),
            in_reply_to: MessageId::parse("cust@qq.com"),
            references: vec![MessageId::parse("cust@qq.com").expect("id")],
            automatic: true,
            ticket: TicketRef(1),
            date: 1_763_900_000_000,
            loop_marker: "example.test".into(),
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
