"""Every directive is checked at `apache2 -t`: bad values fail with a message that names the
directive and the value; good values pass."""

import pytest

LOC = """
<Location /app/>
    ISRBackend @ORIGIN@/
%s
</Location>
"""

# (id, server-level lines, location-level lines, directive, value expected in the message)
BAD = [
    ("ttl-garbage", "", "ISRCacheTTL abc", "ISRCacheTTL", "abc"),
    ("tag-header-name", "", "ISRTagHeader Bad:Name", "ISRTagHeader", "Bad:Name"),
    ("refresh-ahead-big", "", "ISRRefreshAhead 95%", "ISRRefreshAhead", "95%"),
    ("refresh-ahead-word", "", "ISRRefreshAhead soon", "ISRRefreshAhead", "soon"),
    ("refresh-ahead-no-pct", "", "ISRRefreshAhead 10", "ISRRefreshAhead", "10"),
    ("tag-header-none-mixed", "", "ISRTagHeader X-Tags None", "ISRTagHeader", "None"),
    ("ttl-unit", "", "ISRCacheTTL 5x", "ISRCacheTTL", "5x"),
    ("ttl-negative", "", "ISRCacheTTL -5", "ISRCacheTTL", "-5"),
    ("stale-garbage", "", "ISRStaleTTL 1hour", "ISRStaleTTL", "1hour"),
    ("timeout", "", "ISRTimeout 10parsecs", "ISRTimeout", "10parsecs"),
    ("connect-timeout", "", "ISRConnectTimeout x1", "ISRConnectTimeout", "x1"),
    ("refresh-retry", "", "ISRRefreshRetry 1y", "ISRRefreshRetry", "1y"),
    ("size-unit", "", "ISRMaxObjectSize 12Q", "ISRMaxObjectSize", "12Q"),
    ("size-garbage", "", "ISRMaxObjectSize lots", "ISRMaxObjectSize", "lots"),
    ("zone-too-big", "ISRCacheZone big 100G", "", "ISRCacheZone", "100G"),
    ("zone-too-small", "ISRCacheZone tiny 512K", "", "ISRCacheZone", "512K"),
    ("zone-garbage", "ISRCacheZone z lots", "", "ISRCacheZone", "lots"),
    ("zone-65G", "ISRCacheZone z 65G", "", "ISRCacheZone", "65G"),
    ("zone-0", "ISRCacheZone z 0", "", "ISRCacheZone", None),
    ("zone-no-size", "ISRCacheZone z", "", "ISRCacheZone", "NAME SIZE"),
    ("zone-option", "ISRCacheZone z 2M persistence=/tmp/isr-z.zone", "", "ISRCacheZone",
     "persistence=/tmp/isr-z.zone"),
    ("zone-third-arg", "ISRCacheZone z 2M 4M", "", "ISRCacheZone", "'4M'"),
    ("zone-persist-empty", "ISRCacheZone z 2M persist=", "", "ISRCacheZone", "persist="),
    ("zone-persist-directory", "ISRCacheZone z 2M persist=/tmp", "", "ISRCacheZone",
     "persist=/tmp' is a directory"),
    ("zone-persist-twice", "ISRCacheZone z 2M persist=/tmp/isr-a.zone persist=/tmp/isr-b.zone",
     "", "ISRCacheZone", "persist=/tmp/isr-b.zone"),
    ("zone-persist-every-ms", "ISRCacheZone z 2M persist=/tmp/isr-z.zone persist_every=500ms",
     "", "ISRCacheZone", "persist_every=500ms"),
    ("zone-persist-every-word", "ISRCacheZone z 2M persist=/tmp/isr-z.zone persist_every=often",
     "", "ISRCacheZone", "persist_every=often"),
    ("zone-persist-every-alone", "ISRCacheZone z 2M persist_every=10s", "", "ISRCacheZone",
     "persist_every=10s"),
    ("zone-persist-same-file", "ISRCacheZone a 2M persist=/tmp/isr-same.zone\n"
     "ISRCacheZone b 2M persist=/tmp/isr-same.zone", "", "ISRCacheZone", "/tmp/isr-same.zone"),
    ("apply-unknown", "", "ISRApply bogus", "ISRApply", "bogus"),
    ("apply-env-empty", "", "ISRApply env=", "ISRApply", "env="),
    ("onerror-200", "", "ISROnError 200", "ISROnError", "200"),
    ("onerror-600", "", "ISROnError 600", "ISROnError", "600"),
    ("onerror-399", "", "ISROnError 399", "ISROnError", "399"),
    ("onerror-word", "", "ISROnError maybe", "ISROnError", "maybe"),
    ("backend-ftp", "", "ISRBackend ftp://127.0.0.1/", "ISRBackend", "ftp://127.0.0.1/"),
    ("backend-expr", "", 'ISRBackend "expr=http://127.0.0.1/%{REQUEST_URI"', "ISRBackend",
     None),
    ("cachekey-expr", "", 'ISRCacheKey "%{REQUEST_URI"', "ISRCacheKey", None),
    ("ca-missing", "", "ISRBackendCA /nonexistent/isr-ca.pem", "ISRBackendCA",
     "/nonexistent/isr-ca.pem"),
    ("undefined-zone", "", "ISRCache nosuchzone", "ISRCache", "nosuchzone"),
    ("threads-0", "ISRRefreshThreads 0", "", "ISRRefreshThreads", "0"),
    ("threads-257", "ISRRefreshThreads 257", "", "ISRRefreshThreads", "257"),
    ("threads-word", "ISRRefreshThreads four", "", "ISRRefreshThreads", "four"),
    ("isr-flag", "", "ISR Maybe", "ISR", None),
    ("zone-in-location", "", "ISRCacheZone inloc 2M", "ISRCacheZone", None),
    ("local-copies-2G", "ISRLocalCopySize 2G", "", "ISRLocalCopySize", "2G"),
    ("local-copies-word", "ISRLocalCopySize some", "", "ISRLocalCopySize", "some"),
    ("local-copies-in-location", "", "ISRLocalCopySize 1M", "ISRLocalCopySize", None),
    ("quick-flag", "", "ISRQuickHandler sometimes", "ISRQuickHandler", None),
    ("threads-in-location", "", "ISRRefreshThreads 2", "ISRRefreshThreads", None),
]

