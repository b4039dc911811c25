//! A static bound on what rendering a template part may hold in memory, so that most renders
//! can run on the caller's thread instead of a budgeted worker (crate::budget).
//!
//! The budgeted worker exists for templates whose memory no limit of minijinja bounds: fuel
//! counts instructions, and one instruction may double a string (`{% set b = a ~ a %}`), repeat
//! it (`'x' * 10**9`), or call a function or macro that does. Handing every render to another
//! thread and waiting for it costs more than the render itself, though, and the usual template
//! (loops over the items, conditions, attribute look-ups, a few filters) cannot grow anything:
//! each value it builds is made of the context and of its own text.
//!
//! So a part is analysed once, at compile time, on minijinja's syntax tree. It is *bounded* when
//! it uses only:
//! - statements: text, `{{ … }}`, `for` (not `recursive`), `if`, `autoescape`;
//! - expressions: variables, constants, attributes, subscripts, slices, lists and maps, `not`
//!   and `-`, comparisons and tests, `if … else …`, and the operators `~ + - / // % ** and or in`
//!   (not `*`, which repeats a string or a list);
//! - the filters in [`FILTERS`], each with the most its output may be as a multiple of its
//!   inputs (`escape` turns one byte into at most six);
//!
//! and no `set`, `with`, macros, calls, `include`, `import`, blocks or filter blocks. Every
//! expression node then holds at most one value at a time (a loop's earlier iterations are
//! dropped), and that value's size is at most `a × C + b`, where C is the size of the whole
//! context and a, b follow from the node's subtree (a variable: C; a constant: its length;
//! `x ~ y`: the sum; a filter: its factor times its inputs). The part's bound is the sum over its
//! nodes, counting what a `{{ }}` formats (its value's text, at most [`EMIT_FACTOR`] times the
//! value) and each loop's state. It is loose, often by tens, which costs nothing: it only has
//! to stay under the memory budget for the render to go inline.
//!
//! Anything outside the subset is *unbounded* and renders on the budgeted worker, as every
//! render did before. A chain of growing filters (`x|e|e|e…`) is bounded by construction but
//! its bound grows with the chain, so with a large enough context it, too, goes to the worker.
//! engine/tests/budget.rs checks the bound against the allocator's own count of what a render
//! held, template by template.
use minijinja::machinery::ast::{BinOpKind, CallArg, Expr, Stmt};
use minijinja::machinery::{parse, WhitespaceConfig};

/// The filters a bounded part may use, with the most their output may be as a multiple of
/// their inputs (the value filtered and the arguments). Case changes may grow UTF-8 text
/// (`ΐ`, two bytes, upper-cases to six); `escape` makes `"` `&quot;`.
pub const FILTERS: &[(&str, f64)] = &[
    ("abs", 1.0),
    ("bool", 1.0),
    ("capitalize", 3.0),
    ("count", 1.0),
    ("d", 1.0),
    ("default", 1.0),
    ("e", 6.0),
    ("escape", 6.0),
    ("first", 1.0),
    ("float", 1.0),
    ("int", 1.0),
    ("last", 1.0),
    ("length", 1.0),
    ("lower", 3.0),
    ("reverse", 1.0),
    ("round", 1.0),
    ("safe", 1.0),
    ("title", 3.0),
    ("trim", 1.0),
    ("truncate", 1.0),
    ("upper", 3.0),
    ("wordcount", 1.0),
];

/// What formatting a value for output may hold, as a multiple of the value: a list's or map's
/// text quotes and escapes its strings, then the whole may be HTML-escaped.
pub const EMIT_FACTOR: f64 = 16.0;

/// Bytes every node may add of its own (a value's header, a list's slots, a loop's state).
const NODE: f64 = 256.0;

/// The most a render of a part may hold: `per_context × C + fixed` bytes, C being the
/// context's size ([`super::template::Context::bytes`]).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Bound {
    pub per_context: f64,
    pub fixed: f64,
}

