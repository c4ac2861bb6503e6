"""Persistence of a zone (ISRCacheZone NAME SIZE persist=PATH [persist_every=DURATION]):
entries survive `-k stop` / `-k start` and a kill -9 of every process (periodic writes); a
corrupt, truncated, wrong-layout, wrong-size, wrong-name file is refused with a warning and the
zone starts empty; a file whose checksums are right but whose slots or ring lie is made safe
(the lying parts dropped, the rest kept); a purge before the stop stays a purge."""

import json
import os
import signal
import struct
import time
import urllib.parse
import zlib

import pytest

import isr_env

HEAD = 128                      # isr_persist_head_t
HEAD_LAYOUT_OFF = 8             # u32 layout
HEAD_CRC_OFF = 96               # u32 head_crc
HEAD_BODY_CRC_OFF = 12          # u32 body_crc
SLOT_SIZE = 64
SLOT_VALID = 2

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
ISRCacheZone pz 4M persist=@ROOT@/persist/pz.zone persist_every=%(every)s
<Location /p/>
    ISRBackend @ORIGIN@/
    ISRCache pz
    ISRCacheTTL 1h
    ISRStaleTTL 1h
</Location>
""" + ADMIN


def make(env_factory, name, every="0", mpm="event", size=None):
    conf = CONF % {"every": every}
    if size:
        conf = conf.replace("ISRCacheZone pz 4M", "ISRCacheZone pz %s" % size)
    e = env_factory(name, conf=conf, mpm=mpm)
    d = os.path.join(e.root, "persist")
    os.makedirs(d, exist_ok=True)
    # Children run as User (www-data when the tests run as root) and write periodically.
    os.chmod(d, 0o777)
    e.zone_file = os.path.join(d, "pz.zone")
    return e


def log_since(e, mark):
    return "\n".join(e.log_lines(mark))


def start_expect(e, regex, deadline=10):
    mark = e.log_mark()
    e.start()
    line = e.wait_log(regex, since=mark, deadline=deadline)
    assert line, "no %r in the log:\n%s" % (regex, e.log_dump(mark))
    return line


def stop_written(e):
    mark = e.log_mark()
    e.stop()
    line = e.wait_log(WRITTEN + r": zone pz: written to .* at stop", since=mark, deadline=5)
    assert line, "the zone was not written at stop:\n%s" % e.log_dump(mark)
    assert os.path.isfile(e.zone_file)
    return line


def fill(e, origin, *paths):
    for p in paths:
        r = e.get("/p" + p)
        assert (r.status, r.isr, r.body) == (200, "MISS", (p + "|v=1").encode()), r
        r = e.get("/p" + p)
        assert (r.isr, r.body) == ("HIT", (p + "|v=1").encode()), r


def patch_head(data, off, fmt, value):
    """The file with a header field changed and head_crc recomputed."""
    b = bytearray(data)
    struct.pack_into(fmt, b, off, value)
    struct.pack_into("<I", b, HEAD_CRC_OFF, 0)
    struct.pack_into("<I", b, HEAD_CRC_OFF, zlib.crc32(bytes(b[:HEAD])) & 0xffffffff)
    return bytes(b)


def reseal(b):
    """Recompute both checksums of a (modified) file: what an attacker with write access to
    the file could do. Only the store's own checks stand between it and the server then."""
    b = bytearray(b)
    struct.pack_into("<I", b, HEAD_BODY_CRC_OFF, zlib.crc32(bytes(b[HEAD:])) & 0xffffffff)
    struct.pack_into("<I", b, HEAD_CRC_OFF, 0)
    struct.pack_into("<I", b, HEAD_CRC_OFF, zlib.crc32(bytes(b[:HEAD])) & 0xffffffff)
    return b


def image_header(b):
    """The isr_shm_header_t fields of the image in a file."""
    names = ("magic layout size seed0 seed1 stats_off tags_off slots_off ring_off ring_size "
             "nbuckets purge_buckets purge_off head tail created move_credit persist_at").split()
    vals = struct.unpack_from("<IIQQQQQQQQIIQQQqQq", b, HEAD)
    return dict(zip(names, vals))


