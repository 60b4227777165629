
/*
 * Copyright (C) ngx_ws_relay_module authors
 */


/* see fuzz_ngx.h */


#include "fuzz_ngx.h"
#include "ngx_ws_relay_delivery.h"
#include "ngx_ws_relay_registry.h"
#include "ngx_ws_relay_router.h"
#include <dlfcn.h>
#include <sanitizer/allocator_interface.h>


/* the globals of nginx and of the module's other files */

volatile ngx_cycle_t    *ngx_cycle;
volatile ngx_time_t     *ngx_cached_time;
volatile ngx_msec_t      ngx_current_msec;
ngx_pid_t                ngx_pid = 4242;
ngx_uint_t               ngx_exiting;
sig_atomic_t             ngx_terminate;
ngx_uint_t               ngx_cacheline_size = 64;
ngx_uint_t               ngx_pagesize = 4096;
ngx_rbtree_t             ngx_event_timer_rbtree;

ngx_ws_relay_worker_t    ngx_ws_relay_worker;
ngx_ws_relay_slot_t     *ngx_ws_relay_slot;


ngx_log_t                  fuzz_log;
ngx_cycle_t                fuzz_cycle;
ngx_ws_relay_main_conf_t   fuzz_main_conf;
ngx_ws_relay_slot_t        fuzz_slot;
ngx_ws_relay_loc_conf_t   *fuzz_conn_conf;
ngx_uint_t                 fuzz_bugs;


#define FUZZ_EPOCH_SEC     1764340000
#define FUZZ_START_MSEC    1000000


static ngx_rbtree_node_t   fuzz_timer_sentinel;
static ngx_time_t          fuzz_time;
static ngx_event_t        *fuzz_firing;
static ngx_uint_t          fuzz_fail_countdown;
static ngx_uint_t          fuzz_fail_paused;
static ngx_uint_t          fuzz_failed;
static ngx_int_t           fuzz_json_allocs;
static uintptr_t          *fuzz_json_table;
static size_t              fuzz_json_size;
static ngx_uint_t          fuzz_log_stderr;
/* the read events posted, as ngx_posted_events has them */
static fuzz_conn_t        *fuzz_posted;
static fuzz_conn_t       **fuzz_posted_tail = &fuzz_posted;


static void *fuzz_json_malloc(size_t size);
static void fuzz_json_free(void *p);
static void fuzz_json_track(uintptr_t p);
static void fuzz_malloc_hook(const volatile void *ptr, size_t size);
static void fuzz_free_hook(const volatile void *ptr);
static ngx_uint_t fuzz_fail_now(void);


void
fuzz_ngx_init(void)
{
    const char  *bugs;

    fuzz_log_stderr = (getenv("FUZZ_LOG") != NULL);

    bugs = getenv("FUZZ_BUGS");

    if (bugs) {
        if (strcmp(bugs, "all") == 0) {
            fuzz_bugs = (ngx_uint_t) -1;
        }
    }

    /* every level and every debug mask: each line is formatted */
    fuzz_log.log_level = NGX_LOG_DEBUG | NGX_LOG_DEBUG_ALL;

    fuzz_cycle.log = &fuzz_log;
    ngx_cycle = &fuzz_cycle;

    ngx_cached_time = &fuzz_time;
    ngx_ws_relay_slot = &fuzz_slot;

    ngx_str_set(&ngx_ws_relay_worker.node_id, "host-4242-1a2b3c");
    ngx_ws_relay_worker.main_conf = &fuzz_main_conf;

    fuzz_main_conf.max_connections = 4000;
    fuzz_main_conf.close_timeout = 5000;
    fuzz_main_conf.redis.timeout = 1000;
    fuzz_main_conf.redis.ack_timeout = 500;
    ngx_str_set(&fuzz_main_conf.redis.prefix, "ws_relay:");

    ngx_rbtree_init(&ngx_event_timer_rbtree, &fuzz_timer_sentinel,
                    ngx_rbtree_insert_timer_value);

    json_set_alloc_funcs(fuzz_json_malloc, fuzz_json_free);
    fuzz_assert(__sanitizer_install_malloc_and_free_hooks(fuzz_malloc_hook,
                                                          fuzz_free_hook)
                != 0);

    ngx_ws_relay_registry_init();
    ngx_ws_relay_delivery_init();

    fuzz_ngx_reset();
}


