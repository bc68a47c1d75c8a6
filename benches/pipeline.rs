//! `cargo bench --bench pipeline [-- N]`: how fast supportd ingests mail.
//!
//! 1. pure stages (parse → screen → reply text → hints → classify) per mail, over the mix;
//!    and the classify stage alone over the 235 labelled mails of tests/fixtures/classification;
//! 2. store: the whole per-mail transaction on SQLite (no IMAP), N mails from N customers, each
//!    opening a ticket and queueing an acknowledgement;
//! 3. end to end: N mails delivered into a rig mailbox over LMTP, then the real mailbox loop
//!    (IMAP fetch in batches → pipeline → commit → \Seen) until all are stored: first N copies
//!    of one short synthetic mail (the old figure, kept for comparison), then N mails of a
//!    realistic mix — every mail of `tests/fixtures` and `../shared/corpus/mime` (Chinese and
//!    English, GBK/GB18030/Big5, HTML-only, multipart, attachments, quoted history, machine
//!    mail, malformed mail) with fresh Message-IDs and senders — twice on the same database (0
//!    and N tickets stored), each with the CPU per mail (user + sys of this process), the peak
//!    RSS of the run, and the raw batched IMAP fetch rate of the same mailbox for comparison.
//!    Needs the mail rig (`deploy/dev/mailrig start`); skipped with a message otherwise.
//!
//! Modes: `-- pure`, `-- decide` (the pure work alone), `-- store [N]` (the SQLite group commit
//! alone), `-- mix [N]` (the realistic mix alone), `-- grow N` (the mix and the O(result) reads at
//! N stored tickets), `-- burst [N]` (acknowledgement latency for customers
//! writing during a burst of N mails, the whole daemon), `-- report [N]`, `-- classify-cv`. `BENCH_LOG=sqlx=debug` logs every
//! statement with its time.

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
[http]
# No health/metrics listener: a daemon the bench starts must not collide with one already running.
listen = ""
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
    // The realistic mix (every mail of tests/fixtures and the public MIME corpus), as `-- mix`
    // ingests it; before stop 34 only the 11 mails at the top of tests/fixtures.
    let mut mails: Vec<Vec<u8>> = mix_corpus()
        .iter()
        .enumerate()
        .map(|(i, m)| personalise(m, i, 0))
        .collect();
    mails.push(customer_mail(1, 0));
    let rounds = (33_000 / mails.len()).max(3);
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
    // Each stage alone, over the same mails.
    use supportd::inbound::{parse, reply_text, screen, thread};
    let parsed: Vec<_> = mails.iter().map(|m| parse::parse(m)).collect();
    let texts: Vec<String> = parsed
        .iter()
        .map(|m| reply_text::extract(&m.text))
        .collect();
    let per = |f: &dyn Fn(usize)| {
        let start = Instant::now();
        for _ in 0..rounds / 3 {
            for i in 0..mails.len() {
                f(i);
            }
        }
        start.elapsed().as_secs_f64() * 1e6 / ((rounds / 3) * mails.len()) as f64
    };
    let ctx = screen::ScreenContext {
        message_id_domain: "example.test".into(),
        support_address: settings.service.support_address.clone(),
    };
    println!(
        "  by stage (µs/mail): parse {:.1}, reply text {:.1}, screen {:.1}, thread hints {:.1}, classify {:.1}; beside them, the raw mail packed for storage (zstd) {:.1}",
        per(&|i| {
            std::hint::black_box(parse::parse(&mails[i]));
        }),
        per(&|i| {
            std::hint::black_box(reply_text::extract(&parsed[i].text));
        }),
        per(&|i| {
            std::hint::black_box(screen::screen(&parsed[i], &texts[i], &ctx));
        }),
        per(&|i| {
            std::hint::black_box(thread::hints(
                &parsed[i],
                &settings.service.support_address,
                &desk.signer,
            ));
        }),
        per(&|i| {
            std::hint::black_box(desk.analyzer.classifier.classify(
                parsed[i].from.as_ref(),
                &parsed[i].subject,
                &texts[i],
            ));
        }),
        per(&|i| {
            std::hint::black_box(supportd::store::pack_raw(&mails[i]));
        }),
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
    let bytes = std::fs::read(root().join("src/inbound/classify/model.bin")).expect("model");
    let loading = Instant::now();
    let model = supportd::inbound::classify::model::Model::from_bytes(&bytes).expect("model loads");
    let load = loading.elapsed();
    std::hint::black_box(model);
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
        "classify:     {n} mails in {:.2} s = {:.1} µs/mail (rules and model ready in {:.0} ms; the model alone loads in {:.1} ms)",
        el.as_secs_f64(),
        el.as_secs_f64() * 1e6 / n as f64,
        compile.as_secs_f64() * 1e3,
        load.as_secs_f64() * 1e3
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
            fence: None,
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

/// A fresh support mailbox and SQLite database: (its directory, a run number, the address,
/// the settings, the store).
async fn fresh(prefix: &str) -> (tempfile::TempDir, u64, String, Settings, Store) {
    let dir = tempfile::tempdir().expect("tempdir");
    let run: u64 = rand::random();
    let support = format!("{prefix}-{run:x}@example.test");
    let settings = config(dir.path(), &support);
    let store = Store::connect(&settings.database_url(), 4)
        .await
        .expect("store");
    store.migrate().await.expect("migrate");
    (dir, run, support, settings, store)
}

/// Whether the mail rig's IMAP port answers.
fn rig_up() -> bool {
    std::net::TcpStream::connect_timeout(
        &([127, 0, 0, 1], 14143).into(),
        Duration::from_millis(300),
    )
    .is_ok()
}

async fn bench_imap(n: usize) {
    if !rig_up() {
        println!(
            "end to end:   skipped (no mail rig on 127.0.0.1:14143; run deploy/dev/mailrig start)"
        );
        return;
    }
    let (_dir, run, support, settings, store) = fresh("bench").await;
    let mails: Vec<Vec<u8>> = (0..n).map(|i| customer_mail(i, run)).collect();
    run_loop(
        "end to end, one short synthetic mail repeated",
        &settings,
        &store,
        &support,
        mails,
    )
    .await;
}

/// This process's CPU time so far (user + sys), in seconds (from /proc/self/stat).
fn cpu_secs() -> f64 {
    proc_cpu_secs(&std::fs::read_to_string("/proc/self/stat").unwrap_or_default())
}

/// The peak RSS since the last [`reset_peak`], in MiB.
fn peak_mib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .unwrap_or(0)
        / 1024
}

