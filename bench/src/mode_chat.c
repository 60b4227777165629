/*
 * wsload's chat mode: sender->receiver pairs.  A closed loop keeps
 * cfg.window messages in flight per pair, an open loop (cfg.rate) sends on
 * a fixed schedule; receivers check sequence, sender and timestamp.
 * With --reconnect, pairs come back after a drop: the receiver resumes
 * from the last message id it saw (engine.c), and the pair counts what
 * arrived twice, out of order or never, and which losses a dropped
 * sender had no reply to.
 * --events writes a line per chat sent, received and answered, with
 * wall-clock times, for a timeline (bench/failover.sh reads it).
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine.h"
#include "json.h"

#define WL_PAD_SLIDE       4096                /* spread of padding offsets */

static char  *g_pad;                   /* chat padding, see pad_init() */

static FILE     *g_events;             /* --events */
static int64_t   g_wall_off;           /* CLOCK_REALTIME - CLOCK_MONOTONIC */


/*
 * The event log, one line per event, times in wall-clock ns:
 *   S <sched> <pair> <seq> <kind>                    a chat sent
 *   R <recv> <pair> <seq> <sched> <kind> <n|o|d> <id>  a chat received:
 *                                    new, new out of order, duplicate
 *   A <recv> <pair> <seq> <delivered> <queued> <id> <kind>
 *                                    its chat_delivered (0, 1, - absent)
 *   P <pair> <kind> <sender's worker> <receiver's worker> <sender's user>
 *     <receiver's user>              before its first S line (workers:
 *                                    welcome.processId)
 *   D <time> <pair> <s|r>            the sender or receiver dropped
 *   B <time> <pair> <s|r>            ... and registered again
 * <pair> is <thread>.<index>, <kind> 0 unknown, 1 same, 2 cross worker,
 * <id> the message id, or - without one.  Lines of several threads
 * interleave; each is written whole.
 */
void
chat_events_open(void)
{
    struct timespec  mono, wall;

    if (cfg.events == NULL) {
        return;
    }

    g_events = fopen(cfg.events, "w");
    if (g_events == NULL) {
        die("%s: cannot write", cfg.events);
    }
    setvbuf(g_events, NULL, _IOFBF, 1 << 20);

    clock_gettime(CLOCK_MONOTONIC, &mono);
    clock_gettime(CLOCK_REALTIME, &wall);
    g_wall_off = ((int64_t) wall.tv_sec - (int64_t) mono.tv_sec)
                 * 1000000000 + (wall.tv_nsec - mono.tv_nsec);

    fprintf(g_events, "# wsload events 1: S sched pair seq kind | R recv "
            "pair seq sched kind flag id | A recv pair seq delivered queued "
            "id kind | P pair kind sender_pid receiver_pid sender receiver | "
            "D/B time pair role\n");
}


void
chat_events_close(void)
{
    if (g_events != NULL) {
        fclose(g_events);
        g_events = NULL;
    }
}


static long long
wall(uint64_t mono)
{
    return (long long) ((int64_t) mono + g_wall_off);
}


/*
 * Chat padding: JSON-like records with varying values, so that deflate
 * meets what chat traffic offers (repeated keys, changing values) rather
 * than a run of one letter.  No quotes or backslashes: it goes into the
 * JSON string as is.  Fixed seed: the same text, so the same compression,
 * in every run; each message copies a slice from its own offset.
 */
void
pad_init(void)
{
    static const char  *states[] = { "online", "away", "busy", "offline" };
    static const char  *rooms[] = { "lobby", "general", "random", "support",
                                    "dev" };
    uint64_t            rng = 0x9e3779b97f4a7c15ULL, r;
    size_t              len = (size_t) cfg.size + WL_PAD_SLIDE, n = 0;

    g_pad = malloc(len + 128);
    if (g_pad == NULL) {
        die("out of memory");
    }

    while (n < len) {
        r = rng_next(&rng);
        n += (size_t) sprintf(g_pad + n, "{id:%u,user:user-%u,state:%s,"
                              "room:%s-%u,score:%u},",
                              (unsigned) (r % 100000),
                              (unsigned) ((r >> 20) % 5000),
                              states[(r >> 40) & 3], rooms[(r >> 44) % 5],
                              (unsigned) ((r >> 48) % 10),
                              (unsigned) ((r >> 52) % 1000));
    }
}


