#!/usr/bin/python3
"""The delivery gap of one failover run, and the summary of all runs
(bench/failover.sh).

    failover-report.py run DIR        reads DIR/run.json, DIR/events.txt
                                      (wsload --events), DIR/wsload.json,
                                      the sentinels' and nginx's logs;
                                      writes DIR/result.json, prints a line
    failover-report.py summary OUT    every OUT/runs/*/result.json:
                                      OUT/summary.json, markdown on stdout
    failover-report.py check DIR PORT...  while the servers still run:
                                      are the chats that were lost though
                                      answered delivered or queued in the
                                      receiver's history on these Redis
                                      servers? JSON on stdout

Times are relative to the fault (the SIGKILL, or the SENTINEL FAILOVER
command), in ms. The gap is the longest time without any chat arriving
at a cross-worker receiver, from the last arrival before the fault on;
"before" and "after" are the arrivals that bound it.
"""

import glob
import json
import os
import re
import socket
import statistics
import sys
import time

LATE_MS = 100       # a chat that took longer than this was held up

HISTORY = {'off': 'no history', 'on': '`size=1000`',
           'unverified': '`size=1000 resume_unverified=on`'}


def ms(ns):
    return None if ns is None else ns / 1e6


def read_events(path):
    sends = {}          # pair -> {seq: sched}
    recv = []           # (recv, pair, seq, sched, flag, id)
    acks = {}           # pair -> {seq: (time, delivered, queued, id)}
    pairs = {}          # pair -> (kind, sender pid, receiver pid,
                        #          sender, receiver)
    drops = []          # (time, pair, role, 'D' or 'B')
    with open(path) as f:
        for line in f:
            w = line.split()
            if not w or w[0] == '#':
                continue
            t = w[0]
            if t == 'S':
                sends.setdefault(w[2], {})[int(w[3])] = int(w[1])
            elif t == 'R':
                recv.append((int(w[1]), w[2], int(w[3]), int(w[4]),
                             int(w[5]), w[6], w[7]))
            elif t == 'A':
                acks.setdefault(w[2], {})[int(w[3])] = (int(w[1]), w[4],
                                                        w[5], w[6])
            elif t == 'P':
                pairs[w[1]] = (int(w[2]), int(w[3]), int(w[4]), w[5], w[6])
            elif t in 'DB':
                drops.append((int(w[1]), w[2], w[3], t))
    return sends, recv, acks, pairs, drops


def longest_gap(times, fault):
    """(before, after) around the longest pause in the sorted times from
    the last one before the fault on"""
    earlier = [t for t in times if t < fault]
    since = earlier[-1] if earlier else fault
    times = [t for t in times if t >= since]
    best = (None, None)
    for a, b in zip(times, times[1:]):
        if best[0] is None or b - a > best[1] - best[0]:
            best = (a, b)
    return best


SENTINEL_LINE = re.compile(
    r'^\d+:X (\d+ \w+ \d+ \d+:\d+:\d+\.\d+) [#*.-] (\+\S+) (.*)$')


def sentinel_events(dirname, old_port):
    """earliest time (ns) of each sentinel event about the master, over
    the three sentinels' logs"""
    first = {}
    for path in glob.glob(os.path.join(dirname, 'redis', 'sentinel-*.log')):
        with open(path, errors='replace') as f:
            for line in f:
                m = SENTINEL_LINE.match(line.rstrip('\n'))
                if not m:
                    continue
                stamp, event, rest = m.groups()
                if event in ('+sdown', '+odown') and \
                        not rest.startswith('master '):
                    continue
                day, frac = stamp.rsplit('.', 1)
                t = time.mktime(time.strptime(day, '%d %b %Y %H:%M:%S'))
                ns = int(t * 1e9) + int(frac.ljust(3, '0')[:3]) * 1000000
                if event not in first or ns < first[event]:
                    first[event] = ns
    return first


def metric_sum(path, name):
    total = None
    try:
        with open(path) as f:
            for line in f:
                if line.startswith(name) and not line.startswith('#'):
                    v = float(line.split()[-1])
                    total = (total or 0) + v
    except OSError:
        pass
    return total


def broken_promises(sends, recv, acks, pairs):
    """the chats answered delivered:true or queued:true that never arrived:
    [(pair, seq, sched, reply time, delivered, queued, id)]"""
    got = {(r[1], r[2]) for r in recv}
    out = []
    for p, ss in sends.items():
        for seq, sched in ss.items():
            a = acks.get(p, {}).get(seq)
            if a and '1' in (a[1], a[2]) and (p, seq) not in got:
                out.append((p, seq, sched) + a)
    return sorted(out, key=lambda x: x[2])


