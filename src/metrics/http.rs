//! A small bounded HTTP/1.1 server for the metrics endpoint: one thread, one `mio`
//! poll over the listener and at most [`Limits::max_conns`] connections.
//!
//! Everything an untrusted local client can make it hold is bounded:
//! - a request's header: at most [`Limits::max_header`] bytes, then `431` and close;
//! - connections: a fixed number of slots; a new connection when all are taken
//!   evicts the oldest one still sending its request (so idle connections cannot lock
//!   out the scraper), or is refused with `503` when every slot is writing a response;
//! - time: a connection has [`Limits::timeout`] to send its request and read the
//!   response, then it is closed;
//! - requests: a token bucket of [`Limits::burst`] refilled at [`Limits::per_sec`];
//!   a request beyond it gets `429` with `Retry-After: 1` (no response is rendered).
//!
//! Only `GET` and `HEAD` are served; every response is `Connection: close`. Memory is
//! at most `max_conns` x (`max_header` + one response), threads are one.

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};
use std::io::{ErrorKind, Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What the server accepts.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub max_conns: usize,
    pub max_header: usize,
    pub timeout: Duration,
    pub per_sec: f64,
    pub burst: f64,
}

impl Limits {
    /// The metrics endpoint's: 16 connections, 8 KiB headers, 5 s per exchange, 20
    /// requests per second (bursts of 20). A Prometheus server scrapes once per 15 s.
    pub const METRICS: Limits =
        Limits { max_conns: 16, max_header: 8192, timeout: Duration::from_secs(5), per_sec: 20.0, burst: 20.0 };
}

/// A response: status code, content type, body.
pub struct Response {
    pub status: u16,
    pub content_type: &'static str,
    pub body: Vec<u8>,
}

/// How often the loop looks at the stop flag when nothing happens.
const TICK: Duration = Duration::from_millis(100);
const LISTENER: Token = Token(usize::MAX);

struct Conn {
    stream: TcpStream,
    /// The request received so far (reading) or the response (writing).
    buf: Vec<u8>,
    /// Bytes of the response written so far; `None` while reading the request.
    sent: Option<usize>,
    deadline: Instant,
}

/// The server over a bound listener; [`Server::run`] serves until `stop`.
pub struct Server {
    poll: Poll,
    listener: TcpListener,
    conns: Vec<Option<Conn>>,
    limits: Limits,
    tokens: f64,
    refilled: Instant,
    /// The last accept failed for want of a resource (file descriptors): retry each
    /// tick, since an edge-triggered listener reports a waiting connection only once.
    retry_accept: bool,
}

impl Server {
    pub fn new(listener: std::net::TcpListener, limits: Limits) -> std::io::Result<Server> {
        listener.set_nonblocking(true)?;
        let mut listener = TcpListener::from_std(listener);
        let poll = Poll::new()?;
        poll.registry().register(&mut listener, LISTENER, Interest::READABLE)?;
        let conns = (0..limits.max_conns).map(|_| None).collect();
        Ok(Server {
            poll,
            listener,
            conns,
            limits,
            tokens: limits.burst,
            refilled: Instant::now(),
            retry_accept: false,
        })
    }

    /// Serves requests with `handler` (given the request target) until `stop` is set.
    pub fn run(mut self, stop: &AtomicBool, mut handler: impl FnMut(&str) -> Response) {
        let mut events = Events::with_capacity(64);
        while !stop.load(Ordering::Acquire) {
            if let Err(e) = self.poll.poll(&mut events, Some(TICK)) {
                if e.kind() != ErrorKind::Interrupted {
                    tracing::error!("metrics endpoint: poll: {e}; endpoint stopped");
                    return;
                }
            }
            for ev in events.iter() {
                match ev.token() {
                    LISTENER => self.accept(),
                    Token(i) => self.serve(i, &mut handler),
                }
            }
            if self.retry_accept {
                self.accept();
            }
            let now = Instant::now();
            for i in 0..self.conns.len() {
                if self.conns[i].as_ref().is_some_and(|c| c.deadline <= now) {
                    self.close(i);
                }
            }
        }
    }

    fn accept(&mut self) {
        self.retry_accept = false;
        loop {
            let mut stream = match self.listener.accept() {
                Ok((s, _)) => s,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == ErrorKind::Interrupted || e.kind() == ErrorKind::ConnectionAborted => continue,
                Err(_) => {
                    self.retry_accept = true;
                    return;
                }
            };
            let slot = match self.conns.iter().position(Option::is_none) {
                Some(i) => i,
                None => {
                    // Evict the oldest connection still sending its request.
                    let oldest = self
                        .conns
                        .iter()
                        .enumerate()
                        .filter_map(|(i, c)| c.as_ref().filter(|c| c.sent.is_none()).map(|c| (c.deadline, i)))
                        .min();
                    match oldest {
                        Some((_, i)) => {
                            self.close(i);
                            i
                        }
                        None => {
                            // Best effort: a fresh socket's send buffer takes this at once.
                            let _ = stream.write(&head(503, "text/plain", 0, None));
                            continue;
                        }
                    }
                }
            };
            if self.poll.registry().register(&mut stream, Token(slot), Interest::READABLE).is_err() {
                continue;
            }
            self.conns[slot] =
                Some(Conn { stream, buf: Vec::new(), sent: None, deadline: Instant::now() + self.limits.timeout });
        }
    }

