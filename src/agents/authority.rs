//! Whose mail has an agent's authority over a ticket. Pure.
//!
//! Nothing a customer holds proves an agent. A ticket has two signed reply addresses: the
//! customer's (`support+T000123.<mac>@…`, in every mail the customer gets) and the agents'
//! (`support+A0.T000123.<mac>@…`, a separate HMAC domain, only in cards and notices). A mail is
//! an agent's when all of these hold:
//! - it came to the ticket's agents' address, of the ticket's current generation (rotating it,
//!   `supportd ticket rotate-token`, revokes older cards);
//! - its From or Sender is on the agents list;
//! - the proof `agent_mail.require_auth` asks for is there: a DKIM (or SPF) pass for the agent's
//!   domain in an Authentication-Results header (RFC 8601) written by our own server
//!   (`authserv_id`), or the trace of an authenticated submission by that agent through our own
//!   MTA (`submission`: a `Received` header by one of `trusted_hosts`, above any other, naming
//!   `Authenticated sender: <agent>`; or `auth=pass smtp.auth=<agent>` from `authserv_id`).
//!
//! An agent's address at the customer's reply address is a customer follow-up that claims to be
//! from an agent (never a command); an agent's mail at the agents' address without the proof, or
//! at a revoked one, goes back to the agent with the reason. Old cards (from before agents'
//! addresses) carry the customer's address: agents' mail to them is accepted, with the proof,
//! for `legacy_card_days` after the upgrade, and only for tickets from before it.

use crate::config::AgentMailSettings;
use crate::domain::{Agent, InboundMail, Millis, ThreadHints, TicketRef, TicketState};
use regex::Regex;
use std::sync::LazyLock;

/// How much proof an agent's mail needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthRequirement {
    /// The agents' address and a listed From (the From header can be forged: `supportd check`
    /// warns).
    None,
    Dkim,
    DkimOrSpf,
    /// An authenticated submission through our own MTA.
    Submission,
}

/// `[agent_mail]`, compiled.
#[derive(Debug, Clone)]
pub struct AuthorityPolicy {
    pub require: AuthRequirement,
    /// Our receiving server's authserv-id: only its Authentication-Results are trusted.
    pub authserv_id: Option<String>,
    /// Our own MTAs (the `by` host of their `Received` headers), for `submission`.
    pub trusted_hosts: Vec<String>,
    /// Until when agents' mail to an old card's customer address is accepted (tickets from
    /// before agents' addresses only); `None`: never.
    pub legacy_until: Option<Millis>,
    /// How long after the upgrade old cards keep working.
    pub legacy_ms: Millis,
}

impl AuthorityPolicy {
    pub fn new(mail: &AgentMailSettings) -> AuthorityPolicy {
        AuthorityPolicy {
            require: match mail.require_auth.as_str() {
                "dkim" => AuthRequirement::Dkim,
                "dkim_or_spf" => AuthRequirement::DkimOrSpf,
                "submission" => AuthRequirement::Submission,
                _ => AuthRequirement::None,
            },
            authserv_id: mail.authserv_id.clone(),
            trusted_hosts: mail
                .trusted_hosts
                .iter()
                .map(|h| h.to_ascii_lowercase())
                .collect(),
            legacy_until: None,
            legacy_ms: mail.legacy_card_days as i64 * 86_400_000,
        }
    }

    /// Old cards work until `legacy_card_days` after `since` (when agents' addresses came in).
    pub fn with_upgrade_at(mut self, since: Millis) -> AuthorityPolicy {
        self.legacy_until = Some(since + self.legacy_ms);
        self
    }
}

impl Default for AuthorityPolicy {
    fn default() -> Self {
        AuthorityPolicy::new(&AgentMailSettings::default())
    }
}

/// Why an agent's address got no authority (the `reason` of the `agent_authority_refused`
/// event and of `supportd_agent_authority_refused_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Sent to the customer's reply address, which every customer mail carries.
    CustomerAddress,
    /// Sent to no ticket's agents' address.
    NoAgentAddress,
    /// The agents' address of an older generation (the ticket's was rotated).
    Revoked,
    /// The proof `require_auth` asks for is missing.
    NoProof,
    /// The mail names more than one From or Sender (RFC 5322 §3.6 allows one): a spoofing
    /// pattern, whichever of them is the agent's.
    DuplicateSender,
}

