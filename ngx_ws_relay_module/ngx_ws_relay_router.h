
/*
 * Copyright (C) ngx_ws_relay_module authors
 */


#ifndef _NGX_WS_RELAY_ROUTER_H_INCLUDED_
#define _NGX_WS_RELAY_ROUTER_H_INCLUDED_


#include "ngx_ws_relay.h"
#include <jansson.h>


/* nesting of client JSON beyond this is refused */
#define NGX_WS_RELAY_MAX_JSON_DEPTH  32


void ngx_ws_relay_router_welcome(ngx_ws_relay_conn_t *wc);
void ngx_ws_relay_router_capacity(ngx_ws_relay_conn_t *wc);
void ngx_ws_relay_router_rate_limited(ngx_ws_relay_conn_t *wc);
void ngx_ws_relay_router_message(ngx_ws_relay_conn_t *wc, u_char *data,
    size_t len);
ngx_int_t ngx_ws_relay_json_dump(json_t *json, ngx_str_t *out);


#endif /* _NGX_WS_RELAY_ROUTER_H_INCLUDED_ */
