#!/usr/bin/env python3
"""A counting test origin for the mod_isr tests (and the `make run` demo).

Every request for PATH?QUERY answers with the body ``PATH?QUERY|v=N`` where N counts the requests
for that exact path+query (1, 2, 3, ...), so a body tells which key and which version a client got.

Knobs (persistent per path, without query, until changed; ``/__reset`` clears everything):

    /__set?path=/x&status=500&delay=1.5&cookie=1&cc=no-store&size=N&header=Name:Value
          &suffix=TEXT&chunked=1&trickle=SECONDS&parts=N&binary=1&truncate=1
          &echo=Name1,Name2&ctype=TYPE|none&empty=1&close=1&rawhdr=B64&trailer=B64

(size pads the body with 'x' to N bytes; trickle sends the body in `parts` parts (default 10)
over SECONDS; binary appends the bytes 0..255; truncate announces the whole body but sends half
and closes; 204 and 304 are sent without a body.)

    echo=A,B     after ``|v=N`` append ``|A=value`` for each named request header as the origin
                 received it (repeats joined with ", "), or ``|A`` (no '=') when it was absent;
                 names are written as given in the knob; several echo= values add up
    ctype=TYPE   Content-Type of the answer (default text/plain); ctype=none sends none
    empty=1      an empty body (size, suffix, echo, binary are ignored)
    close=1      send ``Connection: close`` and close the connection after the answer
    rawhdr=B64   base64 (standard or URL-safe, padding optional) of raw bytes inserted verbatim
                 after the last header line of the head, before the blank line: include your
                 own CRLFs (obs-fold, bare CR, control bytes, a second Content-Length, ...);
                 several rawhdr= values are inserted in order
    trailer=B64  base64 of raw trailer lines (with their CRLFs) sent after the last chunk;
                 implies chunked=1 (with empty=1: a zero-length chunked body with a trailer)
    early=LINK   send ``103 Early Hints`` with ``Link: LINK`` before the answer
    etag=TAG     send ``ETag: TAG`` (give the quotes: etag="a" or etag=W/"a"), and answer 304
                 without a body when If-None-Match lists TAG (weak comparison) or is ``*``
    lastmod=DATE send ``Last-Modified: DATE`` (an HTTP-date), and answer 304 when there is no
                 If-None-Match and If-Modified-Since is that date or later
    html=N       after the body so far append realistic HTML (tags, attributes, varied words from
                 a PRNG seeded with PATH?QUERY|v=N and seed=) until the body is N bytes; the
                 default Content-Type becomes ``text/html; charset=utf-8`` (ctype= overrides)
    noise=N      append N incompressible bytes (a PRNG seeded like html=), before size= padding
    seed=S       extra seed text for html= and noise= (same S, key and version: same bytes)
    ce=CODING    send the final body encoded, with ``Content-Encoding: CODING``: gzip / x-gzip
                 (Python's gzip, level 1, mtime 0), br (the brotli CLI, quality 1), deflate
                 (zlib stream, level 1), gzip-multi (``Content-Encoding: gzip``, two gzip
                 members of half the body each); the answer also carries
                 ``X-Origin-Encoded-Sha256`` and ``X-Origin-Identity-Sha256`` (hex sha256 of
                 the sent and of the unencoded body) and ``X-Origin-Identity-Length``; an
                 unknown CODING is sent as the header only. Applied last (after size=, empty=)

:func:`b64` makes the value: ``origin.set("/x", rawhdr=b64(b"X-A: 1\\r\\n"))``.
:func:`echoed` reads the echo= fields back from a body as {lower-case name: value or None}.

The same knobs given as query parameters of a request affect that request only
(``/x?delay=0.5&status=404``). Control endpoints are not counted:

    /__count?path=/x[?q]   count for that exact path+query (plain integer)
    /__total               count of all requests
    /__last?path=/x[?q]    JSON {"method":..., "headers": {...}, "header_list": [[n, v], ...],
                           "path":...} of the last request for that path+query (or, without a
                           query, the last for that path with any query); null if none
    /__history?path=/x[?q] JSON list of those records, oldest first (at most 100 per key)
    /__count304?path=/x[?q] how many of those requests were answered 304 by etag=/lastmod=
    /__bytes               body bytes sent in all (what a 304 saves shows here)
    /__received?path=/x[?q] request body bytes read so far by the latest request for that
                           path+query that sent a body (while it is still arriving, too)
    /__reset               clear counts, knobs and history

Request bodies (any method; Content-Length or chunked) are read as they arrive; a record keeps
``body_len``, ``body_sha256``, ``chunked`` and ``body_complete``, and ``body`` (latin-1) only for
bodies up to 64 KiB. Any method is served (PATCH, OPTIONS, extension methods) like GET.

Run standalone: ``python3 tests/origin.py --port 8081`` or ``--unix /path/to.sock``
(add ``--tls-cert CERT --tls-key KEY`` for https).
Tests use :class:`Origin`, which starts this file as a separate process on a free port.
"""

