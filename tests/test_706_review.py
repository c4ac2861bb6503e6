"""Review of the backend-request-context change (issue 7): problems found by attacking a real
httpd + origin. Each test fails on the code under review and states what should hold.

1.  A header line that starts with "HTTP/" in the middle of a response head is taken for a new
    status line: every header before it (Set-Cookie, Cache-Control: private) is forgotten and a
    private answer is stored; the same trick turns trailers into stored headers.
2.  A final 1xx (101 Switching Protocols) from the backend is relayed to the client as the answer.
3.  obs-fold unfolding and Connection concatenation are quadratic in memory: 15000 fold lines
    (a 60 KB head) cost a child 240 MB; 60000 (240 KB) cost 3.6 GB and ran into ISRTimeout.
4.  An already expired freshness (Expires: 0, max-age=0), or one only in a header that Connection
    names, counts as "explicit freshness": a 429 / 400 / 302 is stored for ISRCacheTTL, and a
    refresh replaces a good page with it.
5.  A stored status httpd has no status line for (218, 299, 450) goes out as "500 Internal
    Server Error" on every hit.
6.  ISRApply header=NAME removes the client's NAME only for GET/HEAD: a POST, PUT, OPTIONS reaches
    the handler with the client's own value.
7.  ISRQuickHandler On evaluates ISRBackend expr= before per-directory SetEnvIf (and mod_rewrite)
    ran: the quick handler serves the entry of another backend request than the normal path makes.
"""

import socket
import threading
import time

import pytest

import isr_env


# ------------------------------------------------------------------------ a raw-bytes origin

class RawOrigin:
    """Answers GET /NAME[?...] with the canned bytes set for NAME, then closes. Counts hits."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.url = "http://127.0.0.1:%d" % self.port
        self.answers = {}
        self.counts = {}
        self.lock = threading.Lock()
        self.stopping = False
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def set(self, name, raw):
        with self.lock:
            self.answers[name] = raw
            self.counts[name] = 0

    def count(self, name):
        with self.lock:
            return self.counts.get(name, 0)

    def _serve(self):
        while not self.stopping:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._handle, args=(c,), daemon=True).start()

    def _handle(self, c):
        try:
            c.settimeout(10)
            data = b""
            while b"\r\n\r\n" not in data and len(data) < 65536:
                d = c.recv(65536)
                if not d:
                    return
                data += d
            target = data.split(b"\r\n", 1)[0].split(b" ")[1].decode("latin-1")
            name = target.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1]
            with self.lock:
                raw = self.answers.get(name)
                self.counts[name] = self.counts.get(name, 0) + 1
            if raw is None:
                raw = b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            c.sendall(raw)
            c.shutdown(socket.SHUT_WR)
            time.sleep(0.05)
        except OSError:
            pass
        finally:
            c.close()

    def stop(self):
        self.stopping = True
        self.sock.close()


@pytest.fixture(scope="module")
def raw():
    o = RawOrigin()
    yield o
    o.stop()


@pytest.fixture(scope="class")
def raw_env(request, origin, raw):
    """The class's server, as conftest's env fixture makes it, with @RAW@ in CONF replaced by
    the raw origin's URL."""
    from conftest import make_env, start_checked
    cls = request.cls
    e = make_env(request, origin, name=cls.__name__, mpm=getattr(cls, "MPM", "event"),
                 mpm_conf=getattr(cls, "MPM_CONF", None),
                 conf=cls.CONF.replace("@RAW@", raw.url))
    try:
        start_checked(e)
    except BaseException:
        e.cleanup()
        raise
    yield e
    try:
        e.stop()
    finally:
        e.cleanup()


def hwm_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


# ---------------------------------------------------------------- 1 and 2: the response head

