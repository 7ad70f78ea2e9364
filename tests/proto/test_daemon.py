"""The daemon as a whole: password file robustness, the auth failure
delay, worker restarts after a crash, SIGHUP reloads, SIGTERM."""

import os
import poplib
import signal
import socket
import subprocess
import sys
import time

import pytest

import heronlib
from heronlib import (PASSWORDS, LineClient, crlf, data_file, deliver,
                      pop3_open, wait_for)


def login_ok(port, user, pw):
    try:
        # A greeting of -ERR (e.g. a connection limit that has not yet
        # seen our previous connections close) is a "no", not an error.
        p = poplib.POP3("127.0.0.1", port, timeout=heronlib.IO_TIMEOUT)
    except poplib.error_proto:
        return False
    try:
        p.user(user)
        p.pass_(pw)
        p.stat()
        p.quit()
        return True
    except poplib.error_proto:
        p.close()
        return False


@pytest.mark.heron_passwd_extra(
    "this line has no colon",
    "eve:{NOSUCHSCHEME}abcdef",
    ":{PLAIN}emptyname",
    "mallory:",
    "trent:{SHA512-CRYPT}$6$broken",
    "\x00\x01binary:{PLAIN}x",
    "peggy:{PLAIN}peggy-pw:1000:1000::/home/peggy:/bin/sh:extra",
)
def test_malformed_passwd_lines(heron):
    text = open(heron.passwd).read()
    # The bad lines sit between alice and bob, dave (and carol).
    assert text.index("this line has no colon") < text.index("bob:")
    for user in ("alice", "bob", "dave"):
        assert login_ok(heron.pop3_port, user, PASSWORDS[user]), user
    assert login_ok(heron.pop3_port, "peggy", "peggy-pw")
    for user, pw in (("eve", "abcdef"), ("mallory", ""),
                     ("trent", "x"), ("", "emptyname")):
        c = pop3_open(heron.pop3_port)
        c.cmd("USER " + user) if user else c.cmd("USER")
        r = c.cmd("PASS " + pw) if pw else c.cmd("PASS")
        assert r.startswith(b"-ERR"), (user, r)
        c.close()


def test_auth_failure_delay(heron):
    """auth_fail_delay_msecs = 50 doubling up to 200 per IP: 50 + 100 +
    200 ms at least for three failures. Only lower bounds are asserted."""
    times = []
    for i in range(3):
        c = pop3_open(heron.pop3_port)
        assert c.cmd("USER alice").startswith(b"+OK")
        t0 = time.monotonic()
        r = c.cmd("PASS wrong-%d" % i)
        times.append(time.monotonic() - t0)
        assert r.startswith(b"-ERR [AUTH]"), r
        c.close()
    total = sum(times)
    assert times[0] >= 0.045, times
    assert max(times[1:]) >= 0.095, \
        "the delay did not grow past the first delay: %r" % times
    assert total >= 0.33, "3 failures took only %.3fs: %r" % (total, times)
    # A correct password still works (the delay does not lock out).
    assert login_ok(heron.pop3_port, "alice", PASSWORDS["alice"])


def test_auth_failure_delay_does_not_block_others(heron):
    """While one client waits out its delay, another session on the same
    worker set is served (the delay must not block a worker)."""
    slow = []
    for i in range(4):
        c = pop3_open(heron.pop3_port)
        c.cmd("USER alice")
        c.send(b"PASS wrong\r\n")
        slow.append(c)
    p = poplib.POP3("127.0.0.1", heron.pop3_port,
                    timeout=heronlib.IO_TIMEOUT)
    assert p.capa()
    p.user("bob")
    p.pass_(PASSWORDS["bob"])
    assert p.noop().startswith(b"+OK")
    p.quit()
    for c in slow:
        assert c.readline().startswith(b"-ERR")
        c.close()


def worker_of(heron, client):
    """The child process that serves this client connection."""
    local_port = client.sock.getsockname()[1]
    inode = heronlib.tcp_socket_inode(heron.pop3_port, local_port)
    assert inode, "server socket not found in /proc/net/tcp"
    pids = heronlib.pids_holding_inode(heron.children(), inode)
    assert len(pids) == 1, "expected one child holding the socket: %r" % pids
    return pids[0]


