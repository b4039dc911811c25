//! Notifications: template checks, the quiet-hours send time, and rendering a candidate with
//! live price and stock. Triggers, candidates and the queue are SQL (sql/notify.sql).
use crate::error::{raise, OrRaise};
use crate::{gucs, plans};
use pgrx::datum::DatumWithOid;
use pgrx::prelude::*;
use reco_engine::budget::Outcome;
use reco_engine::notify::send_time::Profile;
use reco_engine::notify::template::{self, Compiled, Context, Customer, Limits, Parts, Trigger};
use reco_engine::notify::{link, message_items, send_time, LiveItem};
use reco_engine::standardize::time::{from_pg_micros, to_pg_micros};
use reco_engine::Error;
use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;

/// Checks a template (reco.email_templates' insert and update trigger): raises 42601 for a
/// syntax error and 42704 for an unknown variable, with the part, line and column; 54000 when a
/// part is too long or its sample render runs away.
/// A NULL name, subject or text body is left to the table's NOT NULL constraints (23502), which
/// PostgreSQL checks after this BEFORE trigger.
#[pg_extern(immutable, parallel_safe)]
fn _check_template(name: Option<&str>, subject: Option<&str>, html_body: Option<&str>, text_body: Option<&str>) -> bool {
    if let (Some(name), Some(subject), Some(text)) = (name, subject, text_body) {
        compile_budgeted(name, subject, html_body, text).or_raise();
    }
    true
}

/// Runs a template's compile or render under its memory budget (`Limits::max_memory`, see
/// reco_engine::budget) on the backend's render worker, a thread that never takes PostgreSQL's
/// signals, and waits for it with interrupts checked. Over the budget is 54000; the stopped
/// worker is left asleep with what it holds (at most the budget) until the backend exits, and
/// the next render starts another.
fn budgeted<R: Send + 'static>(name: &str, f: impl FnOnce() -> reco_engine::Result<R> + Send + 'static) -> reco_engine::Result<R> {
    let limits = Limits::default();
    let spawn = |job: reco_engine::budget::Job| super::signals_blocked(|| std::thread::Builder::new().name("pg_reco render".into()).spawn(job).map(|_| ()));
    match reco_engine::budget::run(limits.max_memory, f, spawn, || {
        pg_sys::check_for_interrupts!();
    }) {
        Ok((Outcome::Done(r), _)) => r,
        Ok((Outcome::Exceeded, _)) => Err(template::over_budget(name, &limits)),
        Ok((Outcome::Panicked(why), _)) => crate::error::internal(format!("template {name}: the render failed: {why}")),
        Err(e) => Err(Error::new(reco_engine::ErrorKind::LimitExceeded, format!("could not start a thread to render template {name}: {e}"))
            .hint("the server is out of threads or memory; try again later")),
    }
}

/// Runs a render whose memory is bounded (`Compiled::memory_bound`) on the backend's own
/// thread: the hand-off to the worker and back would cost more than the render. Fuel bounds its
/// time; a panic is reported as the worker reports it.
fn inline<R>(name: &str, f: impl FnOnce() -> reco_engine::Result<R>) -> reco_engine::Result<R> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(p) => crate::error::internal(format!("template {name}: the render failed: {}", reco_engine::budget::panic_message(p.as_ref()))),
    }
}

/// Compiles (and so validates: a sample render) a template under its memory budget. Not on the
/// backend's thread: compiling folds constant expressions, and `('x' * 50000000) ~ …` is one.
fn compile_budgeted(name: &str, subject: &str, html: Option<&str>, text: &str) -> reco_engine::Result<Arc<Compiled>> {
    let (n, subject, html, text) = (name.to_string(), subject.to_string(), html.map(str::to_string), text.to_string());
    budgeted(name, move || template::compile(&n, Parts { subject: &subject, html: html.as_deref(), text: &text }, Limits::default()).map(Arc::new))
}

/// Renders on the backend's own thread when the template's memory bound for `ctx` is within the
/// budget (the usual template: loops, conditions, look-ups), else on the budgeted worker.
fn render_budgeted(name: &str, compiled: &Arc<Compiled>, ctx: Context) -> reco_engine::Result<template::Rendered> {
    if compiled.memory_bound(&ctx).is_some_and(|b| b <= Limits::default().max_memory) {
        inline(name, || compiled.render(name, &ctx))
    } else {
        let (c, n) = (compiled.clone(), name.to_string());
        budgeted(name, move || c.render(&n, &ctx))
    }
}

