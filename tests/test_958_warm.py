"""Issue 11, warm caches: POST <admin>/warm fetches a list of URLs in the background, with
bounded concurrency, and never stores over an entry newer than what it fetched."""

import json
import time
import urllib.parse

import pytest

import isr_env

ADMIN = """
<Location /isr-admin>
    SetHandler isr-admin
    Require ip 127.0.0.1
</Location>
"""


def warm(env, urls=None, body=None, headers=None):
    """POST <admin>/warm with a text body of URLs; (status, parsed JSON or raw body)."""
    hdrs = {"Content-Type": "text/plain"}
    hdrs.update(headers or {})
    if body is None:
        body = ("\n".join(urls) + "\n").encode()
    r = env.post("/isr-admin/warm", body=body, headers=hdrs)
    try:
        return r.status, json.loads(r.body)
    except ValueError:
        return r.status, r.body


def results(answer):
    return {x["url"]: x["result"] for x in answer["results"]}


class TestWarm:
    CONF = ADMIN + """
LogLevel warn isr:debug
ISRRefreshThreads 2
<Location /app/>
    ISRBackend @ORIGIN@/
    ISRCacheTTL 1h
    ISRStaleTTL 1h
</Location>
<Location /fwd/>
    ISRBackend @ORIGIN@/
    ISRForwardHeader Cookie X-Lang
    ISRCacheTTL 1h
</Location>
<Location /plain/>
    Require all granted
</Location>
"""

    def test_958_01_warm_absent_urls(self, env, origin):
        st, a = warm(env, ["/app/w1", "/app/w2?x=1", "", "# a comment", "/app/w3"])
        assert st == 202, a
        assert a["operation"] == "warm" and a["urls"] == 3 and a["queued"] == 3, a
        assert results(a) == {"/app/w1": "queued", "/app/w2?x=1": "queued",
                              "/app/w3": "queued"}, a
        for p, body in (("/w1", b"/w1|v=1"), ("/w2?x=1", b"/w2?x=1|v=1"),
                        ("/w3", b"/w3|v=1")):
            assert origin.wait_count(p, 1, timeout=10) == 1, p
            r = env.wait_status("/app" + p, lambda x: x.isr == "HIT", deadline=10)
            assert (r.isr, r.body) == ("HIT", body), r
            assert origin.count(p) == 1, p
        # Warmed entries carry their path and URL as a request's do: purges find them.
        body = urllib.parse.urlencode({"url": "/app/w1"}).encode()
        assert env.post("/isr-admin/purge", body=body).status == 200
        body = urllib.parse.urlencode({"prefix": "/app/w2"}).encode()
        assert env.post("/isr-admin/purge", body=body).status == 200
        assert [env.get("/app" + p).isr for p in ("/w1", "/w2?x=1", "/w3")] \
            == ["MISS", "MISS", "HIT"]

    def test_958_02_warm_refreshes_an_entry(self, env, origin):
        assert env.get("/app/e1").body == b"/e1|v=1"
        st, a = warm(env, ["/app/e1"])
        assert st == 202 and results(a) == {"/app/e1": "queued"}, a
        r = env.wait_status("/app/e1", lambda x: x.body == b"/e1|v=2", deadline=10)
        assert (r.isr, r.body) == ("HIT", b"/e1|v=2"), r
        assert origin.count("/e1") == 2

    def test_958_03_never_over_a_newer_entry(self, env, origin):
        # The warm's fetch is slow; meanwhile the entry is purged and a client stores a newer
        # answer. The warm's answer, fetched before, must not replace it.
        assert env.get("/app/n1").body == b"/n1|v=1"
        origin.set("/n1", delay=3)
        mark = env.log_mark()
        st, a = warm(env, ["/app/n1"])
        assert st == 202 and results(a) == {"/app/n1": "queued"}, a
        assert origin.wait_count("/n1", 2, timeout=10) == 2   # the warm's fetch is under way
        origin.set("/n1")
        body = urllib.parse.urlencode({"url": "/app/n1"}).encode()
        assert env.post("/isr-admin/purge", body=body).status == 200
        r = env.get("/app/n1")
        assert (r.isr, r.body) == ("MISS", b"/n1|v=3"), r
        # The warm's answer (v=2) lands and is refused.
        line = env.wait_log(r"ISR0066.*warm of .*/n1 not stored: zone default holds a newer",
                            since=mark, deadline=15)
        assert line, env.log_dump(mark)
        r = env.get("/app/n1")
        assert (r.isr, r.body) == ("HIT", b"/n1|v=3"), r
        assert origin.count("/n1") == 3

    def test_958_04_bounded_concurrency(self, env, origin):
        # ISRRefreshThreads 2: at most two warm fetches at once in the child that took the
        # request, the rest wait in the queue.
        paths = ["/c%d" % i for i in range(8)]
        for p in paths:
            origin.set(p, delay=2)
        st, a = warm(env, ["/app" + p for p in paths])
        assert st == 202 and a["queued"] == 8, a
        time.sleep(1.0)
        started = sum(origin.count(p) for p in paths)
        assert 1 <= started <= 2, started
        for p in paths:
            assert origin.wait_count(p, 1, timeout=30) == 1, p
        for p in paths:
            r = env.wait_status("/app" + p, lambda x: x.isr == "HIT", deadline=10)
            assert r.body == (p + "|v=1").encode(), r

    def test_958_05_busy_and_form_urls(self, env, origin):
        # A key whose refresh is under way is busy; url= form parameters work too.
        origin.set("/b1", delay=2)
        st, a = warm(env, ["/app/b1"])
        assert st == 202, a
        assert origin.wait_count("/b1", 1, timeout=10) == 1
        body = urllib.parse.urlencode({"url": ["/app/b1", "/app/b2"]}, doseq=True).encode()
        r = env.post("/isr-admin/warm", body=body)
        a = json.loads(r.body)
        assert r.status == 202 and results(a) == {"/app/b1": "busy", "/app/b2": "queued"}, a
        for p in ("/b1", "/b2"):
            r = env.wait_status("/app" + p, lambda x: x.isr == "HIT", deadline=10)
            assert r.body == (p + "|v=1").encode(), r

    def test_958_06_operator_credentials_not_sent(self, env, origin):
        # The warm's request is a client's without the operator's Authorization and Cookie;
        # other headers key it as for a client.
        origin.set("/f1", echo="Cookie,X-Lang,Authorization")
        st, a = warm(env, ["/fwd/f1"], headers={"Cookie": "admin=secret", "X-Lang": "de",
                                                "Authorization": "Basic YTpi"})
        assert st == 202 and a["queued"] == 1, a
        assert origin.wait_count("/f1", 1, timeout=10) == 1
        last = json.loads(origin.request("/__last?path=/f1")[1])
        names = {n.lower() for n in last["headers"]}
        assert "cookie" not in names and "authorization" not in names, last
        # A client without cookies, with the same X-Lang, gets the warmed entry.
        r = env.wait_status("/fwd/f1", lambda x: x.isr == "HIT", deadline=10,
                            headers={"X-Lang": "de"})
        assert r.body == b"/f1|v=1|Cookie|X-Lang=de|Authorization", r
        # One with another X-Lang does not.
        r = env.get("/fwd/f1", headers={"X-Lang": "fr"})
        assert r.isr == "MISS" and r.body == b"/f1|v=2|Cookie|X-Lang=fr|Authorization", r

    def test_958_07_refusals(self, env, origin):
        r = env.get("/isr-admin/warm")
        assert r.status == 405 and r.headers.get("Allow") == "POST", r
        st, a = warm(env, body=b"\n# nothing\n")
        assert st == 400 and "no URL" in a["error"], a
        st, a = warm(env, ["/app/ok", "relative", "/plain/x", "/app/h#frag"])
        assert st == 202, a
        res = results(a)
        assert res["/app/ok"] == "queued", a
        assert res["relative"] == "takes a path and query", a
        assert res["/plain/x"] == "is not answered by mod_isr here", a
        assert res["/app/h#frag"] == "takes a path and query", a
        st, a = warm(env, ["/app/m%d" % i for i in range(1001)])
        assert st == 413 and "more than 1000" in a["error"], a
        st, a = warm(env, body=b"/app/" + b"x" * 70000)
        assert st == 400 and "64 KiB" in a["error"], a
        st, a = warm(env, ["/app/x"], headers={"Sec-Fetch-Site": "cross-site"})
        assert st == 403, a
        body = urllib.parse.urlencode({"tag": "x"}).encode()
        r = env.post("/isr-admin/warm", body=body)
        assert r.status == 400 and b"unknown parameter 'tag'" in r.body, r
        assert origin.count("/m0") == 0

    def test_958_08_failed_warm_leaves_the_key_to_clients(self, env, origin):
        isr_env.expect_log("ISR0022")
        origin.set("/x1", status=500)
        mark = env.log_mark()
        st, a = warm(env, ["/app/x1"])
        assert st == 202, a
        assert env.wait_log(r"ISR0022.*warm of .*/x1 failed \(status 500\)", since=mark,
                            deadline=10), env.log_dump(mark)
        origin.set("/x1")
        r = env.get("/app/x1")
        assert (r.status, r.isr, r.body) == (200, "MISS", b"/x1|v=2"), r


