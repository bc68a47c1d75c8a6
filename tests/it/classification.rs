//! The classify stage on the labelled evaluation set in tests/fixtures/classification (150 mails
//! written for supportd in zh-Hans, zh-Hant and en). Each case goes through the same pure path as
//! a fetched mail (parse → reply text → classify). Prints accuracy per field and every miss; fails
//! when a field falls below its floor.

use crate::helpers::*;
use serde::Deserialize;
use std::sync::Arc;
use supportd::domain::EmailAddress;
use supportd::inbound::analyze::Analyzer;
use supportd::inbound::classify::{Classifier, ClassifySettings, ModelSource};
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
    #[serde(default)]
    kind: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Set {
    case: Vec<Case>,
}

/// Floors on the three older labelled sets (written by earlier sessions for the rule-based
/// classifier, under the older issue's labelling conventions; the model was not trained on
/// them): a little under the model's measurement on each (cases 90.0 %, holdout 86.7 %,
/// holdout2 82.5 % category), so a drop is a regression. `holdout` fell from 91.1 % when the
/// urgency writers' mail joined the training corpus: five of its six misses are fault reports
/// ("接口全部超时", "电脑开不了机") that the older conventions label inquiry and the current spec's
/// writers label complaint.
const FLOORS: &[(&str, f64)] = &[
    ("category", 0.87),
    ("severity", 0.90),
    ("urgent", 0.95),
    ("vip", 1.0),
    ("language", 0.99),
];

const HOLDOUT_FLOORS: &[(&str, f64)] = &[
    ("category", 0.84),
    ("severity", 0.85),
    ("urgent", 0.92),
    ("vip", 1.0),
    ("language", 0.99),
];

const HOLDOUT2_FLOORS: &[(&str, f64)] = &[
    ("category", 0.78),
    ("severity", 0.82),
    ("urgent", 0.95),
    ("vip", 1.0),
    ("language", 0.99),
];

/// Floors on the blind sets (never trained or tuned on; measurements in
/// `blind/FIRST-MEASUREMENT.md`): a little under the shipped model's lowest set (category 97.5 %,
/// severity 89.5 % on E, urgent 94.5 % on B; the targets are 95 % for major complaints found and
/// for urgent, which `classify eval` reports per set and pooled).
const BLIND_FLOORS: &[(&str, f64)] = &[
    ("category", 0.95),
    ("severity", 0.88),
    ("urgent", 0.92),
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
    evaluate("holdout2.toml", HOLDOUT2_FLOORS);
}

#[test]
fn classification_accuracy_on_blind_set_a() {
    evaluate("blind/blind_a.toml", BLIND_FLOORS);
}

#[test]
fn classification_accuracy_on_blind_set_b() {
    evaluate("blind/blind_b.toml", BLIND_FLOORS);
}

#[test]
fn classification_accuracy_on_blind_set_c() {
    evaluate("blind/blind_c.toml", BLIND_FLOORS);
}

#[test]
fn classification_accuracy_on_blind_set_d() {
    evaluate("blind/blind_d.toml", BLIND_FLOORS);
}

#[test]
fn classification_accuracy_on_blind_set_e() {
    evaluate("blind/blind_e.toml", BLIND_FLOORS);
}

#[test]
fn classification_accuracy_on_blind_set_f() {
    evaluate("blind/blind_f.toml", BLIND_FLOORS);
}

