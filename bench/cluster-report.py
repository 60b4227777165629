#!/usr/bin/env python3
"""Turns the runs of bench/cluster.sh into the section "Redis Cluster: 1
shard vs 3 shards" of bench/RESULTS.md and bench/results-cluster.json.

Reads <work>/runs: index.tsv (id, set-up, load, history, round, command),
<id>.snap0/.snap1 (before and after: /proc/stat, /proc/PID/stat of the
nginx workers and of every Redis, INFO cpu and commandstats of every
node), <id>.wsload.json, <id>.channels (the channels each node held once
the connections were set up), <id>.errors (the run's part of the error
log), <id>.rc.
"""

import argparse
import json
import os
import re
import statistics
import sys
import time

ap = argparse.ArgumentParser()
ap.add_argument("--work", required=True)
ap.add_argument("--results", default="")
ap.add_argument("--json", default="")
ap.add_argument("--setups", required=True)
ap.add_argument("--nodes", required=True)     # "plain:2401 c3:2421,2422"
ap.add_argument("--nginx", default="?")
ap.add_argument("--redis", default="?")
ap.add_argument("--module", default="?")
ap.add_argument("--history", default="?")
ap.add_argument("--command", default="bench/cluster.sh")
args = ap.parse_args()

runs_dir = os.path.join(args.work, "runs")
setups = args.setups.split()
nodes = {}
for item in args.nodes.split():
    s, ports = item.split(":")
    nodes[s] = ports.split(",")

NAMES = {"plain": "1 Redis (not a cluster)",
         "c1": "cluster, 1 master",
         "c3": "cluster, 3 masters"}
TICK = float(os.sysconf("SC_CLK_TCK"))
BAD = re.compile(r"\[(warn|error|crit|alert|emerg)\]")


# ------------------------------------------------------------- reading

def read_snap(path):
    d = {"redis": {}, "workers": {}, "info": {}, "cmd": {}}
    with open(path) as f:
        for line in f:
            w = line.split()
            if not w:
                continue
            if w[0] == "wall":
                d["wall"] = int(w[1])
            elif w[0] == "cpu":
                d["cpu"] = [int(x) for x in w[1:]]
            elif w[0] == "self":
                d["self"] = sum(int(x) for x in w[1:5])
            elif w[0] == "redis":
                d["redis"][w[1]] = (w[2], int(w[3]) + int(w[4]))
            elif w[0] == "worker":
                d["workers"].setdefault(w[1], {})[w[2]] = \
                    int(w[3]) + int(w[4])
            elif w[0] == "info":
                port, kv = w[1], line.split(None, 2)[2].strip()
                k, v = kv.split(":", 1)
                if k.startswith("cmdstat_"):
                    f2 = dict(x.split("=", 1) for x in v.split(","))
                    d["cmd"].setdefault(port, {})[k[8:]] = \
                        (int(f2["calls"]), int(f2["usec"]))
                else:
                    d["info"].setdefault(port, {})[k] = v
    return d


def cpu_split(c0, c1):
    """Busy, idle, steal and total ticks of the machine between two
    /proc/stat cpu lines."""
    dt = [b - a for a, b in zip(c0, c1)]
    total = sum(dt[:8])
    idle = dt[3] + dt[4]
    return total - idle, idle, dt[7], total


def channels(path):
    """{port: {"receivers": n, "senders": n, "node": n}} from the
    sampler's listing."""
    out = {}
    if not os.path.exists(path):
        return None
    with open(path) as f:
        for line in f:
            w = line.split()
            if len(w) != 2:
                continue
            port, ch = w
            c = out.setdefault(port, {"receivers": 0, "senders": 0,
                                      "node": 0, "probe": 0})
            m = re.match(r"ws_relay:u:\{.*-([rs])\d+(~\d+)?\}$", ch)
            if m:
                c["receivers" if m.group(1) == "r" else "senders"] += 1
            elif ch.startswith("ws_relay:n:"):
                c["probe" if "{" in ch else "node"] += 1
    return out


