
/*
 * Copyright (C) ngx_ws_relay_module authors
 */


#include "ngx_ws_relay.h"
#include "ngx_ws_relay_bus.h"
#include "ngx_ws_relay_bus_wire.h"
#include "ngx_ws_relay_delivery.h"
#include "ngx_ws_relay_history.h"
#include "ngx_ws_relay_json.h"
#include "ngx_ws_relay_presence.h"
#include "ngx_ws_relay_redis_link.h"
#include "ngx_ws_relay_registry.h"
#include "ngx_ws_relay_sentinel.h"
#include "ngx_ws_relay_shm.h"


/*
 * Each worker has two links to Redis: one for commands and one for
 * subscriptions.  A worker subscribes to the channel of a user while it
 * holds a connection of that user, and to its own node channel; the
 * messages are those of ngx_ws_relay_bus_wire.h.  PUBLISH's reply says
 * how many acks to wait for; a worker skips (and acks for itself) its
 * own publications.  A ping through the worker's own node channel proves
 * that the whole round trip works.
 *
 * A message stored in a user's history is published by the history
 * script, with its id: then the worker delivers its own connections'
 * copies when its own publication comes back, so that every copy of
 * every message of a user goes out in the order of the ids.  While the
 * subscriber link is down, the worker hears nothing, its own messages
 * included: when it hears the users again, their connections catch up
 * from the history (ngx_ws_relay_history_subscribed()).
 */


typedef struct {
    ngx_ws_relay_redis_conf_t  *conf;
    ngx_log_t                  *log;

    ngx_ws_relay_redis_link_t   cmd;
    ngx_ws_relay_redis_link_t   sub;

    ngx_str_t                   node_channel;
    ngx_str_t                   user_prefix;

    ngx_event_t                 watchdog;
    ngx_msec_t                  watchdog_due;

    /* the sentinels named a master before */
    unsigned                    master_known:1;

    uint64_t                    ping_seq;
    struct timeval              ping_sent_tv;
    ngx_msec_t                  ping_sent;
    unsigned                    ping_in_flight:1;
    unsigned                    was_up:1;

    /* one command at a time is built here: hiredis copies what it sends */
    u_char                     *buf;
    size_t                      buf_size;

    /* a user's two keys and channel, key_size bytes each at most */
    u_char                     *keys;
    size_t                      key_size;
} ngx_ws_relay_bus_t;


static void ngx_ws_relay_bus_cmd_connected(ngx_ws_relay_redis_link_t *link);
static void ngx_ws_relay_bus_sub_connected(ngx_ws_relay_redis_link_t *link);
static void ngx_ws_relay_bus_lost(ngx_ws_relay_redis_link_t *link);
static void ngx_ws_relay_bus_cmd_ready(redisAsyncContext *ac, void *r,
    void *privdata);
static void ngx_ws_relay_bus_sub_ready(void);
static void ngx_ws_relay_bus_count_ready(void);
static void ngx_ws_relay_bus_watchdog(ngx_event_t *ev);
static void ngx_ws_relay_bus_probe(ngx_msec_t now);
static ngx_int_t ngx_ws_relay_bus_publish_to(const char *kind,
    ngx_str_t *name, ngx_str_t *parts, ngx_uint_t nparts,
    redisCallbackFn *fn, void *privdata);
static void ngx_ws_relay_bus_published(redisAsyncContext *ac, void *r,
    void *privdata);
static void ngx_ws_relay_bus_stored(redisAsyncContext *ac, void *r,
    void *privdata);
static void ngx_ws_relay_bus_script_loaded(redisAsyncContext *ac, void *r,
    void *privdata);
static void ngx_ws_relay_bus_role(redisAsyncContext *ac, void *r,
    void *privdata);
static void ngx_ws_relay_bus_sub_role(redisAsyncContext *ac, void *r,
    void *privdata);
static void ngx_ws_relay_bus_subscribe_node(ngx_ws_relay_redis_link_t *link);
static void ngx_ws_relay_bus_master_changed(void);
static void ngx_ws_relay_bus_message(redisAsyncContext *ac, void *r,
    void *privdata);
static void ngx_ws_relay_bus_user_message(ngx_str_t *user_id,
    ngx_str_t *payload);
static void ngx_ws_relay_bus_user_subscribed(ngx_str_t *user_id);
static void ngx_ws_relay_bus_node_message(ngx_str_t *payload);
static ngx_int_t ngx_ws_relay_bus_subscription(const char *command,
    ngx_str_t *user_id);
static u_char *ngx_ws_relay_bus_buffer(size_t size);
static void ngx_ws_relay_bus_measure_rtt(void);


static ngx_ws_relay_bus_t  ngx_ws_relay_bus;


