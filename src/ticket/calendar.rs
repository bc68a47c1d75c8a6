//! Service time: how deadlines are counted. Pure.
//!
//! By default promises run in calendar hours, as the procedures state them ("within 24 hours").
//! Optionally a business calendar: a time zone (e.g. Asia/Shanghai, via chrono-tz), working spans
//! per weekday (lunch breaks allowed: `09:00-12:00,13:30-18:00`), holidays, and make-up working
//! days (调休) that are worked with Monday's hours. A deadline "24 hours" after a mail is then the
//! moment 24 working hours have passed.
//!
//! Invariants: `add` never loops forever (a calendar without a single working span in a week is
//! rejected at load, and the search is bounded); instants are UTC milliseconds, local time is
//! only used inside, with the zone's own rules for daylight saving.

use crate::clock::Millis;
use chrono::{Datelike, NaiveDate, NaiveTime, TimeZone, Weekday};
use chrono_tz::Tz;
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};

/// `[calendar]` in config.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CalendarSettings {
    /// `calendar` (every hour counts) or `business`.
    #[serde(default = "default_mode")]
    pub mode: String,
    /// IANA zone for business hours and for the times shown to people.
    #[serde(default = "default_tz")]
    pub timezone: String,
    /// Working spans per weekday (`mon` … `sun`), e.g. `"09:00-12:00,13:30-18:00"`; a missing or
    /// empty day is closed.
    #[serde(default)]
    pub hours: BTreeMap<String, String>,
    /// Closed dates (`2026-10-01`).
    #[serde(default)]
    pub holidays: Vec<String>,
    /// Make-up working days (调休), worked with Monday's hours.
    #[serde(default)]
    pub workdays: Vec<String>,
}

fn default_mode() -> String {
    "calendar".into()
}
fn default_tz() -> String {
    "UTC".into()
}

impl Default for CalendarSettings {
    fn default() -> Self {
        CalendarSettings {
            mode: default_mode(),
            timezone: default_tz(),
            hours: BTreeMap::new(),
            holidays: Vec::new(),
            workdays: Vec::new(),
        }
    }
}

type Span = (NaiveTime, NaiveTime);

/// A compiled calendar.
#[derive(Debug, Clone)]
pub struct Calendar {
    tz: Tz,
    business: Option<Business>,
}

#[derive(Debug, Clone)]
struct Business {
    /// Index 0 = Monday.
    week: [Vec<Span>; 7],
    holidays: BTreeSet<NaiveDate>,
    workdays: BTreeSet<NaiveDate>,
}

const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
/// How far ahead a deadline may be searched for (a long holiday plus weeks of promises).
const MAX_DAYS: i64 = 3 * 366;
const HOUR_MS: Millis = 3_600_000;

impl Calendar {
    /// Every hour counts; times shown in UTC.
    pub fn hours() -> Calendar {
        Calendar {
            tz: Tz::UTC,
            business: None,
        }
    }

    /// Compiles `[calendar]`; every problem with its key.
    pub fn new(s: &CalendarSettings) -> Result<Calendar, Vec<String>> {
        let mut problems = Vec::new();
        let tz: Tz = match s.timezone.parse() {
            Ok(tz) => tz,
            Err(_) => {
                problems.push(format!(
                    "calendar.timezone: unknown time zone {:?} (an IANA name such as Asia/Shanghai)",
                    s.timezone
                ));
                Tz::UTC
            }
        };
        let mut week: [Vec<Span>; 7] = Default::default();
        for (day, spec) in &s.hours {
            let Some(i) = DAYS.iter().position(|d| d == day) else {
                problems.push(format!(
                    "calendar.hours.{day}: not a weekday (mon, tue, wed, thu, fri, sat, sun)"
                ));
                continue;
            };
            match parse_spans(spec) {
                Ok(spans) => week[i] = spans,
                Err(e) => problems.push(format!("calendar.hours.{day}: {e}")),
            }
        }
        let dates = |key: &str, list: &[String], problems: &mut Vec<String>| {
            let mut out = BTreeSet::new();
            for (i, d) in list.iter().enumerate() {
                match NaiveDate::parse_from_str(d.trim(), "%Y-%m-%d") {
                    Ok(d) => {
                        out.insert(d);
                    }
                    Err(_) => {
                        problems.push(format!("calendar.{key}[{i}]: not a date YYYY-MM-DD: {d:?}"))
                    }
                }
            }
            out
        };
        let holidays = dates("holidays", &s.holidays, &mut problems);
        let workdays = dates("workdays", &s.workdays, &mut problems);
        let business = match s.mode.as_str() {
            "calendar" => None,
            "business" => {
                if week.iter().all(|d| d.is_empty()) {
                    problems.push(
                        "calendar.hours: a business calendar needs working hours on at least one weekday"
                            .into(),
                    );
                }
                if !workdays.is_empty() && week[0].is_empty() {
                    problems.push(
                        "calendar.workdays: make-up days use Monday's hours, but calendar.hours.mon is empty"
                            .into(),
                    );
                }
                Some(Business {
                    week,
                    holidays,
                    workdays,
                })
            }
            other => {
                problems.push(format!(
                    "calendar.mode: {other:?}: expected \"calendar\" or \"business\""
                ));
                None
            }
        };
        if problems.is_empty() {
            Ok(Calendar { tz, business })
        } else {
            Err(problems)
        }
    }

