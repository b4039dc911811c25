//! Preferences over a real connection: cache invalidation by NOTIFY, whose payload is the
//! customer's keyed hash (reco.customer_key), never the id.
// test code: a failed step stops the test where it failed
#![allow(clippy::unwrap_used, clippy::expect_used)]
use pg_reco_integration::{connect, fresh_db};
use postgres::fallible_iterator::FallibleIterator;
use std::time::Duration;

#[test]
fn every_preference_change_notifies_listeners_with_the_customer_key() {
    let dsn = fresh_db("it_prefs_notify");
    let mut listener = connect(&dsn);
    listener.batch_execute("LISTEN reco_preferences").unwrap();
    let mut c = connect(&dsn);
    c.batch_execute("SELECT reco.capture_preference('c7', 'size_tops', 'M', 'checkout')").unwrap();
    c.batch_execute("SELECT reco.set_preference('c8', 'color', 'navy')").unwrap();
    c.batch_execute("SELECT reco.revoke_preference('c7', 'size_tops')").unwrap();
    // a rolled-back change tells nobody
    c.batch_execute("BEGIN; SELECT reco.set_preference('c9', 'color', 'red'); ROLLBACK").unwrap();
    c.batch_execute("SELECT reco.forget_customer('c8')").unwrap();
    let mut got = Vec::new();
    let mut notes = listener.notifications();
    let mut it = notes.timeout_iter(Duration::from_secs(2));
    while let Some(n) = it.next().unwrap() {
        assert_eq!(n.channel(), "reco_preferences");
        got.push(n.payload().to_string());
    }
    // one per transaction and customer: capture c7, edit c8, revoke c7, forget c8; each the
    // customer's key, which a cache computes with reco.customer_key
    let mut key = |id: &str| -> String { c.query_one("SELECT reco.customer_key($1)", &[&id]).unwrap().get(0) };
    let (k7, k8) = (key("c7"), key("c8"));
    assert_eq!(got, [k7.clone(), k8.clone(), k7, k8]);
    assert!(got.iter().all(|p| p.len() == 64 && p.bytes().all(|b| b.is_ascii_hexdigit())), "{got:?}");
}
