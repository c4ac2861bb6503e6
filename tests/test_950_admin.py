"""Issue 11, invalidation: the isr-admin handler's purge and revalidate by URL, key, path
prefix, tag and all; tags from Surrogate-Key / Cache-Tag; a purge during a refresh stays a
purge; the API's refusals."""

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


def admin(env, op, **params):
    """POST <admin>/op with a form body; (status, parsed JSON or raw body)."""
    body = urllib.parse.urlencode(params, doseq=True).encode()
    r = env.post("/isr-admin/" + op, body=body)
    try:
        return r.status, json.loads(r.body)
    except ValueError:
        return r.status, r.body


def seq_of(answer, zone="default"):
    return [z for z in answer["zones"] if z["zone"] == zone][0]["seq"]


def tagged(origin, path, value, header="Surrogate-Key"):
    origin.set(path, header="%s:%s" % (header, value))


class TestPurgeAndRevalidate:
    CONF = ADMIN + """
<Location /app/>
    ISRBackend @ORIGIN@/
    ISRCacheTTL 1h
    ISRStaleTTL 1h
</Location>
<Location /slow/>
    ISRBackend @ORIGIN@/
    ISRCacheTTL 1s
    ISRStaleTTL 1h
</Location>
"""

    def test_950_01_revalidate_url_serves_stale_once_then_new(self, env, origin):
        assert env.get("/app/r1").body == b"/r1|v=1"
        assert env.get("/app/r1").isr == "HIT"
        st, a = admin(env, "revalidate", url="/app/r1")
        assert st == 200, a
        assert a["operation"] == "revalidate" and a["selector"] == "url", a
        assert a["zones"][0]["matched"] == 1, a
        r = env.get("/app/r1")
        assert (r.isr, r.body) == ("STALE", b"/r1|v=1"), r
        r = env.wait_status("/app/r1", lambda x: x.body == b"/r1|v=2", deadline=8)
        assert (r.isr, r.body) == ("HIT", b"/r1|v=2"), r
        assert origin.count("/r1") == 2

    def test_950_02_purge_url_is_a_miss(self, env, origin):
        assert env.get("/app/p1").body == b"/p1|v=1"
        st, a = admin(env, "purge", url="/app/p1")
        assert st == 200 and a["zones"][0]["matched"] == 1, a
        r = env.get("/app/p1")
        assert (r.isr, r.body) == ("MISS", b"/p1|v=2"), r
        assert env.get("/app/p1").isr == "HIT"
        # Nothing stored: matched 0, still an operation.
        st, a2 = admin(env, "purge", url="/app/never-fetched")
        assert st == 200 and a2["zones"][0]["matched"] == 0, a2
        assert seq_of(a2) > seq_of(a)

    def test_950_03_url_with_query_is_its_own_key(self, env, origin):
        assert env.get("/app/q1?a=1").body == b"/q1?a=1|v=1"
        assert env.get("/app/q1?a=2").body == b"/q1?a=2|v=1"
        st, a = admin(env, "purge", url="/app/q1?a=1")
        assert st == 200 and a["zones"][0]["matched"] == 1, a
        assert env.get("/app/q1?a=1").isr == "MISS"
        assert env.get("/app/q1?a=2").isr == "HIT"

    def test_950_04_purge_by_tag_exactly_the_tagged(self, env, origin):
        tagged(origin, "/t1", "red blue")
        tagged(origin, "/t2", "blue,green", header="Cache-Tag")
        tagged(origin, "/t3", "green")
        for p in ("/t1", "/t2", "/t3", "/t4"):
            assert env.get("/app" + p).isr == "MISS"
        # The tags are the cache's: not sent to clients.
        r = env.get("/app/t1")
        assert r.isr == "HIT" and "Surrogate-Key" not in r.headers, r
        assert "Cache-Tag" not in env.get("/app/t2").headers
        st, a = admin(env, "purge", tag="blue")
        assert st == 200 and a["zones"][0].get("lazy") is True, a
        assert [env.get("/app" + p).isr for p in ("/t1", "/t2", "/t3", "/t4")] \
            == ["MISS", "MISS", "HIT", "HIT"]
        # Several tags in one operation, as a list or repeated.
        st, a = admin(env, "purge", tag=["red", "green"])
        assert st == 200, a
        assert [env.get("/app" + p).isr for p in ("/t1", "/t2", "/t3", "/t4")] \
            == ["MISS", "MISS", "MISS", "HIT"]

    def test_950_05_revalidate_by_tag_is_soft(self, env, origin):
        tagged(origin, "/s1", "soft")
        assert env.get("/app/s1").body == b"/s1|v=1"
        st, a = admin(env, "revalidate", tag="soft")
        assert st == 200, a
        r = env.get("/app/s1")
        assert (r.isr, r.body) == ("STALE", b"/s1|v=1"), r
        r = env.wait_status("/app/s1", lambda x: x.body == b"/s1|v=2", deadline=8)
        assert r.isr == "HIT", r
        assert origin.count("/s1") == 2

    def test_950_06_prefix(self, env, origin):
        for p in ("/pa/x", "/pa/y/z", "/pab", "/pb/x"):
            assert env.get("/app" + p).isr == "MISS", p
        st, a = admin(env, "purge", prefix="/app/pa/")
        assert st == 200 and a["zones"][0].get("lazy") is True, a
        assert [env.get("/app" + p).isr for p in ("/pa/x", "/pa/y/z", "/pab", "/pb/x")] \
            == ["MISS", "MISS", "HIT", "HIT"]
        # Without the trailing slash: the same prefix; dot segments are resolved.
        st, a = admin(env, "purge", prefix="/app/x/../pb")
        assert st == 200, a
        assert env.get("/app/pb/x").isr == "MISS"
        assert env.get("/app/pab").isr == "HIT"

    def test_950_07_purge_all_and_revalidate_all(self, env, origin):
        assert env.get("/app/a1").isr == "MISS"
        assert env.get("/app/a2").isr == "MISS"
        st, a = admin(env, "revalidate", all="1")
        assert st == 200, a
        assert env.get("/app/a1").isr == "STALE"
        env.wait_status("/app/a1", lambda x: x.isr == "HIT" and x.body == b"/a1|v=2", deadline=8)
        st, a = admin(env, "purge", all="1")
        assert st == 200, a
        r = env.get("/app/a1")
        assert (r.isr, r.body) == ("MISS", b"/a1|v=3"), r
        r = env.get("/app/a2")
        assert r.isr == "MISS", r

    def test_950_08_purge_during_refresh_not_undone(self, env, origin):
        assert env.get("/slow/d1").body == b"/d1|v=1"
        time.sleep(1.2)
        origin.set("/d1", delay=1.5)
        r = env.get("/slow/d1")
        assert (r.isr, r.body) == ("STALE", b"/d1|v=1"), r
        # The refresh is at the origin now (it asked before the purge).
        assert isr_env.wait_for(lambda: origin.count("/d1") == 2, deadline=5)
        st, a = admin(env, "purge", url="/slow/d1")
        assert st == 200, a
        origin.set("/d1")
        # Let the refresh land (v=2, fetched before the purge): it must not be served.
        time.sleep(2.0)
        r = env.get("/slow/d1")
        assert (r.isr, r.body) == ("MISS", b"/d1|v=3"), r

    def test_950_09_revalidate_during_refresh_not_undone(self, env, origin):
        assert env.get("/slow/d2").body == b"/d2|v=1"
        time.sleep(1.2)
        origin.set("/d2", delay=1.5)
        assert env.get("/slow/d2").isr == "STALE"
        assert isr_env.wait_for(lambda: origin.count("/d2") == 2, deadline=5)
        st, a = admin(env, "revalidate", url="/slow/d2")
        assert st == 200, a
        origin.set("/d2")
        time.sleep(2.0)
        # v=2 landed but was asked for before the revalidate: stale, refreshed again.
        r = env.get("/slow/d2")
        assert (r.isr, r.body) == ("STALE", b"/d2|v=2"), r
        r = env.wait_status("/slow/d2", lambda x: x.body == b"/d2|v=3", deadline=8)
        assert r.body == b"/d2|v=3", r

    def test_950_10_too_many_tags_answers_every_tag(self, env, origin):
        tagged(origin, "/o1", " ".join("t%d" % i for i in range(70)))
        tagged(origin, "/o2", "t1")
        assert env.get("/app/o1").isr == "MISS"
        assert env.get("/app/o2").isr == "MISS"
        st, a = admin(env, "purge", tag="unrelated-tag")
        assert st == 200, a
        # o1 kept 64 of its 70 tags: any tag purge reaches it, never one it lost.
        assert env.get("/app/o1").isr == "MISS"
        assert env.get("/app/o2").isr == "HIT"

    def test_950_11_query_string_parameters(self, env, origin):
        assert env.get("/app/qs1").isr == "MISS"
        r = env.request("/isr-admin/purge?url=%2Fapp%2Fqs1", method="POST")
        assert r.status == 200, r
        assert json.loads(r.body)["zones"][0]["matched"] == 1
        assert env.get("/app/qs1").isr == "MISS"


