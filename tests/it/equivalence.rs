//! One decision path: the same shuffled mix of mail — new customers, follow-ups by reference and
//! by tag, strangers quoting tickets, auto-replies, bounces, agents' replies and commands,
//! survey answers, duplicates (also inside one batch), malformed mail, mail with no usable
//! sender, a colleague at the support domain, a web form with Reply-To — is stored once one mail
//! at a time and once in batches of random sizes, and the two databases must hold exactly the
//! same rows (our random Message-IDs masked): tickets, messages, participants, events, outbox,
//! timers, shared-mailbox jobs, surveys, corrections, checkpoints. Many seeds, on SQLite and
//! PostgreSQL. `EQUIVALENCE_SEEDS=2000` runs more.

use crate::helpers::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use regex::Regex;
use sqlx::{Column, Row};
use supportd::app::context::Desk;
use supportd::domain::TicketRef;
use supportd::inbound::intake::{self, Batch};
use supportd::store::Store;

const TABLES: &[(&str, &str)] = &[
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
];

const NOW: i64 = 1_795_000_000_000;
const MAILBOX: &str = "support/INBOX";

struct Script {
    mails: Vec<(u32, Vec<u8>)>,
}

/// A shuffled mix of mail, from `seed`.
fn script(seed: u64, desk: &Desk, support: &str, agent: &str) -> Script {
    let mut rng = StdRng::seed_from_u64(seed);
    let domain = support
        .rsplit_once('@')
        .map(|(_, d)| d)
        .unwrap_or("example.test");
    let customers: Vec<String> = (0..6).map(|i| format!("c{i}.s{seed}@qq.example")).collect();
    let colleague = format!("li.s{seed}@{domain}");
    let n = rng.gen_range(10..50);
    let mut mails: Vec<(u32, Vec<u8>)> = Vec::new();
    // (Message-ID, sender) of the people's mail so far, for follow-ups.
    let mut people: Vec<(String, String)> = Vec::new();
    let mut opened = 0i64;
    let subjects = [
        "退款什么时候到账",
        "发票开错了",
        "Order not delivered",
        "報告有誤",
        "建议增加夜间客服",
        "投诉：态度恶劣",
    ];
    for k in 0..n {
        let uid = k as u32 + 1;
        let id = format!("m{k}.s{seed}@mail.example");
        let pick = rng.gen_range(0..100);
        let who = customers[rng.gen_range(0..customers.len())].clone();
        let subject = subjects[rng.gen_range(0..subjects.len())];
        let raw = match pick {
            // A new customer.
            0..=24 => {
                people.push((id.clone(), who.clone()));
                opened += 1;
                customer_mail(&who, support, subject, "您好，请帮忙处理。", &id, "")
            }
            // A colleague at the support domain, from Thunderbird (Message-ID in our domain).
            25..=27 => {
                let id = format!("c{k}.s{seed}@{domain}");
                people.push((id.clone(), colleague.clone()));
                opened += 1;
                customer_mail(&colleague, support, "打印机坏了", "帮忙看看", &id, "")
            }
            // A web form: From no-reply, Reply-To the person.
            28..=30 => {
                people.push((id.clone(), who.clone()));
                opened += 1;
                customer_mail(
                    &format!("noreply.s{seed}@forms.example"),
                    support,
                    "Contact form",
                    "Please call me back.",
                    &id,
                    &format!("Reply-To: {who}\r\n"),
                )
            }
            // A follow-up by reference, from the same person or (now and then) a stranger.
            31..=45 if !people.is_empty() => {
                let (irt, sender) = people[rng.gen_range(0..people.len())].clone();
                let from = if rng.gen_bool(0.8) { sender } else { who.clone() };
                people.push((id.clone(), from.clone()));
                customer_mail(
                    &from,
                    support,
                    &format!("Re: {subject}"),
                    "还有一个问题。",
                    &id,
                    &format!("In-Reply-To: <{irt}>\r\nReferences: <{irt}>\r\n"),
                )
            }
            // A follow-up by subject tag (the ticket may not exist, or not be theirs).
            46..=53 => {
                let t = rng.gen_range(1..=opened.max(1) + 1);
                let from = people
                    .get(rng.gen_range(0..people.len().max(1)))
                    .map(|p| p.1.clone())
                    .unwrap_or(who.clone());
                let body = if rng.gen_bool(0.3) { "5 4 5 5" } else { "请尽快回复" };
                customer_mail(
                    &from,
                    support,
                    &format!("回复：[#{}] {subject}", TicketRef(t)),
                    body,
                    &id,
                    "",
                )
            }
            // An auto-reply, sometimes to an earlier mail.
            54..=61 => {
                let irt = people
                    .last()
                    .map(|p| format!("In-Reply-To: <{}>\r\n", p.0))
                    .unwrap_or_default();
                customer_mail(
                    &who,
                    support,
                    &format!("Automatic reply: {subject}"),
                    "I am out of the office.",
                    &id,
                    &format!("Auto-Submitted: auto-replied\r\n{irt}"),
                )
            }
            // A bounce of a mail that is not ours.
            62..=65 => format!(
                "Return-Path: <>\r\nFrom: MAILER-DAEMON@mx.example\r\nTo: {support}\r\nSubject: Undelivered Mail Returned to Sender\r\nMessage-ID: <{id}>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nfailed\r\n--b\r\nContent-Type: message/delivery-status\r\n\r\nFinal-Recipient: rfc822; x@y.example\r\nAction: failed\r\nStatus: 5.1.1\r\n--b\r\nContent-Type: text/rfc822-headers\r\n\r\nMessage-ID: <nobody.s{seed}@else.example>\r\n--b--\r\n"
            )
            .into_bytes(),
            // An agent's reply to a ticket's signed address, with or without commands.
            66..=79 => {
                let t = TicketRef(rng.gen_range(1..=opened.max(1)));
                // Mostly the card's agents' address; now and then the customer's (a forgery, or
                // an agent replying to the wrong mail): no authority.
                let to = if rng.gen_bool(0.85) {
                    desk.signer.agent_address(&desk.support_address, t, 0)
                } else {
                    desk.signer.reply_address(&desk.support_address, t)
                };
                let body = [
                    "您好，已为您处理，请查收。",
                    "#note\n内部备注：等财务确认",
                    "#resolve\n\n您好，问题已解决。",
                    "#pending\n\n请补充订单号。",
                    "#escalate\n\n已升级处理。",
                    "#priority urgent\n#category complaint\n\n马上处理。",
                    "我也不清楚。",
                    "#assign nobody@else.example\n\nx",
                ][rng.gen_range(0..8)];
                customer_mail(
                    &format!("李娜 <{agent}>"),
                    &to,
                    &format!("Re: [#{t}] {subject}"),
                    body,
                    &format!("a{k}.s{seed}@{domain}"),
                    "",
                )
            }
            // A duplicate of an earlier mail (the same bytes: the same Message-ID).
            80..=87 if !mails.is_empty() => mails[rng.gen_range(0..mails.len())].1.clone(),
            // Malformed, or with no usable sender at all.
            88..=90 => b"\xff\xfe garbage with no headers \x00".to_vec(),
            91..=93 => format!(
                "To: {support}\r\nSubject: no sender\r\nMessage-ID: <{id}>\r\n\r\nwho am I"
            )
            .into_bytes(),
            _ => {
                people.push((id.clone(), who.clone()));
                opened += 1;
                customer_mail(&who, support, subject, "Hello, I need help.", &id, "")
            }
        };
        mails.push((uid, raw));
    }
    Script { mails }
}