    pub fn timezone(&self) -> Tz {
        self.tz
    }

    pub fn is_business(&self) -> bool {
        self.business.is_some()
    }

    /// The instant `hours` of service time after `start`.
    pub fn add_hours(&self, start: Millis, hours: f64) -> Millis {
        self.add(start, (hours * HOUR_MS as f64).round() as Millis)
    }

    /// The instant `ms` of service time after `start`.
    pub fn add(&self, start: Millis, ms: Millis) -> Millis {
        let Some(b) = &self.business else {
            return start.saturating_add(ms);
        };
        let mut left = ms.max(0);
        let Some(start_utc) = chrono::DateTime::from_timestamp_millis(start) else {
            return start.saturating_add(ms);
        };
        let mut date = start_utc.with_timezone(&self.tz).date_naive();
        for _ in 0..MAX_DAYS {
            for (from, to) in b.spans(date) {
                let (Some(a), Some(z)) = (self.instant(date, *from), self.instant(date, *to))
                else {
                    continue;
                };
                let a = a.max(start);
                if z <= a {
                    continue;
                }
                if left <= z - a {
                    return a + left;
                }
                left -= z - a;
            }
            date = match date.succ_opt() {
                Some(d) => d,
                None => break,
            };
        }
        // Unreachable with a validated calendar; fall back to calendar time rather than hang.
        start.saturating_add(ms)
    }

    /// A local wall-clock time on a date as a UTC instant (the earlier one in a DST overlap; a
    /// time skipped by DST moves to the next valid minute).
    fn instant(&self, date: NaiveDate, t: NaiveTime) -> Option<Millis> {
        let local = date.and_time(t);
        let mut probe = local;
        for _ in 0..180 {
            if let Some(dt) = self.tz.from_local_datetime(&probe).earliest() {
                return Some(dt.timestamp_millis());
            }
            probe += chrono::Duration::minutes(1);
        }
        None
    }

    /// The calendar's time zone, by its IANA name (`Asia/Shanghai`).
    pub fn zone_name(&self) -> &'static str {
        self.tz.name()
    }

    /// A time for people: `2026-11-30 14:00 Asia/Shanghai`.
    pub fn show(&self, at: Millis) -> String {
        match chrono::DateTime::from_timestamp_millis(at) {
            Some(t) => format!(
                "{} {}",
                t.with_timezone(&self.tz).format("%Y-%m-%d %H:%M"),
                self.tz.name()
            ),
            None => at.to_string(),
        }
    }
}

impl Business {
    fn spans(&self, date: NaiveDate) -> &[Span] {
        if self.holidays.contains(&date) {
            return &[];
        }
        if self.workdays.contains(&date) {
            return &self.week[0];
        }
        let i = match date.weekday() {
            Weekday::Mon => 0,
            Weekday::Tue => 1,
            Weekday::Wed => 2,
            Weekday::Thu => 3,
            Weekday::Fri => 4,
            Weekday::Sat => 5,
            Weekday::Sun => 6,
        };
        &self.week[i]
    }
}

