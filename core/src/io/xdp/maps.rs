//! Kernel objects: maps and programs (bpf(2) through libbpf), the mmapped array the
//! offload's tables live in, and per-CPU counter arrays.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use libbpf_sys as sys;

use super::asm::Insn;

/// libbpf 0.3 returns `-1` with `errno` set (bpf(2) style) for the map/prog
/// calls and `-errno` for the netlink ones. Normalize both.
pub(super) fn check_fd(ret: i32, what: &str) -> io::Result<OwnedFd> {
    if ret < 0 {
        let e = io::Error::last_os_error();
        return Err(io::Error::new(e.kind(), format!("{what}: {e}")));
    }
    // SAFETY: ret >= 0 is a fresh fd returned by the bpf(2) syscall for us and
    // owned by nobody else; OwnedFd closes it exactly once.
    Ok(unsafe { OwnedFd::from_raw_fd(ret) })
}

pub(super) fn check_neg_errno(ret: i32, what: &str) -> io::Result<()> {
    if ret < 0 {
        let e = io::Error::from_raw_os_error(-ret);
        return Err(io::Error::new(e.kind(), format!("{what}: {e}")));
    }
    Ok(())
}

/// Create a BPF map with a kernel-visible name (libbpf looks the XSKMAP up by
/// the name `xsks_map`).
pub fn create_map(
    map_type: sys::bpf_map_type,
    name: &str,
    key_size: u32,
    value_size: u32,
    max_entries: u32,
) -> io::Result<OwnedFd> {
    let cname = CString::new(name).expect("map name has no NUL");
    // SAFETY: cname is a valid NUL-terminated string that outlives the call;
    // the other arguments are plain integers.
    let ret = unsafe {
        sys::bpf_create_map_name(map_type, cname.as_ptr(), key_size as i32, value_size as i32, max_entries as i32, 0)
    };
    check_fd(ret, "bpf_create_map_name")
}

/// Load an XDP program. On failure the verifier log is included in the error.
pub fn load_xdp_program(name: &str, insns: &[Insn]) -> io::Result<OwnedFd> {
    let cname = CString::new(name).expect("prog name has no NUL");
    let license = CString::new("GPL").expect("static");
    let mut log = vec![0u8; 64 * 1024];
    let attr = sys::bpf_load_program_attr {
        prog_type: sys::BPF_PROG_TYPE_XDP,
        name: cname.as_ptr(),
        insns: insns.as_ptr().cast::<sys::bpf_insn>(),
        insns_cnt: insns.len() as sys::size_t,
        license: license.as_ptr(),
        log_level: 0, // libbpf retries with log_level 1 on failure when a buffer is given
        ..Default::default()
    };
    // SAFETY: attr points at insns/name/license that all outlive the call;
    // `Insn` has the layout of `bpf_insn` (static asserts above); log is a
    // writable buffer of the length we pass.
    let ret = unsafe { sys::bpf_load_program_xattr(&attr, log.as_mut_ptr().cast(), log.len() as sys::size_t) };
    if ret < 0 {
        let e = io::Error::last_os_error();
        let end = log.iter().position(|&b| b == 0).unwrap_or(log.len());
        return Err(io::Error::new(
            e.kind(),
            format!("bpf_load_program({name}): {e}\nverifier log:\n{}", String::from_utf8_lossy(&log[..end])),
        ));
    }
    check_fd(ret, "bpf_load_program_xattr")
}

/// Like [`create_map`], with `map_flags` (e.g. `BPF_F_MMAPABLE`).
pub fn create_map_flags(
    map_type: sys::bpf_map_type,
    name: &str,
    key_size: u32,
    value_size: u32,
    max_entries: u32,
    map_flags: u32,
) -> io::Result<OwnedFd> {
    let cname = CString::new(name).expect("map name has no NUL");
    let attr = sys::bpf_create_map_attr {
        name: cname.as_ptr(),
        map_type,
        map_flags,
        key_size,
        value_size,
        max_entries,
        ..Default::default()
    };
    // SAFETY: attr is fully initialized and points at cname, which outlives the call.
    let ret = unsafe { sys::bpf_create_map_xattr(&attr) };
    check_fd(ret, "bpf_create_map_xattr")
}