GOOD = [
    ("durations", "", "ISRCacheTTL 5\n ISRStaleTTL 0\n ISRTimeout 1500ms\n"
                      " ISRConnectTimeout 2s\n ISRRefreshRetry 1m"),
    ("long-durations", "", "ISRCacheTTL 1h\n ISRStaleTTL 2h\n ISRRefreshRetry 10s"),
    ("sizes", "ISRCacheZone a 1M\nISRCacheZone b 512M\nISRCacheZone c 64G\nISRCacheZone d 4096K",
     "ISRCache a\n ISRMaxObjectSize 4096"),
    ("max-object-units", "", "ISRMaxObjectSize 512K"),
    ("zone-persist", "ISRCacheZone a 2M persist=/tmp/isr-a.zone\n"
     "ISRCacheZone b 2M persist=isr-b.zone persist_every=0\n"
     "ISRCacheZone c 2M PERSIST=/tmp/isr-c.zone persist_every=90s", "ISRCache a"),
    ("local-copies", "ISRLocalCopySize 0", "ISRQuickHandler On"),
    ("apply-env", "", "ISRApply env=ISR_BODY"),
    ("apply-header", "", "ISRApply header=X-Isr-Body"),
    ("apply-response", "", "ISRApply response"),
    ("onerror", "", "ISROnError 400"),
    ("onerror-599", "", "ISROnError 599"),
    ("onerror-pass", "", "ISROnError pass"),
    ("threads", "ISRRefreshThreads 1", "ISR On"),
    ("threads-256", "ISRRefreshThreads 256", "ISR Off"),
    ("default-zone", "", "ISRCache default"),
    ("key", "", 'ISRCacheKey "%{REQUEST_URI}|%{HTTP:Accept-Language}"'),
    ("tag-headers", "", "ISRTagHeader X-Tags Surrogate-Key\n ISRTagHeader xkey"),
    ("tag-header-none", "", "ISRTagHeader None"),
    ("refresh-ahead", "", "ISRRefreshAhead 10%"),
    ("refresh-ahead-off", "", "ISRRefreshAhead Off"),
]


class TestConfig:
    START = False
    CONF = ""

    @pytest.mark.parametrize("server,loc,directive,value", [b[1:] for b in BAD],
                             ids=[b[0] for b in BAD])
    def test_200_01_bad(self, env, origin, server, loc, directive, value):
        body = server + "\n" + LOC.replace("@ORIGIN@", origin.url) % loc
        rc, out = env.configtest(body)
        assert rc != 0, "config accepted:\n%s\n%s" % (body, out)
        assert directive in out, out
        if value is not None:
            assert value in out, out
        assert "Syntax OK" not in out, out

    def test_200_02_backend_https_and_unix_accepted(self, env, origin):
        body = """
<Location /a/>
    ISRBackend https://127.0.0.1:8443/
</Location>
<Location /b/>
    ISRBackend "unix:/run/nothing.sock|http://localhost/"
</Location>
<Location /c/>
    ISRBackend "expr=%s/render?path=%%{REQUEST_URI}"
</Location>
""" % origin.url
        rc, out = env.configtest(body)
        assert rc == 0, out

    @pytest.mark.parametrize("server,loc", [g[1:] for g in GOOD], ids=[g[0] for g in GOOD])
    def test_200_03_good(self, env, origin, server, loc):
        body = server + "\n" + LOC.replace("@ORIGIN@", origin.url) % loc
        rc, out = env.configtest(body)
        assert rc == 0, "config refused:\n%s\n%s" % (body, out)
        assert "Syntax OK" in out, out

    def test_200_04_bad_value_stops_the_server(self, env, origin):
        env.write_config(LOC.replace("@ORIGIN@", origin.url) % "ISRCacheTTL soon")
        with pytest.raises(RuntimeError) as ei:
            env.start()
        assert "ISRCacheTTL" in str(ei.value)
        assert not env.port_answers()
