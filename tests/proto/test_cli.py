"""The heron command line: `heron deliver`, `heron check-config`,
`heron passwd`."""

import os
import poplib
import re
import subprocess
import warnings

import pytest

import heronlib
from heronlib import PASSWORDS, crlf, data_file, lf, maildir_files, read_file

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import crypt


# ---------------------------------------------------------------- deliver

def test_deliver_ok(heron):
    msg = data_file("simple.eml")
    r = heron.run_cli(["deliver", "-c", heron.conf, "-u", "alice",
                       "-f", "sender@example.org"], input=msg)
    assert r.returncode == 0, r.stderr
    files = maildir_files(heron.maildir("alice"))
    assert len(files) == 1
    stored = read_file(files[0])
    trace = heronlib.split_trace(stored, msg)
    assert trace[0].startswith(b"Return-Path: <sender@example.org>"), trace
    assert any(t.startswith(b"Delivered-To:") and b"alice" in t
               for t in trace), trace
    # And POP3 serves it.
    p = poplib.POP3("127.0.0.1", heron.pop3_port,
                    timeout=heronlib.IO_TIMEOUT)
    p.user("alice")
    p.pass_(PASSWORDS["alice"])
    _, lines, _ = p.retr(1)
    assert (b"\r\n".join(lines) + b"\r\n").endswith(crlf(msg))
    p.quit()


def test_deliver_crlf_input_and_no_sender(heron):
    msg = crlf(data_file("8bit.eml"))
    r = heron.run_cli(["deliver", "-c", heron.conf, "-u", "bob"], input=msg)
    assert r.returncode == 0, r.stderr
    stored = read_file(maildir_files(heron.maildir("bob"))[0])
    assert b"\r" not in stored
    heronlib.split_trace(stored, lf(msg))


def test_deliver_mbox_from_line_dropped(heron):
    msg = data_file("mboxfrom.eml")
    r = heron.run_cli(["deliver", "-c", heron.conf, "-u", "alice"],
                      input=msg)
    assert r.returncode == 0, r.stderr
    stored = read_file(maildir_files(heron.maildir("alice"))[0])
    assert b"From sender@example.org Mon" not in stored
    heronlib.split_trace(stored, msg.split(b"\n", 1)[1])


def test_deliver_unknown_user(heron):
    r = heron.run_cli(["deliver", "-c", heron.conf, "-u", "nosuchuser"],
                      input=data_file("simple.eml"))
    assert r.returncode == 67, (r.returncode, r.stderr)
    assert not os.path.exists(os.path.join(heron.mail_root, "nosuchuser"))


def test_deliver_hostile_user_name(heron):
    for user in ("../alice", "alice/../bob", ".."):
        r = heron.run_cli(["deliver", "-c", heron.conf, "-u", user],
                          input=data_file("simple.eml"))
        assert r.returncode in (64, 67), (user, r.returncode)
    assert maildir_files(heron.maildir("alice")) == []


def test_deliver_while_pop3_session_open(heron):
    c = heronlib.pop3_open(heron.pop3_port, "alice")
    r = heron.run_cli(["deliver", "-c", heron.conf, "-u", "alice"],
                      input=data_file("simple.eml"))
    assert r.returncode == 0, r.stderr
    assert c.cmd("STAT").startswith(b"+OK 0 ")
    c.cmd("QUIT")
    c.close()
    assert len(maildir_files(heron.maildir("alice"))) == 1


# ----------------------------------------------------------- check-config

def test_check_config_ok(heron):
    r = heron.run_cli(["check-config", "-c", heron.conf])
    assert r.returncode == 0, (r.stdout, r.stderr)