ngx_int_t
ngx_ws_relay_bus_init_worker(ngx_cycle_t *cycle)
{
    u_char                     *p;
    ngx_str_t                  *node;
    ngx_ws_relay_bus_t         *bus;
    ngx_ws_relay_redis_conf_t  *rcf;

    bus = &ngx_ws_relay_bus;
    rcf = &ngx_ws_relay_worker.main_conf->redis;

    if (!rcf->enabled) {
        return NGX_OK;
    }

    bus->conf = rcf;
    bus->log = cycle->log;

    /* the time cached before the fork may be old: timeouts count from now */
    ngx_time_update();

    node = &ngx_ws_relay_worker.node_id;

    p = ngx_pnalloc(cycle->pool, 2 * rcf->prefix.len + node->len
                                 + sizeof(NGX_WS_RELAY_WIRE_NODE) - 1
                                 + sizeof(NGX_WS_RELAY_WIRE_USER) - 1);
    if (p == NULL) {
        return NGX_ERROR;
    }

    bus->node_channel.data = p;
    p = ngx_ws_relay_wire_channel(p, &rcf->prefix, NGX_WS_RELAY_WIRE_NODE,
                                  node);
    bus->node_channel.len = p - bus->node_channel.data;

    /* "<prefix>u:{": a user's channel is this, the user, and "}" */

    bus->user_prefix.data = p;
    p = ngx_cpymem(p, rcf->prefix.data, rcf->prefix.len);
    p = ngx_cpymem(p, NGX_WS_RELAY_WIRE_USER,
                   sizeof(NGX_WS_RELAY_WIRE_USER) - 1);
    bus->user_prefix.len = p - bus->user_prefix.data;

    bus->key_size = rcf->prefix.len + sizeof(NGX_WS_RELAY_WIRE_USER)
                    + NGX_WS_RELAY_MAX_USER_ID;

    bus->keys = ngx_pnalloc(cycle->pool, 3 * bus->key_size);
    if (bus->keys == NULL) {
        return NGX_ERROR;
    }

    bus->cmd.name = "commands";
    bus->cmd.endpoint = rcf->endpoints->elts;
    bus->cmd.conf = rcf;
    bus->cmd.log = cycle->log;
    bus->cmd.connected = ngx_ws_relay_bus_cmd_connected;
    bus->cmd.lost = ngx_ws_relay_bus_lost;

    bus->sub = bus->cmd;
    bus->sub.name = "subscriber";
    bus->sub.connected = ngx_ws_relay_bus_sub_connected;
    bus->sub.subscriber = 1;

    if (ngx_ws_relay_presence_init(&bus->cmd, cycle) != NGX_OK) {
        return NGX_ERROR;
    }

    bus->watchdog.handler = ngx_ws_relay_bus_watchdog;
    bus->watchdog.data = bus;
    bus->watchdog.log = cycle->log;
    bus->watchdog.cancelable = 1;

    if (rcf->sentinels
        && ngx_ws_relay_sentinel_init(cycle, rcf, rcf->endpoints->elts,
                                      ngx_ws_relay_bus_master_changed)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    ngx_ws_relay_redis_link_connect(&bus->cmd);
    ngx_ws_relay_redis_link_connect(&bus->sub);

    ngx_ws_relay_stat_set(redis_state, ngx_ws_relay_bus_state());

    bus->watchdog_due = ngx_current_msec + ngx_max(rcf->timeout / 2, 50);
    ngx_add_timer(&bus->watchdog, ngx_max(rcf->timeout / 2, 50));

    return NGX_OK;
}


void
ngx_ws_relay_bus_exit_worker(void)
{
    ngx_ws_relay_bus_t  *bus;

    bus = &ngx_ws_relay_bus;

    if (bus->conf == NULL) {
        return;
    }

    ngx_ws_relay_presence_exit();
    ngx_ws_relay_sentinel_exit();

    ngx_ws_relay_redis_link_drop(&bus->cmd, NULL);
    ngx_ws_relay_redis_link_drop(&bus->sub, NULL);
}


static void
ngx_ws_relay_bus_cmd_connected(ngx_ws_relay_redis_link_t *link)
{
    if (link->conf->sentinels) {
        /* what the sentinels named must be a master */
        (void) ngx_ws_relay_redis_link_command(link, ngx_ws_relay_bus_role,
                                               link, "ROLE");
    }

    if (ngx_ws_relay_worker.main_conf->history) {
        (void) ngx_ws_relay_redis_link_command(link,
                                   ngx_ws_relay_bus_script_loaded, link,
                                   "SCRIPT LOAD %b",
                                   ngx_ws_relay_history_script.data,
                                   ngx_ws_relay_history_script.len);
    }

    (void) ngx_ws_relay_redis_link_command(link, ngx_ws_relay_bus_cmd_ready,
                                           link, "PING");
}


static void
ngx_ws_relay_bus_role(redisAsyncContext *ac, void *r, void *privdata)
{
    redisReply                 *reply = r;
    ngx_ws_relay_redis_link_t  *link = privdata;

    if (reply == NULL || link->ac != ac) {
        return;
    }

    ngx_ws_relay_redis_link_replied(link);

    if (ngx_ws_relay_redis_link_is_error(link, reply, "ROLE")) {
        return;
    }

    if (ngx_ws_relay_wire_is_master(reply)) {
        return;
    }

    /* a replica (a demoted master): neither link stays with it */

    if (ngx_ws_relay_bus.sub.ac) {
        ngx_ws_relay_redis_link_drop(&ngx_ws_relay_bus.sub, "not a master");
    }

    ngx_ws_relay_redis_link_drop(link, "the server the sentinels named is "
                                       "not a master");
}


/* the subscriber link checks the master too, before it subscribes */

static void
ngx_ws_relay_bus_sub_role(redisAsyncContext *ac, void *r, void *privdata)
{
    redisReply                 *reply = r;
    ngx_ws_relay_redis_link_t  *link = privdata;

    if (reply == NULL || link->ac != ac) {
        return;
    }

    if (ngx_ws_relay_wire_is_master(reply)) {
        ngx_ws_relay_bus_subscribe_node(link);
        return;
    }

    if (!ngx_ws_relay_redis_link_is_error(link, reply, "ROLE")) {
        ngx_ws_relay_redis_link_drop(link, "the server the sentinels named "
                                           "is not a master");
    }
}


/*
 * The sentinels name another master: both links go to it, at once; a
 * subscriber link that comes back resubscribes every user.
 */

static void
ngx_ws_relay_bus_master_changed(void)
{
    ngx_ws_relay_bus_t             *bus;
    ngx_ws_relay_redis_endpoint_t  *ep;

    bus = &ngx_ws_relay_bus;
    ep = bus->cmd.endpoint;

    ngx_log_error(NGX_LOG_NOTICE, bus->log, 0,
                  "ws relay: redis master is %s:%i", ep->host.data, ep->port);

    if (bus->master_known) {
        ngx_ws_relay_stat_add(redis_failovers, 1);
    }

    bus->master_known = 1;

    ngx_ws_relay_redis_link_drop(&bus->cmd, NULL);
    ngx_ws_relay_redis_link_drop(&bus->sub, NULL);
    ngx_ws_relay_bus_lost(&bus->sub);

    ngx_ws_relay_redis_link_connect(&bus->cmd);
    ngx_ws_relay_redis_link_connect(&bus->sub);
}


static void
ngx_ws_relay_bus_script_loaded(redisAsyncContext *ac, void *r,
    void *privdata)
{
    ngx_ws_relay_redis_link_t  *link = privdata;

    if (r == NULL || link->ac != ac) {
        return;
    }

    ngx_ws_relay_redis_link_replied(link);

    (void) ngx_ws_relay_redis_link_is_error(link, r, "SCRIPT LOAD");
}


/* the subscriber is ready once its node channel is subscribed */

static void
ngx_ws_relay_bus_sub_connected(ngx_ws_relay_redis_link_t *link)
{
    if (link->conf->sentinels) {
        (void) redisAsyncCommand(link->ac, ngx_ws_relay_bus_sub_role, link,
                                 "ROLE");
        return;
    }

    ngx_ws_relay_bus_subscribe_node(link);
}


static void
ngx_ws_relay_bus_subscribe_node(ngx_ws_relay_redis_link_t *link)
{
    (void) redisAsyncCommand(link->ac, ngx_ws_relay_bus_message, NULL,
                             "SUBSCRIBE %b",
                             ngx_ws_relay_bus.node_channel.data,
                             ngx_ws_relay_bus.node_channel.len);
}


static void
ngx_ws_relay_bus_lost(ngx_ws_relay_redis_link_t *link)
{
    ngx_queue_t          *q, *users;
    ngx_ws_relay_user_t  *user;

    ngx_ws_relay_stat_set(redis_state, ngx_ws_relay_bus_state());

    if (link->conf->sentinels) {
        /* is the master still the master? */
        ngx_ws_relay_sentinel_ask();
    }

    if (link != &ngx_ws_relay_bus.sub) {
        return;
    }

    ngx_ws_relay_bus.ping_in_flight = 0;

    /* no channel is heard until it is subscribed again */

    users = ngx_ws_relay_registry_users();

    for (q = ngx_queue_head(users);
         q != ngx_queue_sentinel(users);
         q = ngx_queue_next(q))
    {
        user = ngx_queue_data(q, ngx_ws_relay_user_t, queue);
        user->missed = user->subscribed;
        user->subscribed = 0;
    }
}


static void
ngx_ws_relay_bus_cmd_ready(redisAsyncContext *ac, void *r, void *privdata)
{
    ngx_ws_relay_redis_link_t  *link = privdata;

    if (r == NULL || link->ac != ac) {
        return;
    }

    ngx_ws_relay_redis_link_replied(link);

    if (ngx_ws_relay_redis_link_is_error(link, r, "PING")) {
        ngx_ws_relay_redis_link_drop(link, "not usable");
        return;
    }

    ngx_ws_relay_redis_link_ready(link);
    ngx_ws_relay_bus_count_ready();

    ngx_ws_relay_presence_ready();
}


/* every user of this worker is subscribed again, in batches */

static void
ngx_ws_relay_bus_sub_ready(void)
{
    ngx_queue_t                 *q, *users;
    ngx_ws_relay_bus_t          *bus;
    ngx_ws_relay_user_t         *user;
    ngx_ws_relay_redis_batch_t   b;

    bus = &ngx_ws_relay_bus;

    ngx_ws_relay_redis_link_ready(&bus->sub);
    ngx_ws_relay_bus_count_ready();

    if (ngx_ws_relay_redis_batch_init(&b, &bus->sub, ngx_ws_relay_bus_message,
                                      NULL, "SUBSCRIBE", NULL,
                                      bus->user_prefix.len
                                      + NGX_WS_RELAY_MAX_USER_ID + 1)
        != NGX_OK)
    {
        return;
    }

    users = ngx_ws_relay_registry_users();

    for (q = ngx_queue_head(users);
         q != ngx_queue_sentinel(users);
         q = ngx_queue_next(q))
    {
        user = ngx_queue_data(q, ngx_ws_relay_user_t, queue);
        ngx_ws_relay_redis_batch_add(&b, &bus->user_prefix, &user->sn.str,
                                     "}");
    }

    ngx_ws_relay_redis_batch_done(&b);
}


static void
ngx_ws_relay_bus_count_ready(void)
{
    ngx_ws_relay_bus_t  *bus;

    bus = &ngx_ws_relay_bus;

    if (!bus->cmd.ready || !bus->sub.ready) {
        return;
    }

    if (bus->was_up) {
        ngx_ws_relay_stat_add(redis_reconnects, 1);
    }

    bus->was_up = 1;
    ngx_ws_relay_stat_set(redis_state, NGX_WS_RELAY_BUS_UP);
}


/*
 * hiredis has no timers: this one cuts the links that stall, probes the
 * bus, and refreshes the presence lease.
 */

static void
ngx_ws_relay_bus_watchdog(ngx_event_t *ev)
{
    ngx_msec_t           now, interval;
    ngx_ws_relay_bus_t  *bus;

    bus = ev->data;
    now = ngx_current_msec;
    interval = ngx_max(bus->conf->timeout / 2, 50);

    if (now - bus->watchdog_due > interval) {
        /*
         * The worker itself was busy for longer than an interval: Redis
         * could not be heard meanwhile, so its silence proves nothing.
         */
        ngx_log_error(NGX_LOG_WARN, bus->log, 0,
                      "ws relay: the worker was busy for %M ms: Redis "
                      "timeouts count again from now",
                      now - bus->watchdog_due);

        ngx_ws_relay_redis_link_restart_clock(&bus->cmd, now);
        ngx_ws_relay_redis_link_restart_clock(&bus->sub, now);
        bus->ping_sent = now;
    }

    ngx_ws_relay_redis_link_check(&bus->cmd, now);
    ngx_ws_relay_redis_link_check(&bus->sub, now);

    if (bus->cmd.ready && bus->sub.ready) {
        ngx_ws_relay_bus_probe(now);
    }

    ngx_ws_relay_presence_tick(now);
    ngx_ws_relay_sentinel_tick(now);

    bus->watchdog_due = now + interval;
    ngx_add_timer(ev, interval);
}


static void
ngx_ws_relay_bus_probe(ngx_msec_t now)
{
    u_char               buf[NGX_WS_RELAY_WIRE_HEAD_LEN];
    ngx_str_t            ping;
    ngx_ws_relay_bus_t  *bus;

    bus = &ngx_ws_relay_bus;

    if (bus->ping_in_flight) {
        /* a busy subscriber is alive: only silence counts */
        if (now - bus->ping_sent > bus->conf->timeout
            && now - bus->sub.progress > bus->conf->timeout)
        {
            ngx_ws_relay_redis_link_drop(&bus->sub, "subscriber timed out");
        }

        return;
    }

    ping.data = buf;
    ping.len = ngx_ws_relay_wire_ping(buf, ++bus->ping_seq) - buf;

    if (ngx_ws_relay_bus_publish_to(NGX_WS_RELAY_WIRE_NODE,
                                    &ngx_ws_relay_worker.node_id, &ping, 1,
                                    ngx_ws_relay_redis_link_reply, &bus->cmd)
        == NGX_OK)
    {
        bus->ping_in_flight = 1;
        bus->ping_sent = now;
        ngx_gettimeofday(&bus->ping_sent_tv);
    }
}


/*
 * One PUBLISH per message, or one call of the history script when the
 * message is to be kept (h: the sender's ws_relay_history).  NGX_OK: the
 * worker's own connections get their copies from the publication;
 * NGX_DECLINED: a plain PUBLISH, or no Redis to reach other workers with:
 * the caller delivers the local copies.
 */

ngx_int_t
ngx_ws_relay_bus_publish(ngx_str_t *user_id, ngx_str_t *text, uint64_t id,
    ngx_ws_relay_history_conf_t *h, ngx_uint_t *stored)
{
    u_char               head[NGX_WS_RELAY_WIRE_HEAD_LEN];
    u_char               ttl[NGX_INT_T_LEN], meta_ttl[NGX_INT_T_LEN];
    u_char               size[NGX_INT_T_LEN], *p;
    ngx_str_t            parts[3], args[7];
    ngx_ws_relay_bus_t  *bus;

    bus = &ngx_ws_relay_bus;
    *stored = 0;

    if (!bus->cmd.ready) {
        return NGX_ERROR;
    }

    parts[0] = ngx_ws_relay_worker.node_id;
    parts[1].data = head;
    parts[2] = *text;

    if (h && h->size) {

        ngx_log_debug2(NGX_LOG_DEBUG_HTTP, bus->log, 0,
                       "ws relay: delivery %uL: stored and published to "
                       "\"%V\"", id, user_id);

        /* the script adds "<id> <JSON>" to "<node> <delivery id>:" */

        p = ngx_cpymem(head, parts[0].data, parts[0].len);
        p = ngx_ws_relay_wire_user_head(p, id, 1);

        ngx_str_set(&args[0], "p");
        args[1].data = ttl;
        args[1].len = ngx_sprintf(ttl, "%M", h->ttl) - ttl;
        args[2].data = size;
        args[2].len = ngx_sprintf(size, "%ui", h->size) - size;
        args[3].data = meta_ttl;
        args[3].len = ngx_sprintf(meta_ttl, "%M", h->meta_ttl) - meta_ttl;

        args[4].data = bus->keys + 2 * bus->key_size;
        args[4].len = ngx_ws_relay_wire_channel(args[4].data,
                                                &bus->conf->prefix,
                                                NGX_WS_RELAY_WIRE_USER,
                                                user_id)
                      - args[4].data;

        args[5].data = head;
        args[5].len = p - head;
        args[6] = *text;

        if (ngx_ws_relay_bus_history(user_id, args, 7,
                                     ngx_ws_relay_bus_stored,
                                     (void *) (uintptr_t) id)
            == NGX_OK)
        {
            *stored = 1;
            return NGX_OK;
        }

        return NGX_ERROR;
    }

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, bus->log, 0,
                   "ws relay: delivery %uL: PUBLISH to \"%V\"", id, user_id);

    parts[1].len = ngx_ws_relay_wire_user_head(head, id, 0) - head;

    return ngx_ws_relay_bus_publish_to(NGX_WS_RELAY_WIRE_USER, user_id, parts,
                                       3, ngx_ws_relay_bus_published,
                                       (void *) (uintptr_t) id);
}


