//! The monthly report for a terminal (`supportd report`) and the mailed report's plain-text
//! part: the same figures as the HTML and the JSON, as aligned text with a met/missed mark per
//! key figure and the month before beside it; figure, category and promise names in `lang`.

use super::figures::{MonthlyReport, CATEGORIES, DIMENSIONS};
use super::html::{hours, percent};
use crate::domain::Language;
use crate::outbound::labels::name;
use std::fmt::Write;

/// A figure's name: `promise_ack` → the promise's name.
fn figure(lang: Language, code: &str) -> String {
    match code.strip_prefix("promise_") {
        Some(p) => name(lang, p),
        None => name(lang, code),
    }
}

pub fn render(r: &MonthlyReport, lang: Language) -> String {
    let m = &r.month;
    let p = &r.previous;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "supportd report {} ({}), compared with {}\n",
        m.month, m.zone, p.month
    );
    let _ = writeln!(
        out,
        "key figures                 {:>10}  target  {:<8} {:>10}",
        m.month, "", p.month
    );
    for k in &m.kpis {
        let mark = match k.met {
            Some(true) => "met",
            Some(false) => "MISSED",
            None => "n/a",
        };
        let before = p
            .kpi(&k.code)
            .map(|x| percent(&x.rate))
            .unwrap_or_else(|| "n/a".into());
        let _ = writeln!(
            out,
            "  {:<25} {:>10}  ≥{:>3.0} %  {:<8} {:>10} {}   ({} of {})",
            figure(lang, &k.code),
            percent(&k.rate),
            k.target * 100.0,
            mark,
            before,
            r.trend(&k.code).arrow(),
            k.rate.numerator,
            k.rate.denominator
        );
    }
    let _ = writeln!(
        out,
        "\ntickets created  {}  (before: {})",
        m.tickets_created, p.tickets_created
    );
    for c in CATEGORIES {
        let n = |f: &super::figures::MonthFigures| {
            f.by_category
                .iter()
                .find(|x| x.0 == c)
                .map(|x| x.1)
                .unwrap_or(0)
        };
        let _ = writeln!(
            out,
            "  {:<14} {:>6}  (before: {})",
            name(lang, c),
            n(m),
            n(p)
        );
    }
    let _ = writeln!(
        out,
        "  complaints: general {}, major {}",
        m.complaints_by_severity[0].1, m.complaints_by_severity[1].1
    );
    let _ = writeln!(
        out,
        "\npromises kept (started in the month, settled by now)"
    );
    for x in &m.promises {
        let _ = writeln!(
            out,
            "  {:<19} {:>8}  ({} of {})",
            name(lang, &x.promise),
            percent(&x.kept),
            x.kept.numerator,
            x.kept.denominator
        );
    }
    let _ = writeln!(out, "\nbreaches by promise, category and priority");
    if m.breaches.is_empty() {
        let _ = writeln!(out, "  none");
    }
    for b in &m.breaches {
        let _ = writeln!(
            out,
            "  {:<19} {:<14} {:<8} {}",
            name(lang, &b.promise),
            name(lang, &b.category),
            name(lang, &b.priority),
            b.count
        );
    }
    let s = &m.surveys;
    let _ = writeln!(
        out,
        "\nsurveys  response rate {} ({} of {} sent)\n  {:<10} {:>5} {:>5} {:>5} {:>5} {:>5}   mean",
        percent(&s.response),
        s.response.numerator,
        s.response.denominator,
        "",
        1,
        2,
        3,
        4,
        5
    );
    for (k, d) in DIMENSIONS.iter().enumerate() {
        let dist = &s.distribution[k];
        let _ = writeln!(
            out,
            "  {:<10} {:>5} {:>5} {:>5} {:>5} {:>5}   {}",
            name(lang, d),
            dist[0],
            dist[1],
            dist[2],
            dist[3],
            dist[4],
            s.mean[k].map(|v| format!("{v:.2}")).unwrap_or("n/a".into())
        );
    }
    let _ = writeln!(out, "\nagents (owners)");
    if m.agents.is_empty() {
        let _ = writeln!(out, "  none answered");
    } else {
        let _ = writeln!(
            out,
            "  {:<28} {:>5} {:>6} {:>9} {:>6} {:>8} {:>8} {:>5} {:>11}",
            "agent",
            "owned",
            "first",
            "median",
            "solved",
            "reopened",
            "CSAT",
            "mean",
            "unsatisfied"
        );
    }
    for a in &m.agents {
        let _ = writeln!(
            out,
            "  {:<28} {:>5} {:>6} {:>9} {:>6} {:>8} {:>8} {:>5} {:>11}",
            a.agent,
            a.owned,
            a.first_replies,
            hours(a.median_first_reply_ms),
            a.solved,
            a.reopened,
            percent(&a.satisfaction),
            a.mean_overall
                .map(|v| format!("{v:.2}"))
                .unwrap_or("n/a".into()),
            a.unsatisfied
        );
    }
    let _ = writeln!(
        out,
        "\nclassification corrected  {}  ({} of {} tickets)",
        percent(&m.corrections),
        m.corrections.numerator,
        m.corrections.denominator
    );
    out
}
