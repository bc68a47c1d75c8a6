//! The command line: the binary's edge. Errors become `anyhow` here and are printed with their
//! causes; exit codes say success. One global `--config FILE` (or `SUPPORTD_CONFIG`, else
//! `/etc/supportd/supportd.toml`) for every command that needs one.

pub mod actions;
mod check;
mod classify;
pub mod files;
pub mod inspect;
mod oauth;
mod personal;
mod status;
mod views;

use crate::agents::wording::Wording;
use crate::app::context::Desk;
use crate::app::Application;
use crate::cli::actions::Action;
use crate::clock::{Clock, SharedClock, SystemClock};
use crate::config::Settings;
use crate::domain::{Category, Correction, EmailAddress, Priority, Severity, TicketRef};
use crate::inbound::analyze::Analyzer;
use crate::inbound::thread::ReplySigner;
use crate::outbound::templates::Templates;
use crate::store::{Store, TicketFilter, TicketOrder};
use anyhow::Context;
use clap::{Parser, Subcommand};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// Where the configuration is when `--config` and `SUPPORTD_CONFIG` are not given.
const DEFAULT_CONFIG: &str = "/etc/supportd/supportd.toml";

#[derive(Debug, Parser)]
#[command(
    name = "supportd",
    version,
    about = "Email-channel customer-support daemon"
)]
pub struct Cli {
    /// The configuration file (default: $SUPPORTD_CONFIG, else /etc/supportd/supportd.toml).
    #[arg(long, short, global = true, env = "SUPPORTD_CONFIG")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon: fetch mail, keep tickets, send acknowledgements.
    Run,
    /// Check config, templates, database, every IMAP mailbox and the SMTP server; one OK/FAIL
    /// line each, exit 1 on any failure.
    Check,
    /// Create or upgrade the database schema.
    Migrate,
    /// Run the pure pipeline stages on one message from stdin and print the conclusions (with
    /// `--config`: that config's support address, reply secret and rules).
    Inspect {
        /// Print JSON (documented in the README).
        #[arg(long)]
        json: bool,
    },
    /// Lists of tickets: `tickets list`.
    Tickets {
        #[command(subcommand)]
        command: TicketsCommand,
    },
    /// One ticket: `ticket correct T-000123 --category complaint --by agent@…`.
    Ticket {
        #[command(subcommand)]
        command: TicketCommand,
    },
    /// A ticket's files: `attachment get T-000123 N|NAME [-o FILE]` extracts one, byte for byte,
    /// from the stored mail (`ticket show` lists them with their numbers).
    Attachment {
        #[command(subcommand)]
        command: AttachmentCommand,
    },
    /// A stored mail, byte for byte: `message get MESSAGE-ID [-o FILE]` (e.g. one over
    /// `service.max_mail_mb`, read for its headers only).
    Message {
        #[command(subcommand)]
        command: MessageCommand,
    },
    /// Mail that a person may have written but that is filed on no ticket (no usable sender, or
    /// refused by the database): `unattributed list`.
    Unattributed {
        #[command(subcommand)]
        command: UnattributedCommand,
    },
    /// A customer's personal data: what supportd keeps, an export, erasure (PIPL, GDPR).
    Customer {
        #[command(subcommand)]
        command: CustomerCommand,
    },
    /// The monthly service report: key figures against targets (satisfaction, resolution,
    /// first-contact resolution, each promise), volume by day and category, complaints by
    /// severity, breaches, survey scores, per-agent figures, the month before for comparison.
    Report {
        /// The month (`2026-11`; default: this month), in the calendar's time zone.
        #[arg(long)]
        month: Option<String>,
        /// Same as `--format json`.
        #[arg(long)]
        json: bool,
        /// `text` (default), `json`, or `html` (self-contained, charts inline as SVG).
        #[arg(long, value_parser = ["text", "json", "html"])]
        format: Option<String>,
        /// Write to this file instead of standard output.
        #[arg(long, short = 'o')]
        output: Option<PathBuf>,
        /// Queue the report (HTML with charts, and plain text) to the supervisors now, through
        /// the outbox: the running daemon sends it within a minute.
        #[arg(long)]
        mail: bool,
    },
    /// Which daemon fetches which mailbox (leases, several daemons on PostgreSQL), the daemons
    /// alive, the outbox, the next promise due.
    Status {
        #[arg(long)]
        json: bool,
    },
    /// The classifier: `classify train` (rebuild the model with this site's corrections),
    /// `classify eval FILE|DIR` (measure it on labelled mail).
    Classify {
        #[command(subcommand)]
        command: ClassifyCommand,
    },
    /// OAuth 2.0 grants for Microsoft 365 / Gmail mailboxes: `oauth authorize` (the first
    /// sign-in, which saves the refresh token), `oauth status`.
    Oauth {
        #[command(subcommand)]
        command: OauthCommand,
    },
    /// The approved templates: `templates check`.
    Templates {
        #[command(subcommand)]
        command: TemplatesCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum TemplatesCommand {
    /// Render every template in every language with sample data (strict mode), check approvals,
    /// and run the forbidden-phrase check over each; exit 1 on any problem. Uses the config's
    /// templates directory and forbidden phrases when a config is given.
    Check {
        /// Templates directory (default: the config's, or ./templates).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub enum OauthCommand {
    /// Sign in once as the mailbox's account and save the refresh token where the grant's
    /// `refresh_token_file` says. The running daemon picks it up at its next login.
    Authorize {
        /// The grant (`[oauth.NAME]`); or name it by its user with --mailbox / --smtp.
        grant: Option<String>,
        /// The grant that this mailbox logs in with; its IMAP login is tried afterwards.
        #[arg(long, conflicts_with_all = ["grant", "smtp"])]
        mailbox: Option<String>,
        /// The grant that [smtp] logs in with.
        #[arg(long, conflicts_with = "grant")]
        smtp: bool,
        /// `device` (a URL and a code, sign in on any device: Microsoft 365's default) or
        /// `browser` (a loopback redirect with PKCE: Google's, whose device flow refuses mail).
        #[arg(long, value_enum)]
        flow: Option<crate::oauth::authorize::Flow>,
        /// How long to wait for the sign-in, in seconds.
        #[arg(long, default_value_t = 900)]
        timeout_secs: u64,
    },
    /// Each grant: its refresh token file, whether it gives an access token now, and who uses it.
    Status {
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum ClassifyCommand {
    /// Rebuild the model from the shipped corpus plus every classification an agent corrected
    /// here (`#category`/`#priority` commands, `ticket correct`), and write it where the daemon
    /// loads it (`<state_dir>/classify-model.bin`; `systemctl reload supportd` picks it up).
    Train {
        /// Only the shipped corpus, no config or database (how the shipped model is built).
        #[arg(long)]
        shipped: bool,
        /// Write the model here instead.
        #[arg(long, short = 'o')]
        output: Option<PathBuf>,
        /// How many corpus mails one correction counts as.
        #[arg(long, default_value_t = 5.0)]
        correction_weight: f32,
    },
    /// Measure the classifier (the configured one with `--config`, else the shipped one) on a
    /// labelled TOML file or a directory of them: accuracy per field, precision and recall per
    /// category, the confusion matrix.
    Eval {
        path: PathBuf,
        #[arg(long)]
        json: bool,
        /// List every mail it got wrong.
        #[arg(long)]
        misses: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum TicketsCommand {
    /// The agents' queue: open tickets, most pressing first (urgent, high, normal, low; then
    /// oldest), with their next due promise. `--all`: solved ones too, newest first.
    List {
        #[arg(long)]
        all: bool,
        /// Only tickets with a promise past due and not kept.
        #[arg(long, conflicts_with_all = ["due_within", "escalated"])]
        overdue: bool,
        /// Only tickets with a promise due within this time (`30m`, `4h`, `2d`).
        #[arg(long, value_name = "DURATION", conflicts_with = "escalated")]
        due_within: Option<String>,
        /// Only tickets escalated to the supervisors and not solved.
        #[arg(long)]
        escalated: bool,
        #[arg(long)]
        json: bool,
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
}

#[derive(Debug, Subcommand)]
pub enum AttachmentCommand {
    /// Writes one file of a ticket: by its number in `ticket show`, or by its name (the newest
    /// of that name). To `-o FILE`, else to its own name in the current directory (never over an
    /// existing file).
    Get {
        ticket: String,
        which: String,
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub enum MessageCommand {
    /// Writes the raw mail (as received or sent) to `-o FILE`, else to stdout.
    Get {
        /// The Message-ID, with or without angle brackets.
        message_id: String,
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub enum UnattributedCommand {
    /// The newest such mails: when, mailbox and UID, Message-ID, From, subject, and why.
    List {
        #[arg(long)]
        json: bool,
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
}

#[derive(Debug, Clone, Subcommand)]
pub enum CustomerCommand {
    /// Every ticket, mail, event, survey and outgoing mail that concerns ADDRESS (as requester,
    /// participant or recipient), with counts.
    Show {
        address: String,
        #[arg(long)]
        json: bool,
    },
    /// A machine-readable archive for a data-access request: JSON with the tickets, the mails
    /// (texts, and raw bytes and attachments in base64), and the counts.
    Export {
        address: String,
        #[arg(short, long)]
        output: std::path::PathBuf,
    },
    /// Erases ADDRESS's personal data everywhere supportd keeps it, and queues the deletion of
    /// its IMAP copies; leaves an audit event (who, when, why). Idempotent.
    Erase {
        address: String,
        #[arg(long)]
        by: String,
        #[arg(long)]
        reason: String,
        /// Show what would go; change nothing.
        #[arg(long)]
        dry_run: bool,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Clone, Subcommand)]
pub enum TicketCommand {
    /// Status, owner, promises with due times and time left, events, messages.
    Show {
        /// The ticket, e.g. T-000123.
        ticket: String,
        #[arg(long)]
        json: bool,
    },
    /// Record that an agent's reply reached the customer (keeps the first-solution promise;
    /// the first agent to reply owns the ticket).
    ReplySent {
        ticket: String,
        /// The agent's address.
        #[arg(long)]
        by: String,
    },
    /// Mark the ticket solved: sends the satisfaction survey, starts a complaint's follow-up.
    Solve {
        ticket: String,
        #[arg(long)]
        by: String,
    },
    /// Mark the ticket complex (progress news every `sla.progress_hours`), or not (`--off`).
    Complex {
        ticket: String,
        #[arg(long)]
        off: bool,
        #[arg(long)]
        by: String,
    },
    /// Record the follow-up (回访) of a solved complaint and what the customer said.
    Followup {
        ticket: String,
        #[arg(long)]
        result: String,
        #[arg(long)]
        by: String,
    },
    /// Reassign the ticket to another agent.
    Assign {
        ticket: String,
        #[arg(long)]
        to: String,
        #[arg(long)]
        by: String,
    },
    /// Renew the ticket's agents' address when a card reached someone it should not have (a
    /// customer, by mistake): older cards and notices stop working; new ones get the new address.
    RotateToken {
        ticket: String,
        #[arg(long)]
        by: String,
    },
    /// Correct a ticket's classification (recorded, so the rules can be tuned).
    Correct {
        ticket: String,
        /// inquiry | status_query | complaint | suggestion
        #[arg(long)]
        category: Option<String>,
        /// general | major (complaints)
        #[arg(long)]
        severity: Option<String>,
        #[arg(long)]
        urgent: Option<bool>,
        /// urgent | high | normal | low
        #[arg(long)]
        priority: Option<String>,
        /// Who corrects it (recorded).
        #[arg(long)]
        by: String,
    },
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(execute(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

impl Cli {
    /// The configuration file to use: `--config`, `SUPPORTD_CONFIG`, or the default one.
    fn config_path(&self) -> anyhow::Result<PathBuf> {
        match &self.config {
            Some(p) => Ok(p.clone()),
            None if Path::new(DEFAULT_CONFIG).exists() => Ok(PathBuf::from(DEFAULT_CONFIG)),
            None => anyhow::bail!(
                "no configuration: give --config FILE (or set SUPPORTD_CONFIG; the default {DEFAULT_CONFIG} does not exist)"
            ),
        }
    }

    fn settings(&self) -> anyhow::Result<Settings> {
        let path = self.config_path()?;
        Ok(Settings::load(&path)?)
    }

    /// The settings and the database, which must exist already: a command that reads or acts
    /// on tickets never creates an empty database (a relative `state_dir` run from another
    /// directory would otherwise leave one there and fail with `no such table`).
    async fn store(&self) -> anyhow::Result<(Settings, Store)> {
        self.open_store(false).await
    }

    /// The settings and the database; `create`: make the database when it does not exist yet
    /// (`migrate`), else refuse with where it was looked for and why.
    async fn open_store(&self, create: bool) -> anyhow::Result<(Settings, Store)> {
        let settings = self.settings()?;
        let file = settings.service.state_dir.join("supportd.db");
        if !create && settings.database.url.is_none() && !file.exists() {
            let shown = std::path::absolute(&file).unwrap_or_else(|_| file.clone());
            let mut why = format!("no database at {}", shown.display());
            if settings.service.state_dir.is_relative() {
                why.push_str(&format!(
                    ": service.state_dir \"{}\" is relative, so it is taken from the current directory ({}); run this from the directory the daemon runs in, or make state_dir absolute",
                    settings.service.state_dir.display(),
                    std::env::current_dir()
                        .map(|d| d.display().to_string())
                        .unwrap_or_else(|_| "unknown".into())
                ));
            } else {
                why.push_str(": the daemon has not run with this configuration yet (`supportd migrate` creates it)");
            }
            anyhow::bail!(why);
        }
        let store = Store::connect(&settings.database_url(), 1).await?;
        Ok((settings, store))
    }
}

pub async fn execute(cli: Cli) -> anyhow::Result<ExitCode> {
    match &cli.command {
        Command::Run => {
            let config = cli.config_path()?;
            let settings = Settings::load(&config)?;
            let log = crate::ops::logging::init(&settings.log);
            let clock: SharedClock = Arc::new(SystemClock);
            let app = Application::build(settings, clock).await?;
            let cancel = CancellationToken::new();
            crate::app::signals::spawn(cancel.clone(), app.reloader(config, log))?;
            app.run_until_stopped(cancel).await;
            Ok(ExitCode::SUCCESS)
        }
        Command::Migrate => {
            let (_, store) = cli.open_store(true).await?;
            let busy = busy("migrating the database");
            store.migrate().await?;
            busy.finish_and_clear();
            println!("database is up to date");
            Ok(ExitCode::SUCCESS)
        }
        Command::Check => check::run(&cli.config_path()?).await,
        Command::Inspect { json } => {
            let analyzer = match &cli.config {
                Some(_) => Analyzer::from_settings(&cli.settings()?),
                None => Analyzer::new(
                    EmailAddress::parse("support@example.invalid").context("built-in address")?,
                    "example.invalid".into(),
                    ReplySigner::new(Default::default(), Vec::new()),
                    Arc::new(crate::inbound::classify::Classifier::builtin()),
                ),
            };
            let mut raw = Vec::new();
            std::io::stdin()
                .read_to_end(&mut raw)
                .context("cannot read the message from stdin")?;
            let a = analyzer.analyze(&raw);
            if *json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&crate::cli::inspect::to_json(&a))?
                );
            } else {
                print!("{}", crate::cli::inspect::to_text(&a));
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Tickets {
            command:
                TicketsCommand::List {
                    all,
                    overdue,
                    due_within,
                    escalated,
                    json,
                    limit,
                },
        } => {
            let filter = match (overdue, due_within, escalated) {
                (true, _, _) => TicketFilter::Overdue,
                (_, Some(d), _) => {
                    TicketFilter::DueWithin(views::parse_duration(d).with_context(|| {
                        format!("--due-within {d:?}: expected e.g. 30m, 4h, 2d")
                    })?)
                }
                (_, _, true) => TicketFilter::Escalated,
                _ => TicketFilter::None,
            };
            let order = if *all {
                TicketOrder::Newest
            } else {
                TicketOrder::Queue
            };
            let (settings, store) = cli.store().await?;
            let now = SystemClock.now();
            let rows = store.list_tickets(order, filter, now, *limit).await?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&rows)?);
            } else {
                print!(
                    "{}",
                    views::show_tickets(
                        &rows,
                        &settings.sla_policy().calendar,
                        now,
                        settings.service.agent_language
                    )
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Customer { command } => personal::run(&cli, command).await,
        Command::Unattributed {
            command: UnattributedCommand::List { json, limit },
        } => {
            let (settings, store) = cli.store().await?;
            let rows = store.unattributed(*limit).await?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&rows)?);
            } else {
                print!(
                    "{}",
                    views::show_unattributed(&rows, &settings.sla_policy().calendar)
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Ticket {
            command: TicketCommand::Show { ticket, json },
        } => {
            let t = ticket_ref(ticket)?;
            let (settings, store) = cli.store().await?;
            let mut d = store
                .ticket_detail(t)
                .await?
                .with_context(|| format!("no ticket {t}"))?;
            let files = files::ticket_files_and_sent_texts(&store, t, &mut d).await?;
            if *json {
                #[derive(serde::Serialize)]
                struct Shown<'a> {
                    #[serde(flatten)]
                    detail: &'a crate::store::TicketDetail,
                    files: &'a [files::TicketFile],
                }
                let shown = Shown {
                    detail: &d,
                    files: &files,
                };
                println!("{}", serde_json::to_string_pretty(&shown)?);
            } else {
                let cal = &settings.sla_policy().calendar;
                print!(
                    "{}",
                    views::show_ticket(&d, cal, SystemClock.now(), settings.service.agent_language)
                );
                print!("{}", views::show_files(&files, cal));
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Message {
            command: MessageCommand::Get { message_id, output },
        } => {
            let id = message_id
                .trim()
                .trim_start_matches('<')
                .trim_end_matches('>');
            let (_, store) = cli.store().await?;
            let raw = store
                .raw_by_message_id(id)
                .await?
                .with_context(|| format!("no stored mail has the Message-ID <{id}>"))?;
            match output {
                Some(p) => {
                    std::fs::write(p, &raw)
                        .with_context(|| format!("cannot write {}", p.display()))?;
                    eprintln!("<{id}>: {} bytes to {}", raw.len(), p.display());
                }
                None => {
                    use std::io::Write;
                    std::io::stdout().write_all(&raw)?;
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Attachment {
            command:
                AttachmentCommand::Get {
                    ticket,
                    which,
                    output,
                },
        } => {
            let t = ticket_ref(ticket)?;
            let (_, store) = cli.store().await?;
            let all = files::ticket_files(&store, t).await?;
            let f = files::pick(&all, which).with_context(|| {
                format!("{t} has no file {which:?} (`supportd ticket show {t}` lists its files)")
            })?;
            let path = match output {
                Some(p) => p.clone(),
                None => {
                    let name = f
                        .file
                        .name
                        .clone()
                        .unwrap_or_else(|| format!("{t}-{}", f.n));
                    // Only the file name: a name from a mail never chooses a directory.
                    let base = Path::new(&name)
                        .file_name()
                        .map(|n| n.to_os_string())
                        .unwrap_or_else(|| format!("{t}-{}", f.n).into());
                    let p = PathBuf::from(base);
                    anyhow::ensure!(!p.exists(), "{} exists already: give -o FILE", p.display());
                    p
                }
            };
            std::fs::write(&path, &f.file.bytes)
                .with_context(|| format!("cannot write {}", path.display()))?;
            println!(
                "{}: {} bytes ({}) to {}",
                f.file.name.as_deref().unwrap_or("(unnamed)"),
                f.file.size,
                f.file.content_type,
                path.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Ticket { command } => {
            let (ticket, action) = ticket_action(command)?;
            let t = ticket_ref(&ticket)?;
            let (settings, store) = cli.store().await?;
            let desk = Desk::new(&settings, Templates::load(&settings.service.templates_dir)?);
            let done =
                crate::cli::actions::perform(&store, &desk, t, &action, SystemClock.now()).await?;
            for c in &done.corrected {
                println!(
                    "{t}: {} {} -> {}",
                    c.field,
                    c.old.as_deref().unwrap_or("-"),
                    c.new
                );
            }
            if done.events.is_empty() && done.corrected.is_empty() {
                println!("{t}: already so; nothing changed");
            } else if !done.events.is_empty() {
                println!(
                    "{t}: {}",
                    done.events
                        .iter()
                        .map(|e| e.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            }
            if done.mails > 0 {
                println!(
                    "{t}: {} mail(s) queued; the running daemon sends them within a minute",
                    done.mails
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Report {
            month,
            json,
            format,
            output,
            mail,
        } => {
            let (settings, store) = cli.store().await?;
            let tz = settings.sla_policy().calendar.timezone();
            let now = SystemClock.now();
            let month = match month {
                Some(m) => crate::report::Month::parse(m)
                    .with_context(|| format!("--month {m:?}: expected YYYY-MM"))?,
                None => crate::report::Month::containing(now, tz),
            };
            if *mail {
                let desk = crate::app::context::Desk::new(
                    &settings,
                    crate::outbound::templates::Templates::load(&settings.service.templates_dir)?,
                );
                let to = settings.report_recipients();
                let id = crate::workers::report::queue_report(
                    &store,
                    &desk,
                    &settings.report,
                    &to,
                    tz,
                    month,
                    now,
                    false,
                )
                .await?;
                let to = to.iter().map(|a| a.as_str()).collect::<Vec<_>>().join(", ");
                if let Some(id) = id {
                    println!("report {month} queued to {to} (Message-ID <{id}>); the running daemon sends it within a minute", id = id.as_str());
                }
                return Ok(ExitCode::SUCCESS);
            }
            let busy = busy(&format!("computing the report for {month}"));
            let r =
                crate::report::monthly(&store, month, tz, &settings.report.targets, now).await?;
            let format = format
                .as_deref()
                .unwrap_or(if *json { "json" } else { "text" });
            let out = match format {
                "json" => serde_json::to_string_pretty(&r)? + "\n",
                "html" => {
                    let _ = crate::report::charts::load_font(settings.report.font.as_deref());
                    crate::report::html::render(
                        &r,
                        settings.service.agent_language,
                        crate::report::html::ChartsAs::InlineSvg,
                        &settings.service.support_name,
                    )
                }
                _ => crate::report::text::render(&r, settings.service.agent_language),
            };
            busy.finish_and_clear();
            match output {
                Some(path) => {
                    std::fs::write(path, out)
                        .with_context(|| format!("cannot write {}", path.display()))?;
                    println!("report {month} written to {}", path.display());
                }
                None => print!("{out}"),
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Templates {
            command: TemplatesCommand::Check { dir },
        } => templates_check(&cli, dir.as_deref()),
        Command::Classify { command } => classify::run(&cli, command).await,
        Command::Oauth { command } => oauth::run(&cli, command).await,
        Command::Status { json } => {
            let (settings, store) = cli.store().await?;
            status::run(&settings, &store, *json).await
        }
    }
}

/// `templates check`: only what the templates are about — the directory and the forbidden
/// phrases — is read from the config (a config that names no SMTP password is fine here).
fn templates_check(cli: &Cli, dir: Option<&Path>) -> anyhow::Result<ExitCode> {
    let wording = match &cli.config {
        Some(path) => Some(crate::config::TemplateSettings::load(path)?),
        None => None,
    };
    let dir = match (dir, &wording) {
        (Some(d), _) => d.to_path_buf(),
        (None, Some(s)) => s.templates_dir.clone(),
        (None, None) => PathBuf::from("templates"),
    };
    let policy = match &wording {
        Some(s) => Wording::new(&s.wording),
        None => Wording::default(),
    };
    let t = match Templates::load(&dir) {
        Ok(t) => t,
        Err(e) => {
            println!("FAIL {e}");
            return Ok(ExitCode::FAILURE);
        }
    };
    let problems = crate::agents::wording::check_templates(&t, &policy.forbidden);
    for (key, a) in t.approvals() {
        let mine: Vec<&String> = problems
            .iter()
            .filter(|p| p.starts_with(&format!("{key}:")))
            .collect();
        if mine.is_empty() {
            println!(
                "OK   {key:<28} v{} approved by {} on {}",
                a.version, a.approved_by, a.approved_at
            );
        }
        for p in mine {
            println!("FAIL {p}");
        }
    }
    Ok(if problems.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn ticket_ref(s: &str) -> anyhow::Result<TicketRef> {
    TicketRef::parse(s).with_context(|| format!("not a ticket number: {s:?} (e.g. T-000123)"))
}

fn address(flag: &str, s: &str) -> anyhow::Result<EmailAddress> {
    EmailAddress::parse(s).with_context(|| format!("{flag} {s:?}: not a mail address"))
}

/// The action a write subcommand asks for.
fn ticket_action(c: &TicketCommand) -> anyhow::Result<(String, Action)> {
    Ok(match c.clone() {
        TicketCommand::ReplySent { ticket, by } => (
            ticket,
            Action::ReplySent {
                by: address("--by", &by)?,
            },
        ),
        TicketCommand::Solve { ticket, by } => (ticket, Action::Solve { by }),
        TicketCommand::RotateToken { ticket, by } => (ticket, Action::RotateAgentAddress { by }),
        TicketCommand::Complex { ticket, off, by } => (ticket, Action::Complex { on: !off, by }),
        TicketCommand::Followup { ticket, result, by } => (ticket, Action::Followup { result, by }),
        TicketCommand::Assign { ticket, to, by } => (
            ticket,
            Action::Assign {
                to: address("--to", &to)?,
                by,
            },
        ),
        TicketCommand::Correct {
            ticket,
            category,
            severity,
            urgent,
            priority,
            by,
        } => {
            let correction = Correction {
                category: parse_opt(
                    category,
                    Category::parse,
                    "--category",
                    "inquiry, status_query, complaint, suggestion",
                )?,
                severity: parse_opt(severity, Severity::parse, "--severity", "general, major")?,
                urgent,
                priority: parse_opt(
                    priority,
                    Priority::parse,
                    "--priority",
                    "urgent, high, normal, low",
                )?,
            };
            if correction == Correction::default() {
                anyhow::bail!(
                    "nothing to correct: give --category, --severity, --urgent or --priority"
                );
            }
            (ticket, Action::Correct { correction, by })
        }
        TicketCommand::Show { .. } => anyhow::bail!("show is not an action"),
    })
}

/// Parses an optional command-line value, naming the flag and the accepted values on error.
fn parse_opt<T>(
    v: Option<String>,
    parse: fn(&str) -> Option<T>,
    flag: &str,
    accepted: &str,
) -> anyhow::Result<Option<T>> {
    v.map(|s| parse(&s).with_context(|| format!("{flag} {s:?}: expected one of {accepted}")))
        .transpose()
}

/// A spinner with the elapsed time on stderr while a long operation runs, on a terminal only
/// (under systemd, in pipes and in scripts nothing is drawn; journald gets the log lines).
fn busy(what: &str) -> indicatif::ProgressBar {
    let bar =
        indicatif::ProgressBar::with_draw_target(None, indicatif::ProgressDrawTarget::stderr());
    if let Ok(style) = indicatif::ProgressStyle::with_template("{spinner} {msg} ({elapsed})") {
        bar.set_style(style);
    }
    bar.set_message(what.to_string());
    bar.enable_steady_tick(std::time::Duration::from_millis(120));
    bar
}
