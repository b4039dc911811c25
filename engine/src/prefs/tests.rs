use super::*;
use crate::standardize::time;

fn t(s: &str) -> DateTime<Utc> {
    time::parse(s, chrono_tz::Tz::UTC, time::EpochUnit::Auto).unwrap()
}

fn row(cat: &str, v: &str, source: &str, explicit: bool, conf: f64, at: &str) -> LedgerRow {
    LedgerRow { category: cat.into(), value: json!(v), source: source.into(), explicit, confidence: conf, observed_at: t(at) }
}

fn pick(rows: &[LedgerRow], ctx: Option<&Value>) -> Option<Resolved> {
    let refs: Vec<&LedgerRow> = rows.iter().collect();
    resolve_category(&refs, &Policy::default(), ctx, t("2025-01-01"))
}

#[test]
fn explicit_beats_inferred_even_when_inferred_is_a_bit_newer() {
    let rows = [row("size_tops", "M", "checkout", true, 1.0, "2024-06-01"), row("size_tops", "L", "inferred_orders", false, 0.9, "2024-09-01")];
    let r = pick(&rows, None).unwrap();
    assert_eq!((r.value, r.source.as_str()), (json!("M"), "checkout"));
    assert_eq!(r.overrode, [json!("L")]);
    assert!(r.why.contains("explicit (checkout) beats inferred"));
}

#[test]
fn new_inferred_size_wins_after_the_ttl_with_enough_confidence() {
    // the customer's explicit M is two years old; they have kept L for months
    let rows = [row("size_tops", "M", "profile", true, 1.0, "2022-06-01"), row("size_tops", "L", "inferred_orders", false, 0.85, "2024-09-01")];
    let r = pick(&rows, None).unwrap();
    assert_eq!(r.value, json!("L"));
    assert!(r.why.contains("newer than the explicit value by more than 180 days"), "{}", r.why);
    // ... but not with low confidence
    let weak = [rows[0].clone(), row("size_tops", "L", "inferred_orders", false, 0.5, "2024-09-01")];
    assert_eq!(pick(&weak, None).unwrap().value, json!("M"));
}

#[test]
fn newer_beats_older_within_a_tier() {
    let rows = [row("size_tops", "S", "checkout", true, 1.0, "2024-01-01"), row("size_tops", "M", "survey", true, 1.0, "2024-03-01")];
    assert_eq!(pick(&rows, None).unwrap().value, json!("M"));
    let inferred = [row("color", "navy", "inferred_orders", false, 0.6, "2024-01-01"), row("color", "black", "inferred_browsing", false, 0.4, "2024-05-01")];
    assert_eq!(pick(&inferred, None).unwrap().value, json!("black"));
}

#[test]
fn equal_times_break_by_source_rank_then_value_whatever_the_row_order() {
    let a = row("color", "red", "survey", true, 1.0, "2024-03-01");
    let b = row("color", "blue", "checkout", true, 1.0, "2024-03-01");
    assert_eq!(pick(&[a.clone(), b.clone()], None).unwrap().value, json!("blue"));
    assert_eq!(pick(&[b, a], None).unwrap().value, json!("blue"));
    let c = row("color", "red", "checkout", true, 1.0, "2024-03-01");
    let d = row("color", "blue", "checkout", true, 1.0, "2024-03-01");
    assert_eq!(pick(&[c.clone(), d.clone()], None).unwrap().value, pick(&[d, c], None).unwrap().value);
}

#[test]
fn context_wins_for_the_request() {
    let rows = [row("color", "navy", "checkout", true, 1.0, "2024-03-01")];
    let r = pick(&rows, Some(&json!("red"))).unwrap();
    assert_eq!((r.value, r.source.as_str()), (json!("red"), "context"));
    assert_eq!(r.overrode, [json!("navy")]);
}

#[test]
fn no_rows_no_value_and_resolve_covers_all_categories() {
    assert!(pick(&[], None).is_none());
    let rows = vec![row("color", "navy", "checkout", true, 1.0, "2024-03-01"), row("brand", "Acme", "inferred_orders", false, 0.8, "2024-03-01")];
    let mut ctx = Map::new();
    ctx.insert("size_shoes".into(), json!("EU42"));
    let out = resolve(&rows, &|_| Policy::default(), &ctx, t("2025-01-01"));
    assert_eq!(out.keys().collect::<Vec<_>>(), ["brand", "color", "size_shoes"]);
    assert_eq!(out["brand"]["why"], json!("inferred (inferred_orders, confidence 0.80); no explicit value"));
    assert_eq!(out["color"]["observed_at"], json!("2024-03-01T00:00:00Z"));
}

#[test]
fn standardizing_values_by_type() {
    let shoes = ValueType::parse("size", Some("shoes"), &[]).unwrap();
    assert_eq!(standardize("size_shoes", &shoes, &json!("US 9")).unwrap(), json!("EU42"));
    assert_eq!(standardize("color", &ValueType::Color, &json!("Charcoal")).unwrap(), json!("grey"));
    let speed = ValueType::parse("enum", None, &["standard".into(), "express".into(), "same_day".into()]).unwrap();
    assert_eq!(standardize("delivery_speed", &speed, &json!("Same Day")).unwrap(), json!("same_day"));
    let e = standardize("delivery_speed", &speed, &json!("teleport")).unwrap_err();
    assert!(e.hint.unwrap().contains("express"));
    let pr = standardize("price_range", &ValueType::PriceRange, &json!({"min": "20", "max": 80.5, "currency": "eur"})).unwrap();
    assert_eq!(pr, json!({"min_minor": 2000, "max_minor": 8050, "currency": "EUR"}));
    assert!(standardize("price_range", &ValueType::PriceRange, &json!({"min": "90", "max": "10", "currency": "EUR"})).is_err());
    let e = standardize("size_tops", &ValueType::parse("size", Some("tops"), &[]).unwrap(), &json!("banana")).unwrap_err();
    assert!(e.message.starts_with("preference size_tops: size \"banana\""), "{}", e.message);
    assert!(ValueType::parse("mood", None, &[]).is_err());
}
