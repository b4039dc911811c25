//! Who may act for which customer, and the secret behind it.
//!
//! * `reco.customer_token(customer_id, valid_for)` (reco_writer: the application's backend,
//!   after it has authenticated the customer) signs a short-lived token with the key in
//!   `reco.secrets`, which only the extension's owner role `reco_owner` can read.
//! * `reco.enter_customer_scope(token)` (reco_customer: the kiosk or web session) checks the
//!   token and sets `reco.customer_scope`, a setting that only superuser-level code can change:
//!   plain `SET` fails for every other role, and `RESET ALL` / `DISCARD ALL` (a pool handing
//!   the connection to the next client) clears it. Row-level security and the preference
//!   functions read it through `reco.customer_scope()`.
//! * `reco.customer_key(customer_id)`: the keyed hash that stands for a customer where a
//!   customer id must not appear (NOTIFY payloads, the forget tombstones).
use crate::error::{raise, OrRaise};
use pgrx::datum::DatumWithOid;
use pgrx::prelude::*;
use reco_engine::{token, Error, ErrorKind};
use std::cell::RefCell;
use std::ffi::CString;

thread_local! {
    /// The key, read once per backend (rotating it means new connections; see docs).
    static KEY: RefCell<Option<Vec<u8>>> = const { RefCell::new(None) };
}

/// The extension's secret key. Readable only inside functions owned by reco_owner (SECURITY
/// DEFINER); anyone else gets a permission error from the table.
pub fn secret_key() -> Vec<u8> {
    if let Some(k) = KEY.with(|k| k.borrow().clone()) {
        return k;
    }
    let k: Option<Vec<u8>> = Spi::get_one("SELECT key FROM reco.secrets WHERE name = 'hmac'").or_raise();
    let k = k.filter(|k| k.len() >= 32).unwrap_or_else(|| {
        raise(
            Error::new(ErrorKind::NotInPrerequisiteState, "pg_reco's secret key is missing from reco.secrets")
                .hint("as a superuser: INSERT INTO reco.secrets (name, key) VALUES ('hmac', decode(md5(random()::text) || md5(random()::text), 'hex')) — or reinstall the extension"),
        )
    });
    KEY.with(|c| *c.borrow_mut() = Some(k.clone()));
    k
}

/// The key, if a SECURITY DEFINER function of this backend read it already.
pub fn cached_key() -> Option<Vec<u8>> {
    KEY.with(|k| k.borrow().clone())
}

/// The customer this session is scoped to (`reco.enter_customer_scope`), if any.
pub fn scope() -> Option<String> {
    crate::gucs::CUSTOMER_SCOPE.get().and_then(|c| c.into_string().ok()).filter(|s| !s.is_empty())
}

/// Whether the role the session runs as (`SET ROLE` included, SECURITY DEFINER not) has the
/// privileges of `role`.
fn outer_user_has(role: &std::ffi::CStr) -> bool {
    // SAFETY: plain catalog lookups on the backend's thread; missing_ok returns InvalidOid
    unsafe {
        let r = pg_sys::get_role_oid(role.as_ptr(), true);
        r != pg_sys::InvalidOid && pg_sys::has_privs_of_role(pg_sys::GetOuterUserId(), r)
    }
}

/// The name of the role the session runs as (`SET ROLE` included, SECURITY DEFINER not): who
/// recorded a decision.
pub fn outer_user_name() -> String {
    // SAFETY: a catalog lookup on the backend's thread; noerr = false raises for a dropped role
    unsafe {
        let p = pg_sys::GetUserNameFromId(pg_sys::GetOuterUserId(), false);
        std::ffi::CStr::from_ptr(p).to_string_lossy().into_owned()
    }
}

/// Whether `customer_id` is the session's customer, or the session has no customer scope;
/// raises 42501 when it names another customer than the one of its scope.
pub fn in_scope(customer_id: &str) -> bool {
    match scope() {
        None => false,
        Some(s) if s == customer_id => true,
        Some(s) => raise(
            Error::new(ErrorKind::InsufficientPrivilege, format!("customer {} is outside this session's scope", reco_engine::error::show(customer_id)))
                .hint(format!("this session acts for customer {} only (reco.enter_customer_scope)", reco_engine::error::show(&s))),
        ),
    }
}

/// May this session act for `customer_id`? A session with a customer scope only for that
/// customer; a session without one only when its role has reco_writer's privileges (staff,
/// the OMS). Called by the SECURITY DEFINER functions that write a customer's rows.
pub fn authorize(customer_id: &str) {
    // in_scope is false only without a scope (another customer's id raised already)
    if !in_scope(customer_id) && !outer_user_has(c"reco_writer") {
        raise(
            Error::new(ErrorKind::InsufficientPrivilege, "this session has no customer scope")
                .hint("a customer-facing session calls reco.enter_customer_scope(token) with a token from reco.customer_token first"),
        );
    }
}

