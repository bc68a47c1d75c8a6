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

pub mod corpus;
pub mod features;
mod language;
pub mod model;
pub use language::detect_language;
use model::{Example, Model, Prediction, TrainOptions};
use std::path::PathBuf;
use std::sync::Arc;

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
    /// Decides on its own: when it fires, its `major` and `urgent` targets hold whatever the
    /// model says (for what must never be missed: legal threats, regulators and media, safety
    /// and injury, data leaks).
    #[serde(default)]
    pub decisive: bool,
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
    /// The trained model: `"builtin"` (the one shipped, trained on the shipped corpus), a file
    /// written by `supportd classify train`, or `"none"` (the rules alone, weighed as before
    /// the model). Default: `<state_dir>/classify-model.bin` when it exists, else `"builtin"`.
    #[serde(default)]
    pub model: Option<String>,
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
            model: None,
        }
    }
}

/// The shipped model, trained on the shipped corpus (`supportd classify train --shipped`
/// rebuilds it; a test checks it is exactly what that gives).
const SHIPPED_MODEL: &[u8] = include_bytes!("model.bin");

/// Which model a classifier uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelSource {
    Builtin,
    File(PathBuf),
    None,
}

impl ModelSource {
    /// From `classify.model` and the state directory (where `classify train` writes).
    pub fn resolve(setting: Option<&str>, state_dir: &std::path::Path) -> ModelSource {
        match setting.map(str::trim) {
            Some("builtin") => ModelSource::Builtin,
            Some("none") => ModelSource::None,
            Some(p) => ModelSource::File(PathBuf::from(p)),
            None => {
                let site = state_dir.join(SITE_MODEL_FILE);
                if site.exists() {
                    ModelSource::File(site)
                } else {
                    ModelSource::Builtin
                }
            }
        }
    }

    pub fn load(&self) -> Result<Option<Arc<Model>>, String> {
        match self {
            ModelSource::None => Ok(None),
            ModelSource::Builtin => {
                static SHIPPED: LazyLock<Result<Arc<Model>, String>> = LazyLock::new(|| {
                    Model::from_bytes(SHIPPED_MODEL)
                        .map(Arc::new)
                        .map_err(|e| e.to_string())
                });
                SHIPPED.clone().map(Some)
            }
            ModelSource::File(p) => {
                let bytes = std::fs::read(p)
                    .map_err(|e| format!("classify.model: {}: {e}", p.display()))?;
                Model::from_bytes(&bytes)
                    .map(|m| Some(Arc::new(m)))
                    .map_err(|e| format!("classify.model: {}: {e}", p.display()))
            }
        }
    }
}

/// How sure the model must be of another category to keep a mail a decisive major rule fired
/// on from being a complaint (chosen by cross-validation on the corpus: overriding only
/// uncertain answers keeps category accuracy, overriding up to 0.9 cost 0.8 points).
const DECISIVE_UNLESS: f32 = 0.5;

/// The site's model in the state directory.
pub const SITE_MODEL_FILE: &str = "classify-model.bin";

#[derive(Clone)]
struct Rule {
    name: String,
    targets: Vec<Target>,
    weight: i32,
    languages: Vec<Language>,
    decisive: bool,
    /// A built-in rule: the shipped model knows it as a feature. A site's own rules are added
    /// to the model's scores by their weight (until `classify train` learns them).
    builtin: bool,
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
    /// The trained model (`None`: the rules alone).
    model: Option<Arc<Model>>,
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
pub(crate) const MAX_TEXT_BYTES: usize = 8 * 1024;

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
            for b in builtin_rules() {
                if s.rules.iter().any(|r| r.name == b.name) {
                    continue;
                }
                specs.push((format!("built-in rule {}", b.name), b.clone()));
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
                builtin: key.starts_with("built-in"),
                name: spec.name.clone(),
                targets: spec.target.to_vec(),
                weight: spec.weight,
                languages,
                decisive: spec.decisive,
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
            model: None,
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
        let mut c = Classifier::new(&ClassifySettings::default()).unwrap_or_else(|_| Classifier {
            model: None,
            rules: Vec::new(),
            keywords: Vec::new(),
            automaton: None,
            patterns: Vec::new(),
            vip_addresses: Vec::new(),
            vip_domains: Vec::new(),
        });
        c.model = ModelSource::Builtin.load().ok().flatten();
        c
    }

    /// This classifier with `model` (`None`: the rules alone).
    pub fn with_model(mut self, model: Option<Arc<Model>>) -> Classifier {
        self.model = model;
        self
    }

    /// Whether a trained model decides (else the rules alone).
    pub fn has_model(&self) -> bool {
        self.model.is_some()
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

    /// The rules that fire on a mail's subject and text, with what they matched (rule order).
    fn fired(&self, language: Language, buf: &str) -> Vec<Option<String>> {
        let mut fired: Vec<Option<String>> = vec![None; self.rules.len()];
        if let Some(ac) = &self.automaton {
            for m in ac.find_overlapping_iter(buf) {
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
            if let Some(m) = re.find(buf) {
                fired[*rule] = Some(m.as_str().to_string());
            }
        }
        fired
    }

    /// The names of the fired rules the model knows as features.
    fn rule_features<'a>(&'a self, fired: &[Option<String>]) -> Vec<&'a str> {
        self.rules
            .iter()
            .zip(fired)
            .filter(|(r, hit)| hit.is_some() && r.builtin)
            .map(|(r, _)| r.name.as_str())
            .collect()
    }

