
/*
 * Copyright (C) ngx_ws_relay_module authors
 */


#ifndef _NGX_WS_RELAY_DEFLATE_H_INCLUDED_
#define _NGX_WS_RELAY_DEFLATE_H_INCLUDED_


#include "ngx_ws_relay.h"


/* what an accepted permessage-deflate offer settled */
typedef struct {
    ngx_uint_t   server_window_bits;
    ngx_str_t    response;
} ngx_ws_relay_deflate_offer_t;


ngx_int_t ngx_ws_relay_deflate_negotiate(ngx_http_request_t *r,
    ngx_ws_relay_deflate_offer_t *offer);
ngx_int_t ngx_ws_relay_inflate(u_char *data, size_t len, size_t max,
    ngx_str_t *out, ngx_log_t *log);
ngx_int_t ngx_ws_relay_deflate(ngx_uint_t window_bits, ngx_int_t level,
    u_char *data, size_t len, ngx_str_t *out, ngx_log_t *log);


#endif /* _NGX_WS_RELAY_DEFLATE_H_INCLUDED_ */
