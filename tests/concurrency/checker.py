"""checker.py: the IMAP concurrency checker (issue 4 item 2).

Starts the real daemon (tests/proto/heronlib.py; binary $HERON_BIN or
build/heron) with several workers and a few users, then runs N clients
doing random IMAP commands on shared mailboxes for a bounded time, with
LMTP deliveries and POP3 sessions in between. Every response goes through
the model (model.py): RFC 3501 / RFC 2180 / RFC 6851 invariants per
session, \\Recent ownership and UID content across sessions. At the end
every session NOOPs; all sessions of a mailbox must agree with each other
and with a fresh session, whose byte-exact fetch of every message is
checked too.

Prints "N passed, M failed" (N checks passed, M violations) last; exits
1 on any violation. Limits: every loop is bounded in count and time, every
socket read has a deadline, loopback only.
"""

import argparse
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "proto"))
sys.path.insert(0, HERE)

import heronlib  # noqa: E402
from imapwire import (Conn, WireError, parse_response,  # noqa: E402
                      parse_uid_set, seq_set_str)
from model import Cmd, Session, Stats, World, content_matches  # noqa: E402

USERS = {"u1": "u1-pw", "u2": "u2-pw"}
MAILBOXES = ["INBOX", "Shared1", "Shared2"]
COPY_TARGETS = ["Shared1", "Shared2"]   # INBOX keeps unique Message-IDs
FLAG_CHOICES = ["\\Seen", "\\Flagged", "\\Answered", "\\Draft", "$Work",
                "$Later"]
MAX_VIEW = 40           # above this many messages, clients prune
IO_TIMEOUT = 30.0


class Config:
    def __init__(self, a):
        self.clients = a.clients
        self.seconds = a.seconds
        self.workers = a.workers
        self.seed = a.seed
        self.inject = a.inject
        self.verbose = a.verbose
        self.strict = a.strict


