//! What the command line prints for people: the ticket list, one ticket, the monthly report,
//! unattributed mail. Times in the calendar's zone. (`--json` prints the store's read models.)

use crate::domain::Language;
use crate::outbound::labels::{class_name, name};
use crate::outbound::templates::duration_text;
use crate::store::{TicketDetail, TicketSummary, Unattributed};
use crate::ticket::calendar::Calendar;

/// `s` padded with spaces to `width` display columns (a Chinese character takes two).
fn pad(s: &str, width: usize) -> String {
    let w = unicode_width::UnicodeWidthStr::width(s);
    format!("{s}{}", " ".repeat(width.saturating_sub(w)))
}

/// `tickets list`: codes shown by their names in `lang` (the agents' language).
pub(super) fn show_tickets(
    rows: &[TicketSummary],
    cal: &Calendar,
    now: i64,
    lang: Language,
) -> String {
    // The due column names its zone once, in its header, and is as wide as its widest time.
    let dues: Vec<String> = rows
        .iter()
        .map(|r| {
            r.next_due
                .map(|d| format!("{} ({})", short_time(cal, d), duration_text(d - now)))
                .unwrap_or_default()
        })
        .collect();
    let due_header = format!("due, {} (left)", cal.zone_name());
    let due_width = dues
        .iter()
        .chain(std::iter::once(&due_header))
        .map(|d| unicode_width::UnicodeWidthStr::width(d.as_str()))
        .max()
        .unwrap_or(0);
    let mut out = format!(
        "{} {} {} {} {} {} {} subject\n",
        pad("ticket", 9),
        pad("status", 12),
        pad("prio", 8),
        pad("category", 20),
        pad("owner", 24),
        pad("next promise", 19),
        pad(&due_header, due_width),
    );
    for (r, due) in rows.iter().zip(&dues) {
        let mut flags = String::new();
        if r.escalated {
            flags.push_str("[escalated] ");
        }
        if r.complex {
            flags.push_str("[complex] ");
        }
        out.push_str(&format!(
            "{} {} {} {} {} {} {} {flags}{}\n",
            pad(&r.ticket, 9),
            pad(&name(lang, &r.status), 12),
            pad(&name(lang, r.class.priority.as_str()), 8),
            pad(
                &class_name(
                    lang,
                    r.class.category.as_str(),
                    r.class.severity.map(|s| s.as_str()).unwrap_or("")
                ),
                20
            ),
            pad(r.owner.as_deref().unwrap_or("-"), 24),
            pad(
                &r.next_promise
                    .as_deref()
                    .map(|p| name(lang, p))
                    .unwrap_or_else(|| "-".into()),
                19
            ),
            pad(due, due_width),
            r.subject
        ));
    }
    out
}

/// `ticket show`: the ticket's files, numbered for `attachment get`.
pub(super) fn show_files(files: &[super::files::TicketFile], cal: &Calendar) -> String {
    if files.is_empty() {
        return String::new();
    }
    let mut out = "files (supportd attachment get TICKET N):\n".to_string();
    for f in files {
        out.push_str(&format!(
            "  {:>2}  {}  {:<3} {:<30} {} ({}, {})\n",
            f.n,
            cal.show(f.at),
            f.direction,
            f.from.as_deref().unwrap_or("-"),
            f.file.name.as_deref().unwrap_or("(unnamed)"),
            f.file.content_type,
            crate::agents::shared_mailbox::size_text(f.file.size)
        ));
    }
    out
}

/// `unattributed list`.
pub(super) fn show_unattributed(rows: &[Unattributed], cal: &Calendar) -> String {
    if rows.is_empty() {
        return "no unattributed mail\n".into();
    }
    let mut out = String::new();
    for r in rows {
        out.push_str(&format!(
            "{}  {}  {} UID {}  <{}>\n    from {}  subject {:?}\n",
            cal.show(r.at),
            r.why,
            r.mailbox.as_deref().unwrap_or("-"),
            r.uid.map(|u| u.to_string()).unwrap_or_else(|| "-".into()),
            r.message_id,
            r.from.as_deref().unwrap_or("(none)"),
            r.subject.as_deref().unwrap_or(""),
        ));
    }
    out
}

