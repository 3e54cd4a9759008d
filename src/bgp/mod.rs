//! The BGP speaker: advertises every `network` with its local label to the configured
//! peers (RFC 8277 IPv4 labeled unicast, RFC 4798 6PE over IPv4 sessions, RFC 4760
//! multiprotocol, RFC 6793 4-octet AS), next hop self. Routes received are accepted,
//! counted and shown, never installed.
//!
//! Threads: a manager thread (`popgo-bgp`) owns the sessions and the listener; one
//! thread per peer drives its session (`session`, over the I/O-free `peer` and
//! `conn`). The control thread feeds the manager after each commit with [`Adverts`]
//! (peers, local AS and router ID, and the routes the commit changed, with the labels
//! the committed snapshot holds); the manager applies them to the shared [`Table`] and
//! each session updates its peer's Adj-RIB-Out from the same changes: a one-route
//! commit costs the same at 1k and at 1M routes. Nothing here touches the data path: sessions run over the host's TCP stack
//! (in `popgo run`, the XDP program passes non-MPLS frames to the kernel).
//!
//! Message encoding and decoding: [`msg`] (netgauze-bgp-pkt).

mod conn;
pub mod msg;
mod peer;
mod session;
pub mod status;

use crate::config::{Config, Families, Peer, Prefix};
pub use crate::config::{LimitAction, RouteLimit};
use session::{Ev, Session};
pub use status::{PeerStatus, State, Status};
use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, RwLock};
use std::thread::JoinHandle;
use std::time::Duration;

/// The routes advertised: each network's prefix and local label.
pub type Routes = BTreeMap<Prefix, u32>;
/// The speaker's routes, shared by the manager (which applies each commit's changes)
/// and the sessions (which read them when a session comes up).
pub type Table = Arc<RwLock<Routes>>;
/// What a commit changed: prefix -> its new label, or `None` when it is no longer
/// advertised.
pub type Changes = Vec<(Prefix, Option<u32>)>;

/// RFC 4271: the BGP port.
pub const BGP_PORT: u16 = 179;
/// How often the manager looks for incoming connections when no command arrives.
const ACCEPT_POLL: Duration = Duration::from_millis(50);

/// Speaker settings that are not in the config file.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// Port connected to on each peer.
    pub connect_port: u16,
    /// Port listened on (all local addresses) for peers that connect, unless the
    /// config's `[bgp] listen` names an address and port; `None`: connect only (when
    /// the config names none). Binding 179 needs root or CAP_NET_BIND_SERVICE; a
    /// failure is logged and the speaker connects only.
    pub listen_port: Option<u16>,
    /// Hold time proposed in OPEN (s): RFC 4271 section 10 suggests 90.
    pub hold_time_s: u16,
    /// First delay before connecting again; doubles after each failure, and after each
    /// session that went down sooner than `stable_for`, up to `retry_max`.
    pub retry_initial: Duration,
    pub retry_max: Duration,
    /// A session Established at least this long resets the delay when it goes down
    /// (RFC 4271 section 8.1.1 damping of oscillating peers).
    pub stable_for: Duration,
    /// Delay before connecting again after the route limit closed the session (VRP:
    /// 30 s when no idle-timeout is set).
    pub limit_restart: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            connect_port: BGP_PORT,
            listen_port: Some(BGP_PORT),
            hold_time_s: 90,
            retry_initial: Duration::from_secs(1),
            retry_max: Duration::from_secs(30),
            stable_for: Duration::from_secs(60),
            limit_restart: Duration::from_secs(30),
        }
    }
}

/// A peer as a session runs it: the configured families resolved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerCfg {
    pub address: Ipv4Addr,
    pub asn: u32,
    pub source: Option<Ipv4Addr>,
    pub families: Families,
    pub route_limit: Option<RouteLimit>,
    /// TCP MD5 key (RFC 2385).
    pub md5_key: Option<String>,
    /// GTSM (RFC 5082): the most hops the peer may be away.
    pub ttl_hops: Option<u8>,
}

/// The settings a session runs with (a change restarts it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SessionCfg {
    pub peer: PeerCfg,
    pub local_as: u32,
    pub router_id: Option<Ipv4Addr>,
    /// The VPN instances' families: (VRF id, IPv4?, RD and export targets). A change
    /// restarts the session, whose peer then learns the routes again.
    pub vpns: Vec<(u16, bool, msg::VpnAttrs)>,
}

/// What the speaker should advertise, and to whom: sent by the control thread after
/// every commit, with what the commit changed.
#[derive(Clone, Debug, Default)]
pub struct Adverts {
    pub asn: u32,
    pub router_id: Option<Ipv4Addr>,
    pub peers: Vec<Peer>,
    /// Routes changed since the last `Adverts` (all of them in the first).
    pub changes: Changes,
    /// What the VPN routes of each instance family carry.
    pub vpns: Vec<(u16, bool, msg::VpnAttrs)>,
    /// The config's listen address and port (`[bgp] listen`), if any.
    pub listen: Option<std::net::SocketAddrV4>,
}

