#!/usr/bin/env python3
"""Regenerates the *.expected files of this corpus from Dovecot.

Runs a throwaway, preauthenticated /usr/lib/dovecot/imap on a temporary
Maildir (no network, no daemon) and records, per message, the ENVELOPE,
BODY, BODYSTRUCTURE and RFC822.SIZE strings and, for a fixed list of
section specifiers, the virtual size and FNV-1a 64 hash of the returned
content. Needs root (Dovecot drops to uid 65534). test_imap_bodystructure.c
compares our output against these files.

Format of NAME.expected, one record after another:
    ITEM <label> <n>\n<n raw bytes>\n
    SECTION <spec> <size> <fnv64 hex>|NIL\n
"""
import glob, os, re, shutil, subprocess, sys, tempfile

SECTIONS = ["", "HEADER", "TEXT", "1", "1.MIME", "1.HEADER", "1.TEXT",
            "2", "2.MIME", "2.HEADER", "2.TEXT", "3", "3.MIME", "4", "5",
            "1.1", "1.1.MIME", "1.2", "1.2.MIME", "1.1.1", "1.1.2",
            "2.1", "2.2", "2.1.MIME", "1.1.1.MIME", "1.1.TEXT", "2.1.1",
            "HEADER.FIELDS (SUBJECT FROM)", "HEADER.FIELDS.NOT (SUBJECT FROM)",
            "2.HEADER.FIELDS (SUBJECT)", "1.HEADER.FIELDS (FROM)"]
ITEMS = ["ENVELOPE", "BODYSTRUCTURE", "BODY", "RFC822.SIZE"]


def fnv64(data):
    h = 0xcbf29ce484222325
    for b in data:
        h ^= b
        h = (h * 0x100000001b3) & 0xffffffffffffffff
    return h


def decode_value(v):
    if v.startswith(b"NIL"):
        return None
    if v.startswith(b"{"):
        m = re.match(rb"\{(\d+)\}\r\n", v)
        n = int(m.group(1))
        return v[m.end():m.end() + n]
    if v.startswith(b'"'):
        out, i = bytearray(), 1
        while v[i:i + 1] != b'"':
            if v[i:i + 1] == b"\\":
                i += 1
            out += v[i:i + 1]
            i += 1
        return bytes(out)
    raise ValueError(v[:40])


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    files = sorted(glob.glob(os.path.join(here, "*.eml")))
    tmp = tempfile.mkdtemp(prefix="heron-oracle-")
    md = os.path.join(tmp, "Maildir")
    for d in ("cur", "new", "tmp"):
        os.makedirs(os.path.join(md, d))
    for i, f in enumerate(files):
        shutil.copy(f, os.path.join(md, "cur", "%d.%05d.x:2," % (1000 + i, i)))
    conf = os.path.join(tmp, "dovecot.conf")
    with open(conf, "w") as c:
        c.write("base_dir = %s\nstate_dir = %s\nlog_path = %s/log\n"
                "protocols =\nssl = no\nmail_uid = 65534\nmail_gid = 65534\n"
                "first_valid_uid = 0\nfirst_valid_gid = 0\n" % (tmp, tmp, tmp))
    subprocess.run(["chown", "-R", "65534:65534", tmp], check=True)
    cmds, labels = [], []
    for n in range(1, len(files) + 1):
        for it in ITEMS:
            labels.append((n, "ITEM", it))
            cmds.append("%s" % it)
        for s in SECTIONS:
            labels.append((n, "SECTION", s))
            cmds.append("BODY.PEEK[%s]" % s)
    env = dict(os.environ, USER="nobody", HOME=tmp, MAIL="maildir:" + md)
    proc = subprocess.Popen(["/usr/lib/dovecot/imap", "-c", conf],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            env=env)

    def command(tag, text):
        proc.stdin.write(b"%s %s\r\n" % (tag, text.encode()))
        proc.stdin.flush()
        resp = b""
        while True:
            line = proc.stdout.readline()
            if line.startswith(tag + b" "):
                return resp, line
            resp += line
            m = re.search(rb"\{(\d+)\}\r?\n$", line)
            if m:
                resp += proc.stdout.read(int(m.group(1)))

    command(b"s", "SELECT INBOX")
    results = {}
    for i, c in enumerate(cmds):
        chunk, status = command(b"t%d" % i, "FETCH %d (%s)" % (labels[i][0], c))
        if not status.split()[1] == b"OK":
            results[i] = None
            continue
        # "* n FETCH (LABEL value)\r\n"; LABEL has no spaces except in [].
        mm = re.match(rb"\* \d+ FETCH \((?:[A-Z0-9.]*\[[^\]]*\]|[A-Z0-9.]+) ",
                      chunk)
        results[i] = chunk[mm.end():chunk.rindex(b")")]
    command(b"z", "LOGOUT")
    proc.wait()
    per_file = {}
    for i, (n, kind, name) in enumerate(labels):
        rec = per_file.setdefault(n, [])
        v = results[i]
        if kind == "ITEM":
            rec.append(b"ITEM %s %d\n%s\n" % (name.encode(), len(v), v))
        else:
            content = decode_value(v) if v is not None else None
            spec = name.replace(" ", "_") or "-"
            if content is None:
                rec.append(b"SECTION %s NIL\n" % spec.encode())
            else:
                rec.append(b"SECTION %s %d %016x\n" % (spec.encode(),
                           len(content), fnv64(content)))
    for n, f in enumerate(files, 1):
        with open(f[:-4] + ".expected", "wb") as o:
            o.write(b"".join(per_file[n]))
    shutil.rmtree(tmp)


if __name__ == "__main__":
    sys.exit(main())
