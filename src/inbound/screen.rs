//! Stage `screen`: is this mail from a person, or from a machine? Pure.
//!
//! Verdicts: `human`, `auto_reply`, `bounce`, `list`, `bulk`, `loop`, `read_receipt`,
//! `calendar_reply`. Only `human` mail is ever answered automatically or counts as the
//! customer's own follow-up; everything else is still stored (nothing is dropped) with its
//! reasons.
//!
//! Judgement by weighing evidence. A form only machines produce decides alone (a
//! delivery-status or disposition-notification report, an iCalendar REPLY, RFC 3834
//! `Auto-Submitted`, a vendor's auto-reply header, a subject that *starts* with an auto-reply or
//! read-receipt prefix in any of the languages below — not after `Re:`). Weaker cues add up (a
//! null return path, a no-reply sender, bulk-mail headers, a body that declares itself
//! automatic, a help desk's receipt subject); a person's cues count against them (a greeting, a
//! question or request, mail to us alone), so a company gateway that stamps `Precedence: bulk`
//! on everyone's mail does not silence a customer. Exchange's `X-Auto-Response-Suppress`, set on
//! mail people write, weighs almost nothing. `machine_evidence` carries the weight found even
//! when it did not decide: intake adds the context only the store knows (the mail answers one
//! of our automatic mails).

use crate::domain::InboundMail;
use crate::domain::{ScreenVerdict, Verdict, LOOP_HEADER};

/// What screening needs to know about us.
#[derive(Debug, Clone)]
pub struct ScreenContext {
    /// Domain of our generated Message-IDs: the value of our loop header.
    pub message_id_domain: String,
    /// Our support address (its local part too: `support+anything@` is us).
    pub support_address: crate::domain::EmailAddress,
}

/// Evidence at or above this weight decides.
pub const DECIDES: u32 = 10;

/// A person's mail with evidence at or above this weight (but below [`DECIDES`]) is in doubt:
/// it opens a ticket, but gets no automatic acknowledgement.
pub const DOUBTFUL: u32 = 6;

const MACHINE_LOCALPARTS: &[&str] = &[
    "mailer-daemon",
    "postmaster",
    "mail-daemon",
    "mailerdaemon",
    "mdaemon",
];
const NOREPLY_LOCALPARTS: &[&str] = &[
    "noreply",
    "no-reply",
    "no_reply",
    "donotreply",
    "do-not-reply",
    "do_not_reply",
    "notifications",
    "notification",
    "notify",
    "alerts",
    "bounce",
    "bounces",
    "auto-reply",
    "autoreply",
    "system",
    "alertmanager",
    "quarantine",
    "monitoring",
    "shipment-tracking",
    "auto-confirm",
    "order-update",
];

/// Whether an address is a no-reply, system or mailer address (by its local part): mail to it
/// reaches nobody, or a machine.
pub fn is_noreply_address(a: &crate::domain::EmailAddress) -> bool {
    let local = a.local_part().to_ascii_lowercase();
    // `postmaster` is read by people (RFC 5321 §4.5.1), so it is not one.
    (MACHINE_LOCALPARTS.contains(&local.as_str()) && local != "postmaster")
        || NOREPLY_LOCALPARTS.contains(&local.as_str())
        || NOREPLY_INFIXES.iter().any(|n| local.contains(n))
}

/// Parts of a local part that make it a no-reply address wherever they stand.
const NOREPLY_INFIXES: &[&str] = &[
    "noreply",
    "no-reply",
    "no_reply",
    "donotreply",
    "do-not-reply",
];

/// Subject prefixes of auto-responders (normalised: lower case, full-width colon as `:`, a
/// leading bracket removed). Strong: only at the very start of the subject.
const AUTO_PREFIXES: &[&str] = &[
    "automatic reply:",
    "auto reply:",
    "auto-reply:",
    "autoreply:",
    "auto response:",
    "auto-response:",
    "autoresponse:",
    "automated response:",
    "automated reply:",
    "auto:",
    "out of office:",
    "out of office autoreply:",
    "out of the office:",
    "ooo:",
    "vacation reply:",
    "vacation:",
    "away:",
    "自动回复",
    "自動回覆",
    "自动回覆",
    "自動回复",
    "自动答复",
    "自動答覆",
    "自动应答",
    "自動応答",
    "自動返信",
    "休假自动回复",
    "假期自动回复",
    "자동 응답",
    "자동응답",
    "자동 회신",
    "자동회신",
    "자동 답장",
    "부재중",
    "automatische antwort:",
    "abwesenheitsnotiz:",
    "abwesenheitsnotiz",
    "réponse automatique:",
    "reponse automatique:",
    "absence du bureau:",
    "respuesta automática:",
    "respuesta automatica:",
    "risposta automatica:",
    "automatisch antwoord:",
    "resposta automática:",
    "resposta automatica:",
    "автоответ:",
    "автоматический ответ:",
    "нет на месте:",
    "不在のお知らせ",
    "不在通知",
    "休暇のお知らせ",
    "自動返信:",
    "auto response",
    "out of office reply:",
    "on vacation:",
    "ausser haus:",
    "außer haus:",
    "trả lời tự động:",
    "odpowiedź automatyczna:",
];

/// `X-Mailer` values (lower case, contained) of help desks and CRMs: their mail is often a
/// receipt or a notification (a person answering through one is offset by a person's cues).
const CRM_MAILERS: &[&str] = &[
    "bitrix",
    "kayako",
    "zendesk",
    "freshdesk",
    "osticket",
    "otrs",
    "znuny",
    "zammad",
    "request tracker",
    "hubspot",
    "salesforce",
    "zoho desk",
    "help scout",
    "helpscout",
    "servicenow",
    "jira",
    "udesk",
    "qiyu",
];

