"""Inputs for tools/hostile.py: mutators and generators of configs, table files, MRT
dumps, captures, control-socket lines and HTTP requests. Pure functions of a
random.Random, so a run is reproduced from its seed."""
import bz2
import gzip
import struct

HOSTILE_VALUES = [
    '""', "0", "-1", "1", "16", "1048575", "1048576", "65535", "65536", "4294967295",
    "4294967296", "9223372036854775807", "18446744073709551616", "-9223372036854775808",
    "1e999", "nan", "inf", "0.5", "true", "[]", "{}", "[[]]", '"x"', '"' + "A" * 5000 + '"',
    '"\\u0000"', '"10.1.1.0/33"', '"10.1.1.0/-1"', '"::/129"', '"256.1.1.1"', '"0.0.0.0"',
    '"255.255.255.255/32"', '"::"', '"fe80::1%eth0"', '"02:00:00:00:0c"', '"ff:ff:ff:ff:ff:ff"',
    '"to-A"', '"to-\u03a9"', '"/dev/zero"', '"/proc/self/mem"', '"."', '"/"', '"../../etc/passwd"',
    '"per-route"', '"per-nexthop"', '"per-instance"', '"pipe"', '"uniform"', '"100:1"',
    '"4294967296:1"', '"1.2.3.4:65536"', '"ipv4"', '"ipv7"', "'''\nmulti\n'''",
]

HOSTILE_NUMBERS = [
    "0", "-0", "1", "-1", "2", "3", "7", "31", "32", "33", "255", "256", "257", "1023", "1024",
    "2048", "2049", "9000", "65535", "65536", "1048575", "1048576", "4294967295", "4294967296",
    "18446744073709551615", "18446744073709551616", "99999999999999999999999", "0x10", "1e3",
    "1e-10", "1e-300", "1e308", "1e309", "0.0", "0.001", "0.019", "0.02", "0.5", "1.5", "-0.5",
    "nan", "NaN", "inf", "-inf", "infinity", "", " ", "1 2", "1,2", "١", "\u00a0", "0b1", "+1",
    "--", "x", "1k", "1M", "\x7f", "0,0", "0-1", "1-0", "0-99999", "1,1,1", "0,-1",
]

KEY_TYPOS = ["bpg", "prots", "neighbour", "static_routes", "lable", "pop-go", "as ", "ip ", "x"]


def flip_bytes(rng, data, n=None):
    b = bytearray(data)
    if not b:
        return bytes(b)
    for _ in range(n or rng.randint(1, 8)):
        i = rng.randrange(len(b))
        op = rng.random()
        if op < 0.4:
            b[i] ^= 1 << rng.randrange(8)
        elif op < 0.7:
            b[i] = rng.choice([0, 0xFF, 0x7F, 0x80, 0x0A, 0x22, 0x5B, 0x3D])
        elif op < 0.85:
            del b[i:i + rng.randint(1, 64)]
            if not b:
                break
        else:
            b[i:i] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 16)))
    return bytes(b)


