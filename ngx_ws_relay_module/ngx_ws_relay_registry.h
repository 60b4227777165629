
/*
 * Copyright (C) ngx_ws_relay_module authors
 */


#ifndef _NGX_WS_RELAY_REGISTRY_H_INCLUDED_
#define _NGX_WS_RELAY_REGISTRY_H_INCLUDED_


#include "ngx_ws_relay.h"
#include "ngx_ws_relay_bus_wire.h"


#define NGX_WS_RELAY_MAX_USER_ID  256


/* a user with at least one connection on this worker */
struct ngx_ws_relay_user_s {
    ngx_str_node_t   sn;
    ngx_queue_t      queue;
    ngx_queue_t      connections;
    ngx_uint_t       nconnections;
    /* the worker hears the user's channel */
    unsigned         subscribed:1;
    /* the worker stopped hearing it for a while: its messages were lost */
    unsigned         missed:1;
    /* the newest kept message the worker heard on the channel */
    ngx_ws_relay_id_t  last_id;
    u_char           data[1];
};


void ngx_ws_relay_registry_init(void);
void ngx_ws_relay_registry_add(ngx_ws_relay_conn_t *wc);
void ngx_ws_relay_registry_remove(ngx_ws_relay_conn_t *wc);
ngx_int_t ngx_ws_relay_registry_join(ngx_ws_relay_conn_t *wc,
    ngx_str_t *user_id);
void ngx_ws_relay_registry_leave(ngx_ws_relay_conn_t *wc);
ngx_ws_relay_user_t *ngx_ws_relay_registry_find_user(ngx_str_t *user_id);
ngx_uint_t ngx_ws_relay_registry_connections(void);
ngx_queue_t *ngx_ws_relay_registry_users(void);


#endif /* _NGX_WS_RELAY_REGISTRY_H_INCLUDED_ */