void
chat_send(wl_thread_t *th, wl_pair_t *p, uint64_t ts)
{
    char      text[64], *buf, stackbuf[512];
    size_t    tlen, need, pad;
    int       n;

    n = snprintf(text, sizeof(text), "%llu:%llu",
                 (unsigned long long) p->st.next_seq,
                 (unsigned long long) ts);
    tlen = (size_t) n;
    pad = (cfg.size > (long) tlen + 1) ? (size_t) cfg.size - tlen - 1 : 0;

    need = tlen + pad + strlen(p->rcv->uid) + 64;
    buf = (need <= sizeof(stackbuf)) ? stackbuf : malloc(need);
    if (buf == NULL) {
        return;
    }

    n = snprintf(buf, need, "{\"type\":\"chat\",\"targetUserId\":\"%s\","
                 "\"text\":\"%s", p->rcv->uid, text);
    if (pad) {
        buf[n++] = ':';
        memcpy(buf + n, g_pad + (p->st.next_seq * 61 + (uint64_t) p->index * 7)
                                % WL_PAD_SLIDE, pad);
        n += (int) pad;
    }
    buf[n++] = '"';
    buf[n++] = '}';

    if (conn_queue_frame(p->snd, WS_OP_TEXT, buf, (size_t) n) == 0) {
        if (g_events && p->st.next_seq == 0) {
            fprintf(g_events, "P %d.%d %d %d %d %s %s\n", th->index,
                    p->index, p->kind, p->snd->pid, p->rcv->pid, p->snd->uid,
                    p->rcv->uid);
        }
        if (g_events) {
            fprintf(g_events, "S %lld %d.%d %llu %d\n", wall(ts), th->index,
                    p->index, (unsigned long long) p->st.next_seq, p->kind);
        }
        p->st.next_seq++;
        th->res.c[WC_sent]++;
    }

    if (buf != stackbuf) {
        free(buf);
    }
}


static void
on_chat(wl_thread_t *th, wl_conn_t *c, const char *m, size_t n,
    uint64_t now)
{
    wl_pair_t   *p = c->pair;
    const char  *v;
    size_t       vlen;
    uint64_t     seq, ts;
    int          fresh;
    char         flag;

    if (json_get(m, n, "text", &v, &vlen) != JSON_STRING
        || parse_u64_pair(v, vlen, &seq, &ts) != 0)
    {
        th->res.c[WC_bogus]++;
        return;
    }

    if (!json_str_eq(m, n, "sender", p->snd->uid)) {
        th->res.c[WC_misrouted]++;
    }

    flag = 'n';

    switch (stream_receive(&p->st, seq)) {

    case ST_BOGUS:
        th->res.c[WC_bogus]++;
        return;

    case ST_DUPLICATE:
        th->res.c[WC_duplicates]++;
        p->dups++;
        fresh = 0;
        flag = 'd';
        break;

    case ST_REORDERED:
        th->res.c[WC_reordered]++;
        p->reordered++;
        flag = 'o';
        /* fall through */

    default:
        fresh = 1;
        break;
    }

    if (g_events) {
        if (json_get(m, n, "id", &v, &vlen) != JSON_STRING || vlen == 0
            || vlen > 64 || memchr(v, ' ', vlen) != NULL)
        {
            v = "-";
            vlen = 1;
        }
        fprintf(g_events, "R %lld %d.%d %llu %lld %d %c %.*s\n", wall(now),
                th->index, p->index, (unsigned long long) seq, wall(ts),
                p->kind, flag, (int) vlen, v);
    }

    /* ids (history on): the same on every copy, rising with each new one */
    if (json_get(m, n, "id", &v, &vlen) == JSON_STRING) {
        th->res.c[WC_with_id]++;

        switch (idtrack_see(&p->ids, v, vlen)) {

        case ID_BAD:
            th->res.c[WC_bad_id]++;
            break;

        case ID_NOT_ABOVE:
            if (fresh) {
                th->res.c[WC_id_not_above]++;
            }
            break;

        case ID_ABOVE:
            break;
        }
    }

    if (!fresh) {
        return;
    }

    th->res.c[WC_received]++;

    if (c->came_back && ts < c->t_ready) {
        th->res.c[WC_received_resumed]++;
    }

    if (seq < p->slack_below && p->slack > 0) {
        p->slack--;
    }

    if (ts >= g_meas_start && ts < g_meas_end && now >= ts) {
        th->res.c[WC_received_window]++;
        hist_record(&th->res.h[WH_CHAT], now - ts);

        if (p->kind == 1) {
            th->res.c[WC_received_same]++;
            hist_record(&th->res.h[WH_CHAT_SAME], now - ts);

        } else if (p->kind == 2) {
            th->res.c[WC_received_cross]++;
            hist_record(&th->res.h[WH_CHAT_CROSS], now - ts);
        }
    }

    /* closed loop: one in, one out */
    if (cfg.rate == 0 && phase_get() == PH_RUN && pair_can_send(p)
        && p->st.next_seq - p->st.unique < (uint64_t) cfg.window + p->slack)
    {
        chat_send(th, p, now_ns());
    }
}


