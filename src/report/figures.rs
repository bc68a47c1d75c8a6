//! The monthly service report's figures and their definitions, from the store's counts
//! ([`MonthRows`]). Pure. Every figure the report shows (terminal, JSON, HTML, mail) is computed
//! here and only here.
//!
//! Definitions (the README repeats them):
//! - **resolution** = tickets created in the month and solved by the report's time ÷ tickets
//!   created in the month (target ≥ 95 %).
//! - **first-contact resolution (FCR)** = tickets solved in the month with at most one agent
//!   reply and never reopened ÷ tickets solved in the month (target ≥ 90 %).
//! - **satisfaction (CSAT)** = surveys answered in the month with an overall score of 4 or 5 ÷
//!   surveys answered in the month (target ≥ 90 %).
//! - **promise kept**, per promise (acknowledgement 24 h, first solution 48 h, progress news
//!   every 24 h on complex tickets, supervisor contact 24 h, 回访 7 days) = promises started in
//!   the month and kept by their due time ÷ those started in the month that are settled (kept,
//!   breached, or past due); a promise still running and not yet due is not counted (target
//!   configurable, default ≥ 95 %).
//! - **survey response rate** = surveys answered in the month ÷ surveys sent in the month.
//! - **correction rate** = tickets created in the month whose classification an agent
//!   corrected ÷ tickets created in the month.
//! - Per agent (the owner, i.e. the first agent who answered: 首问负责制): tickets created in the
//!   month they own; first replies in the month and the median time (to the minute) from the customer's mail
//!   to that reply (wall-clock); tickets solved in the month and how many of them had been
//!   reopened; surveys, satisfaction and mean overall score on their tickets; unsatisfied
//!   customers handed to a supervisor (a supervisor-contact promise started in the month).
//!   A rate with nothing to divide by is "n/a", never 0 % or 100 %.

use crate::domain::report::MonthRows;
use crate::domain::Millis;
use chrono::{Datelike, NaiveDate, TimeZone};
use chrono_tz::Tz;
use serde::Serialize;

/// The categories, in the report's order.
pub const CATEGORIES: [&str; 4] = ["inquiry", "status_query", "complaint", "suggestion"];
/// The promises, in the report's order (`TimerKind` names).
pub const PROMISES: [&str; 5] = [
    "ack",
    "solution",
    "progress",
    "supervisor_contact",
    "followup",
];
/// The survey's dimensions, in the order stored (`surveys` columns) and shown.
pub const DIMENSIONS: [&str; 4] = ["speed", "solving", "attitude", "overall"];

/// The targets the month is judged against (`[report.targets]`), as ratios 0–1.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Targets {
    pub satisfaction: f64,
    pub resolution: f64,
    pub first_contact_resolution: f64,
    /// Each promise kept.
    pub promises: f64,
}

impl Default for Targets {
    fn default() -> Targets {
        Targets {
            satisfaction: 0.90,
            resolution: 0.95,
            first_contact_resolution: 0.90,
            promises: 0.95,
        }
    }
}

/// A calendar month (`2026-11`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Month {
    pub year: i32,
    /// 1–12.
    pub month: u32,
}

impl Month {
    /// `YYYY-MM`; `None` when it is not one.
    pub fn parse(s: &str) -> Option<Month> {
        let d = NaiveDate::parse_from_str(&format!("{}-01", s.trim()), "%Y-%m-%d").ok()?;
        Some(Month {
            year: d.year(),
            month: d.month(),
        })
    }

    /// The month `at` falls in, in `tz`.
    pub fn containing(at: Millis, tz: Tz) -> Month {
        let d = chrono::DateTime::from_timestamp_millis(at)
            .unwrap_or_default()
            .with_timezone(&tz);
        Month {
            year: d.year(),
            month: d.month(),
        }
    }

    pub fn previous(self) -> Month {
        if self.month == 1 {
            Month {
                year: self.year - 1,
                month: 12,
            }
        } else {
            Month {
                year: self.year,
                month: self.month - 1,
            }
        }
    }

    pub fn next(self) -> Month {
        if self.month == 12 {
            Month {
                year: self.year + 1,
                month: 1,
            }
        } else {
            Month {
                year: self.year,
                month: self.month + 1,
            }
        }
    }

