/*
 * RFC 6455 client-side codec: SHA-1, base64, Sec-WebSocket-Accept,
 * frame encoder (always masked) and a frame parser with fragment
 * reassembly.  No sockets here: everything works on byte buffers.
 */

#ifndef WSCODEC_H
#define WSCODEC_H

#include <stddef.h>
#include <stdint.h>

#define WS_OP_CONT    0x0
#define WS_OP_TEXT    0x1
#define WS_OP_BINARY  0x2
#define WS_OP_CLOSE   0x8
#define WS_OP_PING    0x9
#define WS_OP_PONG    0xa

#define WS_RSV1       0x40        /* or'ed into an opcode: compressed */

#define WS_MAX_HEADER 14          /* 2 + 8 (length) + 4 (mask) */
#define WS_ACCEPT_LEN 28          /* base64 of a 20-byte digest */

void sha1(const void *data, size_t len, uint8_t out[20]);

/* Writes base64 of src into dst (NUL-terminated); returns its length. */
size_t base64_encode(const uint8_t *src, size_t len, char *dst);

/* accept = base64(SHA-1(key + GUID)); out needs WS_ACCEPT_LEN + 1 bytes. */
void ws_accept_for_key(const char *key, size_t key_len, char *out);

/* Encoded size of a client frame carrying len payload bytes. */
size_t ws_frame_size(size_t len);

/*
 * Writes a masked frame into dst (ws_frame_size(len) bytes); returns the
 * number of bytes written.  opcode may carry WS_RSV1.
 */
size_t ws_frame_encode(uint8_t *dst, int opcode, int fin,
    const void *payload, size_t len, uint32_t mask);

/* Errors carry the close code the peer deserves. */
typedef enum {
    WS_OK = 0,
    WS_AGAIN,                     /* need more bytes */
    WS_ERR_PROTOCOL,              /* 1002 */
    WS_ERR_TOO_BIG                /* 1009 */
} ws_status_t;

typedef struct {
    int        fin;
    int        rsv1;              /* the reassembler decides if allowed */
    int        opcode;
    int        masked;
    uint64_t   len;
    uint8_t   *payload;           /* points into the parsed buffer */
} ws_frame_t;

/*
 * Parses one frame at buf[0..avail).  Returns WS_OK with *used set to the
 * frame's total size, WS_AGAIN when the frame is incomplete, or an error.
 * A masked frame is unmasked in place (servers must not mask; the caller
 * decides whether that is an error).
 */
ws_status_t ws_frame_parse(uint8_t *buf, size_t avail, uint64_t max_len,
    ws_frame_t *f, size_t *used);

/* Reassembles fragmented data messages; control frames pass through. */
typedef struct {
    uint8_t   *buf;
    size_t     len;
    size_t     cap;
    size_t     max;               /* largest message accepted */
    int        opcode;            /* opcode of the message being built */
    int        active;            /* a fragmented message is in progress */
    int        compressed;        /* ... and its first frame had RSV1 */
    int        deflate;           /* permessage-deflate negotiated */
} ws_reasm_t;

typedef enum {
    WS_EV_NONE = 0,               /* fragment stored, nothing to deliver */
    WS_EV_MESSAGE,                /* a whole data message */
    WS_EV_CONTROL,                /* a control frame (ping, pong, close) */
    WS_EV_ERROR
} ws_event_t;

typedef struct {
    int        opcode;
    uint8_t   *data;
    size_t     len;
    int        compressed;        /* RSV1: data still to inflate */
    int        close_code;        /* for WS_EV_ERROR: code to send */
} ws_msg_t;

void ws_reasm_init(ws_reasm_t *r, size_t max);
void ws_reasm_free(ws_reasm_t *r);

/*
 * Feeds one parsed frame.  For WS_EV_MESSAGE, msg->data points either into
 * the frame (unfragmented) or into r->buf, valid until the next call.
 * RSV1 is allowed only with r->deflate set, on the first frame of a data
 * message (RFC 7692 6.1).
 */
ws_event_t ws_reasm_feed(ws_reasm_t *r, const ws_frame_t *f, ws_msg_t *msg);

/* Close frame payload: code, or 1005 when absent; -1 when malformed. */
int ws_close_code(const uint8_t *payload, size_t len);

/* UTF-8 validity (text messages). */
int ws_utf8_valid(const uint8_t *s, size_t len);

#endif
