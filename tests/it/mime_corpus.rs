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
async fn every_corpus_mail_is_stored_intact_and_readable_or_flagged_on_sqlite() {
    corpus_through_the_inbound_path(Db::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_corpus_mail_is_stored_intact_and_readable_or_flagged_on_postgresql() {
    corpus_through_the_inbound_path(Db::Postgres).await;
}

async fn corpus_through_the_inbound_path(db: Db) {
    let Some(root) = corpus() else {
        eprintln!("skipped: ../shared/corpus/mime is not here (CI always has it)");
        return;
    };
    let files = emls(&root);
    assert!(files.len() >= 100, "{} files", files.len());
    let cfg = write_config(&AppOptions {
        db,
        ..Default::default()
    })
    .await;
    let (store, desk) = cfg.store_and_desk(2).await;
    // As the daemon does: fetched batches, group commit.
    let mails: Vec<(u32, Vec<u8>)> = files
        .iter()
        .enumerate()
        .map(|(i, p)| (i as u32 + 1, std::fs::read(p).expect("read")))
        .collect();
    for chunk in mails.chunks(25) {
        supportd::inbound::intake::store_batch(
            &store,
            &desk,
            supportd::inbound::intake::Batch::inbox("corpus/INBOX", 1, chunk),
            1_795_000_000_000,
        )
        .await
        .expect("batch stored");
    }
    let (mut readable, mut flagged, mut both) = (0, 0, 0);
    for (i, path) in files.iter().enumerate() {
        let raw = &mails[i].1;
        let uid = i as u32 + 1;
        // A duplicate Message-ID in the corpus is a re-delivery: stored once, skipped after.
        let Some((stored, text, problems, _verdict)) =
            store.stored_at("corpus/INBOX", uid).await.expect("query")
        else {
            let p = supportd::inbound::parse::parse(raw);
            assert!(
                mails[..i]
                    .iter()
                    .any(|(_, r)| supportd::inbound::parse::parse(r).message_id == p.message_id),
                "{} not stored and not a duplicate",
                path.display()
            );
            continue;
        };
        let _ = store.stored_at("corpus/INBOX", uid).await.expect("query");
        assert_eq!(&stored, raw, "{}: stored byte for byte", path.display());
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