class TestHeadLines:
    CONF = """
# These tests re-request right after a failure: without ISRErrorTTL's memory of it.
ISRErrorTTL 0
<Location /rh/>
    ISRBackend @RAW@/
    ISRCacheTTL 60s
</Location>
"""

    def test_706_01_http_prefixed_header_line_does_not_forget_private(self, raw_env, raw):
        # "HTTP/1.1" is not a token (RFC 9110 5.6.2): this head is invalid, a 502. Today the line
        # starts a new head, Set-Cookie and Cache-Control: private are forgotten, it is stored.
        isr_env.expect_log(isr_env.ISR_WARN_LOG)
        raw.set("priv", b"HTTP/1.1 200 OK\r\n"
                        b"Content-Type: text/plain\r\n"
                        b"Set-Cookie: session=victim-secret\r\n"
                        b"Cache-Control: private\r\n"
                        b"HTTP/1.1: 200 OK\r\n"
                        b"Content-Length: 15\r\n"
                        b"Connection: close\r\n"
                        b"\r\n"
                        b"victim's page!\n")
        r1 = raw_env.get("/rh/priv")
        r2 = raw_env.get("/rh/priv")
        assert r2.isr != "HIT", (r1, r2)
        assert raw.count("priv") == 2, "a private answer was stored and served from the cache"
        for r in (r1, r2):
            if r.status == 200:
                assert "victim-secret" in (r.headers.get("Set-Cookie") or ""), r

    def test_706_02_trailers_never_become_headers(self, raw_env, raw):
        # A fake "HTTP/1.1: 100" line in the head makes the parser think the head was a 1xx;
        # a "HTTP/1.1: 200" trailer then starts a "final head" made of the trailers.
        isr_env.expect_log(isr_env.ISR_WARN_LOG)
        raw.set("trl", b"HTTP/1.1 200 OK\r\n"
                       b"Content-Type: text/plain\r\n"
                       b"HTTP/1.1: 100\r\n"
                       b"Transfer-Encoding: chunked\r\n"
                       b"Connection: close\r\n"
                       b"\r\n"
                       b"2\r\nok\r\n0\r\n"
                       b"HTTP/1.1: 200\r\n"
                       b"X-From-Trailer: injected\r\n"
                       b"Content-Type: text/html\r\n"
                       b"\r\n")
        for _ in range(2):
            r = raw_env.get("/rh/trl")
            assert "X-From-Trailer" not in r.headers, r
            assert r.headers.get("Content-Type", "") != "text/html", r

    def test_706_03_final_1xx_is_not_an_answer(self, raw_env, raw):
        # curl hands over a 101 the backend sent unasked as the final status; mod_isr relays
        # "101 Switching Protocols" with a body to the client (a front proxy may now tunnel).
        isr_env.expect_log(isr_env.ISR_WARN_LOG)
        raw.set("sw", b"HTTP/1.1 101 Switching Protocols\r\n"
                      b"Upgrade: websocket\r\n"
                      b"Connection: Upgrade\r\n"
                      b"\r\n"
                      b"GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n")
        r = raw_env.get("/rh/sw")
        assert r.status >= 200, r
        assert b"smuggled" not in r.body, r


# ------------------------------------------------------------ 3: quadratic head processing

FOLDS = 15000          # 60 KB of head; today about 240 MB of pool memory
MAX_GROWTH_KB = 64 * 1024


class _OneChild:
    MPM = "prefork"
    MPM_CONF = {"StartServers": 1, "MinSpareServers": 1, "MaxSpareServers": 1,
                "ServerLimit": 1, "MaxRequestWorkers": 1}

    def _growth(self, raw_env, path):
        pids = raw_env.wait_children(1)
        assert len(pids) == 1, pids
        raw_env.get("/rh/warm")            # the child has served one request
        before = hwm_kb(pids[0])
        t0 = time.monotonic()
        r = raw_env.get(path, timeout=30)
        took = time.monotonic() - t0
        assert raw_env.child_pids() == pids, "the child died"
        return r, hwm_kb(pids[0]) - before, took


