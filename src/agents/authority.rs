//! Whose mail has an agent's authority over a ticket. Pure.
//!
//! Authority needs all of: a sender (From or Sender) on the agents list, a validly signed ticket
//! address (a forged one never qualifies), and — when `agent_mail.require_auth` says so — a DKIM
//! (or SPF) pass for the agent's domain in an Authentication-Results header written by our own
//! server (`authserv_id`). Anything else is customer mail and never runs a command.

use crate::config::AgentMailSettings;
use crate::domain::{Agent, InboundMail, TicketRef};

/// How much proof an agent's mail needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthRequirement {
    None,
    Dkim,
    DkimOrSpf,
}

/// How much proof an agent's mail needs (`[agent_mail]`).
#[derive(Debug, Clone)]
pub struct AuthorityPolicy {
    pub require: AuthRequirement,
    pub authserv_id: Option<String>,
}

impl AuthorityPolicy {
    pub fn new(mail: &AgentMailSettings) -> AuthorityPolicy {
        AuthorityPolicy {
            require: match mail.require_auth.as_str() {
                "dkim" => AuthRequirement::Dkim,
                "dkim_or_spf" => AuthRequirement::DkimOrSpf,
                _ => AuthRequirement::None,
            },
            authserv_id: mail.authserv_id.clone(),
        }
    }
}

impl Default for AuthorityPolicy {
    fn default() -> Self {
        AuthorityPolicy::new(&AgentMailSettings::default())
    }
}

/// Whether a mail carries an agent's authority over a ticket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Authority<'a> {
    Agent(&'a Agent),
    /// Not from an agent.
    None,
    /// From an agent's address but without authority (no valid signed address, or no
    /// authentication pass): treated as customer mail, and the refusal is recorded.
    Refused(String),
}

/// Decides whether `mail`, delivered to the signed address of `token` (if any), is an agent's.
pub fn recognise<'a>(
    mail: &InboundMail,
    token: Option<TicketRef>,
    agents: &'a [Agent],
    policy: &AuthorityPolicy,
) -> Authority<'a> {
    let agent = [mail.from.as_ref(), mail.sender.as_ref()]
        .into_iter()
        .flatten()
        .find_map(|a| agents.iter().find(|x| &x.address == a));
    let Some(agent) = agent else {
        return Authority::None;
    };
    if token.is_none() {
        return Authority::Refused(
            "not sent to a ticket's signed reply address (reply to the ticket's card or notice)"
                .into(),
        );
    }
    if policy.require != AuthRequirement::None {
        let domain = agent.address.domain();
        let passed = mail
            .headers("authentication-results")
            .any(|v| auth_pass(v, domain, policy));
        if !passed {
            return Authority::Refused(format!(
                "no {} pass for {domain} from {}",
                if policy.require == AuthRequirement::Dkim {
                    "DKIM"
                } else {
                    "DKIM or SPF"
                },
                policy.authserv_id.as_deref().unwrap_or("our server")
            ));
        }
    }
    Authority::Agent(agent)
}

/// One Authentication-Results header (RFC 8601): written by our server, with a pass for `domain`.
fn auth_pass(value: &str, domain: &str, policy: &AuthorityPolicy) -> bool {
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
        let dkim = r.starts_with("dkim=pass")
            && (r.contains(&format!("header.d={domain}"))
                || r.contains(&format!("header.i=@{domain}")));
        let spf = r.starts_with("spf=pass")
            && (r.contains(&format!("smtp.mailfrom={domain}"))
                || r.contains(&format!("@{domain}")));
        dkim || (policy.require == AuthRequirement::DkimOrSpf && spf)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inbound::parse::parse;
    use crate::testing::StageFixture;

    fn token_mail(from: &str, extra: &str) -> InboundMail {
        parse(
            format!("From: {from}\r\nTo: support+T000042.x@example.test\r\nMessage-ID: <a1@example.test>\r\n{extra}Subject: Re: [#T-000042] x\r\n\r\nhi")
                .as_bytes(),
        )
    }

    #[test]
    fn authority_needs_an_agent_a_signed_address_and_if_required_a_pass() {
        let f = StageFixture::new();
        let p = AuthorityPolicy::default();
        let t = Some(TicketRef(42));
        assert!(matches!(
            recognise(&token_mail("lina@example.test", ""), t, &f.agents, &p),
            Authority::Agent(a) if a.name == "李娜"
        ));
        assert_eq!(
            recognise(&token_mail("stranger@example.org", ""), t, &f.agents, &p),
            Authority::None
        );
        assert!(matches!(
            recognise(&token_mail("lina@example.test", ""), None, &f.agents, &p),
            Authority::Refused(_)
        ));
        let strict = AuthorityPolicy {
            require: AuthRequirement::Dkim,
            authserv_id: Some("mx.example.test".into()),
        };
        let pass = "Authentication-Results: mx.example.test; dkim=pass header.d=example.test header.s=s1\r\n";
        let forged = "Authentication-Results: evil.example; dkim=pass header.d=example.test\r\n";
        let fail = "Authentication-Results: mx.example.test; dkim=fail header.d=example.test\r\n";
        assert!(matches!(
            recognise(
                &token_mail("lina@example.test", pass),
                t,
                &f.agents,
                &strict
            ),
            Authority::Agent(_)
        ));
        for bad in [forged, fail, ""] {
            assert!(
                matches!(
                    recognise(&token_mail("lina@example.test", bad), t, &f.agents, &strict),
                    Authority::Refused(_)
                ),
                "{bad}"
            );
        }
    }
}