def test_killed_worker_is_restarted(heron):
    heron.allow_log_error(r"worker|signal|killed|exit|died|child")
    deliver(heron, "alice", crlf(data_file("simple.eml")))
    before = heron.children()
    assert len(before) >= 3, "expected auth + 2 workers: %r" % before
    c = pop3_open(heron.pop3_port, "bob")
    victim = worker_of(heron, c)
    os.kill(victim, signal.SIGKILL)
    # The victim's client sees its connection end.
    assert c.is_closed(5)
    c.close()

    def restarted():
        kids = heron.children()
        return victim not in kids and len(kids) == len(before)
    wait_for(restarted, 10, what="the master to replace the killed worker")
    deadline = time.monotonic() + 60
    for i in range(20):
        assert time.monotonic() < deadline, "20 logins took over 60 s"
        p = poplib.POP3("127.0.0.1", heron.pop3_port,
                        timeout=heronlib.IO_TIMEOUT)
        p.user("alice")
        p.pass_(PASSWORDS["alice"])
        assert p.stat()[0] == 1, i
        p.quit()
    # LMTP is served too.
    deliver(heron, "alice", crlf(data_file("8bit.eml")))


def test_killed_worker_releases_lock(heron):
    heron.allow_log_error(r"worker|signal|killed|exit|died|child")
    deliver(heron, "alice", crlf(data_file("simple.eml")))
    c = pop3_open(heron.pop3_port, "alice")
    victim = worker_of(heron, c)
    os.kill(victim, signal.SIGKILL)
    c.is_closed(5)
    c.close()
    # alice's mailbox is not stuck [IN-USE] forever.
    ok = wait_for(lambda: login_ok(heron.pop3_port, "alice",
                                   PASSWORDS["alice"]),
                  10, interval=0.3, what="alice can log in again")
    assert ok


def test_sighup_adds_user_and_keeps_sessions(heron):
    deliver(heron, "alice", crlf(data_file("simple.eml")))
    old = pop3_open(heron.pop3_port, "alice")
    assert old.cmd("STAT").startswith(b"+OK 1 ")
    lm = heronlib.LmtpRaw.tcp(heron.lmtp_port)
    lm.greet_lhlo()
    assert not login_ok(heron.pop3_port, "zed", "zed-pw")
    heron.passwd_lines.append("zed:{PLAIN}zed-pw")
    heron.write_passwd()
    master_before = heron.pid
    heron.hup()
    wait_for(lambda: login_ok(heron.pop3_port, "zed", "zed-pw"), 10,
             interval=0.2, what="new user zed to log in after SIGHUP")
    assert heron.proc.poll() is None and heron.pid == master_before
    # Existing sessions survive the reload.
    assert old.cmd("NOOP").startswith(b"+OK")
    r = old.cmd("RETR 1")
    assert r.startswith(b"+OK"), r
    old.read_multiline()
    assert old.cmd("QUIT").startswith(b"+OK")
    old.close()
    assert lm.cmd("MAIL FROM:<s@example.org>")[0] == 250
    assert lm.cmd("RCPT TO:<zed>")[0] == 250
    assert lm.cmd("DATA")[0] == 354
    lm.send_data(crlf(data_file("8bit.eml")))
    assert lm.reply()[0] == 250
    lm.close()
    assert login_ok(heron.pop3_port, "alice", PASSWORDS["alice"])


def test_sighup_removes_user(heron):
    assert login_ok(heron.pop3_port, "bob", PASSWORDS["bob"])
    heron.passwd_lines = [ln for ln in heron.passwd_lines
                          if not ln.startswith("bob:")]
    heron.write_passwd()
    heron.hup()
    wait_for(lambda: not login_ok(heron.pop3_port, "bob", PASSWORDS["bob"]),
             10, interval=0.3, what="bob to be refused after SIGHUP")
    assert login_ok(heron.pop3_port, "alice", PASSWORDS["alice"])


