//! One peer's session: the RFC 4271 finite state machine on its own thread.
//!
//! Idle -> Connect (TCP connect, bound to the configured source) -> Active (waiting
//! out the retry backoff, or an incoming connection the listener hands over) ->
//! OpenSent -> OpenConfirm -> Established. Any error sends the NOTIFICATION its RFC
//! names, counts it, closes the connection and starts over after the backoff (1 s,
//! doubling up to the maximum; reset by a session that reached Established).
//!
//! The thread owns its TCP stream and the routes it has advertised (Adj-RIB-Out); it
//! learns new routes from the manager (`ToSession::Routes`) and reports to
//! [`Status`]. Reads poll every [`POLL`], so commands and timers are seen promptly.

use super::msg::{self, notify, DecodeCtx, Framer, PathCtx, PeerOpen};
use super::status::{State, Status};
use super::{Options, PeerCfg, Routes};
use crate::config::{Families, Family, Prefix};
use netgauze_bgp_pkt::notification::BgpNotificationMessage;
use netgauze_bgp_pkt::BgpMessage;
use std::collections::BTreeMap;
use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::sync::mpsc::{Receiver, RecvTimeoutError, TryRecvError};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long a read waits before the loop looks at commands and timers.
const POLL: Duration = Duration::from_millis(50);
/// TCP connect timeout: bounds how long a stop waits for a connecting session.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// RFC 4271 section 8.2.2: the hold timer while waiting for the peer's OPEN ("a large
/// value", 4 minutes suggested).
const OPEN_HOLD: Duration = Duration::from_secs(240);
/// A write that blocks this long (a peer that stopped reading) ends the session.
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);

/// What the manager tells a session.
pub(crate) enum ToSession {
    /// The routes to advertise now.
    Routes(Arc<Routes>),
    /// A connection the peer opened to popgo's listener.
    Incoming(TcpStream),
    /// Close with a Cease NOTIFICATION of this subcode (RFC 4486) and end the thread.
    Stop(u8),
}

/// The settings a session runs with (a change restarts it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SessionCfg {
    pub peer: PeerCfg,
    pub local_as: u32,
    pub router_id: Option<Ipv4Addr>,
}

/// How a connection ended.
enum End {
    Stop,
    /// Closed; the peer reached Established on it or not.
    Closed {
        established: bool,
    },
}

pub(crate) struct Session {
    cfg: SessionCfg,
    opts: Options,
    rx: Receiver<ToSession>,
    routes: Arc<Routes>,
    status: Arc<Status>,
    /// An incoming connection to switch to (collision resolution, RFC 4271 section 6.8).
    pending_in: Option<TcpStream>,
}

impl Session {
    pub fn new(
        cfg: SessionCfg,
        opts: Options,
        rx: Receiver<ToSession>,
        routes: Arc<Routes>,
        status: Arc<Status>,
    ) -> Session {
        Session { cfg, opts, rx, routes, status, pending_in: None }
    }

    fn addr(&self) -> Ipv4Addr {
        self.cfg.peer.address
    }

    fn set_state(&self, st: State) {
        self.status.with(self.addr(), |p| {
            if (p.state == State::Established) != (st == State::Established) {
                p.since = Instant::now();
            }
            p.state = st;
            // RFC 4271 section 8.2.2: a session that leaves Established drops the
            // routes learned on it; nothing is advertised on it any more either.
            if st != State::Established {
                p.prefixes_sent = 0;
                p.received.clear();
            }
        });
    }

    fn note_error(&self, what: String) {
        tracing::debug!("bgp: peer {}: {what}", self.addr());
        self.status.with(self.addr(), |p| p.last_error = Some(what));
    }

