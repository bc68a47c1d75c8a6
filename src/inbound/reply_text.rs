//! Reply-text extraction (part of the `parse` → `thread` middle): from a mail's plain text, the new
//! text its sender wrote, without quoted history and signature. Pure.
//!
//! Invariant: this decides only what agents and ticket views show; the stored message keeps the
//! full original text and raw bytes.
//!
//! How: the text is cut at the first line that starts quoted history (a "quote header": Outlook's
//! `From:/Sent:` block in English or Chinese, Gmail's `On … wrote:` and `在 …写道：`, QQ Mail and
//! Foxmail's `------------------ 原始邮件 ------------------`, `-----Original Message-----`, an
//! underscore rule); `>`-quoted lines are removed wherever they stand (so inline answers survive);
//! a `-- ` signature and phone sign-offs ("Sent from my iPhone", "发自我的iPhone") are cut.

use regex::Regex;
use std::sync::LazyLock;

/// A pattern for one line (or a few joined), whose gaps are written unbounded (`.*`) while the
/// whole line's length is bounded instead, in characters: the same lines match as with the
/// bounded gaps (`.{0,150}`) that the bound sums up, except long lines with one long gap, and
/// the regex stays small. Bounded gaps of any character compile to thousands of automaton
/// states, which cost megabytes of lazy-DFA cache and sparse sets per pattern and send searches
/// to the slow engines. Word boundaries are written as `\W` where a gap meets a word: Unicode
/// `\b` makes the lazy DFA give up on any non-ASCII line.
struct LinePattern {
    re: Regex,
    max_chars: usize,
}

impl LinePattern {
    fn new(pattern: &str, max_chars: usize) -> LinePattern {
        LinePattern {
            re: Regex::new(pattern).expect("static regex"),
            max_chars,
        }
    }

    fn is_match(&self, line: &str) -> bool {
        (line.len() <= self.max_chars || line.chars().count() <= self.max_chars)
            && self.re.is_match(line)
    }
}

static ORIGINAL_MESSAGE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)^\s*[-_=*]{2,}\s*(original message|original|reply message|oprindelig besked|antwort nachricht|originalnachricht|原始邮件|原始郵件|原邮件|原郵件|回复的原邮件|message d'origine|ursprüngliche nachricht|oprindelig meddelelse|opprinnelig melding|ursprungligt meddelande|alkuperäinen viesti|messaggio originale|mensagem original|mensaje original|oorspronkelijk bericht|исходное сообщение|wiadomość oryginalna)\s*[-_=*]*\s*$",
    )
    .expect("static regex")
});

/// A forwarded message's separator: what follows is what the sender forwards, and is kept.
static FORWARDED: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)^\s*[-_=*]{2,}\s*(forwarded message|begin forwarded message|转发邮件(信息)?|轉寄郵件(資訊|信息)?|转发的邮件(信息)?|轉發郵件(資訊|信息)?|message transféré|weitergeleitete nachricht)\s*[-_=*]*\s*$|^\s*begin forwarded message:\s*$")
        .expect("static regex")
});

/// A mailing list's footer rule (`______` above `… mailing list`).
static LIST_FOOTER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)(mailing list|listinfo|list-unsubscribe|to unsubscribe)")
        .expect("static regex")
});

/// A `Date:`/`Sent:` header line with a date in it (a header block may start with it).
static HEADER_DATE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)^\s*\*?\s*(date|sent|发送时间|發送時間|日期|时间|時間|envoyé|gesendet|enviado|inviato|verzonden|sendt|skickat|wysłano|отправлено|datum)\s*\*?\s*[:：].*\d").expect("static regex")
});

/// A date and an address above a quote, without the colon: `2011/4/7 Nathan <n@x.com>`.
static DATE_ADDRESS_BARE: LazyLock<LinePattern> = LazyLock::new(|| {
    LinePattern::new(
        r"^\s*\d{1,4}[-./]\d{1,2}[-./]\d{1,4}.*<[\w.+-]+@[\w-]+(?:\.[\w-]+)+>\s*$",
        250,
    )
});

/// The tail of a link wrapped out of a quoted line: `(http://…) >`, `_nonce=3dd518)`.
fn link_fragment(line: &str) -> bool {
    let t = line.trim();
    !t.is_empty()
        && (t.contains("://") || t.ends_with('>') || (!t.contains(' ') && t.ends_with(')')))
}

/// A separator line (`====`, `----`, `____`).
fn is_separator(t: &str) -> bool {
    t.chars().count() >= 3
        && t.chars()
            .all(|c| matches!(c, '=' | '-' | '_' | '*' | '~' | '—'))
}