static ngx_int_t
ngx_ws_relay_bus_publish_to(const char *kind, ngx_str_t *name,
    ngx_str_t *parts, ngx_uint_t nparts, redisCallbackFn *fn, void *privdata)
{
    u_char              *p, *start;
    ngx_ws_relay_bus_t  *bus;

    bus = &ngx_ws_relay_bus;

    start = ngx_ws_relay_bus_buffer(
                ngx_ws_relay_wire_publish_len(&bus->conf->prefix, kind, name,
                                              parts, nparts));
    if (start == NULL) {
        return NGX_ERROR;
    }

    p = ngx_ws_relay_wire_publish(start, &bus->conf->prefix, kind, name,
                                  parts, nparts);

    return ngx_ws_relay_redis_link_send(&bus->cmd, fn, privdata, start,
                                        p - start);
}


/* EVALSHA of the history script on the keys of a user, with args */

ngx_int_t
ngx_ws_relay_bus_history(ngx_str_t *user_id, ngx_str_t *args, ngx_uint_t n,
    ngx_ws_relay_bus_reply_pt fn, void *privdata)
{
    u_char              *p, *start;
    size_t               len;
    ngx_str_t            argv[5 + NGX_WS_RELAY_HISTORY_ARGS];
    ngx_uint_t           i;
    ngx_ws_relay_bus_t  *bus;

    bus = &ngx_ws_relay_bus;

    if (!bus->cmd.ready || n > NGX_WS_RELAY_HISTORY_ARGS) {
        return NGX_ERROR;
    }

    ngx_str_set(&argv[0], "EVALSHA");
    argv[1].data = ngx_ws_relay_history_sha;
    argv[1].len = 40;
    ngx_str_set(&argv[2], "2");

    argv[3].data = bus->keys;
    argv[3].len = ngx_ws_relay_wire_channel(argv[3].data, &bus->conf->prefix,
                                            NGX_WS_RELAY_HISTORY_STREAM,
                                            user_id)
                  - argv[3].data;

    argv[4].data = bus->keys + bus->key_size;
    argv[4].len = ngx_ws_relay_wire_channel(argv[4].data, &bus->conf->prefix,
                                            NGX_WS_RELAY_HISTORY_META,
                                            user_id)
                  - argv[4].data;

    for (i = 0; i < n; i++) {
        argv[5 + i] = args[i];
    }

    len = ngx_ws_relay_wire_command_len(argv, 5 + n);

    start = ngx_ws_relay_bus_buffer(len);
    if (start == NULL) {
        return NGX_ERROR;
    }

    p = ngx_ws_relay_wire_command(start, argv, 5 + n);

    return ngx_ws_relay_redis_link_send(&bus->cmd, fn, privdata, start,
                                        p - start);
}


