"""test_imap_ops.py: STORE, COPY/MOVE, EXPUNGE/CLOSE/UNSELECT and APPEND
(incl. MULTIAPPEND, LITERAL+, UIDPLUS, CONDSTORE UNCHANGEDSINCE) against
the real daemon, with Python's imaplib and, where imaplib can't (MULTIAPPEND,
response order, disconnects mid-literal), a raw socket.

Checks the Maildir directly where the wire alone can't prove it (byte-exact
APPEND, nothing left in tmp/ new/ cur/ after an aborted APPEND).
"""

import imaplib
import os
import re
import socket
import time

import pytest

import heronlib
from heronlib import PASSWORDS, LineClient, wait_for

MSG = (b"From: a@example.org\r\nTo: b@example.org\r\nSubject: t\r\n\r\n"
       b"body line 1\r\nbody line 2\r\n")


# ---------------------------------------------------------------- fixtures

def _wait_imap(port, timeout=10.0):
    def greet():
        try:
            with LineClient.connect(port) as c:
                return c.readline(2.0).startswith(b"* OK")
        except (OSError, EOFError):
            return False
    wait_for(greet, timeout, what="IMAP greeting on %d" % port)


@pytest.fixture
def srv(request, heron_factory):
    """A daemon with an IMAP listener (heronlib's imap_port when it has
    one, else an extra listen line added here)."""
    m = request.node.get_closest_marker("heron_conf")
    h = heron_factory(dict(m.kwargs) if m else {}, start=False)
    if getattr(h, "imap_port", None) is None:
        taken = {h.pop3_port, h.pop3s_port, h.lmtp_port}
        h.imap_port = next(p for p in heronlib.free_ports(4)
                           if p not in taken)
        h.extra_config += "listen = imap 127.0.0.1:%d\n" % h.imap_port
        h.write_config()
    h.start()
    _wait_imap(h.imap_port)
    return h


def login(h, user="alice"):
    m = imaplib.IMAP4("127.0.0.1", h.imap_port, timeout=heronlib.IO_TIMEOUT)
    typ, _ = m.login(user, PASSWORDS[user])
    assert typ == "OK"
    return m


class Raw:
    """A raw IMAP client: send lines, read untagged lines up to the tagged
    reply."""

    def __init__(self, h, user="alice"):
        self.c = LineClient.connect(h.imap_port)
        assert self.c.readline().startswith(b"* OK")
        self.n = 0
        if user:
            _, tagged = self.cmd('LOGIN %s "%s"' % (user, PASSWORDS[user]))
            assert b" OK" in tagged, tagged

    def tag(self):
        self.n += 1
        return "R%d" % self.n

    def read_until_tagged(self, tag, timeout=heronlib.IO_TIMEOUT):
        lines = []
        while True:
            line = self.c.readline(timeout)
            if line.startswith(tag.encode() + b" "):
                return lines, line
            lines.append(line)

    def cmd(self, text, timeout=heronlib.IO_TIMEOUT):
        t = self.tag()
        self.c.send(t + " " + text + "\r\n")
        return self.read_until_tagged(t, timeout)

    def close(self):
        self.c.close()


def append(m, msg=MSG, mailbox="INBOX", flags=None, date=None):
    typ, data = m.append(mailbox, flags, date, msg)
    assert typ == "OK", data
    return data[0]


def appenduid(resp):
    mo = re.search(rb"\[APPENDUID (\d+) ([\d:,]+)\]", resp)
    assert mo, resp
    return int(mo.group(1)), mo.group(2).decode()


def msg_files(h, folder=None, sub=("new", "cur")):
    md = h.maildir("alice")
    if folder:
        md = os.path.join(md, "." + folder)
    return heronlib.maildir_files(md, sub)


def untagged_fetches(m):
    return [r for r in m.untagged_responses.get("FETCH", [])]


# ---------------------------------------------------------------- APPEND

