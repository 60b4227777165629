
/*
 * Copyright (C) ngx_ws_relay_module authors
 */


/*
 * libFuzzer target: what ngx_ws_relay_redis.c makes of Redis's replies.
 *
 * The file under test is included, so that its static callbacks and its
 * state are at hand, with hiredis's async API replaced by a model of it
 * (hiredis 0.14's async.c: callback queues, subscription callbacks by
 * channel, frees deferred while a callback runs, pending callbacks run
 * with no reply when a context goes).  The replies are hiredis's own:
 * the input's bytes are parsed with its reader (redisReaderCreate(),
 * redisReaderFeed(), redisReaderGetReply()), and each reply goes to the
 * callback the input chooses: the one hiredis would run, or a callback
 * of the module directly, whatever it expects.  The registry and the
 * delivery code are the real ones, with four connections.
 *
 * Input: a settings byte, then steps.  A step is a selector byte, then
 * for steps 0-4 and 6 one RESP reply.
 *
 *   settings bit 0     a password (AUTH on both links)
 *   settings bit 1     db=3 (SELECT on the commands link)
 *   settings bit 2     a unix socket rather than host:port
 *   settings bits 3-4  the prefix: "ws_relay:", "", "p", "a:b:"
 *   settings bit 5     the n-th allocation fails, n = the next byte + 1
 *   settings bit 6     the links start connected and ready
 *
 *   selector & 7  0    the reply, on the commands link, as hiredis
 *                      dispatches it (to the oldest pending callback)
 *                 1    the reply, on the subscriber link, as hiredis
 *                      dispatches it (callbacks, then channels)
 *                 2    the reply to ngx_ws_relay_redis_message()
 *                 3    the reply to ngx_ws_relay_redis_publish_reply()
 *                      for the (selector >> 3)-th delivery started
 *                 4    the reply to ngx_ws_relay_redis_ready_reply()
 *                      (selector bit 3) or _generic_reply()
 *                 5, 7 an action a = (selector >> 3) & 7 with an
 *                      argument b = selector >> 6:
 *                      0 a delivery to user b: alice, bob, carol, zed
 *                      1 a presence request (/api/redis-info)
 *                      2 time passes: 100 ms, 600 ms, 5 s, 30 s
 *                      3 link b & 1 connects
 *                      4 link b & 1 fails to connect, or is closed
 *                      5 b 0-2: the next connect fails (0: at once,
 *                        1: no memory, 2: nginx refuses the socket);
 *                        b 3: the next write (redisAsyncHandleWrite())
 *                        fails
 *                      6 connection b closes, a new one takes its place
 *                      7 the worker exits (the input ends there)
 *                 6    connection (selector >> 3) & 3 registers as the
 *                      user the reply names (its string, if any)
 *
 * Checked: memory (ASan, UBSan, LeakSanitizer; jansson's heap counted),
 * hiredis's rules (no command on a context that is going, no context
 * used after it went), and what the module does with each reply:
 *
 * - a subscriber message does what the protocol (the comment on top of
 *   ngx_ws_relay_redis.c) says and nothing else: "ack:<id>:<n>" on the
 *   node channel acks id with n, "<origin> <id> <json>" on a user's
 *   channel delivers the JSON to that user's connections and publishes
 *   "ack:<id>:<n>" to the origin's node channel with n the connections
 *   that took it, or acks id itself when the origin is this worker;
 * - PUBLISH's reply reaches the delivery with the id that was issued for
 *   it, as a count or -1; every delivery started ends exactly once, with
 *   the connections and acks counted right, when its acks are in, when
 *   its PUBLISH fails, or at its deadline;
 * - a presence request is answered exactly once: with every node of the
 *   ZRANGEBYSCORE reply and the users of its SMEMBERS reply, or with
 *   NULL only when a reply was missing or wrong;
 * - once a link is ready, Redis holds what the registry holds: the
 *   subscriber link is subscribed to the channel of every user and of no
 *   other, the presence set has exactly the users.
 *
 * Once an allocation failed, only memory and hiredis's rules are checked.
 */


#include "fuzz_ngx.h"
#include "ngx_ws_relay_delivery.h"
#include "ngx_ws_relay_redis.h"
#include "ngx_ws_relay_registry.h"


/* the delivery code, for its id counter: each input starts at id 1 */
#include "ngx_ws_relay_delivery.c"


/* what the file under test calls: the model below, or the wrappers */

#define redisAsyncConnect                fuzz_redisAsyncConnect
#define redisAsyncConnectUnix            fuzz_redisAsyncConnectUnix
#define redisAsyncSetConnectCallback     fuzz_redisAsyncSetConnectCallback
#define redisAsyncSetDisconnectCallback  fuzz_redisAsyncSetDisconnectCallback
#define redisAsyncCommand                fuzz_redisAsyncCommand
#define redisvAsyncCommand               fuzz_redisvAsyncCommand
#define redisAsyncCommandArgv            fuzz_redisAsyncCommandArgv
#define redisAsyncFormattedCommand       fuzz_redisAsyncFormattedCommand
#define redisAsyncFree                   fuzz_redisAsyncFree
#define redisAsyncHandleWrite            fuzz_redisAsyncHandleWrite
#define redisBufferWrite                 fuzz_redisBufferWrite
#define ngx_ws_relay_delivery_acked      fuzz_delivery_acked
#define ngx_ws_relay_delivery_published  fuzz_delivery_published
#define ngx_ws_relay_delivery_local      fuzz_delivery_local


static redisAsyncContext *fuzz_redisAsyncConnect(const char *ip, int port);
static redisAsyncContext *fuzz_redisAsyncConnectUnix(const char *path);
static int fuzz_redisAsyncSetConnectCallback(redisAsyncContext *ac,
    redisConnectCallback *fn);
static int fuzz_redisAsyncSetDisconnectCallback(redisAsyncContext *ac,
    redisDisconnectCallback *fn);
static int fuzz_redisAsyncCommand(redisAsyncContext *ac,
    redisCallbackFn *fn, void *privdata, const char *format, ...);
static int fuzz_redisvAsyncCommand(redisAsyncContext *ac,
    redisCallbackFn *fn, void *privdata, const char *format, va_list ap);
static int fuzz_redisAsyncCommandArgv(redisAsyncContext *ac,
    redisCallbackFn *fn, void *privdata, int argc, const char **argv,
    const size_t *argvlen);
static int fuzz_redisAsyncFormattedCommand(redisAsyncContext *ac,
    redisCallbackFn *fn, void *privdata, const char *cmd, size_t len);
static void fuzz_redisAsyncFree(redisAsyncContext *ac);
static void fuzz_redisAsyncHandleWrite(redisAsyncContext *ac);
static int fuzz_redisBufferWrite(redisContext *c, int *done);
static void fuzz_delivery_acked(uint64_t id, ngx_uint_t delivered);
static void fuzz_delivery_published(uint64_t id, ngx_int_t receivers);
static ngx_uint_t fuzz_delivery_local(ngx_str_t *user_id, ngx_str_t *text);


#include "ngx_ws_relay_redis.c"


#undef redisAsyncConnect
#undef redisAsyncConnectUnix
#undef redisAsyncSetConnectCallback
#undef redisAsyncSetDisconnectCallback
#undef redisAsyncCommand
#undef redisvAsyncCommand
#undef redisAsyncCommandArgv
#undef redisAsyncFree
#undef redisAsyncHandleWrite
#undef redisBufferWrite
#undef ngx_ws_relay_delivery_acked
#undef ngx_ws_relay_delivery_published
#undef ngx_ws_relay_delivery_local


#define FUZZ_CONNS           4

#define FUZZ_PASSWORD        0x01
#define FUZZ_DB              0x02
#define FUZZ_UNIX            0x04
#define FUZZ_PREFIX_SHIFT    3
#define FUZZ_FAIL            0x20
#define FUZZ_READY           0x40

#define FUZZ_CMD             0
#define FUZZ_SUB             1

#define FUZZ_CONNECT_OK      3


/* a callback hiredis holds: for a reply, or for a channel */
typedef struct fuzz_cb_s  fuzz_cb_t;

struct fuzz_cb_s {
    fuzz_cb_t             *next;
    redisCallbackFn       *fn;
    void                  *privdata;
    int                    pending_subs;
    /* the command, as Redis reads it; a channel's name */
    redisReply            *command;
    ngx_str_t              channel;
};


/* a set of byte strings */
typedef struct {
    ngx_str_t             *items;
    ngx_uint_t             n;
    ngx_uint_t             size;
} fuzz_set_t;


/* a redisAsyncContext of the model */
typedef struct fuzz_ac_s  fuzz_ac_t;

struct fuzz_ac_s {
    redisAsyncContext      ac;
    fuzz_ac_t             *next;
    fuzz_cb_t             *replies;
    fuzz_cb_t             *invalid;
    fuzz_cb_t             *channels;
    /* what Redis has from the commands sent on it */
    fuzz_set_t             subscribed;
    fuzz_set_t             members;
    unsigned               freed:1;
};


/* a delivery started by the target */
typedef struct fuzz_dl_s  fuzz_dl_t;

struct fuzz_dl_s {
    fuzz_dl_t             *next;
    ngx_ws_relay_delivery_t  *d;
    /* 0: the PUBLISH was not sent */
    uint64_t               id;
    ngx_uint_t             local;
    ngx_uint_t             acks;
    ngx_uint_t             acked;
    ngx_uint_t             ended;
};


/* a presence request, and what the replies to it said */
typedef struct fuzz_pr_s  fuzz_pr_t;

#define FUZZ_MAX_NODES  64

