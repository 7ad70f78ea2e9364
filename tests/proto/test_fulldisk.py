"""A full disk (ENOSPC) during delivery: LMTP answers with a temporary
4xx per recipient, nothing half-written stays in tmp/, new/ or cur/, the
server keeps serving, and deliveries succeed again once there is room.
The mail root is put on a small tmpfs, so the test needs root (it is
skipped otherwise)."""
import os
import subprocess

import pytest

import heronlib
from heronlib import LmtpRaw, crlf, deliver, maildir_files

TMPFS_KB = 768


@pytest.fixture
def small_mail_root(heron):
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    os.makedirs(heron.mail_root, exist_ok=True)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%dk" % TMPFS_KB,
                        "tmpfs", heron.mail_root], capture_output=True)
    if r.returncode != 0:
        pytest.skip("cannot mount a tmpfs here: %r" % r.stderr)
    try:
        yield heron.mail_root
    finally:
        heron.stop()
        subprocess.run(["umount", "-l", heron.mail_root])


def lmtp_one(heron, user, msg):
    lm = LmtpRaw.tcp(heron.lmtp_port)
    try:
        lm.greet_lhlo()
        assert lm.cmd("MAIL FROM:<a@example.org>")[0] == 250
        assert lm.cmd("RCPT TO:<%s>" % heronlib.addr(user))[0] == 250
        assert lm.cmd("DATA")[0] == 354
        lm.send_data(msg)
        reply = lm.reply()
        lm.cmd("QUIT")
        return reply
    finally:
        lm.close()


def tmp_files(md):
    p = os.path.join(md, "tmp")
    return os.listdir(p) if os.path.isdir(p) else []


# The tmpfs is mounted over the mail root after the daemon started:
# Landlock rules (sandbox = yes) stay on the covered directory, so the
# workers could not reach the new mount (a restart or reload would).
@pytest.mark.heron_conf(sandbox="no")
def test_enospc_is_temporary_and_leaves_nothing(heron, small_mail_root):
    # A first small delivery creates the Maildir and the index.
    deliver(heron, "alice", crlf(b"Subject: small\n\nfits\n"))
    md = heron.maildir("alice")
    before = maildir_files(md)
    assert len(before) == 1
    # Far bigger than what is left on the filesystem.
    big = crlf(b"Subject: big\n\n" + (b"x" * 76 + b"\n") * 20000)
    code, text = lmtp_one(heron, "alice", big)
    assert 400 <= code < 500, (code, text)
    print("full disk reply:", code, text)
    assert maildir_files(md) == before
    assert tmp_files(md) == []
    # Room again: a small message is accepted and stored whole.
    deliver(heron, "alice", crlf(b"Subject: again\n\nfits too\n"))
    after = maildir_files(md)
    assert len(after) == 2
    heron.allow_log_error(r".*(No space left|ENOSPC|Mailbox full|"
                          r"write\(|delivery).*")
