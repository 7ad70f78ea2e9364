"""IMAP BINARY (RFC 3516, RFC 9051 6.4.5) and APPEND literal8 / UTF8
(RFC 3516 4.4, RFC 6855 4) against the real daemon on 127.0.0.1:
base64 and quoted-printable parts decoded, partial ranges in decoded
octets, BINARY.SIZE, nested part numbers, NUL-bearing data as literal8
"~{n}", \\Seen vs PEEK, UNKNOWN-CTE, the BAD cases, a large part, and
APPEND ~{n} with NULs read back with FETCH BINARY[]."""

import base64
import hashlib
import os
import quopri
import re
import socket
import time

import pytest

import heronlib
from heronlib import PASSWORDS, LineClient


class Imap:
    """A raw IMAP client: responses as bytes, literals ({n} and ~{n})
    read inline."""

    def __init__(self, heron, user="alice"):
        self.c = LineClient.connect(heron.imap_port)
        self.n = 0
        assert self.c.readline().startswith(b"* OK")
        st, _ = self.cmd("LOGIN %s %s" % (user, PASSWORDS[user]))
        assert st.startswith(b"OK"), st

    def _read_exact(self, n):
        while len(self.c.buf) < n:
            self.c._fill()
        out, self.c.buf = self.c.buf[:n], self.c.buf[n:]
        return out

    def _line(self):
        return self.c.read_exact_until(b"\r\n")

    def read(self, tag):
        """(status line after the tag, untagged bytes)."""
        resp = b""
        while True:
            line = self._line()
            if line.startswith(tag + b" "):
                return line[len(tag) + 1:].rstrip(b"\r\n"), resp
            resp += line
            mm = re.search(rb"~?\{(\d+)\}\r\n$", line)
            if mm:
                resp += self._read_exact(int(mm.group(1)))

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.n += 1
        tag = b"b%d" % self.n
        self.c.send(tag + b" " + data + b"\r\n")
        return tag

    def cmd(self, data):
        return self.read(self.send(data))

    def ok(self, data):
        st, resp = self.cmd(data)
        assert st.startswith(b"OK"), (data, st, resp[:300])
        return resp

    def append8(self, msg, mailbox="INBOX", prefix=b"", nonsync=True):
        """APPEND with a literal8 (non-synchronizing unless told)."""
        if nonsync:
            return self.cmd(b"APPEND " + mailbox.encode() + b" " +
                            prefix + b"~{%d+}\r\n" % len(msg) + msg +
                            (b")" if prefix.endswith(b"(") else b""))
        self.n += 1
        tag = b"b%d" % self.n
        self.c.send(tag + b" APPEND " + mailbox.encode() + b" " + prefix +
                    b"~{%d}\r\n" % len(msg))
        line = self._line()
        if not line.startswith(b"+"):
            return line[len(tag) + 1:].rstrip(), b""
        self.c.send(msg + (b")" if prefix.endswith(b"(") else b"") +
                    b"\r\n")
        return self.read(tag)

    def close(self):
        self.c.close()


def one_value(resp, label):
    """The value of item label in a one-message FETCH response:
    ("lit8" / "lit" / "quoted" / "atom", bytes)."""
    i = resp.index(label.encode() + b" ") + len(label) + 1
    mm = re.compile(rb"(~?)\{(\d+)\}\r\n").match(resp, i)
    if mm:
        n = int(mm.group(2))
        return ("lit8" if mm.group(1) else "lit",
                resp[mm.end():mm.end() + n])
    if resp[i:i + 1] == b'"':
        j = resp.index(b'"', i + 1)
        return "quoted", resp[i + 1:j]
    mm = re.compile(rb"[^ )\r\n]+").match(resp, i)
    return "atom", mm.group(0)


BIN = bytes(range(256)) * 3 + b"\x00\x00end"
QP_TEXT = ("caf\u00e9 = ok, soft break over a very long line that "
           "continues here\nsecond line\twith tab\n").encode("utf-8")


def crlf_msg(text):
    return text.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def b64_lines(data):
    return base64.encodebytes(data)          # 76-column lines, LF


