"""test_security.py: the security review of issue 4 item 6, as tests
against the real daemon.

- STARTTLS / STLS / LMTP STARTTLS drop plaintext pipelined after the
  command (the USENIX 2021 command-injection class).
- Mailbox names (CREATE, RENAME, SELECT, APPEND) and user names (LOGIN,
  LMTP RCPT, the passwd file itself) never reach a path outside the user's
  Maildir; "%" in names is not expanded.
- No cross-user data: one message delivered to two users in one
  transaction keeps independent flags; folders and cached logins stay
  per user (one worker, so every cache is shared by both sessions).
- TLS 1.0 and 1.1 are refused by default.
- Workers: NoNewPrivs set (sandbox = yes); when run as root with `user`,
  workers run as that user and the passwd file is not readable by it;
  with Landlock, a worker can't read the passwd file even as root.
Limits: loopback only; some checks need root or Landlock and skip
otherwise.
"""

import imaplib
import os
import pwd
import re
import socket
import ssl
import stat

import pytest

import heronlib
from heronlib import PASSWORDS, LineClient, wait_for


# ---------------------------------------------------------------- helpers

def imap_open(h, user=None):
    c = LineClient.connect(h.imap_port)
    assert c.readline().startswith(b"* OK")
    if user:
        r = imap_cmd(c, 'LOGIN %s "%s"' % (user, PASSWORDS[user]))[-1]
        assert b" OK" in r, r
    return c


_tag = [0]


def imap_cmd(c, text, timeout=heronlib.IO_TIMEOUT):
    """Sends one command; returns all lines up to the tagged reply."""
    _tag[0] += 1
    t = b"S%d" % _tag[0]
    if isinstance(text, str):
        text = text.encode()
    c.send(t + b" " + text + b"\r\n")
    lines = []
    while True:
        line = c.readline(timeout)
        lines.append(line)
        if line.startswith(t + b" "):
            return lines


def tree(path):
    """Every path below path (relative), for before/after comparisons."""
    out = set()
    for root, dirs, files in os.walk(path):
        for n in dirs + files:
            out.add(os.path.relpath(os.path.join(root, n), path))
    return out


def outside_changes(h, before, user="alice"):
    """New paths in the daemon's directory that are not below the
    user's Maildir (or the daemon's own run/ and log)."""
    md = os.path.relpath(h.maildir(user), h.dir)
    new = tree(h.dir) - before
    return sorted(p for p in new if not p.startswith(md + os.sep) and
                  p != md and not p.startswith("run") and
                  not p.startswith("heron.log"))


def worker_pids(h):
    """Workers: children of the master other than the auth process
    (the auth process is the oldest child)."""
    kids = h.children()
    return kids[1:] if len(kids) > 1 else kids


def proc_status(pid, key):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(key + ":"):
                return line.split()[1:]
    return None


# ---------------------------------------------------------------- STARTTLS

def test_imap_starttls_drops_pipelined_plaintext(heron):
    c = imap_open(heron)
    # One packet: STARTTLS plus an injected command.
    c.send(b"s1 STARTTLS\r\ns2 CAPABILITY\r\n")
    r = c.readline()
    assert r.startswith(b"s1 OK"), r
    c.starttls()
    # The injected command must not be answered after the handshake.
    assert c.pending(0.5) == b""
    c.send(b"s3 NOOP\r\n")
    r = c.readline()
    assert r.startswith(b"s3 OK"), r


def test_pop3_stls_drops_pipelined_plaintext(heron):
    c = heronlib.pop3_open(heron.pop3_port)
    c.send(b"STLS\r\nUSER alice\r\n")
    r = c.readline()
    assert r.startswith(b"+OK"), r
    c.starttls()
    assert c.pending(0.5) == b""
    # USER was dropped: PASS now is out of sequence.
    r = c.cmd("PASS " + PASSWORDS["alice"])
    assert r.startswith(b"-ERR"), r
    c.cmd("QUIT")


def test_lmtp_starttls_drops_pipelined_plaintext(heron):
    lm = heronlib.LmtpRaw.tcp(heron.lmtp_port)
    texts = lm.greet_lhlo()
    if "STARTTLS" not in texts:
        pytest.skip("LMTP without STARTTLS")
    lm.c.send(b"STARTTLS\r\nMAIL FROM:<evil@example.org>\r\n")
    code, _ = lm.reply()
    assert code == 220
    lm.c.starttls()
    assert lm.c.pending(0.5) == b""
    # The injected MAIL was dropped: after LHLO a new MAIL is accepted.
    code, _ = lm.cmd("LHLO client.test")
    assert code == 250
    code, _ = lm.cmd("MAIL FROM:<ok@example.org>")
    assert code == 250
    lm.close()


