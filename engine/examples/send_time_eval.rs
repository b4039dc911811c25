//! Send-time choice on planted habits (issue #17): the share of each customer's next open that
//! lands within ±1 hour of the chosen slot, for the shrunk per-customer profile, the
//! population's best hour and a fixed 10:00.
//!   cargo run --release -p reco-engine --example send_time_eval [CUSTOMERS] [SEED]
use reco_engine::notify::send_time::evaluate_planted;

fn main() {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(20_000);
    let seed: u64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(7);
    let r = evaluate_planted(n, seed);
    println!("{} customers with planted habits (seed {seed}); next open within ±1 h of the chosen slot:", r.customers);
    println!("  per-customer profile, shrunk to the population  {:.3}", r.profile);
    println!("  the population's best hour                      {:.3}", r.population);
    println!("  a fixed 10:00                                   {:.3}", r.fixed);
}