def run_figures(rid, s, load, hist, rnd, command):
    p = lambda ext: os.path.join(runs_dir, rid + ext)
    a, b = read_snap(p(".snap0")), read_snap(p(".snap1"))
    w = json.load(open(p(".wsload.json")))
    c = w["counters"]
    msgs = c["received"] or 1
    r = {"id": rid, "setup": s, "load": load, "history": hist,
         "round": int(rnd), "command": command,
         "rc": int(open(p(".rc")).read().strip() or 0),
         "msgs_per_s": w["figures"]["throughput_msgs_per_s"],
         "received": c["received"], "sent": c["sent"], "lost": c["lost"],
         "duplicates": c["duplicates"], "reordered": c["reordered"],
         "misrouted": c["misrouted"],
         "delivered_false": c["acks_undelivered"],
         "server_errors": c["server_errors"],
         "pairs_cross": c["pairs_cross"], "pairs_failed": c["pairs_failed"],
         "p50_us": w["latency_us"]["chat"].get("p50"),
         "p99_us": w["latency_us"]["chat"].get("p99"),
         "max_us": w["latency_us"]["chat"].get("max"),
         "wsload_cores": w["figures"]["generator_cores"],
         "steal_pct": w["machine"]["cpu_pct"]["steal"],
         "wall_s": (b["wall"] - a["wall"]) / 1e9}

    # nginx workers: /proc/PID/stat, the same pids before and after
    wa, wb = a["workers"].get(s, {}), b["workers"].get(s, {})
    r["workers_same"] = sorted(wa) == sorted(wb)
    ngx = sum(wb[k] - wa[k] for k in wb if k in wa) / TICK
    r["nginx_us_per_msg"] = ngx * 1e6 / msgs
    r["nginx_cores"] = ngx / r["wall_s"]

    # Redis, node by node: INFO cpu and commandstats
    r["nodes"] = {}
    for port in nodes[s]:
        i0, i1 = a["info"][port], b["info"][port]
        cpu = sum(float(i1[k]) - float(i0[k])
                  for k in ("used_cpu_sys", "used_cpu_user"))
        c0, c1 = a["cmd"].get(port, {}), b["cmd"].get(port, {})
        calls = {}
        for n, (k, _) in c1.items():
            d = k - c0.get(n, (0, 0))[0]
            if d > 0 and n != "info":
                calls[n] = d
        r["nodes"][port] = {
            "cpu_s": cpu, "cpu_us_per_msg": cpu * 1e6 / msgs,
            "calls": calls,
            "publishes": calls.get("publish", 0) + calls.get("spublish", 0),
            "evalsha": calls.get("evalsha", 0),
            "subscribes": calls.get("subscribe", 0)
                          + calls.get("ssubscribe", 0),
            "commands": sum(calls.values())}
    ns = r["nodes"].values()
    r["redis_us_per_msg"] = sum(n["cpu_us_per_msg"] for n in ns)
    r["busiest_us_per_msg"] = max(n["cpu_us_per_msg"] for n in ns)
    r["redis_commands_per_msg"] = sum(n["commands"] for n in ns) / msgs
    tot_pub = sum(n["publishes"] for n in ns) or 1
    tot_eval = sum(n["evalsha"] for n in ns) or 1
    tot_cpu = sum(n["cpu_s"] for n in ns) or 1
    for n in ns:
        n["publishes_per_msg"] = n["publishes"] / msgs
        n["evalsha_per_msg"] = n["evalsha"] / msgs
        n["publish_share"] = n["publishes"] / tot_pub
        n["evalsha_share"] = n["evalsha"] / tot_eval
        n["cpu_share"] = n["cpu_s"] / tot_cpu

    ch = channels(p(".channels"))
    if ch is not None:
        rec = sum(ch.get(pt, {}).get("receivers", 0) for pt in nodes[s]) or 1
        for pt in nodes[s]:
            x = ch.get(pt, {"receivers": 0, "senders": 0, "node": 0})
            r["nodes"][pt]["receivers"] = x["receivers"]
            r["nodes"][pt]["receiver_share"] = x["receivers"] / rec
            r["nodes"][pt]["senders"] = x["senders"]
            r["nodes"][pt]["node_channels"] = x["node"]

    # the CPU of other processes: the machine's busy time less ours (every
    # Redis and nginx worker started, this shell and what it reaped)
    busy, _, steal, total = cpu_split(a["cpu"], b["cpu"])
    ours = b["self"] - a["self"]
    for port, (pid, t) in b["redis"].items():
        if port in a["redis"]:
            ours += t - a["redis"][port][1]
    for st, ws in b["workers"].items():
        for pid, t in ws.items():
            if pid in a["workers"].get(st, {}):
                ours += t - a["workers"][st][pid]
    r["others_pct"] = max(0.0, (busy - ours) * 100.0 / total) if total else 0
    r["machine_busy_pct"] = busy * 100.0 / total if total else 0

    lines = open(p(".errors"), errors="replace").read().splitlines() \
        if os.path.exists(p(".errors")) else []
    r["log_problems"] = [l for l in lines if BAD.search(l)]
    r["crashes"] = sum(1 for l in lines if "exited on signal" in l)
    return r


runs = []
with open(os.path.join(runs_dir, "index.tsv")) as f:
    for line in f:
        w = line.rstrip("\n").split("\t")
        if len(w) == 6:
            try:
                runs.append(run_figures(*w))
            except (OSError, KeyError, ValueError) as e:
                print("cluster-report: run %s: %s" % (w[0], e),
                      file=sys.stderr)

if not runs:
    sys.exit("cluster-report: no runs")


