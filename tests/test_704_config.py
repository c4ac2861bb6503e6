"""Issue 7: the new and tightened directives at `apache2 -t` (ISRForwardHeader, ISRCacheStatus,
ISRRelayTimeout, ISRMaxObjectSize's 256M limit, ISRBackend "expr=" with a host taken from
request data, the isr_urlencode function). Bad values fail with a message naming the directive
(and the value); a directive that does not exist at all ("Invalid command") does not count."""

import pytest

LOC = """
<Location /app/>
    ISRBackend @ORIGIN@/
%s
</Location>
"""

EXPR = """
<Location /app/>
    ISRBackend "%s"
</Location>
"""

# (id, location-level lines, directive, value expected in the message)
BAD = [
    ("forward-header-space", 'ISRForwardHeader "X Bad"', "ISRForwardHeader", "X Bad"),
    ("forward-header-colon", "ISRForwardHeader X:Y", "ISRForwardHeader", "X:Y"),
    ("forward-header-none", "ISRForwardHeader", "ISRForwardHeader", None),
    ("cache-status-500", "ISRCacheStatus 500", "ISRCacheStatus", "500"),
    ("cache-status-word", "ISRCacheStatus abc", "ISRCacheStatus", "abc"),
    ("cache-status-99", "ISRCacheStatus 99", "ISRCacheStatus", "99"),
    ("cache-status-second", "ISRCacheStatus 200 abc", "ISRCacheStatus", "abc"),
    ("relay-timeout-word", "ISRRelayTimeout abc", "ISRRelayTimeout", "abc"),
    ("relay-timeout-unit", "ISRRelayTimeout 5x", "ISRRelayTimeout", "5x"),
    ("max-object-300M", "ISRMaxObjectSize 300M", "ISRMaxObjectSize", "300M"),
]

# ISRBackend templates whose host comes from request data
BAD_EXPR = [
    ("host-from-host-header", "expr=http://%{HTTP_HOST}/x"),
    ("url-from-header", "expr=%{HTTP:X-Target}"),
    ("host-part-from-header", "expr=http://%{HTTP:X-T}.internal/"),
]

GOOD = [
    ("forward-header", "ISRForwardHeader Accept-Language X-Device"),
    ("cache-status", "ISRCacheStatus 200 302"),
    ("cache-status-default-list", "ISRCacheStatus 200 203 204 300 301 308 404 405 410 414 501"),
    ("relay-timeout", "ISRRelayTimeout 4s"),
    ("relay-timeout-minutes", "ISRRelayTimeout 5m"),
    ("max-object-256M", "ISRCache big\n ISRMaxObjectSize 256M"),
]

GOOD_EXPR = [
    ("literal-host", "expr=http://@ORIGIN_HOSTPORT@%{REQUEST_URI}"),
    ("isr-urlencode", "expr=@ORIGIN@/render?path=%{isr_urlencode:%{REQUEST_URI}}"),
]


def _subst(text, origin):
    return text.replace("@ORIGIN_HOSTPORT@", origin.hostport).replace("@ORIGIN@", origin.url)


def _refused(env, body, directive, value):
    rc, out = env.configtest(body)
    assert rc != 0, "config accepted:\n%s\n%s" % (body, out)
    assert "Invalid command" not in out, out
    assert directive in out, out
    if value is not None:
        assert value in out, out
    assert "Syntax OK" not in out, out


class TestTrustConfig:
    START = False
    CONF = ""

    @pytest.mark.parametrize("loc,directive,value", [b[1:] for b in BAD], ids=[b[0] for b in BAD])
    def test_704_01_bad(self, env, origin, loc, directive, value):
        _refused(env, _subst(LOC, origin) % loc, directive, value)

    @pytest.mark.parametrize("template", [b[1] for b in BAD_EXPR], ids=[b[0] for b in BAD_EXPR])
    def test_704_02_backend_host_from_request_refused(self, env, origin, template):
        _refused(env, EXPR % template, "ISRBackend", None)

    @pytest.mark.parametrize("loc", [g[1] for g in GOOD], ids=[g[0] for g in GOOD])
    def test_704_03_good(self, env, origin, loc):
        body = "ISRCacheZone big 1G\n" + _subst(LOC, origin) % loc
        rc, out = env.configtest(body)
        assert rc == 0, "config refused:\n%s\n%s" % (body, out)
        assert "Syntax OK" in out, out

    @pytest.mark.parametrize("template", [g[1] for g in GOOD_EXPR], ids=[g[0] for g in GOOD_EXPR])
    def test_704_04_good_expr(self, env, origin, template):
        body = EXPR % _subst(template, origin)
        rc, out = env.configtest(body)
        assert rc == 0, "config refused:\n%s\n%s" % (body, out)
        assert "Syntax OK" in out, out
