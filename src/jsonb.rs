//! jsonb in and out without pgrx's `JsonB`, for two reasons:
//! - `JsonB` unwraps its parse, so a payload nested deeper than serde_json's limit would abort
//!   with a useless message; `Payload` keeps the error for the function to raise properly.
//! - speed: `Payload` walks the binary jsonb with PostgreSQL's iterator instead of printing it
//!   to text and parsing that again, and `JsonbText` hands serialized text straight to jsonb_in
//!   instead of building a `serde_json::Value` first.
use crate::error::OrRaise;
use pgrx::callconv::{Arg, ArgAbi, BoxRet, FcInfo};
use pgrx::nullable::Nullable;
use pgrx::pg_sys;
use pgrx::{direct_function_call, direct_function_call_as_datum, FromDatum, IntoDatum};
use reco_engine::{Error, ErrorKind};
use serde_json::{Map, Value};

/// Deepest nesting accepted, the same limit serde_json's text parser applies.
const MAX_DEPTH: usize = 128;

/// A jsonb argument, converted to a `serde_json::Value` (or the reason it could not be).
pub struct Payload(pub reco_engine::Result<Value>);

impl Payload {
    pub fn value(self) -> reco_engine::Result<Value> {
        self.0
    }

    /// An optional jsonb argument that must be an object (NULL counts as empty); anything else
    /// raises 22023 naming the argument and the value, with `example` as the hint.
    pub fn object_arg(arg: Option<Payload>, name: &str, example: &str) -> Map<String, Value> {
        match arg.map(Payload::value).transpose().map_err(|e| e.at(name)).or_raise() {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(m)) => m,
            Some(v) => crate::error::raise(
                Error::invalid(format!("{name} must be a JSON object, not {}", reco_engine::error::show(&v.to_string())))
                    .at(name)
                    .hint(format!("for example '{example}'")),
            ),
        }
    }
}

enum Frame {
    Array(Vec<Value>, bool),
    Object(Map<String, Value>, Option<String>),
}

fn too_deep() -> Error {
    Error::new(ErrorKind::LimitExceeded, "payload is nested more than 128 levels deep")
        .hint("flatten the payload; canonical order and event payloads need a few levels at most")
}

/// The text of a jsonb string or key.
///
/// # Safety
/// `ptr` must point to `len` readable bytes (a `JsonbValue`'s string, alive while this runs).
unsafe fn text(ptr: *const core::ffi::c_char, len: usize) -> reco_engine::Result<String> {
    // SAFETY: the caller's contract
    let bytes = unsafe { std::slice::from_raw_parts(ptr as *const u8, len) };
    if utf8_database() {
        // SAFETY: PostgreSQL verified the encoding when the jsonb was made, and the database is UTF8
        return Ok(unsafe { String::from_utf8_unchecked(bytes.to_vec()) });
    }
    String::from_utf8(bytes.to_vec()).map_err(|_| Error::new(ErrorKind::InvalidText, "payload text is not valid UTF-8").hint("use a UTF8 database"))
}

fn utf8_database() -> bool {
    use std::sync::atomic::{AtomicU8, Ordering};
    // 0 unknown, 1 UTF8, 2 other; a backend serves one database for its whole life
    static STATE: AtomicU8 = AtomicU8::new(0);
    match STATE.load(Ordering::Relaxed) {
        1 => true,
        2 => false,
        _ => {
            // SAFETY: reads the backend's database encoding, set before any SQL function runs
            let utf8 = unsafe { pg_sys::GetDatabaseEncoding() } == pg_sys::pg_enc::PG_UTF8 as i32;
            STATE.store(if utf8 { 1 } else { 2 }, Ordering::Relaxed);
            utf8
        }
    }
}

