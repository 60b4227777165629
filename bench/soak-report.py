#!/usr/bin/python3
"""Turns what bench/soak.sh recorded under bench/build/soak into
bench/SOAK.md and bench/soak.json, and checks the end state: exits 1 when
a check fails.

Inputs (in --work): steps.txt (one line per wsload run: n kind label
start end rc redis-event) and steps/<n>-<kind>.json (wsload --json);
rss.txt (time pid VmRSS-KiB connections), idle.txt (label time pid
VmRSS-KiB, taken with no connection open), redis-restarts.txt (how time
seconds-until-healthy), connections.json, health.json, metrics.txt,
redis-state.txt, nginx/logs/error.log."""

import argparse
import collections
import datetime
import json
import os
import platform
import re

ap = argparse.ArgumentParser()
ap.add_argument("--work", required=True)
ap.add_argument("--out", required=True)
ap.add_argument("--t-start", type=float, required=True)
ap.add_argument("--t-end", type=float, required=True)
ap.add_argument("--pids-start", default="")
ap.add_argument("--pids-end", default="")
ap.add_argument("--min-messages", type=int, default=1000000)
ap.add_argument("--min-cycles", type=int, default=200000)
ap.add_argument("--level-kib", type=int, default=2048)
ap.add_argument("--level-pct", type=float, default=5)
ap.add_argument("--command", default="bench/soak.sh")
ap.add_argument("--nginx", default="")
ap.add_argument("--redis", default="")
ap.add_argument("--module", default="the module")
ap.add_argument("--restart-rate", type=float, default=10000)
ap.add_argument("--outage-max", type=float, default=5,
                help="seconds of traffic the Redis shutdown may cost")
args = ap.parse_args()

W = args.work
T0, T1 = args.t_start, args.t_end
checks = []             # (name, ok, detail)


def check(name, ok, detail=""):
    checks.append({"check": name, "ok": bool(ok), "detail": detail})


def lines(name):
    path = os.path.join(W, name)
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [ln.split() for ln in f if ln.strip()]


def theil_sen_kib_per_min(points):
    """Median of the pairwise slopes of (seconds, KiB) points, in KiB per
    minute: a slope that a few outliers (one burst that raised the heap's
    high-water mark) do not swing."""
    slopes = sorted((b[1] - a[1]) / (b[0] - a[0])
                    for i, a in enumerate(points) for b in points[i + 1:]
                    if b[0] > a[0])
    if not slopes:
        return None
    m = len(slopes) // 2
    mid = slopes[m] if len(slopes) % 2 else (slopes[m - 1] + slopes[m]) / 2
    return 60.0 * mid


def median(values):
    v = sorted(values)
    if not v:
        return None
    m = len(v) // 2
    return v[m] if len(v) % 2 else (v[m - 1] + v[m]) // 2


def slope_kib_per_min(points):
    """Least-squares slope of (seconds, KiB) points, in KiB per minute."""
    n = len(points)
    if n < 2:
        return None
    mx = sum(p[0] for p in points) / n
    my = sum(p[1] for p in points) / n
    sxx = sum((p[0] - mx) ** 2 for p in points)
    if sxx == 0:
        return None
    sxy = sum((p[0] - mx) * (p[1] - my) for p in points)
    return 60.0 * sxy / sxx


# ------------------------------------------------------------ the steps

steps = []
for f in lines("steps.txt"):
    n, kind, label, t0, t1, rc = f[:6]
    event = f[6] if len(f) > 6 else ""
    with open(os.path.join(W, "steps", "%s-%s.json" % (n, kind))) as fh:
        res = json.load(fh)
    c = res["counters"]
    s = {"n": int(n), "kind": kind, "label": label, "start": float(t0) - T0,
         "secs": float(t1) - float(t0), "rc": int(rc),
         "redis_restart": event or None}
    if kind == "chat":
        s.update({k: c[k] for k in (
            "sent", "received", "lost", "duplicates", "reordered",
            "misrouted", "bogus", "acks_delivered", "acks_undelivered",
            "pairs_same", "pairs_cross", "pairs_failed", "server_closes",
            "protocol_errors", "server_errors")})
        s["msgs_per_s"] = res["figures"]["throughput_msgs_per_s"]
        lat = res.get("latency_us", {}).get("chat") or {}
        s["p99_ms"] = lat.get("p99", 0) / 1000.0
    else:
        fails = {k: v for k, v in c.items()
                 if k.startswith("fail_") and v}
        s.update({"attempted": c["attempted"],
                  "registered": c["established"],
                  "closed_clean": c["close_clean"],
                  "close_timeout": c["close_timeout"],
                  "failures": fails,
                  "per_s": res["figures"]["establish_per_s"]})
    steps.append(s)

