"""APPEND of binary content as a literal8 (RFC 3516 4.4 and 6, RFC 9051
4.3.1) against the real daemon on 127.0.0.1: parts with
Content-Transfer-Encoding: binary, NULs or bare CRs are stored as base64
(src/mail/binary_convert.c), so BODYSTRUCTURE says "base64", BODY[] has
no NUL and is a valid message, BINARY[part] gives the exact original
octets; a literal8 without binary parts and a plain {n} APPEND are stored
as sent."""

import email
import email.policy
import re

from heronlib import PASSWORDS, LineClient


class Imap:
    """A raw IMAP client: responses as bytes, literals read inline."""

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

    def read(self, tag):
        resp = b""
        while True:
            line = self.c.read_exact_until(b"\r\n")
            if line.startswith(tag + b" "):
                return line[len(tag) + 1:].rstrip(b"\r\n"), resp
            resp += line
            mm = re.search(rb"~?\{(\d+)\}\r\n$", line)
            if mm:
                resp += self._read_exact(int(mm.group(1)))

    def cmd(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.n += 1
        tag = b"t%d" % self.n
        self.c.send(tag + b" " + data + b"\r\n")
        return self.read(tag)

    def ok(self, data):
        st, resp = self.cmd(data)
        assert st.startswith(b"OK"), (data, st, resp[:300])
        return resp

    def append(self, msg, literal8=True, sync=False):
        if not sync:
            return self.cmd(b"APPEND INBOX %s{%d+}\r\n" %
                            (b"~" if literal8 else b"", len(msg)) + msg)
        self.n += 1
        tag = b"t%d" % self.n
        self.c.send(tag + b" APPEND INBOX %s{%d}\r\n" %
                    (b"~" if literal8 else b"", len(msg)))
        line = self.c.read_exact_until(b"\r\n")
        assert line.startswith(b"+"), line
        self.c.send(msg + b"\r\n")
        return self.read(tag)

    def close(self):
        self.c.close()


def value(resp, label):
    """("lit8" / "lit" / "quoted" / "atom", bytes) of item label."""
    i = resp.index(label.encode() + b" ") + len(label) + 1
    mm = re.compile(rb"(~?)\{(\d+)\}\r\n").match(resp, i)
    if mm:
        n = int(mm.group(2))
        return ("lit8" if mm.group(1) else "lit",
                resp[mm.end():mm.end() + n])
    if resp[i:i + 1] == b'"':
        return "quoted", resp[i + 1:resp.index(b'"', i + 1)]
    return "atom", re.compile(rb"[^ )\r\n]+").match(resp, i).group(0)


def crlf(b):
    return b.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


# NULs, bare CRs, a bare LF, CRLF and every octet value
BIN = (b"\x00\x01\rA\r\n\x00B\rC\nD\r\r\n" + bytes(range(256)) * 2 +
       b"\x00end\r")
TEXT1 = b"hello\r\nworld"

MSG = (b"From: a@example.org\r\nSubject: binary append\r\n"
       b"MIME-Version: 1.0\r\n"
       b"Content-Type: multipart/mixed; boundary=\"XX\"\r\n\r\n"
       b"--XX\r\nContent-Type: text/plain\r\n\r\n" + TEXT1 + b"\r\n"
       b"--XX\r\nContent-Type: application/octet-stream\r\n"
       b"Content-Transfer-Encoding: binary\r\n"
       b"Content-Disposition: attachment; filename=x.bin\r\n\r\n" + BIN +
       b"\r\n--XX--\r\n")


def fetch1(m, items):
    m.ok("SELECT INBOX")
    return m.ok("FETCH 1 (%s)" % items)


def test_binary_part_becomes_base64(heron):
    m = Imap(heron)
    st, _ = m.append(MSG)
    assert st.startswith(b"OK [APPENDUID "), st
    resp = fetch1(m, "BODYSTRUCTURE BODY.PEEK[] BODY.PEEK[1] "
                  "BINARY.PEEK[2] BINARY.SIZE[2] RFC822.SIZE")
    bs = resp[resp.index(b"BODYSTRUCTURE"):].split(b"BODY[")[0].lower()
    assert b'"octet-stream"' in bs and b'"base64"' in bs, bs
    assert b'"binary"' not in bs, bs
    kind, full = value(resp, "BODY[]")
    assert kind == "lit" and b"\x00" not in full
    # a valid MIME message whose part 2 decodes to the original octets
    parsed = email.message_from_bytes(full, policy=email.policy.compat32)
    parts = parsed.get_payload()
    assert len(parts) == 2
    assert parts[1]["Content-Transfer-Encoding"] == "base64"
    assert parts[1].get_payload(decode=True) == BIN
    assert parts[1]["Content-Disposition"] == "attachment; filename=x.bin"
    assert value(resp, "BODY[1]") == ("lit", TEXT1)
    assert value(resp, "BINARY[2]") == ("lit8", BIN)
    assert value(resp, "BINARY.SIZE[2]") == ("atom", b"%d" % len(BIN))
    assert value(resp, "RFC822.SIZE")[1] == b"%d" % len(full)
    # everything around part 2 is byte for byte what was sent
    head = MSG[:MSG.index(b"Content-Transfer-Encoding: binary")]
    assert full.startswith(head)
    assert full.endswith(b"\r\n--XX--\r\n")
    m.close()


def test_synchronizing_literal8_and_nested_message(heron):
    inner = (b"Subject: inner\r\nContent-Type: application/x-raw\r\n\r\n"
             b"a\x00b\rc")                       # no CTE, NUL and bare CR
    msg = (b"Subject: outer\r\nContent-Type: multipart/mixed; boundary=o\r\n"
           b"\r\n--o\r\nContent-Type: text/plain\r\n\r\ntext\r\n"
           b"--o\r\nContent-Type: message/rfc822\r\n\r\n" + inner +
           b"\r\n--o--\r\n")
    m = Imap(heron)
    st, _ = m.append(msg, sync=True)
    assert st.startswith(b"OK [APPENDUID "), st
    resp = fetch1(m, "BODYSTRUCTURE BODY.PEEK[] BINARY.PEEK[2.1] "
                  "BINARY.SIZE[2.1] BODY.PEEK[2.HEADER]")
    kind, full = value(resp, "BODY[]")
    assert kind == "lit" and b"\x00" not in full
    assert value(resp, "BINARY[2.1]") == ("lit8", b"a\x00b\rc")
    assert value(resp, "BINARY.SIZE[2.1]") == ("atom", b"5")
    hdr = value(resp, "BODY[2.HEADER]")[1]
    assert hdr == (b"Subject: inner\r\nContent-Type: application/x-raw\r\n"
                   b"Content-Transfer-Encoding: base64\r\n\r\n")
    m.close()


def test_literal8_without_binary_is_stored_as_sent(heron):
    msgs = [
        crlf(b"Subject: plain\nContent-Type: text/plain; charset=utf-8\n"
             b"Content-Transfer-Encoding: 8bit\n\ncaf\xc3\xa9\nline\n"),
        # LF line ends: the store keeps LF, FETCH sends CRLF
        b"Subject: lf\nMIME-Version: 1.0\n"
        b"Content-Type: multipart/mixed; boundary=b\n\n"
        b"--b\nContent-Type: text/plain\n\nx\n"
        b"--b\nContent-Type: image/png\nContent-Transfer-Encoding: base64"
        b"\n\niVBORw0KGgo=\n--b--\n",
    ]
    m = Imap(heron)
    for msg in msgs:
        st, _ = m.append(msg)
        assert st.startswith(b"OK [APPENDUID "), st
    m.ok("SELECT INBOX")
    for i, msg in enumerate(msgs, 1):
        resp = m.ok("FETCH %d BODY.PEEK[]" % i)
        assert value(resp, "BODY[]") == ("lit", crlf(msg)), i
    m.close()


def test_plain_literal_is_never_converted(heron):
    # a {n} literal can't hold NUL; its "binary" part and bare CR stay
    msg = (b"Subject: plain literal\r\nContent-Transfer-Encoding: binary\r\n"
           b"\r\nbare\rCR\r\n")
    m = Imap(heron)
    st, _ = m.append(msg, literal8=False)
    assert st.startswith(b"OK [APPENDUID "), st
    resp = fetch1(m, "BODY.PEEK[] BODYSTRUCTURE")
    assert value(resp, "BODY[]") == ("lit", msg)
    assert b'"binary"' in resp.lower()
    m.close()


def test_multiappend_mixes_forms(heron):
    plain = b"Subject: p\r\nContent-Transfer-Encoding: binary\r\n\r\nx\ry\r\n"
    m = Imap(heron)
    st, _ = m.cmd(b"APPEND INBOX ~{%d+}\r\n" % len(MSG) + MSG +
                  b" {%d+}\r\n" % len(plain) + plain +
                  b" ~{%d+}\r\n" % len(MSG) + MSG)
    assert st.startswith(b"OK [APPENDUID "), st
    m.ok("SELECT INBOX")
    for i in (1, 3):
        resp = m.ok("FETCH %d BINARY.PEEK[2]" % i)
        assert value(resp, "BINARY[2]") == ("lit8", BIN), i
    resp = m.ok("FETCH 2 BODY.PEEK[]")
    assert value(resp, "BODY[]") == ("lit", plain)
    m.close()
