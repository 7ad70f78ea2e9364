"""`make install` (scripts/install.sh), the systemd unit, the man pages.

Installs the binary under test ($HERON_BIN, or build/heron) into a
temporary DESTDIR with PREFIX=/usr, without rebuilding it: `make install
BUILD=<its directory>` when make says the binary is up to date, else
scripts/install.sh directly. Then checks the file list and modes, that a
second run changes nothing and never touches an existing heron.conf, that
the installed binary and configuration work (check-config, and a short
`serve` with delivery and POP3 on free ports), that the man pages render
without groff warnings (and pass `mandoc -Tlint` when mandoc is
installed), that `systemd-analyze verify` accepts the unit (skipped when
systemd-analyze is missing), and that every key config.c accepts is
documented in heron.conf(5) and the example configuration.
"""

import os
import imaplib
import re
import shutil
import signal
import smtplib
import poplib
import stat
import subprocess
import tempfile
import time

import pytest

import heronlib
from heronlib import PASSWORDS

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))

# Installed with PREFIX=/usr, SYSCONFDIR=/etc: path -> mode.
EXPECTED = {
    "usr/sbin/heron": 0o755,
    "usr/share/man/man8/heron.8": 0o644,
    "usr/share/man/man5/heron.conf.5": 0o644,
    "usr/lib/systemd/system/heron.service": 0o644,
    "usr/share/doc/heron/heron.conf.example": 0o644,
    "usr/share/doc/heron/postfix-main.cf.example": 0o644,
    "etc/heron/heron.conf": 0o644,
}


def build_dir():
    return os.path.dirname(heronlib.heron_bin())


def install(destdir, prefix="/usr", sysconfdir=None, user=None):
    """Installs into destdir; returns the CompletedProcess. Uses `make
    install` only if make would not rebuild the binary (other people's
    edits must not trigger a build here)."""
    build = build_dir()
    args = ["DESTDIR=" + str(destdir), "PREFIX=" + prefix, "BUILD=" + build]
    if sysconfdir is not None:
        args.append("SYSCONFDIR=" + sysconfdir)
    up_to_date = subprocess.run(
        ["make", "-q", "-C", ROOT, "BUILD=" + build,
         os.path.join(build, "heron")],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        timeout=60).returncode == 0
    if up_to_date and user is None:
        cmd = ["make", "-s", "-C", ROOT, "install"] + args
    else:
        cmd = ["env"] + args + [os.path.join(ROOT, "scripts", "install.sh")]
    if user is not None:
        cmd = ["setpriv", "--reuid=%d" % user, "--regid=%d" % user,
               "--clear-groups"] + cmd
    return subprocess.run(cmd, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, timeout=120,
                          universal_newlines=True)


def tree(destdir):
    """Regular files under destdir: relative path -> (mode, mtime_ns)."""
    out = {}
    for dirpath, _, files in os.walk(str(destdir)):
        for name in files:
            p = os.path.join(dirpath, name)
            st = os.lstat(p)
            out[os.path.relpath(p, str(destdir))] = (
                stat.S_IMODE(st.st_mode), st.st_mtime_ns)
    return out


@pytest.fixture(scope="module")
def dest(tmp_path_factory):
    d = tmp_path_factory.mktemp("dest")
    r = install(d)
    assert r.returncode == 0, r.stdout + r.stderr
    return d


def read(path):
    with open(str(path), encoding="utf-8") as f:
        return f.read()


# ---------------------------------------------------------------- files

def test_file_list_and_modes(dest):
    files = tree(dest)
    assert sorted(files) == sorted(EXPECTED)
    for rel, mode in EXPECTED.items():
        assert files[rel][0] == mode, "%s has mode %o" % (rel, files[rel][0])
    for dirpath, dirs, _ in os.walk(str(dest)):
        for name in dirs:
            mode = stat.S_IMODE(os.stat(os.path.join(dirpath, name)).st_mode)
            assert mode == 0o755, (dirpath, name, oct(mode))