class TestFoldMemory(_OneChild):
    CONF = """
<Location /rh/>
    ISRBackend @RAW@/
</Location>
"""

    def test_706_10_obs_fold_is_linear(self, raw_env, raw):
        raw.set("warm", b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
        raw.set("fold", b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nX-Fold: a\r\n"
                        + b" b\r\n" * FOLDS
                        + b"Content-Length: 2\r\nConnection: close\r\n\r\nok")
        # Refusing a head over the limits (64 KiB, 256 lines) is fine; growing is not.
        isr_env.expect_log("ISR0032", "longer than 64 KiB")
        r, grew, took = self._growth(raw_env, "/rh/fold")
        assert grew < MAX_GROWTH_KB, "a %d KB head made the child grow by %d MB (%.1f s)" % (
            FOLDS * 4 // 1024, grew // 1024, took)
        assert r.status == 502, r

    def test_706_12_folds_within_the_limits_are_unfolded(self, raw_env, raw):
        raw.set("fold2", b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nX-Fold: a\r\n"
                         + (b" " + b"b" * 200 + b"\r\n") * 250
                         + b"Content-Length: 2\r\nConnection: close\r\n\r\nok")
        r = raw_env.get("/rh/fold2")
        assert r.status == 200, r
        assert r.headers.get("X-Fold") == "a" + (" " + "b" * 200) * 250, r


class TestConnectionMemory(_OneChild):
    CONF = """
<Location /rh/>
    ISRBackend @RAW@/
</Location>
"""

    def test_706_11_many_connection_headers_are_linear(self, raw_env, raw):
        raw.set("warm", b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
        raw.set("conn", b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                        + b"Connection: k\r\n" * FOLDS
                        + b"Content-Length: 2\r\n\r\nok")
        isr_env.expect_log("ISR0032", "longer than 64 KiB")
        r, grew, took = self._growth(raw_env, "/rh/conn")
        assert r.status == 502, r
        assert grew < MAX_GROWTH_KB, "a %d KB head made the child grow by %d MB (%.1f s)" % (
            FOLDS * 15 // 1024, grew // 1024, took)


# ------------------------------------------------- 4: expired "explicit freshness" stores

class TestExpiredFreshness:
    CONF = """
<Location /xf/>
    ISRBackend @ORIGIN@/
    ISRCacheTTL 60s
</Location>
<Location /xs/>
    ISRBackend @ORIGIN@/
    ISRCacheTTL 1s
    ISRStaleTTL 1h
    ISRRefreshRetry 30s
</Location>
"""

    @pytest.mark.parametrize("status,knobs", [
        (429, {"header": "Expires:0"}),
        (429, {"header": "Expires:-1"}),
        (400, {"cc": "max-age=0"}),
        (403, {"cc": "s-maxage=0"}),
        (302, {"header": ["Location:/x", "Expires:Thu, 01 Jan 1970 00:00:00 GMT"]}),
        # the only freshness is in a header Connection names: hop-by-hop, dropped before
        # storing, so the stored 400 carries none
        (400, {"cc": "max-age=60", "header": "Connection:Cache-Control"}),
    ], ids=["429-expires-0", "429-expires-minus-1", "400-max-age-0", "403-s-maxage-0",
            "302-expires-1970", "400-max-age-in-connection-named-header"])
    def test_706_20_already_expired_is_not_explicit_freshness(self, env, origin, status, knobs):
        p = "/ex%d" % status
        origin.set(p, status=status, **knobs)
        r1 = env.get("/xf" + p)
        r2 = env.get("/xf" + p)
        assert r1.status == status, r1
        assert r2.isr != "HIT", (r1, r2)
        assert origin.count(p) == 2

    def test_706_21_refresh_never_replaces_a_page_with_an_expired_error(self, env, origin):
        isr_env.expect_log(isr_env.ISR_WARN_LOG)
        r = env.get("/xs/good")
        assert (r.status, r.isr, r.body) == (200, "MISS", b"/good|v=1"), r
        time.sleep(1.3)
        origin.set("/good", status=429, header=["Expires:0", "Retry-After:60"])
        r = env.get("/xs/good")
        assert (r.status, r.isr, r.body) == (200, "STALE", b"/good|v=1"), r
        assert origin.wait_count("/good", 2, timeout=8) == 2
        time.sleep(0.5)
        for _ in range(3):
            r = env.get("/xs/good")
            assert r.status == 200 and r.body == b"/good|v=1", r


# ------------------------------------------------------ 5: statuses httpd cannot send as is

class TestUnknownStatus:
    CONF = """
<Location /us/>
    ISRBackend @ORIGIN@/
    ISRCacheTTL 60s
</Location>
"""

    @pytest.mark.parametrize("status", [218, 299, 450])
    def test_706_30_a_stored_status_goes_out_as_stored(self, env, origin, status):
        isr_env.expect_log(isr_env.ISR_WARN_LOG)   # a fix may refuse such statuses
        p = "/u%d" % status
        origin.set(p, status=status, cc="max-age=60")
        r1 = env.get("/us" + p)
        r2 = env.get("/us" + p)
        # either not stored at all, or sent with the backend's status, never as a 500
        assert r1.status != 500, r1
        assert r2.status != 500, r2


# ------------------------------------------------------- 6: ISRApply header= spoofing

class TestApplyHeaderMethods:
    FILES = {"htdocs/am/page.html": "STATIC-AM\n"}
    CONF = """
<Location /am/>
    ISRBackend @ORIGIN@/
    ISRApply header=X-Data
    ISROnError pass
    Header always set X-Got "expr=[%{req:X-Data}]"
</Location>
"""

    @pytest.mark.parametrize("method", ["POST", "PUT", "OPTIONS", "DELETE"])
    def test_706_40_client_header_never_reaches_the_handler(self, env, origin, method):
        r = env.request("/am/page.html", method=method, body=b"x=1",
                        headers={"X-Data": "forged-by-client",
                                 "Content-Type": "application/x-www-form-urlencoded"})
        assert "forged" not in r.headers.get("X-Got", ""), (method, r)


# ------------------------------------------- 7: quick handler before per-directory env

class TestQuickHandlerEnv:
    CONF = """
LoadModule setenvif_module /usr/lib/apache2/modules/mod_setenvif.so
<Location /qe/>
    ISRBackend "expr=@ORIGIN@/render?variant=%{env:VARIANT}&p=%{isr_urlencode:%{REQUEST_URI}}"
    ISRQuickHandler On
    SetEnvIf X-Variant ^b$ VARIANT=b
</Location>
"""

    def test_706_50_quick_handler_serves_the_normal_paths_entry(self, env, origin):
        a, b = {"X-Variant": "a"}, {"X-Variant": "b"}
        r = env.get("/qe/page", headers=a)
        assert (r.status, r.isr) == (200, "MISS"), r
        assert r.body.startswith(b"/render?variant=&"), r
        # the normal path asks the backend for variant=b: a b client must never get variant=
        r = env.get("/qe/page", headers=b)
        assert r.status == 200, r
        assert r.body.startswith(b"/render?variant=b&"), r
