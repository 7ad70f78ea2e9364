"""IMAP SEARCH / UID SEARCH (RFC 3501 6.4.4, RFC 9051 6.4.4) against the
real daemon: every search key on a small mailbox delivered over LMTP
(RFC 2047 subjects, base64 / quoted-printable / ISO-8859-1 bodies,
multipart), CHARSET with literal search strings, BADCHARSET, syntax
errors, ESEARCH RETURN (RFC 4731), SAVE and "$" (RFC 5182), MODSEQ
(RFC 7162) and OLDER/YOUNGER (RFC 5032), and a search big enough to run
in several slices while another session is served."""

import imaplib
import re
import socket
import time

import pytest

import heronlib
from heronlib import PASSWORDS, crlf, deliver

MSGS = [
    # 1: plain ASCII
    b"From: \"John Doe\" <john@example.com>\n"
    b"To: alice@example.org\n"
    b"Subject: Hello World\n"
    b"Date: Mon, 1 Jan 2024 23:30:00 -0500\n"
    b"\n"
    b"The quick brown fox jumps over the lazy dog.\n",
    # 2: RFC 2047 header, QP UTF-8 body with a soft line break
    b"From: =?UTF-8?B?SsO2cmcgTcO8bGxlcg==?= <joerg@example.de>\n"
    b"To: Bob <bob@example.net>,\n"
    b" Carol <carol@example.net>\n"
    b"Cc: dave@example.com\n"
    b"Subject: =?ISO-8859-1?Q?Gr=FC=DFe_aus_M=FCnchen?=\n"
    b"Date: 15 Feb 2024 10:00:00 +0100\n"
    b"MIME-Version: 1.0\n"
    b"Content-Type: text/plain; charset=utf-8\n"
    b"Content-Transfer-Encoding: quoted-printable\n"
    b"\n"
    b"Caf=C3=A9 cr=C3=A8me br=C3=BBl=C3=A9e, Haupt=\n"
    b"stra=C3=9Fe 5\n",
    # 3: base64 ISO-8859-1 body
    b"From: latin@example.com\n"
    b"Subject: Masse\n"
    b"Date: 3 Mar 2024 00:00:00 +0000\n"
    b"Content-Type: text/plain; charset=\"iso-8859-1\"\n"
    b"Content-Transfer-Encoding: base64\n"
    b"\n"
    b"R3L232UgdW5kIE1h3wo=\n",
    # 4: multipart: text, binary attachment, HTML in QP
    b"From: multi@example.com\n"
    b"Bcc: secret-bcc@example.com\n"
    b"Subject: parts\n"
    b"Content-Type: multipart/mixed; boundary=\"XX\"\n"
    b"\n"
    b"preamble words\n"
    b"--XX\n"
    b"Content-Type: text/plain\n"
    b"\n"
    b"first part secret\n"
    b"--XX\n"
    b"Content-Type: application/octet-stream\n"
    b"Content-Transfer-Encoding: base64\n"
    b"\n"
    b"aGlkZGVuIHRyZWFzdXJl\n"
    b"--XX\n"
    b"Content-Type: text/html; charset=us-ascii\n"
    b"Content-Transfer-Encoding: quoted-printable\n"
    b"\n"
    b"<b>Bold=20Text</b>\n"
    b"--XX--\n",
    # 5: ISO-8859-1 8-bit body, raw
    b"From: raw@example.com\n"
    b"Subject: latin raw\n"
    b"Content-Type: text/plain; charset=ISO-8859-1\n"
    b"Content-Transfer-Encoding: 8bit\n"
    b"\n"
    b"Ol\xe9, se\xf1or! \xc7a va.\n",
    # 6: Greek UTF-8
    b"From: greek@example.gr\n"
    b"X-Custom: Some Value\n"
    b"Subject: =?UTF-8?B?zp/OlM6lzqPOo86VzqXOow==?=\n"
    b"Content-Type: text/plain; charset=utf-8\n"
    b"\n" +
    "Ὀδυσσεύς and ΟΔΥΣΣΕΥΣ\n".encode(),
]


def imap_login(heron, user="alice"):
    m = imaplib.IMAP4("127.0.0.1", heron.imap_port,
                      timeout=heronlib.IO_TIMEOUT)
    m.login(user, PASSWORDS[user])
    return m


def nums(data):
    text = re.sub(rb" ?\(MODSEQ \d+\)", b"", data[0] or b"")
    return [int(x) for x in text.split()]