MULTI = crlf_msg(
    b"From: a@example.org\nTo: b@example.org\nSubject: binary\n"
    b"MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"XX\"\n"
    b"\n--XX\nContent-Type: text/plain\n\nplain 7bit text\nline 2\n"
    b"--XX\nContent-Type: application/octet-stream\n"
    b"Content-Transfer-Encoding: base64\n\n" + b64_lines(BIN) +
    b"--XX\nContent-Type: text/plain; charset=utf-8\n"
    b"Content-Transfer-Encoding: quoted-printable\n\n" +
    quopri.encodestring(QP_TEXT) +
    b"--XX\nContent-Type: message/rfc822\n\n"
    b"From: c@example.org\nSubject: inner\nMIME-Version: 1.0\n"
    b"Content-Type: multipart/alternative; boundary=\"YY\"\n\n"
    b"--YY\nContent-Type: text/plain\n\ninner text\n"
    b"--YY\nContent-Type: image/png\nContent-Transfer-Encoding: BASE64\n\n"
    + b64_lines(b"\x89PNG\x00\x01inner") +
    b"--YY--\n"
    b"--XX\nContent-Type: application/x-foo\n"
    b"Content-Transfer-Encoding: x-uuencode\n\nbegin 644 x\n`\nend\n"
    b"--XX--\n")


@pytest.fixture
def box(heron):
    m = Imap(heron)
    st, _ = m.append8(MULTI)
    assert st.startswith(b"OK"), st
    m.ok("SELECT INBOX")
    yield m
    m.close()


def test_capability(heron):
    m = Imap(heron)
    resp = m.ok("CAPABILITY")
    assert b" BINARY" in resp
    m.close()


def test_base64_part_is_literal8(box):
    resp = box.ok("FETCH 1 (BINARY.PEEK[2] BINARY.SIZE[2])")
    assert one_value(resp, "BINARY[2]") == ("lit8", BIN)
    assert one_value(resp, "BINARY.SIZE[2]") == ("atom",
                                                 str(len(BIN)).encode())
    assert b"FLAGS" not in resp        # PEEK: \Seen untouched


def test_qp_part_decoded_with_crlf(box):
    resp = box.ok("FETCH 1 (BINARY.PEEK[3] BINARY.SIZE[3])")
    want = crlf_msg(QP_TEXT)[:-2]   # the last CRLF is the delimiter's
    assert one_value(resp, "BINARY[3]") == ("lit", want)
    assert one_value(resp, "BINARY.SIZE[3]")[1] == str(len(want)).encode()


def test_identity_part_equals_body(box):
    resp = box.ok("FETCH 1 (BINARY.PEEK[1] BODY.PEEK[1] BINARY.SIZE[1])")
    body = one_value(resp, "BODY[1]")[1]
    assert body == b"plain 7bit text\r\nline 2"
    assert one_value(resp, "BINARY[1]") == ("lit", body)
    assert one_value(resp, "BINARY.SIZE[1]")[1] == str(len(body)).encode()


def test_partial_counts_decoded_octets(box):
    for start, n in ((0, 5), (250, 20), (len(BIN) - 3, 10), (1, 1)):
        resp = box.ok("FETCH 1 BINARY.PEEK[2]<%d.%d>" % (start, n))
        kind, val = one_value(resp, "BINARY[2]<%d>" % start)
        assert val == BIN[start:start + n], (start, n)
        assert kind == ("lit8" if b"\x00" in val else "lit"), (start, n)
    resp = box.ok("FETCH 1 BINARY.PEEK[2]<%d.5>" % (len(BIN) + 10))
    assert one_value(resp, "BINARY[2]<%d>" % (len(BIN) + 10)) == \
        ("quoted", b"")
    # only the range's octets decide literal8
    resp = box.ok("FETCH 1 BINARY.PEEK[2]<1.10>")
    assert one_value(resp, "BINARY[2]<1>") == ("lit", BIN[1:11])


def test_nested_parts(box):
    resp = box.ok("FETCH 1 (BINARY.PEEK[4.2] BINARY.PEEK[4.1] "
                  "BINARY.SIZE[4.2])")
    assert one_value(resp, "BINARY[4.2]") == ("lit8", b"\x89PNG\x00\x01inner")
    assert one_value(resp, "BINARY[4.1]") == ("lit", b"inner text")
    assert one_value(resp, "BINARY.SIZE[4.2]")[1] == b"11"


def test_missing_part(box):
    resp = box.ok("FETCH 1 (BINARY.PEEK[9] BINARY.SIZE[9] BINARY.PEEK[1.3])")
    assert one_value(resp, "BINARY[9]") == ("quoted", b"")
    assert one_value(resp, "BINARY.SIZE[9]") == ("atom", b"0")