import argparse
import base64
import binascii
import email.utils
import http.client
import json
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

KNOBS = ("status", "delay", "cookie", "cc", "size", "header", "suffix", "chunked", "trickle",
         "binary", "truncate", "echo", "ctype", "empty", "close", "rawhdr", "trailer", "parts",
         "etag", "lastmod", "early", "html", "noise", "seed", "ce")
HISTORY_MAX = 100
BODY_KEEP = 64 * 1024     # request bodies up to this are kept in the history as text


def b64(data):
    """The value of a rawhdr= / trailer= knob for these raw bytes (str: latin-1)."""
    if isinstance(data, str):
        data = data.encode("latin-1")
    return base64.urlsafe_b64encode(data).decode("ascii")


def echoed(body):
    """The echo= fields of a body as {lower-case name: value, or None when absent}."""
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    out = {}
    for part in body.split("|")[2:]:
        name, eq, value = part.partition("=")
        out[name.lower()] = value if eq else None
    return out


_WORDS = ("cache", "stale", "while", "revalidate", "apache", "module", "shared", "memory",
          "zone", "entry", "refresh", "origin", "backend", "gzip", "brotli", "header", "answer",
          "client", "request", "version", "the", "a", "of", "and", "to", "in", "is", "for", "on",
          "with", "as", "by", "that", "this", "from", "page", "article", "section", "navigation",
          "content", "footer", "lorem", "ipsum", "dolor", "sit", "amet", "consectetur",
          "adipiscing", "elit", "sed", "do", "eiusmod", "tempor", "incididunt", "labore",
          "dolore", "magna", "aliqua", "enim", "minim", "veniam", "quis", "nostrud")
_TAGS = ("p", "li", "span", "em", "strong", "a", "h2", "h3", "td", "div")


def _rng(key, n, seed):
    import hashlib
    import random
    h = hashlib.sha256(("%s|v=%d|%s" % (key, n, seed or "")).encode("utf-8",
                                                                     "surrogateescape"))
    return random.Random(int.from_bytes(h.digest()[:8], "big"))


def html_filler(rng, length):
    """length bytes (ASCII) of HTML-looking text: nested tags, attributes, varied words."""
    out = ["\n<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
           "<title>test page</title></head>\n<body>\n"]
    size = len(out[0])
    while size < length:
        tag = rng.choice(_TAGS)
        words = " ".join(rng.choice(_WORDS) for _ in range(rng.randint(3, 18)))
        if tag == "a":
            piece = '<a href="/%s/%d.html" class="l%d">%s</a>\n' % (
                rng.choice(_WORDS), rng.randint(1, 99999), rng.randint(0, 9), words)
        else:
            piece = '<%s id="n%d">%s %d</%s>\n' % (tag, rng.randint(0, 999999), words,
                                                  rng.randint(0, 10 ** 6), tag)
        out.append(piece)
        size += len(piece)
    tail = "</body></html>\n"
    text = "".join(out)
    if length >= len(tail) + 1:
        text = text[:length - len(tail)] + tail
    return text[:length].encode("ascii")