chat = [s for s in steps if s["kind"] == "chat"]
conn = [s for s in steps if s["kind"] == "connect"]


def total(rows, key):
    return sum(r[key] for r in rows)


calm_chat = [s for s in chat if not s["redis_restart"]]
storm_chat = [s for s in chat if s["redis_restart"]]
calm_conn = [s for s in conn if not s["redis_restart"]]
storm_conn = [s for s in conn if s["redis_restart"]]

totals = {
    "chat_runs": len(chat),
    "chat_sent": total(chat, "sent"),
    "chat_received": total(chat, "received"),
    "chat_received_cross_runs": total([s for s in chat
                                       if s["label"] == "cross"], "received"),
    "chat_received_mixed_runs": total([s for s in chat
                                       if s["label"] == "any"], "received"),
    "chat_lost": total(chat, "lost"),
    "chat_lost_outside_restarts": total(calm_chat, "lost"),
    "chat_lost_during_restarts": total(storm_chat, "lost"),
    "chat_duplicates": total(chat, "duplicates"),
    "chat_misrouted": total(chat, "misrouted"),
    "connect_rounds": len(conn),
    "connect_cycles": total(conn, "closed_clean"),
    "connect_registered": total(conn, "registered"),
    "connect_attempted": total(conn, "attempted"),
    "connect_failures_outside_restarts": sum(sum(s["failures"].values())
                                             for s in calm_conn),
    "connect_failures_during_restarts": sum(sum(s["failures"].values())
                                            for s in storm_conn),
}

check("at least %d chat messages across workers (received)"
      % args.min_messages, totals["chat_received"] >= args.min_messages,
      "%d received in %d runs" % (totals["chat_received"], len(chat)))
check("at least %d connect/register/disconnect cycles" % args.min_cycles,
      totals["connect_cycles"] >= args.min_cycles,
      "%d in %d rounds" % (totals["connect_cycles"], len(conn)))
check("no chat lost, duplicated or misrouted outside the Redis restarts,"
      " every pair connected",
      totals["chat_lost_outside_restarts"] == 0
      and total(calm_chat, "duplicates") == 0
      and total(calm_chat, "misrouted") == 0
      and total(calm_chat, "pairs_failed") == 0
      and all(s["received"] > 0 for s in calm_chat),
      "lost %d, duplicates %d, misrouted %d, pairs failed %d"
      % (totals["chat_lost_outside_restarts"],
         total(calm_chat, "duplicates"), total(calm_chat, "misrouted"),
         total(calm_chat, "pairs_failed")))
for s_ in storm_chat:
    check("chat through the Redis shutdown (open loop, %g msgs/s): at most"
          " %g s of traffic lost, so the users open across it were routed"
          " again" % (args.restart_rate, args.outage_max),
          s_["lost"] <= args.restart_rate * args.outage_max
          and s_["received"] > 0,
          "%d of %d lost (%.2f s worth)"
          % (s_["lost"], s_["sent"], s_["lost"] / args.restart_rate))
check("no chat duplicated or misrouted during the Redis restarts",
      total(storm_chat, "duplicates") == 0
      and total(storm_chat, "misrouted") == 0,
      "duplicates %d, misrouted %d (lost %d while Redis was away)"
      % (total(storm_chat, "duplicates"), total(storm_chat, "misrouted"),
         totals["chat_lost_during_restarts"]))
