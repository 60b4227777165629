
/*
 * Copyright (C) ngx_ws_relay_module authors
 */


/*
 * Unit tests of the bus's wire format (ngx_ws_relay_bus_wire.c): channel
 * names, the RESP PUBLISH writer (read back by hiredis's reader), the
 * user and node messages written and parsed, and the pushes of a
 * subscriber, good and malformed.  The output is TAP, closed by a line
 * "N passed, N failed"; the exit status is 1 when a test failed.
 */


#include "tap.h"
#include <hiredis/hiredis.h>
#include "ngx_ws_relay_bus_wire.h"


#define TEST_TIMEOUT  30

#define MAX_ID        "18446744073709551615"
#define OVER_ID       "18446744073709551616"


/* a message and what parsing it gives; rc NGX_ERROR: nothing else */
typedef struct {
    const char     *payload;
    ngx_int_t       rc;
    const char     *origin;
    uint64_t        id;
    const char     *hid;
    const char     *text;
} user_case_t;


typedef struct {
    const char     *payload;
    ngx_int_t       rc;
    ngx_uint_t      type;
    uint64_t        id;
    uint64_t        count;
} node_case_t;


typedef struct {
    const char     *channel;
    const char     *prefix;
    const char     *kind;
    ngx_int_t       rc;
    const char     *name;
} channel_case_t;


typedef struct {
    const char     *resp;
    ngx_int_t       rc;
    /* 1: subscribed, 2: unsubscribed */
    ngx_uint_t      subscribed;
    const char     *channel;
    const char     *payload;
} push_case_t;


static void test_channels(void);
static void test_channel_names(void);
static void test_publish(void);
static void test_user_messages(void);
static void test_node_messages(void);
static void test_pushes(void);
static void test_cluster(void);

static ngx_str_t *str(ngx_str_t *s, const char *text);
static int str_is(ngx_str_t *s, const char *text);
static void test_ids(void);
static int out_is(u_char *start, u_char *end, const char *text);
static redisReply *resp_read(const char *p, size_t len, size_t *used);


int
main(void)
{
    tap_start(TEST_TIMEOUT);

    test_channels();
    test_channel_names();
    test_publish();
    test_user_messages();
    test_node_messages();
    test_pushes();
    test_ids();
    test_cluster();

    return tap_done();
}


static void
test_channels(void)
{
    u_char     buf[64], *p;
    ngx_str_t  prefix, name;

    test_begin("channel: <prefix><kind><name>, its length");

    p = ngx_ws_relay_wire_channel(buf, str(&prefix, "ws_relay:"),
                                  NGX_WS_RELAY_WIRE_USER, str(&name, "bob"));
    check(out_is(buf, p, "ws_relay:u:{bob}"), "user channel, a hash tag");
    check(ngx_ws_relay_wire_channel_len(&prefix, NGX_WS_RELAY_WIRE_USER,
                                        &name) == 16,
          "its length");

    p = ngx_ws_relay_wire_channel(buf, str(&prefix, ""),
                                  NGX_WS_RELAY_WIRE_NODE,
                                  str(&name, "host-1-2"));
    check(out_is(buf, p, "n:host-1-2"), "node channel, empty prefix");
    check(ngx_ws_relay_wire_channel_len(&prefix, NGX_WS_RELAY_WIRE_NODE,
                                        &name) == 10,
          "its length");

    p = ngx_ws_relay_wire_channel(buf, str(&prefix, "a:b:"),
                                  "h:{", str(&name, "a}b"));
    check(out_is(buf, p, "a:b:h:{a}b}"), "a history key");

    test_end();
}


