//! `popgo run`: the forwarder on real interfaces over AF_XDP.
//!
//! Checks the options and the interfaces, attaches the MPLS-only XDP program to every
//! port's interface, then hands over to the engine: one pinned worker per queue set,
//! each polling its own AF_XDP sockets (`io::afxdp::queue`) in the one worker loop,
//! with live tables behind the control plane. So the control socket (`--control`),
//! `display popgo statistics`, the two-stage commit and SIGHUP reloads work here as
//! they do in `replay --control`. On SIGINT/SIGTERM (or `--duration`) the workers
//! stop and drain TX, the final report is printed and the programs are detached.
//!
//! No `unsafe` here: the FFI lives in `io::afxdp`, `io::xdp` and `sys::*`.

pub mod lab;
mod opts;

use opts::bad;

pub use opts::{
    check_stats_secs, Offload, RunArgs, RunOpts, DEFAULT_RING_SIZE, DEFAULT_RX_RING_SIZE, MAX_SECS, MIN_STATS_SECS,
};

use crate::cmd::{load_config, runtime, Failure};
use crate::config::Config;
use crate::engine::{self, Live, MakeQueue, Plan, Report, Tables, Tick};
use crate::io::afxdp::queue::{QueueSetup, SocketInfo, XskQueue};
use crate::io::afxdp::{self as xsk, BindMode, PortConfig};
use crate::io::veth::Target;
use crate::io::xdp::{MplsRedirect, PerCpuCounters, XdpMode};
use crate::live::Interval;
use crate::offload::{counters_to_stats, OffloadMaps};
use crate::stats::board::StatsBoard;
use crate::stats::{report, MAX_PORTS};
use anyhow::anyhow;
use serde_json::json;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What `popgo run` needs when it is not root (libbpf 0.3's AF_XDP setup looks the
/// attached program up by id, which takes CAP_SYS_ADMIN).
pub const CAPABILITIES: &str = "CAP_NET_ADMIN + CAP_NET_RAW + CAP_BPF + CAP_IPC_LOCK + CAP_SYS_ADMIN";

/// The error of a failed setup step: `what` says the step, `errno` its cause (already
/// in `what` when `cause_in_what`). Missing privileges and missing devices are usage
/// errors (exit 2); anything else is a runtime failure.
fn setup_failure(what: String, errno: Option<i32>, cause_in_what: bool) -> Failure {
    let msg = match (errno, cause_in_what) {
        (Some(n), false) => format!("{what}: {}", std::io::Error::from_raw_os_error(n)),
        _ => what,
    };
    match errno {
        Some(libc::EPERM) | Some(libc::EACCES) => {
            bad(format!("{msg}: missing privileges (popgo run needs root, or {CAPABILITIES})"))
        }
        Some(libc::ENODEV) | Some(libc::ENXIO) | Some(libc::EEXIST) => bad(msg),
        _ => runtime(anyhow!(msg)),
    }
}

fn failure_for(e: &std::io::Error, what: String) -> Failure {
    if e.kind() == std::io::ErrorKind::AlreadyExists {
        return bad(format!("{what}: {e}"));
    }
    match e.raw_os_error() {
        Some(n) => setup_failure(what, Some(n), false),
        None if e.kind() == std::io::ErrorKind::PermissionDenied => setup_failure(what, Some(libc::EPERM), false),
        None => runtime(anyhow!("{what}: {e}")),
    }
}

/// The interfaces a config attaches: (port index, interface), checked to exist, to be
/// distinct and to have `queues` RX queues.
fn attached_ports(cfg: &Config, queues: u32) -> Result<Vec<(usize, String)>, Failure> {
    if cfg.ports.len() > MAX_PORTS {
        return Err(bad(format!(
            "{} ports in the config; the data plane handles at most {MAX_PORTS}",
            cfg.ports.len()
        )));
    }
    let mut attached: Vec<(usize, String)> = Vec::new();
    for (i, p) in cfg.ports.iter().enumerate() {
        let Some(iface) = &p.iface else { continue };
        if let Some((j, _)) = attached.iter().find(|(_, f)| f == iface) {
            return Err(bad(format!("ports {:?} and {:?} both use interface {iface}", cfg.ports[*j].name, p.name)));
        }
        if crate::io::xdp::ifindex(iface).is_err() {
            return Err(bad(format!("port {:?}: interface {iface:?} does not exist", p.name)));
        }
        if let Some(n) = rx_queue_count(iface) {
            if n < queues {
                return Err(bad(format!(
                    "port {:?}: interface {iface} has {n} RX queue(s), --queues is {queues}",
                    p.name
                )));
            }
        }
        attached.push((i, iface.clone()));
    }
    if attached.is_empty() {
        return Err(bad("no port in the config names an interface (`iface = ...`); nothing to run on".into()));
    }
    Ok(attached)
}

/// Number of RX queues of `iface` as sysfs shows it (None if unreadable).
fn rx_queue_count(iface: &str) -> Option<u32> {
    let dir = std::fs::read_dir(format!("/sys/class/net/{iface}/queues")).ok()?;
    Some(dir.filter_map(Result::ok).filter(|e| e.file_name().to_string_lossy().starts_with("rx-")).count() as u32)
}

/// The warning for an out port whose device would drop the frames the offload
/// redirects into it, or cannot be checked. A warning rather than an error: which
/// ports receive offloaded frames changes with every commit (a port may only ever
/// receive), the peer's settings may change after the check, and a peer in another
/// namespace cannot be checked at all.
fn redirect_warning(port: &str, iface: &str) -> Option<String> {
    const LOSS: &str =
        "the kernel drops frames the offload redirects to it (veth_xdp_xmit) and popgo counts them as sent";
    match crate::io::veth::redirect_target(iface) {
        Ok(Target::NotVeth) | Ok(Target::Ready { .. }) => None,
        Ok(Target::NoNapi { peer }) => Some(format!(
            "run: port {port:?}: {iface} is a veth whose peer {peer} has no XDP program and GRO off: {LOSS}; \
             fix: `ethtool -K {peer} gro on`, or attach an XDP program to {peer}"
        )),
        Ok(Target::PeerElsewhere { peer_ifindex }) => Some(format!(
            "run: port {port:?}: {iface} is a veth whose peer (ifindex {peer_ifindex}) is in another network \
             namespace, which popgo cannot check: unless that peer has an XDP program or GRO on \
             (`ethtool -K PEER gro on` in its namespace), {LOSS}"
        )),
        Err(e) => Some(format!(
            "run: port {port:?}: cannot check whether {iface} takes redirected frames ({e}): if it is a veth, \
             its peer needs an XDP program or GRO on, or {LOSS}"
        )),
    }
}

/// The AF_XDP queues of a run: worker `w` binds `setups[w]` inside its thread and
/// reports its sockets here.
struct XskQueues {
    setups: Vec<QueueSetup>,
    sockets: Mutex<Vec<SocketInfo>>,
}

impl MakeQueue for XskQueues {
    type Queue = XskQueue;
    type Output = ();

    fn make(&self, w: usize) -> Result<XskQueue, Failure> {
        match XskQueue::new(&self.setups[w]) {
            Ok((q, infos)) => {
                self.sockets.lock().unwrap_or_else(|p| p.into_inner()).extend(infos);
                Ok(q)
            }
            Err(e) if e.errno() == Some(libc::EOPNOTSUPP) && self.setups[w].port_cfg.mode == BindMode::ZeroCopy => {
                Err(bad(format!(
                    "--zero-copy: {e}: this interface's driver has no zero-copy AF_XDP (veth and most virtual \
                     NICs have none); run without --zero-copy"
                )))
            }
            // The socket layer's message already states the cause.
            Err(e) => Err(setup_failure(e.to_string(), e.errno(), true)),
        }
    }

    /// The sockets are closed here, in the worker thread, before the XDP programs are
    /// detached.
    fn finish(&self, _q: XskQueue) {}
}

/// Kernel socket counters of every bound socket.
fn kernel_stats(sockets: &[SocketInfo]) -> Vec<(SocketInfo, xsk::XdpStatistics)> {
    sockets.iter().filter_map(|s| xsk::xdp_statistics(s.fd).ok().map(|k| (s.clone(), k))).collect()
}

/// Entry point of `popgo run`.
pub fn main(a: RunArgs) -> Result<(), Failure> {
    let opts = RunOpts::from_args(&a)?;
    let mut cfg = load_config(&a.config)?;
    let names: Vec<String> = cfg.ports.iter().map(|p| p.name.clone()).collect();
    let device = cfg.device.clone();
    let attached = attached_ports(&cfg, opts.queues)?;
    // Checked before anything is attached: the engine builds them again behind the
    // control plane.
    crate::cmd::build(&cfg)?;
    // Fails without CAP_SYS_RESOURCE (as in the lab) and is not needed when
    // CAP_IPC_LOCK is present (UMEM) and BPF maps are memcg-accounted (>= 5.11).
    let _ = crate::sys::rlimit::raise_memlock();

    // XDP programs first: afxdp's libbpf would otherwise install its own
    // redirect-everything program (io::xdp module docs). Dropping `xdp` detaches them,
    // after the engine has returned and every socket is closed.
    let maps = match opts.offload {
        Some(Offload::Xdp) => {
            let count_lsps = a.lsp_counters == crate::cmd::OnOff::On;
            Some(
                OffloadMaps::create(&attached, count_lsps)
                    .map_err(|e| failure_for(&e, "creating the XDP offload maps".into()))?,
            )
        }
        None => None,
    };
    let mut xdp = Vec::new();
    for (i, iface) in &attached {
        let r = match &maps {
            Some(m) => crate::offload::attach(iface, opts.xdp_native, a.force, *i, m),
            None => MplsRedirect::attach(iface, opts.xdp_native, a.force),
        }
        .map_err(|e| failure_for(&e, format!("port {:?}: attaching the XDP program to {iface}", cfg.ports[*i].name)))?;
        xdp.push(r);
    }
    // The mirror goes to the control plane, which fills it before the first publication;
    // until then every label value is 0 and every MPLS frame goes to the workers.
    let kernel_lsps = maps.as_ref().and_then(|m| m.lsps.clone());
    let (mirror, counters): (Option<Box<dyn crate::ilm::TableMirror>>, Option<PerCpuCounters>) = match maps {
        Some(m) => {
            let (mirror, counters) = m.into_parts();
            (Some(Box::new(mirror)), Some(counters))
        }
        None => (None, None),
    };
    let modes: Vec<(String, XdpMode)> = xdp.iter().map(|x| (x.attachment.ifname.clone(), x.attachment.mode)).collect();
    // Native XDP hands redirected frames to the out device's XDP transmit, which a
    // veth refuses unless its peer runs NAPI; generic XDP uses the ordinary path.
    if opts.offload.is_some() && modes.iter().any(|(_, m)| *m == XdpMode::Native) {
        for (i, iface) in &attached {
            if let Some(w) = redirect_warning(&cfg.ports[*i].name, iface) {
                tracing::warn!("{w}");
            }
        }
    }

    let port_cfg = PortConfig {
        ring_size: opts.ring_size,
        rx_ring_size: opts.rx_ring_size,
        burst: opts.batch,
        tx_budget: opts.tx_budget,
        kick: opts.kick,
        mode: opts.mode,
    };
    let mk = XskQueues {
        setups: (0..opts.workers)
            .map(|w| QueueSetup {
                worker: w,
                queues: (0..opts.queues).filter(|q| *q as usize % opts.workers == w).collect(),
                ports: attached.clone(),
                nports: cfg.ports.len(),
                port_cfg,
                batch: opts.batch,
                drain: opts.tx_drain,
            })
            .collect(),
        sockets: Mutex::new(Vec::new()),
    };
    let plan = Plan {
        workers: opts.workers,
        cores: opts.cores.clone(),
        burst: opts.batch,
        finite: false,
        duration: a.duration.map(Duration::from_secs_f64),
        signals: true,
        metrics: a.metrics.clone(),
        metrics_lsps: a.metrics_lsps,
        ports: names.clone(),
        device: device.clone(),
        mode: "run",
    };
    let tables =
        // The control plane takes the routes over (a big table is held once); the
        // start-up lines only need the ports.
        Tables::Live(Live {
            cfg: {
                let head = cfg.head();
                std::mem::replace(&mut cfg, head)
            },
            socket: a.control.clone(),
            reload_from: Some(a.config.clone()),
            mirror,
        });
    let board = Arc::new(StatsBoard::with_lsp_counting(opts.workers, a.lsp_counters == crate::cmd::OnOff::On));
    // The offload's per-LSP counts join the workers' wherever per-LSP counts are read.
    if let Some(k) = &kernel_lsps {
        let k = Arc::clone(k);
        board.lsps().set_extra(Box::new(move || k.read().unwrap_or_default()));
    }
    let mut interval = (a.stats_interval > 0.0)
        .then(|| Interval::new(names.clone(), Duration::from_secs_f64(a.stats_interval), a.json_stats));
    let mut sockets: Vec<SocketInfo> = Vec::new();
    let mut kernel = Vec::new();
    let on_ready = || {
        let mut s = mk.sockets.lock().unwrap_or_else(|p| p.into_inner()).clone();
        s.sort_by_key(|s| (s.port, s.queue));
        print_start(&s, &cfg, &modes, &opts, &device);
    };
    let ticker = |t: Tick<'_>| {
        if sockets.is_empty() {
            sockets = mk.sockets.lock().unwrap_or_else(|p| p.into_inner()).clone();
        }
        // Read while the sockets are open: the final report uses the last reading.
        kernel = kernel_stats(&sockets);
        if let Some(c) = &counters {
            if let Ok(w) = c.read() {
                t.board.publish_offload(&counters_to_stats(&w));
            }
        }
        let Some(iv) = interval.as_mut() else { return };
        let (ring_full, fill_empty, kdropped) = kernel_sum(&kernel);
        let cur = t.board.total();
        let events = [
            ("fill_ring_starved", cur.fill_ring_starved),
            ("kernel_rx_ring_full", ring_full),
            ("kernel_rx_fill_ring_empty", fill_empty),
            ("kernel_rx_dropped", kdropped),
        ];
        if let Some(line) = iv.tick(t.elapsed, t.board, &events) {
            // A closed stdout (`| head`) must not stop the forwarder or skip the XDP
            // detach.
            let _ = std::io::Write::write_all(&mut std::io::stdout(), format!("{line}\n").as_bytes());
        }
    };
    let rep = engine::forward(&plan, tables, &mk, Arc::clone(&board), on_ready, ticker);
    drop(xdp);
    let mut rep = rep?;
    // The offload's last counters: read once the programs are detached and every run
    // that started before has returned, so none is still counting.
    let offload = match &counters {
        Some(c) => {
            if !crate::io::xdp::wait_for_running_programs() {
                std::thread::sleep(Duration::from_millis(50));
            }
            let s = c
                .read()
                .map(|w| counters_to_stats(&w))
                .map_err(|e| runtime(anyhow!("reading the XDP offload counters: {e}")))?;
            board.publish_offload(&s);
            rep.stats.merge(&s);
            if kernel_lsps.is_some() {
                // The engine read them while the programs still ran.
                rep.lsps = board.lsps().read();
            }
            Some(s)
        }
        None => None,
    };
    print_final(&rep, &names, &device, &opts, &kernel, offload.as_ref(), a.json_stats);
    if rep.panicked > 0 {
        return Err(runtime(anyhow!("{} worker(s) panicked; their counters are missing", rep.panicked)));
    }
    if !rep.stats.balanced() {
        return Err(runtime(anyhow!("accounting mismatch: rx != tx + drops")));
    }
    Ok(())
}

