//! Stage `thread`: which ticket does this mail belong to, or is it a new one? Pure over facts the
//! store looked up ([`ThreadFacts`]).
//!
//! Precedence: a signed reply address (`support+T000123.<mac>@…`) → `In-Reply-To`/`References`
//! naming a Message-ID we stored or sent, or one a gateway recorded before rewriting it
//! (`X-Original-Message-ID`) → a ticket tag in the subject (`[#T-000123]`; every candidate is
//! tried, our exact form first) → our tag or signed address in the body (a phone app that
//! dropped every header but quoted our mail) → new.
//!
//! Invariants: every link — signed address, reference, tag, quoted tag — joins a ticket only when
//! the sender is its requester, one of its participants, or an agent/colleague; anyone else (a
//! stranger quoting someone else's ticket, a person the mail was forwarded to, the requester
//! writing from an address never used on the ticket) gets a new ticket linked to it and never
//! sees or changes the other. People join a ticket when its requester or an agent addresses
//! them on it (To/Cc). Two customers with the same subject are always two tickets: subjects
//! alone never thread.

use crate::clock::Millis;
use crate::config::Secret;
use crate::domain::InboundMail;
use crate::domain::{EmailAddress, TicketRef};
use crate::domain::{ThreadDecision, ThreadFacts, ThreadHints, ThreadVia, TicketFacts};
use hmac::{Hmac, Mac};
use regex::Regex;
use sha2::Sha256;
use std::sync::LazyLock;

/// `[#T-000123]`, `[T-000123]`, `【#T-000123】`, `(#T000123)` and spacing/mangled variants.
static SUBJECT_TAG: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)[\[【(（]\s*#?\s*T\s*-?\s*(\d{1,12})\s*[\]】)）]").expect("static regex")
});

/// The exact tag we write: `[#T-000123]` (six digits or more).
static EXACT_TAG: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\[#T-(\d{6,12})\]").expect("static regex"));

/// A signed customer reply address anywhere in a text: `local+T000123.<16 hex>@domain`.
static SIGNED_ADDRESS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)([\w.-]+)\+(T\d{1,12}\.[0-9a-f]{16})@([\w-]+(?:\.[\w-]+)+)")
        .expect("static regex")
});

/// How much of a body is searched for quoted tags (quoted history sits near the top).
const QUOTED_SEARCH_BYTES: usize = 64 * 1024;

/// Signs and verifies the ticket token in reply addresses: `T000123.<16 hex of HMAC-SHA256>`.
#[derive(Debug, Clone)]
pub struct ReplySigner {
    /// The first secret signs; all of them verify (rotation).
    secrets: Vec<Secret>,
}

impl ReplySigner {
    pub fn new(current: Secret, old: Vec<Secret>) -> Self {
        let mut secrets = vec![current];
        secrets.extend(old);
        ReplySigner { secrets }
    }

    fn mac(secret: &Secret, ticket: TicketRef) -> String {
        // HMAC accepts keys of any length, so `new_from_slice` cannot fail here.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.expose().as_bytes())
            .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
        mac.update(ticket.to_string().as_bytes());
        hex::encode(&mac.finalize().into_bytes()[..8])
    }

    /// The token for a ticket, e.g. `T000123.9f2c…`.
    pub fn token(&self, ticket: TicketRef) -> String {
        format!("T{:06}.{}", ticket.0, Self::mac(&self.secrets[0], ticket))
    }

    /// The signed reply address for a ticket: `support+TOKEN@domain`.
    pub fn reply_address(&self, support: &EmailAddress, ticket: TicketRef) -> String {
        format!(
            "{}+{}@{}",
            support.local_part(),
            self.token(ticket),
            support.domain()
        )
    }

    fn agent_mac(secret: &Secret, ticket: TicketRef, epoch: u32) -> String {
        // A separate HMAC domain ("agent:"): no customer token is ever a valid agent token.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.expose().as_bytes())
            .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
        mac.update(format!("agent:{epoch}:{ticket}").as_bytes());
        hex::encode(&mac.finalize().into_bytes()[..8])
    }

    /// The agents' token for a ticket, e.g. `A0.T000123.4be1…`: only cards and notices carry it,
    /// never mail to a customer. `epoch` is the ticket's agent-token generation; rotating it
    /// (`supportd ticket rotate-token`) revokes every older card.
    pub fn agent_token(&self, ticket: TicketRef, epoch: u32) -> String {
        format!(
            "A{epoch}.T{:06}.{}",
            ticket.0,
            Self::agent_mac(&self.secrets[0], ticket, epoch)
        )
    }

