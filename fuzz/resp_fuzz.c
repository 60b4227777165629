
/*
 * Copyright (C) ngx_ws_relay_module authors
 */


/*
 * libFuzzer target: the state machines on top of Redis: the links
 * (ngx_ws_relay_redis_link.c), the bus (ngx_ws_relay_bus.c) and presence
 * (ngx_ws_relay_presence.c), with the real router, registry and delivery
 * code and four connections.  The wire format itself is wire_fuzz's.
 *
 * hiredis's async API is a model here (hiredis 0.14's async.c: reply
 * callbacks in order, subscription callbacks by channel with their
 * pending counts, frees deferred while a callback runs, pending callbacks
 * run with no reply when a context goes); the replies are hiredis's own,
 * made by its reader from the input's bytes.  The bus and presence files
 * are included, for their state and their static callbacks.
 *
 * Input: a settings byte, then steps; a step is a selector byte and what
 * it takes.  A field is a length byte and that many bytes.
 *
 *   settings bit 0     a password (AUTH on both links)
 *   settings bit 1     db=3 (SELECT on the commands link)
 *   settings bit 2     a unix socket rather than host:port
 *   settings bits 3-4  the prefix: "ws_relay:", "", "p", "a:b:"
 *   settings bit 5     the n-th allocation fails, n = the next byte + 1
 *   settings bit 6     Redis answers at once: the links start ready
 *
 *   selector & 7  0    a RESP reply on the commands link
 *                 1    a RESP reply on the subscriber link
 *                 2    a push on the subscriber link: type (s >> 6)
 *                      ("message", "subscribe", "unsubscribe",
 *                      "message"), channel (s >> 3) & 7 (the node's,
 *                      alice's, bob's, carol's, zed's, another node's,
 *                      or a field), payload a field
 *                 3    an action a = (s >> 3) & 7, b = s >> 6:
 *                      0 a delivery to user b: alice, bob, carol, zed
 *                      1 a presence query (/api/redis-info)
 *                      2 time passes: 100 ms, 600 ms, 5 s, 30 s
 *                      3 link b & 1 connects
 *                      4 link b & 1 fails to connect, or is closed
 *                      5 b 0-2: the next connect fails (0: at once,
 *                        1: no memory, 2: nginx refuses the socket);
 *                        b 3: the next write fails
 *                      6 the worker exits (the input ends there)
 *                      7 the probe comes back: "ping:<seq>" on the node
 *                        channel, seq the last one sent (minus b)
 *                 4    connection (s >> 3) & 3 closes and opens again
 *                      as u = s >> 5: alice, bob, carol, zed (fixed by
 *                      ws_relay_user_id), none, a field; 6, 7: it sends
 *                      a register as carol or alice instead
 *                 5    "ack:<id>:<n>" on the node channel for delivery
 *                      (s >> 3) (of those published), n the next byte
 *                 6    "<origin> <id> <text>" on the channel of user
 *                      (s >> 3) & 3, from another node, or this one
 *                      (bit 5), id the next byte, text a field
 *                 7    Redis answers every command waiting, as it would
 *
 * Checked: memory (ASan, UBSan, LeakSanitizer; jansson's heap counted),
 * hiredis's rules (no command on a context that is going, only
 * (UN)SUBSCRIBE on a subscribed one, no context used after it went), and:
 *
 * - links: a link that is lost reconnects after its backoff (100 ms
 *   doubling to 5 s, with jitter); a ready link has a context; the
 *   statistics say "up" exactly when both links are ready; the probe's
 *   answer resets the backoffs;
 * - once the subscriber is ready, it is subscribed to the node channel
 *   and to the channel of every user of the registry, and no other; once
 *   the commands link is ready, the presence set holds exactly the
 *   registry's users;
 * - a push does what ngx_ws_relay_bus_wire.h says, and nothing else: an
 *   ack on the node channel acks its delivery; a message on a user's
 *   channel goes to that user's connections here and is acked to its
 *   origin's node channel with the count, or, from this node, acks
 *   itself; the node channel's confirmation makes the subscriber ready;
 * - a delivery's PUBLISH carries "<node> <id> <text>" with a fresh id;
 *   its reply reaches that delivery, as a count or -1; every delivery
 *   started ends exactly once, with its acks and connections counted,
 *   when its acks are in, its PUBLISH failed, or at its deadline;
 * - a presence query that was taken is answered exactly once: with the
 *   nodes of the ZRANGEBYSCORE reply, in order, each with the users of
 *   its SMEMBERS reply, or with NULL only when a reply was missing or
 *   not an array or a command could not be sent.
 *
 * Once an allocation failed, only memory and hiredis's rules are checked.
 */


#include "fuzz_ngx.h"
#include "fuzz_reader.h"
#include "ngx_ws_relay_bus_wire.h"
#include "ngx_ws_relay_redis_link.h"
#include "ngx_ws_relay_registry.h"
#include "ngx_ws_relay_router.h"


/* the delivery code, for its id counter: each input starts at id 1 */
#include "ngx_ws_relay_delivery.c"


/* what reaches the deliveries from the bus passes the harness first */

#define ngx_ws_relay_delivery_acked      fuzz_delivery_acked
#define ngx_ws_relay_delivery_published  fuzz_delivery_published
#define ngx_ws_relay_delivery_local      fuzz_delivery_local

static void fuzz_delivery_acked(uint64_t id, ngx_uint_t delivered);
static void fuzz_delivery_published(uint64_t id, ngx_int_t receivers);
static ngx_uint_t fuzz_delivery_local(ngx_str_t *user_id, ngx_str_t *text);

#include "ngx_ws_relay_bus.c"

#undef ngx_ws_relay_delivery_acked
#undef ngx_ws_relay_delivery_published
#undef ngx_ws_relay_delivery_local

#include "ngx_ws_relay_presence.c"


#define FUZZ_CONNS           4
#define FUZZ_EVENTS          16
#define FUZZ_NODES           64

#define FUZZ_PASSWORD        0x01
#define FUZZ_DB              0x02
#define FUZZ_UNIX            0x04
#define FUZZ_PREFIX_SHIFT    3
#define FUZZ_FAIL            0x20
#define FUZZ_READY           0x40

#define FUZZ_CONNECT_OK      3

#define fuzz_bus             ngx_ws_relay_bus


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


/* a set of byte strings (or a list) */
typedef struct {
    ngx_str_t             *items;
    ngx_uint_t             n;
    ngx_uint_t             size;
} fuzz_set_t;


/* a redisAsyncContext of the model, and what Redis has from it */
typedef struct fuzz_ac_s  fuzz_ac_t;

struct fuzz_ac_s {
    redisAsyncContext      ac;
    fuzz_ac_t             *next;
    fuzz_cb_t             *replies;
    fuzz_cb_t             *channels;
    fuzz_set_t             subscribed;
    fuzz_set_t             members;
};


/* a delivery the harness started */
typedef struct fuzz_dl_s  fuzz_dl_t;

struct fuzz_dl_s {
    fuzz_dl_t                *next;
    ngx_ws_relay_delivery_t  *d;
    /* 0: no PUBLISH went out */
    uint64_t                  id;
    ngx_uint_t                local;
    ngx_uint_t                acks;
    ngx_uint_t                acked;
    ngx_uint_t                ended;
};