impl Refusal {
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::CustomerAddress => "customer_address",
            Refusal::NoAgentAddress => "no_agent_address",
            Refusal::Revoked => "revoked",
            Refusal::NoProof => "no_proof",
            Refusal::DuplicateSender => "duplicate_sender",
        }
    }
}

/// What a mail's sender may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Authority<'a> {
    /// An agent's mail about this ticket: its commands run, its text may reach the customer.
    Agent {
        agent: &'a Agent,
        /// Accepted at an old card's customer address during the transition window.
        legacy: bool,
    },
    /// An agent's mail at the agents' address that lacks the proof or came to a revoked card:
    /// the draft goes back to the agent with the reason; nothing else happens.
    Returned {
        agent: &'a Agent,
        why: String,
        reason: Refusal,
    },
    /// Claims an agent's address (From or Sender) without authority: customer mail, flagged.
    Claimed {
        agent: &'a Agent,
        why: String,
        reason: Refusal,
    },
    /// Not from an agents' address.
    None,
}

/// Decides what `mail` may do. `ticket`: the ticket its agents' or customer's address names
/// (agents' address first), if that ticket exists.
pub fn recognise<'a>(
    mail: &InboundMail,
    hints: &ThreadHints,
    ticket: Option<&TicketState>,
    agents: &'a [Agent],
    policy: &AuthorityPolicy,
    now: Millis,
) -> Authority<'a> {
    let agent = [mail.from.as_ref(), mail.sender.as_ref()]
        .into_iter()
        .flatten()
        .find_map(|a| agents.iter().find(|x| &x.address == a));
    let Some(agent) = agent else {
        return Authority::None;
    };
    let claimed = |reason: Refusal, why: &str| Authority::Claimed {
        agent,
        why: why.to_string(),
        reason,
    };
    if mail
        .duplicate_headers
        .iter()
        .any(|h| h == "from" || h == "sender")
    {
        return claimed(
            Refusal::DuplicateSender,
            "the mail has more than one From or Sender field, a spoofing pattern",
        );
    }
    match (hints.agent_token, hints.token, ticket) {
        (Some((t, epoch)), _, Some(ticket)) if ticket.ticket == t => {
            if epoch != ticket.agent_epoch.unwrap_or(0) {
                return Authority::Returned {
                    agent,
                    why: "this card's address was revoked (the ticket's agents' address was renewed): reply to the newest card or notice, such as this one".into(),
                    reason: Refusal::Revoked,
                };
            }
            match proof(mail, agent, policy) {
                Ok(()) => Authority::Agent {
                    agent,
                    legacy: false,
                },
                Err(why) => Authority::Returned {
                    agent,
                    why,
                    reason: Refusal::NoProof,
                },
            }
        }
        (None, Some(t), Some(ticket)) if ticket.ticket == t => {
            let legacy = ticket.agent_epoch.is_none()
                && policy.legacy_until.is_some_and(|until| now < until);
            if !legacy {
                return claimed(
                    Refusal::CustomerAddress,
                    "sent to the customer's reply address, which the customer has too: agents reply to a card or notice",
                );
            }
            match proof(mail, agent, policy) {
                Ok(()) => Authority::Agent {
                    agent,
                    legacy: true,
                },
                Err(why) => claimed(Refusal::NoProof, &why),
            }
        }
        _ => claimed(
            Refusal::NoAgentAddress,
            "not sent to a ticket's agents' address (reply to the ticket's card or notice)",
        ),
    }
}

/// The proof `require_auth` asks for, or why it is missing.
fn proof(mail: &InboundMail, agent: &Agent, policy: &AuthorityPolicy) -> Result<(), String> {
    let domain = agent.address.domain();
    let from_us = policy.authserv_id.as_deref().unwrap_or("our server");
    match policy.require {
        AuthRequirement::None => Ok(()),
        AuthRequirement::Dkim | AuthRequirement::DkimOrSpf => {
            let passed = mail
                .headers("authentication-results")
                .any(|v| results_pass(v, agent, policy));
            if passed {
                Ok(())
            } else {
                Err(format!(
                    "no {} pass for {domain} from {from_us}",
                    if policy.require == AuthRequirement::Dkim {
                        "DKIM"
                    } else {
                        "DKIM or SPF"
                    },
                ))
            }
        }
        AuthRequirement::Submission => {
            if submitted_by(mail, agent, &policy.trusted_hosts)
                || mail
                    .headers("authentication-results")
                    .any(|v| results_pass(v, agent, policy))
            {
                Ok(())
            } else {
                Err(format!(
                    "no trace of an authenticated submission by {} through {} (send through your organisation's mail server, logged in as yourself)",
                    agent.address,
                    if policy.trusted_hosts.is_empty() {
                        from_us.to_string()
                    } else {
                        policy.trusted_hosts.join(", ")
                    }
                ))
            }
        }
    }
}

