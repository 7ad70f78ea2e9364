#!/usr/bin/python3
"""hostile.py: hostile clients against a real Heron daemon on loopback
(issue 4, item 5).

Starts `heron serve` (HERON_BIN, default build/heron) with heronlib's
throwaway config, then, while an ordinary IMAP client logs in, selects and
fetches in a loop (its latency is recorded), it:
  - holds many pre-auth connections (IMAP and POP3 slowloris: one byte every
    few seconds of a line that never ends; plain idle ones) spread over
    127.0.1.x source addresses, and measures the server's memory per
    connection (sum of Pss of every heron process, /proc/PID/smaps_rollup,
    minus the baseline, divided by the connections held);
  - holds TLS handshakes left half-done on the imaps and pop3s ports
    (ClientHello then silence; TCP connect then silence);
  - sends never-ending lines, literals that never arrive ({1000000} and
    {100}), 10^5 nested parentheses (pre- and post-auth), 10^6 pipelined
    NOOPs, and an AUTH brute force from one address (the per-IP delay must
    grow);
  - checks max_conns_per_ip and max_conns_per_user, that over-long lines get
    BAD / -ERR, and that idle pre-auth connections are closed after the
    configured idle_timeout.
Timing figures are reported, never asserted (only generous timeouts).

Usage (from the top of the tree):
  short (make test, <= 60 s):  /usr/bin/python3 tests/hostile/hostile.py
  long:                       /usr/bin/python3 tests/hostile/hostile.py --conns 10000
Output: "FIGURE name=value" lines, "ok"/"FAIL" per check, and the final line
"N passed, M failed"; exit status 1 if anything failed.
Limits: loopback only (127.0.0.0/8); needs RLIMIT_NOFILE above conns + 500
(raised to the hard limit here); every wait has a deadline.
"""

import argparse
import imaplib
import os
import resource
import selectors
import shutil
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "proto"))
import heronlib  # noqa: E402
from heronlib import PASSWORDS, LineClient  # noqa: E402

SLOW_BYTE_SECS = 4.0      # slowloris: one byte this often
CONNECT_BATCH = 200       # non-blocking connects in flight at once
TLS_HANDSHAKE_SECS = 30   # src/net/conn.c CONN_TLS_HANDSHAKE_SECS


# ---------------------------------------------------------------- results

class Results:
    def __init__(self):
        self.passed = 0
        self.failed = 0
        self.lock = threading.Lock()

    def check(self, name, ok, detail=""):
        with self.lock:
            if ok:
                self.passed += 1
            else:
                self.failed += 1
        print("%s %s%s" % ("ok  " if ok else "FAIL", name,
                           (": " + detail) if detail else ""), flush=True)
        return ok


def figure(name, value):
    print("FIGURE %s=%s" % (name, value), flush=True)


# ---------------------------------------------------------------- memory

def heron_pids(h):
    return [h.pid] + h.children()


def pss_kb(h):
    total = 0
    for pid in heron_pids(h):
        try:
            with open("/proc/%d/smaps_rollup" % pid) as f:
                for line in f:
                    if line.startswith("Pss:"):
                        total += int(line.split()[1])
                        break
        except OSError:
            pass
    return total


def settle_pss(h, secs=1.5):
    """Pss after the server had a moment to process what is in flight."""
    time.sleep(secs)
    return pss_kb(h)


# ---------------------------------------------------------------- flood

class FloodConn:
    __slots__ = ("sock", "kind", "state", "buf", "opened", "closed_at",
                 "last_send", "nbytes", "greeted", "saw", "tls", "tin",
                 "tout")

    def __init__(self, sock, kind):
        self.sock = sock
        self.kind = kind
        self.state = "connecting"
        self.buf = b""
        self.opened = time.monotonic()
        self.closed_at = None
        self.last_send = self.opened
        self.nbytes = 0
        self.greeted = False
        self.saw = b""          # first bytes the server sent (capped)
        self.tls = self.tin = self.tout = None


