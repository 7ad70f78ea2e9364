"""model.py: the concurrency checker's model of IMAP sessions and mailboxes.

Each session keeps its view of the selected mailbox (sequence number ->
UID, flags; the EXISTS count) and checks every response against RFC 3501
(5.2, 5.3, 6.3.1, 6.4.x, 7.3.1, 7.4.1) and RFC 2180 4.x; the global state
checks what no single session can: \\Recent owned by at most one session
(RFC 3501 2.3.2), UIDVALIDITY constant and UIDNEXT monotonic (2.3.1.1),
a UID's content never changing and matching what was appended or
delivered (byte-exact, by Message-ID).

Only what the RFCs guarantee is a violation; things a server MAY do
(RFC 2180: NO or missing data for messages expunged elsewhere) become
deferred checks resolved at the end (the message must really be gone).
Limits: all structures are bounded by the number of messages a run makes.
"""

import hashlib
import re
import threading

from imapwire import fetch_items

MSGID_RE = re.compile(rb"(?im)^Message-ID:\s*<([^>\r\n]+)>")
HEADER_LINE_RE = re.compile(rb"^([!-9;-~]+:|[ \t])")


def norm_flags(lst):
    return frozenset(f.lower() for f in lst if isinstance(f, str))


def no_recent(fl):
    return frozenset(f for f in fl if f != "\\recent")


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.checks = 0
        self.violations = []
        self.counts = {}
        self.shoulds = []           # RFC SHOULDs not met (not failures)

    def ok(self, n=1):
        self.checks += n        # races lose a few counts at worst

    def count(self, what, n=1):
        self.counts[what] = self.counts.get(what, 0) + n

    def should(self, who, msg):
        with self.lock:
            self.shoulds.append((who, msg))

    def fail(self, who, msg, context=None):
        with self.lock:
            self.violations.append((who, msg, list(context or [])))


class Instance:
    """One SELECT/EXAMINE of a mailbox (\\Recent is per selection)."""
    _next = [0]
    _lock = threading.Lock()

    def __init__(self, key, readonly, who):
        with Instance._lock:
            Instance._next[0] += 1
            self.id = Instance._next[0]
        self.key = key
        self.readonly = readonly
        self.who = who


class MboxState:
    def __init__(self, key):
        self.key = key
        self.uidvalidity = None
        self.uid_msgid = {}
        self.uid_sha = {}
        self.uid_size = {}
        self.max_uid = 0            # highest UID anybody saw or was given
        self.max_uidnext = 0
        self.recent_owner = {}      # uid -> instance id
        self.observers = {}         # uid -> RW instance ids that had it
        self.knowers = {}           # uid -> RW instance ids that saw flags
        self.blind = []             # (lb, ub): RW views with unknown UIDs
        self.expunged = set()       # UIDs some session saw expunged


class World:
    """Everything shared by the clients; one lock."""

    def __init__(self, stats):
        self.stats = stats
        self.lock = threading.RLock()
        self.mboxes = {}
        self.originals = {}         # msgid -> (bytes, kind)
        self.copy_links = []        # ((key, uid), (key, uid))
        self.deferred = []          # (key, uid, why): must be gone at end
        self.pop3_deleted = []      # (key, msgid)

    def mbox(self, key):
        with self.lock:
            m = self.mboxes.get(key)
            if m is None:
                m = self.mboxes[key] = MboxState(key)
            return m

    def add_original(self, msgid, data, kind):
        with self.lock:
            self.originals[msgid] = (data, kind)

    def note_uid(self, key, uid):
        m = self.mbox(key)
        with self.lock:
            if uid > m.max_uid:
                m.max_uid = uid

    def check_content(self, who, key, uid, data, ctx):
        """Byte-exact content of (mailbox, UID); returns False on a
        violation."""
        st = self.stats
        m = self.mbox(key)
        sha = hashlib.sha256(data).hexdigest()
        mm = MSGID_RE.search(data)
        msgid = mm.group(1).decode("latin-1") if mm else None
        with self.lock:
            old = m.uid_sha.get(uid)
            if old is not None and old != sha:
                st.fail(who, "%s UID %d changed content (%d bytes now)"
                        % (key, uid, len(data)), ctx)
                return False
            want = m.uid_msgid.get(uid)
            if want is not None and msgid != want:
                st.fail(who, "%s UID %d has Message-ID %s, expected %s"
                        % (key, uid, msgid, want), ctx)
                return False
            orig = self.originals.get(msgid)
            m.uid_sha[uid] = sha
            m.uid_size[uid] = len(data)
            if msgid is not None:
                m.uid_msgid.setdefault(uid, msgid)
        if orig is None:
            st.fail(who, "%s UID %d: unknown message (Message-ID %s)"
                    % (key, uid, msgid), ctx)
            return False
        if not content_matches(data, orig):
            st.fail(who, "%s UID %d content differs from what was %s "
                    "(%d vs %d bytes)" % (key, uid, orig[1], len(data),
                                          len(orig[0])), ctx)
            return False
        st.ok()
        return True

    def defer_gone(self, key, uid, why):
        with self.lock:
            self.deferred.append((key, uid, why))