class TestRefusals:
    CONF = ADMIN + """
ISRCacheZone other 2M
<Location /app/>
    ISRBackend @ORIGIN@/
</Location>
"""

    def test_950_20_get_is_405(self, env):
        r = env.get("/isr-admin/purge?all=1")
        assert r.status == 405 and "POST" in r.headers.get("Allow", ""), r
        assert "error" in json.loads(r.body)

    @pytest.mark.parametrize("params, want", [
        ({}, "a selector is needed"),
        ({"url": "/app/x", "tag": "a"}, "exactly one selector"),
        ({"url": "app/x"}, "a path starting with /"),
        ({"all": "yes"}, "all= takes 1"),
        ({"bogus": "1"}, "unknown parameter"),
        ({"prefix": "/" + "/".join("d%d" % i for i in range(20))}, "deeper than 16"),
        ({"url": "/nothing-here"}, "not answered by mod_isr"),
        ({"tag": ", ,"}, "names no tag"),
    ])
    def test_950_21_bad_selectors_are_400(self, env, params, want):
        st, a = admin(env, "purge", **params)
        assert st == 400, a
        assert want in a["error"], a

    def test_950_22_unknown_zone_is_404(self, env):
        st, a = admin(env, "purge", all="1", zone="nope")
        assert st == 404 and "nope" in a["error"], a

    def test_950_23_zone_limits_the_operation(self, env):
        st, a = admin(env, "purge", all="1", zone="other")
        assert st == 200 and [z["zone"] for z in a["zones"]] == ["other"], a
        st, a = admin(env, "purge", all="1")
        assert st == 200 and sorted(z["zone"] for z in a["zones"]) == ["default", "other"], a

    def test_950_24_cross_site_refused(self, env):
        r = env.post("/isr-admin/purge", body=b"all=1",
                     headers={"Origin": "http://evil.example"})
        assert r.status == 403, r
        r = env.post("/isr-admin/purge", body=b"all=1",
                     headers={"Sec-Fetch-Site": "cross-site"})
        assert r.status == 403, r
        # The same site's page may (the status page's buttons).
        r = env.post("/isr-admin/purge", body=b"all=1",
                     headers={"Origin": "http://127.0.0.1:%d" % env.port,
                              "Sec-Fetch-Site": "same-origin"})
        assert r.status == 200, r

    def test_950_25_unknown_operation_404(self, env):
        r = env.request("/isr-admin/flush", method="POST")
        assert r.status == 404, r