    /// Local time `day` of the month at `hour`:00 in `tz`, as ms since the epoch (the earliest
    /// such instant on a DST fold, the next valid one in a gap). `day` is capped to the
    /// month's length.
    pub fn at(self, day: u32, hour: u32, tz: Tz) -> Millis {
        let last = self.days();
        let date = NaiveDate::from_ymd_opt(self.year, self.month, day.clamp(1, last))
            .unwrap_or(NaiveDate::MIN);
        let mut local = date.and_hms_opt(hour.min(23), 0, 0).unwrap_or_default();
        for _ in 0..4 {
            if let Some(t) = tz.from_local_datetime(&local).earliest() {
                return t.timestamp_millis();
            }
            local += chrono::Duration::minutes(30);
        }
        tz.from_utc_datetime(&local).timestamp_millis()
    }

    /// `[from, to)`: local midnight of the 1st to local midnight of the next month's 1st.
    pub fn bounds(self, tz: Tz) -> (Millis, Millis) {
        (self.at(1, 0, tz), self.next().at(1, 0, tz))
    }

    /// How many days the month has.
    pub fn days(self) -> u32 {
        let n = self.next();
        NaiveDate::from_ymd_opt(n.year, n.month, 1)
            .and_then(|d| d.pred_opt())
            .map(|d| d.day())
            .unwrap_or(28)
    }
}

impl std::fmt::Display for Month {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{:02}", self.year, self.month)
    }
}

/// A rate with its parts: `value` is `None` when there is nothing to divide by.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Rate {
    pub numerator: i64,
    pub denominator: i64,
    pub value: Option<f64>,
}

impl Rate {
    pub fn new(numerator: i64, denominator: i64) -> Rate {
        Rate {
            numerator,
            denominator,
            value: (denominator > 0).then(|| numerator as f64 / denominator as f64),
        }
    }
}

/// A key figure judged against its target.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Kpi {
    /// `satisfaction`, `resolution`, `first_contact_resolution`, or `promise_<kind>`.
    pub code: String,
    pub rate: Rate,
    pub target: f64,
    /// `None` when the rate is n/a.
    pub met: Option<bool>,
}

/// One day's tickets by category (in [`CATEGORIES`] order).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Day {
    /// `YYYY-MM-DD` in the report's zone.
    pub date: String,
    pub created: [i64; 4],
}

/// A promise's figure.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PromiseFigure {
    pub promise: String,
    pub kept: Rate,
}

/// The survey's figures.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SurveyFigures {
    /// Answered surveys ÷ surveys sent in the month.
    pub response: Rate,
    /// Per dimension ([`DIMENSIONS`] order): how many answers scored 1, 2, 3, 4, 5.
    pub distribution: [[i64; 5]; 4],
    /// Per dimension: the mean score of those who answered it.
    pub mean: [Option<f64>; 4],
}

/// An agent's figures.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AgentFigures {
    pub agent: String,
    pub owned: i64,
    pub first_replies: i64,
    /// Median time from the customer's mail to the first reply, ms.
    pub median_first_reply_ms: Option<Millis>,
    pub solved: i64,
    pub reopened: i64,
    pub satisfaction: Rate,
    pub mean_overall: Option<f64>,
    /// Unsatisfied customers handed to a supervisor.
    pub unsatisfied: i64,
}

/// Breaches by promise, with category and priority.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Breach {
    pub promise: String,
    pub category: String,
    pub priority: String,
    pub count: i64,
}

/// One month's figures.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MonthFigures {
    pub month: String,
    pub zone: String,
    pub from: Millis,
    pub to: Millis,
    /// When the figures were taken.
    pub as_of: Millis,
    pub tickets_created: i64,
    /// [`CATEGORIES`] order, then any other category stored.
    pub by_category: Vec<(String, i64)>,
    /// `general`, `major`.
    pub complaints_by_severity: [(String, i64); 2],
    /// Every day of the month.
    pub daily: Vec<Day>,
    /// satisfaction, resolution, first_contact_resolution, then one per promise with any
    /// settled.
    pub kpis: Vec<Kpi>,
    pub promises: Vec<PromiseFigure>,
    pub breaches: Vec<Breach>,
    pub surveys: SurveyFigures,
    pub agents: Vec<AgentFigures>,
    pub corrections: Rate,
}