static void
test_channel_names(void)
{
    ngx_int_t        rc;
    ngx_str_t        channel, prefix, name;
    ngx_uint_t       i;
    channel_case_t  *c;

    static channel_case_t  cases[] = {
        { "ws_relay:u:{bob}", "ws_relay:", "u:{", NGX_OK, "bob" },
        { "ws_relay:n:host-1", "ws_relay:", "n:", NGX_OK, "host-1" },
        { "ws_relay:u:{a b:c}", "ws_relay:", "u:{", NGX_OK, "a b:c" },
        { "ws_relay:u:{a}b}", "ws_relay:", "u:{", NGX_OK, "a}b" },
        { "ws_relay:u:{{}}", "ws_relay:", "u:{", NGX_OK, "{}" },
        { "u:{bob}", "", "u:{", NGX_OK, "bob" },
        { "u:{x}", "", "u:{", NGX_OK, "x" },
        { "ws_relay:u:{bob}", "ws_relay:", "n:", NGX_DECLINED, NULL },
        { "ws_relay:u:bob", "ws_relay:", "u:{", NGX_DECLINED, NULL },
        { "ws_relay:u:{bob", "ws_relay:", "u:{", NGX_DECLINED, NULL },
        { "ws_other:u:{bob}", "ws_relay:", "u:{", NGX_DECLINED, NULL },
        { "ws_relay:u:{}", "ws_relay:", "u:{", NGX_DECLINED, NULL },
        { "ws_relay:u:{", "ws_relay:", "u:{", NGX_DECLINED, NULL },
        { "ws_relay:u", "ws_relay:", "u:{", NGX_DECLINED, NULL },
        { "ws_relay:", "ws_relay:", "u:{", NGX_DECLINED, NULL },
        { "ws", "ws_relay:", "u:{", NGX_DECLINED, NULL },
        { "", "ws_relay:", "u:{", NGX_DECLINED, NULL },
        { "", "", "u:{", NGX_DECLINED, NULL },
        { "u:{}", "", "u:{", NGX_DECLINED, NULL },
        { "ws_relay:n:", "ws_relay:", "n:", NGX_DECLINED, NULL },
        { "ws_relay:U:{bob}", "ws_relay:", "u:{", NGX_DECLINED, NULL },
        { "WS_RELAY:u:{bob}", "ws_relay:", "u:{", NGX_DECLINED, NULL },
        { "xws_relay:u:{bob}", "ws_relay:", "u:{", NGX_DECLINED, NULL },
    };

    test_begin("channel_name: the name in a channel of ours, or declined");

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        c = &cases[i];

        ngx_str_null(&name);

        rc = ngx_ws_relay_wire_channel_name(str(&channel, c->channel),
                                            str(&prefix, c->prefix),
                                            c->kind, &name);

        check(rc == c->rc && (c->name == NULL || str_is(&name, c->name)),
              "\"%s\" with prefix \"%s\", kind \"%s\": rc %ld, name \"%.*s\"",
              c->channel, c->prefix, c->kind, (long) rc,
              (int) name.len, name.data ? (char *) name.data : "");

        if (rc == NGX_OK) {
            /* or its hash tag's "}" does */
            check(name.data + name.len + (c->kind[2] == '{')
                  == channel.data + channel.len,
                  "\"%s\": the name ends the channel", c->channel);
        }
    }

    test_end();
}


static void
test_publish(void)
{
    u_char       *p, *buf;
    size_t        len, used;
    ngx_str_t     prefix, name, parts[3];
    ngx_uint_t    i;
    redisReply   *r;

    static const char  *want[] = {
        "*3\r\n$7\r\nPUBLISH\r\n$16\r\nws_relay:u:{bob}\r\n"
        "$19\r\nhost-1 17 {\"a\":\"b\"}\r\n",
        "*3\r\n$7\r\nPUBLISH\r\n$5\r\nn:h-1\r\n$0\r\n\r\n",
        "*3\r\n$7\r\nPUBLISH\r\n$8\r\np\r\nu:{\n}\r\n$5\r\n\r\n\0\r\n\r\n",
        "*3\r\n$8\r\nSPUBLISH\r\n$16\r\nws_relay:u:{bob}\r\n"
        "$19\r\nhost-1 17 {\"a\":\"b\"}\r\n"
    };

    test_begin("publish: RESP that hiredis reads back, within its length");

    for (i = 0; i < 4; i++) {
        switch (i) {

        case 0:
        case 3:
            /* 3: the same, sharded (SPUBLISH) */
            str(&prefix, "ws_relay:");
            str(&name, "bob");
            str(&parts[0], "host-1");
            str(&parts[1], " 17 ");
            str(&parts[2], "{\"a\":\"b\"}");
            break;

        case 1:
            str(&prefix, "");
            str(&name, "h-1");
            break;

        default:
            /* any bytes: CR, LF, NUL */
            str(&prefix, "p\r\n");
            str(&name, "\n");
            parts[0].data = (u_char *) "\r\n\0\r\n";
            parts[0].len = 5;
        }

        len = ngx_ws_relay_wire_publish_len(&prefix,
                                            i == 1 ? NGX_WS_RELAY_WIRE_NODE
                                                   : NGX_WS_RELAY_WIRE_USER,
                                            &name, parts,
                                            i == 1 ? 0 : i == 2 ? 1 : 3);
        buf = test_alloc(len);

        p = ngx_ws_relay_wire_publish(buf, &prefix,
                                      i == 1 ? NGX_WS_RELAY_WIRE_NODE
                                             : NGX_WS_RELAY_WIRE_USER,
                                      &name, parts,
                                      i == 1 ? 0 : i == 2 ? 1 : 3, i == 3);

        check((size_t) (p - buf) <= len, "case %lu: %lu bytes of %lu",
              (unsigned long) i, (unsigned long) (p - buf),
              (unsigned long) len);
        check((size_t) (p - buf) == strlen(want[i]) + (i == 2 ? 5 : 0)
              && ngx_memcmp(buf, want[i], p - buf) == 0,
              "case %lu: the bytes", (unsigned long) i);

        r = resp_read((char *) buf, p - buf, &used);

        check(r && used == (size_t) (p - buf)
              && r->type == REDIS_REPLY_ARRAY && r->elements == 3
              && r->element[0]->len == (i == 3 ? 8 : 7)
              && ngx_memcmp(r->element[0]->str,
                            (i == 3 ? "SPUBLISH" : "PUBLISH"),
                            r->element[0]->len)
                 == 0,
              "case %lu: hiredis reads one PUBLISH of all the bytes",
              (unsigned long) i);

        if (r) {
            freeReplyObject(r);
        }

        free(buf);
    }

    test_end();
}


