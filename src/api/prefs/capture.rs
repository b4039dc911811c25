//! Capturing preferences: standardized by category on the way in, appended to the ledger;
//! edits and revocations are new ledger rows too.
use super::*;

/// A standardized ledger row ready to insert.
pub(super) struct Capture {
    category: String,
    value: Value,
    explicit: bool,
    confidence: f64,
}

pub(super) fn prepare(cat: &Category, raw: &Value, source: &str, confidence: Option<f64>) -> Capture {
    if !cat.sources.iter().any(|s| s == source) {
        raise(Error::invalid(format!("source {} may not set preference {}", reco_engine::error::show(source), cat.name)).hint(format!(
            "{} accepts sources: {}",
            cat.name,
            cat.sources.join(", ")
        )));
    }
    let explicit = !source.starts_with("inferred_");
    let confidence = confidence.unwrap_or(if explicit { 1.0 } else { 0.5 });
    if !(0.0..=1.0).contains(&confidence) || confidence.is_nan() {
        raise(Error::invalid(format!("confidence {confidence} is outside 0 to 1")).at("confidence").hint("confidence is a share: 0 to 1"));
    }
    let value = prefs::standardize(&cat.name, &cat.vtype, raw).or_raise();
    Capture { category: cat.name.clone(), value, explicit, confidence }
}

/// A JSON value as a category expects it: price ranges as objects, everything else as text
/// (so a number such as 42 for a shoe size is read as "42").
pub(super) fn json_raw(cat: &Category, raw: &Value) -> Value {
    match (&cat.vtype, raw) {
        (ValueType::PriceRange, _) | (_, Value::String(_)) => raw.clone(),
        (_, other) => Value::String(other.to_string()),
    }
}

/// A text argument as a JSON value: price ranges are JSON objects, everything else is text.
pub(super) fn raw_value(cat: &Category, text: &str) -> Value {
    match cat.vtype {
        ValueType::PriceRange => reco_engine::json::parse(text).map_err(|e| e.context(format!("preference {}", cat.name))).or_raise(),
        _ => Value::from(text),
    }
}

pub(super) fn insert(customer_id: &str, caps: Vec<Capture>, source: &str, observed_at: TimestampWithTimeZone, channel: Option<&str>) -> Vec<i64> {
    let observed = time::from_pg_micros(observed_at.into_inner());
    time::check_activity(&observed, &crate::api::transaction_start(), "observed_at").or_raise();
    if let Some(ch) = channel {
        reco_engine::normalize::channel_name(ch).map_err(|e| e.at("channel")).or_raise();
    }
    Spi::connect_mut(|c| {
        ensure_customer(c, customer_id);
        let explicit: Vec<String> = caps.iter().filter(|x| x.explicit).map(|x| x.category.clone()).collect();
        if !explicit.is_empty() {
            // an explicit choice lifts the customer's revocation of that category
            crate::plans::update(
                c,
                "DELETE FROM reco.preference_revocations WHERE customer_id = $1 AND category = ANY($2::pg_catalog.text[])",
                &[DatumWithOid::from(customer_id), DatumWithOid::from(explicit)],
            )
            .or_raise();
        }
        let rows = crate::plans::update(
            c,
            "INSERT INTO reco.preferences (customer_id, category, value, source, explicit, confidence, channel, observed_at)
                 SELECT $1, cat, v::pg_catalog.jsonb, $2, e, conf, $3, $4
                 FROM unnest($5::pg_catalog.text[], $6::pg_catalog.text[], $7::pg_catalog.bool[], $8::pg_catalog.float8[]) AS u(cat, v, e, conf)
                 RETURNING preference_id",
            &[
                DatumWithOid::from(customer_id),
                DatumWithOid::from(source),
                DatumWithOid::from(channel),
                DatumWithOid::from(observed_at),
                DatumWithOid::from(caps.iter().map(|x| x.category.clone()).collect::<Vec<_>>()),
                DatumWithOid::from(caps.iter().map(|x| x.value.to_string()).collect::<Vec<_>>()),
                DatumWithOid::from(caps.iter().map(|x| x.explicit).collect::<Vec<_>>()),
                DatumWithOid::from(caps.iter().map(|x| x.confidence).collect::<Vec<_>>()),
            ],
        )
        .or_raise();
        rows.filter_map(|r| r.get::<i64>(1).or_raise()).collect()
    })
}

