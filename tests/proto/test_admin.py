"""The offline admin commands (src/main/admin.c) run against a live
daemon's config: user list, mailbox create/list/status/delete, expunge by
IMAP search keys (a selected IMAP session sees EXPUNGE), index check after
the index is damaged while the server runs, then index rebuild; UIDs and
UIDVALIDITY survive and the daemon keeps serving."""

import imaplib
import os
import re
import time

import heronlib
from heronlib import PASSWORDS, crlf, deliver, make_message


def cli(heron, *args):
    r = heron.run_cli(list(args[:2]) + ["-c", heron.conf] + list(args[2:])
                      if args[0] in ("mailbox", "index", "user")
                      else [args[0], "-c", heron.conf] + list(args[1:]))
    return r.returncode, r.stdout.decode(), r.stderr.decode()


def imap_login(heron, user="alice"):
    m = imaplib.IMAP4("127.0.0.1", heron.imap_port,
                      timeout=heronlib.IO_TIMEOUT)
    m.login(user, PASSWORDS[user])
    return m


def uid_map(m):
    """{uid: subject} of the selected mailbox."""
    typ, data = m.uid("FETCH", "1:*", "(UID BODY.PEEK[HEADER.FIELDS "
                      "(SUBJECT)])")
    assert typ == "OK"
    out = {}
    for item in data:
        if not isinstance(item, tuple):
            continue
        uid = int(re.search(rb"UID (\d+)", item[0]).group(1))
        out[uid] = item[1].strip().decode()
    return out


def status(heron, user, box):
    rc, out, err = cli(heron, "mailbox", "status", user, box)
    assert rc == 0, err
    return dict(kv.split("=") for kv in out.split()[1:])


def test_user_list(heron):
    rc, out, err = cli(heron, "user", "list")
    assert rc == 0, err
    users = out.split()
    assert users[:3] == ["alice", "bob", "dave"]
    assert "# test users" not in out


def test_mailbox_lifecycle(heron):
    for n in range(3):
        deliver(heron, "alice", crlf(make_message("m%d" % n, [b"x"])))
    rc, out, err = cli(heron, "mailbox", "create", "-s", "alice", "Work",
                       "Lists/heron")
    assert rc == 0, err
    rc, out, err = cli(heron, "mailbox", "create", "alice", "Work")
    assert rc != 0 and "Work" in err
    rc, out, _ = cli(heron, "mailbox", "list", "alice")
    assert out.split("\n")[:4] == ["INBOX", "Lists", "Lists/heron", "Work"]
    rc, out, _ = cli(heron, "mailbox", "list", "-s", "alice")
    assert sorted(out.split()) == ["Lists/heron", "Work"]
    st = status(heron, "alice", "INBOX")
    assert st["messages"] == "3" and st["unseen"] == "3"
    assert st["uidnext"] == "4" and int(st["uidvalidity"]) > 0
    rc, out, _ = cli(heron, "mailbox", "status", "-t", "alice", "INBOX",
                     "Work")
    rows = [line.split("\t") for line in out.strip().split("\n")]
    assert rows[0][:2] == ["mailbox", "messages"]
    assert rows[1][:2] == ["INBOX", "3"] and rows[2][:2] == ["Work", "0"]
    # IMAP sees the folder
    m = imap_login(heron)
    typ, data = m.list()
    assert any(b"Work" in d for d in data)
    m.logout()
    rc, out, err = cli(heron, "mailbox", "delete", "alice", "Work")
    assert rc == 0, err
    rc, out, _ = cli(heron, "mailbox", "list", "alice")
    assert "Work" not in out.split()
    rc, out, err = cli(heron, "mailbox", "list", "nosuchuser")
    assert rc == 67 and "unknown user" in err
    assert not os.path.exists(heron.maildir("nosuchuser"))


