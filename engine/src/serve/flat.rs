//! A serving model as one flat, position-independent byte image, so that one copy in shared
//! memory serves every backend of a server.
//!
//! The model's arrays are [`Slab`]s: either a `Vec` the backend owns (a model read from the
//! tables, or built by a test), or a slice of an image another backend wrote (shared). A slab
//! reads the same either way, and writing to a shared one copies it first, so code that builds
//! or edits a model never touches the image. [`Strs`] keeps strings as one byte slab and their
//! ends, [`Lists`] keeps per-item lists in compressed rows, and [`Lookup`] finds an id's index by
//! a hash map (owned) or an open-addressing table of indexes (shared): none of them holds a
//! pointer, so the image means the same at any address.
//!
//! The image is a stream of sections, each an element count (`u64`) and then that many elements
//! at their alignment ([`Writer`], [`Reader`]); it starts with [`MAGIC`] and [`FORMAT`]. The
//! image is read only by the build that wrote it (the server's preloaded library), so layouts
//! agree; the magic and format still guard against a stray image, and every section is bounds-
//! and alignment-checked, so a damaged image is an error, never a wild read.
use crate::{Error, ErrorKind};
use std::collections::HashMap;
use std::fmt;
use std::mem::{align_of, size_of, MaybeUninit};
use std::ops::{Deref, DerefMut, Index};
use std::ptr::NonNull;
use std::sync::Arc;

/// The first eight bytes of an image ("pg_reco" and a zero).
pub const MAGIC: u64 = u64::from_le_bytes(*b"pg_reco\0");
/// Bumped whenever the order or the types of the sections change.
pub const FORMAT: u32 = 2;

/// Types whose values may be copied to and from an image as their bytes: `Copy`, no pointers,
/// and every value written is read back by the same build.
///
/// # Safety
/// The type holds no pointer or reference and no `Drop`; any byte pattern the same build wrote
/// for a value of it is that value again.
pub unsafe trait Plain: Copy + Send + Sync + 'static {}

// SAFETY: primitive numbers and arrays of them hold no pointers; every bit pattern is a value
unsafe impl Plain for u8 {}
// SAFETY: as above
unsafe impl Plain for i8 {}
// SAFETY: as above
unsafe impl Plain for u32 {}
// SAFETY: as above
unsafe impl Plain for u64 {}
// SAFETY: as above
unsafe impl Plain for i64 {}
// SAFETY: as above
unsafe impl Plain for f32 {}
// SAFETY: as above
unsafe impl Plain for f64 {}
// SAFETY: arrays of a plain type are plain
unsafe impl<T: Plain, const N: usize> Plain for [T; N] {}
// SAFETY: two plain numbers; the image is read by the build that wrote it, so the layout agrees
unsafe impl Plain for (u32, f32) {}
// SAFETY: a bool is written as 0 or 1 and read back from what was written
unsafe impl Plain for bool {}

/// What keeps an image's memory mapped while slabs point into it (the glue's mapping guard).
pub type Keep = Arc<dyn Send + Sync>;

/// An array that is owned, or a read-only slice of a shared image.
pub struct Slab<T: Plain> {
    repr: Repr<T>,
}

enum Repr<T> {
    Owned(Vec<T>),
    Shared { keep: Keep, ptr: NonNull<T>, len: usize },
}

// SAFETY: a shared slab is a read-only view of memory kept mapped by `keep` (itself Send + Sync);
// T is Send + Sync
unsafe impl<T: Plain> Send for Slab<T> {}
// SAFETY: as above: nothing writes through a shared slab
unsafe impl<T: Plain> Sync for Slab<T> {}

impl<T: Plain> Slab<T> {
    pub fn new() -> Slab<T> {
        Slab { repr: Repr::Owned(Vec::new()) }
    }

    /// True when the slab reads a shared image.
    pub fn is_shared(&self) -> bool {
        matches!(self.repr, Repr::Shared { .. })
    }

    /// The owned vector, copying a shared slab first.
    pub fn to_mut(&mut self) -> &mut Vec<T> {
        if let Repr::Shared { .. } = self.repr {
            self.repr = Repr::Owned(self.deref().to_vec());
        }
        match &mut self.repr {
            Repr::Owned(v) => v,
            Repr::Shared { .. } => unreachable!("made owned just above"),
        }
    }

