
/*
 * Copyright (C) ngx_ws_relay_module authors
 */


#ifndef _NGX_WS_RELAY_BUS_WIRE_H_INCLUDED_
#define _NGX_WS_RELAY_BUS_WIRE_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>


struct redisReply;


/*
 * What workers say to each other through Redis, as pure functions: no
 * socket, no state.
 *
 * Channels: "<prefix>u:{<user>}" carries the messages for a user,
 * "<prefix>n:<node>" what is for one worker (in a Redis Cluster
 * "<prefix>n:{<hash>}<node>", spread over the masters by the hash tag).  A message for a user is
 * "<origin node> <delivery id> <JSON>", or, stored in the user's history,
 * "<origin node> <delivery id>:<id> <JSON>" where <id> is the message's
 * id; a receiving worker answers on the origin's node channel with
 * "ack:<delivery id>:<connections reached>".
 * A worker's probe of the bus is "ping:<seq>" on its own node channel.
 */


#define NGX_WS_RELAY_WIRE_USER  "u:{"
#define NGX_WS_RELAY_WIRE_NODE  "n:"

/* a message's id in a user's history, "<ms>-<seq>" of a Redis stream */
#define NGX_WS_RELAY_ID_LEN  (2 * NGX_INT64_LEN + 1)


typedef struct {
    u_char                     data[NGX_WS_RELAY_ID_LEN];
    size_t                     len;
} ngx_ws_relay_id_t;

/* " <delivery id> ", "ack:<id>:<count>", "ping:<seq>" at most */
#define NGX_WS_RELAY_WIRE_HEAD_LEN  (sizeof("ack::") + 2 * NGX_INT64_LEN)


typedef enum {
    NGX_WS_RELAY_WIRE_ACK = 1,
    NGX_WS_RELAY_WIRE_PING
} ngx_ws_relay_wire_node_e;


/* a message on a node channel */
typedef struct {
    ngx_ws_relay_wire_node_e   type;
    /* ACK: the delivery and its count; PING: the sequence number */
    uint64_t                   id;
    uint64_t                   count;
} ngx_ws_relay_wire_node_t;


/* a message pushed to a subscriber */
typedef struct {
    ngx_str_t                  channel;
    ngx_str_t                  payload;
    /* a subscription confirmed, not a message */
    unsigned                   subscribed:1;
    /* a subscription ended: asked for, or by a cluster node */
    unsigned                   unsubscribed:1;
} ngx_ws_relay_wire_push_t;


/* Redis Cluster: its hash slots, and the masters that own them */
#define NGX_WS_RELAY_WIRE_SLOTS  16384

typedef struct {
    ngx_uint_t                 first;
    ngx_uint_t                 last;
    /* the master's address: host empty when it is the node asked */
    ngx_str_t                  host;
    ngx_int_t                  port;
} ngx_ws_relay_wire_range_t;

/* -MOVED <slot> <host>:<port>, -ASK <slot> <host>:<port> */
typedef struct {
    ngx_uint_t                 slot;
    ngx_str_t                  host;
    ngx_int_t                  port;
    unsigned                   ask:1;
} ngx_ws_relay_wire_redirect_t;


size_t ngx_ws_relay_wire_channel_len(ngx_str_t *prefix, const char *kind,
    ngx_str_t *name);
u_char *ngx_ws_relay_wire_channel(u_char *p, ngx_str_t *prefix,
    const char *kind, ngx_str_t *name);
ngx_int_t ngx_ws_relay_wire_channel_name(ngx_str_t *channel,
    ngx_str_t *prefix, const char *kind, ngx_str_t *name);

size_t ngx_ws_relay_wire_command_len(ngx_str_t *args, ngx_uint_t n);
u_char *ngx_ws_relay_wire_command(u_char *p, ngx_str_t *args, ngx_uint_t n);

size_t ngx_ws_relay_wire_publish_len(ngx_str_t *prefix, const char *kind,
    ngx_str_t *name, ngx_str_t *parts, ngx_uint_t n);
u_char *ngx_ws_relay_wire_publish(u_char *p, ngx_str_t *prefix,
    const char *kind, ngx_str_t *name, ngx_str_t *parts, ngx_uint_t n,
    ngx_uint_t sharded);

u_char *ngx_ws_relay_wire_user_head(u_char *p, uint64_t id,
    ngx_uint_t stored);
ngx_int_t ngx_ws_relay_wire_parse_user(ngx_str_t *payload,
    ngx_str_t *origin, uint64_t *id, ngx_str_t *hid, ngx_str_t *text);

u_char *ngx_ws_relay_wire_ack(u_char *p, uint64_t id, ngx_uint_t count);
u_char *ngx_ws_relay_wire_ping(u_char *p, uint64_t seq);
ngx_int_t ngx_ws_relay_wire_parse_node(ngx_str_t *payload,
    ngx_ws_relay_wire_node_t *m);

ngx_int_t ngx_ws_relay_wire_id_parse(ngx_str_t *text, ngx_ws_relay_id_t *id);
ngx_int_t ngx_ws_relay_wire_id_valid(ngx_str_t *id);
ngx_int_t ngx_ws_relay_wire_id_compare(ngx_str_t *a, ngx_str_t *b);
size_t ngx_ws_relay_wire_id_text_len(ngx_str_t *json, ngx_str_t *id);
u_char *ngx_ws_relay_wire_id_text(u_char *p, ngx_str_t *json, ngx_str_t *id);

ngx_uint_t ngx_ws_relay_wire_is_master(struct redisReply *reply);
ngx_int_t ngx_ws_relay_wire_parse_push(struct redisReply *reply,
    ngx_ws_relay_wire_push_t *push);

ngx_uint_t ngx_ws_relay_wire_slot(u_char *key, size_t len);
ngx_int_t ngx_ws_relay_wire_redirect(struct redisReply *reply,
    ngx_ws_relay_wire_redirect_t *r);
ngx_int_t ngx_ws_relay_wire_cluster_slots(struct redisReply *reply,
    ngx_ws_relay_wire_range_t *ranges, ngx_uint_t *n);


#endif /* _NGX_WS_RELAY_BUS_WIRE_H_INCLUDED_ */
