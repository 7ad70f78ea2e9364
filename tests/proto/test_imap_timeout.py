"""test_imap_timeout.py: a connection that does not log in in time gets
"* BYE Login timeout" (RFC 3501 7.1.5) before the server closes it, both
when it stays silent (pre-login idle timeout) and when it trickles bytes
to keep the idle timer alive (the pre-login deadline, conn.c: two idle
periods after accept, checked at the next input).
"""

import select
import time

import pytest

from heronlib import PASSWORDS, LineClient


def _read_bye(c, timeout):
    line = c.readline(timeout)
    assert line.startswith(b"* BYE"), line
    assert b"Login timeout" in line, line
    assert c.is_closed(5), "connection not closed after BYE"


@pytest.mark.heron_conf(idle_timeout="2")
def test_prelogin_idle_bye(heron):
    with LineClient.connect(heron.imap_port) as c:
        assert c.readline().startswith(b"* OK")
        started = time.monotonic()
        _read_bye(c, 10)
        assert time.monotonic() - started >= 1.5


@pytest.mark.heron_conf(idle_timeout="2")
def test_prelogin_deadline_bye(heron):
    with LineClient.connect(heron.imap_port) as c:
        assert c.readline().startswith(b"* OK")
        # A byte a second resets the 2 s idle timer; the 4 s deadline
        # ends it at the first byte after it.
        for _ in range(8):
            c.send(b"a")
            if select.select([c.sock], [], [], 1.0)[0]:
                break
        _read_bye(c, 5)


@pytest.mark.heron_conf(idle_timeout="2")
def test_logged_in_no_login_bye(heron):
    """A logged-in session is not subject to the login deadline."""
    with LineClient.connect(heron.imap_port) as c:
        assert c.readline().startswith(b"* OK")
        c.send(b"a1 LOGIN alice %s\r\n" % PASSWORDS["alice"].encode())
        line = c.readline()
        while line.startswith(b"* "):
            line = c.readline()
        assert line.startswith(b"a1 OK"), line
        for i in range(5):
            c.send(b"n%d NOOP\r\n" % i)
            line = c.readline()
            while line.startswith(b"* "):
                line = c.readline()
            assert line.startswith(b"n%d OK" % i), line
            time.sleep(1)
