//! Any subject and text (split at the first newline) from any sender: category, severity,
//! urgency, VIP, priority and language.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

fn classifier() -> &'static supportd::inbound::classify::Classifier {
    static C: OnceLock<supportd::inbound::classify::Classifier> = OnceLock::new();
    C.get_or_init(supportd::inbound::classify::Classifier::builtin)
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (subject, body) = text.split_once('\n').unwrap_or((text, ""));
    let from = supportd::domain::EmailAddress::parse("kehu@qq.com");
    let _ = classifier().classify(from.as_ref(), subject, body);
});