def encode_body(coding, body):
    """The body encoded as the ce= knob sends it (None: not a coding the origin can make)."""
    import gzip
    import zlib
    c = coding.lower()
    if c in ("gzip", "x-gzip"):
        return gzip.compress(body, compresslevel=1, mtime=0)
    if c == "gzip-multi":   # two gzip members, each half the body (RFC 1952 allows it)
        h = len(body) // 2
        return (gzip.compress(body[:h], compresslevel=1, mtime=0)
                + gzip.compress(body[h:], compresslevel=1, mtime=0))
    if c == "deflate":
        return zlib.compress(body, 1)
    if c == "br":
        p = subprocess.run(["brotli", "-c", "-q", "1"], input=body, stdout=subprocess.PIPE,
                           stderr=subprocess.DEVNULL, timeout=60, check=True)
        return p.stdout
    return None


def unb64(text):
    """Decode a rawhdr= / trailer= value: standard or URL-safe base64, padding optional (a '+'
    that a query string turned into a space counts as '+')."""
    t = text.strip().replace(" ", "+").replace("-", "+").replace("_", "/")
    t += "=" * (-len(t) % 4)
    try:
        return base64.b64decode(t, validate=True)
    except (binascii.Error, ValueError):
        return b""


class State:
    def __init__(self):
        self.lock = threading.Lock()
        self.reset()

    def reset(self):
        self.counts = {}      # path?query -> int
        self.notmod = {}      # path?query -> 304s sent
        self.total = 0
        self.bytes = 0        # body bytes sent
        self.knobs = {}       # path -> {knob: [values]}
        self.last = {}        # path?query and path -> dict
        self.history = {}     # path?query and path -> [dict, ...] (oldest first)
        self.received = {}    # path?query -> request body bytes read so far


STATE = State()


