"""test_imap_mailbox.py: IMAP mailbox commands against the real daemon:
SELECT/EXAMINE, CREATE, DELETE, RENAME, SUBSCRIBE/UNSUBSCRIBE, LIST/LSUB
(LIST-EXTENDED, LIST-STATUS, SPECIAL-USE, CHILDREN), STATUS, NAMESPACE,
mailbox name encodings, and two sessions on one mailbox.

Uses imaplib for ordinary calls and a small raw client (Raw) where the
exact responses or their order matter."""

import imaplib
import os
import re
import socket

import pytest

from heronlib import PASSWORDS, IO_TIMEOUT, crlf, deliver, make_message


class Raw:
    """Tagged commands over a plain socket; returns (untagged, tagged)
    lines as str. Literals in responses are folded into their line."""

    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port),
                                          timeout=IO_TIMEOUT)
        self.buf = b""
        self.n = 0
        greet = self.line()
        assert greet.startswith(b"* OK"), greet

    def line(self):
        while b"\r\n" not in self.buf:
            d = self.s.recv(65536)
            if not d:
                raise EOFError("connection closed")
            self.buf += d
        ln, self.buf = self.buf.split(b"\r\n", 1)
        m = re.search(rb"\{(\d+)\}$", ln)
        if m:
            n = int(m.group(1))
            while len(self.buf) < n:
                d = self.s.recv(65536)
                if not d:
                    raise EOFError("connection closed")
                self.buf += d
            ln = ln + b"\r\n" + self.buf[:n]
            self.buf = self.buf[n:]
            ln += self.line()
        return ln

    def cmd(self, text):
        self.n += 1
        tag = "R%d" % self.n
        self.s.sendall(("%s %s\r\n" % (tag, text)).encode("utf-8"))
        untagged = []
        while True:
            ln = self.line().decode("utf-8", "replace")
            if ln.startswith(tag + " "):
                return untagged, ln[len(tag) + 1:]
            untagged.append(ln)

    def ok(self, text):
        u, t = self.cmd(text)
        assert t.startswith("OK"), (text, t, u)
        return u

    def login(self, user="alice"):
        self.ok('LOGIN %s "%s"' % (user, PASSWORDS[user]))
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


def lists(untagged, kind="LIST"):
    """{name: set(attrs)} from LIST/LSUB lines (name unquoted)."""
    out = {}
    for ln in untagged:
        m = re.match(r'\* %s \(([^)]*)\) (?:"/"|NIL) ("(?:[^"\\]|\\.)*"|\S+)'
                     % kind, ln)
        if not m:
            continue
        name = m.group(2)
        if name.startswith('"'):
            name = name[1:-1].replace('\\"', '"').replace("\\\\", "\\")
        out[name] = set(m.group(1).split())
    return out


def list_names(untagged, kind="LIST"):
    return [n for n in lists(untagged, kind)]


def status_of(untagged):
    """{name: {item: int}} from STATUS lines."""
    out = {}
    for ln in untagged:
        m = re.match(r'\* STATUS ("(?:[^"\\]|\\.)*"|\S+) \(([^)]*)\)', ln)
        if not m:
            continue
        name = m.group(1).strip('"')
        it = m.group(2).split()
        out[name] = {it[i]: int(it[i + 1]) for i in range(0, len(it), 2)}
    return out


def put(heron, n, user="alice"):
    for i in range(n):
        deliver(heron, user, crlf(make_message("msg %d" % i, [b"body"])))


# ---------------------------------------------------------------- SELECT

def test_select_responses_in_order(heron, raw):
    put(heron, 3)
    r = raw()
    u, t = r.cmd("SELECT INBOX")
    assert t.startswith("OK [READ-WRITE]"), t
    kinds = []
    for ln in u:
        m = re.match(r"\* (?:OK \[(\w+)|(\d+) (\w+)|(\w+))", ln)
        kinds.append(m.group(1) or m.group(3) or m.group(4))
    assert kinds == ["FLAGS", "PERMANENTFLAGS", "EXISTS", "RECENT",
                     "UNSEEN", "UIDVALIDITY", "UIDNEXT",
                     "HIGHESTMODSEQ"], u
    assert u[0].startswith("* FLAGS (\\Answered \\Flagged \\Deleted "
                           "\\Seen \\Draft"), u[0]
    assert "\\*" in u[1] and "\\Seen" in u[1]
    assert u[2] == "* 3 EXISTS" and u[3] == "* 3 RECENT"
    assert u[4].startswith("* OK [UNSEEN 1]")
    assert u[6].startswith("* OK [UIDNEXT 4]")
    # \Recent belongs to the first session only (RFC 3501 2.3.2).
    u2 = raw().ok("SELECT INBOX")
    assert "* 0 RECENT" in u2 and "* 3 EXISTS" in u2


