//! The command line: `supportd run | check | migrate | inspect | tickets | templates`. The binary's
//! edge: errors become `anyhow` here and are printed with their causes; exit codes say success.

use crate::app::Application;
use crate::classify::{Category, Correction, Priority, Severity};
use crate::clock::Clock;
use crate::clock::{SharedClock, SystemClock};
use crate::config::{LogFormat, Settings};
use crate::ingest::Analyzer;
use crate::model::EmailAddress;
use crate::model::TicketRef;
use crate::store::{Store, TicketOrder};
use crate::templates::Templates;
use crate::thread::ReplySigner;
use anyhow::Context;
use clap::{Parser, Subcommand};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

#[derive(Debug, Parser)]
#[command(
    name = "supportd",
    version,
    about = "Email-channel customer-support daemon"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon: fetch mail, keep tickets, send acknowledgements.
    Run {
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Check config, templates, database, every IMAP mailbox and the SMTP server; exit non-zero on
    /// the first kind of failure, naming the key or server.
    Check {
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Create or upgrade the database schema.
    Migrate {
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Run the pure pipeline stages on one message from stdin and print the conclusions.
    Inspect {
        /// Print JSON (documented in the README).
        #[arg(long)]
        json: bool,
        /// Use this config's support address and reply secret (to verify signed addresses).
        #[arg(long, short)]
        config: Option<PathBuf>,
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
    /// Load and render every template with sample data (strict mode).
    Templates {
        /// Templates directory (default: the config's, or ./templates).
        #[arg(long)]
        dir: Option<PathBuf>,
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub enum TicketsCommand {
    /// The agents' queue: open tickets, most pressing first (urgent, high, normal, low; then
    /// oldest). `--all`: every ticket, newest first.
    List {
        #[arg(long, short)]
        config: PathBuf,
        #[arg(long)]
        all: bool,
        #[arg(long)]
        json: bool,
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
}

#[derive(Debug, Subcommand)]
pub enum TicketCommand {
    /// Correct a ticket's classification (recorded, so the rules can be tuned).
    Correct {
        /// The ticket, e.g. T-000123.
        ticket: String,
        #[arg(long, short)]
        config: PathBuf,
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

fn init_logging(s: &Settings) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(&s.log.filter));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match s.log.format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Plain => builder.try_init(),
    };
}

fn load(path: &Path) -> anyhow::Result<Settings> {
    Ok(Settings::load(path)?)
}

pub async fn execute(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Run { config } => {
            let settings = load(&config)?;
            init_logging(&settings);
            let clock: SharedClock = Arc::new(SystemClock);
            let app = Application::build(settings, clock).await?;
            let cancel = CancellationToken::new();
            spawn_signal_handlers(cancel.clone(), &app)?;
            app.run_until_stopped(cancel).await;
            Ok(ExitCode::SUCCESS)
        }
        Command::Migrate { config } => {
            let settings = load(&config)?;
            let store = Store::connect(&settings.database_url(), 1).await?;
            store.migrate().await?;
            println!("database is up to date");
            Ok(ExitCode::SUCCESS)
        }
        Command::Check { config } => check(&config).await,
        Command::Inspect { json, config } => {
            let analyzer = match config {
                Some(path) => Analyzer::from_settings(&load(&path)?),
                None => Analyzer::new(
                    EmailAddress::parse("support@example.invalid").context("built-in address")?,
                    "example.invalid".into(),
                    ReplySigner::new(Default::default(), Vec::new()),
                    Arc::new(crate::classify::Classifier::builtin()),
                ),
            };
            let mut raw = Vec::new();
            std::io::stdin()
                .read_to_end(&mut raw)
                .context("cannot read the message from stdin")?;
            let a = analyzer.analyze(&raw);
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&crate::inspect::to_json(&a))?
                );
            } else {
                print!("{}", crate::inspect::to_text(&a));
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Tickets {
            command:
                TicketsCommand::List {
                    config,
                    all,
                    json,
                    limit,
                },
        } => {
            let settings = load(&config)?;
            let store = Store::connect(&settings.database_url(), 1).await?;
            let order = if all {
                TicketOrder::Newest
            } else {
                TicketOrder::Queue
            };
            let rows = store.list_tickets(order, limit).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&rows)?);
            } else {
                println!(
                    "{:<10} {:<8} {:<8} {:<13} {:<32} {:<8} subject",
                    "ticket", "status", "priority", "category", "requester", "lang"
                );
                for r in rows {
                    println!(
                        "{:<10} {:<8} {:<8} {:<13} {:<32} {:<8} {}",
                        r.ticket,
                        r.status,
                        r.class.priority.as_str(),
                        r.class.category.as_str(),
                        r.requester,
                        r.language,
                        r.subject
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Ticket {
            command:
                TicketCommand::Correct {
                    ticket,
                    config,
                    category,
                    severity,
                    urgent,
                    priority,
                    by,
                },
        } => {
            let t = TicketRef::parse(&ticket)
                .with_context(|| format!("not a ticket number: {ticket:?} (e.g. T-000123)"))?;
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
            let settings = load(&config)?;
            let store = Store::connect(&settings.database_url(), 1).await?;
            let mut tx = store.begin().await?;
            let changes = store
                .correct_classification(&mut tx, t, &correction, &by, SystemClock.now())
                .await?
                .with_context(|| format!("no ticket {t}"))?;
            tx.commit().await?;
            if changes.is_empty() {
                println!("{t}: already so; nothing changed");
            }
            for c in changes {
                println!(
                    "{t}: {} {} -> {}",
                    c.field,
                    c.old.as_deref().unwrap_or("-"),
                    c.new
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Templates { dir, config } => {
            let dir = match (dir, config) {
                (Some(d), _) => d,
                (None, Some(c)) => load(&c)?.service.templates_dir,
                (None, None) => PathBuf::from("templates"),
            };
            let t = Templates::load(&dir)?;
            for (key, a) in t.approvals() {
                println!(
                    "OK   {key:<20} v{} approved by {} on {}",
                    a.version, a.approved_by, a.approved_at
                );
            }
            Ok(ExitCode::SUCCESS)
        }
    }
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

fn spawn_signal_handlers(cancel: CancellationToken, app: &Application) -> anyhow::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?;
    let mut int = signal(SignalKind::interrupt()).context("cannot listen for SIGINT")?;
    let mut hup = signal(SignalKind::hangup()).context("cannot listen for SIGHUP")?;
    let pipeline_dir = app.settings.service.templates_dir.clone();
    let pipeline = app.pipeline.clone();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = term.recv() => { tracing::info!("SIGTERM: stopping"); cancel.cancel(); break; }
                _ = int.recv() => { tracing::info!("SIGINT: stopping"); cancel.cancel(); break; }
                _ = hup.recv() => {
                    match Templates::load(&pipeline_dir) {
                        Ok(t) => { pipeline.set_templates(t); tracing::info!("SIGHUP: templates reloaded"); }
                        Err(e) => tracing::error!(error = %e, "SIGHUP: reload rejected; keeping the templates in use"),
                    }
                }
            }
        }
    });
    Ok(())
}

async fn check(config: &Path) -> anyhow::Result<ExitCode> {
    let mut failed = false;
    let mut report = |ok: bool, what: String| {
        println!("{} {what}", if ok { "OK  " } else { "FAIL" });
        failed |= !ok;
    };
    let settings = match Settings::load(config) {
        Ok(s) => {
            report(true, format!("config {}", config.display()));
            s
        }
        Err(e) => {
            report(false, e.to_string());
            return Ok(ExitCode::FAILURE);
        }
    };
    match Templates::load(&settings.service.templates_dir) {
        Ok(t) => report(
            true,
            format!("templates: {} approved, all render", t.approvals().len()),
        ),
        Err(e) => report(false, e.to_string()),
    }
    match Store::connect(&settings.database_url(), 1).await {
        Ok(s) => {
            report(
                true,
                format!(
                    "database {}",
                    crate::store::redact_url(&settings.database_url())
                ),
            );
            s.close().await;
        }
        Err(e) => report(false, e.to_string()),
    }
    for (name, mb) in &settings.mailboxes {
        match crate::fetch::connect(mb).await {
            Ok(mut conn) => match conn.select(&mb.folder).await {
                Ok(sel) => {
                    report(true, format!("mailboxes.{name}: IMAP {}:{} login as {}, folder {:?} (UIDVALIDITY {})", mb.host, mb.port, mb.user, mb.folder, sel.uidvalidity));
                    conn.logout().await;
                }
                Err(e) => report(false, format!("mailboxes.{name}: {e}")),
            },
            Err(e) => report(false, format!("mailboxes.{name}: {e}")),
        }
    }
    match crate::send::mailer(&settings.smtp) {
        Ok(m) => match crate::send::check(&m).await {
            Ok(()) => report(
                true,
                format!(
                    "smtp: {}:{} answers EHLO",
                    settings.smtp.host, settings.smtp.port
                ),
            ),
            Err(e) => report(
                false,
                format!("smtp: {}:{}: {e}", settings.smtp.host, settings.smtp.port),
            ),
        },
        Err(e) => report(false, format!("smtp: {e}")),
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
