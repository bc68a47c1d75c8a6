//! What the store counts for the monthly service report: plain aggregates over one period, no
//! judgement. The figures and their definitions (rates, targets, days in the business calendar's
//! zone) are built from these in `crate::report::figures`.

use crate::domain::Millis;
use serde::Serialize;

/// Width of the time buckets tickets are counted in (15 min: every time zone's offset is a
/// multiple of it, so buckets fall into local days exactly).
pub const BUCKET_MS: Millis = 15 * 60_000;

/// The counts of `[from, to)` as of `now`. Every list is sorted by its keys.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct MonthRows {
    pub from: Millis,
    pub to: Millis,
    pub now: Millis,
    /// Tickets created: (bucket start, category, n); bucket start = `from + k·BUCKET_MS`.
    pub created: Vec<(Millis, String, i64)>,
    /// Complaints created, by severity (`general`, `major`).
    pub complaints: Vec<(String, i64)>,
    /// Tickets created in the period and solved by `now`.
    pub solved_of_created: i64,
    /// Tickets solved in the period.
    pub solved_in_period: i64,
    /// Of those, solved with at most one agent reply and never reopened.
    pub first_contact: i64,
    /// Promises started in the period and settled by `now` (kept, breached, or overdue):
    /// (kind, kept on time, settled).
    pub promises: Vec<(String, i64, i64)>,
    /// Promises breached in the period: (kind, category, priority, n).
    pub breaches: Vec<(String, String, String, i64)>,
    /// Surveys answered in the period: ((speed, solving, attitude, overall), n); the first three
    /// may be unanswered.
    pub scores: Vec<([Option<i64>; 4], i64)>,
    /// Surveys sent in the period.
    pub surveys_sent: i64,
    /// Per owning agent.
    pub agents: Vec<AgentRows>,
    /// Tickets whose first agent reply came in the period, counted by owner and whole minutes
    /// from creation to it: (owner, minutes, n).
    pub first_replies: Vec<(String, i64, i64)>,
    /// Tickets created in the period whose classification an agent corrected.
    pub corrected: i64,
}

/// One agent's counts over the period (the agent is the ticket's owner: the first who answered).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct AgentRows {
    pub agent: String,
    /// Tickets created in the period that the agent owns.
    pub owned: i64,
    /// Tickets the agent solved in the period.
    pub solved: i64,
    /// Of those, tickets that had been reopened.
    pub reopened: i64,
    /// Surveys answered in the period on the agent's tickets.
    pub surveys: i64,
    /// Of those, overall 4 or 5.
    pub satisfied: i64,
    /// Sum of their overall scores.
    pub overall_sum: i64,
    /// Unsatisfied customers of the agent's tickets handed to a supervisor in the period.
    pub unsatisfied: i64,
}
