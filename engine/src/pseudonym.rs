//! Pseudonymous customer ids.
//!
//! Channels often send personal data as the buyer id: an e-mail address (Amazon's buyer e-mail,
//! a marketplace's buyer), sometimes a phone number. Such an id would key every event, log row
//! and vector. At ingest it is replaced by a stable pseudonym, `p_` and 32 hex digits: the first
//! 128 bits of HMAC-SHA-256 over the normalized id, keyed with the extension's secret (only the
//! owner role reads it). The same address always gives the same pseudonym, so history joins up;
//! without the key nobody can compute the pseudonym of a known address, nor reverse one.
//!
//! What counts as personal by its form alone:
//! * an e-mail address: `local@domain.tld`, compared case-insensitively (lower-cased);
//! * a phone number in international form: `+` (or `00`) and 7 to 15 digits, spaces, dots,
//!   dashes and parentheses allowed; compared as `+` and its digits. Plain digit strings are
//!   left alone: most shops number their customers. A channel whose ids are personal in any form
//!   is configured to pseudonymize every id (`reco.pseudonymized_channels`).
use crate::token;

/// What kind of personal data an id is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Personal {
    Email,
    Phone,
}

impl Personal {
    pub fn name(self) -> &'static str {
        match self {
            Personal::Email => "email",
            Personal::Phone => "phone",
        }
    }
}

const PREFIX: &str = "p_";
const HEX_DIGITS: usize = 32;

/// Whether `id` is already a pseudonym (so passing one back, or ingesting pseudonymized data
/// again, leaves it as it is).
pub fn is_pseudonym(id: &str) -> bool {
    id.len() == PREFIX.len() + HEX_DIGITS
        && id.starts_with(PREFIX)
        && id.as_bytes()[PREFIX.len()..].iter().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b))
}

fn is_email(id: &str) -> bool {
    let Some((local, domain)) = id.rsplit_once('@') else { return false };
    !local.is_empty()
        && !local.contains(char::is_whitespace)
        && domain.len() >= 3
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && domain.contains('.')
        && domain.chars().all(|c| c.is_alphanumeric() || c == '.' || c == '-')
}

/// `+` and the digits of an international phone number, if `id` is one.
fn phone_digits(id: &str) -> Option<String> {
    let rest = id.strip_prefix('+').or_else(|| id.strip_prefix("00"))?;
    let mut digits = String::with_capacity(16);
    for c in rest.chars() {
        match c {
            '0'..='9' => digits.push(c),
            ' ' | '.' | '-' | '(' | ')' => {}
            _ => return None,
        }
    }
    (7..=15).contains(&digits.len()).then(|| format!("+{digits}"))
}

/// The kind of personal data `id` is by its form, if any. Cheap: ids without `@` or a leading
/// `+`/`00` are rejected on their first bytes.
pub fn classify(id: &str) -> Option<Personal> {
    let id = id.trim();
    if id.contains('@') {
        return is_email(id).then_some(Personal::Email);
    }
    if id.starts_with('+') || id.starts_with("00") {
        return phone_digits(id).map(|_| Personal::Phone);
    }
    None
}

/// The form of `id` that is hashed and kept as identity: e-mail addresses lower-cased, phone
/// numbers as `+` and digits, anything else trimmed.
pub fn normalize(id: &str) -> String {
    let t = id.trim();
    match classify(t) {
        Some(Personal::Email) => t.to_lowercase(),
        Some(Personal::Phone) => phone_digits(t).unwrap_or_else(|| t.to_string()),
        None => t.to_string(),
    }
}

/// The pseudonym of `id` under `key`: `p_` and the first 128 bits of HMAC-SHA-256 over
/// `"pseudonym\0"` and the normalized id, in hex. (The domain prefix keeps it apart from the
/// other keyed hashes made with the same key.)
pub fn pseudonym(key: &[u8], id: &str) -> String {
    let h = token::keyed_hash(key, &format!("pseudonym\0{}", normalize(id)));
    format!("{PREFIX}{}", &h[..HEX_DIGITS])
}

/// What ingest stores for a customer id: the id itself when it is not personal (and `all` is
/// false) or already a pseudonym; otherwise its pseudonym and the identity to keep beside it
/// (the normalized address or number, and its kind; none for an id pseudonymized only because
/// its channel says so).
pub fn apply(key: &[u8], id: &str, all: bool) -> (String, Option<(Personal, String)>) {
    if is_pseudonym(id) {
        return (id.to_string(), None);
    }
    match classify(id) {
        Some(kind) => (pseudonym(key, id), Some((kind, normalize(id)))),
        None if all => (pseudonym(key, id), None),
        None => (id.to_string(), None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &[u8] = b"0123456789abcdef0123456789abcdef";

    #[test]
    fn emails_and_international_numbers_are_personal() {
        for e in ["ana@example.com", "Ana.Lopez+shop@Example.CO.UK", " 5vlh04mgfmjh9h5@marketplace.amazon.co.jp "] {
            assert_eq!(classify(e), Some(Personal::Email), "{e}");
        }
        for p in ["+49 30 1234567", "+1 (555) 010-9999", "0044 20 7946 0958", "+380.44.123.4567"] {
            assert_eq!(classify(p), Some(Personal::Phone), "{p}");
        }
        for n in ["c42", "207119551", "L-88231", "@handle", "a@b", "x@.com", "a b@example.com", "+12", "+49 30 12ab", "p_00", "0"] {
            assert_eq!(classify(n), None, "{n}");
        }
    }

    #[test]
    fn the_pseudonym_is_stable_across_forms_and_keyed() {
        let p = pseudonym(KEY, "Ana@Example.com");
        assert!(is_pseudonym(&p), "{p}");
        assert_eq!(p, pseudonym(KEY, " ana@example.COM"));
        assert_eq!(pseudonym(KEY, "+49 30 1234567"), pseudonym(KEY, "0049-30-1234567"));
        assert_ne!(p, pseudonym(b"another key, another pseudonym..", "ana@example.com"));
        assert_ne!(p, pseudonym(KEY, "bo@example.com"));
        // not the customer_key of the same text: another domain of the same key
        assert!(!token::keyed_hash(KEY, "ana@example.com").starts_with(&p[2..]));
    }

    #[test]
    fn apply_keeps_plain_ids_and_pseudonyms() {
        assert_eq!(apply(KEY, "c42", false), ("c42".into(), None));
        let (p, id) = apply(KEY, "c42", true);
        assert!(is_pseudonym(&p) && id.is_none());
        let (p, id) = apply(KEY, "Ana@Example.com", false);
        assert_eq!(id, Some((Personal::Email, "ana@example.com".into())));
        assert_eq!(apply(KEY, &p, true), (p.clone(), None), "a pseudonym stays itself");
        assert_eq!(apply(KEY, "+49 30 1234567", false).1, Some((Personal::Phone, "+49301234567".into())));
    }
}
