//! Service promises as durable timers: when each promise falls due, and what happens when a timer
//! fires. Pure: [`SlaPolicy::draft`] says when a promise is due, [`fire`] turns a due timer into a
//! [`Plan`] (a warning to the owner, or a breach that escalates to the supervisors), and the
//! scheduler (`scheduler.rs`) commits it.
//!
//! The promises (config `[sla]`, these are the defaults):
//! - `ack`: acknowledge receipt within 24 h (normally seconds; this catches outages and holds);
//! - `solution`: a first solution within 48 h of receipt (again after a reopen);
//! - `progress`: a complex ticket gets news at least every 24 h until solved;
//! - `supervisor_contact`: an unsatisfied customer hears from a supervisor within 24 h;
//! - `followup`: a solved complaint gets its follow-up (回访) within 7 days — a reminder to the
//!   owner, or an automatic follow-up mail (`followup = "mail"`).
//!
//! `[[sla.overrides]]` tighten (or loosen) a promise for tickets matching a category, severity,
//! priority, urgency or VIP: when several match, the shortest time wins. Warnings go out at
//! `warn_at` fractions of the time (default 75 %); a breach marks the ticket escalated and tells
//! the supervisors. Times count on the calendar (`calendar.rs`).
//!
//! Invariants: a timer fires each step once (the store updates its row only if it still has the
//! warning count this step read); a daemon that was down fires the latest due step, not every
//! missed warning; a timer whose promise was kept in the meantime ends without a notice.

use crate::clock::Millis;
use crate::domain::EmailAddress;
use crate::domain::EventKind;
use crate::domain::{Agent, Role};
use crate::domain::{Category, Priority, Severity, TicketClass};
use crate::domain::{Plan, Status, TicketState, TimerDraft, TimerEnd, TimerKind, TimerStep};
use crate::ticket::calendar::Calendar;
use serde::Deserialize;
use serde_json::json;

/// `[sla]` in config.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlaSettings {
    #[serde(default = "h24")]
    pub ack_hours: f64,
    #[serde(default = "h48")]
    pub first_solution_hours: f64,
    #[serde(default = "h24")]
    pub progress_hours: f64,
    #[serde(default = "h24")]
    pub supervisor_contact_hours: f64,
    #[serde(default = "d7")]
    pub followup_days: f64,
    /// Fractions of a promise's time at which to warn, ascending, each in (0, 1).
    #[serde(default = "default_warn_at")]
    pub warn_at: Vec<f64>,
    /// Send the satisfaction survey when a ticket is solved.
    #[serde(default = "yes")]
    pub survey: bool,
    /// Follow-up after a solved complaint: `remind` the owner, or send a `mail` to the customer.
    #[serde(default = "default_followup")]
    pub followup: String,
    /// A survey overall score at or below this (or any score of 1) is an unsatisfied customer.
    #[serde(default = "two")]
    pub unsatisfied_score: u8,
    #[serde(default)]
    pub overrides: Vec<OverrideSettings>,
}

fn h24() -> f64 {
    24.0
}
fn h48() -> f64 {
    48.0
}
fn d7() -> f64 {
    7.0
}
fn default_warn_at() -> Vec<f64> {
    vec![0.75]
}
fn yes() -> bool {
    true
}
fn default_followup() -> String {
    "remind".into()
}
fn two() -> u8 {
    2
}

impl Default for SlaSettings {
    fn default() -> Self {
        SlaSettings {
            ack_hours: h24(),
            first_solution_hours: h48(),
            progress_hours: h24(),
            supervisor_contact_hours: h24(),
            followup_days: d7(),
            warn_at: default_warn_at(),
            survey: true,
            followup: default_followup(),
            unsatisfied_score: two(),
            overrides: Vec::new(),
        }
    }
}

/// `[[sla.overrides]]`: tickets matching every given field get the given times.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OverrideSettings {
    #[serde(default)]
    pub category: Option<String>,
    #[serde(default)]
    pub severity: Option<String>,
    #[serde(default)]
    pub priority: Option<String>,
    #[serde(default)]
    pub urgent: Option<bool>,
    #[serde(default)]
    pub vip: Option<bool>,
    #[serde(default)]
    pub ack_hours: Option<f64>,
    #[serde(default)]
    pub first_solution_hours: Option<f64>,
    #[serde(default)]
    pub progress_hours: Option<f64>,
    /// Matching tickets are complex from the start (progress news every `progress_hours`).
    #[serde(default)]
    pub complex: Option<bool>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FollowupMode {
    Remind,
    Mail,
}