/* a presence query, and what the replies to it said */
typedef struct fuzz_pr_s  fuzz_pr_t;

struct fuzz_pr_s {
    fuzz_pr_t             *next;
    ngx_uint_t             taken;
    ngx_uint_t             answered;
    /* a reply was missing or not an array, or a command was refused */
    ngx_uint_t             spoiled;
    /* more nodes than the harness keeps: the answer is not compared */
    ngx_uint_t             unchecked;
    fuzz_set_t             nodes;
    ngx_uint_t             asked;
    fuzz_set_t             users[FUZZ_NODES];
};


/* what the module did in a callback, or must have done */
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


typedef struct {
    ngx_uint_t             on;
    ngx_uint_t             n;
    fuzz_ev_t              ev[FUZZ_EVENTS];
} fuzz_log_t;


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

static void fuzz_setup(u_char settings);
static void fuzz_teardown(void);
static void fuzz_step(u_char s, const u_char **pos, const u_char *last,
    ngx_uint_t *stop);
static void fuzz_action(ngx_uint_t a, ngx_uint_t b, ngx_uint_t *stop);
static void fuzz_push(ngx_str_t *type, ngx_str_t *channel,
    ngx_str_t *payload);
static void fuzz_answer_all(void);
static void fuzz_reopen(ngx_uint_t i, ngx_uint_t u, ngx_str_t *field);
static void fuzz_field(const u_char **pos, const u_char *last, ngx_str_t *s);
static redisReply *fuzz_reply(const char *p, size_t len);

static fuzz_ac_t *fuzz_ac_live(const redisAsyncContext *ac);
static fuzz_ac_t *fuzz_link_ac(ngx_ws_relay_redis_link_t *link);
static redisAsyncContext *fuzz_connect(void);
static int fuzz_ac_command(fuzz_ac_t *fa, redisCallbackFn *fn,
    void *privdata, char *cmd, int len);
static void fuzz_ac_check_command(fuzz_ac_t *fa, redisReply *cmd,
    redisCallbackFn *fn, void *privdata);
static void fuzz_ac_connected(fuzz_ac_t *fa);
static void fuzz_ac_lost(fuzz_ac_t *fa, int err, const char *errstr);
static void fuzz_ac_free(fuzz_ac_t *fa);
static void fuzz_ac_dispatch(fuzz_ac_t *fa, redisReply *reply);
static void fuzz_ac_run(fuzz_ac_t *fa, fuzz_cb_t *cb, redisReply *reply);
static fuzz_cb_t *fuzz_cb_shift(fuzz_cb_t **list);
static void fuzz_cb_free(fuzz_cb_t *cb);

static void fuzz_expect_push(redisReply *reply, fuzz_log_t *expect);
static void fuzz_log_add(fuzz_log_t *log, fuzz_ev_e type, uint64_t id,
    int64_t n, ngx_str_t *a, ngx_str_t *b);
static void fuzz_log_reset(fuzz_log_t *log);

static void fuzz_delivery_start(ngx_uint_t b);
static void fuzz_delivered(ngx_ws_relay_delivery_t *d);
static fuzz_dl_t *fuzz_dl_find(uint64_t id);
static void fuzz_presence_done(ngx_array_t *nodes, void *data);
static void fuzz_presence_reply(fuzz_cb_t *cb, redisReply *reply);

static void fuzz_check_state(void);
static ngx_uint_t fuzz_lenient(void);
static ngx_uint_t fuzz_is(redisReply *r, ngx_str_t *s);
static ngx_uint_t fuzz_arg_is(redisReply *cmd, size_t i, const char *s);
static ngx_uint_t fuzz_str_eq(ngx_str_t *a, ngx_str_t *b);
static void fuzz_str_dup(ngx_str_t *dst, u_char *data, size_t len);
static void fuzz_str_arg(ngx_str_t *dst, redisReply *cmd, size_t i);
static ngx_str_t *fuzz_set_find(fuzz_set_t *s, ngx_str_t *str);
static void fuzz_set_add(fuzz_set_t *s, ngx_str_t *str, ngx_uint_t list);
static void fuzz_set_remove(fuzz_set_t *s, ngx_str_t *str);
static void fuzz_set_clear(fuzz_set_t *s);
static void fuzz_set_users(fuzz_set_t *s, ngx_str_t *prefix);


static ngx_str_t    fuzz_users[4] = {
    ngx_string("alice"), ngx_string("bob"), ngx_string("carol"),
    ngx_string("zed")
};

static ngx_str_t    fuzz_prefixes[4] = {
    ngx_string("ws_relay:"), ngx_string(""), ngx_string("p"),
    ngx_string("a:b:")
};

static ngx_str_t    fuzz_types[4] = {
    ngx_string("message"), ngx_string("subscribe"),
    ngx_string("unsubscribe"), ngx_string("message")
};

static ngx_str_t    fuzz_other_node = ngx_string("host-9-ffff");

static ngx_msec_t   fuzz_periods[4] = { 100, 600, 5000, 30000 };


static ngx_ws_relay_redis_endpoint_t   fuzz_endpoint;
static ngx_array_t                     fuzz_endpoints = {
    &fuzz_endpoint, 1, sizeof(ngx_ws_relay_redis_endpoint_t), 1, NULL
};

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

    ngx_memzero(&fuzz_endpoint, sizeof(fuzz_endpoint));

    if (settings & FUZZ_UNIX) {
        ngx_str_set(&fuzz_endpoint.unix_path, "/run/redis/redis.sock");

    } else {
        ngx_str_set(&fuzz_endpoint.host, "127.0.0.1");
        fuzz_endpoint.port = 6379;
    }

    ngx_str_null(&rcf->password);

    if (settings & FUZZ_PASSWORD) {
        ngx_str_set(&rcf->password, "secret");
    }

    rcf->endpoints = &fuzz_endpoints;
    rcf->db = (settings & FUZZ_DB) ? 3 : 0;
    rcf->prefix = fuzz_prefixes[(settings >> FUZZ_PREFIX_SHIFT) & 3];
    rcf->enabled = 1;

    fuzz_next_connect = FUZZ_CONNECT_OK;
    fuzz_attach_refuse = 0;
    fuzz_write_fails = 0;
    fuzz_exited = 0;
    fuzz_serial = 0;

    /* the ids in the input mean the same deliveries on every run */
    ngx_ws_relay_next_delivery = 0;
    fuzz_last_id = 0;

    fuzz_assert(ngx_ws_relay_bus_init_worker(&fuzz_cycle) == NGX_OK);

    for (i = 0; i < FUZZ_CONNS; i++) {
        fuzz_conns[i] = malloc(sizeof(fuzz_conn_t));
        fuzz_assert(fuzz_conns[i] != NULL);

        (void) fuzz_conn_open(fuzz_conns[i], i, ++fuzz_serial,
                              i < 3 ? &fuzz_users[i > 0] : NULL);
    }

    if (settings & FUZZ_READY) {
        fuzz_answer_all();
    }

    fuzz_check_state();
}


