//! Threading through the real rig: signed reply addresses and anti-spoofing.

use crate::helpers::*;
use supportd::model::TicketRef;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_to_the_signed_reply_address_joins_its_ticket_even_without_references() {
    let mut app = spawn_app(AppOptions::default()).await;
    let (customer, _) = app
        .mail_from_new_customer("Refund", "Please refund order 5.")
        .await;
    let ack = supportd::parse::parse(&wait_for_mail(&customer, 1, 60).await[0]);
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
    let ack = supportd::parse::parse(&wait_for_mail(&customer, 1, 60).await[0]);
    let tag = supportd::thread::subject_tag(&ack.subject).expect("tag in the acknowledgement");
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