/// `On <date>, <name> wrote:` in many languages, possibly wrapped over two or three lines; the
/// verb may also stand before the name (`Op … schreef Julius <j@x>:`).
static WROTE: LazyLock<LinePattern> = LazyLock::new(|| {
    LinePattern::new(
        r"(?i)^\s*(?:on|le|am|el|il|em|op|den|på|pe|in data|w dniu|dnia|dne|в|vào|el día|kello|\d{1,4}[./-]\d{1,2}[./-]\d{1,4})\W(?:.*\W)?(?:wrote|a écrit|schrieb|escribió|ha scritto|escreveu|schreef|skrev|kirjoitti|napisał|napisała|написал|написала|napsal|đã viết|a scris|yazdı|geschreven|sent)(?:\s*:?\s*$|\W.*:\s*$)",
        760,
    )
});

/// A header line that is a date and an address with a colon: `2017-11-24 16:32 GMT+01:00 Ann <a@b.c>:`.
static DATE_ADDRESS: LazyLock<LinePattern> = LazyLock::new(|| {
    LinePattern::new(
        r"^\s*(?:\d{1,4}[-./]\d{1,2}[-./]\d{1,4}.*<?[\w.+-]+@[\w-]+(?:\.[\w-]+)+>?|.*\d.*<[\w.+-]+@[\w-]+(?:\.[\w-]+)+>)\s*:\s*$",
        420,
    )
});

/// A "wrote" header with no known opening word but a date in it: `tir. 18. apr. 2017 kl. 13:09
/// skrev Test user <test@example.com>:` (possibly wrapped, so it may end in an open `<…`).
static WROTE_DATED: LazyLock<LinePattern> = LazyLock::new(|| {
    LinePattern::new(
        r"(?i)^.*\d.*\W(?:wrote|skrev|schrieb|a écrit|escribió|ha scritto|escreveu|schreef|kirjoitti|napisał|написал|написала)(?:\W.*)?(?::|<[^>\s]*)\s*$",
        420,
    )
});

/// The first line of a confidentiality disclaimer a mail server or company appends: from it to
/// the end is not the sender's text (`本邮件及其附件含有保密信息…`, `This email and any
/// attachments are confidential…`, `CONFIDENTIALITY NOTICE`).
static DISCLAIMER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)^\W{0,6}((本|此|该|該)(封)?(电子|電子)?(邮件|郵件|信函)(及其|及|和|与|與|连同|連同)?(任何)?(附件|内容|內容).{0,20}(保密|机密|機密|专有|專有|仅|僅|只)|.{0,30}(如果|如|若)(您|你)(错收|誤收|误收|不是(本邮件|本郵件|此邮件|此郵件)?的?(指定|预期|預期)?收件人)|免责声明|免責聲明|保密声明|保密聲明|confidentiality (notice|note|statement|warning)|disclaimer\s*:|(this|the) (e-?mail|message|communication)( and any (attachments?|files)( transmitted with it)?)?( and its attachments)? (is|are|may be|may contain|contains?) (strictly )?(confidential|privileged|intended (solely|only))|if you (are not|have received this).{0,60}(intended recipient|in error))")
        .expect("static regex")
});

/// A sign-off on a line of its own; what follows is the signature.
static SIGN_OFF: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)^\s*(regards|best regards|kind regards|warm regards|best wishes|cheers|sincerely|yours sincerely|此致|此致敬礼|祝好)\s*[,，!.]?\s*$").expect("static regex")
});

/// Text and an `On … wrote:` header on one line.
static SHARED_LINE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^(.*\S)[\s-]+(On\s.{5,200}\bwrote:)\s*$").expect("static regex"));

/// Android's `---- John Smith wrote ----`.
static WROTE_DASHES: LazyLock<LinePattern> = LazyLock::new(|| {
    LinePattern::new(
        r"(?i)^\s*-{2,}(?:.*\W)?(?:wrote|schrieb|a écrit)(?:\W.*)?-{2,}\s*$",
        280,
    )
});

static WROTE_ZH: LazyLock<LinePattern> = LazyLock::new(|| {
    // `在 …写道：` (Gmail, iPhone), `2026年11月30日 10:58，Name <a@b> 写道：` (Apple Mail), and
    // Gmail's current name-first form `Name (…) <a@b> 于2026年11月30日周一 11:05写道：`.
    LinePattern::new(
        r"^\s*(?:(?:在|于|於).*|.*[\d@].*)(?:写道|寫道|寫到|写到)\s*[:：]?\s*$",
        420,
    )
});

/// Any line that ends with a colon and names a date or an address: directly above a `>` quote it
/// introduces the quote, whatever its verb or language (`said:`, `writes:`, mutt's
/// `* Name <a@b> [2026-11-30 10:58]:`).
static QUOTE_HEADER_ANY: LazyLock<LinePattern> =
    LazyLock::new(|| LinePattern::new(r"^.*[\d@].*[:：]\s*$", 610));