/// Texts of plain-text read receipts (lower case).
const READ_BODIES: &[&str] = &[
    "was read on",
    "has been read",
    "was read at",
    "was displayed",
    "message was read",
    "wurde gelesen",
    "a été lu",
    "fue leído",
    "è stato letto",
    "已被阅读",
    "已被閱讀",
    "已被阅",
    "已阅读",
    "已閱讀",
    "已被读取",
    "已被讀取",
    "已读取",
    "已讀取",
    "阅读了您的邮件",
    "閱讀了您的郵件",
    "被阅读。",
    "被閱讀。",
    "邮件收条",
    "郵件收條",
    "was received by:",
];

/// Subject prefixes of read receipts (normalised as above).
const RECEIPT_PREFIXES: &[&str] = &[
    "read:",
    "read receipt",
    "return receipt",
    "已读:",
    "已讀:",
    "已读回执",
    "已讀回執",
    "已阅读:",
    "已閱讀:",
    "阅读回执",
    "閱讀回條",
    "回执:",
    "gelesen:",
    "lu:",
    "leído:",
    "leido:",
    "letto:",
    "gelezen:",
    "lido:",
    "прочитано:",
    "읽음:",
    "開封済み:",
    "既読:",
    "not read:",
    "未读:",
];

/// Subject prefixes of calendar responses (normalised as above).
const CALENDAR_PREFIXES: &[&str] = &[
    "accepted:",
    "declined:",
    "tentative:",
    "tentatively accepted:",
    "已接受:",
    "已拒绝:",
    "已拒絕:",
    "暂定:",
    "暫定:",
    "已暂定:",
    "接受:",
    "拒绝:",
    "angenommen:",
    "abgelehnt:",
    "mit vorbehalt angenommen:",
    "accepté:",
    "refusé:",
    "provisoire:",
    "aceptado:",
    "rechazado:",
    "geaccepteerd:",
    "geweigerd:",
    "voorlopig:",
    "承諾:",
    "辞退:",
    "仮承諾:",
    "수락:",
    "거절:",
    "invitation accepted",
    "invitation declined",
];

/// Other help desks' and CRMs' receipts (normalised subject, anywhere).
const RECEIPT_SUBJECTS: &[&str] = &[
    "ticket received",
    "request received",
    "we've received your request",
    "we have received your request",
    "we received your request",
    "your request has been received",
    "your ticket has been created",
    "your request has been created",
    "a ticket has been created",
    "case created",
    "we've received your ticket",
    "we have received your ticket",
    "we got your request",
    "we've got your request",
    "ваше обращение зарегистрировано",
    "ваша заявка принята",
    "工单已受理",
    "工单已创建",
    "工單已受理",
    "已受理",
    "已收到您的",
    "已收到你的",
    "我们已收到",
    "我們已收到",
    "受付完了",
    "お問い合わせを受け付けました",
];

/// What auto-responders say of their author — away, on holiday, reading mail rarely — and
/// other machine wording that people also write (lower case, in the sender's own first 600
/// characters). Weak: a person's cues offset it. (What a mail says of itself is in
/// [`SELF_DECLARATIONS`].)
const AUTO_BODIES: &[&str] = &[
    "automatically generated message",
    "i am out of the office",
    "i am currently out of the office",
    "i'm out of the office",
    "i am away from the office",
    "i will be out of the office",
    "with limited access to email",
    "with limited access to e-mail",
    "i am on vacation until",
    "i'm on vacation until",
    "i am on holiday until",
    "i'm on holiday until",
    "i am at a conference until",
    "reading mail only occasionally",
    "i am travelling until",
    "i am traveling until",
    "estou de férias",
    "estoy de vacaciones",
    "je suis en congé",
    "ich bin im urlaub",
    "sono in ferie",
    "不在にしております",
    "不在にしています",
    "休暇中のため",
    "出張中のため",
    "я в отпуске",
    "в отпуске до",
    "вне офиса до",
    "送信専用のため",
    "返信しないようお願い",
    "请勿直接回复",
    "請勿直接回覆",
    "我正在休假",
    "我目前不在办公室",
    "我目前不在辦公室",
    "我现在休假中",
    "ich bin bis",
    "ich bin derzeit nicht im büro",
    "je suis absent",
    "estoy fuera de la oficina",
    "sono fuori ufficio",
    "ik ben afwezig",
    "自動送信",
];

/// What a mail says of itself ("This is an automatic reply", "此为系统邮件，请勿回复"): firm, and
/// deciding when it opens a sentence of the sender's own words.
const SELF_DECLARATIONS: &[&str] = &[
    "this is an automatic reply",
    "this is an automated reply",
    "this is an automatic message",
    "this is an automated message",
    "this is an automatically generated",
    "this message was automatically generated",
    "this email was automatically generated",
    "this is an auto-generated",
    "this is an auto reply",
    "this is an auto-reply",
    "this is an automated response",
    "this is an automatic response",
    "这是一封自动回复",
    "這是一封自動回覆",
    "本邮件为自动回复",
    "此邮件为自动回复",
    "本郵件為自動回覆",
    "此郵件為自動回覆",
    "此邮件由系统自动发送",
    "本邮件由系统自动发送",
    "此郵件由系統自動發送",
    "本メールは自動",
    "系统自动发送，请勿回复",
    "系统邮件，请勿回复",
    "please do not reply to this",
    "do not reply to this email",
    "do not reply to this message",
    "this is an automated response",
    "this is an automatic response",
    "配信専用",
    "本メールは送信専用",
];

/// Whether `phrase` occurs in `text` at the start of a sentence: at the start, or after a line
/// break or sentence (or greeting) punctuation and spaces.
fn opens_sentence(text: &str, phrase: &str) -> bool {
    text.match_indices(phrase).any(|(at, _)| {
        let before = text[..at].trim_end_matches([' ', '\t']);
        before.is_empty()
            || before.ends_with([
                '\n', '.', '!', '?', '。', '！', '？', ',', '，', ':', '：', ';', '；',
            ])
    })
}

