
/*
 * Copyright (C) ngx_ws_relay_module authors
 */


/*
 * libFuzzer target: the bus's wire format, ngx_ws_relay_bus_wire.c, as
 * the frame target does the frame codec: pure functions on any bytes.
 *
 * The input, whole, is
 * - a message on a user's channel and one on a node channel, for
 *   ngx_ws_relay_wire_parse_user() and _parse_node(): each agrees with
 *   an oracle of its own below (written from the format in
 *   ngx_ws_relay_bus_wire.h), and what it parses lies inside the input;
 * - a channel, for ngx_ws_relay_wire_channel_name() with two prefixes;
 * - what Redis sends a subscriber: hiredis's reader makes replies of it,
 *   and ngx_ws_relay_wire_parse_push() must classify each one as the
 *   oracle does, its channel and payload those of the reply.
 *
 * Then the input is read as fields (a length byte and that many bytes,
 * or 8 bytes for a number) for round trips: a user message written with
 * _user_head() from any origin without a space, id and text parses back
 * to them; _ack() and _ping() of any numbers parse back to them, within
 * NGX_WS_RELAY_WIRE_HEAD_LEN; _channel() of any prefix and name gives the
 * name back by _channel_name(), and nothing for the other kind; and
 * _publish() of any prefix, name and parts, in a buffer of exactly
 * _publish_len() bytes, is read by hiredis's reader as one command,
 * ["PUBLISH", <prefix><kind><name>, <the parts, concatenated>], and
 * nothing more.
 *
 * A prefix comes from the configuration and has no NUL byte: the
 * prefixes tried here have none either.
 */


#include "fuzz_reader.h"
#include "ngx_ws_relay_bus_wire.h"


/* replies read off one input, at most */
#define FUZZ_REPLIES  16
#define FUZZ_PARTS    4


typedef struct {
    const u_char   *pos;
    const u_char   *last;
} fuzz_in_t;


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_parse_user(ngx_str_t *payload);
static void fuzz_parse_node(ngx_str_t *payload);
static void fuzz_channel_name(ngx_str_t *channel, ngx_str_t *prefix);
static void fuzz_pushes(const u_char *data, size_t size);
static void fuzz_round_trips(fuzz_in_t *in);
static void fuzz_publish(fuzz_in_t *in, ngx_str_t *prefix, ngx_str_t *name,
    const char *kind);
static const u_char *fuzz_number(const u_char *p, const u_char *last,
    uint64_t *n);
static ngx_uint_t fuzz_inside(ngx_str_t *part, ngx_str_t *whole);
static ngx_uint_t fuzz_is(redisReply *r, const void *data, size_t len);
static void fuzz_field(fuzz_in_t *in, ngx_str_t *s);
static uint64_t fuzz_u64(fuzz_in_t *in);


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    u_char     *copy;
    ngx_str_t   s, prefix;
    fuzz_in_t   in;

    /* a buffer of the exact size: ASan sees any read past the input */
    copy = malloc(size ? size : 1);
    fuzz_assert(copy != NULL);

    if (size) {
        ngx_memcpy(copy, data, size);
    }

    s.data = copy;
    s.len = size;

    fuzz_parse_user(&s);
    fuzz_parse_node(&s);

    ngx_str_set(&prefix, "ws_relay:");
    fuzz_channel_name(&s, &prefix);
    ngx_str_set(&prefix, "");
    fuzz_channel_name(&s, &prefix);

    fuzz_pushes(copy, size);

    in.pos = copy;
    in.last = copy + size;

    fuzz_round_trips(&in);

    free(copy);

    return 0;
}


/* "<origin> <id> <text>": an origin without space, a 64-bit decimal id */

static void
fuzz_parse_user(ngx_str_t *payload)
{
    u_char       *sp, *last;
    uint64_t      id, ref_id;
    ngx_int_t     rc;
    ngx_str_t     origin, text;
    const u_char  *p;

    rc = ngx_ws_relay_wire_parse_user(payload, &origin, &id, &text);

    last = payload->data + payload->len;
    sp = memchr(payload->data, ' ', payload->len);
    p = NULL;

    if (sp != NULL && sp != payload->data) {
        p = fuzz_number(sp + 1, last, &ref_id);
    }

    if (p == NULL || p == last || *p != ' ') {
        fuzz_assert(rc == NGX_ERROR);
        return;
    }

    fuzz_assert(rc == NGX_OK);
    fuzz_assert(fuzz_inside(&origin, payload) && fuzz_inside(&text, payload));
    fuzz_assert(origin.data == payload->data
                && origin.len == (size_t) (sp - payload->data));
    fuzz_assert(id == ref_id);
    fuzz_assert(text.data == p + 1 && text.data + text.len == last);
}


