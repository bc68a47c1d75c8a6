//! Customers' personal data through the real rig (issue #22): a customer with tickets, a
//! follow-up, an attachment, a survey, cards and archived originals → `customer show`,
//! `customer export`, `customer erase` → nothing of theirs in any column of any table or in any
//! folder of the mailbox over IMAP; the month's report unchanged; another customer untouched.
//! Retention on a fake clock. SQLite and PostgreSQL.

use crate::helpers::*;
use supportd::clock::Clock;
use supportd::store::Store;

/// Every value of every supportd table that contains `needle` (text columns, and bytes).
async fn found_in_database(store: &Store, needle: &str) -> Vec<String> {
    use sqlx::{Column, Row, ValueRef};
    let mut hits = Vec::new();
    for (table, _) in supportd_tables() {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT * FROM {table}")))
            .fetch_all(store.pool())
            .await
            .expect("select");
        for r in rows {
            for (i, c) in r.columns().iter().enumerate() {
                if r.try_get_raw(i).map(|v| v.is_null()).unwrap_or(true) {
                    continue;
                }
                let text = r
                    .try_get::<String, _>(i)
                    .ok()
                    .or_else(|| {
                        r.try_get::<Vec<u8>, _>(i)
                            .ok()
                            .map(|b| String::from_utf8_lossy(&b).into_owned())
                    })
                    .unwrap_or_default();
                if text.contains(needle) {
                    hits.push(format!("{table}.{}", c.name()));
                }
            }
        }
    }
    hits.sort();
    hits.dedup();
    hits
}

/// Every folder of the support mailbox whose mails contain `needle`.
async fn found_in_mailbox(support: &str, needle: &str) -> Vec<String> {
    let mut hits = Vec::new();
    for folder in [
        "INBOX",
        "Archive",
        "Support/Open",
        "Support/Waiting",
        "Support/Escalated",
        "Support/Solved",
        "Sent",
    ] {
        for m in read_folder(support, folder).await {
            let text = String::from_utf8_lossy(&m);
            let parsed = supportd::inbound::parse::parse(&m);
            if text.contains(needle)
                || parsed.text.contains(needle)
                || parsed.subject.contains(needle)
            {
                hits.push(folder.to_string());
            }
        }
    }
    hits.dedup();
    hits
}

fn with_photo(from: &str, to: &str, subject: &str, body: &str, id: &str) -> Vec<u8> {
    use base64::Engine;
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    format!(
        "From: {from}\r\nTo: {to}\r\nSubject: =?UTF-8?B?{s}?=\r\nMessage-ID: <{id}>\r\nDate: Mon, 30 Nov 2026 10:00:00 +0800\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n{t}\r\n--b\r\nContent-Type: image/png; name=\"photo-qzvk.png\"\r\nContent-Disposition: attachment; filename=\"photo-qzvk.png\"\r\nContent-Transfer-Encoding: base64\r\n\r\n{p}\r\n--b--\r\n",
        s = b64(subject.as_bytes()),
        t = b64(body.as_bytes()),
        p = b64(b"\x89PNG\r\n\x1a\n photo bytes qzvkphoto"),
    )
    .into_bytes()
}

