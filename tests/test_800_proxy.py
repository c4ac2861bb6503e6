"""README "Reverse proxy for other methods": every method but GET/HEAD goes to the backend URL a
GET would use, with the body and the answer streamed, never stored; a non-error answer to an
unsafe method invalidates the stored entries of the URI and of same-origin Location /
Content-Location (RFC 9111 4.4)."""

import hashlib
import http.client
import socket
import time

import pytest

import isr_env

MIB = 1024 * 1024


def blob(n, seed=b"isr"):
    """n pseudo-random-looking bytes (not compressible, not all one byte)."""
    out = bytearray()
    block = hashlib.sha256(seed).digest()
    while len(out) < n:
        block = hashlib.sha256(block).digest()
        out.extend(block * 64)
    return bytes(out[:n])


def sha(data):
    return hashlib.sha256(data).hexdigest()


def raw_connect(env, timeout=30):
    s = socket.create_connection(("127.0.0.1", env.port), timeout=timeout)
    return s


def read_response(s):
    """Read a whole HTTP/1.1 response from a raw socket (the request asked Connection: close)."""
    data = b""
    while True:
        part = s.recv(65536)
        if not part:
            break
        data += part
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = isr_env.CIDict(tuple(l.split(": ", 1)) for l in lines[1:] if ": " in l)
    return status, headers, body


def wait_for(cond, deadline=20.0, interval=0.05):
    end = time.monotonic() + deadline
    while True:
        v = cond()
        if v or time.monotonic() >= end:
            return v
        time.sleep(interval)


