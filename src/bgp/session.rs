//! The driver of one peer: its thread runs a [`Peer`] (no I/O) over real sockets and
//! the clock. Connecting runs on a helper thread (bounded by [`CONNECT_TIMEOUT`]);
//! each connection has a reader thread that forwards what it reads. Everything
//! arrives on one channel, so the session wakes when something happens or a timer is
//! due: no polling.

use super::conn::Ctx;
use super::peer::{Action, Peer};
use super::status::Status;
use super::{Options, SessionCfg, Table};
use crate::config::Prefix;
use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, TryRecvError};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// TCP connect timeout: bounds how long a stop waits for a connecting session.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// A write that blocks this long (a peer that stopped reading) ends the session.
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);
/// Read size of a connection's reader thread.
const READ_BUF: usize = 64 * 1024;

/// What a session thread receives: commands from the manager, and what its sockets did.
pub(crate) enum Ev {
    /// Routes changed (prefix -> label, `None`: withdrawn); the table holds them already.
    Routes(Arc<Vec<(Prefix, Option<u32>)>>),
    /// A connection the peer opened to popgo's listener.
    Incoming(TcpStream),
    /// Close with a Cease NOTIFICATION of this subcode (RFC 4486) and end the thread.
    Stop(u8),
    Connected(std::io::Result<TcpStream>),
    Bytes(u64, Vec<u8>),
    Eof(u64, String),
}

pub(crate) struct Session {
    pub cfg: SessionCfg,
    pub opts: Options,
    pub rx: Receiver<Ev>,
    pub tx: Sender<Ev>,
    pub table: Table,
    pub status: Arc<Status>,
}

fn local_v4(s: &TcpStream) -> Ipv4Addr {
    match s.local_addr().map(|a| a.ip()) {
        Ok(IpAddr::V4(a)) => a,
        Ok(IpAddr::V6(a)) => a.to_ipv4_mapped().unwrap_or(Ipv4Addr::UNSPECIFIED),
        Err(_) => Ipv4Addr::UNSPECIFIED,
    }
}

