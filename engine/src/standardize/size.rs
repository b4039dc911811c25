//! Sizes to one canonical code system, per garment family.
//!
//! | family  | canonical codes | accepted input |
//! |---------|-----------------|----------------|
//! | letter (tops, bottoms, any) | `XXS XS S M L XL XXL 3XL 4XL 5XL`, `OS` (one size) | the codes, words (`small`, `extra large`), abbreviations (`sm`, `med`, `lg`, `2X`, `XXXL`) |
//! | shoes   | `EU<n>` in half sizes, `EU35` .. `EU52` | `EU 42`, `42 EU`, `US 9` / `US M 9` (men), `US W 8` (women), `UK 8`, `9½`; a bare number ≥ 30 is EU |
//! | bottoms | `W<waist>` or `W<waist>L<inseam>` (inches) | `W32 L34`, `32x34`, `32/34`, `32W 34L`, a bare waist `32` |
//!
//! Shoe conversions use the last-length relation EU = 1.27 × (UK + 25), US men = UK + 1,
//! US women = UK + 2, rounded to the nearest half size.
use crate::error::{show, Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    Any,
    Tops,
    Bottoms,
    Shoes,
}

impl Family {
    pub fn parse(name: &str) -> Result<Family> {
        match name.trim().to_ascii_lowercase().as_str() {
            "" | "any" => Ok(Family::Any),
            "tops" | "top" | "shirts" | "dresses" | "outerwear" => Ok(Family::Tops),
            "bottoms" | "bottom" | "pants" | "trousers" | "jeans" => Ok(Family::Bottoms),
            "shoes" | "shoe" | "footwear" => Ok(Family::Shoes),
            other => Err(Error::invalid(format!("garment family {} is not known", show(other))).hint("use one of: tops, bottoms, shoes, any")),
        }
    }
}

pub const LETTER_CODES: [&str; 11] = ["XXS", "XS", "S", "M", "L", "XL", "XXL", "3XL", "4XL", "5XL", "OS"];

fn letter(squashed: &str) -> Option<&'static str> {
    Some(match squashed {
        "XXS" | "2XS" | "XXSMALL" | "EXTRAEXTRASMALL" => "XXS",
        "XS" | "XSMALL" | "EXTRASMALL" | "XSM" => "XS",
        "S" | "SM" | "SMALL" | "SML" => "S",
        "M" | "MD" | "MED" | "MEDIUM" => "M",
        "L" | "LG" | "LRG" | "LARGE" => "L",
        "XL" | "1XL" | "1X" | "XLARGE" | "EXTRALARGE" | "XLG" => "XL",
        "XXL" | "2XL" | "2X" | "XXLARGE" | "EXTRAEXTRALARGE" => "XXL",
        "XXXL" | "3XL" | "3X" => "3XL",
        "XXXXL" | "4XL" | "4X" => "4XL",
        "XXXXXL" | "5XL" | "5X" => "5XL",
        "OS" | "ONESIZE" | "OSFA" | "ONESIZEFITSALL" | "UNI" | "UNISIZE" | "FREESIZE" => "OS",
        _ => return None,
    })
}

fn hint() -> String {
    "letter sizes XXS-5XL or OS (also small, medium, large, 2X ...); shoes as EU 42, US 9, US W 8, UK 8; \
bottoms as W32 L34 or 32x34"
        .to_string()
}

fn unrecognized(raw: &str) -> Error {
    Error::invalid(format!("size {} is not recognized", show(raw))).hint(hint())
}

/// A number with an optional half (`9.5`, `9,5`, `9½`, `9 1/2`).
fn number(s: &str) -> Option<f64> {
    let s = s.trim();
    let (s, half) = if let Some(x) = s.strip_suffix('½') {
        (x.trim(), 0.5)
    } else if let Some(x) = s.strip_suffix("1/2") {
        (x.trim(), 0.5)
    } else {
        (s, 0.0)
    };
    if s.is_empty() || s.len() > 5 {
        return None;
    }
    let v: f64 = s.replace(',', ".").parse().ok()?;
    (v.is_finite() && v >= 0.0).then_some(v + half)
}

