
/*
 * Copyright (C) ngx_ws_relay_module authors
 */


#include "ngx_ws_relay.h"
#include "ngx_ws_relay_bus_wire.h"
#include "ngx_ws_relay_cluster.h"
#include "ngx_ws_relay_redis_link.h"


/* the map is asked for again this often, should a change go unnoticed */
#define NGX_WS_RELAY_CLUSTER_ASK_EVERY  5000

/* and not more often than this when asked to */
#define NGX_WS_RELAY_CLUSTER_ASK_GAP    100

/* slot ranges in one answer, at most */
#define NGX_WS_RELAY_CLUSTER_RANGES     1024


typedef struct {
    ngx_ws_relay_redis_conf_t       *conf;
    ngx_ws_relay_cluster_pt          changed;

    /* the node asked: one of the list, then one of the masters learnt */
    ngx_ws_relay_redis_link_t        link;
    ngx_ws_relay_redis_endpoint_t    node;
    u_char                           host[NGX_SOCKADDR_STRLEN + 1];
    ngx_uint_t                       next;

    ngx_event_t                      later;
    ngx_msec_t                       asked;
    unsigned                         asking:1;
    unsigned                         known:1;

    ngx_ws_relay_cluster_map_t       map;
    ngx_ws_relay_cluster_map_t       answer;
    ngx_ws_relay_wire_range_t        ranges[NGX_WS_RELAY_CLUSTER_RANGES];
} ngx_ws_relay_cluster_t;


static void ngx_ws_relay_cluster_connected(ngx_ws_relay_redis_link_t *link);
static void ngx_ws_relay_cluster_lost(ngx_ws_relay_redis_link_t *link);
static void ngx_ws_relay_cluster_next_node(void);
static void ngx_ws_relay_cluster_later(ngx_event_t *ev);
static void ngx_ws_relay_cluster_answer(redisAsyncContext *ac, void *r,
    void *privdata);
static ngx_int_t ngx_ws_relay_cluster_read(redisReply *reply,
    ngx_ws_relay_cluster_map_t *m);
static ngx_uint_t ngx_ws_relay_cluster_same(ngx_ws_relay_cluster_map_t *a,
    ngx_ws_relay_cluster_map_t *b);
static void ngx_ws_relay_cluster_endpoints(ngx_ws_relay_cluster_map_t *m);


static ngx_ws_relay_cluster_t  *ngx_ws_relay_cluster;


ngx_int_t
ngx_ws_relay_cluster_init(ngx_cycle_t *cycle, ngx_ws_relay_redis_conf_t *rcf,
    ngx_ws_relay_cluster_pt changed)
{
    ngx_ws_relay_cluster_t  *cl;

    cl = ngx_pcalloc(cycle->pool, sizeof(ngx_ws_relay_cluster_t));
    if (cl == NULL) {
        return NGX_ERROR;
    }

    ngx_ws_relay_cluster = cl;

    cl->conf = rcf;
    cl->changed = changed;

    /* workers start with nodes of their own: not all on the first */
    cl->next = ngx_random() % rcf->endpoints->nelts;

    cl->link.name = "cluster";
    cl->link.conf = rcf;
    cl->link.log = cycle->log;
    cl->link.endpoint = &cl->node;
    cl->link.connected = ngx_ws_relay_cluster_connected;
    cl->link.lost = ngx_ws_relay_cluster_lost;
    cl->link.cluster = 1;

    cl->later.handler = ngx_ws_relay_cluster_later;
    cl->later.data = cl;
    cl->later.log = cycle->log;
    cl->later.cancelable = 1;

    ngx_ws_relay_cluster_next_node();
    ngx_ws_relay_redis_link_connect(&cl->link);

    return NGX_OK;
}


void
ngx_ws_relay_cluster_exit(void)
{
    ngx_ws_relay_cluster_t  *cl;

    cl = ngx_ws_relay_cluster;

    if (cl == NULL) {
        return;
    }

    if (cl->later.timer_set) {
        ngx_del_timer(&cl->later);
    }

    ngx_ws_relay_redis_link_drop(&cl->link, NULL);
}