def test_examine_read_only(heron, raw):
    put(heron, 2)
    r = raw()
    u, t = r.cmd("EXAMINE inbox")
    assert t.startswith("OK [READ-ONLY]"), t
    assert "* OK [PERMANENTFLAGS ()] Read-only mailbox" in u
    assert "* 2 EXISTS" in u
    # EXAMINE doesn't claim \Recent: a later SELECT still sees them.
    u = raw().ok("SELECT INBOX")
    assert "* 2 RECENT" in u


def test_select_empty_no_unseen(raw):
    u = raw().ok("SELECT INBOX")
    assert "* 0 EXISTS" in u
    assert not [x for x in u if "UNSEEN" in x]
    assert [x for x in u if x.startswith("* OK [HIGHESTMODSEQ ")]


def test_select_nonexistent_leaves_auth_state(raw):
    r = raw()
    r.ok("CREATE Box")
    r.ok("SELECT Box")
    u, t = r.cmd("SELECT NoSuchBox")
    assert t.startswith("NO [NONEXISTENT]"), t
    # RFC 3501 6.3.1: no mailbox is selected after a failed SELECT.
    u, t = r.cmd("CLOSE")
    assert t.startswith("BAD"), t
    r.ok("SELECT Box")
    r.ok("CLOSE")


def test_select_condstore_and_bad_params(raw):
    r = raw()
    u, t = r.cmd("SELECT INBOX (CONDSTORE)")
    assert t.startswith("OK [READ-WRITE]"), t
    assert [x for x in u if x.startswith("* OK [HIGHESTMODSEQ ")]
    u, t = r.cmd("SELECT INBOX (FOO)")
    assert t.startswith("BAD"), t
    u, t = r.cmd("SELECT")
    assert t.startswith("BAD"), t


def test_select_with_imaplib(heron):
    put(heron, 1)
    m = imaplib.IMAP4("127.0.0.1", heron.imap_port, timeout=IO_TIMEOUT)
    try:
        m.login("alice", PASSWORDS["alice"])
        typ, data = m.select("INBOX")
        assert typ == "OK" and data == [b"1"]
        assert m.response("UIDVALIDITY")[1][0] is not None
        typ, data = m.select("INBOX", readonly=True)
        assert typ == "OK"
        typ, data = m.select("Nope")
        assert typ == "NO"
        m.logout()
    finally:
        m.shutdown() if m.state != "LOGOUT" else None


# ------------------------------------------------------- CREATE / DELETE

def test_create_and_errors(heron, raw):
    r = raw()
    r.ok("CREATE Work")
    u, t = r.cmd("CREATE Work")
    assert t.startswith("NO [ALREADYEXISTS]"), t
    u, t = r.cmd("CREATE inbox")
    assert t.startswith("NO [ALREADYEXISTS]"), t
    # '.' in a name works (escaped on disk) and lists back unchanged.
    r.ok('CREATE "v1.2/notes.txt"')
    u = r.ok('LIST "" "v1.2*"')
    assert any('"v1.2/notes.txt"' in ln or " v1.2/notes.txt" in ln
               for ln in u), u
    assert os.path.isdir(os.path.join(heron.maildir("alice"),
                                      ".v1^2e2.notes^2etxt", "cur"))
    u, t = r.cmd('CREATE "x/.."')
    assert t.startswith(("NO", "BAD")), t
    u, t = r.cmd('CREATE "a&b"')          # bad mUTF-7
    assert t.startswith("NO"), t
    u, t = r.cmd("CREATE")
    assert t.startswith("BAD"), t
    # RFC 3501 6.3.3: trailing separator; superior levels created.
    r.ok("CREATE Projects/")
    r.ok("CREATE deep/er/est")
    got = lists(r.ok('LIST "" "*"'))
    assert "Projects" in got and "\\Noselect" not in got["Projects"]
    for n in ("deep", "deep/er", "deep/er/est"):
        assert n in got and "\\Noselect" not in got[n], (n, got)
    assert "\\HasChildren" in got["deep"]
    assert "\\HasNoChildren" in got["deep/er/est"]
    r.ok("SELECT deep/er")
    r.ok("CREATE INBOX/child")
    assert "INBOX/child" in lists(r.ok('LIST "" "*"'))