@pytest.fixture
def box(heron):
    for msg in MSGS:
        deliver(heron, "alice", crlf(msg))
    m = imap_login(heron)
    typ, _ = m.select("INBOX")
    assert typ == "OK"
    # flags: 1 \Seen, 2 \Flagged \Answered, 3 \Deleted \Seen, 4 \Draft,
    # 6 keyword $Work
    for seq, flags in ((1, r"(\Seen)"), (2, r"(\Flagged \Answered)"),
                       (3, r"(\Deleted \Seen)"), (4, r"(\Draft)"),
                       (6, "($Work)")):
        typ, _ = m.store(str(seq), "+FLAGS.SILENT", flags)
        assert typ == "OK"
    yield m
    try:
        m.logout()
    except (imaplib.IMAP4.error, OSError):
        pass


def search(m, *keys):
    typ, data = m.search(None, *keys)
    assert typ == "OK", (keys, data)
    return nums(data)


CASES = [
    ("ALL", [1, 2, 3, 4, 5, 6]),
    ("SEEN", [1, 3]), ("UNSEEN", [2, 4, 5, 6]),
    ("ANSWERED", [2]), ("UNANSWERED", [1, 3, 4, 5, 6]),
    ("FLAGGED", [2]), ("UNFLAGGED", [1, 3, 4, 5, 6]),
    ("DELETED", [3]), ("UNDELETED", [1, 2, 4, 5, 6]),
    ("DRAFT", [4]), ("UNDRAFT", [1, 2, 3, 5, 6]),
    ("KEYWORD $Work", [6]), ("UNKEYWORD $Work", [1, 2, 3, 4, 5]),
    ("KEYWORD NoSuchKeyword", []),
    ("LARGER 300", None), ("SMALLER 1", []),
    ("1:2", [1, 2]), ("2,4:*", [2, 4, 5, 6]), ("*", [6]),
    ("NOT 1:5", [6]),
    ("FROM john", [1]), ("FROM \"JOHN DOE\"", [1]),
    ("FROM example.com", [1, 3, 4, 5]),
    ("TO carol", [2]), ("TO alice", [1]), ("CC dave", [2]),
    ("BCC secret", [4]),
    ("SUBJECT hello", [1]), ("SUBJECT MUENCHEN", []),
    ("HEADER X-Custom \"some val\"", [6]), ("HEADER X-Custom \"\"", [6]),
    ("HEADER X-Missing \"\"", []),
    ("BODY \"LAZY dog\"", [1]), ("BODY hauptstrasse", [2]),
    ("BODY secret", [4]), ("BODY treasure", []),
    ("BODY \"bold text\"", [4]), ("BODY preamble", []),
    ("BODY hello", []), ("TEXT hello", [1]), ("TEXT secret", [4]),
    ("SENTON 1-Jan-2024", [1]), ("SENTON 2-Jan-2024", []),
    ("SENTBEFORE 2-Jan-2024", [1]),
    ("SENTSINCE 15-Feb-2024", [2, 3, 4, 5, 6]),
    ("SENTON 3-Mar-2024", [3]),
    ("OR SEEN FLAGGED", [1, 2, 3]),
    ("NOT SEEN", [2, 4, 5, 6]),
    ("SEEN BODY fox", [1]), ("UNSEEN BODY fox", []),
    ("OR BODY fox SUBJECT parts", [1, 4]),
    ("(SEEN) (NOT DELETED) OR FROM john FROM latin", [1]),
    ("OR (DRAFT BODY secret) (FROM greek NOT DELETED)", [4, 6]),
    ("NEW", [2, 4, 5, 6]), ("RECENT", [1, 2, 3, 4, 5, 6]), ("OLD", []),
    ("YOUNGER 3600", [1, 2, 3, 4, 5, 6]), ("OLDER 3600", []),
]


def test_search_keys(box):
    for keys, want in CASES:
        got = search(box, keys)
        if want is None:
            continue
        assert got == want, keys


def test_search_dates(box):
    today = time.strftime("%d-%b-%Y", time.localtime())
    tomorrow = time.strftime("%d-%b-%Y", time.localtime(time.time() +
                                                        86400))
    assert search(box, "ON", today) == [1, 2, 3, 4, 5, 6]
    assert search(box, "SINCE", today) == [1, 2, 3, 4, 5, 6]
    assert search(box, "BEFORE", today) == []
    assert search(box, "BEFORE", tomorrow) == [1, 2, 3, 4, 5, 6]
    assert search(box, "SINCE", tomorrow) == []


