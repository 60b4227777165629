#!/usr/bin/python3
"""Turns the steps recorded by run-suite.sh into bench/RESULTS.md and
bench/results.json.  Each step is runs/<id>.step.json (scenario, label,
command, the /proc/stat line before and after, extra measurements) plus
the wsload --json output runs/<id>.wsload.json."""

import argparse
import datetime
import glob
import json
import os
import platform
import re

ap = argparse.ArgumentParser()
ap.add_argument("--runs", required=True)
ap.add_argument("--out", default=".")
ap.add_argument("--nginx", default="")
ap.add_argument("--redis", default="")
ap.add_argument("--http-extra", default="")
ap.add_argument("--duration", default="")
ap.add_argument("--command", default="make bench")
ap.add_argument("--module", default="")
ap.add_argument("--history", default="",
                help="scenario 11's ws_relay_history parameters")
ap.add_argument("--quiet", nargs=3, metavar=("CPU0", "CPU1", "SHELL"),
                help="only print others_pct over runs/quiet.ps0..ps1")
args = ap.parse_args()
args.nginx = args.nginx.replace("nginx/", "")


def cpu_split(c0, c1):
    """Percentages of the machine's time between two 'cpu' lines."""
    a = [int(x) for x in c0.split()[1:]]
    b = [int(x) for x in c1.split()[1:]]
    d = [y - x for x, y in zip(a, b)]
    names = ["user", "nice", "system", "idle", "iowait", "irq", "softirq",
             "steal"]
    tot = sum(d[:8]) or 1
    v = dict(zip(names, d))
    return {k: round(100.0 * v[k] / tot, 1)
            for k in ("user", "system", "softirq", "steal", "idle")}


def others_pct(runs, files, ours, c0, c1):
    """CPU that processes other than the suite's used, in % of the
    machine: its busy time (/proc/stat) less the suite's own processes
    (the servers and their children, and the suite's shell with the
    wsload runs it reaped).  Both are tick-sampled: an estimate."""
    def read(p):
        out = {}
        with open(os.path.join(runs, p)) as f:
            for line in f:
                v = line.split() + ["0"]
                out[v[0]] = (v[1], int(v[2]), int(v[3]))
        return out
    a, b = read(files[0]), read(files[1])
    pids = ours.split()
    shell, mine = pids[0], set(pids)
    for snap in (a, b):
        for pid, (ppid, _, _) in snap.items():
            if ppid in mine:
                mine.add(pid)
    own = 0
    for pid, (ppid, t, ct) in b.items():
        if pid in mine:
            own += t - a[pid][1] if pid in a else t
    if shell in a and shell in b:
        own += b[shell][2] - a[shell][2]
    x = [int(v) for v in c0.split()[1:9]]
    y = [int(v) for v in c1.split()[1:9]]
    d = [q - p for p, q in zip(x, y)]
    tot = sum(d) or 1
    busy = d[0] + d[1] + d[2] + d[5] + d[6]
    return round(max(0.0, 100.0 * (busy - own) / tot), 1)


SOCKET_CACHES = ("TCP", "sock_inode_cache", "dentry", "filp",
                 "eventpoll_epi", "eventpoll_pwq", "skbuff_head_cache",
                 "kmalloc-192", "kmalloc-256", "kmalloc-512", "kmalloc-1k",
                 "kmalloc-2k", "kmalloc-4k", "kmalloc-64", "kmalloc-128",
                 "kmalloc-32", "kmalloc-96")


def slab_growth(runs, files):
    """The slab caches that grew most between two /proc/slabinfo copies."""
    def read(p):
        out = {}
        with open(os.path.join(runs, p)) as f:
            for line in f.readlines()[2:]:
                x = line.split()
                out[x[0]] = int(x[2]) * int(x[3])    # num_objs * objsize
        return out
    a, b = read(files[0]), read(files[1])
    g = {k: (b[k] - a.get(k, 0)) / 1024.0 for k in b}
    top = sorted(g.items(), key=lambda kv: -kv[1])[:10]
    sock = sum(v for k, v in g.items() if k in SOCKET_CACHES and v > 0)
    return {k: round(v) for k, v in top if v > 256}, round(sock)


def fmt_us(v):
    if v is None:
        return "-"
    if v >= 10000:
        return "%.0f ms" % (v / 1000)
    if v >= 1000:
        return "%.1f ms" % (v / 1000)
    return "%.0f µs" % v


def lat(h, keys=("p50", "p99", "p99.9", "max")):
    if not h or not h.get("count"):
        return "no samples"
    return ", ".join("%s %s" % (k, fmt_us(h.get(k))) for k in keys)


def failures(w):
    c = w["counters"]
    bad = {k: v for k, v in c.items()
           if v and (k.startswith("fail_") or k in (
               "lost", "duplicates", "reordered", "misrouted", "bogus",
               "protocol_errors", "bad_utf8", "server_errors",
               "eof_after_ready", "api_http_error", "api_bad_reply",
               "api_conn_errors", "api_lost", "api_duplicates",
               "pairs_failed", "pairs_misplaced", "close_timeout",
               "deflate_declined", "pings_lost"))}
    if w["mode"] == "busy":
        # a chat not delivered, or an answer the bomber did not deserve
        bad.update({k: c[k] for k in ("acks_undelivered", "bomb_other")
                    if c[k]})
        if not c["victim_placed"]:
            bad["victim_not_on_the_bomber_worker"] = 1
    return bad


def wire(w):
    """Bytes through wsload's sockets per chat message received, and how
    much the data messages shrank on the wire (inflated / as framed), for
    the runs that pad or compress; None for the others."""
    c, p = w["counters"], w["params"]
    if not (p.get("deflate") or p.get("size")) or "wire_in" not in c:
        return None
    msgs = c["received"] or 1
    return {"read_bytes_per_msg": round(c["wire_in"] / msgs),
            "written_bytes_per_msg": round(c["wire_out"] / msgs),
            "in_ratio": round(c["data_in"] / (c["data_in_framed"] or 1), 2),
            "out_ratio": round(c["data_out"] / (c["data_out_framed"] or 1),
                               2),
            "compressed_in": c["data_in_compressed"],
            "compressed_out": c["data_out_compressed"]}


def metric_sum(path, name):
    """The sum over the workers of one /api/metrics counter, or None."""
    if not os.path.exists(path):
        return None
    total, seen = 0.0, False
    with open(path) as f:
        for line in f:
            m = re.match(r"%s(\{[^}]*\})? ([0-9.eE+-]+)$" % name, line.strip())
            if m:
                total += float(m.group(2))
                seen = True
    return total if seen else None


def chats_answered(sent, true, false):
    """What busy mode's chats got: chat_delivered true, false, nothing."""
    return ("%d sent, delivered: true %d, false %d, no answer %d"
            % (sent, true, false, sent - true - false))


