//! `reco.experiment_report(..., format => 'html')`: the report as one self-contained page (inline
//! CSS and SVG; no script, no font, no image, nothing fetched), so it can be mailed, archived or
//! opened offline. Per metric: an SVG of each arm's rate with its interval beside control's
//! rate, an SVG of each arm's difference to control with its interval beside zero, and the table
//! of every figure. The report's verdicts are shown as they are; a sample ratio mismatch is a
//! banner above everything.

use std::fmt::Write;

/// One row of `reco.experiment_report`.
#[derive(Debug, Clone, Default)]
pub struct Row {
    pub metric: String,
    pub arm: String,
    pub units: i64,
    pub trials: i64,
    pub successes: i64,
    pub rate: Option<f64>,
    pub rate_low: Option<f64>,
    pub rate_high: Option<f64>,
    pub diff: Option<f64>,
    pub diff_low: Option<f64>,
    pub diff_high: Option<f64>,
    pub relative: Option<f64>,
    pub p_value: Option<f64>,
    pub p_adjusted: Option<f64>,
    /// the always-valid p-value (mSPRT), Holm-adjusted
    pub p_sequential: Option<f64>,
    pub mde: Option<f64>,
    pub underpowered: bool,
    pub srm_p: Option<f64>,
    pub verdict: String,
}

/// What the page says about the experiment itself.
#[derive(Debug, Clone, Default)]
pub struct Header {
    pub name: String,
    pub surface: String,
    pub alpha: f64,
    /// when the figures were read (ISO 8601), shown as given
    pub generated_at: String,
    pub starts_at: String,
    pub stops_at: Option<String>,
    pub planned_units: Option<i64>,
}

/// Text made safe for HTML element content and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(ch),
        }
    }
    out
}

fn pct(v: Option<f64>, digits: usize) -> String {
    v.filter(|v| v.is_finite()).map_or_else(|| "–".to_string(), |v| format!("{:.*}%", digits, v * 100.0))
}

/// A difference of rates, in percentage points with its sign.
fn points(v: Option<f64>) -> String {
    v.filter(|v| v.is_finite()).map_or_else(|| "–".to_string(), |v| format!("{:+.2} pp", v * 100.0))
}

fn num(v: Option<f64>) -> String {
    match v.filter(|v| v.is_finite()) {
        None => "–".to_string(),
        Some(v) if v != 0.0 && v.abs() < 0.0001 => format!("{v:.1e}"),
        Some(v) => format!("{v:.4}"),
    }
}

/// Colour classes of a verdict (the stylesheet gives them colours; the class name is the test's
/// handle too).
fn verdict_class(v: &str) -> &'static str {
    match v {
        "better" => "better",
        "worse" => "worse",
        "control" => "control",
        v if v.starts_with("sample ratio mismatch") => "srm",
        _ => "neutral",
    }
}

/// A "nice" axis step for a span: 1, 2 or 5 times a power of ten, about 5 ticks.
fn tick_step(span: f64) -> f64 {
    if !(span.is_finite() && span > 0.0) {
        return 0.01;
    }
    let raw = span / 5.0;
    let mag = 10f64.powf(raw.log10().floor());
    let f = raw / mag;
    mag * if f <= 1.0 {
        1.0
    } else if f <= 2.0 {
        2.0
    } else if f <= 5.0 {
        5.0
    } else {
        10.0
    }
}

const W: f64 = 640.0;
const LEFT: f64 = 140.0;
const RIGHT: f64 = 24.0;
const ROW: f64 = 28.0;
const TOP: f64 = 10.0;
const AXIS: f64 = 30.0;

