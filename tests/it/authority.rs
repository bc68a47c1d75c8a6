//! Agent authority through the real rig: nothing a customer holds runs an agent's command; a
//! real agent's reply to a card works; with `require_auth = "submission"` only mail submitted
//! through our own server, logged in as the agent, counts, and the rest goes back to the agent
//! with the reason; old cards work during the transition window only; a rotated card stops.

use crate::helpers::*;
use supportd::domain::TicketRef;
use supportd::inbound::parse::parse;

struct Team {
    app: TestApp,
    agent: String,
    supervisor: String,
}

async fn team(extra: &str) -> Team {
    let (agent, supervisor) = (address(&unique("lina")), address(&unique("wangmin")));
    let app = spawn_app(AppOptions {
        extra: format!(
            "[[agents]]\nname = \"李娜\"\naddress = \"{agent}\"\n[[agents]]\nname = \"王敏\"\naddress = \"{supervisor}\"\nrole = \"supervisor\"\n[queue]\n{extra}"
        ),
        ..Default::default()
    })
    .await;
    Team {
        app,
        agent,
        supervisor,
    }
}

/// A new customer's mail; returns the customer, their acknowledgement and the ticket.
async fn new_ticket(app: &TestApp) -> (String, supportd::domain::InboundMail, TicketRef) {
    let (customer, _) = app
        .mail_from_new_customer("退款", "您好，退款什么时候到账？")
        .await;
    let ack = parse(&wait_for_mail(&customer, 1, 60).await[0]);
    let t = TicketRef::parse(&app.store.tickets(1).await.expect("tickets")[0].ticket).expect("ref");
    (customer, ack, t)
}