/* "ack:<id>:<count>" or "ping:<seq>", 64-bit decimals, nothing after */

static void
fuzz_parse_node(ngx_str_t *payload)
{
    u_char                    *last;
    uint64_t                   a, b;
    ngx_int_t                  rc;
    const u_char              *p;
    ngx_ws_relay_wire_node_t   m;

    rc = ngx_ws_relay_wire_parse_node(payload, &m);

    last = payload->data + payload->len;
    p = NULL;
    b = 0;

    if (payload->len >= 4 && memcmp(payload->data, "ack:", 4) == 0) {
        p = fuzz_number(payload->data + 4, last, &a);

        if (p != NULL && p < last && *p == ':') {
            p = fuzz_number(p + 1, last, &b);

        } else {
            p = NULL;
        }

        if (p == last) {
            fuzz_assert(rc == NGX_OK && m.type == NGX_WS_RELAY_WIRE_ACK);
            fuzz_assert(m.id == a && m.count == b);
            return;
        }

    } else if (payload->len >= 5 && memcmp(payload->data, "ping:", 5) == 0) {
        p = fuzz_number(payload->data + 5, last, &a);

        if (p == last) {
            fuzz_assert(rc == NGX_OK && m.type == NGX_WS_RELAY_WIRE_PING);
            fuzz_assert(m.id == a && m.count == 0);
            return;
        }
    }

    fuzz_assert(rc == NGX_ERROR);
}


static void
fuzz_channel_name(ngx_str_t *channel, ngx_str_t *prefix)
{
    ngx_int_t    rc;
    ngx_str_t    name;
    ngx_uint_t   k, ours;

    static const char  *kinds[] = {
        NGX_WS_RELAY_WIRE_USER, NGX_WS_RELAY_WIRE_NODE
    };

    for (k = 0; k < 2; k++) {
        rc = ngx_ws_relay_wire_channel_name(channel, prefix, kinds[k],
                                            &name);

        ours = channel->len > prefix->len + 2
               && memcmp(channel->data, prefix->data, prefix->len) == 0
               && memcmp(channel->data + prefix->len, kinds[k], 2) == 0;

        if (!ours) {
            fuzz_assert(rc == NGX_DECLINED);
            continue;
        }

        fuzz_assert(rc == NGX_OK && fuzz_inside(&name, channel));
        fuzz_assert(name.len >= 1
                    && name.data == channel->data + prefix->len + 2
                    && name.data + name.len == channel->data + channel->len);
    }
}


/* every reply hiredis reads off the bytes, as a subscriber would get it */

static void
fuzz_pushes(const u_char *data, size_t size)
{
    int                        rc;
    void                      *r;
    ngx_int_t                  got, want;
    ngx_uint_t                 i;
    redisReply                *reply, **e;
    redisReader               *reader;
    ngx_ws_relay_wire_push_t   push;

    reader = fuzz_reader_new(data, size);

    for (i = 0; i < FUZZ_REPLIES; i++) {
        r = NULL;
        rc = redisReaderGetReply(reader, &r);

        if (rc != REDIS_OK || r == NULL) {
            break;
        }

        reply = r;
        e = reply->element;

        ngx_memset(&push, 0xa5, sizeof(push));
        got = ngx_ws_relay_wire_parse_push(reply, &push);

        if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 3
            || e[0]->type != REDIS_REPLY_STRING
            || e[1]->type != REDIS_REPLY_STRING)
        {
            want = NGX_ERROR;

        } else if (fuzz_is(e[0], "subscribe", 9)) {
            want = NGX_OK;

        } else if (!fuzz_is(e[0], "message", 7)) {
            want = NGX_DECLINED;

        } else {
            want = (e[2]->type == REDIS_REPLY_STRING) ? NGX_OK : NGX_ERROR;
        }

        fuzz_assert(got == want);

        if (got == NGX_OK) {
            fuzz_assert(push.channel.data == (u_char *) e[1]->str
                        && push.channel.len == e[1]->len);

            if (fuzz_is(e[0], "subscribe", 9)) {
                fuzz_assert(push.subscribed && push.payload.len == 0);

            } else {
                fuzz_assert(!push.subscribed
                            && push.payload.data == (u_char *) e[2]->str
                            && push.payload.len == e[2]->len);
            }
        }

        freeReplyObject(reply);
    }

    redisReaderFree(reader);
}