/// A signed token that lets a customer-facing session act for `customer_id` until it expires.
#[pg_extern(volatile, security_definer)]
#[search_path(pg_catalog, reco, pg_temp)]
fn customer_token(customer_id: Option<&str>, valid_for: default!(Option<pgrx::datum::Interval>, "'1 hour'")) -> String {
    let id = super::prefs::checked_id(customer_id, "customer_id");
    let i = super::required(valid_for, "valid_for", "pass an interval such as '1 hour'");
    let secs = i64::from(i.months()) * 30 * 86_400 + i64::from(i.days()) * 86_400 + i.micros() / 1_000_000;
    let secs = token::check_validity(secs).or_raise();
    let now = super::transaction_start().timestamp();
    token::issue(&secret_key(), &id, now + secs)
}

/// Checks a token from `reco.customer_token` and scopes this session to its customer; returns
/// the customer id. The scope lasts until the session ends, `RESET ALL` / `DISCARD ALL`, or
/// the transaction that set it rolls back; with `local` only until this transaction ends (for
/// transaction-mode connection pools).
#[pg_extern(volatile, security_definer)]
#[search_path(pg_catalog, reco, pg_temp)]
fn enter_customer_scope(token: Option<&str>, local: default!(Option<bool>, false)) -> String {
    let t = super::required(token, "token", "pass the token reco.customer_token returned");
    let local = super::required(local, "local", "true: for this transaction only; false (the default): for the session");
    let id = token::verify(&secret_key(), t, super::transaction_start().timestamp()).or_raise();
    let value = CString::new(id.clone()).unwrap_or_else(|_| raise(Error::invalid("customer id holds a NUL byte")));
    // SAFETY: static and owned C strings; PGC_SUSET is what makes plain SET unable to change it
    unsafe {
        pg_sys::set_config_option(
            c"reco.customer_scope".as_ptr(),
            value.as_ptr(),
            pg_sys::GucContext::PGC_SUSET,
            pg_sys::GucSource::PGC_S_SESSION,
            if local { pg_sys::GucAction::GUC_ACTION_LOCAL } else { pg_sys::GucAction::GUC_ACTION_SET },
            true,
            pg_sys::PGERROR as i32,
            false,
        );
    }
    id
}

/// The customer this session is scoped to, or NULL. Row-level security policies call it.
#[pg_extern(stable, parallel_safe)]
fn customer_scope() -> Option<String> {
    scope()
}

/// The keyed hash (HMAC-SHA-256, hex) that stands for a customer where the id itself must not
/// appear, e.g. in `reco_preferences` notifications: a cache keys its entries by it.
#[pg_extern(stable, strict, security_definer)]
#[search_path(pg_catalog, reco, pg_temp)]
fn customer_key(customer_id: &str) -> String {
    token::keyed_hash(&secret_key(), customer_id)
}

/// The keyed hashes of `ids` (for the forget tombstones).
pub fn keys(ids: &[String]) -> Vec<String> {
    let k = secret_key();
    ids.iter().map(|i| token::keyed_hash(&k, i)).collect()
}

/// Which of `ids` were forgotten (have a tombstone). SECURITY DEFINER so that invoker code
/// (load_demo as reco_admin) can ask without reading the key; granted to reco_admin only.
#[pg_extern(stable, strict, security_definer, name = "_forgotten_ids")]
#[search_path(pg_catalog, reco, pg_temp)]
fn forgotten_ids(ids: Vec<Option<String>>) -> Vec<String> {
    let ids: Vec<String> = ids.into_iter().flatten().collect();
    if ids.is_empty() {
        return Vec::new();
    }
    let keys = keys(&ids);
    Spi::connect(|c| {
        crate::plans::select(
            c,
            "SELECT u.id FROM unnest($1::pg_catalog.text[], $2::pg_catalog.text[]) AS u(id, k)
              WHERE EXISTS (SELECT 1 FROM reco.forgotten_customers f WHERE f.customer_key = u.k)",
            &[DatumWithOid::from(ids.clone()), DatumWithOid::from(keys)],
        )
        .or_raise()
        .filter_map(|r| r.get::<String>(1).or_raise())
        .collect()
    })
}

fn forgotten_of(c: &mut pgrx::spi::SpiClient<'_>, ids: &[String]) -> std::collections::HashSet<String> {
    let r = crate::plans::select(c, "SELECT reco._forgotten_ids($1::pg_catalog.text[])", &[DatumWithOid::from(ids.to_vec())]).or_raise();
    r.first().get::<Vec<String>>(1).or_raise().unwrap_or_default().into_iter().collect()
}