/// Texts of other help desks' receipts (weaker than a body that says it is automatic).
const RECEIPT_BODIES: &[&str] = &[
    "thank you for contacting",
    "thanks for contacting",
    "your case number is",
    "your ticket number is",
    "your ticket id is",
    "ticket id:",
    "a ticket has been created",
    "we have received your request",
    "we've received your request",
    "we've received your ticket",
    "we have received your ticket",
    "您的工单号",
    "您的工單號",
    "工单编号",
    "工單編號",
    "我们已收到您的",
    "我們已收到您的",
    "您的邮件我们已经收到",
    "您的郵件我們已經收到",
    "created ticket #",
    "зарегистрировано в crm",
    "зарегистрировано под номером",
    "ваше обращение зарегистрировано",
    "ваша заявка принята",
    "お問い合わせを受け付けました",
    "您的工单已受理",
    "您的工單已受理",
    "您的工单已创建",
    "您的请求已受理",
    "您的請求已受理",
    "工单号",
    "工單號",
];

/// Name prefixes of headers mailing platforms and CRMs add (kept by `parse` for screening).
pub const VENDOR_PREFIXES: &[&str] = &[
    "x-edm",
    "x-campaign",
    "x-mailgun",
    "x-sg-",
    "x-ses-",
    "x-mc-user",
    "x-sendcloud",
    "x-linkedin",
    "x-notifications",
    "x-account-notification",
    "x-sfdc-",
    "x-hubspot",
    "x-fd-",
    "x-zendesk",
    "x-freshdesk",
    "x-mailchimp",
    "x-brevo",
    "x-sib-",
    "x-mailjet",
    "x-postmark",
    "x-pm-message-id",
    "x-aliyun-directmail",
    "x-bitrix",
    "x-hs-",
    "x-amazon-mail",
];

/// What mass mail says, usually at its end (lower case).
const BULK_BODIES: &[&str] = &[
    "unsubscribe",
    "退订",
    "退訂",
    "取消订阅",
    "取消訂閱",
    "您收到此邮件是因为",
    "您收到此郵件是因為",
    "you are receiving this email because",
    "you received this email because",
    "you're receiving this email because",
    "manage your email preferences",
    "update your email preferences",
    "abmelden",
    "se désabonner",
];

/// The last 600 characters of a mail's text (at most), lower case (where mass mail says how to
/// stop it).
fn mail_tail(mail: &InboundMail) -> String {
    let t = &mail.text;
    // 600 characters are at most 2,400 bytes: start there, on a character boundary.
    let mut from = t.len().saturating_sub(2_400);
    while !t.is_char_boundary(from) {
        from += 1;
    }
    let tail = &t[from..];
    let n = tail.chars().count();
    tail.chars()
        .skip(n.saturating_sub(600))
        .collect::<String>()
        .to_lowercase()
}

/// One automaton per phrase list (built once): a text is searched once, whatever the list's
/// length.
static AUTO_BODIES_AC: std::sync::LazyLock<aho_corasick::AhoCorasick> =
    std::sync::LazyLock::new(|| automaton(AUTO_BODIES));
static SELF_DECLARATIONS_AC: std::sync::LazyLock<aho_corasick::AhoCorasick> =
    std::sync::LazyLock::new(|| automaton(SELF_DECLARATIONS));
static RECEIPT_BODIES_AC: std::sync::LazyLock<aho_corasick::AhoCorasick> =
    std::sync::LazyLock::new(|| automaton(RECEIPT_BODIES));
static BULK_BODIES_AC: std::sync::LazyLock<aho_corasick::AhoCorasick> =
    std::sync::LazyLock::new(|| automaton(BULK_BODIES));

fn automaton(phrases: &[&str]) -> aho_corasick::AhoCorasick {
    aho_corasick::AhoCorasick::new(phrases).unwrap_or_else(|_| unreachable!("static phrases"))
}

/// The first phrase of `phrases` (in the list's order) that `text` contains, found with its
/// automaton `ac` in one pass.
fn first_of(
    ac: &aho_corasick::AhoCorasick,
    phrases: &[&'static str],
    text: &str,
) -> Option<&'static str> {
    ac.find_overlapping_iter(text)
        .map(|m| m.pattern().as_usize())
        .min()
        .and_then(|i| phrases.get(i).copied())
}

fn index_of(phrases: &[&str], p: &str) -> usize {
    phrases.iter().position(|x| *x == p).unwrap_or(usize::MAX)
}

/// Headers mass senders and their platforms stamp.
const BULK_HEADERS: &[&str] = &[
    "list-unsubscribe",
    "x-campaign",
    "x-campaignid",
    "x-mailgun-sid",
    "x-sg-eid",
    "x-ses-outgoing",
    "x-mc-user",
    "x-mailchimp-campaign",
    "x-sendcloud-id",
    "x-mailer-lid",
    "x-rpcampaign",
];

/// One piece of evidence.
struct Cue {
    weight: u32,
    kind: Verdict,
    why: String,
}

fn cue(weight: u32, kind: Verdict, why: impl Into<String>) -> Cue {
    Cue {
        weight,
        kind,
        why: why.into(),
    }
}