/// Writes one element of a map (`BPF_ANY`). `key` and `value` must be the map's key
/// and value sizes.
pub fn map_update(map: &OwnedFd, key: &[u8], value: &[u8]) -> io::Result<()> {
    // SAFETY: both buffers are valid for the sizes the map was created with (the
    // caller's contract above; the kernel reads exactly key_size and value_size bytes)
    // and outlive the call.
    let ret = unsafe { sys::bpf_map_update_elem(map.as_raw_fd(), key.as_ptr().cast(), value.as_ptr().cast(), 0) };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Number of possible CPUs (the number of slots a per-CPU map value has).
pub fn possible_cpus() -> io::Result<usize> {
    // SAFETY: no arguments; reads /sys/devices/system/cpu/possible.
    let n = unsafe { sys::libbpf_num_possible_cpus() };
    if n <= 0 {
        return Err(io::Error::other("libbpf_num_possible_cpus failed"));
    }
    Ok(n as usize)
}

/// Waits until every XDP program run that had started when this was called has
/// returned: an RCU grace period. XDP programs run inside RCU read-side sections, and
/// `membarrier(MEMBARRIER_CMD_GLOBAL)` is documented to wait for one (`man 2
/// membarrier`: "all running threads ... pass through a state where ... [it] calls
/// synchronize_rcu()" in the kernel). Returns false if the kernel refused (nohz_full);
/// the caller then falls back to a generous sleep.
pub fn wait_for_running_programs() -> bool {
    const MEMBARRIER_CMD_GLOBAL: libc::c_long = 1;
    // SAFETY: membarrier takes plain integers and touches no memory of ours.
    let ret =
        unsafe { libc::syscall(libc::SYS_membarrier, MEMBARRIER_CMD_GLOBAL, 0 as libc::c_long, 0 as libc::c_long) };
    ret == 0
}

/// A BPF array map created with `BPF_F_MMAPABLE` and mapped into this process, so
/// that user space can update 32-bit words with single atomic stores that an XDP
/// program's 32-bit load sees whole (a `bpf_map_update_elem` copies the value with
/// `memcpy`, which may tear).
///
/// The kernel stores element `i` at byte `i * round_up(value_size, 8)` (the stride of
/// its inlined array lookup), so a 4-byte value takes 8 bytes of the mapping.
///
/// Invariants: the mapping (`len` bytes, page-aligned, shared with the kernel) is
/// created in [`MmapArray::create`] and unmapped in `Drop` before `fd` closes; only
/// this struct has its address. The kernel keeps the map alive while a program uses
/// it, so the memory stays valid for as long as this struct exists.
pub struct MmapArray {
    ptr: std::ptr::NonNull<u8>,
    len: usize,
    value_size: usize,
    /// Bytes between two elements.
    stride: usize,
    entries: usize,
    fd: OwnedFd,
}

// SAFETY: the mapping is owned by this struct alone (no other Rust value holds its
// address) and is plain shared memory, valid on any thread; moving the owner between
// threads moves the only handle. Not Sync: `write_value` relies on one writer.
unsafe impl Send for MmapArray {}

impl MmapArray {
    /// Creates an array of `entries` values of `value_size` bytes (a multiple of 4)
    /// and maps it read-write. Every value starts zeroed.
    pub fn create(name: &str, value_size: u32, entries: u32) -> io::Result<MmapArray> {
        assert!(value_size.is_multiple_of(4) && value_size > 0, "value size {value_size} is not a multiple of 4");
        let fd = create_map_flags(sys::BPF_MAP_TYPE_ARRAY, name, 4, value_size, entries, sys::BPF_F_MMAPABLE)?;
        // SAFETY: no arguments.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(4096) as usize;
        let stride = (value_size as usize).next_multiple_of(8);
        let bytes = stride * entries as usize;
        let len = bytes.div_ceil(page) * page;
        // SAFETY: a fresh shared mapping of the map's data at offset 0 (what the kernel
        // offers for BPF_F_MMAPABLE arrays); fd is valid; no existing memory is touched.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                0,
            )
        };
        if p == libc::MAP_FAILED {
            let e = io::Error::last_os_error();
            return Err(io::Error::new(e.kind(), format!("mmap of BPF map {name}: {e}")));
        }
        let ptr = std::ptr::NonNull::new(p.cast::<u8>()).ok_or_else(|| io::Error::other("mmap returned null"))?;
        Ok(MmapArray { ptr, len, value_size: value_size as usize, stride, entries: entries as usize, fd })
    }

    pub fn fd(&self) -> &OwnedFd {
        &self.fd
    }

    pub fn entries(&self) -> usize {
        self.entries
    }

    fn word(&self, index: usize) -> &std::sync::atomic::AtomicU32 {
        assert!(index < self.stride * self.entries / 4, "word {index} outside the map");
        // SAFETY: index < len / 4 (checked above), so the offset stays inside the mapping.
        let p = unsafe { self.ptr.as_ptr().add(index * 4) };
        // SAFETY: p is inside the mapping, which is page-aligned, so 4-byte aligned; it
        // lives as long as &self. The kernel side only reads or writes it with aligned
        // 32-bit accesses.
        unsafe { std::sync::atomic::AtomicU32::from_ptr(p.cast()) }
    }

    /// Atomically stores the first 32-bit word of element `slot` (Release: everything
    /// written before, e.g. the adjacency a label entry points at, is visible first).
    pub fn store_u32(&self, slot: usize, v: u32) {
        assert!(slot < self.entries, "element {slot} outside the map");
        self.word(slot * self.stride / 4).store(v, std::sync::atomic::Ordering::Release);
    }

    /// Loads the first 32-bit word of element `slot`.
    pub fn load_u32(&self, slot: usize) -> u32 {
        assert!(slot < self.entries, "element {slot} outside the map");
        self.word(slot * self.stride / 4).load(std::sync::atomic::Ordering::Acquire)
    }

    /// Writes value `slot` with 32-bit stores. A reader running at the same time could
    /// see a mix of old and new words: callers write only slots no program can reach
    /// (see `offload`, the update order).
    pub fn write_value(&mut self, slot: usize, value: &[u8]) {
        assert!(slot < self.entries && value.len() == self.value_size, "slot {slot} or value size");
        for (i, w) in value.chunks_exact(4).enumerate() {
            let v = u32::from_ne_bytes([w[0], w[1], w[2], w[3]]);
            self.word(slot * self.stride / 4 + i).store(v, std::sync::atomic::Ordering::Relaxed);
        }
        std::sync::atomic::fence(std::sync::atomic::Ordering::Release);
    }

    /// Reads value `slot`.
    pub fn read_value(&self, slot: usize, out: &mut [u8]) {
        assert!(slot < self.entries && out.len() == self.value_size, "slot {slot} or value size");
        for (i, w) in out.chunks_exact_mut(4).enumerate() {
            let v = self.word(slot * self.stride / 4 + i).load(std::sync::atomic::Ordering::Acquire);
            w.copy_from_slice(&v.to_ne_bytes());
        }
    }
}