# ---------------------------------------------------------------- names

BAD_MAILBOXES = ["..", "../x", "/abs", "a/../../b", "../../../../tmp/pwn",
                 "x/..", ".", "./.", "..%2f..", "%u", "%d/%n", "a%",
                 "~root", "INBOX/../../bob"]


def test_mailbox_names_stay_in_the_maildir(heron):
    heronlib.deliver(heron, "bob", heronlib.make_message("bob secret",
                                                          [b"secret"]))
    heronlib.deliver(heron, "alice", heronlib.make_message("hi", [b"x"]))
    c = imap_open(heron, "alice")
    before = tree(heron.dir)
    for name in BAD_MAILBOXES:
        quoted = '"%s"' % name
        imap_cmd(c, "CREATE " + quoted)
        imap_cmd(c, "RENAME %s %s" % (quoted, '"ren' + name + '"'))
        imap_cmd(c, "RENAME INBOX/x " + quoted)
        lines = imap_cmd(c, "SELECT " + quoted)
        # SELECT of anything that could be bob's Maildir shows nothing
        # of bob's: if it is OK it must be a folder of alice's.
        assert not any(b"bob secret" in x for x in lines)
        msg = b"Subject: app\r\n\r\nappended\r\n"
        c.send(b"A1 APPEND %s {%d+}\r\n" % (quoted.encode(), len(msg)) +
               msg + b"\r\n")
        while not c.readline().startswith(b"A1 "):
            pass
    assert outside_changes(heron, before) == []
    # bob's Maildir is untouched by alice's attempts
    assert len(heronlib.maildir_files(heron.maildir("bob"))) == 1


def test_mailbox_name_nul_and_very_long(heron):
    c = imap_open(heron, "alice")
    before = tree(heron.dir)
    # NUL inside a literal name
    name = b"a\x00/../../x"
    c.send(b"S1 CREATE {%d}\r\n" % len(name))
    assert c.readline().startswith(b"+")
    c.send(name + b"\r\n")
    r = c.readline()
    assert r.startswith(b"S1 NO") or r.startswith(b"S1 BAD"), r
    # 10 KB names: refused, the session continues
    long_name = "x" * 10240
    r = imap_cmd(c, 'CREATE "%s"' % long_name)[-1]
    assert not r.startswith(b"S") or b" OK" not in r, r
    r = imap_cmd(c, 'SELECT "%s"' % ("../" * 3000))[-1]
    assert b" OK" not in r, r
    r = imap_cmd(c, "NOOP")[-1]
    assert b" OK" in r
    assert outside_changes(heron, before) == []


def test_list_percent_and_star_do_not_escape(heron):
    c = imap_open(heron, "alice")
    imap_cmd(c, 'CREATE "mine"')
    for pattern in ['"../*"', '"/%"', '"*"', '"%/../*"', '"../bob/*"']:
        lines = imap_cmd(c, 'LIST "" %s' % pattern)
        assert lines[-1].split()[1] in (b"OK", b"NO", b"BAD")
        for x in lines[:-1]:
            assert b"bob" not in x and b".." not in x, x


BAD_USERS = [b"../x", b"a/b", b"%u", b"..", b".", b"../../etc/passwd",
             b"alice/../bob", b"x" * 5000]


def test_login_user_names_cant_reach_paths(heron):
    before = tree(heron.dir)
    c = imap_open(heron)
    for user in BAD_USERS:
        c.send(b"L1 LOGIN {%d+}\r\n%s pw\r\n" % (len(user), user))
        r = c.readline()
        while not r.startswith(b"L1 ") and not r.startswith(b"* BYE"):
            r = c.readline()
        assert not r.startswith(b"L1 OK"), (user, r)
        c.close()
        c = imap_open(heron)
    # NUL in a user name
    c.send(b"L2 LOGIN {7+}\r\nalice\x00x pw\r\n")
    r = c.readline()
    assert not r.startswith(b"L2 OK"), r
    c.close()
    # LMTP recipients
    lm = heronlib.LmtpRaw.tcp(heron.lmtp_port)
    lm.greet_lhlo()
    assert lm.cmd("MAIL FROM:<a@example.org>")[0] == 250
    for user in BAD_USERS[:-1]:
        code, _ = lm.cmd("RCPT TO:<%s>" % user.decode())
        assert code >= 500 or code in (450, 451, 452), (user, code)
    lm.close()
    assert outside_changes(heron, before) == []


