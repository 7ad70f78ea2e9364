"""Real POP3 clients against the daemon: curl (pop3://, pop3s://) and
fetchmail (plain, STLS, implicit TLS) delivering into a file via --mda."""

import os
import poplib
import shutil
import subprocess
import tempfile

import pytest

import heronlib
from heronlib import PASSWORDS, crlf, data_file, deliver, lf


def curl(args):
    return subprocess.run(["curl", "-s", "-S", "--max-time", "10"] + args,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          timeout=30)


needs_curl = pytest.mark.skipif(shutil.which("curl") is None,
                                reason="curl not installed")
FETCHMAIL = "/usr/bin/fetchmail"
needs_fetchmail = pytest.mark.skipif(not os.access(FETCHMAIL, os.X_OK),
                                     reason="fetchmail not installed")


@needs_curl
def test_curl_pop3_retr(heron):
    msg = crlf(data_file("simple.eml"))
    deliver(heron, "alice", msg)
    r = curl(["pop3://127.0.0.1:%d/1" % heron.pop3_port,
              "-u", "alice:" + PASSWORDS["alice"]])
    assert r.returncode == 0, r.stderr
    assert r.stdout.endswith(msg), r.stdout[-300:]


@needs_curl
def test_curl_pop3_list(heron):
    deliver(heron, "bob", crlf(data_file("simple.eml")))
    deliver(heron, "bob", crlf(data_file("dotstuff.eml")))
    r = curl(["pop3://127.0.0.1:%d/" % heron.pop3_port,
              "-u", "bob:" + PASSWORDS["bob"]])
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert [ln.split()[0] for ln in lines] == [b"1", b"2"], lines


@needs_curl
def test_curl_pop3_dotstuffed(heron):
    msg = crlf(data_file("dotstuff.eml"))
    deliver(heron, "alice", msg)
    r = curl(["pop3://127.0.0.1:%d/1" % heron.pop3_port,
              "-u", "alice:" + PASSWORDS["alice"]])
    assert r.returncode == 0, r.stderr
    assert r.stdout.endswith(msg), r.stdout[-300:]


@needs_curl
def test_curl_pop3s(heron):
    msg = crlf(data_file("8bit.eml"))
    deliver(heron, "alice", msg)
    r = curl(["-k", "pop3s://127.0.0.1:%d/1" % heron.pop3s_port,
              "-u", "alice:" + PASSWORDS["alice"]])
    assert r.returncode == 0, r.stderr
    assert r.stdout.endswith(msg), r.stdout[-300:]


@needs_curl
def test_curl_pop3_stls_required(heron):
    msg = crlf(data_file("simple.eml"))
    deliver(heron, "alice", msg)
    r = curl(["-k", "--ssl-reqd", "pop3://127.0.0.1:%d/1" % heron.pop3_port,
              "-u", "alice:" + PASSWORDS["alice"]])
    assert r.returncode == 0, r.stderr
    assert r.stdout.endswith(msg), r.stdout[-300:]


@needs_curl
def test_curl_wrong_password(heron):
    r = curl(["pop3://127.0.0.1:%d/" % heron.pop3_port,
              "-u", "alice:wrong"])
    assert r.returncode == 67, (r.returncode, r.stderr)  # login denied


def run_fetchmail(heron, user, options):
    return heronlib.run_fetchmail(
        heron, user, "POP3", options.get("port", heron.pop3_port),
        "nokeep " + options["tls"])


FETCHMAIL_MODES = {
    "plain": {"tls": "sslproto ''"},
    "stls": {"tls": "sslproto 'TLS1.2+' no sslcertck"},
    "pop3s": {"tls": "ssl no sslcertck", "pop3s": True},
}