class Client:
    """One IMAP connection driven by its own RNG."""

    def __init__(self, cid, world, heron, cfg, rng, stop, phase):
        self.cid = cid
        self.w = world
        self.h = heron
        self.cfg = cfg
        self.rng = rng
        self.stop = stop
        self.phase = phase
        self.user = "u1" if cid % 4 != 3 else "u2"
        self.who = "c%d/%s" % (cid, self.user)
        self.conn = None
        self.s = None
        self.tagn = 0
        self.msgn = 0
        self.ops = 0
        self.final = None
        self.inject_at = None
        if cfg is not None and cfg.inject and cid == 0:
            self.inject_at = time.monotonic() + cfg.inject

    # -- wire
    def connect(self):
        self.conn = Conn(self.h.imap_port, IO_TIMEOUT)
        self.s = Session(self.w, self.who)
        g = parse_response(self.conn.read_response())
        if g.name != "OK":
            raise WireError("greeting %r" % g.raw)
        r = self.run('LOGIN %s "%s"' % (self.user, USERS[self.user]),
                     Cmd(None, "LOGIN"))
        if r.name != "OK":
            raise WireError("login failed: %r" % r.raw)

    def disconnect(self):
        if self.s:
            self.s.leave()
        if self.conn:
            self.conn.close()
        self.conn = self.s = None

    def tag(self):
        self.tagn += 1
        return "c%dt%d" % (self.cid, self.tagn)

    def drain_outside(self):
        """Responses that arrived with no command in progress (5.3)."""
        n = 0
        while n < 100 and self.conn.has_pending():
            n += 1
            r = parse_response(self.conn.read_response(2.0))
            if r.kind == "tagged":
                self.s.fail("tagged %r with no command in progress"
                            % r.raw[:80])
            elif r.kind == "untagged":
                self.s.on_response(r)

    def run(self, text, cmd, literal=None, sync_literal=False):
        """Sends one command, feeds every response to the model, returns
        the tagged response."""
        self.drain_outside()
        cmd.tag = self.tag()
        cmd.kw["text"] = text[:150]
        self.s.begin(cmd)
        if literal is not None:
            if sync_literal:
                self.conn.send("%s %s {%d}\r\n" % (cmd.tag, text,
                                                   len(literal)))
                self.read_until(cmd, want_cont=True)
                self.conn.send(literal + b"\r\n")
            else:
                self.conn.send(("%s %s {%d+}\r\n" % (
                    cmd.tag, text, len(literal))).encode() + literal +
                    b"\r\n")
        else:
            self.conn.send("%s %s\r\n" % (cmd.tag, text))
        if self.inject_at and time.monotonic() > self.inject_at and \
                cmd.name == "FETCH" and not cmd.is_uid and self.s.view:
            # --inject: a fake EXPUNGE during FETCH must be reported.
            self.inject_at = None
            self.conn.injected.append(b"* 1 EXPUNGE")
        return self.read_until(cmd)

    def read_until(self, cmd, want_cont=False):
        for _ in range(1000000):
            r = parse_response(self.conn.read_response())
            if r.kind == "cont":
                if want_cont or cmd.name == "IDLE":
                    return r
                self.s.fail("unexpected continuation %r" % r.raw[:80])
            elif r.kind == "untagged":
                self.s.on_response(r)
            elif r.tag != cmd.tag:
                self.s.fail("tagged response %r while waiting for %s"
                            % (r.raw[:80], cmd.tag))
            else:
                if want_cont:
                    self.s.fail("tagged %r instead of a continuation"
                                % r.raw[:80])
                self.s.on_tagged(r)
                self.w.stats.ok()
                return r
        raise WireError("response flood")

    # -- messages
    def new_message(self, kind):
        self.msgn += 1
        msgid = "%s.%d.%s@conc.test" % (self.who.replace("/", "-"),
                                         self.msgn, kind)
        r = self.rng
        lines = [b"line %d of %s" % (i, msgid.encode())
                 for i in range(r.choice([1, 3, 10, 200]))]
        if r.random() < 0.3:
            lines.insert(0, b".dot-start line")
        if r.random() < 0.2:
            lines.append(b"x" * r.randint(500, 1500))
        hdr = [b"From: C <c@conc.test>", b"To: u <u@conc.test>",
               b"Subject: " + msgid.encode(),
               b"Message-ID: <" + msgid.encode() + b">"]
        if r.random() < 0.3:
            hdr.append(b"X-Folded: a\r\n\tb")
        data = b"\r\n".join(hdr + [b""] + lines) + b"\r\n"
        self.w.add_original(msgid, data, "append" if kind == "a" else
                            "lmtp")
        return msgid, data

    # -- random choices
    def pick_seqs(self, most=5):
        n = len(self.s.view)
        if n == 0:
            return []
        r = self.rng.random()
        if r < 0.2:
            return list(range(1, n + 1))
        k = self.rng.randint(1, min(most, n))
        return sorted(self.rng.sample(range(1, n + 1), k))

    def known_uids(self, most=5):
        uids = [e.uid for e in self.s.view if e.uid is not None]
        if not uids:
            return []
        return sorted(self.rng.sample(uids, self.rng.randint(
            1, min(most, len(uids)))))

    def pick_flags(self):
        return self.rng.sample(FLAG_CHOICES, self.rng.randint(1, 2))

    # -- operations
    def op_select(self):
        box = self.rng.choice(MAILBOXES)
        examine = self.rng.random() < 0.2
        self.before_leave()
        name = "EXAMINE" if examine else "SELECT"
        self.run("%s %s" % (name, box), Cmd(None, name,
                                            key=(self.user, box)))
        if self.s.inst and self.rng.random() < 0.9:
            self.op_fetch_all()

    def before_leave(self):
        """Learn every UID and flag before the selection ends (makes the
        \\Recent exactly-once check decidable for more messages)."""
        if self.s.inst and not self.s.inst.readonly and \
                self.rng.random() < 0.9 and self.s.view:
            self.op_fetch_all()

    def op_fetch_all(self):
        n = len(self.s.view)
        if n == 0:
            return
        self.run("FETCH 1:* (UID FLAGS)", Cmd(None, "FETCH",
                                              seqs=list(range(1, n + 1))))

    def op_fetch_new(self):
        first = next((i + 1 for i, e in enumerate(self.s.view)
                      if e.uid is None or e.flags is None), None)
        if first is None:
            return self.op_noop()
        n = len(self.s.view)
        self.run("FETCH %d:%d (UID FLAGS)" % (first, n),
                 Cmd(None, "FETCH", seqs=list(range(first, n + 1))))

    def op_fetch_body(self):
        seqs = self.pick_seqs(3)
        if not seqs:
            return self.op_noop()
        peek = self.rng.random() < 0.5
        item = "BODY.PEEK[]" if peek else "BODY[]"
        extra = self.rng.choice(["", " RFC822.SIZE", " FLAGS"])
        self.run("FETCH %s (UID %s%s)" % (seq_set_str(seqs), item, extra),
                 Cmd(None, "FETCH", seqs=seqs, sets_seen=not peek))

    def op_uid_fetch(self):
        uids = self.known_uids(4)
        if not uids:
            return self.op_fetch_new()
        item = self.rng.choice(["FLAGS", "BODY.PEEK[] RFC822.SIZE",
                                "RFC822.SIZE FLAGS"])
        self.run("UID FETCH %s (%s)" % (seq_set_str(uids), item),
                 Cmd(None, "FETCH", True, uids=uids))

    def op_store(self, uid=None):
        if self.s.inst is None or self.s.inst.readonly:
            return self.op_noop()
        op = self.rng.choice(["+", "+", "-", "="])
        flags = self.pick_flags()
        if uid is None:
            uid = self.rng.random() < 0.4
        silent = self.rng.random() < 0.3
        fl = frozenset(f.lower() for f in flags)
        item = "%sFLAGS%s (%s)" % (op if op != "=" else "",
                                   ".SILENT" if silent else "",
                                   " ".join(flags))
        if uid:
            uids = self.known_uids()
            if not uids:
                return self.op_fetch_new()
            self.run("UID STORE %s %s" % (seq_set_str(uids), item),
                     Cmd(None, "STORE", True, uids=uids, op=op, flags=fl,
                         silent=silent))
        else:
            seqs = self.pick_seqs()
            if not seqs:
                return self.op_noop()
            self.run("STORE %s %s" % (seq_set_str(seqs), item),
                     Cmd(None, "STORE", seqs=seqs, op=op, flags=fl,
                         silent=silent))

    def op_delete(self, most=3):
        """Mark some messages \\Deleted (model knows it), maybe expunge."""
        if self.s.inst is None or self.s.inst.readonly or not self.s.view:
            return self.op_noop()
        seqs = self.pick_seqs(most)
        if len(seqs) == len(self.s.view) and len(seqs) > 3:
            seqs = seqs[:3]
        self.run("STORE %s +FLAGS (\\Deleted)" % seq_set_str(seqs),
                 Cmd(None, "STORE", seqs=seqs, op="+",
                     flags=frozenset(["\\deleted"]), silent=False))
        r = self.rng.random()
        if r < 0.4:
            self.run("EXPUNGE", Cmd(None, "EXPUNGE"))
        elif r < 0.7:
            uids = [self.s.view[q - 1].uid for q in seqs
                    if q <= len(self.s.view) and
                    self.s.view[q - 1].uid is not None]
            if uids:
                self.run("UID EXPUNGE %s" % seq_set_str(uids),
                         Cmd(None, "EXPUNGE", True, uids=set(uids)))

    def op_expunge(self):
        if self.s.inst is None or self.s.inst.readonly:
            return self.op_noop()
        self.run("EXPUNGE", Cmd(None, "EXPUNGE"))

    def op_copy(self, move=False):
        if self.s.inst is None or not self.s.view or \
                (move and self.s.inst.readonly):
            return self.op_noop()
        src = self.s.inst.key[1]
        targets = [b for b in COPY_TARGETS if not move or b != src]
        dst = self.rng.choice(targets)
        uid = self.rng.random() < 0.5
        name = "MOVE" if move else "COPY"
        if uid:
            uids = self.known_uids(3)
            if not uids:
                return self.op_fetch_new()
            cmd = Cmd(None, name, True, uids=uids)
            r = self.run("UID %s %s %s" % (name, seq_set_str(uids), dst),
                         cmd)
        else:
            seqs = self.pick_seqs(3)
            if len(seqs) > 5:
                seqs = seqs[:5]
            cmd = Cmd(None, name, seqs=seqs)
            r = self.run("%s %s %s" % (name, seq_set_str(seqs), dst), cmd)
        code = cmd.copyuid if move else (r.code_args if r.code == "COPYUID"
                                         else None)
        if r.name == "OK" and code:
            self.note_copyuid(code, (self.user, dst))

    def note_copyuid(self, code, dkey):
        """COPYUID uidvalidity src dst (RFC 4315): dst UIDs are new."""
        try:
            uv, src, dst = code.split()[:3]
            src, dst = parse_uid_set(src), parse_uid_set(dst)
        except (ValueError, WireError):
            self.s.fail("bad COPYUID %r" % code)
            return
        if not self.s.check(len(src) == len(dst), "COPYUID sets differ in "
                            "size: %r" % code):
            return
        m = self.w.mbox(dkey)
        sm = self.w.mbox(self.s.inst.key)
        with self.w.lock:
            if m.uidvalidity is not None:
                self.s.check(int(uv) == m.uidvalidity, "COPYUID "
                             "UIDVALIDITY %s, mailbox has %d"
                             % (uv, m.uidvalidity))
            for su, du in zip(src, dst):
                want = sm.uid_msgid.get(su)
                have = m.uid_msgid.get(du)
                self.s.check(want is None or have in (None, want),
                             "COPYUID gives UID %d of %s, which holds %s "
                             "(copied: %s)" % (du, dkey, have, want))
                if want is not None:
                    m.uid_msgid[du] = want
                self.w.copy_links.append(((self.s.inst.key, su),
                                          (dkey, du)))
        for du in dst:
            self.w.note_uid(dkey, du)

    def op_append(self):
        box = self.rng.choice(MAILBOXES)
        msgid, data = self.new_message("a")
        flags = self.rng.choice(["", " (\\Seen)", " ($Work \\Flagged)"])
        cmd = Cmd(None, "APPEND")
        r = self.run("APPEND %s%s" % (box, flags), cmd, literal=data,
                     sync_literal=self.rng.random() < 0.3)
        if not self.s.check(r.name == "OK", "APPEND failed: %r" % r.raw):
            return
        key = (self.user, box)
        if not self.s.check(r.code == "APPENDUID", "APPEND OK without "
                            "APPENDUID (RFC 4315)"):
            return
        uv, uid = (int(x) for x in r.code_args.split()[:2])
        m = self.w.mbox(key)
        with self.w.lock:
            if m.uidvalidity is not None:
                self.s.check(uv == m.uidvalidity, "APPENDUID UIDVALIDITY "
                             "%d, mailbox has %d" % (uv, m.uidvalidity))
            old = m.uid_msgid.get(uid)
            self.s.check(old is None or old == msgid, "APPENDUID %d of %s "
                         "already belonged to %s" % (uid, key, old))
            m.uid_msgid[uid] = msgid
        self.w.note_uid(key, uid)

    def op_search(self):
        if self.s.inst is None:
            return self.op_noop()
        crit = self.rng.choice(["ALL", "UNSEEN", "FLAGGED", "DELETED",
                                "KEYWORD $Work", "NOT SEEN FLAGGED",
                                "SUBJECT conc"])
        uid = self.rng.random() < 0.4
        self.run("%sSEARCH %s" % ("UID " if uid else "", crit),
                 Cmd(None, "SEARCH", uid))

    def op_noop(self):
        self.run(self.rng.choice(["NOOP", "NOOP", "CHECK"]) if self.s.inst
                 else "NOOP", Cmd(None, "NOOP"))

    def op_status(self):
        box = self.rng.choice(MAILBOXES)
        self.run("STATUS %s (MESSAGES UIDNEXT UIDVALIDITY RECENT UNSEEN)"
                 % box, Cmd(None, "STATUS"))

    def op_idle(self):
        cmd = Cmd(None, "IDLE")
        r = self.run("IDLE", cmd)
        if r.kind != "cont":
            self.s.fail("IDLE answered %r, not a continuation" % r.raw[:80])
            return
        end = time.monotonic() + self.rng.uniform(0.1, 1.0)
        self.s.cmd = cmd
        while time.monotonic() < end and not self.stop.is_set():
            try:
                resp = self.conn.read_response(max(0.05,
                                                   end - time.monotonic()))
            except socket.timeout:
                break
            resp = parse_response(resp)
            if resp.kind == "untagged":
                self.s.on_response(resp)
            else:
                self.s.fail("%r during IDLE" % resp.raw[:80])
        self.conn.send("DONE\r\n")
        self.read_until(cmd)

    def op_close(self):
        if self.s.inst is None:
            return self.op_select()
        self.before_leave()
        name = self.rng.choice(["CLOSE", "UNSELECT"])
        self.run(name, Cmd(None, name))

    def op_relogin(self):
        self.before_leave()
        try:
            self.conn.send("%s LOGOUT\r\n" % self.tag())
        except OSError:
            pass
        self.disconnect()
        self.connect()

    def op_deliver(self):
        users = ["u1"] if self.rng.random() < 0.8 else ["u1", "u2"]
        msgid, data = self.new_message("l")
        try:
            heronlib.deliver(self.h, users, data)
            self.w.stats.ok()
            self.w.stats.count("deliveries")
        except (AssertionError, OSError, EOFError) as e:
            self.s.fail("LMTP delivery failed: %s" % e)

    def op_pop3(self):
        """POP3 on the INBOX: RETR (content check) and DELE+QUIT."""
        try:
            self._pop3()
        except (AssertionError, OSError, EOFError) as e:
            self.s.fail("POP3 session failed: %s" % e)

    def _pop3(self):
        c = heronlib.pop3_open(self.h.pop3_port)
        try:
            assert c.cmd("USER " + self.user).startswith(b"+OK")
            r = c.cmd("PASS " + USERS[self.user])
            if r.startswith(b"-ERR [IN-USE]"):
                self.w.stats.count("pop3 in-use")
                return
            assert r.startswith(b"+OK"), r
            st = c.cmd("STAT")
            assert st.startswith(b"+OK "), st
            n = int(st.split()[1])
            dele = []
            for i in self.rng.sample(range(1, n + 1), min(n, 2)):
                r = c.cmd("RETR %d" % i)
                if r.startswith(b"-ERR"):
                    # expunged by IMAP meanwhile: allowed (RFC 1939 has
                    # no rule; Heron says so)
                    self.w.stats.count("pop3 retr of removed message")
                    continue
                assert r.startswith(b"+OK"), r
                lines = c.read_multiline()
                data = b"".join((ln[1:] if ln.startswith(b".") else ln)
                                + b"\r\n" for ln in lines)
                msgid = self.pop3_check(data)
                if msgid and self.rng.random() < 0.5:
                    assert c.cmd("DELE %d" % i).startswith(b"+OK")
                    dele.append(msgid)
            r = c.cmd("QUIT")
            assert r.startswith(b"+OK"), r
            with self.w.lock:
                for msgid in dele:
                    self.w.pop3_deleted.append(((self.user, "INBOX"),
                                                msgid))
            self.w.stats.count("pop3 sessions")
            self.w.stats.count("pop3 deletes", len(dele))
        finally:
            c.close()

    def pop3_check(self, data):
        from model import MSGID_RE
        m = MSGID_RE.search(data)
        msgid = m.group(1).decode("latin-1") if m else None
        orig = self.w.originals.get(msgid)
        if self.s.check(orig is not None and content_matches(data, orig),
                        "POP3 RETR content of %s differs from the "
                        "original" % msgid):
            return msgid
        return None

    OPS_SELECTED = [
        ("op_fetch_all", 6), ("op_fetch_new", 8), ("op_fetch_body", 8),
        ("op_uid_fetch", 6), ("op_store", 12), ("op_delete", 6),
        ("op_expunge", 2), ("op_copy", 3), ("move", 3), ("op_append", 5),
        ("op_search", 6), ("op_noop", 8), ("op_idle", 4), ("op_close", 2),
        ("op_select", 3), ("op_status", 1), ("op_relogin", 1),
        ("op_deliver", 3), ("op_pop3", 1)]

    def step(self):
        if self.s.inst is None:
            r = self.rng.random()
            if r < 0.7:
                return self.op_select()
            return self.rng.choice([self.op_append, self.op_status,
                                    self.op_noop, self.op_idle,
                                    self.op_deliver])()
        if len(self.s.view) > MAX_VIEW and not self.s.inst.readonly and \
                self.rng.random() < 0.5:
            return self.op_delete(8)
        names, weights = zip(*self.OPS_SELECTED)
        name = self.rng.choices(names, weights)[0]
        if name == "move":
            return self.op_copy(move=True)
        return getattr(self, name)()

    # -- thread body
    def main(self, deadline):
        try:
            self.connect()
            while not self.stop.is_set() and time.monotonic() < deadline:
                try:
                    self.step()
                    self.ops += 1
                except (WireError, OSError, socket.timeout) as e:
                    self.s.fail("connection failed: %s: %s"
                                % (type(e).__name__, e))
                    self.disconnect()
                    if self.stop.is_set():
                        return
                    self.connect()
        except Exception as e:  # noqa: BLE001  a client bug is reported
            self.w.stats.fail(self.who, "client error %s: %s"
                              % (type(e).__name__, e))
            self.disconnect()

    def finish(self):
        """After everybody stopped: NOOP, then the full view; the model
        (built from updates) must equal it (RFC 3501 5.2)."""
        if self.s is None or self.s.inst is None:
            return
        try:
            self.run("NOOP", Cmd(None, "NOOP"))
            snap = [(e.uid, e.flags) for e in self.s.view]
            self.op_fetch_all()
            view = [(e.uid, e.flags) for e in self.s.view]
            self.s.check(len(snap) == len(view), "view changed at the end")
            for (su, sf), (u, f) in zip(snap, view):
                if su is not None:
                    self.s.check(su == u, "UID %s became %s" % (su, u))
                if sf is not None and f is not None and sf != f:
                    # RFC 3501 5.2: flag updates are a SHOULD
                    self.w.stats.should(
                        self.who, "flags of UID %s: model %s, server %s "
                        "(flag update never sent, RFC 3501 5.2 SHOULD)"
                        % (u, sorted(sf), sorted(f)))
                elif sf is not None:
                    self.w.stats.ok()
            self.final = (self.s.inst.key, self.s.inst.readonly, view)
            self.s.leave()
            self.conn.send("%s LOGOUT\r\n" % self.tag())
        except (WireError, OSError, socket.timeout) as e:
            self.s.fail("final NOOP failed: %s" % e)
        finally:
            self.disconnect()


