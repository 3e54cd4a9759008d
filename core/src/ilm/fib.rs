//! The FIB of static routes, for POP entries: longest prefix match over IPv4 and IPv6.
//!
//! One hash table per prefix length present (split into copy-on-write shards), probed
//! longest first. Lookups do not
//! allocate. This is the slow path that POPGO avoids; it only has to be correct and
//! bounded (at most 33 or 129 probes).

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;

/// Multiplicative hasher for integer keys (the std SipHash is needlessly slow here and
/// the keys are not attacker-chosen in a way that matters for a static FIB).
#[derive(Default, Clone, Copy)]
pub struct IntHasher(u64);

impl Hasher for IntHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0.rotate_left(5) ^ *b as u64).wrapping_mul(0x517c_c1b7_2722_0a95);
        }
    }
    fn write_u32(&mut self, i: u32) {
        self.0 = (i as u64 ^ 0x9e37_79b9_7f4a_7c15).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
    fn write_u128(&mut self, i: u128) {
        let x = (i as u64) ^ ((i >> 64) as u64).rotate_left(32);
        self.0 = (x ^ 0x9e37_79b9_7f4a_7c15).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
}

type IntMap<K> = HashMap<K, u16, BuildHasherDefault<IntHasher>>;

/// Shards per prefix length: a route change copies one shard (1/64 of the routes of
/// its length), not the whole table.
const SHARDS: usize = 64;

/// The routes of one prefix length, split into copy-on-write shards by the low bits
/// of the prefix (the last bits above the mask: sequential prefixes spread evenly).
#[derive(Clone)]
struct Shards<K> {
    shards: Box<[Arc<IntMap<K>>; SHARDS]>,
}

impl<K: Key> Shards<K> {
    fn new() -> Self {
        Shards { shards: Box::new(std::array::from_fn(|_| Arc::new(IntMap::default()))) }
    }

    /// Shard of a masked key (for `len == 0` the key is 0: shard 0).
    #[inline(always)]
    fn of(masked: K, len: u8) -> usize {
        masked.low_bits_above(K::BITS - len) & (SHARDS - 1)
    }

    #[inline(always)]
    fn get(&self, masked: K, len: u8) -> Option<u16> {
        self.shards[Self::of(masked, len)].get(&masked).copied()
    }

    fn len(&self) -> usize {
        self.shards.iter().map(|s| s.len()).sum()
    }
}

/// Prefix tables for one family: `(prefix_len, masked prefix -> adjacency)`, longest first.
#[derive(Clone)]
struct Lpm<K> {
    by_len: Vec<(u8, Shards<K>)>,
}

impl<K> Default for Lpm<K> {
    fn default() -> Self {
        Lpm { by_len: Vec::new() }
    }
}

trait Key: Copy + Eq + std::hash::Hash {
    const BITS: u8;
    fn mask(self, len: u8) -> Self;
    /// `(self >> shift) as usize`, 0 when `shift == BITS`.
    fn low_bits_above(self, shift: u8) -> usize;
}

impl Key for u32 {
    const BITS: u8 = 32;
    #[inline(always)]
    fn mask(self, len: u8) -> u32 {
        if len == 0 {
            0
        } else {
            self & (u32::MAX << (32 - len as u32))
        }
    }
    #[inline(always)]
    fn low_bits_above(self, shift: u8) -> usize {
        self.checked_shr(shift as u32).unwrap_or(0) as usize
    }
}

impl Key for u128 {
    const BITS: u8 = 128;
    #[inline(always)]
    fn mask(self, len: u8) -> u128 {
        if len == 0 {
            0
        } else {
            self & (u128::MAX << (128 - len as u32))
        }
    }
    #[inline(always)]
    fn low_bits_above(self, shift: u8) -> usize {
        self.checked_shr(shift as u32).unwrap_or(0) as usize
    }
}

impl<K: Key> Lpm<K> {
    fn insert(&mut self, prefix: K, len: u8, adj: u16) {
        debug_assert!(len <= K::BITS);
        let pos = match self.by_len.binary_search_by(|(l, _)| len.cmp(l)) {
            Ok(p) => p,
            Err(p) => {
                self.by_len.insert(p, (len, Shards::new()));
                p
            }
        };
        let k = prefix.mask(len);
        let shard = &mut self.by_len[pos].1.shards[Shards::of(k, len)];
        if shard.get(&k) != Some(&adj) {
            Arc::make_mut(shard).insert(k, adj);
        }
    }

    /// Removes a route; drops the table of its length when it empties (fewer probes).
    fn remove(&mut self, prefix: K, len: u8) -> Option<u16> {
        let pos = self.by_len.binary_search_by(|(l, _)| len.cmp(l)).ok()?;
        let k = prefix.mask(len);
        let shard = &mut self.by_len[pos].1.shards[Shards::of(k, len)];
        shard.get(&k)?;
        let old = Arc::make_mut(shard).remove(&k);
        if self.by_len[pos].1.shards.iter().all(|s| s.is_empty()) {
            self.by_len.remove(pos);
        }
        old
    }

    #[inline]
    fn lookup(&self, addr: K) -> Option<u16> {
        self.by_len.iter().find_map(|(len, t)| t.get(addr.mask(*len), *len))
    }

    fn len(&self) -> usize {
        self.by_len.iter().map(|(_, t)| t.len()).sum()
    }
}

/// IPv4 and IPv6 routes to adjacency indices.
///
/// Copy-on-write: `Clone` copies the shard pointers only (64 per prefix length
/// present), and a change copies the one shard it touches (about 20 KiB for 100k /32
/// routes): a commit that changes routes patches a clone (see `build::patch`).
#[derive(Default, Clone)]
pub struct Fib {
    v4: Lpm<u32>,
    v6: Lpm<u128>,
}

impl Fib {
    pub fn new() -> Fib {
        Fib::default()
    }

    /// Adds (or replaces) an IPv4 route. Host bits of `prefix` are ignored.
    pub fn insert_v4(&mut self, prefix: u32, len: u8, adj: u16) {
        self.v4.insert(prefix, len.min(32), adj);
    }

    /// Adds (or replaces) an IPv6 route.
    pub fn insert_v6(&mut self, prefix: u128, len: u8, adj: u16) {
        self.v6.insert(prefix, len.min(128), adj);
    }

    /// Removes an IPv4 route; returns its adjacency if it was present.
    pub fn remove_v4(&mut self, prefix: u32, len: u8) -> Option<u16> {
        self.v4.remove(prefix, len.min(32))
    }

    /// Removes an IPv6 route; returns its adjacency if it was present.
    pub fn remove_v6(&mut self, prefix: u128, len: u8) -> Option<u16> {
        self.v6.remove(prefix, len.min(128))
    }

    /// Longest-prefix match of an IPv4 destination.
    #[inline]
    pub fn lookup_v4(&self, dst: u32) -> Option<u16> {
        self.v4.lookup(dst)
    }

    /// Longest-prefix match of an IPv6 destination.
    #[inline]
    pub fn lookup_v6(&self, dst: u128) -> Option<u16> {
        self.v6.lookup(dst)
    }

    /// Number of routes.
    pub fn len(&self) -> usize {
        self.v4.len() + self.v6.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(a: [u8; 4]) -> u32 {
        u32::from_be_bytes(a)
    }

    #[test]
    fn longest_prefix_wins_like_the_seed_says() {
        let mut f = Fib::new();
        f.insert_v4(v4([10, 1, 1, 0]), 24, 0); // via DeviceA
        f.insert_v4(v4([10, 1, 1, 0]), 30, 1); // via DeviceB
        for (host, want) in [(0, 1), (1, 1), (2, 1), (3, 1), (4, 0), (5, 0), (255, 0)] {
            assert_eq!(f.lookup_v4(v4([10, 1, 1, host])), Some(want), "10.1.1.{host}");
        }
        assert_eq!(f.lookup_v4(v4([10, 1, 2, 1])), None);
        f.insert_v4(0, 0, 7);
        assert_eq!(f.lookup_v4(v4([10, 1, 2, 1])), Some(7));
        assert_eq!(f.len(), 3);
        assert_eq!(f.remove_v4(v4([10, 1, 1, 0]), 30), Some(1));
        assert_eq!(f.remove_v4(v4([10, 1, 1, 0]), 30), None);
        assert_eq!(f.lookup_v4(v4([10, 1, 1, 1])), Some(0), "the /24 takes over");
        assert_eq!(f.v4.by_len.len(), 2, "the empty /30 table is gone");
    }

    #[test]
    fn clones_share_shards_until_written() {
        let mut f = Fib::new();
        for i in 0..10_000u32 {
            f.insert_v4(v4([10, 0, 0, 0]) + i, 32, (i % 7) as u16);
        }
        let mut g = f.clone();
        g.insert_v4(v4([10, 0, 0, 5]), 32, 100);
        let shared = |a: &Fib, b: &Fib| {
            a.v4.by_len[0]
                .1
                .shards
                .iter()
                .zip(b.v4.by_len[0].1.shards.iter())
                .filter(|(x, y)| Arc::ptr_eq(x, y))
                .count()
        };
        assert_eq!(shared(&f, &g), SHARDS - 1);
        assert_eq!(f.lookup_v4(v4([10, 0, 0, 5])), Some(5));
        assert_eq!(g.lookup_v4(v4([10, 0, 0, 5])), Some(100));
        g.insert_v4(v4([10, 0, 0, 6]), 32, 6); // unchanged: no copy
        assert_eq!(shared(&f, &g), SHARDS - 1);
        assert_eq!(g.remove_v4(v4([10, 0, 0, 9]), 32), Some(2));
        assert_eq!(g.remove_v4(v4([10, 0, 0, 9]), 32), None);
        assert_eq!((f.len(), g.len()), (10_000, 9_999));
        let counts: Vec<usize> = f.v4.by_len[0].1.shards.iter().map(|s| s.len()).collect();
        assert!(counts.iter().all(|&c| c > 100), "sequential prefixes spread over the shards: {counts:?}");
    }

    #[test]
    fn v6_longest_match() {
        let mut f = Fib::new();
        let p: u128 = 0x2001_0db8_0001_0000_0000_0000_0000_0000;
        f.insert_v6(p, 48, 2);
        f.insert_v6(p, 64, 3);
        assert_eq!(f.lookup_v6(p | 1), Some(3));
        assert_eq!(f.lookup_v6(p | (1u128 << 70)), Some(2));
        assert_eq!(f.lookup_v6(1), None);
        assert_eq!(f.lookup_v4(1), None);
    }
}
