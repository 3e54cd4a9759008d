//! RCU-style publication of an immutable forwarding snapshot (ILM table, …)
//! from one control thread to N poll-mode worker threads, with hand-rolled
//! quiescent-state-based reclamation (QSBR).
//!
//! # Protocol
//!
//! [`Publisher::new`] builds a shared block (held in an `Arc`) containing
//!
//! * `current: AtomicPtr<T>` — the snapshot workers read;
//! * `epoch: AtomicU64` — the global epoch, starts at 1, bumped once per
//!   publication, written only by the control thread;
//! * `slots: [CachePadded<AtomicU64>; max_readers]` — one cache line per
//!   worker, holding the last global epoch that worker announced, or
//!   [`OFFLINE`] (`0`) while the worker is idle/parked or the slot is free.
//!   Because real epochs start at 1, `0` can never be confused with one.
//!
//! A worker owns a [`Reader`] (from [`Publisher::register_reader`]) and runs a loop
//! like the one below (here it stops once it has seen table 2; a forwarding worker
//! also goes `offline()` before it parks, and its next `quiescent()` goes online):
//!
//! ```
//! use popgo_core::qsbr::Publisher;
//!
//! let mut publisher = Publisher::new(Box::new(1u32), 1);
//! let mut reader = publisher.register_reader();
//! let worker = std::thread::spawn(move || {
//!     let mut seen = Vec::new();
//!     loop {
//!         reader.quiescent(); // "I hold no snapshot reference now"
//!         // One Acquire load; the reference lives until the next quiescent() or
//!         // offline() (borrowck), the worker's burst uses it meanwhile.
//!         let table = reader.current();
//!         if seen.last() != Some(table) {
//!             seen.push(*table);
//!         }
//!         if *table == 2 {
//!             break;
//!         }
//!     }
//!     reader.offline();
//!     seen
//! });
//! publisher.publish(Box::new(2)); // waits (bounded) for the worker's grace period
//! let seen = worker.join().unwrap();
//! assert_eq!(seen.last(), Some(&2));
//! assert!(seen.iter().all(|t| *t == 1 || *t == 2));
//! publisher.try_reclaim(); // the worker is offline: table 1 is freed now at the latest
//! assert_eq!(publisher.pending_retired(), 0);
//! assert_eq!(*publisher.current(), 2);
//! ```
//!
//! The control thread calls [`Publisher::publish`] (or a variant), which
//!
//! 1. `old = current.swap(new, AcqRel)` — publication, never waits;
//! 2. `t = epoch.fetch_add(1, AcqRel) + 1`;
//! 3. `fence(SeqCst)`;
//! 4. scans the slots: the grace period of `old` is over once every slot has
//!    been seen (Acquire load) either `OFFLINE` or `>= t`;
//! 5. frees `old` — always on the control thread; workers never free.
//!
//! `old` is first put on a retired list tagged with `t`. If the grace period
//! does not finish in time it stays there and is freed later by
//! [`Publisher::try_reclaim`] (or a later publish), which frees every retired
//! snapshot whose tag is `<=` the minimum epoch announced by online slots.
//!
//! **Blocking policy.** Publication (step 1) never waits for anybody. Offline
//! readers are skipped by the scan, so an idle or parked worker never delays
//! even reclamation. An online worker that stops calling `quiescent()` can
//! only delay reclamation, and only by a bounded wait of the control thread:
//! [`Publisher::publish`] waits at most [`Publisher::grace_timeout`]
//! (default [`DEFAULT_GRACE_TIMEOUT`]), [`Publisher::publish_timeout`] waits
//! at most the given bound, and [`Publisher::publish_deferred`] does not wait
//! at all (it makes one non-blocking scan). Anything not reclaimed stays on
//! the retired list; [`PublishReport::pending_retired`] reports its length.
//!
//! # Memory ordering
//!
//! Claim: when step 5 frees `old`, no reader holds a reference to `old`, and
//! no reader will load `old` from `current` again. Take any slot `i`; step 4
//! read a value `v` from it, and either
//!
//! * **`v >= t`.** The reader stored `v` after loading `v` from `epoch` with
//!   Acquire. That load reads from the bump of step 2 or a later one (the
//!   bumps are RMWs of a single writer, so they form one release sequence),
//!   so step 1 happens-before it, and by read-write coherence every later
//!   `current.load` by that reader returns `new` or something newer, never
//!   `old`. References the reader obtained *before* announcing `v` are dead
//!   (borrowck: `current()` borrows the `Reader` mutably, `quiescent()` needs
//!   it again), and the announcement is a Release store read by an Acquire
//!   load, so all those reads happen-before the free. *Every* store of an
//!   epoch must be Release, including the one in `online()`: reads from an
//!   earlier online period were published by the Release store of
//!   `OFFLINE`, but reading a later store of the same thread does not
//!   synchronize with that one (C++20 release sequences consist of RMWs
//!   only), so the `online()` store has to carry them itself.
//! * **`v == OFFLINE`.** The `offline()` store is Release, so the reader's
//!   earlier reads happen-before the free. The subtle case is a reader going
//!   online concurrently: `online()` stores an epoch `e` read *before* the
//!   bump (so `e < t`), and then loads `current`. This is the store-buffering
//!   (Dekker) pattern — reader: `W slot; R current`, control:
//!   `W current; R slot` — where plain acquire/release allows *both* loads to
//!   see the old values (x86 does exactly this through its store buffer):
//!   control would see `OFFLINE` and free `old` while the reader loads `old`.
//!   Hence `online()` executes `fence(SeqCst)` between its slot store and any
//!   `current` load, and `publish` executes `fence(SeqCst)` (step 3) between
//!   the swap and the scan. SeqCst fences are totally ordered: if the
//!   reader's fence comes first, the scan must see the reader's store or a
//!   later one — an epoch (it waits) or the `OFFLINE` of a later
//!   `offline()`, whose Release covers that whole online period; if the
//!   control fence comes first, the reader's `current` load must see `new`
//!   or a newer pointer, never `old` nor anything retired before it.
//!
//! Steady state needs no fence: an online reader's slot is never `OFFLINE`,
//! so control can only get past it through the `v >= t` case, which relies
//! only on the Release/Acquire chain through `epoch`. A reader that reads a
//! stale epoch announces a value `< t` and control keeps waiting; a delayed
//! store (sitting in a store buffer) only delays reclamation. So the hot path
//! is: `quiescent()` = one Acquire load of `epoch` + a Release store of the
//! slot only when the epoch changed; `current()` = one Acquire load of
//! `current` + deref (on x86 all plain `mov`s; `mfence` only in `online()`
//! and `publish`). The SeqCst ordering is expressed with fences only, which
//! is also what loom models exactly (loom treats SeqCst *accesses* as AcqRel).
//!
//! The loom models in this file fail when either fence is removed, or when
//! any reader-side slot store (`quiescent`, `online`, `offline`), the
//! reader's epoch or `current` load, or the publisher's slot scan is
//! weakened to Relaxed (each checked by mutation).
//!
//! # Invariants
//!
//! * The snapshot behind `current` is owned by the shared block. It is
//!   replaced only by `Publisher` methods taking `&mut self`, and freed only
//!   by the drop of the shared block, i.e. when the publisher *and* every
//!   reader are gone.
//! * A replaced snapshot is owned by the publisher's retired list (tagged
//!   with the epoch `t` that retired it) and freed by the control thread, in
//!   `publish*`/`try_reclaim`, only after every slot has been seen `OFFLINE`
//!   or `>= t` after the step-3 fence. If the publisher is dropped first, the
//!   still-unreclaimable retired snapshots move to the shared block's orphan
//!   list and are freed when the last reader drops.
//! * Every snapshot pointer lives in exactly one place (`current`, the
//!   retired list or the orphan list) and is turned back into a `Box` exactly
//!   once, immediately before it is dropped: no leak, no double free.
//!   Retired snapshots are kept as raw pointers, never as `Box`, because
//!   readers may still hold shared references to them (a live `Box` asserts
//!   uniqueness).
//! * Slot `i` is written only by the `Reader` registered on it (and it is
//!   `OFFLINE` whenever no reader is registered); readers never write
//!   `epoch` or `current`.
//! * A reference returned by [`Reader::current`] borrows the `Reader`
//!   mutably, so it cannot survive a call to `quiescent()`, `online()`,
//!   `offline()` or the drop of the reader. Going offline or dropping the
//!   reader thus is a quiescent state as well.
#![allow(unsafe_code)]

