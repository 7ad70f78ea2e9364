"""crash.py: crash-consistency harness (issue 4 item 1).

Starts `heron serve` ($HERON_BIN, default build-asan/heron) on loopback with
a temporary root, drives it from several client threads (LMTP deliveries,
IMAP APPEND / UID STORE / UID EXPUNGE / UID COPY / UID MOVE / CREATE /
RENAME / DELETE, POP3 UIDL/RETR/DELE) and SIGKILLs random workers and
sometimes the master at random moments. In a fault-injection build
("heron version" says so) each server start also sets HERON_FAULT to a
random kill point (src/lib/fault.h: mid-fsync, mid-rename, mid-commit).

A journal (the model below) keeps what the server acknowledged. Between
epochs the clients stop and every mailbox is checked against it:
  - every acknowledged message present exactly once, byte-exact
  - nothing visible that is half-written (each file in new/ cur/ has the
    size its name says and is one of the messages sent, complete)
  - UIDs never reused, never changed, new ones above every UID seen at
    the previous check; UIDNEXT never decreases
  - UIDVALIDITY unchanged for mailboxes that were never deleted
  - acknowledged flags kept (unless a later, unacknowledged STORE may
    have changed them: then either value)
  - POP3 UIDLs unchanged for surviving messages
An unacknowledged operation (connection cut by a kill) may have happened
or not; the check accepts both outcomes and then adopts what it saw.
Fault builds first replay, at single kill points, the bugs this harness
found (regressions()): a COPY killed after linking lost keywords; a
DELETE/CREATE killed midway left a folder that listed but could be
neither selected, deleted nor created.

Usage: run [--short] [--kills N] [--seconds S] [--seed N] [--keep] [-v]
Every loop is bounded in count and time; sockets have timeouts. The last
line is "N passed, M failed": N whole checks (one after each epoch of
kills, plus the fault-build regressions) found nothing, M violations.
Exit status 1 when M > 0.
"""

import argparse
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests", "proto"))

import heronlib  # noqa: E402
from heronlib import LineClient, LmtpRaw, PASSWORDS  # noqa: E402

OP_TIMEOUT = 8.0          # one client operation
USERS = ("alice", "bob")  # alice: IMAP moves INBOX mail; bob: POP3 DELE
FLAG_CHOICES = ["\\Seen", "\\Flagged", "\\Answered", "\\Draft", "Kw1"]

# HERON_FAULT kill points used in fault-injection builds (one per start).
FAULT_SPECS = [
    "delivery-fsync=kill%15", "delivery-link=kill%15",
    "delivery-dir-fsync=kill%15", "delivery-index=kill%15",
    "uidlist-append=kill%10", "uidlist-rename=kill%30",
    "index-commit=kill%4", "index-committed=kill%4",
    "flag-rename=kill%10", "expunge-unlink=kill%10",
    "expunge-dir-fsync=kill%15", "copy-link=kill%10",
    "copy-dir-fsync=kill%15", "mailbox-rename=kill%20",
    "mailbox-delete=kill%20", "mailbox-create=kill%20",
    "mailbox-create-rename=kill%20",
]

MID_RE = re.compile(rb"(?im)^Message-ID:\s*<([^>]+)>")


def log(*a):
    print(*a, flush=True)


# ---------------------------------------------------------------- model

class Msg:
    """One message instance in one mailbox (keyed there by Message-ID)."""

    def __init__(self, mid, maybe, uid=None, flags=None):
        self.mid = mid
        self.maybe = maybe          # unacknowledged: present or absent
        self.uid = uid              # known UID or None
        self.flags = flags          # set of frozensets allowed, None = any


class Box:
    """A mailbox identity (moves with RENAME)."""

    def __init__(self, name, maybe=False):
        self.name = name
        self.maybe = maybe          # unacknowledged CREATE/DELETE/RENAME
        self.alt_names = set()      # other names it may have (RENAME)
        self.uidvalidity = None
        self.msgs = {}              # mid -> Msg
        self.gone = set()           # mids acknowledged removed
        self.uid_mid = {}           # every (uid -> mid) ever seen
        self.max_uid_checked = 0    # highest UID seen at the last check
        self.uidnext = 0
        self.busy = False           # an IMAP thread works on it


class Model:
    def __init__(self):
        self.lock = threading.Lock()
        self.bodies = {}            # mid -> original bytes (CRLF)
        self.lmtp_mids = set()      # delivered by LMTP (trace headers)
        self.boxes = {u: {"INBOX": Box("INBOX")} for u in USERS}
        self.dead_boxes = {u: [] for u in USERS}
        self.uidl = {}              # (user, mid) -> UIDL
        self.uidl_mid = {}          # (user, UIDL) -> mid
        self.seq = 0
        self.verified = set()       # (user, name, uidvalidity, uid)
        self.history = {}           # mid -> [event text] (for reports)
        self.epoch = 0

    def note(self, mid, text):
        """Records an event of mid (model lock held)."""
        self.history.setdefault(mid, []).append("e%d %s"
                                                % (self.epoch, text))

    def new_mid(self, tag):
        with self.lock:
            self.seq += 1
            return "%s.%d.%d@crash.test" % (tag, os.getpid(), self.seq)