def content_matches(data, orig):
    """APPENDed messages are stored byte-exact; LMTP deliveries get trace
    header lines in front of the original."""
    body, kind = orig
    if kind == "append":
        return data == body
    if not data.endswith(body):
        return False
    prefix = data[:len(data) - len(body)]
    if prefix and not prefix.endswith(b"\r\n"):
        return False
    return all(HEADER_LINE_RE.match(ln)
               for ln in prefix.split(b"\r\n")[:-1])


class Entry:
    __slots__ = ("uid", "flags", "lb", "ub", "upd", "recent", "init")

    def __init__(self, lb, ub):
        self.uid = None
        self.flags = None
        self.lb = lb                # uid > lb
        self.ub = ub                # uid <= ub (None: unknown)
        self.upd = -1               # serial of the last FLAGS update
        self.recent = None          # \Recent seen in this instance?
        self.init = False           # from the SELECT's own EXISTS


class Cmd:
    """A command in progress and what its responses must satisfy."""

    def __init__(self, tag, name, is_uid=False, **kw):
        self.tag = tag
        self.name = name            # FETCH, STORE, SELECT, ...
        self.is_uid = is_uid
        self.kw = kw
        self.serial = 0
        self.fetched = {}           # seq -> items (last FETCH of it)
        self.fetch_uids = set()
        self.copyuid = None
        self.exists_seen = False
        self.select = {}
        self.search = None
        self.expunged_uids = []
        self.expunge_count = 0

    @property
    def expunge_ok(self):
        # RFC 3501 7.4.1: not during FETCH, STORE, SEARCH (the UID
        # versions may); CLOSE sends none at all (6.4.2).
        if self.name in ("FETCH", "STORE", "SEARCH"):
            return self.is_uid
        return self.name != "CLOSE"


