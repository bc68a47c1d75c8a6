//! Stage `screen`: is this mail from a person, or from a machine? Pure.
//!
//! Verdicts: `human`, `auto_reply`, `bounce`, `list`, `bulk`, `loop`. Only `human` mail is ever
//! answered automatically; everything else is still stored (nothing is dropped) with the reason.
//!
//! Judgement, not keyword panic: a header that only machines set (RFC 3834 `Auto-Submitted`, a
//! null return path, a delivery-status report, list headers, our own loop header) decides on its
//! own; a subject that merely looks automatic ("Automatic reply:", "自动回复") decides only together
//! with a second machine signal, so a customer quoting such a subject in a real complaint is human.

use crate::inbound::parse::InboundMail;
use serde::Serialize;

/// The name of our own loop header, stamped on everything supportd sends.
pub const LOOP_HEADER: &str = "X-Supportd-Loop";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Human,
    AutoReply,
    Bounce,
    List,
    Bulk,
    Loop,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Human => "human",
            Verdict::AutoReply => "auto_reply",
            Verdict::Bounce => "bounce",
            Verdict::List => "list",
            Verdict::Bulk => "bulk",
            Verdict::Loop => "loop",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ScreenVerdict {
    pub verdict: Verdict,
    pub reason: String,
}

impl ScreenVerdict {
    fn new(verdict: Verdict, reason: impl Into<String>) -> Self {
        ScreenVerdict {
            verdict,
            reason: reason.into(),
        }
    }
    pub fn is_human(&self) -> bool {
        self.verdict == Verdict::Human
    }
}

/// What screening needs to know about us.
#[derive(Debug, Clone)]
pub struct ScreenContext {
    /// Domain of our generated Message-IDs.
    pub message_id_domain: String,
    /// Our support address (its local part too: `support+anything@` is us).
    pub support_address: crate::domain::EmailAddress,
}

const MACHINE_LOCALPARTS: &[&str] = &["mailer-daemon", "postmaster", "mail-daemon"];
const NOREPLY_LOCALPARTS: &[&str] = &[
    "noreply",
    "no-reply",
    "donotreply",
    "do-not-reply",
    "notifications",
    "bounce",
    "bounces",
];

/// Subject prefixes auto-responders use (lower-case). Weak signals: they decide only together with
/// another machine signal.
const AUTO_SUBJECTS: &[&str] = &[
    "automatic reply",
    "auto reply",
    "autoreply",
    "auto-reply",
    "auto:",
    "out of office",
    "out of the office",
    "away from my desk",
    "自动回复",
    "自動回覆",
    "自动答复",
    "自動答覆",
    "休假",
    "abwesenheitsnotiz",
    "réponse automatique",
    "we've received your request",
    "we have received your request",
    "request received",
    "ticket received",
    "your ticket has been created",
    "已收到您的",
    "已受理",
];

const BOUNCE_SUBJECTS: &[&str] = &[
    "undelivered mail returned to sender",
    "delivery status notification",
    "mail delivery failed",
    "undeliverable",
    "delivery failure",
    "returned mail",
    "failure notice",
    "退信",
    "系统退信",
];

