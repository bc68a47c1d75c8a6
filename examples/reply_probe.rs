//! `cargo run --example reply_probe -- CASE_ID…`: shows the end of the extracted reply text next
//! to the expected one for cases of ../shared/corpus/replies, for tuning `reply_text`.

fn main() {
    for id in std::env::args().skip(1) {
        let dir = std::path::Path::new("../shared/corpus/replies").join(&id);
        let msg = std::fs::read_to_string(dir.join("message.txt")).unwrap_or_default();
        let exp = std::fs::read_to_string(dir.join("expected.txt")).unwrap_or_default();
        let got = supportd::inbound::reply_text::extract(&msg);
        let tail = |s: &str| {
            s.chars()
                .rev()
                .take(160)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect::<String>()
        };
        println!(
            "=== {id}\n--- got:\n{}\n--- expected:\n{}\n",
            tail(&got),
            tail(&exp)
        );
    }
}