def test_delete(heron, raw):
    r = raw()
    u, t = r.cmd("DELETE INBOX")
    assert t.startswith("NO"), t
    u, t = r.cmd("DELETE Missing")
    assert t.startswith("NO [NONEXISTENT]"), t
    r.ok("CREATE Old")
    r.ok("DELETE Old")
    assert "Old" not in lists(r.ok('LIST "" "*"'))
    # With children: the name stays as \Noselect, the children remain.
    r.ok("CREATE P/c1")
    r.ok("CREATE P/c2")
    r.ok("DELETE P")
    got = lists(r.ok('LIST "" "*"'))
    assert "\\Noselect" in got["P"] and "\\HasChildren" in got["P"]
    assert "P/c1" in got and "P/c2" in got
    u, t = r.cmd("SELECT P")
    assert t.startswith("NO"), t
    # RFC 3501 6.3.4: a \Noselect name with inferiors can't be deleted.
    u, t = r.cmd("DELETE P")
    assert t.startswith("NO"), t
    r.ok("DELETE P/c1")
    r.ok("DELETE P/c2")
    assert "P" not in lists(r.ok('LIST "" "*"'))


def test_delete_selected_by_self(heron, raw):
    put(heron, 1)
    r = raw()
    r.ok("CREATE Self")
    r.ok("SELECT Self")
    u = r.ok("DELETE Self")
    assert [x for x in u if "[CLOSED]" in x], u
    u, t = r.cmd("CLOSE")                 # not selected any more
    assert t.startswith("BAD"), t


def test_delete_selected_by_other_session(heron, raw):
    a, b = raw(), raw()
    a.ok("CREATE Shared")
    u = a.ok("SELECT Shared")
    assert "* 0 EXISTS" in u
    b.ok("DELETE Shared")
    # RFC 2180 3.3 leaves the choice to the server: Heron says BYE at the
    # next point where it may send updates, and closes.
    a.s.sendall(b"n1 NOOP\r\n")
    lines = []
    with pytest.raises(EOFError):
        for _ in range(10):
            lines.append(a.line())
    assert any(ln.startswith(b"* BYE") for ln in lines), lines
    b.ok("NOOP")


# ------------------------------------------------------------------ RENAME

def test_rename(heron, raw):
    r = raw()
    r.ok("CREATE A/x")
    r.ok("CREATE B")
    u, t = r.cmd("RENAME A B")
    assert t.startswith("NO [ALREADYEXISTS]"), t
    u, t = r.cmd("RENAME Missing C")
    assert t.startswith("NO [NONEXISTENT]"), t
    u, t = r.cmd("RENAME B INBOX")
    assert t.startswith("NO [ALREADYEXISTS]"), t
    u, t = r.cmd("RENAME A A/y")
    assert t.startswith("NO"), t
    u, t = r.cmd("RENAME A")
    assert t.startswith("BAD"), t
    r.ok("RENAME A New/Place")
    got = lists(r.ok('LIST "" "*"'))
    assert "A" not in got and "A/x" not in got
    assert "New/Place" in got and "New/Place/x" in got
    assert "New" in got


def test_rename_keeps_uids(heron, raw):
    r = raw()
    r.ok("CREATE Src")
    u1 = r.ok("SELECT Src")
    r.ok("CLOSE")
    r.ok("RENAME Src Dst")
    u2 = r.ok("SELECT Dst")
    v1 = [x for x in u1 if "UIDVALIDITY" in x]
    v2 = [x for x in u2 if "UIDVALIDITY" in x]
    assert v1 == v2


def test_rename_inbox_moves_messages(heron, raw):
    put(heron, 2)
    r = raw()
    r.ok("RENAME INBOX Saved")
    st = status_of(r.ok("STATUS Saved (MESSAGES)"))
    assert st["Saved"]["MESSAGES"] == 2
    st = status_of(r.ok("STATUS INBOX (MESSAGES)"))
    assert st["INBOX"]["MESSAGES"] == 0


