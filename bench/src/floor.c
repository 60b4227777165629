/*
 * wsfloor: the floor under the relay's benchmark figures (issue 17).
 *
 * A bare relay that speaks just enough of PROTOCOL.md for wsload's chat,
 * latency and connect scenarios: the welcome, register, chat (to a target,
 * or echoed), ping; no Redis, no history, no HTTP API, no deflate, no
 * heartbeat, no limit on what waits for a slow reader.  What the module
 * costs above this is what nginx and the module add; what this costs is
 * what the machine charges for the sockets.
 *
 * Worker model, as the suite's nginx: the parent opens one SO_REUSEPORT
 * listener per worker (nginx's "listen ... reuseport": the kernel hashes
 * each new connection's addresses to one of them), forks N workers (2),
 * and each worker runs one level-triggered epoll loop over its listener,
 * its clients and its links to the other workers.  Sockets are
 * non-blocking, clients TCP_NODELAY as the module's.  Writes are
 * coalesced: what one pass of the loop queues for a socket (replies,
 * relayed chats, pongs) goes out in one send() at the end of the pass;
 * a worker link the same.
 *
 * Cross-worker, the cheapest way found: a shared-memory map (mmap before
 * fork) from a 64-bit hash of the user id to a bit per worker that holds
 * at least one connection of that user; each worker sets and clears only
 * its own bit, a slot is claimed by compare-and-swap and never freed (the
 * table is far larger than a suite's users; two users with one 64-bit
 * hash would only cost a record that the other worker drops).  A chat
 * for a user whose bit is set on another worker is framed once by the
 * sender's worker and appended, as a record (hash, user id, frame), to
 * the buffer of a SOCK_STREAM socketpair to that worker: one send() per
 * pass carries every record for that worker, one read() on the other
 * side delivers them all (a shared ring signalled by an eventfd costs
 * the same two system calls per batch and saves only the copy of small
 * messages).  chat_delivered is answered at once from the map (true
 * when some worker holds the user); the module waits for the other
 * worker's count instead, a round trip more.
 *
 * SHA-1, base64, the frame parser (wscodec.c) and the JSON member lookup
 * (json.c: a scan of the top-level members, not a parser) are wsload's.
 *
 *   wsfloor [-a ADDR] [-p PORT] [-w WORKERS]     (127.0.0.1 8080 2)
 *
 * SIGTERM, SIGINT or SIGQUIT to the parent stops the workers and it.
 */

#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "json.h"
#include "wscodec.h"

#define MAX_WORKERS  32
#define MAX_MSG      (1 << 20)         /* the module's default limit */
#define MAX_UID      256
#define MAP_SLOTS    (1u << 20)        /* shared map: 16 MiB, touched lazily */
#define MAP_PROBES   256
#define BUCKETS      (1u << 16)        /* a worker's connections by user */

#define put_lit(b, s)  buf_put(b, s, sizeof(s) - 1)

enum { K_LISTEN, K_PEER, K_CONN };

typedef struct {
    char    *d;
    size_t   off, len, cap;            /* the data is d[off..len) */
} buf_t;

typedef struct ep  ep_t;

struct ep {                            /* a listener, worker link or client */
    int        kind, fd, dead, dirty, pollout, ws, frag_op;
    buf_t      in, out, frag;
    ep_t      *dnext, *znext, *hnext;  /* dirty list, dead list, bucket */
    uint64_t   uh;                     /* hash of uid, when uidlen > 0 */
    size_t     uidlen;
    char       uid[MAX_UID];
    char       cid[32];                /* connectionId */
};

typedef struct {
    _Atomic uint64_t  key;             /* hash | 1; 0: free */
    _Atomic uint32_t  mask;            /* the workers holding the user */
    uint32_t          pad;
} slot_t;

typedef struct {                       /* a chat handed to another worker */
    uint64_t  hash;
    uint32_t  uidlen, flen;            /* then the user id, then the frame */
} rec_t;