/// The first instant at or after `at` outside the quiet hours [quiet_start, quiet_end) in the
/// customer's time zone. `fallback` (the channel's zone, which must be valid) stands in when the
/// customer has none or one that is not an IANA name: one customer's bad row does not stop a
/// run for everybody.
#[pg_extern(stable, parallel_safe)]
fn _send_after(
    at: Option<TimestampWithTimeZone>,
    timezone: Option<&str>,
    fallback: Option<&str>,
    quiet_start: Option<i32>,
    quiet_end: Option<i32>,
) -> TimestampWithTimeZone {
    const HINT: &str = "every argument but the customer's time zone is required";
    let (at, fallback) = (super::required(at, "at", HINT), super::required(fallback, "fallback", HINT));
    let (quiet_start, quiet_end) = (super::required(quiet_start, "quiet_start", HINT), super::required(quiet_end, "quiet_end", HINT));
    let fallback_tz = send_time::zone(None, fallback).or_raise();
    let tz = send_time::zone(timezone, fallback).unwrap_or(fallback_tz);
    let hours = send_time::check_quiet(quiet_start, quiet_end).or_raise();
    let out = send_time::outside_quiet(from_pg_micros(at.into_inner()), tz, hours);
    super::timestamptz(to_pg_micros(&out))
}

thread_local! {
    /// Compiled templates by id, with the row version (xmin) they were compiled from.
    static TEMPLATES: RefCell<HashMap<i64, (String, Arc<Compiled>)>> = RefCell::new(HashMap::new());
    /// The population's engagement profile, with the hour and fallback zone it was read for.
    static POPULATION: RefCell<Option<(i64, String, Profile)>> = const { RefCell::new(None) };
}

/// Days of e-mail engagement a customer's profile, and the population's, are read from.
const CUSTOMER_DAYS: i32 = 365;
const POPULATION_DAYS: i32 = 90;

/// The population's profile at `at`: every customer's e-mail opens and clicks of the last 90
/// days (machine opens left out), each in its customer's zone. Read once per hour per backend.
fn population(c: &pgrx::spi::SpiClient<'_>, at: chrono::DateTime<chrono::Utc>, fallback: &str) -> Profile {
    let hour = at.timestamp().div_euclid(3600);
    if let Some(p) = POPULATION.with(|p| p.borrow().as_ref().filter(|(h, f, _)| *h == hour && f == fallback).map(|(_, _, p)| *p)) {
        return p;
    }
    let fallback_tz = send_time::zone(None, fallback).or_raise();
    macro_rules! population_sql {
        ($join:literal) => {
            concat!(
                "SELECT coalesce(cu.timezone, ''), date_trunc('hour', e.occurred_at), sum(CASE WHEN e.kind = 'email_click' THEN 3 ELSE 1 END)::float8
                 FROM reco.events e LEFT JOIN reco.customers cu ON cu.customer_id = ",
                $join,
                "
                 WHERE e.kind IN ('email_open', 'email_click') AND e.occurred_at > $1 - make_interval(days => $2) AND e.occurred_at <= $1
                   AND coalesce(e.context->>'machine_open', '') <> 'true'
                 GROUP BY 1, 2"
            )
        };
    }
    // On Citus the join is on the distribution columns (a customer's events have their id as
    // shard_key; an anonymous session's match no customer either way), so each shard pair joins
    // on its worker.
    let rows = plans::select(
        c,
        if crate::api::distributed() { population_sql!("e.shard_key") } else { population_sql!("e.customer_id") },
        &[DatumWithOid::from(super::timestamptz(to_pg_micros(&at))), DatumWithOid::from(POPULATION_DAYS)],
    )
    .or_raise();
    let mut p = [0.0; send_time::SLOTS];
    for r in rows {
        let zone: String = r.get(1).or_raise().unwrap_or_default();
        let Some(t) = r.get::<TimestampWithTimeZone>(2).or_raise() else { continue };
        let w: f64 = r.get(3).or_raise().unwrap_or(0.0);
        let tz = send_time::zone(Some(&zone), fallback).unwrap_or(fallback_tz);
        p[send_time::slot(from_pg_micros(t.into_inner()).with_timezone(&tz).naive_local())] += w;
    }
    POPULATION.with(|x| *x.borrow_mut() = Some((hour, fallback.to_string(), p)));
    p
}