/* The A line of a chat_delivered (its chat: the next one unanswered). */
static void
chat_event_ack(wl_thread_t *th, wl_pair_t *p, const char *m, size_t n,
    const char *id, size_t idlen, uint64_t now)
{
    const char  *v;
    size_t       vlen;
    char         delivered, queued;

    delivered = (json_get(m, n, "delivered", &v, &vlen) == JSON_LITERAL)
                ? (vlen == 4 && memcmp(v, "true", 4) == 0) ? '1' : '0'
                : '-';
    queued = (json_get(m, n, "queued", &v, &vlen) == JSON_LITERAL)
             ? (vlen == 4 && memcmp(v, "true", 4) == 0) ? '1' : '0'
             : '-';

    if (id == NULL || idlen == 0 || idlen > 64
        || memchr(id, ' ', idlen) != NULL)
    {
        id = "-";
        idlen = 1;
    }

    fprintf(g_events, "A %lld %d.%d %llu %c %c %.*s %d\n", wall(now),
            th->index, p->index,
            (unsigned long long) (p->conn_first_seq + p->conn_acks),
            delivered, queued, (int) idlen, id, p->kind);
}


/* Chat messages to receivers, delivery reports to senders. */
int
chat_message(wl_thread_t *th, wl_conn_t *c, const char *m, size_t n,
    const char *type, size_t tlen, uint64_t now)
{
    const char  *v;
    size_t       vlen;
    int          promised;
    wl_pair_t   *p = c->pair;

    if (WL_TYPE_IS(type, tlen, "chat") && c->role == ROLE_RECEIVER) {
        on_chat(th, c, m, n, now);
        return 1;
    }

    if (WL_TYPE_IS(type, tlen, "chat_delivered") && c->role == ROLE_SENDER) {
        promised = 0;

        if (json_get(m, n, "delivered", &v, &vlen) == JSON_LITERAL
            && vlen == 4 && memcmp(v, "true", 4) == 0)
        {
            th->res.c[WC_acks_delivered]++;
            promised = 1;

        } else {
            th->res.c[WC_acks_undelivered]++;
        }

        if (json_get(m, n, "queued", &v, &vlen) == JSON_LITERAL
            && vlen == 4 && memcmp(v, "true", 4) == 0)
        {
            th->res.c[WC_acks_queued]++;
            promised = 1;
        }

        if (!promised) {
            th->res.c[WC_acks_unkept]++;
        }

        if (json_get(m, n, "id", &v, &vlen) == JSON_STRING) {
            th->res.c[WC_acks_with_id]++;

        } else {
            v = NULL;
        }

        if (g_events) {
            chat_event_ack(th, p, m, n, v, vlen, now);
        }

        /* replies come in the order of the chats on this connection */
        if (promised) {
            p->promised.next_seq = p->st.next_seq;
            stream_receive(&p->promised, p->conn_first_seq + p->conn_acks);
        }
        p->conn_acks++;
        return 1;
    }

    return 0;
}


static long
chat_sockets(void)
{
    return 2 * cfg.pairs;
}