def resp_cmd(port, *args):
    """one command to the Redis on 127.0.0.1:port; the reply as Python
    values (None for a nil), or an exception"""
    req = b'*%d\r\n' % len(args)
    for a in args:
        a = a.encode()
        req += b'$%d\r\n%s\r\n' % (len(a), a)
    with socket.create_connection(('127.0.0.1', port), timeout=2) as s:
        s.sendall(req)
        f = s.makefile('rb')
        return resp_read(f)


def resp_read(f):
    line = f.readline()
    if not line:
        raise EOFError('connection closed')
    kind, rest = line[:1], line[1:-2]
    if kind == b'+':
        return rest.decode()
    if kind == b'-':
        raise RuntimeError(rest.decode())
    if kind == b':':
        return int(rest)
    if kind == b'$':
        n = int(rest)
        if n < 0:
            return None
        data = f.read(n + 2)[:-2]
        return data.decode(errors='replace')
    if kind == b'*':
        n = int(rest)
        return None if n < 0 else [resp_read(f) for _ in range(n)]
    raise RuntimeError('bad reply %r' % line)


def check_cmd(d, ports, prefix='ws_relay:'):
    sends, recv, acks, pairs, drops = read_events(
        os.path.join(d, 'events.txt'))
    out = []
    for p, seq, sched, t, dl, q, mid in broken_promises(sends, recv, acks,
                                                        pairs):
        item = {'pair': p, 'seq': seq, 'id': mid,
                'receiver': pairs[p][4], 'found_on': [], 'errors': {}}
        for port in ports:
            key = '%sh:{%s}' % (prefix, pairs[p][4])
            try:
                if mid != '-' and resp_cmd(port, 'XRANGE', key, mid, mid):
                    item['found_on'].append(port)
            except Exception as e:      # a server that is gone or refuses
                item['errors'][port] = str(e)
        out.append(item)
    roles = {}
    for port in ports:
        try:
            roles[port] = resp_cmd(port, 'ROLE')[0]
        except Exception as e:
            roles[port] = 'error: %s' % e
    json.dump({'ports': ports, 'roles': roles, 'lost_promised': out},
              sys.stdout, indent=1)
    print()