@pytest.mark.heron_passwd_extra("..@example.org:{PLAIN}dots-pw",
                                "x@.:{PLAIN}dots-pw",
                                ".@example.org:{PLAIN}dots-pw",
                                "a/b@example.org:{PLAIN}dots-pw")
def test_passwd_users_with_dot_parts_refused(heron_factory, request,
                                             passwd_lines):
    """Users that exist in the passwd file but whose %n or %d would be
    "." or ".." (or hold '/') get no Maildir at all."""
    m = request.node.get_closest_marker("heron_passwd_extra")
    h = heron_factory(start=False, passwd_extra=m.args)
    h.settings["mail_path"] = os.path.join(h.mail_root, "%d", "%n",
                                           "Maildir")
    h.write_config()
    h.allow_log_error(r"store_user_open|mail path|unsafe|refus")
    h.start()
    before = tree(h.dir)
    for user in m.args:
        name = user.split(":")[0].encode()
        c = imap_open(h)
        r = imap_cmd(c, b'LOGIN {%d+}\r\n%s "dots-pw"' % (len(name), name))
        if r[-1].split()[1] == b"OK":
            # logged in: any mailbox access must fail, nothing created
            r2 = imap_cmd(c, "SELECT INBOX")[-1]
            assert b" OK" not in r2, (name, r2)
        c.close()
    new = tree(h.dir) - before
    bad = [p for p in new if not p.startswith("run") and
           p != "heron.log"]
    assert bad == [], bad


# ---------------------------------------------------------------- cross-user

@pytest.mark.heron_conf(workers="1")
def test_same_message_two_users_flags_independent(heron):
    msg = heronlib.make_message("shared bytes", [b"same body"])
    heronlib.deliver(heron, ["alice", "bob"], msg)
    a = imap_open(heron, "alice")
    b = imap_open(heron, "bob")
    imap_cmd(a, "SELECT INBOX")
    imap_cmd(b, "SELECT INBOX")
    imap_cmd(a, r"STORE 1 +FLAGS (\Flagged \Deleted $Secret)")
    imap_cmd(a, "EXPUNGE")
    lines = imap_cmd(b, "FETCH 1 (FLAGS BODY.PEEK[])")
    joined = b"\n".join(lines)
    assert b"same body" in joined
    assert b"\\Flagged" not in joined and b"$Secret" not in joined
    assert b"\\Deleted" not in joined
    # alice's folders are not bob's
    imap_cmd(a, 'CREATE "alice-only"')
    lines = imap_cmd(b, 'LIST "" "*"')
    assert not any(b"alice-only" in x for x in lines)
    r = imap_cmd(b, 'SELECT "alice-only"')[-1]
    assert b" OK" not in r


@pytest.mark.heron_conf(workers="1")
def test_cached_login_is_per_user_and_password(heron):
    c = imap_open(heron, "alice")      # fills the auth cache
    c.close()
    for user, pw in (("alice", "wrong"), ("bob", PASSWORDS["alice"]),
                     ("ALICE", PASSWORDS["alice"]),
                     ("alice ", PASSWORDS["alice"])):
        c = imap_open(heron)
        r = imap_cmd(c, 'LOGIN "%s" "%s"' % (user, pw))[-1]
        assert b" OK" not in r, (user, r)
        c.close()
    c = imap_open(heron, "alice")
    c.close()


# ---------------------------------------------------------------- TLS

def _old_tls_context(version):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    try:
        ctx.minimum_version = version
        ctx.maximum_version = version
        ctx.set_ciphers("ALL:@SECLEVEL=0")
    except (ValueError, ssl.SSLError):
        return None
    return ctx


def _handshake(port, ctx):
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        try:
            with ctx.wrap_socket(s, server_hostname="localhost") as t:
                return t.version()
        except (ssl.SSLError, ConnectionResetError, EOFError, OSError):
            return None


