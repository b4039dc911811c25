//! Customer preferences: capture (standardized by category), edit, revoke, resolve, forget.
//! The functions run as the caller (SECURITY INVOKER), so row-level security applies to
//! customer-scoped sessions; only forget_customer is SECURITY DEFINER (admins).
use crate::error::{raise, OrRaise};
use crate::jsonb::{JsonbText, Payload};
use pgrx::datum::DatumWithOid;
use pgrx::prelude::*;
use reco_engine::prefs::{self, Policy, Row, ValueType};
use reco_engine::standardize::time;
use reco_engine::{Error, ErrorKind};
use serde_json::{Map, Value};

struct Category {
    name: String,
    vtype: ValueType,
    sources: Vec<String>,
}

fn categories() -> Vec<Category> {
    Spi::connect(|c| {
        let rows = c
            .select("SELECT name, value_type, family, allowed_values, allowed_sources FROM reco.preference_categories", None, &[])
            .or_raise();
        let mut out = Vec::new();
        for r in rows {
            let name: String = r.get(1).or_raise().unwrap_or_default();
            let vt: String = r.get(2).or_raise().unwrap_or_default();
            let family: Option<String> = r.get(3).or_raise();
            let allowed: Vec<String> = r.get::<Vec<String>>(4).or_raise().unwrap_or_default();
            let sources: Vec<String> = r.get::<Vec<String>>(5).or_raise().unwrap_or_default();
            let vtype = ValueType::parse(&vt, family.as_deref(), &allowed).map_err(|e| e.context(format!("category {name}"))).or_raise();
            out.push(Category { name, vtype, sources });
        }
        out
    })
}

fn find_category<'a>(all: &'a [Category], name: &str) -> &'a Category {
    all.iter().find(|c| c.name == name).unwrap_or_else(|| {
        let names: Vec<&str> = all.iter().map(|c| c.name.as_str()).collect();
        raise(
            Error::invalid(format!("preference category {} is not known", reco_engine::error::show(name)))
                .hint(format!("categories: {} (add one with a row in reco.preference_categories)", names.join(", "))),
        )
    })
}

/// Checks a customer id, and that a customer-scoped session (SET reco.customer_id) names
/// only its own customer. reco._ensure_customer checks the scope again at the privilege boundary.
fn customer(id: &str) -> String {
    let v = Value::from(id);
    let id = reco_engine::json::Node::root(&v)
        .id()
        .or_raise()
        .unwrap_or_else(|| raise(Error::invalid("customer_id is empty").at("customer_id")));
    let scope: Option<String> =
        Spi::get_one("SELECT nullif(current_setting('reco.customer_id', true), '')").or_raise();
    if let Some(scope) = scope {
        if scope != id {
            raise(
                Error::new(ErrorKind::InsufficientPrivilege, format!("customer {id} is outside this session's scope"))
                    .hint(format!("this session has reco.customer_id = {scope}")),
            );
        }
    }
    id
}

/// A standardized ledger row ready to insert.
struct Capture {
    category: String,
    value: Value,
    explicit: bool,
    confidence: f64,
}

fn prepare(cat: &Category, raw: &Value, source: &str, confidence: Option<f64>) -> Capture {
    if !cat.sources.iter().any(|s| s == source) {
        raise(
            Error::invalid(format!("source {} may not set preference {}", reco_engine::error::show(source), cat.name))
                .hint(format!("{} accepts sources: {}", cat.name, cat.sources.join(", "))),
        );
    }
    let explicit = !source.starts_with("inferred_");
    let confidence = confidence.unwrap_or(if explicit { 1.0 } else { 0.5 });
    if !(0.0..=1.0).contains(&confidence) || confidence.is_nan() {
        raise(Error::invalid(format!("confidence {confidence} is outside 0 to 1")).at("confidence"));
    }
    let value = prefs::standardize(&cat.name, &cat.vtype, raw).or_raise();
    Capture { category: cat.name.clone(), value, explicit, confidence }
}

/// A text argument as a JSON value: price ranges are JSON objects, everything else is text.
fn raw_value(cat: &Category, text: &str) -> Value {
    match cat.vtype {
        ValueType::PriceRange => reco_engine::json::parse(text).map_err(|e| e.context(format!("preference {}", cat.name))).or_raise(),
        _ => Value::from(text),
    }
}

