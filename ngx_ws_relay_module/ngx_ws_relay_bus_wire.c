
/*
 * Copyright (C) ngx_ws_relay_module authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <hiredis/hiredis.h>
#include "ngx_ws_relay_bus_wire.h"


static u_char *ngx_ws_relay_wire_number(u_char *p, u_char *last,
    uint64_t *n);


/*
 * "<prefix><kind><name>"; a kind that ends with "{" makes the name a hash
 * tag: "<prefix><kind><name>}", so that a user's keys and channel share
 * one slot of a Redis Cluster.
 */

size_t
ngx_ws_relay_wire_channel_len(ngx_str_t *prefix, const char *kind,
    ngx_str_t *name)
{
    size_t  n;

    n = ngx_strlen(kind);

    return prefix->len + n + name->len + (kind[n - 1] == '{');
}


u_char *
ngx_ws_relay_wire_channel(u_char *p, ngx_str_t *prefix, const char *kind,
    ngx_str_t *name)
{
    size_t  n;

    /* either may be empty, with no data at all */

    if (prefix->len) {
        p = ngx_cpymem(p, prefix->data, prefix->len);
    }

    n = ngx_strlen(kind);
    p = ngx_cpymem(p, kind, n);

    if (name->len) {
        p = ngx_cpymem(p, name->data, name->len);
    }

    if (kind[n - 1] == '{') {
        *p++ = '}';
    }

    return p;
}


/* the name in "<prefix><kind><name>"; NGX_DECLINED: another channel */

ngx_int_t
ngx_ws_relay_wire_channel_name(ngx_str_t *channel, ngx_str_t *prefix,
    const char *kind, ngx_str_t *name)
{
    size_t      n;
    ngx_uint_t  tag;

    n = ngx_strlen(kind);
    tag = (kind[n - 1] == '{');

    if (channel->len <= prefix->len + n + tag
        || ngx_strncmp(channel->data, prefix->data, prefix->len) != 0
        || ngx_strncmp(channel->data + prefix->len, kind, n) != 0
        || (tag && channel->data[channel->len - 1] != '}'))
    {
        return NGX_DECLINED;
    }

    name->data = channel->data + prefix->len + n;
    name->len = channel->len - prefix->len - n - tag;

    return NGX_OK;
}


/* a command: an array of bulk strings, in RESP */

size_t
ngx_ws_relay_wire_command_len(ngx_str_t *args, ngx_uint_t n)
{
    size_t      len;
    ngx_uint_t  i;

    len = sizeof("*\r\n") - 1 + NGX_INT_T_LEN;

    for (i = 0; i < n; i++) {
        len += sizeof("$\r\n\r\n") - 1 + NGX_SIZE_T_LEN + args[i].len;
    }

    return len;
}


u_char *
ngx_ws_relay_wire_command(u_char *p, ngx_str_t *args, ngx_uint_t n)
{
    ngx_uint_t  i;

    p = ngx_sprintf(p, "*%ui\r\n", n);

    for (i = 0; i < n; i++) {
        p = ngx_sprintf(p, "$%uz\r\n", args[i].len);

        if (args[i].len) {
            p = ngx_cpymem(p, args[i].data, args[i].len);
        }

        *p++ = '\r';
        *p++ = '\n';
    }

    return p;
}


size_t
ngx_ws_relay_wire_publish_len(ngx_str_t *prefix, const char *kind,
    ngx_str_t *name, ngx_str_t *parts, ngx_uint_t n)
{
    size_t      len;
    ngx_uint_t  i;

    len = sizeof("*3\r\n$8\r\nSPUBLISH\r\n$\r\n\r\n$\r\n\r\n") - 1
          + 2 * NGX_SIZE_T_LEN + ngx_ws_relay_wire_channel_len(prefix, kind, name);

    for (i = 0; i < n; i++) {
        len += parts[i].len;
    }

    return len;
}


/*
 * PUBLISH <prefix><kind><name> <parts...>, in RESP; SPUBLISH (sharded, in
 * a Redis Cluster) when sharded.
 */