    /// The session thread's body: connect, run, back off, until stopped.
    pub fn run(mut self) {
        let mut backoff = self.opts.retry_initial;
        loop {
            let stream = match self.pending_in.take() {
                Some(s) => s,
                None if self.cfg.peer.families.is_empty() => {
                    self.set_state(State::Idle);
                    self.note_error("no address family enabled for this peer".into());
                    match self.wait(Duration::from_secs(3600)) {
                        Wait::Stop => return,
                        Wait::Incoming(s) => drop(s),
                        Wait::Timeout => {}
                    }
                    continue;
                }
                None => {
                    self.set_state(State::Connect);
                    self.status.with(self.addr(), |p| p.connects += 1);
                    match self.connect() {
                        Ok(s) => s,
                        Err(e) => {
                            self.set_state(State::Active);
                            self.note_error(format!("connect: {e}"));
                            match self.wait(backoff) {
                                Wait::Stop => return,
                                Wait::Incoming(s) => s,
                                Wait::Timeout => {
                                    backoff = (backoff * 2).min(self.opts.retry_max);
                                    continue;
                                }
                            }
                        }
                    }
                }
            };
            match self.connection(stream) {
                End::Stop => return,
                End::Closed { established } => {
                    self.set_state(State::Idle);
                    if established {
                        backoff = self.opts.retry_initial;
                    }
                    if self.pending_in.is_some() {
                        continue;
                    }
                    match self.wait(backoff) {
                        Wait::Stop => return,
                        Wait::Incoming(s) => self.pending_in = Some(s),
                        Wait::Timeout => backoff = (backoff * 2).min(self.opts.retry_max),
                    }
                }
            }
        }
    }

    /// Waits up to `d` for a command: routes are taken in, an incoming connection or a
    /// stop ends the wait.
    fn wait(&mut self, d: Duration) -> Wait {
        let until = Instant::now() + d;
        loop {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Wait::Timeout;
            }
            match self.rx.recv_timeout(left) {
                Ok(ToSession::Routes(r)) => self.routes = r,
                Ok(ToSession::Incoming(s)) => return Wait::Incoming(s),
                Ok(ToSession::Stop(_)) | Err(RecvTimeoutError::Disconnected) => return Wait::Stop,
                Err(RecvTimeoutError::Timeout) => return Wait::Timeout,
            }
        }
    }

    fn connect(&self) -> std::io::Result<TcpStream> {
        use socket2::{Domain, Protocol, Socket, Type};
        let sock = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP))?;
        if let Some(src) = self.cfg.peer.source {
            sock.bind(&SocketAddr::new(IpAddr::V4(src), 0).into())?;
        }
        let to = SocketAddr::new(IpAddr::V4(self.addr()), self.opts.connect_port);
        sock.connect_timeout(&to.into(), CONNECT_TIMEOUT)?;
        Ok(sock.into())
    }

    /// One TCP connection from OPEN to close.
    fn connection(&mut self, stream: TcpStream) -> End {
        let mut c = match Conn::new(stream, self) {
            Ok(c) => c,
            Err(e) => {
                self.note_error(format!("socket: {e}"));
                return End::Closed { established: false };
            }
        };
        let end = c.run(self);
        let established = c.was_established;
        match end {
            Some(End::Stop) => End::Stop,
            _ => End::Closed { established },
        }
    }
}

enum Wait {
    Stop,
    Incoming(TcpStream),
    Timeout,
}

/// One connection's state.
struct Conn {
    stream: TcpStream,
    framer: Framer,
    state: State,
    local: Ipv4Addr,
    local_id: Ipv4Addr,
    peer: Option<PeerOpen>,
    families: Families,
    hold: Option<Duration>,
    hold_deadline: Instant,
    keepalive_due: Option<Instant>,
    /// Adj-RIB-Out: what the peer has been told.
    sent: BTreeMap<Prefix, u32>,
    was_established: bool,
}

