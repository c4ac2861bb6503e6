"""Access control runs before mod_isr answers: a denied request neither reaches the backend
nor gets a cached entry."""

import pytest

pytestmark = pytest.mark.expect_log("AH01630")  # authz_core: client denied by server config


class TestAccess:
    CONF = """
<Location /open/>
    ISRBackend @ORIGIN@/
</Location>
<Location /closed/>
    ISRBackend @ORIGIN@/
    Require all denied
</Location>
<Location /onlyfar/>
    ISRBackend @ORIGIN@/
    Require ip 192.0.2.1
</Location>
"""

    def test_035_01_denied_not_fetched(self, env, origin):
        r = env.get("/closed/a")
        assert r.status == 403, r
        assert "X-ISR-Status" not in r.headers, r
        r = env.get("/onlyfar/a")
        assert r.status == 403, r
        assert origin.total() == 0

    def test_035_02_denied_not_served_from_cache(self, env, origin):
        # same backend URL, so the same key: cached through /open/, still denied elsewhere
        r = env.get("/open/b")
        assert (r.status, r.body) == (200, b"/b|v=1"), r
        for p in ("/closed/b", "/onlyfar/b"):
            r = env.get(p)
            assert r.status == 403, r
            assert b"/b|v=1" not in r.body, r
            r = env.head(p)
            assert r.status == 403, r
        assert origin.count("/b") == 1
