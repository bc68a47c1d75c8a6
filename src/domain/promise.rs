//! The service promises as timers: their kinds, a timer to start, how one ends, one firing step.

use crate::domain::Millis;
use serde::Serialize;

/// The promises the daemon keeps, one timer kind each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TimerKind {
    /// Acknowledge receipt (24 h).
    Ack,
    /// First solution, or a solution after a reopen (48 h).
    Solution,
    /// Progress news on a complex ticket (every 24 h).
    Progress,
    /// A supervisor contacts an unsatisfied customer (24 h).
    SupervisorContact,
    /// Follow-up (回访) after a complaint is solved (7 days).
    Followup,
}

impl TimerKind {
    pub const ALL: [TimerKind; 5] = [
        TimerKind::Ack,
        TimerKind::Solution,
        TimerKind::Progress,
        TimerKind::SupervisorContact,
        TimerKind::Followup,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            TimerKind::Ack => "ack",
            TimerKind::Solution => "solution",
            TimerKind::Progress => "progress",
            TimerKind::SupervisorContact => "supervisor_contact",
            TimerKind::Followup => "followup",
        }
    }
    pub fn parse(s: &str) -> Option<TimerKind> {
        TimerKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// A timer to start (or, when one of its kind already runs on the ticket, to re-time).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TimerDraft {
    pub kind: TimerKind,
    pub started_at: Millis,
    /// The promise's length in service time (calendar or business ms).
    pub span_ms: Millis,
    pub due_at: Millis,
    /// The first warning, or the due time.
    pub next_at: Millis,
}

/// How a running timer ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TimerEnd {
    /// The promise was kept (or, after a breach, kept late: `met_at` is recorded either way).
    Met,
    /// It no longer applies.
    Cancelled,
}

/// What firing a timer does to its own row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TimerStep {
    pub id: i64,
    /// The warnings fired before this step: the row is only updated if it still says so, which
    /// makes each step happen once even if two schedulers race.
    pub warnings_before: u32,
    pub warnings_after: u32,
    /// Next firing, or `None` when the timer is finished.
    pub next_at: Option<Millis>,
    /// `breached` or `met` when finished.
    pub finished: Option<&'static str>,
}
