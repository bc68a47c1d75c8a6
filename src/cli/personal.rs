//! `supportd customer show|export|erase`: a customer's personal data (see `store::personal`).

use super::{Cli, CustomerCommand};
use crate::clock::{Clock, SystemClock};
use crate::domain::EmailAddress;
use anyhow::Context;
use base64::Engine;
use std::process::ExitCode;

/// Our own mails' text is not stored apart from their raw bytes (see `store::writer`): it is
/// derived here, by the parser that reads every stored mail, as `ticket show` does.
async fn with_derived_text(
    store: &crate::store::Store,
    d: &mut crate::store::personal::CustomerData,
) -> anyhow::Result<()> {
    for m in d
        .messages
        .iter_mut()
        .filter(|m| m.direction == "out" && m.text.is_empty())
    {
        m.text = crate::inbound::parse::parse(&store.message_raw(m.row).await?).text;
    }
    Ok(())
}

pub(super) async fn run(cli: &Cli, command: &CustomerCommand) -> anyhow::Result<ExitCode> {
    let address =
        |a: &str| EmailAddress::parse(a).with_context(|| format!("{a:?} is not a mail address"));
    match command {
        CustomerCommand::Show { address: a, json } => {
            let a = address(a)?;
            let (settings, store) = cli.store().await?;
            let mut d = store.customer_data(&a).await?;
            if *json {
                with_derived_text(&store, &mut d).await?;
            }
            let lang = settings.service.agent_language;
            if *json {
                println!("{}", serde_json::to_string_pretty(&d)?);
            } else {
                println!(
                    "{}: {} ticket(s), {} mail(s), {} event(s), {} survey(s), {} outgoing mail(s), {} shared-mailbox card job(s)",
                    d.address,
                    d.tickets.len(),
                    d.messages.len(),
                    d.events,
                    d.surveys,
                    d.outgoing,
                    d.shared_mailbox_jobs
                );
                for t in &d.tickets {
                    println!(
                        "  {}  {:<11} {}  {}",
                        t.ticket,
                        t.role,
                        crate::outbound::labels::name(lang, &t.status),
                        t.subject
                    );
                }
                for m in &d.messages {
                    println!(
                        "  {} {:<3} {:<10} {}",
                        m.ticket.as_deref().unwrap_or("-"),
                        m.direction,
                        m.message_id,
                        m.subject
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        CustomerCommand::Export { address: a, output } => {
            let a = address(a)?;
            let (_, store) = cli.store().await?;
            let mut d = store.customer_data(&a).await?;
            with_derived_text(&store, &mut d).await?;
            let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
            let mut mails = Vec::new();
            for m in &d.messages {
                let raw = store.message_raw(m.row).await?;
                let parsed = crate::inbound::parse::parse(&raw);
                let files: Vec<serde_json::Value> = parsed
                    .attachments
                    .iter()
                    .map(|f| {
                        serde_json::json!({
                            "name": f.name, "content_type": f.content_type, "size": f.size,
                            "base64": b64(&f.bytes),
                        })
                    })
                    .collect();
                mails.push(serde_json::json!({
                    "mail": m,
                    "raw_base64": b64(&raw),
                    "attachments": files,
                }));
            }
            let archive = serde_json::json!({
                "format": "supportd customer export 1",
                "exported_at": SystemClock.now(),
                "address": d.address,
                "tickets": d.tickets,
                "mails": mails,
                "counts": {
                    "events": d.events, "surveys": d.surveys, "outgoing": d.outgoing,
                    "shared_mailbox_jobs": d.shared_mailbox_jobs,
                },
            });
            std::fs::write(output, serde_json::to_vec_pretty(&archive)?)
                .with_context(|| format!("cannot write {}", output.display()))?;
            println!(
                "{}: {} ticket(s), {} mail(s) written to {}",
                d.address,
                d.tickets.len(),
                d.messages.len(),
                output.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        CustomerCommand::Erase {
            address: a,
            by,
            reason,
            dry_run,
            json,
        } => {
            let a = address(a)?;
            anyhow::ensure!(
                !by.trim().is_empty(),
                "--by: who erases (for the audit event)"
            );
            anyhow::ensure!(
                !reason.trim().is_empty(),
                "--reason: why (for the audit event)"
            );
            let (_, store) = cli.store().await?;
            let e = store
                .erase_customer(&a, by, reason, SystemClock.now(), *dry_run)
                .await?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&e)?);
            } else {
                println!(
                    "{}{}: {} ticket(s) requested, {} taken part in, {} mail(s), {} event(s), {} outgoing mail(s), {} IMAP deletion(s) {}",
                    if *dry_run { "dry run, would erase " } else { "erased " },
                    a,
                    e.tickets_requested,
                    e.tickets_taken_part_in,
                    e.messages,
                    e.events,
                    e.outgoing,
                    e.imap_deletions,
                    if *dry_run { "" } else { "queued (the daemon does them)" }
                );
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
