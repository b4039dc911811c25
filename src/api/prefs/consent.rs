//! Consent per channel, with provenance: `reco.set_consent` records a customer's decision
//! (reco.consent_log) and makes it the one in force (reco.consents) unless a later decision is
//! there already. The tables and the other writers (unsubscribe events, the customers mirror
//! columns) are in sql/notify.sql.
use super::*;
use reco_engine::notify::consent;

/// Records that the customer gave (`granted` true) or withdrew consent to messages on
/// `channel`, where (`source`), on what evidence, and when they decided (`decided_at`, default
/// now). A customer-scoped session may record its own customer's decisions; other sessions need
/// reco_writer's privileges. Returns the consent now in force on that channel: a decision older
/// than the one in force is logged but changes nothing.
#[pg_extern(volatile, security_definer)]
#[search_path(pg_catalog, reco, pg_temp)]
fn set_consent(
    customer_id: Option<&str>,
    channel: Option<&str>,
    granted: Option<bool>,
    source: Option<&str>,
    evidence: default!(Option<Payload>, "'{}'"),
    decided_at: default!(Option<TimestampWithTimeZone>, "now()"),
) -> bool {
    let customer_id = customer(crate::api::required(customer_id, "customer_id", "pass a value: the OMS customer id"));
    let channel = crate::api::required(channel, "channel", "email, push or in_app (reco.notification_channels)");
    let granted = crate::api::required(granted, "granted", "true when the customer gives consent, false when they withdraw it");
    let source = crate::api::required(source, "source", "where the customer decided, e.g. 'signup_form' or 'account_page'");
    let source = consent::check_source(source).or_raise();
    let evidence = Payload::object_arg(evidence, "evidence", "{\"form\": \"newsletter_v3\", \"ip_hash\": \"…\"}");
    let evidence = consent::evidence(evidence, crate::api::scope::scope().is_some()).or_raise();
    let at = crate::api::required(decided_at, "decided_at", "leave it out for now(), or pass when the customer decided");
    time::check_activity(&time::from_pg_micros(at.into_inner()), &crate::api::transaction_start(), "decided_at").or_raise();
    Spi::connect_mut(|c| {
        let known: Vec<String> = crate::plans::select(c, "SELECT channel::pg_catalog.text FROM reco.notification_channels ORDER BY 1", &[])
            .or_raise()
            .filter_map(|r| r.get::<String>(1).or_raise())
            .collect();
        if !known.iter().any(|k| k == channel) {
            raise(
                Error::new(ErrorKind::UndefinedObject, format!("channel {} is not in reco.notification_channels", reco_engine::error::show(channel)))
                    .at("channel")
                    .hint(format!("channels: {}", known.join(", "))),
            );
        }
        ensure_customer(c, &customer_id);
        let r = crate::plans::select(
            c,
            "SELECT granted FROM reco._record_consents(ARRAY[$1], ARRAY[$2], ARRAY[$3], ARRAY[$4], ARRAY[$5::pg_catalog.jsonb], ARRAY[$6], $7)",
            &[
                DatumWithOid::from(customer_id.as_str()),
                DatumWithOid::from(channel),
                DatumWithOid::from(granted),
                DatumWithOid::from(source),
                DatumWithOid::from(evidence.to_string().as_str()),
                DatumWithOid::from(at),
                DatumWithOid::from(crate::api::scope::outer_user_name().as_str()),
            ],
        )
        .or_raise();
        r.first().get::<bool>(1).or_raise().unwrap_or(false)
    })
}
