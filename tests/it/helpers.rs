//! Test harness: the rig, unique names, a spawned application, SMTP in and IMAP out.

use lettre::address::Envelope;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use rand::Rng;
use std::path::PathBuf;
use std::sync::{Arc, Once};
use std::time::{Duration, Instant};
use supportd::app::Application;
use supportd::clock::{FakeClock, SharedClock, SystemClock};
use supportd::config::{AfterProcessing, MailboxSettings, Secret, Settings, TlsMode};
use supportd::store::{Backend, Store};
use tokio_util::sync::CancellationToken;

pub const IMAP_PORT: u16 = 14143;
pub const SMTP_PORT: u16 = 10025;
/// The rig's authenticated submission port (any user, password `test`).
pub const SUBMISSION_PORT: u16 = 10587;
pub const DOMAIN: &str = "example.test";

fn port_open(port: u16) -> bool {
    std::net::TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_millis(300))
        .is_ok()
}

/// Makes sure the mail rig runs (starting it with the project's script if not).
pub fn rig() {
    static START: Once = Once::new();
    START.call_once(|| {
        let rig_dir =
            std::env::var("SUPPORTD_RIG_DIR").unwrap_or_else(|_| "/tmp/supportd-rig".into());
        // A rig started by an older script lacks the OAuth passdb: `start` reloads it.
        let current = std::fs::read_to_string(format!("{rig_dir}/dovecot/dovecot.conf"))
            .is_ok_and(|c| c.contains("driver = oauth2"));
        if current && port_open(IMAP_PORT) && port_open(SMTP_PORT) {
            return;
        }
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("deploy/dev/mailrig");
        let status = std::process::Command::new(&script)
            .arg("start")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .status()
            .expect("run deploy/dev/mailrig");
        assert!(
            status.success(),
            "the mail rig did not start: run `deploy/dev/mailrig start` (as root) to see why"
        );
    });
    if std::env::var_os("TEST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new("info,supportd=debug"))
            .with_test_writer()
            .try_init();
    }
}

pub fn unique(prefix: &str) -> String {
    format!(
        "{prefix}-{:010x}",
        rand::thread_rng().gen::<u64>() & 0xff_ffff_ffff
    )
}

