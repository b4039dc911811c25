//! Customer preferences: capture (standardized by category), edit, revoke, resolve, forget.
//! The functions run as the caller (SECURITY INVOKER), so row-level security applies to
//! customer-scoped sessions; only forget_customer is SECURITY DEFINER (admins).
use crate::error::{raise, OrRaise};
use crate::jsonb::{JsonbText, Payload};
use pgrx::datum::DatumWithOid;
use pgrx::prelude::*;
use reco_engine::prefs::fit::ItemFacts;
use reco_engine::prefs::infer::{Browse, Inferred, Purchase, ReturnReason};
use reco_engine::prefs::{self, Policy, Row, ValueType};
use reco_engine::standardize::money;
use reco_engine::standardize::time;
use reco_engine::{Error, ErrorKind};
use serde_json::{Map, Value};

struct Category {
    name: String,
    vtype: ValueType,
    sources: Vec<String>,
}

/// The categories named in `only` (every category when None).
fn categories_named(only: Option<&[String]>) -> Vec<Category> {
    Spi::connect(|c| {
        let rows = crate::plans::select(
            c,
            "SELECT name, value_type, family, allowed_values, allowed_sources FROM reco.preference_categories
             WHERE $1::pg_catalog.text[] IS NULL OR name = ANY($1::pg_catalog.text[])",
            &[DatumWithOid::from(only.map(<[String]>::to_vec))],
        )
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

fn categories() -> Vec<Category> {
    categories_named(None)
}

fn find_category<'a>(all: &'a [Category], name: &str) -> &'a Category {
    all.iter().find(|c| c.name == name).unwrap_or_else(|| {
        let every = categories();
        let names: Vec<&str> = every.iter().map(|c| c.name.as_str()).collect();
        raise(
            Error::invalid(format!("preference category {} is not known", reco_engine::error::show(name)))
                .hint(format!("categories: {} (add one with a row in reco.preference_categories)", names.join(", "))),
        )
    })
}

/// A customer id argument, checked (NULL: 22004; empty, too long or with invisible characters:
/// 22023).
pub(crate) fn checked_id(id: Option<&str>, name: &str) -> String {
    let id = super::required(id, name, "pass a value: the OMS customer id");
    let v = Value::from(id);
    reco_engine::json::Node::root(&v)
        .id()
        .map_err(|e| e.at(name))
        .or_raise()
        .unwrap_or_else(|| raise(Error::invalid(format!("{name} is empty")).at(name).hint("pass the OMS customer id")))
}

/// Checks a customer id, and that this session may act for that customer: a customer-scoped
/// session (reco.enter_customer_scope) only for its own, other sessions only with reco_writer's
/// privileges (see scope::authorize).
fn customer(id: &str) -> String {
    let id = checked_id(Some(id), "customer_id");
    super::scope::authorize(&id);
    id
}

/// Checks a customer id for a reader: a customer-scoped session names only its own customer
/// (row-level security would show it nothing else anyway; this says why).
fn readable_customer(id: &str) -> String {
    let id = checked_id(Some(id), "customer_id");
    super::scope::in_scope(&id);
    id
}

/// Creates the customer if new; a forgotten customer is not created again (55000).
fn ensure_customer(c: &mut pgrx::spi::SpiClient<'_>, customer_id: &str) {
    if !super::scope::ensure_customers(c, &[customer_id.to_string()], None).is_empty() {
        raise(
            Error::new(ErrorKind::NotInPrerequisiteState, format!("customer {} was forgotten", reco_engine::error::show(customer_id)))
                .hint("reco.forget_customer is final: nothing is stored for this id again"),
        );
    }
}

/// An observed_at argument: NULL is refused (22004), the bounds are checked when inserting.
fn observed(at: Option<TimestampWithTimeZone>) -> TimestampWithTimeZone {
    super::required(at, "observed_at", "leave it out for now(), or pass when the customer said it")
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
fn json_raw(cat: &Category, raw: &Value) -> Value {
    match (&cat.vtype, raw) {
        (ValueType::PriceRange, _) | (_, Value::String(_)) => raw.clone(),
        (_, other) => Value::String(other.to_string()),
    }
}

/// A text argument as a JSON value: price ranges are JSON objects, everything else is text.
fn raw_value(cat: &Category, text: &str) -> Value {
    match cat.vtype {
        ValueType::PriceRange => reco_engine::json::parse(text).map_err(|e| e.context(format!("preference {}", cat.name))).or_raise(),
        _ => Value::from(text),
    }
}

fn insert(customer_id: &str, caps: Vec<Capture>, source: &str, observed_at: TimestampWithTimeZone, channel: Option<&str>) -> Vec<i64> {
    let observed = time::from_pg_micros(observed_at.into_inner());
    time::check_activity(&observed, &super::transaction_start(), "observed_at").or_raise();
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
fn capture_preference(
    customer_id: Option<&str>,
    category: Option<&str>,
    value: Option<&str>,
    source: Option<&str>,
    observed_at: default!(Option<TimestampWithTimeZone>, "now()"),
    channel: default!(Option<&str>, "NULL"),
    confidence: default!(Option<f64>, "NULL"),
) -> i64 {
    let customer_id = customer(super::required(customer_id, "customer_id", "pass a value: the OMS customer id"));
    let category = super::required(category, "category", "pass a value: a category of reco.preference_categories, e.g. size_tops");
    let value = super::required(value, "value", "pass a value: the value to capture, e.g. 'M'");
    let source = super::required(source, "source", "pass a value: checkout, survey, profile, kiosk ...");
    let observed_at = observed(observed_at);
    let all = categories_named(Some(&[category.to_string()]));
    let cat = find_category(&all, category);
    let cap = prepare(cat, &raw_value(cat, value), source, confidence);
    super::single_id(insert(&customer_id, vec![cap], source, observed_at, channel))
}

/// Captures a whole form or survey: `{"size_tops": "M", "color": "navy", ...}`. All values are
/// checked before any is written. Returns how many were captured.
#[pg_extern(volatile, security_definer)]
#[search_path(pg_catalog, reco, pg_temp)]
fn capture_preferences(
    customer_id: Option<&str>,
    payload: Option<Payload>,
    source: Option<&str>,
    observed_at: default!(Option<TimestampWithTimeZone>, "now()"),
    channel: default!(Option<&str>, "NULL"),
) -> i32 {
    let customer_id = customer(super::required(customer_id, "customer_id", "pass a value: the OMS customer id"));
    let source = super::required(source, "source", "pass a value: checkout, survey, profile, kiosk ...");
    let observed_at = observed(observed_at);
    let v = super::required(payload, "payload", "for example '{\"size_tops\": \"M\", \"color\": \"navy\"}'").value().or_raise();
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
fn set_preference(customer_id: &str, category: &str, value: &str) -> i64 {
    let customer_id = customer(customer_id);
    let all = categories_named(Some(&[category.to_string()]));
    let cat = find_category(&all, category);
    let cap = prepare(cat, &raw_value(cat, value), "profile", None);
    let now = super::timestamptz(time::to_pg_micros(&super::transaction_start()));
    super::single_id(insert(&customer_id, vec![cap], "profile", now, None))
}

/// Revokes one category: its rows stop counting, inference will not set it again, other
/// categories are untouched. Returns how many ledger rows were marked.
#[pg_extern(volatile, security_definer)]
#[search_path(pg_catalog, reco, pg_temp)]
fn revoke_preference(customer_id: &str, category: &str) -> i64 {
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

/// Rows and policies for one customer, as of `at` (rows observed by then and not revoked by
/// then), or now.
fn load_rows(customer_id: &str, at: Option<TimestampWithTimeZone>) -> (Vec<Row>, Vec<(String, Policy)>) {
    Spi::connect(|c| {
        let rows = crate::plans::select(
            c,
            "SELECT category, value::text, source, explicit, confidence, observed_at
                 FROM reco.preferences
                 WHERE customer_id = $1
                   AND CASE WHEN $2::timestamptz IS NULL THEN revoked_at IS NULL
                            ELSE observed_at <= $2 AND (revoked_at IS NULL OR revoked_at > $2) END",
            &[DatumWithOid::from(customer_id), DatumWithOid::from(at)],
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
        if out.is_empty() {
            // the policies only weigh a customer's rows against each other (most have none)
            return (out, Vec::new());
        }
        let pol =
            crate::plans::select(c, "SELECT category, extract(epoch FROM explicit_ttl)::float8, min_confidence FROM reco.preference_policy", &[]).or_raise();
        let mut policies: Vec<(String, Policy)> = Vec::new();
        for r in pol {
            let secs: f64 = r.get(2).or_raise().unwrap_or(0.0);
            policies.push((
                r.get(1).or_raise().unwrap_or_default(),
                Policy { explicit_ttl: chrono::Duration::seconds(secs as i64), min_confidence: r.get(3).or_raise().unwrap_or(0.7) },
            ));
        }
        (out, policies)
    })
}

/// Context values for known categories, standardized like captures; other keys ignored.
fn context_choices(context: &Map<String, Value>) -> Map<String, Value> {
    let mut ctx = Map::new();
    if context.is_empty() {
        return ctx;
    }
    let names: Vec<String> = context.keys().cloned().collect();
    let all = categories_named(Some(&names));
    for (k, raw) in context {
        if let Some(cat) = all.iter().find(|c| &c.name == k) {
            let raw = json_raw(cat, raw);
            let v = prefs::standardize(&cat.name, &cat.vtype, &raw).map_err(|e| e.at(format!("context.{k}"))).or_raise();
            ctx.insert(k.clone(), v);
        }
    }
    ctx
}

/// The resolved preferences of a customer (now, or as of `at`).
pub(crate) fn resolved(customer_id: &str, context: &Map<String, Value>, at: Option<TimestampWithTimeZone>) -> Map<String, Value> {
    let (rows, policies) = load_rows(customer_id, at);
    let ctx = context_choices(context);
    let now = match at {
        Some(t) => time::from_pg_micros(t.into_inner()),
        None => super::transaction_start(),
    };
    let policy = |c: &str| policies.iter().find(|(n, _)| n == c).map(|(_, p)| p.clone()).unwrap_or_default();
    prefs::resolve(&rows, &policy, &ctx, now)
}

fn context_arg(context: Option<Payload>) -> Map<String, Value> {
    Payload::object_arg(context, "context", r#"{"color": "red"}"#)
}

/// The customer's active preferences, one object per category: value, source, observed_at,
/// confidence, why (the rule that chose it) and overrode (the values it beat). `context` keys
/// that name a category are this request's choices and win; other keys are ignored, so a
/// recommendation context can be passed as is.
#[pg_extern(stable, parallel_safe)]
fn resolve_preferences(customer_id: Option<&str>, context: default!(Option<Payload>, "'{}'")) -> JsonbText {
    let customer_id = readable_customer(super::required(customer_id, "customer_id", "pass a value: the OMS customer id"));
    JsonbText::of(&resolved(&customer_id, &context_arg(context), None))
}

/// The preferences as they were resolved at time `at` (for reporting, e.g. utilization).
#[pg_extern(stable, strict, parallel_safe)]
fn resolve_preferences_at(customer_id: &str, at: TimestampWithTimeZone) -> JsonbText {
    JsonbText::of(&resolved(customer_id, &Map::new(), Some(at)))
}

fn item_facts(ids: &[String]) -> Vec<ItemFacts> {
    Spi::connect(|c| {
        let rows = crate::plans::select(
            c,
            "SELECT item_id, attributes->>'size', attributes->>'color', brand, price::text, currency::text
                 FROM reco.items WHERE item_id = ANY($1)",
            &[DatumWithOid::from(ids.to_vec())],
        )
        .or_raise();
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let currency: Option<String> = r.get(6).or_raise();
            let price: Option<String> = r.get(5).or_raise();
            let price_minor = money::minor_units(price.as_deref(), currency.as_deref());
            out.push(ItemFacts {
                item_id: r.get(1).or_raise().unwrap_or_default(),
                size: r.get(2).or_raise(),
                color: r.get(3).or_raise(),
                brand: r.get(4).or_raise(),
                price_minor,
                currency,
            });
        }
        out
    })
}

/// The items among `item_ids` that match the customer's resolved size, color, brand and price
/// range, in the given order. A category without a preference does not filter; unknown items
/// are dropped.
#[pg_extern(stable, strict, parallel_safe)]
fn filter_by_preferences(customer_id: &str, item_ids: Vec<Option<String>>) -> SetOfIterator<'static, String> {
    let ids: Vec<String> = item_ids.into_iter().flatten().collect();
    let customer_id = readable_customer(customer_id);
    let r = resolved(&customer_id, &Map::new(), None);
    let facts = item_facts(&ids);
    let keep: Vec<String> = ids.into_iter().filter(|id| facts.iter().find(|f| &f.item_id == id).is_some_and(|f| prefs::fit::fits(&r, f))).collect();
    SetOfIterator::new(keep)
}

/// Other buyable variants of the item's product (same group_id, active, in stock, not
/// backordered) for this customer: their size and color first, then their size, their color,
/// the nearest size. With a reason each.
// the column names live in the signature, where pgrx reads them: no type alias here
#[allow(clippy::type_complexity)]
#[pg_extern(stable, strict, parallel_safe)]
fn alternatives(
    customer_id: &str,
    item_id: &str,
    k: default!(i32, 5),
) -> TableIterator<'static, (name!(item_id, String), name!(size, Option<String>), name!(color, Option<String>), name!(available, i32), name!(reason, String))> {
    if !(1..=100).contains(&k) {
        raise(Error::invalid(format!("k = {k} is outside 1 to 100")).at("k").hint("ask for 1 to 100 alternatives"));
    }
    let customer_id = readable_customer(customer_id);
    let r = resolved(&customer_id, &Map::new(), None);
    let (group, variants): (Option<String>, Vec<(String, i32)>) = Spi::connect(|c| {
        let group: Option<String> =
            c.select("SELECT group_id FROM reco.items WHERE item_id = $1", Some(1), &[DatumWithOid::from(item_id)]).or_raise().first().get(1).ok().flatten();
        let Some(g) = group.clone() else { return (None, Vec::new()) };
        let rows = crate::plans::select(
            c,
            "SELECT i.item_id, s.available FROM reco.items i JOIN reco.stock s USING (item_id)
                 WHERE i.group_id = $1 AND i.active AND s.available > 0 AND NOT s.backordered",
            &[DatumWithOid::from(g.as_str())],
        )
        .or_raise();
        let v = rows.filter_map(|row| Some((row.get::<String>(1).ok()??, row.get::<i32>(2).ok()??))).collect();
        (group, v)
    });
    if group.is_none() {
        let known: Option<bool> = Spi::get_one_with_args("SELECT EXISTS (SELECT 1 FROM reco.items WHERE item_id = $1)", &[item_id.into()]).or_raise();
        if known != Some(true) {
            raise(Error::new(ErrorKind::UndefinedObject, format!("item {} is not known", reco_engine::error::show(item_id))).at("item_id"));
        }
    }
    let mut ids: Vec<String> = variants.iter().map(|(i, _)| i.clone()).collect();
    ids.push(item_id.to_string());
    let facts = item_facts(&ids);
    let base = facts.iter().find(|f| f.item_id == item_id).cloned().unwrap_or_default();
    let candidates: Vec<ItemFacts> = facts.into_iter().filter(|f| f.item_id != item_id && variants.iter().any(|(v, _)| v == &f.item_id)).collect();
    let ranked = prefs::fit::rank_alternatives(&r, &base, &candidates);
    let rows: Vec<_> = ranked
        .into_iter()
        .take(k as usize)
        .map(|(id, reason)| {
            let f = candidates.iter().find(|f| f.item_id == id).cloned().unwrap_or_default();
            let avail = variants.iter().find(|(v, _)| v == &id).map_or(0, |(_, a)| *a);
            (id, f.size, f.color, avail, reason)
        })
        .collect();
    TableIterator::new(rows)
}

/// Derives implicit preferences for one customer from their orders, returns and browsing
/// (see docs/reference.md for the rules) and appends the ones that changed to the ledger.
/// Revoked categories are skipped. Returns how many rows were written.
#[pg_extern(volatile, security_definer)]
#[search_path(pg_catalog, reco, pg_temp)]
fn infer_preferences(customer_id: &str) -> i64 {
    let customer_id = customer(customer_id);
    Spi::connect_mut(|c| infer_one(c, &customer_id))
}

/// infer_preferences for every customer with orders or events since `since` (all when NULL),
/// for a nightly pg_cron job. Reports progress as NOTICEs. Returns rows written.
#[pg_extern(volatile, security_definer)]
#[search_path(pg_catalog, reco, pg_temp)]
fn infer_all_preferences(since: default!(Option<TimestampWithTimeZone>, "NULL")) -> i64 {
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
        .filter_map(|r| r.get::<String>(1).ok().flatten())
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

fn infer_one(c: &mut pgrx::spi::SpiClient<'_>, customer_id: &str) -> i64 {
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
        let at: TimestampWithTimeZone = r.get(7).ok()??;
        let returned: Option<bool> = r.get(8).ok()?;
        let reason: Option<String> = r.get(9).ok()?;
        Some(Purchase {
            size: r.get(1).ok()?,
            color: r.get(2).ok()?,
            brand: r.get(3).ok()?,
            unit_price_minor: r.get(4).ok()??,
            currency: r.get(5).ok()??,
            channel: r.get(6).ok()??,
            delivery_speed: r.get(10).ok()?,
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
        let at: TimestampWithTimeZone = r.get(3).ok()??;
        Some(Browse { color: r.get(1).ok()?, brand: r.get(2).ok()?, at: time::from_pg_micros(at.into_inner()) })
    })
    .collect();
    let inferred = prefs::infer::infer(&purchases, &browsing);
    if inferred.is_empty() {
        return 0;
    }
    let revoked: Vec<String> = crate::plans::select(c, "SELECT category::text FROM reco.preference_revocations WHERE customer_id = $1", &arg())
        .or_raise()
        .filter_map(|r| r.get::<String>(1).ok().flatten())
        .collect();
    let latest: Vec<(String, String, String, f64)> = crate::plans::select(
        c,
        "SELECT DISTINCT ON (category, source) category::text, source, value::text, confidence FROM reco.preferences
             WHERE customer_id = $1 AND NOT explicit AND revoked_at IS NULL
             ORDER BY category, source, observed_at DESC, preference_id DESC",
        &arg(),
    )
    .or_raise()
    .filter_map(|r| Some((r.get(1).ok()??, r.get(2).ok()??, r.get(3).ok()??, r.get(4).ok()??)))
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
            DatumWithOid::from(fresh.iter().map(|i| super::timestamptz(time::to_pg_micros(&i.observed_at))).collect::<Vec<_>>()),
        ],
    )
    .or_raise();
    fresh.len() as i64
}

/// Forgets a customer in one transaction: every row that holds their id goes (preferences,
/// revocations, events, model vectors, the recommendation log), their orders keep their lines
/// (for sales totals) but lose the customer id and e-mail, and the customer row goes. A
/// tombstone (the keyed hash of the id, reco.forgotten_customers) keeps ingestion from
/// creating them again: later events of the id are not stored, later orders are stored
/// without it. Concurrent ingestion is serialized on the customer row: an ingest in flight
/// commits first and its rows are deleted here, or it waits and sees the tombstone. Returns
/// what was removed per table.
#[pg_extern(volatile, strict, security_definer)]
#[search_path(pg_catalog, reco, pg_temp)]
fn forget_customer(customer_id: &str) -> JsonbText {
    let customer_id = checked_id(Some(customer_id), "customer_id");
    let key = super::scope::keys(std::slice::from_ref(&customer_id)).remove(0);
    let counts = Spi::connect_mut(|c| {
        // the tombstone first: an ingest that locks the customer after this commits sees it
        c.update(
            "INSERT INTO reco.forgotten_customers (customer_key) VALUES ($1) ON CONFLICT (customer_key) DO NOTHING",
            None,
            &[DatumWithOid::from(key.as_str())],
        )
        .or_raise();
        // waits for ingests in flight: one creating the customer right now (the insert meets
        // its uncommitted row in the unique index and waits for it), and those holding the row
        // (FOR KEY SHARE); once they commit, what they wrote is deleted below
        let created = c
            .update(
                "INSERT INTO reco.customers (customer_id) VALUES ($1) ON CONFLICT (customer_id) DO NOTHING RETURNING 1",
                None,
                &[DatumWithOid::from(customer_id.as_str())],
            )
            .or_raise()
            .len() as i64;
        c.update("SELECT 1 FROM reco.customers WHERE customer_id = $1 FOR UPDATE", None, &[DatumWithOid::from(customer_id.as_str())]).or_raise();
        let mut removed = Map::new();
        for (name, sql) in FORGET {
            let mut n = c.update(*sql, None, &[DatumWithOid::from(customer_id.as_str())]).or_raise().len() as i64;
            if *name == "customers" {
                n -= created; // the row made above only to wait on was never the customer's
            }
            removed.insert((*name).to_string(), Value::from(n));
        }
        removed
    });
    JsonbText(Value::Object(counts).to_string())
}

/// What forgetting a customer does, table by table (the customer row last). A regression test
/// lists every table with a customer_id column from the catalog and checks that each is here.
const FORGET: &[(&str, &str)] = &[
    ("preferences", "DELETE FROM reco.preferences WHERE customer_id = $1 RETURNING 1"),
    ("preference_revocations", "DELETE FROM reco.preference_revocations WHERE customer_id = $1 RETURNING 1"),
    ("events", "DELETE FROM reco.events WHERE customer_id = $1 RETURNING 1"),
    ("customer_vectors", "DELETE FROM reco.customer_vectors WHERE customer_id = $1 RETURNING 1"),
    ("recommendations", "DELETE FROM reco.recommendations WHERE customer_id = $1 RETURNING 1"),
    ("orders_anonymized", "UPDATE reco.orders SET customer_id = NULL, email = NULL, updated_at = pg_catalog.now() WHERE customer_id = $1 RETURNING 1"),
    ("customers", "DELETE FROM reco.customers WHERE customer_id = $1 RETURNING 1"),
];
