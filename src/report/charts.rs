//! The monthly report's charts, drawn once with plotters and rendered as SVG (inline in the HTML
//! file) or PNG (inline images of the mailed report: mail clients show PNG, few show SVG).
//!
//! Text needs a font with Chinese glyphs for the PNG and for measuring labels: the first of
//! [`FONT_CANDIDATES`] that exists (or `[report] font`) is loaded once. Without one, charts are
//! unavailable ([`ChartError::NoFont`]) and the report says so instead of showing them.

use super::figures::{MonthlyReport, CATEGORIES, DIMENSIONS, PROMISES};
use crate::domain::Language;
use crate::outbound::labels::name;
use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::FontStyle;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// Fonts tried in order: Debian's fonts-noto-cjk, fonts-wqy-microhei, fonts-wqy-zenhei,
/// fonts-arphic-ukai, then DejaVu (no Chinese glyphs: Chinese labels would show as boxes).
pub const FONT_CANDIDATES: &[&str] = &[
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/truetype/arphic/ukai.ttc",
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
];

/// The family name charts use.
const FAMILY: &str = "sans-serif";

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum ChartError {
    #[error("no font to draw the charts with (tried {0}); install fonts-noto-cjk or fonts-wqy-microhei, or set [report] font")]
    NoFont(String),
    #[error("drawing a chart failed: {0}")]
    Draw(String),
}

static FONT: OnceLock<Result<PathBuf, ChartError>> = OnceLock::new();

/// Loads the charts' font once: `preferred` if given, else the first of [`FONT_CANDIDATES`].
/// Returns the file used. Later calls return the first call's answer.
pub fn load_font(preferred: Option<&Path>) -> Result<PathBuf, ChartError> {
    FONT.get_or_init(|| {
        let tried: Vec<PathBuf> = preferred
            .map(Path::to_path_buf)
            .into_iter()
            .chain(FONT_CANDIDATES.iter().map(PathBuf::from))
            .collect();
        for path in &tried {
            let Ok(bytes) = std::fs::read(path) else {
                continue;
            };
            // plotters keeps fonts for the process's life; this one is loaded once.
            let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
            if plotters::style::register_font(FAMILY, FontStyle::Normal, bytes).is_ok() {
                let _ = plotters::style::register_font(FAMILY, FontStyle::Bold, bytes);
                return Ok(path.clone());
            }
        }
        Err(ChartError::NoFont(
            tried
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
        ))
    })
    .clone()
}

/// The report's charts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Chart {
    /// Each key figure against its target (green met, red missed).
    Kpis,
    /// Tickets created per day, stacked by category.
    Daily,
    /// Complaints by severity, this month and the month before.
    Complaints,
    /// The 1–5 distribution of each survey dimension.
    Surveys,
    /// Promise breaches by promise, stacked by category.
    Breaches,
}

impl Chart {
    pub const ALL: [Chart; 5] = [
        Chart::Kpis,
        Chart::Daily,
        Chart::Complaints,
        Chart::Surveys,
        Chart::Breaches,
    ];

    /// The chart's name in file names and `cid:`s.
    pub fn id(self) -> &'static str {
        match self {
            Chart::Kpis => "kpis",
            Chart::Daily => "daily",
            Chart::Complaints => "complaints",
            Chart::Surveys => "surveys",
            Chart::Breaches => "breaches",
        }
    }

    /// Width and height in pixels.
    pub fn size(self) -> (u32, u32) {
        match self {
            Chart::Kpis => (760, 320),
            Chart::Daily => (760, 320),
            Chart::Complaints => (370, 280),
            Chart::Surveys => (760, 280),
            Chart::Breaches => (370, 280),
        }
    }

    pub fn title(self, lang: Language) -> &'static str {
        let zh = lang.template_language() != Language::En;
        match (self, zh) {
            (Chart::Kpis, true) => "关键指标与目标",
            (Chart::Kpis, false) => "Key figures against targets",
            (Chart::Daily, true) => "每日新工单（按类别）",
            (Chart::Daily, false) => "New tickets per day, by category",
            (Chart::Complaints, true) => "投诉（按严重程度）",
            (Chart::Complaints, false) => "Complaints by severity",
            (Chart::Surveys, true) => "满意度调查评分分布（1–5）",
            (Chart::Surveys, false) => "Survey scores 1–5 by dimension",
            (Chart::Breaches, true) => "超时（按承诺与类别）",
            (Chart::Breaches, false) => "Breaches by promise and category",
        }
    }
}