pub fn address(local: &str) -> String {
    format!("{local}@{DOMAIN}")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Db {
    Sqlite,
    Postgres,
}

/// Creates a fresh database and returns its URL.
pub async fn fresh_database(db: Db, dir: &std::path::Path) -> String {
    match db {
        Db::Sqlite => format!("sqlite://{}?mode=rwc", dir.join("supportd.db").display()),
        Db::Postgres => supportd::testing::fresh_postgres_database("supportd_test").await,
    }
}

pub struct TestApp {
    pub support: String,
    pub store: Store,
    pub settings: Settings,
    pub clock: SharedClock,
    /// The running application's wake-ups (timers, outbox).
    pub timer_wake: Arc<tokio::sync::Notify>,
    pub outbox_wake: Arc<tokio::sync::Notify>,
    pub imap_wake: Arc<tokio::sync::Notify>,
    scheduler: Option<supportd::workers::timers::TimerWorker>,
    /// Where the running application serves /metrics, /healthz, /readyz.
    pub http: Option<std::net::SocketAddr>,
    /// The configuration file (for running the `supportd` binary against this app).
    pub config: PathBuf,
    /// Holds the database file and config for the test's lifetime.
    _dir: tempfile::TempDir,
    cancel: CancellationToken,
    task: Option<tokio::task::JoinHandle<()>>,
}

pub struct AppOptions {
    pub db: Db,
    pub after: &'static str,
    /// A fake clock instead of the system's.
    pub clock: Option<Arc<FakeClock>>,
    /// More config, appended as is (`[sla]`, `[[agents]]`, …).
    pub extra: String,
    /// UIDs fetched (and committed) per batch.
    pub batch_size: u32,
    /// Templates directory (default: the repository's).
    pub templates: Option<PathBuf>,
    /// `[log] filter`.
    pub log_filter: &'static str,
    /// `service.internal_domains` (the rig has one domain for everybody: none by default).
    pub internal_domains: &'static str,
    /// `outbox.max_message_mb`.
    pub max_message_mb: u32,
    /// `report.mail`: off in tests unless one is about it (a test run on the 1st of a month
    /// would otherwise find the report among a supervisor's mail).
    pub report_mail: bool,
    /// The support mailbox's login lines instead of `password = "test"` (OAuth tests).
    pub mailbox_auth: Option<String>,
    /// The `[smtp]` section's body instead of the rig's open relay port (OAuth tests).
    pub smtp: Option<String>,
    /// The support address (default: a fresh one).
    pub support: Option<String>,
}

impl Default for AppOptions {
    fn default() -> Self {
        AppOptions {
            db: Db::Sqlite,
            after: "seen",
            clock: None,
            extra: String::new(),
            batch_size: 200,
            templates: None,
            log_filter: "info",
            internal_domains: "[]",
            max_message_mb: 25,
            report_mail: false,
            mailbox_auth: None,
            smtp: None,
            support: None,
        }
    }
}

/// A test's configuration written to a file: its directory, support address, path, settings.
pub struct TestConfig {
    pub dir: tempfile::TempDir,
    pub support: String,
    pub path: PathBuf,
    pub url: String,
    pub settings: Settings,
}

impl TestConfig {
    /// The config's database, migrated, and the daemon's decision context: for tests that drive
    /// the intake stages (`inbound::intake::store_batch`) without a running daemon.
    pub async fn store_and_desk(
        &self,
        connections: u32,
    ) -> (supportd::store::Store, supportd::app::context::Desk) {
        let store = supportd::store::Store::connect(&self.url, connections)
            .await
            .expect("store");
        store.migrate().await.expect("migrate");
        let desk = supportd::app::context::Desk::new(
            &self.settings,
            supportd::outbound::templates::Templates::load(&self.settings.service.templates_dir)
                .expect("templates"),
        );
        (store, desk)
    }
}

/// Writes a fresh config (own support mailbox, own database) as `spawn_app` uses.
pub async fn write_config(opts: &AppOptions) -> TestConfig {
    rig();
    let dir = tempfile::tempdir().expect("tempdir");
    let support = opts
        .support
        .clone()
        .unwrap_or_else(|| address(&unique("support")));
    let url = fresh_database(opts.db, dir.path()).await;
    let move_to = if opts.after == "move" {
        "move_to = \"Archive\"\n"
    } else {
        ""
    };
    let templates = opts
        .templates
        .clone()
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("templates"));
    let toml = format!(
        r#"
[service]
support_address = "{support}"
support_name = "Example 客服中心"
state_dir = "{state}"
templates_dir = "{templates}"
shutdown_timeout_secs = 10
# The rig has one domain for everybody: customers are not colleagues unless a test says so.
internal_domains = {internal}

[database]
url = "{url}"

[mailboxes.support]
host = "127.0.0.1"
port = {IMAP_PORT}
tls = "none"
user = "{support}"
{mailbox_auth}
after = "{after}"
batch_size = {batch}
{move_to}poll_interval_secs = 5

[smtp]
{smtp}

[outbox]
retry_base_secs = 1
retry_max_secs = 5
give_up_after_secs = 60
batch_size = 50
max_message_mb = {max_mb}

[http]
listen = "127.0.0.1:0"

[log]
filter = "{filter}"

[threading]
reply_secret = "integration-test-secret-0123456789"
old_reply_secrets = []
reopen_within_days = 30

[report]
mail = {report_mail}
{extra}
"#,
        extra = opts.extra,
        state = dir.path().display(),
        templates = templates.display(),
        after = opts.after,
        batch = opts.batch_size,
        filter = opts.log_filter,
        internal = opts.internal_domains,
        max_mb = opts.max_message_mb,
        report_mail = opts.report_mail,
        mailbox_auth = opts
            .mailbox_auth
            .clone()
            .unwrap_or_else(|| "password = \"test\"".into()),
        smtp = opts
            .smtp
            .clone()
            .unwrap_or_else(|| format!("host = \"127.0.0.1\"\nport = {SMTP_PORT}\ntls = \"none\"")),
    );
    let path = dir.path().join("supportd.toml");
    std::fs::write(&path, toml).expect("write config");
    let settings = Settings::load(&path).expect("test config is valid");
    TestConfig {
        dir,
        support,
        path,
        url,
        settings,
    }
}

pub async fn spawn_app(opts: AppOptions) -> TestApp {
    let TestConfig {
        dir,
        support,
        url,
        settings,
        path,
    } = write_config(&opts).await;
    let clock: SharedClock = match opts.clock {
        Some(c) => c,
        None => Arc::new(SystemClock),
    };
    let mut app = TestApp {
        support,
        store: Store::connect(&url, 2).await.expect("store"),
        settings,
        clock,
        timer_wake: Arc::new(tokio::sync::Notify::new()),
        outbox_wake: Arc::new(tokio::sync::Notify::new()),
        imap_wake: Arc::new(tokio::sync::Notify::new()),
        scheduler: None,
        http: None,
        config: path,
        _dir: dir,
        cancel: CancellationToken::new(),
        task: None,
    };
    app.start().await;
    app
}