static void
ngx_ws_relay_cluster_connected(ngx_ws_relay_redis_link_t *link)
{
    ngx_ws_relay_cluster->asking = 0;
    ngx_ws_relay_cluster->asked = 0;
    ngx_ws_relay_cluster_ask();
}


/* a node that fails: the next one */

static void
ngx_ws_relay_cluster_lost(ngx_ws_relay_redis_link_t *link)
{
    ngx_ws_relay_cluster->asking = 0;
    ngx_ws_relay_cluster_next_node();
}


/* the listed nodes, then the masters of the last answer, in turn */

static void
ngx_ws_relay_cluster_next_node(void)
{
    ngx_uint_t                      n, i;
    ngx_ws_relay_cluster_t         *cl;
    ngx_ws_relay_redis_endpoint_t  *ep;

    cl = ngx_ws_relay_cluster;
    n = cl->conf->endpoints->nelts;
    i = cl->next++ % (n + cl->map.nmasters);

    ep = (i < n) ? (ngx_ws_relay_redis_endpoint_t *) cl->conf->endpoints->elts
                   + i
                 : &cl->map.masters[i - n];

    ngx_memcpy(cl->host, ep->host.data, ep->host.len + 1);
    cl->node.host.data = cl->host;
    cl->node.host.len = ep->host.len;
    cl->node.port = ep->port;
}


/* CLUSTER SLOTS soon: at once, unless it was asked a moment ago */

void
ngx_ws_relay_cluster_ask(void)
{
    ngx_msec_t               gap;
    ngx_ws_relay_cluster_t  *cl;

    cl = ngx_ws_relay_cluster;

    if (cl == NULL || cl->link.ac == NULL || cl->asking) {
        return;
    }

    gap = ngx_current_msec - cl->asked;

    if (cl->asked && gap < NGX_WS_RELAY_CLUSTER_ASK_GAP) {
        if (!cl->later.timer_set) {
            ngx_add_timer(&cl->later, NGX_WS_RELAY_CLUSTER_ASK_GAP - gap);
        }

        return;
    }

    if (ngx_ws_relay_redis_link_command(&cl->link,
                                        ngx_ws_relay_cluster_answer,
                                        &cl->link, "CLUSTER SLOTS")
        == NGX_OK)
    {
        cl->asking = 1;
        cl->asked = ngx_current_msec;
    }
}


static void
ngx_ws_relay_cluster_later(ngx_event_t *ev)
{
    ngx_ws_relay_cluster_ask();
}


/* the owner's watchdog: a stalled node is cut, the map asked for */

void
ngx_ws_relay_cluster_tick(ngx_msec_t now)
{
    ngx_ws_relay_cluster_t  *cl;

    cl = ngx_ws_relay_cluster;

    if (cl == NULL) {
        return;
    }

    ngx_ws_relay_redis_link_check(&cl->link, now);

    if (now - cl->asked >= NGX_WS_RELAY_CLUSTER_ASK_EVERY) {
        ngx_ws_relay_cluster_ask();
    }
}


static void
ngx_ws_relay_cluster_answer(redisAsyncContext *ac, void *r, void *privdata)
{
    redisReply                 *reply = r;
    ngx_ws_relay_redis_link_t  *link = privdata;

    ngx_ws_relay_cluster_t      *cl;
    ngx_ws_relay_cluster_map_t  *m;

    if (reply == NULL || link->ac != ac) {
        return;
    }

    cl = ngx_ws_relay_cluster;
    m = &cl->answer;

    cl->asking = 0;
    ngx_ws_relay_redis_link_replied(link);

    if (ngx_ws_relay_redis_link_is_error(link, reply, "CLUSTER SLOTS")) {
        ngx_ws_relay_redis_link_drop(link, "not usable");
        return;
    }

    if (ngx_ws_relay_cluster_read(reply, m) != NGX_OK) {
        ngx_ws_relay_redis_link_drop(link, "no usable slot map");
        return;
    }

    if (!link->ready) {
        ngx_ws_relay_redis_link_ready(link);
    }

    if (cl->known && ngx_ws_relay_cluster_same(m, &cl->map)) {
        return;
    }

    ngx_memcpy(&cl->map, m, sizeof(ngx_ws_relay_cluster_map_t));
    ngx_ws_relay_cluster_endpoints(&cl->map);
    cl->known = 1;

    ngx_log_error(NGX_LOG_NOTICE, link->log, 0,
                  "ws relay: redis cluster: %ui masters own the slots, "
                  "as %s:%i says", cl->map.nmasters, cl->node.host.data,
                  cl->node.port);

    cl->changed(&cl->map);
}


