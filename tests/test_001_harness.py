"""The harness itself: the origin's knobs and an httpd without mod_isr (runs before the module
exists, so a broken harness is not mistaken for a module bug)."""

import json
import time

import pytest


class TestOrigin:
    def test_001_01_body_encodes_key_and_version(self, origin):
        assert origin.request("/h/a?x=1") == (200, b"/h/a?x=1|v=1")
        assert origin.request("/h/a?x=1") == (200, b"/h/a?x=1|v=2")
        assert origin.request("/h/a?x=2") == (200, b"/h/a?x=2|v=1")
        assert origin.count("/h/a?x=1") == 2
        assert origin.count("/h/a") == 0
        assert origin.total() == 3

    def test_001_02_knobs(self, origin):
        origin.set("/h/k", status=404, cookie=1, cc="no-store", header=["X-A:1", "X-B: two"])
        st, body = origin.request("/h/k")
        assert (st, body) == (404, b"/h/k|v=1")
        origin.set("/h/k")
        assert origin.request("/h/k") == (200, b"/h/k|v=2")
        st, body = origin.request("/h/s?size=100")
        assert st == 200 and len(body) == 100 and body.startswith(b"/h/s?size=100|v=1")
        t0 = time.monotonic()
        assert origin.request("/h/d?delay=0.3")[0] == 200
        assert time.monotonic() - t0 >= 0.3
        assert origin.request("/h/c?chunked=1") == (200, b"/h/c?chunked=1|v=1")
        last = origin.last("/h/c?chunked=1")
        assert last["method"] == "GET"
        origin.reset()
        assert origin.count("/h/k") == 0

    def test_001_03_unix_origin(self, unix_origin):
        unix_origin.reset()
        assert unix_origin.request("/u/a") == (200, b"/u/a|v=1")
        assert unix_origin.count("/u/a") == 1


class TestHttpdPlain:
    """httpd with the harness config but without mod_isr."""
    LOAD_ISR = False
    MPM = "prefork"
    FILES = {"htdocs/static/a.txt": "STATIC-A\n"}
    CONF = 'Header set X-Got "expr=%{reqenv:HTTP_X_IN}|%{req:X-In}"\n'

    def test_001_10_serves_static(self, env):
        r = env.get("/static/a.txt", headers={"X-In": "hello"})
        assert r.status == 200, r
        assert r.body == b"STATIC-A\n"
        assert r.headers["x-got"].endswith("|hello")
        assert env.get("/nope").status == 404

    def test_001_11_children(self, env):
        pids = env.wait_children(2)
        assert len(pids) >= 2, pids
        assert env.parent_pid() not in pids

    def test_001_12_graceful(self, env):
        gen = env.generations()
        env.graceful()
        assert env.generations() == gen + 1
        assert env.get("/static/a.txt").status == 200

    def test_001_13_configtest(self, env):
        rc, out = env.configtest()
        assert rc == 0, out
        assert "Syntax OK" in out

    def test_001_14_log_check_sees_warnings(self, env):
        lines = ["[Tue Nov 25 09:00:00.000000 2025] [isr:warn] [pid 1] ISR0012: x",
                 "[Tue Nov 25 09:00:00.000000 2025] [core:notice] [pid 1] AH00052: child pid 2"
                 " exit signal Segmentation fault (11)",
                 "[Tue Nov 25 09:00:00.000000 2025] [isr:info] [pid 1] ISR0013: fine"]
        assert [env.line_is_bad(l) for l in lines] == [True, True, False]
        assert env.line_expected(lines[0], ["ISR0012"])
        assert not env.line_expected(lines[0], ["ISR0013"])