def make_body(rng, mid):
    size = rng.choice([200, 1000, 4000, 20000, 60000]) * rng.random() + 100
    lines = [b"From: crash <crash@example.org>", b"To: rcpt@example.org",
             b"Subject: crash " + mid.encode(),
             b"Message-ID: <" + mid.encode() + b">", b""]
    total = 0
    i = 0
    while total < size:
        if i % 17 == 5:
            s = b"." + b"dot line %d" % i       # dot-stuffing in LMTP
        else:
            s = (b"%06d " % i) + bytes(rng.choice(b"abcdefghij ")
                                       for _ in range(rng.randint(0, 70)))
        lines.append(s)
        total += len(s) + 2
        i += 1
    return b"\r\n".join(lines) + b"\r\n"


# ---------------------------------------------------------------- IMAP

class ImapError(Exception):
    pass


class Imap:
    """A small IMAP client: literals in responses are returned inline."""

    def __init__(self, port, user):
        self.c = LineClient.connect(port)
        self.tag = 0
        g = self.c.readline(OP_TIMEOUT)
        if not g.startswith(b"* OK"):
            raise ImapError("greeting %r" % g)
        st, _ = self.cmd('LOGIN %s "%s"' % (user, PASSWORDS[user]))
        if st[0] != "OK":
            raise ImapError("LOGIN %r" % (st,))

    def read_response(self):
        """One response line with its literals: (bytes_text, [literals])."""
        text, lits = b"", []
        while True:
            line = self.c.readline(OP_TIMEOUT, limit=1 << 24)
            m = re.search(rb"\{(\d+)\+?\}$", line)
            if not m:
                return text + line, lits
            n = int(m.group(1))
            deadline = time.monotonic() + OP_TIMEOUT
            while len(self.c.buf) < n:
                if time.monotonic() > deadline:
                    raise TimeoutError("literal")
                self.c._fill(OP_TIMEOUT)
            lits.append(self.c.buf[:n])
            self.c.buf = self.c.buf[n:]
            text += line + b"\x00"

    def cmd(self, line, literal=None):
        """Runs a command; returns ((status, text), [untagged])."""
        self.tag += 1
        t = "C%d" % self.tag
        if literal is None:
            self.c.send("%s %s\r\n" % (t, line))
        else:
            self.c.send("%s %s {%d}\r\n" % (t, line, len(literal)))
            r = self.c.readline(OP_TIMEOUT)
            if not r.startswith(b"+"):
                return (r.split(b" ", 2)[1].decode(), r.decode()), []
            self.c.send(literal + b"\r\n")
        untagged = []
        while True:
            text, lits = self.read_response()
            if text.startswith(t.encode() + b" "):
                parts = text.decode("utf-8", "replace").split(" ", 2)
                return (parts[1], parts[2] if len(parts) > 2 else ""), \
                    untagged
            untagged.append((text, lits))

    def close(self):
        try:
            self.c.send(b"X LOGOUT\r\n")
        except OSError:
            pass
        self.c.close()


def parse_flags(text):
    m = re.search(rb"FLAGS \(([^)]*)\)", text)
    if not m:
        return None
    return frozenset(f.decode() for f in m.group(1).split()
                     if f != b"\\Recent")


def quote(name):
    return '"%s"' % name


# ---------------------------------------------------------------- clients

class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.c = {}

    def inc(self, k, n=1):
        with self.lock:
            self.c[k] = self.c.get(k, 0) + n


class Client(threading.Thread):
    def __init__(self, h, model, stats, stop, seed, deadline):
        super().__init__(daemon=True)
        self.h, self.model, self.stats, self.stop = h, model, stats, stop
        self.rng = random.Random(seed)
        self.deadline = deadline
        self.errors = []
        self.cur = None             # LineClient in use (abort_io)

    def abort_io(self):
        """Cuts the connection in use so a blocked op ends now."""
        c = self.cur
        if c is not None:
            try:
                c.sock.shutdown(2)
            except OSError:
                pass

    def run(self):
        n = 0
        while not self.stop.is_set() and time.monotonic() < self.deadline \
                and n < 500:
            n += 1
            try:
                self.step()
            except (OSError, EOFError, TimeoutError, ImapError,
                    AssertionError, IndexError, ValueError) as e:
                self.stats.inc("op_cut")
                self.on_cut(e)
                time.sleep(0.05)
            except Exception as e:      # a harness bug: report it
                self.errors.append("harness error in %s: %r"
                                   % (type(self).__name__, e))
                self.on_cut(e)
        self.finish()

    def on_cut(self, e):
        pass

    def finish(self):
        pass


class LmtpClient(Client):
    def step(self):
        m = self.model
        rcpts = [u for u in USERS if self.rng.random() < 0.7] or ["alice"]
        mid = m.new_mid("lmtp")
        body = make_body(self.rng, mid)
        with m.lock:
            m.bodies[mid] = body
            m.lmtp_mids.add(mid)
            for u in rcpts:
                m.boxes[u]["INBOX"].msgs[mid] = Msg(mid, True,
                                                    flags=None)
        lm = LmtpRaw.tcp(self.h.lmtp_port)
        self.cur = lm.c
        try:
            lm.greet_lhlo()
            assert lm.cmd("MAIL FROM:<s@example.org>")[0] == 250
            for u in rcpts:
                assert lm.cmd("RCPT TO:<%s>" % u)[0] == 250
            assert lm.cmd("DATA")[0] == 354
            lm.send_data(body)
            for u in rcpts:
                code, _ = lm.reply(OP_TIMEOUT)
                with m.lock:
                    # (POP3 may have fetched and deleted it already.)
                    msg = m.boxes[u]["INBOX"].msgs.get(mid)
                    m.note(mid, "%s/INBOX LMTP -> %d" % (u, code))
                    if code == 250:
                        if msg is not None:
                            msg.maybe = False
                        self.stats.inc("ack_lmtp")
                    elif 400 <= code < 600 and msg is not None:
                        # Refused: must not be there.
                        del m.boxes[u]["INBOX"].msgs[mid]
                        m.boxes[u]["INBOX"].gone.add(mid)
            lm.cmd("QUIT")
        finally:
            lm.close()