class TestAcrossChildren:
    """prefork, several children: a purge made in one child holds in every other."""
    MPM = "prefork"
    MPM_CONF = {"StartServers": 4, "MinSpareServers": 4, "MaxSpareServers": 8}
    CONF = ADMIN + """
<Location /app/>
    ISRBackend @ORIGIN@/
    ISRCacheTTL 1h
</Location>
"""

    def test_950_30_purge_by_tag_in_every_child(self, env, origin):
        env.wait_children(4)
        for i in range(6):
            tagged(origin, "/c%d" % i, "even" if i % 2 == 0 else "odd")
            assert env.get("/app/c%d" % i).isr == "MISS"
        mark = len(env.access_lines())
        st, a = admin(env, "purge", tag="even")
        assert st == 200, a
        # Each request on its own connection: several children answer them.
        seen = [env.get("/app/c%d" % (i % 6)).isr for i in range(24)]
        want = ["MISS" if i % 2 == 0 else "HIT" for i in range(6)]
        assert seen[:6] == want, seen
        assert set(seen[6:]) == {"HIT"}, seen
        lines = env.access_lines()[mark:]
        purge_pid = [l.split()[1] for l in lines if "/isr-admin/purge" in l][0]
        pids = {l.split()[1] for l in lines if "GET /app/c" in l}
        assert len(pids - {purge_pid}) >= 1, lines
        assert all(origin.count("/c%d" % i) == (2 if i % 2 == 0 else 1) for i in range(6))


