"""test_imap_qresync.py: IMAP QRESYNC (RFC 7162 3.2) against the real
daemon: ENABLE QRESYNC, SELECT/EXAMINE (QRESYNC ...) with VANISHED
(EARLIER) and FETCH replies, known-uids and seq-match-data narrowing,
UID FETCH (CHANGEDSINCE n VANISHED), VANISHED instead of EXPUNGE (own
EXPUNGE / UID EXPUNGE / MOVE, other sessions, IDLE), HIGHESTMODSEQ in the
tagged replies, [CLOSED], and the BAD cases.

A raw line client; every wait is bounded (IDLE updates: at most WAIT
seconds)."""

import re
import socket
import time

import heronlib
from heronlib import PASSWORDS, LineClient, deliver, make_message

WAIT = 5.0     # bound on waiting for an unsolicited update


class Imap:
    """A raw IMAP session: cmd() returns (untagged lines, tagged line),
    both str."""

    def __init__(self, h, user="alice", qresync=False):
        self.c = LineClient.connect(h.imap_port)
        g = self.c.readline()
        assert g.startswith(b"* OK"), g
        self.n = 0
        self.ok('LOGIN %s "%s"' % (user, PASSWORDS[user]))
        if qresync:
            u = self.ok("ENABLE QRESYNC")
            assert "* ENABLED QRESYNC" in u, u

    def tag(self):
        self.n += 1
        return "Q%d" % self.n

    def read_until_tagged(self, tag, timeout=heronlib.IO_TIMEOUT):
        lines = []
        deadline = time.monotonic() + timeout
        while True:
            ln = self.c.readline(max(0.1, deadline - time.monotonic()))
            ln = ln.decode("utf-8", "replace").rstrip("\r\n")
            if ln.startswith(tag + " "):
                return lines, ln[len(tag) + 1:]
            lines.append(ln)

    def cmd(self, text):
        t = self.tag()
        self.c.send(t + " " + text + "\r\n")
        return self.read_until_tagged(t)

    def ok(self, text):
        u, t = self.cmd(text)
        assert t.startswith("OK"), (text, t, u)
        return u

    def bad(self, text):
        u, t = self.cmd(text)
        assert t.startswith("BAD"), (text, t, u)
        return u

    def idle_start(self):
        self.idle_tag = self.tag()
        self.c.send(self.idle_tag + " IDLE\r\n")
        line = self.c.readline()
        assert line.startswith(b"+"), line

    def idle_wait(self, pred, what, timeout=WAIT):
        got = []
        deadline = time.monotonic() + timeout
        while not pred(got):
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("no %s within %.0fs while idling; "
                                     "got %r" % (what, timeout, got))
            try:
                got.append(self.c.readline(left).decode().rstrip("\r\n"))
            except socket.timeout:
                pass
        return got

    def idle_done(self):
        self.c.send("DONE\r\n")
        lines, tagged = self.read_until_tagged(self.idle_tag)
        assert tagged.startswith("OK"), tagged
        return lines

    def close(self):
        try:
            self.c.send("Z LOGOUT\r\n")
        except OSError:
            pass
        self.c.close()


def code(lines, name):
    """The number of the first '* OK [NAME n]' line."""
    for ln in lines:
        m = re.match(r"\* OK \[%s (\d+)\]" % name, ln)
        if m:
            return int(m.group(1))
    raise AssertionError("no %s in %r" % (name, lines))


def vanished(lines, earlier):
    """UID lists of VANISHED [(EARLIER)] lines, as sets of numbers."""
    out = set()
    pat = r"\* VANISHED \(EARLIER\) (\S+)$" if earlier else \
        r"\* VANISHED (\d\S*)$"
    for ln in lines:
        m = re.match(pat, ln)
        if m:
            for part in m.group(1).split(","):
                a, _, b = part.partition(":")
                out.update(range(int(a), int(b or a) + 1))
    return out


def vlines(lines):
    """The VANISHED and EXPUNGE lines."""
    return [ln for ln in lines if "VANISHED" in ln or "EXPUNGE" in ln]


