//! The standardizers on their own: pure, immutable functions.
use crate::error::OrRaise;
use crate::jsonb::{JsonbText, Payload};
use pgrx::prelude::*;
use reco_engine::normalize::{self, mapping::Mapping};
use reco_engine::standardize::{color, geo, money, size, time};

/// Normalizes an order payload of a built-in channel to the canonical order (jsonb).
#[pg_extern(immutable, strict, parallel_safe)]
fn normalize_order(channel: &str, payload: Payload) -> JsonbText {
    let value = payload.value().map_err(|e| e.context(format!("{channel} order"))).or_raise();
    JsonbText::of(&normalize::normalize_order(channel, &value, None).or_raise())
}

/// Normalizes with an explicit mapping (as built by `reco.channel_mapping(channel)`): a custom
/// channel, or overrides of a built-in one. A NULL mapping means none.
#[pg_extern(immutable, parallel_safe, name = "normalize_order")]
fn normalize_order_mapped(channel: Option<&str>, payload: Option<Payload>, mapping: Option<Payload>) -> JsonbText {
    let channel = super::required(channel, "channel", "pass a value: a channel name such as shopify or web");
    let payload = super::required(payload, "payload", "pass the channel's order payload as jsonb");
    let value = payload.value().map_err(|e| e.context(format!("{channel} order"))).or_raise();
    let m = mapping.map(|m| m.value().and_then(|v| Mapping::from_json(&v))).transpose().or_raise();
    JsonbText::of(&normalize::normalize_order(channel, &value, m.as_ref()).or_raise())
}

/// Checks one row of reco.channel_mappings (called by its trigger). A row without a channel or
/// field passes here: the table's NOT NULL constraints refuse it, naming the column (23502).
#[pg_extern(immutable, parallel_safe)]
fn _check_mapping_row(
    channel: Option<&str>,
    field: Option<&str>,
    path: Option<&str>,
    value: Option<Payload>,
    transform: Option<&str>,
    zone: Option<&str>,
) -> bool {
    let (Some(channel), Some(field)) = (channel, field) else { return true };
    normalize::channel_name(channel).or_raise();
    let v = value.map(Payload::value).transpose().or_raise();
    if v.as_ref().is_some_and(|v| v.is_array() || v.is_object()) {
        crate::error::raise(
            reco_engine::Error::invalid(format!("the constant of mapping field {field} must be a string, number or boolean"))
                .hint("use path for values found in the payload; value holds one scalar such as '\"EUR\"'"),
        );
    }
    normalize::mapping::validate_row(field, path, v.as_ref(), transform, zone).or_raise();
    true
}

/// ISO 8601 / RFC 3339 text, epoch seconds or milliseconds, or local time in `zone` → timestamptz.
#[pg_extern(immutable, strict, parallel_safe)]
fn standardize_timestamp(value: &str, zone: default!(&str, "'UTC'")) -> TimestampWithTimeZone {
    let tz = time::zone(zone).map_err(|e| e.at("zone")).or_raise();
    let t = time::parse(value, tz, time::EpochUnit::Auto).map_err(|e| e.at("value")).or_raise();
    super::timestamptz(time::to_pg_micros(&t))
}

/// An amount (decimal text) → exact integer minor units of `currency`.
#[pg_extern(immutable, strict, parallel_safe)]
fn standardize_money(amount: &str, currency: &str) -> i64 {
    let cur = money::currency(currency).map_err(|e| e.at("currency")).or_raise();
    money::parse_minor(amount, &cur).map_err(|e| e.at("amount")).or_raise()
}

/// Minor units back to an exact numeric amount of `currency` (1999, 'USD' → 19.99).
#[pg_extern(immutable, strict, parallel_safe)]
fn money_amount(minor: i64, currency: &str) -> pgrx::AnyNumeric {
    let cur = money::currency(currency).map_err(|e| e.at("currency")).or_raise();
    let text = money::format_minor(minor, cur.exponent);
    pgrx::AnyNumeric::try_from(text.as_str())
        .map_err(|_| reco_engine::Error::new(reco_engine::ErrorKind::OutOfRange, format!("amount {text} is out of range")))
        .or_raise()
}

/// An ISO 4217 code (any case) → the upper-case code, checked.
#[pg_extern(immutable, strict, parallel_safe)]
fn standardize_currency(code: &str) -> String {
    money::currency(code).or_raise().code
}

/// The number of minor-unit digits of a currency (USD 2, JPY 0, KWD 3).
#[pg_extern(immutable, strict, parallel_safe)]
fn currency_exponent(code: &str) -> i32 {
    money::currency(code).or_raise().exponent as i32
}

/// A size → its canonical code, for a garment family (tops, bottoms, shoes, any).
#[pg_extern(immutable, strict, parallel_safe)]
fn standardize_size(value: &str, family: default!(&str, "'any'")) -> String {
    let f = size::Family::parse(family).map_err(|e| e.at("family")).or_raise();
    size::standardize(value, f).or_raise()
}

/// A color name, shade or #hex → the canonical palette color.
#[pg_extern(immutable, strict, parallel_safe)]
fn standardize_color(value: &str) -> String {
    color::standardize(value).or_raise()
}

/// A country code or name → ISO 3166-1 alpha-2.
#[pg_extern(immutable, strict, parallel_safe)]
fn standardize_country(value: &str) -> String {
    geo::country(value).or_raise()
}