def mutate_text(rng, text):
    """One to three structural or byte mutations of a TOML or table text."""
    lines = text.split("\n")
    for _ in range(rng.randint(1, 3)):
        op = rng.randrange(11)
        i = rng.randrange(len(lines)) if lines else 0
        if not lines:
            lines = [""]
        if op == 0:  # a value replaced
            kv = [j for j, l in enumerate(lines) if "=" in l and not l.lstrip().startswith("#")]
            if kv:
                j = rng.choice(kv)
                lines[j] = lines[j].split("=", 1)[0] + "= " + rng.choice(HOSTILE_VALUES)
        elif op == 1:
            del lines[i]
        elif op == 2:
            lines.insert(i, lines[rng.randrange(len(lines))])
        elif op == 3:
            j = rng.randrange(len(lines))
            lines[i], lines[j] = lines[j], lines[i]
        elif op == 4:  # a section repeated many times
            heads = [j for j, l in enumerate(lines) if l.startswith("[")]
            if heads:
                j = rng.choice(heads)
                end = next((k for k in range(j + 1, len(lines)) if lines[k].startswith("[")), len(lines))
                lines[end:end] = lines[j:end] * rng.choice([2, 33, 100, 2000])
        elif op == 5:  # a key misspelt
            kv = [j for j, l in enumerate(lines) if l.strip()]
            if kv:
                j = rng.choice(kv)
                word = rng.choice(KEY_TYPOS)
                if lines[j].startswith("["):
                    lines[j] = "[" + word + "]"
                else:
                    lines[j] = word + lines[j][lines[j].find("="):] if "=" in lines[j] else word
        elif op == 6:
            return "\n".join(lines)[: rng.randrange(len(text) + 1)]
        elif op == 7:
            lines[i] = flip_bytes(rng, lines[i].encode()).decode("latin-1")
        elif op == 8:  # an unknown key
            lines.insert(i, rng.choice(["bogus = 1", "name = \"dup\"", "as = 200", "[[port]]", "[bgp]", "table = 1"]))
        elif op == 9:  # a very long line
            lines.insert(i, "# " + "x" * rng.choice([4097, 70000, 1 << 20]))
        else:
            lines[i] = lines[i] + rng.choice(["\x00", "\r", "\t\t", " #", "\ufeff", "\u202e"])
    return "\n".join(lines)


def raw_text_bytes(rng, text):
    """The text as bytes, sometimes with invalid UTF-8 spliced in."""
    try:
        b = text.encode("latin-1")
    except UnicodeEncodeError:
        b = text.encode("utf-8")
    if rng.random() < 0.15:
        i = rng.randrange(len(b) + 1)
        b = b[:i] + rng.choice([b"\xff", b"\xc3", b"\xed\xa0\x80", b"\x80\x80"]) + b[i:]
    return b


def table_text(rng):
    out = ["# PREFIX NEXT-HOP [LABEL]"]
    for n in range(rng.randint(1, 60)):
        pre = f"10.{rng.randrange(256)}.{rng.randrange(256)}.0/24"
        nh = rng.choice(["192.168.10.1", "192.168.20.1"])
        lab = f" {rng.randint(16, 1048575)}" if rng.random() < 0.3 else ""
        out.append(f"{pre} {nh}{lab}")
    return "\n".join(out) + "\n"


# ---- MRT TABLE_DUMP_V2 (RFC 6396) ----

def _mrt(subtype, body, ts=1764201600):
    return struct.pack(">IHHI", ts, 13, subtype, len(body)) + body


def mrt_dump(rng):
    peers = [(2, bytes([10, 0, 0, 1]), 65001), (3, bytes(15) + b"\x01", 65002)]  # v4 AS4, v6 AS4
    body = struct.pack(">IH", 0x0A000001, 4) + b"test" + struct.pack(">H", len(peers))
    for ptype, addr, asn in peers:
        body += struct.pack(">BI", ptype, 0x0A000001) + addr + struct.pack(">I", asn)
    recs = [_mrt(1, body)]
    attrs = bytes([0x40, 1, 1, 0])
    for seq in range(rng.randint(1, 40)):
        v6 = rng.random() < 0.25
        plen = rng.randint(8, 48 if v6 else 32)
        nb = (plen + 7) // 8
        pre = bytes([0x20, 0x01, 0x0D, 0xB8] if v6 else [10]) + bytes(rng.randrange(256) for _ in range(16))
        entries = rng.randint(1, 2)
        rec = struct.pack(">IB", seq, plen) + pre[:nb] + struct.pack(">H", entries)
        for e in range(entries):
            rec += struct.pack(">HIH", e, 1764201600, len(attrs)) + attrs
        recs.append(_mrt(4 if v6 else 2, rec))
    return b"".join(recs)