def test_rename_selected_by_self(raw):
    r = raw()
    r.ok("CREATE Sel/kid")
    r.ok("SELECT Sel/kid")
    u = r.ok("RENAME Sel Moved")
    assert [x for x in u if "[CLOSED]" in x], u
    r.ok("SELECT Moved/kid")


# ------------------------------------------------- SUBSCRIBE / LSUB

def test_subscribe_lsub(raw):
    r = raw()
    r.ok("CREATE Lists/a")
    r.ok("CREATE Lists/b")
    r.ok("SUBSCRIBE Lists/a")
    r.ok("SUBSCRIBE Ghost")               # nonexistent is allowed
    got = lists(r.ok('LSUB "" "*"'), "LSUB")
    assert set(got) == {"Lists/a", "Ghost"}, got
    # '%' shows the unsubscribed parent of a subscribed child \Noselect.
    got = lists(r.ok('LSUB "" "%"'), "LSUB")
    assert "\\Noselect" in got["Lists"], got
    assert "Ghost" in got
    r.ok("UNSUBSCRIBE Ghost")
    r.ok("UNSUBSCRIBE Lists/a")
    assert lists(r.ok('LSUB "" "*"'), "LSUB") == {}
    u, t = r.cmd("SUBSCRIBE")
    assert t.startswith("BAD"), t


def test_lsub_imaplib(heron):
    m = imaplib.IMAP4("127.0.0.1", heron.imap_port, timeout=IO_TIMEOUT)
    m.login("alice", PASSWORDS["alice"])
    assert m.create("Sub1")[0] == "OK"
    assert m.subscribe("Sub1")[0] == "OK"
    typ, data = m.lsub()
    assert typ == "OK" and any(b"Sub1" in d for d in data)
    assert m.unsubscribe("Sub1")[0] == "OK"
    m.logout()


# -------------------------------------------------------------------- LIST

def test_list_basics(raw):
    r = raw()
    for n in ("Fruit/Apple", "Fruit/Banana", "Veg", "INBOX/Kid"):
        r.ok("CREATE %s" % n)
    u = r.ok('LIST "" ""')
    assert u == ['* LIST (\\Noselect) "/" ""'], u
    u = r.ok('LIST "" "*"')
    names = list_names(u)
    assert names[0] == "INBOX", names
    assert {"Fruit", "Fruit/Apple", "Fruit/Banana", "Veg",
            "INBOX/Kid"} <= set(names)
    got = lists(u)
    assert "\\HasChildren" in got["INBOX"]
    assert "\\HasChildren" in got["Fruit"]
    assert "\\HasNoChildren" in got["Veg"]
    assert set(list_names(r.ok('LIST "" "%"'))) >= {"INBOX", "Fruit", "Veg"}
    assert "Fruit/Apple" not in list_names(r.ok('LIST "" "%"'))
    assert set(list_names(r.ok('LIST "" "Fruit/%"'))) == {
        "Fruit/Apple", "Fruit/Banana"}
    # reference + pattern (RFC 3501 6.3.8)
    assert set(list_names(r.ok('LIST "Fruit/" "%"'))) == {
        "Fruit/Apple", "Fruit/Banana"}
    assert list_names(r.ok('LIST "Fruit/" "/Veg"')) == []
    # INBOX is case-insensitive and always spelled INBOX.
    assert list_names(r.ok('LIST "" "inbox"')) == ["INBOX"]
    assert list_names(r.ok('LIST "" "iNbOx/%"')) == ["INBOX/Kid"]
    assert list_names(r.ok('LIST "" "F*a*"')) == ["Fruit/Banana"]
    assert list_names(r.ok('LIST "" "nothing*"')) == []
    u = r.ok('LIST "Fruit/" ""')
    assert u == ['* LIST (\\Noselect) "/" "Fruit/"'], u
    u, t = r.cmd('LIST ""')
    assert t.startswith("BAD"), t


