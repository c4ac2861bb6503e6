"""Review attacks on issue 8 part 2 (Strict mode, Vary, credentials, the request's
Cache-Control) and the reverse proxy: each test fails on the code it was written against and
passes once the finding is fixed.
"""

import time

import pytest

import isr_env
from isr_env import wait_for  # noqa: F401
from origin import echoed


class TestStrictAttack:
    CONF = """
<Location /s/>
    ISRBackend @ORIGIN@/
    ISRCacheControl Strict
    ISRTimeout 5s
</Location>
"""

    def test_814_01_connection_named_varied_header_poisons_variant(self, env, origin):
        """A client names the varied header in Connection: it is stripped from what the origin
        gets (hop-by-hop), but the variant is keyed by the client's value, so the origin's
        answer for *no* Accept-Language is stored as everybody's French variant."""
        origin.set("/cp", cc="max-age=60", header="Vary:Accept-Language",
                   echo="Accept-Language")
        r = env.get("/s/cp", headers={"Accept-Language": "fr",
                                      "Connection": "Accept-Language"})
        assert r.status == 200, r
        victim = env.get("/s/cp", headers={"Accept-Language": "fr"})
        assert victim.status == 200, victim
        assert echoed(victim.body)["accept-language"] == "fr", victim

    def test_814_02_connection_named_revalidation_repoisons_at_will(self, env, origin):
        """Same, on a fresh, correctly stored variant: a no-cache revalidation with the
        varied header named in Connection replaces everybody's French variant."""
        origin.set("/cp2", cc="max-age=60", header="Vary:Accept-Language",
                   echo="Accept-Language")
        good = env.get("/s/cp2", headers={"Accept-Language": "fr"})
        assert echoed(good.body)["accept-language"] == "fr", good
        env.get("/s/cp2", headers={"Accept-Language": "fr", "Connection": "Accept-Language",
                                   "Cache-Control": "no-cache"})
        victim = env.get("/s/cp2", headers={"Accept-Language": "fr"})
        assert echoed(victim.body)["accept-language"] == "fr", victim

    def test_814_03_cookie_no_cache_flushes_shared_entry(self, env, origin):
        """A client with a Cookie (whose answer may not be stored) asks for a revalidation:
        the shared entry everybody else is served is dropped, and the URL goes uncached."""
        origin.set("/fl", cc="max-age=60")
        assert env.get("/s/fl").body == b"/fl|v=1"
        assert env.get("/s/fl").isr == "HIT"
        env.get("/s/fl", headers={"Cookie": "a=1", "Cache-Control": "no-cache"})
        n = origin.count("/fl")
        rs = [env.get("/s/fl") for _ in range(5)]
        assert {r.status for r in rs} == {200}, rs
        assert origin.count("/fl") == n, rs           # the others were still served from cache
        assert all(r.isr == "HIT" for r in rs), rs

    def test_814_04_authorization_max_age_0_flushes_shared_entry(self, env, origin):
        origin.set("/fa", cc="max-age=60", etag='"a1"')
        env.get("/s/fa")
        assert env.get("/s/fa").isr == "HIT"
        # a 304 to the attacker's conditional revalidation
        env.get("/s/fa", headers={"Authorization": "Basic YTpi",
                                  "Cache-Control": "max-age=0"})
        n = origin.count("/fa")
        rs = [env.get("/s/fa") for _ in range(5)]
        assert origin.count("/fa") == n, rs
        assert all(r.isr == "HIT" for r in rs), rs

    def test_814_05_logged_in_user_revalidating_an_expired_entry_drops_it(self, env, origin):
        """No attacker needed: the first request after expiry revalidates synchronously with
        its own headers; when that client carries a Cookie (any analytics cookie), the 304
        that renews the shared entry is discarded and the entry dropped instead."""
        origin.set("/ex", cc="max-age=1", etag='"e1"')
        env.get("/s/ex")
        time.sleep(1.3)
        r = env.get("/s/ex", headers={"Cookie": "_ga=GA1.2.3"})
        assert r.status == 200 and r.body == b"/ex|v=1", r
        assert origin.count304("/ex") == 1
        n = origin.count("/ex")
        r = env.get("/s/ex")
        assert r.isr == "HIT", r                        # renewed by that 304, for everybody
        assert origin.count("/ex") == n, r