static void
fuzz_round_trips(fuzz_in_t *in)
{
    u_char                    *buf, *p, head[NGX_WS_RELAY_WIRE_HEAD_LEN];
    uint64_t                   id, id2, count;
    ngx_str_t                  origin, text, payload, prefix, name;
    ngx_str_t                  origin2, text2;
    ngx_uint_t                 i, k;
    ngx_ws_relay_wire_node_t   m;

    id = fuzz_u64(in);
    count = fuzz_u64(in);
    fuzz_field(in, &origin);
    fuzz_field(in, &text);

    /* a user's message */

    buf = malloc(origin.len + 1 + NGX_WS_RELAY_WIRE_HEAD_LEN + text.len);
    fuzz_assert(buf != NULL);

    p = ngx_cpymem(buf, origin.data, origin.len);

    if (origin.len == 0) {
        *p++ = 'o';
    }

    /* the origin is a node id: no space in it */
    for (k = 0; k < (size_t) (p - buf); k++) {
        if (buf[k] == ' ') {
            buf[k] = '_';
        }
    }

    origin.data = buf;
    origin.len = p - buf;

    p = ngx_ws_relay_wire_user_head(p, id);
    fuzz_assert((size_t) (p - buf - origin.len) <= NGX_WS_RELAY_WIRE_HEAD_LEN);
    p = ngx_cpymem(p, text.data, text.len);

    payload.data = buf;
    payload.len = p - buf;

    fuzz_assert(ngx_ws_relay_wire_parse_user(&payload, &origin2, &id2, &text2)
                == NGX_OK);
    fuzz_assert(origin2.data == origin.data && origin2.len == origin.len);
    fuzz_assert(id2 == id);
    fuzz_assert(text2.len == text.len
                && (text.len == 0
                    || ngx_memcmp(text2.data, text.data, text.len) == 0));

    free(buf);

    /* an ack and a ping */

    payload.data = head;
    payload.len = ngx_ws_relay_wire_ack(head, id, (ngx_uint_t) count) - head;
    fuzz_assert(payload.len <= NGX_WS_RELAY_WIRE_HEAD_LEN);
    fuzz_assert(ngx_ws_relay_wire_parse_node(&payload, &m) == NGX_OK);
    fuzz_assert(m.type == NGX_WS_RELAY_WIRE_ACK && m.id == id
                && m.count == (ngx_uint_t) count);

    payload.len = ngx_ws_relay_wire_ping(head, count) - head;
    fuzz_assert(payload.len <= NGX_WS_RELAY_WIRE_HEAD_LEN);
    fuzz_assert(ngx_ws_relay_wire_parse_node(&payload, &m) == NGX_OK);
    fuzz_assert(m.type == NGX_WS_RELAY_WIRE_PING && m.id == count
                && m.count == 0);

    /* channels: a prefix of the configuration, a user or a node */

    fuzz_field(in, &prefix);
    fuzz_field(in, &name);

    buf = malloc(prefix.len + 1);
    fuzz_assert(buf != NULL);

    for (i = 0, k = 0; i < prefix.len; i++) {
        if (prefix.data[i] != '\0') {
            buf[k++] = prefix.data[i];
        }
    }

    prefix.data = buf;
    prefix.len = k;

    for (k = 0; k < 2; k++) {
        fuzz_publish(in, &prefix, &name,
                     k ? NGX_WS_RELAY_WIRE_NODE : NGX_WS_RELAY_WIRE_USER);
    }

    free(buf);
}


