//! The ILM proper: 2^20 compact entries indexed by label, stored as 256 copy-on-write
//! chunks of 4096 (see [`Ilm`]).
//!
//! `IlmEntry` is a `u32` (4 MiB for a fully populated table); an empty slot is the
//! value 0.
//! Labels 0-15 are special-purpose and handled before the table is read.

use crate::wire::mpls::LABEL_MAX;
use std::sync::{Arc, OnceLock};

/// Number of ILM slots: one per 20-bit label.
pub const ILM_SLOTS: usize = 1 << 20;

/// Label operation of an entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IlmOp {
    /// Pop, then send out of the adjacency recorded in the entry (no IP lookup).
    PopGo,
    /// Pop, then look the destination up in the FIB of the entry's VRF by longest
    /// prefix match.
    Pop,
    /// A label of this device's own transport LSP (static egress LSP): pop it and go on
    /// with the label below; at the bottom of the stack, route by IP in the public FIB.
    Transport,
}

/// Address family an entry carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Af {
    V4,
    V6,
    /// Either (per-instance labels are shared by both families).
    Any,
}

/// A compact ILM entry: `op(2) | af(2) | pipe(1) | vrf(11) | adjacency(16)`. The VRF
/// (0: the public table) says which FIB a POP entry looks the destination up in, and
/// which VPN instance a POPGO entry's route belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[repr(transparent)]
pub struct IlmEntry(u32);

const OP_SHIFT: u32 = 30;
const AF_SHIFT: u32 = 28;
const PIPE_BIT: u32 = 1 << 27;
const OP_POPGO: u32 = 1;
const OP_POP: u32 = 2;
const OP_TRANSPORT: u32 = 3;
const VRF_SHIFT: u32 = 16;
const VRF_MASK: u32 = 0x7ff;

impl IlmEntry {
    /// The empty slot.
    pub const EMPTY: IlmEntry = IlmEntry(0);

    /// A POPGO entry toward adjacency `adj`.
    pub const fn pop_go(af: Af, adj: u16, pipe: bool) -> IlmEntry {
        IlmEntry((OP_POPGO << OP_SHIFT) | (af_bits(af) << AF_SHIFT) | pipe_bit(pipe) | adj as u32)
    }

    /// A POP entry (pop, then FIB lookup).
    pub const fn pop(af: Af, pipe: bool) -> IlmEntry {
        IlmEntry((OP_POP << OP_SHIFT) | (af_bits(af) << AF_SHIFT) | pipe_bit(pipe))
    }

    /// A POP entry that also records the adjacency of the route its label was allocated
    /// for. The data path ignores it (POP decides by the FIB); it lets a pop-go toggle
    /// turn the entry into POPGO by changing the operation bits only
    /// ([`IlmEntry::with_pop_go`]), and lets displays show the route's next hop.
    pub const fn pop_via(af: Af, adj: u16, pipe: bool) -> IlmEntry {
        IlmEntry((OP_POP << OP_SHIFT) | (af_bits(af) << AF_SHIFT) | pipe_bit(pipe) | adj as u32)
    }

    /// A static egress LSP's label: pop and go on with the next label.
    pub const fn transport(pipe: bool) -> IlmEntry {
        IlmEntry((OP_TRANSPORT << OP_SHIFT) | (af_bits(Af::Any) << AF_SHIFT) | pipe_bit(pipe))
    }

    /// The same entry in VRF `vrf` (at most 2047; 0 is the public table).
    pub const fn in_vrf(self, vrf: u16) -> IlmEntry {
        IlmEntry((self.0 & !(VRF_MASK << VRF_SHIFT)) | ((vrf as u32 & VRF_MASK) << VRF_SHIFT))
    }

    /// The VRF of the entry's route (0: the public table).
    #[inline(always)]
    pub const fn vrf(self) -> u16 {
        ((self.0 >> VRF_SHIFT) & VRF_MASK) as u16
    }

    /// The same entry with operation POPGO (`on`) or POP, keeping the family, the pipe
    /// bit, the VRF and the adjacency. The empty slot and transport entries stay as
    /// they are.
    #[inline]
    pub const fn with_pop_go(self, on: bool) -> IlmEntry {
        if self.is_empty() || self.0 >> OP_SHIFT == OP_TRANSPORT {
            return self;
        }
        let op = if on { OP_POPGO } else { OP_POP };
        IlmEntry((self.0 & !(3 << OP_SHIFT)) | (op << OP_SHIFT))
    }

