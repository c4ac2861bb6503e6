"""Review of issue 9 (compress once, commit efc59d9): attacks by a client and by a hostile or
buggy origin.

Tests whose docstring starts with ``Review (fixed):`` failed against efc59d9 (they state what should
happen) and pass since the fixes: test_905_01 (4 cases), 02, 10, 60, 70. The others pin behaviour that held and
matters.

The origin is a small scripted one in this file (a route per path: status, head, body, and
what a revalidation gets), so that it can send encoded bodies, lie, and shape its 304s.
"""

import gzip
import os
import socket
import subprocess
import threading
import time
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

import isr_env
from isr_env import wait_for

BROTLI = "/usr/bin/brotli"


def br_enc(data, q=5):
    return subprocess.run([BROTLI, "-c", "-q", str(q)], input=data, stdout=subprocess.PIPE,
                          check=True).stdout


def br_dec(data):
    p = subprocess.run([BROTLI, "-d", "-c"], input=data, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE)
    if p.returncode != 0:
        raise ValueError(p.stderr.decode(errors="replace"))
    return p.stdout


def decode(r):
    """The body as its Content-Encoding says to decode it; b"<undecodable ...>" when it is
    not what the header says."""
    ce = (r.headers.get("Content-Encoding") or "").strip().lower()
    try:
        if ce == "gzip":
            return gzip.decompress(r.body)
        if ce == "br":
            return br_dec(r.body)
    except Exception as x:  # noqa: BLE001
        return b"<undecodable as %s: %s>" % (ce.encode(), str(x)[:60].encode())
    assert ce in ("", "identity"), r
    return r.body