def mutate_mrt(rng, data):
    op = rng.random()
    b = bytearray(data)
    if op < 0.1:
        pass  # the dump as made (then maybe compressed)
    elif op < 0.3:
        b = bytearray(flip_bytes(rng, data))
    elif op < 0.5:
        b = b[: rng.randrange(len(b) + 1)]
    elif op < 0.8:  # a header field set to an extreme
        at = 0
        heads = []
        while at + 12 <= len(b):
            heads.append(at)
            at += 12 + struct.unpack(">I", b[at + 8:at + 12])[0]
        h = rng.choice(heads)
        f = rng.choice([(4, ">H", [0, 12, 16, 17, 0xFFFF]), (6, ">H", [0, 1, 2, 3, 4, 5, 6, 0xFFFF]),
                        (8, ">I", [0, 1, 0x7FFFFFFF, 0xFFFFFFFF, 1 << 28])])
        struct.pack_into(f[1], b, h + f[0], rng.choice(f[2]))
    else:  # the body of one record: counts and prefix lengths
        i = rng.randrange(12, len(b)) if len(b) > 12 else 0
        if b:
            b[i] = rng.choice([0, 0xFF, 33, 129, 200])
    out = bytes(b)
    r = rng.random()
    if r < 0.15:
        out = gzip.compress(out)
        if rng.random() < 0.4:
            out = out[: rng.randrange(len(out) + 1)]
    elif r < 0.3:
        out = bz2.compress(out)
        if rng.random() < 0.4:
            out = flip_bytes(rng, out, 2)
    elif r < 0.33:
        out = b"\xfd7zXZ\x00" + out
    return out


# ---- captures ----

def pcap_records(data):
    """(linktype, nanosecond?, [(ts_sec, ts_frac, frame)]) of a little-endian classic pcap."""
    magic = struct.unpack("<I", data[:4])[0]
    link = struct.unpack("<I", data[20:24])[0]
    recs, at = [], 24
    while at + 16 <= len(data):
        s, f, cap, _ = struct.unpack("<IIII", data[at:at + 16])
        recs.append((s, f, data[at + 16:at + 16 + cap]))
        at += 16 + cap
    return link, magic == 0xA1B23C4D, recs


def write_pcap(link, recs, nano=True, big=False):
    e = ">" if big else "<"
    out = struct.pack(e + "IHHiIII", 0xA1B23C4D if nano else 0xA1B2C3D4, 2, 4, 0, 0, 65535, link)
    for s, f, fr in recs:
        out += struct.pack(e + "IIII", s, f, len(fr), len(fr)) + fr
    return out


def write_pcapng(link, recs):
    def block(t, body):
        body += b"\x00" * (-len(body) % 4)
        n = len(body) + 12
        return struct.pack("<II", t, n) + body + struct.pack("<I", n)
    out = block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))
    out += block(1, struct.pack("<HHI", link, 0, 65535) + struct.pack("<HHB3x", 9, 1, 9) + b"\x00" * 4)
    for s, f, fr in recs:
        ts = s * 10**9 + f
        out += block(6, struct.pack("<IIIII", 0, ts >> 32, ts & 0xFFFFFFFF, len(fr), len(fr)) + fr)
    return out


def to_cooked(recs, sll2):
    out = []
    for s, f, fr in recs:
        if len(fr) < 14:
            out.append((s, f, fr))
            continue
        proto, src, rest = fr[12:14], fr[6:12], fr[14:]
        if sll2:
            hdr = proto + b"\x00\x00" + struct.pack(">IHBB", 2, 1, 0, 6) + src + b"\x00\x00"
        else:
            hdr = struct.pack(">HHH", 0, 1, 6) + src + b"\x00\x00" + proto
        out.append((s, f, hdr + rest))
    return out


def capture_variants(seed_pcaps):
    """Every base capture: the shipped ones and their pcapng, big-endian, SLL and SLL2 forms."""
    out = {}
    for name, data in seed_pcaps.items():
        link, nano, recs = pcap_records(data)
        out[name] = data
        out[name + ".be"] = write_pcap(link, recs, nano, big=True)
        out[name + "ng"] = write_pcapng(link, recs)
        out[name + ".sll"] = write_pcap(113, to_cooked(recs, False), nano)
        out[name + ".sll2ng"] = write_pcapng(276, to_cooked(recs, True))
    return out


