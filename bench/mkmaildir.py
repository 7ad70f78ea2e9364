#!/usr/bin/env python3
"""mkmaildir.py: writes benchmark Maildirs for bench/run.

  mkmaildir.py box DIR COUNT WORD   COUNT messages of 2-4 KB into DIR/cur,
                                    varied headers and bodies; WORD is in
                                    the body of exactly 1 % of them (every
                                    100th, starting with the 50th)
  mkmaildir.py big DIR BYTES        one message of BYTES bytes into DIR/cur

Deterministic (fixed seed), CRLF line ends, file names
"<time>.M<n>P1.bench,S=<size>:2," so both servers take the size from the
name and the messages start without flags. Limits: COUNT <= 1,000,000,
BYTES <= 1 GiB.
"""
import os
import random
import sys

WORDS = ("account agenda alpha archive audit backup balance batch beta "
         "billing board branch budget build cache calendar campaign "
         "capacity change client cluster commit contract cost customer "
         "deadline delivery deploy design draft estimate event feedback "
         "filter forecast gamma invoice issue kernel launch ledger license "
         "meeting memo merge metric migration milestone network notice "
         "offer office order outage patch payment pipeline plan policy "
         "portal priority project proposal quarter query quota release "
         "report request review revenue roadmap schedule schema security "
         "server service shipment sprint staging status storage summary "
         "supplier support survey target team ticket timeline training "
         "travel update upgrade vendor version volume warehouse webinar "
         "weekly workshop").split()
NAMES = ("Alice Bob Carol Dave Erin Frank Grace Heidi Ivan Judy Mallory "
         "Niaj Olivia Peggy Rupert Sybil Trent Victor Walter Yolanda").split()
DOMAINS = ("example.com example.org example.net mail.example.com "
           "corp.example lists.example.org").split()
MONTHS = "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split()
DAYS = "Mon Tue Wed Thu Fri Sat Sun".split()


def sentence(rng, n):
    return " ".join(rng.choice(WORDS) for _ in range(n))


def body_lines(rng, size, word):
    lines, total = [], 0
    while total < size:
        line = sentence(rng, rng.randint(6, 12))
        if word and not lines:
            line = line + " " + word + " " + sentence(rng, 2)
        lines.append(line)
        total += len(line) + 2
    return lines


def message(rng, i, word):
    who = rng.choice(NAMES)
    dom = rng.choice(DOMAINS)
    hdr = [
        "Return-Path: <%s@%s>" % (who.lower(), dom),
        "Received: from mx%d.%s (mx%d.%s [192.0.2.%d])\r\n"
        "\tby bench.localhost with ESMTP id %08X; %s, %d %s 2024 "
        "%02d:%02d:%02d +0000" % (i % 7, dom, i % 7, dom, i % 250 + 1,
                                  i * 2654435761 % (1 << 32),
                                  DAYS[i % 7], i % 28 + 1, MONTHS[i % 12],
                                  i % 24, i % 60, (i * 7) % 60),
        "From: %s <%s@%s>" % (who, who.lower(), dom),
        "To: %s <%s@bench.localhost>" % (rng.choice(NAMES), "bench"),
        "Subject: %s %s #%d" % (rng.choice(WORDS).capitalize(),
                                sentence(rng, rng.randint(2, 6)), i),
        "Date: %s, %d %s 2024 %02d:%02d:%02d +0000" % (
            DAYS[i % 7], i % 28 + 1, MONTHS[i % 12], i % 24, i % 60,
            (i * 7) % 60),
        "Message-ID: <%d.%x@%s>" % (i, rng.getrandbits(32), dom),
        "MIME-Version: 1.0",
        "Content-Type: text/plain; charset=us-ascii",
    ]
    if i % 3 == 0:
        hdr.append("In-Reply-To: <%d.0@%s>" % (i - 1, dom))
    if i % 5 == 0:
        hdr.append("Cc: %s <%s@%s>" % (rng.choice(NAMES), "cc", dom))
    head = "\r\n".join(hdr) + "\r\n\r\n"
    size = rng.randint(2048, 4096) - len(head)
    return (head + "\r\n".join(body_lines(rng, max(size, 100), word)) +
            "\r\n").encode()


def write(cur, i, data):
    name = "%d.M%dP1.bench,S=%d:2," % (1700000000 + i, i, len(data))
    with open(os.path.join(cur, name), "wb") as f:
        f.write(data)


def main():
    if len(sys.argv) < 4 or sys.argv[1] not in ("box", "big"):
        sys.exit(__doc__)
    d = sys.argv[2]
    for sub in ("cur", "new", "tmp"):
        os.makedirs(os.path.join(d, sub), exist_ok=True)
    cur = os.path.join(d, "cur")
    if sys.argv[1] == "box":
        count, word = int(sys.argv[3]), sys.argv[4]
        if not 1 <= count <= 1000000:
            sys.exit("bad COUNT")
        rng = random.Random(42)
        for i in range(1, count + 1):
            write(cur, i, message(rng, i, word if i % 100 == 50 else None))
    else:
        size = int(sys.argv[3])
        if not 4096 <= size <= (1 << 30):
            sys.exit("bad BYTES")
        rng = random.Random(7)
        head = message(rng, 1, None).split(b"\r\n\r\n", 1)[0] + b"\r\n\r\n"
        line = (b"x" * 76) + b"\r\n"
        left = size - len(head)
        with open(os.path.join(cur, "1700000000.M1P1.bench,S=%d:2," % size),
                  "wb") as f:
            f.write(head)
            chunk = line * 8192
            while left >= len(chunk):
                f.write(chunk)
                left -= len(chunk)
            while left >= len(line):
                f.write(line)
                left -= len(line)
            if left >= 2:
                f.write(b"y" * (left - 2) + b"\r\n")
            elif left:
                f.write(b"\n" * left)


if __name__ == "__main__":
    main()
