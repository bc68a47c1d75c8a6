//! Machines' mail through the real rig: bounces and auto-responders never cause a loop.

use crate::helpers::*;
use supportd::domain::TicketRef;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_postfix_bounce_marks_the_acknowledgement_failed_on_its_ticket() {
    let mut app = spawn_app(AppOptions::default()).await;
    // The rig delivers nothing outside example.test: our acknowledgement to this customer
    // bounces, and Postfix sends the report back to the support address.
    let customer = format!("{}@elsewhere.example", unique("gone"));
    let raw = customer_mail(
        &customer,
        &app.support,
        "Where is my order?",
        "Order 77 is late.",
        &format!("{}@elsewhere.example", unique("m")),
        "",
    );
    send_raw(&customer, &app.support, &raw).await;
    app.wait_until(
        30,
        "the bounce is stored and the outbox mail failed",
        |s| async move {
            s.count("failed").await.unwrap_or(0) == 1 && s.count("inbound").await.unwrap_or(0) == 2
        },
    )
    .await;
    assert_eq!(
        app.store.count("tickets").await.expect("count"),
        1,
        "a bounce opens no ticket"
    );
    let t = app.store.tickets(1).await.expect("tickets");
    let kinds = app
        .store
        .event_kinds(TicketRef::parse(&t[0].ticket).expect("ref"))
        .await
        .expect("events");
    assert!(kinds.contains(&"outbox_failed".to_string()), "{kinds:?}");
    assert_eq!(
        t[0].messages, 3,
        "customer mail, acknowledgement, bounce on one ticket"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_auto_responder_whose_headers_lie_gets_at_most_three_acknowledgements_an_hour() {
    let mut app = spawn_app(AppOptions::default()).await;
    let robot = address(&unique("robot"));
    // Five "new" mails with no automatic headers at all, as a badly written responder sends.
    for i in 0..5 {
        let raw = customer_mail(
            &robot,
            &app.support,
            &format!("Notice {i}"),
            "Thank you for your mail.",
            &format!("{}@robot.example", unique("m")),
            "",
        );
        send_raw(&robot, &app.support, &raw).await;
    }
    app.wait_until(30, "five tickets", |s| async move {
        s.count("tickets").await.unwrap_or(0) == 5
    })
    .await;
    app.wait_until(60, "three acknowledgements sent", |s| async move {
        s.count("sent").await.unwrap_or(0) == 3
    })
    .await;
    assert_eq!(app.store.count("ack_suppressed").await.expect("count"), 2);
    assert_eq!(wait_for_mail(&robot, 3, 60).await.len(), 3);
    app.stop().await;
}