# the idle baseline: CPU per second of every node and nginx, no load
idle = None
i0p, i1p = (os.path.join(runs_dir, "idle.snap%d" % k) for k in (0, 1))
if os.path.exists(i0p) and os.path.exists(i1p):
    a, b = read_snap(i0p), read_snap(i1p)
    secs = (b["wall"] - a["wall"]) / 1e9
    idle = {"seconds": secs, "redis_ms_per_s": {}, "nginx_ms_per_s": {}}
    for s in setups:
        for pt in nodes[s]:
            cpu = sum(float(b["info"][pt][k]) - float(a["info"][pt][k])
                      for k in ("used_cpu_sys", "used_cpu_user"))
            idle["redis_ms_per_s"][pt] = cpu * 1000 / secs
        wa, wb = a["workers"].get(s, {}), b["workers"].get(s, {})
        idle["nginx_ms_per_s"][s] = sum(
            wb[k] - wa[k] for k in wb if k in wa) / TICK * 1000 / secs


def crc16(data):
    """CRC-16/XMODEM, as Redis Cluster hashes keys"""
    crc = 0
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021 if crc & 0x8000 else crc << 1) & 0xffff
    return crc


def key_slot(key):
    a = key.find("{")
    if a >= 0:
        b = key.find("}", a + 1)
        if b > a + 1:
            key = key[a + 1:b]
    return crc16(key.encode()) % 16384


# where each set-up's node channels (one per worker) live, as the first
# run of it saw them, and whether every later run saw the same
node_channels = {}
for r in runs:
    path = os.path.join(runs_dir, r["id"] + ".channels")
    if not os.path.exists(path):
        continue
    seen = []
    with open(path) as f:
        for line in f:
            w = line.split()
            if len(w) == 2 and w[1].startswith("ws_relay:n:") \
                    and "{" not in w[1]:
                seen.append((w[1], key_slot(w[1]), w[0]))
    seen.sort()
    nc = node_channels.setdefault(r["setup"], {"channels": seen,
                                               "same_in_every_run": True})
    if nc["channels"] != seen:
        nc["same_in_every_run"] = False

# ------------------------------------------------------------ figures

def mmm(vals):
    vals = [v for v in vals if v is not None]
    if not vals:
        return None
    return [min(vals), statistics.median(vals), max(vals)]


def group(s, load, hist):
    return [r for r in runs if r["setup"] == s and r["load"] == load
            and r["history"] == hist]


loads = [l for l in ("closed", "rate") if any(r["load"] == l for r in runs)]
hists = [h for h in ("off", "on") if any(r["history"] == h for r in runs)]

summary = {}
for h in hists:
    for l in loads:
        for s in setups:
            g = group(s, l, h)
            if not g:
                continue
            key = "%s/%s/history-%s" % (s, l, h)
            e = {"runs": len(g)}
            for k in ("msgs_per_s", "p50_us", "p99_us", "nginx_us_per_msg",
                      "redis_us_per_msg", "busiest_us_per_msg",
                      "redis_commands_per_msg", "others_pct", "steal_pct",
                      "machine_busy_pct"):
                e[k] = mmm([r[k] for r in g])
            for k in ("lost", "duplicates", "reordered", "misrouted",
                      "delivered_false", "server_errors", "crashes"):
                e[k] = sum(r[k] for r in g)
            e["log_problems"] = sum(len(r["log_problems"]) for r in g)
            e["nodes"] = {}
            for pt in nodes[s]:
                ne = {}
                for k in ("cpu_us_per_msg", "cpu_share", "publishes_per_msg",
                          "evalsha_per_msg", "publish_share",
                          "evalsha_share", "receiver_share",
                          "node_channels", "receivers"):
                    ne[k] = mmm([r["nodes"][pt].get(k) for r in g])
                e["nodes"][pt] = ne
            summary[key] = e


# ------------------------------------------------------------ writing

def us(v):
    if v is None:
        return "-"
    if v >= 10000:
        return "%.0f ms" % (v / 1000)
    if v >= 1000:
        return "%.1f ms" % (v / 1000)
    return "%.0f µs" % v


def f1(v):
    return "-" if v is None else "%.1f" % v


def f2(v):
    return "-" if v is None else "%.2f" % v


def pct(v):
    return "-" if v is None else "%.0f%%" % (100 * v)


def i0(v):
    return "-" if v is None else "%.0f" % v


def trio(t, fmt, bold=False):
    """median (min–max) over the runs"""
    if t is None:
        return "-"
    m = fmt(t[1])
    if bold:
        m = "**%s**" % m
    if fmt(t[0]) == fmt(t[2]):
        return m
    return "%s (%s–%s)" % (m, fmt(t[0]), fmt(t[2]))


def load_name(l, h):
    hs = "history off" if h == "off" else "history on (%s)" % args.history
    if l == "closed":
        return "closed loop, %s" % hs
    return "fixed rate, %s" % hs