pub fn screen(mail: &InboundMail, ctx: &ScreenContext) -> ScreenVerdict {
    // Loop: our own mail (or a copy of it) coming back.
    if mail.header(&LOOP_HEADER.to_ascii_lowercase()).is_some() {
        return ScreenVerdict::new(Verdict::Loop, format!("our own {LOOP_HEADER} header"));
    }
    if mail
        .message_id
        .domain()
        .eq_ignore_ascii_case(&ctx.message_id_domain)
        && !mail.synthetic_id
    {
        return ScreenVerdict::new(Verdict::Loop, "Message-ID is one of ours");
    }
    if let Some(from) = &mail.from {
        if is_us(from, &ctx.support_address) {
            return ScreenVerdict::new(Verdict::Loop, "sent from our own support address");
        }
    }

    // Bounces: delivery-status reports and the null sender.
    if mail.content_type == "multipart/report"
        && mail.report_type.as_deref() == Some("delivery-status")
    {
        return ScreenVerdict::new(
            Verdict::Bounce,
            "multipart/report; report-type=delivery-status",
        );
    }
    if mail.header("x-failed-recipients").is_some() {
        return ScreenVerdict::new(Verdict::Bounce, "X-Failed-Recipients header");
    }
    let from_local = mail.from.as_ref().map(|f| f.local_part()).unwrap_or("");
    let machine_sender = MACHINE_LOCALPARTS.contains(&from_local);
    let null_sender = mail.return_path.as_deref() == Some("");
    let subject = mail.subject.to_lowercase();
    if machine_sender && (null_sender || starts_with_any(&subject, BOUNCE_SUBJECTS)) {
        return ScreenVerdict::new(
            Verdict::Bounce,
            format!("from {from_local} with a bounce form"),
        );
    }
    if null_sender && starts_with_any(&subject, BOUNCE_SUBJECTS) {
        return ScreenVerdict::new(Verdict::Bounce, "null return path and a bounce subject");
    }

    // RFC 3834 and the vendor headers.
    if let Some(v) = mail.header("auto-submitted") {
        let v = v.trim().to_ascii_lowercase();
        if !v.is_empty() && v != "no" {
            return ScreenVerdict::new(Verdict::AutoReply, format!("Auto-Submitted: {v}"));
        }
    }
    for h in ["x-autoreply", "x-autorespond", "x-autogenerated"] {
        if let Some(v) = mail.header(h) {
            if !v.trim().eq_ignore_ascii_case("no") {
                return ScreenVerdict::new(Verdict::AutoReply, format!("{h} header"));
            }
        }
    }
    if mail
        .header("x-ms-exchange-generated-message-source")
        .is_some()
        || mail.header("x-ms-exchange-inbox-rules-loop").is_some()
    {
        return ScreenVerdict::new(Verdict::AutoReply, "generated by an Exchange rule");
    }
    let precedence = mail
        .header("precedence")
        .map(|p| p.trim().to_ascii_lowercase());
    match precedence.as_deref() {
        Some("auto_reply") => {
            return ScreenVerdict::new(Verdict::AutoReply, "Precedence: auto_reply");
        }
        Some("list") => return ScreenVerdict::new(Verdict::List, "Precedence: list"),
        Some(p @ ("bulk" | "junk")) => {
            return ScreenVerdict::new(Verdict::Bulk, format!("Precedence: {p}"));
        }
        _ => {}
    }
    if mail.header("list-id").is_some() || mail.header("list-post").is_some() {
        return ScreenVerdict::new(Verdict::List, "List-Id/List-Post header");
    }
    if mail.header("list-unsubscribe").is_some()
        || mail.header("feedback-id").is_some()
        || mail.header("x-campaign").is_some()
    {
        return ScreenVerdict::new(
            Verdict::Bulk,
            "marketing headers (List-Unsubscribe/Feedback-ID)",
        );
    }

    // Weak signals: need two.
    let mut weak = Vec::new();
    if starts_with_any(strip_reply_prefixes(&subject), AUTO_SUBJECTS) {
        weak.push("automatic-reply subject");
    }
    if let Some(v) = mail.header("x-auto-response-suppress") {
        let v = v.to_ascii_lowercase();
        if v.contains("all") || v.contains("oof") || v.contains("autoreply") {
            weak.push("X-Auto-Response-Suppress");
        }
    }
    if null_sender {
        weak.push("null return path");
    }
    if machine_sender || NOREPLY_LOCALPARTS.contains(&from_local) {
        weak.push("no-reply sender");
    }
    if weak.len() >= 2 {
        return ScreenVerdict::new(Verdict::AutoReply, weak.join(" + "));
    }
    if machine_sender || null_sender {
        return ScreenVerdict::new(Verdict::Bounce, weak.join(" + "));
    }
    ScreenVerdict::new(Verdict::Human, "no machine signals")
}

fn is_us(addr: &crate::domain::EmailAddress, support: &crate::domain::EmailAddress) -> bool {
    if addr.domain() != support.domain() {
        return false;
    }
    let local = addr.local_part();
    let base = local.split('+').next().unwrap_or(local);
    base == support.local_part()
}

fn starts_with_any(s: &str, prefixes: &[&str]) -> bool {
    let s = s.trim_start();
    prefixes.iter().any(|p| s.starts_with(p))
}