async fn erasure_end_to_end(db: Db) {
    let agent = address(&unique("lina"));
    let mut app = spawn_app(AppOptions {
        db,
        after: "move",
        extra: format!("[[agents]]\nname = \"李娜\"\naddress = \"{agent}\"\n[queue]\n"),
        ..Default::default()
    })
    .await;
    // The customer to erase, and one who stays.
    let alice = address(&unique("alice"));
    let bob = address(&unique("bob"));
    let first = format!("{}@alice.example", unique("m"));
    send_raw(
        &alice,
        &app.support,
        &with_photo(
            &alice,
            &app.support,
            "货物破损 qzvkwordA",
            "您好，收到的货物破损了，照片见附件。我的电话 13800000000，暗号 qzvkwordB。",
            &first,
        ),
    )
    .await;
    let ack = supportd::inbound::parse::parse(&wait_for_mail(&alice, 1, 60).await[0]);
    let t = supportd::inbound::thread::subject_tag(&ack.subject).expect("tag");
    let follow = reply_mail(
        &alice,
        &app.support,
        &ack,
        "补充：订单号 qzvkwordC。",
        &[&first],
    );
    send_raw(&alice, &app.support, &follow).await;
    app.wait_until(60, "follow-up stored", |s| async move {
        s.count("inbound").await.unwrap_or(0) >= 2
    })
    .await;
    // The agent answers from the card (a copy goes to Sent) and solves it (the survey).
    let card = card_of(&app, t).await;
    let to = card.reply_to.as_ref().expect("card Reply-To").to_string();
    let reply = format!(
        "From: {agent}\r\nTo: {to}\r\nSubject: Re: {subject}\r\nIn-Reply-To: <{card_id}>\r\nMessage-ID: <{id}@example.test>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n#resolve\n\n您好，已为您办理换货。\r\n",
        subject = {
            use base64::Engine;
            format!(
                "=?UTF-8?B?{}?=",
                base64::engine::general_purpose::STANDARD.encode(&card.subject)
            )
        },
        card_id = card.message_id,
        id = unique("r"),
    );
    send_raw(&agent, &to, reply.as_bytes()).await;
    let mails = wait_for_mail(&alice, 3, 60).await;
    let survey = mails
        .iter()
        .map(|m| supportd::inbound::parse::parse(m))
        .find(|m| m.text.contains("5 4 5 5") || m.subject.contains("评价"))
        .expect("the survey");
    let answer = reply_mail(&alice, &app.support, &survey, "5 5 5 5", &[]);
    send_raw(&alice, &app.support, &answer).await;
    app.wait_until(60, "survey stored", |s| async move {
        s.count("surveys").await.unwrap_or(0) == 1
    })
    .await;
    let raw = customer_mail(
        &bob,
        &app.support,
        "发票 qzvkbob",
        "请开发票，qzvkbobword。",
        &format!("{}@bob.example", unique("b")),
        "",
    );
    send_raw(&bob, &app.support, &raw).await;
    wait_for_mail(&bob, 1, 60).await;
    // Cards and originals are in the mailbox before the erasure.
    app.wait_until(60, "cards appended", |s| async move {
        sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM imap_jobs WHERE status = 'pending'")
            .fetch_one(s.pool())
            .await
            .unwrap_or(1)
            == 0
    })
    .await;
    assert!(!found_in_mailbox(&app.support, "qzvkwordB").await.is_empty());
    let (from, to) = (
        app.clock.now() - 40 * 86_400_000,
        app.clock.now() + 86_400_000,
    );
    // The same "now" before and after: the figures, not the time they were taken, are compared.
    let report_now = app.clock.now();
    let report_before = serde_json::to_value(
        app.store
            .month_rows(from, to, report_now)
            .await
            .expect("report"),
    )
    .expect("json");

    // show and export.
    let shown = strict_json(&supportd_cli(&app, &["customer", "show", &alice, "--json"]));
    assert_eq!(
        shown["tickets"].as_array().map(|a| a.len()),
        Some(1),
        "{shown}"
    );
    assert!(
        shown["messages"].as_array().is_some_and(|m| m.len() >= 5),
        "{shown}"
    );
    assert_eq!(shown["surveys"], 1);
    // Our own mails' text is derived from their raw bytes (it is not stored twice).
    let sent: Vec<&serde_json::Value> = shown["messages"]
        .as_array()
        .map(|m| m.iter().filter(|x| x["direction"] == "out").collect())
        .unwrap_or_default();
    assert!(
        !sent.is_empty()
            && sent
                .iter()
                .all(|x| x["text"].as_str().is_some_and(|t| !t.trim().is_empty())),
        "{shown}"
    );
    let export = app.config.with_file_name("alice-export.json");
    supportd_cli(
        &app,
        &[
            "customer",
            "export",
            &alice,
            "-o",
            export.to_str().expect("path"),
        ],
    );
    let archive: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&export).expect("export")).expect("json");
    let archive_text = archive.to_string();
    assert!(archive_text.contains("qzvkwordC") && archive_text.contains("photo-qzvk.png"));
    assert!(archive["mails"].as_array().is_some_and(|m| m
        .iter()
        .any(|x| x["raw_base64"].as_str().is_some_and(|r| !r.is_empty()))));

    // A dry run changes nothing; the erasure removes everything; a second erasure finds nothing.
    let dry = strict_json(&supportd_cli(
        &app,
        &[
            "customer",
            "erase",
            &alice,
            "--by",
            "dpo@example.test",
            "--reason",
            "GDPR art. 17 request",
            "--dry-run",
            "--json",
        ],
    ));
    assert_eq!(dry["tickets_requested"], 1, "{dry}");
    assert!(!found_in_database(&app.store, &alice).await.is_empty());
    let done = strict_json(&supportd_cli(
        &app,
        &[
            "customer",
            "erase",
            &alice,
            "--by",
            "dpo@example.test",
            "--reason",
            "GDPR art. 17 request",
            "--json",
        ],
    ));
    assert_eq!(done["tickets_requested"], 1, "{done}");
    app.imap_wake.notify_one();
    for needle in [
        alice.as_str(),
        "qzvkwordA",
        "qzvkwordB",
        "qzvkwordC",
        "13800000000",
        "qzvkphoto",
        "photo-qzvk",
    ] {
        assert_eq!(
            found_in_database(&app.store, needle).await,
            Vec::<String>::new(),
            "{needle} left in the database"
        );
    }
    let again = strict_json(&supportd_cli(
        &app,
        &[
            "customer",
            "erase",
            &alice,
            "--by",
            "dpo@example.test",
            "--reason",
            "again",
            "--json",
        ],
    ));
    assert_eq!(
        (
            again["tickets_requested"].as_u64(),
            again["messages"].as_u64()
        ),
        (Some(0), Some(0)),
        "{again}"
    );
    // The audit trail says who and why, not what.
    let events = app.events(t).await;
    assert!(
        events.contains(&"customer_erased".to_string()),
        "{events:?}"
    );
    // The IMAP copies go (the daemon's shared-mailbox worker).
    app.imap_wake.notify_one();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(90);
    loop {
        let left = found_in_mailbox(&app.support, "qzvkword").await;
        let alice_left = found_in_mailbox(&app.support, &alice).await;
        if left.is_empty() && alice_left.is_empty() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "left in the mailbox: {left:?} {alice_left:?}"
        );
        app.imap_wake.notify_one();
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    // Reports do not change; the other customer is untouched.
    let report_after = serde_json::to_value(
        app.store
            .month_rows(from, to, report_now)
            .await
            .expect("report"),
    )
    .expect("json");
    assert_eq!(report_before, report_after);
    assert!(!found_in_database(&app.store, "qzvkbobword")
        .await
        .is_empty());
    assert!(!found_in_mailbox(&app.support, "qzvkbobword")
        .await
        .is_empty());
    assert!(!found_in_database(&app.store, &bob).await.is_empty());
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customer_s_data_is_shown_exported_and_erased_on_sqlite() {
    erasure_end_to_end(Db::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customer_s_data_is_shown_exported_and_erased_on_postgresql() {
    erasure_end_to_end(Db::Postgres).await;
}

/// Retention on a fake clock: a ticket solved longer ago than the setting is erased, a newer
/// one is not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_erases_tickets_solved_long_ago() {
    use std::sync::Arc;
    use supportd::clock::{FakeClock, SystemClock};
    let clock = Arc::new(FakeClock::new(SystemClock.now()));
    let mut app = spawn_app(AppOptions {
        clock: Some(clock.clone()),
        extra: "[sla]\nsurvey = false\n[retention]\nerase_solved_after_days = 30\n".into(),
        ..Default::default()
    })
    .await;
    let (old_customer, _) = app
        .mail_from_new_customer("Old qzvkold", "old qzvkoldword")
        .await;
    let ack = supportd::inbound::parse::parse(&wait_for_mail(&old_customer, 1, 60).await[0]);
    let old = supportd::inbound::thread::subject_tag(&ack.subject).expect("tag");
    app.solve(old).await;
    clock.advance(std::time::Duration::from_secs(31 * 86_400));
    let (new_customer, _) = app
        .mail_from_new_customer("New qzvknew", "new qzvknewword")
        .await;
    let ack = supportd::inbound::parse::parse(&wait_for_mail(&new_customer, 1, 60).await[0]);
    let new = supportd::inbound::thread::subject_tag(&ack.subject).expect("tag");
    app.solve(new).await;
    let worker = supportd::workers::retention::RetentionWorker {
        store: app.store.clone(),
        clock: clock.clone(),
        after_days: 30,
        wake: Arc::new(tokio::sync::Notify::new()),
        imap_wake: app.imap_wake.clone(),
        health: Arc::new(supportd::ops::health::Health::default()),
    };
    // The daemon's own retention worker may have been first; either way the old one is gone.
    let _ = worker.run_once().await.expect("retention");
    assert_eq!(
        found_in_database(&app.store, "qzvkoldword").await,
        Vec::<String>::new()
    );
    assert_eq!(
        found_in_database(&app.store, &old_customer).await,
        Vec::<String>::new()
    );
    assert!(!found_in_database(&app.store, "qzvknewword")
        .await
        .is_empty());
    assert_eq!(
        worker.run_once().await.expect("retention"),
        0,
        "nothing more is due"
    );
    app.stop().await;
}