/// One Authentication-Results header (RFC 8601), written by our server, with a pass for the
/// agent: DKIM for the agent's domain (or SPF with `dkim_or_spf`), or an authenticated
/// submission as the agent (`auth=pass smtp.auth=…`, with `submission`).
fn results_pass(value: &str, agent: &Agent, policy: &AuthorityPolicy) -> bool {
    let domain = agent.address.domain();
    let mut parts = value.split(';');
    let id = parts.next().unwrap_or("").trim();
    let id = id.split_whitespace().next().unwrap_or("");
    if policy
        .authserv_id
        .as_deref()
        .is_none_or(|want| !want.eq_ignore_ascii_case(id))
    {
        return false;
    }
    parts.any(|r| {
        let r = r.trim().to_ascii_lowercase();
        let props: Vec<&str> = r.split_whitespace().collect();
        let has = |p: &str| props.contains(&p);
        match policy.require {
            AuthRequirement::Dkim | AuthRequirement::DkimOrSpf if r.starts_with("dkim=pass") => {
                has(&format!("header.d={domain}")) || has(&format!("header.i=@{domain}"))
            }
            AuthRequirement::DkimOrSpf if r.starts_with("spf=pass") => {
                has(&format!("smtp.mailfrom={domain}"))
                    || props.iter().any(|p| {
                        p.strip_prefix("smtp.mailfrom=")
                            .and_then(|a| a.rsplit_once('@'))
                            .is_some_and(|(_, d)| d == domain)
                    })
            }
            AuthRequirement::Submission if r.starts_with("auth=pass") => {
                has(&format!("smtp.auth={}", agent.address.as_str()))
            }
            _ => false,
        }
    })
}

static RECEIVED_BY: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i)\bby\s+([^\s;()]+)").expect("static regex"));
static AUTHENTICATED_SENDER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)\(authenticated sender:\s*<?([^\s<>()]+)>?\s*\)").expect("static regex")
});

static RECEIVED_WITH: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i)\bwith\s+([a-z0-9]+)").expect("static regex"));

/// Whether our own MTA recorded an authenticated submission by `agent`. Received headers are
/// prepended, so the newest is on top and anything a sender planted is below the hop where our
/// MTA accepted the mail. Walking from the top past our local deliveries (`with LMTP`), the first
/// hop must be written by one of `trusted` hosts and name the agent as its authenticated sender
/// (Postfix `smtpd_sasl_authenticated_header = yes`: `(Authenticated sender: …)`). A HELO name
/// proves nothing, so hosts are only trusted as writers (`by`), never as senders (`from`).
fn submitted_by(mail: &InboundMail, agent: &Agent, trusted: &[String]) -> bool {
    for r in mail.headers("received") {
        let by = RECEIVED_BY
            .captures(r)
            .and_then(|c| c.get(1))
            .map(|m| m.as_str().to_ascii_lowercase());
        if !by.is_some_and(|b| trusted.contains(&b)) {
            return false;
        }
        let with = RECEIVED_WITH
            .captures(r)
            .and_then(|c| c.get(1))
            .map(|m| m.as_str().to_ascii_lowercase());
        if with.as_deref() == Some("lmtp") {
            continue;
        }
        let sender = AUTHENTICATED_SENDER
            .captures(r)
            .and_then(|c| c.get(1))
            .map(|m| m.as_str().to_ascii_lowercase());
        return sender.as_deref() == Some(agent.address.as_str());
    }
    false
}