#[test]
fn classification_accuracy_on_blind_set_g() {
    evaluate("blind/blind_g.toml", BLIND_FLOORS);
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
        Arc::new(
            Classifier::new(&settings)
                .expect("rules compile")
                .with_model(
                    ModelSource::Builtin
                        .load()
                        .expect("the shipped model loads"),
                ),
        ),
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
                        .or(c.kind.as_deref())
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

/// A kind of mail the shipped model never saw — complaints in Indonesian from a site's
/// customers in Jakarta — is mostly classified wrong; agents correct a dozen tickets; `supportd
/// classify train` learns from the corrections, and the model the daemon loads (the site's, in
/// the state directory) gets other mails of that kind right.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrections_teach_the_model_a_kind_of_mail_it_never_saw() {
    use supportd::domain::{Category, Correction, TicketRef};
    use supportd::inbound::classify::corpus::LabelledMail;
    let taught = [
        ("Kecewa", "Saya sangat kecewa, kurirnya kasar dan paket dilempar ke pagar."),
        ("Pelayanan buruk", "Sudah tiga kali saya telepon dan tidak ada yang membantu. Pelayanan kalian buruk sekali."),
        ("Tagihan salah", "Saya ditagih dua kali untuk bulan ini, tolong kembalikan uang saya."),
        ("Barang rusak", "Barang yang saya terima rusak dan kotor, padahal harganya mahal."),
        ("Tidak profesional", "Teknisi datang terlambat dua jam dan pergi tanpa memperbaiki apa pun."),
        ("Salah kirim lagi", "Lagi-lagi barang yang dikirim salah warna, ini sudah kedua kalinya."),
        ("Biaya tersembunyi", "Ada biaya tambahan yang tidak pernah disebutkan waktu saya pesan. Tidak adil."),
        ("Petugas tidak sopan", "Petugas di kasir berbicara dengan nada tinggi dan tidak sopan kepada ibu saya."),
        ("Makanan basi", "Makanan yang diantar sudah basi dan berbau, anak saya tidak bisa makan."),
        ("Janji palsu", "Katanya dikirim hari Senin, sampai Jumat tidak ada kabar. Janji palsu."),
        ("Aplikasi error terus", "Aplikasinya keluar sendiri setiap kali saya bayar, saya rugi waktu dan kuota."),
        ("Kamar kotor", "Kamar hotel yang saya dapat kotor, sprei bernoda dan kamar mandi bau."),
    ];
    let held_out = [
        (
            "Sangat mengecewakan",
            "Pelayanan toko kalian sangat mengecewakan, tidak ada yang peduli.",
        ),
        (
            "Kurir kasar",
            "Kurir kalian membentak saya waktu saya minta tanda terima.",
        ),
        (
            "Uang belum kembali",
            "Saya ditagih lebih mahal dari harga di website, tolong kembalikan selisihnya.",
        ),
        (
            "Produk cacat",
            "Produk yang saya beli cacat dan layarnya retak waktu dibuka.",
        ),
        (
            "Teknisi tidak datang",
            "Teknisi tidak datang sesuai jadwal dan tidak ada yang memberi kabar.",
        ),
        (
            "Salah pesanan",
            "Pesanan saya salah lagi, ini sudah ketiga kalinya bulan ini.",
        ),
        (
            "Tidak sopan",
            "Staf di loket bersikap tidak sopan dan mengabaikan antrean.",
        ),
        (
            "Kualitas buruk",
            "Kualitas bajunya buruk sekali, baru dicuci sekali sudah robek.",
        ),
    ];
    let labelled = |set: &[(&str, &str)]| -> Vec<LabelledMail> {
        set.iter()
            .enumerate()
            .map(|(i, (subject, body))| LabelledMail {
                id: format!("id-{i}"),
                from: "budi@example.co.id".into(),
                subject: subject.to_string(),
                body: body.to_string(),
                category: "complaint".into(),
                severity: Some("general".into()),
                urgent: false,
                vip: None,
                language: None,
                kind: None,
                note: None,
            })
            .collect()
    };
    let mut app = spawn_app(AppOptions::default()).await;
    let before = app.settings.classifier().evaluate(&labelled(&held_out));
    println!(
        "the shipped model on Indonesian complaints: {} of {}",
        before.category_right, before.mails
    );
    // No better than a guess: the model knows no Indonesian word (half of these fall to the
    // complaint class by its prior alone).
    assert!(
        before.category_accuracy() <= 0.5,
        "a kind the shipped model does not know: {}",
        before.render()
    );

    // Customers write; agents correct each ticket's category.
    let mut customers = Vec::new();
    for (subject, body) in taught {
        customers.push(app.mail_from_new_customer(subject, body).await.0);
    }
    app.wait_until(60, "a ticket per mail", |s| async move {
        s.count("tickets").await.unwrap_or(0) == 12
    })
    .await;
    let tickets = app.store.tickets(50).await.expect("tickets");
    let mut corrected = 0;
    for t in &tickets {
        let r = TicketRef::parse(&t.ticket).expect("ref");
        let done = supportd::cli::actions::perform(
            &app.store,
            &app.desk(),
            r,
            &supportd::cli::actions::Action::Correct {
                correction: Correction {
                    category: Some(Category::Complaint),
                    ..Default::default()
                },
                by: "agent@example.test".into(),
            },
            app.clock.now(),
        )
        .await
        .expect("correct");
        corrected += usize::from(!done.corrected.is_empty());
    }
    assert!(corrected >= 4, "many were classified wrong: {corrected}");

    // The site's model learns them; the daemon's configuration loads it.
    let out = supportd_cli(&app, &["classify", "train"]);
    assert!(
        out.contains(&format!("{corrected} corrected ticket(s)")),
        "{out}"
    );
    let settings = supportd::config::Settings::load(&app.config).expect("config");
    let after = settings.classifier().evaluate(&labelled(&held_out));
    println!(
        "after {corrected} corrections: {} of {}",
        after.category_right, after.mails
    );
    assert!(
        after.category_accuracy() >= 0.75 && after.category_right > before.category_right,
        "{}",
        after.render()
    );
    // The evaluation command reads the same model.
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("held_out.toml");
    let cases: Vec<String> = labelled(&held_out)
        .iter()
        .map(|m| {
            format!(
                "[[case]]\nid = {:?}\nfrom = {:?}\nsubject = {:?}\nbody = {:?}\ncategory = \"complaint\"\n",
                m.id, m.from, m.subject, m.body
            )
        })
        .collect();
    std::fs::write(&file, cases.join("\n")).expect("write");
    let eval = supportd_cli(&app, &["classify", "eval", file.to_str().expect("path")]);
    assert!(
        eval.contains(&format!("({} of 8)", after.category_right)),
        "{eval}"
    );
    drop(customers);
    app.stop().await;
}
