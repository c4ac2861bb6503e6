"""Fixtures for the mod_isr suites.

A test class describes its server with class attributes; the class-scoped ``env`` fixture
installs that config and starts httpd once per class (as mod_h2's ``_class_scope`` does):

    class TestX:
        MPM = "prefork"                 # event (default), worker, prefork
        MPM_CONF = {"StartServers": 4}  # overrides of isr_env.HttpdEnv.MPM_DEFAULTS
        FILES = {"htdocs/s/page.html": "STATIC\\n"}
        CONF = '''<Location /app/> ISRBackend @ORIGIN@/ ... </Location>'''

Placeholders in CONF and FILES: @ORIGIN@ (http://127.0.0.1:PORT), @ORIGIN_HOSTPORT@,
@UNIX@ (path of the Unix-socket origin), @TLS@ (https origin URL), @TLSCA@ (its certificate),
@CERT@ and @KEY@ (a certificate and key for httpd's own TLS; env.tls_ca is the certificate),
@ROOT@ (ServerRoot), @PORT@ (httpd port).

After every test the error logs of all servers are checked: lines at warn and above (and
crashed children, and unformatted stderr lines) fail the test unless the test declared them,
with ``isr_env.expect_log("ISR0012", "some substring", r"regex")`` or
``@pytest.mark.expect_log(...)``.
"""

import os
import tempfile

import pytest

import isr_env
from isr_env import HttpdEnv
from origin import Origin


def pytest_configure(config):
    config.addinivalue_line("markers", "expect_log(*patterns): log lines the test expects")
    config.addinivalue_line("markers", "no_isr: test does not need mod_isr.so")


# ---------------------------------------------------------------------------------- origins

@pytest.fixture(scope="session")
def origin():
    o = Origin().start()
    yield o
    o.stop()


@pytest.fixture(scope="session")
def unix_origin():
    d = tempfile.mkdtemp(prefix="isr-unix-")
    os.chmod(d, 0o755)
    o = Origin(unix=os.path.join(d, "origin.sock")).start()
    yield o
    o.stop()
    try:
        os.rmdir(d)
    except OSError:
        pass


@pytest.fixture(scope="session")
def tls_origin():
    """An https origin with a self-signed certificate for 127.0.0.1 (the CA file is .tls[0])."""
    import shutil
    import subprocess
    d = tempfile.mkdtemp(prefix="isr-tls-")
    os.chmod(d, 0o755)
    cert, key = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
    p = subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                        "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                        "-keyout", key, "-out", cert],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
    if p.returncode != 0:
        pytest.skip("openssl cannot make a test certificate: %s" % p.stdout[-500:])
    os.chmod(cert, 0o644)
    o = Origin(tls=(cert, key)).start()
    yield o
    o.stop()
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="session")
def server_cert():
    """A self-signed certificate and key for 127.0.0.1, for servers that speak TLS themselves
    (@CERT@ and @KEY@ in CONF; the env's tls_ca is the certificate)."""
    import shutil
    import subprocess
    if not (shutil.which("openssl") and os.path.isfile(os.path.join(isr_env.MODULES_DIR,
                                                                    "mod_ssl.so"))):
        pytest.skip("needs openssl and mod_ssl")
    d = tempfile.mkdtemp(prefix="isr-srvtls-")
    os.chmod(d, 0o755)
    cert, key = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
    p = subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                        "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                        "-addext", "basicConstraints=critical,CA:FALSE",
                        "-keyout", key, "-out", cert],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
    if p.returncode != 0:
        pytest.skip("openssl cannot make a certificate: %s" % p.stdout[-500:])
    os.chmod(cert, 0o644)
    os.chmod(key, 0o644)
    yield cert, key
    shutil.rmtree(d, ignore_errors=True)


def substitute(text, env, origin, unix_origin=None, tls_origin=None, cert=None):
    if cert is not None:
        text = text.replace("@CERT@", cert[0]).replace("@KEY@", cert[1])
    text = (text.replace("@ORIGIN@", origin.url)
                .replace("@ORIGIN_HOSTPORT@", origin.hostport)
                .replace("@ROOT@", env.root)
                .replace("@PORT@", str(env.port)))
    if unix_origin is not None:
        text = text.replace("@UNIX@", unix_origin.unix)
    if tls_origin is not None:
        text = text.replace("@TLSCA@", tls_origin.tls[0]).replace("@TLS@", tls_origin.url)
    return text


