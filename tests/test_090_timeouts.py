"""ISRTimeout (total, also for waiters) and ISRConnectTimeout."""

import socket
import time

import pytest

import isr_env

ANY_ISR_LOG = isr_env.ISR_WARN_LOG


@pytest.fixture()
def blackhole():
    """A loopback port whose accept queue is full: SYNs are dropped, connect() hangs."""
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.bind(("127.0.0.1", 0))
    srv.listen(0)
    port = srv.getsockname()[1]
    fillers = []
    for _ in range(4):
        c = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        c.setblocking(False)
        try:
            c.connect(("127.0.0.1", port))
        except BlockingIOError:
            pass
        fillers.append(c)
    time.sleep(0.2)
    probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    probe.settimeout(0.7)
    try:
        probe.connect(("127.0.0.1", port))
        hangs = False
    except (socket.timeout, OSError):
        hangs = True
    finally:
        probe.close()
    if not hangs:
        pytest.skip("cannot make a connect() hang on this kernel")
    yield port
    for c in fillers:
        c.close()
    srv.close()


class TestTimeout:
    CONF = """
<Location /to/>
    ISRBackend @ORIGIN@/
    ISRTimeout 1s
</Location>
"""

    def test_090_01_slow_origin_times_out(self, env, origin):
        isr_env.expect_log(ANY_ISR_LOG)
        origin.set("/slow", delay=4)
        r = env.get("/to/slow")
        assert r.status == 502, r
        assert 0.8 <= r.elapsed < 3.0, r

    def test_090_02_waiters_wait_at_most_the_timeout(self, env, origin):
        isr_env.expect_log(ANY_ISR_LOG)
        origin.set("/slow2", delay=4)
        rs = env.concurrent_get(["/to/slow2"] * 6)
        assert all(r.status == 502 for r in rs), [str(r) for r in rs]
        assert max(r.elapsed for r in rs) < 3.5, [str(r) for r in rs]
        assert origin.count("/slow2") == 1

    def test_090_03_timeout_covers_the_body(self, env, origin):
        # headers at once, body trickling over 3s: the total timeout (1s) still applies
        isr_env.expect_log(ANY_ISR_LOG)
        origin.set("/trickle", trickle=3, size=20000)
        r = env.get("/to/trickle")
        assert r.status == 502, r
        assert r.elapsed < 2.5, r

    def test_090_04_fast_enough_is_stored(self, env, origin):
        origin.set("/ok", delay=0.3)
        r = env.get("/to/ok")
        assert (r.status, r.isr, r.body) == (200, "MISS", b"/ok|v=1"), r


def test_090_10_connect_timeout(env_factory, origin, blackhole):
    isr_env.expect_log(ANY_ISR_LOG)
    from conftest import start_checked
    e = env_factory("ctimeout", conf="""
<Location /cto/>
    ISRBackend http://127.0.0.1:%d/
    ISRConnectTimeout 1s
    ISRTimeout 20s
</Location>
""" % blackhole)
    start_checked(e)
    r = e.get("/cto/x", timeout=25)
    assert r.status == 502, r
    assert 0.8 <= r.elapsed < 5.0, r
    e.stop()