/// Every row of every table, as text, our random Message-IDs masked.
async fn dump(store: &Store, ours: &Regex) -> Vec<String> {
    let mut out = Vec::new();
    for (table, order) in TABLES {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT * FROM {table} ORDER BY {order}"
        )))
        .fetch_all(store.pool())
        .await
        .expect("dump");
        for r in rows {
            let mut line = format!("{table}:");
            for (i, c) in r.columns().iter().enumerate() {
                let v = if let Ok(v) = r.try_get::<Option<i64>, _>(i) {
                    format!("{v:?}")
                } else if let Ok(v) = r.try_get::<Option<String>, _>(i) {
                    format!("{v:?}")
                } else if let Ok(v) = r.try_get::<Option<Vec<u8>>, _>(i) {
                    // A raw mail stored compressed (zstd's magic number) is compared as the
                    // mail, so our random Message-IDs inside it can be masked.
                    let v = v.map(|b| match b.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
                        true => supportd::store::unpack_stored(&b).expect("stored zstd reads"),
                        false => b,
                    });
                    format!("{:?}", v.map(|b| String::from_utf8_lossy(&b).into_owned()))
                } else if let Ok(v) = r.try_get::<Option<f64>, _>(i) {
                    format!("{v:?}")
                } else {
                    "?".into()
                };
                line.push_str(&format!(" {}={v}", c.name()));
            }
            out.push(ours.replace_all(&line, "<ours>").into_owned());
        }
    }
    out
}