@pytest.mark.parametrize("version", ["TLSv1", "TLSv1_1"])
def test_old_tls_refused_by_default(heron_factory, version):
    v = getattr(ssl.TLSVersion, version)
    ctx = _old_tls_context(v)
    if ctx is None:
        pytest.skip("this OpenSSL cannot even offer %s" % version)
    h = heron_factory()
    assert _handshake(h.imaps_port, ctx) is None
    assert _handshake(h.pop3s_port, ctx) is None
    ok = _old_tls_context(ssl.TLSVersion.TLSv1_2)
    assert _handshake(h.imaps_port, ok) == "TLSv1.2"
    # Control: the client really can speak the old version when the
    # server allows it (else the refusal above proves nothing).
    h2 = heron_factory({"tls_allow_tls10": "yes",
                        "tls_ciphers": "ALL:@SECLEVEL=0"})
    got = _handshake(h2.imaps_port, _old_tls_context(v))
    if got is None:
        pytest.skip("client-side %s unavailable (OpenSSL policy)" % version)
    assert got == version.replace("_", ".")


def test_tls12_and_13_work(heron):
    for v in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
        ctx = _old_tls_context(v)
        assert _handshake(heron.imaps_port, ctx) is not None


# ---------------------------------------------------------------- workers

def test_workers_have_no_new_privs(heron):
    # The master's ports accept before the workers have set up their
    # sandbox: wait (bounded) until every worker reports it.
    def all_set():
        pids = worker_pids(heron)
        return pids and all(proc_status(pid, "NoNewPrivs") == ["1"]
                            for pid in pids)
    heronlib.wait_for(all_set, 10, what="workers with no_new_privs")


@pytest.mark.heron_conf(sandbox="no")
def test_sandbox_off_leaves_no_new_privs_unset(heron):
    for pid in worker_pids(heron):
        assert proc_status(pid, "NoNewPrivs") == ["0"], pid


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root")
def test_workers_run_as_user_without_passwd_access(heron_factory):
    try:
        nobody = pwd.getpwnam("nobody")
    except KeyError:
        pytest.skip("no user nobody")
    h = heron_factory({"user": "nobody"}, start=False)
    os.chmod(h.dir, 0o755)
    os.makedirs(h.mail_root)
    os.chown(h.mail_root, nobody.pw_uid, nobody.pw_gid)
    os.chmod(h.passwd, 0o600)
    h.start()
    heronlib.deliver(h, "alice", heronlib.make_message("u", [b"x"]))
    c = imap_open(h, "alice")
    imap_cmd(c, "SELECT INBOX")
    c.close()
    pids = worker_pids(h)
    auth = h.children()[0]
    assert proc_status(auth, "Uid")[0] == "0"
    st = os.stat(h.passwd)
    for pid in pids:
        uids = proc_status(pid, "Uid")
        gids = proc_status(pid, "Gid")
        groups = proc_status(pid, "Groups") or []
        assert set(uids) == {str(nobody.pw_uid)}, (pid, uids)
        assert set(gids) == {str(nobody.pw_gid)}, (pid, gids)
        # DAC: nobody may not read the passwd file
        readable = (st.st_uid == nobody.pw_uid and st.st_mode & stat.S_IRUSR
                    ) or ((str(st.st_gid) in gids + groups) and
                          st.st_mode & stat.S_IRGRP) or \
            st.st_mode & stat.S_IROTH
        assert not readable, oct(st.st_mode)


def _landlock_abi():
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    r = libc.syscall(444, None, ctypes.c_size_t(0), ctypes.c_uint(1))
    return r if r > 0 else 0


@pytest.mark.skipif(_landlock_abi() == 0, reason="no Landlock")
def test_sandboxed_worker_cannot_read_passwd_via_symlink(heron):
    """A message file that is a symlink to the passwd file (a local user
    can plant one in their own Maildir): the sandboxed worker can't open
    it, whatever its uid."""
    heron.allow_log_error(r".")
    heronlib.deliver(heron, "alice", heronlib.make_message("ok", [b"x"]))
    cur = os.path.join(heron.maildir("alice"), "cur")
    os.symlink(heron.passwd, os.path.join(cur, "1700000000.evil.host:2,"))
    secret = PASSWORDS["bob"].encode()
    c = imap_open(heron, "alice")
    lines = imap_cmd(c, "SELECT INBOX")
    lines += imap_cmd(c, "FETCH 1:* (BODY.PEEK[])")
    lines += imap_cmd(c, "SEARCH TEXT bob")
    c.close()
    assert not any(secret in x for x in lines)
    assert not any(b"{PLAIN}" in x for x in lines)