/// An image reference a client leaves in the text part for a signature logo or pasted picture:
/// `[cid:image001.png@01DB4C2A.8F0B6A40]`, `[image: logo.png]`, `[图片]`.
static IMAGE_LINE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)^\s*\[(cid:[^\]]*|image:?[^\]]*|图片|圖片|图像)\]\s*$").expect("static regex")
});

/// A contact line of a signature block: phone, address, web, title, company. The English words
/// have ASCII word boundaries (`(?-u:\b)`), so the lazy DFA serves lines in any script.
static CONTACT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)(电话|電話|手机|手機|热线|熱線|座机|传真|傳真|地址|邮箱|郵箱|网址|網址|(?-u:\b)tel(?-u:\b)|phone|mobile|(?-u:\b)cell(?-u:\b)|(?-u:\b)fax(?-u:\b)|address|e-?mail|(?-u:\b)web(?-u:\b)|www\.|https?://|[\w.+-]+@[\w-]+\.[\w.]+|\+?\d[\d\s()-]{6,}\d|有限公司|公司|部门|部門|专员|專員|经理|經理|主管|specialist|manager|department|customer service|support team)")
        .expect("static regex")
});

/// A line in the forwarded/replied header block (Outlook, Foxmail, QQ Mail, NetEase …).
static HEADER_FROM: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)^\s*\*?\s*(from|发件人|發件人|寄件者|de|da|von|van|fra|från|od|от|mittente|lähettäjä|message du)\s*\*?\s*[:：]").expect("static regex")
});
static HEADER_OTHER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)^\s*\*?\s*(sent|date|to|cc|subject|发送时间|發送時間|时间|時間|日期|收件人|抄送|主题|主題|寄件日期|envoyé|gesendet|enviado|inviato|verzonden|sendt|skickat|wysłano|отправлено|datum|objet|betreff|asunto|oggetto|onderwerp|emne|ämne|temat|тема|aan|à|a|an|para|til|copie à|inviato)\s*\*?\s*[:：]").expect("static regex")
});

static SENT_FROM: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)^\s*(sent from my |sent from \S+|sent via |get outlook for |envoyé de mon |envoyé à partir de |gesendet von |inviato da |von meinem .* gesendet|enviado desde mi |发自我的|發自我的|来自我的|來自我的|从我的.*发送|發送自我的|发自 ?(网易|QQ|iPhone|iPad|Android)|sent from samsung|获取 ?outlook for|獲取 ?outlook for|取得 ?outlook for)").expect("static regex")
});

/// Extracts the new text of a reply. Returns the whole text when nothing is recognised.
pub fn extract(text: &str) -> String {
    extract_known(text, &[]).text
}

/// The new text of a reply, and the pictures it shows (`[cid:…]` in its new text, not in its
/// signature or the quoted history): a screenshot an agent pasted goes to the customer, their
/// signature's logo does not.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct NewText {
    pub text: String,
    /// Content-IDs of the pictures inside the new text, in order.
    pub images: Vec<String>,
}