/// `30m`, `4h`, `2d`, `90s` → milliseconds.
pub(super) fn parse_duration(s: &str) -> Option<i64> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit() && c != '.')?;
    let (n, unit) = s.split_at(split);
    let n: f64 = n.parse().ok()?;
    let unit_ms = match unit.trim() {
        "s" | "sec" | "secs" => 1_000.0,
        "m" | "min" | "mins" => 60_000.0,
        "h" | "hour" | "hours" => 3_600_000.0,
        "d" | "day" | "days" => 86_400_000.0,
        _ => return None,
    };
    (n.is_finite() && n >= 0.0).then_some((n * unit_ms) as i64)
}

/// `2026-11-30 14:00` in the calendar's zone (without the zone name).
pub(super) fn short_time(cal: &Calendar, at: i64) -> String {
    let full = cal.show(at);
    full.rsplit_once(' ')
        .map(|(t, _)| t.to_string())
        .unwrap_or(full)
}

/// `ticket show`: codes shown by their names in `lang` (the agents' language).
pub(super) fn show_ticket(d: &TicketDetail, cal: &Calendar, now: i64, lang: Language) -> String {
    let s = &d.summary;
    let when = |t: Option<i64>| t.map(|t| cal.show(t)).unwrap_or_else(|| "-".into());
    let mut out = format!(
        "{}  {}\n  status     {}{}{}\n  requester  {}\n  class      {}, urgent={} vip={}, priority {}\n  owner      {}\n  created    {}\n  acked      {}\n  1st reply  {}\n  solved     {}\n  replies    {} by agents, {} reopen(s)\n",
        s.ticket,
        s.subject,
        name(lang, &s.status),
        if s.escalated { ", escalated" } else { "" },
        if s.complex { ", complex" } else { "" },
        s.requester,
        class_name(
            lang,
            s.class.category.as_str(),
            s.class.severity.map(|x| x.as_str()).unwrap_or("")
        ),
        s.class.urgent,
        s.class.vip,
        name(lang, s.class.priority.as_str()),
        s.owner.as_deref().unwrap_or("-"),
        cal.show(s.created_at),
        when(d.acked_at),
        when(d.first_reply_at),
        when(d.solved_at),
        d.agent_replies,
        d.reopens,
    );
    if let Some(r) = &d.followup_result {
        out.push_str(&format!("  follow-up  {r}\n"));
    }
    out.push_str("promises:\n");
    for t in &d.timers {
        let left = match (t.state.as_str(), t.met_at) {
            ("running", _) => format!("{} left", duration_text(t.due_at - now)),
            (_, Some(m)) => format!("kept at {}", cal.show(m)),
            ("breached", None) => format!("breached, {} overdue", duration_text(now - t.due_at)),
            _ => String::new(),
        };
        out.push_str(&format!(
            "  {} {:<10} due {}  {}\n",
            pad(&name(lang, &t.promise), 19),
            t.state,
            cal.show(t.due_at),
            left
        ));
    }
    out.push_str("events:\n");
    for (at, kind, detail) in &d.events {
        out.push_str(&format!("  {}  {kind:<24} {detail}\n", cal.show(*at)));
    }
    out.push_str("messages:\n");
    for (at, dir, from, subject, verdict, text) in &d.messages {
        out.push_str(&format!(
            "  {}  {dir:<3} {:<30} {verdict:<10} {subject}\n",
            cal.show(*at),
            from.as_deref().unwrap_or("-")
        ));
        out.push_str(&quoted_text(text, TEXT_LINES));
    }
    out
}

/// Lines of a message's text `ticket show` prints under it; the rest is counted.
const TEXT_LINES: usize = 12;