impl Drop for MmapArray {
    fn drop(&mut self) {
        // SAFETY: ptr/len are exactly the mapping made in `create`, unmapped once here;
        // no reference into it outlives &self.
        unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}

/// A per-CPU array map of `u64` counters, read summed over the CPUs.
pub struct PerCpuCounters {
    fd: OwnedFd,
    words: usize,
    ncpus: usize,
}

impl PerCpuCounters {
    /// One element (key 0) of `words` u64 counters per CPU, zeroed.
    pub fn create(name: &str, words: usize) -> io::Result<PerCpuCounters> {
        let fd = create_map(sys::BPF_MAP_TYPE_PERCPU_ARRAY, name, 4, (words * 8) as u32, 1)?;
        Ok(PerCpuCounters { fd, words, ncpus: possible_cpus()? })
    }

    pub fn fd(&self) -> &OwnedFd {
        &self.fd
    }

    /// The counters summed over every CPU.
    pub fn read(&self) -> io::Result<Vec<u64>> {
        let key = 0u32;
        let mut vals = vec![0u64; self.words * self.ncpus];
        // SAFETY: vals holds ncpus * words * 8 bytes, what the kernel writes for a
        // per-CPU map whose value size (a multiple of 8) is words * 8; key outlives it.
        let ret = unsafe {
            sys::bpf_map_lookup_elem(self.fd.as_raw_fd(), (&key as *const u32).cast(), vals.as_mut_ptr().cast())
        };
        if ret < 0 {
            return Err(io::Error::last_os_error());
        }
        let mut sum = vec![0u64; self.words];
        for cpu in vals.chunks_exact(self.words) {
            for (s, v) in sum.iter_mut().zip(cpu) {
                *s += v;
            }
        }
        Ok(sum)
    }
}

/// A per-CPU array map of `entries` elements of `words` u64 counters each (the XDP
/// offload's per-LSP counters: element = label), read whole in batches and summed
/// over the CPUs. The kernel allocates `entries * words * 8` bytes per possible CPU.
pub struct PerCpuArray {
    fd: OwnedFd,
    words: usize,
    entries: u32,
    ncpus: usize,
}

/// Elements per `BPF_MAP_LOOKUP_BATCH` call of [`PerCpuArray::for_each_nonzero`].
pub const LOOKUP_BATCH: u32 = 8192;

impl PerCpuArray {
    /// `entries` zeroed elements of `words` u64 counters per CPU.
    pub fn create(name: &str, words: usize, entries: u32) -> io::Result<PerCpuArray> {
        let fd = create_map(sys::BPF_MAP_TYPE_PERCPU_ARRAY, name, 4, (words * 8) as u32, entries)?;
        Ok(PerCpuArray { fd, words, entries, ncpus: possible_cpus()? })
    }