class Pop3Client(Client):
    """bob's INBOX: UIDL recorded (checked later), RETR, some DELE."""

    def step(self):
        m = self.model
        c = heronlib.pop3_open(self.h.pop3_port)
        self.cur = c
        try:
            heronlib.pop3_login(c, "bob")
            r = c.cmd("UIDL")
            if not r.startswith(b"+OK"):
                return
            lines = c.read_multiline(OP_TIMEOUT)
            if not lines:
                return
            n, uidl = lines[self.rng.randrange(len(lines))].split(b" ", 1)
            r = c.cmd(b"RETR " + n)
            if not r.startswith(b"+OK"):
                return
            msg = b"\r\n".join(c.read_multiline(OP_TIMEOUT))
            mo = MID_RE.search(msg)
            if mo is None:
                return
            mid = mo.group(1).decode()
            key = ("bob", uidl.decode())
            with m.lock:
                old = m.uidl_mid.get(key)
                if old is not None and old != mid:
                    self.errors.append("POP3 UIDL %s was %s, now %s"
                                       % (key[1], old, mid))
                m.uidl_mid[key] = mid
                m.uidl[("bob", mid)] = key[1]
                inbox = m.boxes["bob"]["INBOX"]
                msg_st = inbox.msgs.get(mid)
            if msg_st is None or msg_st.maybe or self.rng.random() < 0.6:
                c.cmd("QUIT")
                return
            with m.lock:
                msg_st.maybe = True             # DELE + QUIT pending
            if not c.cmd(b"DELE " + n).startswith(b"+OK"):
                return
            if c.cmd("QUIT").startswith(b"+OK"):
                with m.lock:
                    inbox.msgs.pop(mid, None)
                    inbox.gone.add(mid)
                self.stats.inc("ack_pop3_dele")
        finally:
            c.close()


