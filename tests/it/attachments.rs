//! Attachments both ways, through the real rig: the customer's files (a PDF, pictures with Chinese
//! names in RFC 2047 and RFC 2231 form, a picture pasted inline, a forwarded mail) reach the
//! agent's card byte for byte; the agent's report reaches the customer byte for byte without the
//! signature's logo; a reply too big to send is returned to the agent; `attachment get` gives
//! back the stored bytes.

use crate::helpers::*;
use base64::Engine;
use sha2::{Digest, Sha256};
use supportd::domain::{InboundMail, TicketRef};
use supportd::inbound::parse::parse;

fn bytes(seed: u8, n: usize) -> Vec<u8> {
    (0..n)
        .map(|i| {
            (i as u32)
                .wrapping_mul(2654435761)
                .wrapping_add(seed as u32) as u8
        })
        .collect()
}

fn b64(b: &[u8]) -> String {
    let s = base64::engine::general_purpose::STANDARD.encode(b);
    s.as_bytes()
        .chunks(76)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join("\r\n")
}

fn sha(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
}

struct Files {
    pdf: Vec<u8>,
    photo: Vec<u8>,
    report: Vec<u8>,
    pasted: Vec<u8>,
}

/// A customer's mail the way Outlook sends photos and a scan: a PDF, a PNG named in RFC 2047, a
/// PDF named in RFC 2231, a picture pasted into the HTML, and a forwarded mail.
fn customer_mail_with_files(from: &str, to: &str, f: &Files) -> Vec<u8> {
    let forwarded = "From: courier@express.example\r\nTo: x@y.example\r\nSubject: Delivery failed\r\nMessage-ID: <fw1@express.example>\r\n\r\nParcel damaged in transit.\r\n";
    format!(
        "From: 王先生 <{from}>\r\nTo: {to}\r\nSubject: =?UTF-8?B?{subject}?=\r\nMessage-ID: <{id}@qq.example>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"mixed\"\r\n\r\n\
--mixed\r\nContent-Type: multipart/related; boundary=\"rel\"\r\n\r\n\
--rel\r\nContent-Type: multipart/alternative; boundary=\"alt\"\r\n\r\n\
--alt\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n{text}\r\n\
--alt\r\nContent-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n{html}\r\n--alt--\r\n\
--rel\r\nContent-Type: image/jpeg; name=\"pasted.jpg\"\r\nContent-Disposition: inline; filename=\"pasted.jpg\"\r\nContent-ID: <pasted001@qq.example>\r\nContent-Transfer-Encoding: base64\r\n\r\n{pasted}\r\n--rel--\r\n\
--mixed\r\nContent-Type: application/pdf; name=\"invoice.pdf\"\r\nContent-Disposition: attachment; filename=\"invoice.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\n{pdf}\r\n\
--mixed\r\nContent-Type: image/png; name=\"=?UTF-8?B?{photo_name}?=\"\r\nContent-Disposition: attachment; filename=\"=?UTF-8?B?{photo_name}?=\"\r\nContent-Transfer-Encoding: base64\r\n\r\n{photo}\r\n\
--mixed\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment;\r\n filename*0*=UTF-8''%E6%A3%80%E6%B5%8B;\r\n filename*1*=%E6%8A%A5%E5%91%8A.pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n{report}\r\n\
--mixed\r\nContent-Type: message/rfc822\r\nContent-Disposition: attachment; filename=\"delivery.eml\"\r\n\r\n{forwarded}\r\n--mixed--\r\n",
        subject = base64::engine::general_purpose::STANDARD.encode("收到的货物破损了"),
        id = unique("att"),
        text = b64("收到的货物破损了，照片见附件。".as_bytes()),
        html = b64("<p>收到的货物破损了，照片见附件。</p><p><img src=\"cid:pasted001@qq.example\"></p>".as_bytes()),
        pasted = b64(&f.pasted),
        pdf = b64(&f.pdf),
        photo_name = base64::engine::general_purpose::STANDARD.encode("破损照片.png"),
        photo = b64(&f.photo),
        report = b64(&f.report),
    )
    .into_bytes()
}

