"""test_imap_rev2.py: IMAP4rev2 (RFC 9051) against the real daemon, each
rule checked in a session that sent ENABLE IMAP4rev2 and, in the same
run, in a plain IMAP4rev1 session that must behave as before: the
capability list, ENABLE, SELECT/EXAMINE replies (LIST, no RECENT, no
UNSEEN, CLOSED), no \\Recent anywhere (FETCH FLAGS, updates, IDLE, other
sessions keep theirs), SEARCH answered with ESEARCH, STATUS (DELETED,
SIZE; RECENT unknown), LIST attributes, UTF-8 mailbox names, APPEND /
COPY / MOVE response codes, $ keywords, unsolicited FETCH with UID,
HASCHILDREN, BINARY, NAMESPACE and non-synchronizing literals.

A raw line client; every wait is bounded."""

import re
import socket
import time

import heronlib
from heronlib import PASSWORDS, LineClient, deliver, make_message

WAIT = 5.0     # bound on waiting for an unsolicited update


class Imap:
    """A raw IMAP session: cmd() returns (untagged lines, tagged text
    after the tag), both str. rev2: ENABLE IMAP4rev2 after login."""

    def __init__(self, h, rev2=False, user="alice"):
        self.c = LineClient.connect(h.imap_port)
        self.greeting = self.c.readline().decode()
        assert self.greeting.startswith("* OK"), self.greeting
        self.n = 0
        self.ok('LOGIN %s "%s"' % (user, PASSWORDS[user]))
        if rev2:
            u = self.ok("ENABLE IMAP4rev2")
            assert u == ["* ENABLED IMAP4rev2"], u

    def tag(self):
        self.n += 1
        return "R%d" % self.n

    def read_until_tagged(self, tag, timeout=heronlib.IO_TIMEOUT):
        lines = []
        deadline = time.monotonic() + timeout
        while True:
            ln = self.c.readline(max(0.1, deadline - time.monotonic()))
            ln = ln.decode("utf-8", "replace").rstrip("\r\n")
            if ln.startswith(tag + " "):
                return lines, ln[len(tag) + 1:]
            lines.append(ln)

    def send(self, text):
        t = self.tag()
        self.c.send((t + " " + text + "\r\n").encode("utf-8"))
        return t

    def cmd(self, text):
        return self.read_until_tagged(self.send(text))

    def ok(self, text):
        u, t = self.cmd(text)
        assert t.startswith("OK"), (text, t, u)
        return u

    def no(self, text):
        u, t = self.cmd(text)
        assert t.startswith("NO"), (text, t, u)
        return u, t

    def bad(self, text):
        u, t = self.cmd(text)
        assert t.startswith("BAD"), (text, t, u)
        return u

    def close(self):
        try:
            self.c.send("Z LOGOUT\r\n")
        except OSError:
            pass
        self.c.close()


def put(h, n, user="alice", start=1):
    for i in range(start, start + n):
        deliver(h, user, make_message("msg %d" % i, [b"body %d" % i]))


def has(lines, pattern):
    return any(re.search(pattern, ln) for ln in lines)


def caps_of(line):
    m = re.search(r"CAPABILITY ([^\]]*)", line)
    assert m, line
    return m.group(1).split()


def test_capability_lists_both_revisions(heron):
    """RFC 9051 7.2.2 / Appendix A: IMAP4rev1 and IMAP4rev2 both, before
    and after login; 6.3.1: ENABLE does not change the list."""
    a = Imap(heron)
    assert {"IMAP4rev1", "IMAP4rev2"} <= set(caps_of(a.greeting))
    before = a.ok("CAPABILITY")
    caps = caps_of(before[0])
    for c in ("IMAP4rev1", "IMAP4rev2", "ENABLE", "NAMESPACE", "UNSELECT",
              "UIDPLUS", "ESEARCH", "SEARCHRES", "IDLE", "SASL-IR",
              "LIST-EXTENDED", "LIST-STATUS", "MOVE", "LITERAL+", "BINARY",
              "SPECIAL-USE", "STATUS=SIZE"):
        assert c in caps, (c, caps)
    assert a.ok("ENABLE IMAP4rev2") == ["* ENABLED IMAP4rev2"]
    assert a.ok("CAPABILITY") == before
    # RFC 5161 / 9051 6.3.1: the second time nothing new is enabled
    assert a.ok("ENABLE IMAP4rev2") == ["* ENABLED"]
    a.close()