fn reset_peak() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// Every mail of the fixtures and the public MIME corpus (at most 2 MiB each).
fn mix_corpus() -> Vec<Vec<u8>> {
    fn walk(dir: &std::path::Path, out: &mut Vec<Vec<u8>>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        let mut paths: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
        paths.sort();
        for p in paths {
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|e| e == "eml") {
                if let Ok(b) = std::fs::read(&p) {
                    if b.len() <= 2 << 20 {
                        out.push(b);
                    }
                }
            }
        }
    }
    let mut out = Vec::new();
    walk(&root().join("tests/fixtures"), &mut out);
    walk(&root().join("../shared/corpus/mime"), &mut out);
    out
}

/// A corpus mail as a new customer's: its own Message-ID and sender, the placeholders of the
/// blind sets filled.
fn personalise(raw: &[u8], i: usize, run: u64) -> Vec<u8> {
    personalise_at(raw, i, run, "example.org")
}

/// [`personalise`] with the customer's address on `domain`.
fn personalise_at(raw: &[u8], i: usize, run: u64, domain: &str) -> Vec<u8> {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|p| p + 2)
        .or_else(|| raw.windows(2).position(|w| w == b"\n\n").map(|p| p + 1))
        .unwrap_or(raw.len());
    let (head, body) = raw.split_at(split);
    let head = String::from_utf8_lossy(head).replace("<OUR-ACK-ID>", "<none@example.test>");
    let mut out = format!(
        "From: Customer {i} <mix{i}-{run}@{domain}>\r\nMessage-ID: <mix-{run}-{i}@example.org>\r\n"
    );
    let mut skip = false;
    for line in head.split_inclusive('\n') {
        let folded = line.starts_with(' ') || line.starts_with('\t');
        if !folded {
            let l = line.to_ascii_lowercase();
            skip = l.starts_with("from:") || l.starts_with("message-id:");
        }
        if !skip {
            out.push_str(line);
        }
    }
    let mut v = out.into_bytes();
    v.extend_from_slice(body);
    v
}

