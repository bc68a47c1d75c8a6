//! Any text as a customer's answer to the satisfaction survey (1–5 for speed, solving, attitude,
//! overall, in digits, Chinese numerals, stars or words).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for replies in [false, true] {
        if let Some(s) = supportd::ticket::survey::parse(text, replies) {
            for v in [s.speed, s.solving, s.attitude, Some(s.overall)]
                .into_iter()
                .flatten()
            {
                assert!((1..=5).contains(&v), "a score out of 1-5: {v}");
            }
        }
    }
});
