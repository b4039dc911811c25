//! The `context` argument of reco.recommend: parsed and checked, so a typo is an error that
//! names it instead of a silently ignored key.
use crate::error::show;
use crate::standardize::time;
use crate::{Error, Result};
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

/// Every accepted key and what it is.
pub const KEYS: [(&str, &str); 15] = [
    ("cart", "item ids in the cart (array of strings)"),
    ("session_id", "the current session: its events weigh more"),
    ("device", "the device (recorded with a logged list)"),
    ("channel", "the sales channel (recorded with a logged list)"),
    ("now", "the time of the request, ISO 8601 (default: the transaction's start)"),
    ("exclude", "item ids never to return (array of strings)"),
    ("category", "return only items of this category"),
    ("placement", "home, cart, checkout, post_purchase, email, or a row you added to reco.placement_weights"),
    ("log", "true: record the list in reco.recommendations and return its rec_id"),
    ("max_per_category", "diversity cap for this request (0 = none)"),
    ("diversity_penalty", "places a category's next item moves down per item of it already listed (0 = none)"),
    ("seen_last", "items the customer viewed or carted and does not own come last (true/false)"),
    ("rec_id", "ignored on input (it is what a logged list returns); accepted so a context can be passed back as is"),
    ("experiment", "ignored on input (pg_reco writes the experiment of a logged list); accepted so a logged context can be passed back"),
    ("arm", "ignored on input (pg_reco writes the arm of a logged list); accepted so a logged context can be passed back"),
];

/// Most item ids a cart or exclude list may hold.
pub const MAX_IDS: usize = 1000;

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Context {
    pub cart: Vec<String>,
    pub session_id: Option<String>,
    pub device: Option<String>,
    pub channel: Option<String>,
    pub now: Option<DateTime<Utc>>,
    pub exclude: Vec<String>,
    pub category: Option<String>,
    pub placement: String,
    pub log: bool,
    pub max_per_category: Option<usize>,
    pub diversity_penalty: Option<f32>,
    pub seen_last: Option<bool>,
}

/// A JSON value for a message: strings as themselves (quoted once), the rest as JSON.
fn shown(v: &Value) -> String {
    match v {
        Value::String(s) => show(s),
        other => show(&other.to_string()),
    }
}

fn bad(key: &str, msg: String, hint: &str) -> Error {
    Error::invalid(msg).at(format!("context.{key}")).hint(hint.to_string())
}

/// An item id as the canonical model stores it: 1..256 characters, no control characters.
pub fn check_id(id: &str, what: &str) -> Result<()> {
    if id.is_empty() || id.len() > crate::json::MAX_ID_LEN || id.chars().any(|c| c.is_control() || crate::json::invisible(c)) {
        return Err(Error::invalid(format!("{what} {} is not a valid id", show(id)))
            .at(what.to_string())
            .hint("ids are 1 to 256 bytes without control, bidirectional or zero-width characters"));
    }
    Ok(())
}

fn ids(key: &str, v: &Value) -> Result<Vec<String>> {
    let hint = r#"write it as an array of item id strings, e.g. ["SKU-1", "SKU-2"]"#;
    let arr = v.as_array().ok_or_else(|| bad(key, format!("context key {key} must be an array of item ids, not {}", shown(v)), hint))?;
    if arr.len() > MAX_IDS {
        return Err(bad(key, format!("context key {key} holds {} ids, more than {MAX_IDS}", arr.len()), "pass at most 1000 item ids"));
    }
    arr.iter()
        .enumerate()
        .map(|(n, x)| {
            let s = x.as_str().ok_or_else(|| bad(key, format!("{key}[{n}] must be an item id string, not {}", shown(x)), hint))?;
            check_id(s, &format!("context.{key}[{n}]"))?;
            Ok(s.to_string())
        })
        .collect()
}

fn text(key: &str, v: &Value) -> Result<String> {
    let s = v.as_str().ok_or_else(|| bad(key, format!("context key {key} must be a string, not {}", shown(v)), "write it as a JSON string"))?;
    if s.is_empty() || s.chars().count() > 256 {
        return Err(bad(key, format!("context key {key} = {} must be 1 to 256 characters", show(s)), "write it as a non-empty JSON string"));
    }
    Ok(s.to_string())
}