def analyse(d):
    run = json.load(open(os.path.join(d, 'run.json')))
    tf = run['t_fault_ns']
    sends, recv, acks, pairs, drops = read_events(
        os.path.join(d, 'events.txt'))
    try:
        wl = json.load(open(os.path.join(d, 'wsload.json')))
    except (OSError, ValueError):
        wl = {'counters': {}}

    res = dict(run)
    res['dir'] = d
    res['promoted_ms'] = (ms(run['t_promoted_ns'] - tf)
                          if run.get('t_promoted_ns') else None)

    sev = sentinel_events(d, run['old_master_port'])
    res['sentinel_ms'] = {k: ms(v - tf) for k, v in sorted(sev.items())
                          if k in ('+sdown', '+odown', '+try-failover',
                                   '+elected-leader', '+selected-slave',
                                   '+promoted-slave', '+switch-master')}

    cross = {p for p, v in pairs.items() if v[0] == 2}
    res['pairs_cross'] = len(cross)
    res['pairs_not_cross'] = len(pairs) - len(cross)

    rx = sorted(r for r in recv if r[1] in cross)
    before, after = longest_gap([r[0] for r in rx], tf)
    res['last_before_ms'] = ms(before - tf) if before else None
    res['first_after_ms'] = ms(after - tf) if after else None
    res['gap_ms'] = ms(after - before) if before else None
    # the same measure without a fault: the 4 s before it
    quiet = [r[0] for r in rx if tf - 4 * 10**9 <= r[0] < tf]
    res['baseline_gap_ms'] = (ms(max(b - a for a, b in zip(quiet, quiet[1:])))
                              if len(quiet) > 1 else None)
    sw = res['sentinel_ms'].get('+switch-master')
    res['first_after_switch_ms'] = (res['first_after_ms'] - sw
                                    if after and sw is not None else None)
    if after:
        r = next(r for r in rx if r[0] == after)
        res['first_after_sent_ms'] = ms(r[3] - tf)      # its scheduled send
        res['first_after_latency_ms'] = ms(r[0] - r[3])

    # each direction (sender's worker -> receiver's worker) apart
    dirs = {}
    for p in cross:
        s, r = pairs[p][1:3]
        dirs.setdefault('%d>%d' % (s, r), set()).add(p)
    res['directions'] = {}
    for name, ps in sorted(dirs.items()):
        b, a = longest_gap([r[0] for r in rx if r[1] in ps], tf)
        res['directions'][name] = {
            'pairs': len(ps),
            'last_before_ms': ms(b - tf) if b else None,
            'first_after_ms': ms(a - tf) if a else None,
            'gap_ms': ms(a - b) if b else None}

    # per message: sent, arrived (first time), answered
    got = {}
    dups = reord = late = late_after_gap = with_id = 0
    max_latency = 0
    for t, p, seq, sched, kind, flag, mid in rx:
        if flag == 'd':
            dups += 1
            continue
        if flag == 'o':
            reord += 1
        got.setdefault(p, {})[seq] = t
        if mid != '-':
            with_id += 1
        lat = t - sched
        max_latency = max(max_latency, lat)
        if lat > LATE_MS * 10**6:
            late += 1
            if after and t >= after:
                late_after_gap += 1

    sent = lost = 0
    ack_kinds = {}          # delivered/queued -> count
    false_sched = []        # scheduled times of delivered:false chats
    false_arrived = 0       # ... that arrived all the same
    lost_by = {}            # lost chats by their reply
    lost_sched = []
    for p in cross:
        for seq, sched in sends.get(p, {}).items():
            sent += 1
            a = acks.get(p, {}).get(seq)
            k = 'no reply' if a is None else \
                'delivered:%s queued:%s' % (
                    {'1': 'true', '0': 'false'}.get(a[1], '-'),
                    {'1': 'true', '0': 'false'}.get(a[2], '-'))
            ack_kinds[k] = ack_kinds.get(k, 0) + 1
            arrived = seq in got.get(p, {})
            if a is not None and a[1] == '0':
                false_sched.append(sched)
                false_arrived += arrived
            if not arrived:
                lost += 1
                lost_by[k] = lost_by.get(k, 0) + 1
                lost_sched.append(sched)

    res['sent'] = sent
    res['received'] = sum(len(v) for v in got.values())
    res['lost'] = lost
    res['lost_by_reply'] = lost_by
    res['lost_promised'] = sum(v for k, v in lost_by.items()
                               if 'delivered:true' in k
                               or 'queued:true' in k)
    broken = broken_promises({p: sends.get(p, {}) for p in cross}, rx, acks,
                             pairs)
    res['lost_promised_sent_ms'] = [ms(x[2] - tf) for x in broken]
    try:
        kc = json.load(open(os.path.join(d, 'kept-check.json')))
        res['kept_check'] = kc
        res['lost_promised_in_redis'] = sum(
            1 for x in kc['lost_promised'] if x['found_on'])
    except (OSError, ValueError):
        res['lost_promised_in_redis'] = None
    res['lost_sent_ms'] = ([ms(min(lost_sched) - tf), ms(max(lost_sched) - tf)]
                           if lost_sched else None)
    res['replies'] = ack_kinds
    res['delivered_false'] = len(false_sched)
    res['delivered_false_arrived'] = false_arrived
    res['delivered_false_sent_ms'] = (
        [ms(min(false_sched) - tf), ms(max(false_sched) - tf)]
        if false_sched else None)
    res['duplicates'] = dups
    res['out_of_order'] = reord
    res['late'] = late
    res['late_after_gap'] = late_after_gap
    res['late_ms'] = LATE_MS
    res['max_latency_ms'] = ms(max_latency)
    res['with_id'] = with_id
    res['ws_drops'] = sum(1 for x in drops if x[3] == 'D')

    c = wl.get('counters', {})
    res['wsload'] = {k: c.get(k) for k in (
        'pairs_cross', 'sent', 'received', 'lost', 'duplicates', 'reordered',
        'acks_delivered', 'acks_undelivered', 'acks_queued', 'lost_promised',
        'acks_unkept', 'id_not_above', 'server_closes', 'eof_after_ready',
        'drops', 'misrouted', 'bogus')}
    res['latency_us'] = wl.get('latency_us', {}).get('chat_cross')
    res['cpu_pct'] = wl.get('machine', {}).get('cpu_pct')

    mp = os.path.join(d, 'metrics.txt')
    res['nginx'] = {
        'failovers_followed': metric_sum(mp, 'ws_relay_redis_failovers_total'),
        'redis_reconnects': metric_sum(mp, 'ws_relay_redis_reconnects_total'),
        'delivery_timeouts': metric_sum(mp,
                                        'ws_relay_delivery_timeouts_total'),
        'history_failed': metric_sum(mp, 'ws_relay_history_failed_total'),
        'replayed': metric_sum(mp, 'ws_relay_replayed_total')}
    errlog = os.path.join(d, 'nginx', 'logs', 'error.log')
    crit = switched = catch_ups = 0
    try:
        with open(errlog, errors='replace') as f:
            for line in f:
                if re.search(r'\[(crit|alert|emerg)\]|exited on signal', line):
                    crit += 1
                if 'redis master is' in line:
                    switched += 1
                if 'catching up after' in line:
                    catch_ups += 1
    except OSError:
        pass
    res['nginx']['log_alerts'] = crit
    res['nginx']['log_master_lines'] = switched
    res['nginx']['catch_ups'] = catch_ups
    return res


