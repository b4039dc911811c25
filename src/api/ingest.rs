//! Order ingestion: normalize, then upsert orders, lines, placeholder items, customers and
//! purchase events in a few set-based statements. Idempotent on (channel, external_id).
use super::timestamptz;
use crate::error::OrRaise;
use crate::jsonb::Payload;
use pgrx::datum::DatumWithOid;
use pgrx::prelude::*;
use pgrx::spi::SpiClient;
use reco_engine::normalize::{self, batch, mapping::Mapping, Order};
use reco_engine::Error;
use serde_json::Value;
use std::collections::HashSet;

/// The mapping rows of `channel`, if it has any.
pub(crate) fn channel_mapping(channel: &str) -> Option<Mapping> {
    let text: Option<String> = Spi::get_one_with_args("SELECT reco.channel_mapping($1)::pg_catalog.text", &[channel.into()]).or_raise();
    text.map(|t| reco_engine::json::parse(&t).and_then(|v| Mapping::from_json(&v)).or_raise())
}

fn ts(v: &[i64]) -> Vec<TimestampWithTimeZone> {
    v.iter().map(|m| timestamptz(*m)).collect()
}

#[derive(Default)]
pub(crate) struct Written {
    pub inserted: i64,
    pub updated: i64,
    pub unchanged: i64,
}

