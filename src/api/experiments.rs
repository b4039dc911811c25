//! Experiments: the assignment hash and the statistics of `reco.experiment_report`
//! (reco_engine::experiment); the tables and the report's SQL are in sql/experiments.sql.
use crate::error::{raise, OrRaise};
use pgrx::datum::{DatumWithOid, TimestampWithTimeZone};
use pgrx::prelude::*;
use reco_engine::experiment as ex;
use reco_engine::experiment::html;
use reco_engine::Error;

/// The arm index (0-based) of `unit` in an experiment salted `salt` with `weights`; NULL when
/// no weight is positive.
#[pg_extern(immutable, strict, parallel_safe, name = "_assign")]
fn assign(salt: &str, unit: &str, weights: Vec<Option<f64>>) -> Option<i32> {
    let w: Vec<f64> = weights.into_iter().map(|w| w.unwrap_or(0.0)).collect();
    ex::assign(salt, unit, &w).map(|i| i as i32)
}

/// One metric's statistics, one row per arm (the first arm is control): the rate with its
/// Wilson interval, the difference to control with its interval and relative size, the
/// two-proportion z-test p-value and its Holm adjustment over the arms, the minimum detectable
/// effect at the current sizes (power 0.8), whether the planned units are not reached, and the
/// sample-ratio-mismatch p-value of the units against the weights. `moments` holds, per arm, six
/// sums over its units (`ex::UnitMoments`: units, lists, lists with a success, and the sums of
/// their squares and product): the intervals, tests and MDE then use the variance over units
/// (`ex::design_effect`) instead of taking every list as independent; NULL (or a NULL arm) takes
/// them as independent.
#[allow(clippy::type_complexity, clippy::too_many_arguments)]
#[pg_extern(immutable, parallel_safe, name = "_experiment_stats")]
fn experiment_stats(
    arms: Vec<Option<String>>,
    weights: Vec<Option<f64>>,
    units: Vec<Option<i64>>,
    trials: Vec<Option<i64>>,
    successes: Vec<Option<i64>>,
    planned_units: Option<i64>,
    alpha: f64,
    moments: default!(Option<Vec<Option<f64>>>, "NULL"),
) -> TableIterator<
    'static,
    (
        name!(arm, String),
        name!(rate, Option<f64>),
        name!(rate_low, Option<f64>),
        name!(rate_high, Option<f64>),
        name!(diff, Option<f64>),
        name!(diff_low, Option<f64>),
        name!(diff_high, Option<f64>),
        name!(relative, Option<f64>),
        name!(p_value, Option<f64>),
        name!(p_adjusted, Option<f64>),
        name!(p_sequential, Option<f64>),
        name!(mde, Option<f64>),
        name!(underpowered, bool),
        name!(srm_p, Option<f64>),
    ),