def test_sighup_with_broken_config_keeps_running(heron):
    heron.allow_log_error(r"config|reload|no_such_key|heron\.conf")
    with open(heron.conf, "a") as f:
        f.write("no_such_key = 1\n")
    heron.hup()
    time.sleep(0.5)
    assert heron.proc.poll() is None, "daemon died on a bad reload"
    assert login_ok(heron.pop3_port, "alice", PASSWORDS["alice"])
    # Restore so that teardown is clean.
    heron.write_config()


def test_sigterm_with_open_sessions(heron):
    c1 = pop3_open(heron.pop3_port, "alice")
    c2 = pop3_open(heron.pop3_port)
    lm = heronlib.LmtpRaw.tcp(heron.lmtp_port)
    lm.greet_lhlo()
    heron.stop()   # bounded; fails if the daemon or a child lingers
    for c in (c1, c2, lm.c):
        assert c.is_closed(5)
        c.close()
    heron.start()
    assert login_ok(heron.pop3_port, "alice", PASSWORDS["alice"])


def test_many_concurrent_sessions(heron):
    deliver(heron, "bob", crlf(data_file("simple.eml")))
    conns = []
    for i in range(30):
        c = LineClient.connect(heron.pop3_port)
        conns.append(c)
    for c in conns:
        assert c.readline().startswith(b"+OK")
    for c in conns:
        c.send(b"CAPA\r\n")
    for c in conns:
        assert c.readline().startswith(b"+OK")
        c.read_multiline()
    for c in conns:
        c.close()
    assert login_ok(heron.pop3_port, "bob", PASSWORDS["bob"])


# The limit is counted per worker (src/net/worker.c), so one worker here.
@pytest.mark.heron_conf(max_conns_per_ip="5", workers="1")
def test_max_conns_per_ip(heron):
    def open_five():
        # The start-up probes' connections may not be counted down yet.
        cs = []
        try:
            for _ in range(5):
                cs.append(pop3_open(heron.pop3_port))
            return cs
        except AssertionError:
            for c in cs:
                c.close()
            return None
    conns = wait_for(open_five, 5, interval=0.2, what="5 POP3 greetings")
    extra = LineClient.connect(heron.pop3_port)
    try:
        line = extra.readline(5)
        refused = line.startswith(b"-ERR")
    except (EOFError, ConnectionResetError, socket.timeout):
        refused = True
    assert refused, "6th connection from one IP was greeted: %r" % line
    extra.close()
    for c in conns:
        c.close()
    wait_for(lambda: login_ok(heron.pop3_port, "alice", PASSWORDS["alice"]),
             5, interval=0.2, what="connections to be counted down")


@pytest.mark.heron_conf(idle_timeout="2")
def test_idle_timeout(heron):
    c = pop3_open(heron.pop3_port, "alice")
    assert c.is_closed(10), "idle session not closed"
    c.close()
    assert login_ok(heron.pop3_port, "alice", PASSWORDS["alice"])


@pytest.mark.heron_conf(max_conns_per_ip="3", workers="1")
def test_max_conns_per_ip_lmtp_reply(heron):
    def open_three():
        # The start-up probes' connections may not be counted down yet.
        cs = [heronlib.LmtpRaw.tcp(heron.lmtp_port) for _ in range(3)]
        if all(lm.reply()[0] == 220 for lm in cs):
            return cs
        for lm in cs:
            lm.close()
        return None
    conns = wait_for(open_three, 5, interval=0.2, what="3 LMTP greetings")
    extra = LineClient.connect(heron.lmtp_port)
    try:
        line = extra.readline(5)
    except (EOFError, ConnectionResetError, socket.timeout):
        line = None
    # RFC 5321 3.8 / 4.2.3: a refusing server answers 421, then closes.
    assert line is None or line.startswith(b"421"), \
        "LMTP refusal is not an SMTP reply: %r" % line
    extra.close()
    for lm in conns:
        lm.close()


