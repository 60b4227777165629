
/*
 * Copyright (C) ngx_ws_relay_module authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include "ngx_ws_relay_bus_wire.h"


static u_char *ngx_ws_relay_wire_number(u_char *p, u_char *last,
    uint64_t *n);


size_t
ngx_ws_relay_wire_channel_len(ngx_str_t *prefix, ngx_str_t *name)
{
    return prefix->len + 2 + name->len;
}


u_char *
ngx_ws_relay_wire_channel(u_char *p, ngx_str_t *prefix, const char *kind,
    ngx_str_t *name)
{
    /* either may be empty, with no data at all */

    if (prefix->len) {
        p = ngx_cpymem(p, prefix->data, prefix->len);
    }

    *p++ = kind[0];
    *p++ = kind[1];

    if (name->len) {
        p = ngx_cpymem(p, name->data, name->len);
    }

    return p;
}


/* the name in "<prefix><kind><name>"; NGX_DECLINED: another channel */

ngx_int_t
ngx_ws_relay_wire_channel_name(ngx_str_t *channel, ngx_str_t *prefix,
    const char *kind, ngx_str_t *name)
{
    if (channel->len <= prefix->len + 2
        || ngx_strncmp(channel->data, prefix->data, prefix->len) != 0
        || ngx_strncmp(channel->data + prefix->len, kind, 2) != 0)
    {
        return NGX_DECLINED;
    }

    name->data = channel->data + prefix->len + 2;
    name->len = channel->len - prefix->len - 2;

    return NGX_OK;
}


size_t
ngx_ws_relay_wire_publish_len(ngx_str_t *prefix, ngx_str_t *name,
    ngx_str_t *parts, ngx_uint_t n)
{
    size_t      len;
    ngx_uint_t  i;

    len = sizeof("*3\r\n$7\r\nPUBLISH\r\n$\r\n\r\n$\r\n\r\n") - 1
          + 2 * NGX_SIZE_T_LEN + ngx_ws_relay_wire_channel_len(prefix, name);

    for (i = 0; i < n; i++) {
        len += parts[i].len;
    }

    return len;
}


/* PUBLISH <prefix><kind><name> <parts...>, in RESP */

u_char *
ngx_ws_relay_wire_publish(u_char *p, ngx_str_t *prefix, const char *kind,
    ngx_str_t *name, ngx_str_t *parts, ngx_uint_t n)
{
    size_t      len;
    ngx_uint_t  i;

    len = 0;

    for (i = 0; i < n; i++) {
        len += parts[i].len;
    }

    p = ngx_sprintf(p, "*3\r\n$7\r\nPUBLISH\r\n$%uz\r\n",
                    ngx_ws_relay_wire_channel_len(prefix, name));
    p = ngx_ws_relay_wire_channel(p, prefix, kind, name);
    p = ngx_sprintf(p, "\r\n$%uz\r\n", len);

    for (i = 0; i < n; i++) {
        p = ngx_cpymem(p, parts[i].data, parts[i].len);
    }

    *p++ = '\r';
    *p++ = '\n';

    return p;
}


/* what goes between the origin node and the JSON of a user's message */

u_char *
ngx_ws_relay_wire_user_head(u_char *p, uint64_t id)
{
    return ngx_sprintf(p, " %uL ", id);
}


ngx_int_t
ngx_ws_relay_wire_parse_user(ngx_str_t *payload, ngx_str_t *origin,
    uint64_t *id, ngx_str_t *text)
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

    if (p == NULL || p == last || *p != ' ') {
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
 * A reply on a subscriber connection: ["message", channel, payload] or
 * ["subscribe", channel, count].  NGX_DECLINED: another kind of push
 * (unsubscribe), to be ignored; NGX_ERROR: not a push at all.
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

    if (type.len == 9 && ngx_strncmp(type.data, "subscribe", 9) == 0) {
        push->subscribed = 1;
        ngx_str_null(&push->payload);
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
