//! Pseudonymous customer ids (reco_engine::pseudonym): ingest replaces a customer id that is
//! personal data (an e-mail address, an international phone number, or any id from a channel in
//! `reco.pseudonymized_channels`) by its keyed pseudonym, and keeps the address or number in
//! the customer's identity columns (`reco.customers.email`, `phone`). Every function that takes
//! a customer id maps a personal one the same way, so `reco.recommend('ana@example.com')`
//! serves the customer her orders made.
use crate::error::{raise, OrRaise};
use crate::plans;
use pgrx::datum::DatumWithOid;
use pgrx::prelude::*;
use reco_engine::pseudonym::{self, Personal};
use reco_engine::{Error, ErrorKind};
use std::borrow::Cow;
use std::collections::HashSet;

thread_local! {
    /// Whether this database's pg_reco has pseudonyms (0.2.0 on): a library newer than the
    /// installed SQL (before ALTER EXTENSION pg_reco UPDATE) keeps the old behaviour.
    static ENABLED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

fn enabled() -> bool {
    super::has_table(c"pseudonymized_channels", &ENABLED)
}

/// The channels whose every customer id is pseudonymized.
fn channels_all(c: &pgrx::spi::SpiClient<'_>) -> HashSet<String> {
    plans::select(c, "SELECT channel FROM reco.pseudonymized_channels", &[]).or_raise().filter_map(|r| r.get::<String>(1).or_raise()).collect()
}

/// The identity kept beside a pseudonym: (pseudonym, kind, address or number).
pub type Identity = (String, Personal, String);

/// Maps ingest's customer ids in place. `ids` are (customer id, channel) slots; the key is
/// read only when some id needs it. Returns the identities to keep.
pub struct Ingest {
    /// false before the extension's SQL was updated to a version with pseudonyms
    pub active: bool,
    all: HashSet<String>,
    key: Option<Vec<u8>>,
    pub identities: Vec<Identity>,
    /// (id as sent, pseudonym) of each personal id mapped
    mapped: std::collections::HashMap<String, String>,
}

impl Ingest {
    /// Called inside the SECURITY DEFINER ingest functions (the owner role reads the key).
    pub fn new(c: &pgrx::spi::SpiClient<'_>) -> Self {
        let active = enabled();
        Ingest { active, all: if active { channels_all(c) } else { HashSet::new() }, key: None, identities: Vec::new(), mapped: Default::default() }
    }

    /// The id to store for `id` arriving on `channel`.
    pub fn map(&mut self, id: &str, channel: &str) -> String {
        let all = self.all.contains(channel);
        if !self.active || (!all && pseudonym::classify(id).is_none()) {
            return id.to_string();
        }
        let key = self.key.get_or_insert_with(super::scope::secret_key);
        let (p, identity) = pseudonym::apply(key, id, all);
        if let Some((kind, value)) = identity {
            self.identities.push((p.clone(), kind, value));
        }
        if p != id {
            self.mapped.entry(id.to_string()).or_insert_with(|| p.clone());
        }
        p
    }

    /// A customer forgotten under the id as sent (before pseudonyms, 0.1.0) stays forgotten
    /// under its pseudonym: their tombstone is copied. Call before creating customers.
    pub fn carry_tombstones(&self, c: &mut pgrx::spi::SpiClient<'_>) {
        if self.mapped.is_empty() {
            return;
        }
        let (raw, ps): (Vec<String>, Vec<String>) = self.mapped.iter().map(|(r, p)| (r.clone(), p.clone())).unzip();
        let raw_keys = super::scope::keys(&raw);
        let p_keys = super::scope::keys(&ps);
        plans::update(
            c,
            "INSERT INTO reco.forgotten_customers (customer_key)
             SELECT u.p FROM unnest($1::pg_catalog.text[], $2::pg_catalog.text[]) AS u(raw, p)
              WHERE EXISTS (SELECT 1 FROM reco.forgotten_customers f WHERE f.customer_key = u.raw)
             ON CONFLICT (customer_key) DO NOTHING",
            &[DatumWithOid::from(raw_keys), DatumWithOid::from(p_keys)],
        )
        .or_raise();
    }

    /// The customer's address from an order (its e-mail field), kept as identity too.
    pub fn keep_email(&mut self, customer_id: &str, email: &str) {
        if !self.active {
            return;
        }
        let e = email.trim();
        if pseudonym::classify(e) == Some(Personal::Email) {
            self.identities.push((customer_id.to_string(), Personal::Email, e.to_lowercase()));
        }
    }

    /// Writes the identities (after the customers exist): the last address or number of the
    /// batch wins; rows whose identity is already that are not touched.
    pub fn store(&self, c: &mut pgrx::spi::SpiClient<'_>) {
        if self.identities.is_empty() {
            return;
        }
        // one (email, phone) per customer, in first-seen order
        let mut order: Vec<&str> = Vec::new();
        let mut by_id: std::collections::HashMap<&str, (Option<&str>, Option<&str>)> = Default::default();
        for (id, kind, value) in &self.identities {
            let e = by_id.entry(id.as_str()).or_insert_with(|| {
                order.push(id.as_str());
                (None, None)
            });
            match kind {
                Personal::Email => e.0 = Some(value.as_str()),
                Personal::Phone => e.1 = Some(value.as_str()),
            }
        }
        if let [id] = order[..] {
            // one customer (an event, an order): by its key, whatever the statistics say
            let (email, phone) = by_id[id];
            plans::update(
                c,
                "UPDATE reco.customers SET email = coalesce($2, email), phone = coalesce($3, phone)
                  WHERE customer_id = $1 AND (email IS DISTINCT FROM coalesce($2, email) OR phone IS DISTINCT FROM coalesce($3, phone))",
                &[DatumWithOid::from(id), DatumWithOid::from(email), DatumWithOid::from(phone)],
            )
            .or_raise();
            return;
        }
        let emails: Vec<Option<&str>> = order.iter().map(|i| by_id[i].0).collect();
        let phones: Vec<Option<&str>> = order.iter().map(|i| by_id[i].1).collect();
        plans::update(
            c,
            "UPDATE reco.customers cu SET email = coalesce(u.email, cu.email), phone = coalesce(u.phone, cu.phone)
               FROM unnest($1::pg_catalog.text[], $2::pg_catalog.text[], $3::pg_catalog.text[]) AS u(id, email, phone)
              WHERE cu.customer_id = u.id
                AND (cu.email IS DISTINCT FROM coalesce(u.email, cu.email) OR cu.phone IS DISTINCT FROM coalesce(u.phone, cu.phone))",
            &[DatumWithOid::from(order.clone()), DatumWithOid::from(emails), DatumWithOid::from(phones)],
        )
        .or_raise();
    }
}

/// The id a function taking a customer id works with: a personal one (by its form) becomes its
/// pseudonym; anything else is itself, at the cost of a look at its first bytes. Functions that
/// run as their caller ask `reco.pseudonym` (SECURITY DEFINER) the first time, since only the
/// owner role reads the key.
pub fn customer_id(id: &str) -> Cow<'_, str> {
    if pseudonym::classify(id).is_none() || pseudonym::is_pseudonym(id) || !enabled() {
        return Cow::Borrowed(id);
    }
    if let Some(k) = super::scope::cached_key() {
        return Cow::Owned(pseudonym::pseudonym(&k, id));
    }
    let p: Option<String> = Spi::get_one_with_args("SELECT reco.pseudonym($1)", &[DatumWithOid::from(id)]).or_raise();
    Cow::Owned(p.unwrap_or_else(|| {
        raise(
            Error::new(ErrorKind::NotInPrerequisiteState, "reco.pseudonym returned NULL")
                .hint("reinstall the extension's functions: ALTER EXTENSION pg_reco UPDATE, or DROP and CREATE EXTENSION on a test database"),
        )
    }))
}

/// The pseudonym that stands for `customer_id` in pg_reco's tables: for an e-mail address or an
/// international phone number its keyed pseudonym; for any other id the id itself, or its
/// pseudonym when `channel` is in `reco.pseudonymized_channels`; a pseudonym stays itself.
#[pg_extern(stable, security_definer)]
#[search_path(pg_catalog, reco, pg_temp)]
fn pseudonym(customer_id: Option<&str>, channel: default!(Option<&str>, "NULL")) -> String {
    let customer_id = super::required(customer_id, "customer_id", "pass the customer id a channel sends, e.g. an e-mail address");
    let all = match channel {
        Some(ch) => Spi::connect(|c| channels_all(c).contains(ch)),
        None => false,
    };
    pseudonym::apply(&super::scope::secret_key(), customer_id, all).0
}
