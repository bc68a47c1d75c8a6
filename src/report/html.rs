//! The monthly report as one self-contained HTML document: no JavaScript, no external file or
//! server. Charts are inline SVG (the file `supportd report --format html` writes) or
//! `cid:` references to PNG parts (the mailed report, multipart/related).

use super::charts::{self, Chart};
use super::figures::{MonthFigures, MonthlyReport, Rate, Trend, CATEGORIES, DIMENSIONS};
use crate::domain::Language;
use crate::outbound::labels::name;
use std::fmt::Write;

/// How the charts appear in the document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChartsAs {
    /// `<svg>` elements in the page.
    InlineSvg,
    /// `<img src="cid:chart-<id>@supportd">` (the mail carries the PNGs).
    ContentId,
}

/// The `Content-ID` (without brackets) of a chart's image in the mailed report.
pub fn content_id(chart: Chart) -> String {
    format!("chart-{}@supportd", chart.id())
}

/// Escapes text for HTML.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn zh(lang: Language) -> bool {
    lang.template_language() != Language::En
}

/// `a` in Chinese, `b` in English.
fn t(lang: Language, a: &'static str, b: &'static str) -> &'static str {
    if zh(lang) {
        a
    } else {
        b
    }
}

pub fn percent(r: &Rate) -> String {
    match r.value {
        Some(v) => format!("{:.1} %", v * 100.0),
        None => "n/a".to_string(),
    }
}

/// Hours with one decimal (`3.5 h`), or "n/a".
pub fn hours(ms: Option<i64>) -> String {
    ms.map(|m| format!("{:.1} h", m as f64 / 3_600_000.0))
        .unwrap_or_else(|| "n/a".into())
}

fn kpi_name(lang: Language, code: &str) -> String {
    match code.strip_prefix("promise_") {
        Some(p) => format!("{}{}", t(lang, "承诺：", "promise: "), name(lang, p)),
        None => name(lang, code),
    }
}