static slot_t    *map;
static int        me, nworkers, epfd, mypid;
static ep_t      *peers[MAX_WORKERS], *bucket[BUCKETS], *dirty, *dead;
static uint64_t   now_ms, nconn;
static buf_t      sb, fb;              /* scratch: a payload, a frame */

static void conn_close(ep_t *c);

static void
die(const char *what)
{
    fprintf(stderr, "wsfloor[%d]: %s: %s\n", (int) getpid(), what,
            strerror(errno));
    exit(1);
}

/* ---- buffers and frames ---- */

static void
buf_room(buf_t *b, size_t n)
{
    if (b->off && b->cap - b->len < n) {   /* slide the unsent part down */
        memmove(b->d, b->d + b->off, b->len - b->off);
        b->len -= b->off;
        b->off = 0;
    }
    if (b->cap - b->len < n) {
        b->cap = (b->len + n) * 2;
        if ((b->d = realloc(b->d, b->cap)) == NULL)
            die("realloc");
    }
}

static void
buf_put(buf_t *b, const void *p, size_t n)
{
    buf_room(b, n);
    memcpy(b->d + b->len, p, n);
    b->len += n;
}

static void
buf_fmt(buf_t *b, const char *fmt, ...)    /* under 256 bytes */
{
    va_list  ap;

    buf_room(b, 256);
    va_start(ap, fmt);
    b->len += (size_t) vsnprintf(b->d + b->len, 256, fmt, ap);
    va_end(ap);
}

/* A server frame: FIN, unmasked. */
static void
put_frame(buf_t *b, int op, const void *p, size_t n)
{
    uint8_t  h[10] = { (uint8_t) (0x80 | op) };
    size_t   hl = 2, i;

    if (n < 126) {
        h[1] = (uint8_t) n;
    } else if (n < 65536) {
        h[1] = 126;
        h[2] = (uint8_t) (n >> 8);
        h[3] = (uint8_t) n;
        hl = 4;
    } else {
        h[1] = 127;
        for (i = 0; i < 8; i++)
            h[2 + i] = (uint8_t) ((uint64_t) n >> (56 - 8 * i));
        hl = 10;
    }
    buf_put(b, h, hl);
    buf_put(b, p, n);
}

/* ---- sending: queued during a pass, flushed at its end ---- */

static void
touch(ep_t *c)
{
    if (!c->dirty) {
        c->dirty = 1;
        c->dnext = dirty;
        dirty = c;
    }
}

static void
set_pollout(ep_t *c, int on)
{
    struct epoll_event  ev = { .events = EPOLLIN | (on ? EPOLLOUT : 0),
                               .data.ptr = c };

    if (c->pollout != on && epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev) == 0)
        c->pollout = on;
}

static void
flush(ep_t *c)
{
    ssize_t  k;

    while (c->out.off < c->out.len) {
        k = send(c->fd, c->out.d + c->out.off, c->out.len - c->out.off,
                 MSG_NOSIGNAL);
        if (k > 0) {
            c->out.off += (size_t) k;
        } else if (k < 0 && errno == EAGAIN) {
            set_pollout(c, 1);         /* the rest when the socket takes it */
            return;
        } else if (!(k < 0 && errno == EINTR)) {
            if (c->kind == K_PEER)
                die("worker link");
            conn_close(c);
            return;
        }
    }
    c->out.off = c->out.len = 0;
    set_pollout(c, 0);
}

static void
send_text(ep_t *c, const void *p, size_t n)
{
    put_frame(&c->out, WS_OP_TEXT, p, n);
    touch(c);
}

static void
send_error(ep_t *c, const char *text, const char *what, size_t wn)
{
    sb.len = 0;
    buf_fmt(&sb, "{\"type\":\"error\",\"message\":\"%s", text);
    buf_put(&sb, what, wn);
    put_lit(&sb, "\"}");
    send_text(c, sb.d, sb.len);
}

