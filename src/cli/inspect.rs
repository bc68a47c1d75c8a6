//! `supportd inspect`: runs the pure stages on one message and prints what the daemon would
//! conclude. No side effects: nothing is stored or sent. Uses [`crate::inbound::analyze::Analyzer`], the
//! very code the daemon runs.

use crate::inbound::analyze::Analysis;
use serde_json::{json, Value};

/// The JSON document `inspect --json` prints (documented in the README).
pub fn to_json(a: &Analysis) -> Value {
    let m = &a.mail;
    json!({
        "message_id": m.message_id.as_str(),
        "synthetic_message_id": m.synthetic_id,
        "from": m.from.as_ref().map(|f| f.as_str()),
        "from_name": m.from_name,
        "to": m.to.iter().map(|a| a.as_str()).collect::<Vec<_>>(),
        "cc": m.cc.iter().map(|a| a.as_str()).collect::<Vec<_>>(),
        "subject": m.subject,
        "date": m.date.map(crate::clock::rfc3339),
        "in_reply_to": m.in_reply_to.iter().map(|i| i.as_str()).collect::<Vec<_>>(),
        "references": m.references.iter().map(|i| i.as_str()).collect::<Vec<_>>(),
        "language": a.classification.language.code(),
        "category": a.classification.category.as_str(),
        "severity": a.classification.severity.map(|s| s.as_str()),
        "urgent": a.classification.urgent,
        "vip": a.classification.vip,
        "priority": a.classification.priority.as_str(),
        "rules": a.classification.rules,
        "screen": {"verdict": a.screen.verdict.as_str(), "reason": a.screen.reason, "machine_evidence": a.screen.machine_evidence},
        "ticket_ref": a.hints.token.or(a.hints.tag).or(a.hints.quoted_tags.first().copied()).map(|t| t.to_string()),
        "ticket_ref_source": if a.hints.token.is_some() { Some("signed_address") } else if a.hints.tag.is_some() { Some("subject_tag") } else if !a.hints.quoted_tags.is_empty() { Some("quoted_tag") } else { None },
        "tag_candidates": a.hints.tags.iter().map(|t| t.to_string()).collect::<Vec<_>>(),
        "quoted_tags": a.hints.quoted_tags.iter().map(|t| t.to_string()).collect::<Vec<_>>(),
        "original_message_ids": m.original_ids.iter().map(|i| i.as_str()).collect::<Vec<_>>(),
        "forged_token": a.hints.bad_token,
        "bounced_message_id": m.bounced_message_id.as_ref().map(|i| i.as_str()),
        "text": m.text,
        "reply_text": a.reply_text,
        "attachments": m.attachments,
        "problems": m.problems,
        "repairs": m.repairs,
    })
}

/// A short human-readable report.
pub fn to_text(a: &Analysis) -> String {
    let v = to_json(a);
    let mut out = String::new();
    for key in [
        "message_id",
        "from",
        "subject",
        "date",
        "language",
        "category",
        "severity",
        "priority",
        "ticket_ref",
    ] {
        let val = match &v[key] {
            Value::Null => "-".to_string(),
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        out.push_str(&format!("{key:<12} {val}\n"));
    }
    out.push_str(&format!(
        "{:<12} urgent={} vip={}\n{:<12} {}\n",
        "flags",
        a.classification.urgent,
        a.classification.vip,
        "rules",
        a.classification.rules.join(", ")
    ));
    out.push_str(&format!(
        "{:<12} {} ({})\n",
        "screen",
        a.screen.verdict.as_str(),
        a.screen.reason
    ));
    if !a.mail.repairs.is_empty() {
        out.push_str(&format!(
            "{:<12} {}\n",
            "repairs",
            a.mail.repairs.join("; ")
        ));
    }
    if !a.mail.problems.is_empty() {
        out.push_str(&format!(
            "{:<12} {}\n",
            "problems",
            a.mail.problems.join("; ")
        ));
    }
    out.push_str("\n--- reply text ---\n");
    out.push_str(&a.reply_text);
    out.push('\n');
    out
}