def test_enable_only_before_select(heron):
    """RFC 9051 6.3.1: ENABLE is for the authenticated state; with a
    mailbox selected IMAP4rev2 is not enabled and rev1 rules go on."""
    put(heron, 1)
    a = Imap(heron)
    a.ok("SELECT INBOX")
    assert a.ok("ENABLE IMAP4rev2") == ["* ENABLED"]
    assert has(a.ok("FETCH 1 FLAGS"), r"\\Recent")
    assert a.ok("SEARCH ALL") == ["* SEARCH 1"]
    a.close()


def test_select_replies(heron):
    """RFC 9051 6.3.2: FLAGS, EXISTS, LIST, PERMANENTFLAGS, UIDNEXT,
    UIDVALIDITY; no RECENT (Appendix E 12) and no UNSEEN code (E 11).
    A rev2 session takes no \\Recent: a later rev1 session still gets
    it. The rev1 replies are unchanged."""
    put(heron, 2)
    a = Imap(heron, rev2=True)
    u = a.ok("SELECT INBOX")
    assert "* 2 EXISTS" in u, u
    assert '* LIST (\\HasNoChildren) "/" INBOX' in u, u
    for pat in (r"^\* FLAGS \(", r"^\* OK \[PERMANENTFLAGS \(",
                r"^\* OK \[UIDNEXT 3\]", r"^\* OK \[UIDVALIDITY \d+\]"):
        assert has(u, pat), (pat, u)
    assert not has(u, r"RECENT|UNSEEN"), u
    b = Imap(heron)
    u = b.ok("SELECT INBOX")
    assert "* 2 RECENT" in u and has(u, r"^\* OK \[UNSEEN 1\]"), u
    assert not has(u, r"^\* LIST"), u
    # EXAMINE likewise, READ-ONLY
    c = Imap(heron, rev2=True)
    u, t = c.cmd("EXAMINE INBOX")
    assert t.startswith("OK [READ-ONLY]"), t
    assert has(u, r'^\* LIST \(.*\) "/" INBOX$'), u
    assert not has(u, r"RECENT|UNSEEN"), u
    for s in (a, b, c):
        s.close()


def test_select_list_attributes_and_closed(heron):
    """RFC 9051 6.3.2: the LIST attributes are accurate (children,
    special use); a SELECT while selected sends OK [CLOSED] first (E 9);
    UTF-8 names in LIST (5.1)."""
    a = Imap(heron, rev2=True)
    a.ok("CREATE Parent/Kid")   # Trash is one of the default folders
    a.ok("SELECT INBOX")
    u = a.ok("SELECT Trash")
    assert u[0].startswith("* OK [CLOSED]"), u
    assert '* LIST (\\HasNoChildren \\Trash) "/" Trash' in u, u
    u = a.ok("EXAMINE Parent")
    assert u[0].startswith("* OK [CLOSED]"), u
    assert '* LIST (\\HasChildren) "/" Parent' in u, u
    a.ok("CREATE \"Entw\u00fcrfe\"")
    u = a.ok("SELECT \"Entw\u00fcrfe\"")
    assert '* LIST (\\HasNoChildren) "/" "Entw\u00fcrfe"' in u, u
    a.close()


