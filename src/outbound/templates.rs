//! Approved wording: the mail templates in `templates/`, rendered with handlebars in strict mode.
//!
//! A template file is `NAME.LANG.hbs` (`ack.zh-Hans.hbs`) with a small header, then `---`, then
//! the body:
//!
//! ```text
//! approved_by: 客服主管 王敏
//! approved_at: 2026-11-20
//! version: 3
//! subject: [#{{ticket_ref}}] 我们已收到您的来信
//! ---
//! 尊敬的{{customer_name}}：…
//! ```
//!
//! Invariants: every template is approved (has `approved_by`, `approved_at`, `version`); every
//! template is rendered with sample data when loaded, so a missing variable or a syntax error is
//! an error at start, never a blank in a customer's mail; every template the daemon needs exists
//! in every language it answers in. Output is plain text: nothing is HTML-escaped.

use crate::domain::Language;
use handlebars::Handlebars;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The templates the daemon needs, in each of these languages: to customers (`ack`, `survey`,
/// `followup`, `reply` around an agent's text), to agents (`notice_warning`,
/// `notice_escalation`, `notice_new`, `agent_returned`), and the ticket `card` in the shared
/// mailbox. Approved canned answers are `canned_NAME` (sent with `#template NAME`).
pub const REQUIRED: &[&str] = &[
    "ack",
    "survey",
    "followup",
    "reply",
    "notice_warning",
    "notice_escalation",
    "notice_new",
    "agent_returned",
    "card",
];

/// The name prefix of approved canned answers.
pub const CANNED: &str = "canned_";
pub const LANGUAGES: &[Language] = &[Language::ZhHans, Language::ZhHant, Language::En];

#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("cannot read templates directory {dir}: {source}")]
    Dir {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("template {file}: {reason}")]
    Invalid { file: String, reason: String },
    #[error("template {name}.{lang}.hbs is missing from {dir}")]
    Missing {
        name: String,
        lang: &'static str,
        dir: PathBuf,
    },
    #[error("template {name}.{lang} cannot be rendered: {reason}")]
    Render {
        name: String,
        lang: &'static str,
        reason: String,
    },
}

/// Approval metadata of one template.
#[derive(Debug, Clone, Serialize)]
pub struct Approval {
    pub approved_by: String,
    pub approved_at: String,
    pub version: String,
}

/// A rendered mail: subject and plain-text body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub subject: String,
    pub body: String,
}

/// Everything a template may use. Every field is always present (empty when it does not apply),
/// so strict mode only catches typos and unknown variables.
#[derive(Debug, Clone, Default, Serialize)]
pub struct TemplateVars {
    pub customer_name: String,
    pub customer_address: String,
    pub ticket_ref: String,
    pub subject: String,
    pub support_name: String,
    pub support_address: String,
    /// The promises for this ticket, in hours or days ("48", "4.5").
    pub ack_hours: String,
    pub first_solution_hours: String,
    pub progress_hours: String,
    pub supervisor_contact_hours: String,
    pub followup_days: String,
    /// Codes: `complaint`, `major`, `urgent` … (customer wording may branch on them with `eq`).
    pub category: String,
    pub severity: String,
    pub priority: String,
    /// What people read for them, in the template's language (filled when rendering):
    /// `一般投诉`, `普通`, `首次解决`, `已超时`.
    pub category_name: String,
    pub priority_name: String,
    pub promise_name: String,
    pub reason_name: String,
    pub owner: String,
    /// Notices: which promise (`ack`, `solution`, `progress`, `supervisor_contact`,
    /// `followup`), when it is due (local time), how long is left, and why (`warning`, `breach`,
    /// `unsatisfied`).
    pub promise: String,
    pub due_at: String,
    pub remaining: String,
    pub reason: String,
    /// The customer's newest text, shortened (notices to agents only).
    pub summary: String,
    /// The agent a notice is addressed to.
    pub recipient_name: String,
    /// An agent's reply: their name (never their address) and their text.
    pub agent_name: String,
    pub agent_text: String,
    /// Why an agent's mail was returned, one problem per line.
    pub problems: String,
    /// A card: the customer's files that come with it, and any left out (empty when none).
    pub attachments: String,
    /// An agent's reply opens with its own greeting ("王先生您好：", "Dear Mr Wang,") or ends
    /// with its own good wishes: the template leaves out its own, so the customer reads each
    /// once.
    pub agent_greets: bool,
    pub agent_closes: bool,
}

