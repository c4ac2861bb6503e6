"""A throw-away redis-server for the mod_isr tests, and a minimal RESP client (python3 has no
redis module here).

    srv = RedisServer().start()        # a free loopback port, no persistence
    srv.command("SET", "k", "v")       # b"OK"
    srv.scan("isr:*")                  # [bytes, ...] (keys may hold NUL bytes)
    srv.kill()                         # SIGKILL by PID
    srv.start()                        # again, on the same port
    srv.stop(); srv.cleanup()

The server is started as a subprocess of the test (never daemonized) and only ever stopped
by its own PID.
"""

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

from isr_env import free_port

REDIS_SERVER = os.environ.get("ISR_REDIS_SERVER", "/usr/bin/redis-server")


def redis_available():
    return os.path.isfile(REDIS_SERVER) and os.access(REDIS_SERVER, os.X_OK)


class RespError(Exception):
    """An error reply (-ERR ...) from Redis."""


def _encode(args):
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        if isinstance(a, int):
            a = str(a)
        if isinstance(a, str):
            a = a.encode("utf-8", "surrogateescape")
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


class RespConnection:
    """One connection speaking RESP2; command() sends one command and reads its reply."""

    def __init__(self, port, host="127.0.0.1", timeout=5.0):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.buf = b""

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def _fill(self):
        data = self.sock.recv(65536)
        if not data:
            raise ConnectionError("redis closed the connection")
        self.buf += data

    def _line(self):
        while b"\r\n" not in self.buf:
            self._fill()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _exact(self, n):
        while len(self.buf) < n + 2:
            self._fill()
        data, self.buf = self.buf[:n], self.buf[n + 2:]
        return data

    def _reply(self):
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest
        if kind == b"-":
            return RespError(rest.decode("utf-8", "replace"))
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            return None if n < 0 else self._exact(n)
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [self._reply() for _ in range(n)]
        raise ConnectionError("bad RESP reply line %r" % line)

    def command(self, *args):
        self.sock.sendall(_encode(args))
        r = self._reply()
        if isinstance(r, RespError):
            raise r
        return r


class RedisServer:
    def __init__(self, port=None):
        self.port = port or free_port()
        self.dir = tempfile.mkdtemp(prefix="isr-redis-")
        self.log_path = os.path.join(self.dir, "redis.log")
        self.proc = None

    @property
    def url(self):
        return "redis://127.0.0.1:%d" % self.port

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def start(self, deadline=10.0):
        assert not self.running(), "redis-server already running"
        log = open(self.log_path, "ab")
        try:
            self.proc = subprocess.Popen(
                [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                 "--appendonly", "no", "--daemonize", "no", "--dir", self.dir],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        finally:
            log.close()
        end = time.monotonic() + deadline
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                break
            try:
                if self.command("PING", timeout=0.5) == b"PONG":
                    return self
            except (OSError, ConnectionError, RespError):
                pass
            time.sleep(0.05)
        self.kill()
        raise RuntimeError("redis-server on %d did not answer PING within %.0fs:\n%s"
                           % (self.port, deadline, self.log_tail()))

    def kill(self):
        """SIGKILL by PID (what a crash looks like to its clients), and reap it."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            try:
                os.kill(self.proc.pid, signal.SIGKILL)
            except OSError:
                pass
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            pass
        self.proc = None

    def stop(self, deadline=10.0):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            try:
                os.kill(self.proc.pid, signal.SIGTERM)
            except OSError:
                pass
            try:
                self.proc.wait(deadline)
            except subprocess.TimeoutExpired:
                self.kill()
        self.proc = None

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def log_tail(self, n=40):
        try:
            with open(self.log_path, "rb") as f:
                lines = f.read().decode("utf-8", "replace").splitlines()
        except OSError:
            return ""
        return "\n".join(lines[-n:])

    # ---------------------------------------------------------------- client side
    def connect(self, timeout=5.0):
        return RespConnection(self.port, timeout=timeout)

    def command(self, *args, timeout=5.0):
        c = self.connect(timeout=timeout)
        try:
            return c.command(*args)
        finally:
            c.close()

    def scan(self, pattern="*", count=1000, limit=100000):
        """Every key matching pattern (bytes), SCAN to the end (at most `limit` keys)."""
        c = self.connect()
        keys = []
        try:
            cursor = b"0"
            for _ in range(10000):
                cursor, batch = c.command("SCAN", cursor, "MATCH", pattern, "COUNT", count)
                keys.extend(batch)
                if cursor == b"0" or len(keys) >= limit:
                    break
        finally:
            c.close()
        return keys
