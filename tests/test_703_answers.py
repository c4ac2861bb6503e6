"""Issue 7, findings 8-12: what mod_isr does with the request it passes on and with the
backend's answer.

8.  ISRApply header=NAME with ISROnError pass: the client's own NAME never reaches the handler.
9.  ISRMaxObjectSize above half the zone warns at startup; such bodies are relayed as they
    arrive and not stored.
10. The backend head is parsed as RFC 9112 says: obs-fold unfolded, Connection-named headers
    removed only after the private/Set-Cookie check, trailers never become headers, bare CR /
    spaces in names / control bytes / conflicting Content-Lengths are a 502 and nothing stored.
11. No Content-Type from the backend means none to the client (mod_mime never types the
    internal name).
12. ISRRelayTimeout bounds a relayed body in total.
"""

import http.client
import time

import pytest

import isr_env
from origin import b64


def padded(key, v, size):
    head = ("%s|v=%d" % (key, v)).encode()
    return head + b"x" * (size - len(head))


class TestApplyHeaderPass:
    FILES = {"htdocs/ad/page.html": "STATIC-AD\n"}
    CONF = """
<Location /ad/>
    ISRBackend http://127.0.0.1:1/
    ISRConnectTimeout 1s
    ISRApply header=X-Data
    ISROnError pass
    Header set X-Got "expr=[%{req:X-Data}]"
</Location>
"""

    def test_703_01_client_header_never_reaches_the_handler(self, env, origin):
        isr_env.expect_log(isr_env.ISR_WARN_LOG)
        r = env.get("/ad/page.html", headers={"X-Data": "forged-by-client"})
        assert (r.status, r.body) == (200, b"STATIC-AD\n"), r
        assert "forged" not in r.headers.get("X-Got", ""), r
        assert r.headers.get("X-Got") == "[]", r
        r = env.get("/ad/page.html", headers={"x-data": "forged-lower-case"})
        assert (r.status, r.body) == (200, b"STATIC-AD\n"), r
        assert "forged" not in r.headers.get("X-Got", ""), r


class TestMaxObjectAboveZone:
    EXPECT_LOG_START = [r"ISR\d{4}: .*ISRMaxObjectSize"]
    CONF = """
ISRCacheZone z 4M
<Location /mz/>
    ISRBackend @ORIGIN@/
    ISRCache z
    ISRMaxObjectSize 3M
</Location>
"""

    def test_703_10_warning_at_startup(self, env, origin):
        logged = [l for l in env.log_lines(0)
                  if isr_env.ISR_TAG.search(l) and "ISRMaxObjectSize" in l]
        rc, out = env.configtest()
        assert rc == 0, out
        checked = [l for l in out.splitlines()
                   if isr_env.ISR_TAG.search(l) and "ISRMaxObjectSize" in l]
        assert logged or checked, "no tagged warning naming ISRMaxObjectSize:\n%s\n%s" % (
            out, env.log_dump())

    def test_703_11_body_that_cannot_be_stored_is_relayed_and_not_stored(self, env, origin):
        size = 2500000
        origin.set("/big", size=size, trickle=4)
        c = http.client.HTTPConnection("127.0.0.1", env.port, timeout=30)
        t0 = time.monotonic()
        c.request("GET", "/mz/big")
        r = c.getresponse()
        first = r.read(1000)
        t_first = time.monotonic() - t0
        rest = r.read()
        t_all = time.monotonic() - t0
        c.close()
        body = first + rest
        assert r.status == 200, r.status
        assert len(body) == size and body == padded("/big", 1, size), len(body)
        # the origin takes about 4 s; the first bytes must not wait for the last ones
        assert t_first < t_all - 1.5, (t_first, t_all)
        origin.set("/big", size=size)
        r2 = env.get("/mz/big", timeout=30)
        assert r2.status == 200 and r2.isr != "HIT", r2.isr
        assert r2.body == padded("/big", 2, size), len(r2.body)
        assert origin.count("/big") == 2


BAD_HEADS = [
    ("bare-cr", b"X-Bad: one\rtwo\r\n"),
    ("space-in-name", b"X Bad: value\r\n"),
    ("control-byte", b"X-Bad: a\x01b\r\n"),
    ("conflicting-content-length", b"Content-Length: 3\r\n"),
]