def test_installed_copies_match_sources(dest):
    with open(heronlib.heron_bin(), "rb") as a, \
            open(str(dest / "usr/sbin/heron"), "rb") as b:
        assert a.read() == b.read()
    for src, rel in [("man/heron.8", "usr/share/man/man8/heron.8"),
                     ("man/heron.conf.5", "usr/share/man/man5/heron.conf.5"),
                     ("etc/heron.conf.example",
                      "usr/share/doc/heron/heron.conf.example"),
                     ("dist/postfix-main.cf.example",
                      "usr/share/doc/heron/postfix-main.cf.example"),
                     ("etc/heron.conf.example", "etc/heron/heron.conf")]:
        assert read(os.path.join(ROOT, src)) == read(dest / rel), rel


def test_unit_names_installed_paths(dest):
    unit = read(dest / "usr/lib/systemd/system/heron.service")
    assert re.search(r"^ExecStart=/usr/sbin/heron serve -c "
                     r"/etc/heron/heron\.conf$", unit, re.M), unit
    assert "/usr/local" not in unit
    for line in ["Type=simple", "KillMode=mixed", "Restart=on-failure",
                 "ExecReload=/bin/kill -HUP $MAINPID", "NoNewPrivileges=yes",
                 "ProtectSystem=strict", "PrivateTmp=yes",
                 "RuntimeDirectory=heron"]:
        assert re.search("^" + re.escape(line) + "$", unit, re.M), line
    # No CAP_DAC_OVERRIDE: state_dir stays root's (master.c).
    assert unit_caps(unit) == {"CAP_NET_BIND_SERVICE", "CAP_SETUID",
                               "CAP_SETGID", "CAP_CHOWN", "CAP_KILL"}


def unit_caps(unit):
    """The union of the unit's CapabilityBoundingSet= lines."""
    caps = set()
    for line in re.findall(r"^CapabilityBoundingSet=(.*)$", unit, re.M):
        caps.update(line.split())
    return caps