def test_binary_sets_seen(box):
    resp = box.ok("FETCH 1 BINARY[1]")
    assert b"\\Seen" in resp
    resp = box.ok("FETCH 1 FLAGS")
    assert b"\\Seen" in resp


def test_unknown_cte(box):
    st, resp = box.cmd("FETCH 1 BINARY.PEEK[5]")
    assert st.startswith(b"NO [UNKNOWN-CTE]"), st
    assert b"FETCH" not in resp
    st, _ = box.cmd("FETCH 1 BINARY.SIZE[5]")
    assert st.startswith(b"NO [UNKNOWN-CTE]"), st
    # BODY[] of it still works
    box.ok("FETCH 1 BODY.PEEK[5]")


@pytest.mark.parametrize("item", [
    "BINARY[1.MIME]", "BINARY[HEADER]", "BINARY[TEXT]", "BINARY[1.TEXT]",
    "BINARY.PEEK[HEADER.FIELDS (From)]", "BINARY.SIZE[1]<0.5>",
    "BINARY[1]<0.0>", "BINARY[1", "BINARY[x]", "BINARY.PEEK[1.]"])
def test_bad_syntax(box, item):
    st, resp = box.cmd("FETCH 1 " + item)
    assert st.startswith(b"BAD"), (item, st)
    assert b"FETCH" not in resp


@pytest.mark.parametrize("item", ["BINARY.PEEK[]", "BINARY.PEEK[4]",
                                  "BINARY.SIZE[]", "BINARY[4.0]"])
def test_bad_not_leaf(box, item):
    st, resp = box.cmd("FETCH 1 " + item)
    assert st.startswith(b"BAD"), (item, st)
    assert b"FETCH (" not in resp


def test_refused_message_keeps_flags(box):
    st, _ = box.cmd("FETCH 1 (BINARY[1] BINARY[5])")
    assert st.startswith(b"NO [UNKNOWN-CTE]"), st
    st, _ = box.cmd("FETCH 1 BINARY[]")
    assert st.startswith(b"BAD"), st
    assert b"\\Seen" not in box.ok("FETCH 1 FLAGS")


def test_not_leaf_leaves_other_messages(box):
    msg = crlf_msg(b"Subject: single\n\nhello\n")
    assert box.append8(msg)[0].startswith(b"OK")
    st, resp = box.cmd("FETCH 1:2 BINARY.PEEK[]")
    assert st.startswith(b"BAD"), st
    assert b"* 1 FETCH" not in resp
    assert one_value(resp, "BINARY[]") == ("lit", msg)


def test_append_literal8_nul_round_trip(heron):
    m = Imap(heron)
    body = b"\x00\x01\x02 binary \x00\r\n\x7f\xff\x00" + bytes(range(1, 10))
    msg = crlf_msg(b"Subject: nul\nContent-Type: application/octet-stream\n"
                   b"Content-Transfer-Encoding: binary\n\n") + body
    st, _ = m.append8(msg, nonsync=False)
    assert st.startswith(b"OK [APPENDUID"), st
    st, _ = m.append8(msg)                  # ~{n+}
    assert st.startswith(b"OK [APPENDUID"), st
    m.ok("SELECT INBOX")
    resp = m.ok("FETCH 1:2 (BINARY.PEEK[] BINARY.PEEK[1] BINARY.SIZE[] "
                "BINARY.SIZE[1])")
    # RFC 3516 4.4: stored as base64 (binary_convert.c), decoded again
    want = msg.replace(b"Encoding: binary", b"Encoding: base64")
    for part in resp.split(b"* ")[1:]:
        assert one_value(b"* " + part, "BINARY[]") == ("lit8", want)
        assert one_value(b"* " + part, "BINARY[1]") == ("lit8", body)
        assert one_value(b"* " + part, "BINARY.SIZE[]")[1] == \
            str(len(msg)).encode()
        assert one_value(b"* " + part, "BINARY.SIZE[1]")[1] == \
            str(len(body)).encode()
    m.close()


def test_append_nul_needs_literal8(heron):
    m = Imap(heron)
    msg = b"Subject: x\r\n\r\na\x00b\r\n"
    st, _ = m.cmd(b"APPEND INBOX {%d+}\r\n" % len(msg) + msg)
    assert st.startswith(b"BAD"), st
    # the session is still in sync
    m.ok("NOOP")
    st, _ = m.cmd("STATUS INBOX (MESSAGES)")
    m.close()