/* ---- users: this worker's connections by user, and the shared map ---- */

static uint64_t
hash(const char *s, size_t n)
{
    uint64_t  h = 0xcbf29ce484222325ULL;           /* FNV-1a */

    while (n--)
        h = (h ^ (uint8_t) *s++) * 0x100000001b3ULL;
    return h;
}

static slot_t *
map_find(uint64_t h, int create)
{
    uint64_t  key = h | 1, k;
    size_t    p;
    slot_t   *s;

    for (p = 0; p < MAP_PROBES; p++) {
        s = &map[(h + p) & (MAP_SLOTS - 1)];
        k = atomic_load(&s->key);
        if (k == 0 && create
            && (atomic_compare_exchange_strong(&s->key, &k, key) || k == key))
        {
            return s;
        }
        if (k == key)
            return s;
        if (k == 0)
            return NULL;
    }
    return NULL;
}

/* Appends a frame (when f) to each connection of the user here; a count. */
static int
local_users(uint64_t h, const char *uid, size_t n, const char *f,
    size_t flen)
{
    ep_t  *c;
    int    count = 0;

    for (c = bucket[h & (BUCKETS - 1)]; c; c = c->hnext) {
        if (c->uh == h && c->uidlen == n && memcmp(c->uid, uid, n) == 0) {
            count++;
            if (f) {
                buf_put(&c->out, f, flen);
                touch(c);
            }
        }
    }
    return count;
}

static void
leave(ep_t *c)
{
    ep_t    **pp = &bucket[c->uh & (BUCKETS - 1)];
    slot_t   *s;

    if (c->uidlen == 0)
        return;
    while (*pp != c)
        pp = &(*pp)->hnext;
    *pp = c->hnext;
    if (local_users(c->uh, c->uid, c->uidlen, NULL, 0) == 0
        && (s = map_find(c->uh, 0)) != NULL)
    {
        atomic_fetch_and(&s->mask, ~(1u << me));
    }
    c->uidlen = 0;
}

static int
join(ep_t *c, const char *uid, size_t n)
{
    uint64_t   h = hash(uid, n);
    slot_t    *s;
    ep_t     **b = &bucket[h & (BUCKETS - 1)];

    leave(c);
    if (local_users(h, uid, n, NULL, 0) == 0) {
        if ((s = map_find(h, 1)) == NULL)
            return -1;
        atomic_fetch_or(&s->mask, 1u << me);
    }
    memcpy(c->uid, uid, n);
    c->uidlen = n;
    c->uh = h;
    c->hnext = *b;
    *b = c;
    return 0;
}

/* ---- the protocol ---- */

/* The frame of a chat from c, into fb; text is a raw JSON value. */
static void
chat_frame(ep_t *c, const char *text, size_t tn)
{
    sb.len = 0;
    put_lit(&sb, "{\"type\":\"chat\",\"text\":");
    buf_put(&sb, text, tn);
    put_lit(&sb, ",\"sender\":\"");
    buf_put(&sb, c->uidlen ? c->uid : c->cid,
            c->uidlen ? c->uidlen : strlen(c->cid));
    buf_fmt(&sb, "\",\"timestamp\":%llu}", (unsigned long long) now_ms);
    fb.len = 0;
    put_frame(&fb, WS_OP_TEXT, sb.d, sb.len);
}

