//! Mail in, ticket stored, acknowledgement out — through Postfix, Dovecot and a real database.

use crate::helpers::*;
use supportd::domain::TicketRef;
use supportd::inbound::parse::parse;

async fn acknowledgement_round_trip(db: Db) {
    let mut app = spawn_app(AppOptions {
        db,
        ..Default::default()
    })
    .await;
    let customer = address(&unique("cust"));
    let msgid = format!("{}@qq.com", unique("m"));
    let raw = customer_mail(
        &format!("王先生 <{customer}>"),
        &app.support,
        "退款什么时候到账",
        "您好，我上周申请的退款还没有到账，请帮忙查一下。",
        &msgid,
        "",
    );
    send_raw(&customer, &app.support, &raw).await;

    let acks = wait_for_mail(&customer, 1, 60).await;
    assert_eq!(acks.len(), 1, "exactly one acknowledgement");
    let ack = parse(&acks[0]);
    assert_eq!(
        ack.in_reply_to.first().map(|m| m.as_str()),
        Some(msgid.as_str()),
        "threads under the customer's mail"
    );
    let tickets = app.store.tickets(10).await.expect("tickets");
    assert_eq!(tickets.len(), 1);
    let t = &tickets[0];
    assert!(
        ack.subject.contains(&format!("[#{}]", t.ticket)),
        "ticket number in subject: {}",
        ack.subject
    );
    assert!(
        ack.text.contains("48"),
        "promises a first solution within 48 h: {}",
        ack.text
    );
    assert!(
        ack.text.contains("尊敬的王先生"),
        "Chinese template, customer's name: {}",
        ack.text
    );
    assert_eq!(ack.header("auto-submitted"), Some("auto-replied"));
    assert_eq!(t.language, "zh-Hans");
    assert_eq!(t.requester, customer);
    app.wait_until(30, "outbox row marked sent", |s| async move {
        s.count("sent").await.unwrap_or(0) == 1
    })
    .await;
    let kinds = app
        .store
        .event_kinds(TicketRef::parse(&t.ticket).expect("ref"))
        .await
        .expect("events");
    assert_eq!(
        kinds,
        ["ticket_created", "classified", "ack_queued", "mail_sent"]
    );
    // `ticket show` prints the conversation: the customer's text, and the acknowledgement's
    // (stored only in its raw bytes).
    let shown = supportd_cli(&app, &["ticket", "show", &t.ticket]);
    assert!(
        shown.contains("| 您好，我上周申请的退款还没有到账") && shown.contains("| 尊敬的王先生"),
        "{shown}"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customer_mail_becomes_one_ticket_and_a_threaded_acknowledgement_on_sqlite() {
    acknowledgement_round_trip(Db::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customer_mail_becomes_one_ticket_and_a_threaded_acknowledgement_on_postgresql() {
    acknowledgement_round_trip(Db::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_mail_delivered_twice_makes_one_ticket_and_one_acknowledgement() {
    let mut app = spawn_app(AppOptions::default()).await;
    let customer = address(&unique("cust"));
    let raw = customer_mail(
        &customer,
        &app.support,
        "Login problem",
        "I cannot log in since this morning.",
        &format!("{}@gmail.com", unique("m")),
        "",
    );
    send_raw(&customer, &app.support, &raw).await;
    send_raw(&customer, &app.support, &raw).await;
    app.wait_until(60, "both copies fetched", |s| async move {
        s.count("inbound").await.unwrap_or(0) >= 1
    })
    .await;
    wait_for_mail(&customer, 1, 60).await;
    // Give the second copy time to be fetched and skipped.
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    assert_eq!(app.store.count("tickets").await.expect("count"), 1);
    assert_eq!(app.store.count("inbound").await.expect("count"), 1);
    assert_eq!(
        read_folder(&customer, "INBOX").await.len(),
        1,
        "one acknowledgement"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_in_the_middle_of_a_burst_loses_nothing_and_acknowledges_each_mail_once() {
    let mut app = spawn_app(AppOptions::default()).await;
    let customers: Vec<String> = (0..30)
        .map(|i| address(&unique(&format!("burst{i}"))))
        .collect();
    for (i, c) in customers.iter().enumerate() {
        let raw = customer_mail(
            c,
            &app.support,
            &format!("Question {i}"),
            "Where is my parcel?",
            &format!("{}@example.org", unique("m")),
            "",
        );
        send_raw(c, &app.support, &raw).await;
    }
    // Stop as soon as some, but not necessarily all, are in.
    app.wait_until(30, "first tickets", |s| async move {
        s.count("tickets").await.unwrap_or(0) >= 1
    })
    .await;
    app.stop().await;
    let before = app.store.count("tickets").await.expect("count");
    app.start().await;
    app.wait_until(60, "all 30 tickets", |s| async move {
        s.count("tickets").await.unwrap_or(0) == 30
    })
    .await;
    app.wait_until(60, "all 30 acknowledgements sent", |s| async move {
        s.count("sent").await.unwrap_or(0) == 30
    })
    .await;
    for c in &customers {
        assert_eq!(
            wait_for_mail(c, 1, 60).await.len(),
            1,
            "{c} got exactly one acknowledgement"
        );
    }
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    assert_eq!(
        app.store.count("tickets").await.expect("count"),
        30,
        "(stopped after {before})"
    );
    assert_eq!(app.store.count("outbox").await.expect("count"), 30);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gbk_encoded_mail_is_stored_with_the_right_text() {
    let mut app = spawn_app(AppOptions::default()).await;
    let customer = address(&unique("cust"));
    let msgid = format!("{}@163.com", unique("gbk"));
    let (subject, _, _) = encoding_rs::GBK.encode("发票抬头填错了");
    let (body, _, _) = encoding_rs::GBK.encode("您好，我的发票抬头填错了，能否重新开具？谢谢。");
    use base64::Engine;
    let mut raw = format!(
        "From: =?GBK?B?{}?= <{customer}>\r\nTo: {}\r\nSubject: =?GBK?B?{}?=\r\nMessage-ID: <{msgid}>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=\"gbk\"\r\nContent-Transfer-Encoding: 8bit\r\n\r\n",
        base64::engine::general_purpose::STANDARD.encode(encoding_rs::GBK.encode("李女士").0),
        app.support,
        base64::engine::general_purpose::STANDARD.encode(&subject)
    )
    .into_bytes();
    raw.extend_from_slice(&body);
    raw.extend_from_slice(b"\r\n");
    send_raw(&customer, &app.support, &raw).await;
    let acks = wait_for_mail(&customer, 1, 60).await;
    let ack = parse(&acks[0]);
    assert!(ack.subject.contains("发票抬头填错了"), "{}", ack.subject);
    assert!(ack.text.contains("尊敬的李女士"), "{}", ack.text);
    let (_, reply_text, verdict) = app
        .store
        .inbound_by_message_id(&msgid)
        .await
        .expect("query")
        .expect("stored");
    assert_eq!(reply_text, "您好，我的发票抬头填错了，能否重新开具？谢谢。");
    assert_eq!(verdict, "human");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_to_the_acknowledgement_lands_on_the_same_ticket_without_a_second_ack() {
    let mut app = spawn_app(AppOptions::default()).await;
    let (customer, first) = app
        .mail_from_new_customer("Broken charger", "My charger stopped working.")
        .await;
    let ack = parse(&wait_for_mail(&customer, 1, 60).await[0]);
    let reply = customer_mail(
        &customer,
        &app.support,
        &format!("RE: {}", ack.subject),
        "The serial number is 12345.\r\n\r\nFrom: Support\r\nSent: Monday\r\nTo: me\r\nSubject: x\r\n\r\nold text",
        &format!("{}@outlook.com", unique("m")),
        &format!("In-Reply-To: <{}>\r\nReferences: <{first}> <{}>\r\n", ack.message_id, ack.message_id),
    );
    send_raw(&customer, &app.support, &reply).await;
    app.wait_until(60, "reply stored", |s| async move {
        s.count("inbound").await.unwrap_or(0) == 2
    })
    .await;
    assert_eq!(
        app.store.count("tickets").await.expect("count"),
        1,
        "the reply joined the ticket"
    );
    let t = app.store.tickets(1).await.expect("tickets");
    assert_eq!(t[0].messages, 3, "two inbound and the acknowledgement");
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    assert_eq!(
        read_folder(&customer, "INBOX").await.len(),
        1,
        "no second acknowledgement"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_auto_reply_is_stored_but_never_acknowledged() {
    let mut app = spawn_app(AppOptions::default()).await;
    let robot = address(&unique("ooo"));
    let msgid = format!("{}@corp.example", unique("m"));
    let raw = customer_mail(
        &robot,
        &app.support,
        "Automatic reply: hello",
        "I am out of the office.",
        &msgid,
        "Auto-Submitted: auto-replied\r\n",
    );
    send_raw(&robot, &app.support, &raw).await;
    app.wait_until(60, "auto-reply stored", |s| async move {
        s.count("inbound").await.unwrap_or(0) == 1
    })
    .await;
    let (ticket, _, verdict) = app
        .store
        .inbound_by_message_id(&msgid)
        .await
        .expect("query")
        .expect("stored");
    assert_eq!(verdict, "auto_reply");
    assert_eq!(ticket, None);
    assert_eq!(app.store.count("outbox").await.expect("count"), 0);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn processed_mail_is_moved_to_the_archive_folder_and_never_deleted() {
    let mut app = spawn_app(AppOptions {
        after: "move",
        ..Default::default()
    })
    .await;
    let (customer, _) = app
        .mail_from_new_customer("Hi", "A question about invoices.")
        .await;
    wait_for_mail(&customer, 1, 60).await;
    let support = app.support.clone();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while read_folder(&support, "Archive").await.len() != 1 && std::time::Instant::now() < deadline
    {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert_eq!(
        read_folder(&support, "Archive").await.len(),
        1,
        "original archived"
    );
    assert_eq!(
        read_folder(&support, "INBOX").await.len(),
        0,
        "inbox holds only unprocessed mail"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_mail_is_stored_and_flagged_and_the_daemon_goes_on() {
    let mut app = spawn_app(AppOptions::default()).await;
    // No From, no Message-ID, a bogus MIME structure.
    let raw = b"Subject: =?x-unknown?Q?broken?=\r\nContent-Type: multipart/mixed; boundary=\"nope\"\r\n\r\n--wrong\r\n\x00\xff\xfe garbage\r\n".to_vec();
    // Straight into Dovecot: Postfix would add the missing From and Message-ID.
    lmtp_deliver(&app.support, &[raw])
        .await
        .expect("LMTP delivery");
    let (customer, _) = app
        .mail_from_new_customer("After the broken one", "Still working?")
        .await;
    wait_for_mail(&customer, 1, 60).await;
    assert_eq!(
        app.store.count("inbound").await.expect("count"),
        2,
        "the malformed mail is stored too"
    );
    assert_eq!(app.store.count("tickets").await.expect("count"), 1);
    assert_eq!(
        app.store.count("flagged").await.expect("count"),
        1,
        "flagged as malformed"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mail_the_database_refuses_is_quarantined_raw_and_the_rest_go_on() {
    let cfg = write_config(&AppOptions::default()).await;
    let (store, desk) = cfg.store_and_desk(1).await;
    // Make the database refuse one mail's data, as it might refuse a mail nobody foresaw.
    use sqlx::Connection;
    let mut conn = sqlx::SqliteConnection::connect(&cfg.url)
        .await
        .expect("sqlite");
    sqlx::raw_sql(
        "CREATE TRIGGER poison BEFORE INSERT ON messages WHEN NEW.subject = 'poison'
         BEGIN SELECT RAISE(ABORT, 'refused by a trigger'); END;",
    )
    .execute(&mut conn)
    .await
    .expect("trigger");
    conn.close().await.expect("close");
    let mail = |n: u32, subject: &str| {
        (
            n,
            customer_mail(
                &address(&unique("q")),
                &cfg.support,
                subject,
                "Hello",
                &format!("{}@example.org", unique("m")),
                "",
            ),
        )
    };
    let batch = vec![mail(1, "first"), mail(2, "poison"), mail(3, "third")];
    supportd::inbound::intake::store_batch(
        &store,
        &desk,
        supportd::inbound::intake::Batch::inbox("q/INBOX", 7, &batch),
        1_795_000_000_000,
    )
    .await
    .expect("the batch goes through");
    assert_eq!(store.count("tickets").await.expect("count"), 2);
    let (raw, _, problems, verdict) = store
        .stored_at("q/INBOX", 2)
        .await
        .expect("query")
        .expect("the refused mail is kept");
    assert_eq!(raw, batch[1].1, "raw, byte for byte");
    assert_eq!(verdict, "quarantined");
    assert!(problems
        .unwrap_or_default()
        .contains("refused by a trigger"));
    assert_eq!(store.checkpoint("q/INBOX").await.expect("cp"), Some((7, 3)));
}

/// A mail's text is stored once: where its new text is all of it, `text` is left empty and read
/// back whole from `reply_text`; where it quotes history, both are kept. Our own sent mail keeps
/// its text only in its raw bytes. Every reader sees the whole text either way.
#[tokio::test]
async fn a_mail_s_text_is_stored_once_and_read_whole() {
    let cfg = write_config(&AppOptions::default()).await;
    let (store, desk) = cfg.store_and_desk(1).await;
    let plain = "您好，我的订单 8812 还没有发货，请帮忙查一下。";
    let quoting = "Still nothing, please check again.\n\nOn Mon, 23 Nov 2026, Support wrote:\n> We are looking into order 8812.\n> Kind regards";
    let batch: Vec<(u32, Vec<u8>)> = [(1, "订单未发货", plain), (2, "order 8812", quoting)]
        .into_iter()
        .map(|(uid, subject, body)| {
            let id = format!("{}@example.org", unique("t"));
            (
                uid,
                customer_mail(&address(&unique("c")), &cfg.support, subject, body, &id, ""),
            )
        })
        .collect();
    supportd::inbound::intake::store_batch(
        &store,
        &desk,
        supportd::inbound::intake::Batch::inbox("t/INBOX", 1, &batch),
        1_795_000_000_000,
    )
    .await
    .expect("stored");
    let column = |uid: i64| {
        let pool = store.pool().clone();
        async move {
            sqlx::query_scalar::<_, String>("SELECT text FROM messages WHERE uid = $1")
                .bind(uid)
                .fetch_one(&pool)
                .await
                .expect("text")
        }
    };
    assert_eq!(
        column(1).await,
        "",
        "the new text is all of it: stored once"
    );
    assert!(column(2).await.contains("We are looking into order 8812"));
    for (uid, body) in [(1, plain), (2, "We are looking into order 8812")] {
        let (_, text, _, _) = store
            .stored_at("t/INBOX", uid)
            .await
            .expect("query")
            .expect("stored");
        assert!(text.contains(body), "uid {uid}: {text:?}");
    }
    let (sent, with_text): (i64, i64) = sqlx::query_as(
        "SELECT COUNT(*), COUNT(*) FILTER (WHERE text <> '') FROM messages WHERE direction = 'out'",
    )
    .fetch_one(store.pool())
    .await
    .expect("out");
    assert!(sent >= 1, "an acknowledgement was queued");
    assert_eq!(with_text, 0, "our own mail's text lives in its raw bytes");
}