/// The ticket a mail's signed addresses name: the agents' address first.
pub fn named_ticket(hints: &ThreadHints) -> Option<TicketRef> {
    hints.agent_token.map(|(t, _)| t).or(hints.token)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inbound::parse::parse;
    use crate::testing::StageFixture;

    fn mail(from: &str, extra: &str) -> InboundMail {
        parse(
            format!("{extra}From: {from}\r\nTo: support@example.test\r\nMessage-ID: <a1@example.test>\r\nSubject: Re: [#T-000042] x\r\n\r\nhi")
                .as_bytes(),
        )
    }

    fn at_agents(epoch: u32) -> ThreadHints {
        ThreadHints {
            agent_token: Some((TicketRef(42), epoch)),
            ..Default::default()
        }
    }

    fn at_customer() -> ThreadHints {
        ThreadHints {
            token: Some(TicketRef(42)),
            ..Default::default()
        }
    }

    #[test]
    fn only_the_agents_address_with_a_listed_sender_carries_authority() {
        let f = StageFixture::new();
        let p = AuthorityPolicy::default();
        let t = f.ticket(crate::domain::Category::Inquiry);
        let lina = mail("lina@example.test", "");
        assert!(matches!(
            recognise(&lina, &at_agents(0), Some(&t), &f.agents, &p, 0),
            Authority::Agent { agent, legacy: false } if agent.name == "李娜"
        ));
        // The customer's own reply address, with an agent's From: a claim, never authority.
        assert!(matches!(
            recognise(&lina, &at_customer(), Some(&t), &f.agents, &p, 0),
            Authority::Claimed {
                reason: Refusal::CustomerAddress,
                ..
            }
        ));
        assert!(matches!(
            recognise(&lina, &ThreadHints::default(), Some(&t), &f.agents, &p, 0),
            Authority::Claimed {
                reason: Refusal::NoAgentAddress,
                ..
            }
        ));
        let stranger = mail("stranger@example.org", "");
        assert_eq!(
            recognise(&stranger, &at_agents(0), Some(&t), &f.agents, &p, 0),
            Authority::None
        );
        // A rotated address: the old card goes back to the agent.
        let mut rotated = t.clone();
        rotated.agent_epoch = Some(1);
        assert!(matches!(
            recognise(&lina, &at_agents(0), Some(&rotated), &f.agents, &p, 0),
            Authority::Returned {
                reason: Refusal::Revoked,
                ..
            }
        ));
    }

    #[test]
    fn a_second_from_or_sender_never_grants_authority() {
        let f = StageFixture::new();
        let p = AuthorityPolicy::default();
        let t = f.ticket(crate::domain::Category::Inquiry);
        // The agent's address first (what clients show), the customer's second; and the other
        // way round. Neither is an agent's mail.
        let customer_first = mail("lina@example.test", "From: someone@example.org\r\n");
        let agent_first = parse(
            b"From: lina@example.test\r\nFrom: someone@example.org\r\nTo: support@example.test\r\nMessage-ID: <d1@example.test>\r\nSubject: x\r\n\r\nhi",
        );
        assert_eq!(agent_first.duplicate_headers, vec!["from".to_string()]);
        assert!(matches!(
            recognise(&agent_first, &at_agents(0), Some(&t), &f.agents, &p, 0),
            Authority::Claimed {
                reason: Refusal::DuplicateSender,
                ..
            }
        ));
        assert_eq!(
            recognise(&customer_first, &at_agents(0), Some(&t), &f.agents, &p, 0),
            Authority::None
        );
        let two_senders = mail(
            "lina@example.test",
            "Sender: lina@example.test\r\nSender: x@example.org\r\n",
        );
        assert!(matches!(
            recognise(&two_senders, &at_agents(0), Some(&t), &f.agents, &p, 0),
            Authority::Claimed {
                reason: Refusal::DuplicateSender,
                ..
            }
        ));
    }

    #[test]
    fn old_cards_work_for_old_tickets_during_the_transition_only() {
        let f = StageFixture::new();
        let p = AuthorityPolicy::default().with_upgrade_at(1_000);
        let lina = mail("lina@example.test", "");
        let mut old = f.ticket(crate::domain::Category::Inquiry);
        old.agent_epoch = None;
        assert!(matches!(
            recognise(&lina, &at_customer(), Some(&old), &f.agents, &p, 2_000),
            Authority::Agent { legacy: true, .. }
        ));
        let after = 1_000 + p.legacy_ms + 1;
        assert!(matches!(
            recognise(&lina, &at_customer(), Some(&old), &f.agents, &p, after),
            Authority::Claimed { .. }
        ));
        let new = f.ticket(crate::domain::Category::Inquiry);
        assert!(matches!(
            recognise(&lina, &at_customer(), Some(&new), &f.agents, &p, 2_000),
            Authority::Claimed { .. }
        ));
    }

    #[test]
    fn dkim_needs_our_own_server_s_pass_for_the_agent_s_domain() {
        let f = StageFixture::new();
        let t = f.ticket(crate::domain::Category::Inquiry);
        let strict = AuthorityPolicy {
            require: AuthRequirement::Dkim,
            authserv_id: Some("mx.example.test".into()),
            ..AuthorityPolicy::default()
        };
        let pass = "Authentication-Results: mx.example.test; dkim=pass header.d=example.test header.s=s1\r\n";
        let forged = "Authentication-Results: evil.example; dkim=pass header.d=example.test\r\n";
        let fail = "Authentication-Results: mx.example.test; dkim=fail header.d=example.test\r\n";
        let other = "Authentication-Results: mx.example.test; dkim=pass header.d=example.test.evil.example\r\n";
        assert!(matches!(
            recognise(
                &mail("lina@example.test", pass),
                &at_agents(0),
                Some(&t),
                &f.agents,
                &strict,
                0
            ),
            Authority::Agent { .. }
        ));
        for bad in [forged, fail, other, ""] {
            assert!(
                matches!(
                    recognise(
                        &mail("lina@example.test", bad),
                        &at_agents(0),
                        Some(&t),
                        &f.agents,
                        &strict,
                        0
                    ),
                    Authority::Returned {
                        reason: Refusal::NoProof,
                        ..
                    }
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn an_authenticated_submission_is_read_from_our_own_received_headers_only() {
        let f = StageFixture::new();
        let t = f.ticket(crate::domain::Category::Inquiry);
        let p = AuthorityPolicy {
            require: AuthRequirement::Submission,
            trusted_hosts: vec!["mail.example.test".into()],
            ..AuthorityPolicy::default()
        };
        let lmtp = "Received: from mail.example.test\r\n\tby mail.example.test with LMTP id 8KB5\r\n\t(envelope-from <lina@example.test>); Mon, 30 Nov 2026 10:00:00 +0000\r\n";
        let ours = "Received: from [127.0.0.1] (localhost [127.0.0.1])\r\n\t(Authenticated sender: lina@example.test)\r\n\tby mail.example.test (Postfix) with ESMTPSA id 4F2;\r\n\tMon, 30 Nov 2026 10:00:00 +0000 (UTC)\r\n";
        let via_mx = "Received: from evil.example (evil.example [203.0.113.9])\r\n\tby mail.example.test (Postfix) with ESMTP id 9A1;\r\n\tMon, 30 Nov 2026 10:00:01 +0000 (UTC)\r\n";
        let planted = "Received: from x (x [10.0.0.1])\r\n\t(Authenticated sender: lina@example.test)\r\n\tby mail.example.test (Postfix) with ESMTPSA id 1;\r\n\tMon, 30 Nov 2026 09:00:00 +0000 (UTC)\r\n";
        let foreign = "Received: from x by relay.evil.example with ESMTP id 2; Mon, 30 Nov 2026 09:30:00 +0000\r\n";
        let delivered = format!("{lmtp}{ours}");
        assert!(matches!(
            recognise(
                &mail("lina@example.test", &delivered),
                &at_agents(0),
                Some(&t),
                &f.agents,
                &p,
                0
            ),
            Authority::Agent { .. }
        ));
        // An outsider's mail: our MX's plain Received on top, a planted "authenticated" one
        // below a foreign hop.
        let attack = format!("{lmtp}{via_mx}{planted}{foreign}{planted}");
        assert!(matches!(
            recognise(
                &mail("lina@example.test", &attack),
                &at_agents(0),
                Some(&t),
                &f.agents,
                &p,
                0
            ),
            Authority::Returned {
                reason: Refusal::NoProof,
                ..
            }
        ));
        // Authenticated as someone else.
        let other = ours.replace("lina@example.test", "tom@example.test");
        assert!(matches!(
            recognise(
                &mail("lina@example.test", &other),
                &at_agents(0),
                Some(&t),
                &f.agents,
                &p,
                0
            ),
            Authority::Returned { .. }
        ));
    }
}