cmds = {}
for r in runs:
    cmds.setdefault((r["setup"], r["load"], r["history"]), r["command"])

machine = "?"
try:
    with open("/proc/cpuinfo") as f:
        model = next(l.split(":", 1)[1].strip() for l in f
                     if l.startswith("model name"))
    machine = "%d cores, %s, Linux %s" % (os.cpu_count(), model,
                                          os.uname().release)
except (OSError, StopIteration):
    pass

def first_run_wall():
    """when the runs began (the first run's snapshot), in s"""
    try:
        with open(os.path.join(runs_dir, runs[0]["id"] + ".snap0")) as f:
            for line in f:
                if line.startswith("wall "):
                    return int(line.split()[1]) / 1e9
    except OSError:
        pass
    return time.time()


md = []
md.append("## Redis Cluster: 1 shard vs 3 shards")
md.append("")
md.append("Issue 15: do publishes spread over the masters of a Redis "
          "Cluster? `bench/cluster.sh` on %s, %s; nginx %s with 2 workers, "
          "Redis %s, the module at %s. Three set-ups side by side, each "
          "with its own nginx (nginx.conf.example's directives, 2 workers, "
          "test ports; `/` without history, `/h/` with `ws_relay_history "
          "%s;`):" % (time.strftime("%Y-%m-%d %H:%M UTC",
                                    time.gmtime(first_run_wall())),
                      machine, args.nginx, args.redis, args.module,
                      args.history))
md.append("")
for s in setups:
    if s == "plain":
        md.append("- **%s**: one `redis-server` on %s, `ws_relay_redis "
                  "127.0.0.1:%s;` (PUBLISH, SUBSCRIBE)." % (
                      NAMES[s], nodes[s][0], nodes[s][0]))
    elif s == "c1":
        md.append("- **%s**: `redis-server --cluster-enabled yes` on %s, "
                  "then `CLUSTER ADDSLOTSRANGE 0 16383`; `ws_relay_redis "
                  "cluster=127.0.0.1:%s;` (SPUBLISH, SSUBSCRIBE)." % (
                      NAMES[s], nodes[s][0], nodes[s][0]))
    else:
        md.append("- **%s**: three `redis-server --cluster-enabled yes` "
                  "on %s, joined with `redis-cli --cluster create ... "
                  "--cluster-replicas 0 --cluster-yes` (5461, 5462 and "
                  "5461 slots); `ws_relay_redis cluster=%s;`." % (
                      NAMES[s], ", ".join(nodes[s]),
                      ",".join("127.0.0.1:" + p for p in nodes[s])))
md.append("")
md.append("Every Redis: `--save '' --appendonly no`, cluster buses on "
          "their own ports (`--cluster-port`), all on 127.0.0.1. The "
          "load: cross-worker chat between %d pairs of users (400 user "
          "ids, new in every run, so their slots spread over the masters), "
          "in a closed loop and at a fixed rate, on `/` and on `/h/`; %d "
          "rounds, the set-ups taking turns at going first; every run: "
          "%s. The commands:" % (
              runs[0].get("pairs_cross", 0) or 0, max(r["round"] for r in runs),
              "1 s of warm-up, the measured seconds, 2 s of drain"))
md.append("")
md.append("    make && make -C bench")
md.append("    %s" % args.command)
md.append("")
md.append("It starts the servers like this (nginx.conf: nginx.conf.example with "
          "`worker_processes 2`, `listen 127.0.0.1:<port> reuseport`, the "
          "set-up's `ws_relay_redis`, the example's `ws_relay_history` "
          "off, and `location /h/ { ws_relay; ws_relay_history %s; }`):"
          % args.history)
md.append("")
cpath = os.path.join(args.work, "commands.txt")
if os.path.exists(cpath):
    for line in open(cpath).read().splitlines():
        md.append("    " + line)
md.append("")
md.append("and runs, per round:")
md.append("")
for (s, l, h), c in sorted(cmds.items(), key=lambda x: (
        x[0][2], x[0][1], setups.index(x[0][0]))):
    md.append("    %s    # %s, %s" % (c, NAMES[s], load_name(l, h)))
md.append("")
md.append("How each figure is taken: messages/s is wsload's received "
          "messages per second in the measured window. Before and after "
          "each run, on every node: `INFO cpu` (`used_cpu_sys + "
          "used_cpu_user`) and `INFO commandstats` (calls; the script's "
          "own INFO calls left out, the commands a Lua script runs counted "
          "as Redis counts them); the nginx workers' `utime + stime` from "
          "/proc/PID/stat (10 ms ticks). Per message: over the messages "
          "received in the whole run (set-up, warm-up and drain "
          "included). Once the connections are set up: `PUBSUB "
          "SHARDCHANNELS` (`PUBSUB CHANNELS` for the single Redis) on each "
          "node, which tells where each receiver's channel and each "
          "worker's node channel live. Cells: median (min–max) over the "
          "rounds.")