impl Context {
    pub fn parse(obj: &Map<String, Value>) -> Result<Context> {
        let mut c = Context { placement: "home".into(), ..Default::default() };
        for (key, v) in obj {
            if v.is_null() {
                continue;
            }
            match key.as_str() {
                "cart" => c.cart = ids(key, v)?,
                "exclude" => c.exclude = ids(key, v)?,
                "session_id" => c.session_id = Some(text(key, v)?),
                "device" => c.device = Some(text(key, v)?),
                "channel" => c.channel = Some(text(key, v)?),
                "category" => c.category = Some(text(key, v)?),
                "placement" => c.placement = text(key, v)?,
                "now" => {
                    let s = text(key, v)?;
                    c.now = Some(time::parse_iso(&s, chrono_tz::UTC).map_err(|e| e.at("context.now"))?);
                }
                "log" => {
                    c.log = v.as_bool().ok_or_else(|| bad(key, format!("context key log must be true or false, not {v}"), "write log as a JSON boolean"))?
                }
                "max_per_category" => {
                    let n = v.as_u64().filter(|n| *n <= 1000).ok_or_else(|| {
                        bad(key, format!("context key max_per_category = {v} is not a whole number between 0 and 1000"), "0 turns the cap off")
                    })?;
                    c.max_per_category = Some(n as usize);
                }
                "diversity_penalty" => {
                    let x = v.as_f64().filter(|x| (0.0..=1000.0).contains(x)).ok_or_else(|| {
                        bad(key, format!("context key diversity_penalty = {v} is not a number between 0 and 1000"), "0 turns the penalty off")
                    })?;
                    c.diversity_penalty = Some(x as f32);
                }
                "seen_last" => {
                    c.seen_last = Some(
                        v.as_bool()
                            .ok_or_else(|| bad(key, format!("context key seen_last must be true or false, not {v}"), "write seen_last as a JSON boolean"))?,
                    )
                }
                "rec_id" | "experiment" | "arm" => {}
                other => {
                    return Err(Error::invalid(format!("context key {} is not known", show(other)))
                        .at(format!("context.{other}"))
                        .hint(format!("keys: {}", KEYS.iter().map(|k| k.0).collect::<Vec<_>>().join(", "))))
                }
            }
        }
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: Value) -> Result<Context> {
        Context::parse(v.as_object().unwrap())
    }

    #[test]
    fn parses_every_key() {
        let c = parse(json!({"cart": ["a", "b"], "session_id": "s1", "device": "ios", "channel": "web", "now": "2025-01-01T20:00:00Z",
                             "exclude": ["c"], "category": "shoes", "placement": "checkout", "log": true, "max_per_category": 2}))
        .unwrap();
        assert_eq!(c.cart, vec!["a", "b"]);
        assert_eq!(c.now.unwrap().to_rfc3339(), "2025-01-01T20:00:00+00:00");
        assert_eq!((c.placement.as_str(), c.log, c.max_per_category), ("checkout", true, Some(2)));
        assert_eq!(parse(json!({})).unwrap().placement, "home");
    }

    #[test]
    fn rejects_what_it_cannot_use_and_says_where() {
        let e = parse(json!({"carts": ["a"]})).unwrap_err();
        assert!(e.to_string().contains("carts") && e.hint.as_deref().unwrap().contains("cart,"), "{e}");
        let e = parse(json!({"cart": "a"})).unwrap_err();
        assert_eq!(e.path.as_deref(), Some("context.cart"));
        let e = parse(json!({"cart": ["ok", 5]})).unwrap_err();
        assert!(e.to_string().contains("cart[1]"), "{e}");
        assert!(parse(json!({"cart": [""]})).is_err());
        assert!(parse(json!({"exclude": ["a\u{0}b"]})).is_err());
        assert!(parse(json!({"now": "yesterday"})).is_err());
        assert!(parse(json!({"log": "yes"})).is_err());
        assert!(parse(json!({"max_per_category": -1})).is_err());
        assert!(parse(json!({"cart": vec!["x"; 1001]})).is_err());
    }
}
