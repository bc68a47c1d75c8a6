//! Reply-text extraction against the 171 public cases in ../shared/corpus/replies (from
//! email_reply_parser, talon, crisp and the email_reply_parser crate; see its SOURCE.md).
//! Prints the exact-match rate and the failing cases; fails if the rate drops below the floor.
//! Skipped with a message when ../shared is not beside the checkout.

use std::path::{Path, PathBuf};

/// The rate this extractor reached when the test was written; a drop below it is a regression.
const FLOOR: f64 = 0.87;

fn corpus() -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus/replies");
    p.join("index.json").exists().then_some(p)
}

fn normalise(s: &str, keep_spaces: bool) -> String {
    if keep_spaces {
        s.split_whitespace().collect::<Vec<_>>().join(" ")
    } else {
        s.chars().filter(|c| !c.is_whitespace()).collect()
    }
}

/// The body text as the daemon sees it: HTML goes through the same parse stage as mail does.
fn body_text(dir: &Path) -> String {
    if let Ok(html) = std::fs::read_to_string(dir.join("message.html")) {
        let raw = format!("From: a@b.c\r\nMessage-ID: <x@b.c>\r\nContent-Type: text/html; charset=utf-8\r\n\r\n{html}");
        return supportd::inbound::parse::parse(raw.as_bytes()).text;
    }
    std::fs::read_to_string(dir.join("message.txt")).expect("message.txt")
}

#[test]
fn reply_text_extraction_on_the_public_corpus() {
    let Some(root) = corpus() else {
        eprintln!("skipped: ../shared/corpus/replies is not here (CI always has it)");
        return;
    };
    let index: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(root.join("index.json")).expect("index"))
            .expect("json");
    let cases = index.as_array().expect("array");
    let (mut pass, mut failed) = (0usize, Vec::new());
    for case in cases {
        let id = case["id"].as_str().expect("id");
        let dir = root.join(id);
        let expected = std::fs::read_to_string(dir.join("expected.txt")).expect("expected.txt");
        let keep_spaces = case["match"].as_str() != Some("nows");
        let got = supportd::inbound::reply_text::extract(&body_text(&dir));
        if normalise(&got, keep_spaces) == normalise(&expected, keep_spaces) {
            pass += 1;
        } else {
            failed.push(id.to_string());
        }
    }
    let rate = pass as f64 / cases.len() as f64;
    println!(
        "reply-text corpus: {pass}/{} exact ({:.1} %)",
        cases.len(),
        rate * 100.0
    );
    println!("failing: {}", failed.join(" "));
    assert!(
        rate >= FLOOR,
        "exact-match rate {:.1} % fell below {:.0} %",
        rate * 100.0,
        FLOOR * 100.0
    );
}
