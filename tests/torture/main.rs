//! The torture suite: the real `supportd` binary against a mail rig of its own (Dovecot and
//! Postfix on other ports than the `it` suite's, started by `deploy/dev/mailrig` with
//! `SUPPORTD_RIG_*`), killed and starved, asserting the invariants from the database and from
//! the customers' mailboxes read over IMAP:
//!
//! - `kill_storm_*`: `kill -9` every 0.3–3 s through a burst of new customers and their
//!   follow-ups, on SQLite and PostgreSQL: every delivered Message-ID stored once, one ticket and
//!   one acknowledgement per customer (an acknowledgement sent twice only with the same
//!   Message-ID — the SMTP-accepted-before-commit window, counted and bounded), everything
//!   acknowledged within seconds of the last restart (no lease waits out a dead daemon);
//! - `imap_outage`: Dovecot stopped and started: unready within 5 s, mail read within 5 s of
//!   its return;
//! - `smtp_outage`: Postfix stopped: acknowledgements wait and go out once it is back, once;
//! - `full_disk`: the SQLite database on a small tmpfs that fills up: mail waits (never
//!   quarantined), and once space is back the daemon carries on without a restart;
//! - `hostile_mail`: 30 MB, 5,000 parts, 200-deep nesting, a 1 MB header line, binary
//!   garbage, an empty mail: all stored, the daemon lives, peak memory ≤ 3 × 30 MB + 64 MB;
//! - `arrival_during_fetch`: a mail delivered while a burst is being fetched is read at once.
//!
//! Sizes are bounded for CI (`TORTURE_MAILS`, default 150); run it longer by hand with e.g.
//! `TORTURE_MAILS=600 TORTURE_KILLS=30 cargo test --test torture -- --nocapture`. The scenarios
//! run one at a time (they stop and start the torture rig's servers).

use rand::Rng;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};
use supportd::config::{AfterProcessing, MailboxSettings, Secret, TlsMode};
use supportd::inbound::parse::parse;
use supportd::store::Store;

const BIN: &str = env!("CARGO_BIN_EXE_supportd");
const RIG: &str = "/tmp/supportd-torture-rig";
const IMAP: u16 = 24143;
const SMTP: u16 = 20025;
const LMTP: u16 = 20024;
const SUBMISSION: u16 = 20587;
const DOMAIN: &str = "example.test";

/// One scenario at a time: they stop and start the rig's servers.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn mails() -> usize {
    std::env::var("TORTURE_MAILS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(150)
}

