//! Threading through the real rig: signed reply addresses and anti-spoofing.

use crate::helpers::*;
use supportd::domain::TicketRef;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_to_the_signed_reply_address_joins_its_ticket_even_without_references() {
    let mut app = spawn_app(AppOptions::default()).await;
    let (customer, _) = app
        .mail_from_new_customer("Refund", "Please refund order 5.")
        .await;
    let ack = supportd::inbound::parse::parse(&wait_for_mail(&customer, 1, 60).await[0]);
    let reply_to = ack
        .reply_to
        .expect("the acknowledgement has a signed Reply-To")
        .to_string();
    assert!(reply_to.contains('+'), "{reply_to}");
    // A client that drops In-Reply-To and the subject tag: only the address carries the ticket.
    let raw = customer_mail(
        &customer,
        &reply_to,
        "more info",
        "The order was paid by card.",
        &format!("{}@x.example", unique("m")),
        "",
    );
    send_raw(&customer, &reply_to, &raw).await;
    app.wait_until(60, "reply stored", |s| async move {
        s.count("inbound").await.unwrap_or(0) == 2
    })
    .await;
    assert_eq!(app.store.count("tickets").await.expect("count"), 1);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stranger_quoting_someone_elses_ticket_tag_gets_a_new_linked_ticket() {
    let mut app = spawn_app(AppOptions::default()).await;
    let (customer, _) = app.mail_from_new_customer("退款", "请退款。").await;
    let ack = supportd::inbound::parse::parse(&wait_for_mail(&customer, 1, 60).await[0]);
    let tag =
        supportd::inbound::thread::subject_tag(&ack.subject).expect("tag in the acknowledgement");
    let stranger = address(&unique("stranger"));
    let raw = customer_mail(
        &stranger,
        &app.support,
        &format!("Re: [#{tag}] 退款"),
        "我也要退款。",
        &format!("{}@x.example", unique("m")),
        "",
    );
    send_raw(&stranger, &app.support, &raw).await;
    app.wait_until(60, "second ticket", |s| async move {
        s.count("tickets").await.unwrap_or(0) == 2
    })
    .await;
    let newest = app.store.tickets(1).await.expect("tickets");
    assert_eq!(newest[0].requester, stranger);
    let kinds = app
        .store
        .event_kinds(TicketRef::parse(&newest[0].ticket).expect("ref"))
        .await
        .expect("events");
    assert!(kinds.contains(&"linked".to_string()), "{kinds:?}");
    assert_eq!(
        app.store
            .event_kinds(tag)
            .await
            .expect("events")
            .iter()
            .filter(|k| *k == "customer_replied")
            .count(),
        0,
        "the other ticket is untouched"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_to_a_solved_ticket_reopens_it_and_after_the_window_opens_a_linked_one() {
    use std::sync::Arc;
    use supportd::cli::actions::{perform, Action};
    use supportd::clock::{Clock, FakeClock, SystemClock};
    let clock = Arc::new(FakeClock::new(SystemClock.now()));
    let app = spawn_app(AppOptions {
        clock: Some(clock.clone()),
        extra: "[sla]\nsurvey = false\n".into(),
        ..Default::default()
    })
    .await;
    let (customer, first) = app
        .mail_from_new_customer("Printer offline", "My printer shows offline.")
        .await;
    let ack = supportd::inbound::parse::parse(&wait_for_mail(&customer, 1, 60).await[0]);
    let t = TicketRef::parse(&app.store.tickets(1).await.expect("tickets")[0].ticket).expect("ref");
    let solve = || async {
        perform(
            &app.store,
            &app.desk(),
            t,
            &Action::Solve {
                by: "agent@example.test".into(),
            },
            clock.now(),
        )
        .await
        .expect("solve");
    };
    solve().await;
    let reply = |text: &'static str, n: usize| {
        let customer = customer.clone();
        let support = app.support.clone();
        let subject = ack.subject.clone();
        let ack_id = ack.message_id.clone();
        let first = first.clone();
        async move {
            let raw = customer_mail(
                &customer,
                &support,
                &format!("Re: {subject}"),
                text,
                &format!("{}-{n}@customer.example", unique("m")),
                &format!("In-Reply-To: <{ack_id}>\r\nReferences: <{first}> <{ack_id}>\r\n"),
            );
            send_raw(&customer, &support, &raw).await;
        }
    };
    reply(
        "It happened again this morning, the printer is offline once more.",
        1,
    )
    .await;
    app.wait_until(60, "reopened", |s| async move {
        s.ticket_detail(t)
            .await
            .ok()
            .flatten()
            .is_some_and(|d| d.summary.status == "open")
    })
    .await;
    let d = app.detail(t).await;
    assert_eq!(d.reopens, 1);
    assert!(app.events(t).await.contains(&"reopened".to_string()));
    assert!(
        d.timers
            .iter()
            .any(|x| x.promise == "solution" && x.state == "running"),
        "a new solution is owed"
    );

    // Solved again; 31 days later a reply opens a new ticket, linked to this one.
    solve().await;
    clock.advance(std::time::Duration::from_secs(31 * 86_400));
    reply("Different problem now: the scanner does not work.", 2).await;
    app.wait_until(60, "a second ticket", |s| async move {
        s.count("tickets").await.unwrap_or(0) == 2
    })
    .await;
    let newest = app.store.tickets(1).await.expect("tickets");
    let n = TicketRef::parse(&newest[0].ticket).expect("ref");
    assert_ne!(n, t);
    assert!(app.events(n).await.contains(&"linked".to_string()));
    let old = app.detail(t).await;
    assert_eq!(old.summary.status, "solved", "the old ticket stays solved");
}

/// Issue #15: machine mail that answers our acknowledgement, from the customer's own address and
/// without any RFC 3834 header, never counts as the customer's follow-up: a solved ticket stays
/// solved, no second ticket opens, nothing is sent; the read receipt is recorded as such.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_auto_reply_or_read_receipt_to_our_acknowledgement_never_reopens_a_solved_ticket() {
    let mut app = spawn_app(AppOptions {
        extra: "[sla]\nsurvey = false\n".into(),
        ..Default::default()
    })
    .await;
    let (customer, first) = app
        .mail_from_new_customer("退款进度", "我的退款什么时候到账？订单号 20261130。")
        .await;
    let ack = supportd::inbound::parse::parse(&wait_for_mail(&customer, 1, 60).await[0]);
    let t = TicketRef::parse(&app.store.tickets(1).await.expect("tickets")[0].ticket).expect("ref");
    app.solve(t).await;
    let threaded = format!(
        "In-Reply-To: <{}>\r\nReferences: <{first}> <{}>\r\n",
        ack.message_id, ack.message_id
    );
    // A QQ-style holiday reply: no Auto-Submitted, a Chinese prefix, a holiday text.
    let holiday = customer_mail(
        &customer,
        &app.support,
        &format!("自动回复：{}", ack.subject),
        "您好，我正在休假，12月7日回来后会尽快回复您的邮件。",
        &format!("{}@customer.example", unique("ooo")),
        &threaded,
    );
    // Outlook's "out of office" as some gateways pass it: only X-Auto-Response-Suppress left.
    let outlook = customer_mail(
        &customer,
        &app.support,
        &format!("Automatic reply: {}", ack.subject),
        "I am out of the office until 7 December with limited access to e-mail.",
        &format!("{}@customer.example", unique("oof")),
        &format!("{threaded}X-Auto-Response-Suppress: All\r\n"),
    );
    // A read receipt (RFC 8098).
    let mdn_id = format!("{}@customer.example", unique("mdn"));
    let mdn = format!(
        "From: {customer}\r\nTo: {support}\r\nSubject: 已读: {subject}\r\nMessage-ID: <{mdn_id}>\r\n{threaded}MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=disposition-notification; boundary=\"mdn\"\r\n\r\n--mdn\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n您的邮件已被阅读。\r\n--mdn\r\nContent-Type: message/disposition-notification\r\n\r\nReporting-UA: customer.example; Foxmail\r\nFinal-Recipient: rfc822;{customer}\r\nOriginal-Message-ID: <{ack_id}>\r\nDisposition: manual-action/MDN-sent-manually; displayed\r\n--mdn--\r\n",
        support = app.support,
        subject = {
            use base64::Engine;
            format!(
                "=?UTF-8?B?{}?=",
                base64::engine::general_purpose::STANDARD.encode(&ack.subject)
            )
        },
        ack_id = ack.message_id,
    );
    for raw in [holiday, outlook, mdn.into_bytes()] {
        send_raw(&customer, &app.support, &raw).await;
    }
    app.wait_until(60, "all three stored", |s| async move {
        // The customer's mail, our acknowledgement, and the three.
        s.count("messages").await.unwrap_or(0) >= 5
    })
    .await;
    let d = app.detail(t).await;
    assert_eq!(d.summary.status, "solved", "the ticket stays solved");
    assert_eq!(d.reopens, 0);
    assert_eq!(
        app.store.count("tickets").await.expect("count"),
        1,
        "no new ticket"
    );
    let events = app.events(t).await;
    assert!(!events.contains(&"reopened".to_string()), "{events:?}");
    assert!(events.contains(&"customer_read".to_string()), "{events:?}");
    // Only the acknowledgement ever reached the customer.
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    assert_eq!(read_folder(&customer, "INBOX").await.len(), 1);
    app.stop().await;
}
