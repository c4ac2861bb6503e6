"""A child killed with SIGKILL while it owns a claim leaves nothing stuck (DESIGN-NOTES inv. 2)."""

import os
import signal
import threading
import time

import isr_env

TIMEOUT = 2.0
MARGIN = 5.0   # lease margin + prefork respawn (one per second) + slow CI


def kill_children(env, pids=None):
    """SIGKILL the children and wait until they are gone (a dying child could otherwise still
    accept the next test request and reset it)."""
    pids = env.child_pids() if pids is None else pids
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    end = time.monotonic() + 5
    while time.monotonic() < end and any(env.pid_alive(p) for p in pids):
        time.sleep(0.02)
    assert not any(env.pid_alive(p) for p in pids), "SIGKILLed children still alive"
    return pids


class TestKillChild:
    MPM = "prefork"
    MPM_CONF = {"StartServers": 6, "MinSpareServers": 6, "MaxSpareServers": 10}
    CONF = """
<Location /kc/>
    ISRBackend @ORIGIN@/
    ISRTimeout 2s
    ISRCacheTTL 1s
    ISRStaleTTL 1h
</Location>
"""

    def test_420_01_killed_miss_owner(self, env, origin):
        isr_env.expect_log("exit signal Killed", isr_env.ISR_WARN_LOG)
        assert len(env.wait_children(2)) >= 2
        origin.set("/m", delay=3)
        results = []
        threads = [threading.Thread(target=lambda: results.append(env.get("/kc/m", timeout=20)),
                                    daemon=True) for _ in range(3)]
        for t in threads:
            t.start()
        assert origin.wait_count("/m", 1, timeout=5) >= 1, "the miss never reached the origin"
        killed = kill_children(env)
        assert killed
        origin.set("/m")  # fast again
        for t in threads:
            t.join(15)
        assert not any(t.is_alive() for t in threads), "clients of killed children hang"
        r = env.get("/kc/m", timeout=20)
        assert r.status == 200, r
        assert r.elapsed < TIMEOUT + MARGIN, r
        assert r.body.startswith(b"/m|v="), r
        r2 = env.get("/kc/m")
        assert (r2.status, r2.isr, r2.body) == (200, "HIT", r.body), r2

    def test_420_02_killed_refresh_owner(self, env, origin):
        isr_env.expect_log("exit signal Killed", isr_env.ISR_WARN_LOG)
        assert env.get("/kc/r").body == b"/r|v=1"
        origin.set("/r", delay=3)
        time.sleep(1.2)
        r = env.get("/kc/r")
        assert (r.isr, r.body) == ("STALE", b"/r|v=1"), r
        assert origin.wait_count("/r", 2, timeout=5) >= 2, "no refresh started"
        kill_children(env)
        origin.set("/r")
        end = time.monotonic() + TIMEOUT + MARGIN + 5
        seen = []
        while time.monotonic() < end:
            r = env.get("/kc/r", timeout=10)
            seen.append(str(r))
            assert r.status == 200, seen
            assert r.elapsed < TIMEOUT + MARGIN, seen
            if r.isr == "HIT" and r.body != b"/r|v=1":
                break
            time.sleep(0.3)
        assert r.isr == "HIT" and r.body.startswith(b"/r|v="), "\n".join(seen[-5:])
        assert r.body != b"/r|v=1"

    def test_420_03_waiters_in_other_children_do_not_hang(self, env, origin):
        isr_env.expect_log("exit signal Killed", isr_env.ISR_WARN_LOG)
        assert len(env.wait_children(5)) >= 5
        origin.set("/w", delay=3)
        owner_res = []
        t = threading.Thread(target=lambda: owner_res.append(env.get("/kc/w", timeout=20)),
                             daemon=True)
        t.start()
        assert origin.wait_count("/w", 1, timeout=5) >= 1
        owners = children_talking_to(env, origin.port, origin.last("/w")["client_port"])
        assert len(owners) == 1, owners
        # waiters for the claim, in other children
        waiters = []
        wthreads = [threading.Thread(target=lambda: waiters.append(env.get("/kc/w", timeout=20)),
                                     daemon=True) for _ in range(3)]
        for w in wthreads:
            w.start()
        time.sleep(0.5)
        t0 = time.monotonic()
        kill_children(env, owners)
        origin.set("/w")  # fast again
        for w in wthreads + [t]:
            w.join(TIMEOUT + MARGIN + 5)
        assert not any(w.is_alive() for w in wthreads), "waiters hang after the owner died"
        assert len(waiters) == 3
        assert all(r.status == 200 for r in waiters), [str(r) for r in waiters]
        assert len({r.body for r in waiters}) == 1, [str(r) for r in waiters]
        assert time.monotonic() - t0 < TIMEOUT + MARGIN, [str(r) for r in waiters]


def children_talking_to(env, port, local_port):
    """PIDs of httpd children owning the TCP connection local_port -> 127.0.0.1:port."""
    inodes = set()
    for tab in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(tab) as f:
                rows = f.read().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            cols = row.split()
            loc_port = int(cols[1].split(":")[1], 16)
            rem_port = int(cols[2].split(":")[1], 16)
            if rem_port == port and loc_port == local_port and cols[3] == "01":
                inodes.add(cols[9])
    out = []
    for pid in env.child_pids():
        try:
            fds = os.listdir("/proc/%d/fd" % pid)
        except OSError:
            continue
        for fd in fds:
            try:
                link = os.readlink("/proc/%d/fd/%s" % (pid, fd))
            except OSError:
                continue
            if link.startswith("socket:[") and link[8:-1] in inodes:
                out.append(pid)
                break
    return out
