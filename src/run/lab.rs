//! Lab traffic tools over AF_XDP, used by `tools/lab.sh`, `tools/vs-testpmd.sh` and
//! `tests/afxdp.rs` through the `popgo-lab` binary:
//!
//! - [`send`]: transmit the records of a pcap (once or repeated) out of one interface;
//! - [`gen`]: a fast generator of 64-byte MPLS frames (the throughput source);
//! - [`sink`]: attach the count-and-drop XDP program and report frames per second;
//! - [`redirect`]: the in-kernel reference forwarder (XDP: rewrite both MACs, redirect
//!   through a devmap), what `--offload xdp` is measured against.
//!
//! Frames carry 198.18.0.0/15 addresses (RFC 2544) only; they stay on the lab veths.

use crate::io::afxdp::{new_pending, BindMode, KickPolicy, Port, PortConfig, SharedArea};
use crate::io::xdp::{CountSink, MplsRedirect};
use anyhow::{anyhow, Context, Result};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

const RING: u32 = 2048;
const BURST: usize = 64;

fn port_cfg(budget: Option<u32>) -> PortConfig {
    PortConfig {
        ring_size: RING,
        rx_ring_size: RING,
        burst: BURST,
        tx_budget: budget,
        kick: KickPolicy::Backlog,
        mode: BindMode::Auto,
    }
}

fn stop() -> bool {
    crate::sys::signal::stop_requested()
}

/// Transmits the records of `pcap` `repeat` times out of `iface`, `gap` apart (zero:
/// as fast as possible), for at most 30 s or until SIGINT/SIGTERM. Records shorter
/// than an Ethernet header are skipped (the kernel's AF_XDP TX path rejects them).
/// Returns the number of frames sent (handed to the kernel and completed).
pub fn send(iface: &str, pcap: &std::path::Path, repeat: u64, gap: Duration) -> Result<u64> {
    let cap = crate::io::pcap::Capture::open(pcap).with_context(|| pcap.display().to_string())?;
    // Our program first, so that libbpf does not attach its own (io::xdp docs).
    let _prog = MplsRedirect::attach(iface, true, false).with_context(|| format!("attaching XDP to {iface}"))?;
    let mut area = SharedArea::new(2 * RING as usize)?;
    let mut port = Port::new(&area, iface, 0, port_cfg(None))?;
    let mut pending = new_pending(BURST);
    let mut sent = 0u64;
    let mut skipped = 0u64;
    let deadline = Instant::now() + Duration::from_secs(30);
    'outer: for _ in 0..repeat {
        for i in 0..cap.len() {
            if stop() || Instant::now() > deadline {
                break 'outer;
            }
            let pkt = cap.packet(i);
            if pkt.len() < 14 {
                skipped += 1;
                continue;
            }
            loop {
                port.reclaim(&mut area.free);
                if !area.free.is_empty() {
                    break;
                }
                port.kick_tx_if_needed();
                if Instant::now() > deadline || stop() {
                    break 'outer;
                }
            }
            let Some(chunk) = area.free.pop() else { break 'outer };
            let mut f = area.frame(chunk);
            if !f.write(pkt) {
                area.free.push(chunk);
                skipped += 1;
                continue;
            }
            // At most BURST staged: flushed below before it grows past that.
            pending.push_back(f);
            if pending.len() >= BURST || !gap.is_zero() {
                while !pending.is_empty() && Instant::now() < deadline {
                    port.reclaim(&mut area.free);
                    port.tx_burst(&mut pending, BURST);
                    port.kick_tx_if_needed();
                }
            }
            sent += 1;
            if !gap.is_zero() {
                std::thread::sleep(gap);
            }
        }
    }
    // Drain what is queued, with time of its own (the sending may have stopped at the
    // deadline); what still did not leave is not counted as sent.
    let drain = Instant::now() + Duration::from_secs(5);
    while (!pending.is_empty() || port.tx_in_flight > 0) && Instant::now() < drain {
        port.reclaim(&mut area.free);
        port.tx_burst(&mut pending, BURST);
        port.kick_tx_if_needed();
    }
    sent -= (pending.len() + port.tx_in_flight) as u64;
    eprintln!("popgo-lab send: {iface}: {sent} frames sent, {skipped} skipped (shorter than 14 B)");
    drop(pending);
    drop(port);
    drop(area);
    Ok(sent)
}