class Flood:
    """Holds many connections in one selector loop (own thread). Kinds:
    imap-slow, pop3-slow (a byte every SLOW_BYTE_SECS), imap-idle,
    pop3-idle (nothing after the greeting), tls-hello (ClientHello then
    silence), tls-tcp (nothing at all), tls-idle (full handshake on
    imaps, greeting read, then nothing: an idle pre-auth TLS session)."""

    def __init__(self, h, hello):
        self.h = h
        self.hello = hello
        self.sel = selectors.DefaultSelector()
        self.conns = []
        self.pending = []       # (kind, src_ip) to open
        self.lock = threading.Lock()
        self.stop = False
        self.errors = 0
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.tls_ctx = heronlib.insecure_tls_context()

    def port(self, kind):
        return {"imap": self.h.imap_port, "pop3": self.h.pop3_port,
                "tls": self.h.imaps_port}[kind.split("-")[0]]

    def add(self, kind, src_ip, n):
        with self.lock:
            self.pending += [(kind, src_ip)] * n

    def _open(self, kind, src_ip):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.bind((src_ip, 0))
        try:
            s.connect(("127.0.0.1", self.port(kind)))
        except BlockingIOError:
            pass
        c = FloodConn(s, kind)
        self.conns.append(c)
        self.sel.register(s, selectors.EVENT_WRITE, c)

    def connecting(self):
        return sum(1 for c in self.conns if c.state == "connecting")

    def _connected(self, c):
        err = c.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if err != 0:
            self.errors += 1
            self._close(c)
            return
        c.state = "open"
        self.sel.modify(c.sock, selectors.EVENT_READ, c)
        if c.kind == "tls-hello":
            self._send(c, self.hello)
        elif c.kind == "tls-idle":
            c.tin, c.tout = ssl.MemoryBIO(), ssl.MemoryBIO()
            c.tls = self.tls_ctx.wrap_bio(c.tin, c.tout,
                                          server_hostname="localhost")
            self._tls_step(c, b"")

    def _tls_step(self, c, data):
        """Feeds server bytes to the client-side TLS object; sends what
        it produces; marks the connection greeted on "* OK"."""
        if data:
            c.tin.write(data)
        try:
            if not c.greeted:
                c.tls.do_handshake()
                if c.tls.read(4096).startswith(b"* OK"):
                    c.greeted = True
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
            pass
        except ssl.SSLError:
            self._close(c)
            return
        out = c.tout.read()
        if out:
            self._send(c, out)

    def _send(self, c, data):
        try:
            c.sock.send(data)
            c.nbytes += len(data)
        except OSError:
            pass
        c.last_send = time.monotonic()

    def _close(self, c):
        if c.state == "closed":
            return
        c.state = "closed"
        c.closed_at = time.monotonic()
        try:
            self.sel.unregister(c.sock)
        except (KeyError, ValueError):
            pass
        c.sock.close()

    def _readable(self, c):
        try:
            data = c.sock.recv(4096)
        except (ConnectionResetError, OSError):
            data = b""
        if not data:
            self._close(c)
            return
        if c.tls is not None:
            self._tls_step(c, data)
            return
        if len(c.saw) < 512:
            c.saw += data[:512]
        if not c.greeted and (data.startswith(b"* OK") or
                              data.startswith(b"+OK")):
            c.greeted = True

    def _tick(self, now):
        for c in self.conns:
            if c.state != "open" or not c.kind.endswith("-slow") or \
                    not c.greeted or now - c.last_send < SLOW_BYTE_SECS:
                continue
            # A command line that never ends (pre-auth, always < 8 KiB).
            self._send(c, b"x" if c.nbytes else b"s1 NOOP x")

    def run(self):
        last_tick = 0.0
        while not self.stop:
            with self.lock:
                while self.pending and self.connecting() < CONNECT_BATCH:
                    kind, ip = self.pending.pop()
                    try:
                        self._open(kind, ip)
                    except OSError:
                        self.errors += 1
            for key, ev in self.sel.select(0.2):
                c = key.data
                if c.state == "connecting":
                    self._connected(c)
                elif c.state == "open":
                    self._readable(c)
            now = time.monotonic()
            if now - last_tick >= 0.5:
                last_tick = now
                self._tick(now)
        for c in self.conns:
            self._close(c)

    # -- queries (approximate while the loop runs; fine for reporting)
    def count(self, kinds=None, state="open", greeted=None):
        n = 0
        for c in list(self.conns):
            if kinds and c.kind not in kinds:
                continue
            if state and c.state != state:
                continue
            if greeted is not None and c.greeted != greeted:
                continue
            n += 1
        return n

    def wait_settled(self, timeout):
        """Until nothing is pending or connecting and every plain
        connection got its greeting (or closed)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                busy = bool(self.pending)
            if not busy and self.connecting() == 0 and not any(
                    c.state == "open" and not c.greeted and
                    c.kind in ("tls-idle", "imap-slow", "imap-idle",
                               "pop3-slow", "pop3-idle")
                    for c in self.conns):
                return True
            time.sleep(0.2)
        return False


def client_hello():
    """The bytes of a TLS ClientHello (what a client sends first)."""
    ctx = heronlib.insecure_tls_context()
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inc, out, server_hostname="localhost")
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return out.read()


# ---------------------------------------------------------------- normal

class NormalClient:
    """LOGIN, SELECT INBOX, then FETCH 1:* (FLAGS BODY.PEEK[]) in a loop
    over imaplib; records the latency of each FETCH and of each full
    reconnect cycle (every 20 fetches). Answers are checked."""

    def __init__(self, h, user, expect):
        self.h = h
        self.user = user
        self.expect = expect        # {seq: body bytes}
        self.lat = []
        self.cycle_lat = []
        self.errors = []
        self.rounds = 0
        self.stop = False
        self.thread = threading.Thread(target=self.run, daemon=True)

    def _session(self):
        t0 = time.monotonic()
        m = imaplib.IMAP4("127.0.0.1", self.h.imap_port, timeout=30)
        m.login(self.user, PASSWORDS[self.user])
        typ, data = m.select("INBOX")
        if typ != "OK" or int(data[0]) != len(self.expect):
            raise AssertionError("SELECT: %r %r" % (typ, data))
        self.cycle_lat.append(time.monotonic() - t0)
        return m

    def _fetch(self, m):
        t0 = time.monotonic()
        typ, data = m.fetch("1:*", "(FLAGS BODY.PEEK[])")
        self.lat.append(time.monotonic() - t0)
        if typ != "OK":
            raise AssertionError("FETCH: %r" % typ)
        got = [d[1] for d in data if isinstance(d, tuple)]
        # Stored = trace header lines + the delivered message.
        want = [heronlib.lf(self.expect[i]) for i in sorted(self.expect)]
        if len(got) != len(want) or not all(
                heronlib.lf(g).endswith(w) for g, w in zip(got, want)):
            raise AssertionError("FETCH returned wrong bodies")

    def run(self):
        while not self.stop:
            try:
                m = self._session()
                for _ in range(20):
                    if self.stop:
                        break
                    self._fetch(m)
                    self.rounds += 1
                    time.sleep(0.02)
                m.logout()
            except Exception as e:  # noqa: BLE001 (reported, not raised)
                self.errors.append(repr(e))
                time.sleep(0.5)

    def figures(self, tag):
        if not self.lat:
            return
        lat = sorted(self.lat)
        figure("normal_%s_fetches" % tag, len(lat))
        figure("normal_%s_fetch_median_ms" % tag,
               "%.1f" % (1000 * statistics.median(lat)))
        figure("normal_%s_fetch_p99_ms" % tag,
               "%.1f" % (1000 * lat[min(len(lat) - 1,
                                        int(len(lat) * 0.99))]))
        if self.cycle_lat:
            figure("normal_%s_login_select_median_ms" % tag,
                   "%.1f" % (1000 * statistics.median(self.cycle_lat)))
            figure("normal_%s_login_select_max_ms" % tag,
                   "%.1f" % (1000 * max(self.cycle_lat)))

    def reset(self):
        self.lat, self.cycle_lat = [], []


# ---------------------------------------------------------------- probes

def connect_from(port, src, timeout=10.0):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.bind((src, 0))
    s.connect(("127.0.0.1", port))
    return LineClient(s)


def read_until(c, pred, timeout):
    """Lines until pred(line) is true; returns (line or None, closed)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            line = c.readline(max(0.1, deadline - time.monotonic()))
        except (EOFError, ConnectionResetError):
            return None, True
        except (socket.timeout, OSError):
            return None, False
        if pred(line):
            return line, False
    return None, False