static void
fuzz_teardown(void)
{
    ngx_uint_t   i;
    fuzz_dl_t   *dl;
    fuzz_pr_t   *pr;

    if (!fuzz_exited) {
        ngx_ws_relay_bus_exit_worker();
    }

    /* every context went, and with it every callback waiting in it */
    fuzz_assert(fuzz_bus.cmd.ac == NULL && fuzz_bus.sub.ac == NULL);
    fuzz_assert(fuzz_acs == NULL);
    fuzz_assert(!fuzz_bus.cmd.reconnect.timer_set
                && !fuzz_bus.sub.reconnect.timer_set);

    /* the event loop stops; deliveries still waiting reach their deadline */
    fuzz_del_timer(&fuzz_bus.watchdog);
    fuzz_time_pass(fuzz_main_conf.redis.ack_timeout);

    for (i = 0; i < FUZZ_CONNS; i++) {
        fuzz_conn_close(fuzz_conns[i]);
        free(fuzz_conns[i]);
        fuzz_conns[i] = NULL;
    }

    fuzz_assert(ngx_ws_relay_registry_connections() == 0);
    fuzz_assert(ngx_queue_empty(ngx_ws_relay_registry_users()));

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

        /* every query taken was answered, once */
        fuzz_assert(pr->answered == pr->taken);

        fuzz_set_clear(&pr->nodes);

        for (i = 0; i < FUZZ_NODES; i++) {
            fuzz_set_clear(&pr->users[i]);
        }

        free(pr);
    }

    if (fuzz_bus.buf) {
        ngx_free(fuzz_bus.buf);
    }

    ngx_memzero(&fuzz_bus, sizeof(ngx_ws_relay_bus_t));
    ngx_memzero(&ngx_ws_relay_presence, sizeof(ngx_ws_relay_presence_t));

    fuzz_assert(fuzz_json_live() == 0);

    fuzz_ngx_reset();
}


static void
fuzz_step(u_char s, const u_char **pos, const u_char *last,
    ngx_uint_t *stop)
{
    u_char      *p, buf[64];
    ngx_str_t    channel, payload, field;
    ngx_uint_t   op, k;
    fuzz_ac_t   *fa;
    fuzz_dl_t   *dl;
    redisReply  *reply;
    redisReader *reader;

    op = s & 7;

    switch (op) {

    case 0:
    case 1:
        fa = fuzz_link_ac(op == 0 ? &fuzz_bus.cmd : &fuzz_bus.sub);

        reader = fuzz_reader_new(*pos, last - *pos);

        reply = NULL;

        if (redisReaderGetReply(reader, (void **) &reply) != REDIS_OK) {
            /* hiredis drops a link whose bytes it cannot parse */
            if (fa) {
                fuzz_ac_lost(fa, REDIS_ERR_PROTOCOL, "Protocol error");
            }

            *stop = 1;

        } else if (reply == NULL) {
            /* not a whole reply: hiredis waits for the rest */
            *stop = 1;

        } else {
            *pos = last - (reader->len - reader->pos);

            if (fa) {
                fuzz_ac_dispatch(fa, reply);

            } else {
                freeReplyObject(reply);
            }
        }

        redisReaderFree(reader);
        break;

    case 2:
        k = (s >> 3) & 7;
        fuzz_field(pos, last, &field);

        if (k == 0) {
            channel = fuzz_bus.node_channel;

        } else if (k <= 4 || k == 5) {
            p = ngx_snprintf(buf, sizeof(buf), "%V%s%V",
                             &fuzz_main_conf.redis.prefix,
                             k == 5 ? "n:" : "u:",
                             k == 5 ? &fuzz_other_node : &fuzz_users[k - 1]);
            channel.data = buf;
            channel.len = p - buf;

        } else {
            channel = field;
            fuzz_field(pos, last, &field);
        }

        fuzz_push(&fuzz_types[s >> 6], &channel, &field);
        break;

    case 3:
        fuzz_action((s >> 3) & 7, s >> 6, stop);
        break;

    case 4:
        fuzz_field(pos, last, &field);
        fuzz_reopen((s >> 3) & 3, s >> 5, &field);
        break;

    case 5:
        for (k = 0, dl = fuzz_dls; dl; dl = dl->next) {
            k += (dl->id != 0);
        }

        if (k == 0 || *pos == last) {
            break;
        }

        k = (s >> 3) % k;

        for (dl = fuzz_dls; dl; dl = dl->next) {
            if (dl->id && k-- == 0) {
                break;
            }
        }

        payload.data = buf;
        payload.len = ngx_ws_relay_wire_ack(buf, dl->id, *(*pos)++) - buf;

        fuzz_push(&fuzz_types[0], &fuzz_bus.node_channel, &payload);
        break;

    case 6:
        if (*pos == last) {
            break;
        }

        k = *(*pos)++;
        fuzz_field(pos, last, &field);

        payload.data = malloc(ngx_ws_relay_worker.node_id.len
                              + fuzz_other_node.len
                              + NGX_WS_RELAY_WIRE_HEAD_LEN + field.len);
        fuzz_assert(payload.data != NULL);

        p = ngx_cpymem(payload.data,
                       (s & 0x20) ? ngx_ws_relay_worker.node_id.data
                                  : fuzz_other_node.data,
                       (s & 0x20) ? ngx_ws_relay_worker.node_id.len
                                  : fuzz_other_node.len);
        p = ngx_ws_relay_wire_user_head(p, k);
        p = ngx_cpymem(p, field.data, field.len);
        payload.len = p - payload.data;

        p = ngx_snprintf(buf, sizeof(buf), "%Vu:%V",
                         &fuzz_main_conf.redis.prefix,
                         &fuzz_users[(s >> 3) & 3]);
        channel.data = buf;
        channel.len = p - buf;

        fuzz_push(&fuzz_types[0], &channel, &payload);
        free(payload.data);
        break;

    case 7:
        fuzz_answer_all();
        break;
    }
}


