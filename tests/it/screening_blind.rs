//! Machine mail vs people's mail on the blind set in `tests/fixtures/screening_blind` (141 mails
//! written by a helper who never saw the code: 91 machine — auto-replies in many languages and
//! vendors' forms, other help desks' receipts, bounces, read receipts, calendar replies, bulk —
//! and 50 people, many of them look-alikes). Each mail goes through the real intake (analysis,
//! context, decision, commit) on a fresh SQLite database; where the mail answers our
//! acknowledgement (`<OUR-ACK-ID>`), the ticket and its acknowledgement exist first, made by the
//! same correspondent. Judged from what was committed:
//! - a machine mail is handled right if it got no acknowledgement, opened no ticket and was not
//!   filed as the customer's own follow-up;
//! - a person's mail is handled right if it was filed as a person's mail (a ticket with an
//!   acknowledgement, or their follow-up on the ticket it answers).
//!
//! `cargo test --test it screening_blind -- --nocapture` prints every miss and the figures.

use crate::helpers::*;
use supportd::app::context::Desk;
use supportd::inbound::intake::{self, Batch};
use supportd::store::Store;

const NOW: i64 = 1_795_000_000_000;
const MAILBOX: &str = "support/INBOX";

#[derive(serde::Deserialize)]
struct Labels {
    mail: Vec<Label>,
}

#[derive(serde::Deserialize)]
struct Label {
    file: String,
    label: String,
    kind: String,
    client: String,
}

/// What the intake did with one mail.
struct Outcome {
    /// The mail answers our acknowledgement (it had `<OUR-ACK-ID>`).
    answers_us: bool,
    verdict: String,
    /// Why (the stored verdict reason), printed with every miss.
    reason: String,
    acks: i64,
    tickets: i64,
}

async fn run_one(store: &Store, desk: &Desk, support: &str, raw: &[u8]) -> Outcome {
    reset_tables(store).await;
    let mut text = String::from_utf8_lossy(raw).replace("support@example.test", support);
    let mut uid = 1;
    let answers_us = text.contains("<OUR-ACK-ID>");
    if answers_us {
        // The correspondent wrote first, and we acknowledged (a mailer daemon's "customer" is
        // someone else: then a stand-in wrote first).
        let m = supportd::inbound::parse::parse(raw);
        let who = m
            .correspondent()
            .map(|a| a.to_string())
            .unwrap_or_else(|| "kehu@qq.example".into());
        let mut ack: Option<String> = None;
        for who in [who.as_str(), "kehu@qq.example"] {
            reset_tables(store).await;
            let first = format!(
                "From: {who}\r\nTo: {support}\r\nSubject: 订单问题\r\nMessage-ID: <first.{uid}@qq.example>\r\nDate: Mon, 23 Nov 2026 09:00:00 +0800\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n你好，我的订单还没有发货，请帮忙查一下。\r\n"
            );
            intake::store_batch(
                store,
                desk,
                Batch::inbox(MAILBOX, 1, &[(uid, first.into_bytes())]),
                NOW - 3_600_000,
            )
            .await
            .expect("first mail");
            ack = sqlx::query_scalar("SELECT message_id FROM outbox WHERE kind = 'ack'")
                .fetch_optional(store.pool())
                .await
                .expect("our acknowledgement");
            if ack.is_some() {
                break;
            }
        }
        let ack = ack.expect("an acknowledgement to answer");
        uid += 1;
        text = text.replace("<OUR-ACK-ID>", &format!("<{ack}>"));
    }
    let (acks0, tickets0) = (
        count_where(store, "SELECT COUNT(*) FROM outbox WHERE kind = 'ack'").await,
        count_where(store, "SELECT COUNT(*) FROM tickets").await,
    );
    intake::store_batch(
        store,
        desk,
        Batch::inbox(MAILBOX, 1, &[(uid, text.into_bytes())]),
        NOW,
    )
    .await
    .expect("the mail");
    let (verdict, reason): (String, String) = sqlx::query_as(
        "SELECT verdict, verdict_reason FROM messages WHERE direction = 'in' ORDER BY id DESC LIMIT 1",
    )
    .fetch_one(store.pool())
    .await
    .expect("stored");
    Outcome {
        answers_us,
        verdict,
        reason,
        acks: count_where(store, "SELECT COUNT(*) FROM outbox WHERE kind = 'ack'").await - acks0,
        tickets: count_where(store, "SELECT COUNT(*) FROM tickets").await - tickets0,
    }
}

async fn count_where(store: &Store, sql: &'static str) -> i64 {
    sqlx::query_scalar(sql)
        .fetch_one(store.pool())
        .await
        .expect("count")
}