impl MonthFigures {
    /// The figures of `month` from its counts; `tz` is the zone its days are in.
    pub fn build(month: Month, rows: &MonthRows, tz: Tz, targets: &Targets) -> MonthFigures {
        let mut by_category: Vec<(String, i64)> =
            CATEGORIES.iter().map(|c| (c.to_string(), 0)).collect();
        let days = month.days() as usize;
        let mut daily: Vec<Day> = (1..=days as u32)
            .map(|d| Day {
                date: format!("{month}-{d:02}"),
                created: [0; 4],
            })
            .collect();
        let mut tickets_created = 0;
        for (at, category, n) in &rows.created {
            tickets_created += n;
            match by_category.iter_mut().find(|(c, _)| c == category) {
                Some(c) => c.1 += n,
                None => by_category.push((category.clone(), *n)),
            }
            let day = chrono::DateTime::from_timestamp_millis(*at)
                .unwrap_or_default()
                .with_timezone(&tz)
                .day0() as usize;
            if let (Some(d), Some(k)) = (
                daily.get_mut(day),
                CATEGORIES.iter().position(|c| c == category),
            ) {
                d.created[k] += n;
            }
        }
        let count = |s: &str| {
            rows.complaints
                .iter()
                .filter(|(x, _)| x == s)
                .map(|x| x.1)
                .sum::<i64>()
        };
        let kpi = |code: &str, rate: Rate, target: f64| Kpi {
            code: code.to_string(),
            rate,
            target,
            met: rate.value.map(|v| v + 1e-9 >= target),
        };
        let surveyed: i64 = rows.scores.iter().map(|x| x.1).sum();
        let satisfied: i64 = rows
            .scores
            .iter()
            .filter(|(s, _)| s[3].is_some_and(|o| o >= 4))
            .map(|x| x.1)
            .sum();
        let mut kpis = vec![
            kpi(
                "satisfaction",
                Rate::new(satisfied, surveyed),
                targets.satisfaction,
            ),
            kpi(
                "resolution",
                Rate::new(rows.solved_of_created, tickets_created),
                targets.resolution,
            ),
            kpi(
                "first_contact_resolution",
                Rate::new(rows.first_contact, rows.solved_in_period),
                targets.first_contact_resolution,
            ),
        ];
        let promises: Vec<PromiseFigure> = PROMISES
            .iter()
            .map(|p| {
                let (kept, all) = rows
                    .promises
                    .iter()
                    .find(|x| x.0 == *p)
                    .map(|x| (x.1, x.2))
                    .unwrap_or((0, 0));
                PromiseFigure {
                    promise: p.to_string(),
                    kept: Rate::new(kept, all),
                }
            })
            .collect();
        for p in promises.iter().filter(|p| p.kept.denominator > 0) {
            kpis.push(kpi(
                &format!("promise_{}", p.promise),
                p.kept,
                targets.promises,
            ));
        }
        let mut distribution = [[0i64; 5]; 4];
        for (scores, n) in &rows.scores {
            for (k, s) in scores.iter().enumerate() {
                if let Some(s @ 1..=5) = s {
                    distribution[k][(*s - 1) as usize] += n;
                }
            }
        }
        let mean = distribution.map(|d| {
            let n: i64 = d.iter().sum();
            (n > 0).then(|| {
                d.iter()
                    .enumerate()
                    .map(|(k, c)| (k as i64 + 1) * c)
                    .sum::<i64>() as f64
                    / n as f64
            })
        });
        let agents = rows
            .agents
            .iter()
            .map(|a| {
                let minutes: Vec<(i64, i64)> = rows
                    .first_replies
                    .iter()
                    .filter(|(o, ..)| *o == a.agent)
                    .map(|x| (x.1, x.2))
                    .collect();
                AgentFigures {
                    agent: a.agent.clone(),
                    owned: a.owned,
                    first_replies: minutes.iter().map(|x| x.1).sum(),
                    median_first_reply_ms: median_of_counts(&minutes).map(|m| m * 60_000),
                    solved: a.solved,
                    reopened: a.reopened,
                    satisfaction: Rate::new(a.satisfied, a.surveys),
                    mean_overall: (a.surveys > 0).then(|| a.overall_sum as f64 / a.surveys as f64),
                    unsatisfied: a.unsatisfied,
                }
            })
            .collect();
        MonthFigures {
            month: month.to_string(),
            zone: tz.name().to_string(),
            from: rows.from,
            to: rows.to,
            as_of: rows.now,
            tickets_created,
            by_category,
            complaints_by_severity: [
                ("general".into(), count("general")),
                ("major".into(), count("major")),
            ],
            daily,
            kpis,
            promises,
            breaches: rows
                .breaches
                .iter()
                .map(|(p, c, pr, n)| Breach {
                    promise: p.clone(),
                    category: c.clone(),
                    priority: pr.clone(),
                    count: *n,
                })
                .collect(),
            surveys: SurveyFigures {
                response: Rate::new(surveyed, rows.surveys_sent),
                distribution,
                mean,
            },
            agents,
            corrections: Rate::new(rows.corrected, tickets_created),
        }
    }