/// Delivers `mails` into `support`'s INBOX and runs the real mailbox loop on `store` until all
/// are stored; prints the rate, CPU per mail, peak RSS and the raw fetch rate of the mailbox.
async fn run_loop(
    label: &str,
    settings: &Settings,
    store: &Store,
    support: &str,
    mails: Vec<Vec<u8>>,
) {
    let n = mails.len();
    let bytes: usize = mails.iter().map(|m| m.len()).sum();
    for chunk in mails.chunks(500) {
        supportd::testing::lmtp_deliver(support, chunk)
            .await
            .expect("LMTP fill");
    }
    drop(mails);
    // The raw batched fetch of the same mailbox (BODY.PEEK: nothing marked).
    let raw_rate = {
        let mut conn = supportd::inbound::fetch::connect(&settings.mailboxes["bench"])
            .await
            .expect("IMAP");
        let start = Instant::now();
        conn.select("INBOX").await.expect("select");
        let uids = conn.new_uids(0).await.expect("search");
        let mut got = 0usize;
        for chunk in uids.chunks(500) {
            got += conn.fetch(chunk).await.expect("fetch").len();
        }
        conn.logout().await;
        got as f64 / start.elapsed().as_secs_f64()
    };
    let before = store.count("inbound").await.expect("count") as usize;
    let metrics = Arc::new(supportd::ops::metrics::Metrics::new());
    let desk = Arc::new(SharedDesk::new(Desk::new(
        settings,
        Templates::load(&root().join("templates")).expect("templates"),
    )));
    let clock: SharedClock = Arc::new(SystemClock);
    let cancel = CancellationToken::new();
    let lp = MailboxLoop {
        cluster: None,
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
        metrics: metrics.clone(),
    };
    reset_peak();
    // On stderr, for `perf record -p` to start on: the timed part begins here.
    eprintln!("{label}: ingesting");
    let cpu0 = cpu_secs();
    let start = Instant::now();
    let task = tokio::spawn(lp.run(cancel.clone()));
    // Watched through the loop's own counter of committed mails: a COUNT(*) over the messages
    // table here would scan it twenty times a second and be billed to the daemon's CPU.
    loop {
        let got = metrics.fetched_total("bench") as usize;
        if got >= n {
            break;
        }
        if start.elapsed() > Duration::from_secs(900) {
            println!("{label}: gave up after 900 s with {got} of {n}");
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let el = start.elapsed();
    let cpu = cpu_secs() - cpu0;
    cancel.cancel();
    let _ = task.await;
    let stored = store.count("inbound").await.expect("count") as usize - before;
    assert_eq!(stored, n, "{label}: every mail fetched is stored");
    let rate = n as f64 / el.as_secs_f64();
    println!(
        "{label}: {n} mails ({:.1} KB average) in {:.2} s = {rate:.0} mails/s; CPU {:.0} µs/mail; peak RSS {} MiB; raw IMAP fetch {raw_rate:.0} mails/s (ratio {:.0} %); {before} mails stored before",
        bytes as f64 / n as f64 / 1024.0,
        el.as_secs_f64(),
        cpu * 1e6 / n as f64,
        peak_mib(),
        rate * 100.0 / raw_rate
    );
}

/// Milliseconds since the Unix epoch, as the daemon's clock gives them.
fn now_ms() -> i64 {
    SystemClock.now()
}

/// p50 / p99 / max of `v` in seconds, and its length.
fn quantiles(v: &mut [i64]) -> String {
    if v.is_empty() {
        return "none".into();
    }
    v.sort_unstable();
    let q = |p: f64| v[((v.len() - 1) as f64 * p).round() as usize] as f64 / 1000.0;
    format!(
        "p50 {:.2} s, p99 {:.2} s, max {:.2} s ({} acknowledgements)",
        q(0.5),
        q(0.99),
        q(1.0),
        v.len()
    )
}

/// `-- burst N`: a customer's acknowledgement while a burst of N mails of the mix is taken in
/// by the whole daemon (`Application::run_until_stopped`: mailbox loop with IDLE, outbox
/// worker, timers) on one mailbox with SQLite. The burst is delivered over four LMTP
/// connections at once, as fast as Dovecot takes it; meanwhile a probe customer writes every 100 ms until the burst's last
/// acknowledgement is sent. For the probes and for the burst it prints the time from delivery
/// into the mailbox (LMTP's 250) to the SMTP server's 250 for the acknowledgement (p50, p99,
/// max). `-- burst N backlog`: the burst is in the mailbox before the daemon starts (its mails
/// count from the start). Customers
/// are on the rig's domain, so Postfix delivers the acknowledgements into their
/// mailboxes as it would at a real site.
async fn bench_burst(n: usize, backlog: bool) {
    if !rig_up() {
        println!("burst:        skipped (no mail rig on 127.0.0.1:14143)");
        return;
    }
    let corpus = mix_corpus();
    let (_dir, run, support, settings, store) = fresh("burst").await;
    let mails: Vec<Vec<u8>> = (0..n)
        .map(|i| personalise_at(&corpus[i % corpus.len()], i, run, "example.test"))
        .collect();
    let delivered = Arc::new(std::sync::Mutex::new(std::collections::HashMap::<
        String,
        i64,
    >::new()));
    // Four LMTP connections at once, 50 mails a session: as fast as Dovecot takes them. A mail's
    // delivery time is its session's start, so the latencies below are upper bounds.
    let deliver = |mails: Vec<Vec<u8>>| {
        let mails = Arc::new(mails);
        let mut lanes = tokio::task::JoinSet::new();
        for lane in 0..4 {
            let (support, delivered, mails) = (support.clone(), delivered.clone(), mails.clone());
            lanes.spawn(async move {
                for c in (lane..mails.len().div_ceil(50)).step_by(4) {
                    let range = c * 50..(c * 50 + 50).min(mails.len());
                    let at = now_ms();
                    supportd::testing::lmtp_deliver(&support, &mails[range.clone()])
                        .await
                        .expect("LMTP burst");
                    let mut d = delivered.lock().expect("lock");
                    for i in range {
                        d.insert(format!("mix{i}-{run}@example.test"), at);
                    }
                }
            });
        }
        tokio::spawn(async move { while lanes.join_next().await.is_some() {} })
    };
    let mut pending = Some(mails);
    if backlog {
        // The burst waits in the mailbox before the daemon starts (after a stop, say).
        if let Some(m) = pending.take() {
            deliver(m).await.expect("burst");
        }
    }
    let app = supportd::app::Application::build(settings, Arc::new(SystemClock))
        .await
        .expect("daemon");
    let cancel = CancellationToken::new();
    let cpu0 = cpu_secs();
    let start = Instant::now();
    let started_ms = now_ms();
    let daemon = tokio::spawn(app.run_until_stopped(cancel.clone()));
    let burst = match pending.take() {
        Some(m) => {
            // The daemon logs in and waits in IDLE before the burst begins.
            tokio::time::sleep(Duration::from_secs(2)).await;
            deliver(m)
        }
        None => tokio::spawn(async {}),
    };
    let stop = CancellationToken::new();
    let probes = {
        let (support, delivered, stop) = (support.clone(), delivered.clone(), stop.clone());
        tokio::spawn(async move {
            let mut k = 0usize;
            while !stop.is_cancelled() {
                let raw = format!(
                    "From: Probe {k} <probe{k}-{run}@example.test>\r\nTo: {support}\r\nSubject: =?UTF-8?B?6K6i5Y2V5LuA5LmI5pe25YCZ5Y+R6LSn?=\r\nMessage-ID: <probe-{run}-{k}@example.test>\r\nDate: Mon, 30 Nov 2026 10:00:00 +0800\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n您好，我的订单 {k} 还没有发货，请问什么时候能发？\r\n"
                )
                .into_bytes();
                let at = now_ms();
                supportd::testing::lmtp_deliver(&support, &[raw])
                    .await
                    .expect("LMTP probe");
                delivered
                    .lock()
                    .expect("lock")
                    .insert(format!("probe{k}-{run}@example.test"), at);
                k += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };
    burst.await.expect("burst");
    let delivered_in = start.elapsed();
    // Drained: every burst mail stored and no acknowledgement waiting.
    loop {
        let stored = store.count("inbound").await.expect("count") as usize;
        let waiting: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM outbox WHERE status IN ('pending', 'sending')",
        )
        .fetch_one(store.pool())
        .await
        .expect("waiting");
        if stored >= n && waiting == 0 {
            break;
        }
        if start.elapsed() > Duration::from_secs(600) {
            println!("burst: gave up after 600 s ({stored} stored, {waiting} waiting)");
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let drained = start.elapsed();
    let cpu = cpu_secs() - cpu0;
    // Two more seconds of probes on the quiet daemon, then their last acknowledgements.
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.cancel();
    probes.await.expect("probes");
    tokio::time::sleep(Duration::from_secs(3)).await;
    cancel.cancel();
    let _ = daemon.await;
    let sent: Vec<(String, i64)> = sqlx::query_as(
        "SELECT recipient, COALESCE(sent_at, 0) FROM outbox WHERE kind = 'ack' AND status = 'sent'",
    )
    .fetch_all(store.pool())
    .await
    .expect("acks");
    let delivered = delivered.lock().expect("lock");
    let (mut probe, mut bulk) = (Vec::new(), Vec::new());
    for (to, at) in &sent {
        if let Some(d) = delivered.get(to) {
            // A mail that waited for the daemon's start counts from the start.
            let from = (*d).max(started_ms);
            if to.starts_with("probe") {
                probe.push(at - from);
            } else {
                bulk.push(at - from);
            }
        }
    }
    let probes_sent = delivered.keys().filter(|k| k.starts_with("probe")).count();
    println!(
        "burst:        {n} mails of the mix{} delivered in {:.1} s; taken in and acknowledged in {:.1} s; CPU {:.0} µs per burst mail; peak RSS {} MiB",
        if backlog { " (waiting before the start)" } else { "" },
        delivered_in.as_secs_f64(),
        drained.as_secs_f64(),
        cpu * 1e6 / n as f64,
        peak_mib()
    );
    println!(
        "burst:        probe customers ({probes_sent} written, one every 100 ms): {}",
        quantiles(&mut probe)
    );
    println!(
        "burst:        the burst's own customers: {}",
        quantiles(&mut bulk)
    );
}

/// The realistic mix through the real mailbox loop, at 0 and then N stored mails.
async fn bench_mix(n: usize) {
    if !rig_up() {
        println!("mix:          skipped (no mail rig on 127.0.0.1:14143)");
        return;
    }
    let corpus = mix_corpus();
    if corpus.is_empty() {
        println!("mix:          skipped (no corpus)");
        return;
    }
    let (_dir, run, support, settings, store) = fresh("mix").await;
    println!(
        "mix:          {} distinct corpus mails, repeated with fresh Message-IDs and senders",
        corpus.len()
    );
    for round in 0..2 {
        let mails: Vec<Vec<u8>> = (0..n)
            .map(|i| personalise(&corpus[i % corpus.len()], round * n + i, run))
            .collect();
        run_loop(
            &format!("mix round {}", round + 1),
            &settings,
            &store,
            &support,
            mails,
        )
        .await;
    }
    // Where the bytes go (SQLite): the file per mail taken in, and the raw mails' share.
    let row: (i64, i64, i64, i64) = sqlx::query_as(
        "SELECT (SELECT page_count FROM pragma_page_count()) * (SELECT page_size FROM pragma_page_size()),
                (SELECT COUNT(*) FROM messages WHERE direction = 'in'),
                (SELECT COALESCE(SUM(LENGTH(raw)), 0) FROM messages) + (SELECT COALESCE(SUM(LENGTH(bytes)), 0) FROM raw_chunks),
                (SELECT COALESCE(SUM(LENGTH(text) + LENGTH(reply_text)), 0) FROM messages)",
    )
    .fetch_one(store.pool())
    .await
    .expect("sizes");
    let (file, inbound, raw, text) = row;
    // The raw mails as they were (before compression), read back through the store.
    let ids: Vec<String> =
        sqlx::query_scalar("SELECT message_id FROM messages WHERE message_id IS NOT NULL")
            .fetch_all(store.pool())
            .await
            .expect("ids");
    let mut original = 0usize;
    for id in &ids {
        original += store
            .raw_by_message_id(id)
            .await
            .expect("raw")
            .map_or(0, |r| r.len());
    }
    let per = |b: i64| b as f64 / inbound.max(1) as f64 / 1024.0;
    println!(
        "mix storage:  {:.1} KB per mail taken in (SQLite file {} MiB for {inbound} mails and their acknowledgements): raw mails {:.1} KB stored as {:.1} KB (zstd), text columns {:.1} KB",
        per(file),
        file / (1024 * 1024),
        per(original as i64),
        per(raw),
        per(text)
    );
    // Every table and index, by the pages it holds (SQLite's dbstat table, when compiled in).
    match sqlx::query_as::<_, (String, i64)>(
        "SELECT name, SUM(pgsize) AS b FROM dbstat GROUP BY name ORDER BY b DESC",
    )
    .fetch_all(store.pool())
    .await
    {
        Ok(rows) => {
            for (name, bytes) in rows.iter().filter(|(_, b)| *b * 100 >= file) {
                println!(
                    "mix storage:    {name:<28} {:>6.2} KB per mail",
                    per(*bytes)
                );
            }
        }
        Err(e) => println!("mix storage:    (no breakdown: {e})"),
    }
    if std::env::var_os("BENCH_KEEP").is_some() {
        // `BENCH_KEEP=1`: the database stays, for `sqlite3` to look into.
        println!("mix storage:  kept {}", _dir.keep().display());
    }
}

/// `-- grow N`: the realistic mix at N stored tickets (SQLite). The database is seeded by the real
/// mailbox loop with every corpus mail once, then its rows (tickets, messages with their raw
/// mail, events, timers, participants, outbox, aliases) are copied by doubling until N tickets
/// are stored — old tickets solved, their promises kept, spread over the months before — then
/// 3,000 fresh mails go through the real loop, and the reads that must stay O(result) are timed
/// at that size: `tickets list` (queue, newest, overdue), `ticket show`, the timer worker's
/// next-due queries and the monthly report's figures.
async fn bench_grow(n: usize) {
    if !rig_up() {
        println!("grow:         skipped (no mail rig on 127.0.0.1:14143)");
        return;
    }
    let corpus = mix_corpus();
    let (dir, run, support, settings, store) = fresh("grow").await;
    let seed: Vec<Vec<u8>> = corpus
        .iter()
        .enumerate()
        .map(|(i, m)| personalise(m, 1_000_000 + i, run))
        .collect();
    run_loop("grow seed", &settings, &store, &support, seed).await;
    let t0 = Instant::now();
    let pool = store.pool();
    let tables = [
        "tickets",
        "messages",
        "message_aliases",
        "participants",
        "events",
        "timers",
        "outbox",
    ];
    let mut k = 0i64;
    loop {
        let tickets: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM tickets")
            .fetch_one(pool)
            .await
            .expect("count");
        if tickets as usize >= n || n == 0 {
            break;
        }
        k += 1;
        let off = |t: &str| format!("(SELECT COALESCE(MAX(id), 0) FROM {t})");
        let (t_off, m_off) = (
            sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(format!("SELECT {}", off("tickets"))))
                .fetch_one(pool)
                .await
                .expect("max"),
            sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(format!(
                "SELECT {}",
                off("messages")
            )))
            .fetch_one(pool)
            .await
            .expect("max"),
        );
        let month = 30 * 86_400_000i64 * k;
        let mut tx = pool.begin().await.expect("begin");
        for table in tables {
            let cols: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                "SELECT name FROM pragma_table_info('{table}')"
            )))
            .fetch_all(&mut *tx)
            .await
            .expect("columns");
            let exprs: Vec<String> = cols
                .iter()
                .map(|c| match (table, c.as_str()) {
                    ("tickets", "id") | (_, "ticket_id") => format!("{c} + {t_off}"),
                    ("messages", "id") | (_, "message_row") => format!("{c} + {m_off}"),
                    ("outbox" | "events" | "timers", "id") => "NULL".into(),
                    ("tickets", "status") => "'solved'".into(),
                    ("tickets", "solved_at") => "COALESCE(solved_at, created_at + 3600000)".into(),
                    ("timers", "state") => {
                        "CASE state WHEN 'running' THEN 'met' ELSE state END".into()
                    }
                    ("timers", "met_at") => "COALESCE(met_at, started_at + 3600000)".into(),
                    (_, "message_id") | (_, "alias") => format!("{c} || '.g{k}'"),
                    ("messages", "uidvalidity") => format!("{c} + {}", 1i64 << k),
                    ("messages", "imap_done") => "1".into(),
                    ("outbox", "status") => "'sent'".into(),
                    (
                        _,
                        "created_at" | "updated_at" | "at" | "received_at" | "started_at"
                        | "due_at" | "next_at" | "added_at",
                    ) => {
                        format!("{c} - {month}")
                    }
                    _ => c.clone(),
                })
                .collect();
            let sql = format!(
                "INSERT INTO {table} ({}) SELECT {} FROM {table}",
                cols.join(", "),
                exprs.join(", ")
            );
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .execute(&mut *tx)
                .await
                .expect("copy");
        }
        tx.commit().await.expect("commit");
    }
    // A daemon's write-ahead log stays small (SQLite checkpoints it every 1,000 pages); the
    // copies above left a big one behind, which would slow every read of the timed part.
    sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
        .execute(pool)
        .await
        .expect("checkpoint");
    let stored = store.count("tickets").await.expect("count");
    let file = std::fs::metadata(dir.path().join("supportd.db")).map_or(0, |m| m.len());
    println!(
        "grow:         {stored} tickets stored ({:.1} GiB SQLite file) in {:.0} s",
        file as f64 / (1u64 << 30) as f64,
        t0.elapsed().as_secs_f64()
    );
    let mails: Vec<Vec<u8>> = (0..3000)
        .map(|i| personalise(&corpus[i % corpus.len()], 2_000_000 + i, run))
        .collect();
    run_loop(
        &format!("grow at {stored}"),
        &settings,
        &store,
        &support,
        mails,
    )
    .await;
    use supportd::store::read::{TicketFilter, TicketOrder};
    let now = SystemClock.now();
    let newest = supportd::domain::TicketRef(
        sqlx::query_scalar::<_, i64>("SELECT MAX(id) FROM tickets")
            .fetch_one(store.pool())
            .await
            .expect("newest"),
    );
    let timed = |label: &str, t: Instant, rows: usize| {
        println!(
            "grow at {stored}: {label}: {:.2} ms ({rows} rows)",
            t.elapsed().as_secs_f64() * 1e3
        )
    };
    for (label, order, filter) in [
        (
            "tickets list (queue, 50)",
            TicketOrder::Queue,
            TicketFilter::None,
        ),
        (
            "tickets list --all (newest, 50)",
            TicketOrder::Newest,
            TicketFilter::None,
        ),
        (
            "tickets list --due 4h",
            TicketOrder::Queue,
            TicketFilter::DueWithin(4 * 3_600_000),
        ),
        (
            "tickets list --all --overdue",
            TicketOrder::Newest,
            TicketFilter::Overdue,
        ),
    ] {
        let t = Instant::now();
        let r = store
            .list_tickets(order, filter, now, 50)
            .await
            .expect(label);
        timed(label, t, r.len());
    }
    let t = Instant::now();
    let r = store.ticket_detail(newest).await.expect("show");
    timed("ticket show", t, r.iter().count());
    let t = Instant::now();
    let r = store.due_timers(now, 100).await.expect("due");
    timed("timer worker: due timers", t, r.len());
    let t = Instant::now();
    let r = store.next_timer_at().await.expect("next");
    timed("timer worker: next timer", t, r.iter().count());
    let t = Instant::now();
    let r = store
        .month_rows(now - 30 * 86_400_000, now, now)
        .await
        .expect("month");
    timed(
        "monthly report figures (the last 30 days)",
        t,
        r.created.len(),
    );
    let mails: Vec<Vec<u8>> = (0..3000)
        .map(|i| personalise(&corpus[i % corpus.len()], 3_000_000 + i, run))
        .collect();
    daemon_process(
        &format!("grow at {stored}"),
        dir.path(),
        &store,
        &support,
        (format!("mix-{run}-3"), mails),
    )
    .await;
}

/// The real daemon as ops run it — `supportd run`, a process of its own (mailbox loop with IDLE,
/// outbox worker sending the acknowledgements, timers) on the bench's database — takes in
/// `mails` delivered to its mailbox. Prints its peak RSS (VmHWM) and CPU time, read from /proc
/// for that process alone: first started and stopped with nothing to fetch (its start-up and
/// idle cost), then with the mails.
async fn daemon_process(
    label: &str,
    dir: &std::path::Path,
    store: &Store,
    support: &str,
    (prefix, mails): (String, Vec<Vec<u8>>),
) {
    let n = mails.len();
    let (idle_cpu, idle_rss, _, _) = daemon_run(dir, store, "", 0, Duration::from_secs(2)).await;
    for chunk in mails.chunks(500) {
        supportd::testing::lmtp_deliver(support, chunk)
            .await
            .expect("LMTP fill");
    }
    drop(mails);
    let (cpu, rss, got, el) = daemon_run(dir, store, &prefix, n, Duration::from_secs(900)).await;
    println!(
        "{label}: `supportd run` as its own process, started and stopped with nothing to fetch: CPU {idle_cpu:.2} s, peak RSS {idle_rss} MiB"
    );
    println!(
        "{label}: `supportd run` as its own process: {got} of {n} mails taken in {:.1} s after its start; CPU {:.0} µs/mail beyond the idle run's (acknowledgements sent, IMAP flags set, bounces of them taken in); peak RSS {rss} MiB",
        el.as_secs_f64(),
        (cpu - idle_cpu).max(0.0) * 1e6 / n as f64,
    );
}

/// Runs `supportd run` on the bench's config until `n` inbound mails whose Message-ID starts
/// with `prefix` are stored (found through the Message-ID index, not a scan), or the count of
/// them stalls for 5 s, or for `wait` at most (at least 2 s); returns its CPU seconds and peak
/// RSS (MiB), the count and the time from its start.
async fn daemon_run(
    dir: &std::path::Path,
    store: &Store,
    prefix: &str,
    n: usize,
    wait: Duration,
) -> (f64, u64, usize, Duration) {
    let start = Instant::now();
    // `BENCH_SUPPORTD=path` runs another build of the daemon (to compare two versions).
    let bin = std::env::var("BENCH_SUPPORTD")
        .unwrap_or_else(|_| env!("CARGO_BIN_EXE_supportd").to_string());
    let mut child = std::process::Command::new(bin)
        .args(["run", "--config"])
        .arg(dir.join("bench.toml"))
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(dir.join("daemon.log")).expect("log"))
        .spawn()
        .expect("supportd run");
    let pid = child.id();
    let proc_file =
        |f: &str| std::fs::read_to_string(format!("/proc/{pid}/{f}")).unwrap_or_default();
    let (mut hwm, mut cpu, mut got, mut changed) = (0u64, 0.0f64, 0usize, Instant::now());
    // What the highest sample's RSS was made of (KiB): anonymous memory, mapped files, shared
    // memory (SQLite's WAL index).
    let (mut top, mut parts) = (0u64, (0u64, 0u64, 0u64));
    while start.elapsed() < wait {
        tokio::time::sleep(Duration::from_millis(250)).await;
        // Read before the count, so the figures cover the work counted.
        let status = proc_file("status");
        let kib = |key: &str| {
            status
                .lines()
                .find(|l| l.starts_with(key))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        };
        hwm = kib("VmHWM:").unwrap_or(hwm);
        if let Some(rss) = kib("VmRSS:").filter(|&r| r > top) {
            top = rss;
            parts = (
                kib("RssAnon:").unwrap_or(0),
                kib("RssFile:").unwrap_or(0),
                kib("RssShmem:").unwrap_or(0),
            );
        }
        cpu = proc_cpu_secs(&proc_file("stat")).max(cpu);
        let now: usize = sqlx::query_scalar::<_, i64>(
            "SELECT COUNT(*) FROM messages WHERE direction = 'in' AND message_id >= $1 AND message_id < $2",
        )
        .bind(prefix)
        .bind(format!("{prefix}\u{10FFFF}"))
        .fetch_one(store.pool())
        .await
        .expect("count") as usize;
        if now != got {
            (got, changed) = (now, Instant::now());
        }
        let settled = got >= n || (got > 0 && changed.elapsed() > Duration::from_secs(5));
        if settled && start.elapsed() >= Duration::from_secs(2) {
            break;
        }
    }
    let el = start.elapsed();
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
    let status = child.wait().expect("wait");
    assert!(status.success(), "supportd run: {status}");
    eprintln!(
        "  highest RSS sampled (every 250 ms): {} MiB = anonymous {} + files {} + shared {} MiB",
        top / 1024,
        parts.0 / 1024,
        parts.1 / 1024,
        parts.2 / 1024
    );
    (cpu, hwm / 1024, got, el)
}

