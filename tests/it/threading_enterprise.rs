//! Threading through gateways, banners, phones and colleagues (issue #25), through the real rig:
//! every link a mail carries is read, every link admits only the ticket's people, and no machine
//! mail reopens a ticket. Each test asserts there is no second acknowledgement for a
//! conversation that has one.

use crate::helpers::*;
use supportd::domain::TicketRef;

fn b64_subject(s: &str) -> String {
    use base64::Engine;
    format!(
        "=?UTF-8?B?{}?=",
        base64::engine::general_purpose::STANDARD.encode(s)
    )
}

/// The customer's ticket (from our acknowledgement's tag) and the acknowledgement, parsed.
async fn first_ticket(customer: &str) -> (TicketRef, supportd::domain::InboundMail) {
    let ack = supportd::inbound::parse::parse(&wait_for_mail(customer, 1, 60).await[0]);
    let t = supportd::inbound::thread::subject_tag(&ack.subject).expect("tag in our ack");
    (t, ack)
}

async fn acks(app: &TestApp) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM outbox WHERE kind = 'ack'")
        .fetch_one(app.store.pool())
        .await
        .expect("count")
}

async fn wait_inbound(app: &TestApp, n: i64) {
    app.wait_until(60, "mail stored", |s| async move {
        s.count("inbound").await.unwrap_or(0) >= n
    })
    .await;
}

/// A security gateway rewrote the customer's Message-ID (keeping the original in
/// `X-Original-Message-ID`); the customer's next mail, written from their own Sent copy, names
/// only the original, under an `[EXT]` banner and without our tag.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_naming_the_id_a_gateway_rewrote_joins_its_ticket() {
    let mut app = spawn_app(AppOptions::default()).await;
    let customer = address(&unique("cust"));
    let original = format!("{}@corp.example", unique("orig"));
    let first = customer_mail(
        &customer,
        &app.support,
        "Printer offline",
        "Our printer shows offline since this morning.",
        &format!("{}@gw.mimecast.example", unique("gw")),
        &format!("X-Original-Message-ID: <{original}>\r\n"),
    );
    send_raw(&customer, &app.support, &first).await;
    let (t, _) = first_ticket(&customer).await;
    let follow = customer_mail(
        &customer,
        &app.support,
        "[EXT] RE: Printer offline",
        "Forgot to say: it is the HP on the 3rd floor.",
        &format!("{}@corp.example", unique("m")),
        &format!("In-Reply-To: <{original}>\r\nReferences: <{original}>\r\n"),
    );
    send_raw(&customer, &app.support, &follow).await;
    wait_inbound(&app, 2).await;
    assert_eq!(app.store.count("tickets").await.expect("count"), 1);
    assert_eq!(acks(&app).await, 1, "no second acknowledgement");
    assert!(app
        .events(t)
        .await
        .contains(&"customer_replied".to_string()));
    app.stop().await;
}

/// A phone app that drops In-Reply-To, References and the subject tag, replying in HTML only:
/// the only link left is our tag inside the quoted acknowledgement.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_html_phone_reply_without_headers_joins_by_the_tag_in_the_quote() {
    let mut app = spawn_app(AppOptions::default()).await;
    let (customer, _) = app
        .mail_from_new_customer("退款进度", "我的退款什么时候到账？")
        .await;
    let (t, ack) = first_ticket(&customer).await;
    let html = format!(
        "<div>已经收到退款了，谢谢！</div><div><br></div><div>发自我的华为手机</div><blockquote><div>-------- 原始邮件 --------</div><div>主题：{}</div><div>您好，我们已收到您的来信。</div></blockquote>",
        ack.subject
    );
    let raw = format!(
        "From: {customer}\r\nTo: {support}\r\nSubject: {subject}\r\nMessage-ID: <{id}@huawei.example>\r\nDate: Mon, 30 Nov 2026 10:00:00 +0800\r\nMIME-Version: 1.0\r\nContent-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n{html}\r\n",
        support = app.support,
        subject = b64_subject("回复：退款进度"),
        id = unique("m"),
    );
    send_raw(&customer, &app.support, raw.as_bytes()).await;
    wait_inbound(&app, 2).await;
    assert_eq!(app.store.count("tickets").await.expect("count"), 1);
    assert_eq!(acks(&app).await, 1);
    let d = app.detail(t).await;
    assert!(
        d.events
            .iter()
            .any(|(_, k, v)| k == "customer_replied" && v.to_string().contains("quoted_tag")),
        "{:?}",
        d.events
    );
    app.stop().await;
}

/// A customer's own code that looks like a tag comes first in the subject; the real tag later
/// wins, even though the code names another customer's ticket.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_tag_candidate_is_tried_and_ours_wins() {
    let mut app = spawn_app(AppOptions::default()).await;
    let (other, _) = app.mail_from_new_customer("发票", "请开发票。").await;
    let (t1, _) = first_ticket(&other).await;
    let (customer, _) = app.mail_from_new_customer("货物破损", "箱子破了。").await;
    let (t2, _) = first_ticket(&customer).await;
    assert_ne!(t1, t2);
    let subject = format!(
        "【外部邮件】款号【T-{}】破损（服务单号 [#T-{:06}]）",
        t1.0, t2.0
    );
    let raw = customer_mail(
        &customer,
        &app.support,
        &subject,
        "照片补发给你们。",
        &format!("{}@customer.example", unique("m")),
        "",
    );
    send_raw(&customer, &app.support, &raw).await;
    wait_inbound(&app, 3).await;
    assert_eq!(app.store.count("tickets").await.expect("count"), 2);
    assert_eq!(acks(&app).await, 2);
    assert!(app
        .events(t2)
        .await
        .contains(&"customer_replied".to_string()));
    assert!(!app
        .events(t1)
        .await
        .contains(&"customer_replied".to_string()));
    app.stop().await;
}