fn insert(customer_id: &str, caps: Vec<Capture>, source: &str, observed_at: TimestampWithTimeZone, channel: Option<&str>) -> Vec<i64> {
    Spi::connect_mut(|c| {
        c.update("SELECT reco._ensure_customer($1)", None, &[DatumWithOid::from(customer_id)]).or_raise();
        let explicit: Vec<String> = caps.iter().filter(|x| x.explicit).map(|x| x.category.clone()).collect();
        if !explicit.is_empty() {
            // an explicit choice lifts the customer's revocation of that category
            c.update(
                "DELETE FROM reco.preference_revocations WHERE customer_id = $1 AND category = ANY($2)",
                None,
                &[DatumWithOid::from(customer_id), DatumWithOid::from(explicit)],
            )
            .or_raise();
        }
        let rows = c
            .update(
                "INSERT INTO reco.preferences (customer_id, category, value, source, explicit, confidence, channel, observed_at)
                 SELECT $1, cat, v::jsonb, $2, e, conf, $3, $4
                 FROM unnest($5::text[], $6::text[], $7::bool[], $8::float8[]) AS u(cat, v, e, conf)
                 RETURNING preference_id",
                None,
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
#[pg_extern(volatile)]
fn capture_preference(
    customer_id: &str,
    category: &str,
    value: &str,
    source: &str,
    observed_at: default!(TimestampWithTimeZone, "now()"),
    channel: default!(Option<&str>, "NULL"),
    confidence: default!(Option<f64>, "NULL"),
) -> i64 {
    let customer_id = customer(customer_id);
    let all = categories();
    let cat = find_category(&all, category);
    let cap = prepare(cat, &raw_value(cat, value), source, confidence);
    insert(&customer_id, vec![cap], source, observed_at, channel)[0]
}

/// Captures a whole form or survey: `{"size_tops": "M", "color": "navy", ...}`. All values are
/// checked before any is written. Returns how many were captured.
#[pg_extern(volatile)]
fn capture_preferences(
    customer_id: &str,
    payload: Payload,
    source: &str,
    observed_at: default!(TimestampWithTimeZone, "now()"),
    channel: default!(Option<&str>, "NULL"),
) -> i32 {
    let customer_id = customer(customer_id);
    let v = payload.value().or_raise();
    let Value::Object(m) = v else {
        raise(Error::invalid("preferences must be a JSON object of category: value").at("payload"))
    };
    let all = categories();
    let caps: Vec<Capture> = m
        .iter()
        .filter(|(_, raw)| !raw.is_null())
        .map(|(k, raw)| {
            let cat = find_category(&all, k);
            let raw = match (&cat.vtype, raw) {
                (ValueType::PriceRange, _) | (_, Value::String(_)) => raw.clone(),
                (_, other) => Value::String(other.to_string()),
            };
            prepare(cat, &raw, source, None)
        })
        .collect();
    insert(&customer_id, caps, source, observed_at, channel).len() as i32
}

/// The customer edits a preference (a new explicit row, source `profile`).
#[pg_extern(volatile)]
fn set_preference(customer_id: &str, category: &str, value: &str) -> i64 {
    let customer_id = customer(customer_id);
    let all = categories();
    let cat = find_category(&all, category);
    let cap = prepare(cat, &raw_value(cat, value), "profile", None);
    let now = super::timestamptz(unsafe { pg_sys::GetCurrentTransactionStartTimestamp() });
    insert(&customer_id, vec![cap], "profile", now, None)[0]
}

/// Revokes one category: its rows stop counting, inference will not set it again, other
/// categories are untouched. Returns how many ledger rows were marked.
#[pg_extern(volatile)]
fn revoke_preference(customer_id: &str, category: &str) -> i64 {
    let customer_id = customer(customer_id);
    let all = categories();
    let cat = find_category(&all, category);
    Spi::connect_mut(|c| {
        c.update("SELECT reco._ensure_customer($1)", None, &[DatumWithOid::from(customer_id.as_str())]).or_raise();
        let marked = c
            .update(
                "UPDATE reco.preferences SET revoked_at = now() WHERE customer_id = $1 AND category = $2 AND revoked_at IS NULL",
                None,
                &[DatumWithOid::from(customer_id.as_str()), DatumWithOid::from(cat.name.as_str())],
            )
            .or_raise()
            .len() as i64;
        c.update(
            "INSERT INTO reco.preference_revocations (customer_id, category) VALUES ($1, $2)
             ON CONFLICT (customer_id, category) DO UPDATE SET revoked_at = now()",
            None,
            &[DatumWithOid::from(customer_id.as_str()), DatumWithOid::from(cat.name.as_str())],
        )
        .or_raise();
        marked
    })
}

/// The customer's active preferences, one object per category: value, source, observed_at,
/// confidence, why (the rule that chose it) and overrode (the values it beat). `context` keys
/// that name a category are this request's choices and win; other keys are ignored, so a
/// recommendation context can be passed as is.
#[pg_extern(stable, parallel_safe)]
fn resolve_preferences(customer_id: &str, context: default!(Option<Payload>, "'{}'")) -> JsonbText {
    let context = match context.map(Payload::value).transpose().or_raise() {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(m)) => m,
        Some(_) => raise(Error::invalid("context must be a JSON object").at("context")),
    };
    let (rows, policies) = Spi::connect(|c| {
        let rows = c
            .select(
                "SELECT category, value::text, source, explicit, confidence, observed_at
                 FROM reco.preferences WHERE customer_id = $1 AND revoked_at IS NULL",
                None,
                &[DatumWithOid::from(customer_id)],
            )
            .or_raise();
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let ts: TimestampWithTimeZone = r.get(6).or_raise().unwrap_or_else(|| raise(Error::invalid("NULL observed_at")));
            out.push(Row {
                category: r.get(1).or_raise().unwrap_or_default(),
                value: reco_engine::json::parse(&r.get::<String>(2).or_raise().unwrap_or_default()).or_raise(),
                source: r.get(3).or_raise().unwrap_or_default(),
                explicit: r.get(4).or_raise().unwrap_or(true),
                confidence: r.get(5).or_raise().unwrap_or(1.0),
                observed_at: time::from_pg_micros(ts.into_inner()),
            });
        }
        let pol = c
            .select(
                "SELECT category, extract(epoch FROM explicit_ttl)::float8, min_confidence FROM reco.preference_policy",
                None,
                &[],
            )
            .or_raise();
        let mut policies: Vec<(String, Policy)> = Vec::new();
        for r in pol {
            let secs: f64 = r.get(2).or_raise().unwrap_or(0.0);
            policies.push((
                r.get(1).or_raise().unwrap_or_default(),
                Policy { explicit_ttl: chrono::Duration::seconds(secs as i64), min_confidence: r.get(3).or_raise().unwrap_or(0.7) },
            ));
        }
        (out, policies)
    });
    // context values for known categories, standardized like captures
    let mut ctx = Map::new();
    if !context.is_empty() {
        let all = categories();
        for (k, raw) in &context {
            if let Some(cat) = all.iter().find(|c| &c.name == k) {
                let raw = match (&cat.vtype, raw) {
                    (ValueType::PriceRange, _) | (_, Value::String(_)) => raw.clone(),
                    (_, other) => Value::String(other.to_string()),
                };
                let v = prefs::standardize(&cat.name, &cat.vtype, &raw).map_err(|e| e.at(format!("context.{k}"))).or_raise();
                ctx.insert(k.clone(), v);
            }
        }
    }
    let now = time::from_pg_micros(unsafe { pg_sys::GetCurrentTransactionStartTimestamp() });
    let policy = |c: &str| policies.iter().find(|(n, _)| n == c).map(|(_, p)| p.clone()).unwrap_or_default();
    JsonbText::of(&prefs::resolve(&rows, &policy, &ctx, now))
}

/// Forgets a customer in one transaction: their preferences, revocations and events are
/// deleted, their orders keep their lines (for sales totals) but lose the customer id and
/// e-mail, and the customer row goes. Returns what was removed per table.
#[pg_extern(volatile, strict, security_definer)]
#[search_path(reco, pg_catalog)]
fn forget_customer(customer_id: &str) -> JsonbText {
    let args = || [DatumWithOid::from(customer_id)];
    let counts = Spi::connect_mut(|c| {
        let mut n = |sql: &str| -> i64 { c.update(sql, None, &args()).or_raise().len() as i64 };
        let preferences = n("DELETE FROM reco.preferences WHERE customer_id = $1 RETURNING 1");
        let revocations = n("DELETE FROM reco.preference_revocations WHERE customer_id = $1 RETURNING 1");
        let events = n("DELETE FROM reco.events WHERE customer_id = $1 RETURNING 1");
        let orders = n("UPDATE reco.orders SET customer_id = NULL, email = NULL, updated_at = now() WHERE customer_id = $1 RETURNING 1");
        let customers = n("DELETE FROM reco.customers WHERE customer_id = $1 RETURNING 1");
        serde_json::json!({
            "preferences": preferences, "preference_revocations": revocations, "events": events,
            "orders_anonymized": orders, "customers": customers
        })
    });
    JsonbText(counts.to_string())
}