def busy_checks(runs, sid):
    """Scenario 10's server side: the /api/health samples taken during the
    run, Redis reconnects and delivery timeouts from /api/metrics before
    and after, and the error log of the run: Redis links dropped, "the
    worker was busy" warnings, and alerts (a crash shows as a signal)."""
    base = os.path.join(runs, sid)
    out = {}
    if os.path.exists(base + ".health"):
        st = {}
        with open(base + ".health") as f:
            for line in f:
                v = line.split()
                if len(v) == 2:
                    st[v[1]] = st.get(v[1], 0) + 1
        out["health"] = st
    for name, key in (("ws_relay_redis_reconnects_total", "redis_reconnects"),
                      ("ws_relay_delivery_timeouts_total",
                       "delivery_timeouts")):
        a = metric_sum(base + ".metrics0", name)
        b = metric_sum(base + ".metrics1", name)
        out[key] = None if a is None or b is None else int(b - a)
    if os.path.exists(base + ".errors"):
        with open(base + ".errors", errors="replace") as f:
            lines = f.readlines()
        out["redis_links_dropped"] = sum(
            1 for l in lines if re.search(r"ws relay: redis .*link: .*"
                                          r"reconnecting", l))
        busy = [int(m.group(1)) for l in lines for m in [re.search(
            r"the worker was busy for (\d+) ms", l)] if m]
        out["busy_warnings"] = len(busy)
        out["busy_longest_ms"] = max(busy) if busy else None
        out["alerts"] = sum(1 for l in lines if re.search(
            r"\[(alert|crit|emerg)\]|exited on signal", l))
    return out


if args.quiet:
    print(json.dumps({"others_pct": others_pct(
        args.runs, ["quiet.ps0", "quiet.ps1"], args.quiet[2],
        args.quiet[0], args.quiet[1])}))
    raise SystemExit(0)

steps = []
for p in sorted(glob.glob(os.path.join(args.runs, "*.step.json")),
                key=lambda p: json.load(open(p)).get("seq", 0)):
    s = json.load(open(p))
    wp = os.path.join(args.runs, s["id"] + ".wsload.json")
    s["wsload"] = json.load(open(wp)) if os.path.exists(wp) else None
    c0, c1 = s.pop("cpu0"), s.pop("cpu1")
    s["cpu"] = cpu_split(c0, c1)
    if s["wsload"] is not None and s["wsload"]["mode"] != "connect":
        # the measured window only, as wsload saw it
        s["cpu"] = dict(s["wsload"]["machine"]["cpu_pct"])
    if "procs" in s["extra"]:
        s["cpu"]["others"] = others_pct(args.runs, s["extra"]["procs"],
                                        s["extra"]["ours"], c0, c1)
    steps.append(s)

machine = {"cpus": os.cpu_count(), "model": "", "kernel": platform.release(),
           "mem_total_kib": 0}
with open("/proc/cpuinfo") as f:
    for line in f:
        if line.startswith("model name"):
            machine["model"] = line.split(":", 1)[1].strip()
            break
with open("/proc/meminfo") as f:
    for line in f:
        if line.startswith("MemTotal:"):
            machine["mem_total_kib"] = int(line.split()[1])

rows = []          # scenario, case, figure, notes, cpu, command
summary = {}       # figures compared with the targets