struct fuzz_pr_s {
    fuzz_pr_t             *next;
    /* ngx_ws_relay_redis_presence() did not take it */
    ngx_uint_t             refused;
    ngx_uint_t             answered;
    /* a reply was missing or wrong, or a command could not be sent */
    ngx_uint_t             spoiled;
    /* too many nodes, or odd names: the answer is not compared */
    ngx_uint_t             unchecked;
    /* the string elements of the ZRANGEBYSCORE reply, in order */
    fuzz_set_t             nodes;
    /* each node's SMEMBERS: answered, and its users in reply order */
    ngx_uint_t             answers;
    u_char                 answered_node[FUZZ_MAX_NODES];
    fuzz_set_t             users[FUZZ_MAX_NODES];
};


/* what the module did while a callback ran */
typedef enum {
    FUZZ_EV_ACKED = 0,
    FUZZ_EV_PUBLISHED,
    FUZZ_EV_LOCAL,
    FUZZ_EV_PUBLISH_ACK
} fuzz_ev_e;


typedef struct {
    fuzz_ev_e              type;
    uint64_t               id;
    int64_t                n;
    ngx_str_t              a;
    ngx_str_t              b;
} fuzz_ev_t;


#define FUZZ_MAX_EVENTS  16

typedef struct {
    ngx_uint_t             on;
    ngx_uint_t             n;
    ngx_uint_t             overflow;
    fuzz_ev_t              ev[FUZZ_MAX_EVENTS];
} fuzz_log_t;


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

static void fuzz_setup(u_char settings);
static void fuzz_handshake(void);
static void fuzz_teardown(void);
static void fuzz_step(u_char s, const u_char **pos, const u_char *last,
    ngx_uint_t *stop);
static void fuzz_action(ngx_uint_t a, ngx_uint_t b, ngx_uint_t *stop);
static ngx_int_t fuzz_read(const u_char **pos, const u_char *last,
    redisReply **reply);
static void *fuzz_create_array(const redisReadTask *task, int elements);
static redisReply *fuzz_parse(const char *p, size_t len);

static fuzz_ac_t *fuzz_link_ac(ngx_uint_t link);
static fuzz_ac_t *fuzz_ac_new(void);
static void fuzz_ac_connected(fuzz_ac_t *fa);
static void fuzz_ac_lost(fuzz_ac_t *fa, int err, const char *errstr);
static void fuzz_ac_disconnect(fuzz_ac_t *fa);
static void fuzz_ac_free(fuzz_ac_t *fa);
static int fuzz_ac_command(fuzz_ac_t *fa, redisCallbackFn *fn,
    void *privdata, char *cmd, int len);
static void fuzz_ac_dispatch(fuzz_ac_t *fa, redisReply *reply);
static void fuzz_ac_run(fuzz_ac_t *fa, fuzz_cb_t *cb, redisReply *reply);
static void fuzz_ac_direct(ngx_uint_t link, redisCallbackFn *fn,
    void *privdata, redisReply *reply);
static void fuzz_ac_check_command(fuzz_ac_t *fa, redisReply *cmd);
static fuzz_cb_t *fuzz_cb_shift(fuzz_cb_t **list);
static void fuzz_cb_push(fuzz_cb_t **list, fuzz_cb_t *cb);
static void fuzz_cb_remove(fuzz_cb_t **list, fuzz_cb_t *cb);
static void fuzz_cb_free(fuzz_cb_t *cb);
static fuzz_ac_t *fuzz_ac_live(const redisAsyncContext *ac);
static redisAsyncContext *fuzz_connect(void);
static void fuzz_published(redisReply *cmd, uint64_t id);

static void fuzz_expect_message(redisReply *reply, fuzz_log_t *expect);
static void fuzz_expect_user_message(ngx_str_t *user, ngx_str_t *payload,
    fuzz_log_t *expect);
static void fuzz_expect_node_message(ngx_str_t *payload,
    fuzz_log_t *expect);
static void fuzz_log_add(fuzz_log_t *log, fuzz_ev_e type, uint64_t id,
    int64_t n, ngx_str_t *a, ngx_str_t *b);
static void fuzz_log_reset(fuzz_log_t *log);
static void fuzz_log_compare(fuzz_log_t *expect, fuzz_log_t *got);

static void fuzz_delivery_start(ngx_uint_t b);
static void fuzz_delivered(ngx_ws_relay_delivery_t *d);
static fuzz_dl_t *fuzz_dl_find(uint64_t id);
static void fuzz_presence_start(void);
static void fuzz_presence_done(json_t *nodes, void *data);
static void fuzz_presence_reply(fuzz_cb_t *cb, redisReply *reply);

static void fuzz_conn_set(ngx_uint_t i, ngx_str_t *user);
static void fuzz_conn_reopen(ngx_uint_t i);
static void fuzz_check_state(void);
static ngx_uint_t fuzz_lenient(void);
static ngx_uint_t fuzz_is(redisReply *r, ngx_str_t *s);
static ngx_uint_t fuzz_arg_is(redisReply *cmd, size_t i, const char *s);
static ngx_uint_t fuzz_str_eq(ngx_str_t *a, ngx_str_t *b);
static void fuzz_str_dup(ngx_str_t *dst, u_char *data, size_t len);

static ngx_str_t *fuzz_set_find(fuzz_set_t *s, u_char *data, size_t len);
static void fuzz_set_add(fuzz_set_t *s, u_char *data, size_t len);
static void fuzz_list_add(fuzz_set_t *s, u_char *data, size_t len);
static void fuzz_set_remove(fuzz_set_t *s, u_char *data, size_t len);
static void fuzz_set_clear(fuzz_set_t *s);


static ngx_str_t    fuzz_users[4] = {
    ngx_string("alice"), ngx_string("bob"), ngx_string("carol"),
    ngx_string("zed")
};

static ngx_str_t    fuzz_prefixes[4] = {
    ngx_string("ws_relay:"), ngx_string(""), ngx_string("p"),
    ngx_string("a:b:")
};

static ngx_msec_t   fuzz_periods[4] = { 100, 600, 5000, 30000 };


static fuzz_conn_t       *fuzz_conns[FUZZ_CONNS];
static ngx_uint_t         fuzz_serial;
static fuzz_ac_t         *fuzz_acs;
static ngx_uint_t         fuzz_next_connect;
static ngx_uint_t         fuzz_attach_refuse;
static ngx_uint_t         fuzz_write_fails;
static fuzz_dl_t         *fuzz_dls;
static fuzz_dl_t         *fuzz_starting;
static uint64_t           fuzz_last_id;
static fuzz_pr_t         *fuzz_prs;
static fuzz_log_t         fuzz_events;
static ngx_uint_t         fuzz_exited;

static redisReplyObjectFunctions   fuzz_reader_fn;
static void                     *(*fuzz_reader_create_array)(
                                     const redisReadTask *task,
                                     int elements);
static size_t                      fuzz_reader_limit;


int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fuzz_ngx_init();
    return 0;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ngx_uint_t     fail, stop;
    const u_char  *p, *last;

    if (size == 0) {
        return 0;
    }

    p = data + 1;
    last = data + size;
    fail = 0;

    if (data[0] & FUZZ_FAIL) {
        if (p == last) {
            return 0;
        }

        fail = *p++ + 1;
    }

    fuzz_setup(data[0]);
    fuzz_fail_alloc(fail);

    stop = 0;

    while (p < last && !stop) {
        fuzz_step(*p++, &p, last, &stop);
        fuzz_check_state();
    }

    fuzz_teardown();

    return 0;
}


static void
fuzz_setup(u_char settings)
{
    ngx_uint_t                  i;
    ngx_ws_relay_redis_conf_t  *rcf;

    rcf = &fuzz_main_conf.redis;

    ngx_memzero(&rcf->host, sizeof(ngx_str_t));
    ngx_memzero(&rcf->unix_path, sizeof(ngx_str_t));
    ngx_memzero(&rcf->password, sizeof(ngx_str_t));

    if (settings & FUZZ_UNIX) {
        ngx_str_set(&rcf->unix_path, "/run/redis/redis.sock");

    } else {
        ngx_str_set(&rcf->host, "127.0.0.1");
        rcf->port = 6379;
    }

    if (settings & FUZZ_PASSWORD) {
        ngx_str_set(&rcf->password, "secret");
    }

    rcf->db = (settings & FUZZ_DB) ? 3 : 0;
    rcf->prefix = fuzz_prefixes[(settings >> FUZZ_PREFIX_SHIFT) & 3];
    rcf->enabled = 1;

    ngx_memzero(&ngx_ws_relay_redis, sizeof(ngx_ws_relay_redis_t));

    fuzz_next_connect = FUZZ_CONNECT_OK;
    fuzz_attach_refuse = 0;
    fuzz_write_fails = 0;
    fuzz_exited = 0;
    fuzz_serial = 0;

    /* the ids in the input mean the same deliveries on every run */
    ngx_ws_relay_next_delivery = 0;
    fuzz_last_id = 0;

    fuzz_assert(ngx_ws_relay_redis_init_worker(&fuzz_cycle) == NGX_OK);

    for (i = 0; i < FUZZ_CONNS; i++) {
        fuzz_conns[i] = malloc(sizeof(fuzz_conn_t));
        fuzz_assert(fuzz_conns[i] != NULL);
        fuzz_conn_open(fuzz_conns[i], i, ++fuzz_serial);
    }

    fuzz_conn_set(0, &fuzz_users[0]);
    fuzz_conn_set(1, &fuzz_users[1]);
    fuzz_conn_set(2, &fuzz_users[1]);

    if (settings & FUZZ_READY) {
        fuzz_handshake();
    }

    fuzz_check_state();
}


/* what Redis answers to a worker that connects */

