//! jsonb arguments read without panicking: pgrx's `JsonB` unwraps its parse, so a payload nested
//! deeper than serde_json's limit would abort with a useless message. `Payload` keeps the parse
//! result and lets the function raise a proper error.
use pgrx::pg_sys;
use pgrx::pgrx_sql_entity_graph::metadata::{ArgumentError, ReturnsError, ReturnsRef, SqlMappingRef, SqlTranslatable};
use pgrx::{direct_function_call, FromDatum};
use serde_json::Value;

pub struct Payload(pub reco_engine::Result<Value>);

impl Payload {
    pub fn value(self) -> reco_engine::Result<Value> {
        self.0
    }
}

impl FromDatum for Payload {
    unsafe fn from_polymorphic_datum(datum: pg_sys::Datum, is_null: bool, _: pg_sys::Oid) -> Option<Self> {
        if is_null {
            return None;
        }
        let varlena = datum.cast_mut_ptr::<pg_sys::varlena>();
        let detoasted = pg_sys::pg_detoast_datum_packed(varlena);
        let cstr = direct_function_call::<&core::ffi::CStr>(pg_sys::jsonb_out, &[Some(pg_sys::Datum::from(detoasted))]);
        let parsed = match cstr {
            Some(c) => {
                let r = match c.to_str() {
                    Ok(text) => reco_engine::json::parse(text),
                    Err(_) => Err(reco_engine::Error::new(reco_engine::ErrorKind::InvalidText, "payload is not valid UTF-8")),
                };
                pg_sys::pfree(c.as_ptr() as *mut core::ffi::c_void);
                r
            }
            None => Err(reco_engine::Error::invalid("payload is NULL")),
        };
        if detoasted != varlena {
            pg_sys::pfree(detoasted as *mut core::ffi::c_void);
        }
        Some(Payload(parsed))
    }
}

unsafe impl SqlTranslatable for Payload {
    const TYPE_IDENT: &'static str = pgrx::pgrx_resolved_type!(Payload);
    const TYPE_ORIGIN: pgrx::pgrx_sql_entity_graph::metadata::TypeOrigin =
        pgrx::pgrx_sql_entity_graph::metadata::TypeOrigin::External;
    const ARGUMENT_SQL: Result<SqlMappingRef, ArgumentError> = Ok(SqlMappingRef::literal("jsonb"));
    const RETURN_SQL: Result<ReturnsRef, ReturnsError> = Ok(ReturnsRef::One(SqlMappingRef::literal("jsonb")));
}

unsafe impl<'fcx> pgrx::callconv::ArgAbi<'fcx> for Payload {
    unsafe fn unbox_arg_unchecked(arg: pgrx::callconv::Arg<'_, 'fcx>) -> Self {
        // strict functions are never called with NULL; a nullable argument is Option<Payload>
        arg.unbox_arg_using_from_datum().unwrap_or_else(|| Payload(Err(reco_engine::Error::invalid("payload is NULL"))))
    }

    unsafe fn unbox_nullable_arg(arg: pgrx::callconv::Arg<'_, 'fcx>) -> pgrx::nullable::Nullable<Self> {
        arg.unbox_arg_using_from_datum().into()
    }
}