    pub fn fd(&self) -> &OwnedFd {
        &self.fd
    }

    /// Calls `f(key, sums)` for every element with a non-zero counter, its counters
    /// summed over the CPUs, in key order, reading only the blocks of 8192 elements
    /// (one `BPF_MAP_LOOKUP_BATCH` each) that `block_wanted(first key)` asks for
    /// (reports and scrapes only).
    pub fn for_each_nonzero(
        &self,
        block_wanted: impl Fn(u32) -> bool,
        mut f: impl FnMut(u32, &[u64]),
    ) -> io::Result<()> {
        let per_elem = self.words * self.ncpus;
        let mut keys = vec![0u32; LOOKUP_BATCH as usize];
        let mut vals = vec![0u64; LOOKUP_BATCH as usize * per_elem];
        let mut sum = vec![0u64; self.words];
        let opts =
            sys::bpf_map_batch_opts { sz: std::mem::size_of::<sys::bpf_map_batch_opts>() as _, ..Default::default() };
        for start in (0..self.entries).step_by(LOOKUP_BATCH as usize) {
            if !block_wanted(start) {
                continue;
            }
            // The batch token is the key before the first one read (none for key 0).
            let mut prev = start.wrapping_sub(1);
            let in_batch: *mut u32 = if start == 0 { std::ptr::null_mut() } else { &mut prev };
            let mut out = 0u32;
            let mut count = LOOKUP_BATCH.min(self.entries - start);
            // SAFETY: keys holds LOOKUP_BATCH u32 keys and vals LOOKUP_BATCH values of
            // ncpus * words * 8 bytes (the per-CPU value size the kernel copies for a
            // value size of words * 8), count is at most LOOKUP_BATCH; the batch tokens
            // are u32 like the key; every buffer outlives the call.
            let ret = unsafe {
                sys::bpf_map_lookup_batch(
                    self.fd.as_raw_fd(),
                    in_batch.cast(),
                    (&mut out as *mut u32).cast(),
                    keys.as_mut_ptr().cast(),
                    vals.as_mut_ptr().cast(),
                    &mut count,
                    &opts,
                )
            };
            if ret < 0 {
                let e = if ret == -1 { io::Error::last_os_error() } else { io::Error::from_raw_os_error(-ret) };
                if e.raw_os_error() != Some(libc::ENOENT) {
                    return Err(io::Error::new(e.kind(), format!("BPF_MAP_LOOKUP_BATCH: {e}")));
                }
            }
            for (i, key) in keys.iter().take((count as usize).min(LOOKUP_BATCH as usize)).enumerate() {
                let v = &vals[i * per_elem..(i + 1) * per_elem];
                if v.iter().all(|w| *w == 0) {
                    continue;
                }
                sum.fill(0);
                for cpu in v.chunks_exact(self.words) {
                    for (s, w) in sum.iter_mut().zip(cpu) {
                        *s += w;
                    }
                }
                f(*key, &sum);
            }
        }
        Ok(())
    }
}