impl Conn {
    fn new(stream: TcpStream, s: &Session) -> std::io::Result<Conn> {
        stream.set_read_timeout(Some(POLL))?;
        stream.set_write_timeout(Some(WRITE_TIMEOUT))?;
        stream.set_nodelay(true)?;
        let local = match stream.local_addr()?.ip() {
            IpAddr::V4(a) => a,
            IpAddr::V6(a) => a.to_ipv4_mapped().unwrap_or(Ipv4Addr::UNSPECIFIED),
        };
        s.status.with(s.addr(), |p| p.local_addr = Some(local));
        Ok(Conn {
            stream,
            framer: Framer::default(),
            state: State::Connect,
            local,
            local_id: s.cfg.router_id.unwrap_or(local),
            peer: None,
            families: s.cfg.peer.families,
            hold: None,
            hold_deadline: Instant::now() + OPEN_HOLD,
            keepalive_due: None,
            sent: BTreeMap::new(),
            was_established: false,
        })
    }

    fn enter(&mut self, s: &Session, st: State) {
        self.state = st;
        s.set_state(st);
    }

    fn send(&mut self, s: &Session, m: &BgpMessage) -> bool {
        let bytes = msg::encode(m);
        if let Err(e) = self.stream.write_all(&bytes) {
            s.note_error(format!("write: {e}"));
            return false;
        }
        let update = matches!(m, BgpMessage::Update(_));
        let notif = matches!(m, BgpMessage::Notification(_));
        s.status.with(s.addr(), |p| {
            p.msgs_out += 1;
            p.updates_out += u64::from(update);
            p.notifications_out += u64::from(notif);
        });
        if let Some(h) = self.hold {
            self.keepalive_due = Some(Instant::now() + h / 3);
        }
        true
    }

    /// Sends `n` and closes; `error` counts it as a malformed message received.
    fn fail(&mut self, s: &Session, n: BgpNotificationMessage, why: &str, error: bool) -> Option<End> {
        let (code, sub) = msg::codes(&n);
        if error {
            s.status.with(s.addr(), |p| p.errors += 1);
        }
        s.note_error(format!("sent NOTIFICATION {code}/{sub} ({}): {why}", msg::code_name(code)));
        tracing::warn!("bgp: peer {}: NOTIFICATION {code}/{sub} ({}) sent: {why}", s.addr(), msg::code_name(code));
        self.send(s, &BgpMessage::Notification(n));
        let _ = self.stream.shutdown(std::net::Shutdown::Both);
        Some(End::Closed { established: self.was_established })
    }

    fn run(&mut self, s: &mut Session) -> Option<End> {
        let open = msg::open(s.cfg.local_as, s.opts.hold_time_s, self.local_id, s.cfg.peer.families.iter());
        if !self.send(s, &open) {
            return None;
        }
        self.enter(s, State::OpenSent);
        let mut buf = [0u8; 4096];
        loop {
            // Commands from the manager.
            loop {
                match s.rx.try_recv() {
                    Ok(ToSession::Routes(r)) => {
                        s.routes = r;
                        if self.state == State::Established && !self.sync(s) {
                            return None;
                        }
                    }
                    Ok(ToSession::Incoming(new)) => {
                        if let Some(end) = self.collision(s, new) {
                            return Some(end);
                        }
                    }
                    Ok(ToSession::Stop(sub)) => {
                        self.send(s, &BgpMessage::Notification(notify::cease(sub)));
                        let _ = self.stream.shutdown(std::net::Shutdown::Both);
                        return Some(End::Stop);
                    }
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => return Some(End::Stop),
                }
            }
            // Timers.
            let now = Instant::now();
            if now >= self.hold_deadline {
                return self.fail(s, notify::hold_timer_expired(), "hold timer expired", false);
            }
            if self.keepalive_due.is_some_and(|t| now >= t) && !self.send(s, &BgpMessage::KeepAlive) {
                return None;
            }
            // Bytes.
            match self.stream.read(&mut buf) {
                Ok(0) => {
                    s.note_error("connection closed by the peer".into());
                    return None;
                }
                Ok(n) => self.framer.push(&buf[..n]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted) => {
                    continue
                }
                Err(e) => {
                    s.note_error(format!("read: {e}"));
                    return None;
                }
            }
            loop {
                let frame = match self.framer.next_frame() {
                    Ok(Some(f)) => f,
                    Ok(None) => break,
                    Err(n) => return self.fail(s, n, "malformed message header", true),
                };
                let ctx = DecodeCtx { asn4: self.peer.as_ref().is_some_and(|p| p.asn4) };
                let m = match msg::decode(&frame, ctx) {
                    Ok(m) => m,
                    Err(n) => return self.fail(s, n, "malformed message", true),
                };
                s.status.with(s.addr(), |p| p.msgs_in += 1);
                if let Some(h) = self.hold {
                    self.hold_deadline = Instant::now() + h;
                }
                if let Some(end) = self.on_message(s, m) {
                    return Some(end);
                }
            }
        }
    }

