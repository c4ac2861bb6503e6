"""Review of issue 8: a backend's interim (1xx) head must not change the type of what the
normal handler serves (ISRApply env=/header=, ISROnError pass).

send_interim (src/isr_request.c) builds the 1xx head with isr_respond_set_headers, which
clears r->content_type/content_encoding/content_languages and calls ap_set_content_type with
the 1xx's Content-Type; only headers_out and status are restored. The fetch of ISRApply
env=/header= runs in fixups, after mod_mime: the local file then goes out with no type, or
with the type the backend's 103 chose.
"""

import socket
import threading

import isr_env  # noqa: F401


def _raw_origin():
    """Answers every request with a 103 (Link and Content-Type: text/html), then a 200."""
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", 0))
    ls.listen(16)

    def serve(c):
        try:
            c.settimeout(10)
            req = b""
            while b"\r\n\r\n" not in req:
                d = c.recv(4096)
                if not d:
                    return
                req += d
            c.sendall(b"HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n"
                      b"Content-Type: text/html\r\n\r\n"
                      b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nCache-Control: max-age=60\r\n"
                      b"Content-Type: text/plain\r\nConnection: close\r\n\r\nok")
        except OSError:
            pass
        finally:
            c.close()

    def loop():
        while True:
            c, _ = ls.accept()
            threading.Thread(target=serve, args=(c,), daemon=True).start()

    threading.Thread(target=loop, daemon=True).start()
    return "http://127.0.0.1:%d" % ls.getsockname()[1]


RAW_URL = _raw_origin()


class TestInterimKeepsType:
    FILES = {"htdocs/e/upload.txt": "<script>alert(1)</script>\n",
             "htdocs/h/upload.txt": "<script>alert(1)</script>\n"}
    CONF = """
<Location /e/>
    ISRBackend %s/
    ISRCacheTTL 60s
    ISRApply env=ISR_BODY
</Location>
<Location /h/>
    ISRBackend %s/
    ISRCacheTTL 60s
    ISRApply header=X-ISR-Body
</Location>
""" % (RAW_URL, RAW_URL)

    def _raw(self, env, path):
        s = socket.create_connection(("127.0.0.1", env.port), timeout=10)
        try:
            s.sendall(("GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
                       % path).encode())
            data = b""
            while True:
                d = s.recv(65536)
                if not d:
                    return data
                data += d
        finally:
            s.close()

    def _final_ctype(self, data):
        heads = data.split(b"\r\n\r\n")
        final = [h for h in heads if h.startswith(b"HTTP/1.1 2")][0]
        for line in final.split(b"\r\n")[1:]:
            n, _, v = line.partition(b":")
            if n.strip().lower() == b"content-type":
                return v.strip().decode()
        return None

    def test_815_01_env_apply_file_keeps_its_type_after_103(self, env, origin):
        miss = self._raw(env, "/e/upload.txt")       # fetched in fixups: the 103 goes on
        hit = self._raw(env, "/e/upload.txt")        # from the entry: no 103
        assert self._final_ctype(hit).startswith("text/plain"), hit[:300]
        assert self._final_ctype(miss) == self._final_ctype(hit), miss[:600]