def probe_long_lines(h, res, src):
    """A line over max_line_length (IMAP, POP3) gets BAD / -ERR; one that
    never ends (no LF at all) too."""
    c = connect_from(h.imap_port, src)
    c.readline()
    c.send(b"a1 NOOP " + b"x" * 70000 + b"\r\n")
    line, _ = read_until(c, lambda x: b"BAD" in x, 10)
    res.check("imap over-long line gets BAD", line is not None, repr(line))
    c.close()
    c = connect_from(h.imap_port, src)
    c.readline()
    c.send(b"a1 NOOP " + b"y" * 200000)       # and never a LF
    line, _ = read_until(c, lambda x: b"BAD" in x, 10)
    res.check("imap never-ending line gets BAD", line is not None, repr(line))
    c.close()
    c = connect_from(h.pop3_port, src)
    c.readline()
    c.send(b"USER " + b"z" * 200000)
    line, _ = read_until(c, lambda x: x.startswith(b"-ERR"), 10)
    res.check("pop3 never-ending line gets -ERR", line is not None,
              repr(line))
    c.close()


def probe_literals(h, res, src, user):
    """{1000000} pre-auth is refused at once; post-auth APPEND {1000000}
    then silence holds no megabyte (checked via Pss by the caller); a
    literal that never arrives ends with the idle timeout."""
    c = connect_from(h.imap_port, src)
    c.readline()
    c.send(b"a1 LOGIN {1000000}\r\n")
    line, _ = read_until(c, lambda x: x.startswith(b"a1 ") or
                         x.startswith(b"* BAD") or x.startswith(b"+"), 10)
    res.check("pre-auth {1000000} literal refused",
              line is not None and not line.startswith(b"+"), repr(line))
    c.close()
    held = []
    for i in range(3):
        c = connect_from(h.imap_port, src)
        c.readline()
        c.cmd(b'l1 LOGIN %s "%s"' % (user.encode(),
                                      PASSWORDS[user].encode()))
        c.send(b"l2 APPEND INBOX {1000000}\r\n")
        line, _ = read_until(c, lambda x: x.startswith(b"+") or
                             x.startswith(b"l2 "), 10)
        held.append((c, line))
    res.check("post-auth APPEND {1000000} gets a continuation",
              all(x[1] is not None and x[1].startswith(b"+")
                  for x in held), repr([x[1] for x in held]))
    return [x[0] for x in held]


