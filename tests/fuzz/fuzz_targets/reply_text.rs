//! Any text as a mail's body: the new text is cut from quoted history, quote headers in any
//! wording, signatures and contact blocks, picture markers.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let out = supportd::inbound::reply_text::extract_known(text, &["李娜", "lina@example.test"]);
    // Never more text than came in (entities decode to fewer bytes or as many).
    assert!(out.text.len() <= text.len() + 16, "{} > {}", out.text.len(), text.len());
});