impl Adverts {
    /// The peers and settings of `cfg` with `changes`.
    pub fn of(cfg: &Config, changes: Changes) -> Adverts {
        let Some(b) = &cfg.bgp else { return Adverts { changes, ..Adverts::default() } };
        let vpns = cfg
            .vpn_instances
            .iter()
            .flat_map(|v| [(true, &v.v4), (false, &v.v6)].map(|(v4, af)| (v.id, v4, af.clone())))
            .filter_map(|(id, v4, af)| {
                let af = af?;
                Some((id, v4, msg::VpnAttrs { rd: af.rd?, targets: af.export }))
            })
            .collect();
        Adverts { asn: b.asn, router_id: b.router_id, peers: b.peers.clone(), changes, vpns, listen: b.listen }
    }
}

enum ToManager {
    Adverts(Adverts),
    Stop,
}

struct Running {
    cfg: SessionCfg,
    tx: mpsc::Sender<Ev>,
    handle: JoinHandle<()>,
}

/// The running speaker; dropping it closes every session (Cease, administrative
/// shutdown) and joins the threads.
pub struct Speaker {
    tx: mpsc::Sender<ToManager>,
    status: Arc<Status>,
    handle: Option<JoinHandle<()>>,
}

impl Speaker {
    pub fn start(opts: Options) -> std::io::Result<Speaker> {
        Self::start_with(opts, Arc::default())
    }

    /// [`Self::start`] reporting into `status` (made before the speaker starts, e.g.
    /// for the metrics endpoint).
    pub fn start_with(opts: Options, status: Arc<Status>) -> std::io::Result<Speaker> {
        let (tx, rx) = mpsc::channel();
        let st = Arc::clone(&status);
        let handle = std::thread::Builder::new().name("popgo-bgp".into()).spawn(move || manager(opts, &rx, &st))?;
        Ok(Speaker { tx, status, handle: Some(handle) })
    }

    /// Advertise `a`'s changes from now on (sessions send only what changed).
    pub fn update(&self, a: Adverts) {
        // The manager only ends when this handle is dropped.
        let _ = self.tx.send(ToManager::Adverts(a));
    }

    pub fn status(&self) -> Arc<Status> {
        Arc::clone(&self.status)
    }
}

impl Drop for Speaker {
    fn drop(&mut self) {
        let _ = self.tx.send(ToManager::Stop);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

fn listen(addr: SocketAddr) -> std::io::Result<TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let sock = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP))?;
    sock.set_reuse_address(true)?;
    sock.bind(&addr.into())?;
    sock.listen(16)?;
    let l: TcpListener = sock.into();
    l.set_nonblocking(true)?;
    Ok(l)
}

/// The speaker's table and how many IPv6 routes it holds (peers on default families
/// get 6PE while there is one).
#[derive(Default)]
struct Local {
    table: Table,
    v6: usize,
}

impl Local {
    /// Applies `changes` to the table: O(changes).
    fn apply(&mut self, changes: &Changes) {
        let mut t = self.table.write().unwrap_or_else(|p| p.into_inner());
        for (p, l) in changes {
            let was = match l {
                Some(l) => t.insert(*p, *l).is_some(),
                None => t.remove(p).is_some(),
            };
            // 6PE's default depends on public IPv6 routes only.
            if !p.is_v4() && p.vrf == 0 && was != l.is_some() {
                if l.is_some() {
                    self.v6 += 1;
                } else {
                    self.v6 -= 1;
                }
            }
        }
    }
}

/// Sets each peer's TCP MD5 key on the listener, and removes those of peers gone or
/// without one, so that their connections are signed from the SYN on (RFC 2385).
fn listener_keys(l: &TcpListener, keyed: &mut HashMap<Ipv4Addr, String>, sessions: &HashMap<Ipv4Addr, Running>) {
    let want: HashMap<Ipv4Addr, String> =
        sessions.iter().filter_map(|(a, r)| Some((*a, r.cfg.peer.md5_key.clone()?))).collect();
    for (a, _) in keyed.iter().filter(|(a, k)| want.get(a) != Some(k)) {
        if let Err(e) = crate::sys::tcpsec::set_md5sig(l, *a, b"") {
            tracing::warn!("bgp: peer {a}: removing its TCP MD5 key from the listener: {e}");
        }
    }
    for (a, k) in want.iter().filter(|(a, k)| keyed.get(a) != Some(k)) {
        if let Err(e) = crate::sys::tcpsec::set_md5sig(l, *a, k.as_bytes()) {
            tracing::error!("bgp: peer {a}: TCP MD5 key on the listener: {e}");
        }
    }
    *keyed = want;
}

