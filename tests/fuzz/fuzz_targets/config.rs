//! Any text as the configuration file: it loads, or it is refused with errors naming keys —
//! never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Err(e) = supportd::config::Settings::from_toml(text, "fuzz.toml") {
        assert!(!e.to_string().is_empty());
    }
});
