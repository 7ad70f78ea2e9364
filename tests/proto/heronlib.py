"""heronlib.py: helpers for the protocol tests (tests/proto).

Starts the real `heron serve` on 127.0.0.1 with a throwaway config, Maildir
root, password file and certificate, and offers small scripted clients.
Limits: every socket operation has a timeout and every wait loop has a
deadline; nothing here touches DNS, system files or non-loopback addresses.
"""

import base64
import getpass
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
DATA = os.path.join(ROOT, "tests", "data")

IO_TIMEOUT = 10.0        # seconds for any single socket operation
START_TIMEOUT = 10.0     # daemon start: ports accept and POP3 greets
STOP_TIMEOUT = 10.0      # SIGTERM until exit, then SIGKILL and fail

PASSWORDS = {
    "alice": "alice-pw",
    "bob": "bob pw with spaces",
    "carol": "carol-argon",
    "dave": "dave-sha256",
}

# Lines that must never appear in the daemon's log.
LOG_FATAL_PATTERNS = [
    re.compile(r"ERROR: AddressSanitizer"),
    re.compile(r"ERROR: LeakSanitizer"),
    re.compile(r"runtime error:"),
    re.compile(r"\bfatal\b"),
    re.compile(r"Segmentation fault|core dumped|Assertion .* failed"),
]
# Log lines at level "error" ("<time> error [tag] ..."): unexpected unless
# a test allows them.
LOG_ERROR_LEVEL = re.compile(r"^\S+ error \[", re.M)


def heron_bin():
    b = os.environ.get("HERON_BIN", os.path.join(ROOT, "build", "heron"))
    return os.path.abspath(b)


def data_file(name):
    with open(os.path.join(DATA, name), "rb") as f:
        return f.read()


def crlf(b):
    """LF (or CRLF) line ends -> CRLF."""
    return b.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def lf(b):
    return b.replace(b"\r\n", b"\n")


def free_ports(n):
    """n distinct free TCP ports on 127.0.0.1 (kept bound until all are
    chosen so they differ)."""
    socks, ports = [], []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
            ports.append(s.getsockname()[1])
    finally:
        for s in socks:
            s.close()
    return ports