static void
fuzz_handshake(void)
{
    u_char      buf[256], *p;
    fuzz_ac_t  *fa;

    while ((fa = fuzz_link_ac(FUZZ_CMD)) && fa->replies
           && !ngx_ws_relay_redis.cmd.ready)
    {
        if (fuzz_arg_is(fa->replies->command, 0, "PING")) {
            fuzz_ac_dispatch(fa, fuzz_parse("+PONG\r\n", 7));

        } else {
            fuzz_ac_dispatch(fa, fuzz_parse("+OK\r\n", 5));
        }
    }

    while ((fa = fuzz_link_ac(FUZZ_SUB)) && fa->replies) {
        fuzz_ac_dispatch(fa, fuzz_parse("+OK\r\n", 5));
    }

    fa = fuzz_link_ac(FUZZ_SUB);

    if (fa && ngx_ws_relay_redis.node_channel.len < 128) {
        p = ngx_sprintf(buf, "*3\r\n$9\r\nsubscribe\r\n$%uz\r\n%V\r\n:1\r\n",
                        ngx_ws_relay_redis.node_channel.len,
                        &ngx_ws_relay_redis.node_channel);

        fuzz_ac_dispatch(fa, fuzz_parse((char *) buf, p - buf));
    }
}


static void
fuzz_teardown(void)
{
    ngx_uint_t   i;
    fuzz_dl_t   *dl;
    fuzz_pr_t   *pr;

    if (!fuzz_exited) {
        ngx_ws_relay_redis_exit_worker();
    }

    /* every context went, and with it every callback waiting in it */
    fuzz_assert(ngx_ws_relay_redis.cmd.ac == NULL);
    fuzz_assert(ngx_ws_relay_redis.sub.ac == NULL);
    fuzz_assert(fuzz_acs == NULL);

    /* the event loop stops; deliveries still waiting reach their deadline */
    fuzz_del_timer(&ngx_ws_relay_redis.watchdog);
    fuzz_del_timer(&ngx_ws_relay_redis.cmd.reconnect);
    fuzz_del_timer(&ngx_ws_relay_redis.sub.reconnect);

    fuzz_time_pass(fuzz_main_conf.redis.ack_timeout);

    for (i = 0; i < FUZZ_CONNS; i++) {
        fuzz_conn_close(fuzz_conns[i]);
        free(fuzz_conns[i]);
        fuzz_conns[i] = NULL;
    }

    fuzz_assert(ngx_ws_relay_registry_connections() == 0);
    fuzz_assert(ngx_ws_relay_registry_users() == 0);

    while (fuzz_dls) {
        dl = fuzz_dls;
        fuzz_dls = dl->next;

        /* every delivery ended, once */
        fuzz_assert(dl->ended && dl->d == NULL);
        free(dl);
    }

    while (fuzz_prs) {
        pr = fuzz_prs;
        fuzz_prs = pr->next;

        /* every presence request taken was answered, once */
        fuzz_assert(pr->answered == !pr->refused);

        fuzz_set_clear(&pr->nodes);
        for (i = 0; i < FUZZ_MAX_NODES; i++) {
            fuzz_set_clear(&pr->users[i]);
        }

        free(pr);
    }

    if (ngx_ws_relay_redis.buf) {
        ngx_free(ngx_ws_relay_redis.buf);
    }

    ngx_memzero(&ngx_ws_relay_redis, sizeof(ngx_ws_relay_redis_t));

    fuzz_assert(fuzz_json_live() == 0);

    fuzz_ngx_reset();
}


static void
fuzz_step(u_char s, const u_char **pos, const u_char *last,
    ngx_uint_t *stop)
{
    ngx_int_t    rc;
    ngx_str_t    user;
    ngx_uint_t   op, k, n;
    fuzz_ac_t   *fa;
    fuzz_dl_t   *dl;
    redisReply  *reply;

    op = s & 7;

    if (op == 5 || op == 7) {
        fuzz_action((s >> 3) & 7, s >> 6, stop);
        return;
    }

    rc = fuzz_read(pos, last, &reply);

    if (rc == 0) {
        /* the reply is not complete: hiredis waits for more */
        return;
    }

    if (rc < 0) {
        /* hiredis drops a link whose bytes it cannot parse */
        fa = fuzz_link_ac((op == 1 || op == 2) ? FUZZ_SUB : FUZZ_CMD);

        if (fa && op != 6) {
            fuzz_ac_lost(fa, REDIS_ERR_PROTOCOL, "Protocol error");
        }

        *stop = 1;
        return;
    }

    switch (op) {

    case 0:
    case 1:
        fa = fuzz_link_ac(op == 0 ? FUZZ_CMD : FUZZ_SUB);

        if (fa) {
            fuzz_ac_dispatch(fa, reply);
            return;
        }

        break;

    case 2:
        fuzz_ac_direct(FUZZ_SUB, ngx_ws_relay_redis_message, NULL, reply);
        return;

    case 3:
        n = 0;
        for (dl = fuzz_dls; dl; dl = dl->next) {
            n += (dl->id != 0);
        }

        if (n == 0) {
            break;
        }

        k = (s >> 3) % n;

        for (dl = fuzz_dls; dl; dl = dl->next) {
            if (dl->id && k-- == 0) {
                break;
            }
        }

        fuzz_ac_direct(FUZZ_CMD, ngx_ws_relay_redis_publish_reply,
                       (void *) (uintptr_t) dl->id, reply);
        return;

    case 4:
        fuzz_ac_direct(FUZZ_CMD, (s & 8) ? ngx_ws_relay_redis_ready_reply
                                         : ngx_ws_relay_redis_generic_reply,
                       &ngx_ws_relay_redis.cmd, reply);
        return;

    case 6:
        if ((reply->type == REDIS_REPLY_STRING
             || reply->type == REDIS_REPLY_STATUS
             || reply->type == REDIS_REPLY_ERROR)
            && reply->len > 0 && reply->len <= NGX_WS_RELAY_MAX_USER_ID)
        {
            user.data = (u_char *) reply->str;
            user.len = reply->len;

            fuzz_conn_set((s >> 3) & 3, &user);
        }

        break;
    }

    freeReplyObject(reply);
}


static void
fuzz_action(ngx_uint_t a, ngx_uint_t b, ngx_uint_t *stop)
{
    fuzz_ac_t  *fa;

    switch (a) {

    case 0:
        fuzz_delivery_start(b);
        break;

    case 1:
        fuzz_presence_start();
        break;

    case 2:
        fuzz_time_pass(fuzz_periods[b]);
        break;

    case 3:
        fa = fuzz_link_ac(b & 1);

        if (fa && !(fa->ac.c.flags & REDIS_CONNECTED)) {
            fuzz_ac_connected(fa);
        }

        break;

    case 4:
        fa = fuzz_link_ac(b & 1);

        if (fa) {
            if (fa->ac.c.flags & REDIS_CONNECTED) {
                fuzz_ac_lost(fa, REDIS_ERR_EOF,
                             "Server closed the connection");

            } else {
                fuzz_ac_lost(fa, REDIS_ERR_IO, "Connection refused");
            }
        }

        break;

    case 5:
        if (b == 3) {
            fuzz_write_fails = 1;

        } else {
            fuzz_next_connect = b;
        }

        break;

    case 6:
        fuzz_conn_reopen(b);
        break;

    case 7:
        ngx_ws_relay_redis_exit_worker();
        fuzz_exited = 1;
        *stop = 1;
        break;
    }
}


/* one reply off the input, by hiredis's reader */

static ngx_int_t
fuzz_read(const u_char **pos, const u_char *last, redisReply **reply)
{
    int            rc;
    void          *r;
    redisReader   *reader;

    reader = redisReaderCreate();
    fuzz_assert(reader != NULL);

    if (fuzz_reader_create_array == NULL) {
        fuzz_reader_fn = *reader->fn;
        fuzz_reader_create_array = fuzz_reader_fn.createArray;
        fuzz_reader_fn.createArray = fuzz_create_array;
    }

    reader->fn = &fuzz_reader_fn;
    fuzz_reader_limit = last - *pos;

    fuzz_assert(redisReaderFeed(reader, (const char *) *pos, last - *pos)
                == REDIS_OK);

    r = NULL;
    rc = redisReaderGetReply(reader, &r);

    if (rc != REDIS_OK || r == NULL) {
        fuzz_assert(r == NULL);
        redisReaderFree(reader);
        *pos = last;
        return rc == REDIS_OK ? 0 : -1;
    }

    /* what the reader did not use is the rest of the input */
    *pos = last - (reader->len - reader->pos);
    *reply = r;

    redisReaderFree(reader);

    return 1;
}


/*
 * An array header allocates its elements before they arrive: one that
 * announces more elements than the input has bytes could never be
 * completed, and is refused as the reader refuses what it cannot
 * allocate (hiredis 0.14 takes counts up to INT_MAX).
 */

static void *
fuzz_create_array(const redisReadTask *task, int elements)
{
    if (elements > 0 && (size_t) elements > fuzz_reader_limit) {
        return NULL;
    }

    return fuzz_reader_create_array(task, elements);
}


static redisReply *
fuzz_parse(const char *p, size_t len)
{
    void         *r;
    redisReader  *reader;

    reader = redisReaderCreate();
    fuzz_assert(reader != NULL);

    r = NULL;

    fuzz_assert(redisReaderFeed(reader, p, len) == REDIS_OK);
    fuzz_assert(redisReaderGetReply(reader, &r) == REDIS_OK && r != NULL);
    fuzz_assert(reader->len == reader->pos);

    redisReaderFree(reader);

    return r;
}


/* the model of hiredis's async.c */

static fuzz_ac_t *
fuzz_ac_live(const redisAsyncContext *ac)
{
    fuzz_ac_t  *fa;

    /* a context the module uses is one hiredis has not freed */
    for (fa = fuzz_acs; fa; fa = fa->next) {
        if (&fa->ac == ac) {
            return fa;
        }
    }

    fuzz_assert(0 && "a redisAsyncContext used after it was freed");

    return NULL;
}


static fuzz_ac_t *
fuzz_link_ac(ngx_uint_t link)
{
    redisAsyncContext  *ac;

    ac = (link == FUZZ_CMD) ? ngx_ws_relay_redis.cmd.ac
                            : ngx_ws_relay_redis.sub.ac;

    return ac ? fuzz_ac_live(ac) : NULL;
}