def test_append_stores_bytes_lf_and_appenduid(srv):
    m = login(srv)
    body = MSG + b"\x01 8bit \xe9\r\n"   # imaplib makes bare CRs CRLF
    resp = append(m, body, flags=r"(\Seen $Label1)",
                  date='"05-Mar-2021 10:11:12 +0100"')
    v, uid = appenduid(resp)
    assert uid == "1" and v > 0
    files = msg_files(srv)
    assert len(files) == 1
    assert heronlib.read_file(files[0]) == heronlib.lf(body)
    # \Seen in the Maildir name; internal date = file mtime
    assert re.search(r":2,[a-zA-Z]*S", files[0]), files[0]
    assert int(os.stat(files[0]).st_mtime) == 1614935472
    # second APPEND: next UID, same UIDVALIDITY
    v2, uid2 = appenduid(append(m))
    assert (v2, uid2) == (v, "2")
    # FETCH back (when FETCH exists in this build)
    m.select("INBOX")
    try:
        typ, data = m.fetch("1", "(FLAGS BODY.PEEK[])")
    except imaplib.IMAP4.error:     # no FETCH in this build yet
        typ, data = "BAD", None
    if typ == "OK" and data and isinstance(data[0], tuple):
        assert data[0][1] == body
        assert b"$Label1" in data[0][0] and b"\\Seen" in data[0][0]
    m.logout()


def test_append_errors(srv):
    m = login(srv)
    typ, data = m.append("NoSuchBox", None, None, MSG)
    assert typ == "NO" and b"[TRYCREATE]" in data[0], data
    with pytest.raises(imaplib.IMAP4.error, match="Recent"):
        m.append("INBOX", r"(\Recent)", None, MSG)
    with pytest.raises(imaplib.IMAP4.error):
        m.append("INBOX", r"(\Bogus)", None, MSG)
    with pytest.raises(imaplib.IMAP4.error):
        m.append("INBOX", None, '"31-Feb-2021 10:00:00 +0000"', MSG)
    assert msg_files(srv, sub=("tmp", "new", "cur")) == []
    # the session is still fine
    append(m)
    m.logout()


@pytest.mark.heron_conf(max_message_size="2k")
def test_append_too_big_sync_and_nonsync(srv):
    r = Raw(srv)
    # synchronizing: NO [TOOBIG] instead of "+", the client sends nothing
    t = r.tag()
    r.c.send("%s APPEND INBOX {5000}\r\n" % t)
    line = r.c.readline()
    assert line.startswith(t.encode() + b" NO [TOOBIG]"), line
    # non-synchronizing: the bytes come anyway and are discarded
    t = r.tag()
    r.c.send(b"%s APPEND INBOX {5000+}\r\n" % t.encode() + b"x" * 5000
             + b"\r\n")
    line = r.c.readline()
    assert line.startswith(t.encode() + b" NO [TOOBIG]"), line
    _, tagged = r.cmd("NOOP")
    assert b" OK" in tagged
    # small enough works
    lines, tagged = r.cmd("APPEND INBOX {%d+}\r\n" % len(MSG)
                          + MSG.decode())
    assert b"OK [APPENDUID" in tagged, tagged
    r.close()
    assert len(msg_files(srv)) == 1
    assert msg_files(srv, sub=("tmp",)) == []


def test_append_crlf_split_across_chunks(srv):
    r = Raw(srv)
    t = r.tag()
    parts = [b"Subject: x\r", b"\n\r", b"\nline\r", b"\r\n", b"end\r"]
    total = sum(len(p) for p in parts)
    r.c.send("%s APPEND INBOX {%d}\r\n" % (t, total))
    assert r.c.readline().startswith(b"+")
    for p in parts:
        r.c.send(p)
        time.sleep(0.05)
    r.c.send(b"\r\n")
    _, tagged = r.read_until_tagged(t)
    assert b" OK" in tagged, tagged
    files = msg_files(srv)
    assert heronlib.read_file(files[0]) == b"Subject: x\n\nline\r\nend\r"
    r.close()


