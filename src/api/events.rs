//! Clickstream capture: record_event (typed arguments), normalize_event / ingest_event(s)
//! (channel payloads).
use super::ingest::{batch_elements, split_batch, write_errors};
use super::timestamptz;
use crate::error::OrRaise;
use crate::jsonb::{JsonbText, Payload};
use pgrx::datum::DatumWithOid;
use pgrx::prelude::*;
use pgrx::spi::SpiClient;
use reco_engine::normalize::event::{self, Event, Kind};
use reco_engine::standardize::time;

use super::transaction_start as now;

/// The statement both inserters share (one row per element of nine column arrays), with
/// `shard_key` where the installed SQL has it (`api::has_shard_key`).
macro_rules! insert_events_sql {
    () => {
        insert_events_sql!(", shard_key", ", coalesce(c, 's:' || s)")
    };
    (0.1) => {
        insert_events_sql!("", "")
    };
    ($col:literal, $val:literal) => {
        concat!(
            "INSERT INTO reco.events (customer_id, session_id, item_id, kind, value, channel, device, occurred_at, context",
            $col,
            ")
         SELECT c, s, i, k, v, ch, d, t, x::pg_catalog.jsonb",
            $val,
            "
         FROM unnest($1::pg_catalog.text[], $2::pg_catalog.text[], $3::pg_catalog.text[], $4::pg_catalog.text[], $5::pg_catalog.float8[],
                     $6::pg_catalog.text[], $7::pg_catalog.text[], $8::pg_catalog.timestamptz[], $9::pg_catalog.text[])
              AS u(c, s, i, k, v, ch, d, t, x)"
        )
    };
}

/// Inserts events (creating customers seen for the first time) and returns their event_ids.
/// Events of a forgotten customer (reco.forget_customer) are not stored: `forgotten` counts
/// them. Each customer row is locked until the transaction ends, so a concurrent forget either
/// waits for these events and deletes them, or wins and they are dropped here.
pub(crate) fn insert_events(client: &mut SpiClient<'_>, events: &[Event]) -> (Vec<i64>, usize) {
    if events.is_empty() {
        return (Vec::new(), 0);
    }
    // personal ids (an e-mail address as the customer id ...) become pseudonyms first
    let mut px = super::privacy::Ingest::new(client);
    let events: Vec<Event> = events
        .iter()
        .map(|e| {
            let mut e = e.clone();
            if let Some(c) = &e.customer_id {
                e.customer_id = Some(px.map(c, &e.channel));
            }
            e
        })
        .collect();
    px.carry_tombstones(client);
    let mut customers: Vec<String> = events.iter().filter_map(|e| e.customer_id.clone()).collect();
    customers.sort();
    customers.dedup();
    let forgotten = super::scope::ensure_customers(client, &customers, None);
    px.store(client);
    let n_all = events.len();
    let kept: Vec<Event> = events.into_iter().filter(|e| e.customer_id.as_ref().is_none_or(|c| !forgotten.contains(c))).collect();
    let n_forgotten = n_all - kept.len();
    if kept.is_empty() {
        return (Vec::new(), n_forgotten);
    }
    let sql = if crate::api::has_shard_key() {
        concat!(insert_events_sql!(), " RETURNING event_id")
    } else {
        concat!(insert_events_sql!(0.1), " RETURNING event_id")
    };
    let rows = crate::plans::update(client, sql, &event_columns(&kept)).or_raise();
    (rows.filter_map(|r| r.get::<i64>(1).or_raise()).collect(), n_forgotten)
}

/// Inserts one event; its id, or None when its customer was forgotten.
fn insert_one(ev: Event) -> Option<i64> {
    let (ids, forgotten) = Spi::connect_mut(|client| insert_events(client, &[ev]));
    (forgotten == 0).then(|| super::single_id(ids))
}

/// Inserts events whose customers exist already (the demo loader writes them first), without
/// returning ids; returns how many.
pub(crate) fn append_events(client: &mut SpiClient<'_>, events: &[Event]) -> usize {
    if !events.is_empty() {
        let sql = if crate::api::has_shard_key() { insert_events_sql!() } else { insert_events_sql!(0.1) };
        crate::plans::update(client, sql, &event_columns(events)).or_raise();
    }
    events.len()
}

