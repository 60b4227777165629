
/*
 * Copyright (C) ngx_ws_relay_module authors
 */


#ifndef _NGX_WS_RELAY_H_INCLUDED_
#define _NGX_WS_RELAY_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>


typedef struct ngx_ws_relay_conn_s  ngx_ws_relay_conn_t;
typedef struct ngx_ws_relay_user_s  ngx_ws_relay_user_t;


/* one Redis server */
typedef struct {
    ngx_str_t                   host;          /* null-terminated */
    ngx_int_t                   port;
    ngx_str_t                   unix_path;     /* null-terminated */
} ngx_ws_relay_redis_endpoint_t;


typedef struct {
    /* of ngx_ws_relay_redis_endpoint_t */
    ngx_array_t                *endpoints;
    /* sentinel=: of ngx_ws_relay_redis_endpoint_t; NULL: none */
    ngx_array_t                *sentinels;
    /* cluster=: endpoints are the nodes to ask for the slots */
    ngx_flag_t                  cluster;
    /* the master the sentinels name, and their password */
    ngx_str_t                   master;
    ngx_str_t                   sentinel_password;
    ngx_str_t                   password;
    ngx_int_t                   db;
    ngx_str_t                   prefix;
    ngx_msec_t                  timeout;
    ngx_msec_t                  ack_timeout;
    ngx_flag_t                  enabled;
} ngx_ws_relay_redis_conf_t;


/* ws_relay_history */
typedef struct {
    /* messages kept per user; 0: no history */
    ngx_uint_t                  size;
    ngx_msec_t                  ttl;
    /* how long a user's newest and lost ids are remembered */
    ngx_msec_t                  meta_ttl;
    /* resume_unverified=on: replay to user ids the clients claim */
    ngx_flag_t                  unverified;
} ngx_ws_relay_history_conf_t;


typedef struct {
    ngx_uint_t                  max_connections;
    ngx_msec_t                  close_timeout;
    /* ws_relay_drain: the closes of a shutdown spread over this window */
    ngx_msec_t                  drain;
    ngx_ws_relay_redis_conf_t   redis;
    /* the statistics zone; NULL when nothing uses the module */
    ngx_shm_zone_t             *shm_zone;
    /* a location serves WebSocket clients or the API */
    ngx_flag_t                  used;
    /* a location keeps history */
    ngx_flag_t                  history;
} ngx_ws_relay_main_conf_t;


typedef struct {
    ngx_flag_t                  enable;
    ngx_msec_t                  heartbeat;
    size_t                      max_message_size;
    size_t                      send_buffer;
    ngx_http_complex_value_t   *user_id;
    /* ws_relay_user_id "optional": an empty identity is no refusal */
    ngx_flag_t                  user_id_optional;
    ngx_flag_t                  deflate;
    size_t                      deflate_min_length;
    ngx_int_t                   deflate_level;
    /* messages per second per connection, times 1000; 0: no limit */
    ngx_uint_t                  limit_rate;
    ngx_uint_t                  limit_burst;
    ngx_ws_relay_history_conf_t history;
    /* which API route the location serves */
    ngx_uint_t                  api;
} ngx_ws_relay_loc_conf_t;


/* this worker: the node of the cluster it is */
typedef struct {
    ngx_str_t                   node_id;
    ngx_uint_t                  next_connection;
    ngx_ws_relay_main_conf_t   *main_conf;
} ngx_ws_relay_worker_t;


extern ngx_module_t           ngx_ws_relay_module;
extern ngx_ws_relay_worker_t  ngx_ws_relay_worker;


ngx_int_t ngx_ws_relay_handshake_handler(ngx_http_request_t *r);
char *ngx_ws_relay_api_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
ngx_int_t ngx_ws_relay_api_handler(ngx_http_request_t *r);
ngx_int_t ngx_ws_relay_http_send(ngx_http_request_t *r, ngx_uint_t status,
    ngx_str_t *type, u_char *data, size_t len);
ngx_int_t ngx_ws_relay_http_add_header(ngx_http_request_t *r, ngx_str_t *key,
    ngx_str_t *value);
ngx_table_elt_t *ngx_ws_relay_http_find_header(ngx_http_request_t *r,
    ngx_str_t *name);
uint64_t ngx_ws_relay_now_ms(void);


#endif /* _NGX_WS_RELAY_H_INCLUDED_ */
