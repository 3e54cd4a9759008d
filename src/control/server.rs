//! The control socket: a Unix stream listener (mode 0600) feeding command lines to the
//! one control thread that owns the [`ControlPlane`].
//!
//! Threads: the control thread accepts connections (non-blocking, polled) and runs
//! every line; one small thread per connection reads lines (blocking, with a timeout to
//! notice `stop`), sends each to the control thread and writes the reply back. So a
//! slow or vanished peer only ever blocks its own connection thread, and all
//! configuration state is touched by one thread in arrival order.
//!
//! See the module documentation of `control` for the line protocol.

use super::{ControlPlane, Reply, MAX_LINE_BYTES};
use std::collections::HashMap;
use std::io::{BufRead, BufReader, ErrorKind, Write};
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How often the control thread looks for new connections, `stop` and housekeeping
/// when no line arrives: bounds accept latency; costs nothing measurable.
const POLL_INTERVAL: Duration = Duration::from_millis(5);
/// Timer slack of the control thread, in nanoseconds: 1 us instead of the default 50.
const CONTROL_TIMER_SLACK_NS: u64 = 1_000;
/// Read timeout of connection threads, so they notice `stop`.
const CONN_READ_TIMEOUT: Duration = Duration::from_millis(100);

/// Limits of the control socket.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Connections served at once; one more is told so and closed.
    pub max_connections: usize,
    /// A connection that sends no line for this long is closed.
    pub idle_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_connections: 16, idle_timeout: Duration::from_secs(15 * 60) }
    }
}

/// Why the control socket could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("{path}: another popgo instance is listening there (connect succeeded); refusing to start")]
    InUse { path: String },
    #[error("{path}: exists and is not a socket; refusing to remove it")]
    NotASocket { path: String },
    #[error("{path}: {what}: {source}")]
    Io { path: String, what: &'static str, source: std::io::Error },
}

fn io_err(path: &Path, what: &'static str) -> impl FnOnce(std::io::Error) -> ControlError {
    let path = path.display().to_string();
    move |source| ControlError::Io { path, what, source }
}

/// Opens the listening socket at `path`: refuses when a live instance answers there,
/// removes a stale socket file, and binds with mode 0600 without a window where the
/// socket exists with looser permissions (bind in a private 0700 directory, chmod,
/// then rename into place).
pub fn bind(path: &Path) -> Result<UnixListener, ControlError> {
    let p = path.display().to_string();
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if !meta.file_type().is_socket() {
            return Err(ControlError::NotASocket { path: p });
        }
        match UnixStream::connect(path) {
            Ok(_) => return Err(ControlError::InUse { path: p }),
            // Nobody listens there: a stale file left by an instance that died.
            Err(e) if e.raw_os_error() == Some(libc::ECONNREFUSED) => {
                std::fs::remove_file(path).map_err(io_err(path, "removing a stale socket"))?
            }
            // Anything else (no permission, ...): not ours to remove.
            Err(e) => return Err(ControlError::Io { path: p, what: "probing the existing socket", source: e }),
        }
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::DirBuilder::new().recursive(true).mode(0o755).create(&dir).map_err(io_err(&dir, "creating directory"))?;
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "control".into());
    let tmp_dir = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp_dir);
    std::fs::DirBuilder::new().mode(0o700).create(&tmp_dir).map_err(io_err(&tmp_dir, "creating directory"))?;
    let tmp = tmp_dir.join("s");
    let result = (|| {
        let l = UnixListener::bind(&tmp).map_err(io_err(path, "binding"))?;
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600)).map_err(io_err(path, "chmod 0600"))?;
        std::fs::rename(&tmp, path).map_err(io_err(path, "moving the socket into place"))?;
        Ok(l)
    })();
    let _ = std::fs::remove_dir_all(&tmp_dir);
    result
}

/// Messages from connection threads to the control thread.
enum Msg {
    Line { id: u64, line: Result<String, String>, reply: mpsc::SyncSender<(Reply, String)> },
    Closed { id: u64 },
}

/// Runs the control thread until `stop` is set, listening on `path` when given (without
/// one it only does the plane's housekeeping: reclamation and SIGHUP reloads). The
/// thread returns the plane, so the caller can print its final stats. The socket file
/// is removed when the thread ends.
pub fn serve(
    path: Option<&Path>,
    plane: ControlPlane,
    stop: Arc<AtomicBool>,
) -> Result<JoinHandle<ControlPlane>, ControlError> {
    serve_with(path, plane, stop, Limits::default())
}