impl TemplateVars {
    pub fn sample() -> Self {
        TemplateVars {
            customer_name: "王先生".into(),
            customer_address: "wang@example.com".into(),
            ticket_ref: "T-000123".into(),
            subject: "退款进度".into(),
            support_name: "客服中心".into(),
            support_address: "support@example.com".into(),
            ack_hours: "24".into(),
            first_solution_hours: "48".into(),
            progress_hours: "24".into(),
            supervisor_contact_hours: "24".into(),
            followup_days: "7".into(),
            category: "complaint".into(),
            severity: "general".into(),
            priority: "high".into(),
            owner: "lina@example.com".into(),
            promise: "solution".into(),
            due_at: "2026-11-30 14:00 Asia/Shanghai".into(),
            remaining: "12 h".into(),
            reason: "breach".into(),
            summary: "您好，我的退款还没有到账。".into(),
            recipient_name: "李娜".into(),
            agent_name: "李娜".into(),
            agent_text: "您的退款已于今天办理，预计 3 个工作日内到账。".into(),
            problems: "第 2 行：\"不清楚\"，请改为\"我为您确认后回复\"".into(),
            attachments: "附件：破损照片.jpg（230 KB）".into(),
            agent_greets: false,
            agent_closes: false,
            ..Default::default()
        }
    }
}

/// Hours or days for people: `48`, `4.5`.
pub fn number_text(v: f64) -> String {
    if (v - v.round()).abs() < 1e-9 {
        format!("{}", v.round() as i64)
    } else {
        format!("{:.1}", v)
    }
}

/// A duration for people: `2 d 3 h`, `9 h 30 min`, `45 min`; negative: `-2 h`.
pub fn duration_text(ms: i64) -> String {
    let sign = if ms < 0 { "-" } else { "" };
    let mins = ms.unsigned_abs() / 60_000;
    let (d, h, m) = (mins / 1440, (mins % 1440) / 60, mins % 60);
    let body = match (d, h, m) {
        (0, 0, m) => format!("{m} min"),
        (0, h, 0) => format!("{h} h"),
        (0, h, m) => format!("{h} h {m} min"),
        (d, 0, _) => format!("{d} d"),
        (d, h, _) => format!("{d} d {h} h"),
    };
    format!("{sign}{body}")
}

pub struct Templates {
    hb: Handlebars<'static>,
    approvals: BTreeMap<String, Approval>,
    dir: PathBuf,
}