static void
test_user_messages(void)
{
    u_char        buf[64], *p;
    uint64_t      id;
    ngx_int_t     rc;
    ngx_str_t     payload, origin, hid, text;
    ngx_uint_t    i;
    user_case_t  *c;

    static user_case_t  cases[] = {
        { "host-1 17 {\"type\":\"chat\"}", NGX_OK, "host-1", 17, "",
          "{\"type\":\"chat\"}" },
        { "h 0 ", NGX_OK, "h", 0, "", "" },
        { "h 007 x", NGX_OK, "h", 7, "", "x" },
        { "h 1 a b c", NGX_OK, "h", 1, "", "a b c" },
        { "h 1  ", NGX_OK, "h", 1, "", " " },
        { "h " MAX_ID " x", NGX_OK, "h", UINT64_MAX, "", "x" },
        { "h " OVER_ID " x", NGX_ERROR, NULL, 0, NULL, NULL },
        { "h 99999999999999999999999 x", NGX_ERROR, NULL, 0, NULL, NULL },
        { " 1 {}", NGX_ERROR, NULL, 0, NULL, NULL },
        { "", NGX_ERROR, NULL, 0, NULL, NULL },
        { "h", NGX_ERROR, NULL, 0, NULL, NULL },
        { "h1{}", NGX_ERROR, NULL, 0, NULL, NULL },
        { "h 1", NGX_ERROR, NULL, 0, NULL, NULL },
        { "h 1{}", NGX_ERROR, NULL, 0, NULL, NULL },
        { "h  1 {}", NGX_ERROR, NULL, 0, NULL, NULL },
        { "h  {}", NGX_ERROR, NULL, 0, NULL, NULL },
        { "h x {}", NGX_ERROR, NULL, 0, NULL, NULL },
        { "h -1 {}", NGX_ERROR, NULL, 0, NULL, NULL },
        { "h 1x {}", NGX_ERROR, NULL, 0, NULL, NULL },
        { "h \n1 {}", NGX_ERROR, NULL, 0, NULL, NULL },
        { "h 3:1733-0 {\"a\":1}", NGX_OK, "h", 3, "1733-0", "{\"a\":1}" },
        { "h 3:1 x", NGX_OK, "h", 3, "1", "x" },
        { "h 3: {}", NGX_ERROR, NULL, 0, NULL, NULL },
        { "h 3:1-2{}", NGX_ERROR, NULL, 0, NULL, NULL },
        { "h 3:1-2", NGX_ERROR, NULL, 0, NULL, NULL },
        { "h 3:1x2 {}", NGX_ERROR, NULL, 0, NULL, NULL },
        { "h 3:" MAX_ID "-" MAX_ID " {}", NGX_OK, "h", 3,
          MAX_ID "-" MAX_ID, "{}" },
        { "h 3:" MAX_ID "-" MAX_ID "0 {}", NGX_ERROR, NULL, 0, NULL, NULL },
        { "h 3 :1 {}", NGX_OK, "h", 3, "", ":1 {}" },
    };

    test_begin("parse_user: \"<origin> <id>[:<hid>] <text>\"");

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        c = &cases[i];

        ngx_str_null(&origin);
        ngx_str_null(&text);
        id = 12345;

        ngx_str_null(&hid);

        rc = ngx_ws_relay_wire_parse_user(str(&payload, c->payload), &origin,
                                          &id, &hid, &text);

        check(rc == c->rc
              && (rc != NGX_OK
                  || (str_is(&origin, c->origin) && id == c->id
                      && str_is(&hid, c->hid) && str_is(&text, c->text))),
              "\"%s\": rc %ld, origin \"%.*s\", id %llu, hid \"%.*s\", "
              "text \"%.*s\"",
              c->payload, (long) rc, (int) origin.len,
              origin.data ? (char *) origin.data : "",
              (unsigned long long) id, (int) hid.len,
              hid.len ? (char *) hid.data : "", (int) text.len,
              text.data ? (char *) text.data : "");
    }

    test_end();

    test_begin("user_head: what goes between origin and text, read back");

    p = ngx_ws_relay_wire_user_head(buf, 17, 0);
    check(out_is(buf, p, " 17 "), "id 17");

    p = ngx_ws_relay_wire_user_head(buf, 17, 1);
    check(out_is(buf, p, " 17:"), "id 17, for the history script");

    p = ngx_cpymem(buf, "h", 1);
    p = ngx_ws_relay_wire_user_head(p, UINT64_MAX, 0);
    check(out_is(buf, p, "h " MAX_ID " ")
          && (size_t) (p - buf - 1) <= NGX_WS_RELAY_WIRE_HEAD_LEN,
          "the largest id, within NGX_WS_RELAY_WIRE_HEAD_LEN");

    payload.data = buf;
    payload.len = p - buf;

    check(ngx_ws_relay_wire_parse_user(&payload, &origin, &id, &hid, &text)
          == NGX_OK && str_is(&origin, "h") && id == UINT64_MAX
          && hid.len == 0 && text.len == 0,
          "parsed back");

    test_end();
}