#[derive(Debug, Clone)]
struct Override {
    category: Option<Category>,
    severity: Option<Severity>,
    priority: Option<Priority>,
    urgent: Option<bool>,
    vip: Option<bool>,
    ack_hours: Option<f64>,
    first_solution_hours: Option<f64>,
    progress_hours: Option<f64>,
    complex: Option<bool>,
}

impl Override {
    fn matches(&self, c: &TicketClass) -> bool {
        self.category.is_none_or(|x| x == c.category)
            && self.severity.is_none_or(|x| Some(x) == c.severity)
            && self.priority.is_none_or(|x| x == c.priority)
            && self.urgent.is_none_or(|x| x == c.urgent)
            && self.vip.is_none_or(|x| x == c.vip)
    }
}

/// The compiled promises and the calendar they count on.
#[derive(Debug, Clone)]
pub struct SlaPolicy {
    pub calendar: Calendar,
    ack_hours: f64,
    first_solution_hours: f64,
    progress_hours: f64,
    supervisor_contact_hours: f64,
    followup_days: f64,
    warn_at: Vec<f64>,
    pub survey: bool,
    pub followup: FollowupMode,
    pub unsatisfied_score: u8,
    overrides: Vec<Override>,
}

impl Default for SlaPolicy {
    fn default() -> Self {
        // The defaults are valid by construction.
        SlaPolicy::new(&SlaSettings::default(), Calendar::hours()).unwrap_or_else(|_| SlaPolicy {
            calendar: Calendar::hours(),
            ack_hours: 24.0,
            first_solution_hours: 48.0,
            progress_hours: 24.0,
            supervisor_contact_hours: 24.0,
            followup_days: 7.0,
            warn_at: vec![0.75],
            survey: true,
            followup: FollowupMode::Remind,
            unsatisfied_score: 2,
            overrides: Vec::new(),
        })
    }
}

const HOUR_MS: f64 = 3_600_000.0;