check("every connect round outside the restarts: every connection"
      " registered",
      all(s["registered"] == s["attempted"] and not s["failures"]
          for s in calm_conn),
      "%d rounds; close replies missing after 5 s: %d (the end state below"
      " shows whether the server let them go)"
      % (len(calm_conn), total(conn, "close_timeout")))

# ------------------------------------------------------- Redis restarts

restarts = [{"how": f[0], "at_s": float(f[1]) - T0,
             "workers_back_after_s": float(f[2])}
            for f in lines("redis-restarts.txt")]
aborted = " ".join(sum(lines("aborted.txt"), []))
check("the whole schedule ran", not aborted, aborted or "")
check("Redis restarted twice, the workers reconnected each time",
      len(restarts) == 2
      and all(r["workers_back_after_s"] >= 0 for r in restarts),
      "; ".join("%s at %.0f s: back after %.1f s" % (r["how"], r["at_s"],
                                                      r["workers_back_after_s"])
                for r in restarts))

# ------------------------------------------------------------ end state

try:
    with open(os.path.join(W, "connections.json")) as f:
        conns = json.load(f)
    users_left = sum(w["users"] for w in conns["workers"])
    conns_left = sum(w["connections"] for w in conns["workers"])
    check("/api/connections: no connection and no user left",
          conns["activeConnections"] == 0 and conns_left == 0
          and users_left == 0,
          "activeConnections %d, workers' connections %d, users %d"
          % (conns["activeConnections"], conns_left, users_left))
except (OSError, ValueError, KeyError) as e:
    conns = None
    check("/api/connections: no connection and no user left", False,
          "no answer from /api/connections (%s)" % e)

redis = {"channels": None, "keys": [], "nodes": {}, "dbsize": None,
         "channel_sample": []}
for f in lines("redis-state.txt"):
    if f[0] == "channels":
        redis["channels"] = int(f[1])
    elif f[0] == "channel":
        redis["channel_sample"].append(f[1])
    elif f[0] == "key":
        redis["keys"].append({"key": f[1], "type": f[2], "size": f[3]})
    elif f[0] == "node":
        redis["nodes"][f[1]] = int(f[2]) if len(f) > 2 else 0
    elif f[0] == "dbsize":
        redis["dbsize"] = int(f[1])

user_sets = [k for k in redis["keys"]
             if re.match(r"ws_relay:node:.*:users$", k["key"])]
other_keys = [k for k in redis["keys"] if k["key"] != "ws_relay:nodes"
              and k not in user_sets]
check("Redis: no user channel left (PUBSUB CHANNELS 'ws_relay:u:*')",
      redis["channels"] == 0, "%s channels %s" % (
          redis["channels"], " ".join(redis["channel_sample"][:5])))
check("Redis: presence sets ws_relay:node:*:users empty or gone",
      all(k["size"] == "0" for k in user_sets),
      ", ".join("%s: %s" % (k["key"], k["size"]) for k in user_sets)
      or "none left")
check("Redis: no other key than the lease set ws_relay:nodes",
      not other_keys, ", ".join(k["key"] for k in other_keys) or "none")
check("Redis: each worker still has its node channel subscribed",
      len(redis["nodes"]) == 2
      and all(v == 1 for v in redis["nodes"].values()),
      ", ".join("%s: %d" % kv for kv in sorted(redis["nodes"].items())))

pids_start = args.pids_start.split()
pids_end = args.pids_end.split()
check("the same two workers from start to end (none died)",
      sorted(pids_start) == sorted(pids_end) and len(pids_start) == 2,
      "start %s, end %s" % (" ".join(pids_start), " ".join(pids_end)))

# the error log, by level and message (timestamps, pids, connection
# numbers and addresses taken out)
levels = collections.Counter()
messages = collections.Counter()
err_path = os.path.join(W, "nginx", "logs", "error.log")
if os.path.exists(err_path):
    with open(err_path, errors="replace") as f:
        for ln in f:
            m = re.match(r"\S+ \S+ \[(\w+)\] \d+#\d+: (?:\*\d+ )?(.*)", ln)
            if not m:
                continue
            levels[m.group(1)] += 1
            msg = re.sub(r"\d+\.\d+\.\d+\.\d+(:\d+)?", "<addr>", m.group(2))
            msg = re.sub(r"\b\d+\b", "<n>", msg)
            msg = re.sub(r", client: .*", "", msg)
            messages[(m.group(1), msg[:160])] += 1
