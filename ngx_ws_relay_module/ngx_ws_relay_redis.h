
/*
 * Copyright (C) ngx_ws_relay_module authors
 */


#ifndef _NGX_WS_RELAY_REDIS_H_INCLUDED_
#define _NGX_WS_RELAY_REDIS_H_INCLUDED_


#include "ngx_ws_relay.h"
#include <hiredis/hiredis.h>
#include <hiredis/async.h>
#include <jansson.h>


typedef enum {
    NGX_WS_RELAY_REDIS_OFF = 0,
    NGX_WS_RELAY_REDIS_DOWN,
    NGX_WS_RELAY_REDIS_CONNECTING,
    NGX_WS_RELAY_REDIS_UP
} ngx_ws_relay_redis_state_e;


char *ngx_ws_relay_redis_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
void ngx_ws_relay_redis_init_conf(ngx_ws_relay_redis_conf_t *rcf);

ngx_int_t ngx_ws_relay_redis_init_worker(ngx_cycle_t *cycle);
void ngx_ws_relay_redis_exit_worker(void);

void ngx_ws_relay_redis_user_joined(ngx_str_t *user_id);
void ngx_ws_relay_redis_user_left(ngx_str_t *user_id);
ngx_int_t ngx_ws_relay_redis_publish(ngx_str_t *user_id, ngx_str_t *text,
    uint64_t id);

typedef void (*ngx_ws_relay_presence_pt)(json_t *nodes, void *data);

ngx_int_t ngx_ws_relay_redis_presence(ngx_ws_relay_presence_pt handler,
    void *data);

ngx_ws_relay_redis_state_e ngx_ws_relay_redis_state(void);
const char *ngx_ws_relay_redis_state_name(ngx_ws_relay_redis_state_e state);

ngx_int_t ngx_ws_relay_redis_attach(redisAsyncContext *ac, ngx_log_t *log);


#endif /* _NGX_WS_RELAY_REDIS_H_INCLUDED_ */