def _key(path, query):
    return path + ("?" + query if query else "")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "isr-test-origin/1"

    def log_message(self, fmt, *args):  # keep test output quiet
        if os.environ.get("ISR_ORIGIN_VERBOSE"):
            sys.stderr.write("origin: " + (fmt % args) + "\n")

    def address_string(self):
        return "unix" if not isinstance(self.client_address, tuple) else self.client_address[0]

    def _send(self, status, body, ctype="text/plain", extra=None, chunked=False, trickle=0.0,
              truncate=False, parts=10, raw_head=b"", trailer=None, close=False):
        """ctype None: no Content-Type; raw_head: bytes put verbatim at the end of the head;
        trailer (bytes, or None): chunked with these trailer lines after the last chunk."""
        try:
            self.send_response(status)
            if ctype is not None:
                self.send_header("Content-Type", ctype)
            for name, value in (extra or []):
                self.send_header(name, value)
            if trailer is not None:
                chunked = True
            if status in (204, 304):
                body = b""
            elif chunked:
                self.send_header("Transfer-Encoding", "chunked")
            else:
                self.send_header("Content-Length", str(len(body)))
            if close:
                self.send_header("Connection", "close")
                self.close_connection = True
            if raw_head:
                self._headers_buffer.append(raw_head)
            self.end_headers()
            if self.command == "HEAD" or status in (204, 304):
                return
            if not self.path.startswith("/__"):
                with STATE.lock:
                    STATE.bytes += len(body)
            if truncate:  # announce the whole body, send half of it, close
                self.wfile.write(body[:len(body) // 2])
                self.wfile.flush()
                self.close_connection = True
                return
            if trickle > 0:  # the body in `parts` parts spread over `trickle` seconds
                self.wfile.flush()
                parts = max(1, parts)
                step = max(1, -(-len(body) // parts))
                for i in range(0, len(body), step):
                    self.wfile.write(body[i:i + step])
                    self.wfile.flush()
                    time.sleep(trickle / parts)
            elif chunked:
                step = max(1, len(body) // 3)
                for i in range(0, len(body), step):
                    part = body[i:i + step]
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
                self.wfile.write(b"0\r\n" + (trailer or b"") + b"\r\n")
            else:
                self.wfile.write(body)
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError, socket.timeout, OSError):
            self.close_connection = True

    def _control(self, path, q):
        def arg(name, default=""):
            return q.get(name, [default])[0]
        if path == "/__reset":
            with STATE.lock:
                STATE.reset()
            return self._send(200, b"ok")
        if path == "/__count":
            with STATE.lock:
                n = STATE.counts.get(arg("path"), 0)
            return self._send(200, str(n).encode())
        if path == "/__count304":
            with STATE.lock:
                n = STATE.notmod.get(arg("path"), 0)
            return self._send(200, str(n).encode())
        if path == "/__bytes":
            with STATE.lock:
                n = STATE.bytes
            return self._send(200, str(n).encode())
        if path == "/__received":
            with STATE.lock:
                n = STATE.received.get(arg("path"), 0)
            return self._send(200, str(n).encode())
        if path == "/__total":
            with STATE.lock:
                n = STATE.total
            return self._send(200, str(n).encode())
        if path == "/__last":
            p = arg("path")
            with STATE.lock:
                d = STATE.last.get(p)
            return self._send(200, json.dumps(d).encode(), ctype="application/json")
        if path == "/__history":
            p = arg("path")
            with STATE.lock:
                d = list(STATE.history.get(p, []))
            return self._send(200, json.dumps(d).encode(), ctype="application/json")
        if path == "/__set":
            p = arg("path")
            if not p:
                return self._send(400, b"path missing")
            knobs = {k: v for k, v in q.items() if k in KNOBS}
            with STATE.lock:
                if knobs:
                    STATE.knobs[p] = knobs
                else:
                    STATE.knobs.pop(p, None)
            return self._send(200, b"ok")
        return self._send(404, b"unknown control endpoint")

    def _serve(self):
        parsed = urllib.parse.urlsplit(self.path)
        path, query = parsed.path, parsed.query
        q = urllib.parse.parse_qs(query, keep_blank_values=True)
        if path.startswith("/__"):
            return self._control(path, q)
        key = _key(path, query)
        body = self._read_body(key)
        if body is None:
            self.close_connection = True
            return
        body_len, body_sha, body_keep, chunked, complete = body
        with STATE.lock:
            STATE.total += 1
            n = STATE.counts.get(key, 0) + 1
            STATE.counts[key] = n
            rec = {"method": self.command, "path": key,
                   "headers": {k: v for k, v in self.headers.items()},
                   "header_list": list(self.headers.items()),
                   "body": body_keep.decode("latin-1") if body_keep is not None else None,
                   "body_len": body_len, "body_sha256": body_sha, "chunked": chunked,
                   "body_complete": complete,
                   "client_port": (self.client_address[1]
                                   if isinstance(self.client_address, tuple) else 0)}
            STATE.last[key] = rec
            STATE.last[path] = rec
            for k in {key, path}:
                h = STATE.history.setdefault(k, [])
                h.append(rec)
                del h[:-HISTORY_MAX]
            knobs = dict(STATE.knobs.get(path, {}))
        knobs.update({k: v for k, v in q.items() if k in KNOBS})

        def knob(name, default=None):
            v = knobs.get(name)
            return v[-1] if v else default

        delay = float(knob("delay", 0) or 0)
        if delay > 0:
            time.sleep(delay)
        status = int(knob("status", 200) or 200)
        body = ("%s|v=%d" % (key, n)).encode()
        for names in knobs.get("echo", []):
            for name in (x.strip() for x in names.split(",")):
                if not name:
                    continue
                values = self.headers.get_all(name)
                body += ("|%s" % name if values is None
                         else "|%s=%s" % (name, ", ".join(values))).encode("utf-8",
                                                                          "surrogateescape")
        suffix = knob("suffix")
        if suffix:
            body += suffix.encode()
        html = int(knob("html", 0) or 0)
        if html > len(body):
            body += html_filler(_rng(key, n, knob("seed")), html - len(body))
        noise = int(knob("noise", 0) or 0)
        if noise > 0:
            body += _rng(key, n, "noise" + (knob("seed") or "")).randbytes(noise)
        if knob("binary"):
            body += bytes(range(256))
        size = int(knob("size", 0) or 0)
        if size > len(body):
            body += b"x" * (size - len(body))
        if knob("empty"):
            body = b""
        ctype = knob("ctype", "text/html; charset=utf-8" if html else "text/plain")
        if ctype.lower() == "none":
            ctype = None
        raw_head = b"".join(unb64(v) for v in knobs.get("rawhdr", []))
        trailer = knob("trailer")
        trailer = unb64(trailer) if trailer is not None else None
        extra = []
        if knob("cookie"):
            extra.append(("Set-Cookie", "isr_test=%d; Path=/" % n))
        if knob("cc"):
            extra.append(("Cache-Control", knob("cc")))
        for h in knobs.get("header", []):
            if ":" in h:
                name, value = h.split(":", 1)
                extra.append((name.strip(), value.strip()))
        etag, lastmod = knob("etag"), knob("lastmod")
        if etag:
            extra.append(("ETag", etag))
        if lastmod:
            extra.append(("Last-Modified", lastmod))
        if knob("early"):
            try:
                self.wfile.write(b"HTTP/1.1 103 Early Hints\r\nLink: %s\r\n\r\n"
                                 % knob("early").encode("latin-1"))
                self.wfile.flush()
            except OSError:
                pass
        if status == 200 and self._not_modified(etag, lastmod):
            status = 304
            with STATE.lock:
                STATE.notmod[key] = STATE.notmod.get(key, 0) + 1
        ce = knob("ce")
        if ce and status not in (204, 304):   # a 304 carries no Content-Encoding of its own
            import hashlib
            encoded = encode_body(ce, body)
            extra.append(("Content-Encoding", "gzip" if ce.lower() == "gzip-multi" else ce))
            if encoded is not None:
                extra.append(("X-Origin-Identity-Sha256", hashlib.sha256(body).hexdigest()))
                extra.append(("X-Origin-Identity-Length", str(len(body))))
                extra.append(("X-Origin-Encoded-Sha256", hashlib.sha256(encoded).hexdigest()))
                body = encoded
        self._send(status, body, ctype=ctype, extra=extra, chunked=bool(knob("chunked")),
                   trickle=float(knob("trickle", 0) or 0), truncate=bool(knob("truncate")),
                   parts=int(knob("parts", 10) or 10), raw_head=raw_head, trailer=trailer,
                   close=bool(knob("close")))

    def _read_body(self, key):
        """Read the request body as it arrives (Content-Length or chunked), counting the bytes in
        STATE.received[key]; (length, sha256 hex, bytes or None when over BODY_KEEP, chunked,
        complete), or None when the framing is broken (the connection is then closed)."""
        import hashlib
        h = hashlib.sha256()
        kept = bytearray()
        total = 0
        te = (self.headers.get("Transfer-Encoding") or "").lower()
        cl = self.headers.get("Content-Length")
        chunked = "chunked" in te
        if not chunked and not cl:
            return 0, h.hexdigest(), b"", False, True

        def take(data):
            nonlocal total
            total += len(data)
            h.update(data)
            if len(kept) <= BODY_KEEP:
                kept.extend(data[:BODY_KEEP + 1 - len(kept)])
            with STATE.lock:
                STATE.received[key] = total

        with STATE.lock:
            STATE.received[key] = 0
        complete = False
        try:
            if chunked:
                while True:
                    line = self.rfile.readline(1024)
                    if not line:
                        break
                    size = int(line.split(b";")[0].strip() or b"x", 16)
                    if size == 0:
                        while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                            pass
                        complete = True
                        break
                    left = size
                    while left:
                        data = self.rfile.read1(min(left, 65536))
                        if not data:
                            raise ValueError("body ended early")
                        take(data)
                        left -= len(data)
                    self.rfile.readline(16)
            else:
                left = int(cl)
                while left:
                    data = self.rfile.read1(min(left, 65536))
                    if not data:
                        raise ValueError("body ended early")
                    take(data)
                    left -= len(data)
                complete = True
        except (ValueError, OSError):
            complete = False
        if not complete:
            # record what came, for tests of aborted uploads, but answer nothing
            with STATE.lock:
                rec = {"method": self.command, "path": key, "body_len": total,
                       "body_complete": False, "headers": dict(self.headers.items())}
                STATE.history.setdefault("__aborted__", []).append(rec)
            return None
        keep = bytes(kept) if len(kept) <= BODY_KEEP else None
        return total, h.hexdigest(), keep, chunked, True

    def __getattr__(self, name):
        # do_PATCH, do_OPTIONS, do_ANYTHING: every method is served like GET
        if name.startswith("do_"):
            return self._serve
        raise AttributeError(name)

    def _not_modified(self, etag, lastmod):
        """RFC 9110 13.1.1/13.1.3: If-None-Match (weak comparison) wins over If-Modified-Since."""
        inm = self.headers.get_all("If-None-Match")
        if inm is not None:
            if not etag:
                return False
            tags = [t.strip() for t in ", ".join(inm).split(",")]
            bare = etag[2:] if etag.startswith("W/") else etag
            return any(t == "*" or (t[2:] if t.startswith("W/") else t) == bare for t in tags)
        ims = self.headers.get("If-Modified-Since")
        if not (lastmod and ims):
            return False
        try:
            return (email.utils.parsedate_to_datetime(ims)
                    >= email.utils.parsedate_to_datetime(lastmod))
        except (TypeError, ValueError):
            return False

    do_GET = _serve
    do_HEAD = _serve
    do_POST = _serve
    do_PUT = _serve
    do_DELETE = _serve


class UnixHTTPServer(ThreadingHTTPServer):
    address_family = socket.AF_UNIX

    def server_bind(self):
        try:
            os.unlink(self.server_address)
        except FileNotFoundError:
            pass
        socket.socket.bind(self.socket, self.server_address)
        os.chmod(self.server_address, 0o777)  # httpd children run as www-data
        self.server_name = "localhost"
        self.server_port = 0

    def get_request(self):
        conn, _ = self.socket.accept()
        return conn, ("unix", 0)


def serve(port=0, unix=None, announce=True, tls_cert=None, tls_key=None):
    ThreadingHTTPServer.daemon_threads = True
    ThreadingHTTPServer.request_queue_size = 128
    if unix:
        srv = UnixHTTPServer(unix, Handler)
        where = "unix:" + unix
    else:
        srv = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        where = str(srv.server_address[1])
        if tls_cert:
            import ssl
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(tls_cert, tls_key)
            srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    srv.daemon_threads = True
    if announce:
        sys.stdout.write("LISTENING %s\n" % where)
        sys.stdout.flush()
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
    try:
        srv.serve_forever(poll_interval=0.2)
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        srv.server_close()
        if unix:
            try:
                os.unlink(unix)
            except OSError:
                pass


# --------------------------------------------------------------------------- test-side client

class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout=10):
        super().__init__("localhost", timeout=timeout)
        self._unix_path = path

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        s.connect(self._unix_path)
        self.sock = s


class Origin:
    """The origin as a separate process; start() it, stop() it (kills its PID)."""

    def __init__(self, unix=None, tls=None):
        """unix: listen on this socket path; tls: (certfile, keyfile) to speak https."""
        self.unix = unix
        self.tls = tls
        self.port = None
        self.proc = None

    # lifecycle
    def start(self, deadline=10.0):
        cmd = [sys.executable, os.path.abspath(__file__)]
        cmd += ["--unix", self.unix] if self.unix else ["--port", "0"]
        if self.tls:
            cmd += ["--tls-cert", self.tls[0], "--tls-key", self.tls[1]]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
        end = time.monotonic() + deadline
        line = b""
        while time.monotonic() < end and not line.endswith(b"\n"):
            r, _, _ = select.select([self.proc.stdout], [], [], 0.2)
            if r:
                ch = os.read(self.proc.stdout.fileno(), 1)
                if not ch:
                    break
                line += ch
        if not line.startswith(b"LISTENING "):
            self.stop()
            raise RuntimeError("origin did not start: %r" % line)
        where = line.split()[1].decode()
        if not self.unix:
            self.port = int(where)
        return self

    def stop(self, deadline=5.0):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(deadline)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(deadline)
        if self.proc and self.proc.stdout:
            self.proc.stdout.close()
        self.proc = None

    @property
    def url(self):
        return "%s://127.0.0.1:%d" % ("https" if self.tls else "http", self.port)

    @property
    def hostport(self):
        return "127.0.0.1:%d" % self.port

    # control
    def _get(self, path, timeout=10):
        if self.unix:
            c = _UnixConnection(self.unix, timeout=timeout)
        elif self.tls:
            import ssl
            ctx = ssl.create_default_context(cafile=self.tls[0])
            c = http.client.HTTPSConnection("127.0.0.1", self.port, timeout=timeout, context=ctx)
        else:
            c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            c.request("GET", path, headers={"Connection": "close"})
            r = c.getresponse()
            return r.status, r.read()
        finally:
            c.close()

    def request(self, path, timeout=10):
        """A normal (counted) request straight to the origin."""
        return self._get(path, timeout=timeout)

    def count(self, path):
        return int(self._get("/__count?" + urllib.parse.urlencode({"path": path}))[1])

    def count304(self, path):
        return int(self._get("/__count304?" + urllib.parse.urlencode({"path": path}))[1])

    def bytes_sent(self):
        return int(self._get("/__bytes")[1])

    def total(self):
        return int(self._get("/__total")[1])

    def last(self, path):
        return json.loads(self._get("/__last?" + urllib.parse.urlencode({"path": path}))[1])

    def history(self, path):
        """Every recorded request for path (+query), oldest first: [{"headers": ...}, ...]."""
        return json.loads(self._get("/__history?" + urllib.parse.urlencode({"path": path}))[1])

    def reset(self):
        self._get("/__reset")

    def set(self, path, **knobs):
        """set('/x', status=500, delay=1.5, header=['A:1', 'B:2']); set('/x') clears."""
        params = [("path", path)]
        for k, v in knobs.items():
            if v is None:
                continue
            for item in (v if isinstance(v, (list, tuple)) else [v]):
                params.append((k, str(item)))
        st, body = self._get("/__set?" + urllib.parse.urlencode(params))
        assert st == 200, body

    def wait_count(self, path, n, timeout=10.0, at_least=True):
        """Poll until count(path) >= n (or == n); return the last count seen."""
        end = time.monotonic() + timeout
        c = self.count(path)
        while time.monotonic() < end:
            c = self.count(path)
            if (c >= n) if at_least else (c == n):
                return c
            time.sleep(0.05)
        return c


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--port", type=int, default=8081)
    ap.add_argument("--unix", default=None, help="listen on this Unix socket path instead")
    ap.add_argument("--tls-cert", default=None, help="PEM certificate: speak https")
    ap.add_argument("--tls-key", default=None, help="PEM private key for --tls-cert")
    args = ap.parse_args()
    serve(port=args.port, unix=args.unix, tls_cert=args.tls_cert, tls_key=args.tls_key)


if __name__ == "__main__":
    main()