/// `09:00-12:00,13:30-18:00` → spans, ascending and not overlapping; `""` → closed.
fn parse_spans(spec: &str) -> Result<Vec<Span>, String> {
    let mut out: Vec<Span> = Vec::new();
    for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (a, z) = part
            .split_once('-')
            .ok_or_else(|| format!("{part:?}: expected HH:MM-HH:MM"))?;
        let t = |s: &str| {
            let s = s.trim();
            if s == "24:00" {
                return NaiveTime::from_hms_milli_opt(23, 59, 59, 999)
                    .ok_or_else(|| "24:00".to_string());
            }
            NaiveTime::parse_from_str(s, "%H:%M").map_err(|_| format!("{s:?}: not a time HH:MM"))
        };
        let (a, z) = (t(a)?, t(z)?);
        if z <= a {
            return Err(format!("{part:?}: the span must end after it starts"));
        }
        if out.last().is_some_and(|(_, prev_end)| a < *prev_end) {
            return Err(format!("{part:?}: spans must be in order and not overlap"));
        }
        out.push((a, z));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str, tz: Tz) -> Millis {
        let ndt = chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").expect("time");
        tz.from_local_datetime(&ndt)
            .earliest()
            .expect("valid local time")
            .timestamp_millis()
    }

    fn shanghai() -> Calendar {
        let mut hours = BTreeMap::new();
        for d in ["mon", "tue", "wed", "thu", "fri"] {
            hours.insert(d.to_string(), "09:00-12:00,13:00-18:00".to_string());
        }
        Calendar::new(&CalendarSettings {
            mode: "business".into(),
            timezone: "Asia/Shanghai".into(),
            hours,
            // National Day 2026: Oct 1-7 off; Sat Oct 10 is a make-up working day.
            holidays: (1..=7).map(|d| format!("2026-10-{d:02}")).collect(),
            workdays: vec!["2026-10-10".into()],
        })
        .expect("valid calendar")
    }

    #[test]
    fn calendar_hours_are_plain_addition() {
        let c = Calendar::hours();
        assert_eq!(c.add_hours(1_000, 48.0), 1_000 + 48 * HOUR_MS);
    }

    #[test]
    fn business_hours_skip_nights_lunch_and_weekends() {
        let c = shanghai();
        let tz: Tz = "Asia/Shanghai".parse().expect("tz");
        // Friday 2026-11-27 16:00 + 4 working hours: 2 h on Friday, then Monday 09:00-11:00.
        let due = c.add_hours(at("2026-11-27 16:00", tz), 4.0);
        assert_eq!(due, at("2026-11-30 11:00", tz));
        // Across lunch: 11:00 + 2 h = 14:00 (12-13 is lunch).
        let due = c.add_hours(at("2026-11-30 11:00", tz), 2.0);
        assert_eq!(due, at("2026-11-30 14:00", tz));
        // A mail at night counts from the next morning.
        let due = c.add_hours(at("2026-11-30 22:00", tz), 1.0);
        assert_eq!(due, at("2026-12-01 10:00", tz));
        // 24 working hours from Monday 09:00 = three 8-hour days: Wednesday 18:00.
        let due = c.add_hours(at("2026-11-30 09:00", tz), 24.0);
        assert_eq!(due, at("2026-12-02 18:00", tz));
    }

    #[test]
    fn holidays_are_closed_and_make_up_days_are_worked() {
        let c = shanghai();
        let tz: Tz = "Asia/Shanghai".parse().expect("tz");
        // Wednesday Sept 30 17:00 + 2 h: 1 h on the 30th, Oct 1-7 closed (Oct 3-4 weekend too),
        // Thursday Oct 8 09:00-10:00.
        let due = c.add_hours(at("2026-09-30 17:00", tz), 2.0);
        assert_eq!(due, at("2026-10-08 10:00", tz));
        // Friday Oct 9 17:00 + 2 h: 1 h Friday, then the make-up Saturday Oct 10 at 10:00.
        let due = c.add_hours(at("2026-10-09 17:00", tz), 2.0);
        assert_eq!(due, at("2026-10-10 10:00", tz));
    }

    #[test]
    fn daylight_saving_is_the_zone_s_business() {
        let mut hours = BTreeMap::new();
        for d in ["mon", "tue", "wed", "thu", "fri", "sat", "sun"] {
            hours.insert(d.to_string(), "00:00-24:00".to_string());
        }
        let c = Calendar::new(&CalendarSettings {
            mode: "business".into(),
            timezone: "Europe/Berlin".into(),
            hours,
            holidays: vec![],
            workdays: vec![],
        })
        .expect("valid");
        // Round the clock, 24 h across the spring-forward night are 24 real hours (give or take
        // the last millisecond of each day, where 24:00 is 23:59:59.999).
        let tz: Tz = "Europe/Berlin".parse().expect("tz");
        let start = at("2026-03-28 12:00", tz);
        let due = c.add_hours(start, 24.0);
        assert!((due - (start + 24 * HOUR_MS)).abs() < 10, "{}", due - start);
    }

    #[test]
    fn bad_calendars_are_rejected_with_their_keys() {
        let mut hours = BTreeMap::new();
        hours.insert("mon".to_string(), "18:00-09:00".to_string());
        hours.insert("funday".to_string(), "09:00-10:00".to_string());
        let err = Calendar::new(&CalendarSettings {
            mode: "business".into(),
            timezone: "Mars/Olympus".into(),
            hours,
            holidays: vec!["2026-13-01".into()],
            workdays: vec![],
        })
        .expect_err("invalid")
        .join("\n");
        for key in [
            "calendar.timezone",
            "calendar.hours.mon",
            "calendar.hours.funday",
            "calendar.holidays[0]",
        ] {
            assert!(err.contains(key), "{key}: {err}");
        }
        let err = Calendar::new(&CalendarSettings {
            mode: "business".into(),
            ..Default::default()
        })
        .expect_err("no hours")
        .join("\n");
        assert!(err.contains("at least one weekday"), "{err}");
    }

    #[test]
    fn times_are_shown_in_the_calendar_s_zone() {
        let c = shanghai();
        assert_eq!(c.show(0), "1970-01-01 08:00 Asia/Shanghai");
    }
}