md.append("")
md.append("**The machine.** %d cores for everything: wsload, the %d "
          "nginx instances (2 workers each), the %d Redis processes, and "
          "other work that ran on the machine meanwhile (\"others\": the "
          "machine's busy time from /proc/stat less that of our "
          "processes, in %% of the machine). Total throughput cannot scale "
          "here: 3 masters share the same %d cores with everything else, "
          "so messages/s says nothing about sharding. What shows the "
          "scaling is the Redis CPU per message on each master and how "
          "the messages spread over the masters: the busiest master's "
          "CPU per message is what bounds a cluster whose masters have "
          "cores of their own (1 s divided by it: the \"ceiling\" column, "
          "derived, not measured). Over these runs others took %s of "
          "the machine (median, min–max)." % (
              os.cpu_count(), len(setups), sum(len(nodes[s]) for s in setups),
              os.cpu_count(),
              trio(mmm([r["others_pct"] for r in runs]),
                   lambda v: "%.0f%%" % v)))
md.append("")
rates = [int(m.group(1)) for m in
         (re.search(r" -r (\d+)", r["command"]) for r in runs) if m]
rate_used = rates[0] if rates else 5000
if idle:
    md.append("With no load (%.0f s before the runs, every nginx connected): "
              "Redis %s; nginx workers %s. Per message this is small beside "
              "the figures below (at %s)." % (
                  idle["seconds"],
                  ", ".join("%s %.1f ms/s" % (pt, idle["redis_ms_per_s"][pt])
                            for s in setups for pt in nodes[s]),
                  ", ".join("%s %.1f ms/s" % (NAMES[s], idle["nginx_ms_per_s"][s])
                            for s in setups),
                  "%d msgs/s, 1 ms/s is %.2f µs per message" % (
                      rate_used, 1000.0 / rate_used)))
    md.append("")
for s in setups:
    nc = node_channels.get(s)
    if not nc or s == "plain":
        continue
    md.append("Node channels of %s (each worker's own channel, where the "
              "acks for the messages its connections sent arrive): %s%s." % (
                  NAMES[s],
                  "; ".join("`%s` slot %d on %s" % x for x in nc["channels"]),
                  "" if nc["same_in_every_run"] else
                  " (other runs saw others)"))
    md.append("")

for h in hists:
    for l in loads:
        rows = [s for s in setups if "%s/%s/history-%s" % (s, l, h)
                in summary]
        if not rows:
            continue
        what = ("%d pairs × window %s" % (runs[0]["pairs_cross"] or 0,
                                         re.search(r"-w (\d+)",
                                                   cmds[(rows[0], l, h)])
                                         .group(1))
                if l == "closed" else
                "%s msgs/s in all" % re.search(
                    r"-r (\d+)", cmds[(rows[0], l, h)]).group(1))
        md.append("### %s: %s" % (load_name(l, h).capitalize(), what))
        md.append("")
        closed = (l == "closed")
        md.append("| set-up | messages/s | p99 | nginx CPU per message | "
                  "Redis CPU per message, all nodes | per node | busiest "
                  "node |%s Redis commands per message | others %% |"
                  % (" ceiling (1 s ÷ busiest) |" if closed else ""))
        md.append("|---|---|---|---|---|---|---|%s---|---|"
                  % ("---|" if closed else ""))
        for s in rows:
            e = summary["%s/%s/history-%s" % (s, l, h)]
            per = " / ".join(trio(e["nodes"][pt]["cpu_us_per_msg"], f1)
                             for pt in nodes[s])
            ceil = None
            if e["busiest_us_per_msg"] and l == "closed":
                b = e["busiest_us_per_msg"]
                ceil = [1e6 / b[2], 1e6 / b[1], 1e6 / b[0]]
            md.append("| %s | %s | %s | %s µs | %s µs | %s µs | %s µs |%s "
                      "%s | %s |" % (
                          NAMES[s],
                          trio(e["msgs_per_s"], i0, bold=closed),
                          trio(e["p99_us"], us),
                          trio(e["nginx_us_per_msg"], f1),
                          trio(e["redis_us_per_msg"], f1),
                          per,
                          trio(e["busiest_us_per_msg"], f1, bold=True),
                          (" %s msgs/s |" % trio(ceil, i0)) if closed else "",
                          trio(e["redis_commands_per_msg"], f2),
                          trio(e["others_pct"], i0)))
        md.append("")

# the spread: per node, median over the runs
md.append("### How the messages spread over the nodes")
md.append("")
md.append("Medians over the rounds. \"Receivers\": the users whose "
          "channel the node holds (where their messages are published); "
          "\"node channels\": the workers' own channels there (where the "
          "acks to the sender's worker go, one per cross-worker message). "
          "Publishes are PUBLISH + SPUBLISH calls, the ones a script runs "
          "included.")
