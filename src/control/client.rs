//! `popgo ctl`: the control socket client, one-shot or interactive, and the [`Client`]
//! that tests and tools use to speak the line protocol (see `control`).

use super::DEFAULT_SOCKET;
use crate::cmd::{runtime, usage, Failure};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

/// `popgo ctl` arguments.
#[derive(clap::Args, Debug)]
pub struct CtlArgs {
    /// Control socket of the running instance (`popgo run --control` / `popgo replay
    /// --control`).
    #[arg(long, default_value = DEFAULT_SOCKET)]
    pub socket: PathBuf,
    /// A command, e.g. `display mpls lsp protocol bgp`. Several commands separated by
    /// `;` run in order in one session (views carry over), e.g.
    /// `system-view; bgp 100; apply-label per-route pop-go; commit`. Interactive when
    /// omitted.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

/// One reply as received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WireReply {
    pub ok: bool,
    pub text: String,
    /// The server closed the session (`.bye`).
    pub close: bool,
    /// Prompt of the session's view after the command (empty after `.bye`).
    pub prompt: String,
}

/// A connection to the control socket.
pub struct Client {
    r: BufReader<UnixStream>,
    w: UnixStream,
}

impl Client {
    /// Connects and reads the greeting.
    pub fn connect(path: &Path) -> std::io::Result<(Client, WireReply)> {
        let s = UnixStream::connect(path)?;
        let mut c = Client { r: BufReader::new(s.try_clone()?), w: s };
        let greeting = c.read_reply()?;
        Ok((c, greeting))
    }

    /// Sends one line and waits for its reply.
    pub fn send(&mut self, line: &str) -> std::io::Result<WireReply> {
        if line.contains('\n') {
            return Err(std::io::Error::new(std::io::ErrorKind::InvalidInput, "one line at a time"));
        }
        self.w.write_all(format!("{line}\n").as_bytes())?;
        self.read_reply()
    }

    /// Reads body lines up to the end line.
    pub fn read_reply(&mut self) -> std::io::Result<WireReply> {
        let mut text = String::new();
        loop {
            let mut l = String::new();
            if self.r.read_line(&mut l)? == 0 {
                return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "connection closed mid-reply"));
            }
            let l = l.strip_suffix('\n').unwrap_or(&l);
            if let Some(rest) = l.strip_prefix('.') {
                if rest.starts_with('.') {
                    text.push_str(rest);
                    text.push('\n');
                    continue;
                }
                let (status, prompt) = rest.split_once(' ').unwrap_or((rest, ""));
                let (ok, close) = match status {
                    "ok" => (true, false),
                    "error" => (false, false),
                    "bye" => (true, true),
                    other => {
                        return Err(std::io::Error::new(
                            std::io::ErrorKind::InvalidData,
                            format!("bad end line status {other:?}"),
                        ))
                    }
                };
                return Ok(WireReply { ok, text, close, prompt: prompt.to_string() });
            }
            text.push_str(l);
            text.push('\n');
        }
    }
}

/// Entry point of `popgo ctl`.
pub fn ctl_main(a: CtlArgs) -> Result<(), Failure> {
    let (mut c, greeting) = Client::connect(&a.socket).map_err(|e| {
        runtime(anyhow::anyhow!("cannot connect to {}: {e} (is popgo running with --control?)", a.socket.display()))
    })?;
    let io = |e: std::io::Error| runtime(anyhow::anyhow!("{}: {e}", a.socket.display()));
    if greeting.close {
        // Refused (not allowed, or too many connections): the server said why.
        return Err(runtime(anyhow::anyhow!("{}: {}", a.socket.display(), greeting.text.trim_end())));
    }
    if a.command.is_empty() {
        return interactive(&mut c, greeting).map_err(io);
    }
    let joined = a.command.join(" ");
    let lines: Vec<&str> = joined.split(';').map(str::trim).filter(|l| !l.is_empty()).collect();
    if lines.is_empty() {
        return Err(usage(anyhow::anyhow!("empty command")));
    }
    for l in lines {
        let r = c.send(l).map_err(io)?;
        if !r.ok {
            // The exit message already says "error": do not say it twice.
            let text = r.text.trim_end();
            return Err(runtime(anyhow::anyhow!("{}", text.strip_prefix("Error: ").unwrap_or(text))));
        }
        print!("{}", r.text);
        if r.close {
            break;
        }
    }
    Ok(())
}

/// A VRP-like session on stdin/stdout: prompt, line, reply.
fn interactive(c: &mut Client, greeting: WireReply) -> std::io::Result<()> {
    let stdin = std::io::stdin();
    let mut out = std::io::stdout();
    print!("{}", greeting.text);
    let mut prompt = greeting.prompt;
    loop {
        write!(out, "{prompt}")?;
        out.flush()?;
        let mut line = String::new();
        if stdin.lock().read_line(&mut line)? == 0 {
            writeln!(out)?;
            return Ok(());
        }
        let r = c.send(line.trim_end_matches(['\n', '\r']))?;
        write!(out, "{}", r.text)?;
        if r.close {
            return Ok(());
        }
        prompt = r.prompt;
    }
}