impl Session {
    /// Runs `f` on the peer with its context (status locked, routes read).
    fn step<T>(&self, f: impl FnOnce(&mut Ctx<'_>) -> T) -> Option<T> {
        let routes = self.table.read().unwrap_or_else(|p| p.into_inner());
        let mut out = None;
        self.status.with(self.cfg.peer.address, |st| {
            out = Some(f(&mut Ctx { cfg: &self.cfg, opts: &self.opts, routes: &routes, st }));
        });
        out
    }

    /// The thread's body, until stopped.
    pub fn run(self) {
        let now = Instant::now();
        let Some(mut peer) = self.step(|c| Peer::new(now, c)) else { return };
        if self.cfg.peer.families.is_empty() {
            self.status
                .with(self.cfg.peer.address, |p| p.last_error = Some("no address family enabled for this peer".into()));
        }
        let mut socks: HashMap<u64, TcpStream> = HashMap::new();
        loop {
            self.act(&mut peer, &mut socks);
            let now = Instant::now();
            // While an initial advertisement is in progress, the next batch is encoded
            // as soon as the last one is written, with the events in between.
            let ev = if peer.pumping() {
                match self.rx.try_recv() {
                    Ok(ev) => Ok(ev),
                    Err(TryRecvError::Disconnected) => Err(RecvTimeoutError::Disconnected),
                    Err(TryRecvError::Empty) if peer.deadline().is_some_and(|d| d <= now) => {
                        Err(RecvTimeoutError::Timeout)
                    }
                    Err(TryRecvError::Empty) => {
                        self.step(|c| peer.pump(now, c));
                        continue;
                    }
                }
            } else {
                match peer.deadline().map(|d| d.saturating_duration_since(now)) {
                    Some(w) if w.is_zero() => Err(RecvTimeoutError::Timeout),
                    Some(w) => self.rx.recv_timeout(w),
                    None => self.rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
                }
            };
            if self.handle(&mut peer, &mut socks, ev) {
                return;
            }
        }
    }

    /// Feeds one event to the peer; true when the session ends.
    fn handle(&self, peer: &mut Peer, socks: &mut HashMap<u64, TcpStream>, ev: Result<Ev, RecvTimeoutError>) -> bool {
        let now = Instant::now();
        match ev {
            Err(RecvTimeoutError::Timeout) => self.step(|c| peer.on_timer(now, c)),
            Err(RecvTimeoutError::Disconnected) | Ok(Ev::Stop(_)) => {
                let sub = if let Ok(Ev::Stop(s)) = ev { s } else { 2 };
                self.step(|c| peer.stop(sub, now, c));
                self.act(peer, socks);
                return true;
            }
            Ok(Ev::Routes(ch)) => self.step(|c| peer.on_routes(&ch, now, c)),
            Ok(Ev::Incoming(s)) => self.step(|c| {
                let id = peer.on_incoming(local_v4(&s), now, c);
                self.start_reader(id, &s);
                socks.insert(id, s);
            }),
            Ok(Ev::Connected(Ok(s))) => self.step(|c| {
                let id = peer.on_connected(local_v4(&s), now, c);
                self.start_reader(id, &s);
                socks.insert(id, s);
            }),
            Ok(Ev::Connected(Err(e))) => self.step(|c| peer.on_connect_failed(&e.to_string(), now, c)),
            Ok(Ev::Bytes(id, b)) => self.step(|c| peer.on_bytes(id, &b, now, c)),
            Ok(Ev::Eof(id, why)) => self.step(|c| peer.on_eof(id, &why, now, c)),
        };
        false
    }

    /// Carries out the peer's actions.
    fn act(&self, peer: &mut Peer, socks: &mut HashMap<u64, TcpStream>) {
        while let Some(a) = peer.poll_action() {
            match a {
                Action::Connect => self.connect(),
                Action::Send(id, bytes) => {
                    let failed = match socks.get_mut(&id) {
                        Some(s) => s.write_all(&bytes).err(),
                        None => None,
                    };
                    if let Some(e) = failed {
                        let now = Instant::now();
                        self.step(|c| peer.on_eof(id, &format!("write: {e}"), now, c));
                    }
                }
                Action::Close(id) => {
                    if let Some(s) = socks.remove(&id) {
                        let _ = s.shutdown(std::net::Shutdown::Both);
                    }
                }
            }
        }
    }

    fn start_reader(&self, id: u64, s: &TcpStream) {
        let _ = s.set_nodelay(true);
        let _ = s.set_write_timeout(Some(WRITE_TIMEOUT));
        let (Ok(mut r), tx) = (s.try_clone(), self.tx.clone()) else {
            let _ = self.tx.send(Ev::Eof(id, "socket: cannot clone".into()));
            return;
        };
        let name = format!("popgo-bgp-rd-{}", self.cfg.peer.address);
        let spawned = std::thread::Builder::new().name(name).spawn(move || {
            let mut buf = vec![0u8; READ_BUF];
            loop {
                match r.read(&mut buf) {
                    Ok(0) => break tx.send(Ev::Eof(id, "connection closed by the peer".into())),
                    Ok(n) => {
                        if tx.send(Ev::Bytes(id, buf[..n].to_vec())).is_err() {
                            break Ok(());
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => break tx.send(Ev::Eof(id, format!("read: {e}"))),
                }
            }
        });
        if spawned.is_err() {
            let _ = self.tx.send(Ev::Eof(id, "cannot start a reader thread".into()));
        }
    }

    fn connect(&self) {
        let (to, src, tx) = (
            SocketAddr::new(IpAddr::V4(self.cfg.peer.address), self.opts.connect_port),
            self.cfg.peer.source,
            self.tx.clone(),
        );
        let (key, hops, peer) = (self.cfg.peer.md5_key.clone(), self.cfg.peer.ttl_hops, self.cfg.peer.address);
        let spawned =
            std::thread::Builder::new().name(format!("popgo-bgp-co-{}", self.cfg.peer.address)).spawn(move || {
                let r = (|| {
                    use socket2::{Domain, Protocol, Socket, Type};
                    let sock = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP))?;
                    if let Some(src) = src {
                        sock.bind(&SocketAddr::new(IpAddr::V4(src), 0).into())?;
                    }
                    if let Some(k) = &key {
                        crate::sys::tcpsec::set_md5sig(&sock, peer, k.as_bytes())?;
                    }
                    if let Some(h) = hops {
                        crate::sys::tcpsec::set_gtsm(&sock, h)?;
                    }
                    sock.connect_timeout(&to.into(), CONNECT_TIMEOUT)?;
                    Ok(sock.into())
                })();
                let _ = tx.send(Ev::Connected(r));
            });
        if let Err(e) = spawned {
            let _ = self.tx.send(Ev::Connected(Err(e)));
        }
    }
}