/// Writes deduplicated, sorted orders. Returns what happened to them.
/// A customer id that is personal data becomes its pseudonym, and the order's e-mail address
/// moves to the customer's identity columns (reco.orders keeps no address).
pub(crate) fn write_orders(client: &mut SpiClient<'_>, orders: &mut [Order]) -> Written {
    if orders.is_empty() {
        return Written::default();
    }
    // customers and orders (distributed) first, then new items (a reference table)
    crate::api::citus_one_connection_per_node();
    let mut px = super::privacy::Ingest::new(client);
    let active = px.active;
    for o in orders.iter_mut().filter(|_| active) {
        o.customer_id = px.map(&o.customer_id, &o.channel);
        if let Some(e) = o.email.take() {
            px.keep_email(&o.customer_id, &e);
        }
    }
    px.carry_tombstones(client);
    let orders: &[Order] = orders;
    let (cust, first_seen) = batch::customer_columns(orders);
    // forgotten customers (reco.forget_customer) are not created again: their orders are kept
    // for sales figures without customer or e-mail, and without purchase events
    let forgotten: Vec<String> = super::scope::ensure_customers(client, &cust, Some(&ts(&first_seen))).into_iter().collect();
    {
        let forgotten: std::collections::HashSet<&str> = forgotten.iter().map(String::as_str).collect();
        px.identities.retain(|i| !forgotten.contains(i.0.as_str()));
    }
    px.store(client);
    let mut it = batch::item_columns(orders);
    if crate::api::distributed() {
        // On Citus every insert into a reference table is a transaction on every node, even when
        // each row conflicts: the batch's known items (read from the local copy) are left out,
        // and a batch of known items writes nothing
        let known = crate::api::known_ids(client, "SELECT item_id FROM reco.items WHERE item_id = ANY($1::pg_catalog.text[])", &it.item_id);
        it.retain_unknown(&known);
    }
    if !it.item_id.is_empty() {
        crate::plans::update(
            client,
            // the anti-join skips the casts for known items; Citus cannot plan it (a correlated
            // subquery beside unnest) and gets the upsert alone
            if crate::api::distributed() {
                "INSERT INTO reco.items (item_id, group_id, title, price, currency, attributes)
             SELECT i, g, t, p::pg_catalog.numeric, c, a::pg_catalog.jsonb
             FROM unnest($1::pg_catalog.text[], $2::pg_catalog.text[], $3::pg_catalog.text[], $4::pg_catalog.text[], $5::pg_catalog.text[],
                         $6::pg_catalog.text[]) AS u(i, g, t, p, c, a)
             ON CONFLICT (item_id) DO NOTHING"
            } else {
                "INSERT INTO reco.items (item_id, group_id, title, price, currency, attributes)
             SELECT i, g, t, p::pg_catalog.numeric, c, a::pg_catalog.jsonb
             FROM unnest($1::pg_catalog.text[], $2::pg_catalog.text[], $3::pg_catalog.text[], $4::pg_catalog.text[], $5::pg_catalog.text[],
                         $6::pg_catalog.text[]) AS u(i, g, t, p, c, a)
             WHERE NOT EXISTS (SELECT 1 FROM reco.items x WHERE x.item_id = u.i)
             ON CONFLICT (item_id) DO NOTHING"
            },
            &[
                DatumWithOid::from(it.item_id),
                DatumWithOid::from(it.group_id),
                DatumWithOid::from(it.title),
                DatumWithOid::from(it.price),
                DatumWithOid::from(it.currency),
                DatumWithOid::from(it.attributes),
            ],
        )
        .or_raise();
    }
    let received = orders.len() as i64;
    let kept: Vec<Order>;
    let orders: &[Order] = if crate::api::distributed() {
        kept = changed_only(client, orders);
        &kept
    } else {
        orders
    };
    let c = batch::order_columns(orders);
    let rows = crate::plans::update(
        client,
        "INSERT INTO reco.orders AS o (order_id, channel, external_id, customer_id, placed_at, currency,
                 subtotal_minor, discount_minor, shipping_minor, tax_minor, total_minor, status, country, email, canonical_hash,
                 delivery_speed)
             SELECT u.o, u.ch, u.x, CASE WHEN u.c = ANY($17::pg_catalog.text[]) THEN NULL ELSE u.c END, u.t, u.cur,
                    u.sub, u.dis, u.shp, u.tax, u.tot, u.st, u.co, CASE WHEN u.c = ANY($17::pg_catalog.text[]) THEN NULL ELSE u.em END, u.h, u.ds
             FROM unnest($1::pg_catalog.text[], $2::pg_catalog.text[], $3::pg_catalog.text[], $4::pg_catalog.text[],
                 $5::pg_catalog.timestamptz[], $6::pg_catalog.text[], $7::pg_catalog.int8[], $8::pg_catalog.int8[], $9::pg_catalog.int8[],
                 $10::pg_catalog.int8[], $11::pg_catalog.int8[], $12::pg_catalog.text[], $13::pg_catalog.text[], $14::pg_catalog.text[],
                 $15::pg_catalog.int8[], $16::pg_catalog.text[]) AS u(o, ch, x, c, t, cur, sub, dis, shp, tax, tot, st, co, em, h, ds)
             ON CONFLICT ON CONSTRAINT orders_channel_external_id_key DO UPDATE SET
                 customer_id = excluded.customer_id, placed_at = excluded.placed_at, currency = excluded.currency,
                 subtotal_minor = excluded.subtotal_minor, discount_minor = excluded.discount_minor,
                 shipping_minor = excluded.shipping_minor, tax_minor = excluded.tax_minor, total_minor = excluded.total_minor,
                 status = excluded.status, country = excluded.country, email = excluded.email,
                 delivery_speed = excluded.delivery_speed,
                 canonical_hash = excluded.canonical_hash,
                 updated_at = excluded.ingested_at  -- now(), as a value: Citus takes no function here
             WHERE o.canonical_hash IS DISTINCT FROM excluded.canonical_hash
             RETURNING o.order_id, (o.xmax = 0) AS inserted",
        &[
            DatumWithOid::from(c.order_id),
            DatumWithOid::from(c.channel),
            DatumWithOid::from(c.external_id),
            DatumWithOid::from(c.customer_id),
            DatumWithOid::from(ts(&c.placed_at)),
            DatumWithOid::from(c.currency),
            DatumWithOid::from(c.subtotal),
            DatumWithOid::from(c.discount),
            DatumWithOid::from(c.shipping),
            DatumWithOid::from(c.tax),
            DatumWithOid::from(c.total),
            DatumWithOid::from(c.status),
            DatumWithOid::from(c.country),
            DatumWithOid::from(c.email),
            DatumWithOid::from(c.hash),
            DatumWithOid::from(c.delivery_speed),
            DatumWithOid::from(forgotten.clone()),
        ],
    )
    .or_raise();
    let mut changed: HashSet<String> = HashSet::new();
    let mut updated: Vec<String> = Vec::new();
    let mut w = Written::default();
    for row in rows {
        let id: Option<String> = row.get(1).or_raise();
        let inserted: Option<bool> = row.get(2).or_raise();
        let Some(id) = id else { continue };
        if inserted == Some(true) {
            w.inserted += 1;
        } else {
            w.updated += 1;
            updated.push(id.clone());
        }
        changed.insert(id);
    }
    w.unchanged = received - w.inserted - w.updated;
    if !updated.is_empty() {
        // an order that changed gets its lines and purchase events anew
        crate::plans::update(client, "DELETE FROM reco.order_lines WHERE order_id = ANY($1::pg_catalog.text[])", &[DatumWithOid::from(updated.clone())])
            .or_raise();
        crate::plans::update(
            client,
            "DELETE FROM reco.events WHERE order_id = ANY($1::pg_catalog.text[]) AND kind IN ('purchase', 'return')",
            &[DatumWithOid::from(updated)],
        )
        .or_raise();
    }
    if changed.is_empty() {
        return w;
    }
    let l = batch::line_columns(orders, &changed);
    crate::plans::update(
        client,
        "INSERT INTO reco.order_lines (order_id, line_no, item_id, qty, unit_price_minor, discount_minor, size, color)
             SELECT * FROM unnest($1::pg_catalog.text[], $2::pg_catalog.int4[], $3::pg_catalog.text[], $4::pg_catalog.int4[],
                                  $5::pg_catalog.int8[], $6::pg_catalog.int8[], $7::pg_catalog.text[], $8::pg_catalog.text[])",
        &[
            DatumWithOid::from(l.order_id),
            DatumWithOid::from(l.line_no),
            DatumWithOid::from(l.item_id),
            DatumWithOid::from(l.qty),
            DatumWithOid::from(l.unit_price),
            DatumWithOid::from(l.discount),
            DatumWithOid::from(l.size),
            DatumWithOid::from(l.color),
        ],
    )
    .or_raise();
    let p = batch::purchase_columns(orders, &changed);
    if !p.order_id.is_empty() {
        // with shard_key (= the customer) where the installed SQL has it
        crate::plans::update(
            client,
            if crate::api::has_shard_key() {
                "INSERT INTO reco.events (customer_id, item_id, kind, value, channel, occurred_at, order_id, shard_key)
                 SELECT c, i, k, q, ch, t, o, c
                 FROM unnest($1::pg_catalog.text[], $2::pg_catalog.text[], $3::pg_catalog.float8[], $4::pg_catalog.text[],
                             $5::pg_catalog.timestamptz[], $6::pg_catalog.text[], $7::pg_catalog.text[]) AS u(c, i, q, ch, t, o, k)
                 WHERE NOT (c = ANY($8::pg_catalog.text[]))"
            } else {
                "INSERT INTO reco.events (customer_id, item_id, kind, value, channel, occurred_at, order_id)
                 SELECT c, i, k, q, ch, t, o
                 FROM unnest($1::pg_catalog.text[], $2::pg_catalog.text[], $3::pg_catalog.float8[], $4::pg_catalog.text[],
                             $5::pg_catalog.timestamptz[], $6::pg_catalog.text[], $7::pg_catalog.text[]) AS u(c, i, q, ch, t, o, k)
                 WHERE NOT (c = ANY($8::pg_catalog.text[]))"
            },
            &[
                DatumWithOid::from(p.customer_id),
                DatumWithOid::from(p.item_id),
                DatumWithOid::from(p.qty),
                DatumWithOid::from(p.channel),
                DatumWithOid::from(ts(&p.occurred_at)),
                DatumWithOid::from(p.order_id),
                DatumWithOid::from(p.kind),
                DatumWithOid::from(forgotten),
            ],
        )
        .or_raise();
    }
    w
}

