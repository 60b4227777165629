
/*
 * Copyright (C) ngx_ws_relay_module authors
 */


#ifndef _NGX_WS_RELAY_BUS_H_INCLUDED_
#define _NGX_WS_RELAY_BUS_H_INCLUDED_


#include "ngx_ws_relay.h"


/*
 * The bus between workers and hosts, on Redis pub/sub: a worker hears
 * the channels of the users it holds and its own; a message for a user
 * is one PUBLISH (SPUBLISH in a Redis Cluster); the receivers' acks come
 * back to delivery.
 */


typedef enum {
    NGX_WS_RELAY_BUS_OFF = 0,
    NGX_WS_RELAY_BUS_DOWN,
    NGX_WS_RELAY_BUS_CONNECTING,
    NGX_WS_RELAY_BUS_UP
} ngx_ws_relay_bus_state_e;


ngx_int_t ngx_ws_relay_bus_init_worker(ngx_cycle_t *cycle);
void ngx_ws_relay_bus_exit_worker(void);

void ngx_ws_relay_bus_user_joined(ngx_str_t *user_id);
void ngx_ws_relay_bus_user_left(ngx_str_t *user_id);
ngx_int_t ngx_ws_relay_bus_publish(ngx_str_t *user_id, ngx_str_t *text,
    uint64_t id, ngx_ws_relay_history_conf_t *h, ngx_uint_t *stored);

/* the history script's arguments after the keys, at most */
#define NGX_WS_RELAY_HISTORY_ARGS  8

struct redisAsyncContext;
struct redisReply;

typedef void (*ngx_ws_relay_bus_reply_pt)(struct redisAsyncContext *ac,
    void *reply, void *privdata);

ngx_int_t ngx_ws_relay_bus_history(ngx_str_t *user_id, ngx_str_t *args,
    ngx_uint_t n, ngx_ws_relay_bus_reply_pt fn, void *privdata);
ngx_int_t ngx_ws_relay_bus_history_reply(struct redisAsyncContext *ac,
    struct redisReply *reply, const char *what);

/* commands about a key, to the Redis that owns it */
struct ngx_ws_relay_redis_link_s *ngx_ws_relay_bus_link(ngx_str_t *key);
ngx_int_t ngx_ws_relay_bus_command(ngx_str_t *key,
    ngx_ws_relay_bus_reply_pt fn, void *privdata, const char *format, ...);

ngx_ws_relay_bus_state_e ngx_ws_relay_bus_state(void);
ngx_uint_t ngx_ws_relay_bus_user_up(ngx_str_t *user_id);
const char *ngx_ws_relay_bus_state_name(ngx_ws_relay_bus_state_e state);
ngx_ws_relay_redis_endpoint_t *ngx_ws_relay_bus_shard(ngx_uint_t n);


#endif /* _NGX_WS_RELAY_BUS_H_INCLUDED_ */
