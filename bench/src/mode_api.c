/*
 * wsload's api mode: users connected over WebSocket, and POST
 * send-to-user requests at a fixed rate over keep-alive HTTP connections;
 * the HTTP reply and the delivery to the user are timed from the
 * scheduled time.
 */

#define _GNU_SOURCE

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "engine.h"
#include "json.h"


/* Open loop: queues the request scheduled at sched, to user p. */
static void
api_enqueue(wl_thread_t *th, wl_pair_t *p, uint64_t sched)
{
    wl_api_req_t  *n;
    size_t         i, cap;
    uint64_t       seq = p->st.next_seq++;

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
        (wl_api_req_t) { sched, (uint32_t) (p - th->pairs), seq };
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


/* The connect of h is over: err is 0, or why it failed. */
void
http_connected(wl_thread_t *th, wl_conn_t *h, int err)
{
    if (err) {
        http_failed(th, h);
        return;
    }

    h->state = CS_READY;
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


/* Consumes the replies in buf; -1 when the connection is gone. */
ssize_t
http_read(wl_thread_t *th, wl_conn_t *h, uint8_t *buf, size_t len,
    uint64_t now)
{
    ssize_t  used;

    used = http_on_data(th, h, buf, len, now);
    if (used < 0) {
        http_failed(th, h);
    }
    return h->fd < 0 ? -1 : used;
}


void
http_lost(wl_thread_t *th, wl_conn_t *h)
{
    if (h->hq_len) {
        http_failed(th, h);

    } else {
        conn_close_fd(h);
    }
}


/* A send-to-user message to a user; errors are the engine's to count. */
static int
api_message(wl_thread_t *th, wl_conn_t *c, const char *m, size_t n,
    const char *type, size_t tlen, uint64_t now)
{
    const char  *v;
    size_t       vlen;
    uint64_t     seq, ts;

    if (c->role != ROLE_USER || WL_TYPE_IS(type, tlen, "error")) {
        return 0;
    }

    if (json_get(m, n, "message", &v, &vlen) != JSON_OBJECT
        || json_get_u64(v, vlen, "seq", &seq) != 0
        || json_get_u64(v, vlen, "ts", &ts) != 0)
    {
        th->res.c[WC_unexpected]++;
        return 1;
    }

    switch (stream_receive(&c->pair->st, seq)) {

    case ST_BOGUS:
        th->res.c[WC_bogus]++;
        return 1;

    case ST_DUPLICATE:
        th->res.c[WC_api_duplicates]++;
        return 1;

    default:
        break;
    }

    th->res.c[WC_api_received]++;

    if (ts >= g_meas_start && ts < g_meas_end && now >= ts) {
        th->res.c[WC_api_received_window]++;
        hist_record(&th->res.h[WH_API_DELIVERY], now - ts);
    }

    return 1;
}


static long
api_sockets(void)
{
    return cfg.users + cfg.api_conns;
}


static void
api_thread_init(wl_thread_t *th, long n)
{
    size_t  i;

    thread_alloc(th, (size_t) n, (size_t) n);

    for (i = 0; i < th->npairs; i++) {
        th->pairs[i].index = (int) i;
        th->pairs[i].snd = &th->conns[i];
        conn_init(&th->conns[i], th, ROLE_USER, "u", i);
        th->conns[i].pair = &th->pairs[i];
    }

    th->nhttp = th->npairs ? (size_t) share(cfg.api_conns, cfg.threads,
                                            th->index) : 0;
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


static void
api_run(wl_thread_t *th, uint64_t now)
{
    size_t  i;

    (void) now;

    for (i = 0; i < th->nhttp; i++) {
        http_open(th, &th->http[i]);
    }
}


/* Nothing waits for a reply or for a free connection. */
static int
api_drained(wl_thread_t *th)
{
    size_t  i;

    for (i = 0; i < th->nhttp; i++) {
        if (th->http[i].hq_len) {
            return 0;
        }
    }

    return th->aq_len == 0;
}


static void
api_close(wl_thread_t *th)
{
    size_t  i;

    for (i = 0; i < th->nhttp; i++) {
        conn_close_fd(&th->http[i]);
    }
}


static void
api_finish(wl_thread_t *th)
{
    size_t  i;

    for (i = 0; i < th->nhttp; i++) {
        conn_close_fd(&th->http[i]);
        free(th->http[i].rbuf);
        free(th->http[i].wbuf);
        free(th->http[i].hq);
    }
}


const wl_mode_ops_t  wl_api_mode = {
    .units = &cfg.users,
    .lost = WC_api_lost,
    .sockets = api_sockets,
    .thread_init = api_thread_init,
    .run = api_run,
    .send = api_enqueue,
    .pass = api_dispatch,
    .message = api_message,
    .drained = api_drained,
    .close = api_close,
    .finish = api_finish,
};