/* The chat to every connection of user t; the answer to the sender. */
static void
chat(ep_t *c, const char *t, size_t tn, const char *text, size_t xn)
{
    uint64_t   h = hash(t, tn);
    uint32_t   mask = 0;
    rec_t      r = { h, (uint32_t) tn, 0 };
    slot_t    *s;
    int        w, delivered;

    chat_frame(c, text, xn);
    delivered = local_users(h, t, tn, fb.d, fb.len) > 0;
    if ((s = map_find(h, 0)) != NULL)
        mask = atomic_load(&s->mask) & ~(1u << me);
    for (w = 0; mask; w++, mask >>= 1) {
        if (mask & 1) {                /* into the worker link's buffer */
            r.flen = (uint32_t) fb.len;
            buf_put(&peers[w]->out, &r, sizeof(r));
            buf_put(&peers[w]->out, t, tn);
            buf_put(&peers[w]->out, fb.d, fb.len);
            touch(peers[w]);
            delivered = 1;
        }
    }
    sb.len = 0;
    put_lit(&sb, "{\"type\":\"chat_delivered\",\"targetUserId\":\"");
    buf_put(&sb, t, tn);
    buf_fmt(&sb, "\",\"delivered\":%s,\"timestamp\":%llu}",
            delivered ? "true" : "false", (unsigned long long) now_ms);
    send_text(c, sb.d, sb.len);
}

#define IS(v, vn, lit)  ((vn) == sizeof(lit) - 1 && memcmp(v, lit, vn) == 0)

/* json_get() (json.c) finds a top-level member: a scan, not a parser. */
static void
on_message(ep_t *c, const char *m, size_t n)
{
    const char  *t, *u, *x;
    size_t       tn, un, xn;

    if (json_get(m, n, "type", &t, &tn) != JSON_STRING) {
        send_error(c, "Invalid message format", NULL, 0);

    } else if (IS(t, tn, "register")) {
        if (json_get(m, n, "userId", &u, &un) != JSON_STRING || un == 0) {
            send_error(c, "Missing userId in register message", NULL, 0);
        } else if (un > MAX_UID || join(c, u, un) != 0) {
            send_error(c, "userId refused", NULL, 0);
        } else {
            sb.len = 0;
            put_lit(&sb, "{\"type\":\"register\",\"status\":\"success\","
                    "\"userId\":\"");
            buf_put(&sb, u, un);
            buf_fmt(&sb, "\",\"timestamp\":%llu}", (unsigned long long) now_ms);
            send_text(c, sb.d, sb.len);
        }

    } else if (IS(t, tn, "chat")) {
        switch (json_get(m, n, "text", &x, &xn)) {
        case JSON_NONE: x = "null"; xn = 4; break;
        case JSON_STRING: x--; xn += 2; break;     /* with its quotes */
        default: break;
        }
        if (json_get(m, n, "targetUserId", &u, &un) == JSON_STRING && un) {
            chat(c, u, un, x, xn);
        } else {                       /* no target: back to the sender */
            chat_frame(c, x, xn);
            buf_put(&c->out, fb.d, fb.len);
            touch(c);
        }

    } else if (IS(t, tn, "ping")) {
        sb.len = 0;
        buf_fmt(&sb, "{\"type\":\"pong\",\"timestamp\":%llu}",
                (unsigned long long) now_ms);
        send_text(c, sb.d, sb.len);

    } else {
        send_error(c, "Unsupported message type: ", t, tn);
    }
}

/* ---- connections ---- */

static void
conn_close(ep_t *c)
{
    if (!c->dead) {
        leave(c);
        close(c->fd);
        c->dead = 1;
        c->znext = dead;               /* freed at the end of the pass */
        dead = c;
    }
}

/* A close frame (code, or the client's payload) sent now; then closed. */
static void
close_with(ep_t *c, int code, const uint8_t *payload, size_t n)
{
    uint8_t  p[2] = { (uint8_t) (code >> 8), (uint8_t) code };

    put_frame(&c->out, WS_OP_CLOSE, payload ? payload : p, payload ? n : 2);
    flush(c);
    conn_close(c);
}