const CATEGORY_COLOURS: [RGBColor; 4] = [
    RGBColor(0x4e, 0x79, 0xa7),
    RGBColor(0xf2, 0x8e, 0x2b),
    RGBColor(0xe1, 0x57, 0x59),
    RGBColor(0x59, 0xa1, 0x4f),
];
const SCORE_COLOURS: [RGBColor; 5] = [
    RGBColor(0xd7, 0x30, 0x27),
    RGBColor(0xfc, 0x8d, 0x59),
    RGBColor(0xfe, 0xe0, 0x8b),
    RGBColor(0x91, 0xcf, 0x60),
    RGBColor(0x1a, 0x98, 0x50),
];
const MET: RGBColor = RGBColor(0x2e, 0x8b, 0x57);
const MISSED: RGBColor = RGBColor(0xc0, 0x39, 0x2b);
const NA: RGBColor = RGBColor(0xbb, 0xbb, 0xbb);

/// `chart` as an SVG document.
pub fn svg(chart: Chart, r: &MonthlyReport, lang: Language) -> Result<String, ChartError> {
    load_font(None)?;
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, chart.size()).into_drawing_area();
        draw(&root, chart, r, lang)?;
        root.present().map_err(draw_error)?;
    }
    Ok(out)
}

/// `chart` as a PNG image.
pub fn png(chart: Chart, r: &MonthlyReport, lang: Language) -> Result<Vec<u8>, ChartError> {
    load_font(None)?;
    let (w, h) = chart.size();
    let mut pixels = vec![0u8; (w * h * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut pixels, (w, h)).into_drawing_area();
        draw(&root, chart, r, lang)?;
        root.present().map_err(draw_error)?;
    }
    let mut out = Vec::new();
    let mut enc = png::Encoder::new(&mut out, w, h);
    enc.set_color(png::ColorType::Rgb);
    enc.set_depth(png::BitDepth::Eight);
    enc.set_compression(png::Compression::Best);
    let mut writer = enc
        .write_header()
        .map_err(|e| ChartError::Draw(e.to_string()))?;
    writer
        .write_image_data(&pixels)
        .map_err(|e| ChartError::Draw(e.to_string()))?;
    writer
        .finish()
        .map_err(|e| ChartError::Draw(e.to_string()))?;
    Ok(out)
}

fn draw_error<E: std::fmt::Debug>(e: E) -> ChartError {
    ChartError::Draw(format!("{e:?}"))
}

fn draw<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    chart: Chart,
    r: &MonthlyReport,
    lang: Language,
) -> Result<(), ChartError> {
    root.fill(&WHITE).map_err(draw_error)?;
    let title = (FAMILY, 17).into_font().style(FontStyle::Bold);
    match chart {
        Chart::Kpis => kpis(root, r, lang, title),
        Chart::Daily => daily(root, r, lang, title),
        Chart::Complaints => complaints(root, r, lang, title),
        Chart::Surveys => surveys(root, r, lang, title),
        Chart::Breaches => breaches(root, r, lang, title),
    }
}

/// An axis label for counts: whole numbers only (ticks between them stay unlabelled).
fn count_label(v: &f64) -> String {
    if (v - v.round()).abs() < 1e-6 {
        format!("{:.0}", v)
    } else {
        String::new()
    }
}

/// How many ticks a count axis up to `max` gets: one per whole number up to 10.
fn count_ticks(max: f64) -> usize {
    (max.ceil() as usize + 1).clamp(2, 11)
}