/// Frame length without FCS: 60 B = the 64 B minimum Ethernet frame.
pub const GEN_FRAME_LEN: usize = 60;

/// One MPLS/IPv4/UDP frame: label `label` (BoS, TTL 64), 198.18.1.1 -> 198.19.1.x.
pub fn gen_frame(dst: &[u8; 6], src: &[u8; 6], label: u32, flow: u16) -> Vec<u8> {
    let mut f = Vec::with_capacity(GEN_FRAME_LEN);
    f.extend_from_slice(dst);
    f.extend_from_slice(src);
    f.extend_from_slice(&0x8847u16.to_be_bytes());
    let lse: u32 = (label << 12) | (1 << 8) | 64;
    f.extend_from_slice(&lse.to_be_bytes());
    let ip_total = (GEN_FRAME_LEN - 18) as u16;
    let mut ip = [0u8; 20];
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&ip_total.to_be_bytes());
    ip[8] = 64;
    ip[9] = 17;
    ip[12..16].copy_from_slice(&[198, 18, 1, 1]);
    ip[16..20].copy_from_slice(&[198, 19, 1, (flow % 250) as u8 + 1]);
    let mut sum: u32 = ip.chunks(2).map(|c| u16::from_be_bytes([c[0], c[1]]) as u32).sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    ip[10..12].copy_from_slice(&(!(sum as u16)).to_be_bytes());
    f.extend_from_slice(&ip);
    f.extend_from_slice(&(10000 + flow).to_be_bytes());
    f.extend_from_slice(&9u16.to_be_bytes());
    f.extend_from_slice(&(ip_total - 20).to_be_bytes());
    f.extend_from_slice(&0u16.to_be_bytes());
    f.resize(GEN_FRAME_LEN, 0x5a);
    f
}

/// Reads the MAC address of `iface` from sysfs.
pub fn iface_mac(iface: &str) -> Result<[u8; 6]> {
    let s = std::fs::read_to_string(format!("/sys/class/net/{iface}/address")).with_context(|| iface.to_string())?;
    parse_mac(s.trim())
}

pub fn parse_mac(s: &str) -> Result<[u8; 6]> {
    let v: Vec<u8> = s
        .split(':')
        .map(|p| u8::from_str_radix(p, 16))
        .collect::<Result<_, _>>()
        .map_err(|_| anyhow!("bad MAC {s:?}"))?;
    v.try_into().map_err(|_| anyhow!("bad MAC {s:?}"))
}

/// Generator options.
pub struct GenOpts {
    pub iface: String,
    pub dst: [u8; 6],
    pub label: u32,
    pub flows: u16,
    pub secs: f64,
    pub count: u64,
    pub core: Option<usize>,
    pub tx_budget: Option<u32>,
    /// Send with the kernel's XDP live-frames mode instead of an AF_XDP socket.
    pub live: bool,
}

/// Frames per live-frames syscall: about 0.1 s at the rates seen here, so the stop
/// flag and the deadline are looked at often enough.
const LIVE_REPEAT: u32 = 1 << 18;