/*
 * A reply of the history script: NGX_OK, or NGX_ERROR when there is none
 * (the link went) or it is an error.  A script that Redis forgot (a
 * restart, SCRIPT FLUSH) is loaded again for the next calls.
 */

ngx_int_t
ngx_ws_relay_bus_history_reply(redisReply *reply, const char *what)
{
    ngx_ws_relay_redis_link_t  *link;

    link = &ngx_ws_relay_bus.cmd;

    if (reply == NULL) {
        return NGX_ERROR;
    }

    ngx_ws_relay_redis_link_replied(link);

    if (!ngx_ws_relay_redis_link_is_error(link, reply, what)) {
        return NGX_OK;
    }

    if (reply->len >= 8 && ngx_strncmp(reply->str, "NOSCRIPT", 8) == 0
        && link->ac)
    {
        (void) ngx_ws_relay_redis_link_command(link,
                                   ngx_ws_relay_bus_script_loaded, link,
                                   "SCRIPT LOAD %b",
                                   ngx_ws_relay_history_script.data,
                                   ngx_ws_relay_history_script.len);
    }

    return NGX_ERROR;
}


/* the history script stored and published a message: { id, receivers } */

static void
ngx_ws_relay_bus_stored(redisAsyncContext *ac, void *r, void *privdata)
{
    redisReply  *reply = r;

    uint64_t    id;
    ngx_str_t   hid;

    id = (uintptr_t) privdata;

    if (ngx_ws_relay_bus.cmd.ac != ac
        || ngx_ws_relay_bus_history_reply(reply, "history") != NGX_OK)
    {
        ngx_ws_relay_delivery_unstored(id);
        return;
    }

    if (reply->type == REDIS_REPLY_ARRAY && reply->elements == 2
        && reply->element[0]->type == REDIS_REPLY_STRING
        && reply->element[1]->type == REDIS_REPLY_INTEGER)
    {
        hid.data = (u_char *) reply->element[0]->str;
        hid.len = reply->element[0]->len;

    } else {
        ngx_str_null(&hid);
    }

    if (ngx_ws_relay_wire_id_valid(&hid) != NGX_OK) {
        ngx_log_error(NGX_LOG_ERR, ngx_ws_relay_bus.log, 0,
                      "ws relay: redis history script answered with an "
                      "unexpected reply");
        ngx_ws_relay_delivery_unstored(id);
        return;
    }

    ngx_ws_relay_stat_add(history_stored, 1);

    ngx_ws_relay_delivery_stored(id, &hid);
    ngx_ws_relay_delivery_published(id, (ngx_int_t) reply->element[1]->integer);
}