/// User + system CPU seconds from a /proc/PID/stat line.
fn proc_cpu_secs(stat: &str) -> f64 {
    // Fields after the command name (which may hold spaces) in parentheses.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<u64> = rest
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0))
        .collect();
    // utime and stime are fields 14 and 15 of the line (11 and 12 after the command name).
    (f.get(11).copied().unwrap_or(0) + f.get(12).copied().unwrap_or(0)) as f64 / 100.0
}

/// `-- report [N]`: the monthly report of a month of N tickets (default 100,000) on SQLite, with
/// three other months of N tickets each stored around it: the figures (this month and the
/// month before, every query), then each rendering.
async fn bench_report(n: usize) {
    use supportd::report::{Month, Targets};
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("r.db").display());
    let store = Store::connect(&url, 2).await.expect("store");
    store.migrate().await.expect("migrate");
    let tz: chrono_tz::Tz = "Asia/Shanghai".parse().expect("tz");
    let nov = Month::parse("2026-11").expect("month");
    let t0 = Instant::now();
    let mut id = 0i64;
    for m in [nov.previous().previous(), nov.previous(), nov, nov.next()] {
        let (from, to) = m.bounds(tz);
        let span = (to - from) / n as i64;
        let sql = format!(
            "WITH RECURSIVE k(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM k WHERE i + 1 < {n})
             INSERT INTO tickets (id, status, requester, subject, language, created_at, updated_at, solved_at,
                 category, severity, priority, owner, first_reply_at, agent_replies, reopens, survey_sent_at)
             SELECT {id} + i + 1, CASE WHEN i % 20 = 0 THEN 'open' ELSE 'solved' END, 'c' || i || '@example.com', 's', 'zh-Hans',
                 {from} + i * {span}, {from} + i * {span},
                 CASE WHEN i % 20 = 0 THEN NULL ELSE {from} + i * {span} + 7200000 END,
                 CASE i % 4 WHEN 0 THEN 'inquiry' WHEN 1 THEN 'status_query' WHEN 2 THEN 'complaint' ELSE 'suggestion' END,
                 CASE WHEN i % 4 = 2 THEN (CASE WHEN i % 12 = 2 THEN 'major' ELSE 'general' END) ELSE NULL END,
                 CASE i % 3 WHEN 0 THEN 'normal' WHEN 1 THEN 'high' ELSE 'low' END,
                 'agent' || (i % 25) || '@desk.example', {from} + i * {span} + 3600000, 1 + i % 3, CASE WHEN i % 30 = 0 THEN 1 ELSE 0 END,
                 CASE WHEN i % 20 = 0 THEN NULL ELSE {from} + i * {span} + 7200000 END
             FROM k"
        );
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .execute(store.pool())
            .await
            .expect("tickets");
        for (kind, offset, span_h) in [("ack", 0, 24), ("solution", 0, 48)] {
            let sql = format!(
                "INSERT INTO timers (ticket_id, kind, started_at, span_ms, due_at, next_at, state, met_at, breached_at, created_at)
                 SELECT id, '{kind}', created_at + {offset}, {span_h} * 3600000, created_at + {span_h} * 3600000, created_at + {span_h} * 3600000,
                     CASE WHEN id % 17 = 0 THEN 'breached' ELSE 'met' END,
                     CASE WHEN id % 17 = 0 THEN NULL ELSE created_at + 3600000 END,
                     CASE WHEN id % 17 = 0 THEN created_at + {span_h} * 3600000 ELSE NULL END, created_at
                 FROM tickets WHERE id > {id}"
            );
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .execute(store.pool())
                .await
                .expect("timers");
        }
        let sql = format!(
            "INSERT INTO surveys (ticket_id, speed, solving, attitude, overall, at)
             SELECT id, 1 + id % 5, 1 + (id / 3) % 5, 1 + (id / 7) % 5, CASE WHEN id % 10 = 0 THEN 2 ELSE 5 END, survey_sent_at + 600000
             FROM tickets WHERE id > {id} AND survey_sent_at IS NOT NULL AND id % 3 = 0"
        );
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .execute(store.pool())
            .await
            .expect("surveys");
        id += n as i64;
    }
    sqlx::query("ANALYZE")
        .execute(store.pool())
        .await
        .expect("analyze");
    println!(
        "report:       {} tickets in 4 months stored in {:.1} s",
        4 * n,
        t0.elapsed().as_secs_f64()
    );
    let now = nov.next().next().at(1, 0, tz);
    let targets = Targets::default();
    let mut best = f64::MAX;
    let mut r = None;
    for _ in 0..3 {
        let t = Instant::now();
        r = Some(
            supportd::report::monthly(&store, nov, tz, &targets, now)
                .await
                .expect("report"),
        );
        best = best.min(t.elapsed().as_secs_f64());
    }
    let r = r.expect("report");
    println!(
        "report:       figures of a month of {} tickets and the month before: {:.0} ms (best of 3)",
        r.month.tickets_created,
        best * 1000.0
    );
    let t = Instant::now();
    let text = supportd::report::text::render(&r, supportd::domain::Language::ZhHans);
    let json = serde_json::to_string(&r).expect("json");
    println!(
        "report:       text {} B + JSON {} B rendered in {:.1} ms",
        text.len(),
        json.len(),
        t.elapsed().as_secs_f64() * 1000.0
    );
    let t = Instant::now();
    let html = supportd::report::html::render(
        &r,
        supportd::domain::Language::ZhHans,
        supportd::report::html::ChartsAs::InlineSvg,
        "客服中心",
    );
    println!(
        "report:       HTML with inline SVG charts, {} KB, in {:.0} ms",
        html.len() / 1024,
        t.elapsed().as_secs_f64() * 1000.0
    );
    let t = Instant::now();
    let mut png = 0;
    for c in supportd::report::charts::Chart::ALL {
        png += supportd::report::charts::png(c, &r, supportd::domain::Language::ZhHans)
            .map(|p| p.len())
            .unwrap_or(0);
    }
    println!(
        "report:       5 PNG charts for the mail, {} KB, in {:.0} ms",
        png / 1024,
        t.elapsed().as_secs_f64() * 1000.0
    );
}

