"""Test harness for mod_isr: a throw-away httpd with its own ServerRoot and a free port.

    env = HttpdEnv(mpm="prefork")
    env.write_config(body)          # body: config snippet, {origin} etc. already substituted
    env.start(); r = env.get("/app/x"); env.stop()

Modelled on pyhttpd (mod_h2 / mod_md test/pyhttpd), but every instance has a temporary
ServerRoot and a port found by binding port 0, and the system apache2 service is never touched.

With ISR_SANITIZE=1 (`make asan`, with ISR_MODULE naming a module built with
-fsanitize=address,undefined) every httpd this harness runs (-k start/stop/graceful/restart, -t)
gets LD_PRELOAD of gcc's libasan and ASAN_OPTIONS/UBSAN_OPTIONS that write reports below
logs/sanitizer/ of its ServerRoot; a report there, or a sanitizer line in the error log, is an
unexpected line (see unexpected_lines) and fails the test. Only httpd gets this environment,
not the origin or other helpers.
"""

import http.client
import email.utils
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections import namedtuple

HTTPD = os.environ.get("ISR_HTTPD", "/usr/sbin/apache2")
MODULES_DIR = os.environ.get("ISR_MODULES_DIR", "/usr/lib/apache2/modules")
TESTS_DIR = os.path.dirname(os.path.abspath(__file__))
REPO_DIR = os.path.dirname(TESTS_DIR)
MODULE_PATH = os.environ.get("ISR_MODULE") or os.path.join(REPO_DIR, ".libs", "mod_isr.so")

ISR_TAG = re.compile(r"ISR\d{4}")
LOG_LEVEL = re.compile(r"^\[[^\]]*\] \[(?:([\w.-]+):)?(\w+)\]")
BAD_LEVELS = {"warn", "error", "crit", "alert", "emerg"}
# What a test that provokes a backend failure may declare: a tagged mod_isr line at warn or
# error (the tag numbers are the module's own business; crit and above stay unexpected).
ISR_WARN_LOG = r"\[isr:(?:warn|error)\] .*ISR\d{4}: "

# Expected-log declarations for the running test (cleared by conftest before each test).
_EXPECTED = []
# Every HttpdEnv created in this process, so conftest can check all their logs.
ALL_ENVS = []


# --- sanitizers (make asan) ---------------------------------------------------------------------
SANITIZE = os.environ.get("ISR_SANITIZE", "") not in ("", "0")
# Copy reports of envs that are cleaned up to this directory (make asan fails if it is not empty).
SANITIZER_COLLECT = os.environ.get("ISR_SANITIZER_COLLECT")
# Lines no test may declare as expected: a sanitizer speaking on stderr (or into the error log).
SANITIZER_LINE = re.compile(r"ERROR: (?:Address|Leak|Thread|Memory)Sanitizer|"
                            r"runtime error:|SUMMARY: \w+Sanitizer|Sanitizer:DEADLYSIGNAL|"
                            r"ASan runtime does not come first")


_RUNTIME = []


def sanitizer_runtime():
    """The libasan to preload into httpd (ISR_ASAN_RUNTIME, else gcc's)."""
    if _RUNTIME:
        return _RUNTIME[0]
    rt = os.environ.get("ISR_ASAN_RUNTIME")
    if not rt:
        try:
            rt = subprocess.run(["gcc", "-print-file-name=libasan.so"], stdout=subprocess.PIPE,
                                text=True, timeout=30).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            rt = ""
    if not rt or not os.path.isfile(rt):
        raise RuntimeError("ISR_SANITIZE: libasan not found (%r); set ISR_ASAN_RUNTIME" % rt)
    _RUNTIME.append(os.path.realpath(rt))
    return _RUNTIME[0]


def sanitizer_env(report_dir, base=None):
    """The environment for an httpd process running an ASan/UBSan module.

    detect_leaks=0: httpd frees by destroying pools at exit, which LeakSanitizer reports as leaks
    of everything the pools' (uninstrumented) allocator got. halt_on_error=1 for both: the first
    finding ends that process (a child: httpd starts another) and its report is complete;
    abort_on_error=0, so a halted child exits with 1 rather than dumping core.
    allow_user_segv_handler=0 keeps ASan's SIGSEGV handler (httpd would install its own), so a
    crash in the module comes with a symbolized stack in a report file. ASan writes its reports
    to report_dir; gcc's libubsan, loaded with the module, writes to stderr whatever log_path
    says, which for a child is the error log (hence SANITIZER_LINE)."""
    env = dict(os.environ if base is None else base)
    env["LD_PRELOAD"] = " ".join(x for x in (sanitizer_runtime(), env.get("LD_PRELOAD")) if x)
    common = "halt_on_error=1:log_exe_name=1:log_path=%s"
    env["ASAN_OPTIONS"] = ("detect_leaks=0:abort_on_error=0:disable_coredump=1:"
                           "allow_user_segv_handler=0:check_initialization_order=1:"
                           "strict_init_order=1:" + common % os.path.join(report_dir, "asan"))
    env["UBSAN_OPTIONS"] = "print_stacktrace=1:" + common % os.path.join(report_dir, "ubsan")
    return env