u_char *
ngx_ws_relay_wire_publish(u_char *p, ngx_str_t *prefix, const char *kind,
    ngx_str_t *name, ngx_str_t *parts, ngx_uint_t n, ngx_uint_t sharded)
{
    size_t      len;
    ngx_uint_t  i;

    len = 0;

    for (i = 0; i < n; i++) {
        len += parts[i].len;
    }

    if (sharded) {
        p = ngx_cpymem(p, "*3\r\n$8\r\nSPUBLISH\r\n",
                       sizeof("*3\r\n$8\r\nSPUBLISH\r\n") - 1);
    } else {
        p = ngx_cpymem(p, "*3\r\n$7\r\nPUBLISH\r\n",
                       sizeof("*3\r\n$7\r\nPUBLISH\r\n") - 1);
    }

    p = ngx_sprintf(p, "$%uz\r\n",
                    ngx_ws_relay_wire_channel_len(prefix, kind, name));
    p = ngx_ws_relay_wire_channel(p, prefix, kind, name);
    p = ngx_sprintf(p, "\r\n$%uz\r\n", len);

    for (i = 0; i < n; i++) {
        p = ngx_cpymem(p, parts[i].data, parts[i].len);
    }

    *p++ = '\r';
    *p++ = '\n';

    return p;
}


/*
 * What goes between the origin node and the JSON of a user's message:
 * " <delivery id> ", or " <delivery id>:" where the history script adds
 * the message's id and a space.
 */

u_char *
ngx_ws_relay_wire_user_head(u_char *p, uint64_t id, ngx_uint_t stored)
{
    return ngx_sprintf(p, " %uL%c", id, stored ? ':' : ' ');
}


/* hid: the message's id in the history; none: empty */

ngx_int_t
ngx_ws_relay_wire_parse_user(ngx_str_t *payload, ngx_str_t *origin,
    uint64_t *id, ngx_str_t *hid, ngx_str_t *text)
{
    u_char  *p, *last;

    p = payload->data;
    last = p + payload->len;

    origin->data = p;
    p = ngx_strlchr(p, last, ' ');

    if (p == NULL || p == origin->data) {
        return NGX_ERROR;
    }

    origin->len = p - origin->data;

    p = ngx_ws_relay_wire_number(p + 1, last, id);

    if (p == NULL || p == last) {
        return NGX_ERROR;
    }

    hid->len = 0;

    if (*p == ':') {
        hid->data = ++p;

        while (p < last && ((*p >= '0' && *p <= '9') || *p == '-')) {
            p++;
        }

        hid->len = p - hid->data;

        if (hid->len == 0 || hid->len > NGX_WS_RELAY_ID_LEN) {
            return NGX_ERROR;
        }
    }

    if (p == last || *p != ' ') {
        return NGX_ERROR;
    }

    text->data = p + 1;
    text->len = last - text->data;

    return NGX_OK;
}


u_char *
ngx_ws_relay_wire_ack(u_char *p, uint64_t id, ngx_uint_t count)
{
    return ngx_sprintf(p, "ack:%uL:%ui", id, count);
}


u_char *
ngx_ws_relay_wire_ping(u_char *p, uint64_t seq)
{
    return ngx_sprintf(p, "ping:%uL", seq);
}


ngx_int_t
ngx_ws_relay_wire_parse_node(ngx_str_t *payload, ngx_ws_relay_wire_node_t *m)
{
    u_char  *p, *last;

    p = payload->data;
    last = p + payload->len;

    if (payload->len > 4 && ngx_strncmp(p, "ack:", 4) == 0) {
        m->type = NGX_WS_RELAY_WIRE_ACK;

        p = ngx_ws_relay_wire_number(p + 4, last, &m->id);

        if (p == NULL || p == last || *p != ':') {
            return NGX_ERROR;
        }

        p = ngx_ws_relay_wire_number(p + 1, last, &m->count);

    } else if (payload->len > 5 && ngx_strncmp(p, "ping:", 5) == 0) {
        m->type = NGX_WS_RELAY_WIRE_PING;
        m->count = 0;

        p = ngx_ws_relay_wire_number(p + 5, last, &m->id);

    } else {
        return NGX_ERROR;
    }

    return (p == last) ? NGX_OK : NGX_ERROR;
}


