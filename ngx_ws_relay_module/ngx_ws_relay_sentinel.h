
/*
 * Copyright (C) ngx_ws_relay_module authors
 */


#ifndef _NGX_WS_RELAY_SENTINEL_H_INCLUDED_
#define _NGX_WS_RELAY_SENTINEL_H_INCLUDED_


#include "ngx_ws_relay.h"


/*
 * ws_relay_redis sentinel=...: the sentinels name the master.  A worker
 * asks them, one after another, for its address, hears "+switch-master"
 * from one of them, and asks again from time to time and whenever its
 * owner says the master it was given is not one.  changed() runs when the
 * address in master changed.
 */

typedef void (*ngx_ws_relay_sentinel_pt)(void);


ngx_int_t ngx_ws_relay_sentinel_init(ngx_cycle_t *cycle,
    ngx_ws_relay_redis_conf_t *rcf, ngx_ws_relay_redis_endpoint_t *master,
    ngx_ws_relay_sentinel_pt changed);
void ngx_ws_relay_sentinel_exit(void);
void ngx_ws_relay_sentinel_ask(void);
void ngx_ws_relay_sentinel_tick(ngx_msec_t now);


#endif /* _NGX_WS_RELAY_SENTINEL_H_INCLUDED_ */
