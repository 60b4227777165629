
/*
 * Copyright (C) ngx_ws_relay_module authors
 */


/*
 * libFuzzer target: the state machines on top of Redis, the links
 * (ngx_ws_relay_redis_link.c), the bus (ngx_ws_relay_bus.c), the history
 * (ngx_ws_relay_history.c: its script's calls and replies), presence
 * (ngx_ws_relay_presence.c), Sentinel (ngx_ws_relay_sentinel.c) and Redis
 * Cluster (ngx_ws_relay_cluster.c, and the bus's shards), with the real
 * router, registry and delivery code and four connections.  The wire
 * format is wire_fuzz's.
 *
 * hiredis's async API is a model here (hiredis 0.14's async.c: reply
 * callbacks in order, subscription callbacks by channel with pending
 * counts, frees deferred while a callback runs, pending callbacks run
 * with no reply when a context goes), and so are the calls of its
 * synchronous API on an async context that a raw link (a cluster's
 * subscriber) makes: redisAppendFormattedCommand(), redisBufferRead(),
 * redisGetReply(), and redisAsyncHandleRead() while it connects; replies
 * are hiredis's own, made by its reader from the input.  The bus,
 * history, presence, Sentinel, cluster and delivery files are included,
 * for their state and static callbacks.
 * What a client sends while its connection joins its user waits, as in
 * ngx_ws_relay_conn.c, until ngx_ws_relay_conn_read_on(), after the
 * step.
 *
 * Input: a settings byte, then steps: a selector byte and what it takes
 * (a field is a length byte and that many bytes).
 *
 *   settings bit 0     a password (AUTH on both links)
 *   settings bit 1     db=3 (SELECT on the commands link)
 *   settings bit 2     not host:port but what the byte after the
 *                      allocation's (if any) says: bit 0 clear, a unix
 *                      socket, or with bit 4 a Redis Cluster
 *                      (cluster=127.0.0.1:7000, with bit 5 and
 *                      127.0.0.2:7001; no db=); bit 0 set, the
 *                      master that sentinels name (sentinel=...
 *                      master=mymaster), with bit 1 a
 *                      sentinel_password, with bits 2-3 % 3 + 1 sentinels
 *   settings bits 3-4  the prefix: "ws_relay:", "", "p", "a:b:"
 *   settings bit 5     the n-th allocation fails, n = the next byte + 1
 *   settings bit 6     Redis answers at once: the links start ready
 *   settings bit 7     ws_relay_history (resume_unverified=on): the
 *                      script is loaded, the connections keep history,
 *                      action 7 stores its delivery
 *
 *   selector & 7  0, 1 a RESP reply on the commands, subscriber link
 *                      (the sentinels' with selector bit 3; in a
 *                      cluster, the cluster's link; else of the shard
 *                      the steps mean)
 *                 2    a push on the subscriber link: type s >> 6
 *                      ("message", "subscribe", "unsubscribe",
 *                      "message"; in a cluster "smessage",
 *                      "ssubscribe", "sunsubscribe", "message"), channel
 *                      (s >> 3) & 7 (the node's; alice's, bob's,
 *                      carol's, zed's; another node's; a field;
 *                      "+switch-master" on the sentinels' subscriber
 *                      link, or in a cluster the probe's of the shard
 *                      the steps mean), then the payload, a field; in a
 *                      cluster on the subscriber of the master that owns
 *                      the channel, if one does; a confirmation of a
 *                      channel the raw link has not subscribed is not
 *                      heard (hiredis drops such on the other links), an
 *                      end of one is Redis's own
 *                 3    an action (s >> 3) & 7 with b = s >> 6:
 *                      0 a delivery to user b (alice, bob, carol, zed)
 *                      1 a presence query (/api/redis-info)
 *                      2 time passes: 100 ms, 600 ms, 5 s, 30 s
 *                      3 link b & 1 (of the sentinels' with b & 2, or in
 *                        a cluster its link) connects
 *                      4 the same link fails to connect, or is closed
 *                      5 b 0-2: the next connect fails (at once, no
 *                        memory, nginx refuses the socket); 3: the next
 *                        write does
 *                      6 the worker exits (the input ends there)
 *                      7 a delivery to user b, kept in the user's
 *                        history (with settings bit 7; else as 0)
 *                 4    connection (s >> 3) & 3 opens again as s >> 5:
 *                      alice, bob, carol, zed (by ws_relay_user_id),
 *                      nobody, a field; 6, 7: it registers as carol,
 *                      alice instead, the field's digits and dashes its
 *                      "since" when it is not empty
 *                 5-7  Redis answers every command waiting, as Redis,
 *                      the history script and the sentinels would (the
 *                      master is 127.0.0.1:6379), and a cluster's node
 *                      (three masters, 127.0.0.1:7000 to 7002: CLUSTER
 *                      SLOTS is answered first; a raw subscriber's
 *                      commands are answered in order, an SSUBSCRIBE
 *                      of a channel whose slot another master of the
 *                      model's map owns with MOVED, of none's with
 *                      CLUSTERDOWN)
 *                 7    in a cluster: the links of the steps are the
 *                      shard's of the (s >> 3)-th master used (modulo
 *                      their number; none before the first map)
 *
 * Checked: memory (ASan, UBSan, LeakSanitizer, jansson's heap), hiredis's
 * rules (no command on a context that is going, only (UN)SUBSCRIBE once
 * subscribed, no context used after it went, a raw link's context used
 * only by the link, which reads every reply itself), and
 * - a lost link reconnects after its backoff (100 ms doubling to 5 s,
 *   jittered); a ready link has a context; a shard no master has, no
 *   link; the statistics say "up" when the links of every shard used are
 *   ready, and only then;
 * - a ready subscriber is subscribed to the node channel and the channel
 *   of every user of the registry, and no other; a ready commands link
 *   has put exactly the registry's users in the presence set; a user's
 *   channel is heard (user->subscribed) only while the ready subscriber
 *   (in a cluster, of the master of its slot) has it subscribed;
 * - in a cluster: only the nodes listed, and the masters of a slot map
 *   taken, are connected to; a CLUSTER SLOTS answer is taken as the
 *   model reads it (the ranges of masters with an address, a host of at
 *   most NGX_SOCKADDR_STRLEN bytes or the node asked's for none, at most
 *   64 masters, at least one slot owned) and the bus's map is then that
 *   map (a slot of no master is no shard's; of a master, that master's
 *   shard or none while old masters hold every shard, but not once the
 *   same map is taken again: as FUZZ_BUGS says, below), every shard used
 *   is a master of it and its links go there; every command about a key
 *   (the history script's stream, a PUBLISH's channel, presence's keys)
 *   and every subscription goes to the shard of the key's slot, and a
 *   raw subscriber's SSUBSCRIBE is of its probe or a user's channel;
 *   each shard's probe goes through its own channel, of a slot the shard
 *   owns (as FUZZ_BUGS says, below); a MOVED or ASK reply to a command
 *   is followed to a master the bus has ready (after ASKING for ASK),
 *   five times at most, else it reaches the command's callback; a ready
 *   raw subscriber has its probe subscribed (unless Redis ended that)
 *   and no channel but those of the registry's users its master owns;
 *   an error on it other than a redirection, a read that fails or bytes
 *   it cannot parse drop it; its probe's confirmation makes it ready;
 * - with sentinels: they are the only servers asked, with their
 *   password, for the master by its name (SENTINEL
 *   get-master-addr-by-name) and subscribed to "+switch-master"; the
 *   links of the bus go to the master they named last (an answer of two
 *   strings, or a switch of that master, with a host of 1 to
 *   NGX_SOCKADDR_STRLEN bytes and a port of 1 to 65535) and nowhere
 *   before they named one; another master has both links start anew, and
 *   counts as a failover after the first; the commands link asks ROLE
 *   first, and a server that is not a master has it dropped, and the
 *   subscriber link too, which asks ROLE before it subscribes;
 * - a READONLY error (a master demoted to a replica) has the link that
 *   got it dropped;
 * - a push does what ngx_ws_relay_bus_wire.h says and nothing else: an
 *   ack acks its delivery; a message on a user's channel goes to that
 *   user's connections and is acked to its origin with their count, or,
 *   from this node, acks itself; the node channel's confirmation makes
 *   the subscriber ready; the probe's answer resets the backoffs;
 * - a delivery's PUBLISH is "<node> <id> <text>" with a fresh id, and
 *   its reply reaches that delivery; one kept in the history is instead
 *   an EVALSHA of the script (its SHA1, the user's stream, meta and
 *   channel, the location's ttl, size and meta ttl, "<node> <id>:" and
 *   the text), whose reply { id, receivers } reaches that delivery, and
 *   any other reply (an error, NOSCRIPT, no reply, another shape) has the
 *   worker's own connections get the text at once, unless the
 *   publication came back first; every delivery ends exactly once, with
 *   acks and connections counted (a connection that resumes holds its
 *   copy, and counts), as soon as its acks are in, or when its PUBLISH or
 *   script fails, or at its deadline;
 * - a message kept in the history ("<origin> <id>:<hid> <JSON>") goes to
 *   the user's connections with "id":"<hid>" as its last member, and the
 *   worker's own acks itself, with no PUBLISH;
 * - a replay (EVALSHA "r") names the connection's user, the ttl, the
 *   page's size and bytes, and a since: the client's (or for a catch-up,
 *   the newest kept message the connection was sent, or with none the
 *   newest id the worker heard), then the last id of the page before
 *   (ngx_ws_relay_history_page(), which asks for the next only after a
 *   page {recovered, more, newest id, id, JSON, ...} of stream ids that
 *   says there is more); the script's "t" is asked for the newest id only
 *   by a connection that joins without a since when the worker knows
 *   none; NOSCRIPT loads the script again; the script's reply to a kept
 *   delivery keeps it only with a stream id;
 * - a presence query taken is answered exactly once: with the nodes of
 *   the ZRANGEBYSCORE reply in order, each with the users of its
 *   SMEMBERS reply (in a cluster from the master of its set, in any
 *   order), or NULL only when a reply was missing or not an array, or a
 *   node's SMEMBERS could not be sent.
 * Once an allocation failed, only memory and hiredis's rules are checked.
 * Bugs the target found, not fixed yet, steered clear of unless FUZZ_BUGS
 * names them (fuzz_ngx.h, known/README): later-data, the cluster's event
 * that asks for the map after the gap gets the cluster as its data (as
 * the bus's watchdog has the bus), so that the debug lines of nginx's
 * timers do not read a connection at NULL; full-shards, the shards of a
 * map taken again are not checked (a master new to a map while old ones
 * held every shard keeps none); tag-prefix, the probes' channels are not
 * checked when the prefix has a "{"; slotless-master, nor those of the
 * shards of masters that own no slot.
 */


#include "fuzz_ngx.h"
#include "fuzz_reader.h"
#include "ngx_ws_relay_bus_wire.h"
#include "ngx_ws_relay_redis_link.h"
#include "ngx_ws_relay_registry.h"
#include "ngx_ws_relay_router.h"

#include "ngx_ws_relay_delivery.c"
#include "ngx_ws_relay_bus.c"
#include "ngx_ws_relay_history.c"
#include "ngx_ws_relay_presence.c"
#include "ngx_ws_relay_sentinel.c"
#include "ngx_ws_relay_cluster.c"


#define FUZZ_CONNS           4
#define FUZZ_NODES           64

#define FUZZ_PASSWORD        0x01
#define FUZZ_DB              0x02
#define FUZZ_ENDPOINT        0x04
#define FUZZ_FAIL            0x20
#define FUZZ_READY           0x40
#define FUZZ_HISTORY         0x80

/* the endpoint byte */
#define FUZZ_EP_SENTINELS    0x01
#define FUZZ_EP_PASSWORD     0x02
#define FUZZ_EP_CLUSTER      0x10
#define FUZZ_EP_TWO_NODES    0x20

/* a cluster's nodes listed (cluster=...), and its masters followed */
#define FUZZ_CLUSTER_NODES   2
#define FUZZ_MASTERS         NGX_WS_RELAY_CLUSTER_MASTERS
#define FUZZ_NONE            0xff

#define FUZZ_SENTINELS       3

#define FUZZ_CONNECT_OK      3

#define fuzz_bus             ngx_ws_relay_bus
#define fuzz_presence        ngx_ws_relay_presence
#define fuzz_sentinel        ngx_ws_relay_sentinel
#define fuzz_cluster         ngx_ws_relay_cluster

/* the one shard of the plain and Sentinel forms */
#define fuzz_shard0          (&fuzz_bus.shards[0])


/* a callback hiredis holds: for a reply, or for a channel */
typedef struct fuzz_cb_s  fuzz_cb_t;

struct fuzz_cb_s {
    fuzz_cb_t                *next;
    redisCallbackFn          *fn;
    void                     *privdata;
    int                       pending_subs;
    redisReply               *command;
    ngx_str_t                 channel;
};


/* byte strings: a set, or a list */
typedef struct {
    ngx_str_t                *items;
    ngx_uint_t                n;
} fuzz_set_t;


/* a redisAsyncContext, and what Redis has from the commands sent on it */
typedef struct fuzz_ac_s  fuzz_ac_t;

struct fuzz_ac_s {
    redisAsyncContext         ac;
    fuzz_ac_t                *next;
    fuzz_cb_t                *replies;
    fuzz_cb_t                *channels;
    fuzz_set_t                subscribed;
    fuzz_set_t                members;
    /* where it connects to: the address as given */
    ngx_str_t                 host;
    int                       port;
    /*
     * a raw link's (it reads by itself): the reply it reads next, a read
     * or a parse that fails, and its commands that Redis is still to
     * answer, in order
     */
    redisReply               *raw_reply;
    ngx_uint_t                raw_eof;
    ngx_uint_t                raw_error;
    fuzz_cb_t                *raw_pending;
    /* the channels whose subscription Redis ended by itself */
    fuzz_set_t                ended;
};


/* a master of a cluster, as CLUSTER SLOTS names it */
typedef struct {
    u_char                    host[NGX_SOCKADDR_STRLEN + 1];
    size_t                    len;
    ngx_int_t                 port;
} fuzz_master_t;


/* a delivery, and what the model says of it */
typedef struct fuzz_dl_s  fuzz_dl_t;

struct fuzz_dl_s {
    fuzz_dl_t                *next;
    ngx_ws_relay_delivery_t  *d;
    uint64_t                  id;
    ngx_int_t                 expected;
    ngx_uint_t                acks;
    ngx_uint_t                delivered;
    ngx_uint_t                ended;
    /* the history script was asked to keep it */
    ngx_uint_t                script;
    /* its id came back, with the script's reply or the publication */
    ngx_uint_t                stored;
    /* the script failed: the worker's connections got it at once */
    ngx_uint_t                unstored;
};


typedef struct fuzz_pr_s  fuzz_pr_t;

struct fuzz_pr_s {
    fuzz_pr_t                *next;
    ngx_uint_t                taken;
    ngx_uint_t                answered;
    ngx_uint_t                spoiled;
    ngx_uint_t                unchecked;
    ngx_uint_t                asked;
    fuzz_set_t                nodes;
    fuzz_set_t                users[FUZZ_NODES];
    /* each node's SMEMBERS went */
    u_char                    sent[FUZZ_NODES];
};


/*
 * what the push being handled must do, or a failed script's reply: the
 * text for the user's live connections (those that resume hold it)
 */
typedef struct {
    ngx_uint_t                on;
    ngx_str_t                 user;
    ngx_str_t                 text;
    ngx_uint_t                local;
    ngx_str_t                 ack_channel;
    ngx_str_t                 ack;
    /* the text with its id, written here */
    u_char                   *with_id;
} fuzz_expect_t;


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

static void fuzz_setup(u_char settings, u_char endpoint);
static void fuzz_teardown(void);
static void fuzz_read_on(void);
static void fuzz_step(u_char s, const u_char **pos, const u_char *last,
    ngx_uint_t *stop);
static void fuzz_action(ngx_uint_t a, ngx_uint_t b, ngx_uint_t *stop);
static void fuzz_push(ngx_ws_relay_redis_link_t *link, ngx_uint_t type,
    ngx_str_t *channel, ngx_str_t *payload);
static void fuzz_answer_all(void);
static void fuzz_answer_cmd(ngx_ws_relay_redis_link_t *link);
static void fuzz_confirm(ngx_ws_relay_redis_link_t *link);
static void fuzz_confirm_raw(ngx_ws_relay_redis_link_t *link);
static void fuzz_raw_dispatch(fuzz_ac_t *fa, redisReply *reply);
static void fuzz_raw_heard(fuzz_ac_t *fa, redisReply *reply);
static ngx_ws_relay_bus_shard_t *fuzz_link_shard(
    ngx_ws_relay_redis_link_t *link);
static ngx_ws_relay_bus_shard_t *fuzz_shard_cur(void);
static ngx_ws_relay_bus_shard_t *fuzz_shard_of(ngx_str_t *channel);
static const char *fuzz_node_kind(ngx_str_t *node, u_char *buf);
static ngx_ws_relay_redis_link_t *fuzz_cluster_link(void);
static ngx_uint_t fuzz_follows(fuzz_ac_t *fa, ngx_ws_relay_bus_request_t *req,
    redisReply *reply, fuzz_ac_t **target, ngx_uint_t *ask);
static void fuzz_expect_map(redisReply *reply);
static ngx_uint_t fuzz_may_connect(const char *host, int port);
static void fuzz_named_add(u_char *host, size_t len, ngx_int_t port);
static ngx_uint_t fuzz_host_eq(u_char *a, size_t alen, u_char *b,
    size_t blen);
