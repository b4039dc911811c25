//! Inferring preferences from orders, returns and browsing (engine::prefs::infer), appended
//! to the ledger when they changed.
use super::*;

/// Derives implicit preferences for one customer from their orders, returns and browsing
/// (see docs/reference.md for the rules) and appends the ones that changed to the ledger.
/// Revoked categories are skipped. Returns how many rows were written.
#[pg_extern(volatile, security_definer)]
#[search_path(pg_catalog, reco, pg_temp)]
pub(super) fn infer_preferences(customer_id: &str) -> i64 {
    let customer_id = customer(customer_id);
    Spi::connect_mut(|c| infer_one(c, &customer_id))
}

/// infer_preferences for every customer with orders or events since `since` (all when NULL),
/// for a nightly pg_cron job. Reports progress as NOTICEs. Returns rows written.
#[pg_extern(volatile, security_definer)]
#[search_path(pg_catalog, reco, pg_temp)]
pub(super) fn infer_all_preferences(since: default!(Option<TimestampWithTimeZone>, "NULL")) -> i64 {
    let ids: Vec<String> = Spi::connect(|c| {
        crate::plans::select(
            c,
            "SELECT customer_id FROM reco.orders WHERE customer_id IS NOT NULL AND ($1::timestamptz IS NULL OR placed_at >= $1)
             UNION
             SELECT customer_id FROM reco.events WHERE customer_id IS NOT NULL AND ($1::timestamptz IS NULL OR occurred_at >= $1)
             ORDER BY 1",
            &[DatumWithOid::from(since)],
        )
        .or_raise()
        .filter_map(|r| r.get::<String>(1).or_raise())
        .collect()
    });
    let mut written = 0;
    for (n, id) in ids.iter().enumerate() {
        written += Spi::connect_mut(|c| infer_one(c, id));
        if (n + 1) % 10_000 == 0 {
            pgrx::notice!("infer_all_preferences: {} of {} customers, {} rows written", n + 1, ids.len(), written);
        }
    }
    written
}

pub(super) fn infer_one(c: &mut pgrx::spi::SpiClient<'_>, customer_id: &str) -> i64 {
    let arg = || [DatumWithOid::from(customer_id)];
    let purchases: Vec<Purchase> = crate::plans::select(
        c,
        "SELECT l.size, l.color, i.brand, l.unit_price_minor, o.currency::text, o.channel, o.placed_at, r.returned, r.reason,
                    o.delivery_speed
             FROM reco.orders o JOIN reco.order_lines l USING (order_id) LEFT JOIN reco.items i ON i.item_id = l.item_id
             LEFT JOIN LATERAL (SELECT true AS returned, e.context->>'reason' AS reason FROM reco.events e
                                WHERE e.customer_id = o.customer_id AND e.kind = 'return' AND e.item_id = l.item_id
                                  AND e.occurred_at >= o.placed_at
                                ORDER BY e.occurred_at LIMIT 1) r ON true
             WHERE o.customer_id = $1 AND o.status <> 'cancelled'",
        &arg(),
    )
    .or_raise()
    .filter_map(|r| {
        let at: TimestampWithTimeZone = r.get(7).or_raise()?;
        let returned: Option<bool> = r.get(8).or_raise();
        let reason: Option<String> = r.get(9).or_raise();
        Some(Purchase {
            size: r.get(1).or_raise(),
            color: r.get(2).or_raise(),
            brand: r.get(3).or_raise(),
            unit_price_minor: r.get(4).or_raise()?,
            currency: r.get(5).or_raise()?,
            channel: r.get(6).or_raise()?,
            delivery_speed: r.get(10).or_raise(),
            at: time::from_pg_micros(at.into_inner()),
            returned: returned.map(|_| ReturnReason::parse(reason.as_deref())),
        })
    })
    .collect();
    let browsing: Vec<Browse> = crate::plans::select(
        c,
        "SELECT i.attributes->>'color', i.brand, e.occurred_at FROM reco.events e JOIN reco.items i ON i.item_id = e.item_id
             WHERE e.customer_id = $1 AND (e.kind = 'cart_add' OR (e.kind = 'view' AND coalesce(e.value, 0) >= 10))
             ORDER BY e.occurred_at DESC LIMIT 200",
        &arg(),
    )
    .or_raise()
    .filter_map(|r| {
        let at: TimestampWithTimeZone = r.get(3).or_raise()?;
        Some(Browse { color: r.get(1).or_raise(), brand: r.get(2).or_raise(), at: time::from_pg_micros(at.into_inner()) })
    })
    .collect();
    let inferred = prefs::infer::infer(&purchases, &browsing);
    if inferred.is_empty() {
        return 0;
    }
    let revoked: Vec<String> = crate::plans::select(c, "SELECT category::text FROM reco.preference_revocations WHERE customer_id = $1", &arg())
        .or_raise()
        .filter_map(|r| r.get::<String>(1).or_raise())
        .collect();
    let latest: Vec<(String, String, String, f64)> = crate::plans::select(
        c,
        "SELECT DISTINCT ON (category, source) category::text, source, value::text, confidence FROM reco.preferences
             WHERE customer_id = $1 AND NOT explicit AND revoked_at IS NULL
             ORDER BY category, source, observed_at DESC, preference_id DESC",
        &arg(),
    )
    .or_raise()
    .filter_map(|r| Some((r.get(1).or_raise()?, r.get(2).or_raise()?, r.get(3).or_raise()?, r.get(4).or_raise()?)))
    .collect();
    let fresh: Vec<&Inferred> = inferred
        .iter()
        .filter(|i| !revoked.contains(&i.category))
        .filter(|i| {
            !latest.iter().any(|(cat, src, val, conf)| {
                cat == &i.category && src == i.source && reco_engine::json::parse(val).ok().as_ref() == Some(&i.value) && (conf - i.confidence).abs() < 0.05
            })
        })
        .collect();
    if fresh.is_empty() {
        return 0;
    }
    crate::plans::update(
        c,
        "INSERT INTO reco.preferences (customer_id, category, value, source, explicit, confidence, evidence, observed_at)
         SELECT $1, cat, v::jsonb, src, false, conf, ev, at
         FROM unnest($2::text[], $3::text[], $4::text[], $5::float8[], $6::int[], $7::timestamptz[]) AS u(cat, v, src, conf, ev, at)",
        &[
            DatumWithOid::from(customer_id),
            DatumWithOid::from(fresh.iter().map(|i| i.category.clone()).collect::<Vec<_>>()),
            DatumWithOid::from(fresh.iter().map(|i| i.value.to_string()).collect::<Vec<_>>()),
            DatumWithOid::from(fresh.iter().map(|i| i.source.to_string()).collect::<Vec<_>>()),
            DatumWithOid::from(fresh.iter().map(|i| i.confidence).collect::<Vec<_>>()),
            DatumWithOid::from(fresh.iter().map(|i| i.evidence).collect::<Vec<_>>()),
            DatumWithOid::from(fresh.iter().map(|i| crate::api::timestamptz(time::to_pg_micros(&i.observed_at))).collect::<Vec<_>>()),
        ],
    )
    .or_raise();
    fresh.len() as i64
}