static void
test_node_messages(void)
{
    u_char                     buf[NGX_WS_RELAY_WIRE_HEAD_LEN], *p;
    ngx_int_t                  rc;
    ngx_str_t                  payload;
    ngx_uint_t                 i;
    node_case_t               *c;
    ngx_ws_relay_wire_node_t   m;

    static node_case_t  cases[] = {
        { "ack:1:2", NGX_OK, NGX_WS_RELAY_WIRE_ACK, 1, 2 },
        { "ack:0:0", NGX_OK, NGX_WS_RELAY_WIRE_ACK, 0, 0 },
        { "ack:" MAX_ID ":" MAX_ID, NGX_OK, NGX_WS_RELAY_WIRE_ACK,
          UINT64_MAX, UINT64_MAX },
        { "ping:5", NGX_OK, NGX_WS_RELAY_WIRE_PING, 5, 0 },
        { "ping:0042", NGX_OK, NGX_WS_RELAY_WIRE_PING, 42, 0 },
        { "ack:" OVER_ID ":1", NGX_ERROR, 0, 0, 0 },
        { "ack:1:" OVER_ID, NGX_ERROR, 0, 0, 0 },
        { "ping:" OVER_ID, NGX_ERROR, 0, 0, 0 },
        { "ack:1:", NGX_ERROR, 0, 0, 0 },
        { "ack::1", NGX_ERROR, 0, 0, 0 },
        { "ack:1", NGX_ERROR, 0, 0, 0 },
        { "ack:", NGX_ERROR, 0, 0, 0 },
        { "ack", NGX_ERROR, 0, 0, 0 },
        { "ack:1:2x", NGX_ERROR, 0, 0, 0 },
        { "ack:1:2 ", NGX_ERROR, 0, 0, 0 },
        { "ack:1:2:3", NGX_ERROR, 0, 0, 0 },
        { "ack:-1:2", NGX_ERROR, 0, 0, 0 },
        { "ack: 1:2", NGX_ERROR, 0, 0, 0 },
        { "ping:", NGX_ERROR, 0, 0, 0 },
        { "ping:5 ", NGX_ERROR, 0, 0, 0 },
        { "ping:x", NGX_ERROR, 0, 0, 0 },
        { "ping:1:2", NGX_ERROR, 0, 0, 0 },
        { "ping", NGX_ERROR, 0, 0, 0 },
        { "pong:1", NGX_ERROR, 0, 0, 0 },
        { "ACK:1:2", NGX_ERROR, 0, 0, 0 },
        { " ack:1:2", NGX_ERROR, 0, 0, 0 },
        { "", NGX_ERROR, 0, 0, 0 },
    };

    test_begin("parse_node: \"ack:<id>:<count>\", \"ping:<seq>\"");

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        c = &cases[i];

        ngx_memzero(&m, sizeof(m));

        rc = ngx_ws_relay_wire_parse_node(str(&payload, c->payload), &m);

        check(rc == c->rc
              && (rc != NGX_OK
                  || ((ngx_uint_t) m.type == c->type && m.id == c->id
                      && m.count == c->count)),
              "\"%s\": rc %ld, type %d, id %llu, count %llu", c->payload,
              (long) rc, (int) m.type, (unsigned long long) m.id,
              (unsigned long long) m.count);
    }

    test_end();

    test_begin("ack, ping: written, within NGX_WS_RELAY_WIRE_HEAD_LEN");

    p = ngx_ws_relay_wire_ack(buf, 17, 3);
    check(out_is(buf, p, "ack:17:3"), "ack");

    p = ngx_ws_relay_wire_ack(buf, UINT64_MAX, NGX_MAX_UINT32_VALUE);
    check(out_is(buf, p, "ack:" MAX_ID ":4294967295"), "the largest ack");

    p = ngx_ws_relay_wire_ping(buf, 0);
    check(out_is(buf, p, "ping:0"), "ping");

    p = ngx_ws_relay_wire_ping(buf, UINT64_MAX);
    check(out_is(buf, p, "ping:" MAX_ID), "the largest ping");

    test_end();
}


