
/*
 * Copyright (C) ngx_ws_relay_module authors
 */


#ifndef _NGX_WS_RELAY_FRAME_H_INCLUDED_
#define _NGX_WS_RELAY_FRAME_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>


/*
 * RFC 6455 frame codec.  The parser never touches a socket: it is fed
 * whatever bytes arrived, in any split, and resumes where it stopped.
 */


#define NGX_WS_RELAY_OP_CONTINUATION  0x0
#define NGX_WS_RELAY_OP_TEXT          0x1
#define NGX_WS_RELAY_OP_BINARY        0x2
#define NGX_WS_RELAY_OP_CLOSE         0x8
#define NGX_WS_RELAY_OP_PING          0x9
#define NGX_WS_RELAY_OP_PONG          0xa

#define NGX_WS_RELAY_FIN              0x80
#define NGX_WS_RELAY_RSV1             0x40
#define NGX_WS_RELAY_RSV2             0x20
#define NGX_WS_RELAY_RSV3             0x10

#define NGX_WS_RELAY_MAX_CONTROL      125

#define NGX_WS_RELAY_CLOSE_NORMAL          1000
#define NGX_WS_RELAY_CLOSE_GOING_AWAY      1001
#define NGX_WS_RELAY_CLOSE_PROTOCOL        1002
#define NGX_WS_RELAY_CLOSE_NO_STATUS       1005
#define NGX_WS_RELAY_CLOSE_INVALID_DATA    1007
#define NGX_WS_RELAY_CLOSE_POLICY          1008
#define NGX_WS_RELAY_CLOSE_TOO_BIG         1009
#define NGX_WS_RELAY_CLOSE_INTERNAL        1011
#define NGX_WS_RELAY_CLOSE_TRY_AGAIN       1013


typedef enum {
    NGX_WS_RELAY_FRAME_DATA = 0,
    NGX_WS_RELAY_FRAME_CONTROL
} ngx_ws_relay_frame_event_type_e;


typedef struct {
    ngx_ws_relay_frame_event_type_e  type;
    ngx_uint_t                       opcode;
    u_char                          *data;
    size_t                           len;

    /* DATA: the chunk opens and/or ends a message */
    unsigned                         first:1;
    unsigned                         last:1;
    /* DATA: the message was sent with RSV1 (permessage-deflate) */
    unsigned                         compressed:1;
} ngx_ws_relay_frame_event_t;


typedef struct {
    uint64_t                         remaining;
    uint64_t                         message_size;
    uint64_t                         max_message_size;

    ngx_uint_t                       state;
    ngx_uint_t                       need;
    u_char                           ext[8];

    u_char                           mask[4];
    ngx_uint_t                       mask_index;

    u_char                           opcode;
    u_char                           message_opcode;
    unsigned                         fin:1;
    unsigned                         message_first:1;
    unsigned                         message_compressed:1;
    /* RSV1 may open a data message (permessage-deflate negotiated) */
    unsigned                         rsv1_allowed:1;

    ngx_uint_t                       control_len;
    u_char                           control[NGX_WS_RELAY_MAX_CONTROL];

    /* set when the parser returns NGX_ERROR */
    ngx_uint_t                       error_code;
    const char                      *error;
} ngx_ws_relay_frame_parser_t;


void ngx_ws_relay_frame_parser_init(ngx_ws_relay_frame_parser_t *p,
    uint64_t max_message_size);
ngx_int_t ngx_ws_relay_frame_parse(ngx_ws_relay_frame_parser_t *p,
    u_char **pos, u_char *last, ngx_ws_relay_frame_event_t *ev);

ngx_int_t ngx_ws_relay_frame_parse_close(u_char *data, size_t len,
    ngx_uint_t *code, ngx_uint_t *error_code, const char **error);

ngx_int_t ngx_ws_relay_utf8_check(uint32_t *state, u_char *p, size_t len);
#define ngx_ws_relay_utf8_complete(state)  ((state) == 0)

size_t ngx_ws_relay_frame_header_size(size_t len);
u_char *ngx_ws_relay_frame_write_header(u_char *p, ngx_uint_t opcode,
    ngx_uint_t flags, size_t len);


#endif /* _NGX_WS_RELAY_FRAME_H_INCLUDED_ */
