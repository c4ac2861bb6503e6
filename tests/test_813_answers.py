"""Issue 8: cached answers as httpd answers: Range and HEAD from the entry, output filters
(mod_deflate, mod_headers, mod_substitute) still applied to cached answers, the stored Date kept,
and Cache-Status on stale answers, waiters and revalidations.
"""

import gzip
import time

import isr_env
from isr_env import cache_status, httpdate, wait_for  # noqa: F401
from isr_env import MODULES_DIR



class TestAnswers:
    CONF = """
LoadModule deflate_module %(m)s/mod_deflate.so
LoadModule filter_module %(m)s/mod_filter.so
LoadModule substitute_module %(m)s/mod_substitute.so
<Location /a/>
    ISRBackend @ORIGIN@/
    ISRCacheTTL 60s
</Location>
<Location /f/>
    ISRBackend @ORIGIN@/
    ISRCacheTTL 60s
    Header set X-Filtered yes
    AddOutputFilterByType DEFLATE text/plain
    AddOutputFilterByType SUBSTITUTE text/html
    Substitute "s/secret/public/"
</Location>
<Location /st/>
    ISRBackend @ORIGIN@/
    ISRCacheTTL 1s
    ISRStaleTTL 60s
</Location>
""" % {"m": MODULES_DIR}

    def test_813_01_range_from_the_entry(self, env, origin):
        origin.set("/rng", size=1000)
        full = env.get("/a/rng").body
        r = env.get("/a/rng", headers={"Range": "bytes=10-19"})
        assert r.status == 206, r
        assert r.body == full[10:20], r
        assert r.headers.get("Content-Range") == "bytes 10-19/1000", r
        assert r.isr == "HIT", r
        assert origin.count("/rng") == 1
        lm = origin.last("/rng")["headers"]
        assert "Range" not in lm, lm                # never sent to the origin

    def test_813_02_head_from_the_entry(self, env, origin):
        origin.set("/hd", size=500)
        env.get("/a/hd")
        r = env.head("/a/hd")
        assert (r.status, r.body, r.isr) == (200, b"", "HIT"), r
        assert r.headers.get("Content-Length") == "500", r
        assert origin.count("/hd") == 1

    def test_813_03_output_filters_apply_to_hits(self, env, origin):
        origin.set("/flt", size=4000)
        for want in ("MISS", "HIT"):
            r = env.get("/f/flt", headers={"Accept-Encoding": "gzip"})
            assert r.isr == want, r
            assert r.headers.get("X-Filtered") == "yes", r
            assert r.headers.get("Content-Encoding") == "gzip", r
            assert gzip.decompress(r.body).startswith(b"/flt|v=1"), r
        origin.set("/sub", ctype="text/html", suffix="|secret")
        for want in ("MISS", "HIT"):
            r = env.get("/f/sub")
            assert r.isr == want and r.body.endswith(b"|public"), r

    def test_813_04_stored_date_kept_age_added(self, env, origin):
        origin.set("/dt")
        first = env.get("/a/dt")
        time.sleep(1.2)
        r = env.get("/a/dt")
        assert r.isr == "HIT", r
        assert r.headers.get("Date") == first.headers.get("Date"), (first, r)
        assert int(r.headers.get("Age")) >= 1, r

    def test_813_05_cache_status_stale_and_collapsed(self, env, origin):
        origin.set("/cst")
        env.get("/st/cst")
        time.sleep(1.3)
        r = env.get("/st/cst")
        cs = cache_status(r)
        assert r.isr == "STALE" and cs.startswith("mod_isr; hit; ttl=-"), cs
        assert "detail=stale-while-revalidate" in cs, cs
        origin.set("/clp", delay=0.6)
        rs = env.concurrent_get(["/a/clp"] * 5)
        css = [cache_status(x) for x in rs]
        assert sum("collapsed" in c for c in css) >= 1, css
        assert sum("stored" in c for c in css) == 1, css
        assert all(c.startswith("mod_isr; fwd=uri-miss") for c in css), css
        assert origin.count("/clp") == 1

    def test_813_06_cache_status_revalidated(self, env, origin):
        origin.set("/rv", cc="no-cache", etag='"v"')
        env.get("/a/rv")
        r = env.get("/a/rv")
        cs = cache_status(r)
        assert cs.startswith("mod_isr; fwd=stale; fwd-status=304"), cs
        assert "stored" in cs, cs

    def test_813_07_cache_status_after_upstream_entries(self, env, origin):
        origin.set("/up", header="Cache-Status:upstream; hit")
        env.get("/a/up")
        r = env.get("/a/up")
        assert cache_status(r).startswith("upstream; hit, mod_isr; hit"), r


class TestInterim:
    CONF = """
<Location /i/>
    ISRBackend @ORIGIN@/
    ISRCacheTTL 60s
</Location>
"""

    def raw_get(self, env, path):
        import socket
        s = socket.create_connection(("127.0.0.1", env.port), timeout=10)
        try:
            s.sendall(("GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
                       % path).encode())
            data = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    return data
                data += chunk
        finally:
            s.close()

    def test_813_10_early_hints_passed_on_not_stored(self, env, origin):
        origin.set("/eh", early="</s.css>; rel=preload; as=style")
        first = self.raw_get(env, "/i/eh")
        assert first.startswith(b"HTTP/1.1 103 Early Hints\r\n"), first[:200]
        assert first.split(b"\r\n\r\n")[0].endswith(b"\r\nLink: </s.css>; rel=preload; as=style")
        assert b"\r\n\r\nHTTP/1.1 200 OK\r\n" in first, first[:400]
        assert first.endswith(b"/eh|v=1"), first[-100:]
        again = self.raw_get(env, "/i/eh")          # a hit: no interim response, no fetch
        assert again.startswith(b"HTTP/1.1 200 OK\r\n"), again[:200]
        assert again.endswith(b"/eh|v=1"), again[-100:]
        assert origin.count("/eh") == 1
