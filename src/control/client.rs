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
    /// `;` (`\;` for a `;` inside a command) run in order in one session (views carry over), e.g.
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

    /// Sends one line and hands each body line of its reply to `body` as it arrives
    /// (the returned reply's `text` is empty): a million-row display is not held.
    pub fn send_with(
        &mut self,
        line: &str,
        body: &mut dyn FnMut(&str) -> std::io::Result<()>,
    ) -> std::io::Result<WireReply> {
        if line.contains('\n') {
            return Err(std::io::Error::new(std::io::ErrorKind::InvalidInput, "one line at a time"));
        }
        self.w.write_all(format!("{line}\n").as_bytes())?;
        self.read_reply_with(body)
    }

    /// Reads body lines up to the end line.
    pub fn read_reply(&mut self) -> std::io::Result<WireReply> {
        let mut text = String::new();
        let mut r = self.read_reply_with(&mut |l| {
            text.push_str(l);
            text.push('\n');
            Ok(())
        })?;
        r.text = text;
        Ok(r)
    }

    /// Reads a reply, passing each body line (without its newline, dot-stuffing undone)
    /// to `body`.
    pub fn read_reply_with(&mut self, body: &mut dyn FnMut(&str) -> std::io::Result<()>) -> std::io::Result<WireReply> {
        let text = String::new();
        let mut l = String::new();
        loop {
            l.clear();
            if self.r.read_line(&mut l)? == 0 {
                return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "connection closed mid-reply"));
            }
            let l = l.strip_suffix('\n').unwrap_or(&l);
            if let Some(rest) = l.strip_prefix('.') {
                if rest.starts_with('.') {
                    body(rest)?;
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
            body(l)?;
        }
    }
}

/// Entry point of `popgo ctl`.
pub fn ctl_main(a: CtlArgs) -> Result<(), Failure> {
    // Arguments that hold no command are a usage error, found before connecting.
    let joined = a.command.join(" ");
    let split = split_commands(&joined);
    let lines: Vec<&str> = split.iter().map(|l| l.trim()).filter(|l| !l.is_empty()).collect();
    if !a.command.is_empty() && lines.is_empty() {
        return Err(usage(anyhow::anyhow!(
            "ctl: the COMMAND argument holds no command (give VRP commands separated by `;`, or no argument for \
             an interactive session)"
        )));
    }
    let (mut c, greeting) = Client::connect(&a.socket).map_err(|e| {
        runtime(anyhow::anyhow!("cannot connect to {}: {e} (is popgo running with --control?)", a.socket.display()))
    })?;
    let io = |e: std::io::Error| runtime(anyhow::anyhow!("{}: {e}", a.socket.display()));
    if greeting.close {
        // Refused (not allowed, or too many connections): the server said why.
        return Err(runtime(anyhow::anyhow!("{}: {}", a.socket.display(), greeting.text.trim_end())));
    }
    if a.command.is_empty() {
        return interactive(&mut c, greeting, &io);
    }
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::with_capacity(1 << 16, stdout.lock());
    for l in lines {
        // A reply is held until it is known to be no error, up to STREAM_AFTER bytes;
        // past that (a big display) its lines go to stdout as they arrive.
        const STREAM_AFTER: usize = 1 << 20;
        let mut held = String::new();
        let mut streaming = false;
        let r = c.send_with(l, &mut |line| {
            if streaming {
                out.write_all(line.as_bytes())?;
                return out.write_all(b"\n");
            }
            held.push_str(line);
            held.push('\n');
            if held.len() > STREAM_AFTER {
                streaming = true;
                out.write_all(held.as_bytes())?;
                held.clear();
            }
            Ok(())
        });
        let r = match r {
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(()), // `| head`
            r => r.map_err(io)?,
        };
        if !r.ok {
            let _ = out.flush();
            // The exit message already says "error": do not say it twice.
            let text = held.trim_end();
            return Err(runtime(anyhow::anyhow!("{}", text.strip_prefix("Error: ").unwrap_or(text))));
        }
        let done = out.write_all(held.as_bytes()).and_then(|_| out.flush());
        match done {
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(()),
            d => d.map_err(io)?,
        }
        if r.close {
            break;
        }
    }
    Ok(())
}

/// The commands of a one-shot `popgo ctl` line: split at `;`, except `\;`, which stays
/// in its command as `\;` (in a `| include` regular expression it matches a `;`).
fn split_commands(joined: &str) -> Vec<String> {
    let mut out = vec![String::new()];
    let mut chars = joined.chars().peekable();
    while let Some(ch) = chars.next() {
        match ch {
            '\\' if chars.peek() == Some(&';') => {
                chars.next();
                out.last_mut().expect("one at least").push_str("\\;");
            }
            ';' => out.push(String::new()),
            c => out.last_mut().expect("one at least").push(c),
        }
    }
    out
}

/// A VRP-like session on stdin/stdout: prompt, line, reply. An unreadable stdin (not
/// UTF-8) is an input error naming stdin and its line (exit 2); a socket error names
/// the socket (`io`); a closed stdout ends the session.
fn interactive(c: &mut Client, greeting: WireReply, io: &dyn Fn(std::io::Error) -> Failure) -> Result<(), Failure> {
    let stdin = std::io::stdin();
    let mut out = std::io::stdout();
    let gone = |e: &std::io::Error| e.kind() == std::io::ErrorKind::BrokenPipe;
    if out.write_all(greeting.text.as_bytes()).is_err() {
        return Ok(());
    }
    let mut prompt = greeting.prompt;
    for n in 1.. {
        if write!(out, "{prompt}").and_then(|_| out.flush()).is_err() {
            return Ok(());
        }
        let mut line = String::new();
        match stdin.lock().read_line(&mut line) {
            Ok(0) => {
                let _ = writeln!(out);
                return Ok(());
            }
            Ok(_) => {}
            Err(e) => return Err(usage(anyhow::anyhow!("stdin: line {n}: {e}"))),
        }
        let r = match c.send_with(line.trim_end_matches(['\n', '\r']), &mut |l| writeln!(out, "{l}")) {
            Err(e) if gone(&e) => return Ok(()),
            r => r.map_err(io)?,
        };
        if r.close {
            return Ok(());
        }
        prompt = r.prompt;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn commands_split_at_semicolons_but_not_escaped_ones() {
        let got = super::split_commands("system-view; display current-configuration | include a\\;b; return");
        assert_eq!(got, ["system-view", " display current-configuration | include a\\;b", " return"]);
    }
}