    pub fn push(&mut self, x: T) {
        self.to_mut().push(x);
    }

    /// Bytes of the backend's own memory it holds (0 when shared).
    pub fn own_bytes(&self) -> usize {
        match &self.repr {
            Repr::Owned(v) => v.capacity() * size_of::<T>(),
            Repr::Shared { .. } => 0,
        }
    }
}

impl<T: Plain> Default for Slab<T> {
    fn default() -> Self {
        Slab::new()
    }
}

impl<T: Plain> Deref for Slab<T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        match &self.repr {
            Repr::Owned(v) => v,
            // SAFETY: `ptr` and `len` were bounds- and alignment-checked against the image by
            // `Reader::slab`, and `keep` keeps the image mapped, read-only, for as long as self
            Repr::Shared { ptr, len, .. } => unsafe { std::slice::from_raw_parts(ptr.as_ptr(), *len) },
        }
    }
}

impl<T: Plain> DerefMut for Slab<T> {
    fn deref_mut(&mut self) -> &mut [T] {
        self.to_mut()
    }
}

impl<T: Plain> Clone for Slab<T> {
    fn clone(&self) -> Self {
        match &self.repr {
            Repr::Owned(v) => Slab { repr: Repr::Owned(v.clone()) },
            Repr::Shared { keep, ptr, len } => Slab { repr: Repr::Shared { keep: keep.clone(), ptr: *ptr, len: *len } },
        }
    }
}

impl<T: Plain + fmt::Debug> fmt::Debug for Slab<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.deref().fmt(f)
    }
}

impl<T: Plain + PartialEq> PartialEq for Slab<T> {
    fn eq(&self, other: &Self) -> bool {
        self.deref() == other.deref()
    }
}

impl<T: Plain> From<Vec<T>> for Slab<T> {
    fn from(v: Vec<T>) -> Self {
        Slab { repr: Repr::Owned(v) }
    }
}

impl<T: Plain> FromIterator<T> for Slab<T> {
    fn from_iter<I: IntoIterator<Item = T>>(it: I) -> Self {
        Slab::from(it.into_iter().collect::<Vec<T>>())
    }
}

impl<'a, T: Plain> IntoIterator for &'a Slab<T> {
    type Item = &'a T;
    type IntoIter = std::slice::Iter<'a, T>;
    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

/// Per-item lists in compressed rows: list `i` is `items[start[i]..start[i + 1]]`.
#[derive(Clone, Debug, PartialEq)]
pub struct Lists<T: Plain> {
    start: Slab<u64>,
    items: Slab<T>,
}

impl<T: Plain> Default for Lists<T> {
    fn default() -> Self {
        Lists { start: Slab::from(vec![0]), items: Slab::new() }
    }
}

impl<T: Plain> Lists<T> {
    pub fn len(&self) -> usize {
        self.start.len().saturating_sub(1)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// List `i`, or `None` past the end.
    pub fn get(&self, i: usize) -> Option<&[T]> {
        let (a, b) = (*self.start.get(i)?, *self.start.get(i + 1)?);
        self.items.get(usize::try_from(a).ok()?..usize::try_from(b).ok()?)
    }

    pub fn iter(&self) -> impl Iterator<Item = &[T]> + '_ {
        (0..self.len()).map(|i| &self[i])
    }

    /// Appends a list.
    pub fn push(&mut self, list: &[T]) {
        self.items.to_mut().extend_from_slice(list);
        let end = self.items.len() as u64;
        self.start.push(end);
    }

    /// Elements over all lists.
    pub fn total(&self) -> usize {
        self.items.len()
    }

