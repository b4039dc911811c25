//! Demand: the per-item forecast training stores with each model (`reco.item_demand`) and
//! `reco.demand_backtest`. The method is `reco_engine::demand`; the table, the live view of
//! days of cover and the grants are in sql/demand.sql.
use crate::error::{raise, OrRaise};
use pgrx::datum::{DatumWithOid, TimestampWithTimeZone};
use pgrx::prelude::*;
use reco_engine::demand::{self, DemandParams, DEFAULT_PARAMS};
use reco_engine::Error;
use std::collections::HashMap;

/// Units sold per item and UTC day (day number since 1970-01-01), cancelled orders left out.
const DAILY_SQL: &str = "SELECT ol.item_id, pg_catalog.floor(EXTRACT(epoch FROM o.placed_at) / 86400)::int8, pg_catalog.sum(ol.qty)::float8
  FROM reco.orders o JOIN reco.order_lines ol ON ol.order_id = o.order_id
 WHERE o.placed_at >= pg_catalog.to_timestamp($1 * 86400.0) AND o.placed_at < pg_catalog.to_timestamp($2 * 86400.0)
   AND o.status <> 'cancelled'
 GROUP BY 1, 2";

/// The item ids that sold in days `[from, to)` and, per item, its units sold on each day.
fn daily_sales(from: i64, to: i64) -> (Vec<String>, Vec<Vec<f64>>) {
    let len = usize::try_from(to - from).unwrap_or(0);
    let mut ids: Vec<String> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    let mut sales: Vec<Vec<f64>> = Vec::new();
    Spi::connect(|c| {
        crate::api::scan(c, DAILY_SQL, &[DatumWithOid::from(from as f64), DatumWithOid::from(to as f64)], 50_000, |r| {
            let Some(id) = r.get::<String>(1).or_raise() else { return };
            let day = r.get::<i64>(2).or_raise().unwrap_or(from);
            let units = r.get::<f64>(3).or_raise().unwrap_or(0.0);
            let i = match index.get(&id) {
                Some(&i) => i,
                None => {
                    index.insert(id.clone(), ids.len());
                    ids.push(id);
                    sales.push(vec![0.0; len]);
                    ids.len() - 1
                }
            };
            if let Some(x) = usize::try_from(day - from).ok().and_then(|t| sales[i].get_mut(t)) {
                *x += units;
            }
        });
    });
    (ids, sales)
}

/// The day number (since 1970-01-01, UTC) of `at`, else of the transaction's start.
fn day_of(at: Option<TimestampWithTimeZone>) -> i64 {
    Spi::get_one_with_args::<i64>("SELECT pg_catalog.floor(EXTRACT(epoch FROM coalesce($1, pg_catalog.now())) / 86400)::int8", &[DatumWithOid::from(at)])
        .or_raise()
        .unwrap_or(0)
}

/// Forecasts every item that sold in the [`DEFAULT_PARAMS`] history before today (UTC) and
/// stores the forecasts with model `model_id`; returns how many items have one.
pub(crate) fn store(model_id: i64) -> usize {
    let p = DEFAULT_PARAMS;
    let today = day_of(None);
    let from = today - p.history_days as i64;
    let (ids, sales) = daily_sales(from, today);
    check_for_interrupts!();
    let forecasts = demand::forecast_all(&sales, demand::weekday(from), &p);
    let keep: Vec<usize> = (0..ids.len()).filter(|&i| forecasts[i].iter().any(|&x| x > 0.0)).collect();
    for chunk in keep.chunks(10_000) {
        check_for_interrupts!();
        let item: Vec<&str> = chunk.iter().map(|&i| ids[i].as_str()).collect();
        let per_day: Vec<f32> = chunk.iter().map(|&i| (forecasts[i].iter().sum::<f64>() / 7.0) as f32).collect();
        let by_weekday: Vec<f32> = chunk.iter().flat_map(|&i| forecasts[i].map(|x| x as f32)).collect();
        Spi::connect_mut(|c| {
            crate::plans::update(
                c,
                "INSERT INTO reco.item_demand (model_id, item_id, per_day, by_weekday)
                 SELECT $1, i, d, $4[(n - 1) * 7 + 1 : n * 7] FROM unnest($2::text[], $3::real[]) WITH ORDINALITY AS u(i, d, n)",
                &[DatumWithOid::from(model_id), DatumWithOid::from(item), DatumWithOid::from(per_day), DatumWithOid::from(by_weekday)],
            )
            .or_raise();
        });
    }
    keep.len()
}

/// Checks the demand forecast against the naive one ("the same weekday a week earlier") on the
/// order lines: for each of the last `weeks` whole weeks before `now`'s day (UTC), forecasts the
/// week from the 56 days before it and compares with what sold. One row per week, oldest first:
/// its first day, the items that sold in the history or the week, the units sold, the WAPE
/// (Σ|actual − forecast| ÷ Σ actual) over items and days of both forecasts, and over items of
/// the week's units (naive: last week's units).
#[allow(clippy::type_complexity)]
#[pg_extern(stable)]
fn demand_backtest(
    weeks: default!(Option<i32>, 4),
    now: default!(Option<TimestampWithTimeZone>, "now()"),
    half_life_days: default!(Option<f64>, 10.0),
    trend: default!(Option<f64>, 1.0),
) -> TableIterator<
    'static,
    (
        name!(week_start, TimestampWithTimeZone),
        name!(items, i64),
        name!(units, f64),
        name!(wape, Option<f64>),
        name!(wape_naive, Option<f64>),
        name!(wape_week, Option<f64>),
        name!(wape_week_naive, Option<f64>),
    ),
> {
    let weeks = crate::api::required(weeks, "weeks", "the number of weeks to check, 1 to 52 (default 4)");
    let half_life_days = crate::api::required(half_life_days, "half_life_days", "the default is 10");
    let trend = crate::api::required(trend, "trend", "the default is 1");
    if !(1..=52).contains(&weeks) {
        raise(Error::invalid(format!("weeks must be between 1 and 52, not {weeks}")).hint("each week is forecast from the 56 days before it"));
    }
    if !(half_life_days.is_finite() && half_life_days > 0.0 && half_life_days <= 3650.0) {
        raise(Error::invalid(format!("half_life_days must be a positive number of days up to 3650, not {half_life_days}")).hint("the default is 10"));
    }
    if !(trend.is_finite() && (0.0..=2.0).contains(&trend)) {
        raise(
            Error::invalid(format!("trend must be between 0 and 2, not {trend}")).hint("the share of the trend the level takes: 0 none, 1 (the default) all"),
        );
    }
    let p = DemandParams { half_life_days, trend, ..DEFAULT_PARAMS };
    let today = day_of(now);
    let first = today - 7 * i64::from(weeks) - p.history_days as i64;
    let (_, sales) = daily_sales(first, today);
    check_for_interrupts!();
    let rows: Vec<_> = demand::backtest(&sales, first, weeks as usize, &p)
        .into_iter()
        .map(|b| {
            let start = crate::api::timestamptz((b.origin * 86_400 - 10_957 * 86_400) * 1_000_000);
            (start, b.items as i64, b.actual, b.wape, b.wape_naive, b.wape_week, b.wape_week_naive)
        })
        .collect();
    TableIterator::new(rows)
}
