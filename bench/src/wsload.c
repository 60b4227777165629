/*
 * wsload: WebSocket load generator for the relay protocol (PROTOCOL.md).
 *
 * Each thread owns its connections and one epoll instance; a chat pair's
 * two connections live on the same thread so the closed loop never
 * crosses threads.  Frames are queued per connection and written once per
 * event-loop pass (one write per socket per pass, not per message).
 */

#define _GNU_SOURCE

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netdb.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>

#include "json.h"
#include "pmdeflate.h"
#include "stream.h"
#include "wscodec.h"
#include "wsload.h"

#define WL_MAX_MESSAGE     (16 * 1024 * 1024)
#define WL_SCRATCH         (256 * 1024)
#define WL_HS_MAX          16384
#define WL_TICK_NS         20000000ULL         /* housekeeping every 20 ms */
#define WL_LATE_NS         1000000ULL
#define WL_PAD_SLIDE       4096                /* spread of padding offsets */

typedef enum {
    PH_SETUP = 0,
    PH_RUN,
    PH_DRAIN,
    PH_CLOSE,
    PH_EXIT
} wl_phase_t;

typedef enum {
    CS_IDLE = 0,          /* not started, or finished */
    CS_CONNECTING,
    CS_HANDSHAKE,         /* request sent, waiting for 101 */
    CS_SETUP,             /* 101 seen, waiting for welcome and register */
    CS_READY,
    CS_CLOSING            /* our close frame sent, waiting for the reply */
} wl_conn_state_t;

typedef enum {
    ROLE_IDLE = 0,
    ROLE_SENDER,
    ROLE_RECEIVER,
    ROLE_USER,            /* api mode: receives send-to-user messages */
    ROLE_HTTP             /* api mode: HTTP client connection */
} wl_role_t;

typedef struct wl_thread_s  wl_thread_t;
typedef struct wl_pair_s    wl_pair_t;
typedef struct wl_conn_s    wl_conn_t;

struct wl_pair_s {
    wl_conn_t    *snd;
    wl_conn_t    *rcv;            /* chat: receiver; api: NULL */
    stream_t      st;
    int           kind;           /* 0 unknown, 1 same, 2 cross */
    long          tries;
    int           settled;        /* placement decided (or pair failed) */
    int           broken;
    int           index;
};

struct wl_conn_s {
    int            fd;
    uint8_t        state;
    uint8_t        role;
    uint8_t        got_welcome;
    uint8_t        got_register;
    uint8_t        dirty;
    uint8_t        sent_close;
    int            pid;           /* welcome.processId */
    uint64_t       t_start;
    uint64_t       deadline;
    char           key[28];
    char           uid[96];
    uint8_t       *rbuf;          /* only holds a partial frame or header */
    size_t         rlen;
    size_t         rcap;
    uint8_t       *wbuf;
    size_t         wlen;
    size_t         woff;
    size_t         wcap;
    ws_reasm_t     reasm;
    wl_pair_t     *pair;
    wl_thread_t   *th;
    wl_conn_t     *next_dirty;
    /* HTTP client (api mode): scheduled times of requests in flight */
    uint64_t      *hq;
    size_t         hq_head;
    size_t         hq_len;
};

/* A request due in api mode, waiting for a free HTTP connection. */
typedef struct {
    uint64_t   sched;
    uint32_t   user;
    uint64_t   seq;
} wl_api_req_t;

struct wl_thread_s {
    int            index;
    pthread_t      tid;
    int            ep;
    wl_conn_t     *conns;         /* WebSocket connections */
    size_t         nconns;
    wl_pair_t     *pairs;         /* chat pairs, or api users */
    size_t         npairs;
    wl_conn_t     *http;          /* api mode */
    size_t         nhttp;
    size_t         next_start;
    size_t         inprogress;
    size_t         nopen;
    size_t         concurrency;
    uint32_t       src_counter;
    wl_conn_t     *dirty;
    uint64_t       rng;
    uint8_t       *scratch;
    int            reported_ready;
    int            reported_drained;
    int            reported_closed;
    double         rate;          /* open loop: this thread's share */
    uint64_t       sched_start;
    uint64_t       sched_k;
    size_t         rr;
    wl_api_req_t  *aq;            /* api backlog ring */
    size_t         aq_cap;
    size_t         aq_head;
    size_t         aq_len;
    pmd_stream_t   deflater;      /* no context takeover: shared by all */
    pmd_stream_t   inflater;
    wl_result_t    res;
};

static wl_config_t    cfg;
static wl_thread_t   *threads;
static int            g_phase;
static int            g_ready;
static int            g_drained;
static int            g_closed;
static uint64_t       g_run_start;
static uint64_t       g_meas_start;
static uint64_t       g_meas_end;
static char          *g_pad;          /* chat padding, see pad_init() */
static volatile sig_atomic_t  g_interrupted;


static uint64_t
now_ns(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t) ts.tv_sec * 1000000000ULL + (uint64_t) ts.tv_nsec;
}


static void
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


static uint64_t
rng_next(uint64_t *s)
{
    uint64_t  x = *s;

    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545f4914f6cdd1dULL;
}