def test_expunge_by_search_seen_by_imap(heron):
    for n in range(6):
        deliver(heron, "alice", crlf(make_message("msg %d" % n, [b"b"])))
    m = imap_login(heron)
    assert m.select("INBOX")[0] == "OK"
    m.store("1,3,5", "+FLAGS", r"(\Seen)")
    before = uid_map(m)
    rc, out, err = cli(heron, "expunge", "alice", "INBOX", "SEEN",
                       "NOT", "SUBJECT", "msg 4")
    assert rc == 0, err
    assert "expunged 2 messages" in out
    # the selected session learns of it as EXPUNGE
    deadline = time.monotonic() + 10
    expunged = []
    while time.monotonic() < deadline and len(expunged) < 2:
        typ, data = m.noop()
        expunged += [int(x) for x in
                     (m.untagged_responses.pop("EXPUNGE", None) or [])]
        time.sleep(0.1)
    assert len(expunged) == 2
    after = uid_map(m)
    assert after == {u: s for u, s in before.items()
                     if s.split()[-1] not in ("0", "2")}
    # parenthesised keys, UID sets and OR work as in IMAP
    rc, out, err = cli(heron, "expunge", "alice", "INBOX", "(OR",
                       "UID", "2", "SUBJECT", "msg 5)")
    assert rc == 0 and "expunged 2 messages" in out, (out, err)
    rc, out, err = cli(heron, "expunge", "alice", "INBOX", "NOSUCHKEY")
    assert rc != 0
    m.logout()
    assert status(heron, "alice", "INBOX")["messages"] == "2"


def test_index_check_and_rebuild_while_running(heron):
    for n in range(8):
        deliver(heron, "bob", crlf(make_message("b%d" % n, [b"body"])))
    m = imap_login(heron, "bob")
    assert m.select("INBOX")[0] == "OK"
    m.store("2", "+FLAGS", r"(\Flagged)")
    m.uid("STORE", "3", "+FLAGS", r"(\Deleted)")
    m.expunge()
    before = uid_map(m)
    v_before = status(heron, "bob", "INBOX")["uidvalidity"]
    rc, out, err = cli(heron, "index", "check", "bob")
    assert rc == 0, out + err
    # damage a message record's basename in place (the server has the
    # index open): the check must find it
    path = heron.index_path("bob")
    with open(path, "r+b") as f:
        data = f.read()
        name = re.search(rb"\d{10}\.M\d+P\d+Q\d+", data).group(0)
        hits = [i for i in range(len(data))
                if data.startswith(name, i)]
        assert hits
        # every copy (LMDB keeps old page versions too), each differently,
        # so the record's basename and path no longer agree
        for k, i in enumerate(hits):
            f.seek(i + 2)
            f.write(b"%02d" % (k % 100))
    rc, out, err = cli(heron, "index", "check", "bob")
    assert rc == 1, out + err
    assert "problem" in out
    rc, out, err = cli(heron, "index", "rebuild", "bob")
    assert rc == 0, out + err
    rc, out, err = cli(heron, "index", "check", "bob")
    assert rc == 0, out + err
    # the connected session and a new one see the same UIDs
    assert m.noop()[0] == "OK"
    assert uid_map(m) == before
    m.logout()
    m2 = imap_login(heron, "bob")
    assert m2.select("INBOX")[0] == "OK"
    assert uid_map(m2) == before
    typ, data = m2.uid("FETCH", "1:*", "(FLAGS)")
    assert any(b"\\Flagged" in d for d in data)
    m2.logout()
    assert status(heron, "bob", "INBOX")["uidvalidity"] == v_before
    # still delivering, with the next UID
    deliver(heron, "bob", crlf(make_message("after", [b"x"])))
    st = status(heron, "bob", "INBOX")
    assert st["messages"] == str(len(before) + 1)
    assert int(st["uidnext"]) == max(before) + 2 or \
        int(st["uidnext"]) > max(before) + 1


def test_force_resync_picks_up_external_changes(heron):
    for n in range(4):
        deliver(heron, "alice", crlf(make_message("r%d" % n, [b"x"])))
    st = status(heron, "alice", "INBOX")
    md = heron.maildir("alice")
    new = sorted(os.listdir(os.path.join(md, "new")))
    os.unlink(os.path.join(md, "new", new[0]))
    with open(os.path.join(md, "tmp", "ext.1"), "wb") as f:
        f.write(b"Subject: dropped in\n\nby another tool\n")
    os.rename(os.path.join(md, "tmp", "ext.1"),
              os.path.join(md, "cur", "1700000000.ext1.host:2,S"))
    rc, out, err = cli(heron, "force-resync", "alice", "INBOX")
    assert rc == 0, err
    st2 = status(heron, "alice", "INBOX")
    assert st2["messages"] == "4"
    assert st2["uidvalidity"] == st["uidvalidity"]
    assert int(st2["uidnext"]) == int(st["uidnext"]) + 1
    assert st2["unseen"] == "3"
