//! One peer without I/O: its connections ([`Conn`]), connection collisions (RFC 4271
//! section 6.8), the connect retry and the idle hold timer with exponential backoff
//! for a peer whose session keeps going down (RFC 4271 section 8.1.1,
//! DampPeerOscillations). The driver (`session`) turns [`Action`]s into socket calls
//! and reports back what the sockets did; the clock is a parameter.
//!
//! Damping: a session that goes down after less than [`Options::stable_for`] in
//! Established does not reset the delay before the next connection: the delay doubles
//! (1 s, 2, 4 ... up to [`Options::retry_max`]), so a peer that keeps sending what
//! makes popgo reset cannot make the session flap faster than that.

use super::conn::{Closed, Conn, Ctx};
use super::status::State;
use std::collections::VecDeque;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

/// What the driver must do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Open a TCP connection to the peer; report with `on_connected` / `on_connect_failed`.
    Connect,
    /// Write these bytes on connection `id`.
    Send(u64, Vec<u8>),
    /// Close connection `id` (after the bytes sent before).
    Close(u64),
}

pub struct Peer {
    conns: Vec<(u64, Conn)>,
    next_id: u64,
    connecting: bool,
    /// When to connect next (`None`: not scheduled: idle forever, or a connection runs).
    retry_at: Option<Instant>,
    delay: Duration,
    retry_max: Duration,
    established_at: Option<Instant>,
    actions: VecDeque<Action>,
}

impl Peer {
    /// A peer that connects at `now`.
    pub fn new(now: Instant, c: &Ctx<'_>) -> Peer {
        Peer {
            conns: Vec::new(),
            next_id: 1,
            connecting: false,
            retry_at: (!c.cfg.peer.families.is_empty()).then_some(now),
            delay: c.opts.retry_initial,
            retry_max: c.opts.retry_max,
            established_at: None,
            actions: VecDeque::new(),
        }
    }

    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// The next time [`Self::on_timer`] must run.
    pub fn deadline(&self) -> Option<Instant> {
        self.conns.iter().filter_map(|(_, c)| c.deadline()).chain(self.retry_at).min()
    }

    /// The state `display bgp peer` shows: the most advanced connection's.
    pub fn state(&self) -> State {
        let best = self.conns.iter().map(|(_, c)| c.state() as u8).max();
        match best {
            Some(s) => State::ALL[usize::from(s) - 1],
            None if self.connecting => State::Connect,
            None if self.retry_at.is_some() => State::Active,
            None => State::Idle,
        }
    }

    pub fn on_timer(&mut self, now: Instant, c: &mut Ctx<'_>) {
        for i in 0..self.conns.len() {
            self.conns[i].1.on_timer(now, c);
        }
        if self.retry_at.is_some_and(|t| now >= t) && self.conns.is_empty() && !self.connecting {
            self.retry_at = None;
            self.connecting = true;
            c.st.connects += 1;
            self.actions.push_back(Action::Connect);
        }
        self.settle(now, c);
    }

    pub fn on_connected(&mut self, local: Ipv4Addr, now: Instant, c: &mut Ctx<'_>) -> u64 {
        self.connecting = false;
        self.add(true, local, now, c)
    }

    pub fn on_connect_failed(&mut self, why: &str, now: Instant, c: &mut Ctx<'_>) {
        self.connecting = false;
        c.st.connect_failures += 1;
        // A wrong or missing TCP MD5 key at either end drops the segments silently
        // (RFC 2385 section 2.0): the connect times out.
        let hint = if c.cfg.peer.md5_key.is_some() { " (TCP MD5 on: check the password at both ends)" } else { "" };
        let text = format!("connect: {why}{hint}");
        if c.st.connect_failures.is_power_of_two() {
            tracing::warn!("bgp: peer {}: {text} ({} failures)", c.cfg.peer.address, c.st.connect_failures);
        }
        c.st.last_error = Some(text);
        if self.conns.is_empty() {
            self.schedule(now);
        }
        self.settle(now, c);
    }

    /// The peer connected to popgo's listener. RFC 4271 section 6.8: with a session
    /// Established the new connection is refused (Cease 7); otherwise it proceeds next
    /// to the others, and the OPENs decide.
    pub fn on_incoming(&mut self, local: Ipv4Addr, now: Instant, c: &mut Ctx<'_>) -> u64 {
        let id = self.add(false, local, now, c);
        if self.conns.iter().any(|(i, x)| *i != id && x.state() == State::Established) {
            self.conn(id).cease(7, now, c);
        }
        self.settle(now, c);
        id
    }

    pub fn on_bytes(&mut self, id: u64, data: &[u8], now: Instant, c: &mut Ctx<'_>) {
        if let Some(i) = self.index(id) {
            self.conns[i].1.on_bytes(data, now, c);
            self.resolve(id, now, c);
        }
        self.settle(now, c);
    }

    pub fn on_eof(&mut self, id: u64, why: &str, now: Instant, c: &mut Ctx<'_>) {
        if let Some(i) = self.index(id) {
            self.conns[i].1.on_eof(why, c);
        }
        self.settle(now, c);
    }

