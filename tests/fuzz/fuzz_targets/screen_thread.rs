//! Any bytes as an inbound mail, judged: screening (auto-replies, bounces, bulk, loops) and the
//! threading hints (signed reply addresses, In-Reply-To/References, subject tags).
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;
use supportd::testing::StageFixture;

fn fixture() -> &'static StageFixture {
    static F: OnceLock<StageFixture> = OnceLock::new();
    F.get_or_init(StageFixture::new)
}

fuzz_target!(|data: &[u8]| {
    let desk = fixture().desk();
    let m = supportd::inbound::parse::parse(data);
    let new_text = supportd::inbound::reply_text::extract(&m.text);
    let _ = supportd::inbound::screen::screen(&m, &new_text, &desk.analyzer.screen);
    let _ = supportd::inbound::thread::hints(&m, &desk.support_address, &desk.signer);
    let _ = supportd::inbound::thread::subject_tag(&m.subject);
});