/// Judges `mail`; `new_text` is its text without quoted history and signature (the reply-text
/// stage's), where a body's own words are looked for: a person quoting our acknowledgement
/// quotes a receipt.
pub fn screen(mail: &InboundMail, new_text: &str, ctx: &ScreenContext) -> ScreenVerdict {
    // Loop: our own mail (or a copy of it) coming back.
    if let Some(v) = mail.header(&LOOP_HEADER.to_ascii_lowercase()) {
        return if v.trim().eq_ignore_ascii_case(&ctx.message_id_domain) {
            ScreenVerdict::new(Verdict::Loop, format!("our own {LOOP_HEADER} header"))
        } else {
            ScreenVerdict::new(
                Verdict::AutoReply,
                format!("another help desk's {LOOP_HEADER} header"),
            )
        };
    }
    // A Message-ID in our domain proves nothing (colleagues' clients write them too): intake
    // knows which Message-IDs are mails supportd sent, and calls those loops.
    if let Some(from) = &mail.from {
        if is_us(from, &ctx.support_address) {
            return ScreenVerdict::new(Verdict::Loop, "sent from our own support address");
        }
    }
    let (mut cues, declared) = machine_cues(mail, new_text);
    let strongest = cues.iter().map(|c| c.weight).max().unwrap_or(0);
    let total: u32 = cues.iter().map(|c| c.weight).sum();
    let human = if strongest >= DECIDES {
        0
    } else {
        human_cues(mail, new_text, declared, ctx)
    };
    // A person's cues offset the weak and bulk cues, never a text or subject that declares
    // itself automatic.
    let firm = cues
        .iter()
        .map(|c| c.weight)
        .filter(|w| *w >= 8)
        .max()
        .unwrap_or(0);
    let weight = total.saturating_sub(human).max(firm);
    // The kind: the strongest cue's.
    cues.sort_by_key(|c| std::cmp::Reverse(c.weight));
    let reason = cues
        .iter()
        .map(|c| c.why.as_str())
        .collect::<Vec<_>>()
        .join(" + ");
    let mut v = if weight >= DECIDES {
        ScreenVerdict::new(cues[0].kind, reason)
    } else if cues.is_empty() {
        ScreenVerdict::new(Verdict::Human, "no machine signals")
    } else {
        ScreenVerdict::new(
            Verdict::Human,
            format!("a person's mail: {reason} (weight {total}) against {human} of a person's"),
        )
    };
    v.machine_evidence = weight;
    v
}