static void
ngx_ws_relay_bus_published(redisAsyncContext *ac, void *r, void *privdata)
{
    redisReply  *reply = r;

    uint64_t                    id;
    ngx_ws_relay_redis_link_t  *link;

    id = (uintptr_t) privdata;
    link = &ngx_ws_relay_bus.cmd;

    if (reply == NULL || link->ac != ac) {
        ngx_ws_relay_delivery_published(id, -1);
        return;
    }

    ngx_ws_relay_redis_link_replied(link);

    if (reply->type != REDIS_REPLY_INTEGER) {
        if (!ngx_ws_relay_redis_link_is_error(link, reply, "PUBLISH")) {
            ngx_log_error(NGX_LOG_ERR, link->log, 0,
                          "ws relay: redis PUBLISH answered with type %d",
                          reply->type);
        }

        ngx_ws_relay_delivery_published(id, -1);
        return;
    }

    ngx_ws_relay_delivery_published(id, (ngx_int_t) reply->integer);
}


/* everything the subscriber link receives */

static void
ngx_ws_relay_bus_message(redisAsyncContext *ac, void *r, void *privdata)
{
    redisReply  *reply = r;

    ngx_int_t                  rc;
    ngx_str_t                  user_id;
    ngx_ws_relay_bus_t        *bus;
    ngx_ws_relay_wire_push_t   push;

    bus = &ngx_ws_relay_bus;

    if (reply == NULL || bus->sub.ac != ac) {
        return;
    }

    bus->sub.progress = ngx_current_msec;

    rc = ngx_ws_relay_wire_parse_push(reply, &push);

    if (rc == NGX_DECLINED) {
        /* unsubscribe confirmations */
        return;
    }

    if (rc == NGX_OK) {

        if (push.channel.len == bus->node_channel.len
            && ngx_strncmp(push.channel.data, bus->node_channel.data,
                           push.channel.len)
               == 0)
        {
            if (!push.subscribed) {
                ngx_ws_relay_bus_node_message(&push.payload);

            } else if (!bus->sub.ready) {
                ngx_ws_relay_bus_sub_ready();
            }

            return;
        }

        if (ngx_ws_relay_wire_channel_name(&push.channel, &bus->conf->prefix,
                                           NGX_WS_RELAY_WIRE_USER, &user_id)
            == NGX_OK)
        {
            if (push.subscribed) {
                ngx_ws_relay_bus_user_subscribed(&user_id);

            } else {
                ngx_ws_relay_bus_user_message(&user_id, &push.payload);
            }

            return;
        }

        if (push.subscribed) {
            return;
        }
    }

    ngx_log_error(NGX_LOG_ERR, bus->log, 0,
                  "ws relay: redis subscriber link: unexpected reply of "
                  "type %d ignored", reply->type);
}