def test_no_recent_in_fetch_updates_idle(heron):
    """RFC 9051 2.3.2 / Appendix E 12: no \\Recent in FETCH FLAGS and no
    RECENT with new mail (NOOP, IDLE); rev1 sessions keep both."""
    put(heron, 1)
    a = Imap(heron, rev2=True)
    b = Imap(heron)
    a.ok("SELECT INBOX")
    b.ok("SELECT INBOX")
    assert a.ok("FETCH 1 FLAGS") == ["* 1 FETCH (FLAGS ())"]
    assert b.ok("FETCH 1 FLAGS") == ["* 1 FETCH (FLAGS (\\Recent))"]
    put(heron, 1, start=2)
    u = a.ok("NOOP")
    assert "* 2 EXISTS" in u and not has(u, "RECENT"), u
    u = b.ok("NOOP")
    assert "* 2 EXISTS" in u and "* 2 RECENT" in u, u
    assert not has(a.ok("FETCH 1:* FLAGS"), r"\\Recent")
    # IDLE
    t = a.send("IDLE")
    assert a.c.readline().startswith(b"+")
    put(heron, 1, start=3)
    got = []
    deadline = time.monotonic() + WAIT
    while "* 3 EXISTS" not in got and time.monotonic() < deadline:
        try:
            got.append(a.c.readline(deadline - time.monotonic())
                       .decode().rstrip("\r\n"))
        except socket.timeout:
            break
    assert "* 3 EXISTS" in got, got
    a.c.send("DONE\r\n")
    u, tagged = a.read_until_tagged(t)
    assert tagged.startswith("OK"), tagged
    assert not has(got + u, "RECENT"), got + u
    a.close()
    b.close()


def test_search_returns_esearch(heron):
    """RFC 9051 6.4.4 / Appendix E 4: SEARCH and UID SEARCH answer
    ESEARCH (ALL by default, nothing but the tag when nothing matched,
    nothing at all for SAVE alone); a rev1 session still gets SEARCH.
    RECENT / NEW match nothing in rev2 (no message is \\Recent)."""
    put(heron, 3)
    a = Imap(heron, rev2=True)
    b = Imap(heron)
    a.ok("SELECT INBOX")
    b.ok("SELECT INBOX")
    u = a.ok("SEARCH ALL")
    assert u == ['* ESEARCH (TAG "R%d") ALL 1:3' % a.n], u
    u = a.ok("UID SEARCH 2:3")
    assert u == ['* ESEARCH (TAG "R%d") UID ALL 2:3' % a.n], u
    u = a.ok("SEARCH SUBJECT nothing-like-this")
    assert u == ['* ESEARCH (TAG "R%d")' % a.n], u
    u = a.ok("SEARCH RETURN (MIN COUNT) ALL")
    assert u == ['* ESEARCH (TAG "R%d") MIN 1 COUNT 3' % a.n], u
    assert a.ok("SEARCH RETURN (SAVE) 2") == []
    u = a.ok("FETCH $ UID")
    assert u == ["* 2 FETCH (UID 2)"], u
    u = a.ok("SEARCH RECENT")
    assert u == ['* ESEARCH (TAG "R%d")' % a.n], u
    u = a.ok("SEARCH NEW")
    assert u == ['* ESEARCH (TAG "R%d")' % a.n], u
    u = a.ok("SEARCH OLD")
    assert u == ['* ESEARCH (TAG "R%d") ALL 1:3' % a.n], u
    assert b.ok("SEARCH ALL") == ["* SEARCH 1 2 3"]
    assert b.ok("SEARCH RECENT") == ["* SEARCH 1 2 3"]
    a.close()
    b.close()


def test_search_utf8_strings(heron):
    """RFC 9051 4.3.1 / 6.4.4: a rev2 server takes UTF-8 in quoted
    strings and assumes UTF-8 without CHARSET; a rev1 session (no
    UTF8=ACCEPT) still refuses 8-bit quoted strings."""
    deliver(heron, "alice", make_message(
        "=?UTF-8?Q?Gr=C3=BC=C3=9Fe?= aus Z=?UTF-8?Q?=C3=BC?=rich", [b"x"]))
    put(heron, 1, start=2)
    a = Imap(heron, rev2=True)
    b = Imap(heron)
    a.ok("SELECT INBOX")
    b.ok("SELECT INBOX")
    u = a.ok('SEARCH SUBJECT "Gr\u00fc\u00dfe"')
    assert u == ['* ESEARCH (TAG "R%d") ALL 1' % a.n], u
    b.bad('SEARCH SUBJECT "Gr\u00fc\u00dfe"')
    u = b.ok('SEARCH CHARSET UTF-8 SUBJECT {7+}\r\nGr\u00fc\u00dfe')
    assert u == ["* SEARCH 1"], u
    a.close()
    b.close()


