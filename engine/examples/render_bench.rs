//! Renders a message template outside the database, the baseline bench/notify.sh sets beside
//! reco.render: the same template (bench/notify_template.json), compiled once, rendered with a
//! context of 4 items, on one thread.
//!   cargo run --release -p reco-engine --example render_bench -- bench/notify_template.json [N]
use reco_engine::notify::template::{compile, sample, Limits, Parts};
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let path = args.next().ok_or("usage: render_bench TEMPLATE.json [N]")?;
    let n: usize = args.next().map_or(Ok(200_000), |s| s.parse())?;
    let t: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path)?)?;
    let part = |k: &str| t.get(k).and_then(|v| v.as_str()).unwrap_or_default().to_string();
    let (subject, html, text) = (part("subject"), part("html"), part("text"));
    let compiled = compile("bench", Parts { subject: &subject, html: Some(&html), text: &text }, Limits::default())?;
    let mut ctx = sample();
    let mut fourth = ctx.items[0].clone();
    fourth.id = "SKU-4".into();
    ctx.items.push(fourth);
    let mut bytes = 0usize;
    let start = Instant::now();
    for i in 0..n {
        ctx.rec_id = i as i64;
        let r = compiled.render("bench", &ctx)?;
        bytes += r.subject.len() + r.html.map_or(0, |h| h.len()) + r.text.len();
    }
    let secs = start.elapsed().as_secs_f64();
    println!("outside the database: {n} renders in {secs:.2} s = {:.0} emails/s on one thread ({} bytes each)", n as f64 / secs, bytes / n);
    Ok(())
}