/// The best time to send a customer a message on a channel: from `after`, within the next
/// `within_hours` (1 to 168), the hour the customer engages most, outside the channel's quiet
/// hours in the customer's time zone. The customer's 168-slot (hour-of-week) profile of e-mail
/// opens and clicks (a click weighs 3; opens flagged `"machine_open": true` in the event's
/// context are left out) is shrunk toward the population's, so a customer with three opens is
/// not ruled by them; with no history it is the population's best hour. A share `explore` of
/// choices (deterministic per customer and day) takes another allowed hour, so the profile keeps
/// learning; there is nothing to explore while nobody has engaged yet.
#[pg_extern(stable)]
fn best_send_time(
    customer_id: Option<&str>,
    after: default!(Option<TimestampWithTimeZone>, "now()"),
    channel: default!(Option<&str>, "'email'"),
    within_hours: default!(Option<i32>, 24),
    explore: default!(Option<f64>, 0.1),
) -> TimestampWithTimeZone {
    let customer_id = super::required(customer_id, "customer_id", "pass the customer the message is for");
    let customer_id = &*super::privacy::customer_id(customer_id);
    let after = super::required(after, "after", "leave after out to use the transaction's time");
    let channel = super::required(channel, "channel", "email, push or in_app");
    let within = within_hours.unwrap_or(24);
    if !(1..=send_time::SLOTS as i32).contains(&within) {
        raise(
            Error::invalid(format!("within_hours is {within}, not 1 to 168"))
                .hint("how far ahead to look for the best hour: 24 for a reminder, 168 for a campaign"),
        );
    }
    let explore = explore.unwrap_or(0.1);
    if !(0.0..=1.0).contains(&explore) {
        raise(Error::invalid(format!("explore is {explore}, not a share from 0 to 1")).hint("the share of choices that try another hour, e.g. 0.1"));
    }
    let at = from_pg_micros(after.into_inner());
    Spi::connect(|c| {
        let ch = plans::select(
            c,
            "SELECT x.default_timezone, x.quiet_start, x.quiet_end, cu.timezone
             FROM reco.notification_channels x LEFT JOIN reco.customers cu ON cu.customer_id = $2 WHERE x.channel = $1",
            &[DatumWithOid::from(channel), DatumWithOid::from(customer_id)],
        )
        .or_raise();
        let Some(r) = ch.into_iter().next() else {
            raise(
                Error::new(
                    reco_engine::ErrorKind::UndefinedObject,
                    format!("channel {} is not in reco.notification_channels", reco_engine::error::show(channel)),
                )
                .hint("channels are email, push or in_app"),
            )
        };
        let fallback: String = r.get(1).or_raise().unwrap_or_else(|| "UTC".into());
        let quiet = send_time::check_quiet(r.get(2).or_raise().unwrap_or(0), r.get(3).or_raise().unwrap_or(0)).or_raise();
        let customer_zone: Option<String> = r.get(4).or_raise();
        let tz = send_time::zone(customer_zone.as_deref(), &fallback).or_else(|_| send_time::zone(None, &fallback)).or_raise();
        macro_rules! own_sql {
            ($shard:literal) => {
                concat!(
                    "SELECT e.occurred_at, e.kind = 'email_click' FROM reco.events e
                     WHERE e.customer_id = $1 AND e.kind IN ('email_open', 'email_click') AND e.occurred_at > $2 - make_interval(days => $3)
                       AND e.occurred_at <= $2 AND coalesce(e.context->>'machine_open', '') <> 'true'",
                    $shard,
                    "
                     ORDER BY e.occurred_at DESC LIMIT 1000"
                )
            };
        }
        // on Citus, the customer's own shard of the events (docs/citus.md)
        let rows = plans::select(
            c,
            if crate::api::distributed() { own_sql!(" AND e.shard_key = $1") } else { own_sql!("") },
            &[DatumWithOid::from(customer_id), DatumWithOid::from(after), DatumWithOid::from(CUSTOMER_DAYS)],
        )
        .or_raise();
        let mut own = Vec::with_capacity(rows.len());
        for r in rows {
            if let Some(t) = r.get::<TimestampWithTimeZone>(1).or_raise() {
                own.push((send_time::slot(from_pg_micros(t.into_inner()).with_timezone(&tz).naive_local()), r.get::<bool>(2).or_raise().unwrap_or(false)));
            }
        }
        let pop = population(c, at, &fallback);
        let scores = send_time::shrunk(&send_time::counts(own), &pop, send_time::PRIOR_EVENTS);
        let explore = if pop.iter().sum::<f64>() > 0.0 { explore } else { 0.0 };
        let day = at.with_timezone(&tz).date_naive();
        let draw = send_time::draw(customer_id, day);
        let best = send_time::best_time(at, tz, &scores, quiet, within as u32, explore, draw);
        super::timestamptz(to_pg_micros(&best))
    })
}

