//! Stage `classify`: what kind of request is this, how serious, for whom, and in which language do
//! we answer? Pure, and explainable: the result lists every rule that fired.
//!
//! - language: `zh-Hans`, `zh-Hant`, `en` or `other`. Simplified and Traditional script are told
//!   apart with a character table derived from the national character sets themselves (through
//!   encoding_rs): a Han character Big5 cannot encode is Simplified-only; one Big5 encodes but
//!   that lies outside GBK's GB2312 region is Traditional-only.
//! - category: `inquiry` (咨询), `status_query` (查询), `complaint` (投诉), `suggestion` (建议);
//!   complaints carry a severity, `general` or `major`; independently `urgent` (a fault or outage,
//!   a risk needing immediate handling) and `vip` (sender or domain on the important-customer list).
//! - priority, derived: `urgent` (urgent, or a major complaint) → `high` (VIP, or a complaint) →
//!   `normal` (inquiries and status queries) → `low` (suggestions).
//!
//! How: rules (built-in defaults in three languages, plus or instead of rules from config) carry
//! keywords and regular expressions, a target (a category, `major`, `urgent`) and a weight, which
//! may be negative ("不急" lowers urgency; "怎么投诉" lowers complaint). Every keyword of every rule
//! is in one Aho-Corasick automaton (one pass over the mail); each pattern is a compiled `Regex`
//! whose literal prefilter skips mail that cannot match, tried only for rules not yet fired. (One
//! `RegexSet` over all patterns measured 12× slower: its lazy DFA thrashes on the bounded Unicode
//! classes.) All compiled once: a typical mail costs a few µs. Scores are summed per target; the best category wins
//! (ties: complaint, status query, suggestion, inquiry); no category rule means `inquiry`.
//!
//! Invariants: classification never fails; it looks at the subject and the new text only (quoted
//! history would carry our own acknowledgement's words); the same input gives the same result.

use crate::domain::{Category, Classification, Priority, Severity};
use crate::domain::{EmailAddress, Language};
use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use regex::Regex;
use serde::{Deserialize, Serialize};
use std::sync::LazyLock;

/// Tie-break order: the more consequential reading wins a tie.
fn tie_rank(c: Category) -> u8 {
    match c {
        Category::Complaint => 0,
        Category::StatusQuery => 1,
        Category::Suggestion => 2,
        Category::Inquiry => 3,
    }
}

/// What a rule votes for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    Inquiry,
    StatusQuery,
    Complaint,
    Suggestion,
    /// A major complaint (counts for `complaint` too).
    Major,
    Urgent,
}

impl Target {
    fn category(self) -> Option<Category> {
        match self {
            Target::Inquiry => Some(Category::Inquiry),
            Target::StatusQuery => Some(Category::StatusQuery),
            Target::Complaint | Target::Major => Some(Category::Complaint),
            Target::Suggestion => Some(Category::Suggestion),
            Target::Urgent => None,
        }
    }
}

/// One or several targets (`target = "urgent"` or `target = ["major", "urgent"]`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum Targets {
    One(Target),
    Many(Vec<Target>),
}

impl Targets {
    fn to_vec(&self) -> Vec<Target> {
        match self {
            Targets::One(t) => vec![*t],
            Targets::Many(v) => v.clone(),
        }
    }
}

/// A rule as written in config (`[[classify.rules]]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    /// Shown in the result; a rule named like a built-in one replaces it.
    pub name: String,
    pub target: Targets,
    /// Literal phrases, case-insensitive. Latin keywords match whole words; `refund*` matches
    /// any word starting with `refund`.
    #[serde(default)]
    pub keywords: Vec<String>,
    /// Regular expressions (Rust `regex` syntax), case-insensitive.
    #[serde(default)]
    pub patterns: Vec<String>,
    #[serde(default = "default_weight")]
    pub weight: i32,
    /// Apply only to mail in these languages (default: all).
    #[serde(default)]
    pub languages: Vec<String>,
}

fn default_weight() -> i32 {
    1
}

/// `[classify]` in config.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClassifySettings {
    /// Use the built-in rules (a config rule with the same name replaces a built-in one).
    #[serde(default = "yes")]
    pub builtin_rules: bool,
    /// Important-agreement customers: addresses …
    #[serde(default)]
    pub vip_addresses: Vec<EmailAddress>,
    /// … and whole domains (subdomains included).
    #[serde(default)]
    pub vip_domains: Vec<String>,
    #[serde(default)]
    pub rules: Vec<RuleConfig>,
}

fn yes() -> bool {
    true
}

impl Default for ClassifySettings {
    fn default() -> Self {
        ClassifySettings {
            builtin_rules: true,
            vip_addresses: Vec::new(),
            vip_domains: Vec::new(),
            rules: Vec::new(),
        }
    }
}

#[derive(Clone)]
struct Rule {
    name: String,
    targets: Vec<Target>,
    weight: i32,
    languages: Vec<Language>,
}

/// A keyword in the automaton: which rule, and how its edges must sit.
#[derive(Clone)]
struct Keyword {
    rule: usize,
    text: String,
    /// Latin keyword: the character before must not be a letter or digit.
    word_start: bool,
    /// … nor the one after (unless the keyword ended in `*`).
    word_end: bool,
}

/// The compiled rules. Build once (at start and on reload), use for every mail.
#[derive(Clone)]
pub struct Classifier {
    rules: Vec<Rule>,
    keywords: Vec<Keyword>,
    automaton: Option<AhoCorasick>,
    /// (rule, pattern), in rule order.
    patterns: Vec<(usize, Regex)>,
    vip_addresses: Vec<EmailAddress>,
    vip_domains: Vec<String>,
}

impl std::fmt::Debug for Classifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Classifier")
            .field("rules", &self.rules.len())
            .field("keywords", &self.keywords.len())
            .field("patterns", &self.patterns.len())
            .finish()
    }
}

/// Text looked at: the subject and the start of the new text (enough to judge; bounded cost).
const MAX_TEXT_BYTES: usize = 8 * 1024;

impl Classifier {
    /// Compiles the built-in rules and those of `s`. Every problem is returned with its config key.
    pub fn new(s: &ClassifySettings) -> Result<Classifier, Vec<String>> {
        if s.builtin_rules && s.rules.is_empty() {
            // The built-in rules alone (the common case): compiled once per process, whatever
            // the VIP lists (a reload, a config check, every CLI command would compile them).
            static BUILTIN: std::sync::OnceLock<Result<Classifier, Vec<String>>> =
                std::sync::OnceLock::new();
            let mut c = BUILTIN
                .get_or_init(|| {
                    Classifier::compile(&ClassifySettings {
                        vip_addresses: Vec::new(),
                        vip_domains: Vec::new(),
                        ..s.clone()
                    })
                })
                .clone()?;
            let plain = Classifier::compile(&ClassifySettings {
                builtin_rules: false,
                rules: Vec::new(),
                ..s.clone()
            });
            // Without rules, compiling only checks and normalises the VIP lists.
            let plain = plain?;
            c.vip_addresses = plain.vip_addresses;
            c.vip_domains = plain.vip_domains;
            return Ok(c);
        }
        Classifier::compile(s)
    }