@pytest.mark.heron_conf(max_message_size="2k")
def test_append_literal8_limit(heron):
    m = Imap(heron)
    st, _ = m.append8(b"Subject: big\r\n\r\n" + b"\x00" * 3000,
                      nonsync=False)
    assert st.startswith(b"NO [TOOBIG]"), st
    st, _ = m.append8(b"Subject: big\r\n\r\n" + b"\x00" * 3000)
    assert st.startswith(b"NO [TOOBIG]"), st
    m.ok("NOOP")
    st, _ = m.append8(b"Subject: ok\r\n\r\n\x00\r\n")
    assert st.startswith(b"OK"), st
    m.close()


def test_append_utf8_data_extension(heron):
    m = Imap(heron)
    msg = ("Subject: caf\u00e9\r\nFrom: j\u00f6rg@example.org\r\n\r\n"
           "b\u00f6dy\r\n").encode("utf-8")
    st, _ = m.append8(msg, prefix=b"UTF8 (")
    assert st.startswith(b"BAD"), st         # not enabled yet
    m.ok("NOOP")
    st, _ = m.cmd("ENABLE UTF8=ACCEPT")
    if not st.startswith(b"OK"):
        pytest.skip("ENABLE UTF8=ACCEPT not available")
    st, _ = m.append8(msg, prefix=b"(\\Flagged) UTF8 (")
    assert st.startswith(b"OK [APPENDUID"), st
    st, _ = m.append8(msg, prefix=b"UTF8 (", nonsync=False)
    assert st.startswith(b"OK [APPENDUID"), st
    # MULTIAPPEND mixing both forms
    st, _ = m.cmd(b"APPEND INBOX UTF8 (~{%d+}\r\n" % len(msg) + msg +
                  b") (\\Seen) ~{%d+}\r\n" % len(msg) + msg)
    assert st.startswith(b"OK [APPENDUID"), st
    # a literal that is not literal8 inside UTF8 ( )
    st, _ = m.cmd(b"APPEND INBOX UTF8 ({%d+}\r\n" % len(msg) + msg + b")")
    assert st.startswith(b"BAD"), st
    m.ok("NOOP")
    m.ok("SELECT INBOX")
    resp = m.ok("FETCH 1:4 (FLAGS BODY.PEEK[])")
    assert resp.count(msg) == 4
    assert b"\\Flagged" in resp
    m.close()


def test_large_base64_part_streams(heron):
    data = hashlib.sha256(b"seed").digest() * (3 * 1024 * 1024 // 32)
    data += b"\x00tail"
    msg = crlf_msg(b"Subject: big\nMIME-Version: 1.0\n"
                   b"Content-Type: multipart/mixed; boundary=b\n\n--b\n"
                   b"Content-Type: application/octet-stream\n"
                   b"Content-Transfer-Encoding: base64\n\n" +
                   b64_lines(data) + b"--b--\n")
    m = Imap(heron)
    st, _ = m.append8(msg)
    assert st.startswith(b"OK"), st
    m.ok("SELECT INBOX")
    resp = m.ok("FETCH 1 (BINARY.SIZE[1] BINARY.PEEK[1])")
    assert one_value(resp, "BINARY.SIZE[1]")[1] == str(len(data)).encode()
    kind, val = one_value(resp, "BINARY[1]")
    assert kind == "lit8"
    assert hashlib.sha256(val).digest() == hashlib.sha256(data).digest()
    start = 1000003
    resp = m.ok("FETCH 1 BINARY.PEEK[1]<%d.100000>" % start)
    kind, val = one_value(resp, "BINARY[1]<%d>" % start)
    assert val == data[start:start + 100000]
    assert kind == ("lit8" if b"\x00" in val else "lit")
    m.close()


def test_slow_reader_gets_everything(heron):
    """Back-pressure: the client reads slowly through a small buffer."""
    data = os.urandom(200 * 1024)
    msg = crlf_msg(b"Subject: slow\nContent-Transfer-Encoding: base64\n"
                   b"Content-Type: application/octet-stream\n\n") + \
        crlf_msg(b64_lines(data))
    m = Imap(heron)
    assert m.append8(msg)[0].startswith(b"OK")
    m.ok("SELECT INBOX")
    m.c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    tag = m.send("FETCH 1 BINARY.PEEK[1]")
    time.sleep(0.5)
    st, resp = m.read(tag)
    assert st.startswith(b"OK"), st
    assert one_value(resp, "BINARY[1]")[1] == data
    m.close()
