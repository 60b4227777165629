/*
 * wsload's engine: connections, the event loop, threads.
 *
 * Each thread owns its connections and one epoll instance; a chat pair's
 * two connections live on the same thread so the closed loop never
 * crosses threads.  Frames are queued per connection and written once per
 * event-loop pass (one write per socket per pass, not per message).  What
 * a mode adds comes through its wl_mode_ops_t (g_mode).
 */

#define _GNU_SOURCE

#include <errno.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>

#include "engine.h"
#include "json.h"

#define WL_MAX_MESSAGE     (16 * 1024 * 1024)
#define WL_SCRATCH         (256 * 1024)
#define WL_TICK_NS         20000000ULL         /* housekeeping every 20 ms */
#define WL_LATE_NS         1000000ULL

uint64_t              g_run_start;
uint64_t              g_meas_start;
uint64_t              g_meas_end;

static wl_thread_t   *threads;
static int            g_phase;
static int            g_ready;
static int            g_drained;
static int            g_closed;


/* ---- helpers ---- */

uint64_t
now_ns(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t) ts.tv_sec * 1000000000ULL + (uint64_t) ts.tv_nsec;
}


void
die(const char *fmt, ...)
{
    va_list  ap;

    va_start(ap, fmt);
    fprintf(stderr, "wsload: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(2);
}


uint64_t
rng_next(uint64_t *s)
{
    uint64_t  x = *s;

    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545f4914f6cdd1dULL;
}


/* The share of total that part index of parts gets. */
long
share(long total, int parts, int index)
{
    return total / parts + (index < total % parts ? 1 : 0);
}


/* ---- phases ---- */

int
phase_get(void)
{
    return __atomic_load_n(&g_phase, __ATOMIC_ACQUIRE);
}


void
set_phase(int ph)
{
    __atomic_store_n(&g_phase, ph, __ATOMIC_RELEASE);
}


int
all_ready(void)
{
    return __atomic_load_n(&g_ready, __ATOMIC_ACQUIRE) >= cfg.threads;
}


int
all_drained(void)
{
    return __atomic_load_n(&g_drained, __ATOMIC_ACQUIRE) >= cfg.threads;
}


int
all_closed(void)
{
    return __atomic_load_n(&g_closed, __ATOMIC_ACQUIRE) >= cfg.threads;
}


/* ---- connection buffers and writes ---- */

static int
wbuf_reserve(wl_conn_t *c, size_t n)
{
    size_t    cap;
    uint8_t  *nb;

    if (c->woff && c->woff == c->wlen) {
        c->woff = c->wlen = 0;
    }

    if (c->wlen + n <= c->wcap) {
        return 0;
    }

    if (c->woff) {
        memmove(c->wbuf, c->wbuf + c->woff, c->wlen - c->woff);
        c->wlen -= c->woff;
        c->woff = 0;
        if (c->wlen + n <= c->wcap) {
            return 0;
        }
    }

    cap = c->wcap ? c->wcap : 512;
    while (cap < c->wlen + n) {
        cap *= 2;
    }

    nb = realloc(c->wbuf, cap);
    if (nb == NULL) {
        return -1;
    }

    c->wbuf = nb;
    c->wcap = cap;
    return 0;
}


static void
conn_mark_dirty(wl_conn_t *c)
{
    if (!c->dirty) {
        c->dirty = 1;
        c->next_dirty = c->th->dirty;
        c->th->dirty = c;
    }
}


int
conn_queue_raw(wl_conn_t *c, const void *data, size_t len)
{
    if (wbuf_reserve(c, len) != 0) {
        return -1;
    }

    memcpy(c->wbuf + c->wlen, data, len);
    c->wlen += len;
    conn_mark_dirty(c);
    return 0;
}


static int
conn_queue_encoded(wl_conn_t *c, int opcode, const void *payload, size_t len)
{
    uint32_t  mask = (uint32_t) rng_next(&c->th->rng);

    if (wbuf_reserve(c, ws_frame_size(len)) != 0) {
        return -1;
    }

    c->wlen += ws_frame_encode(c->wbuf + c->wlen, opcode, 1, payload, len,
                               mask);
    conn_mark_dirty(c);
    return 0;
}


/* Data frames go out compressed once permessage-deflate is negotiated. */
int
conn_queue_frame(wl_conn_t *c, int opcode, const void *payload, size_t len)
{
    wl_thread_t     *th = c->th;
    const uint8_t   *z;

    if (opcode < WS_OP_CLOSE) {
        th->res.c[WC_data_out] += len;

        if (c->reasm.deflate) {
            if (pmd_deflate(&th->deflater, payload, len, &z, &len) != 0) {
                return -1;
            }
            payload = z;
            opcode |= WS_RSV1;
            th->res.c[WC_data_out_compressed]++;
        }

        th->res.c[WC_data_out_framed] += len;
    }

    return conn_queue_encoded(c, opcode, payload, len);
}


/*
 * A data message compressed beforehand (zlen bytes that inflate to len),
 * sent as it is with RSV1: permessage-deflate must be negotiated.
 */
int
conn_queue_compressed(wl_conn_t *c, int opcode, const void *z, size_t zlen,
    size_t len)
{
    wl_thread_t  *th = c->th;

    if (!c->reasm.deflate) {
        return -1;
    }

    th->res.c[WC_data_out] += len;
    th->res.c[WC_data_out_compressed]++;
    th->res.c[WC_data_out_framed] += zlen;

    return conn_queue_encoded(c, opcode | WS_RSV1, z, zlen);
}


/* Returns 0, or -1 when the socket failed. */
static int
conn_flush(wl_conn_t *c)
{
    ssize_t  n;

    while (c->woff < c->wlen) {
        n = send(c->fd, c->wbuf + c->woff, c->wlen - c->woff, MSG_NOSIGNAL);
        if (n > 0) {
            c->woff += (size_t) n;
            c->th->res.c[WC_wire_out] += (uint64_t) n;
            continue;
        }

        if (n < 0 && errno == EINTR) {
            continue;
        }

        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            return 0;           /* EPOLLOUT (edge) resumes */
        }

        return -1;
    }

    c->woff = c->wlen = 0;

    /* a burst may have grown the buffer: give it back */
    if (c->wcap > 65536) {
        free(c->wbuf);
        c->wbuf = NULL;
        c->wcap = 0;
    }

    return 0;
}