class TestRefreshHealth:
    CONF = ADMIN + """
<Location /app/>
    ISRBackend @ORIGIN@/
    ISRCacheTTL 1h
    ISRStaleTTL 1h
    ISRRefreshRetry 1s
</Location>
"""

    @staticmethod
    def entry(env, path):
        r = env.get("/isr-admin/entries?prefix=" + urllib.parse.quote(path))
        assert r.status == 200, r
        es = [e for e in json.loads(r.body)["entries"] if e["path"] == path]
        assert len(es) == 1, r.body
        return es[0]

    def revalidate(self, env, path):
        body = urllib.parse.urlencode({"url": path}).encode()
        assert env.post("/isr-admin/revalidate", body=body).status == 200

    def test_958_20_entries_show_refresh_health(self, env, origin):
        isr_env.expect_log("ISR0022")
        assert env.get("/app/h1").body == b"/h1|v=1"
        e = self.entry(env, "/app/h1")
        assert e["last_refresh"] is None and e["last_good_age"] >= 0, e
        # A failing refresh: noted with its error; the good copy stays and ages.
        origin.set("/h1", status=500)
        self.revalidate(env, "/app/h1")
        assert env.get("/app/h1").isr == "STALE"
        assert origin.wait_count("/h1", 2, timeout=10) == 2
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            e = self.entry(env, "/app/h1")
            if e["last_refresh"]:
                break
            time.sleep(0.1)
        lr = e["last_refresh"]
        assert lr and lr["result"] == "failed" and lr["ok"] is False, e
        assert lr["error"] == "status 500" and lr["status"] == 500, e
        assert lr["failures_in_a_row"] == 1 and lr["ago"] >= 0, e
        assert e["status"] == 200 and e["state"] == "stale", e
        # A second failure after the retry time (1 s, in whole seconds) counts up.
        time.sleep(2.5)
        assert env.get("/app/h1").isr == "STALE"
        assert origin.wait_count("/h1", 3, timeout=10) == 3
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            e = self.entry(env, "/app/h1")
            if e["last_refresh"]["failures_in_a_row"] == 2:
                break
            time.sleep(0.1)
        assert e["last_refresh"]["failures_in_a_row"] == 2, e
        # The origin recovers: ok, the count goes back to 0, the copy is new.
        origin.set("/h1")
        time.sleep(2.5)
        assert env.get("/app/h1").isr == "STALE"
        r = env.wait_status("/app/h1", lambda x: x.body == b"/h1|v=4", deadline=10)
        assert r.isr == "HIT", r
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            e = self.entry(env, "/app/h1")
            if e["last_refresh"]["result"] == "ok":
                break
            time.sleep(0.1)
        lr = e["last_refresh"]
        assert lr["result"] == "ok" and lr["ok"] is True and lr["error"] is None, e
        assert lr["failures_in_a_row"] == 0 and lr["status"] == 200, e

    def test_958_21_warm_is_noted(self, env, origin):
        st, a = warm(env, ["/app/h2"])
        assert st == 202, a
        # The job claims the key when it runs: a GET before that would be a miss of its own.
        assert origin.wait_count("/h2", 1, timeout=10) == 1
        env.wait_status("/app/h2", lambda x: x.isr == "HIT", deadline=10)
        # Noted just after the answer is stored: a moment after it can be a HIT.
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            e = self.entry(env, "/app/h2")
            if e["last_refresh"]:
                break
            time.sleep(0.1)
        assert e["last_refresh"]["result"] == "ok", e
        # A 304 to a warm of an entry with a validator renews it.
        origin.set("/h3", etag='"a"')
        assert env.get("/app/h3").isr == "MISS"
        st, a = warm(env, ["/app/h3"])
        assert st == 202, a
        assert origin.wait_count("/h3", 2, timeout=10) == 2
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            e = self.entry(env, "/app/h3")
            if e["last_refresh"]:
                break
            time.sleep(0.1)
        assert e["last_refresh"]["result"] == "not-modified", e
        assert origin.count304("/h3") == 1
