//! Resolving preferences: the ledger's rows by precedence (engine::prefs), with the context's
//! choices; and using them on items (filter, in-stock alternatives).
use super::*;

/// Rows and policies for one customer, as of `at` (rows observed by then and not revoked by
/// then), or now.
pub(super) fn load_rows(customer_id: &str, at: Option<TimestampWithTimeZone>) -> (Vec<LedgerRow>, Vec<(String, Policy)>) {
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
            out.push(LedgerRow {
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
pub(super) fn context_choices(context: &Map<String, Value>) -> Map<String, Value> {
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
        None => crate::api::transaction_start(),
    };
    let policy = |c: &str| policies.iter().find(|(n, _)| n == c).map(|(_, p)| p.clone()).unwrap_or_default();
    prefs::resolve(&rows, &policy, &ctx, now)
}

pub(super) fn context_arg(context: Option<Payload>) -> Map<String, Value> {
    Payload::object_arg(context, "context", r#"{"color": "red"}"#)
}

/// The customer's active preferences, one object per category: value, source, observed_at,
/// confidence, why (the rule that chose it) and overrode (the values it beat). `context` keys
/// that name a category are this request's choices and win; other keys are ignored, so a
/// recommendation context can be passed as is.
#[pg_extern(stable, parallel_safe)]
pub(super) fn resolve_preferences(customer_id: Option<&str>, context: default!(Option<Payload>, "'{}'")) -> JsonbText {
    let customer_id = readable_customer(crate::api::required(customer_id, "customer_id", "pass a value: the OMS customer id"));
    JsonbText::of(&resolved(&customer_id, &context_arg(context), None))
}

/// The preferences as they were resolved at time `at` (for reporting, e.g. utilization).
#[pg_extern(stable, strict, parallel_safe)]
pub(super) fn resolve_preferences_at(customer_id: &str, at: TimestampWithTimeZone) -> JsonbText {
    JsonbText::of(&resolved(customer_id, &Map::new(), Some(at)))
}

pub(super) fn item_facts(ids: &[String]) -> Vec<ItemFacts> {
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
pub(super) fn filter_by_preferences(customer_id: &str, item_ids: Vec<Option<String>>) -> SetOfIterator<'static, String> {
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
pub(super) fn alternatives(
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
        // no row (an unknown item) and a NULL group both mean: no variants
        let rows = c.select("SELECT group_id FROM reco.items WHERE item_id = $1", Some(1), &[DatumWithOid::from(item_id)]).or_raise();
        let group: Option<String> = rows.into_iter().next().and_then(|r| r.get::<String>(1).or_raise());
        let Some(g) = group.clone() else { return (None, Vec::new()) };
        let rows = crate::plans::select(
            c,
            "SELECT i.item_id, s.available FROM reco.items i JOIN reco.stock s USING (item_id)
                 WHERE i.group_id = $1 AND i.active AND s.available > 0 AND NOT s.backordered",
            &[DatumWithOid::from(g.as_str())],
        )
        .or_raise();
        let v = rows.filter_map(|row| Some((row.get::<String>(1).or_raise()?, row.get::<i32>(2).or_raise()?))).collect();
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