use std::fmt;
use std::marker::PhantomData;
use std::ptr::NonNull;
use std::sync::PoisonError;
use std::time::{Duration, Instant};

use crossbeam::utils::{Backoff, CachePadded};

use self::sync::{fence, Arc, AtomicPtr, AtomicU64, Mutex, MutexGuard, Ordering};

/// Atomics shim: std normally, loom under `--cfg loom` (for model checking).
#[cfg(not(loom))]
mod sync {
    pub(super) use std::sync::atomic::{fence, AtomicPtr, AtomicU64, Ordering};
    pub(super) use std::sync::{Arc, Mutex, MutexGuard};

    use crossbeam::utils::Backoff;
    use std::time::Duration;

    /// Sleep used by a grace-period wait once spinning/yielding gave up.
    const WAIT_SLEEP: Duration = Duration::from_micros(20);

    /// One step of the control thread's grace-period wait.
    pub(super) fn pause(backoff: &Backoff) {
        if backoff.is_completed() {
            std::thread::sleep(WAIT_SLEEP);
        } else {
            backoff.snooze();
        }
    }
}

/// Atomics shim: std normally, loom under `--cfg loom` (for model checking).
#[cfg(loom)]
mod sync {
    pub(super) use loom::sync::atomic::{fence, AtomicPtr, AtomicU64, Ordering};
    pub(super) use loom::sync::{Arc, Mutex, MutexGuard};

    use crossbeam::utils::Backoff;

    /// Under loom every spin iteration must yield to the model scheduler.
    pub(super) fn pause(_backoff: &Backoff) {
        loom::thread::yield_now();
    }
}

/// Slot value of a reader that is offline (idle, parked, unregistered).
/// Real epochs start at 1 and only grow, so 0 is never a real epoch.
pub const OFFLINE: u64 = 0;

/// The global epoch before the first publication.
const FIRST_EPOCH: u64 = 1;

/// Default bound on how long [`Publisher::publish`] waits for a grace period.
pub const DEFAULT_GRACE_TIMEOUT: Duration = Duration::from_millis(50);

/// Lock a control-plane mutex, ignoring poisoning (the protected data — a
/// bitmap and a list of pointers — is consistent after every statement).
fn lock<X>(m: &Mutex<X>) -> MutexGuard<'_, X> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Frees a snapshot that has left every shared structure.
///
/// # Safety
///
/// `ptr` must come from `Box::into_raw`, must not be reachable any more from
/// `current`, the retired list or the orphan list, and no reader may hold
/// or later obtain a reference to it (its grace period has passed).
unsafe fn free_snapshot<T>(ptr: NonNull<T>) {
    // SAFETY: forwarded from this function's contract: the pointer came from
    // `Box::into_raw`, is owned by nobody else and is no longer referenced.
    drop(unsafe { Box::from_raw(ptr.as_ptr()) });
}

/// State shared by the publisher and all readers.
struct Shared<T> {
    /// Global epoch; written only by the control thread.
    epoch: AtomicU64,
    /// The published snapshot (from `Box::into_raw`, never null).
    current: AtomicPtr<T>,
    /// Per-reader announced epoch or `OFFLINE`.
    slots: Box<[CachePadded<AtomicU64>]>,
    /// `registry[i]` is true while slot `i` belongs to a live `Reader`.
    registry: Mutex<Vec<bool>>,
    /// Retired snapshots handed over by a dropped publisher; freed by `drop`.
    orphans: Mutex<Vec<NonNull<T>>>,
    /// `Shared` owns (and drops) values of type `T`.
    _owns: PhantomData<T>,
}

