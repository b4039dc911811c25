//! Customer preferences: capture (standardized by category), edit, revoke, resolve, forget.
//! The readers run as the caller, so row-level security applies to customer-scoped sessions;
//! the writers are definer functions that check who may act for the customer
//! (`scope::authorize`), and forget_customer is for admins. One file per concern:
//! `capture`, `resolve`, `infer`, `forget`; what they share is here.
mod capture;
mod consent;
mod forget;
mod infer;
mod resolve;

use capture::*;
pub(crate) use resolve::resolved;

use crate::error::{raise, OrRaise};
use crate::jsonb::{JsonbText, Payload};
use pgrx::datum::DatumWithOid;
use pgrx::prelude::*;
use reco_engine::prefs::fit::ItemFacts;
use reco_engine::prefs::infer::{Browse, Inferred, Purchase, ReturnReason};
use reco_engine::prefs::{self, LedgerRow, Policy, ValueType};
use reco_engine::standardize::money;
use reco_engine::standardize::time;
use reco_engine::{Error, ErrorKind};
use serde_json::{Map, Value};

pub(super) struct Category {
    name: String,
    vtype: ValueType,
    sources: Vec<String>,
}

/// The categories named in `only` (every category when None).
pub(super) fn categories_named(only: Option<&[String]>) -> Vec<Category> {
    Spi::connect(|c| {
        let rows = crate::plans::select(
            c,
            "SELECT name, value_type, family, allowed_values, allowed_sources FROM reco.preference_categories
             WHERE $1::pg_catalog.text[] IS NULL OR name = ANY($1::pg_catalog.text[])",
            &[DatumWithOid::from(only.map(<[String]>::to_vec))],
        )
        .or_raise();
        let mut out = Vec::new();
        for r in rows {
            let name: String = r.get(1).or_raise().unwrap_or_default();
            let vt: String = r.get(2).or_raise().unwrap_or_default();
            let family: Option<String> = r.get(3).or_raise();
            let allowed: Vec<String> = r.get::<Vec<String>>(4).or_raise().unwrap_or_default();
            let sources: Vec<String> = r.get::<Vec<String>>(5).or_raise().unwrap_or_default();
            let vtype = ValueType::parse(&vt, family.as_deref(), &allowed).map_err(|e| e.context(format!("category {name}"))).or_raise();
            out.push(Category { name, vtype, sources });
        }
        out
    })
}

pub(super) fn categories() -> Vec<Category> {
    categories_named(None)
}

pub(super) fn find_category<'a>(all: &'a [Category], name: &str) -> &'a Category {
    all.iter().find(|c| c.name == name).unwrap_or_else(|| {
        let every = categories();
        let names: Vec<&str> = every.iter().map(|c| c.name.as_str()).collect();
        raise(
            Error::invalid(format!("preference category {} is not known", reco_engine::error::show(name)))
                .hint(format!("categories: {} (add one with a row in reco.preference_categories)", names.join(", "))),
        )
    })
}

/// A customer id argument, checked (NULL: 22004; empty, too long or with invisible characters:
/// 22023); an e-mail address or phone number becomes its pseudonym (api::privacy).
pub(crate) fn checked_id(id: Option<&str>, name: &str) -> String {
    crate::api::privacy::customer_id(&checked_raw_id(id, name)).into_owned()
}

/// A customer id argument, checked, as given (not mapped to its pseudonym).
pub(crate) fn checked_raw_id(id: Option<&str>, name: &str) -> String {
    let id = crate::api::required(id, name, "pass a value: the OMS customer id");
    let v = Value::from(id);
    reco_engine::json::Node::root(&v)
        .id()
        .map_err(|e| e.at(name))
        .or_raise()
        .unwrap_or_else(|| raise(Error::invalid(format!("{name} is empty")).at(name).hint("pass the OMS customer id")))
}

/// Checks a customer id, and that this session may act for that customer: a customer-scoped
/// session (reco.enter_customer_scope) only for its own, other sessions only with reco_writer's
/// privileges (see scope::authorize).
pub(super) fn customer(id: &str) -> String {
    let id = checked_id(Some(id), "customer_id");
    super::scope::authorize(&id);
    id
}

/// Checks a customer id for a reader: a customer-scoped session names only its own customer
/// (row-level security would show it nothing else anyway; this says why).
pub(super) fn readable_customer(id: &str) -> String {
    let id = checked_id(Some(id), "customer_id");
    super::scope::in_scope(&id);
    id
}

/// Creates the customer if new; a forgotten customer is not created again (55000).
pub(super) fn ensure_customer(c: &mut pgrx::spi::SpiClient<'_>, customer_id: &str) {
    if !super::scope::ensure_customers(c, &[customer_id.to_string()], None).is_empty() {
        raise(
            Error::new(ErrorKind::NotInPrerequisiteState, format!("customer {} was forgotten", reco_engine::error::show(customer_id)))
                .hint("reco.forget_customer is final: nothing is stored for this id again"),
        );
    }
}

/// An observed_at argument: NULL is refused (22004), the bounds are checked when inserting.
pub(super) fn observed(at: Option<TimestampWithTimeZone>) -> TimestampWithTimeZone {
    crate::api::required(at, "observed_at", "leave it out for now(), or pass when the customer said it")
}