class TestBackendHead:
    CONF = """
# These tests re-request right after a failure: without ISRErrorTTL's memory of it.
ISRErrorTTL 0
AddEncoding gzip .gz
<Location /hp/>
    ISRBackend @ORIGIN@/
</Location>
"""

    def _not_stored(self, env, path):
        r1 = env.get("/hp" + path)
        r2 = env.get("/hp" + path)
        for v, r in ((1, r1), (2, r2)):
            assert r.status == 200, r
            assert r.body == ("%s|v=%d" % (path, v)).encode(), r
            assert r.isr != "HIT", r
        return r1

    def test_703_20_obs_fold_is_unfolded(self, env, origin):
        origin.set("/fold", rawhdr=b64(b"Cache-Control: public,\r\n private\r\n"))
        r = self._not_stored(env, "/fold")
        assert "private" in r.headers.get("Cache-Control", ""), r
        assert origin.count("/fold") == 2

    def test_703_21_connection_named_cache_control_still_counts(self, env, origin):
        origin.set("/conn", header=["Connection:Cache-Control", "Cache-Control:private"])
        self._not_stored(env, "/conn")
        assert origin.count("/conn") == 2

    def test_703_22_set_cookie_trailer_never_reaches_a_client(self, env, origin):
        origin.set("/trl", header="Trailer:Set-Cookie",
                   trailer=b64(b"Set-Cookie: trailer=secret; Path=/\r\n"))
        for _ in range(2):
            r = env.get("/hp/trl")
            assert (r.status, r.body) == (200, b"/trl|v=1"), r
            assert "Set-Cookie" not in r.headers, r

    def test_703_23_set_cookie_trailer_of_empty_chunked_body(self, env, origin):
        origin.set("/trl0", empty=1, header="Trailer:Set-Cookie",
                   trailer=b64(b"Set-Cookie: trailer=secret; Path=/\r\n"))
        for _ in range(2):
            r = env.get("/hp/trl0")
            assert (r.status, r.body) == (200, b""), r
            assert "Set-Cookie" not in r.headers, r
            assert "secret" not in str(r.headers), r

    @pytest.mark.parametrize("name,raw", BAD_HEADS, ids=[b[0] for b in BAD_HEADS])
    def test_703_24_malformed_head_is_502_and_not_stored(self, env, origin, name, raw):
        isr_env.expect_log(isr_env.ISR_WARN_LOG)
        p = "/mal-" + name
        origin.set(p, rawhdr=b64(raw), close=1)
        for n in (1, 2):
            r = env.get("/hp" + p)
            assert r.status == 502, r
            assert origin.count(p) == n
        # once the backend is sane again: a normal miss, then a hit (never a 500)
        origin.set(p)
        r = env.get("/hp" + p)
        assert (r.status, r.isr, r.body) == (200, "MISS", ("%s|v=3" % p).encode()), r
        r = env.get("/hp" + p)
        assert (r.status, r.isr, r.body) == (200, "HIT", ("%s|v=3" % p).encode()), r

    @pytest.mark.parametrize("path", ["/data;.html", "/x.gz", "/page.html"])
    def test_703_30_no_content_type_stays_none(self, env, origin, path):
        origin.set(path, ctype="none")
        for want in ("MISS", "HIT"):
            r = env.get("/hp" + path)
            assert (r.status, r.isr, r.body) == (200, want, ("%s|v=1" % path).encode()), r
            assert "Content-Type" not in r.headers, r
            assert "Content-Encoding" not in r.headers, r

    def test_703_31_backend_content_type_kept_no_encoding_invented(self, env, origin):
        origin.set("/y.gz", ctype="text/plain; charset=utf-8")
        for want in ("MISS", "HIT"):
            r = env.get("/hp/y.gz")
            assert (r.status, r.isr) == (200, want), r
            assert r.headers.get("Content-Type") == "text/plain; charset=utf-8", r
            assert "Content-Encoding" not in r.headers, r


class TestRelayTimeout:
    CONF = """
<Location /rt/>
    ISRBackend @ORIGIN@/
    ISRMaxObjectSize 8K
    ISRTimeout 3s
    ISRRelayTimeout 4s
</Location>
"""

    def test_703_40_relay_is_bounded_in_total(self, env, origin):
        isr_env.expect_log(isr_env.ISR_WARN_LOG)
        size = 100000
        # 20 parts, one every 1.5 s over 30 s: never a stall of ISRTimeout
        origin.set("/drip", size=size, trickle=30, parts=20)
        mark = env.log_mark()
        c = http.client.HTTPConnection("127.0.0.1", env.port, timeout=40)
        t0 = time.monotonic()
        got, complete = b"", False
        try:
            c.request("GET", "/rt/drip")
            r = c.getresponse()
            assert r.status == 200, r.status
            while True:
                part = r.read(4096)
                if not part:
                    complete = True
                    break
                got += part
        except (http.client.IncompleteRead, OSError, http.client.HTTPException):
            pass
        finally:
            elapsed = time.monotonic() - t0
            c.close()
        assert elapsed < 4 + 8, elapsed
        assert len(got) < size, "the whole body arrived (%.1fs)" % elapsed
        assert not complete, "the cut-off body looked complete (%d bytes)" % len(got)
        assert got.startswith(b"/drip|v=1"), got[:50]
        assert env.wait_log(r"ISR\d{4}: ", since=mark, deadline=10), env.log_dump(mark)
