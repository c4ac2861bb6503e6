"""Review of zone persistence (c576a40): cases the persist= feature gets wrong.

Each test states the property it checks; on the reviewed code the ones marked BUG failed; all are fixed."""

import json
import os
import re
import signal
import socket
import stat
import struct
import subprocess
import threading
import time
import urllib.parse
import zlib

import pytest

import isr_env

HEAD = 128                      # isr_persist_head_t
HEAD_CRC_OFF = 96
HEAD_BODY_CRC_OFF = 12
# isr_shm_header_t, at file offset HEAD
SHM_RING_SIZE = 64
SHM_PURGE_OFF = 80
SHM_HEAD = 88
SHM_TAIL = 96
# isr_purge_head_t
PURGE_FREED_AT = 32

RESTORED = "ISR0060"
REFUSED = "ISR0059"
WRITTEN = "ISR0061"

ADMIN = """
<Location /isr-admin>
    SetHandler isr-admin
    Require ip 127.0.0.1
</Location>
"""

CONF = """
ISRCacheZone pz %(size)s persist=@ROOT@/persist/pz.zone persist_every=%(every)s
<Location /p/>
    ISRBackend @ORIGIN@/
    ISRCache pz
    ISRCacheTTL 1h
    ISRStaleTTL 1h
</Location>
""" + ADMIN


def make(env_factory, name, every="0", mpm="event", size="4M", mpm_conf=None):
    e = env_factory(name, conf=CONF % {"every": every, "size": size}, mpm=mpm,
                    mpm_conf=mpm_conf)
    d = os.path.join(e.root, "persist")
    os.makedirs(d, exist_ok=True)
    os.chmod(d, 0o777)
    e.zone_file = os.path.join(d, "pz.zone")
    return e


def start_expect(e, regex, deadline=10):
    mark = e.log_mark()
    e.start()
    line = e.wait_log(regex, since=mark, deadline=deadline)
    assert line, "no %r in the log:\n%s" % (regex, e.log_dump(mark))
    return line


def stop_written(e):
    mark = e.log_mark()
    e.stop()
    line = e.wait_log(WRITTEN + r": zone pz: written to .* at stop", since=mark, deadline=10)
    assert line, "the zone was not written at stop:\n%s" % e.log_dump(mark)
    return line


def reseal(b):
    b = bytearray(b)
    struct.pack_into("<I", b, HEAD_BODY_CRC_OFF, zlib.crc32(bytes(b[HEAD:])) & 0xffffffff)
    struct.pack_into("<I", b, HEAD_CRC_OFF, 0)
    struct.pack_into("<I", b, HEAD_CRC_OFF, zlib.crc32(bytes(b[:HEAD])) & 0xffffffff)
    return b


def read_file(e):
    with open(e.zone_file, "rb") as f:
        return bytearray(f.read())


def write_file(e, b):
    with open(e.zone_file, "wb") as f:
        f.write(reseal(b))


def admin(env, op, **params):
    body = urllib.parse.urlencode(params, doseq=True).encode()
    r = env.post("/isr-admin/" + op, body=body)
    return r.status, json.loads(r.body)


def kill_all(e):
    pid = e.parent_pid()
    pids = [pid] + e.child_pids()
    for p in pids:
        os.kill(p, signal.SIGKILL)
    assert isr_env.wait_for(lambda: not any(e.pid_alive(p) for p in pids), deadline=10)
    e.running = False
    os.remove(e.pid_file)