def probe_nested(h, res, src, user):
    deep = b"(" * 100000
    c = connect_from(h.imap_port, src)
    c.readline()
    c.send(b"n1 NOOP " + deep + b"\r\n")
    line, _ = read_until(c, lambda x: b"BAD" in x, 10)
    res.check("pre-auth 10^5 nested parentheses get BAD", line is not None,
              repr(line))
    c.close()
    c = connect_from(h.imap_port, src)
    c.readline()
    c.cmd(b'n0 LOGIN %s "%s"' % (user.encode(), PASSWORDS[user].encode()))
    c.cmd(b"n1 SELECT INBOX")
    c.send(b"n2 SEARCH " + deep + b"ALL" + b")" * 100000 + b"\r\n")
    line, _ = read_until(c, lambda x: b"BAD" in x or x.startswith(b"n2 "),
                         15)
    res.check("post-auth SEARCH with 10^5 nested parentheses gets BAD",
              line is not None and b"BAD" in line, repr(line))
    try:
        r = c.cmd(b"n3 NOOP", timeout=10)
        alive = r.startswith(b"n3 OK") or r.startswith(b"*")
    except (EOFError, OSError):
        alive = False
    figure("nested_postauth_connection_kept", int(alive))
    c.close()


def probe_pipeline(h, res, src, n):
    """n pipelined NOOPs on one pre-auth connection; every one answered."""
    c = connect_from(h.imap_port, src, timeout=30)
    c.readline()
    data = b"p NOOP\r\n" * n
    sent = threading.Event()

    def sender():
        try:
            c.sock.sendall(data)
        except OSError:
            pass
        sent.set()
    t0 = time.monotonic()
    th = threading.Thread(target=sender, daemon=True)
    th.start()
    got, rest, deadline = 0, b"", time.monotonic() + 120
    while got < n and time.monotonic() < deadline:
        try:
            chunk = c.sock.recv(1 << 20)
        except (socket.timeout, OSError):
            break
        if not chunk:
            break
        rest += chunk
        cut = rest.rfind(b"\n") + 1
        got += rest.count(b"p OK", 0, cut)
        rest = rest[cut:]
    secs = time.monotonic() - t0
    th.join(5)
    c.close()
    figure("pipelined_noops", n)
    figure("pipelined_noops_secs", "%.2f" % secs)
    res.check("%d pipelined NOOPs all answered" % n, got == n,
              "%d of %d" % (got, n))