/* between two inputs: the same clock, no timers, no failure armed */

void
fuzz_ngx_reset(void)
{
    fuzz_assert(fuzz_timers() == 0);
    fuzz_assert(fuzz_posted == NULL);

    /* the cycle's pool anew: what init_worker took from it goes */
    if (fuzz_cycle.pool) {
        ngx_destroy_pool(fuzz_cycle.pool);
    }

    fuzz_fail_countdown = 0;
    fuzz_fail_paused = 0;
    fuzz_failed = 0;
    fuzz_firing = NULL;

    ngx_current_msec = FUZZ_START_MSEC;
    fuzz_time.sec = FUZZ_EPOCH_SEC;
    fuzz_time.msec = 0;

    ngx_exiting = 0;
    ngx_terminate = 0;

    srandom(1);

    fuzz_cycle.pool = ngx_create_pool(NGX_DEFAULT_POOL_SIZE, &fuzz_log);
    fuzz_assert(fuzz_cycle.pool != NULL);
}


/* the clock is the target's: nginx's cached time moves only by it */

void
ngx_time_update(void)
{
}


uint64_t
ngx_ws_relay_now_ms(void)
{
    ngx_time_t  *tp;

    tp = ngx_timeofday();

    return (uint64_t) tp->sec * 1000 + tp->msec;
}


/* the log: every line formatted as nginx would, then dropped */

void
ngx_log_error_core(ngx_uint_t level, ngx_log_t *log, ngx_err_t err,
    const char *fmt, ...)
{
    u_char   *p, *last, line[NGX_MAX_ERROR_STR];
    va_list   args;

    fuzz_assert(log != NULL && fmt != NULL);

    last = line + NGX_MAX_ERROR_STR;

    va_start(args, fmt);
    p = ngx_vslprintf(line, last, fmt, args);
    va_end(args);

    if (err) {
        p = ngx_slprintf(p, last, " (%d)", err);
    }

    fuzz_assert(p >= line && p <= last);

    if (fuzz_log_stderr) {
        fprintf(stderr, "log %u: %.*s\n", (unsigned) level,
                (int) (p - line), line);
    }
}


/* with FUZZ_LOG set: what the target sees, for reading a crash input */

void
fuzz_trace(const char *fmt, ...)
{
    va_list  args;

    if (!fuzz_log_stderr) {
        return;
    }

    va_start(args, fmt);
    fprintf(stderr, "fuzz: ");
    vfprintf(stderr, fmt, args);
    fprintf(stderr, "\n");
    va_end(args);
}


/* allocations, any of which can be made to fail */

void
fuzz_fail_alloc(ngx_uint_t n)
{
    fuzz_fail_countdown = n;
    fuzz_failed = 0;
}


ngx_uint_t
fuzz_alloc_failed(void)
{
    return fuzz_failed;
}


/* the target's own allocations (checking replies) never fail */

void
fuzz_fail_pause(ngx_uint_t pause)
{
    if (pause) {
        fuzz_fail_paused++;

    } else {
        fuzz_assert(fuzz_fail_paused > 0);
        fuzz_fail_paused--;
    }
}


static ngx_uint_t
fuzz_fail_now(void)
{
    if (fuzz_fail_paused == 0
        && fuzz_fail_countdown && --fuzz_fail_countdown == 0)
    {
        fuzz_failed++;
        return 1;
    }

    return 0;
}


void *
ngx_alloc(size_t size, ngx_log_t *log)
{
    void  *p;

    fuzz_assert(log != NULL);

    if (fuzz_fail_now()) {
        ngx_log_error(NGX_LOG_EMERG, log, 0, "malloc(%uz) failed", size);
        return NULL;
    }

    p = malloc(size);
    fuzz_assert(p != NULL);

    return p;
}


void *
ngx_calloc(size_t size, ngx_log_t *log)
{
    void  *p;

    p = ngx_alloc(size, log);

    if (p) {
        ngx_memzero(p, size);
    }

    return p;
}


/* nginx's pools (ngx_palloc.c) take their blocks here */