/// "Only N left" is shown at or below this many units.
const LOW_STOCK: i64 = 5;

/// subject, html_body, text_body, items, skipped, dropped_reason
type Row = (Option<String>, Option<String>, Option<String>, Vec<String>, i32, Option<String>);

fn dropped(reason: impl Into<String>) -> Row {
    (None, None, None, Vec::new(), 0, Some(reason.into()))
}

/// Renders a candidate for one channel (default: its trigger's first) with the live catalogue:
/// price from the item's row in exact minor units, availability from stock, links carrying
/// the rec_id. Items out of stock since selection are replaced by the candidate's spares; when
/// none is left, or the candidate is gone (forgotten customer, deleted trigger) or has no
/// template, the row has no text and says why in dropped_reason.
// pgrx reads the column names from the spelled-out return type, so it cannot be an alias
#[allow(clippy::type_complexity)]
#[pg_extern(stable)]
fn render(
    candidate_id: Option<i64>,
    channel: default!(Option<&str>, "NULL"),
    now: default!(Option<TimestampWithTimeZone>, "now()"),
) -> TableIterator<
    'static,
    (
        name!(subject, Option<String>),
        name!(html_body, Option<String>),
        name!(text_body, Option<String>),
        name!(items, Vec<String>),
        name!(skipped, i32),
        name!(dropped_reason, Option<String>),
    ),
> {
    let candidate_id = super::required(candidate_id, "candidate_id", "pass a candidate_id from reco.email_candidates or a queue message");
    let now = super::required(now, "now", "leave now out to use the transaction's time");
    // (the statement has a row for every id it is given)
    let row = render_chunk(&[Some(candidate_id)], channel, now).pop().unwrap_or_else(|| dropped("the candidate no longer exists"));
    TableIterator::once(row)
}

/// Candidates a batch render reads in one statement: the rows it holds at once are bounded
/// (about 700 bytes for each of a candidate's items with its spares).
const RENDER_CHUNK: usize = 256;

/// Renders candidates as `reco.render` does, one row per id in the array's order, reading them
/// 256 at a time in one statement each: what a worker calls for the messages of a read. Most of
/// a single render's time is starting its statement; here a statement serves many.
#[allow(clippy::type_complexity)]
#[pg_extern(stable)]
fn render_batch(
    candidate_ids: Option<Vec<Option<i64>>>,
    channel: default!(Option<&str>, "NULL"),
    now: default!(Option<TimestampWithTimeZone>, "now()"),
) -> TableIterator<
    'static,
    (
        name!(candidate_id, Option<i64>),
        name!(subject, Option<String>),
        name!(html_body, Option<String>),
        name!(text_body, Option<String>),
        name!(items, Vec<String>),
        name!(skipped, i32),
        name!(dropped_reason, Option<String>),
    ),
> {
    let ids = super::required(
        candidate_ids,
        "candidate_ids",
        "pass the candidate ids of a read's messages, e.g. ARRAY(SELECT (message->>'candidate_id')::bigint ...)",
    );
    let now = super::required(now, "now", "leave now out to use the transaction's time");
    let channel = channel.map(str::to_string);
    // chunk by chunk as rows are asked for: the rendered text held is one chunk's
    let mut ids = ids.into_iter();
    let mut ready = Vec::<(Option<i64>, Row)>::new().into_iter();
    TableIterator::new(std::iter::from_fn(move || loop {
        if let Some((id, (subject, html, text, items, skipped, why))) = ready.next() {
            return Some((id, subject, html, text, items, skipped, why));
        }
        let chunk: Vec<Option<i64>> = ids.by_ref().take(RENDER_CHUNK).collect();
        if chunk.is_empty() {
            return None;
        }
        let rows = render_chunk(&chunk, channel.as_deref(), now);
        ready = chunk.into_iter().zip(rows).collect::<Vec<_>>().into_iter();
    }))
}