    /// The key figure `code`, if the month has it.
    pub fn kpi(&self, code: &str) -> Option<&Kpi> {
        self.kpis.iter().find(|k| k.code == code)
    }
}

/// The median of values given as (value, how many) sorted by value: the middle value, or the
/// mean of the two middle ones of an even count; `None` when there are none.
pub fn median_of_counts(counted: &[(i64, i64)]) -> Option<i64> {
    let n: i64 = counted.iter().map(|x| x.1).sum();
    if n == 0 {
        return None;
    }
    // The values at 0-based ranks (n-1)/2 and n/2.
    let at = |rank: i64| {
        let mut seen = 0;
        for (v, c) in counted {
            seen += c;
            if rank < seen {
                return *v;
            }
        }
        counted.last().map(|x| x.0).unwrap_or(0)
    };
    Some((at((n - 1) / 2) + at(n / 2)) / 2)
}

/// The report: a month and the month before, for comparison.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MonthlyReport {
    pub month: MonthFigures,
    pub previous: MonthFigures,
    pub targets: Targets,
}

/// How a figure moved since the month before.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trend {
    Up,
    Down,
    Same,
    /// One of the two is n/a.
    Unknown,
}

impl Trend {
    pub fn of(now: Option<f64>, before: Option<f64>) -> Trend {
        match (now, before) {
            (Some(a), Some(b)) if (a - b).abs() < 0.0005 => Trend::Same,
            (Some(a), Some(b)) if a > b => Trend::Up,
            (Some(_), Some(_)) => Trend::Down,
            _ => Trend::Unknown,
        }
    }
    pub fn arrow(self) -> &'static str {
        match self {
            Trend::Up => "↑",
            Trend::Down => "↓",
            Trend::Same => "→",
            Trend::Unknown => "",
        }
    }
}