impl SlaPolicy {
    /// Compiles `[sla]`; every problem with its key.
    pub fn new(s: &SlaSettings, calendar: Calendar) -> Result<SlaPolicy, Vec<String>> {
        let mut problems = Vec::new();
        let positive = |key: &str, v: f64, problems: &mut Vec<String>| {
            if !(v.is_finite() && v > 0.0 && v <= 24.0 * 366.0) {
                problems.push(format!(
                    "sla.{key}: must be a positive number of hours (got {v})"
                ));
            }
        };
        positive("ack_hours", s.ack_hours, &mut problems);
        positive(
            "first_solution_hours",
            s.first_solution_hours,
            &mut problems,
        );
        positive("progress_hours", s.progress_hours, &mut problems);
        positive(
            "supervisor_contact_hours",
            s.supervisor_contact_hours,
            &mut problems,
        );
        if !(s.followup_days.is_finite() && s.followup_days > 0.0 && s.followup_days <= 366.0) {
            problems.push(format!(
                "sla.followup_days: must be a positive number of days (got {})",
                s.followup_days
            ));
        }
        let mut last = 0.0;
        for (i, f) in s.warn_at.iter().enumerate() {
            if !(*f > last && *f < 1.0) {
                problems.push(format!(
                    "sla.warn_at[{i}]: fractions must rise strictly between 0 and 1 (got {f})"
                ));
            }
            last = *f;
        }
        let followup = match s.followup.as_str() {
            "remind" => FollowupMode::Remind,
            "mail" => FollowupMode::Mail,
            other => {
                problems.push(format!(
                    "sla.followup: {other:?}: expected \"remind\" or \"mail\""
                ));
                FollowupMode::Remind
            }
        };
        if !(1..=5).contains(&s.unsatisfied_score) {
            problems.push("sla.unsatisfied_score: must be 1-5".into());
        }
        let mut overrides = Vec::new();
        for (i, o) in s.overrides.iter().enumerate() {
            let key = format!("sla.overrides[{i}]");
            let parsed = Override {
                category: parse_field(
                    &key,
                    "category",
                    &o.category,
                    Category::parse,
                    &mut problems,
                ),
                severity: parse_field(
                    &key,
                    "severity",
                    &o.severity,
                    Severity::parse,
                    &mut problems,
                ),
                priority: parse_field(
                    &key,
                    "priority",
                    &o.priority,
                    Priority::parse,
                    &mut problems,
                ),
                urgent: o.urgent,
                vip: o.vip,
                ack_hours: o.ack_hours,
                first_solution_hours: o.first_solution_hours,
                progress_hours: o.progress_hours,
                complex: o.complex,
            };
            if parsed.category.is_none()
                && parsed.severity.is_none()
                && parsed.priority.is_none()
                && parsed.urgent.is_none()
                && parsed.vip.is_none()
            {
                problems.push(format!(
                    "{key}: needs something to match (category, severity, priority, urgent or vip)"
                ));
            }
            for (name, v) in [
                ("ack_hours", o.ack_hours),
                ("first_solution_hours", o.first_solution_hours),
                ("progress_hours", o.progress_hours),
            ] {
                if let Some(v) = v {
                    positive(&format!("overrides[{i}].{name}"), v, &mut problems);
                }
            }
            overrides.push(parsed);
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        Ok(SlaPolicy {
            calendar,
            ack_hours: s.ack_hours,
            first_solution_hours: s.first_solution_hours,
            progress_hours: s.progress_hours,
            supervisor_contact_hours: s.supervisor_contact_hours,
            followup_days: s.followup_days,
            warn_at: s.warn_at.clone(),
            survey: s.survey,
            followup,
            unsatisfied_score: s.unsatisfied_score,
            overrides,
        })
    }

    /// The hours of a promise for a ticket of this class (the shortest matching override wins).
    pub fn hours(&self, kind: TimerKind, c: &TicketClass) -> f64 {
        let pick = |base: f64, f: fn(&Override) -> Option<f64>| {
            self.overrides
                .iter()
                .filter(|o| o.matches(c))
                .filter_map(f)
                .reduce(f64::min)
                .unwrap_or(base)
        };
        match kind {
            TimerKind::Ack => pick(self.ack_hours, |o| o.ack_hours),
            TimerKind::Solution => pick(self.first_solution_hours, |o| o.first_solution_hours),
            TimerKind::Progress => pick(self.progress_hours, |o| o.progress_hours),
            TimerKind::SupervisorContact => self.supervisor_contact_hours,
            TimerKind::Followup => self.followup_days * 24.0,
        }
    }

    /// Whether config makes tickets of this class complex from the start.
    pub fn complex_from_start(&self, c: &TicketClass) -> bool {
        self.overrides
            .iter()
            .any(|o| o.matches(c) && o.complex == Some(true))
    }

    /// The timer for a promise starting `at`.
    pub fn draft(&self, kind: TimerKind, c: &TicketClass, at: Millis) -> TimerDraft {
        let span_ms = (self.hours(kind, c) * HOUR_MS).round() as Millis;
        let due_at = self.calendar.add(at, span_ms);
        TimerDraft {
            kind,
            started_at: at,
            span_ms,
            due_at,
            next_at: self.step_at(at, span_ms, due_at, 0),
        }
    }

    /// When step `warnings` (0-based warning index, or the breach after the last) falls due.
    fn step_at(
        &self,
        started_at: Millis,
        span_ms: Millis,
        due_at: Millis,
        warnings: u32,
    ) -> Millis {
        match self.warn_at.get(warnings as usize) {
            Some(f) => self
                .calendar
                .add(started_at, (span_ms as f64 * f).round() as Millis)
                .min(due_at),
            None => due_at,
        }
    }

    pub fn warnings(&self) -> u32 {
        self.warn_at.len() as u32
    }
}

fn parse_field<T>(
    key: &str,
    field: &str,
    v: &Option<String>,
    parse: fn(&str) -> Option<T>,
    problems: &mut Vec<String>,
) -> Option<T> {
    let s = v.as_deref()?;
    let parsed = parse(s);
    if parsed.is_none() {
        problems.push(format!("{key}.{field}: unknown value {s:?}"));
    }
    parsed
}

/// A stored timer, as the scheduler hands it to [`fire`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timer {
    pub id: i64,
    pub kind: TimerKind,
    pub started_at: Millis,
    pub span_ms: Millis,
    pub due_at: Millis,
    pub next_at: Millis,
    pub warnings_fired: u32,
}