/// The figures on one labelled set: (machine mails acknowledged, machine mails taken for a
/// person, people's mails taken for machine mail, people's fresh mails not acknowledged).
async fn measure(set: &str) -> (usize, usize, usize, usize) {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(set);
    let labels: Labels =
        toml::from_str(&std::fs::read_to_string(dir.join("labels.toml")).expect("labels"))
            .expect("labels.toml");
    let opts = AppOptions::default();
    let c = write_config(&opts).await;
    let desk = Desk::new(
        &c.settings,
        supportd::outbound::templates::Templates::load(&c.settings.service.templates_dir)
            .expect("templates"),
    );
    let store = Store::connect(&c.url, 2).await.expect("store");
    store.migrate().await.expect("migrate");

    let (mut machine, mut machine_acked, mut machine_as_person) = (0, 0, 0);
    let (mut human, mut human_missed, mut human_fresh, mut human_unacked) = (0, 0, 0, 0);
    let mut misses = Vec::new();
    for l in &labels.mail {
        // Set A names files inside mails/, set B relative to the set.
        let file = l.file.strip_prefix("mails/").unwrap_or(&l.file);
        let raw = std::fs::read(dir.join("mails").join(file)).expect("mail");
        let o = run_one(&store, &desk, &c.support, &raw).await;
        if l.label == "machine" {
            machine += 1;
            if o.acks > 0 {
                machine_acked += 1;
            }
            if o.verdict == "human" || o.tickets > 0 {
                machine_as_person += 1;
                misses.push(format!(
                    "machine as a person ({}, {}): {} {} — acks {}, new tickets {} — {}",
                    l.kind, o.verdict, l.file, l.client, o.acks, o.tickets, o.reason
                ));
            }
        } else {
            human += 1;
            if !o.answers_us {
                human_fresh += 1;
                if o.acks == 0 {
                    human_unacked += 1;
                    misses.push(format!(
                        "a person without an acknowledgement ({}): {} {} — {}",
                        o.verdict, l.file, l.client, o.reason
                    ));
                }
            }
            if o.verdict != "human" {
                human_missed += 1;
                misses.push(format!(
                    "person as machine ({}): {} {} — {}",
                    o.verdict, l.file, l.client, o.reason
                ));
            }
        }
    }
    misses.sort();
    for m in &misses {
        println!("{m}");
    }
    println!(
        "{set}: {machine} machine mails: {machine_acked} acknowledged, {machine_as_person} taken for a person; {human} people's mails: {human_missed} taken for machine mail; of the {human_fresh} that answer none of our mails, {human_unacked} not acknowledged"
    );
    (
        machine_acked,
        machine_as_person,
        human_missed,
        human_unacked,
    )
}

/// Set A (`screening_blind`, 141 mails) is a development set now: screening was tuned on its
/// misses until none was left, so it holds that level. First measurement (2026-11-30, before
/// screening was reworked): 15 acknowledged, 27 taken for a person, 5 people's mails taken for
/// machine mail.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn machine_and_human_mail_on_the_blind_set() {
    assert_eq!(
        measure("screening_blind").await,
        (0, 0, 0, 0),
        "(machine acknowledged, machine taken for a person, people taken for machine, people not acknowledged)"
    );
}

/// Set B (`screening_heldout`, 123 mails by a second blind helper, written after the rework).
/// First measurement, before any change made for it (2026-11-30): of 73 machine mails 6
/// acknowledged and 10 taken for a person; of 50 people's mails 1 taken for machine mail (a
/// person posting through Google Groups), 1 of the 31 fresh ones not acknowledged. Its misses
/// were then fixed as kinds (whole-subject responder phrases, away statements in more languages,
/// CRM mailers, X-Loop, the null reverse-path, no acknowledgement to no-reply addresses), so it
/// is a development set now and holds the level reached; set C measures unseen mail.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn machine_and_human_mail_on_the_held_out_set() {
    let (acked, as_person, missed, unacked) = measure("screening_heldout").await;
    assert!(
        acked == 0 && as_person <= 2 && missed <= 1 && unacked <= 1,
        "{:?}: (machine acknowledged, machine taken for a person, people taken for machine, people not acknowledged)",
        (acked, as_person, missed, unacked)
    );
}

/// Set C (`screening_unseen`, 124 mails by a third blind helper, written after set B's fixes and
/// never used to tune): the honest figure on unseen mail. The bound is its first measurement;
/// lower it never.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn machine_and_human_mail_on_the_unseen_set() {
    let got = measure("screening_unseen").await;
    let bound = UNSEEN_FIRST_MEASUREMENT;
    assert!(
        got.0 <= bound.0 && got.1 <= bound.1 && got.2 <= bound.2 && got.3 <= bound.3,
        "{got:?} worse than the first measurement {bound:?}"
    );
}

/// (machine acknowledged, machine taken for a person, people taken for machine, people not
/// acknowledged) on set C, measured once before any change made for it (2026-11-30): of 74
/// machine mails 4 acknowledged (a Sina auto-reply, AliExpress/Cainiao, Zabbix and Shopify
/// notifications) and 12 taken for a person; of 50 people's mails 3 taken for machine mail (a
/// Zendesk agent's comment answering our acknowledgement, a Google Group, a mail behind a
/// marketing gateway), 2 of the 30 fresh ones not acknowledged.
const UNSEEN_FIRST_MEASUREMENT: (usize, usize, usize, usize) = (4, 12, 3, 2);
