"""Review of issue 11 (purge table, isr-admin, commit 5d126a4): reproducers by the reviewer.
Each failed on 5d126a4 and passes since the fixes (test_951_02 was rewritten: a bounded table
cannot keep every operation; it now pins what a full table does)."""

import json
import urllib.parse

import isr_env  # noqa: F401  (the harness)

ADMIN = """
<Location /isr-admin>
    SetHandler isr-admin
    Require ip 127.0.0.1
</Location>
"""


def admin(env, op, headers=None, **params):
    body = urllib.parse.urlencode(params, doseq=True).encode()
    r = env.post("/isr-admin/" + op, body=body, headers=headers)
    try:
        return r.status, json.loads(r.body)
    except ValueError:
        return r.status, r.body


class TestReview:
    CONF = ADMIN + """
ISRCacheZone tiny 2M
<Location /tiny/>
    ISRBackend @ORIGIN@/
    ISRCache tiny
    ISRCacheTTL 1h
</Location>
<Location /slow/>
    ISRBackend @ORIGIN@/
    ISRCacheTTL 1s
    ISRStaleTTL 1h
</Location>
<Location /fw/>
    ISRBackend @ORIGIN@/
    ISRCacheTTL 1h
    ISRForwardHeader X-Lang
</Location>
"""

    def test_951_01_dns_rebinding_passes_the_origin_check(self, env):
        # A page on evil.example whose name was rebound to this server: Origin and Host
        # agree, so cross_site() lets it through although Require only trusts the network.
        r = env.post("/isr-admin/purge", body=b"all=1",
                     headers={"Host": "evil.example", "Origin": "http://evil.example",
                              "Sec-Fetch-Site": "same-origin"})
        assert r.status == 403, (r.status, r.body)

    def test_951_02_a_full_purge_table_says_so_and_forgets_nothing(self, env, origin):
        """Review: with more distinct tags purged within an entry's life than the table holds,
        a full bucket's oldest operation becomes a floor: more entries may be purged than
        named (the price of a bounded table), never fewer, and the operator is told (ISR0057,
        purge_table_evictions). Reusing ways older than any entry is tests/unit/test_purge.c
        ways_age."""
        isr_env.expect_log("ISR0057")
        origin.set("/named/x", header="Surrogate-Key:named-0")
        assert env.get("/tiny/named/x").isr == "MISS"
        for op in range(12):
            tags = " ".join("nobody-%d-%d" % (op, i) for i in range(250))
            if op == 0:
                tags += " named-0"
            st, a = admin(env, "purge", tag=tags, zone="tiny")
            assert st == 200, a
        assert env.get("/tiny/named/x").isr == "MISS"
        r = env.get("/isr-admin/status?zone=tiny")
        tiny = json.loads(r.body)["zones"][0]
        assert tiny["purge_table_evictions"] > 0, tiny
        assert env.wait_log(r"ISR0057: .* zone tiny is full")

    def test_951_03_url_purge_misses_forward_header_keys(self, env, origin):
        for lang in ("de", "en"):
            assert env.get("/fw/l1", headers={"X-Lang": lang}).isr == "MISS"
            assert env.get("/fw/l1", headers={"X-Lang": lang}).isr == "HIT"
        st, a = admin(env, "purge", url="/fw/l1")
        assert st == 200, a
        seen = [env.get("/fw/l1", headers={"X-Lang": lang}).isr for lang in ("de", "en")]
        assert seen == ["MISS", "MISS"], (a, seen)

    def test_951_04_purge_during_refresh_waits_for_a_fetch_it_throws_away(self, env, origin):
        import time
        assert env.get("/slow/w1").body == b"/w1|v=1"
        time.sleep(1.2)
        origin.set("/w1", delay=3.0)
        assert env.get("/slow/w1").isr == "STALE"
        assert isr_env.wait_for(lambda: origin.count("/w1") == 2, deadline=5)
        st, a = admin(env, "purge", url="/slow/w1")
        assert st == 200, a
        origin.set("/w1")
        r = env.get("/slow/w1")
        # The slot went PENDING under the refresh's lease (asked before the purge): this
        # request waits for that refresh, which lands purged, then fetches again.
        assert (r.isr, r.body) == ("MISS", b"/w1|v=3"), r
        assert r.elapsed < 1.0, r.elapsed


class TestAdminInsideIsrLocation:
    CONF = """
<Location />
    ISRBackend @ORIGIN@/
</Location>
""" + ADMIN

    def test_951_10_admin_post_is_proxied_to_the_backend(self, env, origin):
        st, a = admin(env, "purge", all="1")
        assert origin.count("/isr-admin/purge") == 0, (st, a)
        assert st == 200 and isinstance(a, dict) and a.get("operation") == "purge", (st, a)