class TestProxy:
    CONF = """
LimitRequestFields 1000
<Location /p/>
    ISRBackend @ORIGIN@/
    ISRCacheTTL 60s
    ISRTimeout 5s
</Location>
<Location /ps/>
    ISRBackend @ORIGIN@/
    ISRCacheTTL 1s
    ISRStaleTTL 1h
    ISRTimeout 10s
</Location>
<Location /other/>
    # another backend
    ISRBackend "unix:@UNIX@|http://localhost/"
</Location>
<Location /lim/>
    ISRBackend @ORIGIN@/
    LimitRequestBody 1000
</Location>
<Location /dead/>
    ISRBackend http://127.0.0.1:1/
    ISRConnectTimeout 1s
</Location>
<Location /slow/>
    ISRBackend @ORIGIN@/
    ISRTimeout 1s
</Location>
<Location /ctl/>
    ISRBackend @ORIGIN@/
    # another module puts a CR LF into a request header: never onto the backend's wire
    RequestHeader set X-Ctl "expr=%{unescape:a%0d%0aX-Injected: 1}"
</Location>
"""

    # ------------------------------------------------------------------ bodies, both ways

    def test_800_01_large_body_streamed_to_the_origin(self, env, origin):
        data = blob(10 * MIB)
        half = len(data) // 2
        s = raw_connect(env, timeout=60)
        try:
            s.sendall(b"POST /p/up HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nConnection: close\r\n"
                      b"Content-Type: application/octet-stream\r\n"
                      b"Content-Length: %d\r\n\r\n" % (env.port, len(data)))
            s.sendall(data[:half])
            # the origin is receiving before the client has sent the second half
            got = wait_for(lambda: int(origin._get("/__received?path=/up")[1]), deadline=30)
            assert 0 < got <= half, got
            s.sendall(data[half:])
            status, headers, body = read_response(s)
        finally:
            s.close()
        assert status == 200, (status, headers, body[:200])
        assert headers.get("X-ISR-Status") == "PROXY", headers
        rec = origin.last("/up")
        assert rec["method"] == "POST", rec
        assert (rec["body_len"], rec["body_sha256"]) == (len(data), sha(data)), rec
        assert rec["headers"].get("Content-Length") == str(len(data)), rec["headers"]

    def test_800_02_chunked_body_forwarded_chunked(self, env, origin):
        data = blob(10 * MIB, b"chunked")

        def gen():
            for i in range(0, len(data), 256 * 1024):
                yield data[i:i + 256 * 1024]

        c = http.client.HTTPConnection("127.0.0.1", env.port, timeout=60)
        try:
            c.request("PUT", "/p/upc", body=gen(), encode_chunked=True,
                      headers={"Transfer-Encoding": "chunked", "Connection": "close"})
            r = c.getresponse()
            body = r.read()
        finally:
            c.close()
        assert r.status == 200, (r.status, body[:200])
        rec = origin.last("/upc")
        assert rec["method"] == "PUT", rec
        assert (rec["body_len"], rec["body_sha256"]) == (len(data), sha(data)), rec
        assert rec["chunked"], rec["headers"]

    def test_800_03_expect_100_continue(self, env, origin):
        data = b"q=1&r=2"
        s = raw_connect(env)
        try:
            s.sendall(b"POST /p/exp HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
                      b"Expect: 100-continue\r\nContent-Length: %d\r\n\r\n" % len(data))
            first = s.recv(1024)
            assert first.startswith(b"HTTP/1.1 100"), first
            s.sendall(data)
            status, headers, body = read_response(s)
        finally:
            s.close()
        assert status == 200, (status, body)
        rec = origin.last("/exp")
        assert rec["body"] == data.decode(), rec
        assert "expect" not in {k.lower() for k in rec["headers"]}, rec["headers"]

    def test_800_04_answer_streamed_to_the_client(self, env, origin):
        size = 400000
        origin.set("/drip", size=size, trickle=4, parts=4)
        c = http.client.HTTPConnection("127.0.0.1", env.port, timeout=30)
        t0 = time.monotonic()
        c.request("POST", "/p/drip", body=b"x=1", headers={"Content-Type": "text/plain"})
        r = c.getresponse()
        first = r.read(1000)
        t_first = time.monotonic() - t0
        rest = r.read()
        t_all = time.monotonic() - t0
        c.close()
        assert r.status == 200, r.status
        assert len(first + rest) == size and first.startswith(b"/drip|v=1"), len(first + rest)
        # the origin takes about 4 s: the first bytes do not wait for the last ones
        assert t_first < t_all - 1.5, (t_first, t_all)

    @pytest.mark.parametrize("method,status", [("PUT", 201), ("DELETE", 204), ("PATCH", 200),
                                               ("OPTIONS", 200), ("FROBNICATE", 207)])
    def test_800_05_methods_reach_the_origin(self, env, origin, method, status):
        path = "/m-" + method.lower()
        data = ("%s body" % method).encode()
        r = env.request("/p%s?status=%d" % (path, status), method=method, body=data,
                        headers={"Content-Type": "text/plain"})
        assert r.status == status, r
        assert r.isr == "PROXY", r
        if status != 204:
            assert r.body == ("%s?status=%d|v=1" % (path, status)).encode(), r
        rec = origin.last(path)
        assert rec["method"] == method, rec
        assert (rec["body"], rec["body_sha256"]) == (data.decode(), sha(data)), rec

    def test_800_06_request_without_body(self, env, origin):
        r = env.request("/p/nobody", method="DELETE")
        assert (r.status, r.isr) == (200, "PROXY"), r
        rec = origin.last("/nobody")
        assert rec["method"] == "DELETE" and rec["body_len"] == 0, rec
        names = {k.lower() for k in rec["headers"]}
        assert "content-length" not in names and "transfer-encoding" not in names, names

    def test_800_07_error_status_relayed(self, env, origin):
        r = env.request("/p/e503?status=503", method="POST", body=b"x")
        assert (r.status, r.isr) == (503, "PROXY"), r
        assert r.body == b"/e503?status=503|v=1", r

    # ------------------------------------------------------------------ headers

    def test_800_10_end_to_end_headers_forwarded_hop_by_hop_not(self, env, origin):
        r = env.request("/p/hdr", method="POST", body=b"a=1", headers={
            "Connection": "close, X-Hop",
            "X-Hop": "secret-hop",
            "Keep-Alive": "timeout=5",
            "TE": "trailers",
            "Proxy-Authorization": "Basic cHJveHk6cHc=",
            "Proxy-Connection": "keep-alive",
            "Cookie": "session=abc",
            "Authorization": "Bearer token-1",
            "X-Forwarded-Host": "evil.example",
            "X-Forwarded-For": "6.6.6.6",
            "X-Forwarded-Proto": "gopher",
            "Forwarded": "for=6.6.6.6;host=evil.example",
            "X-Custom": "kept",
            "Content-Type": "text/plain",
        })
        assert r.status == 200, r
        h = {k.lower(): v for k, v in origin.last("/hdr")["headers"].items()}
        for gone in ("x-hop", "keep-alive", "te", "proxy-authorization", "proxy-connection",
                     "forwarded"):
            assert gone not in h, (gone, h)
        assert h.get("connection", "").lower() in ("", "keep-alive", "close"), h
        assert h["cookie"] == "session=abc", h
        assert h["authorization"] == "Bearer token-1", h
        assert h["x-custom"] == "kept", h
        assert h["content-type"] == "text/plain", h
        assert h["x-forwarded-host"] == "127.0.0.1:%d" % env.port, h
        assert h["x-forwarded-for"] == "127.0.0.1", h
        assert h["x-forwarded-proto"] == "http", h
        assert h["host"] == origin.hostport, h
        assert "expect" not in h, h

    def test_800_11_set_cookie_relayed(self, env, origin):
        origin.set("/ck", cookie=1, header="X-Answer:yes")
        r = env.request("/p/ck", method="POST", body=b"x")
        assert r.status == 200, r
        assert r.headers.get("Set-Cookie", "").startswith("isr_test=1"), r
        assert r.headers.get("X-Answer") == "yes", r

    def test_800_12_too_many_headers_431(self, env, origin):
        headers = {"X-Many-%03d" % i: "v" for i in range(300)}
        r = env.request("/p/many", method="POST", body=b"x", headers=headers)
        assert r.status == 431, r
        assert origin.count("/many") == 0

    def test_800_13_control_bytes_in_a_header_refused(self, env, origin):
        r = env.request("/ctl/inject", method="POST", body=b"x")
        assert r.status == 400, r
        assert origin.count("/inject") == 0
        r = env.get("/ctl/inject-get")
        assert r.status == 200, r  # the cache path never forwards X-Ctl at all

    # ------------------------------------------------------------------ never stored

    def test_800_20_answer_to_post_never_stored(self, env, origin):
        origin.set("/ns", cc="max-age=600")
        for n in (1, 2):
            r = env.request("/p/ns", method="POST", body=b"x")
            assert (r.status, r.isr) == (200, "PROXY"), r
            assert r.body == ("/ns|v=%d" % n).encode(), r
        assert origin.count("/ns") == 2
        r = env.get("/p/ns")
        assert (r.status, r.isr, r.body) == (200, "MISS", b"/ns|v=3"), r

    # ------------------------------------------------------------------ invalidation

    def _cached(self, env, origin, path, prefix="/p"):
        r = env.get(prefix + path)
        assert (r.status, r.isr) == (200, "MISS"), r
        r = env.get(prefix + path)
        assert (r.status, r.isr) == (200, "HIT"), r
        return origin.count(path)

    def test_800_30_post_2xx_invalidates(self, env, origin):
        n = self._cached(env, origin, "/inv")
        r = env.request("/p/inv", method="POST", body=b"x")
        assert r.status == 200, r
        r = env.get("/p/inv")
        assert (r.status, r.isr, r.body) == (200, "MISS", b"/inv|v=%d" % (n + 2)), r
        r = env.get("/p/inv")
        assert r.isr == "HIT", r

    @pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH", "FROBNICATE"])
    def test_800_31_unsafe_methods_invalidate(self, env, origin, method):
        path = "/inv-" + method.lower()
        self._cached(env, origin, path)
        r = env.request("/p" + path, method=method, body=b"x")
        assert r.status == 200, r
        assert env.get("/p" + path).isr == "MISS"

    def test_800_32_options_does_not_invalidate(self, env, origin):
        self._cached(env, origin, "/inv-opt")
        r = env.request("/p/inv-opt", method="OPTIONS")
        assert r.status == 200, r
        assert env.get("/p/inv-opt").isr == "HIT"

    @pytest.mark.parametrize("status", [400, 404, 500, 503])
    def test_800_33_error_answer_does_not_invalidate(self, env, origin, status):
        path = "/inv-err%d" % status
        n = self._cached(env, origin, path)
        origin.set(path, status=status)
        r = env.request("/p" + path, method="POST", body=b"x")
        assert r.status == status, r
        origin.set(path)
        r = env.get("/p" + path)
        assert (r.isr, r.body) == ("HIT", ("%s|v=%d" % (path, n)).encode()), r

    def test_800_34_redirect_answer_invalidates(self, env, origin):
        self._cached(env, origin, "/inv303")
        origin.set("/inv303", status=303, header="Location:/p/inv303")
        r = env.request("/p/inv303", method="POST", body=b"x")
        assert r.status == 303, r
        origin.set("/inv303")
        assert env.get("/p/inv303").isr == "MISS"

    def test_800_35_location_and_content_location(self, env, origin):
        port = env.port
        same = ["/loc-a", "/loc-b", "/loc-c", "/loc-d"]
        for p in same:
            self._cached(env, origin, p)
        cross = ["/loc-x", "/loc-y", "/loc-z"]
        for p in cross:
            self._cached(env, origin, p)
        self._cached(env, origin, "/loc-o", prefix="/other")
        # at most four are looked at: two requests
        origin.set("/coll", status=201, header=[
            "Location:/p/loc-a",
            "Content-Location:http://127.0.0.1:%d/p/loc-b" % port,
            "Location:http://other.example:%d/p/loc-x" % port,
            "Content-Location:https://127.0.0.1:%d/p/loc-y" % port])
        r = env.request("/p/coll", method="POST", body=b"x")
        assert r.status == 201, r
        origin.set("/coll", status=201, header=[
            "Location:loc-c",
            "Content-Location://127.0.0.1:%d/p/loc-d" % port,
            "Location:http://127.0.0.1:%d/p/loc-z" % (port + 1),
            "Content-Location:/other/loc-o"])
        r = env.request("/p/coll", method="POST", body=b"x")
        assert r.status == 201, r
        for p in same:
            assert env.get("/p" + p).isr == "MISS", p
        for p in cross:
            assert env.get("/p" + p).isr == "HIT", p
        # another location's backend is not this backend's to invalidate
        assert env.get("/other/loc-o").isr == "HIT"

    def test_800_36_refresh_in_flight_cannot_undo_invalidation(self, env, origin):
        path = "/race"
        r = env.get("/ps" + path)
        assert (r.isr, r.body) == ("MISS", b"/race|v=1"), r
        time.sleep(1.2)  # past ISRCacheTTL 1s: stale
        origin.set(path, delay=2)
        r = env.get("/ps" + path)
        assert (r.isr, r.body) == ("STALE", b"/race|v=1"), r
        # the refresh (v=2) asked the origin before the POST changed anything
        assert origin.wait_count(path, 2, timeout=5) >= 2
        origin.set(path)
        r = env.request("/ps" + path, method="POST", body=b"x", timeout=30)
        assert (r.status, r.body) == (200, b"/race|v=3"), r
        r = env.get("/ps" + path)
        assert (r.isr, r.body) == ("MISS", b"/race|v=4"), r

    # ------------------------------------------------------------------ failures

    def test_800_40_backend_down_502(self, env, origin):
        isr_env.expect_log("ISR0042")
        mark = env.log_mark()
        r = env.request("/dead/x", method="POST", body=b"x=1")
        assert r.status == 502, r
        assert env.wait_log(r"ISR0042: POST /dead/x", since=mark), env.log_dump(mark)

    def test_800_41_backend_timeout_504(self, env, origin):
        isr_env.expect_log("ISR0042")
        origin.set("/late", delay=3)
        r = env.request("/slow/late", method="PUT", body=b"x=1", timeout=20)
        assert r.status == 504, r
        origin.set("/late")

    def test_800_42_limit_request_body_413(self, env, origin):
        r = env.request("/lim/big", method="POST", body=b"x" * 2000)
        assert r.status == 413, r

        def gen():
            for _ in range(10):
                yield b"y" * 500

        c = http.client.HTTPConnection("127.0.0.1", env.port, timeout=20)
        try:
            c.request("POST", "/lim/bigc", body=gen(), encode_chunked=True,
                      headers={"Transfer-Encoding": "chunked"})
            r = c.getresponse()
            r.read()
            assert r.status == 413, r.status
        except (ConnectionResetError, BrokenPipeError):
            pass  # httpd may close before the client has sent everything
        finally:
            c.close()
        r = env.request("/lim/ok", method="POST", body=b"x" * 500)
        assert r.status == 200, r

    def test_800_43_client_abort_mid_upload(self, env, origin):
        s = raw_connect(env)
        s.sendall(b"POST /p/abort HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                  b"Content-Length: %d\r\n\r\n" % (4 * MIB))
        s.sendall(b"z" * (256 * 1024))
        assert wait_for(lambda: int(origin._get("/__received?path=/abort")[1]) > 0)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        s.close()
        # the backend transfer is aborted, not left hanging
        aborted = wait_for(lambda: [h for h in origin.history("__aborted__")
                                    if h["path"] == "/abort"], deadline=20)
        assert aborted and aborted[0]["body_len"] < 4 * MIB, aborted
        for i in range(5):
            r = env.request("/p/after-abort", method="POST", body=b"x")
            assert r.status == 200, r
        assert env.get("/p/after-abort-get").status == 200

    # ------------------------------------------------------------------ unchanged

    def test_800_50_get_and_head_still_cached(self, env, origin):
        r = env.head("/p/gh")
        assert (r.status, r.isr) == (200, "MISS"), r
        assert origin.last("/gh")["method"] == "GET"
        r = env.get("/p/gh")
        assert (r.status, r.isr, r.body) == (200, "HIT", b"/gh|v=1"), r
        r = env.head("/p/gh")
        assert (r.status, r.isr) == (200, "HIT"), r

    def test_800_51_trace_stays_httpds(self, env, origin):
        r = env.request("/p/tr", method="TRACE")
        assert r.isr != "PROXY", r
        assert origin.count("/tr") == 0


class TestProxyApplyEnv:
    """ISRApply env=: the normal handler answers other methods (nothing proxied)."""
    FILES = {"htdocs/ae/page.txt": "STATIC\n"}
    CONF = """
<Location /ae/>
    ISRBackend @ORIGIN@/
    ISRApply env=ISR_DATA
</Location>
"""

    def test_800_60_not_proxied(self, env, origin):
        r = env.request("/ae/page.txt", method="POST", body=b"x")
        assert r.isr != "PROXY", r
        assert origin.count("/page.txt") == 0