check("error log: no [emerg], [alert] or [crit], no worker exited on a"
      " signal",
      not (levels["emerg"] or levels["alert"] or levels["crit"])
      and not any("exited on signal" in m for _, m in messages),
      ", ".join("%s %d" % kv for kv in sorted(levels.items())))

# ------------------------------------------------------------------ RSS

rss = collections.defaultdict(list)     # pid -> [(t, kib, conns)]
for f in lines("rss.txt"):
    rss[f[1]].append((float(f[0]) - T0, int(f[2]), int(f[3])))
idle = collections.defaultdict(list)    # pid -> [(label, t, kib)]
for f in lines("idle.txt"):
    idle[f[2]].append((f[0], float(f[1]) - T0, int(f[3])))

half = (T1 - T0) / 2.0
workers = []
for pid in sorted(rss, key=int):
    pts = rss[pid]
    second = [(t, k) for t, k, _ in pts if t >= half]
    ipts = idle.get(pid, [])
    # one idle sample per step (and the one before the first)
    isecond = [(t, k) for lb, t, k in ipts
               if t >= half and (lb.startswith("s") or lb == "c0")]
    step_idle = [(t, k) for lb, t, k in ipts
                 if lb.startswith("s") or lb == "c0"]
    dur = T1 - T0
    workers.append({
        "pid": int(pid),
        "idle_median_q2_kib": median([k for t, k in step_idle
                                      if dur / 4 <= t < dur / 2]),
        "idle_median_q4_kib": median([k for t, k in step_idle
                                      if t >= dur * 3 / 4]),
        "idle_theil_sen_second_half_kib_per_min":
            theil_sen_kib_per_min(isecond),
        "samples": len(pts),
        "rss_first_kib": pts[0][1],
        "rss_max_kib": max(k for _, k, _ in pts),
        "rss_last_kib": pts[-1][1],
        "slope_second_half_kib_per_min": slope_kib_per_min(second),
        "idle_rss_kib": [{"after": lb, "t_s": round(t, 1), "kib": k}
                         for lb, t, k in ipts],
        "idle_rss_after_cycles_kib": [k for lb, t, k in ipts
                                      if lb.startswith("c")],
        "idle_slope_second_half_kib_per_min": slope_kib_per_min(isecond),
    })

def f1(v):
    return "n/a" if v is None else "%.1f" % v


for w in workers:
    q2, q4 = w["idle_median_q2_kib"], w["idle_median_q4_kib"]
    allow = max(args.level_kib, q2 * args.level_pct / 100.0) if q2 else 0
    check("worker %d: RSS levels off (median idle RSS of the last quarter"
          " at most max(%d KiB, %g%%) above the second quarter's)"
          % (w["pid"], args.level_kib, args.level_pct),
          q2 and q4 and q4 - q2 <= allow,
          "%s -> %s KiB; slopes over the second half: least squares %s"
          " (all samples), %s (idle); median of pairwise %s (idle) KiB/min"
          % (q2, q4, f1(w["slope_second_half_kib_per_min"]),
             f1(w["idle_slope_second_half_kib_per_min"]),
             f1(w["idle_theil_sen_second_half_kib_per_min"])))
last = {pid: pts[-1][0] for pid, pts in rss.items()}
check("RSS sampled for both workers all along",
      len(workers) == 2
      and all(t >= (T1 - T0) * 0.95 - 10 for t in last.values()),
      "%d workers sampled; last samples at %s s of %.0f s"
      % (len(workers), ", ".join("%.0f" % t for t in sorted(last.values())),
         T1 - T0))

# --------------------------------------------------------------- output

ok = all(c["ok"] for c in checks)
metrics = {}
mpath = os.path.join(W, "metrics.txt")
if os.path.exists(mpath):
    with open(mpath) as f:
        for ln in f:
            m = re.match(r'(ws_relay_\w+)\{worker="\d+"(?:,code="(\d+)")?\}'
                         r' (\S+)', ln)
            if m:
                key = m.group(1) + ("{code=%s}" % m.group(2)
                                    if m.group(2) else "")
                metrics[key] = metrics.get(key, 0) + float(m.group(3))

