"""test_imap_clients.py: real Debian IMAP clients against the daemon:
curl (imap://, imaps://: FETCH by URL, search URL, APPEND by upload,
LIST), mbsync (package isync: two-way sync of INBOX and a folder with a
local Maildir) and fetchmail over IMAP and IMAPS into an mda.

Every client run is bounded (subprocess timeouts) and talks to 127.0.0.1
only. A missing client binary skips its tests (scripts/deps.sh installs
curl, isync and fetchmail). The server side is checked with imaplib.
"""

import imaplib
import os
import re
import shutil
import subprocess

import pytest

import heronlib
from heronlib import PASSWORDS, crlf, data_file, deliver, lf

CURL = shutil.which("curl")
MBSYNC = shutil.which("mbsync")
FETCHMAIL = shutil.which("fetchmail")
OFFLINEIMAP = shutil.which("offlineimap")
needs_curl = pytest.mark.skipif(CURL is None, reason="curl not installed")
needs_mbsync = pytest.mark.skipif(
    MBSYNC is None, reason="mbsync not installed (Debian package isync)")
needs_fetchmail = pytest.mark.skipif(FETCHMAIL is None,
                                     reason="fetchmail not installed")
needs_offlineimap = pytest.mark.skipif(
    OFFLINEIMAP is None,
    reason="offlineimap not installed (Debian package offlineimap3)")


# ---------------------------------------------------------------- helpers

def imap(h, user="alice"):
    m = imaplib.IMAP4("127.0.0.1", h.imap_port, timeout=heronlib.IO_TIMEOUT)
    typ, _ = m.login(user, PASSWORDS[user])
    assert typ == "OK"
    return m


def server_messages(h, box="INBOX", user="alice"):
    """[(uid, flags set, BODY[] bytes)] of a mailbox, in order."""
    m = imap(h, user)
    typ, data = m.select(box, readonly=True)
    assert typ == "OK", data
    out = []
    if int(data[0]) > 0:
        typ, data = m.fetch("1:*", "(UID FLAGS BODY.PEEK[])")
        assert typ == "OK", data
        for item in data:
            if not isinstance(item, tuple):
                continue
            head = item[0].decode()
            uid = int(re.search(r"UID (\d+)", head).group(1))
            flags = set(re.search(r"FLAGS \(([^)]*)\)", head).group(1)
                        .split())
            out.append((uid, flags, item[1]))
    m.logout()
    return out


def server_append(h, box, msg, flags=None, user="alice"):
    m = imap(h, user)
    typ, data = m.append(box, flags, None, msg)
    assert typ == "OK", data
    m.logout()


def server_create(h, box, user="alice"):
    m = imap(h, user)
    typ, data = m.create(box)
    assert typ == "OK", data
    m.logout()


def message(subject, body=b"hello body\r\n"):
    return (b"From: Sender <sender@example.org>\r\nTo: alice@example.org\r\n"
            b"Subject: " + subject.encode() + b"\r\nMessage-ID: <"
            + subject.replace(" ", ".").encode() + b"@example.org>\r\n\r\n"
            + body)


# ---------------------------------------------------------------- curl

def curl(args, timeout=30):
    return subprocess.run([CURL, "-s", "-S", "--max-time", "20"] + args,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          timeout=timeout)


def cred(user="alice"):
    return ["-u", "%s:%s" % (user, PASSWORDS[user])]


@needs_curl
def test_curl_fetch_by_uid(heron):
    msgs = [crlf(data_file("simple.eml")), crlf(data_file("8bit.eml"))]
    for m in msgs:
        deliver(heron, "alice", m)
    on_server = server_messages(heron)
    assert [u for u, _, _ in on_server] == [1, 2]
    for i, m in enumerate(msgs):
        r = curl(["imap://127.0.0.1:%d/INBOX;UID=%d" % (heron.imap_port,
                                                        i + 1)] + cred())
        assert r.returncode == 0, r.stderr
        # what curl prints is BODY[], and that is the delivered message
        # (plus Heron's trace headers in front)
        assert lf(r.stdout) == lf(on_server[i][2]), r.stdout[:300]
        assert lf(r.stdout).endswith(lf(m)), r.stdout[-300:]
        heronlib.split_trace(lf(r.stdout), lf(m))


