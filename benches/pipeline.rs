//! `cargo bench --bench pipeline [-- N]`: how fast supportd ingests mail.
//!
//! 1. pure stages (parse → screen → reply text → hints → classify) per mail, over tests/fixtures;
//!    and the classify stage alone over the 235 labelled mails of tests/fixtures/classification;
//! 2. store: the whole per-mail transaction on SQLite (no IMAP), N mails from N customers, each
//!    opening a ticket and queueing an acknowledgement;
//! 3. end to end: N mails delivered into a rig mailbox over LMTP, then the real mailbox loop
//!    (IMAP fetch in batches → pipeline → commit → \Seen) until all are stored.
//!    Needs the mail rig (`deploy/dev/mailrig start`); skipped with a message otherwise.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use supportd::app::context::{Desk, SharedDesk};
use supportd::clock::{Clock, SharedClock, SystemClock};
use supportd::config::Settings;
use supportd::inbound::decide::FolderRole;
use supportd::inbound::intake::{self, Batch};
use supportd::inbound::mailbox::MailboxLoop;
use supportd::outbound::templates::Templates;
use supportd::store::Store;
use tokio_util::sync::CancellationToken;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn config(dir: &std::path::Path, support: &str) -> Settings {
    let toml = format!(
        r#"
[service]
support_address = "{support}"
state_dir = "{state}"
templates_dir = "{templates}"
[mailboxes.bench]
host = "127.0.0.1"
port = 14143
tls = "none"
user = "{support}"
password = "test"
batch_size = 500
[smtp]
host = "127.0.0.1"
port = 10025
tls = "none"
[threading]
reply_secret = "bench-secret-0123456789abcdef"
old_reply_secrets = []
reopen_within_days = 30
"#,
        state = dir.display(),
        templates = root().join("templates").display()
    );
    let path = dir.join("bench.toml");
    std::fs::write(&path, toml).expect("write config");
    Settings::load(&path).expect("bench config")
}

fn customer_mail(i: usize, run: u64) -> Vec<u8> {
    format!(
        "From: Customer {i} <c{i}-{run}@example.org>\r\nTo: support@example.test\r\nSubject: Order {i} has not arrived\r\nMessage-ID: <bench-{run}-{i}@example.org>\r\nDate: Mon, 23 Nov 2026 10:00:00 +0800\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n您好，我的订单 {i} 下单一周了还没有发货，请帮忙查一下物流进度。\r\n\r\nThanks,\r\nCustomer {i}\r\n\r\n在 2026年11月20日，客服中心 <support@example.test> 写道：\r\n> 尊敬的客户：您好！\r\n> 我们已收到您的来信。\r\n"
    )
    .into_bytes()
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmRSS:")).map(|l| {
                l.split_whitespace()
                    .nth(1)
                    .unwrap_or("0")
                    .parse()
                    .unwrap_or(0)
            })
        })
        .unwrap_or(0)
}

fn bench_pure(settings: &Settings) {
    let desk = Desk::new(
        settings,
        Templates::load(&root().join("templates")).expect("templates"),
    );
    let mut mails: Vec<Vec<u8>> = std::fs::read_dir(root().join("tests/fixtures"))
        .expect("fixtures")
        .filter_map(|e| e.ok())
        .filter(|e| e.path().extension().is_some_and(|x| x == "eml"))
        .map(|e| std::fs::read(e.path()).expect("read"))
        .collect();
    mails.push(customer_mail(1, 0));
    let rounds = 3000;
    let start = Instant::now();
    let mut n = 0usize;
    for _ in 0..rounds {
        for m in &mails {
            std::hint::black_box(desk.analyzer.analyze(m));
            n += 1;
        }
    }
    let el = start.elapsed();
    println!(
        "pure stages:  {n} mails in {:.2} s = {:.1} µs/mail ({:.0} mails/s on one core)",
        el.as_secs_f64(),
        el.as_secs_f64() * 1e6 / n as f64,
        n as f64 / el.as_secs_f64()
    );
}

