//! Forgetting a customer: every row that holds the id, in one transaction, and a tombstone.
use super::*;

/// Forgets a customer in one transaction: every row that holds their id goes (preferences,
/// revocations, events, model vectors, the recommendation log, notification candidates and
/// sends), their orders keep their lines
/// (for sales totals) but lose the customer id and e-mail, and the customer row goes. A
/// tombstone (the keyed hash of the id, reco.forgotten_customers) keeps ingestion from
/// creating them again: later events of the id are not stored, later orders are stored
/// without it. Concurrent ingestion is serialized on the customer row: an ingest in flight
/// commits first and its rows are deleted here, or it waits and sees the tombstone. Returns
/// what was removed per table.
#[pg_extern(volatile, strict, security_definer)]
#[search_path(pg_catalog, reco, pg_temp)]
pub(super) fn forget_customer(customer_id: &str) -> JsonbText {
    let customer_id = checked_id(Some(customer_id), "customer_id");
    let key = crate::api::scope::keys(std::slice::from_ref(&customer_id)).remove(0);
    let counts = Spi::connect_mut(|c| {
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
                &[DatumWithOid::from(customer_id.as_str())],
            )
            .or_raise()
            .len() as i64;
        c.update("SELECT 1 FROM reco.customers WHERE customer_id = $1 FOR UPDATE", None, &[DatumWithOid::from(customer_id.as_str())]).or_raise();
        let mut removed = Map::new();
        for (name, sql) in FORGET {
            let mut n = c.update(*sql, None, &[DatumWithOid::from(customer_id.as_str())]).or_raise().len() as i64;
            if *name == "customers" {
                n -= created; // the row made above only to wait on was never the customer's
            }
            removed.insert((*name).to_string(), Value::from(n));
        }
        removed
    });
    JsonbText(Value::Object(counts).to_string())
}

/// What forgetting a customer does, table by table (the customer row last). A regression test
/// lists every table with a customer_id column from the catalog and checks that each is here.
pub(super) const FORGET: &[(&str, &str)] = &[
    ("preferences", "DELETE FROM reco.preferences WHERE customer_id = $1 RETURNING 1"),
    ("preference_revocations", "DELETE FROM reco.preference_revocations WHERE customer_id = $1 RETURNING 1"),
    ("events", "DELETE FROM reco.events WHERE customer_id = $1 RETURNING 1"),
    ("customer_vectors", "DELETE FROM reco.customer_vectors WHERE customer_id = $1 RETURNING 1"),
    ("recommendations", "DELETE FROM reco.recommendations WHERE customer_id = $1 RETURNING 1"),
    ("notification_sends", "DELETE FROM reco.notification_sends WHERE customer_id = $1 RETURNING 1"),
    ("notification_candidates", "DELETE FROM reco.notification_candidates WHERE customer_id = $1 RETURNING 1"),
    ("orders_anonymized", "UPDATE reco.orders SET customer_id = NULL, email = NULL, updated_at = pg_catalog.now() WHERE customer_id = $1 RETURNING 1"),
    ("customers", "DELETE FROM reco.customers WHERE customer_id = $1 RETURNING 1"),
];