def test_search_sizes(box):
    typ, data = box.fetch("1:6", "(RFC822.SIZE)")
    assert typ == "OK"
    sizes = [int(re.search(rb"RFC822\.SIZE (\d+)", d).group(1))
             for d in data]
    s3 = sizes[2]
    assert search(box, "LARGER", str(s3)) == \
        [i + 1 for i, s in enumerate(sizes) if s > s3]
    assert search(box, "SMALLER", str(s3)) == \
        [i + 1 for i, s in enumerate(sizes) if s < s3]


def test_search_uid(box):
    typ, data = box.fetch("1:6", "(UID)")
    uids = [int(re.search(rb"UID (\d+)", d).group(1)) for d in data]
    typ, data = box.uid("SEARCH", None, "SEEN")
    assert typ == "OK" and nums(data) == [uids[0], uids[2]]
    typ, data = box.uid("SEARCH", None, "UID", "%d:%d" % (uids[1],
                                                         uids[2]))
    assert nums(data) == [uids[1], uids[2]]
    assert search(box, "UID", str(uids[3])) == [4]
    assert search(box, "UID", "4000000000") == []
    typ, data = box.uid("SEARCH", None, "BODY", "nothing-like-this")
    assert typ == "OK" and data == [b""]


def test_search_charset_literals(box):
    # UTF-8 literal: decoded RFC 2047 subject (ISO-8859-1 word)
    box.literal = "GRÜSSE aus münchen".encode()
    typ, data = box.search("UTF-8", "SUBJECT")
    assert typ == "OK" and nums(data) == [2], data
    # QP body in UTF-8, case folded
    box.literal = "CAFÉ CRÈME".encode()
    typ, data = box.search("UTF-8", "BODY")
    assert nums(data) == [2]
    # base64 ISO-8859-1 body, searched in UTF-8 ...
    box.literal = "größe UND MASS".encode()
    typ, data = box.search("UTF-8", "BODY")
    assert nums(data) == [3]
    # ... and with an ISO-8859-1 search string
    box.literal = "GR\xd6\xdfE".encode("latin-1")
    typ, data = box.search("ISO-8859-1", "BODY")
    assert nums(data) == [3]
    # raw 8-bit ISO-8859-1 body
    box.literal = "SEÑOR! ça".encode()
    typ, data = box.search("UTF-8", "TEXT")
    assert nums(data) == [5]
    # Greek: final sigma and capitals fold together
    box.literal = "οδυσσευσ".encode()
    typ, data = box.search("UTF-8", "SUBJECT")
    assert nums(data) == [6]
    # RFC 2047 encoded display name
    box.literal = "jörg müller".encode()
    typ, data = box.search("UTF-8", "FROM")
    assert nums(data) == [2]


def test_search_badcharset(box):
    typ, data = box._simple_command("SEARCH", "CHARSET", "X-NO-SUCH",
                                    "BODY", "x")
    assert typ == "NO"
    assert b"[BADCHARSET" in data[0]
    # the session goes on
    assert search(box, "SEEN") == [1, 3]


@pytest.mark.parametrize("keys", [
    "FOO", "FROM", "OR SEEN", "NOT", "BEFORE 32-Jan-2024", "LARGER x",
    "UID x", "HEADER X-Foo", "()", "OLDER 0", "SEEN CHARSET UTF-8",
])
def test_search_bad(box, keys):
    tag = box._new_tag()
    box.send(tag + b" SEARCH " + keys.encode() + b"\r\n")
    while True:
        line = box.readline()
        if line.startswith(tag):
            break
    assert line.split()[1] == b"BAD", (keys, line)
    assert search(box, "DRAFT") == [4]


def raw(m, cmd):
    """Sends cmd, returns (untagged lines, tagged line)."""
    tag = m._new_tag()
    m.send(tag + b" " + cmd.encode() + b"\r\n")
    lines = []
    while True:
        line = m.readline()
        if line.startswith(tag + b" "):
            return lines, line
        lines.append(line)


