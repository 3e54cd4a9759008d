//! What the speaker's sessions report: state, counters, received routes. Written by the
//! session threads, read by `display bgp ...`, `display popgo statistics` and the
//! metrics endpoint; never by a worker.

use super::msg::LabeledRoute;
use super::Table;
use crate::config::{Families, Family, Prefix};
use std::collections::BTreeMap;
use std::fmt::Write;
use std::net::Ipv4Addr;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// RFC 4271 section 8.2.2 states, numbered as the BGP4-MIB's bgpPeerState (RFC 4273).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum State {
    #[default]
    Idle = 1,
    Connect = 2,
    Active = 3,
    OpenSent = 4,
    OpenConfirm = 5,
    Established = 6,
}

impl State {
    pub const ALL: [State; 6] =
        [State::Idle, State::Connect, State::Active, State::OpenSent, State::OpenConfirm, State::Established];

    pub fn name(self) -> &'static str {
        match self {
            State::Idle => "Idle",
            State::Connect => "Connect",
            State::Active => "Active",
            State::OpenSent => "OpenSent",
            State::OpenConfirm => "OpenConfirm",
            State::Established => "Established",
        }
    }
}

/// One peer's session as last reported.
#[derive(Clone, Debug)]
pub struct PeerStatus {
    pub address: Ipv4Addr,
    pub asn: u32,
    pub state: State,
    /// When the session last entered or left Established (VRP's Up/Down time).
    pub since: Instant,
    /// Families negotiated in the current session (configured ones otherwise).
    pub families: Families,
    pub msgs_in: u64,
    pub msgs_out: u64,
    pub updates_in: u64,
    pub updates_out: u64,
    pub notifications_in: u64,
    pub notifications_out: u64,
    /// Malformed messages received that reset the session (each answered with a
    /// NOTIFICATION and a reconnect).
    pub errors: u64,
    /// UPDATEs treated as withdraw (RFC 7606 section 2).
    pub treated_as_withdraw: u64,
    /// Attributes discarded (RFC 7606 section 2).
    pub attributes_discarded: u64,
    /// Routes received past the route limit.
    pub over_limit: u64,
    /// TCP connection attempts made.
    pub connects: u64,
    /// Connection attempts that failed (refused, timed out: a wrong TCP MD5 key).
    pub connect_failures: u64,
    /// Times the session reached Established.
    pub established: u64,
    /// The last NOTIFICATION or connection error, for `display bgp peer`.
    pub last_error: Option<String>,
    /// Routes currently advertised to the peer (Adj-RIB-Out).
    pub prefixes_sent: usize,
    /// Routes received and accepted (never installed in the forwarding tables).
    pub received: BTreeMap<(Family, Prefix), LabeledRoute>,
    /// Routes received in families popgo does not speak (counted, ignored).
    pub ignored: u64,
    pub remote_id: Option<Ipv4Addr>,
    pub local_addr: Option<Ipv4Addr>,
}

impl PeerStatus {
    pub fn new(address: Ipv4Addr, asn: u32, families: Families) -> PeerStatus {
        PeerStatus {
            address,
            asn,
            state: State::Idle,
            since: Instant::now(),
            families,
            msgs_in: 0,
            msgs_out: 0,
            updates_in: 0,
            updates_out: 0,
            notifications_in: 0,
            notifications_out: 0,
            errors: 0,
            treated_as_withdraw: 0,
            attributes_discarded: 0,
            over_limit: 0,
            connects: 0,
            connect_failures: 0,
            established: 0,
            last_error: None,
            prefixes_sent: 0,
            received: BTreeMap::new(),
            ignored: 0,
            remote_id: None,
            local_addr: None,
        }
    }
}

impl PeerStatus {
    /// The session's state is `st` at `now`. RFC 4271 section 8.2.2: a session that
    /// leaves Established drops the routes learned on it; nothing is advertised on it
    /// any more either.
    pub fn set_state(&mut self, st: State, now: std::time::Instant) {
        if (self.state == State::Established) != (st == State::Established) {
            self.since = now;
        }
        self.state = st;
        if st != State::Established {
            self.prefixes_sent = 0;
            self.received.clear();
        }
    }
}

/// The speaker's local settings and every peer's status.
#[derive(Debug, Default)]
pub struct Status {
    peers: Mutex<BTreeMap<Ipv4Addr, PeerStatus>>,
    local: Mutex<Local>,
    /// Connections from addresses that are not configured peers, refused.
    refused: std::sync::atomic::AtomicU64,
    /// The manager's share of the last commit and the largest one (ns): applying its
    /// changes to the speaker's table and handing them to the sessions.
    apply_last_ns: std::sync::atomic::AtomicU64,
    apply_max_ns: std::sync::atomic::AtomicU64,
}

