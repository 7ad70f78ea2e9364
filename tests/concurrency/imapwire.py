"""imapwire.py: a small IMAP response reader and parser for the
concurrency checker (RFC 3501 section 7 and 9, only what the checker
needs). Every untagged response is returned, in order, as the server sent
it; imaplib hides too much for that.

Limits: a response (line plus literals) is at most MAX_RESPONSE bytes;
every read has a deadline; loopback sockets only.
"""

import re
import socket
import time

MAX_RESPONSE = 16 << 20
LITERAL_AT_END = re.compile(rb"\{(\d+)\+?\}$")


class WireError(Exception):
    """The connection broke or the server sent something unparsable."""


class Conn:
    """A raw IMAP connection: send bytes, read one whole response."""

    def __init__(self, port, timeout):
        self.timeout = timeout
        self.sock = socket.create_connection(("127.0.0.1", port),
                                             timeout=timeout)
        self.buf = b""
        self.injected = []      # self-test: responses to hand out first

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def _fill(self, deadline):
        left = deadline - time.monotonic()
        if left <= 0:
            raise socket.timeout("no response within %.0fs" % self.timeout)
        self.sock.settimeout(left)
        chunk = self.sock.recv(65536)
        if not chunk:
            raise WireError("connection closed by server")
        self.buf += chunk

    def _line(self, deadline):
        while True:
            i = self.buf.find(b"\r\n")
            if i >= 0:
                line, self.buf = self.buf[:i], self.buf[i + 2:]
                return line
            if len(self.buf) > MAX_RESPONSE:
                raise WireError("line longer than %d bytes" % MAX_RESPONSE)
            self._fill(deadline)

    def read_response(self, timeout=None):
        """One response: its line(s) with literals inline (the CRLF after
        each {n} is kept, the final CRLF is not)."""
        if self.injected:
            return self.injected.pop(0)
        deadline = time.monotonic() + (timeout or self.timeout)
        out = self._line(deadline)
        while True:
            m = LITERAL_AT_END.search(out)
            if not m:
                return out
            n = int(m.group(1))
            if len(out) + n > MAX_RESPONSE:
                raise WireError("literal of %d bytes too large" % n)
            while len(self.buf) < n:
                self._fill(deadline)
            out += b"\r\n" + self.buf[:n]
            self.buf = self.buf[n:]
            out += self._line(deadline)

    def has_pending(self):
        """True if data arrived that nobody asked for yet (no wait)."""
        if self.buf or self.injected:
            return True
        self.sock.settimeout(0)
        try:
            chunk = self.sock.recv(65536, socket.MSG_PEEK)
        except (BlockingIOError, socket.timeout):
            return False
        except OSError:
            return False
        finally:
            self.sock.settimeout(self.timeout)
        return bool(chunk)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


# ---------------------------------------------------------------- parser

class Parser:
    """Tokens of a response: atoms -> str, quoted/literal -> bytes,
    NIL -> None, parenthesized lists -> list. An atom holding a section
    (BODY[HEADER.FIELDS (A B)]<0>) stays one atom."""

    def __init__(self, buf, pos=0):
        self.b = buf
        self.i = pos

    def at_end(self):
        return self.i >= len(self.b)

    def skip_sp(self):
        while self.i < len(self.b) and self.b[self.i] == 0x20:
            self.i += 1

    def rest(self):
        return self.b[self.i:]

    def token(self):
        self.skip_sp()
        if self.at_end():
            raise WireError("token expected at end: %r" % self.b[:200])
        c = self.b[self.i]
        if c == 0x28:           # (
            self.i += 1
            return self._list()
        if c == 0x22:           # "
            return self._quoted()
        if c == 0x7b:           # {
            return self._literal()
        return self._atom()

    def _list(self):
        out = []
        while True:
            self.skip_sp()
            if self.at_end():
                raise WireError("unclosed list: %r" % self.b[:200])
            if self.b[self.i] == 0x29:
                self.i += 1
                return out
            out.append(self.token())

    def _quoted(self):
        self.i += 1
        out = bytearray()
        while True:
            if self.at_end():
                raise WireError("unclosed quoted string")
            c = self.b[self.i]
            self.i += 1
            if c == 0x5c:
                out.append(self.b[self.i])
                self.i += 1
            elif c == 0x22:
                return bytes(out)
            else:
                out.append(c)

    def _literal(self):
        j = self.b.index(b"}", self.i)
        n = int(self.b[self.i + 1:j].rstrip(b"+"))
        if self.b[j + 1:j + 3] != b"\r\n":
            raise WireError("literal without CRLF")
        start = j + 3
        self.i = start + n
        if self.i > len(self.b):
            raise WireError("short literal")
        return self.b[start:start + n]

    def _atom(self):
        start = self.i
        depth = 0
        while self.i < len(self.b):
            c = self.b[self.i]
            if c == 0x5b:
                depth += 1
            elif c == 0x5d:
                depth -= 1
            elif depth == 0 and c in (0x20, 0x28, 0x29):
                break
            self.i += 1
        if self.i == start:
            raise WireError("empty atom at %d: %r" % (start, self.b[:200]))
        a = self.b[start:self.i].decode("latin-1")
        return None if a.upper() == "NIL" else a