    pub fn own_bytes(&self) -> usize {
        self.start.own_bytes() + self.items.own_bytes()
    }
}

impl<T: Plain> Index<usize> for Lists<T> {
    type Output = [T];
    /// List `i` (empty past the end, as an item without a list).
    fn index(&self, i: usize) -> &[T] {
        self.get(i).unwrap_or(&[])
    }
}

impl<T: Plain> From<Vec<Vec<T>>> for Lists<T> {
    fn from(v: Vec<Vec<T>>) -> Self {
        let mut l = Lists::default();
        l.items.to_mut().reserve(v.iter().map(Vec::len).sum());
        l.start.to_mut().reserve(v.len());
        for x in &v {
            l.push(x);
        }
        l
    }
}

impl<T: Plain> From<&[Vec<T>]> for Lists<T> {
    fn from(v: &[Vec<T>]) -> Self {
        let mut l = Lists::default();
        for x in v {
            l.push(x);
        }
        l
    }
}

/// Strings in one byte slab.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Strs(Lists<u8>);

impl Strs {
    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn get(&self, i: usize) -> Option<&str> {
        // (every string was pushed as a str, so this never fails on an image of this build)
        self.0.get(i).map(|b| std::str::from_utf8(b).unwrap_or(""))
    }

    pub fn push(&mut self, s: &str) {
        self.0.push(s.as_bytes());
    }

    pub fn iter(&self) -> impl Iterator<Item = &str> + '_ {
        (0..self.len()).map(|i| &self[i])
    }

    pub fn own_bytes(&self) -> usize {
        self.0.own_bytes()
    }
}

impl Index<usize> for Strs {
    type Output = str;
    fn index(&self, i: usize) -> &str {
        self.get(i).unwrap_or("")
    }
}

impl<S: AsRef<str>> FromIterator<S> for Strs {
    fn from_iter<I: IntoIterator<Item = S>>(it: I) -> Self {
        let mut s = Strs::default();
        for x in it {
            s.push(x.as_ref());
        }
        s
    }
}

/// Strings that may be missing (a missing one is stored as an empty string with its flag off).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct OptStrs {
    text: Strs,
    present: Slab<bool>,
}

impl OptStrs {
    pub fn get(&self, i: usize) -> Option<&str> {
        if *self.present.get(i)? {
            self.text.get(i)
        } else {
            None
        }
    }

    pub fn push(&mut self, s: Option<&str>) {
        self.text.push(s.unwrap_or(""));
        self.present.push(s.is_some());
    }

    pub fn own_bytes(&self) -> usize {
        self.text.own_bytes() + self.present.own_bytes()
    }
}

/// An id's index among strings: a hash map while owned, an open-addressing table of indexes
/// (hashed with a fixed seed, so every backend agrees) when shared. `get` answers alike.
#[derive(Clone, Debug)]
pub enum Lookup {
    Map(HashMap<String, u32>),
    Table { keys: Strs, table: Slab<u32> },
}

impl Default for Lookup {
    fn default() -> Self {
        Lookup::Map(HashMap::new())
    }
}

/// An empty slot of a shared lookup's table.
const VACANT: u32 = u32::MAX;

/// The slot a shared lookup files `key` under first (the same in every process of a build).
fn home(key: &[u8], mask: usize) -> usize {
    use std::hash::BuildHasher;
    foldhash::fast::FixedState::with_seed(0x7067_5f72_6563_6f00).hash_one(key) as usize & mask
}

impl Lookup {
    pub fn get<Q: AsRef<str> + ?Sized>(&self, key: &Q) -> Option<&u32> {
        let key = key.as_ref();
        match self {
            Lookup::Map(m) => m.get(key),
            Lookup::Table { keys, table } => {
                // a power-of-two table at most half full, probed linearly
                let mask = table.len().checked_sub(1)?;
                let mut at = home(key.as_bytes(), mask);
                for _ in 0..table.len() {
                    let x = &table[at];
                    if *x == VACANT {
                        return None;
                    }
                    if keys.0.get(*x as usize) == Some(key.as_bytes()) {
                        return Some(x);
                    }
                    at = (at + 1) & mask;
                }
                None
            }
        }
    }

    pub fn contains_key<Q: AsRef<str> + ?Sized>(&self, key: &Q) -> bool {
        self.get(key).is_some()
    }

    /// Adds `key` → `value` (a shared lookup is first turned into a map).
    pub fn insert(&mut self, key: String, value: u32) {
        if let Lookup::Table { keys, .. } = self {
            let m = keys.iter().enumerate().map(|(i, k)| (k.to_string(), i as u32)).collect();
            *self = Lookup::Map(m);
        }
        if let Lookup::Map(m) = self {
            m.insert(key, value);
        }
    }

