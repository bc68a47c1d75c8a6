//! Intake correctness through the real rig: no person's mail ends without a ticket, whatever is
//! in its batch, whoever writes it (a colleague at the support domain, a web form with Reply-To),
//! and what cannot be filed is visible; every `--json` output is strict JSON.

use crate::helpers::*;
use supportd::domain::TicketRef;
use supportd::inbound::parse::parse;

/// Delivered while the daemon is down, an auto-reply and then a first mail from a new customer
/// are fetched in one batch: the customer gets a ticket, an acknowledgement and a card.
async fn machine_mail_before_a_customer_in_one_batch(db: Db) {
    let mut app = spawn_app(AppOptions {
        db,
        extra: "[queue]\n".into(),
        ..Default::default()
    })
    .await;
    app.stop().await;
    let (robot, customer) = (address(&unique("ooo")), address(&unique("cust")));
    let mut mails = Vec::new();
    for i in 0..5 {
        mails.push(customer_mail(
            &robot,
            &app.support,
            "Automatic reply: out of office",
            "I am away until Monday.",
            &format!("{}@corp.example", unique(&format!("ar{i}"))),
            "Auto-Submitted: auto-replied\r\n",
        ));
    }
    mails.push(customer_mail(
        &format!("王先生 <{customer}>"),
        &app.support,
        "退款什么时候到账",
        "您好，我的退款还没有到账。",
        &format!("{}@qq.com", unique("m")),
        "",
    ));
    lmtp_deliver(&app.support, &mails).await.expect("LMTP");
    app.start().await;
    let acks = wait_for_mail(&customer, 1, 60).await;
    let ack = parse(&acks[0]);
    let tickets = app.store.tickets(10).await.expect("tickets");
    assert_eq!(tickets.len(), 1, "one ticket: the customer's");
    assert_eq!(tickets[0].requester, customer);
    assert_eq!(
        tickets[0].ticket, "T-000001",
        "no number consumed by machine mail"
    );
    assert!(ack.subject.contains("[#T-000001]"), "{}", ack.subject);
    // The card is filed by the IMAP worker after the commit, in no fixed order with the
    // acknowledgement: wait for it (a slower machine showed the ack first).
    let cards = wait_for_folder(&app.support, "Support/Open", 1, 60).await;
    assert_eq!(cards.len(), 1, "the customer's card");
    assert_eq!(app.store.count("inbound").await.expect("count"), 6);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn machine_mail_ahead_of_a_customer_in_a_batch_loses_no_ticket_on_sqlite() {
    machine_mail_before_a_customer_in_one_batch(Db::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn machine_mail_ahead_of_a_customer_in_a_batch_loses_no_ticket_on_postgresql() {
    machine_mail_before_a_customer_in_one_batch(Db::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_colleague_at_the_support_domain_gets_a_ticket_and_an_acknowledgement() {
    let mut app = spawn_app(AppOptions::default()).await;
    // Thunderbird writes the Message-ID in the sender's own domain: the support domain.
    let colleague = address(&unique("li"));
    let raw = customer_mail(
        &format!("李工 <{colleague}>"),
        &app.support,
        "打印机坏了",
        "三楼的打印机卡纸了，麻烦看一下。",
        &format!("{}@{DOMAIN}", unique("tb")),
        "User-Agent: Mozilla Thunderbird\r\n",
    );
    send_raw(&colleague, &app.support, &raw).await;
    let acks = wait_for_mail(&colleague, 1, 60).await;
    assert_eq!(acks.len(), 1);
    let t = &app.store.tickets(1).await.expect("tickets")[0];
    assert_eq!(t.requester, colleague);
    let d = app.detail(TicketRef::parse(&t.ticket).expect("ref")).await;
    assert_eq!(d.messages[0].4, "human", "not a loop");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_web_form_from_a_no_reply_address_is_answered_at_its_reply_to() {
    let mut app = spawn_app(AppOptions::default()).await;
    let (form, person) = (address(&unique("noreply")), address(&unique("zhang")));
    let raw = customer_mail(
        &format!("Website <{form}>"),
        &app.support,
        "Contact form: 报价",
        "姓名：张三\n电话：13800000000\n留言：请给我们报价。",
        &format!("{}@forms.example", unique("f")),
        &format!("Reply-To: 张三 <{person}>\r\n"),
    );
    send_raw(&form, &app.support, &raw).await;
    let acks = wait_for_mail(&person, 1, 60).await;
    let ack = parse(&acks[0]);
    assert!(ack.text.contains("张三"), "addressed by name: {}", ack.text);
    assert!(
        read_folder(&form, "INBOX").await.is_empty(),
        "nothing to the no-reply address"
    );
    let t = &app.store.tickets(1).await.expect("tickets")[0];
    assert_eq!(t.requester, person);
    let r = TicketRef::parse(&t.ticket).expect("ref");
    let d = app.detail(r).await;
    assert_eq!(d.messages[0].2.as_deref(), Some(form.as_str()), "From kept");
    assert!(app
        .events(r)
        .await
        .contains(&"requester_from_reply_to".to_string()));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mail_without_a_sender_is_listed_and_every_json_output_is_strict() {
    let mut app = spawn_app(AppOptions::default()).await;
    let (customer, _) = app
        .mail_from_new_customer("Invoice", "Please resend the invoice.")
        .await;
    let nobody = format!(
        "To: {}\r\nSubject: who am I\r\nMessage-ID: <{}@x.example>\r\n\r\nno From, no Reply-To, no Sender",
        app.support,
        unique("n")
    );
    lmtp_deliver(&app.support, &[nobody.into_bytes()])
        .await
        .expect("LMTP");
    wait_for_mail(&customer, 1, 60).await;
    app.wait_until(30, "the mail without a sender", |s| async move {
        s.count("inbound").await.unwrap_or(0) == 2
    })
    .await;
    let listed = supportd_cli(&app, &["unattributed", "list"]);
    assert!(listed.contains("no usable sender"), "{listed}");
    assert!(listed.contains("who am I"), "{listed}");
    let t = app.store.tickets(1).await.expect("tickets")[0]
        .ticket
        .clone();
    for args in [
        vec!["ticket", "show", t.as_str(), "--json"],
        vec!["tickets", "list", "--json"],
        vec!["tickets", "list", "--all", "--json"],
        vec!["report", "--json"],
        vec!["unattributed", "list", "--json"],
    ] {
        let out = supportd_cli(&app, &args);
        strict_json(&out);
    }
    let mut inspect = std::process::Command::new(env!("CARGO_BIN_EXE_supportd"))
        .args(["inspect", "--json"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("inspect");
    {
        use std::io::Write;
        let mut stdin = inspect.stdin.take().expect("stdin");
        stdin
            .write_all(&customer_mail(
                &customer,
                &app.support,
                "x",
                "y",
                "z@x.example",
                "",
            ))
            .expect("write");
    }
    let out = inspect.wait_with_output().expect("inspect runs");
    strict_json(&String::from_utf8_lossy(&out.stdout));
    let shown = strict_json(&supportd_cli(&app, &["ticket", "show", &t, "--json"]));
    assert!(shown["messages"].is_array(), "{shown}");
    assert_eq!(shown["message_count"], 2, "{shown}");
    let (code, metrics) = http_get(app.http.expect("http"), "/metrics").await;
    assert_eq!(code, 200);
    assert!(
        metrics.contains("supportd_mail_unattributed_total{reason=\"no_sender\"} 1"),
        "{metrics}"
    );
    app.stop().await;
}
