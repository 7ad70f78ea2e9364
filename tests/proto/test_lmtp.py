"""LMTP (RFC 2033) over TCP and the Unix socket: capabilities,
per-recipient replies, trace headers, sequencing errors, size limits,
aborted transfers, dot-stuffing and big messages."""

import os
import smtplib
import time

import pytest

import heronlib
from heronlib import (LmtpRaw, addr, crlf, data_file, lf, maildir_files,
                      read_file, split_trace, wait_for)


def lmtp(heron, unix=False):
    host = heron.lmtp_sock if unix else "127.0.0.1"
    s = smtplib.LMTP(host, 0 if unix else heron.lmtp_port,
                     timeout=heronlib.IO_TIMEOUT)
    return s


def only_file(heron, user):
    files = maildir_files(heron.maildir(user))
    assert len(files) == 1, files
    return read_file(files[0])


def check_stored(stored, original_crlf, user, sender):
    trace = split_trace(stored, lf(original_crlf))
    assert trace, "no trace headers added"
    assert trace[0].lower().startswith(b"return-path:"), trace
    assert b"<%s>" % sender.encode() in trace[0], trace[0]
    dt = [t for t in trace if t.lower().startswith(b"delivered-to:")]
    assert dt, trace
    assert user.encode() in dt[0], dt


@pytest.mark.parametrize("unix", [False, True], ids=["tcp", "unix"])
def test_lhlo_capabilities(heron, unix):
    s = lmtp(heron, unix)
    code, _ = s.ehlo("client.test")
    assert code == 250
    for ext in ("pipelining", "enhancedstatuscodes", "8bitmime", "size"):
        assert s.has_extn(ext), (ext, s.esmtp_features)
    size = s.esmtp_features["size"].strip()
    assert size == str(10 * 1024 * 1024), size
    s.quit()


@pytest.mark.parametrize("unix", [False, True], ids=["tcp", "unix"])
def test_smtplib_delivery(heron, unix):
    msg = crlf(data_file("simple.eml"))
    s = lmtp(heron, unix)
    refused = s.sendmail("sender@example.org", [addr("alice")], msg)
    assert refused == {}
    s.quit()
    check_stored(only_file(heron, "alice"), msg, "alice",
                 "sender@example.org")


def test_two_users_one_unknown(heron):
    msg = crlf(data_file("8bit.eml"))
    lm = LmtpRaw.tcp(heron.lmtp_port)
    lm.greet_lhlo()
    assert lm.cmd("MAIL FROM:<sender@example.org> BODY=8BITMIME")[0] == 250
    assert lm.cmd("RCPT TO:<%s>" % addr("alice"))[0] == 250
    code, texts = lm.cmd("RCPT TO:<%s>" % addr("nosuchuser"))
    assert code == 550 and texts[0].startswith("5.1.1"), (code, texts)
    assert lm.cmd("RCPT TO:<%s>" % addr("bob"))[0] == 250
    assert lm.cmd("DATA")[0] == 354
    lm.send_data(msg)
    # RFC 2033 4.2: one reply per accepted recipient, in RCPT order.
    r1 = lm.reply()
    r2 = lm.reply()
    assert r1[0] == 250 and r2[0] == 250, (r1, r2)
    assert lm.cmd("NOOP")[0] == 250
    assert lm.cmd("QUIT")[0] == 221
    lm.close()
    for user in ("alice", "bob"):
        check_stored(only_file(heron, user), msg, user, "sender@example.org")


def test_null_sender(heron):
    msg = crlf(data_file("simple.eml"))
    lm = LmtpRaw.tcp(heron.lmtp_port)
    lm.greet_lhlo()
    assert lm.cmd("MAIL FROM:<>")[0] == 250
    assert lm.cmd("RCPT TO:<%s>" % addr("bob"))[0] == 250
    assert lm.cmd("DATA")[0] == 354
    lm.send_data(msg)
    assert lm.reply()[0] == 250
    lm.close()
    stored = only_file(heron, "bob")
    assert stored.startswith(b"Return-Path: <>"), stored[:80]


def test_sequence_errors(heron):
    lm = LmtpRaw.tcp(heron.lmtp_port)
    assert lm.reply()[0] == 220
    # Before LHLO.
    code, _ = lm.cmd("MAIL FROM:<a@example.org>")
    assert code == 503, code
    assert lm.cmd("LHLO client.test")[0] == 250
    code, texts = lm.cmd("DATA")
    assert code == 503, (code, texts)
    code, texts = lm.cmd("RCPT TO:<%s>" % addr("alice"))
    assert code == 503, (code, texts)
    assert lm.cmd("MAIL FROM:<a@example.org>")[0] == 250
    code, texts = lm.cmd("DATA")
    assert code == 503, (code, texts)
    code, _ = lm.cmd("MAIL FROM:<b@example.org>")
    assert code == 503, code
    # Only unknown recipients: DATA still refused.
    assert lm.cmd("RCPT TO:<%s>" % addr("nosuchuser"))[0] == 550
    assert lm.cmd("DATA")[0] == 503
    assert lm.cmd("RSET")[0] == 250
    assert lm.cmd("QUIT")[0] == 221
    lm.close()


