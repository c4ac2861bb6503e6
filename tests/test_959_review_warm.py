"""Review of 39e2616 (POST <admin>/warm, the EEXIST guard, refresh health): tests of the
defects the review found (all fixed). Each test states what the README or the design promises."""

import json
import time
import urllib.parse

import isr_env

ADMIN = """
<Location /isr-admin>
    SetHandler isr-admin
    Require ip 127.0.0.1
</Location>
"""


def warm(env, urls, headers=None):
    hdrs = {"Content-Type": "text/plain"}
    hdrs.update(headers or {})
    r = env.post("/isr-admin/warm", body=("\n".join(urls) + "\n").encode(), headers=hdrs)
    try:
        return r.status, json.loads(r.body)
    except ValueError:
        return r.status, r.body


def results(answer):
    return {x["url"]: x["result"] for x in answer["results"]}


class TestWarmReview:
    EXPECT_LOG_STOP = ("ISR0022", "AH01630")
    CONF = ADMIN + """
LogLevel warn isr:debug
ISRRefreshThreads 1
<Location /app/>
    ISRBackend @ORIGIN@/
    ISRCacheTTL 1h
    ISRStaleTTL 1h
</Location>
<Location /app/priv/>
    Require ip 10.255.255.254
</Location>
<Location /sw/>
    ISRBackend @ORIGIN@/
    ISRCacheTTL 1s
    ISRStaleTTL 1h
</Location>
"""

    def test_959_01_retry_after_failed_warm_is_not_busy(self, env, origin):
        # A warm of an absent key whose fetch fails releases its claim (the key stays PENDING
        # with no lease). Nothing is under way, so a second warm must be queued; the code
        # answers "busy" (isr_request_warm: ISR_LOOK_PENDING -> "busy" without looking at
        # the lease) until some client happens to request the URL.
        isr_env.expect_log("ISR0022")
        origin.set("/rf1", status=500)
        mark = env.log_mark()
        st, a = warm(env, ["/app/rf1"])
        assert st == 202 and results(a) == {"/app/rf1": "queued"}, a
        assert env.wait_log(r"ISR0022.*warm of .*/rf1 failed", since=mark, deadline=10), \
            env.log_dump(mark)
        origin.set("/rf1")
        time.sleep(0.2)
        st, a = warm(env, ["/app/rf1"])
        assert results(a) == {"/app/rf1": "queued"}, a

    def test_959_02_warm_honours_the_target_locations_require(self, env, origin):
        # /app/priv/ is denied to 127.0.0.1 (the operator here). A client's GET from there is
        # refused before mod_isr fetches anything; a warm of it must not make the backend
        # answer it either (url_req ignores rr->status of the subrequest's access check).
        isr_env.expect_log("AH01630")
        r = env.get("/app/priv/p1")
        assert r.status == 403, r
        assert origin.count("/priv/p1") == 0
        st, a = warm(env, ["/app/priv/p1"])
        time.sleep(1.0)
        assert origin.count("/priv/p1") == 0, a
        assert results(a)["/app/priv/p1"] != "queued", a

    def test_959_03_warm_queue_does_not_delay_client_refreshes(self, env, origin):
        # README: warm fetches run "at the lowest priority (refreshes of stale entries go
        # first)". But a warm of an existing entry takes its (queued) refresh lease at once, so
        # a client that finds the entry stale cannot queue its own normal-priority refresh: the
        # entry waits behind every warm job queued before it (or until the lease's hold ends).
        assert env.get("/sw/e1").body == b"/e1|v=1"
        slow = ["/sw/slow%d" % i for i in range(5)]
        for p in slow:
            origin.set(p[3:], delay=1)
        st, a = warm(env, slow + ["/sw/e1"])
        assert st == 202 and a["queued"] == 6, a
        time.sleep(1.2)                       # e1 is stale now; one slow warm is running
        r = env.get("/sw/e1")
        assert r.isr == "STALE", r
        t0 = time.monotonic()
        r = env.wait_status("/sw/e1", lambda x: x.body.startswith(b"/e1|v=2"), deadline=15)
        took = time.monotonic() - t0
        assert r.body.startswith(b"/e1|v=2"), r
        # With its own refresh first in line it would be refreshed after the running slow
        # warm (< 1 s); behind the four other slow warm jobs it takes about 4-5 s.
        assert took < 2.5, took


class TestWarmQuickHandler:
    # With ISRQuickHandler On (hits before access control, as documented), a warm of a
    # location the operator is denied lets the operator read it: the warm fetches it although
    # the subrequest's access check failed, and the hit is then answered before Require.
    EXPECT_LOG_STOP = ("AH01630",)
    CONF = ADMIN + """
<Location /q/>
    ISRBackend @ORIGIN@/
    ISRQuickHandler On
    ISRCacheTTL 1h
</Location>
<Location /q/priv/>
    Require ip 10.255.255.254
</Location>
"""

    def test_959_05_warm_does_not_open_a_denied_location(self, env, origin):
        isr_env.expect_log("AH01630")
        assert env.get("/q/priv/secret").status == 403
        st, a = warm(env, ["/q/priv/secret"])
        time.sleep(1.0)
        r = env.get("/q/priv/secret")
        assert r.status == 403, (r, a)


class TestWarmHost:
    # The key holds X-Forwarded-Host from the request's Host (UseCanonicalName Off, the
    # default): a warm is keyed by the Host it is sent with, so the operator sends the site's
    # (README "Warm"); one made through 127.0.0.1 stores entries only clients of 127.0.0.1 hit.
    CONF = ADMIN + """
<Location /app/>
    ISRBackend @ORIGIN@/
    ISRCacheTTL 1h
</Location>
"""

    def test_959_10_warm_with_the_site_host_serves_its_clients(self, env, origin):
        st, a = warm(env, ["/app/h1"], headers={"Host": "www.example.test"})
        assert st == 202 and a["queued"] == 1, a
        assert origin.wait_count("/h1", 1, timeout=10) == 1
        r = env.wait_status("/app/h1", lambda x: x.isr == "HIT", deadline=10,
                            headers={"Host": "www.example.test"})
        assert r.isr == "HIT" and r.body == b"/h1|v=1", r
        r = env.get("/app/h1")
        assert r.isr == "MISS" and r.body == b"/h1|v=2", r


class TestWarmForm:
    CONF = ADMIN + """
<Location /app/>
    ISRBackend @ORIGIN@/
    ISRCacheTTL 1h
</Location>
"""

    def test_959_21_form_1000_urls_accepted(self, env, origin):
        body = urllib.parse.urlencode({"url": ["/app/g%d" % i for i in range(1000)]},
                                      doseq=True).encode()
        r = env.post("/isr-admin/warm", body=body)
        assert r.status in (200, 202), (r.status, r.body[:200])