/// An agent's reply the way Outlook desktop writes one: text + HTML with the signature's logo
/// (inline, shown by the HTML in the signature), and the report attached.
fn outlook_reply(agent: &str, to: &str, card: &InboundMail, report: &[u8], logo: &[u8]) -> Vec<u8> {
    format!(
        "From: 李娜 <{agent}>\r\nTo: {to}\r\nSubject: RE: {subject}\r\nIn-Reply-To: <{card_id}>\r\nMessage-ID: <{id}@example.test>\r\nX-Mailer: Microsoft Outlook 16.0\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"m\"\r\n\r\n\
--m\r\nContent-Type: multipart/related; boundary=\"r\"; type=\"multipart/alternative\"\r\n\r\n\
--r\r\nContent-Type: multipart/alternative; boundary=\"a\"\r\n\r\n\
--a\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n{text}\r\n\
--a\r\nContent-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n{html}\r\n--a--\r\n\
--r\r\nContent-Type: image/png; name=\"image001.png\"\r\nContent-Description: image001.png\r\nContent-Disposition: inline; filename=\"image001.png\"\r\nContent-ID: <image001.png@01DD8077.A2CDDC10>\r\nContent-Transfer-Encoding: base64\r\n\r\n{logo}\r\n--r--\r\n\
--m\r\nContent-Type: application/pdf; name=\"=?UTF-8?B?{name}?=\"\r\nContent-Disposition: attachment; filename=\"=?UTF-8?B?{name}?=\"\r\nContent-Transfer-Encoding: base64\r\n\r\n{report}\r\n--m--\r\n",
        subject = card.subject,
        card_id = card.message_id,
        id = unique("o"),
        text = b64("您好，检测报告见附件，请查收。\r\n\r\n李娜\r\n客户服务专员\r\n客服热线：400-800-1234\r\n[cid:image001.png@01DD8077.A2CDDC10]\r\n\r\n发件人: Example 客服中心\r\n发送时间: 2026年11月30日 10:58\r\n主题: 退款\r\n\r\n收到的货物破损了".as_bytes()),
        html = b64("<div><p>您好，检测报告见附件，请查收。</p><p>李娜<br>客户服务专员<br>客服热线：400-800-1234<br><img src=\"cid:image001.png@01DD8077.A2CDDC10\"></p><div style=\"border-top:solid #E1E1E1 1.0pt\"><p><b>发件人:</b> Example 客服中心</p></div><p>收到的货物破损了</p></div>".as_bytes()),
        logo = b64(logo),
        name = base64::engine::general_purpose::STANDARD.encode("检测报告2026.pdf"),
        report = b64(report),
    )
    .into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_reach_the_card_and_the_customer_byte_for_byte() {
    files_both_ways(Db::Sqlite, 1).await;
}

/// Mails of several MiB (kept in 1 MiB chunks: the customer's mail, the card, the agent's
/// answer), on PostgreSQL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_of_several_megabytes_both_ways_on_postgresql() {
    files_both_ways(Db::Postgres, 25).await;
}