def test_list_special_use(raw):
    r = raw()
    for n in ("Drafts", "Sent", "Trash", "Junk", "Archive"):
        r.cmd("CREATE %s" % n)            # login may have made them
    got = lists(r.ok('LIST "" "*"'))
    assert "\\Drafts" in got["Drafts"] and "\\Sent" in got["Sent"]
    assert "\\Trash" in got["Trash"] and "\\Junk" in got["Junk"]
    assert "\\Archive" in got["Archive"]
    got = lists(r.ok('LIST (SPECIAL-USE) "" "*"'))
    assert set(got) == {"Drafts", "Sent", "Trash", "Junk", "Archive"}
    got = lists(r.ok('LIST "" "*" RETURN (SPECIAL-USE)'))
    assert "\\Trash" in got["Trash"] and "INBOX" in got
    # RFC 6154 3: CREATE-SPECIAL-USE only for the name's own use.
    r.ok("DELETE Junk")
    r.ok("CREATE Junk (USE (\\Junk))")
    u, t = r.cmd("CREATE Other (USE (\\Trash))")
    assert t.startswith("NO [USEATTR]"), t


def test_list_extended(raw):
    r = raw()
    for n in ("Fruit/Apple", "Fruit/Banana", "Fruit/Peach", "Tofu"):
        r.ok("CREATE %s" % n)
    r.ok("SUBSCRIBE Fruit/Banana")
    r.ok("SUBSCRIBE Fruit/Peach")
    r.ok("DELETE Fruit/Peach")            # stays subscribed
    r.ok("SUBSCRIBE Tofu")
    got = lists(r.ok('LIST (SUBSCRIBED) "" "*"'))
    assert set(got) == {"Fruit/Banana", "Fruit/Peach", "Tofu"}, got
    assert "\\NonExistent" in got["Fruit/Peach"]
    assert "\\Subscribed" in got["Fruit/Peach"]
    assert "\\Subscribed" in got["Tofu"]
    # RFC 5258 example 9-ish: CHILDINFO for a matching parent.
    u = r.ok('LIST (SUBSCRIBED RECURSIVEMATCH) "" "%"')
    fruit = [x for x in u if re.search(r' "?Fruit"?( |$)', x)]
    assert len(fruit) == 1 and '("CHILDINFO" ("SUBSCRIBED"))' in fruit[0], u
    assert "Tofu" in lists(u)
    u, t = r.cmd('LIST (RECURSIVEMATCH) "" "%"')
    assert t.startswith("BAD"), t
    u, t = r.cmd('LIST (FOO) "" "%"')
    assert t.startswith("BAD"), t
    u, t = r.cmd('LIST "" "%" RETURN (BOGUS)')
    assert t.startswith("BAD"), t
    # multiple patterns, RETURN (CHILDREN SUBSCRIBED)
    got = lists(r.ok('LIST "" ("Tofu" "Fruit") RETURN (CHILDREN '
                     'SUBSCRIBED)'))
    assert set(got) == {"Tofu", "Fruit"}
    assert "\\Subscribed" in got["Tofu"] and "\\HasChildren" in got["Fruit"]
    assert "\\Subscribed" not in got["Fruit"]
    # \Subscribed only when asked for
    got = lists(r.ok('LIST "" "Tofu"'))
    assert got["Tofu"] == {"\\HasNoChildren"}


def test_list_status(heron, raw):
    put(heron, 2)
    r = raw()
    r.ok("CREATE Empty")
    r.ok("CREATE Par/kid")
    r.ok("DELETE Par")
    u = r.ok('LIST "" "*" RETURN (STATUS (MESSAGES UNSEEN UIDNEXT))')
    st = status_of(u)
    assert st["INBOX"] == {"MESSAGES": 2, "UNSEEN": 2, "UIDNEXT": 3}
    assert st["Empty"]["MESSAGES"] == 0
    assert "Par" not in st                # \Noselect: no STATUS
    # each STATUS follows its LIST line
    i = [k for k, x in enumerate(u) if x.startswith('* LIST') and
         x.endswith(" INBOX")][0]
    assert u[i + 1].startswith("* STATUS INBOX ")


def test_list_imaplib(heron):
    m = imaplib.IMAP4("127.0.0.1", heron.imap_port, timeout=IO_TIMEOUT)
    m.login("alice", PASSWORDS["alice"])
    m.create("one/two")
    typ, data = m.list()
    assert typ == "OK"
    assert data[0].endswith(b'"/" INBOX'), data
    assert any(d.endswith(b'"/" one/two') for d in data)
    typ, data = m.list("one/", "%")
    assert typ == "OK" and len(data) == 1
    m.logout()


# ------------------------------------------------------------------ STATUS