static void
test_pushes(void)
{
    size_t                     used;
    ngx_int_t                  rc;
    ngx_uint_t                 i;
    redisReply                *r;
    push_case_t               *c;
    ngx_ws_relay_wire_push_t   push;

    static push_case_t  cases[] = {
        { "*3\r\n$7\r\nmessage\r\n$1\r\nc\r\n$3\r\na b\r\n",
          NGX_OK, 0, "c", "a b" },
        { "*3\r\n$7\r\nmessage\r\n$0\r\n\r\n$0\r\n\r\n", NGX_OK, 0, "", "" },
        { "*3\r\n$9\r\nsubscribe\r\n$1\r\nc\r\n:1\r\n", NGX_OK, 1, "c", "" },
        { "*3\r\n$11\r\nunsubscribe\r\n$1\r\nc\r\n:0\r\n",
          NGX_OK, 2, "c", "" },
        /* sharded pub/sub, of a Redis Cluster */
        { "*3\r\n$8\r\nsmessage\r\n$1\r\nc\r\n$3\r\na b\r\n",
          NGX_OK, 0, "c", "a b" },
        { "*3\r\n$10\r\nssubscribe\r\n$1\r\nc\r\n:1\r\n", NGX_OK, 1, "c", "" },
        { "*3\r\n$12\r\nsunsubscribe\r\n$1\r\nc\r\n:0\r\n",
          NGX_OK, 2, "c", "" },
        { "*3\r\n$8\r\nsmessag_\r\n$1\r\nc\r\n$1\r\np\r\n",
          NGX_DECLINED, 0, NULL, NULL },
        { "*3\r\n$1\r\ns\r\n$1\r\nc\r\n$1\r\np\r\n",
          NGX_DECLINED, 0, NULL, NULL },
        { "*3\r\n$0\r\n\r\n$1\r\nc\r\n$1\r\np\r\n",
          NGX_DECLINED, 0, NULL, NULL },
        { "*4\r\n$8\r\npmessage\r\n$1\r\n*\r\n$1\r\nc\r\n$1\r\np\r\n",
          NGX_DECLINED, 0, NULL, NULL },
        { "*3\r\n$7\r\nMessage\r\n$1\r\nc\r\n$1\r\np\r\n",
          NGX_DECLINED, 0, NULL, NULL },
        { "*4\r\n$7\r\nmessage\r\n$1\r\nc\r\n$1\r\np\r\n$1\r\nq\r\n",
          NGX_OK, 0, "c", "p" },
        { "*3\r\n$7\r\nmessage\r\n$1\r\nc\r\n:1\r\n",
          NGX_ERROR, 0, NULL, NULL },
        { "*3\r\n$7\r\nmessage\r\n$1\r\nc\r\n$-1\r\n",
          NGX_ERROR, 0, NULL, NULL },
        { "*3\r\n$7\r\nmessage\r\n:1\r\n$1\r\np\r\n",
          NGX_ERROR, 0, NULL, NULL },
        { "*3\r\n+message\r\n$1\r\nc\r\n$1\r\np\r\n",
          NGX_ERROR, 0, NULL, NULL },
        { "*2\r\n$7\r\nmessage\r\n$1\r\nc\r\n", NGX_ERROR, 0, NULL, NULL },
        { "*0\r\n", NGX_ERROR, 0, NULL, NULL },
        { "*-1\r\n", NGX_ERROR, 0, NULL, NULL },
        { "+OK\r\n", NGX_ERROR, 0, NULL, NULL },
        { "-ERR x\r\n", NGX_ERROR, 0, NULL, NULL },
        { ":3\r\n", NGX_ERROR, 0, NULL, NULL },
    };

    test_begin("parse_push: messages and confirmations of a subscriber");

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        c = &cases[i];

        r = resp_read(c->resp, strlen(c->resp), &used);

        if (r == NULL) {
            check(0, "case %lu: hiredis reads no reply", (unsigned long) i);
            continue;
        }

        ngx_memzero(&push, sizeof(push));

        rc = ngx_ws_relay_wire_parse_push(r, &push);

        check(rc == c->rc
              && (rc != NGX_OK
                  || (push.subscribed == (c->subscribed == 1)
                      && push.unsubscribed == (c->subscribed == 2)
                      && str_is(&push.channel, c->channel)
                      && str_is(&push.payload, c->payload))),
              "case %lu: rc %ld, subscribed %u, channel \"%.*s\", "
              "payload \"%.*s\"", (unsigned long) i, (long) rc,
              (unsigned) push.subscribed, (int) push.channel.len,
              push.channel.data ? (char *) push.channel.data : "",
              (int) push.payload.len,
              push.payload.data ? (char *) push.payload.data : "");

        freeReplyObject(r);
    }

    test_end();
}