class ImapClient(Client):
    """Owns folders "F<n>..." of its user; alice's thread 0 also moves
    messages out of INBOX."""

    def __init__(self, idx, user, *a):
        super().__init__(*a)
        self.idx, self.user = idx, user
        self.imap = None
        self.nfolder = 0

    def on_cut(self, e):
        if self.imap:
            self.imap.c.close()
        self.imap = None

    def finish(self):
        if self.imap:
            try:
                self.imap.close()
            except Exception:
                pass

    def conn(self):
        if self.imap is None:
            self.imap = Imap(self.h.imap_port, self.user)
            self.cur = self.imap.c
        return self.imap

    def my_boxes(self, certain=True):
        boxes = self.model.boxes[self.user]
        return [b for n, b in boxes.items()
                if n.startswith("F%d" % self.idx) and
                (not certain or (not b.maybe and not b.alt_names))]

    def step(self):
        r = self.rng.random()
        boxes = self.my_boxes()
        if len(boxes) < 2 or r < 0.05:
            return self.op_create()
        if r < 0.40:
            return self.op_append(self.rng.choice(boxes))
        if r < 0.55:
            return self.op_store(self.rng.choice(boxes))
        if r < 0.65:
            return self.op_expunge(self.rng.choice(boxes))
        if r < 0.85:
            src = self.rng.choice(boxes)
            if self.idx == 0 and self.user == "alice" and \
                    self.rng.random() < 0.4:
                src = self.model.boxes["alice"]["INBOX"]
            dst = self.rng.choice([b for b in boxes if b is not src])
            return self.op_copy(src, dst, self.rng.random() < 0.5)
        if r < 0.93:
            return self.op_rename(self.rng.choice(boxes))
        if len(boxes) > 2:
            return self.op_delete(self.rng.choice(boxes))

    def known_msgs(self, box):
        return [x for x in box.msgs.values()
                if not x.maybe and x.uid is not None]

    def op_create(self):
        m = self.model
        self.nfolder += 1
        name = "F%dn%d" % (self.idx, self.nfolder)
        box = Box(name, maybe=True)
        with m.lock:
            if name in m.boxes[self.user]:
                return
            m.boxes[self.user][name] = box
        st, _ = self.conn().cmd("CREATE " + quote(name))
        with m.lock:
            if st[0] == "OK":
                box.maybe = False
                self.stats.inc("ack_create")
            else:
                del m.boxes[self.user][name]

    def op_append(self, box):
        m = self.model
        mid = m.new_mid("app")
        body = make_body(self.rng, mid)
        flags = frozenset(f for f in FLAG_CHOICES
                          if self.rng.random() < 0.3)
        with m.lock:
            m.bodies[mid] = body
            msg = Msg(mid, True, flags={flags})
            box.msgs[mid] = msg
        st, _ = self.conn().cmd("APPEND %s (%s)" % (quote(box.name),
                                                   " ".join(flags)),
                                literal=body)
        with m.lock:
            m.note(mid, "%s/%s APPEND (%s) -> %s" % (
                self.user, box.name, " ".join(sorted(flags)), st[1][:40]))
            if st[0] == "OK":
                mo = re.search(r"\[APPENDUID (\d+) (\d+)\]", st[1])
                msg.maybe = False
                if mo:
                    self.note_uid(box, int(mo.group(1)),
                                  int(mo.group(2)), mid)
                self.stats.inc("ack_append")
            else:
                del box.msgs[mid]
                box.gone.add(mid)

    def note_uid(self, box, uidvalidity, uid, mid):
        """An acknowledged UID (APPENDUID/COPYUID); model lock held."""
        if box.uidvalidity is not None and box.uidvalidity != uidvalidity:
            self.errors.append("%s/%s: UIDVALIDITY %d in a response, "
                               "known %d" % (self.user, box.name,
                                             uidvalidity, box.uidvalidity))
        box.uidvalidity = uidvalidity
        old = box.uid_mid.get(uid)
        if old is not None and old != mid:
            self.errors.append("%s/%s: UID %d given to %s, was %s"
                               % (self.user, box.name, uid, mid, old))
        if uid <= box.max_uid_checked:
            self.errors.append("%s/%s: new UID %d not above %d seen before"
                               % (self.user, box.name, uid,
                                  box.max_uid_checked))
        box.uid_mid[uid] = mid
        box.msgs[mid].uid = uid

    def select(self, box):
        st, _ = self.conn().cmd("SELECT " + quote(box.name))
        if st[0] != "OK":
            raise ImapError("SELECT %s: %s" % (box.name, st))

    def op_store(self, box):
        m = self.model
        msgs = self.known_msgs(box)
        if not msgs or box.name == "INBOX":
            return
        msg = self.rng.choice(msgs)
        new = frozenset(f for f in FLAG_CHOICES if self.rng.random() < 0.4)
        self.select(box)
        with m.lock:
            old = msg.flags
            msg.flags = None if old is None else old | {new}
        st, _ = self.conn().cmd("UID STORE %d FLAGS.SILENT (%s)"
                                % (msg.uid, " ".join(new)))
        with m.lock:
            m.note(msg.mid, "%s/%s UID STORE %d FLAGS (%s) -> %s" % (
                self.user, box.name, msg.uid, " ".join(sorted(new)),
                " ".join(st)[:40]))
            if st[0] == "OK":
                msg.flags = {new}
                self.stats.inc("ack_store")

    def op_expunge(self, box):
        m = self.model
        msgs = self.known_msgs(box)
        if not msgs or box.name == "INBOX":
            return
        msg = self.rng.choice(msgs)
        self.select(box)
        with m.lock:
            msg.maybe = True
            msg.flags = None
        st, _ = self.conn().cmd("UID STORE %d +FLAGS.SILENT (\\Deleted)"
                                % msg.uid)
        if st[0] != "OK":
            return
        st, _ = self.conn().cmd("UID EXPUNGE %d" % msg.uid)
        if st[0] == "OK":
            with m.lock:
                box.msgs.pop(msg.mid, None)
                box.gone.add(msg.mid)
                self.stats.inc("ack_expunge")

    def op_copy(self, src, dst, move):
        m = self.model
        msgs = [x for x in self.known_msgs(src) if x.mid not in dst.msgs]
        if not msgs:
            return
        msg = self.rng.choice(msgs)
        self.select(src)
        with m.lock:
            dmsg = Msg(msg.mid, True,
                       flags=None if msg.flags is None else set(msg.flags))
            dst.msgs[msg.mid] = dmsg
            dst.gone.discard(msg.mid)
            if move:
                msg.maybe = True
        st, _ = self.conn().cmd("UID %s %d %s" % ("MOVE" if move else
                                                  "COPY", msg.uid,
                                                  quote(dst.name)))
        with m.lock:
            m.note(msg.mid, "%s/%s UID %s %d %s -> %s" % (
                self.user, src.name, "MOVE" if move else "COPY", msg.uid,
                dst.name, " ".join(st)[:60]))
            if st[0] != "OK":
                return      # unknown: stays maybe
            mo = re.search(r"\[COPYUID (\d+) (\d+) (\d+)\]", st[1])
            dmsg.maybe = False
            if mo:
                self.note_uid(dst, int(mo.group(1)), int(mo.group(3)),
                              msg.mid)
            if move:
                src.msgs.pop(msg.mid, None)
                src.gone.add(msg.mid)
            self.stats.inc("ack_move" if move else "ack_copy")

    def op_rename(self, box):
        m = self.model
        self.nfolder += 1
        new = "F%dr%d" % (self.idx, self.nfolder)
        boxes = m.boxes[self.user]
        if self.imap:
            self.imap.cmd("UNSELECT")
        with m.lock:
            if new in boxes:
                return
            old = box.name
            box.alt_names.add(new)
        st, _ = self.conn().cmd("RENAME %s %s" % (quote(old), quote(new)))
        with m.lock:
            if st[0] == "OK":
                del boxes[old]
                box.name = new
                box.alt_names.clear()
                boxes[new] = box
                self.stats.inc("ack_rename")
            # else: either name, resolved by the next check

    def op_delete(self, box):
        m = self.model
        if self.imap:
            self.imap.cmd("UNSELECT")
        with m.lock:
            box.maybe = True
        st, _ = self.conn().cmd("DELETE " + quote(box.name))
        with m.lock:
            if st[0] == "OK":
                del m.boxes[self.user][box.name]
                m.dead_boxes[self.user].append(box)
                self.stats.inc("ack_delete")


# ---------------------------------------------------------------- checker

