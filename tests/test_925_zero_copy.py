"""Zero-copy bodies: with `ISRZeroCopy On`, per-child copies of large entries (ISRLocalCopySize)
live in memfds, and with `EnableSendfile On` a hit sends the body as a file bucket, so httpd's sendfile path moves it to
the socket without a copy in user space.

What must hold: every version of every entry is sent byte for byte (sizes around the memfd
threshold, a refresh replacing the copy, Range, HEAD, compressed copies next to identity);
`EnableSendfile On` makes the children call sendfile for those bodies and `Off` does not; TLS and
HTTP/2 keep working (they read the bytes instead); the number of memfds a child holds stays
bounded however many large keys it sees.
"""

import gzip
import os
import re
import resource
import shutil
import subprocess
import threading
import time

import pytest

import isr_env

BODY = re.compile(rb"^(/[^|]*)\|v=(\d+)")
STRACE = shutil.which("strace")
H2_MODULE = os.path.join(isr_env.MODULES_DIR, "mod_http2.so")
CURL = shutil.which("curl")


def memfds(pid):
    n = 0
    try:
        for fd in os.listdir("/proc/%d/fd" % pid):
            try:
                if "memfd:isr-copy" in os.readlink("/proc/%d/fd/%s" % (pid, fd)):
                    n += 1
            except OSError:
                pass
    except OSError:
        pass
    return n


def syscalls_during(env, calls, requests):
    """strace's lines for `calls` (e.g. "sendfile,writev") made by every child of env while
    `requests` runs."""
    out = os.path.join(env.root, "logs", "strace.out")
    argv = [STRACE, "-f", "-qq", "-e", "trace=" + calls, "-o", out]
    for p in env.child_pids():
        argv += ["-p", str(p)]
    st = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(1.0)   # attached
        requests()
    finally:
        time.sleep(0.3)
        st.terminate()
        st.wait(10)
    with open(out) as f:
        return f.read().splitlines()


def exact(env, path, size, **kw):
    r = env.get(path, **kw)
    assert r.status == 200 and len(r.body) == size, r
    m = BODY.match(r.body)
    assert m, r.body[:80]
    assert r.body[len(m.group(0)):] == b"x" * (size - len(m.group(0))), r.body[:80]
    return int(m.group(2)), r


CONF = """
ISRLocalCopySize 64M
ISRZeroCopy %s
EnableSendfile %s
<Location /zc/>
    ISRBackend @ORIGIN@/
    ISRCacheTTL 1s
</Location>
<Location /zl/>
    ISRBackend @ORIGIN@/
    ISRCacheTTL 1h
    ISRMaxObjectSize 4M
</Location>
<Location /zz/>
    ISRBackend @ORIGIN@/
    ISRCacheTTL 1h
    ISRCompress gzip
</Location>
"""


class _Bodies:
    def test_sizes_byte_for_byte(self, env):
        for size in (8192, 16383, 32767, 32768, 40000, 65536, 300000, 2 * 1024 * 1024):
            path = "/zl/s%d?size=%d" % (size, size)
            v, r = exact(env, path, size)
            for _ in range(6):
                v2, r2 = exact(env, path, size)
                assert v2 == v and r2.isr == "HIT", r2

    def test_refresh_replaces_the_copy(self, env):
        path, size = "/zc/ref?size=100000", 100000
        v1, _ = exact(env, path, size)
        for _ in range(10):
            assert exact(env, path, size)[0] == v1
        time.sleep(1.2)
        end = time.monotonic() + 6
        v = v1
        while time.monotonic() < end and v == v1:
            v, r = exact(env, path, size)
            time.sleep(0.05)
        assert v == v1 + 1, "refresh never landed"
        for _ in range(10):
            assert exact(env, path, size)[0] == v1 + 1

    def test_range_and_head(self, env):
        path, size = "/zl/rg?size=200000", 200000
        _, full = exact(env, path, size)
        _, full = exact(env, path, size)
        for a, b in ((0, 99), (150000, 199999), (65530, 65545), (199999, 199999)):
            r = env.get(path, headers={"Range": "bytes=%d-%d" % (a, b)})
            assert r.status == 206 and r.body == full.body[a:b + 1], (a, b, r)
        r = env.get(path, headers={"Range": "bytes=0-9,100000-100009"})
        assert r.status == 206 and full.body[:10] in r.body and full.body[100000:100010] in r.body
        r = env.head(path)
        assert r.status == 200 and r.body == b"" and r.headers["Content-Length"] == str(size)

    def test_compressed_copy_next_to_identity(self, env):
        path = "/zz/page?size=120000"
        r0 = env.get(path)
        assert r0.status == 200
        for _ in range(4):
            ri = env.get(path)
            rg = env.get(path, headers={"Accept-Encoding": "gzip"})
            assert ri.status == 200 and rg.status == 200
            assert rg.headers.get("Content-Encoding") == "gzip", rg
            assert gzip.decompress(rg.body) == ri.body == r0.body

    def test_memfds_bounded(self, env):
        # 600 keys of 40 KB: more than the 512 memfds a child may hold; the rest are heap copies.
        for i in range(600):
            r = env.get("/zl/many%d?size=40000" % i)
            assert r.status == 200 and len(r.body) == 40000
            r = env.get("/zl/many%d?size=40000" % i)
            assert r.status == 200 and len(r.body) == 40000
        for pid in env.child_pids():
            assert memfds(pid) <= 512, (pid, memfds(pid))