    fn compile(s: &ClassifySettings) -> Result<Classifier, Vec<String>> {
        let mut problems = Vec::new();
        let mut specs: Vec<(String, RuleConfig)> = Vec::new();
        if s.builtin_rules {
            for b in BUILTIN {
                if s.rules.iter().any(|r| r.name == b.name) {
                    continue;
                }
                specs.push((format!("built-in rule {}", b.name), b.to_config()));
            }
        }
        for (i, r) in s.rules.iter().enumerate() {
            specs.push((format!("classify.rules[{i}]"), r.clone()));
        }

        let mut rules = Vec::new();
        let mut keywords = Vec::new();
        let mut patterns = Vec::new();
        for (key, spec) in specs {
            let rule_index = rules.len();
            if spec.name.trim().is_empty() {
                problems.push(format!("{key}.name: must not be empty"));
            }
            if spec.keywords.is_empty() && spec.patterns.is_empty() {
                problems.push(format!("{key}: needs keywords or patterns"));
            }
            if let Targets::Many(v) = &spec.target {
                if v.is_empty() {
                    problems.push(format!("{key}.target: must name at least one target"));
                }
            }
            let mut languages = Vec::new();
            for (j, l) in spec.languages.iter().enumerate() {
                match Language::from_code(l) {
                    Some(l) => languages.push(l),
                    None => problems.push(format!(
                        "{key}.languages[{j}]: unknown language {l:?} (zh-Hans, zh-Hant, en, other)"
                    )),
                }
            }
            for (j, k) in spec.keywords.iter().enumerate() {
                let prefix = k.ends_with('*');
                let text = k.trim_end_matches('*').trim().to_lowercase();
                if text.is_empty() {
                    problems.push(format!("{key}.keywords[{j}]: empty keyword"));
                    continue;
                }
                let latin = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
                keywords.push(Keyword {
                    rule: rule_index,
                    word_start: latin(text.chars().next()),
                    word_end: !prefix && latin(text.chars().last()),
                    text,
                });
            }
            for (j, p) in spec.patterns.iter().enumerate() {
                match regex::RegexBuilder::new(p)
                    .case_insensitive(true)
                    .size_limit(1 << 20)
                    .build()
                {
                    Ok(re) => patterns.push((rule_index, re)),
                    Err(e) => problems.push(format!("{key}.patterns[{j}]: {e}")),
                }
            }
            rules.push(Rule {
                name: spec.name.clone(),
                targets: spec.target.to_vec(),
                weight: spec.weight,
                languages,
            });
        }
        let mut vip_domains = Vec::new();
        for (i, d) in s.vip_domains.iter().enumerate() {
            let d = d.trim().trim_start_matches('@').to_ascii_lowercase();
            if d.is_empty() || d.contains(|c: char| c.is_whitespace() || c == '@') {
                problems.push(format!("classify.vip_domains[{i}]: not a domain"));
            } else {
                vip_domains.push(d);
            }
        }
        let automaton = if keywords.is_empty() {
            None
        } else {
            match AhoCorasickBuilder::new()
                .ascii_case_insensitive(true)
                .match_kind(MatchKind::Standard)
                .build(keywords.iter().map(|k| k.text.as_str()))
            {
                Ok(a) => Some(a),
                Err(e) => {
                    problems.push(format!("classify.rules: keywords: {e}"));
                    None
                }
            }
        };
        if !problems.is_empty() {
            return Err(problems);
        }
        Ok(Classifier {
            rules,
            keywords,
            automaton,
            patterns,
            vip_addresses: s.vip_addresses.clone(),
            vip_domains,
        })
    }

    /// The built-in rules only.
    pub fn builtin() -> Classifier {
        // The built-in rules are tested to compile; an empty classifier is the safe fallback.
        Classifier::new(&ClassifySettings::default()).unwrap_or_else(|_| Classifier {
            rules: Vec::new(),
            keywords: Vec::new(),
            automaton: None,
            patterns: Vec::new(),
            vip_addresses: Vec::new(),
            vip_domains: Vec::new(),
        })
    }

    pub fn is_vip(&self, sender: Option<&EmailAddress>) -> bool {
        let Some(s) = sender else { return false };
        if self.vip_addresses.contains(s) {
            return true;
        }
        let domain = s.domain();
        self.vip_domains.iter().any(|d| {
            domain == d
                || (domain.len() > d.len()
                    && domain.ends_with(d.as_str())
                    && domain.as_bytes()[domain.len() - d.len() - 1] == b'.')
        })
    }

    /// Classifies one mail from its sender, subject and new text.
    pub fn classify(
        &self,
        sender: Option<&EmailAddress>,
        subject: &str,
        text: &str,
    ) -> Classification {
        let language = detect_language(subject, text);
        let mut buf = String::with_capacity(subject.len() + 1 + text.len().min(MAX_TEXT_BYTES));
        buf.push_str(subject);
        buf.push('\n');
        buf.push_str(truncate(text, MAX_TEXT_BYTES));

        // Which rules fired, and on what.
        let mut fired: Vec<Option<String>> = vec![None; self.rules.len()];
        if let Some(ac) = &self.automaton {
            for m in ac.find_overlapping_iter(buf.as_str()) {
                let k = &self.keywords[m.pattern().as_usize()];
                if fired[k.rule].is_some() {
                    continue;
                }
                let before = buf[..m.start()].chars().next_back();
                let after = buf[m.end()..].chars().next();
                let alnum = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric());
                if (k.word_start && alnum(before)) || (k.word_end && alnum(after)) {
                    continue;
                }
                if !self.rules[k.rule].applies_to(language) {
                    continue;
                }
                fired[k.rule] = Some(buf[m.start()..m.end()].to_string());
            }
        }
        for (rule, re) in &self.patterns {
            if fired[*rule].is_some() || !self.rules[*rule].applies_to(language) {
                continue;
            }
            if let Some(m) = re.find(&buf) {
                fired[*rule] = Some(m.as_str().to_string());
            }
        }

