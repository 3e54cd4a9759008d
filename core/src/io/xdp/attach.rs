//! Attaching XDP programs to interfaces (netlink, through libbpf): the owned
//! attachment that detaches on drop, the MPLS redirect with its XSKMAP, the lab sink.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use libbpf_sys as sys;

use super::asm::XDP_PASS;
use super::maps::map_update;
use super::maps::{check_fd, check_neg_errno, create_map, load_xdp_program};
use super::programs::{count_drop_program, mpls_redirect_program, redirect_rewrite_program};

pub fn ifindex(ifname: &str) -> io::Result<u32> {
    let c = CString::new(ifname).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: c is a valid NUL-terminated string for the duration of the call.
    let idx = unsafe { libc::if_nametoindex(c.as_ptr()) };
    if idx == 0 {
        let e = io::Error::last_os_error();
        return Err(io::Error::new(e.kind(), format!("if_nametoindex({ifname}): {e}")));
    }
    Ok(idx)
}

/// XDP attach mode actually obtained.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum XdpMode {
    /// native / driver mode (`XDP_FLAGS_DRV_MODE`); veth supports it
    Native,
    /// generic / SKB mode (`XDP_FLAGS_SKB_MODE`), the fallback
    Generic,
}

impl XdpMode {
    fn flag(self) -> u32 {
        match self {
            XdpMode::Native => sys::XDP_FLAGS_DRV_MODE,
            XdpMode::Generic => sys::XDP_FLAGS_SKB_MODE,
        }
    }
}

/// Query what is attached (ids are 0 when nothing is).
pub fn query(ifindex: u32) -> io::Result<sys::xdp_link_info> {
    let mut info = sys::xdp_link_info::default();
    // SAFETY: info is a valid, writable xdp_link_info of the size we pass.
    let ret = unsafe {
        sys::bpf_get_link_xdp_info(
            ifindex as i32,
            &mut info,
            std::mem::size_of::<sys::xdp_link_info>() as sys::size_t,
            0,
        )
    };
    check_neg_errno(ret, "bpf_get_link_xdp_info")?;
    Ok(info)
}

/// Remove whatever XDP program is attached in `mode` (no-op if none).
pub fn detach_any(ifindex: u32, mode: XdpMode) -> io::Result<()> {
    // SAFETY: plain integers; fd -1 means "detach".
    let ret = unsafe { sys::bpf_set_link_xdp_fd(ifindex as i32, -1, mode.flag()) };
    check_neg_errno(ret, "bpf_set_link_xdp_fd(detach)")
}

/// An XDP program attached to one interface. Detaches on drop, but only if our
/// program is still the one attached (`XDP_FLAGS_REPLACE` + expected fd), so a
/// newer instance that replaced us is not torn down by our exit.
pub struct XdpAttachment {
    pub ifname: String,
    pub ifindex: u32,
    pub mode: XdpMode,
    /// kernel id of our program (to recognise it in `query` results)
    pub prog_id: u32,
    prog: OwnedFd,
}

/// Kernel id of a loaded program.
pub fn prog_id(prog: &OwnedFd) -> io::Result<u32> {
    let mut info = sys::bpf_prog_info::default();
    let mut len = std::mem::size_of::<sys::bpf_prog_info>() as u32;
    // SAFETY: prog is a valid program fd; info is writable for `len` bytes
    // (the kernel writes at most `len` and updates it).
    let ret = unsafe {
        sys::bpf_obj_get_info_by_fd(prog.as_raw_fd(), (&mut info as *mut sys::bpf_prog_info).cast(), &mut len)
    };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(info.id)
}

/// Name prefix of every program popgo loads: a program with it that is attached
/// already is popgo's own (a SIGKILLed run's) and may be replaced.
pub const OWN_PREFIX: &str = "popgo_";