/// Captures one preference; the value is standardized by its category (sizes to size codes,
/// colors to the palette, price ranges to minor units). Returns the ledger row's id.
#[pg_extern(volatile, security_definer)]
#[search_path(pg_catalog, reco, pg_temp)]
pub(super) fn capture_preference(
    customer_id: Option<&str>,
    category: Option<&str>,
    value: Option<&str>,
    source: Option<&str>,
    observed_at: default!(Option<TimestampWithTimeZone>, "now()"),
    channel: default!(Option<&str>, "NULL"),
    confidence: default!(Option<f64>, "NULL"),
) -> i64 {
    let customer_id = customer(crate::api::required(customer_id, "customer_id", "pass a value: the OMS customer id"));
    let category = crate::api::required(category, "category", "pass a value: a category of reco.preference_categories, e.g. size_tops");
    let value = crate::api::required(value, "value", "pass a value: the value to capture, e.g. 'M'");
    let source = crate::api::required(source, "source", "pass a value: checkout, survey, profile, kiosk ...");
    let observed_at = observed(observed_at);
    let all = categories_named(Some(&[category.to_string()]));
    let cat = find_category(&all, category);
    let cap = prepare(cat, &raw_value(cat, value), source, confidence);
    crate::api::single_id(insert(&customer_id, vec![cap], source, observed_at, channel))
}

/// Captures a whole form or survey: `{"size_tops": "M", "color": "navy", ...}`. All values are
/// checked before any is written. Returns how many were captured.
#[pg_extern(volatile, security_definer)]
#[search_path(pg_catalog, reco, pg_temp)]
pub(super) fn capture_preferences(
    customer_id: Option<&str>,
    payload: Option<Payload>,
    source: Option<&str>,
    observed_at: default!(Option<TimestampWithTimeZone>, "now()"),
    channel: default!(Option<&str>, "NULL"),
) -> i32 {
    let customer_id = customer(crate::api::required(customer_id, "customer_id", "pass a value: the OMS customer id"));
    let source = crate::api::required(source, "source", "pass a value: checkout, survey, profile, kiosk ...");
    let observed_at = observed(observed_at);
    let v = crate::api::required(payload, "payload", "for example '{\"size_tops\": \"M\", \"color\": \"navy\"}'").value().or_raise();
    let Value::Object(m) = v else {
        raise(
            Error::invalid("preferences must be a JSON object of category: value")
                .at("payload")
                .hint("for example '{\"size_tops\": \"M\", \"color\": \"navy\"}'"),
        )
    };
    let names: Vec<String> = m.keys().cloned().collect();
    let all = categories_named(Some(&names));
    let caps: Vec<Capture> = m
        .iter()
        .filter(|(_, raw)| !raw.is_null())
        .map(|(k, raw)| {
            let cat = find_category(&all, k);
            let raw = json_raw(cat, raw);
            prepare(cat, &raw, source, None)
        })
        .collect();
    insert(&customer_id, caps, source, observed_at, channel).len() as i32
}

/// The customer edits a preference (a new explicit row, source `profile`).
#[pg_extern(volatile, security_definer)]
#[search_path(pg_catalog, reco, pg_temp)]
pub(super) fn set_preference(customer_id: &str, category: &str, value: &str) -> i64 {
    let customer_id = customer(customer_id);
    let all = categories_named(Some(&[category.to_string()]));
    let cat = find_category(&all, category);
    let cap = prepare(cat, &raw_value(cat, value), "profile", None);
    let now = crate::api::timestamptz(time::to_pg_micros(&crate::api::transaction_start()));
    crate::api::single_id(insert(&customer_id, vec![cap], "profile", now, None))
}

/// Revokes one category: its rows stop counting, inference will not set it again, other
/// categories are untouched. Returns how many ledger rows were marked.
#[pg_extern(volatile, security_definer)]
#[search_path(pg_catalog, reco, pg_temp)]
pub(super) fn revoke_preference(customer_id: &str, category: &str) -> i64 {
    let customer_id = customer(customer_id);
    let all = categories_named(Some(&[category.to_string()]));
    let cat = find_category(&all, category);
    Spi::connect_mut(|c| {
        ensure_customer(c, &customer_id);
        let marked = crate::plans::update(
            c,
            "UPDATE reco.preferences SET revoked_at = pg_catalog.now() WHERE customer_id = $1 AND category = $2 AND revoked_at IS NULL",
            &[DatumWithOid::from(customer_id.as_str()), DatumWithOid::from(cat.name.as_str())],
        )
        .or_raise()
        .len() as i64;
        crate::plans::update(
            c,
            "INSERT INTO reco.preference_revocations (customer_id, category) VALUES ($1, $2)
             ON CONFLICT (customer_id, category) DO UPDATE SET revoked_at = pg_catalog.now()",
            &[DatumWithOid::from(customer_id.as_str()), DatumWithOid::from(cat.name.as_str())],
        )
        .or_raise();
        marked
    })
}