def test_multiappend(srv):
    r = Raw(srv)
    m1, m2, m3 = MSG, MSG + b"two\r\n", MSG + b"three\r\n"
    t = r.tag()
    r.c.send("%s APPEND INBOX (\\Seen) {%d}\r\n" % (t, len(m1)))
    assert r.c.readline().startswith(b"+")
    r.c.send(m1 + b' (\\Flagged kw1) "01-Jan-2020 00:00:00 +0000" {%d}\r\n'
             % len(m2))
    assert r.c.readline().startswith(b"+")
    # LITERAL+ for the third
    r.c.send(m2 + b" {%d+}\r\n" % len(m3) + m3 + b"\r\n")
    _, tagged = r.read_until_tagged(t)
    assert b"OK [APPENDUID" in tagged, tagged
    v, uids = appenduid(tagged)
    assert uids == "1:3"
    contents = sorted(heronlib.read_file(f) for f in msg_files(srv))
    assert contents == sorted(heronlib.lf(x) for x in (m1, m2, m3))
    r.close()


def test_multiappend_all_or_nothing(srv):
    r = Raw(srv)
    t = r.tag()
    r.c.send("%s APPEND INBOX {%d}\r\n" % (t, len(MSG)))
    assert r.c.readline().startswith(b"+")
    # the second message has an invalid flag: BAD, the first is dropped
    r.c.send(MSG + b" (\\Recent) {%d}\r\n" % len(MSG))
    line = r.c.readline()
    assert line.startswith(t.encode() + b" BAD"), line
    assert msg_files(srv, sub=("tmp", "new", "cur")) == []
    _, tagged = r.cmd("NOOP")
    assert b" OK" in tagged
    r.close()


def test_append_disconnect_leaves_nothing(srv):
    r = Raw(srv)
    t = r.tag()
    r.c.send("%s APPEND INBOX {200000}\r\n" % t)
    assert r.c.readline().startswith(b"+")
    r.c.send(b"x" * 100000)
    wait_for(lambda: msg_files(srv, sub=("tmp",)), 5,
             what="tmp file being written")
    r.c.abort()
    wait_for(lambda: msg_files(srv, sub=("tmp", "new", "cur")) == [], 5,
             what="tmp file removed")
    # and a MULTIAPPEND cut between two messages
    r = Raw(srv)
    t = r.tag()
    r.c.send("%s APPEND INBOX {%d+}\r\n" % (t, len(MSG)) + MSG.decode()
             + " {100}\r\n")
    assert r.c.readline().startswith(b"+")
    r.c.abort()
    time.sleep(0.3)
    wait_for(lambda: msg_files(srv, sub=("tmp", "new", "cur")) == [], 5,
             what="MULTIAPPEND dropped")


def test_append_mailbox_literal_and_selected_exists(srv):
    m = login(srv)
    m.create("Sub")
    r = Raw(srv)
    t = r.tag()
    r.c.send("%s APPEND {3}\r\n" % t)
    assert r.c.readline().startswith(b"+")
    r.c.send(b"Sub {%d+}\r\n" % len(MSG) + MSG + b"\r\n")
    _, tagged = r.read_until_tagged(t)
    assert b"OK [APPENDUID" in tagged, tagged
    assert len(msg_files(srv, "Sub")) == 1
    # APPEND to the selected mailbox: EXISTS follows
    r.cmd("SELECT INBOX")
    lines, tagged = r.cmd("APPEND INBOX {%d+}\r\n" % len(MSG)
                          + MSG.decode())
    assert b" OK" in tagged
    assert b"* 1 EXISTS" in lines, lines
    r.close()
    m.logout()


# ---------------------------------------------------------------- STORE

def setup_msgs(h, n, mailbox="INBOX"):
    m = login(h)
    for i in range(n):
        append(m, MSG + b"msg %d\r\n" % i, mailbox=mailbox)
    return m


def flags_of(resp_line):
    mo = re.search(rb"FLAGS \(([^)]*)\)", resp_line)
    assert mo, resp_line
    return set(mo.group(1).split())


