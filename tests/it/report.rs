//! The monthly service report: its figures from a scripted month (known answers for every KPI,
//! per agent and per survey dimension) on SQLite and PostgreSQL; the report mailed on the 1st
//! to the supervisor, read back from the rig with its inline charts, once across restarts; the
//! HTML rendered by headless Chromium with its charts visible; an empty month.

use crate::helpers::*;
use mail_parser::MimeHeaders;
use std::sync::Arc;
use supportd::clock::FakeClock;
use supportd::domain::Millis;
use supportd::report::{Month, MonthFigures, Targets};
use supportd::store::Store;

const H: Millis = 3_600_000;
const D: Millis = 24 * H;

fn tz() -> chrono_tz::Tz {
    "Asia/Shanghai".parse().expect("tz")
}

struct T {
    id: i64,
    created: Millis,
    category: &'static str,
    severity: Option<&'static str>,
    priority: &'static str,
    owner: Option<&'static str>,
    first_reply: Option<Millis>,
    solved: Option<Millis>,
    replies: i64,
    reopens: i64,
    survey_sent: Option<Millis>,
}

async fn exec(store: &Store, sql: String) {
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .execute(store.pool())
        .await
        .expect("script");
}

/// November 2026 in Asia/Shanghai, scripted row by row (see the expected figures below).
async fn script_november(store: &Store) -> Month {
    let nov = Month::parse("2026-11").expect("month");
    let (from, to) = nov.bounds(tz());
    let t = |id, created, category, severity, priority, owner| T {
        id,
        created,
        category,
        severity,
        priority,
        owner,
        first_reply: None,
        solved: None,
        replies: 0,
        reopens: 0,
        survey_sent: None,
    };
    let li = Some("li@desk.example");
    let tom = Some("tom@desk.example");
    let tickets = [
        T {
            first_reply: Some(from + H + 2 * H),
            solved: Some(from + 4 * H),
            replies: 1,
            survey_sent: Some(from + 4 * H),
            ..t(1, from + H, "inquiry", None, "normal", li)
        },
        T {
            first_reply: Some(from + 10 * H + 4 * H),
            solved: Some(from + 30 * H),
            replies: 2,
            survey_sent: Some(from + 30 * H),
            ..t(2, from + 10 * H, "inquiry", None, "normal", li)
        },
        T {
            first_reply: Some(from + D + 2 * H + 30 * H),
            solved: Some(from + 3 * D),
            replies: 1,
            reopens: 1,
            survey_sent: Some(from + 3 * D),
            ..t(
                3,
                from + D + 2 * H,
                "complaint",
                Some("general"),
                "high",
                tom,
            )
        },
        t(4, from + 5 * D, "complaint", Some("major"), "urgent", tom),
        // The last quarter-hour of the month, local time.
        t(5, to - 10 * 60_000, "status_query", None, "normal", None),
        // Created in October, solved in November with one reply.
        T {
            first_reply: Some(from - 2 * D + H),
            solved: Some(from + 2 * H),
            replies: 1,
            ..t(6, from - 2 * D, "suggestion", None, "low", li)
        },
        // December: outside.
        t(7, to + H, "inquiry", None, "normal", None),
    ];
    let n = |v: Option<Millis>| v.map(|x| x.to_string()).unwrap_or("NULL".into());
    let q = |v: Option<&str>| v.map(|x| format!("'{x}'")).unwrap_or("NULL".into());
    for x in &tickets {
        exec(store, format!(
            "INSERT INTO tickets (id, status, requester, subject, language, created_at, updated_at, solved_at,
                category, severity, priority, owner, first_reply_at, agent_replies, reopens, survey_sent_at)
             VALUES ({}, '{}', 'c{}@example.com', 's', 'en', {}, {}, {}, '{}', {}, '{}', {}, {}, {}, {}, {})",
            x.id,
            if x.solved.is_some() { "solved" } else { "open" },
            x.id,
            x.created,
            x.created,
            n(x.solved),
            x.category,
            q(x.severity),
            x.priority,
            q(x.owner),
            n(x.first_reply),
            x.replies,
            x.reopens,
            n(x.survey_sent),
        ))
        .await;
    }
    // (ticket, kind, started, due, state, met, breached)
    type Timer = (
        i64,
        &'static str,
        Millis,
        Millis,
        &'static str,
        Option<Millis>,
        Option<Millis>,
    );
    let timers: [Timer; 8] = [
        (
            1,
            "ack",
            from + H,
            from + H + D,
            "met",
            Some(from + H + 60_000),
            None,
        ),
        (
            2,
            "ack",
            from + 10 * H,
            from + 10 * H + D,
            "met",
            Some(from + 10 * H + 60_000),
            None,
        ),
        (
            3,
            "ack",
            from + D + 2 * H,
            from + 2 * D + 2 * H,
            "met",
            Some(from + D + 3 * H),
            None,
        ),
        (
            4,
            "ack",
            from + 5 * D,
            from + 6 * D,
            "breached",
            None,
            Some(from + 6 * D),
        ),
        (
            5,
            "ack",
            to - 10 * 60_000,
            to - 10 * 60_000 + D,
            "met",
            Some(to - 5 * 60_000),
            None,
        ),
        (
            3,
            "solution",
            from + D + 2 * H,
            from + 3 * D + 2 * H - D,
            "breached",
            Some(from + 3 * D),
            Some(from + 2 * D + 2 * H),
        ),
        // An unsatisfied survey on ticket 3: the supervisor's contact, overdue and not made.
        (
            3,
            "supervisor_contact",
            from + 3 * D + H,
            from + 4 * D + H,
            "running",
            None,
            None,
        ),
        // A follow-up still running and not yet due at the report's time: not counted.
        (1, "followup", to - D, to + 6 * D, "running", None, None),
    ];
    for (tk, kind, started, due, state, met, breached) in timers {
        exec(
            store,
            format!(
                "INSERT INTO timers (ticket_id, kind, started_at, span_ms, due_at, next_at, state, met_at, breached_at, created_at)
                 VALUES ({tk}, '{kind}', {started}, {}, {due}, {due}, '{state}', {}, {}, {started})",
                due - started,
                n(met),
                n(breached)
            ),
        )
        .await;
    }
    // (ticket, speed, solving, attitude, overall, at)
    let surveys = [
        (1, "5", "5", "5", 5, from + 5 * H),
        (2, "4", "4", "NULL", 4, from + 31 * H),
        (3, "2", "2", "1", 1, from + 3 * D + H),
    ];
    for (tk, a, b, c, o, at) in surveys {
        exec(store, format!(
            "INSERT INTO surveys (ticket_id, speed, solving, attitude, overall, at) VALUES ({tk}, {a}, {b}, {c}, {o}, {at})"
        ))
        .await;
    }
    exec(
        store,
        format!(
            "INSERT INTO classification_corrections (ticket_id, field, old_value, new_value, corrected_by, at)
             VALUES (3, 'severity', 'general', 'major', 'li@desk.example', {})",
            from + 2 * D
        ),
    )
    .await;
    nov
}