def fetches(lines):
    """{uid: (seq, flags, modseq)} of '* n FETCH (UID u FLAGS (..) MODSEQ
    (m))' lines (any item order)."""
    out = {}
    for ln in lines:
        m = re.match(r"\* (\d+) FETCH \((.*)\)$", ln)
        if not m:
            continue
        body = m.group(2)
        uid = re.search(r"UID (\d+)", body)
        flags = re.search(r"FLAGS \(([^)]*)\)", body)
        modseq = re.search(r"MODSEQ \((\d+)\)", body)
        out[int(uid.group(1))] = (int(m.group(1)),
                                  flags.group(1) if flags else None,
                                  int(modseq.group(1)) if modseq else None)
    return out


def put(heron, n, user="alice"):
    for i in range(n):
        deliver(heron, user, heronlib.crlf(
            make_message("msg %d" % i, [b"body"])))


def changed_mailbox(heron):
    """6 messages (UIDs 1..6); returns (uidvalidity, modseq before the
    changes). Then, in another session, UID 2 gets \\Flagged and UIDs
    1, 4, 5 are expunged: UIDs 2, 3, 6 are left (seq 1, 2, 3)."""
    put(heron, 6)
    a = Imap(heron, qresync=True)
    u = a.ok("SELECT INBOX")
    uv, m0 = code(u, "UIDVALIDITY"), code(u, "HIGHESTMODSEQ")
    a.close()
    b = Imap(heron)
    b.ok("SELECT INBOX")
    b.ok("UID STORE 2 +FLAGS (\\Flagged)")
    b.ok("UID STORE 1,4,5 +FLAGS (\\Deleted)")
    b.ok("EXPUNGE")
    b.close()
    return uv, m0


# ---------------------------------------------------------------- ENABLE

def test_enable_and_capability(heron):
    a = Imap(heron)
    u = a.ok("CAPABILITY")
    caps = u[0].split()
    assert "QRESYNC" in caps and "CONDSTORE" in caps, u
    u = a.ok("ENABLE QRESYNC")
    assert u == ["* ENABLED QRESYNC"], u
    # RFC 5161 3.1: only what this command enabled
    u = a.ok("ENABLE QRESYNC")
    assert u == ["* ENABLED"], u
    a.close()
    b = Imap(heron)
    u = b.ok("ENABLE QRESYNC CONDSTORE")
    assert u and set(u[0].split()[2:]) == {"QRESYNC", "CONDSTORE"}, u
    b.close()


def test_enable_implies_condstore(heron):
    """RFC 7162 3.2.3: QRESYNC implies CONDSTORE: flag updates pushed by
    other sessions carry MODSEQ."""
    put(heron, 2)
    a, b = Imap(heron, qresync=True), Imap(heron)
    a.ok("SELECT INBOX")
    b.ok("SELECT INBOX")
    b.ok("STORE 2 +FLAGS (\\Flagged)")
    f = fetches(a.ok("NOOP"))
    assert f[2][1] is not None and "\\Flagged" in f[2][1], f
    assert f[2][2] is not None and f[2][0] == 2, f
    a.close()
    b.close()


def test_enable_with_mailbox_selected_reports_highestmodseq(heron):
    put(heron, 1)
    a = Imap(heron)
    a.ok("SELECT INBOX")
    u = a.ok("ENABLE QRESYNC")
    assert "* ENABLED QRESYNC" in u, u
    assert code(u, "HIGHESTMODSEQ") >= 1, u
    a.close()


# ------------------------------------------------------ SELECT (QRESYNC)