class Response:
    """kind: 'tagged', 'untagged', 'cont'. For untagged: num (or None),
    name (upper-case keyword), data (parsed rest), code/code_args for
    OK/NO/BAD/BYE; for tagged: tag, name (OK/NO/BAD), code, text."""

    def __init__(self, raw):
        self.raw = raw
        self.kind = None
        self.tag = None
        self.num = None
        self.name = None
        self.data = None
        self.code = None
        self.code_args = ""
        self.text = b""

    def __repr__(self):
        r = self.raw if len(self.raw) < 300 else self.raw[:300] + b"..."
        return repr(r)


def _resp_code(r, rest):
    """Splits '[CODE args] text' (RFC 3501 7.1)."""
    if rest.startswith(b"["):
        j = rest.find(b"]")
        if j > 0:
            inner = rest[1:j].decode("latin-1")
            parts = inner.split(" ", 1)
            r.code = parts[0].upper()
            r.code_args = parts[1] if len(parts) > 1 else ""
            rest = rest[j + 1:].lstrip(b" ")
    r.text = rest


def parse_response(raw):
    r = Response(raw)
    if raw.startswith(b"+"):
        r.kind = "cont"
        return r
    sp = raw.find(b" ")
    if sp <= 0:
        raise WireError("bad response line %r" % raw[:200])
    head = raw[:sp]
    p = Parser(raw, sp + 1)
    if head != b"*":
        r.kind = "tagged"
        r.tag = head.decode("latin-1")
        r.name = p.token().upper()
        p.skip_sp()
        _resp_code(r, p.rest())
        return r
    r.kind = "untagged"
    first = p.token()
    if first is not None and first.isdigit():
        r.num = int(first)
        r.name = p.token().upper()
        if r.name == "FETCH":
            r.data = p.token()
            if not isinstance(r.data, list):
                raise WireError("FETCH without a list: %r" % raw[:200])
        return r
    r.name = (first or "").upper()
    p.skip_sp()
    if r.name in ("OK", "NO", "BAD", "BYE", "PREAUTH"):
        _resp_code(r, p.rest())
    elif r.name == "SEARCH":
        r.data = [int(x) for x in p.rest().split() if x.isdigit()]
        if any(not x.isdigit() for x in p.rest().split()):
            r.data = None       # (MODSEQ n) etc.: not checked
    elif r.name == "FLAGS":
        r.data = p.token()
    else:
        r.data = p.rest()
    return r


def fetch_items(data):
    """FETCH msg-att list -> {NAME: value}; BODY[...] keys keep their
    section text upper-cased (origin '<0>' dropped)."""
    out = {}
    if len(data) % 2:
        raise WireError("odd FETCH item list %r" % (data[:10],))
    for k, v in zip(data[0::2], data[1::2]):
        if not isinstance(k, str):
            raise WireError("FETCH item name %r" % (k,))
        k = k.upper()
        k = re.sub(r"<\d+>$", "", k)
        out[k] = v
    return out


def parse_uid_set(s):
    """'1:3,7' -> [1, 2, 3, 7] (no '*'; COPYUID sets, RFC 4315)."""
    out = []
    for part in s.split(","):
        if ":" in part:
            a, b = part.split(":")
            a, b = int(a), int(b)
            if a > b:
                a, b = b, a
            if b - a > 100000:
                raise WireError("uid range too large %r" % s)
            out.extend(range(a, b + 1))
        else:
            out.append(int(part))
    return out


def seq_set_str(nums):
    """[1,2,3,7] -> '1:3,7'."""
    nums = sorted(set(nums))
    parts = []
    i = 0
    while i < len(nums):
        j = i
        while j + 1 < len(nums) and nums[j + 1] == nums[j] + 1:
            j += 1
        parts.append(str(nums[i]) if i == j else
                     "%d:%d" % (nums[i], nums[j]))
        i = j + 1
    return ",".join(parts)