md.append("")
md.append("| load | set-up | node | receivers | node channels | "
          "publishes per message | EVALSHA per message | share of the "
          "EVALSHA calls | Redis CPU per message | share of the Redis CPU |")
md.append("|---|---|---|---|---|---|---|---|---|---|")
for h in hists:
    for l in loads:
        for s in setups:
            e = summary.get("%s/%s/history-%s" % (s, l, h))
            if not e:
                continue
            for k, pt in enumerate(nodes[s]):
                n = e["nodes"][pt]
                med = lambda t: None if t is None else t[1]
                md.append("| %s | %s | %s | %s | %s | %s | %s | %s | %s µs "
                          "| %s |" % (
                              load_name(l, h) if k == 0 else "",
                              NAMES[s] if k == 0 else "",
                              pt,
                              "%s (%s)" % (i0(med(n["receivers"])),
                                           pct(med(n["receiver_share"]))),
                              i0(med(n["node_channels"])),
                              f2(med(n["publishes_per_msg"])),
                              f2(med(n["evalsha_per_msg"])),
                              pct(med(n["evalsha_share"]))
                              if med(n["evalsha_per_msg"]) else "-",
                              f1(med(n["cpu_us_per_msg"])),
                              pct(med(n["cpu_share"]))))
md.append("")

# ------------------------------------------------------------ reading

def slot_ranges(setup):
    """[(first, last, port)] of a cluster set-up, from CLUSTER NODES as
    the script saved it; without it, redis-cli --cluster create's split"""
    out = []
    path = os.path.join(args.work, "nodes-%s.txt" % setup)
    if os.path.exists(path):
        for line in open(path):
            w = line.split()
            if len(w) < 9 or "master" not in w[2]:
                continue
            port = w[1].split("@")[0].rsplit(":", 1)[1]
            for rng in w[8:]:
                if rng.startswith("["):
                    continue
                a, _, b = rng.partition("-")
                out.append((int(a), int(b or a), port))
    if not out:
        n = len(nodes[setup])
        per = 16384 // n
        for k, port in enumerate(nodes[setup]):
            out.append((k * per + min(k, 16384 % n) if k else 0,
                        (k + 1) * per + min(k + 1, 16384 % n) - 1
                        if k < n - 1 else 16383, port))
    return sorted(out)


def owner(ranges, slot):
    for a, b, port in ranges:
        if a <= slot <= b:
            return port
    return None


def med(e, k):
    return e[k][1] if e and e.get(k) else None


def node_med(e, pt, k):
    t = e["nodes"][pt].get(k)
    return t[1] if t else None


def xor_note(chans):
    """how far apart by XOR the slots of two node channels are"""
    if len(chans) != 2:
        return ""
    x = chans[0][1] ^ chans[1][1]
    block = 1
    while block <= x:
        block <<= 1
    return (" (here slots %d and %d, 0x%x apart by XOR: %s)"
            % (chans[0][1], chans[1][1], x,
               "both in one aligned block of %d slots" % block
               if chans[0][1] // block == chans[1][1] // block
               else "in two blocks"))


reading = []
for h in hists:
    l = "closed" if "closed" in loads else loads[0]
    e1 = summary.get("c1/%s/history-%s" % (l, h))
    e3 = summary.get("c3/%s/history-%s" % (l, h))
    ep = summary.get("plain/%s/history-%s" % (l, h))
    if not (e1 and e3):
        continue
    one, busy = med(e1, "busiest_us_per_msg"), med(e3, "busiest_us_per_msg")
    per = [node_med(e3, pt, "cpu_us_per_msg") for pt in nodes["c3"]]
    tot3 = med(e3, "redis_us_per_msg")
    nc_port = max(nodes["c3"], key=lambda pt: node_med(e3, pt, "node_channels") or 0)
    txt = ("**%s, %s.** On 3 masters each master spent %s µs of CPU per "
           "message, where the 1 master of the 1-master cluster spent %.1f µs%s: "
           "the busiest master %.1f µs, %.1f times less, so with a core each "
           "the masters could carry %.1f times as many messages as one (the "
           "ceiling column). In all, the 3 masters spent %.1f µs per message, "
           "%+.0f%% against 1 master: %s. "
           % ("History on" if h == "on" else "History off",
              "closed loop" if l == "closed" else "fixed rate",
              " / ".join("%.1f" % x for x in per), one,
              (" (the single Redis %.1f µs)" % med(ep, "busiest_us_per_msg"))
              if ep else "",
              busy, one / busy, one / busy, tot3, (tot3 / one - 1) * 100,
              "more work in all, spread over the masters"
              if tot3 > one * 1.1 else
              "about the same work in all, spread over the masters"
              if tot3 > one * 0.9 else "less work in all"))
    if h == "on":
        txt += ("The script calls (EVALSHA, one per message on the master of "
                "the receiver's slot) split %s, as the receivers did (%s)."
                % (" / ".join(pct(node_med(e3, pt, "evalsha_share"))
                              for pt in nodes["c3"]),
                   " / ".join(pct(node_med(e3, pt, "receiver_share"))
                              for pt in nodes["c3"])))
    else:
        txt += ("The user messages split as the receivers did (%s), but "
                "every ack goes to the sender's worker's node channel, and "
                "both node channels were on %s: %.2f publishes per message "
                "there against %s on the others, %s of the Redis CPU."
                % (" / ".join(pct(node_med(e3, pt, "receiver_share"))
                              for pt in nodes["c3"]),
                   nc_port, node_med(e3, nc_port, "publishes_per_msg"),
                   " and ".join("%.2f" % node_med(e3, pt, "publishes_per_msg")
                                for pt in nodes["c3"] if pt != nc_port),
                   pct(node_med(e3, nc_port, "cpu_share"))))
        if node_med(e3, nc_port, "node_channels") != 2:
            txt = txt.replace("both node channels were on", "the node "
                              "channels were split; the most were on")
    reading.append(txt)

