"""ISRFastPath: under the event MPM, after a cached answer the worker looks for the client's next
request for a short time before handing the connection back to the listener.

What must hold (issue 10): the next request is taken on the same worker when it comes within the
wait, and through the listener as before when it does not; idle keep-alive connections hold no
thread; KeepAliveTimeout, Timeout, MaxKeepAliveRequests, MaxConnectionsPerChild, graceful restart,
access logging, mod_status accounting and HTTP/2 keep working; ISRFastPath Off turns it off; the
worker MPM never uses it. The path is observed through its trace lines (ISR0051 when the next
request was read on the same worker, ISR0050 when none came in time), with `LogLevel isr:trace2`.
"""

import os
import re
import shutil
import socket
import subprocess
import threading
import time

import pytest

import isr_env

CAUGHT = re.compile(r"ISR0051: fast path: next request read on this worker")
MISSED = re.compile(r"ISR0050: fast path: no next request within")
H2_MODULE = os.path.join(isr_env.MODULES_DIR, "mod_http2.so")
STATUS_MODULE = os.path.join(isr_env.MODULES_DIR, "mod_status.so")


class Client:
    """One keep-alive HTTP/1.1 connection on a raw socket: exact control of when each request
    is sent, and of reading exactly one response."""

    def __init__(self, port, timeout=10.0):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = b""

    def send(self, path, extra=""):
        self.s.sendall(("GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n%s\r\n" % (path, extra)).encode())

    def _fill(self):
        d = self.s.recv(65536)
        if not d:
            raise EOFError("connection closed by the server")
        self.buf += d

    def response(self):
        """(status, headers dict with lower-case names, body) of the next response."""
        while b"\r\n\r\n" not in self.buf:
            self._fill()
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        hdrs = {}
        for l in lines[1:]:
            k, v = l.split(":", 1)
            hdrs[k.strip().lower()] = v.strip()
        n = int(hdrs.get("content-length", "0"))
        while len(self.buf) < n:
            self._fill()
        body, self.buf = self.buf[:n], self.buf[n:]
        return status, hdrs, body

    def get(self, path, extra=""):
        self.send(path, extra)
        return self.response()

    def closed_within(self, seconds):
        """True if the server closes the connection within `seconds` (nothing else arrives)."""
        self.s.settimeout(seconds)
        try:
            return self.s.recv(1) == b""
        except socket.timeout:
            return False
        except ConnectionResetError:
            return True

    def close(self):
        self.s.close()


def count(env, regex, since):
    return sum(1 for l in env.log_lines(since) if regex.search(l))


def hits(env, path, n, pause):
    """n requests for path on one keep-alive connection, `pause` seconds after each answer."""
    c = Client(env.port)
    try:
        for _ in range(n):
            st, h, body = c.get(path)
            assert st == 200, (st, h)
            time.sleep(pause)
    finally:
        c.close()


def never_armed(env, mark):
    time.sleep(0.3)
    assert count(env, CAUGHT, mark) == 0 and count(env, MISSED, mark) == 0, env.log_dump(mark)


LOC = """
LogLevel warn isr:trace2
KeepAliveTimeout 20
<Location /fp/>
    ISRBackend @ORIGIN@/
    ISRCacheTTL 1h
    ISRFastPath 100ms
</Location>
<Location /off/>
    ISRBackend @ORIGIN@/
    ISRCacheTTL 1h
    ISRFastPath Off
</Location>
<Location /dflt/>
    ISRBackend @ORIGIN@/
    ISRCacheTTL 1h
</Location>
"""