/// [`gen`] through `BPF_PROG_TEST_RUN` live frames (`io::xdp::xdp_live_frames`): one
/// frame (flow 0) sent over and over from the kernel on this CPU, far faster than a
/// copy-mode AF_XDP socket (no skb, no copy into a socket). Every frame is counted as
/// sent: a full ring at the peer drops some, which the sink shows.
fn gen_live(o: &GenOpts) -> Result<u64> {
    use crate::io::xdp;
    let src = iface_mac(&o.iface)?;
    let ifindex = xdp::ifindex(&o.iface)?;
    let f = gen_frame(&o.dst, &src, o.label, 0);
    let prog = xdp::load_xdp_program("popgo_livegen", &xdp::xdp_tx_program(&f))?;
    if let Some(c) = o.core {
        crate::sys::affinity::pin_current(c);
    }
    eprintln!("popgo-lab gen: {} -> {:02x?}, label {}, live frames", o.iface, o.dst, o.label);
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(o.secs);
    let (mut sent, mut last_sent, mut last) = (0u64, 0u64, start);
    while sent < o.count && Instant::now() < deadline && !stop() {
        let n = LIVE_REPEAT.min((o.count - sent).min(u32::MAX as u64) as u32);
        xdp::xdp_live_frames(std::os::fd::AsRawFd::as_raw_fd(&prog), &f, ifindex, n, 64)
            .context("BPF_PROG_TEST_RUN live frames (kernel >= 5.18)")?;
        sent += n as u64;
        let now = Instant::now();
        if now - last >= Duration::from_secs(1) {
            println!(
                "gen t={:.1}s tx={:.3}Mpps",
                (now - start).as_secs_f64(),
                (sent - last_sent) as f64 / (now - last).as_secs_f64() / 1e6
            );
            last_sent = sent;
            last = now;
        }
    }
    let el = start.elapsed().as_secs_f64();
    println!("gen total: sent={sent} avg={:.3}Mpps over {el:.1}s", sent as f64 / el / 1e6);
    Ok(sent)
}

/// Blasts 64-byte MPLS frames out of `iface`; prints per-second rates. Returns frames
/// completed.
pub fn gen(o: &GenOpts) -> Result<u64> {
    if o.live {
        return gen_live(o);
    }
    let src = iface_mac(&o.iface)?;
    let _prog = MplsRedirect::attach(&o.iface, true, false).with_context(|| format!("attaching XDP to {}", o.iface))?;
    let mut area = SharedArea::new(2 * RING as usize)?;
    let mut port = Port::new(&area, &o.iface, 0, port_cfg(o.tx_budget))?;
    // Every frame permanently holds one template (nothing is received into these
    // frames: the fill ring stays empty), so completions are resent as they are.
    let templates: Vec<Vec<u8>> = (0..o.flows.max(1)).map(|i| gen_frame(&o.dst, &src, o.label, i)).collect();
    for (i, &chunk) in area.free.iter().enumerate() {
        area.frame(chunk).write(&templates[i % templates.len()]);
    }
    let mut pending = new_pending(BURST);
    if let Some(c) = o.core {
        crate::sys::affinity::pin_current(c);
    }
    eprintln!("popgo-lab gen: {} -> {:02x?}, label {}, {} flows", o.iface, o.dst, o.label, templates.len());
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(o.secs);
    let (mut completed, mut queued, mut last_completed, mut last) = (0u64, 0u64, 0u64, start);
    let mut iter: u32 = 0;
    loop {
        completed += port.reclaim(&mut area.free) as u64;
        while pending.len() < BURST && queued < o.count {
            let Some(chunk) = area.free.pop() else { break };
            let mut f = area.frame(chunk);
            f.set_len(GEN_FRAME_LEN); // the template written at start is still there
            pending.push_back(f);
            queued += 1;
        }
        let (_, kicked) = port.tx_burst(&mut pending, BURST);
        if !kicked {
            port.kick_tx_if_needed();
        }
        if queued >= o.count && pending.is_empty() && port.tx_in_flight == 0 {
            break;
        }
        iter = iter.wrapping_add(1);
        if iter & 255 == 0 {
            let now = Instant::now();
            if now >= deadline || stop() {
                break;
            }
            if now - last >= Duration::from_secs(1) {
                println!(
                    "gen t={:.1}s tx={:.3}Mpps",
                    (now - start).as_secs_f64(),
                    (completed - last_completed) as f64 / (now - last).as_secs_f64() / 1e6
                );
                last_completed = completed;
                last = now;
            }
        }
    }
    let el = start.elapsed().as_secs_f64();
    println!("gen total: sent={completed} avg={:.3}Mpps over {el:.1}s", completed as f64 / el / 1e6);
    drop(pending);
    drop(port);
    drop(area);
    Ok(completed)
}