def test_status_items(heron):
    """RFC 9051 6.3.11: DELETED and SIZE (Appendix E 3); RECENT is not a
    status-att of RFC 9051 9 (BAD in rev2, fine in rev1), also in LIST
    RETURN (STATUS ...)."""
    put(heron, 2)
    a = Imap(heron, rev2=True)
    b = Imap(heron)
    b.ok("SELECT INBOX")
    b.ok("STORE 1 +FLAGS (\\Deleted \\Seen)")
    b.ok("UNSELECT")
    u = a.ok("STATUS INBOX (MESSAGES UIDNEXT UIDVALIDITY UNSEEN DELETED "
             "SIZE)")
    m = re.match(r"\* STATUS INBOX \(MESSAGES 2 UIDNEXT 3 UIDVALIDITY "
                 r"\d+ UNSEEN 1 SIZE (\d+) DELETED 1\)$", u[0])
    assert m and int(m.group(1)) > 0, u
    a.bad("STATUS INBOX (RECENT)")
    a.bad('LIST "" "*" RETURN (STATUS (MESSAGES RECENT))')
    u = a.ok('LIST "" "*" RETURN (STATUS (MESSAGES DELETED))')
    assert "* STATUS INBOX (MESSAGES 2 DELETED 1)" in u, u
    u = b.ok("STATUS INBOX (RECENT MESSAGES)")
    assert re.match(r"\* STATUS INBOX \(MESSAGES 2 RECENT \d+\)$", u[0]), u
    a.close()
    b.close()


def test_list_attributes(heron):
    """RFC 9051 6.3.9: \\Subscribed with SUBSCRIBED (selection and
    return option), \\NonExistent for a subscribed name that doesn't
    exist, REMOTE accepted (no remote mailboxes: no \\Remote),
    RECURSIVEMATCH alone BAD; LSUB still answers (deprecated, E 19)."""
    for rev2 in (True, False):
        a = Imap(heron, rev2=rev2)
        if rev2:
            a.ok("CREATE Work")
            a.ok("SUBSCRIBE Work")
            a.ok("SUBSCRIBE Gone")
        u = a.ok('LIST (SUBSCRIBED) "" "*"')
        assert '* LIST (\\HasNoChildren \\Subscribed) "/" Work' in u, u
        assert '* LIST (\\NonExistent \\Subscribed) "/" Gone' in u, u
        u = a.ok('LIST "" "*" RETURN (SUBSCRIBED)')
        assert '* LIST (\\HasNoChildren \\Subscribed) "/" Work' in u, u
        assert '* LIST (\\HasNoChildren) "/" INBOX' in u, u
        assert not has(u, "Gone"), u
        u = a.ok('LIST (REMOTE) "" "*"')
        assert has(u, r'^\* LIST \(\\HasNoChildren\) "/" Work$'), u
        assert not has(u, r"\\Remote"), u
        a.bad('LIST (RECURSIVEMATCH) "" "*"')
        u = a.ok('LSUB "" "*"')
        assert '* LSUB () "/" Work' in u, u
        a.close()