class Checker:
    def __init__(self, h, model, stats, verbose):
        self.h, self.m, self.stats, self.verbose = h, model, stats, verbose
        self.violations = []
        self.passed = 0
        self.messages_checked = 0

    def ok(self, cond, what):
        if cond:
            self.passed += 1
        else:
            self.violations.append(what)
            log("VIOLATION: " + what)
        return cond

    def run(self):
        for user in USERS:
            err = None
            for attempt in range(20):
                try:
                    self.check_user(user)
                    break
                except (OSError, EOFError, TimeoutError, ImapError) as e:
                    # A fault kill point may end the worker under us.
                    err = e
                    if self.verbose:
                        log("check %s retry: %r" % (user, e))
                    time.sleep(0.2)
            else:
                self.ok(False, "%s: mailboxes could not be checked: %r"
                        % (user, err))
        for attempt in range(20):
            try:
                self.check_pop3("bob")
                break
            except (OSError, EOFError, TimeoutError, AssertionError) as e:
                if self.verbose:
                    log("pop3 check retry: %r" % (e,))
                time.sleep(0.2)
        self.check_disk()

    def list_names(self, imap):
        st, unt = imap.cmd('LIST "" "*"')
        if st[0] != "OK":
            raise ImapError("LIST %s" % (st,))
        names = set()
        for text, _ in unt:
            mo = re.match(rb'\* LIST \(([^)]*)\) (?:"."|NIL) "?([^"]*)"?$',
                          text)
            if mo and b"\\Noselect" not in mo.group(1) and \
                    b"\\NonExistent" not in mo.group(1):
                names.add(mo.group(2).decode())
        return names

    def resolve_boxes(self, user, names):
        """Matches model mailboxes with the listed names; returns the
        boxes to check."""
        boxes = self.m.boxes[user]
        out = {}
        for key, box in list(boxes.items()):
            cands = {box.name} | box.alt_names
            here = cands & names
            if len(here) > 1:
                self.ok(False, "%s: mailbox under two names %s"
                        % (user, sorted(here)))
            if not here:
                self.ok(box.maybe or box.msgs == {} and box.maybe,
                        "%s: mailbox %s lost" % (user, box.name))
                del boxes[key]
                continue
            name = sorted(here)[0]
            if name != key:
                del boxes[key]
            box.name, box.alt_names, box.maybe = name, set(), False
            boxes[name] = box
            out[name] = box
        for n in names - set(out):
            if not re.match(r"F\d", n):
                continue        # imap_default_folders (Sent, Trash...)
            dead = [b for b in self.m.dead_boxes[user] if b.name == n]
            self.ok(False, "%s: unexpected mailbox %s%s" % (
                user, n, " (deleted before)" if dead else ""))
        return out

    def check_user(self, user):
        imap = Imap(self.h.imap_port, user)
        try:
            names = self.list_names(imap)
            with self.m.lock:
                boxes = self.resolve_boxes(user, names)
            for name in sorted(boxes):
                self.check_box(imap, user, boxes[name])
        finally:
            imap.close()

    def fetch_list(self, imap, box):
        st, unt = imap.cmd("EXAMINE " + quote(box.name))
        if st[0] != "OK":
            raise ImapError("EXAMINE %s: %s" % (box.name, st))
        uv = un = None
        for text, _ in unt:
            mo = re.search(rb"\[UIDVALIDITY (\d+)\]", text)
            if mo:
                uv = int(mo.group(1))
            mo = re.search(rb"\[UIDNEXT (\d+)\]", text)
            if mo:
                un = int(mo.group(1))
        st, unt = imap.cmd("UID FETCH 1:* (UID FLAGS "
                           "BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])")
        if st[0] != "OK":
            raise ImapError("FETCH %s: %s" % (box.name, st))
        seen = []
        for text, lits in unt:
            mo = re.search(rb"UID (\d+)", text)
            if not mo or b" FETCH " not in text:
                continue
            mid = None
            for lit in lits:
                mm = MID_RE.search(lit)
                if mm:
                    mid = mm.group(1).decode()
            seen.append((int(mo.group(1)), mid, parse_flags(text)))
        return uv, un, seen

    def check_box(self, imap, user, box):
        uv, un, seen = self.fetch_list(imap, box)
        where = "%s/%s" % (user, box.name)
        with self.m.lock:
            if box.uidvalidity is not None:
                self.ok(uv == box.uidvalidity, "%s: UIDVALIDITY %s, was %s"
                        % (where, uv, box.uidvalidity))
            self.ok(un is not None and un >= box.uidnext,
                    "%s: UIDNEXT %s below %s" % (where, un, box.uidnext))
            counts = {}
            for uid, mid, flags in seen:
                counts[mid] = counts.get(mid, 0) + 1
            for uid, mid, flags in seen:
                self.check_msg(where, box, uid, mid, flags, counts)
            seen_mids = {mid for _, mid, _ in seen}
            for mid, msg in list(box.msgs.items()):
                if mid in seen_mids:
                    continue
                self.ok(msg.maybe, "%s: acknowledged message %s (uid %s) "
                        "lost" % (where, mid, msg.uid))
                del box.msgs[mid]
                box.gone.add(mid)
            if seen:
                box.max_uid_checked = max(box.max_uid_checked,
                                          max(u for u, _, _ in seen))
            box.uidvalidity = uv if box.uidvalidity is None else \
                box.uidvalidity
            box.uidnext = max(box.uidnext, un or 0)
            todo = [uid for uid, mid, _ in seen
                    if (user, box.name, uv, uid) not in self.m.verified and
                    mid in self.m.bodies]
        self.check_bodies(imap, user, box, uv, todo)

    def check_msg(self, where, box, uid, mid, flags, counts):
        if not self.ok(mid is not None and mid in self.m.bodies,
                       "%s: UID %d has unknown Message-ID %s"
                       % (where, uid, mid)):
            return
        self.messages_checked += 1
        self.ok(counts[mid] == 1, "%s: %s present %d times"
                % (where, mid, counts[mid]))
        msg = box.msgs.get(mid)
        if not self.ok(msg is not None, "%s: %s (UID %d) present but %s"
                       % (where, mid, uid, "removed (acknowledged)"
                          if mid in box.gone else "never put here")):
            return
        old = box.uid_mid.get(uid)
        self.ok(old is None or old == mid, "%s: UID %d reused: was %s, now "
                "%s" % (where, uid, old, mid))
        if msg.uid is not None:
            self.ok(msg.uid == uid, "%s: %s changed UID %d -> %d"
                    % (where, mid, msg.uid, uid))
        elif old is None:
            self.ok(uid > box.max_uid_checked, "%s: new UID %d not above "
                    "%d seen at the previous check" % (where, uid,
                                                       box.max_uid_checked))
        if msg.flags is not None:
            if not self.ok(flags in msg.flags, "%s: %s flags %s, expected "
                           "one of %s" % (where, mid, sorted(flags or ()),
                                          [sorted(f) for f in msg.flags])):
                log("  history: " + "\n  history: ".join(
                    self.m.history.get(mid, [])))
        self.m.note(mid, "%s check: UID %d flags %s" % (
            where, uid, " ".join(sorted(flags or ()))))
        box.uid_mid[uid] = mid
        msg.uid, msg.maybe = uid, False
        if msg.flags is not None:
            msg.flags = {flags}

    def check_bodies(self, imap, user, box, uv, uids):
        for i in range(0, len(uids), 20):
            chunk = uids[i:i + 20]
            st, unt = imap.cmd("UID FETCH %s (UID BODY.PEEK[])"
                               % ",".join(map(str, chunk)))
            if st[0] != "OK":
                raise ImapError("FETCH body: %s" % (st,))
            for text, lits in unt:
                mo = re.search(rb"UID (\d+)", text)
                if not mo or not lits:
                    continue
                uid = int(mo.group(1))
                self.check_content("%s/%s UID %d" % (user, box.name, uid),
                                   lits[0])
                self.m.verified.add((user, box.name, uv, uid))

    def check_content(self, where, data):
        mm = MID_RE.search(data)
        mid = mm.group(1).decode() if mm else None
        orig = self.m.bodies.get(mid)
        if orig is None:
            return self.ok(False, "%s: unknown content" % where)
        if mid in self.m.lmtp_mids:
            try:
                heronlib.split_trace(heronlib.lf(data), heronlib.lf(orig))
                good = True
            except AssertionError:
                good = False
        else:
            good = data == orig
        self.ok(good, "%s: content of %s differs (%d bytes, sent %d)"
                % (where, mid, len(data), len(orig)))

    def check_pop3(self, user):
        c = heronlib.pop3_open(self.h.pop3_port)
        try:
            heronlib.pop3_login(c, user)
            assert c.cmd("UIDL").startswith(b"+OK")
            lines = c.read_multiline(OP_TIMEOUT)
            known = [ln for ln in lines
                     if (user, ln.split(b" ", 1)[1].decode())
                     in self.m.uidl_mid]
            new = [ln for ln in lines if ln not in known]
            sample = new[:100] + random.sample(known, min(50, len(known)))
            for ln in sample:
                n, uidl = ln.split(b" ", 1)
                assert c.cmd(b"TOP " + n + b" 0").startswith(b"+OK")
                mm = MID_RE.search(b"\r\n".join(c.read_multiline()))
                mid = mm.group(1).decode() if mm else None
                key = (user, uidl.decode())
                with self.m.lock:
                    old = self.m.uidl_mid.get(key)
                    self.ok(old is None or old == mid, "POP3 %s: UIDL %s "
                            "was %s, now %s" % (user, key[1], old, mid))
                    prev = self.m.uidl.get((user, mid))
                    self.ok(prev is None or prev == key[1], "POP3 %s: %s "
                            "UIDL %s, was %s" % (user, mid, key[1], prev))
                    self.m.uidl_mid[key] = mid
                    self.m.uidl[(user, mid)] = key[1]
            c.cmd("QUIT")
        finally:
            c.close()

    def check_disk(self):
        """Every file in new/ and cur/ is complete: its size is the S= of
        its name and it is a message that was sent, whole."""
        for user in USERS:
            md = self.h.maildir(user)
            for dirpath, dirnames, files in os.walk(md):
                if os.path.basename(dirpath) not in ("new", "cur"):
                    continue
                for f in files:
                    p = os.path.join(dirpath, f)
                    try:
                        data = heronlib.read_file(p)
                    except OSError:
                        continue
                    mo = re.search(r",S=(\d+)", f)
                    self.ok(mo is not None and int(mo.group(1)) == len(data),
                            "file %s has %d bytes" % (p, len(data)))
                    mm = MID_RE.search(data)
                    mid = mm.group(1).decode() if mm else None
                    orig = self.m.bodies.get(mid)
                    self.ok(orig is not None and
                            data.endswith(heronlib.lf(orig)),
                            "file %s is not a whole message sent" % p)