def test_log_has_no_unexpected_warnings(heron):
    """STYLE.md 10: a normal run (logins, delivery, RETR, shutdown) logs no
    warnings: neither Heron's "warn" lines nor libevent's "[warn]"."""
    deliver(heron, "alice", crlf(data_file("simple.eml")))
    assert login_ok(heron.pop3_port, "alice", PASSWORDS["alice"])
    lm = heronlib.LmtpRaw.unix(heron.lmtp_sock)
    lm.greet_lhlo()
    lm.cmd("QUIT")
    lm.close()
    heron.stop()
    warn = [ln for ln in heron.log_text().splitlines()
            if ln.startswith("[warn]") or ln.startswith("[err]")
            or " warn [" in ln]
    assert not warn, "\n".join(warn[:10])
    heron.start()   # for the fixture's own stop


# ---------------------------------------------------------------- passwd_file

def _warnings(heron, what):
    return [ln for ln in heron.log_text().splitlines()
            if " warn [master]" in ln and what in ln]


def _reload(heron):
    n = heron.log_text().count("reloading:")
    heron.hup()
    wait_for(lambda: heron.log_text().count("reloading:") > n, 10,
             what="reload")


def test_passwd_file_permission_warnings(heron):
    """A password file others may read is logged at start and reload,
    like Dovecot does; 0600 and 0640 with root's group are quiet."""
    assert _warnings(heron, "passwd_file") == []
    heron.stop()
    os.chmod(heron.passwd, 0o644)
    heron.start()
    assert len(_warnings(heron, "readable by all users")) == 1
    os.chmod(heron.passwd, 0o640)
    os.chown(heron.passwd, -1, 0)
    _reload(heron)
    assert len(_warnings(heron, "passwd_file")) == 1
    os.chown(heron.passwd, -1, 65534)
    _reload(heron)
    assert len(_warnings(heron, "readable by group")) == 1
    os.chown(heron.passwd, -1, 0)
    os.chmod(heron.passwd, 0o600)
    _reload(heron)
    assert len(_warnings(heron, "passwd_file")) == 2
    assert login_ok(heron.pop3_port, "alice", PASSWORDS["alice"])


# ---------------------------------------------------------------- subreaper

# Runs heron under a child subreaper (as systemd or a container's init
# would be) with HERON_FAULT killing the master right after its Nth fork,
# then counts the heron processes reparented to the subreaper that are
# still running after a few seconds (and kills them).
SUBREAPER = r"""
import ctypes, os, signal, subprocess, sys, time
libc = ctypes.CDLL(None, use_errno=True)
assert libc.prctl(36, 1, 0, 0, 0) == 0  # PR_SET_CHILD_SUBREAPER
heron, conf, log, nth = sys.argv[1:5]
env = dict(os.environ, HERON_FAULT="master-forked=kill@" + nth)
with open(log, "ab") as f:
    p = subprocess.Popen([heron, "serve", "-c", conf], env=env,
                         stdout=f, stderr=subprocess.STDOUT)
p.wait()
deadline = time.monotonic() + 5
while time.monotonic() < deadline:
    try:
        pid, _ = os.waitpid(-1, os.WNOHANG)
    except ChildProcessError:
        break
    if pid == 0:
        time.sleep(0.05)
left = []
for t in os.listdir("/proc/self/task"):
    with open("/proc/self/task/%s/children" % t) as f:
        left += [int(x) for x in f.read().split()]
for pid in left:
    os.kill(pid, signal.SIGKILL)
print("master=%d orphans=%d" % (p.returncode, len(left)))
"""


def _fault_build(heron_bin):
    r = subprocess.run([heron_bin, "version"], stdout=subprocess.PIPE,
                       timeout=30)
    return b"fault-injection" in r.stdout


@pytest.mark.parametrize("nth", ["1", "2"])
def test_children_exit_when_master_dies_under_subreaper(heron_factory,
                                                        nth):
    """The master dies right after forking the auth process (1) or a
    worker (2), possibly before the child set PR_SET_PDEATHSIG. Under a
    subreaper the orphan's new parent is not pid 1: it must still notice
    (getppid() != the master's pid) and exit."""
    h = heron_factory(start=False)
    if not _fault_build(h.bin):
        pytest.skip("needs a fault-injection build")
    r = subprocess.run([sys.executable, "-c", SUBREAPER, h.bin, h.conf,
                        h.log_path, nth], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=60)
    out = r.stdout.decode()
    assert r.returncode == 0, out
    assert "master=-9 orphans=0" in out, out + h.log_text()