/// "Re: ", "回复：", "答复: " and friends.
fn strip_reply_prefixes(s: &str) -> &str {
    let mut s = s.trim_start();
    loop {
        let before = s;
        for p in [
            "re:",
            "re：",
            "aw:",
            "回复:",
            "回复：",
            "答复:",
            "答复：",
            "回覆:",
            "回覆：",
        ] {
            if let Some(rest) = s.strip_prefix(p) {
                s = rest.trim_start();
            }
        }
        if s == before {
            return s;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::EmailAddress;
    use crate::inbound::parse::parse;

    fn ctx() -> ScreenContext {
        ScreenContext {
            message_id_domain: "example.test".into(),
            support_address: EmailAddress::parse("support@example.test").expect("addr"),
        }
    }

    fn verdict(raw: &str) -> Verdict {
        screen(&parse(raw.as_bytes()), &ctx()).verdict
    }

    #[test]
    fn a_plain_customer_mail_is_human() {
        assert_eq!(
            verdict("From: a@qq.com\r\nMessage-ID: <1@qq.com>\r\nSubject: 退款\r\n\r\n你好"),
            Verdict::Human
        );
    }

    #[test]
    fn rfc3834_auto_submitted_is_an_auto_reply() {
        assert_eq!(
            verdict("From: a@b.c\r\nMessage-ID: <1@b.c>\r\nAuto-Submitted: auto-replied\r\nSubject: hi\r\n\r\nx"),
            Verdict::AutoReply
        );
        assert_eq!(
            verdict(
                "From: a@b.c\r\nMessage-ID: <1@b.c>\r\nAuto-Submitted: no\r\nSubject: hi\r\n\r\nx"
            ),
            Verdict::Human
        );
    }

    #[test]
    fn exchange_out_of_office_is_an_auto_reply() {
        let raw = "From: Zhang Wei <zhang@corp.example>\r\nMessage-ID: <2@corp.example>\r\nSubject: Automatic reply: your request\r\nX-Auto-Response-Suppress: All\r\n\r\nI am out of office.";
        assert_eq!(verdict(raw), Verdict::AutoReply);
    }

    #[test]
    fn qq_chinese_auto_reply_with_a_vendor_header() {
        let raw = "From: a@qq.com\r\nMessage-ID: <3@qq.com>\r\nSubject: =?UTF-8?B?6Ieq5Yqo5Zue5aSNOiDmgqjlpb0=?=\r\nX-Autoreply: yes\r\n\r\n我正在休假";
        assert_eq!(verdict(raw), Verdict::AutoReply);
    }

    #[test]
    fn a_complaint_quoting_an_automatic_reply_subject_is_human() {
        let raw = "From: angry@163.com\r\nMessage-ID: <4@163.com>\r\nSubject: Re: Automatic reply: my broken order\r\n\r\nYour auto reply is useless, I want a refund now.";
        assert_eq!(verdict(raw), Verdict::Human);
    }

    #[test]
    fn a_postfix_bounce_is_a_bounce() {
        let raw = "Return-Path: <>\r\nFrom: MAILER-DAEMON@example.test (Mail Delivery System)\r\nMessage-ID: <5@example.org>\r\nSubject: Undelivered Mail Returned to Sender\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nfailed\r\n--b--\r\n";
        assert_eq!(verdict(raw), Verdict::Bounce);
    }

    #[test]
    fn lists_and_bulk_are_recognised() {
        assert_eq!(
            verdict("From: a@b.c\r\nMessage-ID: <6@b.c>\r\nList-Id: <dev.lists.b.c>\r\nSubject: x\r\n\r\nx"),
            Verdict::List
        );
        assert_eq!(
            verdict("From: news@shop.example\r\nMessage-ID: <7@b.c>\r\nPrecedence: bulk\r\nSubject: sale\r\n\r\nx"),
            Verdict::Bulk
        );
        assert_eq!(
            verdict("From: news@shop.example\r\nMessage-ID: <8@b.c>\r\nList-Unsubscribe: <mailto:u@shop.example>\r\nSubject: sale\r\n\r\nx"),
            Verdict::Bulk
        );
    }

    #[test]
    fn our_own_mail_coming_back_is_a_loop() {
        assert_eq!(
            verdict("From: x@y.z\r\nMessage-ID: <abc@example.test>\r\nSubject: x\r\n\r\nx"),
            Verdict::Loop
        );
        assert_eq!(
            verdict("From: x@y.z\r\nMessage-ID: <abc@y.z>\r\nX-Supportd-Loop: example.test\r\nSubject: x\r\n\r\nx"),
            Verdict::Loop
        );
        assert_eq!(
            verdict("From: support+T000001.aa@example.test\r\nMessage-ID: <abc@y.z>\r\nSubject: x\r\n\r\nx"),
            Verdict::Loop
        );
    }
}