static void
fuzz_action(ngx_uint_t a, ngx_uint_t b, ngx_uint_t *stop)
{
    u_char      buf[NGX_WS_RELAY_WIRE_HEAD_LEN];
    fuzz_ac_t  *fa;
    fuzz_pr_t  *pr;
    ngx_str_t   ping;

    switch (a) {

    case 0:
        fuzz_delivery_start(b);
        break;

    case 1:
        pr = calloc(1, sizeof(fuzz_pr_t));
        fuzz_assert(pr != NULL);

        pr->next = fuzz_prs;
        fuzz_prs = pr;

        pr->taken = (ngx_ws_relay_presence_query(fuzz_presence_done, pr)
                     == NGX_OK);
        break;

    case 2:
        fuzz_time_pass(fuzz_periods[b]);
        break;

    case 3:
        fa = fuzz_link_ac(b & 1 ? &fuzz_bus.sub : &fuzz_bus.cmd);

        if (fa && !(fa->ac.c.flags & REDIS_CONNECTED)) {
            fuzz_ac_connected(fa);
        }

        break;

    case 4:
        fa = fuzz_link_ac(b & 1 ? &fuzz_bus.sub : &fuzz_bus.cmd);

        if (fa) {
            fuzz_ac_lost(fa, REDIS_ERR_EOF, "Server closed the connection");
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
        ngx_ws_relay_bus_exit_worker();
        fuzz_exited = 1;
        *stop = 1;
        break;

    case 7:
        ping.data = buf;
        ping.len = ngx_ws_relay_wire_ping(buf, fuzz_bus.ping_seq - b) - buf;

        fuzz_push(&fuzz_types[0], &fuzz_bus.node_channel, &ping);
        break;
    }
}


/* a push of Redis on the subscriber link, as it writes it */

static void
fuzz_push(ngx_str_t *type, ngx_str_t *channel, ngx_str_t *payload)
{
    u_char     *buf, *p;
    size_t      len;
    fuzz_ac_t  *fa;

    fa = fuzz_link_ac(&fuzz_bus.sub);

    if (fa == NULL) {
        return;
    }

    len = type->len + channel->len + payload->len + 3 * NGX_SIZE_T_LEN + 32;
    buf = malloc(len);
    fuzz_assert(buf != NULL);

    if (type->len == 7) {
        p = ngx_sprintf(buf, "*3\r\n$%uz\r\n%V\r\n$%uz\r\n%V\r\n$%uz\r\n%V\r\n",
                        type->len, type, channel->len, channel,
                        payload->len, payload);

    } else {
        p = ngx_sprintf(buf, "*3\r\n$%uz\r\n%V\r\n$%uz\r\n%V\r\n:%uz\r\n",
                        type->len, type, channel->len, channel, payload->len);
    }

    fuzz_ac_dispatch(fa, fuzz_reply((char *) buf, p - buf));

    free(buf);
}


/* Redis answers every command waiting, as it would */

static void
fuzz_answer_all(void)
{
    u_char       buf[256], *p;
    fuzz_ac_t   *fa;
    fuzz_cb_t   *ch;
    redisReply  *cmd;

    while ((fa = fuzz_link_ac(&fuzz_bus.cmd)) && fa->replies) {
        cmd = fa->replies->command;

        if (fuzz_arg_is(cmd, 0, "PING")) {
            p = ngx_sprintf(buf, "+PONG\r\n");

        } else if (fuzz_arg_is(cmd, 0, "AUTH")
                   || fuzz_arg_is(cmd, 0, "SELECT"))
        {
            p = ngx_sprintf(buf, "+OK\r\n");

        } else if (fuzz_arg_is(cmd, 0, "ZRANGEBYSCORE")) {
            p = ngx_sprintf(buf, "*2\r\n$%uz\r\n%V\r\n$%uz\r\n%V\r\n",
                            ngx_ws_relay_worker.node_id.len,
                            &ngx_ws_relay_worker.node_id,
                            fuzz_other_node.len, &fuzz_other_node);

        } else if (fuzz_arg_is(cmd, 0, "SMEMBERS")) {
            p = ngx_sprintf(buf, "*2\r\n$3\r\nbob\r\n$5\r\ncarol\r\n");

        } else {
            p = ngx_sprintf(buf, ":1\r\n");
        }

        fuzz_ac_dispatch(fa, fuzz_reply((char *) buf, p - buf));
    }

    while ((fa = fuzz_link_ac(&fuzz_bus.sub)) && fa->replies) {
        fuzz_ac_dispatch(fa, fuzz_reply("+OK\r\n", 5));
    }

    for ( ;; ) {
        fa = fuzz_link_ac(&fuzz_bus.sub);

        for (ch = fa ? fa->channels : NULL; ch; ch = ch->next) {
            if (ch->pending_subs > 0) {
                break;
            }
        }

        if (ch == NULL || ch->channel.len > 128) {
            return;
        }

        fuzz_push(&fuzz_types[1], &ch->channel, &ch->channel);
    }
}


/* connection i closes; a new one opens in its place */

static void
fuzz_reopen(ngx_uint_t i, ngx_uint_t u, ngx_str_t *field)
{
    u_char       buf[64], *p;
    fuzz_conn_t  *fc;

    fc = fuzz_conns[i];

    if (u >= 6) {
        p = ngx_snprintf(buf, sizeof(buf),
                         "{\"type\":\"register\",\"userId\":\"%V\"}",
                         &fuzz_users[u == 6 ? 2 : 0]);

        if (fc->close_code == 0) {
            ngx_ws_relay_router_message(&fc->wc, buf, p - buf);
        }

        return;
    }

    fuzz_conn_close(fc);

    (void) fuzz_conn_open(fc, i, ++fuzz_serial,
                          u < 4 ? &fuzz_users[u] : u == 5 ? field : NULL);
}


static void
fuzz_field(const u_char **pos, const u_char *last, ngx_str_t *s)
{
    size_t  n;

    n = (*pos < last) ? *(*pos)++ : 0;
    n = ngx_min(n, (size_t) (last - *pos));

    s->data = (u_char *) *pos;
    s->len = n;
    *pos += n;
}


/* a reply the harness writes: whole, and nothing after it */

static redisReply *
fuzz_reply(const char *p, size_t len)
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
fuzz_link_ac(ngx_ws_relay_redis_link_t *link)
{
    return link->ac ? fuzz_ac_live(link->ac) : NULL;
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

    fa = calloc(1, sizeof(fuzz_ac_t));
    fuzz_assert(fa != NULL);

    fa->ac.errstr = fa->ac.c.errstr;
    fa->next = fuzz_acs;
    fuzz_acs = fa;

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


redisAsyncContext *
redisAsyncConnect(const char *ip, int port)
{
    fuzz_assert(fuzz_endpoint.unix_path.len == 0);
    fuzz_assert(ip == (char *) fuzz_endpoint.host.data
                && port == fuzz_endpoint.port);

    return fuzz_connect();
}


redisAsyncContext *
redisAsyncConnectUnix(const char *path)
{
    fuzz_assert(path == (char *) fuzz_endpoint.unix_path.data);

    return fuzz_connect();
}


/* ngx_ws_relay_redis_adapter.c: the context on nginx's event loop */

ngx_int_t
ngx_ws_relay_redis_attach(redisAsyncContext *ac, ngx_log_t *log)
{
    (void) fuzz_ac_live(ac);

    fuzz_assert(log != NULL && ac->err == 0);

    if (fuzz_attach_refuse) {
        fuzz_attach_refuse = 0;
        return NGX_ERROR;
    }

    return NGX_OK;
}


int
redisAsyncSetConnectCallback(redisAsyncContext *ac, redisConnectCallback *fn)
{
    fuzz_assert(fuzz_ac_live(ac)->ac.onConnect == NULL);

    ac->onConnect = fn;

    return REDIS_OK;
}


int
redisAsyncSetDisconnectCallback(redisAsyncContext *ac,
    redisDisconnectCallback *fn)
{
    fuzz_assert(fuzz_ac_live(ac)->ac.onDisconnect == NULL);

    ac->onDisconnect = fn;

    return REDIS_OK;
}


int
redisvAsyncCommand(redisAsyncContext *ac, redisCallbackFn *fn,
    void *privdata, const char *format, va_list ap)
{
    int    len, rc;
    char  *cmd;

    len = redisvFormatCommand(&cmd, format, ap);
    fuzz_assert(len > 0);

    rc = fuzz_ac_command(fuzz_ac_live(ac), fn, privdata, cmd, len);
    free(cmd);

    return rc;
}


int
redisAsyncCommand(redisAsyncContext *ac, redisCallbackFn *fn,
    void *privdata, const char *format, ...)
{
    int      rc;
    va_list  ap;

    va_start(ap, format);
    rc = redisvAsyncCommand(ac, fn, privdata, format, ap);
    va_end(ap);

    return rc;
}


int
redisAsyncCommandArgv(redisAsyncContext *ac, redisCallbackFn *fn,
    void *privdata, int argc, const char **argv, const size_t *argvlen)
{
    int    len, rc;
    char  *cmd;

    len = redisFormatCommandArgv(&cmd, argc, argv, argvlen);
    fuzz_assert(len > 0);

    rc = fuzz_ac_command(fuzz_ac_live(ac), fn, privdata, cmd, len);
    free(cmd);

    return rc;
}


/* the module's own RESP: read like any other command */

int
redisAsyncFormattedCommand(redisAsyncContext *ac, redisCallbackFn *fn,
    void *privdata, const char *cmd, size_t len)
{
    return fuzz_ac_command(fuzz_ac_live(ac), fn, privdata, (char *) cmd,
                           (int) len);
}


/* __redisAsyncCommand() */

static int
fuzz_ac_command(fuzz_ac_t *fa, redisCallbackFn *fn, void *privdata,
    char *cmd, int len)
{
    size_t                          i;
    ngx_str_t                       channel;
    fuzz_cb_t                      *cb, **q;
    redisReply                     *command;
    ngx_ws_relay_presence_query_t  *pq;

    if (fa->ac.c.flags & (REDIS_DISCONNECTING|REDIS_FREEING)) {

        if (fn == ngx_ws_relay_presence_users_reply) {
            pq = privdata;
            ((fuzz_pr_t *) pq->data)->spoiled = 1;
        }

        return REDIS_ERR;
    }

    command = fuzz_reply(cmd, len);

    fuzz_assert(command->type == REDIS_REPLY_ARRAY && command->elements > 0);

    if (fuzz_arg_is(command, 0, "UNSUBSCRIBE")
        && !(fa->ac.c.flags & REDIS_SUBSCRIBED))
    {
        freeReplyObject(command);
        return REDIS_ERR;
    }

    /* sent: what Redis will make of it */
    fuzz_ac_check_command(fa, command, fn, privdata);

    if (fuzz_arg_is(command, 0, "SUBSCRIBE")) {
        fa->ac.c.flags |= REDIS_SUBSCRIBED;

        for (i = 1; i < command->elements; i++) {
            fuzz_str_arg(&channel, command, i);

            for (cb = fa->channels; cb; cb = cb->next) {
                if (fuzz_str_eq(&cb->channel, &channel)) {
                    break;
                }
            }

            if (cb == NULL) {
                cb = calloc(1, sizeof(fuzz_cb_t));
                fuzz_assert(cb != NULL);

                fuzz_str_dup(&cb->channel, channel.data, channel.len);
                cb->next = fa->channels;
                fa->channels = cb;
            }

            /* dictReplace(): the new callback, one more pending */
            cb->pending_subs++;
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

    /* hiredis would hand the reply to the wrong callback */
    fuzz_assert(!(fa->ac.c.flags & REDIS_SUBSCRIBED));

    cb = calloc(1, sizeof(fuzz_cb_t));
    fuzz_assert(cb != NULL);

    cb->fn = fn;
    cb->privdata = privdata;
    cb->command = command;

    for (q = &fa->replies; *q; q = &(*q)->next) {
        /* void */
    }

    *q = cb;

    return REDIS_OK;
}


/* a command is one the module means to send; Redis acts on it */

static void
fuzz_ac_check_command(fuzz_ac_t *fa, redisReply *cmd, redisCallbackFn *fn,
    void *privdata)
{
    uint64_t                    id;
    ngx_int_t                   rc;
    ngx_str_t                   arg, channel, name, payload, origin, text;
    ngx_uint_t                  i, n;
    ngx_ws_relay_redis_conf_t  *rcf;

    rcf = &fuzz_main_conf.redis;
    n = cmd->elements;

    for (i = 0; i < n; i++) {
        fuzz_assert(cmd->element[i]->type == REDIS_REPLY_STRING);
    }

    if (fuzz_arg_is(cmd, 0, "AUTH")) {
        fuzz_assert(n == 2 && fuzz_is(cmd->element[1], &rcf->password));
        return;
    }

    if (&fa->ac == fuzz_bus.sub.ac) {
        fuzz_assert(fuzz_arg_is(cmd, 0, "SUBSCRIBE")
                    || (fuzz_arg_is(cmd, 0, "UNSUBSCRIBE") && n == 2));

        for (i = 1; i < n; i++) {
            fuzz_str_arg(&arg, cmd, i);

            if (fuzz_arg_is(cmd, 0, "SUBSCRIBE")) {
                fuzz_set_add(&fa->subscribed, &arg, 0);

            } else {
                fuzz_set_remove(&fa->subscribed, &arg);
            }
        }

        return;
    }

    fuzz_assert(&fa->ac == fuzz_bus.cmd.ac);

    if (fuzz_arg_is(cmd, 0, "DEL") && n == 2
        && fuzz_is(cmd->element[1], &ngx_ws_relay_presence.users_key))
    {
        fuzz_set_clear(&fa->members);
        return;
    }

    if (fuzz_arg_is(cmd, 0, "SADD") || fuzz_arg_is(cmd, 0, "SREM")) {
        fuzz_assert(n >= 3
                    && fuzz_is(cmd->element[1],
                               &ngx_ws_relay_presence.users_key));

        for (i = 2; i < n; i++) {
            fuzz_str_arg(&arg, cmd, i);

            if (fuzz_arg_is(cmd, 0, "SADD")) {
                fuzz_set_add(&fa->members, &arg, 0);

            } else {
                fuzz_set_remove(&fa->members, &arg);
            }
        }

        return;
    }

    if (!fuzz_arg_is(cmd, 0, "PUBLISH")) {
        fuzz_assert(fuzz_arg_is(cmd, 0, "SELECT")
                    || fuzz_arg_is(cmd, 0, "PING")
                    || fuzz_arg_is(cmd, 0, "ZADD")
                    || fuzz_arg_is(cmd, 0, "PEXPIRE")
                    || fuzz_arg_is(cmd, 0, "ZREM")
                    || fuzz_arg_is(cmd, 0, "ZREMRANGEBYSCORE")
                    || fuzz_arg_is(cmd, 0, "ZRANGEBYSCORE")
                    || fuzz_arg_is(cmd, 0, "SMEMBERS"));
        return;
    }

    fuzz_assert(n == 3);

    fuzz_str_arg(&channel, cmd, 1);
    fuzz_str_arg(&payload, cmd, 2);

    if (fn == ngx_ws_relay_bus_published) {
        /* a delivery's, as it starts: "<node> <id> <text>", a fresh id */
        fuzz_assert(ngx_ws_relay_wire_channel_name(&channel, &rcf->prefix,
                                                   NGX_WS_RELAY_WIRE_USER,
                                                   &name)
                    == NGX_OK);
        fuzz_assert(ngx_ws_relay_wire_parse_user(&payload, &origin, &id,
                                                 &text)
                    == NGX_OK);
        fuzz_assert(fuzz_str_eq(&origin, &ngx_ws_relay_worker.node_id));
        fuzz_assert(id == (uintptr_t) privdata && id > fuzz_last_id);
        fuzz_assert(fuzz_starting != NULL && fuzz_starting->id == 0);
        fuzz_assert(fuzz_str_eq(&name, &fuzz_starting->d->user_id));

        fuzz_last_id = id;
        fuzz_starting->id = id;
        return;
    }

    /* an ack, or the probe on this node's own channel */

    rc = ngx_ws_relay_wire_channel_name(&channel, &rcf->prefix,
                                        NGX_WS_RELAY_WIRE_NODE, &name);
    fuzz_assert(rc == NGX_OK);

    if (fuzz_str_eq(&channel, &fuzz_bus.node_channel)
        && payload.len > 5 && ngx_memcmp(payload.data, "ping:", 5) == 0)
    {
        return;
    }

    if (fuzz_events.on) {
        fuzz_log_add(&fuzz_events, FUZZ_EV_PUBLISH_ACK, 0, 0, &channel,
                     &payload);
    }
}


/* redisAsyncHandleWrite(): the socket takes the commands, or fails */

void
redisAsyncHandleWrite(redisAsyncContext *ac)
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
        fuzz_ac_lost(fa, REDIS_ERR_IO, "Broken pipe");
    }
}


int
redisBufferWrite(redisContext *c, int *done)
{
    (void) fuzz_ac_live((redisAsyncContext *) c);

    *done = 1;

    return REDIS_OK;
}


void
redisAsyncFree(redisAsyncContext *ac)
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


/* the socket failed, connecting or later: __redisAsyncDisconnect() */

static void
fuzz_ac_lost(fuzz_ac_t *fa, int err, const char *errstr)
{
    fa->ac.c.err = err;
    fa->ac.err = err;
    ngx_cpystrn((u_char *) fa->ac.c.errstr, (u_char *) errstr,
                sizeof(fa->ac.c.errstr));

    if (!(fa->ac.c.flags & REDIS_CONNECTED) && fa->ac.onConnect) {
        fa->ac.onConnect(&fa->ac, REDIS_ERR);
    }

    fa->ac.c.flags |= REDIS_DISCONNECTING;

    fuzz_ac_free(fa);
}


/* __redisAsyncFree() */

static void
fuzz_ac_free(fuzz_ac_t *fa)
{
    fuzz_cb_t   *cb;
    fuzz_ac_t  **link;

    while ((cb = fuzz_cb_shift(&fa->replies))) {
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
        fa->ac.onDisconnect(&fa->ac,
                            ((fa->ac.c.flags & REDIS_FREEING)
                             || fa->ac.err == 0) ? REDIS_OK : REDIS_ERR);
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
    ngx_str_t     channel;
    fuzz_cb_t    *cb, *ch, **q, tmp;
    const char   *type;

    if (!(fa->ac.c.flags & REDIS_CONNECTED)) {
        /* bytes arrive only on a socket that connected */
        fuzz_ac_connected(fa);
    }

    cb = fuzz_cb_shift(&fa->replies);

    if (cb) {
        fuzz_ac_run(fa, cb, reply);
        fuzz_cb_free(cb);
        goto done;
    }

    if (reply->type == REDIS_REPLY_ERROR) {
        /* a spontaneous error: hiredis closes the link */
        freeReplyObject(reply);
        fuzz_ac_lost(fa, REDIS_ERR_OTHER, "spontaneous error");
        return;
    }

    /*
     * Replies hiredis would abort() on (an assert()): a reply with no
     * command waiting outside pub/sub mode, and in it an array that is
     * not [string, string, ...], or an unsubscribe without a count.  They
     * never reach the module.  A push for no channel has no callback.
     */

    if (!(fa->ac.c.flags & REDIS_SUBSCRIBED)
        || reply->type != REDIS_REPLY_ARRAY || reply->elements < 2
        || reply->element[0]->type != REDIS_REPLY_STRING
        || reply->element[1]->type != REDIS_REPLY_STRING
        || ngx_tolower(reply->element[0]->str[0]) == 'p')
    {
        goto done;
    }

    type = reply->element[0]->str;
    channel.data = (u_char *) reply->element[1]->str;
    channel.len = reply->element[1]->len;

    for (ch = fa->channels; ch; ch = ch->next) {
        if (fuzz_str_eq(&ch->channel, &channel)) {
            break;
        }
    }

    if (ch == NULL) {
        goto done;
    }

    if (strcasecmp(type, "unsubscribe") == 0
        && (reply->elements < 3
            || reply->element[2]->type != REDIS_REPLY_INTEGER))
    {
        goto done;
    }

    if (strcasecmp(type, "subscribe") == 0) {
        ch->pending_subs--;
    }

    tmp = *ch;
    tmp.next = NULL;
    tmp.channel.data = NULL;

    if (strcasecmp(type, "unsubscribe") == 0) {

        if (ch->pending_subs == 0) {
            for (q = &fa->channels; *q != ch; q = &(*q)->next) {
                /* void */
            }

            *q = ch->next;
            fuzz_cb_free(ch);
        }

        if (reply->element[2]->integer == 0 && fa->channels == NULL) {
            fa->ac.c.flags &= ~REDIS_SUBSCRIBED;
        }
    }

    fuzz_ac_run(fa, &tmp, reply);

done:

    freeReplyObject(reply);

    if (fa->ac.c.flags & REDIS_FREEING) {
        fuzz_ac_free(fa);
    }
}


/* __redisRunCallback(), and what the module must do with the reply */

static void
fuzz_ac_run(fuzz_ac_t *fa, fuzz_cb_t *cb, redisReply *reply)
{
    int64_t      v;
    fuzz_log_t   expect, outer;
    ngx_uint_t   i, check, lenient, was_ready, ping;

    if (cb->fn == NULL) {
        return;
    }

    lenient = fuzz_lenient();
    check = 0;
    was_ready = fuzz_bus.sub.ready;
    ping = fuzz_bus.ping_in_flight;

    ngx_memzero(&expect, sizeof(fuzz_log_t));

    if (cb->fn == ngx_ws_relay_bus_message && reply
        && &fa->ac == fuzz_bus.sub.ac)
    {
        check = 1;
        fuzz_expect_push(reply, &expect);

    } else if (cb->fn == ngx_ws_relay_bus_published) {
        check = 1;
        v = (reply == NULL || &fa->ac != fuzz_bus.cmd.ac
             || reply->type != REDIS_REPLY_INTEGER)
            ? -1 : (ngx_int_t) reply->integer;

        fuzz_log_add(&expect, FUZZ_EV_PUBLISHED, (uintptr_t) cb->privdata, v,
                     NULL, NULL);

    } else if (cb->fn == ngx_ws_relay_presence_nodes_reply
               || cb->fn == ngx_ws_relay_presence_users_reply)
    {
        fuzz_presence_reply(cb, reply);
    }

    /* a nested callback (a context freed in this one) logs apart */
    outer = fuzz_events;
    ngx_memzero(&fuzz_events, sizeof(fuzz_log_t));
    fuzz_events.on = 1;

    fa->ac.c.flags |= REDIS_IN_CALLBACK;
    cb->fn(&fa->ac, reply, cb->privdata);
    fa->ac.c.flags &= ~REDIS_IN_CALLBACK;

    fuzz_events.on = 0;

    if (check && !lenient && !fuzz_lenient()) {
        fuzz_assert(expect.n == fuzz_events.n);

        for (i = 0; i < expect.n; i++) {
            fuzz_assert(expect.ev[i].type == fuzz_events.ev[i].type
                        && expect.ev[i].id == fuzz_events.ev[i].id
                        && expect.ev[i].n == fuzz_events.ev[i].n
                        && fuzz_str_eq(&expect.ev[i].a, &fuzz_events.ev[i].a)
                        && fuzz_str_eq(&expect.ev[i].b,
                                       &fuzz_events.ev[i].b));
        }

        /* the node channel's confirmation makes the subscriber ready */
        if (cb->fn == ngx_ws_relay_bus_message && !was_ready) {
            fuzz_assert(fuzz_bus.sub.ready
                        == (reply->type == REDIS_REPLY_ARRAY
                            && reply->elements >= 3
                            && fuzz_is(reply->element[1],
                                       &fuzz_bus.node_channel)
                            && reply->element[0]->type == REDIS_REPLY_STRING
                            && reply->element[0]->len == 9
                            && ngx_memcmp(reply->element[0]->str,
                                          "subscribe", 9) == 0));
        }

        /* the probe's answer: the round trip works */
        if (ping && !fuzz_bus.ping_in_flight && fuzz_bus.sub.ac) {
            fuzz_assert(fuzz_bus.cmd.backoff == 0
                        && fuzz_bus.sub.backoff == 0);
        }
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
fuzz_cb_free(fuzz_cb_t *cb)
{
    if (cb->command) {
        freeReplyObject(cb->command);
    }

    free(cb->channel.data);
    free(cb);
}


/* what a push on the subscriber link must do: ngx_ws_relay_bus_wire.h */

static void
fuzz_expect_push(redisReply *reply, fuzz_log_t *expect)
{
    u_char                    *p, abuf[NGX_WS_RELAY_WIRE_HEAD_LEN];
    u_char                     cbuf[NGX_WS_RELAY_WIRE_HEAD_LEN + 512];
    uint64_t                   id;
    fuzz_ac_t                 *fa;
    ngx_str_t                  user, origin, text, channel, ack;
    ngx_uint_t                 i, n;
    ngx_ws_relay_user_t       *u;
    ngx_ws_relay_wire_node_t   m;
    ngx_ws_relay_wire_push_t   push;

    if (ngx_ws_relay_wire_parse_push(reply, &push) != NGX_OK
        || push.subscribed)
    {
        return;
    }

    if (fuzz_str_eq(&push.channel, &fuzz_bus.node_channel)) {
        if (ngx_ws_relay_wire_parse_node(&push.payload, &m) == NGX_OK
            && m.type == NGX_WS_RELAY_WIRE_ACK)
        {
            fuzz_log_add(expect, FUZZ_EV_ACKED, m.id,
                         (int64_t) (ngx_uint_t) m.count, NULL, NULL);
        }

        return;
    }

    if (ngx_ws_relay_wire_channel_name(&push.channel,
                                       &fuzz_main_conf.redis.prefix,
                                       NGX_WS_RELAY_WIRE_USER, &user)
        != NGX_OK
        || ngx_ws_relay_wire_parse_user(&push.payload, &origin, &id, &text)
           != NGX_OK)
    {
        return;
    }

    if (fuzz_str_eq(&origin, &ngx_ws_relay_worker.node_id)) {
        fuzz_log_add(expect, FUZZ_EV_ACKED, id, 0, NULL, NULL);
        return;
    }

    /* every connection of the user here takes it */

    n = 0;

    for (i = 0; i < FUZZ_CONNS; i++) {
        u = fuzz_conns[i]->wc.user;
        n += (u && fuzz_str_eq(&u->sn.str, &user));
    }

    fuzz_log_add(expect, FUZZ_EV_LOCAL, 0, n, &user, &text);

    fa = fuzz_link_ac(&fuzz_bus.cmd);

    if (fa == NULL || (fa->ac.c.flags & (REDIS_DISCONNECTING|REDIS_FREEING))
        || ngx_ws_relay_wire_channel_len(&fuzz_main_conf.redis.prefix,
                                         &origin)
           > sizeof(cbuf))
    {
        return;
    }

    channel.data = cbuf;
    channel.len = ngx_ws_relay_wire_channel(cbuf,
                                            &fuzz_main_conf.redis.prefix,
                                            NGX_WS_RELAY_WIRE_NODE, &origin)
                  - cbuf;

    p = ngx_sprintf(abuf, "ack:%uL:%ui", id, n);
    ack.data = abuf;
    ack.len = p - abuf;

    fuzz_log_add(expect, FUZZ_EV_PUBLISH_ACK, 0, 0, &channel, &ack);
}


static void
fuzz_log_add(fuzz_log_t *log, fuzz_ev_e type, uint64_t id, int64_t n,
    ngx_str_t *a, ngx_str_t *b)
{
    fuzz_ev_t  *ev;

    fuzz_assert(log->n < FUZZ_EVENTS);

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


/* the deliveries, as the bus reaches them */

static void
fuzz_delivery_acked(uint64_t id, ngx_uint_t delivered)
{
    fuzz_dl_t  *dl;

    if (fuzz_events.on) {
        fuzz_log_add(&fuzz_events, FUZZ_EV_ACKED, id, (int64_t) delivered,
                     NULL, NULL);
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
    for (dl = fuzz_dls; dl && dl->id != id; dl = dl->next) {
        /* void */
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


/* a delivery, as the router or the API starts one */

static void
fuzz_delivery_start(ngx_uint_t b)
{
    fuzz_dl_t                *dl;
    ngx_str_t                 text;
    ngx_uint_t                i;
    ngx_ws_relay_user_t      *u;
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
        u = fuzz_conns[i]->wc.user;
        dl->local += (u && fuzz_str_eq(&u->sn.str, &fuzz_users[b]));
    }

    ngx_str_set(&text, "{\"type\":\"notification\",\"sender\":\"system\"}");

    fuzz_starting = dl;
    ngx_ws_relay_delivery_start(d, &text);
    fuzz_starting = NULL;
}


static void
fuzz_delivered(ngx_ws_relay_delivery_t *d)
{
    fuzz_dl_t  *dl;

    dl = d->data;

    fuzz_assert(dl != NULL && dl->d == d && !dl->ended);
    fuzz_assert(d->done && !d->pending && !d->timer.timer_set);

    dl->ended = 1;

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


/* the replies to a presence query, as the model hands them out */

static void
fuzz_presence_reply(fuzz_cb_t *cb, redisReply *reply)
{
    u_char                         *p, buf[FUZZ_NODES + 600];
    size_t                          i;
    ngx_str_t                       key, s;
    fuzz_pr_t                      *pr;
    fuzz_set_t                     *set;
    ngx_ws_relay_presence_query_t  *pq;

    pq = cb->privdata;
    pr = pq->data;
    set = &pr->nodes;

    if (cb->fn == ngx_ws_relay_presence_users_reply) {
        /* SMEMBERS <prefix>node:<node>:users, the nodes in order */

        fuzz_assert(pr->asked < pr->nodes.n);

        fuzz_str_arg(&key, cb->command, 1);
        s = pr->nodes.items[pr->asked];

        if (s.len <= 512) {
            p = ngx_sprintf(buf, "%Vnode:%V:users",
                            &fuzz_main_conf.redis.prefix, &s);
            fuzz_assert(key.len == (size_t) (p - buf)
                        && ngx_memcmp(key.data, buf, key.len) == 0);
        }

        if (pr->asked >= FUZZ_NODES) {
            pr->unchecked = 1;
        }

        set = &pr->users[ngx_min(pr->asked, FUZZ_NODES - 1)];
        pr->asked++;
    }

    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY) {
        pr->spoiled = 1;
        return;
    }

    for (i = 0; i < reply->elements; i++) {
        if (reply->element[i]->type == REDIS_REPLY_STRING) {
            s.data = (u_char *) reply->element[i]->str;
            s.len = reply->element[i]->len;
            fuzz_set_add(set, &s, 1);
        }
    }
}


static void
fuzz_presence_done(ngx_array_t *nodes, void *data)
{
    fuzz_pr_t  *pr = data;

    ngx_str_t                     *users;
    ngx_uint_t                     i, k;
    ngx_ws_relay_presence_node_t  *node;

    fuzz_assert(pr->taken && !pr->answered);
    pr->answered = 1;

    if (fuzz_lenient() || pr->unchecked) {
        return;
    }

    if (nodes == NULL) {
        /* only when something went wrong on the way */
        fuzz_assert(pr->spoiled);
        return;
    }

    fuzz_assert(!pr->spoiled);
    fuzz_assert(nodes->nelts == pr->nodes.n && pr->asked == pr->nodes.n);

    node = nodes->elts;

    for (i = 0; i < nodes->nelts; i++) {
        fuzz_assert(fuzz_str_eq(&node[i].node, &pr->nodes.items[i]));
        fuzz_assert(node[i].users.nelts == pr->users[i].n);

        users = node[i].users.elts;

        for (k = 0; k < node[i].users.nelts; k++) {
            fuzz_assert(fuzz_str_eq(&users[k], &pr->users[i].items[k]));
        }
    }
}


ngx_int_t
fuzz_on_reply(fuzz_conn_t *fc, u_char *data, size_t len)
{
    /* the router's replies are router_fuzz's to check */
    return NGX_OK;
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
    fuzz_ac_t                  *fa;
    fuzz_set_t                  want;
    ngx_uint_t                  i;
    ngx_msec_t                  b;
    ngx_ws_relay_redis_link_t  *link;

    for (link = &fuzz_bus.cmd; link <= &fuzz_bus.sub; link++) {
        if (link->ac) {
            fa = fuzz_ac_live(link->ac);
            fuzz_assert(fa->ac.data == link);
            fuzz_assert(!(fa->ac.c.flags & REDIS_FREEING));
        }

        fuzz_assert(!link->ready || link->ac);

        /* lost: it comes back after its backoff, with jitter */
        fuzz_assert(link->ac || link->reconnect.timer_set || fuzz_exited);

        b = link->backoff;
        fuzz_assert(b == 0 || b == 5000 || (b >= 100 && b % 100 == 0
                                            && ((b / 100) & (b / 100 - 1))
                                               == 0));

        /* the backoff, or its maximum: the probe's answer resets it */
        if (link->reconnect.timer_set) {
            fuzz_assert(link->reconnect.timer.key - ngx_current_msec
                        <= ngx_max(b, 5000));
        }
    }

    if (fuzz_lenient() || fuzz_exited) {
        return;
    }

    fuzz_assert((fuzz_slot.redis_state == NGX_WS_RELAY_BUS_UP)
                == (fuzz_bus.cmd.ready && fuzz_bus.sub.ready));

    ngx_memzero(&want, sizeof(fuzz_set_t));

    fa = fuzz_link_ac(&fuzz_bus.sub);

    if (fuzz_bus.sub.ready && fa) {
        fuzz_set_users(&want, &fuzz_bus.user_prefix);
        fuzz_set_add(&want, &fuzz_bus.node_channel, 0);

        fuzz_assert(want.n == fa->subscribed.n);

        for (i = 0; i < want.n; i++) {
            fuzz_assert(fuzz_set_find(&fa->subscribed, &want.items[i]));
        }

        fuzz_set_clear(&want);
    }

    fa = fuzz_link_ac(&fuzz_bus.cmd);

    if (fuzz_bus.cmd.ready && fa) {
        fuzz_set_users(&want, NULL);

        fuzz_assert(want.n == fa->members.n);

        for (i = 0; i < want.n; i++) {
            fuzz_assert(fuzz_set_find(&fa->members, &want.items[i]));
        }

        fuzz_set_clear(&want);
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


static void
fuzz_str_arg(ngx_str_t *dst, redisReply *cmd, size_t i)
{
    dst->data = (u_char *) cmd->element[i]->str;
    dst->len = cmd->element[i]->len;
}


/* sets and lists of byte strings */

static ngx_str_t *
fuzz_set_find(fuzz_set_t *s, ngx_str_t *str)
{
    ngx_uint_t  i;

    for (i = 0; i < s->n; i++) {
        if (fuzz_str_eq(&s->items[i], str)) {
            return &s->items[i];
        }
    }

    return NULL;
}


static void
fuzz_set_add(fuzz_set_t *s, ngx_str_t *str, ngx_uint_t list)
{
    ngx_str_t  *items;

    if (!list && fuzz_set_find(s, str)) {
        return;
    }

    if (s->n == s->size) {
        s->size = s->size ? 2 * s->size : 8;

        items = realloc(s->items, s->size * sizeof(ngx_str_t));
        fuzz_assert(items != NULL);

        s->items = items;
    }

    fuzz_str_dup(&s->items[s->n++], str->data, str->len);
}


static void
fuzz_set_remove(fuzz_set_t *s, ngx_str_t *str)
{
    ngx_str_t  *item;

    item = fuzz_set_find(s, str);

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


/* the registry's users, each after prefix */

static void
fuzz_set_users(fuzz_set_t *s, ngx_str_t *prefix)
{
    u_char               *p;
    ngx_str_t             str;
    ngx_queue_t          *q, *users;
    ngx_ws_relay_user_t  *user;

    users = ngx_ws_relay_registry_users();

    for (q = ngx_queue_head(users);
         q != ngx_queue_sentinel(users);
         q = ngx_queue_next(q))
    {
        user = ngx_queue_data(q, ngx_ws_relay_user_t, queue);

        str.len = (prefix ? prefix->len : 0) + user->sn.str.len;
        str.data = malloc(str.len + 1);
        fuzz_assert(str.data != NULL);

        p = str.data;

        if (prefix) {
            p = ngx_cpymem(p, prefix->data, prefix->len);
        }

        ngx_memcpy(p, user->sn.str.data, user->sn.str.len);

        fuzz_set_add(s, &str, 0);
        free(str.data);
    }
}
