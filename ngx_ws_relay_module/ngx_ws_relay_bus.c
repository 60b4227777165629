
/*
 * Copyright (C) ngx_ws_relay_module authors
 */


#include "ngx_ws_relay.h"
#include "ngx_ws_relay_bus.h"
#include "ngx_ws_relay_bus_wire.h"
#include "ngx_ws_relay_cluster.h"
#include "ngx_ws_relay_delivery.h"
#include "ngx_ws_relay_history.h"
#include "ngx_ws_relay_json.h"
#include "ngx_ws_relay_presence.h"
#include "ngx_ws_relay_redis_link.h"
#include "ngx_ws_relay_registry.h"
#include "ngx_ws_relay_sentinel.h"
#include "ngx_ws_relay_shm.h"


/*
 * A worker has two links to each Redis master it uses, a shard: one for
 * commands and one for subscriptions.  With one Redis (or the master the
 * sentinels name) there is one shard; in a Redis Cluster one per master,
 * and every key and channel goes to the shard that owns its hash slot.
 *
 * A worker subscribes to the channel of a user while it holds a
 * connection of that user, and to its own node channel; the messages are
 * those of ngx_ws_relay_bus_wire.h.  PUBLISH's reply says how many acks
 * to wait for; a worker skips (and acks for itself) its own publications.
 * A ping through each shard proves that the whole round trip works: on
 * the shard of the node channel through it, on the others through a
 * channel of the worker's own that the shard owns.
 *
 * In a cluster, user channels are sharded (SSUBSCRIBE, SPUBLISH), the
 * subscriber links read their replies themselves (hiredis 0.14 does not
 * know sharded pushes), commands follow MOVED and ASK, and a new slot map
 * (ngx_ws_relay_cluster.c) moves the subscriptions of every shard whose
 * slots changed: its subscriber link connects again.
 *
 * A message stored in a user's history is published by the history
 * script, with its id: then the worker delivers its own connections'
 * copies when its own publication comes back, so that every copy of
 * every message of a user goes out in the order of the ids.  While a
 * subscriber link is down, the worker hears nothing of its shard, its own
 * messages included: when it hears the users again, their connections
 * catch up from the history (ngx_ws_relay_history_subscribed()).
 */


#define NGX_WS_RELAY_BUS_SHARDS     NGX_WS_RELAY_CLUSTER_MASTERS
#define NGX_WS_RELAY_BUS_NONE       NGX_WS_RELAY_CLUSTER_NONE

/* a command follows this many redirections at most */
#define NGX_WS_RELAY_BUS_REDIRECTS  5

/* "n:{<8 hex digits>}" */
#define NGX_WS_RELAY_BUS_NODE_KIND_LEN  sizeof("n:{12345678}")


typedef struct {
    ngx_ws_relay_redis_link_t       cmd;
    ngx_ws_relay_redis_link_t       sub;

    /* a cluster's master: its own copy of the address */
    ngx_ws_relay_redis_endpoint_t   endpoint;
    u_char                          host[NGX_SOCKADDR_STRLEN + 1];
    u_char                          names[2][NGX_SOCKADDR_STRLEN
                                             + sizeof("subscriber :")
                                             + NGX_INT_T_LEN];

    /* the channel this shard's probe goes through */
    ngx_str_t                       probe;

    uint64_t                        ping_seq;
    struct timeval                  ping_sent_tv;
    ngx_msec_t                      ping_sent;
    unsigned                        ping_in_flight:1;
    unsigned                        used:1;
} ngx_ws_relay_bus_shard_t;


typedef struct {
    ngx_ws_relay_redis_conf_t      *conf;
    ngx_log_t                      *log;

    ngx_ws_relay_bus_shard_t       *shards;
    ngx_uint_t                      nshards;

    ngx_str_t                       node_channel;
    ngx_str_t                       user_prefix;

    ngx_event_t                     watchdog;
    ngx_msec_t                      watchdog_due;

    /* the sentinels named a master before, or a cluster gave a map */
    unsigned                        master_known:1;
    unsigned                        was_up:1;
    unsigned                        cluster:1;

    /* one command at a time is built here: hiredis copies what it sends */
    u_char                         *buf;
    size_t                          buf_size;

    /* and a channel whose slot is wanted */
    u_char                         *chan;
    size_t                          chan_size;

    /* a user's two keys and channel, key_size bytes each at most */
    u_char                         *keys;
    size_t                          key_size;

    /* a cluster: slot -> shard, or NGX_WS_RELAY_BUS_NONE */
    u_char                         *map;

    /* commands waiting for a master the map does not know yet */
    ngx_queue_t                     waiting;
    ngx_event_t                     retry;
} ngx_ws_relay_bus_t;


/*
 * A command on its way in a cluster, kept to follow a redirection; one
 * sent to a master not known yet waits for the next map.
 */
typedef struct {
    redisCallbackFn                *fn;
    void                           *privdata;
    ngx_queue_t                     queue;
    ngx_msec_t                      since;
    ngx_uint_t                      slot;
    ngx_uint_t                      redirects;
    size_t                          len;
    u_char                          cmd[1];
} ngx_ws_relay_bus_request_t;


static void ngx_ws_relay_bus_shard_init(ngx_ws_relay_bus_shard_t *shard,
    ngx_ws_relay_redis_endpoint_t *ep);
static void ngx_ws_relay_bus_cmd_connected(ngx_ws_relay_redis_link_t *link);
static void ngx_ws_relay_bus_sub_connected(ngx_ws_relay_redis_link_t *link);
static void ngx_ws_relay_bus_lost(ngx_ws_relay_redis_link_t *link);
static void ngx_ws_relay_bus_forget(ngx_ws_relay_bus_shard_t *shard);
static void ngx_ws_relay_bus_cmd_ready(redisAsyncContext *ac, void *r,
    void *privdata);
static void ngx_ws_relay_bus_sub_ready(ngx_ws_relay_bus_shard_t *shard);
static void ngx_ws_relay_bus_count_ready(void);
static void ngx_ws_relay_bus_watchdog(ngx_event_t *ev);
static void ngx_ws_relay_bus_probe(ngx_ws_relay_bus_shard_t *shard,
    ngx_msec_t now);
static void ngx_ws_relay_bus_probe_sent(redisAsyncContext *ac, void *r,
    void *privdata);
static ngx_int_t ngx_ws_relay_bus_publish_to(const char *kind,
    ngx_str_t *name, ngx_str_t *parts, ngx_uint_t nparts,
    redisCallbackFn *fn, void *privdata);
static ngx_int_t ngx_ws_relay_bus_send(ngx_ws_relay_bus_shard_t *shard,
    redisCallbackFn *fn, void *privdata, u_char *cmd, size_t len);
static void ngx_ws_relay_bus_redirected(redisAsyncContext *ac, void *r,
    void *privdata);
static void ngx_ws_relay_bus_resend(ngx_event_t *ev);
static void ngx_ws_relay_bus_retry(ngx_uint_t give_up);
static ngx_uint_t ngx_ws_relay_bus_usable(ngx_ws_relay_bus_shard_t *shard);
static ngx_ws_relay_bus_shard_t *ngx_ws_relay_bus_shard_for(u_char *name,
    size_t len);