    fn on_message(&mut self, s: &mut Session, m: BgpMessage) -> Option<End> {
        match (self.state, m) {
            (_, BgpMessage::Notification(n)) => {
                let (code, sub) = msg::codes(&n);
                s.status.with(s.addr(), |p| p.notifications_in += 1);
                s.note_error(format!("received NOTIFICATION {code}/{sub} ({})", msg::code_name(code)));
                tracing::info!("bgp: peer {}: NOTIFICATION {code}/{sub} ({}) received", s.addr(), msg::code_name(code));
                Some(End::Closed { established: self.was_established })
            }
            (State::OpenSent, BgpMessage::Open(o)) => self.on_open(s, msg::peer_open(&o)),
            (State::OpenConfirm, BgpMessage::KeepAlive) => {
                self.enter(s, State::Established);
                self.was_established = true;
                s.status.with(s.addr(), |p| {
                    p.established += 1;
                    p.last_error = None;
                });
                tracing::info!("bgp: peer {}: established", s.addr());
                if !self.sync(s) {
                    return Some(End::Closed { established: true });
                }
                // End-of-RIB for each family (RFC 4724 section 2).
                for f in self.families.iter() {
                    if !self.send(s, &msg::withdraw(f, &[])) {
                        return Some(End::Closed { established: true });
                    }
                }
                None
            }
            (State::Established, BgpMessage::KeepAlive) => None,
            (State::Established, BgpMessage::Update(u)) => {
                let c = msg::content(&u);
                let fams = self.families;
                s.status.with(s.addr(), |p| {
                    p.updates_in += 1;
                    p.ignored += c.other as u64;
                    for (f, pfx) in &c.withdrawn {
                        p.received.remove(&(*f, *pfx));
                    }
                    for (f, r) in &c.announced {
                        if fams.contains(*f) {
                            p.received.insert((*f, r.prefix), *r);
                        } else {
                            p.ignored += 1;
                        }
                    }
                });
                None
            }
            (State::Established, BgpMessage::RouteRefresh(_)) => {
                self.sent.clear();
                if self.sync(s) {
                    None
                } else {
                    Some(End::Closed { established: true })
                }
            }
            (st, _) => {
                let n = notify::fsm(st == State::OpenSent, st == State::OpenConfirm);
                self.fail(s, n, &format!("unexpected message in state {}", st.name()), true)
            }
        }
    }