/// The kernel name of a loaded program (at most 15 bytes).
pub fn prog_name(id: u32) -> io::Result<String> {
    // SAFETY: plain integer; returns a new fd or a negative errno.
    let fd = check_fd(unsafe { sys::bpf_prog_get_fd_by_id(id) }, "bpf_prog_get_fd_by_id")?;
    let mut info = sys::bpf_prog_info::default();
    let mut len = std::mem::size_of::<sys::bpf_prog_info>() as u32;
    // SAFETY: fd is a valid program fd; info is writable for `len` bytes (the kernel
    // writes at most `len` and updates it).
    let ret =
        unsafe { sys::bpf_obj_get_info_by_fd(fd.as_raw_fd(), (&mut info as *mut sys::bpf_prog_info).cast(), &mut len) };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    let bytes: Vec<u8> = info.name.iter().take_while(|c| **c != 0).map(|c| *c as u8).collect();
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

impl XdpAttachment {
    /// Attach `prog` to `ifname`: native mode first, generic as fallback.
    ///
    /// A program attached already is replaced only when it is popgo's own (its name
    /// starts with [`OWN_PREFIX`]: left by a SIGKILLed run) or with `force`;
    /// anything else (another application's program) is an `AlreadyExists` error.
    /// An attach without `XDP_FLAGS_UPDATE_IF_NOEXIST` atomically replaces a program
    /// attached in the same mode; one attached in the *other* mode is detached first
    /// (the kernel refuses native + generic at once with EEXIST).
    pub fn attach(ifname: &str, prog: OwnedFd, try_native: bool, force: bool) -> io::Result<Self> {
        let ifindex = ifindex(ifname)?;
        let info = query(ifindex)?;
        for id in [info.drv_prog_id, info.skb_prog_id, info.hw_prog_id] {
            if id == 0 || force {
                continue;
            }
            let name = prog_name(id).unwrap_or_else(|_| "?".into());
            if !name.starts_with(OWN_PREFIX) {
                return Err(io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    format!(
                        "{ifname} has XDP program {name:?} (id {id}) attached, which is not popgo's; \
                         --force replaces it"
                    ),
                ));
            }
        }
        let modes: &[XdpMode] = if try_native { &[XdpMode::Native, XdpMode::Generic] } else { &[XdpMode::Generic] };
        let mut last_err = None;
        for &mode in modes {
            let other_attached = match mode {
                XdpMode::Native => info.skb_prog_id != 0,
                XdpMode::Generic => info.drv_prog_id != 0,
            };
            if other_attached {
                let other = if mode == XdpMode::Native { XdpMode::Generic } else { XdpMode::Native };
                tracing::info!("xdp: {ifname}: removing stale program attached in {other:?} mode");
                detach_any(ifindex, other)?;
            }
            // SAFETY: prog is a valid XDP program fd owned by us; plain integers.
            let ret = unsafe { sys::bpf_set_link_xdp_fd(ifindex as i32, prog.as_raw_fd(), mode.flag()) };
            match check_neg_errno(ret, "bpf_set_link_xdp_fd(attach)") {
                Ok(()) => {
                    let prog_id = prog_id(&prog)?;
                    return Ok(XdpAttachment { ifname: ifname.to_string(), ifindex, mode, prog_id, prog });
                }
                Err(e) => {
                    tracing::warn!("xdp: {ifname}: {mode:?} attach failed: {e}");
                    last_err = Some(e);
                }
            }
        }
        Err(last_err.expect("at least one mode tried"))
    }

    pub fn prog_fd(&self) -> RawFd {
        self.prog.as_raw_fd()
    }

    /// Detach now (also done by Drop). Only removes our own program:
    /// first with `XDP_FLAGS_REPLACE` + our fd as the expected old program
    /// (atomic in the kernel); if that is refused for any reason other than
    /// "someone else's program is attached" (EEXIST), fall back to query +
    /// compare prog id + plain detach.
    pub fn detach(&mut self) -> io::Result<()> {
        // `sz` must be offsetofend(old_fd) = 12, not size_of (16): libbpf
        // rejects a struct whose bytes past the last known field are not zero,
        // and Rust leaves the trailing padding uninitialized.
        let opts = sys::bpf_xdp_set_link_opts {
            sz: (std::mem::offset_of!(sys::bpf_xdp_set_link_opts, old_fd) + std::mem::size_of::<i32>()) as sys::size_t,
            old_fd: self.prog.as_raw_fd(),
        };
        // SAFETY: opts is initialized up to `sz` bytes; fd -1 = detach; libbpf
        // adds XDP_FLAGS_REPLACE because old_fd is present.
        let ret = unsafe { sys::bpf_set_link_xdp_fd_opts(self.ifindex as i32, -1, self.mode.flag(), &opts) };
        if ret == -libc::EEXIST {
            return check_neg_errno(ret, "detach: another program is attached now, left alone");
        }
        match check_neg_errno(ret, "bpf_set_link_xdp_fd_opts(detach)") {
            Ok(()) => Ok(()),
            Err(e) => {
                let info = query(self.ifindex)?;
                let attached = match self.mode {
                    XdpMode::Native => info.drv_prog_id,
                    XdpMode::Generic => info.skb_prog_id,
                };
                if attached == self.prog_id {
                    detach_any(self.ifindex, self.mode)
                } else {
                    Err(io::Error::new(e.kind(), format!("{e}; attached id {attached} is not ours ({})", self.prog_id)))
                }
            }
        }
    }
}

impl Drop for XdpAttachment {
    fn drop(&mut self) {
        match self.detach() {
            Ok(()) => tracing::info!("xdp: {}: detached ({:?})", self.ifname, self.mode),
            // EEXIST: someone else's program is attached now; leave it alone.
            Err(e) => tracing::warn!("xdp: {}: detach: {e}", self.ifname),
        }
    }
}

/// The MPLS redirect program + its XSKMAP, attached to one interface.
/// Create this BEFORE the afxdp sockets on `ifname` (see module docs).
pub struct MplsRedirect {
    // Field order = drop order: detach first, then close the map.
    pub attachment: XdpAttachment,
    pub xsks_map: OwnedFd,
}