def mutate_capture(rng, data):
    b = bytearray(data)
    op = rng.random()
    if op < 0.35:
        return flip_bytes(rng, data)
    if op < 0.5:
        return bytes(b[: rng.randrange(len(b) + 1)])
    if op < 0.85:  # a 32-bit or 16-bit field set to an extreme
        i = rng.randrange(max(1, len(b) - 4))
        v = rng.choice([0, 1, 12, 13, 14, 64, 2048, 2049, 65535, 65536, 0x7FFFFFFF, 0xFFFFFFFF])
        fmt = rng.choice(["<I", ">I", "<H"])
        if len(b) >= i + 4:
            struct.pack_into(fmt, b, i, v & 0xFFFF if fmt == "<H" else v)
        return bytes(b)
    # frames repeated (a bigger capture) or a record spliced in twice
    return bytes(b) + bytes(b[24:]) * rng.randint(1, 50)


# ---- the control socket ----

VALID_LINES = [
    "system-view", "bgp 100", "apply-label per-route pop-go", "undo apply-label per-route pop-go",
    "apply-label per-nexthop", "apply-label per-route", "commit", "return", "quit",
    "display mpls lsp protocol bgp", "display current-configuration", "display this",
    "display current-configuration | include pop", "display current-configuration | count",
    "ip route-static 10.9.0.0 16 192.168.10.1", "undo ip route-static 10.9.0.0 16 192.168.10.1",
    "network 10.9.0.0 16", "network 10.9.0.0 255.255.0.0 label 48200", "undo network 10.9.0.0 16",
    "ip route-static 10.1.1.0 24 192.168.20.1", "undo ip route-static 10.1.1.0 30 192.168.20.1",
    "peer 127.0.0.2 as-number 200", "undo peer 127.0.0.2", "router-id 1.1.1.1",
    "ipv4-family unicast", "ipv6-family unicast", "ip vpn-instance v1", "route-distinguisher 1:1",
    "display popgo statistics", "display bgp peer", "display ip vpn-instance", "display bgp routing-table",
    "clear configuration", "rollback", "abort", "?", "display current-configuration | include (a|",
    "display current-configuration | include " + "(a*)*" * 20 + "b",
]


def control_line(rng):
    r = rng.random()
    if r < 0.55:
        line = rng.choice(VALID_LINES)
    elif r < 0.75:
        line = mutate_text(rng, rng.choice(VALID_LINES)).replace("\n", " ")
    elif r < 0.85:
        words = [w for l in VALID_LINES for w in l.split()]
        line = " ".join(rng.choice(words + HOSTILE_NUMBERS[:30]) for _ in range(rng.randint(1, 12)))
    elif r < 0.92:
        return bytes(rng.randrange(256) for _ in range(rng.randint(1, 200))).replace(b"\n", b"") + b"\n"
    else:
        line = rng.choice(["x", "display current-configuration | include ", "a b"]) * rng.choice([1000, 2000, 5000])
    return line.encode("utf-8", "replace") + b"\n"


# ---- HTTP to the metrics port ----

def http_request(rng):
    r = rng.random()
    if r < 0.3:
        path = rng.choice(["/metrics", "/metrics?x=" + "y" * 3000, "/", "/../../etc", "*", "/metrics#", ""])
        meth = rng.choice(["GET", "POST", "HEAD", "OPTIONS", "G\x00T", "GET" * 100])
        ver = rng.choice(["HTTP/1.1", "HTTP/1.0", "HTTP/9", "", "HTTP/1.1 extra"])
        hdrs = "".join(rng.choice(["Host: x\r\n", "Content-Length: 99999999999\r\n", "Transfer-Encoding: chunked\r\n",
                                   "Connection: keep-alive\r\n", "X: " + "a" * 9000 + "\r\n", "\r\n"])
                       for _ in range(rng.randint(0, 6)))
        return f"{meth} {path} {ver}\r\n{hdrs}\r\n".encode("utf-8", "replace")
    if r < 0.5:
        return b"GET /metrics HTTP/1.1\r\n" + b"X-Long: " + b"a" * rng.choice([10_000, 100_000, 2_000_000])
    if r < 0.7:
        return bytes(rng.randrange(256) for _ in range(rng.randint(1, 4096)))
    if r < 0.85:
        return b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n" * rng.randint(2, 200)
    return b"\r\n" * rng.randint(1, 100000)
