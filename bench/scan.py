#!/usr/bin/env python3
"""Hot-set hit ratio under a scan (issue 7, finding 7; DESIGN-NOTES invariant 8).

One httpd with mod_isr (this tree's .libs/mod_isr.so, or ISR_MODULE=path) and the test origin
(tests/origin.py), both on 127.0.0.1. A hot set of small keys is requested twice each (a miss,
then a hit), then two clients run at the same time until the scan is done:

  - the scanner requests one-hit keys (each once, never again) of --scan-size bytes, totalling
    --scan-factor times the zone, at most --scan-rate per second (0: as fast as it can);
  - the reader requests random hot keys, at most --hot-rate per second.

It reports the hot set's hit ratio during the scan (answers labelled HIT or STALE / hot
requests), how many times the origin had to fetch a hot key again, and the zone's counters
(mod_status). Bounded in count (the scan) and time (--max-seconds); everything it starts is
stopped by PID at the end. Python standard library only.

    /usr/bin/python3 bench/scan.py                 # 16M zone, 64 hot keys of 4 KiB, 4x scan
    /usr/bin/python3 bench/scan.py --zone-mb 64 --scan-size 1000000 --json
"""
import argparse
import http.client
import json
import os
import random
import re
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TESTS = os.path.join(os.path.dirname(HERE), "tests")
sys.path.insert(0, TESTS)

import isr_env                 # noqa: E402  (tests/isr_env.py: throw-away httpd)
from origin import Origin      # noqa: E402  (tests/origin.py: counting origin)

CONF = """
LoadModule status_module {modules}/mod_status.so
ISRCacheZone scan {zone_mb}M
<Location /server-status>
    SetHandler server-status
</Location>
<Location /c/>
    ISRBackend {origin}/
    ISRCache scan
    ISRCacheTTL 3600s
    ISRMaxObjectSize {max_object}
</Location>
"""


def parse_args():
    a = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    a.add_argument("--zone-mb", type=int, default=16)
    a.add_argument("--hot-keys", type=int, default=64)
    a.add_argument("--hot-size", type=int, default=4096)
    a.add_argument("--hot-rate", type=float, default=2000.0, help="hot requests per second, at most")
    a.add_argument("--scan-size", type=int, default=256 * 1024)
    a.add_argument("--scan-factor", type=float, default=4.0, help="scan bytes / zone size")
    a.add_argument("--scan-rate", type=float, default=100.0,
                   help="scan requests per second, at most (0: unlimited)")
    a.add_argument("--max-seconds", type=float, default=120.0)
    a.add_argument("--seed", type=int, default=1)
    a.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    return a.parse_args()


def status(conn):
    conn.request("GET", "/server-status?auto")
    r = conn.getresponse()
    out = {}
    for line in r.read().decode("utf-8", "replace").splitlines():
        m = re.match(r"^ISRZone scan (\w+): (\d+)$", line)
        if m:
            out[m.group(1)] = int(m.group(2))
    return out


def get(conn, path):
    conn.request("GET", path)
    r = conn.getresponse()
    body = r.read()
    return r.status, r.getheader("X-ISR-Status"), len(body)