/* a message for a user of this worker: delivered, then acked */

static void
ngx_ws_relay_bus_user_message(ngx_str_t *user_id, ngx_str_t *payload)
{
    u_char               buf[NGX_WS_RELAY_WIRE_HEAD_LEN], *p;
    uint64_t             id;
    ngx_str_t            origin, json, text, hid, ack, *node;
    ngx_uint_t           n, ours;
    ngx_ws_relay_bus_t  *bus;

    bus = &ngx_ws_relay_bus;
    node = &ngx_ws_relay_worker.node_id;

    if (ngx_ws_relay_wire_parse_user(payload, &origin, &id, &hid, &json)
        != NGX_OK
        || (hid.len && (json.len < 2 || json.data[json.len - 1] != '}')))
    {
        ngx_log_error(NGX_LOG_ERR, bus->log, 0,
                      "ws relay: malformed message on the channel of user "
                      "\"%V\" ignored", user_id);
        return;
    }

    ours = (origin.len == node->len
            && ngx_strncmp(origin.data, node->data, node->len) == 0);

    if (hid.len == 0) {

        if (ours) {
            /* delivered locally when it was sent */
            ngx_ws_relay_delivery_acked(id, 0);
            return;
        }

        n = ngx_ws_relay_delivery_local(user_id, &json, NULL);

    } else {
        /* a kept message: every copy has its id */

        p = ngx_ws_relay_json_scratch(
                           ngx_ws_relay_wire_id_text_len(&json, &hid));
        if (p == NULL) {
            return;
        }

        text.data = p;
        text.len = ngx_ws_relay_wire_id_text(p, &json, &hid) - p;

        n = ngx_ws_relay_delivery_local(user_id, &text, &hid);

        if (ours) {
            ngx_ws_relay_delivery_stored(id, &hid);
            ngx_ws_relay_delivery_acked(id, n);
            return;
        }
    }

    ngx_log_debug4(NGX_LOG_DEBUG_HTTP, bus->log, 0,
                   "ws relay: delivery %uL from %V to \"%V\": "
                   "%ui local connections, ack", id, &origin, user_id, n);

    ack.data = buf;
    ack.len = ngx_ws_relay_wire_ack(buf, id, n) - buf;

    (void) ngx_ws_relay_bus_publish_to(NGX_WS_RELAY_WIRE_NODE, &origin,
                                       &ack, 1, ngx_ws_relay_redis_link_reply,
                                       &bus->cmd);
}


