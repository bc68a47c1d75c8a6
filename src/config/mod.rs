//! Configuration: a TOML file read with the `config` crate, every key overridable from the
//! environment (`SUPPORTD__SMTP__HOST`, `SUPPORTD__MAILBOXES__SUPPORT__PASSWORD`, …).
//!
//! Invariants: a bad configuration is rejected at start with the exact key and the reason, all
//! problems at once; unknown keys are errors (a typo never silently falls back to a default);
//! secrets are held in [`Secret`], whose `Debug` never prints them.

mod diagnose;
pub use diagnose::Problem;

use crate::domain::Agent;
use crate::domain::{EmailAddress, Language};
use crate::inbound::classify::{Classifier, ClassifySettings};
use crate::ticket::calendar::{Calendar, CalendarSettings};
use crate::ticket::sla::{SlaPolicy, SlaSettings};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read configuration {path}: {source}")]
    Load {
        path: String,
        #[source]
        source: config::ConfigError,
    },
    #[error("invalid configuration {path}:\n{}", .problems.iter().map(|p| format!("  - {p}")).collect::<Vec<_>>().join("\n"))]
    Invalid { path: String, problems: Vec<String> },
}

/// A password or key. Prints as `***`.
#[derive(Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}
impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum TlsMode {
    /// Plain TCP: only sensible on loopback.
    None,
    Starttls,
    /// Implicit TLS (IMAPS 993, SMTPS 465).
    Tls,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum AfterProcessing {
    /// Set `\Seen`; the message stays in the watched folder.
    Seen,
    /// Move to `move_to` (IMAP MOVE); the watched folder holds only unprocessed mail.
    Move,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Plain,
    Json,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub service: ServiceSettings,
    #[serde(default)]
    pub database: DatabaseSettings,
    pub mailboxes: BTreeMap<String, MailboxSettings>,
    pub smtp: SmtpSettings,
    #[serde(default)]
    pub outbox: OutboxSettings,
    #[serde(default)]
    pub threading: ThreadingSettings,
    #[serde(default)]
    pub screening: ScreeningSettings,
    #[serde(default)]
    pub http: HttpSettings,
    #[serde(default)]
    pub log: LogSettings,
    #[serde(default)]
    pub classify: ClassifySettings,
    #[serde(default)]
    pub sla: SlaSettings,
    #[serde(default)]
    pub calendar: CalendarSettings,
    /// The people who answer customers (`[[agents]]`).
    #[serde(default)]
    pub agents: Vec<Agent>,
    /// The shared mailbox as the agents' queue (absent: no queue folders).
    #[serde(default)]
    pub queue: Option<QueueSettings>,
    #[serde(default)]
    pub agent_mail: AgentMailSettings,
    #[serde(default)]
    pub wording: WordingSettings,
    #[serde(default)]
    pub retention: RetentionSettings,
    #[serde(default)]
    pub report: ReportSettings,
    /// `[oauth.NAME]`: OAuth 2.0 grants that mailboxes and `[smtp]` log in with (`oauth = "NAME"`).
    #[serde(default)]
    pub oauth: BTreeMap<String, crate::oauth::GrantSettings>,
    /// The grants' token sources, one per grant, shared by all that use it.
    #[serde(skip)]
    pub oauth_sources: BTreeMap<String, Arc<crate::oauth::TokenSource>>,
    /// The classification rules, compiled once when the config was validated.
    #[serde(skip)]
    compiled_classifier: Option<Arc<Classifier>>,
    #[serde(skip)]
    compiled_sla: Option<Arc<SlaPolicy>>,
}

/// `[retention]`: customers' personal data on tickets solved long ago is erased automatically,
/// as `supportd customer erase` does for one customer (the tickets stay, anonymised, so reports
/// do not change). Off unless set.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionSettings {
    /// Erase tickets solved longer ago than this many days (1–36500).
    #[serde(default)]
    pub erase_solved_after_days: Option<u32>,
}

/// `[report]`: the monthly service report mailed to the supervisors.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReportSettings {
    /// Mail the previous month's report on `day` at `hour` (the calendar's zone).
    pub mail: bool,
    /// Day of the month, 1–28.
    pub day: u32,
    /// Hour, 0–23.
    pub hour: u32,
    /// Recipients; empty: every agent with `role = "supervisor"`.
    pub to: Vec<EmailAddress>,
    /// A font with Chinese glyphs for the charts (default: the first found of
    /// `report::charts::FONT_CANDIDATES`).
    pub font: Option<PathBuf>,
    pub targets: crate::report::Targets,
}

impl Default for ReportSettings {
    fn default() -> ReportSettings {
        ReportSettings {
            mail: true,
            day: 1,
            hour: 8,
            to: Vec::new(),
            font: None,
            targets: crate::report::Targets::default(),
        }
    }
}