    pub fn len(&self) -> usize {
        match self {
            Lookup::Map(m) => m.len(),
            Lookup::Table { keys, .. } => keys.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The table a shared lookup over `keys` probes (unique keys; each string's index).
    pub fn table(keys: &Strs) -> Vec<u32> {
        let size = (keys.len() * 2).next_power_of_two().max(2);
        let mut table = vec![VACANT; size];
        for (i, k) in keys.iter().enumerate() {
            let mut at = home(k.as_bytes(), size - 1);
            while table[at] != VACANT {
                at = (at + 1) & (size - 1);
            }
            table[at] = i as u32;
        }
        table
    }

    pub fn own_bytes(&self) -> usize {
        match self {
            Lookup::Map(m) => m.keys().map(|k| k.len() + 40).sum(),
            Lookup::Table { table, .. } => table.own_bytes(),
        }
    }
}

/// Writes an image: sections of plain elements, each after its element count, at 8-byte
/// alignment (the widest a section needs).
#[derive(Default)]
pub struct Writer {
    words: Vec<MaybeUninit<u64>>,
    len: usize,
    /// only count the bytes
    sizing: bool,
}

impl Writer {
    pub fn new() -> Writer {
        let mut w = Writer::default();
        w.put(&[MAGIC]);
        w.put(&[u64::from(FORMAT)]);
        w
    }

    /// A writer that only counts the bytes an image would take.
    pub fn sizing() -> Writer {
        let mut w = Writer { sizing: true, ..Writer::default() };
        w.put(&[MAGIC]);
        w.put(&[u64::from(FORMAT)]);
        w
    }

    /// Appends one section.
    pub fn put<T: Plain>(&mut self, s: &[T]) {
        const { assert!(align_of::<T>() <= 8) };
        self.raw(&(s.len() as u64).to_ne_bytes());
        let bytes = std::mem::size_of_val(s);
        self.len = self.len.next_multiple_of(8);
        if self.sizing {
            self.len += bytes;
            return;
        }
        self.grow(self.len + bytes);
        // SAFETY: `grow` made the buffer at least len + bytes long; the source is `bytes` bytes
        // of initialized elements; an untyped copy (padding bytes stay as they were, uninit)
        unsafe { std::ptr::copy_nonoverlapping(s.as_ptr().cast::<u8>(), self.words.as_mut_ptr().cast::<u8>().add(self.len), bytes) };
        self.len += bytes;
    }

    pub fn one<T: Plain>(&mut self, x: T) {
        self.put(&[x]);
    }

    fn raw(&mut self, b: &[u8; 8]) {
        self.len = self.len.next_multiple_of(8);
        if self.sizing {
            self.len += 8;
            return;
        }
        self.grow(self.len + 8);
        // SAFETY: the buffer holds at least len + 8 bytes; the source is 8 initialized bytes
        unsafe { std::ptr::copy_nonoverlapping(b.as_ptr(), self.words.as_mut_ptr().cast::<u8>().add(self.len), 8) };
        self.len += 8;
    }

    fn grow(&mut self, bytes: usize) {
        let words = bytes.div_ceil(8);
        if self.words.len() < words {
            self.words.resize(words.max(self.words.len() * 2), MaybeUninit::uninit());
        }
    }

    /// The image's length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Copies the image to `dst`.
    ///
    /// # Safety
    /// `dst` must be valid for writes of [`Writer::len`] bytes.
    pub unsafe fn copy_to(&self, dst: *mut u8) {
        // SAFETY: the buffer holds `len` bytes; the caller vouches for dst; an untyped copy
        unsafe { std::ptr::copy_nonoverlapping(self.words.as_ptr().cast::<u8>(), dst, self.len) };
    }

    /// The image in memory this writer keeps (for tests and for a reader over the same process).
    pub fn into_image(self) -> Image {
        Image { words: self.words, len: self.len }
    }
}

/// An image held in the process's own memory.
pub struct Image {
    words: Vec<MaybeUninit<u64>>,
    len: usize,
}

// SAFETY: the words are only read after the writer is done with them
unsafe impl Send for Image {}
// SAFETY: as above
unsafe impl Sync for Image {}

impl Image {
    pub fn ptr(&self) -> *const u8 {
        self.words.as_ptr().cast()
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// A reader over this image that keeps it alive.
    pub fn reader(self: Arc<Self>) -> Result<Reader, Error> {
        let (ptr, len) = (self.ptr(), self.len);
        // SAFETY: the image's words live as long as the Arc, which the reader keeps
        unsafe { Reader::new(ptr, len, self) }
    }
}

pub(crate) fn damaged(what: &str) -> Error {
    Error::new(ErrorKind::DataCorrupted, format!("the shared model image is damaged: {what}"))
        .hint("the backend serves from its own copy; report this with the server log")
}

/// Reads an image section by section, in the order it was written.
pub struct Reader {
    base: *const u8,
    len: usize,
    at: usize,
    keep: Keep,
}

impl Reader {
    /// A reader over `len` bytes at `base`, checking the magic and format.
    ///
    /// # Safety
    /// `base` must be 8-byte aligned and valid for reads of `len` bytes that nothing writes to
    /// for as long as `keep` lives; the bytes must have been written by [`Writer`] of this build.
    pub unsafe fn new(base: *const u8, len: usize, keep: Keep) -> Result<Reader, Error> {
        if base.is_null() || !(base as usize).is_multiple_of(8) {
            return Err(damaged("misaligned"));
        }
        let mut r = Reader { base, len, at: 0, keep };
        if r.one::<u64>()? != MAGIC {
            return Err(damaged("bad magic"));
        }
        if r.one::<u64>()? != u64::from(FORMAT) {
            return Err(damaged("another format"));
        }
        Ok(r)
    }

    fn raw(&mut self) -> Result<u64, Error> {
        self.at = self.at.next_multiple_of(8);
        if self.at + 8 > self.len {
            return Err(damaged("truncated"));
        }
        let mut b = [0u8; 8];
        // SAFETY: at + 8 ≤ len bytes valid for reads (constructor's contract)
        unsafe { std::ptr::copy_nonoverlapping(self.base.add(self.at), b.as_mut_ptr(), 8) };
        self.at += 8;
        Ok(u64::from_ne_bytes(b))
    }

    /// The next section, as a shared slab.
    pub fn slab<T: Plain>(&mut self) -> Result<Slab<T>, Error> {
        let n = usize::try_from(self.raw()?).map_err(|_| damaged("section length"))?;
        let bytes = n.checked_mul(size_of::<T>()).ok_or_else(|| damaged("section length"))?;
        self.at = self.at.next_multiple_of(8);
        if self.at.checked_add(bytes).is_none_or(|end| end > self.len) {
            return Err(damaged("section past the end"));
        }
        // SAFETY: at + bytes ≤ len (checked), so the pointer is inside the image
        let ptr = unsafe { self.base.add(self.at) } as *mut T;
        if !(ptr as usize).is_multiple_of(align_of::<T>()) {
            return Err(damaged("misaligned section"));
        }
        self.at += bytes;
        let ptr = NonNull::new(ptr).ok_or_else(|| damaged("null"))?;
        Ok(Slab { repr: Repr::Shared { keep: self.keep.clone(), ptr, len: n } })
    }

    /// The next section, which must hold one element.
    pub fn one<T: Plain>(&mut self) -> Result<T, Error> {
        let s = self.slab::<T>()?;
        match *s {
            [x] => Ok(x),
            _ => Err(damaged("a scalar section of another length")),
        }
    }

    pub fn lists<T: Plain>(&mut self) -> Result<Lists<T>, Error> {
        let start = self.slab::<u64>()?;
        let items = self.slab::<T>()?;
        if start.first() != Some(&0) || start.windows(2).any(|w| w[0] > w[1]) || start.last().is_none_or(|&e| e != items.len() as u64) {
            return Err(damaged("list offsets"));
        }
        Ok(Lists { start, items })
    }

    pub fn strs(&mut self) -> Result<Strs, Error> {
        let l = self.lists::<u8>()?;
        // every string is checked once here, so `Strs::get` never meets invalid UTF-8
        if l.iter().any(|b| std::str::from_utf8(b).is_err()) {
            return Err(damaged("text"));
        }
        Ok(Strs(l))
    }

    pub fn opt_strs(&mut self) -> Result<OptStrs, Error> {
        let text = self.strs()?;
        let present = self.slab::<bool>()?;
        if present.len() != text.len() || present.iter().any(|&b| u8::from(b) > 1) {
            return Err(damaged("optional text"));
        }
        Ok(OptStrs { text, present })
    }

    /// A lookup over `keys`, whose table is the next section: every key must be found at its
    /// own index, so a damaged table is an error, not a wrong answer.
    pub fn lookup(&mut self, keys: &Strs) -> Result<Lookup, Error> {
        let table = self.slab::<u32>()?;
        if !table.len().is_power_of_two() || table.len() < keys.len() * 2 || table.iter().any(|&i| i != VACANT && i as usize >= keys.len()) {
            return Err(damaged("lookup table"));
        }
        let l = Lookup::Table { keys: keys.clone(), table };
        if keys.iter().enumerate().any(|(i, k)| l.get(k) != Some(&(i as u32))) {
            return Err(damaged("lookup table"));
        }
        Ok(l)
    }

    /// True when every byte was read.
    pub fn done(&self) -> bool {
        self.at == self.len
    }
}

impl Writer {
    pub fn lists<T: Plain>(&mut self, l: &Lists<T>) {
        self.put(&l.start);
        self.put(&l.items);
    }

    pub fn strs(&mut self, s: &Strs) {
        self.lists(&s.0);
    }

    pub fn opt_strs(&mut self, s: &OptStrs) {
        self.strs(&s.text);
        self.put(&s.present);
    }

    pub fn lookup(&mut self, keys: &Strs) {
        self.put(&Lookup::table(keys));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_round_trip_and_shared_slabs_copy_on_write() {
        let mut w = Writer::new();
        let strs: Strs = ["b", "a", "ç"].into_iter().collect();
        w.put(&[1.5f32, 2.5]);
        w.one(7i64);
        w.lists(&Lists::from(vec![vec![1u32], vec![], vec![2, 3]]));
        w.strs(&strs);
        w.lookup(&strs);
        let mut o = OptStrs::default();
        o.push(Some("x"));
        o.push(None);
        w.opt_strs(&o);
        let img = Arc::new(w.into_image());
        let mut r = img.reader().unwrap();
        let mut f = r.slab::<f32>().unwrap();
        assert!(f.is_shared());
        assert_eq!(&*f, &[1.5, 2.5]);
        assert_eq!(r.one::<i64>().unwrap(), 7);
        let l = r.lists::<u32>().unwrap();
        assert_eq!((&l[0], &l[1], &l[2], &l[9]), (&[1u32][..], &[][..], &[2u32, 3][..], &[][..]));
        let s = r.strs().unwrap();
        assert_eq!(s.iter().collect::<Vec<_>>(), ["b", "a", "ç"]);
        let look = r.lookup(&s).unwrap();
        assert_eq!((look.get("a"), look.get("ç"), look.get("b"), look.get("z")), (Some(&1), Some(&2), Some(&0), None));
        let o = r.opt_strs().unwrap();
        assert_eq!((o.get(0), o.get(1), o.get(2)), (Some("x"), None, None));
        assert!(r.done());
        f[0] = 9.0;
        assert!(!f.is_shared());
        assert_eq!(&*f, &[9.0, 2.5]);
    }

    #[test]
    fn a_damaged_image_is_an_error_not_a_wild_read() {
        let mut w = Writer::new();
        w.put(&[1u32, 2, 3]);
        let img = Arc::new(w.into_image());
        let (ptr, len) = (img.ptr(), img.len());
        // cut short: the section's count says 3 but the bytes end early
        // SAFETY: a prefix of a live image
        let mut r = unsafe { Reader::new(ptr, len - 4, img.clone()) }.unwrap();
        assert!(r.slab::<u32>().is_err());
        // SAFETY: as above
        let mut r = unsafe { Reader::new(ptr, len, img.clone()) }.unwrap();
        assert!(r.slab::<u32>().is_ok());
        assert!(r.slab::<u32>().is_err(), "past the end");
        // SAFETY: as above; 8 bytes of a u64 section are not the magic
        assert!(unsafe { Reader::new(ptr.wrapping_add(8), len - 8, img) }.is_err());
    }
}