def test_store_variants(srv):
    m = setup_msgs(srv, 3)
    m.select("INBOX")
    typ, data = m.store("1", "+FLAGS", r"(\Seen \Flagged)")
    assert typ == "OK"
    assert flags_of(data[0]) >= {b"\\Seen", b"\\Flagged"}
    typ, data = m.store("1", "-FLAGS", r"\Flagged")
    assert flags_of(data[0]) & {b"\\Seen", b"\\Flagged"} == {b"\\Seen"}
    typ, data = m.store("1:2", "FLAGS", r"(\Answered $Work)")
    assert typ == "OK" and len(data) == 2
    for d in data:
        assert flags_of(d) - {b"\\Recent"} == {b"\\Answered", b"$Work"}
    # .SILENT: no untagged FETCH
    m.untagged_responses.pop("FETCH", None)
    typ, data = m.store("3", "+FLAGS.SILENT", r"(\Deleted)")
    assert typ == "OK" and data == [None], data
    # UID STORE carries the UID
    typ, data = m.uid("STORE", "2", "+FLAGS", r"(\Draft)")
    assert typ == "OK" and b"UID 2" in data[0], data
    m.logout()
    # in the Maildir (renames are deferred to the flush at close):
    # 1 = \Answered $Work, 2 = + \Draft, 3 = \Deleted; $Work is the
    # mailbox's keyword 0, letter "a"
    def letters():
        names = [os.path.basename(f) for f in msg_files(srv)]
        return sorted(n.split(":2,")[1] if ":2," in n else "" for n in names)
    wait_for(lambda: letters() == ["DRa", "Ra", "T"], 5,
             what="flags in file names: %s" % letters())


def test_store_errors(srv):
    m = setup_msgs(srv, 2)
    m.select("INBOX")
    for bad in [r"(\Recent)", r"(\Nonsense)", "(a(b)"]:
        with pytest.raises(imaplib.IMAP4.error):
            m.store("1", "+FLAGS", bad)
    with pytest.raises(imaplib.IMAP4.error):
        m.store("9", "+FLAGS", r"(\Seen)")        # no such seq
    with pytest.raises(imaplib.IMAP4.error):
        m.store("1", "XFLAGS", r"(\Seen)")
    typ, data = m.uid("STORE", "99", "+FLAGS", r"(\Seen)")
    assert typ == "OK"                            # UIDs past the end: ok
    m.select("INBOX", readonly=True)
    typ, data = m._simple_command("STORE", "1", "+FLAGS", r"(\Seen)")
    assert typ == "NO", data
    m.logout()


def test_store_keyword_limit(srv):
    m = setup_msgs(srv, 1)
    m.select("INBOX")
    for i in range(0, 64, 8):
        kws = " ".join("kw%d" % j for j in range(i, i + 8))
        typ, _ = m.store("1", "+FLAGS", "(%s)" % kws)
        assert typ == "OK"
    typ, data = m._simple_command("STORE", "1", "+FLAGS", "(onemore)")
    assert typ == "NO" and b"[LIMIT]" in data[0], (typ, data)
    # an existing keyword still works
    typ, _ = m.store("1", "-FLAGS", "(kw3)")
    assert typ == "OK"
    m.logout()


def test_store_condstore(srv):
    m = setup_msgs(srv, 3)
    m.select("INBOX")
    # UNCHANGEDSINCE enables CONDSTORE: MODSEQ in the replies
    typ, data = m._simple_command("STORE", "1:3", "(UNCHANGEDSINCE 0)",
                                  "+FLAGS", r"(\Seen)")
    assert typ == "OK", data
    assert b"[MODIFIED 1:3]" in data[0], data
    r = Raw(srv)
    r.cmd("SELECT INBOX")
    lines, tagged = r.cmd(r"STORE 2 (UNCHANGEDSINCE 999999) +FLAGS.SILENT "
                          r"(\Flagged)")
    assert b" OK" in tagged and b"MODIFIED" not in tagged, tagged
    fetch = [ln for ln in lines if b"FETCH" in ln]
    assert len(fetch) == 1 and b"MODSEQ (" in fetch[0], lines
    modseq = int(re.search(rb"MODSEQ \((\d+)\)", fetch[0]).group(1))
    lines, tagged = r.cmd("UID STORE 1:3 (UNCHANGEDSINCE %d) -FLAGS "
                          r"(\Flagged)" % (modseq - 1))
    assert b"[MODIFIED 2]" in tagged, tagged
    lines, tagged = r.cmd("STORE 1:3 +FLAGS (x)")
    assert all(b"MODSEQ" in ln for ln in lines if b"FETCH" in ln), lines
    r.close()
    m.logout()