async fn equivalence(db: Db, seeds: u64) {
    let agent = address(&unique("lina"));
    let opts = AppOptions {
        db,
        extra: format!(
            "[[agents]]\nname = \"李娜\"\naddress = \"{agent}\"\n[[agents]]\nname = \"王敏\"\naddress = \"{}\"\nrole = \"supervisor\"\n[queue]\n",
            address(&unique("wangmin"))
        ),
        ..Default::default()
    };
    let a = write_config(&opts).await;
    let b = write_config(&opts).await;
    let desk = Desk::new(
        &a.settings,
        supportd::outbound::templates::Templates::load(&a.settings.service.templates_dir)
            .expect("templates"),
    );
    let (one, many) = (
        Store::connect(&a.url, 2).await.expect("store"),
        Store::connect(&b.url, 2).await.expect("store"),
    );
    one.migrate().await.expect("migrate");
    many.migrate().await.expect("migrate");
    let ours = Regex::new(&format!(
        r"[0-9a-f]{{32}}@{}",
        regex::escape(&desk.message_id_domain)
    ))
    .expect("regex");
    let mut mails = 0;
    for seed in 0..seeds {
        reset_tables(&one).await;
        reset_tables(&many).await;
        let s = script(seed, &desk, &a.support, &agent);
        mails += s.mails.len();
        for m in &s.mails {
            intake::store_batch(
                &one,
                &desk,
                Batch::inbox(MAILBOX, 1, std::slice::from_ref(m)),
                NOW,
            )
            .await
            .expect("one at a time");
        }
        let mut rng = StdRng::seed_from_u64(seed ^ 0x5eed);
        let mut rest = &s.mails[..];
        while !rest.is_empty() {
            let k = rng.gen_range(1..=rest.len().min(40));
            intake::store_batch(&many, &desk, Batch::inbox(MAILBOX, 1, &rest[..k]), NOW)
                .await
                .expect("batch");
            rest = &rest[k..];
        }
        let (x, y) = (dump(&one, &ours).await, dump(&many, &ours).await);
        if x != y {
            let first = x
                .iter()
                .zip(&y)
                .position(|(p, q)| p != q)
                .unwrap_or(x.len().min(y.len()));
            panic!(
                "seed {seed} ({db:?}): one-at-a-time and batched intake differ at row {first}\n  one:   {}\n  batch: {}\n({} vs {} rows)",
                x.get(first).map(String::as_str).unwrap_or("(none)"),
                y.get(first).map(String::as_str).unwrap_or("(none)"),
                x.len(),
                y.len()
            );
        }
    }
    println!("{db:?}: {seeds} seeds, {mails} mails: identical one at a time and in batches");
}

fn seeds() -> u64 {
    std::env::var("EQUIVALENCE_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(200)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_mail_at_a_time_and_batches_store_the_same_on_sqlite() {
    equivalence(Db::Sqlite, seeds()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_mail_at_a_time_and_batches_store_the_same_on_postgresql() {
    equivalence(Db::Postgres, seeds()).await;
}