// SAFETY: `Shared<T>` owns `T` values (`current`, `orphans`) and drops them
// on whichever thread drops the last `Arc`, which may be a worker: that
// needs `T: Send`. Sending it also sends the raw `NonNull<T>`s of `orphans`,
// which are unique owners of boxes (see `Invariants`), so `T: Send` covers
// them too. `T: Sync` is demanded as well because a `Shared<T>` is only ever
// used through `Arc`, whose handles give `&T` to several threads.
unsafe impl<T: Send + Sync> Send for Shared<T> {}

// SAFETY: through `&Shared<T>` threads concurrently (a) read the atomics,
// which are thread-safe, (b) lock the mutexes, and (c) create `&T` from
// `current` on several threads at once (readers) — sound because `T: Sync`;
// snapshots are immutable while published. Mutation of `T` only happens in
// its drop, which runs on one thread after its grace period (the protocol in
// the module docs), and which may be another thread than the creator: hence
// `T: Send`.
unsafe impl<T: Send + Sync> Sync for Shared<T> {}

impl<T> Drop for Shared<T> {
    fn drop(&mut self) {
        // We are the last `Arc` handle: no `Reader` and no `Publisher` exist,
        // hence no reference into any snapshot exists (references borrow a
        // `Reader` or the `Publisher`).
        if let Some(cur) = NonNull::new(self.current.load(Ordering::Acquire)) {
            // SAFETY: `current` always holds a pointer from `Box::into_raw`
            // owned by this block; nobody else can reach it any more.
            unsafe { free_snapshot(cur) };
        }
        let orphans = std::mem::take(self.orphans.get_mut().unwrap_or_else(PoisonError::into_inner));
        for ptr in orphans {
            // SAFETY: orphans are retired snapshots that were removed from
            // the publisher's retired list when it was dropped; each is in
            // this list exactly once, and no reader exists any more.
            unsafe { free_snapshot(ptr) };
        }
    }
}

/// What one publication did. All durations are in nanoseconds, measured on
/// the control thread.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PublishReport {
    /// Time to swap the pointer, bump the epoch and fence (publication).
    pub publish_ns: u64,
    /// Time spent waiting for the grace period of the replaced snapshot.
    pub grace_ns: u64,
    /// Time spent dropping reclaimed snapshots.
    pub reclaim_ns: u64,
    /// Global epoch after this publication.
    pub epoch: u64,
    /// True when the grace period of the replaced snapshot finished within
    /// the bound (it has then been freed).
    pub grace_complete: bool,
    /// Number of snapshots freed by this call (replaced one and/or older
    /// retired ones).
    pub reclaimed: usize,
    /// Snapshots still waiting for their grace period after this call.
    pub pending_retired: usize,
}

/// A replaced snapshot waiting for its grace period.
struct Retired<T> {
    ptr: NonNull<T>,
    /// Epoch of the publication that replaced it: it may be freed once every
    /// slot has been seen `OFFLINE` or `>= epoch`.
    epoch: u64,
}

/// The control-plane handle: publishes snapshots, registers readers, frees
/// replaced snapshots. There is exactly one per shared block.
pub struct Publisher<T> {
    shared: Arc<Shared<T>>,
    /// Sorted by `epoch`, ascending (epochs only grow).
    retired: Vec<Retired<T>>,
    grace_timeout: Duration,
}

// SAFETY: a `Publisher<T>` may move to another thread, which then publishes
// and frees `T`s (`T: Send`) and can read the current snapshot (`T: Sync`).
// Its fields are an `Arc<Shared<T>>` (Send+Sync under the same bounds, see
// above) and retired `NonNull<T>`s that uniquely own boxes (`T: Send`).
// `Publisher` is deliberately not `Sync`: every mutating method takes
// `&mut self`, and nothing needs a shared publisher.
unsafe impl<T: Send + Sync> Send for Publisher<T> {}

impl<T> Publisher<T> {
    /// Create the shared state, publishing `initial` at epoch 1, with room
    /// for `max_readers` readers.
    pub fn new(initial: Box<T>, max_readers: usize) -> Self {
        let slots = (0..max_readers).map(|_| CachePadded::new(AtomicU64::new(OFFLINE))).collect();
        let shared = Shared {
            epoch: AtomicU64::new(FIRST_EPOCH),
            current: AtomicPtr::new(Box::into_raw(initial)),
            slots,
            registry: Mutex::new(vec![false; max_readers]),
            orphans: Mutex::new(Vec::new()),
            _owns: PhantomData,
        };
        Self { shared: Arc::new(shared), retired: Vec::new(), grace_timeout: DEFAULT_GRACE_TIMEOUT }
    }

    /// Register a new reader (control plane only; takes a mutex). The reader
    /// starts offline; its first `quiescent()`/`current()` brings it online.
    ///
    /// # Panics
    ///
    /// If all `max_readers` slots are in use.
    pub fn register_reader(&self) -> Reader<T> {
        self.try_register_reader().expect("qsbr: all reader slots are in use")
    }

    /// Like [`Publisher::register_reader`], but `None` when no slot is free.
    pub fn try_register_reader(&self) -> Option<Reader<T>> {
        let mut registry = lock(&self.shared.registry);
        let index = registry.iter().position(|used| !used)?;
        registry[index] = true;
        drop(registry);
        debug_assert_eq!(self.shared.slots[index].load(Ordering::Relaxed), OFFLINE, "a free slot is always OFFLINE");
        Some(Reader { shared: Arc::clone(&self.shared), index, local: OFFLINE, _marker: PhantomData })
    }