void
conn_close_fd(wl_conn_t *c)
{
    if (c->fd >= 0) {
        close(c->fd);
        c->fd = -1;
        c->th->nopen--;
    }

    c->state = CS_IDLE;
    c->rlen = 0;
    c->wlen = c->woff = 0;
    c->hq_len = 0;
    ws_reasm_free(&c->reasm);
}


/* ---- connection life ---- */

static void pair_check(wl_thread_t *th, wl_pair_t *p);


/* --reconnect: c is no longer on its way back. */
static void
reconn_end(wl_conn_t *c)
{
    if (c->reconn != RC_NONE) {
        c->reconn = RC_NONE;
        c->th->reconn_active--;
    }
}


/* --reconnect: c waits for its next attempt, or gives up at the end. */
static void
reconn_wait(wl_conn_t *c, uint64_t now)
{
    wl_thread_t  *th = c->th;

    if (phase_get() >= PH_CLOSE) {
        th->res.c[WC_reconnects_pending]++;
        reconn_end(c);
        return;
    }

    c->reconn = RC_WAITING;
    c->reconnect_at = now + backoff_ns(cfg.backoff, cfg.backoff_max,
                                       c->tries, rng_next(&th->rng));
}


static void
conn_setup_failed(wl_conn_t *c, int counter)
{
    wl_thread_t  *th = c->th;

    if (c->reconn == RC_CONNECTING) {
        /* an attempt to come back failed: try again later */
        th->res.c[WC_reconnect_failures]++;
        conn_close_fd(c);
        th->inprogress--;
        c->tries++;
        reconn_wait(c, now_ns());
        return;
    }

    th->res.c[counter]++;
    conn_close_fd(c);
    th->inprogress--;

    if (c->pair) {
        c->pair->broken = 1;
        pair_check(th, c->pair);
    }
}


static void
conn_ready(wl_conn_t *c, uint64_t now)
{
    wl_thread_t  *th = c->th;

    c->state = CS_READY;
    c->t_ready = now;
    th->inprogress--;

    if (c->reconn == RC_CONNECTING) {
        reconn_end(c);
        c->came_back = 1;
        c->tries = 0;
        th->res.c[WC_reconnected]++;
        hist_record(&th->res.h[WH_RECONNECT], now - c->t_drop);
        if (g_mode->resumed) {
            g_mode->resumed(th, c, now);
        }
        return;
    }

    th->res.c[WC_established]++;
    hist_record(&th->res.h[WH_SETUP], now - c->t_start);

    if (now > th->res.setup_last_ns) {
        th->res.setup_last_ns = now;
    }

    if (c->pair) {
        pair_check(th, c->pair);
    }
}


/*
 * A registered connection went away: a pair still being set up fails;
 * with --reconnect, one dropped while the load runs comes back.
 */
static void
conn_dropped(wl_conn_t *c)
{
    wl_thread_t  *th = c->th;
    uint64_t      now;
    int           ph;

    if (c->pair && !c->pair->settled) {
        c->pair->broken = 1;
        pair_check(th, c->pair);
        return;
    }

    ph = phase_get();
    if (!cfg.reconnect || ph < PH_RUN || ph >= PH_CLOSE
        || c->reconn != RC_NONE)
    {
        return;
    }

    now = now_ns();
    th->res.c[WC_drops]++;
    timeline_add(&th->res.drops, now - g_run_start);

    if (g_mode->dropped) {
        g_mode->dropped(th, c, now);
    }

    c->t_drop = now;
    c->tries = 0;
    th->reconn_active++;
    reconn_wait(c, now);
}


/*
 * Opens a TCP connection to url, bound to 127.0.0.x when spreading.  The
 * few API connections never spread: an API is usually allowed from
 * 127.0.0.1 only (as in nginx.conf.example).
 */
int
tcp_open(wl_thread_t *th, const wl_url_t *url, int spread, int *err)
{
    struct sockaddr_in  src;
    int                 fd, one = 1;

    fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        *err = errno;
        return -1;
    }

    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));

    if (spread && cfg.src_ips > 0 && url->loopback) {
        /* the port is chosen at connect(), per destination 4-tuple */
        setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one,
                   sizeof(one));
        memset(&src, 0, sizeof(src));
        src.sin_family = AF_INET;
        src.sin_addr.s_addr = htonl(0x7f000001u
                                    + (th->src_counter % cfg.src_ips));
        th->src_counter += (uint32_t) (cfg.threads * cfg.procs);

        if (bind(fd, (struct sockaddr *) &src, sizeof(src)) != 0) {
            *err = errno;
            close(fd);
            return -1;
        }
    }

    if (connect(fd, (const struct sockaddr *) &url->addr, sizeof(url->addr))
        != 0 && errno != EINPROGRESS)
    {
        *err = errno;
        close(fd);
        return -1;
    }

    return fd;
}


