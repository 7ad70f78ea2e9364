"""test_imap_utf8.py: IMAP UTF8=ACCEPT (RFC 6855, RFC 9051) against the
real daemon: the capability and ENABLE reply, mailbox names in UTF-8 in
both directions (CREATE/LIST/LSUB/SELECT/STATUS/RENAME/DELETE) and the
same folders seen in modified UTF-7 by a session that did not enable it,
invalid UTF-8 refused, SEARCH CHARSET after ENABLE, ENVELOPE of messages
with raw UTF-8 headers (RFC 6532).

A raw socket client keeps the exact bytes of responses, so tests can tell
a quoted string from a literal."""

import os
import re
import socket

import pytest

from heronlib import PASSWORDS, IO_TIMEOUT, crlf, deliver

BAER = "B\u00e4r"                       # "Bär"
BAER_UTF7 = "B&AOQ-r"
CJK = "\u65e5\u672c\u8a9e"              # "日本語"
CJK_UTF7 = "&ZeVnLIqe-"
EMOJI = "\U0001f600"                    # outside the BMP: a surrogate pair
EMOJI_UTF7 = "&2D3eAA-"


class Raw:
    """Tagged commands over a plain socket. cmd() returns (untagged,
    tagged) as bytes; a line announcing a literal is joined with it."""

    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port),
                                          timeout=IO_TIMEOUT)
        self.buf = b""
        self.n = 0
        assert self.line().startswith(b"* OK")

    def _fill(self):
        d = self.s.recv(65536)
        if not d:
            raise EOFError("connection closed")
        self.buf += d

    def line(self):
        while b"\r\n" not in self.buf:
            self._fill()
        ln, self.buf = self.buf.split(b"\r\n", 1)
        m = re.search(rb"\{(\d+)\}$", ln)
        if m:
            n = int(m.group(1))
            while len(self.buf) < n:
                self._fill()
            ln += b"\r\n" + self.buf[:n]
            self.buf = self.buf[n:]
            ln += self.line()
        return ln

    def send(self, data):
        self.s.sendall(data)

    def cmd(self, text):
        """text: str (sent as UTF-8) or bytes, without tag and CRLF."""
        self.n += 1
        tag = b"U%d" % self.n
        if isinstance(text, str):
            text = text.encode("utf-8")
        self.send(tag + b" " + text + b"\r\n")
        return self.wait(tag)

    def wait(self, tag):
        untagged = []
        while True:
            ln = self.line()
            if ln.startswith(tag + b" "):
                return untagged, ln[len(tag) + 1:]
            untagged.append(ln)

    def ok(self, text):
        u, t = self.cmd(text)
        assert t.startswith(b"OK"), (text, t, u)
        return u

    def login(self, user="alice"):
        self.ok('LOGIN %s "%s"' % (user, PASSWORDS[user]))
        return self

    def enable(self):
        u = self.ok("ENABLE UTF8=ACCEPT")
        assert u == [b"* ENABLED UTF8=ACCEPT"], u
        return self

    def close(self):
        try:
            self.s.close()
        except OSError:
            pass


@pytest.fixture
def raw(heron):
    conns = []

    def make(user="alice", login=True):
        r = Raw(heron.imap_port)
        conns.append(r)
        return r.login(user) if login else r
    yield make
    for c in conns:
        c.close()


def names(untagged, kind=b"LIST"):
    """The raw name fields (quotes and all) of LIST/LSUB lines."""
    out = []
    for ln in untagged:
        m = re.match(rb"\* " + kind + rb" \([^)]*\) \"/\" (.*)$", ln,
                     re.S)
        if m:
            out.append(m.group(1))
    return out


def q(name):
    """The quoted form of a str name, as bytes."""
    return b'"' + name.encode("utf-8") + b'"'


# ------------------------------------------------------ capability, ENABLE