def make_env(request, origin, name, mpm="event", mpm_conf=None, conf="", files=None,
             load_isr=True):
    if load_isr and not isr_env.module_available():
        pytest.skip("mod_isr.so not built (%s)" % isr_env.MODULE_PATH)
    uo = request.getfixturevalue("unix_origin") if "@UNIX@" in conf else None
    to = request.getfixturevalue("tls_origin") if "@TLS" in conf else None
    sc = request.getfixturevalue("server_cert") if "@CERT@" in conf else None
    e = HttpdEnv(name=name, mpm=mpm, mpm_conf=mpm_conf, load_isr=load_isr)
    e.tls_ca = sc[0] if sc else None
    for rel, content in (files or {}).items():
        e.write_file(rel, substitute(content, e, origin, uo, to, sc))
    e.write_config(substitute(conf, e, origin, uo, to, sc))
    return e


def start_checked(e, expected=()):
    e.start()
    bad = e.unexpected_lines(0, patterns=list(expected))
    if bad:
        dump = e.log_dump()
        e.stop()
        pytest.fail("unexpected error log lines at startup:\n%s\n%s" % ("\n".join(bad), dump))
    e._checked = e.log_mark()


@pytest.fixture(scope="class")
def env(request, origin):
    cls = request.cls
    e = make_env(request, origin, name=getattr(cls, "__name__", "isr"),
                 mpm=getattr(cls, "MPM", "event"), mpm_conf=getattr(cls, "MPM_CONF", None),
                 conf=getattr(cls, "CONF", ""), files=getattr(cls, "FILES", None),
                 load_isr=getattr(cls, "LOAD_ISR", True))
    if getattr(cls, "START", True):
        try:
            start_checked(e, getattr(cls, "EXPECT_LOG_START", ()))
        except BaseException:
            e.cleanup()
            raise
    yield e
    since = getattr(e, "_checked", 0)
    try:
        e.stop()
    finally:
        bad = e.unexpected_lines(since, patterns=list(getattr(cls, "EXPECT_LOG_STOP", ())))
        dump = e.log_dump(since)
        e.cleanup()
    if bad:
        pytest.fail("unexpected error log lines at shutdown:\n%s\n%s" % ("\n".join(bad), dump))


@pytest.fixture()
def env_factory(request, origin):
    """For tests that need their own server (e.g. parametrized over MPMs)."""
    made = []

    def factory(name, **kw):
        e = make_env(request, origin, name, **kw)
        made.append(e)
        return e

    yield factory
    for e in made:
        e.cleanup()


# ---------------------------------------------------------------------------------- per test

@pytest.fixture(autouse=True)
def _per_test(request, origin):
    isr_env.clear_expected()
    m = request.node.get_closest_marker("expect_log")
    if m:
        isr_env.expect_log(*m.args)
    origin.reset()
    request.node._isr_marks = {id(e): e.log_mark() for e in isr_env.ALL_ENVS}
    yield
    isr_env.clear_expected()


@pytest.hookimpl(trylast=True)
def pytest_runtest_call(item):
    """After the test body passed: unexpected warn/error lines in any server's log fail it."""
    marks = getattr(item, "_isr_marks", {})
    problems = []
    for e in list(isr_env.ALL_ENVS):
        since = marks.get(id(e), 0)
        bad = e.unexpected_lines(since)
        e._checked = e.log_mark()
        if bad:
            problems.append("%s: unexpected lines:\n%s\n%s"
                            % (e.name, "\n".join(bad), e.log_dump(since)))
    if problems:
        pytest.fail("error log check failed (declare expected lines with "
                    "isr_env.expect_log):\n" + "\n".join(problems), pytrace=False)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A failed test shows the error log of every server since the test began."""
    outcome = yield
    rep = outcome.get_result()
    if rep.when == "call" and rep.failed:
        marks = getattr(item, "_isr_marks", {})
        for e in list(isr_env.ALL_ENVS):
            rep.sections.append(("error_log %s" % e.name,
                                 e.log_dump(marks.get(id(e), 0), limit=100)))
