//! pgvector's `vector` read and written straight from its varlena: a 4-byte header, int16 dim,
//! int16 unused, then `dim` float4. No text round trip.
use crate::error::OrRaise;
use pgrx::datum::DatumWithOid;
use pgrx::prelude::*;

/// The `vector` type of this database and its array type.
#[derive(Debug, Clone, Copy)]
pub struct VectorType {
    pub oid: pg_sys::Oid,
    pub array_oid: pg_sys::Oid,
}

pub fn vector_type() -> VectorType {
    // no row: pgvector is not installed (any other failure is raised as it is)
    let row = Spi::connect(|c| {
        let rows = c
            .select(
                "SELECT t.oid, t.typarray FROM pg_catalog.pg_type t JOIN pg_catalog.pg_extension e ON e.extname = 'vector'
                 JOIN pg_catalog.pg_depend d ON d.objid = t.oid AND d.refobjid = e.oid AND d.deptype = 'e'
                 WHERE t.typname = 'vector'",
                None,
                &[],
            )
            .or_raise();
        rows.into_iter().next().map(|r| (r.get::<pg_sys::Oid>(1).or_raise(), r.get::<pg_sys::Oid>(2).or_raise()))
    });
    match row {
        Some((Some(oid), Some(array_oid))) => VectorType { oid, array_oid },
        _ => not_installed(),
    }
}

fn not_installed() -> ! {
    crate::error::raise(
        reco_engine::Error::new(reco_engine::ErrorKind::NotInPrerequisiteState, "the vector extension (pgvector) is not installed")
            .hint("CREATE EXTENSION vector; (pg_reco requires it: CREATE EXTENSION pg_reco CASCADE)"),
    )
}

/// The schema pgvector was installed in, quoted for SQL text (`public` usually): statements
/// name its type, operators and functions with it, so that no caller's search_path (nor a
/// temporary object shadowing them) changes what they mean.
pub fn schema() -> String {
    // a scalar subquery: one row, NULL when pgvector is not installed
    let s: Option<String> = Spi::get_one(
        "SELECT (SELECT pg_catalog.quote_ident(n.nspname) FROM pg_catalog.pg_extension e
                   JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'vector')",
    )
    .or_raise();
    s.unwrap_or_else(|| not_installed())
}

/// A palloc'd `vector` datum in the current memory context.
pub fn to_datum(v: &[f32]) -> pg_sys::Datum {
    let dim = v.len().min(16_000);
    let size = pg_sys::VARHDRSZ + 4 + 4 * dim;
    // SAFETY: writes exactly `size` bytes into a fresh palloc0 of `size` bytes: the varlena
    // header, int16 dim, int16 unused (zero), dim float4s
    unsafe {
        let p = pg_sys::palloc0(size) as *mut u8;
        pgrx::set_varsize_4b(p as *mut pg_sys::varlena, size as i32);
        std::ptr::write_unaligned(p.add(pg_sys::VARHDRSZ) as *mut i16, dim as i16);
        std::ptr::copy_nonoverlapping(v.as_ptr() as *const u8, p.add(pg_sys::VARHDRSZ + 4), 4 * dim);
        pg_sys::Datum::from(p)
    }
}

/// Reads a `vector` datum (detoasting a copy when needed, and freeing it).
///
/// # Safety
/// `d` must be a non-null datum of pgvector's `vector` type.
pub unsafe fn from_datum(d: pg_sys::Datum) -> Vec<f32> {
    let raw = d.cast_mut_ptr::<pg_sys::varlena>();
    // SAFETY: the caller's contract: a vector varlena (header, int16 dim, int16 unused, dim
    // float4s); the detoasted copy, when one is made, is ours to free after the copy out
    unsafe {
        let det = pg_sys::pg_detoast_datum(raw);
        let p = det as *const u8;
        let dim = std::ptr::read_unaligned(p.add(pg_sys::VARHDRSZ) as *const i16).max(0) as usize;
        let mut out = vec![0f32; dim];
        std::ptr::copy_nonoverlapping(p.add(pg_sys::VARHDRSZ + 4), out.as_mut_ptr() as *mut u8, 4 * dim);
        if det != raw {
            pg_sys::pfree(det as *mut std::ffi::c_void);
        }
        out
    }
}

