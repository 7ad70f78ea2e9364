"""test_migration.py: a Maildir that Dovecot 2.3 used keeps everything
when Heron opens it (issue 4 item 10): UIDVALIDITY, UIDs, flags and
keyword names, subscriptions and POP3 UIDLs, so clients download nothing
again; new deliveries get UIDs above Dovecot's; Dovecot's files are left
as they were (a rollback to Dovecot still works).

The Maildir is built by the real Dovecot from Debian's packages
(dovecot-core, -imapd, -pop3d, -lmtpd), run unprivileged on loopback ports
with a private config in the test's directory: as the current user, or
as "nobody" when the tests run as root (Dovecot refuses mail access as
UID 0). Skipped when /usr/sbin/dovecot is not installed.
Limits: every wait has a deadline; Dovecot is stopped in a finally.
"""

import grp
import imaplib
import os
import poplib
import pwd
import re
import smtplib
import subprocess

import pytest

import heronlib
from heronlib import PASSWORDS

DOVECOT = "/usr/sbin/dovecot"
# alice: Dovecot's default POP3 UIDLs ("%08Xu%08Xv", computed, never
# stored). bob: a custom format that Dovecot saves in dovecot-uidlist as
# P fields (pop3_save_uidl), as after an earlier migration into Dovecot.
USERDB_EXTRA = {
    "alice": "",
    "bob": "userdb_pop3_uidl_format=%%v.%%u-x "
           "userdb_pop3_save_uidl=yes",
}
MSGS = 10
pytestmark = pytest.mark.skipif(not os.access(DOVECOT, os.X_OK),
                                reason="dovecot not installed "
                                       "(scripts/deps.sh test)")


def run_user():
    """(name, uid, gid) Dovecot and its mail run as."""
    if os.geteuid() != 0:
        pw = pwd.getpwuid(os.geteuid())
    else:
        pw = pwd.getpwnam("nobody")
    return pw.pw_name, pw.pw_uid, pw.pw_gid


class Dovecot:
    """A private Dovecot instance (cf. bench/run) on loopback ports."""

    def __init__(self, base, mail_root):
        self.base = base
        self.mail_root = mail_root
        self.pop3_port, self.imap_port, self.lmtp_port = \
            heronlib.free_ports(3)
        self.user, self.uid, self.gid = run_user()
        self.conf = os.path.join(base, "dovecot.conf")
        self.log = os.path.join(base, "dovecot.log")
        self.proc = None
        for d in ("run", "state"):
            os.makedirs(os.path.join(base, d), exist_ok=True)
        os.makedirs(mail_root, exist_ok=True)
        self.write_files()
        if os.geteuid() == 0:
            for d in (base, os.path.join(base, "run"),
                      os.path.join(base, "state"), mail_root):
                os.chown(d, self.uid, self.gid)
            # Let nobody through the test's 0700 directory.
            os.chmod(os.path.dirname(base), 0o711)

    def write_files(self):
        b = self.base
        with open(os.path.join(b, "passwd"), "w") as f:
            for u, extra in USERDB_EXTRA.items():
                f.write("%s:{PLAIN}%s:%d:%d::%s/%s::%s\n"
                        % (u, PASSWORDS[u], self.uid, self.gid,
                           self.mail_root, u, extra))
        conf = """# Written by tests/proto/test_migration.py
base_dir = {b}/run
state_dir = {b}/state
instance_name = heron-migration-test
log_path = {b}/dovecot.log
protocols = pop3 lmtp imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
default_internal_user = {u}
default_internal_group = {g}
default_login_user = {u}
first_valid_uid = 1
first_valid_gid = 0
mail_location = maildir:{m}/%u/Maildir
mail_fsync = always
passdb {{
  driver = passwd-file
  args = {b}/passwd
}}
userdb {{
  driver = passwd-file
  args = {b}/passwd
}}
service anvil {{
  chroot =
}}
service imap-login {{
  chroot =
  inet_listener imap {{
    address = 127.0.0.1
    port = {imap}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service pop3-login {{
  chroot =
  inet_listener pop3 {{
    address = 127.0.0.1
    port = {pop3}
  }}
  inet_listener pop3s {{
    port = 0
  }}
}}
service lmtp {{
  inet_listener lmtp {{
    address = 127.0.0.1
    port = {lmtp}
  }}
  unix_listener lmtp {{
    mode = 0600
  }}
}}
""".format(b=b, u=self.user, g=grp.getgrgid(self.gid).gr_name,
           m=self.mail_root,
           imap=self.imap_port, pop3=self.pop3_port, lmtp=self.lmtp_port)
        with open(self.conf, "w") as f:
            f.write(conf)

    def _preexec(self):
        if os.geteuid() == 0:
            os.setgroups([])
            os.setgid(self.gid)
            os.setuid(self.uid)

    def start(self):
        env = dict(os.environ, HOME=self.base)
        self.errf = open(self.log + ".err", "ab")
        self.proc = subprocess.Popen(
            [DOVECOT, "-F", "-c", self.conf], preexec_fn=self._preexec,
            stdout=subprocess.DEVNULL, stderr=self.errf, env=env,
            cwd=self.base)
        for port in (self.imap_port, self.pop3_port, self.lmtp_port):
            heronlib.wait_for(lambda: self._accepts(port), 15,
                              what="dovecot port %d (%s)"
                              % (port, self.log_tail()))

    def _accepts(self, port):
        if self.proc.poll() is not None:
            raise AssertionError("dovecot exited: %s" % self.log_tail())
        try:
            heronlib.LineClient.connect(port).close()
            return True
        except OSError:
            return False

    def log_tail(self):
        out = ""
        for p in (self.log, self.log + ".err"):
            if os.path.exists(p):
                out += open(p, errors="replace").read()[-2000:]
        return out

    def stop(self):
        if self.proc is None:
            return
        kids = heronlib.proc_children(self.proc.pid)
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.errf.close()
        # Its imap/pop3/lmtp processes end with the master.
        heronlib.wait_for(lambda: not any(heronlib.proc_alive(k)
                                          for k in kids), 10,
                          what="dovecot processes to exit")