/// [`extract`], also cutting a trailing signature block that names one of `known` (the sender's
/// display name or address, the agents' names): Outlook's and Foxmail's signatures have no `-- `.
pub fn extract_known(text: &str, known: &[&str]) -> NewText {
    let decoded = decode_entities(text);
    let text = decoded.as_str();
    let mut lines: Vec<&str> = Vec::new();
    for line in text.lines() {
        // "reply On Wed, … wrote:": the reply and the quote header share a line.
        let shared = if line.contains("wrote:") {
            SHARED_LINE.captures(line).and_then(|c| c.get(2))
        } else {
            None
        };
        match shared {
            Some(header) => {
                lines.push(line[..header.start()].trim_end_matches([' ', '-']));
                lines.push(&line[header.start()..]);
            }
            None => lines.push(line),
        }
    }
    // What the sender forwards is theirs to show: nothing after a forward separator is quoted
    // history.
    let forward = lines.iter().position(|l| FORWARDED.is_match(l));
    let mut header_lines = Vec::new();
    let mut cut = quote_start(&lines[..forward.unwrap_or(lines.len())], &mut header_lines)
        .unwrap_or(lines.len());
    // Separator lines and blank lines just above the history belong to it.
    while cut > 0 && cut < lines.len() && {
        let t = lines[cut - 1].trim();
        t.is_empty() || is_separator(t)
    } {
        cut -= 1;
    }
    let quote_end = forward.unwrap_or(cut).min(cut);
    let mut kept: Vec<&str> = Vec::with_capacity(cut);
    // The forwarded mail (separator, its headers, its body) is kept whole, apart from what the
    // sender's own part goes through.
    let mut forwarded: Vec<&str> = Vec::new();
    let mut i = 0;
    while i < cut {
        let line = lines[i];
        // A link fragment between two quoted lines is a quoted line a long link broke (an
        // answer between quotes, like an order number, is not).
        let broken_quote = i > 0
            && i + 1 < quote_end
            && link_fragment(line)
            && is_quoted(lines[i - 1])
            && is_quoted(lines[i + 1]);
        if header_lines.contains(&i) {
            i += 1;
            continue;
        }
        if i < quote_end && (is_quoted(line) || broken_quote) {
            // A header line introducing this quote block belongs to the quote.
            while kept.last().is_some_and(|l| {
                l.trim().is_empty()
                    || WROTE.is_match(l)
                    || WROTE_ZH.is_match(l)
                    || WROTE_DATED.is_match(l)
                    || DATE_ADDRESS.is_match(l)
                    || DATE_ADDRESS_BARE.is_match(l)
                    || QUOTE_HEADER_ANY.is_match(l)
            }) {
                kept.pop();
            }
            i += 1;
            continue;
        }
        if forward.is_some_and(|f| i >= f) {
            forwarded.push(line);
        } else {
            kept.push(line);
        }
        i += 1;
    }
    if let Some(at) = kept
        .iter()
        .skip(1)
        .position(|l| DISCLAIMER.is_match(l))
        .map(|p| p + 1)
    {
        kept.truncate(at);
    }
    let mut kept = cut_signature(kept, known);
    if !forwarded.is_empty() {
        kept.push("");
        kept.extend(forwarded);
    }
    // Pictures still in the new text are the sender's to show; their markers are not text.
    let mut images = Vec::new();
    let kept: Vec<&str> = kept
        .into_iter()
        .filter(|l| {
            match l
                .trim_start()
                .starts_with('[')
                .then(|| IMAGE_LINE.captures(l))
                .flatten()
            {
                Some(c) => {
                    if let Some(cid) = c.get(1).and_then(|m| m.as_str().strip_prefix("cid:")) {
                        images.push(cid.trim().to_string());
                    }
                    false
                }
                None => true,
            }
        })
        .collect();
    let out = kept.join("\n");
    let out = out.trim_matches('\n').trim_end();
    if out.trim().is_empty() && images.is_empty() {
        // Everything looked quoted: show the original rather than nothing.
        return NewText {
            text: text.trim().to_string(),
            images,
        };
    }
    NewText {
        text: collapse_blank_runs(out),
        images,
    }
}

/// Lines without trailing spaces, and at most one blank line in a row (Outlook writes blank
/// paragraphs as a single space; removed markers and cuts leave runs of blank lines).
fn collapse_blank_runs(s: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for l in s.lines() {
        let l = l.trim_end();
        if l.is_empty() && out.last().is_some_and(|p| p.is_empty()) {
            continue;
        }
        out.push(l);
    }
    out.join("\n")
}

fn is_quoted(line: &str) -> bool {
    line.trim_start().starts_with('>')
}