static fuzz_ac_t *
fuzz_ac_new(void)
{
    fuzz_ac_t  *fa;

    fa = calloc(1, sizeof(fuzz_ac_t));
    fuzz_assert(fa != NULL);

    fa->ac.errstr = fa->ac.c.errstr;
    fa->next = fuzz_acs;
    fuzz_acs = fa;

    return fa;
}


static redisAsyncContext *
fuzz_connect(void)
{
    ngx_uint_t   how;
    fuzz_ac_t   *fa;

    how = fuzz_next_connect;
    fuzz_next_connect = FUZZ_CONNECT_OK;

    if (how == 1) {
        return NULL;
    }

    fa = fuzz_ac_new();

    if (how == 0) {
        fa->ac.c.err = REDIS_ERR_IO;
        fa->ac.err = REDIS_ERR_IO;
        ngx_cpystrn((u_char *) fa->ac.c.errstr,
                    (u_char *) "Connection refused",
                    sizeof(fa->ac.c.errstr));
    }

    fuzz_attach_refuse = (how == 2);

    return &fa->ac;
}


static redisAsyncContext *
fuzz_redisAsyncConnect(const char *ip, int port)
{
    ngx_ws_relay_redis_conf_t  *rcf;

    rcf = &fuzz_main_conf.redis;

    fuzz_assert(rcf->unix_path.len == 0);
    fuzz_assert(ip == (char *) rcf->host.data && port == rcf->port);

    return fuzz_connect();
}


static redisAsyncContext *
fuzz_redisAsyncConnectUnix(const char *path)
{
    ngx_ws_relay_redis_conf_t  *rcf;

    rcf = &fuzz_main_conf.redis;

    fuzz_assert(path == (char *) rcf->unix_path.data);

    return fuzz_connect();
}


ngx_int_t
ngx_ws_relay_redis_attach(redisAsyncContext *ac, ngx_log_t *log)
{
    (void) fuzz_ac_live(ac);

    fuzz_assert(log != NULL);
    fuzz_assert(ac->err == 0);

    if (fuzz_attach_refuse) {
        fuzz_attach_refuse = 0;
        return NGX_ERROR;
    }

    return NGX_OK;
}


static int
fuzz_redisAsyncSetConnectCallback(redisAsyncContext *ac,
    redisConnectCallback *fn)
{
    (void) fuzz_ac_live(ac);

    if (ac->onConnect == NULL) {
        ac->onConnect = fn;
        return REDIS_OK;
    }

    return REDIS_ERR;
}


static int
fuzz_redisAsyncSetDisconnectCallback(redisAsyncContext *ac,
    redisDisconnectCallback *fn)
{
    (void) fuzz_ac_live(ac);

    if (ac->onDisconnect == NULL) {
        ac->onDisconnect = fn;
        return REDIS_OK;
    }

    return REDIS_ERR;
}


static int
fuzz_redisAsyncCommand(redisAsyncContext *ac, redisCallbackFn *fn,
    void *privdata, const char *format, ...)
{
    int      rc;
    va_list  ap;

    va_start(ap, format);
    rc = fuzz_redisvAsyncCommand(ac, fn, privdata, format, ap);
    va_end(ap);

    return rc;
}


static int
fuzz_redisvAsyncCommand(redisAsyncContext *ac, redisCallbackFn *fn,
    void *privdata, const char *format, va_list ap)
{
    int         len, rc;
    char       *cmd;
    fuzz_ac_t  *fa;

    fa = fuzz_ac_live(ac);

    len = redisvFormatCommand(&cmd, format, ap);
    fuzz_assert(len > 0);

    rc = fuzz_ac_command(fa, fn, privdata, cmd, len);
    free(cmd);

    return rc;
}


static int
fuzz_redisAsyncCommandArgv(redisAsyncContext *ac, redisCallbackFn *fn,
    void *privdata, int argc, const char **argv, const size_t *argvlen)
{
    int         len, rc;
    char       *cmd;
    fuzz_ac_t  *fa;

    fa = fuzz_ac_live(ac);

    len = redisFormatCommandArgv(&cmd, argc, argv, argvlen);
    fuzz_assert(len > 0);

    rc = fuzz_ac_command(fa, fn, privdata, cmd, len);
    free(cmd);

    return rc;
}


/* the module's own RESP: parsed like any other command */

static int
fuzz_redisAsyncFormattedCommand(redisAsyncContext *ac, redisCallbackFn *fn,
    void *privdata, const char *cmd, size_t len)
{
    fuzz_ac_t  *fa;

    fa = fuzz_ac_live(ac);

    return fuzz_ac_command(fa, fn, privdata, (char *) cmd, (int) len);
}


/* __redisAsyncCommand() */

static int
fuzz_ac_command(fuzz_ac_t *fa, redisCallbackFn *fn, void *privdata,
    char *cmd, int len)
{
    size_t       i;
    fuzz_cb_t   *cb;
    redisReply  *command, *arg;

    if (fa->ac.c.flags & (REDIS_DISCONNECTING|REDIS_FREEING)) {
        return REDIS_ERR;
    }

    command = fuzz_parse(cmd, len);

    fuzz_assert(command->type == REDIS_REPLY_ARRAY && command->elements > 0);

    if (fuzz_arg_is(command, 0, "UNSUBSCRIBE")
        && !(fa->ac.c.flags & REDIS_SUBSCRIBED))
    {
        freeReplyObject(command);
        return REDIS_ERR;
    }

    /* sent: what Redis will make of it */
    fuzz_ac_check_command(fa, command);

    if (fuzz_arg_is(command, 0, "SUBSCRIBE") && command->elements > 1) {
        fa->ac.c.flags |= REDIS_SUBSCRIBED;

        for (i = 1; i < command->elements; i++) {
            arg = command->element[i];

            for (cb = fa->channels; cb; cb = cb->next) {
                if (fuzz_is(arg, &cb->channel)) {
                    break;
                }
            }

            if (cb) {
                /* dictReplace(): the new callback, one more pending */
                cb->pending_subs++;

            } else {
                cb = calloc(1, sizeof(fuzz_cb_t));
                fuzz_assert(cb != NULL);

                fuzz_str_dup(&cb->channel, (u_char *) arg->str, arg->len);
                cb->pending_subs = 1;
                cb->next = fa->channels;
                fa->channels = cb;
            }

            cb->fn = fn;
            cb->privdata = privdata;
        }

        freeReplyObject(command);
        return REDIS_OK;
    }

    if (fuzz_arg_is(command, 0, "UNSUBSCRIBE")) {
        /* no callback: each channel's confirmation goes to its own */
        freeReplyObject(command);
        return REDIS_OK;
    }

    if (fn == ngx_ws_relay_redis_publish_reply) {
        fuzz_published(command, (uintptr_t) privdata);
    }

    cb = calloc(1, sizeof(fuzz_cb_t));
    fuzz_assert(cb != NULL);

    cb->fn = fn;
    cb->privdata = privdata;
    cb->command = command;

    if (fa->ac.c.flags & REDIS_SUBSCRIBED) {
        fuzz_cb_push(&fa->invalid, cb);

    } else {
        fuzz_cb_push(&fa->replies, cb);
    }

    return REDIS_OK;
}


/* a command is one the module means to send, and Redis acts on it */

static void
fuzz_ac_check_command(fuzz_ac_t *fa, redisReply *cmd)
{
    size_t                      i, n;
    u_char                     *p;
    ngx_str_t                   channel, message;
    ngx_uint_t                  link;
    ngx_ws_relay_redis_t       *rd;
    ngx_ws_relay_redis_conf_t  *rcf;

    rd = &ngx_ws_relay_redis;
    rcf = &fuzz_main_conf.redis;
    n = cmd->elements;

    for (i = 0; i < n; i++) {
        fuzz_assert(cmd->element[i]->type == REDIS_REPLY_STRING);
    }

    fuzz_assert(fa->ac.data == &rd->cmd || fa->ac.data == &rd->sub);
    link = (fa->ac.data == &rd->cmd) ? FUZZ_CMD : FUZZ_SUB;

    if (fuzz_arg_is(cmd, 0, "AUTH")) {
        fuzz_assert(n == 2 && fuzz_is(cmd->element[1], &rcf->password));
        return;
    }

    if (link == FUZZ_SUB) {
        if (fuzz_arg_is(cmd, 0, "SUBSCRIBE")) {
            fuzz_assert(n >= 2);

            for (i = 1; i < n; i++) {
                fuzz_set_add(&fa->subscribed, (u_char *) cmd->element[i]->str,
                             cmd->element[i]->len);
            }

            return;
        }

        fuzz_assert(fuzz_arg_is(cmd, 0, "UNSUBSCRIBE") && n == 2);
        fuzz_set_remove(&fa->subscribed, (u_char *) cmd->element[1]->str,
                        cmd->element[1]->len);
        return;
    }

    if (fuzz_arg_is(cmd, 0, "DEL")) {
        fuzz_assert(n == 2);

        if (fuzz_is(cmd->element[1], &rd->presence_key)) {
            fuzz_set_clear(&fa->members);
        }

        return;
    }

    if (fuzz_arg_is(cmd, 0, "SADD") || fuzz_arg_is(cmd, 0, "SREM")) {
        fuzz_assert(n >= 3 && fuzz_is(cmd->element[1], &rd->presence_key));

        for (i = 2; i < n; i++) {
            if (fuzz_arg_is(cmd, 0, "SADD")) {
                fuzz_set_add(&fa->members, (u_char *) cmd->element[i]->str,
                             cmd->element[i]->len);

            } else {
                fuzz_set_remove(&fa->members,
                                (u_char *) cmd->element[i]->str,
                                cmd->element[i]->len);
            }
        }

        return;
    }

    if (fuzz_arg_is(cmd, 0, "PUBLISH")) {
        fuzz_assert(n == 3);

        channel.data = (u_char *) cmd->element[1]->str;
        channel.len = cmd->element[1]->len;
        message.data = (u_char *) cmd->element[2]->str;
        message.len = cmd->element[2]->len;

        fuzz_assert(channel.len >= rcf->prefix.len + 2
                    && ngx_memcmp(channel.data, rcf->prefix.data,
                                  rcf->prefix.len) == 0);

        p = channel.data + rcf->prefix.len;

        if (ngx_memcmp(p, "n:", 2) == 0) {
            if (fuzz_events.on) {
                fuzz_log_add(&fuzz_events, FUZZ_EV_PUBLISH_ACK, 0, 0,
                             &channel, &message);
            }

        } else {
            fuzz_assert(ngx_memcmp(p, "u:", 2) == 0);
        }

        return;
    }

    fuzz_assert(fuzz_arg_is(cmd, 0, "SELECT") || fuzz_arg_is(cmd, 0, "PING")
                || fuzz_arg_is(cmd, 0, "ZADD")
                || fuzz_arg_is(cmd, 0, "PEXPIRE")
                || fuzz_arg_is(cmd, 0, "ZREM")
                || fuzz_arg_is(cmd, 0, "ZREMRANGEBYSCORE")
                || fuzz_arg_is(cmd, 0, "ZRANGEBYSCORE")
                || fuzz_arg_is(cmd, 0, "SMEMBERS"));
}