/// One row per id, in order: the candidates, their triggers, customers and templates, and their
/// items with live price and stock, in one statement (a NULL id or a missing candidate is a row
/// of NULLs, rendered as dropped).
fn render_chunk(ids: &[Option<i64>], channel: Option<&str>, now: TimestampWithTimeZone) -> Vec<Row> {
    Spi::connect(|c| {
        // one row per item (in the candidate's order) with its live price and stock; a candidate
        // without items, or none at all, one row of NULLs
        let rows = plans::select_generic(
            c,
            "SELECT q.o, u.id, i.title, i.brand, i.category, i.price::text, i.currency::text, coalesce(s.available, 0)::int8,
                        coalesce(s.backordered, false), coalesce(i.active, false),
                        coalesce(s.back_in_stock_at > $3 - make_interval(secs => $4 * 86400), false),
                        c.customer_id, c.trigger_name, t.kind, t.template, t.items, k.channel, c.reasons,
                        coalesce(c.rec_id, 0), c.style, coalesce(cu.name, cu.attributes->>'name', ''), coalesce(cu.timezone, ''),
                        k.locale, $2 IS NULL OR $2 = ANY (t.channels),
                        e.template_id, e.row_version, e.name || ' v' || e.version, e.link_base
                 FROM unnest($1::int8[]) WITH ORDINALITY q(id, o)
                 LEFT JOIN (reco.notification_candidates c JOIN reco.triggers t ON t.name = c.trigger_name) ON c.candidate_id = q.id
                 LEFT JOIN reco.customers cu ON cu.customer_id = c.customer_id
                 LEFT JOIN LATERAL (SELECT coalesce($2, t.channels[1]) AS channel, coalesce(cu.attributes->>'locale', 'en') AS locale,
                                           coalesce(c.style, '') AS style) k ON c.candidate_id IS NOT NULL
                 LEFT JOIN LATERAL (
                   SELECT e.*, e.xmin::text AS row_version FROM reco.email_templates e
                   WHERE e.name = t.template AND e.channel = k.channel AND e.active AND e.locale IN (k.locale, 'en') AND e.style IN (k.style, 'default')
                   ORDER BY e.locale = k.locale DESC, e.style = k.style DESC, e.version DESC LIMIT 1
                 ) e ON true
                 LEFT JOIN LATERAL unnest(c.items) WITH ORDINALITY u(id, n) ON true
                 LEFT JOIN reco.items i ON i.item_id = u.id LEFT JOIN reco.stock s ON s.item_id = u.id
                 ORDER BY q.o, u.n",
            &[DatumWithOid::from(ids.to_vec()), DatumWithOid::from(channel), DatumWithOid::from(now), DatumWithOid::from(gucs::BACK_IN_STOCK_DAYS.get())],
        )
        .or_raise();
        let mut out = Vec::with_capacity(ids.len());
        let mut rows = rows.into_iter().peekable();
        while let Some(first) = rows.next() {
            let o = first.get::<i64>(1).or_raise();
            let mut rest = Vec::new();
            while rows.peek().is_some_and(|r| r.get::<i64>(1).or_raise() == o) {
                rest.extend(rows.next());
            }
            // (one group of rows per id, in order: this group is id number out.len())
            out.push(if ids.get(out.len()).is_some_and(Option::is_none) { dropped("the candidate id is NULL") } else { render_one(c, &first, &rest) });
        }
        debug_assert_eq!(out.len(), ids.len());
        out
    })
}