/// Forwards every frame arriving on `iface` out of `to` inside the kernel (XDP: both
/// MACs rewritten, `bpf_redirect_map` through a devmap) for `secs` seconds or until
/// SIGINT/SIGTERM; the program is detached at the end.
pub fn redirect(iface: &str, to: &str, dst: [u8; 6], src: [u8; 6], secs: u64) -> Result<()> {
    let (att, _devmap) = crate::io::xdp::attach_redirect_reference(iface, to, dst, src)
        .with_context(|| format!("attaching the reference forwarder to {iface}"))?;
    println!("redirect: {iface} -> {to} in {:?} mode for {secs}s", att.mode);
    let end = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < end && !stop() {
        std::thread::sleep(Duration::from_millis(20));
    }
    drop(att);
    Ok(())
}

/// Counts frames arriving on `iface` with the count-and-drop XDP program for `secs`
/// seconds (or until SIGINT/SIGTERM); prints one line per second and a summary with
/// the median of the active seconds. `ready` is set once the program is attached.
/// `prog_name` is the kernel name of the program (popgo's own names start with
/// `popgo_`; another name makes it a foreign program to popgo).
pub fn sink(iface: &str, secs: u64, prog_name: &str, ready: &AtomicBool) -> Result<(u64, u64)> {
    let sink = CountSink::attach(iface, true, prog_name).with_context(|| format!("attaching the sink to {iface}"))?;
    println!("sink: {iface} counting in {:?} mode for {secs}s", sink.attachment.mode);
    ready.store(true, Ordering::Relaxed);
    let start = Instant::now();
    let mut last = (0u64, 0u64);
    let mut rates = Vec::new();
    for s in 1..=secs {
        let target = start + Duration::from_secs(s);
        while Instant::now() < target && !stop() {
            std::thread::sleep(Duration::from_millis(20));
        }
        if stop() {
            break;
        }
        let c = sink.read()?;
        let d = (c.0 - last.0) + (c.1 - last.1);
        rates.push(d as f64 / 1e6);
        println!("sink t={s}s rx={:.3}Mpps (ip={} mpls={})", d as f64 / 1e6, c.0 - last.0, c.1 - last.1);
        last = c;
    }
    let c = sink.read()?;
    let mut active: Vec<f64> = rates.iter().copied().filter(|r| *r > 0.0).collect();
    active.sort_by(f64::total_cmp);
    let median = active.get(active.len() / 2).copied().unwrap_or(0.0);
    println!("sink total: ip={} mpls={} median_active_second={median:.3}Mpps", c.0, c.1);
    Ok(c)
}

/// What [`prog_cost`] measured: ns per run of the offload program without and with
/// per-LSP counting (mean of the fastest 99%), over every round, and each round's ratio.
pub struct ProgCost {
    pub runs: usize,
    pub without_ns: f64,
    pub with_ns: f64,
    pub round_ratios: Vec<f64>,
    /// Time of one read of the per-LSP counters (every label, batched), and the labels
    /// it returned.
    pub read_ms: f64,
    pub read_labels: usize,
}

/// The mean of the fastest 99% of `v`: the kernel's durations come in steps of its
/// clock (10 ns here), too coarse for a median to see a few ns; the slowest 1%
/// (interrupts, preemption on a shared VM) would swamp a plain mean.
fn trimmed_mean(v: &mut [u32]) -> f64 {
    v.sort_unstable();
    let keep = &v[..v.len() - v.len() / 100];
    if keep.is_empty() {
        return 0.0;
    }
    keep.iter().map(|x| f64::from(*x)).sum::<f64>() / keep.len() as f64
}