int
epoll_add(wl_thread_t *th, wl_conn_t *c)
{
    struct epoll_event  ev;

    ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
    ev.data.ptr = c;
    return epoll_ctl(th->ep, EPOLL_CTL_ADD, c->fd, &ev);
}


static void
conn_start(wl_conn_t *c, uint64_t now)
{
    wl_thread_t  *th = c->th;
    const wl_url_t  *url;
    int           err = 0;

    url = (c->role == ROLE_RECEIVER) ? &cfg.peer_url : &cfg.url;

    if (c->reconn == RC_WAITING) {
        c->reconn = RC_CONNECTING;
        th->res.c[WC_reconnects]++;
        timeline_add(&th->res.reconnects, now - g_run_start);

    } else {
        th->res.c[WC_attempted]++;
        if (th->res.setup_first_ns == 0 || now < th->res.setup_first_ns) {
            th->res.setup_first_ns = now;
        }
    }

    th->inprogress++;
    c->t_start = now;
    c->deadline = now + (uint64_t) (cfg.timeout * 1e9);
    c->got_welcome = c->got_register = 0;
    c->sent_close = 0;
    c->pid = 0;
    ws_reasm_init(&c->reasm, WL_MAX_MESSAGE);

    c->fd = tcp_open(th, url, 1, &err);
    if (c->fd < 0) {
        th->inprogress--;
        if (c->reconn == RC_CONNECTING) {
            th->res.c[WC_reconnect_failures]++;
            c->tries++;
            reconn_wait(c, now);
            return;
        }
        th->res.c[err == ECONNREFUSED ? WC_fail_refused
                  : (err == EMFILE || err == ENFILE) ? WC_fail_fdlimit
                  : err == EADDRNOTAVAIL ? WC_fail_addr
                  : WC_fail_connect]++;
        if (c->pair) {
            c->pair->broken = 1;
            pair_check(th, c->pair);
        }
        return;
    }

    th->nopen++;
    c->state = CS_CONNECTING;

    if (epoll_add(th, c) != 0) {
        conn_setup_failed(c, WC_fail_connect);
    }
}


static void
conn_send_handshake(wl_conn_t *c)
{
    const wl_url_t  *url;
    uint8_t          raw[16];
    uint64_t         r1, r2;
    char             req[2048];
    int              n;

    url = (c->role == ROLE_RECEIVER) ? &cfg.peer_url : &cfg.url;

    r1 = rng_next(&c->th->rng);
    r2 = rng_next(&c->th->rng);
    memcpy(raw, &r1, 8);
    memcpy(raw + 8, &r2, 8);
    base64_encode(raw, 16, c->key);

    n = snprintf(req, sizeof(req),
                 "GET %s HTTP/1.1\r\n"
                 "Host: %s\r\n"
                 "Upgrade: websocket\r\n"
                 "Connection: Upgrade\r\n"
                 "Sec-WebSocket-Key: %s\r\n"
                 "Sec-WebSocket-Version: 13\r\n"
                 "%s"
                 "\r\n",
                 url->path, url->hostport, c->key,
                 cfg.deflate ? "Sec-WebSocket-Extensions: " PMD_OFFER "\r\n"
                             : "");

    c->state = CS_HANDSHAKE;
    if (conn_queue_raw(c, req, (size_t) n) != 0) {
        conn_setup_failed(c, WC_fail_connect);
    }
}


/*
 * The register message; a receiver that comes back resumes from the last
 * message id it saw (resume_since()).
 */
static void
conn_send_register(wl_conn_t *c)
{
    wl_thread_t  *th = c->th;
    const char   *since = NULL;
    char          msg[256];
    size_t        n;

    c->sent_since = 0;

    if (c->reconn == RC_CONNECTING && c->role == ROLE_RECEIVER && c->pair) {
        since = resume_since(&c->pair->ids, c->pair->st.unique);
        if (since == NULL) {
            th->res.c[WC_resume_no_id]++;

        } else {
            c->sent_since = 1;
            th->res.c[WC_resumes]++;
        }
    }

    n = resume_register(msg, sizeof(msg), c->uid, since);
    conn_queue_frame(c, WS_OP_TEXT, msg, n);
}


static void
conn_begin_close(wl_conn_t *c, int code, uint64_t now)
{
    uint8_t  p[2];

    p[0] = (uint8_t) (code >> 8);
    p[1] = (uint8_t) code;

    if (!c->sent_close) {
        conn_queue_frame(c, WS_OP_CLOSE, p, 2);
        c->sent_close = 1;
    }

    c->state = CS_CLOSING;
    c->deadline = now + (uint64_t) (cfg.close_wait * 1e9);
}


/* Answers a close from the server and drops the socket. */
static void
conn_answer_close(wl_conn_t *c, const uint8_t *payload, size_t len)
{
    if (!c->sent_close) {
        conn_queue_frame(c, WS_OP_CLOSE, payload, len >= 2 ? 2 : 0);
        c->sent_close = 1;
        conn_flush(c);
    }

    conn_close_fd(c);
}


static void
record_close_code(wl_result_t *r, int code)
{
    r->close_codes[(code >= 1000 && code <= 1015) ? code - 1000 : 16]++;
}

/* ---- pairs (chat pairs, api users) and placement ---- */

