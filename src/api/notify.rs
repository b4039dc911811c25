//! Notifications: template checks, the quiet-hours send time, and rendering a candidate with
//! live price and stock. Triggers, candidates and the queue are SQL (sql/notify.sql).
use crate::error::{raise, OrRaise};
use crate::{gucs, plans};
use pgrx::datum::DatumWithOid;
use pgrx::prelude::*;
use reco_engine::notify::template::{self, Compiled, Context, Customer, Limits, Parts, Trigger};
use reco_engine::notify::{link, message_items, send_time, LiveItem};
use reco_engine::standardize::time::{from_pg_micros, to_pg_micros};
use reco_engine::Error;
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

/// Checks a template (reco.email_templates' insert and update trigger): raises 42601 for a
/// syntax error and 42704 for an unknown variable, with the part, line and column; 54000 when a
/// part is too long or its sample render runs away.
#[pg_extern(immutable, parallel_safe)]
fn _check_template(name: &str, subject: &str, html_body: Option<&str>, text_body: &str) -> bool {
    template::compile(name, Parts { subject, html: html_body, text: text_body }, Limits::default()).or_raise();
    true
}

/// The first instant at or after `at` outside the quiet hours [quiet_start, quiet_end) in the
/// customer's time zone. `fallback` (the channel's zone, which must be valid) stands in when the
/// customer has none or one that is not an IANA name: one customer's bad row does not stop a
/// run for everybody.
#[pg_extern(stable, parallel_safe)]
fn _send_after(at: TimestampWithTimeZone, timezone: Option<&str>, fallback: &str, quiet_start: i32, quiet_end: i32) -> TimestampWithTimeZone {
    let fallback_tz = send_time::zone(None, fallback).or_raise();
    let tz = send_time::zone(timezone, fallback).unwrap_or(fallback_tz);
    let hours = send_time::check_quiet(quiet_start, quiet_end).or_raise();
    let out = send_time::outside_quiet(from_pg_micros(at.into_inner()), tz, hours);
    super::timestamptz(to_pg_micros(&out))
}

thread_local! {
    /// Compiled templates by id, with the row version (xmin) they were compiled from.
    static TEMPLATES: RefCell<HashMap<i64, (String, Rc<Compiled>)>> = RefCell::new(HashMap::new());
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
    TableIterator::once(render_row(candidate_id, channel, now))
}