class TestSendfileOn(_Bodies):
    CONF = CONF % ("On", "On")

    def test_copies_live_in_memfds(self, env):
        path = "/zl/mf?size=65536"
        for _ in range(20):
            assert env.get(path).status == 200
        assert sum(memfds(p) for p in env.child_pids()) >= 1

    @pytest.mark.skipif(not STRACE, reason="needs strace")
    def test_children_send_with_sendfile(self, env):
        path, size = "/zl/sf?size=65536", 65536
        exact(env, path, size)
        lines = syscalls_during(env, "sendfile", lambda: [exact(env, path, size) for _ in range(20)])
        calls = [l for l in lines if "sendfile(" in l]
        assert len(calls) >= 10, lines[:5]


class _NoSendfile(_Bodies):
    @pytest.mark.skipif(not STRACE, reason="needs strace")
    def test_no_sendfile(self, env):
        path, size = "/zl/nsf?size=65536", 65536
        exact(env, path, size)
        text = "\n".join(syscalls_during(env, "sendfile,writev",
                                         lambda: [exact(env, path, size) for _ in range(20)]))
        assert "sendfile(" not in text
        assert "writev(" in text   # the answers went out (strace was attached)


class TestSendfileOff(_NoSendfile):
    CONF = CONF % ("On", "Off")


class TestZeroCopyOffByDefault(_NoSendfile):
    """Without ISRZeroCopy (its default is Off), copies stay in the heap and go out with
    writev even under EnableSendfile On."""
    CONF = CONF.replace("ISRZeroCopy %s\n", "") % "On"

    def test_no_memfds(self, env):
        for _ in range(10):
            assert env.get("/zl/mf?size=65536").status == 200
        assert sum(memfds(p) for p in env.child_pids()) == 0


RACE_CONF = """
ISRLocalCopySize 64M
ISRZeroCopy On
EnableSendfile %s
LoadModule deflate_module %s/mod_deflate.so
<Location /zr/>
    ISRBackend @ORIGIN@/
    ISRCacheTTL 1h
</Location>
<Location /zd/>
    ISRBackend @ORIGIN@/
    ISRCacheTTL 1h
    SetOutputFilter DEFLATE
</Location>
"""


def hammer(env, path, headers_of, check, threads=8, rounds=40):
    """`threads` keep-alive clients, `rounds` requests each, all of one child's threads busy
    at once; every answer goes through check(i, response); the failures."""
    bad = []
    barrier = threading.Barrier(threads)

    def run(t):
        conn = env.connection(timeout=20)
        try:
            try:
                barrier.wait(10)
            except threading.BrokenBarrierError:
                pass
            for i in range(rounds):
                r = env.request(path, headers=headers_of(t, i), conn=conn)
                why = check(t, i, r)
                if why:
                    bad.append(why)
                if r.status == 0:
                    conn.close()
                    conn = env.connection(timeout=20)
        except Exception as e:   # a client that died checked fewer answers: a failure too
            bad.append((t, "client", repr(e)))
        finally:
            conn.close()

    ts = [threading.Thread(target=run, args=(t,), daemon=True) for t in range(threads)]
    for t in ts:
        t.start()
    end = time.monotonic() + 90
    for t in ts:
        t.join(max(0.0, end - time.monotonic()))
    bad += [("client still running",) for t in ts if t.is_alive()]
    return bad


class _ConcurrentReads:
    """A file bucket that httpd reads instead of sending (a range under 256 bytes, mod_deflate)
    seeks and reads its file: every thread of a child reading the same copy at once must still
    get the copy's bytes at its own offsets (one file offset shared by the child's threads
    once gave them each other's bytes)."""
    MPM_CONF = {"StartServers": 1, "ServerLimit": 1, "MinSpareThreads": 1}

    def reference(self, env, path):
        r = env.get(path)
        assert r.status == 200 and len(r.body) > 200000, r
        for _ in range(3):
            r2 = env.get(path)
            assert r2.status == 200 and r2.isr == "HIT" and r2.body == r.body, r2
        return r.body

    def test_small_ranges_concurrent(self, env):
        path = "/zr/race?noise=200000"
        full = self.reference(env, path)

        def span(t, i):
            a = (t * 7919 + i * 104729) % (len(full) - 200)
            return a, a + 10 + (t * 31 + i) % 190

        def check(t, i, r):
            a, b = span(t, i)
            if r.status != 206 or r.body != full[a:b + 1]:
                return (a, b, r.status, r.body[:20], full[a:a + 20])
        bad = hammer(env, path, lambda t, i: {"Range": "bytes=%d-%d" % span(t, i)}, check)
        assert not bad, bad[:3]

    def test_deflate_after_isr_concurrent(self, env):
        path = "/zd/race?noise=200000"
        full = self.reference(env, path)

        def check(t, i, r):
            if r.status != 200 or r.headers.get("Content-Encoding") != "gzip":
                return (i, r.status, r.headers.get("Content-Encoding"), r.body[:40])
            try:
                body = gzip.decompress(r.body)
            except (OSError, EOFError) as e:
                return (i, "gzip", str(e))
            if body != full:
                return (i, len(body), "other bytes")
        bad = hammer(env, path, lambda t, i: {"Accept-Encoding": "gzip"}, check, rounds=25)
        assert not bad, bad[:3]


