"""HTTP/2 in front: the README's behaviour table holds over h2 (mod_http2, event MPM).

Cleartext h2c with prior knowledge (`Protocols h2c http/1.1`) and TLS h2 by ALPN (mod_ssl, a
self-signed certificate for 127.0.0.1). The client is Debian's curl (built with nghttp2): one
curl run with several URLs and --parallel multiplexes them as streams of one connection, which
is how a herd of h2 clients reaches a miss (one connection, many streams, one origin fetch).
Single requests over h2c use prior knowledge; the multiplexed herd over h2c starts with an
HTTP/1.1 Upgrade (curl 7.88 cannot multiplex a prior-knowledge connection).
"""

import os
import re
import shutil
import subprocess
import tempfile
import time

import pytest

import isr_env

ANY_ISR_LOG = isr_env.ISR_WARN_LOG
CURL = shutil.which("curl")
H2_MODULE = os.path.join(isr_env.MODULES_DIR, "mod_http2.so")
SSL_MODULE = os.path.join(isr_env.MODULES_DIR, "mod_ssl.so")


def _curl_has_http2():
    if not CURL:
        return False
    out = subprocess.run([CURL, "--version"], stdout=subprocess.PIPE, text=True).stdout
    return bool(re.search(r"^Features:.*\bHTTP2\b", out, re.M))


pytestmark = pytest.mark.skipif(not (_curl_has_http2() and os.path.isfile(H2_MODULE)),
                                reason="needs curl with HTTP/2 and mod_http2")

LOCATIONS = """
# These tests re-request right after a failure: without ISRErrorTTL's memory of it.
ISRErrorTTL 0
<Location /app/>
    ISRBackend @ORIGIN@/
    ISRCacheTTL 1s
    ISRStaleTTL 1h
</Location>
<Location /down/>
    ISRBackend http://127.0.0.1:1/
    ISRConnectTimeout 1s
    ISRTimeout 2s
</Location>
<Location /down503/>
    ISRBackend http://127.0.0.1:1/
    ISRConnectTimeout 1s
    ISROnError 503
</Location>
<Location /small/>
    ISRBackend @ORIGIN@/
    ISRMaxObjectSize 64K
    ISRTimeout 5s
</Location>
"""

H2C_CONF = """
LoadModule http2_module %s
Protocols h2c http/1.1
H2Direct on
""" % H2_MODULE + LOCATIONS

# curl -w: one line per transfer
WRITE_OUT = ("%{http_version} %{http_code} %{num_connects} %{time_total} "
             "%header{x-isr-status} %{filename_effective}\\n")


class H2Result:
    def __init__(self, version, status, connects, elapsed, isr, body):
        self.version, self.status, self.connects = version, status, connects
        self.elapsed, self.isr, self.body = elapsed, isr, body

    def __repr__(self):
        return "<h%s %d isr=%s %r %.3fs>" % (self.version, self.status, self.isr,
                                             self.body[:80], self.elapsed)


def curl_h2(urls, tls_ca=None, parallel=False, timeout=30, extra=()):
    """GET every URL over HTTP/2 with one curl (one connection when multiplexed);
    returns (curl exit code, [H2Result in URL order], stderr)."""
    d = tempfile.mkdtemp(prefix="isr-h2-")
    try:
        cmd = [CURL, "-sS", "--max-time", str(timeout), "-w", WRITE_OUT]
        if tls_ca:
            cmd += ["--http2", "--cacert", tls_ca]
        elif parallel:
            # h2c by Upgrade: curl 7.88 fails the second stream of a prior-knowledge
            # connection it multiplexes ("Error in the HTTP2 framing layer")
            cmd += ["--http2"]
        else:
            cmd += ["--http2-prior-knowledge"]
        if parallel:
            cmd += ["--parallel", "--parallel-max", str(len(urls))]
        cmd += list(extra)
        for i, u in enumerate(urls):
            cmd += ["-o", os.path.join(d, "%03d" % i), u]
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           timeout=timeout + 10)
        by_file = {}
        for line in p.stdout.splitlines():
            parts = line.split(" ")
            if len(parts) < 6:
                continue
            ver, code, conns, total, isr, fname = parts[0], parts[1], parts[2], parts[3], \
                parts[4], " ".join(parts[5:])
            try:
                with open(fname, "rb") as f:
                    body = f.read()
            except OSError:
                body = b""
            by_file[os.path.basename(fname)] = H2Result(ver, int(code), int(conns),
                                                        float(total), isr, body)
        res = [by_file.get("%03d" % i) for i in range(len(urls))]
        return p.returncode, res, p.stderr
    finally:
        shutil.rmtree(d, ignore_errors=True)


def one(url, **kw):
    rc, res, err = curl_h2([url], **kw)
    assert rc == 0 and res[0] is not None, (rc, err)
    assert res[0].version == "2", res[0]
    return res[0]