/* Redis Cluster: slots, redirections, CLUSTER SLOTS */

static void
test_cluster(void)
{
    size_t                         used;
    ngx_int_t                      rc;
    ngx_uint_t                     i, n;
    const char                    *a;
    redisReply                    *r;
    ngx_ws_relay_wire_range_t      ranges[4];
    ngx_ws_relay_wire_redirect_t   rd;

    /* what CLUSTER KEYSLOT of Redis 7.0 answers */
    static const struct {
        const char  *key;
        ngx_uint_t   slot;
    } slots[] = {
        { "", 0 },
        { "123456789", 12739 },
        { "foo", 12182 },
        { "ws_relay:u:{alice}", 749 },
        { "alice", 749 },
        { "ws_relay:h:{alice}", 749 },
        { "{}foo", 9500 },
        { "foo{}{bar}", 8363 },
        { "foo{{bar}}zap", 4015 },
        { "foo{bar}{zap}", 5061 },
        { "{bar", 4015 },
        { "ws_relay:n:vm-1-2", 0xffff },
    };

    static const struct {
        const char  *resp;
        ngx_int_t    rc;
        ngx_uint_t   ask;
        ngx_uint_t   slot;
        const char  *host;
        ngx_int_t    port;
    } redirects[] = {
        { "-MOVED 3999 127.0.0.1:6381\r\n", NGX_OK, 0, 3999, "127.0.0.1",
          6381 },
        { "-ASK 16383 ::1:7000\r\n", NGX_OK, 1, 16383, "::1", 7000 },
        { "-MOVED 0 :7000\r\n", NGX_OK, 0, 0, "", 7000 },
        { "-MOVED 16384 h:1\r\n", NGX_ERROR, 0, 0, NULL, 0 },
        { "-MOVED -1 h:1\r\n", NGX_ERROR, 0, 0, NULL, 0 },
        { "-MOVED 1 h:0\r\n", NGX_ERROR, 0, 0, NULL, 0 },
        { "-MOVED 1 h:65536\r\n", NGX_ERROR, 0, 0, NULL, 0 },
        { "-MOVED 1 h\r\n", NGX_ERROR, 0, 0, NULL, 0 },
        { "-MOVED 1\r\n", NGX_ERROR, 0, 0, NULL, 0 },
        { "-MOVED \r\n", NGX_DECLINED, 0, 0, NULL, 0 },
        { "-ERR MOVED 1 h:1\r\n", NGX_DECLINED, 0, 0, NULL, 0 },
        { "-TRYAGAIN x\r\n", NGX_DECLINED, 0, 0, NULL, 0 },
        { "+MOVED 1 h:1\r\n", NGX_DECLINED, 0, 0, NULL, 0 },
        { "$12\r\nMOVED 1 h:10\r\n", NGX_DECLINED, 0, 0, NULL, 0 },
    };

    test_begin("slot: CRC16 of the key or of its hash tag");

    for (i = 0; i < sizeof(slots) / sizeof(slots[0]); i++) {
        n = ngx_ws_relay_wire_slot((u_char *) slots[i].key,
                                   strlen(slots[i].key));

        if (slots[i].slot == 0xffff) {
            /* no tag: the whole name */
            check(n < NGX_WS_RELAY_WIRE_SLOTS, "\"%s\": %lu", slots[i].key,
                  (unsigned long) n);
            continue;
        }

        check(n == slots[i].slot, "\"%s\": %lu, not %lu", slots[i].key,
              (unsigned long) n, (unsigned long) slots[i].slot);
    }

    test_end();

    test_begin("redirect: -MOVED and -ASK <slot> <host>:<port>");

    for (i = 0; i < sizeof(redirects) / sizeof(redirects[0]); i++) {
        r = resp_read(redirects[i].resp, strlen(redirects[i].resp), &used);

        if (r == NULL) {
            check(0, "case %lu: hiredis reads no reply", (unsigned long) i);
            continue;
        }

        ngx_memzero(&rd, sizeof(rd));
        rc = ngx_ws_relay_wire_redirect(r, &rd);

        check(rc == redirects[i].rc
              && (rc != NGX_OK
                  || (rd.ask == redirects[i].ask
                      && rd.slot == redirects[i].slot
                      && str_is(&rd.host, redirects[i].host)
                      && rd.port == redirects[i].port)),
              "case %lu: rc %ld, ask %u, slot %lu, \"%.*s\":%ld",
              (unsigned long) i, (long) rc, (unsigned) rd.ask,
              (unsigned long) rd.slot, (int) rd.host.len,
              rd.host.data ? (char *) rd.host.data : "", (long) rd.port);

        freeReplyObject(r);
    }

    test_end();

    test_begin("cluster_slots: the masters' ranges of CLUSTER SLOTS");

    /* two masters, one with a replica; a range of an unknown master */
    a = "*3\r\n"
                  "*4\r\n:0\r\n:5460\r\n"
                  "*3\r\n$9\r\n127.0.0.1\r\n:7000\r\n$2\r\nid\r\n"
                  "*3\r\n$9\r\n127.0.0.1\r\n:7003\r\n$2\r\nir\r\n"
                  "*3\r\n:5461\r\n:16383\r\n"
                  "*2\r\n$0\r\n\r\n:7001\r\n"
                  "*3\r\n:100\r\n:100\r\n"
                  "*2\r\n$1\r\n?\r\n:7002\r\n";
    r = resp_read(a, strlen(a), &used);

    n = 4;
    rc = r ? ngx_ws_relay_wire_cluster_slots(r, ranges, &n) : NGX_ERROR;

    check(rc == NGX_OK && n == 2
          && ranges[0].first == 0 && ranges[0].last == 5460
          && str_is(&ranges[0].host, "127.0.0.1") && ranges[0].port == 7000
          && ranges[1].first == 5461 && ranges[1].last == 16383
          && str_is(&ranges[1].host, "") && ranges[1].port == 7001,
          "two masters, an empty host, a \"?\" left out: rc %ld, %lu",
          (long) rc, (unsigned long) n);

    n = 1;
    check(r && ngx_ws_relay_wire_cluster_slots(r, ranges, &n) == NGX_ERROR,
          "more ranges than room");

    if (r) {
        freeReplyObject(r);
    }

    {
        static const char  *bad[] = {
            "+OK\r\n",
            "*1\r\n:0\r\n",
            "*1\r\n*2\r\n:0\r\n:1\r\n",
            "*1\r\n*3\r\n:5\r\n:4\r\n*2\r\n$1\r\nh\r\n:1\r\n",
            "*1\r\n*3\r\n:0\r\n:16384\r\n*2\r\n$1\r\nh\r\n:1\r\n",
            "*1\r\n*3\r\n:-1\r\n:1\r\n*2\r\n$1\r\nh\r\n:1\r\n",
            "*1\r\n*3\r\n$1\r\n0\r\n:1\r\n*2\r\n$1\r\nh\r\n:1\r\n",
            "*1\r\n*3\r\n:0\r\n:1\r\n$1\r\nh\r\n",
        };

        for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
            r = resp_read(bad[i], strlen(bad[i]), &used);
            n = 4;

            check(r && ngx_ws_relay_wire_cluster_slots(r, ranges, &n)
                       == NGX_ERROR,
                  "malformed answer %lu refused", (unsigned long) i);

            if (r) {
                freeReplyObject(r);
            }
        }
    }

    /* a master without a port is no usable master */
    a = "*1\r\n*3\r\n:0\r\n:1\r\n*2\r\n$1\r\nh\r\n:0\r\n";
    r = resp_read(a, strlen(a), &used);
    n = 4;
    check(r && ngx_ws_relay_wire_cluster_slots(r, ranges, &n) == NGX_OK
          && n == 0, "a master with port 0 left out");

    if (r) {
        freeReplyObject(r);
    }

    test_end();
}