# ---------------------------------------------------------------- run

def make_certs(d):
    cert, key = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048",
                    "-nodes", "-subj", "/CN=localhost", "-days", "2",
                    "-keyout", key, "-out", cert], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   timeout=60)
    return cert, key


def setup(h, world):
    """Creates the mailboxes; learns their UIDVALIDITY."""
    for user in USERS:
        c = Client(-1, world, h, None, random.Random(0), None, None)
        c.user, c.who = user, "setup/" + user
        c.connect()
        for box in MAILBOXES[1:]:
            c.run("CREATE " + box, Cmd(None, "CREATE"))
        c.disconnect()


def verify_final(h, world, clients):
    """All sessions of a mailbox agree; a fresh session agrees and every
    message is byte-exact."""
    st = world.stats
    finals = {}
    for c in clients:
        if c.final:
            finals.setdefault(c.final[0], []).append(c)
    truth = {}
    for user in USERS:
        f = Client(-2, world, h, None, random.Random(0), None, None)
        f.user, f.who = user, "final/" + user
        f.connect()
        for box in MAILBOXES:
            key = (user, box)
            f.run("EXAMINE " + box, Cmd(None, "EXAMINE", key=key))
            n = len(f.s.view)
            if n:
                f.run("FETCH 1:* (UID FLAGS BODY.PEEK[] RFC822.SIZE)",
                      Cmd(None, "FETCH", seqs=list(range(1, n + 1))))
            truth[key] = [(e.uid, e.flags) for e in f.s.view]
            st.count("final messages", n)
        f.disconnect()
    for key, cs in finals.items():
        want = [(u, fl - {"\\recent"}) for u, fl in truth[key]]
        for c in cs:
            got = [(u, fl - {"\\recent"}) for u, fl in c.final[2]]
            if got == want:
                st.ok()
                continue
            gu = [u for u, _ in got]
            wu = [u for u, _ in want]
            st.fail(c.who, "%s: view at the end differs from a fresh "
                    "session: UIDs %s vs %s; flags differ for %s"
                    % (key, gu[:20], wu[:20],
                       [u for (u, a), (_, b) in zip(got, want)
                        if a != b][:10]))
    return truth


