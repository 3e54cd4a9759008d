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
    /// Folds the high half of the product into the low half: hashbrown picks the bucket
    /// from the low bits, and the low bits of a product depend only on the low bits of
    /// the key. The keys of one FIB shard share their low bits (the shard is chosen by
    /// them), so without the fold a shard used 1/64 of its buckets and probed long
    /// chains (a million-route build spent most of its time there).
    #[inline(always)]
    fn finish(&self) -> u64 {
        self.0 ^ (self.0 >> 32)
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

/// Shards per prefix length at least: a route change copies one shard, not the whole
/// table of its length.
const MIN_SHARDS: usize = 64;
/// Shards per group: the second level of the shard tree.
const GROUP: usize = 64;
/// Routes per shard above which a prefix length's table doubles its shard count. A
/// one-route commit copies one group of 64 shard pointers and one shard (at most about
/// 1024 routes, some 18 KiB of buckets), and a clone of the table copies one pointer
/// per group (8 bytes per 32k routes): all small at a million routes (2048 shards of
/// about 500 /32s, in 32 groups).
const SHARD_ROUTES: usize = 512;

/// One level of the shard tree: 64 shards behind one `Arc`.
type Group<K> = Arc<Vec<Arc<IntMap<K>>>>;

/// The routes of one prefix length, split into copy-on-write shards by the low bits
/// of the prefix (the last bits above the mask: sequential prefixes spread evenly).
/// The shard count is a power of two, at least [`MIN_SHARDS`], grown as the table grows;
/// shards are grouped by 64 (a two-level tree), so that cloning a big table copies few
/// pointers.
#[derive(Clone)]
struct Shards<K> {
    groups: Box<[Group<K>]>,
    /// Shard count - 1 (a power of two minus one).
    mask: usize,
    len: usize,
}

impl<K: Key> Shards<K> {
    /// Shards for about `routes` routes.
    fn new(routes: usize) -> Self {
        let n = routes.div_ceil(SHARD_ROUTES).next_power_of_two().max(MIN_SHARDS);
        let per = routes.div_ceil(n);
        let group = || {
            Arc::new((0..GROUP).map(|_| Arc::new(IntMap::with_capacity_and_hasher(per, Default::default()))).collect())
        };
        Shards { groups: (0..n / GROUP).map(|_| group()).collect(), mask: n - 1, len: 0 }
    }

    /// Shard of a masked key (for `len == 0` the key is 0: shard 0).
    #[inline(always)]
    fn of(&self, masked: K, len: u8) -> usize {
        masked.low_bits_above(K::BITS - len) & self.mask
    }

    #[inline(always)]
    fn shard(&self, i: usize) -> &IntMap<K> {
        &self.groups[i / GROUP][i % GROUP]
    }

    /// The shard for writing: copies its group's pointer array and the shard itself if
    /// they are shared.
    fn shard_mut(&mut self, i: usize) -> &mut IntMap<K> {
        Arc::make_mut(&mut Arc::make_mut(&mut self.groups[i / GROUP])[i % GROUP])
    }

    fn shards(&self) -> impl Iterator<Item = &Arc<IntMap<K>>> + '_ {
        self.groups.iter().flat_map(|g| g.iter())
    }

    #[inline(always)]
    fn get(&self, masked: K, len: u8) -> Option<u16> {
        self.shard(self.of(masked, len)).get(&masked).copied()
    }

    fn insert(&mut self, k: K, len: u8, adj: u16) {
        let i = self.of(k, len);
        match self.shard(i).get(&k) {
            Some(a) if *a == adj => return,
            Some(_) => {}
            None => self.len += 1,
        }
        self.shard_mut(i).insert(k, adj);
        if self.len > (self.mask + 1) * SHARD_ROUTES * 2 {
            self.regrow(len);
        }
    }

    fn remove(&mut self, k: K, len: u8) -> Option<u16> {
        let i = self.of(k, len);
        self.shard(i).get(&k)?;
        self.len -= 1;
        self.shard_mut(i).remove(&k)
    }

    /// Re-splits into enough shards for the current size (O(routes of this length);
    /// happens each time the table doubles past the sizing of its last split).
    fn regrow(&mut self, len: u8) {
        let mut next = Shards::new(self.len);
        for s in self.shards() {
            for (k, a) in s.iter() {
                let i = next.of(*k, len);
                next.shard_mut(i).insert(*k, *a);
            }
        }
        next.len = self.len;
        *self = next;
    }

    fn len(&self) -> usize {
        self.len
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
    /// Sizes the table of prefix length `len` for `routes` routes (before a bulk load).
    fn reserve(&mut self, len: u8, routes: usize) {
        if let Err(p) = self.by_len.binary_search_by(|(l, _)| len.cmp(l)) {
            self.by_len.insert(p, (len, Shards::new(routes)));
        }
    }

    fn insert(&mut self, prefix: K, len: u8, adj: u16) {
        debug_assert!(len <= K::BITS);
        let pos = match self.by_len.binary_search_by(|(l, _)| len.cmp(l)) {
            Ok(p) => p,
            Err(p) => {
                self.by_len.insert(p, (len, Shards::new(0)));
                p
            }
        };
        self.by_len[pos].1.insert(prefix.mask(len), len, adj);
    }

    /// Removes a route; drops the table of its length when it empties (fewer probes).
    fn remove(&mut self, prefix: K, len: u8) -> Option<u16> {
        let pos = self.by_len.binary_search_by(|(l, _)| len.cmp(l)).ok()?;
        let old = self.by_len[pos].1.remove(prefix.mask(len), len);
        if self.by_len[pos].1.len() == 0 {
            self.by_len.remove(pos);
        }
        old
    }

    /// The adjacency of exactly `prefix/len`, if that route is installed.
    fn get(&self, prefix: K, len: u8) -> Option<u16> {
        let pos = self.by_len.binary_search_by(|(l, _)| len.cmp(l)).ok()?;
        self.by_len[pos].1.get(prefix.mask(len), len)
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
/// Copy-on-write: `Clone` copies the group pointers only (one per 64 shards: one per
/// prefix length present for small tables, one per 32k routes for big ones), and a
/// change copies the group and the shard it touches (a few KiB): a commit that changes
/// routes patches a clone (see `ilm::patch`).
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

    /// Sizes the IPv4 table of prefix length `len` for `routes` routes, so that a bulk
    /// load neither rehashes nor re-splits it.
    pub fn reserve_v4(&mut self, len: u8, routes: usize) {
        self.v4.reserve(len.min(32), routes);
    }

    /// Sizes the IPv6 table of prefix length `len` for `routes` routes.
    pub fn reserve_v6(&mut self, len: u8, routes: usize) {
        self.v6.reserve(len.min(128), routes);
    }

    /// The adjacency of exactly the IPv4 route `prefix/len` (no longest-prefix match).
    pub fn get_v4(&self, prefix: u32, len: u8) -> Option<u16> {
        self.v4.get(prefix, len.min(32))
    }

    /// The adjacency of exactly the IPv6 route `prefix/len`.
    pub fn get_v6(&self, prefix: u128, len: u8) -> Option<u16> {
        self.v6.get(prefix, len.min(128))
    }

    /// Bytes of heap this FIB holds (buckets and shard arrays, shared ones included).
    pub fn heap_bytes(&self) -> usize {
        fn lpm<K: Key>(l: &Lpm<K>) -> usize {
            l.by_len
                .iter()
                .map(|(_, s)| {
                    (s.mask + 1) * 8
                        + s.shards()
                            .map(|m| crate::config::table_buckets(m.capacity()) * (std::mem::size_of::<(K, u16)>() + 1))
                            .sum::<usize>()
                })
                .sum()
        }
        lpm(&self.v4) + lpm(&self.v6)
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
            a.v4.by_len[0].1.shards().zip(b.v4.by_len[0].1.shards()).filter(|(x, y)| Arc::ptr_eq(x, y)).count()
        };
        assert_eq!(shared(&f, &g), MIN_SHARDS - 1);
        assert_eq!(f.lookup_v4(v4([10, 0, 0, 5])), Some(5));
        assert_eq!(g.lookup_v4(v4([10, 0, 0, 5])), Some(100));
        g.insert_v4(v4([10, 0, 0, 6]), 32, 6); // unchanged: no copy
        assert_eq!(shared(&f, &g), MIN_SHARDS - 1);
        assert_eq!(g.remove_v4(v4([10, 0, 0, 9]), 32), Some(2));
        assert_eq!(g.remove_v4(v4([10, 0, 0, 9]), 32), None);
        assert_eq!((f.len(), g.len()), (10_000, 9_999));
        let counts: Vec<usize> = f.v4.by_len[0].1.shards().map(|s| s.len()).collect();
        assert!(counts.iter().all(|&c| c > 100), "sequential prefixes spread over the shards: {counts:?}");
        assert_eq!(f.get_v4(v4([10, 0, 0, 9]), 32), Some(2));
        assert_eq!(f.get_v4(v4([10, 0, 0, 9]), 31), None, "exact match only");
    }

    /// A table that grows past its shards' sizing re-splits, and answers as before;
    /// one sized up front does not need to.
    #[test]
    fn big_tables_split_into_more_shards() {
        let n = 300_000u32;
        let mut f = Fib::new();
        for i in 0..n {
            f.insert_v4(v4([10, 0, 0, 0]) + i, 32, (i % 11) as u16);
        }
        let shards = f.v4.by_len[0].1.mask + 1;
        assert!(shards >= n as usize / (2 * SHARD_ROUTES) && shards.is_power_of_two(), "{shards}");
        let mut g = Fib::new();
        g.reserve_v4(32, n as usize);
        for i in 0..n {
            g.insert_v4(v4([10, 0, 0, 0]) + i, 32, (i % 11) as u16);
        }
        for i in (0..n).step_by(997) {
            let a = v4([10, 0, 0, 0]) + i;
            assert_eq!(f.lookup_v4(a), Some((i % 11) as u16));
            assert_eq!(g.lookup_v4(a), Some((i % 11) as u16));
        }
        assert_eq!((f.len(), g.len()), (n as usize, n as usize));
        let max = g.v4.by_len[0].1.shards().map(|s| s.len()).max().unwrap();
        assert!(max <= 2 * SHARD_ROUTES, "a one-route commit copies at most {max} routes");
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
