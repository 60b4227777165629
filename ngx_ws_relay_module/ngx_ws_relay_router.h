
/*
 * Copyright (C) ngx_ws_relay_module authors
 */


#ifndef _NGX_WS_RELAY_ROUTER_H_INCLUDED_
#define _NGX_WS_RELAY_ROUTER_H_INCLUDED_


#include "ngx_ws_relay.h"


/*
 * The message protocol: what a connection gets when it opens, what each
 * client message means and what it gets back.
 */

ngx_int_t ngx_ws_relay_router_open(ngx_ws_relay_conn_t *wc,
    ngx_str_t *user_id);
void ngx_ws_relay_router_message(ngx_ws_relay_conn_t *wc, u_char *data,
    size_t len);
void ngx_ws_relay_router_close(ngx_ws_relay_conn_t *wc);


#endif /* _NGX_WS_RELAY_ROUTER_H_INCLUDED_ */
