//! Customer-scope tokens: what lets a customer-facing session (kiosk, web account page) act
//! for one customer and no other.
//!
//! The application's backend, which has authenticated the customer, asks the database for a
//! token (`reco.customer_token`, for reco_writer); the customer-facing session hands it to
//! `reco.enter_customer_scope`, which checks it and fixes the session's scope. A token is
//! `v1.<customer id, hex>.<expiry, Unix seconds>.<HMAC-SHA-256 over the rest, hex>`, keyed with a
//! secret only the extension's owner role can read. Without the key no token can be made or
//! altered; a token works only until its expiry.
use crate::error::{show, Error, ErrorKind, Result};
use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// The longest a token may be valid for (a day): a leaked token must not stay useful.
pub const MAX_VALID_SECONDS: i64 = 86_400;

const VERSION: &str = "v1";

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok()).collect()
}

fn mac(key: &[u8], body: &str) -> HmacSha256 {
    // HMAC takes a key of any length; new_from_slice cannot fail for it
    let mut m = <HmacSha256 as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!("HMAC accepts every key length"));
    m.update(body.as_bytes());
    m
}

/// The keyed hash of `text` (HMAC-SHA-256, hex): a stable pseudonym that cannot be reversed or
/// recomputed without the key.
pub fn keyed_hash(key: &[u8], text: &str) -> String {
    hex(&mac(key, text).finalize().into_bytes())
}

/// A token for `customer_id` valid until `expires` (Unix seconds).
pub fn issue(key: &[u8], customer_id: &str, expires: i64) -> String {
    let body = format!("{VERSION}.{}.{expires}", hex(customer_id.as_bytes()));
    let tag = hex(&mac(key, &body).finalize().into_bytes());
    format!("{body}.{tag}")
}

fn invalid() -> Error {
    Error::new(ErrorKind::InvalidAuthorization, "the customer token is not valid")
        .at("token")
        .hint("ask the application's backend for a new token (reco.customer_token); tokens cannot be edited")
}

/// The customer a token names, if its signature is right and it has not expired at `now`
/// (Unix seconds). The signature is compared in constant time.
pub fn verify(key: &[u8], token: &str, now: i64) -> Result<String> {
    let mut parts = token.trim().split('.');
    let (Some(v), Some(id_hex), Some(exp), Some(tag), None) = (parts.next(), parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(invalid());
    };
    if v != VERSION {
        return Err(invalid());
    }
    let tag = unhex(tag).ok_or_else(invalid)?;
    mac(key, &format!("{v}.{id_hex}.{exp}")).verify_slice(&tag).map_err(|_| invalid())?;
    let expires: i64 = exp.parse().map_err(|_| invalid())?;
    if expires < now {
        return Err(Error::new(ErrorKind::InvalidAuthorization, format!("the customer token expired at {expires} (Unix time; now {now})"))
            .at("token")
            .hint("ask the application's backend for a new token (reco.customer_token)"));
    }
    let id = unhex(id_hex).and_then(|b| String::from_utf8(b).ok()).ok_or_else(invalid)?;
    Ok(id)
}

/// Checks how long a token is to be valid for.
pub fn check_validity(seconds: i64) -> Result<i64> {
    if seconds <= 0 || seconds > MAX_VALID_SECONDS {
        return Err(Error::invalid(format!("a token valid for {} seconds is not allowed", show(&seconds.to_string())))
            .at("valid_for")
            .hint(format!("tokens last from 1 second to {MAX_VALID_SECONDS} seconds (a day); issue a new one when it runs out")));
    }
    Ok(seconds)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &[u8] = b"0123456789abcdef0123456789abcdef";

    #[test]
    fn round_trip_expiry_and_tampering() {
        let t = issue(KEY, "c1.x@example.com", 1_000);
        assert_eq!(verify(KEY, &t, 999).unwrap(), "c1.x@example.com");
        assert_eq!(verify(KEY, &t, 1_000).unwrap(), "c1.x@example.com");
        assert!(verify(KEY, &t, 1_001).unwrap_err().message.contains("expired"));
        assert_eq!(verify(b"another key", &t, 0).unwrap_err().kind, ErrorKind::InvalidAuthorization);
        // another customer's id, or a later expiry, with the old signature
        let parts: Vec<&str> = t.split('.').collect();
        let forged_id = format!("v1.{}.{}.{}", hex(b"c2"), parts[2], parts[3]);
        assert!(verify(KEY, &forged_id, 0).is_err());
        let forged_exp = format!("v1.{}.{}.{}", parts[1], 9_999_999_999i64, parts[3]);
        assert!(verify(KEY, &forged_exp, 0).is_err());
        for junk in ["", "v1", "v1...", "v2.63.1.00", &format!("{t}.x"), "v1.zz.1.00"] {
            assert!(verify(KEY, junk, 0).is_err(), "{junk:?}");
        }
    }

    #[test]
    fn keyed_hash_is_stable_and_keyed() {
        assert_eq!(keyed_hash(KEY, "c1"), keyed_hash(KEY, "c1"));
        assert_ne!(keyed_hash(KEY, "c1"), keyed_hash(KEY, "c2"));
        assert_ne!(keyed_hash(KEY, "c1"), keyed_hash(b"other", "c1"));
        assert_eq!(keyed_hash(KEY, "c1").len(), 64);
    }

    #[test]
    fn validity_is_bounded() {
        assert!(check_validity(3600).is_ok());
        assert!(check_validity(0).is_err() && check_validity(MAX_VALID_SECONDS + 1).is_err());
    }
}