/// Number of XSKMAP slots = max queue id + 1 we can serve. veth in the lab has 1
/// queue; 64 covers real NICs' usual channel counts.
pub const XSKMAP_ENTRIES: u32 = 64;

/// A new XSKMAP of [`XSKMAP_ENTRIES`] slots, named `xsks_map` (the name libbpf looks for).
pub fn create_xsks_map() -> io::Result<OwnedFd> {
    create_map(sys::BPF_MAP_TYPE_XSKMAP, "xsks_map", 4, 4, XSKMAP_ENTRIES)
}

impl MplsRedirect {
    /// Loads the program and attaches it (`force`: also over another application's
    /// program; see [`XdpAttachment::attach`]).
    pub fn attach(ifname: &str, try_native: bool, force: bool) -> io::Result<Self> {
        let xsks_map = create_map(sys::BPF_MAP_TYPE_XSKMAP, "xsks_map", 4, 4, XSKMAP_ENTRIES)?;
        let insns = mpls_redirect_program(xsks_map.as_raw_fd(), XDP_PASS);
        let prog = load_xdp_program("popgo_mpls", &insns)?;
        let attachment = XdpAttachment::attach(ifname, prog, try_native, force)?;
        Ok(MplsRedirect { attachment, xsks_map })
    }

    /// Insert an AF_XDP socket fd at `queue` ourselves. Not needed with afxdp
    /// 0.4 (libbpf does it during `Socket::new`, see module docs), kept for a
    /// future socket layer that inhibits libbpf's program step.
    pub fn insert_socket(&self, queue: u32, xsk_fd: RawFd) -> io::Result<()> {
        let key = queue;
        let val = xsk_fd as u32;
        // SAFETY: key and val are valid u32s matching the map's 4-byte
        // key/value sizes and outlive the call.
        let ret = unsafe {
            sys::bpf_map_update_elem(
                self.xsks_map.as_raw_fd(),
                (&key as *const u32).cast(),
                (&val as *const u32).cast(),
                0,
            )
        };
        if ret < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}

/// Count-and-drop sink (lab only).
pub struct CountSink {
    pub attachment: XdpAttachment,
    pub counts: OwnedFd,
    ncpus: usize,
}

impl CountSink {
    /// Loads the sink under the program name `name` and attaches it (replacing only
    /// popgo's own programs).
    pub fn attach(ifname: &str, try_native: bool, name: &str) -> io::Result<Self> {
        let counts = create_map(sys::BPF_MAP_TYPE_PERCPU_ARRAY, "sink_counts", 4, 8, 2)?;
        let insns = count_drop_program(counts.as_raw_fd());
        let prog = load_xdp_program(name, &insns)?;
        let attachment = XdpAttachment::attach(ifname, prog, try_native, false)?;
        // SAFETY: no arguments; reads /sys/devices/system/cpu/possible.
        let n = unsafe { sys::libbpf_num_possible_cpus() };
        if n <= 0 {
            return Err(io::Error::other("libbpf_num_possible_cpus failed"));
        }
        Ok(CountSink { attachment, counts, ncpus: n as usize })
    }

    /// (non-MPLS frames, MPLS frames) summed over CPUs.
    pub fn read(&self) -> io::Result<(u64, u64)> {
        let mut out = [0u64; 2];
        for key in 0u32..2 {
            // per-CPU values: one 8-byte slot per possible CPU
            let mut vals = vec![0u64; self.ncpus];
            // SAFETY: vals has ncpus * 8 bytes, which is what the kernel writes
            // for a per-CPU map with 8-byte values; key outlives the call.
            let ret = unsafe {
                sys::bpf_map_lookup_elem(self.counts.as_raw_fd(), (&key as *const u32).cast(), vals.as_mut_ptr().cast())
            };
            if ret < 0 {
                return Err(io::Error::last_os_error());
            }
            out[key as usize] = vals.iter().sum();
        }
        Ok((out[0], out[1]))
    }
}

/// [`redirect_rewrite_program`] attached to `iface`, redirecting to interface `to`
/// (lab only). Dropping the attachment detaches it; the devmap fd is returned with it.
pub fn attach_redirect_reference(
    iface: &str,
    to: &str,
    dst: [u8; 6],
    src: [u8; 6],
) -> io::Result<(XdpAttachment, OwnedFd)> {
    let devmap = create_map(sys::BPF_MAP_TYPE_DEVMAP, "lab_redirect", 4, 4, 1)?;
    map_update(&devmap, &0u32.to_ne_bytes(), &ifindex(to)?.to_ne_bytes())?;
    let prog = load_xdp_program("popgo_labredir", &redirect_rewrite_program(devmap.as_raw_fd(), dst, src))?;
    Ok((XdpAttachment::attach(iface, prog, true, false)?, devmap))
}