fn eu_code(eu: f64, raw: &str) -> Result<String> {
    let halves = (eu * 2.0).round();
    if !(70.0..=104.0).contains(&halves) {
        return Err(Error::invalid(format!("shoe size {} is outside EU 35 to 52", show(raw))).hint(hint()));
    }
    Ok(if halves % 2.0 == 0.0 { format!("EU{}", halves / 2.0) } else { format!("EU{:.1}", halves / 2.0) })
}

fn uk_to_eu(uk: f64) -> f64 {
    1.27 * (uk + 25.0)
}

fn shoe(s: &str, raw: &str, bare_allowed: bool) -> Result<Option<String>> {
    // s is upper-case with single spaces
    let words: Vec<&str> = s.split(' ').collect();
    let (system, rest): (&str, String) = match words.as_slice() {
        [sys @ ("EU" | "EUR" | "UK" | "US"), rest @ ..] if !rest.is_empty() => (sys, rest.join(" ")),
        [n, sys @ ("EU" | "EUR" | "UK" | "US")] => (sys, (*n).to_string()),
        _ => {
            // glued forms: EU42, US9, UK8
            let glued = ["EUR", "EU", "UK", "US"].iter().find_map(|p| s.strip_prefix(p).map(|r| (*p, r.trim().to_string())));
            match glued {
                Some((p, r)) if number(&r).is_some() || r.starts_with(['M', 'W']) => (p, r),
                _ if bare_allowed => ("", s.to_string()),
                _ => return Ok(None),
            }
        }
    };
    let (women, num_text) = match rest.split_once(' ') {
        Some(("M" | "MEN" | "MENS" | "MEN'S", n)) => (false, n.to_string()),
        Some(("W" | "WOMEN" | "WOMENS" | "WOMEN'S" | "L" | "LADIES", n)) => (true, n.to_string()),
        _ => match rest.strip_prefix('W').or_else(|| rest.strip_prefix('M')) {
            Some(n) if system == "US" && number(n).is_some() => (rest.starts_with('W'), n.to_string()),
            _ => (false, rest.clone()),
        },
    };
    let Some(n) = number(&num_text) else {
        return if system.is_empty() { Ok(None) } else { Err(unrecognized(raw)) };
    };
    let eu = match system {
        "EU" | "EUR" => n,
        "UK" => uk_to_eu(n),
        "US" if women => uk_to_eu(n - 2.0),
        "US" => uk_to_eu(n - 1.0),
        _ if n >= 30.0 => n,
        _ => {
            return Err(
                Error::invalid(format!("shoe size {} is ambiguous without a size system", show(raw))).hint("write the system: EU 42, US 9, US W 8 or UK 8")
            )
        }
    };
    eu_code(eu, raw).map(Some)
}

fn bottoms(s: &str, raw: &str, bare_allowed: bool) -> Result<Option<String>> {
    let compact: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    // W32L34 / 32W34L / 32X34 / 32/34 / W32 / 32
    let cleaned = compact.replace(['X', '/'], "L");
    let (w, l) = if let Some(rest) = cleaned.strip_prefix('W') {
        match rest.split_once('L') {
            Some((w, l)) => (w.to_string(), Some(l.to_string())),
            None => (rest.to_string(), None),
        }
    } else if let Some((w, l)) = cleaned.split_once('W') {
        (w.to_string(), Some(l.trim_end_matches('L').to_string()).filter(|x| !x.is_empty()))
    } else if let Some((w, l)) = cleaned.split_once('L') {
        (w.to_string(), Some(l.to_string()).filter(|x| !x.is_empty()))
    } else if bare_allowed {
        (cleaned.clone(), None)
    } else {
        return Ok(None);
    };
    let parse = |t: &str| t.parse::<u32>().ok();
    let Some(waist) = parse(&w) else { return Ok(None) };
    if !(22..=60).contains(&waist) {
        return Err(Error::invalid(format!("waist {} is outside 22 to 60 inches", show(raw))).hint(hint()));
    }
    match l {
        None => Ok(Some(format!("W{waist}"))),
        Some(l) => match parse(&l) {
            Some(inseam) if (24..=40).contains(&inseam) => Ok(Some(format!("W{waist}L{inseam}"))),
            Some(_) => Err(Error::invalid(format!("inseam in {} is outside 24 to 40 inches", show(raw))).hint(hint())),
            None => Ok(None),
        },
    }
}