static void
fuzz_publish(fuzz_in_t *in, ngx_str_t *prefix, ngx_str_t *name,
    const char *kind)
{
    int           rc;
    void         *r;
    u_char       *buf, *p, *q;
    size_t        len, total;
    ngx_int_t     ret;
    ngx_str_t     channel, back, parts[FUZZ_PARTS];
    ngx_uint_t    i, n;
    const char   *other;
    redisReply   *reply;
    redisReader  *reader;

    /* the channel, and the name back from it */

    len = ngx_ws_relay_wire_channel_len(prefix, name);
    fuzz_assert(len == prefix->len + 2 + name->len);

    buf = malloc(len);
    fuzz_assert(buf != NULL);

    p = ngx_ws_relay_wire_channel(buf, prefix, kind, name);
    fuzz_assert(p == buf + len);

    channel.data = buf;
    channel.len = len;

    ret = ngx_ws_relay_wire_channel_name(&channel, prefix, kind, &back);

    if (name->len == 0) {
        fuzz_assert(ret == NGX_DECLINED);

    } else {
        fuzz_assert(ret == NGX_OK && back.len == name->len
                    && ngx_memcmp(back.data, name->data, name->len) == 0);
    }

    other = (kind[0] == 'u') ? NGX_WS_RELAY_WIRE_NODE : NGX_WS_RELAY_WIRE_USER;
    fuzz_assert(ngx_ws_relay_wire_channel_name(&channel, prefix, other, &back)
                == NGX_DECLINED);

    /* PUBLISH */

    n = in->pos < in->last ? *in->pos++ % (FUZZ_PARTS + 1) : 0;
    total = 0;

    for (i = 0; i < n; i++) {
        fuzz_field(in, &parts[i]);
        total += parts[i].len;
    }

    len = ngx_ws_relay_wire_publish_len(prefix, name, parts, n);

    q = malloc(len);
    fuzz_assert(q != NULL);

    p = ngx_ws_relay_wire_publish(q, prefix, kind, name, parts, n);
    fuzz_assert(p > q && (size_t) (p - q) <= len);

    reader = redisReaderCreate();
    fuzz_assert(reader != NULL);
    fuzz_assert(redisReaderFeed(reader, (char *) q, p - q) == REDIS_OK);

    r = NULL;
    rc = redisReaderGetReply(reader, &r);
    fuzz_assert(rc == REDIS_OK && r != NULL);

    /* one command, all of the bytes */
    fuzz_assert(reader->pos == reader->len);

    reply = r;

    fuzz_assert(reply->type == REDIS_REPLY_ARRAY && reply->elements == 3);
    fuzz_assert(fuzz_is(reply->element[0], "PUBLISH", 7));
    fuzz_assert(fuzz_is(reply->element[1], channel.data, channel.len));
    fuzz_assert(reply->element[2]->type == REDIS_REPLY_STRING
                && reply->element[2]->len == total);

    p = (u_char *) reply->element[2]->str;

    for (i = 0; i < n; i++) {
        fuzz_assert(parts[i].len == 0
                    || ngx_memcmp(p, parts[i].data, parts[i].len) == 0);
        p += parts[i].len;
    }

    freeReplyObject(reply);
    redisReaderFree(reader);
    free(q);
    free(buf);
}


/*
 * The oracle's decimal: at least one digit, the value in 64 bits; NULL:
 * none, or too big.
 */

static const u_char *
fuzz_number(const u_char *p, const u_char *last, uint64_t *n)
{
    uint64_t      v;
    const u_char  *start;

    v = 0;

    for (start = p; p < last && isdigit(*p); p++) {
        if (__builtin_mul_overflow(v, 10, &v)
            || __builtin_add_overflow(v, (uint64_t) (*p - '0'), &v))
        {
            return NULL;
        }
    }

    *n = v;

    return (p > start) ? p : NULL;
}


static ngx_uint_t
fuzz_inside(ngx_str_t *part, ngx_str_t *whole)
{
    return part->data >= whole->data
           && part->data + part->len <= whole->data + whole->len;
}


static ngx_uint_t
fuzz_is(redisReply *r, const void *data, size_t len)
{
    return r->type == REDIS_REPLY_STRING
           && r->len == len
           && (len == 0 || memcmp(r->str, data, len) == 0);
}


/* a length byte and that many bytes, or what is left */

static void
fuzz_field(fuzz_in_t *in, ngx_str_t *s)
{
    size_t  n;

    n = (in->pos < in->last) ? *in->pos++ : 0;
    n = ngx_min(n, (size_t) (in->last - in->pos));

    s->data = (u_char *) in->pos;
    s->len = n;
    in->pos += n;
}


static uint64_t
fuzz_u64(fuzz_in_t *in)
{
    uint64_t    v;
    ngx_uint_t  i;

    v = 0;

    for (i = 0; i < 8 && in->pos < in->last; i++) {
        v = v << 8 | *in->pos++;
    }

    return v;
}