    #[inline(always)]
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    #[inline(always)]
    pub fn op(self) -> Option<IlmOp> {
        match self.0 >> OP_SHIFT {
            OP_POPGO => Some(IlmOp::PopGo),
            OP_POP => Some(IlmOp::Pop),
            OP_TRANSPORT => Some(IlmOp::Transport),
            _ => None,
        }
    }

    #[inline(always)]
    pub fn af(self) -> Af {
        match (self.0 >> AF_SHIFT) & 3 {
            1 => Af::V4,
            2 => Af::V6,
            _ => Af::Any,
        }
    }

    /// A uniform-mode IPv4 POPGO entry (the data path's fast case): op, family and
    /// TTL mode in one masked compare.
    #[inline(always)]
    pub const fn is_uniform_pop_go_v4(self) -> bool {
        self.0 & (3 << OP_SHIFT | 3 << AF_SHIFT | PIPE_BIT) == (OP_POPGO << OP_SHIFT | af_bits(Af::V4) << AF_SHIFT)
    }

    /// A uniform-mode transport entry (the two-label fast case's top): op and TTL mode
    /// in one masked compare.
    #[inline(always)]
    pub const fn is_uniform_transport(self) -> bool {
        self.0 & (3 << OP_SHIFT | PIPE_BIT) == OP_TRANSPORT << OP_SHIFT
    }

    /// Pipe TTL mode (RFC 3443) rather than uniform.
    #[inline(always)]
    pub const fn pipe(self) -> bool {
        self.0 & PIPE_BIT != 0
    }

    /// Adjacency index (POPGO entries).
    #[inline(always)]
    pub const fn adjacency(self) -> u16 {
        self.0 as u16
    }
}

const fn af_bits(af: Af) -> u32 {
    match af {
        Af::V4 => 1,
        Af::V6 => 2,
        Af::Any => 3,
    }
}

const fn pipe_bit(pipe: bool) -> u32 {
    if pipe {
        PIPE_BIT
    } else {
        0
    }
}

/// Where a packet goes: output port and the 12 MAC bytes (dst, src) of its new header.
/// 16 bytes, aligned: indexing the table is a shift, and an entry never straddles
/// cache lines.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C, align(16))]
pub struct Adjacency {
    pub macs: [u8; 12],
    pub port: u16,
}

/// log2 of the slots per chunk.
const CHUNK_BITS: u32 = 12;
/// Slots per chunk: 4096 entries, 16 KiB.
pub const CHUNK_SLOTS: usize = 1 << CHUNK_BITS;
/// Chunks per table: 256 (the pointer array is 2 KiB).
pub const CHUNKS: usize = ILM_SLOTS / CHUNK_SLOTS;

type Chunk = [IlmEntry; CHUNK_SLOTS];

/// The one all-empty chunk every empty range of every table points at.
fn empty_chunk() -> Arc<Chunk> {
    static EMPTY: OnceLock<Arc<Chunk>> = OnceLock::new();
    Arc::clone(EMPTY.get_or_init(|| Arc::new([IlmEntry::EMPTY; CHUNK_SLOTS])))
}

/// The label-indexed table: two levels, copy-on-write.
///
/// 256 chunks of 4096 entries behind `Arc`s. A lookup is
/// `chunks[label >> 12][label & 4095]`: one more dependent load than a flat array, to
/// a 2 KiB pointer array that stays in L1. `Clone` copies the pointer array only (the
/// chunks are shared); [`Ilm::set`] copies a chunk the first time it changes one that
/// is shared. A commit thus copies 2 KiB plus 16 KiB per chunk it touches, not 4 MiB.
/// Empty ranges share one all-empty chunk, so a fresh table is 2 KiB.
#[derive(Clone)]
pub struct Ilm {
    chunks: Box<[Arc<Chunk>; CHUNKS]>,
}

impl Default for Ilm {
    fn default() -> Self {
        Self::new()
    }
}

impl Ilm {
    /// An all-empty table (a 2 KiB pointer array to the shared empty chunk).
    pub fn new() -> Ilm {
        let e = empty_chunk();
        Ilm { chunks: Box::new(std::array::from_fn(|_| Arc::clone(&e))) }
    }