def test_store_big_set_in_slices(srv):
    r = Raw(srv)
    n = 1300
    body = MSG.decode()
    r.c.send("".join("A%d APPEND INBOX {%d+}\r\n%s\r\n" % (i, len(MSG), body)
                     for i in range(n)))
    for i in range(n):
        r.read_until_tagged("A%d" % i, timeout=60)
    lines, tagged = r.cmd("SELECT INBOX")
    lines, tagged = r.cmd(r"STORE 1:* +FLAGS (\Seen)", timeout=60)
    assert b" OK" in tagged
    fetch = [ln for ln in lines if b"FETCH" in ln]
    assert len(fetch) == n
    assert fetch[0].startswith(b"* 1 FETCH") and \
        fetch[-1].startswith(b"* %d FETCH" % n)
    # MOVE of everything: one COPYUID, n EXPUNGEs, all "* 1 EXPUNGE"
    r.cmd("CREATE Big")
    lines, tagged = r.cmd("MOVE 1:* Big", timeout=120)
    assert b" OK" in tagged, tagged
    assert lines[0].startswith(b"* OK [COPYUID "), lines[:2]
    assert b" 1:%d 1:%d]" % (n, n) in lines[0], lines[0]
    exp = [ln for ln in lines if ln.endswith(b"EXPUNGE")]
    assert len(exp) == n and set(exp) == {b"* 1 EXPUNGE"}
    assert len(msg_files(srv, "Big")) == n and msg_files(srv) == []
    r.close()


# ---------------------------------------------------------------- COPY/MOVE

def test_copy(srv):
    m = setup_msgs(srv, 3)
    m.create("Other")
    m.select("INBOX")
    m.store("2", "+FLAGS", r"(\Flagged kwx)")
    typ, data = m.copy("2:3", "Other")
    assert typ == "OK"
    mo = re.search(rb"\[COPYUID (\d+) 2:3 1:2\]", data[0])
    assert mo, data
    typ, data = m.status("Other", "(MESSAGES UIDVALIDITY)")
    assert b"MESSAGES 2" in data[0]
    assert b"UIDVALIDITY %s" % mo.group(1) in data[0], data
    # flags and keywords travel
    names = [os.path.basename(f) for f in msg_files(srv, "Other")]
    assert any("F" in n.split(":2,")[1] for n in names if ":2," in n), names
    # UID COPY with UIDs that do not all exist (imaplib drops the tagged
    # text of UID commands: raw)
    r = Raw(srv)
    r.cmd("SELECT INBOX")
    _, tagged = r.cmd("UID COPY 3,77 Other")
    assert re.search(rb"OK \[COPYUID \d+ 3 3\]", tagged), tagged
    _, tagged = r.cmd("UID COPY 70:80 Other")
    assert tagged.endswith(b"OK Copy completed"), tagged
    r.close()
    typ, data = m.copy("1", "Nowhere")
    assert typ == "NO" and b"[TRYCREATE]" in data[0], data
    with pytest.raises(imaplib.IMAP4.error):
        m.copy("9", "Other")
    # copying onto the selected mailbox itself
    typ, data = m.copy("1", "INBOX")
    assert typ == "OK" and b"[COPYUID" in data[0]
    typ, data = m.noop()
    assert m.untagged_responses.get("EXISTS", [b""])[-1] == b"4", \
        "COPY into the same folder must add a message (store_mailbox_copy " \
        "reuses the basename of a new/ source: %s)" % msg_files(srv)
    # read-only source: COPY allowed, MOVE not
    m.select("INBOX", readonly=True)
    typ, data = m.copy("1", "Other")
    assert typ == "OK"
    typ, data = m._simple_command("MOVE", "1", "Other")
    assert typ == "NO"
    m.logout()