def test_syntax_errors(heron):
    lm = LmtpRaw.tcp(heron.lmtp_port)
    lm.greet_lhlo()
    for bad in ("MAIL FROM:no-brackets@example.org", "MAIL FROM:<a@b",
                "MAIL TO:<a@example.org>", "XYZZY",
                "MAIL FROM:<" + "a" * 300 + "@example.org>"):
        code, texts = lm.cmd(bad)
        assert 500 <= code <= 504 or code == 553 or code == 501, (bad, code)
    assert lm.cmd("NOOP")[0] == 250
    lm.close()


def test_ehlo_helo_refused(heron):
    # RFC 2033 4.1: LMTP has LHLO; HELO/EHLO must not be accepted.
    lm = LmtpRaw.tcp(heron.lmtp_port)
    assert lm.reply()[0] == 220
    code, _ = lm.cmd("EHLO client.test")
    assert code >= 500, code
    code, _ = lm.cmd("HELO client.test")
    assert code >= 500, code
    assert lm.cmd("LHLO client.test")[0] == 250
    lm.close()


@pytest.mark.heron_conf(max_message_size="1M")
def test_message_too_big(heron):
    big = heronlib.big_message("too big", 1536 * 1024)
    # Declared with SIZE: refused at MAIL.
    lm = LmtpRaw.tcp(heron.lmtp_port)
    texts = lm.greet_lhlo()
    assert "SIZE 1048576" in texts, texts
    code, texts = lm.cmd("MAIL FROM:<s@example.org> SIZE=%d" % len(big))
    assert code == 552, (code, texts)
    # Not declared: refused after the data, once per recipient.
    assert lm.cmd("MAIL FROM:<s@example.org>")[0] == 250
    assert lm.cmd("RCPT TO:<%s>" % addr("alice"))[0] == 250
    assert lm.cmd("RCPT TO:<%s>" % addr("bob"))[0] == 250
    assert lm.cmd("DATA")[0] == 354
    lm.send_data(big)
    r1, r2 = lm.reply(), lm.reply()
    assert r1[0] == 552 and r2[0] == 552, (r1, r2)
    # The session goes on.
    assert lm.cmd("RSET")[0] == 250
    assert lm.cmd("MAIL FROM:<s@example.org>")[0] == 250
    assert lm.cmd("RCPT TO:<%s>" % addr("alice"))[0] == 250
    assert lm.cmd("DATA")[0] == 354
    small = crlf(data_file("simple.eml"))
    lm.send_data(small)
    assert lm.reply()[0] == 250
    lm.close()
    check_stored(only_file(heron, "alice"), small, "alice", "s@example.org")
    assert maildir_files(heron.maildir("bob")) == []
    for user in ("alice", "bob"):
        assert maildir_files(heron.maildir(user), ("tmp",)) == []


@pytest.mark.heron_conf(max_message_size="1M")
def test_message_just_under_limit(heron):
    msg = heronlib.big_message("near limit", 1000 * 1024)
    s = lmtp(heron)
    assert s.sendmail("s@example.org", [addr("bob")], msg) == {}
    s.quit()
    assert lf(msg) in only_file(heron, "bob")


def test_disconnect_mid_data(heron):
    lm = LmtpRaw.tcp(heron.lmtp_port)
    lm.greet_lhlo()
    assert lm.cmd("MAIL FROM:<s@example.org>")[0] == 250
    assert lm.cmd("RCPT TO:<%s>" % addr("alice"))[0] == 250
    assert lm.cmd("RCPT TO:<%s>" % addr("bob"))[0] == 250
    assert lm.cmd("DATA")[0] == 354
    lm.c.send(heronlib.big_message("cut", 300 * 1024)[:200 * 1024])
    time.sleep(0.2)
    lm.c.abort()

    def clean():
        for user in ("alice", "bob"):
            md = heron.maildir(user)
            if maildir_files(md, ("tmp", "new", "cur")):
                return False
        return True
    # Give the worker a moment to notice the close and clean up.
    try:
        wait_for(clean, 5, what="no files left after aborted DATA")
    except AssertionError:
        left = [maildir_files(heron.maildir(u), ("tmp", "new", "cur"))
                for u in ("alice", "bob")]
        raise AssertionError("files left after aborted DATA: %r" % left)
    # Spool in state_dir (if any) is cleaned too.
    def spool_clean():
        big = []
        for dp, _, fn in os.walk(heron.state_dir):
            for n in fn:
                p = os.path.join(dp, n)
                if os.path.isfile(p) and os.path.getsize(p) > 10000:
                    big.append(p)
        return not big
    wait_for(spool_clean, 5, what="no spool file left in state_dir")
    # Delivery still works.
    heronlib.deliver(heron, "alice", crlf(data_file("simple.eml")))


