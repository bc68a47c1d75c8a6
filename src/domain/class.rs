//! A ticket's class: category (咨询/查询/投诉/建议), complaint severity, urgency, VIP, and the
//! priority derived from them; what the classify stage concludes about a mail; an agent's
//! correction of a class.

use crate::domain::Language;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    Inquiry,
    StatusQuery,
    Complaint,
    Suggestion,
}

impl Category {
    pub const ALL: [Category; 4] = [
        Category::Inquiry,
        Category::StatusQuery,
        Category::Complaint,
        Category::Suggestion,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            Category::Inquiry => "inquiry",
            Category::StatusQuery => "status_query",
            Category::Complaint => "complaint",
            Category::Suggestion => "suggestion",
        }
    }
    pub fn parse(s: &str) -> Option<Category> {
        Category::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    General,
    Major,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::General => "general",
            Severity::Major => "major",
        }
    }
    pub fn parse(s: &str) -> Option<Severity> {
        match s {
            "general" => Some(Severity::General),
            "major" => Some(Severity::Major),
            _ => None,
        }
    }
}

/// Queue order, most pressing first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Priority {
    Urgent,
    High,
    Normal,
    Low,
}

impl Priority {
    pub const ALL: [Priority; 4] = [
        Priority::Urgent,
        Priority::High,
        Priority::Normal,
        Priority::Low,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            Priority::Urgent => "urgent",
            Priority::High => "high",
            Priority::Normal => "normal",
            Priority::Low => "low",
        }
    }
    pub fn parse(s: &str) -> Option<Priority> {
        Priority::ALL.into_iter().find(|p| p.as_str() == s)
    }
    /// The derivation documented in the module header.
    pub fn derive(
        category: Category,
        severity: Option<Severity>,
        urgent: bool,
        vip: bool,
    ) -> Priority {
        if urgent || severity == Some(Severity::Major) {
            Priority::Urgent
        } else if vip || category == Category::Complaint {
            Priority::High
        } else if category == Category::Suggestion {
            Priority::Low
        } else {
            Priority::Normal
        }
    }
}

/// What the classify stage concludes about one mail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Classification {
    pub language: Language,
    pub category: Category,
    /// Only for complaints.
    pub severity: Option<Severity>,
    pub urgent: bool,
    pub vip: bool,
    pub priority: Priority,
    /// The rules that fired, as `name(matched text)`, in rule order.
    pub rules: Vec<String>,
}

impl Classification {
    /// A classification for a mail nothing is known about (tests, and tickets of old schemas).
    pub fn plain(language: Language) -> Classification {
        Classification {
            language,
            category: Category::Inquiry,
            severity: None,
            urgent: false,
            vip: false,
            priority: Priority::Normal,
            rules: Vec::new(),
        }
    }
}

/// The classification a ticket carries (what is stored; the rules stay in the events log).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct TicketClass {
    pub category: Category,
    pub severity: Option<Severity>,
    pub urgent: bool,
    pub vip: bool,
    pub priority: Priority,
}

/// An agent's correction: the fields it sets.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Correction {
    pub category: Option<Category>,
    pub severity: Option<Severity>,
    pub urgent: Option<bool>,
    pub priority: Option<Priority>,
}

/// One corrected field, for the corrections table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldChange {
    pub field: &'static str,
    pub old: Option<String>,
    pub new: String,
}

impl TicketClass {
    pub fn of(c: &Classification) -> TicketClass {
        TicketClass {
            category: c.category,
            severity: c.severity,
            urgent: c.urgent,
            vip: c.vip,
            priority: c.priority,
        }
    }

    /// Applies a correction. A complaint always has a severity (general unless given); other
    /// categories have none; priority is derived again unless the correction sets it. Returns the
    /// new class and the fields the correction changed (derived changes are not corrections).
    pub fn corrected(self, c: &Correction) -> (TicketClass, Vec<FieldChange>) {
        let category = c.category.unwrap_or(self.category);
        let severity = match category {
            Category::Complaint => Some(c.severity.or(self.severity).unwrap_or(Severity::General)),
            _ => None,
        };
        let urgent = c.urgent.unwrap_or(self.urgent);
        let priority = c
            .priority
            .unwrap_or_else(|| Priority::derive(category, severity, urgent, self.vip));
        let new = TicketClass {
            category,
            severity,
            urgent,
            vip: self.vip,
            priority,
        };
        let mut changes = Vec::new();
        if c.category.is_some() && category != self.category {
            changes.push(FieldChange {
                field: "category",
                old: Some(self.category.as_str().into()),
                new: category.as_str().into(),
            });
        }
        if c.severity.is_some() && severity != self.severity {
            changes.push(FieldChange {
                field: "severity",
                old: self.severity.map(|s| s.as_str().into()),
                new: severity.map(Severity::as_str).unwrap_or("").into(),
            });
        }
        if c.urgent.is_some() && urgent != self.urgent {
            changes.push(FieldChange {
                field: "urgent",
                old: Some(self.urgent.to_string()),
                new: urgent.to_string(),
            });
        }
        if c.priority.is_some() && priority != self.priority {
            changes.push(FieldChange {
                field: "priority",
                old: Some(self.priority.as_str().into()),
                new: priority.as_str().into(),
            });
        }
        (new, changes)
    }
}
