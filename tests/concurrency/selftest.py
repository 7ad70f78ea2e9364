"""selftest.py: proves the checker can fail. Scripted response streams go
through the model offline (no server): each broken stream must produce a
violation naming its rule, each clean one none.

run() returns (passed, failed) over the cases.
"""

from imapwire import parse_response
from model import Cmd, Session, Stats, World

KEY = ("u1", "INBOX")
SELECT = [b"* FLAGS (\\Seen \\Deleted)", b"* 3 EXISTS", b"* 0 RECENT",
          b"* OK [UIDVALIDITY 7] x", b"* OK [UIDNEXT 4] x",
          b"T1 OK [READ-WRITE] done",
          b"* 1 FETCH (UID 1 FLAGS ())", b"* 2 FETCH (UID 2 FLAGS ())",
          b"* 3 FETCH (UID 3 FLAGS (\\Seen))", b"T2 OK done"]


def session(world, who="s"):
    s = Session(world, who)
    feed(s, Cmd("T1", "SELECT", key=KEY), SELECT[:6])
    feed(s, Cmd("T2", "FETCH", seqs=[1, 2, 3]), SELECT[6:])
    return s


def feed(s, cmd, lines):
    if cmd is not None:
        s.begin(cmd)
    for ln in lines:
        r = parse_response(ln)
        if r.kind == "tagged":
            s.on_tagged(r)
        else:
            s.on_response(r)


def fetch(seqs):
    return Cmd("T3", "FETCH", seqs=seqs)


# (name, expected substring of the violation or None, steps(world))
def case_clean(w):
    s = session(w)
    feed(s, Cmd("T3", "NOOP"), [b"* 2 EXPUNGE", b"* 3 EXISTS",
                                b"* 3 FETCH (UID 9 FLAGS (\\Recent))",
                                b"T3 OK"])
    feed(s, Cmd("T4", "FETCH", True, uids=[9]),
         [b"* 3 FETCH (UID 9 FLAGS (\\Recent \\Seen))", b"* 1 EXPUNGE",
          b"T4 OK"])


def case_exists_down(w):
    feed(session(w), Cmd("T3", "NOOP"), [b"* 2 EXISTS", b"T3 OK"])


def case_expunge_range(w):
    feed(session(w), Cmd("T3", "NOOP"), [b"* 4 EXPUNGE", b"T3 OK"])


def case_expunge_in_fetch(w):
    feed(session(w), fetch([1]), [b"* 1 EXPUNGE", b"T3 OK"])


def case_expunge_in_store(w):
    feed(session(w), Cmd("T3", "STORE", seqs=[1], op="+",
                         flags=frozenset(), silent=True),
         [b"* 1 EXPUNGE", b"T3 OK"])


def case_expunge_in_close(w):
    feed(session(w), Cmd("T3", "CLOSE"), [b"* 1 EXPUNGE", b"T3 OK"])


def case_fetch_range(w):
    feed(session(w), fetch([1]), [b"* 5 FETCH (FLAGS ())", b"T3 OK"])


def case_uid_mismatch(w):
    feed(session(w), fetch([2]), [b"* 2 FETCH (UID 3)", b"T3 OK"])


def case_uid_order(w):
    s = session(w)
    feed(s, Cmd("T3", "NOOP"), [b"* 4 EXISTS", b"T3 OK"])
    feed(s, fetch([4]), [b"* 4 FETCH (UID 2)", b"T4 OK"])


def case_uid_back(w):
    s = session(w)
    feed(s, Cmd("T3", "NOOP"), [b"* 3 EXPUNGE", b"* 3 EXISTS", b"T3 OK"])
    feed(s, fetch([3]), [b"* 3 FETCH (UID 3)", b"T3 OK"])


def case_store_flags(w):
    feed(session(w), Cmd("T3", "STORE", seqs=[1], op="+",
                         flags=frozenset(["\\flagged"]), silent=False),
         [b"* 1 FETCH (FLAGS (\\Seen))", b"T3 OK"])


def case_recent_twice(w):
    a, b = session(w, "a"), session(w, "b")
    feed(a, Cmd("T3", "NOOP"), [b"* 4 EXISTS", b"* 4 FETCH (UID 5 FLAGS "
                                b"(\\Recent))", b"T3 OK"])
    feed(b, Cmd("T3", "NOOP"), [b"* 4 EXISTS", b"* 4 FETCH (UID 5 FLAGS "
                                b"(\\Recent))", b"T3 OK"])


def case_recent_none(w):
    from checker import verify_recent
    a = session(w, "a")
    feed(a, Cmd("T3", "NOOP"), [b"* 4 EXISTS", b"* 4 FETCH (UID 5 FLAGS "
                                b"())", b"T3 OK"])
    verify_recent(w, {})