/// Everything in the mail that says a machine wrote it, and the phrase its text declares
/// itself with (if any).
fn machine_cues<'p>(mail: &InboundMail, new_text: &str) -> (Vec<Cue>, Option<&'p str>) {
    let mut c = Vec::new();
    let subject = normalise(&mail.subject);
    let from_local = mail
        .from
        .as_ref()
        .map(|f| f.local_part().to_ascii_lowercase())
        .unwrap_or_default();
    let machine_sender = MACHINE_LOCALPARTS.contains(&from_local.as_str());
    let null_sender = mail.return_path.as_deref() == Some("");

    // Reports: the forms decide.
    match mail.report_type.as_deref() {
        Some("delivery-status") if mail.content_type == "multipart/report" => c.push(cue(
            20,
            Verdict::Bounce,
            "multipart/report; report-type=delivery-status",
        )),
        Some("disposition-notification") => c.push(cue(
            20,
            Verdict::ReadReceipt,
            "a read receipt (report-type=disposition-notification)",
        )),
        _ => {}
    }
    if mail.header("x-failed-recipients").is_some() {
        c.push(cue(20, Verdict::Bounce, "X-Failed-Recipients header"));
    }
    if mail.calendar_method.as_deref() == Some("REPLY") {
        c.push(cue(20, Verdict::CalendarReply, "an iCalendar METHOD:REPLY"));
    }
    let bounce_subject = starts_with_any(&subject, BOUNCE_SUBJECTS);
    if machine_sender && (null_sender || bounce_subject || mail.bounced_message_id.is_some()) {
        c.push(cue(
            20,
            Verdict::Bounce,
            format!("from {from_local} with a bounce form"),
        ));
    } else if null_sender && bounce_subject {
        c.push(cue(
            20,
            Verdict::Bounce,
            "null return path and a bounce subject",
        ));
    } else if bounce_subject && mail.bounced_message_id.is_some() {
        c.push(cue(
            12,
            Verdict::Bounce,
            "a bounce subject returning a mail",
        ));
    }

    // RFC 3834 and the vendors' headers.
    if let Some(v) = mail.header("auto-submitted") {
        let v = v.trim().to_ascii_lowercase();
        if !v.is_empty() && v != "no" {
            c.push(cue(20, Verdict::AutoReply, format!("Auto-Submitted: {v}")));
        }
    }
    for h in [
        "x-autoreply",
        "x-autorespond",
        "x-autoresponder",
        "x-autoreply-from",
        "x-mail-autoreply",
        "x-autogenerated",
        "x-auto-reply",
        "x-autoresponse",
    ] {
        if let Some(v) = mail.header(h) {
            if !v.trim().eq_ignore_ascii_case("no") && !v.trim().eq_ignore_ascii_case("false") {
                c.push(cue(20, Verdict::AutoReply, format!("{h} header")));
            }
        }
    }
    if mail
        .header("x-ms-exchange-generated-message-source")
        .is_some()
        || mail.header("x-ms-exchange-inbox-rules-loop").is_some()
    {
        c.push(cue(20, Verdict::AutoReply, "generated by an Exchange rule"));
    }
    match mail
        .header("precedence")
        .map(|p| p.trim().to_ascii_lowercase())
        .as_deref()
    {
        Some("auto_reply") => c.push(cue(20, Verdict::AutoReply, "Precedence: auto_reply")),
        Some("list") => c.push(cue(8, Verdict::List, "Precedence: list")),
        Some(p @ ("bulk" | "junk")) => c.push(cue(7, Verdict::Bulk, format!("Precedence: {p}"))),
        _ => {}
    }
    if mail.header("list-id").is_some() || mail.header("list-post").is_some() {
        c.push(cue(20, Verdict::List, "List-Id/List-Post header"));
    }
    let bulk: Vec<&str> = BULK_HEADERS
        .iter()
        .copied()
        .filter(|h| mail.header(h).is_some())
        .collect();
    if !bulk.is_empty() {
        c.push(cue(
            (5 * bulk.len() as u32).min(10),
            Verdict::Bulk,
            format!("mass-mail headers ({})", bulk.join(", ")),
        ));
    }

    // Subjects: a prefix counts only as a prefix — followed by its colon (or its closing
    // bracket), at the very start: "自动回复设置不生效" is a person's question.
    if let Some(p) = AUTO_PREFIXES.iter().find(|p| has_prefix(&subject, p)) {
        c.push(cue(
            20,
            Verdict::AutoReply,
            format!("subject starts with \"{p}\""),
        ));
    } else if let Some(p) = RECEIPT_PREFIXES.iter().find(|p| has_prefix(&subject, p)) {
        let form = mail.report_type.is_some() || mail.receipt_for.is_some();
        c.push(cue(
            if form { 20 } else { 8 },
            Verdict::ReadReceipt,
            format!("a read receipt's subject (\"{p}\")"),
        ));
        // A plain-text receipt says so ("was read on …", "已被阅读"); a person's "Read: the
        // manual, still stuck" asks something instead.
        let text = new_text.to_lowercase();
        if let Some(b) = READ_BODIES.iter().find(|b| text.contains(*b)) {
            c.push(cue(
                4,
                Verdict::ReadReceipt,
                format!("a read receipt's text (\"{b}\")"),
            ));
        }
    } else if let Some(p) = CALENDAR_PREFIXES.iter().find(|p| has_prefix(&subject, p)) {
        let with_calendar = mail.calendar_method.is_some()
            || mail
                .attachments
                .iter()
                .any(|a| a.content_type.eq_ignore_ascii_case("text/calendar"));
        c.push(cue(
            if with_calendar { 20 } else { 5 },
            Verdict::CalendarReply,
            format!("a calendar response's subject (\"{p}\")"),
        ));
    }
    // After "Re:" it is a person answering one (our own acknowledgement's subject reads
    // "我们已收到您的来信"): nothing.
    let replying = strip_reply_prefixes(&subject) != subject;
    if let Some(p) = RECEIPT_SUBJECTS
        .iter()
        .find(|p| !replying && subject.contains(*p))
    {
        c.push(cue(
            8,
            Verdict::AutoReply,
            format!("a help desk's receipt (\"{p}\")"),
        ));
    }
    if !replying && ticket_number_subject(&subject) {
        c.push(cue(
            4,
            Verdict::AutoReply,
            "a help desk's ticket-number subject",
        ));
    }

    // Senders and bodies.
    if null_sender {
        // RFC 5321 §4.5.5: only notifications use the null reverse-path; a person's client never
        // does. Firm, but it takes the form (a bounce subject, a report) to decide.
        c.push(cue(8, Verdict::Bounce, "null return path"));
    }
    if let Some(v) = mail.header("x-loop") {
        // procmail/Sieve responders and other help desks mark their mail against loops.
        c.push(cue(
            4,
            Verdict::AutoReply,
            format!("X-Loop header ({})", v.trim()),
        ));
    }
    if let Some(m) = mail.header("x-mailer").map(|m| m.to_ascii_lowercase()) {
        if let Some(crm) = CRM_MAILERS.iter().find(|c| m.contains(*c)) {
            c.push(cue(
                4,
                Verdict::AutoReply,
                format!("sent by a help desk or CRM ({crm})"),
            ));
        }
    }
    if machine_sender {
        c.push(cue(6, Verdict::Bounce, format!("{from_local} sender")));
    } else if NOREPLY_LOCALPARTS.contains(&from_local.as_str())
        || NOREPLY_INFIXES.iter().any(|n| from_local.contains(n))
    {
        c.push(cue(6, Verdict::AutoReply, "a no-reply sender"));
    }
    let head = own_words(new_text);
    let mut declared = None;
    let auto = first_of(&SELF_DECLARATIONS_AC, SELF_DECLARATIONS, &head)
        .or_else(|| first_of(&AUTO_BODIES_AC, AUTO_BODIES, &head));
    if let Some(p) = auto {
        // "This is an automatic reply" opening a sentence of the sender's own words is the mail
        // speaking of itself and decides; inside a sentence ("the invoice says this is an
        // automatically generated message, but …") it is a person quoting.
        // Saying one is away ("I am out of the office until …") is what responders say, and
        // what people say before a question: a person's cues offset it.
        let weight = match (SELF_DECLARATIONS.contains(&p), opens_sentence(&head, p)) {
            (true, true) => DECIDES,
            (true, false) => 8,
            (false, _) => 6,
        };
        c.push(cue(
            weight,
            Verdict::AutoReply,
            format!("the text says \"{p}\""),
        ));
        declared = Some(p);
    } else if let Some(p) = first_of(&RECEIPT_BODIES_AC, RECEIPT_BODIES, &head) {
        c.push(cue(
            5,
            Verdict::AutoReply,
            format!("a receipt's text (\"{p}\")"),
        ));
        declared = Some(p);
    }
    let tail = mail_tail(mail);
    let bulk = match (
        first_of(&BULK_BODIES_AC, BULK_BODIES, &head),
        first_of(&BULK_BODIES_AC, BULK_BODIES, &tail),
    ) {
        // The earlier in the list, as one search over both would say.
        (Some(a), Some(b)) => Some(if index_of(BULK_BODIES, a) <= index_of(BULK_BODIES, b) {
            a
        } else {
            b
        }),
        (a, b) => a.or(b),
    };
    if let Some(p) = bulk {
        c.push(cue(
            5,
            Verdict::Bulk,
            format!("a mass mail's text (\"{p}\")"),
        ));
    }
    if mail.header("feedback-id").is_some() {
        // Gmail's feedback loop header: bulk senders set it, and so does QQ Mail on everything.
        c.push(cue(3, Verdict::Bulk, "Feedback-ID header"));
    }
    if let Some(rp) = mail.return_path.as_deref().filter(|r| !r.is_empty()) {
        let (local, domain) = rp.rsplit_once('@').unwrap_or((rp, ""));
        let bounce_domain = domain.starts_with("bounce") || domain.contains(".bounce");
        let bounce_local = local.contains("bounce")
            || (local.len() >= 24 && local.chars().filter(|c| c.is_ascii_digit()).count() >= 6);
        if bounce_domain || bounce_local {
            c.push(cue(
                4,
                Verdict::Bulk,
                "a bulk sender's bounce-handling return path",
            ));
        }
    }
    let vendor: Vec<&str> = mail
        .screen_headers
        .iter()
        .map(|(n, _)| n.as_str())
        .filter(|n| VENDOR_PREFIXES.iter().any(|p| n.starts_with(p)))
        .collect();
    if let Some(v) = vendor.first() {
        c.push(cue(
            4,
            Verdict::Bulk,
            format!("a mailing platform's header ({v})"),
        ));
    }
    if let Some(v) = mail.header("x-auto-response-suppress") {
        let v = v.to_ascii_lowercase();
        if v.contains("all") || v.contains("oof") || v.contains("autoreply") {
            // Exchange sets it on mail people write too: almost nothing on its own.
            c.push(cue(1, Verdict::AutoReply, "X-Auto-Response-Suppress"));
        }
    }
    (c, declared)
}