static void
on_frame(ep_t *c, const ws_frame_t *f)
{
    const char  *m = (const char *) f->payload;
    size_t       n = f->len;

    if (f->opcode == WS_OP_PING) {
        put_frame(&c->out, WS_OP_PONG, m, n);
        touch(c);
        return;
    }
    if (f->opcode == WS_OP_CLOSE) {
        close_with(c, 0, f->payload, n >= 2 ? 2 : 0);
        return;
    }
    if (f->opcode == WS_OP_PONG)
        return;
    /* text, binary, continuation */
    if ((f->opcode == WS_OP_CONT) != (c->frag_op != 0)) {
        close_with(c, 1002, NULL, 0);
        return;
    }
    if (f->opcode != WS_OP_CONT)
        c->frag_op = f->opcode;
    if (!f->fin || c->frag.len) {      /* a fragment: kept until the last */
        if (c->frag.len + n > MAX_MSG) {
            close_with(c, 1009, NULL, 0);
            return;
        }
        buf_put(&c->frag, m, n);
        if (!f->fin)
            return;
        m = c->frag.d;
        n = c->frag.len;
    }
    if (c->frag_op == WS_OP_TEXT && !ws_utf8_valid((const uint8_t *) m, n)) {
        close_with(c, 1007, NULL, 0);
        return;
    }
    c->frag_op = 0;
    c->frag.len = 0;
    on_message(c, m, n);
}

/* The upgrade: the bytes it used, 0 for more, -1 when c is gone. */
static ssize_t
handshake(ep_t *c, const char *p, size_t n)
{
    const char  *end = memmem(p, n, "\r\n\r\n", 4), *line, *key = NULL;
    size_t       klen = 0;
    char         acc[WS_ACCEPT_LEN + 1];

    if (end == NULL && n <= 8192)
        return 0;
    for (line = end ? memchr(p, '\n', (size_t) (end - p)) : NULL;
         line && line < end;
         line = memchr(line, '\n', (size_t) (end + 2 - line)))
    {
        line++;
        if (strncasecmp(line, "sec-websocket-key:", 18) == 0) {
            key = line + 18 + strspn(line + 18, " \t");
            klen = strcspn(key, " \t\r");
        }
    }
    if (key == NULL || klen == 0 || klen > 64) {
        put_lit(&c->out, "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n"
                "Connection: close\r\n\r\n");
        flush(c);
        conn_close(c);
        return -1;
    }
    ws_accept_for_key(key, klen, acc);
    buf_fmt(&c->out, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket"
            "\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n", acc);
    sb.len = 0;
    buf_fmt(&sb, "{\"type\":\"welcome\",\"message\":\"connected\","
            "\"connectionId\":\"%s\",\"processId\":%d,\"timestamp\":%llu}",
            c->cid, mypid, (unsigned long long) now_ms);
    send_text(c, sb.d, sb.len);
    c->ws = 1;
    return end + 4 - p;
}

/* Handles what p holds; the bytes used (the rest waits for more). */
static size_t
conn_parse(ep_t *c, char *p, size_t n)
{
    size_t       off = 0, used;
    ssize_t      h;
    ws_frame_t   f;
    ws_status_t  st;

    if (!c->ws) {
        if ((h = handshake(c, p, n)) <= 0)
            return 0;
        off = (size_t) h;
    }
    while (!c->dead && off < n) {
        st = ws_frame_parse((uint8_t *) p + off, n - off, MAX_MSG, &f, &used);
        if (st == WS_AGAIN)
            break;
        if (st != WS_OK || !f.masked || f.rsv1) {
            close_with(c, st == WS_ERR_TOO_BIG ? 1009 : 1002, NULL, 0);
            break;
        }
        off += used;
        on_frame(c, &f);
    }
    return off;
}