/* an answer into a map; NGX_ERROR: none, or one with unowned slots */

static ngx_int_t
ngx_ws_relay_cluster_read(redisReply *reply, ngx_ws_relay_cluster_map_t *m)
{
    ngx_str_t                   host;
    ngx_uint_t                  i, k, n, slot, owned;
    ngx_ws_relay_cluster_t     *cl;
    ngx_ws_relay_wire_range_t  *r;

    cl = ngx_ws_relay_cluster;
    n = NGX_WS_RELAY_CLUSTER_RANGES;

    if (ngx_ws_relay_wire_cluster_slots(reply, cl->ranges, &n) != NGX_OK) {
        ngx_ws_relay_redis_error(cl->link.log, "redis cluster: CLUSTER SLOTS "
                                 "answered with an unexpected reply");
        return NGX_ERROR;
    }

    ngx_memzero(m->hosts, sizeof(m->hosts));
    ngx_memset(m->map, NGX_WS_RELAY_CLUSTER_NONE, sizeof(m->map));
    m->nmasters = 0;
    owned = 0;

    for (i = 0; i < n; i++) {
        r = &cl->ranges[i];

        /* no address: the node asked */
        host = r->host.len ? r->host : cl->node.host;

        if (host.len > NGX_SOCKADDR_STRLEN) {
            continue;
        }

        for (k = 0; k < m->nmasters; k++) {
            if (m->masters[k].port == r->port
                && m->masters[k].host.len == host.len
                && ngx_strncmp(m->hosts[k], host.data, host.len) == 0)
            {
                break;
            }
        }

        if (k == m->nmasters) {
            if (k == NGX_WS_RELAY_CLUSTER_MASTERS) {
                ngx_ws_relay_redis_error(cl->link.log, "redis cluster: more "
                                         "than %d masters: the others are "
                                         "left out",
                                         NGX_WS_RELAY_CLUSTER_MASTERS);
                continue;
            }

            ngx_memcpy(m->hosts[k], host.data, host.len);
            m->masters[k].host.len = host.len;
            m->masters[k].port = r->port;
            m->nmasters++;
        }

        for (slot = r->first; slot <= r->last; slot++) {
            owned += (m->map[slot] == NGX_WS_RELAY_CLUSTER_NONE);
            m->map[slot] = (u_char) k;
        }
    }

    ngx_ws_relay_cluster_endpoints(m);

    if (owned < NGX_WS_RELAY_WIRE_SLOTS) {
        ngx_ws_relay_redis_error(cl->link.log, "redis cluster: %ui of %d "
                                 "slots have no master",
                                 NGX_WS_RELAY_WIRE_SLOTS - owned,
                                 NGX_WS_RELAY_WIRE_SLOTS);

        if (owned == 0) {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


static ngx_uint_t
ngx_ws_relay_cluster_same(ngx_ws_relay_cluster_map_t *a,
    ngx_ws_relay_cluster_map_t *b)
{
    ngx_uint_t  i;

    if (a->nmasters != b->nmasters
        || ngx_memcmp(a->map, b->map, sizeof(a->map)) != 0
        || ngx_memcmp(a->hosts, b->hosts, sizeof(a->hosts)) != 0)
    {
        return 0;
    }

    for (i = 0; i < a->nmasters; i++) {
        if (a->masters[i].port != b->masters[i].port) {
            return 0;
        }
    }

    return 1;
}


/* a map's endpoints point at its own host names */

static void
ngx_ws_relay_cluster_endpoints(ngx_ws_relay_cluster_map_t *m)
{
    ngx_uint_t  i;

    for (i = 0; i < m->nmasters; i++) {
        m->masters[i].host.data = m->hosts[i];
        ngx_str_null(&m->masters[i].unix_path);
    }
}
