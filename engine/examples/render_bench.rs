//! Renders a message template outside the database, the baseline bench/notify.sh sets beside
//! reco.render: the same template (bench/notify_template.json), compiled once, rendered with a
//! context of 4 items, on one thread.
//!   cargo run --release -p reco-engine --example render_bench -- bench/notify_template.json [N] [--budgeted]
//! With --budgeted each render runs as reco.render runs it: on a worker thread under the memory
//! budget (reco_engine::budget::run), with the allocator wrapped, so the hand-off is measured.
use reco_engine::budget::{run, Budgeted, Outcome};
use reco_engine::notify::template::{compile, sample, Limits, Parts};
use std::alloc::System;
use std::sync::Arc;
use std::time::Instant;

#[global_allocator]
static ALLOC: Budgeted<System> = Budgeted(System);

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let path = args.next().ok_or("usage: render_bench TEMPLATE.json [N]")?;
    let n: usize = args.next().map_or(Ok(200_000), |s| s.parse())?;
    let budgeted = args.next().as_deref() == Some("--budgeted");
    let t: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path)?)?;
    let part = |k: &str| t.get(k).and_then(|v| v.as_str()).unwrap_or_default().to_string();
    let (subject, html, text) = (part("subject"), part("html"), part("text"));
    let compiled = Arc::new(compile("bench", Parts { subject: &subject, html: Some(&html), text: &text }, Limits::default())?);
    let mut ctx = sample();
    let mut fourth = ctx.items[0].clone();
    fourth.id = "SKU-4".into();
    ctx.items.push(fourth);
    let mut bytes = 0usize;
    let start = Instant::now();
    for i in 0..n {
        ctx.rec_id = i as i64;
        let r = if budgeted {
            let (c, x) = (compiled.clone(), ctx.clone());
            let spawn = |job: Box<dyn FnOnce() + Send>| std::thread::Builder::new().name("render".into()).spawn(job).map(|_| ());
            match run(Limits::default().max_memory, move || c.render("bench", &x), spawn, || {})?.0 {
                Outcome::Done(r) => r?,
                other => return Err(format!("the render did not finish: {other:?}").into()),
            }
        } else {
            compiled.render("bench", &ctx)?
        };
        bytes += r.subject.len() + r.html.map_or(0, |h| h.len()) + r.text.len();
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "outside the database: {n} renders in {secs:.2} s = {:.0} emails/s {} ({} bytes each)",
        n as f64 / secs,
        if budgeted { "on a budgeted worker thread" } else { "on one thread" },
        bytes / n
    );
    Ok(())
}
