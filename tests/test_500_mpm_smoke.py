"""The behaviour table under each MPM (event, worker, prefork)."""

import time

import pytest

import isr_env
from conftest import start_checked

CONF = """
<Location /mp/>
    ISRBackend @ORIGIN@/
    ISRCacheTTL 1s
    ISRStaleTTL 1h
</Location>
<Location /mpe/>
    ISRBackend http://127.0.0.1:1/
</Location>
"""


@pytest.mark.parametrize("mpm", ["event", "worker", "prefork"])
def test_500_01_behaviour_table(env_factory, origin, mpm):
    isr_env.expect_log(isr_env.ISR_WARN_LOG)  # the failing fetch in the last step
    e = env_factory("smoke-" + mpm, mpm=mpm, conf=CONF)
    start_checked(e)
    assert len(e.wait_children(2)) >= 2
    r = e.get("/mp/a")
    assert (r.status, r.isr, r.body) == (200, "MISS", b"/a|v=1"), r
    r = e.get("/mp/a")
    assert (r.status, r.isr, r.body) == (200, "HIT", b"/a|v=1"), r
    assert "Age" in r.headers, r
    # herd on a cold key
    origin.set("/h", delay=0.5)
    rs = e.concurrent_get(["/mp/h"] * 12)
    assert {(r.status, r.body) for r in rs} == {(200, b"/h|v=1")}, [str(r) for r in rs]
    assert origin.count("/h") == 1
    # stale, one refresh, then HIT with the new version
    time.sleep(1.2)
    r = e.get("/mp/a")
    assert (r.status, r.isr, r.body) == (200, "STALE", b"/a|v=1"), r
    r = e.wait_status("/mp/a", lambda x: x.body == b"/a|v=2", deadline=5)
    assert (r.isr, r.body) == ("HIT", b"/a|v=2"), r
    assert origin.count("/a") == 2
    # failing synchronous fetch
    r = e.get("/mpe/x")
    assert r.status == 502, r
    e.stop()
