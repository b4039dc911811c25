//! Customer preferences: standardizing a captured value by its category's type, and resolving
//! a customer's ledger rows into one value per category by a documented precedence.
//!
//! Precedence, per category (each rule is tested below):
//! 1. a revoked category is absent (rows observed before the revocation do not count, and
//!    inferred rows never count after it; an explicit capture after it brings the category back);
//! 2. a value given in the request's `context` wins for that request;
//! 3. explicit beats inferred, unless the newest inferred row is newer than the newest explicit
//!    one by more than the category's `explicit_ttl` and has at least `min_confidence`;
//! 4. within a tier, newer beats older;
//! 5. equal timestamps break ties by source rank (lower rank wins), then by value, so the
//!    result never depends on row order.
pub mod fit;
pub mod infer;

use crate::error::{show, Error, Result};
use crate::standardize::{color, money, size};
use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use serde_json::{json, Map, Value};

/// What a category holds, and so how its values are standardized.
#[derive(Debug, Clone, PartialEq)]
pub enum ValueType {
    /// a size code for a garment family
    Size(size::Family),
    /// a palette color
    Color,
    /// free text, trimmed, at most 100 characters (brands)
    Text,
    /// one of a fixed list
    Enum(Vec<String>),
    /// {"min": "20", "max": "80", "currency": "EUR"} → minor units
    PriceRange,
}

impl ValueType {
    /// From the `value_type` (and `family` / `allowed_values`) columns of reco.preference_categories.
    pub fn parse(value_type: &str, family: Option<&str>, allowed: &[String]) -> Result<ValueType> {
        Ok(match value_type {
            "size" => ValueType::Size(size::Family::parse(family.unwrap_or("any"))?),
            "color" => ValueType::Color,
            "text" => ValueType::Text,
            "enum" if !allowed.is_empty() => ValueType::Enum(allowed.to_vec()),
            "enum" => return Err(Error::invalid("an enum category needs allowed_values").hint("set allowed_values to the accepted words")),
            "price_range" => ValueType::PriceRange,
            other => return Err(Error::invalid(format!("value type {} is not known", show(other))).hint("value types: size, color, text, enum, price_range")),
        })
    }
}

/// Standardizes a captured value for category `category` of type `t`.
pub fn standardize(category: &str, t: &ValueType, raw: &Value) -> Result<Value> {
    let text = || -> Result<&str> {
        match raw {
            Value::String(s) if !s.trim().is_empty() => Ok(s.trim()),
            _ => Err(Error::invalid(format!("preference {category} needs a text value, got {raw}")).hint("send the value as text, e.g. \"M\" or \"navy\"")),
        }
    };
    let ctx = |e: Error| e.context(format!("preference {category}"));
    Ok(match t {
        ValueType::Size(f) => json!(size::standardize(text()?, *f).map_err(ctx)?),
        ValueType::Color => json!(color::standardize(text()?).map_err(ctx)?),
        ValueType::Text => {
            let s = text()?;
            if s.chars().count() > 100 {
                return Err(Error::invalid(format!("preference {category}: {} is longer than 100 characters", show(s)))
                    .hint("text preferences such as brands are names of at most 100 characters"));
            }
            json!(s)
        }
        ValueType::Enum(allowed) => {
            let s = text()?.to_lowercase().replace([' ', '-'], "_");
            if !allowed.contains(&s) {
                return Err(Error::invalid(format!("preference {category}: {} is not one of the accepted values", show(text()?)))
                    .hint(format!("{category} accepts: {}", allowed.join(", "))));
            }
            json!(s)
        }
        ValueType::PriceRange => {
            let hint = "a price range is {\"min\": \"20.00\", \"max\": \"80.00\", \"currency\": \"EUR\"} (min or max may be left out)";
            let obj = raw.as_object().ok_or_else(|| Error::invalid(format!("preference {category} needs an object")).hint(hint))?;
            let cur =
                obj.get("currency").and_then(Value::as_str).ok_or_else(|| Error::invalid(format!("preference {category} needs a currency")).hint(hint))?;
            let cur = money::currency(cur).map_err(ctx)?;
            let bound = |k: &str| -> Result<Option<i64>> {
                match obj.get(k) {
                    None | Some(Value::Null) => Ok(None),
                    Some(Value::String(s)) => money::parse_minor(s, &cur).map(Some).map_err(ctx),
                    Some(Value::Number(n)) => money::parse_minor(n.as_str(), &cur).map(Some).map_err(ctx),
                    Some(other) => Err(Error::invalid(format!("preference {category}: {k} must be an amount, got {other}")).hint(hint)),
                }
            };
            let (min, max) = (bound("min")?, bound("max")?);
            if min.is_none() && max.is_none() {
                return Err(Error::invalid(format!("preference {category} needs min or max")).hint(hint));
            }
            if let (Some(a), Some(b)) = (min, max) {
                if a > b || a < 0 {
                    return Err(Error::invalid(format!("preference {category}: min {a} and max {b} do not make a range")).hint(hint));
                }
            }
            json!({"min_minor": min, "max_minor": max, "currency": cur.code})
        }
    })
}