/// The index of the first line of quoted history, if any. A wrapped "On … wrote:" header that
/// introduces a quote with the sender's text after it is not a cut: its lines go to
/// `header_lines` (removed with the quote) and the text after the quote is kept.
fn quote_start(lines: &[&str], header_lines: &mut Vec<usize>) -> Option<usize> {
    for (i, line) in lines.iter().enumerate() {
        let t = line.trim();
        if t.is_empty() {
            continue;
        }
        // Cheap looks at the line first: most lines have none of what the regexes need.
        let ruled = t.starts_with(['-', '_', '=', '*']);
        let at = t.contains('@');
        let digit = t.chars().any(char::is_numeric);
        let colon = t.contains(':') || t.contains('：');
        if (ruled && (ORIGINAL_MESSAGE.is_match(t) || WROTE_DASHES.is_match(t)))
            || (at && DATE_ADDRESS.is_match(t))
            || (digit && WROTE_DATED.is_match(t) && !quote_follows(lines, i + 1))
        {
            return Some(i);
        }
        // A "wrote:" line directly above `>` quotes is removed with them, and text after the
        // quote (a sign-off) is kept; otherwise it starts the quoted history.
        if (t.contains('写') || t.contains('寫'))
            && WROTE_ZH.is_match(t)
            && !quote_follows(lines, i + 1)
        {
            return Some(i);
        }
        if is_rule(t) && header_block_follows(lines, i + 1) {
            return Some(i);
        }
        // A mailing list's footer (some archives shorten its rule to `__`).
        if t.len() >= 2
            && t.chars().all(|c| c == '_')
            && lines
                .iter()
                .skip(i + 1)
                .filter(|l| !l.trim().is_empty())
                .take(2)
                .any(|l| LIST_FOOTER.is_match(l))
        {
            return Some(i);
        }
        // A header block that starts with its date (`Date:` / `Sent:` first).
        if colon && i > 0 && HEADER_DATE.is_match(t) && header_block_follows(lines, i + 1) {
            return Some(i);
        }
        if colon && i > 0 && HEADER_FROM.is_match(t) && header_block_follows(lines, i + 1) {
            return Some(i);
        }
        // "On …" may wrap: join up to three lines and look for "wrote:".
        if WROTE.is_match(t) {
            if quote_follows(lines, i + 1) {
                continue;
            }
            return Some(i);
        }
        if t.starts_with(|c: char| c.is_ascii_digit()) && !(at && DATE_ADDRESS.is_match(t)) {
            if let Some(next) = lines.get(i + 1) {
                let joined = format!("{t}{}", next.trim());
                if DATE_ADDRESS.is_match(&joined)
                    || (WROTE_DATED.is_match(&joined) && !quote_follows(lines, i + 2))
                {
                    return Some(i);
                }
            }
        }
        if starts_with_on(t) {
            let mut joined = t.to_string();
            // Some clients spread the header over several lines, with blank ones between and the
            // "wrote:" already quoted (Polymail: `On …`, `<`, `mailto:… <…>`, `> wrote:`).
            for (j, next) in lines
                .iter()
                .enumerate()
                .skip(i + 1)
                .take(5)
                .filter(|(_, l)| !l.trim().is_empty())
            {
                joined.push(' ');
                joined.push_str(next.trim().trim_start_matches('>').trim());
                if WROTE.is_match(&joined) || DATE_ADDRESS.is_match(&joined) {
                    if !is_quoted(next) && quote_follows(lines, j + 1) {
                        header_lines.extend(i..=j);
                        break;
                    }
                    return Some(i);
                }
            }
        }
    }
    None
}

/// True when the next non-blank line is `>`-quoted and unquoted text follows that quote (the
/// sender answered below or signed off after it): then the quote alone is removed.
fn quote_follows(lines: &[&str], from: usize) -> bool {
    let mut rest = lines.iter().skip(from).filter(|l| !l.trim().is_empty());
    if !rest.next().is_some_and(|l| is_quoted(l)) {
        return false;
    }
    rest.any(|l| !is_quoted(l))
}

fn starts_with_on(t: &str) -> bool {
    let lower = t.to_lowercase();
    [
        "on ", "le ", "am ", "el ", "il ", "em ", "op ", "den ", "w dniu", "dnia ", "pe ", "ma ",
        "ti ", "ke ", "to ", "la ", "su ", "in data ",
    ]
    .iter()
    .any(|p| lower.starts_with(p))
}

fn is_rule(t: &str) -> bool {
    t.len() >= 10 && t.chars().all(|c| c == '_' || c == '-' || c == '—')
}

/// True when one of the next few lines is a header line like `Sent:`/`发送时间:` or `From:`.
fn header_block_follows(lines: &[&str], from: usize) -> bool {
    lines
        .iter()
        .skip(from)
        .filter(|l| !l.trim().is_empty())
        .take(3)
        .any(|l| HEADER_OTHER.is_match(l) || HEADER_FROM.is_match(l))
}

/// HTML entities some clients leave in their text part (QQ Mail's `&nbsp;` in its separator):
/// decoded, with non-breaking spaces made plain, so separators are recognised.
fn decode_entities(text: &str) -> String {
    if !text.contains('&') && !text.contains('\u{a0}') {
        return text.to_string();
    }
    let mut out = text.replace('\u{a0}', " ");
    if out.contains('&') {
        for (entity, ch) in [
            ("&nbsp;", " "),
            ("&lt;", "<"),
            ("&gt;", ">"),
            ("&quot;", "\""),
            ("&#39;", "'"),
            ("&apos;", "'"),
            ("&amp;", "&"),
        ] {
            if out.contains(entity) {
                out = out.replace(entity, ch);
            }
        }
    }
    out
}

/// Whether `line` is one of the `known` names or addresses of the sender.
fn names_sender(line: &str, known: &[&str]) -> bool {
    let t = line.trim().trim_end_matches([',', '，', '.', '。']);
    !t.is_empty()
        && known
            .iter()
            .any(|k| !k.is_empty() && t.eq_ignore_ascii_case(k.trim()))
}