/// Dead letters: each payload that could not be ingested, with its reason.
pub(crate) fn write_errors(client: &mut SpiClient<'_>, channel: &str, entity: &str, failed: Vec<(String, Error)>) {
    if failed.is_empty() {
        return;
    }
    let mut payload = Vec::with_capacity(failed.len());
    let (mut state, mut msg, mut path, mut hint) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (p, e) in failed {
        payload.push(p);
        state.push(e.sqlstate().to_string());
        msg.push(e.message);
        path.push(e.path);
        hint.push(e.hint);
    }
    crate::plans::update(client, "INSERT INTO reco.ingest_errors (channel, entity, payload, sqlstate, message, json_path, hint)
             SELECT $1, $2, p::pg_catalog.jsonb, s, m, jp, h
               FROM unnest($3::pg_catalog.text[], $4::pg_catalog.text[], $5::pg_catalog.text[], $6::pg_catalog.text[], $7::pg_catalog.text[]) AS u(p, s, m, jp, h)", &[
                DatumWithOid::from(channel),
                DatumWithOid::from(entity),
                DatumWithOid::from(payload),
                DatumWithOid::from(state),
                DatumWithOid::from(msg),
                DatumWithOid::from(path),
                DatumWithOid::from(hint),
            ],
        )
        .or_raise();
}

/// An order placed at a time pg_reco can weigh: from 1970 on, not in the future.
fn dated(order: reco_engine::Result<Order>, now: chrono::DateTime<chrono::Utc>) -> reco_engine::Result<Order> {
    let o = order?;
    reco_engine::standardize::time::check_activity(&o.placed_at, &now, "placed_at").map_err(|e| e.context(format!("order {}", o.order_id)))?;
    Ok(o)
}

