//! MPLS label stack entries (RFC 3032 section 2.1) and the reserved labels
//! (RFC 3032, RFC 6790 entropy labels, RFC 7274 special-purpose registry).

use super::{be32, Error};

/// Bytes per label stack entry.
pub const LSE_BYTES: usize = 4;
/// Labels are 20 bits.
pub const LABEL_MAX: u32 = (1 << 20) - 1;
/// A label stack entry as a host-order word: label in bits 31-12, TC in 11-9,
/// bottom of stack in bit 8, TTL in 7-0 (RFC 3032 section 2.1).
pub const LSE_LABEL_SHIFT: u32 = 12;
/// The bottom-of-stack bit of a host-order entry word.
pub const LSE_BOS_BIT: u32 = 1 << 8;
/// The TTL bits of a host-order entry word.
pub const LSE_TTL_MASK: u32 = 0xff;
/// First label that is not special-purpose (RFC 7274 section 2).
pub const FIRST_UNRESERVED: u32 = 16;

pub const LABEL_IPV4_EXPLICIT_NULL: u32 = 0;
pub const LABEL_ROUTER_ALERT: u32 = 1;
pub const LABEL_IPV6_EXPLICIT_NULL: u32 = 2;
pub const LABEL_IMPLICIT_NULL: u32 = 3;
pub const LABEL_ELI: u32 = 7;
pub const LABEL_GAL: u32 = 13;
pub const LABEL_OAM_ALERT: u32 = 14;
pub const LABEL_EXTENSION: u32 = 15;

/// One label stack entry: label(20) | TC(3) | S(1) | TTL(8).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LabelEntry(pub u32);

impl LabelEntry {
    /// Builds an entry (`label` is masked to 20 bits, `tc` to 3).
    pub const fn new(label: u32, tc: u8, bos: bool, ttl: u8) -> LabelEntry {
        LabelEntry(((label & LABEL_MAX) << 12) | (((tc & 7) as u32) << 9) | ((bos as u32) << 8) | ttl as u32)
    }

    /// Reads the entry at `buf[at..at + 4]`.
    #[inline(always)]
    pub fn read(buf: &[u8], at: usize) -> Result<LabelEntry, Error> {
        if buf.len() < at + LSE_BYTES {
            return Err(Error::TruncatedLabelStack);
        }
        Ok(LabelEntry(be32(buf, at)))
    }

    #[inline(always)]
    pub const fn label(self) -> u32 {
        self.0 >> 12
    }

    #[inline(always)]
    pub const fn tc(self) -> u8 {
        ((self.0 >> 9) & 7) as u8
    }

    /// Bottom-of-stack bit.
    #[inline(always)]
    pub const fn bos(self) -> bool {
        self.0 & 0x100 != 0
    }

    #[inline(always)]
    pub const fn ttl(self) -> u8 {
        self.0 as u8
    }

    pub const fn to_bytes(self) -> [u8; 4] {
        self.0.to_be_bytes()
    }
}

/// Byte offset of the TTL inside an entry.
pub const LSE_TTL_OFFSET: usize = 3;

/// A checked view over a whole label stack (used by tools and tests; the hot path
/// reads only the entries it pops).
#[derive(Clone, Copy, Debug)]
pub struct LabelStack<'a> {
    buf: &'a [u8],
    depth: usize,
}

impl<'a> LabelStack<'a> {
    /// Walks the stack to the bottom-of-stack entry.
    pub fn new_checked(buf: &'a [u8]) -> Result<LabelStack<'a>, Error> {
        let mut at = 0;
        loop {
            let e = LabelEntry::read(buf, at)?;
            at += LSE_BYTES;
            if e.bos() {
                return Ok(LabelStack { buf, depth: at / LSE_BYTES });
            }
        }
    }

    pub fn depth(&self) -> usize {
        self.depth
    }

    pub fn entries(&self) -> impl Iterator<Item = LabelEntry> + 'a {
        let buf = self.buf;
        (0..self.depth).map(move |i| LabelEntry(be32(buf, i * LSE_BYTES)))
    }

    /// Bytes after the bottom of stack.
    pub fn payload(&self) -> &'a [u8] {
        &self.buf[self.depth * LSE_BYTES..]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_round_trip() {
        let e = LabelEntry::new(48122, 5, true, 64);
        assert_eq!(e.label(), 48122);
        assert_eq!(e.tc(), 5);
        assert!(e.bos());
        assert_eq!(e.ttl(), 64);
        let b = e.to_bytes();
        // 48122 = 0x0BBFA -> 0BBFA << 12 | 5 << 9 | 1 << 8 | 0x40
        assert_eq!(b, [0x0b, 0xbf, 0xab, 0x40]);
        assert_eq!(LabelEntry::read(&b, 0).unwrap(), e);
        let top = LabelEntry::new(LABEL_MAX, 0, false, 255);
        assert_eq!(top.label(), LABEL_MAX);
        assert!(!top.bos());
        assert_eq!(top.ttl(), 255);
    }

    #[test]
    fn stack_walk_and_every_truncation() {
        let mut s = Vec::new();
        s.extend_from_slice(&LabelEntry::new(0, 0, false, 9).to_bytes());
        s.extend_from_slice(&LabelEntry::new(100, 0, false, 8).to_bytes());
        s.extend_from_slice(&LabelEntry::new(200, 0, true, 7).to_bytes());
        s.extend_from_slice(&[0x45, 0]);
        let st = LabelStack::new_checked(&s).unwrap();
        assert_eq!(st.depth(), 3);
        let labels: Vec<u32> = st.entries().map(|e| e.label()).collect();
        assert_eq!(labels, [0, 100, 200]);
        assert_eq!(st.payload(), &[0x45, 0]);
        for n in 0..12 {
            assert_eq!(LabelStack::new_checked(&s[..n]).unwrap_err(), Error::TruncatedLabelStack, "len {n}");
        }
    }
}