/* a delivery's PUBLISH: "<node> <id> <JSON>" to the target's channel */

static void
fuzz_published(redisReply *cmd, uint64_t id)
{
    u_char     buf[NGX_INT64_LEN + 2], *p;
    ngx_str_t  message, *node;

    /* only while a delivery starts, and with an id of its own */
    fuzz_assert(fuzz_starting != NULL && fuzz_starting->id == 0);
    fuzz_assert(id > fuzz_last_id);

    fuzz_last_id = id;
    fuzz_starting->id = id;

    node = &ngx_ws_relay_worker.node_id;
    message.data = (u_char *) cmd->element[2]->str;
    message.len = cmd->element[2]->len;

    p = ngx_sprintf(buf, " %uL ", id);

    fuzz_assert(message.len > node->len + (p - buf));
    fuzz_assert(ngx_memcmp(message.data, node->data, node->len) == 0);
    fuzz_assert(ngx_memcmp(message.data + node->len, buf, p - buf) == 0);
}


/* redisAsyncHandleWrite(): the socket takes the commands, or fails */

static void
fuzz_redisAsyncHandleWrite(redisAsyncContext *ac)
{
    fuzz_ac_t  *fa;

    fa = fuzz_ac_live(ac);

    if (!(fa->ac.c.flags & REDIS_CONNECTED)) {
        /* connecting: hiredis finds out how that went first */
        fuzz_ac_connected(fa);
        return;
    }

    if (fuzz_write_fails) {
        fuzz_write_fails = 0;

        fa->ac.c.err = REDIS_ERR_IO;
        ngx_cpystrn((u_char *) fa->ac.c.errstr, (u_char *) "Broken pipe",
                    sizeof(fa->ac.c.errstr));

        fuzz_ac_disconnect(fa);
    }
}


static int
fuzz_redisBufferWrite(redisContext *c, int *done)
{
    (void) fuzz_ac_live((redisAsyncContext *) c);

    *done = 1;

    return REDIS_OK;
}


static void
fuzz_redisAsyncFree(redisAsyncContext *ac)
{
    fuzz_ac_t  *fa;

    fa = fuzz_ac_live(ac);

    fa->ac.c.flags |= REDIS_FREEING;

    if (!(fa->ac.c.flags & REDIS_IN_CALLBACK)) {
        fuzz_ac_free(fa);
    }
}


/* __redisAsyncHandleConnect(), connected */

static void
fuzz_ac_connected(fuzz_ac_t *fa)
{
    fa->ac.c.flags |= REDIS_CONNECTED;

    if (fa->ac.onConnect) {
        fa->ac.onConnect(&fa->ac, REDIS_OK);
    }
}


/* the socket failed: connecting, or reading */

static void
fuzz_ac_lost(fuzz_ac_t *fa, int err, const char *errstr)
{
    fa->ac.c.err = err;
    ngx_cpystrn((u_char *) fa->ac.c.errstr, (u_char *) errstr,
                sizeof(fa->ac.c.errstr));

    if (!(fa->ac.c.flags & REDIS_CONNECTED) && fa->ac.onConnect) {
        fa->ac.err = err;
        fa->ac.onConnect(&fa->ac, REDIS_ERR);
    }

    fuzz_ac_disconnect(fa);
}


/* __redisAsyncDisconnect(), after an error */

static void
fuzz_ac_disconnect(fuzz_ac_t *fa)
{
    fa->ac.err = fa->ac.c.err;

    fuzz_assert(fa->ac.err != 0);

    fa->ac.c.flags |= REDIS_DISCONNECTING;

    fuzz_ac_free(fa);
}


/* __redisAsyncFree() */

static void
fuzz_ac_free(fuzz_ac_t *fa)
{
    int          status;
    fuzz_cb_t   *cb;
    fuzz_ac_t  **link;

    fuzz_assert(!fa->freed);
    fa->freed = 1;

    while ((cb = fuzz_cb_shift(&fa->replies))) {
        fuzz_ac_run(fa, cb, NULL);
        fuzz_cb_free(cb);
    }

    while ((cb = fuzz_cb_shift(&fa->invalid))) {
        fuzz_ac_run(fa, cb, NULL);
        fuzz_cb_free(cb);
    }

    for (cb = fa->channels; cb; cb = cb->next) {
        fuzz_ac_run(fa, cb, NULL);
    }

    while ((cb = fuzz_cb_shift(&fa->channels))) {
        fuzz_cb_free(cb);
    }

    if (fa->ac.onDisconnect && (fa->ac.c.flags & REDIS_CONNECTED)) {
        if (fa->ac.c.flags & REDIS_FREEING) {
            status = REDIS_OK;

        } else {
            status = (fa->ac.err == 0) ? REDIS_OK : REDIS_ERR;
        }

        fa->ac.onDisconnect(&fa->ac, status);
    }

    for (link = &fuzz_acs; *link != fa; link = &(*link)->next) {
        /* void */
    }

    *link = fa->next;

    fuzz_set_clear(&fa->subscribed);
    fuzz_set_clear(&fa->members);

    /* gone for ASan too */
    free(fa);
}


/* one reply, as redisProcessCallbacks() hands it out */

static void
fuzz_ac_dispatch(fuzz_ac_t *fa, redisReply *reply)
{
    ngx_str_t    channel;
    fuzz_cb_t   *cb, *ch, tmp;
    const char  *type;

    if (!(fa->ac.c.flags & REDIS_CONNECTED)) {
        /* bytes arrive only on a socket that connected */
        fuzz_ac_connected(fa);
    }

    cb = fuzz_cb_shift(&fa->replies);

    if (cb == NULL) {

        if (reply->type == REDIS_REPLY_ERROR) {
            /* a spontaneous error: hiredis closes the link */
            fa->ac.c.err = REDIS_ERR_OTHER;
            ngx_cpystrn((u_char *) fa->ac.c.errstr, (u_char *) reply->str,
                        sizeof(fa->ac.c.errstr));
            freeReplyObject(reply);

            fuzz_ac_disconnect(fa);
            return;
        }

        /*
         * Replies hiredis would abort() on (an assert()): a reply with
         * no command waiting outside pub/sub mode, and in it an array
         * that is not [string, string, ...].  They never reach the
         * module; the direct steps hand such replies to it anyway.
         */

        if (!(fa->ac.c.flags & REDIS_SUBSCRIBED)) {
            freeReplyObject(reply);
            return;
        }

        if (reply->type != REDIS_REPLY_ARRAY) {
            cb = fuzz_cb_shift(&fa->invalid);
            goto run;
        }

        if (reply->elements < 2
            || reply->element[0]->type != REDIS_REPLY_STRING
            || reply->element[1]->type != REDIS_REPLY_STRING)
        {
            freeReplyObject(reply);
            return;
        }

        type = reply->element[0]->str;

        if (ngx_tolower(type[0]) == 'p') {
            /* no patterns here */
            freeReplyObject(reply);
            return;
        }

        channel.data = (u_char *) reply->element[1]->str;
        channel.len = reply->element[1]->len;

        for (ch = fa->channels; ch; ch = ch->next) {
            if (fuzz_str_eq(&ch->channel, &channel)) {
                break;
            }
        }

        if (ch == NULL) {
            freeReplyObject(reply);
            return;
        }

        if (strcasecmp(type, "subscribe") == 0) {
            ch->pending_subs--;
        }

        tmp = *ch;
        tmp.next = NULL;
        tmp.channel.data = NULL;

        if (strcasecmp(type, "unsubscribe") == 0) {

            if (reply->elements < 3
                || reply->element[2]->type != REDIS_REPLY_INTEGER)
            {
                /* hiredis asserts on element[2], past the array if short */
                freeReplyObject(reply);
                return;
            }

            if (ch->pending_subs == 0) {
                fuzz_cb_remove(&fa->channels, ch);
                fuzz_cb_free(ch);
            }

            if (reply->element[2]->integer == 0 && fa->channels == NULL) {
                fa->ac.c.flags &= ~REDIS_SUBSCRIBED;
            }
        }

        fuzz_ac_run(fa, &tmp, reply);
        freeReplyObject(reply);

        if (fa->ac.c.flags & REDIS_FREEING) {
            fuzz_ac_free(fa);
        }

        return;
    }

run:

    if (cb && cb->fn) {
        fuzz_ac_run(fa, cb, reply);
    }

    freeReplyObject(reply);

    if (cb) {
        fuzz_cb_free(cb);
    }

    if (fa->ac.c.flags & REDIS_FREEING) {
        fuzz_ac_free(fa);
    }
}


/* a callback of the module called directly, as if hiredis did */