class Session:
    """One connection's view; the client feeds it every response."""

    def __init__(self, world, who):
        self.w = world
        self.st = world.stats
        self.who = who
        self.inst = None            # selected Instance or None
        self.view = []
        self.max_uid_known = 0
        self.own_expunged = set()
        self.cmd = None
        self.serial = 0
        self.trace = []             # last responses, for reports

    # -- helpers
    def fail(self, msg):
        self.st.fail(self.who, msg, self.trace[-60:])

    def check(self, cond, msg):
        if cond:
            self.st.ok()
        else:
            self.fail(msg)
        return cond

    def key(self):
        return self.inst.key if self.inst else None

    def note_trace(self, text):
        if isinstance(text, bytes):
            text = text.split(b"\r\n", 1)[0][:200].decode("latin-1")
        self.trace.append(text)
        if len(self.trace) > 400:
            del self.trace[:200]

    # -- select lifetime
    def leave(self):
        """The selection ends: unknown entries become blind spots."""
        if self.inst is None:
            return
        if not self.inst.readonly:
            for i in range(len(self.view)):
                self._blind(i)
        self.inst = None
        self.view = []

    def _blind(self, i):
        e = self.view[i]
        if self.inst.readonly:
            return
        if e.uid is None:
            lb = e.lb
            for j in range(i - 1, -1, -1):
                if self.view[j].uid is not None:
                    lb = max(lb, self.view[j].uid)
                    break
            ub = e.ub
            for j in range(i + 1, len(self.view)):
                if self.view[j].uid is not None:
                    ub = self.view[j].uid if ub is None else \
                        min(ub, self.view[j].uid)
                    break
            m = self.w.mbox(self.inst.key)
            with self.w.lock:
                m.blind.append((lb, ub))

    # -- commands
    def begin(self, cmd):
        self.serial += 1
        cmd.serial = self.serial
        self.cmd = cmd
        self.note_trace("C: %s %s" % (cmd.tag, cmd.kw.get("text", cmd.name)))
        if cmd.name in ("SELECT", "EXAMINE"):
            self.leave()
            key = cmd.kw["key"]
            m = self.w.mbox(key)
            with self.w.lock:
                cmd.kw["max_uid_before"] = m.max_uid
                cmd.kw["max_uidnext_before"] = m.max_uidnext
            self.inst = Instance(key, cmd.name == "EXAMINE", self.who)
            self.view = []
            self.max_uid_known = 0
            self.own_expunged = set()
        elif cmd.name in ("EXPUNGE", "CLOSE") or cmd.name == "MOVE":
            cmd.kw["deleted_before"] = {
                e.uid for e in self.view
                if e.uid is not None and e.flags is not None and
                "\\deleted" in e.flags}

    def on_response(self, r):
        """An untagged response (cmd None: no command in progress)."""
        self.note_trace(r.raw)
        cmd = self.cmd
        n = r.name
        if r.num is not None:
            if n == "EXISTS":
                self._exists(r.num)
            elif n == "RECENT":
                self.check(r.num <= len(self.view),
                           "RECENT %d > EXISTS %d" % (r.num, len(self.view)))
            elif n == "EXPUNGE":
                self._expunge(r.num)
            elif n == "FETCH":
                self._fetch(r.num, fetch_items(r.data))
            else:
                self.fail("unknown numbered response %r" % r.raw[:80])
            return
        if n == "FLAGS" and cmd is not None:
            cmd.select["FLAGS"] = r.data
        elif n in ("OK", "NO", "BAD") and r.code:
            self._resp_code(r)
        elif n == "SEARCH" and cmd is not None:
            cmd.search = r.data
            self._search(r.data)
        elif n == "BYE":
            self.note_trace("BYE")

    def _resp_code(self, r):
        cmd = self.cmd
        if cmd is None:
            return
        if r.code in ("UIDVALIDITY", "UIDNEXT", "UNSEEN") and \
                r.code_args.strip().isdigit():
            cmd.select[r.code] = int(r.code_args)
        elif r.code == "PERMANENTFLAGS":
            cmd.select["PERMANENTFLAGS"] = r.code_args
        elif r.code == "COPYUID":
            cmd.copyuid = r.code_args

    # -- EXISTS / EXPUNGE (RFC 3501 7.3.1, 7.4.1)
    def _exists(self, n):
        cmd = self.cmd
        if self.inst is None:
            self.fail("EXISTS %d with no mailbox selected" % n)
            return
        if cmd is not None and cmd.name in ("SELECT", "EXAMINE") and \
                not cmd.exists_seen:
            cmd.exists_seen = True
            self.view = [Entry(0, None) for _ in range(n)]
            for e in self.view:
                e.init = True
            self.st.ok()
            return
        if not self.check(n >= len(self.view),
                          "EXISTS %d < %d messages known: only EXPUNGE "
                          "may lower the count (RFC 3501 5.2)"
                          % (n, len(self.view))):
            return
        un = self.inst_uidnext()
        if cmd is not None and "UIDNEXT" in cmd.select:
            un = cmd.select["UIDNEXT"]
        lb = max(self.max_uid_known, un - 1)
        for _ in range(n - len(self.view)):
            self.view.append(Entry(lb, None))

    def inst_uidnext(self):
        return getattr(self.inst, "uidnext", 1) if self.inst else 1

    def _expunge(self, n):
        cmd = self.cmd
        if cmd is None:
            self.fail("EXPUNGE %d with no command in progress "
                      "(RFC 3501 5.3, 7.4.1)" % n)
        elif not cmd.expunge_ok:
            self.fail("EXPUNGE %d during %s%s (RFC 3501 7.4.1%s)"
                      % (n, "UID " if cmd.is_uid else "", cmd.name,
                         ", 6.4.2" if cmd.name == "CLOSE" else ""))
        else:
            self.st.ok()
        if not self.check(1 <= n <= len(self.view),
                          "EXPUNGE %d out of range 1..%d"
                          % (n, len(self.view))):
            return
        e = self.view[n - 1]
        if e.uid is not None:
            self.own_expunged.add(e.uid)
            m = self.w.mbox(self.inst.key)
            with self.w.lock:
                m.expunged.add(e.uid)
            if cmd is not None:
                cmd.expunged_uids.append(e.uid)
        else:
            self._blind(n - 1)
        if cmd is not None:
            cmd.expunge_count += 1
            # UID FETCH/STORE may see EXPUNGE (RFC 3501 7.4.1): the
            # command's answers move down with their messages, so that a
            # later sync FETCH of a moved message (another session's
            # change) is not taken for the command's own answer.
            cmd.fetched = {(q - 1 if q > n else q): it
                           for q, it in cmd.fetched.items() if q != n}
        del self.view[n - 1]

    # -- FETCH (RFC 3501 7.4.2)
    def _learn_uid(self, seq, uid):
        e = self.view[seq - 1]
        if e.uid is not None:
            self.check(e.uid == uid, "FETCH %d UID %d, but message %d has "
                       "UID %d" % (seq, uid, seq, e.uid))
            return
        ok = self.check(uid not in self.own_expunged,
                        "UID %d came back after this session saw it "
                        "expunged" % uid)
        ok = ok and self.check(uid > e.lb, "UID %d of message %d not above "
                               "%d (UIDs ascend; new messages get higher "
                               "UIDs, RFC 3501 2.3.1.1)" % (uid, seq, e.lb))
        ok = ok and self.check(e.ub is None or uid <= e.ub,
                               "UID %d of message %d not below UIDNEXT %d"
                               % (uid, seq, (e.ub or 0) + 1))
        for j in range(seq - 2, -1, -1):
            if self.view[j].uid is not None:
                ok = ok and self.check(
                    self.view[j].uid < uid, "UID %d at %d not above UID %d "
                    "at %d" % (uid, seq, self.view[j].uid, j + 1))
                break
        for j in range(seq, len(self.view)):
            if self.view[j].uid is not None:
                ok = ok and self.check(
                    self.view[j].uid > uid, "UID %d at %d not below UID %d "
                    "at %d" % (uid, seq, self.view[j].uid, j + 1))
                break
        if not ok:
            return
        e.uid = uid
        self.max_uid_known = max(self.max_uid_known, uid)
        self.w.note_uid(self.inst.key, uid)
        if not self.inst.readonly:
            m = self.w.mbox(self.inst.key)
            with self.w.lock:
                m.observers.setdefault(uid, set()).add(self.inst.id)

    def _fetch(self, seq, items):
        cmd = self.cmd
        if self.inst is None:
            self.fail("FETCH %d with no mailbox selected" % seq)
            return
        if not self.check(1 <= seq <= len(self.view),
                          "FETCH %d out of range 1..%d"
                          % (seq, len(self.view))):
            return
        e = self.view[seq - 1]
        if "UID" in items:
            self._learn_uid(seq, int(items["UID"]))
        elif cmd is not None and cmd.is_uid and cmd.name == "FETCH":
            self.fail("UID FETCH response without UID (RFC 3501 6.4.8)")
        if "FLAGS" in items:
            self._flags(e, norm_flags(items["FLAGS"]))
        if cmd is not None:
            # The command's own answer comes first; a later FETCH of the
            # same message in the sync reports another session's change.
            cmd.fetched.setdefault(seq, items)
            if e.uid is not None:
                cmd.fetch_uids.add(e.uid)
        body = items.get("BODY[]")
        if body is None:
            body = items.get("RFC822")
        if isinstance(body, bytes) and e.uid is not None:
            self.w.check_content(self.who, self.inst.key, e.uid, body,
                                 self.trace[-6:])
            size = items.get("RFC822.SIZE")
            if size is not None:
                self.check(int(size) == len(body), "RFC822.SIZE %s != %d "
                           "bytes of BODY[]" % (size, len(body)))
        elif "RFC822.SIZE" in items and e.uid is not None:
            m = self.w.mbox(self.inst.key)
            with self.w.lock:
                size = m.uid_size.get(e.uid)
            if size is not None:
                self.check(int(items["RFC822.SIZE"]) == size,
                           "RFC822.SIZE %s of UID %d, its BODY[] had %d"
                           % (items["RFC822.SIZE"], e.uid, size))

    def _flags(self, e, fl):
        cmd = self.cmd
        e.flags = fl
        e.upd = cmd.serial if cmd is not None else self.serial
        rec = "\\recent" in fl
        if e.recent is not None:
            # RFC 3501 2.3.2: \Recent can not be altered by the client;
            # it stays for the whole session.
            self.check(e.recent == rec, "\\Recent of UID %s changed from "
                       "%s to %s within one session" % (e.uid, e.recent, rec))
        e.recent = rec
        if e.uid is None or self.inst.readonly:
            return
        m = self.w.mbox(self.inst.key)
        with self.w.lock:
            m.knowers.setdefault(e.uid, set()).add(self.inst.id)
            if rec:
                owner = m.recent_owner.get(e.uid)
                if owner is None:
                    m.recent_owner[e.uid] = self.inst.id
                elif owner != self.inst.id:
                    self.fail("UID %d is \\Recent in two sessions (RFC 3501 "
                              "2.3.2)" % e.uid)
                    return
        self.st.ok()

    # -- SEARCH
    def _search(self, nums):
        cmd = self.cmd
        if nums is None or cmd is None:
            return
        if cmd.is_uid:
            bad = [u for u in nums if u in self.own_expunged]
            self.check(not bad, "UID SEARCH returned expunged UIDs %s"
                       % bad[:5])
        else:
            bad = [n for n in nums if not 1 <= n <= len(self.view)]
            self.check(not bad, "SEARCH returned %s outside 1..%d"
                       % (bad[:5], len(self.view)))
        self.check(len(set(nums)) == len(nums), "SEARCH result repeats "
                   "numbers")

    # -- tagged
    def on_tagged(self, r):
        self.note_trace(r.raw)
        cmd, self.cmd = self.cmd, None
        h = getattr(self, "_done_" + cmd.name.lower(), None)
        if h is not None:
            self._cur = cmd
            h(cmd, r)

    def _done_select(self, cmd, r):
        key = cmd.kw["key"]
        if r.name != "OK":
            self.inst = None
            self.view = []
            return
        sel = cmd.select
        for what in ("FLAGS", "UIDVALIDITY", "UIDNEXT"):
            self.check(what in sel, "%s without %s (RFC 3501 6.3.1)"
                       % (cmd.name, what))
        self.check(cmd.exists_seen, "%s without EXISTS" % cmd.name)
        want = "READ-ONLY" if cmd.name == "EXAMINE" else "READ-WRITE"
        self.check(r.code == want, "%s answered [%s], expected [%s]"
                   % (cmd.name, r.code, want))
        m = self.w.mbox(key)
        uv, un = sel.get("UIDVALIDITY"), sel.get("UIDNEXT")
        with self.w.lock:
            if uv is not None:
                if m.uidvalidity is None:
                    m.uidvalidity = uv
                old_uv = m.uidvalidity
            if un is not None and un > m.max_uidnext:
                m.max_uidnext = un
        if uv is not None:
            self.check(uv == old_uv, "UIDVALIDITY of %s changed %d -> %d"
                       % (key, old_uv, uv))
        if un is not None:
            self.inst.uidnext = un
            self.check(un > cmd.kw["max_uid_before"],
                       "UIDNEXT %d of %s not above UID %d seen before"
                       % (un, key, cmd.kw["max_uid_before"]))
            self.check(un >= cmd.kw["max_uidnext_before"],
                       "UIDNEXT of %s went back: %d < %d"
                       % (key, un, cmd.kw["max_uidnext_before"]))
            for e in self.view:
                if e.init:
                    e.ub = un - 1
                else:
                    e.lb = max(e.lb, un - 1)

    _done_examine = _done_select

    def _done_close(self, cmd, r):
        if r.name == "OK":
            self.leave()

    _done_unselect = _done_close

    def _done_store(self, cmd, r):
        """Non-.SILENT STORE: every message stored gets its new flags
        (RFC 3501 6.4.6); missing ones must have been expunged
        elsewhere (RFC 2180 4.2)."""
        if r.name != "OK":
            return
        op, want = cmd.kw["op"], cmd.kw["flags"]
        if cmd.kw.get("silent"):
            self._apply_silent(cmd, op, want)
            return
        for seq, items in cmd.fetched.items():
            if "FLAGS" not in items or seq > len(self.view):
                continue
            fl = no_recent(norm_flags(items["FLAGS"]))
            if seq not in cmd.kw.get("seqs", ()) and not cmd.is_uid:
                continue
            e = self.view[seq - 1]
            if cmd.is_uid and e.uid not in cmd.kw.get("uids", ()):
                continue
            if op == "+":
                good = want <= fl
            elif op == "-":
                good = not (want & fl)
            else:
                good = fl == want
            self.check(good, "STORE %sFLAGS %s: FETCH reports %s"
                       % (op if op != "=" else "", sorted(want), sorted(fl)))
        self._missing(cmd, "STORE")

    def _apply_silent(self, cmd, op, want):
        """.SILENT: no FETCH comes back (RFC 3501 6.4.6); the model
        applies the change itself (other sessions' changes come as
        updates)."""
        for i, e in enumerate(self.view):
            hit = e.uid in cmd.kw.get("uids", ()) if cmd.is_uid else \
                (i + 1) in cmd.kw.get("seqs", ())
            if not hit or e.flags is None:
                continue
            if op == "+":
                e.flags = e.flags | want
            elif op == "-":
                e.flags = e.flags - want
            else:
                e.flags = want | ({"\\recent"} if e.recent else set())
            e.upd = cmd.serial

    def _done_fetch(self, cmd, r):
        if r.name != "OK":
            return
        self._missing(cmd, "FETCH")
        if cmd.kw.get("sets_seen") and not self.inst.readonly:
            # RFC 3501 6.4.5: BODY[] sets \Seen; flags reported with it
            # must show it (whether FLAGS come at all is a SHOULD that
            # depends on state the client may not know yet).
            for seq, items in cmd.fetched.items():
                if "BODY[]" in items and "FLAGS" in items:
                    self.check("\\seen" in norm_flags(items["FLAGS"]),
                               "FETCH BODY[] of %d reports FLAGS without "
                               "\\Seen (RFC 3501 6.4.5)" % seq)

    def _missing(self, cmd, what):
        """Asked-for messages without a response: gone elsewhere?"""
        key = self.inst.key
        if cmd.is_uid:
            for u in cmd.kw.get("uids", ()):
                if u in cmd.fetch_uids or u in cmd.expunged_uids:
                    self.st.ok()
                elif any(e.uid == u for e in self.view) or \
                        u in self.own_expunged:
                    self.w.defer_gone(key, u, "UID %s without response"
                                      % what)
            return
        for seq in cmd.kw.get("seqs", ()):
            if seq in cmd.fetched:
                self.st.ok()
                continue
            if seq <= len(self.view) and self.view[seq - 1].uid is not None:
                self.w.defer_gone(key, self.view[seq - 1].uid,
                                  "%s %d without response" % (what, seq))
            else:
                self.st.count("unverifiable missing %s" % what)

    def _done_expunge(self, cmd, r):
        """After EXPUNGE (UID EXPUNGE: within the set) no message this
        session knew as \\Deleted, with no flag update since, is left."""
        if r.name != "OK":
            return
        uids = cmd.kw.get("uids")
        for e in self.view:
            if e.uid in cmd.kw["deleted_before"] and \
                    e.upd < cmd.serial and (uids is None or e.uid in uids):
                self.fail("UID %d had \\Deleted but survived EXPUNGE"
                          % e.uid)
                return
        self.st.ok()

    def _done_move(self, cmd, r):
        if r.name != "OK":
            return
        from imapwire import parse_uid_set
        if cmd.copyuid:
            parts = cmd.copyuid.split()
            src = parse_uid_set(parts[1])
            left = [e.uid for e in self.view if e.uid in src]
            self.check(not left, "MOVE left source UIDs %s in the view "
                       "(RFC 6851 3.3)" % left[:5])
        self.st.count("moves")
