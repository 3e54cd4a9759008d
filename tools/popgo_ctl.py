"""What the tools in this folder share: a client for popgo's control socket, the wait for
it, process RSS and the rx counter of the metrics endpoint. Imported by scale.py, soak.py
and churn-bench.py (run from anywhere: Python puts the script's folder on sys.path)."""
import re, socket, sys, time, urllib.request


class Ctl:
    """One control-socket session (greeting read on connect). `cmd` sends a line and
    returns the reply's body lines; an `.error` reply ends the tool with its text."""

    def __init__(self, path):
        self.s = socket.socket(socket.AF_UNIX)
        self.s.connect(path)
        self.r = self.s.makefile("rb")
        self.w = self.s.makefile("wb", buffering=0)
        self.reply()

    def reply(self):
        body = []
        while True:
            l = self.r.readline()
            if not l:
                sys.exit("control socket closed")
            l = l.decode().rstrip("\n")
            if l.startswith(".ok") or l.startswith(".error") or l == ".bye":
                return l.startswith(".ok"), body
            body.append(l[1:] if l.startswith("..") else l)

    def cmd(self, line):
        self.w.write((line + "\n").encode())
        ok, body = self.reply()
        if not ok:
            sys.exit(f"{line}: {' '.join(body)}")
        return body


def connect(sock, proc, timeout=60.0):
    """A session on `sock` once the popgo process `proc` has opened it; ends the tool if
    it exits first or `timeout` seconds pass."""
    deadline = time.time() + timeout
    while True:
        try:
            return Ctl(sock)
        except OSError:
            if time.time() > deadline or proc.poll() is not None:
                sys.exit("popgo replay did not open its control socket")
            time.sleep(0.05)


def rss_kb(pid, key="VmRSS"):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def rx_packets(url):
    """popgo_packets_total{direction="rx"} from the metrics endpoint at `url`."""
    text = urllib.request.urlopen(url, timeout=5).read().decode()
    m = re.search(r'^popgo_packets_total\{direction="rx"\} (\S+)$', text, re.M)
    if not m:
        sys.exit(f'no popgo_packets_total{{direction="rx"}} at {url}')
    return int(float(m.group(1)))