def test_capability_and_enable(raw):
    r = raw(login=False)
    u, t = r.cmd("ENABLE UTF8=ACCEPT")       # RFC 6855 3: authenticated
    assert t.startswith(b"BAD"), t
    r.login()
    caps = r.ok("CAPABILITY")[0].split()
    assert b"UTF8=ACCEPT" in caps, caps
    assert b"UTF8=ONLY" not in caps
    r.enable()
    # RFC 5161: the ENABLED response names what this command enabled
    u = r.ok("ENABLE UTF8=ACCEPT")
    assert u == [b"* ENABLED"], u
    u = r.ok("ENABLE utf8=accept CONDSTORE X-UNKNOWN")
    assert u == [b"* ENABLED CONDSTORE"], u


def test_enable_when_selected(raw):
    r = raw()
    r.ok("SELECT INBOX")
    # RFC 6855 3 / RFC 5161 3.1: not in the selected state (ignored)
    u = r.ok("ENABLE UTF8=ACCEPT")
    assert u == [b"* ENABLED"], u
    u, t = r.cmd('CREATE "%s"' % BAER)       # still 7-bit quoting
    assert t.startswith(b"BAD"), t
    r.ok("CLOSE")
    r.enable()
    r.ok('CREATE "%s"' % BAER)


def test_pipelined_enable(raw):
    """The quoted UTF-8 right after ENABLE in the same packet parses."""
    r = raw()
    r.send(("E1 ENABLE UTF8=ACCEPT\r\nE2 CREATE \"%s\"\r\n" %
            BAER).encode("utf-8"))
    u, t = r.wait(b"E1")
    assert u == [b"* ENABLED UTF8=ACCEPT"] and t.startswith(b"OK"), t
    u, t = r.wait(b"E2")
    assert t.startswith(b"OK"), t


# ----------------------------------------------------------- mailbox names

def test_create_list_both_spellings(heron, raw):
    r = raw().enable()
    r.ok('CREATE "%s/%s"' % (BAER, CJK))
    r.ok('CREATE "%s"' % EMOJI)
    r.ok('CREATE "a&b"')                     # "&" is just a character
    r.ok('CREATE "%s"' % BAER_UTF7)          # not decoded under UTF-8
    got = names(r.ok('LIST "" "*"'))
    for n in (BAER, BAER + "/" + CJK, EMOJI):
        assert q(n) in got, (n, got)
    for n in ("a&b", BAER_UTF7):             # atoms or quoted
        assert n.encode() in got or q(n) in got, (n, got)
    # patterns are UTF-8 too
    got = names(r.ok('LIST "" "%s/%%"' % BAER))
    assert got == [q(BAER + "/" + CJK)], got
    got = names(r.ok('LIST "%s/" "%s"' % (BAER, CJK)))
    assert got == [q(BAER + "/" + CJK)], got
    # on disk: mUTF-7 Maildir++ names, as before
    md = heron.maildir("alice")
    assert os.path.isdir(os.path.join(md, "." + BAER_UTF7 + "." +
                                      CJK_UTF7))
    assert os.path.isdir(os.path.join(md, "." + EMOJI_UTF7))
    assert os.path.isdir(os.path.join(md, ".B&-AOQ-r"))
    # a session without UTF8=ACCEPT sees modified UTF-7, all 7-bit
    r2 = raw()
    u = r2.ok('LIST "" "*"')
    assert all(max(ln) < 0x80 for ln in u), u
    got = names(u)
    for n in (BAER_UTF7, BAER_UTF7 + "/" + CJK_UTF7, EMOJI_UTF7, "a&-b",
              "B&-AOQ-r"):
        assert n.encode() in got or q(n) in got, (n, got)
    got = names(r2.ok('LIST "" "%s/*"' % BAER_UTF7))
    assert got in ([(BAER_UTF7 + "/" + CJK_UTF7).encode()],
                   [q(BAER_UTF7 + "/" + CJK_UTF7)]), got