    /// The agents' address for a ticket: `support+A0.T000123.<mac>@domain`.
    pub fn agent_address(&self, support: &EmailAddress, ticket: TicketRef, epoch: u32) -> String {
        format!(
            "{}+{}@{}",
            support.local_part(),
            self.agent_token(ticket, epoch),
            support.domain()
        )
    }

    /// The ticket and epoch an agent token names, if its MAC is valid under any of our secrets.
    pub fn verify_agent(&self, token: &str) -> Option<(TicketRef, u32)> {
        let rest = token
            .strip_prefix('A')
            .or_else(|| token.strip_prefix('a'))?;
        let (epoch, rest) = rest.split_once('.')?;
        let epoch: u32 = epoch.parse().ok()?;
        let (t, mac) = rest.split_once('.')?;
        let t = t.strip_prefix('T').or_else(|| t.strip_prefix('t'))?;
        if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) || t.len() > 12 {
            return None;
        }
        let ticket = TicketRef(t.parse().ok()?);
        let mac = mac.to_ascii_lowercase();
        self.secrets
            .iter()
            .any(|s| constant_time_eq(Self::agent_mac(s, ticket, epoch).as_bytes(), mac.as_bytes()))
            .then_some((ticket, epoch))
    }

    /// The ticket a customer token names, if its MAC is valid under any of our secrets.
    pub fn verify(&self, token: &str) -> Option<TicketRef> {
        let (t, mac) = token.split_once('.')?;
        let t = t.strip_prefix('T').or_else(|| t.strip_prefix('t'))?;
        if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) || t.len() > 12 {
            return None;
        }
        let ticket = TicketRef(t.parse().ok()?);
        let mac = mac.to_ascii_lowercase();
        self.secrets
            .iter()
            .any(|s| constant_time_eq(Self::mac(s, ticket).as_bytes(), mac.as_bytes()))
            .then_some(ticket)
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Reads the hints from a mail. `support` is our address; tokens are looked for in the addresses
/// the mail was delivered to and addressed to.
pub fn hints(mail: &InboundMail, support: &EmailAddress, signer: &ReplySigner) -> ThreadHints {
    let mut h = ThreadHints::default();
    let prefix = format!("{}+", support.local_part());
    for addr in mail.delivered_to.iter().chain(mail.recipients()) {
        if addr.domain() != support.domain() {
            continue;
        }
        if let Some(token) = addr.local_part().strip_prefix(&prefix) {
            if token.starts_with(['A', 'a']) {
                match signer.verify_agent(token) {
                    Some(t) => {
                        h.agent_token.get_or_insert(t);
                    }
                    None => h.bad_token = true,
                }
                continue;
            }
            match signer.verify(token) {
                Some(t) => {
                    h.token.get_or_insert(t);
                }
                None => h.bad_token = true,
            }
        }
    }
    // A read receipt names the mail it is about (RFC 8098 Original-Message-ID) even when a
    // client leaves In-Reply-To out.
    for id in mail
        .in_reply_to
        .iter()
        .chain(mail.receipt_for.iter())
        .chain(mail.references.iter().rev())
    {
        if !h.references.contains(id) {
            h.references.push(id.clone());
        }
    }
    h.tags = subject_tags(&mail.subject);
    h.tag = h.tags.first().copied();
    h.quoted_tags = quoted_tags(&mail.text, support, signer);
    h.bounced = mail.bounced_message_id.clone();
    h
}

/// The ticket tag in a subject, if any: the first of [`subject_tags`].
pub fn subject_tag(subject: &str) -> Option<TicketRef> {
    subject_tags(subject).first().copied()
}

/// Every ticket tag candidate in a subject: the exact form we write first, then the lenient
/// forms, each in order of appearance; no duplicates, no ticket 0. A customer's own code that
/// looks like a tag (`款号【T-88】`) does not hide our tag later in the subject: the store says
/// which candidates name tickets, and threading takes the first that does.
pub fn subject_tags(subject: &str) -> Vec<TicketRef> {
    let mut out = Vec::new();
    let exact = EXACT_TAG.captures_iter(subject);
    let lenient = SUBJECT_TAG.captures_iter(subject);
    for c in exact.chain(lenient) {
        if let Some(t) = c
            .get(1)
            .and_then(|m| m.as_str().parse::<i64>().ok())
            .filter(|n| *n > 0)
            .map(TicketRef)
        {
            if !out.contains(&t) {
                out.push(t);
            }
        }
    }
    out
}