row_of = {}        # step id: its index in rows
for s in steps:
    w, x, sid = s["wsload"], s["extra"], s["id"]
    floor = sid.startswith("floor-")      # a run against wsfloor
    fig, notes = "", []
    f = {}
    if w is None:
        fig = "wsload wrote no result (exit %d)" % s["rc"]
    elif sid.startswith("idle-"):
        n = x["connections"]
        est = w["counters"]["established"]
        b, d, a = x["before"], x["during"], x["after_close"]
        ng = d["nginx_workers_pss_kib"] - b["nginx_workers_pss_kib"]
        rd = d["redis_pss_kib"] - b["redis_pss_kib"]
        slab = d["slab_kib"] - b["slab_kib"]
        tcpm = (d["tcp_mem_pages"] - b["tcp_mem_pages"]) * 4
        top, sock = slab_growth(args.runs, x["slabinfo"])
        per = lambda v: v / est if est else 0.0
        f = {"connections": n, "registered": est,
             "nginx_workers_pss_kib": [b["nginx_workers_pss_kib"],
                                       d["nginx_workers_pss_kib"],
                                       a["nginx_workers_pss_kib"]],
             "redis_pss_kib": [b["redis_pss_kib"], d["redis_pss_kib"],
                               a["redis_pss_kib"]],
             "nginx_kib_per_conn": round(per(ng), 2),
             "redis_kib_per_conn": round(per(rd), 2),
             "user_space_kib_per_conn": round(per(ng + rd), 2),
             "kernel_slab_kib_per_conn": round(per(slab), 2),
             "kernel_tcp_buffers_kib_per_conn": round(per(tcpm), 2),
             "kernel_slab_growth_kib": top,
             "kernel_socket_slab_kib_per_conn": round(per(sock), 2),
             "establish_per_s": w["figures"]["establish_per_s"]}
        fig = ("**%.2f KiB/conn** user space (nginx workers %.2f + Redis "
               "%.2f); PSS workers %d → %d KiB, Redis %d → %d KiB"
               % (per(ng + rd), per(ng), per(rd), b["nginx_workers_pss_kib"],
                  d["nginx_workers_pss_kib"], b["redis_pss_kib"],
                  d["redis_pss_kib"]))
        notes.append("kernel (not counted above): slab +%.2f KiB/conn in all, "
                     "of which socket caches %.2f KiB/conn for both ends of "
                     "each loopback connection (≈ %.2f per end); TCP "
                     "buffers %.2f KiB/conn"
                     % (per(slab), per(sock), per(sock) / 2, per(tcpm)))
        notes.append("after close: workers %d KiB, Redis %d KiB"
                     % (a["nginx_workers_pss_kib"], a["redis_pss_kib"]))
        if est != n:
            notes.append("only %d of %d registered" % (est, n))
        f["deflate"] = w["params"].get("deflate", False)
        if f["deflate"]:
            notes.append("permessage-deflate negotiated by %d of %d"
                         % (est - w["counters"]["deflate_declined"], est))
        summary.setdefault("idle_deflate_kib_per_conn" if f["deflate"]
                           else "idle_kib_per_conn", {})[n] = f[
            "user_space_kib_per_conn"]
    elif w["mode"] == "connect":
        fig = "**%.0f handshakes+registers/s**; setup %s" % (
            w["figures"]["establish_per_s"],
            lat(w["latency_us"]["setup"], ("p50", "p99")))
        f = {"establish_per_s": w["figures"]["establish_per_s"],
             "setup_us": w["latency_us"]["setup"]}
        if not floor:
            summary.setdefault("handshakes_per_s", []).append(
                f["establish_per_s"])
    elif w["mode"] == "chat":
        c, L = w["counters"], w["latency_us"]
        plc = w["params"]["placement"]
        h = {"same": L["chat_same_worker"],
             "cross": L["chat_cross_worker"]}.get(plc, L["chat"])
        tp = w["figures"]["throughput_msgs_per_s"]
        f = {"msgs_per_s": tp, "latency_us": h, "placement": plc,
             "pairs_same": c["pairs_same"], "pairs_cross": c["pairs_cross"],
             "generator_cores": w["figures"]["generator_cores"]}
        if w["params"]["rate"]:
            fig = "%s; %.0f msgs/s received" % (lat(h), tp)
            notes.append("wsload's own send lag p99 %s (counted in the "
                         "latency)" % fmt_us(L["send_lag"].get("p99")))
        else:
            fig = "**%.0f msgs/s**; %s" % (tp, lat(h))
        notes.append("pairs: %d same-worker, %d cross-worker"
                     % (c["pairs_same"], c["pairs_cross"]))
        f["wire"] = wire(w)
        if f["wire"]:
            v = f["wire"]
            notes.append("wsload's sockets per message: %d bytes written, "
                         "%d read; data messages %.2f× smaller on the wire "
                         "received, %.2f× sent; compressed: %d received, "
                         "%d sent" % (v["written_bytes_per_msg"],
                                      v["read_bytes_per_msg"], v["in_ratio"],
                                      v["out_ratio"], v["compressed_in"],
                                      v["compressed_out"]))
        notes.append("wsload used %.2f cores"
                     % w["figures"]["generator_cores"])
        if not floor:
            summary[sid] = {"msgs_per_s": tp, "p50_us": h.get("p50"),
                            "p99_us": h.get("p99"), "wire": f["wire"]}
    elif w["mode"] == "busy":
        c, L, fg = w["counters"], w["latency_us"], w["figures"]
        k = busy_checks(args.runs, sid)
        f = {"ping_us": L["ping"], "pings_sent": c["pings_sent"],
             "pongs": c["pongs"], "pings_lost": c["pings_lost"],
             "victim_on_bomber_worker": bool(c["victim_placed"]),
             "bombs": w["params"].get("bombs"),
             "bomb_size": w["params"].get("bomb_size"),
             "bombs_sent": c["bombs_sent"],
             "bomb_answers_per_s": fg["bomb_answers_per_s"],
             "bomb_echoes": c["bomb_echoes"],
             "bomb_refusals": c["bomb_refusals"],
             "bomb_other": c["bomb_other"],
             "chats_sent": c["sent"],
             "chats_delivered": c["acks_delivered"],
             "chats_undelivered": c["acks_undelivered"],
             "chat_us": L["chat_cross_worker"],
             "send_lag_us": L["send_lag"], "checks": k}
        h = k.get("health", {})
        fig = ("ping round trip %s (%d pongs to %d pings, %d lost); bombs "
               "answered **%.0f/s**; cross-worker chats: %s"
               % (lat(L["ping"], ("p50", "p99", "max")), c["pongs"],
                  c["pings_sent"], c["pings_lost"], fg["bomb_answers_per_s"],
                  chats_answered(c["sent"], c["acks_delivered"],
                                 c["acks_undelivered"])))
        notes.append("victim on the bomber's worker: %s"
                     % ("yes" if c["victim_placed"] else "**no**"))
        notes.append("bombs of %s bytes (%s in turn): %d sent (the socket "
                     "buffers hold a backlog), answered: %d chats back, %d "
                     "\"Invalid message format\", %d other"
                     % (w["params"].get("bomb_size"), w["params"].get("bombs"),
                        c["bombs_sent"], c["bomb_echoes"],
                        c["bomb_refusals"], c["bomb_other"]))
        notes.append("Redis: reconnects %s, links dropped %s; /api/health "
                     "every 0.5 s: %s; \"the worker was busy\" warnings %s%s;"
                     " delivery timeouts %s"
                     % (k.get("redis_reconnects"),
                        k.get("redis_links_dropped"),
                        ", ".join("%s %d" % kv for kv in sorted(h.items()))
                        or "-", k.get("busy_warnings"),
                        " (longest %d ms)" % k["busy_longest_ms"]
                        if k.get("busy_longest_ms") else "",
                        k.get("delivery_timeouts")))
        if k.get("alerts"):
            notes.append("**%d alert, crit or signal lines in the error log**"
                         % k["alerts"])
        notes.append("chat latency %s; wsload's own send lag p99 %s "
                     "(counted in the latencies)"
                     % (lat(L["chat_cross_worker"], ("p50", "p99", "max")),
                        fmt_us(L["send_lag"].get("p99"))))
        summary[sid] = f
    elif w["mode"] == "api":
        L = w["latency_us"]
        c = w["counters"]
        f = {"replies_per_s": w["figures"]["api_replies_per_s"],
             "ok": c["api_ok"], "sent": c["api_sent"],
             "deliveries_per_s": w["figures"]["throughput_msgs_per_s"],
             "http_us": L["api_http"], "delivery_us": L["api_delivery"]}
        fig = ("**%.0f replies/s** (%d of %d requests ok), %.0f deliveries"
               "/s; HTTP %s; delivery %s"
               % (f["replies_per_s"], c["api_ok"], c["api_sent"],
                  f["deliveries_per_s"],
                  lat(L["api_http"], ("p50", "p99", "max")),
                  lat(L["api_delivery"], ("p50", "p99", "max"))))
        notes.append("wsload's own send lag p99 %s (counted in the "
                     "latency)" % fmt_us(L["send_lag"].get("p99")))
        summary[sid] = {"replies_per_s": f["replies_per_s"],
                        "delivery_p99_us": L["api_delivery"].get("p99")}
    if w is not None and "server_ns" in x and w["mode"] != "connect":
        a, b = x["server_ns"]
        d = [q - p for p, q in zip(a, b)]
        if len(d) == 2:             # older runs: run times only
            d = [d[0], 0, 0, d[1], 0, 0]
        if len(d) == 6:             # older runs: no wsfloor
            d += [0, 0, 0]
        msgs = (w["counters"]["received"] if w["mode"] == "chat"
                else w["counters"]["api_received"])
        wall = x["wall_ns"] or 1
        if w["mode"] == "busy":
            # what a bomb costs: the workers' CPU per bomb answered
            n = sum(w["counters"][k] for k in ("bomb_echoes",
                                               "bomb_refusals", "bomb_other"))
            f["server_cpu"] = {
                "nginx_ms_per_bomb": round(d[0] / 1e6 / n, 2) if n else None,
                "nginx_cores": round(d[0] / wall, 2),
                "redis_cores": round(d[3] / wall, 2),
                "nginx_runqueue_wait_ms": round(d[1] / 1e6, 1)}
            notes.append("nginx workers: %.2f cores over the run, %s ms of "
                         "CPU per bomb answered, %.0f ms runnable but waiting"
                         " for a CPU" % (f["server_cpu"]["nginx_cores"],
                                         f["server_cpu"]["nginx_ms_per_bomb"],
                                         d[1] / 1e6))
            summary[sid]["server_cpu"] = f["server_cpu"]
            msgs = 0
        if msgs and floor:
            f["server_cpu"] = {
                "floor_us_per_msg": round(d[6] / 1000.0 / msgs, 2),
                "floor_cores": round(d[6] / wall, 2),
                "floor_runqueue_wait_ms": round(d[7] / 1e6, 1),
                "messages": msgs}
            notes.append("server CPU per message: wsfloor %.1f µs (whole "
                         "run: %.2f cores)"
                         % (f["server_cpu"]["floor_us_per_msg"],
                            f["server_cpu"]["floor_cores"]))
            msgs = 0
        if msgs:
            f["server_cpu"] = {
                "nginx_us_per_msg": round(d[0] / 1000.0 / msgs, 2),
                "redis_us_per_msg": round(d[3] / 1000.0 / msgs, 2),
                "nginx_cores": round(d[0] / wall, 2),
                "redis_cores": round(d[3] / wall, 2),
                "nginx_runqueue_wait_ms": round(d[1] / 1e6, 1),
                "nginx_runqueue_wait_us_per_slice":
                    round(d[1] / 1000.0 / d[2], 1) if d[2] else None,
                "redis_runqueue_wait_ms": round(d[4] / 1e6, 1),
                "messages": msgs}
            notes.append("server CPU per message: nginx %.1f µs, Redis %.1f "
                         "µs (whole run: %.2f + %.2f cores)" % (
                             f["server_cpu"]["nginx_us_per_msg"],
                             f["server_cpu"]["redis_us_per_msg"],
                             f["server_cpu"]["nginx_cores"],
                             f["server_cpu"]["redis_cores"]))
            if d[2]:
                notes.append("nginx workers runnable but waiting for a CPU: "
                             "%.0f ms in all, %.0f µs per wake-up on average"
                             % (d[1] / 1e6, d[1] / 1000.0 / d[2]))
            if sid in summary:
                summary[sid]["server_cpu"] = f["server_cpu"]
            if sid.startswith("linear-"):
                summary.setdefault("linear", {})[x["idle_connections"]] = \
                    f["server_cpu"]["nginx_us_per_msg"] \
                    + f["server_cpu"]["redis_us_per_msg"]
    if w is not None:
        bad = failures(w)
        if bad:
            notes.append("problems: " + ", ".join(
                "%s %d" % kv for kv in sorted(bad.items())))
        else:
            notes.append("no loss, errors or failures")
        f["wsload_cpu_pct"] = w["machine"]["cpu_pct"]
    s["figures"] = f
    row_of[sid] = len(rows)
    rows.append((s["scenario"], s["label"], fig, "; ".join(notes),
                 s["cpu"], s["command"]))