    #[inline(always)]
    fn split(label: u32) -> (usize, usize) {
        let l = (label & LABEL_MAX) as usize;
        ((l >> CHUNK_BITS) & (CHUNKS - 1), l & (CHUNK_SLOTS - 1))
    }

    /// O(1) lookup. Any `u32` is accepted: bits above 20 are masked (labels read from a
    /// stack entry never have them).
    #[inline(always)]
    pub fn lookup(&self, label: u32) -> IlmEntry {
        // The masks keep both indices in range, so the compiler drops the bounds checks.
        let (hi, lo) = Self::split(label);
        self.chunks[hi][lo]
    }

    /// Address of a slot, for prefetching.
    #[inline(always)]
    pub fn slot_ptr(&self, label: u32) -> *const IlmEntry {
        let (hi, lo) = Self::split(label);
        &self.chunks[hi][lo]
    }

    /// Sets one slot (control plane, while building). Copies the slot's chunk first if
    /// it is shared (with another table or the empty chunk) and the entry changes.
    pub fn set(&mut self, label: u32, e: IlmEntry) {
        let (hi, lo) = Self::split(label);
        if self.chunks[hi][lo] != e {
            Arc::make_mut(&mut self.chunks[hi])[lo] = e;
        }
    }

    /// Rewrites every non-empty entry with `f` (a pop-go toggle). Chunks that are all
    /// empty are skipped; a chunk is copied only if one of its entries changes. Bounded
    /// by the table size: at most 256 chunks of 4096 entries, whatever the route count.
    pub fn map_entries(&mut self, mut f: impl FnMut(IlmEntry) -> IlmEntry) {
        let empty = empty_chunk();
        for c in self.chunks.iter_mut() {
            if Arc::ptr_eq(c, &empty) || c.iter().all(|e| e.is_empty() || f(*e) == *e) {
                continue;
            }
            for e in Arc::make_mut(c).iter_mut() {
                if !e.is_empty() {
                    *e = f(*e);
                }
            }
        }
    }