class TestConcurrentReadsSendfileOn(_ConcurrentReads):
    CONF = RACE_CONF % ("On", isr_env.MODULES_DIR)

    def test_copies_were_memfds(self, env):
        self.reference(env, "/zr/race?noise=200000")
        assert sum(memfds(p) for p in env.child_pids()) >= 1


class TestConcurrentReadsSendfileOff(_ConcurrentReads):
    """The same with heap buckets: the control."""
    CONF = RACE_CONF % ("Off", isr_env.MODULES_DIR)


class TestMemfdsWithinTheFdLimit:
    """A child keeps at most a quarter of its RLIMIT_NOFILE in memfds (here 400 / 4 = 100),
    so that copies never take the descriptors its connections need."""
    CONF = CONF % ("On", "On")
    MPM_CONF = {"StartServers": 1, "ServerLimit": 1, "MinSpareThreads": 1}
    START = False

    def test_bounded_by_the_limit(self, env):
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (400, hard))
        try:
            env.start()
        finally:
            resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
        for i in range(150):
            for _ in range(2):
                r = env.get("/zl/lim%d?size=40000" % i)
                assert r.status == 200 and len(r.body) == 40000, r
        n = [memfds(p) for p in env.child_pids()]
        assert n and all(0 < k <= 100 for k in n), n
        for i in (0, 77, 149):   # heap copies and memfd copies alike, byte for byte
            exact(env, "/zl/lim%d?size=40000" % i, 40000)


LIBGCC = "/lib/x86_64-linux-gnu/libgcc_s.so.1"


@pytest.mark.skipif(not os.path.isfile(LIBGCC), reason="needs " + LIBGCC)
class TestNoProc:
    """Children in a ChrootDir without /proc cannot reopen a memfd: they say so once (ISR0054)
    and send the same copies from memory, byte for byte."""
    CONF = "ChrootDir @ROOT@/jail\n" + CONF % ("On", "On")
    START = False

    def test_copies_sent_from_memory(self, env):
        isr_env.expect_log("ISR0054")
        # glibc loads libgcc_s when a thread exits: the jail needs it, and nothing else.
        jail = os.path.join(env.root, "jail", LIBGCC.lstrip("/"))
        os.makedirs(os.path.dirname(jail))
        shutil.copy(LIBGCC, jail)
        env.start()
        mark = env.log_mark()
        for _ in range(6):
            exact(env, "/zl/np?size=65536", 65536)
        assert sum(memfds(p) for p in env.child_pids()) >= 1
        assert env.wait_log(re.compile(r"ISR0054: ISRZeroCopy: cannot open /proc/self/fd/"),
                            since=mark), env.log_dump(mark)
        assert sum(1 for l in env.log_lines(mark) if "ISR0054" in l) <= len(env.child_pids())


@pytest.mark.skipif(not (CURL and os.path.isfile(H2_MODULE)), reason="needs curl and mod_http2")
class TestHTTP2:
    CONF = ("LoadModule http2_module %s\nProtocols h2c http/1.1\n" % H2_MODULE) + CONF % ("On", "On")

    def test_h2c_bodies_exact(self, env):
        path, size = "/zl/h2?size=300000", 300000
        _, ref = exact(env, path, size)
        _, ref = exact(env, path, size)
        out = os.path.join(env.root, "h2.body")
        for _ in range(3):
            p = subprocess.run([CURL, "-s", "--http2-prior-knowledge", "-o", out, "-w", "%{http_version}",
                                env.base_url + path], stdout=subprocess.PIPE, text=True, timeout=30)
            assert p.stdout == "2"
            with open(out, "rb") as f:
                assert f.read() == ref.body


class TestConfig:
    @pytest.mark.parametrize("body", [
        "<Location /x/>\n ISRZeroCopy On\n</Location>\n",   # server config only
        "ISRZeroCopy maybe\n",
    ])
    def test_refused(self, body):
        e = isr_env.HttpdEnv(name="zcconf")
        try:
            rc, out = e.configtest(body)
            assert rc != 0 and "ISRZeroCopy" in out, out
        finally:
            e.cleanup()

    def test_accepted(self):
        e = isr_env.HttpdEnv(name="zcconf")
        try:
            rc, out = e.configtest("ISRZeroCopy On\nISRZeroCopy Off\n")
            assert rc == 0, out
        finally:
            e.cleanup()
