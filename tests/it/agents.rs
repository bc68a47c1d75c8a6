//! Agents work from the shared mailbox with an ordinary mail client, through the real rig: a
//! ticket's card appears in Support/Open; a Reply to it reaches supportd, which sends the customer
//! the agent's text in approved wording, threaded, from the support address, with a copy in
//! Sent; commands work; forbidden wording and forged authority are refused; cards move between
//! folders as tickets change state; a reply sent around supportd is found in Sent.

use crate::helpers::*;
use supportd::domain::InboundMail;
use supportd::domain::TicketRef;
use supportd::inbound::parse::parse;

struct Desk {
    app: TestApp,
    agent: String,
    other: String,
    supervisor: String,
}

async fn desk(extra: &str) -> Desk {
    let (agent, other, supervisor) = (
        address(&unique("lina")),
        address(&unique("tom")),
        address(&unique("wangmin")),
    );
    let config = format!(
        "[[agents]]\nname = \"李娜\"\naddress = \"{agent}\"\n[[agents]]\nname = \"Tom\"\naddress = \"{other}\"\n[[agents]]\nname = \"王敏\"\naddress = \"{supervisor}\"\nrole = \"supervisor\"\n[queue]\n{extra}"
    );
    let app = spawn_app(AppOptions {
        extra: config,
        ..Default::default()
    })
    .await;
    Desk {
        app,
        agent,
        other,
        supervisor,
    }
}

/// Waits until `folder` of the support mailbox holds `n` mails; returns them parsed.
async fn folder(app: &TestApp, name: &str, n: usize) -> Vec<InboundMail> {
    wait_for_folder(&app.support, name, n, 60)
        .await
        .iter()
        .map(|m| parse(m))
        .collect()
}

/// An agent's reply to a card the way Thunderbird writes one: text on top, the card quoted.
fn reply_to_card(agent: &str, card: &InboundMail, text: &str) -> (String, Vec<u8>) {
    let to = card.reply_to.as_ref().expect("card Reply-To").to_string();
    let quoted: String = card.text.lines().map(|l| format!("> {l}\r\n")).collect();
    let raw = customer_mail(
        &format!("李娜 <{agent}>"),
        &to,
        &format!("Re: {}", card.subject),
        &format!("{text}\r\n\r\nOn 2026-11-29 10:00, Example 客服中心 wrote:\r\n{quoted}"),
        &format!("{}@agent.example", unique("r")),
        &format!("In-Reply-To: <{}>\r\n", card.message_id),
    );
    (to, raw)
}