def html(n, seed="x"):
    """A compressible text body of n bytes."""
    line = ("<p>%s some compressible text for the review of compress once</p>\n" % seed)
    return (line * (n // len(line) + 1)).encode()[:n]


# ------------------------------------------------------------------------------ scripted origin

class Routes:
    """path (without query) -> route dict:
        status, headers [(name, value)], body bytes,
        etag: answer 304 when If-None-Match carries it,
        h304: [(name, value)] extra head of that 304,
        then: a route dict that replaces this one after the first answer."""

    def __init__(self):
        self.lock = threading.Lock()
        self.routes = {}
        self.counts = {}
        self.c304 = {}
        self.last = {}

    def set(self, path, **route):
        with self.lock:
            self.routes[path] = route
            self.counts[path] = 0
            self.c304[path] = 0

    def count(self, path):
        with self.lock:
            return self.counts.get(path, 0)

    def count304(self, path):
        with self.lock:
            return self.c304.get(path, 0)


ROUTES = Routes()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def _answer(self, head_only):
        path = self.path.split("?", 1)[0]
        with ROUTES.lock:
            route = ROUTES.routes.get(path)
            ROUTES.counts[path] = ROUTES.counts.get(path, 0) + 1
            ROUTES.last[path] = dict(self.headers.items())
            if route and route.get("then"):
                ROUTES.routes[path] = route["then"]
        if route is None:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        inm = self.headers.get("If-None-Match")
        etag = route.get("etag")
        if etag and inm and etag in [t.strip() for t in inm.split(",")]:
            with ROUTES.lock:
                ROUTES.c304[path] = ROUTES.c304.get(path, 0) + 1
            self.send_response(304)
            self.send_header("ETag", etag)
            for n, v in route.get("h304", []):
                self.send_header(n, v)
            self.end_headers()
            return
        body = route.get("body", b"")
        extra = []
        if callable(body):
            body, extra = body(dict(self.headers.items()))
        self.send_response(route.get("status", 200))
        for n, v in extra:
            self.send_header(n, v)
        if etag:
            self.send_header("ETag", etag)
        for n, v in route.get("headers", []):
            self.send_header(n, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head_only:
            self.wfile.write(body)

    def do_GET(self):
        self._answer(False)

    def do_HEAD(self):
        self._answer(True)


def _start_origin():
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return "http://127.0.0.1:%d" % srv.server_address[1]


RAW = _start_origin()


def get(env, path, ae=None, headers=None, method="GET"):
    h = dict(headers or {})
    if ae is not None:
        h["Accept-Encoding"] = ae
    return env.request(path, method=method, headers=h)


def raw_get(env, path, lines):
    """A request with the given extra header lines (repeats allowed): (status, head, body)."""
    s = socket.create_connection(("127.0.0.1", env.port), timeout=10)
    try:
        req = "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n" % path
        req += "".join("%s\r\n" % l for l in lines) + "\r\n"
        s.sendall(req.encode("latin-1"))
        data = b""
        while True:
            d = s.recv(65536)
            if not d:
                break
            data += d
    finally:
        s.close()
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    hdrs = {}
    for l in lines[1:]:
        n, _, v = l.partition(":")
        hdrs.setdefault(n.strip().lower(), []).append(v.strip())
    return status, hdrs, body


BASE = """
<Location /z/>
    ISRBackend %(raw)s/
    ISRCompress gzip br
</Location>
<Location /off/>
    ISRBackend %(raw)s/
</Location>
<Location /gz/>
    ISRBackend %(raw)s/
    ISRCompress gzip
</Location>
<Location /st/>
    ISRBackend %(raw)s/
    ISRCacheControl Strict
    ISRCompress gzip br
</Location>
<Location /small/>
    ISRBackend %(raw)s/
    ISRCompress gzip br
    ISRMaxObjectSize 64K
</Location>
""" % {"raw": RAW}


def hd(r):
    """The headers that matter here, for assertion messages."""
    keep = ("etag", "content-encoding", "content-length", "vary", "cache-control",
            "x-isr-status", "transfer-encoding")
    return "%d %s" % (r.status, {k: v for k, v in r.headers.items() if k in keep})


class TestReview:
    CONF = BASE

    # -- revalidation: what a 304 may change --------------------------------------------------

    @pytest.mark.parametrize("backend_gzip", [True, False], ids=["backend-gzip", "identity"])
    @pytest.mark.parametrize("cc", ["max-age=1", "max-age=1, must-revalidate"],
                             ids=["background", "sync"])
    def test_905_01_304_content_encoding_not_merged(self, env, backend_gzip, cc):
        """Review (fixed): a 304 that carries Content-Encoding (a backend describing the gzip bytes its
        ETag names; RFC 9110 15.4.5 lets a 304 carry metadata) is merged into the stored head
        (isr_policy_update takes every field but Content-Length), and the identity body then
        goes out labelled gzip. RFC 9111 3.2 names this very case: a cache that stores the
        decoded content must not take a new Content-Encoding from a 304. Both the background
        refresh (refresh_not_modified) and the synchronous revalidation (must-revalidate)."""
        name = "/ce304-%d-%d" % (backend_gzip, len(cc))
        ident = html(6000, name)
        ROUTES.set(name, etag='"g1"', body=gzip.compress(ident) if backend_gzip else ident,
                   headers=[("Content-Type", "text/html"), ("Cache-Control", cc)]
                   + ([("Content-Encoding", "gzip")] if backend_gzip else []),
                   h304=[("Content-Encoding", "gzip"), ("Cache-Control", "max-age=60")])
        r = get(env, "/z" + name)
        assert r.status == 200 and decode(r) == ident, hd(r)
        time.sleep(1.3)
        get(env, "/z" + name)             # stale: revalidated (304)
        assert wait_for(lambda: ROUTES.count304(name) >= 1), ROUTES.count(name)
        time.sleep(0.3)
        for ae in (None, "identity", "gzip", "br"):
            r = get(env, "/z" + name, ae=ae)
            assert r.status == 200, hd(r)
            assert decode(r) == ident, (ae, hd(r))

    def test_905_02_304_no_transform_stops_the_copies(self, env):
        """Review (fixed): a 304 that adds Cache-Control: no-transform renews the entry with its copies;
        hits keep sending the gzip/br copy of an answer that now forbids transformation
        (RFC 9110 7.7: a proxy MUST NOT change the content coding of such a response)."""
        ident = html(6000, "nt304")
        ROUTES.set("/nt304", etag='"n1"', body=ident,
                   headers=[("Content-Type", "text/html"), ("Cache-Control", "max-age=1")],
                   h304=[("Cache-Control", "max-age=60, no-transform")])
        r = get(env, "/z/nt304", ae="gzip")
        assert r.headers.get("Content-Encoding") == "gzip", hd(r)
        time.sleep(1.3)
        get(env, "/z/nt304")
        assert wait_for(lambda: ROUTES.count304("/nt304") >= 1), ROUTES.count("/nt304")
        time.sleep(0.3)
        r = get(env, "/z/nt304", ae="gzip")
        cc, ce = r.headers.get("Cache-Control", ""), r.headers.get("Content-Encoding")
        assert "no-transform" in cc, hd(r)
        assert ce is None and r.body == ident, hd(r)

    def test_905_03_304_keeps_copies_when_nothing_changes(self, env):
        """Pinned: a plain 304 keeps identity and copies (same ETags, Vary)."""
        ident = html(6000, "ok304")
        ROUTES.set("/ok304", etag='"k1"', body=ident,
                   headers=[("Content-Type", "text/html"), ("Cache-Control", "max-age=1")],
                   h304=[("Cache-Control", "max-age=60")])
        g1 = get(env, "/z/ok304", ae="gzip")
        time.sleep(1.3)
        get(env, "/z/ok304")
        assert wait_for(lambda: ROUTES.count304("/ok304") >= 1)
        time.sleep(0.3)
        g2 = get(env, "/z/ok304", ae="gzip")
        assert g2.body == g1.body and g2.headers.get("ETag") == '"k1-isr-gzip"', g2
        i = get(env, "/z/ok304")
        assert i.body == ident and "Accept-Encoding" in i.headers.get("Vary", ""), i

    # -- ETags, conditionals, Range -----------------------------------------------------------

    def test_905_10_unquoted_etag_not_shared_by_variants(self, env):
        """Review (fixed): a malformed (unquoted) ETag is sent unchanged on every variant, so identity and
        gzip bytes share one strong validator: If-None-Match/If-Range written for one coding
        match the other (a client or downstream cache splices gzip bytes into identity ones).
        The variant should get no ETag (or a distinct one)."""
        ident = html(6000, "uq")
        ROUTES.set("/uq", body=ident, headers=[("Content-Type", "text/html"), ("ETag", "abc"),
                                               ("Cache-Control", "max-age=60")])
        i = get(env, "/z/uq")
        g = get(env, "/z/uq", ae="gzip")
        assert g.headers.get("Content-Encoding") == "gzip", hd(g)
        ie, ge = i.headers.get("ETag"), g.headers.get("ETag")
        assert ie is None or ge != ie, (hd(i), hd(g))

    def test_905_11_if_range_per_variant(self, env):
        """Pinned: If-Range with the identity ETag on a gzip answer gives the whole gzip body,
        with the variant ETag the gzip bytes asked for."""
        ident = html(6000, "ir")
        ROUTES.set("/ir", etag='"r1"', body=ident,
                   headers=[("Content-Type", "text/html"), ("Cache-Control", "max-age=60")])
        full = get(env, "/z/ir", ae="gzip")
        assert full.headers.get("Content-Encoding") == "gzip", full
        r = get(env, "/z/ir", ae="gzip", headers={"Range": "bytes=0-9", "If-Range": '"r1"'})
        assert (r.status, r.body) == (200, full.body), r
        r = get(env, "/z/ir", ae="gzip", headers={"Range": "bytes=0-9",
                                                  "If-Range": '"r1-isr-gzip"'})
        assert (r.status, r.body) == (206, full.body[:10]), r
        r = get(env, "/z/ir", headers={"Range": "bytes=0-9", "If-Range": '"r1-isr-gzip"'})
        assert (r.status, r.body) == (200, ident), r

    def test_905_12_if_none_match_per_variant(self, env):
        """Pinned: 304 only for the variant's own ETag, with Vary and that ETag."""
        ident = html(6000, "inm")
        ROUTES.set("/inm", etag='W/"w1"', body=ident,
                   headers=[("Content-Type", "text/html"), ("Cache-Control", "max-age=60")])
        get(env, "/z/inm")
        r = get(env, "/z/inm", ae="br", headers={"If-None-Match": 'W/"w1-isr-br"'})
        assert r.status == 304 and r.headers.get("ETag") == 'W/"w1-isr-br"', r
        assert "Accept-Encoding" in r.headers.get("Vary", ""), r
        r = get(env, "/z/inm", ae="br", headers={"If-None-Match": '"w1"'})
        assert r.status == 200 and decode(r) == ident, r
        r = get(env, "/z/inm", headers={"If-None-Match": '"w1-isr-br", "w1-isr-gzip"'})
        assert r.status == 200 and r.body == ident, r

    def test_905_13_conditional_on_the_miss(self, env):
        """Pinned: the very first request, conditional on the variant ETag, gets 304."""
        ROUTES.set("/cm", etag='"m1"', body=html(6000, "cm"),
                   headers=[("Content-Type", "text/html"), ("Cache-Control", "max-age=60")])
        r = get(env, "/z/cm", ae="gzip", headers={"If-None-Match": '"m1-isr-gzip"'})
        assert r.status == 304 and r.headers.get("ETag") == '"m1-isr-gzip"', hd(r)

    def test_905_14_empty_stored_vary(self, env):
        """An empty Vary from the backend: the added Accept-Encoding makes a valid list."""
        ROUTES.set("/ev", body=html(6000, "ev"),
                   headers=[("Content-Type", "text/html"), ("Vary", ""),
                            ("Cache-Control", "max-age=60")])
        r = get(env, "/z/ev", ae="gzip")
        vary = [v.strip() for v in r.headers.get("Vary", "").split(",")]
        assert "Accept-Encoding" in vary, hd(r)

    # -- hostile origins ----------------------------------------------------------------------

    def test_905_20_gzip_bomb_sent_as_it_came(self, env):
        """Pinned: a gzip body decoding past ISRMaxObjectSize is kept as it came."""
        isr_env.expect_log("ISR0049")
        bomb = gzip.compress(b"\0" * (8 << 20), 9)
        assert len(bomb) < 64 * 1024
        ROUTES.set("/bomb", body=bomb, headers=[("Content-Type", "text/html"),
                                                ("Content-Encoding", "gzip"),
                                                ("Cache-Control", "max-age=60")])
        for _ in range(2):
            r = get(env, "/small/bomb", ae="gzip")
            assert r.status == 200 and r.body == bomb, hd(r)
            assert r.headers.get("Content-Encoding") == "gzip", hd(r)

    def test_905_21_brotli_bomb_sent_as_it_came(self, env):
        """Pinned: the same for br."""
        isr_env.expect_log("ISR0049")
        bomb = br_enc(b"\0" * (16 << 20), 5)
        ROUTES.set("/bbomb", body=bomb, headers=[("Content-Type", "text/html"),
                                                 ("Content-Encoding", "br"),
                                                 ("Cache-Control", "max-age=60")])
        r = get(env, "/small/bbomb", ae="br")
        assert r.status == 200 and r.body == bomb, hd(r)
        assert r.headers.get("Content-Encoding") == "br", r

    @pytest.mark.parametrize("what", ["plain", "trailing", "truncated", "zlib"])
    def test_905_22_lying_content_encoding_as_it_came(self, env, what):
        """Pinned: a body that is not the gzip its header says is sent as it came."""
        isr_env.expect_log("ISR0049")
        ident = html(3000, what)
        body = {"plain": ident, "trailing": gzip.compress(ident) + b"JUNK",
                "truncated": gzip.compress(ident)[:-9], "zlib": zlib.compress(ident)}[what]
        ROUTES.set("/lie-" + what, body=body,
                   headers=[("Content-Type", "text/html"), ("Content-Encoding", "gzip"),
                            ("Cache-Control", "max-age=60")])
        for _ in range(2):
            r = get(env, "/z/lie-" + what, ae="gzip, br")
            assert r.status == 200 and r.body == body, hd(r)
            assert r.headers.get("Content-Encoding") == "gzip", hd(r)

    def test_905_23_backend_br_decoded_gzip_made(self, env):
        """Pinned: a br body from the backend, kept for br clients; gzip made; identity decoded."""
        ident = html(6000, "bb")
        enc = br_enc(ident, 4)
        ROUTES.set("/bb", etag='"b1"', body=enc,
                   headers=[("Content-Type", "text/html; charset=UTF-8"),
                            ("Content-Encoding", "BR"), ("Cache-Control", "max-age=60")])
        r = get(env, "/z/bb", ae="br")
        assert r.body == enc and r.headers.get("ETag") == '"b1-isr-br"', hd(r)
        r = get(env, "/z/bb", ae="gzip")
        assert decode(r) == ident and r.headers.get("ETag") == '"b1-isr-gzip"', hd(r)
        r = get(env, "/z/bb")
        assert r.body == ident and r.headers.get("Content-Encoding") is None, hd(r)
        r = get(env, "/gz/bb", ae="br")
        assert r.body == ident and r.headers.get("Content-Encoding") is None, hd(r)
        assert ROUTES.count("/bb") == 1

    # -- Accept-Encoding --------------------------------------------------------------------

    @pytest.mark.parametrize("ae,want", [
        ("gzip;q=0", None), ("*;q=0", None), ("identity;q=0", None),
        ("br;q=0.5, gzip;q=0.8", "gzip"), ("gzip, br;q=1.0", "br"), ("GZIP", "gzip"),
        ("x-gzip", "gzip"), ("identity, gzip;q=0.9", None), ("gzip;q=0.5", "gzip"),
        ("br;q=0, *", "gzip"), ("*;q=0.3, gzip;q=0.2", "br"), ("gzip;q=.5", None),
        ("gzip ; q=0", None), ("deflate, compress", None), (" , ,gzip", "gzip"),
        ("br;q=0.001, gzip;q=0", "br"),
    ])
    def test_905_30_accept_encoding(self, env, ae, want):
        """Pinned: the choice per Accept-Encoding (RFC 9110 12.5.3)."""
        ident = html(6000, "ae")
        ROUTES.set("/ae", body=ident, headers=[("Content-Type", "text/html"),
                                               ("Cache-Control", "max-age=60")])
        r = get(env, "/z/ae", ae=ae)
        assert r.headers.get("Content-Encoding") == want, (ae, hd(r))
        assert decode(r) == ident

    def test_905_31_repeated_accept_encoding_lines(self, env):
        """Pinned: several Accept-Encoding lines are one list."""
        ident = html(6000, "ae2")
        ROUTES.set("/ae2", body=ident, headers=[("Content-Type", "text/html"),
                                                ("Cache-Control", "max-age=60")])
        get(env, "/z/ae2")
        st, h, body = raw_get(env, "/z/ae2", ["Accept-Encoding: br;q=0",
                                              "Accept-Encoding: gzip"])
        assert st == 200 and h.get("content-encoding") == ["gzip"], h
        st, h, body = raw_get(env, "/z/ae2", ["Accept-Encoding: gzip;q=0",
                                              "Accept-Encoding: br;q=0"])
        assert st == 200 and "content-encoding" not in h and body == ident, h

    # -- Strict -------------------------------------------------------------------------------

    def test_905_40_strict_backend_that_encodes(self, env):
        """Pinned: Strict, a backend that gzips when the forwarded Accept-Encoding allows it
        (Vary: Accept-Encoding): every variant decodes to the one identity body."""
        ident = html(6000, "strict")

        def answer(h):
            if "gzip" in h.get("Accept-Encoding", ""):
                return gzip.compress(ident), [("Content-Encoding", "gzip"), ("ETag", '"s-gz"')]
            return ident, [("ETag", '"s"')]
        ROUTES.set("/strict", body=answer,
                   headers=[("Content-Type", "text/html"), ("Vary", "Accept-Encoding"),
                            ("Cache-Control", "max-age=60")])
        for ae in ("gzip", "gzip;q=0.1, identity", "gzip, br", None, "br"):
            for _ in range(2):
                r = get(env, "/st/strict", ae=ae)
                assert r.status == 200 and decode(r) == ident, (ae, hd(r))
                assert r.headers.get("Vary", "").lower().count("accept-encoding") == 1, \
                    hd(r)
        r = get(env, "/st/strict", ae="gzip;q=0.1, identity")
        assert r.headers.get("Content-Encoding") is None, hd(r)
        r = get(env, "/st/strict", ae="gzip")
        assert r.headers.get("ETag") == '"s-gz-isr-gzip"', hd(r)

    # -- HEAD, local copies -----------------------------------------------------------------

    def test_905_50_head_per_variant(self, env):
        """Pinned: HEAD gives the head of the GET of the same Accept-Encoding."""
        ident = html(20000, "head")
        ROUTES.set("/head", etag='"h"', body=ident,
                   headers=[("Content-Type", "text/html"), ("Cache-Control", "max-age=60")])
        get(env, "/z/head")
        for ae in (None, "gzip", "br"):
            g = get(env, "/z/head", ae=ae)
            h = get(env, "/z/head", ae=ae, method="HEAD")
            assert h.body == b"" and decode(g) == ident, (ae, dict(g.headers))
            for name in ("Content-Length", "Content-Encoding", "ETag", "Vary"):
                assert h.headers.get(name) == g.headers.get(name), (ae, name)

    def test_905_51_local_copies_many_hits(self, env):
        """Pinned: an entry over ISR_LOCAL_MIN (shared per child) answers every coding."""
        ident = html(40000, "local")
        ROUTES.set("/local", body=ident,
                   headers=[("Content-Type", "text/html"), ("Cache-Control", "max-age=60")])
        first = {ae: get(env, "/z/local", ae=ae).body for ae in (None, "gzip", "br")}
        for _ in range(5):
            for ae in (None, "gzip", "br"):
                r = get(env, "/z/local", ae=ae)
                assert r.body == first[ae] and decode(r) == ident, ae
        assert ROUTES.count("/local") == 1


def _hex_text(n):
    import random
    rnd = random.Random(905)
    return "".join(rnd.choice("0123456789abcdef") for _ in range(n)).encode()


class TestTooBigForCopies:
    """A record whose copies do not fit the zone: before the review it was stored without them,
    so hits went to mod_deflate (per-hit compression, other bytes than the miss under the same
    strong ETag "t1-gzip"). Now the smaller copy is kept (or none, still keeping mod_deflate
    away), the miss answers as stored, and copy ETags are "-isr-gzip"."""
    CONF = """
LoadModule deflate_module %(m)s/mod_deflate.so
LoadModule filter_module %(m)s/mod_filter.so
ISRCacheZone tiny 1M
<Location /big/>
    ISRBackend %(raw)s/
    ISRCache tiny
    ISRCompress gzip br
    ISRMaxObjectSize 430K
    AddOutputFilterByType DEFLATE text/html
</Location>
""" % {"m": isr_env.MODULES_DIR, "raw": RAW}

    def test_905_60_copies_dropped_then_deflated_per_hit(self, env):
        """Review (fixed): the miss answers with mod_isr's gzip copy; the copies did not fit, so every
        hit is compressed again by mod_deflate, with other bytes under the same strong ETag
        (RFC 9110 8.8.3). Expected: hits send the same bytes as the miss for the same
        Accept-Encoding, and no per-hit compression (no-gzip set for an entry mod_isr
        decided on, e.g. by storing a count-0 block or keeping the smaller copy)."""
        ident = _hex_text(400 * 1024)
        ROUTES.set("/hex", etag='"t1"', body=ident,
                   headers=[("Content-Type", "text/html"), ("Cache-Control", "max-age=60")])
        miss = get(env, "/big/hex", ae="gzip")
        assert miss.status == 200 and decode(miss) == ident, dict(miss.headers)
        hit = get(env, "/big/hex", ae="gzip")
        assert hit.status == 200 and decode(hit) == ident, dict(hit.headers)
        assert ROUTES.count("/hex") == 1
        same_tag = hit.headers.get("ETag") == miss.headers.get("ETag")
        same_bytes = hit.body == miss.body
        assert same_bytes or not same_tag, (hd(miss), hd(hit))
        assert hit.headers.get("Content-Length") == miss.headers.get("Content-Length"), hd(hit)


class TestAllTypes:
    """ISRCompressTypes */* would compress images and archives that never shrink: refused at
    apache2 -t, naming the directive and the value (before the review it passed -t and then
    matched no type at all)."""
    START = False
    CONF = ""

    def test_905_70_star_slash_star(self, env):
        rc, out = env.configtest("""
<Location /all/>
    ISRBackend %(raw)s/
    ISRCompress gzip
    ISRCompressTypes */*
</Location>
""" % {"raw": RAW})
        assert rc != 0, out
        assert "ISRCompressTypes" in out and "*/*" in out, out