static void
fuzz_ac_direct(ngx_uint_t link, redisCallbackFn *fn, void *privdata,
    redisReply *reply)
{
    fuzz_cb_t   cb;
    fuzz_ac_t  *fa;

    fa = fuzz_link_ac(link);

    if (fa && !(fa->ac.c.flags & REDIS_CONNECTED)) {
        fuzz_ac_connected(fa);
        fa = fuzz_link_ac(link);
    }

    if (fa == NULL || (fa->ac.c.flags & REDIS_FREEING)) {
        freeReplyObject(reply);
        return;
    }

    ngx_memzero(&cb, sizeof(fuzz_cb_t));
    cb.fn = fn;
    cb.privdata = privdata;

    fuzz_ac_run(fa, &cb, reply);
    freeReplyObject(reply);

    if (fa->ac.c.flags & REDIS_FREEING) {
        fuzz_ac_free(fa);
    }
}


/* __redisRunCallback(), and what the module must do with the reply */

static void
fuzz_ac_run(fuzz_ac_t *fa, fuzz_cb_t *cb, redisReply *reply)
{
    int64_t                 v;
    uint64_t                id;
    fuzz_log_t              expect, outer;
    ngx_uint_t              check, sub_ready, lenient, was_ready, error;
    ngx_ws_relay_redis_t   *rd;

    if (cb->fn == NULL) {
        return;
    }

    rd = &ngx_ws_relay_redis;
    lenient = fuzz_lenient();
    check = 0;
    sub_ready = 0;
    error = 0;
    was_ready = rd->sub.ready;

    ngx_memzero(&expect, sizeof(fuzz_log_t));

    if (cb->fn == ngx_ws_relay_redis_message
        && reply && &fa->ac == rd->sub.ac)
    {
        check = 1;
        fuzz_expect_message(reply, &expect);

        sub_ready = (reply->type == REDIS_REPLY_ARRAY
                     && reply->elements >= 3
                     && reply->element[0]->type == REDIS_REPLY_STRING
                     && reply->element[1]->type == REDIS_REPLY_STRING
                     && reply->element[0]->len == 9
                     && ngx_memcmp(reply->element[0]->str, "subscribe", 9)
                        == 0
                     && fuzz_is(reply->element[1], &rd->node_channel));

    } else if (cb->fn == ngx_ws_relay_redis_publish_reply) {
        check = 1;
        id = (uintptr_t) cb->privdata;

        if (reply == NULL || &fa->ac != rd->cmd.ac
            || reply->type != REDIS_REPLY_INTEGER)
        {
            v = -1;

        } else {
            v = (ngx_int_t) reply->integer;
        }

        fuzz_log_add(&expect, FUZZ_EV_PUBLISHED, id, v, NULL, NULL);

    } else if (cb->fn == ngx_ws_relay_redis_nodes_reply
               || cb->fn == ngx_ws_relay_redis_users_reply)
    {
        fuzz_presence_reply(cb, reply);

    } else if (cb->fn == ngx_ws_relay_redis_ready_reply
               && reply && &fa->ac == rd->cmd.ac)
    {
        error = (reply->type == REDIS_REPLY_ERROR) ? 1 : 2;
    }

    /* a nested callback (a context freed in this one) logs apart */
    outer = fuzz_events;
    ngx_memzero(&fuzz_events, sizeof(fuzz_log_t));
    fuzz_events.on = 1;

    fuzz_trace("callback %s, reply type %d",
               cb->fn == ngx_ws_relay_redis_message ? "message"
               : cb->fn == ngx_ws_relay_redis_publish_reply ? "publish"
               : cb->fn == ngx_ws_relay_redis_generic_reply ? "generic"
               : cb->fn == ngx_ws_relay_redis_ready_reply ? "ready"
               : cb->fn == ngx_ws_relay_redis_nodes_reply ? "nodes"
               : cb->fn == ngx_ws_relay_redis_users_reply ? "users" : "?",
               reply ? reply->type : 0);

    fa->ac.c.flags |= REDIS_IN_CALLBACK;
    cb->fn(&fa->ac, reply, cb->privdata);
    fa->ac.c.flags &= ~REDIS_IN_CALLBACK;

    fuzz_events.on = 0;

    if (check && !lenient && !fuzz_lenient()) {
        fuzz_log_compare(&expect, &fuzz_events);

        if (sub_ready && !was_ready) {
            fuzz_assert(rd->sub.ready);

        } else {
            fuzz_assert(rd->sub.ready == was_ready);
        }
    }

    if (error == 1) {
        /* PING failed: the link goes */
        fuzz_assert(rd->cmd.ac != &fa->ac);
        fuzz_assert(fa->ac.c.flags & REDIS_FREEING);

    } else if (error == 2 && !lenient && !fuzz_lenient()) {
        fuzz_assert(rd->cmd.ready && rd->cmd.ac == &fa->ac);
    }

    fuzz_log_reset(&fuzz_events);
    fuzz_log_reset(&expect);
    fuzz_events = outer;
}


static fuzz_cb_t *
fuzz_cb_shift(fuzz_cb_t **list)
{
    fuzz_cb_t  *cb;

    cb = *list;

    if (cb) {
        *list = cb->next;
        cb->next = NULL;
    }

    return cb;
}


static void
fuzz_cb_push(fuzz_cb_t **list, fuzz_cb_t *cb)
{
    while (*list) {
        list = &(*list)->next;
    }

    cb->next = NULL;
    *list = cb;
}


static void
fuzz_cb_remove(fuzz_cb_t **list, fuzz_cb_t *cb)
{
    while (*list != cb) {
        list = &(*list)->next;
    }

    *list = cb->next;
    cb->next = NULL;
}


static void
fuzz_cb_free(fuzz_cb_t *cb)
{
    if (cb->command) {
        freeReplyObject(cb->command);
    }

    free(cb->channel.data);
    free(cb);
}


/* what a message on the subscriber link must do: see the file's top */

static void
fuzz_expect_message(redisReply *reply, fuzz_log_t *expect)
{
    ngx_str_t              channel, payload, user, *prefix;
    ngx_ws_relay_redis_t  *rd;

    rd = &ngx_ws_relay_redis;
    prefix = &fuzz_main_conf.redis.prefix;

    if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 3
        || reply->element[0]->type != REDIS_REPLY_STRING
        || reply->element[1]->type != REDIS_REPLY_STRING
        || reply->element[0]->len != 7
        || ngx_memcmp(reply->element[0]->str, "message", 7) != 0
        || reply->element[2]->type != REDIS_REPLY_STRING)
    {
        return;
    }

    channel.data = (u_char *) reply->element[1]->str;
    channel.len = reply->element[1]->len;
    payload.data = (u_char *) reply->element[2]->str;
    payload.len = reply->element[2]->len;

    if (fuzz_str_eq(&channel, &rd->node_channel)) {
        fuzz_expect_node_message(&payload, expect);
        return;
    }

    if (channel.len > prefix->len + 2
        && ngx_memcmp(channel.data, prefix->data, prefix->len) == 0
        && ngx_memcmp(channel.data + prefix->len, "u:", 2) == 0)
    {
        user.data = channel.data + prefix->len + 2;
        user.len = channel.len - prefix->len - 2;

        fuzz_expect_user_message(&user, &payload, expect);
    }
}


static void
fuzz_expect_user_message(ngx_str_t *user, ngx_str_t *payload,
    fuzz_log_t *expect)
{
    u_char                *p, *last, *sp1, *sp2;
    uint64_t               id;
    fuzz_ac_t             *fa;
    ngx_str_t              origin, text, channel, ack;
    ngx_uint_t             i, n;
    fuzz_conn_t           *fc;
    ngx_ws_relay_user_t   *u;

    u_char                 cbuf[512], abuf[64];

    p = payload->data;
    last = p + payload->len;

    sp1 = ngx_strlchr(p, last, ' ');
    if (sp1 == NULL) {
        return;
    }

    sp2 = ngx_strlchr(sp1 + 1, last, ' ');
    if (sp2 == NULL || sp2 == sp1 + 1) {
        return;
    }

    id = 0;

    for (p = sp1 + 1; p < sp2; p++) {
        if (*p < '0' || *p > '9') {
            return;
        }

        id = id * 10 + (*p - '0');
    }

    origin.data = payload->data;
    origin.len = sp1 - payload->data;
    text.data = sp2 + 1;
    text.len = last - text.data;

    if (fuzz_str_eq(&origin, &ngx_ws_relay_worker.node_id)) {
        fuzz_log_add(expect, FUZZ_EV_ACKED, id, 0, NULL, NULL);
        return;
    }

    /* every connection of the user here takes it */
    n = 0;

    for (i = 0; i < FUZZ_CONNS; i++) {
        fc = fuzz_conns[i];
        u = fc->wc.user;

        if (u && fuzz_str_eq(&u->sn.str, user)) {
            n++;
        }
    }

    fuzz_log_add(expect, FUZZ_EV_LOCAL, 0, n, user, &text);

    fa = ngx_ws_relay_redis.cmd.ac ? fuzz_link_ac(FUZZ_CMD) : NULL;

    if (fa == NULL || (fa->ac.c.flags & (REDIS_DISCONNECTING|REDIS_FREEING))
        || fuzz_main_conf.redis.prefix.len + 2 + origin.len > sizeof(cbuf))
    {
        return;
    }

    channel.data = cbuf;
    channel.len = ngx_sprintf(cbuf, "%Vn:%V", &fuzz_main_conf.redis.prefix,
                              &origin)
                  - cbuf;

    ack.data = abuf;
    ack.len = ngx_sprintf(abuf, "ack:%uL:%ui", id, n) - abuf;

    fuzz_log_add(expect, FUZZ_EV_PUBLISH_ACK, 0, 0, &channel, &ack);
}