void *
ngx_memalign(size_t alignment, size_t size, ngx_log_t *log)
{
    void  *p;

    fuzz_assert(log != NULL);

    if (fuzz_fail_now()) {
        return NULL;
    }

    p = aligned_alloc(alignment, (size + alignment - 1) & ~(alignment - 1));
    fuzz_assert(p != NULL);

    return p;
}


/*
 * jansson's heap: every block its allocator hands out is kept in a table
 * until it is freed, by jansson or by anyone else (the router frees what
 * json_dumps() returns with free(), as jansson's default allocator lets
 * it): a sanitizer hook sees every free().
 */

static void
fuzz_json_track(uintptr_t p)
{
    size_t      i, size;
    uintptr_t  *old;

    if (2 * (fuzz_json_allocs + 1) > (ngx_int_t) fuzz_json_size) {
        old = fuzz_json_table;
        size = fuzz_json_size;

        fuzz_json_size = size ? 2 * size : 4096;
        fuzz_json_table = calloc(fuzz_json_size, sizeof(uintptr_t));
        fuzz_assert(fuzz_json_table != NULL);

        fuzz_json_allocs = 0;

        for (i = 0; i < size; i++) {
            if (old[i]) {
                fuzz_json_track(old[i]);
            }
        }

        free(old);
    }

    for (i = (p >> 4) & (fuzz_json_size - 1);
         fuzz_json_table[i];
         i = (i + 1) & (fuzz_json_size - 1))
    {
        fuzz_assert(fuzz_json_table[i] != p);
    }

    fuzz_json_table[i] = p;
    fuzz_json_allocs++;
}


static void
fuzz_malloc_hook(const volatile void *ptr, size_t size)
{
    /* only frees matter */
}


/* linear probing, deletion by shifting back: no allocation in a hook */

static void
fuzz_free_hook(const volatile void *ptr)
{
    size_t     i, j, k, mask;
    uintptr_t  p;

    p = (uintptr_t) ptr;

    if (p == 0 || fuzz_json_allocs == 0) {
        return;
    }

    mask = fuzz_json_size - 1;

    for (i = (p >> 4) & mask; fuzz_json_table[i] != p; i = (i + 1) & mask) {
        if (fuzz_json_table[i] == 0) {
            return;
        }
    }

    fuzz_json_table[i] = 0;
    fuzz_json_allocs--;

    for (j = (i + 1) & mask; fuzz_json_table[j]; j = (j + 1) & mask) {
        k = (fuzz_json_table[j] >> 4) & mask;

        /* the entry at j may move to the hole at i */
        if ((j > i && (k <= i || k > j)) || (j < i && k <= i && k > j)) {
            fuzz_json_table[i] = fuzz_json_table[j];
            fuzz_json_table[j] = 0;
            i = j;
        }
    }
}


static void *
fuzz_json_malloc(size_t size)
{
    void  *p;

    if (fuzz_fail_now()) {
        return NULL;
    }

    p = malloc(size);
    fuzz_assert(p != NULL);

    fuzz_json_track((uintptr_t) p);

    return p;
}


static void
fuzz_json_free(void *p)
{
    free(p);
}


ngx_int_t
fuzz_json_live(void)
{
    return fuzz_json_allocs;
}


/* timers: ngx_event_expire_timers() with a clock the target moves */

void
fuzz_time_pass(ngx_msec_t ms)
{
    ngx_uint_t          n;
    ngx_event_t        *ev;
    ngx_rbtree_node_t  *node, *root, *sentinel;

    ngx_current_msec += ms;

    fuzz_time.msec += ms % 1000;
    fuzz_time.sec += ms / 1000 + fuzz_time.msec / 1000;
    fuzz_time.msec %= 1000;

    sentinel = ngx_event_timer_rbtree.sentinel;

    for (n = 0; /* void */ ; n++) {

        /* a timer that keeps adding itself at once never ends */
        fuzz_assert(n < 100000);

        root = ngx_event_timer_rbtree.root;

        if (root == sentinel) {
            return;
        }

        node = ngx_rbtree_min(root, sentinel);

        if ((ngx_msec_int_t) (node->key - ngx_current_msec) > 0) {
            return;
        }

        ev = ngx_rbtree_data(node, ngx_event_t, timer);

        ngx_rbtree_delete(&ngx_event_timer_rbtree, &ev->timer);

        ev->timer_set = 0;
        ev->timedout = 1;

        fuzz_firing = ev;
        ev->handler(ev);
        fuzz_firing = NULL;
    }
}