static void
pair_settle(wl_thread_t *th, wl_pair_t *p)
{
    if (p->settled) {
        return;
    }

    p->settled = 1;

    if (p->broken) {
        th->res.c[WC_pairs_failed]++;
        return;
    }

    if (p->rcv == NULL) {
        return;                 /* api user: no placement */
    }

    if (p->snd->pid == 0 || p->rcv->pid == 0) {
        p->kind = 0;
        th->res.c[WC_pairs_unknown]++;

    } else if (p->snd->pid == p->rcv->pid) {
        p->kind = 1;
        th->res.c[WC_pairs_same]++;

    } else {
        p->kind = 2;
        th->res.c[WC_pairs_cross]++;
    }

    if ((cfg.placement == PLACE_SAME && p->kind != 1)
        || (cfg.placement == PLACE_CROSS && p->kind != 2))
    {
        th->res.c[WC_pairs_misplaced]++;
    }
}


/*
 * Drops a registered connection and connects it again as a fresh user
 * (its id ends in "~tries"): the way to another worker, as reuseport
 * places each new connection by its source port.
 */
void
conn_reconnect(wl_conn_t *c, long tries)
{
    wl_thread_t  *th = c->th;
    char         *tilde;

    th->res.c[WC_placement_retries]++;
    th->res.c[WC_established]--;
    th->res.c[WC_attempted]--;
    conn_begin_close(c, 1000, now_ns());
    conn_flush(c);
    conn_close_fd(c);

    tilde = strchr(c->uid, '~');
    if (tilde == NULL) {
        tilde = c->uid + strlen(c->uid);
    }
    snprintf(tilde, sizeof(c->uid) - (size_t) (tilde - c->uid), "~%ld",
             tries);
    conn_start(c, now_ns());
}


static void
pair_check(wl_thread_t *th, wl_pair_t *p)
{
    wl_conn_t  *r = p->rcv;
    int         want_same;

    if (p->settled) {
        return;
    }

    if (p->broken) {
        /* wait until the partner's attempt is over too */
        if ((p->snd->state != CS_CONNECTING && p->snd->state != CS_HANDSHAKE
             && p->snd->state != CS_SETUP)
            && (r == NULL || (r->state != CS_CONNECTING
                              && r->state != CS_HANDSHAKE
                              && r->state != CS_SETUP)))
        {
            pair_settle(th, p);
        }
        return;
    }

    if (p->snd->state != CS_READY || (r && r->state != CS_READY)) {
        return;
    }

    if (r == NULL || cfg.placement == PLACE_ANY
        || p->snd->pid == 0 || r->pid == 0
        || p->tries >= cfg.placement_tries)
    {
        pair_settle(th, p);
        return;
    }

    want_same = (cfg.placement == PLACE_SAME);
    if ((p->snd->pid == r->pid) == want_same) {
        pair_settle(th, p);
        return;
    }

    /* wrong worker: drop the receiver and reconnect it as a fresh user */
    conn_reconnect(r, ++p->tries);
}


int
pair_usable(const wl_pair_t *p)
{
    return p->settled && !p->broken && p->snd->state == CS_READY
           && (p->rcv == NULL || p->rcv->state == CS_READY);
}


/*
 * The pair may send: with --reconnect, while its receiver is away too
 * (what the server keeps for it comes when it resumes).
 */
int
pair_can_send(const wl_pair_t *p)
{
    return cfg.reconnect ? p->settled && !p->broken
                           && p->snd->state == CS_READY
                         : pair_usable(p);
}


/* ---- WebSocket receive path ---- */

/* What the register reply of a resume says of the history. */
static void
register_recovered(wl_thread_t *th, const char *m, size_t n)
{
    const char  *v;
    size_t       vlen;

    if (json_get(m, n, "recovered", &v, &vlen) != JSON_LITERAL) {
        th->res.c[WC_recovered_missing]++;

    } else if (vlen == 4 && memcmp(v, "true", 4) == 0) {
        th->res.c[WC_recovered_true]++;

    } else {
        th->res.c[WC_recovered_false]++;
    }
}


static void
on_message(wl_thread_t *th, wl_conn_t *c, const ws_msg_t *msg, uint64_t now)
{
    const char  *m = (const char *) msg->data, *v;
    size_t       n = msg->len, vlen;
    uint64_t     pid;

    if (msg->opcode == WS_OP_TEXT && !ws_utf8_valid(msg->data, msg->len)) {
        th->res.c[WC_bad_utf8]++;
    }

    if (json_get(m, n, "type", &v, &vlen) != JSON_STRING) {
        th->res.c[WC_unexpected]++;
        return;
    }

    if (c->state == CS_SETUP) {
        if (WL_TYPE_IS(v, vlen, "welcome")) {
            c->got_welcome = 1;
            if (json_get_u64(m, n, "processId", &pid) == 0) {
                c->pid = (int) pid;
            }

        } else if (WL_TYPE_IS(v, vlen, "register")) {
            if (!json_str_eq(m, n, "status", "success")) {
                conn_setup_failed(c, WC_fail_register);
                return;
            }
            c->got_register = 1;

            if (c->sent_since) {
                register_recovered(th, m, n);
            }

        } else if (c->reconn == RC_CONNECTING && c->got_welcome
                   && WL_TYPE_IS(v, vlen, "chat") && g_mode->message)
        {
            /* a resume must answer the register before it replays */
            th->res.c[WC_early_chats]++;
            g_mode->message(th, c, m, n, v, vlen, now);

        } else if (WL_TYPE_IS(v, vlen, "error")) {
            /* at capacity the server says so, then closes with 1013 */
            conn_setup_failed(c, memmem(m, n, "capacity", 8)
                                 ? WC_fail_capacity : WC_fail_register);
            return;

        } else {
            th->res.c[WC_unexpected]++;
        }

        if (c->got_welcome && c->got_register) {
            conn_ready(c, now);
        }
        return;
    }

    if (g_mode->message && g_mode->message(th, c, m, n, v, vlen, now)) {
        return;
    }

    if (WL_TYPE_IS(v, vlen, "error")) {
        th->res.c[WC_server_errors]++;

    } else if (!WL_TYPE_IS(v, vlen, "pong")) {
        th->res.c[WC_unexpected]++;
    }
}