def fmt(v, nd=0):
    if v is None:
        return '-'
    if isinstance(v, float):
        v = round(v, nd)
        return ('%.' + str(nd) + 'f') % (v + 0.0)   # no "-0"
    return str(v)


def run_cmd(d):
    res = analyse(d)
    with open(os.path.join(d, 'result.json'), 'w') as f:
        json.dump(res, f, indent=1, sort_keys=True)
    print('promoted %s ms, +switch-master %s ms; gap %s ms (%s .. %s); '
          'sent %d, delivered:false %d, lost %d (promised %d), dup %d, '
          'out of order %d, late %d; ws drops %d; lost sent %s'
          % (fmt(res['promoted_ms']),
             fmt(res['sentinel_ms'].get('+switch-master')),
             fmt(res['gap_ms']), fmt(res['last_before_ms']),
             fmt(res['first_after_ms']), res['sent'],
             res['delivered_false'], res['lost'], res['lost_promised'],
             res['duplicates'], res['out_of_order'], res['late'],
             res['ws_drops'],
             '..'.join(fmt(x) for x in res['lost_sent_ms'] or [])
             or '-'))


def mmm(vals, nd=0):
    vals = [v for v in vals if v is not None]
    if not vals:
        return '-'
    lo, med, hi = min(vals), statistics.median(vals), max(vals)
    if lo == hi:
        return fmt(float(lo), nd) if isinstance(lo, float) or nd else str(lo)
    return '%s / %s / %s' % (fmt(float(lo), nd), fmt(float(med), nd),
                             fmt(float(hi), nd))