fn kills() -> usize {
    std::env::var("TORTURE_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(8)
}

fn rig_env(cmd: &mut std::process::Command) -> &mut std::process::Command {
    cmd.env("SUPPORTD_RIG_DIR", RIG)
        .env("SUPPORTD_RIG_IMAP_PORT", IMAP.to_string())
        .env("SUPPORTD_RIG_SMTP_PORT", SMTP.to_string())
        .env("SUPPORTD_RIG_LMTP_PORT", LMTP.to_string())
        .env("SUPPORTD_RIG_SUBMISSION_PORT", SUBMISSION.to_string())
}

fn rig(action: &str) {
    let ok = rig_env(&mut std::process::Command::new(
        root().join("deploy/dev/mailrig"),
    ))
    .arg(action)
    .stdin(Stdio::null())
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .status()
    .expect("mailrig")
    .success();
    assert!(ok, "deploy/dev/mailrig {action} (torture rig) failed");
}

fn quiet(cmd: &str, args: &[&str]) {
    let _ = std::process::Command::new(cmd)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// Stops Dovecot as a crash or a reboot would: the master and every imap process still
/// serving a session (`doveadm stop` alone leaves established sessions running).
fn dovecot_stop() {
    quiet(
        "doveadm",
        &["-c", &format!("{RIG}/dovecot/dovecot.conf"), "stop"],
    );
    quiet("fuser", &["-k", "-KILL", &format!("{IMAP}/tcp")]);
    wait_port_closed(IMAP);
}
fn dovecot_start() {
    quiet("dovecot", &["-c", &format!("{RIG}/dovecot/dovecot.conf")]);
}
fn postfix_stop() {
    quiet("postfix", &["-c", &format!("{RIG}/postfix/conf"), "stop"]);
    wait_port_closed(SMTP);
}
fn postfix_start() {
    quiet("postfix", &["-c", &format!("{RIG}/postfix/conf"), "start"]);
}

fn port_open(port: u16) -> bool {
    std::net::TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_millis(200))
        .is_ok()
}

fn wait_port_closed(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while port_open(port) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn unique(prefix: &str) -> String {
    format!("{prefix}-{:08x}", rand::thread_rng().gen::<u32>())
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

async fn fresh_database(postgres: bool, dir: &Path) -> String {
    if !postgres {
        return format!("sqlite://{}?mode=rwc", dir.join("supportd.db").display());
    }
    use sqlx::Connection;
    let name = unique("supportd_torture").replace('-', "_");
    let mut conn = sqlx::PgConnection::connect("postgres://postgres@127.0.0.1:5432/postgres")
        .await
        .expect("PostgreSQL on 127.0.0.1:5432");
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .expect("create database");
    format!("postgres://postgres@127.0.0.1:5432/{name}")
}

/// A daemon's configuration and its database.
struct Setup {
    dir: tempfile::TempDir,
    config: PathBuf,
    url: String,
    support: String,
    http: u16,
}

async fn setup(postgres: bool, db_url: Option<String>) -> Setup {
    rig("start");
    let dir = tempfile::tempdir().expect("tempdir");
    let support = format!("{}@{DOMAIN}", unique("tsupport"));
    let url = match db_url {
        Some(u) => u,
        None => fresh_database(postgres, dir.path()).await,
    };
    let http = free_port();
    let config = dir.path().join("supportd.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[service]
support_address = "{support}"
state_dir = "{state}"
templates_dir = "{templates}"
shutdown_timeout_secs = 10
internal_domains = []

[database]
url = "{url}"

[mailboxes.support]
host = "127.0.0.1"
port = {IMAP}
tls = "none"
user = "{support}"
password = "test"
batch_size = 50
poll_interval_secs = 5

[smtp]
host = "127.0.0.1"
port = {SMTP}
tls = "none"

[outbox]
retry_base_secs = 1
retry_max_secs = 2
give_up_after_secs = 600
batch_size = 50

[http]
listen = "127.0.0.1:{http}"

[log]
filter = "info,supportd::outbound=debug"

[threading]
reply_secret = "torture-secret-0123456789"
"#,
            state = dir.path().display(),
            templates = root().join("templates").display(),
        ),
    )
    .expect("config");
    Setup {
        dir,
        config,
        url,
        support,
        http,
    }
}

impl Drop for Setup {
    /// A failed scenario shows the end of the daemon's log (the temporary directory goes).
    fn drop(&mut self) {
        if std::env::var_os("TORTURE_KEEP").is_some() {
            let dir = std::mem::replace(&mut self.dir, tempfile::tempdir().expect("tempdir"));
            eprintln!("kept: {}", dir.keep().display());
        }
        if std::thread::panicking() {
            let log = log_of(self, "daemon.log");
            let lines: Vec<&str> = log.lines().collect();
            eprintln!("--- last lines of the daemon's log ---");
            for l in &lines[lines.len().saturating_sub(60)..] {
                eprintln!("{l}");
            }
        }
    }
}

struct Daemon {
    child: std::process::Child,
}

impl Daemon {
    fn start(s: &Setup, log: &str) -> Daemon {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(s.dir.path().join(log))
            .expect("log");
        let child = std::process::Command::new(BIN)
            .args(["run", "--config"])
            .arg(&s.config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start supportd");
        Daemon { child }
    }
    fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
    fn stop(mut self) {
        quiet("kill", &["-TERM", &self.child.id().to_string()]);
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        panic!("the daemon did not stop within 30 s of SIGTERM");
    }
    /// Peak resident memory (VmHWM), KiB.
    fn peak_kib(&self) -> u64 {
        std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("VmHWM:"))
                    .and_then(|l| l.split_whitespace().nth(1).map(str::to_string))
            })
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    }
    fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

fn log_of(s: &Setup, log: &str) -> String {
    std::fs::read_to_string(s.dir.path().join(log)).unwrap_or_default()
}

fn customer_mail(from: &str, to: &str, subject: &str, id: &str, extra: &str) -> Vec<u8> {
    format!(
        "From: {from}\r\nTo: {to}\r\nSubject: {subject}\r\nMessage-ID: <{id}>\r\nDate: Mon, 30 Nov 2026 10:00:00 +0800\r\n{extra}MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n您好，请帮忙处理一下。\r\n"
    )
    .into_bytes()
}

async fn deliver(to: &str, mails: &[Vec<u8>]) {
    supportd::testing::lmtp_deliver_at(LMTP, to, mails)
        .await
        .expect("LMTP delivery into the torture rig");
}

fn mailbox(user: &str) -> MailboxSettings {
    MailboxSettings {
        host: "127.0.0.1".into(),
        port: IMAP,
        tls: TlsMode::None,
        user: user.into(),
        password: Secret::new("test"),
        password_file: None,
        auth: None,
        oauth: None,
        token: None,
        folder: "INBOX".into(),
        after: AfterProcessing::Seen,
        move_to: None,
        batch_size: 200,
        poll_interval_secs: 30,
        idle: true,
    }
}

async fn read_inbox(user: &str) -> Vec<Vec<u8>> {
    let Ok(mut conn) = supportd::inbound::fetch::connect(&mailbox(user)).await else {
        return Vec::new();
    };
    if conn.select("INBOX").await.is_err() {
        return Vec::new();
    }
    let uids = conn.new_uids(0).await.unwrap_or_default();
    let mails = conn.fetch(&uids).await.unwrap_or_default();
    conn.logout().await;
    mails.into_iter().map(|(_, r)| r).collect()
}

async fn count(store: &Store, what: &'static str) -> i64 {
    store.count(what).await.unwrap_or(-1)
}

async fn pending_outbox(store: &Store) -> i64 {
    sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM outbox WHERE status <> 'sent'")
        .fetch_one(store.pool())
        .await
        .unwrap_or(-1)
}

async fn wait_until(secs: u64, what: &str, mut f: impl AsyncFnMut() -> bool) -> Duration {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(secs) {
        if f().await {
            return start.elapsed();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out after {secs} s waiting for: {what}");
}

/// An HTTP GET on the daemon's ops port: the body.
async fn http_body(port: u16, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Ok(mut s) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await else {
        return String::new();
    };
    let _ = s
        .write_all(
            format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await;
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut buf)).await;
    String::from_utf8_lossy(&buf).into_owned()
}

/// The mean and the largest observed bucket bound of `supportd_send_commit_seconds`: how long a
/// sent mail waited, after the SMTP server took it, for `sent` to commit.
async fn send_commit_window(port: u16) -> (f64, u64) {
    let m = http_body(port, "/metrics").await;
    let value = |name: &str| {
        m.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    let sum = value("supportd_send_commit_seconds_sum");
    let count = value("supportd_send_commit_seconds_count");
    (if count > 0.0 { sum / count } else { 0.0 }, count as u64)
}

async fn readyz(port: u16) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Ok(Ok(mut s)) = tokio::time::timeout(
        Duration::from_secs(2),
        tokio::net::TcpStream::connect(("127.0.0.1", port)),
    )
    .await
    else {
        return 0;
    };
    let _ = s
        .write_all(b"GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await;
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(7), s.read_to_end(&mut buf)).await;
    String::from_utf8_lossy(&buf)
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

/// Per customer: how many acknowledgement mails arrived, and how many distinct Message-IDs.
async fn acks_of(customers: &[String]) -> (usize, usize, usize) {
    let (mut missing, mut duplicates, mut distinct_twice) = (0, 0, 0);
    for c in customers {
        let acks: Vec<String> = read_inbox(c)
            .await
            .iter()
            .map(|m| parse(m))
            .filter(|m| m.header("auto-submitted").is_some())
            .map(|m| m.message_id.to_string())
            .collect();
        let mut ids = acks.clone();
        ids.sort();
        ids.dedup();
        if ids.is_empty() {
            missing += 1;
        }
        if ids.len() > 1 {
            distinct_twice += 1;
        }
        duplicates += acks.len().saturating_sub(ids.len());
    }
    (missing, duplicates, distinct_twice)
}

async fn kill_storm(postgres: bool) {
    let _one = ONE_AT_A_TIME.lock().await;
    let s = setup(postgres, None).await;
    let n = mails();
    let customers: Vec<String> = (0..n)
        .map(|i| format!("{}@{DOMAIN}", unique(&format!("k{i}"))))
        .collect();
    let firsts: Vec<Vec<u8>> = customers
        .iter()
        .enumerate()
        .map(|(i, c)| {
            customer_mail(
                c,
                &s.support,
                &format!("问题 {i}"),
                &format!("first-{i}.{}@qq.example", s.http),
                "",
            )
        })
        .collect();
    let followups: Vec<Vec<u8>> = customers
        .iter()
        .enumerate()
        .filter(|(i, _)| i % 3 == 0)
        .map(|(i, c)| {
            let first = format!("first-{i}.{}@qq.example", s.http);
            customer_mail(
                c,
                &s.support,
                &format!("Re: 问题 {i}"),
                &format!("follow-{i}.{}@qq.example", s.http),
                &format!("In-Reply-To: <{first}>\r\nReferences: <{first}>\r\n"),
            )
        })
        .collect();
    let delivered = firsts.len() + followups.len();
    let (head, tail) = firsts.split_at(n / 2);
    deliver(&s.support, head).await;
    let mut rng = rand::thread_rng();
    let mut pending_tail: Vec<&[Vec<u8>]> = tail.chunks(tail.len().div_ceil(3).max(1)).collect();
    let mut pending_follow: Vec<&[Vec<u8>]> = followups
        .chunks(followups.len().div_ceil(3).max(1))
        .collect();
    for k in 0..kills() {
        let d = Daemon::start(&s, "daemon.log");
        tokio::time::sleep(Duration::from_millis(rng.gen_range(300..3000))).await;
        // Mail keeps arriving during the storm.
        if let Some(c) = pending_tail.pop() {
            deliver(&s.support, c).await;
        } else if let Some(c) = pending_follow.pop() {
            deliver(&s.support, c).await;
        }
        d.kill9();
        let _ = k;
    }
    for c in pending_tail.into_iter().chain(pending_follow) {
        deliver(&s.support, c).await;
    }
    let d = Daemon::start(&s, "daemon.log");
    let store = Store::connect(&s.url, 2).await.expect("store");
    let stored = wait_until(120, "every delivered mail stored", async || {
        count(&store, "inbound").await == delivered as i64
    })
    .await;
    let acked = wait_until(60, "every acknowledgement sent", async || {
        pending_outbox(&store).await == 0 && count(&store, "outbox").await >= n as i64
    })
    .await;
    // Give the last acknowledgements time to reach the mailboxes.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let tickets = count(&store, "tickets").await;
    let distinct: i64 = sqlx::query_scalar(
        "SELECT COUNT(DISTINCT message_id) FROM messages WHERE direction = 'in'",
    )
    .fetch_one(store.pool())
    .await
    .expect("count");
    let (missing, duplicates, twice) = acks_of(&customers).await;
    let (window, sent) = send_commit_window(s.http).await;
    d.stop();
    println!(
        "kill storm ({}): {n} customers, {delivered} mails, {} kills: all stored {:.1} s and all acknowledgements sent {:.1} s after the last start; {tickets} tickets; acknowledgements missing {missing}, re-sent with the same Message-ID {duplicates}, two different ones {twice}; SMTP-accepted-to-committed window {:.2} ms on average over the last daemon's {sent} mails",
        if postgres { "PostgreSQL" } else { "SQLite" },
        kills(),
        stored.as_secs_f64(),
        acked.as_secs_f64(),
        window * 1000.0,
    );
    assert_eq!(
        distinct, delivered as i64,
        "every delivered mail stored once"
    );
    assert_eq!(tickets, n as i64, "one ticket per customer");
    assert_eq!(missing, 0, "every customer acknowledged");
    assert_eq!(twice, 0, "never two different acknowledgements");
    // The at-least-once window (SMTP accepted, then killed before `sent` was committed): at
    // most one re-send per kill, with the same Message-ID.
    assert!(
        duplicates <= kills(),
        "{duplicates} re-sent acknowledgements for {} kills",
        kills()
    );
    assert!(
        acked < Duration::from_secs(30),
        "no lease waits out a dead daemon"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_storm_sqlite() {
    kill_storm(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_storm_postgresql() {
    kill_storm(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imap_outage() {
    let _one = ONE_AT_A_TIME.lock().await;
    let s = setup(false, None).await;
    let d = Daemon::start(&s, "daemon.log");
    wait_until(30, "ready", async || readyz(s.http).await == 200).await;
    let started = Instant::now();
    dovecot_stop();
    let noticed = wait_until(15, "unready while Dovecot is down", async || {
        readyz(s.http).await == 503
    })
    .await
    .max(started.elapsed());
    let customer = format!("{}@{DOMAIN}", unique("out"));
    // Mail sent while Dovecot is down waits in Postfix.
    let smtp = lettre::AsyncSmtpTransport::<lettre::Tokio1Executor>::builder_dangerous("127.0.0.1")
        .port(SMTP)
        .build();
    let raw = customer_mail(
        &customer,
        &s.support,
        "outage",
        &format!("{}@qq.example", unique("o")),
        "",
    );
    use lettre::AsyncTransport;
    smtp.send_raw(
        &lettre::address::Envelope::new(
            Some(customer.parse().expect("from")),
            vec![s.support.parse().expect("to")],
        )
        .expect("envelope"),
        &raw,
    )
    .await
    .expect("Postfix takes it");
    tokio::time::sleep(Duration::from_secs(3)).await;
    dovecot_start();
    let back = Instant::now();
    let store = Store::connect(&s.url, 1).await.expect("store");
    let resumed = wait_until(30, "the mail read after Dovecot is back", async || {
        count(&store, "inbound").await == 1
    })
    .await;
    let ready = back.elapsed();
    d.stop();
    println!(
        "IMAP outage: unready {:.1} s after Dovecot stopped; mail read {:.1} s after it came back (Postfix retries every ≤5 s)",
        noticed.as_secs_f64(),
        resumed.as_secs_f64()
    );
    assert!(noticed <= Duration::from_secs(5), "noticed in {noticed:?}");
    assert!(
        resumed <= Duration::from_secs(12),
        "resumed in {resumed:?} ({ready:?})"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smtp_outage() {
    let _one = ONE_AT_A_TIME.lock().await;
    let s = setup(false, None).await;
    postfix_stop();
    let d = Daemon::start(&s, "daemon.log");
    let customers: Vec<String> = (0..10)
        .map(|i| format!("{}@{DOMAIN}", unique(&format!("so{i}"))))
        .collect();
    let mails: Vec<Vec<u8>> = customers
        .iter()
        .map(|c| {
            customer_mail(
                c,
                &s.support,
                "SMTP down",
                &format!("{}@qq.example", unique("s")),
                "",
            )
        })
        .collect();
    deliver(&s.support, &mails).await;
    let store = Store::connect(&s.url, 1).await.expect("store");
    wait_until(30, "stored and queued", async || {
        count(&store, "outbox").await == 10
    })
    .await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(count(&store, "sent").await, 0, "nothing could be sent");
    postfix_start();
    let back = wait_until(30, "sent once Postfix is back", async || {
        pending_outbox(&store).await == 0
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (missing, duplicates, twice) = acks_of(&customers).await;
    d.stop();
    println!(
        "SMTP outage: the 10 acknowledgements went out {:.1} s after Postfix came back",
        back.as_secs_f64()
    );
    assert_eq!((missing, duplicates, twice), (0, 0, 0));
    assert!(back <= Duration::from_secs(10), "{back:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_disk() {
    let _one = ONE_AT_A_TIME.lock().await;
    let mount = tempfile::tempdir().expect("mount point");
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=64m", "tmpfs"])
        .arg(mount.path())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !mounted {
        eprintln!("full_disk: SKIPPED — cannot mount a tmpfs here (needs root)");
        return;
    }
    struct Unmount(PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            quiet("umount", &["-l", &self.0.to_string_lossy()]);
        }
    }
    let _unmount = Unmount(mount.path().to_path_buf());
    let db = mount.path().join("supportd.db");
    let s = setup(false, Some(format!("sqlite://{}?mode=rwc", db.display()))).await;
    let d = Daemon::start(&s, "daemon.log");
    let store = Store::connect(&format!("sqlite://{}?mode=rwc", db.display()), 1)
        .await
        .expect("store");
    wait_until(30, "ready", async || readyz(s.http).await == 200).await;
    // Fill the disk to the last byte.
    let filler = mount.path().join("filler");
    {
        use std::io::Write;
        let mut f = std::fs::File::create(&filler).expect("filler");
        let chunk = vec![0u8; 64 * 1024];
        while f.write_all(&chunk).is_ok() {}
        let _ = f.write_all(&chunk[..1]);
    }
    let customers: Vec<String> = (0..20)
        .map(|i| format!("{}@{DOMAIN}", unique(&format!("fd{i}"))))
        .collect();
    let mails: Vec<Vec<u8>> = customers
        .iter()
        .map(|c| {
            let mut m = customer_mail(
                c,
                &s.support,
                "disk",
                &format!("{}@qq.example", unique("d")),
                "",
            );
            m.extend(std::iter::repeat_n(b'x', 200_000));
            m.extend_from_slice(b"\r\n");
            m
        })
        .collect();
    deliver(&s.support, &mails).await;
    tokio::time::sleep(Duration::from_secs(6)).await;
    let while_full = count(&store, "inbound").await;
    assert!(
        while_full < 20,
        "the disk was not full ({while_full} of 20 stored)"
    );
    std::fs::remove_file(&filler).expect("remove the filler");
    let recovered = wait_until(60, "every mail stored once space is back", async || {
        count(&store, "inbound").await == 20
    })
    .await;
    wait_until(60, "acknowledgements sent once space is back", async || {
        pending_outbox(&store).await == 0
    })
    .await;
    let quarantined: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM messages WHERE verdict = 'quarantined'")
            .fetch_one(store.pool())
            .await
            .unwrap_or(-1);
    let mut d = d;
    let alive = d.alive();
    d.stop();
    println!(
        "full disk: {while_full} of 20 stored while full; all stored {:.1} s after space came back, none quarantined ({quarantined}), the same daemon carried on: {alive}",
        recovered.as_secs_f64()
    );
    assert_eq!(
        quarantined, 0,
        "good mail is never quarantined for lack of space"
    );
    assert!(alive);
    let log = log_of(&s, "daemon.log");
    assert!(
        !log.contains("non-zero transaction depth"),
        "connections returned clean"
    );
}

/// Mails that try to break the parser or the memory.
fn hostile(support: &str) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let head = |id: &str, ct: &str| {
        format!("From: {}@{DOMAIN}\r\nTo: {support}\r\nSubject: hostile\r\nMessage-ID: <{id}@h.example>\r\nMIME-Version: 1.0\r\nContent-Type: {ct}\r\n\r\n", unique("h"))
    };
    // 30 MB: a base64 attachment.
    let mut big = head("big", "multipart/mixed; boundary=\"b\"").into_bytes();
    big.extend_from_slice(b"--b\r\nContent-Type: text/plain\r\n\r\nSee the file.\r\n--b\r\nContent-Type: application/octet-stream; name=\"big.bin\"\r\nContent-Transfer-Encoding: base64\r\n\r\n");
    let line = [b'Q'; 76];
    while big.len() < 30 * 1024 * 1024 {
        big.extend_from_slice(&line);
        big.extend_from_slice(b"\r\n");
    }
    big.extend_from_slice(b"--b--\r\n");
    out.push(("30 MB".into(), big));
    // 5,000 parts.
    let mut parts = head("parts", "multipart/mixed; boundary=\"p\"");
    for i in 0..5000 {
        parts.push_str(&format!(
            "--p\r\nContent-Type: text/plain\r\n\r\npart {i}\r\n"
        ));
    }
    parts.push_str("--p--\r\n");
    out.push(("5,000 parts".into(), parts.into_bytes()));
    // 200-deep nesting.
    let mut nested = head("nested", "multipart/mixed; boundary=\"n0\"");
    for i in 1..200 {
        nested.push_str(&format!(
            "--n{}\r\nContent-Type: multipart/mixed; boundary=\"n{i}\"\r\n\r\n",
            i - 1
        ));
    }
    nested.push_str("--n199\r\nContent-Type: text/plain\r\n\r\ndeep\r\n");
    for i in (0..200).rev() {
        nested.push_str(&format!("--n{i}--\r\n"));
    }
    out.push(("200-deep nesting".into(), nested.into_bytes()));
    // A 1 MB header line.
    let mut long = format!(
        "From: {}@{DOMAIN}\r\nTo: {support}\r\nMessage-ID: <long@h.example>\r\nSubject: ",
        unique("h")
    )
    .into_bytes();
    long.extend(std::iter::repeat_n(b'a', 1024 * 1024));
    long.extend_from_slice(b"\r\n\r\nbody\r\n");
    out.push(("1 MB header line".into(), long));
    // Binary garbage, and an empty mail.
    let garbage: Vec<u8> = (0..200_000u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    out.push(("binary garbage".into(), garbage));
    out.push(("empty".into(), b"\r\n".to_vec()));
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_mail() {
    let _one = ONE_AT_A_TIME.lock().await;
    let s = setup(false, None).await;
    let mails = hostile(&s.support);
    for (_, m) in &mails {
        deliver(&s.support, std::slice::from_ref(m)).await;
    }
    let mut d = Daemon::start(&s, "daemon.log");
    let store = Store::connect(&s.url, 1).await.expect("store");
    let took = wait_until(120, "every hostile mail stored", async || {
        count(&store, "inbound").await == mails.len() as i64
    })
    .await;
    let peak_mib = d.peak_kib() / 1024;
    let alive = d.alive();
    d.stop();
    println!(
        "hostile mail: {} mails ({}) stored in {:.1} s; peak RSS {peak_mib} MiB (bound: 3 × 30 + 64)",
        mails.len(),
        mails.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>().join(", "),
        took.as_secs_f64()
    );
    assert!(alive, "the daemon lives");
    assert!(
        peak_mib <= 3 * 30 + 64,
        "peak RSS {peak_mib} MiB > 3 × 30 MB + 64 MB"
    );

    // Over `service.max_mail_mb` (40): stored whole, headers read, the ticket says so.
    let mut huge = format!(
        "From: {}@{DOMAIN}\r\nTo: {}\r\nSubject: =?UTF-8?B?5aSn5paH5Lu2?=\r\nMessage-ID: <huge@h.example>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: application/octet-stream; name=\"huge.bin\"\r\nContent-Transfer-Encoding: base64\r\n\r\n",
        unique("huge"),
        s.support
    )
    .into_bytes();
    while huge.len() < 60 * 1024 * 1024 {
        huge.extend_from_slice(&[b'Q'; 76]);
        huge.extend_from_slice(b"\r\n");
    }
    huge.extend_from_slice(b"--b--\r\n");
    deliver(&s.support, std::slice::from_ref(&huge)).await;
    let d = Daemon::start(&s, "daemon.log");
    wait_until(120, "the 60 MB mail stored", async || {
        store
            .inbound_by_message_id("huge@h.example")
            .await
            .ok()
            .flatten()
            .is_some()
    })
    .await;
    let peak_mib = d.peak_kib() / 1024;
    d.stop();
    let (ticket, text, _) = store
        .inbound_by_message_id("huge@h.example")
        .await
        .expect("read")
        .expect("stored");
    let got = std::process::Command::new(BIN)
        .args(["message", "get", "huge@h.example", "--config"])
        .arg(&s.config)
        .output()
        .expect("message get");
    println!("over the limit: a 60 MB mail stored whole and ticketed, headers only; peak RSS {peak_mib} MiB (bound: 3 × 60 + 64)");
    assert!(ticket.is_some(), "it opened a ticket");
    assert!(text.contains("60.0 MB") && text.contains("40 MB"), "{text}");
    // Whole, byte for byte (after the trace headers Dovecot's delivery put on top).
    assert!(
        got.stdout.len() >= huge.len(),
        "message get gives it back whole"
    );
    assert!(got.stdout.ends_with(&huge), "byte for byte");
    assert!(
        peak_mib <= 3 * 60 + 64,
        "peak RSS {peak_mib} MiB > 3 × 60 MB + 64 MB"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn arrival_during_fetch() {
    let _one = ONE_AT_A_TIME.lock().await;
    let s = setup(false, None).await;
    let burst: Vec<Vec<u8>> = (0..1500)
        .map(|i| {
            customer_mail(
                &format!("{}@{DOMAIN}", unique(&format!("b{i}"))),
                &s.support,
                "burst",
                &format!("burst-{i}.{}@qq.example", s.http),
                "",
            )
        })
        .collect();
    deliver(&s.support, &burst).await;
    let d = Daemon::start(&s, "daemon.log");
    let store = Store::connect(&s.url, 1).await.expect("store");
    wait_until(60, "the burst under way", async || {
        count(&store, "inbound").await >= 200
    })
    .await;
    let late = customer_mail(
        &format!("{}@{DOMAIN}", unique("late")),
        &s.support,
        "late",
        "late@qq.example",
        "",
    );
    deliver(&s.support, &[late]).await;
    let delivered = Instant::now();
    let took = wait_until(120, "the mail that came during the burst", async || {
        store
            .inbound_by_message_id("late@qq.example")
            .await
            .ok()
            .flatten()
            .is_some()
    })
    .await;
    let total = count(&store, "inbound").await;
    d.stop();
    println!(
        "arrival during fetch: stored {:.1} s after delivery ({total} of 1,501 stored by then)",
        took.as_secs_f64()
    );
    let _ = delivered;
    assert!(took <= Duration::from_secs(60), "{took:?}");
}