/// A scalar jsonb value.
///
/// # Safety
/// `v` must be a value the jsonb iterator just returned (its union field matches `type_`).
unsafe fn scalar(v: &pg_sys::JsonbValue) -> reco_engine::Result<Value> {
    Ok(match v.type_ {
        pg_sys::jbvType::jbvNull => Value::Null,
        // SAFETY: the union's field for this type_ (the caller's contract)
        pg_sys::jbvType::jbvBool => Value::Bool(unsafe { v.val.boolean }),
        // SAFETY: as above; the string lives in the jsonb being read
        pg_sys::jbvType::jbvString => Value::String(unsafe { text(v.val.string.val, v.val.string.len as usize) }?),
        pg_sys::jbvType::jbvNumeric => {
            // the exact decimal text, so money never passes through a float
            // SAFETY: the union's numeric for this type_; numeric_out takes a numeric datum
            let cstr = unsafe { direct_function_call::<&core::ffi::CStr>(pg_sys::numeric_out, &[Some(pg_sys::Datum::from(v.val.numeric))]) };
            let s = cstr.and_then(|c| c.to_str().ok()).unwrap_or("0");
            let n: serde_json::Number = serde_json::from_str(s).map_err(|_| Error::new(ErrorKind::InvalidText, format!("number {s} is not valid JSON")))?;
            Value::Number(n)
        }
        other => return Err(Error::new(ErrorKind::InvalidText, format!("unexpected jsonb value type {other}"))),
    })
}

/// Walks a detoasted jsonb into a Value, iteratively, refusing depth beyond MAX_DEPTH.
///
/// # Safety
/// `jb` must point to a detoasted jsonb that stays alive while this runs.
unsafe fn jsonb_to_value(jb: *mut pg_sys::Jsonb) -> reco_engine::Result<Value> {
    // SAFETY: the caller's contract; the iterator reads the jsonb's container
    let mut it = unsafe { pg_sys::JsonbIteratorInit(&mut (*jb).root) };
    // SAFETY: JsonbValue is a plain C struct; all-zero is a valid (null) value the iterator overwrites
    let mut v: pg_sys::JsonbValue = unsafe { std::mem::zeroed() };
    let mut stack: Vec<Frame> = Vec::new();
    let mut done: Option<Value> = None;
    // places a finished value into its parent, or makes it the result
    fn place(stack: &mut [Frame], done: &mut Option<Value>, value: Value) {
        match stack.last_mut() {
            Some(Frame::Array(a, _)) => a.push(value),
            Some(Frame::Object(m, key)) => {
                if let Some(k) = key.take() {
                    m.insert(k, value);
                }
            }
            None => *done = Some(value),
        }
    }
    loop {
        // SAFETY: `it` was made from the live jsonb above and is advanced until WJB_DONE
        let token = unsafe { pg_sys::JsonbIteratorNext(&mut it, &mut v, false) };
        match token {
            pg_sys::JsonbIteratorToken::WJB_DONE => break,
            pg_sys::JsonbIteratorToken::WJB_BEGIN_ARRAY => {
                if stack.len() >= MAX_DEPTH {
                    return Err(too_deep());
                }
                // SAFETY: WJB_BEGIN_ARRAY fills the union's array
                let arr = unsafe { v.val.array };
                stack.push(Frame::Array(Vec::with_capacity(arr.nElems.max(0) as usize), arr.rawScalar));
            }
            pg_sys::JsonbIteratorToken::WJB_BEGIN_OBJECT => {
                if stack.len() >= MAX_DEPTH {
                    return Err(too_deep());
                }
                stack.push(Frame::Object(Map::new(), None));
            }
            pg_sys::JsonbIteratorToken::WJB_KEY => {
                // SAFETY: WJB_KEY fills the union's string, which lives in the jsonb
                let k = unsafe { text(v.val.string.val, v.val.string.len as usize) }?;
                if let Some(Frame::Object(_, key)) = stack.last_mut() {
                    *key = Some(k);
                }
            }
            pg_sys::JsonbIteratorToken::WJB_VALUE | pg_sys::JsonbIteratorToken::WJB_ELEM => {
                // SAFETY: the iterator just returned this value
                let s = unsafe { scalar(&v) }?;
                place(&mut stack, &mut done, s);
            }
            pg_sys::JsonbIteratorToken::WJB_END_ARRAY => {
                if let Some(Frame::Array(mut a, raw)) = stack.pop() {
                    // a scalar document is stored as a one-element "raw scalar" array
                    let value = if raw { a.pop().unwrap_or(Value::Null) } else { Value::Array(a) };
                    place(&mut stack, &mut done, value);
                }
            }
            pg_sys::JsonbIteratorToken::WJB_END_OBJECT => {
                if let Some(Frame::Object(m, _)) = stack.pop() {
                    place(&mut stack, &mut done, Value::Object(m));
                }
            }
            _ => {}
        }
    }
    Ok(done.unwrap_or(Value::Null))
}