/// `-- classify-cv`: choosing the model's training settings by cross-validation on the shipped
/// corpus alone, one fold per writer (train on three writers, measure on the fourth); the
/// blind sets are never looked at here.
fn bench_classify_cv() {
    use supportd::inbound::classify::{corpus, model::TrainOptions, train_with, Classifier};
    let all = corpus::shipped();
    let rules = Classifier::builtin().with_model(None);
    // One fold per writer: every writer's mail is measured by a model that never saw it.
    let mut folds: Vec<String> = all
        .iter()
        .filter_map(|m| m.id.split_once('-').map(|(p, _)| format!("{p}-")))
        .collect();
    folds.sort();
    folds.dedup();
    let k = folds.len();
    for (epochs, rate, l2, positive_weight, major_weight) in [
        (8, 0.4, 1e-5, 4.0, 6.0),
        (8, 0.4, 1e-5, 6.0, 6.0),
        (8, 0.4, 1e-5, 8.0, 6.0),
        (8, 0.4, 1e-5, 6.0, 10.0),
        (8, 0.4, 1e-5, 6.0, 14.0),
        (12, 0.4, 1e-5, 6.0, 6.0),
    ] {
        let o = TrainOptions {
            epochs,
            rate,
            l2,
            positive_weight,
            major_weight,
        };
        let (mut cat, mut comp, mut major, mut urgent, mut n) = (0.0, 0.0, 0.0, 0.0, 0.0);
        let (mut found, mut labelled, mut false_alarms) = (0, 0, 0);
        let (mut severity_right, mut severity_judged) = (0, 0);
        let t = Instant::now();
        for f in &folds {
            let (test, train): (Vec<_>, Vec<_>) = all
                .iter()
                .cloned()
                .partition(|m| m.id.starts_with(f.as_str()));
            let model = train_with(&rules, &train, &[], 1.0, o);
            let c = rules.clone().with_model(Some(std::sync::Arc::new(model)));
            let e = c.evaluate(&test);
            cat += e.category_accuracy();
            comp += e.complaint_recall();
            major += e.major_recall();
            urgent += e.urgent_accuracy();
            found += e.urgent_found;
            labelled += e.urgent_labelled;
            false_alarms += e.urgent_false;
            severity_right += e.severity_right;
            severity_judged += e.severity_judged;
            n += 1.0;
        }
        println!(
            "classify-cv:  epochs {epochs} rate {rate} l2 {l2} urgent positives ×{positive_weight} major positives ×{major_weight}: category {:.1} %, complaints found {:.1} %, major found {:.1} %, severity {severity_right} of {severity_judged} right, urgent {:.1} % (found {found} of {labelled}, {false_alarms} false alarms) (mean of {k} writer folds, {:.1} s)",
            cat / n * 100.0, comp / n * 100.0, major / n * 100.0, urgent / n * 100.0, t.elapsed().as_secs_f64()
        );
    }
    let e = rules.evaluate(&all);
    println!(
        "classify-cv:  the rules alone on the whole corpus: category {:.1} %, complaints found {:.1} %, major found {:.1} %, urgent {:.1} %",
        e.category_accuracy() * 100.0, e.complaint_recall() * 100.0, e.major_recall() * 100.0, e.urgent_accuracy() * 100.0
    );
}

