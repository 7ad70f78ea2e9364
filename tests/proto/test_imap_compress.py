"""test_imap_compress.py: IMAP COMPRESS=DEFLATE (RFC 4978) against the real
daemon, over plaintext and implicit TLS (compression inside TLS): the
capability after login only, the uncompressed tagged OK, then compressed
commands and responses (SELECT, a big FETCH compared byte for byte, IDLE
with an LMTP delivery arriving compressed), a second COMPRESS (NO
[COMPRESSIONACTIVE]), back-pressure on compressed output with a client
that does not read, corrupt compressed input (the connection is closed)
and decompression bombs (bounded memory).

A raw socket client with Python's zlib (raw deflate, wbits -15); every
socket operation has a timeout.
"""

import base64
import os
import re
import socket
import threading
import time
import zlib

import pytest

import heronlib
from heronlib import PASSWORDS, deliver, make_message

TIMEOUT = heronlib.IO_TIMEOUT


class ZImap:
    """An IMAP session that can switch to raw DEFLATE both ways."""

    def __init__(self, h, tls=False, user="alice", login=True, rcvbuf=None):
        port = h.imaps_port if tls else h.imap_port
        s = socket.socket()
        if rcvbuf:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        s.settimeout(TIMEOUT)
        s.connect(("127.0.0.1", port))
        if tls:
            s = heronlib.insecure_tls_context().wrap_socket(s)
        self.sock = s
        self.buf = b""
        self.comp = None
        self.decomp = None
        self.n = 0
        self.wire_in = 0
        g = self.readline()
        assert g.startswith(b"* OK"), g
        if login:
            _, t = self.cmd('LOGIN %s "%s"' % (user, PASSWORDS[user]))
            assert b" OK " in t, t

    # -- bytes
    def send_raw(self, data):
        self.sock.sendall(data)

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        if self.comp is not None:
            data = self.comp.compress(data) + \
                self.comp.flush(zlib.Z_SYNC_FLUSH)
        self.sock.sendall(data)

    def _fill(self):
        chunk = self.sock.recv(1 << 16)
        if not chunk:
            raise EOFError("connection closed; have %r" % self.buf[-200:])
        self.wire_in += len(chunk)
        if self.decomp is not None:
            chunk = self.decomp.decompress(chunk)
        self.buf += chunk

    def readline(self):
        while b"\r\n" not in self.buf:
            self._fill()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def read_exact(self, n):
        while len(self.buf) < n:
            self._fill()
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    # -- commands
    def tag(self):
        self.n += 1
        return "z%d" % self.n

    def read_tagged(self, tag):
        """Untagged lines (literals inline) until the tagged reply."""
        lines = []
        while True:
            line = self.readline()
            if line.startswith(tag.encode() + b" "):
                return lines, line
            m = re.search(rb"\{(\d+)\}$", line)
            if m:
                line += b"\r\n" + self.read_exact(int(m.group(1)))
                line += self.readline()
            lines.append(line)

    def cmd(self, text):
        t = self.tag()
        self.send(t + " " + text + "\r\n")
        return self.read_tagged(t)

    def ok(self, text):
        lines, tagged = self.cmd(text)
        assert re.match(rb"z\d+ OK", tagged), (text, tagged, lines[:5])
        return lines

    def start_compress(self):
        """COMPRESS DEFLATE: the OK comes uncompressed, then both ways
        are raw deflate (RFC 4978 section 3)."""
        t = self.tag()
        self.send(t + " COMPRESS DEFLATE\r\n")
        line = self.readline()
        assert line.startswith(t.encode() + b" OK"), line
        rest, self.buf = self.buf, b""
        self.comp = zlib.compressobj(6, zlib.DEFLATED, -15)
        self.decomp = zlib.decompressobj(-15)
        self.buf = self.decomp.decompress(rest)

    def is_closed(self, wait=TIMEOUT):
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            try:
                self._fill()
            except EOFError:
                return True
            except (ConnectionError, zlib.error):
                return True
            except socket.timeout:
                return False
            self.buf = b""
        return False

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def caps(line):
    m = re.search(rb"CAPABILITY ([^\]]*)", line)
    return m.group(1).split() if m else []