    /// Number of non-empty entries (scans the non-empty chunks: reports only).
    pub fn len(&self) -> usize {
        let empty = empty_chunk();
        self.chunks.iter().filter(|c| !Arc::ptr_eq(c, &empty)).map(|c| c.iter().filter(|e| !e.is_empty()).count()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Number of chunks that are not the shared empty chunk (each 16 KiB).
    pub fn chunk_count(&self) -> usize {
        let empty = empty_chunk();
        self.chunks.iter().filter(|c| !Arc::ptr_eq(c, &empty)).count()
    }

    /// A copy of the table sharing all chunks (control plane: a commit starts from the
    /// current table; 2 KiB and 256 reference counts).
    pub fn clone_table(&self) -> Ilm {
        self.clone()
    }

    /// Whether chunk `i` (labels `i * CHUNK_SLOTS ..`) is the shared all-empty chunk.
    pub fn chunk_is_empty(&self, i: usize) -> bool {
        Arc::ptr_eq(&self.chunks[i], &empty_chunk())
    }

    /// The chunks that are not shared with `other`: only their entries can differ
    /// (control plane: what a commit changed).
    pub fn differing_chunks<'a>(&'a self, other: &'a Ilm) -> impl Iterator<Item = usize> + 'a {
        (0..CHUNKS).filter(move |&i| !Arc::ptr_eq(&self.chunks[i], &other.chunks[i]))
    }

    /// Number of chunks this table shares with `other` (tests, reports).
    pub fn shared_chunks(&self, other: &Ilm) -> usize {
        self.chunks.iter().zip(other.chunks.iter()).filter(|(a, b)| Arc::ptr_eq(a, b)).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_encoding_round_trips() {
        let e = IlmEntry::pop_go(Af::V6, 0xfffe, true);
        assert_eq!(e.op(), Some(IlmOp::PopGo));
        assert_eq!(e.af(), Af::V6);
        assert!(e.pipe());
        assert_eq!(e.adjacency(), 0xfffe);
        assert!(IlmEntry::pop_go(Af::V4, 7, false).is_uniform_pop_go_v4());
        for e in [
            IlmEntry::pop_go(Af::V4, 7, true),
            IlmEntry::pop_go(Af::V6, 7, false),
            IlmEntry::pop_go(Af::Any, 7, false),
            IlmEntry::pop(Af::V4, false),
            IlmEntry::EMPTY,
        ] {
            assert!(!e.is_uniform_pop_go_v4(), "{e:?}");
        }
        let p = IlmEntry::pop(Af::Any, false);
        assert_eq!(p.op(), Some(IlmOp::Pop));
        assert_eq!(p.af(), Af::Any);
        assert!(!p.pipe());
        assert!(!p.is_empty());
        assert_eq!(IlmEntry::EMPTY.op(), None);
        assert_eq!(std::mem::size_of::<IlmEntry>(), 4);
        let v = IlmEntry::pop_via(Af::V4, 7, true);
        assert_eq!((v.op(), v.adjacency(), v.pipe()), (Some(IlmOp::Pop), 7, true));
        assert_eq!(v.with_pop_go(true), IlmEntry::pop_go(Af::V4, 7, true));
        assert_eq!(IlmEntry::pop_go(Af::V6, 9, false).with_pop_go(false), IlmEntry::pop_via(Af::V6, 9, false));
        assert!(IlmEntry::EMPTY.with_pop_go(true).is_empty());
    }

    #[test]
    fn map_entries_rewrites_only_non_empty_chunks() {
        let mut a = Ilm::new();
        a.set(100, IlmEntry::pop_via(Af::V4, 1, false));
        a.set(900_000, IlmEntry::pop_via(Af::V6, 2, false));
        let mut b = a.clone_table();
        b.map_entries(|e| e.with_pop_go(true));
        assert_eq!(b.lookup(100), IlmEntry::pop_go(Af::V4, 1, false));
        assert_eq!(b.lookup(900_000), IlmEntry::pop_go(Af::V6, 2, false));
        assert_eq!(b.len(), 2);
        assert_eq!(a.shared_chunks(&b), CHUNKS - 2, "only the two written chunks are copied");
        assert_eq!(a.lookup(100).op(), Some(IlmOp::Pop), "the original is untouched");
        let mut c = b.clone_table();
        c.map_entries(|e| e.with_pop_go(true));
        assert_eq!(b.shared_chunks(&c), CHUNKS, "no change, no copy");
    }

    #[test]
    fn lookup_hits_and_misses() {
        let mut t = Ilm::new();
        t.set(48122, IlmEntry::pop_go(Af::V4, 3, false));
        t.set(LABEL_MAX, IlmEntry::pop(Af::V4, false));
        assert_eq!(t.lookup(48122).adjacency(), 3);
        assert!(t.lookup(48123).is_empty());
        assert_eq!(t.lookup(LABEL_MAX).op(), Some(IlmOp::Pop));
        assert_eq!(t.len(), 2);
    }

    #[test]
    fn chunks_are_copied_on_write_and_shared_otherwise() {
        let fresh = Ilm::new();
        assert_eq!(fresh.shared_chunks(&Ilm::new()), CHUNKS, "all point at the empty chunk");
        let mut a = Ilm::new();
        for l in 16..20_000 {
            a.set(l, IlmEntry::pop(Af::V4, false));
        }
        let mut b = a.clone_table();
        assert_eq!(a.shared_chunks(&b), CHUNKS);
        b.set(5000, IlmEntry::pop_go(Af::V4, 1, false));
        b.set(5000 + 1, IlmEntry::pop(Af::V4, false)); // unchanged: no copy
        assert_eq!(a.shared_chunks(&b), CHUNKS - 1, "one chunk copied");
        assert_eq!(a.lookup(5000).op(), Some(IlmOp::Pop), "the original is untouched");
        assert_eq!(b.lookup(5000).op(), Some(IlmOp::PopGo));
        b.set(1_000_000, IlmEntry::pop(Af::V6, true));
        assert_eq!(a.shared_chunks(&b), CHUNKS - 2);
        assert!(fresh.lookup(1_000_000).is_empty(), "the shared empty chunk is never written");
        assert_eq!(b.len(), a.len() + 1);
        assert_eq!(b.lookup(1_000_000 | (1 << 20)).af(), Af::V6, "bits above 20 are masked");
        assert_eq!(b.slot_ptr(1_000_000), &b.chunks[1_000_000 >> 12][1_000_000 & 4095] as *const _);
    }
}
