//! Identities: mail addresses, Message-IDs, ticket numbers, and the language we answer in. Strings
//! from outside are parsed into these newtypes at the edge (`parse`, `config`), so the inside never
//! handles a bare, unchecked address or id.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A mail address, lower-cased, checked to have one `@` with something on both sides.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct EmailAddress(String);

impl EmailAddress {
    pub fn parse(s: &str) -> Option<EmailAddress> {
        let s = s
            .trim()
            .trim_start_matches('<')
            .trim_end_matches('>')
            .trim();
        let (local, domain) = s.rsplit_once('@')?;
        if local.is_empty()
            || domain.is_empty()
            || !domain.contains(|c: char| c.is_alphanumeric())
            || s.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            return None;
        }
        Some(EmailAddress(s.to_lowercase()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
    pub fn local_part(&self) -> &str {
        self.0.rsplit_once('@').map(|(l, _)| l).unwrap_or("")
    }
    pub fn domain(&self) -> &str {
        self.0.rsplit_once('@').map(|(_, d)| d).unwrap_or("")
    }

    /// A no-reply or machine role address: `noreply@`, `no-reply@`, `do-not-reply@`,
    /// `notifications@`, `mailer-daemon@`, a web form's sender…; nobody reads what is sent to it.
    pub fn is_no_reply(&self) -> bool {
        let local = self.local_part().split('+').next().unwrap_or("");
        let squashed: String = local
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .collect();
        ["noreply", "donotreply", "dontreply", "noresponse"]
            .iter()
            .any(|p| squashed.contains(p))
            || NO_REPLY_ROLES.contains(&squashed.as_str())
    }
}

/// Role local parts (punctuation removed) that are machines, not people.
const NO_REPLY_ROLES: &[&str] = &[
    "mailerdaemon",
    "postmaster",
    "notifications",
    "notification",
    "notify",
    "alerts",
    "bounce",
    "bounces",
    "forms",
    "webform",
    "webforms",
    "wordpress",
    "automailer",
    "autoconfirm",
    "system",
];

impl TryFrom<String> for EmailAddress {
    type Error = String;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        EmailAddress::parse(&s).ok_or_else(|| format!("not a mail address: {s:?}"))
    }
}
impl From<EmailAddress> for String {
    fn from(a: EmailAddress) -> String {
        a.0
    }
}
impl fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A Message-ID without its angle brackets. Mail without one gets a synthetic
/// `sha256.<hex>@supportd.invalid` id derived from its raw bytes, so re-fetching it dedupes too.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct MessageId(String);

impl MessageId {
    pub fn parse(s: &str) -> Option<MessageId> {
        let s = s
            .trim()
            .trim_start_matches('<')
            .trim_end_matches('>')
            .trim();
        if s.is_empty() || s.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return None;
        }
        Some(MessageId(s.to_string()))
    }
    pub fn synthetic(raw: &[u8]) -> MessageId {
        use sha2::{Digest, Sha256};
        let digest = Sha256::digest(raw);
        MessageId(format!(
            "sha256.{}@supportd.invalid",
            hex::encode(&digest[..16])
        ))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
    /// The id in angle brackets, as written in headers.
    pub fn bracketed(&self) -> String {
        format!("<{}>", self.0)
    }
    pub fn domain(&self) -> &str {
        self.0.rsplit_once('@').map(|(_, d)| d).unwrap_or("")
    }
}

impl fmt::Display for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A ticket's public number, `T-000123`. The number is the ticket's database id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TicketRef(pub i64);

impl TicketRef {
    /// Parses `T-000123`, `t-123` or `#T-000123`.
    pub fn parse(s: &str) -> Option<TicketRef> {
        let s = s.trim().trim_start_matches('#');
        let digits = s.strip_prefix("T-").or_else(|| s.strip_prefix("t-"))?;
        if digits.is_empty() || digits.len() > 12 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        digits.parse().ok().filter(|n| *n > 0).map(TicketRef)
    }
}

impl fmt::Display for TicketRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "T-{:06}", self.0)
    }
}

/// The language we answer a customer in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Language {
    #[serde(rename = "zh-Hans")]
    ZhHans,
    #[serde(rename = "zh-Hant")]
    ZhHant,
    #[serde(rename = "en")]
    En,
    #[serde(rename = "other")]
    Other,
}

impl Language {
    pub fn code(self) -> &'static str {
        match self {
            Language::ZhHans => "zh-Hans",
            Language::ZhHant => "zh-Hant",
            Language::En => "en",
            Language::Other => "other",
        }
    }
    pub fn from_code(s: &str) -> Option<Language> {
        match s {
            "zh-Hans" => Some(Language::ZhHans),
            "zh-Hant" => Some(Language::ZhHant),
            "en" => Some(Language::En),
            "other" => Some(Language::Other),
            _ => None,
        }
    }
    /// The language of the templates used for this customer: we write no language we have no
    /// approved wording for, so `other` gets English.
    pub fn template_language(self) -> Language {
        match self {
            Language::Other => Language::En,
            l => l,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_lower_cased_and_checked() {
        assert_eq!(
            EmailAddress::parse(" <Li.Lei@QQ.com> ").map(|a| a.to_string()),
            Some("li.lei@qq.com".to_string())
        );
        assert!(EmailAddress::parse("no-at-sign").is_none());
        assert!(EmailAddress::parse("a b@c.d").is_none());
        assert!(EmailAddress::parse("@c.d").is_none());
    }

    #[test]
    fn no_reply_and_machine_role_addresses_are_told_from_people() {
        for a in [
            "noreply@shop.example",
            "no-reply@accounts.example",
            "do_not_reply@bank.example",
            "DoNotReply@x.example",
            "notifications@github.example",
            "webform@company.example",
            "mailer-daemon@mx.example",
        ] {
            assert!(EmailAddress::parse(a).expect("addr").is_no_reply(), "{a}");
        }
        for a in [
            "wang@qq.com",
            "info@company.example",
            "reply@x.example",
            "norah@x.example",
        ] {
            assert!(!EmailAddress::parse(a).expect("addr").is_no_reply(), "{a}");
        }
    }

    #[test]
    fn ticket_refs_round_trip() {
        assert_eq!(TicketRef(123).to_string(), "T-000123");
        assert_eq!(TicketRef::parse("#T-000123"), Some(TicketRef(123)));
        assert_eq!(TicketRef::parse("T-1234567"), Some(TicketRef(1234567)));
        assert_eq!(TicketRef::parse("T-"), None);
        assert_eq!(TicketRef::parse("T-0"), None);
    }

    #[test]
    fn message_ids_lose_their_brackets() {
        let id = MessageId::parse("<abc@x.example>").expect("valid");
        assert_eq!(id.as_str(), "abc@x.example");
        assert_eq!(id.bracketed(), "<abc@x.example>");
        assert_eq!(id.domain(), "x.example");
        assert!(MessageId::parse("<>").is_none());
    }
}