static void
ngx_ws_relay_bus_node_message(ngx_str_t *payload)
{
    ngx_ws_relay_bus_t        *bus;
    ngx_ws_relay_wire_node_t   m;

    bus = &ngx_ws_relay_bus;

    if (ngx_ws_relay_wire_parse_node(payload, &m) != NGX_OK) {
        ngx_log_error(NGX_LOG_ERR, bus->log, 0,
                      "ws relay: malformed message on the node channel "
                      "ignored: \"%V\"", payload);
        return;
    }

    if (m.type == NGX_WS_RELAY_WIRE_ACK) {
        ngx_log_debug2(NGX_LOG_DEBUG_HTTP, bus->log, 0,
                       "ws relay: delivery %uL: ack received: %uL",
                       m.id, m.count);

        ngx_ws_relay_delivery_acked(m.id, (ngx_uint_t) m.count);
        return;
    }

    if (bus->ping_in_flight && m.id == bus->ping_seq) {
        bus->ping_in_flight = 0;
        ngx_ws_relay_bus_measure_rtt();

        /* a full round trip: the links work, the next loss backs off anew */
        bus->cmd.backoff = 0;
        bus->sub.backoff = 0;
    }
}


/* the worker hears the channel of a user now */

static void
ngx_ws_relay_bus_user_subscribed(ngx_str_t *user_id)
{
    ngx_ws_relay_user_t  *user;

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, ngx_ws_relay_bus.log, 0,
                   "ws relay: redis channel of \"%V\" subscribed", user_id);

    user = ngx_ws_relay_registry_find_user(user_id);

    if (user) {
        ngx_ws_relay_history_subscribed(user);
    }
}