        let mut category_score = [0i32; 4];
        let mut category_fired = [false; 4];
        let (mut major, mut urgent) = (0i32, 0i32);
        let mut explained = Vec::new();
        for (rule, hit) in self.rules.iter().zip(&fired) {
            let Some(hit) = hit else { continue };
            explained.push(format!("{}({})", rule.name, hit.trim()));
            for t in &rule.targets {
                if let Some(c) = t.category() {
                    let i = c as usize;
                    category_score[i] += rule.weight;
                    category_fired[i] |= rule.weight > 0;
                }
                match t {
                    Target::Major => major += rule.weight,
                    Target::Urgent => urgent += rule.weight,
                    _ => {}
                }
            }
        }
        let category = Category::ALL
            .into_iter()
            .filter(|c| category_fired[*c as usize] && category_score[*c as usize] > 0)
            .min_by_key(|c| (-category_score[*c as usize], tie_rank(*c)))
            .unwrap_or(Category::Inquiry);
        let severity = (category == Category::Complaint).then_some(if major > 0 {
            Severity::Major
        } else {
            Severity::General
        });
        let urgent = urgent > 0;
        let vip = self.is_vip(sender);
        Classification {
            language,
            category,
            severity,
            urgent,
            vip,
            priority: Priority::derive(category, severity, urgent, vip),
            rules: explained,
        }
    }
}

impl Rule {
    fn applies_to(&self, l: Language) -> bool {
        self.languages.is_empty() || self.languages.contains(&l)
    }
}

fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

// ---- language ---------------------------------------------------------------------------------

const HAN_START: u32 = 0x4E00;
const HAN_END: u32 = 0x9FFF;

/// For each character of the CJK Unified Ideographs block: bit 0 = Simplified-only, bit 1 =
/// Traditional-only. Derived from Big5 (Traditional) and the GB2312 region of GBK (Simplified).
static SCRIPT_TABLE: LazyLock<Vec<u8>> = LazyLock::new(|| {
    let mut table = vec![0u8; (HAN_END - HAN_START + 1) as usize];
    let mut buf = [0u8; 4];
    for (i, slot) in table.iter_mut().enumerate() {
        let Some(c) = char::from_u32(HAN_START + i as u32) else {
            continue;
        };
        let s = c.encode_utf8(&mut buf);
        let (big5, _, big5_err) = encoding_rs::BIG5.encode(s);
        let (gbk, _, gbk_err) = encoding_rs::GBK.encode(s);
        let in_big5 = !big5_err && big5.len() == 2;
        let in_gb2312 = !gbk_err
            && gbk.len() == 2
            && (0xB0..=0xF7).contains(&gbk[0])
            && (0xA1..=0xFE).contains(&gbk[1]);
        *slot = match (in_gb2312, in_big5) {
            (true, false) => 1,
            (false, true) => 2,
            _ => 0,
        };
    }
    table
});

fn is_han(c: char) -> bool {
    matches!(c as u32, 0x4E00..=0x9FFF | 0x3400..=0x4DBF | 0xF900..=0xFAFF | 0x20000..=0x2FA1F)
}

/// 1: Simplified-only, 2: Traditional-only, 0: shared or outside the table.
fn script_of(c: char) -> u8 {
    let u = c as u32;
    if (HAN_START..=HAN_END).contains(&u) {
        SCRIPT_TABLE[(u - HAN_START) as usize]
    } else {
        0
    }
}

/// The language of a mail, from its subject and (new) text.
pub fn detect_language(subject: &str, text: &str) -> Language {
    let (mut han, mut latin, mut other, mut simp, mut trad, mut kana) =
        (0usize, 0usize, 0usize, 0usize, 0usize, 0usize);
    for c in subject
        .chars()
        .chain(truncate(text, MAX_TEXT_BYTES).chars())
    {
        if is_han(c) {
            han += 1;
            match script_of(c) {
                1 => simp += 1,
                2 => trad += 1,
                _ => {}
            }
        } else if c.is_ascii_alphabetic() {
            latin += 1;
        } else if c.is_alphabetic() && !matches!(c as u32, 0x3040..=0x30FF | 0xAC00..=0xD7AF) {
            // Accented Latin, Cyrillic …: not English.
            other += 1;
        } else if c.is_alphabetic() {
            // Kana and Hangul weigh more: a few of them make a mail Japanese or Korean.
            other += 2;
            kana += 1;
        }
    }
    // Japanese writes kanji among kana (particles, endings); Korean may carry hanja among
    // Hangul. Kanji are not Chinese then: a mail whose kana/Hangul are at least a fifth of its
    // Han characters is neither zh-Hans nor zh-Hant (it gets the fallback wording).
    if kana >= 2 && kana * 5 >= han {
        return Language::Other;
    }
    // A Chinese mail often carries English product names; a few Han characters in an English
    // mail (a name) do not make it Chinese. One Han character carries about as much as a word.
    if han >= 2 && han * 4 >= latin / 2 {
        return if trad > simp {
            Language::ZhHant
        } else {
            Language::ZhHans
        };
    }
    if latin == 0 && other == 0 {
        return if han > 0 {
            Language::ZhHans
        } else {
            Language::Other
        };
    }
    if other * 5 > latin {
        return Language::Other;
    }
    Language::En
}

// ---- built-in rules ---------------------------------------------------------------------------

struct Builtin {
    name: &'static str,
    targets: &'static [Target],
    weight: i32,
    keywords: &'static [&'static str],
    patterns: &'static [&'static str],
}

impl Builtin {
    fn to_config(&self) -> RuleConfig {
        RuleConfig {
            name: self.name.to_string(),
            target: Targets::Many(self.targets.to_vec()),
            keywords: self.keywords.iter().map(|s| s.to_string()).collect(),
            patterns: self.patterns.iter().map(|s| s.to_string()).collect(),
            weight: self.weight,
            languages: Vec::new(),
        }
    }
}

use Target::{Complaint, Inquiry, Major, StatusQuery, Suggestion, Urgent};

