"""conftest.py: fixtures for the protocol tests.

`heron` starts a fresh daemon per test (its own temp dir, ports, Maildirs,
password file; the TLS certificate is made once per session) and stops it
with SIGTERM at teardown; the test fails if the daemon does not stop in
time or its log holds sanitizer reports, "fatal" or unexpected error-level
lines. Per-test config: @pytest.mark.heron_conf(key=value, ...) and
@pytest.mark.heron_passwd_extra("line", ...) for extra password-file lines.

Binary: build/heron, or $HERON_BIN (the ASan run uses build-asan/heron).
"""

import os
import subprocess
import warnings

import pytest

import heronlib
from heronlib import PASSWORDS

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import crypt  # noqa: E402  (stdlib; deprecated in 3.11, still there)


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "heron_conf(**kw): heron.conf overrides for this test")
    config.addinivalue_line(
        "markers", "heron_passwd_extra(*lines): extra passwd-file lines")


@pytest.fixture(scope="session")
def heron_bin():
    b = heronlib.heron_bin()
    if not os.access(b, os.X_OK):
        pytest.fail("heron binary %s not found (build it, or set HERON_BIN)"
                    % b)
    return b


@pytest.fixture(scope="session")
def certs(tmp_path_factory):
    d = tmp_path_factory.mktemp("tls")
    cert, key = str(d / "cert.pem"), str(d / "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048",
                    "-nodes", "-subj", "/CN=localhost", "-days", "2",
                    "-keyout", key, "-out", cert],
                   check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, timeout=60)
    return cert, key


def heron_passwd_hash(bin_path, scheme, pw):
    """Runs `heron passwd -s SCHEME`; returns its output line or None."""
    try:
        r = subprocess.run([bin_path, "passwd", "-s", scheme],
                           input=(pw + "\n").encode(),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    out = r.stdout.decode(errors="replace").strip()
    if r.returncode != 0 or not out.startswith("{"):
        return None
    return out


@pytest.fixture(scope="session")
def passwd_lines(heron_bin):
    """The standard users. alice's SHA512-CRYPT and dave's SHA256-CRYPT
    hashes come from Python's crypt (independent of Heron); carol's
    ARGON2ID hash from `heron passwd` (left out if that fails: then only
    the tests that log in as carol fail)."""
    alice = "{SHA512-CRYPT}" + crypt.crypt(
        PASSWORDS["alice"], crypt.mksalt(crypt.METHOD_SHA512))
    dave = "{SHA256-CRYPT}" + crypt.crypt(
        PASSWORDS["dave"], crypt.mksalt(crypt.METHOD_SHA256))
    lines = ["# test users",
             "alice:" + alice,
             "bob:{PLAIN}" + PASSWORDS["bob"],
             "dave:" + dave + ":1000:1000::/home/dave:/bin/false"]
    carol = heron_passwd_hash(heron_bin, "ARGON2ID", PASSWORDS["carol"])
    if carol:
        lines.append("carol:" + carol)
    return lines


def _marker_kwargs(request, name):
    m = request.node.get_closest_marker(name)
    return dict(m.kwargs) if m else {}


def _marker_args(request, name):
    m = request.node.get_closest_marker(name)
    return list(m.args) if m else []


@pytest.fixture
def heron_factory(heron_bin, certs, passwd_lines):
    """Builds (not starts) daemons; all are stopped and checked at
    teardown."""
    made = []

    def make(overrides=None, passwd_extra=(), start=True):
        lines = list(passwd_lines)
        # Extra lines go in the middle, so good lines follow bad ones.
        lines[2:2] = list(passwd_extra)
        h = heronlib.Heron(certs, lines, overrides)
        made.append(h)
        if start:
            h.start()
        return h

    yield make

    errors = []
    for h in made:
        try:
            h.stop()
        except AssertionError as e:
            errors.append(str(e))
        bad = h.log_problems()
        if bad:
            errors.append("daemon log of %s has %d bad line(s):\n%s"
                          % (h.dir, len(bad), "\n".join(bad[:30])))
        if not errors:
            h.cleanup()
    if errors:
        pytest.fail("\n".join(errors), pytrace=False)


@pytest.fixture
def heron(request, heron_factory):
    """A started daemon configured for this test."""
    return heron_factory(_marker_kwargs(request, "heron_conf"),
                         _marker_args(request, "heron_passwd_extra"))