@needs_fetchmail
@pytest.mark.parametrize("mode", sorted(FETCHMAIL_MODES))
def test_fetchmail(heron, mode):
    opts = dict(FETCHMAIL_MODES[mode])
    if opts.get("pop3s"):
        opts["port"] = heron.pop3s_port
    msgs = [crlf(data_file("simple.eml")), crlf(data_file("dotstuff.eml")),
            crlf(data_file("8bit.eml"))]
    for m in msgs:
        deliver(heron, "alice", m)
    r, content = run_fetchmail(heron, "alice", opts)
    log = r.stdout.decode(errors="replace")
    assert r.returncode == 0, log[-3000:]
    assert "3 messages" in log, log[-3000:]
    for m in msgs:
        body = lf(m).split(b"\n\n", 1)[1]
        assert body in content, (body[:100], content[-500:])
    for subj in (b"simple test message", b"dot stuffing", b"8bit body"):
        assert content.count(b"Subject: " + subj) == 1, subj
    # --nokeep: the messages are gone from the server.
    p = poplib.POP3("127.0.0.1", heron.pop3_port,
                    timeout=heronlib.IO_TIMEOUT)
    p.user("alice")
    p.pass_(PASSWORDS["alice"])
    assert p.stat() == (0, 0)
    p.quit()
    assert heronlib.maildir_files(heron.maildir("alice")) == []
    # A second run finds nothing (fetchmail exit code 1 = no mail).
    r, _ = run_fetchmail(heron, "alice", opts)
    assert r.returncode == 1, r.stdout.decode(errors="replace")[-2000:]


@needs_fetchmail
def test_fetchmail_big_message(heron):
    big = heronlib.big_message("fetchmail big", 2 * 1024 * 1024)
    deliver(heron, "bob", big)
    r, content = run_fetchmail(heron, "bob", FETCHMAIL_MODES["plain"])
    assert r.returncode == 0, r.stdout.decode(errors="replace")[-2000:]
    assert lf(big).split(b"\n\n", 1)[1] in content


# ---------------------------------------------------------------- getmail

needs_getmail = pytest.mark.skipif(shutil.which("getmail") is None,
                                   reason="getmail (getmail6) not installed")


@needs_getmail
def test_getmail_pop3_into_maildir(heron):
    """getmail6 downloads over POP3 into a Maildir, deletes on the
    server, and a second run finds nothing new."""
    msgs = [crlf(data_file("simple.eml")), crlf(data_file("dotstuff.eml"))]
    for m in msgs:
        deliver(heron, "alice", m)
    # Its own directory: getmail's delivery runs as nobody when we are
    # root, and the daemon's directory is private (0700).
    gdir = tempfile.mkdtemp(prefix="heron-getmail")
    os.chmod(gdir, 0o755)
    try:
        _getmail_run(heron, gdir, msgs)
    finally:
        shutil.rmtree(gdir, ignore_errors=True)


def _getmail_run(heron, gdir, msgs):
    dest = os.path.join(gdir, "Maildir")
    for sub in ("tmp", "new", "cur"):
        os.makedirs(os.path.join(dest, sub), exist_ok=True)
    user_line = ""
    if os.geteuid() == 0:
        # getmail refuses to deliver as root: it drops to nobody.
        import pwd
        nobody = pwd.getpwnam("nobody")
        for root, dirs, _ in os.walk(dest):
            os.chown(root, nobody.pw_uid, nobody.pw_gid)
        user_line = "user = nobody\n"
    rc = os.path.join(gdir, "getmailrc")
    with open(rc, "w") as f:
        f.write("[retriever]\ntype = SimplePOP3Retriever\n"
                "server = 127.0.0.1\nport = %d\nusername = alice\n"
                "password = %s\n\n[destination]\ntype = Maildir\n"
                "path = %s/\n%s\n[options]\ndelete = true\n"
                "read_all = false\nverbose = 1\n"
                % (heron.pop3_port, PASSWORDS["alice"], dest, user_line))
    os.chmod(rc, 0o600)
    cmd = ["getmail", "--getmaildir", gdir, "--rcfile", rc]
    r = subprocess.run(cmd, capture_output=True, timeout=60)
    out = (r.stdout + r.stderr).decode(errors="replace")
    assert r.returncode == 0, out[-3000:]
    got = [open(p, "rb").read() for p in
           heronlib.maildir_files(dest, ("new", "cur"))]
    assert len(got) == 2, out[-2000:]
    for m in msgs:
        body = lf(m).split(b"\n\n", 1)[1]
        assert any(body in g for g in got), body[:80]
    assert heronlib.maildir_files(heron.maildir("alice")) == []
    r = subprocess.run(cmd, capture_output=True, timeout=60)
    assert r.returncode == 0
    assert len(heronlib.maildir_files(dest, ("new", "cur"))) == 2