def read_sanitizer_reports(report_dir):
    """[(path, text)] of the non-empty report files in report_dir."""
    out = []
    try:
        names = sorted(os.listdir(report_dir))
    except OSError:
        return out
    for n in names:
        path = os.path.join(report_dir, n)
        try:
            with open(path, "rb") as f:
                text = f.read().decode("utf-8", "replace")
        except OSError:
            continue
        if text.strip():
            out.append((path, text))
    return out


def httpdate(t):
    """An IMF-fixdate for epoch seconds t."""
    return email.utils.formatdate(t, usegmt=True)


def cache_status(r):
    """The Cache-Status header of a Response ('' when absent)."""
    return r.headers.get("Cache-Status", "")


def wait_for(cond, deadline=10.0, interval=0.05):
    """Poll cond() until it is true or deadline seconds passed; its last value."""
    end = time.time() + deadline
    while time.time() < end:
        if cond():
            return True
        time.sleep(interval)
    return cond()


def expect_log(*patterns):
    """Declare log lines the running test expects: ISR tags ('ISR0012'), substrings or regexes."""
    _EXPECTED.extend(patterns)


def clear_expected():
    del _EXPECTED[:]


def expected_patterns():
    return list(_EXPECTED)


def free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
    finally:
        s.close()


def module_available():
    return os.path.isfile(MODULE_PATH)


class CIDict(dict):
    """Case-insensitive header dict; repeated headers are joined with ', ' (Set-Cookie with \\n)."""

    def __init__(self, items=()):
        super().__init__()
        self.raw = list(items)
        for k, v in self.raw:
            lk = k.lower()
            if lk in self:
                sep = "\n" if lk == "set-cookie" else ", "
                dict.__setitem__(self, lk, dict.__getitem__(self, lk) + sep + v)
            else:
                dict.__setitem__(self, lk, v)

    def __getitem__(self, k):
        return dict.__getitem__(self, k.lower())

    def __contains__(self, k):
        return dict.__contains__(self, k.lower())

    def get(self, k, default=None):
        return dict.get(self, k.lower(), default)


class Response(namedtuple("Response", "status headers body elapsed")):
    @property
    def text(self):
        return self.body.decode("utf-8", "replace")

    @property
    def isr(self):
        return self.headers.get("X-ISR-Status")

    def __str__(self):
        return "%d %s isr=%s body=%r (%.3fs)" % (self.status, dict(self.headers), self.isr,
                                               self.body[:200], self.elapsed)


ERROR_RESPONSE_STATUS = 0  # status of a Response for a connection-level failure