/// The charts' coordinates: both axes continuous.
type Chart2d<'a, DB> = ChartContext<'a, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// The series' legend, in a box at `at`.
fn legend<'a, DB: DrawingBackend + 'a>(
    c: &mut Chart2d<'a, DB>,
    at: SeriesLabelPosition,
) -> Result<(), ChartError> {
    c.configure_series_labels()
        .position(at)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font((FAMILY, 12))
        .draw()
        .map_err(draw_error)
}

/// The label of the band a tick at `v` is the middle of (bands `[i, i + 1)`; `from_top`: band 0
/// is the top one), or nothing for ticks elsewhere.
fn band_label(labels: &[String], v: f64, from_top: bool) -> String {
    let i = v.floor() as usize;
    if (v - i as f64 - 0.5).abs() >= 0.01 {
        return String::new();
    }
    let k = if from_top {
        labels.len().checked_sub(i + 1)
    } else {
        Some(i)
    };
    k.and_then(|k| labels.get(k)).cloned().unwrap_or_default()
}

fn legend_box(c: RGBColor) -> impl Fn((i32, i32)) -> Rectangle<(i32, i32)> {
    move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], c.filled())
}

/// Horizontal bars: each KPI in %, its target as a black tick.
fn kpis<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    r: &MonthlyReport,
    lang: Language,
    title: FontDesc,
) -> Result<(), ChartError> {
    let k = &r.month.kpis;
    let n = k.len().max(1) as f64;
    let label = |code: &str| {
        code.strip_prefix("promise_")
            .map(|p| name(lang, p))
            .unwrap_or_else(|| name(lang, code))
    };
    let labels: Vec<String> = k.iter().map(|x| label(&x.code)).collect();
    let mut c = ChartBuilder::on(root)
        .caption(Chart::Kpis.title(lang), title)
        .margin(12)
        .margin_right(24)
        .x_label_area_size(28)
        .y_label_area_size(150)
        .build_cartesian_2d(0f64..100f64, 0f64..n)
        .map_err(draw_error)?;
    c.configure_mesh()
        .disable_y_mesh()
        .light_line_style(WHITE)
        .x_label_formatter(&|x| format!("{x:.0} %"))
        .y_labels(k.len().max(1) * 2 + 1)
        .y_label_formatter(&|y| band_label(&labels, *y, true))
        .label_style((FAMILY, 13))
        .draw()
        .map_err(draw_error)?;
    c.draw_series(k.iter().enumerate().map(|(i, x)| {
        let y = n - i as f64 - 1.0;
        let colour = match x.met {
            Some(true) => MET,
            Some(false) => MISSED,
            None => NA,
        };
        let v = x.rate.value.map(|v| v * 100.0).unwrap_or(100.0);
        Rectangle::new([(0.0, y + 0.2), (v, y + 0.8)], colour.filled())
    }))
    .map_err(draw_error)?;
    c.draw_series(k.iter().enumerate().map(|(i, x)| {
        let y = n - i as f64 - 1.0;
        PathElement::new(
            vec![(x.target * 100.0, y + 0.05), (x.target * 100.0, y + 0.95)],
            BLACK.stroke_width(2),
        )
    }))
    .map_err(draw_error)?;
    c.draw_series(k.iter().enumerate().map(|(i, x)| {
        let y = n - i as f64 - 1.0;
        let text = match x.rate.value {
            Some(v) => format!("{:.1} %", v * 100.0),
            None => "n/a".to_string(),
        };
        // On the bar when it is wide enough, else after it.
        let v = x.rate.value.map(|v| v * 100.0).unwrap_or(0.0);
        if v >= 15.0 {
            Text::new(
                text,
                (2.0, y + 0.62),
                (FAMILY, 13).into_font().color(&WHITE),
            )
        } else {
            Text::new(
                text,
                (v + 1.0, y + 0.62),
                (FAMILY, 13).into_font().color(&BLACK),
            )
        }
    }))
    .map_err(draw_error)?;
    Ok(())
}

