"""Cross-process single flight on a cold key: one origin fetch for a herd, everyone gets it."""

import re

import isr_env


def pids_serving(env, path):
    pids = set()
    for line in env.access_lines():
        m = re.match(r"\S+ (\d+) \d+ \"GET %s " % re.escape(path), line)
        if m:
            pids.add(int(m.group(1)))
    return pids


class TestSingleFlightPrefork:
    MPM = "prefork"
    MPM_CONF = {"StartServers": 10, "MinSpareServers": 10, "MaxSpareServers": 20}
    CONF = """
<Location /sf/>
    ISRBackend @ORIGIN@/
    ISRTimeout 10s
</Location>
"""

    def test_400_01_children(self, env):
        pids = env.wait_children(2)
        assert len(pids) >= 2, pids

    def test_400_02_herd_of_40_one_fetch(self, env, origin):
        assert len(env.wait_children(10)) >= 2
        origin.set("/cold", delay=1)
        rs = env.concurrent_get(["/sf/cold"] * 40, timeout=20)
        assert all(r is not None and r.status == 200 for r in rs), [str(r) for r in rs]
        bodies = {r.body for r in rs}
        assert bodies == {b"/cold|v=1"}, bodies
        assert origin.count("/cold") == 1
        assert {r.isr for r in rs} <= {"MISS", "HIT"}, [r.isr for r in rs]
        # waiters are woken when the fetch lands, not after the timeout
        assert max(r.elapsed for r in rs) < 6, sorted(r.elapsed for r in rs)
        lines = env.wait_access(r'"GET /sf/cold ', deadline=5)
        assert len(pids_serving(env, "/sf/cold")) >= 2, "\n".join(lines)

    def test_400_03_many_keys_many_clients(self, env, origin):
        for k in range(4):
            origin.set("/multi%d" % k, delay=0.5)
        paths = ["/sf/multi%d" % (i % 4) for i in range(32)]
        rs = env.concurrent_get(paths, timeout=20)
        for p, r in zip(paths, rs):
            assert r.status == 200, r
            assert r.body == (p[3:] + "|v=1").encode(), (p, str(r))
        assert [origin.count("/multi%d" % k) for k in range(4)] == [1, 1, 1, 1]


class TestSingleFlightEvent:
    MPM = "event"
    CONF = """
<Location /sf/>
    ISRBackend @ORIGIN@/
    ISRTimeout 10s
    ISRMaxObjectSize 10K
</Location>
"""

    def test_400_10_herd_threads_one_fetch(self, env, origin):
        assert len(env.wait_children(2)) >= 2
        origin.set("/coldev", delay=1)
        rs = env.concurrent_get(["/sf/coldev"] * 40, timeout=20)
        assert all(r is not None and r.status == 200 for r in rs), [str(r) for r in rs]
        assert {r.body for r in rs} == {b"/coldev|v=1"}
        assert origin.count("/coldev") == 1
        assert max(r.elapsed for r in rs) < 6, sorted(r.elapsed for r in rs)

    def test_400_11_herd_on_404_one_fetch(self, env, origin):
        origin.set("/nf", delay=1, status=404)
        rs = env.concurrent_get(["/sf/nf"] * 20, timeout=20)
        assert {(r.status, r.body) for r in rs} == {(404, b"/nf|v=1")}, [str(r) for r in rs]
        assert origin.count("/nf") == 1

    def test_400_12_herd_on_failure_released_together(self, env, origin):
        # all waiters get the one fetch's result (the ISROnError answer), not one by one
        isr_env.expect_log(isr_env.ISR_WARN_LOG)
        origin.set("/bad", delay=1, status=500)
        rs = env.concurrent_get(["/sf/bad"] * 20, timeout=20)
        assert {r.status for r in rs} == {502}, [str(r) for r in rs]
        assert max(r.elapsed for r in rs) < 3, sorted(r.elapsed for r in rs)
        assert origin.count("/bad") == 1

    def test_400_13_herd_on_too_large_released_together(self, env, origin):
        k = "/large?size=20000"
        origin.set("/large", delay=1)
        rs = env.concurrent_get(["/sf" + k] * 20, timeout=20)
        assert all(r.status == 200 and len(r.body) == 20000 for r in rs), \
            [str(r) for r in rs]
        assert all(re.fullmatch(rb"/large\?size=20000\|v=\d+x+", r.body) for r in rs)
        assert max(r.elapsed for r in rs) < 3, sorted(r.elapsed for r in rs)
