//! The classify stage on the labelled evaluation set in tests/fixtures/classification (150 mails
//! written for supportd in zh-Hans, zh-Hant and en). Each case goes through the same pure path as
//! a fetched mail (parse → reply text → classify). Prints accuracy per field and every miss; fails
//! when a field falls below its floor.

use crate::helpers::*;
use serde::Deserialize;
use std::sync::Arc;
use supportd::domain::EmailAddress;
use supportd::inbound::analyze::Analyzer;
use supportd::inbound::classify::{Classifier, ClassifySettings};
use supportd::inbound::thread::ReplySigner;
use supportd::store::{TicketFilter, TicketOrder};

#[derive(Debug, Deserialize)]
struct Case {
    id: String,
    from: String,
    subject: String,
    body: String,
    category: String,
    #[serde(default)]
    severity: Option<String>,
    #[serde(default)]
    urgent: bool,
    #[serde(default)]
    vip: bool,
    language: String,
    #[serde(default)]
    note: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Set {
    case: Vec<Case>,
}

/// Floors: issue #4 asks for category ≥ 90 % and urgent ≥ 95 %; the floors lock in what was reached
/// (a drop below is a regression), with a little room.
const FLOORS: &[(&str, f64)] = &[
    ("category", 0.95),
    ("severity", 0.90),
    ("urgent", 0.95),
    ("vip", 1.0),
    ("language", 0.99),
];

/// The two sets written later as held-out sets. Their first measurements (category 48.9 % and
/// 60.0 %) are the honest figures for unseen mail and are recorded in the README; the rules were
/// broadened after each, so these floors only guard against regressions.
const HOLDOUT_FLOORS: &[(&str, f64)] = &[
    ("category", 0.90),
    ("severity", 0.90),
    ("urgent", 0.95),
    ("vip", 1.0),
    ("language", 0.99),
];

fn raw_mail(c: &Case) -> Vec<u8> {
    use base64::Engine;
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    format!(
        "From: {}\r\nTo: support@example.test\r\nSubject: =?UTF-8?B?{}?=\r\nMessage-ID: <{}@eval.example>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n{}\r\n",
        c.from,
        b64(&c.subject),
        c.id,
        b64(&c.body)
    )
    .into_bytes()
}

#[test]
fn classification_accuracy_on_the_labelled_set() {
    evaluate("cases.toml", FLOORS);
}

#[test]
fn classification_accuracy_on_the_first_held_out_set() {
    evaluate("holdout.toml", HOLDOUT_FLOORS);
}

#[test]
fn classification_accuracy_on_the_second_held_out_set() {
    evaluate("holdout2.toml", HOLDOUT_FLOORS);
}

fn evaluate(file: &str, floors: &[(&str, f64)]) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/classification")
        .join(file);
    let set: Set = toml::from_str(&std::fs::read_to_string(&path).expect("case file"))
        .expect("case file parses");
    let settings = ClassifySettings {
        vip_addresses: vec![EmailAddress::parse("ceo@partner.example").expect("addr")],
        vip_domains: vec!["bigcorp.example".into()],
        ..Default::default()
    };
    let analyzer = Analyzer::new(
        EmailAddress::parse("support@example.test").expect("addr"),
        "example.test".into(),
        ReplySigner::new(Default::default(), Vec::new()),
        Arc::new(Classifier::new(&settings).expect("rules compile")),
    );
    let fields = ["category", "severity", "urgent", "vip", "language"];
    let mut right = [0usize; 5];
    let mut total = [0usize; 5];
    let mut misses = Vec::new();
    for c in &set.case {
        let a = analyzer.analyze(&raw_mail(c));
        let k = &a.classification;
        let got_severity = k.severity.map(|s| s.as_str().to_string());
        let checks: [(bool, bool, String, String); 5] = [
            (
                true,
                k.category.as_str() == c.category,
                c.category.clone(),
                k.category.as_str().into(),
            ),
            // Severity is judged on the cases labelled as complaints.
            (
                c.category == "complaint",
                got_severity == c.severity,
                format!("{:?}", c.severity),
                format!("{got_severity:?}"),
            ),
            (
                true,
                k.urgent == c.urgent,
                c.urgent.to_string(),
                k.urgent.to_string(),
            ),
            (true, k.vip == c.vip, c.vip.to_string(), k.vip.to_string()),
            (
                true,
                k.language.code() == c.language,
                c.language.clone(),
                k.language.code().into(),
            ),
        ];
        for (i, (applies, ok, want, got)) in checks.into_iter().enumerate() {
            if !applies {
                continue;
            }
            total[i] += 1;
            if ok {
                right[i] += 1;
            } else {
                misses.push(format!(
                    "{:<12} {:<9} want {want:<13} got {got:<13} rules {:?}{}",
                    c.id,
                    fields[i],
                    k.rules,
                    c.note
                        .as_deref()
                        .map(|n| format!("  ({n})"))
                        .unwrap_or_default()
                ));
            }
        }
    }
    println!(
        "classification on {file}, {} labelled mails:",
        set.case.len()
    );
    let mut below = Vec::new();
    for (i, f) in fields.iter().enumerate() {
        let rate = right[i] as f64 / total[i].max(1) as f64;
        println!(
            "  {f:<9} {:>3}/{:<3} = {:5.1} %",
            right[i],
            total[i],
            rate * 100.0
        );
        if let Some((_, floor)) = floors.iter().find(|(n, _)| n == f) {
            if rate < *floor {
                below.push(format!(
                    "{f} {:.1} % < {:.0} %",
                    rate * 100.0,
                    floor * 100.0
                ));
            }
        }
    }
    println!("misses:");
    for m in &misses {
        println!("  {m}");
    }
    assert!(below.is_empty(), "below the floor: {}", below.join(", "));
}

