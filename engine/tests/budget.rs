//! The memory budget with the allocator wrapped, as the extension wraps it: a template that
//! doubles a string stops at its budget (its thread left asleep, what it holds bounded) and the
//! caller gets on; a normal render returns its text, and a render's peak is counted.
// test code: a failed step stops the test where it failed
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
use reco_engine::budget::{run, Budgeted, Outcome};
use reco_engine::notify::template::{compile, sample, Limits, Parts};
use std::alloc::System;

#[global_allocator]
static ALLOC: Budgeted<System> = Budgeted(System);

fn spawn(job: Box<dyn FnOnce() + Send>) -> std::io::Result<()> {
    std::thread::Builder::new().name("render".into()).spawn(job).map(|_| ())
}

fn render(text: &'static str) -> (Outcome<reco_engine::Result<String>>, usize) {
    let job = move || compile("t", Parts { subject: "s", html: None, text }, Limits::default()).and_then(|c| c.render("t", &sample())).map(|r| r.text);
    let mut waits = 0;
    let r = run(8 << 20, job, spawn, || waits += 1).unwrap();
    assert!(waits < 3000, "the caller waited {waits} times");
    r
}

#[test]
fn a_doubling_template_stops_at_its_budget_and_the_caller_gets_on() {
    // 40 doublings would be a terabyte; 64 lines of set are far within the fuel
    let text: &'static str = Box::leak(
        (0..40).map(|i| format!("{{% set s{} = s{i} ~ s{i} %}}", i + 1)).fold("{% set s0 = 'abcdefgh' %}".to_string(), |a, b| a + &b).into_boxed_str(),
    );
    let (outcome, peak) = render(text);
    assert!(matches!(outcome, Outcome::Exceeded), "{outcome:?}");
    assert!(peak <= 8 << 20, "held {peak} bytes");
    // and again: each stopped render keeps at most its budget
    let (outcome, _) = render(text);
    assert!(matches!(outcome, Outcome::Exceeded), "{outcome:?}");
}

#[test]
fn a_string_repeated_past_the_budget_in_one_step_stops_before_it_is_allocated() {
    let (outcome, peak) = render("{{ ('x' * 50000000)|length }}");
    assert!(matches!(outcome, Outcome::Exceeded), "{outcome:?}");
    assert!(peak < 1 << 20, "held {peak} bytes: the 50 MB were never allocated");
}

#[test]
fn a_normal_render_returns_its_text_and_its_peak() {
    let (outcome, peak) = render("{% for item in items %}{{ item.title }} {{ item.price }}\n{% endfor %}");
    let Outcome::Done(Ok(text)) = outcome else { panic!("{outcome:?}") };
    assert!(text.contains("Sample item 1 19.99 EUR"), "{text}");
    assert!(peak > 0 && peak < 8 << 20, "{peak}");
}

#[test]
fn a_worker_runs_job_after_job_and_a_new_one_follows_a_stopped_one() {
    let started = std::sync::atomic::AtomicUsize::new(0);
    let counting = |job: Box<dyn FnOnce() + Send>| {
        started.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        spawn(job)
    };
    for i in 0..5 {
        let (outcome, _) = run(1 << 20, move || i * 2, counting, || {}).unwrap();
        assert!(matches!(outcome, Outcome::Done(x) if x == i * 2), "{outcome:?}");
    }
    assert_eq!(started.load(std::sync::atomic::Ordering::Relaxed), 1, "one worker for five jobs");
    let (outcome, _) = run(1 << 20, || vec![0u8; 2 << 20].len(), counting, || {}).unwrap();
    assert!(matches!(outcome, Outcome::Exceeded), "{outcome:?}");
    let (outcome, _) = run(1 << 20, || 7, counting, || {}).unwrap();
    assert!(matches!(outcome, Outcome::Done(7)), "{outcome:?}");
    assert_eq!(started.load(std::sync::atomic::Ordering::Relaxed), 2, "a new worker after the stopped one");
}

#[test]
fn a_panic_in_budgeted_work_is_reported_not_propagated() {
    let (outcome, _) = run(1 << 20, || -> u8 { panic!("boom") }, spawn, || {}).unwrap();
    assert!(matches!(&outcome, Outcome::Panicked(m) if m == "boom"), "{outcome:?}");
}

/// A context whose every text is `len` bytes long, with `n` items.
fn big_context(n: usize, len: usize) -> reco_engine::notify::template::Context {
    let mut ctx = sample();
    let long = |c: char| std::iter::repeat_n(c, len).collect::<String>();
    let proto = ctx.items[0].clone();
    ctx.items = (0..n)
        .map(|i| {
            let mut it = proto.clone();
            it.id = format!("SKU-{i}");
            it.title = long('ΐ');
            it.brand = long('"');
            it.reason = long('&');
            it
        })
        .collect();
    ctx.customer.name = long('ß');
    ctx
}

#[test]
fn a_bounded_template_holds_no_more_than_its_bound_says() {
    // what reco.render relies on to render without the budget: the static bound is never below
    // what the allocator counts the render holding, whatever the context
    let templates = [
        "{{ customer.name or 'Hello' }}, {{ items|length }} picks",
        "{% for item in items %}<a href=\"{{ item.link }}\">{{ item.title }}</a> {{ item.brand }} {{ item.price }} {{ item.availability }} {{ item.reason }}{% endfor %}",
        "{% for a in items %}{% for b in items %}{{ a.title ~ b.brand|upper ~ customer.name|title }}{% endfor %}{% endfor %}",
        "{{ customer.name|e|e|e|e }}{{ items|first }}{{ items|reverse|first }}{{ items }}",
        "{{ (items|last).title[::2] ~ link + style }}{{ {'a': customer, 'b': [items, trigger]} }}",
        "{% for item in items if item.title|lower|length > 3 %}{{ loop.index }} {{ item.reason|trim|capitalize }}{% endfor %}",
    ];
    for text in templates {
        let c = std::sync::Arc::new(compile("t", Parts { subject: "s", html: Some(text), text }, Limits::default()).unwrap());
        for (n, len) in [(3, 10), (4, 1000), (20, 3000), (50, 20_000)] {
            let ctx = big_context(n, len);
            let bound = c.memory_bound(&ctx).unwrap_or_else(|| panic!("{text} should be bounded"));
            let (c2, ctx2) = (c.clone(), ctx.clone());
            // under a budget of the bound itself: going over would stop the render
            let (outcome, peak) = run(bound, move || c2.render("t", &ctx2).map(|r| r.text.len()), spawn, || {}).unwrap();
            assert!(matches!(outcome, Outcome::Done(_)), "{text} with {n} items of {len}: {outcome:?}, bound {bound}");
            assert!(peak <= bound, "{text} with {n} items of {len}: held {peak} > bound {bound}");
        }
    }
    // and a template that is not bounded has no bound
    let c = compile("t", Parts { subject: "s", html: None, text: "{% set b = link ~ link %}{{ b }}" }, Limits::default()).unwrap();
    assert_eq!(c.memory_bound(&sample()), None);
}