def verify_global(world, truth):
    st = world.stats
    present = {k: {u for u, _ in v} for k, v in truth.items()}
    for key, uid, why in world.deferred:
        if uid in present.get(key, ()):
            st.fail("end", "%s UID %d: %s, but it still exists (RFC 2180 "
                    "allows that only for expunged messages)"
                    % (key, uid, why))
        else:
            st.ok()
    for (sk, su), (dk, du) in world.copy_links:
        a, b = world.mbox(sk).uid_sha.get(su), world.mbox(dk).uid_sha.get(du)
        if a and b:
            if a != b:
                st.fail("end", "COPY of %s UID %d to %s UID %d changed the "
                        "content" % (sk, su, dk, du))
            else:
                st.ok()
    msgids = {}
    for key, uids in present.items():
        m = world.mbox(key)
        for u in uids:
            msgids.setdefault(key, set()).add(m.uid_msgid.get(u))
    for key, msgid in world.pop3_deleted:
        if msgid in msgids.get(key, ()):
            st.fail("end", "%s: %s still there after POP3 DELE+QUIT"
                    % (key, msgid))
        else:
            st.ok()
    verify_recent(world, present)


def verify_recent(world, present):
    """\\Recent exactly once (RFC 3501 2.3.2), only where decidable: some
    read-write session had the message, every one that had it saw its
    flags, and no read-write view held messages of unknown UID there."""
    st = world.stats
    for key, m in world.mboxes.items():
        for uid, obs in m.observers.items():
            if obs - m.knowers.get(uid, set()):
                st.count("recent undecidable")
                continue
            if any(lb < uid and (ub is None or uid <= ub)
                   for lb, ub in m.blind):
                st.count("recent undecidable")
                continue
            if uid in m.recent_owner:
                st.ok()
                st.count("recent checked")
            else:
                st.fail("end", "%s UID %d: %d read-write session(s) saw "
                        "it, none with \\Recent" % (key, uid, len(obs)))