> {
    let k = arms.len();
    if [weights.len(), units.len(), trials.len(), successes.len()].iter().any(|&l| l != k) || k == 0 {
        raise(Error::invalid("the arrays of _experiment_stats differ in length").hint("one element per arm in each"));
    }
    if !(alpha > 0.0 && alpha < 1.0) {
        raise(Error::invalid(format!("alpha is {alpha}, not between 0 and 1")).hint("0.05 for 95% intervals"));
    }
    let n = |v: &[Option<i64>], i: usize| v[i].unwrap_or(0).max(0) as u64;
    let moments = moments.unwrap_or_default();
    if !moments.is_empty() && moments.len() != 6 * k {
        raise(
            Error::invalid(format!("moments holds {} values, not 6 per arm ({})", moments.len(), 6 * k)).hint("units, lists, successes, Σt², Σs², Σst per arm"),
        );
    }
    // per arm, the design effect, and the effective (successes, trials) for the MDE and the
    // always-valid p-value
    let design: Vec<f64> = (0..k)
        .map(|i| {
            let m = moments.get(6 * i..6 * i + 6).and_then(|v| {
                let v: Vec<f64> = v.iter().map(|x| x.filter(|x| x.is_finite())).collect::<Option<_>>()?;
                Some(ex::UnitMoments { n: v[0], t: v[1], s: v[2], tt: v[3], ss: v[4], st: v[5] })
            });
            m.as_ref().map_or(1.0, ex::design_effect)
        })
        .collect();
    let effective: Vec<(u64, u64)> = (0..k).map(|i| ex::effective(n(&successes, i), n(&trials, i), design[i])).collect();
    let xs = |i: usize| effective[i].0;
    let ns = |i: usize| effective[i].1;
    let srm = ex::sample_ratio_mismatch(&(0..k).map(|i| n(&units, i)).collect::<Vec<_>>(), &weights.iter().map(|w| w.unwrap_or(0.0)).collect::<Vec<_>>())
        .map(|(_, p)| p);
    let cmp: Vec<Option<ex::Comparison>> =
        (0..k)
            .map(|i| {
                if i == 0 {
                    None
                } else {
                    ex::compare_clustered(n(&successes, i), n(&trials, i), n(&successes, 0), n(&trials, 0), alpha, [design[i], design[0]])
                }
            })
            .collect();
    let raw: Vec<f64> = cmp.iter().flatten().map(|c| c.p_value).collect();
    let mut adjusted = ex::holm(&raw).into_iter();
    // the always-valid p-values, Holm-adjusted over the arms as the z-test's are
    let sequential: Vec<f64> = (1..k).filter_map(|i| ex::always_valid_p(xs(i), ns(i), xs(0), ns(0))).collect();
    let mut sequential = ex::holm(&sequential).into_iter();
    let p0 = (n(&trials, 0) > 0).then(|| n(&successes, 0) as f64 / n(&trials, 0) as f64);
    let planned = planned_units.unwrap_or(0).max(0) as u64;
    let total_w: f64 = weights.iter().map(|w| w.unwrap_or(0.0).max(0.0)).sum::<f64>().max(1e-300);
    let rows: Vec<_> = (0..k)
        .map(|i| {
            let (x, t) = (n(&successes, i), n(&trials, i));
            let wil = ex::wilson_clustered(x, t, alpha, design[i]);
            let c = cmp[i];
            let mde = if i == 0 { None } else { p0.and_then(|p| ex::min_detectable_effect(p, ns(i), ns(0), alpha, 0.8)) };
            (
                arms[i].clone().unwrap_or_default(),
                (t > 0).then(|| x.min(t) as f64 / t as f64),
                wil.map(|w| w.0),
                wil.map(|w| w.1),
                c.map(|c| c.diff),
                c.map(|c| c.diff_low),
                c.map(|c| c.diff_high),
                c.and_then(|c| c.relative),
                c.map(|c| c.p_value),
                c.map(|_| adjusted.next().unwrap_or(1.0)),
                c.map(|_| sequential.next().unwrap_or(1.0)),
                mde,
                planned > 0 && (n(&units, i) as f64) < planned as f64 * weights[i].unwrap_or(0.0).max(0.0) / total_w,
                srm,
            )
        })
        .collect();
    TableIterator::new(rows)
}

/// The arm a served call falls in: the experiment running on its surface at `now`, if any.
pub struct Arm {
    pub experiment: String,
    pub arm: String,
    /// the placement row whose weights this arm serves with
    pub placement: Option<String>,
    /// the model this arm serves
    pub model_id: Option<i64>,
}