static ngx_str_t *
str(ngx_str_t *s, const char *text)
{
    s->data = (u_char *) text;
    s->len = strlen(text);

    return s;
}


static int
str_is(ngx_str_t *s, const char *text)
{
    return s->len == strlen(text)
           && (s->len == 0 || ngx_memcmp(s->data, text, s->len) == 0);
}


static int
out_is(u_char *start, u_char *end, const char *text)
{
    ngx_str_t  s;

    s.data = start;
    s.len = end - start;

    return str_is(&s, text);
}


/* one reply, as hiredis's reader makes it; used: the bytes it took */

static redisReply *
resp_read(const char *p, size_t len, size_t *used)
{
    void         *r;
    redisReader  *reader;

    reader = redisReaderCreate();
    if (reader == NULL) {
        return NULL;
    }

    r = NULL;

    if (redisReaderFeed(reader, p, len) != REDIS_OK
        || redisReaderGetReply(reader, &r) != REDIS_OK)
    {
        r = NULL;
    }

    *used = reader->pos;

    redisReaderFree(reader);

    return r;
}


static void
test_ids(void)
{
    u_char              buf[128], *p;
    ngx_int_t           rc;
    ngx_str_t           a, b, json, id;
    ngx_uint_t          i;
    ngx_ws_relay_id_t   since;

    static const char  *valid[][2] = {
        { "0", "0-0" },
        { "1733600000000-0", "1733600000000-0" },
        { "1733600000000", "1733600000000-0" },
        { "17-4", "17-4" },
        { "000000000000001-000000000000002", "000000000000001-000000000000002" },
        { "999999999999999-999999999999999", "999999999999999-999999999999999" },
    };

    static const char  *invalid[] = {
        "", "-", "-1", "1-", "1--2", "1-2-3", "abc", "1a", "1-a", " 1", "1 ",
        "+1", "1.5", "1e3", "0x10", "1000000000000000", "1-1000000000000000",
        "1-2 ", "\xef\xbc\x91"
    };

    static const char  *bad[] = {
        "", "-", "1", "1-", "-1", "1-2-3", "1\"-2", "1-2\"", "a-1", "1-a",
        " 1-2", "1-2 ", "1--2", "123456789012345678901-1",
        "1-123456789012345678901"
    };

    /* a before b */
    static const char  *order[][2] = {
        { "0-0", "0-1" }, { "1-9", "2-0" }, { "9-0", "10-0" },
        { "1733600000000-0", "1733600000000-1" },
        { "1733600000000-99", "1733600000001-0" },
        { "0017-5", "18-0" }, { "17-05", "17-6" },
    };

    test_begin("id_parse: a client's since");

    for (i = 0; i < sizeof(valid) / sizeof(valid[0]); i++) {
        rc = ngx_ws_relay_wire_id_parse(str(&a, valid[i][0]), &since);
        b.data = since.data;
        b.len = since.len;

        check(rc == NGX_OK && str_is(&b, valid[i][1]), "\"%s\": rc %ld",
              valid[i][0], (long) rc);
    }

    for (i = 0; i < sizeof(invalid) / sizeof(invalid[0]); i++) {
        rc = ngx_ws_relay_wire_id_parse(str(&a, invalid[i]), &since);
        check(rc == NGX_ERROR, "\"%s\" refused: rc %ld", invalid[i],
              (long) rc);
    }

    test_end();

    test_begin("id_compare: as two numbers, ms then seq");

    for (i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
        str(&a, order[i][0]);
        str(&b, order[i][1]);

        check(ngx_ws_relay_wire_id_compare(&a, &b) < 0
              && ngx_ws_relay_wire_id_compare(&b, &a) > 0
              && ngx_ws_relay_wire_id_compare(&a, &a) == 0,
              "%s < %s", order[i][0], order[i][1]);
    }

    check(ngx_ws_relay_wire_id_compare(str(&a, "017-5"), str(&b, "17-5"))
          == 0, "leading zeros");

    test_end();

    test_begin("id_valid: what Redis answers, before it goes into JSON");

    check(ngx_ws_relay_wire_id_valid(str(&a, "1733600000000-0")) == NGX_OK
          && ngx_ws_relay_wire_id_valid(str(&a, "0-0")) == NGX_OK
          && ngx_ws_relay_wire_id_valid(str(&a, MAX_ID "-" MAX_ID)) == NGX_OK,
          "stream ids");

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        check(ngx_ws_relay_wire_id_valid(str(&a, bad[i])) == NGX_ERROR,
              "\"%s\" refused", bad[i]);
    }

    test_end();

    test_begin("id_text: the id as the last member of an object");

    p = ngx_ws_relay_wire_id_text(buf, str(&json, "{\"type\":\"chat\"}"),
                                  str(&id, "17-0"));
    check(out_is(buf, p, "{\"type\":\"chat\",\"id\":\"17-0\"}")
          && (size_t) (p - buf)
             == ngx_ws_relay_wire_id_text_len(&json, &id),
          "appended, length as announced");

    test_end();
}
