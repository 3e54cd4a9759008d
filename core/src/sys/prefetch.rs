//! Cache prefetch hint (x86_64 PREFETCHT0; a no-op elsewhere).
//!
//! **Invariants**: a prefetch never dereferences in the language sense and never
//! faults, so any pointer value is acceptable.
#![allow(unsafe_code)]

/// Hints the CPU to bring the cache line holding `p` into L1.
#[inline(always)]
pub fn prefetch<T>(p: *const T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: PREFETCHT0 is a hint; it performs no architectural memory access and cannot
    // fault, whatever the address (see the module invariants).
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(p.cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}