/// Standardizes a size for a garment family; `Any` recognizes every system but a bare number.
pub fn standardize(raw: &str, family: Family) -> Result<String> {
    let upper = raw.trim().to_uppercase();
    let spaced = upper.split_whitespace().collect::<Vec<_>>().join(" ");
    if spaced.is_empty() {
        return Err(unrecognized(raw));
    }
    let squashed: String = spaced.chars().filter(|c| !matches!(c, ' ' | '-' | '.' | '_' | '/')).collect();
    if family != Family::Shoes {
        if let Some(code) = letter(&squashed) {
            return Ok(code.to_string());
        }
    }
    match family {
        Family::Shoes => shoe(&spaced, raw, true)?.ok_or_else(|| unrecognized(raw)),
        Family::Bottoms => bottoms(&spaced, raw, true)?.ok_or_else(|| unrecognized(raw)),
        Family::Tops => Err(unrecognized(raw)),
        Family::Any => {
            if let Some(code) = shoe(&spaced, raw, false)? {
                return Ok(code);
            }
            if let Some(code) = bottoms(&spaced, raw, false)? {
                return Ok(code);
            }
            if number(&spaced).is_some() {
                return Err(Error::invalid(format!("size {} is a bare number and ambiguous without a garment family", show(raw)))
                    .hint("pass the family (shoes, bottoms) or write the system, e.g. EU 42 or W32"));
            }
            Err(unrecognized(raw))
        }
    }
}

/// The garment family a canonical code belongs to: `EU..` shoes, `W..` bottoms, letters tops.
pub fn family_of(code: &str) -> Option<Family> {
    if code.starts_with("EU") {
        Some(Family::Shoes)
    } else if code.starts_with('W') {
        Some(Family::Bottoms)
    } else if LETTER_CODES.contains(&code) && code != "OS" {
        Some(Family::Tops)
    } else {
        None
    }
}

/// The next size up (`step` 1) or down (-1) in the same system: letters by position, shoes by
/// a half size, waists by one inch (inseam kept). None past either end.
pub fn neighbor(code: &str, step: i32) -> Option<String> {
    if let Some(i) = LETTER_CODES[..10].iter().position(|c| *c == code) {
        let j = i as i32 + step;
        return (0..10).contains(&j).then(|| LETTER_CODES[j as usize].to_string());
    }
    if let Some(n) = code.strip_prefix("EU") {
        let v: f64 = n.parse().ok()?;
        return eu_code(v + 0.5 * f64::from(step), code).ok();
    }
    let rest = code.strip_prefix('W')?;
    let (w, l) = rest.split_once('L').map_or((rest, None), |(w, l)| (w, Some(l)));
    let w: i32 = w.parse().ok()?;
    let w = w + step;
    (22..=60).contains(&w).then(|| match l {
        Some(l) => format!("W{w}L{l}"),
        None => format!("W{w}"),
    })
}

