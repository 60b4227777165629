
/*
 * Copyright (C) ngx_ws_relay_module authors
 */


#ifndef _NGX_WS_RELAY_REDIS_LINK_H_INCLUDED_
#define _NGX_WS_RELAY_REDIS_LINK_H_INCLUDED_


#include "ngx_ws_relay.h"
#include <hiredis/hiredis.h>
#include <hiredis/async.h>


/*
 * A link: one hiredis connection to one Redis endpoint, on nginx's event
 * loop, that reconnects by itself.  It authenticates and selects the
 * database; its owner makes it ready (a PING answered, a channel
 * subscribed) and hears when it is lost.  Links are the owner's structs:
 * any number of them, to any endpoints.
 */


/* channels or members per command when a link sends a whole list */
#define NGX_WS_RELAY_REDIS_BATCH  256


typedef struct ngx_ws_relay_redis_link_s  ngx_ws_relay_redis_link_t;

typedef void (*ngx_ws_relay_redis_link_pt)(ngx_ws_relay_redis_link_t *link);
typedef void (*ngx_ws_relay_redis_push_pt)(ngx_ws_relay_redis_link_t *link,
    redisReply *reply);


struct ngx_ws_relay_redis_link_s {
    redisAsyncContext               *ac;
    const char                      *name;
    ngx_ws_relay_redis_endpoint_t   *endpoint;
    ngx_ws_relay_redis_conf_t       *conf;
    ngx_log_t                       *log;

    /* connected: the owner's first commands; lost: the link went down */
    ngx_ws_relay_redis_link_pt       connected;
    ngx_ws_relay_redis_link_pt       lost;
    /* raw: every reply, in order */
    ngx_ws_relay_redis_push_pt       push;
    void                            *data;

    ngx_event_t                      reconnect;
    ngx_msec_t                       backoff;
    ngx_msec_t                       since;
    /* commands sent and not answered yet, and the last reply's time */
    ngx_uint_t                       outstanding;
    ngx_msec_t                       progress;

    unsigned                         ready:1;
    /* replies are pushed, not answers: no command is outstanding */
    unsigned                         subscriber:1;
    /* to a sentinel: its password, no database */
    unsigned                         sentinel:1;
    /* to a cluster node: no database */
    unsigned                         cluster:1;
    /*
     * hiredis only connects and writes: the link reads, and hands every
     * reply to push(); commands have no callbacks.  For sharded pub/sub,
     * whose pushes hiredis 0.14 does not know.
     */
    unsigned                         raw:1;
};


/* a command with a list of arguments, sent in batches */
typedef struct {
    ngx_ws_relay_redis_link_t       *link;
    redisCallbackFn                 *fn;
    void                            *privdata;
    ngx_uint_t                       first;
    ngx_uint_t                       argc;
    u_char                          *buf;
    u_char                          *pos;
    size_t                           item_size;
    const char                      *argv[NGX_WS_RELAY_REDIS_BATCH + 2];
    size_t                           argvlen[NGX_WS_RELAY_REDIS_BATCH + 2];
} ngx_ws_relay_redis_batch_t;


void ngx_ws_relay_redis_link_connect(ngx_ws_relay_redis_link_t *link);
void ngx_ws_relay_redis_link_ready(ngx_ws_relay_redis_link_t *link);
void ngx_ws_relay_redis_link_drop(ngx_ws_relay_redis_link_t *link,
    const char *reason);
void ngx_ws_relay_redis_link_check(ngx_ws_relay_redis_link_t *link,
    ngx_msec_t now);
void ngx_ws_relay_redis_link_restart_clock(ngx_ws_relay_redis_link_t *link,
    ngx_msec_t now);

ngx_int_t ngx_ws_relay_redis_link_command(ngx_ws_relay_redis_link_t *link,
    redisCallbackFn *fn, void *privdata, const char *format, ...);
ngx_int_t ngx_ws_relay_redis_link_send(ngx_ws_relay_redis_link_t *link,
    redisCallbackFn *fn, void *privdata, u_char *cmd, size_t len);
void ngx_ws_relay_redis_link_read(ngx_ws_relay_redis_link_t *link);
void ngx_ws_relay_redis_link_replied(ngx_ws_relay_redis_link_t *link);
ngx_uint_t ngx_ws_relay_redis_link_is_error(ngx_ws_relay_redis_link_t *link,
    redisReply *reply, const char *what);
void ngx_ws_relay_redis_link_reply(redisAsyncContext *ac, void *reply,
    void *privdata);
void ngx_ws_relay_redis_error(ngx_log_t *log, const char *fmt, ...);

ngx_int_t ngx_ws_relay_redis_batch_init(ngx_ws_relay_redis_batch_t *b,
    ngx_ws_relay_redis_link_t *link, redisCallbackFn *fn, void *privdata,
    const char *command, ngx_str_t *key, size_t item_size);
void ngx_ws_relay_redis_batch_add(ngx_ws_relay_redis_batch_t *b,
    ngx_str_t *prefix, ngx_str_t *item, const char *suffix);
void ngx_ws_relay_redis_batch_done(ngx_ws_relay_redis_batch_t *b);

ngx_int_t ngx_ws_relay_redis_attach(redisAsyncContext *ac, ngx_log_t *log);


#endif /* _NGX_WS_RELAY_REDIS_LINK_H_INCLUDED_ */
