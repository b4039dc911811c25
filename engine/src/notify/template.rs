//! Message templates (e-mail, push, in-app) on minijinja, Jinja2's syntax in Rust.
//!
//! A template has a subject, an HTML body and a text body. They are compiled once per version
//! and rendered with:
//! - strict undefined variables (`{{ item.colour }}` is an error, never an empty string);
//! - auto-escaping of the HTML body (a product title `<b>` renders as `&lt;b&gt;`), none in the
//!   subject and the text body;
//! - fuel (each instruction costs one; a runaway loop stops with an error);
//! - a recursion limit (a macro calling itself stops with an error, not a stack overflow);
//! - an output cap per part;
//! - a memory budget, which the caller enforces by running them under [`crate::budget`]
//!   ([`over_budget`] is its error).
//!
//! Validation ([`compile`]) rejects a syntax error and a variable outside [`VARIABLES`] with the
//! line and column, then renders the template once against [`sample`] so an attribute no item
//! has (`item.colour`) is found on insert rather than at send time.
use std::collections::BTreeSet;
use std::io;

use minijinja::{AutoEscape, Environment, ErrorKind as Mj, UndefinedBehavior};
use serde::Serialize;

use super::bound::{self, Bound};
use crate::error::{show, Error, ErrorKind, Result};

/// The variables a template may use, and what they hold (the hint of an unknown-variable error).
pub const VARIABLES: &[(&str, &str)] = &[
    ("customer", "customer.id, customer.name, customer.timezone, customer.locale"),
    (
        "items",
        "a list; each item has id, title, brand, category, price (\"19.99 EUR\"), price_amount (\"19.99\"), price_minor \
         (1999), currency, available, in_stock, availability (\"Only 3 left\"), link, reason",
    ),
    ("trigger", "trigger.name, trigger.kind"),
    ("style", "the copy style chosen for this customer"),
    ("rec_id", "the recommendation id the links carry"),
    ("link", "a link to the shop carrying the rec_id"),
];

/// minijinja's own globals and tests that a template may name.
const GLOBALS: &[&str] = &["range", "dict", "namespace", "loop", "true", "false", "none", "True", "False", "None"];

/// The three parts of a template, by name. `html` is absent for push and in-app messages.
#[derive(Debug, Clone, Copy)]
pub struct Parts<'a> {
    pub subject: &'a str,
    pub html: Option<&'a str>,
    pub text: &'a str,
}

/// Bounds on one render.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Instructions per part before "out of fuel".
    pub fuel: u64,
    /// Nesting of loops, conditions and macro calls.
    pub recursion: usize,
    /// Bytes of output per part.
    pub max_output: usize,
    /// Bytes of template source per part.
    pub max_source: usize,
    /// Bytes a compile and render may hold at once: the caller runs them under this budget
    /// (crate::budget), since fuel counts instructions, not memory.
    pub max_memory: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { fuel: 100_000, recursion: 64, max_output: 256 * 1024, max_source: 64 * 1024, max_memory: 32 << 20 }
    }
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Customer {
    pub id: String,
    pub name: String,
    pub timezone: String,
    pub locale: String,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Item {
    pub id: String,
    pub title: String,
    pub brand: String,
    pub category: String,
    pub price: String,
    pub price_amount: String,
    pub price_minor: Option<i64>,
    pub currency: String,
    pub available: i64,
    pub in_stock: bool,
    pub availability: String,
    pub link: String,
    pub reason: String,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Trigger {
    pub name: String,
    pub kind: String,
}

/// What a template sees.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Context {
    pub customer: Customer,
    pub items: Vec<Item>,
    pub trigger: Trigger,
    pub style: String,
    pub rec_id: i64,
    pub link: String,
}

/// What a field costs as a template value besides its text (a value's header, its map slot).
const FIELD_BYTES: usize = 128;

impl Context {
    /// The context's size as a template sees it: its text, and [`FIELD_BYTES`] per field.
    pub fn bytes(&self) -> usize {
        let c = &self.customer;
        let customer = c.id.len() + c.name.len() + c.timezone.len() + c.locale.len() + 4 * FIELD_BYTES;
        let items: usize = self
            .items
            .iter()
            .map(|i| {
                [&i.id, &i.title, &i.brand, &i.category, &i.price, &i.price_amount, &i.currency, &i.availability, &i.link, &i.reason]
                    .iter()
                    .map(|s| s.len())
                    .sum::<usize>()
                    + 14 * FIELD_BYTES
            })
            .sum();
        customer + items + self.trigger.name.len() + self.trigger.kind.len() + self.style.len() + self.link.len() + 10 * FIELD_BYTES
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub subject: String,
    pub html: Option<String>,
    pub text: String,
}

const SUBJECT: &str = "subject";
const HTML: &str = "html_body.html";
const TEXT: &str = "text_body";

fn part_label(name: &str) -> &'static str {
    match name {
        SUBJECT => "subject",
        HTML => "html_body",
        _ => "text_body",
    }
}

/// A validated template, ready to render many times.
pub struct Compiled {
    env: Environment<'static>,
    sources: Vec<(&'static str, String)>,
    has_html: bool,
    limits: Limits,
    /// The most a render may hold, summed over the parts; None when a part is not bounded
    /// (super::bound)
    bound: Option<Bound>,
}

impl std::fmt::Debug for Compiled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Compiled").field("has_html", &self.has_html).field("limits", &self.limits).finish()
    }
}