fn print_start(sockets: &[SocketInfo], cfg: &Config, modes: &[(String, XdpMode)], opts: &RunOpts, device: &str) {
    tracing::info!(
        "run: {device}: {} worker(s) on core(s) {:?}, {} queue(s) per port, batch {}, rings rx {} tx {}",
        opts.workers,
        &opts.cores[..opts.workers.min(opts.cores.len())],
        opts.queues,
        opts.batch,
        opts.rx_ring_size,
        opts.ring_size
    );
    for s in sockets {
        let xdp = modes.iter().find(|(i, _)| *i == s.iface).map_or("?", |(_, m)| match (m, opts.offload) {
            (XdpMode::Native, None) => "native",
            (XdpMode::Generic, None) => "generic",
            (XdpMode::Native, Some(_)) => "native with offload",
            (XdpMode::Generic, Some(_)) => "generic with offload",
        });
        tracing::info!(
            "run:   port {:?} {} q{} (worker {}): XDP {xdp}, AF_XDP {} mode",
            cfg.ports[s.port].name,
            s.iface,
            s.queue,
            s.worker,
            if s.zero_copy { "zero-copy" } else { "copy" }
        );
    }
    tracing::info!("run: forwarding; SIGINT/SIGTERM to stop, SIGHUP to reload the config");
}