static void fuzz_check_cluster(void);
static void fuzz_check_link(ngx_ws_relay_redis_link_t *link);
static fuzz_master_t *fuzz_owner(ngx_str_t *key);
static fuzz_master_t *fuzz_link_master(ngx_ws_relay_redis_link_t *link);
static void fuzz_check_routed(ngx_ws_relay_redis_link_t *link,
    redisReply *cmd);
static void fuzz_field(const u_char **pos, const u_char *last, ngx_str_t *s);
static redisReply *fuzz_reply(u_char *p, size_t len);

static fuzz_ac_t *fuzz_ac_live(const redisAsyncContext *ac);
static fuzz_ac_t *fuzz_link_ac(ngx_ws_relay_redis_link_t *link);
static redisAsyncContext *fuzz_connect(const char *host, int port);
static int fuzz_ac_command(const redisAsyncContext *ac, redisCallbackFn *fn,
    void *privdata, char *cmd, int len);
static void fuzz_ac_sent(fuzz_ac_t *fa, redisReply *cmd, redisCallbackFn *fn,
    void *privdata);
static void fuzz_ac_lost(fuzz_ac_t *fa, int err, const char *errstr);
static void fuzz_ac_free(fuzz_ac_t *fa);
static void fuzz_ac_dispatch(fuzz_ac_t *fa, redisReply *reply);
static void fuzz_ac_run(fuzz_ac_t *fa, fuzz_cb_t *cb, redisReply *reply);
static void fuzz_cb_free(fuzz_cb_t *cb);

static void fuzz_expect_push(ngx_ws_relay_bus_shard_t *shard,
    redisReply *reply, fuzz_expect_t *e);
static void fuzz_expect_stored(fuzz_ac_t *fa, fuzz_cb_t *cb,
    redisReply *reply, fuzz_expect_t *e);
static void fuzz_expect_page(fuzz_cb_t *cb, redisReply *reply);
static ngx_ws_relay_redis_link_t *fuzz_readonly(fuzz_ac_t *fa, fuzz_cb_t *cb,
    redisReply *reply);
static void fuzz_expect_sentinel(redisReply *reply);
static void fuzz_expect_switch(redisReply *reply);
static void fuzz_master_named(ngx_str_t *host, ngx_str_t *port);
static ngx_uint_t fuzz_ac_to(fuzz_ac_t *fa, u_char *host, size_t len,
    ngx_int_t port);
static void fuzz_evalsha(redisReply *cmd, redisCallbackFn *fn,
    void *privdata);
static ngx_uint_t fuzz_local(ngx_str_t *user_id, size_t len,
    ngx_str_t *hid, ngx_uint_t *live);
static void fuzz_key_is(redisReply *cmd, size_t i, const char *kind,
    ngx_str_t *user);
static ngx_uint_t fuzz_id_digits(ngx_str_t *s, size_t max);
static ngx_uint_t fuzz_id_is(ngx_str_t *s);
static ngx_uint_t fuzz_id_ok(ngx_str_t *s);
static void fuzz_delivered(ngx_ws_relay_delivery_t *d);
static fuzz_dl_t *fuzz_dl_find(uint64_t id, ngx_uint_t ended);
static void fuzz_presence_reply(fuzz_cb_t *cb, redisReply *reply);
static void fuzz_presence_done(ngx_array_t *nodes, void *data);
static void fuzz_check_state(void);
static void fuzz_check_set(fuzz_set_t *set, ngx_str_t *prefix,
    const char *suffix);

static ngx_uint_t fuzz_is(redisReply *r, ngx_str_t *s);
static ngx_uint_t fuzz_arg_is(redisReply *cmd, const char *s);
static ngx_uint_t fuzz_arg_is_at(redisReply *cmd, size_t i, const char *s);
static ngx_uint_t fuzz_str_eq(ngx_str_t *a, ngx_str_t *b);
static ngx_uint_t fuzz_str_is(ngx_str_t *a, const char *s);
static void fuzz_str_dup(ngx_str_t *dst, ngx_str_t *src);
static ngx_str_t fuzz_arg(redisReply *cmd, size_t i);
static ngx_str_t *fuzz_set_find(fuzz_set_t *s, ngx_str_t *str);
static void fuzz_set_add(fuzz_set_t *s, ngx_str_t *str, ngx_uint_t list);
static void fuzz_set_remove(fuzz_set_t *s, ngx_str_t *str);
static void fuzz_set_clear(fuzz_set_t *s);


static ngx_str_t    fuzz_users[4] = {
    ngx_string("alice"), ngx_string("bob"), ngx_string("carol"),
    ngx_string("zed")
};

static ngx_str_t    fuzz_prefixes[4] = {
    ngx_string("ws_relay:"), ngx_string(""), ngx_string("p"),
    ngx_string("a:b:")
};

static const char  *fuzz_types[4] = {
    "message", "subscribe", "unsubscribe", "message"
};

/* in a cluster, sharded pub/sub's, but the last */
static const char  *fuzz_stypes[4] = {
    "smessage", "ssubscribe", "sunsubscribe", "message"
};

static ngx_str_t    fuzz_other_node = ngx_string("host-9-ffff");
static ngx_msec_t   fuzz_periods[4] = { 100, 600, 5000, 30000 };

static ngx_ws_relay_redis_endpoint_t   fuzz_endpoint;
static ngx_array_t                     fuzz_endpoints = {
    &fuzz_endpoint, 1, sizeof(ngx_ws_relay_redis_endpoint_t), 1, NULL
};

/*
 * with sentinels: theirs, and the master's address, unknown at first, in
 * a buffer of the size ws_relay_redis gives it
 */
static ngx_ws_relay_redis_endpoint_t   fuzz_sentinel_eps[FUZZ_SENTINELS];
static ngx_array_t                     fuzz_sentinels = {
    fuzz_sentinel_eps, 0, sizeof(ngx_ws_relay_redis_endpoint_t),
    FUZZ_SENTINELS, NULL
};
static u_char          fuzz_master_host[NGX_SOCKADDR_STRLEN + 1];
static ngx_uint_t      fuzz_sentinel_mode;

/* with cluster=...: the nodes listed, to ask for the slot map */
static ngx_ws_relay_redis_endpoint_t   fuzz_node_eps[FUZZ_CLUSTER_NODES];
static ngx_array_t                     fuzz_nodes = {
    fuzz_node_eps, 0, sizeof(ngx_ws_relay_redis_endpoint_t),
    FUZZ_CLUSTER_NODES, NULL
};
static ngx_uint_t      fuzz_cluster_mode;

/*
 * the slot map of the last CLUSTER SLOTS answer the worker took, as the
 * model reads it: the masters, and each slot's (FUZZ_NONE: no one's)
 */
static fuzz_master_t   fuzz_masters[FUZZ_MASTERS];
static ngx_uint_t      fuzz_nmasters;
/* the masters that own a slot of the map */
static u_char          fuzz_owns[FUZZ_MASTERS];
static u_char          fuzz_map[NGX_WS_RELAY_WIRE_SLOTS];
static ngx_uint_t      fuzz_map_known;
/* a map was answered: the bus's is compared with the model's, slot by slot */
static ngx_uint_t      fuzz_map_answered;
/* the map taken last is the same as the one before it */
static ngx_uint_t      fuzz_map_again;
/* the masters of every map taken: where the worker may connect */
static fuzz_master_t  *fuzz_named;
static ngx_uint_t      fuzz_nnamed;
/* the shard whose links the steps mean: the n-th one used */
static ngx_uint_t      fuzz_shard_n;

/* the master the sentinels named last, as the model has it; none: len 0 */
static u_char          fuzz_master[NGX_SOCKADDR_STRLEN + 1];
static size_t          fuzz_master_len;
static ngx_int_t       fuzz_master_port;
static ngx_uint_t      fuzz_failovers;

static fuzz_conn_t     *fuzz_conns[FUZZ_CONNS];
static ngx_uint_t       fuzz_serial;
static fuzz_ac_t       *fuzz_acs;
static ngx_uint_t       fuzz_next_connect;
static ngx_uint_t       fuzz_attach_refuse;
static ngx_uint_t       fuzz_write_fails;
static ngx_uint_t       fuzz_exited;
static fuzz_dl_t       *fuzz_dls;
static fuzz_dl_t       *fuzz_starting;
static fuzz_pr_t       *fuzz_prs;
static fuzz_expect_t    fuzz_expect;

/* ws_relay_history size=100 ttl=1d meta_ttl=7d resume_unverified=on */
static ngx_ws_relay_loc_conf_t  fuzz_loc;
static ngx_uint_t       fuzz_history;
/* the ids the script gives when every command is answered */
static ngx_uint_t       fuzz_script_ids;
/* the since of the replay a page may ask for next; none: len 0 */
static ngx_str_t        fuzz_next_since;
static ngx_uint_t       fuzz_in_page;
/* the page being handled may ask for the next one */
static ngx_uint_t       fuzz_page_next;


int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fuzz_ngx_init();

    /* the script's digest, as init_module computes it */
    ngx_ws_relay_history_init();

    fuzz_loc.history.size = 100;
    fuzz_loc.history.ttl = 86400000;
    fuzz_loc.history.meta_ttl = 7 * 86400000;
    fuzz_loc.history.unverified = 1;
    fuzz_loc.send_buffer = 2048;

    ngx_str_set(&fuzz_sentinel_eps[0].host, "127.0.0.1");
    fuzz_sentinel_eps[0].port = 26379;
    ngx_str_set(&fuzz_sentinel_eps[1].host, "127.0.0.2");
    fuzz_sentinel_eps[1].port = 26380;
    ngx_str_set(&fuzz_sentinel_eps[2].host, "127.0.0.3");
    fuzz_sentinel_eps[2].port = 26381;

    ngx_str_set(&fuzz_node_eps[0].host, "127.0.0.1");
    fuzz_node_eps[0].port = 7000;
    ngx_str_set(&fuzz_node_eps[1].host, "127.0.0.2");
    fuzz_node_eps[1].port = 7001;

    return 0;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    u_char         endpoint;
    ngx_uint_t     fail, stop;
    const u_char  *p, *last;

    if (size == 0) {
        return 0;
    }

    p = data + 1;
    last = data + size;
    fail = 0;
    endpoint = 0;

    if (data[0] & FUZZ_FAIL) {
        if (p == last) {
            return 0;
        }

        fail = *p++ + 1;
    }

    if (data[0] & FUZZ_ENDPOINT) {
        if (p == last) {
            return 0;
        }

        endpoint = *p++;
    }

    fuzz_setup(data[0], endpoint);
    fuzz_fail_alloc(fail);

    for (stop = 0; p < last && !stop; /* void */ ) {
        fuzz_step(*p++, &p, last, &stop);

        /* what waited while connections joined their users is read */
        fuzz_read_on();
        fuzz_check_state();
    }

    fuzz_teardown();

    return 0;
}


static void
fuzz_setup(u_char settings, u_char endpoint)
{
    ngx_uint_t                  i;
    ngx_ws_relay_redis_conf_t  *rcf;

    rcf = &fuzz_main_conf.redis;

    ngx_memzero(&fuzz_endpoint, sizeof(fuzz_endpoint));

    rcf->sentinels = NULL;
    rcf->cluster = 0;
    ngx_str_null(&rcf->master);
    ngx_str_null(&rcf->sentinel_password);

    fuzz_sentinel_mode = 0;
    fuzz_cluster_mode = 0;
    fuzz_map_known = 0;
    fuzz_map_answered = 1;
    fuzz_map_again = 0;
    fuzz_nmasters = 0;
    fuzz_nnamed = 0;
    fuzz_shard_n = 0;
    fuzz_master_len = 0;
    fuzz_master_port = 0;
    fuzz_failovers = 0;
    fuzz_slot.redis_failovers = 0;

    if ((settings & FUZZ_ENDPOINT) && (endpoint & FUZZ_EP_SENTINELS)) {
        /* sentinel=...: the master's address comes from them */
        fuzz_sentinel_mode = 1;

        ngx_memzero(fuzz_master_host, sizeof(fuzz_master_host));
        fuzz_endpoint.host.data = fuzz_master_host;

        fuzz_sentinels.nelts = ((endpoint >> 2) & 3) % FUZZ_SENTINELS + 1;
        rcf->sentinels = &fuzz_sentinels;
        ngx_str_set(&rcf->master, "mymaster");

        if (endpoint & FUZZ_EP_PASSWORD) {
            ngx_str_set(&rcf->sentinel_password, "sentinel-secret");
        }

    } else if ((settings & FUZZ_ENDPOINT) && (endpoint & FUZZ_EP_CLUSTER)) {
        /* cluster=...: the masters come with the slot map */
        fuzz_cluster_mode = 1;
        rcf->cluster = 1;
        fuzz_nodes.nelts = (endpoint & FUZZ_EP_TWO_NODES) ? 2 : 1;

    } else if (settings & FUZZ_ENDPOINT) {
        ngx_str_set(&fuzz_endpoint.unix_path, "/run/redis/redis.sock");

    } else {
        ngx_str_set(&fuzz_endpoint.host, "127.0.0.1");
        fuzz_endpoint.port = 6379;
    }

    ngx_str_null(&rcf->password);

    if (settings & FUZZ_PASSWORD) {
        ngx_str_set(&rcf->password, "secret");
    }

    rcf->endpoints = fuzz_cluster_mode ? &fuzz_nodes : &fuzz_endpoints;
    /* a cluster has no databases to select */
    rcf->db = ((settings & FUZZ_DB) && !fuzz_cluster_mode) ? 3 : 0;
    /* (none has a "{": refused with cluster=, its hash tag would put
     * every key and channel on one master) */
    rcf->prefix = fuzz_prefixes[(settings >> 3) & 3];
    rcf->enabled = 1;

    fuzz_next_connect = FUZZ_CONNECT_OK;
    fuzz_attach_refuse = 0;
    fuzz_write_fails = 0;
    fuzz_exited = 0;
    fuzz_serial = 0;
    fuzz_script_ids = 0;

    fuzz_history = (settings & FUZZ_HISTORY) ? 1 : 0;
    fuzz_main_conf.history = fuzz_history;
    fuzz_conn_conf = fuzz_history ? &fuzz_loc : NULL;

    /* ids and sequence numbers start anew: inputs replay alike */
    ngx_ws_relay_next_delivery = 0;

    fuzz_assert(ngx_ws_relay_bus_init_worker(&fuzz_cycle) == NGX_OK);

    /* alice, bob, bob, nobody */
    for (i = 0; i < FUZZ_CONNS; i++) {
        fuzz_conns[i] = malloc(sizeof(fuzz_conn_t));
        fuzz_assert(fuzz_conns[i] != NULL);

        (void) fuzz_conn_open(fuzz_conns[i], i, ++fuzz_serial,
                              i < 3 ? &fuzz_users[i > 0] : NULL);
    }

    if (settings & FUZZ_READY) {
        fuzz_answer_all();
    }

    fuzz_read_on();
    fuzz_check_state();
}


/* the read events ngx_ws_relay_conn_read_on() posted: what waited */

static void
fuzz_read_on(void)
{
    fuzz_conn_t  *fc;
    fuzz_wait_t  *w;

    while ((fc = fuzz_conn_posted())) {
        while ((w = fuzz_conn_unwait(fc))) {
            ngx_ws_relay_router_message(&fc->wc, w->data, w->len);
            free(w);
        }
    }
}


static void
fuzz_teardown(void)
{
    ngx_uint_t                  i;
    fuzz_dl_t                  *dl;
    fuzz_pr_t                  *pr;
    ngx_ws_relay_bus_shard_t   *shard;
    ngx_ws_relay_redis_link_t  *cl;

    if (!fuzz_exited) {
        ngx_ws_relay_bus_exit_worker();
    }

    /* every context went, and with it every callback waiting in it */
    for (i = 0; i < fuzz_bus.nshards; i++) {
        shard = &fuzz_bus.shards[i];

        fuzz_assert(shard->cmd.ac == NULL && shard->sub.ac == NULL);
        fuzz_assert(!shard->cmd.reconnect.timer_set
                    && !shard->sub.reconnect.timer_set);
    }

    fuzz_assert(fuzz_sentinel.cmd.ac == NULL && fuzz_sentinel.sub.ac == NULL);
    fuzz_assert(!fuzz_sentinel.cmd.reconnect.timer_set
                && !fuzz_sentinel.sub.reconnect.timer_set);

    cl = fuzz_cluster_link();

    if (cl) {
        fuzz_assert(cl->ac == NULL && !cl->reconnect.timer_set
                    && !fuzz_cluster->later.timer_set);
    }

    fuzz_assert(fuzz_acs == NULL);

    /* the event loop stops; deliveries still waiting reach their deadline */
    fuzz_del_timer(&fuzz_bus.watchdog);
    fuzz_time_pass(fuzz_main_conf.redis.ack_timeout);

    for (i = 0; i < FUZZ_CONNS; i++) {
        fuzz_conn_close(fuzz_conns[i]);
        free(fuzz_conns[i]);
    }

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

    ngx_free(fuzz_bus.buf);
    ngx_free(fuzz_bus.chan);
    ngx_memzero(&fuzz_bus, sizeof(ngx_ws_relay_bus_t));
    ngx_memzero(&fuzz_presence, sizeof(ngx_ws_relay_presence_t));
    ngx_memzero(&fuzz_sentinel, sizeof(ngx_ws_relay_sentinel_t));
    /* in the cycle's pool, which goes */
    fuzz_cluster = NULL;
    fuzz_main_conf.redis.sentinels = NULL;
    fuzz_main_conf.redis.cluster = 0;

    free(fuzz_named);
    fuzz_named = NULL;
    fuzz_nnamed = 0;

    fuzz_main_conf.history = 0;
    fuzz_conn_conf = NULL;

    fuzz_assert(fuzz_json_live() == 0);

    fuzz_ngx_reset();
}