/// One ledger row as resolution sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct LedgerRow {
    pub category: String,
    pub value: Value,
    pub source: String,
    pub explicit: bool,
    pub confidence: f64,
    pub observed_at: DateTime<Utc>,
}

/// The per-category policy (reco.preference_policy, with defaults).
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    /// how much newer an inferred value must be to beat an explicit one
    pub explicit_ttl: Duration,
    /// the confidence an inferred value needs for that
    pub min_confidence: f64,
}

impl Default for Policy {
    fn default() -> Self {
        Policy { explicit_ttl: Duration::days(180), min_confidence: 0.7 }
    }
}

/// Source ranks for ties at equal timestamps: lower wins. Unknown sources rank last.
pub const SOURCE_RANK: [&str; 7] = ["checkout", "profile", "kiosk", "survey", "inferred_orders", "inferred_returns", "inferred_browsing"];

fn rank(source: &str) -> usize {
    SOURCE_RANK.iter().position(|s| *s == source).unwrap_or(SOURCE_RANK.len())
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Resolved {
    pub value: Value,
    pub source: String,
    #[serde(serialize_with = "crate::normalize::ser_ts")]
    pub observed_at: DateTime<Utc>,
    pub confidence: f64,
    pub why: String,
    pub overrode: Vec<Value>,
}

/// Newest first; equal times by source rank, then by value text: a total, deterministic order.
fn best<'a>(rows: impl Iterator<Item = &'a LedgerRow>) -> Option<&'a LedgerRow> {
    rows.min_by(|a, b| b.observed_at.cmp(&a.observed_at).then(rank(&a.source).cmp(&rank(&b.source))).then(a.value.to_string().cmp(&b.value.to_string())))
}

/// Resolves one category from its (non-revoked) rows. `context_value`, when given, wins.
pub fn resolve_category(rows: &[&LedgerRow], policy: &Policy, context_value: Option<&Value>, now: DateTime<Utc>) -> Option<Resolved> {
    let others = |winner: &Value| -> Vec<Value> {
        let mut v: Vec<Value> = Vec::new();
        for r in rows {
            if &r.value != winner && !v.contains(&r.value) {
                v.push(r.value.clone());
            }
        }
        v
    };
    if let Some(v) = context_value {
        return Some(Resolved {
            value: v.clone(),
            source: "context".into(),
            observed_at: now,
            confidence: 1.0,
            why: "chosen in this session (context), which wins for this request".into(),
            overrode: others(v),
        });
    }
    let explicit = best(rows.iter().copied().filter(|r| r.explicit));
    let inferred = best(rows.iter().copied().filter(|r| !r.explicit));
    let n_explicit = rows.iter().filter(|r| r.explicit).count();
    let (winner, why) = match (explicit, inferred) {
        (None, None) => return None,
        (Some(e), None) => (e, format!("explicit ({}), newest of {n_explicit} explicit value(s)", e.source)),
        (None, Some(i)) => (i, format!("inferred ({}, confidence {:.2}); no explicit value", i.source, i.confidence)),
        (Some(e), Some(i)) => {
            if i.observed_at - e.observed_at > policy.explicit_ttl && i.confidence >= policy.min_confidence {
                (
                    i,
                    format!(
                        "inferred ({}, confidence {:.2}) is newer than the explicit value by more than {} days",
                        i.source,
                        i.confidence,
                        policy.explicit_ttl.num_days()
                    ),
                )
            } else {
                (e, format!("explicit ({}) beats inferred ({})", e.source, i.source))
            }
        }
    };
    Some(Resolved {
        value: winner.value.clone(),
        source: winner.source.clone(),
        observed_at: winner.observed_at,
        confidence: winner.confidence,
        why,
        overrode: others(&winner.value),
    })
}

/// Resolves all categories of one customer. `rows` are the ledger rows that count (the caller
/// applies revocations); `policy` gives each category's policy; `context` maps categories to
/// already standardized session choices. The result is a JSON object keyed by category.
pub fn resolve(rows: &[LedgerRow], policy: &dyn Fn(&str) -> Policy, context: &Map<String, Value>, now: DateTime<Utc>) -> Map<String, Value> {
    let mut cats: Vec<&str> = rows.iter().map(|r| r.category.as_str()).chain(context.keys().map(String::as_str)).collect();
    cats.sort_unstable();
    cats.dedup();
    let mut out = Map::new();
    for c in cats {
        let of_cat: Vec<&LedgerRow> = rows.iter().filter(|r| r.category == c).collect();
        if let Some(r) = resolve_category(&of_cat, &policy(c), context.get(c), now) {
            out.insert(c.to_string(), serde_json::to_value(r).unwrap_or(Value::Null));
        }
    }
    out
}

#[cfg(test)]
mod tests;