/// [`serve`] with explicit connection limits.
pub fn serve_with(
    path: Option<&Path>,
    plane: ControlPlane,
    stop: Arc<AtomicBool>,
    limits: Limits,
) -> Result<JoinHandle<ControlPlane>, ControlError> {
    let listener = match path {
        Some(p) => {
            let l = bind(p)?;
            l.set_nonblocking(true).map_err(io_err(p, "set_nonblocking"))?;
            let m = std::fs::symlink_metadata(p).map_err(io_err(p, "stat"))?;
            Some(Listener { l, path: p.to_path_buf(), id: (m.dev(), m.ino()) })
        }
        None => None,
    };
    std::thread::Builder::new()
        .name("popgo-ctl".into())
        .spawn(move || control_loop(listener, plane, &stop, limits))
        .map_err(|source| ControlError::Io { path: String::new(), what: "spawning the control thread", source })
}

/// The listening socket, its path and the file it is (device, inode): removed at exit
/// only if the path still names that file.
struct Listener {
    l: UnixListener,
    path: PathBuf,
    id: (u64, u64),
}

/// Who may use the control socket: root and the user popgo runs as (the socket's mode
/// 0600 already keeps others out; this also holds when the mode was changed).
fn peer_allowed(stream: &UnixStream) -> Result<(), String> {
    let me = crate::sys::rlimit::euid();
    match crate::sys::creds::peer_uid(stream) {
        Ok(uid) if uid == 0 || uid == me => Ok(()),
        Ok(uid) => Err(format!("uid {uid} may not use this control socket (only root and uid {me})")),
        Err(e) => Err(format!("peer credentials: {e}")),
    }
}

/// Tells a refused peer why and closes (best effort; it gets no session).
fn refuse(mut stream: UnixStream, why: &str) {
    let _ = stream.set_write_timeout(Some(CONN_READ_TIMEOUT));
    let _ =
        write_reply(&mut stream, &Reply { ok: false, text: format!("Error: {why}"), close: true, stream: None }, "");
}