    /// The currently published snapshot, for the control thread (e.g. to
    /// build the next one from it). It is only replaced or freed through
    /// `&mut self`, so the borrow keeps it alive.
    pub fn current(&self) -> &T {
        let ptr = self.shared.current.load(Ordering::Acquire);
        // SAFETY: `current` always holds a live snapshot from
        // `Box::into_raw`. It can only be swapped out by a `&mut self` method
        // of this (unique) publisher and, once swapped out, is only freed by
        // a `&mut self` method or the drop of this publisher/the shared
        // block — none of which can run while this shared borrow lives.
        unsafe { &*ptr }
    }

    /// Global epoch (1 before the first publication, +1 per publication).
    pub fn epoch(&self) -> u64 {
        self.shared.epoch.load(Ordering::Relaxed)
    }

    /// Number of replaced snapshots still waiting for their grace period.
    pub fn pending_retired(&self) -> usize {
        self.retired.len()
    }

    /// Capacity chosen at construction.
    pub fn max_readers(&self) -> usize {
        self.shared.slots.len()
    }

    /// Bound used by [`Publisher::publish`].
    pub fn grace_timeout(&self) -> Duration {
        self.grace_timeout
    }

    /// Change the bound used by [`Publisher::publish`].
    pub fn set_grace_timeout(&mut self, timeout: Duration) {
        self.grace_timeout = timeout;
    }

    /// Publish `new`, then wait at most [`Publisher::grace_timeout`] for the
    /// grace period of the replaced snapshot and free it (plus any older
    /// retired ones). On timeout the replaced snapshot stays retired.
    pub fn publish(&mut self, new: Box<T>) -> PublishReport {
        let timeout = self.grace_timeout;
        self.publish_timeout(new, timeout)
    }

    /// Publish `new`, then wait at most `timeout` for the grace period.
    /// `Duration::MAX` (or any bound that overflows `Instant`) waits without
    /// bound — only safe if every online reader keeps calling `quiescent()`.
    pub fn publish_timeout(&mut self, new: Box<T>, timeout: Duration) -> PublishReport {
        let start = Instant::now();
        let deadline = start.checked_add(timeout);
        self.publish_until(new, start, deadline)
    }

    /// Publish `new` without waiting: the replaced snapshot is retired and a
    /// single non-blocking scan frees whatever retired snapshots are already
    /// past their grace period. Call [`Publisher::try_reclaim`] later.
    pub fn publish_deferred(&mut self, new: Box<T>) -> PublishReport {
        let start = Instant::now();
        self.publish_until(new, start, Some(start))
    }

    /// Free every retired snapshot whose grace period has passed (one
    /// non-blocking scan of the slots). Returns how many were freed.
    pub fn try_reclaim(&mut self) -> usize {
        let min = self.min_announced();
        self.free_retired_through(min)
    }

    fn publish_until(&mut self, new: Box<T>, start: Instant, deadline: Option<Instant>) -> PublishReport {
        let new = Box::into_raw(new);
        // Step 1: publication. Release makes `*new` visible to readers that
        // Acquire-load it; Acquire is not needed (we wrote `old` ourselves)
        // but costs nothing on an RMW.
        let old = self.shared.current.swap(new, Ordering::AcqRel);
        // Step 2: bump the epoch after the swap (Release: a reader that sees
        // the new epoch sees the new pointer).
        let epoch = self.shared.epoch.fetch_add(1, Ordering::AcqRel) + 1;
        // Step 3: order the swap before the slot scan for the store-buffering
        // race with `Reader::online` (module docs, "Memory ordering").
        fence(Ordering::SeqCst);
        let old = NonNull::new(old).expect("qsbr: current is never null");
        self.retired.push(Retired { ptr: old, epoch });
        let published = Instant::now();

        // Step 4: grace period, bounded by `deadline`.
        let grace_complete = self.wait_grace(epoch, deadline);
        let graced = Instant::now();

        // Step 5: reclaim.
        let reclaimed = if grace_complete {
            // Every slot was OFFLINE or >= epoch, which also covers every
            // older retired snapshot (smaller tags).
            self.free_retired_through(epoch)
        } else {
            self.try_reclaim()
        };
        let done = Instant::now();

        PublishReport {
            publish_ns: nanos(published - start),
            grace_ns: nanos(graced - published),
            reclaim_ns: nanos(done - graced),
            epoch,
            grace_complete,
            reclaimed,
            pending_retired: self.retired.len(),
        }
    }

    /// Wait until every slot has been seen `OFFLINE` or `>= target`, or until
    /// `deadline` (`None`: no bound). Returns whether the grace period is
    /// over. Slots are independent: once a slot has been seen past `target`
    /// it can no longer hold a snapshot retired at or before `target`.
    fn wait_grace(&self, target: u64, deadline: Option<Instant>) -> bool {
        for slot in self.shared.slots.iter() {
            let backoff = Backoff::new();
            loop {
                // Acquire: pairs with the reader's Release announce/offline
                // store, so its snapshot reads happen-before the free.
                let seen = slot.load(Ordering::Acquire);
                if seen == OFFLINE || seen >= target {
                    break;
                }
                if deadline.is_some_and(|deadline| Instant::now() >= deadline) {
                    return false;
                }
                sync::pause(&backoff);
            }
        }
        true
    }

    /// Minimum epoch announced by online slots (`u64::MAX` if none is
    /// online): every retired snapshot tagged `<=` this is reclaimable.
    fn min_announced(&self) -> u64 {
        self.shared
            .slots
            .iter()
            .map(|slot| slot.load(Ordering::Acquire))
            .filter(|&seen| seen != OFFLINE)
            .min()
            .unwrap_or(u64::MAX)
    }