def test_utf8_mailbox_names(heron):
    """RFC 9051 5.1 / Appendix A: after ENABLE IMAP4rev2 mailbox names
    are UTF-8 both ways; a rev1 session sees the same mailboxes in
    modified UTF-7."""
    a = Imap(heron, rev2=True)
    b = Imap(heron)
    a.ok('CREATE "Entw\u00fcrfe"')
    a.ok('CREATE "R&D"')
    u = a.ok('LIST "" "*"')
    assert '* LIST (\\HasNoChildren) "/" "Entw\u00fcrfe"' in u, u
    assert '* LIST (\\HasNoChildren) "/" R&D' in u, u
    u = b.ok('LIST "" "*"')
    assert '* LIST (\\HasNoChildren) "/" Entw&APw-rfe' in u, u
    assert '* LIST (\\HasNoChildren) "/" R&-D' in u, u
    u = a.ok('STATUS "Entw\u00fcrfe" (MESSAGES)')
    assert u == ['* STATUS "Entw\u00fcrfe" (MESSAGES 0)'], u
    b.ok("STATUS Entw&APw-rfe (MESSAGES)")
    a.ok('APPEND "R&D" {5+}\r\nhello')
    u = b.ok("STATUS R&-D (MESSAGES)")
    assert u == ["* STATUS R&-D (MESSAGES 1)"], u
    a.close()
    b.close()


def test_mailbox_names_must_be_nfc(heron):
    """RFC 9051 5.1: 8-bit names that are not Net-Unicode (NFC) are not
    created (CREATE, RENAME target); the NFC spelling is fine."""
    a = Imap(heron, rev2=True)
    u, t = a.no('CREATE "Cafe\u0301"')
    assert t.startswith("NO [CANNOT]"), t
    a.ok('CREATE "Caf\u00e9"')
    u, t = a.no('RENAME "Caf\u00e9" "Re\u0301sume\u0301"')
    assert t.startswith("NO [CANNOT]"), t
    a.ok('RENAME "Caf\u00e9" "R\u00e9sum\u00e9"')
    u = a.ok('LIST "" "R*"')
    assert u == ['* LIST (\\HasNoChildren) "/" "R\u00e9sum\u00e9"'], u
    a.close()


def test_append_copy_move_codes(heron):
    """RFC 9051 6.3.12, 6.4.7, 6.4.8 (Appendix E 7, 8): TRYCREATE for a
    missing target, which COPY/MOVE do not create; APPENDUID; COPYUID
    for COPY and, untagged before the expunges, for MOVE."""
    for rev2 in (True, False):
        put(heron, 2, start=1 if rev2 else 3)
        a = Imap(heron, rev2=rev2)
        target = "Dst2" if rev2 else "Dst1"
        moved = 2 if rev2 else 4
        u, t = a.no("APPEND %s {3+}\r\nabc" % target)
        assert t.startswith("NO [TRYCREATE]"), t
        a.ok("SELECT INBOX")
        u, t = a.no("COPY 1 %s" % target)
        assert t.startswith("NO [TRYCREATE]"), t
        u, t = a.no("MOVE 1 %s" % target)
        assert t.startswith("NO [TRYCREATE]"), t
        u = a.ok('LIST "" "%s"' % target)
        assert u == [], u
        a.ok("CREATE %s" % target)
        u, t = a.cmd("APPEND %s {3+}\r\nabc" % target)
        assert re.match(r"OK \[APPENDUID \d+ 1\]", t), t
        u, t = a.cmd("COPY 1 %s" % target)
        assert re.match(r"OK \[COPYUID \d+ 1 2\]", t), t
        u, t = a.cmd("UID MOVE %d %s" % (moved, target))
        assert t.startswith("OK"), (t, u)
        assert re.match(r"\* OK \[COPYUID \d+ %d 3\]" % moved, u[0]), u
        assert re.match(r"\* \d EXPUNGE$", u[1]), u
        # rev1 tells the new RECENT count after the expunge; rev2 never
        assert has(u, "RECENT") != rev2, u
        a.ok("UNSELECT")
        a.close()