/// Who gets an internal notice, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    /// `notice_warning` or `notice_escalation`.
    pub template: &'static str,
    pub to: Vec<EmailAddress>,
    pub promise: TimerKind,
    pub due_at: Millis,
    /// `breach` or `unsatisfied` (escalations).
    pub reason: &'static str,
}

/// The outcome of firing a timer, before any mail is rendered: the plan (timer step, events,
/// escalation) and the notices or customer mail to send.
#[derive(Debug, Clone)]
pub struct Fired {
    pub plan: Plan,
    pub notices: Vec<Notice>,
    /// The automatic follow-up mail to the customer is due (`followup = "mail"`).
    pub followup_mail: bool,
}

/// Agents to warn: the owner, else every agent (else the supervisors).
pub fn warn_recipients(owner: Option<&EmailAddress>, agents: &[Agent]) -> Vec<EmailAddress> {
    if let Some(o) = owner {
        return vec![o.clone()];
    }
    let of = |r: Role| -> Vec<EmailAddress> {
        agents
            .iter()
            .filter(|a| a.role == r)
            .map(|a| a.address.clone())
            .collect()
    };
    let mut to = of(Role::Agent);
    if to.is_empty() {
        to = of(Role::Supervisor);
    }
    to
}

/// Supervisors to escalate to (every agent when none is configured).
pub fn escalation_recipients(agents: &[Agent]) -> Vec<EmailAddress> {
    let sup: Vec<EmailAddress> = agents
        .iter()
        .filter(|a| a.role == Role::Supervisor)
        .map(|a| a.address.clone())
        .collect();
    if sup.is_empty() {
        agents.iter().map(|a| a.address.clone()).collect()
    } else {
        sup
    }
}

/// Fires a due timer.
pub fn fire(
    timer: &Timer,
    ticket: &TicketState,
    policy: &SlaPolicy,
    agents: &[Agent],
    now: Millis,
) -> Fired {
    let mut plan = Plan::for_ticket(ticket.ticket);
    let mut fired = Fired {
        plan: Plan::default(),
        notices: Vec::new(),
        followup_mail: false,
    };
    let step =
        |warnings_after: u32, next_at: Option<Millis>, finished: Option<&'static str>| TimerStep {
            id: timer.id,
            warnings_before: timer.warnings_fired,
            warnings_after,
            next_at,
            finished,
        };
    let detail = json!({
        "promise": timer.kind.as_str(),
        "started_at": timer.started_at,
        "due_at": timer.due_at,
    });

    // A promise that no longer applies ends quietly (its stage normally ends it already).
    let moot = match timer.kind {
        TimerKind::Ack | TimerKind::Solution => ticket.status == Status::Solved,
        TimerKind::Progress => ticket.status == Status::Solved || !ticket.complex,
        TimerKind::SupervisorContact | TimerKind::Followup => false,
    };
    if moot {
        plan.timer_step = Some(step(timer.warnings_fired, None, Some("met")));
        plan.event(
            EventKind::SlaTimerEnded,
            json!({"promise": timer.kind.as_str(), "why": "no longer applies"}),
        );
        fired.plan = plan;
        return fired;
    }

    if now < timer.due_at && timer.warnings_fired < policy.warnings() {
        // A warning. If several are overdue (the daemon was down), send the latest only.
        let mut after = timer.warnings_fired + 1;
        while after < policy.warnings()
            && policy.step_at(timer.started_at, timer.span_ms, timer.due_at, after) <= now
        {
            after += 1;
        }
        let next = policy.step_at(timer.started_at, timer.span_ms, timer.due_at, after);
        plan.timer_step = Some(step(after, Some(next), None));
        let mut d = detail.clone();
        d["warning"] = json!(after);
        plan.event(EventKind::SlaWarning, d);
        let to = match timer.kind {
            // A supervisor's own deadline is the supervisors' to hear about.
            TimerKind::SupervisorContact => escalation_recipients(agents),
            _ => warn_recipients(ticket.owner.as_ref(), agents),
        };
        if !to.is_empty() {
            fired.notices.push(Notice {
                template: "notice_warning",
                to,
                promise: timer.kind,
                due_at: timer.due_at,
                reason: "warning",
            });
        }
        fired.plan = plan;
        return fired;
    }

    // Due.
    if timer.kind == TimerKind::Followup && policy.followup == FollowupMode::Mail {
        plan.timer_step = Some(step(timer.warnings_fired, None, Some("met")));
        plan.event(EventKind::FollowupSent, detail);
        fired.followup_mail = true;
        fired.plan = plan;
        return fired;
    }
    plan.timer_step = Some(step(timer.warnings_fired, None, Some("breached")));
    plan.event(EventKind::SlaBreached, detail);
    plan.update.escalate = true;
    plan.event(
        EventKind::Escalated,
        json!({"reason": "breach", "promise": timer.kind.as_str()}),
    );
    let to = escalation_recipients(agents);
    if !to.is_empty() {
        fired.notices.push(Notice {
            template: "notice_escalation",
            to,
            promise: timer.kind,
            due_at: timer.due_at,
            reason: "breach",
        });
    }
    fired.plan = plan;
    fired
}

