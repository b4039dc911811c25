//! Data-driven channels: canonical field → JSON path (or constant) + transform.
//!
//! A mapping is the JSON object `{"<field>": {"path": "$.a.b", "transform": "money"}, ...}`
//! that `reco.channel_mapping(channel)` builds from the rows of `reco.channel_mappings`.
//! Order fields are read from the payload; `line.*` fields from each element of `lines`.
//!
//! One cohesive thing, longer than most files: the mapping language (paths, constants,
//! transforms), its validation and its evaluation belong together.
use super::*;
use crate::standardize::time::EpochUnit;
use chrono_tz::Tz;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    ExternalId,
    CustomerId,
    PlacedAt,
    Currency,
    Status,
    Subtotal,
    Discount,
    Shipping,
    Tax,
    Total,
    Country,
    Email,
    DeliverySpeed,
    Lines,
    LineItemId,
    LineGroupId,
    LineTitle,
    LineQty,
    LineUnitPrice,
    LineTotal,
    LineDiscount,
    LineSize,
    LineColor,
}

/// What a field holds; decides the transforms it allows and its default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Id,
    Text,
    Time,
    Amount,
    Int,
    Size,
    Color,
    Country,
    Currency,
    Status,
    Array,
}

const FIELDS: [(&str, Field, Kind); 23] = [
    ("external_id", Field::ExternalId, Kind::Id),
    ("customer_id", Field::CustomerId, Kind::Id),
    ("placed_at", Field::PlacedAt, Kind::Time),
    ("currency", Field::Currency, Kind::Currency),
    ("status", Field::Status, Kind::Status),
    ("subtotal", Field::Subtotal, Kind::Amount),
    ("discount", Field::Discount, Kind::Amount),
    ("shipping", Field::Shipping, Kind::Amount),
    ("tax", Field::Tax, Kind::Amount),
    ("total", Field::Total, Kind::Amount),
    ("country", Field::Country, Kind::Country),
    ("email", Field::Email, Kind::Id),
    ("delivery_speed", Field::DeliverySpeed, Kind::Text),
    ("lines", Field::Lines, Kind::Array),
    ("line.item_id", Field::LineItemId, Kind::Id),
    ("line.group_id", Field::LineGroupId, Kind::Id),
    ("line.title", Field::LineTitle, Kind::Text),
    ("line.qty", Field::LineQty, Kind::Int),
    ("line.unit_price", Field::LineUnitPrice, Kind::Amount),
    ("line.line_total", Field::LineTotal, Kind::Amount),
    ("line.discount", Field::LineDiscount, Kind::Amount),
    ("line.size", Field::LineSize, Kind::Size),
    ("line.color", Field::LineColor, Kind::Color),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transform {
    Text,
    Lower,
    Upper,
    Timestamp,
    EpochS,
    EpochMs,
    Money,
    Minor,
    Integer,
    Size,
    Color,
    Country,
    Currency,
    Status,
    None,
}

impl Kind {
    fn transforms(self) -> &'static [(&'static str, Transform)] {
        match self {
            Kind::Id => &[("text", Transform::Text), ("lower", Transform::Lower), ("upper", Transform::Upper)],
            Kind::Text => &[("text", Transform::Text)],
            Kind::Time => &[("timestamp", Transform::Timestamp), ("epoch_s", Transform::EpochS), ("epoch_ms", Transform::EpochMs)],
            Kind::Amount => &[("money", Transform::Money), ("minor", Transform::Minor)],
            Kind::Int => &[("integer", Transform::Integer)],
            Kind::Size => &[("size", Transform::Size)],
            Kind::Color => &[("color", Transform::Color)],
            Kind::Country => &[("country", Transform::Country)],
            Kind::Currency => &[("currency", Transform::Currency)],
            Kind::Status => &[("status", Transform::Status)],
            Kind::Array => &[("array", Transform::None)],
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Step {
    Key(String),
    Index(usize),
}

/// A JSON path of the subset `$`, `.key`, `["key"]`, `[n]`.
#[derive(Debug, Clone, PartialEq)]
pub struct JsonPath {
    text: String,
    steps: Vec<Step>,
}

impl JsonPath {
    pub fn parse(text: &str) -> Result<JsonPath> {
        let bad = |why: &str| {
            Error::invalid(format!("JSON path {} is not valid: {why}", show(text)))
                .hint("paths start with $ and use .key, [\"key\"] or [index], e.g. $.customer.id or $.items[0].sku")
        };
        let t = text.trim();
        let mut rest = t.strip_prefix('$').ok_or_else(|| bad("it must start with $"))?;
        let mut steps = Vec::new();
        while !rest.is_empty() {
            if let Some(r) = rest.strip_prefix('.') {
                let end = r.find(['.', '[']).unwrap_or(r.len());
                let key = &r[..end];
                if key.is_empty() || !key.chars().all(|c| c.is_alphanumeric() || c == '_' || c == '-') {
                    return Err(bad("a key after '.' must be letters, digits, _ or -; quote others as [\"key\"]"));
                }
                steps.push(Step::Key(key.to_string()));
                rest = &r[end..];
            } else if let Some(r) = rest.strip_prefix('[') {
                let end = r.find(']').ok_or_else(|| bad("'[' without ']'"))?;
                let inner = r[..end].trim();
                if let Ok(i) = inner.parse::<usize>() {
                    steps.push(Step::Index(i));
                } else if inner.len() >= 2 && (inner.starts_with('"') && inner.ends_with('"') || inner.starts_with('\'') && inner.ends_with('\'')) {
                    steps.push(Step::Key(inner[1..inner.len() - 1].to_string()));
                } else {
                    return Err(bad("brackets hold an index or a quoted key"));
                }
                rest = &r[end + 1..];
            } else {
                return Err(bad("expected '.' or '['"));
            }
            if steps.len() > 32 {
                return Err(bad("more than 32 steps"));
            }
        }
        Ok(JsonPath { text: t.to_string(), steps })
    }

    pub fn eval<'v>(&self, root: &'v Value) -> &'v Value {
        static NULL: Value = Value::Null;
        let mut v = root;
        for s in &self.steps {
            v = match s {
                Step::Key(k) => v.get(k.as_str()),
                Step::Index(i) => v.get(*i),
            }
            .unwrap_or(&NULL);
        }
        v
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Source {
    Path(JsonPath),
    Const(Value),
}

#[derive(Debug, Clone, PartialEq)]
struct FieldMap {
    field: Field,
    name: &'static str,
    source: Source,
    transform: Transform,
    zone: Tz,
}

/// A validated mapping.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Mapping {
    fields: Vec<FieldMap>,
}

/// The hint listing the fields and their transforms.
pub fn fields_hint() -> String {
    let list: Vec<String> = FIELDS.iter().map(|(n, _, k)| format!("{n} ({})", k.transforms().iter().map(|t| t.0).collect::<Vec<_>>().join("|"))).collect();
    format!("fields and transforms: {}", list.join(", "))
}

/// Validates one mapping entry; used by the table trigger and by `Mapping::from_json`.
fn field_map(field: &str, path: Option<&str>, value: Option<&Value>, transform: Option<&str>, zone: Option<&str>) -> Result<FieldMap> {
    let (name, f, kind) = FIELDS
        .iter()
        .find(|(n, _, _)| *n == field)
        .copied()
        .ok_or_else(|| Error::invalid(format!("mapping field {} is not a canonical field", show(field))).hint(fields_hint()))?;
    let source = match (path, value) {
        (Some(p), None) => Source::Path(JsonPath::parse(p)?),
        (None, Some(v)) if kind != Kind::Array && !v.is_null() => Source::Const(v.clone()),
        _ => {
            return Err(Error::invalid(format!("mapping field {name} needs either a path or a constant value, not both or neither"))
                .hint("set path to a JSON path such as $.customer.id, or value to a constant (not for lines)"))
        }
    };
    let allowed = kind.transforms();
    let transform = match transform.map(str::trim).filter(|t| !t.is_empty()) {
        None => allowed[0].1,
        Some(t) => allowed.iter().find(|(n, _)| *n == t).map(|(_, tr)| *tr).ok_or_else(|| {
            Error::invalid(format!("transform {} does not apply to field {name}", show(t)))
                .hint(format!("{name} accepts: {}", allowed.iter().map(|a| a.0).collect::<Vec<_>>().join(", ")))
        })?,
    };
    let zone = match zone {
        Some(z) if kind == Kind::Time => time::zone(z)?,
        Some(_) => return Err(Error::invalid(format!("a zone applies only to placed_at, not to {name}")).hint("leave zone NULL on this row")),
        None => Tz::UTC,
    };
    Ok(FieldMap { field: f, name, source, transform, zone })
}

/// Validates one row of `reco.channel_mappings`.
pub fn validate_row(field: &str, path: Option<&str>, value: Option<&Value>, transform: Option<&str>, zone: Option<&str>) -> Result<()> {
    field_map(field, path, value, transform, zone).map(|_| ())
}

impl Mapping {
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// From `{"field": {"path"|"value", "transform", "zone"}}`.
    pub fn from_json(spec: &Value) -> Result<Mapping> {
        let root = Node::root(spec);
        let obj = root.as_object()?;
        let mut fields = Vec::with_capacity(obj.len());
        for (name, _) in obj {
            let e = root.get(name);
            e.as_object()?;
            let (p, v, t, z) = (e.get("path"), e.get("value"), e.get("transform"), e.get("zone"));
            let fm = field_map(name, p.text()?, (!v.is_null()).then_some(v.value), t.text()?, z.text()?).map_err(|x| x.at(e.path()))?;
            fields.push(fm);
        }
        Ok(Mapping { fields })
    }

    fn get(&self, f: Field) -> Option<&FieldMap> {
        self.fields.iter().find(|m| m.field == f)
    }

    fn has_line_fields(&self) -> bool {
        self.fields.iter().any(|m| m.name.starts_with("line"))
    }

    /// Builds the order (no `base`) or overrides the mapped fields of a built-in result.
    pub fn apply(&self, channel: &str, root: &Node, base: Option<Order>) -> Result<Order> {
        let payload = root.value;
        let mut o = match base {
            Some(o) => o,
            None => {
                for (f, n) in [
                    (Field::ExternalId, "external_id"),
                    (Field::CustomerId, "customer_id"),
                    (Field::PlacedAt, "placed_at"),
                    (Field::Currency, "currency"),
                    (Field::Lines, "lines"),
                    (Field::LineItemId, "line.item_id"),
                    (Field::LineQty, "line.qty"),
                ] {
                    if self.get(f).is_none() {
                        return Err(missing_field(channel, n));
                    }
                }
                if self.get(Field::LineUnitPrice).is_none() && self.get(Field::LineTotal).is_none() {
                    return Err(missing_field(channel, "line.unit_price (or line.line_total)"));
                }
                let cur = self.currency(payload)?.ok_or_else(|| self.missing(Field::Currency))?;
                let ext = self.id(Field::ExternalId, payload)?.ok_or_else(|| self.missing(Field::ExternalId))?;
                let cust = self.id(Field::CustomerId, payload)?.ok_or_else(|| self.missing(Field::CustomerId))?;
                let placed = self.time(payload)?.ok_or_else(|| self.missing(Field::PlacedAt))?;
                blank(channel, ext, cust, placed, &cur)
            }
        };
        if let Some(c) = self.currency(payload)? {
            o.currency = c.code;
        }
        let cur = money::currency(&o.currency)?;
        if let Some(v) = self.id(Field::ExternalId, payload)? {
            o.order_id = format!("{channel}:{v}");
            o.external_id = v;
        }
        if let Some(v) = self.id(Field::CustomerId, payload)? {
            o.customer_id = v;
        }
        if let Some(v) = self.time(payload)? {
            o.placed_at = v;
        }
        if let Some(m) = self.get(Field::Status) {
            if let Some(s) = with_node(m, payload, |n| n.text().map(|t| t.map(str::to_string)))? {
                o.status = Status::parse(&s).map_err(|e| e.at(self.where_(m)))?;
            }
        }
        for (f, slot) in [
            (Field::Subtotal, &mut o.subtotal_minor),
            (Field::Discount, &mut o.discount_minor),
            (Field::Shipping, &mut o.shipping_minor),
            (Field::Tax, &mut o.tax_minor),
            (Field::Total, &mut o.total_minor),
        ] {
            if let Some(m) = self.get(f) {
                if let Some(v) = with_node(m, payload, |n| amount_as(m.transform, n, &cur))? {
                    *slot = v;
                }
            }
        }
        if let Some(m) = self.get(Field::Country) {
            o.country = with_node(m, payload, country)?;
        }
        if let Some(m) = self.get(Field::Email) {
            o.email = with_node(m, payload, email)?;
        }
        if let Some(m) = self.get(Field::DeliverySpeed) {
            o.delivery_speed = with_node(m, payload, delivery)?;
        }
        if self.has_line_fields() {
            self.lines(channel, payload, &mut o, &cur)?;
        }
        Ok(o)
    }

    fn lines(&self, channel: &str, payload: &Value, o: &mut Order, cur: &money::Currency) -> Result<()> {
        let lines_path = match self.get(Field::Lines) {
            Some(FieldMap { source: Source::Path(p), .. }) => p.clone(),
            _ => JsonPath::parse(channels::lines_path(channel).unwrap_or("$.lines"))?,
        };
        let arr_v = lines_path.eval(payload);
        let arr_node = Node::with_path(arr_v, lines_path.as_str());
        let elems: Vec<&Value> = arr_node.elements()?.map(|n| n.value).collect();
        let building = o.lines.is_empty();
        if !building && elems.len() != o.lines.len() {
            return Err(
                arr_node.err(ErrorKind::InvalidParameter, format!("mapped lines array has {} elements but the order has {} lines", elems.len(), o.lines.len()))
            );
        }
        for (i, line_v) in elems.into_iter().enumerate() {
            let prefix = format!("{}[{i}]", lines_path.as_str());
            let read = |f: Field| -> Option<(&FieldMap, String)> {
                self.get(f).map(|m| {
                    let p = match &m.source {
                        Source::Path(p) => format!("{prefix}{}", &p.as_str()[1..]),
                        Source::Const(_) => format!("{prefix} (constant {})", m.name),
                    };
                    (m, p)
                })
            };
            macro_rules! field {
                ($f:expr, $conv:expr) => {
                    match read($f) {
                        Some((m, path)) => {
                            let n = Node::with_path(source_value(m, line_v), &path);
                            #[allow(clippy::redundant_closure_call)]
                            Some(($conv)(m, &n)?)
                        }
                        None => None,
                    }
                };
            }
            let item_id: Option<Option<String>> = field!(Field::LineItemId, |m: &FieldMap, n: &Node| id_as(m.transform, n));
            let group_id = field!(Field::LineGroupId, |m: &FieldMap, n: &Node| id_as(m.transform, n));
            let title = field!(Field::LineTitle, |_m: &FieldMap, n: &Node| n.free_text());
            let qty = field!(Field::LineQty, |_m: &FieldMap, n: &Node| quantity(n));
            let unit = field!(Field::LineUnitPrice, |m: &FieldMap, n: &Node| amount_as(m.transform, n, cur));
            let total = field!(Field::LineTotal, |m: &FieldMap, n: &Node| amount_as(m.transform, n, cur));
            let disc = field!(Field::LineDiscount, |m: &FieldMap, n: &Node| amount_as(m.transform, n, cur));
            let size = field!(Field::LineSize, |_m: &FieldMap, n: &Node| lenient_size(n));
            let color = field!(Field::LineColor, |_m: &FieldMap, n: &Node| lenient_color(n));
            if building {
                let here = Node::with_path(line_v, &prefix);
                let item_id = item_id.flatten().ok_or_else(|| here.err(ErrorKind::InvalidParameter, "missing line item id").hint(crate::json::MISSING_HINT))?;
                let qty = qty.ok_or_else(|| here.err(ErrorKind::InvalidParameter, "missing quantity").hint(crate::json::MISSING_HINT))?;
                let unit = match (unit.flatten(), total.flatten()) {
                    (Some(u), _) => u,
                    (None, Some(t)) => (t + i64::from(qty) / 2) / i64::from(qty),
                    (None, None) => return Err(here.err(ErrorKind::InvalidParameter, "missing unit price").hint(crate::json::MISSING_HINT)),
                };
                o.lines.push(Line {
                    line_no: 0,
                    item_id,
                    group_id: group_id.flatten(),
                    title: title.flatten(),
                    qty,
                    unit_price_minor: unit,
                    discount_minor: disc.flatten().unwrap_or(0),
                    size: size.flatten(),
                    color: color.flatten(),
                });
            } else {
                let l = &mut o.lines[i];
                if let Some(Some(v)) = item_id {
                    l.item_id = v;
                }
                if let Some(v) = group_id {
                    l.group_id = v;
                }
                if let Some(v) = title {
                    l.title = v;
                }
                if let Some(v) = qty {
                    l.qty = v;
                }
                if let Some(Some(v)) = unit {
                    l.unit_price_minor = v;
                } else if let Some(Some(t)) = total {
                    l.unit_price_minor = (t + i64::from(l.qty) / 2) / i64::from(l.qty);
                }
                if let Some(Some(v)) = disc {
                    l.discount_minor = v;
                }
                if let Some(v) = size {
                    l.size = v;
                }
                if let Some(v) = color {
                    l.color = v;
                }
            }
        }
        Ok(())
    }

    fn where_(&self, m: &FieldMap) -> String {
        match &m.source {
            Source::Path(p) => p.as_str().to_string(),
            Source::Const(_) => format!("constant {}", m.name),
        }
    }

    fn missing(&self, f: Field) -> Error {
        let m = self.get(f);
        Error::invalid(format!("missing {}", m.map_or("field", |m| m.name)))
            .at(m.map(|m| self.where_(m)).unwrap_or_default())
            .hint("the mapping's path finds nothing in this payload: check the path in reco.channel_mappings")
    }

    fn id(&self, f: Field, payload: &Value) -> Result<Option<String>> {
        match self.get(f) {
            Some(m) => with_node(m, payload, |n| id_as(m.transform, n)),
            None => Ok(None),
        }
    }

    fn currency(&self, payload: &Value) -> Result<Option<money::Currency>> {
        match self.get(Field::Currency) {
            Some(m) => with_node(m, payload, |n| if n.is_null() { Ok(None) } else { currency(n).map(Some) }),
            None => Ok(None),
        }
    }

    fn time(&self, payload: &Value) -> Result<Option<DateTime<Utc>>> {
        match self.get(Field::PlacedAt) {
            Some(m) => {
                let unit = match m.transform {
                    Transform::EpochS => EpochUnit::Seconds,
                    Transform::EpochMs => EpochUnit::Millis,
                    _ => EpochUnit::Auto,
                };
                with_node(m, payload, |n| timestamp(n, m.zone, unit))
            }
            None => Ok(None),
        }
    }
}

fn source_value<'v>(m: &'v FieldMap, line: &'v Value) -> &'v Value {
    match &m.source {
        Source::Path(p) => p.eval(line),
        Source::Const(v) => v,
    }
}

fn missing_field(channel: &str, field: &str) -> Error {
    Error::invalid(format!("the mapping of channel {} has no {field}", show(channel))).hint(format!(
        "a channel that is not built in needs external_id, customer_id, placed_at, currency, lines, line.item_id, line.qty and line.unit_price rows in reco.channel_mappings; {}",
        fields_hint()
    ))
}

fn with_node<T>(m: &FieldMap, payload: &Value, f: impl FnOnce(&Node) -> Result<T>) -> Result<T> {
    match &m.source {
        Source::Path(p) => f(&Node::with_path(p.eval(payload), p.as_str())),
        Source::Const(v) => {
            let label = format!("constant {}", m.name);
            f(&Node::with_path(v, &label))
        }
    }
}

fn id_as(t: Transform, n: &Node) -> Result<Option<String>> {
    Ok(n.id()?.map(|v| match t {
        Transform::Lower => v.to_lowercase(),
        Transform::Upper => v.to_uppercase(),
        _ => v,
    }))
}

fn amount_as(t: Transform, n: &Node, cur: &money::Currency) -> Result<Option<i64>> {
    match t {
        Transform::Minor => minor_units(n),
        _ => amount(n, cur),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn paths() {
        let p = JsonPath::parse("$.a[\"b c\"][1].d").unwrap();
        assert_eq!(p.eval(&json!({"a": {"b c": [0, {"d": 7}]}})), &json!(7));
        assert_eq!(p.eval(&json!({"a": 1})), &Value::Null);
        assert_eq!(JsonPath::parse("$").unwrap().eval(&json!(3)), &json!(3));
        for bad in ["a.b", "$.", "$[x]", "$.a[", "$..a", "$.a b"] {
            assert!(JsonPath::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn row_validation() {
        assert!(validate_row("customer_id", Some("$.buyer.ref"), None, None, None).is_ok());
        assert!(validate_row("placed_at", Some("$.t"), None, Some("epoch_ms"), Some("Europe/Paris")).is_ok());
        assert!(validate_row("currency", None, Some(&json!("EUR")), None, None).is_ok());
        let e = validate_row("customer", Some("$.x"), None, None, None).unwrap_err();
        assert!(e.hint.unwrap().contains("customer_id"));
        assert!(validate_row("total", Some("$.t"), None, Some("epoch_ms"), None).unwrap_err().message.contains("does not apply"));
        assert!(validate_row("total", Some("$.t"), Some(&json!(1)), None, None).is_err());
        assert!(validate_row("lines", None, Some(&json!([])), None, None).is_err());
        assert!(validate_row("placed_at", Some("$.t"), None, None, Some("Nowhere/Land")).is_err());
        assert!(validate_row("total", Some("$.t"), None, None, Some("UTC")).is_err());
    }
}