def test_esearch(box):
    lines, st = raw(box, "SEARCH RETURN (MIN MAX COUNT ALL) UNSEEN")
    assert b"OK" in st
    esr = [x for x in lines if x.startswith(b"* ESEARCH")]
    assert len(esr) == 1
    tag = st.split()[0].decode()
    assert esr[0].strip() == ('* ESEARCH (TAG "%s") MIN 2 MAX 6 ALL 2,4:6 '
                              'COUNT 4' % tag).encode()
    lines, st = raw(box, "SEARCH RETURN (COUNT) BODY nothing-here")
    assert lines[-1].strip().endswith(b"COUNT 0")
    lines, st = raw(box, "SEARCH RETURN () SEEN")
    assert lines[-1].strip().endswith(b"ALL 1,3")
    lines, st = raw(box, "UID SEARCH RETURN (MIN) SEEN")
    assert re.match(rb'\* ESEARCH \(TAG "[^"]+"\) UID MIN \d+', lines[-1])
    lines, st = raw(box, "SEARCH RETURN (BOGUS) SEEN")
    assert st.split()[1] == b"BAD"


def test_searchres(box):
    lines, st = raw(box, "SEARCH RETURN (SAVE) OR DRAFT FLAGGED")
    assert b"OK" in st
    assert not any(x.startswith(b"* ESEARCH") for x in lines)
    assert search(box, "$") == [2, 4]
    assert search(box, "UID $ UNDRAFT") == [2]
    typ, data = box.fetch("$", "(FLAGS)")
    assert typ == "OK" and len(data) == 2
    lines, st = raw(box, "SEARCH RETURN (SAVE MIN) SEEN")
    assert search(box, "$") == [1]
    # a failing SEARCH ... SAVE empties it (RFC 5182 2.1)
    lines, st = raw(box, "SEARCH RETURN (SAVE) FOO")
    assert st.split()[1] == b"BAD"
    assert search(box, "$") == []


def test_modseq(box):
    lines, st = raw(box, "SEARCH MODSEQ 1 SEEN")
    assert b"OK" in st
    srch = [x for x in lines if x.startswith(b"* SEARCH")][0]
    mm = re.match(rb"\* SEARCH 1 3 \(MODSEQ (\d+)\)", srch)
    assert mm, srch
    top = int(mm.group(1))
    # CONDSTORE got enabled: HIGHESTMODSEQ reported once
    assert any(b"HIGHESTMODSEQ" in x for x in lines)
    lines, st = raw(box, "SEARCH MODSEQ 1")
    top = int(re.search(rb"\(MODSEQ (\d+)\)", lines[-1]).group(1))
    assert search(box, "MODSEQ", str(top)) != []
    assert search(box, "MODSEQ", str(top + 1)) == []
    lines, st = raw(box, "SEARCH MODSEQ \"/flags/\\\\draft\" all 1 DRAFT")
    assert any(x.startswith(b"* SEARCH 4 (MODSEQ") for x in lines), lines


def test_search_slices(heron):
    """A BODY search over enough mail to take several slices; another
    session is answered meanwhile."""
    body = b"".join(b"line %d of filler text for the search test\n" % i
                    for i in range(2000))
    n = 150
    for i in range(n):
        extra = b"needle in message %d\n" % i if i % 50 == 7 else b""
        deliver(heron, "bob", crlf(b"Subject: bulk %d\n\n" % i + body +
                                   extra))
    m = imap_login(heron, "bob")
    m.select("INBOX")
    typ, data = m.search(None, "BODY", '"NEEDLE IN"')
    assert typ == "OK"
    assert nums(data) == [8, 58, 108]
    m.logout()


def test_esearch_modseq_of_min_and_max(box):
    """RFC 7162 3.1.5: with MIN alone ESEARCH's MODSEQ is the min
    message's, with MAX alone the max one's, with both the higher."""
    for seq in (3, 1, 2):       # modseqs rise in this order
        box.store(str(seq), "+FLAGS", "(mstest)")
    lines, _ = raw(box, "FETCH 1:3 (MODSEQ)")
    ms = {int(m.group(1)): int(m.group(2)) for m in
          (re.match(rb"\* (\d+) FETCH \(MODSEQ \((\d+)\)\)", x)
           for x in lines) if m}
    assert ms[2] > ms[1] > ms[3], ms

    def esearch(ret):
        lines, st = raw(box, "SEARCH RETURN (%s) 1:3 MODSEQ 1" % ret)
        assert b"OK" in st, st
        es = [x for x in lines if x.startswith(b"* ESEARCH")][0]
        return int(re.search(rb" MODSEQ (\d+)", es).group(1))
    assert esearch("MIN") == ms[1]
    assert esearch("MAX") == ms[3]
    assert esearch("MIN MAX") == ms[1]
    assert esearch("ALL") == ms[2]
    assert esearch("COUNT") == ms[2]
