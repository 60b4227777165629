
/*
 * Copyright (C) ngx_ws_relay_module authors
 */


#ifndef _NGX_WS_RELAY_CONN_H_INCLUDED_
#define _NGX_WS_RELAY_CONN_H_INCLUDED_


#include "ngx_ws_relay.h"
#include "ngx_ws_relay_frame.h"
#include "ngx_ws_relay_bus_wire.h"


/* a text message on its way to several connections */
typedef struct {
    ngx_str_t                     text;
    /* text compressed with this window and level; 0: not yet */
    ngx_uint_t                    window_bits;
    ngx_int_t                     level;
    ngx_str_t                     deflated;
} ngx_ws_relay_message_t;


struct ngx_ws_relay_conn_s {
    ngx_queue_t                   user_queue;
    ngx_ws_relay_user_t          *user;

    /* until the detach after the 101, then NULL (unless keep_request) */
    ngx_http_request_t           *request;
    ngx_connection_t             *connection;
    ngx_ws_relay_loc_conf_t      *conf;

    ngx_str_t                     id;
    ngx_msec_t                    start;
    /* ws_relay_limit_rate: excess messages (times 1000) at "limited" */
    ngx_uint_t                    limit_excess;
    ngx_msec_t                    limit_last;
    ngx_uint_t                    limit_refused;

    /* sent or received in a close frame; none: 1006 */
    ngx_uint_t                    close_code;

    /* deliveries whose replies are due, in the order of the requests */
    ngx_queue_t                   deliveries;

    /* not live yet: registered or resuming (ngx_ws_relay_history.c) */
    void                         *resume;
    /* the newest kept message sent to the client: older ones are copies */
    ngx_ws_relay_id_t             last_id;
    /* ws_relay_drain: the close due on shutdown */
    ngx_event_t                  *drain;

    ngx_ws_relay_frame_parser_t   parser;
    /* permessage-deflate: our window bits; 0: not negotiated */
    ngx_uint_t                    deflate_bits;
    uint32_t                      utf8_state;

    /* bytes read and not parsed yet: in[in_pos .. in_last) */
    u_char                       *in;
    size_t                        in_pos;
    size_t                        in_last;

    /* a message that arrived in several reads */
    u_char                       *message;
    size_t                        message_len;
    size_t                        message_size;

    /* frames waiting for the socket: out[out_pos .. out_last) */
    u_char                       *out;
    size_t                        out_pos;
    size_t                        out_last;
    size_t                        out_size;

    /* the request is not freed at the detach (see conn_start) */
    unsigned                      keep_request:1;
    unsigned                      registered:1;
    /* the user id came from ws_relay_user_id, not from the client */
    unsigned                      user_fixed:1;
    /* something arrived since the last heartbeat tick */
    unsigned                      alive:1;
    /* our close frame is queued: nothing else goes out */
    unsigned                      closing:1;
    unsigned                      close_received:1;
    /* the peer broke the protocol or sent close: no more parsing */
    unsigned                      read_closed:1;
    unsigned                      write_shutdown:1;
    /* the peer's FIN came: flush, then close */
    unsigned                      peer_closed:1;
    /* the read budget ran out: the others go first on the next pass */
    unsigned                      yield:1;
};


ngx_int_t ngx_ws_relay_conn_start(ngx_http_request_t *r,
    ngx_ws_relay_loc_conf_t *wlcf, ngx_uint_t deflate_bits,
    ngx_str_t *user_id);
ngx_int_t ngx_ws_relay_conn_send(ngx_ws_relay_conn_t *wc, ngx_uint_t opcode,
    u_char *data, size_t len);
ngx_int_t ngx_ws_relay_conn_send_message(ngx_ws_relay_conn_t *wc,
    ngx_ws_relay_message_t *m);
void ngx_ws_relay_conn_read_on(ngx_ws_relay_conn_t *wc);
void ngx_ws_relay_conn_close(ngx_ws_relay_conn_t *wc, ngx_uint_t code,
    const char *reason);
void ngx_ws_relay_conn_fail(ngx_ws_relay_conn_t *wc, ngx_uint_t code,
    const char *reason);


#endif /* _NGX_WS_RELAY_CONN_H_INCLUDED_ */