/// The built-in rules, Simplified and Traditional forms side by side. Documented in the README;
/// `supportd inspect` shows which fired.
const BUILTIN: &[Builtin] = &[
    // --- inquiry (咨询): questions about products, use, process ---
    Builtin {
        name: "inquiry-words",
        targets: &[Inquiry],
        weight: 1,
        keywords: &[
            "请问",
            "請問",
            "咨询",
            "諮詢",
            "想了解",
            "想问",
            "想問",
            "问一下",
            "問一下",
            "想知道",
            "想确认",
            "想確認",
            "怎样",
            "怎樣",
            "怎么",
            "怎麼",
        ],
        patterns: &[],
    },
    Builtin {
        name: "inquiry-how",
        targets: &[Inquiry],
        weight: 2,
        keywords: &[
            "如何",
            "怎么操作",
            "怎麼操作",
            "怎么设置",
            "怎麼設定",
            "怎么用",
            "怎麼用",
            "怎么办",
            "怎麼辦",
            "是否",
            "能不能",
            "可不可以",
            "有没有",
            "有沒有",
            "多久",
            "多少",
            "哪些",
            "哪里",
            "哪裡",
            "什么材料",
            "什麼資料",
            "需要准备",
            "需要準備",
            "需要提供",
            "支持哪些",
            "how do i",
            "how can i",
            "how long",
            "how much",
            "how does",
            "is it possible",
            "do you",
            "does your",
            "does the",
            "does it",
            "can i",
            "can we",
            "can admins",
            "could you tell",
            "could you explain",
            "what is your",
            "what is the",
            "what are",
            "what address",
            "what formats",
            "which",
            "are your",
            "is there",
            "is it available",
            "available on",
            "where do i",
            "what do i",
            "what should i do",
            "quick question",
            "one more thing",
        ],
        patterns: &[
            r"可以[^，。？?]{0,12}[吗嗎]",
            r"支[持援][^，。？?]{0,12}[吗嗎]",
            r"有[^，。？?]{0,8}[吗嗎][？?]",
            r"(叠加|疊加|通用|兼容|相容)[^，。]{0,6}[吗嗎]",
        ],
    },
    Builtin {
        name: "question-mark",
        targets: &[Inquiry],
        weight: 1,
        keywords: &["?", "？"],
        patterns: &[],
    },
    Builtin {
        name: "complaint-as-topic",
        targets: &[Inquiry],
        weight: 2,
        keywords: &[
            "complaints procedure",
            "complaint procedure",
            "complaints process",
            "complaint process",
        ],
        patterns: &[
            r"(如何|怎么|怎麼|怎样|怎樣|什么渠道|什麼管道|什么途径|哪里|哪裡|要怎麼|应该通过|應該透過)[^，。！!]{0,8}(投诉|投訴|申诉|申訴|客訴)",
            r"(投诉|投訴|申诉|申訴)(电话|電話|渠道|管道|流程|专线|專線|时限|時限|方式)",
            r"处理投诉|處理投訴",
            r"how (do|can|would) i (file|make|raise|submit|lodge) a complaint",
        ],
    },
    Builtin {
        name: "complaint-as-topic-not-complaint",
        targets: &[Complaint],
        weight: -3,
        keywords: &[
            "complaints procedure",
            "complaint procedure",
            "complaints process",
            "complaint process",
            "complaints form",
            "complaint form",
            "投诉流程",
            "投訴流程",
            "投诉入口",
            "一键投诉",
        ],
        patterns: &[
            r"(如何|怎么|怎麼|怎样|怎樣|什么渠道|什麼管道|什么途径|哪里|哪裡|要怎麼|应该通过|應該透過)[^，。！!]{0,8}(投诉|投訴|申诉|申訴|客訴)",
            r"(投诉|投訴|申诉|申訴)(电话|電話|渠道|管道|专线|專線|时限|時限|方式)",
            r"处理投诉|處理投訴",
        ],
    },
    // --- status query (查询): progress or result of an order, refund, repair, earlier request ---
    Builtin {
        name: "status-words",
        targets: &[StatusQuery],
        weight: 3,
        keywords: &[
            "还要等",
            "還要等",
            "是不是漏掉",
            "是不是忘了",
            "where are we with",
            "can you check",
            "is it still",
            "haven't seen it",
            "still being reviewed",
            "待审核",
            "待審核",
            "进度",
            "進度",
            "进展",
            "進展",
            "到哪了",
            "到哪里了",
            "到哪裡了",
            "到哪一步",
            "在哪里",
            "在哪裡",
            "卡在哪",
            "怎么样了",
            "怎麼樣了",
            "什么情况",
            "什麼情況",
            "什么状态",
            "什麼狀態",
            "处理结果",
            "處理結果",
            "审核中",
            "審核中",
            "审批到",
            "審批到",
            "处理中",
            "處理中",
            "一直显示",
            "一直顯示",
            "迟迟",
            "遲遲",
            "催一下",
            "跟进",
            "跟進",
            "还没到账",
            "還沒入帳",
            "没有到账",
            "准备好了吗",
            "準備好了嗎",
            "收到了吗",
            "收到了嗎",
            "幾天內",
            "几天内",
            "where is my",
            "where's my",
            "where is it",
            "status of",
            "any update",
            "any news",
            "any progress",
            "update on",
            "what is the status",
            "when can i expect",
            "when will",
            "how much longer",
            "has anyone",
            "heard back",
            "haven't heard",
            "still nothing",
            "still waiting",
            "still no",
            "has it been",
            "tracking",
            "hasn't updated",
            "not updated",
            "checking in",
            "following up",
            "chasing",
            "confirm the delivery date",
            "been approved yet",
            "been sent yet",
            "is the parcel lost",
            "hasn't arrived",
            "has not arrived",
            "haven't received",
            "not received",
            "scheduled",
        ],
        patterns: &[
            r"(了|过|過)(没有|沒有)[？?]",
            r"(寄|发|發|到|退|办|辦|处理|處理)了(没|沒)",
            r"(什么时候|什麼時候|何时|何時|多久|几天|幾天)[^，。？?]{0,8}(到账|到賬|入账|入帳|发货|發貨|出货|出貨|寄出|寄回|退款|处理|處理|取件|能到|会到|會到|发出|發出|发给|發給|上门|上門|通过|通過|好)",
            r"(还|還)(没|沒)有?[^，。？?]{0,4}(到账|到賬|入账|入帳|收到|发货|發貨|出货|出貨|寄出|退|到|配送|上门|上門|更新|结果|結果|人上门|取件|通过|通過|处理|處理|回复|回覆)",
            r"有(进展|進展|结果|結果|消息|下文)了?[吗嗎]",
            r"(发|發|寄|退|到|处理|處理|审核|審核|通过|通過|批|开|開|下载|下載|完成|安排|修好|派|回复|回覆|收到|出来|出來|更新|办好|辦好|确认|確認|入账|入帳|生效|上线|上線)[^，。？?]{0,3}了[吗嗎没沒]",
            r"(第[一二三四五六七八九十\d]+天|[一二三四五六七八九十两兩\d]+\s*(天|周|週|个月|個月)了)",
            r"(物流|快递|快遞|包裹|tracking)[^，。]{0,10}(没有?更新|沒有?更新|不更新)",
            r"(状态|狀態|status)[^，。]{0,10}(一直|还是|還是|still)",
            r"(?-u:\b)(has|have) (it|my [a-z ]{1,30}|the [a-z ]{1,30}) been (sent|shipped|approved|processed|dispatched|looked at)",
            r"(?-u:\b)(ordered|paid|sent|submitted|applied|returned|requested)(?-u:\b)[^.?!]{0,60}(?-u:\b)(still|yet)(?-u:\b)",
            r"(?-u:\b)yet\?",
        ],
    },
    Builtin {
        name: "status-earlier-request",
        targets: &[StatusQuery],
        weight: 2,
        keywords: &[
            "filed a complaint",
            "made a complaint",
            "raised a complaint",
            "投诉过",
            "投訴過",
            "提出申訴",
            "提出申诉",
            "之前申请",
            "之前申請",
            "上次的问题",
        ],
        patterns: &[
            r"我(之前|上次|上周|上週|前几天|前幾天|周一|週一)?(咨询|諮詢|申请|申請|提交|报修|報修)的",
            r"我(上周|上週|之前|上次)[^，。]{0,4}(投诉|投訴|申诉|申訴)",
            r"(上个月|上個月|上周|上週|昨天|前天|周[一二三四五六日]|週[一二三四五六日]|星期[一二三四五六日天]|[一二三四五六七八九十两兩\d]+天前|之前|上次)[^，。]{0,6}(提交|申请|申請|下单|下單|下的|寄出|寄回|退回|报修|報修|付款|送修)",
            r"(?-u:\b)(on (monday|tuesday|wednesday|thursday|friday|saturday|sunday|the \d+(st|nd|rd|th)?)|last week|\d+ days ago)(?-u:\b)",
        ],
    },
    Builtin {
        name: "status-earlier-request-not-complaint",
        targets: &[Complaint],
        weight: -2,
        keywords: &[
            "filed a complaint",
            "made a complaint",
            "raised a complaint",
            "投诉过",
            "投訴過",
            "提出申訴",
            "提出申诉",
        ],
        patterns: &[r"我(上周|上週|之前|上次)[^，。]{0,4}(投诉|投訴|申诉|申訴)"],
    },
    // --- complaint (投诉): dissatisfaction with a product, service, charge or person ---
    Builtin {
        name: "complaint-words",
        targets: &[Complaint],
        weight: 3,
        keywords: &[
            "投诉",
            "投訴",
            "客訴",
            "不满",
            "不滿",
            "不满意",
            "不滿意",
            "失望",
            "complain*",
            "disappoint*",
            "not satisfied",
            "dissatisfied",
            "unhappy",
            "not happy",
        ],
        patterns: &[],
    },
    Builtin {
        name: "complaint-emotion",
        targets: &[Complaint],
        weight: 3,
        keywords: &[
            "什么道理",
            "什麼道理",
            "合适吗",
            "合適嗎",
            "不能接受",
            "无法接受",
            "無法接受",
            "甩脸色",
            "甩臉色",
            "体验非常不好",
            "體驗非常不好",
            "体验很差",
            "體驗很差",
            "气死",
            "氣死",
            "is a joke",
            "a joke",
            "disgusted",
            "not acceptable",
            "won't refund",
            "can't believe",
            "太差",
            "很差",
            "非常差",
            "极差",
            "極差",
            "態度差",
            "态度差",
            "态度恶劣",
            "態度惡劣",
            "糟糕",
            "恶劣",
            "惡劣",
            "差评",
            "差評",
            "生气",
            "生氣",
            "气愤",
            "氣憤",
            "愤怒",
            "憤怒",
            "恼火",
            "惱火",
            "无语",
            "無語",
            "受够了",
            "受夠了",
            "忍无可忍",
            "忍無可忍",
            "心寒",
            "寒心",
            "不愉快",
            "很不爽",
            "糟心",
            "闹心",
            "鬧心",
            "太过分",
            "太過分",
            "不像话",
            "不像話",
            "很凶",
            "好凶",
            "太凶",
            "还很凶",
            "還很凶",
            "不耐烦",
            "不耐煩",
            "挂电话",
            "掛電話",
            "翻白眼",
            "敷衍",
            "推脱",
            "推託",
            "推诿",
            "推諉",
            "踢皮球",
            "扯皮",
            "不负责任",
            "不負責任",
            "不专业",
            "不專業",
            "到底有没有人管",
            "怎么管理的",
            "怎麼管理的",
            "欺骗",
            "欺騙",
            "骗人",
            "騙人",
            "骗子",
            "騙子",
            "欺诈",
            "欺詐",
            "坑人",
            "黑心",
            "上当",
            "上當",
            "忽悠",
            "套路",
            "霸王条款",
            "霸王條款",
            "不厚道",
            "不合理",
            "angry",
            "furious",
            "livid",
            "annoyed",
            "frustrat*",
            "fed up",
            "sick of",
            "let down",
            "let-down",
            "upset",
            "appalled",
            "outrageous",
            "ridiculous",
            "shocking",
            "disgraceful",
            "pathetic",
            "horrible",
            "terrible",
            "awful",
            "worst",
            "useless",
            "incompetent",
            "unprofessional",
            "unacceptable",
            "rude",
            "scam",
            "rip-off",
            "ripped off",
            "cheated",
            "misleading",
            "false advertising",
            "never again",
            "not good enough",
        ],
        patterns: &[],
    },
    Builtin {
        name: "complaint-outcome",
        targets: &[Complaint],
        weight: 2,
        keywords: &[
            "掉漆",
            "断了",
            "斷了",
            "上错",
            "上錯",
            "扣手续费",
            "扣手續費",
            "收了我",
            "skipped",
            "wilted",
            "not what i paid for",
            "part of my money",
            "refunded",
            "still no engineer",
            "摔坏",
            "摔壞",
            "坏了",
            "壞了",
            "瑕疵",
            "裂痕",
            "破损",
            "破損",
            "刮花",
            "划痕",
            "劃痕",
            "迟到",
            "遲到",
            "没声音",
            "沒聲音",
            "质量差",
            "品質太差",
            "质量太差",
            "面料也很差",
            "没清干净",
            "沒有清乾淨",
            "冷了",
            "化了",
            "漏汤",
            "漏湯",
            "延期",
            "一拖再拖",
            "拖了",
            "没人处理",
            "沒人處理",
            "没人接",
            "沒人接",
            "联系不上",
            "聯繫不上",
            "没有任何人联系",
            "沒有任何人聯繫",
            "没人联系",
            "沒人聯繫",
            "白修",
            "白跑",
            "没有下文",
            "沒有下文",
            "描述不符",
            "发错",
            "發錯",
            "寄错",
            "寄錯",
            "少发",
            "少發",
            "漏发",
            "漏發",
            "缺了",
            "假货",
            "假貨",
            "次品",
            "劣质",
            "劣質",
            "过期",
            "過期",
            "变质",
            "變質",
            "发霉",
            "發霉",
            "异味",
            "異味",
            "不能用",
            "没效果",
            "沒效果",
            "没用",
            "沒用",
            "乱扣费",
            "亂扣費",
            "乱收费",
            "亂收費",
            "多扣",
            "多收",
            "重复扣款",
            "重複扣款",
            "补运费",
            "補運費",
            "不退",
            "拒绝退款",
            "拒絕退款",
            "收了钱",
            "收了錢",
            "不发货",
            "不發貨",
            "没解决",
            "没有解决",
            "沒有解決",
            "还是没解决",
            "还是不行",
            "還是不行",
            "等于白",
            "等於白",
            "broken",
            "damaged",
            "cracked",
            "crushed",
            "scratched",
            "dented",
            "stained",
            "ruined",
            "faulty",
            "defective",
            "poor quality",
            "fell apart",
            "missing",
            "wrong item",
            "not as described",
            "expired",
            "mouldy",
            "moldy",
            "spoiled",
            "leaking",
            "charged twice",
            "double charged",
            "still charged",
            "charged again",
            "charged me again",
            "overcharg*",
            "overbill*",
            "hidden fee",
            "on hold for",
            "hung up",
            "ignored",
            "no response",
            "no reply",
            "nobody answered",
            "nobody has contacted",
            "no one has contacted",
            "never came",
            "never arrived",
            "didn't work",
            "did not work",
            "doesn't work",
            "stopped working",
            "still isn't solved",
            "still not solved",
            "still not fixed",
            "still not working",
            "still broken",
            "still won't",
            "still crashes",
            "took five days",
            "really slow",
        ],
        patterns: &[
            r"第[二三四五六两兩]次(了|写信|寫信|联系|聯繫|换货|換貨|上门|上門|来|來)",
            r"已经是第[二三四五六两兩]次",
            r"(?-u:\b)(second|third|fourth|fifth) (time|visit|call|attempt)(?-u:\b)",
            r"(?-u:\b)(again|three days in a row)(?-u:\b)[^.?!]{0,40}$",
            r"(扣|收)了?我[^，。]{0,6}\d+\s*(元|块|塊)",
            r"(明明|已经|已經)[^，。]{0,10}(关闭|關閉|取消)[^，。]{0,10}(还是|還是|仍然)",
            r"(i|we) (cancelled|canceled)[^.]{0,40}(still|again)",
            r"why was i charged",
            r"(搞错|搞錯)[^，。]{0,4}(时间|時間)?",
        ],
    },
    Builtin {
        name: "complaint-demand",
        targets: &[Complaint],
        weight: 2,
        keywords: &[
            "严肃处理",
            "嚴肅處理",
            "给个交代",
            "給個交代",
            "要求赔偿",
            "要求賠償",
            "赔偿",
            "賠償",
            "道歉",
            "退还",
            "退還",
            "put right",
            "i expect an apology",
            "apologi*",
            "compensation",
            "money back",
            "refund me",
            "fix this",
            "make this right",
        ],
        patterns: &[r"(给|給|有)(个|個|一个|一個)?(说法|說法|说明|說明|解释|解釋|交代)"],
    },
    Builtin {
        name: "complaint-mild",
        targets: &[Complaint],
        weight: 1,
        keywords: &[
            "可惜",
            "有些失望",
            "有點失望",
            "不太满意",
            "不太滿意",
            "失落",
            "受影响",
            "受影響",
            "frankly",
            "honestly",
            "a bit of a",
            "had to go out",
        ],
        patterns: &[],
    },
    // --- major complaint (重大投诉): legal, media, regulators, safety, big losses ---
    Builtin {
        name: "major-legal-media",
        targets: &[Major],
        weight: 3,
        keywords: &[
            "银保监",
            "銀保監",
            "chargeback",
            "律师",
            "律師",
            "起诉",
            "起訴",
            "诉讼",
            "訴訟",
            "法院",
            "法律行动",
            "法律行動",
            "法律程序",
            "法律途径",
            "法律途徑",
            "仲裁",
            "维权",
            "維權",
            "媒体",
            "媒體",
            "记者",
            "記者",
            "电视台",
            "電視台",
            "曝光",
            "爆料",
            "新闻",
            "新聞",
            "12315",
            "消费者协会",
            "消費者協會",
            "消协",
            "消保會",
            "消保会",
            "工商局",
            "市场监管",
            "市場監管",
            "监管部门",
            "監管部門",
            "报警",
            "報警",
            "lawyer",
            "solicitor",
            "attorney",
            "legal action",
            "lawsuit",
            "sue",
            "suing",
            "court",
            "tribunal",
            "arbitration",
            "small claims",
            "formal notice",
            "trading standards",
            "consumer protection",
            "the press",
            "journalist",
            "newspaper",
            "bbc",
            "regulator*",
            "ombudsman",
            "report you to",
        ],
        patterns: &[],
    },
    Builtin {
        name: "major-safety",
        targets: &[Major, Urgent],
        weight: 3,
        keywords: &[
            "后怕",
            "後怕",
            "召回",
            "catch fire",
            "swollen",
            "swelling",
            "起火",
            "着火",
            "著火",
            "爆炸",
            "烧了",
            "燒了",
            "烧伤",
            "燒傷",
            "烫伤",
            "燙傷",
            "触电",
            "觸電",
            "漏电",
            "漏電",
            "冒烟",
            "冒煙",
            "火花",
            "受伤",
            "受傷",
            "住院",
            "中毒",
            "吞下",
            "窒息",
            "拉肚子",
            "腹泻",
            "腹瀉",
            "呕吐",
            "嘔吐",
            "过敏",
            "過敏",
            "差点出事",
            "差點出事",
            "安全问题",
            "安全問題",
            "安全隐患",
            "安全隱患",
            "太危险",
            "太危險",
            "困人",
            "caught fire",
            "explod*",
            "injur*",
            "burned",
            "burnt",
            "hospital",
            "food poisoning",
            "electric shock",
            "sparks",
            "smoke",
            "choking",
            "gets hurt",
            "get hurt",
            "got hurt",
            "dangerous",
            "recall",
            "safety issue",
            "safety hazard",
            "safety risk",
        ],
        patterns: &[],
    },
    Builtin {
        name: "major-data-money",
        targets: &[Major],
        weight: 3,
        keywords: &[
            "泄露",
            "洩露",
            "外泄",
            "外洩",
            "data breach",
            "breach",
            "exposed",
            "data leak",
            "被转走",
            "被轉走",
            "盗刷",
            "盜刷",
            "被盗",
            "被盜",
            "资金周转困难",
            "資金周轉困難",
            "overdraft fees",
            "costing us",
        ],
        patterns: &[
            r"(\d+(\.\d+)?|[一二两兩三四五六七八九十百千]+)\s*[万萬]\s*(元|块|塊)?",
            r"[$£€]\s?\d{1,3}(,\d{3})+",
            r"(业务|業務)(已经|已經)?(停|瘫痪|癱瘓|停擺)",
            r"(全公司|所有员工|所有員工|全部员工|整个公司|整個公司)[^，。]{0,8}(无法|無法|不能)",
            r"(none|all) of our (users|staff|employees|customers)",
        ],
    },
    // --- suggestion (建议): ideas for products and service ---
    Builtin {
        name: "suggestion-words",
        targets: &[Suggestion],
        weight: 3,
        keywords: &[
            "it'd be great",
            "would be great",
            "could you let us",
            "let us filter",
            "能和",
            "共享",
            "建议",
            "建議",
            "提议",
            "提議",
            "可以考虑",
            "可以考慮",
            "考虑一下",
            "考慮一下",
            "考慮看看",
            "就好了",
            "就太好了",
            "就方便多了",
            "最好能",
            "不妨",
            "suggest*",
            "feature request",
            "it would be great if",
            "would be nice",
            "it'd be nice",
            "would be handy",
            "it'd be handy",
            "wouldn't it be",
            "would it be possible to add",
            "have you considered",
            "please consider",
            "consider adding",
            "please add",
            "you should add",
            "you could add",
            "how about adding",
            "nice to have",
            "an idea",
            "just an idea",
            "i wish",
            "i'd love",
            "roadmap",
            "would make",
            "would help",
            "would save",
            "should let",
        ],
        patterns: &[
            r"希望(以后|以後|你们|你們|能|可以|贵司|貴司|开通|開通|增加|提供)[^，。]{0,20}",
            r"(增加|加)(一个|一個|个|個)[^，。]{0,12}(模式|功能|入口|按钮|按鈕|选项|選項)",
            r"可以再[^，。]{0,6}(简化|簡化|改进|改進|优化|優化)",
            r"如果[^，。]{0,30}(就好了|就太好了|就方便)",
            r"要是[^，。]{0,30}就[^，。]{0,4}(好|方便|更)",
            r"(能不能|能否|可不可以|可否)[^，。？?]{0,12}(一点|一點|一些|大些|小些|多些)",
            r"下次[^，。]{0,12}(能|可以|最好)",
        ],
    },
    Builtin {
        name: "praise",
        targets: &[Suggestion],
        weight: 1,
        keywords: &[
            "fantastic",
            "love the app",
            "非常好用",
            "很好用",
            "just wanted to say thanks",
        ],
        patterns: &[],
    },
    // --- urgency: faults, outages and risks needing immediate handling jump the queue ---
    Builtin {
        name: "urgent-fault",
        targets: &[Urgent],
        weight: 3,
        keywords: &[
            "不制冷",
            "不製冷",
            "务必",
            "務必",
            "登录不上",
            "登入不了",
            "错误代码",
            "錯誤代碼",
            "一直失败",
            "一直失敗",
            "账号异常",
            "帳號異常",
            "专线中断",
            "中断",
            "中斷",
            "right away",
            "piling up",
            "no heating",
            "no hot water",
            "stopped working",
            "紧急",
            "緊急",
            "宕机",
            "宕機",
            "当机",
            "當機",
            "死机",
            "死機",
            "断网",
            "斷網",
            "断线",
            "斷線",
            "瘫痪",
            "癱瘓",
            "崩溃",
            "崩潰",
            "挂了",
            "掛了",
            "黑屏",
            "闪退",
            "閃退",
            "卡死",
            "一直在转圈",
            "一直在轉圈",
            "开不了机",
            "開不了機",
            "无法开机",
            "無法開機",
            "没反应",
            "沒反應",
            "无法登录",
            "無法登入",
            "无法登陆",
            "不能登录",
            "登录不了",
            "无法访问",
            "無法存取",
            "无法使用",
            "無法使用",
            "没法下单",
            "沒法下單",
            "无法下单",
            "無法下單",
            "没法用",
            "沒法用",
            "用不了",
            "打不开",
            "打不開",
            "全部超时",
            "全部超時",
            "系统繁忙",
            "系統繁忙",
            "付不了款",
            "不能刷卡",
            "刷不了卡",
            "故障",
            "漏气",
            "漏氣",
            "漏水",
            "煤气味",
            "瓦斯味",
            "停电",
            "停電",
            "冻结账户",
            "凍結帳戶",
            "受影响",
            "受影響",
            "受不了",
            "outage",
            "is down",
            "are down",
            "been down",
            "went down",
            "completely down",
            "urgent*",
            "emergency",
            "asap",
            "as soon as possible",
            "cannot access",
            "can't access",
            "cannot log in",
            "can't log in",
            "service unavailable",
            "unreachable",
            "timing out",
            "failing",
            "won't start",
            "won't turn on",
            "keeps crashing",
            "leaking",
            "flood*",
            "gas",
            "immediate response",
            "escalate immediately",
            "send someone today",
            "before someone gets hurt",
        ],
        patterns: &[
            r"(急[！!]|[！!]\s*急)",
            r"(马上|馬上|立即|立刻|尽快|盡快)[^，。]{0,4}(处理|處理|派人|帮忙|幫忙|冻结|凍結|排查)",
            r"(?-u:\b)5\d\d\b",
        ],
    },
    Builtin {
        name: "not-urgent",
        targets: &[Urgent],
        weight: -6,
        keywords: &[
            "不急",
            "不着急",
            "不用急",
            "不趕",
            "有空回复",
            "有空回覆",
            "no rush",
            "not urgent",
            "when you get a chance",
            "whenever you can",
        ],
        patterns: &[],
    },
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Correction, TicketClass};

    fn c(subject: &str, text: &str) -> Classification {
        Classifier::builtin().classify(None, subject, text)
    }

    #[test]
    fn simplified_traditional_and_english_are_told_apart() {
        assert_eq!(
            detect_language("退款进度", "您好，我的退款什么时候到账？"),
            Language::ZhHans
        );
        assert_eq!(
            detect_language("退款進度", "您好，我的退款什麼時候到賬？謝謝"),
            Language::ZhHant
        );
        assert_eq!(
            detect_language("Refund", "Hello, when will my refund arrive?"),
            Language::En
        );
    }

    #[test]
    fn the_script_table_comes_from_the_national_charsets() {
        assert_eq!(script_of('这'), 1);
        assert_eq!(script_of('這'), 2);
        assert_eq!(script_of('发'), 1);
        assert_eq!(script_of('發'), 2);
        assert_eq!(script_of('你'), 0, "shared by both scripts");
        assert_eq!(script_of('后'), 0, "后 is also a Traditional character");
    }

    #[test]
    fn mixed_chinese_with_english_product_names_is_chinese() {
        assert_eq!(
            detect_language(
                "iPhone 15 Pro Max 屏幕问题",
                "我的 iPhone 15 Pro Max 屏幕闪烁，AppleCare 能修吗"
            ),
            Language::ZhHans
        );
    }

    #[test]
    fn an_english_mail_signed_with_a_chinese_name_is_english() {
        assert_eq!(
            detect_language(
                "Order status",
                "Could you tell me where my order is? It has been a week. Thanks, 王伟"
            ),
            Language::En
        );
    }

    #[test]
    fn other_scripts_are_other() {
        assert_eq!(detect_language("Заказ", "Где мой заказ?"), Language::Other);
        // Japanese: kanji among kana are not Traditional Chinese.
        assert_eq!(
            detect_language(
                "注文した商品について",
                "先週注文した商品がまだ届いていません。確認していただけますか。"
            ),
            Language::Other
        );
        assert_eq!(
            detect_language(
                "配送状況のお問い合わせ",
                "注文番号12345の配送状況を教えて下さい"
            ),
            Language::Other
        );
        // Korean with hanja.
        assert_eq!(
            detect_language("주문 문의", "주문한 商品이 아직 도착하지 않았습니다"),
            Language::Other
        );
        // A Chinese mail naming a Japanese product keeps its language.
        assert_eq!(
            detect_language(
                "退货申请",
                "我上周买的ポケモン玩具有质量问题，外包装破损，里面的零件也少了两个，希望尽快给我退货退款。"
            ),
            Language::ZhHans
        );
    }

    #[test]
    fn each_category_is_recognised_and_explained() {
        let r = c("投诉快递员", "我要投诉你们的快递员，东西都摔坏了。");
        assert_eq!(r.category, Category::Complaint);
        assert_eq!(r.severity, Some(Severity::General));
        assert_eq!(r.priority, Priority::High);
        assert!(
            r.rules.iter().any(|r| r == "complaint-words(投诉)"),
            "{:?}",
            r.rules
        );

        let r = c(
            "退款什么时候到账",
            "我的退款还没有到账，请帮忙查询一下进度。",
        );
        assert_eq!(r.category, Category::StatusQuery);
        assert_eq!(r.severity, None);

        let r = c("建议增加夜间模式", "建议增加一个夜间模式。");
        assert_eq!(r.category, Category::Suggestion);
        assert_eq!(r.priority, Priority::Low);

        let r = c("Question", "How do I reset my password?");
        assert_eq!(r.category, Category::Inquiry);
        assert_eq!(r.priority, Priority::Normal);
    }

    #[test]
    fn a_question_about_how_to_complain_is_an_inquiry() {
        let r = c("投诉渠道", "请问应该通过什么渠道投诉？有没有投诉电话？");
        assert_eq!(r.category, Category::Inquiry, "{:?}", r.rules);
    }

    #[test]
    fn legal_threats_and_safety_make_a_complaint_major_and_urgent_first() {
        let r = c("起火", "充电宝充电时起火了，这是严重的安全问题。");
        assert_eq!(r.category, Category::Complaint);
        assert_eq!(r.severity, Some(Severity::Major));
        assert!(r.urgent);
        assert_eq!(r.priority, Priority::Urgent);
        let r = c("Legal action", "My solicitor will take legal action.");
        assert_eq!(r.severity, Some(Severity::Major));
    }

    #[test]
    fn latin_keywords_match_whole_words_only() {
        // "sue" inside "issue", "gas" inside "Vegas", "court" inside "courtesy": no match.
        let r = c(
            "An issue",
            "Is there a courtesy call before the Las Vegas delivery?",
        );
        assert!(!r.urgent, "{:?}", r.rules);
        assert_eq!(r.severity, None, "{:?}", r.rules);
        // A prefix keyword matches inflections.
        let r = c("Hi", "I am very disappointed.");
        assert_eq!(r.category, Category::Complaint, "{:?}", r.rules);
    }

    #[test]
    fn negated_urgency_is_not_urgent() {
        assert!(c("系统故障", "登录页面故障了").urgent);
        assert!(!c("系统故障", "登录页面有个小故障，不急，有空回复就行").urgent);
    }

    #[test]
    fn vip_senders_and_domains_are_recognised() {
        let s = ClassifySettings {
            vip_addresses: vec![EmailAddress::parse("ceo@partner.example").expect("addr")],
            vip_domains: vec!["bigcorp.example".into()],
            ..Default::default()
        };
        let k = Classifier::new(&s).expect("compiles");
        let vip = |a: &str| k.is_vip(EmailAddress::parse(a).as_ref());
        assert!(vip("ceo@partner.example"));
        assert!(!vip("intern@partner.example"));
        assert!(vip("a@bigcorp.example"));
        assert!(vip("a@mail.bigcorp.example"));
        assert!(!vip("a@notbigcorp.example"));
        let r = k.classify(
            EmailAddress::parse("a@bigcorp.example").as_ref(),
            "Hi",
            "How do I export?",
        );
        assert!(r.vip);
        assert_eq!(r.priority, Priority::High);
    }

    #[test]
    fn config_rules_add_to_or_replace_the_built_in_ones() {
        let s: ClassifySettings = toml_rules(
            r#"
            [[rules]]
            name = "refund-progress"
            target = "status_query"
            keywords = ["退款单"]
            weight = 5
            [[rules]]
            name = "urgent-fault"
            target = "urgent"
            keywords = ["爆仓"]
            "#,
        );
        let k = Classifier::new(&s).expect("compiles");
        let r = k.classify(None, "退款单", "我的退款单");
        assert_eq!(r.category, Category::StatusQuery);
        assert!(r.rules.iter().any(|x| x.starts_with("refund-progress")));
        // The built-in urgent-fault rule was replaced: 宕机 no longer fires it.
        assert!(!k.classify(None, "宕机", "服务器宕机").urgent);
        assert!(k.classify(None, "爆仓", "仓库爆仓").urgent);
    }

    #[test]
    fn bad_rules_are_reported_with_their_key() {
        let s: ClassifySettings = toml_rules(
            r#"
            [[rules]]
            name = "broken"
            target = "complaint"
            patterns = ["(unclosed"]
            languages = ["fr"]
            "#,
        );
        let err = Classifier::new(&s).expect_err("invalid").join("\n");
        assert!(err.contains("classify.rules[0].patterns[0]"), "{err}");
        assert!(err.contains("classify.rules[0].languages[0]"), "{err}");
    }

    #[test]
    fn a_correction_rederives_priority_and_records_only_what_it_set() {
        let inquiry = TicketClass::of(&c("Question", "How do I reset my password?"));
        let (new, changes) = inquiry.corrected(&Correction {
            category: Some(Category::Complaint),
            ..Default::default()
        });
        assert_eq!(new.category, Category::Complaint);
        assert_eq!(new.severity, Some(Severity::General));
        assert_eq!(new.priority, Priority::High, "derived again");
        assert_eq!(changes.len(), 1, "{changes:?}");
        assert_eq!(changes[0].field, "category");
        let (back, _) = new.corrected(&Correction {
            category: Some(Category::Inquiry),
            priority: Some(Priority::Low),
            ..Default::default()
        });
        assert_eq!(back.severity, None);
        assert_eq!(back.priority, Priority::Low, "an explicit priority wins");
        let (same, changes) = back.corrected(&Correction {
            category: Some(Category::Inquiry),
            ..Default::default()
        });
        assert!(changes.is_empty());
        assert_eq!(same.category, Category::Inquiry);
    }

    #[test]
    fn the_built_in_rules_compile() {
        let k = Classifier::new(&ClassifySettings::default()).expect("built-ins compile");
        assert!(k.rules.len() >= 15);
    }

    fn toml_rules(s: &str) -> ClassifySettings {
        toml::from_str(s).expect("rules")
    }
}
