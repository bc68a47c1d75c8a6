//! Any text as an agent's reply to a ticket's card: commands (`#resolve`, `#assign`, `#template`,
//! …), the forbidden-phrase check, greetings and sign-offs, rendering the customer's mail from
//! the templates — what `agents::mail::handle` does. The same text as a survey answer and as a
//! quoted reply to cut.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;
use supportd::domain::Category;
use supportd::testing::StageFixture;

fn fixture() -> &'static StageFixture {
    static F: OnceLock<StageFixture> = OnceLock::new();
    F.get_or_init(StageFixture::new)
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let f = fixture();
    let desk = f.desk();
    let t = f.ticket(Category::Complaint);
    let agent = &desk.agents[0];
    let raw = format!(
        "From: {}\r\nTo: support@example.test\r\nSubject: Re: [T-000001]\r\nMessage-ID: <fz@example.test>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{text}",
        agent.address
    );
    let mail = supportd::inbound::parse::parse(raw.as_bytes());
    let _ = supportd::agents::mail::handle(desk, &t, agent, &mail, text, &[], 1_800_000_000_000);
    let _ = supportd::agents::wording::check_wording(text, &desk.wording.forbidden);
    let _ = supportd::inbound::reply_text::extract(text);
});
