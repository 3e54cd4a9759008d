//! The outcome of classifying one packet.

use crate::stats::DropReason;

/// What happens to a packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Rewritten in place; send out of this port index.
    Forward(u16),
    /// Dropped (and counted) for this reason.
    Drop(DropReason),
}

impl Default for Verdict {
    fn default() -> Self {
        Verdict::Drop(DropReason::TooShort)
    }
}
