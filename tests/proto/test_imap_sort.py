"""IMAP SORT / UID SORT / THREAD / UID THREAD (RFC 5256), ESORT (RFC 5267
3) and DISPLAYFROM/DISPLAYTO (RFC 5957) against the real daemon: every
sort key and REVERSE on a small mailbox APPENDed with chosen internal
dates (RFC 2047 subjects, a missing Date: header, missing From/Subject),
search criteria and CHARSET, an empty result, BAD and NO replies, both
threading algorithms, and a mailbox big enough to be sorted in several
slices (served from the MIME tree cache the second time)."""

import re

import pytest

import heronlib
from heronlib import PASSWORDS


def msg(headers, body_size):
    body = (b"y" * 79 + b"\n") * (body_size // 80)
    return b"".join(h + b"\n" for h in headers) + b"\n" + body


# (headers, body size, internal date)
MSGS = [
    ([b'From: "Zed" <zed@x.example>', b"To: bob@y.example",
      b"Cc: carol@z.example", b"Subject: Re: apple",
      b"Date: Wed, 3 Jan 2024 12:00:00 +0000",
      b"Message-ID: <1@x.example>"], 5000, "05-Jan-2024 12:00:00 +0000"),
    ([b'From: "Anna" <anna@x.example>', b'To: "Carl" <carl@y.example>',
      b"Subject: banana", b"Date: Mon, 1 Jan 2024 12:00:00 +0000",
      b"Message-ID: <2@x.example>"], 1000, "01-Jan-2024 12:00:00 +0000"),
    ([b'From: "Xavier" <bert@x.example>', b"To: alice@y.example",
      b'Cc: "Dora" <aaron@z.example>', b"Subject: =?UTF-8?Q?Apple?=",
      b"Message-ID: <3@x.example>", b"References: <2@x.example>"],
     3000, "02-Jan-2024 12:00:00 +0000"),
    ([b"From: <Mia@x.example>", b"Subject: [list] Banana (fwd)",
      b"Date: Thu, 4 Jan 2024 12:00:00 +0000",
      b"Message-ID: <4@x.example>", b"In-Reply-To: <1@x.example>"],
     2000, "03-Jan-2024 12:00:00 +0000"),
    ([b"Date: Sun, 31 Dec 2023 12:00:00 +0000",
      b"Message-ID: <5@x.example>", b"References: <missing@x.example>"],
     4000, "04-Jan-2024 12:00:00 +0000"),
]

SORTS = [
    ("ARRIVAL", [2, 3, 4, 5, 1]),
    ("REVERSE ARRIVAL", [1, 5, 4, 3, 2]),
    ("DATE", [5, 2, 3, 1, 4]),
    ("REVERSE DATE", [4, 1, 3, 2, 5]),
    ("SIZE", [2, 4, 3, 5, 1]),
    ("REVERSE SIZE", [1, 5, 3, 4, 2]),
    ("SUBJECT", [5, 1, 3, 2, 4]),
    # REVERSE does not reverse the implicit sequence order
    ("REVERSE SUBJECT", [2, 4, 1, 3, 5]),
    ("SUBJECT REVERSE DATE", [5, 1, 3, 4, 2]),
    ("FROM", [5, 2, 3, 4, 1]),
    ("REVERSE FROM", [1, 4, 3, 2, 5]),
    ("TO", [4, 5, 3, 1, 2]),
    ("CC", [2, 4, 5, 3, 1]),
    ("DISPLAYFROM", [5, 2, 4, 3, 1]),
    ("DISPLAYTO", [4, 5, 3, 1, 2]),
    ("CC SIZE", [2, 4, 5, 3, 1]),
]


def tagged(c, tag, line):
    """Sends "tag line"; returns (untagged lines, tagged reply)."""
    c.send("%s %s\r\n" % (tag, line))
    lines = []
    while True:
        r = c.readline()
        if r.startswith(tag.encode() + b" "):
            return lines, r
        lines.append(r)


def reply_nums(lines, word):
    for line in lines:
        if line == b"* " + word or line.startswith(b"* " + word + b" "):
            return [int(x) for x in line.split()[2:]]
    raise AssertionError("no %r in %r" % (word, lines))


def reply_line(lines, word):
    for line in lines:
        if line.startswith(b"* " + word):
            return line
    raise AssertionError("no %r in %r" % (word, lines))


def login(heron):
    c = heronlib.LineClient.connect(heron.imap_port)
    c.readline()
    _, r = tagged(c, "l", "LOGIN alice %s" % PASSWORDS["alice"])
    assert b"OK" in r
    return c


def append(c, tag, data, date):
    c.send('%s APPEND INBOX "%s" {%d}\r\n' % (tag, date, len(data)))
    assert c.readline().startswith(b"+")
    c.send(data + b"\r\n")
    while True:
        r = c.readline()
        if r.startswith(tag.encode() + b" "):
            assert b" OK" in r, r
            return


@pytest.fixture
def box(heron):
    c = login(heron)
    for i, (hdrs, size, date) in enumerate(MSGS):
        append(c, "a%d" % i, heronlib.crlf(msg(hdrs, size)), date)
    _, r = tagged(c, "s", "SELECT INBOX")
    assert b"OK" in r
    yield c
    c.close()


def uids(c):
    lines, r = tagged(c, "f", "FETCH 1:* (UID)")
    return [int(re.search(rb"UID (\d+)", x).group(1)) for x in lines
            if b"FETCH" in x]


def test_capability(heron):
    c = login(heron)
    lines, r = tagged(c, "c", "CAPABILITY")
    caps = reply_line(lines, b"CAPABILITY").split()
    for cap in (b"SORT", b"SORT=DISPLAY", b"ESORT", b"THREAD=REFERENCES",
                b"THREAD=ORDEREDSUBJECT"):
        assert cap in caps
    c.close()


def test_sort_keys(box):
    for i, (crit, want) in enumerate(SORTS):
        lines, r = tagged(box, "t%d" % i, "SORT (%s) UTF-8 ALL" % crit)
        assert b"OK" in r, (crit, r)
        assert reply_nums(lines, b"SORT") == want, crit


def test_sort_uid(box):
    u = uids(box)
    lines, r = tagged(box, "u", "UID SORT (SUBJECT) US-ASCII ALL")
    assert b"OK SORT" in r or b"OK UID SORT" in r
    assert reply_nums(lines, b"SORT") == [u[s - 1] for s in
                                           [5, 1, 3, 2, 4]]
    # the search keys are not UIDs in UID SORT unless UID is used
    lines, r = tagged(box, "u2", "UID SORT (REVERSE SIZE) UTF-8 UID %d:%d"
                      % (u[1], u[3]))
    assert reply_nums(lines, b"SORT") == [u[2], u[3], u[1]]


def test_sort_search(box):
    cases = [
        ("(SIZE) UTF-8 SUBJECT apple", [3, 1]),
        ("(SIZE) UTF-8 OR FROM anna FROM mia", [2, 4]),
        ("(SUBJECT) UTF-8 2:4", [3, 2, 4]),
        ("(DATE) UTF-8 BODY yyyy NOT SUBJECT banana", [5, 3, 1]),
        ("(SUBJECT) ISO-8859-1 SUBJECT APPLE", [1, 3]),
        ("(SUBJECT) UTF-8 SUBJECT nomatch", []),
        ("(ARRIVAL) \"UTF-8\" SENTBEFORE 2-Jan-2024", [2, 5]),
    ]
    for i, (args, want) in enumerate(cases):
        lines, r = tagged(box, "q%d" % i, "SORT " + args)
        assert b"OK" in r, (args, r)
        assert reply_nums(lines, b"SORT") == want, args
    lines, r = tagged(box, "e", "SORT (SUBJECT) UTF-8 SUBJECT nomatch")
    assert b"* SORT" in lines


def test_sort_literal_charset(box):
    box.send('x SORT (SUBJECT) ISO-8859-1 SUBJECT {5}\r\n')
    assert box.readline().startswith(b"+")
    box.send("APPLE\r\n")
    lines = []
    while True:
        r = box.readline()
        if r.startswith(b"x "):
            break
        lines.append(r)
    assert b"OK" in r
    assert reply_nums(lines, b"SORT") == [1, 3]


def test_sort_errors(heron, box):
    bad = [
        "SORT SUBJECT UTF-8 ALL",
        "SORT (BOGUS) UTF-8 ALL",
        "SORT () UTF-8 ALL",
        "SORT (REVERSE) UTF-8 ALL",
        "SORT (SUBJECT) UTF-8",
        "SORT (SUBJECT)",
        "SORT (SUBJECT) UTF-8 NOSUCHKEY",
        "SORT RETURN (BOGUS) (SUBJECT) UTF-8 ALL",
        "THREAD BOGUS UTF-8 ALL",
        "THREAD REFERENCES UTF-8",
        "THREAD",
    ]
    for i, line in enumerate(bad):
        lines, r = tagged(box, "b%d" % i, line)
        assert r.startswith(b"b%d BAD" % i), (line, r)
    lines, r = tagged(box, "n", "SORT (SUBJECT) X-NO-SUCH-CHARSET ALL")
    assert r.startswith(b"n NO [BADCHARSET"), r
    lines, r = tagged(box, "n2", "THREAD REFERENCES X-NO-SUCH ALL")
    assert r.startswith(b"n2 NO [BADCHARSET"), r
    # not selected
    c = login(heron)
    lines, r = tagged(c, "z", "SORT (SUBJECT) UTF-8 ALL")
    assert not r.startswith(b"z OK"), r
    c.close()


def test_esort(box):
    lines, r = tagged(box, "e1", "SORT RETURN (MIN MAX COUNT ALL) "
                      "(SUBJECT) UTF-8 ALL")
    assert b"OK" in r
    assert reply_line(lines, b"ESEARCH") == \
        b'* ESEARCH (TAG "e1") MIN 5 MAX 4 ALL 5,1,3,2,4 COUNT 5'
    lines, r = tagged(box, "e2", "SORT RETURN () (ARRIVAL) UTF-8 ALL")
    assert reply_line(lines, b"ESEARCH") == \
        b'* ESEARCH (TAG "e2") ALL 2:5,1'
    lines, r = tagged(box, "e3", "SORT RETURN (COUNT MIN) (ARRIVAL) UTF-8 "
                      "SUBJECT nomatch")
    assert reply_line(lines, b"ESEARCH") == b'* ESEARCH (TAG "e3") COUNT 0'
    u = uids(box)
    lines, r = tagged(box, "e4", "UID SORT RETURN (MAX) (SIZE) UTF-8 ALL")
    assert reply_line(lines, b"ESEARCH") == \
        b'* ESEARCH (TAG "e4") UID MAX %d' % u[0]


def test_sort_save(box):
    """RFC 5182 1: SAVE works for SORT too (SEARCHRES); alone it gives no
    ESORT reply; with MIN alone only the first in sort order is saved; a
    failed SORT ... SAVE empties "$"."""
    lines, r = tagged(box, "v1", "SORT RETURN (SAVE) (SUBJECT) UTF-8 2:4")
    assert b"OK" in r, r
    assert not any(x.startswith(b"* ESEARCH") or x.startswith(b"* SORT")
                   for x in lines), lines
    lines, r = tagged(box, "v2", "SEARCH $")
    assert reply_nums(lines, b"SEARCH") == [2, 3, 4]
    lines, r = tagged(box, "v3", "SORT RETURN (SAVE MIN) (SUBJECT) UTF-8 ALL")
    assert reply_line(lines, b"ESEARCH") == b'* ESEARCH (TAG "v3") MIN 5'
    lines, r = tagged(box, "v4", "SEARCH $")
    assert reply_nums(lines, b"SEARCH") == [5]
    lines, r = tagged(box, "v5", "SORT RETURN (SAVE) (SUBJECT) BOGUS-8 ALL")
    assert b" NO " in r, r
    lines, r = tagged(box, "v6", "SEARCH $")
    assert reply_nums(lines, b"SEARCH") == []


def test_thread(box):
    lines, r = tagged(box, "t1", "THREAD REFERENCES UTF-8 ALL")
    assert b"OK" in r
    assert reply_line(lines, b"THREAD") == b"* THREAD (5)(2 3)(1 4)"
    lines, r = tagged(box, "t2", "THREAD ORDEREDSUBJECT UTF-8 ALL")
    assert reply_line(lines, b"THREAD") == b"* THREAD (5)(2 4)(3 1)"
    lines, r = tagged(box, "t3", "THREAD REFERENCES US-ASCII 3:5")
    # 3 has no parent in the searched set; 4 and 5 neither
    assert reply_line(lines, b"THREAD") == b"* THREAD (5)(3)(4)"
    lines, r = tagged(box, "t4", "THREAD REFERENCES UTF-8 SUBJECT nomatch")
    assert b"* THREAD" in lines
    u = uids(box)
    lines, r = tagged(box, "t5", "UID THREAD REFERENCES UTF-8 ALL")
    assert reply_line(lines, b"THREAD") == \
        b"* THREAD (%d)(%d %d)(%d %d)" % (u[4], u[1], u[2], u[0], u[3])


def test_sort_big(heron):
    """Enough messages for several slices; the second run uses the
    cached trees and must agree."""
    c = login(heron)
    n = 400
    for i in range(n):
        subj = b"Re: topic %03d" % ((i * 7) % 50)
        hdrs = [b"From: u%d@x.example" % (i % 13), b"Subject: " + subj,
                b"Message-ID: <m%d@x.example>" % i,
                b"Date: Mon, 1 Jan 2024 12:%02d:%02d +0000" % (i // 60,
                                                               i % 60)]
        if i > 0:
            hdrs.append(b"References: <m%d@x.example>" % (i - 1))
        append(c, "a%d" % i, heronlib.crlf(msg(hdrs, 200)),
               "01-Jan-2024 12:00:00 +0000")
    _, r = tagged(c, "s", "SELECT INBOX")
    keyed = sorted(range(1, n + 1),
                   key=lambda s: (-(((s - 1) * 7) % 50), s))
    for run in range(2):
        lines, r = tagged(c, "r%d" % run, "SORT (REVERSE SUBJECT) UTF-8 ALL")
        assert b"OK" in r
        assert reply_nums(lines, b"SORT") == keyed
    lines, r = tagged(c, "t", "THREAD REFERENCES UTF-8 ALL")
    assert reply_line(lines, b"THREAD") == \
        b"* THREAD (" + b" ".join(b"%d" % i for i in range(1, n + 1)) + \
        b")"
    c.close()