/// A `vector[]` argument for SPI from rows of `dims` floats, palloc'd in the current context.
pub fn array_arg<'a>(t: VectorType, rows: &[&[f32]]) -> DatumWithOid<'a> {
    // SAFETY: `t.oid` is pgvector's type (vector_type()); construct_array copies the element
    // datums, so they can be freed after; the array is palloc'd in the current context
    unsafe {
        let (mut len, mut byval, mut align) = (0i16, false, 0 as std::ffi::c_char);
        pg_sys::get_typlenbyvalalign(t.oid, &mut len, &mut byval, &mut align);
        let mut elems: Vec<pg_sys::Datum> = rows.iter().map(|r| to_datum(r)).collect();
        let arr = pg_sys::construct_array(elems.as_mut_ptr(), elems.len() as i32, t.oid, len.into(), byval, align);
        for e in elems {
            pg_sys::pfree(e.cast_mut_ptr());
        }
        DatumWithOid::new(pg_sys::Datum::from(arr), t.array_oid)
    }
}

/// Inserts vectors through `sql`, whose parameters are $1 text[] (keys), $2 vector[],
/// $3 bigint (model id) and $4 text (space), in batches whose memory is freed as they go.
pub fn insert_batched(t: VectorType, sql: &'static str, model_id: i64, space: &str, keys: &[&str], vecs: &[&[f32]]) {
    const BATCH: usize = 5_000;
    for (k, v) in keys.chunks(BATCH).zip(vecs.chunks(BATCH)) {
        Spi::connect_mut(|c| {
            let args = [DatumWithOid::from(k.to_vec()), array_arg(t, v), DatumWithOid::from(model_id), DatumWithOid::from(space)];
            crate::plans::update(c, sql, &args).or_raise();
        });
    }
}

/// A `vector` value read from SPI rows: `row.get::<Vector>(n)`.
pub struct Vector(pub Vec<f32>);

impl FromDatum for Vector {
    unsafe fn from_polymorphic_datum(datum: pg_sys::Datum, is_null: bool, _: pg_sys::Oid) -> Option<Self> {
        if is_null {
            None
        } else {
            // SAFETY: a non-null datum of a column whose type is_compatible_with accepted
            Some(Vector(unsafe { from_datum(datum) }))
        }
    }
}

impl IntoDatum for Vector {
    fn into_datum(self) -> Option<pg_sys::Datum> {
        Some(to_datum(&self.0))
    }

    /// pgvector's type has no fixed OID; columns read as `Vector` are pgvector's `vector`.
    fn type_oid() -> pg_sys::Oid {
        pg_sys::InvalidOid
    }

    /// Only a type named `vector` (pgvector's, in whatever schema): reading another type's
    /// bytes as a vector would read garbage.
    fn is_compatible_with(oid: pg_sys::Oid) -> bool {
        thread_local! {
            static ACCEPTED: std::cell::Cell<pg_sys::Oid> = const { std::cell::Cell::new(pg_sys::InvalidOid) };
        }
        if oid == pg_sys::InvalidOid {
            return false;
        }
        if ACCEPTED.with(|a| a.get()) == oid {
            return true;
        }
        // SAFETY: format_type_be takes any type oid and returns a palloc'd C string (it raises
        // for an oid that is not a type)
        let name = unsafe { std::ffi::CStr::from_ptr(pg_sys::format_type_be(oid)) }.to_string_lossy().into_owned();
        let ok = name == "vector" || name.ends_with(".vector");
        if ok {
            ACCEPTED.with(|a| a.set(oid));
        }
        ok
    }
}