/// Stacked bars per day.
fn daily<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    r: &MonthlyReport,
    lang: Language,
    title: FontDesc,
) -> Result<(), ChartError> {
    let days = &r.month.daily;
    let max = days
        .iter()
        .map(|d| d.created.iter().sum::<i64>())
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let mut c = ChartBuilder::on(root)
        .caption(Chart::Daily.title(lang), title)
        .margin(12)
        .x_label_area_size(28)
        .y_label_area_size(44)
        // Head room above the bars for the legend.
        .build_cartesian_2d(-0.5f64..days.len() as f64 - 0.5, 0f64..max * 1.7)
        .map_err(draw_error)?;
    c.configure_mesh()
        .disable_x_mesh()
        .light_line_style(WHITE)
        .x_labels(days.len())
        .x_label_formatter(&|x| {
            let d = x.round() as i64 + 1;
            if (x - x.round()).abs() < 1e-6 && (d == 1 || d % 5 == 0) {
                d.to_string()
            } else {
                String::new()
            }
        })
        .y_labels(count_ticks(max))
        .y_label_formatter(&count_label)
        .label_style((FAMILY, 12))
        .draw()
        .map_err(draw_error)?;
    for (k, category) in CATEGORIES.iter().enumerate() {
        let colour = CATEGORY_COLOURS[k];
        c.draw_series(days.iter().enumerate().map(|(d, day)| {
            let below: i64 = day.created[..k].iter().sum();
            let top = below + day.created[k];
            Rectangle::new(
                [
                    (d as f64 - 0.35, below as f64),
                    (d as f64 + 0.35, top as f64),
                ],
                colour.filled(),
            )
        }))
        .map_err(draw_error)?
        .label(name(lang, category))
        .legend(legend_box(colour));
    }
    legend(&mut c, SeriesLabelPosition::UpperRight)?;
    Ok(())
}

/// General and major complaints, this month beside the month before.
fn complaints<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    r: &MonthlyReport,
    lang: Language,
    title: FontDesc,
) -> Result<(), ChartError> {
    let now = &r.month.complaints_by_severity;
    let before = &r.previous.complaints_by_severity;
    let max = now
        .iter()
        .chain(before.iter())
        .map(|x| x.1)
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let labels = [name(lang, "general"), name(lang, "major")];
    let mut c = ChartBuilder::on(root)
        .caption(Chart::Complaints.title(lang), title)
        .margin(12)
        .x_label_area_size(28)
        .y_label_area_size(40)
        .build_cartesian_2d(0f64..2f64, 0f64..max * 1.2)
        .map_err(draw_error)?;
    c.configure_mesh()
        .disable_x_mesh()
        .light_line_style(WHITE)
        .y_labels(count_ticks(max))
        .x_labels(5)
        .x_label_formatter(&|x| band_label(&labels, *x, false))
        .y_label_formatter(&count_label)
        .label_style((FAMILY, 12))
        .draw()
        .map_err(draw_error)?;
    let grey = RGBColor(0xb0, 0xb0, 0xb0);
    let red = CATEGORY_COLOURS[2];
    c.draw_series(before.iter().enumerate().map(|(i, x)| {
        Rectangle::new(
            [(i as f64 + 0.12, 0.0), (i as f64 + 0.48, x.1 as f64)],
            grey.filled(),
        )
    }))
    .map_err(draw_error)?
    .label(r.previous.month.clone())
    .legend(legend_box(grey));
    c.draw_series(now.iter().enumerate().map(|(i, x)| {
        Rectangle::new(
            [(i as f64 + 0.52, 0.0), (i as f64 + 0.88, x.1 as f64)],
            red.filled(),
        )
    }))
    .map_err(draw_error)?
    .label(r.month.month.clone())
    .legend(legend_box(red));
    legend(&mut c, SeriesLabelPosition::UpperLeft)?;
    Ok(())
}