static void
chat_thread_init(wl_thread_t *th, long n)
{
    size_t  i;

    thread_alloc(th, 2 * (size_t) n, (size_t) n);

    for (i = 0; i < th->npairs; i++) {
        th->pairs[i].index = (int) i;
        th->pairs[i].snd = &th->conns[2 * i];
        th->pairs[i].rcv = &th->conns[2 * i + 1];
        conn_init(&th->conns[2 * i], th, ROLE_SENDER, "s", i);
        conn_init(&th->conns[2 * i + 1], th, ROLE_RECEIVER, "r", i);
        th->conns[2 * i].pair = &th->pairs[i];
        th->conns[2 * i + 1].pair = &th->pairs[i];
    }
}


/* Closed loop: every usable pair gets its window of messages. */
static void
chat_run(wl_thread_t *th, uint64_t now)
{
    size_t  i;
    long    w;

    if (cfg.rate != 0) {
        return;
    }

    for (i = 0; i < th->npairs; i++) {
        if (!pair_can_send(&th->pairs[i])) {
            continue;
        }
        for (w = 0; w < cfg.window; w++) {
            chat_send(th, &th->pairs[i], now);
        }
    }
}


/*
 * Closed loop: the messages still awaited when a pair's sender or
 * receiver came back may never come (history off, or sent into a
 * connection that was closing): they stop holding the window, and get
 * their place back if they arrive after all.
 */
static void
chat_refill(wl_thread_t *th, wl_pair_t *p)
{
    if (cfg.rate != 0 || phase_get() != PH_RUN) {
        return;
    }

    p->slack = p->st.next_seq - p->st.unique;
    p->slack_below = p->st.next_seq;

    while (pair_can_send(p)
           && p->st.next_seq - p->st.unique < (uint64_t) cfg.window + p->slack)
    {
        chat_send(th, p, now_ns());
    }
}


/* A sender dropped: its chats not yet answered may not have arrived. */
static void
chat_dropped(wl_thread_t *th, wl_conn_t *c, uint64_t now)
{
    wl_pair_t  *p = c->pair;
    uint64_t  (*r)[2], from;

    if (g_events) {
        fprintf(g_events, "D %lld %d.%d %c\n", wall(now), th->index,
                p->index, c->role == ROLE_SENDER ? 's' : 'r');
    }

    if (c->role != ROLE_SENDER) {
        return;
    }

    from = p->conn_first_seq + p->conn_acks;
    if (from >= p->st.next_seq) {
        return;
    }

    r = realloc(p->unacked, (p->nunacked + 1) * sizeof(*r));
    if (r == NULL) {
        return;
    }

    r[p->nunacked][0] = from;
    r[p->nunacked][1] = p->st.next_seq;
    p->unacked = r;
    p->nunacked++;
}


static void
chat_resumed(wl_thread_t *th, wl_conn_t *c, uint64_t now)
{
    wl_pair_t  *p = c->pair;

    if (g_events) {
        fprintf(g_events, "B %lld %d.%d %c\n", wall(now), th->index,
                p->index, c->role == ROLE_SENDER ? 's' : 'r');
    }

    if (c->role == ROLE_SENDER) {
        p->conn_first_seq = p->st.next_seq;
        p->conn_acks = 0;
    }

    chat_refill(th, p);
}


/* Per pair: losses a dropped sender had no reply to; pairs with trouble. */
static void
chat_finish(wl_thread_t *th)
{
    wl_pair_t  *p;
    size_t      i, k;

    for (i = 0; i < th->npairs; i++) {
        p = &th->pairs[i];

        for (k = 0; k < p->nunacked; k++) {
            th->res.c[WC_lost_unacked] +=
                stream_missing_range(&p->st, p->unacked[k][0],
                                     p->unacked[k][1]);
        }

        th->res.c[WC_lost_promised] += stream_missing_marked(&p->st,
                                                             &p->promised);
        stream_free(&p->promised);

        th->res.c[WC_pairs_lossy] += stream_missing(&p->st) > 0;
        th->res.c[WC_pairs_dup] += p->dups > 0;
        th->res.c[WC_pairs_reordered] += p->reordered > 0;

        free(p->unacked);
        p->unacked = NULL;
        p->nunacked = 0;
    }
}


const wl_mode_ops_t  wl_chat_mode = {
    .units = &cfg.pairs,
    .lost = WC_lost,
    .sockets = chat_sockets,
    .thread_init = chat_thread_init,
    .run = chat_run,
    .send = chat_send,
    .message = chat_message,
    .dropped = chat_dropped,
    .resumed = chat_resumed,
    .finish = chat_finish,
};
