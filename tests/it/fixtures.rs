//! The pure stages (what `supportd inspect` prints) on the real-looking mails in tests/fixtures.

use supportd::domain::EmailAddress;
use supportd::inbound::analyze::Analyzer;
use supportd::inbound::thread::ReplySigner;

fn analyzer() -> Analyzer {
    Analyzer::new(
        EmailAddress::parse("support@example.test").expect("address"),
        "example.test".into(),
        ReplySigner::new(Default::default(), Vec::new()),
        std::sync::Arc::new(supportd::inbound::classify::Classifier::builtin()),
    )
}

fn fixture(name: &str) -> Vec<u8> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn every_fixture_is_understood() {
    // file, verdict, language, ticket tag, reply text
    let cases: &[(&str, &str, &str, Option<&str>, &str)] = &[
        ("qq_gbk_refund.eml", "human", "zh-Hans", None, "您好：\n我在11月15日申请的退款（订单号 2026111500123）到现在还没有到账，请帮忙查询一下进度。\n谢谢！\n张三"),
        ("foxmail_reply_original.eml", "human", "zh-Hans", Some("T-000042"), "问题还是没有解决，打印机仍然显示离线。"),
        ("outlook_en_reply.eml", "human", "en", Some("T-000007"), "Thanks, I also need the October invoice.\n\nBob"),
        ("gmail_html_only_en.eml", "human", "en", None, "Hello,\n\nThe app crashes every time I open it since the last update. I am on Android 15.\n\nCarol"),
        ("big5_inquiry.eml", "human", "zh-Hant", None, "您好，請問貴公司的產品保固期是多久？謝謝。"),
        ("iphone_zh_reply.eml", "human", "zh-Hans", Some("T-000055"), "好的，明天上午在家，可以上门。"),
        ("exchange_out_of_office.eml", "auto_reply", "zh-Hans", Some("T-000099"), "我正在休假，11月30日返回。紧急事务请联系我的同事。"),
        ("postfix_bounce.eml", "bounce", "en", None, ""),
        ("foxmail_8bit_gbk_headers.eml", "human", "zh-Hans", None, "您好：\n上周开的发票抬头写成了个人，应该是公司名称“北京星河科技有限公司”，请帮忙重新开具。\n谢谢！\n李明"),
        ("split_encoded_words.eml", "human", "zh-Hans", None, "订单号 2026112001，下单五天了还没发货。"),
    ];
    let a = analyzer();
    for (file, verdict, lang, tag, reply) in cases {
        let r = a.analyze(&fixture(file));
        assert_eq!(
            r.screen.verdict.as_str(),
            *verdict,
            "{file}: {}",
            r.screen.reason
        );
        assert_eq!(r.classification.language.code(), *lang, "{file}");
        assert_eq!(
            r.hints.tag.map(|t| t.to_string()).as_deref(),
            *tag,
            "{file}"
        );
        if !reply.is_empty() {
            assert_eq!(r.reply_text, *reply, "{file}");
        }
        assert!(r.mail.problems.is_empty(), "{file}: {:?}", r.mail.problems);
        assert!(
            !r.mail.subject.contains('\u{FFFD}'),
            "{file}: {}",
            r.mail.subject
        );
    }
    let fox = a.analyze(&fixture("foxmail_8bit_gbk_headers.eml"));
    assert_eq!(fox.mail.subject, "发票抬头开错了，能重开吗");
    assert_eq!(fox.mail.from_name.as_deref(), Some("李明"));
    assert_eq!(
        a.analyze(&fixture("split_encoded_words.eml")).mail.subject,
        "订单还没发货，请帮忙查一下"
    );
}