def test_idempotent_and_keeps_config(tmp_path):
    r = install(tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    conf = tmp_path / "etc/heron/heron.conf"
    with open(str(conf), "a") as f:
        f.write("# edited by the admin\n")
    before = tree(tmp_path)
    time.sleep(0.05)
    r = install(tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "left unchanged" in r.stdout
    after = tree(tmp_path)
    assert sorted(after) == sorted(before)
    assert after["etc/heron/heron.conf"] == before["etc/heron/heron.conf"]
    assert read(conf).endswith("# edited by the admin\n")
    for rel in after:
        assert after[rel][0] == before[rel][0], rel


def test_prefix_and_sysconfdir(tmp_path):
    r = install(tmp_path, prefix="/opt/heron", sysconfdir="/opt/etc")
    assert r.returncode == 0, r.stdout + r.stderr
    files = tree(tmp_path)
    assert "opt/heron/sbin/heron" in files
    assert "opt/heron/lib/systemd/system/heron.service" in files
    assert "opt/heron/share/man/man5/heron.conf.5" in files
    unit = read(tmp_path / "opt/heron/lib/systemd/system/heron.service")
    assert "ExecStart=/opt/heron/sbin/heron serve -c " \
        "/opt/etc/heron/heron.conf\n" in unit
    conf = read(tmp_path / "opt/etc/heron/heron.conf")
    assert re.search(r"^passwd_file = /opt/etc/heron/passwd$", conf, re.M)
    assert "/etc/heron/" not in conf.replace("/opt/etc/heron/", "")


def test_refuses_relative_prefix_and_missing_binary(tmp_path):
    env = dict(os.environ, DESTDIR=str(tmp_path), PREFIX="usr",
               BUILD=build_dir())
    r = subprocess.run([os.path.join(ROOT, "scripts", "install.sh")],
                       env=env, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=60)
    assert r.returncode != 0 and b"absolute" in r.stderr
    env.update(PREFIX="/usr", BUILD=str(tmp_path / "nowhere"))
    r = subprocess.run([os.path.join(ROOT, "scripts", "install.sh")],
                       env=env, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=60)
    assert r.returncode != 0 and b"not found" in r.stderr
    assert not os.path.exists(str(tmp_path / "usr"))


def test_unprivileged_install(tmp_path):
    """DESTDIR installs need no root and change no owners (as root, the
    install runs as nobody into a directory nobody owns)."""
    if os.geteuid() != 0:
        d = tmp_path / "d"
        r = install(d)
        uid = os.geteuid()
        assert r.returncode == 0, r.stdout + r.stderr
        for rel in EXPECTED:
            assert os.stat(str(d / rel)).st_uid == uid, rel
        return
    if shutil.which("setpriv") is None:
        pytest.skip("setpriv missing")
    top = tempfile.mkdtemp(prefix="heron-install-")
    try:
        os.chmod(top, 0o755)
        os.chown(top, 65534, 65534)
        d = os.path.join(top, "d")
        r = install(d, user=65534)
        if r.returncode != 0 and "Permission denied" in r.stderr:
            pytest.skip("tree or binary not readable by nobody: " +
                        r.stderr)
        assert r.returncode == 0, r.stdout + r.stderr
        for rel in EXPECTED:
            assert os.stat(os.path.join(d, rel)).st_uid == 65534, rel
    finally:
        shutil.rmtree(top, ignore_errors=True)


# ---------------------------------------------------------------- running

def test_installed_binary_runs(dest):
    r = subprocess.run([str(dest / "usr/sbin/heron"), "version"],
                       stdout=subprocess.PIPE, timeout=30)
    assert r.returncode == 0
    assert re.match(rb"heron \d+\.\d+\.\d+", r.stdout), r.stdout


def test_installed_config_passes_check(dest):
    """The installed heron.conf is valid as shipped."""
    conf = str(dest / "etc/heron/heron.conf")
    r = subprocess.run([str(dest / "usr/sbin/heron"), "check-config",
                        "-c", conf], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=30)
    assert r.returncode == 0, r.stderr
    assert r.stdout.decode().strip() == conf + ": ok"


def adjusted_config(dest, tmp_path, certs, ports):
    """The installed configuration with its paths moved under tmp_path,
    loopback listeners on free ports, and no `user` (vmail may not
    exist)."""
    text = read(dest / "etc/heron/heron.conf")
    run = tmp_path / "run"
    mail = tmp_path / "mail"
    run.mkdir()
    mail.mkdir()
    text = re.sub(r"^listen = .*\n", "", text, flags=re.M)
    text = re.sub(r"^user = .*\n", "", text, flags=re.M)
    text = text.replace("/var/mail/", str(mail) + "/")
    text = text.replace("state_dir = /run/heron", "state_dir = %s" % run)
    text = text.replace("/etc/heron/passwd", str(tmp_path / "passwd"))
    text = text.replace("/etc/heron/cert.pem", certs[0])
    text = text.replace("/etc/heron/key.pem", certs[1])
    assert "/etc/heron" not in text and "/run/heron" not in text, text
    text += "listen = imaps 127.0.0.1:%d\n" % ports[0]
    text += "listen = pop3 127.0.0.1:%d\n" % ports[1]
    text += "listen = lmtp 127.0.0.1:%d\n" % ports[2]
    text += "listen = lmtp unix:%s/lmtp\n" % run
    text += "workers = 1\nauth_fail_delay_msecs = 100\n"
    path = tmp_path / "heron.conf"
    path.write_text(text)
    return str(path)


def test_installed_config_serves(dest, tmp_path, certs, passwd_lines):
    """Runs the installed binary with the installed configuration (paths
    and ports adjusted): LMTP delivery, POP3 retrieval, clean SIGTERM."""
    ports = heronlib.free_ports(3)
    conf = adjusted_config(dest, tmp_path, certs, ports)
    (tmp_path / "passwd").write_text("\n".join(passwd_lines) + "\n")
    os.chmod(str(tmp_path / "passwd"), 0o600)
    heron = str(dest / "usr/sbin/heron")
    r = subprocess.run([heron, "check-config", "-c", conf],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=30)
    assert r.returncode == 0, r.stderr
    log = open(str(tmp_path / "log"), "wb")
    p = subprocess.Popen([heron, "serve", "-c", conf], stdout=log,
                         stderr=subprocess.STDOUT, cwd=str(tmp_path))
    try:
        heronlib.wait_for(lambda: os.path.exists(str(tmp_path / "run/lmtp")),
                          15, what="LMTP socket")
        lm = heronlib.wait_for(lambda: _lmtp(ports[2]), 15, what="LMTP")
        refused = lm.sendmail("a@example.org", ["alice"],
                              b"Subject: installed\r\n\r\nhello\r\n")
        lm.quit()
        assert refused == {}
        pop = poplib.POP3("127.0.0.1", ports[1], timeout=heronlib.IO_TIMEOUT)
        pop.user("alice")
        pop.pass_(PASSWORDS["alice"])
        _, lines, _ = pop.retr(1)
        assert b"hello" in lines
        pop.quit()
    finally:
        p.send_signal(signal.SIGTERM)
        try:
            rc = p.wait(timeout=20)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
            rc = None
        log.close()
    text = read(tmp_path / "log")
    assert rc == 0, text
    assert "stopped" in text, text
    assert not os.path.exists(str(tmp_path / "run/lmtp"))


def _lmtp(port):
    try:
        return smtplib.LMTP("127.0.0.1", port, timeout=heronlib.IO_TIMEOUT)
    except OSError:
        return None


def privileged_free_port():
    """A free TCP port below 1024 on 127.0.0.1 (we are root). Random, so
    that concurrent runs of this file don't pick the same one."""
    import random
    import socket
    ports = list(range(700, 1000))
    random.shuffle(ports)
    for port in ports:
        sock = socket.socket()
        try:
            sock.bind(("127.0.0.1", port))
            return port
        except OSError:
            continue
        finally:
            sock.close()
    pytest.skip("no free port below 1024")


def _imap_inbox_count(port, user):
    im = imaplib.IMAP4("127.0.0.1", port, timeout=heronlib.IO_TIMEOUT)
    try:
        im.login(user, PASSWORDS[user])
        typ, data = im.select("INBOX", readonly=True)
        assert typ == "OK", data
        return int(data[0])
    finally:
        im.logout()


def _owner_mode(path):
    st = os.lstat(path)
    return st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)


@pytest.mark.parametrize("state_dir", ["fresh", "legacy"])
def test_unit_capabilities_suffice(dest, certs, passwd_lines, state_dir):
    """Runs the installed server as root with only the unit's capability
    bounding set and no_new_privs (setpriv, as systemd would), dropping to
    nobody: a port below 1024 binds, a delivery to two users lands (through
    the spool), IMAP logs in, SIGHUP replaces the worker (the old one must
    get SIGUSR1 across users) and SIGTERM stops everything in time. The
    state directory is root's 0755 (as RuntimeDirectory= makes it), or
    "legacy": nobody's 0700, as earlier versions left it; the master takes
    it back without CAP_DAC_OVERRIDE. The legacy run ends with SIGKILL to
    the master instead: the children (workers as nobody) must follow it
    (PR_SET_PDEATHSIG survives their drop to nobody)."""
    if os.geteuid() != 0:
        pytest.skip("needs root")
    if shutil.which("setpriv") is None:
        pytest.skip("setpriv missing")
    caps = unit_caps(read(dest / "usr/lib/systemd/system/heron.service"))
    assert "CAP_DAC_OVERRIDE" not in caps
    bounding = "-all," + ",".join("+" + c[4:].lower() for c in sorted(caps))
    top = tempfile.mkdtemp(prefix="heron-caps-")
    p = None
    kids = []
    try:
        os.chmod(top, 0o755)
        run, mail = os.path.join(top, "run"), os.path.join(top, "mail")
        os.mkdir(run)
        os.chmod(run, 0o755)
        os.mkdir(mail)
        os.chown(mail, 65534, 65534)
        if state_dir == "legacy":
            os.chown(run, 65534, 65534)
            os.chmod(run, 0o700)
        with open(os.path.join(top, "passwd"), "w") as f:
            f.write("\n".join(passwd_lines) + "\n")
        os.chmod(os.path.join(top, "passwd"), 0o600)
        port = privileged_free_port()
        imap_port = heronlib.free_ports(1)[0]
        conf = os.path.join(top, "heron.conf")
        with open(conf, "w") as f:
            f.write("listen = lmtp 127.0.0.1:%d\n"
                    "listen = lmtp unix:%s/lmtp\n"
                    "listen = imap 127.0.0.1:%d\n"
                    "user = nobody\nworkers = 1\n"
                    "mail_path = %s/%%u/Maildir\n"
                    "passwd_file = %s/passwd\nstate_dir = %s\n"
                    % (port, run, imap_port, mail, top, run))
        log = open(os.path.join(top, "log"), "wb")
        p = subprocess.Popen(
            ["setpriv", "--no-new-privs", "--bounding-set", bounding,
             "--inh-caps", "-all", str(dest / "usr/sbin/heron"), "serve",
             "-c", conf], stdout=log, stderr=subprocess.STDOUT, cwd=top)
        lm = heronlib.wait_for(lambda: _lmtp(port), 15, what="LMTP")
        # Two recipients: the message goes through state_dir/spool.
        assert lm.sendmail("a@example.org", ["alice", "bob"],
                           b"Subject: caps\r\n\r\nhi\r\n") == {}
        lm.quit()
        for user in ("alice", "bob"):
            assert len(heronlib.maildir_files(
                os.path.join(mail, user, "Maildir"))) == 1, user
        # state_dir is root's; workers reach the auth socket and write
        # only the spool; the control socket is root's alone.
        assert _owner_mode(run) == (0, 0, 0o755)
        assert _owner_mode(os.path.join(run, "auth.sock")) == \
            (65534, 65534, 0o600)
        assert _owner_mode(os.path.join(run, "control")) == (0, 0, 0o600)
        assert _owner_mode(os.path.join(run, "spool")) == \
            (65534, 65534, 0o700)
        assert _imap_inbox_count(imap_port, "alice") == 1
        first = set(heronlib.proc_children(p.pid))
        p.send_signal(signal.SIGHUP)
        # The auth process stays; the old worker drains (no sessions) and
        # exits, a new one replaces it.
        heronlib.wait_for(
            lambda: len(set(heronlib.proc_children(p.pid)) - first) == 1 and
            len(first - set(heronlib.proc_children(p.pid))) == 1,
            15, what="worker replaced after SIGHUP")
        assert _imap_inbox_count(imap_port, "bob") == 1
        if state_dir == "legacy":
            kids = heronlib.proc_children(p.pid)
            assert len(kids) == 2, kids
            p.kill()
            p.wait()
            p = None
            heronlib.wait_for(
                lambda: not any(heronlib.proc_alive(k) for k in kids), 10,
                what="children to exit after the master's SIGKILL")
            return
        p.send_signal(signal.SIGTERM)
        rc = p.wait(timeout=10)
        p = None
        log.close()
        text = read(os.path.join(top, "log"))
        assert rc == 0, text
        assert "still running" not in text, text
        assert "Permission denied" not in text, text
        # (The auth process may log a reset by the drained worker.)
        assert " warn [master]" not in text, text
        assert " error [" not in text and " fatal [" not in text, text
        assert sorted(os.listdir(run)) == ["spool"], text
    finally:
        if p is not None:
            kids += heronlib.proc_children(p.pid)
            p.kill()
            p.wait()
        for child in kids:
            try:
                os.kill(child, signal.SIGKILL)
            except OSError:
                pass
        shutil.rmtree(top, ignore_errors=True)


# ---------------------------------------------------------------- man pages

MAN_PAGES = ["usr/share/man/man8/heron.8", "usr/share/man/man5/heron.conf.5"]


@pytest.mark.parametrize("page", MAN_PAGES)
def test_man_page_renders_without_warnings(dest, page):
    if shutil.which("man") is None:
        pytest.skip("man missing")
    env = dict(os.environ, MANWIDTH="80", LC_ALL="C.UTF-8")
    r = subprocess.run(["man", "-l", "--warnings", str(dest / page)],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       env=env, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stderr == b"", r.stderr.decode()
    text = r.stdout.decode()
    assert "SYNOPSIS" in text and "SEE ALSO" in text


@pytest.mark.parametrize("page", MAN_PAGES)
def test_man_page_mandoc_lint(dest, page):
    if shutil.which("mandoc") is None:
        pytest.skip("mandoc missing")
    r = subprocess.run(["mandoc", "-Tlint", "-Wwarning", str(dest / page)],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=60)
    assert r.returncode == 0, (r.stdout + r.stderr).decode()


def admin_commands():
    """Subcommand words in src/main/admin.h's "heron ..." lines: the
    lower-case tokens (split at '|'), not options or placeholders."""
    text = read(os.path.join(ROOT, "src/main/admin.h"))
    words = set()
    for line in re.findall(r"^ \*\s+heron (.*)$", text, re.M):
        for token in line.split():
            for w in token.split("|"):
                if re.match(r"^[a-z][a-z-]*$", w):
                    words.add(w)
    return sorted(words)


def test_heron8_names_every_subcommand():
    page = read(os.path.join(ROOT, "man/heron.8")).replace("\\-", "-")
    main_c = read(os.path.join(ROOT, "src/main/main.c"))
    cmds = set(re.findall(r'strcmp\(cmd, "([a-z-]+)"\) == 0', main_c))
    cmds.update(admin_commands())
    cmds.discard("--version")
    assert {"serve", "deliver", "who", "kick", "index"} <= cmds
    missing = [c for c in sorted(cmds)
               if not re.search(r"^\.(B|BR|TP|SY) .*\b%s\b" % re.escape(c),
                                page, re.M)]
    assert missing == [], "heron.8 lacks: %s" % missing


# ---------------------------------------------------------------- unit file

def test_systemd_unit_verifies(dest, tmp_path):
    """systemd-analyze checks the binary exists, so the unit is verified
    with its paths pointing into DESTDIR (and MANPATH for the
    Documentation= links)."""
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze missing")
    unit = read(dest / "usr/lib/systemd/system/heron.service")
    unit = unit.replace("/usr/sbin/heron", str(dest / "usr/sbin/heron"))
    path = tmp_path / "heron.service"
    path.write_text(unit)
    env = dict(os.environ, MANPATH=str(dest / "usr/share/man"))
    r = subprocess.run(["systemd-analyze", "verify", str(path)],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       env=env, timeout=120)
    out = (r.stdout + r.stderr).decode()
    assert r.returncode == 0, out
    assert "heron.service" not in out, out


# ---------------------------------------------------------------- keys

def config_keys():
    """Key names from config.c's table, plus the special "listen"."""
    text = read(os.path.join(ROOT, "src/conf/config.c"))
    table = text[text.index("config_keys[] = {"):]
    table = table[:table.index("};")]
    keys = re.findall(r'\{\s*"([a-z0-9_]+)",\s*CONFIG_', table)
    assert len(keys) >= 20, keys
    assert '"listen"' in text
    return sorted(set(keys) | {"listen"})


def man_section(page, name):
    start = page.index("\n.SH %s\n" % name) + 1
    end = page.find("\n.SH ", start)
    return page[start:end if end >= 0 else len(page)]


def test_every_config_key_in_man_page():
    """Each key is a ".TP" / ".B key" item of heron.conf(5)'s KEYS section
    (listen: of LISTENERS), and KEYS documents no key config.c lacks."""
    page = read(os.path.join(ROOT, "man/heron.conf.5"))
    documented = set(re.findall(r"^\.TP\n\.B ([a-z0-9_]+)\b",
                                man_section(page, "KEYS"), re.M))
    if re.search(r"^\.TP\n\.B listen = ", man_section(page, "LISTENERS"),
                 re.M):
        documented.add("listen")
    missing = [k for k in config_keys() if k not in documented]
    assert missing == [], "heron.conf.5 lacks: %s" % missing
    stale = sorted(documented - set(config_keys()))
    assert stale == [], "heron.conf.5 documents unknown keys: %s" % stale


def test_every_config_key_in_example():
    text = read(os.path.join(ROOT, "etc/heron.conf.example"))
    missing = [k for k in config_keys()
               if not re.search(r"\b%s = " % k, text)]
    assert missing == [], "etc/heron.conf.example lacks: %s" % missing