async fn figures_of_a_scripted_month(db: Db) {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = fresh_database(db, dir.path()).await;
    let store = Store::connect(&url, 2).await.expect("store");
    store.migrate().await.expect("migrate");
    let nov = script_november(&store).await;
    let now = nov.next().at(5, 0, tz());
    let r = supportd::report::monthly(&store, nov, tz(), &Targets::default(), now)
        .await
        .expect("report");
    let m = &r.month;
    assert_eq!(m.tickets_created, 5);
    assert_eq!(
        m.by_category,
        [
            ("inquiry".to_string(), 2),
            ("status_query".to_string(), 1),
            ("complaint".to_string(), 2),
            ("suggestion".to_string(), 0)
        ]
    );
    assert_eq!(m.complaints_by_severity[0].1, 1);
    assert_eq!(m.complaints_by_severity[1].1, 1);
    assert_eq!(m.daily.len(), 30);
    assert_eq!(m.daily[0].created, [2, 0, 0, 0]);
    assert_eq!(m.daily[1].created, [0, 0, 1, 0]);
    assert_eq!(m.daily[5].created, [0, 0, 1, 0]);
    assert_eq!(
        m.daily[29].created,
        [0, 1, 0, 0],
        "the month's last minutes"
    );
    let k = |c: &str| m.kpi(c).unwrap_or_else(|| panic!("{c}")).clone();
    assert_eq!(
        (
            k("resolution").rate.numerator,
            k("resolution").rate.denominator
        ),
        (3, 5)
    );
    assert_eq!(k("resolution").met, Some(false));
    assert_eq!(
        (
            k("first_contact_resolution").rate.numerator,
            k("first_contact_resolution").rate.denominator
        ),
        (2, 4)
    );
    assert_eq!(
        (
            k("satisfaction").rate.numerator,
            k("satisfaction").rate.denominator
        ),
        (2, 3)
    );
    assert_eq!(
        (
            k("promise_ack").rate.numerator,
            k("promise_ack").rate.denominator
        ),
        (4, 5)
    );
    assert_eq!(
        (
            k("promise_solution").rate.numerator,
            k("promise_solution").rate.denominator
        ),
        (0, 1)
    );
    assert_eq!(
        (
            k("promise_supervisor_contact").rate.numerator,
            k("promise_supervisor_contact").rate.denominator
        ),
        (0, 1),
        "overdue and not made counts as not kept"
    );
    assert!(m.kpi("promise_followup").is_none(), "running, not yet due");
    let breaches: Vec<(&str, &str, &str, i64)> = m
        .breaches
        .iter()
        .map(|b| {
            (
                b.promise.as_str(),
                b.category.as_str(),
                b.priority.as_str(),
                b.count,
            )
        })
        .collect();
    assert_eq!(
        breaches,
        [
            ("ack", "complaint", "urgent", 1),
            ("solution", "complaint", "high", 1)
        ]
    );
    assert_eq!(
        (m.surveys.response.numerator, m.surveys.response.denominator),
        (3, 3)
    );
    assert_eq!(m.surveys.distribution[0], [0, 1, 0, 1, 1]);
    assert_eq!(
        m.surveys.distribution[2],
        [1, 0, 0, 0, 1],
        "one left attitude blank"
    );
    assert_eq!(m.surveys.distribution[3], [1, 0, 0, 1, 1]);
    assert_eq!(m.surveys.mean[3], Some(10.0 / 3.0));
    assert_eq!(m.agents.len(), 2);
    let li = &m.agents[0];
    assert_eq!(li.agent, "li@desk.example");
    assert_eq!(
        (
            li.owned,
            li.first_replies,
            li.solved,
            li.reopened,
            li.unsatisfied
        ),
        (2, 2, 3, 0, 0)
    );
    assert_eq!(li.median_first_reply_ms, Some(3 * H));
    assert_eq!(
        (li.satisfaction.numerator, li.satisfaction.denominator),
        (2, 2)
    );
    assert_eq!(li.mean_overall, Some(4.5));
    let tom = &m.agents[1];
    assert_eq!(
        (
            tom.owned,
            tom.first_replies,
            tom.solved,
            tom.reopened,
            tom.unsatisfied
        ),
        (2, 1, 1, 1, 1)
    );
    assert_eq!(tom.median_first_reply_ms, Some(30 * H));
    assert_eq!(tom.mean_overall, Some(1.0));
    assert_eq!((m.corrections.numerator, m.corrections.denominator), (1, 5));
    // The month before: ticket 6 only.
    assert_eq!(r.previous.month, "2026-10");
    assert_eq!(r.previous.tickets_created, 1);
    assert_eq!(r.previous.by_category[3], ("suggestion".to_string(), 1));
    // The renderings carry the same figures.
    let text = supportd::report::text::render(&r, supportd::domain::Language::En);
    assert!(text.contains("resolution"), "{text}");
    assert!(text.contains("60.0 %") && text.contains("MISSED"), "{text}");
    let json = serde_json::to_value(&r).expect("json");
    assert_eq!(json["month"]["tickets_created"], 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scripted_month_gives_every_known_figure_on_sqlite() {
    figures_of_a_scripted_month(Db::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scripted_month_gives_every_known_figure_on_postgresql() {
    figures_of_a_scripted_month(Db::Postgres).await;
}

/// The month's report reaches the supervisor on the 1st as HTML with inline PNG charts and a
/// plain-text alternative; restarting the daemon does not send it again.
async fn the_report_is_mailed_on_the_first(db: Db) {
    let supervisor = address(&unique("sup"));
    let nov = Month::parse("2026-11").expect("month");
    // 1 December 08:30 Asia/Shanghai: due at 08:00.
    let clock = Arc::new(FakeClock::new(nov.next().at(1, 8, tz()) + 30 * 60_000));
    let mut app = spawn_app(AppOptions {
        db,
        clock: Some(clock.clone()),
        extra: format!(
            "[calendar]\ntimezone = \"Asia/Shanghai\"\n[[agents]]\nname = \"王敏\"\naddress = \"{supervisor}\"\nrole = \"supervisor\"\n"
        ),
        report_mail: true,
        ..Default::default()
    })
    .await;
    let mails = wait_for_mail(&supervisor, 1, 60).await;
    assert_eq!(mails.len(), 1);
    let msg = mail_parser::MessageParser::default()
        .parse(&mails[0])
        .expect("parses");
    let subject = msg.subject().unwrap_or_default().to_string();
    assert!(subject.contains("2026-11"), "{subject}");
    assert_eq!(
        msg.header_raw("Auto-Submitted").map(str::trim),
        Some("auto-generated")
    );
    let html = msg.body_html(0).expect("an HTML part").to_string();
    let text = msg.body_text(0).expect("a plain-text part").to_string();
    assert!(text.contains("key figures"), "{text}");
    let pngs: Vec<_> = msg
        .parts
        .iter()
        .filter(|p| p.content_type().is_some_and(|c| c.subtype() == Some("png")))
        .collect();
    assert_eq!(pngs.len(), 5, "five charts");
    for p in &pngs {
        let cid = p.content_id().expect("Content-ID");
        assert!(html.contains(&format!("cid:{cid}")), "{cid} is shown");
        let bytes = p.contents();
        assert!(bytes.starts_with(b"\x89PNG"), "a PNG image");
        assert!(bytes.len() > 3_000, "a chart, not an empty image");
    }
    assert!(
        String::from_utf8_lossy(&mails[0]).contains("multipart/related"),
        "the charts are inline"
    );
    // Once: a restart the same day queues nothing more.
    app.stop().await;
    clock.advance(std::time::Duration::from_secs(3600));
    app.start().await;
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    assert_eq!(read_folder(&supervisor, "INBOX").await.len(), 1);
    let mailed = app.store.reports_mailed(5).await.expect("months");
    assert_eq!(mailed.len(), 1);
    assert_eq!(mailed[0].0, "2026-11");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_month_s_report_reaches_the_supervisor_once_on_sqlite() {
    the_report_is_mailed_on_the_first(Db::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_month_s_report_reaches_the_supervisor_once_on_postgresql() {
    the_report_is_mailed_on_the_first(Db::Postgres).await;
}

/// `supportd report --format html` rendered by headless Chromium: the page has its charts, and
/// they are drawn (a screenshot with many non-white pixels in each chart's place). Chromium is
/// installed by `.ci/run` (Debian's `chromium`); set `SUPPORTD_NO_CHROMIUM=1` to skip loudly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_html_report_renders_with_its_charts_in_chromium() {
    let app = spawn_app(AppOptions::default()).await;
    script_november(&app.store).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let html = dir.path().join("report.html");
    let out = supportd_cli(
        &app,
        &[
            "report",
            "--month",
            "2026-11",
            "--format",
            "html",
            "-o",
            html.to_str().expect("path"),
        ],
    );
    assert!(out.contains("written"), "{out}");
    let page = std::fs::read_to_string(&html).expect("html");
    assert_eq!(page.matches("<svg").count(), 5, "five inline charts");
    assert!(!page.contains("<script"), "no JavaScript");
    assert!(page.contains("满意度") || page.contains("satisfaction"));
    if std::env::var_os("SUPPORTD_NO_CHROMIUM").is_some() {
        eprintln!("SKIPPED: Chromium rendering (SUPPORTD_NO_CHROMIUM set)");
        return;
    }
    let shot = dir.path().join("report.png");
    let status = std::process::Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--window-size=900,4000",
            &format!("--screenshot={}", shot.display()),
            &format!("file://{}", html.display()),
        ])
        .output()
        .expect("chromium is installed (apt-get install chromium), or set SUPPORTD_NO_CHROMIUM=1");
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    if let Some(keep) = std::env::var_os("SUPPORTD_KEEP_REPORT") {
        // To look at it: SUPPORTD_KEEP_REPORT=/tmp/report cargo test --test it html_report
        let keep = std::path::PathBuf::from(keep);
        let _ = std::fs::copy(&html, keep.with_extension("html"));
        let _ = std::fs::copy(&shot, keep.with_extension("png"));
    }
    let decoder = png::Decoder::new(std::io::BufReader::new(
        std::fs::File::open(&shot).expect("screenshot"),
    ));
    let mut reader = decoder.read_info().expect("png");
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).expect("frame");
    assert_eq!((info.width, info.height), (900, 4000));
    let channels = info.line_size / info.width as usize;
    // Coloured pixels (chart bars: not grey, not white) are plentiful.
    let coloured = buf
        .chunks(channels)
        .filter(|p| {
            let (r, g, b) = (p[0] as i32, p[1] as i32, p[2] as i32);
            (r - g).abs() > 40 || (g - b).abs() > 40 || (r - b).abs() > 40
        })
        .count();
    assert!(
        coloured > 20_000,
        "the charts are drawn: {coloured} coloured pixels"
    );
}

#[test]
fn an_empty_month_renders_sensibly() {
    let nov = Month::parse("2026-11").expect("month");
    let (from, to) = nov.bounds(tz());
    let rows = supportd::domain::report::MonthRows {
        from,
        to,
        now: to,
        ..Default::default()
    };
    let empty = MonthFigures::build(nov, &rows, tz(), &Targets::default());
    let r = supportd::report::MonthlyReport {
        month: empty.clone(),
        previous: empty,
        targets: Targets::default(),
    };
    let text = supportd::report::text::render(&r, supportd::domain::Language::En);
    assert!(text.contains("n/a") && !text.contains("NaN"), "{text}");
    let page = supportd::report::html::render(
        &r,
        supportd::domain::Language::ZhHans,
        supportd::report::html::ChartsAs::InlineSvg,
        "客服中心",
    );
    assert!(page.contains("本月无客服回复"), "no agents said so");
    assert!(!page.contains("NaN"));
    for c in supportd::report::charts::Chart::ALL {
        let png = supportd::report::charts::png(c, &r, supportd::domain::Language::ZhHans)
            .expect("a chart of nothing still draws");
        assert!(png.starts_with(b"\x89PNG"));
    }
}