class TestMixedModes:
    CONF = """
<Location /s/>
    ISRBackend @ORIGIN@/
    ISRCacheControl Strict
    ISRTimeout 5s
</Location>
<Location /o/>
    ISRBackend @ORIGIN@/
    ISRTimeout 5s
</Location>
"""

    def test_814_10_on_mode_entry_served_to_strict_ignoring_vary(self, env, origin):
        """An On-mode location and a Strict one on the same zone and backend URL share the
        URL's key. The On-mode fetch (no client headers) is stored as a plain entry although
        the answer says Vary: Accept-Language; Strict clients are then served it whatever their
        Accept-Language (the reverse direction, a Strict marker met from On mode, is handled)."""
        origin.set("/mx", cc="max-age=60", header="Vary:Accept-Language",
                   echo="Accept-Language")
        r = env.get("/o/mx", headers={"Accept-Language": "en"})
        assert r.status == 200, r
        fr = env.get("/s/mx", headers={"Accept-Language": "fr"})
        assert fr.status == 200, fr
        assert echoed(fr.body)["accept-language"] == "fr", fr


class TestStrictFlushLarge:
    CONF = """
<Location /s/>
    ISRBackend @ORIGIN@/
    ISRCacheControl Strict
    ISRMaxObjectSize 4K
    ISRCacheTTL 30s
    ISRTimeout 5s
</Location>
"""

    def test_814_20_oversized_answer_to_a_revalidation_flushes_for_a_ttl(self, env, origin):
        """An origin that reflects a request header in its body (error pages, debug output):
        a client's no-cache revalidation with a large header gets an answer too large to store,
        which is relayed, and the relay marks the *shared* key pass for ISRCacheTTL: every
        other client then goes to the origin for 30 s."""
        origin.set("/big", cc="max-age=60", echo="X-Pad")
        assert env.get("/s/big").status == 200
        assert env.get("/s/big").isr == "HIT"
        r = env.get("/s/big", headers={"Cache-Control": "no-cache", "X-Pad": "p" * 6000})
        assert r.status == 200 and len(r.body) > 6000, r
        n = origin.count("/big")
        rs = [env.get("/s/big") for _ in range(5)]
        assert origin.count("/big") == n, rs
        assert all(r.isr == "HIT" for r in rs), rs


class TestStrictForwardHeader:
    CONF = """
<Location /s/>
    ISRBackend @ORIGIN@/
    ISRCacheControl Strict
    ISRForwardHeader X-Tenant
    ISRTimeout 5s
</Location>
"""

    def test_814_30_connection_strips_a_keyed_forward_header(self, env, origin):
        """ISRForwardHeader X-Tenant is keyed, but in Strict mode what is sent is the client's
        header list, from which Connection-named headers are stripped: the default tenant's
        answer is stored under tenant b's key."""
        origin.set("/t", cc="max-age=60", echo="X-Tenant")
        env.get("/s/t", headers={"X-Tenant": "b", "Connection": "X-Tenant"})
        victim = env.get("/s/t", headers={"X-Tenant": "b"})
        assert victim.status == 200, victim
        assert echoed(victim.body)["x-tenant"] == "b", victim


class TestStrictVaryForwarded:
    CONF = """
<Location /s/>
    ISRBackend @ORIGIN@/
    ISRCacheControl Strict
    ISRTimeout 5s
</Location>
"""

    def test_814_40_variant_refresh_replays_client_x_forwarded(self, env, origin):
        """Vary naming X-Forwarded-For / X-Forwarded-Host: the miss drops the client's own
        X-Forwarded-* (README: never sent), but the variant key holds them and a refresh of
        the variant sends them: a forged X-Forwarded-For, and a second X-Forwarded-Host next to
        the keyed one (the origin sees "real, evil")."""
        origin.set("/vh", cc="max-age=1, stale-while-revalidate=30",
                   header="Vary:X-Forwarded-Host,X-Forwarded-For",
                   echo="X-Forwarded-Host,X-Forwarded-For")
        h = {"X-Forwarded-Host": "evil.example", "X-Forwarded-For": "6.6.6.6"}
        first = env.get("/s/vh", headers=h)
        assert first.status == 200, first
        time.sleep(1.3)
        assert env.get("/s/vh", headers=h).isr == "STALE"
        assert origin.wait_count("/vh", 2)
        time.sleep(0.3)
        names = [n.lower() for n, _ in origin.last("/vh")["header_list"]]
        values = dict((n.lower(), v) for n, v in origin.last("/vh")["header_list"]
                      if n.lower() == "x-forwarded-for")
        assert names.count("x-forwarded-host") == 1, origin.last("/vh")["header_list"]
        assert values.get("x-forwarded-for") != "6.6.6.6", origin.last("/vh")["header_list"]
