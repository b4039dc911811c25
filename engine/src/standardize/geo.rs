//! Country codes to ISO 3166-1 alpha-2.
use crate::error::{show, Error, Result};
use isocountry::CountryCode;

/// Alpha-2, alpha-3, the ISO English short name, or a common name, any case → alpha-2.
pub fn country(raw: &str) -> Result<String> {
    let t = raw.trim();
    let up = t.to_ascii_uppercase();
    let found = match up.len() {
        2 if up == "UK" => Some(CountryCode::GBR),
        2 => CountryCode::for_alpha2(&up).ok(),
        3 => CountryCode::for_alpha3(&up).ok(),
        _ => None,
    };
    let found = found.or_else(|| {
        let lower = t.to_lowercase();
        let alias = match lower.as_str() {
            "united states" | "usa" | "u.s.a." | "u.s." | "america" => Some(CountryCode::USA),
            "united kingdom" | "great britain" | "england" | "scotland" | "wales" | "u.k." => Some(CountryCode::GBR),
            "russia" => Some(CountryCode::RUS),
            "south korea" | "korea" => Some(CountryCode::KOR),
            "north korea" => Some(CountryCode::PRK),
            "vietnam" => Some(CountryCode::VNM),
            "iran" => Some(CountryCode::IRN),
            "czech republic" | "czechia" => Some(CountryCode::CZE),
            "taiwan" => Some(CountryCode::TWN),
            "bolivia" => Some(CountryCode::BOL),
            "venezuela" => Some(CountryCode::VEN),
            "tanzania" => Some(CountryCode::TZA),
            "syria" => Some(CountryCode::SYR),
            "laos" => Some(CountryCode::LAO),
            "moldova" => Some(CountryCode::MDA),
            "netherlands" | "the netherlands" | "holland" => Some(CountryCode::NLD),
            "deutschland" => Some(CountryCode::DEU),
            _ => None,
        };
        alias.or_else(|| CountryCode::iter().find(|c| c.name().eq_ignore_ascii_case(t)).copied())
    });
    found.map(|c| c.alpha2().to_string()).ok_or_else(|| {
        Error::invalid(format!("country {} is not an ISO 3166-1 country", show(t)))
            .hint("use an ISO 3166-1 alpha-2 code such as US, DE or JP (alpha-3 codes and English names are accepted too)")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_names() {
        for (raw, c) in [
            ("us", "US"),
            ("USA", "US"),
            ("United States", "US"),
            ("DEU", "DE"),
            ("germany", "DE"),
            ("UK", "GB"),
            ("gb", "GB"),
            ("Japan", "JP"),
            ("holland", "NL"),
        ] {
            assert_eq!(country(raw).unwrap(), c, "{raw}");
        }
        assert!(country("XX").is_err());
        assert!(country("Atlantis").unwrap_err().hint.unwrap().contains("alpha-2"));
    }
}