def random_message(subject, size):
    """An incompressible-ish message (base64 of random bytes)."""
    raw = base64.encodebytes(os.urandom(size * 3 // 4))
    return make_message(subject, raw.rstrip(b"\n").split(b"\n"))


def workers_rss_kb(heron):
    return max(heronlib.proc_rss_kb(p) for p in heron.children())


def rss_is_meaningful():
    """Under ASan freed memory sits in its quarantine (up to 256 MB), so
    RSS says nothing about what is live: the bounds are checked with the
    product build only."""
    with open(heronlib.heron_bin(), "rb") as f:
        return b"__asan_init" not in f.read()


def assert_rss_growth(before, during, limit_kb):
    print("worker RSS kB before/during:", before, during)
    if rss_is_meaningful():
        assert during - before < limit_kb, (before, during)


# ---------------------------------------------------------------- basics

def test_capability_only_after_login(heron):
    c = ZImap(heron, login=False)
    lines, t = c.cmd("CAPABILITY")
    assert b"COMPRESS=DEFLATE" not in caps(lines[0]), lines
    # Not in the not-authenticated state (RFC 4978 section 5:
    # command-auth).
    _, t = c.cmd("COMPRESS DEFLATE")
    assert not re.match(rb"z\d+ OK", t), t
    _, t = c.cmd('LOGIN alice "%s"' % PASSWORDS["alice"])
    assert b"COMPRESS=DEFLATE" in caps(t), t
    lines, t = c.cmd("CAPABILITY")
    assert b"COMPRESS=DEFLATE" in caps(lines[0]), lines
    c.close()


def test_bad_arguments(heron):
    c = ZImap(heron)
    for args in ("", " GZIP", " DEFLATE DEFLATE", ' "DEFLATE" x'):
        _, t = c.cmd("COMPRESS" + args)
        assert re.match(rb"z\d+ BAD", t), (args, t)
    # Still uncompressed.
    c.ok("NOOP")
    c.start_compress()
    c.ok("NOOP")
    c.close()


@pytest.mark.parametrize("tls", [False, True], ids=["plain", "tls"])
def test_compressed_session(heron, tls):
    small = make_message("small one", [b"hello compressed world"] * 20)
    big = heronlib.big_message("big one", 3 * 1024 * 1024)
    deliver(heron, "alice", small)
    deliver(heron, "alice", big)
    c = ZImap(heron, tls=tls)
    c.start_compress()
    lines = c.ok("CAPABILITY")
    assert b"COMPRESS=DEFLATE" in caps(lines[0]), lines
    lines = c.ok('LIST "" "*"')
    assert any(b"INBOX" in ln for ln in lines), lines
    lines = c.ok("SELECT INBOX")
    assert b"* 2 EXISTS" in lines, lines
    # Second COMPRESS: NO [COMPRESSIONACTIVE] (RFC 4978 section 3).
    _, t = c.cmd("COMPRESS DEFLATE")
    assert re.match(rb"z\d+ NO \[COMPRESSIONACTIVE\]", t), t
    lines = c.ok("FETCH 1:2 (RFC822.SIZE BODY.PEEK[])")
    assert len(lines) == 2, [ln[:80] for ln in lines]
    stored = []
    for ln in lines:
        m = re.search(rb"BODY\[\] \{(\d+)\}\r\n", ln)
        assert m, ln[:200]
        stored.append(ln[m.end():m.end() + int(m.group(1))])
    assert stored[0].endswith(small), stored[0][-200:]
    assert stored[1].endswith(big), len(stored[1])
    # The big body went over the wire compressed.
    assert c.wire_in < len(big) // 4, (c.wire_in, len(big))
    # Pipelined commands in one compressed write.
    c.send("p1 NOOP\r\np2 FETCH 1 (FLAGS)\r\np3 NOOP\r\n")
    for t in ("p1", "p2", "p3"):
        _, line = c.read_tagged(t)
        assert line.startswith(t.encode() + b" OK"), line
    lines, t = c.cmd("LOGOUT")
    assert lines[0].startswith(b"* BYE"), lines
    assert c.is_closed()
    c.close()


def test_compress_selected_state_and_one_byte_writes(heron):
    """COMPRESS in the selected state; commands split at every byte."""
    deliver(heron, "alice", make_message("m", [b"x"]))
    c = ZImap(heron)
    c.ok("SELECT INBOX")
    c.start_compress()
    data = c.comp.compress(b"b1 FETCH 1 (UID FLAGS)\r\nb2 NOOP\r\n") + \
        c.comp.flush(zlib.Z_SYNC_FLUSH)
    for i in range(len(data)):
        c.send_raw(data[i:i + 1])
        time.sleep(0.002)
    lines, t = c.read_tagged("b1")
    assert t.startswith(b"b1 OK") and b"UID 1" in lines[0], (t, lines)
    _, t = c.read_tagged("b2")
    assert t.startswith(b"b2 OK"), t
    c.close()


@pytest.mark.parametrize("tls", [False, True], ids=["plain", "tls"])
def test_idle_delivery_arrives_compressed(heron, tls):
    deliver(heron, "alice", make_message("first", [b"one"]))
    c = ZImap(heron, tls=tls)
    c.start_compress()
    c.ok("SELECT INBOX")
    c.send("i1 IDLE\r\n")
    assert c.readline().startswith(b"+"), "no continuation"
    deliver(heron, "alice", make_message("second", [b"two"]))
    got = []
    deadline = time.monotonic() + 5
    while b"* 2 EXISTS" not in got:
        assert time.monotonic() < deadline, got
        got.append(c.readline())
    c.send("DONE\r\n")
    _, t = c.read_tagged("i1")
    assert t.startswith(b"i1 OK"), t
    lines = c.ok("FETCH 2 (BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    assert b"Subject: second" in lines[0], lines
    c.close()


# ---------------------------------------------------------------- limits

@pytest.mark.heron_conf(max_message_size="100M")
def test_back_pressure_on_compressed_output(heron):
    """A client that stops reading during a big compressed FETCH: the
    worker holds about the output high-water mark, not the 24 MB."""
    big = random_message("random", 8 * 1024 * 1024)
    for _ in range(3):
        deliver(heron, "alice", big)
    c = ZImap(heron, rcvbuf=65536)
    c.start_compress()
    c.ok("SELECT INBOX")
    rss0 = workers_rss_kb(heron)
    c.send("f1 FETCH 1:* BODY.PEEK[]\r\n")
    time.sleep(1.0)
    rss = workers_rss_kb(heron)
    # Another (compressed) session is served meanwhile.
    d = ZImap(heron)
    d.start_compress()
    d.ok("SELECT INBOX")
    d.ok("FETCH 1:3 (UID RFC822.SIZE)")
    d.close()
    lines, t = c.read_tagged("f1")
    assert t.startswith(b"f1 OK"), t
    assert len(lines) == 3 and all(ln.endswith(big + b")") for ln in lines)
    assert_rss_growth(rss0, max(rss, workers_rss_kb(heron)), 12 * 1024)
    c.close()


@pytest.mark.parametrize("tls", [False, True], ids=["plain", "tls"])
def test_corrupt_input_closes(heron, tls):
    c = ZImap(heron, tls=tls)
    c.start_compress()
    c.ok("NOOP")
    # 0xff: a final block of the reserved type 3 (RFC 1951 3.2.3).
    c.send_raw(b"\xff" * 64)
    assert c.is_closed(), "still open after corrupt deflate data"
    c.close()
    # The daemon carries on.
    d = ZImap(heron)
    d.start_compress()
    d.ok("NOOP")
    d.close()
    assert "bad compressed input" in heron.log_text()


def test_input_after_end_of_stream_closes(heron):
    c = ZImap(heron)
    c.start_compress()
    c.send_raw(c.comp.compress(b"e1 NOOP\r\n") + c.comp.flush(zlib.Z_FINISH))
    _, t = c.read_tagged("e1")
    assert t.startswith(b"e1 OK"), t
    c.send_raw(b"more")
    assert c.is_closed()
    c.close()


def _send_in_thread(sock, data):
    def run():
        try:
            sock.sendall(data)
        except OSError:
            pass
    th = threading.Thread(target=run, daemon=True)
    th.start()
    return th


def test_bomb_long_line_bounded(heron):
    """~200 KB inflating to 200 MB of one line: read in bounded steps,
    the line is refused; memory stays small."""
    c = ZImap(heron)
    c.start_compress()
    rss0 = workers_rss_kb(heron)
    co = zlib.compressobj(9, zlib.DEFLATED, -15)
    chunk = b"A" * (1 << 20)
    bomb = co.compress(b"x1 NOOP ")
    for _ in range(200):
        bomb += co.compress(chunk)
    bomb += co.compress(b"\r\n") + co.flush(zlib.Z_SYNC_FLUSH)
    assert len(bomb) < 400 * 1024, len(bomb)
    c.comp = co
    th = _send_in_thread(c.sock, bomb)
    peak = rss0
    deadline = time.monotonic() + 60
    while th.is_alive() and time.monotonic() < deadline:
        peak = max(peak, workers_rss_kb(heron))
        time.sleep(0.05)
    th.join(1)
    assert_rss_growth(rss0, peak, 16 * 1024)
    # Either refused with a reply (then the session goes on) or closed.
    try:
        line = c.readline()
        assert b"BAD" in line or line.startswith(b"* BYE"), line
    except (EOFError, ConnectionError):
        return
    if not line.startswith(b"* BYE"):
        c.ok("NOOP")
    c.close()


def test_bomb_many_commands_bounded(heron):
    """A small input inflating to a million NOOPs from a client that
    reads nothing: inflated a capped input buffer at a time, answered
    into output that back-pressure bounds."""
    c = ZImap(heron, rcvbuf=65536)
    c.start_compress()
    rss0 = workers_rss_kb(heron)
    data = c.comp.compress(b"n NOOP\r\n" * 1000000) + \
        c.comp.flush(zlib.Z_SYNC_FLUSH)
    assert len(data) < 100 * 1024, len(data)
    th = _send_in_thread(c.sock, data)
    time.sleep(1.5)
    assert_rss_growth(rss0, workers_rss_kb(heron), 16 * 1024)
    # Still responsive to others; this client just goes away.
    d = ZImap(heron)
    d.start_compress()
    d.ok("NOOP")
    d.close()
    c.sock.close()
    th.join(5)


def test_kick_bye_arrives_compressed(heron):
    """Output made outside the session's own events (the control socket's
    kick) is compressed and flushed too, then the connection closes."""
    c = ZImap(heron)
    c.start_compress()
    c.ok("SELECT INBOX")
    r = heron.run_cli(["kick", "-c", heron.conf, "alice"])
    assert r.returncode == 0, r.stderr
    assert c.readline() == b"* BYE Disconnected by administrator"
    assert c.is_closed()
    c.close()


def test_compressed_bytes_in_same_packet_as_command(heron):
    """A client that sends compressed data right behind COMPRESS (RFC 4978
    says to wait for the OK): the bytes after the command line are taken
    as compressed, never parsed as plaintext."""
    c = ZImap(heron)
    co = zlib.compressobj(6, zlib.DEFLATED, -15)
    early = co.compress(b"n1 NOOP\r\n") + co.flush(zlib.Z_SYNC_FLUSH)
    c.send_raw(b"c1 COMPRESS DEFLATE\r\n" + early)
    line = c.readline()
    assert line.startswith(b"c1 OK"), line
    rest, c.buf = c.buf, b""
    c.comp, c.decomp = co, zlib.decompressobj(-15)
    c.buf = c.decomp.decompress(rest)
    _, t = c.read_tagged("n1")
    assert t.startswith(b"n1 OK"), t
    c.ok("NOOP")
    c.close()


@pytest.mark.parametrize("tls", [False, True], ids=["plain", "tls"])
def test_append_literal_compressed(heron, tls):
    """APPEND with a synchronizing literal (the "+" comes compressed) and
    a LITERAL+ one, the bytes inflated at the server's input cap."""
    msg = random_message("appended", 2 * 1024 * 1024)
    c = ZImap(heron, tls=tls)
    c.start_compress()
    c.send("a1 APPEND INBOX {%d}\r\n" % len(msg))
    assert c.readline().startswith(b"+"), "no continuation"
    c.send(msg + b"\r\n")
    _, t = c.read_tagged("a1")
    assert t.startswith(b"a1 OK"), t
    c.send(b"a2 APPEND INBOX {%d+}\r\n" % len(msg) + msg + b"\r\n")
    _, t = c.read_tagged("a2")
    assert t.startswith(b"a2 OK"), t
    c.ok("SELECT INBOX")
    lines = c.ok("FETCH 1:2 BODY.PEEK[]")
    assert len(lines) == 2 and all(ln.endswith(msg + b")") for ln in lines)
    c.close()
