//! Robustness on the MIME corpus in ../shared/corpus/mime (mail-parser's own test messages: RFC
//! examples, legacy mail, other parsers' suites, deliberately malformed mail; see its SOURCE.md).
//! Every message goes through the inbound path the daemon runs — parse, screen, thread,
//! classify, apply, store — without a panic, is stored byte for byte, and ends readable (text)
//! or clearly flagged (problems). Skipped with a message when ../shared is not beside the
//! checkout.

use crate::helpers::*;
use std::path::{Path, PathBuf};

fn corpus() -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus/mime");
    p.join("SOURCE.md").exists().then_some(p)
}

fn emls(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(emls(&p));
        } else if p.extension().is_some_and(|x| x == "eml") {
            out.push(p);
        }
    }
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_corpus_mail_is_stored_intact_and_readable_or_flagged() {
    let Some(root) = corpus() else {
        eprintln!("skipped: ../shared/corpus/mime is not here (CI always has it)");
        return;
    };
    let files = emls(&root);
    assert!(files.len() >= 100, "{} files", files.len());
    let cfg = write_config(&AppOptions::default()).await;
    let store = supportd::store::Store::connect(&cfg.url, 2)
        .await
        .expect("store");
    store.migrate().await.expect("migrate");
    let pipeline = supportd::ingest::Pipeline::new(
        &cfg.settings,
        supportd::templates::Templates::load(&cfg.settings.service.templates_dir)
            .expect("templates"),
    );
    let (mut readable, mut flagged, mut both) = (0, 0, 0);
    for (i, path) in files.iter().enumerate() {
        let raw = std::fs::read(path).expect("read");
        let uid = i as u32 + 1;
        let at = supportd::store::ImapLocation {
            mailbox: "corpus/INBOX".into(),
            uidvalidity: 1,
            uid,
        };
        // A duplicate Message-ID in the corpus is a re-delivery: stored once, skipped after.
        let done = pipeline
            .process(&store, &at, &raw, 1_795_000_000_000)
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let Some(_) = done else { continue };
        let (stored, text, problems, _verdict) = store
            .stored_at("corpus/INBOX", uid)
            .await
            .expect("query")
            .unwrap_or_else(|| panic!("{} not stored", path.display()));
        assert_eq!(stored, raw, "{}: stored byte for byte", path.display());
        let is_readable = !text.trim().is_empty();
        let is_flagged = problems.is_some();
        assert!(
            is_readable || is_flagged,
            "{}: neither text, subject nor a flag",
            path.display()
        );
        readable += usize::from(is_readable);
        flagged += usize::from(is_flagged);
        both += usize::from(is_readable && is_flagged);
    }
    println!(
        "MIME corpus: {} mails stored intact; {readable} with text or subject, {flagged} flagged ({both} both)",
        files.len()
    );
}