def test_select_qresync_vanished_and_fetch(heron):
    uv, m0 = changed_mailbox(heron)
    c = Imap(heron, qresync=True)
    u = c.ok("SELECT INBOX (QRESYNC (%d %d))" % (uv, m0))
    assert "* 3 EXISTS" in u, u
    assert code(u, "HIGHESTMODSEQ") > m0, u
    assert vanished(u, True) == {1, 4, 5}, u
    assert "* VANISHED (EARLIER) 1,4:5" in u, u
    f = fetches(u)
    assert list(f) == [2], u
    seq, flags, modseq = f[2]
    assert seq == 1 and "\\Flagged" in flags and modseq > m0, u
    # RFC 7162 3.2.6: VANISHED (EARLIER) before any FETCH; both after
    # the usual SELECT responses
    iv = [i for i, ln in enumerate(u) if ln.startswith("* VANISHED")][0]
    ifetch = [i for i, ln in enumerate(u) if " FETCH " in ln][0]
    ihms = [i for i, ln in enumerate(u) if "HIGHESTMODSEQ" in ln][0]
    assert ihms < iv < ifetch, u
    # with the current HIGHESTMODSEQ nothing is reported
    hms = code(u, "HIGHESTMODSEQ")
    c.ok("UNSELECT")
    u = c.ok("EXAMINE INBOX (QRESYNC (%d %d))" % (uv, hms))
    assert not vanished(u, True) and not fetches(u), u
    c.close()


def test_select_qresync_known_uids(heron):
    uv, m0 = changed_mailbox(heron)
    c = Imap(heron, qresync=True)
    u = c.ok("EXAMINE INBOX (QRESYNC (%d %d 2:4))" % (uv, m0))
    assert vanished(u, True) == {4}, u
    assert list(fetches(u)) == [2], u
    u = c.ok("EXAMINE INBOX (QRESYNC (%d %d 3,6))" % (uv, m0))
    assert not vanished(u, True) and not fetches(u), u
    # modseq 0: every known message is reported, expunged ones too
    u = c.ok("EXAMINE INBOX (QRESYNC (%d 0 1:10))" % uv)
    assert vanished(u, True) == {1, 4, 5}, u
    assert sorted(fetches(u)) == [2, 3, 6], u
    c.close()


def test_select_qresync_seq_match_data(heron):
    """RFC 7162 3.2.5.2: UIDs up to the last matching (seq, uid) pair are
    left out of VANISHED (EARLIER). Now: seq 1, 2, 3 = UID 2, 3, 6."""
    uv, m0 = changed_mailbox(heron)
    c = Imap(heron, qresync=True)
    # seq 2 is UID 3: the client knows about UID 1
    u = c.ok("EXAMINE INBOX (QRESYNC (%d %d 1:6 (2 3)))" % (uv, m0))
    assert vanished(u, True) == {4, 5}, u
    # both pairs match: nothing vanished above UID 6 either
    u = c.ok("EXAMINE INBOX (QRESYNC (%d %d 1:6 (2:3 3,6)))" % (uv, m0))
    assert not vanished(u, True), u
    # the first pair does not match: no narrowing
    u = c.ok("EXAMINE INBOX (QRESYNC (%d %d 1:6 (1,3 1,6)))" % (uv, m0))
    assert vanished(u, True) == {1, 4, 5}, u
    # seq-match-data without known-uids (the grammar allows it)
    u = c.ok("EXAMINE INBOX (QRESYNC (%d %d (2 3)))" % (uv, m0))
    assert vanished(u, True) == {4, 5}, u
    # flag changes are not narrowed
    assert list(fetches(u)) == [2], u
    c.close()


def test_select_qresync_wrong_uidvalidity(heron):
    uv, m0 = changed_mailbox(heron)
    c = Imap(heron, qresync=True)
    u, t = c.cmd("SELECT INBOX (QRESYNC (%d %d 1:6))" % (uv + 1, m0))
    assert t.startswith("OK [READ-WRITE]"), t
    assert "* 3 EXISTS" in u, u
    assert not [ln for ln in u if "VANISHED" in ln or "FETCH" in ln], u
    c.close()


def test_select_qresync_empty_mailbox(heron):
    c = Imap(heron, qresync=True)
    c.ok("CREATE Empty")
    u = c.ok("SELECT Empty")
    uv = code(u, "UIDVALIDITY")
    assert code(u, "HIGHESTMODSEQ") >= 1, u
    u = c.ok("SELECT Empty (QRESYNC (%d 1))" % uv)
    assert "* OK [CLOSED] Previous mailbox closed." in u, u
    assert not [ln for ln in u if "VANISHED" in ln or "FETCH" in ln], u
    c.close()