@needs_curl
def test_curl_fetch_exact_appended_bytes(heron):
    body = message("exact bytes", b"line 1\r\n\r\n.dot line\r\n"
                   b"8bit \xc3\xa9\r\nlast line\r\n")
    server_append(heron, "INBOX", body)
    r = curl(["imap://127.0.0.1:%d/INBOX;UID=1" % heron.imap_port] + cred())
    assert r.returncode == 0, r.stderr
    assert lf(r.stdout) == lf(body), r.stdout


@needs_curl
def test_curl_imaps(heron):
    msg = crlf(data_file("simple.eml"))
    deliver(heron, "bob", msg)
    r = curl(["-k", "imaps://127.0.0.1:%d/INBOX;UID=1" % heron.imaps_port]
             + cred("bob"))
    assert r.returncode == 0, r.stderr
    assert lf(r.stdout).endswith(lf(msg)), r.stdout[-300:]


@needs_curl
def test_curl_starttls_required(heron):
    msg = crlf(data_file("8bit.eml"))
    deliver(heron, "alice", msg)
    r = curl(["-k", "--ssl-reqd",
              "imap://127.0.0.1:%d/INBOX;UID=1" % heron.imap_port] + cred())
    assert r.returncode == 0, r.stderr
    assert lf(r.stdout).endswith(lf(msg)), r.stdout[-300:]


@needs_curl
def test_curl_search_url(heron):
    for subj in ("hello world", "other thing", "Hello again"):
        server_append(heron, "INBOX", message(subj))
    r = curl(["imap://127.0.0.1:%d/INBOX?SUBJECT%%20hello" % heron.imap_port]
             + cred())
    assert r.returncode == 0, r.stderr
    lines = [ln for ln in r.stdout.splitlines() if ln.strip()]
    assert lines, r.stdout
    found = []
    for ln in lines:
        assert ln.startswith(b"* SEARCH"), lines
        found += [int(x) for x in ln.split()[2:]]
    # SUBJECT is a case-insensitive substring match (RFC 3501 6.4.4)
    assert sorted(found) == [1, 3], lines
    # nothing matches: an empty "* SEARCH"
    r = curl(["imap://127.0.0.1:%d/INBOX?SUBJECT%%20nomatch"
              % heron.imap_port] + cred())
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == [b"*", b"SEARCH"], r.stdout


@needs_curl
def test_curl_append_upload(heron, tmp_path):
    body = message("uploaded by curl", b"first\r\nsecond\r\n")
    f = tmp_path / "up.eml"
    f.write_bytes(body)
    server_create(heron, "Uploads")
    for box in ("INBOX", "Uploads"):
        r = curl(["-T", str(f),
                  "imap://127.0.0.1:%d/%s" % (heron.imap_port, box)]
                 + cred())
        assert r.returncode == 0, r.stderr
        msgs = server_messages(heron, box)
        assert len(msgs) == 1, msgs
        assert msgs[0][2] == body, msgs[0][2]
        assert msgs[0][0] == 1
    # byte-exact in the Maildir too (LF there)
    files = heronlib.maildir_files(heron.maildir("alice"))
    assert [heronlib.read_file(p) for p in files] == [lf(body)]


@needs_curl
def test_curl_list_and_examine(heron):
    server_create(heron, "Work")
    server_create(heron, "Work/Projects")
    r = curl(["imap://127.0.0.1:%d/" % heron.imap_port] + cred())
    assert r.returncode == 0, r.stderr
    names = set()
    for ln in r.stdout.splitlines():
        m = re.match(rb'\* LIST \([^)]*\) (?:"."|NIL) "?([^"]*)"?$', ln)
        assert m, ln
        names.add(m.group(1))
    assert {b"INBOX", b"Work", b"Work/Projects"} <= names or \
        {b"INBOX", b"Work", b"Work.Projects"} <= names, r.stdout
    # custom request: EXAMINE and its untagged data
    server_append(heron, "Work", message("in work"))
    r = curl(["imap://127.0.0.1:%d/" % heron.imap_port, "-X",
              "EXAMINE Work"] + cred())
    assert r.returncode == 0, r.stderr
    assert re.search(rb"^\* 1 EXISTS", r.stdout, re.M), r.stdout


@needs_curl
def test_curl_wrong_password_and_missing_uid(heron):
    r = curl(["imap://127.0.0.1:%d/INBOX;UID=1" % heron.imap_port,
              "-u", "alice:wrong"])
    assert r.returncode == 67, (r.returncode, r.stderr)   # login denied
    deliver(heron, "alice", crlf(data_file("simple.eml")))
    r = curl(["imap://127.0.0.1:%d/INBOX;UID=7" % heron.imap_port]
             + cred())
    assert r.returncode != 0 and r.stdout == b"", (r.returncode, r.stdout)