def run(cfg):
    stats = Stats()
    world = World(stats)
    tmp = tempfile.mkdtemp(prefix="heron-cc", dir="/tmp")
    certs = make_certs(tmp)
    passwd = ["%s:{PLAIN}%s" % (u, p) for u, p in USERS.items()]
    h = heronlib.Heron(certs, passwd, {
        "workers": str(cfg.workers), "max_conns_per_ip": "1000",
        "max_conns_per_user": "1000", "log_level": "info"})
    h.start()
    t0 = time.monotonic()
    stop = threading.Event()
    clients, threads = [], []
    try:
        setup(h, world)
        deadline = time.monotonic() + cfg.seconds
        for i in range(cfg.clients):
            c = Client(i, world, h, cfg, random.Random(cfg.seed * 1000 + i),
                       stop, None)
            clients.append(c)
            t = threading.Thread(target=c.main, args=(deadline,),
                                 daemon=True)
            threads.append(t)
            t.start()
        for t in threads:
            t.join(max(1.0, deadline + IO_TIMEOUT - time.monotonic()))
        stop.set()
        for t in threads:
            t.join(IO_TIMEOUT)
            if t.is_alive():
                stats.fail("run", "a client did not stop in time")
        # Everybody stopped mutating: each session NOOPs and compares.
        fin = [threading.Thread(target=c.finish, daemon=True)
               for c in clients]
        for t in fin:
            t.start()
        for t in fin:
            t.join(IO_TIMEOUT * 2)
        truth = verify_final(h, world, clients)
        verify_global(world, truth)
    finally:
        stop.set()
        try:
            h.stop()
        except AssertionError as e:
            stats.fail("daemon", str(e)[:2000])
        for line in h.log_problems()[:20]:
            stats.fail("daemon", "log: " + line)
        shutil.rmtree(tmp, ignore_errors=True)
    ops = sum(c.ops for c in clients)
    print("SHOULD-level findings: %d" % len(stats.shoulds))
    print("clients %d, workers %d, %.0f s, %d operations, %d messages at "
          "the end, seed %d" % (cfg.clients, cfg.workers,
                                time.monotonic() - t0, ops,
                                stats.counts.get("final messages", 0),
                                cfg.seed))
    for k in sorted(stats.counts):
        print("  %s: %d" % (k, stats.counts[k]))
    for who, msg in stats.shoulds[:10]:
        print("SHOULD %s: %s" % (who, msg))
    if cfg.strict:
        stats.violations += [(w, m, []) for w, m in stats.shoulds]
    for who, msg, ctx in stats.violations[:30]:
        print("VIOLATION %s: %s" % (who, msg))
        if cfg.verbose:
            for line in ctx:
                print("    | %s" % line)
    if stats.violations:
        print("daemon dir kept: %s" % h.dir)
    else:
        h.cleanup()
    return stats


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--short", action="store_true",
                    help="make test run: self-test, 12 clients, 25 s")
    ap.add_argument("--self-test", action="store_true",
                    help="only the offline self-test of the model")
    ap.add_argument("--inject", type=float, default=0,
                    help="inject a fake EXPUNGE during a FETCH after this "
                    "many seconds (the run must then fail)")
    ap.add_argument("--strict", action="store_true",
                    help="count RFC SHOULD findings as violations too")
    ap.add_argument("-v", "--verbose", action="store_true")
    a = ap.parse_args(argv)
    if a.seed is None:
        a.seed = int(time.time()) % 100000
    import selftest
    sp, sf = selftest.run()
    if a.self_test:
        print("%d passed, %d failed" % (sp, sf))
        return 1 if sf else 0
    if a.short:
        a.clients, a.seconds = min(a.clients, 12), min(a.seconds, 25)
    stats = run(Config(a))
    passed, failed = stats.checks + sp, len(stats.violations) + sf
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