def test_select_qresync_bad(heron):
    put(heron, 1)
    a = Imap(heron)
    # RFC 7162 3.2.5: BAD without ENABLE QRESYNC
    a.bad("SELECT INBOX (QRESYNC (1 1))")
    a.ok("SELECT INBOX (CONDSTORE)")
    a.close()
    c = Imap(heron, qresync=True)
    for arg in ["(QRESYNC (0 1))", "(QRESYNC (1))", "(QRESYNC (1 x))",
                "(QRESYNC (1 1 1:*))", "(QRESYNC (1 1 1:3 (1:2 1)))",
                "(QRESYNC (1 1 1:3 (1 2) 5))", "(QRESYNC 1 1)",
                "(QRESYNC)", "(QRESYNC (1 1) QRESYNC (1 1))",
                "(QRESYNC (1 1 $))", "(QRESYNC (4294967296 1))",
                "(QRESYNC (1 9223372036854775808))"]:
        c.bad("SELECT INBOX " + arg)
    c.ok("SELECT INBOX (CONDSTORE QRESYNC (1 1))")
    c.close()


def test_closed_on_reselect_without_enable(heron):
    """RFC 7162 3.2.11: [CLOSED] whether or not CONDSTORE was enabled."""
    a = Imap(heron)
    a.ok("SELECT INBOX")
    u = a.ok("EXAMINE INBOX")
    assert u[0] == "* OK [CLOSED] Previous mailbox closed.", u
    a.close()


# --------------------------------------------- UID FETCH (... VANISHED)

def test_uid_fetch_changedsince_vanished(heron):
    uv, m0 = changed_mailbox(heron)
    c = Imap(heron, qresync=True)
    c.ok("SELECT INBOX")
    u = c.ok("UID FETCH 1:* (FLAGS) (CHANGEDSINCE %d VANISHED)" % m0)
    assert u[0] == "* VANISHED (EARLIER) 1,4:5", u
    f = fetches(u)
    assert list(f) == [2] and f[2][0] == 1 and f[2][2] > m0, u
    u = c.ok("UID FETCH 1:3 (FLAGS) (VANISHED CHANGEDSINCE %d)" % m0)
    assert vanished(u, True) == {1}, u
    u = c.ok("UID FETCH 3,6 (FLAGS) (CHANGEDSINCE %d VANISHED)" % m0)
    assert u == [], u
    # modseq 0: all known expunges
    u = c.ok("UID FETCH 1:10 (FLAGS) (CHANGEDSINCE 0 VANISHED)")
    assert vanished(u, True) == {1, 4, 5}, u
    c.close()


def test_uid_fetch_vanished_bad(heron):
    put(heron, 2)
    a = Imap(heron)
    a.ok("SELECT INBOX")
    # RFC 7162 3.2.6: BAD without ENABLE QRESYNC
    a.bad("UID FETCH 1:* (FLAGS) (CHANGEDSINCE 1 VANISHED)")
    a.close()
    c = Imap(heron, qresync=True)
    c.ok("SELECT INBOX")
    c.bad("UID FETCH 1:* (FLAGS) (VANISHED)")
    c.bad("FETCH 1:* (FLAGS) (CHANGEDSINCE 1 VANISHED)")
    c.bad("UID FETCH 1:* (FLAGS) (CHANGEDSINCE 1 VANISHED VANISHED)")
    c.ok("UID FETCH 1:* (FLAGS) (CHANGEDSINCE 1)")
    c.close()


# ------------------------------------------------ VANISHED for EXPUNGE

