//! Consent decisions: the checks on what `reco.set_consent` records as a decision's
//! provenance (where it came from, and the evidence behind it).
use crate::error::show;
use crate::{Error, Result};
use serde_json::{Map, Value};

/// The largest evidence object kept with a decision, in bytes of JSON text.
pub const MAX_EVIDENCE_BYTES: usize = 4096;

/// A decision's source: 1 to 64 lower-case letters, digits, `_`, `.`, `:` or `-`, e.g.
/// `signup_form`, `account_page`, `checkout:newsletter_box`.
pub fn check_source(raw: &str) -> Result<&str> {
    let ok = (1..=64).contains(&raw.len()) && raw.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'.' | b':' | b'-'));
    if ok {
        Ok(raw)
    } else {
        Err(Error::invalid(format!("source {} is not a consent source", show(raw)))
            .at("source")
            .hint("name where the customer decided in 1 to 64 lower-case letters, digits, _ . : or -, e.g. 'signup_form' or 'account_page'"))
    }
}

/// The evidence kept with a decision: at most [`MAX_EVIDENCE_BYTES`] of JSON. In a
/// customer-scoped session, `customer_scope: true` is added, so the record says the customer
/// decided in their own session.
pub fn evidence(mut m: Map<String, Value>, customer_scoped: bool) -> Result<Value> {
    if customer_scoped {
        m.insert("customer_scope".into(), Value::Bool(true));
    }
    let v = Value::Object(m);
    let n = v.to_string().len();
    if n > MAX_EVIDENCE_BYTES {
        return Err(Error::new(crate::ErrorKind::LimitExceeded, format!("evidence is {n} bytes of JSON, more than {MAX_EVIDENCE_BYTES}"))
            .at("evidence")
            .hint("keep references (a form id, a message's rec_id, a document URL), not documents"));
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_are_short_lower_case_names() {
        for ok in ["signup_form", "account_page", "checkout:newsletter_box", "import-2026.11", "a"] {
            assert_eq!(check_source(ok).unwrap(), ok);
        }
        for bad in ["", "Signup", "sign up", "x;drop", &"a".repeat(65), "naïve"] {
            let e = check_source(bad).unwrap_err();
            assert_eq!(e.kind.sqlstate(), "22023", "{bad}");
            assert!(e.hint.as_deref().unwrap_or("").contains("signup_form"));
        }
    }

    #[test]
    fn evidence_is_bounded_and_marks_a_customer_session() {
        let mut m = Map::new();
        m.insert("form".into(), Value::from("newsletter_v3"));
        assert_eq!(evidence(m.clone(), false).unwrap(), serde_json::json!({"form": "newsletter_v3"}));
        assert_eq!(evidence(m, true).unwrap(), serde_json::json!({"form": "newsletter_v3", "customer_scope": true}));
        let mut big = Map::new();
        big.insert("doc".into(), Value::from("x".repeat(MAX_EVIDENCE_BYTES)));
        let e = evidence(big, false).unwrap_err();
        assert_eq!(e.kind.sqlstate(), "54000");
        assert!(e.message.contains("more than 4096"), "{}", e.message);
    }
}