def test_move_response_order(srv):
    m = setup_msgs(srv, 4)
    m.create("Dst")
    m.logout()
    r = Raw(srv)
    r.cmd("SELECT INBOX")
    lines, tagged = r.cmd("MOVE 2,4 Dst")
    assert b" OK" in tagged, tagged
    assert lines[0].startswith(b"* OK [COPYUID "), lines
    assert re.match(rb"\* OK \[COPYUID \d+ 2,4 1:2\]", lines[0]), lines[0]
    # RFC 3501 7.4.1: seq 2 goes, then 4 became 3
    assert lines[1:3] == [b"* 2 EXPUNGE", b"* 3 EXPUNGE"], lines
    lines, tagged = r.cmd("UID MOVE 3 Dst")
    assert lines[:2] == [lines[0], b"* 2 EXPUNGE"], lines
    assert b"COPYUID" in lines[0] and b" 3 3]" in lines[0], lines
    assert len(msg_files(srv, "Dst")) == 3 and len(msg_files(srv)) == 1
    lines, tagged = r.cmd("MOVE 1 Nope")
    assert b"NO [TRYCREATE]" in tagged
    r.close()


# ---------------------------------------------------------------- EXPUNGE

def test_expunge_sequence_numbers(srv):
    m = setup_msgs(srv, 5)
    m.logout()
    r = Raw(srv)
    r.cmd("SELECT INBOX")
    r.cmd(r"STORE 2,3,5 +FLAGS.SILENT (\Deleted)")
    lines, tagged = r.cmd("EXPUNGE")
    assert b" OK" in tagged
    lines = [ln for ln in lines if ln.endswith(b"EXPUNGE")]
    assert lines == [b"* 2 EXPUNGE", b"* 2 EXPUNGE", b"* 3 EXPUNGE"], lines
    assert len(msg_files(srv)) == 2
    # UID EXPUNGE: only the given UIDs (1 and 4 remain as seq 1, 2)
    r.cmd(r"STORE 1:2 +FLAGS.SILENT (\Deleted)")
    lines, tagged = r.cmd("UID EXPUNGE 4")
    assert [ln for ln in lines if b"EXPUNGE" in ln] == [b"* 2 EXPUNGE"]
    lines, tagged = r.cmd("UID EXPUNGE 1:*")
    assert [ln for ln in lines if b"EXPUNGE" in ln] == [b"* 1 EXPUNGE"]
    assert msg_files(srv) == []
    lines, tagged = r.cmd("EXPUNGE extra")
    assert b" BAD" in tagged
    r.close()


def test_expunge_readonly_close_unselect(srv):
    m = setup_msgs(srv, 3)
    m.select("INBOX")
    m.store("1:2", "+FLAGS", r"(\Deleted)")
    m.select("INBOX", readonly=True)
    typ, data = m._simple_command("EXPUNGE")
    assert typ == "NO"
    # CLOSE in read-only: no expunge
    typ, _ = m.close()
    assert typ == "OK"
    assert len(msg_files(srv)) == 3
    # UNSELECT: no expunge either
    m.select("INBOX")
    typ, data = m._simple_command("UNSELECT")
    assert typ == "OK"
    assert len(msg_files(srv)) == 3
    # CLOSE read-write: silent expunge
    m.select("INBOX")
    m.untagged_responses.clear()
    typ, _ = m.close()
    assert typ == "OK"
    assert "EXPUNGE" not in m.untagged_responses
    assert len(msg_files(srv)) == 1
    with pytest.raises(imaplib.IMAP4.error):
        m.expunge()          # not selected any more
    m.logout()
