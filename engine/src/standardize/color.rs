//! Colors to a canonical palette of 16 names. Synonyms and shades (`charcoal`, `burgundy`,
//! `navy blue`), a few words in French, German, Spanish and Italian, hex codes (nearest palette
//! color), and combinations (`black/white` → `multi`).
use crate::error::{show, Error, Result};

pub const PALETTE: [&str; 16] =
    ["black", "white", "grey", "beige", "brown", "red", "pink", "orange", "yellow", "green", "blue", "navy", "purple", "gold", "silver", "multi"];

/// Reference RGB of each palette color, for hex input.
const RGB: [(&str, [u8; 3]); 15] = [
    ("black", [0, 0, 0]),
    ("white", [255, 255, 255]),
    ("grey", [128, 128, 128]),
    ("beige", [222, 203, 164]),
    ("brown", [120, 72, 32]),
    ("red", [200, 20, 30]),
    ("pink", [240, 130, 180]),
    ("orange", [245, 140, 20]),
    ("yellow", [245, 220, 40]),
    ("green", [40, 150, 60]),
    ("blue", [40, 110, 220]),
    ("navy", [20, 30, 90]),
    ("purple", [120, 50, 160]),
    ("gold", [212, 175, 55]),
    ("silver", [192, 192, 200]),
];

fn word(w: &str) -> Option<&'static str> {
    Some(match w {
        "black" | "jet" | "onyx" | "ebony" | "noir" | "noire" | "schwarz" | "negro" | "negra" | "nero" | "nera" => "black",
        "white" | "ivory" | "offwhite" | "snow" | "pearl" | "blanc" | "blanche" | "weiss" | "weiß" | "blanco" | "blanca" | "bianco" | "bianca" | "optic" => {
            "white"
        }
        "grey" | "gray" | "charcoal" | "slate" | "graphite" | "ash" | "anthracite" | "smoke" | "gris" | "grau" | "grigio" | "pewter" | "heather" => "grey",
        "beige" | "cream" | "tan" | "khaki" | "camel" | "sand" | "nude" | "oatmeal" | "ecru" | "taupe" | "stone" | "natural" | "biscuit" => "beige",
        "brown" | "chocolate" | "coffee" | "mocha" | "espresso" | "cognac" | "chestnut" | "walnut" | "marron" | "braun" | "marrón" | "marrone" => "brown",
        "red" | "crimson" | "scarlet" | "burgundy" | "maroon" | "wine" | "cherry" | "ruby" | "bordeaux" | "rouge" | "rot" | "rojo" | "roja" | "rosso"
        | "rossa" | "oxblood" | "claret" => "red",
        "pink" | "rose" | "blush" | "fuchsia" | "magenta" | "salmon" | "rosa" => "pink",
        "orange" | "tangerine" | "apricot" | "peach" | "rust" | "amber" | "terracotta" | "coral" | "naranja" | "arancione" => "orange",
        "yellow" | "mustard" | "lemon" | "canary" | "jaune" | "gelb" | "amarillo" | "giallo" => "yellow",
        "green" | "olive" | "emerald" | "mint" | "sage" | "lime" | "forest" | "army" | "vert" | "verte" | "grün" | "gruen" | "verde" | "jade" => "green",
        "blue" | "sky" | "royal" | "cobalt" | "denim" | "azure" | "turquoise" | "teal" | "aqua" | "cyan" | "indigo" | "steel" | "bleu" | "blau" | "azul"
        | "blu" => "blue",
        "navy" | "midnight" | "marine" => "navy",
        "purple" | "violet" | "lavender" | "lilac" | "plum" | "mauve" | "grape" | "aubergine" | "lila" | "viola" => "purple",
        "gold" | "golden" | "brass" | "champagne" | "or" | "oro" => "gold",
        "silver" | "chrome" | "platinum" | "argent" | "silber" | "plata" | "argento" => "silver",
        "multi" | "multicolor" | "multicolour" | "multicolored" | "multicoloured" | "rainbow" | "print" | "pattern" | "assorted" | "mixed" => "multi",
        _ => return None,
    })
}