/* One read per readiness: with level-triggered epoll, more comes later. */
static void
conn_read(ep_t *c)
{
    static char  rb[65536];
    char        *p = rb;
    ssize_t      k = recv(c->fd, rb, sizeof(rb), 0);
    size_t       n, used;

    if (k <= 0) {
        if (k == 0 || (errno != EAGAIN && errno != EINTR))
            conn_close(c);
        return;
    }
    n = (size_t) k;
    if (c->in.len) {                   /* the start of this came earlier */
        buf_put(&c->in, rb, n);
        p = c->in.d;
        n = c->in.len;
    }
    used = conn_parse(c, p, n);
    if (c->dead)
        return;
    if (p == rb) {
        if (used < n)
            buf_put(&c->in, rb + used, n - used);
    } else {
        memmove(c->in.d, c->in.d + used, n - used);
        c->in.len = n - used;
    }
}

static void
peer_read(ep_t *p)
{
    buf_t    *b = &p->in;
    size_t    off = 0;
    ssize_t   k;
    rec_t     r;

    buf_room(b, 65536);
    k = read(p->fd, b->d + b->len, b->cap - b->len);
    if (k <= 0) {
        if (k < 0 && (errno == EAGAIN || errno == EINTR))
            return;
        die("worker link closed");
    }
    b->len += (size_t) k;
    while (b->len - off >= sizeof(r)) {
        memcpy(&r, b->d + off, sizeof(r));
        if (b->len - off - sizeof(r) < (size_t) r.uidlen + r.flen)
            break;
        off += sizeof(r);
        local_users(r.hash, b->d + off, r.uidlen, b->d + off + r.uidlen,
                    r.flen);
        off += r.uidlen + r.flen;
    }
    memmove(b->d, b->d + off, b->len - off);
    b->len -= off;
}

static ep_t *
ep_add(int kind, int fd)
{
    ep_t                *c = calloc(1, sizeof(ep_t));
    struct epoll_event   ev = { .events = EPOLLIN, .data.ptr = c };

    if (c == NULL || epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) != 0)
        die("ep_add");
    c->kind = kind;
    c->fd = fd;
    return c;
}

/* Accepts what waits; 1 when out of descriptors (accepting pauses). */
static int
accept_all(ep_t *l)
{
    int    fd, one = 1;
    ep_t  *c;

    for ( ;; ) {
        fd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return errno == EMFILE || errno == ENFILE;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        c = ep_add(K_CONN, fd);
        snprintf(c->cid, sizeof(c->cid), "%d-%llu", mypid,
                 (unsigned long long) ++nconn);
    }
}

/* ---- worker and parent ---- */

static void
worker(ep_t *listener)
{
    struct epoll_event   evs[512], lev = { .events = EPOLLIN };
    struct timespec      ts;
    ep_t                *c;
    int                  i, n, paused = 0;

    for ( ;; ) {
        n = epoll_wait(epfd, evs, 512, paused ? 100 : -1);
        if (n < 0 && errno != EINTR)
            die("epoll_wait");
        clock_gettime(CLOCK_REALTIME, &ts);
        now_ms = (uint64_t) ts.tv_sec * 1000 + (uint64_t) ts.tv_nsec / 1000000;
        if (paused && n == 0) {        /* out of descriptors 100 ms ago */
            lev.data.ptr = listener;
            paused = epoll_ctl(epfd, EPOLL_CTL_ADD, listener->fd, &lev) != 0;
        }
        for (i = 0; i < n; i++) {
            c = evs[i].data.ptr;
            if (c->kind == K_LISTEN) {
                if (accept_all(c)) {
                    epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
                    paused = 1;
                }
                continue;
            }
            if (!c->dead && (evs[i].events & EPOLLOUT))
                flush(c);
            if (!c->dead && (evs[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP))) {
                if (c->kind == K_PEER) {
                    peer_read(c);
                } else {
                    conn_read(c);
                }
            }
        }
        while ((c = dirty) != NULL) {  /* one send() per socket per pass */
            dirty = c->dnext;
            c->dirty = 0;
            if (!c->dead && !c->pollout)
                flush(c);
        }
        while ((c = dead) != NULL) {
            dead = c->znext;
            free(c->in.d);
            free(c->out.d);
            free(c->frag.d);
            free(c);
        }
    }
}