fn main() {
    let n: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(5000);
    if let Ok(filter) = std::env::var("BENCH_LOG") {
        // e.g. `BENCH_LOG=sqlx=debug`: every statement with its time, to find a slow one.
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .with_writer(std::io::stderr)
            .init();
    }
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    if std::env::args().any(|a| a == "classify-cv") {
        bench_classify_cv();
        return;
    }
    if std::env::args().any(|a| a == "report") {
        // `-- report [N]`: the monthly report of a month of N tickets (default 100,000).
        rt.block_on(bench_report(if n == 5000 { 100_000 } else { n }));
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let settings = config(dir.path(), "support@example.test");
    if std::env::args().any(|a| a == "mix") {
        // `-- mix [N]`: the realistic mix end to end alone (for profiling).
        rt.block_on(bench_mix(n));
        return;
    }
    if std::env::args().any(|a| a == "burst") {
        // `-- burst [N]`: acknowledgement latency while N mails of the mix arrive at once.
        rt.block_on(bench_burst(n, std::env::args().any(|a| a == "backlog")));
        return;
    }
    if std::env::args().any(|a| a == "grow") {
        // `-- grow N`: the realistic mix and the O(result) reads at N stored tickets.
        rt.block_on(bench_grow(n));
        return;
    }
    if std::env::args().any(|a| a == "store") {
        // `-- store [N]`: the SQLite group commit alone (for profiling).
        rt.block_on(bench_store(&settings, n, 500));
        return;
    }
    bench_pure(&settings);
    if std::env::args().any(|a| a == "pure") {
        // `cargo bench --bench pipeline -- pure`: the pure stages alone (for profiling).
        return;
    }
    bench_classify();
    bench_decide(&settings);
    if std::env::args().any(|a| a == "decide") {
        // `-- decide`: the pure work only (pure stages, classify, decide), for profiling.
        return;
    }
    rt.block_on(bench_store(&settings, n, 1));
    rt.block_on(bench_store(&settings, n, 500));
    rt.block_on(bench_store_postgres(&settings, n, 500));
    rt.block_on(bench_imap(n));
    rt.block_on(bench_mix(n));
}
