//! Forgetting a customer: every row that holds the id, in one transaction, and a tombstone.
use super::*;

/// Forgets a customer in one transaction: every row that holds their id goes (preferences,
/// revocations, events, model vectors, the recommendation log, notification candidates and
/// sends, consent decisions), their orders keep their lines
/// (for sales totals) but lose the customer id and e-mail, and the customer row goes. A
/// tombstone (the keyed hash of the id, reco.forgotten_customers) keeps ingestion from
/// creating them again: later events of the id are not stored, later orders are stored
/// without it. Concurrent ingestion is serialized on the customer row: an ingest in flight
/// commits first and its rows are deleted here, or it waits and sees the tombstone. Returns
/// what was removed per table.
#[pg_extern(volatile, strict, security_definer)]
#[search_path(pg_catalog, reco, pg_temp)]
pub(super) fn forget_customer(customer_id: &str) -> JsonbText {
    let raw = checked_raw_id(Some(customer_id), "customer_id");
    let pseudonym = crate::api::privacy::customer_id(&raw).into_owned();
    // an e-mail address or phone number is forgotten under its pseudonym and, for what was
    // stored before pseudonyms (0.1.0), under itself as given and in its normal form
    let mut ids = vec![pseudonym.clone()];
    if raw != pseudonym {
        for id in [raw.clone(), reco_engine::pseudonym::normalize(&raw)] {
            if !ids.contains(&id) {
                ids.push(id);
            }
        }
    }
    let mut removed = Map::new();
    for id in &ids {
        for (name, n) in forget_one(id.as_str()) {
            let sum = removed.get(&name).and_then(Value::as_i64).unwrap_or(0) + n;
            removed.insert(name, Value::from(sum));
        }
    }
    JsonbText(Value::Object(removed).to_string())
}

/// Forgets one stored id; returns the rows removed per table.
fn forget_one(customer_id: &str) -> Vec<(String, i64)> {
    let key = crate::api::scope::keys(&[customer_id.to_string()]).remove(0);
    Spi::connect_mut(|c| {
        // the tombstone first: an ingest that locks the customer after this commits sees it
        c.update(
            "INSERT INTO reco.forgotten_customers (customer_key) VALUES ($1) ON CONFLICT (customer_key) DO NOTHING",
            None,
            &[DatumWithOid::from(key.as_str())],
        )
        .or_raise();
        // waits for ingests in flight: one creating the customer right now (the insert meets
        // its uncommitted row in the unique index and waits for it), and those holding the row
        // (FOR KEY SHARE); once they commit, what they wrote is deleted below
        let created = c
            .update(
                "INSERT INTO reco.customers (customer_id) VALUES ($1) ON CONFLICT (customer_id) DO NOTHING RETURNING 1",
                None,
                &[DatumWithOid::from(customer_id)],
            )
            .or_raise()
            .len() as i64;
        c.update("SELECT 1 FROM reco.customers WHERE customer_id = $1 FOR UPDATE", None, &[DatumWithOid::from(customer_id)]).or_raise();
        let mut removed = Vec::new();
        for (name, sql) in FORGET {
            // (a newer library on 0.1.0 SQL, before ALTER EXTENSION pg_reco UPDATE, has no tallies)
            if *name == "experiment_units" && !crate::api::has_table(c"experiment_units", &TALLIES) {
                continue;
            }
            if name.starts_with("consent") && !crate::api::has_table(c"consents", &CONSENTS) {
                continue;
            }
            let mut n = c.update(*sql, None, &[DatumWithOid::from(customer_id)]).or_raise().len() as i64;
            if *name == "customers" {
                n -= created; // the row made above only to wait on was never the customer's
            }
            removed.push(((*name).to_string(), n));
        }
        removed
    })
}

thread_local! {
    static TALLIES: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    static CONSENTS: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// What forgetting a customer does, table by table (the customer row last). A regression test
/// lists every table with a customer_id column from the catalog and checks that each is here.
pub(super) const FORGET: &[(&str, &str)] = &[
    ("preferences", "DELETE FROM reco.preferences WHERE customer_id = $1 RETURNING 1"),
    ("preference_revocations", "DELETE FROM reco.preference_revocations WHERE customer_id = $1 RETURNING 1"),
    ("events", "DELETE FROM reco.events WHERE customer_id = $1 RETURNING 1"),
    ("customer_vectors", "DELETE FROM reco.customer_vectors WHERE customer_id = $1 RETURNING 1"),
    // before their lists go: those lists and their successes leave the experiment tallies
    ("experiment_units", "SELECT 1 FROM reco._experiment_forget($1)"),
    ("recommendations", "DELETE FROM reco.recommendations WHERE customer_id = $1 RETURNING 1"),
    ("notification_sends", "DELETE FROM reco.notification_sends WHERE customer_id = $1 RETURNING 1"),
    ("consent_log", "DELETE FROM reco.consent_log WHERE customer_id = $1 RETURNING 1"),
    ("consents", "DELETE FROM reco.consents WHERE customer_id = $1 RETURNING 1"),
    ("notification_candidates", "DELETE FROM reco.notification_candidates WHERE customer_id = $1 RETURNING 1"),
    ("orders_anonymized", "UPDATE reco.orders SET customer_id = NULL, email = NULL, updated_at = pg_catalog.now() WHERE customer_id = $1 RETURNING 1"),
    ("customers", "DELETE FROM reco.customers WHERE customer_id = $1 RETURNING 1"),
];
