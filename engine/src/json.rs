//! A JSON cursor that remembers its path, so every error names where it happened.
use crate::error::{show, Error, ErrorKind, Result};
use serde_json::Value;

/// Longest text accepted for an identifier (order, customer, item, session ids).
pub const MAX_ID_LEN: usize = 256;

/// Characters that change how an identifier is shown without being seen: bidirectional
/// embeddings, overrides, isolates and marks, zero-width spaces and joiners, the word joiner,
/// invisible operators, the soft hyphen and the byte-order mark. An id holding one could pass
/// for another customer's or item's id in a log or an admin screen.
pub fn invisible(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{061C}' | '\u{180E}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{2064}' | '\u{2066}'..='\u{2069}' | '\u{FEFF}')
}
/// The hint of every "missing field" error.
pub const MISSING_HINT: &str = "the canonical model needs this field; if the channel sends it under another name, map it with a row in reco.channel_mappings";

/// Longest free text kept (titles); longer text is cut at a character boundary.
pub const MAX_TEXT_LEN: usize = 1000;

#[derive(Clone, Copy)]
pub struct Node<'a> {
    pub value: &'a Value,
    parent: Option<&'a Node<'a>>,
    seg: Seg<'a>,
}

#[derive(Clone, Copy)]
enum Seg<'a> {
    Root,
    /// A whole path written out, for nodes reached by a mapping's JSON path.
    Path(&'a str),
    Key(&'a str),
    Index(usize),
}

static NULL: Value = Value::Null;

impl<'a> Node<'a> {
    pub fn root(value: &'a Value) -> Self {
        Node { value, parent: None, seg: Seg::Root }
    }

    /// A node found by a path expression; errors name `path`.
    pub fn with_path(value: &'a Value, path: &'a str) -> Self {
        Node { value, parent: None, seg: Seg::Path(path) }
    }

    /// The path of this node, `$.a.b[2]`, built only when an error needs it.
    pub fn path(&self) -> String {
        let mut segs = vec![self.seg];
        let mut p = self.parent;
        while let Some(n) = p {
            segs.push(n.seg);
            p = n.parent;
        }
        let mut out = String::from("$");
        for s in segs.iter().rev() {
            match s {
                Seg::Root => {}
                Seg::Path(p) => out = (*p).to_string(),
                Seg::Key(k) if k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') => {
                    out.push('.');
                    out.push_str(k)
                }
                Seg::Key(k) => out.push_str(&format!("[{}]", serde_json::to_string(k).unwrap_or_default())),
                Seg::Index(i) => out.push_str(&format!("[{i}]")),
            }
        }
        out
    }

    /// The child at `key`: JSON null when absent or when this node is not an object.
    pub fn get<'b>(&'b self, key: &'b str) -> Node<'b> {
        Node { value: self.value.get(key).unwrap_or(&NULL), parent: Some(self), seg: Seg::Key(key) }
    }

    /// The first of `keys` that is present and not null (channels spell one field several ways).
    pub fn get_any<'b>(&'b self, keys: &[&'b str]) -> Node<'b> {
        for k in keys {
            let n = self.get(k);
            if !n.is_null() {
                return n;
            }
        }
        self.get(keys[0])
    }

    pub fn index<'b>(&'b self, i: usize) -> Node<'b> {
        Node { value: self.value.get(i).unwrap_or(&NULL), parent: Some(self), seg: Seg::Index(i) }
    }

    /// The elements of an array as nodes; an absent or null array is empty.
    pub fn elements<'b>(&'b self) -> Result<impl Iterator<Item = Node<'b>> + 'b> {
        let arr: &'b [Value] = match self.value {
            Value::Null => &[],
            Value::Array(a) => a.as_slice(),
            other => return Err(self.err(ErrorKind::InvalidParameter, format!("expected a JSON array, found {}", type_name(other)))),
        };
        Ok(arr.iter().enumerate().map(move |(i, value)| Node { value, parent: Some(self), seg: Seg::Index(i) }))
    }

    pub fn is_null(&self) -> bool {
        self.value.is_null()
    }

    pub fn err(&self, kind: ErrorKind, msg: impl Into<String>) -> Error {
        Error::new(kind, msg).at(self.path())
    }

    pub fn type_name(&self) -> &'static str {
        type_name(self.value)
    }

    pub fn as_object(&self) -> Result<&'a serde_json::Map<String, Value>> {
        self.value.as_object().ok_or_else(|| self.err(ErrorKind::InvalidParameter, format!("expected a JSON object, found {}", self.type_name())))
    }

    /// Text of a string or a number; None for null or absent; an error for other types.
    pub fn text(&self) -> Result<Option<&'a str>> {
        match self.value {
            Value::Null => Ok(None),
            Value::String(s) => Ok(Some(s.as_str())),
            Value::Number(n) => Ok(Some(n.as_str())), // the text as written (arbitrary_precision)
            other => Err(self.err(ErrorKind::InvalidParameter, format!("expected a string or a number, found {}", type_name(other)))),
        }
    }

    /// An identifier: a non-empty string or an integer, at most MAX_ID_LEN characters, trimmed.
    pub fn id(&self) -> Result<Option<String>> {
        let Some(t) = self.text()? else { return Ok(None) };
        let t = t.trim();
        if t.is_empty() {
            return Ok(None);
        }
        if t.len() > MAX_ID_LEN {
            return Err(self.err(ErrorKind::InvalidParameter, format!("identifier {} is longer than {MAX_ID_LEN} bytes", show(t))));
        }
        if t.chars().any(|c| c.is_control()) {
            return Err(self.err(ErrorKind::InvalidParameter, format!("identifier {} contains control characters", show(t))));
        }
        if let Some(c) = t.chars().find(|&c| invisible(c)) {
            return Err(self
                .err(ErrorKind::InvalidParameter, format!("identifier {} contains the invisible character U+{:04X}", show(t), c as u32))
                .hint("identifiers may not hold bidirectional controls or zero-width characters: two ids that look alike must be equal"));
        }
        Ok(Some(t.to_string()))
    }

    pub fn required_id(&self, what: &str) -> Result<String> {
        self.id()?.ok_or_else(|| self.err(ErrorKind::InvalidParameter, format!("missing {what}")).hint(MISSING_HINT))
    }

    /// Free text, trimmed and cut to MAX_TEXT_LEN bytes; None when absent or empty.
    pub fn free_text(&self) -> Result<Option<String>> {
        Ok(self.text()?.map(str::trim).filter(|t| !t.is_empty()).map(|t| truncate(t, MAX_TEXT_LEN)))
    }

    /// A whole number (integer JSON number, or a string of digits).
    pub fn integer(&self) -> Result<Option<i64>> {
        let Some(t) = self.text()? else { return Ok(None) };
        let t = t.trim();
        if let Ok(v) = t.parse::<i64>() {
            return Ok(Some(v));
        }
        // 2.0 is a whole number written as a decimal
        if let Some((int, frac)) = t.split_once('.') {
            if !frac.is_empty() && frac.bytes().all(|b| b == b'0') {
                if let Ok(v) = int.parse::<i64>() {
                    return Ok(Some(v));
                }
            }
        }
        Err(self.err(ErrorKind::InvalidText, format!("{} is not a whole number", show(t))))
    }
}

