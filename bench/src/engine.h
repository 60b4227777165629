/*
 * wsload's engine, shared by its parts: wsload.c (options, processes,
 * phases), engine.c (connections, the event loop, threads) and a file
 * for each mode (mode_connect.c, mode_chat.c, mode_api.c, mode_busy.c).
 */

#ifndef ENGINE_H
#define ENGINE_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <pthread.h>
#include <sys/types.h>

#include "pmdeflate.h"
#include "stream.h"
#include "wscodec.h"
#include "wsload.h"

#define WL_HS_MAX          16384     /* longest HTTP reply header */

/* The message type v (vlen bytes) is the string literal s. */
#define WL_TYPE_IS(v, vlen, s)                                               \
    ((vlen) == sizeof(s) - 1 && memcmp(v, s, vlen) == 0)

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
    RC_NONE = 0,
    RC_WAITING,           /* dropped; connects again at reconnect_at */
    RC_CONNECTING         /* connecting again, not yet registered */
} wl_reconn_t;

typedef enum {
    ROLE_IDLE = 0,
    ROLE_SENDER,
    ROLE_RECEIVER,
    ROLE_USER,            /* api mode: receives send-to-user messages */
    ROLE_HTTP,            /* api mode: HTTP client connection */
    ROLE_BOMBER,          /* busy mode: sends compressed bombs */
    ROLE_VICTIM           /* busy mode: pings on the bomber's worker */
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
    /* --reconnect */
    idtrack_t     ids;            /* the highest message id received */
    uint64_t      dups;
    uint64_t      reordered;
    uint64_t      conn_first_seq; /* first seq on the sender's connection */
    uint64_t      conn_acks;      /* chat_delivered on that connection */
    uint64_t    (*unacked)[2];    /* seq ranges a dropped sender left */
    stream_t      promised;       /* answered delivered:true or queued:true */
    size_t        nunacked;
    uint64_t      slack;          /* closed loop: window given back */
    uint64_t      slack_below;    /* ... for seqs below this */
};

struct wl_conn_s {
    int            fd;
    uint8_t        state;
    uint8_t        role;
    uint8_t        got_welcome;
    uint8_t        got_register;
    uint8_t        dirty;
    uint8_t        sent_close;
    uint8_t        reconn;        /* RC_*: where a reconnect stands */
    uint8_t        sent_since;    /* this register resumes */
    uint8_t        came_back;     /* reconnected at least once */
    unsigned       tries;         /* failed reconnect attempts in a row */
    uint64_t       t_drop;        /* dropped at */
    uint64_t       t_ready;       /* registered at */
    uint64_t       reconnect_at;
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
    size_t         reconn_active; /* connections with reconn != RC_NONE */
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

/*
 * What a mode adds to the engine.  The hooks run on the thread that owns
 * th; a NULL hook does nothing.
 */
typedef struct {
    long   *units;                /* connections, pairs or users in all */
    int     lost;                 /* counter of a pair's lost messages */

    /* sockets the run opens in all processes */
    long  (*sockets)(void);
    /* creates n units' connections (and pairs) in th; it may set
       th->rate itself, else the engine gives th its share of cfg.rate */
    void  (*thread_init)(wl_thread_t *th, long n);
    /* 0 while the mode still places connections of its own, once th's
       connections and pairs are set up */
    int   (*placed)(wl_thread_t *th);
    /* the run phase begins */
    void  (*run)(wl_thread_t *th, uint64_t now);
    /* open loop: the send scheduled at sched, to p */
    void  (*send)(wl_thread_t *th, wl_pair_t *p, uint64_t sched);
    /* every pass of the loop before the close phase */
    void  (*pass)(wl_thread_t *th);
    /* a message on a registered connection; 0 when not the mode's */
    int   (*message)(wl_thread_t *th, wl_conn_t *c, const char *m,
                     size_t n, const char *type, size_t tlen, uint64_t now);
    /* --reconnect: c was dropped by the server; c came back registered */
    void  (*dropped)(wl_thread_t *th, wl_conn_t *c, uint64_t now);
    void  (*resumed)(wl_thread_t *th, wl_conn_t *c, uint64_t now);
    /* 0 while the mode still waits for something besides the pairs */
    int   (*drained)(wl_thread_t *th);
    /* the close phase begins */
    void  (*close)(wl_thread_t *th);
    /* the thread ends */
    void  (*finish)(wl_thread_t *th);
} wl_mode_ops_t;

extern const wl_mode_ops_t  wl_connect_mode;
extern const wl_mode_ops_t  wl_chat_mode;
extern const wl_mode_ops_t  wl_api_mode;
extern const wl_mode_ops_t  wl_busy_mode;

extern wl_config_t           cfg;
extern const wl_mode_ops_t  *g_mode;
extern uint64_t              g_run_start;
extern uint64_t              g_meas_start;
extern uint64_t              g_meas_end;

/* engine.c: helpers */
uint64_t now_ns(void);
void die(const char *fmt, ...) __attribute__((format(printf, 1, 2),
                                              noreturn));
uint64_t rng_next(uint64_t *s);
long share(long total, int parts, int index);

/* engine.c: phases, as the threads see them */
int phase_get(void);
void set_phase(int ph);
int all_ready(void);
int all_drained(void);
int all_closed(void);

/* engine.c: connections and pairs */
void thread_alloc(wl_thread_t *th, size_t nconns, size_t npairs);
void conn_init(wl_conn_t *c, wl_thread_t *th, wl_role_t role,
    const char *tag, size_t idx);
int tcp_open(wl_thread_t *th, const wl_url_t *url, int spread, int *err);
int epoll_add(wl_thread_t *th, wl_conn_t *c);
int conn_queue_raw(wl_conn_t *c, const void *data, size_t len);
int conn_queue_frame(wl_conn_t *c, int opcode, const void *payload,
    size_t len);
int conn_queue_compressed(wl_conn_t *c, int opcode, const void *z,
    size_t zlen, size_t len);
void conn_reconnect(wl_conn_t *c, long tries);
void conn_close_fd(wl_conn_t *c);
int pair_usable(const wl_pair_t *p);
int pair_can_send(const wl_pair_t *p);

/* engine.c: this process's threads */
void engine_start(void);
void engine_join(wl_result_t *total);

/* mode_chat.c: chat pairs, also busy mode's */
void pad_init(void);
void chat_events_open(void);
void chat_events_close(void);
void chat_send(wl_thread_t *th, wl_pair_t *p, uint64_t sched);
int chat_message(wl_thread_t *th, wl_conn_t *c, const char *m, size_t n,
    const char *type, size_t tlen, uint64_t now);

/* mode_api.c: the HTTP connections' events */
void http_connected(wl_thread_t *th, wl_conn_t *h, int err);
ssize_t http_read(wl_thread_t *th, wl_conn_t *h, uint8_t *buf, size_t len,
    uint64_t now);
void http_lost(wl_thread_t *th, wl_conn_t *h);

#endif