/// The first 600 characters of the sender's own words, lower case: not what they forward
/// (after "Begin forwarded message:", "转发邮件信息", "Original Message") and not what they
/// quote (lines inside quotation marks or indented), where a person shows us a machine's text.
fn own_words(new_text: &str) -> String {
    const FORWARDS: &[&str] = &[
        "begin forwarded message",
        "forwarded message",
        "original message",
        "转发邮件信息",
        "轉寄郵件資訊",
        "原始邮件",
        "原始郵件",
        "weitergeleitete nachricht",
        "message transféré",
    ];
    let mut out = String::new();
    let mut quoted = false;
    for line in new_text.lines() {
        let l = line.trim().to_lowercase();
        if FORWARDS.iter().any(|f| l.contains(f)) {
            break;
        }
        let opens = l.starts_with(['"', '“', '「', '『', '\'']);
        if opens || line.starts_with("    ") || line.starts_with('\t') {
            quoted = true;
        } else if !l.is_empty() && !quoted {
            out.push_str(&l);
            out.push('\n');
        }
        // A quotation ends with its closing mark (or a blank line).
        if l.is_empty() || l.ends_with(['"', '”', '」', '』', '\'']) {
            quoted = false;
        }
        if out.len() > 1800 {
            break;
        }
    }
    out.chars().take(600).collect()
}

/// `subject` starts with `prefix` used as a prefix: followed by its colon (or already ending
/// with one, or a closing bracket turned into one by [`normalise`]).
fn has_prefix(subject: &str, prefix: &str) -> bool {
    if let Some(bare) = prefix.strip_suffix(':') {
        // "Auto Response", "Out of Office": the whole subject is the phrase.
        return subject.starts_with(prefix) || subject.trim() == bare;
    }
    subject
        .strip_prefix(prefix)
        .is_some_and(|rest| rest.trim().is_empty() || rest.trim_start().starts_with(':'))
}

/// What says a person wrote it, as a weight against the machine's cues.
fn human_cues(
    mail: &InboundMail,
    new_text: &str,
    declared: Option<&str>,
    ctx: &ScreenContext,
) -> u32 {
    let text = new_text.trim_start();
    let mut head: String = text.chars().take(400).collect::<String>().to_lowercase();
    if let Some(p) = declared {
        // "请勿直接回复" is not a request.
        head = head.replace(p, "");
    }
    for machine in [
        "请勿回复",
        "请勿直接回复",
        "請勿回覆",
        "請勿直接回覆",
        "do not reply",
        "please do not",
        "请点此退订",
        "請點此退訂",
        "退订",
        "退訂",
    ] {
        head = head.replace(machine, "");
    }
    let mut w = 0;
    const GREETINGS: &[&str] = &[
        "您好",
        "你好",
        "尊敬的",
        "hi ",
        "hi,",
        "hello",
        "dear ",
        "good morning",
        "good afternoon",
        "各位",
        "老师",
        "hallo",
        "bonjour",
        "hola",
    ];
    if GREETINGS.iter().any(|g| head.starts_with(g)) {
        w += 3;
    }
    const ASKS: &[&str] = &[
        "?",
        "？",
        "请",
        "請",
        "麻烦",
        "麻煩",
        "帮忙",
        "幫忙",
        "please",
        "could you",
        "can you",
        "would you",
        "why",
        "为什么",
        "為什麼",
        "退款",
        "投诉",
        "投訴",
        "问题",
        "問題",
        "怎么",
        "怎麼",
        "help",
        "refund",
        "not received",
        "haven't received",
        "have not received",
        "complain",
        "urgent",
        "asap",
        "没收到",
        "沒收到",
        "还没",
        "還沒",
        "尽快",
        "盡快",
    ];
    if ASKS.iter().any(|a| head.contains(a)) {
        w += 3;
    }
    let to_us_alone = mail.to.len() == 1
        && mail.cc.is_empty()
        && mail.to.iter().all(|a| is_us(a, &ctx.support_address));
    if to_us_alone && mail.from_name.is_some() {
        w += 2;
    }
    w
}

/// A subject like "[Ticket #12345]", "[#ABC-123]", "Case 00012345:", "(工单号 2026…)".
fn ticket_number_subject(s: &str) -> bool {
    static RE: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(
            r"(?i)^\s*[\[【(（]?\s*(ticket|case|request|incident|req|sr|工单|工單|服务单|服務單)\s*(#|no\.?|number|号|號|编号|編號)?\s*[:：]?\s*#?[a-z]{0,6}-?\d{3,}",
        )
        .expect("static regex")
    });
    RE.is_match(s)
}

/// Lower case, full-width colons as `:`, no space before a colon, a leading bracket (`[`, `【`)
/// around the first word removed.
fn normalise(subject: &str) -> String {
    let s = subject
        .trim()
        .to_lowercase()
        .replace('：', ":")
        .replace(" :", ":");
    let s = s.trim_start_matches(['[', '【', '(', '（', '<', '«']);
    // "【自动回复】…": the closing bracket ends the prefix.
    s.replacen(['】', ']'], ":", 1).trim_start().to_string()
}