/// Renders one candidate from its rows of render_chunk's statement (the first, then the rest).
fn render_one(c: &pgrx::spi::SpiClient<'_>, r: &pgrx::spi::SpiHeapTupleData<'_>, rest: &[pgrx::spi::SpiHeapTupleData<'_>]) -> Row {
    let text = |i: usize| -> String { r.get::<String>(i).or_raise().unwrap_or_default() };
    let Some(customer_id) = r.get::<String>(12).or_raise() else {
        return dropped("the candidate no longer exists (customer forgotten or trigger deleted)");
    };
    let trigger_name = text(13);
    let kind = text(14);
    let template_name = text(15);
    let k = r.get::<i32>(16).or_raise().unwrap_or(4).max(1) as usize;
    let channel = text(17);
    if !r.get::<bool>(24).or_raise().unwrap_or(false) {
        raise(
            Error::invalid(format!("channel {} is not one of trigger \"{trigger_name}\"'s channels", reco_engine::error::show(&channel)))
                .hint("render for a channel the trigger sends on, or leave channel out for its first"),
        );
    }
    let reasons: Vec<String> = r.get::<Vec<Option<String>>>(18).or_raise().unwrap_or_default().into_iter().map(Option::unwrap_or_default).collect();
    let rec_id = r.get::<i64>(19).or_raise().unwrap_or(0);
    let style = text(20);
    let customer = Customer { id: customer_id, name: text(21), timezone: text(22), locale: text(23) };

    // the template, found in the same statement
    let Some(template_id) = r.get::<i64>(25).or_raise() else {
        return dropped(format!("no active template \"{template_name}\" for channel {channel}"));
    };
    let version = r.get::<String>(26).or_raise().unwrap_or_default();
    let label = r.get::<String>(27).or_raise().unwrap_or_default();
    let link_base = r.get::<String>(28).or_raise().unwrap_or_default();
    let cached = TEMPLATES.with(|m| m.borrow().get(&template_id).filter(|(v, _)| *v == version).map(|(_, c)| c.clone()));
    let compiled = cached.unwrap_or_else(|| {
        // the bodies only when the template is compiled (the function is stable: the same
        // snapshot as the statement above, so the same row version)
        let t = plans::select(c, "SELECT subject, html_body, text_body FROM reco.email_templates WHERE template_id = $1", &[DatumWithOid::from(template_id)])
            .or_raise()
            .first();
        let subject = t.get::<String>(1).or_raise().unwrap_or_default();
        let html = t.get::<String>(2).or_raise();
        let text_body = t.get::<String>(3).or_raise().unwrap_or_default();
        let compiled = compile_budgeted(&label, &subject, html.as_deref(), &text_body).or_raise();
        TEMPLATES.with(|m| m.borrow_mut().insert(template_id, (version, compiled.clone())));
        compiled
    });

    // the items, live, from the first row on (a NULL id, an empty list's row or a NULL in the
    // list, is no item)
    let item = |r: &pgrx::spi::SpiHeapTupleData<'_>| -> Option<LiveItem> {
        Some(LiveItem {
            id: r.get::<String>(2).or_raise()?,
            title: r.get(3).or_raise(),
            brand: r.get(4).or_raise(),
            category: r.get(5).or_raise(),
            price: r.get(6).or_raise(),
            currency: r.get(7).or_raise(),
            available: r.get::<i64>(8).or_raise().unwrap_or(0),
            backordered: r.get::<bool>(9).or_raise().unwrap_or(false),
            active: r.get::<bool>(10).or_raise().unwrap_or(false),
            back_in_stock: r.get::<bool>(11).or_raise().unwrap_or(false),
        })
    };
    let live: Vec<LiveItem> = std::iter::once(r).chain(rest).filter_map(item).collect();
    let (shown, skipped) = match message_items(&live, &reasons, k, LOW_STOCK, &link_base, rec_id) {
        Ok(x) => x,
        Err(why) => return dropped(why),
    };
    let ids: Vec<String> = shown.iter().map(|i| i.id.clone()).collect();
    let ctx = Context { customer, items: shown, trigger: Trigger { name: trigger_name, kind }, style, rec_id, link: link(&link_base, None, rec_id) };
    let out = render_budgeted(&label, &compiled, ctx).unwrap_or_else(|e| {
        // a render stopped over its budget may have stopped inside the compiled template's
        // environment: compile it afresh next time
        TEMPLATES.with(|m| m.borrow_mut().remove(&template_id));
        crate::error::raise(e)
    });
    (Some(out.subject), out.html, Some(out.text), ids, skipped as i32, None)
}