# ------------------------------------------------------ beside the floor

def floor_comparison():
    """Each module run that has a wsfloor run beside it ("floor-<id>"):
    throughput (closed loop), p99, handshakes+registers per second and
    server CPU per message, module ÷ floor.  The figure in the module's
    row of the results gets the fractions too."""
    by_id = {s["id"]: s for s in steps}
    out = []
    for s in steps:
        fl = by_id.get("floor-" + s["id"])
        if fl is None or not s.get("figures") or not fl.get("figures"):
            continue
        a, b, w = s["figures"], fl["figures"], s["wsload"]
        cmp = []
        if w["mode"] == "connect":
            cmp.append(("handshakes+registers/s", a["establish_per_s"],
                        b["establish_per_s"], "%.0f /s"))
        elif w["mode"] == "chat":
            if not w["params"]["rate"]:
                cmp.append(("throughput", a["msgs_per_s"], b["msgs_per_s"],
                            "%.0f msgs/s"))
            cmp.append(("p99 latency", a["latency_us"].get("p99"),
                        b["latency_us"].get("p99"), None))
            ca, cb = a.get("server_cpu") or {}, b.get("server_cpu") or {}
            if "nginx_us_per_msg" in ca and "floor_us_per_msg" in cb:
                cmp.append(("server CPU per message (nginx + Redis; wsfloor)",
                            ca["nginx_us_per_msg"] + ca["redis_us_per_msg"],
                            cb["floor_us_per_msg"], "%.1f µs"))
        ratios = {}
        for measure, m, f, fmt in cmp:
            r = round(m / f, 3) if m is not None and f else None
            ratios[measure] = r
            out.append({"id": s["id"], "floor_id": fl["id"],
                        "scenario": s["scenario"], "case": s["label"],
                        "measure": measure, "module": m, "floor": f,
                        "module_over_floor": r,
                        "others_pct": [s["cpu"].get("others"),
                                       fl["cpu"].get("others")],
                        "fmt": fmt})
        a["floor_ratio"] = ratios
        i = row_of[s["id"]]
        scen, label, fig, notes, cpu, cmd = rows[i]
        fig += "; module ÷ floor: " + ", ".join(
            "%s **%s**" % (k.split(" (")[0], "-" if v is None else "%.2f" % v)
            for k, v in ratios.items())
        rows[i] = (scen, label, fig, notes, cpu, cmd)
    return out


floor_rows = floor_comparison()

# ---------------------------------------------------------------- targets

others_of = {s["id"]: s["cpu"].get("others") for s in steps}


def tgt(name, value, ok, goal, ids=()):
    o = [others_of[i] for i in ids if others_of.get(i) is not None]
    return {"target": name, "goal": goal, "measured": value,
            "met": ok, "others_pct": max(o) if o else None}

targets = []
ik = summary.get("idle_kib_per_conn", {})
for n in sorted(ik):
    targets.append(tgt("idle memory, %d connections" % n,
                       "%.2f KiB/conn" % ik[n], ik[n] <= 3.0,
                       "≤ 3 KiB/conn (nginx + Redis PSS)"))
    # memory does not depend on other load: no others column
ikd = summary.get("idle_deflate_kib_per_conn", {})
for n in sorted(ikd):
    targets.append(tgt("idle memory, %d connections, deflate negotiated" % n,
                       "%.2f KiB/conn" % ikd[n], ikd[n] <= 3.0,
                       "≤ 3 KiB/conn (nginx + Redis PSS)"))