/* A protocol error from the server: count it, close with code, drop. */
static void
conn_protocol_error(wl_conn_t *c, int code, uint64_t now)
{
    wl_thread_t  *th = c->th;

    if (c->state == CS_READY || c->state == CS_CLOSING) {
        th->res.c[WC_protocol_errors]++;
        conn_begin_close(c, code, now);
        conn_flush(c);
        conn_close_fd(c);
        conn_dropped(c);

    } else {
        conn_begin_close(c, code, now);
        conn_flush(c);
        conn_setup_failed(c, WC_fail_protocol);
    }
}


static void
on_control(wl_thread_t *th, wl_conn_t *c, const ws_msg_t *msg, uint64_t now)
{
    int  code;

    switch (msg->opcode) {

    case WS_OP_PING:
        th->res.c[WC_pings]++;
        if (!c->sent_close) {
            conn_queue_frame(c, WS_OP_PONG, msg->data, msg->len);
        }
        return;

    case WS_OP_PONG:
        return;

    default:    /* close */
        code = ws_close_code(msg->data, msg->len);
        if (code < 0) {
            conn_protocol_error(c, 1002, now);
            return;
        }

        if (c->state == CS_CLOSING) {
            th->res.c[WC_close_clean]++;
            conn_close_fd(c);
            return;
        }

        record_close_code(&th->res, code);

        if (c->state == CS_SETUP) {
            conn_answer_close(c, msg->data, msg->len);
            conn_setup_failed(c, code == 1013 ? WC_fail_capacity
                                              : WC_fail_closed);
            return;
        }

        th->res.c[WC_server_closes]++;
        conn_answer_close(c, msg->data, msg->len);
        conn_dropped(c);
        return;
    }
}


/*
 * The value of the header line at line (ending before end + 2) when it is
 * name (with its colon), without surrounding blanks; else NULL.
 */
static const char *
header_value(const char *line, const char *end, const char *name,
    size_t *vlen)
{
    const char  *val, *eol;
    size_t       nlen = strlen(name);

    if (strncasecmp(line, name, nlen) != 0) {
        return NULL;
    }

    val = line + nlen;
    while (*val == ' ' || *val == '\t') {
        val++;
    }

    eol = memchr(val, '\r', (size_t) (end + 2 - val));
    if (eol == NULL) {
        return NULL;
    }

    *vlen = (size_t) (eol - val);
    while (*vlen && (val[*vlen - 1] == ' ' || val[*vlen - 1] == '\t')) {
        (*vlen)--;
    }

    return val;
}


/* Validates the 101 reply; returns bytes consumed, 0 for more, -1 failed. */
static ssize_t
on_handshake(wl_conn_t *c, uint8_t *buf, size_t len)
{
    const char  *p = (const char *) buf, *end, *line, *val;
    char         want[WS_ACCEPT_LEN + 1];
    int          status, ok = 0, bad_ext = 0, deflate = 0;
    size_t       vlen;

    end = memmem(p, len, "\r\n\r\n", 4);
    if (end == NULL) {
        if (len > WL_HS_MAX) {
            conn_setup_failed(c, WC_fail_status);
            return -1;
        }
        return 0;
    }

    status = (len >= 12 && memcmp(p, "HTTP/1.", 7) == 0) ? atoi(p + 9) : 0;
    if (status != 101) {
        c->th->res.last_status = status;
        conn_setup_failed(c, WC_fail_status);
        return -1;
    }

    ws_accept_for_key(c->key, strlen(c->key), want);

    for (line = memchr(p, '\n', (size_t) (end - p)); line && line < end;
         line = memchr(line, '\n', (size_t) (end + 2 - line)))
    {
        line++;

        val = header_value(line, end, "sec-websocket-accept:", &vlen);
        if (val != NULL) {
            ok = (vlen == WS_ACCEPT_LEN && memcmp(val, want, vlen) == 0);
            continue;
        }

        val = header_value(line, end, "sec-websocket-extensions:", &vlen);
        if (val != NULL
            && pmd_check_answer(cfg.deflate, val, vlen, &deflate) != 0)
        {
            bad_ext = 1;
        }
    }

    if (!ok) {
        conn_setup_failed(c, WC_fail_accept);
        return -1;
    }

    if (bad_ext) {
        conn_setup_failed(c, WC_fail_extension);
        return -1;
    }

    if (cfg.deflate && !deflate) {
        c->th->res.c[WC_deflate_declined]++;
    }

    c->reasm.deflate = deflate;
    c->state = CS_SETUP;
    conn_send_register(c);
    return (end - p) + 4;
}


/* Inflates a message that came with RSV1; -1 when the connection failed. */
static int
conn_inflate(wl_conn_t *c, ws_msg_t *msg, uint64_t now)
{
    wl_thread_t  *th = c->th;
    int           code;

    th->res.c[WC_data_in_framed] += msg->len;

    if (msg->compressed) {
        code = pmd_inflate(&th->inflater, msg->data, msg->len,
                           WL_MAX_MESSAGE, &msg->data, &msg->len);
        if (code != 0) {
            conn_protocol_error(c, code, now);
            return -1;
        }
        th->res.c[WC_data_in_compressed]++;
    }

    th->res.c[WC_data_in] += msg->len;
    return 0;
}


/*
 * Consumes what it can of buf: the handshake reply, then frames.  Returns
 * the number of bytes used, or -1 when the connection is gone.
 */