/// 1-based line and column (in characters) of byte offset `at` in `src`.
fn line_col(src: &str, at: usize) -> (usize, usize) {
    let at = at.min(src.len());
    let mut at = at;
    while !src.is_char_boundary(at) {
        at -= 1;
    }
    let before = &src[..at];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

/// The first place `name` appears as a whole identifier path in `src`.
fn find_name(src: &str, name: &str) -> Option<usize> {
    let ident = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let bytes = src.as_bytes();
    let mut from = 0;
    while let Some(p) = src[from..].find(name) {
        let at = from + p;
        let end = at + name.len();
        let left_ok = at == 0 || !(ident(bytes[at - 1]) || bytes[at - 1] == b'.');
        let right_ok = end >= bytes.len() || !ident(bytes[end]);
        if left_ok && right_ok {
            return Some(at);
        }
        from = at + name.len().max(1);
    }
    None
}

fn mj_error(template: &str, part: &str, src: &str, e: &minijinja::Error, limits: &Limits) -> Error {
    let place = match (e.range(), e.line()) {
        (Some(r), _) => {
            let (l, c) = line_col(src, r.start);
            format!(" line {l} column {c}")
        }
        (None, Some(l)) => format!(" line {l}"),
        _ => String::new(),
    };
    let expr = e.range().and_then(|r| src.get(r)).map(str::trim).filter(|x| !x.is_empty() && x.len() <= 80);
    let what = match (e.kind(), e.detail(), expr) {
        (Mj::UndefinedError, _, Some(x)) => format!("{x} is undefined"),
        (Mj::WriteFailure, _, _) => "the output is too long".to_string(),
        (_, Some(d), _) => format!("{}: {d}", e.kind()),
        _ => e.kind().to_string(),
    };
    let msg = format!("template {template}, {}{place}: {what}", part_label(part));
    match e.kind() {
        Mj::SyntaxError | Mj::BadEscape => Error::new(ErrorKind::Syntax, msg)
            .hint("templates use Jinja2 syntax: {{ expression }}, {% for item in items %} … {% endfor %}, {% if … %} … {% endif %}"),
        Mj::UndefinedError => Error::new(ErrorKind::UndefinedObject, msg).hint(hint_variables()),
        Mj::OutOfFuel => {
            Error::new(ErrorKind::LimitExceeded, msg).hint(format!("a render may run {} instructions; loop over items rather than large ranges", limits.fuel))
        }
        Mj::WriteFailure => Error::new(ErrorKind::LimitExceeded, format!("{msg} (more than {} bytes)", limits.max_output))
            .hint("a rendered part may be at most that long; shorten the template"),
        Mj::InvalidOperation if e.detail().is_some_and(|d| d.contains("recursion")) => Error::new(ErrorKind::LimitExceeded, msg)
            .hint(format!("templates may nest {} levels deep; a macro must not call itself without end", limits.recursion)),
        _ => Error::invalid(msg).hint("check the expression at that place; filters and tests are Jinja2's (upper, join, default, length …)"),
    }
}

/// The error of a compile or render that asked for more than `limits.max_memory`.
pub fn over_budget(name: &str, limits: &Limits) -> Error {
    Error::new(ErrorKind::LimitExceeded, format!("template {name} needs more than {} MB of memory to render", limits.max_memory >> 20)).hint(
        "a render may hold that much at once; a template that grows a value on every line ({% set b = a ~ a %}) or repeats a long string asks for more: write text out instead of building it in variables",
    )
}

fn hint_variables() -> String {
    let list: Vec<String> = VARIABLES.iter().map(|(n, what)| format!("{n} ({what})")).collect();
    format!("a template may use: {}", list.join("; "))
}

fn environment(limits: &Limits) -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_fuel(Some(limits.fuel));
    env.set_recursion_limit(limits.recursion);
    env.set_auto_escape_callback(|name| if name.ends_with(".html") { AutoEscape::Html } else { AutoEscape::None });
    env
}

