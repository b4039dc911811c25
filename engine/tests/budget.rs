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