    fn on_open(&mut self, s: &mut Session, o: PeerOpen) -> Option<End> {
        if o.asn != s.cfg.peer.asn {
            let why = format!("peer AS {} is not the configured {}", o.asn, s.cfg.peer.asn);
            return self.fail(s, notify::bad_peer_as(), &why, true);
        }
        if o.id == self.local_id && o.asn == s.cfg.local_as {
            return self.fail(s, notify::bad_bgp_id(), "peer BGP identifier equals ours", true);
        }
        let mut common = Families::NONE;
        for f in o.families.iter().filter(|f| s.cfg.peer.families.contains(**f)) {
            common = common.with(*f, true);
        }
        if common.is_empty() {
            let wanted: Vec<Family> = s.cfg.peer.families.iter().collect();
            return self.fail(s, notify::unsupported_capability(&wanted), "no labeled family in common", true);
        }
        self.families = common;
        s.status.with(s.addr(), |p| {
            p.families = common;
            p.remote_id = Some(o.id);
        });
        // RFC 4271 section 4.2: the smaller hold time; 0 means no keepalives.
        let hold_s = o.hold_s.min(s.opts.hold_time_s);
        self.hold = (hold_s > 0).then(|| Duration::from_secs(u64::from(hold_s)));
        self.hold_deadline = Instant::now() + self.hold.unwrap_or(Duration::from_secs(u64::MAX / 4));
        self.peer = Some(o);
        if !self.send(s, &BgpMessage::KeepAlive) {
            return Some(End::Closed { established: false });
        }
        self.enter(s, State::OpenConfirm);
        if let Some(new) = s.pending_in.take() {
            return self.collision(s, new);
        }
        None
    }

    /// RFC 4271 section 6.8: the peer opened a second connection. Before its OPEN is
    /// known the new one waits; then the connection opened by the speaker with the
    /// higher BGP identifier survives. An Established session always stays.
    fn collision(&mut self, s: &mut Session, mut new: TcpStream) -> Option<End> {
        let cease = msg::encode(&BgpMessage::Notification(notify::cease(7)));
        match (self.state, &self.peer) {
            (State::Established, _) => {
                let _ = new.write_all(&cease);
                None
            }
            (State::OpenConfirm, Some(p)) => {
                // The new connection is the peer's: it survives when the peer's
                // identifier is the higher one, and the current one is closed.
                if u32::from(self.local_id) > u32::from(p.id) {
                    let _ = new.write_all(&cease);
                    None
                } else {
                    self.send(s, &BgpMessage::Notification(notify::cease(7)));
                    let _ = self.stream.shutdown(std::net::Shutdown::Both);
                    s.pending_in = Some(new);
                    Some(End::Closed { established: false })
                }
            }
            _ => {
                s.pending_in = Some(new);
                None
            }
        }
    }

    /// Sends what changed between the Adj-RIB-Out and the routes: withdrawals first,
    /// then announcements, in UPDATEs of at most [`msg::ROUTES_PER_UPDATE`] routes.
    fn sync(&mut self, s: &Session) -> bool {
        let fams = self.families;
        let path = PathCtx {
            local_as: s.cfg.local_as,
            ibgp: s.cfg.local_as == s.cfg.peer.asn,
            asn4: self.peer.as_ref().is_some_and(|p| p.asn4),
        };
        let nh = s.cfg.peer.source.unwrap_or(self.local);
        for f in Family::ALL {
            let gone: Vec<Prefix> = self
                .sent
                .keys()
                .filter(|p| Family::of(p) == f && (!fams.contains(f) || !s.routes.contains_key(p)))
                .copied()
                .collect();
            for chunk in gone.chunks(msg::ROUTES_PER_UPDATE) {
                if !self.send(s, &msg::withdraw(f, chunk)) {
                    return false;
                }
                for p in chunk {
                    self.sent.remove(p);
                }
            }
            if !fams.contains(f) {
                continue;
            }
            let new: Vec<(Prefix, u32)> = s
                .routes
                .iter()
                .filter(|(p, l)| Family::of(p) == f && self.sent.get(p) != Some(l))
                .map(|(p, l)| (*p, *l))
                .collect();
            for chunk in new.chunks(msg::ROUTES_PER_UPDATE) {
                if !self.send(s, &msg::announce(f, chunk, nh, path)) {
                    return false;
                }
                self.sent.extend(chunk.iter().copied());
            }
        }
        let n = self.sent.len();
        s.status.with(s.addr(), |p| p.prefixes_sent = n);
        true
    }
}