async fn classified_through_the_rig(db: Db) {
    use supportd::domain::TicketRef;
    use supportd::domain::{Category, Correction, Priority};
    let mut app = spawn_app(AppOptions {
        db,
        ..Default::default()
    })
    .await;
    let (customer, _) = app
        .mail_from_new_customer(
            "充电宝起火",
            "我买的充电宝昨晚充电时起火了，这是严重的安全问题，我已经联系了律师。",
        )
        .await;
    wait_for_mail(&customer, 1, 60).await;
    let t = &app
        .store
        .list_tickets(TicketOrder::Queue, TicketFilter::None, 0, 10)
        .await
        .expect("queue")[0];
    assert_eq!(t.class.category, Category::Complaint);
    assert_eq!(t.class.severity.map(|s| s.as_str()), Some("major"));
    assert!(t.class.urgent);
    assert_eq!(t.class.priority, Priority::Urgent);
    let r = TicketRef::parse(&t.ticket).expect("ref");
    let kinds = app.store.event_kinds(r).await.expect("events");
    assert!(kinds.contains(&"classified".to_string()), "{kinds:?}");

    // An agent corrects it; the correction is stored and counted.
    let changes = supportd::cli::actions::perform(
        &app.store,
        &app.desk(),
        r,
        &supportd::cli::actions::Action::Correct {
            correction: Correction {
                urgent: Some(false),
                ..Default::default()
            },
            by: "agent@example.test".into(),
        },
        1,
    )
    .await
    .expect("correct")
    .corrected;
    assert_eq!(changes.len(), 1);
    assert_eq!(
        app.store.correction_rate(0, i64::MAX).await.expect("rate"),
        (1, 1)
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mail_through_the_rig_is_classified_and_a_correction_is_counted_on_sqlite() {
    classified_through_the_rig(Db::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mail_through_the_rig_is_classified_and_a_correction_is_counted_on_postgresql() {
    classified_through_the_rig(Db::Postgres).await;
}