const BOUNCE_SUBJECTS: &[&str] = &[
    "undelivered mail returned to sender",
    "delivery status notification",
    "mail delivery failed",
    "undeliverable",
    "delivery failure",
    "returned mail",
    "failure notice",
    "permanent delivery failure",
    "delivery notification",
    "nondeliverable",
    "non-delivery",
    "message not delivered",
    "mail system error",
    "undeliverable mail",
    "退信",
    "系统退信",
    "投递失败",
    "無法投遞",
    "郵件無法傳遞",
];

fn is_us(addr: &crate::domain::EmailAddress, support: &crate::domain::EmailAddress) -> bool {
    if addr.domain() != support.domain() {
        return false;
    }
    let local = addr.local_part();
    let base = local.split('+').next().unwrap_or(local);
    base == support.local_part()
}

fn starts_with_any(s: &str, prefixes: &[&str]) -> bool {
    let s = s.trim_start();
    prefixes.iter().any(|p| s.starts_with(p))
}

/// "Re: ", "回复：", "答复: " and friends.
fn strip_reply_prefixes(s: &str) -> &str {
    let mut s = s.trim_start();
    loop {
        let before = s;
        for p in [
            "re:",
            "re：",
            "aw:",
            "回复:",
            "回复：",
            "答复:",
            "答复：",
            "回覆:",
            "回覆：",
        ] {
            if let Some(rest) = s.strip_prefix(p) {
                s = rest.trim_start();
            }
        }
        if s == before {
            return s;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::EmailAddress;
    use crate::inbound::parse::parse;

    fn ctx() -> ScreenContext {
        ScreenContext {
            message_id_domain: "example.test".into(),
            support_address: EmailAddress::parse("support@example.test").expect("addr"),
        }
    }

    fn verdict(raw: &str) -> Verdict {
        let m = parse(raw.as_bytes());
        screen(&m, &crate::inbound::reply_text::extract(&m.text), &ctx()).verdict
    }

    #[test]
    fn a_plain_customer_mail_is_human() {
        assert_eq!(
            verdict("From: a@qq.com\r\nMessage-ID: <1@qq.com>\r\nSubject: 退款\r\n\r\n你好"),
            Verdict::Human
        );
    }

    #[test]
    fn rfc3834_auto_submitted_is_an_auto_reply() {
        assert_eq!(
            verdict("From: a@b.c\r\nMessage-ID: <1@b.c>\r\nAuto-Submitted: auto-replied\r\nSubject: hi\r\n\r\nx"),
            Verdict::AutoReply
        );
        assert_eq!(
            verdict(
                "From: a@b.c\r\nMessage-ID: <1@b.c>\r\nAuto-Submitted: no\r\nSubject: hi\r\n\r\nx"
            ),
            Verdict::Human
        );
    }

    #[test]
    fn exchange_out_of_office_is_an_auto_reply() {
        let raw = "From: Zhang Wei <zhang@corp.example>\r\nMessage-ID: <2@corp.example>\r\nSubject: Automatic reply: your request\r\nX-Auto-Response-Suppress: All\r\n\r\nI am out of office.";
        assert_eq!(verdict(raw), Verdict::AutoReply);
    }

    #[test]
    fn qq_chinese_auto_reply_with_a_vendor_header() {
        let raw = "From: a@qq.com\r\nMessage-ID: <3@qq.com>\r\nSubject: =?UTF-8?B?6Ieq5Yqo5Zue5aSNOiDmgqjlpb0=?=\r\nX-Autoreply: yes\r\n\r\n我正在休假";
        assert_eq!(verdict(raw), Verdict::AutoReply);
    }

    #[test]
    fn a_complaint_quoting_an_automatic_reply_subject_is_human() {
        let raw = "From: angry@163.com\r\nMessage-ID: <4@163.com>\r\nSubject: Re: Automatic reply: my broken order\r\n\r\nYour auto reply is useless, I want a refund now.";
        assert_eq!(verdict(raw), Verdict::Human);
    }

    #[test]
    fn a_postfix_bounce_is_a_bounce() {
        let raw = "Return-Path: <>\r\nFrom: MAILER-DAEMON@example.test (Mail Delivery System)\r\nMessage-ID: <5@example.org>\r\nSubject: Undelivered Mail Returned to Sender\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nfailed\r\n--b--\r\n";
        assert_eq!(verdict(raw), Verdict::Bounce);
    }

    #[test]
    fn lists_and_bulk_are_recognised() {
        assert_eq!(
            verdict("From: a@b.c\r\nMessage-ID: <6@b.c>\r\nList-Id: <dev.lists.b.c>\r\nSubject: x\r\n\r\nx"),
            Verdict::List
        );
        assert_eq!(
            verdict("From: news@shop.example\r\nMessage-ID: <7@b.c>\r\nPrecedence: bulk\r\nList-Unsubscribe: <mailto:u@shop.example>\r\nSubject: sale\r\n\r\nx"),
            Verdict::Bulk
        );
        assert_eq!(
            verdict("From: news@shop.example\r\nMessage-ID: <8@b.c>\r\nList-Unsubscribe: <mailto:u@shop.example>\r\nX-SES-Outgoing: 2026.11.30\r\nSubject: sale\r\n\r\nx"),
            Verdict::Bulk
        );
        // A company gateway that stamps every mail: a person's greeting and question win.
        assert_eq!(
            verdict("From: 张伟 <zhang@corp.example>\r\nTo: support@example.test\r\nMessage-ID: <9@b.c>\r\nPrecedence: bulk\r\nSubject: 发票\r\n\r\n您好，请问发票什么时候能开好？"),
            Verdict::Human
        );
    }

    fn mail(subject: &str, headers: &str, body: &str) -> String {
        format!("From: Someone <someone@corp.example>\r\nTo: support@example.test\r\nMessage-ID: <m1@corp.example>\r\nSubject: {subject}\r\n{headers}Content-Type: text/plain; charset=utf-8\r\n\r\n{body}")
    }

    /// One mail per vendor form, each next to the person's mail that looks like it.
    #[test]
    fn each_machine_form_and_its_human_look_alike() {
        let away = "I am out of the office until 7 December with limited access to e-mail.";
        let machine = [
            // Auto-reply prefixes at the start of the subject, in many languages and forms.
            mail("Automatische Antwort: Ihre Anfrage", "", "Ich bin bis 7.12. nicht im Büro."),
            mail("Réponse automatique : votre demande", "", "Je suis absent jusqu'au 7 décembre."),
            mail("Respuesta automática: su solicitud", "", "Estoy fuera de la oficina."),
            mail("Risposta automatica: la sua richiesta", "", "Sono fuori ufficio."),
            mail("Automatisch antwoord: uw vraag", "", "Ik ben afwezig tot 7 december."),
            mail("Resposta automática: seu pedido", "", "Estou fora do escritório."),
            mail("自動応答: お問い合わせ", "", "ただいま休暇中です。"),
            mail("자동 회신: 문의", "", "부재중입니다."),
            mail("自动回复：您的来信", "", "您好，我正在休假，回来后尽快回复您。"),
            mail("自動回覆：您的來信", "", "您好，我正在休假。"),
            mail("【自动回复】退款申请", "", "您的邮件已收到。"),
            mail("Out of Office AutoReply: refund", "", away),
            mail("Automated Response: refund", "", away),
            mail("Auto: refund", "", away),
            // Header variants and vendor headers, with a subject a person could write.
            mail("Re: refund", "X-Autoresponder: yes\r\n", away),
            mail("Re: refund", "X-Autoreply-From: someone@corp.example\r\n", away),
            mail("Re: refund", "X-Mail-Autoreply: yes\r\n", away),
            mail("Re: refund", "X-Autogenerated: Reply\r\n", away),
            // Bodies that declare themselves.
            mail("Re: 退款", "", "这是一封自动回复邮件。您好，您的来信已收到，我会尽快处理。"),
            mail("Re: refund", "", "This is an automatically generated message. Please do not reply."),
            // Other help desks' receipts.
            mail("Ticket Received - 12345 - refund", "", "Thank you for contacting us. A member of our team will respond shortly."),
            mail("[Ticket #8841] We received your request", "", "Your request has been received."),
            mail("工单已受理：退款", "", "您的工单已受理，工单号 2026-8841。"),
            // Read receipts: RFC 8098 and plain-text forms.
            "From: a@corp.example\r\nMessage-ID: <r1@corp.example>\r\nSubject: Read: refund\r\nContent-Type: multipart/report; report-type=disposition-notification; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nYour message was read.\r\n--b\r\nContent-Type: message/disposition-notification\r\n\r\nOriginal-Message-ID: <ack1@example.test>\r\nDisposition: manual-action/MDN-sent-manually; displayed\r\n--b--\r\n".to_string(),
            mail("已读: 退款", "", "您发送的邮件已被阅读。"),
            mail("已讀: 退款", "", "您的郵件已被閱讀。"),
            mail("Gelesen: Ihre Anfrage", "", "Ihre Nachricht wurde gelesen."),
            // A calendar reply.
            "From: a@corp.example\r\nMessage-ID: <c1@corp.example>\r\nSubject: Accepted: Call about refund\r\nContent-Type: text/calendar; method=REPLY; charset=utf-8\r\n\r\nBEGIN:VCALENDAR\r\nMETHOD:REPLY\r\nEND:VCALENDAR\r\n".to_string(),
        ];
        for raw in &machine {
            assert_ne!(verdict(raw), Verdict::Human, "taken for a person:\n{raw}");
        }
        let human = [
            // Replies and forwards of automatic mail, and subjects that only mention it.
            mail("Re: Automatische Antwort: Ihre Anfrage", "", "Danke, ich warte dann. Können Sie mir sagen, wann mein Paket kommt?"),
            mail("回复：自动回复：您的来信", "", "你好，我还是没收到退款，请帮忙看看。"),
            mail("Auto reply rule stopped working", "", "Hi, the auto reply rule in my mailbox stopped working after the update. Can you help?"),
            mail("FW: Undeliverable: invoice", "", "Hello, my mail to your billing address bounced, see below. What address should I use?"),
            mail("Question about the automatically generated invoice", "", "Hi, the invoice says this is an automatically generated message, but the amount is wrong. Can you fix it?"),
            mail("工单已受理了吗？", "", "我上周提交的退款申请，工单受理了吗？"),
            mail("Read: the manual, still stuck", "", "Hi, I read the manual twice but the device still will not pair. What should I do?"),
            // Exchange marks people's mail with this; alone it proves nothing.
            mail("退款", "X-Auto-Response-Suppress: All\r\n", "您好，我的退款什么时候到账？"),
            mail("refund", "Auto-Submitted: no\r\nDisposition-Notification-To: someone@corp.example\r\n", "Hi, where is my refund?"),
        ];
        for raw in &human {
            assert_eq!(
                verdict(raw),
                Verdict::Human,
                "taken for machine mail:\n{raw}"
            );
        }
    }

    #[test]
    fn a_colleague_at_the_support_domain_is_a_person() {
        // Thunderbird, Outlook, Apple Mail write Message-IDs in the sender's own domain.
        assert_eq!(
            verdict("From: li@example.test\r\nMessage-ID: <abc@example.test>\r\nSubject: 打印机坏了\r\n\r\n帮忙看看"),
            Verdict::Human
        );
    }

    #[test]
    fn our_own_mail_coming_back_is_a_loop() {
        assert_eq!(
            verdict("From: x@y.z\r\nMessage-ID: <abc@y.z>\r\nX-Supportd-Loop: example.test\r\nSubject: x\r\n\r\nx"),
            Verdict::Loop
        );
        assert_eq!(
            verdict("From: support+T000001.aa@example.test\r\nMessage-ID: <abc@y.z>\r\nSubject: x\r\n\r\nx"),
            Verdict::Loop
        );
    }
}