/* while a link is not ready, its catching up will carry the user */

void
ngx_ws_relay_bus_user_joined(ngx_str_t *user_id)
{
    if (ngx_ws_relay_bus.conf == NULL) {
        return;
    }

    if (ngx_ws_relay_bus_subscription("SUBSCRIBE", user_id) == NGX_OK) {
        /* on its way before the client hears that it is registered */
        redisAsyncHandleWrite(ngx_ws_relay_bus.sub.ac);
    }

    ngx_ws_relay_presence_joined(user_id);
}


/*
 * hiredis (Debian's 0.14.1 and 1.x) counts pending subscriptions per
 * channel, so an UNSUBSCRIBE followed at once by a SUBSCRIBE of the same
 * channel keeps its callback.
 */

void
ngx_ws_relay_bus_user_left(ngx_str_t *user_id)
{
    if (ngx_ws_relay_bus.conf == NULL) {
        return;
    }

    (void) ngx_ws_relay_bus_subscription("UNSUBSCRIBE", user_id);

    ngx_ws_relay_presence_left(user_id);
}


static ngx_int_t
ngx_ws_relay_bus_subscription(const char *command, ngx_str_t *user_id)
{
    u_char              *p, *start;
    ngx_ws_relay_bus_t  *bus;

    bus = &ngx_ws_relay_bus;

    if (!bus->sub.ready) {
        return NGX_DECLINED;
    }

    start = ngx_ws_relay_bus_buffer(bus->user_prefix.len + user_id->len + 1);
    if (start == NULL) {
        return NGX_ERROR;
    }

    p = ngx_cpymem(start, bus->user_prefix.data, bus->user_prefix.len);
    p = ngx_cpymem(p, user_id->data, user_id->len);
    *p++ = '}';

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, bus->log, 0,
                   "ws relay: redis %s \"%V\"", command, user_id);

    if (redisAsyncCommand(bus->sub.ac, ngx_ws_relay_bus_message, NULL,
                          "%s %b", command, start, (size_t) (p - start))
        != REDIS_OK)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


static u_char *
ngx_ws_relay_bus_buffer(size_t size)
{
    u_char              *p;
    ngx_ws_relay_bus_t  *bus;

    bus = &ngx_ws_relay_bus;

    if (size > bus->buf_size) {
        size = ngx_max(size, 2 * bus->buf_size);
        size = ngx_max(size, 4096);

        p = ngx_alloc(size, bus->log);
        if (p == NULL) {
            return NULL;
        }

        if (bus->buf) {
            ngx_free(bus->buf);
        }

        bus->buf = p;
        bus->buf_size = size;
    }

    return bus->buf;
}


/* a full trip: command link, Redis, subscriber link */

static void
ngx_ws_relay_bus_measure_rtt(void)
{
    int64_t         us;
    struct timeval  tv;

    ngx_gettimeofday(&tv);

    us = (int64_t) (tv.tv_sec - ngx_ws_relay_bus.ping_sent_tv.tv_sec)
         * 1000000
         + (tv.tv_usec - ngx_ws_relay_bus.ping_sent_tv.tv_usec);

    ngx_ws_relay_stat_set(redis_rtt_us, (ngx_atomic_uint_t) ngx_max(us, 0));
}


ngx_ws_relay_bus_state_e
ngx_ws_relay_bus_state(void)
{
    ngx_ws_relay_bus_t  *bus;

    bus = &ngx_ws_relay_bus;

    if (bus->conf == NULL) {
        return NGX_WS_RELAY_BUS_OFF;
    }

    if (bus->cmd.ready && bus->sub.ready) {
        return NGX_WS_RELAY_BUS_UP;
    }

    if (bus->cmd.ac || bus->sub.ac) {
        return NGX_WS_RELAY_BUS_CONNECTING;
    }

    return NGX_WS_RELAY_BUS_DOWN;
}


const char *
ngx_ws_relay_bus_state_name(ngx_ws_relay_bus_state_e state)
{
    static const char  *names[] = {
        "disabled", "disconnected", "connecting", "connected"
    };

    return names[state];
}