static void
fuzz_step(u_char s, const u_char **pos, const u_char *last,
    ngx_uint_t *stop)
{
    u_char                      buf[128], *p;
    u_char                      kind[sizeof("n:{12345678}")];
    ngx_str_t                   channel, field;
    ngx_uint_t                  i, k;
    fuzz_ac_t                  *fa;
    fuzz_conn_t                *fc;
    redisReply                 *reply;
    redisReader                *reader;
    ngx_ws_relay_bus_shard_t   *shard, *owner;
    ngx_ws_relay_redis_link_t  *link;

    if (fuzz_cluster_mode && (s & 7) == 7) {
        /* the shard whose links the steps mean from now */
        fuzz_shard_n = s >> 3;
        return;
    }

    switch (s & 7) {

    case 0:
    case 1:
        if (s & 8) {
            link = fuzz_cluster_mode ? fuzz_cluster_link()
                   : (s & 7) ? &fuzz_sentinel.sub : &fuzz_sentinel.cmd;

        } else {
            shard = fuzz_shard_cur();
            link = shard ? ((s & 7) ? &shard->sub : &shard->cmd) : NULL;
        }

        fa = link ? fuzz_link_ac(link) : NULL;
        reader = fuzz_reader_new(*pos, last - *pos);
        reply = NULL;

        if (redisReaderGetReply(reader, (void **) &reply) != REDIS_OK) {
            /* hiredis drops a link whose bytes it cannot parse */
            if (fa && link->raw) {
                fa->raw_error = 1;
                fuzz_raw_dispatch(fa, NULL);

            } else if (fa) {
                fuzz_ac_lost(fa, REDIS_ERR_PROTOCOL, "Protocol error");
            }

        } else if (reply) {
            *pos = last - (reader->len - reader->pos);

            if (fa && link->raw) {
                fuzz_raw_heard(fa, reply);

            } else if (fa) {
                fuzz_ac_dispatch(fa, reply);

            } else {
                freeReplyObject(reply);
            }
        }

        /* the rest is not a whole reply: hiredis waits for more */
        *stop = (reply == NULL);

        redisReaderFree(reader);
        break;

    case 2:
        k = (s >> 3) & 7;
        fuzz_field(pos, last, &field);
        shard = fuzz_shard_cur();
        link = shard ? &shard->sub : NULL;

        if (k == 7 && fuzz_cluster_mode) {
            /* the probe of the shard the steps mean */
            ngx_str_null(&channel);

            if (shard) {
                channel = shard->probe;
            }

        } else if (k == 7) {
            /* a sentinel says the master switched */
            ngx_str_set(&channel, "+switch-master");
            link = &fuzz_sentinel.sub;

        } else if (k == 0) {
            channel = fuzz_bus.node_channel;

        } else if (k <= 5) {
            channel.data = buf;
            channel.len = ngx_snprintf(buf, sizeof(buf), "%V%s%V%s",
                                       &fuzz_main_conf.redis.prefix,
                                       k == 5 ? fuzz_node_kind(
                                                    &fuzz_other_node, kind)
                                              : "u:{",
                                       k == 5 ? &fuzz_other_node
                                              : &fuzz_users[k - 1],
                                       k == 5 ? "" : "}")
                          - buf;

        } else {
            channel = field;
            fuzz_field(pos, last, &field);
        }

        if (fuzz_cluster_mode && k != 7) {
            /* on the shard that owns the channel, as Redis sends it */
            owner = fuzz_shard_of(&channel);

            if (owner) {
                link = &owner->sub;
            }
        }

        if (link) {
            fuzz_push(link, s >> 6, &channel, &field);
        }

        break;

    case 3:
        fuzz_action((s >> 3) & 7, s >> 6, stop);
        break;

    case 4:
        fuzz_field(pos, last, &field);
        fc = fuzz_conns[(s >> 3) & 3];
        k = s >> 5;

        if (k >= 6) {
            p = ngx_snprintf(buf, sizeof(buf),
                             "{\"type\":\"register\",\"userId\":\"%V\"",
                             &fuzz_users[k == 6 ? 2 : 0]);

            if (field.len) {
                /* its digits and dashes, as a since */
                p = ngx_cpymem(p, ",\"since\":\"", 10);

                for (i = 0; i < field.len && i < 40; i++) {
                    if (isdigit(field.data[i]) || field.data[i] == '-') {
                        *p++ = field.data[i];
                    }
                }

                *p++ = '"';
            }

            *p++ = '}';

            /* unless it is closing, or joining its user: then it waits */
            if (fc->close_code == 0 && !fuzz_conn_waits(fc, buf, p - buf)) {
                ngx_ws_relay_router_message(&fc->wc, buf, p - buf);
            }

            break;
        }

        fuzz_conn_close(fc);
        (void) fuzz_conn_open(fc, fc->index, ++fuzz_serial,
                              k < 4 ? &fuzz_users[k] : k == 5 ? &field : NULL);
        break;

    default:
        fuzz_answer_all();
    }
}