impl Bound {
    const fn new(per_context: f64, fixed: f64) -> Bound {
        Bound { per_context, fixed }
    }
    pub fn plus(self, o: Bound) -> Bound {
        Bound::new(self.per_context + o.per_context, self.fixed + o.fixed)
    }
    fn times(self, f: f64) -> Bound {
        Bound::new(self.per_context * f, self.fixed * f)
    }
    /// The bound for a context of `context_bytes`.
    pub fn at(self, context_bytes: usize) -> f64 {
        self.per_context * context_bytes as f64 + self.fixed
    }
}

/// The bound of a part's source, or None when it is not bounded (see the module's text) or does
/// not parse (compiling it reports that).
pub fn of_source(src: &str) -> Option<Bound> {
    let ast = parse(src, "<part>", Default::default(), WhitespaceConfig::default()).ok()?;
    let mut total = Bound::default();
    stmt(&ast, &mut total)?;
    Some(total)
}

fn stmts(body: &[Stmt<'_>], total: &mut Bound) -> Option<()> {
    body.iter().try_for_each(|s| stmt(s, total))
}

fn stmt(s: &Stmt<'_>, total: &mut Bound) -> Option<()> {
    match s {
        Stmt::Template(t) => stmts(&t.children, total),
        Stmt::EmitRaw(_) => Some(()),
        Stmt::EmitExpr(e) => {
            let v = expr(&e.expr, total)?;
            *total = total.plus(v.times(EMIT_FACTOR));
            Some(())
        }
        Stmt::ForLoop(l) => {
            if l.recursive || !target(&l.target) {
                return None;
            }
            expr(&l.iter, total)?;
            if let Some(f) = &l.filter_expr {
                expr(f, total)?;
            }
            *total = total.plus(Bound::new(0.0, NODE));
            stmts(&l.body, total)?;
            stmts(&l.else_body, total)
        }
        Stmt::IfCond(c) => {
            expr(&c.expr, total)?;
            stmts(&c.true_body, total)?;
            stmts(&c.false_body, total)
        }
        Stmt::AutoEscape(a) => {
            expr(&a.enabled, total)?;
            stmts(&a.body, total)
        }
        _ => None,
    }
}

/// A loop's target: a name, or names to unpack into.
fn target(e: &Expr<'_>) -> bool {
    match e {
        Expr::Var(_) => true,
        Expr::List(l) => l.items.iter().all(target),
        _ => false,
    }
}

fn args(a: &[CallArg<'_>], total: &mut Bound) -> Option<Bound> {
    let mut sum = Bound::default();
    for arg in a {
        match arg {
            CallArg::Pos(e) | CallArg::Kwarg(_, e) => sum = sum.plus(expr(e, total)?),
            CallArg::PosSplat(_) | CallArg::KwargSplat(_) => return None,
        }
    }
    Some(sum)
}

/// The most the node's value may be; adds it (and its subtree's) to `total`.
fn expr(e: &Expr<'_>, total: &mut Bound) -> Option<Bound> {
    let own = Bound::new(0.0, NODE);
    let v = match e {
        Expr::Var(_) => Bound::new(1.0, 0.0),
        // (a folded constant list or map: its text is about its size)
        Expr::Const(c) => Bound::new(0.0, c.value.as_str().map_or_else(|| c.value.to_string().len(), str::len) as f64),
        Expr::Slice(s) => {
            let mut v = expr(&s.expr, total)?;
            for x in [&s.start, &s.stop, &s.step].into_iter().flatten() {
                v = v.plus(expr(x, total)?);
            }
            v
        }
        Expr::UnaryOp(u) => expr(&u.expr, total)?,
        Expr::BinOp(b) => {
            if matches!(b.op, BinOpKind::Mul) {
                return None;
            }
            expr(&b.left, total)?.plus(expr(&b.right, total)?)
        }
        Expr::Compare(c) => {
            let mut v = expr(&c.expr, total)?;
            for o in &c.ops {
                v = v.plus(expr(&o.expr, total)?);
            }
            v
        }
        Expr::IfExpr(i) => {
            let mut v = expr(&i.test_expr, total)?.plus(expr(&i.true_expr, total)?);
            if let Some(f) = &i.false_expr {
                v = v.plus(expr(f, total)?);
            }
            v
        }
        Expr::Filter(f) => {
            let factor = FILTERS.iter().find(|(n, _)| *n == f.name)?.1;
            let input = match &f.expr {
                Some(x) => expr(x, total)?,
                None => Bound::default(),
            };
            input.plus(args(&f.args, total)?).times(factor)
        }
        Expr::Test(t) => expr(&t.expr, total)?.plus(args(&t.args, total)?),
        Expr::GetAttr(g) => expr(&g.expr, total)?,
        Expr::GetItem(g) => expr(&g.expr, total)?.plus(expr(&g.subscript_expr, total)?),
        Expr::List(l) => {
            let mut v = Bound::default();
            for x in &l.items {
                v = v.plus(expr(x, total)?).plus(own);
            }
            v
        }
        Expr::Map(m) => {
            let mut v = Bound::default();
            for x in m.keys.iter().chain(&m.values) {
                v = v.plus(expr(x, total)?).plus(own);
            }
            v
        }
        Expr::Call(_) => return None,
    }
    .plus(own);
    *total = total.plus(v);
    Some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loops_conditions_and_linear_filters_are_bounded() {
        for src in [
            "Hello {{ customer.name|default('there')|title }}",
            "{% for item in items if item.in_stock %}{{ loop.index }}. {{ item.title|upper }} {{ item.price }}{% if item.available < 5 %} ({{ item.availability }}){% endif %}\n{% else %}nothing{% endfor %}",
            "{% for a, b in [[1, 2]] %}{{ a ~ b }}{% endfor %}{{ items[0].title[:10] ~ ' ' ~ link }}{{ (items|length) ** 2 }}",
            "{% autoescape true %}{{ items|first if false else 'x' }}{% endautoescape %}",
            "{{ {'a': customer.id, 'b': [1, 2, rec_id]} }}{{ style is defined and style in ['friendly', 'plain'] }}",
        ] {
            assert!(of_source(src).is_some(), "{src} should be bounded");
        }
    }

    #[test]
    fn what_can_grow_a_value_is_not_bounded() {
        for src in [
            "{% set b = customer.name ~ customer.name %}{{ b }}",
            "{{ 'x' * 1000000 }}",
            "{{ customer.name * 3 }}",
            "{% for i in range(10) %}{{ i }}{% endfor %}",
            "{% macro m(x) %}{{ x }}{% endmacro %}{{ m(link) }}",
            "{{ items|join(', ') }}",
            "{{ link|replace('', link) }}",
            "{{ link|indent(1000000) }}",
            "{% with x = link %}{{ x }}{% endwith %}",
            "{% filter upper %}{{ link }}{% endfilter %}",
            "{% set ns = namespace(s='') %}{% for i in items %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}",
            "{% for item in items recursive %}{{ loop(item.children) }}{% endfor %}",
            "{{ link.upper() }}",
            "{{ link|default(*items) }}",
            "{% include 'other' %}",
            "{{ unclosed",
        ] {
            assert!(of_source(src).is_none(), "{src} should not be bounded");
        }
    }

    #[test]
    fn the_bound_grows_with_the_context_and_a_chain_of_escapes() {
        let one = of_source("{{ link }}").unwrap();
        let two = of_source("{{ link }}{{ link }}").unwrap();
        assert!(one.per_context >= EMIT_FACTOR && two.per_context >= 2.0 * one.per_context - 1e-9);
        assert!(one.at(10_000) > one.at(100));
        let chain = of_source("{{ link|e|e|e|e|e|e|e|e }}").unwrap();
        assert!(chain.per_context > 6f64.powi(8), "each escape may multiply by six: {chain:?}");
    }
}