class TestTagHeaderDirective:
    CONF = ADMIN + """
<Location /own/>
    ISRBackend @ORIGIN@/
    ISRTagHeader X-Tags
</Location>
<Location /none/>
    ISRBackend @ORIGIN@/
    ISRTagHeader None
</Location>
"""

    def test_950_41_own_header_and_none(self, env, origin):
        origin.set("/h1", header=["X-Tags:k1", "Surrogate-Key:k1"])
        r = env.get("/own/h1")
        assert r.isr == "MISS"
        # Its own tag header is the cache's; Surrogate-Key is just a header here.
        r = env.get("/own/h1")
        assert "X-Tags" not in r.headers and r.headers.get("Surrogate-Key") == "k1", r
        origin.set("/h2", header="Surrogate-Key:k1")
        assert env.get("/none/h2").isr == "MISS"
        assert env.get("/none/h2").headers.get("Surrogate-Key") == "k1"
        st, a = admin(env, "purge", tag="k1")
        assert st == 200, a
        assert env.get("/own/h1").isr == "MISS"
        assert env.get("/none/h2").isr == "HIT"


class TestReports:
    CONF = ADMIN + """
ISRCacheZone second 2M
<Location /app/>
    ISRBackend @ORIGIN@/
    ISRCacheTTL 1s
    ISRStaleTTL 1h
</Location>
"""

    def status(self, env, query=""):
        r = env.get("/isr-admin/status" + query)
        assert r.status == 200, r
        assert r.headers["Content-Type"].startswith("application/json"), r
        return {z["zone"]: z for z in json.loads(r.body)["zones"]}

    def metrics(self, env):
        from prometheus_client.parser import text_string_to_metric_families
        r = env.get("/isr-admin/metrics")
        assert r.status == 200, r
        assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4"), r
        fams = {}
        for f in text_string_to_metric_families(r.body.decode()):
            fams[f.name] = f
        return fams

    def test_950_50_status_counts_what_happened(self, env, origin):
        before = self.status(env)["default"]
        mark = len(env.access_lines())
        assert env.get("/app/m1").isr == "MISS"
        assert env.get("/app/m1").isr == "HIT"
        time.sleep(1.2)
        assert env.get("/app/m1").isr == "STALE"
        env.wait_status("/app/m1", lambda x: x.isr == "HIT" and x.body == b"/m1|v=2", deadline=8)
        st, a = admin(env, "purge", tag="nothing")
        assert st == 200, a
        after = self.status(env)
        z = after["default"]
        # Every answer the access log shows is counted once, under its label.
        labels = [l.rsplit("isr=", 1)[1] for l in env.access_lines()[mark:] if "/app/m1" in l]
        assert z["misses"] - before["misses"] == labels.count("MISS") == 1, (labels, z)
        assert z["hits"] - before["hits"] == labels.count("HIT"), (labels, before, z)
        assert z["stale_hits"] - before["stale_hits"] == labels.count("STALE") >= 1, labels
        refreshes = z["refreshes_started"] - before["refreshes_started"]
        assert refreshes >= 1, (before, z)
        assert z["refreshes_succeeded"] - before["refreshes_succeeded"] == refreshes, (before, z)
        assert z["refreshes_failed"] == before["refreshes_failed"]
        assert z["fetches"] - before["fetches"] == origin.count("/m1") == 1 + refreshes, z
        assert z["last_seq"] == seq_of(a) and z["purge_operations"] >= 1, (a, z)
        assert z["entries"] >= 1 and z["bytes_used"] > 0, z
        assert z["bytes_used"] + z["bytes_free"] == z["bytes_size"], z
        assert set(after) == {"default", "second"}, after
        assert self.status(env, "?zone=second").keys() == {"second"}
        r = env.get("/isr-admin/status?zone=nope")
        assert r.status == 404, r

    def test_950_51_metrics_parse_and_agree(self, env, origin):
        origin.set("/m2", delay=0.03)
        assert env.get("/app/m2").isr == "MISS"
        assert env.get("/app/m3").isr == "MISS"
        fams = self.metrics(env)
        z = self.status(env)["default"]

        def sample(fam, name, **labels):
            got = [s.value for s in fams[fam].samples
                   if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())]
            assert len(got) == 1, (fam, name, labels, fams[fam].samples)
            return got[0]

        assert fams["isr_hits"].type == "counter", fams["isr_hits"]
        assert sample("isr_hits", "isr_hits_total", zone="default") == z["hits"]
        assert sample("isr_misses", "isr_misses_total", zone="default") == z["misses"]
        assert sample("isr_misses", "isr_misses_total", zone="second") == 0
        assert fams["isr_entries"].type == "gauge"
        assert sample("isr_entries", "isr_entries", zone="default") == z["entries"]
        assert sample("isr_last_operation_seq", "isr_last_operation_seq",
                      zone="default") == z["last_seq"]
        h = fams["isr_backend_fetch_duration_seconds"]
        assert h.type == "histogram", h
        buckets = sorted(((float(s.labels["le"]), s.value) for s in h.samples
                          if s.name.endswith("_bucket") and s.labels["zone"] == "default"))
        assert buckets[-1][0] == float("inf")
        values = [v for _, v in buckets]
        assert values == sorted(values), buckets
        count = sample("isr_backend_fetch_duration_seconds",
                       "isr_backend_fetch_duration_seconds_count", zone="default")
        assert count == buckets[-1][1] == z["fetches"] >= 2, (count, buckets, z)
        # The 30 ms fetch is above the 25 ms bucket's bound.
        le25 = [v for le, v in buckets if le == 0.025][0]
        assert le25 < count, buckets
        total = sample("isr_backend_fetch_duration_seconds",
                       "isr_backend_fetch_duration_seconds_sum", zone="default")
        assert total >= 0.03, total

    def test_950_52_reports_take_get(self, env):
        r = env.post("/isr-admin/status", body=b"")
        assert r.status == 405 and "GET" in r.headers.get("Allow", ""), r
        r = env.post("/isr-admin/metrics", body=b"")
        assert r.status == 405, r

    def entries(self, env, query=""):
        r = env.get("/isr-admin/entries" + query)
        assert r.status == 200, r
        return json.loads(r.body)

    def test_950_53_entries_listing_and_purge_by_listed_key(self, env, origin):
        tagged(origin, "/list/e1", "red, blue")
        assert env.get("/app/list/e1").isr == "MISS"
        assert env.get("/app/list/e2").isr == "MISS"
        got = self.entries(env, "?prefix=/app/list")
        assert got["count"] == 2 and not got["truncated"], got
        e1 = [e for e in got["entries"] if e["path"] == "/app/list/e1"][0]
        assert e1["state"] == "fresh" and e1["zone"] == "default", e1
        assert sorted(e1["tags"]) == ["blue", "red"] and e1["more_tags"] is False, e1
        assert e1["url"].endswith("/list/e1") and e1["status"] == 200, e1
        assert e1["body_bytes"] == len(b"/list/e1|v=1") and e1["age"] >= 0, e1
        one = self.entries(env, "?prefix=/app/list&limit=1")
        assert one["count"] == 1 and one["truncated"] is True, one
        # The listed key, sent back as it was listed (NUL bytes as %00), purges that entry.
        body = urllib.parse.urlencode({"key": e1["key"]}, encoding="latin-1").encode()
        r = env.post("/isr-admin/purge", body=body)
        assert r.status == 200, r
        matched = {z["zone"]: z["matched"] for z in json.loads(r.body)["zones"]}
        assert matched == {"default": 1, "second": 0}, r
        assert env.get("/app/list/e1").isr == "MISS"
        assert env.get("/app/list/e2").isr == "HIT"
        time.sleep(1.2)
        stale = self.entries(env, "?prefix=/app/list/e2&state=stale")
        assert [e["path"] for e in stale["entries"]] == ["/app/list/e2"], stale
        assert self.entries(env, "?prefix=/app/list/e2&state=fresh")["count"] == 0

    @pytest.mark.parametrize("query", ["?state=bogus", "?limit=0", "?limit=x", "?prefix=rel",
                                       "?zone=nope"])
    def test_950_54_entries_refusals(self, env, query):
        r = env.get("/isr-admin/entries" + query)
        assert r.status in (400, 404), r
        assert "error" in json.loads(r.body), r