def test_dollar_keywords(heron):
    """RFC 9051 2.3.2 (Appendix E 15): $MDNSent $Forwarded $Junk $NotJunk
    $Phishing are kept by STORE, SEARCH, COPY, MOVE and APPEND."""
    put(heron, 1)
    kws = ["$MDNSent", "$Forwarded", "$Junk", "$NotJunk", "$Phishing"]
    a = Imap(heron, rev2=True)
    a.ok("CREATE Other")
    a.ok("SELECT INBOX")
    u = a.ok("STORE 1 +FLAGS (%s)" % " ".join(kws))
    flags = re.search(r"FLAGS \(([^)]*)\)", u[0]).group(1).split()
    assert set(kws) <= set(flags), u
    u = a.ok("SEARCH KEYWORD $Phishing")
    assert u == ['* ESEARCH (TAG "R%d") ALL 1' % a.n], u
    a.ok("COPY 1 Other")
    a.ok("APPEND Other ($Junk $Forwarded) {3+}\r\nabc")
    a.ok("SELECT Other")
    u = a.ok("FETCH 1:2 FLAGS")
    assert set(kws) <= set(re.search(r"FLAGS \(([^)]*)\)", u[0])
                           .group(1).split()), u
    assert {"$Junk", "$Forwarded"} <= set(
        re.search(r"FLAGS \(([^)]*)\)", u[1]).group(1).split()), u
    a.close()


def test_unsolicited_fetch_has_uid(heron):
    """RFC 9051 7.5.2 (Appendix E 21): flag changes made by another
    session come as FETCH with UID."""
    put(heron, 2)
    a = Imap(heron, rev2=True)
    b = Imap(heron)
    a.ok("SELECT INBOX")
    b.ok("SELECT INBOX")
    b.ok("STORE 2 +FLAGS.SILENT (\\Flagged)")
    u = a.ok("NOOP")
    assert u == ["* 2 FETCH (UID 2 FLAGS (\\Flagged))"], u
    a.close()
    b.close()


def test_delete_haschildren(heron):
    """RFC 9051 7.1 HASCHILDREN: a \\Noselect name with children can't be
    deleted; rev1 sessions keep [CANNOT]."""
    a = Imap(heron, rev2=True)
    b = Imap(heron)
    a.ok("CREATE Top/Sub")
    a.ok("DELETE Top")
    u = a.ok('LIST "" "Top"')
    assert u == ['* LIST (\\Noselect \\HasChildren) "/" Top'], u
    u, t = a.no("DELETE Top")
    assert t.startswith("NO [HASCHILDREN]"), t
    u, t = b.no("DELETE Top")
    assert t.startswith("NO [CANNOT]"), t
    a.close()
    b.close()


def test_fetch_binary_namespace_literals(heron):
    """RFC 9051 6.4.5 BINARY[] and BINARY.SIZE (Appendix E 2), NAMESPACE
    (6.3.10), non-synchronizing literals (4.3; LITERAL+ takes more than
    4096 octets), RFC822.SIZE."""
    msg = make_message("bin", [b"hello binary"],
                       [b"Content-Transfer-Encoding: base64"])
    msg = msg.replace(b"hello binary", b"aGVsbG8gYmluYXJ5")
    deliver(heron, "alice", msg)
    a = Imap(heron, rev2=True)
    u = a.ok("NAMESPACE")
    assert u == ['* NAMESPACE (("" "/")) NIL NIL'], u
    a.ok("SELECT INBOX")
    u = a.ok("FETCH 1 (BINARY.SIZE[1] RFC822.SIZE)")
    assert re.match(r"\* 1 FETCH \(BINARY.SIZE\[1\] 12 RFC822.SIZE \d+\)",
                    u[0]), u
    u = a.ok("FETCH 1 BINARY.PEEK[1]")
    # literal8 is needed only for a NUL (RFC 9051 4.3.1, 7.5.2)
    assert re.match(r"\* 1 FETCH \(BINARY\[1\] ~?\{12\}$", u[0]), u
    assert u[1].startswith("hello binary"), u
    big = "x" * 5000
    u, t = a.cmd("APPEND INBOX {%d+}\r\n%s" % (len(big), big))
    assert t.startswith("OK [APPENDUID"), t
    a.close()