def test_status(heron, raw):
    put(heron, 3)
    r = raw()
    u = r.ok("STATUS INBOX (MESSAGES RECENT UIDNEXT UIDVALIDITY UNSEEN "
             "HIGHESTMODSEQ SIZE DELETED)")
    st = status_of(u)["INBOX"]
    assert st["MESSAGES"] == 3 and st["UNSEEN"] == 3
    assert st["UIDNEXT"] == 4 and st["UIDVALIDITY"] > 0
    assert st["HIGHESTMODSEQ"] >= 1 and st["SIZE"] > 0
    assert st["DELETED"] == 0
    # on the selected mailbox, from its view
    r.ok("SELECT INBOX")
    r.ok("STORE 1 +FLAGS (\\Seen \\Deleted)")
    st = status_of(r.ok("STATUS INBOX (UNSEEN DELETED RECENT MESSAGES)"))
    assert st["INBOX"] == {"UNSEEN": 2, "DELETED": 1, "RECENT": 3,
                           "MESSAGES": 3}
    u, t = r.cmd("STATUS INBOX (BOGUS)")
    assert t.startswith("BAD"), t
    u, t = r.cmd("STATUS INBOX ()")
    assert t.startswith("BAD"), t
    u, t = r.cmd("STATUS Nope (MESSAGES)")
    assert t.startswith("NO [NONEXISTENT]"), t
    # imaplib
    m = imaplib.IMAP4("127.0.0.1", heron.imap_port, timeout=IO_TIMEOUT)
    m.login("alice", PASSWORDS["alice"])
    typ, data = m.status("INBOX", "(MESSAGES UIDNEXT)")
    assert typ == "OK" and data == [b"INBOX (MESSAGES 3 UIDNEXT 4)"], data
    m.logout()


def test_namespace(raw):
    r = raw()
    assert r.ok("NAMESPACE") == ['* NAMESPACE (("" "/")) NIL NIL']
    u, t = r.cmd("NAMESPACE foo")
    assert t.startswith("BAD"), t


# ------------------------------------------------------------ name forms

def test_mutf7_names(heron, raw):
    r = raw()
    r.ok('CREATE "B&AOQ-r/&ZeVnLIqe-"')
    got = lists(r.ok('LIST "" "B&AOQ-r*"'))
    assert set(got) == {"B&AOQ-r", "B&AOQ-r/&ZeVnLIqe-"}, got
    r.ok('SELECT "B&AOQ-r/&ZeVnLIqe-"')
    # on disk the Maildir++ folder name keeps mUTF-7 (as Dovecot does)
    md = heron.maildir("alice")
    assert os.path.isdir(os.path.join(md, ".B&AOQ-r.&ZeVnLIqe-"))
    u, t = r.cmd('CREATE "&AGE-"')        # non-canonical mUTF-7
    assert t.startswith("NO"), t
    u, t = r.cmd('CREATE "Caf&AOk"')      # unterminated
    assert t.startswith("NO"), t


def test_utf8_accept_names(raw):
    r = raw()
    u = r.ok("ENABLE UTF8=ACCEPT")
    if not [x for x in u if "UTF8=ACCEPT" in x]:
        pytest.skip("the session doesn't ENABLE UTF8=ACCEPT yet")
    r.ok('CREATE "Bär"')
    r.ok('CREATE "a&b"')
    got = lists(r.ok('LIST "" "*"'))
    assert "Bär" in got and "a&b" in got, got
    r.ok('SELECT "Bär"')
    st = status_of(r.ok('STATUS "Bär" (MESSAGES)'))
    assert "Bär" in st
    # the mUTF-7 spelling is seen by a session without UTF8=ACCEPT
    r2 = Raw(r.s.getpeername()[1]).login()
    got = lists(r2.ok('LIST "" "*"'))
    assert "B&AOQ-r" in got and "a&-b" in got, got
    r2.close()


def test_literal_names(raw):
    r = raw()
    r.s.sendall(b'L1 CREATE {8+}\r\nlit name\r\n')
    while True:
        ln = r.line()
        if ln.startswith(b"L1 "):
            break
    assert ln.startswith(b"L1 OK"), ln
    got = lists(r.ok('LIST "" "lit*"'))
    assert "lit name" in got


def test_wrong_state(heron, raw):
    r = raw(login=False)
    for c in ("SELECT INBOX", "LIST \"\" *", "CREATE x", "STATUS INBOX "
              "(MESSAGES)", "NAMESPACE"):
        u, t = r.cmd(c)
        assert t.startswith("BAD") or t.startswith("NO"), (c, t)