if len(ik) > 2:
    # Linear growth: the cost of each further connection (the slope
    # between two sizes) is the same from 1k to 10k as from 10k to 30k.
    # KiB/conn at one size also carries what the first connection
    # allocates once (buffers, pages of nginx's connection array), which
    # weighs more at 1k than at 30k.
    ns = sorted(ik)
    grown = {n: ik[n] * n for n in ns}
    slopes = [(grown[b] - grown[a]) / (b - a) for a, b in zip(ns, ns[1:])]
    spread = (max(slopes) - min(slopes)) / max(slopes) if max(slopes) else 0
    once = grown[ns[0]] - slopes[0] * ns[0]
    targets.append(tgt("memory grows linearly (%s)"
                       % " → ".join("%dk" % (n // 1000) for n in ns),
                       "%s KiB per further connection; %.0f KiB once"
                       % (" / ".join("%.2f" % v for v in slopes), once),
                       spread < 0.15,
                       "the same KiB per further connection between "
                       "sizes (±15%)"))
if len(summary.get("linear", {})) > 1:
    lin = summary["linear"]
    vals = list(lin.values())
    spread = (max(vals) - min(vals)) / max(vals) if max(vals) else 0
    targets.append(tgt("per-message server CPU with 0/10k/28k idle "
                       "connections",
                       " / ".join("%.1f µs" % lin[n] for n in sorted(lin)),
                       spread < 0.15, "the same at every size (±15%)",
                       ["linear-%d" % n for n in lin]))
if "handshakes_per_s" in summary:
    v = max(summary["handshakes_per_s"])
    targets.append(tgt("handshakes+registers", "%.0f /s" % v, v >= 8000,
                       "≥ 8k/s", ["hs-10000", "hs-20000-c64"]))
for sid, name in (("chat-same", "chat 50×16, same worker"),
                  ("chat-cross", "chat 50×16, cross worker")):
    if sid in summary:
        v = summary[sid]
        targets.append(tgt(name + ": throughput", "%.0f msgs/s"
                           % v["msgs_per_s"], v["msgs_per_s"] >= 200000,
                           "≥ 200k msgs/s", [sid]))
        targets.append(tgt(name + ": p99", fmt_us(v["p99_us"]),
                           (v["p99_us"] or 1e12) < 10000, "< 10 ms", [sid]))
for place, goal, lim in (("same", "< 2 ms", 2000),
                         ("cross", "< 3 ms", 3000)):
    ids = [i for i in ("rate-5000-" + place, "rate-5000b-" + place)
           if i in summary]
    if ids:
        v = [summary[i]["p99_us"] or 1e12 for i in ids]
        targets.append(tgt("p99 at 5k msgs/s, %s worker (%s)"
                           % (place, "two rounds" if len(ids) > 1
                              else "one round"),
                           " / ".join(fmt_us(x) for x in v),
                           max(v) < lim, goal, ids))
if "chat-1pair" in summary:
    v = summary["chat-1pair"]["p50_us"]
    targets.append(tgt("p50, one same-worker pair, 1 in flight", fmt_us(v),
                       (v or 1e12) < 60, "< 60 µs", ["chat-1pair"]))

# ------------------------------------------------ permessage-deflate

def deflate_comparison():
    """Scenario 8 beside scenario 1, and scenario 9's rounds without and
    with deflate: (measure, without, with, difference) rows."""
    out = []
    plain_idle = summary.get("idle_kib_per_conn", {})
    for n in sorted(ikd):
        p = plain_idle.get(n)
        out.append(("idle memory, %d connections (nginx + Redis PSS)" % n,
                    "%.2f KiB/conn" % p if p is not None
                    else "- (scenario 1 not run at this size)",
                    "%.2f KiB/conn" % ikd[n],
                    "%+.2f KiB/conn" % (ikd[n] - p) if p is not None
                    else "-"))
    for r in ("a", "b", "sat"):
        a = summary.get("cost-plain-" + r)
        b = summary.get("cost-deflate-" + r)
        if not a or not b or "server_cpu" not in a or "server_cpu" not in b:
            continue
        if r == "sat":
            r = "50×16 closed loop"
            out.append(("throughput, round %s" % r,
                        "%.0f msgs/s" % a["msgs_per_s"],
                        "%.0f msgs/s" % b["msgs_per_s"],
                        "×%.2f" % (b["msgs_per_s"] / a["msgs_per_s"])
                        if a["msgs_per_s"] else "-"))
        for who in ("nginx", "redis"):
            x = a["server_cpu"][who + "_us_per_msg"]
            y = b["server_cpu"][who + "_us_per_msg"]
            out.append(("%s CPU per message, round %s"
                        % ("nginx workers" if who == "nginx" else "Redis", r),
                        "%.1f µs" % x, "%.1f µs" % y, "%+.1f µs" % (y - x)))
        if a["wire"] and b["wire"]:
            x = a["wire"]["read_bytes_per_msg"] \
                + a["wire"]["written_bytes_per_msg"]
            y = b["wire"]["read_bytes_per_msg"] \
                + b["wire"]["written_bytes_per_msg"]
            out.append(("bytes through wsload's sockets per message, "
                        "round %s" % r, "%d" % x, "%d" % y,
                        "×%.2f" % (y / x) if x else "-"))
        out.append(("latency p50 / p99, round %s" % r,
                    "%s / %s" % (fmt_us(a["p50_us"]), fmt_us(a["p99_us"])),
                    "%s / %s" % (fmt_us(b["p50_us"]), fmt_us(b["p99_us"])),
                    ""))
    return out


pmd_rows = deflate_comparison()

# ----------------------------------------------------------------- output

now = datetime.datetime.now(datetime.timezone.utc).strftime(
    "%Y-%m-%d %H:%M UTC")
result = {"generated": now, "command": args.command, "machine": machine,
          "module": args.module,
          "nginx": args.nginx, "redis": args.redis,
          "http_extra": args.http_extra, "targets": targets,
          "deflate_comparison": [dict(zip(("measure", "without", "with",
                                            "difference"), r))
                                 for r in pmd_rows],
          "floor_comparison": [{k: v for k, v in r.items() if k != "fmt"}
                               for r in floor_rows],
          "steps": [{k: s[k] for k in ("id", "scenario", "label", "command",
                                        "rc", "cpu", "figures", "extra")}
                    for s in steps]}
md = []
md.append("# Benchmark results\n")
md.append("Generated by `%s` (bench/run-suite.sh) on %s. Figures from one "
          "run; see bench/results.json for every counter and percentile.\n"
          % (args.command, now))
md.append("- Machine: %d cores, %s, %.1f GiB RAM, Linux %s. Client "
          "(wsload) and servers share the cores." % (
              machine["cpus"], machine["model"],
              machine["mem_total_kib"] / 1048576.0, machine["kernel"]))
md.append("- Servers: nginx %s with 2 workers and nginx.conf.example's "
          "directives (test ports on 127.0.0.1, worker_connections and "
          "ws_relay_max_connections raised for 30k), Redis %s on "
          "127.0.0.1; everything over loopback." % (args.nginx, args.redis))
if args.http_extra:
    md.append("- Extra http{} directives for this run: `%s`"
              % args.http_extra)
md.append("- Module: %s." % args.module)
qp = os.path.join(args.runs, "quiet-start.json")
if os.path.exists(qp):
    quiet = json.load(open(qp))
    result["others_before_pct"] = quiet["others_pct"]
    md.append("- Other processes used %.0f%% of the machine in the 3 s "
              "before the run%s." % (quiet["others_pct"],
                                    "" if quiet["others_pct"] < 5 else
                                    ": the machine was shared, so read "
                                    "throughput and tails with the "
                                    "\"others\" column"))
md.append("- CPU column: the machine's split from /proc/stat during the "
          "measured window (wsload's own reading; for connect runs the "
          "whole run, for idle memory the set-up). Steal is time the "
          "hypervisor gave to other guests; it moves tails. \"others\" "
          "estimates the CPU that processes other than the suite's servers "
          "and wsload used during the step, in % of the machine (its busy "
          "time less the suite's processes, /proc/stat and /proc/PID/stat):"
          " when it is not near 0, another load shared the cores.")
md.append("- The user/system/softirq split of /proc/stat is sampled at the "
          "100 Hz tick (CONFIG_TICK_CPU_ACCOUNTING): for light, timer-driven "
          "loads it can miss most of the busy time. Server CPU per message "
          "is exact: /proc/PID/schedstat run time of the nginx workers and "
          "of Redis over the whole run (set-up, warm-up and drain included),"
          " divided by the messages delivered.")
md.append("- Memory is PSS from /proc/PID/smaps_rollup, summed over the "
          "nginx workers (master not included), and of Redis: before the "
          "connections, and 3 s after all of them registered. Kernel "
          "figures (slab, TCP buffers from /proc/meminfo and "
          "/proc/net/sockstat) cover both ends of each loopback connection "
          "and are labelled apart.\n")

if targets:
    md.append("## Targets (issue 6)\n")
    md.append("| target | goal | measured | met | others % |")
    md.append("|---|---|---|---|---|")
    for t in targets:
        md.append("| %s | %s | %s | %s | %s |" % (
            t["target"], t["goal"], t["measured"],
            "yes" if t["met"] else "**no**",
            "-" if t["others_pct"] is None else "%.0f" % t["others_pct"]))
    md.append("")
    md.append("\"others %\": the most CPU that other processes took from "
              "the machine during the steps behind the figure; CPU-bound "
              "figures (throughput, tails) taken beside a high value say "
              "little about the relay.")
    md.append("")

md.append("## Results\n")
md.append("| scenario | case | figure | notes | CPU % user/sys/softirq/"
          "**steal**/idle; others | command |")
md.append("|---|---|---|---|---|---|")
for scen, label, fig, notes, cpu, cmd in rows:
    md.append("| %s | %s | %s | %s | %s | `%s` |" % (
        scen, label, fig, notes,
        "%.0f/%.0f/%.0f/**%.1f**/%.0f; %s" % (
            cpu["user"], cpu["system"], cpu["softirq"], cpu["steal"],
            cpu["idle"], "%.0f" % cpu["others"] if "others" in cpu
            else "-"), cmd))
md.append("")

if floor_rows:
    md.append("## Beside the floor (issue 17)\n")
    md.append("wsfloor (bench/src/floor.c) is a bare relay with the "
              "worker model of the nginx above (2 processes, a SO_REUSEPORT "
              "listener each, epoll, writes coalesced per pass of the "
              "loop) and just enough of the protocol for these runs: no "
              "Redis, no history, no deflate; a chat for a user on the "
              "other worker goes through a shared-memory map of users and "
              "a socketpair between the workers, and chat_delivered is "
              "answered without waiting for that worker. Each of its runs "
              "is the module's wsload command with the floor's URL, right "
              "beside the module's (they take turns at going first). "
              "module ÷ floor: for throughput and handshakes, the fraction "
              "of the floor that the module reaches; for p99 and CPU per "
              "message, how many times the floor's the module's is. On a "
              "shared machine the two runs of a pair may have had different "
              "neighbours: read the ratio beside both \"others\" figures.\n")
    md.append("| scenario | case | measure | module | floor | module ÷ "
              "floor | others % module / floor |")
    md.append("|---|---|---|---|---|---|---|")
    # two runs with one label (scenario 4's rounds): their ids tell them apart
    cases = {}
    for r in floor_rows:
        cases.setdefault((r["scenario"], r["case"]), set()).add(r["id"])
    for r in floor_rows:
        case = r["case"] if len(cases[(r["scenario"], r["case"])]) < 2 \
            else "%s (`%s`)" % (r["case"], r["id"])
        fm = (lambda v: fmt_us(v)) if r["fmt"] is None else \
            (lambda v, f=r["fmt"]: "-" if v is None else f % v)
        o = ["-" if v is None else "%.0f" % v for v in r["others_pct"]]
        md.append("| %s | %s | %s | %s | %s | **%s** | %s / %s |" % (
            r["scenario"], case, r["measure"], fm(r["module"]),
            fm(r["floor"]), "-" if r["module_over_floor"] is None
            else "%.2f" % r["module_over_floor"], o[0], o[1]))
    md.append("")

if pmd_rows:
    md.append("## permessage-deflate (issue 7)\n")
    md.append("Scenario 8 beside scenario 1 (idle connections), and scenario "
              "9: the same 1 KiB chat at a fixed rate without and with "
              "deflate, in alternating rounds, then in a closed loop (50 "
              "pairs × window 16) where wake-ups are shared by many "
              "messages, so that its difference is mostly zlib's. The "
              "server compresses every "
              "message of ws_relay_deflate_min_length bytes or more without "
              "context takeover; wsload compresses everything it sends, so "
              "the CPU difference is the server's inflate of each incoming "
              "message plus its deflate of each delivery.\n")
    md.append("| measure | without deflate | with deflate | difference |")
    md.append("|---|---|---|---|")
    for row in pmd_rows:
        md.append("| %s | %s | %s | %s |" % row)
    md.append("")

busy_rows = []
if "busy" in summary:
    b = summary["busy"]
    k = b["checks"]
    h = k.get("health", {})
    busy_rows = [
        ("ping round trip on the bomber's worker, p99", "≤ 10 ms",
         fmt_us(b["ping_us"].get("p99")),
         (b["ping_us"].get("p99") or 1e12) <= 10000 and b["pings_lost"] == 0),
        ("ping round trip, p50 / max", "",
         "%s / %s" % (fmt_us(b["ping_us"].get("p50")),
                      fmt_us(b["ping_us"].get("max"))), None),
        ("pings answered", "all", "%d of %d" % (b["pongs"], b["pings_sent"]),
         b["pings_lost"] == 0 and b["pongs"] > 0),
        ("bombs answered", "", "%.0f/s (%d chats back, %d refused, %d other)"
         % (b["bomb_answers_per_s"], b["bomb_echoes"], b["bomb_refusals"],
            b["bomb_other"]), None),
        ("cross-worker chats meanwhile", "all delivered:true",
         chats_answered(b["chats_sent"], b["chats_delivered"],
                        b["chats_undelivered"]),
         b["chats_delivered"] == b["chats_sent"] > 0),
        ("Redis links", "never dropped, no reconnect",
         "dropped %s, reconnects %s" % (k.get("redis_links_dropped"),
                                        k.get("redis_reconnects")),
         k.get("redis_links_dropped") == 0 and k.get("redis_reconnects") == 0),
        ("/api/health every 0.5 s", "ok whenever it answers",
         ", ".join("%s %d" % kv for kv in sorted(h.items())) or "-",
         bool(h) and not h.get("degraded")),
    ]
    result["busy"] = [dict(zip(("measure", "goal", "measured", "met"), r))
                      for r in busy_rows]
    md.append("## One busy client (issue B2)\n")
    md.append("Scenario 10: wsload busy's bomber sends compressed bombs that "
              "each inflate to %s bytes (%s in turn) as fast as its socket "
              "takes them; a victim on the same worker pings every 20 ms "
              "(round trip from the scheduled time), cross-worker pairs "
              "chat, /api/health is asked every 0.5 s (\"none\": no answer "
              "in 2 s). \"the worker was busy\" warnings: %s%s.\n"
              % (b["bomb_size"], b["bombs"], k.get("busy_warnings"),
                 " (longest %d ms)" % k["busy_longest_ms"]
                 if k.get("busy_longest_ms") else ""))
    md.append("| measure | goal | measured | met |")
    md.append("|---|---|---|---|")
    for m, g, v, ok in busy_rows:
        md.append("| %s | %s | %s | %s |" % (
            m, g, v, "-" if ok is None else "yes" if ok else "**no**"))
    md.append("")

# ------------------------------------------ history and resume (issue 14)

def redis_info(path):
    """INFO sections as a dict, and commandstats as {command: (calls,
    usec)}."""
    d, cmd = {}, {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line.startswith("cmdstat_"):
                name, rest = line.split(":", 1)
                kv = dict(x.split("=", 1) for x in rest.split(","))
                cmd[name[8:]] = (int(kv["calls"]), int(kv["usec"]))
            elif ":" in line and not line.startswith("#"):
                k, v = line.split(":", 1)
                d[k] = v
    return d, cmd


def redis_delta(sid):
    """Redis's CPU (INFO cpu) and commands (commandstats) during a step,
    the INFO calls of the suite itself left out."""
    a = os.path.join(args.runs, sid + ".redis0")
    b = os.path.join(args.runs, sid + ".redis1")
    if not (os.path.exists(a) and os.path.exists(b)):
        return None
    (d0, c0), (d1, c1) = redis_info(a), redis_info(b)
    cpu = sum(float(d1[k]) - float(d0[k])
              for k in ("used_cpu_sys", "used_cpu_user"))
    cmds = {}
    for n, (calls, usec) in c1.items():
        p0 = c0.get(n, (0, 0))
        if calls > p0[0] and n != "info":
            cmds[n] = {"calls": calls - p0[0], "usec": usec - p0[1]}
    return {"cpu_s": round(cpu, 3), "commands": cmds,
            "used_memory": [int(d0.get("used_memory", 0)),
                            int(d1.get("used_memory", 0))]}


def read_kv(path):
    out = {}
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                v = line.split(None, 1)
                if len(v) == 2:
                    out[v[0]] = v[1].strip()
    return out


def timeline_peak(lines, w=10):
    """The most events in w consecutive 100 ms buckets of the sum of
    several wsload timelines [(start_unix_ms, counts)], aligned by their
    start; and where that window starts (s after the first start)."""
    lines = [(t, c) for t, c in lines if c]
    if not lines:
        return 0, None
    t0 = min(t for t, _ in lines)
    total = {}
    for t, c in lines:
        off = int(round((t - t0) / 100.0))
        for i, v in enumerate(c):
            total[i + off] = total.get(i + off, 0) + v
    n = max(total) + 1
    b = [total.get(i, 0) for i in range(n)]
    best, at, run = 0, 0, 0
    for i in range(n):
        run += b[i]
        if i >= w:
            run -= b[i - w]
        if run > best:
            best, at = run, max(0, i + 1 - w)
    return best, at / 10.0


def reload_figures(s):
    w, x = s["wsload"], s["extra"]["reload_run"]
    c, L = w["counters"], w["latency_us"]
    ip = os.path.join(args.runs, x["idle"])
    iw = json.load(open(ip)) if os.path.exists(ip) else None
    ic = iw["counters"] if iw else {}
    tls = []
    for j in (w, iw):
        if j and "reconnect" in j:
            tls.append((j["reconnect"]["run_start_unix_ms"],
                        j["reconnect"]["reconnects"],
                        j["reconnect"]["drops"]))
    peak, peak_at = timeline_peak([(t, r) for t, r, _ in tls])
    dpeak, dpeak_at = timeline_peak([(t, d) for t, _, d in tls])
    errs = os.path.join(args.runs, s["id"] + ".errors")
    lines = open(errs, errors="replace").read().splitlines() \
        if os.path.exists(errs) else []
    crashes = sum(1 for l in lines if "exited on signal" in l)
    reloads = read_kv(os.path.join(args.runs, s["id"] + ".reloads"))
    codes = lambda j: (j or {}).get("close_codes", {})
    return {
        "drain": x["drain"], "history": x["history"],
        "sent": c["sent"], "received": c["received"], "lost": c["lost"],
        "lost_unacked": c.get("lost_unacked"),
        "lost_promised": c.get("lost_promised"),
        "acks_unkept": c.get("acks_unkept"),
        "duplicates": c["duplicates"], "reordered": c["reordered"],
        "id_not_above": c.get("id_not_above"), "with_id": c.get("with_id"),
        "resumes": c.get("resumes"),
        "recovered_true": c.get("recovered_true"),
        "recovered_false": c.get("recovered_false"),
        "recovered_missing": c.get("recovered_missing"),
        "resume_no_id": c.get("resume_no_id"),
        "early_chats": c.get("early_chats"),
        "received_resumed": c.get("received_resumed"),
        "acks_queued": c.get("acks_queued"),
        "pairs_lossy": c.get("pairs_lossy"), "pairs_dup": c.get("pairs_dup"),
        "pairs_reordered": c.get("pairs_reordered"),
        "drops": c.get("drops", 0) + ic.get("drops", 0),
        "reconnects": c.get("reconnects", 0) + ic.get("reconnects", 0),
        "reconnect_failures": c.get("reconnect_failures", 0)
        + ic.get("reconnect_failures", 0),
        "reconnects_pending": c.get("reconnects_pending", 0)
        + ic.get("reconnects_pending", 0),
        "idle_registered_again": ic.get("reconnected"),
        "closes_1001": codes(w).get("1001", 0) + codes(iw).get("1001", 0),
        "eof_after_registered": c.get("eof_after_ready", 0)
        + ic.get("eof_after_ready", 0),
        "peak_reconnects_per_s": peak, "peak_reconnects_at_s": peak_at,
        "peak_drops_per_s": dpeak, "peak_drops_at_s": dpeak_at,
        "idle_drop_to_registered_us": (iw or {}).get(
            "latency_us", {}).get("reconnect"),
        "chat_drop_to_registered_us": L.get("reconnect"),
        "chat_latency_us": L["chat"], "send_lag_us": L["send_lag"],
        "worker_crashes": crashes,
        "error_log_lines": {k: sum(1 for l in lines if "[%s]" % k in l)
                            for k in ("alert", "crit", "error", "warn")},
        "reloads": len(reloads) or None,
        "cpu": s["cpu"], "command": s["command"],
        "idle_command": x.get("idle_command"),
    }


hist_reload, hist_cmp, hist_mem = [], {}, []
for s in steps:
    sid = s["id"]
    if not sid.startswith("hist-") or s["wsload"] is None:
        continue
    w = s["wsload"]
    if sid.startswith("hist-reload-"):
        f = reload_figures(s)
        f["id"] = sid
        hist_reload.append(f)
    elif sid.startswith("hist-mem-"):
        k = read_kv(os.path.join(args.runs, sid + ".redis"))
        ent = open(os.path.join(args.runs, sid + ".entry")).read().split(
            "\n") if os.path.exists(os.path.join(args.runs, sid + ".entry")) \
            else []
        # XRANGE's first entry: id, then field/value pairs
        fields = [l for l in ent[1:] if l != ""]
        stored = sum(len(v.encode()) for v in fields[1::2])
        xlen = int(k.get("xlen") or 0)
        mu = int(k.get("memory_usage") or 0) if k.get(
            "memory_usage", "").isdigit() else None
        hist_mem.append({
            "id": sid, "label": s["label"], "sent": w["counters"]["sent"],
            "size": w["params"]["size"], "kept": xlen, "key": k.get("key"),
            "memory_usage": mu,
            "bytes_per_kept": round(mu / xlen, 1) if mu and xlen else None,
            "stored_value_bytes": stored, "fields": fields[0::2],
            "meta_memory_usage": k.get("meta_memory_usage"),
            "pttl_ms": k.get("pttl"), "meta_pttl_ms": k.get("meta_pttl"),
            "command": s["command"]})
    else:
        m = re.match(r"hist-(cl-(same|cross)|rate)-(on|off)-(\d+)$", sid)
        if not m:
            continue
        kind = "closed loop, %s worker" % m.group(2) if m.group(2) \
            else "5000 msgs/s, cross worker"
        rd = redis_delta(sid)
        f = dict(s.get("figures") or {})
        msgs = w["counters"]["received"]
        if rd and msgs:
            calls = sum(v["calls"] for v in rd["commands"].values())
            f["redis_info"] = dict(rd, **{
                "cpu_us_per_msg": round(rd["cpu_s"] * 1e6 / msgs, 2),
                "commands_per_msg": round(calls / float(msgs), 2),
                "command_usec_per_msg": {
                    n: round(v["usec"] / float(msgs), 2)
                    for n, v in rd["commands"].items()}})
        f["steal"] = s["cpu"].get("steal")
        f["others"] = s["cpu"].get("others")
        f["command"] = s["command"]
        hist_cmp.setdefault(kind, {}).setdefault(m.group(4), {})[
            m.group(3)] = f

if hist_reload or hist_cmp or hist_mem:
    result["history"] = {"reloads": hist_reload, "on_off": hist_cmp,
                         "memory": hist_mem}
    md.append("## History and resume (issue 14): scenario 11\n")
    md.append("One nginx, two WebSocket locations: `/` without history, "
              "`/h/` with `ws_relay_history %s`; the reloads with "
              "`ws_relay_drain` and without it (0), every chat pair and idle "
              "connection with `--reconnect` (it comes back after close 1001 "
              "or EOF, a receiver registers with `\"since\"`: the last id it "
              "saw).\n" % (args.history or "(none)"))
    if hist_reload:
        md.append("| run | drain | history | sent | received | lost: in "
                  "all / no reply (sent as the sender's connection closed) / "
                  "answered delivered or queued | duplicates | "
                  "out of order | resumes: recovered true / false | drops "
                  "(1001 / EOF) | reconnect attempts (failed) | peak "
                  "reconnects/s | peak drops/s | drop → registered p50 / "
                  "p99, idle | chat latency p50 / p99 / max | worker "
                  "crashes | steal % |")
        md.append("|---|---|---|---|---|---|---|---|---|---|---|---|---|"
                  "---|---|---|---|")
        for f in hist_reload:
            ih = f["idle_drop_to_registered_us"] or {}
            md.append("| %s | %s | %s | %d | %d | %d / %s / %s | %d | %d | "
                      "%s / %s | %d (%d / %d) | %d (%d) | %d | %d | "
                      "%s / %s | %s / %s / %s | %d | %.1f |" % (
                          f["id"], f["drain"], f["history"], f["sent"],
                          f["received"], f["lost"], f["lost_unacked"],
                          f["lost_promised"],
                          f["duplicates"], f["reordered"],
                          f["recovered_true"], f["recovered_false"],
                          f["drops"], f["closes_1001"],
                          f["eof_after_registered"], f["reconnects"],
                          f["reconnect_failures"],
                          f["peak_reconnects_per_s"], f["peak_drops_per_s"],
                          fmt_us(ih.get("p50")), fmt_us(ih.get("p99")),
                          fmt_us(f["chat_latency_us"].get("p50")),
                          fmt_us(f["chat_latency_us"].get("p99")),
                          fmt_us(f["chat_latency_us"].get("max")),
                          f["worker_crashes"], f["cpu"].get("steal", 0)))
        md.append("")
    if hist_cmp:
        md.append("| load | round | throughput off → on | p99 off → on | "
                  "nginx CPU/msg off → on | Redis CPU/msg off → on "
                  "(schedstat) | Redis CPU/msg off → on (INFO cpu) | Redis "
                  "commands/msg off → on | steal % off / on |")
        md.append("|---|---|---|---|---|---|---|---|---|")
        for kind in sorted(hist_cmp):
            for rnd in sorted(hist_cmp[kind]):
                a = hist_cmp[kind][rnd].get("off", {})
                b = hist_cmp[kind][rnd].get("on", {})
                g = lambda f, k: (f.get("server_cpu") or {}).get(k)
                ri = lambda f, k: (f.get("redis_info") or {}).get(k)
                num = lambda v, fmt: "-" if v is None else fmt % v
                md.append("| %s | %s | %s → %s | %s → %s | %s → %s | %s → %s"
                          " | %s → %s | %s → %s | %s / %s |" % (
                              kind, rnd,
                              num(a.get("msgs_per_s"), "%.0f"),
                              num(b.get("msgs_per_s"), "%.0f"),
                              fmt_us((a.get("latency_us") or {}).get("p99")),
                              fmt_us((b.get("latency_us") or {}).get("p99")),
                              num(g(a, "nginx_us_per_msg"), "%.1f µs"),
                              num(g(b, "nginx_us_per_msg"), "%.1f µs"),
                              num(g(a, "redis_us_per_msg"), "%.1f µs"),
                              num(g(b, "redis_us_per_msg"), "%.1f µs"),
                              num(ri(a, "cpu_us_per_msg"), "%.1f µs"),
                              num(ri(b, "cpu_us_per_msg"), "%.1f µs"),
                              num(ri(a, "commands_per_msg"), "%.2f"),
                              num(ri(b, "commands_per_msg"), "%.2f"),
                              num(a.get("steal"), "%.1f"),
                              num(b.get("steal"), "%.1f")))
        md.append("")
    if hist_mem:
        md.append("| messages sent | text | kept (XLEN) | MEMORY USAGE of "
                  "the stream | bytes per kept message | stored value "
                  "bytes (first entry) | meta hash MEMORY USAGE |")
        md.append("|---|---|---|---|---|---|---|")
        for f in hist_mem:
            md.append("| %d | %s | %d | %s | %s | %d | %s |" % (
                f["sent"], "%d bytes" % f["size"] if f["size"] else
                "default (\"<seq>:<ns>\")", f["kept"], f["memory_usage"],
                f["bytes_per_kept"], f["stored_value_bytes"],
                f["meta_memory_usage"]))
        md.append("")

idle = [s for s in steps if s["id"].startswith("idle-") and s["figures"]]
if idle:
    md.append("## Kernel memory per idle connection (not in the figures "
              "above)\n")
    md.append("Kernel memory is not part of the per-connection figures. "
              "Slab caches that grew the most while the connections sat "
              "idle (KiB, whole machine: server and client sockets both "
              "live in this kernel; caches such as proc_inode_cache also "
              "move with unrelated activity):\n")
    for s in idle:
        md.append("- %d connections%s: %s" % (
            s["figures"]["connections"],
            ", deflate negotiated" if s["figures"]["deflate"] else "",
            ", ".join(
                "%s %d" % kv for kv in
                s["figures"]["kernel_slab_growth_kib"].items())))
    md.append("")

with open(os.path.join(args.out, "RESULTS.md"), "w") as f:
    f.write("\n".join(md))

with open(os.path.join(args.out, "results.json"), "w") as f:
    json.dump(result, f, indent=1)
    f.write("\n")