class TestFastPathEvent:
    CONF = LOC

    def _warm(self, env, path):
        r = env.get(path)
        assert r.status == 200, r
        r = env.get(path)
        assert r.status == 200 and r.isr == "HIT", r

    def test_next_request_taken_on_the_same_worker(self, env):
        self._warm(env, "/fp/a")
        mark = env.log_mark()
        c = Client(env.port)
        try:
            for i in range(5):
                st, h, body = c.get("/fp/a")
                assert st == 200 and h.get("x-isr-status", "HIT") in ("HIT",), (st, h)
                assert body.startswith(b"/a|"), body[:40]
                time.sleep(0.02)   # well inside the 100 ms wait
        finally:
            c.close()
        # Four of the five answers were followed by the next request within the wait.
        assert env.wait_log(CAUGHT, since=mark), env.log_dump(mark)
        assert count(env, CAUGHT, mark) >= 4, env.log_dump(mark)

    def test_a_late_request_goes_through_the_listener(self, env):
        self._warm(env, "/fp/late")
        mark = env.log_mark()
        c = Client(env.port)
        try:
            assert c.get("/fp/late")[0] == 200
            time.sleep(0.8)        # past the 100 ms wait: back to the listener
            st, h, body = c.get("/fp/late")
            assert st == 200 and body.startswith(b"/late|"), (st, body[:40])
        finally:
            c.close()
        assert env.wait_log(MISSED, since=mark), env.log_dump(mark)
        assert count(env, CAUGHT, mark) == 0, env.log_dump(mark)

    def test_off_never_waits(self, env):
        self._warm(env, "/off/a")
        mark = env.log_mark()
        hits(env, "/off/a", 5, 0.02)
        never_armed(env, mark)

    def test_on_by_default(self, env):
        self._warm(env, "/dflt/a")
        mark = env.log_mark()
        hits(env, "/dflt/a", 3, 0.2)   # past the default 1 ms: the wait ran and missed
        assert env.wait_log(MISSED, since=mark), env.log_dump(mark)

    def test_not_after_a_static_file(self, env):
        env.write_file("htdocs/static.txt", "static\n")
        mark = env.log_mark()
        hits(env, "/static.txt", 3, 0.02)
        never_armed(env, mark)

    def test_pipelined_requests_answered_in_order(self, env):
        self._warm(env, "/fp/p1")
        self._warm(env, "/fp/p2")
        c = Client(env.port)
        try:
            c.s.sendall(b"".join(b"GET /fp/%s HTTP/1.1\r\nHost: x\r\n\r\n" % p
                                 for p in (b"p1", b"p2", b"p1")))
            bodies = [c.response()[2] for _ in range(3)]
        finally:
            c.close()
        assert [b.split(b"|")[0] for b in bodies] == [b"/p1", b"/p2", b"/p1"]

    def test_access_log_has_every_request(self, env):
        self._warm(env, "/fp/log")   # two lines: the miss and a hit
        c = Client(env.port)
        try:
            for _ in range(20):
                assert c.get("/fp/log")[0] == 200
        finally:
            c.close()

        def mine():
            return [l for l in env.access_lines() if '"GET /fp/log ' in l]
        end = time.monotonic() + 5
        while time.monotonic() < end and len(mine()) < 22:
            time.sleep(0.05)
        time.sleep(0.3)
        lines = mine()
        assert len(lines) == 22, lines
        assert all(" 200 " in l and "isr=HIT" in l for l in lines[2:]), lines

    def test_keepalive_timeout_still_closes_idle_connections(self, env):
        env.restart(env.body.replace("KeepAliveTimeout 20", "KeepAliveTimeout 1"))
        try:
            self._warm(env, "/fp/ka")
            c = Client(env.port)
            try:
                assert c.get("/fp/ka")[0] == 200
                t0 = time.monotonic()
                assert c.closed_within(8), "idle connection not closed"
                # KeepAliveTimeout 1 (plus the wait, at most 100 ms), generous margin.
                assert time.monotonic() - t0 < 6
            finally:
                c.close()
        finally:
            env.restart(env.body.replace("KeepAliveTimeout 1", "KeepAliveTimeout 20"))

    def test_timeout_still_applies_to_a_stalled_request(self, env):
        env.restart(env.body.replace("KeepAliveTimeout 20", "KeepAliveTimeout 20\nTimeout 1"))
        try:
            self._warm(env, "/fp/slow")
            mark = env.log_mark()
            c = Client(env.port)
            try:
                assert c.get("/fp/slow")[0] == 200
                time.sleep(0.02)
                c.s.sendall(b"GET /fp/slow HTTP/1.1\r\n")   # inside the wait, then stalls
                t0 = time.monotonic()
                c.s.settimeout(10)
                got = b""
                try:
                    while True:
                        d = c.s.recv(4096)
                        if not d:
                            break
                        got += d
                except (socket.timeout, ConnectionResetError):
                    pass
                assert time.monotonic() - t0 < 8, "stalled request held past Timeout"
                assert got == b"" or got.startswith(b"HTTP/1.1 408"), got[:80]
            finally:
                c.close()
            assert count(env, CAUGHT, mark) >= 1, env.log_dump(mark)
        finally:
            env.restart(env.body.replace("\nTimeout 1", ""))

    def test_max_keepalive_requests_still_ends_the_connection(self, env):
        env.restart(env.body.replace("KeepAliveTimeout 20",
                                     "KeepAliveTimeout 20\nMaxKeepAliveRequests 3"))
        try:
            self._warm(env, "/fp/mk")
            c = Client(env.port)
            try:
                # httpd keeps the connection for 3 more requests after the first: the fourth
                # answer says close, and the server closes.
                for i in range(4):
                    st, h, _ = c.get("/fp/mk")
                    assert st == 200
                    if h.get("connection", "").lower() == "close":
                        break
                assert i == 3 and h.get("connection", "").lower() == "close", (i, h)
                assert c.closed_within(5)
            finally:
                c.close()
        finally:
            env.restart(env.body.replace("\nMaxKeepAliveRequests 3", ""))