def test_own_expunge_and_uid_expunge(heron):
    put(heron, 8)
    c = Imap(heron, qresync=True)
    u = c.ok("SELECT INBOX")
    m0 = code(u, "HIGHESTMODSEQ")
    c.ok("STORE 2:4,6 +FLAGS.SILENT (\\Deleted)")
    u, t = c.cmd("EXPUNGE")
    assert vlines(u) == ["* VANISHED 2:4,6"], u
    m = re.match(r"OK \[HIGHESTMODSEQ (\d+)\]", t)
    assert m and int(m.group(1)) > m0, t
    # sequence numbers: UIDs 1, 5, 7, 8 are seq 1..4
    f = fetches(c.ok("FETCH 1:* (UID)"))
    assert {uid: s[0] for uid, s in f.items()} == {1: 1, 5: 2, 7: 3,
                                                   8: 4}, f
    c.ok("STORE 1:4 +FLAGS.SILENT (\\Deleted)")
    u, t = c.cmd("UID EXPUNGE 5:7")
    assert vlines(u) == ["* VANISHED 5,7"], u
    assert t.startswith("OK [HIGHESTMODSEQ "), t
    # nothing expunged: no HIGHESTMODSEQ needed
    u, t = c.cmd("UID EXPUNGE 100")
    assert vlines(u) == [] and t == "OK Expunge completed", (u, t)
    u = c.ok("SELECT INBOX")
    assert "* 2 EXISTS" in u, u
    c.close()


def test_move_reports_vanished(heron):
    put(heron, 4)
    c = Imap(heron, qresync=True)
    c.ok("CREATE Dest")
    c.ok("SELECT INBOX")
    u, t = c.cmd("UID MOVE 2:3 Dest")
    assert "* VANISHED 2:3" in u, u
    assert not [ln for ln in u if "EXPUNGE" in ln], u
    assert t.startswith("OK [HIGHESTMODSEQ "), t
    f = fetches(c.ok("FETCH 1:* (UID)"))
    assert {uid: s[0] for uid, s in f.items()} == {1: 1, 4: 2}, f
    c.close()


def test_vanished_pushed_to_other_session(heron):
    put(heron, 5)
    a, b = Imap(heron, qresync=True), Imap(heron)
    a.ok("SELECT INBOX")
    b.ok("SELECT INBOX")
    b.ok("STORE 2,3,5 +FLAGS.SILENT (\\Deleted)")
    u = b.ok("EXPUNGE")            # b has no QRESYNC: EXPUNGE
    assert vlines(u) == ["* 2 EXPUNGE", "* 2 EXPUNGE", "* 3 EXPUNGE"], u
    u = a.ok("NOOP")
    assert vlines(u) == ["* VANISHED 2:3,5"], u
    # no VANISHED during FETCH/STORE/SEARCH (RFC 7162 3.2.10.2)
    b.ok("STORE 1 +FLAGS.SILENT (\\Deleted)")
    b.ok("EXPUNGE")
    u = a.ok("FETCH 1:* (UID)")
    assert not [ln for ln in u if "VANISHED" in ln], u
    assert {uid: s[0] for uid, s in fetches(u).items()} == {1: 1, 4: 2}, u
    u = a.ok("NOOP")
    assert vlines(u) == ["* VANISHED 1"], u
    u = a.ok("FETCH 1:* (UID)")
    assert {uid: s[0] for uid, s in fetches(u).items()} == {4: 1}, u
    a.close()
    b.close()


def test_vanished_during_idle(heron):
    put(heron, 3)
    a, b = Imap(heron, qresync=True), Imap(heron)
    a.ok("SELECT INBOX")
    b.ok("SELECT INBOX")
    a.idle_start()
    b.ok("STORE 1,3 +FLAGS.SILENT (\\Deleted)")
    b.ok("EXPUNGE")
    got = a.idle_wait(lambda g: any(ln.startswith("* VANISHED")
                                    for ln in g), "VANISHED")
    assert "* VANISHED 1,3" in got, got
    assert not [ln for ln in got if "EXPUNGE" in ln], got
    a.idle_done()
    u = a.ok("FETCH 1:* (UID)")
    assert {uid: s[0] for uid, s in fetches(u).items()} == {2: 1}, u
    a.close()
    b.close()