/* decimal digits, at least one, that fit 64 bits; NULL: none or too big */

static u_char *
ngx_ws_relay_wire_number(u_char *p, u_char *last, uint64_t *n)
{
    u_char    *start;
    uint64_t   value;

    value = 0;

    for (start = p; p < last && *p >= '0' && *p <= '9'; p++) {

        if (value > (UINT64_MAX - (*p - '0')) / 10) {
            return NULL;
        }

        value = value * 10 + (*p - '0');
    }

    if (p == start) {
        return NULL;
    }

    *n = value;

    return p;
}


/*
 * A client's "since": "<ms>-<seq>", "<ms>" (seq 0) or "0", with at most
 * 15 digits a part, so that Lua's numbers hold them exactly; into id as
 * "<ms>-<seq>".
 */

ngx_int_t
ngx_ws_relay_wire_id_parse(ngx_str_t *text,
    ngx_ws_relay_id_t *id)
{
    u_char      *p, *last, *part;
    ngx_uint_t   parts;

    p = text->data;
    last = p + text->len;
    parts = 0;

    while (parts < 2) {
        part = p;

        while (p < last && *p >= '0' && *p <= '9') {
            p++;
        }

        if (p == part || p - part > 15) {
            return NGX_ERROR;
        }

        parts++;

        if (p == last) {
            break;
        }

        if (*p != '-' || parts == 2) {
            return NGX_ERROR;
        }

        p++;
    }

    if (p != last) {
        return NGX_ERROR;
    }

    p = ngx_cpymem(id->data, text->data, text->len);

    if (parts == 1) {
        *p++ = '-';
        *p++ = '0';
    }

    id->len = p - id->data;

    return NGX_OK;
}


/*
 * An id from Redis, before it is written into a client's JSON: "<ms>-<seq>"
 * of at most 20 digits a part.
 */