/// The timers a new ticket starts with.
pub fn new_ticket_timers(
    policy: &SlaPolicy,
    class: &TicketClass,
    at: Millis,
    acknowledged_now: bool,
) -> Vec<TimerDraft> {
    let mut t = Vec::new();
    // The acknowledgement normally leaves within seconds; the timer catches SMTP outages. When
    // none is queued (the per-address brake held it), no promise of one is kept either.
    if acknowledged_now {
        t.push(policy.draft(TimerKind::Ack, class, at));
    }
    t.push(policy.draft(TimerKind::Solution, class, at));
    if policy.complex_from_start(class) {
        t.push(policy.draft(TimerKind::Progress, class, at));
    }
    t
}

/// Ends for the promises a customer-facing agent reply keeps.
pub fn kept_by_reply(plan: &mut Plan, by_supervisor: bool) {
    plan.end(TimerKind::Ack, TimerEnd::Met);
    plan.end(TimerKind::Solution, TimerEnd::Met);
    plan.end(TimerKind::Progress, TimerEnd::Met);
    if by_supervisor {
        plan.end(TimerKind::SupervisorContact, TimerEnd::Met);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Classification;
    use crate::domain::{Language, TicketRef};

    const H: Millis = 3_600_000;

    fn class() -> TicketClass {
        TicketClass::of(&Classification::plain(Language::En))
    }

    fn agents() -> Vec<Agent> {
        vec![
            Agent {
                name: "Li Na".into(),
                address: EmailAddress::parse("lina@example.test").expect("addr"),
                role: Role::Agent,
            },
            Agent {
                name: "Wang Min".into(),
                address: EmailAddress::parse("wangmin@example.test").expect("addr"),
                role: Role::Supervisor,
            },
        ]
    }

    fn facts() -> TicketState {
        let mut t = TicketState::new(
            TicketRef(1),
            EmailAddress::parse("c@example.org").expect("addr"),
            None,
            "x".into(),
            &Classification::plain(Language::En),
        );
        t.created = false;
        t
    }

    fn timer(d: &TimerDraft, warnings: u32) -> Timer {
        Timer {
            id: 1,
            kind: d.kind,
            started_at: d.started_at,
            span_ms: d.span_ms,
            due_at: d.due_at,
            next_at: d.next_at,
            warnings_fired: warnings,
        }
    }

    #[test]
    fn promises_fall_due_with_a_warning_at_three_quarters() {
        let p = SlaPolicy::default();
        let d = p.draft(TimerKind::Solution, &class(), 0);
        assert_eq!(d.due_at, 48 * H);
        assert_eq!(d.next_at, 36 * H);
        assert_eq!(p.draft(TimerKind::Ack, &class(), 0).due_at, 24 * H);
        assert_eq!(p.draft(TimerKind::Followup, &class(), 0).due_at, 7 * 24 * H);
    }

    #[test]
    fn overrides_pick_the_shortest_matching_time() {
        let s: SlaSettings = toml::from_str(
            r#"
            [[overrides]]
            priority = "urgent"
            first_solution_hours = 4
            [[overrides]]
            vip = true
            first_solution_hours = 24
            [[overrides]]
            category = "suggestion"
            first_solution_hours = 96
            [[overrides]]
            severity = "major"
            complex = true
            "#,
        )
        .expect("toml");
        let p = SlaPolicy::new(&s, Calendar::hours()).expect("valid");
        let mut c = class();
        assert_eq!(p.hours(TimerKind::Solution, &c), 48.0);
        c.vip = true;
        assert_eq!(p.hours(TimerKind::Solution, &c), 24.0);
        c.priority = Priority::Urgent;
        assert_eq!(
            p.hours(TimerKind::Solution, &c),
            4.0,
            "VIP and urgent: shortest"
        );
        let mut s = class();
        s.category = Category::Suggestion;
        assert_eq!(
            p.hours(TimerKind::Solution, &s),
            96.0,
            "an override may loosen"
        );
        let mut m = class();
        m.category = Category::Complaint;
        m.severity = Some(Severity::Major);
        assert!(p.complex_from_start(&m));
        assert_eq!(new_ticket_timers(&p, &m, 0, true).len(), 3);
    }

    #[test]
    fn a_timer_warns_the_owner_or_all_agents_then_breaches_to_the_supervisors() {
        let p = SlaPolicy::default();
        let d = p.draft(TimerKind::Solution, &class(), 0);
        let f = fire(&timer(&d, 0), &facts(), &p, &agents(), 36 * H);
        assert_eq!(f.notices.len(), 1);
        assert_eq!(f.notices[0].template, "notice_warning");
        assert_eq!(
            f.notices[0].to[0].as_str(),
            "lina@example.test",
            "no owner: all agents"
        );
        let step = f.plan.timer_step.expect("step");
        assert_eq!((step.warnings_after, step.next_at), (1, Some(48 * H)));

        let mut owned = facts();
        owned.owner = EmailAddress::parse("owner@example.test");
        let f = fire(&timer(&d, 0), &owned, &p, &agents(), 36 * H);
        assert_eq!(f.notices[0].to[0].as_str(), "owner@example.test");

        let f = fire(&timer(&d, 1), &facts(), &p, &agents(), 48 * H);
        assert_eq!(f.notices[0].template, "notice_escalation");
        assert_eq!(f.notices[0].to[0].as_str(), "wangmin@example.test");
        assert!(f.plan.update.escalate);
        assert_eq!(f.plan.timer_step.expect("step").finished, Some("breached"));
        assert!(f.plan.events.iter().any(|e| e.kind == "sla_breached"));
    }

    #[test]
    fn a_daemon_that_was_down_goes_straight_to_the_breach() {
        let p = SlaPolicy::default();
        let d = p.draft(TimerKind::Ack, &class(), 0);
        let f = fire(&timer(&d, 0), &facts(), &p, &agents(), 30 * H);
        assert_eq!(f.notices.len(), 1);
        assert_eq!(f.notices[0].template, "notice_escalation");
    }

    #[test]
    fn a_kept_promise_ends_quietly() {
        let p = SlaPolicy::default();
        let d = p.draft(TimerKind::Solution, &class(), 0);
        let mut solved = facts();
        solved.status = Status::Solved;
        let f = fire(&timer(&d, 0), &solved, &p, &agents(), 40 * H);
        assert!(f.notices.is_empty());
        assert_eq!(f.plan.timer_step.expect("step").finished, Some("met"));
    }

    #[test]
    fn the_follow_up_can_be_an_automatic_mail() {
        let s = SlaSettings {
            followup: "mail".into(),
            ..Default::default()
        };
        let p = SlaPolicy::new(&s, Calendar::hours()).expect("valid");
        let d = p.draft(TimerKind::Followup, &class(), 0);
        let f = fire(&timer(&d, 1), &facts(), &p, &agents(), 7 * 24 * H);
        assert!(f.followup_mail);
        assert!(f.notices.is_empty());
        assert!(!f.plan.update.escalate);
    }

    #[test]
    fn bad_sla_settings_are_rejected_with_their_keys() {
        let s: SlaSettings = toml::from_str(
            r#"
            ack_hours = -1
            warn_at = [0.9, 0.5]
            followup = "call"
            [[overrides]]
            first_solution_hours = 4
            "#,
        )
        .expect("toml");
        let err = SlaPolicy::new(&s, Calendar::hours())
            .expect_err("invalid")
            .join("\n");
        for key in [
            "sla.ack_hours",
            "sla.warn_at[1]",
            "sla.followup",
            "sla.overrides[0]",
        ] {
            assert!(err.contains(key), "{key}: {err}");
        }
    }
}