/// The pure decision for a new mail: analysis, then apply (the acknowledgement rendered from
/// its template and composed to the byte, timers, events).
fn bench_decide(settings: &Settings) {
    let desk = Desk::new(
        settings,
        Templates::load(&root().join("templates")).expect("templates"),
    );
    let mails: Vec<Vec<u8>> = (0..200).map(|i| customer_mail(i, 1)).collect();
    let rounds = 20;
    let start = Instant::now();
    for _ in 0..rounds {
        for (i, m) in mails.iter().enumerate() {
            let a = desk.analyzer.analyze(m);
            let d = supportd::domain::ThreadDecision::New {
                linked_to: None,
                why: None,
            };
            let n = supportd::inbound::apply::new_ticket(&a.mail, &a.screen, &d, &a.classification)
                .expect("new ticket");
            let t = supportd::domain::TicketState::new(
                supportd::domain::TicketRef(i as i64 + 1),
                n.requester,
                n.requester_name,
                n.subject,
                &n.classification,
            );
            std::hint::black_box(supportd::inbound::apply::apply(
                &desk,
                &a.mail,
                &a.reply_text,
                &a.screen,
                &a.classification,
                &d,
                Some(&t),
                Default::default(),
                0,
            ));
        }
    }
    let n = rounds * mails.len();
    let el = start.elapsed();
    println!(
        "decide:       {n} new mails analysed and applied (ack rendered and composed) in {:.2} s = {:.1} µs/mail",
        el.as_secs_f64(),
        el.as_secs_f64() * 1e6 / n as f64
    );
}

/// The classify stage alone, over the 235 labelled mails of tests/fixtures/classification.
fn bench_classify() {
    #[derive(serde::Deserialize)]
    struct Case {
        from: String,
        subject: String,
        body: String,
    }
    #[derive(serde::Deserialize)]
    struct Set {
        case: Vec<Case>,
    }
    let mut cases = Vec::new();
    for f in ["cases.toml", "holdout.toml", "holdout2.toml"] {
        let text = std::fs::read_to_string(root().join("tests/fixtures/classification").join(f))
            .expect("case file");
        let set: Set = toml::from_str(&text).expect("cases parse");
        cases.extend(set.case);
    }
    let built = Instant::now();
    let classifier = supportd::inbound::classify::Classifier::builtin();
    let compile = built.elapsed();
    let senders: Vec<_> = cases
        .iter()
        .map(|c| supportd::domain::EmailAddress::parse(&c.from))
        .collect();
    let rounds = 200;
    let start = Instant::now();
    for _ in 0..rounds {
        for (c, s) in cases.iter().zip(&senders) {
            std::hint::black_box(classifier.classify(s.as_ref(), &c.subject, &c.body));
        }
    }
    let n = rounds * cases.len();
    let el = start.elapsed();
    println!(
        "classify:     {n} mails in {:.2} s = {:.1} µs/mail (rules compiled in {:.0} ms)",
        el.as_secs_f64(),
        el.as_secs_f64() * 1e6 / n as f64,
        compile.as_secs_f64() * 1e3
    );
}

/// A fresh PostgreSQL database on 127.0.0.1:5432 (the tests' server), if one answers.
async fn postgres_url() -> Option<String> {
    use sqlx::Connection;
    let admin = "postgres://postgres@127.0.0.1:5432";
    let mut conn = sqlx::PgConnection::connect(&format!("{admin}/postgres"))
        .await
        .ok()?;
    let name = format!("supportd_bench_{:x}", rand::random::<u32>());
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .ok()?;
    Some(format!("{admin}/{name}"))
}

async fn bench_store(settings: &Settings, n: usize, batch: usize) {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("b.db").display());
    bench_store_at(settings, &url, "SQLite", n, batch).await;
}

async fn bench_store_postgres(settings: &Settings, n: usize, batch: usize) {
    match postgres_url().await {
        Some(url) => bench_store_at(settings, &url, "PostgreSQL", n, batch).await,
        None => println!("store (PostgreSQL): skipped (no server on 127.0.0.1:5432)"),
    }
}