fn render_row(candidate_id: Option<i64>, channel: Option<&str>, now: Option<TimestampWithTimeZone>) -> Row {
    let candidate_id = candidate_id.unwrap_or_else(|| {
        raise(Error::new(reco_engine::ErrorKind::NullValue, "candidate_id is NULL").hint("pass a candidate_id from reco.email_candidates or a queue message"))
    });
    let now = now.unwrap_or_else(|| raise(Error::new(reco_engine::ErrorKind::NullValue, "now is NULL").hint("leave now out to use the transaction's time")));
    Spi::connect(|c| {
        let cand = plans::select(
            c,
            "SELECT c.customer_id, c.trigger_name, t.kind, t.template, t.items, coalesce($2, t.channels[1]), c.items, c.reasons,
                        coalesce(c.rec_id, 0), c.style, coalesce(cu.attributes->>'name', ''), coalesce(cu.timezone, ''),
                        coalesce(cu.attributes->>'locale', 'en'), $2 IS NULL OR $2 = ANY (t.channels)
                 FROM reco.notification_candidates c JOIN reco.triggers t ON t.name = c.trigger_name
                 LEFT JOIN reco.customers cu ON cu.customer_id = c.customer_id
                 WHERE c.candidate_id = $1",
            &[DatumWithOid::from(candidate_id), DatumWithOid::from(channel)],
        )
        .or_raise();
        let Some(r) = cand.into_iter().next() else {
            return dropped("the candidate no longer exists (customer forgotten or trigger deleted)");
        };
        let text = |i: usize| -> String { r.get::<String>(i).or_raise().unwrap_or_default() };
        let customer_id = text(1);
        let trigger_name = text(2);
        let kind = text(3);
        let template_name = text(4);
        let k = r.get::<i32>(5).or_raise().unwrap_or(4).max(1) as usize;
        let channel = text(6);
        if !r.get::<bool>(14).or_raise().unwrap_or(false) {
            raise(
                Error::invalid(format!("channel {} is not one of trigger \"{trigger_name}\"'s channels", reco_engine::error::show(&channel)))
                    .hint("render for a channel the trigger sends on, or leave channel out for its first"),
            );
        }
        let items: Vec<String> = r.get::<Vec<Option<String>>>(7).or_raise().unwrap_or_default().into_iter().flatten().collect();
        let reasons: Vec<String> = r.get::<Vec<Option<String>>>(8).or_raise().unwrap_or_default().into_iter().map(Option::unwrap_or_default).collect();
        let rec_id = r.get::<i64>(9).or_raise().unwrap_or(0);
        let style = text(10);
        let customer = Customer { id: customer_id, name: text(11), timezone: text(12), locale: text(13) };

        let tpl = plans::select(
            c,
            "SELECT template_id, xmin::text, name || ' v' || version, subject, html_body, text_body, link_base
                 FROM reco.email_templates
                 WHERE name = $1 AND channel = $2 AND active AND locale IN ($3, 'en') AND style IN ($4, 'default')
                 ORDER BY locale = $3 DESC, style = $4 DESC, version DESC LIMIT 1",
            &[
                DatumWithOid::from(template_name.as_str()),
                DatumWithOid::from(channel.as_str()),
                DatumWithOid::from(customer.locale.as_str()),
                DatumWithOid::from(style.as_str()),
            ],
        )
        .or_raise();
        let Some(t) = tpl.into_iter().next() else {
            return dropped(format!("no active template \"{template_name}\" for channel {channel}"));
        };
        let template_id = t.get::<i64>(1).or_raise().unwrap_or_default();
        let version = t.get::<String>(2).or_raise().unwrap_or_default();
        let label = t.get::<String>(3).or_raise().unwrap_or_default();
        let link_base = t.get::<String>(7).or_raise().unwrap_or_default();
        let cached = TEMPLATES.with(|m| m.borrow().get(&template_id).filter(|(v, _)| *v == version).map(|(_, c)| c.clone()));
        let compiled = cached.unwrap_or_else(|| {
            let subject = t.get::<String>(4).or_raise().unwrap_or_default();
            let html = t.get::<String>(5).or_raise();
            let text_body = t.get::<String>(6).or_raise().unwrap_or_default();
            let compiled =
                Rc::new(template::compile(&label, Parts { subject: &subject, html: html.as_deref(), text: &text_body }, Limits::default()).or_raise());
            TEMPLATES.with(|m| m.borrow_mut().insert(template_id, (version, compiled.clone())));
            compiled
        });

        let rows = plans::select(
            c,
            "SELECT u.id, i.title, i.brand, i.category, i.price::text, i.currency::text, coalesce(s.available, 0)::int8,
                        coalesce(s.backordered, false), coalesce(i.active, false),
                        coalesce(s.back_in_stock_at > $2 - make_interval(secs => $3 * 86400), false)
                 FROM unnest($1::text[]) WITH ORDINALITY u(id, n)
                 LEFT JOIN reco.items i ON i.item_id = u.id LEFT JOIN reco.stock s ON s.item_id = u.id
                 ORDER BY u.n",
            &[DatumWithOid::from(items), DatumWithOid::from(now), DatumWithOid::from(gucs::BACK_IN_STOCK_DAYS.get())],
        )
        .or_raise();
        let mut live = Vec::with_capacity(rows.len());
        for r in rows {
            live.push(LiveItem {
                id: r.get::<String>(1).or_raise().unwrap_or_default(),
                title: r.get(2).or_raise(),
                brand: r.get(3).or_raise(),
                category: r.get(4).or_raise(),
                price: r.get(5).or_raise(),
                currency: r.get(6).or_raise(),
                available: r.get::<i64>(7).or_raise().unwrap_or(0),
                backordered: r.get::<bool>(8).or_raise().unwrap_or(false),
                active: r.get::<bool>(9).or_raise().unwrap_or(false),
                back_in_stock: r.get::<bool>(10).or_raise().unwrap_or(false),
            });
        }
        let (shown, skipped) = match message_items(&live, &reasons, k, LOW_STOCK, &link_base, rec_id) {
            Ok(x) => x,
            Err(why) => return dropped(why),
        };
        let ids: Vec<String> = shown.iter().map(|i| i.id.clone()).collect();
        let ctx = Context { customer, items: shown, trigger: Trigger { name: trigger_name, kind }, style, rec_id, link: link(&link_base, None, rec_id) };
        let out = compiled.render(&label, &ctx).or_raise();
        (Some(out.subject), out.html, Some(out.text), ids, skipped as i32, None)
    })
}