VHOSTS = """
LogLevel warn isr:trace2
<VirtualHost *:@PORT@>
    ServerName default.test
    KeepAliveTimeout 50ms
    <Location /fp/>
        ISRBackend @ORIGIN@/
        ISRCacheTTL 1h
        ISRFastPath 100ms
    </Location>
</VirtualHost>
<VirtualHost *:@PORT@>
    ServerName short.test
    KeepAliveTimeout 30ms
    <Location /fp/>
        ISRBackend @ORIGIN@/
        ISRCacheTTL 1h
        ISRFastPath 100ms
    </Location>
</VirtualHost>
<VirtualHost *:@PORT@>
    ServerName inherits.test
    <Location /fp/>
        ISRBackend @ORIGIN@/
        ISRCacheTTL 1h
        ISRFastPath 100ms
    </Location>
</VirtualHost>
<VirtualHost *:@PORT@>
    ServerName long.test
    KeepAliveTimeout 20
    <Location /fp/>
        ISRBackend @ORIGIN@/
        ISRCacheTTL 1h
        ISRFastPath 100ms
    </Location>
</VirtualHost>
"""


class TestWaitCappedByTheVhostsKeepAliveTimeout:
    """The wait never outlasts the KeepAliveTimeout the event MPM applies next: that of the
    virtual host that answered when it sets one, else that of the connection's default
    (first) virtual host, not the main server's that the vhost inherits."""
    CONF = VHOSTS

    def _waits(self, env, host):
        mark = env.log_mark()
        for _ in range(2):   # the miss, then the hit that arms the wait
            c = Client(env.port)
            try:
                c.s.sendall(("GET /fp/cap HTTP/1.1\r\nHost: %s\r\n\r\n" % host).encode())
                st, h, body = c.response()
                assert st == 200 and body.startswith(b"/cap|"), (st, h)
                time.sleep(0.4)   # past every wait: the look missed
            finally:
                c.close()
        assert env.wait_log(MISSED, since=mark), env.log_dump(mark)
        return [re.search(r"within (\d+)us", l).group(1)
                for l in env.log_lines(mark) if MISSED.search(l)]

    def test_a_vhost_with_a_shorter_keepalive(self, env):
        assert set(self._waits(env, "short.test")) == {"30000"}

    def test_a_vhost_with_a_longer_keepalive(self, env):
        assert set(self._waits(env, "long.test")) == {"100000"}

    def test_a_vhost_without_one_gets_the_connections(self, env):
        # inherits.test inherits the main server's 5 s, but the MPM applies the default
        # vhost's 50 ms to the connection.
        assert set(self._waits(env, "inherits.test")) == {"50000"}

    def test_the_default_vhost(self, env):
        assert set(self._waits(env, "default.test")) == {"50000"}


