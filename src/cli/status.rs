//! `supportd status`: what ops look at during an incident — which daemon (host, pid, since)
//! fetches which mailbox, how fresh each lease is, the daemons alive, the outbox and the next
//! promise due. Read-only.

use crate::clock::{Clock, SystemClock};
use crate::config::Settings;
use crate::store::Store;
use std::process::ExitCode;

fn ago(ms: i64) -> String {
    let s = ms.max(0) / 1000;
    match s {
        0..=119 => format!("{s} s"),
        120..=7199 => format!("{} min", s / 60),
        _ => format!("{} h", s / 3600),
    }
}

/// `host/pid` of a holder id (`host/boot/pid/start`).
fn short(holder: &str) -> String {
    let parts: Vec<&str> = holder.rsplitn(4, '/').collect();
    match parts.as_slice() {
        [_, pid, _, host] => format!("{host} pid {pid}"),
        _ => holder.to_string(),
    }
}

pub(super) async fn run(
    settings: &Settings,
    store: &Store,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let now = SystemClock.now();
    let cal = settings.sla_policy().calendar.clone();
    let ttl = i64::from(settings.database.lease_secs) * 1000;
    let leases = store.leases().await?;
    let daemons = store.daemons().await?;
    let outbox = store.outbox_state(now).await?;
    let next_timer = store.next_promise_due().await?;
    // Every mailbox loop the daemons run: each configured mailbox, and the queue's Sent folder
    // when it is watched.
    let mut keys: Vec<String> = settings
        .mailboxes
        .iter()
        .map(|(name, mb)| crate::inbound::mailbox::checkpoint_key(name, &mb.folder))
        .collect();
    if let Some((name, q)) = settings.queue_mailbox() {
        if q.watch_sent {
            keys.push(crate::inbound::mailbox::checkpoint_key(
                &format!("{name}-sent"),
                &q.sent,
            ));
        }
    }
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "now": now,
                "backend": format!("{:?}", store.backend()).to_lowercase(),
                "lease_secs": settings.database.lease_secs,
                "daemons": daemons.iter().map(|d| serde_json::json!({
                    "holder": d.holder, "host": d.host, "pid": d.pid, "started_at": d.started_at,
                    "heartbeat_at": d.heartbeat_at, "alive": d.heartbeat_at > now - ttl,
                })).collect::<Vec<_>>(),
                "mailboxes": keys.iter().map(|k| match leases.iter().find(|l| &l.mailbox == k) {
                    Some(l) => serde_json::json!({
                        "mailbox": k, "holder": l.holder, "epoch": l.epoch,
                        "acquired_at": l.acquired_at, "renewed_at": l.renewed_at,
                        "expires_at": l.expires_at, "held": l.expires_at > now,
                    }),
                    None => serde_json::json!({"mailbox": k, "holder": null, "held": false}),
                }).collect::<Vec<_>>(),
                "outbox": {"depth": outbox.depth, "oldest_ms": outbox.oldest_ms, "oldest_due_ms": outbox.oldest_due_ms},
                "next_promise_due": next_timer,
            }))?
        );
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "database {} ({:?}); leases last {} s",
        crate::store::redact_url(&settings.database_url()),
        store.backend(),
        settings.database.lease_secs
    );
    println!("\ndaemons");
    if daemons.is_empty() {
        println!("  none has run on PostgreSQL here (SQLite runs one daemon, without leases)");
    }
    for d in &daemons {
        println!(
            "  {:<32} since {}  heartbeat {} ago  {}",
            short(&d.holder),
            cal.show(d.started_at),
            ago(now - d.heartbeat_at),
            if d.heartbeat_at > now - ttl {
                "alive"
            } else {
                "GONE"
            }
        );
    }
    println!("\nmailboxes");
    for key in &keys {
        match leases.iter().find(|l| &l.mailbox == key) {
            Some(l) if l.expires_at > now => println!(
                "  {key:<28} {:<28} epoch {:<4} since {}  renewed {} ago",
                short(&l.holder),
                l.epoch,
                cal.show(l.acquired_at),
                ago(now - l.renewed_at)
            ),
            Some(l) => println!(
                "  {key:<28} NOBODY (last {}, expired {} ago): a live daemon takes it within {} s",
                short(&l.holder),
                ago(now - l.expires_at),
                settings.database.lease_secs / 4 + 1
            ),
            None if store.backend() == crate::store::Backend::Sqlite => {
                println!("  {key:<28} SQLite: the one daemon fetches it (no leases)")
            }
            None => println!("  {key:<28} no lease yet (no daemon has started)"),
        }
    }
    println!(
        "\noutbox   {} waiting{}",
        outbox.depth,
        outbox
            .oldest_due_ms
            .map(|ms| format!(", the longest due for {}", ago(ms)))
            .unwrap_or_default()
    );
    println!(
        "timers   next promise due {}",
        next_timer
            .map(|t| cal.show(t))
            .unwrap_or_else(|| "none".into())
    );
    Ok(ExitCode::SUCCESS)
}