impl Settings {
    /// Who receives the monthly report: `[report] to`, else the supervisors.
    pub fn report_recipients(&self) -> Vec<EmailAddress> {
        if !self.report.to.is_empty() {
            return self.report.to.clone();
        }
        self.agents
            .iter()
            .filter(|a| a.role == crate::domain::Role::Supervisor)
            .map(|a| a.address.clone())
            .collect()
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceSettings {
    /// The address customers write to; everything we send comes from it.
    pub support_address: EmailAddress,
    /// Display name on outgoing mail.
    #[serde(default = "default_support_name")]
    pub support_name: String,
    /// Domain of the Message-IDs we generate. Defaults to the support address's domain.
    #[serde(default)]
    pub message_id_domain: Option<String>,
    #[serde(default = "default_state_dir")]
    pub state_dir: PathBuf,
    #[serde(default = "default_templates_dir")]
    pub templates_dir: PathBuf,
    /// How long a stop may take to finish work in hand.
    #[serde(default = "default_shutdown_secs")]
    pub shutdown_timeout_secs: u64,
    /// The language of internal notices to agents (zh-Hans, zh-Hant, en).
    #[serde(default = "default_agent_language")]
    pub agent_language: Language,
    /// The organisation's own mail domains (default: the support address's). Colleagues there
    /// who are not agents may comment on a ticket they are not on, as an internal comment; they
    /// never become its participants. `[]`: no colleagues.
    #[serde(default)]
    pub internal_domains: Option<Vec<String>>,
    /// The largest mail parsed in full, in MiB (1–1024; default 40: a 25 MB attachment after
    /// base64). A larger mail is stored whole and opens or follows its ticket like any other,
    /// but only its headers are read: the card says so, and `supportd message get` has it.
    /// Peak memory stays under ~3 × the largest mail + 64 MB.
    #[serde(default = "default_max_mail_mb")]
    pub max_mail_mb: u32,
}

fn default_max_mail_mb() -> u32 {
    40
}

fn default_agent_language() -> Language {
    Language::ZhHans
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSettings {
    /// `sqlite:///path/file.db` or `postgres://…`. Default: `supportd.db` in the state directory.
    #[serde(default)]
    pub url: Option<Secret>,
    #[serde(default = "default_max_connections")]
    pub max_connections: u32,
    /// PostgreSQL, several daemons: how long a mailbox lease lasts without renewal (renewed
    /// every quarter of it): a dead daemon's mailboxes are taken over within about this plus a
    /// quarter. 4–300.
    #[serde(default = "default_lease_secs")]
    pub lease_secs: u32,
}

fn default_lease_secs() -> u32 {
    20
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        DatabaseSettings {
            url: None,
            max_connections: default_max_connections(),
            lease_secs: default_lease_secs(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MailboxSettings {
    /// IMAP server; default: the `oauth` grant's provider's (Microsoft 365, Google).
    #[serde(default)]
    pub host: String,
    /// Default 993 with `tls = "tls"`, else 143.
    #[serde(default)]
    pub port: u16,
    #[serde(default = "default_tls")]
    pub tls: TlsMode,
    pub user: String,
    /// `password` (default), or `xoauth2` / `oauthbearer` with the grant named by `oauth`
    /// (default `xoauth2` when `oauth` is set).
    #[serde(default)]
    pub auth: Option<crate::oauth::AuthMethod>,
    /// The `[oauth.NAME]` grant this mailbox logs in with.
    #[serde(default)]
    pub oauth: Option<String>,
    /// The grant's token source (set when the config is validated).
    #[serde(skip)]
    pub token: Option<Arc<crate::oauth::TokenSource>>,
    #[serde(default)]
    pub password: Secret,
    /// A file holding the password; relative paths are looked up in `$CREDENTIALS_DIRECTORY`
    /// (systemd `LoadCredential=`) first.
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    #[serde(default = "default_folder")]
    pub folder: String,
    #[serde(default = "default_after")]
    pub after: AfterProcessing,
    #[serde(default)]
    pub move_to: Option<String>,
    #[serde(default = "default_batch_size")]
    pub batch_size: u32,
    /// Polling interval when IDLE is unavailable, and the longest an IDLE waits before a re-check.
    #[serde(default = "default_poll_secs")]
    pub poll_interval_secs: u64,
    #[serde(default = "default_true")]
    pub idle: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpSettings {
    /// SMTP relay; default: the `oauth` grant's provider's (Microsoft 365, Google).
    #[serde(default)]
    pub host: String,
    /// Default 465 with `tls = "tls"`, 587 with `starttls`, else 25.
    #[serde(default)]
    pub port: u16,
    #[serde(default = "default_smtp_tls")]
    pub tls: TlsMode,
    #[serde(default)]
    pub user: Option<String>,
    /// `password` (default) or `xoauth2` with the grant named by `oauth` (default when `oauth`
    /// is set). (The SMTP client offers no OAUTHBEARER; Microsoft 365 and Gmail take XOAUTH2.)
    #[serde(default)]
    pub auth: Option<crate::oauth::AuthMethod>,
    /// The `[oauth.NAME]` grant the relay logs in with.
    #[serde(default)]
    pub oauth: Option<String>,
    #[serde(skip)]
    pub token: Option<Arc<crate::oauth::TokenSource>>,
    #[serde(default)]
    pub password: Secret,
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// Envelope sender (MAIL FROM). Defaults to the support address.
    #[serde(default)]
    pub envelope_from: Option<EmailAddress>,
    #[serde(default = "default_smtp_timeout")]
    pub timeout_secs: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutboxSettings {
    /// First retry delay; doubles per attempt up to `retry_max_secs`, with jitter.
    #[serde(default = "default_retry_base")]
    pub retry_base_secs: u64,
    #[serde(default = "default_retry_max")]
    pub retry_max_secs: u64,
    /// After this long since queueing, a mail that still could not be sent is given up and the
    /// failure recorded on its ticket.
    #[serde(default = "default_give_up")]
    pub give_up_after_secs: u64,
    #[serde(default = "default_outbox_batch")]
    pub batch_size: u32,
    /// SMTP connections the outbox sends on at once (1-32, default 2). One ticket's mail always
    /// goes in order on one of them. The database pool gets at least two connections more.
    #[serde(default = "default_outbox_connections")]
    pub connections: u32,
    /// The largest mail supportd sends, attachments included, in MB: an agent's reply that would
    /// be larger is returned to the agent instead of being sent without its files.
    #[serde(default = "default_max_message_mb")]
    pub max_message_mb: u32,
}

fn default_max_message_mb() -> u32 {
    25
}

fn default_retry_base() -> u64 {
    30
}
fn default_retry_max() -> u64 {
    3600
}
fn default_give_up() -> u64 {
    2 * 24 * 3600
}
fn default_outbox_batch() -> u32 {
    50
}
fn default_outbox_connections() -> u32 {
    2
}

impl Default for OutboxSettings {
    fn default() -> Self {
        OutboxSettings {
            retry_base_secs: default_retry_base(),
            retry_max_secs: default_retry_max(),
            give_up_after_secs: default_give_up(),
            batch_size: default_outbox_batch(),
            connections: default_outbox_connections(),
            max_message_mb: default_max_message_mb(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ThreadingSettings {
    /// Secret for the signed reply address `support+T000123.<mac>@…`.
    pub reply_secret: Secret,
    /// Older secrets still accepted while rotating.
    #[serde(default)]
    pub old_reply_secrets: Vec<Secret>,
    /// A reply to a ticket solved longer ago than this opens a new, linked ticket.
    #[serde(default = "default_reopen_days")]
    pub reopen_within_days: u64,
}

fn default_reopen_days() -> u64 {
    30
}

impl Default for ThreadingSettings {
    fn default() -> Self {
        ThreadingSettings {
            reply_secret: Secret::default(),
            old_reply_secrets: Vec::new(),
            reopen_within_days: default_reopen_days(),
        }
    }
}

/// `[queue]`: the shared mailbox agents work from. Ticket cards go to a folder per state; the
/// copies of supportd's replies go to `sent`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueueSettings {
    /// The `[mailboxes.NAME]` account that holds the folders (default: the only one).
    #[serde(default)]
    pub mailbox: Option<String>,
    #[serde(default = "default_open")]
    pub open: String,
    #[serde(default = "default_waiting")]
    pub waiting: String,
    #[serde(default = "default_escalated")]
    pub escalated: String,
    #[serde(default = "default_solved")]
    pub solved: String,
    #[serde(default = "default_sent")]
    pub sent: String,
    /// Watch `sent` for replies agents sent straight to customers (bypassing supportd).
    #[serde(default = "default_true")]
    pub watch_sent: bool,
    /// Mail every agent a notice for each new ticket (the card in the queue is always there).
    #[serde(default)]
    pub notify_new: bool,
    /// The customer's files go on their card up to this many MB in all; the card names any it
    /// leaves out (`supportd attachment get` extracts them; the original is always archived).
    #[serde(default = "default_card_attachments_mb")]
    pub card_attachments_max_mb: u32,
}

fn default_card_attachments_mb() -> u32 {
    20
}

fn default_open() -> String {
    "Support/Open".into()
}
fn default_waiting() -> String {
    "Support/Waiting".into()
}
fn default_escalated() -> String {
    "Support/Escalated".into()
}
fn default_solved() -> String {
    "Support/Solved".into()
}
fn default_sent() -> String {
    "Sent".into()
}

/// `[agent_mail]`: when a mail is an agent's, with authority over a ticket.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentMailSettings {
    /// The proof an agent's mail needs besides the agents' address and a listed From: `none`
    /// (the From header, which can be forged), `dkim` or `dkim_or_spf` (a pass for the agent's
    /// domain in our server's Authentication-Results), `submission` (an authenticated
    /// submission through our own MTA).
    #[serde(default = "default_require_auth")]
    pub require_auth: String,
    /// Our receiving server's authserv-id: only its Authentication-Results are trusted.
    #[serde(default)]
    pub authserv_id: Option<String>,
    /// With `submission`: the host names our own MTAs write in `Received: … by HOST`.
    #[serde(default)]
    pub trusted_hosts: Vec<String>,
    /// Days after the upgrade that brought agents' addresses during which agents' replies to
    /// old cards (which carry the customer's address) are still accepted, for older tickets.
    #[serde(default = "default_legacy_card_days")]
    pub legacy_card_days: u32,
}

fn default_legacy_card_days() -> u32 {
    30
}

fn default_require_auth() -> String {
    "none".into()
}

impl Default for AgentMailSettings {
    fn default() -> Self {
        AgentMailSettings {
            require_auth: default_require_auth(),
            authserv_id: None,
            trusted_hosts: Vec::new(),
            legacy_card_days: default_legacy_card_days(),
        }
    }
}

/// What `supportd templates check` reads from a configuration: the templates directory and
/// `[wording]`, nothing else (a config without, say, an SMTP password checks its templates fine).
#[derive(Debug, Clone)]
pub struct TemplateSettings {
    pub templates_dir: PathBuf,
    pub wording: WordingSettings,
}

impl TemplateSettings {
    pub fn load(path: &Path) -> Result<TemplateSettings, ConfigError> {
        let shown = path.display().to_string();
        let load = |source| ConfigError::Load {
            path: shown.clone(),
            source,
        };
        let c = config::Config::builder()
            .add_source(config::File::from(path).format(config::FileFormat::Toml))
            .add_source(
                config::Environment::with_prefix("SUPPORTD")
                    .prefix_separator("__")
                    .separator("__")
                    .try_parsing(true),
            )
            .build()
            .map_err(load)?;
        let templates_dir = match c.get::<PathBuf>("service.templates_dir") {
            Ok(d) => d,
            Err(config::ConfigError::NotFound(_)) => default_templates_dir(),
            Err(e) => return Err(load(e)),
        };
        let wording = match c.get::<WordingSettings>("wording") {
            Ok(w) => w,
            Err(config::ConfigError::NotFound(_)) => WordingSettings::default(),
            Err(e) => return Err(load(e)),
        };
        Ok(TemplateSettings {
            templates_dir,
            wording,
        })
    }
}

/// `[wording]`: phrases that never reach a customer, and what to say instead.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WordingSettings {
    /// Use the built-in list from the procedures (不清楚, 不知道, "I don't know", …).
    #[serde(default = "default_true")]
    pub builtin: bool,
    #[serde(default)]
    pub forbidden: Vec<ForbiddenPhrase>,
}

impl Default for WordingSettings {
    fn default() -> Self {
        WordingSettings {
            builtin: true,
            forbidden: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ForbiddenPhrase {
    pub phrase: String,
    /// The approved alternative.
    pub instead: String,
}

/// `[screening]`: automatic mail and loops.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScreeningSettings {
    /// Acknowledgements to one address per hour, at most: two auto-responders can never loop,
    /// even when every header lies.
    #[serde(default = "default_ack_limit")]
    pub ack_limit_per_hour: u32,
}

fn default_ack_limit() -> u32 {
    3
}

impl Default for ScreeningSettings {
    fn default() -> Self {
        ScreeningSettings {
            ack_limit_per_hour: default_ack_limit(),
        }
    }
}

/// `[http]`: `/metrics`, `/healthz`, `/readyz`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSettings {
    /// `host:port` to listen on (loopback by default); empty: no listener.
    #[serde(default = "default_http_listen")]
    pub listen: String,
    /// `/readyz` fails when a mailbox has not been polled successfully for this long.
    #[serde(default = "default_poll_stale")]
    pub mailbox_stale_secs: u64,
    /// `/readyz` fails when a mail has been due for sending this long without being sent.
    #[serde(default = "default_outbox_stuck")]
    pub outbox_stuck_secs: u64,
}

fn default_http_listen() -> String {
    "127.0.0.1:9187".into()
}
fn default_poll_stale() -> u64 {
    300
}
fn default_outbox_stuck() -> u64 {
    900
}

impl Default for HttpSettings {
    fn default() -> Self {
        HttpSettings {
            listen: default_http_listen(),
            mailbox_stale_secs: default_poll_stale(),
            outbox_stuck_secs: default_outbox_stuck(),
        }
    }
}

impl HttpSettings {
    /// The listen address, or `None` when the listener is off.
    pub fn address(&self) -> Option<std::net::SocketAddr> {
        self.listen.trim().parse().ok()
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSettings {
    #[serde(default = "default_log_format")]
    pub format: LogFormat,
    /// `RUST_LOG`-style filter; the `RUST_LOG` variable wins when set.
    #[serde(default = "default_log_filter")]
    pub filter: String,
    /// Show customers' addresses in logs as `w***@qq.com`.
    #[serde(default)]
    pub mask_addresses: bool,
}

fn default_log_format() -> LogFormat {
    LogFormat::Plain
}
fn default_log_filter() -> String {
    "info".into()
}

impl Default for LogSettings {
    fn default() -> Self {
        LogSettings {
            format: default_log_format(),
            filter: default_log_filter(),
            mask_addresses: false,
        }
    }
}

fn default_support_name() -> String {
    "Customer Support".into()
}
fn default_state_dir() -> PathBuf {
    PathBuf::from("/var/lib/supportd")
}
fn default_templates_dir() -> PathBuf {
    PathBuf::from("/usr/share/supportd/templates")
}
fn default_shutdown_secs() -> u64 {
    20
}
fn default_max_connections() -> u32 {
    4
}
fn default_tls() -> TlsMode {
    TlsMode::Tls
}

fn default_smtp_tls() -> TlsMode {
    TlsMode::Starttls
}

fn default_folder() -> String {
    "INBOX".into()
}
fn default_after() -> AfterProcessing {
    AfterProcessing::Seen
}
fn default_batch_size() -> u32 {
    200
}
fn default_poll_secs() -> u64 {
    30
}
fn default_true() -> bool {
    true
}
fn default_smtp_timeout() -> u64 {
    30
}

impl Settings {
    /// Reads `path`, applies `SUPPORTD__…` environment overrides, resolves password files and
    /// validates. Every problem is reported with its key.
    pub fn load(path: &Path) -> Result<Settings, ConfigError> {
        Settings::from_source(
            config::File::from(path).format(config::FileFormat::Toml),
            path.display().to_string(),
            std::fs::read_to_string(path).ok(),
        )
    }

    /// As [`Settings::load`], from TOML text (`shown` names it in errors).
    pub fn from_toml(text: &str, shown: &str) -> Result<Settings, ConfigError> {
        Settings::from_source(
            config::File::from_str(text, config::FileFormat::Toml),
            shown.to_string(),
            Some(text.to_string()),
        )
    }

    /// `text`: the file's TOML, for the lines problems are on.
    fn from_source(
        source: impl config::Source + Send + Sync + 'static,
        shown: String,
        text: Option<String>,
    ) -> Result<Settings, ConfigError> {
        let load = |source| ConfigError::Load {
            path: shown.clone(),
            source,
        };
        let built = config::Config::builder()
            .add_source(source)
            .add_source(
                config::Environment::with_prefix("SUPPORTD")
                    .prefix_separator("__")
                    .separator("__")
                    .try_parsing(true),
            )
            .build()
            .map_err(load)?;
        let lines = |problems: Vec<String>| -> Vec<String> {
            problems
                .into_iter()
                .map(|p| diagnose::with_line(&p, text.as_deref()))
                .collect()
        };
        match built.clone().try_deserialize::<Settings>() {
            Ok(raw) => raw.resolved().map_err(|problems| ConfigError::Invalid {
                path: shown.clone(),
                problems: lines(problems),
            }),
            Err(first) => {
                // Every problem at once: read again strictly, value by value.
                let Ok(tree) = built.try_deserialize::<serde_json::Value>() else {
                    return Err(load(first));
                };
                let (read, found) = diagnose::read_all::<Settings>(tree, text.as_deref());
                if found.is_empty() {
                    return Err(load(first));
                }
                let mut problems: Vec<String> = found.iter().map(|p| p.to_string()).collect();
                // The cross-field checks on what could be read, but not twice for one key.
                if let Some(Err(more)) = read.map(Settings::resolved) {
                    for m in lines(more) {
                        let key = m.split([' ', ':']).next().unwrap_or("");
                        if !found.iter().any(|p| key.starts_with(&p.key)) {
                            problems.push(m);
                        }
                    }
                }
                Err(ConfigError::Invalid {
                    path: shown.clone(),
                    problems,
                })
            }
        }
    }

    /// Reads secrets from files and checks cross-field rules.
    fn resolved(mut self) -> Result<Settings, Vec<String>> {
        let mut problems = Vec::new();
        if self.mailboxes.is_empty() {
            problems.push("mailboxes: at least one mailbox is required".to_string());
        }
        if let Some(d) = self.retention.erase_solved_after_days {
            if !(1..=36_500).contains(&d) {
                problems.push(format!(
                    "retention.erase_solved_after_days: must be 1-36500 (days), not {d}"
                ));
            }
        }
        if !(1..=1024).contains(&self.service.max_mail_mb) {
            problems.push(format!(
                "service.max_mail_mb: must be 1-1024 (MiB), not {}",
                self.service.max_mail_mb
            ));
        }
        for (name, g) in &self.oauth {
            let grant = g.resolve(name, &self.service.state_dir, &mut problems);
            self.oauth_sources
                .insert(name.clone(), crate::oauth::TokenSource::new(grant));
        }
        let sources = self.oauth_sources.clone();
        for (name, mb) in self.mailboxes.iter_mut() {
            let key = format!("mailboxes.{name}");
            let preset = oauth_use(
                &key,
                &mut mb.auth,
                &mb.oauth,
                &mut mb.token,
                &sources,
                false,
                &mut problems,
            )
            .and_then(|p| p.imap());
            server_or_preset(
                &key,
                &mut mb.host,
                &mut mb.port,
                &mut mb.tls,
                preset,
                &mut problems,
            );
            if mb.port == 0 {
                mb.port = if mb.tls == TlsMode::Tls { 993 } else { 143 };
            }
            if mb.user.trim().is_empty() {
                problems.push(format!("{key}.user: must not be empty"));
            }
            resolve_secret(&key, &mut mb.password, &mb.password_file, &mut problems);
            if mb.token.is_some() {
                if !mb.password.is_empty() {
                    problems.push(format!(
                        "{key}.password: not used with auth = \"{}\"; remove it",
                        mb.auth.unwrap_or_default().mechanism().to_lowercase()
                    ));
                }
            } else if mb.password.is_empty() && mb.auth == Some(crate::oauth::AuthMethod::Password)
            {
                problems.push(format!(
                    "{key}.password: required (set it, password_file, or SUPPORTD__MAILBOXES__{}__PASSWORD)",
                    name.to_uppercase()
                ));
            }
            if mb.after == AfterProcessing::Move
                && mb.move_to.as_deref().is_none_or(|f| f.trim().is_empty())
            {
                problems.push(format!("{key}.move_to: required when after = \"move\""));
            }
            if mb.move_to.as_deref() == Some(mb.folder.as_str()) {
                problems.push(format!("{key}.move_to: must differ from folder"));
            }
            if !(1..=5000).contains(&mb.batch_size) {
                problems.push(format!("{key}.batch_size: must be 1-5000"));
            }
            if !(1..=3600).contains(&mb.poll_interval_secs) {
                problems.push(format!("{key}.poll_interval_secs: must be 1-3600"));
            }
        }
        let smtp = &mut self.smtp;
        let preset = oauth_use(
            "smtp",
            &mut smtp.auth,
            &smtp.oauth,
            &mut smtp.token,
            &sources,
            true,
            &mut problems,
        )
        .and_then(|p| p.smtp());
        server_or_preset(
            "smtp",
            &mut smtp.host,
            &mut smtp.port,
            &mut smtp.tls,
            preset,
            &mut problems,
        );
        if smtp.port == 0 {
            smtp.port = match smtp.tls {
                TlsMode::Tls => 465,
                TlsMode::Starttls => 587,
                TlsMode::None => 25,
            };
        }
        resolve_secret(
            "smtp",
            &mut smtp.password,
            &smtp.password_file,
            &mut problems,
        );
        if smtp.token.is_some() {
            if smtp.user.as_deref().is_none_or(|u| u.trim().is_empty()) {
                problems.push(
                    "smtp.user: required with OAuth (the account the grant belongs to)".into(),
                );
            }
            if !smtp.password.is_empty() {
                problems.push("smtp.password: not used with auth = \"xoauth2\"; remove it".into());
            }
        } else if smtp.user.is_some() && smtp.password.is_empty() {
            problems.push("smtp.password: required when smtp.user is set".into());
        }
        if self.outbox.retry_base_secs == 0
            || self.outbox.retry_max_secs < self.outbox.retry_base_secs
        {
            problems.push("outbox.retry_max_secs: must be at least retry_base_secs (> 0)".into());
        }
        if self.outbox.batch_size == 0 {
            problems.push("outbox.batch_size: must be at least 1".into());
        }
        if !(1..=32).contains(&self.outbox.connections) {
            problems.push("outbox.connections: must be 1-32".into());
        }
        if !(1..=28).contains(&self.report.day) {
            problems.push(format!(
                "report.day: must be 1-28 (every month has it), not {}",
                self.report.day
            ));
        }
        if self.report.hour > 23 {
            problems.push(format!(
                "report.hour: must be 0-23, not {}",
                self.report.hour
            ));
        }
        let t = &self.report.targets;
        for (key, v) in [
            ("satisfaction", t.satisfaction),
            ("resolution", t.resolution),
            ("first_contact_resolution", t.first_contact_resolution),
            ("promises", t.promises),
        ] {
            if !(0.0..=1.0).contains(&v) {
                problems.push(format!(
                    "report.targets.{key}: a ratio from 0 to 1 (0.9 = 90 %), not {v}"
                ));
            }
        }
        if let Some(d) = &self.service.message_id_domain {
            if d.is_empty() || d.contains(|c: char| c.is_whitespace() || c == '@' || c == '>') {
                problems.push(format!("service.message_id_domain: not a domain: {d:?}"));
            }
        }
        if self.threading.reply_secret.expose().len() < 16 {
            problems.push(
                "threading.reply_secret: required, at least 16 characters (signs reply addresses)"
                    .into(),
            );
        }
        if let Some(url) = &self.database.url {
            let u = url.expose();
            if !(u.starts_with("sqlite:")
                || u.starts_with("postgres:")
                || u.starts_with("postgresql:"))
            {
                problems.push(
                    "database.url: unsupported scheme; use sqlite://PATH or postgres://…".into(),
                );
            }
        }
        if self.database.max_connections == 0 {
            problems.push("database.max_connections: must be at least 1".into());
        }
        if !(4..=300).contains(&self.database.lease_secs) {
            problems.push(format!(
                "database.lease_secs: must be 4-300 seconds, not {}",
                self.database.lease_secs
            ));
        }
        let model = crate::inbound::classify::ModelSource::resolve(
            self.classify.model.as_deref(),
            &self.service.state_dir,
        )
        .load();
        match (Classifier::new(&self.classify), model) {
            (Ok(c), Ok(m)) => self.compiled_classifier = Some(Arc::new(c.with_model(m))),
            (Err(p), _) => problems.extend(p),
            (_, Err(p)) => problems.push(p),
        }
        match Calendar::new(&self.calendar) {
            Ok(cal) => match SlaPolicy::new(&self.sla, cal) {
                Ok(p) => self.compiled_sla = Some(Arc::new(p)),
                Err(p) => problems.extend(p),
            },
            Err(p) => problems.extend(p),
        }
        if self.service.agent_language == Language::Other {
            problems.push(
                "service.agent_language: must be a language with templates (zh-Hans, zh-Hant, en)"
                    .into(),
            );
        }
        for (i, a) in self.agents.iter().enumerate() {
            if a.name.trim().is_empty() {
                problems.push(format!("agents[{i}].name: must not be empty"));
            }
            if self.agents[..i].iter().any(|b| b.address == a.address) {
                problems.push(format!(
                    "agents[{i}].address: {} is listed twice",
                    a.address
                ));
            }
            if a.address.domain() == self.service.support_address.domain()
                && a.address.local_part().split('+').next()
                    == Some(self.service.support_address.local_part())
            {
                problems.push(format!(
                    "agents[{i}].address: the support address itself cannot be an agent"
                ));
            }
        }
        if !self.http.listen.trim().is_empty() && self.http.address().is_none() {
            problems.push(format!(
                "http.listen: not an address host:port (e.g. 127.0.0.1:9187), or \"\" for no listener: {:?}",
                self.http.listen
            ));
        }
        if let Some(q) = &self.queue {
            let name = match &q.mailbox {
                Some(n) => Some(n.clone()),
                None if self.mailboxes.len() == 1 => self.mailboxes.keys().next().cloned(),
                None => {
                    problems.push(
                        "queue.mailbox: required when there are several mailboxes (which account holds the queue folders)"
                            .into(),
                    );
                    None
                }
            };
            if let Some(n) = name {
                if !self.mailboxes.contains_key(&n) {
                    problems.push(format!("queue.mailbox: no [mailboxes.{n}]"));
                }
            }
            let folders = [&q.open, &q.waiting, &q.escalated, &q.solved, &q.sent];
            for (i, f) in folders.iter().enumerate() {
                if f.trim().is_empty() {
                    problems.push("queue: folder names must not be empty".into());
                }
                if folders[..i].contains(f) {
                    problems.push(format!("queue: folder {f:?} is used twice"));
                }
            }
        }
        match self.agent_mail.require_auth.as_str() {
            "none" => {}
            "dkim" | "dkim_or_spf" => {
                if self
                    .agent_mail
                    .authserv_id
                    .as_deref()
                    .is_none_or(|s| s.trim().is_empty())
                {
                    problems.push("agent_mail.authserv_id: required with require_auth, so only your own server's Authentication-Results are trusted".into());
                }
            }
            "submission" => {
                let a = &self.agent_mail;
                if a.trusted_hosts.iter().all(|h| h.trim().is_empty())
                    && a.authserv_id.as_deref().is_none_or(|s| s.trim().is_empty())
                {
                    problems.push("agent_mail.trusted_hosts: required with require_auth = \"submission\": the host names your MTA writes in `Received: … by HOST` (or set authserv_id if it stamps `auth=pass smtp.auth=…` in Authentication-Results)".into());
                }
            }
            other => problems.push(format!(
                "agent_mail.require_auth: {other:?}: expected \"none\", \"dkim\", \"dkim_or_spf\" or \"submission\""
            )),
        }
        for (i, f) in self.wording.forbidden.iter().enumerate() {
            if f.phrase.trim().is_empty() || f.instead.trim().is_empty() {
                problems.push(format!(
                    "wording.forbidden[{i}]: phrase and instead must not be empty"
                ));
            }
        }
        if self.screening.ack_limit_per_hour == 0 {
            problems.push("screening.ack_limit_per_hour: must be at least 1".into());
        }
        if tracing_subscriber::EnvFilter::try_new(&self.log.filter).is_err() {
            problems.push(format!(
                "log.filter: not a valid filter: {:?}",
                self.log.filter
            ));
        }
        if problems.is_empty() {
            Ok(self)
        } else {
            Err(problems)
        }
    }

    /// The settings a reload cannot change that differ in `new` (they need a restart).
    pub fn restart_needed(&self, new: &Settings) -> Vec<&'static str> {
        let mut out = Vec::new();
        let mut differ = |name: &'static str, a: String, b: String| {
            if a != b {
                out.push(name);
            }
        };
        let s = &self.service;
        let n = &new.service;
        differ(
            "service (support address, name, Message-ID domain, state dir, shutdown timeout)",
            format!(
                "{:?}{:?}{:?}{:?}{:?}",
                s.support_address,
                s.support_name,
                s.message_id_domain,
                s.state_dir,
                s.shutdown_timeout_secs
            ),
            format!(
                "{:?}{:?}{:?}{:?}{:?}",
                n.support_address,
                n.support_name,
                n.message_id_domain,
                n.state_dir,
                n.shutdown_timeout_secs
            ),
        );
        differ(
            "database",
            format!("{:?}", self.database_url()),
            format!("{:?}", new.database_url()),
        );
        differ(
            "mailboxes",
            format!("{:?}", self.mailboxes),
            format!("{:?}", new.mailboxes),
        );
        // Compared, never printed: the client secret is part of it.
        let grants = |s: &Settings| {
            s.oauth_sources
                .iter()
                .map(|(k, v)| {
                    let g = v.grant();
                    format!(
                        "{k}{:?}{}",
                        g,
                        g.client_secret.as_ref().map_or("", |c| c.expose())
                    )
                })
                .collect::<Vec<_>>()
                .join("|")
        };
        differ("oauth (grants)", grants(self), grants(new));
        differ(
            "smtp",
            format!("{:?}", self.smtp),
            format!("{:?}", new.smtp),
        );
        differ(
            "outbox",
            format!("{:?}", self.outbox),
            format!("{:?}", new.outbox),
        );
        differ(
            "http",
            format!("{:?}", self.http),
            format!("{:?}", new.http),
        );
        differ(
            "log.format",
            format!("{:?}", self.log.format),
            format!("{:?}", new.log.format),
        );
        out
    }

    /// The database URL, defaulting to a SQLite file in the state directory.
    pub fn database_url(&self) -> String {
        match &self.database.url {
            Some(u) => u.expose().to_string(),
            None => format!(
                "sqlite://{}?mode=rwc",
                self.service.state_dir.join("supportd.db").display()
            ),
        }
    }

    /// The compiled classification rules (built-in ones when the settings were not loaded from a
    /// file, e.g. built by hand in a test).
    pub fn classifier(&self) -> Arc<Classifier> {
        self.compiled_classifier
            .clone()
            .unwrap_or_else(|| Arc::new(Classifier::builtin()))
    }

    /// The compiled service promises and calendar (the defaults when the settings were not loaded
    /// from a file).
    pub fn sla_policy(&self) -> Arc<SlaPolicy> {
        self.compiled_sla.clone().unwrap_or_default()
    }

    /// The mailbox account that holds the queue folders, when there is a queue.
    pub fn queue_mailbox(&self) -> Option<(&str, &QueueSettings)> {
        let q = self.queue.as_ref()?;
        let name = match &q.mailbox {
            Some(n) => n.as_str(),
            None => self.mailboxes.keys().next()?.as_str(),
        };
        Some((name, q))
    }

    pub fn message_id_domain(&self) -> &str {
        self.service
            .message_id_domain
            .as_deref()
            .unwrap_or_else(|| self.service.support_address.domain())
    }

    pub fn envelope_from(&self) -> &EmailAddress {
        self.smtp
            .envelope_from
            .as_ref()
            .unwrap_or(&self.service.support_address)
    }
}

/// Resolves `auth`/`oauth` of a mailbox or `[smtp]`: the method (default `xoauth2` when a grant
/// is named, else `password`) and the grant's token source. Returns the grant's provider, whose
/// servers are the default.
fn oauth_use(
    key: &str,
    auth: &mut Option<crate::oauth::AuthMethod>,
    oauth: &Option<String>,
    token: &mut Option<Arc<crate::oauth::TokenSource>>,
    sources: &BTreeMap<String, Arc<crate::oauth::TokenSource>>,
    smtp: bool,
    problems: &mut Vec<String>,
) -> Option<crate::oauth::Provider> {
    use crate::oauth::AuthMethod;
    let method = auth.unwrap_or(if oauth.is_some() {
        AuthMethod::Xoauth2
    } else {
        AuthMethod::Password
    });
    *auth = Some(method);
    if smtp && method == AuthMethod::Oauthbearer {
        problems.push(format!(
            "{key}.auth: \"oauthbearer\" is not offered by the SMTP client; use \"xoauth2\" (Microsoft 365 and Gmail take it)"
        ));
    }
    match (method, oauth) {
        (AuthMethod::Password, Some(g)) => {
            problems.push(format!(
                "{key}.oauth: {g:?} is set but auth = \"password\"; use auth = \"xoauth2\" or \"oauthbearer\", or remove oauth"
            ));
            None
        }
        (AuthMethod::Password, None) => None,
        (m, None) => {
            problems.push(format!(
                "{key}.oauth: required with auth = \"{}\": the name of an [oauth.NAME] grant",
                m.mechanism().to_lowercase()
            ));
            None
        }
        (_, Some(g)) => match sources.get(g) {
            Some(src) => {
                if method == AuthMethod::Oauthbearer
                    && src.grant().provider == crate::oauth::Provider::Microsoft365
                {
                    problems.push(format!(
                        "{key}.auth: Microsoft 365 offers XOAUTH2, not OAUTHBEARER; use auth = \"xoauth2\" (the default)"
                    ));
                }
                *token = Some(src.clone());
                Some(src.grant().provider)
            }
            None => {
                let have: Vec<&str> = sources.keys().map(String::as_str).collect();
                problems.push(format!(
                    "{key}.oauth: no grant [oauth.{g}] (configured: {})",
                    if have.is_empty() {
                        "none".to_string()
                    } else {
                        have.join(", ")
                    }
                ));
                None
            }
        },
    }
}

/// A mail server's address: the one configured (checked), or else the grant provider's preset.
fn server_or_preset(
    key: &str,
    host: &mut String,
    port: &mut u16,
    tls: &mut TlsMode,
    preset: Option<crate::oauth::ServerPreset>,
    problems: &mut Vec<String>,
) {
    if !host.trim().is_empty() {
        check_host(&format!("{key}.host"), host, problems);
        return;
    }
    match preset {
        Some(p) => {
            *host = p.host.to_string();
            *port = p.port;
            *tls = p.tls;
        }
        None => problems.push(format!(
            "{key}.host: required (or oauth = a grant with provider = \"microsoft365\" | \"google\")"
        )),
    }
}

fn check_host(key: &str, host: &str, problems: &mut Vec<String>) {
    if host.trim().is_empty() || host.contains(char::is_whitespace) {
        problems.push(format!("{key}: not a host name: {host:?}"));
    }
}

/// Where a credential file named in the config is: an absolute path as is; a relative name in
/// systemd's `$CREDENTIALS_DIRECTORY` (the service), else in `/etc/supportd/credentials` (where
/// the README puts them: `check` and `oauth authorize` run by hand find them too), else relative
/// to the working directory.
pub fn credential_path(file: &Path) -> PathBuf {
    if file.is_relative() {
        if let Some(dir) = std::env::var_os("CREDENTIALS_DIRECTORY") {
            let p = Path::new(&dir).join(file);
            if p.exists() {
                return p;
            }
        }
        let p = Path::new(CREDENTIALS_DIR).join(file);
        if p.exists() {
            return p;
        }
    }
    file.to_path_buf()
}

/// Where the README and the package put credential files.
pub const CREDENTIALS_DIR: &str = "/etc/supportd/credentials";

fn resolve_secret(
    key: &str,
    secret: &mut Secret,
    file: &Option<PathBuf>,
    problems: &mut Vec<String>,
) {
    let Some(file) = file else { return };
    if !secret.is_empty() {
        problems.push(format!(
            "{key}.password_file: set together with {key}.password; keep one"
        ));
        return;
    }
    let path = credential_path(file);
    match std::fs::read_to_string(&path) {
        Ok(s) => *secret = Secret::new(s.trim_end_matches(['\r', '\n'])),
        Err(e) => problems.push(format!(
            "{key}.password_file: cannot read {}: {e}",
            path.display()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn load_str(toml: &str) -> Result<Settings, ConfigError> {
        let mut f = tempfile::Builder::new()
            .suffix(".toml")
            .tempfile()
            .expect("temp file");
        f.write_all(toml.as_bytes()).expect("write");
        Settings::load(f.path())
    }

    const GOOD: &str = r#"
[service]
support_address = "support@example.test"
[mailboxes.support]
host = "127.0.0.1"
port = 14143
tls = "none"
user = "support@example.test"
password = "pw"
[smtp]
host = "127.0.0.1"
port = 10025
tls = "none"
[threading]
reply_secret = "0123456789abcdef0123"
old_reply_secrets = []
reopen_within_days = 30
"#;

    #[test]
    fn ten_mistakes_are_ten_lines_from_one_load() {
        let bad = r#"
[service]
support_address = "not an address"
max_mail_mb = 5000
[mailboxes.support]
host = "127.0.0.1"
port = 14143
tls = "maybe"
user = "support@example.test"
password = "pw"
after = "move"
poll_interval_secs = -5
[smtp]
host = "127.0.0.1"
prot = 10025
tls = "none"
[threading]
reply_secret = "short"
reopen_within_days = "thirty"
[log]
format = "fancy"
[[agents]]
name = "李娜"
address = "lina@example.test"
role = "boss"
"#;
        let Err(ConfigError::Invalid { problems, .. }) = Settings::from_toml(bad, "bad.toml")
        else {
            panic!("a bad config loads");
        };
        let keys: Vec<&str> = problems
            .iter()
            .map(|p| p.split([' ', ':']).next().unwrap_or(""))
            .collect();
        for key in [
            "service.support_address",
            "service.max_mail_mb",
            "mailboxes.support.tls",
            "mailboxes.support.poll_interval_secs",
            "mailboxes.support.move_to",
            "smtp.prot",
            "threading.reply_secret",
            "threading.reopen_within_days",
            "log.format",
            "agents.0.role",
        ] {
            assert!(keys.contains(&key), "{key} missing from {problems:#?}");
        }
        assert_eq!(problems.len(), 10, "{problems:#?}");
        // Plain words and the file's line.
        assert!(problems.contains(
            &"mailboxes.support.tls (line 8): \"maybe\" is not one of none | starttls | tls"
                .to_string()
        ));
        assert!(problems
            .contains(&"smtp.prot (line 15): unknown key; did you mean `port`?".to_string()));
    }

    #[test]
    fn a_good_config_loads_with_defaults() {
        let s = load_str(GOOD).expect("valid");
        assert_eq!(s.mailboxes["support"].folder, "INBOX");
        assert_eq!(s.message_id_domain(), "example.test");
        assert!(s
            .database_url()
            .starts_with("sqlite:///var/lib/supportd/supportd.db"));
        assert_eq!(format!("{:?}", s.mailboxes["support"].password), "***");
    }

    #[test]
    fn ports_default_by_tls_and_an_oauth_preset_fills_the_servers() {
        let s = load_str(&GOOD.replace("port = 14143", "port = 0")).expect("valid");
        assert_eq!(s.mailboxes["support"].port, 143, "tls = none: 143");
        let m365 = r#"
[service]
support_address = "support@contoso.com"
[oauth.m365]
provider = "microsoft365"
tenant = "contoso.onmicrosoft.com"
client_id = "11111111-2222-3333-4444-555555555555"
[mailboxes.support]
user = "support@contoso.com"
oauth = "m365"
[smtp]
user = "support@contoso.com"
oauth = "m365"
[threading]
reply_secret = "0123456789abcdef0123"
"#;
        let s = Settings::from_toml(m365, "m365.toml").expect("valid");
        let mb = &s.mailboxes["support"];
        assert_eq!(
            (mb.host.as_str(), mb.port, mb.tls),
            ("outlook.office365.com", 993, TlsMode::Tls)
        );
        assert_eq!(mb.auth, Some(crate::oauth::AuthMethod::Xoauth2));
        assert_eq!(
            (s.smtp.host.as_str(), s.smtp.port, s.smtp.tls),
            ("smtp.office365.com", 587, TlsMode::Starttls)
        );
        // One token source for the grant, shared by the mailbox and the relay.
        assert!(Arc::ptr_eq(
            mb.token.as_ref().expect("mailbox token"),
            s.smtp.token.as_ref().expect("smtp token")
        ));
        assert!(format!("{s:?}").contains("TokenSource"));

        let bad = m365
            .replace(
                "oauth = \"m365\"\n[smtp]",
                "oauth = \"m356\"\npassword = \"x\"\n[smtp]",
            )
            .replace(
                "user = \"support@contoso.com\"\noauth = \"m365\"\n[threading]",
                "auth = \"oauthbearer\"\noauth = \"m365\"\n[threading]",
            );
        let err = Settings::from_toml(&bad, "bad.toml")
            .expect_err("invalid")
            .to_string();
        assert!(
            err.contains(
                "mailboxes.support.oauth (line 10): no grant [oauth.m356] (configured: m365)"
            ),
            "{err}"
        );
        assert!(err.contains("mailboxes.support.host"), "{err}");
        assert!(
            err.contains("smtp.auth (line 13): \"oauthbearer\" is not offered"),
            "{err}"
        );
        assert!(
            err.contains("smtp.user (line 12): required with OAuth"),
            "{err}"
        );
    }

    #[test]
    fn a_bad_config_names_every_key_at_fault() {
        let bad = GOOD.replace("password = \"pw\"", "after = \"move\"");
        let err = load_str(&bad).expect_err("invalid").to_string();
        assert!(
            err.contains("mailboxes.support.password (line 4): required"),
            "{err}"
        );
        assert!(
            err.contains("mailboxes.support.move_to (line 4): required"),
            "{err}"
        );
    }

    #[test]
    fn the_shipped_example_config_is_valid() {
        let creds = tempfile::tempdir().expect("tempdir");
        std::fs::write(creds.path().join("imap-password"), "i\n").expect("write");
        std::fs::write(creds.path().join("smtp-password"), "s\n").expect("write");
        // Only this test reads CREDENTIALS_DIRECTORY.
        std::env::set_var("CREDENTIALS_DIRECTORY", creds.path());
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/supportd.example.toml");
        let s = Settings::load(&path).expect("example config loads");
        assert_eq!(s.mailboxes["support"].password.expose(), "i");
        assert_eq!(s.smtp.password.expose(), "s");
    }

    #[test]
    fn a_bad_classification_rule_is_rejected_with_its_key() {
        let bad = format!(
            "{GOOD}\n[classify]\nvip_domains = [\"bigcorp.example\"]\n[[classify.rules]]\nname = \"x\"\ntarget = \"complaint\"\npatterns = [\"(oops\"]\n"
        );
        let err = load_str(&bad).expect_err("invalid").to_string();
        assert!(err.contains("classify.rules[0].patterns[0]"), "{err}");
        let ok = format!("{GOOD}\n[classify]\nvip_domains = [\"bigcorp.example\"]\n");
        let s = load_str(&ok).expect("valid");
        assert!(s
            .classifier()
            .is_vip(EmailAddress::parse("a@bigcorp.example").as_ref()));
    }

    #[test]
    fn an_unknown_key_is_rejected_by_name() {
        let err = load_str(&GOOD.replace("tls = \"none\"\nuser", "tls = \"none\"\nsuer = 1\nuser"))
            .expect_err("unknown key")
            .to_string();
        assert!(err.contains("suer"), "{err}");
    }

    #[test]
    fn a_wrong_enum_value_says_which_key() {
        let err = load_str(&GOOD.replacen("tls = \"none\"", "tls = \"ssl\"", 1))
            .expect_err("bad enum")
            .to_string();
        assert!(err.contains("ssl") && err.contains("tls"), "{err}");
    }
}
