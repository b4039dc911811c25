//! Money: decimal text or JSON numbers to exact integer minor units by the currency's ISO 4217
//! exponent (JPY 0, USD 2, KWD 3). Never through binary floating point.
use crate::error::{show, Error, ErrorKind, Result};

/// A currency with its minor-unit exponent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Currency {
    pub code: String,
    pub exponent: u32,
}

/// An ISO 4217 alphabetic code, any case; it must have a minor unit (not XAU, XDR ...).
pub fn currency(code: &str) -> Result<Currency> {
    let c = code.trim().to_ascii_uppercase();
    let cur = iso_currency::Currency::from_code(&c).ok_or_else(|| {
        Error::invalid(format!("currency {} is not an ISO 4217 code", show(code.trim()))).hint("use a three-letter ISO 4217 code such as USD, EUR, JPY or KWD")
    })?;
    let exponent = cur.exponent().ok_or_else(|| {
        Error::invalid(format!("currency {c} has no minor unit and cannot price an order")).hint("use a national currency code such as USD or EUR")
    })?;
    Ok(Currency { code: c, exponent: u32::from(exponent) })
}

/// Parses `-12.50`, `12`, `1.25e1` exactly into minor units of a currency with `exponent`.
pub fn parse_minor(text: &str, cur: &Currency) -> Result<i64> {
    let t = text.trim();
    let bad = || {
        Error::new(ErrorKind::InvalidText, format!("amount {} is not a decimal number", show(t)))
            .hint("write amounts like 19.99 or -5 with a dot as the decimal separator and no currency symbol or grouping")
    };
    let (neg, body) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let (mantissa, exp10) = match body.find(['e', 'E']) {
        Some(p) => (&body[..p], body[p + 1..].parse::<i32>().map_err(|_| bad())?),
        None => (body, 0),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if (int.is_empty() && frac.is_empty()) || !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    // value = digits * 10^(exp10 - frac.len()); minor = value * 10^exponent
    let digits = format!("{int}{frac}");
    let digits = digits.trim_start_matches('0');
    let shift = i64::from(exp10) - frac.len() as i64 + i64::from(cur.exponent);
    let overflow =
        || Error::new(ErrorKind::OutOfRange, format!("amount {} is out of range", show(t))).hint("amounts must fit in a 64-bit count of minor units");
    let minor: i128 = if digits.is_empty() {
        0
    } else if shift >= 0 {
        if digits.len() as i64 + shift > 38 {
            return Err(overflow());
        }
        let base: i128 = digits.parse().map_err(|_| overflow())?;
        base.checked_mul(10i128.pow(shift as u32)).ok_or_else(overflow)?
    } else {
        let cut = (-shift) as usize;
        let (keep, dropped) = if cut >= digits.len() { ("", digits) } else { digits.split_at(digits.len() - cut) };
        if dropped.bytes().any(|b| b != b'0') {
            let decimals = frac.trim_end_matches('0').len() as i64 - i64::from(exp10);
            let decimals = decimals.max(0);
            return Err(Error::invalid(format!(
                "amount {} has {decimals} decimal{} but {} allows {}",
                show(t),
                if decimals == 1 { "" } else { "s" },
                cur.code,
                cur.exponent
            ))
            .hint(if cur.exponent == 0 {
                format!("{} amounts are whole numbers", cur.code)
            } else {
                format!("{} amounts have at most {} digits after the decimal point", cur.code, cur.exponent)
            }));
        }
        if keep.is_empty() {
            0
        } else {
            keep.parse().map_err(|_| overflow())?
        }
    };
    let minor = if neg { -minor } else { minor };
    i64::try_from(minor).map_err(|_| overflow())
}

/// Minor units back to decimal text (`1999`, USD → `19.99`), exact.
/// A stored price (numeric text, e.g. from `price::text`) in minor units of currency `code`;
/// `None` when either is missing or not valid.
pub fn minor_units(price: Option<&str>, code: Option<&str>) -> Option<i64> {
    let cur = currency(code?).ok()?;
    parse_minor(price?, &cur).ok()
}

pub fn format_minor(minor: i64, exponent: u32) -> String {
    if exponent == 0 {
        return minor.to_string();
    }
    let sign = if minor < 0 { "-" } else { "" };
    let abs = minor.unsigned_abs();
    let p = 10u64.pow(exponent);
    format!("{sign}{}.{:0width$}", abs / p, abs % p, width = exponent as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minor_units_of_stored_prices() {
        assert_eq!(minor_units(Some("19.99"), Some("EUR")), Some(1999));
        assert_eq!(minor_units(Some("12.750"), Some("KWD")), Some(12750));
        assert_eq!(minor_units(Some("19.99"), None), None);
        assert_eq!(minor_units(None, Some("EUR")), None);
        assert_eq!(minor_units(Some("19.99"), Some("XXY")), None);
    }

    fn m(t: &str, c: &str) -> Result<i64> {
        parse_minor(t, &currency(c).unwrap())
    }

    #[test]
    fn exponents() {
        assert_eq!(m("19.99", "USD"), Ok(1999));
        assert_eq!(m("19.9", "usd"), Ok(1990));
        assert_eq!(m("19", "USD"), Ok(1900));
        assert_eq!(m("1500", "JPY"), Ok(1500));
        assert_eq!(m("1.250", "KWD"), Ok(1250));
        assert_eq!(m("0.001", "KWD"), Ok(1));
        assert_eq!(m("-5.00", "EUR"), Ok(-500));
        assert_eq!(m(".5", "EUR"), Ok(50));
        assert_eq!(m("19.990", "USD"), Ok(1999)); // trailing zeros are exact
        assert_eq!(m("1.999e1", "USD"), Ok(1999));
        assert_eq!(m("2E2", "JPY"), Ok(200));
        assert_eq!(m("0.00", "USD"), Ok(0));
        // a value whose f64 form is inexact stays exact here
        assert_eq!(m("0.29", "USD"), Ok(29));
        assert_eq!(m("92233720368547758.07", "USD"), Ok(i64::MAX));
    }

    #[test]
    fn rejects() {
        assert_eq!(m("19.999", "USD").unwrap_err().kind, ErrorKind::InvalidParameter);
        assert!(m("19.999", "USD").unwrap_err().message.contains("3 decimals but USD allows 2"));
        assert_eq!(m("10.5", "JPY").unwrap_err().kind, ErrorKind::InvalidParameter);
        assert_eq!(m("1,000.00", "USD").unwrap_err().kind, ErrorKind::InvalidText);
        assert_eq!(m("$5", "USD").unwrap_err().kind, ErrorKind::InvalidText);
        assert_eq!(m("", "USD").unwrap_err().kind, ErrorKind::InvalidText);
        assert_eq!(m(".", "USD").unwrap_err().kind, ErrorKind::InvalidText);
        assert_eq!(m("1e400", "USD").unwrap_err().kind, ErrorKind::OutOfRange);
        assert_eq!(m("92233720368547758.08", "USD").unwrap_err().kind, ErrorKind::OutOfRange);
        assert_eq!(currency("XYZ").unwrap_err().kind, ErrorKind::InvalidParameter);
        assert_eq!(currency("XAU").unwrap_err().kind, ErrorKind::InvalidParameter);
    }

    #[test]
    fn formats() {
        assert_eq!(format_minor(1999, 2), "19.99");
        assert_eq!(format_minor(-5, 2), "-0.05");
        assert_eq!(format_minor(1250, 3), "1.250");
        assert_eq!(format_minor(1500, 0), "1500");
    }
}