def wait_for(pred, timeout, interval=0.05, what="condition"):
    """Polls pred() until it returns a true value or timeout passes."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() >= deadline:
            raise AssertionError("timed out after %.1fs waiting for %s"
                                 % (timeout, what))
        time.sleep(interval)


# ---------------------------------------------------------------- /proc

def proc_children(pid):
    """PIDs whose parent is pid (from /proc/*/stat)."""
    kids = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % name) as f:
                st = f.read()
        except OSError:
            continue
        fields = st.rsplit(")", 1)[1].split()
        # fields[0] = state, fields[1] = ppid
        if int(fields[1]) == pid and fields[0] != "Z":
            kids.append(int(name))
    return sorted(kids)


def proc_alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            st = f.read()
    except OSError:
        return False
    return st.rsplit(")", 1)[1].split()[0] != "Z"


def proc_rss_kb(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def tcp_socket_inode(local_port, remote_port):
    """Inode of the server-side TCP socket 127.0.0.1:local_port <->
    127.0.0.1:remote_port, from /proc/net/tcp."""
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            parts = line.split()
            lport = int(parts[1].split(":")[1], 16)
            rport = int(parts[2].split(":")[1], 16)
            if lport == local_port and rport == remote_port:
                return int(parts[9])
    return None


def pids_holding_inode(pids, inode):
    target = "socket:[%d]" % inode
    out = []
    for pid in pids:
        fddir = "/proc/%d/fd" % pid
        try:
            fds = os.listdir(fddir)
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(os.path.join(fddir, fd)) == target:
                    out.append(pid)
                    break
            except OSError:
                continue
    return out


# ---------------------------------------------------------------- clients

class LineClient:
    """A raw line-oriented client over TCP (optionally upgraded to TLS).
    readline() returns a line without its CRLF."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""
        self.sock.settimeout(IO_TIMEOUT)

    @classmethod
    def connect(cls, port, host="127.0.0.1", rcvbuf=None):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf is not None:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        s.settimeout(IO_TIMEOUT)
        s.connect((host, port))
        return cls(s)

    @classmethod
    def connect_unix(cls, path):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(IO_TIMEOUT)
        s.connect(path)
        return cls(s)

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def _fill(self, timeout=IO_TIMEOUT):
        self.sock.settimeout(timeout)
        chunk = self.sock.recv(65536)
        if not chunk:
            raise EOFError("connection closed by server")
        self.buf += chunk

    def readline(self, timeout=IO_TIMEOUT, limit=1 << 20):
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buf:
            if len(self.buf) > limit:
                raise AssertionError("line longer than %d bytes" % limit)
            left = deadline - time.monotonic()
            if left <= 0:
                raise socket.timeout("no complete line within %.1fs: %r"
                                     % (timeout, self.buf[:200]))
            self._fill(left)
        line, self.buf = self.buf.split(b"\n", 1)
        if line.endswith(b"\r"):
            line = line[:-1]
        return line

    def read_multiline(self, timeout=IO_TIMEOUT):
        """Lines of a POP3 multi-line body up to the lone ".", raw (still
        dot-stuffed)."""
        lines = []
        deadline = time.monotonic() + timeout
        while True:
            line = self.readline(max(0.1, deadline - time.monotonic()))
            if line == b".":
                return lines
            lines.append(line)

    def read_exact_until(self, marker, timeout=IO_TIMEOUT):
        """Raw bytes up to and including marker."""
        deadline = time.monotonic() + timeout
        while marker not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise socket.timeout("marker %r not seen" % marker)
            self._fill(left)
        i = self.buf.index(marker) + len(marker)
        out, self.buf = self.buf[:i], self.buf[i:]
        return out

    def cmd(self, line, timeout=IO_TIMEOUT):
        self.send(line + "\r\n" if isinstance(line, str) else
                  line + b"\r\n")
        return self.readline(timeout)

    def pending(self, wait):
        """Whatever arrives within wait seconds (b"" if nothing; None on
        EOF)."""
        if self.buf:
            out, self.buf = self.buf, b""
            return out
        self.sock.settimeout(wait)
        try:
            chunk = self.sock.recv(65536)
        except (socket.timeout, BlockingIOError):
            return b""
        if not chunk:
            return None
        return chunk

    def is_closed(self, wait=IO_TIMEOUT):
        """True if the server closes the connection within wait seconds
        (data that arrives meanwhile is discarded)."""
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            self.sock.settimeout(max(0.05, deadline - time.monotonic()))
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                return False
            except (ConnectionResetError, BrokenPipeError):
                return True
            except ssl.SSLError:
                return True
            if not chunk:
                return True
        return False

    def starttls(self, server_hostname="localhost"):
        assert self.buf == b"", \
            "data after the STLS reply before the handshake: %r" % self.buf
        ctx = insecure_tls_context()
        self.sock = ctx.wrap_socket(self.sock,
                                    server_hostname=server_hostname)
        self.sock.settimeout(IO_TIMEOUT)

    def abort(self):
        """Closes with a TCP RST."""
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                 b"\x01\x00\x00\x00\x00\x00\x00\x00")
        except OSError:
            pass
        self.sock.close()

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()


def insecure_tls_context():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def b64(s):
    if isinstance(s, str):
        s = s.encode()
    return base64.b64encode(s).decode()


def pop3_login(c, user, pw=None):
    """USER/PASS on a LineClient already past the greeting."""
    if pw is None:
        pw = PASSWORDS[user]
    r = c.cmd("USER " + user)
    assert r.startswith(b"+OK"), r
    r = c.cmd("PASS " + pw)
    assert r.startswith(b"+OK"), r
    return r


def pop3_open(port, user=None, pw=None, rcvbuf=None):
    c = LineClient.connect(port, rcvbuf=rcvbuf)
    g = c.readline()
    assert g.startswith(b"+OK"), g
    if user:
        pop3_login(c, user, pw)
    return c


def addr(user):
    """The LMTP recipient address of a user. Bare local parts are valid
    for Heron (the passwd file holds plain user names)."""
    return user


class LmtpRaw:
    """A scripted LMTP client that reads every per-recipient reply
    (smtplib.LMTP reads only one reply after DATA)."""

    def __init__(self, lc):
        self.c = lc

    @classmethod
    def tcp(cls, port):
        return cls(LineClient.connect(port))

    @classmethod
    def unix(cls, path):
        return cls(LineClient.connect_unix(path))

    def reply(self, timeout=IO_TIMEOUT):
        """One (possibly multi-line) reply: (code, [texts])."""
        texts = []
        while True:
            line = self.c.readline(timeout)
            assert len(line) >= 3 and line[:3].isdigit(), \
                "bad LMTP reply line %r" % line
            texts.append(line[4:].decode("utf-8", "replace"))
            if line[3:4] != b"-":
                return int(line[:3]), texts

    def cmd(self, line):
        self.c.send(line + "\r\n")
        return self.reply()

    def greet_lhlo(self):
        code, _ = self.reply()
        assert code == 220, code
        code, texts = self.cmd("LHLO client.test")
        assert code == 250, (code, texts)
        return texts

    def send_data(self, msg, stuff=True):
        """Sends message bytes (CRLF) plus the end marker."""
        if stuff:
            msg = re.sub(rb"(?m)^\.", b"..", msg)
        if not msg.endswith(b"\r\n"):
            msg += b"\r\n"
        self.c.send(msg + b".\r\n")

    def close(self):
        self.c.close()


# ---------------------------------------------------------------- fetchmail

def run_fetchmail(heron, user, protocol, port, options, home_tag="fm"):
    """Runs fetchmail once for user (protocol POP3 or IMAP) with the
    given "options" text, delivering into an mbox through an mda.
    Returns (CompletedProcess, mbox bytes)."""
    home = os.path.join(heron.dir, "%s-home-%s" % (home_tag, user))
    os.makedirs(home, exist_ok=True)
    out = os.path.join(home, "mbox")
    rc = os.path.join(home, "fetchmailrc")
    with open(rc, "w") as f:
        f.write("set no syslog\nset no bouncemail\n"
                "poll 127.0.0.1 with protocol %s port %d timeout 10\n"
                "  user \"%s\" there with password \"%s\" is \"%s\" here\n"
                "  options %s\n"
                "  mda \"cat >> %s\"\n"
                % (protocol, port, user, PASSWORDS[user], getpass.getuser(),
                   options, out))
    os.chmod(rc, 0o600)
    env = dict(os.environ, HOME=home, FETCHMAILHOME=home)
    r = subprocess.run([shutil.which("fetchmail") or "fetchmail", "-f", rc,
                        "--nodetach", "-v", "--pidfile",
                        os.path.join(home, "pid")],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       env=env, timeout=60, cwd=home)
    content = open(out, "rb").read() if os.path.exists(out) else b""
    return r, content


# ---------------------------------------------------------------- maildir

def maildir_files(md, sub=("new", "cur")):
    out = []
    for d in sub:
        p = os.path.join(md, d)
        if os.path.isdir(p):
            out += [os.path.join(p, n) for n in sorted(os.listdir(p))
                    if not n.startswith(".")]
    return out


def read_file(p):
    with open(p, "rb") as f:
        return f.read()


def split_trace(stored, original_lf):
    """stored = trace header lines + original. Returns the list of trace
    header lines; asserts the original follows byte-exact."""
    assert stored.endswith(original_lf), \
        "stored message does not end with the original (%d vs %d bytes)" \
        % (len(stored), len(original_lf))
    prefix = stored[:len(stored) - len(original_lf)]
    assert prefix.endswith(b"\n") or prefix == b"", prefix[-200:]
    lines = prefix.split(b"\n")[:-1]
    for ln in lines:
        assert re.match(rb"^([!-9;-~]+:|[ \t])", ln), \
            "non-header line before the original message: %r" % ln
    return lines


def make_message(subject, body_lines, extra_headers=()):
    hdr = [b"From: Sender <sender@example.org>",
           b"To: rcpt@example.org",
           b"Subject: " + subject.encode(),
           b"Message-ID: <" + subject.replace(" ", ".").encode()
           + b"@example.org>"]
    hdr += list(extra_headers)
    return b"\r\n".join(hdr + [b""] + list(body_lines)) + b"\r\n"


def big_message(subject, size, line_len=76):
    """A CRLF message of about size bytes with numbered lines."""
    lines = []
    total = 0
    i = 0
    while total < size:
        s = (b"%08d " % i) + b"x" * (line_len - 9)
        lines.append(s)
        total += len(s) + 2
        i += 1
    return make_message(subject, lines)


# ---------------------------------------------------------------- daemon

class Heron:
    """One daemon instance with its own directory, ports and config."""

    def __init__(self, certs, passwd_lines, overrides=None,
                 extra_config=""):
        self.bin = heron_bin()
        # Short path: the LMTP Unix socket path must fit sun_path.
        self.dir = tempfile.mkdtemp(prefix="heron-t", dir="/tmp")
        (self.pop3_port, self.pop3s_port, self.lmtp_port, self.imap_port,
         self.imaps_port) = free_ports(5)
        self.lmtp_sock = os.path.join(self.dir, "lmtp.sock")
        self.conf = os.path.join(self.dir, "heron.conf")
        self.passwd = os.path.join(self.dir, "passwd")
        self.log_path = os.path.join(self.dir, "heron.log")
        self.mail_root = os.path.join(self.dir, "mail")
        self.state_dir = os.path.join(self.dir, "run")
        self.certs = certs
        self.settings = {
            "workers": "2",
            "tls_cert": certs[0],
            "tls_key": certs[1],
            "mail_path": os.path.join(self.mail_root, "%u", "Maildir"),
            "passwd_file": self.passwd,
            "state_dir": self.state_dir,
            "hostname": "heron.test",
            "log_level": "info",
            "max_message_size": "10M",
            "auth_fail_delay_msecs": "50",
            "auth_fail_delay_max_msecs": "200",
        }
        self.settings.update(overrides or {})
        self.extra_config = extra_config
        self.passwd_lines = list(passwd_lines)
        self.proc = None
        self.logf = None
        self.allowed_errors = []
        self.last_children = []
        self.write_passwd()
        self.write_config()

    # -- files
    def write_config(self):
        lines = ["# written by tests/proto/heronlib.py",
                 "listen = pop3 127.0.0.1:%d" % self.pop3_port,
                 "listen = pop3s 127.0.0.1:%d" % self.pop3s_port,
                 "listen = lmtp 127.0.0.1:%d" % self.lmtp_port,
                 "listen = lmtp unix:%s" % self.lmtp_sock,
                 "listen = imap 127.0.0.1:%d" % self.imap_port,
                 "listen = imaps 127.0.0.1:%d" % self.imaps_port]
        for k, v in self.settings.items():
            if v is not None:
                lines.append("%s = %s" % (k, v))
        with open(self.conf, "w") as f:
            f.write("\n".join(lines) + "\n" + self.extra_config)

    def write_passwd(self):
        tmp = self.passwd + ".tmp"
        with open(tmp, "w") as f:
            f.write("\n".join(self.passwd_lines) + "\n")
        # As in production: heron warns about a readable password file.
        os.chmod(tmp, 0o600)
        os.rename(tmp, self.passwd)

    def maildir(self, user):
        return os.path.join(self.mail_root, user, "Maildir")

    def index_path(self, user):
        return os.path.join(self.maildir(user), "heron.index")

    # -- process
    def start(self):
        assert self.proc is None
        self.logf = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [self.bin, "serve", "-c", self.conf],
            stdin=subprocess.DEVNULL, stdout=self.logf,
            stderr=subprocess.STDOUT, cwd=self.dir,
            start_new_session=True)
        try:
            self.wait_ready()
        except BaseException:
            self.kill_all()
            raise

    def wait_ready(self):
        deadline = time.monotonic() + START_TIMEOUT
        pending = ["pop3", "pop3s", "lmtp", "unix", "imap"]
        last_err = None
        while pending:
            if self.proc.poll() is not None:
                raise AssertionError("heron exited with %s at start:\n%s"
                                     % (self.proc.returncode,
                                        self.log_text()[-4000:]))
            if time.monotonic() > deadline:
                raise AssertionError(
                    "heron not ready after %.0fs (%s not accepting: %s):\n%s"
                    % (START_TIMEOUT, pending, last_err,
                       self.log_text()[-4000:]))
            what = pending[0]
            try:
                self._probe(what, max(0.2, deadline - time.monotonic()))
                pending.pop(0)
            except (OSError, EOFError, AssertionError) as e:
                last_err = e
                time.sleep(0.05)

    def _probe(self, what, timeout):
        t = min(timeout, 2.0)
        if what == "unix":
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(t)
            try:
                s.connect(self.lmtp_sock)
            finally:
                s.close()
            return
        port = {"pop3": self.pop3_port, "pop3s": self.pop3s_port,
                "lmtp": self.lmtp_port, "imap": self.imap_port}[what]
        s = socket.create_connection(("127.0.0.1", port), timeout=t)
        try:
            if what == "pop3":
                # Wait for a worker to greet: the daemon really serves.
                c = LineClient(s)
                g = c.readline(t)
                assert g.startswith(b"+OK"), g
                c.send(b"QUIT\r\n")
                c.readline(t)
        finally:
            s.close()

    @property
    def pid(self):
        return self.proc.pid

    def children(self):
        return proc_children(self.proc.pid)

    def hup(self):
        os.kill(self.proc.pid, signal.SIGHUP)

    def stop(self):
        """SIGTERM, wait (bounded); then SIGKILL and fail."""
        if self.proc is None:
            return
        kids = self.children()
        self.last_children = kids
        proc, self.proc = self.proc, None
        problems = []
        if proc.poll() is not None:
            problems.append("heron master had already exited with %s"
                            % proc.returncode)
        else:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
                problems.append("heron did not exit within %.0fs of SIGTERM"
                                % STOP_TIMEOUT)
            if proc.returncode not in (0, -signal.SIGTERM):
                problems.append("heron exited with status %s after SIGTERM"
                                % proc.returncode)
        # Workers and the auth process must go with the master.
        deadline = time.monotonic() + 5
        while any(proc_alive(k) for k in kids) and \
                time.monotonic() < deadline:
            time.sleep(0.05)
        left = [k for k in kids if proc_alive(k)]
        for k in left:
            try:
                os.kill(k, signal.SIGKILL)
            except OSError:
                pass
        if left:
            problems.append("children %s still alive 5s after the master "
                            "exited" % left)
        self.logf.close()
        if problems:
            raise AssertionError("; ".join(problems) + "\nlog tail:\n"
                                 + self.log_text()[-3000:])

    def kill_all(self):
        if self.proc is None:
            return
        kids = self.children()
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except OSError:
            pass
        for k in kids:
            try:
                os.kill(k, signal.SIGKILL)
            except OSError:
                pass
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            pass
        self.proc = None
        if self.logf:
            self.logf.close()

    def restart(self):
        self.stop()
        self.start()

    # -- log
    def log_text(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def allow_log_error(self, regex):
        """Lets log lines at level error that match regex pass."""
        self.allowed_errors.append(re.compile(regex))

    def log_problems(self):
        text = self.log_text()
        bad = []
        for line in text.splitlines():
            for p in LOG_FATAL_PATTERNS:
                if p.search(line):
                    bad.append(line)
                    break
            else:
                if LOG_ERROR_LEVEL.match(line) and not any(
                        a.search(line) for a in self.allowed_errors):
                    bad.append(line)
        return bad

    def cleanup(self):
        # HERON_KEEP_DIR=1 keeps the daemon's directory (log, Maildirs)
        # for debugging a failure.
        if os.environ.get("HERON_KEEP_DIR"):
            return
        shutil.rmtree(self.dir, ignore_errors=True)

    # -- CLI
    def run_cli(self, args, input=b"", timeout=30):
        return subprocess.run([self.bin] + args, input=input,
                              stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, timeout=timeout,
                              cwd=self.dir)


# ---------------------------------------------------------------- delivery

def deliver(heron, users, msg, sender="sender@example.org", unix=False):
    """Delivers msg (CRLF bytes) over LMTP to users; asserts a 250 for
    each. Returns the list of per-recipient replies."""
    if isinstance(users, str):
        users = [users]
    lm = LmtpRaw.unix(heron.lmtp_sock) if unix else \
        LmtpRaw.tcp(heron.lmtp_port)
    try:
        lm.greet_lhlo()
        code, t = lm.cmd("MAIL FROM:<%s>" % sender)
        assert code == 250, (code, t)
        for u in users:
            code, t = lm.cmd("RCPT TO:<%s>" % addr(u))
            assert code == 250, ("RCPT", u, code, t)
        code, t = lm.cmd("DATA")
        assert code == 354, (code, t)
        lm.send_data(msg)
        replies = [lm.reply() for _ in users]
        for u, (code, t) in zip(users, replies):
            assert code == 250, ("DATA reply for", u, code, t)
        code, t = lm.cmd("QUIT")
        assert code == 221, (code, t)
        return replies
    finally:
        lm.close()