impl TestApp {
    pub async fn start(&mut self) {
        let app = Application::build(self.settings.clone(), self.clock.clone())
            .await
            .expect("application builds");
        self.timer_wake = app.timer_wake.clone();
        self.outbox_wake = app.outbox_wake.clone();
        self.imap_wake = app.imap_wake.clone();
        self.scheduler = Some(app.timer_worker());
        self.http = app.http_addr();
        self.cancel = CancellationToken::new();
        let cancel = self.cancel.clone();
        self.task = Some(tokio::spawn(app.run_until_stopped(cancel)));
    }

    /// Stops the daemon the way SIGTERM does and waits for it.
    pub async fn stop(&mut self) {
        self.cancel.cancel();
        if let Some(t) = self.task.take() {
            tokio::time::timeout(Duration::from_secs(30), t)
                .await
                .expect("daemon stops within 30 s")
                .expect("daemon task did not panic");
        }
    }

    /// Waits until `f` holds for the store, or panics after `secs`.
    pub async fn wait_until<F, Fut>(&self, secs: u64, what: &str, f: F)
    where
        F: Fn(Store) -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        let deadline = Instant::now() + Duration::from_secs(secs);
        while Instant::now() < deadline {
            if f(self.store.clone()).await {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("timed out after {secs} s waiting for: {what}");
    }
}

impl TestApp {
    /// Fires every timer due now (as the running scheduler would on its next wake-up), and lets
    /// the outbox send what it queued. Returns how many fired.
    pub async fn fire_timers(&self) -> usize {
        let s = self.scheduler.as_ref().expect("started");
        let n = match s.try_fire_once().await.expect("timers fire") {
            supportd::workers::Step::Worked(n) => n,
            supportd::workers::Step::Idle => 0,
        };
        self.outbox_wake.notify_one();
        n
    }

    /// A desk like the daemon's (for agents' actions through `supportd::cli::actions`).
    pub fn desk(&self) -> supportd::app::context::Desk {
        supportd::app::context::Desk::new(
            &self.settings,
            supportd::outbound::templates::Templates::load(&self.settings.service.templates_dir)
                .expect("templates"),
        )
    }

    /// Everything the store shows of ticket `t` (it must exist).
    pub async fn detail(&self, t: supportd::domain::TicketRef) -> supportd::store::TicketDetail {
        self.store
            .ticket_detail(t)
            .await
            .expect("detail")
            .expect("ticket")
    }