/// A trailing signature block without a `-- ` line: the last paragraph, short lines only, that
/// names the sender or gives two contact lines (title, phone, address, web…).
fn cut_contact_block(kept: &mut Vec<&str>, known: &[&str]) {
    while kept.last().is_some_and(|l| l.trim().is_empty()) {
        kept.pop();
    }
    let end = kept.len();
    let start = kept
        .iter()
        .rposition(|l| l.trim().is_empty())
        .map_or(0, |p| p + 1);
    if start == 0 || end == start {
        // No paragraph of its own: only a last line that is the sender's name goes.
        if end > 1 && names_sender(kept[end - 1], known) {
            kept.pop();
        }
        return;
    }
    let block = &kept[start..end];
    if block.len() > 8 || block.iter().any(|l| l.chars().count() > 60) {
        return;
    }
    let named = block.iter().any(|l| names_sender(l, known));
    // A logo among short lines is a signature's.
    let contacts = block
        .iter()
        .filter(|l| CONTACT.is_match(l) || IMAGE_LINE.is_match(l))
        .count();
    if named || contacts >= 2 {
        kept.truncate(start);
    }
}

fn cut_signature<'a>(mut kept: Vec<&'a str>, known: &[&str]) -> Vec<&'a str> {
    // "-- " signature delimiter (also "--" and "---", as clients trim or vary it), near the end.
    let len = kept.len();
    if let Some(pos) = kept
        .iter()
        .rposition(|l| matches!(l.trim_end(), "--" | "---") || *l == "-- ")
    {
        if pos > 0 && (len - pos <= 12 || kept[pos] == "-- ") {
            kept.truncate(pos);
        }
    }
    // A sign-off line near the end: the rest is a signature.
    let len = kept.len();
    if let Some(pos) = kept.iter().rposition(|l| SIGN_OFF.is_match(l)) {
        if pos > 0 && len - pos <= 6 {
            kept.truncate(pos);
        }
    }
    // Phone sign-offs: what follows one is old text the phone's client appended.
    if let Some(pos) = kept
        .iter()
        .position(|l| SENT_FROM.is_match(l) && l.chars().count() <= 80 && !l.contains(", "))
    {
        if pos > 0 {
            kept.truncate(pos);
        }
    }
    cut_contact_block(&mut kept, known);
    // A sign-off above the signature block just cut ("Best regards," then name and title).
    while kept.last().is_some_and(|l| l.trim().is_empty()) {
        kept.pop();
    }
    if kept.last().is_some_and(|l| SIGN_OFF.is_match(l)) && kept.len() > 1 {
        kept.pop();
    }
    while kept.last().is_some_and(|l| l.trim().is_empty()) {
        kept.pop();
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The line patterns match what their bounded-gap forms matched: headers in any script
    /// (the lazy DFA serves non-ASCII lines), a word only where it stands apart, and nothing
    /// longer than the line bound.
    #[test]
    fn line_patterns_match_headers_in_any_script_and_no_line_over_their_bound() {
        for header in [
            "On Tue, Dec 1, 2026 at 10:05 AM Support <support@example.test> wrote:",
            "Le mar. 1 déc. 2026 à 10:05, Support <support@example.test> a écrit :",
            "В вт, 1 дек. 2026 г. в 10:05, Support <support@example.test> написал:",
        ] {
            assert!(WROTE.is_match(header), "{header}");
        }
        assert!(WROTE_DATED
            .is_match("tir. 1. des. 2026 kl. 10:05 skrev Support <support@example.test>:"));
        assert!(
            WROTE_ZH.is_match("在 2026年12月1日周二 10:05，客服中心 <support@example.test> 写道：")
        );
        assert!(
            DATE_ADDRESS.is_match("2026-12-01 10:05 GMT+08:00 客服中心 <support@example.test>:")
        );
        assert!(QUOTE_HEADER_ANY.is_match("* 客服 <support@example.test> [2026-12-01 10:05]:"));
        assert!(WROTE_DASHES.is_match("---- 客服中心 wrote ----"));
        // A verb inside a longer word is no header (`\b` before, now `\W`).
        assert!(!WROTE_DATED.is_match("1 rewrote:"));
        assert!(!WROTE.is_match("On Monday John overwrote:"));
        // Past the bound, no line is a header, whatever it holds.
        let long = format!("On 2026-12-01 {} wrote:", "很".repeat(800));
        assert!(!WROTE.is_match(&long));
        assert!(!QUOTE_HEADER_ANY.is_match(&format!("1{}:", "字".repeat(700))));
    }

    #[test]
    fn chinese_signature_blocks_and_disclaimers_are_cut() {
        let t = "您好，退款还没到账，请帮忙查一下。\n\n此致\n敬礼！\n\n王芳\n采购部\n电话：010-12345678\n手机：13800138000\n地址：北京市朝阳区建国路88号\n";
        assert_eq!(
            extract(t),
            "您好，退款还没到账，请帮忙查一下。\n\n此致\n敬礼！"
        );
        let t = "订单号 20261120 的发票请重开。\n\n本邮件及其附件含有保密信息，仅限于发送给上面地址中列出的个人或群组。如果您错收了本邮件，请您立即电话或邮件通知发件人并删除本邮件！\n";
        assert_eq!(extract(t), "订单号 20261120 的发票请重开。");
        let t = "發票請重開，謝謝。\n\n免責聲明：本郵件及其附件僅供指定收件人使用。\n";
        assert_eq!(extract(t), "發票請重開，謝謝。");
        let t = "Refund received, thanks!\n\nCONFIDENTIALITY NOTICE: This email and any attachments are confidential and may be privileged. If you are not the intended recipient, delete it.\n";
        assert_eq!(extract(t), "Refund received, thanks!");
        // A customer who writes about confidentiality keeps their words.
        let t = "我收到一封说含有保密信息的邮件，是你们发的吗？\n";
        assert_eq!(extract(t), "我收到一封说含有保密信息的邮件，是你们发的吗？");
    }

    #[test]
    fn quote_headers_in_any_wording_and_forwarded_mail_kept_whole() {
        let t = "Thanks, that fixed it.\n\n* Bob Smith <bob@example.org> [2026-11-19 10:58]:\n> Please try again.\n";
        assert_eq!(extract(t), "Thanks, that fixed it.");
        let t = "好的，明天再试。\n\n张三 <zhang@example.cn> 于2026年11月19日周四 下午5:40写道：\n\n> 请重启路由器。\n";
        assert_eq!(extract(t), "好的，明天再试。");
        let t = "Sure.\n\nOn 19/11/2026, at 10:58, the support team writes:\n> Please confirm.\n";
        assert_eq!(extract(t), "Sure.");
        let t = "请看下面客户转来的邮件，谢谢。\n\n-------- 转发邮件信息 --------\n发件人：\"李四\" <li@example.cn>\n发送日期：2026-11-18 09:12\n收件人：\"王五\" <wang@example.cn>\n主题：货物破损\n\n货到的时候箱子已经破了。\n\n李四\n电话：13900000000\n";
        assert_eq!(extract(t), t.trim_end());
    }

    #[test]
    fn gmail_english_quote_is_removed() {
        let t = "Thanks, that worked.\n\nOn Mon, 23 Nov 2026 at 10:00, Support <support@example.test> wrote:\n> Please restart the device.\n";
        assert_eq!(extract(t), "Thanks, that worked.");
    }

    #[test]
    fn gmail_chinese_quote_is_removed() {
        let t = "好的，谢谢！\n\n在 2026年11月23日周一 10:00，客服中心 <support@example.test> 写道：\n> 请重启设备。";
        assert_eq!(extract(t), "好的，谢谢！");
    }

    #[test]
    fn qq_mail_original_block_is_removed() {
        let t = "还是不行，请再看看。\n\n\n------------------ 原始邮件 ------------------\n发件人: \"客服中心\"<support@example.test>;\n发送时间: 2026年11月23日(星期一) 上午10:00\n收件人: \"我\"<me@qq.com>;\n主题: 回复：退款\n\n请重启设备。";
        assert_eq!(extract(t), "还是不行，请再看看。");
    }

    #[test]
    fn outlook_chinese_header_block_is_removed() {
        let t = "已收到，谢谢。\n\n发件人: 客服中心 <support@example.test>\n发送时间: 2026年11月23日 10:00\n收件人: 王先生\n主题: [#T-000001] 退款\n\n您好，";
        assert_eq!(extract(t), "已收到，谢谢。");
    }

    #[test]
    fn outlook_english_block_and_rule_are_removed() {
        let t = "Works now.\n\n________________________________\nFrom: Support <support@example.test>\nSent: Monday, November 23, 2026 10:00 AM\nTo: Bob\nSubject: RE: login\n\nTry again.";
        assert_eq!(extract(t), "Works now.");
    }

    #[test]
    fn inline_answers_are_kept_and_quotes_dropped() {
        let t = "> What is your order number?\n12345\n> And the date?\nYesterday";
        assert_eq!(extract(t), "12345\nYesterday");
    }

    #[test]
    fn signatures_and_phone_signoffs_are_cut() {
        assert_eq!(extract("Hello\n-- \nBob\nACME"), "Hello");
        assert_eq!(extract("收到\n\n发自我的iPhone"), "收到");
        assert_eq!(extract("Got it\n\nSent from my iPhone"), "Got it");
    }

    #[test]
    fn wrapped_headers_in_other_languages_are_found() {
        let t = "Lorem ipsum\n\nW dniu 28 stycznia 2015 01:53 użytkownik Zoe xxx <zoe.xxx@xxx.com>\nnapisał:\n\nBlah!";
        assert_eq!(extract(t), "Lorem ipsum");
        let t = "Hi\n\n2017-11-24 16:32 GMT+01:00 Baptiste <b@mail.example>:\n\nTest";
        assert_eq!(extract(t), "Hi");
    }

    #[test]
    fn forwarded_mail_is_kept_and_list_footers_and_link_fragments_are_not() {
        let t = "FYI\n\n---------- Forwarded message ----------\nFrom: courier@example.com\nDate: Tue, Sep 4, 2012\nSubject: Delivery\n\nYour parcel is held.";
        assert!(extract(t).contains("Your parcel is held."));
        let t = "Any idea?\n\n-Ann\n\n__\nriak-users mailing list\nhttp://lists.example/listinfo";
        assert_eq!(extract(t), "Any idea?\n\n-Ann");
        let t = "Blah\n\nOn Monday, 24 September, 2012 at 3:46 PM, bob wrote:\n\n> View ticket (http://example.com/action\n_nonce=3dd518)\n>";
        assert_eq!(extract(t), "Blah");
    }

    #[test]
    fn text_after_a_wrapped_header_and_its_quote_is_kept() {
        let t = "Test reply\n\nOn Fri, May 6, 2011 at 6:03 PM, Roman from Hacker News\n<roman@example.com> wrote:\n\n> Test.\n\nRegards, Roman";
        assert_eq!(extract(t), "Test reply\n\nRegards, Roman");
    }

    #[test]
    fn chinese_attributions_in_every_order_are_quote_headers() {
        // Gmail's current Chinese UI: the name first.
        let t = "已为您办理。\n\n郑洁 (客服) <support@example.test> 于2026年11月30日周一 11:05写道：\n> 请查询退款。";
        assert_eq!(extract(t), "已为您办理。");
        // Apple Mail: the date first.
        let t = "好的。\n\n> 2026年11月30日 10:58，Example 客服中心 <support@example.test> 写道：\n> \n> 请查询退款。";
        assert_eq!(extract(t), "好的。");
        // NeoMutt.
        let t = "Done.\n\n* Example Support <support@example.test> [2026-11-30 10:58]:\n> please check\n";
        assert_eq!(extract(t), "Done.");
    }

    #[test]
    fn qq_mail_s_entities_in_its_text_part_do_not_hide_the_separator() {
        let t = "退款已办理。\n\n------------------&nbsp;原始邮件&nbsp;------------------\n发件人:&nbsp;\"Example 客服中心\"&lt;support@example.test&gt;;\n发送时间:&nbsp;2026年11月30日(星期一) 上午10:58\n\n请查询退款。";
        assert_eq!(extract(t), "退款已办理。");
    }

    #[test]
    fn signature_blocks_without_a_dash_line_are_cut() {
        let known = ["李娜", "lina@example.test"];
        let outlook = "您好，退款已原路退回。\n\n李娜\n客户服务专员\n客服热线：400-800-1234\n[cid:image001.png@01DB4C2A.8F0B6A40]\n\n发件人: Example 客服中心 <support@example.test>\n发送时间: 2026年11月30日 10:58\n收件人: 李娜\n主题: [#T-000001] 退款\n\n请查询。";
        assert_eq!(
            extract_known(outlook, &known).text,
            "您好，退款已原路退回。"
        );
        let foxmail = "已转财务处理。\n\nlina@example.test\n\n------------------ 原始邮件 ------------------\n发件人: \"客服中心\"<support@example.test>;\n发送时间: 2026年11月30日\n\n请查询。";
        assert_eq!(extract_known(foxmail, &known).text, "已转财务处理。");
        // An agent's own last paragraph with one phone number is their text, not a signature.
        let text = "您好，已经为您登记。\n\n如有疑问请致电 400-800-1234。";
        assert_eq!(extract_known(text, &known).text, text);
    }

    #[test]
    fn a_pasted_picture_is_the_sender_s_and_a_logo_is_not() {
        let known = ["李娜"];
        let t = "报错截图如下：\n[cid:image002.png@01DB4C2A.8F0B6A40]\n请按图操作。\n\n李娜\n客服专员\n[cid:image001.png@01DB4C2A.8F0B6A40]\n\n发件人: 客服中心 <support@example.test>\n发送时间: 2026年11月30日\n\n> x";
        let n = extract_known(t, &known);
        assert_eq!(n.text, "报错截图如下：\n请按图操作。");
        assert_eq!(n.images, ["image002.png@01DB4C2A.8F0B6A40"]);
    }

    #[test]
    fn a_plain_mail_is_unchanged() {
        assert_eq!(extract("Line one\nLine two"), "Line one\nLine two");
    }
}
