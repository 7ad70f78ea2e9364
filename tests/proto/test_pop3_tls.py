"""POP3 over TLS: STLS (RFC 2595 section 4) and implicit TLS on the pop3s
port (RFC 8314), including the STARTTLS command-injection case."""

import poplib
import socket
import ssl

import pytest

import heronlib
from heronlib import (PASSWORDS, LineClient, crlf, data_file, deliver,
                      insecure_tls_context, pop3_login, pop3_open)


def capa_words(c):
    r = c.cmd("CAPA")
    assert r.startswith(b"+OK"), r
    return {ln.split()[0].upper() for ln in c.read_multiline() if ln}


def test_stls_poplib(heron):
    deliver(heron, "alice", crlf(data_file("simple.eml")))
    p = poplib.POP3("127.0.0.1", heron.pop3_port,
                    timeout=heronlib.IO_TIMEOUT)
    assert p.stls(insecure_tls_context()).startswith(b"+OK")
    assert isinstance(p.sock, ssl.SSLSocket)
    assert p.sock.version() in ("TLSv1.2", "TLSv1.3"), p.sock.version()
    caps = p.capa()
    # RFC 2595 4: STLS is listed only where it is permitted.
    assert "STLS" not in caps, caps
    assert "SASL" in caps and "USER" in caps, caps
    p.user("alice")
    p.pass_(PASSWORDS["alice"])
    _, lines, _ = p.retr(1)
    assert (b"\r\n".join(lines) + b"\r\n").endswith(
        crlf(data_file("simple.eml")))
    p.quit()


def test_stls_twice_refused(heron):
    c = pop3_open(heron.pop3_port)
    assert c.cmd("STLS").startswith(b"+OK")
    c.starttls()
    r = c.cmd("STLS")
    assert r.startswith(b"-ERR"), r
    pop3_login(c, "bob")
    c.close()


def test_stls_plaintext_injection_discarded(heron):
    """Bytes pipelined after STLS in the same packet must be dropped: not
    answered in cleartext, not executed inside TLS (RFC 2595 4: "TLS
    negotiation begins immediately after the CRLF")."""
    c = pop3_open(heron.pop3_port)
    c.send(b"STLS\r\nCAPA\r\n")
    r = c.readline()
    assert r.startswith(b"+OK"), r
    # Nothing more arrives in cleartext (the server waits for ClientHello).
    extra = c.pending(0.5)
    assert extra == b"", "cleartext after the STLS reply: %r" % extra
    c.starttls()
    # Inside TLS: our own CAPA, then NOOP; a reply to the injected CAPA
    # would show up as an extra multi-line reply.
    c.send(b"CAPA\r\n")
    assert c.readline().startswith(b"+OK")
    caps = c.read_multiline()
    assert b"STLS" not in [ln.split()[0] for ln in caps if ln], caps
    # (NOOP is TRANSACTION-only; USER is a one-line probe here.)
    c.send(b"USER alice\r\n")
    r = c.readline()
    assert r.startswith(b"+OK"), r
    assert b"apabilit" not in r, "injected CAPA answered inside TLS: %r" % r
    extra = c.pending(0.5)
    assert extra == b"", "unexpected data inside TLS: %r" % extra
    r = c.cmd("PASS " + PASSWORDS["alice"])
    assert r.startswith(b"+OK"), r
    c.close()


def test_stls_injection_of_login(heron):
    # An injected USER/PASS must not log the session in.
    c = pop3_open(heron.pop3_port)
    c.send(("STLS\r\nUSER alice\r\nPASS %s\r\n" %
            PASSWORDS["alice"]).encode())
    assert c.readline().startswith(b"+OK")
    assert c.pending(0.3) == b""
    c.starttls()
    r = c.cmd("STAT")
    assert r.startswith(b"-ERR"), "injected login took effect: %r" % r
    c.close()


def test_implicit_tls(heron):
    deliver(heron, "bob", crlf(data_file("8bit.eml")))
    p = poplib.POP3_SSL("127.0.0.1", heron.pop3s_port,
                        context=insecure_tls_context(),
                        timeout=heronlib.IO_TIMEOUT)
    assert p.getwelcome().startswith(b"+OK")
    caps = p.capa()
    assert "STLS" not in caps, caps
    p.user("bob")
    p.pass_(PASSWORDS["bob"])
    assert p.stat()[0] == 1
    _, lines, _ = p.retr(1)
    assert (b"\r\n".join(lines) + b"\r\n").endswith(
        crlf(data_file("8bit.eml")))
    p.quit()


def test_implicit_tls_auth_plain(heron):
    s = socket.create_connection(("127.0.0.1", heron.pop3s_port),
                                 timeout=heronlib.IO_TIMEOUT)
    s = insecure_tls_context().wrap_socket(s, server_hostname="localhost")
    c = LineClient(s)
    assert c.readline().startswith(b"+OK")
    r = c.cmd("AUTH PLAIN " + heronlib.b64("\0carol\0" + PASSWORDS["carol"])
              if "carol:" in open(heron.passwd).read() else
              "AUTH PLAIN " + heronlib.b64("\0bob\0" + PASSWORDS["bob"]))
    assert r.startswith(b"+OK"), r
    c.close()


def test_tls_garbage_handshake(heron):
    # Not TLS at all on the pop3s port; then a good client still works.
    c = LineClient.connect(heron.pop3s_port)
    c.send(b"USER alice\r\n" + b"\x16\x03\x01\x00\x05hello" * 10)
    assert c.is_closed(5), "server kept a non-TLS client on pop3s"
    c.close()
    # A client that connects and never handshakes does not block others.
    idle = LineClient.connect(heron.pop3s_port)
    p = poplib.POP3_SSL("127.0.0.1", heron.pop3s_port,
                        context=insecure_tls_context(),
                        timeout=heronlib.IO_TIMEOUT)
    p.user("alice")
    p.pass_(PASSWORDS["alice"])
    p.quit()
    idle.close()


def test_tls10_refused(heron):
    ctx = insecure_tls_context()
    try:
        ctx.minimum_version = ssl.TLSVersion.TLSv1
        ctx.maximum_version = ssl.TLSVersion.TLSv1_1
        ctx.set_ciphers("ALL:@SECLEVEL=0")
    except (ValueError, ssl.SSLError):
        pytest.skip("local OpenSSL cannot offer TLS 1.0/1.1")
    s = socket.create_connection(("127.0.0.1", heron.pop3s_port),
                                 timeout=heronlib.IO_TIMEOUT)
    with pytest.raises((ssl.SSLError, ConnectionResetError, OSError)):
        t = ctx.wrap_socket(s, server_hostname="localhost")
        t.recv(100)
    s.close()