/// `text` indented under its message line, at most `max` lines: its paragraphs kept apart by
/// one blank line (runs of blank lines, and blank lines at either end, dropped).
fn quoted_text(text: &str, max: usize) -> String {
    let mut lines: Vec<&str> = Vec::new();
    for l in text.lines().map(str::trim_end) {
        let blank = l.trim().is_empty();
        if blank && lines.last().is_none_or(|p| p.is_empty()) {
            continue;
        }
        lines.push(if blank { "" } else { l });
    }
    while lines.last().is_some_and(|l| l.is_empty()) {
        lines.pop();
    }
    let mut out = String::new();
    for l in lines.iter().take(max) {
        if l.is_empty() {
            out.push_str("      |\n");
        } else {
            out.push_str(&format!("      | {l}\n"));
        }
    }
    if lines.len() > max {
        out.push_str(&format!("      | … {} more line(s)\n", lines.len() - max));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The due column names its zone in its header and fits its widest time, so the subjects
    /// stand in one column (a Chinese character takes two).
    #[test]
    fn the_ticket_list_names_the_due_time_zone_and_keeps_its_columns() {
        use crate::domain::{Category, Priority, TicketClass};
        let cal = Calendar::new(&crate::ticket::calendar::CalendarSettings {
            timezone: "Asia/Shanghai".into(),
            ..Default::default()
        })
        .expect("calendar");
        let now = 1_796_000_000_000;
        let row = |ticket: &str, due: Option<i64>, subject: &str| TicketSummary {
            ticket: ticket.into(),
            status: "open".into(),
            requester: "a@example.com".into(),
            subject: subject.into(),
            language: "zh-Hans".into(),
            class: TicketClass {
                category: Category::StatusQuery,
                severity: None,
                urgent: false,
                vip: false,
                priority: Priority::Normal,
            },
            owner: None,
            complex: false,
            escalated: false,
            created_at: now,
            updated_at: now,
            messages: 1,
            next_due: due,
            next_promise: due.map(|_| "first_response".into()),
        };
        let shown = show_tickets(
            &[
                row("T-000001", Some(now + 47 * 3_600_000), "退款什么时候到账"),
                row("T-000002", None, "invoice"),
            ],
            &cal,
            now,
            Language::En,
        );
        let lines: Vec<&str> = shown.lines().collect();
        assert!(lines[0].contains("due, Asia/Shanghai (left)"), "{shown}");
        let column = |line: &str, word: &str| {
            let at = line.find(word).expect("word");
            unicode_width::UnicodeWidthStr::width(&line[..at])
        };
        assert_eq!(
            column(lines[0], "subject"),
            column(lines[1], "退款"),
            "{shown}"
        );
        assert_eq!(
            column(lines[0], "subject"),
            column(lines[2], "invoice"),
            "{shown}"
        );
    }

    /// A mail's text under its line keeps its paragraphs (one blank line between them), drops
    /// runs of blank lines and blank ends, and counts what is past the limit.
    #[test]
    fn a_mail_s_text_keeps_its_paragraphs_under_its_line() {
        let shown = quoted_text("\n尊敬的客户：\n\n\n您好！已收到。\n  \n客服中心\n\n", 12);
        assert_eq!(
            shown,
            "      | 尊敬的客户：\n      |\n      | 您好！已收到。\n      |\n      | 客服中心\n"
        );
        let long = quoted_text(&"a\n\n".repeat(10), 4);
        assert!(long.ends_with("      | … 15 more line(s)\n"), "{long}");
    }

    #[test]
    fn durations_read_like_people_write_them() {
        assert_eq!(parse_duration("4h"), Some(4 * 3_600_000));
        assert_eq!(parse_duration("30m"), Some(30 * 60_000));
        assert_eq!(parse_duration("2d"), Some(2 * 86_400_000));
        assert_eq!(parse_duration("1.5h"), Some(5_400_000));
        assert_eq!(parse_duration("4"), None);
        assert_eq!(parse_duration("4 weeks"), None);
    }
}