/// Creates the customers of `ids` not yet known, locks every one of them against a concurrent
/// `reco.forget_customer` until this transaction ends, and returns those that were forgotten
/// (their rows are not created: forget is final). A forget that committed first is seen here
/// (its tombstone), and a forget that starts later waits for this transaction, then deletes
/// what it wrote.
pub fn ensure_customers(c: &mut pgrx::spi::SpiClient<'_>, ids: &[String], first_seen: Option<&[TimestampWithTimeZone]>) -> std::collections::HashSet<String> {
    if ids.is_empty() {
        return Default::default();
    }
    let forgotten = forgotten_of(c, ids);
    let live: Vec<String> = ids.iter().filter(|i| !forgotten.contains(*i)).cloned().collect();
    let times: Option<Vec<TimestampWithTimeZone>> = first_seen.map(|t| ids.iter().zip(t).filter(|(i, _)| !forgotten.contains(*i)).map(|(_, t)| *t).collect());
    if live.is_empty() {
        return forgotten;
    }
    // On Citus the upsert is an INSERT … SELECT through the coordinator into every shard the
    // batch touches, even when each row conflicts: known customers are left out first, and a
    // batch of known customers inserts nothing
    let (new, new_times) = if crate::api::distributed() {
        let known = crate::api::known_ids(c, "SELECT customer_id FROM reco.customers WHERE customer_id = ANY($1::pg_catalog.text[])", &live);
        let ids = live.iter().filter(|i| !known.contains(*i)).cloned().collect::<Vec<_>>();
        let t = times.as_ref().map(|t| live.iter().zip(t).filter(|(i, _)| !known.contains(*i)).map(|(_, t)| *t).collect::<Vec<_>>());
        (ids, t)
    } else {
        (live.clone(), times)
    };
    if !new.is_empty() {
        crate::plans::update(
            c,
            // the anti-join spares known customers a speculative insertion; Citus cannot plan it
            // (a correlated subquery beside unnest) and gets the upsert alone
            if crate::api::distributed() {
                "INSERT INTO reco.customers (customer_id, created_at)
             SELECT u.c, coalesce(u.t, pg_catalog.now()) FROM unnest($1::pg_catalog.text[], $2::pg_catalog.timestamptz[]) AS u(c, t)
             ON CONFLICT (customer_id) DO NOTHING"
            } else {
                "INSERT INTO reco.customers (customer_id, created_at)
             SELECT u.c, coalesce(u.t, pg_catalog.now()) FROM unnest($1::pg_catalog.text[], $2::pg_catalog.timestamptz[]) AS u(c, t)
              WHERE NOT EXISTS (SELECT 1 FROM reco.customers x WHERE x.customer_id = u.c)
             ON CONFLICT (customer_id) DO NOTHING"
            },
            &[DatumWithOid::from(new), DatumWithOid::from(new_times)],
        )
        .or_raise();
    }
    // the lock: a forget in progress took the row first (or is inserting it), so this waits
    // for it; then the tombstone it committed is visible to the next statement
    // (a join, not `= ANY($1)`: on a table without statistics yet the planner picks a scan that
    // compares every row with every id of the batch, which made a 100-batch load 3.5x slower)
    if crate::api::distributed() {
        // Citus locks rows only in a statement that reaches one shard: the ids grouped by their
        // shard (Citus's own hash), one statement per shard instead of one per customer
        let groups: Vec<Vec<String>> = crate::plans::select(
            c,
            "SELECT pg_catalog.array_agg(u.id ORDER BY u.id) FROM unnest($1::pg_catalog.text[]) AS u(id)
              GROUP BY pg_catalog.get_shard_id_for_distribution_column('reco.customers'::pg_catalog.regclass, u.id) ORDER BY 1",
            &[DatumWithOid::from(live.clone())],
        )
        .or_raise()
        .map(|r| r.get::<Vec<String>>(1).or_raise().unwrap_or_default())
        .collect();
        for ids in groups {
            crate::plans::update(
                c,
                "SELECT 1 FROM reco.customers x WHERE x.customer_id = ANY($1::pg_catalog.text[]) FOR KEY SHARE OF x",
                &[DatumWithOid::from(ids)],
            )
            .or_raise();
        }
    } else {
        crate::plans::update(
            c,
            "SELECT 1 FROM reco.customers x JOIN unnest($1::pg_catalog.text[]) AS u(id) ON x.customer_id = u.id FOR KEY SHARE OF x",
            &[DatumWithOid::from(live.clone())],
        )
        .or_raise();
    }
    let late: Vec<String> = forgotten_of(c, &live).into_iter().collect();
    if !late.is_empty() {
        // forgotten while this transaction waited: what the INSERT above re-created goes again
        crate::plans::update(c, "DELETE FROM reco.customers WHERE customer_id = ANY($1::pg_catalog.text[])", &[DatumWithOid::from(late.clone())]).or_raise();
    }
    forgotten.into_iter().chain(late).collect()
}