def test_dot_stuffed_lines_unstuffed(heron):
    orig = crlf(data_file("dotstuff.eml"))
    lm = LmtpRaw.unix(heron.lmtp_sock)
    lm.greet_lhlo()
    assert lm.cmd("MAIL FROM:<s@example.org>")[0] == 250
    assert lm.cmd("RCPT TO:<%s>" % addr("bob"))[0] == 250
    assert lm.cmd("DATA")[0] == 354
    lm.send_data(orig, stuff=True)
    assert lm.reply()[0] == 250
    lm.close()
    stored = only_file(heron, "bob")
    check_stored(stored, orig, "bob", "s@example.org")
    assert b"\n.line starting with one dot\n" in stored
    assert b"\n..line starting with two dots\n" in stored
    assert b"\n.\n" in stored


def test_pipelined_transaction(heron):
    # RFC 2920: the whole envelope in one packet.
    msg = crlf(data_file("simple.eml"))
    lm = LmtpRaw.tcp(heron.lmtp_port)
    assert lm.reply()[0] == 220
    lm.c.send(("LHLO client.test\r\nMAIL FROM:<s@example.org>\r\n"
               "RCPT TO:<%s>\r\nRCPT TO:<%s>\r\nRCPT TO:<%s>\r\nDATA\r\n"
               % (addr("alice"), addr("nosuchuser"), addr("bob"))).encode())
    assert lm.reply()[0] == 250
    assert lm.reply()[0] == 250
    assert lm.reply()[0] == 250
    assert lm.reply()[0] == 550
    assert lm.reply()[0] == 250
    assert lm.reply()[0] == 354
    lm.c.send(msg + b".\r\nQUIT\r\n")
    assert lm.reply()[0] == 250
    assert lm.reply()[0] == 250
    assert lm.reply()[0] == 221
    lm.close()
    for user in ("alice", "bob"):
        check_stored(only_file(heron, user), msg, user, "s@example.org")


def test_two_messages_one_session(heron):
    s = lmtp(heron)
    m1 = heronlib.make_message("first", [b"one"])
    m2 = heronlib.make_message("second", [b"two"])
    assert s.sendmail("s@example.org", [addr("alice")], m1) == {}
    assert s.sendmail("s@example.org", [addr("alice")], m2) == {}
    s.quit()
    files = [read_file(f) for f in maildir_files(heron.maildir("alice"))]
    assert len(files) == 2
    assert any(f.endswith(lf(m1)) for f in files)
    assert any(f.endswith(lf(m2)) for f in files)


def test_five_megabyte_message(heron):
    big = heronlib.big_message("five megabytes", 5 * 1024 * 1024)
    s = lmtp(heron)
    assert s.sendmail("s@example.org", [addr("alice")], big) == {}
    s.quit()
    check_stored(only_file(heron, "alice"), big, "alice", "s@example.org")


def test_bare_lf_and_long_line(heron):
    # Bare LF line ends and a 5000-byte line arrive intact (as LF).
    body = b"short\n" + b"L" * 5000 + b"\r\nend\r\n"
    msg = b"Subject: odd line ends\r\n\r\n" + body
    lm = LmtpRaw.tcp(heron.lmtp_port)
    lm.greet_lhlo()
    assert lm.cmd("MAIL FROM:<s@example.org>")[0] == 250
    assert lm.cmd("RCPT TO:<%s>" % addr("alice"))[0] == 250
    assert lm.cmd("DATA")[0] == 354
    lm.send_data(msg)
    assert lm.reply()[0] == 250
    lm.close()
    stored = only_file(heron, "alice")
    assert stored.endswith(b"Subject: odd line ends\n\nshort\n"
                           + b"L" * 5000 + b"\nend\n"), stored[-100:]


def test_delivery_creates_maildir_layout(heron):
    heronlib.deliver(heron, "bob", crlf(data_file("simple.eml")))
    md = heron.maildir("bob")
    for d in ("tmp", "new", "cur"):
        assert os.path.isdir(os.path.join(md, d)), d
    files = maildir_files(md, ("new",))
    assert len(files) == 1
    name = os.path.basename(files[0])
    assert "/" not in name and not name.startswith(".")