/// The nine column arrays of `insert_events_sql!`.
fn event_columns(events: &[Event]) -> [DatumWithOid<'static>; 9] {
    let col = |f: fn(&Event) -> Option<String>| -> Vec<Option<String>> { events.iter().map(f).collect() };
    [
        DatumWithOid::from(col(|e| e.customer_id.clone())),
        DatumWithOid::from(col(|e| e.session_id.clone())),
        DatumWithOid::from(col(|e| e.item_id.clone())),
        DatumWithOid::from(events.iter().map(|e| e.kind.as_str().to_string()).collect::<Vec<_>>()),
        DatumWithOid::from(events.iter().map(|e| e.value).collect::<Vec<_>>()),
        DatumWithOid::from(events.iter().map(|e| e.channel.clone()).collect::<Vec<_>>()),
        DatumWithOid::from(col(|e| e.device.clone())),
        DatumWithOid::from(events.iter().map(|e| timestamptz(time::to_pg_micros(&e.occurred_at))).collect::<Vec<_>>()),
        DatumWithOid::from(events.iter().map(|e| serde_json::Value::Object(e.context.clone()).to_string()).collect::<Vec<_>>()),
    ]
}

/// Records one event from typed arguments; returns its event_id, or NULL when the customer was
/// forgotten (reco.forget_customer: nothing of theirs is stored again). A customer seen for the
/// first time is created. `value`: dwell seconds for views, quantity for cart and purchase
/// events, 0-5 for ratings.
#[allow(clippy::too_many_arguments)]
#[pg_extern(volatile, security_definer)]
#[search_path(pg_catalog, reco, pg_temp)]
fn record_event(
    customer_id: Option<&str>,
    item_id: Option<&str>,
    kind: Option<&str>,
    value: default!(Option<f64>, "NULL"),
    occurred_at: default!(Option<TimestampWithTimeZone>, "now()"),
    context: default!(Option<Payload>, "'{}'"),
    session_id: default!(Option<&str>, "NULL"),
    channel: default!(Option<&str>, "NULL"),
    device: default!(Option<&str>, "NULL"),
) -> Option<i64> {
    let kind = Kind::parse(super::required(kind, "kind", "pass a value: view, click, cart_add, purchase, rating ...")).map_err(|e| e.at("kind")).or_raise();
    let channel = reco_engine::normalize::channel_name(channel.unwrap_or("sql")).map_err(|e| e.at("channel")).or_raise();
    let context = Payload::object_arg(context, "context", r#"{"rec_id": "r1"}"#);
    let occurred = occurred_at.map_or_else(now, |t| time::from_pg_micros(t.into_inner()));
    let id = |s: Option<&str>, what: &str| -> Option<String> {
        let v = serde_json::Value::from(s?);
        reco_engine::json::Node::root(&v).id().map_err(|e| e.context(what.to_string())).or_raise()
    };
    let ev = event::check(
        Event {
            customer_id: id(customer_id, "customer_id"),
            session_id: id(session_id, "session_id"),
            item_id: id(item_id, "item_id"),
            kind,
            value,
            channel,
            device: device.map(event::device),
            occurred_at: occurred,
            context,
        },
        now(),
    )
    .or_raise();
    insert_one(ev)
}

/// Normalizes one event payload of a channel (no table access; `now` fills a missing time).
#[pg_extern(stable, strict, parallel_safe)]
fn normalize_event(channel: &str, payload: Payload) -> JsonbText {
    let v = payload.value().map_err(|e| e.context(format!("{channel} event"))).or_raise();
    JsonbText::of(&event::normalize_event(channel, &v, now()).or_raise())
}

/// Normalizes and stores one event payload; returns its event_id, or NULL when its customer
/// was forgotten.
#[pg_extern(volatile, strict, security_definer)]
#[search_path(pg_catalog, reco, pg_temp)]
fn ingest_event(channel: &str, payload: Payload) -> Option<i64> {
    let v = payload.value().map_err(|e| e.context(format!("{channel} event"))).or_raise();
    let ev = event::normalize_event(channel, &v, now()).or_raise();
    insert_one(ev)
}

/// Ingests a JSON array of event payloads; bad ones go to reco.ingest_errors. Events of
/// forgotten customers are counted in `forgotten` and not stored.
#[pg_extern(volatile, strict, security_definer)]
#[search_path(pg_catalog, reco, pg_temp)]
fn ingest_events(
    channel: &str,
    payloads: Payload,
) -> TableIterator<'static, (name!(received, i64), name!(inserted, i64), name!(failed, i64), name!(forgotten, i64))> {
    // on Citus, one connection (and one prepared transaction) per worker, not one per shard
    crate::api::citus_one_connection_per_node();
    let elements = batch_elements(payloads, &format!("{channel} event"));
    let received = elements.len() as i64;
    let t = now();
    let (ok, failed) = split_batch(elements, |v| event::normalize_event(channel, v, t));
    let n_failed = failed.len() as i64;
    let (ids, forgotten) = Spi::connect_mut(|client| {
        write_errors(client, channel, "event", failed);
        insert_events(client, &ok)
    });
    TableIterator::once((received, ids.len() as i64, n_failed, forgotten as i64))
}