def test_select_status_rename_delete(heron, raw):
    r = raw().enable()
    r.ok('CREATE "%s"' % BAER)
    r.ok('CREATE "%s/%s"' % (BAER, CJK))
    r.ok('APPEND "%s" {7+}\r\nx: y\r\n\r\n' % BAER)
    u = r.ok('SELECT "%s"' % BAER)
    assert b"* 1 EXISTS" in u, u
    u = r.ok('STATUS "%s" (MESSAGES)' % BAER)
    assert u == [b"* STATUS " + q(BAER) + b" (MESSAGES 1)"], u
    r.ok("UNSELECT")
    # LIST-STATUS (RFC 5819) names the folder in both responses
    u = r.ok('LIST "" "%s" RETURN (STATUS (MESSAGES))' % BAER)
    assert u == [b'* LIST (\\HasChildren) "/" ' + q(BAER),
                 b"* STATUS " + q(BAER) + b" (MESSAGES 1)"], u
    # the other session: same folder, mUTF-7 names in and out
    r2 = raw()
    u = r2.ok('STATUS "%s" (MESSAGES)' % BAER_UTF7)
    assert u in ([b"* STATUS " + BAER_UTF7.encode() + b" (MESSAGES 1)"],
                 [b"* STATUS " + q(BAER_UTF7) + b" (MESSAGES 1)"]), u
    u = r2.ok('EXAMINE "%s"' % BAER_UTF7)
    assert b"* 1 EXISTS" in u, u
    r2.ok("UNSELECT")
    # RENAME with children, UTF-8 -> UTF-8
    r.ok('RENAME "%s" "%s"' % (BAER, CJK))
    got = names(r.ok('LIST "" "*"'))
    assert q(CJK) in got and q(CJK + "/" + CJK) in got, got
    assert q(BAER) not in got
    got = names(r2.ok('LIST "" "%s*"' % CJK_UTF7))
    assert sorted(got) in ([CJK_UTF7.encode(), (CJK_UTF7 + "/" +
                                                 CJK_UTF7).encode()],
                           [q(CJK_UTF7), q(CJK_UTF7 + "/" + CJK_UTF7)]), got
    u, t = r.cmd('SELECT "%s"' % BAER)
    assert t.startswith(b"NO"), t
    # the non-UTF-8 session renames back with mUTF-7
    r2.ok('RENAME "%s/%s" "%s"' % (CJK_UTF7, CJK_UTF7, EMOJI_UTF7))
    got = names(r.ok('LIST "" "%s"' % EMOJI))
    assert got == [q(EMOJI)], got
    r.ok('DELETE "%s"' % EMOJI)
    r.ok('DELETE "%s"' % CJK)
    got = names(r2.ok('LIST "" "*"'))
    assert not [n for n in got if b"&" in n], got


def test_copy_move_append_targets(heron, raw):
    r = raw().enable()
    r.ok('APPEND INBOX {7+}\r\nx: y\r\n\r\n')
    r.ok("SELECT INBOX")
    u, t = r.cmd('COPY 1 "%s"' % CJK)
    assert t.startswith(b"NO [TRYCREATE]"), t
    r.ok('CREATE "%s"' % CJK)
    r.ok('COPY 1 "%s"' % CJK)
    r.ok('MOVE 1 "%s"' % CJK)
    r.ok('APPEND "%s" {7+}\r\nx: z\r\n\r\n' % CJK)
    u = r.ok('STATUS "%s" (MESSAGES)' % CJK)
    assert u == [b"* STATUS " + q(CJK) + b" (MESSAGES 3)"], u
    # the legacy session appends with the mUTF-7 name
    r2 = raw()
    r2.ok('APPEND "%s" {7+}\r\nx: w\r\n\r\n' % CJK_UTF7)
    u = r.ok('STATUS "%s" (MESSAGES)' % CJK)
    assert u == [b"* STATUS " + q(CJK) + b" (MESSAGES 4)"], u