# ---------------------------------------------------------------- driver

class Server:
    def __init__(self, args, stats):
        self.args, self.stats = args, stats
        d = tempfile.mkdtemp(prefix="hcrash-certs-")
        self.certs = (os.path.join(d, "cert.pem"), os.path.join(d, "key.pem"))
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048",
                        "-nodes", "-subj", "/CN=localhost", "-days", "2",
                        "-keyout", self.certs[1], "-out", self.certs[0]],
                       check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, timeout=60)
        self.certdir = d
        lines = ["%s:{PLAIN}%s" % (u, PASSWORDS[u]) for u in USERS]
        self.h = heronlib.Heron(self.certs, lines,
                                {"workers": "2", "log_level": "warn"})
        self.relocate()
        out = subprocess.run([self.h.bin, "version"], stdout=subprocess.PIPE,
                             timeout=10).stdout.decode()
        self.fault_build = "fault-injection" in out
        self.fault = None

    def relocate(self):
        """Moves the daemon's directory to our own prefix, so that a
        cleanup of other tests' /tmp/heron-t* never hits a running
        harness (it happened)."""
        h = self.h
        old = h.dir
        h.dir = tempfile.mkdtemp(prefix="hcrash-", dir="/tmp")
        for attr in ("lmtp_sock", "conf", "passwd", "log_path",
                     "mail_root", "state_dir"):
            setattr(h, attr, getattr(h, attr).replace(old, h.dir, 1))
        for k in ("mail_path", "passwd_file", "state_dir"):
            h.settings[k] = h.settings[k].replace(old, h.dir, 1)
        h.write_passwd()
        h.write_config()
        import shutil
        shutil.rmtree(old, ignore_errors=True)

    def start(self, rng):
        env_before = os.environ.get("HERON_FAULT")
        self.fault = None
        if self.fault_build and not self.args.no_faults and \
                rng.random() < 0.7:
            self.fault = rng.choice(FAULT_SPECS)
            os.environ["HERON_FAULT"] = self.fault
        os.environ.setdefault("ASAN_OPTIONS", "detect_leaks=0")
        try:
            self.h.start()
        finally:
            if env_before is None:
                os.environ.pop("HERON_FAULT", None)
            else:
                os.environ["HERON_FAULT"] = env_before

    def kill_master(self, violations):
        kids = self.h.children()
        os.kill(self.h.proc.pid, signal.SIGKILL)
        self.h.proc.wait(10)
        self.h.proc = None
        self.h.logf.close()
        # Children must follow (PR_SET_PDEATHSIG in master.c).
        deadline = time.monotonic() + 10
        while any(heronlib.proc_alive(k) for k in kids) and \
                time.monotonic() < deadline:
            time.sleep(0.05)
        left = [k for k in kids if heronlib.proc_alive(k)]
        if left:
            violations.append("children %s alive 10s after the master "
                              "was killed" % left)
            for k in left:
                try:
                    os.kill(k, signal.SIGKILL)
                except OSError:
                    pass

    def kill_child(self, rng):
        kids = self.h.children()
        if not kids:
            return False
        try:
            os.kill(rng.choice(kids), signal.SIGKILL)
        except OSError:
            return False
        return True