ngx_int_t
ngx_ws_relay_wire_id_valid(ngx_str_t *id)
{
    u_char  *p, *last, *dash;

    if (id->len < 3) {
        return NGX_ERROR;
    }

    p = id->data;
    last = p + id->len;
    dash = ngx_strlchr(p, last, '-');

    if (dash == NULL || dash == p || dash - p > 20
        || last - dash < 2 || last - dash > 21)
    {
        return NGX_ERROR;
    }

    for ( /* void */ ; p < last; p++) {
        if ((*p < '0' || *p > '9') && p != dash) {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


/* two ids "<ms>-<seq>" of Redis: <0, 0, >0 as a is before, at, after b */

ngx_int_t
ngx_ws_relay_wire_id_compare(ngx_str_t *a, ngx_str_t *b)
{
    u_char      *p[2], *last[2];
    ngx_int_t    rc;
    ngx_uint_t   i, part;
    size_t       len[2];
    ngx_str_t   *s[2];

    s[0] = a;
    s[1] = b;

    for (i = 0; i < 2; i++) {
        p[i] = s[i]->data;
        last[i] = p[i] + s[i]->len;
    }

    /* each part: leading zeros skipped, the longer number is the bigger */

    for (part = 0; part < 2; part++) {

        for (i = 0; i < 2; i++) {
            while (p[i] < last[i] && *p[i] == '0'
                   && p[i] + 1 < last[i] && p[i][1] != '-')
            {
                p[i]++;
            }

            len[i] = 0;

            while (p[i] + len[i] < last[i] && p[i][len[i]] != '-') {
                len[i]++;
            }
        }

        if (len[0] != len[1]) {
            return len[0] < len[1] ? -1 : 1;
        }

        rc = ngx_memcmp(p[0], p[1], len[0]);
        if (rc != 0) {
            return rc;
        }

        for (i = 0; i < 2; i++) {
            p[i] += len[i];

            if (p[i] < last[i]) {
                p[i]++;
            }
        }
    }

    return 0;
}


/* {...} becomes {...,"id":"<id>"} */

size_t
ngx_ws_relay_wire_id_text_len(ngx_str_t *json, ngx_str_t *id)
{
    return json->len + sizeof(",\"id\":\"\"") - 1 + id->len;
}


u_char *
ngx_ws_relay_wire_id_text(u_char *p, ngx_str_t *json, ngx_str_t *id)
{
    p = ngx_cpymem(p, json->data, json->len - 1);
    p = ngx_cpymem(p, ",\"id\":\"", sizeof(",\"id\":\"") - 1);
    p = ngx_cpymem(p, id->data, id->len);
    *p++ = '"';
    *p++ = '}';

    return p;
}


/* ROLE's reply: ["master", ...] */

ngx_uint_t
ngx_ws_relay_wire_is_master(redisReply *reply)
{
    return reply->type == REDIS_REPLY_ARRAY && reply->elements > 0
           && reply->element[0]->type == REDIS_REPLY_STRING
           && reply->element[0]->len == 6
           && ngx_strncmp(reply->element[0]->str, "master", 6) == 0;
}


/*
 * A reply on a subscriber connection: ["message", channel, payload],
 * ["subscribe", channel, count], ["unsubscribe", channel, count], or the
 * same of sharded pub/sub (Redis Cluster): "smessage", "ssubscribe",
 * "sunsubscribe".  NGX_DECLINED: another kind of push, to be ignored;
 * NGX_ERROR: not a push at all.
 */

ngx_int_t
ngx_ws_relay_wire_parse_push(redisReply *reply, ngx_ws_relay_wire_push_t *push)
{
    ngx_str_t   type;
    ngx_uint_t  i;

    if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 3) {
        return NGX_ERROR;
    }

    for (i = 0; i < 2; i++) {
        if (reply->element[i]->type != REDIS_REPLY_STRING) {
            return NGX_ERROR;
        }
    }

    type.data = (u_char *) reply->element[0]->str;
    type.len = reply->element[0]->len;
    push->channel.data = (u_char *) reply->element[1]->str;
    push->channel.len = reply->element[1]->len;
    push->subscribed = 0;
    push->unsubscribed = 0;
    ngx_str_null(&push->payload);

    if ((type.len == 8 || type.len == 10 || type.len == 12)
        && type.data[0] == 's')
    {
        /* sharded: "smessage", "ssubscribe", "sunsubscribe" */
        type.data++;
        type.len--;
    }

    if (type.len == 9 && ngx_strncmp(type.data, "subscribe", 9) == 0) {
        push->subscribed = 1;
        return NGX_OK;
    }

    if (type.len == 11 && ngx_strncmp(type.data, "unsubscribe", 11) == 0) {
        push->unsubscribed = 1;
        return NGX_OK;
    }

    if (type.len != 7 || ngx_strncmp(type.data, "message", 7) != 0) {
        return NGX_DECLINED;
    }

    if (reply->element[2]->type != REDIS_REPLY_STRING) {
        return NGX_ERROR;
    }

    push->payload.data = (u_char *) reply->element[2]->str;
    push->payload.len = reply->element[2]->len;

    return NGX_OK;
}


/*
 * The hash slot of a key or channel in Redis Cluster: CRC16 (XMODEM) of
 * the key, or of its hash tag, the part between the first "{" and the
 * next "}" when that part is not empty.
 */

ngx_uint_t
ngx_ws_relay_wire_slot(u_char *key, size_t len)
{
    u_char      *open, *close, *p, *last;
    uint16_t     crc;
    ngx_uint_t   i;

    open = ngx_strlchr(key, key + len, '{');

    if (open) {
        close = ngx_strlchr(open + 1, key + len, '}');

        if (close && close > open + 1) {
            key = open + 1;
            len = close - key;
        }
    }

    crc = 0;
    last = key + len;

    for (p = key; p < last; p++) {
        crc ^= (uint16_t) (*p << 8);

        for (i = 0; i < 8; i++) {
            crc = (crc & 0x8000) ? (uint16_t) ((crc << 1) ^ 0x1021)
                                 : (uint16_t) (crc << 1);
        }
    }

    return crc & (NGX_WS_RELAY_WIRE_SLOTS - 1);
}


/* "<host>:<port>", the host maybe an IPv6 address with colons */

static ngx_int_t
ngx_ws_relay_wire_address(u_char *p, u_char *last, ngx_str_t *host,
    ngx_int_t *port)
{
    u_char  *colon;

    for (colon = last; colon > p; colon--) {
        if (colon[-1] == ':') {
            break;
        }
    }

    if (colon == p) {
        return NGX_ERROR;
    }

    host->data = p;
    host->len = colon - 1 - p;

    *port = ngx_atoi(colon, last - colon);

    if (*port <= 0 || *port > 65535) {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/* an error reply that sends the command to another node */

ngx_int_t
ngx_ws_relay_wire_redirect(redisReply *reply, ngx_ws_relay_wire_redirect_t *r)
{
    u_char     *p, *last, *space;
    ngx_int_t   slot;

    if (reply->type != REDIS_REPLY_ERROR || reply->str == NULL) {
        return NGX_DECLINED;
    }

    p = (u_char *) reply->str;
    last = p + reply->len;

    if (last - p > 6 && ngx_strncmp(p, "MOVED ", 6) == 0) {
        r->ask = 0;
        p += 6;

    } else if (last - p > 4 && ngx_strncmp(p, "ASK ", 4) == 0) {
        r->ask = 1;
        p += 4;

    } else {
        return NGX_DECLINED;
    }

    space = ngx_strlchr(p, last, ' ');
    if (space == NULL) {
        return NGX_ERROR;
    }

    slot = ngx_atoi(p, space - p);

    if (slot < 0 || slot >= NGX_WS_RELAY_WIRE_SLOTS) {
        return NGX_ERROR;
    }

    r->slot = slot;

    return ngx_ws_relay_wire_address(space + 1, last, &r->host, &r->port);
}


/*
 * CLUSTER SLOTS: [[first, last, [host, port, id, ...], replicas...], ...]
 * into at most *n ranges of masters; *n becomes the number found.  A
 * range whose master has no usable address ("?" or no port) is skipped.
 */

ngx_int_t
ngx_ws_relay_wire_cluster_slots(redisReply *reply,
    ngx_ws_relay_wire_range_t *ranges, ngx_uint_t *n)
{
    size_t                      i;
    ngx_uint_t                  found;
    redisReply                 *e, *m;
    ngx_ws_relay_wire_range_t  *r;

    if (reply->type != REDIS_REPLY_ARRAY) {
        return NGX_ERROR;
    }

    found = 0;

    for (i = 0; i < reply->elements; i++) {
        e = reply->element[i];

        if (e->type != REDIS_REPLY_ARRAY || e->elements < 3
            || e->element[0]->type != REDIS_REPLY_INTEGER
            || e->element[1]->type != REDIS_REPLY_INTEGER
            || e->element[2]->type != REDIS_REPLY_ARRAY
            || e->element[0]->integer < 0
            || e->element[0]->integer > e->element[1]->integer
            || e->element[1]->integer >= NGX_WS_RELAY_WIRE_SLOTS)
        {
            return NGX_ERROR;
        }

        m = e->element[2];

        if (m->elements < 2 || m->element[0]->type != REDIS_REPLY_STRING
            || m->element[1]->type != REDIS_REPLY_INTEGER
            || m->element[1]->integer <= 0
            || m->element[1]->integer > 65535
            || (m->element[0]->len == 1 && m->element[0]->str[0] == '?'))
        {
            continue;
        }

        if (found == *n) {
            return NGX_ERROR;
        }

        r = &ranges[found++];

        r->first = (ngx_uint_t) e->element[0]->integer;
        r->last = (ngx_uint_t) e->element[1]->integer;
        r->host.data = (u_char *) m->element[0]->str;
        r->host.len = m->element[0]->len;
        r->port = (ngx_int_t) m->element[1]->integer;
    }

    *n = found;

    return NGX_OK;
}