/// Sum of kernel counters over sockets.
fn kernel_sum(k: &[(SocketInfo, xsk::XdpStatistics)]) -> (u64, u64, u64) {
    k.iter().fold((0, 0, 0), |(a, b, c), (_, s)| (a + s.rx_ring_full, b + s.rx_fill_ring_empty_descs, c + s.rx_dropped))
}

#[allow(clippy::too_many_arguments)] // one call site; each is a separate part of the report
fn print_final(
    rep: &Report<()>,
    names: &[String],
    device: &str,
    opts: &RunOpts,
    kernel: &[(SocketInfo, xsk::XdpStatistics)],
    offload: Option<&crate::stats::WorkerStats>,
    as_json: bool,
) {
    let lat = rep.latency.percentiles();
    let (ring_full, fill_empty, kdropped) = kernel_sum(kernel);
    let fec = |l: u32| rep.fecs.get(&l).cloned();
    let rx_by_port: serde_json::Map<String, serde_json::Value> =
        names.iter().enumerate().map(|(i, n)| (n.clone(), json!(rep.stats.port_rx_pkts[i]))).collect();
    if as_json {
        let v = json!({
            "schema": "popgo.run/1",
            "device": device,
            "workers": opts.workers,
            "queues": opts.queues,
            "batch": opts.batch,
            "rx_packets": rep.stats.rx_pkts,
            "rx_bytes": rep.stats.rx_bytes,
            "rx_by_port": rx_by_port,
            "tx_packets": report::tx_by_port(&rep.stats, names),
            "tx_bytes": rep.stats.tx_bytes,
            "drops": report::drops_by_reason(&rep.stats),
            "balanced": rep.stats.balanced(),
            "elapsed_ns": rep.elapsed_ns,
            "mpps": if rep.elapsed_ns == 0 { 0.0 } else { rep.stats.rx_pkts as f64 * 1e3 / rep.elapsed_ns as f64 },
            "latency_ns": lat,
            "lsp_counters": rep.lsp_counters,
            "lsps": crate::stats::lsp::to_json(&rep.lsps, fec),
            "moves": crate::stats::lsp::moves_to_json(&rep.lsps, names, fec),
            "events": {
                "empty_polls": rep.stats.empty_polls, "rx_wakeups": rep.stats.rx_wakeups,
                "tx_wakeups": rep.stats.tx_wakeups, "fill_ring_starved": rep.stats.fill_ring_starved,
                "ilm_swaps_seen": rep.stats.ilm_swaps_seen,
            },
            "kernel": {"rx_ring_full": ring_full, "rx_fill_ring_empty": fill_empty, "rx_dropped": kdropped},
            "per_worker": rep.workers.iter().map(|w| json!({
                "core": w.core, "pinned": w.pinned, "rx_packets": w.stats.rx_pkts, "tx_packets": w.stats.tx_pkts,
                "dropped": w.stats.dropped_pkts(),
            })).collect::<Vec<_>>(),
            "offload": offload.map(|o| json!({
                "mode": "xdp", "rx_packets": o.rx_pkts, "rx_bytes": o.rx_bytes,
                "tx_packets": report::tx_by_port(o, names), "tx_bytes": o.tx_bytes,
                "drops": report::drops_by_reason(o),
            })),
        });
        println!("{v}");
    } else {
        println!("popgo run: {device}: final report ({} worker(s))", opts.workers);
        print!("{}", report::text_table(&rep.stats, names, rep.elapsed_ns, &lat));
        print!("{}", crate::stats::lsp::to_text(&rep.lsps, crate::stats::lsp::REPORT_TOP, fec));
        print!("{}", crate::stats::lsp::moves_to_text(&rep.lsps, names, crate::stats::lsp::REPORT_TOP, fec));
        println!(
            "{:<24} rx_ring_full {ring_full}, fill_ring_empty {fill_empty}, fill_starved {}",
            "kernel/ring events", rep.stats.fill_ring_starved
        );
        if let Some(o) = offload {
            println!(
                "{:<24} rx {} tx {} dropped {} (included above)",
                "xdp offload",
                o.rx_pkts,
                o.tx_pkts,
                o.dropped_pkts()
            );
        }
    }
}
