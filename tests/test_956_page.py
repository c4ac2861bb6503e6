"""Issue 11, the live status page (GET <admin>/) in a real headless Chromium, driven over the
DevTools protocol: the page loads with no external asset and no script error, its numbers move
under traffic, and its purge button purges."""

import base64
import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.request

import pytest

import isr_env

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

try:
    import websocket  # python3-websocket
except ImportError:  # pragma: no cover
    websocket = None

SHOT = os.environ.get("ISR_PAGE_SCREENSHOT")  # where to keep a screenshot (README's)


class Browser:
    """One headless Chromium with a DevTools websocket on a page target."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="isr-chromium-")
        self.port = isr_env.free_port()
        self.proc = subprocess.Popen(
            [CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu",
             "--disable-dev-shm-usage", "--no-first-run", "--no-default-browser-check",
             "--remote-debugging-address=127.0.0.1",
             "--remote-debugging-port=%d" % self.port, "--user-data-dir=" + self.dir,
             "--window-size=1200,900", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.ws = None
        self.seq = 0
        self.events = []
        targets = None
        end = time.monotonic() + 30
        while time.monotonic() < end and targets is None:
            try:
                with urllib.request.urlopen("http://127.0.0.1:%d/json/list" % self.port,
                                            timeout=2) as r:
                    targets = [t for t in json.load(r) if t.get("type") == "page"]
            except OSError:
                time.sleep(0.2)
        if not targets:
            self.close()
            raise RuntimeError("chromium's DevTools did not come up")
        self.ws = websocket.create_connection(targets[0]["webSocketDebuggerUrl"], timeout=20,
                                              suppress_origin=True)
        self.call("Runtime.enable")
        self.call("Log.enable")

    def call(self, method, **params):
        self.seq += 1
        self.ws.send(json.dumps({"id": self.seq, "method": method, "params": params}))
        while True:
            m = json.loads(self.ws.recv())
            if m.get("id") == self.seq:
                if "error" in m:
                    raise RuntimeError("%s: %s" % (method, m["error"]))
                return m.get("result", {})
            self.events.append(m)

    def eval(self, expr):
        r = self.call("Runtime.evaluate", expression=expr, returnByValue=True,
                      awaitPromise=True)
        if "exceptionDetails" in r:
            raise RuntimeError("%s: %s" % (expr, r["exceptionDetails"]))
        return r["result"].get("value")

    def wait(self, expr, deadline=15.0):
        end = time.monotonic() + deadline
        while True:
            v = self.eval(expr)
            if v:
                return v
            if time.monotonic() >= end:
                return v
            time.sleep(0.1)

    def errors(self):
        out = []
        for m in self.events:
            if m.get("method") == "Runtime.exceptionThrown":
                out.append(m["params"]["exceptionDetails"].get("text"))
            if m.get("method") == "Log.entryAdded" and m["params"]["entry"]["level"] == "error":
                out.append(m["params"]["entry"].get("text"))
            if m.get("method") == "Runtime.consoleAPICalled" and m["params"]["type"] == "error":
                out.append(str(m["params"]["args"]))
        return out

    def close(self):
        if self.ws:
            try:
                self.ws.close()
            except OSError:
                pass
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def browser():
    if not CHROMIUM or websocket is None:
        pytest.skip("needs chromium and python3-websocket (make test installs them)")
    b = Browser()
    yield b
    b.close()


def cell(b, zone, col):
    return b.eval("(()=>{const r=document.querySelector('#zones tr[data-zone=\"%s\"]');"
                  "return r?r.children[%d].textContent:null})()" % (zone, col))


class TestStatusPage:
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

    def test_956_01_page_headers(self, env):
        r = env.get("/isr-admin/")
        assert r.status == 200 and r.headers["Content-Type"].startswith("text/html"), r
        csp = r.headers["Content-Security-Policy"]
        assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp, csp
        assert r.headers["X-Frame-Options"] == "DENY"
        # No external asset: nothing the page loads names another origin.
        assert b"http://" not in r.body and b"https://" not in r.body and b"//cdn" not in r.body

    def test_956_02_loads_moves_and_purges(self, env, origin, browser):
        for p in ("/pg1", "/pg2"):
            assert env.get("/app" + p).isr == "MISS"
        browser.call("Page.enable")
        browser.call("Page.navigate", url="http://127.0.0.1:%d/isr-admin/" % env.port)
        # While the navigation is under way the old document (no body) may still answer.
        assert browser.wait("!!document.body && +document.body.dataset.polls>=1"), \
            browser.errors()
        hits0 = int(cell(browser, "default", 3))
        for _ in range(25):
            assert env.get("/app/pg1").isr == "HIT"
        # The numbers move: the page polls every second.
        assert browser.wait("+document.querySelector('#zones tr[data-zone=\"default\"]')"
                            ".children[3].textContent>=%d" % (hits0 + 25)), \
            (hits0, cell(browser, "default", 3))
        assert browser.wait("+document.body.dataset.listed>=1")
        assert browser.wait("!!document.querySelector('#entries tr[data-path=\"/app/pg2\"]')")
        # The purge button of /app/pg2's row purges that entry, and only it.
        browser.eval("document.querySelector('#entries tr[data-path=\"/app/pg2\"] "
                     "button[data-op=\"purge\"]').click()")
        assert browser.wait("document.querySelector('#msg').textContent.startsWith("
                            "'purge key')"), browser.eval("document.querySelector('#msg')"
                                                          ".textContent")
        r = env.get("/app/pg2")
        assert (r.isr, r.body) == ("MISS", b"/pg2|v=2"), r
        assert env.get("/app/pg1").isr == "HIT"
        assert browser.errors() == [], browser.errors()
        # The button's POST came from the page (same origin): the CSRF check let it in.
        assert env.wait_access(r'POST /isr-admin/purge HTTP/1.1" isr=-')
        if SHOT:
            # README's picture: a few seconds of traffic, so the hit ratio has a line.
            polls = browser.eval("+document.body.dataset.polls")
            for i in range(4):
                for j in range(30):
                    env.get("/app/pg%d" % (1 + j % 2) if j % 7 else "/app/new%d-%d" % (i, j))
                time.sleep(1.0)
            browser.wait("+document.body.dataset.polls>=%d" % (polls + 4))
            shot = browser.call("Page.captureScreenshot", format="png")
            with open(SHOT, "wb") as f:
                f.write(base64.b64decode(shot["data"]))