def case_uidvalidity(w):
    session(w, "a")
    s = Session(w, "b")
    feed(s, Cmd("T1", "SELECT", key=KEY),
         [ln.replace(b"UIDVALIDITY 7", b"UIDVALIDITY 8")
          for ln in SELECT[:6]])


def case_content(w):
    w.add_original("m1@x", b"Message-ID: <m1@x>\r\n\r\nbody\r\n", "append")
    data = b"Message-ID: <m1@x>\r\n\r\nbodY\r\n"
    feed(session(w), fetch([1]),
         [b"* 1 FETCH (BODY[] {%d}\r\n%s)" % (len(data), data), b"T3 OK"])


def case_expunged_back(w):
    s = session(w)
    feed(s, Cmd("T3", "NOOP"), [b"* 1 EXPUNGE", b"T3 OK"])
    feed(s, Cmd("T4", "SEARCH", True), [b"* SEARCH 1 2", b"T4 OK"])


def case_expunge_outside(w):
    s = session(w)
    s.on_response(parse_response(b"* 1 EXPUNGE"))


def case_search_range(w):
    feed(session(w), Cmd("T3", "SEARCH"), [b"* SEARCH 1 4", b"T3 OK"])


def case_deleted_survives(w):
    s = session(w)
    feed(s, Cmd("T3", "STORE", seqs=[2], op="+",
                flags=frozenset(["\\deleted"]), silent=False),
         [b"* 2 FETCH (FLAGS (\\Deleted))", b"T3 OK"])
    feed(s, Cmd("T4", "EXPUNGE"), [b"T4 OK"])


def case_uid_store_expunge_sync(w):
    """UID STORE answered, then EXPUNGE moves the message down and a sync
    FETCH reports another session's later change: clean."""
    feed(session(w), Cmd("T3", "STORE", True, uids=[3], op="+",
                         flags=frozenset(["\\flagged"]), silent=False),
         [b"* 3 FETCH (FLAGS (\\Flagged \\Seen) UID 3)", b"* 1 EXPUNGE",
          b"* 2 FETCH (UID 3 FLAGS (\\Seen))", b"T3 OK"])


def case_uid_store_expunge_wrong(w):
    feed(session(w), Cmd("T3", "STORE", True, uids=[3], op="+",
                         flags=frozenset(["\\flagged"]), silent=False),
         [b"* 1 EXPUNGE", b"* 2 FETCH (FLAGS (\\Seen) UID 3)",
          b"* 2 FETCH (UID 3 FLAGS (\\Flagged \\Seen))", b"T3 OK"])


CASES = [
    ("clean stream", None, case_clean),
    ("EXISTS decreases", "only EXPUNGE may lower", case_exists_down),
    ("EXPUNGE out of range", "out of range", case_expunge_range),
    ("EXPUNGE during FETCH", "during FETCH", case_expunge_in_fetch),
    ("EXPUNGE during STORE", "during STORE", case_expunge_in_store),
    ("EXPUNGE during CLOSE", "during CLOSE", case_expunge_in_close),
    ("EXPUNGE outside a command", "no command in progress",
     case_expunge_outside),
    ("FETCH out of range", "FETCH 5 out of range", case_fetch_range),
    ("UID mismatch", "has UID 2", case_uid_mismatch),
    ("UID not ascending", "not above", case_uid_order),
    ("new message with old UID", "came back", case_uid_back),
    ("STORE result wrong", "STORE +FLAGS", case_store_flags),
    ("\\Recent in two sessions", "two sessions", case_recent_twice),
    ("\\Recent in no session", "none with \\Recent", case_recent_none),
    ("UIDVALIDITY changes", "UIDVALIDITY of", case_uidvalidity),
    ("content differs", "content differs", case_content),
    ("expunged UID returns", "expunged UIDs", case_expunged_back),
    ("SEARCH out of range", "outside 1..3", case_search_range),
    ("\\Deleted survives EXPUNGE", "survived EXPUNGE", case_deleted_survives),
    ("UID STORE, EXPUNGE, then sync FETCH", None,
     case_uid_store_expunge_sync),
    ("UID STORE wrong after EXPUNGE", "STORE +FLAGS",
     case_uid_store_expunge_wrong),
]


def run(verbose=False):
    passed = failed = 0
    for name, want, fn in CASES:
        w = World(Stats())
        fn(w)
        got = [m for _, m, _ in w.stats.violations]
        if want is None:
            good = not got
        else:
            good = any(want in m for m in got)
        if good:
            passed += 1
        else:
            failed += 1
            print("SELF-TEST FAILED: %s: expected %r, got %r"
                  % (name, want, got))
        if verbose:
            print("self-test %s: %s %r" % (name, "ok" if good else "FAIL",
                                            got[:2]))
    return passed, failed