    /// Free the retired snapshots tagged `<= limit`; `limit` must come from a
    /// slot scan made after the fence of the publication that retired them.
    fn free_retired_through(&mut self, limit: u64) -> usize {
        let n = self.retired.partition_point(|r| r.epoch <= limit);
        for retired in self.retired.drain(..n) {
            // SAFETY: the pointer was swapped out of `current` (so no reader
            // can newly load it), is removed from the retired list here (so
            // it is freed once), and the slot scan showed every reader
            // OFFLINE or past the retiring epoch after the retiring fence,
            // so no reader holds a reference to it (module docs).
            unsafe { free_snapshot(retired.ptr) };
        }
        n
    }
}

impl<T> Drop for Publisher<T> {
    fn drop(&mut self) {
        self.try_reclaim();
        if !self.retired.is_empty() {
            // Some reader still (maybe) holds these: hand them to the shared
            // block, which frees them when the last reader is dropped.
            lock(&self.shared.orphans).extend(self.retired.drain(..).map(|r| r.ptr));
        }
    }
}

impl<T> fmt::Debug for Publisher<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Publisher")
            .field("epoch", &self.epoch())
            .field("max_readers", &self.max_readers())
            .field("pending_retired", &self.retired.len())
            .field("grace_timeout", &self.grace_timeout)
            .finish()
    }
}

/// A worker's handle. Announces quiescent states and reads the current
/// snapshot. Dropping it marks its slot `OFFLINE` and frees the slot.
pub struct Reader<T> {
    shared: Arc<Shared<T>>,
    /// Index of this reader's slot.
    index: usize,
    /// Value last stored in the slot by us; `OFFLINE` iff we are offline.
    local: u64,
    /// Opts out of the auto traits so that `Send` is spelled out below.
    _marker: PhantomData<*const T>,
}

// SAFETY: a `Reader<T>` is moved to its worker thread, where it hands out
// `&T` to the current snapshot (needs `T: Sync`, since other threads read
// the same snapshot) and may drop the last `Arc<Shared<T>>`, dropping
// snapshots on that thread (needs `T: Send`). Its slot is written only
// through `&mut self`, from whatever single thread owns it at the time;
// moving it between threads is itself synchronizing. `Reader` is not
// `Sync`: it is a single-owner handle and nothing needs `&Reader` shared.
unsafe impl<T: Send + Sync> Send for Reader<T> {}

impl<T> Reader<T> {
    /// Announce a quiescent state: the worker holds no snapshot reference
    /// (guaranteed by borrowck). One Acquire load of the global epoch plus,
    /// only when it changed, one Release store to the own slot. On an offline
    /// reader this is [`Reader::online`].
    #[inline]
    pub fn quiescent(&mut self) {
        if self.local == OFFLINE {
            self.go_online();
            return;
        }
        // Acquire: see the module docs, case `v >= t`.
        let epoch = self.shared.epoch.load(Ordering::Acquire);
        if epoch != self.local {
            self.local = epoch;
            // Release: our earlier snapshot reads happen-before the free of
            // a snapshot whose grace period this store ends.
            self.shared.slots[self.index].store(epoch, Ordering::Release);
        }
    }

    /// The current snapshot: one Acquire load + deref. The reference lives
    /// until the next `quiescent()`/`online()`/`offline()` (borrowck). An
    /// offline reader goes online first.
    #[inline]
    pub fn current(&mut self) -> &T {
        if self.local == OFFLINE {
            self.go_online();
        }
        // Acquire: pairs with the publisher's Release swap, so the snapshot
        // contents are visible.
        let ptr = self.shared.current.load(Ordering::Acquire);
        // SAFETY: we are online, with an announcement stored and fenced
        // before this load (`go_online`) or carried over from it. The
        // publisher frees a snapshot only after seeing our slot OFFLINE or
        // at an epoch past its retirement, and by the argument in the module
        // docs any pointer loaded here stays live until our next
        // announcement/offline store. The returned reference borrows `self`
        // mutably, so it cannot outlive that next store.
        unsafe { &*ptr }
    }

    /// Become online (worker resumes). Stores the current epoch to the slot
    /// and executes a SeqCst fence before any snapshot load. On an online
    /// reader this is [`Reader::quiescent`].
    pub fn online(&mut self) {
        if self.local == OFFLINE {
            self.go_online();
        } else {
            self.quiescent();
        }
    }

    /// Become offline (worker idles/parks): the publisher stops waiting for
    /// this reader. A quiescent state as well.
    pub fn offline(&mut self) {
        if self.local != OFFLINE {
            self.local = OFFLINE;
            // Release: our snapshot reads happen-before any free that the
            // publisher does after seeing OFFLINE.
            self.shared.slots[self.index].store(OFFLINE, Ordering::Release);
        }
    }

    /// Whether this reader is online.
    pub fn is_online(&self) -> bool {
        self.local != OFFLINE
    }

    /// The epoch this reader last announced, or [`OFFLINE`].
    pub fn announced_epoch(&self) -> u64 {
        self.local
    }

    #[cold]
    #[inline(never)]
    fn go_online(&mut self) {
        // Acquire: if this reads epoch >= t, case `v >= t` applies.
        let epoch = self.shared.epoch.load(Ordering::Acquire);
        debug_assert_ne!(epoch, OFFLINE);
        self.local = epoch;
        // Release, not Relaxed: if this reader was online before, its reads
        // from that period were published by the Release store of OFFLINE,
        // but a publisher that reads *this* store (`>= t`) does not
        // synchronize with that earlier store (since C++20 a release
        // sequence does not continue through later plain stores of the same
        // thread). This store must publish those reads itself.
        self.shared.slots[self.index].store(epoch, Ordering::Release);
        // The store-buffering fence (module docs, case `v == OFFLINE`).
        fence(Ordering::SeqCst);
    }
}

impl<T> Drop for Reader<T> {
    fn drop(&mut self) {
        self.offline();
        lock(&self.shared.registry)[self.index] = false;
    }
}

impl<T> fmt::Debug for Reader<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reader").field("slot", &self.index).field("announced_epoch", &self.local).finish()
    }
}