static void
fuzz_action(ngx_uint_t a, ngx_uint_t b, ngx_uint_t *stop)
{
    ngx_str_t                   text;
    fuzz_ac_t                  *fa;
    fuzz_dl_t                  *dl;
    fuzz_pr_t                  *pr;
    ngx_ws_relay_delivery_t    *d;
    ngx_ws_relay_bus_shard_t   *shard;
    ngx_ws_relay_redis_link_t  *link;

    if (b & 2) {
        /* the sentinels' links, or the cluster's one */
        link = fuzz_cluster_mode ? fuzz_cluster_link()
               : (b & 1) ? &fuzz_sentinel.sub : &fuzz_sentinel.cmd;

    } else {
        shard = fuzz_shard_cur();
        link = shard ? ((b & 1) ? &shard->sub : &shard->cmd) : NULL;
    }

    fa = link ? fuzz_link_ac(link) : NULL;

    switch (a) {

    case 0:
    case 7:
        /* as the router or the API starts one */
        d = ngx_ws_relay_delivery_create(fuzz_delivered, NULL,
                                         &fuzz_users[b], &fuzz_log);
        if (d == NULL) {
            return;
        }

        if (a == 7 && fuzz_history) {
            d->history = &fuzz_loc.history;
        }

        dl = calloc(1, sizeof(fuzz_dl_t));
        fuzz_assert(dl != NULL);

        dl->next = fuzz_dls;
        fuzz_dls = dl;
        dl->d = d;
        dl->expected = -1;
        d->data = dl;

        ngx_str_set(&text, "{\"type\":\"notification\"}");

        /* what the worker's connections take, unless the script keeps it */
        dl->delivered = fuzz_local(&fuzz_users[b], text.len, NULL, NULL);

        fuzz_starting = dl;
        ngx_ws_relay_delivery_start(d, &text);
        fuzz_starting = NULL;
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
        if (fa && !(fa->ac.c.flags & REDIS_CONNECTED)) {
            fa->ac.c.flags |= REDIS_CONNECTED;
            fa->ac.onConnect(&fa->ac, REDIS_OK);
        }

        break;

    case 4:
        if (fa && link->raw && (fa->ac.c.flags & REDIS_CONNECTED)) {
            /* a raw link reads the end itself */
            fa->raw_eof = 1;
            fuzz_raw_dispatch(fa, NULL);

        } else if (fa) {
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

    default:
        ngx_ws_relay_bus_exit_worker();
        fuzz_exited = 1;
        *stop = 1;
    }
}


/*
 * The connections of a user that would take a text of len bytes now, as
 * ngx_ws_relay_delivery_local() gives it: one that resumes holds it if
 * its send buffer has room (else it closes), unless it is closing; one
 * that had a kept one (hid not after the newest id it was sent,
 * wc->last_id) takes it without a copy; the others get it (live), but
 * for those closing.
 */

static ngx_uint_t
fuzz_local(ngx_str_t *user_id, size_t len, ngx_str_t *hid, ngx_uint_t *live)
{
    ngx_str_t               last;

    ngx_uint_t              n, l;
    ngx_queue_t            *q;
    ngx_ws_relay_user_t    *u;
    ngx_ws_relay_conn_t    *wc;
    ngx_ws_relay_resume_t  *r;

    n = 0;
    l = 0;

    u = ngx_ws_relay_registry_find_user(user_id);

    for (q = u ? ngx_queue_head(&u->connections) : NULL;
         q && q != ngx_queue_sentinel(&u->connections);
         q = ngx_queue_next(q))
    {
        wc = ngx_queue_data(q, ngx_ws_relay_conn_t, user_queue);
        r = wc->resume;

        last.data = wc->last_id.data;
        last.len = wc->last_id.len;

        if (r == NULL && hid && last.len
            && ngx_ws_relay_wire_id_compare(hid, &last) <= 0)
        {
            /* the client has it */
            n++;
            continue;
        }

        if (wc->closing) {
            continue;
        }

        if (r == NULL) {
            l++;
            n++;

        } else if (r->held_bytes + len <= wc->conf->send_buffer) {
            n++;
        }
    }

    if (live) {
        *live = l;
    }

    return n;
}


/* a push on a subscriber link, as Redis writes it */

static void
fuzz_push(ngx_ws_relay_redis_link_t *link, ngx_uint_t type,
    ngx_str_t *channel, ngx_str_t *payload)
{
    u_char       *buf, *p;
    fuzz_ac_t    *fa;
    const char   *name;
    redisReply   *reply;

    fa = fuzz_link_ac(link);

    if (fa == NULL) {
        return;
    }

    /* a raw link's are of sharded pub/sub (a cluster's) */
    name = link->raw ? fuzz_stypes[type] : fuzz_types[type];

    buf = malloc(channel->len + payload->len + 3 * NGX_SIZE_T_LEN + 48);
    fuzz_assert(buf != NULL);

    p = ngx_sprintf(buf, "*3\r\n$%uz\r\n%s\r\n$%uz\r\n%V\r\n",
                    ngx_strlen(name), name, channel->len, channel);

    if (type % 3 == 0) {
        p = ngx_sprintf(p, "$%uz\r\n%V\r\n", payload->len, payload);

    } else {
        /* (un)subscribed: how many subscriptions are left */
        p = ngx_sprintf(p, ":%uz\r\n", payload->len);
    }

    reply = fuzz_reply(buf, p - buf);
    free(buf);

    if (link->raw) {
        fuzz_raw_heard(fa, reply);

    } else {
        fuzz_ac_dispatch(fa, reply);
    }
}


/*
 * What the input says a raw link hears, as Redis could send it: no
 * confirmation of a channel the link has not subscribed (hiredis drops
 * them on the other links, which have no callback for the channel); an
 * end of a subscription is Redis's own (a cluster moved the slot).
 */

static void
fuzz_raw_heard(fuzz_ac_t *fa, redisReply *reply)
{
    ngx_str_t  type, channel;

    if (reply->type == REDIS_REPLY_ARRAY && reply->elements >= 3
        && reply->element[0]->type == REDIS_REPLY_STRING
        && reply->element[1]->type == REDIS_REPLY_STRING)
    {
        type = fuzz_arg(reply, 0);
        channel = fuzz_arg(reply, 1);

        if ((fuzz_str_is(&type, "subscribe")
             || fuzz_str_is(&type, "ssubscribe"))
            && fuzz_set_find(&fa->subscribed, &channel) == NULL)
        {
            freeReplyObject(reply);
            return;
        }

        if ((fuzz_str_is(&type, "unsubscribe")
             || fuzz_str_is(&type, "sunsubscribe"))
            && fuzz_set_find(&fa->subscribed, &channel))
        {
            fuzz_set_remove(&fa->subscribed, &channel);
            fuzz_set_add(&fa->ended, &channel, 0);
        }
    }

    fuzz_raw_dispatch(fa, reply);
}


/*
 * Redis answers every command waiting, as it would, and so do the
 * sentinels, first: the master is 127.0.0.1:6379
 */

static void
fuzz_answer_all(void)
{
    u_char                      buf[512], *p;
    ngx_uint_t                  i, pass;
    fuzz_ac_t                  *fa;
    redisReply                 *cmd;
    ngx_ws_relay_redis_link_t  *cl;

    while ((fa = fuzz_link_ac(&fuzz_sentinel.cmd)) && fa->replies) {
        cmd = fa->replies->command;

        if (fuzz_arg_is(cmd, "SENTINEL")) {
            p = ngx_sprintf(buf, "*2\r\n$9\r\n127.0.0.1\r\n$4\r\n6379\r\n");

        } else {
            p = ngx_sprintf(buf, "+OK\r\n");
        }

        fuzz_ac_dispatch(fa, fuzz_reply(buf, p - buf));
    }

    fuzz_confirm(&fuzz_sentinel.sub);

    /* a cluster's node: three masters, on 127.0.0.1:7000 to 7002 */

    cl = fuzz_cluster_link();

    while (cl && (fa = fuzz_link_ac(cl)) && fa->replies) {
        cmd = fa->replies->command;

        if (fuzz_arg_is(cmd, "CLUSTER")) {
            p = ngx_sprintf(buf, "*3\r\n"
                            "*3\r\n:0\r\n:5460\r\n"
                            "*3\r\n$9\r\n127.0.0.1\r\n:7000\r\n$2\r\nm0\r\n"
                            "*4\r\n:5461\r\n:10922\r\n"
                            "*3\r\n$9\r\n127.0.0.1\r\n:7001\r\n$2\r\nm1\r\n"
                            "*3\r\n$9\r\n127.0.0.1\r\n:7004\r\n$2\r\nr1\r\n"
                            "*3\r\n:10923\r\n:16383\r\n"
                            "*3\r\n$9\r\n127.0.0.1\r\n:7002\r\n$2\r\nm2\r\n");

        } else {
            p = ngx_sprintf(buf, "+OK\r\n");
        }

        fuzz_ac_dispatch(fa, fuzz_reply(buf, p - buf));
    }

    /* each master's commands: an answer may have another one ask more */

    for (pass = 0; pass < 4; pass++) {
        for (i = 0; i < fuzz_bus.nshards; i++) {
            if (fuzz_bus.shards[i].used) {
                fuzz_answer_cmd(&fuzz_bus.shards[i].cmd);
            }
        }
    }

    for (i = 0; i < fuzz_bus.nshards; i++) {
        if (!fuzz_bus.shards[i].used) {
            continue;
        }

        if (fuzz_bus.shards[i].sub.raw) {
            fuzz_confirm_raw(&fuzz_bus.shards[i].sub);

        } else {
            fuzz_confirm(&fuzz_bus.shards[i].sub);
        }
    }
}


/* Redis answers every command waiting on a commands link, as it would */

static void
fuzz_answer_cmd(ngx_ws_relay_redis_link_t *link)
{
    u_char                      buf[128], *p, hid[NGX_INT64_LEN + 3];
    size_t                      n;
    ngx_str_t                   channel, head, json, payload;
    ngx_uint_t                  i;
    fuzz_ac_t                  *fa, *sfa;
    redisReply                 *cmd;
    ngx_ws_relay_redis_link_t  *sub;

    while ((fa = fuzz_link_ac(link)) && fa->replies) {
        cmd = fa->replies->command;

        /* the newest id of every user's history: the script's last */

        if (fuzz_script_ids) {
            n = ngx_sprintf(hid, "%uL-0", (uint64_t) 1733600000000
                                          + fuzz_script_ids)
                - hid;

        } else {
            n = ngx_sprintf(hid, "0-0") - hid;
        }

        if (fuzz_arg_is(cmd, "EVALSHA")
            && (fuzz_arg(cmd, 5).data[0] == 'p'
                || fuzz_arg(cmd, 5).data[0] == 's'))
        {
            /*
             * The script keeps the message, publishes it with its id and
             * answers { id, receivers }: this worker hears the channel or
             * not.
             */
            channel = fuzz_arg(cmd, 9);
            head = fuzz_arg(cmd, 10);
            json = fuzz_arg(cmd, 11);

            /* the id of the message, the newest from now */
            n = ngx_sprintf(hid, "%uL-0", (uint64_t) 1733600000000
                                          + ++fuzz_script_ids)
                - hid;

            /* the subscriber that has the channel, if one has */

            sub = NULL;

            for (i = 0; i < fuzz_bus.nshards; i++) {
                sfa = fuzz_link_ac(&fuzz_bus.shards[i].sub);

                if (sfa && fuzz_set_find(&sfa->subscribed, &channel)) {
                    sub = &fuzz_bus.shards[i].sub;
                    break;
                }
            }

            p = ngx_sprintf(buf, "*2\r\n$%uz\r\n%*s\r\n:%d\r\n", n, n, hid,
                            sub ? 1 : 0);

            payload.len = head.len + n + 1 + json.len;
            payload.data = malloc(payload.len);
            fuzz_assert(payload.data != NULL);

            ngx_memcpy(payload.data, head.data, head.len);
            ngx_memcpy(payload.data + head.len, hid, n);
            payload.data[head.len + n] = ' ';
            ngx_memcpy(payload.data + head.len + n + 1, json.data, json.len);

            if (sub) {
                fuzz_push(sub, 0, &channel, &payload);
            }

            free(payload.data);

            /* the context may have gone with the push */
            if (fuzz_link_ac(link) != fa || fa->replies == NULL
                || fa->replies->command != cmd)
            {
                continue;
            }

        } else if (fuzz_arg_is(cmd, "EVALSHA")
                   && fuzz_arg(cmd, 5).data[0] == 't')
        {
            /* the newest id */
            p = ngx_sprintf(buf, "$%uz\r\n%*s\r\n", n, n, hid);

        } else if (fuzz_arg_is(cmd, "EVALSHA")) {
            /* a replay: recovered, and nothing more after the newest */
            p = ngx_sprintf(buf, "*3\r\n:1\r\n:0\r\n$%uz\r\n%*s\r\n",
                            n, n, hid);

        } else if (fuzz_arg_is(cmd, "ROLE")) {
            p = ngx_sprintf(buf, "*3\r\n$6\r\nmaster\r\n:0\r\n*0\r\n");

        } else if (fuzz_arg_is(cmd, "SCRIPT")) {
            p = ngx_sprintf(buf, "$40\r\n%s\r\n", ngx_ws_relay_history_sha);

        } else if (fuzz_arg_is(cmd, "ZRANGEBYSCORE")) {
            p = ngx_sprintf(buf, "*2\r\n$%uz\r\n%V\r\n$%uz\r\n%V\r\n",
                            ngx_ws_relay_worker.node_id.len,
                            &ngx_ws_relay_worker.node_id,
                            fuzz_other_node.len, &fuzz_other_node);

        } else if (fuzz_arg_is(cmd, "SMEMBERS")) {
            p = ngx_sprintf(buf, "*2\r\n$3\r\nbob\r\n$5\r\ncarol\r\n");

        } else {
            p = ngx_sprintf(buf, (fuzz_arg_is(cmd, "PUBLISH")
                                  || fuzz_arg_is(cmd, "SPUBLISH"))
                                 ? ":1\r\n" : "+OK\r\n");
        }

        fuzz_ac_dispatch(fa, fuzz_reply(buf, p - buf));
    }
}


/* a subscriber link: its commands answered, its subscriptions confirmed */

static void
fuzz_confirm(ngx_ws_relay_redis_link_t *link)
{
    fuzz_ac_t  *fa;
    fuzz_cb_t  *ch;

    while ((fa = fuzz_link_ac(link)) && fa->replies) {
        if (fuzz_arg_is(fa->replies->command, "ROLE")) {
            fuzz_ac_dispatch(fa, fuzz_reply((u_char *)
                                 "*3\r\n$6\r\nmaster\r\n:0\r\n*0\r\n",
                                 24));

        } else {
            fuzz_ac_dispatch(fa, fuzz_reply((u_char *) "+OK\r\n", 5));
        }
    }

    for ( ;; ) {
        fa = fuzz_link_ac(link);

        for (ch = fa ? fa->channels : NULL; ch; ch = ch->next) {
            if (ch->pending_subs > 0) {
                break;
            }
        }

        if (ch == NULL) {
            return;
        }

        fuzz_push(link, 1, &ch->channel, &ch->channel);
    }
}


/* a raw link: what it wrote answered, in order, as a cluster's node would */

static void
fuzz_confirm_raw(ngx_ws_relay_redis_link_t *link)
{
    u_char         *buf, *p;
    const char     *type;
    fuzz_master_t  *owner;
    ngx_str_t    channel;
    fuzz_ac_t   *fa;
    fuzz_cb_t   *cb;
    redisReply  *cmd, *reply;

    while ((fa = fuzz_link_ac(link)) && fa->raw_pending) {
        cb = fa->raw_pending;
        fa->raw_pending = cb->next;
        cmd = cb->command;

        if (fuzz_arg_is(cmd, "SSUBSCRIBE")
            || fuzz_arg_is(cmd, "SUNSUBSCRIBE"))
        {
            channel = fuzz_arg(cmd, 1);
            type = fuzz_arg_is(cmd, "SSUBSCRIBE") ? "ssubscribe"
                                                  : "sunsubscribe";

            buf = malloc(channel.len + NGX_SOCKADDR_STRLEN + 64);
            fuzz_assert(buf != NULL);

            /* a node of the model's map takes only channels of its slots */
            owner = fuzz_owner(&channel);

            if (owner == NULL || owner == fuzz_link_master(link)) {
                p = ngx_sprintf(buf, "*3\r\n$%uz\r\n%s\r\n$%uz\r\n%V\r\n"
                                ":1\r\n", ngx_strlen(type), type, channel.len,
                                &channel);

            } else if (owner == (fuzz_master_t *) -1) {
                p = ngx_sprintf(buf, "-CLUSTERDOWN Hash slot not served\r\n");

            } else {
                p = ngx_sprintf(buf, "-MOVED %ui %*s:%i\r\n",
                                ngx_ws_relay_wire_slot(channel.data,
                                                       channel.len),
                                owner->len, owner->host, owner->port);
            }

            reply = fuzz_reply(buf, p - buf);
            free(buf);

        } else {
            reply = fuzz_reply((u_char *) "+OK\r\n", 5);
        }

        fuzz_cb_free(cb);
        fuzz_raw_dispatch(fa, reply);
    }
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


/* a reply or command the harness has written: whole, nothing after it */

static redisReply *
fuzz_reply(u_char *p, size_t len)
{
    void         *r;
    redisReader  *reader;

    reader = fuzz_reader_new(p, len);

    r = NULL;
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

    for (fa = fuzz_acs; fa && &fa->ac != ac; fa = fa->next) {
        /* void */
    }

    fuzz_assert(fa != NULL && "a redisAsyncContext used after it went");

    return fa;
}


static fuzz_ac_t *
fuzz_link_ac(ngx_ws_relay_redis_link_t *link)
{
    return link->ac ? fuzz_ac_live(link->ac) : NULL;
}


static redisAsyncContext *
fuzz_connect(const char *host, int port)
{
    ngx_str_t    s;
    ngx_uint_t   how;
    fuzz_ac_t   *fa;

    how = fuzz_next_connect;
    fuzz_next_connect = FUZZ_CONNECT_OK;

    if (how == 1) {
        return NULL;
    }

    fa = calloc(1, sizeof(fuzz_ac_t));
    fuzz_assert(fa != NULL);

    s.data = (u_char *) host;
    s.len = ngx_strlen(host);
    fuzz_str_dup(&fa->host, &s);
    fa->port = port;

    fa->ac.errstr = fa->ac.c.errstr;
    fa->next = fuzz_acs;
    fuzz_acs = fa;

    if (how == 0) {
        fa->ac.err = fa->ac.c.err = REDIS_ERR_IO;
        ngx_cpystrn((u_char *) fa->ac.c.errstr,
                    (u_char *) "Connection refused", sizeof(fa->ac.c.errstr));
    }

    fuzz_attach_refuse = (how == 2);

    return &fa->ac;
}


/* the master, or with sentinels one of them: nothing else */

redisAsyncContext *
redisAsyncConnect(const char *ip, int port)
{
    ngx_uint_t  i, ok;

    if (fuzz_cluster_mode) {
        /* a node listed, or a master of a slot map the worker took */
        fuzz_assert(fuzz_may_connect(ip, port));
        return fuzz_connect(ip, port);
    }

    ok = (ip == (char *) fuzz_endpoint.host.data
          && port == fuzz_endpoint.port);

    for (i = 0; fuzz_sentinel_mode && i < fuzz_sentinels.nelts; i++) {
        ok |= (ip == (char *) fuzz_sentinel_eps[i].host.data
               && port == fuzz_sentinel_eps[i].port);
    }

    fuzz_assert(ok);

    return fuzz_connect(ip, port);
}


redisAsyncContext *
redisAsyncConnectUnix(const char *path)
{
    fuzz_assert(path == (char *) fuzz_endpoint.unix_path.data);

    return fuzz_connect(path, 0);
}


/* ngx_ws_relay_redis_adapter.c: the context on nginx's event loop */

ngx_int_t
ngx_ws_relay_redis_attach(redisAsyncContext *ac, ngx_log_t *log)
{
    fuzz_assert(fuzz_ac_live(ac) && ac->err == 0 && log != NULL);

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

    rc = fuzz_ac_command(ac, fn, privdata, cmd, len);
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

    rc = fuzz_ac_command(ac, fn, privdata, cmd, len);
    free(cmd);

    return rc;
}


int
redisAsyncFormattedCommand(redisAsyncContext *ac, redisCallbackFn *fn,
    void *privdata, const char *cmd, size_t len)
{
    return fuzz_ac_command(ac, fn, privdata, (char *) cmd, (int) len);
}


/* __redisAsyncCommand(); the module's own RESP is read like the rest */

static int
fuzz_ac_command(const redisAsyncContext *ac, redisCallbackFn *fn,
    void *privdata, char *cmd, int len)
{
    size_t                          i;
    ngx_str_t                       channel;
    fuzz_ac_t                      *fa;
    fuzz_cb_t                      *cb, **q;
    redisReply                     *command;

    fa = fuzz_ac_live(ac);

    /* a raw link's replies go to its push(): none to a callback */
    fuzz_assert(!((ngx_ws_relay_redis_link_t *) fa->ac.data)->raw);

    if (fa->ac.c.flags & (REDIS_DISCONNECTING|REDIS_FREEING)) {
        return REDIS_ERR;
    }

    command = fuzz_reply((u_char *) cmd, len);

    fuzz_assert(command->type == REDIS_REPLY_ARRAY && command->elements > 0);

    if (fuzz_arg_is(command, "UNSUBSCRIBE")
        && !(fa->ac.c.flags & REDIS_SUBSCRIBED))
    {
        freeReplyObject(command);
        return REDIS_ERR;
    }

    fuzz_ac_sent(fa, command, fn, privdata);

    if (fuzz_arg_is(command, "SUBSCRIBE")) {
        fa->ac.c.flags |= REDIS_SUBSCRIBED;

        for (i = 1; i < command->elements; i++) {
            channel = fuzz_arg(command, i);

            for (cb = fa->channels; cb; cb = cb->next) {
                if (fuzz_str_eq(&cb->channel, &channel)) {
                    break;
                }
            }

            if (cb == NULL) {
                cb = calloc(1, sizeof(fuzz_cb_t));
                fuzz_assert(cb != NULL);

                fuzz_str_dup(&cb->channel, &channel);
                cb->next = fa->channels;
                fa->channels = cb;
            }

            /* dictReplace(): the new callback, one more pending */
            cb->pending_subs++;
            cb->fn = fn;
            cb->privdata = privdata;
        }
    }

    if (fuzz_arg_is(command, "SUBSCRIBE")
        || fuzz_arg_is(command, "UNSUBSCRIBE"))
    {
        /* confirmations go to each channel's callback */
        freeReplyObject(command);
        return REDIS_OK;
    }

    /* hiredis would give its reply to no callback, or the wrong one */
    fuzz_assert(!(fa->ac.c.flags & REDIS_SUBSCRIBED));

    cb = calloc(1, sizeof(fuzz_cb_t));
    fuzz_assert(cb != NULL);

    cb->fn = fn;
    cb->privdata = privdata;
    cb->command = command;

    for (q = &fa->replies; *q; q = &(*q)->next) { /* void */ }
    *q = cb;

    return REDIS_OK;
}


/* a command is one the module means to send; Redis acts on it */

static void
fuzz_ac_sent(fuzz_ac_t *fa, redisReply *cmd, redisCallbackFn *fn,
    void *privdata)
{
    uint64_t                        id;
    ngx_str_t                       arg, name, origin, text, hid;
    ngx_uint_t                      i, n;
    fuzz_pr_t                      *pr;
    fuzz_set_t                     *set;
    ngx_ws_relay_bus_shard_t       *shard;
    ngx_ws_relay_redis_link_t      *link;
    ngx_ws_relay_bus_request_t     *req;
    ngx_ws_relay_presence_ask_t    *ask;

    n = cmd->elements;
    link = fa->ac.data;

    for (i = 0; i < n; i++) {
        fuzz_assert(cmd->element[i]->type == REDIS_REPLY_STRING);
    }

    if (fuzz_arg_is(cmd, "AUTH")) {
        /* a sentinel's password is its own */
        fuzz_assert(n == 2
                    && fuzz_is(cmd->element[1],
                               link->sentinel
                               ? &fuzz_main_conf.redis.sentinel_password
                               : &fuzz_main_conf.redis.password));
        return;
    }

    if (link == &fuzz_sentinel.cmd) {
        /* the master, by its name */
        fuzz_assert(fuzz_sentinel_mode);
        fuzz_assert(n == 3 && fuzz_arg_is(cmd, "SENTINEL")
                    && fuzz_arg_is_at(cmd, 1, "get-master-addr-by-name")
                    && fuzz_is(cmd->element[2],
                               &fuzz_main_conf.redis.master));
        return;
    }

    if (link == &fuzz_sentinel.sub) {
        fuzz_assert(fuzz_sentinel_mode);
        fuzz_assert(n == 2 && fuzz_arg_is(cmd, "SUBSCRIBE")
                    && fuzz_arg_is_at(cmd, 1, "+switch-master"));
        return;
    }

    if (link == fuzz_cluster_link()) {
        /* a cluster's node: its slot map */
        fuzz_assert(fuzz_cluster_mode);
        fuzz_assert(n == 2 && fuzz_arg_is(cmd, "CLUSTER")
                    && fuzz_arg_is_at(cmd, 1, "SLOTS"));
        return;
    }

    shard = fuzz_link_shard(link);
    fuzz_assert(shard != NULL && shard->used && !link->raw);

    if (fn == ngx_ws_relay_bus_redirected) {
        /* a cluster's command about a key, kept to follow a redirection */
        fuzz_assert(fuzz_cluster_mode && link == &shard->cmd);

        req = privdata;

        if (req->redirects) {
            /* the command sent before, again, to the master named */
            return;
        }

        fn = req->fn;
        privdata = req->privdata;
    }

    if (fuzz_cluster_mode && link == &shard->cmd
        && fn != ngx_ws_relay_bus_probe_sent)
    {
        fuzz_check_routed(link, cmd);
    }

    if (link == &shard->sub && fuzz_arg_is(cmd, "ROLE")) {
        /* with sentinels: is it a master, before it subscribes? */
        fuzz_assert(fuzz_sentinel_mode && n == 1
                    && !(fa->ac.c.flags & REDIS_SUBSCRIBED));
        return;
    }

    if (link == &shard->sub) {
        fuzz_assert(fuzz_arg_is(cmd, "SUBSCRIBE")
                    || (fuzz_arg_is(cmd, "UNSUBSCRIBE") && n == 2));
        set = &fa->subscribed;
        i = 1;

    } else if (fuzz_arg_is(cmd, "SADD") || fuzz_arg_is(cmd, "SREM")) {
        fuzz_assert(n >= 3 && fuzz_is(cmd->element[1],
                                      &fuzz_presence.users_key));
        set = &fa->members;
        i = 2;

    } else if (fuzz_arg_is(cmd, "DEL")) {
        fuzz_assert(n == 2 && fuzz_is(cmd->element[1],
                                      &fuzz_presence.users_key));
        fuzz_set_clear(&fa->members);
        return;

    } else if (fuzz_arg_is(cmd, "SCRIPT")) {
        /* the history's script, loaded where the history is on */
        fuzz_assert(fuzz_history);
        fuzz_assert(n == 3 && fuzz_arg_is_at(cmd, 1, "LOAD")
                    && fuzz_is(cmd->element[2],
                               &ngx_ws_relay_history_script));
        return;

    } else if (fuzz_arg_is(cmd, "EVALSHA")) {
        fuzz_evalsha(cmd, fn, privdata);
        return;

    } else if (!fuzz_arg_is(cmd, "PUBLISH") && !fuzz_arg_is(cmd, "SPUBLISH"))
    {
        fuzz_assert(fuzz_arg_is(cmd, "SELECT") || fuzz_arg_is(cmd, "PING")
                    || (fuzz_arg_is(cmd, "ROLE") && fuzz_sentinel_mode)
                    || (fuzz_arg_is(cmd, "ASKING") && fuzz_cluster_mode)
                    || fuzz_arg_is(cmd, "ZADD") || fuzz_arg_is(cmd, "ZREM")
                    || fuzz_arg_is(cmd, "PEXPIRE")
                    || fuzz_arg_is(cmd, "ZREMRANGEBYSCORE")
                    || fuzz_arg_is(cmd, "ZRANGEBYSCORE")
                    || fuzz_arg_is(cmd, "SMEMBERS"));

        if (fn == ngx_ws_relay_presence_users_reply) {
            /* a node's users asked for */
            ask = privdata;
            pr = ask->pq->data;

            if (ask->index < FUZZ_NODES) {
                fuzz_assert(!pr->sent[ask->index]);
                pr->sent[ask->index] = 1;
            }
        }

        return;

    } else if (fn == ngx_ws_relay_bus_published) {
        /* sharded in a cluster */
        fuzz_assert(fuzz_arg_is(cmd, fuzz_cluster_mode ? "SPUBLISH"
                                                       : "PUBLISH"));

        /* a delivery's, as it starts: "<node> <id> <text>", a fresh id */
        arg = fuzz_arg(cmd, 1);
        fuzz_assert(ngx_ws_relay_wire_channel_name(&arg,
                                                   &fuzz_main_conf.redis.prefix,
                                                   NGX_WS_RELAY_WIRE_USER,
                                                   &name)
                    == NGX_OK);

        arg = fuzz_arg(cmd, 2);
        fuzz_assert(ngx_ws_relay_wire_parse_user(&arg, &origin, &id, &hid,
                                                 &text)
                    == NGX_OK);

        /* a plain PUBLISH: kept by no history, no id */
        fuzz_assert(hid.len == 0);
        fuzz_assert(fuzz_str_eq(&origin, &ngx_ws_relay_worker.node_id));
        fuzz_assert(fuzz_starting && fuzz_starting->id == 0
                    && fuzz_str_eq(&name, &fuzz_starting->d->user_id));
        fuzz_assert(id == (uintptr_t) privdata
                    && fuzz_dl_find(id, 1) == NULL);

        fuzz_starting->id = id;
        return;

    } else if (fn == ngx_ws_relay_bus_probe_sent) {
        /* the probe, through the shard's channel */
        fuzz_assert(fuzz_arg_is(cmd, fuzz_cluster_mode ? "SPUBLISH"
                                                       : "PUBLISH"));
        fuzz_assert(n == 3 && privdata == &shard->cmd);

        arg = fuzz_arg(cmd, 1);
        fuzz_assert(fuzz_str_eq(&arg, &shard->probe));

        /* of a slot of the shard's */
        if (fuzz_cluster_mode) {
            fuzz_assert(fuzz_shard_of(&arg) == shard);
        }

        arg = fuzz_arg(cmd, 2);
        fuzz_assert(arg.len > 5 && ngx_memcmp(arg.data, "ping:", 5) == 0);
        return;

    } else {
        fuzz_assert(fuzz_arg_is(cmd, fuzz_cluster_mode ? "SPUBLISH"
                                                       : "PUBLISH"));

        /* the ack that the push being handled owes */
        arg = fuzz_arg(cmd, 1);

        fuzz_assert(fuzz_expect.on && fuzz_expect.ack.len);
        fuzz_assert(fuzz_str_eq(&arg, &fuzz_expect.ack_channel));
        arg = fuzz_arg(cmd, 2);
        fuzz_assert(fuzz_str_eq(&arg, &fuzz_expect.ack));

        fuzz_expect.ack.len = 0;
        return;
    }

    for ( /* void */ ; i < n; i++) {
        arg = fuzz_arg(cmd, i);

        if (fuzz_arg_is(cmd, "SUBSCRIBE") || fuzz_arg_is(cmd, "SADD")) {
            fuzz_set_add(set, &arg, 0);

        } else {
            fuzz_set_remove(set, &arg);
        }
    }
}


/*
 * A cluster's command about a key (a channel for SPUBLISH, the stream for
 * the script) goes to the master of the key's slot, as the bus's map has
 * it (and the map is the model's)
 */

static void
fuzz_check_routed(ngx_ws_relay_redis_link_t *link, redisReply *cmd)
{
    ngx_str_t  key;

    if (fuzz_arg_is(cmd, "PING") || fuzz_arg_is(cmd, "SCRIPT")
        || fuzz_arg_is(cmd, "ASKING"))
    {
        return;
    }

    fuzz_assert(cmd->elements >= 2);

    key = fuzz_arg(cmd, fuzz_arg_is(cmd, "EVALSHA") ? 3 : 1);

    fuzz_assert(fuzz_shard_of(&key) == fuzz_link_shard(link));
}


/*
 * EVALSHA <sha> 2 <prefix>h:{<user>} <prefix>m:{<user>} and either
 * p <ttl> <size> <meta ttl> <prefix>u:{<user>} "<node> <id>:" <text>, a
 * delivery that starts ("s" instead of "p" in a cluster), r <ttl> <since>
 * 64 <bytes>, a replay, or t, the newest id
 */

static void
fuzz_evalsha(redisReply *cmd, redisCallbackFn *fn, void *privdata)
{
    u_char                  buf[NGX_WS_RELAY_WIRE_HEAD_LEN + 64], *p;
    ngx_str_t               s, sha, *user;
    ngx_uint_t              n;
    ngx_ws_relay_id_t      *last;
    ngx_ws_relay_resume_t  *r;
    ngx_ws_relay_history_conf_t  *h;

    n = cmd->elements;
    h = &fuzz_loc.history;

    sha.data = ngx_ws_relay_history_sha;
    sha.len = 40;

    fuzz_assert(n >= 6 && fuzz_is(cmd->element[1], &sha)
                && fuzz_arg_is_at(cmd, 2, "2"));

    if (fuzz_arg_is_at(cmd, 5, "t")) {
        /*
         * a connection that joins without a since, when the worker knows
         * nothing of its user's history
         */
        fuzz_assert(n == 6 && fn == ngx_ws_relay_history_top);
        fuzz_assert(!fuzz_in_page);

        r = privdata;
        fuzz_assert(r->wc != NULL && r->wc->resume == r && !r->replay
                    && !r->reading && r->wc->user->last_id.len == 0);

        user = &r->wc->user->sn.str;
        fuzz_key_is(cmd, 3, "h:{", user);
        fuzz_key_is(cmd, 4, "m:{", user);
        return;
    }

    fuzz_assert(n >= 7);

    s = fuzz_arg(cmd, 6);
    p = ngx_sprintf(buf, "%M", h->ttl);
    fuzz_assert(s.len == (size_t) (p - buf)
                && ngx_memcmp(s.data, buf, s.len) == 0);

    if (fuzz_arg_is_at(cmd, 5, fuzz_cluster_mode ? "s" : "p")) {
        /*
         * a delivery's, as it starts: its user, its id, its text; "s": the
         * script publishes with SPUBLISH (a cluster's)
         */
        fuzz_assert(n == 12 && fn == ngx_ws_relay_bus_stored);
        fuzz_assert(fuzz_starting && fuzz_starting->id == 0
                    && fuzz_starting->d->history);

        user = &fuzz_starting->d->user_id;
        fuzz_key_is(cmd, 3, "h:{", user);
        fuzz_key_is(cmd, 4, "m:{", user);
        fuzz_key_is(cmd, 9, "u:{", user);

        p = ngx_sprintf(buf, "%ui", h->size);
        s = fuzz_arg(cmd, 7);
        fuzz_assert(s.len == (size_t) (p - buf)
                    && ngx_memcmp(s.data, buf, s.len) == 0);

        p = ngx_sprintf(buf, "%M", h->meta_ttl);
        s = fuzz_arg(cmd, 8);
        fuzz_assert(s.len == (size_t) (p - buf)
                    && ngx_memcmp(s.data, buf, s.len) == 0);

        p = ngx_sprintf(buf, "%V %uL:", &ngx_ws_relay_worker.node_id,
                        (uint64_t) (uintptr_t) privdata);
        s = fuzz_arg(cmd, 10);
        fuzz_assert(s.len == (size_t) (p - buf)
                    && ngx_memcmp(s.data, buf, s.len) == 0);

        fuzz_assert(fuzz_dl_find((uintptr_t) privdata, 1) == NULL);

        fuzz_starting->id = (uintptr_t) privdata;
        fuzz_starting->script = 1;
        fuzz_starting->delivered = 0;
        return;
    }

    /* a page of replay for a connection of its user */

    fuzz_assert(fuzz_arg_is_at(cmd, 5, "r") && n == 10
                && fn == ngx_ws_relay_history_page);

    r = privdata;
    fuzz_assert(r->wc != NULL && r->wc->resume == r && r->replay
                && !r->reading);

    user = &r->wc->user->sn.str;
    fuzz_key_is(cmd, 3, "h:{", user);
    fuzz_key_is(cmd, 4, "m:{", user);

    s = fuzz_arg(cmd, 7);

    if (fuzz_in_page) {
        /* a page that says there is more: after its last id */
        fuzz_assert(fuzz_page_next);
        fuzz_assert(fuzz_str_eq(&s, &fuzz_next_since));

    } else if (r->handler == NULL) {
        /*
         * a catch-up: after the newest kept message the connection was
         * sent (wc->last_id, which a catch-up leaves as it is), or with
         * none yet after the newest id the worker heard (the connections
         * here may be replayed: resume_unverified=on)
         */
        last = r->wc->last_id.len ? &r->wc->last_id : &r->wc->user->last_id;
        fuzz_assert(last->len > 0 && s.len == last->len
                    && ngx_memcmp(s.data, last->data, s.len) == 0);

    } else {
        /* the client's, as ngx_ws_relay_wire_id_parse() wrote it */
        fuzz_assert(fuzz_id_is(&s));
    }

    fuzz_assert(fuzz_arg_is_at(cmd, 8, "64"));

    p = ngx_sprintf(buf, "%uz", ngx_min(r->wc->conf->send_buffer / 2,
                                        NGX_WS_RELAY_REPLAY_BYTES));
    s = fuzz_arg(cmd, 9);
    fuzz_assert(s.len == (size_t) (p - buf)
                && ngx_memcmp(s.data, buf, s.len) == 0);
}


/* argument i: <prefix><kind><user>} */

static void
fuzz_key_is(redisReply *cmd, size_t i, const char *kind, ngx_str_t *user)
{
    u_char     *p;
    ngx_str_t   s, *prefix;

    prefix = &fuzz_main_conf.redis.prefix;
    s = fuzz_arg(cmd, i);
    p = s.data;

    fuzz_assert(s.len == prefix->len + 3 + user->len + 1);
    fuzz_assert(ngx_memcmp(p, prefix->data, prefix->len) == 0);
    p += prefix->len;
    fuzz_assert(ngx_memcmp(p, kind, 3) == 0);
    p += 3;
    fuzz_assert(user->len == 0 || ngx_memcmp(p, user->data, user->len) == 0);
    fuzz_assert(p[user->len] == '}');
}


/* "<digits>-<digits>"; a stream id of Redis has 1 to 20 digits each */

static ngx_uint_t
fuzz_id_digits(ngx_str_t *s, size_t max)
{
    size_t      i, d[2];
    ngx_uint_t  part;

    part = 0;
    d[0] = 0;
    d[1] = 0;

    for (i = 0; i < s->len; i++) {
        if (s->data[i] >= '0' && s->data[i] <= '9') {
            d[part]++;

        } else if (s->data[i] == '-' && part == 0) {
            part = 1;

        } else {
            return 0;
        }
    }

    return part == 1 && d[0] >= 1 && d[0] <= max && d[1] >= 1 && d[1] <= max;
}


static ngx_uint_t
fuzz_id_ok(ngx_str_t *s)
{
    return fuzz_id_digits(s, 20);
}


static ngx_uint_t
fuzz_id_is(ngx_str_t *s)
{
    return fuzz_id_digits(s, (size_t) -1);
}


void
redisAsyncHandleWrite(redisAsyncContext *ac)
{
    fuzz_ac_t  *fa;

    fa = fuzz_ac_live(ac);

    if (!(fa->ac.c.flags & REDIS_CONNECTED)) {
        /* connecting: hiredis finds out how that went first */
        fa->ac.c.flags |= REDIS_CONNECTED;
        fa->ac.onConnect(&fa->ac, REDIS_OK);

    } else if (fuzz_write_fails) {
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


/* the socket failed, connecting or later: __redisAsyncDisconnect() */

static void
fuzz_ac_lost(fuzz_ac_t *fa, int err, const char *errstr)
{
    fa->ac.err = fa->ac.c.err = err;
    ngx_cpystrn((u_char *) fa->ac.c.errstr, (u_char *) errstr,
                sizeof(fa->ac.c.errstr));

    if (!(fa->ac.c.flags & REDIS_CONNECTED)) {
        fa->ac.onConnect(&fa->ac, REDIS_ERR);
    }

    fa->ac.c.flags |= REDIS_DISCONNECTING;

    fuzz_ac_free(fa);
}


/* __redisAsyncFree(): what waits gets no reply */

static void
fuzz_ac_free(fuzz_ac_t *fa)
{
    fuzz_cb_t   *cb;
    fuzz_ac_t  **q;

    while ((cb = fa->replies)) {
        fa->replies = cb->next;
        fuzz_ac_run(fa, cb, NULL);
        fuzz_cb_free(cb);
    }

    for (cb = fa->channels; cb; cb = cb->next) {
        fuzz_ac_run(fa, cb, NULL);
    }

    while ((cb = fa->channels)) {
        fa->channels = cb->next;
        fuzz_cb_free(cb);
    }

    if (fa->ac.c.flags & REDIS_CONNECTED) {
        fa->ac.onDisconnect(&fa->ac,
                            ((fa->ac.c.flags & REDIS_FREEING)
                             || fa->ac.err == 0) ? REDIS_OK : REDIS_ERR);
    }

    for (q = &fuzz_acs; *q != fa; q = &(*q)->next) { /* void */ }
    *q = fa->next;

    /* a raw link's: what it did not read, what Redis did not answer */

    if (fa->raw_reply) {
        freeReplyObject(fa->raw_reply);
    }

    while ((cb = fa->raw_pending)) {
        fa->raw_pending = cb->next;
        fuzz_cb_free(cb);
    }

    fuzz_set_clear(&fa->subscribed);
    fuzz_set_clear(&fa->members);
    fuzz_set_clear(&fa->ended);
    free(fa->host.data);

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

    /* bytes arrive only on a socket that connected */
    if (!(fa->ac.c.flags & REDIS_CONNECTED)) {
        fa->ac.c.flags |= REDIS_CONNECTED;
        fa->ac.onConnect(&fa->ac, REDIS_OK);
    }

    cb = fa->replies;

    if (cb) {
        fa->replies = cb->next;
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
     * What hiredis would assert() on never reaches the module: a reply
     * with no command waiting outside pub/sub mode, an array that is not
     * [string, string, ...], an unsubscribe without a count.  A push for
     * no channel of ours, or a pattern's, has no callback.
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
    channel = fuzz_arg(reply, 1);

    for (ch = fa->channels; ch && !fuzz_str_eq(&ch->channel, &channel);
         ch = ch->next)
    {
        /* void */
    }

    if (ch == NULL
        || (strcasecmp(type, "unsubscribe") == 0
            && (reply->elements < 3
                || reply->element[2]->type != REDIS_REPLY_INTEGER)))
    {
        goto done;
    }

    ch->pending_subs -= (strcasecmp(type, "subscribe") == 0);

    tmp = *ch;
    tmp.channel.data = NULL;

    if (strcasecmp(type, "unsubscribe") == 0) {

        if (ch->pending_subs == 0) {
            for (q = &fa->channels; *q != ch; q = &(*q)->next) { /* void */ }
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


/*
 * A raw link's read event (ngx_ws_relay_redis_adapter.c): the link reads
 * the reply itself (ngx_ws_relay_redis_link_read()), or a read that fails
 * (raw_eof) or bytes it cannot parse (raw_error) with none; and what the
 * module must do with it: a push as on the other links; AUTH's status
 * ignored; an error other than a redirection (a refused subscription)
 * drops the link.
 */

static void
fuzz_raw_dispatch(fuzz_ac_t *fa, redisReply *reply)
{
    ngx_str_t                      type;
    ngx_uint_t                     check, was_ready, ping, gone, drop, probe;
    fuzz_expect_t                  outer;
    ngx_ws_relay_bus_shard_t      *shard;
    ngx_ws_relay_redis_link_t     *link;
    ngx_ws_relay_wire_redirect_t   rd;

    link = fa->ac.data;
    shard = link->data;

    fuzz_assert(link->raw && link->ac == &fa->ac
                && shard == fuzz_link_shard(link));

    if (!(fa->ac.c.flags & REDIS_CONNECTED)) {
        /* the socket's first event: hiredis finds out how it connected */
        ngx_ws_relay_redis_link_read(link);
        fuzz_assert(link->ac == &fa->ac && (fa->ac.c.flags & REDIS_CONNECTED));
    }

    fuzz_assert(fa->raw_reply == NULL);
    fa->raw_reply = reply;

    check = !fuzz_alloc_failed();
    was_ready = link->ready;
    ping = shard->ping_in_flight;
    gone = fa->raw_eof || fa->raw_error;

    drop = reply && reply->type == REDIS_REPLY_ERROR
           && ngx_ws_relay_wire_redirect(reply, &rd) != NGX_OK;

    /* the probe's channel confirmed */
    probe = 0;

    if (reply && reply->type == REDIS_REPLY_ARRAY && reply->elements >= 3
        && reply->element[0]->type == REDIS_REPLY_STRING
        && fuzz_is(reply->element[1], &shard->probe))
    {
        type = fuzz_arg(reply, 0);
        probe = fuzz_str_is(&type, "subscribe")
                || fuzz_str_is(&type, "ssubscribe");
    }

    outer = fuzz_expect;
    ngx_memzero(&fuzz_expect, sizeof(fuzz_expect_t));

    if (reply && reply->type != REDIS_REPLY_ERROR
        && reply->type != REDIS_REPLY_STATUS)
    {
        fuzz_expect_push(shard, reply, &fuzz_expect);
    }

    ngx_ws_relay_redis_link_read(link);

    if (link->ac == &fa->ac) {
        /* it read everything there was */
        fuzz_assert(fa->raw_reply == NULL);
    }

    if (gone || drop) {
        fuzz_assert(link->ac != &fa->ac);
    }

    if (check && !fuzz_alloc_failed()) {

        if (fuzz_expect.on) {
            /* every connection of the user took it, and the ack went */
            fuzz_assert(fuzz_expect.local == 0 && fuzz_expect.ack.len == 0);
        }

        /* the probe's confirmation makes the subscriber ready */
        if (!was_ready && !gone) {
            fuzz_assert(link->ready == probe);
        }

        /* the probe came back: the round trip works */
        if (ping && !shard->ping_in_flight && link->ac == &fa->ac) {
            fuzz_assert(shard->cmd.backoff == 0 && shard->sub.backoff == 0);
        }
    }

    free(fuzz_expect.ack.data);
    free(fuzz_expect.ack_channel.data);
    free(fuzz_expect.with_id);
    fuzz_expect = outer;
}


/* hiredis's own, on the context of a raw link: only such a link uses them */

int
redisAppendFormattedCommand(redisContext *c, const char *cmd, size_t len)
{
    size_t                      i, n;
    ngx_str_t                   arg, name;
    fuzz_ac_t                  *fa;
    fuzz_cb_t                  *cb, **q;
    redisReply                 *command;
    ngx_ws_relay_bus_shard_t   *shard;
    ngx_ws_relay_redis_link_t  *link;

    fa = fuzz_ac_live((redisAsyncContext *) c);
    link = fa->ac.data;
    shard = link->data;

    fuzz_assert(link->raw && link->ac == &fa->ac
                && !(fa->ac.c.flags & REDIS_FREEING));

    command = fuzz_reply((u_char *) cmd, len);
    n = command->elements;

    fuzz_assert(command->type == REDIS_REPLY_ARRAY && n > 0);

    for (i = 0; i < n; i++) {
        fuzz_assert(command->element[i]->type == REDIS_REPLY_STRING);
    }

    if (fuzz_arg_is(command, "AUTH")) {
        fuzz_assert(n == 2 && fuzz_is(command->element[1],
                                      &fuzz_main_conf.redis.password));

    } else {
        /* its probe, or a user's channel that its master owns */
        fuzz_assert(n == 2 && (fuzz_arg_is(command, "SSUBSCRIBE")
                               || fuzz_arg_is(command, "SUNSUBSCRIBE")));

        arg = fuzz_arg(command, 1);

        fuzz_assert(fuzz_str_eq(&arg, &shard->probe)
                    || (ngx_ws_relay_wire_channel_name(&arg,
                                               &fuzz_main_conf.redis.prefix,
                                               NGX_WS_RELAY_WIRE_USER, &name)
                        == NGX_OK
                        && fuzz_shard_of(&arg) == shard));

        if (fuzz_arg_is(command, "SSUBSCRIBE")) {
            fuzz_assert(fuzz_str_eq(&arg, &shard->probe)
                        || ngx_ws_relay_registry_find_user(&name));

            fuzz_set_add(&fa->subscribed, &arg, 0);
            fuzz_set_remove(&fa->ended, &arg);

        } else {
            fuzz_set_remove(&fa->subscribed, &arg);
        }
    }

    cb = calloc(1, sizeof(fuzz_cb_t));
    fuzz_assert(cb != NULL);

    cb->command = command;

    for (q = &fa->raw_pending; *q; q = &(*q)->next) { /* void */ }
    *q = cb;

    return REDIS_OK;
}


int
redisBufferRead(redisContext *c)
{
    fuzz_ac_t  *fa;

    fa = fuzz_ac_live((redisAsyncContext *) c);
    fuzz_assert(((ngx_ws_relay_redis_link_t *) fa->ac.data)->raw);

    if (fa->raw_eof) {
        c->err = REDIS_ERR_EOF;
        ngx_cpystrn((u_char *) c->errstr,
                    (u_char *) "Server closed the connection",
                    sizeof(c->errstr));
        return REDIS_ERR;
    }

    return REDIS_OK;
}


int
redisGetReply(redisContext *c, void **reply)
{
    fuzz_ac_t  *fa;

    fa = fuzz_ac_live((redisAsyncContext *) c);
    fuzz_assert(((ngx_ws_relay_redis_link_t *) fa->ac.data)->raw);

    if (fa->raw_error) {
        c->err = REDIS_ERR_PROTOCOL;
        ngx_cpystrn((u_char *) c->errstr, (u_char *) "Protocol error",
                    sizeof(c->errstr));
        return REDIS_ERR;
    }

    *reply = fa->raw_reply;
    fa->raw_reply = NULL;

    return REDIS_OK;
}


/* ngx_ws_relay_redis_link_read() on a raw link still connecting */

void
redisAsyncHandleRead(redisAsyncContext *ac)
{
    fuzz_ac_t  *fa;

    fa = fuzz_ac_live(ac);

    fuzz_assert(((ngx_ws_relay_redis_link_t *) fa->ac.data)->raw
                && !(fa->ac.c.flags & REDIS_CONNECTED));

    fa->ac.c.flags |= REDIS_CONNECTED;
    fa->ac.onConnect(&fa->ac, REDIS_OK);
}


/* the shard whose link it is, or NULL */

static ngx_ws_relay_bus_shard_t *
fuzz_link_shard(ngx_ws_relay_redis_link_t *link)
{
    ngx_uint_t  i;

    for (i = 0; i < fuzz_bus.nshards; i++) {
        if (link == &fuzz_bus.shards[i].cmd
            || link == &fuzz_bus.shards[i].sub)
        {
            return &fuzz_bus.shards[i];
        }
    }

    return NULL;
}


/* the shard the steps mean: the one, or in a cluster the n-th used one */

static ngx_ws_relay_bus_shard_t *
fuzz_shard_cur(void)
{
    ngx_uint_t  i, n, used;

    if (fuzz_bus.shards == NULL) {
        return NULL;
    }

    if (!fuzz_cluster_mode) {
        return fuzz_shard0;
    }

    used = 0;

    for (i = 0; i < fuzz_bus.nshards; i++) {
        used += fuzz_bus.shards[i].used;
    }

    if (used == 0) {
        return NULL;
    }

    n = fuzz_shard_n % used;

    for (i = 0; i < fuzz_bus.nshards; i++) {
        if (fuzz_bus.shards[i].used && n-- == 0) {
            return &fuzz_bus.shards[i];
        }
    }

    return NULL;
}


/*
 * The shard a key or channel goes to: the one, or in a cluster the one of
 * its slot in the bus's map (which is checked against the model's), or
 * NULL: none owns the slot
 */

static ngx_ws_relay_bus_shard_t *
fuzz_shard_of(ngx_str_t *channel)
{
    ngx_uint_t  k;

    if (!fuzz_cluster_mode) {
        return fuzz_shard0;
    }

    k = fuzz_bus.map[ngx_ws_relay_wire_slot(channel->data, channel->len)];

    return (k == FUZZ_NONE) ? NULL : &fuzz_bus.shards[k];
}


/*
 * The kind of a node's channel: "n:", or in a cluster "n:{<8 hex digits
 * of ngx_crc32_short(node id)>}" (ngx_ws_relay_bus_wire.h)
 */

static const char *
fuzz_node_kind(ngx_str_t *node, u_char *buf)
{
    if (!fuzz_cluster_mode) {
        return NGX_WS_RELAY_WIRE_NODE;
    }

    ngx_sprintf(buf, "n:{%08xD}%Z", ngx_crc32_short(node->data, node->len));

    return (const char *) buf;
}


static ngx_ws_relay_redis_link_t *
fuzz_cluster_link(void)
{
    return fuzz_cluster ? &fuzz_cluster->link : NULL;
}


/* __redisRunCallback(), and what the module must do with the reply */

static void
fuzz_ac_run(fuzz_ac_t *fa, fuzz_cb_t *cb, redisReply *reply)
{
    ngx_uint_t                   check, was_ready, ping, demoted;
    ngx_uint_t                   sub_demoted, ask;
    fuzz_ac_t                   *to;
    fuzz_cb_t                    view, *last, *prev;
    fuzz_dl_t                   *dl;
    fuzz_expect_t                outer;
    redisCallbackFn             *fn;
    redisAsyncContext           *sub;
    ngx_ws_relay_bus_shard_t    *one;
    ngx_ws_relay_redis_link_t   *readonly, *link;
    ngx_ws_relay_bus_request_t  *req;

    if (cb->fn == NULL) {
        return;
    }

    link = fa->ac.data;

    /*
     * In a cluster a command's reply goes through the bus's redirection,
     * which follows MOVED and ASK to a master it has ready (the command
     * sent again, after ASKING for ASK, the map asked for again for
     * MOVED), up to five times; what it does not follow goes to the
     * command's own callback.
     */

    view = *cb;

    if (cb->fn == ngx_ws_relay_bus_redirected) {
        req = cb->privdata;

        if (fuzz_follows(fa, req, reply, &to, &ask)) {
            fa->ac.c.flags |= REDIS_IN_CALLBACK;
            cb->fn(&fa->ac, reply, cb->privdata);
            fa->ac.c.flags &= ~REDIS_IN_CALLBACK;

            if (to == NULL) {
                /*
                 * for a master not known yet (or whose link cannot take
                 * it): the command waits for the next map
                 */
                return;
            }

            prev = NULL;

            for (last = fuzz_ac_live(&to->ac)->replies; last && last->next;
                 last = last->next)
            {
                prev = last;
            }

            fuzz_assert(last && last->fn == ngx_ws_relay_bus_redirected
                        && last->privdata == req);
            fuzz_assert(!ask
                        || (prev && fuzz_arg_is(prev->command, "ASKING")));
            return;
        }

        view.fn = req->fn;
        view.privdata = req->privdata;
    }

    fn = view.fn;

    /* the plain and Sentinel forms' one shard */
    one = fuzz_shard0;

    check = !fuzz_alloc_failed();
    was_ready = one->sub.ready;
    ping = one->ping_in_flight;
    sub = one->sub.ac;

    /* a READONLY error: the link that got it is dropped */
    readonly = fuzz_readonly(fa, &view, reply);

    /* what the sentinels named is not a master: neither link stays */
    demoted = fn == ngx_ws_relay_bus_role && reply
              && one->cmd.ac == &fa->ac
              && reply->type != REDIS_REPLY_ERROR
              && !(reply->type == REDIS_REPLY_ARRAY && reply->elements > 0
                   && reply->element[0]->type == REDIS_REPLY_STRING
                   && reply->element[0]->len == 6
                   && ngx_memcmp(reply->element[0]->str, "master", 6) == 0);

    /* and the subscriber link checks too, before it subscribes */
    sub_demoted = fn == ngx_ws_relay_bus_sub_role && reply
                  && one->sub.ac == &fa->ac
                  && reply->type != REDIS_REPLY_ERROR
                  && !(reply->type == REDIS_REPLY_ARRAY
                       && reply->elements > 0
                       && reply->element[0]->type == REDIS_REPLY_STRING
                       && reply->element[0]->len == 6
                       && ngx_memcmp(reply->element[0]->str, "master", 6)
                          == 0);

    /* a nested callback (a context freed in this one) expects apart */
    outer = fuzz_expect;
    ngx_memzero(&fuzz_expect, sizeof(fuzz_expect_t));

    if (fn == ngx_ws_relay_bus_message && reply && &fa->ac == one->sub.ac) {
        fuzz_expect_push(one, reply, &fuzz_expect);

    } else if (fn == ngx_ws_relay_bus_published) {
        /* the delivery of the id learns how many workers listen */
        dl = fuzz_dl_find((uintptr_t) view.privdata, 1);
        fuzz_assert(dl != NULL);

        if (!dl->ended) {
            dl->expected = (reply && link->ac == &fa->ac
                            && reply->type == REDIS_REPLY_INTEGER)
                           ? ngx_max((ngx_int_t) reply->integer, 0) : 0;
        }

    } else if (fn == ngx_ws_relay_bus_stored) {
        fuzz_expect_stored(fa, &view, reply, &fuzz_expect);

    } else if (fn == ngx_ws_relay_history_page) {
        fuzz_expect_page(&view, reply);

    } else if (fn == ngx_ws_relay_presence_nodes_reply
               || fn == ngx_ws_relay_presence_users_reply)
    {
        fuzz_presence_reply(&view, reply);

    } else if (fn == ngx_ws_relay_sentinel_answer) {
        if (reply && fuzz_sentinel.cmd.ac == &fa->ac) {
            fuzz_expect_sentinel(reply);
        }

    } else if (fn == ngx_ws_relay_sentinel_message) {
        if (reply && fuzz_sentinel.sub.ac == &fa->ac) {
            fuzz_expect_switch(reply);
        }

    } else if (fn == ngx_ws_relay_cluster_answer) {
        if (reply && link->ac == &fa->ac) {
            fuzz_expect_map(reply);
            fuzz_map_answered = 1;
        }
    }

    fa->ac.c.flags |= REDIS_IN_CALLBACK;
    cb->fn(&fa->ac, reply, cb->privdata);
    fa->ac.c.flags &= ~REDIS_IN_CALLBACK;

    if (fn == ngx_ws_relay_history_page) {
        fuzz_in_page = 0;
        fuzz_page_next = 0;
        free(fuzz_next_since.data);
        ngx_str_null(&fuzz_next_since);
    }

    if (readonly) {
        fuzz_assert(readonly->ac != &fa->ac);
    }

    if (demoted) {
        fuzz_assert(one->cmd.ac != &fa->ac
                    && (sub == NULL || one->sub.ac != sub));
    }

    if (sub_demoted) {
        fuzz_assert(one->sub.ac != &fa->ac);
    }

    if (check && !fuzz_alloc_failed()) {

        if (fuzz_expect.on) {
            /* every connection of the user took it, and the ack went */
            fuzz_assert(fuzz_expect.local == 0 && fuzz_expect.ack.len == 0);
        }

        /* the node channel's confirmation makes the subscriber ready */
        if (fn == ngx_ws_relay_bus_message && reply && !was_ready) {
            fuzz_assert(one->sub.ready
                        == (reply->type == REDIS_REPLY_ARRAY
                            && reply->elements >= 3
                            && fuzz_is(reply->element[1],
                                       &fuzz_bus.node_channel)
                            && reply->element[0]->type == REDIS_REPLY_STRING
                            && ngx_strcmp(reply->element[0]->str,
                                          "subscribe") == 0));
        }

        /*
         * the probe came back: the round trip works (a lost subscriber,
         * or another master, forgets the probe too)
         */
        if (ping && !one->ping_in_flight
            && fn == ngx_ws_relay_bus_message && one->sub.ac == &fa->ac)
        {
            fuzz_assert(one->cmd.backoff == 0 && one->sub.backoff == 0);
        }
    }

    free(fuzz_expect.ack.data);
    free(fuzz_expect.ack_channel.data);
    free(fuzz_expect.with_id);
    fuzz_expect = outer;
}


/*
 * Whether the bus follows a redirection of req
 * (ngx_ws_relay_bus_redirected()): a MOVED or ASK error on the context of
 * the link, to a master it has a ready commands link to, before the
 * fifth redirection; to: that link's context
 */

static ngx_uint_t
fuzz_follows(fuzz_ac_t *fa, ngx_ws_relay_bus_request_t *req,
    redisReply *reply, fuzz_ac_t **to, ngx_uint_t *ask)
{
    ngx_uint_t                      i;
    ngx_ws_relay_bus_shard_t       *shard;
    ngx_ws_relay_redis_link_t      *link;
    ngx_ws_relay_wire_redirect_t    rd;

    link = fa->ac.data;

    *to = NULL;

    if (reply == NULL || reply->type != REDIS_REPLY_ERROR
        || ngx_ws_relay_wire_redirect(reply, &rd) != NGX_OK
        || req->redirects >= NGX_WS_RELAY_BUS_REDIRECTS)
    {
        return 0;
    }

    if (rd.host.len == 0) {
        /* no host: the node that answered */
        rd.host = link->endpoint->host;
    }

    for (i = 0; i < fuzz_bus.nshards; i++) {
        shard = &fuzz_bus.shards[i];

        if (shard->used && shard->endpoint.port == rd.port
            && fuzz_host_eq(shard->endpoint.host.data,
                            shard->endpoint.host.len, rd.host.data,
                            rd.host.len))
        {
            break;
        }
    }

    /* a master not known yet, or not usable: the command waits */
    if (i < fuzz_bus.nshards
        && (shard->cmd.ready || (shard->cmd.cluster && shard->cmd.ac)))
    {
        *to = fuzz_link_ac(&shard->cmd);

        if (*to
            && ((*to)->ac.c.flags & (REDIS_DISCONNECTING|REDIS_FREEING)))
        {
            *to = NULL;
        }
    }

    *ask = rd.ask;

    return 1;
}


/*
 * The history script's reply for a delivery (ngx_ws_relay_bus_stored()):
 * { id, receivers } on the commands link, with a stream id, keeps it,
 * with that id, and says
 * how many workers to wait for; anything else, or none, and the worker's
 * own connections get the text now, unless the publication came back
 * first (the script ran): either way the delivery ends.
 */

static void
fuzz_expect_stored(fuzz_ac_t *fa, fuzz_cb_t *cb, redisReply *reply,
    fuzz_expect_t *e)
{
    ngx_str_t    s;
    fuzz_dl_t   *dl;
    ngx_uint_t   good;

    dl = fuzz_dl_find((uintptr_t) cb->privdata, 1);
    fuzz_assert(dl != NULL && dl->script);

    good = reply
           && ((ngx_ws_relay_redis_link_t *) fa->ac.data)->ac == &fa->ac
           && reply->type == REDIS_REPLY_ARRAY && reply->elements == 2
           && reply->element[0]->type == REDIS_REPLY_STRING
           && reply->element[1]->type == REDIS_REPLY_INTEGER;

    if (good) {
        /* the id goes into the sender's JSON: a stream id only */
        s = fuzz_arg(reply, 0);
        good = fuzz_id_ok(&s);
    }

    if (dl->ended) {
        return;
    }

    if (good) {
        /* kept: as the publication said, if it came first, else this id */
        dl->stored = 1;
        dl->expected = ngx_max((ngx_int_t) reply->element[1]->integer, 0);
        return;
    }

    /* the worker's connections get the text now, then it ends */

    dl->unstored = 1;

    if (!dl->stored) {
        e->on = 1;
        e->user = dl->d->user_id;
        e->text = dl->d->text;
        dl->delivered += fuzz_local(&e->user, e->text.len, NULL,
                                    &e->local);
    }
}


/*
 * A page of replay, ngx_ws_relay_history_page(): {recovered, more, newest
 * id, id, JSON, ...}; only one of that form, whose ids are stream ids,
 * that says there is more and has messages, for a connection that is
 * there and not closing, asks for the next page, after its last id
 */

static void
fuzz_expect_page(fuzz_cb_t *cb, redisReply *reply)
{
    size_t                  i;
    ngx_str_t               s;
    ngx_ws_relay_resume_t  *r;

    r = cb->privdata;

    fuzz_assert(r->reading && r->replay);
    fuzz_assert(r->wc == NULL || r->wc->resume == r);

    fuzz_in_page = 1;
    fuzz_page_next = 0;
    ngx_str_null(&fuzz_next_since);

    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY
        || reply->elements < 5 || reply->elements % 2 == 0
        || reply->element[0]->type != REDIS_REPLY_INTEGER
        || reply->element[1]->type != REDIS_REPLY_INTEGER
        || reply->element[1]->integer == 0
        || r->wc == NULL || r->wc->closing)
    {
        return;
    }

    for (i = 2; i < reply->elements; i++) {
        if (reply->element[i]->type != REDIS_REPLY_STRING) {
            return;
        }

        s = fuzz_arg(reply, i);

        if ((i == 2 || i % 2 == 1) && !fuzz_id_ok(&s)) {
            return;
        }
    }

    fuzz_page_next = 1;

    s = fuzz_arg(reply, reply->elements - 2);
    fuzz_str_dup(&fuzz_next_since, &s);
}


/*
 * The link ngx_ws_relay_redis_link_is_error() sees a READONLY error on,
 * which it must drop: the commands links' callbacks that take errors
 * there, with a reply on the context the link has
 */

static ngx_ws_relay_redis_link_t *
fuzz_readonly(fuzz_ac_t *fa, fuzz_cb_t *cb, redisReply *reply)
{
    ngx_ws_relay_resume_t      *r;
    ngx_ws_relay_bus_shard_t   *shard;
    ngx_ws_relay_redis_link_t  *link;

    if (reply == NULL || reply->type != REDIS_REPLY_ERROR || reply->len < 8
        || ngx_memcmp(reply->str, "READONLY", 8) != 0)
    {
        return NULL;
    }

    link = fa->ac.data;

    if (link->ac != &fa->ac) {
        return NULL;
    }

    if (link == &fuzz_sentinel.cmd) {
        return (cb->fn == ngx_ws_relay_sentinel_answer
                || cb->fn == ngx_ws_relay_redis_link_reply) ? link : NULL;
    }

    if (link == fuzz_cluster_link()) {
        return (cb->fn == ngx_ws_relay_cluster_answer
                || cb->fn == ngx_ws_relay_redis_link_reply) ? link : NULL;
    }

    shard = fuzz_link_shard(link);

    if (shard && link == &shard->sub) {
        return (cb->fn == ngx_ws_relay_bus_sub_role) ? link : NULL;
    }

    if (shard == NULL) {
        return NULL;
    }

    if (cb->fn == ngx_ws_relay_history_page
        || cb->fn == ngx_ws_relay_history_top)
    {
        /* one for a connection that went frees itself, no more */
        r = cb->privdata;
        return r->wc ? link : NULL;
    }

    return (cb->fn == ngx_ws_relay_redis_link_reply
            || cb->fn == ngx_ws_relay_bus_script_loaded
            || cb->fn == ngx_ws_relay_bus_cmd_ready
            || cb->fn == ngx_ws_relay_bus_role
            || cb->fn == ngx_ws_relay_bus_probe_sent
            || cb->fn == ngx_ws_relay_bus_published
            || cb->fn == ngx_ws_relay_bus_stored
            || cb->fn == ngx_ws_relay_presence_nodes_reply
            || cb->fn == ngx_ws_relay_presence_users_reply) ? link : NULL;
}


/*
 * The sentinel's answer to SENTINEL get-master-addr-by-name
 * (ngx_ws_relay_sentinel_answer()): two strings name the master
 */

static void
fuzz_expect_sentinel(redisReply *reply)
{
    ngx_str_t  host, port;

    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 2
        || reply->element[0]->type != REDIS_REPLY_STRING
        || reply->element[1]->type != REDIS_REPLY_STRING)
    {
        return;
    }

    host = fuzz_arg(reply, 0);
    port = fuzz_arg(reply, 1);

    fuzz_master_named(&host, &port);
}


/*
 * A message of "+switch-master": "<master> <old ip> <old port> <new ip>
 * <new port>", each ending at a space; the master by its name moves to
 * the new address (ngx_ws_relay_sentinel_message())
 */

static void
fuzz_expect_switch(redisReply *reply)
{
    u_char      *p, *last, *space;
    ngx_str_t    f[5], s;
    ngx_uint_t   i;

    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 3
        || reply->element[0]->type != REDIS_REPLY_STRING
        || reply->element[2]->type != REDIS_REPLY_STRING)
    {
        return;
    }

    s = fuzz_arg(reply, 0);

    if (s.len == 9 && ngx_memcmp(s.data, "subscribe", 9) == 0) {
        return;
    }

    p = (u_char *) reply->element[2]->str;
    last = p + reply->element[2]->len;

    for (i = 0; i < 5; i++) {
        space = memchr(p, ' ', last - p);

        f[i].data = p;
        f[i].len = (space ? space : last) - p;

        p = space ? space + 1 : last;
    }

    if (!fuzz_str_eq(&f[0], &fuzz_main_conf.redis.master) || f[4].len == 0) {
        return;
    }

    fuzz_master_named(&f[3], &f[4]);
}


/*
 * The sentinels named the master: a host of 1 to NGX_SOCKADDR_STRLEN
 * bytes and a port of 1 to 65535 (digits); another than the one before
 * (as C strings: what the connect gets), and the links go to it, a
 * failover when there was one before
 */

static void
fuzz_master_named(ngx_str_t *host, ngx_str_t *port)
{
    size_t     i;
    ngx_int_t  n;

    n = 0;

    for (i = 0; i < port->len; i++) {
        if (port->data[i] < '0' || port->data[i] > '9') {
            return;
        }

        n = n * 10 + (port->data[i] - '0');

        if (n > 65535) {
            return;
        }
    }

    if (port->len == 0 || n == 0 || host->len == 0
        || host->len > NGX_SOCKADDR_STRLEN)
    {
        return;
    }

    if (fuzz_master_len == host->len && fuzz_master_port == n
        && strncmp((char *) fuzz_master, (char *) host->data, host->len)
           == 0)
    {
        return;
    }

    if (fuzz_master_len) {
        fuzz_failovers++;
    }

    ngx_memcpy(fuzz_master, host->data, host->len);
    fuzz_master[host->len] = '\0';
    fuzz_master_len = host->len;
    fuzz_master_port = n;
}


/* a context made for host:port (as C strings) */

static ngx_uint_t
fuzz_ac_to(fuzz_ac_t *fa, u_char *host, size_t len, ngx_int_t port)
{
    return fa->port == port
           && fa->host.len == ngx_strnlen(host, len)
           && ngx_memcmp(fa->host.data, host, fa->host.len) == 0;
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


/*
 * What a push must do (ngx_ws_relay_bus_wire.h): acks reach the model's
 * deliveries (compared with the module's when they end); a message for
 * a user goes to the user's connections (held by those that resume) and
 * an ack to its origin, with the count; a kept one with its id, and the
 * worker's own kept one acks itself.
 */

static void
fuzz_expect_push(ngx_ws_relay_bus_shard_t *shard, redisReply *reply,
    fuzz_expect_t *e)
{
    u_char                     buf[NGX_WS_RELAY_WIRE_HEAD_LEN], *p;
    u_char                     kind[sizeof("n:{12345678}")];
    uint64_t                   id;
    fuzz_ac_t                 *fa;
    fuzz_dl_t                 *dl;
    ngx_str_t                  origin, hid, json, s, *prefix;
    ngx_uint_t                 n, ours;
    ngx_ws_relay_bus_shard_t  *to;
    ngx_ws_relay_wire_node_t   m;
    ngx_ws_relay_wire_push_t   push;

    prefix = &fuzz_main_conf.redis.prefix;

    if (ngx_ws_relay_wire_parse_push(reply, &push) != NGX_OK
        || push.subscribed || push.unsubscribed)
    {
        return;
    }

    /* the node channel, or in a cluster the shard's probe's */
    if (fuzz_str_eq(&push.channel, &shard->probe)) {

        if (ngx_ws_relay_wire_parse_node(&push.payload, &m) == NGX_OK
            && m.type == NGX_WS_RELAY_WIRE_ACK
            && (dl = fuzz_dl_find(m.id, 0)))
        {
            dl->acks++;
            dl->delivered += (ngx_uint_t) m.count;
        }

        return;
    }

    if (ngx_ws_relay_wire_channel_name(&push.channel, prefix,
                                       NGX_WS_RELAY_WIRE_USER, &e->user)
        != NGX_OK
        || ngx_ws_relay_wire_parse_user(&push.payload, &origin, &id, &hid,
                                        &json)
           != NGX_OK
        || (hid.len && (json.len < 2 || json.data[json.len - 1] != '}')))
    {
        /* not a message, or a kept one that is no object: dropped */
        return;
    }

    ours = fuzz_str_eq(&origin, &ngx_ws_relay_worker.node_id);

    if (hid.len == 0) {

        if (ours) {
            /* delivered when it was sent */
            if ((dl = fuzz_dl_find(id, 0))) {
                dl->acks++;
            }

            return;
        }

        e->text = json;

    } else {
        /* kept: every copy has "id":"<hid>" as its last member */
        e->with_id = malloc(json.len + sizeof(",\"id\":\"\"") - 1 + hid.len);
        fuzz_assert(e->with_id != NULL);

        p = ngx_cpymem(e->with_id, json.data, json.len - 1);
        p = ngx_cpymem(p, ",\"id\":\"", sizeof(",\"id\":\"") - 1);
        p = ngx_cpymem(p, hid.data, hid.len);
        *p++ = '"';
        *p++ = '}';

        e->text.data = e->with_id;
        e->text.len = p - e->with_id;
    }

    e->on = 1;

    n = fuzz_local(&e->user, e->text.len, hid.len ? &hid : NULL, &e->local);

    if (ours) {
        /* the worker's own kept message: it acks itself, no PUBLISH */
        if ((dl = fuzz_dl_find(id, 0))) {
            dl->acks++;
            dl->delivered += n;
            dl->stored = 1;
        }

        return;
    }

    /* the ack goes to the origin's channel, on a commands link ready */

    s.len = ngx_ws_relay_wire_channel_len(prefix,
                                          fuzz_node_kind(&origin, kind),
                                          &origin);
    s.data = malloc(s.len);
    fuzz_assert(s.data != NULL);

    ngx_ws_relay_wire_channel(s.data, prefix, fuzz_node_kind(&origin, kind),
                              &origin);

    to = fuzz_shard_of(&s);
    fa = (to && to->cmd.ready) ? fuzz_link_ac(&to->cmd) : NULL;

    if (fa == NULL || (fa->ac.c.flags & (REDIS_DISCONNECTING|REDIS_FREEING)))
    {
        free(s.data);
        return;
    }

    e->ack_channel = s;

    s.data = buf;
    s.len = ngx_ws_relay_wire_ack(buf, id, n) - buf;
    fuzz_str_dup(&e->ack, &s);
}


ngx_int_t
fuzz_on_delivery(fuzz_conn_t *fc, u_char *data, size_t len)
{
    ngx_str_t  text;

    text.data = data;
    text.len = len;

    fuzz_assert(fc->wc.user != NULL);

    /*
     * a delivery that starts, or the push being handled, or the failed
     * script's reply
     */
    if (fuzz_starting == NULL && !fuzz_alloc_failed()) {
        fuzz_assert(fuzz_expect.on && fuzz_expect.local > 0);
        fuzz_assert(fuzz_str_eq(&fc->wc.user->sn.str, &fuzz_expect.user));
        fuzz_assert(fuzz_str_eq(&text, &fuzz_expect.text));

        fuzz_expect.local--;
    }

    return NGX_OK;
}


ngx_int_t
fuzz_on_reply(fuzz_conn_t *fc, u_char *data, size_t len)
{
    /* the router's replies are router_fuzz's to check */
    return NGX_OK;
}


static void
fuzz_delivered(ngx_ws_relay_delivery_t *d)
{
    fuzz_dl_t  *dl;

    dl = d->data;

    fuzz_assert(dl != NULL && dl->d == d && !dl->ended);
    fuzz_assert(d->done && !d->pending && !d->timer.timer_set);

    dl->ended = 1;
    dl->d = NULL;

    if (!fuzz_alloc_failed()) {
        /*
         * at its deadline, or with every ack in, or never published, or
         * when the script that was to keep it failed
         */
        fuzz_assert(fuzz_timer_firing() == &d->timer
                    || (dl->expected >= 0
                        && dl->acks >= (ngx_uint_t) dl->expected)
                    || dl->id == 0 || dl->unstored);

        fuzz_assert(d->acks == dl->acks && d->delivered == dl->delivered);
    }

    ngx_ws_relay_delivery_free(d);
}


/* ended: those that ended too */

static fuzz_dl_t *
fuzz_dl_find(uint64_t id, ngx_uint_t ended)
{
    fuzz_dl_t  *dl;

    for (dl = fuzz_dls; dl; dl = dl->next) {
        if (dl->id == id && id != 0 && (ended || !dl->ended)) {
            return dl;
        }
    }

    return NULL;
}


/* the replies to a presence query, as the model hands them out */

static void
fuzz_presence_reply(fuzz_cb_t *cb, redisReply *reply)
{
    u_char                         *p;
    size_t                          i;
    ngx_str_t                       key, s;
    fuzz_pr_t                      *pr;
    fuzz_set_t                     *set;
    ngx_ws_relay_presence_ask_t    *ask;
    ngx_ws_relay_presence_query_t  *pq;

    ask = NULL;

    if (cb->fn == ngx_ws_relay_presence_users_reply) {
        ask = cb->privdata;
        pq = ask->pq;

    } else {
        pq = cb->privdata;
    }

    pr = pq->data;
    set = &pr->nodes;

    if (ask) {
        /*
         * SMEMBERS <prefix>node:<node>:users: the node it asked of, the
         * replies in any order (in a cluster each from the set's master)
         */
        fuzz_assert(ask->index < pr->nodes.n);

        s = pr->nodes.items[ask->index];
        key = fuzz_arg(cb->command, 1);
        p = key.data + fuzz_main_conf.redis.prefix.len;

        fuzz_assert(key.len == fuzz_main_conf.redis.prefix.len + s.len + 11
                    && ngx_memcmp(p, "node:", 5) == 0
                    && ngx_memcmp(p + 5, s.data, s.len) == 0
                    && ngx_memcmp(p + 5 + s.len, ":users", 6) == 0);

        pr->unchecked |= (ask->index >= FUZZ_NODES);
        set = &pr->users[ngx_min(ask->index, FUZZ_NODES - 1)];
        pr->asked++;
    }

    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY) {
        pr->spoiled = 1;
        return;
    }

    for (i = 0; i < reply->elements; i++) {
        if (reply->element[i]->type == REDIS_REPLY_STRING) {
            s = fuzz_arg(reply, i);
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

    if (fuzz_alloc_failed() || pr->unchecked) {
        return;
    }

    /*
     * NULL only when something went wrong on the way: a reply missing or
     * not an array, or a node's SMEMBERS that could not be sent
     */
    for (i = 0; i < ngx_min(pr->nodes.n, FUZZ_NODES); i++) {
        pr->spoiled |= !pr->sent[i];
    }

    fuzz_assert((nodes == NULL) == pr->spoiled);

    if (nodes == NULL) {
        return;
    }

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


/*
 * after each step: the links, the deliveries, Redis as the registry, the
 * users heard, the master the sentinels named
 */

static void
fuzz_check_state(void)
{
    u_char                      buf[NGX_WS_RELAY_MAX_USER_ID + 64], *p;
    size_t                      i;
    ngx_str_t                   s;
    ngx_uint_t                  k, used, ready;
    fuzz_ac_t                  *fa;
    fuzz_dl_t                  *dl;
    ngx_queue_t                *q, *users;
    ngx_ws_relay_user_t        *user;
    ngx_ws_relay_bus_shard_t   *shard, *one;
    ngx_ws_relay_redis_link_t  *links[4];

    /* the links of the shards used, the sentinels', the cluster's */

    used = 0;
    ready = 0;

    for (k = 0; k < fuzz_bus.nshards; k++) {
        shard = &fuzz_bus.shards[k];

        if (!shard->used) {
            /* a shard no master has: nothing going */
            fuzz_assert(shard->cmd.ac == NULL && shard->sub.ac == NULL
                        && !shard->cmd.ready && !shard->sub.ready
                        && !shard->cmd.reconnect.timer_set
                        && !shard->sub.reconnect.timer_set);
            continue;
        }

        fuzz_check_link(&shard->cmd);
        fuzz_check_link(&shard->sub);

        used++;
        ready += (shard->cmd.ready && shard->sub.ready);
    }

    if (fuzz_sentinel_mode) {
        fuzz_check_link(&fuzz_sentinel.cmd);
        fuzz_check_link(&fuzz_sentinel.sub);
    }

    if (fuzz_cluster_mode) {
        fuzz_check_link(fuzz_cluster_link());
    }

    if (fuzz_alloc_failed() || fuzz_exited) {
        return;
    }

    /* "up" when every master's two links are ready, and only then */
    fuzz_assert((fuzz_slot.redis_state == NGX_WS_RELAY_BUS_UP)
                == (used && ready == used));

    /* a delivery whose acks are in is over */
    for (dl = fuzz_dls; dl; dl = dl->next) {
        fuzz_assert(dl->ended || dl->expected < 0
                    || dl->acks < (ngx_uint_t) dl->expected);
    }

    if (fuzz_cluster_mode) {
        fuzz_check_cluster();

    } else {
        one = fuzz_shard0;
        fa = fuzz_link_ac(&one->sub);

        if (one->sub.ready && fa) {
            fuzz_assert(fuzz_set_find(&fa->subscribed,
                                      &fuzz_bus.node_channel));
            fuzz_check_set(&fa->subscribed, &fuzz_bus.user_prefix, "}");
        }

        fa = fuzz_link_ac(&one->cmd);

        if (one->cmd.ready && fa) {
            fuzz_check_set(&fa->members, NULL, "");
        }
    }

    /*
     * a user's channel is heard only while the ready subscriber of its
     * master has it subscribed; the newest id heard of its history is
     * one a message on the channel, a page or the script could give
     */

    users = ngx_ws_relay_registry_users();

    for (q = ngx_queue_head(users);
         q != ngx_queue_sentinel(users);
         q = ngx_queue_next(q))
    {
        user = ngx_queue_data(q, ngx_ws_relay_user_t, queue);

        fuzz_assert(user->last_id.len <= NGX_WS_RELAY_ID_LEN);

        for (i = 0; i < user->last_id.len; i++) {
            fuzz_assert(isdigit(user->last_id.data[i])
                        || user->last_id.data[i] == '-');
        }

        if (!user->subscribed) {
            continue;
        }

        p = ngx_cpymem(buf, fuzz_bus.user_prefix.data,
                       fuzz_bus.user_prefix.len);
        p = ngx_cpymem(p, user->sn.str.data, user->sn.str.len);
        *p++ = '}';

        s.data = buf;
        s.len = p - buf;

        shard = fuzz_shard_of(&s);
        fa = shard ? fuzz_link_ac(&shard->sub) : NULL;

        if (!(shard && shard->sub.ready && fa)) {
            fprintf(stderr, "user \"%.*s\" heard without a subscriber\n",
                    (int) user->sn.str.len, user->sn.str.data);
        }

        fuzz_assert(shard && shard->sub.ready && fa);
        fuzz_assert(fuzz_set_find(&fa->subscribed, &s));
    }

    if (!fuzz_sentinel_mode) {
        return;
    }

    /*
     * the master is the one the sentinels named last; the links of the
     * bus go there, and nowhere while none is named; the sentinels' go to
     * the sentinels
     */

    fuzz_assert(fuzz_endpoint.host.len == fuzz_master_len
                && (fuzz_master_len == 0
                    || (fuzz_endpoint.port == fuzz_master_port
                        && ngx_memcmp(fuzz_endpoint.host.data, fuzz_master,
                                      fuzz_master_len) == 0)));

    fuzz_assert(fuzz_slot.redis_failovers == fuzz_failovers);

    one = fuzz_shard0;
    links[0] = &one->cmd;
    links[1] = &one->sub;
    links[2] = &fuzz_sentinel.cmd;
    links[3] = &fuzz_sentinel.sub;

    for (k = 0; k < 2; k++) {
        fa = fuzz_link_ac(links[k]);

        fuzz_assert(fa == NULL
                    || (fuzz_master_len
                        && fuzz_ac_to(fa, fuzz_master, fuzz_master_len,
                                      fuzz_master_port)));
    }

    for (k = 2; k < 4; k++) {
        fa = fuzz_link_ac(links[k]);

        if (fa == NULL) {
            continue;
        }

        for (i = 0; i < fuzz_sentinels.nelts; i++) {
            if (fuzz_ac_to(fa, fuzz_sentinel_eps[i].host.data,
                           fuzz_sentinel_eps[i].host.len,
                           fuzz_sentinel_eps[i].port))
            {
                break;
            }
        }

        fuzz_assert(i < fuzz_sentinels.nelts);
    }
}


/*
 * a link: its context is its own and not going; a ready link has one; a
 * lost one comes back after its backoff (100 ms doubling to 5 s), with
 * jitter
 */

static void
fuzz_check_link(ngx_ws_relay_redis_link_t *link)
{
    fuzz_ac_t   *fa;
    ngx_msec_t   b;

    fa = fuzz_link_ac(link);

    fuzz_assert(fa == NULL || (fa->ac.data == link
                               && !(fa->ac.c.flags & REDIS_FREEING)));
    fuzz_assert(!link->ready || fa);

    fuzz_assert(fa || link->reconnect.timer_set || fuzz_exited);

    b = link->backoff / 100;
    fuzz_assert(link->backoff == 5000
                || (link->backoff % 100 == 0 && (b & (b - 1)) == 0));
    fuzz_assert(!link->reconnect.timer_set
                || link->reconnect.timer.key - ngx_current_msec <= 5000);
}


/*
 * A cluster: the bus's slot map is the model's of the last map taken (a
 * slot of no master is no shard's; one of a master maybe none, while the
 * old masters hold every shard), every shard used is a master of that
 * map, its links go to it; a ready subscriber has subscribed its probe
 * and no channel but those of the registry's users its master owns.
 */

static void
fuzz_check_cluster(void)
{
    u_char                      want[FUZZ_MASTERS];
    ngx_str_t                   s, name;
    ngx_uint_t                  slot, i, k, m;
    fuzz_ac_t                  *fa;
    fuzz_master_t              *master;
    ngx_ws_relay_bus_shard_t   *shard;

    /*
     * the bus's map changes only with an answer: the shard of each master
     * of the model's map (its address), then the slots
     */

    for (m = 0; fuzz_map_answered && m < fuzz_nmasters; m++) {
        master = &fuzz_masters[m];
        want[m] = FUZZ_NONE;

        for (k = 0; k < fuzz_bus.nshards; k++) {
            shard = &fuzz_bus.shards[k];

            if (shard->used && shard->endpoint.port == master->port
                && fuzz_host_eq(shard->endpoint.host.data,
                                shard->endpoint.host.len,
                                master->host, master->len))
            {
                want[m] = (u_char) k;
                break;
            }
        }
    }

    for (slot = 0; fuzz_map_answered && slot < NGX_WS_RELAY_WIRE_SLOTS;
         slot++)
    {
        k = fuzz_bus.map[slot];

        if (k == FUZZ_NONE) {
            /*
             * none's: a master's has a shard, the masters that left the
             * map having freed theirs first (there are no more masters
             * than shards)
             */
            fuzz_assert(!fuzz_map_known || fuzz_map[slot] == FUZZ_NONE);
            continue;
        }

        /* its master's shard */
        fuzz_assert(fuzz_map_known && fuzz_map[slot] != FUZZ_NONE
                    && k == want[fuzz_map[slot]]);
    }

    fuzz_map_answered = 0;

    for (k = 0; k < fuzz_bus.nshards; k++) {
        shard = &fuzz_bus.shards[k];

        if (!shard->used) {
            continue;
        }

        for (m = 0; m < fuzz_nmasters; m++) {
            if (shard->endpoint.port == fuzz_masters[m].port
                && fuzz_host_eq(shard->endpoint.host.data,
                                shard->endpoint.host.len,
                                fuzz_masters[m].host, fuzz_masters[m].len))
            {
                break;
            }
        }

        fuzz_assert(fuzz_map_known && m < fuzz_nmasters);

        /*
         * its master owns a slot (one whose ranges were all another's
         * gets none), and its probe goes through a channel of its own
         * slots (the node channel, or "<prefix>n:{<n>}<node>")
         */
        fuzz_assert(fuzz_owns[m]);
        fuzz_assert(shard->probe.len > 0
                    && fuzz_shard_of(&shard->probe) == shard);

        for (i = 0; i < 2; i++) {
            fa = fuzz_link_ac(i ? &shard->sub : &shard->cmd);

            fuzz_assert(fa == NULL
                        || fuzz_ac_to(fa, shard->endpoint.host.data,
                                      shard->endpoint.host.len,
                                      shard->endpoint.port));
        }

        fa = fuzz_link_ac(&shard->sub);

        if (!(shard->sub.ready && fa)) {
            continue;
        }

        /* the probe (a subscription of it that Redis ended is made again) */
        fuzz_assert(fuzz_set_find(&fa->subscribed, &shard->probe));

        for (i = 0; i < fa->subscribed.n; i++) {
            s = fa->subscribed.items[i];

            if (fuzz_str_eq(&s, &shard->probe)) {
                continue;
            }

            fuzz_assert(ngx_ws_relay_wire_channel_name(&s,
                                               &fuzz_main_conf.redis.prefix,
                                               NGX_WS_RELAY_WIRE_USER, &name)
                        == NGX_OK);
            fuzz_assert(fuzz_shard_of(&s) == shard);

            /* of a user of the registry */
            fuzz_assert(name.len <= NGX_WS_RELAY_MAX_USER_ID
                        && ngx_ws_relay_registry_find_user(&name) != NULL);
        }
    }
}


/*
 * The model's ngx_ws_relay_cluster_read(): a CLUSTER SLOTS answer the
 * worker takes (the ranges of CLUSTER SLOTS, as wire_fuzz checks them, of
 * masters named by a host of at most NGX_SOCKADDR_STRLEN bytes, the node
 * asked for an empty one, the first 64 masters; a slot of two ranges the
 * last one's; at least one slot owned) is the map from now.
 */

static void
fuzz_expect_map(redisReply *reply)
{
    ngx_str_t                   host;
    ngx_uint_t                  i, k, n, slot, owned, nm;
    fuzz_master_t              *masters;
    ngx_ws_relay_wire_range_t  *ranges;
    u_char                     *map;

    if (reply->type == REDIS_REPLY_ERROR) {
        return;
    }

    n = NGX_WS_RELAY_CLUSTER_RANGES;

    ranges = malloc(n * sizeof(ngx_ws_relay_wire_range_t));
    masters = malloc(FUZZ_MASTERS * sizeof(fuzz_master_t));
    map = malloc(NGX_WS_RELAY_WIRE_SLOTS);
    fuzz_assert(ranges != NULL && masters != NULL && map != NULL);

    if (ngx_ws_relay_wire_cluster_slots(reply, ranges, &n) != NGX_OK) {
        goto done;
    }

    ngx_memset(map, FUZZ_NONE, NGX_WS_RELAY_WIRE_SLOTS);
    nm = 0;
    owned = 0;

    for (i = 0; i < n; i++) {
        host = ranges[i].host.len ? ranges[i].host : fuzz_cluster->node.host;

        if (host.len > NGX_SOCKADDR_STRLEN) {
            continue;
        }

        for (k = 0; k < nm; k++) {
            if (masters[k].port == ranges[i].port
                && fuzz_host_eq(masters[k].host, masters[k].len, host.data,
                                host.len))
            {
                break;
            }
        }

        if (k == nm) {
            if (nm == FUZZ_MASTERS) {
                continue;
            }

            ngx_memzero(masters[k].host, sizeof(masters[k].host));
            ngx_memcpy(masters[k].host, host.data, host.len);
            masters[k].len = host.len;
            masters[k].port = ranges[i].port;
            nm++;
        }

        for (slot = ranges[i].first; slot <= ranges[i].last; slot++) {
            owned += (map[slot] == FUZZ_NONE);
            map[slot] = (u_char) k;
        }
    }

    if (owned == 0) {
        goto done;
    }

    /* as ngx_ws_relay_cluster_same() compares them */

    fuzz_map_again = fuzz_map_known && nm == fuzz_nmasters
                     && ngx_memcmp(map, fuzz_map, NGX_WS_RELAY_WIRE_SLOTS)
                        == 0;

    for (k = 0; fuzz_map_again && k < nm; k++) {
        fuzz_map_again = masters[k].port == fuzz_masters[k].port
                         && ngx_memcmp(masters[k].host, fuzz_masters[k].host,
                                       sizeof(masters[k].host))
                            == 0;
    }

    fuzz_map_known = 1;
    fuzz_nmasters = nm;
    ngx_memcpy(fuzz_map, map, NGX_WS_RELAY_WIRE_SLOTS);
    ngx_memcpy(fuzz_masters, masters, nm * sizeof(fuzz_master_t));

    ngx_memzero(fuzz_owns, sizeof(fuzz_owns));

    for (slot = 0; slot < NGX_WS_RELAY_WIRE_SLOTS; slot++) {
        if (map[slot] != FUZZ_NONE) {
            fuzz_owns[map[slot]] = 1;
        }
    }

    for (k = 0; k < nm; k++) {
        fuzz_named_add(masters[k].host, masters[k].len, masters[k].port);
    }

done:

    free(ranges);
    free(masters);
    free(map);
}


/* a master of a map taken: the worker may connect to it from now */

static void
fuzz_named_add(u_char *host, size_t len, ngx_int_t port)
{
    ngx_uint_t  i;

    for (i = 0; i < fuzz_nnamed; i++) {
        if (fuzz_named[i].port == port
            && fuzz_host_eq(fuzz_named[i].host, fuzz_named[i].len, host, len))
        {
            return;
        }
    }

    fuzz_named = realloc(fuzz_named,
                         (fuzz_nnamed + 1) * sizeof(fuzz_master_t));
    fuzz_assert(fuzz_named != NULL);

    ngx_memzero(&fuzz_named[fuzz_nnamed], sizeof(fuzz_master_t));
    ngx_memcpy(fuzz_named[fuzz_nnamed].host, host, len);
    fuzz_named[fuzz_nnamed].len = len;
    fuzz_named[fuzz_nnamed].port = port;
    fuzz_nnamed++;
}


/* a connect of a cluster's worker: to a node listed, or a master named */

static ngx_uint_t
fuzz_may_connect(const char *host, int port)
{
    ngx_uint_t  i;

    for (i = 0; i < fuzz_nodes.nelts; i++) {
        if (port == fuzz_node_eps[i].port
            && strcmp(host, (char *) fuzz_node_eps[i].host.data) == 0)
        {
            return 1;
        }
    }

    for (i = 0; i < fuzz_nnamed; i++) {
        if (port == fuzz_named[i].port
            && strcmp(host, (char *) fuzz_named[i].host) == 0)
        {
            return 1;
        }
    }

    return 0;
}


/*
 * The master of a key's slot in the model's map: NULL, no map known (any
 * node takes it); -1, none
 */

static fuzz_master_t *
fuzz_owner(ngx_str_t *key)
{
    ngx_uint_t  m;

    if (!fuzz_map_known) {
        return NULL;
    }

    m = fuzz_map[ngx_ws_relay_wire_slot(key->data, key->len)];

    return (m == FUZZ_NONE) ? (fuzz_master_t *) -1 : &fuzz_masters[m];
}


/* the master of the model's map a shard's link goes to; NULL: none */

static fuzz_master_t *
fuzz_link_master(ngx_ws_relay_redis_link_t *link)
{
    ngx_uint_t                 m;
    ngx_ws_relay_bus_shard_t  *shard;

    shard = fuzz_link_shard(link);

    for (m = 0; shard && m < fuzz_nmasters; m++) {
        if (shard->endpoint.port == fuzz_masters[m].port
            && fuzz_host_eq(shard->endpoint.host.data,
                            shard->endpoint.host.len,
                            fuzz_masters[m].host, fuzz_masters[m].len))
        {
            return &fuzz_masters[m];
        }
    }

    return NULL;
}


/* two hosts, as the module compares them: lengths, then C strings */

static ngx_uint_t
fuzz_host_eq(u_char *a, size_t alen, u_char *b, size_t blen)
{
    return alen == blen && ngx_strncmp(a, b, alen) == 0;
}


/*
 * the set holds <prefix><user><suffix> for every user of the registry, and
 * no more
 */

static void
fuzz_check_set(fuzz_set_t *set, ngx_str_t *prefix, const char *suffix)
{
    u_char               buf[NGX_WS_RELAY_MAX_USER_ID + 64], *p;
    ngx_str_t            s;
    ngx_uint_t           n;
    ngx_queue_t         *q, *users;
    ngx_ws_relay_user_t  *user;

    users = ngx_ws_relay_registry_users();
    n = 0;

    for (q = ngx_queue_head(users);
         q != ngx_queue_sentinel(users);
         q = ngx_queue_next(q))
    {
        user = ngx_queue_data(q, ngx_ws_relay_user_t, queue);

        p = prefix ? ngx_cpymem(buf, prefix->data, prefix->len) : buf;
        p = ngx_cpymem(p, user->sn.str.data, user->sn.str.len);
        p = ngx_cpymem(p, suffix, ngx_strlen(suffix));

        s.data = buf;
        s.len = p - buf;

        fuzz_assert(fuzz_set_find(set, &s));
        n++;
    }

    fuzz_assert(set->n == n + (prefix ? 1 : 0));
}


static ngx_uint_t
fuzz_is(redisReply *r, ngx_str_t *s)
{
    ngx_str_t  str;

    str.data = (u_char *) r->str;
    str.len = r->len;

    return (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS)
           && fuzz_str_eq(&str, s);
}


static ngx_uint_t
fuzz_arg_is(redisReply *cmd, const char *s)
{
    return cmd->elements > 0 && cmd->element[0]->type == REDIS_REPLY_STRING
           && cmd->element[0]->len == strlen(s)
           && strcasecmp(cmd->element[0]->str, s) == 0;
}


/* argument i is s, as it is written */

static ngx_uint_t
fuzz_arg_is_at(redisReply *cmd, size_t i, const char *s)
{
    return i < cmd->elements && cmd->element[i]->type == REDIS_REPLY_STRING
           && cmd->element[i]->len == strlen(s)
           && ngx_memcmp(cmd->element[i]->str, s, strlen(s)) == 0;
}


static ngx_uint_t
fuzz_str_eq(ngx_str_t *a, ngx_str_t *b)
{
    return a->len == b->len
           && (a->len == 0 || ngx_memcmp(a->data, b->data, a->len) == 0);
}


static ngx_uint_t
fuzz_str_is(ngx_str_t *a, const char *s)
{
    return a->len == strlen(s) && ngx_memcmp(a->data, s, a->len) == 0;
}


static void
fuzz_str_dup(ngx_str_t *dst, ngx_str_t *src)
{
    dst->data = malloc(src->len + 1);
    fuzz_assert(dst->data != NULL);

    ngx_memcpy(dst->data, src->data, src->len);
    dst->len = src->len;
}


static ngx_str_t
fuzz_arg(redisReply *cmd, size_t i)
{
    ngx_str_t  s;

    s.data = (u_char *) cmd->element[i]->str;
    s.len = cmd->element[i]->len;

    return s;
}


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


/* list: added even if it is there */

static void
fuzz_set_add(fuzz_set_t *s, ngx_str_t *str, ngx_uint_t list)
{
    if (!list && fuzz_set_find(s, str)) {
        return;
    }

    s->items = realloc(s->items, (s->n + 1) * sizeof(ngx_str_t));
    fuzz_assert(s->items != NULL);

    fuzz_str_dup(&s->items[s->n++], str);
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