ra = summary.get("c1/rate/history-off")
rb = summary.get("c3/rate/history-off")
if ra and rb:
    reading.append(
        "**At a fixed rate** (%s msgs/s) each message costs more than in the "
        "closed loop (a wake-up of each process per message or few, instead "
        "of many messages per wake-up), and more so on 3 masters, each of "
        "which wakes up for its share: history off, %.1f µs in all on 3 "
        "masters against %.1f on 1, the busiest master %.1f; history on, "
        "%s." % (rate_used, med(rb, "redis_us_per_msg"),
                 med(ra, "redis_us_per_msg"), med(rb, "busiest_us_per_msg"),
                 ("%.1f µs in all against %.1f, the busiest %.1f" % (
                     med(summary["c3/rate/history-on"], "redis_us_per_msg"),
                     med(summary["c1/rate/history-on"], "redis_us_per_msg"),
                     med(summary["c3/rate/history-on"], "busiest_us_per_msg")))
                 if "c3/rate/history-on" in summary
                 and "c1/rate/history-on" in summary else "not run"))

def overlap_note():
    a = summary.get("c1/closed/history-off")
    b = summary.get("plain/closed/history-off")
    if not (a and b):
        return "one of the two was not run"
    out = []
    for k, name in (("nginx_us_per_msg", "nginx"),
                    ("redis_us_per_msg", "Redis")):
        x, y = a[k], b[k]
        apart = x[0] > y[2] or y[0] > x[2]
        out.append("the %s ranges over the rounds %s" % (
            name, "do not overlap" if apart else "overlap"))
    return " and ".join(out)


def nginx_note():
    a = summary.get("c1/closed/history-off")
    b = summary.get("c3/closed/history-off")
    if not (a and b):
        return ""
    x, y = med(b, "nginx_us_per_msg"), med(a, "nginx_us_per_msg")
    if x <= y * 1.1:
        return (" nginx's CPU per message is about the same with 3 masters "
                "as with 1 (%.1f against %.1f µs)." % (x, y))
    return (" nginx spends more CPU per message with 3 masters than with 1 "
            "(%.1f against %.1f µs), probably because each worker has a "
            "command and a subscriber link to every master, so that the "
            "same messages make more, smaller reads and writes (not "
            "measured apart)." % (x, y))


tp = [(s, summary.get("%s/closed/history-off" % s)) for s in setups]
tp = [(s, e) for s, e in tp if e]
if tp:
    reading.append(
        "**Throughput** (closed loop, history off: %s msgs/s) does not grow "
        "with the masters here, as said: the 2 cores are the limit, not a "
        "Redis.%s The cluster form on 1 master against the single Redis: "
        "nginx %s µs per message, Redis %s µs (closed loop, history off; "
        "%s)." % (
            " / ".join("%s %s" % (NAMES[s], i0(med(e, "msgs_per_s")))
                       for s, e in tp),
            nginx_note(),
            " against ".join(f1(med(summary.get("%s/closed/history-off" % s),
                                    "nginx_us_per_msg"))
                             for s in ("c1", "plain")
                             if summary.get("%s/closed/history-off" % s)),
            " against ".join(f1(med(summary.get("%s/closed/history-off" % s),
                                    "redis_us_per_msg"))
                             for s in ("c1", "plain")
                             if summary.get("%s/closed/history-off" % s)),
            overlap_note()))

