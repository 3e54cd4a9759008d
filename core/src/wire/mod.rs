//! Zero-copy views over frame bytes. No I/O, no allocation, no unsafe.
//!
//! Every accessor is bounds-checked once in `new_checked`; a frame that is too short
//! or malformed gives a small `Copy` [`Error`] that maps one-to-one onto a
//! [`DropReason`](crate::stats::DropReason).

pub mod ethernet;
pub mod ip;
pub mod mpls;

use crate::stats::DropReason;

/// Why a frame could not be parsed. Maps one-to-one onto a drop reason.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// Shorter than the header being read.
    TooShort,
    /// More than two VLAN tags.
    VlanTooDeep,
    /// Label stack ends past the frame.
    TruncatedLabelStack,
    /// IP header truncated or with a bad header length.
    BadIpHeader,
}

impl From<Error> for DropReason {
    #[inline]
    fn from(e: Error) -> DropReason {
        match e {
            Error::TooShort => DropReason::TooShort,
            Error::VlanTooDeep => DropReason::VlanTooDeep,
            Error::TruncatedLabelStack => DropReason::TruncatedLabelStack,
            Error::BadIpHeader => DropReason::BadIpHeader,
        }
    }
}

/// Reads a big-endian u16 at `at`; caller has checked `at + 2 <= b.len()`.
#[inline(always)]
pub(crate) fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

/// Reads a big-endian u32 at `at`; caller has checked `at + 4 <= b.len()`.
#[inline(always)]
pub(crate) fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}