static void
fuzz_expect_node_message(ngx_str_t *payload, fuzz_log_t *expect)
{
    u_char    *p, *last;
    uint64_t   v[2];

    p = payload->data;
    last = p + payload->len;

    if (payload->len <= 4 || ngx_memcmp(p, "ack:", 4) != 0) {
        /* a ping of ours, or nothing: no delivery hears of it */
        return;
    }

    p += 4;

    v[0] = 0;
    v[1] = 0;

    if (p == last || *p < '0' || *p > '9') {
        return;
    }

    while (p < last && *p >= '0' && *p <= '9') {
        v[0] = v[0] * 10 + (*p++ - '0');
    }

    if (p == last || *p++ != ':') {
        return;
    }

    if (p == last || *p < '0' || *p > '9') {
        return;
    }

    while (p < last && *p >= '0' && *p <= '9') {
        v[1] = v[1] * 10 + (*p++ - '0');
    }

    if (p != last) {
        return;
    }

    fuzz_log_add(expect, FUZZ_EV_ACKED, v[0], (int64_t) (ngx_uint_t) v[1],
                 NULL, NULL);
}


static void
fuzz_log_add(fuzz_log_t *log, fuzz_ev_e type, uint64_t id, int64_t n,
    ngx_str_t *a, ngx_str_t *b)
{
    fuzz_ev_t  *ev;

    if (log->n == FUZZ_MAX_EVENTS) {
        log->overflow = 1;
        return;
    }

    ev = &log->ev[log->n++];
    ngx_memzero(ev, sizeof(fuzz_ev_t));

    ev->type = type;
    ev->id = id;
    ev->n = n;

    if (a) {
        fuzz_str_dup(&ev->a, a->data, a->len);
    }

    if (b) {
        fuzz_str_dup(&ev->b, b->data, b->len);
    }
}


static void
fuzz_log_reset(fuzz_log_t *log)
{
    ngx_uint_t  i;

    for (i = 0; i < log->n; i++) {
        free(log->ev[i].a.data);
        free(log->ev[i].b.data);
    }

    ngx_memzero(log, sizeof(fuzz_log_t));
}


static void
fuzz_log_compare(fuzz_log_t *expect, fuzz_log_t *got)
{
    ngx_uint_t   i;
    fuzz_ev_t   *e, *g;

    fuzz_assert(!expect->overflow && !got->overflow);
    fuzz_assert(expect->n == got->n);

    for (i = 0; i < expect->n; i++) {
        e = &expect->ev[i];
        g = &got->ev[i];

        fuzz_assert(e->type == g->type);
        fuzz_assert(e->id == g->id);
        fuzz_assert(e->n == g->n);
        fuzz_assert(fuzz_str_eq(&e->a, &g->a));
        fuzz_assert(fuzz_str_eq(&e->b, &g->b));
    }
}


/* the wrappers around the delivery code: what reaches it from Redis */

static void
fuzz_delivery_acked(uint64_t id, ngx_uint_t delivered)
{
    fuzz_dl_t  *dl;

    if (fuzz_events.on) {
        fuzz_log_add(&fuzz_events, FUZZ_EV_ACKED, id,
                     (int64_t) delivered, NULL, NULL);
    }

    dl = fuzz_dl_find(id);

    if (dl) {
        dl->acks++;
        dl->acked += delivered;
    }

    ngx_ws_relay_delivery_acked(id, delivered);
}


static void
fuzz_delivery_published(uint64_t id, ngx_int_t receivers)
{
    fuzz_dl_t  *dl;

    /* only ids that were issued: privdata comes back untouched */
    for (dl = fuzz_dls; dl; dl = dl->next) {
        if (dl->id == id) {
            break;
        }
    }

    fuzz_assert(dl != NULL);

    if (fuzz_events.on) {
        fuzz_log_add(&fuzz_events, FUZZ_EV_PUBLISHED, id, receivers,
                     NULL, NULL);
    }

    ngx_ws_relay_delivery_published(id, receivers);
}


static ngx_uint_t
fuzz_delivery_local(ngx_str_t *user_id, ngx_str_t *text)
{
    ngx_uint_t  n;

    n = ngx_ws_relay_delivery_local(user_id, text);

    if (fuzz_events.on) {
        fuzz_log_add(&fuzz_events, FUZZ_EV_LOCAL, 0, n, user_id, text);
    }

    return n;
}


/* deliveries started here, as the router starts them */

static void
fuzz_delivery_start(ngx_uint_t b)
{
    json_t                   *message;
    fuzz_dl_t                *dl;
    ngx_uint_t                i;
    fuzz_conn_t              *fc;
    ngx_ws_relay_delivery_t  *d;

    dl = calloc(1, sizeof(fuzz_dl_t));
    fuzz_assert(dl != NULL);

    dl->next = fuzz_dls;
    fuzz_dls = dl;

    d = ngx_ws_relay_delivery_create(fuzz_delivered, dl, &fuzz_users[b],
                                     &fuzz_log);

    if (d == NULL) {
        dl->ended = 1;
        return;
    }

    dl->d = d;

    for (i = 0; i < FUZZ_CONNS; i++) {
        fc = fuzz_conns[i];

        if (fc->wc.user && fuzz_str_eq(&fc->wc.user->sn.str, &fuzz_users[b]))
        {
            dl->local++;
        }
    }

    fuzz_fail_pause(1);
    message = json_pack("{s:s, s:s, s:I}", "type", "notification",
                        "sender", "system", "timestamp",
                        (json_int_t) ngx_ws_relay_now_ms());
    fuzz_fail_pause(0);

    fuzz_assert(message != NULL);

    fuzz_starting = dl;
    ngx_ws_relay_delivery_start_json(d, message);
    fuzz_starting = NULL;

    json_decref(message);
}


static void
fuzz_delivered(ngx_ws_relay_delivery_t *d)
{
    fuzz_dl_t  *dl;

    dl = d->data;

    fuzz_assert(dl != NULL && dl->d == d);
    fuzz_assert(!dl->ended);
    fuzz_assert(d->done && !d->pending && !d->timer.timer_set);

    dl->ended = 1;

    fuzz_trace("delivery %llu ended: expected %d, acks %u, delivered %u",
               (unsigned long long) dl->id, (int) d->expected,
               (unsigned) d->acks, (unsigned) d->delivered);

    if (!fuzz_lenient()) {
        /* at its deadline, or with every ack in, or never published */
        fuzz_assert(fuzz_timer_firing() == &d->timer
                    || (d->expected >= 0
                        && d->acks >= (ngx_uint_t) d->expected)
                    || (d->expected == -1 && dl->id == 0));

        fuzz_assert(d->acks == dl->acks);
        fuzz_assert(d->delivered == dl->local + dl->acked);
    }

    dl->d = NULL;
    ngx_ws_relay_delivery_free(d);
}


static fuzz_dl_t *
fuzz_dl_find(uint64_t id)
{
    fuzz_dl_t  *dl;

    for (dl = fuzz_dls; dl; dl = dl->next) {
        if (dl->id == id && id != 0 && !dl->ended) {
            return dl;
        }
    }

    return NULL;
}


/* /api/redis-info's question */

static void
fuzz_presence_start(void)
{
    fuzz_pr_t  *pr;

    pr = calloc(1, sizeof(fuzz_pr_t));
    fuzz_assert(pr != NULL);

    pr->next = fuzz_prs;
    fuzz_prs = pr;

    if (ngx_ws_relay_redis_presence(fuzz_presence_done, pr) != NGX_OK) {
        pr->refused = 1;
    }
}


/* the replies to a presence request, as the model hands them out */

static void
fuzz_presence_reply(fuzz_cb_t *cb, redisReply *reply)
{
    size_t                          i, k;
    ngx_str_t                       node, key, *prefix;
    fuzz_pr_t                      *pr;
    redisReply                     *e;
    ngx_ws_relay_redis_presence_t  *p;

    p = cb->privdata;
    pr = p->data;
    prefix = &fuzz_main_conf.redis.prefix;

    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY) {
        pr->spoiled = 1;
        return;
    }

    if (cb->fn == ngx_ws_relay_redis_nodes_reply) {
        for (i = 0; i < reply->elements; i++) {
            e = reply->element[i];

            if (e->type != REDIS_REPLY_STRING) {
                continue;
            }

            fuzz_list_add(&pr->nodes, (u_char *) e->str, e->len);

            if (ngx_strlchr((u_char *) e->str, (u_char *) e->str + e->len,
                            '\0'))
            {
                /* its key is cut at the NUL: may meet another's */
                pr->unchecked = 1;
            }
        }

        return;
    }

    /* SMEMBERS <prefix>node:<node>:users: nodes of the reply, in order */

    fuzz_assert(cb->command && cb->command->elements == 2);

    key.data = (u_char *) cb->command->element[1]->str;
    key.len = cb->command->element[1]->len;

    fuzz_assert(key.len >= prefix->len + 5 + 6);
    fuzz_assert(ngx_memcmp(key.data, prefix->data, prefix->len) == 0);
    fuzz_assert(ngx_memcmp(key.data + prefix->len, "node:", 5) == 0);
    fuzz_assert(ngx_memcmp(key.data + key.len - 6, ":users", 6) == 0);

    node.data = key.data + prefix->len + 5;
    node.len = key.len - prefix->len - 5 - 6;

    for (k = pr->answers; k < pr->nodes.n; k++) {
        if (fuzz_str_eq(&pr->nodes.items[k], &node)) {
            break;
        }
    }

    /* asked about a node of the ZRANGEBYSCORE reply, in its order */
    fuzz_assert(k < pr->nodes.n);

    pr->answers = k + 1;

    if (k >= FUZZ_MAX_NODES) {
        pr->unchecked = 1;
        return;
    }

    pr->answered_node[k] = 1;

    for (i = 0; i < reply->elements; i++) {
        e = reply->element[i];

        if (e->type == REDIS_REPLY_STRING
            && fuzz_utf8_valid((u_char *) e->str, e->len))
        {
            fuzz_list_add(&pr->users[k], (u_char *) e->str, e->len);
        }
    }
}