pub fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

pub fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
}

/// Parses JSON text with serde_json's nesting limit (128), mapping failures to our errors.
pub fn parse(text: &str) -> Result<Value> {
    serde_json::from_str(text).map_err(|e| {
        let msg = e.to_string();
        if msg.contains("recursion limit") {
            Error::new(ErrorKind::LimitExceeded, "payload is nested more than 128 levels deep")
                .hint("flatten the payload; canonical order and event payloads need a few levels at most")
        } else {
            Error::new(ErrorKind::InvalidText, format!("payload is not valid JSON: {msg}"))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(v: serde_json::Value) -> Result<Option<String>> {
        Node::root(&v).id()
    }

    #[test]
    fn ids_are_bounded_and_visible() {
        assert_eq!(id(serde_json::json!(" c42 ")).unwrap().as_deref(), Some("c42"));
        assert_eq!(id(serde_json::json!(42)).unwrap().as_deref(), Some("42"));
        assert!(id(serde_json::json!("x".repeat(MAX_ID_LEN))).is_ok());
        assert_eq!(id(serde_json::json!("x".repeat(MAX_ID_LEN + 1))).unwrap_err().kind, ErrorKind::InvalidParameter);
        for bad in ["c\u{202E}24", "c\u{200B}42", "\u{FEFF}c42", "c4\u{2066}2", "c\u{0007}"] {
            let e = id(serde_json::json!(bad)).unwrap_err();
            assert_eq!(e.kind, ErrorKind::InvalidParameter, "{bad:?}");
        }
        // accents and other scripts are ordinary characters
        assert!(id(serde_json::json!("kunde-Müller-東京")).is_ok());
    }
}