class TestIdleConnectionsHoldNoThread:
    """Four worker threads, ten idle keep-alive connections that each just had a cached
    answer: a new client is still answered at once (a worker-MPM-like design that kept each
    connection's thread would leave it waiting for KeepAliveTimeout). AsyncRequestWorkerFactor
    is raised so that the event MPM's own limit on connections per child (threads + factor x
    idle threads) stays above the eleven."""
    MPM_CONF = dict(StartServers=1, ServerLimit=1, ThreadsPerChild=4, ThreadLimit=4,
                    MaxRequestWorkers=4, MinSpareThreads=1, MaxSpareThreads=4,
                    AsyncRequestWorkerFactor=8)
    CONF = LOC
    # The main process notes when a check finds no idle thread (all four busy for a moment).
    EXPECT_LOG_STOP = ("AH00484",)

    def test_new_client_answered_while_many_connections_idle(self, env):
        assert env.get("/fp/idle").status == 200
        idle = []
        try:
            for _ in range(10):
                c = Client(env.port)
                st, _, _ = c.get("/fp/idle")
                assert st == 200
                idle.append(c)
            time.sleep(0.5)            # every wait (100 ms) is over
            t0 = time.monotonic()
            r = env.get("/fp/idle", timeout=10)
            assert r.status == 200 and r.isr == "HIT", r
            assert time.monotonic() - t0 < 5, "new client waited for a thread"
            # And the idle ones are still open and usable.
            for c in idle[:3]:
                assert c.get("/fp/idle")[0] == 200
        finally:
            for c in idle:
                c.close()


class TestStatusAccounting:
    CONF = LOC + """
LoadModule status_module %s
ExtendedStatus On
<Location /server-status>
    SetHandler server-status
</Location>
""" % STATUS_MODULE

    def _accesses(self, env):
        r = env.get("/server-status?auto")
        assert r.status == 200, r
        m = re.search(rb"^Total Accesses: (\d+)", r.body, re.M)
        assert m, r.body[:400]
        return int(m.group(1))

    @pytest.mark.skipif(not os.path.isfile(STATUS_MODULE), reason="needs mod_status")
    def test_total_accesses_count_every_request(self, env):
        assert env.get("/fp/st").status == 200
        time.sleep(0.5)   # a request is counted when it is logged, just after its answer
        before = self._accesses(env)
        c = Client(env.port)
        try:
            for _ in range(25):
                assert c.get("/fp/st")[0] == 200
        finally:
            c.close()
        time.sleep(0.5)
        after = self._accesses(env)
        # 25 on the connection, plus the status request itself.
        assert after - before == 26, (before, after)


class TestGracefulAndRecycling:
    MPM_CONF = dict(MaxConnectionsPerChild=5)
    CONF = LOC

    def test_graceful_restart_under_keepalive_hits(self, env):
        assert env.get("/fp/g").status == 200
        stop = threading.Event()
        bad, done = [], [0]

        def loop():
            while not stop.is_set():
                try:
                    c = Client(env.port, timeout=10)
                except OSError as e:
                    bad.append("connect: %s" % e)
                    return
                try:
                    for _ in range(50):
                        if stop.is_set():
                            break
                        st, _, body = c.get("/fp/g")
                        if st != 200 or not body.startswith(b"/g|"):
                            bad.append((st, body[:40]))
                        done[0] += 1
                except (EOFError, ConnectionResetError, BrokenPipeError):
                    pass        # the server may close a keep-alive connection: reconnect
                finally:
                    c.close()

        ts = [threading.Thread(target=loop, daemon=True) for _ in range(4)]
        for t in ts:
            t.start()
        time.sleep(0.5)
        env.graceful()
        time.sleep(0.5)
        stop.set()
        for t in ts:
            t.join(20)
        assert not bad, bad[:5]
        assert done[0] > 20
        r = env.get("/fp/g")
        assert r.status == 200 and r.isr == "HIT", r

    def test_max_connections_per_child_recycles(self, env):
        assert env.get("/fp/m").status == 200
        pids = set(env.child_pids())
        answered = 0
        for _ in range(30):
            c = Client(env.port)
            try:
                for _ in range(3):
                    st, _, body = c.get("/fp/m")
                    assert st == 200 and body.startswith(b"/m|")
                    answered += 1
            except (EOFError, ConnectionResetError, BrokenPipeError):
                pass   # a child that reached its limit closes its keep-alive connections
            finally:
                c.close()
        assert answered >= 30
        time.sleep(1)
        assert set(env.child_pids()) - pids, "no child was replaced"