/// An ordinal for nearest-size search: letters by position, shoes by EU size, bottoms by waist.
pub fn rank(code: &str) -> Option<f64> {
    if let Some(i) = LETTER_CODES.iter().position(|c| *c == code) {
        return (code != "OS").then_some(i as f64);
    }
    if let Some(n) = code.strip_prefix("EU") {
        return n.parse().ok();
    }
    let w = code.strip_prefix('W')?;
    w.split('L').next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    fn s(raw: &str, f: Family) -> String {
        standardize(raw, f).unwrap_or_else(|e| panic!("{raw}: {e}"))
    }

    #[test]
    fn letters_and_synonyms() {
        for (raw, code) in [
            ("small", "S"),
            ("Sm", "S"),
            (" m ", "M"),
            ("Medium", "M"),
            ("med", "M"),
            ("LG", "L"),
            ("x-large", "XL"),
            ("Extra Large", "XL"),
            ("2X", "XXL"),
            ("XXL", "XXL"),
            ("xxxl", "3XL"),
            ("3XL", "3XL"),
            ("XS", "XS"),
            ("xx-small", "XXS"),
            ("One Size", "OS"),
            ("O/S", "OS"),
            ("5xl", "5XL"),
        ] {
            assert_eq!(s(raw, Family::Any), code, "{raw}");
            assert_eq!(s(raw, Family::Tops), code, "{raw}");
        }
    }

    #[test]
    fn shoes() {
        assert_eq!(s("EU 42", Family::Any), "EU42");
        assert_eq!(s("42 EU", Family::Any), "EU42");
        assert_eq!(s("eu42.5", Family::Any), "EU42.5");
        assert_eq!(s("42", Family::Shoes), "EU42");
        assert_eq!(s("42,5", Family::Shoes), "EU42.5");
        assert_eq!(s("UK 8", Family::Any), "EU42");
        assert_eq!(s("US 9", Family::Any), "EU42"); // men's by default
        assert_eq!(s("US M 9", Family::Shoes), "EU42");
        assert_eq!(s("US W 8", Family::Shoes), "EU39.5");
        assert_eq!(s("US 9½", Family::Shoes), "EU42.5");
        assert_eq!(s("9 US", Family::Shoes), "EU42");
        assert_eq!(standardize("9", Family::Shoes).unwrap_err().kind, ErrorKind::InvalidParameter);
        assert_eq!(standardize("EU 70", Family::Shoes).unwrap_err().kind, ErrorKind::InvalidParameter);
        assert_eq!(standardize("M", Family::Shoes).unwrap_err().kind, ErrorKind::InvalidParameter);
    }

    #[test]
    fn bottoms_codes() {
        assert_eq!(s("W32 L34", Family::Any), "W32L34");
        assert_eq!(s("32x34", Family::Any), "W32L34");
        assert_eq!(s("32/34", Family::Bottoms), "W32L34");
        assert_eq!(s("32W 34L", Family::Any), "W32L34");
        assert_eq!(s("32", Family::Bottoms), "W32");
        assert_eq!(s("W30", Family::Any), "W30");
        assert_eq!(s("L", Family::Bottoms), "L");
        assert!(standardize("W90", Family::Any).is_err());
    }

    #[test]
    fn rejects_with_hint() {
        let e = standardize("banana", Family::Any).unwrap_err();
        assert_eq!(e.kind, ErrorKind::InvalidParameter);
        assert!(e.message.contains("\"banana\""));
        assert!(e.hint.unwrap().contains("XXS"));
        assert!(standardize("", Family::Any).is_err());
        assert!(standardize("42", Family::Any).unwrap_err().message.contains("ambiguous"));
        assert!(standardize("38", Family::Tops).is_err());
        assert_eq!(Family::parse("hats").unwrap_err().kind, ErrorKind::InvalidParameter);
    }

    #[test]
    fn families_and_neighbors() {
        assert_eq!(family_of("EU42"), Some(Family::Shoes));
        assert_eq!(family_of("W32L34"), Some(Family::Bottoms));
        assert_eq!(family_of("M"), Some(Family::Tops));
        assert_eq!(family_of("OS"), None);
        assert_eq!(neighbor("M", 1).as_deref(), Some("L"));
        assert_eq!(neighbor("XXS", -1), None);
        assert_eq!(neighbor("EU42", 1).as_deref(), Some("EU42.5"));
        assert_eq!(neighbor("EU42.5", 1).as_deref(), Some("EU43"));
        assert_eq!(neighbor("W32L34", -1).as_deref(), Some("W31L34"));
        assert_eq!(neighbor("W32", 1).as_deref(), Some("W33"));
    }

    #[test]
    fn ranks_order_sizes() {
        assert!(rank("S") < rank("M") && rank("M") < rank("XL"));
        assert!(rank("EU41") < rank("EU42.5"));
        assert_eq!(rank("W32L34"), Some(32.0));
        assert_eq!(rank("OS"), None);
    }
}