int
main(int argc, char **argv)
{
    const char          *addr = "127.0.0.1";
    int                  port = 8080, opt, i, w, x, sig = 0, one = 1, sv[2];
    int                  lfd[MAX_WORKERS], link[MAX_WORKERS][MAX_WORKERS];
    pid_t                pids[MAX_WORKERS], parent = getpid();
    struct sockaddr_in   sin = { .sin_family = AF_INET };
    struct rlimit        rl;
    sigset_t             set;

    nworkers = 2;
    while ((opt = getopt(argc, argv, "a:p:w:")) != -1) {
        switch (opt) {
        case 'a': addr = optarg; break;
        case 'p': port = atoi(optarg); break;
        case 'w': nworkers = atoi(optarg); break;
        default: port = 0;
        }
    }
    if (optind != argc || nworkers < 1 || nworkers > MAX_WORKERS || port <= 0
        || port > 65535 || inet_pton(AF_INET, addr, &sin.sin_addr) != 1)
    {
        fprintf(stderr, "usage: wsfloor [-a ADDR] [-p PORT] [-w WORKERS]\n");
        return 2;
    }
    sin.sin_port = htons((uint16_t) port);

    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    map = mmap(NULL, MAP_SLOTS * sizeof(slot_t), PROT_READ | PROT_WRITE,
               MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (map == MAP_FAILED)
        die("mmap");

    /* as nginx's reuseport: one listener per worker, opened by the parent */
    for (i = 0; i < nworkers; i++) {
        lfd[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (lfd[i] < 0
            || setsockopt(lfd[i], SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one))
            || setsockopt(lfd[i], SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one))
            || bind(lfd[i], (struct sockaddr *) &sin, sizeof(sin)) != 0
            || listen(lfd[i], 511) != 0)
        {
            die("listen");
        }
        for (w = 0; w < i; w++) {      /* link[i][w]: i's end of i <-> w */
            if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
                           0, sv) != 0)
            {
                die("socketpair");
            }
            link[i][w] = sv[0];
            link[w][i] = sv[1];
        }
    }

    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGQUIT);
    sigaddset(&set, SIGCHLD);
    sigprocmask(SIG_BLOCK, &set, NULL);

    for (i = 0; i < nworkers; i++) {
        if ((pids[i] = fork()) < 0)
            die("fork");
        if (pids[i] > 0)
            continue;
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() != parent)
            return 1;
        sigprocmask(SIG_UNBLOCK, &set, NULL);
        me = i;
        mypid = (int) getpid();
        if ((epfd = epoll_create1(EPOLL_CLOEXEC)) < 0)
            die("epoll_create1");
        for (w = 0; w < nworkers; w++) {  /* keep only this worker's ends */
            if (w != i) {
                close(lfd[w]);
                peers[w] = ep_add(K_PEER, link[i][w]);
                close(link[w][i]);
            }
            for (x = 0; x < w; x++) {
                if (w != i && x != i) {
                    close(link[w][x]);
                    close(link[x][w]);
                }
            }
        }
        worker(ep_add(K_LISTEN, lfd[i]));
    }

    for (i = 0; i < nworkers; i++) {   /* the workers' now */
        close(lfd[i]);
        for (w = 0; w < i; w++) {
            close(link[i][w]);
            close(link[w][i]);
        }
    }
    fprintf(stderr, "wsfloor: %d workers on %s:%d\n", nworkers, addr, port);
    while (sigwait(&set, &sig) == 0 && sig == SIGCHLD) {
        if (waitpid(-1, NULL, WNOHANG) > 0) {
            fprintf(stderr, "wsfloor: a worker died: stopping\n");
            break;
        }
    }
    for (i = 0; i < nworkers; i++)
        kill(pids[i], SIGTERM);
    while (wait(NULL) > 0) {
        /* void */
    }
    return sig == SIGCHLD;
}