class TestWorkerMPM:
    MPM = "worker"
    CONF = LOC

    def test_never_used_under_a_synchronous_mpm(self, env):
        assert env.get("/fp/w").status == 200
        mark = env.log_mark()
        hits(env, "/fp/w", 5, 0.02)
        never_armed(env, mark)


CURL = shutil.which("curl")


@pytest.mark.skipif(not (CURL and os.path.isfile(H2_MODULE)), reason="needs curl and mod_http2")
class TestHTTP2Untouched:
    CONF = ("LoadModule http2_module %s\nProtocols h2c http/1.1\n" % H2_MODULE) + LOC

    def test_h2c_streams_answered_and_never_armed(self, env):
        assert env.get("/fp/h2").status == 200
        mark = env.log_mark()
        url = env.base_url + "/fp/h2"
        for _ in range(3):
            # one URL per run: curl 7.88 does not reuse a prior-knowledge connection
            p = subprocess.run([CURL, "-s", "--http2-prior-knowledge", "-o", "/dev/null",
                                "-w", "%{http_version} %{http_code}", url],
                               stdout=subprocess.PIPE, text=True, timeout=30)
            assert p.stdout.split() == ["2", "200"], p.stdout
        never_armed(env, mark)


class TestConfig:
    @pytest.mark.parametrize("value", ["0", "abc", "200ms", "0us", "1x", "-1ms", "101ms", "1"])
    def test_bad_values_refused(self, origin, value):
        e = isr_env.HttpdEnv(name="fpconf")
        try:
            rc, out = e.configtest("<Location /x/>\n ISRBackend %s/\n ISRFastPath %s\n"
                                   "</Location>\n" % (origin.url, value))
            assert rc != 0, out
            assert "ISRFastPath" in out and value in out, out
        finally:
            e.cleanup()

    @pytest.mark.parametrize("value", ["On", "off", "500us", "2ms", "100ms", "1us"])
    def test_good_values_accepted(self, origin, value):
        e = isr_env.HttpdEnv(name="fpconf")
        try:
            rc, out = e.configtest("<Location /x/>\n ISRBackend %s/\n ISRFastPath %s\n"
                                   "</Location>\n" % (origin.url, value))
            assert rc == 0, out
        finally:
            e.cleanup()


# ---------------------------------------------------------------------------------------- TLS

import ssl                      # noqa: E402

SSL_MODULE = os.path.join(isr_env.MODULES_DIR, "mod_ssl.so")


class TlsClient(Client):
    def __init__(self, port, timeout=10.0):
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        raw = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.s = ctx.wrap_socket(raw, server_hostname="127.0.0.1")
        self.buf = b""


class TestOverTLS:
    """mod_ssl sits below the fast path's filter: the wait polls the socket and the next read
    goes through TLS. Large cached bodies (memfd copies) are read from memory over TLS, not
    sent with sendfile, and arrive byte for byte."""

    CONF = """
LoadModule ssl_module %s
LoadModule socache_shmcb_module %s/mod_socache_shmcb.so
SSLSessionCache "shmcb:@ROOT@/run/ssl_scache(512000)"
SSLEngine on
SSLCertificateFile "@CERT@"
SSLCertificateKeyFile "@KEY@"
EnableSendfile On
ISRZeroCopy On
ISRLocalCopySize 16M
""" % (SSL_MODULE, isr_env.MODULES_DIR) + LOC

    def test_keepalive_hits_over_tls(self, env):
        mark = env.log_mark()
        c = TlsClient(env.port)
        try:
            assert c.get("/fp/tls1")[0] == 200
            for _ in range(8):
                st, h, body = c.get("/fp/tls1")
                assert st == 200 and h.get("x-isr-status") == "HIT" and body.startswith(b"/tls1|")
                time.sleep(0.02)
        finally:
            c.close()
        assert count(env, CAUGHT, mark) >= 4, env.log_dump(mark)

    def test_large_bodies_over_tls(self, env):
        c = TlsClient(env.port)
        try:
            st, _, first = c.get("/fp/tls2?size=200000")
            assert st == 200 and len(first) == 200000
            for _ in range(6):
                st, h, body = c.get("/fp/tls2?size=200000")
                assert st == 200 and h.get("x-isr-status") == "HIT" and body == first
        finally:
            c.close()