/// Tickets a body names: validly signed reply addresses of ours first (they cannot be made up),
/// then our exact tag form. Searched in the first [`QUOTED_SEARCH_BYTES`].
pub fn quoted_tags(text: &str, support: &EmailAddress, signer: &ReplySigner) -> Vec<TicketRef> {
    let mut end = text.len().min(QUOTED_SEARCH_BYTES);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let text = &text[..end];
    let mut out = Vec::new();
    // Most mails carry neither: a byte search decides before any regex runs.
    let signed = memchr::memmem::find(text.as_bytes(), b"+T").is_some()
        || memchr::memmem::find(text.as_bytes(), b"+t").is_some();
    let tagged = memchr::memmem::find(text.as_bytes(), b"[#T-").is_some();
    if !signed && !tagged {
        return out;
    }
    let none = "";
    for c in SIGNED_ADDRESS.captures_iter(if signed { text } else { none }) {
        let ours = c[1].eq_ignore_ascii_case(support.local_part())
            && c[3].eq_ignore_ascii_case(support.domain());
        if let Some(t) = signer.verify(&c[2]).filter(|_| ours) {
            if !out.contains(&t) {
                out.push(t);
            }
        }
    }
    for c in EXACT_TAG.captures_iter(if tagged { text } else { none }) {
        if let Some(t) = c[1].parse::<i64>().ok().filter(|n| *n > 0).map(TicketRef) {
            if !out.contains(&t) {
                out.push(t);
            }
        }
    }
    out.truncate(10);
    out
}

/// Policy knobs for threading.
#[derive(Debug, Clone)]
pub struct ThreadPolicy {
    /// A reply to a ticket solved longer ago than this opens a new linked ticket.
    pub reopen_within_ms: Millis,
    /// Agent addresses: they may join any ticket they reference.
    pub agents: Vec<EmailAddress>,
    /// The organisation's own domains (the support address's first): a colleague there may
    /// comment on any ticket they reference, as an internal comment.
    pub internal_domains: Vec<String>,
}

impl ThreadPolicy {
    /// A colleague: an address at one of the organisation's domains who is not an agent.
    pub fn is_colleague(&self, a: &EmailAddress) -> bool {
        !self.agents.contains(a)
            && self
                .internal_domains
                .iter()
                .any(|d| a.domain().eq_ignore_ascii_case(d))
    }
}