    /// A labelled mail as a training example (its features as the model sees them).
    pub fn example(&self, m: &corpus::LabelledMail, weight: f32) -> Option<Example> {
        let category = m.category()? as usize;
        let text = m.new_text();
        let language = detect_language(&m.subject, &text);
        let buf = Self::buffer(&m.subject, &text);
        let fired = self.fired(language, &buf);
        let f = features::extract(
            &m.subject,
            truncate(&text, MAX_TEXT_BYTES),
            &self.rule_features(&fired),
            false,
        );
        Some(Example {
            features: f.indices,
            category,
            major: (category == Category::Complaint as usize)
                .then(|| m.severity() == Some(Severity::Major)),
            urgent: m.urgent,
            weight,
        })
    }

    fn buffer(subject: &str, text: &str) -> String {
        let mut buf = String::with_capacity(subject.len() + 1 + text.len().min(MAX_TEXT_BYTES));
        buf.push_str(subject);
        buf.push('\n');
        buf.push_str(truncate(text, MAX_TEXT_BYTES));
        buf
    }

    /// Classifies one mail from its sender, subject and new text.
    pub fn classify(
        &self,
        sender: Option<&EmailAddress>,
        subject: &str,
        text: &str,
    ) -> Classification {
        let language = detect_language(subject, text);
        let buf = Self::buffer(subject, text);
        let fired = self.fired(language, &buf);

        // The rules' own scores: everything without a model; with one, a site's own rules.
        let mut category_score = [0i32; 4];
        let mut category_fired = [false; 4];
        let (mut major, mut urgent) = (0i32, 0i32);
        let (mut decisive_major, mut decisive_urgent, mut decisive_not_urgent) =
            (false, false, false);
        let mut explained = Vec::new();
        for (rule, hit) in self.rules.iter().zip(&fired) {
            let Some(hit) = hit else { continue };
            explained.push(format!("{}({})", rule.name, hit.trim()));
            if rule.decisive && rule.weight > 0 {
                decisive_major |= rule.targets.contains(&Target::Major);
                decisive_urgent |= rule.targets.contains(&Target::Urgent);
            }
            if rule.decisive && rule.weight < 0 {
                decisive_not_urgent |= rule.targets.contains(&Target::Urgent);
            }
            if self.model.is_some() && rule.builtin {
                continue;
            }
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
        let (category, is_major, is_urgent) = match &self.model {
            None => (
                Category::ALL
                    .into_iter()
                    .filter(|c| category_fired[*c as usize] && category_score[*c as usize] > 0)
                    .min_by_key(|c| (-category_score[*c as usize], tie_rank(*c)))
                    .unwrap_or(Category::Inquiry),
                major > 0,
                urgent > 0,
            ),
            Some(model) => {
                let names = self.rule_features(&fired);
                let text = truncate(text, MAX_TEXT_BYTES);
                let f = features::extract(subject, text, &names, false);
                let p: Prediction = model.predict(&f);
                // A site's own rules count as their weight in log-odds.
                let score = |c: Category| {
                    p.category[c as usize].max(1e-6).ln() + category_score[c as usize] as f32
                };
                let mut category = Category::ALL
                    .into_iter()
                    .max_by(|a, b| {
                        score(*a)
                            .total_cmp(&score(*b))
                            .then(tie_rank(*b).cmp(&tie_rank(*a)))
                    })
                    .unwrap_or(Category::Inquiry);
                // A legal threat, the regulator or the press, harm to someone, a data leak: a
                // major complaint unless the model is fairly sure it is something else.
                if decisive_major
                    && category != Category::Complaint
                    && p.category[category as usize] < DECISIVE_UNLESS
                {
                    category = Category::Complaint;
                }
                let logit =
                    |q: f32| (q.clamp(1e-6, 1.0 - 1e-6) / (1.0 - q.clamp(1e-6, 1.0 - 1e-6))).ln();
                let is_major = logit(p.major) + major as f32 > 0.0;
                let is_urgent = logit(p.urgent) + urgent as f32 > 0.0;
                // Explanations: the features that weighed most for what was decided.
                let mut rows = vec![category as usize];
                if category == Category::Complaint && is_major {
                    rows.push(4);
                }
                if is_urgent {
                    rows.push(5);
                }
                let tops: Vec<(usize, Vec<(u32, f32)>)> = rows
                    .iter()
                    .map(|r| (*r, model.top_features(&f.indices, *r, 4)))
                    .collect();
                let wanted: Vec<u32> = tops
                    .iter()
                    .flat_map(|(_, t)| t.iter().map(|x| x.0))
                    .collect();
                let named = features::names(subject, text, &names, &wanted);
                let name_of = |i: u32| {
                    named
                        .iter()
                        .find(|(j, _)| *j == i)
                        .map(|(_, n)| n.as_str())
                        .unwrap_or("?")
                };
                for (row, top) in tops {
                    let label = match row {
                        4 => "major",
                        5 => "urgent",
                        _ => category.as_str(),
                    };
                    let top: Vec<String> = top
                        .into_iter()
                        .map(|(i, c)| format!("{} +{c:.2}", name_of(i)))
                        .collect();
                    explained.push(format!(
                        "model:{label}({:.0} %: {})",
                        match row {
                            4 => p.major,
                            5 => p.urgent,
                            r => p.category[r],
                        } * 100.0,
                        top.join(", ")
                    ));
                }
                (category, is_major, is_urgent)
            }
        };
        let severity = (category == Category::Complaint).then_some(if is_major || decisive_major {
            Severity::Major
        } else {
            Severity::General
        });
        let urgent = decisive_urgent || (is_urgent && !decisive_not_urgent);
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

impl Classifier {
    /// This classifier's figures on labelled mail.
    pub fn evaluate(&self, mails: &[corpus::LabelledMail]) -> corpus::Evaluation {
        let mut e = corpus::Evaluation::default();
        for m in mails {
            let k = self.classify(m.sender().as_ref(), &m.subject, &m.new_text());
            e.add(m, &k);
        }
        e
    }
}

/// Trains a model on labelled mail with `classifier`'s rules as features: the shipped corpus
/// and, each counting `correction_weight` times, an ops team's corrections.
pub fn train(
    classifier: &Classifier,
    corpus: &[corpus::LabelledMail],
    corrections: &[corpus::LabelledMail],
    correction_weight: f32,
) -> Model {
    train_with(
        classifier,
        corpus,
        corrections,
        correction_weight,
        TrainOptions::default(),
    )
}

/// [`train`] with other settings (for choosing them by cross-validation on the corpus).
pub fn train_with(
    classifier: &Classifier,
    corpus: &[corpus::LabelledMail],
    corrections: &[corpus::LabelledMail],
    correction_weight: f32,
    options: TrainOptions,
) -> Model {
    let examples: Vec<Example> = corpus
        .iter()
        .filter_map(|m| classifier.example(m, 1.0))
        .chain(
            corrections
                .iter()
                .filter_map(|m| classifier.example(m, correction_weight)),
        )
        .collect();
    Model::train(&examples, options)
}

impl Rule {
    fn applies_to(&self, l: Language) -> bool {
        self.languages.is_empty() || self.languages.contains(&l)
    }
}

pub(crate) fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

// ---- built-in rules ---------------------------------------------------------------------------

/// The built-in rules (`rules.toml`, embedded): the same schema as `[[classify.rules]]`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RulesFile {
    rules: Vec<RuleConfig>,
}

const RULES_TOML: &str = include_str!("rules.toml");

/// The built-in rules as data; a broken file is a bug caught by the tests (no rules then).
fn builtin_rules() -> &'static [RuleConfig] {
    static RULES: LazyLock<Vec<RuleConfig>> = LazyLock::new(|| {
        toml::from_str::<RulesFile>(RULES_TOML)
            .map(|f| f.rules)
            .unwrap_or_default()
    });
    &RULES
}

#[cfg(test)]
mod tests {
    use super::language::script_of;
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
    fn the_shipped_model_is_what_the_shipped_corpus_trains() {
        // `supportd classify train --shipped -o src/inbound/classify/model.bin` made it; a change
        // to the corpus, the features, the rules or the training must come with a new model.
        let corpus = corpus::shipped();
        assert_eq!(corpus.len(), 4700);
        let trained = train(&Classifier::builtin().with_model(None), &corpus, &[], 1.0);
        assert!(
            trained.to_bytes() == SHIPPED_MODEL,
            "model.bin is stale: run `cargo run --release -- classify train --shipped -o src/inbound/classify/model.bin`"
        );
    }

    #[test]
    fn the_built_in_rules_are_data_with_the_config_schema() {
        let rules = builtin_rules();
        assert!(rules.len() >= 20, "{}", rules.len());
        for name in [
            "major-legal-media",
            "major-safety",
            "major-data-leak",
            "not-urgent",
        ] {
            assert!(
                rules.iter().any(|r| r.name == name && r.decisive),
                "{name} is decisive"
            );
        }
        // Every built-in rule also loads as a `[[classify.rules]]` entry.
        let as_config = ClassifySettings {
            builtin_rules: false,
            rules: rules.to_vec(),
            ..Default::default()
        };
        assert!(Classifier::new(&as_config).is_ok());
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
        // A prefix keyword matches inflections (the rule; the model weighs it with the rest).
        let r =
            Classifier::builtin()
                .with_model(None)
                .classify(None, "Hi", "I am very disappointed.");
        assert_eq!(r.category, Category::Complaint, "{:?}", r.rules);
    }

    #[test]
    fn negated_urgency_is_not_urgent() {
        assert!(c("系统故障", "登录页面故障了，现在所有用户都登录不了").urgent);
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