/// The whole document. `charts_failed` is why charts are missing, if they are.
pub fn render(
    r: &MonthlyReport,
    lang: Language,
    charts_as: ChartsAs,
    support_name: &str,
) -> String {
    let m = &r.month;
    let p = &r.previous;
    let mut h = String::with_capacity(64 * 1024);
    let title = format!(
        "{} {} — {}",
        escape(support_name),
        t(lang, "月度服务报告", "monthly service report"),
        m.month
    );
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"{}\"><head><meta charset=\"utf-8\"><title>{title}</title>\n\
         <style>\
         body{{font-family:'Noto Sans CJK SC','WenQuanYi Micro Hei','Microsoft YaHei','PingFang SC',Arial,sans-serif;color:#222;max-width:800px;margin:16px auto;padding:0 8px}}\
         h1{{font-size:22px}} h2{{font-size:17px;margin-top:28px;border-bottom:1px solid #ddd}}\
         table{{border-collapse:collapse;margin:8px 0}} td,th{{border:1px solid #ccc;padding:4px 8px;text-align:right}}\
         th:first-child,td:first-child{{text-align:left}} th{{background:#f3f3f3}}\
         .met{{color:#2e8b57;font-weight:bold}} .missed{{color:#c0392b;font-weight:bold}} .na{{color:#888}}\
         .chart{{margin:8px 0}} .small{{color:#666;font-size:12px}}\
         </style></head><body>\n<h1>{title}</h1>\n<p class=\"small\">{} {} ({}) · {} {}</p>\n",
        lang.code(),
        t(lang, "统计期间", "Period"),
        m.month,
        escape(&m.zone),
        t(lang, "对比", "compared with"),
        p.month,
    );

    // Key figures.
    let _ = write!(
        h,
        "<h2>{}</h2>\n<table><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr>\n",
        t(lang, "关键指标", "Key figures"),
        t(lang, "指标", "Figure"),
        m.month,
        t(lang, "目标", "Target"),
        t(lang, "达标", "Met"),
        p.month
    );
    for k in &m.kpis {
        let (class, mark) = match k.met {
            Some(true) => ("met", t(lang, "✔ 达标", "✔ met")),
            Some(false) => ("missed", t(lang, "✘ 未达标", "✘ missed")),
            None => ("na", "n/a"),
        };
        let before = p.kpi(&k.code).map(|x| percent(&x.rate));
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td>{} <span class=\"small\">({}/{})</span></td><td>≥ {:.0} %</td><td class=\"{class}\">{mark}</td><td>{} {}</td></tr>",
            escape(&kpi_name(lang, &k.code)),
            percent(&k.rate),
            k.rate.numerator,
            k.rate.denominator,
            k.target * 100.0,
            before.unwrap_or_else(|| "n/a".into()),
            r.trend(&k.code).arrow(),
        );
    }
    h.push_str("</table>\n");
    chart(&mut h, Chart::Kpis, r, lang, charts_as);

    // Volume.
    let _ = write!(
        h,
        "<h2>{}</h2>\n<table><tr><th>{}</th><th>{}</th><th>{}</th><th></th></tr>\n",
        t(lang, "工单量", "Volume"),
        t(lang, "类别", "Category"),
        m.month,
        p.month
    );
    let count = |f: &MonthFigures, c: &str| {
        f.by_category
            .iter()
            .find(|x| x.0 == c)
            .map(|x| x.1)
            .unwrap_or(0)
    };
    for c in CATEGORIES {
        let (a, b) = (count(m, c), count(p, c));
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td>{a}</td><td>{b}</td><td>{}</td></tr>",
            escape(&name(lang, c)),
            Trend::of(Some(a as f64), Some(b as f64)).arrow()
        );
    }
    let _ = writeln!(
        h,
        "<tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr></table>",
        t(lang, "合计", "Total"),
        m.tickets_created,
        p.tickets_created,
        Trend::of(
            Some(m.tickets_created as f64),
            Some(p.tickets_created as f64)
        )
        .arrow()
    );
    chart(&mut h, Chart::Daily, r, lang, charts_as);
    chart(&mut h, Chart::Complaints, r, lang, charts_as);

    // Promises.
    let _ = write!(
        h,
        "<h2>{}</h2>\n<table><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr>\n",
        t(lang, "服务承诺", "Service promises"),
        t(lang, "承诺", "Promise"),
        t(lang, "按时兑现", "Kept on time"),
        t(lang, "已结算", "Settled"),
        t(lang, "兑现率", "Rate")
    );
    for x in &m.promises {
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&name(lang, &x.promise)),
            x.kept.numerator,
            x.kept.denominator,
            percent(&x.kept)
        );
    }
    h.push_str("</table>\n");
    if m.breaches.is_empty() {
        let _ = writeln!(
            h,
            "<p>{}</p>",
            t(lang, "本月无超时。", "No promise was breached.")
        );
    } else {
        let _ = writeln!(
            h,
            "<table><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr>",
            t(lang, "超时承诺", "Breached promise"),
            t(lang, "类别", "Category"),
            t(lang, "优先级", "Priority"),
            t(lang, "次数", "Count")
        );
        for b in &m.breaches {
            let _ = writeln!(
                h,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(&name(lang, &b.promise)),
                escape(&name(lang, &b.category)),
                escape(&name(lang, &b.priority)),
                b.count
            );
        }
        h.push_str("</table>\n");
    }
    chart(&mut h, Chart::Breaches, r, lang, charts_as);

    // Satisfaction.
    let s = &m.surveys;
    let _ = write!(
        h,
        "<h2>{}</h2>\n<p>{}: {} ({}/{})</p>\n<table><tr><th>{}</th>{}<th>{}</th><th>{}</th></tr>\n",
        t(lang, "满意度调查", "Satisfaction survey"),
        t(lang, "回收率", "Response rate"),
        percent(&s.response),
        s.response.numerator,
        s.response.denominator,
        t(lang, "维度", "Dimension"),
        (1..=5).map(|k| format!("<th>{k}</th>")).collect::<String>(),
        t(lang, "平均分", "Mean"),
        p.month,
    );
    for (k, d) in DIMENSIONS.iter().enumerate() {
        let mean = |x: Option<f64>| x.map(|v| format!("{v:.2}")).unwrap_or("n/a".into());
        let _ = writeln!(
            h,
            "<tr><td>{}</td>{}<td>{}</td><td>{} {}</td></tr>",
            escape(&name(lang, d)),
            s.distribution[k]
                .iter()
                .map(|n| format!("<td>{n}</td>"))
                .collect::<String>(),
            mean(s.mean[k]),
            mean(p.surveys.mean[k]),
            Trend::of(s.mean[k], p.surveys.mean[k]).arrow()
        );
    }
    h.push_str("</table>\n");
    chart(&mut h, Chart::Surveys, r, lang, charts_as);

    // Agents.
    let _ = writeln!(
        h,
        "<h2>{}</h2>",
        t(lang, "客服人员（首问负责）", "Agents (owners)")
    );
    if m.agents.is_empty() {
        let _ = writeln!(
            h,
            "<p>{}</p>",
            t(lang, "本月无客服回复。", "No agent answered this month.")
        );
    } else {
        let heads = if zh(lang) {
            [
                "客服",
                "负责工单",
                "首次回复",
                "首次回复用时中位数",
                "已解决",
                "其中重开",
                "满意度",
                "平均总体评分",
                "不满意转主管",
            ]
        } else {
            [
                "Agent",
                "Tickets owned",
                "First replies",
                "Median time to first reply",
                "Solved",
                "Of them reopened",
                "Satisfaction",
                "Mean overall",
                "Unsatisfied → supervisor",
            ]
        };
        h.push_str("<table><tr>");
        for x in heads {
            let _ = write!(h, "<th>{x}</th>");
        }
        h.push_str("</tr>\n");
        for a in &m.agents {
            let _ = writeln!(
                h,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(&a.agent),
                a.owned,
                a.first_replies,
                hours(a.median_first_reply_ms),
                a.solved,
                a.reopened,
                percent(&a.satisfaction),
                a.mean_overall.map(|v| format!("{v:.2}")).unwrap_or("n/a".into()),
                a.unsatisfied
            );
        }
        h.push_str("</table>\n");
    }

    let _ = writeln!(
        h,
        "<h2>{}</h2>\n<p>{}: {} ({}/{}) · {}: {}</p>",
        t(lang, "分类", "Classification"),
        t(lang, "人工更正率", "Corrected by agents"),
        percent(&m.corrections),
        m.corrections.numerator,
        m.corrections.denominator,
        p.month,
        percent(&p.corrections)
    );
    let _ = writeln!(
        h,
        "<p class=\"small\">{}</p>\n</body></html>",
        t(
            lang,
            "指标定义见 supportd README「Monthly report」。↑↓ 为与上月相比。",
            "Definitions: the supportd README, \"Monthly report\". ↑↓ compare with the month before."
        )
    );
    h
}

fn chart(h: &mut String, c: Chart, r: &MonthlyReport, lang: Language, how: ChartsAs) {
    let (w, ht) = c.size();
    match how {
        ChartsAs::ContentId => {
            let _ = writeln!(
                h,
                "<div class=\"chart\"><img src=\"cid:{}\" width=\"{w}\" height=\"{ht}\" alt=\"{}\"></div>",
                content_id(c),
                escape(c.title(lang))
            );
        }
        ChartsAs::InlineSvg => match charts::svg(c, r, lang) {
            Ok(svg) => {
                let start = svg.find("<svg").unwrap_or(0);
                let _ = writeln!(
                    h,
                    "<div class=\"chart\" id=\"chart-{}\">{}</div>",
                    c.id(),
                    &svg[start..]
                );
            }
            Err(e) => {
                let _ = writeln!(
                    h,
                    "<p class=\"na\">{}: {}</p>",
                    escape(c.title(lang)),
                    escape(&e.to_string())
                );
            }
        },
    }
}