/// `scale`: file sizes × this (1: ~200 kB in all; 25: ~5 MB).
async fn files_both_ways(db: Db, scale: usize) {
    let agent = address(&unique("lina"));
    let mut app = spawn_app(AppOptions {
        db,
        extra: format!("[[agents]]\nname = \"李娜\"\naddress = \"{agent}\"\n[queue]\n"),
        ..Default::default()
    })
    .await;
    let customer = address(&unique("cust"));
    let f = Files {
        pdf: bytes(1, 60_000 * scale),
        photo: bytes(2, 80_000 * scale),
        report: bytes(3, 40_000 * scale),
        pasted: bytes(4, 20_000 * scale),
    };
    let raw = customer_mail_with_files(&customer, &app.support, &f);
    send_raw(&customer, &app.support, &raw).await;
    wait_for_mail(&customer, 1, 60).await;
    let t = TicketRef::parse(&app.store.tickets(1).await.expect("tickets")[0].ticket).expect("ref");

    // The card carries every file, byte for byte, with its decoded name.
    let card = card_of(&app, t).await;
    let on_card = |name: &str| {
        card.attachments
            .iter()
            .find(|a| a.name.as_deref() == Some(name))
            .map(|a| sha(&a.bytes))
    };
    assert_eq!(
        on_card("invoice.pdf"),
        Some(sha(&f.pdf)),
        "{:?}",
        card.attachments
    );
    assert_eq!(on_card("破损照片.png"), Some(sha(&f.photo)));
    assert_eq!(on_card("检测报告.pdf"), Some(sha(&f.report)));
    assert_eq!(on_card("pasted.jpg"), Some(sha(&f.pasted)));
    let fwd = card
        .attachments
        .iter()
        .find(|a| a.content_type == "message/rfc822")
        .expect("the forwarded mail, as a mail");
    assert!(String::from_utf8_lossy(&fwd.bytes).contains("Parcel damaged"));
    assert!(
        card.text.contains("附件"),
        "the card lists the files: {}",
        card.text
    );

    // `attachment get` gives the stored bytes back.
    let out = app.config.with_file_name("photo.png");
    supportd_cli(
        &app,
        &[
            "attachment",
            "get",
            &t.to_string(),
            "破损照片.png",
            "-o",
            out.to_str().expect("path"),
        ],
    );
    assert_eq!(sha(&std::fs::read(&out).expect("written")), sha(&f.photo));
    let shown = supportd_cli(&app, &["ticket", "show", &t.to_string()]);
    assert!(shown.contains("检测报告.pdf"), "{shown}");

    // The agent's report reaches the customer, the signature's logo does not.
    let to = card.reply_to.as_ref().expect("card Reply-To").to_string();
    let report = bytes(5, 150_000 * scale);
    send_raw(
        &agent,
        &to,
        &outlook_reply(&agent, &to, &card, &report, &bytes(6, 3_000)),
    )
    .await;
    let mails = wait_for_mail(&customer, 2, 60).await;
    let answer = mails
        .iter()
        .map(|m| parse(m))
        .find(|m| m.text.contains("检测报告见附件"))
        .expect("the reply");
    let names: Vec<_> = answer.attachments.iter().map(|a| a.name.clone()).collect();
    assert_eq!(
        names,
        [Some("检测报告2026.pdf".to_string())],
        "the report only, no logo"
    );
    assert_eq!(sha(&answer.attachments[0].bytes), sha(&report));
    assert!(!answer.text.contains("客服热线"), "{}", answer.text);
    // The acknowledgement and the survey never carry files.
    assert!(parse(&mails[0]).attachments.is_empty());
    if scale > 1 {
        // The customer's mail, the agent's and the answer sent were stored compressed (inline
        // when that fits in a chunk, else as compressed chunks): several MB each, a fraction
        // stored; the card's chunks went when it was appended.
        let (big, stored): (i64, i64) = sqlx::query_as(
            "SELECT COUNT(*), COALESCE(SUM(LENGTH(raw)), 0) FROM messages WHERE raw_blob IS NOT NULL",
        )
        .fetch_one(app.store.pool())
        .await
        .expect("count");
        let chunked: i64 = sqlx::query_scalar(
            "SELECT COALESCE(SUM(LENGTH(bytes)), 0) FROM raw_chunks WHERE blob NOT IN (SELECT raw_blob FROM messages WHERE raw_blob IS NOT NULL)",
        )
        .fetch_one(app.store.pool())
        .await
        .expect("orphans");
        assert!(big >= 3, "{big} large mails stored compressed or in chunks");
        assert_eq!(chunked, 0, "no chunks left without a mail");
        let _ = stored;
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_too_big_to_send_goes_back_to_the_agent() {
    let agent = address(&unique("lina"));
    let mut app = spawn_app(AppOptions {
        extra: format!("[[agents]]\nname = \"李娜\"\naddress = \"{agent}\"\n[queue]\n"),
        max_message_mb: 1,
        ..Default::default()
    })
    .await;
    let (customer, _) = app
        .mail_from_new_customer("报告", "请把检测报告发给我。")
        .await;
    wait_for_mail(&customer, 1, 60).await;
    let t = TicketRef::parse(&app.store.tickets(1).await.expect("tickets")[0].ticket).expect("ref");
    let card = card_of(&app, t).await;
    let to = card.reply_to.as_ref().expect("card Reply-To").to_string();
    send_raw(
        &agent,
        &to,
        &outlook_reply(&agent, &to, &card, &bytes(7, 2_000_000), &bytes(8, 100)),
    )
    .await;
    let back = parse(&wait_for_mail(&agent, 1, 60).await[0]);
    assert!(back.text.contains("超过"), "the reason: {}", back.text);
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    assert_eq!(
        read_folder(&customer, "INBOX").await.len(),
        1,
        "only the ack"
    );
    app.stop().await;
}