fn reply(from: &str, to: &str, t: TicketRef, body: &str) -> Vec<u8> {
    customer_mail(
        &format!("李娜 <{from}>"),
        to,
        &format!("Re: [#{t}] 退款"),
        body,
        &format!("{}@{DOMAIN}", unique("r")),
        "",
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_agent_at_the_customer_s_own_reply_address_changes_nothing() {
    let Team {
        mut app,
        agent,
        supervisor,
    } = team("").await;
    let (customer, ack, t) = new_ticket(&app).await;
    let before = app.detail(t).await;
    // The attack: the Reply-To of the customer's own acknowledgement, a forged From.
    let to = ack.reply_to.as_ref().expect("ack Reply-To").to_string();
    assert!(
        !to.contains("+a"),
        "customers never see an agents' address: {to}"
    );
    let forged = reply(
        &agent,
        &to,
        t,
        "#priority urgent\r\n#escalate\r\n#resolve\r\n#assign x@example.test\r\n\r\n已处理。",
    );
    send_raw(&customer, &to, &forged).await;
    app.wait_until(60, "the forged mail stored", |s| async move {
        s.count("inbound").await.unwrap_or(0) == 2
    })
    .await;
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    let after = app.detail(t).await;
    assert_eq!(after.summary.class.priority, before.summary.class.priority);
    assert_eq!(after.summary.status, before.summary.status);
    assert_eq!(after.summary.owner, before.summary.owner);
    assert!(!after.summary.escalated);
    assert_eq!(app.store.count("corrections").await.expect("count"), 0);
    let events = app.events(t).await;
    for never in [
        "escalated",
        "solved",
        "owner_assigned",
        "classification_corrected",
        "reply_queued",
    ] {
        assert!(!events.iter().any(|e| e == never), "{never}: {events:?}");
    }
    assert!(
        events.iter().any(|e| e == "agent_authority_refused"),
        "{events:?}"
    );
    assert!(
        events.iter().any(|e| e == "customer_replied"),
        "a follow-up, flagged: {events:?}"
    );
    assert!(
        read_folder(&supervisor, "INBOX").await.is_empty(),
        "no supervisor notified"
    );
    assert_eq!(
        read_folder(&customer, "INBOX").await.len(),
        1,
        "only the ack"
    );
    let (_, metrics) = http_get(app.http.expect("http"), "/metrics").await;
    assert!(
        metrics.contains("supportd_agent_authority_refused_total{reason=\"customer_address\"} 1"),
        "{metrics}"
    );
    // The real agent, replying to the card (the agents' address), still works.
    let c = card_of(&app, t).await;
    let agents_address = c.reply_to.as_ref().expect("card Reply-To").to_string();
    assert!(agents_address.contains("+a0.t"), "{agents_address}");
    send_raw(
        &agent,
        &agents_address,
        &reply(&agent, &agents_address, t, "您好，退款已办理。"),
    )
    .await;
    let mails = wait_for_mail(&customer, 2, 60).await;
    let answer = mails
        .iter()
        .map(|m| parse(m))
        .find(|m| m.text.contains("退款已办理"))
        .expect("the reply");
    assert!(
        !String::from_utf8_lossy(&mails[1])
            .to_lowercase()
            .contains("+a0."),
        "no agents' address reaches the customer"
    );
    assert!(answer
        .reply_to
        .as_ref()
        .expect("reply-to")
        .as_str()
        .contains(&format!("+t{:06}.", t.0)));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_submission_required_only_an_authenticated_agent_s_reply_counts() {
    let Team { mut app, agent, .. } = team(
        "[agent_mail]\nrequire_auth = \"submission\"\ntrusted_hosts = [\"mail.example.test\"]\n",
    )
    .await;
    let (customer, _, t) = new_ticket(&app).await;
    let c = card_of(&app, t).await;
    let to = c.reply_to.as_ref().expect("card Reply-To").to_string();
    // Through the open port, not logged in: anyone could have written this From.
    send_raw(
        &agent,
        &to,
        &reply(&agent, &to, t, "#resolve\r\n\r\n已处理完毕。"),
    )
    .await;
    let back = parse(&wait_for_mail(&agent, 1, 60).await[0]);
    assert!(
        back.text.contains("authenticated submission"),
        "the reason, returned to the agent: {}",
        back.text
    );
    assert_eq!(app.detail(t).await.summary.status, "open", "nothing ran");
    assert_eq!(
        read_folder(&customer, "INBOX").await.len(),
        1,
        "only the ack"
    );
    // Logged in through the submission port: the reply reaches the customer.
    submit_raw(
        &agent,
        &to,
        &reply(&agent, &to, t, "您好，退款已办理完毕。"),
    )
    .await;
    let mails = wait_for_mail(&customer, 2, 60).await;
    assert!(mails
        .iter()
        .any(|m| parse(m).text.contains("退款已办理完毕")));
    app.stop().await;
}

async fn old_card(days: u32) -> (bool, Vec<String>) {
    let Team { mut app, agent, .. } =
        team(&format!("[agent_mail]\nlegacy_card_days = {days}\n")).await;
    let (customer, ack, t) = new_ticket(&app).await;
    // A ticket from before agents' addresses: its card carried the customer's address.
    app.stop().await;
    sqlx::query("UPDATE tickets SET agent_token_epoch = NULL")
        .execute(app.store.pool())
        .await
        .expect("make it an old ticket");
    app.start().await;
    let old = ack.reply_to.as_ref().expect("Reply-To").to_string();
    send_raw(&agent, &old, &reply(&agent, &old, t, "您好，已经处理。")).await;
    app.wait_until(60, "the reply stored", |s| async move {
        s.count("inbound").await.unwrap_or(0) == 2
    })
    .await;
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    let reached = read_folder(&customer, "INBOX")
        .await
        .iter()
        .any(|m| parse(m).text.contains("已经处理"));
    let events = app.events(t).await;
    app.stop().await;
    (reached, events)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_old_card_works_for_an_old_ticket_during_the_transition() {
    let (reached, events) = old_card(30).await;
    assert!(reached, "{events:?}");
    assert!(
        events.iter().any(|e| e == "legacy_card_address"),
        "{events:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_old_card_stops_working_after_the_transition() {
    let (reached, events) = old_card(0).await;
    assert!(!reached, "{events:?}");
    assert!(
        events.iter().any(|e| e == "agent_authority_refused"),
        "{events:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_card_is_returned_and_the_returned_notice_carries_the_new_address() {
    let Team { mut app, agent, .. } = team("").await;
    let (customer, _, t) = new_ticket(&app).await;
    let c = card_of(&app, t).await;
    let old = c.reply_to.as_ref().expect("card Reply-To").to_string();
    let out = supportd_cli(
        &app,
        &["ticket", "rotate-token", &t.to_string(), "--by", &agent],
    );
    assert!(out.contains("agent_address_rotated"), "{out}");
    send_raw(&agent, &old, &reply(&agent, &old, t, "您好，退款已办理。")).await;
    let back = parse(&wait_for_mail(&agent, 1, 60).await[0]);
    assert!(back.text.contains("revoked"), "{}", back.text);
    let new = back.reply_to.as_ref().expect("notice Reply-To").to_string();
    assert!(new.contains("+a1.t"), "the renewed address: {new}");
    send_raw(&agent, &new, &reply(&agent, &new, t, "您好，退款已办理。")).await;
    let mails = wait_for_mail(&customer, 2, 60).await;
    assert!(mails.iter().any(|m| parse(m).text.contains("退款已办理")));
    app.stop().await;
}