async fn bench_store_at(settings: &Settings, url: &str, backend: &str, n: usize, batch: usize) {
    let store = Store::connect(url, 4).await.expect("store");
    store.migrate().await.expect("migrate");
    let desk = Desk::new(
        settings,
        Templates::load(&root().join("templates")).expect("templates"),
    );
    let run: u64 = rand::random();
    let mails: Vec<(u32, Vec<u8>)> = (0..n)
        .map(|i| (i as u32 + 1, customer_mail(i, run)))
        .collect();
    let clock = SystemClock;
    let start = Instant::now();
    for chunk in mails.chunks(batch.max(1)) {
        let b = Batch {
            mailbox: "bench/INBOX",
            uidvalidity: 1,
            role: FolderRole::Inbox,
            mails: chunk,
        };
        intake::store_batch(&store, &desk, b, clock.now())
            .await
            .expect("store");
    }
    let el = start.elapsed();
    assert_eq!(store.count("tickets").await.expect("count"), n as i64);
    println!(
        "store ({backend}; per mail: message + ticket + events + ack in outbox + timers + checkpoint; {}): {n} mails in {:.2} s = {:.0} mails/s, {:.0} µs/mail; RSS {} MiB",
        if batch <= 1 { "one transaction per mail".to_string() } else { format!("group commit of {batch}") },
        el.as_secs_f64(),
        n as f64 / el.as_secs_f64(),
        el.as_secs_f64() * 1e6 / n as f64,
        rss_kib() / 1024
    );
}

async fn bench_imap(n: usize) {
    if std::net::TcpStream::connect_timeout(
        &([127, 0, 0, 1], 14143).into(),
        Duration::from_millis(300),
    )
    .is_err()
    {
        println!(
            "end to end:   skipped (no mail rig on 127.0.0.1:14143; run deploy/dev/mailrig start)"
        );
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let run: u64 = rand::random();
    let support = format!("bench-{run:x}@example.test");
    let settings = config(dir.path(), &support);
    let mails: Vec<Vec<u8>> = (0..n).map(|i| customer_mail(i, run)).collect();
    let fill = Instant::now();
    for chunk in mails.chunks(1000) {
        supportd::testing::lmtp_deliver(&support, chunk)
            .await
            .expect("LMTP fill");
    }
    println!(
        "end to end:   filled {n} mails over LMTP in {:.1} s",
        fill.elapsed().as_secs_f64()
    );
    let store = Store::connect(&settings.database_url(), 4)
        .await
        .expect("store");
    store.migrate().await.expect("migrate");
    let desk = Arc::new(SharedDesk::new(Desk::new(
        &settings,
        Templates::load(&root().join("templates")).expect("templates"),
    )));
    let clock: SharedClock = Arc::new(SystemClock);
    let cancel = CancellationToken::new();
    let lp = MailboxLoop {
        name: "bench".into(),
        settings: settings.mailboxes["bench"].clone(),
        store: store.clone(),
        desk,
        clock,
        outbox_wake: Arc::new(tokio::sync::Notify::new()),
        timer_wake: Arc::new(tokio::sync::Notify::new()),
        imap_wake: Arc::new(tokio::sync::Notify::new()),
        role: FolderRole::Inbox,
        health: Arc::new(supportd::ops::health::Health::new()),
        metrics: Arc::new(supportd::ops::metrics::Metrics::new()),
    };
    let start = Instant::now();
    let task = tokio::spawn(lp.run(cancel.clone()));
    loop {
        let got = store.count("inbound").await.expect("count") as usize;
        if got >= n {
            break;
        }
        if start.elapsed() > Duration::from_secs(600) {
            println!("end to end:   gave up after 600 s with {got} of {n}");
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let el = start.elapsed();
    cancel.cancel();
    let _ = task.await;
    println!(
        "end to end:   {n} mails fetched over IMAP, processed and committed in {:.2} s = {:.0} mails/s; RSS {} MiB",
        el.as_secs_f64(),
        n as f64 / el.as_secs_f64(),
        rss_kib() / 1024
    );
}

fn main() {
    let n: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(5000);
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let dir = tempfile::tempdir().expect("tempdir");
    let settings = config(dir.path(), "support@example.test");
    bench_pure(&settings);
    bench_classify();
    bench_decide(&settings);
    rt.block_on(bench_store(&settings, n, 1));
    rt.block_on(bench_store(&settings, n, 500));
    rt.block_on(bench_store_postgres(&settings, n, 500));
    rt.block_on(bench_imap(n));
}
