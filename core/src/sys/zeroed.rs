//! Large zero-filled tables of atomic counters, allocated with `alloc_zeroed`: for a
//! table of many MiB the allocator maps fresh anonymous pages, which the kernel fills
//! with zeros on first touch, so a table costs resident memory only for the pages that
//! are written (the per-LSP counters of 2^20 labels, of which a device uses a few).
//!
//! # Invariants
//! - The memory is allocated with the global allocator and the layout of
//!   `[AtomicU64; n]`, and handed to a `Box<[AtomicU64]>`, which frees it with the same
//!   layout. An all-zero `AtomicU64` is a valid `AtomicU64` holding 0.
#![allow(unsafe_code)]

use std::alloc::{alloc_zeroed, handle_alloc_error, Layout};
use std::sync::atomic::AtomicU64;

/// `n` atomic counters, all 0 (setup only: allocates).
pub fn atomics(n: usize) -> Box<[AtomicU64]> {
    if n == 0 {
        return Box::new([]);
    }
    let layout = Layout::array::<AtomicU64>(n).expect("counter table size fits isize");
    // SAFETY: `layout` has a non-zero size (n > 0), as alloc_zeroed requires.
    let p = unsafe { alloc_zeroed(layout) }.cast::<AtomicU64>();
    if p.is_null() {
        handle_alloc_error(layout);
    }
    let slice = std::ptr::slice_from_raw_parts_mut(p, n);
    // SAFETY: `p` is a live allocation of the global allocator with the layout of
    // `[AtomicU64; n]`, zero-filled, and zero is a valid AtomicU64 (see Invariants);
    // the Box becomes its only owner.
    unsafe { Box::from_raw(slice) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::Ordering;

    #[test]
    fn tables_start_at_zero_and_count() {
        let t = atomics(1 << 20);
        assert_eq!(t.len(), 1 << 20);
        assert!(t.iter().step_by(4099).all(|a| a.load(Ordering::Relaxed) == 0));
        t[12345].fetch_add(3, Ordering::Relaxed);
        assert_eq!(t[12345].load(Ordering::Relaxed), 3);
        assert!(atomics(0).is_empty());
    }
}
