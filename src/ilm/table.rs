//! The ILM proper: a flat boxed slice of 2^20 compact entries indexed by label.
//!
//! `IlmEntry` is a `u32` (4 MiB for the full table); an empty slot is the value 0.
//! Labels 0-15 are special-purpose and handled before the table is read.

use crate::wire::mpls::LABEL_MAX;

/// Number of ILM slots: one per 20-bit label.
pub const ILM_SLOTS: usize = 1 << 20;

/// Label operation of an entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IlmOp {
    /// Pop, then send out of the adjacency recorded in the entry (no IP lookup).
    PopGo,
    /// Pop, then look the destination up in the FIB by longest prefix match.
    Pop,
}

/// Address family an entry carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Af {
    V4,
    V6,
    /// Either (per-instance labels are shared by both families).
    Any,
}

/// A compact ILM entry: `op(2) | af(2) | pipe(1) | unused(11) | adjacency(16)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[repr(transparent)]
pub struct IlmEntry(u32);

const OP_SHIFT: u32 = 30;
const AF_SHIFT: u32 = 28;
const PIPE_BIT: u32 = 1 << 27;
const OP_POPGO: u32 = 1;
const OP_POP: u32 = 2;

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

    #[inline(always)]
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    #[inline(always)]
    pub fn op(self) -> Option<IlmOp> {
        match self.0 >> OP_SHIFT {
            OP_POPGO => Some(IlmOp::PopGo),
            OP_POP => Some(IlmOp::Pop),
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
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Adjacency {
    pub macs: [u8; 12],
    pub port: u16,
}

/// The label-indexed table.
pub struct Ilm {
    slots: Box<[IlmEntry]>,
}

impl Default for Ilm {
    fn default() -> Self {
        Self::new()
    }
}

impl Ilm {
    /// An all-empty table (allocates 4 MiB: control plane only).
    pub fn new() -> Ilm {
        Ilm { slots: vec![IlmEntry::EMPTY; ILM_SLOTS].into_boxed_slice() }
    }

    /// O(1) lookup. Any `u32` is accepted: bits above 20 are masked (labels read from a
    /// stack entry never have them).
    #[inline(always)]
    pub fn lookup(&self, label: u32) -> IlmEntry {
        // The mask keeps the index in range, so the compiler drops the bounds check.
        self.slots[(label & LABEL_MAX) as usize & (ILM_SLOTS - 1)]
    }

    /// Address of a slot, for prefetching.
    #[inline(always)]
    pub fn slot_ptr(&self, label: u32) -> *const IlmEntry {
        self.slots[(label & LABEL_MAX) as usize & (ILM_SLOTS - 1)..].as_ptr()
    }

    /// Sets one slot (control plane, while building).
    pub fn set(&mut self, label: u32, e: IlmEntry) {
        self.slots[(label & LABEL_MAX) as usize] = e;
    }

    /// Number of non-empty entries (linear scan: reports only).
    pub fn len(&self) -> usize {
        self.slots.iter().filter(|e| !e.is_empty()).count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A copy of the table (control plane: a commit starts from the current table).
    pub fn clone_table(&self) -> Ilm {
        Ilm { slots: self.slots.clone() }
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
        let p = IlmEntry::pop(Af::Any, false);
        assert_eq!(p.op(), Some(IlmOp::Pop));
        assert_eq!(p.af(), Af::Any);
        assert!(!p.pipe());
        assert!(!p.is_empty());
        assert_eq!(IlmEntry::EMPTY.op(), None);
        assert_eq!(std::mem::size_of::<IlmEntry>(), 4);
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
}
