
/*
 * Copyright (C) ngx_ws_relay_module authors
 */


#ifndef _NGX_WS_RELAY_CLUSTER_H_INCLUDED_
#define _NGX_WS_RELAY_CLUSTER_H_INCLUDED_


#include "ngx_ws_relay.h"
#include "ngx_ws_relay_bus_wire.h"


/*
 * ws_relay_redis cluster=...: which master of a Redis Cluster owns each
 * hash slot.  A worker asks one node (the listed ones, then the masters
 * it learnt of, in turn) with CLUSTER SLOTS, again every few seconds and
 * whenever its owner says the map is out of date (a redirection, a lost
 * link, a subscription the cluster ended); changed() runs when the
 * answer differs from the last one.
 */


/* the masters a worker follows at most */
#define NGX_WS_RELAY_CLUSTER_MASTERS  64

/* a slot no master owns */
#define NGX_WS_RELAY_CLUSTER_NONE     0xff


typedef struct {
    ngx_uint_t                      nmasters;
    ngx_ws_relay_redis_endpoint_t   masters[NGX_WS_RELAY_CLUSTER_MASTERS];
    u_char                          hosts[NGX_WS_RELAY_CLUSTER_MASTERS]
                                         [NGX_SOCKADDR_STRLEN + 1];
    /* slot -> index in masters, or NGX_WS_RELAY_CLUSTER_NONE */
    u_char                          map[NGX_WS_RELAY_WIRE_SLOTS];
} ngx_ws_relay_cluster_map_t;

typedef void (*ngx_ws_relay_cluster_pt)(ngx_ws_relay_cluster_map_t *map);


ngx_int_t ngx_ws_relay_cluster_init(ngx_cycle_t *cycle,
    ngx_ws_relay_redis_conf_t *rcf, ngx_ws_relay_cluster_pt changed);
void ngx_ws_relay_cluster_exit(void);
void ngx_ws_relay_cluster_ask(void);
void ngx_ws_relay_cluster_tick(ngx_msec_t now);


#endif /* _NGX_WS_RELAY_CLUSTER_H_INCLUDED_ */