impl std::fmt::Debug for Templates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Templates")
            .field("dir", &self.dir)
            .field("templates", &self.approvals.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Templates {
    /// Loads and checks every template in `dir`.
    pub fn load(dir: &Path) -> Result<Templates, TemplateError> {
        let mut hb = Handlebars::new();
        hb.set_strict_mode(true);
        hb.register_escape_fn(handlebars::no_escape);
        let mut approvals = BTreeMap::new();
        let entries = std::fs::read_dir(dir).map_err(|source| TemplateError::Dir {
            dir: dir.to_path_buf(),
            source,
        })?;
        let mut files: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "hbs"))
            .collect();
        files.sort();
        for path in files {
            let file = path.display().to_string();
            let invalid = |reason: String| TemplateError::Invalid {
                file: file.clone(),
                reason,
            };
            let stem = path
                .file_stem()
                .and_then(|s| s.to_str())
                .ok_or_else(|| invalid("file name is not UTF-8".into()))?;
            let (name, lang) = stem
                .split_once('.')
                .ok_or_else(|| invalid("name must be NAME.LANG.hbs".into()))?;
            if Language::from_code(lang).is_none() {
                return Err(invalid(format!(
                    "unknown language {lang:?} (zh-Hans, zh-Hant, en)"
                )));
            }
            let text = std::fs::read_to_string(&path).map_err(|e| invalid(e.to_string()))?;
            let (approval, subject, body) = split_template(&text).map_err(invalid)?;
            let key = format!("{name}.{lang}");
            hb.register_template_string(&format!("{key}.subject"), subject)
                .map_err(|e| invalid(format!("subject: {e}")))?;
            hb.register_template_string(&format!("{key}.body"), body)
                .map_err(|e| invalid(format!("body: {e}")))?;
            approvals.insert(key, approval);
        }
        let t = Templates {
            hb,
            approvals,
            dir: dir.to_path_buf(),
        };
        t.check()?;
        Ok(t)
    }

    /// Every required template exists in every language, every canned answer in all or none of
    /// them, and every template renders with sample data.
    pub fn check(&self) -> Result<(), TemplateError> {
        let canned = (self.approvals.keys())
            .filter_map(|key| key.split_once('.'))
            .map(|(name, _)| name)
            .filter(|name| name.starts_with(CANNED));
        for name in canned.chain(REQUIRED.iter().copied()) {
            for lang in LANGUAGES {
                if !self
                    .approvals
                    .contains_key(&format!("{name}.{}", lang.code()))
                {
                    return Err(TemplateError::Missing {
                        name: name.to_string(),
                        lang: lang.code(),
                        dir: self.dir.clone(),
                    });
                }
            }
        }
        for key in self.approvals.keys() {
            let (name, lang) = key.split_once('.').unwrap_or((key, "en"));
            let lang = Language::from_code(lang).unwrap_or(Language::En);
            self.render(name, lang, &TemplateVars::sample())?;
        }
        Ok(())
    }

    pub fn approvals(&self) -> &BTreeMap<String, Approval> {
        &self.approvals
    }

    /// Whether a canned answer `canned_NAME` exists.
    pub fn has_canned(&self, name: &str) -> bool {
        self.approvals
            .contains_key(&format!("{CANNED}{name}.{}", Language::En.code()))
    }

    /// The canned answers' names (without the prefix).
    pub fn canned(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .approvals
            .keys()
            .filter_map(|k| k.split_once('.').map(|(n, _)| n))
            .filter_map(|n| n.strip_prefix(CANNED))
            .map(str::to_string)
            .collect();
        v.dedup();
        v
    }

    /// Renders template `name` in the customer's language.
    pub fn render(
        &self,
        name: &str,
        lang: Language,
        vars: &TemplateVars,
    ) -> Result<Rendered, TemplateError> {
        let lang = lang.template_language();
        let key = format!("{name}.{}", lang.code());
        let err = |e: handlebars::RenderError| TemplateError::Render {
            name: name.to_string(),
            lang: lang.code(),
            reason: e.to_string(),
        };
        let named;
        let vars = if vars.category.is_empty()
            && vars.priority.is_empty()
            && vars.promise.is_empty()
            && vars.reason.is_empty()
        {
            vars
        } else {
            use crate::outbound::labels;
            named = TemplateVars {
                category_name: labels::class_name(lang, &vars.category, &vars.severity),
                priority_name: labels::name(lang, &vars.priority),
                promise_name: labels::name(lang, &vars.promise),
                reason_name: labels::name(lang, &vars.reason),
                ..vars.clone()
            };
            &named
        };
        let subject = self
            .hb
            .render(&format!("{key}.subject"), vars)
            .map_err(err)?;
        let body = self.hb.render(&format!("{key}.body"), vars).map_err(err)?;
        Ok(Rendered {
            subject: subject.trim().replace(['\r', '\n'], " "),
            body: body.trim().to_string() + "\n",
        })
    }
}