def test_subscribe_lsub(raw):
    r = raw().enable()
    r.ok('CREATE "%s"' % CJK)
    r.ok('SUBSCRIBE "%s"' % CJK)
    got = names(r.ok('LSUB "" "*"'), b"LSUB")
    assert q(CJK) in got, got
    got = names(raw().ok('LSUB "" "*"'), b"LSUB")
    assert CJK_UTF7.encode() in got or q(CJK_UTF7) in got, got
    r.ok('UNSUBSCRIBE "%s"' % CJK)
    got = names(r.ok('LSUB "" "*"'), b"LSUB")
    assert q(CJK) not in got, got


def test_literal_names(raw):
    r = raw().enable()
    name = ("lit " + BAER).encode("utf-8")
    r.send(b"L1 CREATE {%d+}\r\n%s\r\n" % (len(name), name))
    u, t = r.wait(b"L1")
    assert t.startswith(b"OK"), t
    got = names(r.ok('LIST "" "lit*"'))
    assert got == [b'"' + name + b'"'], got


def test_invalid_names(raw):
    r = raw()
    # without UTF8=ACCEPT: 8-bit in a quoted string is a syntax error,
    # in a literal it is not mUTF-7
    u, t = r.cmd('CREATE "%s"' % BAER)
    assert t.startswith(b"BAD"), t
    n8 = BAER.encode("utf-8")
    r.send(b"L1 CREATE {%d+}\r\n%s\r\n" % (len(n8), n8))
    u, t = r.wait(b"L1")
    assert t.startswith(b"NO"), t
    r.enable()
    # RFC 6855 3: invalid UTF-8 in a quoted string -> BAD
    for bad in (b"\xc3\x28", b"a\xff", b"\xed\xa0\x80",     # surrogate
                b"\xc0\xaf", b"\xe2\x82"):                 # overlong, cut
        u, t = r.cmd(b'CREATE "' + bad + b'"')
        assert t.startswith(b"BAD"), (bad, t)
        # a literal is not "extended quoting": NO
        r.send(b"L2 CREATE {%d+}\r\n%s\r\n" % (len(bad), bad))
        u, t = r.wait(b"L2")
        assert t.startswith(b"NO"), (bad, t)
    # Net-Unicode: no controls, no U+2028 / U+2029
    for bad in ("a\u0085b", "a\u2028b", "a\u2029b", "a\u007fb"):
        u, t = r.cmd('CREATE "%s"' % bad)
        assert t.startswith(b"NO"), (bad, t)
    # the session is still usable
    r.ok("NOOP")
    got = names(r.ok('LIST "" "a*"'))
    assert got == [], got


def test_non_mutf7_folder_on_disk(heron, raw):
    """A folder another program made with a raw 8-bit name can't be
    represented; LIST skips it in both modes and nothing breaks."""
    md = heron.maildir("alice")
    for sub in ("cur", "new", "tmp"):
        os.makedirs(os.path.join(md, ".x\xe4y", sub).encode("latin-1"),
                    exist_ok=True)
    r = raw().enable()
    u = r.ok('LIST "" "*"')
    assert not [ln for ln in u if b"x" in ln and b"y" in ln], u
    raw().ok('LIST "" "*"')


# ---------------------------------------------------------------- SEARCH

UTF8_MSG = (
    "From: J\u00f6rg M\u00fcller <joerg@example.org>\r\n"
    "To: =?utf-8?q?Ren=C3=A9e?= <renee@example.org>\r\n"
    "Subject: Gr\u00fc\u00dfe aus K\u00f6ln\r\n"
    "Message-ID: <utf8.1@example.org>\r\n"
    "Date: Mon, 2 Jan 2023 10:00:00 +0000\r\n"
    "Content-Type: text/plain; charset=utf-8\r\n"
    "\r\n"
    "Stra\u00dfe\r\n").encode("utf-8")