def regressions(srv, checker):
    """Deterministic crashes at single kill points (fault builds only),
    for bugs the random run found: each must leave a usable store."""
    h = srv.h

    def fresh(spec):
        os.environ["HERON_FAULT"] = spec
        try:
            h.start()
        finally:
            os.environ.pop("HERON_FAULT", None)
        return Imap(h.imap_port, "alice")

    def cut(imap, line, literal=None):
        try:
            return imap.cmd(line, literal)[0]
        except (OSError, EOFError, TimeoutError):
            return None

    def restart(spec=""):
        srv.kill_master(checker.violations)
        return fresh(spec)

    # 1. COPY killed after the link: the copy keeps its keyword.
    c = fresh("copy-dir-fsync=kill")
    c.cmd("CREATE RgA")
    c.cmd("CREATE RgB")
    c.cmd("APPEND RgA (Kw1 \\Seen)",
          literal=b"Message-ID: <rg1@crash.test>\r\n\r\nx\r\n")
    c.cmd("SELECT RgA")
    checker.ok(cut(c, "UID COPY 1 RgB") is None, "regression 1: no kill")
    c = restart()
    c.cmd("EXAMINE RgB")
    _, unt = c.cmd("UID FETCH 1:* (FLAGS)")
    flags = [parse_flags(t) for t, _ in unt if b"FETCH" in t]
    checker.ok(flags in ([], [frozenset({"\\Seen", "Kw1"})]),
               "regression 1: copy cut after link has flags %s" % flags)
    # 2. DELETE / CREATE killed midway: the name stays usable.
    for spec, line in (("mailbox-delete=kill", "DELETE RgA"),
                       ("mailbox-create=kill", "CREATE RgC")):
        c = restart(spec)
        checker.ok(cut(c, line) is None, "regression 2: no kill")
        c = restart()
        name = line.split()[1]
        st, _ = c.cmd("EXAMINE " + name)
        if st[0] != "OK":
            st, _ = c.cmd("CREATE " + name)
        checker.ok(st[0] == "OK", "regression 2: %s after a crash in %s: "
                   "%s" % (name, line.split()[0], st))
        c.cmd("LOGOUT")
    srv.kill_master(checker.violations)