/// The cost of per-LSP counting in the XDP offload program: the program for `config`'s
/// tables (every port's devmap entry is `lo`: `BPF_PROG_TEST_RUN` does not redirect)
/// without and with the per-LSP counters, each run `samples` times over every frame of
/// `pcap` per round, the two variants interleaved (their order alternating by round).
/// Only the frames the program forwards count (action `XDP_REDIRECT`).
pub fn prog_cost(config: &std::path::Path, pcap: &std::path::Path, rounds: usize, samples: usize) -> Result<ProgCost> {
    use crate::io::xdp::{self, XDP_PASS, XDP_REDIRECT};
    use crate::offload::{offload_program, FrameLen, OffloadMaps};
    use std::os::fd::AsRawFd;
    let cfg = crate::config::Config::load(config).map_err(|e| anyhow!("config {}: {e}", config.display()))?;
    let snap = crate::ilm::build(&cfg, 0).context("building the tables")?;
    let attached: Vec<(usize, String)> =
        (0..cfg.ports.len().min(crate::stats::MAX_PORTS)).map(|i| (i, "lo".to_string())).collect();
    let maps = OffloadMaps::create(&attached, true).context("creating the offload maps (root)")?;
    let xsks = xdp::create_xsks_map()?;
    let with = maps.program_maps(xsks.as_raw_fd());
    let without = crate::offload::ProgramMaps { lsps: None, ..with };
    let load = |m: &crate::offload::ProgramMaps| {
        xdp::load_xdp_program("popgo_cost", &offload_program(m, 0, XDP_PASS, FrameLen::Subtract))
    };
    let progs = [load(&without)?, load(&with)?];
    let lsps = maps.lsps.clone().ok_or_else(|| anyhow!("no per-LSP counters"))?;
    let (mut mirror, _counters) = maps.into_parts();
    mirror.apply(&snap);
    let cap = crate::io::pcap::Capture::open(pcap).map_err(|e| anyhow!("{}: {e}", pcap.display()))?;
    let frames: Vec<Vec<u8>> = (0..cap.len()).map(|i| cap.packet(i).to_vec()).filter(|f| f.len() >= 14).collect();
    let forwarded: Vec<&Vec<u8>> = frames
        .iter()
        .filter(|f| xdp::test_run(progs[0].as_raw_fd(), f).is_ok_and(|a| a as i32 == XDP_REDIRECT))
        .collect();
    if forwarded.is_empty() {
        return Err(anyhow!("no frame of {} is forwarded by the offload program", pcap.display()));
    }
    let mut all = [Vec::new(), Vec::new()];
    let mut round_ratios = Vec::new();
    for round in 0..rounds {
        let mut this = [Vec::new(), Vec::new()];
        let order = if round % 2 == 0 { [0, 1] } else { [1, 0] };
        for v in order {
            for f in &forwarded {
                for _ in 0..samples {
                    let (act, ns) = xdp::test_run_ns(progs[v].as_raw_fd(), f)?;
                    if act as i32 == XDP_REDIRECT {
                        this[v].push(ns);
                    }
                }
            }
        }
        round_ratios.push(trimmed_mean(&mut this[1]) / trimmed_mean(&mut this[0]).max(1.0));
        for v in 0..2 {
            all[v].append(&mut this[v]);
        }
    }
    let runs = all[0].len();
    let t = Instant::now();
    let read_labels = lsps.read()?.len();
    let read_ms = t.elapsed().as_secs_f64() * 1e3;
    Ok(ProgCost {
        runs,
        without_ns: trimmed_mean(&mut all[0]),
        with_ns: trimmed_mean(&mut all[1]),
        round_ratios,
        read_ms,
        read_labels,
    })
}