def probe_bruteforce(h, res, src, failures):
    """Wrong passwords from one address: the delay before each NO must
    grow (auth_fail_delay_msecs doubling up to the max)."""
    delays, c = [], None
    while len(delays) < failures:
        if c is None:
            c = connect_from(h.imap_port, src, timeout=30)
            c.readline()
        t0 = time.monotonic()
        try:
            c.send(b'b LOGIN alice "wrong-%d"\r\n' % len(delays))
            line, closed = read_until(c, lambda x: x.startswith(b"b "), 30)
        except OSError:
            line, closed = None, True
        if line is None:
            c.close()
            c = None
            if closed:
                continue
            break
        delays.append(time.monotonic() - t0)
        if not line.startswith(b"b NO"):
            break
    if c is not None:
        c.close()
    figure("bruteforce_delays_ms",
           ",".join("%.0f" % (d * 1000) for d in delays))
    grows = len(delays) == failures and delays[-1] >= 4 * delays[0] and \
        all(b >= a * 0.8 for a, b in zip(delays, delays[1:]))
    res.check("auth brute force: per-IP delay grows", grows,
              str(["%.2f" % d for d in delays]))


def probe_per_ip(h, res, src, limit):
    cs, greeted, busy = [], 0, 0
    for _ in range(limit + 5):
        c = connect_from(h.imap_port, src)
        cs.append(c)
        try:
            line = c.readline(10)
        except (EOFError, OSError):
            line = b""
        if line.startswith(b"* OK"):
            greeted += 1
        elif b"Too many" in line or line.startswith(b"* BYE"):
            busy += 1
    res.check("max_conns_per_ip=%d applies" % limit,
              greeted == limit and busy == 5,
              "greeted %d, refused %d" % (greeted, busy))
    for c in cs:
        c.close()


def probe_per_user(h, res, src, user, limit):
    cs, ok, refused = [], 0, 0
    for i in range(limit + 2):
        c = connect_from(h.imap_port, src)
        cs.append(c)
        c.readline()
        try:
            r = c.cmd(b'u LOGIN %s "%s"' % (user.encode(),
                                             PASSWORDS[user].encode()))
            while r.startswith(b"*") and not r.startswith(b"* BYE"):
                r = c.readline()
        except (EOFError, OSError):
            r = b""
        if r.startswith(b"u OK"):
            ok += 1
        else:
            refused += 1
    res.check("max_conns_per_user=%d applies" % limit,
              ok == limit and refused == 2,
              "logged in %d, refused %d" % (ok, refused))
    for c in cs:
        c.close()