static ssize_t
conn_consume(wl_thread_t *th, wl_conn_t *c, uint8_t *buf, size_t len,
    uint64_t now)
{
    size_t       used = 0, n;
    ssize_t      hs;
    ws_frame_t   f;
    ws_msg_t     msg;
    ws_status_t  rc;

    if (c->role == ROLE_HTTP) {
        return http_read(th, c, buf, len, now);
    }

    if (c->state == CS_HANDSHAKE) {
        hs = on_handshake(c, buf, len);
        if (hs <= 0) {
            return hs;
        }
        used = (size_t) hs;
    }

    while (used < len && c->fd >= 0) {
        rc = ws_frame_parse(buf + used, len - used, WL_MAX_MESSAGE, &f, &n);

        if (rc == WS_AGAIN) {
            break;
        }

        if (rc != WS_OK) {
            conn_protocol_error(c, rc == WS_ERR_TOO_BIG ? 1009 : 1002, now);
            return -1;
        }

        used += n;

        if (f.masked) {
            /* a server must not mask (RFC 6455 5.1) */
            conn_protocol_error(c, 1002, now);
            return -1;
        }

        switch (ws_reasm_feed(&c->reasm, &f, &msg)) {

        case WS_EV_NONE:
            break;

        case WS_EV_MESSAGE:
            if (conn_inflate(c, &msg, now) != 0) {
                return -1;
            }
            if (c->state != CS_CLOSING) {
                on_message(th, c, &msg, now);
            }
            break;

        case WS_EV_CONTROL:
            on_control(th, c, &msg, now);
            break;

        case WS_EV_ERROR:
            conn_protocol_error(c, msg.close_code, now);
            return -1;
        }
    }

    return c->fd < 0 ? -1 : (ssize_t) used;
}


static void
conn_lost(wl_thread_t *th, wl_conn_t *c)
{
    if (c->role == ROLE_HTTP) {
        http_lost(th, c);
        return;
    }

    switch (c->state) {

    case CS_CONNECTING:
    case CS_HANDSHAKE:
    case CS_SETUP:
        conn_setup_failed(c, WC_fail_eof);
        return;

    case CS_CLOSING:
        th->res.c[WC_close_clean]++;
        break;

    default:
        th->res.c[WC_eof_after_ready]++;
        break;
    }

    conn_close_fd(c);
    conn_dropped(c);
}


static int
rbuf_reserve(wl_conn_t *c, size_t size)
{
    uint8_t  *nb;
    size_t    cap;

    if (size <= c->rcap) {
        return 0;
    }

    cap = c->rcap ? c->rcap : 4096;
    while (cap < size) {
        cap *= 2;
    }

    nb = realloc(c->rbuf, cap);
    if (nb == NULL) {
        return -1;
    }

    c->rbuf = nb;
    c->rcap = cap;
    return 0;
}


/* Keeps what is left of a read (a partial frame) in the connection. */
static int
conn_keep(wl_conn_t *c, const uint8_t *data, size_t len)
{
    if (len && rbuf_reserve(c, len) != 0) {
        return -1;
    }

    if (len) {
        memmove(c->rbuf, data, len);
    }
    c->rlen = len;
    return 0;
}


static void
conn_readable(wl_thread_t *th, wl_conn_t *c, uint64_t now)
{
    uint8_t  *buf;
    size_t    avail, have;
    ssize_t   n, used;

    for ( ;; ) {
        if (c->rlen) {
            /* a partial frame is pending: read behind it, growing */
            if (rbuf_reserve(c, c->rlen + 16384) != 0) {
                conn_lost(th, c);
                return;
            }
            buf = c->rbuf;
            have = c->rlen;
            avail = c->rcap - c->rlen;

        } else {
            buf = th->scratch;
            have = 0;
            avail = WL_SCRATCH;
        }

        n = recv(c->fd, buf + have, avail, 0);

        if (n == 0) {
            conn_lost(th, c);
            return;
        }

        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            if (errno != EAGAIN && errno != EWOULDBLOCK) {
                conn_lost(th, c);
            }
            return;
        }

        have += (size_t) n;
        th->res.c[WC_wire_in] += (uint64_t) n;
        used = conn_consume(th, c, buf, have, now);
        if (used < 0 || c->fd < 0) {
            return;
        }

        if (conn_keep(c, buf + used, have - (size_t) used) != 0) {
            conn_lost(th, c);
            return;
        }

        if ((size_t) n < avail) {
            return;             /* drained: edge-triggered epoll re-arms */
        }
    }
}


static void
conn_writable(wl_thread_t *th, wl_conn_t *c)
{
    int        err = 0;
    socklen_t  len = sizeof(err);

    if (c->state == CS_CONNECTING) {
        if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) {
            err = errno;
        }

        if (err == EINPROGRESS || err == EALREADY) {
            return;
        }

        if (c->role == ROLE_HTTP) {
            http_connected(th, c, err);
            return;
        }

        if (err) {
            conn_setup_failed(c, err == ECONNREFUSED ? WC_fail_refused
                                                     : WC_fail_connect);
            return;
        }

        conn_send_handshake(c);
    }

    if (c->fd >= 0 && c->woff < c->wlen) {
        conn_mark_dirty(c);
    }
}


static void
flush_dirty(wl_thread_t *th)
{
    wl_conn_t  *c;

    while ((c = th->dirty) != NULL) {
        th->dirty = c->next_dirty;
        c->dirty = 0;

        if (c->fd < 0 || c->state == CS_CONNECTING) {
            continue;
        }

        if (conn_flush(c) != 0) {
            conn_lost(th, c);
        }
    }
}