def valid_slots(b):
    """[(index, file offset of the slot, rec_off, rec_len)] of VALID slots."""
    h = image_header(b)
    out = []
    base = HEAD + h["slots_off"]
    for i in range(h["nbuckets"] * 8):
        off = base + i * SLOT_SIZE
        seq, state, _hash, _lease, rec_off, rec_len = struct.unpack_from("<IIQQQI", b, off)
        if state == SLOT_VALID:
            out.append((i, off, rec_off, rec_len))
    return out


def admin(env, op, **params):
    body = urllib.parse.urlencode(params, doseq=True).encode()
    r = env.post("/isr-admin/" + op, body=body)
    return r.status, json.loads(r.body)


class TestPersist:

    def test_960_01_survives_stop_and_start(self, env_factory, origin):
        e = make(env_factory, "persist-stop")
        # What a writer killed in the middle of a write leaves: removed at start.
        with open(e.zone_file + ".isr-tmp.a1B2c3", "wb") as f:
            f.write(b"half")
        for keep in (".keep", ".backup", ".a1B2c3"):   # an operator's own files stay
            with open(e.zone_file + keep, "wb") as f:
                f.write(b"not ours")
        line = start_expect(e, r"ISR0058: zone pz: no file yet at .*pz\.zone")
        assert e.wait_log(r"ISR0065: zone pz: removed 1 unfinished .*pz\.zone\.isr-tmp\.XXXXXX")
        assert sorted(os.listdir(os.path.dirname(e.zone_file))) == [
            "pz.zone.a1B2c3", "pz.zone.backup", "pz.zone.keep"]
        for keep in (".keep", ".backup", ".a1B2c3"):
            os.remove(e.zone_file + keep)
        fill(e, origin, "/a", "/b")
        stop_written(e)
        assert os.stat(e.zone_file).st_mode & 0o777 == 0o600
        assert not [n for n in os.listdir(os.path.dirname(e.zone_file)) if n != "pz.zone"], \
            "temporary files left behind"
        line = start_expect(e, RESTORED + r": zone pz: restored 2 entries from .*pz\.zone "
                            r"\(saved \d+s ago\)")
        for p in ("/a", "/b"):
            r = e.get("/p" + p)
            assert (r.status, r.isr, r.body) == (200, "HIT", (p + "|v=1").encode()), r
            assert origin.count(p) == 1
        # New entries still go in, and the next stop writes them too.
        fill(e, origin, "/c")
        stop_written(e)
        start_expect(e, RESTORED + r": zone pz: restored 3 entries")
        assert e.get("/p/c").isr == "HIT"
        assert line

    def test_960_02_graceful_restart_neither_writes_nor_restores(self, env_factory, origin):
        e = make(env_factory, "persist-graceful")
        e.start()
        fill(e, origin, "/g")
        mark = e.log_mark()
        e.graceful()
        r = e.get("/p/g")
        assert (r.isr, r.body) == ("HIT", b"/g|v=1"), r
        text = log_since(e, mark)
        assert WRITTEN not in text and RESTORED not in text, text
        assert not os.path.exists(e.zone_file)
        stop_written(e)

    @pytest.mark.parametrize("damage,why", [
        ("flip", r"checksum mismatch"),
        ("truncate", r"truncated"),
        ("trailing", r"trailing bytes"),
        ("layout", r"shared memory layout 7, this build uses 9"),
        ("version", r"file format version 2, this build reads 1"),
        ("name", r"file is for zone 'qz'"),
        ("magic", r"not a zone file \(bad magic\)"),
        ("head-crc", r"header checksum mismatch"),
        ("short", r"short header \(10 of 128 bytes\)"),
        ("size", r"file is for a 4194304-byte zone, this one is 8388608"),
    ])
    def test_960_03_bad_file_refused(self, env_factory, origin, damage, why):
        isr_env.expect_log(REFUSED)
        e = make(env_factory, "persist-bad-" + damage)
        e.start()
        fill(e, origin, "/x")
        stop_written(e)
        with open(e.zone_file, "rb") as f:
            data = f.read()
        if damage == "flip":
            i = HEAD + len(data[HEAD:]) // 2
            data = data[:i] + bytes([data[i] ^ 0x01]) + data[i + 1:]
        elif damage == "truncate":
            data = data[:-4096]
        elif damage == "trailing":
            data = data + b"\0"
        elif damage == "layout":
            data = patch_head(data, HEAD_LAYOUT_OFF, "<I", 7)
        elif damage == "version":
            data = patch_head(data, 4, "<I", 2)
        elif damage == "name":
            data = patch_head(data, 32, "3s", b"qz\0")
        elif damage == "magic":
            data = b"NOPE" + data[4:]
        elif damage == "head-crc":
            data = data[:40] + b"X" + data[41:]
        elif damage == "short":
            data = data[:10]
        elif damage == "size":
            e.write_config(e.body.replace("ISRCacheZone pz 4M", "ISRCacheZone pz 8M"))
        with open(e.zone_file, "wb") as f:
            f.write(data)
        mark = e.log_mark()
        line = start_expect(e, REFUSED + r": zone pz: ignoring .*pz\.zone: " + why)
        assert "[isr:warn]" in line, line
        assert RESTORED not in log_since(e, mark)
        r = e.get("/p/x")
        assert (r.status, r.isr, r.body) == (200, "MISS", b"/x|v=2"), r
        # The refused file is replaced at the next stop by a good one.
        stop_written(e)
        start_expect(e, RESTORED + r": zone pz: restored 1 entries")
        r = e.get("/p/x")
        assert (r.isr, r.body) == ("HIT", b"/x|v=2"), r

    def test_960_04_lying_image_is_made_safe(self, env_factory, origin):
        """Both checksums right (the file was rewritten on purpose), but one slot points
        outside the ring and another's record is not where it says: those two are dropped,
        the third entry is kept and served."""
        e = make(env_factory, "persist-lie")
        e.start()
        fill(e, origin, "/l1", "/l2", "/l3")
        stop_written(e)
        with open(e.zone_file, "rb") as f:
            b = bytearray(f.read())
        h = image_header(b)
        slots = valid_slots(b)
        assert len(slots) == 3, slots
        (_, off0, _, _), (_, off1, rec1, _) = slots[0], slots[1]
        struct.pack_into("<Q", b, off0 + 24, h["ring_size"] + 4096)   # rec_off past the ring
        struct.pack_into("<Q", b, off1 + 24, rec1 + 64)                # into its own record
        with open(e.zone_file, "wb") as f:
            f.write(reseal(b))
        start_expect(e, RESTORED + r": zone pz: restored 1 entries")
        got = {p: e.get("/p" + p) for p in ("/l1", "/l2", "/l3")}
        assert sorted(r.isr for r in got.values()) == ["HIT", "MISS", "MISS"], got
        for p, r in got.items():
            assert r.status == 200 and r.body.startswith((p + "|v=").encode()), (p, r)

    def test_960_05_broken_ring_drops_everything(self, env_factory, origin):
        e = make(env_factory, "persist-ring")
        e.start()
        fill(e, origin, "/r1", "/r2")
        stop_written(e)
        with open(e.zone_file, "rb") as f:
            b = bytearray(f.read())
        h = image_header(b)
        tail_phys = h["tail"] % h["ring_size"]
        ring = HEAD + h["ring_off"]
        struct.pack_into("<I", b, ring + tail_phys, 0x12345678)   # the tail record's magic
        with open(e.zone_file, "wb") as f:
            f.write(reseal(b))
        start_expect(e, RESTORED + r": zone pz: restored 0 entries")
        for p in ("/r1", "/r2"):
            r = e.get("/p" + p)
            assert (r.isr, r.body) == ("MISS", (p + "|v=2").encode()), r
            r = e.get("/p" + p)
            assert (r.isr, r.body) == ("HIT", (p + "|v=2").encode()), r

    def test_960_06_purge_before_stop_stays_purged(self, env_factory, origin):
        e = make(env_factory, "persist-purge")
        e.start()
        fill(e, origin, "/e1", "/e2")
        st, a = admin(e, "purge", url="/p/e1")
        assert st == 200 and a["zones"][0]["matched"] == 1, a
        stop_written(e)
        start_expect(e, RESTORED + r": zone pz: restored \d+ entries")
        r = e.get("/p/e1")
        assert (r.isr, r.body) == ("MISS", b"/e1|v=2"), r
        r = e.get("/p/e2")
        assert (r.isr, r.body) == ("HIT", b"/e2|v=1"), r

    @pytest.mark.parametrize("mpm", ["event", "prefork"])
    def test_960_07_periodic_write_survives_kill_9(self, env_factory, origin, mpm):
        # A parent killed with SIGKILL leaves its pid file: httpd says so at the next start.
        isr_env.expect_log("AH00098", "AH00099", "Unclean shutdown")
        e = make(env_factory, "persist-kill-" + mpm, every="1s", mpm=mpm)
        e.start()
        fill(e, origin, "/k1")
        mark = e.log_mark()
        assert e.wait_log(WRITTEN + r": zone pz: written to .* periodically", since=mark,
                          deadline=10), e.log_dump(mark)
        m1 = os.stat(e.zone_file).st_mtime_ns
        assert isr_env.wait_for(lambda: os.stat(e.zone_file).st_mtime_ns != m1, deadline=10), \
            "the file is written only once"
        # One writer per interval across all children, not one per child: an interval
        # counts from the end of the last write, so at most one a second.
        mark = e.log_mark()
        time.sleep(3)
        writes = [l for l in e.log_lines(mark) if WRITTEN in l]
        assert 1 <= len(writes) <= 4, "\n".join(writes)
        if os.geteuid() == 0:
            import pwd
            assert pwd.getpwuid(os.stat(e.zone_file).st_uid).pw_name == "www-data"
        pid = e.parent_pid()
        pids = [pid] + e.child_pids()
        for p in pids:
            os.kill(p, signal.SIGKILL)
        assert isr_env.wait_for(lambda: not any(e.pid_alive(p) for p in pids), deadline=10)
        e.running = False
        # Where nobody reaps the dead parent (a container without init) its zombie keeps
        # the pid alive to kill(pid, 0), and httpd would think it still runs.
        os.remove(e.pid_file)
        start_expect(e, RESTORED + r": zone pz: restored 1 entries")
        r = e.get("/p/k1")
        assert (r.isr, r.body) == ("HIT", b"/k1|v=1"), r
        assert origin.count("/k1") == 1

    def test_960_08_unwritable_directory_is_logged_not_fatal(self, env_factory, origin):
        isr_env.expect_log("ISR0062", "ISR0064")
        e = make(env_factory, "persist-nodir")
        e.write_config(e.body.replace("/persist/pz.zone", "/missing/pz.zone"))
        start_expect(e, r"ISR0064: zone pz: .*/missing/ is not a directory: "
                        r".*missing/pz\.zone cannot be written")
        fill(e, origin, "/n")
        mark = e.log_mark()
        e.stop()
        line = e.wait_log(r"ISR0062: zone pz: not written to .*missing/pz\.zone at stop",
                          since=mark, deadline=5)
        assert line, e.log_dump(mark)

    def test_960_09_configtest_touches_no_file(self, env_factory, origin):
        e = make(env_factory, "persist-t")
        rc, out = e.configtest()
        assert rc == 0 and "Syntax OK" in out, out
        assert os.listdir(os.path.dirname(e.zone_file)) == []
