"""tools/isrctl: the admin API from the command line (it only calls the endpoint)."""

import json
import os
import subprocess

import isr_env

ISRCTL = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                      "tools", "isrctl")


def ctl(env, *args, stdin=None):
    p = subprocess.run(["sh", ISRCTL, "-a", "http://127.0.0.1:%d/isr-admin/" % env.port]
                       + list(args), input=stdin, capture_output=True, timeout=30)
    return p.returncode, p.stdout.decode(), p.stderr.decode()


class TestIsrctl:
    CONF = """
<Location /isr-admin>
    SetHandler isr-admin
    Require ip 127.0.0.1
</Location>
<Location /app/>
    ISRBackend @ORIGIN@/
    ISRCacheTTL 1h
</Location>
"""

    def test_957_01_purge_revalidate_warm(self, env, origin):
        origin.set("/t1", header="Surrogate-Key:red blue")
        origin.set("/t2", header="Surrogate-Key:green")
        for p in ("/u1", "/t1", "/t2", "/pre/a", "/pre/b"):
            assert env.get("/app" + p).isr == "MISS"
        rc, out, err = ctl(env, "purge", "url", "/app/u1")
        assert rc == 0, err
        a = json.loads(out)
        assert a["operation"] == "purge" and a["zones"][0]["matched"] == 1, a
        assert env.get("/app/u1").isr == "MISS"
        rc, out, err = ctl(env, "purge", "tag", "red", "green")
        assert rc == 0 and json.loads(out)["selector"] == "tag", (out, err)
        assert [env.get("/app" + p).isr for p in ("/t1", "/t2")] == ["MISS", "MISS"]
        rc, out, err = ctl(env, "-z", "default", "revalidate", "prefix", "/app/pre")
        assert rc == 0, err
        assert env.get("/app/pre/a").isr == "STALE"
        rc, out, err = ctl(env, "purge", "all")
        assert rc == 0 and json.loads(out)["selector"] == "all", out
        rc, out, err = ctl(env, "warm", "-", stdin=b"/app/w1\n/app/w2\n")
        assert rc == 0, err
        assert json.loads(out)["queued"] == 2, out
        assert origin.wait_count("/w2", 1, timeout=10) == 1
        r = env.wait_status("/app/w2", lambda x: x.isr == "HIT", deadline=10)
        assert r.body == b"/w2|v=1", r
        # -s: the site's Host, which the warmed keys follow.
        rc, out, err = ctl(env, "-s", "www.example.test", "warm", "-", stdin=b"/app/w3\n")
        assert rc == 0 and json.loads(out)["queued"] == 1, (out, err)
        assert origin.wait_count("/w3", 1, timeout=10) == 1
        r = env.wait_status("/app/w3", lambda x: x.isr == "HIT", deadline=10,
                            headers={"Host": "www.example.test"})
        assert r.body == b"/w3|v=1", r

    def test_957_02_reports(self, env, origin):
        assert env.get("/app/r1").isr in ("MISS", "HIT")
        rc, out, err = ctl(env, "status")
        assert rc == 0 and json.loads(out)["zones"][0]["zone"] == "default", (out, err)
        rc, out, err = ctl(env, "-z", "default", "metrics")
        assert rc == 0 and 'isr_hits_total{zone="default"}' in out, out
        rc, out, err = ctl(env, "entries", "/app/r1", "", "5")
        assert rc == 0, err
        es = json.loads(out)["entries"]
        assert [e["path"] for e in es] == ["/app/r1"], out

    def test_957_03_errors(self, env, origin):
        isr_env.expect_log("ISR0055")
        rc, out, err = ctl(env, "-z", "nosuch", "status")
        assert rc == 1 and "HTTP 404" in err and "no zone" in out, (rc, out, err)
        rc, out, err = ctl(env, "purge", "url", "relative")
        assert rc == 1 and "HTTP 400" in err, (rc, out, err)
        rc, out, err = ctl(env, "frobnicate")
        assert rc == 2 and "isrctl" in err, (rc, out, err)
        rc, out, err = ctl(env, "purge", "url", "/a", "/b")
        assert rc == 2, (rc, out, err)