    fn close(&mut self, i: usize) {
        if let Some(mut c) = self.conns.get_mut(i).and_then(Option::take) {
            let _ = self.poll.registry().deregister(&mut c.stream);
        }
    }

    /// Reads the request (and answers once its header is complete) or writes the
    /// response, whichever the connection is at.
    fn serve(&mut self, i: usize, handler: &mut impl FnMut(&str) -> Response) {
        let Some(c) = self.conns.get_mut(i).and_then(Option::as_mut) else { return };
        if c.sent.is_none() {
            let mut chunk = [0u8; 2048];
            let complete = loop {
                let room = self.limits.max_header - c.buf.len();
                if room == 0 {
                    break Some(Err(431));
                }
                let want = room.min(chunk.len());
                match c.stream.read(&mut chunk[..want]) {
                    Ok(0) => break Some(Err(0)),
                    Ok(n) => {
                        let from = c.buf.len().saturating_sub(3);
                        c.buf.extend_from_slice(&chunk[..n]);
                        let tail = &c.buf[from..];
                        if tail.windows(4).any(|w| w == b"\r\n\r\n") || tail.windows(2).any(|w| w == b"\n\n") {
                            break Some(Ok(()));
                        }
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break None,
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(_) => break Some(Err(0)),
                }
            };
            let out = match complete {
                None => return,
                Some(Err(0)) => return self.close(i),
                Some(Err(status)) => head(status, "text/plain", 0, None),
                Some(Ok(())) => {
                    let allowed = self.take_token();
                    let c = self.conns[i].as_mut().expect("the connection being served");
                    respond(&c.buf, allowed, handler)
                }
            };
            let c = self.conns[i].as_mut().expect("the connection being served");
            c.buf = out;
            c.sent = Some(0);
            if self.poll.registry().reregister(&mut c.stream, Token(i), Interest::WRITABLE).is_err() {
                return self.close(i);
            }
        }
        let c = self.conns[i].as_mut().expect("the connection being served");
        let mut sent = c.sent.unwrap_or(0);
        while sent < c.buf.len() {
            match c.stream.write(&c.buf[sent..]) {
                Ok(0) => return self.close(i),
                Ok(n) => sent += n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    c.sent = Some(sent);
                    return;
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => return self.close(i),
            }
        }
        let _ = c.stream.shutdown(std::net::Shutdown::Write);
        self.close(i);
    }

    /// One request's token from the bucket, if there is one.
    fn take_token(&mut self) -> bool {
        let now = Instant::now();
        let dt = now.duration_since(self.refilled).as_secs_f64();
        self.refilled = now;
        self.tokens = (self.tokens + dt * self.limits.per_sec).min(self.limits.burst);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// The response to a complete request header `req`.
fn respond(req: &[u8], allowed: bool, handler: &mut impl FnMut(&str) -> Response) -> Vec<u8> {
    let first = req.split(|b| *b == b'\n').next().unwrap_or_default();
    let first = std::str::from_utf8(first).unwrap_or("").trim_end_matches('\r');
    let mut parts = first.split(' ');
    let (method, target, version) = (parts.next(), parts.next(), parts.next());
    let (Some(method), Some(target), Some(version)) = (method, target, version) else {
        return head(400, "text/plain", 0, None);
    };
    if !version.starts_with("HTTP/1.") || parts.next().is_some() {
        return head(400, "text/plain", 0, None);
    }
    if method != "GET" && method != "HEAD" {
        return head(405, "text/plain", 0, Some("Allow: GET, HEAD"));
    }
    if !allowed {
        return head(429, "text/plain", 0, Some("Retry-After: 1"));
    }
    let r = handler(target);
    let mut out = head(r.status, r.content_type, r.body.len(), None);
    if method == "GET" {
        out.extend_from_slice(&r.body);
    }
    out
}

/// A response header of `len` body bytes.
fn head(status: u16, content_type: &str, len: usize, extra: Option<&str>) -> Vec<u8> {
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        503 => "Service Unavailable",
        _ => "",
    };
    let extra = extra.map_or(String::new(), |e| format!("{e}\r\n"));
    format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {len}\r\n{extra}Connection: close\r\n\r\n"
    )
    .into_bytes()
}

/// Spawns the server thread; it stops when `stop` is set.
pub fn spawn(
    server: Server,
    stop: Arc<AtomicBool>,
    handler: impl FnMut(&str) -> Response + Send + 'static,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new().name("popgo-metrics".into()).spawn(move || server.run(&stop, handler))
}