ngx_event_t *
fuzz_timer_firing(void)
{
    return fuzz_firing;
}


ngx_uint_t
fuzz_timers(void)
{
    ngx_uint_t          n;
    ngx_rbtree_node_t  *node, *root, *sentinel;

    sentinel = ngx_event_timer_rbtree.sentinel;
    root = ngx_event_timer_rbtree.root;

    if (root == sentinel) {
        return 0;
    }

    n = 0;

    for (node = ngx_rbtree_min(root, sentinel);
         node;
         node = ngx_rbtree_next(&ngx_event_timer_rbtree, node))
    {
        n++;
    }

    return n;
}


void
fuzz_del_timer(ngx_event_t *ev)
{
    if (ev->timer_set) {
        ngx_del_timer(ev);
    }
}


/*
 * Connections: the fields ngx_ws_relay_conn_start() sets, then the
 * router's open (user_id: ws_relay_user_id's value, NULL: none); the
 * close as ngx_ws_relay_conn.c releases a connection.
 */

ngx_int_t
fuzz_conn_open(fuzz_conn_t *fc, ngx_uint_t index, ngx_uint_t serial,
    ngx_str_t *user_id)
{
    ngx_str_t  none;

    ngx_memzero(fc, sizeof(fuzz_conn_t));

    fc->index = index;
    fc->connection.fd = (ngx_socket_t) (100 + index);
    fc->connection.log = &fuzz_log;

    fc->wc.connection = &fc->connection;
    fc->wc.conf = fuzz_conn_conf ? fuzz_conn_conf : &fc->conf;
    fc->wc.id.data = fc->id;
    fc->wc.id.len = ngx_sprintf(fc->id, "%V-%ui",
                                &ngx_ws_relay_worker.node_id, serial)
                    - fc->id;

    ngx_queue_init(&fc->wc.deliveries);

    fc->waiting_tail = &fc->waiting;
    fc->open = 1;

    ngx_str_null(&none);

    return ngx_ws_relay_router_open(&fc->wc, user_id ? user_id : &none);
}


void
fuzz_conn_close(fuzz_conn_t *fc)
{
    fuzz_conn_t  **q;
    fuzz_wait_t   *w;

    fuzz_assert(fc->open);

    ngx_ws_relay_router_close(&fc->wc);

    fuzz_assert(!fc->wc.registered && fc->wc.user == NULL);
    fuzz_assert(ngx_queue_empty(&fc->wc.deliveries));
    fuzz_assert(fc->wc.resume == NULL);

    /* what it did not read goes with it, and so does its read event */

    while (fc->waiting) {
        w = fc->waiting;
        fc->waiting = w->next;
        free(w);
    }

    if (fc->posted) {
        for (q = &fuzz_posted; *q != fc; q = &(*q)->posted_next) {
            /* void */
        }

        *q = fc->posted_next;

        if (*q == NULL) {
            fuzz_posted_tail = q;
        }

        fc->posted = 0;
    }

    fc->open = 0;
}


ngx_uint_t
fuzz_conn_waits(fuzz_conn_t *fc, const u_char *data, size_t len)
{
    fuzz_wait_t  *w;

    fuzz_assert(fc->open);

    if (fc->wc.resume == NULL && fc->waiting == NULL) {
        return 0;
    }

    w = malloc(sizeof(fuzz_wait_t) + len);
    fuzz_assert(w != NULL);

    w->next = NULL;
    w->len = len;

    if (len) {
        ngx_memcpy(w->data, data, len);
    }

    *fc->waiting_tail = w;
    fc->waiting_tail = &w->next;

    return 1;
}


fuzz_conn_t *
fuzz_conn_posted(void)
{
    fuzz_conn_t  *fc;

    fc = fuzz_posted;

    if (fc == NULL) {
        return NULL;
    }

    fuzz_posted = fc->posted_next;

    if (fuzz_posted == NULL) {
        fuzz_posted_tail = &fuzz_posted;
    }

    fc->posted = 0;
    fc->posted_next = NULL;

    return fc;
}