static int
phase_get(void)
{
    return __atomic_load_n(&g_phase, __ATOMIC_ACQUIRE);
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


static int
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


/* Data frames go out compressed once permessage-deflate is negotiated. */
static int
conn_queue_frame(wl_conn_t *c, int opcode, const void *payload, size_t len)
{
    wl_thread_t     *th = c->th;
    uint32_t         mask = (uint32_t) rng_next(&th->rng);
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

    if (wbuf_reserve(c, ws_frame_size(len)) != 0) {
        return -1;
    }

    c->wlen += ws_frame_encode(c->wbuf + c->wlen, opcode, 1, payload, len,
                               mask);
    conn_mark_dirty(c);
    return 0;
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


static void
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


static void
conn_setup_failed(wl_conn_t *c, int counter)
{
    wl_thread_t  *th = c->th;

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
    th->inprogress--;
    th->res.c[WC_established]++;
    hist_record(&th->res.h[WH_SETUP], now - c->t_start);

    if (now > th->res.setup_last_ns) {
        th->res.setup_last_ns = now;
    }

    if (c->pair) {
        pair_check(th, c->pair);
    }
}


/* A registered connection went away: a pair still being set up fails. */
static void
conn_dropped(wl_conn_t *c)
{
    if (c->pair && !c->pair->settled) {
        c->pair->broken = 1;
        pair_check(c->th, c->pair);
    }
}


/*
 * Opens a TCP connection to url, bound to 127.0.0.x when spreading.  The
 * few API connections never spread: an API is usually allowed from
 * 127.0.0.1 only (as in nginx.conf.example).
 */
static int
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


static int
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

    th->res.c[WC_attempted]++;
    th->inprogress++;
    c->t_start = now;
    c->deadline = now + (uint64_t) (cfg.timeout * 1e9);
    c->got_welcome = c->got_register = 0;
    c->sent_close = 0;
    c->pid = 0;
    ws_reasm_init(&c->reasm, WL_MAX_MESSAGE);

    if (th->res.setup_first_ns == 0 || now < th->res.setup_first_ns) {
        th->res.setup_first_ns = now;
    }

    c->fd = tcp_open(th, url, 1, &err);
    if (c->fd < 0) {
        th->inprogress--;
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


static void
conn_send_register(wl_conn_t *c)
{
    char  msg[128];
    int   n;

    n = snprintf(msg, sizeof(msg), "{\"type\":\"register\",\"userId\":\"%s\"}",
                 c->uid);
    conn_queue_frame(c, WS_OP_TEXT, msg, (size_t) n);
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


/* ---- chat pairs and placement ---- */

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


static void
pair_check(wl_thread_t *th, wl_pair_t *p)
{
    wl_conn_t  *r = p->rcv;
    char       *tilde;
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
    p->tries++;
    th->res.c[WC_placement_retries]++;
    th->res.c[WC_established]--;
    th->res.c[WC_attempted]--;
    conn_begin_close(r, 1000, now_ns());
    conn_flush(r);
    conn_close_fd(r);

    tilde = strchr(r->uid, '~');
    if (tilde == NULL) {
        tilde = r->uid + strlen(r->uid);
    }
    snprintf(tilde, sizeof(r->uid) - (size_t) (tilde - r->uid), "~%ld",
             p->tries);
    conn_start(r, now_ns());
}


/*
 * Chat padding: JSON-like records with varying values, so that deflate
 * meets what chat traffic offers (repeated keys, changing values) rather
 * than a run of one letter.  No quotes or backslashes: it goes into the
 * JSON string as is.  Fixed seed: the same text, so the same compression,
 * in every run; each message copies a slice from its own offset.
 */
static void
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


static void
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
        p->st.next_seq++;
        th->res.c[WC_sent]++;
    }

    if (buf != stackbuf) {
        free(buf);
    }
}


static int
pair_usable(const wl_pair_t *p)
{
    return p->settled && !p->broken && p->snd->state == CS_READY
           && (p->rcv == NULL || p->rcv->state == CS_READY);
}


/* ---- api mode ---- */

static void
api_enqueue(wl_thread_t *th, uint64_t sched, uint32_t user, uint64_t seq)
{
    wl_api_req_t  *n;
    size_t         i, cap;

    if (th->aq_len == th->aq_cap) {
        cap = th->aq_cap ? th->aq_cap * 2 : 1024;
        n = malloc(cap * sizeof(*n));
        if (n == NULL) {
            return;
        }
        for (i = 0; i < th->aq_len; i++) {
            n[i] = th->aq[(th->aq_head + i) % th->aq_cap];
        }
        free(th->aq);
        th->aq = n;
        th->aq_cap = cap;
        th->aq_head = 0;
    }

    th->aq[(th->aq_head + th->aq_len) % th->aq_cap] =
        (wl_api_req_t) { sched, user, seq };
    th->aq_len++;
}


static void
http_open(wl_thread_t *th, wl_conn_t *h)
{
    int  err = 0;

    h->fd = tcp_open(th, &cfg.api_url, 0, &err);
    if (h->fd < 0) {
        th->res.c[WC_api_conn_errors]++;
        h->state = CS_IDLE;
        return;
    }

    th->nopen++;
    h->state = CS_CONNECTING;
    h->rlen = 0;
    h->hq_len = 0;
    h->hq_head = 0;

    if (epoll_add(th, h) != 0) {
        th->res.c[WC_api_conn_errors]++;
        conn_close_fd(h);
    }
}


static void
http_failed(wl_thread_t *th, wl_conn_t *h)
{
    th->res.c[WC_api_conn_errors] += h->hq_len ? h->hq_len : 1;
    conn_close_fd(h);
}


/* Hands backlog requests to HTTP connections with room in their pipeline. */
static void
api_dispatch(wl_thread_t *th)
{
    wl_api_req_t   r;
    wl_conn_t     *h;
    wl_pair_t     *u;
    char           body[256], req[1024];
    size_t         i;
    int            blen, n;

    for (i = 0; i < th->nhttp && th->aq_len; i++) {
        h = &th->http[i];

        if (h->state == CS_IDLE && phase_get() == PH_RUN) {
            http_open(th, h);
        }

        if (h->state != CS_READY) {
            continue;
        }

        while (th->aq_len && h->hq_len < (size_t) cfg.api_pipeline) {
            r = th->aq[th->aq_head];
            th->aq_head = (th->aq_head + 1) % th->aq_cap;
            th->aq_len--;

            u = &th->pairs[r.user];
            blen = snprintf(body, sizeof(body),
                            "{\"userId\":\"%s\",\"message\":{\"seq\":%llu,"
                            "\"ts\":%llu}}", u->snd->uid,
                            (unsigned long long) r.seq,
                            (unsigned long long) r.sched);
            n = snprintf(req, sizeof(req),
                         "POST %s HTTP/1.1\r\n"
                         "Host: %s\r\n"
                         "Content-Type: application/json\r\n"
                         "Content-Length: %d\r\n"
                         "\r\n%s",
                         cfg.api_url.path, cfg.api_url.hostport, blen, body);

            if (conn_queue_raw(h, req, (size_t) n) != 0) {
                break;
            }

            h->hq[(h->hq_head + h->hq_len) % (size_t) cfg.api_pipeline] =
                r.sched;
            h->hq_len++;
            th->res.c[WC_api_sent]++;
        }
    }
}


/* Parses HTTP replies in buf; returns bytes consumed, or -1 on error. */
static ssize_t
http_on_data(wl_thread_t *th, wl_conn_t *h, uint8_t *buf, size_t len,
    uint64_t now)
{
    size_t       used = 0, hlen, clen, total;
    const char  *p, *end, *line, *body, *v;
    size_t       vlen;
    int          status, chunked, close_after;
    uint64_t     sched, delivered;

    while (used < len) {
        p = (const char *) buf + used;
        end = memmem(p, len - used, "\r\n\r\n", 4);
        if (end == NULL) {
            return (len - used > WL_HS_MAX) ? -1 : (ssize_t) used;
        }

        hlen = (size_t) (end - p) + 4;
        if (hlen < 12 || memcmp(p, "HTTP/1.", 7) != 0) {
            return -1;
        }

        status = atoi(p + 9);
        clen = 0;
        chunked = 0;
        close_after = 0;

        for (line = memchr(p, '\n', hlen); line && line < end;
             line = memchr(line, '\n', (size_t) (end - line)))
        {
            line++;
            if (strncasecmp(line, "content-length:", 15) == 0) {
                clen = (size_t) strtoul(line + 15, NULL, 10);

            } else if (strncasecmp(line, "transfer-encoding:", 18) == 0) {
                chunked = 1;

            } else if (strncasecmp(line, "connection:", 11) == 0
                       && strncasecmp(line + 11, " close", 6) == 0)
            {
                close_after = 1;
            }
        }

        body = p + hlen;

        if (chunked) {
            const char  *t;

            t = memmem(body, len - used - hlen, "\r\n0\r\n\r\n", 7);
            if (t == NULL) {
                return (ssize_t) used;
            }
            total = (size_t) (t - p) + 7;
            /* the JSON sits after the first chunk-size line */
            v = memchr(body, '\n', (size_t) (t - body));
            clen = v ? (size_t) (t - v - 1) : 0;
            body = v ? v + 1 : body;

        } else {
            total = hlen + clen;
            if (len - used < total) {
                return (ssize_t) used;
            }
        }

        if (h->hq_len == 0) {
            return -1;          /* a reply nobody asked for */
        }

        sched = h->hq[h->hq_head];
        h->hq_head = (h->hq_head + 1) % (size_t) cfg.api_pipeline;
        h->hq_len--;

        if (sched >= g_meas_start && sched < g_meas_end) {
            hist_record(&th->res.h[WH_API_HTTP], now - sched);
        }

        if (status != 200) {
            th->res.c[WC_api_http_error]++;

        } else if (json_get(body, clen, "success", &v, &vlen) != JSON_LITERAL
                   || vlen != 4 || memcmp(v, "true", 4) != 0)
        {
            th->res.c[WC_api_bad_reply]++;

        } else {
            th->res.c[WC_api_ok]++;
            if (json_get_u64(body, clen, "delivered", &delivered) == 0) {
                th->res.c[WC_api_delivered_sum] += delivered;
            }
        }

        used += total;

        if (close_after) {
            conn_close_fd(h);
            return (ssize_t) used;
        }
    }

    return (ssize_t) used;
}


/* ---- WebSocket receive path ---- */

static void
on_chat(wl_thread_t *th, wl_conn_t *c, const char *m, size_t n,
    uint64_t now)
{
    wl_pair_t   *p = c->pair;
    const char  *v;
    size_t       vlen;
    uint64_t     seq, ts;

    if (json_get(m, n, "text", &v, &vlen) != JSON_STRING
        || parse_u64_pair(v, vlen, &seq, &ts) != 0)
    {
        th->res.c[WC_bogus]++;
        return;
    }

    if (!json_str_eq(m, n, "sender", p->snd->uid)) {
        th->res.c[WC_misrouted]++;
    }

    switch (stream_receive(&p->st, seq)) {

    case ST_BOGUS:
        th->res.c[WC_bogus]++;
        return;

    case ST_DUPLICATE:
        th->res.c[WC_duplicates]++;
        return;

    case ST_REORDERED:
        th->res.c[WC_reordered]++;
        /* fall through */

    case ST_NEW:
        break;
    }

    th->res.c[WC_received]++;

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
    if (cfg.rate == 0 && phase_get() == PH_RUN && pair_usable(p)
        && p->st.next_seq - p->st.unique < (uint64_t) cfg.window)
    {
        chat_send(th, p, now_ns());
    }
}


static void
on_api_message(wl_thread_t *th, wl_conn_t *c, const char *m, size_t n,
    uint64_t now)
{
    const char  *v;
    size_t       vlen;
    uint64_t     seq, ts;

    if (json_get(m, n, "message", &v, &vlen) != JSON_OBJECT
        || json_get_u64(v, vlen, "seq", &seq) != 0
        || json_get_u64(v, vlen, "ts", &ts) != 0)
    {
        th->res.c[WC_unexpected]++;
        return;
    }

    switch (stream_receive(&c->pair->st, seq)) {

    case ST_BOGUS:
        th->res.c[WC_bogus]++;
        return;

    case ST_DUPLICATE:
        th->res.c[WC_api_duplicates]++;
        return;

    default:
        break;
    }

    th->res.c[WC_api_received]++;

    if (ts >= g_meas_start && ts < g_meas_end && now >= ts) {
        th->res.c[WC_api_received_window]++;
        hist_record(&th->res.h[WH_API_DELIVERY], now - ts);
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

#define TYPE_IS(s)  (vlen == sizeof(s) - 1 && memcmp(v, s, vlen) == 0)

    if (c->state == CS_SETUP) {
        if (TYPE_IS("welcome")) {
            c->got_welcome = 1;
            if (json_get_u64(m, n, "processId", &pid) == 0) {
                c->pid = (int) pid;
            }

        } else if (TYPE_IS("register")) {
            if (!json_str_eq(m, n, "status", "success")) {
                conn_setup_failed(c, WC_fail_register);
                return;
            }
            c->got_register = 1;

        } else if (TYPE_IS("error")) {
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

    if (TYPE_IS("chat") && c->role == ROLE_RECEIVER) {
        on_chat(th, c, m, n, now);

    } else if (TYPE_IS("chat_delivered") && c->role == ROLE_SENDER) {
        if (json_get(m, n, "delivered", &v, &vlen) == JSON_LITERAL
            && vlen == 4 && memcmp(v, "true", 4) == 0)
        {
            th->res.c[WC_acks_delivered]++;

        } else {
            th->res.c[WC_acks_undelivered]++;
        }

    } else if (c->role == ROLE_USER && !TYPE_IS("error")) {
        on_api_message(th, c, m, n, now);

    } else if (TYPE_IS("error")) {
        th->res.c[WC_server_errors]++;

    } else if (!TYPE_IS("pong")) {
        th->res.c[WC_unexpected]++;
    }

#undef TYPE_IS
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
        hs = http_on_data(th, c, buf, len, now);
        if (hs < 0) {
            http_failed(th, c);
        }
        return c->fd < 0 ? -1 : hs;
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
        if (c->hq_len) {
            http_failed(th, c);

        } else {
            conn_close_fd(c);
        }
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

        if (err) {
            if (c->role == ROLE_HTTP) {
                http_failed(th, c);
                return;
            }
            conn_setup_failed(c, err == ECONNREFUSED ? WC_fail_refused
                                                     : WC_fail_connect);
            return;
        }

        if (c->role == ROLE_HTTP) {
            c->state = CS_READY;
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


static void
on_run(wl_thread_t *th, uint64_t now)
{
    size_t  i;
    long    w;

    th->sched_start = g_run_start;
    th->sched_k = 0;

    if (cfg.mode == MODE_CHAT && cfg.rate == 0) {
        for (i = 0; i < th->npairs; i++) {
            if (!pair_usable(&th->pairs[i])) {
                continue;
            }
            for (w = 0; w < cfg.window; w++) {
                chat_send(th, &th->pairs[i], now);
            }
        }
    }

    if (cfg.mode == MODE_API) {
        for (i = 0; i < th->nhttp; i++) {
            http_open(th, &th->http[i]);
        }
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
            if (pair_usable(p)) {
                break;
            }
        }

        if (tries == th->npairs || p == NULL) {
            continue;
        }

        if (cfg.mode == MODE_CHAT) {
            chat_send(th, p, sched);

        } else {
            api_enqueue(th, sched, (uint32_t) (p - th->pairs),
                        p->st.next_seq++);
        }
    }
}


static int
thread_drained(wl_thread_t *th)
{
    size_t  i;

    for (i = 0; i < th->npairs; i++) {
        if (pair_usable(&th->pairs[i])
            && th->pairs[i].st.unique < th->pairs[i].st.next_seq)
        {
            return 0;
        }
    }

    for (i = 0; i < th->nhttp; i++) {
        if (th->http[i].hq_len) {
            return 0;
        }
    }

    return th->aq_len == 0;
}


static void
on_close_phase(wl_thread_t *th, uint64_t now)
{
    size_t  i;

    for (i = 0; i < th->nconns; i++) {
        if (th->conns[i].fd >= 0 && th->conns[i].state != CS_CLOSING) {
            conn_begin_close(&th->conns[i], 1000, now);
        }
    }

    for (i = 0; i < th->nhttp; i++) {
        conn_close_fd(&th->http[i]);
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

    for (i = 0; i < th->nhttp; i++) {
        conn_close_fd(&th->http[i]);
        free(th->http[i].rbuf);
        free(th->http[i].wbuf);
        free(th->http[i].hq);
    }

    for (i = 0; i < th->npairs; i++) {
        p = &th->pairs[i];
        if (cfg.mode == MODE_CHAT) {
            th->res.c[WC_lost] += stream_missing(&p->st);

        } else {
            th->res.c[WC_api_lost] += stream_missing(&p->st);
        }
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

        if (cfg.mode == MODE_API && phase <= PH_DRAIN) {
            api_dispatch(th);
        }

        if (now >= next_tick) {
            /* deadlines exist only while connecting and closing */
            if (phase == PH_SETUP || phase >= PH_CLOSE) {
                timeouts_step(th, now);
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

static void
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


static long
share(long total, int parts, int index)
{
    return total / parts + (index < total % parts ? 1 : 0);
}


static void
threads_create(void)
{
    wl_thread_t  *th;
    long          total, mine, per_proc;
    size_t        i;
    int           t, gi;
    uint64_t      seed;

    threads = calloc((size_t) cfg.threads, sizeof(wl_thread_t));
    if (threads == NULL) {
        die("out of memory");
    }

    total = cfg.mode == MODE_CONNECT ? cfg.connections
            : cfg.mode == MODE_CHAT ? cfg.pairs : cfg.users;
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

        if (cfg.mode == MODE_CONNECT) {
            th->nconns = (size_t) mine;

        } else {
            th->npairs = (size_t) mine;
            th->nconns = (size_t) mine * (cfg.mode == MODE_CHAT ? 2 : 1);
            th->pairs = calloc(th->npairs ? th->npairs : 1,
                               sizeof(wl_pair_t));
        }

        th->conns = calloc(th->nconns ? th->nconns : 1, sizeof(wl_conn_t));
        if (th->conns == NULL || (cfg.mode != MODE_CONNECT
                                  && th->pairs == NULL))
        {
            die("out of memory");
        }

        if (cfg.mode == MODE_CONNECT) {
            for (i = 0; i < th->nconns; i++) {
                conn_init(&th->conns[i], th, ROLE_IDLE, "c", i);
            }

        } else if (cfg.mode == MODE_CHAT) {
            for (i = 0; i < th->npairs; i++) {
                th->pairs[i].index = (int) i;
                th->pairs[i].snd = &th->conns[2 * i];
                th->pairs[i].rcv = &th->conns[2 * i + 1];
                conn_init(&th->conns[2 * i], th, ROLE_SENDER, "s", i);
                conn_init(&th->conns[2 * i + 1], th, ROLE_RECEIVER, "r", i);
                th->conns[2 * i].pair = &th->pairs[i];
                th->conns[2 * i + 1].pair = &th->pairs[i];
            }

        } else {
            for (i = 0; i < th->npairs; i++) {
                th->pairs[i].index = (int) i;
                th->pairs[i].snd = &th->conns[i];
                conn_init(&th->conns[i], th, ROLE_USER, "u", i);
                th->conns[i].pair = &th->pairs[i];
            }

            th->nhttp = th->npairs ? (size_t) share(cfg.api_conns,
                                                    cfg.threads, t) : 0;
            if (th->npairs && th->nhttp == 0) {
                th->nhttp = 1;
            }
            th->http = calloc(th->nhttp ? th->nhttp : 1, sizeof(wl_conn_t));
            if (th->http == NULL) {
                die("out of memory");
            }
            for (i = 0; i < th->nhttp; i++) {
                conn_init(&th->http[i], th, ROLE_HTTP, "h", i);
                th->http[i].hq = calloc((size_t) cfg.api_pipeline,
                                        sizeof(uint64_t));
                if (th->http[i].hq == NULL) {
                    die("out of memory");
                }
            }
        }

        if (cfg.rate > 0 && total > 0) {
            th->rate = cfg.rate * (double) mine / (double) total;
        }
    }
}


/* ---- command line ---- */

static void
usage(FILE *f)
{
    fprintf(f,
"usage: wsload connect|chat|api [options]\n"
"\n"
"Load generator for the WebSocket relay protocol (ws:// only).\n"
"\n"
"common:\n"
"  -u, --url URL          WebSocket URL (default ws://127.0.0.1:8080/)\n"
"  -t, --threads N        threads (default: online CPUs)\n"
"  -p, --procs N          processes, each with its own open-files limit\n"
"                         and its share of the load (default 1)\n"
"  -c, --concurrency N    connection attempts in progress at once (256)\n"
"      --timeout S        handshake+register deadline per connection (10)\n"
"      --src-ips K        spread source addresses over 127.0.0.1..K when\n"
"                         the target is loopback (default 16; 0: no bind)\n"
"      --close-wait S     wait for close replies at the end (2)\n"
"      --json FILE        write a machine-readable result\n"
"      --deflate          offer permessage-deflate (no context takeover\n"
"                         either way): compress what we send, inflate\n"
"                         what comes compressed\n"
"      --ready-file FILE  create FILE once every connection is set up\n"
"      --id-prefix S      user id prefix (default: unique per run)\n"
"  -q, --quiet            no warnings\n"
"\n"
"connect mode: open N registered connections, hold them, close cleanly\n"
"  -n, --connections N    (default 1000)\n"
"      --hold S           seconds to hold them idle, answering pings (0)\n"
"\n"
"chat mode: sender->receiver pairs\n"
"  -P, --pairs N          (default 50)\n"
"  -w, --window W         closed loop: messages in flight per pair (16)\n"
"  -r, --rate R           open loop instead: R msgs/s in total; latency\n"
"                         counts from the scheduled send time\n"
"  -d, --duration S       measured seconds (default 10)\n"
"      --warmup S         unmeasured seconds first (default 1)\n"
"      --drain S          wait for messages in flight at the end (2)\n"
"      --size B           pad each chat text to B bytes (JSON-like text)\n"
"      --placement any|same|cross\n"
"                         reconnect receivers until the pair's two\n"
"                         welcome.processId are equal / different\n"
"      --placement-tries N  reconnects allowed per pair (50)\n"
"      --peer-url URL     receivers connect here (another instance)\n"
"\n"
"api mode: POST send-to-user at a fixed rate to connected users\n"
"  -r, --rate R           requests/s in total (default 1000)\n"
"      --users N          connected users (default 100)\n"
"      --api-url URL      http://host:port/api/send-to-user (default:\n"
"                         the --url host and port)\n"
"      --api-conns N      keep-alive HTTP connections (default 8)\n"
"      --api-pipeline N   requests in flight per HTTP connection (1)\n"
"  -d, --duration S, --warmup S, --drain S as in chat mode\n");
}


static void
parse_url(wl_url_t *u, const char *s, const char *scheme, int def_port)
{
    struct addrinfo   hints, *res;
    const char       *p, *slash, *colon;
    size_t            hlen;
    int               rc;

    memset(u, 0, sizeof(*u));

    if (strncmp(s, scheme, strlen(scheme)) != 0) {
        die("URL must start with %s: %s", scheme, s);
    }

    p = s + strlen(scheme);
    slash = strchr(p, '/');
    if (slash == NULL) {
        slash = p + strlen(p);
    }

    colon = memchr(p, ':', (size_t) (slash - p));
    hlen = (size_t) ((colon ? colon : slash) - p);
    if (hlen == 0 || hlen >= sizeof(u->host)) {
        die("bad host in %s", s);
    }

    memcpy(u->host, p, hlen);
    u->port = colon ? atoi(colon + 1) : def_port;
    if (u->port <= 0 || u->port > 65535) {
        die("bad port in %s", s);
    }

    snprintf(u->path, sizeof(u->path), "%s", *slash ? slash : "/");
    snprintf(u->hostport, sizeof(u->hostport), "%s:%d", u->host, u->port);

    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_INET;
    hints.ai_socktype = SOCK_STREAM;

    rc = getaddrinfo(u->host, NULL, &hints, &res);
    if (rc != 0) {
        die("%s: %s", u->host, gai_strerror(rc));
    }

    memcpy(&u->addr, res->ai_addr, sizeof(u->addr));
    u->addr.sin_port = htons((uint16_t) u->port);
    freeaddrinfo(res);

    u->loopback = (ntohl(u->addr.sin_addr.s_addr) >> 24) == 127;
}


static double
arg_num(const char *opt, const char *v, double min)
{
    char    *end;
    double   d = strtod(v, &end);

    if (*v == '\0' || *end != '\0' || d < min) {
        die("bad value for %s: %s", opt, v);
    }
    return d;
}


static void
parse_args(int argc, char **argv)
{
    enum {
        O_HOLD = 256, O_TIMEOUT, O_SRC, O_CLOSE_WAIT, O_JSON, O_READY,
        O_PREFIX, O_WARMUP, O_DRAIN, O_SIZE, O_PLACE, O_PLACE_TRIES,
        O_PEER, O_USERS, O_API_URL, O_API_CONNS, O_API_PIPE, O_DEFLATE
    };
    static const struct option  opts[] = {
        { "url", required_argument, NULL, 'u' },
        { "threads", required_argument, NULL, 't' },
        { "procs", required_argument, NULL, 'p' },
        { "concurrency", required_argument, NULL, 'c' },
        { "connections", required_argument, NULL, 'n' },
        { "pairs", required_argument, NULL, 'P' },
        { "window", required_argument, NULL, 'w' },
        { "rate", required_argument, NULL, 'r' },
        { "duration", required_argument, NULL, 'd' },
        { "quiet", no_argument, NULL, 'q' },
        { "help", no_argument, NULL, 'h' },
        { "hold", required_argument, NULL, O_HOLD },
        { "timeout", required_argument, NULL, O_TIMEOUT },
        { "src-ips", required_argument, NULL, O_SRC },
        { "close-wait", required_argument, NULL, O_CLOSE_WAIT },
        { "json", required_argument, NULL, O_JSON },
        { "ready-file", required_argument, NULL, O_READY },
        { "id-prefix", required_argument, NULL, O_PREFIX },
        { "warmup", required_argument, NULL, O_WARMUP },
        { "drain", required_argument, NULL, O_DRAIN },
        { "size", required_argument, NULL, O_SIZE },
        { "placement", required_argument, NULL, O_PLACE },
        { "placement-tries", required_argument, NULL, O_PLACE_TRIES },
        { "peer-url", required_argument, NULL, O_PEER },
        { "users", required_argument, NULL, O_USERS },
        { "api-url", required_argument, NULL, O_API_URL },
        { "api-conns", required_argument, NULL, O_API_CONNS },
        { "api-pipeline", required_argument, NULL, O_API_PIPE },
        { "deflate", no_argument, NULL, O_DEFLATE },
        { NULL, 0, NULL, 0 }
    };
    const char  *url = "ws://127.0.0.1:8080/", *peer = NULL, *api = NULL;
    char         buf[600];
    long         ncpu;
    int          o, rate_set = 0;

    if (argc < 2 || argv[1][0] == '-') {
        if (argc >= 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1],
                                                            "--help")))
        {
            usage(stdout);
            exit(0);
        }
        usage(stderr);
        exit(2);
    }

    if (strcmp(argv[1], "connect") == 0) {
        cfg.mode = MODE_CONNECT;

    } else if (strcmp(argv[1], "chat") == 0) {
        cfg.mode = MODE_CHAT;

    } else if (strcmp(argv[1], "api") == 0) {
        cfg.mode = MODE_API;

    } else {
        die("unknown mode %s (connect, chat, api)", argv[1]);
    }

    ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    cfg.threads = ncpu > 0 ? (int) ncpu : 1;
    cfg.procs = 1;
    cfg.connections = 1000;
    cfg.concurrency = 256;
    cfg.pairs = 50;
    cfg.window = 16;
    cfg.duration = 10;
    cfg.warmup = 1;
    cfg.drain = 2;
    cfg.timeout = 10;
    cfg.close_wait = 2;
    cfg.placement_tries = 50;
    cfg.users = 100;
    cfg.api_conns = 8;
    cfg.api_pipeline = 1;
    cfg.src_ips = 16;
    snprintf(cfg.prefix, sizeof(cfg.prefix), "wl%lx%llx",
             (unsigned long) getpid(),
             (unsigned long long) (now_ns() / 1000) & 0xffffff);

    optind = 2;
    while ((o = getopt_long(argc, argv, "u:t:p:c:n:P:w:r:d:qh", opts, NULL))
           != -1)
    {
        switch (o) {
        case 'u': url = optarg; break;
        case 't': cfg.threads = (int) arg_num("-t", optarg, 1); break;
        case 'p': cfg.procs = (int) arg_num("-p", optarg, 1); break;
        case 'c': cfg.concurrency = (long) arg_num("-c", optarg, 1); break;
        case 'n': cfg.connections = (long) arg_num("-n", optarg, 1); break;
        case 'P': cfg.pairs = (long) arg_num("-P", optarg, 1); break;
        case 'w': cfg.window = (long) arg_num("-w", optarg, 1); break;
        case 'r':
            cfg.rate = arg_num("-r", optarg, 0);
            rate_set = 1;
            break;
        case 'd': cfg.duration = arg_num("-d", optarg, 0.001); break;
        case 'q': cfg.quiet = 1; break;
        case 'h': usage(stdout); exit(0);
        case O_HOLD: cfg.hold = arg_num("--hold", optarg, 0); break;
        case O_TIMEOUT: cfg.timeout = arg_num("--timeout", optarg, 0.001);
            break;
        case O_SRC: cfg.src_ips = (int) arg_num("--src-ips", optarg, 0);
            break;
        case O_CLOSE_WAIT:
            cfg.close_wait = arg_num("--close-wait", optarg, 0);
            break;
        case O_JSON: cfg.json = optarg; break;
        case O_READY: cfg.ready_file = optarg; break;
        case O_PREFIX:
            snprintf(cfg.prefix, sizeof(cfg.prefix), "%s", optarg);
            break;
        case O_WARMUP: cfg.warmup = arg_num("--warmup", optarg, 0); break;
        case O_DRAIN: cfg.drain = arg_num("--drain", optarg, 0); break;
        case O_SIZE: cfg.size = (long) arg_num("--size", optarg, 0); break;
        case O_PLACE:
            if (!strcmp(optarg, "any")) {
                cfg.placement = PLACE_ANY;
            } else if (!strcmp(optarg, "same")) {
                cfg.placement = PLACE_SAME;
            } else if (!strcmp(optarg, "cross")) {
                cfg.placement = PLACE_CROSS;
            } else {
                die("--placement any|same|cross");
            }
            break;
        case O_PLACE_TRIES:
            cfg.placement_tries = (long) arg_num("--placement-tries",
                                                 optarg, 0);
            break;
        case O_PEER: peer = optarg; break;
        case O_USERS: cfg.users = (long) arg_num("--users", optarg, 1);
            break;
        case O_API_URL: api = optarg; break;
        case O_API_CONNS:
            cfg.api_conns = (long) arg_num("--api-conns", optarg, 1);
            break;
        case O_API_PIPE:
            cfg.api_pipeline = (long) arg_num("--api-pipeline", optarg, 1);
            break;
        case O_DEFLATE: cfg.deflate = 1; break;
        default:
            usage(stderr);
            exit(2);
        }
    }

    if (optind != argc) {
        die("unexpected argument %s", argv[optind]);
    }

    if (cfg.src_ips > 255) {
        die("--src-ips at most 255");
    }

    if (cfg.size > 1024 * 1024) {
        die("--size at most 1 MiB");
    }

    parse_url(&cfg.url, url, "ws://", 80);
    parse_url(&cfg.peer_url, peer ? peer : url, "ws://", 80);

    if (api == NULL) {
        snprintf(buf, sizeof(buf), "http://%s/api/send-to-user",
                 cfg.url.hostport);
        api = buf;
    }
    parse_url(&cfg.api_url, api, "http://", 80);

    if (cfg.mode == MODE_API && !rate_set) {
        cfg.rate = 1000;
    }

    if (cfg.mode == MODE_API && cfg.rate <= 0) {
        die("api mode needs a rate above 0");
    }

    if (cfg.mode == MODE_CONNECT) {
        cfg.rate = 0;
        cfg.warmup = 0;
    }
}


/* ---- processes, phases, main ---- */

static void
on_signal(int sig)
{
    (void) sig;
    g_interrupted = 1;
}


static void
raise_nofile(void)
{
    struct rlimit  rl;
    long           need;

    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }

    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
        return;
    }

    need = (cfg.mode == MODE_CONNECT ? cfg.connections
            : cfg.mode == MODE_CHAT ? 2 * cfg.pairs
            : cfg.users + cfg.api_conns) / cfg.procs + 64;

    if ((rlim_t) need > rl.rlim_cur && !cfg.quiet) {
        fprintf(stderr, "wsload: warning: %ld sockets per process but the "
                "open-files limit is %llu: use -p %ld\n", need,
                (unsigned long long) rl.rlim_cur,
                (long) ((need * cfg.procs) / (long) (rl.rlim_cur - 64) + 1));
    }
}


/* Sleeps until deadline (or an interrupt, or cond() holds). */
static void
wait_until(uint64_t deadline, int (*cond)(void))
{
    struct timespec  ts;
    uint64_t         now;

    while (!g_interrupted && (cond == NULL || !cond())) {
        now = now_ns();
        if (now >= deadline) {
            return;
        }
        now = deadline - now;
        if (now > 10000000ULL) {
            now = 10000000ULL;
        }
        ts.tv_sec = 0;
        ts.tv_nsec = (long) now;
        nanosleep(&ts, NULL);
    }
}


static int
all_ready(void)
{
    return __atomic_load_n(&g_ready, __ATOMIC_ACQUIRE) >= cfg.threads;
}


static int
all_drained(void)
{
    return __atomic_load_n(&g_drained, __ATOMIC_ACQUIRE) >= cfg.threads;
}


static int
all_closed(void)
{
    return __atomic_load_n(&g_closed, __ATOMIC_ACQUIRE) >= cfg.threads;
}


static void
set_phase(int ph)
{
    __atomic_store_n(&g_phase, ph, __ATOMIC_RELEASE);
}


static uint64_t
cpu_us_self(void)
{
    struct rusage  ru;

    getrusage(RUSAGE_SELF, &ru);
    return (uint64_t) ru.ru_utime.tv_sec * 1000000 + ru.ru_utime.tv_usec
           + (uint64_t) ru.ru_stime.tv_sec * 1000000 + ru.ru_stime.tv_usec;
}


static int
write_all(int fd, const void *buf, size_t len)
{
    const uint8_t  *p = buf;
    ssize_t         n;

    while (len) {
        n = write(fd, p, len);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return -1;
        }
        p += n;
        len -= (size_t) n;
    }
    return 0;
}


static int
read_all(int fd, void *buf, size_t len)
{
    uint8_t  *p = buf;
    ssize_t   n;

    while (len) {
        n = read(fd, p, len);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return -1;
        }
        p += n;
        len -= (size_t) n;
    }
    return 0;
}


static void
touch_ready_file(void)
{
    FILE  *f;

    if (cfg.ready_file == NULL) {
        return;
    }

    f = fopen(cfg.ready_file, "w");
    if (f) {
        fprintf(f, "%d\n", (int) getpid());
        fclose(f);
    }
}


/*
 * Runs this process's share: setup, (sync), run, drain, close.  up/down
 * are the pipes to the parent, or -1 in a single process.  cpu0/cpu1
 * bracket the setup (connect mode) or the measured window.
 */
static void
run_engine(wl_result_t *total, int up, int down, wl_cpustat_t *cpu0,
    wl_cpustat_t *cpu1)
{
    uint64_t  t, cpu_start, cpu_run = 0, cpu_setup;
    char      b;
    int       i;

    cpu_start = cpu_us_self();
    wl_cpustat_read(cpu0);
    threads_create();

    for (i = 0; i < cfg.threads; i++) {
        if (pthread_create(&threads[i].tid, NULL, thread_main, &threads[i])
            != 0)
        {
            die("pthread_create failed");
        }
    }

    wait_until(UINT64_MAX, all_ready);
    cpu_setup = cpu_us_self() - cpu_start;

    if (cfg.mode == MODE_CONNECT) {
        wl_cpustat_read(cpu1);
    }

    if (up >= 0) {
        b = 'R';
        if (write_all(up, &b, 1) != 0 || read_all(down, &b, 1) != 0) {
            g_interrupted = 1;
        }

    } else {
        touch_ready_file();
    }

    t = now_ns();
    g_run_start = t;
    g_meas_start = t + (uint64_t) (cfg.warmup * 1e9);
    g_meas_end = (cfg.mode == MODE_CONNECT)
                 ? t + (uint64_t) (cfg.hold * 1e9)
                 : g_meas_start + (uint64_t) (cfg.duration * 1e9);

    set_phase(PH_RUN);

    wait_until(g_meas_start, NULL);
    if (cfg.mode != MODE_CONNECT) {
        cpu_run = cpu_us_self();
        wl_cpustat_read(cpu0);
    }

    wait_until(g_meas_end, NULL);

    if (cfg.mode != MODE_CONNECT) {
        cpu_run = cpu_us_self() - cpu_run;
        wl_cpustat_read(cpu1);
    }

    t = now_ns();
    if (t < g_meas_end) {
        g_meas_end = t;         /* interrupted: measure what ran */
    }

    set_phase(PH_DRAIN);
    if (cfg.mode != MODE_CONNECT) {
        g_interrupted = 0;
        wait_until(now_ns() + (uint64_t) (cfg.drain * 1e9), all_drained);
    }

    set_phase(PH_CLOSE);
    g_interrupted = 0;
    wait_until(now_ns() + (uint64_t) (cfg.close_wait * 1e9) + 50000000ULL,
               all_closed);

    set_phase(PH_EXIT);

    wl_result_init(total);

    for (i = 0; i < cfg.threads; i++) {
        pthread_join(threads[i].tid, NULL);
        wl_result_merge(total, &threads[i].res);
    }

    total->c[WC_gen_cpu_us] = cpu_run;
    total->c[WC_setup_cpu_us] = cpu_setup;
    total->run_ns = g_meas_end > g_meas_start ? g_meas_end - g_meas_start
                                              : 0;
}


int
main(int argc, char **argv)
{
    static wl_result_t  total, part;
    wl_cpustat_t        cpu0, cpu1, scratch0, scratch1;
    pid_t              *kids;
    int                (*up)[2], (*down)[2];
    int                 i, rc = 0, status;
    char                b;

    parse_args(argc, argv);
    raise_nofile();

    if (cfg.size > 0) {
        pad_init();
    }

    signal(SIGPIPE, SIG_IGN);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);

    if (cfg.procs == 1) {
        run_engine(&total, -1, -1, &cpu0, &cpu1);
        return wl_report(&cfg, &total, &cpu0, &cpu1);
    }

    kids = calloc((size_t) cfg.procs, sizeof(pid_t));
    up = calloc((size_t) cfg.procs, sizeof(*up));
    down = calloc((size_t) cfg.procs, sizeof(*down));
    if (kids == NULL || up == NULL || down == NULL) {
        die("out of memory");
    }

    wl_cpustat_read(&cpu0);

    for (i = 0; i < cfg.procs; i++) {
        if (pipe(up[i]) != 0 || pipe(down[i]) != 0) {
            die("pipe: %s", strerror(errno));
        }

        kids[i] = fork();
        if (kids[i] < 0) {
            die("fork: %s", strerror(errno));
        }

        if (kids[i] == 0) {
            cfg.proc_index = i;
            close(up[i][0]);
            close(down[i][1]);
            run_engine(&part, up[i][1], down[i][0], &scratch0, &scratch1);
            b = 'D';
            if (write_all(up[i][1], &b, 1) != 0
                || write_all(up[i][1], &part, sizeof(part)) != 0)
            {
                _exit(3);
            }
            _exit(0);
        }

        close(up[i][1]);
        close(down[i][0]);
    }

    /* every process set up, then all start together */
    for (i = 0; i < cfg.procs; i++) {
        if (read_all(up[i][0], &b, 1) != 0 || b != 'R') {
            fprintf(stderr, "wsload: process %d failed during setup\n", i);
            rc = 1;
        }
    }

    touch_ready_file();

    if (cfg.mode == MODE_CONNECT) {
        wl_cpustat_read(&cpu1);
    }

    b = 'G';
    for (i = 0; i < cfg.procs; i++) {
        if (write_all(down[i][1], &b, 1) != 0) {
            rc = 1;
        }
    }

    if (cfg.mode != MODE_CONNECT) {
        wait_until(now_ns() + (uint64_t) (cfg.warmup * 1e9), NULL);
        wl_cpustat_read(&cpu0);
        wait_until(now_ns() + (uint64_t) (cfg.duration * 1e9), NULL);
        wl_cpustat_read(&cpu1);
    }

    wl_result_init(&total);

    for (i = 0; i < cfg.procs; i++) {
        if (read_all(up[i][0], &b, 1) != 0 || b != 'D'
            || read_all(up[i][0], &part, sizeof(part)) != 0)
        {
            fprintf(stderr, "wsload: process %d returned no result\n", i);
            rc = 1;
            continue;
        }

        wl_result_merge(&total, &part);
    }

    for (i = 0; i < cfg.procs; i++) {
        waitpid(kids[i], &status, 0);
        close(up[i][0]);
        close(down[i][1]);
    }

    free(kids);
    free(up);
    free(down);

    /* every process measured a window of the same length */
    total.run_ns /= (uint64_t) cfg.procs;

    status = wl_report(&cfg, &total, &cpu0, &cpu1);
    return rc ? rc : status;
}