/* ---- the thread loop ---- */

static void
setup_step(wl_thread_t *th, uint64_t now)
{
    size_t  i;

    while (th->next_start < th->nconns && th->inprogress < th->concurrency) {
        conn_start(&th->conns[th->next_start++], now);
    }

    if (th->reported_ready || th->next_start < th->nconns
        || th->inprogress > 0)
    {
        return;
    }

    for (i = 0; i < th->npairs; i++) {
        if (!th->pairs[i].settled) {
            return;
        }
    }

    if (g_mode->placed && !g_mode->placed(th)) {
        return;
    }

    th->reported_ready = 1;
    __atomic_add_fetch(&g_ready, 1, __ATOMIC_RELEASE);
}


static void
timeouts_step(wl_thread_t *th, uint64_t now)
{
    wl_conn_t  *c;
    size_t      i;

    for (i = 0; i < th->nconns; i++) {
        c = &th->conns[i];

        if (c->deadline > now || c->fd < 0) {
            continue;
        }

        switch (c->state) {

        case CS_CONNECTING:
        case CS_HANDSHAKE:
        case CS_SETUP:
            conn_setup_failed(c, WC_fail_timeout);
            break;

        case CS_CLOSING:
            th->res.c[WC_close_timeout]++;
            conn_close_fd(c);
            break;

        default:
            break;
        }
    }
}


/* --reconnect: the connections whose next attempt is due. */
static void
reconnect_step(wl_thread_t *th, uint64_t now)
{
    wl_conn_t  *c;
    size_t      i;

    for (i = 0; i < th->nconns; i++) {
        c = &th->conns[i];
        if (c->reconn == RC_WAITING && c->reconnect_at <= now) {
            conn_start(c, now);
        }
    }
}


static void
on_run(wl_thread_t *th, uint64_t now)
{
    th->sched_start = g_run_start;
    th->sched_k = 0;

    if (g_mode->run) {
        g_mode->run(th, now);
    }
}


/* Open loop: sends everything scheduled up to now; returns the next time. */
static uint64_t
open_loop_step(wl_thread_t *th, uint64_t now)
{
    uint64_t   sched;
    wl_pair_t *p = NULL;
    size_t     tries;

    if (th->rate <= 0 || th->npairs == 0) {
        return UINT64_MAX;
    }

    for ( ;; ) {
        sched = th->sched_start
                + (uint64_t) ((double) th->sched_k * 1e9 / th->rate);
        if (sched > now) {
            return sched;
        }

        th->sched_k++;
        if (now - sched > WL_LATE_NS) {
            th->res.c[WC_late_sends]++;
        }

        if (sched >= g_meas_start && sched < g_meas_end) {
            hist_record(&th->res.h[WH_SEND_LAG], now - sched);
        }

        /* the next usable pair, round robin */
        for (tries = 0; tries < th->npairs; tries++) {
            p = &th->pairs[th->rr++ % th->npairs];
            if (pair_can_send(p)) {
                break;
            }
        }

        if (tries == th->npairs || p == NULL) {
            continue;
        }

        g_mode->send(th, p, sched);
    }
}


static int
thread_drained(wl_thread_t *th)
{
    wl_pair_t  *p;
    size_t      i;

    for (i = 0; i < th->npairs; i++) {
        p = &th->pairs[i];

        /* with --reconnect, a receiver on its way back may still get it */
        if ((cfg.reconnect ? p->settled && !p->broken : pair_usable(p))
            && p->st.unique < p->st.next_seq)
        {
            return 0;
        }
    }

    return g_mode->drained == NULL || g_mode->drained(th);
}


static void
on_close_phase(wl_thread_t *th, uint64_t now)
{
    wl_conn_t  *c;
    size_t      i;

    for (i = 0; i < th->nconns; i++) {
        c = &th->conns[i];

        if (c->reconn != RC_NONE) {
            /* on its way back: not registered, nothing to close cleanly */
            if (c->fd >= 0) {
                conn_close_fd(c);
                th->inprogress--;
            }
            th->res.c[WC_reconnects_pending]++;
            reconn_end(c);
            continue;
        }

        if (c->fd >= 0 && c->state != CS_CLOSING) {
            conn_begin_close(c, 1000, now);
        }
    }

    if (g_mode->close) {
        g_mode->close(th);
    }
}


static void
thread_finish(wl_thread_t *th)
{
    wl_pair_t  *p;
    size_t      i;

    for (i = 0; i < th->nconns; i++) {
        if (th->conns[i].fd >= 0) {
            if (th->conns[i].state == CS_CLOSING) {
                th->res.c[WC_close_timeout]++;
            }
            conn_close_fd(&th->conns[i]);
        }
        free(th->conns[i].rbuf);
        free(th->conns[i].wbuf);
    }

    if (g_mode->finish) {
        g_mode->finish(th);
    }

    for (i = 0; i < th->npairs; i++) {
        p = &th->pairs[i];
        th->res.c[g_mode->lost] += stream_missing(&p->st);
        stream_free(&p->st);
    }

    pmd_free(&th->deflater);
    pmd_free(&th->inflater);
}