/// The requester Cc's a colleague on a follow-up; the colleague's reply-all is a follow-up on
/// the same ticket (the colleague joined it), not a stranger's new ticket.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_colleague_the_requester_cc_s_midway_joins_the_ticket() {
    let mut app = spawn_app(AppOptions::default()).await;
    let (customer, first) = app
        .mail_from_new_customer("VPN fails", "The VPN client fails to connect.")
        .await;
    let (t, ack) = first_ticket(&customer).await;
    let colleague = address(&unique("coll"));
    let follow_id = format!("{}@customer.example", unique("f"));
    let follow = customer_mail(
        &customer,
        &app.support,
        &format!("Re: {}", ack.subject),
        "Adding my colleague who manages our firewall.",
        &follow_id,
        &format!(
            "Cc: {colleague}\r\nIn-Reply-To: <{}>\r\nReferences: <{first}> <{}>\r\n",
            ack.message_id, ack.message_id
        ),
    );
    send_raw(&customer, &app.support, &follow).await;
    wait_inbound(&app, 2).await;
    // The colleague answers all, from their own client, without our tag.
    let reply_all = customer_mail(
        &colleague,
        &app.support,
        "RE: VPN fails",
        "Port 500/4500 UDP is open on our side.",
        &format!("{}@customer.example", unique("c")),
        &format!(
            "Cc: {customer}\r\nIn-Reply-To: <{follow_id}>\r\nReferences: <{first}> <{}> <{follow_id}>\r\n",
            ack.message_id
        ),
    );
    send_raw(&colleague, &app.support, &reply_all).await;
    wait_inbound(&app, 3).await;
    assert_eq!(app.store.count("tickets").await.expect("count"), 1);
    assert_eq!(acks(&app).await, 1);
    let d = app.detail(t).await;
    assert!(d.participants.contains(&colleague), "{:?}", d.participants);
    assert!(app
        .events(t)
        .await
        .contains(&"participant_added".to_string()));
    app.stop().await;
}

/// Our signed reply address in the hands of someone the ticket never saw (a forward, or the
/// requester's private address): a new ticket linked to it, not a voice on it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_signed_address_from_a_never_seen_sender_opens_a_linked_ticket() {
    let mut app = spawn_app(AppOptions::default()).await;
    let (customer, _) = app
        .mail_from_new_customer("Refund", "Refund order 7.")
        .await;
    let (t, ack) = first_ticket(&customer).await;
    let reply_to = ack.reply_to.expect("signed Reply-To").to_string();
    let other = address(&unique("fwd"));
    let raw = customer_mail(
        &other,
        &reply_to,
        "Re: Refund",
        "I got this forwarded; please also refund my order 9.",
        &format!("{}@x.example", unique("m")),
        "",
    );
    send_raw(&other, &reply_to, &raw).await;
    app.wait_until(60, "a second ticket", |s| async move {
        s.count("tickets").await.unwrap_or(0) == 2
    })
    .await;
    let newest = app.store.tickets(1).await.expect("tickets");
    let n = TicketRef::parse(&newest[0].ticket).expect("ref");
    assert_ne!(n, t);
    assert!(app.events(n).await.contains(&"linked".to_string()));
    assert!(!app.detail(t).await.participants.contains(&other));
    app.stop().await;
}

/// An Exchange calendar reply to a solved ticket's mail is machine mail: recorded, no reopen.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_calendar_reply_never_reopens_a_solved_ticket() {
    let mut app = spawn_app(AppOptions {
        extra: "[sla]\nsurvey = false\n".into(),
        ..Default::default()
    })
    .await;
    let (customer, first) = app
        .mail_from_new_customer("Onboarding call", "Can we schedule a call?")
        .await;
    let (t, ack) = first_ticket(&customer).await;
    app.solve(t).await;
    let raw = format!(
        "From: {customer}\r\nTo: {support}\r\nSubject: Accepted: {subject}\r\nMessage-ID: <{id}@corp.example>\r\nIn-Reply-To: <{ack_id}>\r\nReferences: <{first}> <{ack_id}>\r\nThread-Topic: Onboarding call\r\nMIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=\"cal\"\r\n\r\n--cal\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nAccepted. See you then.\r\n--cal\r\nContent-Type: text/calendar; charset=utf-8; method=REPLY\r\n\r\nBEGIN:VCALENDAR\r\nMETHOD:REPLY\r\nBEGIN:VEVENT\r\nATTENDEE;PARTSTAT=ACCEPTED:mailto:{customer}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n--cal--\r\n",
        support = app.support,
        subject = b64_subject(&ack.subject),
        id = unique("cal"),
        ack_id = ack.message_id,
    );
    send_raw(&customer, &app.support, raw.as_bytes()).await;
    wait_inbound(&app, 2).await;
    let d = app.detail(t).await;
    assert_eq!(d.summary.status, "solved");
    assert_eq!(d.reopens, 0);
    assert_eq!(app.store.count("tickets").await.expect("count"), 1);
    assert_eq!(acks(&app).await, 1);
    app.stop().await;
}