# ---------------------------------------------------------------- clients

def lmtp_deliver(port, user, msg):
    lm = smtplib.LMTP("127.0.0.1", port, timeout=heronlib.IO_TIMEOUT)
    try:
        lm.sendmail("sender@example.org", [user], msg)
    finally:
        lm.quit()


def imap_login(port, user):
    im = imaplib.IMAP4("127.0.0.1", port, timeout=heronlib.IO_TIMEOUT)
    im.login(user, PASSWORDS[user])
    return im


def ok(r):
    assert r[0] == "OK", r
    return r[1]


MSGID_RE = re.compile(rb"Message-ID:\s*<([^>]+)>", re.I)
FLAGS_RE = re.compile(rb"FLAGS \(([^)]*)\)")
UID_RE = re.compile(rb"UID (\d+)")


def mailbox_state(im, name):
    """(uidvalidity, uidnext, {msgid: (uid, frozenset(flags))})."""
    st = ok(im.status(name, "(UIDVALIDITY UIDNEXT)"))[0]
    uv = int(re.search(rb"UIDVALIDITY (\d+)", st).group(1))
    un = int(re.search(rb"UIDNEXT (\d+)", st).group(1))
    exists = int(ok(im.select(name, readonly=True))[0])
    msgs = {}
    data = ok(im.uid("FETCH", "1:*", "(UID FLAGS BODY.PEEK[HEADER.FIELDS "
                     "(MESSAGE-ID)])")) if exists else []
    for i, item in enumerate(data):
        if not isinstance(item, tuple):
            continue
        # FLAGS may come before or after the header literal.
        meta = item[0]
        if i + 1 < len(data) and isinstance(data[i + 1], bytes):
            meta += data[i + 1]
        uid = int(UID_RE.search(meta).group(1))
        flags = frozenset(f for f in
                          FLAGS_RE.search(meta).group(1).decode().split()
                          if f != "\\Recent")
        msgs[MSGID_RE.search(item[1]).group(1).decode()] = (uid, flags)
    assert len(msgs) == exists, (name, data)
    im.close()
    return uv, un, msgs


def lsub_names(im):
    """LSUB "" "*" names with '/' as the separator."""
    out = set()
    for line in ok(im.lsub('""', "*")):
        if line is None:
            continue
        m = re.match(rb'\(([^)]*)\) (NIL|"(.)") "?(.*?)"?$', line)
        name = m.group(4).decode()
        if m.group(3):
            name = name.replace(m.group(3).decode(), "/")
        out.add(name)
    return out


def pop3_uidls(port, user):
    """{msgid: uidl} from UIDL and TOP n 0."""
    p = poplib.POP3("127.0.0.1", port, timeout=heronlib.IO_TIMEOUT)
    try:
        p.user(user)
        p.pass_(PASSWORDS[user])
        out = {}
        for line in p.uidl()[1]:
            num, uidl = line.decode().split(" ", 1)
            head = b"\n".join(p.top(int(num), 0)[1])
            out[MSGID_RE.search(head).group(1).decode()] = uidl
        return out
    finally:
        p.quit()