static void *
thread_main(void *arg)
{
    wl_thread_t         *th = arg;
    struct epoll_event   evs[512];
    struct timespec      tmo;
    uint64_t             now, next_tick = 0, next_send = UINT64_MAX, wait;
    wl_conn_t           *c;
    int                  n, i, phase, seen = PH_SETUP;

    /* open-loop sends are timed by epoll's timeout: no timer slack */
    prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);

    for ( ;; ) {
        now = now_ns();
        phase = phase_get();

        if (phase != seen) {
            if (phase >= PH_RUN && seen < PH_RUN) {
                on_run(th, now);
            }
            if (phase >= PH_CLOSE && seen < PH_CLOSE) {
                on_close_phase(th, now);
            }
            seen = phase;
            if (phase == PH_EXIT) {
                break;
            }
        }

        if (phase == PH_SETUP) {
            setup_step(th, now);
        }

        next_send = UINT64_MAX;
        if (phase == PH_RUN && cfg.rate > 0) {
            next_send = open_loop_step(th, now);
        }

        if (g_mode->pass && phase <= PH_DRAIN) {
            g_mode->pass(th);
        }

        if (now >= next_tick) {
            /* deadlines exist only while connecting and closing */
            if (phase == PH_SETUP || phase >= PH_CLOSE
                || th->reconn_active > 0)
            {
                timeouts_step(th, now);
            }
            if (th->reconn_active > 0 && phase <= PH_DRAIN) {
                reconnect_step(th, now);
            }
            next_tick = now + WL_TICK_NS;

            if (phase == PH_DRAIN && !th->reported_drained
                && thread_drained(th))
            {
                th->reported_drained = 1;
                __atomic_add_fetch(&g_drained, 1, __ATOMIC_RELEASE);
            }

            if (phase == PH_CLOSE && !th->reported_closed && th->nopen == 0) {
                th->reported_closed = 1;
                __atomic_add_fetch(&g_closed, 1, __ATOMIC_RELEASE);
            }
        }

        flush_dirty(th);

        wait = next_tick - now;
        if (next_send != UINT64_MAX && next_send - now < wait) {
            wait = next_send > now ? next_send - now : 0;
        }
        tmo.tv_sec = (time_t) (wait / 1000000000ULL);
        tmo.tv_nsec = (long) (wait % 1000000000ULL);

        n = epoll_pwait2(th->ep, evs, 512, &tmo, NULL);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            die("epoll_pwait2: %s", strerror(errno));
        }

        now = now_ns();

        for (i = 0; i < n; i++) {
            c = evs[i].data.ptr;
            if (c->fd < 0) {
                continue;
            }

            if (evs[i].events & (EPOLLOUT | EPOLLERR)) {
                conn_writable(th, c);
            }

            if (c->fd >= 0 && c->state != CS_CONNECTING
                && (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLRDHUP
                                     | EPOLLERR)))
            {
                conn_readable(th, c, now);
            }
        }
    }

    thread_finish(th);
    return NULL;
}

/* ---- setup of threads, pairs and ids ---- */

/* Gives th nconns connections and npairs pairs, all zero. */
void
thread_alloc(wl_thread_t *th, size_t nconns, size_t npairs)
{
    th->nconns = nconns;
    th->npairs = npairs;
    th->conns = calloc(nconns ? nconns : 1, sizeof(wl_conn_t));
    th->pairs = calloc(npairs ? npairs : 1, sizeof(wl_pair_t));
    if (th->conns == NULL || th->pairs == NULL) {
        die("out of memory");
    }
}


void
conn_init(wl_conn_t *c, wl_thread_t *th, wl_role_t role, const char *tag,
    size_t idx)
{
    memset(c, 0, sizeof(*c));
    c->fd = -1;
    c->th = th;
    c->role = (uint8_t) role;
    snprintf(c->uid, sizeof(c->uid), "%.32s-%d-%d-%s%zu", cfg.prefix,
             cfg.proc_index, th->index, tag, idx);
}


/* Creates this process's threads and their connections, and starts them. */
void
engine_start(void)
{
    wl_thread_t  *th;
    long          total, mine, per_proc;
    int           t, gi;
    uint64_t      seed;

    threads = calloc((size_t) cfg.threads, sizeof(wl_thread_t));
    if (threads == NULL) {
        die("out of memory");
    }

    total = *g_mode->units;
    per_proc = share(total, cfg.procs, cfg.proc_index);

    if (getrandom(&seed, sizeof(seed), 0) != sizeof(seed)) {
        seed = now_ns() ^ (uint64_t) getpid() << 32;
    }

    for (t = 0; t < cfg.threads; t++) {
        th = &threads[t];
        th->index = t;
        gi = cfg.proc_index * cfg.threads + t;
        th->src_counter = (uint32_t) gi;
        th->rng = seed ^ ((uint64_t) (gi + 1) * 0x9e3779b97f4a7c15ULL);
        if (th->rng == 0) {
            th->rng = 1;
        }
        wl_result_init(&th->res);

        th->ep = epoll_create1(EPOLL_CLOEXEC);
        th->scratch = malloc(WL_SCRATCH);
        if (th->ep < 0 || th->scratch == NULL) {
            die("epoll/scratch: %s", strerror(errno));
        }

        mine = share(per_proc, cfg.threads, t);
        th->concurrency = (size_t) (cfg.concurrency / cfg.threads);
        if (th->concurrency == 0) {
            th->concurrency = 1;
        }

        g_mode->thread_init(th, mine);

        if (cfg.rate > 0 && total > 0 && th->rate == 0) {
            th->rate = cfg.rate * (double) mine / (double) total;
        }
    }

    for (t = 0; t < cfg.threads; t++) {
        if (pthread_create(&threads[t].tid, NULL, thread_main, &threads[t])
            != 0)
        {
            die("pthread_create failed");
        }
    }
}


/* Waits for the threads to end; total gets the sum of their results. */
void
engine_join(wl_result_t *total)
{
    int  i;

    wl_result_init(total);

    for (i = 0; i < cfg.threads; i++) {
        pthread_join(threads[i].tid, NULL);
        wl_result_merge(total, &threads[i].res);
    }
}