/// One interval chart: a row per (label, low, point, high, class), a vertical reference line at
/// `reference`, a percentage axis.
fn interval_chart(out: &mut String, kind: &str, title: &str, rows: &[(String, f64, f64, f64, &str)], reference: Option<f64>) {
    let mut lo = rows.iter().map(|r| r.1).fold(f64::INFINITY, f64::min);
    let mut hi = rows.iter().map(|r| r.3).fold(f64::NEG_INFINITY, f64::max);
    if let Some(r) = reference {
        lo = lo.min(r);
        hi = hi.max(r);
    }
    if !(lo.is_finite() && hi.is_finite()) {
        return;
    }
    if hi - lo < 1e-9 {
        lo -= 0.005;
        hi += 0.005;
    }
    let step = tick_step(hi - lo);
    let (lo, hi) = ((lo / step).floor() * step, (hi / step).ceil() * step);
    let x = |v: f64| LEFT + (v - lo) / (hi - lo) * (W - LEFT - RIGHT);
    let h = TOP + ROW * rows.len() as f64 + AXIS;
    let _ = write!(
        out,
        r#"<svg class="chart {kind}" role="img" aria-label="{t}" width="{W}" height="{h}" viewBox="0 0 {W} {h}" xmlns="http://www.w3.org/2000/svg"><title>{t}</title>"#,
        t = escape(title)
    );
    // axis and ticks
    let axis_y = TOP + ROW * rows.len() as f64 + 4.0;
    let _ = write!(out, r##"<line x1="{LEFT}" y1="{axis_y}" x2="{}" y2="{axis_y}" stroke="#555"/>"##, W - RIGHT);
    let n_ticks = ((hi - lo) / step).round() as i64;
    for i in 0..=n_ticks {
        let v = lo + i as f64 * step;
        let xv = x(v);
        let digits = if step >= 0.01 {
            0
        } else if step >= 0.001 {
            1
        } else {
            2
        };
        let _ = write!(
            out,
            r##"<line x1="{xv:.1}" y1="{axis_y}" x2="{xv:.1}" y2="{:.1}" stroke="#555"/><text x="{xv:.1}" y="{:.1}" class="tick" text-anchor="middle">{}</text>"##,
            axis_y + 4.0,
            axis_y + 18.0,
            pct(Some(v), digits)
        );
    }
    if let Some(r) = reference {
        let xr = x(r);
        let _ = write!(out, r##"<line class="reference" x1="{xr:.1}" y1="{TOP}" x2="{xr:.1}" y2="{axis_y}" stroke="#888" stroke-dasharray="4 3"/>"##);
    }
    for (i, (label, l, p, u, class)) in rows.iter().enumerate() {
        let y = TOP + ROW * i as f64 + ROW / 2.0;
        let _ = write!(
            out,
            r#"<g class="interval {class}" data-arm="{a}" data-low="{l}" data-point="{p}" data-high="{u}"><text x="{tx}" y="{ty:.1}" text-anchor="end" class="label">{a}</text><line x1="{x1:.1}" y1="{y:.1}" x2="{x2:.1}" y2="{y:.1}" stroke-width="6" stroke-linecap="round"/><circle cx="{cx:.1}" cy="{y:.1}" r="6"/></g>"#,
            a = escape(label),
            tx = LEFT - 8.0,
            ty = y + 4.0,
            x1 = x(*l),
            x2 = x(*u).max(x(*l) + 1.0),
            cx = x(*p),
        );
    }
    out.push_str("</svg>");
}

/// The page.
pub fn render(h: &Header, rows: &[Row]) -> String {
    let mut out = String::with_capacity(16_384);
    let name = escape(&h.name);
    let level = (1.0 - h.alpha) * 100.0;
    let _ = write!(
        out,
        r#"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Experiment {name}</title>
<style>
body {{ font: 14px/1.4 "DejaVu Sans", Arial, sans-serif; color: #222; margin: 24px; max-width: 1100px; }}
h1 {{ font-size: 22px; margin: 0 0 4px; }} h2 {{ font-size: 17px; margin: 28px 0 6px; }}
.meta {{ color: #555; }}
.banner {{ background: #fde2e1; border: 2px solid #c0392b; color: #7b1e16; padding: 10px 14px; margin: 16px 0; font-weight: bold; }}
table {{ border-collapse: collapse; margin-top: 8px; }} th, td {{ border-bottom: 1px solid #ddd; padding: 4px 8px; text-align: right; white-space: nowrap; }}
th:first-child, td:first-child {{ text-align: left; }} th {{ background: #f3f3f3; }}
.verdict.better {{ color: #1e7b34; font-weight: bold; }} .verdict.worse {{ color: #b03a2e; font-weight: bold; }}
.verdict {{ white-space: normal; text-align: left; }} .verdict.srm {{ color: #b03a2e; }} .verdict.control, .verdict.neutral {{ color: #555; }}
svg .tick {{ font-size: 11px; fill: #555; }} svg .label {{ font-size: 12px; fill: #222; }}
.interval line {{ stroke: #2e6fb7; }} .interval circle {{ fill: #2e6fb7; }}
.interval.control line {{ stroke: #7f8c8d; }} .interval.control circle {{ fill: #7f8c8d; }}
.interval.better line {{ stroke: #1e7b34; }} .interval.better circle {{ fill: #1e7b34; }}
.interval.worse line {{ stroke: #b03a2e; }} .interval.worse circle {{ fill: #b03a2e; }}
.charts {{ display: flex; flex-wrap: wrap; gap: 12px; }} .charts figure {{ margin: 0; }} figcaption {{ color: #555; font-size: 12px; }}
</style></head><body>
<h1>Experiment <span class="name">{name}</span></h1>
<p class="meta">Surface <b>{surface}</b> · from {starts}{stops} · planned units {planned} · intervals at {level:.0}% (α = {alpha}) · read {generated}</p>
"#,
        surface = escape(&h.surface),
        starts = escape(&h.starts_at),
        stops = h.stops_at.as_deref().map(|s| format!(" to {}", escape(s))).unwrap_or_default(),
        planned = h.planned_units.map_or_else(|| "not set".to_string(), |p| p.to_string()),
        alpha = h.alpha,
        generated = escape(&h.generated_at),
    );
    if rows.iter().any(|r| r.srm_p.is_some_and(|p| p < 0.001)) {
        let p = rows.iter().filter_map(|r| r.srm_p).fold(1.0, f64::min);
        let _ = write!(
            out,
            r#"<div class="banner srm">Sample ratio mismatch (χ² p = {}): the arms did not receive the traffic their weights ask for. No verdict is given until the cause is found (assignment, logging, bots).</div>"#,
            num(Some(p))
        );
    }
    if rows.is_empty() {
        out.push_str(r#"<p class="empty">Nothing logged for this experiment yet.</p>"#);
    }
    let mut metrics: Vec<&str> = Vec::new();
    for r in rows {
        if !metrics.contains(&r.metric.as_str()) {
            metrics.push(&r.metric);
        }
    }
    for m in metrics {
        let mrows: Vec<&Row> = rows.iter().filter(|r| r.metric == m).collect();
        let _ = write!(out, r#"<section class="metric" data-metric="{me}"><h2>{me}</h2><div class="charts">"#, me = escape(m));
        let control = mrows.first().and_then(|r| r.rate);
        let rate_rows: Vec<(String, f64, f64, f64, &str)> = mrows
            .iter()
            .enumerate()
            .filter_map(|(i, r)| {
                let class = if i == 0 { "control" } else { verdict_class(&r.verdict) };
                Some((r.arm.clone(), r.rate_low?, r.rate?, r.rate_high?, class))
            })
            .collect();
        if !rate_rows.is_empty() {
            out.push_str("<figure>");
            interval_chart(&mut out, "rates", &format!("{m}: rate per arm, {level:.0}% Wilson intervals"), &rate_rows, control);
            let _ = write!(out, "<figcaption>Rate per arm with its {level:.0}% Wilson interval; dashed: control.</figcaption></figure>");
        }
        let diff_rows: Vec<(String, f64, f64, f64, &str)> =
            mrows.iter().skip(1).filter_map(|r| Some((r.arm.clone(), r.diff_low?, r.diff?, r.diff_high?, verdict_class(&r.verdict)))).collect();
        if !diff_rows.is_empty() {
            out.push_str("<figure>");
            interval_chart(&mut out, "differences", &format!("{m}: difference to control, {level:.0}% intervals"), &diff_rows, Some(0.0));
            out.push_str("<figcaption>Difference to control (percentage points); dashed: no difference.</figcaption></figure>");
        }
        out.push_str(
            "</div><table><thead><tr><th>arm</th><th>units</th><th>trials</th><th>successes</th><th>rate</th><th>interval</th>\
             <th>difference</th><th>interval</th><th>relative</th><th>p</th><th>p (Holm)</th><th>p (any time)</th><th>MDE</th><th>SRM p</th><th>verdict</th></tr></thead><tbody>",
        );
        for r in &mrows {
            let interval = |l: Option<f64>, u: Option<f64>, f: fn(Option<f64>) -> String| match (l, u) {
                (Some(l), Some(u)) => format!("{} to {}", f(Some(l)), f(Some(u))),
                _ => "–".to_string(),
            };
            let verdict = if r.underpowered && r.verdict != "underpowered" && r.verdict != "control" {
                format!("{} (underpowered)", r.verdict)
            } else {
                r.verdict.clone()
            };
            let _ = write!(
                out,
                r#"<tr data-arm="{a}"><td>{a}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class="verdict {vc}">{v}</td></tr>"#,
                r.units,
                r.trials,
                r.successes,
                pct(r.rate, 2),
                interval(r.rate_low, r.rate_high, |v| pct(v, 2)),
                points(r.diff),
                interval(r.diff_low, r.diff_high, points),
                pct(r.relative, 1),
                num(r.p_value),
                num(r.p_adjusted),
                num(r.p_sequential),
                pct(r.mde, 2),
                num(r.srm_p),
                a = escape(&r.arm),
                vc = verdict_class(&r.verdict),
                v = escape(&verdict),
            );
        }
        out.push_str("</tbody></table></section>\n");
    }
    out.push_str(
        r#"<p class="meta">Rates are per logged list (or message); successes are events carrying its rec_id. Differences use a two-proportion z-test; with more than two arms the p-values are Holm-adjusted. p (any time): the always-valid p-value of a mixture sequential test, valid however often the report is read (the z-test's p is valid at one planned look). MDE: the smallest difference detectable with 80% power at the current sizes.</p>
</body></html>
"#,
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(metric: &str, arm: &str, rate: f64, verdict: &str) -> Row {
        Row {
            metric: metric.into(),
            arm: arm.into(),
            units: 100,
            trials: 1000,
            successes: (rate * 1000.0) as i64,
            rate: Some(rate),
            rate_low: Some(rate - 0.02),
            rate_high: Some(rate + 0.02),
            diff: (arm != "control").then_some(rate - 0.10),
            diff_low: (arm != "control").then_some(rate - 0.13),
            diff_high: (arm != "control").then_some(rate - 0.07),
            relative: None,
            p_value: (arm != "control").then_some(0.003),
            p_adjusted: (arm != "control").then_some(0.003),
            p_sequential: (arm != "control").then_some(0.04),
            mde: Some(0.02),
            underpowered: false,
            srm_p: Some(0.4),
            verdict: verdict.into(),
        }
    }

    #[test]
    fn the_page_is_self_contained_escaped_and_has_a_chart_per_metric() {
        let h = Header { name: "<b>x</b>".into(), surface: "checkout".into(), alpha: 0.05, generated_at: "now".into(), ..Header::default() };
        let rows = vec![row("click", "control", 0.10, "control"), row("click", "b&c", 0.13, "better"), row("purchase", "control", 0.01, "control")];
        let page = render(&h, &rows);
        assert!(page.starts_with("<!DOCTYPE html>"));
        assert!(page.contains("&lt;b&gt;x&lt;/b&gt;") && !page.contains("<b>x</b>"));
        assert!(page.contains(r#"data-arm="b&amp;c""#));
        // click: rates and differences; purchase: rates only (one arm)
        assert_eq!(page.matches("<svg").count(), 3);
        assert_eq!(page.matches(r#"class="interval better""#).count(), 2);
        // nothing to fetch, nothing to run
        assert!(!page.contains("<script") && !page.contains("src=") && !page.contains("href=") && !page.contains("url("));
        assert!(!page.contains(r#"class="banner"#));
        // a mismatch puts the banner up
        let mut srm = rows.clone();
        srm[1].srm_p = Some(1e-9);
        srm[1].verdict = "sample ratio mismatch: no verdict".into();
        assert!(render(&h, &srm).contains(r#"class="banner srm""#));
        assert!(render(&h, &[]).contains("Nothing logged"));
    }

    #[test]
    fn axis_steps_are_round() {
        assert_eq!(tick_step(0.05), 0.01);
        assert!((tick_step(0.3) - 0.1).abs() < 1e-12);
        assert!((tick_step(0.008) - 0.002).abs() < 1e-12);
        assert_eq!(tick_step(f64::NAN), 0.01);
    }
}
