"""The origin knobs the 70x suites use (echo, rawhdr, trailer, empty, ctype, parts, close,
/__history), checked on the wire without httpd, so that a broken knob is not mistaken for a
module bug."""

import socket
import time

import pytest

from origin import b64, echoed, unb64

pytestmark = pytest.mark.no_isr


def raw_get(origin, path, extra=b""):
    s = socket.create_connection(("127.0.0.1", origin.port), timeout=10)
    try:
        s.sendall(b"GET %s HTTP/1.1\r\nHost: o.test\r\nConnection: close\r\n%s\r\n"
                  % (path.encode(), extra))
        data = b""
        while True:
            d = s.recv(65536)
            if not d:
                return data
            data += d
    finally:
        s.close()


def test_705_01_echo(origin):
    origin.set("/k/echo", echo=["X-A,X-Missing", "X-B"])
    data = raw_get(origin, "/k/echo", b"X-A: one\r\nX-B: 2\r\nX-B: 3\r\n")
    body = data.split(b"\r\n\r\n", 1)[1]
    assert body == b"/k/echo|v=1|X-A=one|X-Missing|X-B=2, 3", data
    assert echoed(body) == {"x-a": "one", "x-missing": None, "x-b": "2, 3"}


def test_705_02_rawhdr_ctype_close(origin):
    raw = b"Cache-Control: public,\r\n private\r\nX Bad: a\rb\x01\r\n"
    assert unb64(b64(raw)) == raw
    origin.set("/k/raw", rawhdr=b64(raw), ctype="none", close=1)
    data = raw_get(origin, "/k/raw")
    head, body = data.split(b"\r\n\r\n", 1)
    assert head.endswith(b"\r\n" + raw[:-2]), head
    assert b"Content-Type" not in head and b"Connection: close\r\n" in head, head
    assert body == b"/k/raw|v=1"


def test_705_03_trailer_and_empty_chunked(origin):
    t = b"Set-Cookie: t=1\r\n"
    origin.set("/k/tr0", trailer=b64(t), empty=1)
    data = raw_get(origin, "/k/tr0")
    assert b"Transfer-Encoding: chunked\r\n" in data
    assert data.endswith(b"\r\n\r\n0\r\n" + t + b"\r\n"), data
    origin.set("/k/tr", trailer=b64(t))
    data = raw_get(origin, "/k/tr")
    assert data.endswith(b"\r\n0\r\n" + t + b"\r\n"), data
    assert b"/k/tr|v=1" not in data  # the body is in chunks


def test_705_04_trickle_parts_and_history(origin):
    origin.set("/k/drip", size=40, trickle=0.8, parts=4)
    t0 = time.monotonic()
    data = raw_get(origin, "/k/drip", b"X-H: a\r\n")
    assert time.monotonic() - t0 >= 0.6
    assert data.endswith(b"/k/drip|v=1" + b"x" * 29), data
    raw_get(origin, "/k/drip")
    hist = origin.history("/k/drip")
    assert [h["headers"].get("X-H") for h in hist] == ["a", None], hist
