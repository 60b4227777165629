
/*
 * Copyright (C) ngx_ws_relay_module authors
 */


#ifndef _NGX_WS_RELAY_PRESENCE_H_INCLUDED_
#define _NGX_WS_RELAY_PRESENCE_H_INCLUDED_


#include "ngx_ws_relay.h"
#include "ngx_ws_relay_redis_link.h"


/*
 * Which users each worker of the cluster holds, kept in Redis for
 * /api/redis-info: the set "<prefix>node:<node>:users" holds the users
 * of a worker, and the sorted set "<prefix>nodes" its lease expiry; both
 * expire when the worker stops refreshing them.
 */


typedef struct {
    ngx_str_t     node;
    /* of ngx_str_t */
    ngx_array_t   users;
} ngx_ws_relay_presence_node_t;

/* nodes: of ngx_ws_relay_presence_node_t, NULL when Redis failed */
typedef void (*ngx_ws_relay_presence_pt)(ngx_array_t *nodes, void *data);


ngx_int_t ngx_ws_relay_presence_init(ngx_ws_relay_redis_conf_t *rcf,
    ngx_cycle_t *cycle);
void ngx_ws_relay_presence_ready(void);
void ngx_ws_relay_presence_tick(ngx_msec_t now);
void ngx_ws_relay_presence_exit(void);
void ngx_ws_relay_presence_joined(ngx_str_t *user_id);
void ngx_ws_relay_presence_left(ngx_str_t *user_id);
ngx_int_t ngx_ws_relay_presence_query(ngx_ws_relay_presence_pt handler,
    void *data);


#endif /* _NGX_WS_RELAY_PRESENCE_H_INCLUDED_ */
