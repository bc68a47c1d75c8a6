//! The command line: `supportd run | check | migrate | inspect | tickets | templates`. The binary's
//! edge: errors become `anyhow` here and are printed with their causes; exit codes say success.

pub mod actions;
pub mod inspect;

use crate::agents::wording::Wording;
use crate::app::context::Desk;
use crate::app::{Application, Reloader};
use crate::cli::actions::Action;
use crate::clock::Clock;
use crate::clock::{SharedClock, SystemClock};
use crate::config::Settings;
use crate::domain::EmailAddress;
use crate::domain::TicketRef;
use crate::domain::{Category, Correction, Priority, Severity};
use crate::inbound::analyze::Analyzer;
use crate::inbound::thread::ReplySigner;
use crate::outbound::templates::duration_text;
use crate::outbound::templates::Templates;
use crate::store::{Report, Store, TicketDetail, TicketFilter, TicketOrder};
use crate::ticket::calendar::Calendar;
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
    /// The monthly figures: tickets by category, resolution, promises kept, breaches by category,
    /// satisfaction, first-contact resolution, classification corrections.
    Report {
        #[arg(long, short)]
        config: PathBuf,
        /// The month (`2026-11`; default: this month), in the calendar's time zone.
        #[arg(long)]
        month: Option<String>,
        #[arg(long)]
        json: bool,
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
    /// and run the forbidden-phrase check over each; exit 1 on any problem.
    Check {
        /// Templates directory (default: the config's, or ./templates).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Use this config's templates directory and forbidden phrases.
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub enum TicketsCommand {
    /// The agents' queue: open tickets, most pressing first (urgent, high, normal, low; then
    /// oldest), with their next due promise. `--all`: solved ones too, newest first.
    List {
        #[arg(long, short)]
        config: PathBuf,
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
pub enum TicketCommand {
    /// Status, owner, promises with due times and time left, events, messages.
    Show {
        /// The ticket, e.g. T-000123.
        ticket: String,
        #[arg(long, short)]
        config: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// Record that an agent's reply reached the customer (keeps the first-solution promise;
    /// the first agent to reply owns the ticket).
    ReplySent {
        ticket: String,
        #[arg(long, short)]
        config: PathBuf,
        /// The agent's address.
        #[arg(long)]
        by: String,
    },
    /// Mark the ticket solved: sends the satisfaction survey, starts a complaint's follow-up.
    Solve {
        ticket: String,
        #[arg(long, short)]
        config: PathBuf,
        #[arg(long)]
        by: String,
    },
    /// Mark the ticket complex (progress news every `sla.progress_hours`), or not (`--off`).
    Complex {
        ticket: String,
        #[arg(long, short)]
        config: PathBuf,
        #[arg(long)]
        off: bool,
        #[arg(long)]
        by: String,
    },
    /// Record the follow-up (回访) of a solved complaint and what the customer said.
    Followup {
        ticket: String,
        #[arg(long, short)]
        config: PathBuf,
        #[arg(long)]
        result: String,
        #[arg(long)]
        by: String,
    },
    /// Reassign the ticket to another agent.
    Assign {
        ticket: String,
        #[arg(long, short)]
        config: PathBuf,
        #[arg(long)]
        to: String,
        #[arg(long)]
        by: String,
    },
    /// Correct a ticket's classification (recorded, so the rules can be tuned).
    Correct {
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

fn load(path: &Path) -> anyhow::Result<Settings> {
    Ok(Settings::load(path)?)
}

pub async fn execute(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Run { config } => {
            let settings = load(&config)?;
            let log = crate::ops::logging::init(&settings.log);
            let clock: SharedClock = Arc::new(SystemClock);
            let app = Application::build(settings, clock).await?;
            let cancel = CancellationToken::new();
            spawn_signal_handlers(cancel.clone(), app.reloader(config, log))?;
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
                    Arc::new(crate::inbound::classify::Classifier::builtin()),
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
                    config,
                    all,
                    overdue,
                    due_within,
                    escalated,
                    json,
                    limit,
                },
        } => {
            let settings = load(&config)?;
            let filter = match (overdue, due_within, escalated) {
                (true, _, _) => TicketFilter::Overdue,
                (_, Some(d), _) => {
                    TicketFilter::DueWithin(parse_duration(&d).with_context(|| {
                        format!("--due-within {d:?}: expected e.g. 30m, 4h, 2d")
                    })?)
                }
                (_, _, true) => TicketFilter::Escalated,
                _ => TicketFilter::None,
            };
            let order = if all {
                TicketOrder::Newest
            } else {
                TicketOrder::Queue
            };
            let store = Store::connect(&settings.database_url(), 1).await?;
            let now = SystemClock.now();
            let rows = store.list_tickets(order, filter, now, limit).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&rows)?);
                return Ok(ExitCode::SUCCESS);
            }
            let cal = settings.sla_policy().calendar.clone();
            println!(
                "{:<9} {:<7} {:<7} {:<12} {:<24} {:<19} {:<22} subject",
                "ticket", "status", "prio", "category", "owner", "next promise", "due (left)"
            );
            for r in rows {
                let due = r
                    .next_due
                    .map(|d| format!("{} ({})", short_time(&cal, d), duration_text(d - now)))
                    .unwrap_or_default();
                let mut flags = String::new();
                if r.escalated {
                    flags.push_str("[escalated] ");
                }
                if r.complex {
                    flags.push_str("[complex] ");
                }
                println!(
                    "{:<9} {:<7} {:<7} {:<12} {:<24} {:<19} {:<22} {flags}{}",
                    r.ticket,
                    r.status,
                    r.class.priority.as_str(),
                    r.class.category.as_str(),
                    r.owner.as_deref().unwrap_or("-"),
                    r.next_promise.as_deref().unwrap_or("-"),
                    due,
                    r.subject
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Ticket {
            command:
                TicketCommand::Show {
                    ticket,
                    config,
                    json,
                },
        } => {
            let t = ticket_ref(&ticket)?;
            let settings = load(&config)?;
            let store = Store::connect(&settings.database_url(), 1).await?;
            let d = store
                .ticket_detail(t)
                .await?
                .with_context(|| format!("no ticket {t}"))?;
            if json {
                println!("{}", serde_json::to_string_pretty(&d)?);
            } else {
                print!(
                    "{}",
                    show_ticket(&d, &settings.sla_policy().calendar, SystemClock.now())
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Ticket { command } => {
            let (ticket, config, action) = ticket_action(command)?;
            let t = ticket_ref(&ticket)?;
            let settings = load(&config)?;
            let store = Store::connect(&settings.database_url(), 1).await?;
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
                println!("{t}: {}", done.events.join(", "));
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
            config,
            month,
            json,
        } => {
            let settings = load(&config)?;
            let cal = settings.sla_policy().calendar.clone();
            let now = SystemClock.now();
            let (from, to, label) = month_bounds(&cal, month.as_deref(), now)?;
            let store = Store::connect(&settings.database_url(), 1).await?;
            let r = store.report(from, to, now).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&r)?);
            } else {
                print!("{}", show_report(&r, &label));
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Templates {
            command: TemplatesCommand::Check { dir, config },
        } => {
            let settings = config.as_deref().map(load).transpose()?;
            let dir = match (dir, &settings) {
                (Some(d), _) => d,
                (None, Some(s)) => s.service.templates_dir.clone(),
                (None, None) => PathBuf::from("templates"),
            };
            let policy = match &settings {
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
    }
}

fn ticket_ref(s: &str) -> anyhow::Result<TicketRef> {
    TicketRef::parse(s).with_context(|| format!("not a ticket number: {s:?} (e.g. T-000123)"))
}

fn address(flag: &str, s: &str) -> anyhow::Result<EmailAddress> {
    EmailAddress::parse(s).with_context(|| format!("{flag} {s:?}: not a mail address"))
}

/// The action a write subcommand asks for.
fn ticket_action(c: TicketCommand) -> anyhow::Result<(String, PathBuf, Action)> {
    Ok(match c {
        TicketCommand::ReplySent { ticket, config, by } => (
            ticket,
            config,
            Action::ReplySent {
                by: address("--by", &by)?,
            },
        ),
        TicketCommand::Solve { ticket, config, by } => (ticket, config, Action::Solve { by }),
        TicketCommand::Complex {
            ticket,
            config,
            off,
            by,
        } => (ticket, config, Action::Complex { on: !off, by }),
        TicketCommand::Followup {
            ticket,
            config,
            result,
            by,
        } => (ticket, config, Action::Followup { result, by }),
        TicketCommand::Assign {
            ticket,
            config,
            to,
            by,
        } => (
            ticket,
            config,
            Action::Assign {
                to: address("--to", &to)?,
                by,
            },
        ),
        TicketCommand::Correct {
            ticket,
            config,
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
            (ticket, config, Action::Correct { correction, by })
        }
        TicketCommand::Show { .. } => anyhow::bail!("show is not an action"),
    })
}

/// `30m`, `4h`, `2d`, `90s` → milliseconds.
fn parse_duration(s: &str) -> Option<i64> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit() && c != '.')?;
    let (n, unit) = s.split_at(split);
    let n: f64 = n.parse().ok()?;
    let unit_ms = match unit.trim() {
        "s" | "sec" | "secs" => 1_000.0,
        "m" | "min" | "mins" => 60_000.0,
        "h" | "hour" | "hours" => 3_600_000.0,
        "d" | "day" | "days" => 86_400_000.0,
        _ => return None,
    };
    (n.is_finite() && n >= 0.0).then_some((n * unit_ms) as i64)
}

/// `2026-11-30 14:00` in the calendar's zone (without the zone name).
fn short_time(cal: &Calendar, at: i64) -> String {
    let full = cal.show(at);
    full.rsplit_once(' ')
        .map(|(t, _)| t.to_string())
        .unwrap_or(full)
}

fn show_ticket(d: &TicketDetail, cal: &Calendar, now: i64) -> String {
    let s = &d.summary;
    let when = |t: Option<i64>| t.map(|t| cal.show(t)).unwrap_or_else(|| "-".into());
    let mut out = format!(
        "{}  {}\n  status     {}{}{}\n  requester  {}\n  class      {} {} urgent={} vip={} priority={}\n  owner      {}\n  created    {}\n  acked      {}\n  1st reply  {}\n  solved     {}\n  replies    {} by agents, {} reopen(s)\n",
        s.ticket,
        s.subject,
        s.status,
        if s.escalated { ", escalated" } else { "" },
        if s.complex { ", complex" } else { "" },
        s.requester,
        s.class.category.as_str(),
        s.class.severity.map(|x| x.as_str()).unwrap_or(""),
        s.class.urgent,
        s.class.vip,
        s.class.priority.as_str(),
        s.owner.as_deref().unwrap_or("-"),
        cal.show(s.created_at),
        when(d.acked_at),
        when(d.first_reply_at),
        when(d.solved_at),
        d.agent_replies,
        d.reopens,
    );
    if let Some(r) = &d.followup_result {
        out.push_str(&format!("  follow-up  {r}\n"));
    }
    out.push_str("promises:\n");
    for t in &d.timers {
        let left = match (t.state.as_str(), t.met_at) {
            ("running", _) => format!("{} left", duration_text(t.due_at - now)),
            (_, Some(m)) => format!("kept at {}", cal.show(m)),
            ("breached", None) => format!("breached, {} overdue", duration_text(now - t.due_at)),
            _ => String::new(),
        };
        out.push_str(&format!(
            "  {:<19} {:<10} due {}  {}\n",
            t.promise,
            t.state,
            cal.show(t.due_at),
            left
        ));
    }
    out.push_str("events:\n");
    for (at, kind, detail) in &d.events {
        out.push_str(&format!("  {}  {kind:<24} {detail}\n", cal.show(*at)));
    }
    out.push_str("messages:\n");
    for (at, dir, from, subject, verdict) in &d.messages {
        out.push_str(&format!(
            "  {}  {dir:<3} {:<30} {verdict:<10} {subject}\n",
            cal.show(*at),
            from.as_deref().unwrap_or("-")
        ));
    }
    out
}

/// `[from, to)` of a month (`2026-11`, default the current one) in the calendar's zone.
fn month_bounds(
    cal: &Calendar,
    month: Option<&str>,
    now: i64,
) -> anyhow::Result<(i64, i64, String)> {
    use chrono::{Datelike, NaiveDate, TimeZone};
    let tz = cal.timezone();
    let (y, m) = match month {
        Some(s) => {
            let d = NaiveDate::parse_from_str(&format!("{s}-01"), "%Y-%m-%d")
                .with_context(|| format!("--month {s:?}: expected YYYY-MM"))?;
            (d.year(), d.month())
        }
        None => {
            let d = chrono::DateTime::from_timestamp_millis(now)
                .context("clock out of range")?
                .with_timezone(&tz);
            (d.year(), d.month())
        }
    };
    let start = |y: i32, m: u32| -> anyhow::Result<i64> {
        let d = NaiveDate::from_ymd_opt(y, m, 1).context("bad month")?;
        Ok(tz
            .from_local_datetime(&d.and_hms_opt(0, 0, 0).context("midnight")?)
            .earliest()
            .context("no such local time")?
            .timestamp_millis())
    };
    let (ny, nm) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
    Ok((
        start(y, m)?,
        start(ny, nm)?,
        format!("{y}-{m:02} ({})", tz.name()),
    ))
}

fn show_report(r: &Report, label: &str) -> String {
    let pct = |a: i64, b: i64| {
        if b == 0 {
            "  n/a".to_string()
        } else {
            format!("{:5.1} %", a as f64 * 100.0 / b as f64)
        }
    };
    let mut out = format!(
        "supportd report {label}\n\ntickets created  {}\n",
        r.tickets_created
    );
    for (c, n) in &r.by_category {
        out.push_str(&format!("  {c:<14} {n}\n"));
    }
    out.push_str(&format!(
        "\nresolution                {}  ({} of {} solved; target ≥ 95 %)\n",
        pct(r.solved, r.tickets_created),
        r.solved,
        r.tickets_created
    ));
    out.push_str(&format!(
        "first-contact resolution  {}  ({} of {} solved in the month with one reply, never reopened; target ≥ 90 %)\n",
        pct(r.first_contact, r.solved_in_period),
        r.first_contact,
        r.solved_in_period
    ));
    out.push_str(&format!(
        "satisfaction              {}  ({} of {} surveys scored 4-5 overall; target ≥ 90 %)\n",
        pct(r.satisfied, r.surveys),
        r.satisfied,
        r.surveys
    ));
    out.push_str(&format!(
        "classification corrected  {}  ({} of {} tickets)\n",
        pct(r.corrected, r.tickets_created),
        r.corrected,
        r.tickets_created
    ));
    out.push_str("\npromises kept (started in the month, settled or overdue by now)\n");
    for (kind, kept, all) in &r.promises {
        out.push_str(&format!(
            "  {kind:<19} {}  ({kept} of {all})\n",
            pct(*kept, *all)
        ));
    }
    out.push_str("\nbreaches by promise and category\n");
    if r.breaches.is_empty() {
        out.push_str("  none\n");
    }
    for (kind, category, n) in &r.breaches {
        out.push_str(&format!("  {kind:<19} {category:<14} {n}\n"));
    }
    out
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

fn spawn_signal_handlers(cancel: CancellationToken, reloader: Reloader) -> anyhow::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?;
    let mut int = signal(SignalKind::interrupt()).context("cannot listen for SIGINT")?;
    let mut hup = signal(SignalKind::hangup()).context("cannot listen for SIGHUP")?;
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = term.recv() => { tracing::info!("SIGTERM: stopping"); cancel.cancel(); break; }
                _ = int.recv() => { tracing::info!("SIGINT: stopping"); cancel.cancel(); break; }
                _ = hup.recv() => {
                    crate::ops::systemd::reloading();
                    match reloader.reload() {
                        Ok(restart) => {
                            tracing::info!("SIGHUP: configuration and templates reloaded");
                            if !restart.is_empty() {
                                tracing::warn!(settings = ?restart, "SIGHUP: these changes take effect only after a restart");
                            }
                        }
                        Err(e) => tracing::error!(error = %e, "SIGHUP: reload rejected; keeping the configuration and templates in use"),
                    }
                    crate::ops::systemd::ready("processing mail");
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
        match crate::inbound::fetch::connect(mb).await {
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
    match crate::outbound::outbox::mailer(&settings.smtp) {
        Ok(m) => match crate::outbound::outbox::check(&m).await {
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
    match settings.http.address() {
        Some(a) => report(
            true,
            format!("http: /metrics, /healthz, /readyz on {a} (http.listen)"),
        ),
        None => report(true, "http: no listener (http.listen is empty)".into()),
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_people_write_them() {
        assert_eq!(parse_duration("4h"), Some(4 * 3_600_000));
        assert_eq!(parse_duration("30m"), Some(30 * 60_000));
        assert_eq!(parse_duration("2d"), Some(2 * 86_400_000));
        assert_eq!(parse_duration("1.5h"), Some(5_400_000));
        assert_eq!(parse_duration("4"), None);
        assert_eq!(parse_duration("4 weeks"), None);
    }

    #[test]
    fn a_month_is_bounded_in_the_calendar_s_zone() {
        let settings = crate::ticket::calendar::CalendarSettings {
            timezone: "Asia/Shanghai".into(),
            ..Default::default()
        };
        let cal = Calendar::new(&settings).expect("calendar");
        let (from, to, label) = month_bounds(&cal, Some("2026-12"), 0).expect("month");
        assert_eq!(cal.show(from), "2026-12-01 00:00 Asia/Shanghai");
        assert_eq!(cal.show(to), "2027-01-01 00:00 Asia/Shanghai");
        assert!(label.starts_with("2026-12"));
        assert!(month_bounds(&cal, Some("2026-13"), 0).is_err());
    }
}