nc = node_channels.get("c3")
if nc and nc["channels"]:
    ranges = slot_ranges("c3")
    m = re.match(r"ws_relay:n:(.*)-(\d+)-([^-]+)$", nc["channels"][0][0])
    if m:
        host, start = m.group(1), m.group(3)
        same = tot = 0
        for pid in range(1000, 60000):
            a = key_slot("ws_relay:n:%s-%d-%s" % (host, pid, start))
            b = key_slot("ws_relay:n:%s-%d-%s" % (host, pid + 1, start))
            tot += 1
            same += owner(ranges, a) == owner(ranges, b)
        reading.append(
            "**Where the acks go.** A worker's node channel is "
            "`ws_relay:n:<host>-<pid>-<start>`, hashed whole (no hash tag). "
            "The workers of one nginx have the same host and start and "
            "nearly the same pid, and CRC16 is linear: two names that differ "
            "in the same bytes have slots that differ by the same XOR "
            "pattern, whatever the rest%s. For consecutive "
            "pids and these 3 masters' slots, both channels land on the "
            "same master %.0f%% of the time (33%% for two random slots); "
            "here: %s. So the acks of the workers of one host mostly go to "
            "one master, and half of the publishes of a cross-worker "
            "message (history off) do not spread with the masters. With "
            "history on the script dominates, and it spreads with the "
            "users."
            % (xor_note(nc["channels"]), 100.0 * same / tot,
               "; ".join("slot %d on %s" % (x[1], x[2])
                         for x in nc["channels"])))

if reading:
    md.append("### Reading")
    md.append("")
    for t in reading:
        md.append(t)
        md.append("")

# what went wrong, if anything
probs = [r for r in runs if r["lost"] or r["duplicates"] or r["reordered"]
         or r["misrouted"] or r["delivered_false"] or r["server_errors"]
         or r["crashes"] or r["log_problems"] or r["rc"]
         or not r["workers_same"] or r["pairs_failed"]]
md.append("### Loss, errors, the error log")
md.append("")
if not probs:
    md.append("Every run: nothing lost, doubled, reordered or misrouted, "
              "every chat answered `delivered:true`, no warning or error in "
              "the error logs, no worker restarted.")
else:
    md.append("| run | lost | duplicates | reordered | misrouted | "
              "delivered:false | error replies | worker crashes | error "
              "log lines (warn and worse) | wsload exit |")
    md.append("|---|---|---|---|---|---|---|---|---|---|")
    for r in probs:
        md.append("| %s | %d | %d | %d | %d | %d | %d | %d | %d | %d |" % (
            r["id"], r["lost"], r["duplicates"], r["reordered"],
            r["misrouted"], r["delivered_false"], r["server_errors"],
            r["crashes"], len(r["log_problems"]), r["rc"]))
    for r in probs:
        if r["delivered_false"] and not r["lost"]:
            md.append("")
            md.append("%s: %d chats answered `delivered:false` all arrived "
                      "(lost 0): the Redis reply to the publication, or the "
                      "receiving worker's ack, came after `ack_timeout` "
                      "(500 ms by default), in a stall of the run (latency "
                      "max %s, p99 %s), which the error log's warnings "
                      "date." % (r["id"], r["delivered_false"],
                                 us(r["max_us"]), us(r["p99_us"])))
    seen = {}
    for r in probs:
        for l in r["log_problems"]:
            k = re.sub(r"^\S+ \S+ ", "", l)
            k = re.sub(r"\d+", "N", k)
            seen.setdefault(k, [0, l])[0] += 1
    if seen:
        md.append("")
        md.append("Error log lines (the first of each kind, numbers "
                  "aside, and how many):")
        md.append("")
        for k, (n, l) in sorted(seen.items(), key=lambda x: -x[1][0])[:20]:
            md.append("    %dx %s" % (n, l[:300]))
md.append("")

section = "\n".join(md) + "\n"
with open(os.path.join(args.work, "section.md"), "w") as f:
    f.write(section)

out = {"idle": idle, "node_channels": node_channels,
       "runs_began": time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                   time.gmtime(first_run_wall())),
       "generated": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
       "machine": machine, "nginx": args.nginx, "redis": args.redis,
       "module": args.module, "history": args.history,
       "nodes": nodes, "summary": summary, "runs": runs}
with open(os.path.join(args.work, "cluster.json"), "w") as f:
    json.dump(out, f, indent=1)
if args.json:
    with open(args.json, "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")

# the section of RESULTS.md: replaced where it is, else added at the end
if args.results:
    head = "## Redis Cluster: 1 shard vs 3 shards\n"
    text = open(args.results).read() if os.path.exists(args.results) else ""
    i = text.find(head)
    if i < 0:
        text = text.rstrip("\n") + "\n\n" + section
    else:
        j = text.find("\n## ", i + len(head))
        if j < 0:
            text = text[:i] + section
        else:
            text = text[:i] + section + "\n" + text[j + 1:]
    with open(args.results, "w") as f:
        f.write(text)

print(section)