report = {
    "when": datetime.datetime.utcnow().strftime("%Y-%m-%dT%H:%M:%SZ"),
    "command": args.command,
    "passed": ok,
    "duration_s": round(T1 - T0, 1),
    "machine": {"cpus": os.cpu_count(), "kernel": platform.release(),
                "nginx": args.nginx, "redis": args.redis},
    "module": args.module,
    "totals": totals,
    "redis_restarts": restarts,
    "workers": workers,
    "end_state": {"connections": conns, "redis": redis},
    "metrics_totals": metrics,
    "error_log_levels": dict(levels),
    "error_log_messages": [{"level": lv, "message": m, "count": n}
                           for (lv, m), n in messages.most_common(30)],
    "checks": checks,
    "steps": steps,
}

with open(os.path.join(args.out, "soak.json"), "w") as f:
    json.dump(report, f, indent=1)
    f.write("\n")


def fmt(v, spec="%.1f"):
    return "n/a" if v is None else spec % v


md = []
md.append("# Soak test\n")
md.append("%s, %.1f minutes, %s. Produced by:\n"
          % (report["when"], (T1 - T0) / 60.0,
             "**all checks passed**" if ok else "**SOME CHECKS FAILED**"))
md.append("    %s\n" % args.command)
md.append("(`make soak` runs bench/soak.sh.) nginx %s with %s, 2 workers,"
          " the directives of nginx.conf.example (ports changed,"
          " `ws_relay_max_connections 9000`); Redis %s; bench/wsload as the"
          " clients; all on 127.0.0.1 of one %d-CPU machine (kernel %s),"
          " shared with other work, so read the rates as what this run got,"
          " not as benchmarks (bench/RESULTS.md has those).\n"
          % (args.nginx, args.module, args.redis, os.cpu_count(),
             platform.release()))
md.append("The run: cycles of cross-worker chat (`wsload chat --placement"
          " cross`), rounds of connect/register/disconnect (`wsload connect"
          " --hold 0`, each connection a new user) and mixed chat"
          " (`--placement any`); Redis restarted with `SHUTDOWN NOSAVE` in"
          " the middle of a chat run, and killed (SIGKILL) once all the"
          " users of a connect round had registered, who then left while it"
          " was away; each time it came back empty on the same port a second"
          " later. RSS (VmRSS) of both workers every few seconds, and with"
          " nothing connected after every step.\n")

md.append("## Checks\n")
md.append("| check | result | detail |\n|---|---|---|")
for c in checks:
    md.append("| %s | %s | %s |" % (c["check"], "pass" if c["ok"] else
                                     "**FAIL**", c["detail"]))
md.append("")

md.append("## Totals\n")
md.append("| figure | value |\n|---|---|")
for k, label in (("chat_received", "chat messages received (all runs)"),
                 ("chat_received_cross_runs", "... in cross-worker runs"),
                 ("chat_received_mixed_runs", "... in mixed runs"),
                 ("chat_sent", "chat messages sent"),
                 ("chat_lost_outside_restarts",
                  "lost outside the Redis restarts"),
                 ("chat_lost_during_restarts",
                  "lost in the runs a Redis restart fell in"),
                 ("chat_duplicates", "duplicates"),
                 ("chat_misrouted", "misrouted"),
                 ("connect_cycles",
                  "connect/register/disconnect cycles (closed cleanly)"),
                 ("connect_attempted", "connections attempted"),
                 ("connect_failures_outside_restarts",
                  "connect failures outside the restarts"),
                 ("connect_failures_during_restarts",
                  "connect failures in the round Redis was killed in")):
    md.append("| %s | %d |" % (label, totals[k]))
for k in ("ws_relay_connections_accepted_total",
          "ws_relay_messages_received_total", "ws_relay_messages_sent_total",
          "ws_relay_deliveries_total", "ws_relay_delivery_timeouts_total",
          "ws_relay_redis_reconnects_total", "ws_relay_redis_errors_total"):
    if k in metrics:
        md.append("| /api/metrics %s (both workers) | %d |"
                  % (k, metrics[k]))