fn manager(opts: Options, rx: &mpsc::Receiver<ToManager>, status: &Arc<Status>) {
    let mut sessions: HashMap<Ipv4Addr, Running> = HashMap::new();
    let mut local = Local::default();
    let mut listener: Option<TcpListener> = None;
    // The address the listener is bound to (or failed to bind to: not tried again
    // until the address changes).
    let mut bound: Option<SocketAddr> = None;
    // Peers whose TCP MD5 key is set on the listener.
    let mut keyed: HashMap<Ipv4Addr, String> = HashMap::new();
    let stop = |r: Running, sub: u8| {
        let _ = r.tx.send(Ev::Stop(sub));
        let _ = r.handle.join();
    };
    loop {
        match rx.recv_timeout(ACCEPT_POLL) {
            Ok(ToManager::Adverts(a)) => {
                let t0 = std::time::Instant::now();
                local.apply(&a.changes);
                let changes = Arc::new(a.changes);
                status.set_local(a.asn, a.router_id, Arc::clone(&local.table));
                // Peers removed: Cease, peer de-configured (RFC 4486 subcode 3).
                let gone: Vec<Ipv4Addr> =
                    sessions.keys().filter(|k| !a.peers.iter().any(|p| p.address == **k)).copied().collect();
                for k in gone {
                    if let Some(r) = sessions.remove(&k) {
                        stop(r, 3);
                    }
                    status.remove(k);
                }
                for p in &a.peers {
                    let peer = PeerCfg {
                        address: p.address,
                        asn: p.asn,
                        source: p.source,
                        families: p.effective_families(local.v6 > 0),
                        route_limit: p.route_limit,
                        md5_key: p.password.as_ref().map(|k| k.key.clone()),
                        ttl_hops: p.ttl_hops,
                    };
                    let cfg = SessionCfg { peer, local_as: a.asn, router_id: a.router_id, vpns: a.vpns.clone() };
                    match sessions.get(&p.address) {
                        Some(r) if r.cfg == cfg => {
                            if !changes.is_empty() {
                                let _ = r.tx.send(Ev::Routes(Arc::clone(&changes)));
                            }
                            continue;
                        }
                        // Changed settings: Cease, other configuration change (6).
                        Some(_) => {
                            if let Some(r) = sessions.remove(&p.address) {
                                stop(r, 6);
                            }
                        }
                        None => {}
                    }
                    status.insert(PeerStatus::new(p.address, p.asn, cfg.peer.families));
                    let (tx, srx) = mpsc::channel();
                    let s = Session {
                        cfg: cfg.clone(),
                        opts,
                        rx: srx,
                        tx: tx.clone(),
                        table: Arc::clone(&local.table),
                        status: Arc::clone(status),
                    };
                    match std::thread::Builder::new().name(format!("popgo-bgp-{}", p.address)).spawn(move || s.run()) {
                        Ok(handle) => {
                            sessions.insert(p.address, Running { cfg, tx, handle });
                        }
                        Err(e) => tracing::error!("bgp: peer {}: cannot start its session thread: {e}", p.address),
                    }
                }
                let want = a
                    .listen
                    .map(SocketAddr::V4)
                    .or_else(|| opts.listen_port.map(|port| SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port)));
                if !sessions.is_empty() && want != bound {
                    listener = None;
                    keyed.clear();
                    bound = want;
                    if let Some(addr) = want {
                        match listen(addr) {
                            Ok(l) => {
                                tracing::info!("bgp: listening on {addr}");
                                listener = Some(l);
                            }
                            Err(e) => tracing::warn!("bgp: cannot listen on {addr} ({e}); connecting to peers only"),
                        }
                    }
                }
                if let Some(l) = &listener {
                    listener_keys(l, &mut keyed, &sessions);
                }
                status.record_apply(t0.elapsed().as_nanos() as u64);
            }
            Ok(ToManager::Stop) | Err(RecvTimeoutError::Disconnected) => break,
            Err(RecvTimeoutError::Timeout) => {}
        }
        while let Some(l) = &listener {
            match l.accept() {
                Ok((stream, from)) => {
                    let IpAddr::V4(a) = from.ip() else { continue };
                    match sessions.get(&a) {
                        Some(r) => {
                            let _ = stream.set_nonblocking(false);
                            if let Some(h) = r.cfg.peer.ttl_hops {
                                if let Err(e) = crate::sys::tcpsec::set_gtsm(&stream, h) {
                                    tracing::warn!("bgp: peer {a}: GTSM on an incoming connection: {e}");
                                }
                            }
                            let _ = r.tx.send(Ev::Incoming(stream));
                        }
                        // RFC 4271 section 8.2.1.1: connections from unconfigured
                        // addresses are refused (and counted).
                        None => {
                            status.count_refused();
                            tracing::debug!("bgp: connection from {from} refused: not a configured peer");
                        }
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    tracing::warn!("bgp: accept: {e}");
                    break;
                }
            }
        }
    }
    // Administrative shutdown (RFC 4486 subcode 2): tell every session first, then
    // wait for them.
    let all: Vec<Running> = sessions.into_values().collect();
    for r in &all {
        let _ = r.tx.send(Ev::Stop(2));
    }
    for r in all {
        let _ = r.handle.join();
    }
}

#[cfg(test)]
mod fsm_tests;
#[cfg(test)]
mod tests;