async fn ticket_of(app: &TestApp) -> TicketRef {
    TicketRef::parse(&app.store.tickets(1).await.expect("tickets")[0].ticket).expect("ref")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_s_reply_to_the_card_reaches_the_customer_in_approved_wording_threaded() {
    let d = desk("").await;
    let app = &d.app;
    let (customer, first) = {
        let customer = address(&unique("cust"));
        let msgid = format!("{}@qq.com", unique("m"));
        let raw = customer_mail(
            &format!("王先生 <{customer}>"),
            &app.support,
            "退款什么时候到账",
            "您好，我上周申请的退款还没有到账。",
            &msgid,
            "",
        );
        send_raw(&customer, &app.support, &raw).await;
        (customer, msgid)
    };
    wait_for_mail(&customer, 1, 60).await;
    let card = folder(app, "Support/Open", 1).await.remove(0);
    assert!(
        card.text.contains("我上周申请的退款还没有到账"),
        "{}",
        card.text
    );
    assert!(card.text.contains("#resolve"), "cheat-sheet on the card");

    let (to, raw) = reply_to_card(
        &d.agent,
        &card,
        "#resolve\r\n\r\n您好，您的退款已于今天办理，预计 3 个工作日内到账。",
    );
    send_raw(&d.agent, &to, &raw).await;
    let mails = wait_for_mail(&customer, 3, 60).await;
    let reply = mails
        .iter()
        .map(|m| parse(m))
        .find(|m| m.text.contains("退款已于今天办理"))
        .expect("the agent's reply reached the customer");
    assert!(
        reply.text.contains("尊敬的王先生"),
        "approved greeting: {}",
        reply.text
    );
    assert!(reply.text.contains("李娜"), "signed with the agent's name");
    assert!(
        !reply.text.contains("#resolve"),
        "commands never reach the customer"
    );
    assert!(
        !reply.text.contains("我上周申请的退款"),
        "the quoted card is not sent"
    );
    assert_eq!(
        reply.from.as_ref().map(|a| a.as_str()),
        Some(app.support.as_str())
    );
    assert!(
        !reply.text.contains(&d.agent),
        "the agent's address stays private"
    );
    assert_eq!(
        reply.in_reply_to.first().map(|m| m.as_str()),
        Some(first.as_str())
    );
    assert!(reply.header("auto-submitted").is_none(), "a person's reply");
    assert!(
        mails.iter().any(|m| parse(m).subject.contains("评价")),
        "#resolve sent the survey"
    );

    // The shared mailbox shows it: a copy in Sent, the card moved to Solved.
    let sent = folder(app, "Sent", 1).await;
    assert!(sent[0].text.contains("退款已于今天办理"));
    folder(app, "Support/Solved", 1).await;
    assert!(read_folder(&app.support, "Support/Open").await.is_empty());
    let t = ticket_of(app).await;
    let detail = app.detail(t).await;
    assert_eq!(
        detail.summary.owner.as_deref(),
        Some(d.agent.as_str()),
        "首问负责制"
    );
    assert_eq!(detail.summary.status, "solved");
    assert!(detail
        .timers
        .iter()
        .any(|x| x.promise == "solution" && x.state == "met"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_html_reply_from_outlook_is_read_without_its_quoted_history() {
    let d = desk("").await;
    let app = &d.app;
    let (customer, _) = app
        .mail_from_new_customer("Login problem", "I cannot log in since this morning.")
        .await;
    wait_for_mail(&customer, 1, 60).await;
    let card = folder(app, "Support/Open", 1).await.remove(0);
    let to = card.reply_to.as_ref().expect("Reply-To").to_string();
    let html = format!(
        "<html><body><div>Hello, we have reset your password. Please try again.</div><div><br></div><hr style=\"display:inline-block;width:98%\"><div id=\"divRplyFwdMsg\"><b>From:</b> Example Support &lt;{}&gt;<br><b>Sent:</b> Sunday, November 29, 2026 10:00<br><b>To:</b> {}<br><b>Subject:</b> {}</div><div>{}</div></body></html>",
        app.support, d.agent, card.subject, card.text.replace('\n', "<br>")
    );
    let raw = format!(
        "From: Tom <{}>\r\nTo: {to}\r\nSubject: RE: {}\r\nMessage-ID: <{}@outlook.example>\r\nIn-Reply-To: <{}>\r\nMIME-Version: 1.0\r\nContent-Type: text/html; charset=utf-8\r\n\r\n{html}\r\n",
        d.other, card.subject, unique("o"), card.message_id
    )
    .into_bytes();
    send_raw(&d.other, &to, &raw).await;
    let mails = wait_for_mail(&customer, 2, 60).await;
    let reply = parse(&mails[1]);
    assert!(
        reply.text.contains("we have reset your password"),
        "{}",
        reply.text
    );
    assert!(
        reply.text.starts_with("Dear"),
        "English template for an English customer"
    );
    assert!(
        !reply.text.contains("I cannot log in since this morning"),
        "{}",
        reply.text
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forbidden_phrase_returns_the_draft_and_nothing_reaches_the_customer() {
    let d = desk("").await;
    let app = &d.app;
    let (customer, _) = app.mail_from_new_customer("发票", "发票什么时候开？").await;
    wait_for_mail(&customer, 1, 60).await;
    let card = folder(app, "Support/Open", 1).await.remove(0);
    let (to, raw) = reply_to_card(&d.agent, &card, "#resolve\r\n您好，这个我们也不清楚。");
    send_raw(&d.agent, &to, &raw).await;
    let back = parse(&wait_for_mail(&d.agent, 1, 60).await[0]);
    assert!(back.subject.contains("未发送"), "{}", back.subject);
    assert!(
        back.text.contains("不清楚"),
        "names the phrase: {}",
        back.text
    );
    assert!(
        back.text.contains("我为您确认后回复"),
        "and the approved wording"
    );
    assert!(back.text.contains("line 2"), "and where it is");
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    assert_eq!(
        read_folder(&customer, "INBOX").await.len(),
        1,
        "only the acknowledgement"
    );
    let t = ticket_of(app).await;
    let detail = app.detail(t).await;
    assert_eq!(detail.summary.status, "open", "#resolve did not half-apply");
    assert!(app
        .events(t)
        .await
        .contains(&"agent_mail_returned".to_string()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_agent_without_the_signed_address_or_authentication_commands_nothing() {
    let d = desk("").await;
    let app = &d.app;
    let (customer, _) = app
        .mail_from_new_customer("Refund", "Please refund order 5.")
        .await;
    wait_for_mail(&customer, 1, 60).await;
    let t = ticket_of(app).await;
    // The agent's address, but to the plain support address: customer mail, nothing runs.
    let forged = customer_mail(
        &d.agent,
        &app.support,
        &format!("Re: [#{t}] Refund"),
        "#resolve\r\nDone, refunded.",
        &format!("{}@evil.example", unique("f")),
        "",
    );
    send_raw(&d.agent, &app.support, &forged).await;
    // The agent's address and a guessed token with a bad signature: refused too.
    let guessed = format!(
        "{}+T{:06}.0123456789abcdef@{}",
        app.support.split('@').next().unwrap_or(""),
        t.0,
        DOMAIN
    );
    let raw = customer_mail(
        &d.agent,
        &guessed,
        &format!("Re: [#{t}] Refund"),
        "#resolve\r\nDone.",
        &format!("{}@evil.example", unique("f")),
        "",
    );
    send_raw(&d.agent, &guessed, &raw).await;
    app.wait_until(60, "both stored", |s| async move {
        s.count("inbound").await.unwrap_or(0) >= 3
    })
    .await;
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    let detail = app.detail(t).await;
    assert_eq!(detail.summary.status, "open", "no command ran");
    assert_eq!(
        read_folder(&customer, "INBOX").await.len(),
        1,
        "nothing sent to the customer"
    );
    let events = app.events(t).await;
    assert!(
        events
            .iter()
            .filter(|e| *e == "agent_authority_refused")
            .count()
            >= 1,
        "{events:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_dkim_required_an_authentication_result_from_another_server_does_not_count() {
    let d = desk("").await;
    drop(d);
    let agent = address(&unique("lina"));
    let app = spawn_app(AppOptions {
        extra: format!("[[agents]]\nname = \"李娜\"\naddress = \"{agent}\"\n[queue]\n[agent_mail]\nrequire_auth = \"dkim\"\nauthserv_id = \"mx.example.test\"\n"),
        ..Default::default()
    })
    .await;
    let (customer, _) = app
        .mail_from_new_customer("Refund", "Please refund order 6.")
        .await;
    wait_for_mail(&customer, 1, 60).await;
    let card = folder(&app, "Support/Open", 1).await.remove(0);
    let to = card.reply_to.as_ref().expect("Reply-To").to_string();
    let send = |ar: &'static str, text: &'static str| {
        let to = to.clone();
        let agent = agent.clone();
        let subject = card.subject.clone();
        async move {
            let raw = customer_mail(
                &agent,
                &to,
                &format!("Re: {subject}"),
                text,
                &format!("{}@agent.example", unique("r")),
                ar,
            );
            send_raw(&agent, &to, &raw).await;
        }
    };
    send(
        "Authentication-Results: evil.example; dkim=pass header.d=example.test\r\n",
        "Forged pass.",
    )
    .await;
    send(
        "Authentication-Results: mx.example.test; dkim=pass header.d=example.test header.s=s1\r\n",
        "Real pass: refunded today.",
    )
    .await;
    let mails = wait_for_mail(&customer, 2, 60).await;
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    let texts: Vec<String> = read_folder(&customer, "INBOX")
        .await
        .iter()
        .map(|m| parse(m).text)
        .collect();
    assert_eq!(texts.len(), 2, "{texts:?} ({} then)", mails.len());
    assert!(texts[1].contains("Real pass: refunded today."));
    assert!(!texts.iter().any(|t| t.contains("Forged pass")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notes_escalation_and_ownership_are_visible_in_the_shared_mailbox() {
    let d = desk("").await;
    let app = &d.app;
    let (customer, _) = app
        .mail_from_new_customer("维修", "空调不制冷，请派人维修。")
        .await;
    wait_for_mail(&customer, 1, 60).await;
    let card = folder(app, "Support/Open", 1).await.remove(0);
    let t = ticket_of(app).await;

    // A note: recorded, nothing to the customer, no owner taken.
    let (to, raw) = reply_to_card(&d.agent, &card, "#note\r\n客户来电，约了明天上门。");
    send_raw(&d.agent, &to, &raw).await;
    app.wait_until(60, "note recorded", |s| async move {
        s.event_kinds(t)
            .await
            .unwrap_or_default()
            .contains(&"note".to_string())
    })
    .await;
    assert_eq!(read_folder(&customer, "INBOX").await.len(), 1);

    // The first real reply owns the ticket; another agent's reply does not take it.
    let (to, raw) = reply_to_card(&d.agent, &card, "您好，师傅明天上午上门检修。");
    send_raw(&d.agent, &to, &raw).await;
    wait_for_mail(&customer, 2, 60).await;
    let mut other = reply_to_card(&d.other, &card, "补充：请保持电话畅通。");
    other.1 = String::from_utf8_lossy(&other.1)
        .replace(
            &format!("李娜 <{}>", d.agent),
            &format!("Tom <{}>", d.other),
        )
        .into_bytes();
    send_raw(&d.other, &other.0, &other.1).await;
    wait_for_mail(&customer, 3, 60).await;
    let detail = app.detail(t).await;
    assert_eq!(detail.summary.owner.as_deref(), Some(d.agent.as_str()));
    assert!(app
        .events(t)
        .await
        .contains(&"reply_by_other_agent".to_string()));

    // #escalate: the card moves to Escalated and the supervisor hears of it; #assign hands over.
    let (to, raw) = reply_to_card(
        &d.agent,
        &card,
        &format!("#escalate\r\n#assign {}", d.other),
    );
    send_raw(&d.agent, &to, &raw).await;
    let notice = parse(&wait_for_mail(&d.supervisor, 1, 60).await[0]);
    assert!(notice.subject.contains("升级"), "{}", notice.subject);
    folder(app, "Support/Escalated", 1).await;
    assert!(read_folder(&app.support, "Support/Open").await.is_empty());
    let detail = app.detail(t).await;
    assert_eq!(detail.summary.owner.as_deref(), Some(d.other.as_str()));
    assert!(detail.summary.escalated);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_sent_around_supportd_is_found_in_sent_and_stops_the_clock() {
    let d = desk("").await;
    let app = &d.app;
    let customer = address(&unique("cust"));
    let first = format!("{}@qq.com", unique("m"));
    let raw = customer_mail(
        &customer,
        &app.support,
        "账单问题",
        "我的账单金额不对。",
        &first,
        "",
    );
    send_raw(&customer, &app.support, &raw).await;
    wait_for_mail(&customer, 1, 60).await;
    let t = ticket_of(app).await;
    // The agent answers the archived original directly from the shared account; the client
    // saves the sent mail in Sent.
    let direct = customer_mail(
        &app.support,
        &customer,
        "Re: 账单问题",
        "您好，账单已更正。",
        &format!("{}@thunderbird.example", unique("s")),
        &format!("In-Reply-To: <{first}>\r\nReferences: <{first}>\r\n"),
    );
    send_raw(&app.support, &customer, &direct).await;
    let mut conn = supportd::inbound::fetch::connect(&imap_settings(&app.support))
        .await
        .expect("IMAP");
    let id = parse(&direct).message_id.to_string();
    conn.append_once("Sent", &id, &direct)
        .await
        .expect("append to Sent");
    conn.logout().await;
    app.wait_until(60, "the direct reply is recorded", |s| async move {
        s.event_kinds(t)
            .await
            .unwrap_or_default()
            .contains(&"agent_reply_unchecked".to_string())
    })
    .await;
    let detail = app.detail(t).await;
    assert!(detail.first_reply_at.is_some(), "counts for the clock");
    assert!(detail
        .timers
        .iter()
        .any(|x| x.promise == "solution" && x.state == "met"));
}