impl FromDatum for Payload {
    unsafe fn from_polymorphic_datum(datum: pg_sys::Datum, is_null: bool, _: pg_sys::Oid) -> Option<Self> {
        if is_null {
            return None;
        }
        let raw = datum.cast_mut_ptr::<pg_sys::varlena>();
        // SAFETY: a non-null datum of a jsonb argument; a detoasted copy is ours to free after
        // the walk, which copies everything it keeps
        unsafe {
            let detoasted = pg_sys::pg_detoast_datum(raw);
            let parsed = jsonb_to_value(detoasted as *mut pg_sys::Jsonb);
            if detoasted != raw {
                pg_sys::pfree(detoasted as *mut core::ffi::c_void);
            }
            Some(Payload(parsed))
        }
    }
}

// SAFETY: Payload is read from a jsonb datum with FromDatum (above), which is what a jsonb
// argument holds; the SQL type is declared jsonb (impl_sql_translatable below)
unsafe impl<'fcx> ArgAbi<'fcx> for Payload {
    unsafe fn unbox_arg_unchecked(arg: Arg<'_, 'fcx>) -> Self {
        // strict functions are never called with NULL; a nullable argument is Option<Payload>
        // SAFETY: pgrx passes a jsonb argument (the SQL type is declared jsonb)
        unsafe { arg.unbox_arg_using_from_datum() }.unwrap_or_else(|| Payload(Err(Error::invalid("payload is NULL"))))
    }

    unsafe fn unbox_nullable_arg(arg: Arg<'_, 'fcx>) -> Nullable<Self> {
        // SAFETY: as above
        unsafe { arg.unbox_arg_using_from_datum() }.into()
    }
}

pgrx::impl_sql_translatable!(Payload, "jsonb");

/// A jsonb result given as serialized JSON text.
pub struct JsonbText(pub String);

impl JsonbText {
    pub fn of<T: serde::Serialize>(v: &T) -> Self {
        JsonbText(serde_json::to_string(v).unwrap_or_else(|_| "null".into()))
    }
}

impl IntoDatum for JsonbText {
    fn into_datum(self) -> Option<pg_sys::Datum> {
        // serde_json escapes NUL as \u0000, so the text has no interior NUL byte
        let cstring = std::ffi::CString::new(self.0).ok()?;
        // SAFETY: jsonb_in takes a NUL-terminated C string, alive for the call
        unsafe { direct_function_call_as_datum(pg_sys::jsonb_in, &[Some(pg_sys::Datum::from(cstring.as_ptr()))]) }
    }

    fn type_oid() -> pg_sys::Oid {
        pg_sys::JSONBOID
    }
}

// SAFETY: returns a jsonb datum (or NULL) from a function declared to return jsonb
unsafe impl BoxRet for JsonbText {
    unsafe fn box_into<'fcx>(self, fcinfo: &mut FcInfo<'fcx>) -> pgrx::datum::Datum<'fcx> {
        match self.into_datum() {
            // SAFETY: a jsonb datum for a function declared to return jsonb
            Some(d) => unsafe { fcinfo.return_raw_datum(d) },
            None => fcinfo.return_null(),
        }
    }
}

pgrx::impl_sql_translatable!(JsonbText, "jsonb");