# ---------------------------------------------------------------- mbsync

MBSYNC_RC = """\
IMAPAccount heron
Host 127.0.0.1
Port {port}
User alice
Pass "{pw}"
SSLType None
AuthMechs LOGIN PLAIN
Timeout 20

IMAPStore remote
Account heron

MaildirStore local
Path {local}/
Inbox {local}/INBOX
SubFolders Verbatim

Channel heron
Far :remote:
Near :local:
Patterns INBOX Work
Create Both
Expunge Both
Sync All
SyncState *
"""


class Mbsync:
    def __init__(self, heron, tmp_path):
        self.local = str(tmp_path / "local")
        self.home = str(tmp_path / "home")
        os.makedirs(self.home)
        os.makedirs(self.local)
        self.rc = str(tmp_path / "mbsyncrc")
        with open(self.rc, "w") as f:
            f.write(MBSYNC_RC.format(port=heron.imap_port,
                                     pw=PASSWORDS["alice"],
                                     local=self.local))
        os.chmod(self.rc, 0o600)

    def run(self):
        env = dict(os.environ, HOME=self.home)
        r = subprocess.run([MBSYNC, "-c", self.rc, "-V", "heron"],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           env=env, timeout=60, cwd=self.home)
        log = r.stdout.decode(errors="replace")
        assert r.returncode == 0, log[-4000:]
        return log

    def folder(self, name):
        return os.path.join(self.local, name)

    def files(self, name):
        return heronlib.maildir_files(self.folder(name))

    def contents(self, name):
        """Local messages (LF, without mbsync's X-TUID line), sorted."""
        return sorted(strip_tuid(lf(heronlib.read_file(p)))
                      for p in self.files(name))


def strip_tuid(b):
    """mbsync adds an X-TUID header line to the messages it copies (both
    ways); everything else must be byte-exact."""
    return re.sub(rb"(?m)^X-TUID: [^\r\n]*\r?\n", b"", b, count=1)


def local_state(mb):
    out = {}
    for name in ("INBOX", "Work"):
        out[name] = sorted(
            (os.path.basename(p).split(",U=")[-1],
             strip_tuid(lf(heronlib.read_file(p))))
            for p in mb.files(name))
    return out


def remote_state(heron):
    return {box: [(u, sorted(f - {"\\Recent"}), b) for u, f, b in
                  server_messages(heron, box)] for box in ("INBOX", "Work")}


@needs_mbsync
def test_mbsync_two_way(heron, tmp_path):
    m1, m2 = crlf(data_file("simple.eml")), crlf(data_file("8bit.eml"))
    deliver(heron, "alice", m1)
    deliver(heron, "alice", m2)
    server_create(heron, "Work")
    w1 = message("work item", b"in the Work folder\r\n")
    server_append(heron, "Work", w1, flags="(\\Flagged)")
    mb = Mbsync(heron, tmp_path)

    # 1. server -> local, byte-exact modulo CRLF
    mb.run()
    srv = {box: sorted(lf(b) for _, _, b in server_messages(heron, box))
           for box in ("INBOX", "Work")}
    assert len(srv["INBOX"]) == 2 and len(srv["Work"]) == 1
    assert mb.contents("INBOX") == srv["INBOX"]
    assert mb.contents("Work") == srv["Work"] == [lf(w1)]
    # \Flagged came down as the F maildir flag
    assert re.search(r":2,[A-Z]*F", mb.files("Work")[0]), mb.files("Work")

    # 2. a message added locally is uploaded (APPEND)
    up = message("written locally", b"local line\r\n")
    name = "1700000000.local1.host"
    with open(os.path.join(mb.folder("INBOX"), "new", name), "wb") as f:
        f.write(lf(up))
    with open(os.path.join(mb.folder("Work"), "cur", name + "2:2,S"),
              "wb") as f:
        f.write(lf(message("seen local work")))
    mb.run()
    inbox = server_messages(heron)
    assert len(inbox) == 3, inbox
    assert lf(strip_tuid(inbox[2][2])) == lf(up), inbox[2][2]
    assert inbox[2][0] == 3                 # next UID
    work = server_messages(heron, "Work")
    assert len(work) == 2, work
    assert "\\Seen" in work[1][1], work[1][1]
    assert lf(strip_tuid(work[1][2])) == lf(message("seen local work"))

    # 3. a flag changed locally (:2,S) reaches the server
    target = next(p for p in mb.files("INBOX")
                  if strip_tuid(lf(heronlib.read_file(p))).endswith(lf(m1)))
    base = os.path.basename(target).split(":2,")[0]
    os.rename(target, os.path.join(mb.folder("INBOX"), "cur",
                                   base + ":2,S"))
    mb.run()
    inbox = server_messages(heron)
    seen = [u for u, f, b in inbox if "\\Seen" in f]
    assert seen == [1], inbox

    # 4. a message deleted locally is expunged on the server
    target = next(p for p in mb.files("INBOX")
                  if strip_tuid(lf(heronlib.read_file(p))).endswith(lf(m2)))
    os.unlink(target)
    mb.run()
    inbox = server_messages(heron)
    assert [u for u, _, _ in inbox] == [1, 3], inbox
    assert not any(lf(b).endswith(lf(m2)) for _, _, b in inbox)

    # 5. the same on the server side: flag + expunge there reach local
    m = imap(heron)
    m.select("Work")
    m.store("1", "+FLAGS", "(\\Seen)")
    m.store("2", "+FLAGS", "(\\Deleted)")
    m.expunge()
    m.logout()
    mb.run()
    files = mb.files("Work")
    assert len(files) == 1, files
    assert re.search(r":2,[A-Z]*F[A-Z]*S", files[0]), files
    assert strip_tuid(lf(heronlib.read_file(files[0]))) == lf(w1)

    # 6. a second run changes nothing on either side
    before = (remote_state(heron), local_state(mb))
    mb.run()
    after = (remote_state(heron), local_state(mb))
    assert after == before


