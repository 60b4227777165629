
/*
 * Copyright (C) ngx_ws_relay_module authors
 */


#ifndef _NGX_WS_RELAY_DELIVERY_H_INCLUDED_
#define _NGX_WS_RELAY_DELIVERY_H_INCLUDED_


#include "ngx_ws_relay.h"
#include "ngx_ws_relay_bus_wire.h"


typedef struct ngx_ws_relay_delivery_s  ngx_ws_relay_delivery_t;

typedef void (*ngx_ws_relay_delivery_pt)(ngx_ws_relay_delivery_t *d);


/*
 * One message sent to every connection of a user in the cluster: local
 * connections at once, the others through one PUBLISH whose receivers
 * ack with their counts.  The handler runs once, when the acks are in or
 * the deadline passes, and owns the delivery from then on.
 */

struct ngx_ws_relay_delivery_s {
    ngx_rbtree_node_t           node;
    ngx_queue_t                 queue;
    ngx_event_t                 timer;

    /* unique in the worker: acks name it */
    uint64_t                    id;

    /* acks still expected: -1 until PUBLISH answers */
    ngx_int_t                   expected;
    ngx_uint_t                  acks;
    ngx_uint_t                  delivered;

    ngx_ws_relay_delivery_pt    handler;
    void                       *data;
    ngx_log_t                  *log;
    /* the target user; the bytes follow the struct */
    ngx_str_t                   user_id;

    /* the sender's ws_relay_history; NULL: none */
    ngx_ws_relay_history_conf_t  *history;
    /* a copy of the message while the history script runs */
    ngx_str_t                   text;
    /* its id in the user's history, once stored */
    ngx_ws_relay_id_t           hid;

    unsigned                    done:1;
    unsigned                    pending:1;
    /* the first connection reached settles it (chat: delivered or not) */
    unsigned                    any:1;
    /* kept in the user's history */
    unsigned                    stored:1;
};


void ngx_ws_relay_delivery_init(void);
ngx_ws_relay_delivery_t *ngx_ws_relay_delivery_create(
    ngx_ws_relay_delivery_pt handler, void *data, ngx_str_t *user_id,
    ngx_log_t *log);
void ngx_ws_relay_delivery_start(ngx_ws_relay_delivery_t *d,
    ngx_str_t *text);
void ngx_ws_relay_delivery_free(ngx_ws_relay_delivery_t *d);
void ngx_ws_relay_delivery_abandon(ngx_queue_t *queue);

void ngx_ws_relay_delivery_published(uint64_t id, ngx_int_t receivers);
void ngx_ws_relay_delivery_stored(uint64_t id, ngx_str_t *hid);
void ngx_ws_relay_delivery_unstored(uint64_t id);
void ngx_ws_relay_delivery_acked(uint64_t id, ngx_uint_t delivered);
/* ,"queued":..,"id":".." for a sender with history: at most this long */
#define NGX_WS_RELAY_DELIVERY_QUEUED_LEN                                     \
    (sizeof(",\"queued\":false,\"id\":\"\"") + NGX_WS_RELAY_ID_LEN)

u_char *ngx_ws_relay_delivery_write_queued(u_char *p,
    ngx_ws_relay_delivery_t *d);
ngx_uint_t ngx_ws_relay_delivery_local(ngx_str_t *user_id, ngx_str_t *text,
    ngx_str_t *hid);


#endif /* _NGX_WS_RELAY_DELIVERY_H_INCLUDED_ */