/// Saturating `Duration` → nanoseconds.
fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, AtomicUsize};
    use std::sync::mpsc;
    use std::thread;

    const MAGIC: u64 = 0x5eed_f00d_cafe_babe;
    const DEAD: u64 = 0xdead_dead_dead_dead;
    const PAYLOAD: usize = 16;

    /// Publications in the stress test.
    const PUBLISHES: u64 = if cfg!(miri) { 40 } else { 2000 };
    /// Minimum reads per reader thread in the stress test.
    const MIN_READS: u64 = if cfg!(miri) { 500 } else { 2_000_000 };
    /// Each stress reader goes offline once every this many reads.
    const NAP_EVERY: u64 = if cfg!(miri) { 64 } else { 1 << 14 };

    struct Snap {
        magic: std::sync::atomic::AtomicU64,
        generation: u64,
        payload: [u64; PAYLOAD],
        drops: Arc<AtomicUsize>,
    }

    impl Snap {
        fn boxed(generation: u64, drops: &Arc<AtomicUsize>) -> Box<Self> {
            Box::new(Self {
                magic: std::sync::atomic::AtomicU64::new(MAGIC),
                generation,
                payload: [generation.wrapping_mul(MAGIC); PAYLOAD],
                drops: Arc::clone(drops),
            })
        }

        /// Check integrity; return the generation.
        fn check(&self) -> u64 {
            assert_eq!(self.magic.load(Ordering::Relaxed), MAGIC, "freed snapshot read");
            let expect = self.generation.wrapping_mul(MAGIC);
            assert!(self.payload.iter().all(|&w| w == expect), "torn snapshot");
            self.generation
        }
    }

    impl Drop for Snap {
        fn drop(&mut self) {
            // An atomic store, so it is not optimised away as a dead store
            // before the deallocation.
            self.magic.store(DEAD, Ordering::Relaxed);
            self.drops.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn drops_of(d: &Arc<AtomicUsize>) -> usize {
        d.load(Ordering::SeqCst)
    }

    #[test]
    fn reader_and_publisher_are_send() {
        fn assert_send<X: Send>() {}
        assert_send::<Reader<Snap>>();
        assert_send::<Publisher<Snap>>();
    }

    #[test]
    fn registration_capacity_and_slot_reuse() {
        let drops = Arc::new(AtomicUsize::new(0));
        let p = Publisher::new(Snap::boxed(0, &drops), 2);
        let mut a = p.register_reader();
        let b = p.register_reader();
        assert!(p.try_register_reader().is_none());
        assert!(!a.is_online());
        assert_eq!(a.current().check(), 0);
        assert!(a.is_online());
        assert_eq!(a.announced_epoch(), 1);
        drop(a);
        let c = p.try_register_reader().expect("slot freed by drop");
        assert!(!c.is_online());
        drop((b, c, p));
        assert_eq!(drops_of(&drops), 1);
    }

    #[test]
    fn stress_two_readers_many_publishes() {
        let drops = Arc::new(AtomicUsize::new(0));
        let mut p = Publisher::new(Snap::boxed(0, &drops), 4);
        let stop = Arc::new(AtomicBool::new(false));
        let workers: Vec<_> = (0..2u64)
            .map(|id| {
                let mut r = p.register_reader();
                let stop = Arc::clone(&stop);
                thread::spawn(move || {
                    let (mut last, mut reads, mut naps) = (0u64, 0u64, 0u64);
                    loop {
                        // Checked first: after seeing `stop`, this read must
                        // return the last publication.
                        let done = reads >= MIN_READS && stop.load(Ordering::Acquire);
                        r.quiescent();
                        let s = r.current();
                        let generation = s.check();
                        assert!(generation >= last, "generation went backwards");
                        last = generation;
                        reads += 1;
                        if done {
                            break;
                        }
                        // Now and then park briefly, to exercise offline/online.
                        if reads % NAP_EVERY == id * NAP_EVERY / 2 {
                            r.offline();
                            thread::yield_now();
                            naps += 1;
                        }
                    }
                    r.offline();
                    (reads, last, naps)
                })
            })
            .collect();

        let mut waited = 0;
        for generation in 1..=PUBLISHES {
            let new = Snap::boxed(generation, &drops);
            let report = if generation % 2 == 0 { p.publish(new) } else { p.publish_deferred(new) };
            assert_eq!(report.epoch, generation + 1);
            assert_eq!(p.current().check(), generation);
            waited += usize::from(report.grace_complete);
        }
        stop.store(true, Ordering::Release);
        for w in workers {
            let (reads, last, naps) = w.join().expect("reader panicked");
            println!("reader: {reads} reads, {naps} offline naps, last generation {last}");
            assert!(reads >= MIN_READS);
            assert!(naps > 0);
            assert_eq!(last, PUBLISHES, "reader saw the last publication");
        }
        // All readers are gone: everything retired is reclaimable.
        p.try_reclaim();
        assert_eq!(p.pending_retired(), 0);
        assert_eq!(drops_of(&drops), PUBLISHES as usize, "every replaced snapshot freed");
        println!("{PUBLISHES} publications, {waited} with a completed grace period");
        assert!(waited > 0);
        drop(p);
        assert_eq!(drops_of(&drops), PUBLISHES as usize + 1, "current freed on drop");
    }

    #[test]
    fn offline_reader_does_not_block_publish() {
        let drops = Arc::new(AtomicUsize::new(0));
        let mut p = Publisher::new(Snap::boxed(0, &drops), 4);
        let never_online = p.register_reader();

        // A reader that read a snapshot, went offline and is parked on
        // another thread.
        let mut parked = p.register_reader();
        parked.quiescent();
        assert_eq!(parked.current().check(), 0);
        parked.offline();
        let (wake_tx, wake_rx) = mpsc::channel::<()>();
        let sleeper = thread::spawn(move || {
            wake_rx.recv().unwrap();
            assert_eq!(parked.current().check(), 2);
        });

        let start = Instant::now();
        let report = p.publish_timeout(Snap::boxed(1, &drops), Duration::from_secs(30));
        assert!(report.grace_complete);
        assert_eq!((report.reclaimed, report.pending_retired), (1, 0));
        let report = p.publish(Snap::boxed(2, &drops));
        assert!(report.grace_complete);
        assert_eq!((report.reclaimed, report.pending_retired), (1, 0));
        assert!(start.elapsed() < Duration::from_secs(10), "publish waited");
        assert_eq!(drops_of(&drops), 2);

        wake_tx.send(()).unwrap();
        sleeper.join().unwrap();
        drop((never_online, p));
        assert_eq!(drops_of(&drops), 3);
    }

    /// Runs a reader on a thread that grabs the current snapshot, reports its
    /// generation, stalls (still holding it) until told to go on, rechecks
    /// it, announces a quiescent state, reports the new generation and waits
    /// once more before exiting (still online).
    fn stalled_reader(mut r: Reader<Snap>) -> (mpsc::Receiver<u64>, mpsc::Sender<()>, thread::JoinHandle<()>) {
        let (report_tx, report_rx) = mpsc::channel::<u64>();
        let (go_tx, go_rx) = mpsc::channel::<()>();
        let h = thread::spawn(move || {
            r.quiescent();
            let held = r.current();
            report_tx.send(held.check()).unwrap();
            go_rx.recv().unwrap(); // stalled while holding `held`
            report_tx.send(held.check()).unwrap();
            r.quiescent();
            report_tx.send(r.current().check()).unwrap();
            let _ = go_rx.recv();
        });
        (report_rx, go_tx, h)
    }

    #[test]
    fn stalled_reader_delays_only_reclamation() {
        let drops = Arc::new(AtomicUsize::new(0));
        let mut p = Publisher::new(Snap::boxed(0, &drops), 2);
        let (report, go, h) = stalled_reader(p.register_reader());
        assert_eq!(report.recv().unwrap(), 0);

        let r = p.publish_deferred(Snap::boxed(1, &drops));
        assert!(!r.grace_complete);
        assert_eq!((r.reclaimed, r.pending_retired), (0, 1));

        let start = Instant::now();
        let r = p.publish_timeout(Snap::boxed(2, &drops), Duration::from_millis(20));
        assert!(start.elapsed() >= Duration::from_millis(20));
        assert!(!r.grace_complete);
        assert_eq!((r.reclaimed, r.pending_retired), (0, 2));

        p.set_grace_timeout(Duration::from_millis(5));
        let r = p.publish(Snap::boxed(3, &drops));
        assert!(!r.grace_complete);
        assert_eq!((r.reclaimed, r.pending_retired), (0, 3));
        assert!(start.elapsed() < Duration::from_secs(10), "publish blocked");

        assert_eq!(p.try_reclaim(), 0);
        assert_eq!(p.current().check(), 3, "publication was not delayed");
        assert_eq!(drops_of(&drops), 0, "nothing freed while the reader stalls");

        go.send(()).unwrap();
        assert_eq!(report.recv().unwrap(), 0, "held snapshot intact");
        assert_eq!(report.recv().unwrap(), 3, "reader moved on to the newest");
        // The reader is still online, at the newest epoch.
        assert_eq!(p.try_reclaim(), 3);
        assert_eq!(p.pending_retired(), 0);
        assert_eq!(drops_of(&drops), 3);

        go.send(()).unwrap();
        h.join().unwrap();
        drop(p);
        assert_eq!(drops_of(&drops), 4);
    }

    #[test]
    fn publisher_dropped_while_reader_holds_snapshot() {
        let drops = Arc::new(AtomicUsize::new(0));
        let mut p = Publisher::new(Snap::boxed(0, &drops), 1);
        let (report, go, h) = stalled_reader(p.register_reader());
        assert_eq!(report.recv().unwrap(), 0);
        let r = p.publish_deferred(Snap::boxed(1, &drops));
        assert_eq!(r.pending_retired, 1);
        drop(p); // generation 0 becomes an orphan of the shared block
        assert_eq!(drops_of(&drops), 0);
        go.send(()).unwrap();
        assert_eq!(report.recv().unwrap(), 0, "orphan not freed while held");
        assert_eq!(report.recv().unwrap(), 1);
        go.send(()).unwrap();
        h.join().unwrap(); // last handle: frees current + orphan, once each
        assert_eq!(drops_of(&drops), 2);
    }
}

#[cfg(all(test, loom))]
mod loom_tests {
    use super::*;
    use loom::cell::UnsafeCell;
    use loom::sync::atomic::AtomicUsize;
    use loom::sync::mpsc;
    use loom::thread;
    use std::sync::atomic::AtomicUsize as StdAtomicUsize;

    const LIVE: u64 = 0x1111;
    const DEAD: u64 = 0xdead;

    /// A snapshot whose value lives in a loom `UnsafeCell`: loom reports a
    /// causality violation if a reader's read is not ordered before the
    /// write done by `drop` (i.e. a use-after-free in the real program).
    struct Snap {
        /// Keeps `cell` away from allocator metadata written on free.
        _pad: [u64; 4],
        generation: u64,
        cell: UnsafeCell<u64>,
        drops: Arc<AtomicUsize>,
    }

    // SAFETY: the only mutation of `cell` is in `Drop` (`&mut self`); shared
    // reads are checked against it by loom.
    unsafe impl Sync for Snap {}

    impl Snap {
        fn boxed(generation: u64, drops: &Arc<AtomicUsize>) -> Box<Self> {
            Box::new(Self { _pad: [0; 4], generation, cell: UnsafeCell::new(LIVE), drops: Arc::clone(drops) })
        }

        fn check(&self) -> u64 {
            // SAFETY: shared read; the only write is in `drop`, and loom
            // panics if that write is not ordered after this read.
            let v = self.cell.with(|p| unsafe { *p });
            assert_eq!(v, LIVE, "read a freed snapshot");
            self.generation
        }
    }

    impl Drop for Snap {
        fn drop(&mut self) {
            // SAFETY: `&mut self` is exclusive.
            self.cell.with_mut(|p| unsafe { *p = DEAD });
            self.drops.fetch_add(1, Ordering::AcqRel);
        }
    }

    fn check_model(name: &str, f: impl Fn() + Sync + Send + 'static) {
        static ITERATIONS: StdAtomicUsize = StdAtomicUsize::new(0);
        let mut builder = loom::model::Builder::new();
        if builder.preemption_bound.is_none() {
            builder.preemption_bound = Some(3);
        }
        let bound = builder.preemption_bound;
        let start = std::time::Instant::now();
        let before = ITERATIONS.load(std::sync::atomic::Ordering::Relaxed);
        builder.check(move || {
            ITERATIONS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            f();
        });
        let n = ITERATIONS.load(std::sync::atomic::Ordering::Relaxed) - before;
        println!("loom {name}: {n} executions explored, preemption bound {bound:?}, {:.1?}", start.elapsed());
    }

    /// 1 publisher (2 blocking publishes) + 2 readers (online, 2 × quiescent
    /// + current + read, offline).
    #[test]
    fn loom_two_readers_two_publishes() {
        check_model("two_readers_two_publishes", || {
            let drops = Arc::new(AtomicUsize::new(0));
            let mut p = Publisher::new(Snap::boxed(0, &drops), 2);
            let readers: Vec<_> = (0..2)
                .map(|_| {
                    let mut r = p.register_reader();
                    thread::spawn(move || {
                        r.online();
                        let mut last = 0;
                        for _ in 0..2 {
                            r.quiescent();
                            let generation = r.current().check();
                            assert!(generation >= last);
                            last = generation;
                        }
                        r.offline();
                    })
                })
                .collect();
            for generation in 1..=2 {
                let report = p.publish_timeout(Snap::boxed(generation, &drops), Duration::MAX);
                assert!(report.grace_complete);
                assert_eq!(report.pending_retired, 0);
            }
            assert_eq!(drops.load(Ordering::Acquire), 2);
            for r in readers {
                r.join().unwrap();
            }
            drop(p);
            assert_eq!(drops.load(Ordering::Acquire), 3);
        });
    }

    /// One reader with two online periods (read, offline, back online, read,
    /// offline) against two blocking publishes: the announcement made when
    /// going back online must also publish the reads of the first period.
    #[test]
    fn loom_reader_offline_then_online_again() {
        check_model("reader_offline_then_online_again", || {
            let drops = Arc::new(AtomicUsize::new(0));
            let mut p = Publisher::new(Snap::boxed(0, &drops), 1);
            let mut r = p.register_reader();
            let reader = thread::spawn(move || {
                let mut last = 0;
                for _ in 0..2 {
                    r.quiescent(); // offline -> online
                    let generation = r.current().check();
                    assert!(generation >= last);
                    last = generation;
                    r.offline();
                }
            });
            for generation in 1..=2 {
                let report = p.publish_timeout(Snap::boxed(generation, &drops), Duration::MAX);
                assert!(report.grace_complete);
            }
            reader.join().unwrap();
            drop(p);
            assert_eq!(drops.load(Ordering::Acquire), 3);
        });
    }

    /// A reader that goes offline (and one never online) must not block an
    /// unbounded publish: the parked reader waits for the publisher, so a
    /// publisher waiting for it would never finish (loom fails the model).
    #[test]
    fn loom_offline_reader_does_not_block() {
        check_model("offline_reader_does_not_block", || {
            let drops = Arc::new(AtomicUsize::new(0));
            let mut p = Publisher::new(Snap::boxed(0, &drops), 2);
            let _never_online = p.register_reader();
            let mut r = p.register_reader();
            let (tx, rx) = mpsc::channel::<()>();
            let reader = thread::spawn(move || {
                r.quiescent();
                r.current().check();
                r.offline();
                rx.recv().unwrap(); // parked until the publish finished
                r.current().check()
            });
            let report = p.publish_timeout(Snap::boxed(1, &drops), Duration::MAX);
            assert!(report.grace_complete);
            assert_eq!(report.reclaimed, 1);
            tx.send(()).unwrap();
            assert_eq!(reader.join().unwrap(), 1);
            assert_eq!(drops.load(Ordering::Acquire), 1);
        });
    }

    /// A reader holding a snapshot across a deferred publish: the non-blocking
    /// reclaim must not free it; it is freed once the reader moves on.
    #[test]
    fn loom_deferred_with_stalled_reader() {
        check_model("deferred_with_stalled_reader", || {
            let drops = Arc::new(AtomicUsize::new(0));
            let mut p = Publisher::new(Snap::boxed(0, &drops), 1);
            let mut r = p.register_reader();
            let (held_tx, held_rx) = mpsc::channel::<()>();
            let (go_tx, go_rx) = mpsc::channel::<()>();
            let reader = thread::spawn(move || {
                r.quiescent();
                let held = r.current();
                assert_eq!(held.check(), 0);
                held_tx.send(()).unwrap();
                go_rx.recv().unwrap();
                assert_eq!(held.check(), 0);
                r.quiescent();
                r.current().check()
            });
            held_rx.recv().unwrap();
            let report = p.publish_deferred(Snap::boxed(1, &drops));
            assert_eq!((report.reclaimed, report.pending_retired), (0, 1));
            go_tx.send(()).unwrap();
            let early = p.try_reclaim(); // races with the reader moving on
            assert_eq!(reader.join().unwrap(), 1);
            let late = p.try_reclaim();
            assert_eq!(early + late, 1);
            assert_eq!(drops.load(Ordering::Acquire), 1);
        });
    }
}