fn hex(s: &str) -> Option<&'static str> {
    let h = s.strip_prefix('#')?;
    let full: String = match h.len() {
        3 => h.chars().flat_map(|c| [c, c]).collect(),
        6 => h.to_string(),
        _ => return None,
    };
    let v = u32::from_str_radix(&full, 16).ok()?;
    let rgb = [(v >> 16) as i32 & 255, (v >> 8) as i32 & 255, v as i32 & 255];
    RGB.iter().min_by_key(|(_, c)| (0..3).map(|k| (rgb[k] - i32::from(c[k])).pow(2)).sum::<i32>()).map(|(n, _)| *n)
}

/// Standardizes a color name to the palette.
pub fn standardize(raw: &str) -> Result<String> {
    let lower = raw.trim().to_lowercase();
    if let Some(c) = hex(&lower) {
        return Ok(c.to_string());
    }
    let phrase: String = lower.replace(['-', '_'], " ");
    match phrase.split_whitespace().collect::<Vec<_>>().join(" ").as_str() {
        "navy blue" | "dark blue" | "midnight blue" | "marine blue" => return Ok("navy".into()),
        "off white" => return Ok("white".into()),
        "rose gold" => return Ok("gold".into()),
        "hot pink" => return Ok("pink".into()),
        _ => {}
    }
    // two colors joined: black/white, red & blue, navy and white
    let parts: Vec<&str> = phrase.split(['/', '&', '+', ',', '|']).flat_map(|p| p.split(" and ")).map(str::trim).filter(|p| !p.is_empty()).collect();
    if parts.len() > 1 {
        let known: Vec<String> = parts.iter().filter_map(|p| standardize(p).ok()).collect();
        return match known.as_slice() {
            [] => Err(unrecognized(raw)),
            [one] => Ok(one.clone()),
            [first, rest @ ..] if rest.iter().all(|c| c == first) => Ok(first.clone()),
            _ => Ok("multi".into()),
        };
    }
    // the head word is usually last: "sky blue", "forest green", "heather grey"
    let words: Vec<&str> = phrase.split_whitespace().collect();
    let compact: String = words.concat();
    if let Some(c) = word(&compact) {
        return Ok(c.to_string());
    }
    words.iter().rev().find_map(|w| word(w)).map(str::to_string).ok_or_else(|| unrecognized(raw))
}

fn unrecognized(raw: &str) -> Error {
    Error::invalid(format!("color {} is not recognized", show(raw.trim())))
        .hint(format!("use a color name, a shade (charcoal, burgundy, navy blue) or #RRGGBB; canonical colors: {}", PALETTE.join(", ")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_shades() {
        for (raw, c) in [
            ("Black", "black"),
            ("charcoal", "grey"),
            ("Gray", "grey"),
            ("Heather Grey", "grey"),
            ("burgundy", "red"),
            ("Navy Blue", "navy"),
            ("navy", "navy"),
            ("dark-blue", "navy"),
            ("sky blue", "blue"),
            ("Forest Green", "green"),
            ("off-white", "white"),
            ("Ivory", "white"),
            ("khaki", "beige"),
            ("rose gold", "gold"),
            ("Noir", "black"),
            ("schwarz", "black"),
            ("rojo", "red"),
            ("light pink", "pink"),
            ("black/white", "multi"),
            ("navy and white", "multi"),
            ("red / red", "red"),
            ("#000", "black"),
            ("#FFFFFE", "white"),
            ("#1a1f5c", "navy"),
        ] {
            assert_eq!(standardize(raw).unwrap(), c, "{raw}");
        }
    }

    #[test]
    fn unknown() {
        let e = standardize("blorange-ish").unwrap_err();
        assert!(e.message.contains("blorange-ish"));
        assert!(e.hint.unwrap().contains("navy"));
        assert!(standardize("").is_err());
        assert!(standardize("#12").is_err());
    }

    #[test]
    fn every_palette_name_is_its_own_code() {
        for c in PALETTE {
            assert_eq!(standardize(c).unwrap(), c);
        }
    }
}
