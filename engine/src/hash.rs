//! FNV-1a, 64 bits: stable across releases and platforms, unlike std's hasher, so its values
//! can be stored (order hashes) and relied on (feature-hashing dimensions).
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// A hasher for the small-integer keys (catalogue indexes) of per-request maps: one multiply
/// per key (Fibonacci hashing, as rustc's FxHash), where std's SipHash costs more than the map
/// work itself. Not for keys an attacker picks.
#[derive(Debug, Default, Clone, Copy)]
pub struct IntHasher(u64);

const SEED: u64 = 0x9E37_79B9_7F4A_7C15;

impl std::hash::Hasher for IntHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(5) ^ u64::from(b)).wrapping_mul(SEED);
        }
    }
    fn write_u32(&mut self, n: u32) {
        self.0 = (self.0.rotate_left(5) ^ u64::from(n)).wrapping_mul(SEED);
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(SEED);
    }
    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }
}

/// A HashMap keyed by catalogue indexes, with [`IntHasher`].
pub type IntMap<K, V> = std::collections::HashMap<K, V, std::hash::BuildHasherDefault<IntHasher>>;
/// A HashSet of catalogue indexes, with [`IntHasher`].
pub type IntSet<K> = std::collections::HashSet<K, std::hash::BuildHasherDefault<IntHasher>>;

#[cfg(test)]
mod tests {
    #[test]
    fn int_map_keys_spread() {
        let mut m = super::IntMap::default();
        for i in 0..10_000u32 {
            m.insert(i * 64, i);
        }
        assert!((0..10_000u32).all(|i| m.get(&(i * 64)) == Some(&i)));
        assert_eq!(m.get(&1), None);
    }

    #[test]
    fn matches_the_published_test_vectors() {
        assert_eq!(super::fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(super::fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
    }
}