/// One 100 % bar per dimension, split by score.
fn surveys<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    r: &MonthlyReport,
    lang: Language,
    title: FontDesc,
) -> Result<(), ChartError> {
    let dist = &r.month.surveys.distribution;
    let labels: Vec<String> = DIMENSIONS.iter().map(|d| name(lang, d)).collect();
    let mut c = ChartBuilder::on(root)
        .caption(Chart::Surveys.title(lang), title)
        .margin(12)
        .margin_top(26)
        .margin_right(24)
        .x_label_area_size(28)
        .y_label_area_size(110)
        .build_cartesian_2d(0f64..100f64, 0f64..4f64)
        .map_err(draw_error)?;
    c.configure_mesh()
        .disable_y_mesh()
        .light_line_style(WHITE)
        .x_label_formatter(&|x| format!("{x:.0} %"))
        .y_labels(9)
        .y_label_formatter(&|y| band_label(&labels, *y, true))
        .label_style((FAMILY, 13))
        .draw()
        .map_err(draw_error)?;
    for score in 0..5 {
        let colour = SCORE_COLOURS[score];
        c.draw_series(dist.iter().enumerate().map(|(k, d)| {
            let n: i64 = d.iter().sum();
            let pct = |x: i64| {
                if n == 0 {
                    0.0
                } else {
                    x as f64 * 100.0 / n as f64
                }
            };
            let y = 3.0 - k as f64;
            let left = pct(d[..score].iter().sum());
            let right = left + pct(d[score]);
            Rectangle::new([(left, y + 0.2), (right, y + 0.8)], colour.filled())
        }))
        .map_err(draw_error)?;
    }
    // The legend in one row under the title (a box legend would cover the bars).
    let (w, _) = Chart::Surveys.size();
    for (score, colour) in SCORE_COLOURS.iter().enumerate() {
        let x = w as i32 - 230 + score as i32 * 44;
        root.draw(&Rectangle::new([(x, 30), (x + 12, 42)], colour.filled()))
            .map_err(draw_error)?;
        root.draw(&Text::new(
            format!("{}", score + 1),
            (x + 16, 30),
            (FAMILY, 12).into_font(),
        ))
        .map_err(draw_error)?;
    }
    Ok(())
}

/// Breaches per promise, stacked by category.
fn breaches<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    r: &MonthlyReport,
    lang: Language,
    title: FontDesc,
) -> Result<(), ChartError> {
    let count = |p: &str, c: &str| {
        r.month
            .breaches
            .iter()
            .filter(|b| b.promise == p && b.category == c)
            .map(|b| b.count)
            .sum::<i64>()
    };
    let max = PROMISES
        .iter()
        .map(|p| CATEGORIES.iter().map(|c| count(p, c)).sum::<i64>())
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let labels: Vec<String> = PROMISES.iter().map(|p| name(lang, p)).collect();
    let mut c = ChartBuilder::on(root)
        .caption(Chart::Breaches.title(lang), title)
        .margin(12)
        .x_label_area_size(28)
        .y_label_area_size(90)
        .build_cartesian_2d(0f64..max * 1.15, 0f64..PROMISES.len() as f64)
        .map_err(draw_error)?;
    c.configure_mesh()
        .disable_y_mesh()
        .light_line_style(WHITE)
        .x_labels(count_ticks(max))
        .x_label_formatter(&count_label)
        .y_labels(PROMISES.len() * 2 + 1)
        .y_label_formatter(&|y| band_label(&labels, *y, true))
        .label_style((FAMILY, 12))
        .draw()
        .map_err(draw_error)?;
    for (k, category) in CATEGORIES.iter().enumerate() {
        let colour = CATEGORY_COLOURS[k];
        c.draw_series(PROMISES.iter().enumerate().map(|(i, p)| {
            let y = PROMISES.len() as f64 - i as f64 - 1.0;
            let left: i64 = CATEGORIES[..k].iter().map(|c| count(p, c)).sum();
            let right = left + count(p, category);
            Rectangle::new(
                [(left as f64, y + 0.2), (right as f64, y + 0.8)],
                colour.filled(),
            )
        }))
        .map_err(draw_error)?
        .label(name(lang, category))
        .legend(legend_box(colour));
    }
    legend(&mut c, SeriesLabelPosition::LowerRight)?;
    Ok(())
}