def run(args):
    seed = args.seed if args.seed is not None else int(time.time())
    rng = random.Random(seed)
    stats = Stats()
    model = Model()
    srv = Server(args, stats)
    h = srv.h
    t0 = time.monotonic()
    end = t0 + args.seconds
    violations = []
    kills = {"worker": 0, "master": 0}
    restarts = 0
    checker = Checker(h, model, stats, args.verbose)
    log("crash: binary %s%s, seed %d, root %s" % (
        h.bin, " (fault-injection)" if srv.fault_build else "", seed, h.dir))
    checks_passed = 0
    epoch = 0
    try:
        if srv.fault_build and not args.no_faults:
            try:
                regressions(srv, checker)
            except Exception as e:
                checker.ok(False, "regressions: %r" % (e,))
                if h.proc is not None:
                    srv.kill_master(violations)
            checks_passed += 3 if not checker.violations else 0
            # The random run starts from a clean user store.
            import shutil
            shutil.rmtree(h.mail_root, ignore_errors=True)
        srv.start(rng)
        while epoch < 100000 and time.monotonic() < end and \
                kills["worker"] + kills["master"] < args.kills:
            epoch += 1
            model.epoch = epoch
            stop = threading.Event()
            dl = time.monotonic() + 30
            clients = [LmtpClient(h, model, stats, stop, rng.random(), dl)
                       for _ in range(2)]
            clients.append(Pop3Client(h, model, stats, stop, rng.random(),
                                      dl))
            clients += [ImapClient(i, u, h, model, stats, stop,
                                   rng.random(), dl)
                        for i, u in enumerate(("alice", "alice", "bob"))]
            for c in clients:
                c.start()
            span = rng.uniform(0.3, 1.5)
            master = rng.random() < args.master_ratio
            for _ in range(rng.randint(1, 2)):
                time.sleep(rng.uniform(0.05, span))
                if master:
                    break
                if srv.kill_child(rng):
                    kills["worker"] += 1
            if master:
                srv.kill_master(violations)
                kills["master"] += 1
            stop.set()
            for c in clients:
                c.join(2)
            for c in clients:
                c.abort_io()
                c.join(OP_TIMEOUT * 3)
                violations += c.errors
            if any(c.is_alive() for c in clients):
                violations.append("a client thread is stuck; stopping")
                break
            if master or h.proc is None or h.proc.poll() is not None:
                if h.proc is not None:
                    if not master:
                        violations.append("master died by itself: %s"
                                          % h.proc.returncode)
                    srv.kill_master(violations)
                srv.start(rng)
                restarts += 1
            before = len(checker.violations) + len(violations)
            checker.run()
            if len(checker.violations) + len(violations) == before:
                checks_passed += 1      # one whole check after a crash
            if args.verbose or epoch % 25 == 0:
                log("epoch %d: kills %s, restarts %d, violations %d, "
                    "msgs checked %d, %.0fs" % (
                        epoch, kills, restarts,
                        len(checker.violations) + len(violations),
                        checker.messages_checked, time.monotonic() - t0))
            if len(checker.violations) + len(violations) > 50:
                log("crash: too many violations, stopping")
                break
    finally:
        try:
            if h.proc is not None:
                h.stop()
        except AssertionError as e:
            violations.append("stop: %s" % str(e)[:300])
        except BaseException:
            h.kill_all()
            raise
        logtext = h.log_text()
    fault_kills = len(re.findall(r"fault: kill point=", logtext))
    for line in logtext.splitlines():
        for p in heronlib.LOG_FATAL_PATTERNS:
            if p.search(line):
                violations.append("log: " + line[:300])
                break
    for v in violations:
        log("VIOLATION: " + v)
    failed = len(checker.violations) + len(violations)
    log("crash: seed %d, %.1fs, epochs %d, kills: %d worker + %d master + "
        "%d fault points = %d, restarts %d" % (
            seed, time.monotonic() - t0, epoch, kills["worker"],
            kills["master"], fault_kills,
            kills["worker"] + kills["master"] + fault_kills, restarts))
    log("crash: acknowledged ops %s; ops cut %d" % (
        ", ".join("%s=%d" % (k[4:], v) for k, v in sorted(stats.c.items())
                  if k.startswith("ack_")), stats.c.get("op_cut", 0)))
    log("crash: messages checked %d, assertions %d; violations %d" % (
        checker.messages_checked, checker.passed, failed))
    if failed and not args.keep:
        log("crash: daemon directory kept: %s" % h.dir)
    elif not args.keep:
        h.cleanup()
    import shutil
    shutil.rmtree(srv.certdir, ignore_errors=True)
    # N = whole checks passed (one per epoch, three regressions).
    log("%d passed, %d failed" % (checks_passed, failed))
    return 1 if failed else 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--short", action="store_true",
                    help="the make-test run: at most ~50 s")
    ap.add_argument("--kills", type=int, default=None,
                    help="stop after this many harness kills")
    ap.add_argument("--seconds", type=float, default=None)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--master-ratio", type=float, default=0.25)
    ap.add_argument("--no-faults", action="store_true")
    ap.add_argument("--keep", action="store_true",
                    help="keep the daemon directory")
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args()
    if args.short:
        args.kills = args.kills or 40
        args.seconds = args.seconds or 40
    args.kills = args.kills or 1000
    args.seconds = args.seconds or 4 * 3600
    # A SIGTERM (e.g. from `timeout`) still stops the daemon (finally).
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(143))
    if "HERON_BIN" not in os.environ:
        os.environ["HERON_BIN"] = os.path.join(ROOT, "build-asan", "heron")
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