@needs_mbsync
def test_mbsync_new_mail_between_runs(heron, tmp_path):
    mb = Mbsync(heron, tmp_path)
    server_create(heron, "Work")
    mb.run()
    assert mb.files("INBOX") == [] and mb.files("Work") == []
    msgs = [heronlib.make_message("between runs %d" % i, [b"x" * i])
            for i in range(1, 6)]
    for m in msgs:
        deliver(heron, "alice", m)
    mb.run()
    got = mb.contents("INBOX")
    assert len(got) == 5
    for m in msgs:
        assert sum(1 for g in got if g.endswith(lf(m))) == 1
    before = local_state(mb)
    mb.run()
    assert local_state(mb) == before


# ---------------------------------------------------------------- offlineimap

OFFLINEIMAP_RC = """\
[general]
accounts = heron
metadata = {dir}/meta
ui = basic

[Account heron]
localrepository = local
remoterepository = remote

[Repository local]
type = Maildir
localfolders = {dir}/local

[Repository remote]
type = IMAP
remotehost = 127.0.0.1
remoteport = {port}
remoteuser = alice
remotepass = {pw}
ssl = no
starttls = no
timeout = 20
maxconnections = 2
"""


def run_offlineimap(rc, home):
    r = subprocess.run([OFFLINEIMAP, "-c", rc, "-o", "-u", "basic"],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       env=dict(os.environ, HOME=home), timeout=60,
                       cwd=home)
    log = r.stdout.decode(errors="replace")
    assert r.returncode == 0, log[-4000:]
    assert "ERROR" not in log, log[-4000:]
    return log


def strip_offlineimap(b):
    """offlineimap may add an X-OfflineIMAP header line when it can't
    learn the new UID otherwise (UIDPLUS makes that unnecessary)."""
    return re.sub(rb"(?m)^X-OfflineIMAP: [^\r\n]*\r?\n", b"", b, count=1)