def _bad_config(heron, line, at=3):
    lines = open(heron.conf).read().splitlines()
    lines.insert(at - 1, line)
    path = os.path.join(heron.dir, "bad.conf")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize("line", [
    "no_such_key = 1",
    "workers = many",
    "max_message_size = 12Q",
    "allow_plaintext_auth = maybe",
    "listen = smtp 127.0.0.1:25",
    "listen = pop3 127.0.0.1:99999",
    "log_level = loud",
    "this line has no equals sign",
])
def test_check_config_errors(heron, line):
    path = _bad_config(heron, line, at=3)
    r = heron.run_cli(["check-config", "-c", path])
    out = (r.stdout + r.stderr).decode(errors="replace")
    assert r.returncode == 1, (r.returncode, out)
    assert re.search(r"(^|\s|/)bad\.conf:3: \S", out), out


def test_serve_refuses_unloadable_tls_key(heron):
    # A TLS listener whose key can't be loaded must not start half-working.
    # Appended: the last value of a key wins. The check comes before any
    # port is bound (the fixture's daemon holds them).
    n = len(open(heron.conf).read().splitlines())
    path = _bad_config(heron, "tls_key = %s/missing-key.pem" % heron.dir,
                       at=n + 1)
    r = heron.run_cli(["serve", "-c", path], timeout=20)
    out = (r.stdout + r.stderr).decode(errors="replace")
    assert r.returncode != 0
    assert "missing-key.pem" in out and "TLS" in out, out


def test_serve_refuses_bad_config(heron):
    path = _bad_config(heron, "no_such_key = 1", at=2)
    r = heron.run_cli(["serve", "-c", path], timeout=20)
    out = (r.stdout + r.stderr).decode(errors="replace")
    assert r.returncode != 0
    assert "bad.conf:2:" in out, out


# ----------------------------------------------------------------- passwd

@pytest.mark.parametrize("scheme,prefix", [
    (None, "{SHA512-CRYPT}$6$"),
    ("SHA512-CRYPT", "{SHA512-CRYPT}$6$"),
    ("SHA256-CRYPT", "{SHA256-CRYPT}$5$"),
    ("BLF-CRYPT", "{BLF-CRYPT}$2"),
    ("ARGON2ID", "{ARGON2ID}$argon2id$"),
    ("ARGON2I", "{ARGON2I}$argon2i$"),
    ("PLAIN", "{PLAIN}"),
])
def test_passwd_schemes(heron_bin, scheme, prefix):
    pw = "s3cret pass"
    args = [heron_bin, "passwd"] + (["-s", scheme] if scheme else [])
    r = subprocess.run(args, input=(pw + "\n").encode(),
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=30)
    assert r.returncode == 0, r.stderr
    out = r.stdout.decode().strip()
    assert out.startswith(prefix), out
    assert "\n" not in out
    if prefix.startswith("{SHA"):
        h = out[out.index("}") + 1:]
        assert crypt.crypt(pw, h) == h, "hash does not verify with crypt(3)"
    if scheme == "PLAIN":
        assert out == "{PLAIN}" + pw


def test_passwd_hashes_work_for_login(heron_bin, heron_factory):
    lines = []
    users = {}
    for i, scheme in enumerate(["SHA512-CRYPT", "SHA256-CRYPT", "BLF-CRYPT",
                                "ARGON2ID", "ARGON2I", "PLAIN"]):
        user, pw = "user%d" % i, "pw-%s-%d" % (scheme, i)
        r = subprocess.run([heron_bin, "passwd", "-s", scheme],
                           input=(pw + "\n").encode(),
                           stdout=subprocess.PIPE, timeout=30)
        assert r.returncode == 0, scheme
        lines.append("%s:%s" % (user, r.stdout.decode().strip()))
        users[user] = (scheme, pw)
    h = heron_factory(passwd_extra=lines)
    for user, (scheme, pw) in users.items():
        p = poplib.POP3("127.0.0.1", h.pop3_port,
                        timeout=heronlib.IO_TIMEOUT)
        p.user(user)
        try:
            p.pass_(pw)
        except poplib.error_proto as e:
            raise AssertionError("%s login failed: %s" % (scheme, e))
        p.quit()


def test_passwd_unknown_scheme(heron_bin):
    r = subprocess.run([heron_bin, "passwd", "-s", "ROT13"],
                       input=b"x\n", stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=30)
    assert r.returncode != 0
    assert r.stdout.strip() == b""