/// Compiles and validates a template. `name` labels errors (`"abandoned_cart" v2`).
pub fn compile(name: &str, parts: Parts<'_>, limits: Limits) -> Result<Compiled> {
    let mut env = environment(&limits);
    let sources: Vec<(&'static str, &str)> =
        [(SUBJECT, Some(parts.subject)), (HTML, parts.html), (TEXT, Some(parts.text))].into_iter().filter_map(|(n, s)| s.map(|s| (n, s))).collect();
    for &(part, src) in &sources {
        if src.len() > limits.max_source {
            return Err(Error::new(
                ErrorKind::LimitExceeded,
                format!("template {name}, {} is {} bytes, more than the {} allowed", part_label(part), src.len(), limits.max_source),
            )
            .hint("keep each part under that size; put long boilerplate in the mail system's layout"));
        }
        env.add_template_owned(part.to_string(), src.to_string()).map_err(|e| mj_error(name, part, src, &e, &limits))?;
    }
    let allowed: BTreeSet<&str> = VARIABLES.iter().map(|(n, _)| *n).chain(GLOBALS.iter().copied()).collect();
    for &(part, src) in &sources {
        let t = env.get_template(part).map_err(|e| mj_error(name, part, src, &e, &limits))?;
        let mut unknown: Vec<String> = t.undeclared_variables(false).into_iter().filter(|v| !allowed.contains(v.as_str())).collect();
        unknown.sort();
        if let Some(v) = unknown.first() {
            let place = find_name(src, v).map_or(String::new(), |at| {
                let (l, c) = line_col(src, at);
                format!(" line {l} column {c}")
            });
            return Err(Error::new(ErrorKind::UndefinedObject, format!("template {name}, {}{place}: unknown variable {}", part_label(part), show(v)))
                .hint(hint_variables()));
        }
    }
    let bound = sources.iter().try_fold(Bound::default(), |sum, (_, src)| Some(sum.plus(bound::of_source(src)?)));
    let sources = sources.into_iter().map(|(p, s)| (p, s.to_string())).collect();
    let compiled = Compiled { env, sources, has_html: parts.html.is_some(), limits, bound };
    compiled.render(name, &sample())?;
    Ok(compiled)
}

/// An output sink that stops at `max` bytes.
struct Capped {
    buf: Vec<u8>,
    max: usize,
}

impl io::Write for Capped {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        if self.buf.len() + b.len() > self.max {
            return Err(io::Error::other("output cap"));
        }
        self.buf.extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Compiled {
    fn render_one(&self, name: &str, part: &str, src: &str, ctx: &Context) -> Result<String> {
        let t = self.env.get_template(part).map_err(|e| mj_error(name, part, src, &e, &self.limits))?;
        let mut out = Capped { buf: Vec::with_capacity(1024), max: self.limits.max_output };
        t.render_captured_to(ctx, &mut out).map_err(|e| mj_error(name, part, src, &e, &self.limits))?;
        String::from_utf8(out.buf).map_err(|_| Error::invalid(format!("template {name}, {}: rendered text is not UTF-8", part_label(part))))
    }

    /// The most a render with `ctx` may hold, in bytes, when every part is bounded
    /// (super::bound): the parts' bounds at the context's size, the three outputs (each at most
    /// `max_output`, twice that while its buffer grows) and a megabyte for minijinja's own state.
    /// When it is within `Limits::max_memory` the render may run without the budget.
    pub fn memory_bound(&self, ctx: &Context) -> Option<usize> {
        let b = self.bound?.at(ctx.bytes()) + (6 * self.limits.max_output) as f64 + (1 << 20) as f64;
        // (a bound past usize is no bound)
        (b < usize::MAX as f64 / 2.0).then_some(b as usize)
    }

    /// Renders subject, HTML body (when the template has one) and text body.
    pub fn render(&self, name: &str, ctx: &Context) -> Result<Rendered> {
        let src = |part: &str| self.sources.iter().find(|(p, _)| *p == part).map_or("", |(_, s)| s.as_str());
        Ok(Rendered {
            subject: self.render_one(name, SUBJECT, src(SUBJECT), ctx)?.trim().to_string(),
            html: if self.has_html { Some(self.render_one(name, HTML, src(HTML), ctx)?) } else { None },
            text: self.render_one(name, TEXT, src(TEXT), ctx)?,
        })
    }
}

/// The context validation renders against: every variable and attribute set, three items.
pub fn sample() -> Context {
    let item = |i: usize, available: i64| Item {
        id: format!("SKU-{i}"),
        title: format!("Sample item {i}"),
        brand: "Brand".into(),
        category: "category".into(),
        price: "19.99 EUR".into(),
        price_amount: "19.99".into(),
        price_minor: Some(1999),
        currency: "EUR".into(),
        available,
        in_stock: available > 0,
        availability: super::availability(available, false, false, 5),
        link: format!("https://shop.example/item/SKU-{i}?rec_id=1"),
        reason: "bought together".into(),
    };
    Context {
        customer: Customer { id: "c1".into(), name: "Alex".into(), timezone: "Europe/Berlin".into(), locale: "en".into() },
        items: vec![item(1, 40), item(2, 3), item(3, 0)],
        trigger: Trigger { name: "abandoned_cart".into(), kind: "abandoned_cart".into() },
        style: "friendly".into(),
        rec_id: 1,
        link: "https://shop.example/?rec_id=1".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts<'a>(subject: &'a str, html: Option<&'a str>, text: &'a str) -> Parts<'a> {
        Parts { subject, html, text }
    }

    #[test]
    fn renders_items_with_escaping_in_html_only() {
        let t = compile(
            "t",
            parts(
                "{{ items[0].title }} for {{ customer.name }}",
                Some("<ul>{% for item in items %}<li>{{ item.title }} {{ item.price }}</li>{% endfor %}</ul>"),
                "{% for item in items %}{{ item.title }}: {{ item.availability }}\n{% endfor %}",
            ),
            Limits::default(),
        )
        .unwrap();
        let mut ctx = sample();
        ctx.items[0].title = "<b>Phone</b> & case".into();
        let r = t.render("t", &ctx).unwrap();
        assert_eq!(r.subject, "<b>Phone</b> & case for Alex");
        let html = r.html.unwrap();
        assert!(html.contains("&lt;b&gt;Phone&lt;&#x2f;b&gt; &amp; case 19.99 EUR"), "{html}");
        assert!(r.text.starts_with("<b>Phone</b> & case: In stock\nSample item 2: Only 3 left\nSample item 3: Out of stock\n"), "{}", r.text);
    }

    #[test]
    fn syntax_errors_give_line_and_column() {
        let e = compile("t", parts("Hi", None, "line one\n  {% for item in items %}{{ item.title }"), Limits::default()).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Syntax);
        assert!(e.message.starts_with("template t, text_body line 2 column"), "{}", e.message);
        let e = compile("t", parts("{% if %}", None, "x"), Limits::default()).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Syntax);
        assert!(e.message.starts_with("template t, subject line 1 column 7"), "{}", e.message);
    }

    #[test]
    fn unknown_variables_are_rejected_with_their_place() {
        let e = compile("t", parts("Hi", None, "ok {{ customer.name }}\nand {{ price_list }}"), Limits::default()).unwrap_err();
        assert_eq!(e.kind, ErrorKind::UndefinedObject);
        assert_eq!(e.message, "template t, text_body line 2 column 8: unknown variable \"price_list\"");
        assert!(e.hint.unwrap().contains("items (a list"));
        // an attribute no item has is found by the sample render, in strict mode
        let e = compile("t", parts("Hi", None, "{% for item in items %}{{ item.colour }}{% endfor %}"), Limits::default()).unwrap_err();
        assert_eq!(e.kind, ErrorKind::UndefinedObject);
        assert!(e.message.contains("text_body line 1"), "{}", e.message);
        // loop variables, set variables and macros are declared, not unknown
        compile(
            "t",
            parts(
                "{% set n = items|length %}{{ n }} picks",
                None,
                "{% macro line(i) %}{{ i.title }}{% endmacro %}{% for item in items %}{{ loop.index }} {{ line(item) }}{% endfor %}{{ range(2)|list|length }}",
            ),
            Limits::default(),
        )
        .unwrap();
    }

    #[test]
    fn runaway_templates_stop_with_an_error() {
        let limits = Limits::default();
        let e = compile("t", parts("x", None, "{% for i in range(10000) %}{% for j in range(10000) %}.{% endfor %}{% endfor %}"), limits).unwrap_err();
        assert_eq!(e.kind, ErrorKind::LimitExceeded, "{e:?}");
        assert!(e.message.contains("fuel"), "{}", e.message);
        let e = compile("t", parts("x", None, "{% macro f(n) %}{{ f(n) }}{% endmacro %}{{ f(1) }}"), limits).unwrap_err();
        assert_eq!(e.kind, ErrorKind::LimitExceeded, "{e:?}");
        let e = compile("t", parts("x", None, "{{ 'x' * 1000000 }}"), limits).unwrap_err();
        assert_eq!(e.kind, ErrorKind::LimitExceeded, "{e:?}");
        assert!(e.message.contains("more than 262144 bytes"), "{}", e.message);
        let big = "a".repeat(limits.max_source + 1);
        assert_eq!(compile("t", parts("x", None, &big), limits).unwrap_err().kind, ErrorKind::LimitExceeded);
    }

    #[test]
    fn positions_count_characters() {
        assert_eq!(line_col("ab\ncd", 4), (2, 2));
        assert_eq!(line_col("é{{", 2), (1, 2));
        assert_eq!(find_name("{{ customer.x }} {{ x }}", "x"), Some(20));
        assert_eq!(find_name("{{ max }}", "x"), None);
    }
}