def test_search_charset(heron, raw):
    deliver(heron, "alice", UTF8_MSG)
    r = raw()
    r.ok("SELECT INBOX")
    u = r.ok('SEARCH CHARSET UTF-8 SUBJECT {5+}\r\n' + "K\u00f6ln")
    assert u == [b"* SEARCH 1"], u
    r.ok("UNSELECT")
    r.enable()
    r.ok("SELECT INBOX")
    # quoted UTF-8 search strings, no CHARSET needed
    u = r.ok('SEARCH SUBJECT "K\u00f6ln"')
    assert u == [b"* SEARCH 1"], u
    u = r.ok('SEARCH FROM "M\u00fcller"')
    assert u == [b"* SEARCH 1"], u
    u = r.ok('SEARCH BODY "stra\u00dfe"')
    assert u == [b"* SEARCH 1"], u
    # RFC 6855 3: a conflicting CHARSET after ENABLE -> BAD; UTF-8 (and
    # US-ASCII, its subset) are accepted as redundant (RFC 9051 6.4.4)
    u, t = r.cmd('SEARCH CHARSET ISO-8859-1 SUBJECT "K\u00f6ln"')
    assert t.startswith(b"BAD"), t
    u, t = r.cmd('UID SEARCH RETURN (ALL) CHARSET KOI8-R ALL')
    assert t.startswith(b"BAD"), t
    u = r.ok('SEARCH CHARSET "utf-8" SUBJECT "K\u00f6ln"')
    assert u == [b"* SEARCH 1"], u
    u = r.ok('SEARCH CHARSET US-ASCII SUBJECT "aus"')
    assert u == [b"* SEARCH 1"], u
    # invalid UTF-8 in a quoted search string
    u, t = r.cmd(b'SEARCH SUBJECT "\xc3"')
    assert t.startswith(b"BAD"), t


# -------------------------------------------------------------- ENVELOPE

def envelope_of(untagged):
    for ln in untagged:
        m = re.match(rb"\* 1 FETCH \(ENVELOPE (.*)\)$", ln, re.S)
        if m:
            return m.group(1)
    raise AssertionError(untagged)


def test_envelope_utf8_headers(heron, raw):
    deliver(heron, "alice", UTF8_MSG)
    subj = "Gr\u00fc\u00dfe aus K\u00f6ln".encode("utf-8")
    name = "J\u00f6rg M\u00fcller".encode("utf-8")
    # not enabled: 8-bit strings go out as literals, never quoted
    r = raw()
    r.ok("EXAMINE INBOX")
    env = envelope_of(r.ok("FETCH 1 ENVELOPE"))
    assert b"{%d}\r\n%s" % (len(subj), subj) in env, env
    assert b"{%d}\r\n%s" % (len(name), name) in env, env
    assert b'"' + subj + b'"' not in env
    assert b'"' + name + b'"' not in env
    # enabled: valid UTF-8 goes out quoted (RFC 6855 3)
    r2 = raw().enable()
    r2.ok("EXAMINE INBOX")
    env = envelope_of(r2.ok("FETCH 1 ENVELOPE"))
    for s in (subj, name):
        assert b'"' + s + b'"' in env, (s, env)
    assert b"{" not in env, env
    # the same in a UID FETCH with other items
    u = r2.ok("UID FETCH 1:* (FLAGS ENVELOPE)")
    assert b'"' + subj + b'"' in u[0], u
    assert b'"joerg" "example.org"' in env, env
    # the MIME-encoded name stays as it is in the header
    assert b'"=?utf-8?q?Ren=C3=A9e?="' in env, env


def test_envelope_invalid_utf8_header(heron, raw):
    """8-bit bytes that are not UTF-8 must never be quoted, enabled or
    not (RFC 6855 3: quoted strings carry only valid UTF-8)."""
    msg = crlf(b"From: a@example.org\nSubject: caf\xe9 \xff\n"
               b"Message-ID: <bad.1@example.org>\n\nbody\n")
    deliver(heron, "alice", msg)
    for enable in (False, True):
        r = raw()
        if enable:
            r.enable()
        r.ok("EXAMINE INBOX")
        env = envelope_of(r.ok("FETCH 1 ENVELOPE"))
        assert b"{6}\r\ncaf\xe9 \xff" in env, env
        r.close()