static void
fuzz_presence_done(json_t *nodes, void *data)
{
    fuzz_pr_t   *pr = data;

    char        *dump;
    size_t       i, k;
    json_t      *users, *user;
    ngx_str_t   *node, *u;
    ngx_uint_t   names, missing;

    fuzz_assert(!pr->refused && !pr->answered);
    pr->answered = 1;

    if (nodes) {
        fuzz_fail_pause(1);
        dump = json_dumps(nodes, JSON_COMPACT|JSON_SORT_KEYS);
        fuzz_fail_pause(0);

        fuzz_trace("presence: %s", dump ? dump : "(no memory)");
        free(dump);

    } else {
        fuzz_trace("presence: failed");
    }

    fuzz_assert(nodes == NULL || json_is_object(nodes));

    if (fuzz_lenient() || pr->unchecked || pr->nodes.n > FUZZ_MAX_NODES) {
        return;
    }

    names = 0;
    missing = 0;

    for (i = 0; i < pr->nodes.n; i++) {
        node = &pr->nodes.items[i];

        if (!fuzz_utf8_valid(node->data, node->len)) {
            /* a name no JSON key can hold: left out */
            continue;
        }

        /* a name that comes again: the last SMEMBERS tells */
        for (k = i + 1; k < pr->nodes.n; k++) {
            if (fuzz_str_eq(node, &pr->nodes.items[k])) {
                break;
            }
        }

        if (k < pr->nodes.n) {
            continue;
        }

        if (!pr->answered_node[i]) {
            /* not asked (a command failed), or no answer */
            missing++;
            continue;
        }

        names++;

        if (nodes == NULL) {
            continue;
        }

        users = json_object_getn(nodes, (const char *) node->data,
                                 node->len);

        fuzz_assert(json_is_array(users));
        fuzz_assert(json_array_size(users) == pr->users[i].n);

        for (k = 0; k < pr->users[i].n; k++) {
            user = json_array_get(users, k);
            u = &pr->users[i].items[k];

            fuzz_assert(json_is_string(user)
                        && json_string_length(user) == u->len
                        && ngx_memcmp(json_string_value(user), u->data,
                                      u->len) == 0);
        }
    }

    if (nodes == NULL) {
        /* only when something went wrong on the way */
        fuzz_assert(pr->spoiled || missing);
        return;
    }

    fuzz_assert(!pr->spoiled && !missing);
    fuzz_assert(json_object_size(nodes) == names);
}


/* connections */

static void
fuzz_conn_set(ngx_uint_t i, ngx_str_t *user)
{
    (void) ngx_ws_relay_registry_set_user(&fuzz_conns[i]->wc, user);
}


static void
fuzz_conn_reopen(ngx_uint_t i)
{
    fuzz_conn_close(fuzz_conns[i]);
    free(fuzz_conns[i]);

    fuzz_conns[i] = malloc(sizeof(fuzz_conn_t));
    fuzz_assert(fuzz_conns[i] != NULL);

    fuzz_conn_open(fuzz_conns[i], i, ++fuzz_serial);
}


ngx_int_t
fuzz_on_reply(fuzz_conn_t *fc, u_char *data, size_t len)
{
    /* no router here: nothing replies to a client */
    fuzz_assert(0 && "a reply to a client");
    return NGX_ERROR;
}


ngx_int_t
fuzz_on_delivery(fuzz_conn_t *fc, u_char *data, size_t len)
{
    fuzz_assert(fc->wc.user != NULL);
    return NGX_OK;
}


/* after each step: the links, and Redis holding what the registry holds */

static void
fuzz_check_state(void)
{
    u_char                     *p, buf[NGX_WS_RELAY_MAX_USER_ID + 64];
    ngx_str_t                  *prefix;
    fuzz_ac_t                  *fa;
    ngx_uint_t                  n;
    ngx_queue_t                *q, *users;
    ngx_ws_relay_user_t        *user;
    ngx_ws_relay_redis_t       *rd;
    ngx_ws_relay_redis_link_t  *link;

    rd = &ngx_ws_relay_redis;
    prefix = &fuzz_main_conf.redis.prefix;

    for (link = &rd->cmd; link <= &rd->sub; link++) {
        if (link->ac) {
            fa = fuzz_ac_live(link->ac);
            fuzz_assert(fa->ac.data == link);
            fuzz_assert(!(fa->ac.c.flags & REDIS_FREEING));
        }

        fuzz_assert(!link->ready || link->ac);
    }

    if (fuzz_lenient()) {
        return;
    }

    users = ngx_ws_relay_registry_users_queue();

    fa = fuzz_link_ac(FUZZ_SUB);

    if (rd->sub.ready && fa) {
        fuzz_assert(fuzz_set_find(&fa->subscribed, rd->node_channel.data,
                                  rd->node_channel.len));

        n = 0;

        for (q = ngx_queue_head(users);
             q != ngx_queue_sentinel(users);
             q = ngx_queue_next(q))
        {
            user = ngx_queue_data(q, ngx_ws_relay_user_t, queue);

            p = ngx_sprintf(buf, "%Vu:%V", prefix, &user->sn.str);
            fuzz_assert(fuzz_set_find(&fa->subscribed, buf, p - buf));
            n++;
        }

        /* the node channel and the users' channels, nothing else */
        fuzz_assert(fa->subscribed.n == n + 1);
    }

    fa = fuzz_link_ac(FUZZ_CMD);

    if (rd->cmd.ready && fa) {
        n = 0;

        for (q = ngx_queue_head(users);
             q != ngx_queue_sentinel(users);
             q = ngx_queue_next(q))
        {
            user = ngx_queue_data(q, ngx_ws_relay_user_t, queue);
            fuzz_assert(fuzz_set_find(&fa->members, user->sn.str.data,
                                      user->sn.str.len));
            n++;
        }

        fuzz_assert(fa->members.n == n);
    }
}


static ngx_uint_t
fuzz_lenient(void)
{
    return fuzz_alloc_failed();
}


static ngx_uint_t
fuzz_is(redisReply *r, ngx_str_t *s)
{
    return (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS)
           && r->len == s->len
           && (s->len == 0 || ngx_memcmp(r->str, s->data, s->len) == 0);
}


static ngx_uint_t
fuzz_arg_is(redisReply *cmd, size_t i, const char *s)
{
    return cmd && i < cmd->elements
           && cmd->element[i]->type == REDIS_REPLY_STRING
           && cmd->element[i]->len == strlen(s)
           && strcasecmp(cmd->element[i]->str, s) == 0;
}


static ngx_uint_t
fuzz_str_eq(ngx_str_t *a, ngx_str_t *b)
{
    return a->len == b->len
           && (a->len == 0 || ngx_memcmp(a->data, b->data, a->len) == 0);
}


static void
fuzz_str_dup(ngx_str_t *dst, u_char *data, size_t len)
{
    dst->data = malloc(len ? len : 1);
    fuzz_assert(dst->data != NULL);

    if (len) {
        ngx_memcpy(dst->data, data, len);
    }

    dst->len = len;
}


/* sets and lists of byte strings */

static ngx_str_t *
fuzz_set_find(fuzz_set_t *s, u_char *data, size_t len)
{
    ngx_str_t   str;
    ngx_uint_t  i;

    str.data = data;
    str.len = len;

    for (i = 0; i < s->n; i++) {
        if (fuzz_str_eq(&s->items[i], &str)) {
            return &s->items[i];
        }
    }

    return NULL;
}


static void
fuzz_list_add(fuzz_set_t *s, u_char *data, size_t len)
{
    ngx_str_t  *items;

    if (s->n == s->size) {
        s->size = s->size ? 2 * s->size : 8;

        items = realloc(s->items, s->size * sizeof(ngx_str_t));
        fuzz_assert(items != NULL);

        s->items = items;
    }

    fuzz_str_dup(&s->items[s->n++], data, len);
}


static void
fuzz_set_add(fuzz_set_t *s, u_char *data, size_t len)
{
    if (fuzz_set_find(s, data, len) == NULL) {
        fuzz_list_add(s, data, len);
    }
}


static void
fuzz_set_remove(fuzz_set_t *s, u_char *data, size_t len)
{
    ngx_str_t  *item;

    item = fuzz_set_find(s, data, len);

    if (item) {
        free(item->data);
        *item = s->items[--s->n];
    }
}


static void
fuzz_set_clear(fuzz_set_t *s)
{
    ngx_uint_t  i;

    for (i = 0; i < s->n; i++) {
        free(s->items[i].data);
    }

    free(s->items);
    ngx_memzero(s, sizeof(fuzz_set_t));
}


/* what ngx_ws_relay_shm.c and the configuration parsing would provide */

void
ngx_ws_relay_shm_set_redis_error(ngx_log_t *log, const char *fmt, ...)
{
    u_char   *p, text[NGX_WS_RELAY_ERROR_LEN];
    va_list   args;

    va_start(args, fmt);
    p = ngx_vslprintf(text, text + NGX_WS_RELAY_ERROR_LEN - 1, fmt, args);
    va_end(args);

    *p = '\0';

    ngx_log_error(NGX_LOG_ERR, log, 0, "ws relay: %s", text);

    ngx_memcpy(ngx_ws_relay_slot->redis_error, text, p - text + 1);
    ngx_ws_relay_slot->redis_errors++;
}


ngx_int_t
ngx_parse_url(ngx_pool_t *pool, ngx_url_t *u)
{
    fuzz_assert(0 && "not reached");
    return NGX_ERROR;
}


ngx_int_t
ngx_parse_time(ngx_str_t *line, ngx_uint_t is_sec)
{
    fuzz_assert(0 && "not reached");
    return NGX_ERROR;
}


size_t
ngx_sock_ntop(struct sockaddr *sa, socklen_t socklen, u_char *text,
    size_t len, ngx_uint_t port)
{
    fuzz_assert(0 && "not reached");
    return 0;
}


void ngx_cdecl
ngx_conf_log_error(ngx_uint_t level, ngx_conf_t *cf, ngx_err_t err,
    const char *fmt, ...)
{
    fuzz_assert(0 && "not reached");
}