class TestReviewPersist:

    def test_961_01_sweep_spares_operator_files(self, env_factory, origin):
        """BUG: at start the root parent deletes every regular file named PATH + '.' + 6
        characters, taking it for a temporary file of a killed writer: an operator's
        pz.zone.backup or pz.zone.sha256 is gone."""
        e = make(env_factory, "rv-sweep")
        for suffix in ("backup", "sha256"):
            with open(e.zone_file + "." + suffix, "wb") as f:
                f.write(b"the operator's file")
        e.start()
        left = sorted(os.listdir(os.path.dirname(e.zone_file)))
        assert left == ["pz.zone.backup", "pz.zone.sha256"], left

    def test_961_02_fifo_at_path_does_not_hang_start(self, env_factory, origin):
        """BUG: the parent (root) opens PATH with a plain blocking open(2) that follows
        symlinks and accepts any file type: a FIFO there (which the User, who must be able to
        write the directory, can create) blocks the server's start for ever."""
        isr_env.expect_log(REFUSED)
        e = make(env_factory, "rv-fifo")
        os.mkfifo(e.zone_file, 0o600)
        p = subprocess.Popen([isr_env.HTTPD, "-d", e.root, "-f", e.conf_path, "-k", "start"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             env=e.httpd_env())
        def serves():
            # The listener is bound before post_config: a TCP connect is not enough.
            try:
                c = e.connection(timeout=1)
                c.request("GET", "/isr-admin/status")
                c.getresponse().read()
                c.close()
                return True
            except OSError:
                return False
        try:
            up = isr_env.wait_for(serves, deadline=8, interval=0.2)
        finally:
            # Unblock the parent (a writer that closes at once: EOF), then let it start.
            try:
                fd = os.open(e.zone_file, os.O_WRONLY | os.O_NONBLOCK)
                os.close(fd)
            except OSError:
                pass
            p.wait(timeout=30)
            if isr_env.wait_for(lambda: e.port_answers() and e.parent_pid(), deadline=15):
                e.running = True
        assert up, "httpd did not answer within 8 s: its parent is blocked opening the FIFO"

    def test_961_03_purge_survives_crash(self, env_factory, origin):
        """BUG: the README promises entries survive 'a crash of the whole server' and that a
        purge done before the stop still holds. A purge made after the last write is lost on
        a crash: the purged answer is served again from the restored file."""
        isr_env.expect_log("AH00098", "AH00099", "Unclean shutdown")
        e = make(env_factory, "rv-crash-purge", every="0")
        e.start()
        r = e.get("/p/cp")
        assert (r.isr, r.body) == ("MISS", b"/cp|v=1"), r
        stop_written(e)
        start_expect(e, RESTORED + r": zone pz: restored 1 entries")
        st, a = admin(e, "purge", url="/p/cp")
        assert st == 200 and a["zones"][0]["matched"] == 1, a
        r = e.get("/p/cp")
        assert (r.isr, r.body) == ("MISS", b"/cp|v=2"), r
        # Fixed: the zone is written again a moment after an operation.
        assert e.wait_log(r"ISR0061: zone pz: written to .* after an operation", deadline=15)
        kill_all(e)
        start_expect(e, RESTORED + r": zone pz: restored")
        r = e.get("/p/cp")
        assert r.body != b"/cp|v=1", "the purged answer is back after a crash: %r" % (r,)

    def test_961_04_ring_positions_near_wrap(self, env_factory, origin):
        """BUG: isr_store_recover accepts any aligned head/tail with head - tail <= ring_size.
        With positions just below 2^64 the next record makes them wrap, phys = pos %
        ring_size jumps (ring_size is no power of two), the ring takes live bytes for free and
        overwrites a VALID record in place: a hit on A serves bytes of B's record."""
        size = 1792 * 1024            # ring 1616640 bytes: 2^64 % ring = 46336
        e = make(env_factory, "rv-wrap", size="1792K")
        e.start()
        stop_written(e)
        b = read_file(e)
        ring = struct.unpack_from("<Q", b, HEAD + SHM_RING_SIZE)[0]
        head, tail = struct.unpack_from("<QQ", b, HEAD + SHM_HEAD)
        assert head == tail, (head, tail)
        m = (1 << 64) % ring
        assert m < 60000 < ring // 2, (ring, m)
        pos = (1 << 64) - 64
        struct.pack_into("<QQ", b, HEAD + SHM_HEAD, pos, pos)
        write_file(e, b)
        start_expect(e, RESTORED + r": zone pz: restored 0 entries")
        a = e.get("/p/A?size=60000")
        assert (a.status, a.isr) == (200, "MISS"), a
        r = e.get("/p/B?size=60000")
        assert (r.status, r.isr) == (200, "MISS"), r
        r = e.get("/p/A?size=60000")
        assert r.status == 200 and r.body == a.body, \
            "A's entry was overwritten by B's record: %s %r... (%d bytes)" % (
                r.isr, r.body[:0] + bytes(c for c in r.body if c != 0x78)[:80], len(r.body))
        assert r.isr == "HIT", r

    def test_961_05_future_freed_at_blocks_every_store(self, env_factory, origin):
        """BUG: times in the image are restored as they are. A purge-table freed_at in the
        future (a clock that was ahead when the file was written, or a forged file) makes
        isr_store_publish refuse every fetch (APR_EBUSY) until the clock catches up, and every
        later write persists it: nothing is ever cached again, across restarts."""
        e = make(env_factory, "rv-freed")
        e.start()
        stop_written(e)
        b = read_file(e)
        purge_off = struct.unpack_from("<Q", b, HEAD + SHM_PURGE_OFF)[0]
        future = int((time.time() + 365 * 86400) * 1e6)
        struct.pack_into("<q", b, HEAD + purge_off + PURGE_FREED_AT, future)
        write_file(e, b)
        start_expect(e, RESTORED + r": zone pz: restored 0 entries")
        r = e.get("/p/f")
        assert (r.status, r.isr) == (200, "MISS"), r
        r = e.get("/p/f")
        assert (r.isr, r.body) == ("HIT", b"/f|v=1"), "nothing can be stored any more: %r" % (r,)