class _Table:
    """The behaviour table; subclasses say how to reach the server (URL, CA)."""

    def url(self, env, path):
        return env.base_url + path

    def ca(self, env):
        return None

    def get(self, env, path):
        return one(self.url(env, path), tls_ca=self.ca(env))

    def test_01_miss_then_hit(self, env, origin):
        r = self.get(env, "/app/h01")
        assert (r.status, r.isr, r.body) == (200, "MISS", b"/h01|v=1"), r
        r = self.get(env, "/app/h01")
        assert (r.status, r.isr, r.body) == (200, "HIT", b"/h01|v=1"), r
        assert origin.count("/h01") == 1

    def test_02_stale_does_not_wait_for_a_slow_origin(self, env, origin):
        assert self.get(env, "/app/h02").body == b"/h02|v=1"
        origin.set("/h02", delay=2.5)
        time.sleep(1.2)  # past the 1s TTL
        r = self.get(env, "/app/h02")
        assert (r.status, r.isr, r.body) == (200, "STALE", b"/h02|v=1"), r
        assert r.elapsed < 1.5, r          # the 2.5 s refresh runs in the background
        end = time.monotonic() + 10
        while time.monotonic() < end:
            r = self.get(env, "/app/h02")
            if r.body == b"/h02|v=2":
                break
            assert r.isr == "STALE" and r.elapsed < 1.5, r
            time.sleep(0.2)
        assert (r.isr, r.body) == ("HIT", b"/h02|v=2"), r
        assert origin.count("/h02") == 2
        origin.set("/h02")

    def test_03_miss_streams_coalesce_into_one_fetch(self, env, origin):
        origin.set("/h03", delay=1)
        rc, rs, err = curl_h2([self.url(env, "/app/h03")] * 12, tls_ca=self.ca(env),
                              parallel=True)
        assert rc == 0, err
        assert all(r is not None and r.status == 200 for r in rs), rs
        assert {r.version for r in rs} == {"2"}, rs
        # one TCP connection, 12 streams on it
        assert sum(r.connects for r in rs) == 1, rs
        assert {r.body for r in rs} == {b"/h03|v=1"}, rs
        # streams that arrived while the fetch ran waited for it (MISS); any that the server
        # only started after it landed are HITs
        assert {r.isr for r in rs} <= {"MISS", "HIT"}, rs
        assert sum(r.isr == "MISS" for r in rs) >= 2, rs
        assert max(r.elapsed for r in rs) < 4, rs
        assert origin.count("/h03") == 1
        origin.set("/h03")

    def test_04_dead_backend_gives_on_error_status(self, env, origin):
        isr_env.expect_log(ANY_ISR_LOG)
        r = self.get(env, "/down/h04")
        assert r.status == 502 and r.elapsed < 5, r
        r = self.get(env, "/down503/h04")
        assert r.status == 503, r
        assert origin.total() == 0

    def test_05_5xx_is_error_and_not_stored(self, env, origin):
        isr_env.expect_log(ANY_ISR_LOG)
        origin.set("/h05", status=500)
        r = self.get(env, "/app/h05")
        assert r.status == 502, r
        origin.set("/h05")
        r = self.get(env, "/app/h05")
        assert (r.status, r.isr, r.body) == (200, "MISS", b"/h05|v=2"), r

    def test_06_large_body_is_relayed_not_stored(self, env, origin):
        size = 300000
        rs = []
        for _ in range(2):
            r = self.get(env, "/small/h06?size=%d" % size)
            rs.append(r)
            assert r.status == 200 and r.isr == "MISS", r
            assert len(r.body) == size, r
            assert r.body.startswith(b"/h06?size=%d|v=" % size), r
            assert r.body.rstrip(b"x").endswith(b"|v=%d" % len(rs)), r
        assert origin.count("/h06?size=%d" % size) == 2

    def test_07_relay_broken_off_is_visibly_truncated(self, env, origin):
        """The origin announces 300000 bytes and closes after half: over h2 the stream must
        end in an error (RST_STREAM), never look complete."""
        isr_env.expect_log(ANY_ISR_LOG)
        rc, rs, err = curl_h2([self.url(env, "/small/h07?size=300000&truncate=1")],
                              tls_ca=self.ca(env))
        r = rs[0]
        assert rc != 0, (rc, r, err)
        assert r is None or len(r.body) < 300000, r


class TestH2c(_Table):
    MPM = "event"
    CONF = H2C_CONF

    def test_00_h2c_prior_knowledge(self, env, origin):
        r = one(env.base_url + "/app/h00")
        assert r.version == "2" and r.status == 200, r


# ---------------------------------------------------------------------------------------- TLS

class TestH2Tls(_Table):
    """h2 by ALPN over TLS: the same table (httpd's certificate is conftest's server_cert)."""

    CONF = """
LoadModule http2_module %s
LoadModule ssl_module %s
LoadModule socache_shmcb_module %s/mod_socache_shmcb.so
SSLSessionCache "shmcb:@ROOT@/run/ssl_scache(512000)"
Protocols h2 http/1.1
SSLEngine on
SSLCertificateFile "@CERT@"
SSLCertificateKeyFile "@KEY@"
""" % (H2_MODULE, SSL_MODULE, isr_env.MODULES_DIR) + LOCATIONS

    def url(self, env, path):
        return "https://127.0.0.1:%d%s" % (env.port, path)

    def ca(self, env):
        return env.tls_ca

    def test_00_alpn_h2(self, env, origin):
        r = one(self.url(env, "/app/t00"), tls_ca=env.tls_ca)
        assert r.version == "2" and r.status == 200, r