#[derive(Clone, Debug, Default)]
struct Local {
    asn: u32,
    router_id: Option<Ipv4Addr>,
    routes: Table,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Status {
    pub(crate) fn set_local(&self, asn: u32, router_id: Option<Ipv4Addr>, routes: Table) {
        *lock(&self.local) = Local { asn, router_id, routes };
    }

    pub(crate) fn count_refused(&self) {
        self.refused.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    /// Connections refused because they did not come from a configured peer.
    pub fn refused(&self) -> u64 {
        self.refused.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub(crate) fn record_apply(&self, ns: u64) {
        use std::sync::atomic::Ordering::Relaxed;
        self.apply_last_ns.store(ns, Relaxed);
        self.apply_max_ns.fetch_max(ns, Relaxed);
    }

    /// The speaker manager's share of the last commit and the largest one (ns).
    pub fn apply_ns(&self) -> (u64, u64) {
        use std::sync::atomic::Ordering::Relaxed;
        (self.apply_last_ns.load(Relaxed), self.apply_max_ns.load(Relaxed))
    }

    pub(crate) fn insert(&self, p: PeerStatus) {
        lock(&self.peers).insert(p.address, p);
    }

    pub(crate) fn remove(&self, a: Ipv4Addr) {
        lock(&self.peers).remove(&a);
    }

    /// Runs `f` on peer `a`'s status (if it is still configured).
    pub(crate) fn with(&self, a: Ipv4Addr, f: impl FnOnce(&mut PeerStatus)) {
        if let Some(p) = lock(&self.peers).get_mut(&a) {
            f(p);
        }
    }

    /// Every peer's status, by address.
    pub fn peers(&self) -> Vec<PeerStatus> {
        lock(&self.peers).values().cloned().collect()
    }

    /// `display bgp peer` (VRP's columns, plus the prefixes sent).
    pub fn display_peer(&self) -> String {
        let local = lock(&self.local).clone();
        let peers = self.peers();
        let mut s = String::new();
        let _ = writeln!(s, "\n BGP local router ID : {}", local.router_id.map_or("-".into(), |a| a.to_string()));
        let _ = writeln!(s, " Local AS number : {}", local.asn);
        let up = peers.iter().filter(|p| p.state == State::Established).count();
        let _ = writeln!(s, " Total number of peers : {:<18}Peers in established state : {up}\n", peers.len());
        let _ = writeln!(
            s,
            "  {:<15} {:>2} {:>10} {:>8} {:>8} {:>5} {:>9} {:>12} {:>8} {:>8}",
            "Peer", "V", "AS", "MsgRcvd", "MsgSent", "OutQ", "Up/Down", "State", "PrefRcv", "PrefSent"
        );
        for p in &peers {
            let _ = writeln!(
                s,
                "  {:<15} {:>2} {:>10} {:>8} {:>8} {:>5} {:>9} {:>12} {:>8} {:>8}",
                p.address.to_string(),
                4,
                p.asn,
                p.msgs_in,
                p.msgs_out,
                0,
                hms(p.since.elapsed()),
                p.state.name(),
                p.received.len(),
                p.prefixes_sent
            );
        }
        for p in peers.iter().filter(|p| p.last_error.is_some() && p.state != State::Established) {
            let _ = writeln!(s, "\n  {}: {}", p.address, p.last_error.as_deref().unwrap_or_default());
        }
        s
    }

    /// `display bgp [ipv6] routing-table label`: the local networks with their labels
    /// (In) and the routes received (Out), as VRP lists them.
    pub fn display_routing_table(&self, f: Family) -> String {
        let local = lock(&self.local).clone();
        let peers = self.peers();
        let mut rows: Vec<(String, String, String, &str)> = Vec::new();
        for (p, l) in local.routes.read().unwrap_or_else(|p| p.into_inner()).iter().filter(|(p, _)| Family::of(p) == f)
        {
            let nh = if p.is_v4() { "0.0.0.0" } else { "::" };
            rows.push((p.addr.to_string(), nh.into(), format!("{l}/NULL"), "*>"));
        }
        for peer in &peers {
            for ((fam, _), r) in &peer.received {
                if *fam == f {
                    rows.push((r.prefix.addr.to_string(), r.next_hop.to_string(), format!("NULL/{}", r.label), "* "));
                }
            }
        }
        let mut s = String::new();
        let _ = writeln!(s, "\n BGP Local router ID is {}", local.router_id.map_or("-".into(), |a| a.to_string()));
        let _ = writeln!(s, " Status codes: * - valid, > - best, d - damped, x - best external, a - add path,");
        let _ = writeln!(s, "               h - history,  i - internal, s - suppressed, S - Stale");
        let _ = writeln!(s, "               Origin : i - IGP, e - EGP, ? - incomplete\n");
        let _ = writeln!(s, " Total Number of Routes: {}", rows.len());
        let _ = writeln!(s, "        {:<18} {:<18} In/Out Label", "Network", "NextHop");
        for (net, nh, lab, code) in rows {
            let _ = writeln!(s, " {code}     {net:<18} {nh:<18} {lab}");
        }
        s
    }

    /// The BGP lines of `display popgo statistics`.
    pub fn statistics(&self) -> String {
        let mut s = String::new();
        let peers = self.peers();
        let _ = writeln!(s, "BGP speaker ({} peer(s), {} connection(s) refused)", peers.len(), self.refused());
        let (last, max) = self.apply_ns();
        let _ = writeln!(
            s,
            "  a commit's changes on the speaker's thread (table + hand-off to the sessions): last {:.1} us, max {:.1} us",
            last as f64 / 1e3,
            max as f64 / 1e3
        );
        for p in &peers {
            let _ = writeln!(
                s,
                "  peer {}: state {} ({} s), established {} time(s), connects {} (failed {}), updates in {} out {}, \
                 notifications in {} out {}, errors {}, treated as withdraw {}, attributes discarded {}, \
                 prefixes received {} sent {}, ignored {}, over route limit {}",
                p.address,
                p.state.name(),
                p.since.elapsed().as_secs(),
                p.established,
                p.connects,
                p.connect_failures,
                p.updates_in,
                p.updates_out,
                p.notifications_in,
                p.notifications_out,
                p.errors,
                p.treated_as_withdraw,
                p.attributes_discarded,
                p.received.len(),
                p.prefixes_sent,
                p.ignored,
                p.over_limit
            );
        }
        s
    }
}

/// VRP's Up/Down column: hh:mm:ss under a day, then days and hours.
fn hms(d: Duration) -> String {
    let t = d.as_secs();
    if t < 86_400 {
        format!("{:02}:{:02}:{:02}", t / 3600, t / 60 % 60, t % 60)
    } else {
        format!("{}d{:02}h", t / 86_400, t / 3600 % 24)
    }
}
