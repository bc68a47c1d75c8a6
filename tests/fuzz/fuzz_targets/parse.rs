//! Any bytes as an inbound mail: MIME structure, RFC 2047/2231 words, charset repair (GBK,
//! GB18030, Big5, broken UTF-8, 8-bit headers), HTML to text, attachments, and the headers-only
//! path of a mail over the size limit. Nothing may panic, loop or blow up.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let m = supportd::inbound::parse::parse(data);
    let _ = m.correspondent();
    let _ = supportd::inbound::parse::parse_bounded(data, data.len() / 2);
});