static ngx_ws_relay_bus_shard_t *ngx_ws_relay_bus_channel_shard(
    const char *kind, ngx_str_t *name);
static ngx_ws_relay_bus_shard_t *ngx_ws_relay_bus_shard_at(ngx_str_t *host,
    ngx_int_t port);
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
static void ngx_ws_relay_bus_subscribe_probe(ngx_ws_relay_bus_shard_t *shard);
static void ngx_ws_relay_bus_master_changed(void);
static void ngx_ws_relay_bus_topology(ngx_ws_relay_cluster_map_t *m);
static void ngx_ws_relay_bus_probes(void);
static void ngx_ws_relay_bus_message(redisAsyncContext *ac, void *r,
    void *privdata);
static void ngx_ws_relay_bus_raw(ngx_ws_relay_redis_link_t *link,
    redisReply *reply);
static void ngx_ws_relay_bus_push(ngx_ws_relay_bus_shard_t *shard,
    redisReply *reply);
static void ngx_ws_relay_bus_user_message(ngx_str_t *user_id,
    ngx_str_t *payload);
static void ngx_ws_relay_bus_user_subscribed(ngx_str_t *user_id);
static void ngx_ws_relay_bus_user_unsubscribed(ngx_str_t *user_id);
static void ngx_ws_relay_bus_node_message(ngx_ws_relay_bus_shard_t *shard,
    ngx_str_t *payload);
static ngx_int_t ngx_ws_relay_bus_subscription(
    ngx_ws_relay_bus_shard_t *shard, const char *command, ngx_str_t *user_id);
static u_char *ngx_ws_relay_bus_buffer(size_t size);
static const char *ngx_ws_relay_bus_node_kind(ngx_str_t *node, u_char *buf);
static void ngx_ws_relay_bus_measure_rtt(ngx_ws_relay_bus_shard_t *shard);


static ngx_ws_relay_bus_t  ngx_ws_relay_bus;


#define ngx_ws_relay_bus_shard_index(shard)                                   \
    ((ngx_uint_t) ((shard) - ngx_ws_relay_bus.shards))