# ---------------------------------------------------------------- main

def make_certs(d):
    cert, key = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048",
                    "-nodes", "-subj", "/CN=localhost", "-days", "2",
                    "-keyout", key, "-out", cert], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   timeout=60)
    return cert, key


def raise_nofile(need):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        soft = hard
    return soft >= need, soft


def src_ips(prefix, n):
    """n loopback source addresses 127.<prefix>.x.y (x, y from 1)."""
    return ["127.%d.%d.%d" % (prefix, 1 + i // 250, 1 + i % 250)
            for i in range(n)]


class _OwnTempfile:
    """heronlib names daemon directories /tmp/heron-t*; other test runs
    sweep those, so ours get a prefix of their own."""
    @staticmethod
    def mkdtemp(prefix="", dir=None):
        return tempfile.mkdtemp(prefix="hostile-", dir=dir)


def start_daemon(args, tmp):
    heronlib.tempfile = _OwnTempfile
    certs = make_certs(tmp)
    lines = ["alice:{PLAIN}" + PASSWORDS["alice"],
             "bob:{PLAIN}" + PASSWORDS["bob"],
             "carol:{PLAIN}" + PASSWORDS["carol"]]
    h = heronlib.Heron(certs, lines, {
        "workers": str(args.workers),
        "log_level": "info",
        "max_conns_per_ip": str(args.per_ip),
        "max_conns_per_user": str(args.per_user),
        "idle_timeout": str(args.idle_timeout),
        "auth_fail_delay_msecs": "100",
        "auth_fail_delay_max_msecs": "3200",
    })
    h.start()
    return h


def held_fraction(flood, kinds):
    total = sum(1 for c in flood.conns if c.kind in kinds)
    return flood.count(kinds), total


def run(args, res):
    ok, soft = raise_nofile(args.conns + 500)
    if not ok:
        print("RLIMIT_NOFILE %d is too low for %d connections"
              % (soft, args.conns), file=sys.stderr)
        return
    tmp = tempfile.mkdtemp(prefix="heron-hostile")
    h = start_daemon(args, tmp)
    normal = None
    flood = None
    try:
        msgs = {}
        for i in range(1, 6):
            m = heronlib.make_message("hostile %d" % i, [b"line %d" % i] *
                                      (20 * i))
            heronlib.deliver(h, "alice", m)
            msgs[i] = m
        normal = NormalClient(h, "alice", msgs)
        normal.thread.start()
        heronlib.wait_for(lambda: normal.rounds >= 5 or normal.errors, 30,
                          what="normal client warm-up")
        # A few throwaway connections so per-process warm-up (first
        # bufferevent, TLS context use) is not billed to the flood.
        for kind in ("imap", "pop3"):
            port = h.imap_port if kind == "imap" else h.pop3_port
            for _ in range(4):
                with LineClient.connect(port) as c:
                    c.readline()
        ctx = heronlib.insecure_tls_context()
        for _ in range(8):
            with socket.create_connection(("127.0.0.1", h.imaps_port),
                                          timeout=10) as raw:
                with ctx.wrap_socket(raw, server_hostname="localhost") as t:
                    t.recv(100)
        base = settle_pss(h)
        normal.figures("quiet")
        normal.reset()
        figure("pss_baseline_kb", base)

        # -- limits, before the flood shares the counters' buckets
        probe_per_ip(h, res, "127.3.0.5", args.per_ip)
        probe_per_user(h, res, "127.3.0.6", "bob", args.per_user)

        # -- phase 1: plain pre-auth connections (half the per-IP limit
        # per address: the limits hash addresses into shared buckets)
        flood = Flood(h, client_hello())
        flood.thread.start()
        n_plain = args.conns - 3 * args.tls_conns
        per_src = max(1, args.per_ip // 2)
        ips = src_ips(1, n_plain // per_src + 5)
        kinds = [("imap-slow", 0.5), ("imap-idle", 0.2), ("pop3-slow", 0.2),
                 ("pop3-idle", 0.1)]
        left, k = n_plain, 0
        for kind, frac in kinds:
            n = int(n_plain * frac) if kind != "pop3-idle" else left
            left -= n
            while n > 0:
                take = min(n, per_src)
                flood.add(kind, ips[k], take)
                n -= take
                k += 1
        t0 = t_plain_opened = time.monotonic()
        settled = flood.wait_settled(max(30, args.conns / 100))
        figure("open_plain_secs", "%.1f" % (time.monotonic() - t0))
        held = flood.count(greeted=True)
        figure("preauth_plain_held", held)
        res.check("%d plain pre-auth connections held" % n_plain,
                  settled and held >= n_plain * 0.99,
                  "held %d, connect errors %d" % (held, flood.errors))
        p1 = settle_pss(h)
        per_plain = (p1 - base) * 1024 / max(1, held)
        figure("pss_preauth_kb", p1)
        figure("mem_per_preauth_conn_bytes", "%.0f" % per_plain)
        res.check("memory per pre-auth connection <= 16 KiB",
                  per_plain <= 16384, "%.0f bytes" % per_plain)

        # -- phase 2: TLS handshakes left half-done (each kind measured)
        tips = src_ips(2, 3 * args.tls_conns // per_src + 6)
        prev, j = p1, 0
        for kind in ("tls-tcp", "tls-hello", "tls-idle"):
            n = args.tls_conns
            while n > 0:
                take = min(n, per_src)
                flood.add(kind, tips[j], take)
                n -= take
                j += 1
            flood.wait_settled(30)
            time.sleep(1)
            held = flood.count((kind,))
            figure("%s_held" % kind, held)
            now = settle_pss(h)
            figure("mem_per_%s_conn_bytes" % kind.replace("-", "_"),
                   "%.0f" % ((now - prev) * 1024 / max(1, held)))
            res.check("%s connections held (%d)" % (kind, held),
                      held >= args.tls_conns * 0.99)
            prev = now
        t_tls_opened = time.monotonic()

        # -- phase 3: attacks while everything is held
        asrc = "127.3.0.1"
        probe_long_lines(h, res, asrc)
        appenders = probe_literals(h, res, "127.3.0.2", "carol")
        probe_nested(h, res, "127.3.0.3", "carol")
        probe_pipeline(h, res, "127.3.0.4", args.pipeline)
        probe_bruteforce(h, res, "127.3.0.7", 6)
        p3 = settle_pss(h, 0.5)
        total = flood.count() + len(appenders)
        figure("conns_held_under_attack", total)
        figure("pss_under_attack_kb", p3)
        figure("mem_per_conn_under_attack_bytes",
               "%.0f" % ((p3 - base) * 1024 / max(1, total)))
        figure("worker_pids", ",".join(str(p) for p in h.children()))
        normal.figures("attack")
        res.check("server alive under attack",
                  all(heronlib.proc_alive(p) for p in heron_pids(h)))

        # -- phase 4: idle timeout for pre-auth connections; a half-done
        # TLS handshake gets at most TLS_HANDSHAKE_SECS
        idle_kinds = ("imap-idle", "pop3-idle", "tls-hello", "tls-tcp",
                      "tls-idle")
        wait_until = t_tls_opened + args.idle_timeout + 10
        while time.monotonic() < wait_until and flood.count(idle_kinds):
            time.sleep(0.5)
        idle_left = flood.count(idle_kinds)
        early = 0
        for kind in idle_kinds:
            want = args.idle_timeout
            if kind in ("tls-hello", "tls-tcp"):
                want = min(want, TLS_HANDSHAKE_SECS)
            secs = [c.closed_at - c.last_send for c in flood.conns
                    if c.kind == kind and c.closed_at]
            if secs:
                figure("%s_closed_after_secs" % kind.replace("-", "_"),
                       "%.1f-%.1f" % (min(secs), max(secs)))
                early += sum(1 for x in secs if x < want - 1)
        res.check("idle pre-auth and half-done TLS connections closed after "
                  "idle_timeout=%d (handshakes: <= %d s)"
                  % (args.idle_timeout, TLS_HANDSHAKE_SECS),
                  idle_left == 0 and early == 0,
                  "%d still open, %d closed early" % (idle_left, early))
        # Slowloris: the idle timer is reset by every byte, but a
        # connection without a login is closed after 2 idle periods.
        slow = ("imap-slow", "pop3-slow")
        wait_until = t_plain_opened + 2 * args.idle_timeout + \
            SLOW_BYTE_SECS + 5
        while time.monotonic() < wait_until and flood.count(slow) > 0:
            time.sleep(0.5)
        slow_left, slow_total = held_fraction(flood, slow)
        lived = [c.closed_at - c.opened for c in flood.conns
                 if c.kind in slow and c.closed_at]
        figure("slowloris_still_open", "%d/%d" % (slow_left, slow_total))
        if lived:
            figure("slowloris_closed_after_secs_min", "%.1f" % min(lived))
            figure("slowloris_closed_after_secs_max", "%.1f" % max(lived))
        res.check("slowloris connections closed without a login after "
                  "2 x idle_timeout", slow_left == 0 and lived and
                  min(lived) >= 2 * args.idle_timeout - 1,
                  "%d/%d still open" % (slow_left, slow_total))
        for c in appenders:
            c.close()
        normal.stop = True
        normal.thread.join(30)
        normal.figures("end")
        res.check("normal client got correct answers throughout",
                  not normal.errors and normal.rounds > 0,
                  "; ".join(normal.errors[:3]))
    finally:
        if normal is not None:
            normal.stop = True
        if flood is not None:
            flood.stop = True
            flood.thread.join(30)
        try:
            h.stop()
        except AssertionError as e:
            res.check("daemon stops cleanly", False, str(e)[:500])
        bad = h.log_problems()
        res.check("daemon log has no fatal/error lines", not bad,
                  "\n".join(bad[:10]))
        if res.failed or sys.exc_info()[0] is not None:
            shown = 0
            for line in h.log_text().splitlines():
                if " info [" in line and (" connect id=" in line or
                                          "disconnect" in line or
                                          "conn refused" in line):
                    continue
                if shown < 60:
                    print("LOG " + line)
                shown += 1
        if args.keep or res.failed or sys.exc_info()[0] is not None:
            print("daemon directory kept: %s" % h.dir, flush=True)
        else:
            h.cleanup()
            shutil.rmtree(tmp, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--conns", type=int, default=2000,
                    help="connections held (default 2000: short mode)")
    ap.add_argument("--tls-conns", type=int, default=None,
                    help="half-done TLS connections of each kind")
    ap.add_argument("--pipeline", type=int, default=1000000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--per-ip", type=int, default=100)
    ap.add_argument("--per-user", type=int, default=5)
    ap.add_argument("--idle-timeout", type=int, default=None)
    ap.add_argument("--keep", action="store_true",
                    help="keep the daemon directory")
    args = ap.parse_args()
    if args.tls_conns is None:
        args.tls_conns = max(10, args.conns // 20)
    if args.idle_timeout is None:
        args.idle_timeout = 15 if args.conns <= 3000 else 60
    signal.signal(signal.SIGINT, signal.default_int_handler)
    res = Results()
    t0 = time.monotonic()
    try:
        run(args, res)
    except Exception as e:  # noqa: BLE001
        import traceback
        traceback.print_exc()
        res.check("run completed", False, repr(e))
    figure("total_secs", "%.1f" % (time.monotonic() - t0))
    print("%d passed, %d failed" % (res.passed, res.failed), flush=True)
    sys.exit(0 if res.failed == 0 and res.passed > 0 else 1)


if __name__ == "__main__":
    main()