fn split_template(text: &str) -> Result<(Approval, &str, &str), String> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let (head, body) = text
        .split_once("\n---\n")
        .ok_or("missing the `---` line between header and body")?;
    let mut fields: BTreeMap<&str, &str> = BTreeMap::new();
    for line in head
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
    {
        let (k, v) = line
            .split_once(':')
            .ok_or_else(|| format!("header line without `key: value`: {line:?}"))?;
        fields.insert(k.trim(), v.trim());
    }
    let get = |k: &str| -> Result<&str, String> {
        fields
            .get(k)
            .copied()
            .filter(|v| !v.is_empty())
            .ok_or_else(|| format!("not approved: header `{k}` is missing"))
    };
    let approval = Approval {
        approved_by: get("approved_by")?.to_string(),
        approved_at: get("approved_at")?.to_string(),
        version: get("version")?.to_string(),
    };
    Ok((approval, get("subject")?, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo_templates() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("templates")
    }

    /// What agents read names the class, priority and promise in their language, never the
    /// codes; a reply whose agent greets the customer greets once.
    #[test]
    fn cards_notices_and_replies_speak_people_s_words_in_each_language() {
        let t = Templates::load(&repo_templates()).expect("templates load");
        let vars = TemplateVars {
            category: "complaint".into(),
            severity: "general".into(),
            priority: "normal".into(),
            promise: "supervisor_contact".into(),
            reason: "breach".into(),
            ..TemplateVars::sample()
        };
        let expect = [
            (Language::ZhHans, ["一般投诉", "普通", "主管联系客户"]),
            (Language::ZhHant, ["一般投訴", "普通", "主管聯繫客戶"]),
            (
                Language::En,
                ["complaint (general)", "normal", "supervisor contact"],
            ),
        ];
        for (lang, names) in expect {
            let card = t.render("card", lang, &vars).expect("card");
            for n in names {
                assert!(
                    card.body.contains(n),
                    "card {lang:?} lacks {n}:\n{}",
                    card.body
                );
            }
            for (name, needs) in [
                ("notice_new", &names[..2]),
                ("notice_warning", &names[..2]),
                ("notice_escalation", &names[..2]),
            ] {
                let r = t.render(name, lang, &vars).expect("notice");
                for n in needs {
                    assert!(
                        r.body.contains(n) || r.subject.contains(n),
                        "{name} {lang:?} lacks {n}:\n{}",
                        r.body
                    );
                }
            }
            for r in [
                card,
                t.render("notice_new", lang, &vars).expect("notice"),
                t.render("notice_escalation", lang, &vars).expect("notice"),
            ] {
                let shown = format!("{}\n{}", r.subject, r.body);
                // Codes only where a command is explained (`#category complaint`); English
                // names may read like their codes.
                let codes: &[&str] = if lang == Language::En {
                    &["supervisor_contact"]
                } else {
                    &["complaint", "general", "normal", "supervisor_contact"]
                };
                for code in codes {
                    let outside_help = shown
                        .lines()
                        .filter(|l| !l.trim_start().starts_with('#'))
                        .any(|l| l.contains(code));
                    assert!(!outside_help, "{lang:?} shows the code {code}:\n{shown}");
                }
            }
        }
        // One greeting: the agent's own replaces the template's.
        for (lang, greeting, text) in [
            (Language::ZhHans, "您好", "王先生您好：\n退款已办理。"),
            (Language::ZhHant, "您好", "王先生您好：\n退款已辦理。"),
            (Language::En, "Dear", "Dear Mr Wang,\nthe refund is done."),
        ] {
            let r = t
                .render(
                    "reply",
                    lang,
                    &TemplateVars {
                        agent_text: text.into(),
                        agent_greets: true,
                        ..TemplateVars::sample()
                    },
                )
                .expect("reply");
            assert_eq!(r.body.matches(greeting).count(), 1, "{lang:?}:\n{}", r.body);
        }
    }

    #[test]
    fn the_shipped_templates_load_and_render_in_every_language() {
        let t = Templates::load(&repo_templates()).expect("templates load");
        for lang in LANGUAGES {
            let r = t
                .render("ack", *lang, &TemplateVars::sample())
                .expect("renders");
            assert!(r.subject.contains("T-000123"), "{lang:?}: {}", r.subject);
            assert!(r.body.contains("T-000123"), "{lang:?}");
            assert!(r.body.contains("48"), "{lang:?}: the 48-hour promise");
            for name in REQUIRED {
                let r = t
                    .render(name, *lang, &TemplateVars::sample())
                    .expect("renders");
                assert!(
                    r.subject.contains("T-000123"),
                    "{name}.{lang:?}: {}",
                    r.subject
                );
            }
        }
    }

    #[test]
    fn a_template_with_an_unknown_variable_is_rejected_at_load() {
        let dir = tempfile::tempdir().expect("tempdir");
        for entry in std::fs::read_dir(repo_templates()).expect("dir") {
            let p = entry.expect("entry").path();
            std::fs::copy(&p, dir.path().join(p.file_name().expect("name"))).expect("copy");
        }
        std::fs::write(
            dir.path().join("ack.en.hbs"),
            "approved_by: x\napproved_at: 2026-01-01\nversion: 1\nsubject: hi {{tikcet_ref}}\n---\nbody\n",
        )
        .expect("write");
        let err = Templates::load(dir.path())
            .expect_err("must fail")
            .to_string();
        assert!(err.contains("ack") && err.contains("tikcet_ref"), "{err}");
    }

    #[test]
    fn durations_and_numbers_read_naturally() {
        assert_eq!(duration_text(9 * 3_600_000 + 30 * 60_000), "9 h 30 min");
        assert_eq!(duration_text(2 * 86_400_000 + 3 * 3_600_000), "2 d 3 h");
        assert_eq!(duration_text(-2 * 3_600_000), "-2 h");
        assert_eq!(duration_text(45 * 60_000), "45 min");
        assert_eq!(number_text(48.0), "48");
        assert_eq!(number_text(4.5), "4.5");
    }

    #[test]
    fn an_unapproved_template_is_rejected() {
        let err = split_template("subject: x\n---\nbody").expect_err("unapproved");
        assert!(err.contains("approved_by"), "{err}");
    }
}