md.append("")

md.append("## RSS of the workers\n")
md.append("VmRSS of each worker, sampled every few seconds all along, and"
          " with no connection open after every step (\"idle\"). Slopes"
          " over the second half of the run, in KiB per minute: least"
          " squares over all samples (these include samples taken while"
          " thousands of connections were open) and over the idle samples,"
          " and the median of the pairwise slopes of the idle samples. RSS"
          " levels off when the median idle RSS of the last quarter of the"
          " run is at most max(%d KiB, %g%%) above the second quarter's: a"
          " steady leak fails that, while one burst late in the run that"
          " raises the heap's high-water mark (glibc keeps it) does not."
          " The idle samples alternate between levels after chat runs and"
          " after connect rounds, so the slopes are noisy.\n"
          % (args.level_kib, args.level_pct))
md.append("| worker | first sample | max | last sample | idle median,"
          " 2nd quarter | idle median, last quarter | slope, all samples"
          " | slope, idle | median slope, idle | idle RSS after each cycle"
          " (KiB) |")
md.append("|---|---|---|---|---|---|---|---|---|---|")
for w in workers:
    md.append("| %d | %d KiB | %d KiB | %d KiB | %s KiB | %s KiB | %s | %s"
              " | %s | %s |"
              % (w["pid"], w["rss_first_kib"], w["rss_max_kib"],
                 w["rss_last_kib"], w["idle_median_q2_kib"],
                 w["idle_median_q4_kib"],
                 fmt(w["slope_second_half_kib_per_min"]),
                 fmt(w["idle_slope_second_half_kib_per_min"]),
                 fmt(w["idle_theil_sen_second_half_kib_per_min"]),
                 " ".join(str(k) for k in w["idle_rss_after_cycles_kib"])))
md.append("")

md.append("## Redis restarts\n")
md.append("| how | at | workers connected again after |\n|---|---|---|")
for r in restarts:
    md.append("| %s | %.0f s | %.1f s |" % (r["how"], r["at_s"],
                                            r["workers_back_after_s"]))
md.append("")

md.append("## Steps\n")
md.append("| # | at | run | Redis | result |\n|---|---|---|---|---|")
for s in steps:
    if s["kind"] == "chat":
        res = ("%d sent, %d received, %d lost, %d dup, %.0f msgs/s, p99"
               " %.0f ms, pairs %d cross / %d same"
               % (s["sent"], s["received"], s["lost"], s["duplicates"],
                  s["msgs_per_s"], s["p99_ms"], s["pairs_cross"],
                  s["pairs_same"]))
        run = "chat %s %.0f s" % (s["label"], s["secs"])
    else:
        res = ("%d/%d registered, %d closed cleanly, %.0f/s%s"
               % (s["registered"], s["attempted"], s["closed_clean"],
                  s["per_s"], "; failures " + json.dumps(s["failures"])
                  if s["failures"] else ""))
        run = "connect %s" % s["label"]
    md.append("| %d | %.0f s | %s | %s | %s |"
              % (s["n"], s["start"], run, s["redis_restart"] or "", res))
md.append("")

md.append("## Error log\n")
md.append("By level: %s. Most frequent messages (numbers and addresses"
          " replaced):\n" % (", ".join("%s %d" % kv
                                       for kv in sorted(levels.items()))
                              or "empty"))
md.append("| level | count | message |\n|---|---|---|")
for (lv, m), n in messages.most_common(15):
    md.append("| %s | %d | `%s` |" % (lv, n, m.replace("|", "\\|")))
md.append("")

with open(os.path.join(args.out, "SOAK.md"), "w") as f:
    f.write("\n".join(md))

for c in checks:
    print("%s  %s: %s" % ("pass" if c["ok"] else "FAIL", c["check"],
                          c["detail"]))
print("wrote %s and %s" % (os.path.join(args.out, "SOAK.md"),
                           os.path.join(args.out, "soak.json")))
raise SystemExit(0 if ok else 1)