/// Normalizes each payload of a batch; the ones that fail come back as dead letters (their
/// text and the reason).
pub(crate) fn split_batch<T>(elements: Vec<Value>, f: impl Fn(&Value) -> reco_engine::Result<T>) -> (Vec<T>, Vec<(String, Error)>) {
    let mut ok = Vec::with_capacity(elements.len());
    let mut failed = Vec::new();
    for v in elements {
        match f(&v) {
            Ok(x) => ok.push(x),
            Err(e) => failed.push((v.to_string(), e)),
        }
    }
    (ok, failed)
}

/// The elements of a batch: a JSON array, or a single payload.
pub(crate) fn batch_elements(payloads: Payload, what: &str) -> Vec<Value> {
    match payloads.value().map_err(|e| e.context(format!("{what} batch"))).or_raise() {
        Value::Array(a) => a,
        other => vec![other],
    }
}

/// Normalizes and stores one order; returns its order_id. Emits a `purchase` event per line
/// (and a `return` event per line when the order is refunded; none when cancelled). Replaying a payload changes nothing;
/// a changed payload for the same (channel, external_id) replaces the order and its lines.
/// Bad input raises an error (nothing is written).
#[pg_extern(volatile, strict, security_definer)]
#[search_path(pg_catalog, reco, pg_temp)]
fn ingest_order(channel: &str, payload: Payload) -> String {
    let value = payload.value().map_err(|e| e.context(format!("{channel} order"))).or_raise();
    let mapping = channel_mapping(channel);
    let mut order = dated(normalize::normalize_order(channel, &value, mapping.as_ref()), super::transaction_start()).or_raise();
    let id = order.order_id.clone();
    Spi::connect_mut(|client| write_orders(client, std::slice::from_mut(&mut order)));
    id
}

/// Ingests a JSON array of order payloads. Valid ones land; each bad one goes to
/// reco.ingest_errors with its reason. `unchanged` counts replays and payloads superseded by a
/// later one for the same order in the batch.
#[pg_extern(volatile, strict, security_definer)]
#[search_path(pg_catalog, reco, pg_temp)]
fn ingest_orders(
    channel: &str,
    payloads: Payload,
) -> TableIterator<'static, (name!(received, i64), name!(inserted, i64), name!(updated, i64), name!(unchanged, i64), name!(failed, i64))> {
    let elements = batch_elements(payloads, &format!("{channel} order"));
    let received = elements.len() as i64;
    let mapping = channel_mapping(channel);
    let now = super::transaction_start();
    let (ok, failed) = split_batch(elements, |v| dated(normalize::normalize_order(channel, v, mapping.as_ref()), now));
    let (mut orders, superseded) = batch::dedupe_last(ok);
    let n_failed = failed.len() as i64;
    let w = Spi::connect_mut(|client| {
        write_errors(client, channel, "order", failed);
        write_orders(client, &mut orders)
    });
    TableIterator::once((received, w.inserted, w.updated, w.unchanged + superseded as i64, n_failed))
}

/// On Citus (docs/citus.md): the orders of the batch that are new or changed. Citus fails an
/// upsert whose `DO UPDATE ... WHERE` skips a row (SPI's tuple count check), so unchanged
/// orders are left out before it, under a lock per order id that concurrent ingests of the
/// same orders take in the same order: the upsert's WHERE then never skips a row.
fn changed_only(client: &mut SpiClient<'_>, orders: &[Order]) -> Vec<Order> {
    let ids: Vec<String> = orders.iter().map(|o| o.order_id.clone()).collect();
    crate::plans::update(
        client,
        "SELECT pg_catalog.pg_advisory_xact_lock(1919247216, pg_catalog.hashtext(u.id))
           FROM (SELECT DISTINCT id FROM unnest($1::pg_catalog.text[]) AS x(id) ORDER BY 1) u",
        &[DatumWithOid::from(ids.clone())],
    )
    .or_raise();
    let known: std::collections::HashMap<String, i64> = crate::plans::update(
        client,
        "SELECT order_id, canonical_hash FROM reco.orders WHERE order_id = ANY($1::pg_catalog.text[])",
        &[DatumWithOid::from(ids)],
    )
    .or_raise()
    .filter_map(|r| Some((r.get::<String>(1).or_raise()?, r.get::<i64>(2).or_raise()?)))
    .collect();
    orders.iter().filter(|o| known.get(&o.order_id) != Some(&batch::canonical_hash(o))).cloned().collect()
}