def main():
    args = parse_args()
    if not isr_env.module_available():
        sys.exit("mod_isr.so not built (%s): run make first" % isr_env.MODULE_PATH)
    zone = args.zone_mb * 1024 * 1024
    nscan = int(args.scan_factor * zone / args.scan_size) + 1
    rnd = random.Random(args.seed)
    hot = ["/c/hot/%d?size=%d" % (i, args.hot_size) for i in range(args.hot_keys)]
    origin = Origin().start()
    env = None
    try:
        env = isr_env.HttpdEnv(name="scanbench", mpm="event")
        env.write_config(CONF.format(modules=isr_env.MODULES_DIR, zone_mb=args.zone_mb,
                                     origin=origin.url,
                                     max_object=max(args.scan_size, args.hot_size) + 1))
        env.start()
        deadline = time.monotonic() + args.max_seconds
        c = env.connection(timeout=30)
        for p in hot:                      # the hot set: a miss, then a hit, each
            for want in ("MISS", "HIT"):
                st, label, _ = get(c, p)
                if st != 200 or label != want:
                    raise RuntimeError("warm-up of %s: %s %s" % (p, st, label))
        before = status(c)
        fetched_before = sum(origin.count(p[2:]) for p in hot)

        done = threading.Event()
        res = {"scan": 0, "scan_bytes": 0, "scan_errors": 0, "hot": 0, "hot_hits": 0,
               "hot_labels": {}}

        def scanner():
            sc = env.connection(timeout=30)
            sgap = 1.0 / args.scan_rate if args.scan_rate > 0 else 0.0
            snxt = time.monotonic()
            try:
                for i in range(nscan):
                    if time.monotonic() > deadline:
                        break
                    snxt += sgap
                    pause = snxt - time.monotonic()
                    if pause > 0:
                        time.sleep(pause)
                    st, label, n = get(sc, "/c/scan/%d?size=%d" % (i, args.scan_size))
                    res["scan"] += 1
                    res["scan_bytes"] += n
                    res["scan_errors"] += st != 200 or label != "MISS"
            finally:
                sc.close()
                done.set()

        t0 = time.monotonic()
        th = threading.Thread(target=scanner, daemon=True)
        th.start()
        gap = 1.0 / args.hot_rate if args.hot_rate > 0 else 0.0
        nxt = time.monotonic()
        while not done.is_set() and time.monotonic() < deadline:
            st, label, _ = get(c, rnd.choice(hot))
            res["hot"] += 1
            res["hot_hits"] += st == 200 and label in ("HIT", "STALE")
            res["hot_labels"][label] = res["hot_labels"].get(label, 0) + 1
            nxt += gap
            pause = nxt - time.monotonic()
            if pause > 0:
                time.sleep(pause)
        th.join(max(0.0, deadline - time.monotonic()) + 5)
        elapsed = time.monotonic() - t0
        after = status(c)
        c.close()
        refetched = sum(origin.count(p[2:]) for p in hot) - fetched_before
        out = {
            "zone_bytes": zone, "hot_keys": args.hot_keys, "hot_size": args.hot_size,
            "scan_size": args.scan_size, "scan_requests": res["scan"],
            "scan_bytes": res["scan_bytes"], "scan_x_zone": round(res["scan_bytes"] / zone, 2),
            "scan_not_miss": res["scan_errors"], "seconds": round(elapsed, 2),
            "hot_requests": res["hot"], "hot_hit_ratio":
                round(res["hot_hits"] / res["hot"], 4) if res["hot"] else None,
            "hot_labels": res["hot_labels"], "hot_refetched": refetched,
            "evictions": after.get("Evictions", 0) - before.get("Evictions", 0),
            "stores": after.get("Stores", 0) - before.get("Stores", 0),
            "complete": res["scan"] == nscan, "scan_rate": args.scan_rate,
        }
        if args.json:
            print(json.dumps(out, sort_keys=True))
        else:
            print("scan: %d one-hit keys of %d bytes (%.2f x the %d MiB zone) in %.1f s "
                  "(at most %g/s), %d stores, %d evictions"
                  % (out["scan_requests"], args.scan_size, out["scan_x_zone"], args.zone_mb,
                     out["seconds"], args.scan_rate, out["stores"], out["evictions"]))
            print("hot set: %d keys of %d bytes, %d requests during the scan: hit ratio %.2f%% "
                  "(%s); origin refetched hot keys %d times"
                  % (args.hot_keys, args.hot_size, out["hot_requests"],
                     100.0 * (out["hot_hit_ratio"] or 0), ", ".join(
                         "%s %d" % kv for kv in sorted(out["hot_labels"].items(),
                                                      key=lambda kv: str(kv[0]))),
                     refetched))
            if not out["complete"]:
                print("(stopped at --max-seconds before the scan was complete)")
        return 0
    finally:
        if env is not None:
            env.cleanup()          # -k stop, then SIGKILL leftover children by PID
        origin.stop()              # terminates the origin's own PID


if __name__ == "__main__":
    sys.exit(main())