@needs_offlineimap
def test_offlineimap_two_way(heron, tmp_path):
    m1, m2 = crlf(data_file("simple.eml")), crlf(data_file("dotstuff.eml"))
    deliver(heron, "alice", m1)
    deliver(heron, "alice", m2)
    server_create(heron, "Work")
    w1 = message("offline work")
    server_append(heron, "Work", w1, flags="(\\Seen)")
    d = str(tmp_path)
    os.makedirs(os.path.join(d, "local"))
    rc = os.path.join(d, "offlineimaprc")
    with open(rc, "w") as f:
        f.write(OFFLINEIMAP_RC.format(dir=d, port=heron.imap_port,
                                      pw=PASSWORDS["alice"]))
    run_offlineimap(rc, d)
    local = {box: sorted(strip_offlineimap(lf(heronlib.read_file(p)))
                         for p in heronlib.maildir_files(
                             os.path.join(d, "local", box)))
             for box in ("INBOX", "Work")}
    assert local["INBOX"] == sorted(lf(b) for _, _, b in
                                    server_messages(heron)), local
    assert local["Work"] == [lf(w1)], local
    wf = heronlib.maildir_files(os.path.join(d, "local", "Work"))
    assert re.search(r":2,[A-Z]*S", wf[0]), wf
    # local -> server: a new message and a flag
    up = message("offline upload", b"uploaded line\r\n")
    with open(os.path.join(d, "local", "INBOX", "new",
                           "1700000001.offl1.host"), "wb") as f:
        f.write(lf(up))
    target = next(p for p in heronlib.maildir_files(
        os.path.join(d, "local", "INBOX"))
        if lf(heronlib.read_file(p)).endswith(lf(m1)))
    base = os.path.basename(target).split(":2,")[0]
    os.rename(target, os.path.join(d, "local", "INBOX", "cur",
                                   base + ":2,FS"))
    run_offlineimap(rc, d)
    inbox = server_messages(heron)
    assert len(inbox) == 3, inbox
    assert strip_offlineimap(inbox[2][2]) == crlf(up), inbox[2][2]
    assert {"\\Seen", "\\Flagged"} <= inbox[0][1], inbox[0][1]
    # a second run changes nothing on the server
    before = remote_state(heron)
    run_offlineimap(rc, d)
    assert remote_state(heron) == before


# ---------------------------------------------------------------- fetchmail

def run_fetchmail(heron, user, port, tls, keep=False):
    return heronlib.run_fetchmail(
        heron, user, "IMAP", port,
        "%s fetchall %s" % ("keep" if keep else "nokeep", tls),
        home_tag="fmi")


FETCHMAIL_MODES = {
    "plain": ("imap", "sslproto ''"),
    "starttls": ("imap", "sslproto 'TLS1.2+' no sslcertck"),
    "imaps": ("imaps", "ssl no sslcertck"),
}


@needs_fetchmail
@pytest.mark.parametrize("mode", sorted(FETCHMAIL_MODES))
def test_fetchmail_imap(heron, mode):
    kind, tls = FETCHMAIL_MODES[mode]
    port = heron.imap_port if kind == "imap" else heron.imaps_port
    msgs = [crlf(data_file("simple.eml")), crlf(data_file("dotstuff.eml")),
            crlf(data_file("8bit.eml"))]
    for m in msgs:
        deliver(heron, "alice", m)
    r, content = run_fetchmail(heron, "alice", port, tls)
    log = r.stdout.decode(errors="replace")
    assert r.returncode == 0, log[-3000:]
    assert "3 messages" in log, log[-3000:]
    for m in msgs:
        assert lf(m) in content, (m[:100], content[-500:])
    for subj in (b"simple test message", b"dot stuffing", b"8bit body"):
        assert content.count(b"Subject: " + subj) == 1, subj
    # nokeep: flagged \Deleted and expunged on the server
    assert server_messages(heron) == []
    assert heronlib.maildir_files(heron.maildir("alice")) == []
    # a second run finds nothing (exit code 1 = no mail)
    r, _ = run_fetchmail(heron, "alice", port, tls)
    assert r.returncode == 1, r.stdout.decode(errors="replace")[-2000:]


@needs_fetchmail
def test_fetchmail_imap_keep_marks_seen(heron):
    msgs = [crlf(data_file("simple.eml")), crlf(data_file("8bit.eml"))]
    for m in msgs:
        deliver(heron, "bob", m)
    r, content = run_fetchmail(heron, "bob", heron.imap_port,
                               "sslproto ''", keep=True)
    assert r.returncode == 0, r.stdout.decode(errors="replace")[-3000:]
    for m in msgs:
        assert lf(m) in content
    left = server_messages(heron, user="bob")
    assert len(left) == 2
    assert all("\\Seen" in f for _, f, _ in left), left


@needs_fetchmail
def test_fetchmail_imap_big_message(heron):
    big = heronlib.big_message("fetchmail imap big", 2 * 1024 * 1024)
    deliver(heron, "bob", big)
    r, content = run_fetchmail(heron, "bob", heron.imap_port, "sslproto ''")
    assert r.returncode == 0, r.stdout.decode(errors="replace")[-2000:]
    assert lf(big) in content
