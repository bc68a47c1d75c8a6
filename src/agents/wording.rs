//! Approved wording: phrases that never reach a customer, each with the approved alternative
//! (the procedures' built-in list plus `[wording]`), found in an agent's text or in a template.
//! Pure.

use crate::config::{ForbiddenPhrase, WordingSettings};

/// The procedures' forbidden phrases and their approved alternatives (`forbidden.toml`,
/// embedded; the same schema as `[[wording.forbidden]]`).
pub fn builtin_forbidden() -> &'static [ForbiddenPhrase] {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct File {
        forbidden: Vec<ForbiddenPhrase>,
    }
    static LIST: std::sync::LazyLock<Vec<ForbiddenPhrase>> = std::sync::LazyLock::new(|| {
        toml::from_str::<File>(include_str!("forbidden.toml"))
            .map(|f| f.forbidden)
            .unwrap_or_default()
    });
    &LIST
}

/// The forbidden phrases in force: the built-in list (unless `wording.builtin = false`) and the
/// site's own.
#[derive(Debug, Clone)]
pub struct Wording {
    pub forbidden: Vec<ForbiddenPhrase>,
}

impl Wording {
    pub fn new(wording: &WordingSettings) -> Wording {
        let mut forbidden: Vec<ForbiddenPhrase> = Vec::new();
        if wording.builtin {
            forbidden.extend(builtin_forbidden().iter().cloned());
        }
        forbidden.extend(wording.forbidden.iter().cloned());
        Wording { forbidden }
    }
}

impl Default for Wording {
    fn default() -> Self {
        Wording::new(&WordingSettings::default())
    }
}

/// A forbidden phrase found in an agent's text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub phrase: String,
    pub instead: String,
    pub line: usize,
    pub excerpt: String,
}

/// Every forbidden phrase in `text` (case-insensitive; Latin phrases as whole words).
pub fn check_wording(text: &str, forbidden: &[ForbiddenPhrase]) -> Vec<Violation> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let lower = line.to_lowercase().replace('’', "'");
        for f in forbidden {
            let p = f.phrase.to_lowercase();
            let found = lower.match_indices(&p).any(|(at, _)| {
                if !p.is_ascii() {
                    return true;
                }
                let before = lower[..at].chars().next_back();
                let after = lower[at + p.len()..].chars().next();
                !before.is_some_and(|c| c.is_alphanumeric())
                    && !after.is_some_and(|c| c.is_alphanumeric())
            });
            if found {
                out.push(Violation {
                    phrase: f.phrase.clone(),
                    instead: f.instead.clone(),
                    line: i + 1,
                    excerpt: line.trim().chars().take(80).collect(),
                });
            }
        }
    }
    out
}

/// A forbidden phrase, explained to the agent in their language, by the line of their mail.
pub fn violation_text(lang: crate::domain::Language, v: &Violation, offset: usize) -> String {
    use crate::domain::Language;
    let line = v.line + offset;
    match lang {
        Language::ZhHans => format!(
            "第 {line} 行（line {line}）：\"{}\" 不是规范用语，请改为 \"{}\"。原文：{}",
            v.phrase, v.instead, v.excerpt
        ),
        Language::ZhHant => format!(
            "第 {line} 行（line {line}）：「{}」不是規範用語，請改為「{}」。原文：{}",
            v.phrase, v.instead, v.excerpt
        ),
        _ => format!(
            "line {line}: \"{}\" is not approved wording; say \"{}\" instead. ({})",
            v.phrase, v.instead, v.excerpt
        ),
    }
}

/// The forbidden-phrase check over every template in every language, rendered with sample
/// data: approved wording never contains forbidden wording. Problems read `name.lang: …`.
pub fn check_templates(
    templates: &crate::outbound::templates::Templates,
    forbidden: &[ForbiddenPhrase],
) -> Vec<String> {
    let mut problems = Vec::new();
    let vars = crate::outbound::templates::TemplateVars::sample();
    for key in templates.approvals().keys() {
        let Some((name, lang)) = key.split_once('.') else {
            continue;
        };
        let Some(lang) = crate::domain::Language::from_code(lang) else {
            continue;
        };
        match templates.render(name, lang, &vars) {
            Ok(r) => {
                // The sample agent text and problem list are not the template's own wording.
                let text = format!("{}\n{}", r.subject, r.body)
                    .replace(&vars.agent_text, "")
                    .replace(&vars.problems, "");
                for v in check_wording(&text, forbidden) {
                    problems.push(format!(
                        "{key}: line {}: \"{}\" is a forbidden phrase (say \"{}\")",
                        v.line, v.phrase, v.instead
                    ));
                }
            }
            Err(e) => problems.push(format!("{key}: {e}")),
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::StageFixture;

    #[test]
    fn the_built_in_list_is_data_with_the_config_schema() {
        let list = builtin_forbidden();
        assert_eq!(list.len(), 17);
        assert!(list
            .iter()
            .any(|f| f.phrase == "不清楚" && f.instead == "我为您确认后回复"));
        assert!(list
            .iter()
            .all(|f| !f.phrase.is_empty() && !f.instead.is_empty()));
    }

    #[test]
    fn the_shipped_templates_contain_no_forbidden_wording_and_a_bad_one_is_named() {
        let f = StageFixture::new();
        let forbidden = Wording::default().forbidden;
        assert_eq!(
            check_templates(&f.desk.templates, &forbidden),
            Vec::<String>::new()
        );
        let strict = vec![ForbiddenPhrase {
            phrase: "请直接回复".into(),
            instead: "x".into(),
        }];
        let problems = check_templates(&f.desk.templates, &strict);
        assert!(
            problems.iter().any(|p| p.starts_with("ack.zh-Hans: line")),
            "{problems:?}"
        );
    }

    #[test]
    fn forbidden_phrases_are_found_with_line_and_alternative() {
        let v = check_wording(
            "您好，\n这个问题我们也不清楚。\nI don't know when it ships.",
            &Wording::default().forbidden,
        );
        assert_eq!(v.len(), 2, "{v:?}");
        assert_eq!((v[0].line, v[0].phrase.as_str()), (2, "不清楚"));
        assert_eq!(v[0].instead, "我为您确认后回复");
        assert_eq!(v[1].line, 3);
        assert!(
            check_wording(
                "I don't knowingly delay refunds",
                &Wording::default().forbidden
            )
            .is_empty(),
            "whole words only"
        );
        assert!(
            check_wording("I don’t know", &Wording::default().forbidden).len() == 1,
            "curly apostrophe"
        );
    }
}