def summary_cmd(out):
    runs = []
    for p in sorted(glob.glob(os.path.join(out, 'runs', '*', 'result.json'))):
        runs.append(json.load(open(p)))
    groups = {}
    for r in runs:
        groups.setdefault((r['variant'], r['history']), []).append(r)
    order = [(v, h) for v in ('kill', 'planned')
             for h in ('off', 'on', 'unverified') if (v, h) in groups]
    with open(os.path.join(out, 'summary.json'), 'w') as f:
        json.dump({'%s, history %s' % g: groups[g] for g in order}, f,
                  indent=1, sort_keys=True)

    title = {'kill': 'SIGKILL', 'planned': 'SENTINEL FAILOVER'}
    cols = ['%s, %s (%d runs)' % (title[v], HISTORY[h], len(groups[(v, h)]))
            for v, h in order]
    rows = [
        ('sentinel +sdown / +odown of the master (log)',
         lambda r: r['sentinel_ms'].get('+sdown'), 0, ' ms'),
        ('', lambda r: r['sentinel_ms'].get('+odown'), 0, ' ms'),
        ('sentinel +switch-master (log)',
         lambda r: r['sentinel_ms'].get('+switch-master'), 0, ' ms'),
        ('get-master-addr-by-name names the replica (poll, 20 ms)',
         lambda r: r['promoted_ms'], 0, ' ms'),
        ('last cross-worker arrival before the gap',
         lambda r: r['last_before_ms'], 0, ' ms'),
        ('first cross-worker arrival after the gap',
         lambda r: r['first_after_ms'], 0, ' ms'),
        ('**gap**', lambda r: r['gap_ms'], 0, ' ms'),
        ('  without a fault: the longest pause in the 4 s before it',
         lambda r: r.get('baseline_gap_ms'), 0, ' ms'),
        ('the first arrival after the gap, from the first +switch-master',
         lambda r: r.get('first_after_switch_ms'), 0, ' ms'),
        ('the first arrival after the gap: sent at',
         lambda r: r.get('first_after_sent_ms'), 0, ' ms'),
        ('sent (cross-worker, whole run)', lambda r: r['sent'], 0, ''),
        ('replies delivered:false', lambda r: r['delivered_false'], 0, ''),
        ('  of which arrived all the same',
         lambda r: r['delivered_false_arrived'], 0, ''),
        ('**lost** (never arrived)', lambda r: r['lost'], 0, ''),
        ('  lost though answered delivered or queued',
         lambda r: r['lost_promised'], 0, ''),
        ('    of which in the receiver\'s history at the end',
         lambda r: r.get('lost_promised_in_redis'), 0, ''),
        ('  the first lost one sent at',
         lambda r: r['lost_sent_ms'] and r['lost_sent_ms'][0], 0, ' ms'),
        ('  the last lost one sent at',
         lambda r: r['lost_sent_ms'] and r['lost_sent_ms'][1], 0, ' ms'),
        ('arrived twice', lambda r: r['duplicates'], 0, ''),
        ('out of order', lambda r: r['out_of_order'], 0, ''),
        ('arrived more than %d ms after their send' % LATE_MS,
         lambda r: r['late'], 0, ''),
        ('longest delivery (scheduled send to arrival)',
         lambda r: r['max_latency_ms'], 0, ' ms'),
        ('WebSocket connections dropped', lambda r: r['ws_drops'], 0, ''),
        ('connections that caught up from the history (nginx log)',
         lambda r: r['nginx'].get('catch_ups'), 0, ''),
        ('machine idle during the traffic (/proc/stat)',
         lambda r: (r.get('cpu_pct') or {}).get('idle'), 0, '%'),
        ('machine steal during the traffic',
         lambda r: (r.get('cpu_pct') or {}).get('steal'), 1, '%'),
    ]
    print('| | ' + ' | '.join(cols) + ' |')
    print('|---|' + '---|' * len(cols))
    for label, get, nd, unit in rows:
        cells = []
        for g in order:
            s = mmm([get(r) for r in groups[g]], nd)
            cells.append(s + (unit if s != '-' else ''))
        print('| %s | %s |' % (label, ' | '.join(cells)))
    print()
    print('Times in ms from the fault; "a / b / c" is min / median / max.')
    print()
    print('Every run (times in ms from the fault):')
    print()
    print('| run | promoted (poll) | +switch-master | last before | '
          'first after | gap | per direction gap | delivered:false | lost '
          '(by reply) | dup | out of order | late | idle, steal | '
          'load avg |')
    print('|---|---|---|---|---|---|---|---|---|---|---|---|---|---|')
    for g in order:
        for r in sorted(groups[g], key=lambda r: r['round']):
            dirs = ', '.join(fmt(v['gap_ms']) for v in
                             r['directions'].values())
            lost_by = '; '.join('%s %d' % (k, v) for k, v in
                                sorted(r['lost_by_reply'].items()))
            print('| %s, %s, round %d | %s | %s | %s | %s | %s | %s '
                  '| %d | %d%s | %d | %d | %d | %s | %s |'
                  % (g[0], HISTORY[g[1]], r['round'], fmt(r['promoted_ms']),
                     fmt(r['sentinel_ms'].get('+switch-master')),
                     fmt(r['last_before_ms']), fmt(r['first_after_ms']),
                     fmt(r['gap_ms']), dirs, r['delivered_false'], r['lost'],
                     ' (%s)' % lost_by if lost_by else '',
                     r['duplicates'], r['out_of_order'], r['late'],
                     '%s%%, %s%%' % (fmt((r.get('cpu_pct') or {}).get('idle')),
                                     fmt((r.get('cpu_pct') or {}).get('steal'),
                                         1)),
                     r['loadavg']))


def main():
    if len(sys.argv) >= 4 and sys.argv[1] == 'check':
        check_cmd(sys.argv[2], [int(p) for p in sys.argv[3:]])
        return
    if len(sys.argv) != 3 or sys.argv[1] not in ('run', 'summary'):
        sys.stderr.write(__doc__)
        sys.exit(2)
    if sys.argv[1] == 'run':
        run_cmd(sys.argv[2])
    else:
        summary_cmd(sys.argv[2])


if __name__ == '__main__':
    main()