impl MonthlyReport {
    /// The trend of KPI `code` against the month before.
    pub fn trend(&self, code: &str) -> Trend {
        Trend::of(
            self.month.kpi(code).and_then(|k| k.rate.value),
            self.previous.kpi(code).and_then(|k| k.rate.value),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::report::AgentRows;

    const H: Millis = 3_600_000;

    #[test]
    fn months_are_bounded_in_the_zone_and_step_over_years() {
        let tz: Tz = "Asia/Shanghai".parse().expect("tz");
        let m = Month::parse("2026-12").expect("month");
        let (from, to) = m.bounds(tz);
        assert_eq!(from, 1_796_083_200_000 - 8 * H);
        assert_eq!(to - from, 31 * 24 * H);
        assert_eq!(m.next().to_string(), "2027-01");
        assert_eq!(Month::parse("2027-01").expect("m").previous(), m);
        assert_eq!(Month::parse("2026-02").expect("m").days(), 28);
        assert!(Month::parse("2026-13").is_none());
        // A DST month in a DST zone is 31 days minus an hour.
        let ny: Tz = "America/New_York".parse().expect("tz");
        let (a, b) = Month::parse("2026-03").expect("m").bounds(ny);
        assert_eq!(b - a, 31 * 24 * H - H);
        assert_eq!(Month::containing(from, tz), m);
        assert_eq!(Month::containing(from - 1, tz), m.previous());
    }

    fn rows(from: Millis) -> MonthRows {
        let q = crate::domain::report::BUCKET_MS;
        MonthRows {
            from,
            to: from + 30 * 24 * H,
            now: from + 31 * 24 * H,
            created: vec![
                (from, "complaint".into(), 2),
                (from, "inquiry".into(), 5),
                (from + 24 * H - q, "inquiry".into(), 1),
                (from + 24 * H, "status_query".into(), 2),
                (from + 29 * 24 * H + 3 * q, "suggestion".into(), 10),
            ],
            complaints: vec![("general".into(), 1), ("major".into(), 1)],
            solved_of_created: 19,
            solved_in_period: 10,
            first_contact: 9,
            promises: vec![("ack".into(), 20, 20), ("solution".into(), 17, 19)],
            breaches: vec![("solution".into(), "complaint".into(), "high".into(), 2)],
            scores: vec![
                ([Some(5), Some(5), Some(5), Some(5)], 6),
                ([Some(4), Some(3), None, Some(4)], 3),
                ([Some(1), Some(1), Some(2), Some(2)], 1),
            ],
            surveys_sent: 20,
            agents: vec![AgentRows {
                agent: "li@desk.example".into(),
                owned: 12,
                solved: 10,
                reopened: 1,
                surveys: 10,
                satisfied: 9,
                overall_sum: 44,
                unsatisfied: 1,
            }],
            first_replies: vec![
                ("li@desk.example".into(), 120, 1),
                ("li@desk.example".into(), 240, 1),
                ("li@desk.example".into(), 1800, 1),
            ],
            corrected: 2,
        }
    }

    #[test]
    fn every_figure_has_its_known_answer() {
        let tz: Tz = "Asia/Shanghai".parse().expect("tz");
        let month = Month::parse("2026-11").expect("month");
        let (from, _) = month.bounds(tz);
        let f = MonthFigures::build(month, &rows(from), tz, &Targets::default());
        assert_eq!(f.tickets_created, 20);
        assert_eq!(
            f.by_category,
            [
                ("inquiry".to_string(), 6),
                ("status_query".to_string(), 2),
                ("complaint".to_string(), 2),
                ("suggestion".to_string(), 10)
            ]
        );
        // Local days: the bucket just before the second midnight stays on the 1st.
        assert_eq!(f.daily.len(), 30);
        assert_eq!(f.daily[0].created, [6, 0, 2, 0]);
        assert_eq!(f.daily[1].created, [0, 2, 0, 0]);
        assert_eq!(f.daily[29].created, [0, 0, 0, 10]);
        assert_eq!(f.daily[29].date, "2026-11-30");
        assert_eq!(f.complaints_by_severity[1], ("major".to_string(), 1));
        let k = |c: &str| f.kpi(c).expect(c).clone();
        // 19 of 20 solved: 95 % meets ≥ 95 %.
        assert_eq!(k("resolution").rate.value, Some(0.95));
        assert_eq!(k("resolution").met, Some(true));
        assert_eq!(k("first_contact_resolution").rate.value, Some(0.9));
        assert_eq!(k("first_contact_resolution").met, Some(true));
        // 9 of 10 scored 4-5 overall.
        assert_eq!(k("satisfaction").rate, Rate::new(9, 10));
        assert_eq!(k("satisfaction").met, Some(true));
        assert_eq!(k("promise_ack").met, Some(true));
        assert_eq!(k("promise_solution").rate, Rate::new(17, 19));
        assert_eq!(k("promise_solution").met, Some(false));
        assert!(f.kpi("promise_followup").is_none());
        assert_eq!(f.surveys.response, Rate::new(10, 20));
        assert_eq!(f.surveys.distribution[0], [1, 0, 0, 3, 6]);
        assert_eq!(f.surveys.distribution[2], [0, 1, 0, 0, 6]);
        assert_eq!(f.surveys.distribution[3], [0, 1, 0, 3, 6]);
        assert_eq!(f.surveys.mean[3], Some((2.0 + 12.0 + 30.0) / 10.0));
        let a = &f.agents[0];
        assert_eq!(a.first_replies, 3);
        assert_eq!(a.median_first_reply_ms, Some(4 * H));
        assert_eq!(a.satisfaction.value, Some(0.9));
        assert_eq!(a.mean_overall, Some(4.4));
        assert_eq!(
            (a.owned, a.solved, a.reopened, a.unsatisfied),
            (12, 10, 1, 1)
        );
        assert_eq!(f.corrections, Rate::new(2, 20));
        assert_eq!(f.breaches[0].priority, "high");
    }

    #[test]
    fn an_empty_month_is_not_applicable_rather_than_zero_or_perfect() {
        let tz: Tz = "UTC".parse().expect("tz");
        let month = Month::parse("2026-02").expect("month");
        let (from, to) = month.bounds(tz);
        let empty = MonthRows {
            from,
            to,
            now: to,
            ..Default::default()
        };
        let f = MonthFigures::build(month, &empty, tz, &Targets::default());
        assert_eq!(f.daily.len(), 28);
        assert_eq!(f.tickets_created, 0);
        assert!(f
            .kpis
            .iter()
            .all(|k| k.rate.value.is_none() && k.met.is_none()));
        assert_eq!(f.kpis.len(), 3);
        assert_eq!(f.surveys.mean, [None; 4]);
        assert_eq!(Trend::of(Some(0.9), None), Trend::Unknown);
        assert_eq!(Trend::of(Some(0.9), Some(0.8)), Trend::Up);
        assert_eq!(
            median_of_counts(&[(1, 1), (2, 1), (3, 1), (10, 1)]),
            Some(2)
        );
        assert_eq!(median_of_counts(&[(1, 3), (50, 1)]), Some(1));
        assert_eq!(median_of_counts(&[(1, 2), (50, 2)]), Some(25));
        assert_eq!(median_of_counts(&[]), None);
    }
}