    /// The ticket events of `t`, oldest first.
    pub async fn events(&self, t: supportd::domain::TicketRef) -> Vec<String> {
        self.store.event_kinds(t).await.expect("events")
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

/// A customer mail as a real client would write it.
pub fn customer_mail(
    from: &str,
    to: &str,
    subject: &str,
    body: &str,
    message_id: &str,
    extra_headers: &str,
) -> Vec<u8> {
    let subject = if subject.is_ascii() {
        subject.to_string()
    } else {
        use base64::Engine;
        format!(
            "=?UTF-8?B?{}?=",
            base64::engine::general_purpose::STANDARD.encode(subject)
        )
    };
    format!(
        "From: {from}\r\nTo: {to}\r\nSubject: {subject}\r\nMessage-ID: <{message_id}>\r\nDate: Mon, 23 Nov 2026 10:00:00 +0800\r\nMIME-Version: 1.0\r\n{extra_headers}Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n{body}\r\n"
    )
    .into_bytes()
}

/// `from`'s reply to `mail` (`Re:` its subject), threaded on it: In-Reply-To names it,
/// References the `earlier` Message-IDs and it.
pub fn reply_mail(
    from: &str,
    to: &str,
    mail: &supportd::domain::InboundMail,
    body: &str,
    earlier: &[&str],
) -> Vec<u8> {
    let id = mail.message_id.as_str();
    let references: Vec<String> = earlier
        .iter()
        .chain([&id])
        .map(|r| format!("<{r}>"))
        .collect();
    customer_mail(
        from,
        to,
        &format!("Re: {}", mail.subject),
        body,
        &format!("{}@customer.example", unique("re")),
        &format!(
            "In-Reply-To: <{id}>\r\nReferences: {}\r\n",
            references.join(" ")
        ),
    )
}

/// Submits raw bytes through the rig's submission port, logged in as `from` (as an agent's mail
/// client does through the organisation's own server).
pub async fn submit_raw(from: &str, to: &str, raw: &[u8]) {
    let smtp = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous("127.0.0.1")
        .port(SUBMISSION_PORT)
        .credentials(lettre::transport::smtp::authentication::Credentials::new(
            from.to_string(),
            "test".to_string(),
        ))
        .authentication(vec![
            lettre::transport::smtp::authentication::Mechanism::Plain,
        ])
        .build();
    let env = Envelope::new(
        Some(from.parse().expect("from")),
        vec![to.parse().expect("to")],
    )
    .expect("envelope");
    smtp.send_raw(&env, raw)
        .await
        .expect("Postfix submission accepts the mail");
}

/// Submits raw bytes to the rig's Postfix.
pub async fn send_raw(from: &str, to: &str, raw: &[u8]) {
    let smtp = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous("127.0.0.1")
        .port(SMTP_PORT)
        .build();
    let env = Envelope::new(
        Some(from.parse().expect("from")),
        vec![to.parse().expect("to")],
    )
    .expect("envelope");
    smtp.send_raw(&env, raw)
        .await
        .expect("Postfix accepts the mail");
}

/// IMAP settings for a rig user (password `test`).
pub fn imap_settings(user: &str) -> MailboxSettings {
    mailbox_settings(user)
}

fn mailbox_settings(user: &str) -> MailboxSettings {
    MailboxSettings {
        host: "127.0.0.1".into(),
        port: IMAP_PORT,
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
        poll_interval_secs: 1,
        idle: true,
    }
}

/// All mails in `user`'s folder, read over IMAP.
pub async fn read_folder(user: &str, folder: &str) -> Vec<Vec<u8>> {
    let mut conn = supportd::inbound::fetch::connect(&mailbox_settings(user))
        .await
        .expect("IMAP login");
    if conn.select(folder).await.is_err() {
        return Vec::new();
    }
    let uids = conn.new_uids(0).await.expect("search");
    let mails = conn.fetch(&uids).await.expect("fetch");
    conn.logout().await;
    mails.into_iter().map(|(_, raw)| raw).collect()
}

/// Waits until `user`'s INBOX holds at least `n` mails; returns them.
pub async fn wait_for_mail(user: &str, n: usize, secs: u64) -> Vec<Vec<u8>> {
    wait_for_folder(user, "INBOX", n, secs).await
}

/// Waits until `user`'s `folder` holds at least `n` mails (for up to `secs`); returns them. What
/// the daemon files after a commit (cards, moves) follows it by its own worker, in no fixed order
/// with the mail it sends, so a test waits for it as it waits for mail.
pub async fn wait_for_folder(user: &str, folder: &str, n: usize, secs: u64) -> Vec<Vec<u8>> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let mails = read_folder(user, folder).await;
        if mails.len() >= n || Instant::now() > deadline {
            assert!(
                mails.len() >= n,
                "{user} {folder}: expected {n} mails within {secs} s, found {}",
                mails.len()
            );
            return mails;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The card of ticket `t` in the support mailbox's Support/Open, parsed; waits up to 60 s for it
/// (cards are filed by the IMAP worker after the commit).
pub async fn card_of(
    app: &TestApp,
    t: supportd::domain::TicketRef,
) -> supportd::domain::InboundMail {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(c) = read_folder(&app.support, "Support/Open")
            .await
            .iter()
            .map(|m| supportd::inbound::parse::parse(m))
            .find(|m| m.subject.contains(&t.to_string()))
        {
            return c;
        }
        assert!(Instant::now() < deadline, "no card for {t} within 60 s");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

pub use supportd::testing::lmtp_deliver;

impl TestApp {
    /// An agent marks ticket `t` solved now (the app's clock), as `supportd ticket solve` does.
    pub async fn solve(&self, t: supportd::domain::TicketRef) {
        supportd::cli::actions::perform(
            &self.store,
            &self.desk(),
            t,
            &supportd::cli::actions::Action::Solve {
                by: "agent@example.test".into(),
            },
            self.clock.now(),
        )
        .await
        .expect("solve");
    }

    /// A new customer writes a plain mail to this app's support address through Postfix.
    /// Returns the customer's address and the mail's Message-ID.
    pub async fn mail_from_new_customer(&self, subject: &str, body: &str) -> (String, String) {
        let customer = address(&unique("cust"));
        let msgid = format!("{}@customer.example", unique("m"));
        let raw = customer_mail(&customer, &self.support, subject, body, &msgid, "");
        send_raw(&customer, &self.support, &raw).await;
        (customer, msgid)
    }
}

/// A plain HTTP/1.1 GET over TCP: (status, body).
pub async fn http_get(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    s.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await
    .expect("write");
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await.expect("read");
    let text = String::from_utf8_lossy(&buf).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

/// Runs the `supportd` binary with `args` (and this app's `--config`); returns stdout, asserting
/// it exited 0.
pub fn supportd_cli(app: &TestApp, args: &[&str]) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_supportd"))
        .args(args)
        .arg("--config")
        .arg(&app.config)
        .output()
        .expect("run supportd");
    assert!(
        out.status.success(),
        "supportd {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Parses `text` as JSON strictly: valid, and no object with the same key twice (which
/// serde_json and most clients silently accept, keeping one of them).
pub fn strict_json(text: &str) -> serde_json::Value {
    use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
    struct Strict(serde_json::Value);
    impl<'de> Deserialize<'de> for Strict {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct V;
            impl<'de> Visitor<'de> for V {
                type Value = Strict;
                fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                    f.write_str("JSON")
                }
                fn visit_bool<E>(self, v: bool) -> Result<Strict, E> {
                    Ok(Strict(v.into()))
                }
                fn visit_i64<E>(self, v: i64) -> Result<Strict, E> {
                    Ok(Strict(v.into()))
                }
                fn visit_u64<E>(self, v: u64) -> Result<Strict, E> {
                    Ok(Strict(v.into()))
                }
                fn visit_f64<E>(self, v: f64) -> Result<Strict, E> {
                    Ok(Strict(v.into()))
                }
                fn visit_str<E>(self, v: &str) -> Result<Strict, E> {
                    Ok(Strict(v.into()))
                }
                fn visit_unit<E>(self) -> Result<Strict, E> {
                    Ok(Strict(serde_json::Value::Null))
                }
                fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<Strict, A::Error> {
                    let mut v = Vec::new();
                    while let Some(Strict(x)) = a.next_element()? {
                        v.push(x);
                    }
                    Ok(Strict(v.into()))
                }
                fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Strict, A::Error> {
                    let mut m = serde_json::Map::new();
                    while let Some(k) = a.next_key::<String>()? {
                        let Strict(v) = a.next_value()?;
                        if m.insert(k.clone(), v).is_some() {
                            return Err(serde::de::Error::custom(format!("duplicate key {k:?}")));
                        }
                    }
                    Ok(Strict(m.into()))
                }
            }
            d.deserialize_any(V)
        }
    }
    let mut de = serde_json::Deserializer::from_str(text);
    let Strict(v) =
        Strict::deserialize(&mut de).unwrap_or_else(|e| panic!("not strict JSON: {e}\n{text}"));
    de.end()
        .unwrap_or_else(|e| panic!("trailing data after JSON: {e}"));
    v
}

/// Every table the daemon writes, parents first.
pub fn supportd_tables() -> &'static [(&'static str, &'static str)] {
    &[
        ("tickets", "id"),
        ("messages", "id"),
        ("participants", "ticket_id, address"),
        ("events", "id"),
        ("outbox", "id"),
        ("timers", "id"),
        ("imap_jobs", "id"),
        ("surveys", "id"),
        ("classification_corrections", "id"),
        ("imap_checkpoints", "mailbox"),
        ("raw_chunks", "blob, seq"),
        ("message_aliases", "alias, message_row"),
        ("monthly_reports", "month"),
    ]
}

/// Empties every table (a fresh database without migrating again).
pub async fn reset_tables(store: &Store) {
    let mut tx = store.begin().await.expect("tx");
    match store.backend() {
        Backend::Sqlite => {
            for (t, _) in supportd_tables().iter().rev() {
                sqlx::query(sqlx::AssertSqlSafe(format!("DELETE FROM {t}")))
                    .execute(&mut *tx)
                    .await
                    .expect("delete");
            }
            let _ = sqlx::query("DELETE FROM sqlite_sequence")
                .execute(&mut *tx)
                .await;
        }
        Backend::Postgres => {
            let all: Vec<&str> = supportd_tables().iter().map(|(t, _)| *t).collect();
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "TRUNCATE {} RESTART IDENTITY CASCADE",
                all.join(", ")
            )))
            .execute(&mut *tx)
            .await
            .expect("truncate");
        }
    }
    tx.commit().await.expect("commit");
}