def message(user, i):
    """Message-ID <user.mig.i@example.org>."""
    return heronlib.make_message("%s mig %d" % (user, i), [b"body %d" % i])


# ---------------------------------------------------------------- scenario

def build_with_dovecot(dc, user):
    """Deliveries, folders, flags, keywords, MOVE, EXPUNGE, SUBSCRIBE."""
    for i in range(1, MSGS + 1):
        lmtp_deliver(dc.lmtp_port, user, message(user, i))
    im = imap_login(dc.imap_port, user)
    try:
        for name in ("Work", "Work.Sub", "Other"):
            ok(im.create(name))
        ok(im.select("INBOX"))
        ok(im.uid("STORE", "1", "+FLAGS", r"(\Seen $Label1 Junk)"))
        ok(im.uid("STORE", "2", "+FLAGS", r"(\Flagged NonJunk)"))
        ok(im.uid("STORE", "3", "+FLAGS", r"(\Answered \Seen $Label1)"))
        ok(im.uid("STORE", "9", "+FLAGS", r"(\Draft project-x)"))
        ok(im.uid("MOVE", "4:5", "Work"))
        ok(im.uid("STORE", "6,8", "+FLAGS", r"(\Deleted)"))
        ok(im.expunge())
        ok(im.select("Work"))
        ok(im.uid("STORE", "2", "+FLAGS", r"(\Seen Later)"))
        for name in ("INBOX", "Work", "Work.Sub"):
            ok(im.subscribe(name))
        want = {}
        for dname, hname in (("INBOX", "INBOX"), ("Work", "Work"),
                             ("Work.Sub", "Work/Sub"), ("Other", "Other")):
            want[hname] = mailbox_state(im, dname)
        subs = lsub_names(im)
    finally:
        im.logout()
    return want, subs, pop3_uidls(dc.pop3_port, user)


def dovecot_files(root):
    """Bytes of every dovecot-uidlist/-keywords and subscriptions."""
    out = {}
    for dirpath, _, files in os.walk(root):
        for f in files:
            if f in ("dovecot-uidlist", "dovecot-keywords", "subscriptions"):
                p = os.path.join(dirpath, f)
                out[p] = heronlib.read_file(p)
    return out


def test_dovecot_maildir_keeps_uids_flags_subscriptions_uidls(
        heron_factory):
    h = heron_factory(start=False)
    dc = Dovecot(os.path.join(h.dir, "dovecot"), h.mail_root)
    before = {}
    try:
        dc.start()
        for user in USERDB_EXTRA:
            before[user] = build_with_dovecot(dc, user)
    finally:
        dc.stop()
    # bob's UIDLs were saved by Dovecot as P fields, alice's were not.
    bob_ul = heronlib.read_file(os.path.join(h.maildir("bob"),
                                             "dovecot-uidlist"))
    assert re.search(rb"^\d+ .*P[0-9]+\.\d+-x .*:", bob_ul, re.M), bob_ul
    assert b" P" not in heronlib.read_file(
        os.path.join(h.maildir("alice"), "dovecot-uidlist"))
    files = dovecot_files(h.mail_root)
    assert any(p.endswith("dovecot-keywords") for p in files), files

    h.start()
    for user, (want, subs, uidls) in before.items():
        # POP3 first: opening INBOX is what imports it.
        assert pop3_uidls(h.pop3_port, user) == uidls, user
        im = imap_login(h.imap_port, user)
        try:
            for name, (uv, un, msgs) in want.items():
                huv, hun, hmsgs = mailbox_state(im, name)
                assert huv == uv, (user, name, "UIDVALIDITY")
                assert hun >= un, (user, name, "UIDNEXT", hun, un)
                assert hmsgs == msgs, (user, name, hmsgs, msgs)
            assert lsub_names(im) == subs, user
        finally:
            im.logout()
        assert len(uidls) == MSGS - 4     # 2 moved, 2 expunged
    assert before["alice"][1] == {"INBOX", "Work", "Work/Sub"}

    # A new delivery continues after Dovecot's UIDs.
    heronlib.deliver(h, "alice", message("alice", 99))
    im = imap_login(h.imap_port, "alice")
    try:
        uv, un, msgs = mailbox_state(im, "INBOX")
    finally:
        im.logout()
    old_uv, old_un, _ = before["alice"][0]["INBOX"]
    assert uv == old_uv
    assert msgs["alice.mig.99@example.org"][0] >= old_un

    # Dovecot's files are as Dovecot left them (rollback possible).
    assert dovecot_files(h.mail_root) == files
    assert os.path.exists(os.path.join(h.maildir("bob"),
                                       "heron-pop3-uidls"))
