//! What people read for the codes (`status_query`, `normal`, `supervisor_contact`): the names an
//! agent or a customer expects, in the reader's language. Pure. Codes stay in `--json`, commands
//! and the configuration.

use crate::domain::Language;

/// (code, zh-Hans, zh-Hant, en). Codes are unique across the kinds (category, severity,
/// priority, promise, notice reason, status).
const NAMES: &[(&str, &str, &str, &str)] = &[
    // Categories.
    ("inquiry", "咨询", "諮詢", "inquiry"),
    ("status_query", "查询", "查詢", "status query"),
    ("complaint", "投诉", "投訴", "complaint"),
    ("suggestion", "建议", "建議", "suggestion"),
    // Complaint severities.
    ("general", "一般", "一般", "general"),
    ("major", "重大", "重大", "major"),
    // Priorities.
    ("urgent", "紧急", "緊急", "urgent"),
    ("high", "高", "高", "high"),
    ("normal", "普通", "普通", "normal"),
    ("low", "低", "低", "low"),
    // Promises.
    ("ack", "确认收到", "確認收到", "acknowledgement"),
    ("solution", "首次解决", "首次解決", "first solution"),
    ("progress", "进展通报", "進展通報", "progress news"),
    (
        "supervisor_contact",
        "主管联系客户",
        "主管聯繫客戶",
        "supervisor contact",
    ),
    ("followup", "回访", "回訪", "follow-up"),
    // Why a notice was sent.
    ("warning", "即将超时", "即將逾時", "due soon"),
    ("breach", "已超时", "已逾時", "overdue"),
    (
        "unsatisfied",
        "客户不满意",
        "客戶不滿意",
        "customer unsatisfied",
    ),
    ("agent", "客服升级", "客服升級", "escalated by an agent"),
    // The monthly report's key figures and the survey's dimensions.
    ("satisfaction", "满意度", "滿意度", "satisfaction"),
    ("resolution", "解决率", "解決率", "resolution"),
    (
        "first_contact_resolution",
        "一次解决率",
        "一次解決率",
        "first-contact resolution",
    ),
    ("speed", "响应速度", "回應速度", "response speed"),
    ("solving", "问题解决", "問題解決", "problem solving"),
    ("attitude", "服务态度", "服務態度", "attitude"),
    ("overall", "总体评价", "總體評價", "overall"),
    // Ticket status.
    ("open", "处理中", "處理中", "open"),
    (
        "pending",
        "等待客户回复",
        "等待客戶回覆",
        "waiting for the customer",
    ),
    ("solved", "已解决", "已解決", "solved"),
];

/// The name of `code` in `lang` (its template language); the code itself when it has none, and
/// an empty string for an empty code.
pub fn name(lang: Language, code: &str) -> String {
    NAMES
        .iter()
        .find(|(c, ..)| *c == code)
        .map(|(_, hans, hant, en)| match lang.template_language() {
            Language::ZhHans => *hans,
            Language::ZhHant => *hant,
            _ => *en,
        })
        .unwrap_or(code)
        .to_string()
}

/// A ticket's category with its complaint severity: `一般投诉`, `重大投诉`, `查询`;
/// `complaint (major)` in English.
pub fn class_name(lang: Language, category: &str, severity: &str) -> String {
    let c = name(lang, category);
    if severity.is_empty() {
        return c;
    }
    let s = name(lang, severity);
    match lang.template_language() {
        Language::En => format!("{c} ({s})"),
        _ => format!("{s}{c}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_has_its_name_in_each_language() {
        assert_eq!(
            class_name(Language::ZhHans, "complaint", "general"),
            "一般投诉"
        );
        assert_eq!(
            class_name(Language::ZhHant, "complaint", "major"),
            "重大投訴"
        );
        assert_eq!(
            class_name(Language::En, "complaint", "major"),
            "complaint (major)"
        );
        assert_eq!(class_name(Language::ZhHans, "status_query", ""), "查询");
        assert_eq!(name(Language::ZhHans, "normal"), "普通");
        assert_eq!(
            name(Language::Other, "supervisor_contact"),
            "supervisor contact"
        );
        assert_eq!(name(Language::ZhHant, "followup"), "回訪");
        assert_eq!(name(Language::En, "something_new"), "something_new");
        // Every code of the domain's closed sets has a name.
        use crate::domain::{Category, Priority, Severity, TimerKind};
        let codes = [
            Category::Inquiry.as_str(),
            Category::StatusQuery.as_str(),
            Category::Complaint.as_str(),
            Category::Suggestion.as_str(),
            Severity::General.as_str(),
            Severity::Major.as_str(),
            Priority::Urgent.as_str(),
            Priority::High.as_str(),
            Priority::Normal.as_str(),
            Priority::Low.as_str(),
        ]
        .into_iter()
        .chain(TimerKind::ALL.iter().map(|k| k.as_str()));
        for c in codes {
            assert_ne!(name(Language::ZhHans, c), c, "{c} has no name");
        }
    }
}