fn control_loop(
    listener: Option<Listener>,
    mut plane: ControlPlane,
    stop: &Arc<AtomicBool>,
    limits: Limits,
) -> ControlPlane {
    if let Some(core) = plane.control_core {
        // Connection threads are started from here and inherit the placement.
        if !crate::sys::affinity::pin_current(core) {
            tracing::warn!("control: cannot pin the control thread to core {core}");
        }
    }
    // Short naps while waiting out a grace period (see `set_timer_slack_ns`).
    let _ = crate::sys::rlimit::set_timer_slack_ns(CONTROL_TIMER_SLACK_NS);
    let (tx, rx) = mpsc::channel::<Msg>();
    let mut sessions = HashMap::new();
    while !stop.load(Ordering::Acquire) {
        while let Some(Listener { l: listener, path, .. }) = &listener {
            match listener.accept() {
                Ok((stream, _)) => {
                    if let Err(why) = peer_allowed(&stream) {
                        refuse(stream, &why);
                        continue;
                    }
                    if sessions.len() >= limits.max_connections {
                        refuse(stream, &format!("{} connections already; try again later", limits.max_connections));
                        continue;
                    }
                    let s = plane.new_session();
                    let greeting = (plane.greeting(), plane.prompt(&s));
                    let id = s.id();
                    sessions.insert(id, s);
                    let (tx, stop) = (tx.clone(), Arc::clone(stop));
                    let spawned = std::thread::Builder::new()
                        .name(format!("popgo-ctl-{id}"))
                        .spawn(move || connection(stream, id, greeting, &tx, &stop, limits.idle_timeout));
                    if spawned.is_err() {
                        sessions.remove(&id);
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => {
                    tracing::warn!("control: accept on {}: {e}", path.display());
                    break;
                }
            }
        }
        match rx.recv_timeout(POLL_INTERVAL) {
            Ok(Msg::Line { id, line, reply }) => {
                let Some(s) = sessions.get_mut(&id) else { continue };
                let r = match line {
                    // A big display comes back as a stream: this connection's thread
                    // renders and writes it, the control thread moves on.
                    Ok(l) => plane.exec_stream(s, &l),
                    Err(why) => {
                        s.lines += 1;
                        Reply::err(format!("Error: line {}: {why}", s.lines))
                    }
                };
                let prompt = plane.prompt(s);
                if r.close {
                    sessions.remove(&id);
                }
                // The peer may be gone already: nothing to do then.
                let _ = reply.send((r, prompt));
            }
            Ok(Msg::Closed { id }) => {
                sessions.remove(&id);
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => {}
        }
        plane.tick();
    }
    if let Some(Listener { path, id, .. }) = &listener {
        // Another instance may have taken the path over since (after ours was removed
        // by hand): remove it only if it is still our socket.
        if std::fs::symlink_metadata(path).is_ok_and(|m| (m.dev(), m.ino()) == *id) {
            let _ = std::fs::remove_file(path);
        }
    }
    plane
}

/// Writes one reply in the wire format (body with dot-stuffing, then the end line). A
/// streamed body is written line by line as it is rendered (through a 64 KiB buffer),
/// so a million-row display never exists as one string and the peer sees the first
/// rows at once.
pub fn write_reply(w: &mut impl Write, r: &Reply, prompt: &str) -> std::io::Result<()> {
    if let Some(st) = &r.stream {
        let mut bw = std::io::BufWriter::with_capacity(1 << 16, &mut *w);
        st.run(&mut |l: &str| {
            if l.starts_with('.') {
                bw.write_all(b".")?;
            }
            bw.write_all(l.as_bytes())?;
            bw.write_all(b"\n")
        })?;
        bw.flush()?;
    }
    let mut out = String::with_capacity(r.text.len() + 32);
    for l in r.text.lines() {
        if l.starts_with('.') {
            out.push('.');
        }
        out.push_str(l);
        out.push('\n');
    }
    if r.close {
        out.push_str(".bye\n");
    } else {
        out.push_str(if r.ok { ".ok " } else { ".error " });
        out.push_str(prompt);
        out.push('\n');
    }
    w.write_all(out.as_bytes())?;
    w.flush()
}

/// One connection: read lines, hand them to the control thread, write replies.
fn connection(
    stream: UnixStream,
    id: u64,
    greeting: (Reply, String),
    tx: &mpsc::Sender<Msg>,
    stop: &AtomicBool,
    idle: Duration,
) {
    let _ = serve_connection(stream, id, greeting, tx, stop, idle);
    let _ = tx.send(Msg::Closed { id });
}

fn serve_connection(
    stream: UnixStream,
    id: u64,
    greeting: (Reply, String),
    tx: &mpsc::Sender<Msg>,
    stop: &AtomicBool,
    idle: Duration,
) -> std::io::Result<()> {
    stream.set_read_timeout(Some(CONN_READ_TIMEOUT))?;
    let mut w = stream.try_clone()?;
    write_reply(&mut w, &greeting.0, &greeting.1)?;
    let mut r = BufReader::new(stream);
    let mut buf: Vec<u8> = Vec::new();
    let mut last_line = Instant::now();
    loop {
        if stop.load(Ordering::Acquire) {
            return Ok(());
        }
        if last_line.elapsed() >= idle {
            let text = format!("Info: no command for {} s; closing the connection", idle.as_secs());
            return write_reply(&mut w, &Reply { ok: true, text, close: true, stream: None }, "");
        }
        // Read up to and including '\n', keeping at most MAX_LINE_BYTES + 1 bytes.
        let (done, used) = match r.fill_buf() {
            Ok([]) => return Ok(()), // EOF: a partial line is discarded unexecuted
            Ok(avail) => match avail.iter().position(|b| *b == b'\n') {
                Some(i) => {
                    if buf.len() <= MAX_LINE_BYTES {
                        buf.extend_from_slice(&avail[..i.min(MAX_LINE_BYTES + 1 - buf.len())]);
                    }
                    (true, i + 1)
                }
                None => {
                    if buf.len() <= MAX_LINE_BYTES {
                        buf.extend_from_slice(&avail[..avail.len().min(MAX_LINE_BYTES + 1 - buf.len())]);
                    }
                    (false, avail.len())
                }
            },
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted) => {
                continue
            }
            Err(e) => return Err(e),
        };
        r.consume(used);
        if !done {
            continue;
        }
        let raw = std::mem::take(&mut buf);
        let line = if raw.len() > MAX_LINE_BYTES {
            Err(format!("line longer than {MAX_LINE_BYTES} bytes; ignored"))
        } else {
            match String::from_utf8(raw) {
                Ok(mut s) => {
                    if s.ends_with('\r') {
                        s.pop();
                    }
                    Ok(s)
                }
                Err(_) => Err("line is not UTF-8; ignored".to_string()),
            }
        };
        last_line = Instant::now();
        // The only sender goes with the line: if the control thread ends without
        // answering, the sender is dropped and the wait below ends.
        let (reply_tx, reply_rx) = mpsc::sync_channel(1);
        if tx.send(Msg::Line { id, line, reply: reply_tx }).is_err() {
            return Ok(()); // control thread gone
        }
        let (reply, prompt) = loop {
            match reply_rx.recv_timeout(CONN_READ_TIMEOUT) {
                Ok(r) => break r,
                Err(mpsc::RecvTimeoutError::Timeout) if !stop.load(Ordering::Acquire) => {}
                Err(_) => return Ok(()),
            }
        };
        write_reply(&mut w, &reply, &prompt)?;
        if reply.close {
            return Ok(());
        }
    }
}