ngx_int_t
ngx_ws_relay_bus_init_worker(ngx_cycle_t *cycle)
{
    u_char                     *p, kind[NGX_WS_RELAY_BUS_NODE_KIND_LEN];
    ngx_str_t                  *node;
    ngx_uint_t                  i;
    ngx_ws_relay_bus_t         *bus;
    ngx_ws_relay_redis_conf_t  *rcf;

    bus = &ngx_ws_relay_bus;
    rcf = &ngx_ws_relay_worker.main_conf->redis;

    if (!rcf->enabled) {
        return NGX_OK;
    }

    bus->conf = rcf;
    bus->log = cycle->log;
    bus->cluster = rcf->cluster;

    /* the time cached before the fork may be old: timeouts count from now */
    ngx_time_update();

    node = &ngx_ws_relay_worker.node_id;

    p = ngx_pnalloc(cycle->pool, 2 * rcf->prefix.len + node->len
                                 + NGX_WS_RELAY_BUS_NODE_KIND_LEN
                                 + sizeof(NGX_WS_RELAY_WIRE_USER) - 1);
    if (p == NULL) {
        return NGX_ERROR;
    }

    bus->node_channel.data = p;
    p = ngx_ws_relay_wire_channel(p, &rcf->prefix,
                                  ngx_ws_relay_bus_node_kind(node, kind),
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

    bus->nshards = bus->cluster ? NGX_WS_RELAY_BUS_SHARDS : 1;

    bus->shards = ngx_pcalloc(cycle->pool,
                              bus->nshards * sizeof(ngx_ws_relay_bus_shard_t));
    if (bus->shards == NULL) {
        return NGX_ERROR;
    }

    /* a probe's channel: the node channel, or it with a hash tag */

    for (i = 0; i < bus->nshards; i++) {
        bus->shards[i].probe.data = ngx_pnalloc(cycle->pool,
                                                bus->node_channel.len
                                                + sizeof("n:{}")
                                                + NGX_INT_T_LEN);
        if (bus->shards[i].probe.data == NULL) {
            return NGX_ERROR;
        }
    }

    if (ngx_ws_relay_presence_init(rcf, cycle) != NGX_OK) {
        return NGX_ERROR;
    }

    bus->watchdog.handler = ngx_ws_relay_bus_watchdog;
    bus->watchdog.data = bus;
    bus->watchdog.log = cycle->log;
    bus->watchdog.cancelable = 1;

    if (bus->cluster) {
        bus->map = ngx_pnalloc(cycle->pool, NGX_WS_RELAY_WIRE_SLOTS);
        if (bus->map == NULL) {
            return NGX_ERROR;
        }

        ngx_memset(bus->map, NGX_WS_RELAY_BUS_NONE, NGX_WS_RELAY_WIRE_SLOTS);

        ngx_queue_init(&bus->waiting);

        bus->retry.handler = ngx_ws_relay_bus_resend;
        bus->retry.data = bus;
        bus->retry.log = cycle->log;
        bus->retry.cancelable = 1;

        /* the shards come with the first slot map */
        if (ngx_ws_relay_cluster_init(cycle, rcf, ngx_ws_relay_bus_topology)
            != NGX_OK)
        {
            return NGX_ERROR;
        }

    } else {
        ngx_ws_relay_bus_shard_init(&bus->shards[0], rcf->endpoints->elts);

        bus->shards[0].probe.len = ngx_cpymem(bus->shards[0].probe.data,
                                              bus->node_channel.data,
                                              bus->node_channel.len)
                                   - bus->shards[0].probe.data;

        if (rcf->sentinels
            && ngx_ws_relay_sentinel_init(cycle, rcf, rcf->endpoints->elts,
                                          ngx_ws_relay_bus_master_changed)
               != NGX_OK)
        {
            return NGX_ERROR;
        }

        ngx_ws_relay_redis_link_connect(&bus->shards[0].cmd);
        ngx_ws_relay_redis_link_connect(&bus->shards[0].sub);
    }

    ngx_ws_relay_stat_set(redis_state, ngx_ws_relay_bus_state());

    bus->watchdog_due = ngx_current_msec + ngx_max(rcf->timeout / 2, 50);
    ngx_add_timer(&bus->watchdog, ngx_max(rcf->timeout / 2, 50));

    return NGX_OK;
}


/* a shard's two links to ep (kept as it is: the sentinels rewrite it) */

static void
ngx_ws_relay_bus_shard_init(ngx_ws_relay_bus_shard_t *shard,
    ngx_ws_relay_redis_endpoint_t *ep)
{
    ngx_ws_relay_bus_t  *bus;

    bus = &ngx_ws_relay_bus;

    ngx_memzero(&shard->cmd, sizeof(ngx_ws_relay_redis_link_t));
    ngx_memzero(&shard->sub, sizeof(ngx_ws_relay_redis_link_t));

    shard->used = 1;
    shard->ping_in_flight = 0;

    shard->cmd.name = "commands";
    shard->cmd.endpoint = ep;
    shard->cmd.conf = bus->conf;
    shard->cmd.log = bus->log;
    shard->cmd.connected = ngx_ws_relay_bus_cmd_connected;
    shard->cmd.lost = ngx_ws_relay_bus_lost;
    shard->cmd.data = shard;

    shard->sub = shard->cmd;
    shard->sub.name = "subscriber";
    shard->sub.connected = ngx_ws_relay_bus_sub_connected;
    shard->sub.subscriber = 1;

    if (bus->cluster) {
        ngx_sprintf(shard->names[0], "commands %s:%i%Z",
                    ep->host.data, ep->port);
        ngx_sprintf(shard->names[1], "subscriber %s:%i%Z",
                    ep->host.data, ep->port);

        shard->cmd.name = (const char *) shard->names[0];
        shard->sub.name = (const char *) shard->names[1];
        shard->cmd.cluster = 1;
        shard->sub.cluster = 1;
        shard->sub.raw = 1;
        shard->sub.push = ngx_ws_relay_bus_raw;
    }
}


void
ngx_ws_relay_bus_exit_worker(void)
{
    ngx_uint_t           i;
    ngx_ws_relay_bus_t  *bus;

    bus = &ngx_ws_relay_bus;

    if (bus->conf == NULL) {
        return;
    }

    ngx_ws_relay_presence_exit();
    ngx_ws_relay_sentinel_exit();
    ngx_ws_relay_cluster_exit();

    if (bus->cluster) {
        if (bus->retry.timer_set) {
            ngx_del_timer(&bus->retry);
        }

        ngx_ws_relay_bus_retry(1);
    }

    for (i = 0; i < bus->nshards; i++) {
        if (bus->shards[i].used) {
            ngx_ws_relay_redis_link_drop(&bus->shards[i].cmd, NULL);
            ngx_ws_relay_redis_link_drop(&bus->shards[i].sub, NULL);
        }
    }
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

    ngx_ws_relay_bus_shard_t  *shard;

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

    shard = link->data;

    if (shard->sub.ac) {
        ngx_ws_relay_redis_link_drop(&shard->sub, "not a master");
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
        ngx_ws_relay_bus_subscribe_probe(link->data);
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
    ngx_ws_relay_bus_shard_t       *shard;
    ngx_ws_relay_redis_endpoint_t  *ep;

    bus = &ngx_ws_relay_bus;
    shard = &bus->shards[0];
    ep = shard->cmd.endpoint;

    ngx_log_error(NGX_LOG_NOTICE, bus->log, 0,
                  "ws relay: redis master is %s:%i", ep->host.data, ep->port);

    if (bus->master_known) {
        ngx_ws_relay_stat_add(redis_failovers, 1);
    }

    bus->master_known = 1;

    ngx_ws_relay_redis_link_drop(&shard->cmd, NULL);
    ngx_ws_relay_redis_link_drop(&shard->sub, NULL);
    ngx_ws_relay_bus_lost(&shard->sub);

    ngx_ws_relay_redis_link_connect(&shard->cmd);
    ngx_ws_relay_redis_link_connect(&shard->sub);
}


/*
 * A cluster's new slot map.  Masters that are new get a shard, masters
 * that are gone lose theirs (their users are forgotten there); a shard
 * whose slots changed connects its subscriber link again, which then
 * subscribes the users it owns now; the probes' channels follow.
 */

static void
ngx_ws_relay_bus_topology(ngx_ws_relay_cluster_map_t *m)
{
    u_char                     index[NGX_WS_RELAY_CLUSTER_MASTERS];
    u_char                     owns[NGX_WS_RELAY_CLUSTER_MASTERS];
    u_char                     moved[NGX_WS_RELAY_BUS_SHARDS];
    u_char                     fresh[NGX_WS_RELAY_BUS_SHARDS];
    u_char                     kept[NGX_WS_RELAY_BUS_SHARDS];
    ngx_uint_t                 i, k, slot, failovers;
    ngx_ws_relay_bus_t        *bus;
    ngx_ws_relay_bus_shard_t  *shard;

    bus = &ngx_ws_relay_bus;

    ngx_memzero(owns, sizeof(owns));
    ngx_memzero(moved, sizeof(moved));
    ngx_memzero(fresh, sizeof(fresh));
    ngx_memzero(kept, sizeof(kept));

    /* a master that owns no slot (a malformed answer) gets no shard */

    for (slot = 0; slot < NGX_WS_RELAY_WIRE_SLOTS; slot++) {
        if (m->map[slot] != NGX_WS_RELAY_CLUSTER_NONE) {
            owns[m->map[slot]] = 1;
        }
    }

    /* the masters that keep their shard */

    for (i = 0; i < m->nmasters; i++) {
        index[i] = NGX_WS_RELAY_BUS_NONE;

        shard = ngx_ws_relay_bus_shard_at(&m->masters[i].host,
                                          m->masters[i].port);

        if (owns[i] && shard) {
            k = ngx_ws_relay_bus_shard_index(shard);
            index[i] = (u_char) k;
            kept[k] = 1;
        }
    }

    /* the shards of masters that are gone, forgotten under the old map */

    for (k = 0; k < bus->nshards; k++) {
        shard = &bus->shards[k];

        if (!shard->used || kept[k]) {
            continue;
        }

        ngx_log_error(NGX_LOG_NOTICE, bus->log, 0,
                      "ws relay: redis cluster: %s:%i is no master "
                      "any more", shard->host, shard->endpoint.port);

        ngx_ws_relay_bus_forget(shard);
        ngx_ws_relay_redis_link_drop(&shard->cmd, NULL);
        ngx_ws_relay_redis_link_drop(&shard->sub, NULL);
        shard->used = 0;
    }

    /* new masters: free shards */

    for (i = 0; i < m->nmasters; i++) {
        if (!owns[i] || index[i] != NGX_WS_RELAY_BUS_NONE) {
            continue;
        }

        for (k = 0; k < bus->nshards; k++) {
            if (!bus->shards[k].used && !fresh[k]) {
                break;
            }
        }

        /* the cluster module keeps no more masters than there are shards */

        fresh[k] = 1;
        index[i] = (u_char) k;
    }

    /*
     * The shards whose slots change hands; failovers: slots of a master
     * that is gone going to a new one.
     */

    failovers = 0;

    for (slot = 0; slot < NGX_WS_RELAY_WIRE_SLOTS; slot++) {
        i = bus->map[slot];
        k = (m->map[slot] == NGX_WS_RELAY_CLUSTER_NONE)
            ? NGX_WS_RELAY_BUS_NONE : index[m->map[slot]];

        /* (a shard of a master that is gone may serve a new one now) */

        if (i == k && (k == NGX_WS_RELAY_BUS_NONE || !fresh[k])) {
            continue;
        }

        if (i != NGX_WS_RELAY_BUS_NONE && kept[i]) {
            moved[i] = 1;
        }

        if (k != NGX_WS_RELAY_BUS_NONE) {
            if (fresh[k] == 1 && i != NGX_WS_RELAY_BUS_NONE && !kept[i]
                && bus->master_known)
            {
                fresh[k] = 2;
                failovers++;
            }

            moved[k] = 1;
        }
    }

    /* a kept shard whose slots changed subscribes anew */

    for (k = 0; k < bus->nshards; k++) {
        shard = &bus->shards[k];

        if (kept[k] && moved[k] && shard->sub.ac) {
            ngx_ws_relay_bus_forget(shard);
            ngx_ws_relay_redis_link_drop(&shard->sub, NULL);
        }
    }

    for (slot = 0; slot < NGX_WS_RELAY_WIRE_SLOTS; slot++) {
        bus->map[slot] = (m->map[slot] == NGX_WS_RELAY_CLUSTER_NONE)
                         ? NGX_WS_RELAY_BUS_NONE : index[m->map[slot]];
    }

    ngx_ws_relay_bus_probes();

    for (i = 0; i < m->nmasters; i++) {
        k = index[i];

        if (k == NGX_WS_RELAY_BUS_NONE) {
            continue;
        }

        shard = &bus->shards[k];

        if (fresh[k]) {
            ngx_memcpy(shard->host, m->masters[i].host.data,
                       m->masters[i].host.len + 1);
            shard->endpoint.host.data = shard->host;
            shard->endpoint.host.len = m->masters[i].host.len;
            shard->endpoint.port = m->masters[i].port;
            ngx_str_null(&shard->endpoint.unix_path);

            ngx_log_error(NGX_LOG_NOTICE, bus->log, 0,
                          "ws relay: redis cluster: master %s:%i",
                          shard->host, shard->endpoint.port);

            ngx_ws_relay_bus_shard_init(shard, &shard->endpoint);
            ngx_ws_relay_redis_link_connect(&shard->cmd);
            ngx_ws_relay_redis_link_connect(&shard->sub);

        } else if (shard->sub.ac == NULL && !shard->sub.reconnect.timer_set) {
            ngx_ws_relay_redis_link_connect(&shard->sub);
        }
    }

    ngx_ws_relay_bus_retry(0);

    ngx_ws_relay_stat_add(redis_topology_refreshes, 1);
    ngx_ws_relay_stat_add(redis_failovers, failovers);

    bus->master_known = 1;

    ngx_ws_relay_stat_set(redis_state, ngx_ws_relay_bus_state());
}


/*
 * The channel each shard's probe goes through: the node channel on its
 * own shard, on another "<prefix>n:{<n>}<node>", n a number whose slot
 * that shard owns.
 */

static void
ngx_ws_relay_bus_probes(void)
{
    u_char                     *p, tag[NGX_INT_T_LEN];
    u_char                      kind[sizeof("n:{}") + NGX_INT_T_LEN];
    u_char                      owns[NGX_WS_RELAY_BUS_SHARDS];
    size_t                      len;
    ngx_uint_t                  k, n, slot, missing;
    ngx_ws_relay_bus_t         *bus;
    ngx_ws_relay_bus_shard_t   *shard;

    bus = &ngx_ws_relay_bus;

    ngx_memzero(owns, sizeof(owns));

    for (slot = 0; slot < NGX_WS_RELAY_WIRE_SLOTS; slot++) {
        if (bus->map[slot] != NGX_WS_RELAY_BUS_NONE) {
            owns[bus->map[slot]] = 1;
        }
    }

    for (k = 0; k < bus->nshards; k++) {
        bus->shards[k].probe.len = 0;
    }

    k = bus->map[ngx_ws_relay_wire_slot(bus->node_channel.data,
                                        bus->node_channel.len)];

    if (k != NGX_WS_RELAY_BUS_NONE) {
        shard = &bus->shards[k];
        shard->probe.len = ngx_cpymem(shard->probe.data,
                                      bus->node_channel.data,
                                      bus->node_channel.len)
                           - shard->probe.data;
        owns[k] = 0;
    }

    missing = 0;

    for (k = 0; k < bus->nshards; k++) {
        missing += owns[k];
    }

    /* a shard that owns s slots is found after 16384 / s numbers or so */

    for (n = 0; missing && n < 64 * NGX_WS_RELAY_WIRE_SLOTS; n++) {
        len = ngx_sprintf(tag, "%ui", n) - tag;
        slot = ngx_ws_relay_wire_slot(tag, len);
        k = bus->map[slot];

        if (k == NGX_WS_RELAY_BUS_NONE || !owns[k]) {
            continue;
        }

        shard = &bus->shards[k];

        ngx_sprintf(kind, "n:{%*s}%Z", len, tag);
        p = ngx_ws_relay_wire_channel(shard->probe.data, &bus->conf->prefix,
                                      (const char *) kind,
                                      &ngx_ws_relay_worker.node_id);
        shard->probe.len = p - shard->probe.data;

        owns[k] = 0;
        missing--;
    }
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


/* the subscriber is ready once its probe's channel is subscribed */

static void
ngx_ws_relay_bus_sub_connected(ngx_ws_relay_redis_link_t *link)
{
    if (link->conf->sentinels) {
        (void) redisAsyncCommand(link->ac, ngx_ws_relay_bus_sub_role, link,
                                 "ROLE");
        return;
    }

    ngx_ws_relay_bus_subscribe_probe(link->data);
}


static void
ngx_ws_relay_bus_subscribe_probe(ngx_ws_relay_bus_shard_t *shard)
{
    if (shard->sub.raw) {
        (void) ngx_ws_relay_redis_link_command(&shard->sub, NULL, NULL,
                                               "SSUBSCRIBE %b",
                                               shard->probe.data,
                                               shard->probe.len);
        return;
    }

    (void) redisAsyncCommand(shard->sub.ac, ngx_ws_relay_bus_message, shard,
                             "SUBSCRIBE %b", shard->probe.data,
                             shard->probe.len);
}


static void
ngx_ws_relay_bus_lost(ngx_ws_relay_redis_link_t *link)
{
    ngx_ws_relay_bus_shard_t  *shard;

    shard = link->data;

    ngx_ws_relay_stat_set(redis_state, ngx_ws_relay_bus_state());

    if (link->conf->sentinels) {
        /* is the master still the master? */
        ngx_ws_relay_sentinel_ask();
    }

    if (link->cluster) {
        /* is it still a master, of the same slots? */
        ngx_ws_relay_cluster_ask();
    }

    if (link == &shard->sub) {
        ngx_ws_relay_bus_forget(shard);
    }
}


/* no channel of the shard is heard until it is subscribed again */

static void
ngx_ws_relay_bus_forget(ngx_ws_relay_bus_shard_t *shard)
{
    ngx_queue_t          *q, *users;
    ngx_ws_relay_user_t  *user;

    shard->ping_in_flight = 0;

    users = ngx_ws_relay_registry_users();

    for (q = ngx_queue_head(users);
         q != ngx_queue_sentinel(users);
         q = ngx_queue_next(q))
    {
        user = ngx_queue_data(q, ngx_ws_relay_user_t, queue);

        if (ngx_ws_relay_bus_channel_shard(NGX_WS_RELAY_WIRE_USER,
                                           &user->sn.str)
            == shard)
        {
            user->missed |= user->subscribed;
            user->subscribed = 0;
        }
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


/* every user of this worker on the shard is subscribed again */

static void
ngx_ws_relay_bus_sub_ready(ngx_ws_relay_bus_shard_t *shard)
{
    u_char                      *p, *last;
    ngx_queue_t                 *q, *users;
    ngx_ws_relay_bus_t          *bus;
    ngx_ws_relay_user_t         *user;
    ngx_ws_relay_redis_batch_t   b;

    bus = &ngx_ws_relay_bus;

    ngx_ws_relay_redis_link_ready(&shard->sub);
    ngx_ws_relay_bus_count_ready();

    users = ngx_ws_relay_registry_users();

    if (shard->sub.raw) {
        /* a sharded subscription takes channels of one slot only */

        p = ngx_ws_relay_bus_buffer(bus->user_prefix.len
                                    + NGX_WS_RELAY_MAX_USER_ID + 1);
        if (p == NULL) {
            return;
        }

        for (q = ngx_queue_head(users);
             q != ngx_queue_sentinel(users);
             q = ngx_queue_next(q))
        {
            user = ngx_queue_data(q, ngx_ws_relay_user_t, queue);

            if (ngx_ws_relay_bus_channel_shard(NGX_WS_RELAY_WIRE_USER,
                                               &user->sn.str)
                != shard)
            {
                continue;
            }

            last = ngx_ws_relay_wire_channel(p, &bus->conf->prefix,
                                             NGX_WS_RELAY_WIRE_USER,
                                             &user->sn.str);

            (void) ngx_ws_relay_redis_link_command(&shard->sub, NULL, NULL,
                                                   "SSUBSCRIBE %b", p,
                                                   (size_t) (last - p));
        }

        return;
    }

    if (ngx_ws_relay_redis_batch_init(&b, &shard->sub,
                                      ngx_ws_relay_bus_message, shard,
                                      "SUBSCRIBE", NULL,
                                      bus->user_prefix.len
                                      + NGX_WS_RELAY_MAX_USER_ID + 1)
        != NGX_OK)
    {
        return;
    }

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

    if (ngx_ws_relay_bus_state() != NGX_WS_RELAY_BUS_UP) {
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
    ngx_uint_t                 i;
    ngx_msec_t                 now, interval;
    ngx_ws_relay_bus_t        *bus;
    ngx_ws_relay_bus_shard_t  *shard;

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
    }

    for (i = 0; i < bus->nshards; i++) {
        shard = &bus->shards[i];

        if (!shard->used) {
            continue;
        }

        if (now - bus->watchdog_due > interval) {
            ngx_ws_relay_redis_link_restart_clock(&shard->cmd, now);
            ngx_ws_relay_redis_link_restart_clock(&shard->sub, now);
            shard->ping_sent = now;
        }

        ngx_ws_relay_redis_link_check(&shard->cmd, now);
        ngx_ws_relay_redis_link_check(&shard->sub, now);

        if (shard->cmd.ready && shard->sub.ready) {
            ngx_ws_relay_bus_probe(shard, now);
        }
    }

    ngx_ws_relay_presence_tick(now);
    ngx_ws_relay_sentinel_tick(now);
    ngx_ws_relay_cluster_tick(now);

    bus->watchdog_due = now + interval;
    ngx_add_timer(ev, interval);
}


static void
ngx_ws_relay_bus_probe(ngx_ws_relay_bus_shard_t *shard, ngx_msec_t now)
{
    u_char               buf[NGX_WS_RELAY_WIRE_HEAD_LEN], *p, *start;
    ngx_str_t            argv[3];
    ngx_ws_relay_bus_t  *bus;

    bus = &ngx_ws_relay_bus;

    if (shard->ping_in_flight) {
        /* a busy subscriber is alive: only silence counts */
        if (now - shard->ping_sent > bus->conf->timeout
            && now - shard->sub.progress > bus->conf->timeout)
        {
            ngx_ws_relay_redis_link_drop(&shard->sub,
                                         "subscriber timed out");
        }

        return;
    }

    if (shard->probe.len == 0) {
        return;
    }

    ngx_str_set(&argv[0], "PUBLISH");

    if (bus->cluster) {
        ngx_str_set(&argv[0], "SPUBLISH");
    }

    argv[1] = shard->probe;
    argv[2].data = buf;
    argv[2].len = ngx_ws_relay_wire_ping(buf, ++shard->ping_seq) - buf;

    start = ngx_ws_relay_bus_buffer(ngx_ws_relay_wire_command_len(argv, 3));
    if (start == NULL) {
        return;
    }

    p = ngx_ws_relay_wire_command(start, argv, 3);

    if (ngx_ws_relay_redis_link_send(&shard->cmd, ngx_ws_relay_bus_probe_sent,
                                     &shard->cmd, start, p - start)
        == NGX_OK)
    {
        shard->ping_in_flight = 1;
        shard->ping_sent = now;
        ngx_gettimeofday(&shard->ping_sent_tv);
    }
}


/* a probe's PUBLISH refused: a cluster moved the slot, the map is old */

static void
ngx_ws_relay_bus_probe_sent(redisAsyncContext *ac, void *r, void *privdata)
{
    redisReply                 *reply = r;
    ngx_ws_relay_redis_link_t  *link = privdata;

    if (reply == NULL || link->ac != ac) {
        return;
    }

    ngx_ws_relay_redis_link_replied(link);

    if (ngx_ws_relay_redis_link_is_error(link, reply, "probe")
        && link->cluster)
    {
        ngx_ws_relay_cluster_ask();
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

    if (bus->conf == NULL) {
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

        /* "s": SPUBLISH, in a cluster */
        ngx_str_set(&args[0], "p");

        if (bus->cluster) {
            ngx_str_set(&args[0], "s");
        }

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
    u_char                    *p, *start;
    ngx_ws_relay_bus_t        *bus;
    ngx_ws_relay_bus_shard_t  *shard;

    bus = &ngx_ws_relay_bus;

    start = ngx_ws_relay_bus_buffer(
                ngx_ws_relay_wire_publish_len(&bus->conf->prefix, kind, name,
                                              parts, nparts));
    if (start == NULL) {
        return NGX_ERROR;
    }

    p = ngx_ws_relay_wire_publish(start, &bus->conf->prefix, kind, name,
                                  parts, nparts, bus->cluster);

    shard = ngx_ws_relay_bus_channel_shard(kind, name);

    return ngx_ws_relay_bus_send(shard, fn, privdata, start, p - start);
}


/*
 * A command to the shard that owns its key or channel.  In a cluster it
 * is kept until answered, to follow MOVED and ASK.
 */

static ngx_int_t
ngx_ws_relay_bus_send(ngx_ws_relay_bus_shard_t *shard, redisCallbackFn *fn,
    void *privdata, u_char *cmd, size_t len)
{
    ngx_int_t                    rc;
    ngx_ws_relay_bus_request_t  *req;

    if (shard == NULL || !ngx_ws_relay_bus_usable(shard)) {
        return NGX_DECLINED;
    }

    if (!ngx_ws_relay_bus.cluster) {
        return ngx_ws_relay_redis_link_send(&shard->cmd, fn, privdata, cmd,
                                            len);
    }

    req = ngx_alloc(sizeof(ngx_ws_relay_bus_request_t) + len,
                    ngx_ws_relay_bus.log);
    if (req == NULL) {
        return NGX_ERROR;
    }

    req->fn = fn;
    req->privdata = privdata;
    req->redirects = 0;
    req->len = len;
    ngx_memcpy(req->cmd, cmd, len);

    rc = ngx_ws_relay_redis_link_send(&shard->cmd, ngx_ws_relay_bus_redirected,
                                      req, req->cmd, len);
    if (rc != NGX_OK) {
        ngx_free(req);
    }

    return rc;
}


/*
 * A cluster's answer: MOVED sends the command to the master that owns the
 * slot now (and the map is asked for again), ASK to the one that imports
 * it, preceded by ASKING; anything else goes to the command's callback.
 */

static void
ngx_ws_relay_bus_redirected(redisAsyncContext *ac, void *r, void *privdata)
{
    redisReply                  *reply = r;
    ngx_ws_relay_bus_request_t  *req = privdata;

    ngx_ws_relay_bus_t            *bus;
    ngx_ws_relay_bus_shard_t      *shard;
    ngx_ws_relay_redis_link_t     *link;
    ngx_ws_relay_wire_redirect_t   rd;

    bus = &ngx_ws_relay_bus;

    if (reply == NULL
        || reply->type != REDIS_REPLY_ERROR
        || ngx_ws_relay_wire_redirect(reply, &rd) != NGX_OK
        || req->redirects++ == NGX_WS_RELAY_BUS_REDIRECTS)
    {
        req->fn(ac, r, req->privdata);
        ngx_free(req);
        return;
    }

    link = ac->data;

    if (link->ac == ac) {
        ngx_ws_relay_redis_link_replied(link);
    }

    if (rd.host.len == 0) {
        /* no host: the node that answered, at another port */
        rd.host = link->endpoint->host;
    }

    ngx_log_debug4(NGX_LOG_DEBUG_HTTP, bus->log, 0,
                   "ws relay: redis cluster: %s %ui to %V:%i",
                   rd.ask ? "ASK" : "MOVED", rd.slot, &rd.host, rd.port);

    shard = ngx_ws_relay_bus_shard_at(&rd.host, rd.port);

    if (shard && ngx_ws_relay_bus_usable(shard)
        && (!rd.ask
            || ngx_ws_relay_redis_link_command(&shard->cmd,
                                               ngx_ws_relay_redis_link_reply,
                                               NULL, "ASKING")
               == NGX_OK)
        && ngx_ws_relay_redis_link_send(&shard->cmd,
                                        ngx_ws_relay_bus_redirected, req,
                                        req->cmd, req->len)
           == NGX_OK)
    {
        if (!rd.ask) {
            ngx_ws_relay_cluster_ask();
        }

        return;
    }

    /* a master not known yet: the command waits for the next map */

    req->slot = rd.slot;
    req->since = ngx_current_msec;
    ngx_queue_insert_tail(&bus->waiting, &req->queue);

    ngx_ws_relay_cluster_ask();

    if (!bus->retry.timer_set) {
        ngx_add_timer(&bus->retry, 100);
    }
}


static void
ngx_ws_relay_bus_resend(ngx_event_t *ev)
{
    ngx_ws_relay_bus_retry(0);
}


/*
 * The waiting commands go to the shard the map names for their slot now;
 * those that waited longer than the timeout (all, when giving up) get no
 * reply.
 */

static void
ngx_ws_relay_bus_retry(ngx_uint_t give_up)
{
    ngx_uint_t                   k;
    ngx_queue_t                 *q, waiting;
    ngx_ws_relay_bus_t          *bus;
    ngx_ws_relay_bus_shard_t    *shard;
    ngx_ws_relay_bus_request_t  *req;

    bus = &ngx_ws_relay_bus;

    if (ngx_queue_empty(&bus->waiting)) {
        return;
    }

    /* a command that fails here may send another: that one waits anew */

    ngx_queue_init(&waiting);
    ngx_queue_add(&waiting, &bus->waiting);
    ngx_queue_init(&bus->waiting);

    while (!ngx_queue_empty(&waiting)) {
        q = ngx_queue_head(&waiting);
        ngx_queue_remove(q);
        req = ngx_queue_data(q, ngx_ws_relay_bus_request_t, queue);

        k = bus->map[req->slot];
        shard = (k == NGX_WS_RELAY_BUS_NONE) ? NULL : &bus->shards[k];

        if (!give_up && shard && ngx_ws_relay_bus_usable(shard)
            && ngx_ws_relay_redis_link_send(&shard->cmd,
                                            ngx_ws_relay_bus_redirected, req,
                                            req->cmd, req->len)
               == NGX_OK)
        {
            continue;
        }

        if (!give_up && ngx_current_msec - req->since < bus->conf->timeout) {
            ngx_queue_insert_tail(&bus->waiting, &req->queue);
            continue;
        }

        /* no reply: as when a link is lost */
        req->fn(NULL, NULL, req->privdata);
        ngx_free(req);
    }

    if (!ngx_queue_empty(&bus->waiting) && !bus->retry.timer_set) {
        ngx_add_timer(&bus->retry, 100);
    }
}


/*
 * A shard takes commands when its link is ready; in a cluster also while
 * it connects (hiredis keeps them until then), so that a new master's
 * first moments lose nothing.
 */

static ngx_uint_t
ngx_ws_relay_bus_usable(ngx_ws_relay_bus_shard_t *shard)
{
    return shard->cmd.ready || (shard->cmd.cluster && shard->cmd.ac);
}


/* the shard of a key or channel; NULL: no master owns its slot */

static ngx_ws_relay_bus_shard_t *
ngx_ws_relay_bus_shard_for(u_char *name, size_t len)
{
    ngx_uint_t           k;
    ngx_ws_relay_bus_t  *bus;

    bus = &ngx_ws_relay_bus;

    if (!bus->cluster) {
        return &bus->shards[0];
    }

    k = bus->map[ngx_ws_relay_wire_slot(name, len)];

    return (k == NGX_WS_RELAY_BUS_NONE) ? NULL : &bus->shards[k];
}


/* the shard of "<prefix><kind><name>" */

static ngx_ws_relay_bus_shard_t *
ngx_ws_relay_bus_channel_shard(const char *kind, ngx_str_t *name)
{
    u_char              *p;
    size_t               len;
    ngx_ws_relay_bus_t  *bus;

    bus = &ngx_ws_relay_bus;

    if (!bus->cluster) {
        return &bus->shards[0];
    }

    len = ngx_ws_relay_wire_channel_len(&bus->conf->prefix, kind, name);

    if (len > bus->chan_size) {
        p = ngx_alloc(ngx_max(len, 2 * bus->chan_size), bus->log);
        if (p == NULL) {
            return NULL;
        }

        if (bus->chan) {
            ngx_free(bus->chan);
        }

        bus->chan = p;
        bus->chan_size = ngx_max(len, 2 * bus->chan_size);
    }

    (void) ngx_ws_relay_wire_channel(bus->chan, &bus->conf->prefix, kind,
                                     name);

    return ngx_ws_relay_bus_shard_for(bus->chan, len);
}


static ngx_ws_relay_bus_shard_t *
ngx_ws_relay_bus_shard_at(ngx_str_t *host, ngx_int_t port)
{
    ngx_uint_t                 k;
    ngx_ws_relay_bus_shard_t  *shard;

    for (k = 0; k < ngx_ws_relay_bus.nshards; k++) {
        shard = &ngx_ws_relay_bus.shards[k];

        if (shard->used && shard->endpoint.port == port
            && shard->endpoint.host.len == host->len
            && ngx_strncmp(shard->endpoint.host.data, host->data, host->len)
               == 0)
        {
            return shard;
        }
    }

    return NULL;
}


/* the command link for a key, when it is ready; NULL otherwise */

ngx_ws_relay_redis_link_t *
ngx_ws_relay_bus_link(ngx_str_t *key)
{
    ngx_ws_relay_bus_shard_t  *shard;

    if (ngx_ws_relay_bus.conf == NULL) {
        return NULL;
    }

    shard = ngx_ws_relay_bus_shard_for(key->data, key->len);

    return (shard && shard->cmd.ready) ? &shard->cmd : NULL;
}


/* a command about key, to the shard that owns it */

ngx_int_t
ngx_ws_relay_bus_command(ngx_str_t *key, ngx_ws_relay_bus_reply_pt fn,
    void *privdata, const char *format, ...)
{
    int        len;
    char      *cmd;
    va_list    args;
    ngx_int_t  rc;

    if (ngx_ws_relay_bus_link(key) == NULL) {
        return NGX_DECLINED;
    }

    va_start(args, format);
    len = redisvFormatCommand(&cmd, format, args);
    va_end(args);

    if (len < 0) {
        return NGX_ERROR;
    }

    rc = ngx_ws_relay_bus_send(ngx_ws_relay_bus_shard_for(key->data,
                                                          key->len),
                               fn, privdata, (u_char *) cmd, len);

    redisFreeCommand(cmd);

    return rc;
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

    if (bus->conf == NULL || n > NGX_WS_RELAY_HISTORY_ARGS) {
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

    return ngx_ws_relay_bus_send(ngx_ws_relay_bus_shard_for(argv[3].data,
                                                            argv[3].len),
                                 fn, privdata, start, p - start);
}


/*
 * A reply of the history script: NGX_OK, or NGX_ERROR when there is none
 * (the link went) or it is an error.  A script that Redis forgot (a
 * restart, SCRIPT FLUSH) is loaded again for the next calls.
 */

ngx_int_t
ngx_ws_relay_bus_history_reply(struct redisAsyncContext *ac,
    redisReply *reply, const char *what)
{
    ngx_ws_relay_redis_link_t  *link;

    /* no reply: ac may be NULL (a command that found no master) */

    if (reply == NULL || (link = ac->data)->ac != ac) {
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

    if (ngx_ws_relay_bus_history_reply(ac, reply, "history") != NGX_OK) {
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

    if (reply == NULL || (link = ac->data)->ac != ac) {
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


/* everything a subscriber link receives: hiredis's callback */

static void
ngx_ws_relay_bus_message(redisAsyncContext *ac, void *r, void *privdata)
{
    ngx_ws_relay_bus_shard_t  *shard = privdata;

    if (r == NULL || shard->sub.ac != ac) {
        return;
    }

    ngx_ws_relay_bus_push(shard, r);
}


/* everything a raw subscriber link (a cluster's) reads */

static void
ngx_ws_relay_bus_raw(ngx_ws_relay_redis_link_t *link, redisReply *reply)
{
    ngx_ws_relay_wire_redirect_t  rd;

    if (reply->type == REDIS_REPLY_STATUS) {
        /* AUTH's +OK */
        return;
    }

    if (reply->type != REDIS_REPLY_ERROR) {
        ngx_ws_relay_bus_push(link->data, reply);
        return;
    }

    (void) ngx_ws_relay_redis_link_is_error(link, reply, "a subscription");

    if (ngx_ws_relay_wire_redirect(reply, &rd) == NGX_OK) {
        /* a channel of a slot the node does not own: the map is old */
        ngx_ws_relay_cluster_ask();
        return;
    }

    if (link->ac) {
        ngx_ws_relay_redis_link_drop(link, "subscription refused");
    }
}


static void
ngx_ws_relay_bus_push(ngx_ws_relay_bus_shard_t *shard, redisReply *reply)
{
    ngx_int_t                  rc;
    ngx_str_t                  user_id;
    ngx_ws_relay_bus_t        *bus;
    ngx_ws_relay_wire_push_t   push;

    bus = &ngx_ws_relay_bus;

    shard->sub.progress = ngx_current_msec;

    rc = ngx_ws_relay_wire_parse_push(reply, &push);

    if (rc == NGX_DECLINED) {
        return;
    }

    if (rc == NGX_OK) {

        if (push.channel.len == shard->probe.len
            && ngx_strncmp(push.channel.data, shard->probe.data,
                           push.channel.len)
               == 0)
        {
            if (push.subscribed) {
                if (!shard->sub.ready) {
                    ngx_ws_relay_bus_sub_ready(shard);
                }

            } else if (push.unsubscribed) {
                /* ended by a cluster node: its slot moved, or came back */
                ngx_ws_relay_cluster_ask();
                ngx_ws_relay_bus_subscribe_probe(shard);

            } else {
                ngx_ws_relay_bus_node_message(shard, &push.payload);
            }

            return;
        }

        if (ngx_ws_relay_wire_channel_name(&push.channel, &bus->conf->prefix,
                                           NGX_WS_RELAY_WIRE_USER, &user_id)
            == NGX_OK)
        {
            if (push.subscribed) {
                ngx_ws_relay_bus_user_subscribed(&user_id);

            } else if (push.unsubscribed) {
                ngx_ws_relay_bus_user_unsubscribed(&user_id);

            } else {
                ngx_ws_relay_bus_user_message(&user_id, &push.payload);
            }

            return;
        }

        if (push.subscribed || push.unsubscribed) {
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
    u_char               kind[NGX_WS_RELAY_BUS_NODE_KIND_LEN];
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

    (void) ngx_ws_relay_bus_publish_to(ngx_ws_relay_bus_node_kind(&origin,
                                                                  kind),
                                       &origin, &ack, 1,
                                       ngx_ws_relay_redis_link_reply, NULL);
}


static void
ngx_ws_relay_bus_node_message(ngx_ws_relay_bus_shard_t *shard,
    ngx_str_t *payload)
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

    if (shard->ping_in_flight && m.id == shard->ping_seq) {
        shard->ping_in_flight = 0;
        ngx_ws_relay_bus_measure_rtt(shard);

        /* a full round trip: the links work, the next loss backs off anew */
        shard->cmd.backoff = 0;
        shard->sub.backoff = 0;
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


/*
 * A subscription ended.  Asked for, the user has left (or came back and
 * waits for its new subscription).  A heard user's channel ended by a
 * cluster node: its slot moved, or was given to the same master again.
 * The user is subscribed again where the map says (a node that does not
 * own the slot answers MOVED, and the new map subscribes it where it
 * belongs), and its connections catch up.
 */

static void
ngx_ws_relay_bus_user_unsubscribed(ngx_str_t *user_id)
{
    ngx_ws_relay_user_t       *user;
    ngx_ws_relay_bus_shard_t  *shard;

    if (!ngx_ws_relay_bus.cluster) {
        return;
    }

    user = ngx_ws_relay_registry_find_user(user_id);

    if (user == NULL || !user->subscribed) {
        return;
    }

    ngx_log_error(NGX_LOG_NOTICE, ngx_ws_relay_bus.log, 0,
                  "ws relay: redis cluster ended the subscription of user "
                  "\"%V\"", user_id);

    user->subscribed = 0;
    user->missed = 1;

    ngx_ws_relay_cluster_ask();

    shard = ngx_ws_relay_bus_channel_shard(NGX_WS_RELAY_WIRE_USER, user_id);

    if (shard) {
        (void) ngx_ws_relay_bus_subscription(shard, "SUBSCRIBE", user_id);
    }
}


/* while a link is not ready, its catching up will carry the user */

void
ngx_ws_relay_bus_user_joined(ngx_str_t *user_id)
{
    ngx_ws_relay_bus_shard_t  *shard;

    if (ngx_ws_relay_bus.conf == NULL) {
        return;
    }

    shard = ngx_ws_relay_bus_channel_shard(NGX_WS_RELAY_WIRE_USER, user_id);

    if (shard
        && ngx_ws_relay_bus_subscription(shard, "SUBSCRIBE", user_id)
           == NGX_OK)
    {
        /* on its way before the client hears that it is registered */
        redisAsyncHandleWrite(shard->sub.ac);
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
    ngx_ws_relay_bus_shard_t  *shard;

    if (ngx_ws_relay_bus.conf == NULL) {
        return;
    }

    shard = ngx_ws_relay_bus_channel_shard(NGX_WS_RELAY_WIRE_USER, user_id);

    if (shard) {
        (void) ngx_ws_relay_bus_subscription(shard, "UNSUBSCRIBE", user_id);
    }

    ngx_ws_relay_presence_left(user_id);
}


/* SUBSCRIBE or UNSUBSCRIBE of a user's channel; SSUBSCRIBE... in a cluster */

static ngx_int_t
ngx_ws_relay_bus_subscription(ngx_ws_relay_bus_shard_t *shard,
    const char *command, ngx_str_t *user_id)
{
    u_char              *p, *start;
    ngx_ws_relay_bus_t  *bus;

    bus = &ngx_ws_relay_bus;

    if (!shard->sub.ready) {
        return NGX_DECLINED;
    }

    start = ngx_ws_relay_bus_buffer(bus->user_prefix.len + user_id->len + 1);
    if (start == NULL) {
        return NGX_ERROR;
    }

    p = ngx_ws_relay_wire_channel(start, &bus->conf->prefix,
                                  NGX_WS_RELAY_WIRE_USER, user_id);

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, bus->log, 0,
                   "ws relay: redis %s \"%V\"", command, user_id);

    if (shard->sub.raw) {
        return ngx_ws_relay_redis_link_command(&shard->sub, NULL, NULL,
                                               "S%s %b", command, start,
                                               (size_t) (p - start));
    }

    if (redisAsyncCommand(shard->sub.ac, ngx_ws_relay_bus_message, shard,
                          "%s %b", command, start, (size_t) (p - start))
        != REDIS_OK)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * The kind of a worker's node channel: "n:", or in a cluster "n:{<hash
 * of the node>}", a hash tag that spreads the workers' channels (and the
 * acks they get) over the masters: node ids differ only in a few digits,
 * and CRC16 would put most of them on one master.
 */

static const char *
ngx_ws_relay_bus_node_kind(ngx_str_t *node, u_char *buf)
{
    if (!ngx_ws_relay_bus.cluster) {
        return NGX_WS_RELAY_WIRE_NODE;
    }

    ngx_sprintf(buf, "n:{%08xD}%Z", ngx_crc32_short(node->data, node->len));

    return (const char *) buf;
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
ngx_ws_relay_bus_measure_rtt(ngx_ws_relay_bus_shard_t *shard)
{
    int64_t         us;
    struct timeval  tv;

    ngx_gettimeofday(&tv);

    us = (int64_t) (tv.tv_sec - shard->ping_sent_tv.tv_sec) * 1000000
         + (tv.tv_usec - shard->ping_sent_tv.tv_usec);

    ngx_ws_relay_stat_set(redis_rtt_us, (ngx_atomic_uint_t) ngx_max(us, 0));
}


ngx_ws_relay_bus_state_e
ngx_ws_relay_bus_state(void)
{
    ngx_uint_t                 i, used, ready, busy;
    ngx_ws_relay_bus_t        *bus;
    ngx_ws_relay_bus_shard_t  *shard;

    bus = &ngx_ws_relay_bus;

    if (bus->conf == NULL) {
        return NGX_WS_RELAY_BUS_OFF;
    }

    used = 0;
    ready = 0;
    busy = 0;

    for (i = 0; i < bus->nshards; i++) {
        shard = &bus->shards[i];

        if (!shard->used) {
            continue;
        }

        used++;
        ready += (shard->cmd.ready && shard->sub.ready);
        busy += (shard->cmd.ac || shard->sub.ac);
    }

    if (used && ready == used) {
        return NGX_WS_RELAY_BUS_UP;
    }

    if (busy || (bus->cluster && used == 0)) {
        return NGX_WS_RELAY_BUS_CONNECTING;
    }

    return NGX_WS_RELAY_BUS_DOWN;
}


/* both links of the shard of a user's channel are ready */

ngx_uint_t
ngx_ws_relay_bus_user_up(ngx_str_t *user_id)
{
    ngx_ws_relay_bus_shard_t  *shard;

    if (ngx_ws_relay_bus.conf == NULL) {
        return 0;
    }

    shard = ngx_ws_relay_bus_channel_shard(NGX_WS_RELAY_WIRE_USER, user_id);

    return shard && shard->cmd.ready && shard->sub.ready;
}


const char *
ngx_ws_relay_bus_state_name(ngx_ws_relay_bus_state_e state)
{
    static const char  *names[] = {
        "disabled", "disconnected", "connecting", "connected"
    };

    return names[state];
}


/* the n-th master a worker of a cluster follows; NULL after the last */

ngx_ws_relay_redis_endpoint_t *
ngx_ws_relay_bus_shard(ngx_uint_t n)
{
    ngx_uint_t           i;
    ngx_ws_relay_bus_t  *bus;

    bus = &ngx_ws_relay_bus;

    for (i = 0; i < bus->nshards; i++) {
        if (bus->shards[i].used && n-- == 0) {
            return bus->shards[i].cmd.endpoint;
        }
    }

    return NULL;
}