pub fn thread(
    mail: &InboundMail,
    facts: &ThreadFacts,
    policy: &ThreadPolicy,
    now: Millis,
) -> ThreadDecision {
    let sender = mail.correspondent();
    let is_agent = sender.is_some_and(|s| policy.agents.contains(s) || policy.is_colleague(s));
    let follow = |f: &TicketFacts, via: ThreadVia| -> ThreadDecision {
        match f.solved_at {
            Some(at) if now - at > policy.reopen_within_ms => ThreadDecision::New {
                linked_to: Some(f.ticket),
                why: Some(format!("reply to {} solved too long ago", f.ticket)),
            },
            Some(_) => ThreadDecision::FollowUp {
                ticket: f.ticket,
                via,
                reopen: true,
            },
            None => ThreadDecision::FollowUp {
                ticket: f.ticket,
                via,
                reopen: false,
            },
        }
    };
    // A delivery report about a mail we sent belongs to that mail's ticket: its sender is a
    // mail server, never a participant, and it never reopens anything.
    if let Some(f) = &facts.by_bounce {
        return ThreadDecision::FollowUp {
            ticket: f.ticket,
            via: ThreadVia::Bounce,
            reopen: false,
        };
    }
    let mut stranger_of = None;
    for (f, via) in [
        (&facts.by_token, ThreadVia::Token),
        (&facts.by_reference, ThreadVia::Reference),
        (&facts.by_tag, ThreadVia::Tag),
        (&facts.by_quoted_tag, ThreadVia::QuotedTag),
    ] {
        let Some(f) = f else { continue };
        if is_agent || sender.is_some_and(|s| f.knows(s)) {
            return follow(f, via);
        }
        stranger_of.get_or_insert(f.ticket);
    }
    match stranger_of {
        Some(t) => ThreadDecision::New {
            linked_to: Some(t),
            why: Some(format!("sender is not a participant of {t}")),
        },
        None => ThreadDecision::New {
            linked_to: None,
            why: None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inbound::parse::parse;

    fn signer() -> ReplySigner {
        ReplySigner::new(
            Secret::new("current-secret-0123456789"),
            vec![Secret::new("old-secret-0123456789")],
        )
    }
    fn addr(s: &str) -> EmailAddress {
        EmailAddress::parse(s).expect("address")
    }
    fn policy() -> ThreadPolicy {
        ThreadPolicy {
            reopen_within_ms: 30 * 86_400_000,
            agents: vec![addr("agent@example.test")],
            internal_domains: vec!["example.test".into()],
        }
    }
    fn facts(t: i64, requester: &str) -> TicketFacts {
        TicketFacts {
            ticket: TicketRef(t),
            requester: addr(requester),
            participants: vec![],
            solved_at: None,
        }
    }

    #[test]
    fn tokens_verify_and_forgeries_do_not() {
        let s = signer();
        let tok = s.token(TicketRef(42));
        assert!(tok.starts_with("T000042."));
        assert_eq!(s.verify(&tok), Some(TicketRef(42)));
        assert_eq!(s.verify(&tok.to_lowercase()), Some(TicketRef(42)));
        assert_eq!(s.verify(&tok.replace("T000042", "T000043")), None);
        let old = ReplySigner::new(Secret::new("old-secret-0123456789"), vec![]);
        assert_eq!(s.verify(&old.token(TicketRef(7))), Some(TicketRef(7)));
    }

    #[test]
    fn agent_tokens_are_their_own_and_revocable() {
        let s = signer();
        let a = s.agent_token(TicketRef(42), 0);
        assert!(a.starts_with("A0.T000042."), "{a}");
        assert_eq!(s.verify_agent(&a), Some((TicketRef(42), 0)));
        assert_eq!(s.verify_agent(&a.to_lowercase()), Some((TicketRef(42), 0)));
        assert_eq!(
            s.verify_agent(&a.replace("A0.", "A1.")),
            None,
            "the epoch is signed"
        );
        // A customer's token is never an agent's, and the other way round.
        let c = s.token(TicketRef(42));
        assert_eq!(s.verify_agent(&format!("A0.{c}")), None);
        assert_eq!(s.verify(a.trim_start_matches("A0.")), None);
        let raw = format!(
            "From: lina@example.test\r\nTo: {}\r\nMessage-ID: <1@b.c>\r\n\r\nx",
            s.agent_address(&addr("support@example.test"), TicketRef(42), 3)
        );
        let h = hints(&parse(raw.as_bytes()), &addr("support@example.test"), &s);
        assert_eq!(h.agent_token, Some((TicketRef(42), 3)));
        assert_eq!(h.token, None);
    }

    #[test]
    fn subject_tags_survive_prefixes_and_mangling() {
        for s in [
            "Re: [#T-000123] 退款",
            "RE: RE: [#T-000123]",
            "回复：[#T-000123] 退款",
            "答复: 【#T-000123】退款",
            "转发: [ #t-000123 ]",
            "Fwd: [T000123] x",
        ] {
            assert_eq!(subject_tag(s), Some(TicketRef(123)), "{s}");
        }
        assert_eq!(subject_tag("退款"), None);
        assert_eq!(subject_tag("order [123]"), None);
    }

    #[test]
    fn hints_find_the_token_in_delivered_to() {
        let s = signer();
        let raw = format!(
            "From: a@b.c\r\nTo: support@example.test\r\nDelivered-To: {}\r\nMessage-ID: <1@b.c>\r\nIn-Reply-To: <x@example.test>\r\nSubject: Re: [#T-000009] hi\r\n\r\nx",
            s.reply_address(&addr("support@example.test"), TicketRef(9))
        );
        let h = hints(&parse(raw.as_bytes()), &addr("support@example.test"), &s);
        assert_eq!(h.token, Some(TicketRef(9)));
        assert_eq!(h.tag, Some(TicketRef(9)));
        assert_eq!(h.references[0].as_str(), "x@example.test");
    }

    #[test]
    fn every_tag_candidate_is_read_our_exact_form_first() {
        assert_eq!(
            subject_tags("款号【T-88】破损（服务单号 [#T-000123]）"),
            vec![TicketRef(123), TicketRef(88)]
        );
        assert_eq!(
            subject_tags("RE: [#T-000123] 回复: [#T-000123]"),
            vec![TicketRef(123)]
        );
        assert_eq!(subject_tags("[T-0] (#T000007)"), vec![TicketRef(7)]);
    }

    #[test]
    fn tags_and_signed_addresses_in_a_quoted_body_are_read() {
        let s = signer();
        let support = addr("support@example.test");
        let body = format!(
            "好的\n\n在 2026年11月30日，客服 <{}> 写道：\n> [#T-000042] 我们已收到您的来信\n",
            s.reply_address(&support, TicketRef(41))
        );
        assert_eq!(
            quoted_tags(&body, &support, &s),
            vec![TicketRef(41), TicketRef(42)]
        );
        // A forged or foreign signed address is not read; a lenient tag in a body is not either.
        let forged = "support+T000041.0000000000000000@example.test 【T-9】 other+T000041.abcdefabcdefabcd@example.test";
        assert_eq!(quoted_tags(forged, &support, &s), vec![]);
    }

    #[test]
    fn the_signed_address_admits_only_the_ticket_s_people() {
        let mail = parse(b"From: new@b.c\r\nMessage-ID: <1@b.c>\r\nSubject: x\r\n\r\nx");
        let f = ThreadFacts {
            by_token: Some(facts(5, "a@b.c")),
            ..Default::default()
        };
        assert_eq!(
            thread(&mail, &f, &policy(), 0),
            ThreadDecision::New {
                linked_to: Some(TicketRef(5)),
                why: Some("sender is not a participant of T-000005".into()),
            }
        );
        let mut known = facts(5, "a@b.c");
        known.participants.push(addr("new@b.c"));
        let f = ThreadFacts {
            by_token: Some(known),
            ..Default::default()
        };
        assert!(matches!(
            thread(&mail, &f, &policy(), 0),
            ThreadDecision::FollowUp {
                via: ThreadVia::Token,
                ..
            }
        ));
        // A quoted tag is a link like any other.
        let f = ThreadFacts {
            by_quoted_tag: Some(facts(5, "new@b.c")),
            ..Default::default()
        };
        assert!(matches!(
            thread(&mail, &f, &policy(), 0),
            ThreadDecision::FollowUp {
                via: ThreadVia::QuotedTag,
                ..
            }
        ));
    }

    #[test]
    fn the_requester_joins_by_tag_and_a_stranger_does_not() {
        let mail =
            parse(b"From: a@b.c\r\nMessage-ID: <1@b.c>\r\nSubject: Re: [#T-000005]\r\n\r\nx");
        let f = ThreadFacts {
            by_tag: Some(facts(5, "a@b.c")),
            ..Default::default()
        };
        assert_eq!(
            thread(&mail, &f, &policy(), 0),
            ThreadDecision::FollowUp {
                ticket: TicketRef(5),
                via: ThreadVia::Tag,
                reopen: false
            }
        );
        let f = ThreadFacts {
            by_tag: Some(facts(5, "victim@b.c")),
            ..Default::default()
        };
        assert!(matches!(
            thread(&mail, &f, &policy(), 0),
            ThreadDecision::New {
                linked_to: Some(TicketRef(5)),
                ..
            }
        ));
    }

    #[test]
    fn solved_tickets_reopen_until_they_are_too_old() {
        let mail = parse(b"From: a@b.c\r\nMessage-ID: <1@b.c>\r\nSubject: x\r\n\r\nx");
        let mut t = facts(5, "a@b.c");
        t.solved_at = Some(1_000);
        let f = ThreadFacts {
            by_reference: Some(t),
            ..Default::default()
        };
        assert_eq!(
            thread(&mail, &f, &policy(), 2_000),
            ThreadDecision::FollowUp {
                ticket: TicketRef(5),
                via: ThreadVia::Reference,
                reopen: true
            }
        );
        assert!(matches!(
            thread(&mail, &f, &policy(), 1_000 + 31 * 86_400_000),
            ThreadDecision::New {
                linked_to: Some(TicketRef(5)),
                ..
            }
        ));
    }

    #[test]
    fn a_delivery_report_about_our_mail_files_on_its_ticket() {
        let mail = parse(b"From: MAILER-DAEMON@mx.example\r\nMessage-ID: <b@mx.example>\r\nSubject: Undelivered\r\n\r\nx");
        let f = ThreadFacts {
            by_bounce: Some(facts(9, "customer@b.c")),
            ..Default::default()
        };
        assert_eq!(
            thread(&mail, &f, &policy(), 0),
            ThreadDecision::FollowUp {
                ticket: TicketRef(9),
                via: ThreadVia::Bounce,
                reopen: false
            }
        );
    }

    #[test]
    fn no_hints_means_a_new_ticket() {
        let mail = parse(
            b"From: a@b.c\r\nMessage-ID: <1@b.c>\r\nSubject: \xe9\x80\x80\xe6\xac\xbe\r\n\r\nx",
        );
        assert_eq!(
            thread(&mail, &ThreadFacts::default(), &policy(), 0),
            ThreadDecision::New {
                linked_to: None,
                why: None
            }
        );
    }
}