thread_local! {
    static ENABLED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Whether this database's pg_reco has experiments (a newer library than the installed SQL
/// serves as before until ALTER EXTENSION pg_reco UPDATE).
pub(crate) fn enabled() -> bool {
    super::has_table(c"experiments", &ENABLED)
}

/// The arm of `unit` (a customer or session id) on `surface` at `now`: one indexed read of
/// reco.experiments; the assignment is computed.
pub fn arm_for(c: &pgrx::spi::SpiClient<'_>, surface: &str, unit: Option<&str>, now: TimestampWithTimeZone) -> Option<Arm> {
    let unit = unit?;
    if !enabled() {
        return None;
    }
    let rows = crate::plans::select(
        c,
        "SELECT name::pg_catalog.text, salt, arms::pg_catalog.text FROM reco.experiments
          WHERE surface = $1 AND starts_at <= $2 AND (stops_at IS NULL OR stops_at > $2) ORDER BY starts_at DESC LIMIT 1",
        &[DatumWithOid::from(surface), DatumWithOid::from(now)],
    )
    .or_raise();
    let row = rows.into_iter().next()?;
    let name: String = row.get(1).or_raise()?;
    let salt: String = row.get(2).or_raise()?;
    let arms: Vec<serde_json::Value> = serde_json::from_str(&row.get::<String>(3).or_raise()?).unwrap_or_default();
    let weights: Vec<f64> = arms.iter().map(|a| a.get("weight").and_then(serde_json::Value::as_f64).unwrap_or(0.0)).collect();
    let a = &arms[ex::assign(&salt, unit, &weights)?];
    Some(Arm {
        experiment: name,
        arm: a.get("name").and_then(serde_json::Value::as_str).unwrap_or_default().to_string(),
        placement: a.get("placement").and_then(serde_json::Value::as_str).map(str::to_string),
        model_id: a.get("model_id").and_then(serde_json::Value::as_i64),
    })
}

/// `reco.experiment_report(experiment, format => 'html', alpha)`: the report as one
/// self-contained HTML page with SVG charts of the intervals (reco_engine::experiment::html).
/// Reads the rows of `reco.experiment_report(experiment, alpha)`, so both say the same.
#[pg_extern(stable, parallel_safe, name = "experiment_report")]
fn experiment_report_page(experiment: &str, format: &str, alpha: default!(f64, 0.05)) -> String {
    if !format.eq_ignore_ascii_case("html") {
        raise(
            Error::invalid(format!("format is '{format}', not 'html'"))
                .hint("format => 'html' returns a page; without format the report is rows: SELECT * FROM reco.experiment_report(name)"),
        );
    }
    Spi::connect(|c| {
        let e = crate::plans::select(
            c,
            "SELECT e.name::pg_catalog.text, e.surface::pg_catalog.text, pg_catalog.to_char(e.starts_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI \"UTC\"'),
                    pg_catalog.to_char(e.stops_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI \"UTC\"'), e.planned_units,
                    pg_catalog.to_char(pg_catalog.statement_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS \"UTC\"')
               FROM reco._experiment($1) e",
            &[DatumWithOid::from(experiment)],
        )
        .or_raise()
        .first();
        let header = html::Header {
            name: e.get(1).or_raise().unwrap_or_default(),
            surface: e.get(2).or_raise().unwrap_or_default(),
            starts_at: e.get(3).or_raise().unwrap_or_default(),
            stops_at: e.get(4).or_raise(),
            planned_units: e.get(5).or_raise(),
            generated_at: e.get(6).or_raise().unwrap_or_default(),
            alpha,
        };
        let rows = crate::plans::select(c, "SELECT * FROM reco.experiment_report($1, $2)", &[DatumWithOid::from(experiment), DatumWithOid::from(alpha)])
            .or_raise()
            .map(|r| html::Row {
                metric: r.get(1).or_raise().unwrap_or_default(),
                arm: r.get(2).or_raise().unwrap_or_default(),
                units: r.get(3).or_raise().unwrap_or(0),
                trials: r.get(4).or_raise().unwrap_or(0),
                successes: r.get(5).or_raise().unwrap_or(0),
                rate: r.get(6).or_raise(),
                rate_low: r.get(7).or_raise(),
                rate_high: r.get(8).or_raise(),
                diff: r.get(9).or_raise(),
                diff_low: r.get(10).or_raise(),
                diff_high: r.get(11).or_raise(),
                relative: r.get(12).or_raise(),
                p_value: r.get(13).or_raise(),
                p_adjusted: r.get(14).or_raise(),
                p_sequential: r.get(15).or_raise(),
                mde: r.get(16).or_raise(),
                underpowered: r.get(17).or_raise().unwrap_or(false),
                srm_p: r.get(18).or_raise(),
                verdict: r.get(19).or_raise().unwrap_or_default(),
            })
            .collect::<Vec<_>>();
        html::render(&header, &rows)
    })
}