class HttpdEnv:
    MPM_DEFAULTS = {
        "event": dict(StartServers=2, ServerLimit=4, ThreadsPerChild=25, MaxRequestWorkers=100,
                      MinSpareThreads=25, MaxSpareThreads=75, ThreadLimit=64),
        "worker": dict(StartServers=2, ServerLimit=4, ThreadsPerChild=25, MaxRequestWorkers=100,
                       MinSpareThreads=25, MaxSpareThreads=75, ThreadLimit=64),
        "prefork": dict(StartServers=4, MinSpareServers=4, MaxSpareServers=8, ServerLimit=64,
                        MaxRequestWorkers=64),
    }

    def __init__(self, name="isr", mpm="event", mpm_conf=None, load_isr=True, log_level=None):
        self.name = name
        self.mpm = mpm
        self.mpm_conf = dict(self.MPM_DEFAULTS[mpm])
        self.mpm_conf.update(mpm_conf or {})
        self.load_isr = load_isr
        self.log_level = log_level
        self.root = tempfile.mkdtemp(prefix="isr-%s-" % name)
        os.chmod(self.root, 0o755)
        for d in ("conf", "logs", "run", "htdocs"):
            os.makedirs(os.path.join(self.root, d), exist_ok=True)
            os.chmod(os.path.join(self.root, d), 0o755)
        self.port = free_port()
        self.conf_path = os.path.join(self.root, "conf", "httpd.conf")
        self.error_log = os.path.join(self.root, "logs", "error_log")
        self.access_log = os.path.join(self.root, "logs", "access_log")
        self.pid_file = os.path.join(self.root, "run", "httpd.pid")
        self.running = False
        self.body = ""
        self.sanitizer_dir = os.path.join(self.root, "logs", "sanitizer")
        self._sanitizer_seen = set()   # (path, size) of reports already returned
        self._stderr_sanitizer = []    # sanitizer lines printed by -t / -k runs, not yet returned
        if SANITIZE:
            os.makedirs(self.sanitizer_dir, exist_ok=True)
            os.chmod(self.sanitizer_dir, 0o1777)  # children write as www-data
        ALL_ENVS.append(self)

    # ------------------------------------------------------------------ paths and files
    @property
    def htdocs(self):
        return os.path.join(self.root, "htdocs")

    @property
    def base_url(self):
        return "http://127.0.0.1:%d" % self.port

    def write_file(self, rel, content, mode=0o644):
        """Write a file below the ServerRoot (e.g. 'htdocs/app/page.html')."""
        path = os.path.join(self.root, rel)
        d = os.path.dirname(path)
        os.makedirs(d, exist_ok=True)
        p = d
        while p.startswith(self.root) and p != self.root:
            os.chmod(p, 0o755)
            p = os.path.dirname(p)
        with open(path, "wb") as f:
            f.write(content.encode() if isinstance(content, str) else content)
        os.chmod(path, mode)
        return path

    # ------------------------------------------------------------------ configuration
    def config_text(self, body="", mpm=None, load_isr=None, mpm_conf=None):
        mpm = mpm or self.mpm
        load_isr = self.load_isr if load_isr is None else load_isr
        mconf = dict(self.MPM_DEFAULTS[mpm])
        if mpm == self.mpm:
            mconf.update(self.mpm_conf)
        mconf.update(mpm_conf or {})
        r = self.root
        lines = [
            "ServerRoot \"%s\"" % r,
            "Listen 127.0.0.1:%d" % self.port,
            "ServerName 127.0.0.1:%d" % self.port,
            "PidFile \"%s\"" % self.pid_file,
            "ErrorLog \"%s\"" % self.error_log,
            self.log_level or ("LogLevel warn isr:info" if load_isr else "LogLevel warn"),
            "DefaultRuntimeDir \"%s/run\"" % r,
            "Mutex file:%s/run default" % r,
            "DocumentRoot \"%s/htdocs\"" % r,
            "LoadModule mpm_%s_module %s/mod_mpm_%s.so" % (mpm, MODULES_DIR, mpm),
        ]
        for m in ("authz_core", "authz_host", "mime", "headers", "env", "alias"):
            lines.append("LoadModule %s_module %s/mod_%s.so" % (m, MODULES_DIR, m))
        if load_isr:
            lines.append("LoadModule isr_module %s" % MODULE_PATH)
        if os.geteuid() == 0:
            lines += ["User www-data", "Group www-data"]
        if SANITIZE:
            # Children stay dumpable after setuid (httpd's prctl for CoreDumpDirectory; ASan's
            # disable_coredump keeps cores off): else /proc/self/environ is unreadable to them
            # and UBSan, which reads its options there on its first report, gets none.
            lines.append("CoreDumpDirectory \"%s\"" % self.sanitizer_dir)
        lines += ["%s %s" % (k, v) for k, v in mconf.items()]
        lines += [
            "Timeout 30",
            "KeepAlive On",
            "TypesConfig /etc/mime.types",
            "LogFormat \"%h %P %>s \\\"%r\\\" isr=%{ISR_STATUS}e\" isr",
            "CustomLog \"%s\" isr" % self.access_log,
            "<Directory />",
            "    AllowOverride None",
            "    Require all denied",
            "</Directory>",
            "<Directory \"%s/htdocs\">" % r,
            "    Require all granted",
            "</Directory>",
            "",
            body,
            "",
        ]
        return "\n".join(lines)

    def write_config(self, body="", **kw):
        self.body = body
        text = self.config_text(body, **kw)
        with open(self.conf_path, "w") as f:
            f.write(text)
        os.chmod(self.conf_path, 0o644)
        return text

    def configtest(self, body=None, timeout=30, **kw):
        """Run `apache2 -t`; returns (rc, combined output). Writes the config first if body."""
        if body is not None:
            self.write_config(body, **kw)
        p = subprocess.run([HTTPD, "-d", self.root, "-f", self.conf_path, "-t"],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout,
                           env=self.httpd_env())
        return p.returncode, self._note_sanitizer_output(p.stdout.decode("utf-8", "replace"))

    def _note_sanitizer_output(self, out):
        """Sanitizer lines on the stdout/stderr of a -t / -k run (before httpd has an error
        log) become unexpected lines too."""
        self._stderr_sanitizer += [l for l in out.splitlines() if SANITIZER_LINE.search(l)]
        return out

    # ------------------------------------------------------------------ lifecycle
    def httpd_env(self):
        """Environment for any httpd process of this env (None: inherit ours unchanged).
        Whoever runs this env's httpd by other means (-X, -DFOREGROUND) passes it too."""
        if SANITIZE:
            return sanitizer_env(self.sanitizer_dir)
        return None

    def _ctl(self, action, timeout=30):
        p = subprocess.run([HTTPD, "-d", self.root, "-f", self.conf_path, "-k", action],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout,
                           env=self.httpd_env())
        return p.returncode, self._note_sanitizer_output(p.stdout.decode("utf-8", "replace"))

    def parent_pid(self):
        try:
            with open(self.pid_file) as f:
                return int(f.read().strip())
        except (OSError, ValueError):
            return None

    @staticmethod
    def pid_alive(pid):
        if not pid:
            return False
        try:
            with open("/proc/%d/stat" % pid) as f:
                stat = f.read()
        except OSError:
            return False
        state = stat.rsplit(")", 1)[1].split()[0]
        return state not in ("Z", "X")

    def port_answers(self):
        try:
            s = socket.create_connection(("127.0.0.1", self.port), timeout=0.5)
            s.close()
            return True
        except OSError:
            return False

    def start(self, deadline=15.0):
        """Start httpd and wait until the port answers; raises with the error log on failure."""
        assert not self.running, "already running"
        self._mark_before_start = self.log_mark()
        rc, out = self._ctl("start")
        if rc != 0:
            raise RuntimeError("httpd start failed rc=%d: %s\n%s" % (rc, out, self.log_dump()))
        end = time.monotonic() + deadline
        while time.monotonic() < end:
            if self.port_answers() and self.parent_pid():
                self.running = True
                return self
            time.sleep(0.05)
        self.kill()
        raise RuntimeError("httpd did not answer on %d within %.0fs: %s\n%s"
                           % (self.port, deadline, out, self.log_dump()))

    def stop(self, deadline=20.0):
        pid = self.parent_pid()
        children = self.child_pids() if pid else []
        if pid and self.pid_alive(pid):
            self._ctl("stop")
            end = time.monotonic() + deadline
            while time.monotonic() < end and self.pid_alive(pid):
                time.sleep(0.05)
            if self.pid_alive(pid):
                self.kill()
                self.running = False
                raise RuntimeError("httpd pid %d did not stop within %.0fs\n%s"
                                   % (pid, deadline, self.log_dump()))
        # children exit with the parent; make sure none was left behind
        end = time.monotonic() + 5
        while time.monotonic() < end and any(self.pid_alive(c) for c in children):
            time.sleep(0.05)
        for c in children:
            if self.pid_alive(c):
                try:
                    os.kill(c, signal.SIGKILL)
                except OSError:
                    pass
        self.running = False

    def kill(self):
        """Last resort: SIGKILL the parent from the pid file and its children."""
        pid = self.parent_pid()
        if not pid:
            return
        for c in self.child_pids():
            try:
                os.kill(c, signal.SIGKILL)
            except OSError:
                pass
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
        self.running = False

    def generations(self):
        return len(re.findall(r"resuming normal operations", self._read_log()))

    def graceful(self, deadline=20.0, settle=False):
        """`-k graceful`, then wait until the new generation serves. settle: also wait (at
        most 10 s, without failing) until the old generation's children are gone, so that no
        later request can reach one of them (one may still take a new connection meanwhile:
        a test that checks the new configuration's answers wants settle)."""
        before = self.generations()
        old = self.child_pids() if settle else []
        rc, out = self._ctl("graceful")
        if rc != 0:
            raise RuntimeError("graceful failed rc=%d: %s\n%s" % (rc, out, self.log_dump()))
        end = time.monotonic() + deadline
        while time.monotonic() < end:
            if self.generations() > before and self.port_answers():
                settled = time.monotonic() + 10.0
                while old and time.monotonic() < settled:
                    old = [p for p in old if p in self.child_pids()]
                    time.sleep(0.05)
                return
            time.sleep(0.05)
        raise RuntimeError("graceful restart did not complete within %.0fs\n%s"
                           % (deadline, self.log_dump()))

    def hard_restart(self, deadline=20.0):
        """`-k restart` (SIGHUP: children killed at once), then wait for the new generation."""
        before = self.generations()
        rc, out = self._ctl("restart")
        if rc != 0:
            raise RuntimeError("restart failed rc=%d: %s\n%s" % (rc, out, self.log_dump()))
        end = time.monotonic() + deadline
        while time.monotonic() < end:
            if self.generations() > before and self.port_answers():
                return
            time.sleep(0.05)
        raise RuntimeError("restart did not complete within %.0fs\n%s"
                           % (deadline, self.log_dump()))

    def restart(self, body=None):
        if self.running:
            self.stop()
        if body is not None:
            self.write_config(body)
        self.start()

    def child_pids(self):
        ppid = self.parent_pid()
        if not ppid:
            return []
        out = []
        for d in os.listdir("/proc"):
            if not d.isdigit():
                continue
            try:
                with open("/proc/%s/stat" % d) as f:
                    stat = f.read()
            except OSError:
                continue
            fields = stat.rsplit(")", 1)[1].split()
            if int(fields[1]) == ppid and fields[0] not in ("Z", "X"):
                out.append(int(d))
        return sorted(out)

    def wait_children(self, n, deadline=10.0):
        end = time.monotonic() + deadline
        pids = self.child_pids()
        while time.monotonic() < end and len(pids) < n:
            time.sleep(0.1)
            pids = self.child_pids()
        return pids

    # ------------------------------------------------------------------ HTTP
    def request(self, path, method="GET", headers=None, body=None, timeout=15.0, conn=None):
        """One request; returns Response(status, headers (case-insensitive), body, elapsed).

        A connection-level failure (reset, timeout) gives status 0 and the exception text in
        the body, so that concurrent callers can assert on it."""
        own = conn is None
        if own:
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        hdrs = {"Connection": "close"} if own else {}
        hdrs.update(headers or {})
        t0 = time.monotonic()
        try:
            conn.request(method, path, body=body, headers=hdrs)
            r = conn.getresponse()
            data = r.read()
            return Response(r.status, CIDict(r.getheaders()), data, time.monotonic() - t0)
        except (OSError, http.client.HTTPException) as e:
            return Response(ERROR_RESPONSE_STATUS, CIDict(), ("%s: %s" % (type(e).__name__, e))
                            .encode(), time.monotonic() - t0)
        finally:
            if own:
                conn.close()

    def get(self, path, **kw):
        return self.request(path, "GET", **kw)

    def head(self, path, **kw):
        return self.request(path, "HEAD", **kw)

    def post(self, path, body=b"x=1", **kw):
        h = {"Content-Type": "application/x-www-form-urlencoded"}
        h.update(kw.pop("headers", None) or {})
        return self.request(path, "POST", headers=h, body=body, **kw)

    def connection(self, timeout=15.0):
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def concurrent_get(self, paths, timeout=15.0, headers=None, total_deadline=60.0):
        """GET every path in parallel threads (all released together); list of Responses."""
        results = [None] * len(paths)
        barrier = threading.Barrier(len(paths))

        def run(i, p):
            try:
                barrier.wait(10)
            except threading.BrokenBarrierError:
                pass
            results[i] = self.get(p, timeout=timeout, headers=headers)

        threads = [threading.Thread(target=run, args=(i, p), daemon=True)
                   for i, p in enumerate(paths)]
        for t in threads:
            t.start()
        end = time.monotonic() + total_deadline
        for t in threads:
            t.join(max(0.0, end - time.monotonic()))
        return results

    def wait_status(self, path, want, deadline=10.0, interval=0.1, **kw):
        """Poll GET path until X-ISR-Status == want (or want(resp) is true); last Response."""
        end = time.monotonic() + deadline
        r = self.get(path, **kw)
        while time.monotonic() < end:
            ok = want(r) if callable(want) else (r.isr == want)
            if ok:
                return r
            time.sleep(interval)
            r = self.get(path, **kw)
        return r

    # ------------------------------------------------------------------ logs
    def _read_log(self, path=None):
        try:
            with open(path or self.error_log, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def log_mark(self):
        try:
            return os.path.getsize(self.error_log)
        except OSError:
            return 0

    def log_lines(self, since=0):
        try:
            with open(self.error_log, "rb") as f:
                f.seek(since)
                data = f.read()
        except OSError:
            return []
        return data.decode("utf-8", "replace").splitlines()

    def log_dump(self, since=0, limit=200):
        lines = self.log_lines(since)
        text = "---- %s (%d lines) ----\n%s" % (self.error_log, len(lines),
                                                 "\n".join(lines[-limit:]))
        for path, report in read_sanitizer_reports(self.sanitizer_dir):
            text += "\n---- %s ----\n%s" % (path, "\n".join(report.splitlines()[:limit]))
        return text

    def log_tags(self, since=0):
        return ISR_TAG.findall("\n".join(self.log_lines(since)))

    def wait_log(self, regex, since=0, deadline=10.0):
        """Poll the error log until regex matches a line after `since`; the line or None."""
        rx = re.compile(regex)
        end = time.monotonic() + deadline
        while True:
            for line in self.log_lines(since):
                if rx.search(line):
                    return line
            if time.monotonic() >= end:
                return None
            time.sleep(0.05)

    @staticmethod
    def line_is_bad(line):
        """warn and above, a crashed child (notice 'exit signal'), or an unformatted line."""
        if not line.strip():
            return False
        m = LOG_LEVEL.match(line)
        if not m:
            return True  # raw stderr of a child: abort messages, sanitizer output, ...
        level = m.group(2)
        if level in BAD_LEVELS:
            return True
        if "exit signal" in line:  # AH00052 child pid N exit signal Segmentation fault (11)
            return True
        return False

    @staticmethod
    def line_expected(line, patterns):
        for p in patterns:
            if ISR_TAG.fullmatch(p) or ("AH" == p[:2] and p[2:].isdigit()):
                if (p + ":") in line:
                    return True
            elif p in line:
                return True
            else:
                try:
                    if re.search(p, line):
                        return True
                except re.error:
                    pass
        return False

    def sanitizer_reports(self):
        """Sanitizer reports of this env that no earlier call returned (so each one fails the
        check that first sees it, and no later one): a line 'sanitizer report PATH:' followed
        by the report's first lines. log_dump shows all of them."""
        out = ["httpd -t/-k output: " + l for l in self._stderr_sanitizer]
        self._stderr_sanitizer = []
        for path, text in read_sanitizer_reports(self.sanitizer_dir):
            key = (path, len(text))
            if key in self._sanitizer_seen:
                continue
            self._sanitizer_seen.add(key)
            out.append("sanitizer report %s:" % path)
            out += ["    " + l for l in text.splitlines()[:60]]
        return out

    def unexpected_lines(self, since=0, patterns=None):
        """Bad lines (line_is_bad) not declared by patterns, sanitizer lines in the error log
        (which no pattern excuses), and sanitizer reports (see sanitizer_reports)."""
        patterns = expected_patterns() if patterns is None else patterns
        bad = [l for l in self.log_lines(since)
               if SANITIZER_LINE.search(l)
               or (self.line_is_bad(l) and not self.line_expected(l, patterns))]
        return bad + self.sanitizer_reports()

    def access_lines(self):
        try:
            with open(self.access_log) as f:
                return f.read().splitlines()
        except OSError:
            return []

    def wait_access(self, regex, deadline=5.0):
        """Poll the access log (format: host pid status "request" isr=ISR_STATUS) for a line."""
        rx = re.compile(regex)
        end = time.monotonic() + deadline
        while True:
            hits = [l for l in self.access_lines() if rx.search(l)]
            if hits or time.monotonic() >= end:
                return hits
            time.sleep(0.05)

    def cleanup(self):
        if self.running:
            try:
                self.stop()
            except RuntimeError:
                pass
        reports = read_sanitizer_reports(self.sanitizer_dir)
        if reports and SANITIZER_COLLECT:
            os.makedirs(SANITIZER_COLLECT, exist_ok=True)
            for path, text in reports:
                dst = os.path.join(SANITIZER_COLLECT, "%s-%s" % (os.path.basename(self.root),
                                                                os.path.basename(path)))
                with open(dst, "w") as f:
                    f.write(text)
        if not os.environ.get("ISR_KEEP_ROOT"):
            shutil.rmtree(self.root, ignore_errors=True)
        if self in ALL_ENVS:
            ALL_ENVS.remove(self)