fuzz_wait_t *
fuzz_conn_unwait(fuzz_conn_t *fc)
{
    fuzz_wait_t  *w;

    fuzz_assert(fc->open);

    if (fc->close_code) {
        /* closing: it reads no more messages */
        while (fc->waiting) {
            w = fc->waiting;
            fc->waiting = w->next;
            free(w);
        }

        fc->waiting_tail = &fc->waiting;
        return NULL;
    }

    w = fc->waiting;

    if (w == NULL || fc->wc.resume) {
        return NULL;
    }

    fc->waiting = w->next;

    if (fc->waiting == NULL) {
        fc->waiting_tail = &fc->waiting;
    }

    return w;
}


/* the functions of ngx_ws_relay_conn.c that the router and Redis use */

ngx_int_t
ngx_ws_relay_conn_send(ngx_ws_relay_conn_t *wc, ngx_uint_t opcode,
    u_char *data, size_t len)
{
    fuzz_conn_t  *fc = (fuzz_conn_t *) wc;

    fuzz_assert(fc->open);
    fuzz_assert(opcode == NGX_WS_RELAY_OP_TEXT);
    fuzz_assert(data != NULL || len == 0);

    if (wc->closing) {
        return NGX_DECLINED;
    }

    return fuzz_on_reply(fc, data, len);
}


ngx_int_t
ngx_ws_relay_conn_send_message(ngx_ws_relay_conn_t *wc,
    ngx_ws_relay_message_t *m)
{
    fuzz_conn_t  *fc = (fuzz_conn_t *) wc;

    fuzz_assert(fc->open);
    fuzz_assert(m->text.data != NULL || m->text.len == 0);

    if (wc->closing) {
        return NGX_DECLINED;
    }

    return fuzz_on_delivery(fc, m->text.data, m->text.len);
}


/*
 * The connection joined its user (ngx_ws_relay_history_live()): its read
 * event is posted, to read what waited meanwhile.
 */

void
ngx_ws_relay_conn_read_on(ngx_ws_relay_conn_t *wc)
{
    fuzz_conn_t  *fc = (fuzz_conn_t *) wc;

    fuzz_assert(fc->open && wc->resume == NULL);

    if (fc->posted) {
        return;
    }

    fc->posted = 1;
    fc->posted_next = NULL;
    *fuzz_posted_tail = fc;
    fuzz_posted_tail = &fc->posted_next;
}


/*
 * The router closes a connection it refuses, or that breaks its limits
 * (history: too much held while it resumes); as in ngx_ws_relay_conn.c,
 * it is closing from then on, and sends nothing more.
 */

void
ngx_ws_relay_conn_close(ngx_ws_relay_conn_t *wc, ngx_uint_t code,
    const char *reason)
{
    fuzz_conn_t  *fc = (fuzz_conn_t *) wc;

    fuzz_assert(fc->open && fc->close_code == 0 && !wc->closing);
    fuzz_assert(code >= 1000 && code < 5000 && reason != NULL);

    fc->close_code = code;
    wc->closing = 1;
    wc->close_code = code;
}


void
ngx_ws_relay_conn_fail(ngx_ws_relay_conn_t *wc, ngx_uint_t code,
    const char *reason)
{
    wc->read_closed = 1;
    ngx_ws_relay_conn_close(wc, code, reason);
}


/*
 * jansson 2.14 ignores a failed allocation while its lexer saves a token
 * (lex_save(), akheron/jansson#362) and then reads past the token's
 * buffer: the loader is spared the failures, which are meant for the
 * module's own handling of them.
 */

json_t *
json_loadb(const char *buffer, size_t buflen, size_t flags,
    json_error_t *error)
{
    json_t  *json;

    static json_t *(*loadb)(const char *, size_t, size_t, json_error_t *);

    if (loadb == NULL) {
        loadb = (json_t *(*)(const char *, size_t, size_t, json_error_t *))
                    dlsym(RTLD_NEXT, "json_loadb");
        fuzz_assert(loadb != NULL);
    }

    fuzz_fail_pause(1);
    json = loadb(buffer, buflen, flags, error);
    fuzz_fail_pause(0);

    return json;
}