    /// A connection's initial advertisement has more to send ([`Self::pump`]).
    pub fn pumping(&self) -> bool {
        self.conns.iter().any(|(_, c)| c.pumping())
    }

    /// The next batch of each initial advertisement in progress.
    pub fn pump(&mut self, now: Instant, c: &mut Ctx<'_>) {
        for (_, conn) in &mut self.conns {
            conn.pump(now, c);
        }
        self.settle(now, c);
    }

    /// Route changes from a commit, for the Established connection.
    pub fn on_routes(&mut self, changes: &[(crate::config::Prefix, Option<u32>)], now: Instant, c: &mut Ctx<'_>) {
        for (_, conn) in &mut self.conns {
            conn.apply(changes, now, c);
        }
        self.settle(now, c);
    }

    /// Cease (RFC 4486 `sub`) on every connection; nothing is scheduled after.
    pub fn stop(&mut self, sub: u8, now: Instant, c: &mut Ctx<'_>) {
        for (_, conn) in &mut self.conns {
            conn.cease(sub, now, c);
        }
        self.settle(now, c);
        self.retry_at = None;
    }

    fn add(&mut self, outgoing: bool, local: Ipv4Addr, now: Instant, c: &mut Ctx<'_>) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        self.retry_at = None;
        self.conns.push((id, Conn::new(outgoing, local, now, c)));
        self.settle(now, c);
        id
    }

    fn index(&self, id: u64) -> Option<usize> {
        self.conns.iter().position(|(i, _)| *i == id)
    }

    fn conn(&mut self, id: u64) -> &mut Conn {
        let i = self.index(id).expect("a live connection id");
        &mut self.conns[i].1
    }

    /// RFC 4271 section 6.8, after connection `id` saw the peer's OPEN: against an
    /// Established one it closes; against another in OpenConfirm, the connection
    /// opened by the speaker with the higher BGP identifier stays.
    fn resolve(&mut self, id: u64, now: Instant, c: &mut Ctx<'_>) {
        let Some(i) = self.index(id) else { return };
        let me = &self.conns[i].1;
        if me.closed().is_some() || !matches!(me.state(), State::OpenConfirm | State::Established) {
            return;
        }
        let Some(remote) = me.remote_id() else { return };
        let local_wins = u32::from(me.local_id) > u32::from(remote);
        let mut close = Vec::new();
        for (oid, o) in &self.conns {
            if *oid == id || o.closed().is_some() {
                continue;
            }
            match o.state() {
                State::Established if me.state() != State::Established => close.push(id),
                State::OpenSent if me.state() == State::Established => close.push(*oid),
                State::OpenConfirm | State::Established => {
                    // Keep the connection the higher identifier opened.
                    let keep_outgoing = local_wins;
                    let loser = if me.outgoing == keep_outgoing { *oid } else { id };
                    close.push(loser);
                }
                _ => {}
            }
        }
        for l in close {
            if let Some(j) = self.index(l) {
                self.conns[j].1.cease(7, now, c);
            }
        }
    }

    /// Moves output and ends into actions, forgets closed connections and schedules
    /// the next connection when none is left.
    fn settle(&mut self, now: Instant, c: &mut Ctx<'_>) {
        let mut ended: Option<Closed> = None;
        let mut k = 0;
        while k < self.conns.len() {
            let (id, conn) = &mut self.conns[k];
            let out = conn.take_output();
            if !out.is_empty() {
                self.actions.push_back(Action::Send(*id, out));
            }
            if conn.state() == State::Established && self.established_at.is_none() {
                self.established_at = Some(now);
            }
            if let Some(cl) = conn.closed().cloned() {
                self.actions.push_back(Action::Close(*id));
                self.conns.remove(k);
                if ended.as_ref().is_none_or(|e| !e.established) {
                    ended = Some(cl);
                }
                continue;
            }
            k += 1;
        }
        let st = self.state();
        if st != State::Established {
            if let Some(at) = self.established_at.take() {
                // Still true when another connection took over: then nothing is
                // scheduled below.
                let stable = now.saturating_duration_since(at) >= c.opts.stable_for;
                self.schedule_after(now, stable, ended.as_ref(), c);
            } else if let Some(e) = &ended {
                self.schedule_after(now, false, Some(e), c);
            }
        }
        c.st.set_state(self.state(), now);
    }

    fn schedule_after(&mut self, now: Instant, stable: bool, ended: Option<&Closed>, c: &Ctx<'_>) {
        if !self.conns.is_empty() || self.connecting {
            return;
        }
        match ended.and_then(|e| e.idle) {
            Some(None) => self.retry_at = None,
            Some(Some(d)) => self.retry_at = Some(now + d),
            None => {
                if stable {
                    self.delay = c.opts.retry_initial;
                }
                self.schedule(now);
            }
        }
    }

    /// The next connection after the current delay, which doubles for the one after
    /// (reset first when the session was stable).
    fn schedule(&mut self, now: Instant) {
        self.retry_at = Some(now + self.delay);
        self.delay = (self.delay * 2).min(self.retry_max);
    }
}
